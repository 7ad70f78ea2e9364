/* imap_utf7.h: modified UTF-7 for mailbox names (RFC 3501 section
 * 5.1.3). The decoder is strict: it accepts exactly what the encoder
 * produces, so decode(x) = y implies encode(y) = x. Refused: raw bytes
 * outside 0x20..0x7e, "&" not followed by "-" or a base64 run, runs that
 * are unterminated, empty, carry non-zero or surplus padding bits,
 * encode printable ASCII or U+0000, follow another run directly, or have
 * broken surrogate pairs. */
#ifndef HERON_IMAP_UTF7_H
#define HERON_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

/* UTF-8 -> mUTF-7. Returns 0 and a heap string, or -1 if the input is
 * not valid UTF-8 (RFC 3629) or contains NUL. */
int imap_utf7_encode(const char *utf8, size_t len, char **mutf7_r);
/* mUTF-7 -> UTF-8. Returns 0 and a heap string, or -1 if invalid or not
 * canonical. */
int imap_utf7_decode(const char *mutf7, size_t len, char **utf8_r);
bool imap_utf7_is_valid(const char *mutf7, size_t len);

#endif
