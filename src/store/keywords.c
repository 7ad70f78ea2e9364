/* keywords.c: per-mailbox IMAP keyword tables (RFC 3501 2.3.2). The index
 * keeps, per mailbox id, up to STORE_KEYWORDS_MAX names (NUL-terminated,
 * one after another); a keyword's index is its bit in store_msg.keywords
 * and never changes. Names compare case-insensitively and are atoms.
 * Keywords 0..25 are also the letters a..z in file names, and are listed
 * in the folder's "dovecot-keywords" file ("<index> <name>" lines, the
 * Dovecot format) so Dovecot and mutt-style tools agree on them; that
 * file is imported when a mailbox's index record is (re)built. An empty
 * name is an unused slot (a gap in an imported file). */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct kw_table {
	const char *names[STORE_KEYWORDS_MAX];
	unsigned count;
};

bool keyword_name_valid(const char *name)
{
	size_t len = strlen(name);

	/* RFC 3501 9: flag-keyword = atom; atom-specials are
	 * ( ) { SP CTL % * " \ ] ; "\..." names are system flags. */
	if (len == 0 || len > STORE_KEYWORD_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	}
	return true;
}

static void kw_key(uint8_t buf[4], uint32_t id, MDB_val *key)
{
	buf[0] = (uint8_t)(id >> 24);
	buf[1] = (uint8_t)(id >> 16);
	buf[2] = (uint8_t)(id >> 8);
	buf[3] = (uint8_t)id;
	key->mv_size = 4;
	key->mv_data = buf;
}

/* Names point into LMDB memory: valid until txn ends. */
static int kw_load(struct store_index *idx, MDB_txn *txn, uint32_t id,
		   struct kw_table *t)
{
	uint8_t kbuf[4];
	MDB_val key, val;
	const char *p, *end;
	int rc;

	t->count = 0;
	kw_key(kbuf, id, &key);
	rc = mdb_get(txn, idx->dbi_kw, &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	p = val.mv_data;
	end = p + val.mv_size;
	if (val.mv_size > 0 && end[-1] != '\0')
		return MDB_CORRUPTED;
	while (p < end && t->count < STORE_KEYWORDS_MAX) {
		t->names[t->count++] = p;
		p += strlen(p) + 1;
	}
	return 0;
}

static int kw_store(struct store_index *idx, MDB_txn *txn, uint32_t id,
		    const struct kw_table *t)
{
	char buf[STORE_KEYWORDS_MAX * (STORE_KEYWORD_NAME_MAX + 1)];
	size_t len = 0;
	uint8_t kbuf[4];
	MDB_val key, val;

	for (unsigned i = 0; i < t->count; i++) {
		size_t n = strlen(t->names[i]) + 1;

		memcpy(buf + len, t->names[i], n);
		len += n;
	}
	kw_key(kbuf, id, &key);
	val.mv_size = len;
	val.mv_data = buf;
	return mdb_put(txn, idx->dbi_kw, &key, &val, 0);
}

/* Rewrites <dir>/dovecot-keywords (tmp + rename) from the table. */
static int kw_write_file(const char *dir, const struct kw_table *t)
{
	char path[4096], tmp[4096], line[STORE_KEYWORD_NAME_MAX + 16];
	int fd, n, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_KEYWORDS_NAME);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", dir, STORE_KEYWORDS_NAME,
		 (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		goto fail;
	for (unsigned i = 0; i < t->count && i < STORE_KEYWORD_LETTERS;
	     i++) {
		if (t->names[i][0] == '\0')
			continue;
		n = snprintf(line, sizeof(line), "%u %s\n", i, t->names[i]);
		if (write(fd, line, (size_t)n) != n)
			ret = -1;
	}
	if (close(fd) < 0 || ret < 0 || rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	/* The index stays authoritative: only other MUAs miss the name. */
	log_warn("store: writing %s failed: %s", path, strerror(errno));
	unlink(tmp);
	return -1;
}

int keyword_lookup(struct store_index *idx, MDB_txn *txn, uint32_t id,
		   const char *dir, const char *name, bool create,
		   unsigned *idx_r)
{
	struct kw_table t;
	int rc;

	if (!keyword_name_valid(name))
		return EINVAL;
	if ((rc = kw_load(idx, txn, id, &t)) != 0)
		return rc;
	for (unsigned i = 0; i < t.count; i++) {
		if (strcasecmp(t.names[i], name) == 0) {
			*idx_r = i;
			return 0;
		}
	}
	if (!create)
		return MDB_NOTFOUND;
	if (t.count == STORE_KEYWORDS_MAX)
		return ENOSPC;
	t.names[t.count++] = name;
	if ((rc = kw_store(idx, txn, id, &t)) != 0)
		return rc;
	*idx_r = t.count - 1;
	if (*idx_r < STORE_KEYWORD_LETTERS && dir != NULL) {
		/* t's other names point into LMDB pages that the put may
		 * have reused: reload before writing the file. */
		if (kw_load(idx, txn, id, &t) == 0)
			(void)kw_write_file(dir, &t);
	}
	return 0;
}

int keyword_name(struct store_index *idx, MDB_txn *txn, uint32_t id,
		 unsigned i, char *buf, size_t size)
{
	struct kw_table t;
	int rc;

	if ((rc = kw_load(idx, txn, id, &t)) != 0)
		return rc;
	if (i >= t.count || t.names[i][0] == '\0')
		return MDB_NOTFOUND;
	snprintf(buf, size, "%s", t.names[i]);
	return 0;
}

/* One "<index> <name>" line into names[]; false if malformed. */
static bool kw_parse_line(char *line, char names[][STORE_KEYWORD_NAME_MAX + 1],
			  unsigned *count)
{
	char *end;
	unsigned long i = strtoul(line, &end, 10);

	if (end == line || *end != ' ' || i >= STORE_KEYWORD_LETTERS)
		return false;
	end[strcspn(end, "\r\n")] = '\0';
	if (!keyword_name_valid(end + 1))
		return false;
	snprintf(names[i], sizeof(names[i]), "%s", end + 1);
	if (i + 1 > *count)
		*count = (unsigned)i + 1;
	return true;
}

int keyword_import(struct store_index *idx, MDB_txn *txn, uint32_t id,
		   const char *dir)
{
	static char names[STORE_KEYWORD_LETTERS][STORE_KEYWORD_NAME_MAX + 1];
	char path[4096], line[STORE_KEYWORD_NAME_MAX + 32];
	struct kw_table t;
	unsigned count = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_KEYWORDS_NAME);
	if ((f = store_fopen_read(path)) == NULL)
		return 0;
	memset(names, 0, sizeof(names));
	while (fgets(line, sizeof(line), f) != NULL)
		(void)kw_parse_line(line, names, &count);
	fclose(f);
	if (count == 0)
		return 0;
	t.count = count;
	for (unsigned i = 0; i < count; i++)
		t.names[i] = names[i];
	return kw_store(idx, txn, id, &t);
}

/* Copies the index's table into mb's cache. */
static int kw_cache_load(struct store_mailbox *mb, MDB_txn *txn)
{
	struct kw_table t;
	int rc;

	if ((rc = kw_load(mb->su->index, txn, mb->rec.id, &t)) != 0)
		return rc;
	for (unsigned i = 0; i < mb->kw_count; i++)
		free(mb->kw_names[i]);
	/* Sized to the table (most mailboxes have no keywords: no array,
	 * which counts with thousands of IDLE sessions). */
	if (t.count > 0)
		mb->kw_names = xreallocarray(mb->kw_names, t.count,
					     sizeof(*mb->kw_names));
	for (unsigned i = 0; i < t.count; i++)
		mb->kw_names[i] = xstrdup(t.names[i]);
	mb->kw_count = t.count;
	return 0;
}

static int kw_fail(struct store_mailbox *mb, int rc, const char **error_r)
{
	if (rc == EINVAL || rc == ENOSPC || rc == MDB_NOTFOUND) {
		errno = rc == MDB_NOTFOUND ? ENOENT : rc;
		return store_set_error(mb->error, error_r, "%s",
			rc == EINVAL ? "invalid keyword name" :
			rc == ENOSPC ? "too many keywords in mailbox" :
			"no such keyword");
	}
	errno = store_index_errno(rc);
	return store_set_error(mb->error, error_r,
			       "keyword table of %s: %s", mb->dir,
			       mdb_strerror(rc));
}

int store_mailbox_keyword_names(struct store_mailbox *mb,
				const char *const **names_r,
				unsigned *count_r, const char **error_r)
{
	MDB_txn *txn;
	int rc;

	rc = store_index_txn_begin(mb->su->index, MDB_RDONLY, &txn);
	if (rc != 0)
		return kw_fail(mb, rc, error_r);
	rc = kw_cache_load(mb, txn);
	store_txn_abort(txn);
	if (rc != 0)
		return kw_fail(mb, rc, error_r);
	*names_r = (const char *const *)mb->kw_names;
	*count_r = mb->kw_count;
	return 0;
}

int store_mailbox_keyword_index(struct store_mailbox *mb, const char *name,
				bool create, unsigned *idx_r,
				const char **error_r)
{
	MDB_txn *txn;
	int rc;

	for (unsigned i = 0; i < mb->kw_count; i++) {
		if (strcasecmp(mb->kw_names[i], name) == 0) {
			*idx_r = i;
			return 0;
		}
	}
	rc = store_index_txn_begin(mb->su->index, create ? 0 : MDB_RDONLY,
				   &txn);
	if (rc != 0)
		return kw_fail(mb, rc, error_r);
	rc = keyword_lookup(mb->su->index, txn, mb->rec.id, mb->dir, name,
			    create, idx_r);
	if (rc == 0)
		rc = kw_cache_load(mb, txn);
	if (rc == 0 && create)
		rc = store_txn_commit(txn);
	else
		store_txn_abort(txn);
	return rc == 0 ? 0 : kw_fail(mb, rc, error_r);
}
