/* passdb.h: the password file, in Dovecot's passwd-file format:
 *   user:{SCHEME}hash[:uid:gid:gecos:home:shell:extra]
 * Only the first two fields are used. Blank lines and lines starting with
 * '#' are skipped; a malformed line is skipped and logged with file:line,
 * the other lines still work. Only the auth process (and `heron deliver`,
 * `heron passwd`) link this. */
#ifndef HERON_PASSDB_H
#define HERON_PASSDB_H

#include <stdbool.h>
#include <stddef.h>

struct passdb;

enum passdb_scheme {
	PASSDB_SCHEME_SHA512_CRYPT,
	PASSDB_SCHEME_SHA256_CRYPT,
	PASSDB_SCHEME_BLF_CRYPT,
	PASSDB_SCHEME_ARGON2ID,
	PASSDB_SCHEME_ARGON2I,
	PASSDB_SCHEME_PLAIN,		/* also "CLEARTEXT" */
	PASSDB_SCHEME_UNKNOWN,
};

/* Reads the whole file. Returns NULL (with *error_r, heap) if it cannot be
 * opened; malformed lines only produce warnings. */
struct passdb *passdb_load(const char *path, char **error_r);
/* Parses a buffer (for tests and fuzzing); name is used in warnings. */
struct passdb *passdb_parse(const char *name, const char *data, size_t len);
void passdb_free(struct passdb **db);
size_t passdb_count(const struct passdb *db);

/* Users are matched exactly (case-sensitive), as Dovecot does by default.
 * Returns true if user exists. */
bool passdb_user_exists(const struct passdb *db, const char *user);
/* Verifies password in constant time with respect to the stored hash. An
 * unknown user still costs one hash computation. Returns true on match. */
bool passdb_verify(const struct passdb *db, const char *user,
		   const char *password);
/* APOP: hex MD5(timestamp || plaintext password); only PLAIN entries. */
bool passdb_verify_apop(const struct passdb *db, const char *user,
			const char *timestamp, const char *hex_digest);
bool passdb_has_plaintext(const struct passdb *db);

/* "{SHA512-CRYPT}" -> scheme; name_len excludes braces. */
enum passdb_scheme passdb_scheme_parse(const char *name, size_t name_len);
/* Hashes password with scheme (default SHA512-CRYPT) into a heap string
 * "{SCHEME}hash" for `heron passwd`. NULL on failure. */
char *passdb_hash(enum passdb_scheme scheme, const char *password);
/* Verifies one stored "{SCHEME}hash" string against password. */
bool passdb_verify_hash(const char *stored, const char *password);

#endif
