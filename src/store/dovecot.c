/* dovecot.c: reads what Dovecot 2.x left in a Maildir, so that a user
 * moved from Dovecot to Heron keeps UIDVALIDITY, UIDs, subscriptions and
 * POP3 UIDLs and no client downloads anything again. Dovecot's files are
 * only read, never written: a rollback to Dovecot finds them as they were.
 * (dovecot-keywords is the exception: keywords.c keeps it up to date in
 * Dovecot's own format, a superset of what Dovecot wrote.)
 *
 *   <folder>/dovecot-uidlist  version 3: "3 V<uidvalidity> N<nextuid>
 *       G<guid>" then "<uid> [<ext fields>] :<filename>" where an ext
 *       field is a letter and a value (W<vsize>, S<size>, P<pop3 uidl>,
 *       O<pop3 order>, ...). Version 1: "1 <uidvalidity> <nextuid>" then
 *       "<uid> <filename>". N may lag behind the highest UID.
 *   <root>/subscriptions      version 2: "V\t2\n\n" then one mailbox a
 *       line, hierarchy levels separated by TAB, each level tab-escaped
 *       (\001 + '1', 't', 'r', 'n' for \001, TAB, CR, LF). Without the
 *       header (version 1): one name a line with Maildir++'s '.' separator.
 *   <folder>/heron-pop3-uidls Heron's copy of the P fields (written once,
 *       at import): "<uidl> <basename>" lines.
 *
 * dovecot-uidlist is converted into heron-uidlist's text and parsed by
 * uidlist.c, so a mailbox whose index record is built for the first time
 * takes Dovecot's UIDs. Limits: lines over DOVECOT_LINE_MAX bytes are
 * skipped; dovecot.index* (modseqs, cached data) is not read. */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DOVECOT_LINE_MAX 4096
#define DOVECOT_LINES_MAX (64u * 1024 * 1024)

struct dc_buf {
	char *data;
	size_t len, cap;
};

struct dc_uidl {
	const char *basename;	/* into strings */
	const char *uidl;
};

struct dovecot_pop3_uidls {
	struct dc_uidl *ents;	/* sorted by basename */
	size_t count;
	char *strings;
};

static void buf_add(struct dc_buf *b, const char *data, size_t len)
{
	while (b->len + len + 1 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 4096;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

static bool parse_u32(const char *p, size_t len, uint32_t *n_r)
{
	uint64_t n;

	if (len == 0 || strspn(p, "0123456789") < len ||
	    str_to_u64(p, len, UINT32_MAX, &n) < 0)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

/* Header: version, UIDVALIDITY, next UID. false when not a header. */
static bool parse_header(char *line, unsigned *version_r, uint32_t *uv_r,
			 uint32_t *next_r)
{
	char *tok, *save = NULL;
	unsigned i = 0;

	*uv_r = 0;
	*next_r = 0;
	for (tok = strtok_r(line, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save), i++) {
		size_t len = strlen(tok);

		if (i == 0) {
			if (strcmp(tok, "1") != 0 && strcmp(tok, "3") != 0)
				return false;
			*version_r = (unsigned)(tok[0] - '0');
		} else if (*version_r == 1) {
			(void)parse_u32(tok, len, i == 1 ? uv_r : next_r);
		} else if (tok[0] == 'V') {
			(void)parse_u32(tok + 1, len - 1, uv_r);
		} else if (tok[0] == 'N') {
			(void)parse_u32(tok + 1, len - 1, next_r);
		}
	}
	return i > 0;
}

/* "<uid> [fields] :<name>" (v3) or "<uid> <name>" (v1): the uid, the
 * base name (before ':2,') and the P field (NULL if none). */
static bool parse_rec(char *line, unsigned version, uint32_t *uid_r,
		      const char **bn_r, size_t *bn_len_r, const char **p_r)
{
	size_t digits = strspn(line, "0123456789");
	char *p = line + digits, *name = NULL;

	*p_r = NULL;
	if (*p != ' ' || !parse_u32(line, digits, uid_r) || *uid_r == 0 ||
	    *uid_r == UINT32_MAX)
		return false;
	*p++ = '\0';
	while (version == 3 && *p != '\0' && *p != ':') {
		char *end = p + strcspn(p, " ");

		if (*p == 'P' && end > p + 1)
			*p_r = p + 1;
		if (*end == '\0')
			return false;	/* no ":<name>" */
		*end = '\0';
		p = end + 1;
		p += strspn(p, " ");
	}
	name = version == 3 ? p + 1 : p;
	if (version == 3 && *p != ':')
		return false;
	*bn_r = name;
	*bn_len_r = strcspn(name, ":");
	return *bn_len_r > 0 && *bn_len_r <= STORE_NAME_MAX &&
		memchr(name, '/', *bn_len_r) == NULL;
}

/* Appends "<uidl> <basename>\n" to b (P fields: RFC 1939 7 allows
 * 0x21..0x7E only, so no spaces). */
static void add_uidl(struct dc_buf *b, const char *uidl, const char *bn,
		     size_t bn_len)
{
	size_t len = strcspn(uidl, " ");

	if (len == 0 || len > STORE_POP3_UIDL_MAX)
		return;
	buf_add(b, uidl, len);
	buf_add(b, " ", 1);
	buf_add(b, bn, bn_len);
	buf_add(b, "\n", 1);
}

/* Writes dir's heron-pop3-uidls from text unless it exists. */
static void write_uidls(const char *dir, const struct dc_buf *text)
{
	char path[4096], tmp[4096];
	ssize_t w;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_POP3_UIDLS_NAME);
	if (access(path, F_OK) == 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", dir,
		 STORE_POP3_UIDLS_NAME, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		  O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	w = write(fd, text->data, text->len);
	if (w != (ssize_t)text->len || fsync(fd) < 0) {
		close(fd);
		goto fail;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		goto fail;
	return;
fail:
	/* The UIDLs of these messages would change: say so loudly. */
	log_error("store: writing %s failed: %s", path, strerror(errno));
	unlink(tmp);
}

/* Reads f's records as heron-uidlist lines into out (after the header
 * uidlist.c wants first) and its P fields into uidls. */
static void convert(FILE *f, struct dc_buf *out, struct dc_buf *uidls)
{
	char *line = NULL, hdr[64];
	size_t size = 0, bn_len;
	unsigned version = 0;
	uint32_t uv = 0, next = 0, uid, max_uid = 0;
	const char *bn, *pfield;
	struct dc_buf recs = { 0 };
	ssize_t len;

	for (uint32_t lineno = 0; lineno < DOVECOT_LINES_MAX; lineno++) {
		if ((len = getline(&line, &size, f)) <= 0)
			break;
		if (line[len - 1] != '\n' || len > DOVECOT_LINE_MAX)
			continue;
		line[--len] = '\0';
		if (lineno == 0) {
			if (!parse_header(line, &version, &uv, &next))
				break;
			continue;
		}
		if (!parse_rec(line, version, &uid, &bn, &bn_len, &pfield))
			continue;
		buf_add(&recs, line, strlen(line));	/* the uid */
		buf_add(&recs, " ", 1);
		buf_add(&recs, bn, bn_len);
		buf_add(&recs, "\n", 1);
		if (pfield != NULL)
			add_uidl(uidls, pfield, bn, bn_len);
		if (uid > max_uid)
			max_uid = uid;
	}
	free(line);
	if (version != 0) {
		/* N may lag behind: a UID is never handed out twice. */
		if (next <= max_uid)
			next = max_uid + 1;
		buf_add(out, hdr, (size_t)snprintf(hdr, sizeof(hdr),
						   "1 V%u N%u\n", uv, next));
		if (recs.len > 0)
			buf_add(out, recs.data, recs.len);
	}
	free(recs.data);
}

int dovecot_uidlist_open(const char *dir, FILE **f_r, char *errbuf,
			 size_t errsize)
{
	struct dc_buf text = { 0 }, uidls = { 0 };
	char path[4096];
	FILE *f;
	int err;

	*f_r = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, DOVECOT_UIDLIST_NAME);
	if ((f = store_fopen_read(path)) == NULL) {
		if ((err = errno) == ENOENT)
			return 0;
		snprintf(errbuf, errsize, "open(%s) failed: %s", path,
			 strerror(err));
		errno = err;
		return -1;
	}
	convert(f, &text, &uidls);
	fclose(f);
	if (uidls.len > 0)
		write_uidls(dir, &uidls);
	free(uidls.data);
	if (text.len == 0) {
		log_warn("store: %s has no valid header: ignored", path);
		return 0;
	}
	log_info("store: importing UIDs from %s", path);
	/* A memory stream uidlist.c parses like heron-uidlist; +1 byte:
	 * glibc keeps the last byte of a full buffer for a NUL. */
	f = fmemopen(NULL, text.len + 1, "w+");
	if (f == NULL || fwrite(text.data, 1, text.len, f) != text.len ||
	    fseek(f, 0, SEEK_SET) != 0) {
		err = errno;
		snprintf(errbuf, errsize, "fmemopen(%s) failed: %s", path,
			 strerror(err));
		if (f != NULL)
			fclose(f);
		free(text.data);
		errno = err;
		return -1;
	}
	free(text.data);
	*f_r = f;
	return 0;
}

void dovecot_init_modseqs(const struct uidlist *ul, struct index_mbox *rec)
{
	rec->highestmodseq = 1;
	if (ul->is_dovecot) {
		rec->highestmodseq = DOVECOT_MODSEQ_FLOOR;
		rec->expunged_floor = DOVECOT_MODSEQ_FLOOR;
	}
}

/* ---- subscriptions ---- */

/* Dovecot's str_append_tabunescaped: \001 followed by 1, t, r, n. */
static void tab_unescape(const char *p, size_t len, struct dc_buf *b)
{
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\001' && i + 1 < len) {
			char e = p[++i];

			c = e == 't' ? '\t' : e == 'r' ? '\r' :
				e == 'n' ? '\n' : e == '1' ? '\001' : e;
		}
		buf_add(b, &c, 1);
	}
}

/* One line into a Heron name ('/' between levels) in b. */
static void sub_name(const char *line, bool is_v2, struct dc_buf *b)
{
	b->len = 0;
	buf_add(b, "", 0);
	if (!is_v2) {
		/* Version 1: the namespace separator, '.' for Maildir++. */
		for (const char *p = line; *p != '\0'; p++)
			buf_add(b, *p == '.' ? "/" : p, 1);
		return;
	}
	for (;;) {
		size_t len = strcspn(line, "\t");

		tab_unescape(line, len, b);
		if (line[len] == '\0')
			break;
		buf_add(b, "/", 1);
		line += len + 1;
	}
}

int dovecot_subscriptions_read(const char *root,
			       void (*cb)(const char *name, void *ctx),
			       void *ctx, char *errbuf, size_t errsize)
{
	char path[4096], *line = NULL;
	struct dc_buf name = { 0 };
	size_t size = 0;
	bool is_v2 = false;
	ssize_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root,
		 DOVECOT_SUBSCRIPTIONS_NAME);
	if ((f = store_fopen_read(path)) == NULL) {
		int err = errno;

		if (err == ENOENT)
			return 0;
		snprintf(errbuf, errsize, "open(%s): %s", path, strerror(err));
		errno = err;
		return -1;
	}
	for (uint32_t lineno = 0; lineno < DOVECOT_LINES_MAX; lineno++) {
		if ((len = getline(&line, &size, f)) <= 0)
			break;
		if (line[len - 1] != '\n' || len > DOVECOT_LINE_MAX)
			continue;
		line[--len] = '\0';
		if (lineno == 0 && strcmp(line, "V\t2") == 0) {
			is_v2 = true;
			continue;
		}
		if (len == 0)
			continue;	/* the header's empty line */
		sub_name(line, is_v2, &name);
		if (name.len > 0 && name.len <= STORE_MAILBOX_NAME_MAX &&
		    strlen(name.data) == name.len)
			cb(name.data, ctx);
	}
	free(line);
	free(name.data);
	fclose(f);
	return 0;
}

/* ---- POP3 UIDLs ---- */

static int uidl_cmp(const void *a, const void *b)
{
	const struct dc_uidl *x = a, *y = b;

	return strcmp(x->basename, y->basename);
}

/* Reads dir's heron-pop3-uidls; an empty table when there is none. */
static struct dovecot_pop3_uidls *uidls_load(const char *dir)
{
	struct dovecot_pop3_uidls *t = xcalloc(1, sizeof(*t));
	struct dc_buf b = { 0 };
	char path[4096], chunk[8192];
	size_t n, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, STORE_POP3_UIDLS_NAME);
	if ((f = store_fopen_read(path)) == NULL) {
		if (errno != ENOENT)
			log_error("store: open(%s) failed: %s", path,
				  strerror(errno));
		return t;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	t->strings = b.data;
	for (char *p = b.data, *nl; p != NULL && *p != '\0'; p = nl + 1) {
		char *sp;

		if ((nl = strchr(p, '\n')) == NULL)
			break;	/* torn last line */
		*nl = '\0';
		if ((sp = strchr(p, ' ')) == NULL || sp == p || sp[1] == '\0')
			continue;
		*sp = '\0';
		if (t->count == cap) {
			cap = cap ? cap * 2 : 64;
			t->ents = xreallocarray(t->ents, cap,
						sizeof(*t->ents));
		}
		t->ents[t->count].uidl = p;
		t->ents[t->count++].basename = sp + 1;
	}
	if (t->count > 1)
		qsort(t->ents, t->count, sizeof(*t->ents), uidl_cmp);
	return t;
}

void dovecot_pop3_uidls_free(struct dovecot_pop3_uidls **_t)
{
	struct dovecot_pop3_uidls *t = *_t;

	if (t == NULL)
		return;
	*_t = NULL;
	free(t->ents);
	free(t->strings);
	free(t);
}

const char *store_msg_pop3_uidl(struct store_mailbox *mb,
				const struct store_msg *msg, char *buf,
				size_t size)
{
	struct dc_uidl key, *hit;

	if (mb->pop3_uidls == NULL)
		mb->pop3_uidls = uidls_load(mb->dir);
	if (mb->pop3_uidls->count > 0 && msg->basename != NULL) {
		key.basename = msg->basename;
		hit = bsearch(&key, mb->pop3_uidls->ents,
			      mb->pop3_uidls->count, sizeof(key), uidl_cmp);
		if (hit != NULL)
			return hit->uidl;
	}
	/* Dovecot's default pop3_uidl_format "%08Xu%08Xv": its %X gives
	 * lower-case hex digits (checked against Dovecot 2.3.19). */
	snprintf(buf, size, "%08x%08x", msg->uid, mb->view_rec.uidvalidity);
	return buf;
}
