/* cache.c: per-message cached data in the index (store.h "per-message
 * cache"): named DB "cache", key (mailbox id BE32, uid BE32), value
 * struct index_cache_hdr + the caller's blob (IMAP keeps the serialized
 * MIME tree there).
 *
 * Guard: the header holds the message's size and an FNV-1a hash of its
 * basename, compared with the message record in the same read
 * transaction on get; a put is also checked at flush against the size,
 * vsize and internal date the view had at put time, so an entry queued
 * before an index rebuild (ids restart) is never written for another
 * message.
 *
 * Writes: puts queue in memory per store_index (shared by the process's
 * sessions of the user, freed with the index), bounded by
 * STORE_CACHE_QUEUE_MAX entries and STORE_CACHE_QUEUE_BYTES; a flush
 * writes them in one write transaction begun with MDB_NOMETASYNC (per
 * transaction, so other writers of the process keep full durability):
 * LMDB syncs the data pages once and leaves the meta page to the next
 * synced commit or the kernel. A system crash may thus undo the last
 * flush (harmless: the entries are derived data), but cannot corrupt the
 * file, which plain MDB_NOSYNC could ("a system crash can corrupt the
 * database", lmdb.h) and which would cost the unflushed flag renames of
 * a rebuild. Removal is done by index.c with the message records. */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cache_ent {
	uint32_t id, uid;
	uint64_t size, vsize;	/* the view's, at put time */
	time_t internal_date;
	unsigned char *data;
	size_t len;
};

struct store_cache_queue {
	struct cache_ent ents[STORE_CACHE_QUEUE_MAX];
	size_t count;
	size_t bytes;
};

static uint64_t cache_hash(const char *s, size_t len)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static void queue_destroy(struct store_cache_queue **_q)
{
	struct store_cache_queue *q = *_q;

	if (q == NULL)
		return;
	*_q = NULL;
	for (size_t i = 0; i < q->count; i++)
		free(q->ents[i].data);
	free(q);
}

void store_cache_queue_free(struct store_index *idx)
{
	queue_destroy(&idx->cache_queue);
}

static int cache_fail(struct store_mailbox *mb, const char *what, int rc,
		      const char **error_r)
{
	errno = store_index_errno(rc);
	return store_set_error(mb->error, error_r, "cache %s in %s failed: %s",
			       what, mb->dir, rc > 0 ? strerror(rc) :
			       mdb_strerror(rc));
}

/* The entry of (id, uid) when its guard matches the record: 1 with a
 * malloc()ed copy, 0 none, or an LMDB code (< 0 or errno > 0) as -rc. */
static int cache_lookup(struct store_index *idx, MDB_txn *txn, uint32_t id,
			uint32_t uid, unsigned char **data_r, size_t *size_r,
			int *rc_r)
{
	struct index_msg_view msg;
	struct index_cache_hdr hdr;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	int rc;

	rc = index_get_msg(idx, txn, id, uid, &msg);
	if (rc == 0) {
		index_msg_key(kbuf, id, uid);
		rc = mdb_get(txn, idx->dbi_cache, &key, &val);
	}
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		*rc_r = rc;
		return -1;
	}
	if (val.mv_size < sizeof(hdr))
		return 0;	/* not ours: ignored, replaced by a put */
	memcpy(&hdr, val.mv_data, sizeof(hdr));
	if (hdr.magic != STORE_CACHE_MAGIC || hdr.size != msg.hdr.size ||
	    hdr.bname_hash != cache_hash(msg.basename,
					 msg.hdr.basename_len))
		return 0;	/* stale */
	*size_r = val.mv_size - sizeof(hdr);
	*data_r = xmalloc(*size_r > 0 ? *size_r : 1);
	memcpy(*data_r, (const unsigned char *)val.mv_data + sizeof(hdr),
	       *size_r);
	return 1;
}

int store_msg_cache_get(struct store_mailbox *mb, uint32_t uid,
			unsigned char **data_r, size_t *size_r,
			const char **error_r)
{
	struct store_index *idx = mb->su->index;
	MDB_txn *txn;
	int ret, rc = 0;

	*data_r = NULL;
	*size_r = 0;
	if ((rc = store_index_txn_begin(idx, MDB_RDONLY, &txn)) != 0)
		return cache_fail(mb, "read", rc, error_r);
	ret = cache_lookup(idx, txn, mb->rec.id, uid, data_r, size_r, &rc);
	store_txn_abort(txn);
	if (ret < 0)
		return cache_fail(mb, "read", rc, error_r);
	return ret;
}

void store_msg_cache_put(struct store_mailbox *mb, uint32_t uid,
			 const void *data, size_t size)
{
	struct store_index *idx = mb->su->index;
	const struct store_msg *msg = store_view_find(mb, uid);
	struct store_cache_queue *q;
	struct cache_ent *e;
	const char *error;

	if (msg == NULL || size > STORE_CACHE_ENTRY_MAX)
		return;
	q = idx->cache_queue;
	if (q != NULL && (q->count == STORE_CACHE_QUEUE_MAX ||
			  q->bytes + size > STORE_CACHE_QUEUE_BYTES)) {
		if (store_msg_cache_flush(mb, &error) < 0)
			log_warn("store: cache flush failed dir=%s: %s",
				 mb->dir, error);
		q = NULL;
	}
	if (q == NULL)
		q = idx->cache_queue = xcalloc(1, sizeof(*q));
	e = &q->ents[q->count++];
	e->id = mb->rec.id;
	e->uid = uid;
	e->size = msg->size;
	e->vsize = msg->vsize;
	e->internal_date = msg->internal_date;
	e->data = xmalloc(size > 0 ? size : 1);
	memcpy(e->data, data, size);
	e->len = size;
	q->bytes += size;
}

/* Writes one queued entry when its message is still the one put. */
static int cache_write(struct store_index *idx, MDB_txn *txn,
		       const struct cache_ent *e)
{
	struct index_msg_view msg;
	struct index_cache_hdr hdr;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	int rc;

	rc = index_get_msg(idx, txn, e->id, e->uid, &msg);
	if (rc == MDB_NOTFOUND)
		return 0;	/* expunged since */
	if (rc != 0)
		return rc;
	if (msg.hdr.size != e->size || msg.hdr.vsize != e->vsize ||
	    msg.hdr.internal_date != (int64_t)e->internal_date)
		return 0;	/* another message now (index rebuilt) */
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = STORE_CACHE_MAGIC;
	hdr.size = msg.hdr.size;
	/* before the put: msg points into pages the put may change */
	hdr.bname_hash = cache_hash(msg.basename, msg.hdr.basename_len);
	index_msg_key(kbuf, e->id, e->uid);
	val.mv_size = sizeof(hdr) + e->len;
	val.mv_data = NULL;
	if ((rc = mdb_put(txn, idx->dbi_cache, &key, &val, MDB_RESERVE)) != 0)
		return rc;
	memcpy(val.mv_data, &hdr, sizeof(hdr));
	memcpy((unsigned char *)val.mv_data + sizeof(hdr), e->data, e->len);
	return 0;
}

int store_msg_cache_flush(struct store_mailbox *mb, const char **error_r)
{
	struct store_index *idx = mb->su->index;
	struct store_cache_queue *q = idx->cache_queue;
	MDB_txn *txn;
	int rc;

	if (q == NULL)
		return 0;
	idx->cache_queue = NULL;
	rc = store_index_txn_begin(idx, MDB_NOMETASYNC, &txn);
	if (rc == 0) {
		for (size_t i = 0; i < q->count && rc == 0; i++)
			rc = cache_write(idx, txn, &q->ents[i]);
		if (rc == 0)
			rc = store_txn_commit(txn);
		else
			store_txn_abort(txn);
	}
	queue_destroy(&q);
	return rc == 0 ? 0 : cache_fail(mb, "write", rc, error_r);
}

size_t store_msg_cache_queued(const struct store_mailbox *mb)
{
	const struct store_cache_queue *q = mb->su->index->cache_queue;

	return q != NULL ? q->count : 0;
}
