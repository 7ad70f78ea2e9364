/* copy.c: COPY (RFC 3501 6.4.7) between folders of one user: each
 * message is hard-linked (copied when link() cannot work, e.g. across
 * file systems) into the destination's cur/ under the same basename with
 * the same flags (Dovecot does the same; a second copy into the same
 * folder gets a fresh basename). Keywords are mapped by name into the
 * destination's table. The destination's cur/ is fsync()ed, then all
 * copies are indexed in one write transaction (UIDs in order, for
 * UIDPLUS COPYUID). On failure the copies made are removed. */
#include "store/store_private.h"
#include "lib/fault.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct copy_ctx {
	struct store_mailbox *src, *dst;
	struct store_index *idx;
	MDB_txn *txn;
	struct index_mbox src_rec, dst_rec;
	int kw_map[STORE_KEYWORDS_MAX];	/* src bit -> dst bit, -1 unset */
	struct index_new_file *files;
	char **error;		/* &src->error */
};

static int copy_data(const char *from, const char *to)
{
	char buf[65536];
	ssize_t r;
	int in, out, ret = -1, err;

	if ((in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		goto out_in;
	while ((r = read(in, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || write(out, buf, (size_t)r) != r)
			goto out_out;
	}
	if (fsync(out) == 0)
		ret = 0;
out_out:
	err = errno;
	if (close(out) < 0 && ret == 0)
		ret = -1;
	if (ret < 0)
		unlink(to);
	errno = err;
out_in:
	err = errno;
	close(in);
	errno = err;
	return ret;
}

/* link(), falling back to a copy where the file system will not. */
static int link_or_copy(const char *from, const char *to)
{
	if (link(from, to) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
	    errno != ENOTSUP)
		return -1;
	return copy_data(from, to);
}

static int map_keywords(struct copy_ctx *c, uint64_t src_kw,
			uint64_t *dst_kw_r)
{
	char name[STORE_KEYWORD_NAME_MAX + 1];
	unsigned di;
	int rc;

	*dst_kw_r = 0;
	for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if ((src_kw & (UINT64_C(1) << i)) == 0)
			continue;
		if (c->kw_map[i] < 0) {
			rc = keyword_name(c->idx, c->txn, c->src_rec.id, i,
					  name, sizeof(name));
			if (rc == MDB_NOTFOUND)
				continue;	/* letter without a name */
			if (rc == 0)
				rc = keyword_lookup(c->idx, c->txn,
						    c->dst_rec.id, c->dst->dir,
						    name, true, &di);
			if (rc == ENOSPC)
				continue;	/* dst full: dropped */
			if (rc != 0)
				return rc;
			c->kw_map[i] = (int)di;
		}
		*dst_kw_r |= UINT64_C(1) << c->kw_map[i];
	}
	return 0;
}

/* Links one source message into dst's cur/; f->path[0] stays '\0' when
 * the message no longer exists. */
static int copy_one(struct copy_ctx *c, uint32_t uid,
		    struct index_new_file *f)
{
	struct index_msg_view msg;
	char from[4096], to[4096], bn[STORE_NAME_MAX + 1];
	char rel[STORE_NAME_MAX + 8];
	int rc, len;

	rc = index_get_msg(c->idx, c->txn, c->src_rec.id, uid, &msg);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	f->hdr = msg.hdr;
	if ((rc = map_keywords(c, msg.hdr.keywords, &f->hdr.keywords)) != 0)
		return rc;
	memcpy(bn, msg.basename, msg.hdr.basename_len);
	bn[msg.hdr.basename_len] = '\0';
	if (c->src == c->dst ||
	    strcmp(c->src->dir, c->dst->dir) == 0) {
		/* A copy within one folder needs its own basename, or the
		 * next sync takes it for the original renamed. */
		delivery_new_base(bn, sizeof(bn) - 32);
		snprintf(bn + strlen(bn), 32, ",S=%llu,W=%llu",
			 (unsigned long long)msg.hdr.size,
			 (unsigned long long)msg.hdr.vsize);
	}
	snprintf(from, sizeof(from), "%s/%.*s", c->src->dir,
		 (int)msg.hdr.path_len, msg.path);
	for (int tries = 0; tries < 3; tries++) {
		len = maildir_cur_path(f->path, sizeof(f->path), bn,
				       strlen(bn), f->hdr.flags,
				       f->hdr.keywords);
		if (len < 0 || len > STORE_NAME_MAX + 4) {
			errno = ENAMETOOLONG;
			return store_set_error(*c->error, NULL,
					       "file name too long");
		}
		snprintf(to, sizeof(to), "%s/%s", c->dst->dir, f->path);
		if (!FAULT("copy-link") && link_or_copy(from, to) == 0) {
			f->hdr.basename_len = (uint16_t)strlen(bn);
			return 0;
		}
		if (errno == ENOENT && tries == 0 &&
		    maildir_find(c->src->dir, bn, strlen(bn), rel,
				 sizeof(rel)) > 0) {
			/* renamed meanwhile by a flag change */
			snprintf(from, sizeof(from), "%s/%s", c->src->dir, rel);
			continue;
		}
		if (errno != EEXIST)
			break;
		/* Same basename already in dst (copied before). */
		delivery_new_base(bn, sizeof(bn) - 32);
		snprintf(bn + strlen(bn), 32, ",S=%llu,W=%llu",
			 (unsigned long long)msg.hdr.size,
			 (unsigned long long)msg.hdr.vsize);
	}
	f->path[0] = '\0';
	if (errno == ENOENT)
		return 0;	/* expunged by someone else */
	return store_set_error(*c->error, NULL, "link(%s, %s) failed: %s",
			       from, to, strerror(errno));
}

static void copy_unlink_all(struct copy_ctx *c, size_t n)
{
	char path[4096];

	for (size_t i = 0; i < n; i++) {
		if (c->files[i].path[0] == '\0')
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->dst->dir,
			 c->files[i].path);
		unlink(path);
	}
}

static int copy_txn(struct copy_ctx *c, const uint32_t *uids, size_t count,
		    uint32_t *dst_uids_r)
{
	size_t i;
	int rc;

	if ((rc = index_get_mbox(c->idx, c->txn, c->src->key,
				 &c->src_rec)) != 0 ||
	    (rc = index_get_mbox(c->idx, c->txn, c->dst->key,
				 &c->dst_rec)) != 0)
		return rc;
	for (i = 0; i < count && rc == 0; i++)
		rc = copy_one(c, uids[i], &c->files[i]);
	if (rc == 0 && (FAULT("copy-dir-fsync") ||
			maildir_fsync_dir(c->dst->dir, "cur") < 0))
		rc = store_set_error(*c->error, NULL, "fsync(%s/cur): %s",
				     c->dst->dir, strerror(errno));
	if (rc == 0)
		rc = index_add_files(c->dst, c->txn, &c->dst_rec, c->files,
				     count, dst_uids_r);
	if (rc == 0)
		rc = index_put_mbox(c->idx, c->txn, c->dst->key, &c->dst_rec);
	if (rc != 0)
		copy_unlink_all(c, i);
	return rc;
}

/* Creates in dst the keywords the copies will carry, in a transaction
 * of its own committed before any file is linked (as delivery does):
 * after a crash between the links and the copy's commit, the next sync
 * finds each keyword letter's name in dst's table. Without it the
 * letters were dropped (tests/crash: "copy-dir-fsync=kill"). */
static int copy_prepare_keywords(struct copy_ctx *c, const uint32_t *uids,
				 size_t count)
{
	struct index_msg_view msg;
	uint64_t kw;
	int rc;

	if ((rc = store_index_txn_begin(c->idx, 0, &c->txn)) != 0)
		return rc;
	if ((rc = index_get_mbox(c->idx, c->txn, c->src->key,
				 &c->src_rec)) == 0)
		rc = index_get_mbox(c->idx, c->txn, c->dst->key, &c->dst_rec);
	for (size_t i = 0; i < count && rc == 0; i++) {
		rc = index_get_msg(c->idx, c->txn, c->src_rec.id, uids[i],
				   &msg);
		if (rc == 0 && msg.hdr.keywords != 0)
			rc = map_keywords(c, msg.hdr.keywords, &kw);
		else if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc != 0) {
		store_txn_abort(c->txn);
		return rc;
	}
	return store_txn_commit(c->txn);
}

int store_mailbox_copy(struct store_mailbox *src, const uint32_t *src_uids,
		       size_t count, struct store_mailbox *dst,
		       uint32_t *dst_uids_r, const char **error_r)
{
	struct copy_ctx c;
	int rc, err;

	memset(&c, 0, sizeof(c));
	c.src = src;
	c.dst = dst;
	c.idx = src->su->index;
	c.error = &src->error;
	memset(c.kw_map, -1, sizeof(c.kw_map));
	if (count == 0)
		return 0;
	c.files = xcalloc(count, sizeof(*c.files));
	if ((rc = copy_prepare_keywords(&c, src_uids, count)) == 0 &&
	    (rc = store_index_txn_begin(c.idx, 0, &c.txn)) == 0) {
		rc = copy_txn(&c, src_uids, count, dst_uids_r);
		if (rc == 0) {
			rc = store_txn_commit(c.txn);
			if (rc != 0)
				copy_unlink_all(&c, count);
		} else {
			err = errno;
			store_txn_abort(c.txn);
			errno = err;
		}
	}
	free(c.files);
	if (rc == 0)
		return 0;
	if (rc == -1) {
		*error_r = store_errbuf(&src->error);
		return -1;
	}
	errno = store_index_errno(rc);
	return store_set_error(src->error, error_r, "copy to %s failed: %s",
			       dst->dir, mdb_strerror(rc));
}
