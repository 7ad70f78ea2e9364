/* imap_quote.c: IMAP string output (see imap_quote.h). Everything goes
 * straight into the caller's evbuffer; nothing is kept. */
#include "imap/imap_quote.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_parser.h"
#include "imap/imap_utf7.h"
#include "lib/utf8.h"


bool imap_can_quote(const char *str, size_t len, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)str;
	bool has_8bit = false;
	size_t i;

	/* QUOTED-CHAR: TEXT-CHAR (CHAR but CR/LF; CHAR excludes NUL) */
	for (i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
			return false;
		if (s[i] >= 0x80)
			has_8bit = true;
	}
	if (!has_8bit)
		return true;
	return (flags & IMAP_QUOTE_UTF8) != 0 && utf8_is_valid(s, len);
}

void imap_append_literal(struct evbuffer *out, const char *str, size_t len)
{
	evbuffer_add_printf(out, "{%zu}\r\n", len);
	evbuffer_add(out, str, len);
}

void imap_append_quoted(struct evbuffer *out, const char *str, size_t len,
			unsigned flags)
{
	size_t i, start = 0;

	if (!imap_can_quote(str, len, flags)) {
		imap_append_literal(out, str, len);
		return;
	}
	evbuffer_add(out, "\"", 1);
	for (i = 0; i < len; i++) {
		if (str[i] != '"' && str[i] != '\\')
			continue;
		evbuffer_add(out, str + start, i - start);
		evbuffer_add(out, "\\", 1);
		start = i;
	}
	evbuffer_add(out, str + start, len - start);
	evbuffer_add(out, "\"", 1);
}

void imap_append_string(struct evbuffer *out, const char *str, size_t len,
			unsigned flags)
{
	if (len > IMAP_QUOTE_MAX_LEN)
		imap_append_literal(out, str, len);
	else
		imap_append_quoted(out, str, len, flags);
}

void imap_append_nstring(struct evbuffer *out, const char *str, size_t len,
			 unsigned flags)
{
	if (str == NULL)
		evbuffer_add(out, "NIL", 3);
	else
		imap_append_string(out, str, len, flags);
}

void imap_append_astring(struct evbuffer *out, const char *str, size_t len,
			 unsigned flags)
{
	size_t i;

	if (len == 0 || (len == 3 && strncasecmp(str, "NIL", 3) == 0))
		goto string;
	for (i = 0; i < len; i++) {
		if (!imap_char_is_astring((unsigned char)str[i]))
			goto string;
	}
	evbuffer_add(out, str, len);
	return;
string:
	imap_append_string(out, str, len, flags);
}

int imap_append_mailbox(struct evbuffer *out, const char *name, size_t len,
			unsigned flags)
{
	char *enc;

	if (!utf8_is_valid((const unsigned char *)name, len))
		return -1;
	if (len == 5 && strncasecmp(name, "INBOX", 5) == 0) {
		evbuffer_add(out, "INBOX", 5);
		return 0;
	}
	if ((flags & IMAP_QUOTE_UTF8) != 0) {
		imap_append_astring(out, name, len, flags);
		return 0;
	}
	if (imap_utf7_encode(name, len, &enc) < 0)
		return -1;
	imap_append_astring(out, enc, strlen(enc), flags);
	free(enc);
	return 0;
}
