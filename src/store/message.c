/* message.c: per-message operations on an open mailbox: open (following
 * renames made by other sessions or MUAs), flag changes (rename to
 * cur/<basename>:2,<letters>) and expunge. Each runs in one LMDB write
 * transaction, so file renames/unlinks and index updates of heron
 * processes never interleave. Does not touch other views: they see the
 * changes at their next sync. */
#include "store/store_private.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct msg_txn {
	struct store_mailbox *mb;
	struct store_index *idx;
	MDB_txn *txn;
	struct index_mbox rec;
};

static int txn_begin(struct msg_txn *t, struct store_mailbox *mb)
{
	int rc;

	t->mb = mb;
	t->idx = mb->su->index;
	for (int tries = 0;; tries++) {
		rc = store_index_txn_begin(t->idx, 0, &t->txn);
		if (rc != 0)
			return rc;
		rc = index_get_mbox(t->idx, t->txn, mb->key, &t->rec);
		if (rc == 0 && t->rec.id == mb->rec.id)
			return 0;
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		if ((rc != 0 && rc != MDB_NOTFOUND) || tries > 0)
			return rc != 0 ? rc : MDB_NOTFOUND;
		/* The index was rebuilt since our last sync: the mailbox
		 * has a new id (UIDs are kept). Refresh it, not the view. */
		if (store_sync(mb, false) < 0)
			return -1;
	}
}

static void txn_abort_keep_errno(MDB_txn *txn)
{
	int err = errno;

	mdb_txn_abort(txn);
	errno = err;
}

/* Sets mb->error from an LMDB code (or keeps it for -1). */
static int mdb_fail(struct store_mailbox *mb, const char *what, int rc,
		    const char **error_r)
{
	if (rc == -1) {
		if (error_r != NULL)
			*error_r = mb->error;
		return -1;
	}
	errno = store_index_errno(rc);
	return store_set_error(mb->error, error_r, "%s in %s failed: %s",
			       what, mb->dir, mdb_strerror(rc));
}

static struct store_msg *view_find(struct store_mailbox *mb, uint32_t uid)
{
	size_t lo = 0, hi = mb->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (mb->msgs[mid].uid == uid)
			return &mb->msgs[mid];
		if (mb->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Updates the view's copy; the path block has room for
 * basename + STORE_PATH_EXTRA (see sync.c view_add). */
static void view_update(struct store_mailbox *mb, uint32_t uid,
			const struct index_msg *hdr, const char *path)
{
	struct store_msg *m = view_find(mb, uid);
	size_t len = strlen(path);

	if (m == NULL)
		return;
	m->flags = hdr->flags;
	m->modseq = hdr->modseq;
	if (len < strlen(m->basename) + STORE_PATH_EXTRA)
		memcpy(m->path, path, len + 1);
}

/* Locates the file for uid (it may have been renamed) and records its
 * current path; *path_r gets "new/.." or "cur/..". */
static int relocate(struct msg_txn *t, uint32_t uid, char *path_r,
		    size_t size)
{
	struct index_msg_view msg;
	struct index_msg hdr;
	char bn[STORE_NAME_MAX + 1];
	uint32_t flags;
	int rc, found;

	if ((rc = index_get_msg(t->idx, t->txn, t->rec.id, uid, &msg)) != 0)
		return rc;
	hdr = msg.hdr;
	memcpy(bn, msg.basename, hdr.basename_len);
	bn[hdr.basename_len] = '\0';
	found = maildir_find(t->mb->dir, bn, hdr.basename_len, path_r, size);
	if (found <= 0) {
		if (found == 0)
			errno = ENOENT;
		store_set_error(t->mb->error, NULL, "message %s: %s", bn,
				strerror(errno));
		return -1;
	}
	if (hdr.path_len == strlen(path_r) &&
	    memcmp(msg.path, path_r, hdr.path_len) == 0)
		return 0;
	flags = strncmp(path_r, "cur/", 4) == 0 ?
		maildir_name_flags(path_r, strlen(path_r)) : 0;
	if (flags != hdr.flags) {
		hdr.flags = flags;
		hdr.modseq = ++t->rec.highestmodseq;
	}
	hdr.path_len = (uint16_t)strlen(path_r);
	rc = index_put_msg(t->idx, t->txn, t->rec.id, uid, &hdr, bn, path_r);
	if (rc == 0)
		rc = index_put_mbox(t->idx, t->txn, t->mb->key, &t->rec);
	if (rc == 0)
		view_update(t->mb, uid, &hdr, path_r);
	return rc;
}

int store_msg_open(struct store_mailbox *mb, const struct store_msg *msg,
		   const char **error_r)
{
	struct msg_txn t;
	char path[4096], rel[STORE_NAME_MAX + 8];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", mb->dir, msg->path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		goto fail;
	/* Renamed by a flag change or new/ -> cur/ elsewhere: find it. */
	if ((rc = txn_begin(&t, mb)) != 0)
		return mdb_fail(mb, "message lookup", rc, error_r);
	rc = relocate(&t, msg->uid, rel, sizeof(rel));
	if (rc == 0)
		rc = mdb_txn_commit(t.txn);
	else
		txn_abort_keep_errno(t.txn);
	if (rc == MDB_NOTFOUND) {
		errno = ENOENT;
		return store_set_error(mb->error, error_r,
				       "message uid=%u expunged", msg->uid);
	}
	if (rc != 0)
		return mdb_fail(mb, "message lookup", rc, error_r);
	snprintf(path, sizeof(path), "%s/%s", mb->dir, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
fail:
	return store_set_error(mb->error, error_r, "open(%s) failed: %s",
			       path, strerror(errno));
}

/* Renames the file of msg to new_rel (finding it first if someone else
 * renamed it). */
static int rename_msg(struct msg_txn *t, const struct index_msg_view *msg,
		      const char *new_rel)
{
	char from[4096], to[4096], rel[STORE_NAME_MAX + 8];

	snprintf(from, sizeof(from), "%s/%.*s", t->mb->dir,
		 (int)msg->hdr.path_len, msg->path);
	snprintf(to, sizeof(to), "%s/%s", t->mb->dir, new_rel);
	if (strcmp(from, to) == 0)
		return 0;
	if (rename(from, to) == 0)
		return 0;
	if (errno == ENOENT) {
		char bn[STORE_NAME_MAX + 1];
		int found;

		memcpy(bn, msg->basename, msg->hdr.basename_len);
		bn[msg->hdr.basename_len] = '\0';
		found = maildir_find(t->mb->dir, bn, msg->hdr.basename_len,
				     rel, sizeof(rel));
		if (found == 0)
			errno = ENOENT;
		if (found > 0) {
			snprintf(from, sizeof(from), "%s/%s", t->mb->dir, rel);
			if (strcmp(from, to) == 0 || rename(from, to) == 0)
				return 0;
		}
	}
	return store_set_error(t->mb->error, NULL,
			       "rename(%s, %s) failed: %s", from, to,
			       strerror(errno));
}

int store_msg_set_flags(struct store_mailbox *mb, uint32_t uid,
			uint32_t flags, const char **error_r)
{
	struct index_msg_view msg;
	struct index_msg hdr;
	struct msg_txn t;
	char bn[STORE_NAME_MAX + 1], rel[STORE_NAME_MAX + 64];
	int rc, len;

	if ((rc = txn_begin(&t, mb)) != 0)
		return mdb_fail(mb, "flag change", rc, error_r);
	if ((rc = index_get_msg(t.idx, t.txn, t.rec.id, uid, &msg)) != 0)
		goto out;
	hdr = msg.hdr;
	memcpy(bn, msg.basename, hdr.basename_len);
	len = maildir_cur_path(rel, sizeof(rel), msg.basename,
			       hdr.basename_len, flags, msg.path + 4,
			       hdr.path_len - 4);
	if (len < 0 || len > STORE_NAME_MAX + 4) {
		errno = ENAMETOOLONG;
		rc = store_set_error(mb->error, NULL, "file name too long");
		goto out;
	}
	if ((rc = rename_msg(&t, &msg, rel)) != 0)
		goto out;
	if (hdr.flags != flags)
		hdr.modseq = ++t.rec.highestmodseq;
	hdr.flags = flags;
	hdr.path_len = (uint16_t)len;
	if ((rc = index_put_msg(t.idx, t.txn, t.rec.id, uid, &hdr, bn,
				rel)) != 0 ||
	    (rc = index_put_mbox(t.idx, t.txn, mb->key, &t.rec)) != 0)
		goto out;
	rc = mdb_txn_commit(t.txn);
	t.txn = NULL;
	if (rc == 0) {
		mb->rec.highestmodseq = t.rec.highestmodseq;
		view_update(mb, uid, &hdr, rel);
	}
out:
	if (t.txn != NULL)
		txn_abort_keep_errno(t.txn);
	if (rc == MDB_NOTFOUND) {
		errno = ENOENT;
		return store_set_error(mb->error, error_r,
				       "message uid=%u expunged", uid);
	}
	return rc == 0 ? 0 : mdb_fail(mb, "flag change", rc, error_r);
}

/* Unlinks the file of uid (wherever it is now) and drops its records. */
static int expunge_one(struct msg_txn *t, uint32_t uid)
{
	struct index_msg_view msg;
	char path[4096], rel[STORE_NAME_MAX + 8];
	char bn[STORE_NAME_MAX + 1];
	int rc;

	rc = index_get_msg(t->idx, t->txn, t->rec.id, uid, &msg);
	if (rc != 0)
		return rc == MDB_NOTFOUND ? 0 : rc;
	snprintf(path, sizeof(path), "%s/%.*s", t->mb->dir,
		 (int)msg.hdr.path_len, msg.path);
	memcpy(bn, msg.basename, msg.hdr.basename_len);
	bn[msg.hdr.basename_len] = '\0';
	if (unlink(path) < 0 && errno == ENOENT &&
	    maildir_find(t->mb->dir, bn, msg.hdr.basename_len, rel,
			 sizeof(rel)) > 0)
		snprintf(path, sizeof(path), "%s/%s", t->mb->dir, rel);
	if (unlink(path) < 0 && errno != ENOENT)
		return store_set_error(t->mb->error, NULL,
				       "unlink(%s) failed: %s", path,
				       strerror(errno));
	if ((rc = index_del_msg(t->idx, t->txn, t->rec.id, uid)) != 0)
		return rc;
	if (t->rec.count > 0)
		t->rec.count--;
	return 0;
}

int store_mailbox_expunge(struct store_mailbox *mb, const uint32_t *uids,
			  size_t count, const char **error_r)
{
	struct msg_txn t;
	int rc = 0;

	if (count == 0)
		return store_mailbox_sync(mb, error_r);
	if ((rc = txn_begin(&t, mb)) != 0)
		return mdb_fail(mb, "expunge", rc, error_r);
	for (size_t i = 0; i < count && rc == 0; i++)
		rc = expunge_one(&t, uids[i]);
	if (rc == 0) {
		t.rec.highestmodseq++;
		rc = index_put_mbox(t.idx, t.txn, mb->key, &t.rec);
	}
	/* The unlinks must be durable before the index forgets the UIDs,
	 * or a crash could bring the files back as new messages. */
	if (rc == 0 && (maildir_fsync_dir(mb->dir, "cur") < 0 ||
			maildir_fsync_dir(mb->dir, "new") < 0))
		rc = store_set_error(mb->error, NULL,
				     "fsync(%s/cur) failed: %s", mb->dir,
				     strerror(errno));
	if (rc != 0) {
		txn_abort_keep_errno(t.txn);
		return mdb_fail(mb, "expunge", rc, error_r);
	}
	if ((rc = mdb_txn_commit(t.txn)) != 0)
		return mdb_fail(mb, "expunge", rc, error_r);
	return store_mailbox_sync(mb, error_r);
}
