/* spool.h: anonymous temporary files for data on its way in (an LMTP
 * message before its recipients are known, a literal8 APPEND before its
 * binary parts are converted). */
#ifndef HERON_SPOOL_H
#define HERON_SPOOL_H

#include <stddef.h>

/* A new read-write file in <state_dir>/spool (made by the master, owned
 * by `user`), or in P_tmpdir when state_dir is NULL or empty. It has no
 * name (O_TMPFILE, else created and unlinked at once), so it goes away
 * with the fd whatever happens to the process. Returns the fd or -1
 * (errno set). */
int spool_open(const char *state_dir);
/* Writes all of data to fd (retrying short writes and EINTR). Returns 0,
 * or -1 with errno (EIO for a write that took nothing). */
int spool_write(int fd, const void *data, size_t len);

#endif
