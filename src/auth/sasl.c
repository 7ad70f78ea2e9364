/* sasl.c: SASL response decoding and the PLAIN message (RFC 4616). */
#include "auth/sasl.h"
#include "lib/base64.h"
#include "lib/xmalloc.h"

#include <stdlib.h>
#include <string.h>

int sasl_decode_response(const char *b64, size_t len, char **out_r,
			 size_t *len_r)
{
	unsigned char *out;
	long n;

	if (len == 1 && b64[0] == '=') {
		*out_r = xstrdup("");
		*len_r = 0;
		return 0;
	}
	out = xmalloc(len / 4 * 3 + 1);
	n = base64_decode(b64, len, out);
	if (n < 0) {
		free(out);
		return -1;
	}
	*out_r = (char *)out;
	*len_r = (size_t)n;
	return 0;
}

int sasl_plain_parse(const char *data, size_t len, const char **authcid_r,
		     const char **pass_r)
{
	const char *authzid = data, *authcid, *pass, *end = data + len;

	authcid = memchr(authzid, '\0', len);
	if (authcid == NULL)
		return -1;
	authcid++;
	pass = memchr(authcid, '\0', (size_t)(end - authcid));
	if (pass == NULL)
		return -1;
	pass++;
	/* data[len] is NUL: memchr finds NULs inside the password only. */
	if (*authcid == '\0' || memchr(pass, '\0', (size_t)(end - pass)) ||
	    (*authzid != '\0' && strcmp(authzid, authcid) != 0))
		return -1;
	*authcid_r = authcid;
	*pass_r = pass;
	return 0;
}
