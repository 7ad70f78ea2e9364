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

static void view_update_path(struct store_msg *m, const char *path,
			     size_t len)
{
	if (m->path != NULL && len < strlen(m->basename) + STORE_PATH_EXTRA)
		memcpy(m->path, path, len + 1);
}

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

/* Updates the view's copy of a message changed by this view; the path
 * block has room for basename + STORE_PATH_EXTRA (see sync.c). */
static void view_update(struct store_mailbox *mb, uint32_t uid,
			const struct index_msg *hdr, const char *path)
{
	struct store_msg *m = store_view_find(mb, uid);
	size_t len = strlen(path);

	if (m == NULL)
		return;
	m->flags = hdr->flags;
	m->keywords = hdr->keywords;
	m->modseq = hdr->modseq;
	view_update_path(m, path, len);
}

/* The view's HIGHESTMODSEQ follows own changes only while the index had
 * no other change since the view was built (else the next sync must see
 * the difference and rebuild). */
static void view_advance(struct store_mailbox *mb, uint64_t old_modseq,
			 uint64_t new_modseq)
{
	if (mb->has_view && mb->view_rec.highestmodseq == old_modseq)
		mb->view_rec.highestmodseq = new_modseq;
	mb->rec.highestmodseq = new_modseq;
}

/* Locates the file for uid (it may have been renamed) and records its
 * current path; *path_r gets "new/.." or "cur/..". */
static int relocate(struct msg_txn *t, uint32_t uid, char *path_r,
		    size_t size)
{
	struct index_msg_view msg;
	struct index_msg hdr;
	const uint64_t letters = (UINT64_C(1) << STORE_KEYWORD_LETTERS) - 1;
	char bn[STORE_NAME_MAX + 1];
	struct store_msg *m;
	uint32_t flags;
	uint64_t kw;
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
	kw = (hdr.keywords & ~letters) |
		maildir_name_keywords(path_r, strlen(path_r));
	if (flags != hdr.flags || kw != hdr.keywords) {
		hdr.flags = flags;
		hdr.keywords = kw;
		hdr.modseq = ++t->rec.highestmodseq;
	}
	hdr.path_len = (uint16_t)strlen(path_r);
	rc = index_put_msg(t->idx, t->txn, t->rec.id, uid, &hdr, bn, path_r);
	if (rc == 0)
		rc = index_put_mbox(t->idx, t->txn, t->mb->key, &t->rec);
	/* Flags and path, but not the modseq: the change is someone
	 * else's and the next sync reports it (modseq differs). */
	if (rc == 0 && (m = store_view_find(t->mb, uid)) != NULL) {
		m->flags = hdr.flags;
		m->keywords = hdr.keywords;
		view_update_path(m, path_r, strlen(path_r));
	}
	return rc;
}

/* Absolute path of uid as the index has it (views without names). */
static int lookup_path(struct store_mailbox *mb, uint32_t uid, char *buf,
		       size_t size)
{
	struct index_msg_view msg;
	MDB_txn *txn;
	int rc;

	rc = store_index_txn_begin(mb->su->index, MDB_RDONLY, &txn);
	if (rc != 0)
		return rc;
	rc = index_get_msg(mb->su->index, txn, mb->rec.id, uid, &msg);
	if (rc == 0)
		snprintf(buf, size, "%s/%.*s", mb->dir,
			 (int)msg.hdr.path_len, msg.path);
	mdb_txn_abort(txn);
	return rc;
}

int store_msg_open(struct store_mailbox *mb, const struct store_msg *msg,
		   const char **error_r)
{
	struct msg_txn t;
	char path[4096], rel[STORE_NAME_MAX + 8];
	int fd, rc;

	if (msg->path != NULL)
		snprintf(path, sizeof(path), "%s/%s", mb->dir, msg->path);
	else if ((rc = lookup_path(mb, msg->uid, path, sizeof(path))) != 0)
		goto lookup_failed;
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
lookup_failed:
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

static uint64_t apply_op(enum store_flag_op op, uint64_t cur, uint64_t v)
{
	switch (op) {
	case STORE_FLAGS_ADD:
		return cur | v;
	case STORE_FLAGS_REMOVE:
		return cur & ~v;
	case STORE_FLAGS_REPLACE:
		break;
	}
	return v;
}

struct flag_update {
	enum store_flag_op op;
	uint32_t flags;
	uint64_t keywords;
	uint64_t unchanged_since;
	bool keep_keywords;	/* store_msg_set_flags */
	uint64_t new_modseq;	/* shared by all changes of one call */
};

/* One message in t: renames the file only when its letters change. */
static int update_one(struct msg_txn *t, uint32_t uid,
		      const struct flag_update *u,
		      struct store_update_result *res)
{
	struct index_msg_view msg;
	struct index_msg hdr;
	char bn[STORE_NAME_MAX + 1], rel[STORE_NAME_MAX + 64];
	int rc, len;

	rc = index_get_msg(t->idx, t->txn, t->rec.id, uid, &msg);
	if (rc == MDB_NOTFOUND) {
		res->status = STORE_UPDATE_EXPUNGED;
		res->modseq = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	hdr = msg.hdr;
	res->modseq = hdr.modseq;
	/* RFC 7162 3.1.3: UNCHANGEDSINCE fails if the message's
	 * mod-sequence is greater than the given value. */
	if (u->unchanged_since != 0 && hdr.modseq > u->unchanged_since) {
		res->status = STORE_UPDATE_MODIFIED;
		return 0;
	}
	hdr.flags = (uint32_t)apply_op(u->op, hdr.flags, u->flags);
	if (!u->keep_keywords)
		hdr.keywords = apply_op(u->op, hdr.keywords, u->keywords);
	if (hdr.flags == msg.hdr.flags && hdr.keywords == msg.hdr.keywords) {
		res->status = STORE_UPDATE_UNCHANGED;
		return 0;
	}
	memcpy(bn, msg.basename, hdr.basename_len);
	bn[hdr.basename_len] = '\0';
	memcpy(rel, msg.path, hdr.path_len);
	rel[hdr.path_len] = '\0';
	if (maildir_path_differs(msg.path, hdr.path_len, hdr.flags,
				 hdr.keywords)) {
		len = maildir_cur_path(rel, sizeof(rel), bn, hdr.basename_len,
				       hdr.flags, hdr.keywords);
		if (len < 0 || len > STORE_NAME_MAX + 4) {
			errno = ENAMETOOLONG;
			return store_set_error(t->mb->error, NULL,
					       "file name too long");
		}
		if ((rc = rename_msg(t, &msg, rel)) != 0)
			return rc;
		hdr.path_len = (uint16_t)len;
	}
	hdr.modseq = u->new_modseq;
	rc = index_put_msg(t->idx, t->txn, t->rec.id, uid, &hdr, bn, rel);
	if (rc != 0)
		return rc;
	res->status = STORE_UPDATE_CHANGED;
	res->modseq = hdr.modseq;
	view_update(t->mb, uid, &hdr, rel);
	return 0;
}

static int update_fail(struct store_mailbox *mb, int rc,
		       const char **error_r)
{
	if (rc == MDB_NOTFOUND) {
		errno = ENOENT;
		return store_set_error(mb->error, error_r,
				       "mailbox vanished from the index");
	}
	return mdb_fail(mb, "flag change", rc, error_r);
}

static int update_flags(struct store_mailbox *mb, const uint32_t *uids,
			size_t count, struct flag_update *u,
			struct store_update_result *results,
			const char **error_r)
{
	struct store_update_result one;
	uint64_t old_modseq;
	bool any = false;
	struct msg_txn t;
	int rc = 0;

	if ((rc = txn_begin(&t, mb)) != 0)
		return update_fail(mb, rc, error_r);
	old_modseq = t.rec.highestmodseq;
	u->new_modseq = old_modseq + 1;
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct store_update_result *res =
			results != NULL ? &results[i] : &one;

		rc = update_one(&t, uids[i], u, res);
		any |= rc == 0 && res->status == STORE_UPDATE_CHANGED;
	}
	if (rc == 0 && any) {
		t.rec.highestmodseq = u->new_modseq;
		rc = index_put_mbox(t.idx, t.txn, mb->key, &t.rec);
	}
	if (rc == 0) {
		rc = mdb_txn_commit(t.txn);
		if (rc == 0 && any)
			view_advance(mb, old_modseq, u->new_modseq);
	} else {
		txn_abort_keep_errno(t.txn);
	}
	if (rc != 0 && any)
		mb->view_rec.highestmodseq = 0;	/* view ahead: rebuild */
	return rc == 0 ? 0 : update_fail(mb, rc, error_r);
}

int store_msgs_update_flags(struct store_mailbox *mb, const uint32_t *uids,
			    size_t count, enum store_flag_op op,
			    uint32_t flags, uint64_t keywords,
			    uint64_t unchanged_since,
			    struct store_update_result *results,
			    const char **error_r)
{
	struct flag_update u = {
		.op = op, .flags = flags, .keywords = keywords,
		.unchanged_since = unchanged_since,
	};

	return update_flags(mb, uids, count, &u, results, error_r);
}

int store_msg_update_flags(struct store_mailbox *mb, uint32_t uid,
			   enum store_flag_op op, uint32_t flags,
			   uint64_t keywords, uint64_t unchanged_since,
			   uint64_t *new_modseq_r, bool *changed_r,
			   const char **error_r)
{
	struct store_update_result res;

	if (store_msgs_update_flags(mb, &uid, 1, op, flags, keywords,
				    unchanged_since, &res, error_r) < 0)
		return -1;
	if (res.status == STORE_UPDATE_EXPUNGED) {
		errno = ENOENT;
		return store_set_error(mb->error, error_r,
				       "message uid=%u expunged", uid);
	}
	*new_modseq_r = res.modseq;
	*changed_r = res.status == STORE_UPDATE_CHANGED;
	return 0;
}

int store_msg_set_flags(struct store_mailbox *mb, uint32_t uid,
			uint32_t flags, const char **error_r)
{
	struct flag_update u = {
		.op = STORE_FLAGS_REPLACE, .flags = flags,
		.keep_keywords = true,
	};
	struct store_update_result res;

	if (update_flags(mb, &uid, 1, &u, &res, error_r) < 0)
		return -1;
	if (res.status == STORE_UPDATE_EXPUNGED) {
		errno = ENOENT;
		return store_set_error(mb->error, error_r,
				       "message uid=%u expunged", uid);
	}
	return 0;
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

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Unlinks and unindexes uids in one transaction; one modseq for all,
 * recorded in the expunge history. */
static int expunge_txn(struct store_mailbox *mb, const uint32_t *uids,
		       size_t count)
{
	uint32_t *done = xreallocarray(NULL, count, sizeof(*done));
	size_t n = 0;
	struct msg_txn t;
	int rc = 0;

	if ((rc = txn_begin(&t, mb)) != 0)
		goto out;
	for (size_t i = 0; i < count && rc == 0; i++) {
		uint32_t before = t.rec.count;

		rc = expunge_one(&t, uids[i]);
		if (rc == 0 && t.rec.count != before)
			done[n++] = uids[i];
	}
	if (rc == 0 && n > 0) {
		qsort(done, n, sizeof(*done), uid_cmp);
		t.rec.highestmodseq++;
		rc = index_put_expunged(t.idx, t.txn, &t.rec,
					t.rec.highestmodseq, done, n);
	}
	if (rc == 0)
		rc = index_put_mbox(t.idx, t.txn, mb->key, &t.rec);
	/* The unlinks must be durable before the index forgets the UIDs,
	 * or a crash could bring the files back as new messages. */
	if (rc == 0 && (maildir_fsync_dir(mb->dir, "cur") < 0 ||
			maildir_fsync_dir(mb->dir, "new") < 0))
		rc = store_set_error(mb->error, NULL,
				     "fsync(%s/cur) failed: %s", mb->dir,
				     strerror(errno));
	if (rc != 0)
		txn_abort_keep_errno(t.txn);
	else
		rc = mdb_txn_commit(t.txn);
out:
	free(done);
	return rc;
}

int store_msgs_expunge(struct store_mailbox *mb, const uint32_t *uids,
		       size_t count, const char **error_r)
{
	int rc;

	if (count == 0)
		return 0;
	if ((rc = expunge_txn(mb, uids, count)) != 0)
		return mdb_fail(mb, "expunge", rc, error_r);
	return 0;
}

int store_mailbox_expunge(struct store_mailbox *mb, const uint32_t *uids,
			  size_t count, const char **error_r)
{
	if (store_msgs_expunge(mb, uids, count, error_r) < 0)
		return -1;
	return store_mailbox_sync(mb, error_r);
}

int store_mailbox_claim_recent(struct store_mailbox *mb,
			       uint32_t *first_recent_uid_r,
			       const char **error_r)
{
	struct msg_txn t;
	uint32_t first;
	int rc;

	if ((rc = txn_begin(&t, mb)) != 0)
		return mdb_fail(mb, "claiming \\Recent", rc, error_r);
	first = t.rec.first_recent_uid != 0 ? t.rec.first_recent_uid : 1;
	*first_recent_uid_r = first;
	/* Only up to what this view holds: later arrivals are recent for
	 * whichever session syncs them first. */
	if (mb->view_rec.uidnext > first) {
		t.rec.first_recent_uid = mb->view_rec.uidnext;
		rc = index_put_mbox(t.idx, t.txn, mb->key, &t.rec);
	}
	if (rc == 0)
		rc = mdb_txn_commit(t.txn);
	else
		mdb_txn_abort(t.txn);
	return rc == 0 ? 0 : mdb_fail(mb, "claiming \\Recent", rc, error_r);
}

static uint64_t get_be64(const uint8_t *p)
{
	return ((uint64_t)store_get_be32(p) << 32) | store_get_be32(p + 4);
}

int store_mailbox_expunged_since(struct store_mailbox *mb, uint64_t modseq,
				 void (*cb)(uint32_t first_uid,
					    uint32_t last_uid,
					    uint64_t modseq, void *ctx),
				 void *ctx, const char **error_r)
{
	struct store_index *idx = mb->su->index;
	struct index_mbox rec;
	uint8_t kbuf[12];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	int rc;

	if ((rc = store_index_txn_begin(idx, MDB_RDONLY, &txn)) != 0)
		return mdb_fail(mb, "expunge history", rc, error_r);
	if ((rc = index_get_mbox(idx, txn, mb->key, &rec)) != 0 ||
	    (rc = mdb_cursor_open(txn, idx->dbi_exp, &cur)) != 0)
		goto out;
	/* key: id BE32, modseq BE64; start after the given modseq */
	index_msg_key(kbuf, rec.id, 0);
	index_msg_key(kbuf + 4, (uint32_t)((modseq + 1) >> 32),
		      (uint32_t)(modseq + 1));
	key.mv_size = 12;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		const uint8_t *k = key.mv_data;
		const uint32_t *r = val.mv_data;

		if (key.mv_size != 12 || store_get_be32(k) != rec.id)
			break;
		for (size_t i = 0; i + 1 < val.mv_size / 4; i += 2) {
			uint32_t range[2];

			memcpy(range, r + i, sizeof(range));
			cb(range[0], range[1], get_be64(k + 4), ctx);
		}
	}
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return mdb_fail(mb, "expunge history", rc, error_r);
	return modseq < rec.expunged_floor ? 1 : 0;
}
