/* index.c: the per-user LMDB index (<root>/heron.index, MDB_NOSUBDIR).
 * A struct store_index lives as long as a store_user refers to it (one per
 * path per process, refcounted), but its LMDB environment does not: open
 * environments form a small per-process LRU cache (store_env_cache_set_max,
 * default STORE_ENV_CACHE_DEFAULT). store_index_txn_begin opens the
 * environment when it was evicted; store_txn_commit/store_txn_abort end
 * the transaction, and an environment with no transaction open may be
 * closed to make room for another. So an idle session costs no LMDB
 * memory, lock-file mapping or descriptors, and the LMDB rule of one
 * environment per file per process holds (the cache has one entry per
 * path). Transactions never outlive a store call.
 * A missing, corrupt or incompatible file is moved aside to
 * heron.index.broken.<time> and recreated empty; mailboxes are then
 * rebuilt lazily from heron-uidlist by sync.c. Fork: the child forgets
 * (never uses, never closes) environments of its parent. */
#include "store/store_private.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "net/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct store_index *index_cache;	/* every index of this process */
static struct store_index **open_envs;	/* those whose env is open */
static size_t open_count, open_cap;
static unsigned env_cache_max = STORE_ENV_CACHE_DEFAULT;
static uint64_t use_clock;
static pid_t cache_pid;
unsigned long store_index_env_opens;

int store_index_errno(int rc)
{
	if (rc > 0)
		return rc;
	if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL)
		return ENOSPC;
	if (rc == MDB_NOTFOUND)
		return ENOENT;
	return EIO;
}

bool store_index_is_corrupt(int rc)
{
	return rc == MDB_CORRUPTED || rc == MDB_INVALID ||
		rc == MDB_VERSION_MISMATCH || rc == MDB_PAGE_NOTFOUND;
}

static int index_dbis(struct store_index *idx, MDB_txn *txn,
		      unsigned flags)
{
	struct index_meta meta;
	int rc;

	if ((rc = mdb_dbi_open(txn, "meta", flags, &idx->dbi_meta)) ||
	    (rc = mdb_dbi_open(txn, "mbox", flags, &idx->dbi_mbox)) ||
	    (rc = mdb_dbi_open(txn, "msg", flags, &idx->dbi_msg)) ||
	    (rc = mdb_dbi_open(txn, "bname", flags, &idx->dbi_bname)) ||
	    (rc = mdb_dbi_open(txn, "kw", flags, &idx->dbi_kw)) ||
	    (rc = mdb_dbi_open(txn, "expunged", flags, &idx->dbi_exp)) ||
	    (rc = mdb_dbi_open(txn, "cache", flags, &idx->dbi_cache)))
		return rc;
	return index_get_meta(idx, txn, &meta);
}

/* Opens the named databases and reads the meta record once, so a broken
 * file shows up here rather than in the middle of a sync. A read
 * transaction when they all exist (the usual reopen after an eviction:
 * no wait for the writer lock), else a write one that creates them. */
static int index_open_dbis(struct store_index *idx)
{
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return rc;
	rc = index_dbis(idx, txn, 0);
	if (rc == 0)
		return mdb_txn_commit(txn);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return rc;
	if ((rc = mdb_txn_begin(idx->env, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = index_dbis(idx, txn, MDB_CREATE)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/* A file shorter than its meta page says (truncated by a disk or an
 * admin) would be read through the map beyond its end: SIGBUS. LMDB does
 * not check this itself. Also records the file's identity, so that a
 * file replaced by another process (store_index_recover, `heron index
 * rebuild`) is noticed at the next transaction (index_is_replaced). */
static int index_check_size(struct store_index *idx)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	int fd, rc;

	if ((rc = mdb_env_info(idx->env, &info)) != 0 ||
	    (rc = mdb_env_stat(idx->env, &st)) != 0 ||
	    (rc = mdb_env_get_fd(idx->env, &fd)) != 0)
		return rc;
	if (fstat(fd, &fst) < 0)
		return errno;
	if ((uint64_t)fst.st_size <
	    ((uint64_t)info.me_last_pgno + 1) * st.ms_psize) {
		log_warn("store: index shorter than its last page path=%s "
			 "size=%lld last_pgno=%zu page_size=%u", idx->path,
			 (long long)fst.st_size, info.me_last_pgno,
			 st.ms_psize);
		return MDB_CORRUPTED;
	}
	idx->dev = fst.st_dev;
	idx->ino = fst.st_ino;
	return 0;
}

/* True when idx->path is now another file than the open environment's
 * (moved aside and recreated by another process): the caller reopens, so
 * that no process keeps writing into a file nobody reads any more. Write
 * transactions always look; read transactions at most every
 * INDEX_REPLACED_CHECK_MSECS (a stale read is harmless, and 10,000 IDLE
 * sessions refreshing at once shouldn't cost 10,000 stat() calls). */
#define INDEX_REPLACED_CHECK_MSECS 100
static bool index_is_replaced(struct store_index *idx, bool is_write)
{
	uint64_t now = time_mono_coarse_msecs();
	struct stat st;

	if (!is_write && now - idx->replaced_checked_msecs <
	    INDEX_REPLACED_CHECK_MSECS)
		return false;
	idx->replaced_checked_msecs = now;
	if (stat(idx->path, &st) < 0)
		return errno == ENOENT;
	return st.st_dev != idx->dev || st.st_ino != idx->ino;
}

static int index_env_open(struct store_index *idx)
{
	int rc;

	rc = mdb_env_create(&idx->env);
	if (rc != 0)
		return rc;
	if ((rc = mdb_env_set_mapsize(idx->env, STORE_INDEX_MAP_SIZE)) ||
	    (rc = mdb_env_set_maxdbs(idx->env, 8)) ||
	    (rc = mdb_env_open(idx->env, idx->path, MDB_NOSUBDIR | MDB_NOTLS,
			       0600)) ||
	    (rc = index_check_size(idx)))
		goto fail;
	/* Reader slots left by crashed processes. */
	(void)mdb_reader_check(idx->env, NULL);
	if ((rc = index_open_dbis(idx)) != 0)
		goto fail;
	return 0;
fail:
	mdb_env_close(idx->env);
	idx->env = NULL;
	return rc;
}

static int index_move_aside(const char *path, int rc)
{
	char broken[4096];

	snprintf(broken, sizeof(broken), "%s.broken.%lld", path,
		 (long long)time(NULL));
	log_warn("store: index corrupt, rebuilding path=%s error=\"%s\" "
		 "moved_to=%s", path, mdb_strerror(rc), broken);
	metrics_inc(METRICS_INDEX_REBUILDS);
	if (rename(path, broken) < 0 && errno != ENOENT) {
		log_error("store: rename(%s, %s) failed: %s", path, broken,
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* Environments inherited over fork() must not be used (LMDB: "do not
 * have open an env before fork") nor closed (closing clears the parent's
 * reader slots): the child forgets them (their memory stays with the
 * parent's objects) and opens its own. */
static void cache_forget(void)
{
	index_cache = NULL;
	open_count = 0;
	cache_pid = getpid();
}

/* getpid() is a system call: the check runs at every transaction (10,000
 * IDLE sessions refreshing at once), so a fork hook does the work and
 * the check only looks at a flag. */
static bool cache_atfork_set;

static void cache_check_fork(void)
{
	if (cache_atfork_set)
		return;
	if (cache_pid != getpid())
		cache_forget();
	if (pthread_atfork(NULL, NULL, cache_forget) == 0)
		cache_atfork_set = true;
}

static void env_close(struct store_index *idx)
{
	for (size_t i = 0; i < open_count; i++) {
		if (open_envs[i] == idx) {
			open_envs[i] = open_envs[--open_count];
			break;
		}
	}
	mdb_env_close(idx->env);
	idx->env = NULL;
}

/* Closes least recently used environments with no transaction open
 * until fewer than max are open (or none can be closed). */
static void env_make_room(size_t max)
{
	while (open_count > 0 && open_count >= max) {
		struct store_index *lru = NULL;

		for (size_t i = 0; i < open_count; i++) {
			struct store_index *c = open_envs[i];

			if (c->txn_count == 0 &&
			    (lru == NULL || c->last_used < lru->last_used))
				lru = c;
		}
		if (lru == NULL)
			return;	/* all busy: the cache grows for a while */
		env_close(lru);
	}
}

/* Opens idx's environment (moving a corrupt file aside) and lists it. */
static int env_open_listed(struct store_index *idx, bool may_move)
{
	int rc;

	env_make_room(env_cache_max);
	rc = index_env_open(idx);
	if (may_move && store_index_is_corrupt(rc) &&
	    index_move_aside(idx->path, rc) == 0)
		rc = index_env_open(idx);
	if (rc != 0)
		return rc;
	if (open_count == open_cap) {
		open_cap = open_cap ? open_cap * 2 : 16;
		open_envs = xreallocarray(open_envs, open_cap,
					  sizeof(*open_envs));
	}
	open_envs[open_count++] = idx;
	idx->last_used = ++use_clock;
	store_index_env_opens++;
	return 0;
}

void store_env_cache_set_max(unsigned max)
{
	env_cache_max = max > 0 ? max : 1;
	cache_check_fork();
	env_make_room(env_cache_max + 1);
}

unsigned store_index_open_env_count(void)
{
	cache_check_fork();
	return (unsigned)open_count;
}

int store_index_open(const char *path, struct store_index **index_r,
		     char *errbuf, size_t errsize)
{
	struct store_index *idx;
	int rc;

	cache_check_fork();
	for (idx = index_cache; idx != NULL; idx = idx->next) {
		if (strcmp(idx->path, path) == 0) {
			idx->refcount++;
			*index_r = idx;
			return 0;
		}
	}
	idx = xcalloc(1, sizeof(*idx));
	idx->path = xstrdup(path);
	idx->pid = getpid();
	/* Opened now so that a broken file is reported (and replaced) at
	 * login; it stays in the cache for the calls that follow. */
	if ((rc = env_open_listed(idx, true)) != 0) {
		snprintf(errbuf, errsize, "mdb_env_open(%s) failed: %s", path,
			 mdb_strerror(rc));
		free(idx->path);
		free(idx);
		errno = store_index_errno(rc);
		return -1;
	}
	idx->refcount = 1;
	idx->next = index_cache;
	index_cache = idx;
	*index_r = idx;
	return 0;
}

int store_index_txn_begin(struct store_index *idx, unsigned flags,
			  MDB_txn **txn_r)
{
	int rc;

	cache_check_fork();
	if (idx->pid != cache_pid)
		return EIO;	/* the parent's: open the store again */
	if (idx->env != NULL && idx->txn_count == 0 &&
	    index_is_replaced(idx, (flags & MDB_RDONLY) == 0)) {
		log_info("store: index replaced by another process, "
			 "reopening path=%s", idx->path);
		env_close(idx);
	}
	if (idx->env == NULL) {
		if (idx->is_broken)
			return EIO;	/* a recovery failed to reopen it */
		rc = env_open_listed(idx, true);
		if (rc != 0) {
			log_error("store: reopening index path=%s failed: %s",
				  idx->path, mdb_strerror(rc));
			return rc;
		}
	}
	rc = mdb_txn_begin(idx->env, NULL, flags, txn_r);
	if (rc == 0) {
		idx->txn_count++;
		idx->last_used = ++use_clock;
	}
	return rc;
}

static struct store_index *txn_index(MDB_txn *txn)
{
	MDB_env *env = mdb_txn_env(txn);

	for (size_t i = 0; i < open_count; i++) {
		if (open_envs[i]->env == env)
			return open_envs[i];
	}
	return NULL;
}

static void txn_ended(struct store_index *idx)
{
	if (idx == NULL)
		return;
	idx->txn_count--;
	if (open_count > env_cache_max)
		env_make_room(env_cache_max + 1);
}

int store_txn_commit(MDB_txn *txn)
{
	struct store_index *idx = txn_index(txn);
	int rc;

	if (FAULT("index-commit"))
		rc = errno, mdb_txn_abort(txn);
	else
		rc = mdb_txn_commit(txn);
	if (rc == 0)
		FAULT_POINT("index-committed");
	txn_ended(idx);
	return rc;
}

void store_txn_abort(MDB_txn *txn)
{
	struct store_index *idx = txn_index(txn);

	mdb_txn_abort(txn);
	txn_ended(idx);
}

int store_index_recover(struct store_index *idx, int rc)
{
	if (idx->env != NULL)
		env_close(idx);
	if (index_move_aside(idx->path, rc) < 0) {
		idx->is_broken = true;
		return EIO;
	}
	rc = env_open_listed(idx, false);
	idx->is_broken = rc != 0;
	if (rc != 0)
		log_error("store: reopening index path=%s failed: %s",
			  idx->path, mdb_strerror(rc));
	return rc;
}

void store_index_unref(struct store_index **_idx)
{
	struct store_index *idx = *_idx, **p;

	if (idx == NULL)
		return;
	*_idx = NULL;
	cache_check_fork();
	if (idx->pid != cache_pid)
		return;		/* the parent's: see cache_check_fork */
	if (--idx->refcount > 0)
		return;
	for (p = &index_cache; *p != NULL; p = &(*p)->next) {
		if (*p == idx) {
			*p = idx->next;
			break;
		}
	}
	/* Not kept in the cache: the file may be replaced (tests, admins
	 * moving an index aside) before this user logs in again. */
	if (idx->env != NULL)
		env_close(idx);
	store_cache_queue_free(idx);
	free(idx->path);
	free(idx);
}

int index_get_meta(struct store_index *idx, MDB_txn *txn,
		   struct index_meta *meta_r)
{
	MDB_val key = { 4, (void *)"meta" }, val;
	int rc;

	rc = mdb_get(txn, idx->dbi_meta, &key, &val);
	if (rc == MDB_NOTFOUND) {
		meta_r->next_mailbox_id = 1;
		meta_r->last_uidvalidity = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (val.mv_size != sizeof(*meta_r))
		return MDB_CORRUPTED;
	memcpy(meta_r, val.mv_data, sizeof(*meta_r));
	return 0;
}

int index_put_meta(struct store_index *idx, MDB_txn *txn,
		   const struct index_meta *meta)
{
	MDB_val key = { 4, (void *)"meta" };
	MDB_val val = { sizeof(*meta), (void *)meta };

	return mdb_put(txn, idx->dbi_meta, &key, &val, 0);
}

int index_get_mbox(struct store_index *idx, MDB_txn *txn, const char *name,
		   struct index_mbox *rec_r)
{
	MDB_val key = { strlen(name), (void *)name }, val;
	int rc;

	rc = mdb_get(txn, idx->dbi_mbox, &key, &val);
	if (rc != 0)
		return rc;
	/* Records written before the IMAP fields existed are shorter. */
	if (val.mv_size != sizeof(*rec_r) &&
	    val.mv_size != INDEX_MBOX_V1_SIZE &&
	    val.mv_size != INDEX_MBOX_V2_SIZE)
		return MDB_CORRUPTED;
	memset(rec_r, 0, sizeof(*rec_r));
	memcpy(rec_r, val.mv_data, val.mv_size);
	/* Fields every record has had since it was written. */
	if (rec_r->id == 0 || rec_r->uidvalidity == 0 ||
	    rec_r->uidnext == 0 || rec_r->count >= rec_r->uidnext ||
	    (rec_r->first_recent_uid > rec_r->uidnext))
		return MDB_CORRUPTED;
	return 0;
}

int index_put_mbox(struct store_index *idx, MDB_txn *txn, const char *name,
		   const struct index_mbox *rec)
{
	MDB_val key = { strlen(name), (void *)name };
	MDB_val val = { sizeof(*rec), (void *)rec };

	return mdb_put(txn, idx->dbi_mbox, &key, &val, 0);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void index_msg_key(uint8_t buf[8], uint32_t id, uint32_t uid)
{
	put_be32(buf, id);
	put_be32(buf + 4, uid);
}

int index_msg_decode(const MDB_val *val, struct index_msg_view *msg_r)
{
	const char *p = val->mv_data;

	if (val->mv_size < sizeof(msg_r->hdr))
		return -1;
	memcpy(&msg_r->hdr, p, sizeof(msg_r->hdr));
	if (val->mv_size != sizeof(msg_r->hdr) + msg_r->hdr.basename_len +
	    msg_r->hdr.path_len || msg_r->hdr.basename_len == 0 ||
	    msg_r->hdr.path_len < 5)
		return -1;
	msg_r->basename = p + sizeof(msg_r->hdr);
	msg_r->path = msg_r->basename + msg_r->hdr.basename_len;
	/* The basename is stored twice (alone and in the path): a damaged
	 * page rarely leaves both copies equal. */
	if (msg_r->hdr.path_len < 4 + msg_r->hdr.basename_len ||
	    (memcmp(msg_r->path, "new/", 4) != 0 &&
	     memcmp(msg_r->path, "cur/", 4) != 0) ||
	    memcmp(msg_r->path + 4, msg_r->basename,
		   msg_r->hdr.basename_len) != 0 ||
	    (msg_r->hdr.path_len > 4 + msg_r->hdr.basename_len &&
	     msg_r->path[4 + msg_r->hdr.basename_len] != ':') ||
	    memchr(msg_r->basename, '/', msg_r->hdr.basename_len) != NULL ||
	    memchr(msg_r->basename, '\0', msg_r->hdr.basename_len) != NULL)
		return -1;
	return 0;
}

int index_get_msg(struct store_index *idx, MDB_txn *txn, uint32_t id,
		  uint32_t uid, struct index_msg_view *msg_r)
{
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	int rc;

	index_msg_key(kbuf, id, uid);
	rc = mdb_get(txn, idx->dbi_msg, &key, &val);
	if (rc != 0)
		return rc;
	return index_msg_decode(&val, msg_r) < 0 ? MDB_CORRUPTED : 0;
}

static void bname_key(uint8_t *buf, uint32_t id, const char *basename,
		      size_t bn_len, MDB_val *key_r)
{
	put_be32(buf, id);
	memcpy(buf + 4, basename, bn_len);
	key_r->mv_data = buf;
	key_r->mv_size = 4 + bn_len;
}

int index_put_msg(struct store_index *idx, MDB_txn *txn, uint32_t id,
		  uint32_t uid, const struct index_msg *hdr,
		  const char *basename, const char *path)
{
	uint8_t kbuf[8], bkey[4 + STORE_NAME_MAX];
	uint8_t vbuf[sizeof(*hdr) + 2 * (STORE_NAME_MAX + 4)];
	MDB_val key = { sizeof(kbuf), kbuf }, val, bk, bv;
	int rc;

	if (hdr->basename_len > STORE_NAME_MAX ||
	    hdr->path_len > STORE_NAME_MAX + 4)
		return EINVAL;
	memcpy(vbuf, hdr, sizeof(*hdr));
	memcpy(vbuf + sizeof(*hdr), basename, hdr->basename_len);
	memcpy(vbuf + sizeof(*hdr) + hdr->basename_len, path, hdr->path_len);
	val.mv_data = vbuf;
	val.mv_size = sizeof(*hdr) + hdr->basename_len + hdr->path_len;
	index_msg_key(kbuf, id, uid);
	rc = mdb_put(txn, idx->dbi_msg, &key, &val, 0);
	if (rc != 0)
		return rc;
	bname_key(bkey, id, basename, hdr->basename_len, &bk);
	bv.mv_data = &uid;
	bv.mv_size = sizeof(uid);
	return mdb_put(txn, idx->dbi_bname, &bk, &bv, 0);
}

int index_del_msg(struct store_index *idx, MDB_txn *txn,
		  struct index_mbox *rec, uint32_t uid)
{
	uint32_t id = rec->id;
	struct index_msg_view msg;
	uint8_t kbuf[8], bkey[4 + STORE_NAME_MAX];
	MDB_val key = { sizeof(kbuf), kbuf }, bk;
	int rc;

	rc = index_get_msg(idx, txn, id, uid, &msg);
	if (rc != 0)
		return rc;
	bname_key(bkey, id, msg.basename, msg.hdr.basename_len, &bk);
	rc = mdb_del(txn, idx->dbi_bname, &bk, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (rec->pending_renames > 0 &&
	    maildir_path_differs(msg.path, msg.hdr.path_len, msg.hdr.flags,
				 msg.hdr.keywords))
		rec->pending_renames--;
	/* The cached structure goes with the record (same txn). */
	if ((rc = index_del_cache(idx, txn, id, uid)) != 0)
		return rc;
	index_msg_key(kbuf, id, uid);
	return mdb_del(txn, idx->dbi_msg, &key, NULL);
}

int index_del_cache(struct store_index *idx, MDB_txn *txn, uint32_t id,
		    uint32_t uid)
{
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf };
	int rc;

	index_msg_key(kbuf, id, uid);
	rc = mdb_del(txn, idx->dbi_cache, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int index_get_bname(struct store_index *idx, MDB_txn *txn, uint32_t id,
		    const char *basename, size_t bn_len, uint32_t *uid_r)
{
	uint8_t bkey[4 + STORE_NAME_MAX];
	MDB_val bk, val;
	int rc;

	*uid_r = 0;
	if (bn_len > STORE_NAME_MAX)
		return 0;
	bname_key(bkey, id, basename, bn_len, &bk);
	rc = mdb_get(txn, idx->dbi_bname, &bk, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (val.mv_size != sizeof(*uid_r))
		return MDB_CORRUPTED;
	memcpy(uid_r, val.mv_data, sizeof(*uid_r));
	return 0;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Drops the oldest expunge records beyond STORE_EXPUNGED_RECORDS_MAX. */
static int exp_prune(struct store_index *idx, MDB_txn *txn,
		     struct index_mbox *rec)
{
	uint8_t kbuf[12];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, idx->dbi_exp, &cur)) != 0)
		return rc;
	put_be32(kbuf, rec->id);
	put_be64(kbuf + 4, 0);
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && rec->expunged_records > STORE_EXPUNGED_RECORDS_MAX) {
		const uint8_t *k = key.mv_data;

		if (key.mv_size != 12 || store_get_be32(k) != rec->id)
			break;
		rec->expunged_floor = ((uint64_t)store_get_be32(k + 4) << 32) |
			store_get_be32(k + 8);
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rec->expunged_records--;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int index_put_expunged(struct store_index *idx, MDB_txn *txn,
		       struct index_mbox *rec, uint64_t modseq,
		       const uint32_t *uids, size_t count)
{
	uint8_t kbuf[12];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	uint32_t *ranges;
	size_t n = 0;
	int rc;

	if (count == 0)
		return 0;
	ranges = xreallocarray(NULL, count, 2 * sizeof(*ranges));
	for (size_t i = 0; i < count; i++) {
		if (n > 0 && uids[i] <= ranges[2 * n - 1] + 1) {
			if (uids[i] > ranges[2 * n - 1])
				ranges[2 * n - 1] = uids[i];
			continue;
		}
		ranges[2 * n] = ranges[2 * n + 1] = uids[i];
		n++;
	}
	put_be32(kbuf, rec->id);
	put_be64(kbuf + 4, modseq);
	val.mv_size = n * 2 * sizeof(*ranges);
	val.mv_data = ranges;
	rc = mdb_put(txn, idx->dbi_exp, &key, &val, 0);
	free(ranges);
	if (rc != 0)
		return rc;
	rec->expunged_records++;
	return exp_prune(idx, txn, rec);
}

/* Deletes every key of dbi that starts with prefix (plen bytes). */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const uint8_t *prefix,
		      size_t plen)
{
	MDB_val key = { plen, (void *)prefix }, val;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size >= plen &&
	       memcmp(key.mv_data, prefix, plen) == 0) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int index_del_mailbox_data(struct store_index *idx, MDB_txn *txn,
			   uint32_t id)
{
	uint8_t prefix[4];
	MDB_val key = { sizeof(prefix), prefix };
	int rc;

	put_be32(prefix, id);
	if ((rc = del_prefix(txn, idx->dbi_msg, prefix, 4)) != 0 ||
	    (rc = del_prefix(txn, idx->dbi_bname, prefix, 4)) != 0 ||
	    (rc = del_prefix(txn, idx->dbi_exp, prefix, 4)) != 0 ||
	    (rc = del_prefix(txn, idx->dbi_cache, prefix, 4)) != 0)
		return rc;
	rc = mdb_del(txn, idx->dbi_kw, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}
