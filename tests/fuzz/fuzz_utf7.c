/* fuzz_utf7.c: modified UTF-7 (src/imap/imap_utf7.c, RFC 3501 5.1.3) in
 * both directions. The input is tried as mUTF-7 and as UTF-8:
 *   decode(x) = y  =>  y is valid UTF-8 without NUL, encode(y) = x, and
 *                      is_valid(x); decode refusing x => !is_valid(x).
 *   encode(x) = y  =>  y is printable ASCII, decode(y) = x (round trip);
 *                      encode refuses exactly invalid UTF-8 and NUL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"
#include "lib/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_decode(const char *in, size_t len)
{
	char *utf8, *again;

	if (imap_utf7_decode(in, len, &utf8) < 0) {
		if (imap_utf7_is_valid(in, len))
			abort();
		return;
	}
	if (!imap_utf7_is_valid(in, len) ||
	    !utf8_is_valid((const unsigned char *)utf8, strlen(utf8)))
		abort();
	if (imap_utf7_encode(utf8, strlen(utf8), &again) < 0 ||
	    strlen(again) != len || memcmp(again, in, len) != 0)
		abort();
	free(again);
	free(utf8);
}

static void check_encode(const char *in, size_t len)
{
	bool is_encodable = utf8_is_valid((const unsigned char *)in, len) &&
		memchr(in, '\0', len) == NULL;
	char *mutf7, *again;
	size_t i, n;

	if (imap_utf7_encode(in, len, &mutf7) < 0) {
		if (is_encodable)
			abort();
		return;
	}
	if (!is_encodable)
		abort();
	n = strlen(mutf7);
	for (i = 0; i < n; i++) {
		if (mutf7[i] < 0x20 || mutf7[i] > 0x7e)
			abort();
	}
	if (!imap_utf7_is_valid(mutf7, n) ||
	    imap_utf7_decode(mutf7, n, &again) < 0 ||
	    strlen(again) != len || memcmp(again, in, len) != 0)
		abort();
	free(again);
	free(mutf7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size > 0 ? size : 1);	/* exact size */

	memcpy(copy, data, size);
	check_decode(copy, size);
	check_encode(copy, size);
	free(copy);
	return 0;
}
