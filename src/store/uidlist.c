/* uidlist.c: <folder>/heron-uidlist, the plain-text backup of UID
 * assignments. First line "1 V<uidvalidity> N<uidnext>", then one
 * "<uid> <basename>" line per assigned UID, appended (O_APPEND) by the
 * process holding the LMDB write transaction, so appends never interleave.
 * Stale lines (expunged messages) stay until the file is rewritten via
 * tmp + rename. Read only to rebuild a lost index: when a UID or a
 * basename appears twice, the later line wins. Lines longer than
 * UIDLIST_LINE_MAX and malformed lines are skipped. A folder without
 * heron-uidlist but with Dovecot's dovecot-uidlist is read from that.
 *
 * The header's N is written with UIDLIST_N_DIGITS digits, so that each
 * append can rewrite it in place (same syscall batch and fdatasync as the
 * lines): it then stays above every UID ever assigned, and a rebuild from
 * a truncated file (last lines lost) never hands out again a UID that
 * was assigned and expunged after the last rewrite. A file with an older,
 * unpadded header is rewritten by its next append. */
#include "store/store_private.h"
#include "lib/fault.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UIDLIST_LINE_MAX 1024
/* Width of the header's N field (UINT32_MAX has 10 digits). */
#define UIDLIST_N_DIGITS 10
/* "1 V" + 10 digits + " N" + UIDLIST_N_DIGITS + "\n" */
#define UIDLIST_HEADER_MAX 32
#define UIDLIST_LINES_MAX (64u * 1024 * 1024)

struct uidlist_tmp {
	struct uidlist_ent ent;
	uint32_t seq;
};

static const char *names_base;

static int ent_cmp_uid(const void *a, const void *b)
{
	const struct uidlist_tmp *x = a, *y = b;

	if (x->ent.uid != y->ent.uid)
		return x->ent.uid < y->ent.uid ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

static int ent_cmp_name(const void *a, const void *b)
{
	const struct uidlist_tmp *x = a, *y = b;
	int r = name_cmp(names_base + x->ent.name_off, x->ent.name_len,
			 names_base + y->ent.name_off, y->ent.name_len);

	if (r != 0)
		return r;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* "1 V<digits> N<digits>" (a "<uid> <basename>" line has no " N"). */
static bool is_header(const char *line)
{
	size_t v = strspn(line + 3, "0123456789");

	return strncmp(line, "1 V", 3) == 0 && v > 0 &&
		strncmp(line + 3 + v, " N", 2) == 0 &&
		strspn(line + 5 + v, "0123456789") > 0;
}

static void parse_header(struct uidlist *ul, const char *line)
{
	uint64_t n;
	const char *p;

	if ((p = strstr(line, " V")) != NULL &&
	    str_to_u64(p + 2, strspn(p + 2, "0123456789"), UINT32_MAX,
		       &n) == 0)
		ul->uidvalidity = (uint32_t)n;
	if ((p = strstr(line, " N")) != NULL &&
	    str_to_u64(p + 2, strspn(p + 2, "0123456789"), UINT32_MAX,
		       &n) == 0 && n > ul->uidnext)
		ul->uidnext = (uint32_t)n;
}

/* "<uid> <basename>": appends to tmp; returns false if malformed. */
static bool parse_line(const char *line, size_t len, uint64_t *uid_r,
		       const char **name_r, size_t *name_len_r)
{
	size_t digits = strspn(line, "0123456789");

	if (digits == 0 || digits >= len || line[digits] != ' ' ||
	    str_to_u64(line, digits, UINT32_MAX - 1, uid_r) < 0 ||
	    *uid_r == 0)
		return false;
	*name_r = line + digits + 1;
	*name_len_r = len - digits - 1;
	return *name_len_r > 0 && *name_len_r <= STORE_NAME_MAX &&
		memchr(*name_r, '/', *name_len_r) == NULL;
}

/* Keeps the last entry per uid, then the last per basename. */
static void uidlist_dedup(struct uidlist *ul, struct uidlist_tmp *t,
			  size_t n)
{
	size_t i, j;

	if (n > 1)
		qsort(t, n, sizeof(*t), ent_cmp_uid);
	for (i = j = 0; i < n; i++) {
		if (i + 1 < n && t[i + 1].ent.uid == t[i].ent.uid)
			continue;
		t[j++] = t[i];
	}
	names_base = ul->names;
	if (j > 1)
		qsort(t, j, sizeof(*t), ent_cmp_name);
	ul->ents = xreallocarray(NULL, j ? j : 1, sizeof(*ul->ents));
	for (n = j, i = j = 0; i < n; i++) {
		if (i + 1 < n && name_cmp(ul->names + t[i].ent.name_off,
					  t[i].ent.name_len,
					  ul->names + t[i + 1].ent.name_off,
					  t[i + 1].ent.name_len) == 0)
			continue;
		ul->ents[j++] = t[i].ent;
	}
	ul->count = j;
}

static void uidlist_add(struct uidlist *ul, struct uidlist_tmp **t,
			size_t *n, size_t *cap, size_t *names_len,
			size_t *names_cap, const char *line, size_t len)
{
	const char *name;
	size_t name_len;
	uint64_t uid;

	if (!parse_line(line, len, &uid, &name, &name_len))
		return;
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*t = xreallocarray(*t, *cap, sizeof(**t));
	}
	while (*names_len + name_len > *names_cap) {
		*names_cap = *names_cap ? *names_cap * 2 : 4096;
		ul->names = xrealloc(ul->names, *names_cap);
	}
	memcpy(ul->names + *names_len, name, name_len);
	(*t)[*n].ent.uid = (uint32_t)uid;
	(*t)[*n].ent.name_off = (uint32_t)*names_len;
	(*t)[*n].ent.name_len = (uint16_t)name_len;
	(*t)[*n].seq = (uint32_t)*n;
	(*n)++;
	*names_len += name_len;
	if (uid + 1 > ul->uidnext)
		ul->uidnext = (uint32_t)(uid + 1);
}

int uidlist_read(const char *dir, struct uidlist *ul, char *errbuf,
		 size_t errsize)
{
	size_t n = 0, cap = 0, names_len = 0, names_cap = 0, size = 0;
	struct uidlist_tmp *t = NULL;
	char *line = NULL, *path;
	ssize_t len;
	FILE *f;

	memset(ul, 0, sizeof(*ul));
	ul->uidnext = 1;
	path = xasprintf("%s/%s", dir, STORE_UIDLIST_NAME);
	f = store_fopen_read(path);
	if (f == NULL && errno == ENOENT) {
		/* Never indexed by Heron: keep Dovecot's UIDs (dovecot.c). */
		int ret = dovecot_uidlist_open(dir, &f, errbuf, errsize);

		if (ret < 0 || f == NULL) {
			free(path);
			return ret;
		}
		ul->is_dovecot = true;
	}
	if (f == NULL) {
		int err = errno;

		snprintf(errbuf, errsize, "open(%s) failed: %s", path,
			 strerror(err));
		free(path);
		errno = err;
		return -1;
	}
	for (uint32_t lineno = 0; lineno < UIDLIST_LINES_MAX; lineno++) {
		if ((len = getline(&line, &size, f)) <= 0)
			break;
		if (line[len - 1] != '\n' || len > UIDLIST_LINE_MAX)
			continue;	/* torn last line or junk */
		line[--len] = '\0';
		if (lineno == 0 && is_header(line))
			parse_header(ul, line);
		else
			uidlist_add(ul, &t, &n, &cap, &names_len, &names_cap,
				    line, (size_t)len);
	}
	free(line);
	fclose(f);
	free(path);
	uidlist_dedup(ul, t, n);
	free(t);
	return 0;
}

uint32_t uidlist_lookup(const struct uidlist *ul, const char *basename,
			size_t bn_len)
{
	size_t lo = 0, hi = ul->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct uidlist_ent *e = &ul->ents[mid];
		int r = name_cmp(basename, bn_len, ul->names + e->name_off,
				 e->name_len);

		if (r == 0)
			return e->uid;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

void uidlist_free(struct uidlist *ul)
{
	free(ul->ents);
	free(ul->names);
	memset(ul, 0, sizeof(*ul));
}

static int write_full(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t r = write(fd, data, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += r;
		len -= (size_t)r;
	}
	return 0;
}

static int pwrite_full(int fd, const char *data, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t r = pwrite(fd, data, len, off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

/* Offset of the header's N digits when they are UIDLIST_N_DIGITS wide,
 * and their value; -1 for another header (or none). */
static off_t header_n_offset(int fd, uint32_t *n_r)
{
	char buf[UIDLIST_HEADER_MAX + 1];
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);
	uint64_t n;
	size_t v;

	if (r <= 0)
		return -1;
	buf[r] = '\0';
	if (strchr(buf, '\n') == NULL)
		return -1;
	*strchr(buf, '\n') = '\0';
	if (!is_header(buf))
		return -1;
	v = 3 + strspn(buf + 3, "0123456789") + 2;
	if (strlen(buf + v) != UIDLIST_N_DIGITS ||
	    str_to_u64(buf + v, UIDLIST_N_DIGITS, UINT32_MAX, &n) < 0)
		return -1;
	*n_r = (uint32_t)n;
	return (off_t)v;
}

/* Appends text at the end and raises the header's N to uidnext. */
static int append_lines(int fd, const char *text, size_t len,
			uint32_t uidnext)
{
	char digits[UIDLIST_N_DIGITS + 1];
	uint32_t n;
	off_t n_off = header_n_offset(fd, &n), end;

	if (n_off < 0) {
		errno = ENOENT;	/* old header: the caller rewrites */
		return -1;
	}
	if ((end = lseek(fd, 0, SEEK_END)) < 0 ||
	    pwrite_full(fd, text, len, end) < 0)
		return -1;
	if (uidnext <= n)
		return 0;
	snprintf(digits, sizeof(digits), "%0*u", UIDLIST_N_DIGITS, uidnext);
	return pwrite_full(fd, digits, UIDLIST_N_DIGITS, n_off);
}

int uidlist_append(const char *dir, const char *text, size_t len,
		   uint32_t uidnext, char *errbuf, size_t errsize)
{
	char path[4096];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_UIDLIST_NAME);
	/* No O_APPEND: Linux pwrite() would append the header too. The
	 * LMDB write transaction serialises writers. */
	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		snprintf(errbuf, errsize, "open(%s) failed: %s", path,
			 strerror(err));
		errno = err;
		return -1;
	}
	if (FAULT("uidlist-append") ||
	    append_lines(fd, text, len, uidnext) < 0 ||
	    fdatasync(fd) < 0) {
		err = errno;
		snprintf(errbuf, errsize, "write(%s) failed: %s", path,
			 strerror(err));
		close(fd);
		errno = err;
		return -1;
	}
	if (close(fd) < 0) {
		err = errno;
		snprintf(errbuf, errsize, "close(%s) failed: %s", path,
			 strerror(err));
		errno = err;
		return -1;
	}
	return 0;
}

/* Writes the header and every message of rec into fd. */
static int uidlist_write_all(int fd, struct store_index *idx, MDB_txn *txn,
			     struct index_mbox *rec)
{
	struct index_msg_view msg;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	char line[STORE_NAME_MAX + 32];
	uint32_t lines = 0;
	int rc, n;

	n = snprintf(line, sizeof(line), "1 V%u N%0*u\n", rec->uidvalidity,
		     UIDLIST_N_DIGITS, rec->uidnext);
	if (write_full(fd, line, (size_t)n) < 0)
		return -1;
	if ((rc = mdb_cursor_open(txn, idx->dbi_msg, &cur)) != 0) {
		errno = store_index_errno(rc);
		return -1;
	}
	index_msg_key(kbuf, rec->id, 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8 || memcmp(key.mv_data, kbuf, 4) != 0 ||
		    index_msg_decode(&val, &msg) < 0)
			break;
		n = snprintf(line, sizeof(line), "%u %.*s\n",
			     store_get_be32((uint8_t *)key.mv_data + 4),
			     (int)msg.hdr.basename_len, msg.basename);
		if (write_full(fd, line, (size_t)n) < 0) {
			mdb_cursor_close(cur);
			return -1;
		}
		lines++;
	}
	mdb_cursor_close(cur);
	rec->uidlist_lines = lines;
	return 0;
}

int uidlist_rewrite(const char *dir, struct store_index *idx, MDB_txn *txn,
		    struct index_mbox *rec, char *errbuf, size_t errsize)
{
	char path[4096], tmp[4096];
	const char *call = "write";
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_UIDLIST_NAME);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", dir, STORE_UIDLIST_NAME,
		 (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		snprintf(errbuf, errsize, "open(%s) failed: %s", tmp,
			 strerror(err));
		errno = err;
		return -1;
	}
	if (FAULT("uidlist-write") ||
	    uidlist_write_all(fd, idx, txn, rec) < 0 ||
	    (call = "fsync", FAULT("uidlist-fsync") || fsync(fd) < 0)) {
		err = errno;
		close(fd);
		goto fail;
	}
	if ((call = "close", close(fd) < 0) ||
	    (call = "rename", FAULT("uidlist-rename") ||
			      rename(tmp, path) < 0)) {
		err = errno;
		goto fail;
	}
	return 0;
fail:
	snprintf(errbuf, errsize, "%s(%s) failed: %s", call, tmp,
		 strerror(err));
	unlink(tmp);
	errno = err;
	return -1;
}
