/* fuzz_quote.c: IMAP string output (src/imap/imap_quote.c) read back by
 * the IMAP parser. The first input byte picks the flags (UTF8=ACCEPT or
 * not); the rest is the string x. For each writer (quoted, string,
 * nstring, astring, mailbox) "t X <output>\r\n" must parse as exactly one
 * argument that the matching accessor turns back into x (a mailbox via
 * modified UTF-7 unless UTF-8 mode; INBOX in any case as "INBOX"). NUL
 * cannot be sent in a plain literal, so inputs with NUL are only written
 * (memory safety), not compared. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "imap/imap_parser.h"
#include "imap/imap_quote.h"
#include "imap/imap_utf7.h"

enum quote_writer {
	QW_QUOTED, QW_STRING, QW_NSTRING, QW_ASTRING, QW_MAILBOX, QW_COUNT
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parses "t X " + out + CRLF; returns the parser (DONE) or NULL. */
static struct imap_parser *parse_back(struct evbuffer *out, unsigned flags)
{
	struct imap_parser_settings set;
	struct imap_parser *p;
	const unsigned char *d;
	size_t len, pos = 0, used;
	int ret;

	imap_parser_settings_default(&set, true);
	set.utf8 = (flags & IMAP_QUOTE_UTF8) != 0;
	evbuffer_prepend(out, "t X ", 4);
	evbuffer_add(out, "\r\n", 2);
	len = evbuffer_get_length(out);
	d = evbuffer_pullup(out, -1);
	p = imap_parser_create(&set);
	for (;;) {
		ret = imap_parser_feed(p, d + pos, len - pos, &used);
		pos += used;
		if (ret != IMAP_PARSE_LITERAL)
			break;
		if (imap_parser_literal_accept(p, IMAP_LITERAL_MEMORY) < 0)
			break;
	}
	if (ret == IMAP_PARSE_DONE && pos == len)
		return p;
	imap_parser_destroy(&p);
	return NULL;
}

static void check_value(enum quote_writer w, const struct imap_arg *arg,
			const char *x, size_t len, unsigned flags)
{
	const char *s;
	char *dec = NULL;
	size_t n;

	switch (w) {
	case QW_QUOTED:
	case QW_STRING:
		if (!imap_arg_get_string(arg, &s, &n))
			abort();
		break;
	case QW_NSTRING:
		if (!imap_arg_get_nstring(arg, &s, &n) || s == NULL)
			abort();
		break;
	case QW_ASTRING:
		if (!imap_arg_get_astring(arg, &s, &n))
			abort();
		break;
	default:
		if (!imap_arg_get_astring(arg, &s, &n))
			abort();
		if (len == 5 && strncasecmp(x, "INBOX", 5) == 0) {
			if (n != 5 || memcmp(s, "INBOX", 5) != 0)
				abort();
			return;
		}
		if ((flags & IMAP_QUOTE_UTF8) == 0) {
			if (imap_utf7_decode(s, n, &dec) < 0)
				abort();
			s = dec;
			n = strlen(dec);
		}
		break;
	}
	if (n != len || memcmp(s, x, len) != 0)
		abort();
	free(dec);
}

static void check_writer(enum quote_writer w, const char *x, size_t len,
			 unsigned flags)
{
	struct evbuffer *out = evbuffer_new();
	struct imap_parser *p;
	const struct imap_command *cmd;
	bool is_comparable = memchr(x, '\0', len) == NULL;

	switch (w) {
	case QW_QUOTED:
		imap_append_quoted(out, x, len, flags);
		if (imap_can_quote(x, len, flags) &&
		    *evbuffer_pullup(out, 1) != '"')
			abort();
		break;
	case QW_STRING:
		imap_append_string(out, x, len, flags);
		break;
	case QW_NSTRING:
		imap_append_nstring(out, x, len, flags);
		break;
	case QW_ASTRING:
		imap_append_astring(out, x, len, flags);
		break;
	default:
		if (imap_append_mailbox(out, x, len, flags) < 0)
			is_comparable = false;
		break;
	}
	if (is_comparable) {
		p = parse_back(out, flags);
		if (p == NULL)
			abort();
		cmd = imap_parser_command(p);
		if (cmd->args_count != 1)
			abort();
		check_value(w, &cmd->args[0], x, len, flags);
		imap_parser_destroy(&p);
	}
	evbuffer_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *out;
	unsigned flags;
	char *x;
	int w;

	if (size == 0)
		return 0;
	flags = (data[0] & 1) != 0 ? IMAP_QUOTE_UTF8 : 0;
	x = malloc(size - 1 > 0 ? size - 1 : 1);	/* exact size */
	memcpy(x, data + 1, size - 1);
	for (w = 0; w < QW_COUNT; w++)
		check_writer((enum quote_writer)w, x, size - 1, flags);
	out = evbuffer_new();	/* NIL must read back as NIL */
	imap_append_nstring(out, NULL, 0, flags);
	if (evbuffer_get_length(out) != 3 ||
	    memcmp(evbuffer_pullup(out, 3), "NIL", 3) != 0)
		abort();
	evbuffer_free(out);
	free(x);
	return 0;
}
