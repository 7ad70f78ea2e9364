/* spool.c: anonymous temporary files (spool.h). */
#include "lib/spool.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int spool_open(const char *state_dir)
{
	char *dir, *path;
	int fd;

	if (state_dir == NULL || *state_dir == '\0')
		dir = xstrdup(P_tmpdir);
	else
		dir = xasprintf("%s/spool", state_dir);
#ifdef O_TMPFILE
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0) {
		free(dir);
		return fd;
	}
#endif
	/* Filesystems without O_TMPFILE: create and unlink at once. */
	path = xasprintf("%s/spool.XXXXXX", dir);
	free(dir);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		(void)unlink(path);
	free(path);
	return fd;
}

int spool_write(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t ret = write(fd, p, len);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EIO;
			return -1;
		}
		p += ret;
		len -= (size_t)ret;
	}
	return 0;
}
