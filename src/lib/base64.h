/* base64.h: RFC 4648 base64 for SASL exchanges (no line breaks). */
#ifndef HERON_BASE64_H
#define HERON_BASE64_H

#include <stddef.h>

/* Size of the encoding of n bytes, including the NUL. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1) /* SIZE-MATH */

/* Encodes len bytes into out (BASE64_ENCODED_SIZE(len) bytes), NUL-ends it
 * and returns the encoded length. */
size_t base64_encode(const void *src, size_t len, char *out);
/* Decodes src (len chars, padding required, no whitespace) into out, which
 * must hold len / 4 * 3 + 1 bytes; NUL-ends it. Returns the decoded length,
 * or -1 on malformed input. */
long base64_decode(const char *src, size_t len, unsigned char *out);

#endif
