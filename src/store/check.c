/* check.c: consistency check and repair of a user's index on demand
 * (`heron index check|rebuild`, `heron force-resync`; issue 4 item 3).
 *
 * Check opens the LMDB file read-only, apart from the store's cache of
 * environments (it never creates, moves or changes anything), walks every
 * record with the sanity checks of index.c and more (keys, UIDs below
 * UIDNEXT, message counts, the basename table both ways, stale or missing
 * mailbox records) and compares each mailbox with heron-uidlist. Files
 * that the index does not know yet or any more are notes, not problems:
 * deliveries and other tools leave them until the next sync.
 * LMDB keeps no checksums: a page overwritten with junk may make a walk
 * read anywhere in the map; run the check in a child process (admin.c).
 *
 * Rebuild of one mailbox, safe while the server runs (every step that
 * changes the index or heron-uidlist holds the LMDB write lock, which
 * serialises all heron writers of the user): pending flag renames are
 * flushed, heron-uidlist is rewritten as the union of the index's
 * readable records and the file's own lines (so a damaged file or a
 * damaged record loses nothing the other still knows), the mailbox's
 * records are dropped, and the store's rebuild from heron-uidlist
 * (sync.c) recreates them: UIDVALIDITY and the UIDs of every file still
 * there are kept. HIGHESTMODSEQ continues above its old value and the
 * expunge history is marked incomplete below it (RFC 7162 QRESYNC
 * clients then resynchronise fully). Keywords past the 26 that file
 * names carry, and flag changes not yet in file names, are lost only if
 * their index records were unreadable. */
#include "store/store_private.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK_PROBLEM_MAX 1024	/* longest problem text */

struct check_ctx {
	struct store_index idx;	/* env and dbi handles only */
	MDB_txn *txn;
	const char *root;
	store_check_report_func *report;
	void *report_ctx;
	int problems;
};

static void problem(struct check_ctx *c, const char *mailbox, bool counts,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void problem(struct check_ctx *c, const char *mailbox, bool counts,
		    const char *fmt, ...)
{
	char text[CHECK_PROBLEM_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (counts)
		c->problems++;
	c->report(mailbox, text, counts, c->report_ctx);
}

/* ---- files of one folder ---- */

struct folder_files {
	char **names;		/* basenames, sorted */
	size_t count;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void folder_files_read(const char *dir, struct folder_files *ff)
{
	static const char *const subs[] = { "new", "cur" };
	char path[4096];
	struct dirent *de;
	size_t cap = 0;
	DIR *d;

	memset(ff, 0, sizeof(*ff));
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if ((d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (ff->count == cap) {
				cap = cap ? cap * 2 : 64;
				ff->names = xreallocarray(ff->names, cap,
							  sizeof(char *));
			}
			ff->names[ff->count++] = xstrndup(de->d_name,
				strcspn(de->d_name, ":"));
		}
		closedir(d);
	}
	if (ff->count > 1)
		qsort(ff->names, ff->count, sizeof(char *), cmp_str);
}

static bool folder_files_has(const struct folder_files *ff, const char *bn,
			     size_t len, bool mark)
{
	size_t lo = 0, hi = ff->count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strncmp(bn, ff->names[mid], len);

		if (r == 0 && ff->names[mid][len] != '\0')
			r = -1;
		if (r == 0) {
			if (mark)
				ff->names[mid][0] = '\0';	/* seen */
			return true;
		}
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static void folder_files_free(struct folder_files *ff)
{
	for (size_t i = 0; i < ff->count; i++)
		free(ff->names[i]);
	free(ff->names);
}

/* ---- one mailbox record ---- */

struct box_check {
	const char *name;
	const char *dir;
	struct index_mbox rec;
	struct uidlist ul;
	struct folder_files ff;
	uint32_t msgs, not_on_disk, uidlist_missing;
};

static void check_msg(struct check_ctx *c, struct box_check *b,
		      const MDB_val *key, const MDB_val *val)
{
	struct index_msg_view msg;
	uint32_t uid, bname_uid, ul_uid;
	char bn[STORE_NAME_MAX + 1];
	int rc;

	if (key->mv_size != 8) {
		problem(c, b->name, true, "message key of %zu bytes",
			key->mv_size);
		return;
	}
	uid = store_get_be32((const uint8_t *)key->mv_data + 4);
	b->msgs++;
	if (index_msg_decode(val, &msg) < 0) {
		problem(c, b->name, true, "uid=%u: malformed record", uid);
		return;
	}
	snprintf(bn, sizeof(bn), "%.*s", (int)msg.hdr.basename_len,
		 msg.basename);
	if (uid == 0 || uid >= b->rec.uidnext)
		problem(c, b->name, true, "uid=%u at or above uidnext=%u", uid,
			b->rec.uidnext);
	rc = index_get_bname(&c->idx, c->txn, b->rec.id, bn,
			     msg.hdr.basename_len, &bname_uid);
	if (rc != 0 || bname_uid != uid)
		problem(c, b->name, true, "uid=%u file=%s: basename table "
			"says uid=%u", uid, bn, bname_uid);
	ul_uid = uidlist_lookup(&b->ul, bn, msg.hdr.basename_len);
	if (ul_uid == 0)
		b->uidlist_missing++;
	else if (ul_uid != uid)
		problem(c, b->name, true, "uid=%u file=%s: %s says uid=%u",
			uid, bn, STORE_UIDLIST_NAME, ul_uid);
	if (!folder_files_has(&b->ff, bn, msg.hdr.basename_len, true))
		b->not_on_disk++;
}

static int check_msgs(struct check_ctx *c, struct box_check *b)
{
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	int rc;

	if ((rc = mdb_cursor_open(c->txn, c->idx.dbi_msg, &cur)) != 0)
		return rc;
	index_msg_key(kbuf, b->rec.id, 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 4 || memcmp(key.mv_data, kbuf, 4) != 0)
			break;
		check_msg(c, b, &key, &val);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Basename entries of the mailbox whose message record is missing. */
static int check_bnames(struct check_ctx *c, struct box_check *b)
{
	uint8_t prefix[4];
	MDB_val key, val;
	struct index_msg_view msg;
	MDB_cursor *cur;
	int rc;

	prefix[0] = (uint8_t)(b->rec.id >> 24);
	prefix[1] = (uint8_t)(b->rec.id >> 16);
	prefix[2] = (uint8_t)(b->rec.id >> 8);
	prefix[3] = (uint8_t)b->rec.id;
	key.mv_data = prefix;
	key.mv_size = 4;
	if ((rc = mdb_cursor_open(c->txn, c->idx.dbi_bname, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		uint32_t uid;

		if (key.mv_size < 4 || memcmp(key.mv_data, prefix, 4) != 0)
			break;
		if (val.mv_size != sizeof(uid)) {
			problem(c, b->name, true, "basename entry of %zu "
				"bytes", val.mv_size);
			continue;
		}
		memcpy(&uid, val.mv_data, sizeof(uid));
		if (index_get_msg(&c->idx, c->txn, b->rec.id, uid, &msg) != 0)
			problem(c, b->name, true, "basename %.*s: uid=%u has "
				"no record", (int)(key.mv_size - 4),
				(const char *)key.mv_data + 4, uid);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static void check_box_summary(struct check_ctx *c, struct box_check *b)
{
	uint32_t not_indexed = 0;

	if (b->msgs != b->rec.count)
		problem(c, b->name, true, "record says %u messages, index "
			"has %u", b->rec.count, b->msgs);
	if (b->ul.uidvalidity == 0)
		problem(c, b->name, true, "%s has no valid header",
			STORE_UIDLIST_NAME);
	else if (b->ul.uidvalidity != b->rec.uidvalidity)
		problem(c, b->name, true, "%s says uidvalidity=%u, index "
			"uidvalidity=%u", STORE_UIDLIST_NAME,
			b->ul.uidvalidity, b->rec.uidvalidity);
	if (b->uidlist_missing > 0)
		problem(c, b->name, true, "%u indexed messages missing from "
			"%s", b->uidlist_missing, STORE_UIDLIST_NAME);
	if (b->ul.uidnext > b->rec.uidnext)
		problem(c, b->name, true, "%s has uids up to %u, index "
			"uidnext=%u", STORE_UIDLIST_NAME, b->ul.uidnext - 1,
			b->rec.uidnext);
	for (size_t i = 0; i < b->ff.count; i++)
		not_indexed += b->ff.names[i][0] != '\0';
	if (not_indexed > 0)
		problem(c, b->name, false, "%u files not indexed yet",
			not_indexed);
	if (b->not_on_disk > 0)
		problem(c, b->name, false, "%u indexed messages whose file "
			"is gone", b->not_on_disk);
}

static int check_box(struct check_ctx *c, const char *key,
		     const struct index_mbox *rec)
{
	struct box_check b;
	char name[STORE_MAILBOX_NAME_MAX + 8], errbuf[STORE_ERROR_MAX];
	char *dir;
	struct stat st;
	int rc = 0;

	memset(&b, 0, sizeof(b));
	if (strcmp(key, "INBOX") == 0)
		snprintf(name, sizeof(name), "INBOX");
	else
		maildir_key_to_name(key + 1, name, sizeof(name));
	dir = strcmp(key, "INBOX") == 0 ? xstrdup(c->root) :
		xasprintf("%s/%s", c->root, key);
	b.name = name;
	b.dir = dir;
	b.rec = *rec;
	if (stat(dir, &st) < 0) {
		problem(c, name, true, "index record of a folder that does "
			"not exist (%s)", dir);
		free(dir);
		return 0;
	}
	if (uidlist_read(dir, &b.ul, errbuf, sizeof(errbuf)) < 0)
		problem(c, name, true, "%s", errbuf);
	folder_files_read(dir, &b.ff);
	if ((rc = check_msgs(c, &b)) == 0 && (rc = check_bnames(c, &b)) == 0)
		check_box_summary(c, &b);
	uidlist_free(&b.ul);
	folder_files_free(&b.ff);
	free(dir);
	return rc;
}

static int check_boxes(struct check_ctx *c)
{
	MDB_val key, val;
	MDB_cursor *cur;
	char name[STORE_MAILBOX_NAME_MAX + 8];
	struct index_mbox rec;
	int rc;

	if ((rc = mdb_cursor_open(c->txn, c->idx.dbi_mbox, &cur)) != 0)
		return rc;
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		int brc;

		if (key.mv_size == 0 || key.mv_size >= sizeof(name)) {
			problem(c, "", true, "mailbox key of %zu bytes",
				key.mv_size);
			continue;
		}
		memcpy(name, key.mv_data, key.mv_size);
		name[key.mv_size] = '\0';
		brc = index_get_mbox(&c->idx, c->txn, name, &rec);
		if (brc == MDB_CORRUPTED) {
			problem(c, name, true, "malformed mailbox record");
			continue;
		}
		if (brc == 0)
			brc = check_box(c, name, &rec);
		if (brc != 0) {
			rc = brc;
			break;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int check_open(struct check_ctx *c, const char *path)
{
	MDB_envinfo info;
	MDB_stat st;
	struct stat fst;
	int rc;

	if ((rc = mdb_env_create(&c->idx.env)) != 0)
		return rc;
	if ((rc = mdb_env_set_mapsize(c->idx.env, STORE_INDEX_MAP_SIZE)) ||
	    (rc = mdb_env_set_maxdbs(c->idx.env, 8)) ||
	    (rc = mdb_env_open(c->idx.env, path, MDB_NOSUBDIR | MDB_RDONLY |
			       MDB_NOTLS, 0600)) ||
	    (rc = mdb_env_info(c->idx.env, &info)) ||
	    (rc = mdb_env_stat(c->idx.env, &st)))
		return rc;
	if (stat(path, &fst) < 0)
		return errno;
	if ((uint64_t)fst.st_size < ((uint64_t)info.me_last_pgno + 1) *
	    st.ms_psize)
		return MDB_CORRUPTED;	/* shorter than its last page */
	if ((rc = mdb_txn_begin(c->idx.env, NULL, MDB_RDONLY, &c->txn)) != 0)
		return rc;
	if ((rc = mdb_dbi_open(c->txn, "meta", 0, &c->idx.dbi_meta)) ||
	    (rc = mdb_dbi_open(c->txn, "mbox", 0, &c->idx.dbi_mbox)) ||
	    (rc = mdb_dbi_open(c->txn, "msg", 0, &c->idx.dbi_msg)) ||
	    (rc = mdb_dbi_open(c->txn, "bname", 0, &c->idx.dbi_bname)))
		return rc;
	return 0;
}

/* Folders on disk without an index record: never opened (a note). */
static void check_unindexed_folders(struct check_ctx *c)
{
	struct index_mbox rec;
	struct dirent *de;
	char path[4096], name[STORE_MAILBOX_NAME_MAX + 8];
	struct stat st;
	DIR *d;

	if ((d = opendir(c->root)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		const char *key = de->d_name;

		if (key[0] != '.' || strcmp(key, ".") == 0 ||
		    strcmp(key, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/cur", c->root, key);
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (index_get_mbox(&c->idx, c->txn, key, &rec) ==
		    MDB_NOTFOUND) {
			maildir_key_to_name(key + 1, name, sizeof(name));
			problem(c, name, false, "folder not indexed yet");
		}
	}
	closedir(d);
}

int store_index_check(const struct settings *set, const char *user,
		      store_check_report_func *report, void *report_ctx,
		      const char **error_r)
{
	static char error[STORE_ERROR_MAX];
	struct check_ctx c;
	char *root, *path;
	struct stat st;
	int rc;

	memset(&c, 0, sizeof(c));
	c.report = report;
	c.report_ctx = report_ctx;
	if ((root = config_mail_path(set, user)) == NULL) {
		errno = EINVAL;
		return store_set_error_buf(error, error_r,
					   "invalid user name");
	}
	c.root = root;
	path = xasprintf("%s/%s", root, STORE_INDEX_NAME);
	if (stat(root, &st) < 0) {
		problem(&c, "", false, "no mail directory %s", root);
	} else if (stat(path, &st) < 0) {
		problem(&c, "", true, "index %s: %s", path, strerror(errno));
	} else if ((rc = check_open(&c, path)) != 0) {
		problem(&c, "", true, "index %s unreadable: %s", path,
			mdb_strerror(rc));
	} else if ((rc = check_boxes(&c)) != 0) {
		problem(&c, "", true, "index %s: %s", path, mdb_strerror(rc));
	} else {
		check_unindexed_folders(&c);
	}
	if (c.txn != NULL)
		mdb_txn_abort(c.txn);
	if (c.idx.env != NULL)
		mdb_env_close(c.idx.env);
	free(path);
	free(root);
	return c.problems;
}

/* ---- rebuild ---- */

struct ul_line {
	uint32_t uid;
	char *name;
};

static int ul_line_cmp(const void *a, const void *b)
{
	const struct ul_line *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

struct union_list {
	struct ul_line *lines;
	size_t count, cap;
	uint32_t max_uid;
};

static void union_add(struct union_list *u, uint32_t uid, const char *name,
		      size_t len)
{
	if (u->count == u->cap) {
		u->cap = u->cap ? u->cap * 2 : 256;
		u->lines = xreallocarray(u->lines, u->cap, sizeof(*u->lines));
	}
	u->lines[u->count].uid = uid;
	u->lines[u->count++].name = xstrndup(name, len);
	if (uid > u->max_uid)
		u->max_uid = uid;
}

static void union_free(struct union_list *u)
{
	for (size_t i = 0; i < u->count; i++)
		free(u->lines[i].name);
	free(u->lines);
}

/* The readable message records of rec, then heron-uidlist's lines for
 * UIDs and basenames the records do not have. */
static int union_collect(struct store_mailbox *mb, MDB_txn *txn,
			 const struct index_mbox *rec,
			 const struct uidlist *ul, struct union_list *u)
{
	struct store_index *idx = mb->su->index;
	struct index_msg_view msg;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_cursor *cur;
	uint32_t known;
	int rc;

	if ((rc = mdb_cursor_open(txn, idx->dbi_msg, &cur)) != 0)
		return rc;
	index_msg_key(kbuf, rec->id, 0);
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8 || memcmp(key.mv_data, kbuf, 4) != 0)
			break;
		if (index_msg_decode(&val, &msg) < 0)
			continue;	/* heron-uidlist may know it */
		union_add(u, store_get_be32((uint8_t *)key.mv_data + 4),
			  msg.basename, msg.hdr.basename_len);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	for (size_t i = 0; i < ul->count; i++) {
		const struct uidlist_ent *e = &ul->ents[i];
		const char *name = ul->names + e->name_off;

		/* The walk above may have missed records a damaged branch
		 * page hides from cursors but not from lookups: a file's
		 * readable record wins, else its line here (duplicate lines
		 * are fine: uidlist_read keeps the last per UID and name). */
		if (index_get_bname(idx, txn, rec->id, name, e->name_len,
				    &known) == 0 && known != 0 &&
		    index_get_msg(idx, txn, rec->id, known, &msg) == 0 &&
		    msg.hdr.basename_len == e->name_len &&
		    memcmp(msg.basename, name, e->name_len) == 0) {
			union_add(u, known, name, e->name_len);
			continue;
		}
		if (index_get_msg(idx, txn, rec->id, e->uid, &msg) == 0 &&
		    (msg.hdr.basename_len != e->name_len ||
		     memcmp(msg.basename, name, e->name_len) != 0))
			continue;	/* the UID is another file's */
		union_add(u, e->uid, name, e->name_len);
	}
	return 0;
}

/* Writes dir's heron-uidlist from u (tmp + fsync + rename). */
static int union_write(struct store_mailbox *mb, struct union_list *u,
		       uint32_t uidvalidity, uint32_t uidnext)
{
	char path[4096], tmp[4200];
	FILE *f;
	int fd, err;

	if (u->count > 1)
		qsort(u->lines, u->count, sizeof(*u->lines), ul_line_cmp);
	snprintf(path, sizeof(path), "%s/%s", mb->dir, STORE_UIDLIST_NAME);
	snprintf(tmp, sizeof(tmp), "%s/%s.rebuild.%ld", mb->dir,
		 STORE_UIDLIST_NAME, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		err = errno;
		if (fd >= 0)
			close(fd);
		errno = err;
		return store_set_error(mb->error, NULL, "open(%s): %s", tmp,
				       strerror(err));
	}
	fprintf(f, "1 V%u N%010u\n", uidvalidity, uidnext);
	for (size_t i = 0; i < u->count; i++)
		fprintf(f, "%u %s\n", u->lines[i].uid, u->lines[i].name);
	if (fflush(f) != 0 || fsync(fd) < 0 || ferror(f)) {
		err = errno;
		fclose(f);
		unlink(tmp);
		errno = err;
		return store_set_error(mb->error, NULL, "write(%s): %s", tmp,
				       strerror(err));
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		err = errno;
		unlink(tmp);
		errno = err;
		return store_set_error(mb->error, NULL, "rename(%s): %s", tmp,
				       strerror(err));
	}
	return 0;
}

/* In one write transaction: heron-uidlist := index records + its own
 * lines; the mailbox's records dropped. old_r gets the dropped record. */
static int rebuild_drop(struct store_mailbox *mb, struct index_mbox *old_r)
{
	struct store_index *idx = mb->su->index;
	struct union_list u = { 0 };
	struct uidlist ul;
	MDB_val k = { strlen(mb->key), mb->key };
	MDB_txn *txn;
	uint32_t uidnext;
	int rc;

	if ((rc = store_index_txn_begin(idx, 0, &txn)) != 0)
		return rc;
	rc = index_get_mbox(idx, txn, mb->key, old_r);
	if (rc == MDB_CORRUPTED) {
		/* its id is unknown: its records stay orphaned, unused */
		memset(old_r, 0, sizeof(*old_r));
		if ((rc = mdb_del(txn, idx->dbi_mbox, &k, NULL)) != 0)
			goto abort;
		return store_txn_commit(txn);
	}
	if (rc != 0)
		goto abort;
	if (uidlist_read(mb->dir, &ul, store_errbuf(&mb->error),
			 STORE_ERROR_MAX) < 0) {
		rc = -1;
		goto abort;
	}
	rc = union_collect(mb, txn, old_r, &ul, &u);
	uidnext = old_r->uidnext > ul.uidnext ? old_r->uidnext : ul.uidnext;
	if (u.max_uid >= uidnext)
		uidnext = u.max_uid + 1;
	uidlist_free(&ul);
	if (rc != 0 || (rc = union_write(mb, &u, old_r->uidvalidity,
					 uidnext)) != 0 ||
	    (rc = index_del_mailbox_data(idx, txn, old_r->id)) != 0 ||
	    (rc = mdb_del(txn, idx->dbi_mbox, &k, NULL)) != 0)
		goto abort;
	union_free(&u);
	return store_txn_commit(txn);
abort:
	union_free(&u);
	store_txn_abort(txn);
	return rc;
}

/* After the rebuild: HIGHESTMODSEQ above the old one, \Recent as it was,
 * expunge history incomplete below the old HIGHESTMODSEQ. */
static int rebuild_restore(struct store_mailbox *mb,
			   const struct index_mbox *old)
{
	struct store_index *idx = mb->su->index;
	struct index_mbox rec;
	MDB_txn *txn;
	int rc;

	if ((rc = store_index_txn_begin(idx, 0, &txn)) != 0)
		return rc;
	if ((rc = index_get_mbox(idx, txn, mb->key, &rec)) == 0) {
		if (rec.highestmodseq <= old->highestmodseq)
			rec.highestmodseq = old->highestmodseq + 1;
		if (old->first_recent_uid > rec.first_recent_uid &&
		    old->first_recent_uid <= rec.uidnext)
			rec.first_recent_uid = old->first_recent_uid;
		if (rec.expunged_floor < old->highestmodseq)
			rec.expunged_floor = old->highestmodseq;
		rc = index_put_mbox(idx, txn, mb->key, &rec);
	}
	if (rc == 0)
		return store_txn_commit(txn);
	store_txn_abort(txn);
	return rc;
}

/* A view-less mailbox object for name: opening one would sync, and a
 * sync before the rebuild gives files the damaged index lost new UIDs. */
static int bare_mailbox(struct store_user *su, const char *name,
			struct store_mailbox **mb_r, const char **error_r)
{
	struct store_mailbox *mb;
	const char *why;
	char *key, *dir;
	struct stat st;

	if (maildir_resolve_why(su, name, &key, &dir, &why) < 0)
		return store_set_error(su->error, error_r, "%s", why);
	if (stat(dir, &st) < 0) {
		int err = errno;

		free(key);
		free(dir);
		errno = err;
		return store_set_error(su->error, error_r, "mailbox %s: %s",
				       name, strerror(err));
	}
	mb = xcalloc(1, sizeof(*mb));
	mb->su = su;
	mb->key = key;
	mb->dir = dir;
	mb->pop3_fd = -1;
	*mb_r = mb;
	return 0;
}

/* Flushes the flag renames the index has pending, so file names carry
 * every flag before the records go. */
static int flush_pending(struct store_mailbox *mb)
{
	struct store_index *idx = mb->su->index;
	MDB_txn *txn;
	int rc;

	if ((rc = store_index_txn_begin(idx, MDB_RDONLY, &txn)) != 0)
		return rc;
	rc = index_get_mbox(idx, txn, mb->key, &mb->rec);
	store_txn_abort(txn);
	if (rc != 0)
		return 0;	/* none, or unreadable: nothing to flush */
	if (mb->rec.pending_renames > 0)
		store_flush_all(mb, UINT32_MAX);
	return 0;
}

static int rc_fail(struct store_user *su, struct store_mailbox *mb, int rc,
		   const char *what, const char **error_r)
{
	if (rc == -1)
		store_set_error(su->error, NULL, "%s",
				store_errbuf(&mb->error));
	else {
		errno = store_index_errno(rc);
		store_set_error(su->error, NULL, "%s %s: %s", what, mb->dir,
				mdb_strerror(rc));
	}
	*error_r = store_errbuf(&su->error);
	return -1;
}

int store_mailbox_rebuild(struct store_user *su, const char *name,
			  const char **error_r)
{
	struct store_mailbox *bare, *mb;
	struct index_mbox old;
	int rc;

	if (bare_mailbox(su, name, &bare, error_r) < 0)
		return -1;
	memset(&old, 0, sizeof(old));
	if ((rc = flush_pending(bare)) == 0)
		rc = rebuild_drop(bare, &old);
	if (rc == MDB_NOTFOUND)
		rc = 0;		/* no record: the open below builds it */
	else if (rc == 0)
		log_warn("store: rebuilding mailbox index on request "
			 "dir=%s uidvalidity=%u uidnext=%u messages=%u",
			 bare->dir, old.uidvalidity, old.uidnext, old.count);
	if (rc != 0) {
		rc_fail(su, bare, rc, "rebuild of", error_r);
		store_mailbox_close(&bare);
		return -1;
	}
	bare->rec.pending_renames = 0;
	store_mailbox_close(&bare);
	/* sync.c rebuilds the records from heron-uidlist */
	if (store_mailbox_open(su, name, &mb, error_r) < 0)
		return -1;
	if (old.id != 0 && (rc = rebuild_restore(mb, &old)) != 0) {
		rc_fail(su, mb, rc, "rebuild of", error_r);
		store_mailbox_close(&mb);
		return -1;
	}
	store_mailbox_close(&mb);
	return 0;
}

struct name_vec {
	char **names;
	size_t count;
};

static void collect_name(const char *name, unsigned list_flags, void *ctx)
{
	struct name_vec *v = ctx;

	if ((list_flags & STORE_LIST_NOSELECT) != 0)
		return;
	v->names = xreallocarray(v->names, v->count + 1, sizeof(char *));
	v->names[v->count++] = xstrdup(name);
}

int store_user_mailbox_names(struct store_user *su, char ***names_r,
			     size_t *count_r, const char **error_r)
{
	struct name_vec v = { NULL, 0 };

	if (store_mailbox_list(su, collect_name, &v, error_r) < 0) {
		for (size_t i = 0; i < v.count; i++)
			free(v.names[i]);
		free(v.names);
		return -1;
	}
	*names_r = v.names;
	*count_r = v.count;
	return 0;
}

int store_index_rebuild(struct store_user *su, bool replace,
			const char **error_r)
{
	char **names;
	size_t count;
	int ret = 0;

	if (replace) {
		/* Unreadable: moved aside like a corrupt index at open; the
		 * mailboxes are rebuilt from heron-uidlist below. */
		if (store_index_recover(su->index, MDB_CORRUPTED) != 0) {
			errno = EIO;
			return store_set_error(su->error, error_r,
					       "replacing index %s/%s failed",
					       su->root, STORE_INDEX_NAME);
		}
	}
	if (store_user_mailbox_names(su, &names, &count, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		const char *error;

		if (ret == 0 && (replace ?
		    store_mailbox_force_resync(su, names[i], &error) :
		    store_mailbox_rebuild(su, names[i], &error)) < 0) {
			*error_r = error;
			ret = -1;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

/* ---- force-resync ---- */

/* Forgets the directories' mtimes, so the next sync reads them. */
static int forget_mtimes(struct store_mailbox *mb)
{
	struct store_index *idx = mb->su->index;
	struct index_mbox rec;
	MDB_txn *txn;
	int rc;

	if ((rc = store_index_txn_begin(idx, 0, &txn)) != 0)
		return rc;
	rc = index_get_mbox(idx, txn, mb->key, &rec);
	if (rc == 0) {
		rec.new_mtime_ns = 0;
		rec.cur_mtime_ns = 0;
		rc = index_put_mbox(idx, txn, mb->key, &rec);
	}
	if (rc == 0 || rc == MDB_NOTFOUND) {
		rc = store_txn_commit(txn);
	} else {
		store_txn_abort(txn);
	}
	return rc;
}

int store_mailbox_force_resync(struct store_user *su, const char *name,
			       const char **error_r)
{
	struct store_mailbox *mb;
	int rc;

	if (store_mailbox_open(su, name, &mb, error_r) < 0)
		return -1;
	rc = forget_mtimes(mb);
	if (rc == 0 && store_sync(mb, false) < 0)
		rc = -1;
	if (rc != 0) {
		rc_fail(su, mb, rc, "resync of", error_r);
		store_mailbox_close(&mb);
		return -1;
	}
	store_mailbox_close(&mb);
	return 0;
}

/* ---- isolated check, safe repair (admin) ---- */

int store_index_check_isolated(const struct settings *set, const char *user,
			       store_check_report_func *report,
			       void *report_ctx, const char **error_r)
{
	static char error[STORE_ERROR_MAX];
	pid_t pid;
	int status, n;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return store_set_error_buf(error, error_r, "fork: %s",
					   strerror(errno));
	if (pid == 0) {
		const char *cerror;

		n = store_index_check(set, user, report, report_ctx, &cerror);
		if (n < 0)
			fprintf(stderr, "%s\n", cerror);
		fflush(stdout);
		_exit(n < 0 ? 255 : n > 254 ? 254 : n);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return store_set_error_buf(error, error_r,
						   "waitpid: %s",
						   strerror(errno));
	}
	if (WIFSIGNALED(status)) {
		if (report != NULL)
			report("", "index unreadable: the check died of a "
			       "signal", true, report_ctx);
		log_warn("store: index check crashed user=%s signal=%d", user,
			 WTERMSIG(status));
		return STORE_CHECK_CRASHED;
	}
	n = WEXITSTATUS(status);
	if (n == 255)
		return store_set_error_buf(error, error_r,
					   "index check of %s failed", user);
	return n;
}

static void report_none(const char *mailbox, const char *text,
			bool is_problem, void *ctx)
{
	(void)mailbox;
	(void)text;
	(void)is_problem;
	(void)ctx;
}

/* Rebuild in place in a child: 0 done, -1 failed or crashed. */
static int rebuild_in_child(const struct settings *set, const char *user)
{
	pid_t pid;
	int status;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		struct store_user *su;
		const char *error;
		int ret = 1;

		if (store_user_open(set, user, &su, &error) == 0) {
			ret = store_index_rebuild(su, false, &error) < 0;
			if (ret != 0)
				log_warn("store: index rebuild in place "
					 "failed user=%s error=\"%s\"", user,
					 error);
			store_user_close(&su);
		}
		_exit(ret);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (WIFSIGNALED(status))
		log_warn("store: index rebuild in place crashed user=%s "
			 "signal=%d", user, WTERMSIG(status));
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int store_index_repair(const struct settings *set, const char *user,
		       const char **error_r)
{
	struct store_user *su;
	int n;

	n = store_index_check_isolated(set, user, report_none, NULL, error_r);
	if (n < 0)
		return -1;
	if (n != STORE_CHECK_CRASHED && rebuild_in_child(set, user) == 0 &&
	    store_index_check_isolated(set, user, report_none, NULL,
				       error_r) == 0)
		return 0;
	/* Damage the records do not show (free pages, branch pages):
	 * a fresh file, from heron-uidlist, which the attempt above has
	 * completed with every UID the readable records knew. */
	log_warn("store: replacing damaged index user=%s", user);
	if (store_user_open(set, user, &su, error_r) < 0)
		return -1;
	n = store_index_rebuild(su, true, error_r);
	store_user_close(&su);
	if (n < 0)
		return -1;
	n = store_index_check_isolated(set, user, report_none, NULL, error_r);
	if (n != 0) {
		static char error[STORE_ERROR_MAX];

		if (n > 0)
			store_set_error_buf(error, error_r, "%d problems "
					    "remain after the rebuild", n);
		return -1;
	}
	return 0;
}
