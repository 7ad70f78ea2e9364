/* imap_quote.h: writing IMAP strings into an output evbuffer (RFC 3501
 * section 4.3, RFC 9051 for UTF-8). Strings that can't be quoted (CR,
 * LF, NUL, 8-bit without UTF-8 mode, invalid UTF-8, or long) become
 * literals "{n}\r\n...". NUL bytes cannot be represented in a literal
 * (CHAR8); callers with binary data use literal8 themselves. */
#ifndef HERON_IMAP_QUOTE_H
#define HERON_IMAP_QUOTE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* The session has UTF8=ACCEPT enabled (RFC 9051 / 6855): valid UTF-8 may
 * go into quoted strings and mailbox names are sent as UTF-8. */
#define IMAP_QUOTE_UTF8 0x01

/* imap_append_string() uses a literal above this length. */
#define IMAP_QUOTE_MAX_LEN 1024

/* str can be a quoted string (any length). */
bool imap_can_quote(const char *str, size_t len, unsigned flags);

/* "..." with \" and \\ escaped; a literal if it can't be quoted. */
void imap_append_quoted(struct evbuffer *out, const char *str, size_t len,
			unsigned flags);
/* {len}CRLF + bytes, unconditionally. */
void imap_append_literal(struct evbuffer *out, const char *str, size_t len);
/* string: quoted when possible and not longer than IMAP_QUOTE_MAX_LEN,
 * else a literal. */
void imap_append_string(struct evbuffer *out, const char *str, size_t len,
			unsigned flags);
/* nstring: NIL for str == NULL. */
void imap_append_nstring(struct evbuffer *out, const char *str, size_t len,
			 unsigned flags);
/* astring: a bare atom when non-empty, all ASTRING-CHAR and not "NIL"
 * (which would read as NIL in an nstring context), else a string. */
void imap_append_astring(struct evbuffer *out, const char *str, size_t len,
			 unsigned flags);
/* mailbox: name is UTF-8 (as the store keeps it); written raw with
 * IMAP_QUOTE_UTF8, else as modified UTF-7 (RFC 3501 section 5.1.3).
 * "INBOX" in any case is written as "INBOX". Returns -1 (nothing
 * written) if name isn't valid UTF-8. */
int imap_append_mailbox(struct evbuffer *out, const char *name, size_t len,
			unsigned flags);

#endif
