/* sync.c: brings a mailbox's index records in line with its new/ and cur/
 * directories and rebuilds the view. A first pass runs in a read
 * transaction; only when it finds a difference is the directory scanned
 * again and the change applied under the LMDB write transaction, which
 * serialises all heron writers (and heron-uidlist appends) of the user.
 * A mailbox without an index record (new, or index lost) is rebuilt from
 * heron-uidlist, keeping UIDVALIDITY and the UIDs of files still present.
 * A file the index lost the record of (damage) while the mailbox record
 * stayed gets its UID back from heron-uidlist too, when that UID is free
 * (below UIDNEXT, no record, not expunged); heron-uidlist is only read
 * for a new file not newer than it (pick_uid), never for a fresh one.
 * Limits: file names over STORE_NAME_MAX bytes, dot files and entries
 * that are not regular files (symlinks, directories) are ignored.
 *
 * Fast path: the index record keeps the mtimes (ns) of new/ and cur/ as
 * of the last scan that matched it. When both are unchanged and older
 * than STORE_DIR_MTIME_SLACK_SECS (a change within the same timestamp
 * tick would not move the mtime), nothing is read from the directories;
 * when the record also equals the one the view was built from, the view
 * is kept as it is. A new view is the one another session of the process
 * already built from the same record when there is one (view.c), else
 * read from the index; it is compared with the old view to report
 * expunged, new and changed messages (struct store_changes). */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "net/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct scan_ent {
	uint32_t off;		/* "new/<name>" or "cur/<name>" in names */
	uint16_t len;		/* of that path */
	uint16_t bn_len;	/* basename = names + off + 4 */
	uint32_t flags;
	uint32_t kw_letters;	/* keyword bits 0..25 from the name */
	bool is_seen;		/* matched an index record */
};

struct sync_upd {
	uint32_t uid;
	size_t ent;
};

struct sync_ctx {
	struct store_mailbox *mb;
	struct store_index *idx;
	/* Refresh the view from the index without looking at the
	 * directories (another view of this process just synced them). */
	bool trust_index;
	MDB_txn *txn;
	struct scan_ent *ents;
	size_t count, cap;
	char *names;
	size_t names_len, names_cap;

	struct index_mbox rec;
	bool is_rec_missing;
	uint32_t *dels;
	size_t del_count;
	struct sync_upd *upds;
	size_t upd_count;
	size_t new_count;
	struct uidlist ul;
	/* ul holds heron-uidlist (read for a rebuild, or lazily for a file
	 * the index lost, see pick_uid); ul_mtime_ns: the file's mtime, 0
	 * missing, -1 not looked at yet. */
	bool is_ul_read;
	int64_t ul_mtime_ns;
	int64_t mtime_ns[2];	/* new/, cur/ before the scan; 0 = recent */
	struct store_changes *changes;
};

static const char *scan_names;

#define ENT_BN(ctx, e) ((ctx)->names + (e)->off + 4)

static int bn_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	return r != 0 ? r : (alen < blen ? -1 : alen > blen);
}

/* By basename; "cur/" sorts before "new/" for the same basename. */
static int ent_cmp(const void *a, const void *b)
{
	const struct scan_ent *x = a, *y = b;
	int r = bn_cmp(scan_names + x->off + 4, x->bn_len,
		       scan_names + y->off + 4, y->bn_len);

	return r != 0 ? r : memcmp(scan_names + x->off, scan_names + y->off, 3);
}

/* Whether a directory entry is a regular file: a symlink (say to
 * /etc/shadow), a directory or a device in new/ or cur/ is not a message
 * and is never indexed, so never opened. */
static bool ent_is_file(int dir_fd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		S_ISREG(st.st_mode);
}

static void scan_add(struct sync_ctx *ctx, const char *sub, const char *name)
{
	size_t len = strlen(name), bn_len = strcspn(name, ":");
	struct scan_ent *e;

	if (name[0] == '.' || len > STORE_NAME_MAX || bn_len == 0)
		return;
	if (ctx->count == ctx->cap) {
		ctx->cap = ctx->cap ? ctx->cap * 2 : 256;
		ctx->ents = xreallocarray(ctx->ents, ctx->cap,
					  sizeof(*ctx->ents));
	}
	while (ctx->names_len + len + 5 > ctx->names_cap) {
		ctx->names_cap = ctx->names_cap ? ctx->names_cap * 2 : 16384;
		ctx->names = xrealloc(ctx->names, ctx->names_cap);
	}
	e = &ctx->ents[ctx->count++];
	e->off = (uint32_t)ctx->names_len;
	e->len = (uint16_t)(len + 4);
	e->bn_len = (uint16_t)bn_len;
	e->flags = 0;
	e->kw_letters = 0;
	if (strcmp(sub, "cur") == 0) {
		e->flags = maildir_name_flags(name, len);
		e->kw_letters = (uint32_t)maildir_name_keywords(name, len);
	}
	e->is_seen = false;
	memcpy(ctx->names + ctx->names_len, sub, 3);
	ctx->names[ctx->names_len + 3] = '/';
	memcpy(ctx->names + ctx->names_len + 4, name, len + 1);
	ctx->names_len += len + 5;
}

static int scan_dir(struct sync_ctx *ctx, const char *sub)
{
	struct dirent *de;
	char path[4096];
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", ctx->mb->dir, sub);
	if ((d = opendir(path)) == NULL)
		return store_set_error(ctx->mb->error, NULL,
				       "opendir(%s) failed: %s", path,
				       strerror(errno));
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' && ent_is_file(dirfd(d), de))
			scan_add(ctx, sub, de->d_name);
	}
	if (errno != 0) {
		store_set_error(ctx->mb->error, NULL, "readdir(%s) failed: %s",
				path, strerror(errno));
		closedir(d);
		return -1;
	}
	closedir(d);
	return 0;
}

/* Reads new/ and cur/, sorts by basename, drops duplicates (a file seen
 * in both while another MUA moved it: the cur/ one wins). */
/* mtimes of new/ and cur/ in ns, 0 for one that may still change
 * unnoticed (STORE_DIR_MTIME_SLACK_SECS). */
static int dir_mtimes(struct store_mailbox *mb, int64_t ns_r[2])
{
	static const char *const subs[] = { "new", "cur" };
	struct timespec now;
	int64_t now_ns, slack_ns;
	char path[4096];
	struct stat st;

	clock_gettime(CLOCK_REALTIME, &now);
	now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", mb->dir, subs[i]);
		if (stat(path, &st) < 0)
			return store_set_error(mb->error, NULL,
					       "stat(%s) failed: %s", path,
					       strerror(errno));
		ns_r[i] = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			st.st_mtim.tv_nsec;
		/* A filesystem with sub-second timestamps (ext4, xfs, tmpfs:
		 * the kernel's coarse clock, a few ms) can only hide a second
		 * change within STORE_DIR_MTIME_SLACK_MSECS; one with whole
		 * seconds (tv_nsec always 0) within seconds. */
		slack_ns = st.st_mtim.tv_nsec != 0 ?
			(int64_t)STORE_DIR_MTIME_SLACK_MSECS * 1000000 :
			(int64_t)STORE_DIR_MTIME_SLACK_SECS * 1000000000;
		if (ns_r[i] >= now_ns - slack_ns || ns_r[i] == 0)
			ns_r[i] = 0;
	}
	return 0;
}

static int scan(struct sync_ctx *ctx)
{
	size_t i, j;

	ctx->count = 0;
	ctx->names_len = 0;
	/* Before reading: a change during the scan moves the mtime on. */
	if (dir_mtimes(ctx->mb, ctx->mtime_ns) < 0 ||
	    scan_dir(ctx, "new") < 0 || scan_dir(ctx, "cur") < 0)
		return -1;
	scan_names = ctx->names;
	if (ctx->count > 1)
		qsort(ctx->ents, ctx->count, sizeof(*ctx->ents), ent_cmp);
	for (i = j = 0; i < ctx->count; i++) {
		if (j > 0 && bn_cmp(ENT_BN(ctx, &ctx->ents[j - 1]),
				    ctx->ents[j - 1].bn_len,
				    ENT_BN(ctx, &ctx->ents[i]),
				    ctx->ents[i].bn_len) == 0)
			continue;
		ctx->ents[j++] = ctx->ents[i];
	}
	ctx->count = j;
	return 0;
}

static struct scan_ent *scan_find(struct sync_ctx *ctx, const char *bn,
				  size_t bn_len)
{
	size_t lo = 0, hi = ctx->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct scan_ent *e = &ctx->ents[mid];
		int r = bn_cmp(bn, bn_len, ENT_BN(ctx, e), e->bn_len);

		if (r == 0)
			return e;
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void plan_reset(struct sync_ctx *ctx)
{
	ctx->del_count = 0;
	ctx->upd_count = 0;
	ctx->new_count = 0;
	ctx->is_rec_missing = false;
	for (size_t i = 0; i < ctx->count; i++)
		ctx->ents[i].is_seen = false;
}

static void plan_record(struct sync_ctx *ctx, uint32_t uid,
			const struct index_msg_view *msg)
{
	struct scan_ent *e = scan_find(ctx, msg->basename,
				       msg->hdr.basename_len);

	if (e == NULL) {
		ctx->dels = xreallocarray(ctx->dels, ctx->del_count + 1,
					  sizeof(*ctx->dels));
		ctx->dels[ctx->del_count++] = uid;
		return;
	}
	e->is_seen = true;
	if (e->len != msg->hdr.path_len ||
	    memcmp(ctx->names + e->off, msg->path, e->len) != 0) {
		ctx->upds = xreallocarray(ctx->upds, ctx->upd_count + 1,
					  sizeof(*ctx->upds));
		ctx->upds[ctx->upd_count].uid = uid;
		ctx->upds[ctx->upd_count++].ent = (size_t)(e - ctx->ents);
	}
}

/* Compares the index with the scan. Returns 1 if anything differs, 0 if
 * not, -1 on error (an LMDB code in *rc_r). */
static int plan(struct sync_ctx *ctx, int *rc_r)
{
	struct index_msg_view msg;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	uint32_t records = 0;
	bool is_count_wrong;
	int rc;

	plan_reset(ctx);
	rc = index_get_mbox(ctx->idx, ctx->txn, ctx->mb->key, &ctx->rec);
	if (rc == MDB_NOTFOUND) {
		ctx->is_rec_missing = true;
		ctx->new_count = ctx->count;
		return 1;
	}
	if (rc != 0 || (rc = mdb_cursor_open(ctx->txn, ctx->idx->dbi_msg,
					     &cur)) != 0) {
		*rc_r = rc;
		return -1;
	}
	index_msg_key(kbuf, ctx->rec.id, 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8 || memcmp(key.mv_data, kbuf, 4) != 0)
			break;
		if (index_msg_decode(&val, &msg) < 0) {
			rc = MDB_CORRUPTED;
			break;
		}
		plan_record(ctx, store_get_be32((uint8_t *)key.mv_data + 4),
			    &msg);
		records++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		*rc_r = rc;
		return -1;
	}
	for (size_t i = 0; i < ctx->count; i++) {
		if (!ctx->ents[i].is_seen)
			ctx->new_count++;
	}
	/* Records lost to index damage leave the count too high: the
	 * records just read are the truth (apply counts from there). */
	is_count_wrong = records != ctx->rec.count;
	ctx->rec.count = records;
	return is_count_wrong ||
		ctx->del_count + ctx->upd_count + ctx->new_count > 0;
}

/* A new mailbox record; UIDVALIDITY and UIDNEXT from heron-uidlist when
 * there is one, else a UIDVALIDITY never handed out before. RFC 3501
 * 2.3.1.1: "the unique identifier validity value ... MUST NOT be reused"
 * when UIDs change, and UIDs strictly ascend: hence max(now, last + 1)
 * and UIDNEXT never below the highest UID heron-uidlist remembers. */
static int apply_new_rec(struct sync_ctx *ctx)
{
	struct index_meta meta;
	uint32_t now = (uint32_t)time(NULL);
	char err[STORE_ERROR_MAX];
	int rc;

	if (uidlist_read(ctx->mb->dir, &ctx->ul, err, sizeof(err)) < 0)
		return store_set_error(ctx->mb->error, NULL, "%s", err);
	ctx->is_ul_read = true;
	if ((rc = index_get_meta(ctx->idx, ctx->txn, &meta)) != 0)
		return rc;
	memset(&ctx->rec, 0, sizeof(ctx->rec));
	ctx->rec.id = meta.next_mailbox_id++;
	ctx->rec.uidvalidity = ctx->ul.uidvalidity;
	if (ctx->rec.uidvalidity == 0) {
		ctx->rec.uidvalidity = now > meta.last_uidvalidity ? now :
			meta.last_uidvalidity + 1;
	}
	if (ctx->rec.uidvalidity > meta.last_uidvalidity)
		meta.last_uidvalidity = ctx->rec.uidvalidity;
	ctx->rec.uidnext = ctx->ul.uidnext > 0 ? ctx->ul.uidnext : 1;
	dovecot_init_modseqs(&ctx->ul, &ctx->rec);
	ctx->rec.first_recent_uid = 1;
	if ((rc = keyword_import(ctx->idx, ctx->txn, ctx->rec.id,
				 ctx->mb->dir)) != 0)
		return rc;
	if (ctx->ul.count > 0) {
		log_info("store: rebuilding mailbox index from %s dir=%s "
			 "uidvalidity=%u known_uids=%zu files=%zu",
			 STORE_UIDLIST_NAME, ctx->mb->dir,
			 ctx->rec.uidvalidity, ctx->ul.count, ctx->count);
		metrics_inc(METRICS_INDEX_REBUILDS);
	}
	return index_put_meta(ctx->idx, ctx->txn, &meta);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Files gone from the directories: expunged by someone else. One modseq
 * for all of them, recorded for QRESYNC. */
static int apply_dels(struct sync_ctx *ctx)
{
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < ctx->del_count; i++) {
		rc = index_del_msg(ctx->idx, ctx->txn, &ctx->rec,
				   ctx->dels[i]);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return rc;
		if (rc == MDB_NOTFOUND)
			continue;
		ctx->dels[n++] = ctx->dels[i];
		if (ctx->rec.count > 0)
			ctx->rec.count--;
	}
	if (n == 0)
		return 0;
	qsort(ctx->dels, n, sizeof(*ctx->dels), uid_cmp);
	ctx->rec.highestmodseq++;
	return index_put_expunged(ctx->idx, ctx->txn, &ctx->rec,
				  ctx->rec.highestmodseq, ctx->dels, n);
}

/* A file renamed by someone else (its name differs from the record's
 * path): maildir_merge_letters decides the flags; the record takes the
 * new path. A rename of ours still pending stays pending. */
static int apply_upd(struct sync_ctx *ctx, const struct sync_upd *u)
{
	const struct scan_ent *e = &ctx->ents[u->ent];
	struct index_msg_view msg;
	struct index_msg hdr;
	char bn[STORE_NAME_MAX + 1];
	bool was_pending, is_pending;
	int rc;

	rc = index_get_msg(ctx->idx, ctx->txn, ctx->rec.id, u->uid, &msg);
	if (rc != 0)
		return rc;
	hdr = msg.hdr;
	memcpy(bn, msg.basename, hdr.basename_len);
	was_pending = maildir_path_differs(msg.path, hdr.path_len, hdr.flags,
					   hdr.keywords);
	maildir_merge_letters(&hdr, msg.path, hdr.path_len, e->flags,
			      e->kw_letters);
	if (hdr.flags != msg.hdr.flags || hdr.keywords != msg.hdr.keywords)
		hdr.modseq = ++ctx->rec.highestmodseq;
	hdr.path_len = e->len;
	is_pending = maildir_path_differs(ctx->names + e->off, e->len,
					  hdr.flags, hdr.keywords);
	if (was_pending && ctx->rec.pending_renames > 0)
		ctx->rec.pending_renames--;
	if (is_pending)
		ctx->rec.pending_renames++;
	return index_put_msg(ctx->idx, ctx->txn, ctx->rec.id, u->uid, &hdr,
			     bn, ctx->names + e->off);
}

static int apply_dels_upds(struct sync_ctx *ctx)
{
	int rc;

	if ((rc = apply_dels(ctx)) != 0)
		return rc;
	for (size_t i = 0; i < ctx->upd_count; i++) {
		if ((rc = apply_upd(ctx, &ctx->upds[i])) != 0)
			return rc;
	}
	return 0;
}

/* Value of ",<tag>=<digits>" in the basename, or -1. */
static int64_t bn_number(const char *bn, size_t bn_len, char tag)
{
	for (size_t i = 0; i + 3 < bn_len; i++) {
		uint64_t n = 0;
		size_t j;

		if (bn[i] != ',' || bn[i + 1] != tag || bn[i + 2] != '=')
			continue;
		for (j = i + 3; j < bn_len && bn[j] >= '0' && bn[j] <= '9' &&
		     n < (UINT64_C(1) << 50); j++)
			n = n * 10 + (uint64_t)(bn[j] - '0');
		if (j > i + 3 && (j == bn_len || bn[j] == ','))
			return (int64_t)n;
	}
	return -1;
}

/* Octets with bare LFs counted twice; -1 on read error. */
static int count_vsize(const char *path, uint64_t *vsize_r)
{
	char buf[65536];
	bool prev_cr = false;
	uint64_t v = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while ((r = read(fd, buf, sizeof(buf))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		for (ssize_t i = 0; i < r; i++) {
			v += buf[i] == '\n' && !prev_cr ? 2 : 1;
			prev_cr = buf[i] == '\r';
		}
	}
	close(fd);
	*vsize_r = v;
	return 0;
}

/* Fills hdr for a file new to the index and its mtime in ns; 1 ok, 0
 * vanished, -1 error. */
static int new_msg_hdr(struct sync_ctx *ctx, const struct scan_ent *e,
		       struct index_msg *hdr, int64_t *mtime_ns_r)
{
	const char *bn = ENT_BN(ctx, e);
	int64_t s = bn_number(bn, e->bn_len, 'S');
	int64_t w = bn_number(bn, e->bn_len, 'W');
	char path[4096];
	struct stat st;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", ctx->mb->dir,
		 ctx->names + e->off);
	memset(hdr, 0, sizeof(*hdr));
	ret = lstat(path, &st);
	if (ret == 0 && !S_ISREG(st.st_mode))
		return 0;	/* replaced by a non-file since the scan */
	if (ret < 0 || (w < 0 && count_vsize(path, &hdr->vsize) < 0)) {
		if (errno == ENOENT)
			return 0;
		return store_set_error(ctx->mb->error, NULL,
				       "stat(%s) failed: %s", path,
				       strerror(errno));
	}
	hdr->flags = e->flags;
	hdr->keywords = e->kw_letters;
	hdr->basename_len = e->bn_len;
	hdr->path_len = e->len;
	hdr->size = s >= 0 ? (uint64_t)s : (uint64_t)st.st_size;
	if (w >= 0)
		hdr->vsize = (uint64_t)w;
	hdr->internal_date = st.st_mtime;
	*mtime_ns_r = (int64_t)st.st_mtim.tv_sec * 1000000000 +
		st.st_mtim.tv_nsec;
	return 1;
}

/* Delivery order: names start with the delivery time in seconds, so the
 * leading number compares numerically, the rest bytewise. */
static int delivery_cmp(const void *a, const void *b)
{
	const struct scan_ent *x = *(struct scan_ent *const *)a;
	const struct scan_ent *y = *(struct scan_ent *const *)b;
	const char *xn = scan_names + x->off + 4, *yn = scan_names + y->off + 4;
	size_t xd = strspn(xn, "0123456789"), yd = strspn(yn, "0123456789");

	if (xd != yd && xd > 0 && yd > 0)
		return xd < yd ? -1 : 1;
	return bn_cmp(xn, x->bn_len, yn, y->bn_len);
}

static struct scan_ent **new_ents_sorted(struct sync_ctx *ctx)
{
	struct scan_ent **v = xreallocarray(NULL, ctx->new_count + 1,
					    sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < ctx->count; i++) {
		if (!ctx->ents[i].is_seen)
			v[n++] = &ctx->ents[i];
	}
	scan_names = ctx->names;
	qsort(v, n, sizeof(*v), delivery_cmp);
	ctx->new_count = n;
	return v;
}

/* Whether uid is in the expunge history of the mailbox (dbi_exp):
 * 1 yes, 0 no, else an LMDB code. */
static int exp_has_uid(struct sync_ctx *ctx, uint32_t uid)
{
	uint8_t kbuf[12] = { 0 };
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	uint32_t r[2];
	int rc, found = 0;

	if ((rc = mdb_cursor_open(ctx->txn, ctx->idx->dbi_exp, &cur)) != 0)
		return rc;
	index_msg_key(kbuf, ctx->rec.id, 0);	/* BE32 id, then zeros */
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	     rc == 0 && found == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 12 || memcmp(key.mv_data, kbuf, 4) != 0)
			break;
		for (size_t i = 0; i + sizeof(r) <= val.mv_size;
		     i += sizeof(r)) {
			memcpy(r, (const uint8_t *)val.mv_data + i, sizeof(r));
			if (uid >= r[0] && uid <= r[1])
				found = 1;
		}
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? found : rc;
}

/* For a file the index does not know although its mtime is not newer
 * than heron-uidlist's (a file can only have a line there when it was
 * written before the line): reads heron-uidlist once per sync. A fresh
 * delivery is newer than the file, so the common path costs one stat()
 * per sync that finds new files, and no read. */
static int uidlist_load_lazy(struct sync_ctx *ctx, int64_t file_mtime_ns)
{
	char err[STORE_ERROR_MAX], *path;
	struct stat st;

	if (ctx->is_ul_read)
		return 0;
	if (ctx->ul_mtime_ns < 0) {
		path = xasprintf("%s/%s", ctx->mb->dir, STORE_UIDLIST_NAME);
		ctx->ul_mtime_ns = stat(path, &st) < 0 ? 0 :
			(int64_t)st.st_mtim.tv_sec * 1000000000 +
			st.st_mtim.tv_nsec;
		free(path);
	}
	if (ctx->ul_mtime_ns == 0 || file_mtime_ns > ctx->ul_mtime_ns)
		return 0;
	if (uidlist_read(ctx->mb->dir, &ctx->ul, err, sizeof(err)) < 0)
		return store_set_error(ctx->mb->error, NULL, "%s", err);
	ctx->is_ul_read = true;
	return 0;
}

/* Whether the UID heron-uidlist remembers for a file may be given to it
 * again: on a rebuild any UID without a record; otherwise (the index
 * lost the file's record) only one below UIDNEXT that no record holds
 * and that was not expunged (RFC 3501 2.3.1.1: UIDs are never reused
 * for another message; this is the same message getting its UID back).
 * 1 yes, 0 no, else an LMDB code. */
static int uid_is_free(struct sync_ctx *ctx, uint32_t uid)
{
	struct index_msg_view msg;
	int rc;

	if (uid == 0 || (!ctx->is_rec_missing && uid >= ctx->rec.uidnext))
		return 0;
	rc = index_get_msg(ctx->idx, ctx->txn, ctx->rec.id, uid, &msg);
	if (rc != MDB_NOTFOUND)
		return rc;
	if (ctx->is_rec_missing)
		return 1;
	rc = exp_has_uid(ctx, uid);
	return rc == 0 ? 1 : rc == 1 ? 0 : rc;
}

/* UID for a new file: the one heron-uidlist remembers when rebuilding,
 * or for a file the index lost (and it is still free), else UIDNEXT. */
static int pick_uid(struct sync_ctx *ctx, const struct scan_ent *e,
		    int64_t mtime_ns, uint32_t *uid_r)
{
	uint32_t uid;
	int rc;

	if (uidlist_load_lazy(ctx, mtime_ns) < 0)
		return -1;
	uid = uidlist_lookup(&ctx->ul, ENT_BN(ctx, e), e->bn_len);
	if ((rc = uid_is_free(ctx, uid)) == 1) {
		*uid_r = uid;
		if (uid >= ctx->rec.uidnext)
			ctx->rec.uidnext = uid + 1;
		if (!ctx->is_rec_missing)
			log_info("store: file the index had lost keeps its "
				 "UID dir=%s uid=%u", ctx->mb->dir, uid);
		return 0;
	}
	if (rc != 0)
		return rc;
	if (ctx->rec.uidnext == UINT32_MAX)
		return MDB_MAP_FULL;	/* UIDs exhausted: reported ENOSPC */
	*uid_r = ctx->rec.uidnext++;
	return 0;
}

static void text_append(char **buf, size_t *len, size_t *cap, uint32_t uid,
			const char *bn, size_t bn_len)
{
	while (*len + bn_len + 16 > *cap) {
		*cap = *cap ? *cap * 2 : 4096;
		*buf = xrealloc(*buf, *cap);
	}
	*len += (size_t)snprintf(*buf + *len, *cap - *len, "%u %.*s\n", uid,
				 (int)bn_len, bn);
}

static int apply_news(struct sync_ctx *ctx, char **text, size_t *text_len)
{
	struct scan_ent **v = new_ents_sorted(ctx);
	size_t cap = 0;
	struct index_msg hdr;
	int64_t mtime_ns;
	uint32_t uid;
	int rc = 0, ret;

	for (size_t i = 0; i < ctx->new_count && rc == 0; i++) {
		ret = new_msg_hdr(ctx, v[i], &hdr, &mtime_ns);
		if (ret <= 0) {
			rc = ret < 0 ? -1 : 0;
			continue;
		}
		if ((rc = pick_uid(ctx, v[i], mtime_ns, &uid)) != 0)
			break;
		hdr.modseq = ++ctx->rec.highestmodseq;
		rc = index_put_msg(ctx->idx, ctx->txn, ctx->rec.id, uid, &hdr,
				   ENT_BN(ctx, v[i]), ctx->names + v[i]->off);
		ctx->rec.count++;
		text_append(text, text_len, &cap, uid, ENT_BN(ctx, v[i]),
			    v[i]->bn_len);
	}
	free(v);
	return rc;
}

int store_uidlist_add(struct store_mailbox *mb, MDB_txn *txn,
		      struct index_mbox *rec, const char *text, size_t len,
		      bool force_rewrite)
{
	char err[STORE_ERROR_MAX];	/* mb->error only on failure */
	uint32_t lines = 0;

	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (!force_rewrite &&
	    rec->uidlist_lines + lines <= 2 * rec->count +
	    STORE_UIDLIST_SLACK) {
		if (len == 0)
			return 0;
		if (uidlist_append(mb->dir, text, len, rec->uidnext, err,
				   sizeof(err)) == 0) {
			rec->uidlist_lines += lines;
			return 0;
		}
		/* missing, or a symlink (O_NOFOLLOW): the rewrite replaces
		 * it with a file */
		if (errno != ENOENT && errno != ELOOP)
			return store_set_error(mb->error, NULL, "%s", err);
	}
	if (uidlist_rewrite(mb->dir, mb->su->index, txn, rec, err,
			    sizeof(err)) < 0)
		return store_set_error(mb->error, NULL, "%s", err);
	return 0;
}

/* Applies the plan in the write transaction. Returns 0, -1 (error set,
 * errno kept) or an LMDB code. */
static int apply(struct sync_ctx *ctx)
{
	char *text = NULL;
	size_t text_len = 0;
	int rc;

	if (ctx->is_rec_missing && (rc = apply_new_rec(ctx)) != 0)
		return rc;
	if ((rc = apply_dels_upds(ctx)) != 0 ||
	    (rc = apply_news(ctx, &text, &text_len)) != 0) {
		free(text);
		return rc;
	}
	rc = store_uidlist_add(ctx->mb, ctx->txn, &ctx->rec, text, text_len,
			       ctx->is_rec_missing);
	free(text);
	return rc;
}

struct view_build {
	struct store_msg *msgs;
	uint32_t n, cap;
	size_t *offs;		/* basename, path offsets in strings */
	char *strings;
	size_t len, scap;
};

static void u32_push(uint32_t **arr, size_t *n, size_t *cap, uint32_t v)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*arr = xreallocarray(*arr, *cap, sizeof(**arr));
	}
	(*arr)[(*n)++] = v;
}

/* Keeps a copy of the record's names; the path gets room to grow by a
 * flag change (STORE_PATH_EXTRA). */
static void view_add_names(struct view_build *b,
			   const struct index_msg_view *msg)
{
	size_t bn = msg->hdr.basename_len, pl = msg->hdr.path_len;
	size_t need = bn + 1 + (pl > bn + STORE_PATH_EXTRA ? pl :
				bn + STORE_PATH_EXTRA) + 1; /* SIZE-MATH */
	size_t *offs = &b->offs[2 * (b->n - 1)];

	while (b->len + need > b->scap) {
		b->scap = b->scap ? b->scap * 2 : 16384;
		b->strings = xrealloc(b->strings, b->scap);
	}
	offs[0] = b->len;
	memcpy(b->strings + b->len, msg->basename, bn);
	b->strings[b->len + bn] = '\0';
	offs[1] = b->len + bn + 1;
	memcpy(b->strings + offs[1], msg->path, pl);
	b->strings[offs[1] + pl] = '\0';
	b->len += need;
}

static void view_add(struct view_build *b, bool names, uint32_t uid,
		     const struct index_msg_view *msg)
{
	struct store_msg *m;

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->msgs = xreallocarray(b->msgs, b->cap, sizeof(*b->msgs));
		if (names)
			b->offs = xreallocarray(b->offs, b->cap,
						2 * sizeof(*b->offs));
	}
	m = &b->msgs[b->n++];
	memset(m, 0, sizeof(*m));
	m->uid = uid;
	m->flags = msg->hdr.flags;
	m->keywords = msg->hdr.keywords;
	m->size = msg->hdr.size;
	m->vsize = msg->hdr.vsize;
	m->internal_date = (time_t)msg->hdr.internal_date;
	m->modseq = msg->hdr.modseq;
	if (names)
		view_add_names(b, msg);
}

/* Reports the difference between mb's view and msgs[0..count), both
 * sorted by UID: old entries missing from msgs were expunged, entries
 * with another modseq changed, the rest of msgs is new. */
static void view_diff(const struct store_mailbox *mb,
		      struct store_changes *ch, const struct store_msg *msgs,
		      uint32_t count)
{
	size_t exp_cap = 0, chg_cap = 0;
	uint32_t i = 0, j = 0;

	while (i < count || j < mb->count) {
		if (j < mb->count &&
		    (i == count || mb->msgs[j].uid < msgs[i].uid)) {
			if (ch->expunged_count == exp_cap) {
				exp_cap = exp_cap ? exp_cap * 2 : 64;
				ch->expunged_uids = xreallocarray(
					ch->expunged_uids, exp_cap,
					sizeof(uint32_t));
				ch->expunged_seqs = xreallocarray(
					ch->expunged_seqs, exp_cap,
					sizeof(uint32_t));
			}
			ch->expunged_uids[ch->expunged_count] =
				mb->msgs[j].uid;
			ch->expunged_seqs[ch->expunged_count++] = j + 1;
			j++;
		} else if (j < mb->count && mb->msgs[j].uid == msgs[i].uid) {
			if (mb->msgs[j].modseq != msgs[i].modseq)
				u32_push(&ch->changed_uids,
					 &ch->changed_count, &chg_cap,
					 msgs[i].uid);
			i++;
			j++;
		} else {
			ch->new_count++;
			i++;
		}
	}
}

/* The view as a listed store_view; the block trimmed to size (the view
 * lives as long as its sessions). */
static struct store_view *view_finish(struct store_mailbox *mb,
				      struct view_build *b,
				      const struct index_mbox *rec)
{
	struct store_view *v;

	if (b->strings != NULL && b->len < b->scap)
		b->strings = xrealloc(b->strings, b->len > 0 ? b->len : 1);
	if (b->n < b->cap && b->n > 0)
		b->msgs = xreallocarray(b->msgs, b->n, sizeof(*b->msgs));
	for (uint32_t i = 0; b->offs != NULL && i < b->n; i++) {
		b->msgs[i].basename = b->strings + b->offs[2 * i];
		b->msgs[i].path = b->strings + b->offs[2 * i + 1];
	}
	v = store_view_new(mb, rec, b->msgs, b->n, b->strings, b->len);
	b->msgs = NULL;
	b->strings = NULL;
	return v;
}

/* Whether the view was built from this record (nothing to refresh). */
static bool view_is_current(const struct store_mailbox *mb,
			    const struct index_mbox *rec)
{
	const struct index_mbox *v = &mb->view_rec;

	return mb->has_view && v->id == rec->id &&
		v->uidvalidity == rec->uidvalidity &&
		v->uidnext == rec->uidnext && v->count == rec->count &&
		v->highestmodseq == rec->highestmodseq;
}

/* Whether to diff against the old view (not on the first build, nor
 * across a UIDVALIDITY change, which the caller must report). */
static void changes_init(struct store_mailbox *mb, struct store_changes *ch,
			 const struct index_mbox *rec, bool *diff_r)
{
	*diff_r = false;
	if (ch == NULL || !mb->has_view)
		return;
	if (mb->view_rec.uidvalidity != rec->uidvalidity) {
		ch->uidvalidity_changed = true;
		return;
	}
	*diff_r = true;
}

/* Reads the messages of rec from the index into a new listed view. */
static int view_read(struct store_mailbox *mb, MDB_txn *txn,
		     const struct index_mbox *rec, struct store_view **view_r)
{
	struct store_index *idx = mb->su->index;
	struct view_build b;
	struct index_msg_view msg;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	int rc;

	memset(&b, 0, sizeof(b));
	b.cap = rec->count + 1;
	b.msgs = xreallocarray(NULL, b.cap, sizeof(*b.msgs));
	if (!mb->no_names)
		b.offs = xreallocarray(NULL, b.cap, 2 * sizeof(*b.offs));
	if ((rc = mdb_cursor_open(txn, idx->dbi_msg, &cur)) != 0)
		goto out;
	index_msg_key(kbuf, rec->id, 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8 || memcmp(key.mv_data, kbuf, 4) != 0)
			break;
		if (index_msg_decode(&val, &msg) < 0) {
			rc = MDB_CORRUPTED;
			break;
		}
		view_add(&b, !mb->no_names,
			 store_get_be32((uint8_t *)key.mv_data + 4), &msg);
	}
	mdb_cursor_close(cur);
	if (rc == 0 || rc == MDB_NOTFOUND) {
		rc = 0;
		*view_r = view_finish(mb, &b, rec);
	}
out:
	free(b.msgs);
	free(b.offs);
	free(b.strings);
	return rc;
}

/* Gives mb the view of rec: the one another session of this process
 * already has, or a new one read from the index. */
static int build_view(struct store_mailbox *mb, MDB_txn *txn,
		      const struct index_mbox *rec,
		      struct store_changes *ch)
{
	struct store_view *view;
	bool diff;
	int rc;

	changes_init(mb, ch, rec, &diff);
	view = store_view_lookup(mb, rec);
	if (view == NULL && (rc = view_read(mb, txn, rec, &view)) != 0)
		return rc;
	if (diff && view != mb->view) {
		uint32_t count;
		const struct store_msg *msgs = store_view_msgs(view, &count);

		view_diff(mb, ch, msgs, count);
	}
	store_mailbox_set_view(mb, view);
	mb->view_rec = *rec;
	mb->has_view = true;
	return 0;
}

static void rec_set_mtimes(struct sync_ctx *ctx)
{
	ctx->rec.new_mtime_ns = ctx->mtime_ns[0];
	ctx->rec.cur_mtime_ns = ctx->mtime_ns[1];
}

static bool rec_same(const struct index_mbox *a, const struct index_mbox *b)
{
	return a->id == b->id && a->uidnext == b->uidnext &&
		a->count == b->count && a->highestmodseq == b->highestmodseq;
}

static int sync_write(struct sync_ctx *ctx, bool want_view)
{
	int rc, changed, err;

	if ((rc = store_index_txn_begin(ctx->idx, 0, &ctx->txn)) != 0)
		return rc;
	/* Rescan under the write lock: no other heron process changes the
	 * index (or our files through the store API) meanwhile. */
	if (scan(ctx) < 0) {
		rc = -1;
		goto abort;
	}
	if ((changed = plan(ctx, &rc)) < 0)
		goto abort;
	if (changed > 0 && (rc = apply(ctx)) != 0)
		goto abort;
	rec_set_mtimes(ctx);
	if ((rc = index_put_mbox(ctx->idx, ctx->txn, ctx->mb->key,
				 &ctx->rec)) != 0)
		goto abort;
	if (want_view && !view_is_current(ctx->mb, &ctx->rec) &&
	    (rc = build_view(ctx->mb, ctx->txn, &ctx->rec,
			     ctx->changes)) != 0)
		goto abort;
	rc = store_txn_commit(ctx->txn);
	ctx->txn = NULL;
	return rc;
abort:
	err = errno;
	store_txn_abort(ctx->txn);
	ctx->txn = NULL;
	errno = err;
	return rc;
}

/* Records the directories' mtimes after a scan that matched the index,
 * unless the index changed meanwhile (then the next sync scans). */
static int sync_write_mtimes(struct sync_ctx *ctx)
{
	struct index_mbox rec;
	int rc;

	if ((rc = store_index_txn_begin(ctx->idx, 0, &ctx->txn)) != 0)
		return rc;
	rc = index_get_mbox(ctx->idx, ctx->txn, ctx->mb->key, &rec);
	if (rc == 0 && rec_same(&rec, &ctx->rec)) {
		rec_set_mtimes(ctx);
		rec.new_mtime_ns = ctx->rec.new_mtime_ns;
		rec.cur_mtime_ns = ctx->rec.cur_mtime_ns;
		rc = index_put_mbox(ctx->idx, ctx->txn, ctx->mb->key, &rec);
	}
	if (rc == 0)
		rc = store_txn_commit(ctx->txn);
	else
		store_txn_abort(ctx->txn);
	ctx->txn = NULL;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The fast path: 1 when the record's mtimes match the directories (the
 * view refreshed from the index if needed), 0 when a scan is needed. */
static int sync_fast(struct sync_ctx *ctx, bool want_view, int *rc_r)
{
	int64_t ns[2];
	int rc;

	if (ctx->trust_index) {
		ns[0] = ns[1] = 0;
	} else if (dir_mtimes(ctx->mb, ns) < 0) {
		*rc_r = -1;
		return 1;
	} else if (ns[0] == 0 || ns[1] == 0) {
		return 0;
	}
	if ((rc = store_index_txn_begin(ctx->idx, MDB_RDONLY,
					&ctx->txn)) != 0) {
		*rc_r = rc;
		return 1;
	}
	rc = index_get_mbox(ctx->idx, ctx->txn, ctx->mb->key, &ctx->rec);
	if (rc == 0 && !ctx->trust_index &&
	    (ctx->rec.new_mtime_ns != ns[0] || ctx->rec.cur_mtime_ns != ns[1]))
		rc = MDB_NOTFOUND;
	if (rc == 0 && want_view && !view_is_current(ctx->mb, &ctx->rec))
		rc = build_view(ctx->mb, ctx->txn, &ctx->rec, ctx->changes);
	store_txn_abort(ctx->txn);
	ctx->txn = NULL;
	if (rc == MDB_NOTFOUND)
		return 0;
	*rc_r = rc;
	return 1;
}

static int sync_run(struct sync_ctx *ctx, bool want_view)
{
	int rc = 0, changed;

	if (sync_fast(ctx, want_view, &rc) > 0)
		return rc;
	if (scan(ctx) < 0)
		return -1;
	rc = store_index_txn_begin(ctx->idx, MDB_RDONLY, &ctx->txn);
	if (rc != 0)
		return rc;
	changed = plan(ctx, &rc);
	if (changed == 0 && want_view && !view_is_current(ctx->mb, &ctx->rec))
		rc = build_view(ctx->mb, ctx->txn, &ctx->rec, ctx->changes);
	store_txn_abort(ctx->txn);
	ctx->txn = NULL;
	if (changed != 0 && rc == 0)
		return sync_write(ctx, want_view);
	if (rc == 0 && ctx->mtime_ns[0] != 0 && ctx->mtime_ns[1] != 0 &&
	    (ctx->mtime_ns[0] != ctx->rec.new_mtime_ns ||
	     ctx->mtime_ns[1] != ctx->rec.cur_mtime_ns))
		rc = sync_write_mtimes(ctx);
	return rc;
}

int store_sync_changes(struct store_mailbox *mb, bool want_view,
		       struct store_changes *changes)
{
	return store_sync_run(mb, want_view, false, changes);
}

int store_sync_run(struct store_mailbox *mb, bool want_view,
		   bool trust_index, struct store_changes *changes)
{
	struct sync_ctx ctx;
	int rc, err;

	memset(&ctx, 0, sizeof(ctx));
	if (changes != NULL)
		memset(changes, 0, sizeof(*changes));
	ctx.trust_index = trust_index;
	ctx.ul_mtime_ns = -1;
	ctx.mb = mb;
	ctx.idx = mb->su->index;
	ctx.changes = changes;
	rc = sync_run(&ctx, want_view);
	if (store_index_is_corrupt(rc)) {
		/* Found while reading: rebuild once, like at open. */
		log_error("store: index corrupt path=%s error=\"%s\"",
			  ctx.idx->path, mdb_strerror(rc));
		uidlist_free(&ctx.ul);
		ctx.is_ul_read = false;
		ctx.ul_mtime_ns = -1;
		if (changes != NULL)
			store_changes_free(changes);
		if (store_index_recover(ctx.idx, rc) == 0)
			rc = sync_run(&ctx, want_view);
	}
	if (rc == 0)
		mb->rec = ctx.rec;
	else if (changes != NULL)
		store_changes_free(changes);
	free(ctx.ents);
	free(ctx.names);
	free(ctx.dels);
	free(ctx.upds);
	uidlist_free(&ctx.ul);
	if (rc == 0 || rc == -1)
		return rc;
	err = store_index_errno(rc);
	store_set_error(mb->error, NULL, "index sync of %s failed: %s",
			mb->dir, mdb_strerror(rc));
	errno = err;
	return -1;
}

int store_sync(struct store_mailbox *mb, bool want_view)
{
	return store_sync_changes(mb, want_view, NULL);
}

struct store_msg *store_view_find(struct store_mailbox *mb, uint32_t uid)
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

/* Adds one file to the index in txn: its existing UID if a sync already
 * saw it, else UIDNEXT. Appends its uidlist line to text. */
static int add_one_file(struct store_mailbox *mb, MDB_txn *txn,
			struct index_mbox *rec,
			const struct index_new_file *f, uint32_t *uid_r,
			char **text, size_t *len, size_t *cap)
{
	struct store_index *idx = mb->su->index;
	struct index_msg hdr = f->hdr;
	const char *bn = f->path + 4;
	int rc;

	rc = index_get_bname(idx, txn, rec->id, bn, hdr.basename_len, uid_r);
	if (rc != 0)
		return rc;
	if (*uid_r == 0) {
		if (rec->uidnext == UINT32_MAX)
			return MDB_MAP_FULL;
		*uid_r = rec->uidnext++;
		rec->count++;
		text_append(text, len, cap, *uid_r, bn, hdr.basename_len);
	}
	hdr.modseq = rec->highestmodseq;
	hdr.path_len = (uint16_t)strlen(f->path);
	return index_put_msg(idx, txn, rec->id, *uid_r, &hdr, bn, f->path);
}

int index_add_files(struct store_mailbox *mb, MDB_txn *txn,
		    struct index_mbox *rec, const struct index_new_file *files,
		    size_t count, uint32_t *uids_r)
{
	char *text = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	rec->highestmodseq++;
	for (size_t i = 0; i < count && rc == 0; i++) {
		uids_r[i] = 0;
		if (files[i].path[0] == '\0')
			continue;	/* skipped by the caller */
		rc = add_one_file(mb, txn, rec, &files[i], &uids_r[i], &text,
				  &len, &cap);
	}
	if (rc == 0)
		rc = store_uidlist_add(mb, txn, rec, text, len, false);
	free(text);
	return rc;
}
