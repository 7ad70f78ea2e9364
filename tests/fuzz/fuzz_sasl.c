/* fuzz_sasl.c: SASL responses (src/auth/sasl.c): base64 decoding of a
 * client response and the PLAIN message (RFC 4616). What decodes must
 * re-encode to a string of the same length (strict, padded base64); PLAIN
 * is parsed both from the decoded bytes and from the raw input (with the
 * NUL sasl_plain_parse() relies on after the data), and the results must
 * point inside the data with a non-empty authcid and no NUL in the
 * password. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/sasl.h"
#include "lib/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plain(const char *d, size_t len)
{
	const char *authcid, *pass;

	if (sasl_plain_parse(d, len, &authcid, &pass) < 0)
		return;
	if (authcid <= d || authcid > d + len || pass <= authcid ||
	    pass > d + len || *authcid == '\0' ||
	    strlen(pass) != (size_t)(d + len - pass) ||
	    authcid + strlen(authcid) + 1 != pass)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *out, *enc;
	size_t out_len;

	memcpy(copy, data, size);
	copy[size] = '\0';
	if (sasl_decode_response(copy, size, &out, &out_len) == 0) {
		if (out[out_len] != '\0')
			abort();
		if (!(size == 1 && copy[0] == '=')) {
			enc = malloc(BASE64_ENCODED_SIZE(out_len));
			if (base64_encode(out, out_len, enc) != size)
				abort();
			free(enc);
		}
		check_plain(out, out_len);
		free(out);
	}
	check_plain(copy, size);
	free(copy);
	return 0;
}
