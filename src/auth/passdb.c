/* passdb.c: the password file (Dovecot passwd-file format) and password
 * schemes. Lines are "user:{SCHEME}hash[:more fields]"; only the first two
 * fields are read. A hash without "{SCHEME}" is handed to crypt(3), like
 * Dovecot's default CRYPT scheme; "{CRYPT}" means the same.
 *
 * Users live in a sorted array (binary search). Limits: file size
 * PASSDB_MAX_FILE_SIZE, user names PASSDB_MAX_USER_LEN bytes without
 * control characters. Comparisons of secrets are constant-time; an unknown
 * user still costs one SHA512-CRYPT computation against a dummy hash.
 * Not done: Dovecot's ".b64/.hex" scheme suffixes, userdb fields, MD5-CRYPT
 * and friends except through a bare crypt(3) hash. */
#include "auth/passdb.h"

#include "lib/log.h"
#include "lib/xmalloc.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASSDB_MAX_FILE_SIZE (64u * 1024 * 1024)
#define PASSDB_MAX_USER_LEN 255
#define PASSDB_MAX_HASH_LEN 512
#define PASSDB_BLF_COST 10
#define PASSDB_MD5_HEX_LEN 32

/* SHA512-CRYPT of a random string nobody knows: unknown users are checked
 * against it so that the reply time does not reveal whether a user exists. */
static const char passdb_dummy_hash[] =
	"$6$Jt0sJx9cKk1bQfZ2$NT59TVTsBakImqWwUIc8/u8PF3G5vDRditjsCE3y2Q2oAJl7"
	"r/Lr6mp2YNsve/olVkSj.i4gNOMlJhnvpU84R/";

/* How a stored hash is verified: the public scheme enum has no CRYPT. */
enum passdb_kind {
	PASSDB_KIND_CRYPT,	/* crypt_rn(): $6$, $5$, $2y$, bare hashes */
	PASSDB_KIND_ARGON2,	/* libsodium crypto_pwhash_str_verify() */
	PASSDB_KIND_PLAIN,
	PASSDB_KIND_NONE,	/* empty password field: no login possible */
};

struct passdb_entry {
	char *user;
	char *hash;		/* scheme prefix stripped; PLAIN: plaintext */
	size_t hash_len;
	enum passdb_kind kind;
	unsigned lineno;
};

struct passdb {
	struct passdb_entry *entries;	/* sorted by strcmp(user) */
	size_t count;
	bool has_plaintext;
};

struct passdb_stored {
	enum passdb_kind kind;
	enum passdb_scheme scheme;	/* UNKNOWN for a bare/CRYPT hash */
	const char *hash;
	size_t hash_len;
};

static const struct {
	const char *name;
	enum passdb_scheme scheme;
} passdb_scheme_names[] = {
	{ "SHA512-CRYPT", PASSDB_SCHEME_SHA512_CRYPT },
	{ "SHA256-CRYPT", PASSDB_SCHEME_SHA256_CRYPT },
	{ "BLF-CRYPT", PASSDB_SCHEME_BLF_CRYPT },
	{ "ARGON2ID", PASSDB_SCHEME_ARGON2ID },
	{ "ARGON2I", PASSDB_SCHEME_ARGON2I },
	{ "PLAIN", PASSDB_SCHEME_PLAIN },
	{ "CLEARTEXT", PASSDB_SCHEME_PLAIN },
};

static void passdb_sodium_init(void)
{
	if (sodium_init() < 0)
		log_fatal("sodium_init() failed");
}

enum passdb_scheme passdb_scheme_parse(const char *name, size_t name_len)
{
	size_t n = sizeof(passdb_scheme_names) / sizeof(passdb_scheme_names[0]);

	for (size_t i = 0; i < n; i++) {
		const char *s = passdb_scheme_names[i].name;
		if (strlen(s) == name_len && strncasecmp(s, name, name_len) == 0)
			return passdb_scheme_names[i].scheme;
	}
	return PASSDB_SCHEME_UNKNOWN;
}

static const char *passdb_scheme_name(enum passdb_scheme scheme)
{
	switch (scheme) {
	case PASSDB_SCHEME_SHA512_CRYPT: return "SHA512-CRYPT";
	case PASSDB_SCHEME_SHA256_CRYPT: return "SHA256-CRYPT";
	case PASSDB_SCHEME_BLF_CRYPT: return "BLF-CRYPT";
	case PASSDB_SCHEME_ARGON2ID: return "ARGON2ID";
	case PASSDB_SCHEME_ARGON2I: return "ARGON2I";
	case PASSDB_SCHEME_PLAIN: return "PLAIN";
	case PASSDB_SCHEME_UNKNOWN: break;
	}
	return NULL;
}

/* ASCII only, whatever the locale */
static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The crypt(3) base-64 alphabet: ./0-9A-Za-z */
static bool is_crypt64(unsigned char c)
{
	return c == '.' || c == '/' || is_alnum(c);
}

static bool span_is(const char *s, size_t len, bool (*pred)(unsigned char))
{
	for (size_t i = 0; i < len; i++) {
		if (!pred((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* "$6$[rounds=N$]salt$hash": salt 0..16 chars, hash digest_len chars. */
static bool sha_crypt_valid(const char *h, size_t len, char id,
			    size_t digest_len)
{
	const char *p = h + 3, *end = h + len, *dollar;

	if (len < 3 || h[0] != '$' || h[1] != id || h[2] != '$')
		return false;
	if ((size_t)(end - p) > 7 && memcmp(p, "rounds=", 7) == 0) {
		p += 7;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		if (p == h + 10 || p == end || *p != '$')
			return false;
		p++;
	}
	dollar = memchr(p, '$', (size_t)(end - p));
	if (dollar == NULL || dollar - p > 16 ||
	    (size_t)(end - dollar - 1) != digest_len)
		return false;
	return span_is(p, (size_t)(dollar - p), is_crypt64) &&
		span_is(dollar + 1, digest_len, is_crypt64);
}

/* "$2y$NN$" + 22 chars salt + 31 chars hash. */
static bool blf_crypt_valid(const char *h, size_t len)
{
	if (len != 60 || h[0] != '$' || h[1] != '2' ||
	    strchr("abxy", h[2]) == NULL || h[2] == '\0' || h[3] != '$' ||
	    !is_digit((unsigned char)h[4]) || !is_digit((unsigned char)h[5]) ||
	    h[6] != '$')
		return false;
	return span_is(h + 7, len - 7, is_crypt64);
}

static bool is_argon2_char(unsigned char c)
{
	return is_alnum(c) || c == '+' || c == '/' || c == '=' || c == ',' ||
		c == '$';
}

static bool argon2_valid(const char *h, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix);

	return len > plen && len < crypto_pwhash_STRBYTES &&
		memcmp(h, prefix, plen) == 0 && span_is(h, len, is_argon2_char);
}

static bool is_bare_crypt_char(unsigned char c)
{
	return is_crypt64(c) || c == '$' || c == '=' || c == ',';
}

/* A hash without scheme: whatever crypt(3) accepts, but check the syntax
 * of the formats we know so that a damaged line is reported at load. */
static bool bare_crypt_valid(const char *h, size_t len)
{
	char buf[PASSDB_MAX_HASH_LEN + 1];

	if (len == 0 || len > PASSDB_MAX_HASH_LEN ||
	    !span_is(h, len, is_bare_crypt_char))
		return false;
	if (len >= 3 && memcmp(h, "$6$", 3) == 0)
		return sha_crypt_valid(h, len, '6', 86);
	if (len >= 3 && memcmp(h, "$5$", 3) == 0)
		return sha_crypt_valid(h, len, '5', 43);
	if (len >= 2 && memcmp(h, "$2", 2) == 0)
		return blf_crypt_valid(h, len);
	memcpy(buf, h, len);
	buf[len] = '\0';
	return crypt_checksalt(buf) == CRYPT_SALT_OK ||
		crypt_checksalt(buf) == CRYPT_SALT_METHOD_LEGACY;
}

static bool scheme_hash_valid(enum passdb_scheme scheme, const char *h,
			      size_t len)
{
	switch (scheme) {
	case PASSDB_SCHEME_SHA512_CRYPT:
		return sha_crypt_valid(h, len, '6', 86);
	case PASSDB_SCHEME_SHA256_CRYPT:
		return sha_crypt_valid(h, len, '5', 43);
	case PASSDB_SCHEME_BLF_CRYPT:
		return blf_crypt_valid(h, len);
	case PASSDB_SCHEME_ARGON2ID:
		return argon2_valid(h, len, "$argon2id$");
	case PASSDB_SCHEME_ARGON2I:
		return argon2_valid(h, len, "$argon2i$");
	case PASSDB_SCHEME_PLAIN:
		return true;
	case PASSDB_SCHEME_UNKNOWN:
		return bare_crypt_valid(h, len);
	}
	return false;
}

static enum passdb_kind scheme_kind(enum passdb_scheme scheme)
{
	switch (scheme) {
	case PASSDB_SCHEME_ARGON2ID:
	case PASSDB_SCHEME_ARGON2I:
		return PASSDB_KIND_ARGON2;
	case PASSDB_SCHEME_PLAIN:
		return PASSDB_KIND_PLAIN;
	default:
		return PASSDB_KIND_CRYPT;
	}
}

/* Splits "{SCHEME}hash" (or a bare crypt hash) and checks its syntax. */
static int stored_parse(const char *s, size_t len, struct passdb_stored *r,
			const char **error_r)
{
	const char *close;

	r->scheme = PASSDB_SCHEME_UNKNOWN;
	r->hash = s;
	r->hash_len = len;
	if (len == 0) {
		r->kind = PASSDB_KIND_NONE;
		return 0;
	}
	if (s[0] == '{' && (close = memchr(s, '}', len)) != NULL) {
		size_t name_len = (size_t)(close - s - 1);

		r->scheme = passdb_scheme_parse(s + 1, name_len);
		if (r->scheme == PASSDB_SCHEME_UNKNOWN &&
		    !(name_len == 5 && strncasecmp(s + 1, "CRYPT", 5) == 0)) {
			*error_r = "unknown password scheme";
			return -1;
		}
		r->hash = close + 1;
		r->hash_len = len - name_len - 2;
	}
	if (r->hash_len > PASSDB_MAX_HASH_LEN ||
	    memchr(r->hash, '\0', r->hash_len) != NULL ||
	    !scheme_hash_valid(r->scheme, r->hash, r->hash_len)) {
		*error_r = "malformed password hash";
		return -1;
	}
	r->kind = scheme_kind(r->scheme);
	return 0;
}

/* Constant-time with respect to the stored hash: compares the SHA-256 of
 * both strings, so neither length nor content leaks through timing. */
static bool plain_equal(const char *stored, size_t stored_len,
			const char *password)
{
	unsigned char a[crypto_hash_sha256_BYTES];
	unsigned char b[crypto_hash_sha256_BYTES];
	bool equal;

	crypto_hash_sha256(a, (const unsigned char *)stored, stored_len);
	crypto_hash_sha256(b, (const unsigned char *)password,
			   strlen(password));
	equal = sodium_memcmp(a, b, sizeof(a)) == 0;
	xwipe(a, sizeof(a));
	xwipe(b, sizeof(b));
	return equal;
}

static bool crypt_equal(const char *hash, size_t hash_len,
			const char *password)
{
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	char setting[PASSDB_MAX_HASH_LEN + 1];
	const char *out;
	bool equal = false;

	if (hash_len > PASSDB_MAX_HASH_LEN)
		goto out_free;
	memcpy(setting, hash, hash_len);
	setting[hash_len] = '\0';
	out = crypt_rn(password, setting, data, sizeof(*data));
	/* crypt_rn returns NULL or a string starting with '*' on failure */
	if (out != NULL && out[0] != '*' && strlen(out) == hash_len)
		equal = CRYPTO_memcmp(out, hash, hash_len) == 0;
out_free:
	xwipe(data, sizeof(*data));
	free(data);
	return equal;
}

static bool argon2_equal(const char *hash, size_t hash_len,
			 const char *password)
{
	char str[crypto_pwhash_STRBYTES];

	if (hash_len >= sizeof(str))
		return false;
	memcpy(str, hash, hash_len);
	str[hash_len] = '\0';
	passdb_sodium_init();
	return crypto_pwhash_str_verify(str, password, strlen(password)) == 0;
}

static bool stored_verify(enum passdb_kind kind, const char *hash,
			  size_t hash_len, const char *password)
{
	switch (kind) {
	case PASSDB_KIND_CRYPT:
		return crypt_equal(hash, hash_len, password);
	case PASSDB_KIND_ARGON2:
		return argon2_equal(hash, hash_len, password);
	case PASSDB_KIND_PLAIN:
		return plain_equal(hash, hash_len, password);
	case PASSDB_KIND_NONE:
		break;
	}
	/* spend the same work as for an unknown user */
	(void)crypt_equal(passdb_dummy_hash, sizeof(passdb_dummy_hash) - 1,
			  password);
	return false;
}

bool passdb_verify_hash(const char *stored, const char *password)
{
	struct passdb_stored st;
	const char *error;

	if (stored_parse(stored, strlen(stored), &st, &error) < 0)
		return false;
	return stored_verify(st.kind, st.hash, st.hash_len, password);
}

static bool user_valid(const char *user, size_t len)
{
	if (len == 0 || len > PASSDB_MAX_USER_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Parses one line (without its LF) into db->entries; warns and returns -1
 * on a malformed line. */
static int passdb_parse_line(struct passdb *db, const char *name,
			     unsigned lineno, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len), *pw, *pw_end, *error;
	struct passdb_stored st;
	struct passdb_entry *e;

	if (colon == NULL) {
		log_warn("passwd file %s:%u: missing ':'", name, lineno);
		return -1;
	}
	if (!user_valid(line, (size_t)(colon - line))) {
		log_warn("passwd file %s:%u: empty or invalid user name",
			 name, lineno);
		return -1;
	}
	pw = colon + 1;
	pw_end = memchr(pw, ':', len - (size_t)(pw - line));
	if (pw_end == NULL)
		pw_end = line + len;
	if (stored_parse(pw, (size_t)(pw_end - pw), &st, &error) < 0) {
		log_warn("passwd file %s:%u: %s", name, lineno, error);
		return -1;
	}
	db->entries = xreallocarray(db->entries, db->count + 1,
				    sizeof(*db->entries));
	e = &db->entries[db->count++];
	e->user = xstrndup(line, (size_t)(colon - line));
	e->hash = xstrndup(st.hash, st.hash_len);
	e->hash_len = st.hash_len;
	e->kind = st.kind;
	e->lineno = lineno;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct passdb_entry *ea = a, *eb = b;
	int r = strcmp(ea->user, eb->user);

	/* equal names: file order, so the first line wins (qsort is not
	 * stable) */
	if (r == 0)
		return ea->lineno < eb->lineno ? -1 : ea->lineno > eb->lineno;
	return r;
}

static void entry_free(struct passdb_entry *e)
{
	xwipe(e->hash, e->hash_len);
	free(e->hash);
	free(e->user);
}

/* Sorts and drops later duplicates of a user (the first line wins). */
static void passdb_finish(struct passdb *db, const char *name)
{
	size_t out = 0;

	if (db->count == 0)
		return;
	qsort(db->entries, db->count, sizeof(*db->entries), entry_cmp);
	for (size_t i = 0; i < db->count; i++) {
		if (out > 0 &&
		    strcmp(db->entries[out - 1].user, db->entries[i].user) == 0) {
			log_warn("passwd file %s:%u: duplicate user, "
				 "line %u wins", name, db->entries[i].lineno,
				 db->entries[out - 1].lineno);
			entry_free(&db->entries[i]);
			continue;
		}
		db->entries[out++] = db->entries[i];
		if (db->entries[i].kind == PASSDB_KIND_PLAIN)
			db->has_plaintext = true;
	}
	db->count = out;
}

struct passdb *passdb_parse(const char *name, const char *data, size_t len)
{
	struct passdb *db = xcalloc(1, sizeof(*db));
	const char *p = data, *end = data + len;
	unsigned lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl : end;
		size_t line_len;

		lineno++;
		if (line_end > p && line_end[-1] == '\r')
			line_end--;
		line_len = (size_t)(line_end - p);
		if (line_len > 0 && p[0] != '#')
			(void)passdb_parse_line(db, name, lineno, p, line_len);
		p = nl != NULL ? nl + 1 : end;
	}
	passdb_finish(db, name);
	return db;
}

static int read_all(int fd, const char *path, char **data_r, size_t *len_r,
		    char **error_r)
{
	struct stat st;
	char *data;
	size_t len = 0;

	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("fstat(%s) failed: %s", path,
				     strerror(errno));
		return -1;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > PASSDB_MAX_FILE_SIZE) {
		*error_r = xasprintf("%s: file too large (max %u bytes)",
				     path, PASSDB_MAX_FILE_SIZE);
		return -1;
	}
	data = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, data + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				break;	/* file shrank meanwhile */
			*error_r = xasprintf("read(%s) failed: %s", path,
					     strerror(errno));
			free(data);
			return -1;
		}
		len += (size_t)n;
	}
	*data_r = data;
	*len_r = len;
	return 0;
}

struct passdb *passdb_load(const char *path, char **error_r)
{
	struct passdb *db = NULL;
	char *data;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", path,
				     strerror(errno));
		return NULL;
	}
	if (read_all(fd, path, &data, &len, error_r) == 0) {
		db = passdb_parse(path, data, len);
		xwipe(data, len);
		free(data);
	}
	close(fd);
	return db;
}

void passdb_free(struct passdb **_db)
{
	struct passdb *db = *_db;

	if (db == NULL)
		return;
	*_db = NULL;
	for (size_t i = 0; i < db->count; i++)
		entry_free(&db->entries[i]);
	free(db->entries);
	free(db);
}

size_t passdb_count(const struct passdb *db)
{
	return db->count;
}

static const struct passdb_entry *passdb_find(const struct passdb *db,
					      const char *user)
{
	size_t lo = 0, hi = db->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(user, db->entries[mid].user);

		if (r == 0)
			return &db->entries[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

bool passdb_user_exists(const struct passdb *db, const char *user)
{
	return passdb_find(db, user) != NULL;
}

bool passdb_verify(const struct passdb *db, const char *user,
		   const char *password)
{
	const struct passdb_entry *e = passdb_find(db, user);

	if (e == NULL)
		return stored_verify(PASSDB_KIND_NONE, NULL, 0, password);
	return stored_verify(e->kind, e->hash, e->hash_len, password);
}

bool passdb_has_plaintext(const struct passdb *db)
{
	return db->has_plaintext;
}

/* Lowercases a 32-digit hex string into out; -1 if it is not one. */
static int hex_digest_normalize(const char *hex, char out[PASSDB_MD5_HEX_LEN])
{
	if (strlen(hex) != PASSDB_MD5_HEX_LEN)
		return -1;
	for (size_t i = 0; i < PASSDB_MD5_HEX_LEN; i++) {
		unsigned char c = (unsigned char)hex[i];
		if (c >= 'A' && c <= 'F')
			c = (unsigned char)(c - 'A' + 'a');
		if (!is_digit(c) && !(c >= 'a' && c <= 'f'))
			return -1;
		out[i] = (char)c;
	}
	return 0;
}

static void md5_hex(const char *a, size_t a_len, const char *b, size_t b_len,
		    char out[PASSDB_MD5_HEX_LEN])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, a, a_len) != 1 ||
	    EVP_DigestUpdate(ctx, b, b_len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 16)
		log_fatal("EVP MD5 digest failed");
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 16; i++) {
		out[i * 2] = digits[md[i] >> 4];
		out[i * 2 + 1] = digits[md[i] & 15];
	}
	xwipe(md, sizeof(md));
}

/* RFC 1939 section 7: digest = MD5(timestamp || shared secret), 16 octets
 * in hexadecimal "using lower-case ASCII characters"; we accept either
 * case from the client. */
bool passdb_verify_apop(const struct passdb *db, const char *user,
			const char *timestamp, const char *hex_digest)
{
	const struct passdb_entry *e = passdb_find(db, user);
	char want[PASSDB_MD5_HEX_LEN], got[PASSDB_MD5_HEX_LEN];
	bool is_plain = e != NULL && e->kind == PASSDB_KIND_PLAIN;
	bool equal;

	memset(got, 0, sizeof(got));
	/* hash something even for unknown/non-plain users (timing) */
	md5_hex(timestamp, strlen(timestamp),
		is_plain ? e->hash : passdb_dummy_hash,
		is_plain ? e->hash_len : sizeof(passdb_dummy_hash) - 1, want);
	if (hex_digest_normalize(hex_digest, got) < 0)
		is_plain = false;
	equal = CRYPTO_memcmp(want, got, sizeof(want)) == 0;
	xwipe(want, sizeof(want));
	return is_plain && equal;
}

static char *hash_crypt(const char *prefix, unsigned long cost,
			const char *password)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data;
	const char *out;
	char *result = NULL;

	if (crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof(salt)) ==
	    NULL) {
		log_error("crypt_gensalt_rn(%s) failed: %s", prefix,
			  strerror(errno));
		return NULL;
	}
	data = xcalloc(1, sizeof(*data));
	out = crypt_rn(password, salt, data, sizeof(*data));
	if (out == NULL || out[0] == '*')
		log_error("crypt_rn(%s) failed: %s", prefix, strerror(errno));
	else
		result = xstrdup(out);
	xwipe(data, sizeof(*data));
	free(data);
	return result;
}

static char *hash_argon2(enum passdb_scheme scheme, const char *password)
{
	char out[crypto_pwhash_STRBYTES];
	int ret;

	passdb_sodium_init();
	if (scheme == PASSDB_SCHEME_ARGON2ID) {
		ret = crypto_pwhash_argon2id_str(out, password,
			strlen(password),
			crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
			crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE);
	} else {
		ret = crypto_pwhash_argon2i_str(out, password,
			strlen(password),
			crypto_pwhash_argon2i_OPSLIMIT_INTERACTIVE,
			crypto_pwhash_argon2i_MEMLIMIT_INTERACTIVE);
	}
	if (ret != 0) {
		log_error("crypto_pwhash_str() failed (out of memory?)");
		return NULL;
	}
	return xstrdup(out);
}

char *passdb_hash(enum passdb_scheme scheme, const char *password)
{
	const char *name = passdb_scheme_name(scheme);
	char *hash = NULL, *result;

	switch (scheme) {
	case PASSDB_SCHEME_SHA512_CRYPT:
		hash = hash_crypt("$6$", 0, password);
		break;
	case PASSDB_SCHEME_SHA256_CRYPT:
		hash = hash_crypt("$5$", 0, password);
		break;
	case PASSDB_SCHEME_BLF_CRYPT:
		hash = hash_crypt("$2y$", PASSDB_BLF_COST, password);
		break;
	case PASSDB_SCHEME_ARGON2ID:
	case PASSDB_SCHEME_ARGON2I:
		hash = hash_argon2(scheme, password);
		break;
	case PASSDB_SCHEME_PLAIN:
		/* the field ends at ':' and the line at LF */
		if (strpbrk(password, ":\r\n") != NULL)
			return NULL;
		hash = xstrdup(password);
		break;
	case PASSDB_SCHEME_UNKNOWN:
		return NULL;
	}
	if (hash == NULL)
		return NULL;
	result = xasprintf("{%s}%s", name, hash);
	xwipe(hash, strlen(hash));
	free(hash);
	return result;
}
