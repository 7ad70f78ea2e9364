/* message.c: per-message operations on an open mailbox: open (following
 * renames made by other sessions or MUAs), flag changes and expunge.
 * Flag changes only update the index (authoritative for flags): the
 * rename to cur/<basename>:2,<letters> is deferred to
 * store_mailbox_flush_renames, run in bounded slices, so STORE 1:* on a
 * big mailbox is one LMDB transaction and no file system work. Each
 * operation runs in one LMDB write transaction, so file renames/unlinks
 * and index updates of heron processes never interleave. Does not touch
 * other views: they see the changes at their next sync. */
#include "store/store_private.h"
#include "lib/fault.h"
#include "lib/log.h"
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

static int txn_begin_flags(struct msg_txn *t, struct store_mailbox *mb,
			   unsigned flags)
{
	int rc;

	t->mb = mb;
	t->idx = mb->su->index;
	for (int tries = 0;; tries++) {
		rc = store_index_txn_begin(t->idx, flags, &t->txn);
		if (rc != 0)
			return rc;
		rc = index_get_mbox(t->idx, t->txn, mb->key, &t->rec);
		if (rc == 0 && t->rec.id == mb->rec.id)
			return 0;
		store_txn_abort(t->txn);
		t->txn = NULL;
		if ((rc != 0 && rc != MDB_NOTFOUND) || tries > 0)
			return rc != 0 ? rc : MDB_NOTFOUND;
		/* The index was rebuilt since our last sync: the mailbox
		 * has a new id (UIDs are kept). Refresh it, not the view. */
		if (store_sync(mb, false) < 0)
			return -1;
	}
}

static int txn_begin(struct msg_txn *t, struct store_mailbox *mb)
{
	return txn_begin_flags(t, mb, 0);
}

static void txn_abort_keep_errno(MDB_txn *txn)
{
	int err = errno;

	store_txn_abort(txn);
	errno = err;
}

/* Sets mb->error from an LMDB code (or keeps it for -1). */
static int mdb_fail(struct store_mailbox *mb, const char *what, int rc,
		    const char **error_r)
{
	if (rc == -1) {
		if (error_r != NULL)
			*error_r = store_errbuf(&mb->error);
		return -1;
	}
	errno = store_index_errno(rc);
	return store_set_error(mb->error, error_r, "%s in %s failed: %s",
			       what, mb->dir, mdb_strerror(rc));
}

/* Updates the view's copy of a message changed by this view (path NULL:
 * unchanged); the path block has room for basename + STORE_PATH_EXTRA
 * (see sync.c). old_modseq is the record's before the change: when the
 * view had not seen that one (another session changed the message
 * first), the copy keeps its modseq so that the next sync still reports
 * the message's flags (RFC 3501 5.2; a .SILENT STORE reports nothing). */
static void view_update(struct store_mailbox *mb, uint32_t uid,
			const struct index_msg *hdr, uint64_t old_modseq,
			const char *path)
{
	struct store_msg *m = store_view_find_mut(mb, uid);

	if (m == NULL)
		return;
	m->flags = hdr->flags;
	m->keywords = hdr->keywords;
	if (m->modseq == old_modseq)
		m->modseq = hdr->modseq;
	if (path != NULL)
		view_update_path(m, path, strlen(path));
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

/* hdr (with old_path) now lives at new_path, renamed by someone else:
 * merges the flags its letters changed (maildir_merge_letters), bumps
 * the modseq when that changed them, keeps the pending count right.
 * hdr->path_len becomes new_path's. */
static void path_record(struct msg_txn *t, struct index_msg *hdr,
			const char *old_path, const char *new_path)
{
	struct index_msg old = *hdr;
	size_t len = strlen(new_path);
	uint32_t disk_flags;
	uint64_t disk_kw;

	maildir_path_letters(new_path, len, &disk_flags, &disk_kw);
	maildir_merge_letters(hdr, old_path, old.path_len, disk_flags,
			      disk_kw);
	if (hdr->flags != old.flags || hdr->keywords != old.keywords)
		hdr->modseq = ++t->rec.highestmodseq;
	if (maildir_path_differs(old_path, old.path_len, old.flags,
				 old.keywords) && t->rec.pending_renames > 0)
		t->rec.pending_renames--;
	if (maildir_path_differs(new_path, len, hdr->flags, hdr->keywords))
		t->rec.pending_renames++;
	hdr->path_len = (uint16_t)len;
}

/* Locates the file for uid (it may have been renamed) and records its
 * current path; *path_r gets "new/.." or "cur/..". */
static int relocate(struct msg_txn *t, uint32_t uid, char *path_r,
		    size_t size)
{
	struct index_msg_view msg;
	struct index_msg hdr;
	char bn[STORE_NAME_MAX + 1];
	struct store_msg *m;
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
	path_record(t, &hdr, msg.path, path_r);
	rc = index_put_msg(t->idx, t->txn, t->rec.id, uid, &hdr, bn, path_r);
	if (rc == 0)
		rc = index_put_mbox(t->idx, t->txn, t->mb->key, &t->rec);
	/* Flags and path, but not the modseq: the change is someone
	 * else's and the next sync reports it (modseq differs). */
	if (rc == 0 && (m = store_view_find_mut(t->mb, uid)) != NULL) {
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
	store_txn_abort(txn);
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
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		goto fail;
	/* Renamed by a flag change or new/ -> cur/ elsewhere: find it. */
	if ((rc = txn_begin(&t, mb)) != 0)
		return mdb_fail(mb, "message lookup", rc, error_r);
	rc = relocate(&t, msg->uid, rel, sizeof(rel));
	if (rc == 0)
		rc = store_txn_commit(t.txn);
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
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		return fd;
fail:
	return store_set_error(mb->error, error_r, "open(%s) failed: %s",
			       path, strerror(errno));
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

/* Rewrites the record under cur (same size: only the header changes). */
static int put_hdr(MDB_cursor *cur, MDB_val *key, const MDB_val *old,
		   const struct index_msg *hdr)
{
	uint8_t vbuf[sizeof(*hdr) + 2 * (STORE_NAME_MAX + 4)];
	MDB_val val = { old->mv_size, vbuf };

	if (old->mv_size > sizeof(vbuf))
		return MDB_CORRUPTED;
	memcpy(vbuf, old->mv_data, old->mv_size);
	memcpy(vbuf, hdr, sizeof(*hdr));
	return mdb_cursor_put(cur, key, &val, MDB_CURRENT);
}

/* One message in t: the index only; the file keeps its name until
 * store_mailbox_flush_renames (the record's path is the file's name). */
static int update_one(struct msg_txn *t, MDB_cursor *cur, uint32_t uid,
		      const struct flag_update *u,
		      struct store_update_result *res)
{
	struct index_msg_view msg;
	struct index_msg hdr;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	bool was_pending, is_pending;
	int rc;

	index_msg_key(kbuf, t->rec.id, uid);
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND) {
		res->status = STORE_UPDATE_EXPUNGED;
		res->modseq = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (index_msg_decode(&val, &msg) < 0)
		return MDB_CORRUPTED;
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
	was_pending = maildir_path_differs(msg.path, hdr.path_len,
					   msg.hdr.flags, msg.hdr.keywords);
	is_pending = maildir_path_differs(msg.path, hdr.path_len, hdr.flags,
					  hdr.keywords);
	if (was_pending && !is_pending && t->rec.pending_renames > 0)
		t->rec.pending_renames--;
	else if (is_pending && !was_pending)
		t->rec.pending_renames++;
	hdr.modseq = u->new_modseq;
	if ((rc = put_hdr(cur, &key, &val, &hdr)) != 0)
		return rc;
	res->status = STORE_UPDATE_CHANGED;
	res->modseq = hdr.modseq;
	view_update(t->mb, uid, &hdr, msg.hdr.modseq, NULL);
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
	MDB_cursor *cur;
	bool any = false;
	struct msg_txn t;
	int rc = 0;

	if ((rc = txn_begin(&t, mb)) != 0)
		return update_fail(mb, rc, error_r);
	old_modseq = t.rec.highestmodseq;
	u->new_modseq = old_modseq + 1;
	if ((rc = mdb_cursor_open(t.txn, t.idx->dbi_msg, &cur)) != 0) {
		store_txn_abort(t.txn);
		return update_fail(mb, rc, error_r);
	}
	for (size_t i = 0; i < count && rc == 0; i++) {
		struct store_update_result *res =
			results != NULL ? &results[i] : &one;

		rc = update_one(&t, cur, uids[i], u, res);
		any |= rc == 0 && res->status == STORE_UPDATE_CHANGED;
	}
	mdb_cursor_close(cur);
	if (rc == 0 && any) {
		t.rec.highestmodseq = u->new_modseq;
		rc = index_put_mbox(t.idx, t.txn, mb->key, &t.rec);
	}
	if (rc == 0) {
		rc = store_txn_commit(t.txn);
		if (rc == 0 && any)
			view_advance(mb, old_modseq, u->new_modseq);
		if (rc == 0)
			mb->rec.pending_renames = t.rec.pending_renames;
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

/* ---- deferred renames ---- */

struct flush_ctx {
	struct msg_txn t;
	MDB_cursor *cur;
	unsigned max_count;
	unsigned done;		/* renamed (or found renamed) */
	unsigned skipped;	/* file missing or name too long: left */
	uint32_t next_uid;
};

/* Gives the file of uid the name its flags call for. A file renamed by
 * someone else meanwhile is found and merged (path_record), then renamed
 * if still needed; a vanished one is left to the next sync. */
static int flush_one(struct flush_ctx *f, uint32_t uid,
		     const struct index_msg_view *msg)
{
	struct msg_txn *t = &f->t;
	struct index_msg hdr = msg->hdr;
	char bn[STORE_NAME_MAX + 1], rel[STORE_NAME_MAX + 64];
	char cur_rel[STORE_NAME_MAX + 64], from[4096], to[4096];
	struct store_msg *m;
	int len, rc;

	memcpy(bn, msg->basename, hdr.basename_len);
	bn[hdr.basename_len] = '\0';
	memcpy(cur_rel, msg->path, hdr.path_len);
	cur_rel[hdr.path_len] = '\0';
	for (int tries = 0;; tries++) {
		len = maildir_cur_path(rel, sizeof(rel), bn, hdr.basename_len,
				       hdr.flags, hdr.keywords);
		if (len < 0 || len > STORE_NAME_MAX + 4 || tries > 1) {
			f->skipped++;	/* the flags stay in the index */
			return 0;
		}
		if (strcmp(rel, cur_rel) == 0)
			break;	/* someone else gave it this name */
		snprintf(from, sizeof(from), "%s/%s", t->mb->dir, cur_rel);
		snprintf(to, sizeof(to), "%s/%s", t->mb->dir, rel);
		if (!FAULT("flag-rename") && rename(from, to) == 0) {
			if (t->rec.pending_renames > 0)
				t->rec.pending_renames--;
			memcpy(cur_rel, rel, (size_t)len + 1);
			break;
		}
		if (errno != ENOENT)
			return store_set_error(t->mb->error, NULL,
					       "rename(%s, %s) failed: %s",
					       from, to, strerror(errno));
		rc = maildir_find(t->mb->dir, bn, hdr.basename_len, cur_rel,
				  sizeof(cur_rel));
		if (rc <= 0) {
			f->skipped++;	/* expunged: the next sync sees it */
			return 0;
		}
		path_record(t, &hdr, msg->path, cur_rel);
	}
	hdr.path_len = (uint16_t)strlen(cur_rel);
	rc = index_put_msg(t->idx, t->txn, t->rec.id, uid, &hdr, bn, cur_rel);
	if (rc == 0 && (m = store_view_find_mut(t->mb, uid)) != NULL) {
		m->flags = hdr.flags;
		m->keywords = hdr.keywords;
		view_update_path(m, cur_rel, hdr.path_len);
	}
	f->done++;
	return rc;
}

/* Flushes pending records of uids [from, to) in key order, at most
 * max_count - done. Returns 0, -1 or an LMDB code; *complete_r when the
 * range was covered. */
static int flush_range(struct flush_ctx *f, uint32_t from, uint32_t to,
		       bool *complete_r)
{
	struct index_msg_view msg;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	uint32_t uid;
	int rc;

	*complete_r = false;
	index_msg_key(kbuf, f->t.rec.id, from);
	for (rc = mdb_cursor_get(f->cur, &key, &val, MDB_SET_RANGE);
	     rc == 0; rc = mdb_cursor_get(f->cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8 ||
		    store_get_be32(key.mv_data) != f->t.rec.id)
			break;
		uid = store_get_be32((uint8_t *)key.mv_data + 4);
		if (uid >= to)
			break;
		if (f->done >= f->max_count)
			return 0;
		if (index_msg_decode(&val, &msg) < 0)
			return MDB_CORRUPTED;
		f->next_uid = uid + 1;
		if (!maildir_path_differs(msg.path, msg.hdr.path_len,
					  msg.hdr.flags, msg.hdr.keywords))
			continue;
		if ((rc = flush_one(f, uid, &msg)) != 0)
			return rc;
		/* the record was rewritten: find our place again */
		index_msg_key(kbuf, f->t.rec.id, uid);
		key.mv_size = sizeof(kbuf);
		key.mv_data = kbuf;
		if ((rc = mdb_cursor_get(f->cur, &key, &val,
					 MDB_SET_KEY)) != 0)
			return rc;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	*complete_r = true;
	return 0;
}

/* One slice in one write transaction: from where the last slice
 * stopped to the end, then from the start (renames made pending behind
 * us meanwhile). A full pass sets the count exactly. */
static int flush_slice(struct flush_ctx *f, struct store_mailbox *mb)
{
	uint32_t start = mb->flush_next_uid > 0 ? mb->flush_next_uid : 1;
	bool complete, wrapped = false;
	int rc;

	if ((rc = mdb_cursor_open(f->t.txn, f->t.idx->dbi_msg,
				  &f->cur)) != 0)
		return rc;
	rc = flush_range(f, start, UINT32_MAX, &complete);
	if (rc == 0 && complete && start > 1) {
		f->next_uid = 1;
		wrapped = true;
		rc = flush_range(f, 1, start, &complete);
	}
	mdb_cursor_close(f->cur);
	if (rc != 0)
		return rc;
	if (complete && (start == 1 || wrapped))
		f->t.rec.pending_renames = f->skipped;
	mb->flush_next_uid = complete ? 1 : f->next_uid;
	return 0;
}

int store_mailbox_flush_renames(struct store_mailbox *mb,
				unsigned max_count, const char **error_r)
{
	struct flush_ctx f;
	int rc;

	if (mb->rec.pending_renames == 0)
		return 0;	/* none as of our last look at the record */
	memset(&f, 0, sizeof(f));
	f.max_count = max_count > 0 ? max_count : 1;
	/* Only file paths change here (the flags are already durable): a
	 * crash may undo this commit, and the next sync finds the files by
	 * basename, so one data sync is enough (no meta-page sync). */
	if ((rc = txn_begin_flags(&f.t, mb, MDB_NOMETASYNC)) != 0)
		return mdb_fail(mb, "flushing renames", rc, error_r);
	if (f.t.rec.pending_renames > 0)
		rc = flush_slice(&f, mb);
	if (rc == 0 && f.done + f.skipped > 0)
		rc = index_put_mbox(f.t.idx, f.t.txn, mb->key, &f.t.rec);
	if (rc != 0) {
		txn_abort_keep_errno(f.t.txn);
		return mdb_fail(mb, "flushing renames", rc, error_r);
	}
	if ((rc = store_txn_commit(f.t.txn)) != 0)
		return mdb_fail(mb, "flushing renames", rc, error_r);
	mb->rec.pending_renames = f.t.rec.pending_renames;
	return f.t.rec.pending_renames > f.skipped ?
		(int)(f.t.rec.pending_renames - f.skipped) : 0;
}

void store_flush_all(struct store_mailbox *mb, unsigned max_count)
{
	const char *error;
	int left, prev = -1;
	unsigned done = 0;

	while ((left = store_mailbox_flush_renames(mb, STORE_FLUSH_SLICE,
						   &error)) > 0) {
		if (left == prev)
			return;	/* no progress: left for later */
		prev = left;
		if ((done += STORE_FLUSH_SLICE) >= max_count)
			return;	/* the index keeps the rest pending */
	}
	if (left < 0)
		log_error("store: flushing renames in %s failed: %s",
			  mb->dir, error);
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
	FAULT_POINT("expunge-unlink");
	if (unlink(path) < 0 && errno == ENOENT &&
	    maildir_find(t->mb->dir, bn, msg.hdr.basename_len, rel,
			 sizeof(rel)) > 0)
		snprintf(path, sizeof(path), "%s/%s", t->mb->dir, rel);
	if (unlink(path) < 0 && errno != ENOENT)
		return store_set_error(t->mb->error, NULL,
				       "unlink(%s) failed: %s", path,
				       strerror(errno));
	if ((rc = index_del_msg(t->idx, t->txn, &t->rec, uid)) != 0)
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
	if (rc == 0 && (FAULT("expunge-dir-fsync") ||
			maildir_fsync_dir(mb->dir, "cur") < 0 ||
			maildir_fsync_dir(mb->dir, "new") < 0))
		rc = store_set_error(mb->error, NULL,
				     "fsync(%s/cur) failed: %s", mb->dir,
				     strerror(errno));
	if (rc != 0)
		txn_abort_keep_errno(t.txn);
	else
		rc = store_txn_commit(t.txn);
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

	/* The record as of the sync that built the view: when others have
	 * already claimed everything this view holds (first_recent_uid only
	 * grows), there is nothing to claim and no write transaction to
	 * take (thousands of IDLE sessions see one delivery at once). */
	if (mb->has_view && mb->rec.first_recent_uid >= mb->view_rec.uidnext &&
	    mb->rec.id == mb->view_rec.id) {
		*first_recent_uid_r = mb->rec.first_recent_uid;
		return 0;
	}
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
		rc = store_txn_commit(t.txn);
	else
		store_txn_abort(t.txn);
	if (rc != 0)
		return mdb_fail(mb, "claiming \\Recent", rc, error_r);
	/* Known now: sessions following this one's view (IDLE fan-out)
	 * take this record and needn't look again. */
	if (mb->rec.id == t.rec.id &&
	    mb->rec.first_recent_uid < t.rec.first_recent_uid)
		mb->rec.first_recent_uid = t.rec.first_recent_uid;
	return 0;
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
	store_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return mdb_fail(mb, "expunge history", rc, error_r);
	return modseq < rec.expunged_floor ? 1 : 0;
}
