/* fuzz_passdb.c: the first input byte picks the target.
 *   even: passdb_parse() on the rest, then lookups, APOP and (for inputs
 *         without '$', so no attacker-chosen crypt cost) password checks.
 *   odd:  auth_proto request and reply parsers; what parses must format
 *         and parse back to the same fields.
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined); dictionary
 * tests/fuzz/fuzz_passdb.dict. */
#include "auth/auth_proto.h"
#include "auth/passdb.h"
#include "lib/log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_passdb(const char *data, size_t size)
{
	static const char *const users[] = { "u", "user", "a", "" };
	struct passdb *db = passdb_parse("fuzz", data, size);
	bool is_cheap = memchr(data, '$', size) == NULL;

	(void)passdb_count(db);
	(void)passdb_has_plaintext(db);
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
		if (!passdb_user_exists(db, users[i]))
			continue;
		(void)passdb_verify_apop(db, users[i], "<1.2@host>",
					 "c4c9334bac560ecc979e58001b3e22fb");
		if (is_cheap)
			(void)passdb_verify(db, users[i], "pw");
	}
	passdb_free(&db);
	if (is_cheap && size < 256) {
		char *stored = strndup(data, size);
		(void)passdb_verify_hash(stored, "pw");
		free(stored);
	}
}

static void check_request_roundtrip(const struct auth_proto_request *req)
{
	struct auth_proto_request again;
	const char *error;
	size_t len;
	char *line = auth_proto_request_format(req, &len);

	if (line == NULL)
		return;	/* e.g. base64 of a near-limit line grows */
	if (auth_proto_request_parse(line, len - 1, &again, &error) < 0 ||
	    again.id != req->id || again.type != req->type ||
	    strcmp(again.user, req->user) != 0 ||
	    (req->secret != NULL && strcmp(again.secret, req->secret) != 0))
		abort();
	auth_proto_request_clear(&again);
	free(line);
}

static void fuzz_proto(const char *data, size_t size)
{
	struct auth_proto_request req;
	struct auth_proto_reply reply, again;
	const char *error;
	size_t len;
	char *line;

	if (auth_proto_request_parse(data, size, &req, &error) == 0) {
		check_request_roundtrip(&req);
		auth_proto_request_clear(&req);
	}
	if (auth_proto_reply_parse(data, size, &reply, &error) == 0) {
		line = auth_proto_reply_format(&reply, &len);
		if (line == NULL ||
		    auth_proto_reply_parse(line, len - 1, &again, &error) < 0 ||
		    again.status != reply.status || again.id != reply.id ||
		    (reply.user != NULL && strcmp(again.user, reply.user) != 0))
			abort();
		auth_proto_reply_clear(&again);
		auth_proto_reply_clear(&reply);
		free(line);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool is_init;

	if (!is_init) {
		log_set_level(LOG_LEVEL_ERROR);	/* warnings are expected */
		is_init = true;
	}
	if (size == 0)
		return 0;
	/* copy so ASan catches reads past the end */
	char *copy = malloc(size - 1 + 1);
	memcpy(copy, data + 1, size - 1);
	if ((data[0] & 1) == 0)
		fuzz_passdb(copy, size - 1);
	else
		fuzz_proto(copy, size - 1);
	free(copy);
	return 0;
}
