/* delivery.c: writes a message into tmp/ and commits it to new/ (or cur/
 * with flags) the Maildir way: fsync the file, link() it to its final
 * name (link fails rather than overwrite), unlink the tmp/ name, fsync
 * the directory. Only then is the message acknowledged. Any failure
 * removes what was written: no partial file is ever visible in new/ or
 * cur/. File name: "<secs>.M<usecs>P<pid>Q<counter>.<host>,S=<size>,
 * W=<vsize>" (usecs zero-padded so names sort in delivery order). */
#include "store/store_private.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static unsigned delivery_counter;

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

void delivery_new_base(char *buf, size_t size)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(buf, size, "%lld.M%06ldP%ldQ%u.%s", (long long)tv.tv_sec,
		 (long)tv.tv_usec, (long)getpid(), ++delivery_counter,
		 delivery_hostname());
}

int store_delivery_begin(struct store_user *su, const char *mailbox,
			 struct store_delivery **d_r, const char **error_r)
{
	struct store_delivery *d;
	char *key, *dir;

	if (maildir_resolve(su, mailbox, &key, &dir) < 0)
		return store_set_error(su->error, error_r,
				       "invalid mailbox name");
	d = xcalloc(1, sizeof(*d));
	d->su = su;
	d->key = key;
	d->dir = dir;
	d->fd = -1;
	for (int tries = 0; tries < 10 && d->fd < 0; tries++) {
		delivery_new_base(d->base, sizeof(d->base));
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
	const unsigned char *p = data, *lf, *end = p + len;

	/* vsize counts a bare LF as CRLF: find LFs with memchr and look
	 * at the byte before each (or the previous chunk's last byte). */
	for (const unsigned char *s = p; s < end; s = lf + 1) {
		lf = memchr(s, '\n', (size_t)(end - s));
		if (lf == NULL)
			break;
		if (lf == p ? !d->last_was_cr : lf[-1] != '\r')
			d->vsize++;
	}
	if (len > 0)
		d->last_was_cr = p[len - 1] == '\r';
	d->size += len;
	d->vsize += len;
	while (len > 0) {
		ssize_t r = FAULT("delivery-write") ? -1 :
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
	if (FAULT("delivery-fsync") || fsync(d->fd) < 0)
		goto fail;
	call = "close";
	if (FAULT("delivery-close")) {
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
			 uint64_t keywords, char *dest, size_t size)
{
	char name[STORE_NAME_MAX + 1], rel[STORE_NAME_MAX + 64];
	const char *sub = flags == 0 && keywords == 0 ? "new" : "cur";
	int len;

	len = snprintf(name, sizeof(name), "%s,S=%llu,W=%llu", d->base,
		       (unsigned long long)d->size,
		       (unsigned long long)d->vsize);
	if (len < 0 || (size_t)len >= sizeof(name)) {
		errno = ENAMETOOLONG;
		return store_set_error(d->su->error, NULL, "name too long");
	}
	if (flags == 0 && keywords == 0)
		snprintf(rel, sizeof(rel), "new/%s", name);
	else if (maildir_cur_path(rel, sizeof(rel), name, (size_t)len,
				  flags, keywords) > STORE_NAME_MAX + 4) {
		errno = ENAMETOOLONG;
		return store_set_error(d->su->error, NULL, "name too long");
	}
	snprintf(dest, size, "%s/%s", d->dir, rel);
	if (FAULT("delivery-link") || link(d->tmp_path, dest) < 0)
		return store_set_error(d->su->error, NULL,
				       "link(%s, %s) failed: %s", d->tmp_path,
				       dest, strerror(errno));
	if (unlink(d->tmp_path) < 0)
		log_warn("store: unlink(%s) failed: %s", d->tmp_path,
			 strerror(errno));
	free(d->tmp_path);
	d->tmp_path = NULL;
	if (FAULT("delivery-dir-fsync") ||
	    maildir_fsync_dir(d->dir, sub) < 0) {
		int err = errno;

		store_set_error(d->su->error, NULL, "fsync(%s/%s) failed: %s",
				d->dir, sub, strerror(err));
		unlink(dest);
		errno = err;
		return -1;
	}
	return 0;
}

static void delivery_mbox(struct store_delivery *d,
			  struct store_mailbox *mb)
{
	memset(mb, 0, sizeof(*mb));
	mb->su = d->su;
	mb->dir = d->dir;
	mb->key = d->key;
	mb->pop3_fd = -1;
}

static int delivery_fail(struct store_delivery *d, struct store_mailbox *mb,
			 int rc, const char *what)
{
	if (rc == -1) {
		int err = errno;

		store_set_error(d->su->error, NULL, "%s",
				store_errbuf(&mb->error));
		errno = err;
		return -1;
	}
	errno = store_index_errno(rc);
	return store_set_error(d->su->error, NULL, "%s in %s failed: %s",
			       what, d->dir, mdb_strerror(rc));
}

/* Write txn on the mailbox's record; a mailbox not indexed yet is synced
 * (built) first. */
static int delivery_txn(struct store_delivery *d, struct store_mailbox *mb,
			MDB_txn **txn_r)
{
	struct store_index *idx = d->su->index;
	int rc;

	for (int tries = 0; tries < 2; tries++) {
		if ((rc = store_index_txn_begin(idx, 0, txn_r)) != 0)
			return rc;
		rc = index_get_mbox(idx, *txn_r, d->key, &mb->rec);
		if (rc == 0)
			return 0;
		store_txn_abort(*txn_r);
		if (rc != MDB_NOTFOUND || store_sync(mb, false) < 0)
			return rc == MDB_NOTFOUND ? -1 : rc;
	}
	return MDB_NOTFOUND;
}

/* delivery_keywords with mb (its error buffer freed by the caller). */
static int delivery_keywords_mb(struct store_delivery *d,
				struct store_mailbox *mb,
				const char *const *names, size_t n,
				uint64_t *kw_r)
{
	MDB_txn *txn;
	unsigned i;
	int rc;

	if ((rc = delivery_txn(d, mb, &txn)) != 0)
		return delivery_fail(d, mb, rc, "keywords");
	for (size_t k = 0; k < n && rc == 0; k++) {
		rc = keyword_lookup(d->su->index, txn, mb->rec.id, d->dir,
				    names[k], true, &i);
		if (rc == 0)
			*kw_r |= UINT64_C(1) << i;
	}
	if (rc != 0) {
		store_txn_abort(txn);
		if (rc == EINVAL || rc == ENOSPC) {
			errno = rc;
			return store_set_error(d->su->error, NULL, "%s",
				rc == EINVAL ? "invalid keyword name" :
				"too many keywords in mailbox");
		}
		return delivery_fail(d, mb, rc, "keywords");
	}
	rc = store_txn_commit(txn);
	return rc == 0 ? 0 : delivery_fail(d, mb, rc, "keywords");
}

/* Keyword names -> bits of the destination's table (created). */
static int delivery_keywords(struct store_delivery *d,
			     const char *const *names, size_t n,
			     uint64_t *kw_r)
{
	struct store_mailbox mb;
	int ret;

	*kw_r = 0;
	if (n == 0)
		return 0;
	delivery_mbox(d, &mb);
	ret = delivery_keywords_mb(d, &mb, names, n, kw_r);
	free(mb.error);
	return ret;
}

/* Indexes the delivered file at once (no directory scan) and returns its
 * UID. */
static int delivery_index(struct store_delivery *d, const char *dest,
			  uint32_t flags, uint64_t keywords,
			  time_t internal_date, uint32_t *uid_r)
{
	const char *name = strrchr(dest, '/') + 1;
	struct index_new_file f;
	struct store_mailbox mb;
	MDB_txn *txn;
	int rc;

	memset(&f, 0, sizeof(f));
	f.hdr.flags = flags;
	f.hdr.keywords = keywords;
	f.hdr.basename_len = (uint16_t)strcspn(name, ":");
	f.hdr.size = d->size;
	f.hdr.vsize = d->vsize;
	f.hdr.internal_date = internal_date != 0 ? internal_date : time(NULL);
	snprintf(f.path, sizeof(f.path), "%s", name - 4);
	delivery_mbox(d, &mb);
	if ((rc = delivery_txn(d, &mb, &txn)) != 0)
		goto out_fail;
	rc = index_add_files(&mb, txn, &mb.rec, &f, 1, uid_r);
	if (rc == 0)
		rc = index_put_mbox(d->su->index, txn, d->key, &mb.rec);
	if (rc == 0)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	if (rc == 0)
		goto out;
out_fail:
	rc = delivery_fail(d, &mb, rc, "indexing");
out:
	free(mb.error);
	return rc;
}

int store_delivery_commit_keywords(struct store_delivery **_d, uint32_t flags,
				   const char *const *keywords,
				   size_t keyword_count, time_t internal_date,
				   uint32_t *uid_r, const char **error_r)
{
	struct store_delivery *d = *_d;
	char dest[4096];
	uint64_t kw = 0;
	int ret = -1, err;

	if (delivery_keywords(d, keywords, keyword_count, &kw) < 0 ||
	    delivery_finish_file(d, internal_date) < 0 ||
	    delivery_link(d, flags, kw, dest, sizeof(dest)) < 0)
		goto out;
	FAULT_POINT("delivery-index");
	if (uid_r != NULL && delivery_index(d, dest, flags, kw,
					    internal_date, uid_r) < 0) {
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
		*error_r = store_errbuf(&d->su->error);
	delivery_free(_d);
	errno = err;
	return ret;
}

int store_delivery_commit(struct store_delivery **d, uint32_t flags,
			  time_t internal_date, uint32_t *uid_r,
			  const char **error_r)
{
	return store_delivery_commit_keywords(d, flags, NULL, 0,
					      internal_date, uid_r, error_r);
}

void store_delivery_abort(struct store_delivery **d)
{
	if (d == NULL || *d == NULL)
		return;
	delivery_free(d);
}
