/* test_passdb.c: password schemes, passwd-file parsing, APOP.
 * Fixed vectors were made with `openssl passwd -6/-5 -salt saltsalt`,
 * python3's crypt module ($6$rounds=, $2b$) and libsodium (argon2). */
#include "test.h"

#include "auth/passdb.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define N_ELEMENTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define SHA512_SECRET1 "$6$saltsalt$jCP90RmSIIja2o9FRs25ASQaR1lMN6uKHmNcHao" \
	"NCpAXgV3n5NfAlQdZQcvMVQO1BTCOFF0LzoHFZBt9E45NW0"
#define SHA256_SECRET2 "$5$saltsalt$BJpRbYYxXhU.zI6bx4QcI68rJkdP5ZrVKV8t5kjQmiC"
#define SHA512_ROUNDS_SECRET3 "$6$rounds=6000$roundsalt$tCRg5SlDx4TSoEQvvlTL0" \
	"wh3zap8GZTblIZ.NnKbfn.umnQbhP2h7u4vBpxN8krMcmOpmDBarOXmdvrqaChaH/"
#define BLF_SECRET4 "$2b$05$abcdefghijklmnopqrstuumZMzPDifumUa2WnZ17Jll4IfKxa6f/u"
#define ARGON2ID_ARGONPW "$argon2id$v=19$m=65536,t=2,p=1$jmZSc3TesLtgsvM+Hf1" \
	"9Sw$2IXMw+9UFCTjVuc6y+Qgu3mVSTH56pRTEfAWcfZG46E"
#define ARGON2I_ARGONPW2 "$argon2i$v=19$m=32768,t=4,p=1$caHJOT9rJb3cX/uUEPBg" \
	"MA$iJqlaR27kSNFgAU23V/FpMiQB9DHgWOoblV+Dp3Ji4I"

static void test_scheme_parse(void)
{
	static const struct {
		const char *name;
		enum passdb_scheme scheme;
	} rows[] = {
		{ "SHA512-CRYPT", PASSDB_SCHEME_SHA512_CRYPT },
		{ "sha512-crypt", PASSDB_SCHEME_SHA512_CRYPT },
		{ "SHA256-Crypt", PASSDB_SCHEME_SHA256_CRYPT },
		{ "BLF-CRYPT", PASSDB_SCHEME_BLF_CRYPT },
		{ "ARGON2ID", PASSDB_SCHEME_ARGON2ID },
		{ "argon2i", PASSDB_SCHEME_ARGON2I },
		{ "PLAIN", PASSDB_SCHEME_PLAIN },
		{ "cleartext", PASSDB_SCHEME_PLAIN },
		{ "ARGON2", PASSDB_SCHEME_UNKNOWN },
		{ "PLAIN2", PASSDB_SCHEME_UNKNOWN },
		{ "", PASSDB_SCHEME_UNKNOWN },
		{ "MD5", PASSDB_SCHEME_UNKNOWN },
	};

	for (int i = 0; i < N_ELEMENTS(rows); i++) {
		enum passdb_scheme s = passdb_scheme_parse(rows[i].name,
			strlen(rows[i].name));
		test_assert_idx(s == rows[i].scheme, i);
	}
}

static const struct {
	const char *stored;
	const char *password;
	bool ok;
} verify_rows[] = {
	{ "{SHA512-CRYPT}" SHA512_SECRET1, "secret1", true },
	{ "{SHA512-CRYPT}" SHA512_SECRET1, "secret2", false },
	{ "{SHA512-CRYPT}" SHA512_SECRET1, "", false },
	{ "{sha512-crypt}" SHA512_SECRET1, "secret1", true },
	{ "{SHA256-CRYPT}" SHA256_SECRET2, "secret2", true },
	{ "{SHA256-CRYPT}" SHA256_SECRET2, "Secret2", false },
	{ "{SHA512-CRYPT}" SHA512_ROUNDS_SECRET3, "secret3", true },
	{ "{SHA512-CRYPT}" SHA512_ROUNDS_SECRET3, "secret", false },
	{ "{BLF-CRYPT}" BLF_SECRET4, "secret4", true },
	{ "{BLF-CRYPT}" BLF_SECRET4, "secret5", false },
	{ "{ARGON2ID}" ARGON2ID_ARGONPW, "argonpw", true },
	{ "{ARGON2ID}" ARGON2ID_ARGONPW, "argonpw2", false },
	{ "{ARGON2I}" ARGON2I_ARGONPW2, "argonpw2", true },
	{ "{ARGON2I}" ARGON2I_ARGONPW2, "argonpw", false },
	/* scheme and hash kind must agree */
	{ "{ARGON2I}" ARGON2ID_ARGONPW, "argonpw", false },
	{ "{SHA256-CRYPT}" SHA512_SECRET1, "secret1", false },
	{ "{PLAIN}pw", "pw", true },
	{ "{PLAIN}pw", "pw ", false },
	{ "{PLAIN}pw", "p", false },
	{ "{PLAIN}", "", true },
	{ "{CLEARTEXT}sesame", "sesame", true },
	{ "{cleartext}sesame", "SESAME", false },
	/* no scheme: crypt(3) of whatever $id$ it has */
	{ SHA512_SECRET1, "secret1", true },
	{ SHA512_SECRET1, "secret9", false },
	{ SHA256_SECRET2, "secret2", true },
	{ BLF_SECRET4, "secret4", true },
	{ "{CRYPT}" SHA512_SECRET1, "secret1", true },
	/* malformed */
	{ "{MD5}whatever", "whatever", false },
	{ "{SHA512-CRYPT}$6$saltsalt$short", "secret1", false },
	{ "{PLAIN", "{PLAIN", false },
	{ "", "", false },
	{ "*", "", false },
};

static void test_verify_hash(void)
{
	for (int i = 0; i < N_ELEMENTS(verify_rows); i++) {
		bool ok = passdb_verify_hash(verify_rows[i].stored,
					     verify_rows[i].password);
		test_assert_idx(ok == verify_rows[i].ok, i);
	}
}

static void test_hash_roundtrip(void)
{
	static const struct {
		enum passdb_scheme scheme;
		const char *prefix;
	} rows[] = {
		{ PASSDB_SCHEME_SHA512_CRYPT, "{SHA512-CRYPT}$6$" },
		{ PASSDB_SCHEME_SHA256_CRYPT, "{SHA256-CRYPT}$5$" },
		{ PASSDB_SCHEME_BLF_CRYPT, "{BLF-CRYPT}$2y$10$" },
		{ PASSDB_SCHEME_ARGON2ID, "{ARGON2ID}$argon2id$" },
		{ PASSDB_SCHEME_ARGON2I, "{ARGON2I}$argon2i$" },
		{ PASSDB_SCHEME_PLAIN, "{PLAIN}" },
	};
	const char *pw = "correct horse \xc3\xa9 battery";

	for (int i = 0; i < N_ELEMENTS(rows); i++) {
		char *h = passdb_hash(rows[i].scheme, pw);
		char *h2 = passdb_hash(rows[i].scheme, pw);

		test_assert_idx(h != NULL && h2 != NULL, i);
		if (h == NULL || h2 == NULL)
			continue;
		test_assert_idx(strncmp(h, rows[i].prefix,
					strlen(rows[i].prefix)) == 0, i);
		test_assert_idx(passdb_verify_hash(h, pw), i);
		test_assert_idx(!passdb_verify_hash(h, "correct horse"), i);
		/* random salt: two hashes differ (except PLAIN) */
		test_assert_idx(rows[i].scheme == PASSDB_SCHEME_PLAIN ||
				strcmp(h, h2) != 0, i);
		free(h);
		free(h2);
	}
	test_assert(passdb_hash(PASSDB_SCHEME_UNKNOWN, "x") == NULL);
	test_assert(passdb_hash(PASSDB_SCHEME_PLAIN, "a:b") == NULL);
	test_assert(passdb_hash(PASSDB_SCHEME_PLAIN, "a\nb") == NULL);
}

static const char passwd_file[] =
	"# comment line\n"
	"\n"
	"alice:{SHA512-CRYPT}" SHA512_SECRET1 ":1000:1000::/home/alice:/bin/sh\n"
	"nocolon\n"
	":{PLAIN}emptyuser\n"
	"bob:{PLAIN}bobpw\r\n"
	"carol:{UNKNOWN-SCHEME}xyz\n"
	"dave:{SHA512-CRYPT}$6$bad\n"
	"erin:" SHA256_SECRET2 "\n"
	"frank:{BLF-CRYPT}" BLF_SECRET4 "::\n"
	"bad\001user:{PLAIN}x\n"
	"grace::1000:1000\n"
	"alice:{PLAIN}second-alice-ignored\n"
	"mrose:{CLEARTEXT}tanstaaf\n"
	"heidi:{ARGON2ID}" ARGON2ID_ARGONPW "\n"
	"ivan:{SHA512-CRYPT}" SHA512_SECRET1;	/* no final LF */

static void test_parse(void)
{
	static const struct {
		const char *user;
		const char *password;
		bool exists;
		bool ok;
	} rows[] = {
		{ "alice", "secret1", true, true },
		{ "alice", "second-alice-ignored", true, false },
		{ "Alice", "secret1", false, false },
		{ "bob", "bobpw", true, true },
		{ "bob", "bobpw\r", true, false },
		{ "carol", "xyz", false, false },
		{ "dave", "", false, false },
		{ "erin", "secret2", true, true },
		{ "frank", "secret4", true, true },
		{ "grace", "", true, false },
		{ "mrose", "tanstaaf", true, true },
		{ "heidi", "argonpw", true, true },
		{ "ivan", "secret1", true, true },
		{ "nocolon", "", false, false },
		{ "", "emptyuser", false, false },
		{ "nobody", "secret1", false, false },
	};
	struct passdb *db = passdb_parse("test", passwd_file,
					 sizeof(passwd_file) - 1);

	/* alice bob erin frank grace mrose heidi ivan */
	test_assert(passdb_count(db) == 8);
	test_assert(passdb_has_plaintext(db));
	for (int i = 0; i < N_ELEMENTS(rows); i++) {
		test_assert_idx(passdb_user_exists(db, rows[i].user) ==
				rows[i].exists, i);
		test_assert_idx(passdb_verify(db, rows[i].user,
					      rows[i].password) == rows[i].ok,
				i);
	}
	passdb_free(&db);
	test_assert(db == NULL);
}

static void test_parse_no_plaintext(void)
{
	static const char data[] = "a:{SHA256-CRYPT}" SHA256_SECRET2 "\n";
	struct passdb *db = passdb_parse("t", data, sizeof(data) - 1);

	test_assert(passdb_count(db) == 1);
	test_assert(!passdb_has_plaintext(db));
	test_assert(!passdb_verify_apop(db, "a", "<1.2@x>",
					"00000000000000000000000000000000"));
	passdb_free(&db);
	db = passdb_parse("empty", "", 0);
	test_assert(passdb_count(db) == 0);
	test_assert(!passdb_verify(db, "a", "secret2"));
	passdb_free(&db);
}

/* RFC 1939 section 7: APOP mrose c4c9334bac560ecc979e58001b3e22fb */
static void test_apop(void)
{
	static const char ts[] = "<1896.697170952@dbc.mtview.ca.us>";
	static const struct {
		const char *user;
		const char *digest;
		bool ok;
	} rows[] = {
		{ "mrose", "c4c9334bac560ecc979e58001b3e22fb", true },
		{ "mrose", "C4C9334BAC560ECC979E58001B3E22FB", true },
		{ "mrose", "c4c9334bac560ecc979e58001b3e22fc", false },
		{ "mrose", "c4c9334bac560ecc979e58001b3e22f", false },
		{ "mrose", "c4c9334bac560ecc979e58001b3e22fbb", false },
		{ "mrose", "g4c9334bac560ecc979e58001b3e22fb", false },
		{ "mrose", "", false },
		{ "alice", "c4c9334bac560ecc979e58001b3e22fb", false },
		{ "nobody", "c4c9334bac560ecc979e58001b3e22fb", false },
	};
	struct passdb *db = passdb_parse("apop", passwd_file,
					 sizeof(passwd_file) - 1);

	for (int i = 0; i < N_ELEMENTS(rows); i++) {
		test_assert_idx(passdb_verify_apop(db, rows[i].user, ts,
				rows[i].digest) == rows[i].ok, i);
	}
	test_assert(!passdb_verify_apop(db, "mrose", "<other@ts>",
					"c4c9334bac560ecc979e58001b3e22fb"));
	passdb_free(&db);
}

static void test_load(void)
{
	char path[] = "/tmp/test_passdb.XXXXXX";
	int fd = mkstemp(path);
	char *error = NULL;
	struct passdb *db;

	test_assert(fd >= 0);
	if (fd < 0)
		return;
	test_assert(write(fd, passwd_file, sizeof(passwd_file) - 1) ==
		    (ssize_t)sizeof(passwd_file) - 1);
	close(fd);
	db = passdb_load(path, &error);
	test_assert(db != NULL && passdb_count(db) == 8);
	if (db != NULL)
		test_assert(passdb_verify(db, "bob", "bobpw"));
	passdb_free(&db);
	unlink(path);
	db = passdb_load(path, &error);
	test_assert(db == NULL && error != NULL &&
		    strstr(error, path) != NULL);
	free(error);
}

/* The file's passwords must survive every way of cutting lines: parse
 * each prefix (a truncated file must not crash or misparse earlier lines). */
static void test_parse_prefixes(void)
{
	size_t len = sizeof(passwd_file) - 1;
	/* from here on bob's line is complete up to the password's end */
	size_t bob_end = (size_t)(strstr(passwd_file, "\nbob:") -
				  passwd_file) + 17;

	log_set_level(LOG_LEVEL_ERROR);	/* hundreds of expected warnings */
	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = xmalloc(cut + 1);
		struct passdb *db;

		memcpy(copy, passwd_file, cut);	/* ASan sees overreads */
		db = passdb_parse("prefix", copy, cut);
		test_assert_idx(passdb_count(db) <= 8, (int)cut);
		if (cut >= bob_end)
			test_assert_idx(passdb_user_exists(db, "bob"),
					(int)cut);
		passdb_free(&db);
		free(copy);
	}
	log_set_level(LOG_LEVEL_INFO);
}

int main(void)
{
	test_run("scheme_parse", test_scheme_parse);
	test_run("verify_hash", test_verify_hash);
	test_run("hash_roundtrip", test_hash_roundtrip);
	test_run("parse", test_parse);
	test_run("parse_no_plaintext", test_parse_no_plaintext);
	test_run("apop", test_apop);
	test_run("load", test_load);
	test_run("parse_prefixes", test_parse_prefixes);
	return test_done("passdb");
}
