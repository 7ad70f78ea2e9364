/* rfc2047.h: RFC 2047 encoded-word decoding to UTF-8 (glibc iconv).
 *
 * Decodes "=?charset[*lang]?B|Q?text?=" anywhere in a header value (more
 * lenient than RFC 2047 5, like most readers), drops white space between
 * two adjacent encoded-words (RFC 2047 6.2), and joins adjacent words of
 * the same charset before conversion so a character split between them
 * survives. Words with an unknown charset or bad syntax stay as they are.
 * Bytes invalid in their charset become '?'. No length limit beyond the
 * input's; output is at most 3 times the input plus 1. */
#ifndef HERON_RFC2047_H
#define HERON_RFC2047_H

#include <stddef.h>

/* Decodes in[0..len) into a fresh NUL-terminated heap string. */
void rfc2047_decode(const char *in, size_t len, char **out_r,
		    size_t *out_len_r);
/* Converts len bytes in charset to UTF-8 (heap, NUL-terminated). Returns
 * 0, or -1 (*out_r NULL) when iconv does not know the charset. */
int rfc2047_charset_to_utf8(const char *charset, const void *in, size_t len,
			    char **out_r, size_t *out_len_r);

#endif
