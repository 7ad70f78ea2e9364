/* test_imap_utf8.c: UTF8=ACCEPT output (RFC 6855 section 3): ENVELOPE of
 * messages with raw UTF-8 headers (RFC 6532) with and without
 * IMAP_QUOTE_UTF8 (quoted UTF-8 vs literals; invalid UTF-8 stays a
 * literal), and mailbox names written for both kinds of session. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "test.h"
#include "imap/imap_envelope.h"
#include "imap/imap_mailbox_name.h"
#include "imap/imap_quote.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"

static char *drain(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *s = xmalloc(len + 1);

	evbuffer_remove(b, s, len);
	s[len] = '\0';
	return s;
}

static char *envelope(const char *msg, unsigned flags)
{
	struct message_part *root = message_parse(msg, strlen(msg), NULL);
	struct evbuffer *b = evbuffer_new();
	char *s;

	imap_envelope_write_flags(b, root, flags);
	s = drain(b);
	evbuffer_free(b);
	message_part_free(&root);
	return s;
}

#define HDR_TAIL "Message-ID: <m@x>\n\nbody\n"
#define ADDR_TAIL " NIL NIL NIL NIL \"<m@x>\")"

static void test_envelope(void)
{
	static const struct {
		const char *msg;
		unsigned flags;
		const char *expected;
	} rows[] = {
		/* 7-bit: the same either way */
		{ "Subject: hi\nFrom: a@b\n" HDR_TAIL, 0,
		  "(NIL \"hi\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\"))"
		  " ((NIL NIL \"a\" \"b\"))" ADDR_TAIL },
		{ "Subject: hi\nFrom: a@b\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL \"hi\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\"))"
		  " ((NIL NIL \"a\" \"b\"))" ADDR_TAIL },
		/* UTF-8 subject and display name: literal / quoted */
		{ "Subject: Gr\xc3\xbc\xc3\x9f""e\n"
		  "From: J\xc3\xb6rg <j@b>\n" HDR_TAIL, 0,
		  "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f""e (({5}\r\nJ\xc3\xb6rg NIL"
		  " \"j\" \"b\")) (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"b\")) "
		  "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"b\"))" ADDR_TAIL },
		{ "Subject: Gr\xc3\xbc\xc3\x9f""e\n"
		  "From: J\xc3\xb6rg <j@b>\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL \"Gr\xc3\xbc\xc3\x9f""e\" ((\"J\xc3\xb6rg\" NIL"
		  " \"j\" \"b\")) ((\"J\xc3\xb6rg\" NIL \"j\" \"b\")) "
		  "((\"J\xc3\xb6rg\" NIL \"j\" \"b\"))" ADDR_TAIL },
		/* UTF-8 local part and domain (RFC 6532 3.2) */
		{ "Subject: x\nFrom: \xc3\xa4@\xc3\xb6.de\n" HDR_TAIL,
		  IMAP_QUOTE_UTF8,
		  "(NIL \"x\" ((NIL NIL \"\xc3\xa4\" \"\xc3\xb6.de\")) "
		  "((NIL NIL \"\xc3\xa4\" \"\xc3\xb6.de\")) "
		  "((NIL NIL \"\xc3\xa4\" \"\xc3\xb6.de\"))" ADDR_TAIL },
		{ "Subject: x\nFrom: \xc3\xa4@\xc3\xb6.de\n" HDR_TAIL, 0,
		  "(NIL \"x\" ((NIL NIL {2}\r\n\xc3\xa4 {5}\r\n\xc3\xb6.de)) "
		  "((NIL NIL {2}\r\n\xc3\xa4 {5}\r\n\xc3\xb6.de)) "
		  "((NIL NIL {2}\r\n\xc3\xa4 {5}\r\n\xc3\xb6.de))" ADDR_TAIL },
		/* Latin-1 bytes are not UTF-8: a literal even when enabled */
		{ "Subject: caf\xe9\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL {4}\r\ncaf\xe9 NIL NIL NIL NIL NIL NIL NIL"
		  " \"<m@x>\")" },
		/* folded subject: changed "for humans", so a literal as
		 * for 7-bit (Dovecot's rule) */
		{ "Subject: \xc3\xa4\n \xc3\xb6\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL {5}\r\n\xc3\xa4 \xc3\xb6 NIL NIL NIL NIL NIL NIL NIL"
		  " \"<m@x>\")" },
		/* a UTF-8 subject with one space inside stays quoted */
		{ "Subject: \xc3\xa4 \xc3\xb6\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL \"\xc3\xa4 \xc3\xb6\" NIL NIL NIL NIL NIL NIL NIL"
		  " \"<m@x>\")" },
		/* quotes and backslashes still escaped */
		{ "Subject: \xc3\xa4\"\\\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL {4}\r\n\xc3\xa4\"\\ NIL NIL NIL NIL NIL NIL NIL"
		  " \"<m@x>\")" },
		{ "In-Reply-To: <\xc3\xa4\"@x>\n" HDR_TAIL, IMAP_QUOTE_UTF8,
		  "(NIL NIL NIL NIL NIL NIL NIL NIL \"<\xc3\xa4\\\"@x>\""
		  " \"<m@x>\")" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *got = envelope(rows[i].msg, rows[i].flags);

		test_assert_streq_idx(got, rows[i].expected, (int)i);
		free(got);
	}
}

/* imap_envelope_write is imap_envelope_write_flags(.., 0). */
static void test_envelope_default(void)
{
	const char *msg = "Subject: \xc3\xa4\n" HDR_TAIL;
	struct message_part *root = message_parse(msg, strlen(msg), NULL);
	struct evbuffer *b = evbuffer_new();
	char *a, *c;

	imap_envelope_write(b, root);
	a = drain(b);
	c = envelope(msg, 0);
	test_assert_streq(a, c);
	free(a);
	free(c);
	evbuffer_free(b);
	message_part_free(&root);
}

/* Store names as the two kinds of session see them (LIST, STATUS). */
static void test_mailbox_out(void)
{
	static const struct {
		const char *store;
		unsigned flags;
		const char *expected;	/* NULL: not representable */
	} rows[] = {
		{ "B&AOQ-r", 0, "B&AOQ-r" },
		{ "B&AOQ-r", IMAP_QUOTE_UTF8, "\"B\xc3\xa4r\"" },
		{ "a&-b", 0, "a&-b" },
		{ "a&-b", IMAP_QUOTE_UTF8, "a&b" },
		{ "&2D3eAA-", IMAP_QUOTE_UTF8, "\"\xf0\x9f\x98\x80\"" },
		{ "INBOX/&AOQ-", IMAP_QUOTE_UTF8, "\"INBOX/\xc3\xa4\"" },
		{ "x y", IMAP_QUOTE_UTF8, "\"x y\"" },
		{ "x\xe4y", 0, NULL },
		{ "x\xe4y", IMAP_QUOTE_UTF8, NULL },
		{ "a&b", IMAP_QUOTE_UTF8, NULL },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct evbuffer *b = evbuffer_new();
		int ret = imap_mailbox_name_append(b, rows[i].store,
						   rows[i].flags);
		char *got = drain(b);

		if (rows[i].expected == NULL) {
			test_assert_idx(ret < 0 && *got == '\0', (int)i);
		} else {
			test_assert_idx(ret == 0, (int)i);
			test_assert_streq_idx(got, rows[i].expected, (int)i);
		}
		free(got);
		evbuffer_free(b);
	}
}

int main(void)
{
	test_run("envelope", test_envelope);
	test_run("envelope_default", test_envelope_default);
	test_run("mailbox_out", test_mailbox_out);
	return test_done("imap_utf8");
}
