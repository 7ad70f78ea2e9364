/* sasl.h: the SASL message formats both POP3 AUTH and IMAP AUTHENTICATE
 * use (RFC 4422 profiles: RFC 5034, RFC 3501 6.2.2 / RFC 4959). No I/O. */
#ifndef HERON_SASL_H
#define HERON_SASL_H

#include <stddef.h>

/* Decodes a client response: "=" is the empty response (RFC 4959 / 5034
 * initial response); otherwise strict base64. *out_r is a NUL-ended heap
 * buffer the caller wipes (xwipe) and frees. Returns 0 or -1. */
int sasl_decode_response(const char *b64, size_t len, char **out_r,
			 size_t *len_r);
/* RFC 4616 section 2: [authzid] NUL authcid NUL passwd. Acting as another
 * user is not supported: authzid must be empty or equal authcid. The
 * returned pointers point into data. Returns 0 or -1. */
int sasl_plain_parse(const char *data, size_t len, const char **authcid_r,
		     const char **pass_r);

#endif
