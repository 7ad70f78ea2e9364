/* delivery.c: writes a message into tmp/ and commits it to new/ (or cur/
 * with flags) the Maildir way: fsync the file, link() it to its final
 * name (link fails rather than overwrite), unlink the tmp/ name, fsync
 * the directory. Only then is the message acknowledged. Any failure
 * removes what was written: no partial file is ever visible in new/ or
 * cur/. File name: "<secs>.M<usecs>P<pid>Q<counter>.<host>,S=<size>,
 * W=<vsize>" (usecs zero-padded so names sort in delivery order). */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

enum store_fault_step store_fault_step = STORE_FAULT_NONE;
int store_fault_errno;

static unsigned delivery_counter;

static bool fault(enum store_fault_step step)
{
	if (store_fault_step != step)
		return false;
	errno = store_fault_errno;
	return true;
}

/* gethostname() with '/', ':' and ',' escaped as in the Maildir spec
 * ("\057", "\072"; ',' would confuse the ",S=" fields). */
static const char *delivery_hostname(void)
{
	static char host[64];
	char raw[64];
	size_t o = 0;

	if (host[0] != '\0')
		return host;
	if (gethostname(raw, sizeof(raw)) < 0 || raw[0] == '\0')
		snprintf(raw, sizeof(raw), "localhost");
	raw[sizeof(raw) - 1] = '\0';
	for (const char *p = raw; *p != '\0' && o + 5 < sizeof(host); p++) {
		if (*p == '/' || *p == ':' || *p == ',') {
			o += (size_t)snprintf(host + o, sizeof(host) - o,
					      "\\%03o", (unsigned char)*p);
		} else if ((unsigned char)*p > 0x20 && *p != 0x7f) {
			host[o++] = *p;
		}
	}
	host[o] = '\0';
	return host;
}

static void delivery_free(struct store_delivery **_d)
{
	struct store_delivery *d = *_d;

	*_d = NULL;
	if (d->fd >= 0)
		close(d->fd);
	if (d->tmp_path != NULL)
		unlink(d->tmp_path);
	free(d->tmp_path);
	free(d->key);
	free(d->dir);
	free(d);
}

int store_delivery_begin(struct store_user *su, const char *mailbox,
			 struct store_delivery **d_r, const char **error_r)
{
	struct store_delivery *d;
	char *key, *dir;
	struct timeval tv;

	if (maildir_resolve(su, mailbox, &key, &dir) < 0)
		return store_set_error(su->error, error_r,
				       "invalid mailbox name");
	d = xcalloc(1, sizeof(*d));
	d->su = su;
	d->key = key;
	d->dir = dir;
	d->fd = -1;
	for (int tries = 0; tries < 10 && d->fd < 0; tries++) {
		gettimeofday(&tv, NULL);
		snprintf(d->base, sizeof(d->base), "%lld.M%06ldP%ldQ%u.%s",
			 (long long)tv.tv_sec, (long)tv.tv_usec,
			 (long)getpid(), ++delivery_counter,
			 delivery_hostname());
		free(d->tmp_path);
		d->tmp_path = xasprintf("%s/tmp/%s", dir, d->base);
		d->fd = open(d->tmp_path, O_WRONLY | O_CREAT | O_EXCL |
			     O_CLOEXEC, 0600);
		if (d->fd < 0 && errno != EEXIST)
			break;
	}
	if (d->fd < 0) {
		store_set_error(su->error, error_r, "open(%s) failed: %s",
				d->tmp_path, strerror(errno));
		free(d->tmp_path);
		d->tmp_path = NULL;	/* not ours: do not unlink */
		delivery_free(&d);
		return -1;
	}
	*d_r = d;
	return 0;
}

int store_delivery_write(struct store_delivery *d, const void *data,
			 size_t len, const char **error_r)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && !d->last_was_cr)
			d->vsize++;
		d->last_was_cr = p[i] == '\r';
	}
	d->size += len;
	d->vsize += len;
	while (len > 0) {
		ssize_t r = fault(STORE_FAULT_WRITE) ? -1 :
			write(d->fd, p, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return store_set_error(d->su->error, error_r,
					       "write(%s) failed: %s",
					       d->tmp_path, strerror(errno));
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* fsync + close the tmp file; sets the mtime first when asked. */
static int delivery_finish_file(struct store_delivery *d,
				time_t internal_date)
{
	const char *call = "futimens";
	int ret;

	if (internal_date != 0) {
		struct timespec ts[2] = {
			{ .tv_nsec = UTIME_OMIT },
			{ .tv_sec = internal_date },
		};

		if (futimens(d->fd, ts) < 0)
			goto fail;
	}
	call = "fsync";
	if (fault(STORE_FAULT_FSYNC) || fsync(d->fd) < 0)
		goto fail;
	call = "close";
	if (fault(STORE_FAULT_CLOSE)) {
		int err = errno;

		close(d->fd);
		errno = err;
		ret = -1;
	} else {
		ret = close(d->fd);
	}
	d->fd = -1;
	if (ret == 0)
		return 0;
fail:
	return store_set_error(d->su->error, NULL, "%s(%s) failed: %s", call,
			       d->tmp_path, strerror(errno));
}

/* link()s tmp into its final name; dest_r gets the absolute path. */
static int delivery_link(struct store_delivery *d, uint32_t flags,
			 char *dest, size_t size)
{
	char name[STORE_NAME_MAX + 1], rel[STORE_NAME_MAX + 64];
	int len;

	len = snprintf(name, sizeof(name), "%s,S=%llu,W=%llu", d->base,
		       (unsigned long long)d->size,
		       (unsigned long long)d->vsize);
	if (len < 0 || (size_t)len >= sizeof(name)) {
		errno = ENAMETOOLONG;
		return store_set_error(d->su->error, NULL, "name too long");
	}
	if (flags == 0)
		snprintf(rel, sizeof(rel), "new/%s", name);
	else
		maildir_cur_path(rel, sizeof(rel), name, (size_t)len, flags,
				 NULL, 0);
	snprintf(dest, size, "%s/%s", d->dir, rel);
	if (fault(STORE_FAULT_LINK) || link(d->tmp_path, dest) < 0)
		return store_set_error(d->su->error, NULL,
				       "link(%s, %s) failed: %s", d->tmp_path,
				       dest, strerror(errno));
	if (unlink(d->tmp_path) < 0)
		log_warn("store: unlink(%s) failed: %s", d->tmp_path,
			 strerror(errno));
	free(d->tmp_path);
	d->tmp_path = NULL;
	if (fault(STORE_FAULT_DIR_FSYNC) ||
	    maildir_fsync_dir(d->dir, flags == 0 ? "new" : "cur") < 0) {
		int err = errno;

		store_set_error(d->su->error, NULL, "fsync(%s/%s) failed: %s",
				d->dir, flags == 0 ? "new" : "cur",
				strerror(err));
		unlink(dest);
		errno = err;
		return -1;
	}
	return 0;
}

/* Indexes the delivered file at once and returns its UID. */
static int delivery_index(struct store_delivery *d, const char *dest,
			  uint32_t *uid_r)
{
	struct store_index *idx = d->su->index;
	const char *bn = strrchr(dest, '/') + 1;
	struct store_mailbox mb;
	struct index_mbox rec;
	MDB_txn *txn;
	int rc;

	memset(&mb, 0, sizeof(mb));
	mb.su = d->su;
	mb.dir = d->dir;
	mb.key = d->key;
	mb.pop3_fd = -1;
	if (store_sync(&mb, false) < 0) {
		int err = errno;

		snprintf(d->su->error, sizeof(d->su->error), "%s", mb.error);
		errno = err;
		return -1;
	}
	*uid_r = 0;
	rc = store_index_txn_begin(idx, MDB_RDONLY, &txn);
	if (rc == 0) {
		rc = index_get_mbox(idx, txn, d->key, &rec);
		if (rc == 0)
			rc = index_get_bname(idx, txn, rec.id, bn,
					     strcspn(bn, ":"), uid_r);
		mdb_txn_abort(txn);
	}
	if (rc == 0 && *uid_r == 0)
		rc = MDB_NOTFOUND;
	if (rc != 0) {
		errno = store_index_errno(rc);
		return store_set_error(d->su->error, NULL,
				       "indexing %s failed: %s", dest,
				       mdb_strerror(rc));
	}
	return 0;
}

int store_delivery_commit(struct store_delivery **_d, uint32_t flags,
			  time_t internal_date, uint32_t *uid_r,
			  const char **error_r)
{
	struct store_delivery *d = *_d;
	char dest[4096];
	int ret = -1, err;

	if (delivery_finish_file(d, internal_date) < 0 ||
	    delivery_link(d, flags, dest, sizeof(dest)) < 0)
		goto out;
	if (uid_r != NULL && delivery_index(d, dest, uid_r) < 0) {
		/* Not acknowledged, so not kept: the sender retries. */
		err = errno;
		unlink(dest);
		errno = err;
		goto out;
	}
	ret = 0;
out:
	err = errno;
	if (ret < 0)
		*error_r = d->su->error;
	delivery_free(_d);
	errno = err;
	return ret;
}

void store_delivery_abort(struct store_delivery **d)
{
	if (d == NULL || *d == NULL)
		return;
	delivery_free(d);
}
