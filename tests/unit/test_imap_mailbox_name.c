/* test_imap_mailbox_name.c: mailbox name conversion and LIST pattern
 * matching (imap_mailbox_name.h). Table-driven. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap/imap_mailbox_name.h"
#include "imap/imap_quote.h"
#include "test.h"

static void test_pattern_match(void)
{
	static const struct {
		const char *pattern, *name;
		bool match;
	} rows[] = {
		{ "*", "INBOX", true },
		{ "*", "a/b/c", true },
		{ "%", "a", true },
		{ "%", "a/b", false },
		{ "a/%", "a/b", true },
		{ "a/%", "a/b/c", false },
		{ "a/*", "a/b/c", true },
		{ "a/*", "a", false },
		{ "a*", "a", true },
		{ "a*", "ab/c", true },
		{ "a%", "ab/c", false },
		{ "%/%", "a/b", true },
		{ "%/%", "a/b/c", false },
		{ "*/c", "a/b/c", true },
		{ "%/c", "a/b/c", false },
		{ "%c", "abc", true },
		{ "%b%", "abc", true },
		{ "%x%", "abc", false },
		{ "abc", "abc", true },
		{ "abc", "abcd", false },
		{ "abcd", "abc", false },
		{ "", "", true },
		{ "", "a", false },
		{ "Sent", "sent", false },
		/* INBOX is case-insensitive, also as a parent level. */
		{ "inbox", "INBOX", true },
		{ "InBoX", "INBOX", true },
		{ "inbox/%", "INBOX/x", true },
		{ "inbox/x", "INBOX/x", true },
		{ "inbox/X", "INBOX/x", false },
		{ "inb*", "INBOX", true },
		{ "i%", "INBOX", true },
		{ "inbox", "INBOXES", false },
		{ "inboxes", "INBOXES", false },
		/* Wildcard-heavy patterns stay cheap and correct. */
		{ "*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa", false },
		{ "%a%a%a%a", "aaaaaaaa", true },
		{ "*/*/*", "a/b", false },
		{ "*/*/*", "a/b/c", true },
		/* UTF-8 names */
		{ "B\xc3\xa4r*", "B\xc3\xa4ren/x", true },
		{ "%\xc3\xa4", "\xc3\xb6\xc3\xa4", true },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		test_assert_idx(imap_mailbox_pattern_match(rows[i].pattern,
							   rows[i].name) ==
				rows[i].match, i);
	}
}

static void test_pattern_make(void)
{
	static const struct {
		const char *ref, *pattern;
		bool is_utf8;
		const char *expected;	/* NULL: error */
	} rows[] = {
		{ "", "*", false, "*" },
		{ "", "%%**%", false, "*" },
		{ "", "a%%b", false, "a%b" },
		{ "archive/", "%", false, "archive/%" },
		{ "~smith/Mail/", "foo.*", false, "~smith/Mail/foo.*" },
		/* RFC 3501 6.3.8: an absolute pattern ignores the ref. */
		{ "archive/", "/usr/doc/foo", false, "/usr/doc/foo" },
		{ "", "B&AOQ-r*", false, "B\xc3\xa4r*" },
		{ "&AOQ-/", "%", false, "\xc3\xa4/%" },
		/* invalid mUTF-7 is matched as it is */
		{ "", "a&b", false, "a&b" },
		{ "", "B\xc3\xa4r*", true, "B\xc3\xa4r*" },
		{ "", "\xff*", true, NULL },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *error = NULL;
		char *pat = NULL;
		int ret = imap_mailbox_pattern_make(rows[i].ref,
						    strlen(rows[i].ref),
						    rows[i].pattern,
						    strlen(rows[i].pattern),
						    rows[i].is_utf8, &pat,
						    &error);

		if (rows[i].expected == NULL) {
			test_assert_idx(ret < 0 && error != NULL, i);
		} else {
			test_assert_idx(ret == 0, i);
			test_assert_streq_idx(pat, rows[i].expected, i);
		}
		free(pat);
	}
}

static void test_pattern_too_long(void)
{
	size_t len = IMAP_MAILBOX_PATTERN_MAX + 1;
	char *big = malloc(len);
	const char *error;
	char *pat;

	memset(big, 'a', len);
	test_assert(imap_mailbox_pattern_make("", 0, big, len, false, &pat,
					      &error) < 0);
	test_assert(imap_mailbox_pattern_make(big, len - 1, "*", 1, false,
					      &pat, &error) < 0);
	test_assert(imap_mailbox_pattern_make(big, len - 2, "*", 1, false,
					      &pat, &error) == 0);
	free(pat);
	free(big);
}

static void test_from_client(void)
{
	static const struct {
		const char *name;
		bool is_utf8;
		const char *expected;	/* NULL: refused */
	} rows[] = {
		{ "INBOX", false, "INBOX" },
		{ "inbox", false, "INBOX" },
		{ "Inbox/Sub", false, "INBOX/Sub" },
		{ "inboxes", false, "inboxes" },
		{ "Sent", false, "Sent" },
		{ "a/b", false, "a/b" },
		{ "B&AOQ-r", false, "B&AOQ-r" },
		{ "a&-b", false, "a&-b" },
		{ "&Jjo-!", false, "&Jjo-!" },
		/* bad mUTF-7 */
		{ "a&b", false, NULL },
		{ "&AGE-", false, NULL },	/* encodes ASCII 'a' */
		{ "&AOQ", false, NULL },	/* unterminated */
		{ "B\xc3\xa4r", false, NULL },	/* 8-bit without UTF8 */
		{ "a\tb", false, NULL },
		{ "&AAE-", false, NULL },	/* U+0001 */
		/* UTF8=ACCEPT (RFC 6855 3) */
		{ "B\xc3\xa4r", true, "B&AOQ-r" },
		{ "a&b", true, "a&-b" },
		{ "inbox/\xc3\xa4", true, "INBOX/&AOQ-" },
		{ "\xc3\x28", true, NULL },	/* invalid UTF-8 */
		{ "a\xc2\x85", true, NULL },	/* C1 control */
		{ "a\x7f", true, NULL },
		/* RFC 6855 3: no U+2028 / U+2029, either spelling */
		{ "a\xe2\x80\xa8""b", true, NULL },
		{ "a\xe2\x80\xa9""b", true, NULL },
		{ "a&ICg-b", false, NULL },
		{ "a&ICk-b", false, NULL },
		{ "a\xe2\x80\xaa""b", true, "a&ICo-b" },	/* U+202A ok */
		{ "\xf0\x9f\x98\x80", true, "&2D3eAA-" },	/* non-BMP */
		{ "&2D3eAA-", true, "&-2D3eAA-" },	/* taken as is */
		{ "\xed\xa0\x80", true, NULL },	/* a surrogate */
		{ "\xc0\xaf", true, NULL },		/* overlong */
		{ "\xe2\x82", true, NULL },		/* cut short */
		{ "INBOX", true, "INBOX" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *error = NULL;
		char *store = NULL;
		int ret = imap_mailbox_name_from_client(rows[i].name,
							strlen(rows[i].name),
							rows[i].is_utf8,
							&store, &error);

		if (rows[i].expected == NULL) {
			test_assert_idx(ret < 0 && error != NULL &&
					store == NULL, i);
		} else {
			test_assert_idx(ret == 0, i);
			test_assert_streq_idx(store, rows[i].expected, i);
		}
		free(store);
	}
	/* an embedded NUL; input bounded by len, not by a NUL */
	{
		const char *error;
		char *store;

		for (int u = 0; u < 2; u++) {
			test_assert(imap_mailbox_name_from_client(
				"inboxes", 5, u, &store, &error) == 0);
			test_assert_streq(store, "INBOX");
			free(store);
		}

		test_assert(imap_mailbox_name_from_client("a\0b", 3, false,
							  &store, &error) < 0);
		test_assert(imap_mailbox_name_from_client("a\0b", 3, true,
							  &store, &error) < 0);
	}
}

/* store name -> UTF-8 -> client spelling (both modes) -> store name. */
static void test_round_trip(void)
{
	static const struct {
		const char *store, *utf8, *wire, *wire_utf8;
	} rows[] = {
		{ "INBOX", "INBOX", "INBOX", "INBOX" },
		{ "Sent", "Sent", "Sent", "Sent" },
		{ "B&AOQ-r", "B\xc3\xa4r", "B&AOQ-r", "\"B\xc3\xa4r\"" },
		{ "a&-b", "a&b", "a&-b", "a&b" },
		{ "a b", "a b", "\"a b\"", "\"a b\"" },
		{ "&ZeVnLIqe-", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		  "&ZeVnLIqe-", "\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"" },
		{ "&2D3eAA-", "\xf0\x9f\x98\x80", "&2D3eAA-",
		  "\"\xf0\x9f\x98\x80\"" },
		{ "x/&AOQ-/y", "x/\xc3\xa4/y", "x/&AOQ-/y",
		  "\"x/\xc3\xa4/y\"" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct evbuffer *out = evbuffer_new();
		const char *error;
		char *utf8 = NULL, *back = NULL, *wire;
		size_t len;

		test_assert_idx(imap_mailbox_name_to_utf8(rows[i].store,
							  &utf8) == 0, i);
		test_assert_streq_idx(utf8, rows[i].utf8, i);
		test_assert_idx(imap_mailbox_name_from_client(
			utf8, strlen(utf8), true, &back, &error) == 0, i);
		test_assert_streq_idx(back, rows[i].store, i);
		free(back);
		test_assert_idx(imap_mailbox_name_append(out, rows[i].store,
							 0) == 0, i);
		len = evbuffer_get_length(out);
		wire = (char *)evbuffer_pullup(out, -1);
		test_assert_idx(len == strlen(rows[i].wire) &&
				memcmp(wire, rows[i].wire, len) == 0, i);
		evbuffer_drain(out, len);
		test_assert_idx(imap_mailbox_name_append(out, rows[i].store,
							 IMAP_QUOTE_UTF8) ==
				0, i);
		len = evbuffer_get_length(out);
		wire = (char *)evbuffer_pullup(out, -1);
		test_assert_idx(len == strlen(rows[i].wire_utf8) &&
				memcmp(wire, rows[i].wire_utf8, len) == 0, i);
		free(utf8);
		evbuffer_free(out);
	}
	/* a folder name that is not valid mUTF-7 can't be shown */
	{
		struct evbuffer *out = evbuffer_new();
		char *utf8;

		test_assert(imap_mailbox_name_to_utf8("a&b", &utf8) < 0);
		test_assert(imap_mailbox_name_append(out, "a&b", 0) < 0);
		test_assert(evbuffer_get_length(out) == 0);
		evbuffer_free(out);
	}
}

static void test_helpers(void)
{
	static const struct {
		const char *name, *parent;
		size_t inbox_len;
	} rows[] = {
		{ "a", NULL, 0 },
		{ "a/b", "a", 0 },
		{ "a/b/c", "a/b", 0 },
		{ "INBOX", NULL, 5 },
		{ "inbox/x", "inbox", 5 },
		{ "INBOXx", NULL, 0 },
		{ "/x", NULL, 0 },
	};
	char *p;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		p = imap_mailbox_name_parent(rows[i].name);
		if (rows[i].parent == NULL)
			test_assert_idx(p == NULL, i);
		else
			test_assert_streq_idx(p, rows[i].parent, i);
		free(p);
		test_assert_idx(imap_mailbox_name_inbox_len(rows[i].name) ==
				rows[i].inbox_len, i);
	}
	test_assert(imap_mailbox_name_is_inbox("iNbOx"));
	test_assert(!imap_mailbox_name_is_inbox("INBOX/a"));
	p = imap_mailbox_ref_root("", 0);
	test_assert_streq(p, "");
	free(p);
	p = imap_mailbox_ref_root("foo/bar", 7);
	test_assert_streq(p, "foo/");
	free(p);
	p = imap_mailbox_ref_root("foo", 3);
	test_assert_streq(p, "foo");
	free(p);
	test_assert_streq(imap_mailbox_special_use("Trash"), "\\Trash");
	test_assert_streq(imap_mailbox_special_use("Drafts"), "\\Drafts");
	test_assert_streq(imap_mailbox_special_use("Archive"), "\\Archive");
	test_assert(imap_mailbox_special_use("trash") == NULL);
	test_assert(imap_mailbox_special_use("a/Trash") == NULL);
}

int main(void)
{
	test_run("pattern_match", test_pattern_match);
	test_run("pattern_make", test_pattern_make);
	test_run("pattern_too_long", test_pattern_too_long);
	test_run("from_client", test_from_client);
	test_run("round_trip", test_round_trip);
	test_run("helpers", test_helpers);
	return test_done("imap_mailbox_name");
}
