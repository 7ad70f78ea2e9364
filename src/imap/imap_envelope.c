/* imap_envelope.c: ENVELOPE (RFC 3501 7.4.2, 9 "envelope") from the raw
 * header values kept in the part tree. Addresses are parsed here on each
 * call (cheap; the raw values are cached with the tree). */
#include "imap/imap_envelope.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_quote.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"

#include "mail/rfc5322.h"

/* Like Dovecot: quoted strings take up to 4 escapes before a literal is
 * shorter; CR, LF, NUL and 8-bit bytes need a literal, but with
 * IMAP_QUOTE_UTF8 (UTF8=ACCEPT, RFC 6855 3) valid UTF-8 may be quoted. */
#define QUOTED_MAX_ESCAPES 4

/* A literal holds CHAR8 (RFC 3501 9: no NUL), so NUL goes out as 0x80
 * as in Dovecot (fuzz_mime found a NUL in a Message-ID literal). */
static void append_literal(struct evbuffer *out, const char *s, size_t len)
{
	const char *nul;

	evbuffer_add_printf(out, "{%zu}\r\n", len);
	while ((nul = memchr(s, '\0', len)) != NULL) {
		evbuffer_add(out, s, (size_t)(nul - s));
		evbuffer_add(out, "\x80", 1);
		len -= (size_t)(nul - s) + 1;
		s = nul + 1;
	}
	evbuffer_add(out, s, len);
}

/* 8-bit s may go out quoted: UTF-8 session, valid UTF-8. */
static bool can_quote_8bit(const char *s, size_t len, unsigned flags)
{
	return (flags & IMAP_QUOTE_UTF8) != 0 &&
		utf8_is_valid((const unsigned char *)s, len);
}

/* TODO: use imap_append_nstring() from imap/imap_quote.h when it exists */
static void append_nstring(struct evbuffer *out, const char *s, size_t len,
			   unsigned flags)
{
	unsigned int escapes = 0;
	bool has_8bit = false;
	size_t i, start;

	if (s == NULL) {
		evbuffer_add(out, "NIL", 3);
		return;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			if (++escapes > QUOTED_MAX_ESCAPES)
				break;
		} else if (c == '\r' || c == '\n' || c == '\0') {
			break;
		} else if (c >= 0x80) {
			has_8bit = true;
		}
	}
	if (i < len || (has_8bit && !can_quote_8bit(s, len, flags))) {
		append_literal(out, s, len);
		return;
	}
	evbuffer_add(out, "\"", 1);
	for (start = i = 0; i < len; i++) {
		if (s[i] != '"' && s[i] != '\\')
			continue;
		evbuffer_add(out, s + start, i - start);
		evbuffer_add(out, "\\", 1);
		start = i;
	}
	evbuffer_add(out, s + start, len - start);
	evbuffer_add(out, "\"", 1);
}

/* Dovecot's imap_append_string_for_humans(): CR/LF dropped, TAB and
 * runs of white space become one space, no leading/trailing space, NUL
 * becomes 0x80; quoted if nothing needed changing, else a literal. */
static void append_for_humans(struct evbuffer *out, const char *s,
			      size_t len, unsigned flags)
{
	bool last_lwsp = true, special = false;
	size_t i, n = 0;
	char *d = xmalloc(len + 1);

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == ' ' || c == '\t') {
			if (!last_lwsp)
				d[n++] = ' ';
			last_lwsp = true;
			continue;
		}
		if (c == '"' || c == '\\' || c == '\0' ||
		    (c >= 0x80 && (flags & IMAP_QUOTE_UTF8) == 0))
			special = true;
		d[n++] = c == '\0' ? (char)0x80 : (char)c;
		last_lwsp = false;
	}
	if (n > 0 && d[n - 1] == ' ')
		n--;
	if (n == 0)
		evbuffer_add(out, "\"\"", 2);
	else if (!special && n == len && memcmp(d, s, n) == 0 &&
		 (flags == 0 || can_quote_8bit(d, n, flags))) {
		evbuffer_add(out, "\"", 1);
		evbuffer_add(out, d, n);
		evbuffer_add(out, "\"", 1);
	} else {
		append_literal(out, d, n);
	}
	free(d);
}

void imap_envelope_append_for_humans(struct evbuffer *out, const char *s,
				     size_t len)
{
	append_for_humans(out, s, len, 0);
}

/* nstring of a header value with its CR and LF removed (unfolded). */
static void append_unfolded(struct evbuffer *out, const char *s,
			    size_t len, unsigned flags)
{
	char *tmp;
	size_t i, n = 0;

	if (s == NULL || (memchr(s, '\n', len) == NULL &&
			  memchr(s, '\r', len) == NULL)) {
		append_nstring(out, s, len, flags);
		return;
	}
	tmp = xmalloc(len);
	for (i = 0; i < len; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			tmp[n++] = s[i];
	}
	append_nstring(out, tmp, n, flags);
	free(tmp);
}

void imap_envelope_append_nstring(struct evbuffer *out, const char *s,
				  size_t len)
{
	append_unfolded(out, s, len, 0);
}

static void write_addresses(struct evbuffer *out, const char *value,
			    size_t len, unsigned flags)
{
	struct rfc5322_address *list, *a;

	list = value == NULL ? NULL : rfc5322_address_parse(value, len);
	if (list == NULL) {
		evbuffer_add(out, "NIL", 3);
		return;
	}
	evbuffer_add(out, "(", 1);
	for (a = list; a != NULL; a = a->next) {
		evbuffer_add(out, "(", 1);
		if (a->name == NULL)
			evbuffer_add(out, "NIL", 3);
		else
			append_for_humans(out, a->name, strlen(a->name),
					  flags);
		evbuffer_add(out, " ", 1);
		append_unfolded(out, a->route, a->route == NULL ? 0 :
				strlen(a->route), flags);
		evbuffer_add(out, " ", 1);
		append_unfolded(out, a->mailbox, a->mailbox == NULL ? 0 :
				strlen(a->mailbox), flags);
		evbuffer_add(out, " ", 1);
		append_unfolded(out, a->domain, a->domain == NULL ? 0 :
				strlen(a->domain), flags);
		evbuffer_add(out, ")", 1);
	}
	evbuffer_add(out, ")", 1);
	rfc5322_address_free(&list);
}

static bool has_addresses(const struct message_part *m, enum message_field f)
{
	struct rfc5322_address *list;

	if (m->fields[f] == NULL)
		return false;
	list = rfc5322_address_parse(m->fields[f], m->field_lens[f]);
	if (list == NULL)
		return false;
	rfc5322_address_free(&list);
	return true;
}

static void write_addr_field(struct evbuffer *out,
			     const struct message_part *m,
			     enum message_field f, unsigned flags)
{
	if ((f == MESSAGE_FIELD_SENDER || f == MESSAGE_FIELD_REPLY_TO) &&
	    !has_addresses(m, f))
		f = MESSAGE_FIELD_FROM;
	evbuffer_add(out, " ", 1);
	write_addresses(out, m->fields[f], m->field_lens[f], flags);
}

void imap_envelope_write(struct evbuffer *out, const struct message_part *m)
{
	imap_envelope_write_flags(out, m, 0);
}

void imap_envelope_write_flags(struct evbuffer *out,
			       const struct message_part *m, unsigned flags)
{
	enum message_field f;

	if (m == NULL || (m->flags & MESSAGE_PART_FLAG_IS_MESSAGE) == 0) {
		evbuffer_add_printf(out, "(NIL NIL NIL NIL NIL NIL NIL NIL "
				    "NIL NIL)");
		return;
	}
	evbuffer_add(out, "(", 1);
	append_unfolded(out, m->fields[MESSAGE_FIELD_DATE],
			m->field_lens[MESSAGE_FIELD_DATE], flags);
	evbuffer_add(out, " ", 1);
	if (m->fields[MESSAGE_FIELD_SUBJECT] == NULL)
		evbuffer_add(out, "NIL", 3);
	else
		append_for_humans(out, m->fields[MESSAGE_FIELD_SUBJECT],
				  m->field_lens[MESSAGE_FIELD_SUBJECT], flags);
	for (f = MESSAGE_FIELD_FROM; f <= MESSAGE_FIELD_BCC; f++)
		write_addr_field(out, m, f, flags);
	evbuffer_add(out, " ", 1);
	append_unfolded(out, m->fields[MESSAGE_FIELD_IN_REPLY_TO],
			m->field_lens[MESSAGE_FIELD_IN_REPLY_TO], flags);
	evbuffer_add(out, " ", 1);
	append_unfolded(out, m->fields[MESSAGE_FIELD_MESSAGE_ID],
			m->field_lens[MESSAGE_FIELD_MESSAGE_ID], flags);
	evbuffer_add(out, ")", 1);
}
