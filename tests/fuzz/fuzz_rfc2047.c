/* fuzz_rfc2047.c: RFC 2047 encoded-words (src/mail/rfc2047.c). The input
 * is decoded as a header value: the output must be NUL-terminated at its
 * length, at most 3 * input + 1 bytes, and equal to the input when the
 * input has no "=?". With a first byte of '!', the input is instead
 * "charset NUL bytes" for rfc2047_charset_to_utf8(), whose output must be
 * valid UTF-8 (invalid input becomes '?'). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"
#include "mail/rfc2047.h"

#define RFC2047_FUZZ_CHARSET_MAX 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_charset(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	char charset[RFC2047_FUZZ_CHARSET_MAX + 1], *out;
	size_t n, out_len;

	if (nul == NULL || (size_t)(nul - data) > RFC2047_FUZZ_CHARSET_MAX)
		return;
	n = (size_t)(nul - data);
	memcpy(charset, data, n);
	charset[n] = '\0';
	if (rfc2047_charset_to_utf8(charset, nul + 1, size - n - 1, &out,
				    &out_len) < 0) {
		if (out != NULL)
			abort();
		return;
	}
	if (out[out_len] != '\0' ||
	    !utf8_is_valid((const unsigned char *)out, out_len))
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *out;
	size_t out_len;

	if (size > 0 && data[0] == '!') {
		check_charset(data + 1, size - 1);
		return 0;
	}
	copy = malloc(size > 0 ? size : 1);	/* exact size */
	memcpy(copy, data, size);
	rfc2047_decode(copy, size, &out, &out_len);
	if (out[out_len] != '\0' || out_len > 3 * size + 1)
		abort();
	if (memmem(copy, size, "=?", 2) == NULL &&
	    (out_len != size || memcmp(out, copy, size) != 0))
		abort();
	free(out);
	free(copy);
	return 0;
}
