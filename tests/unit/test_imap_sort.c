/* test_imap_sort.c: RFC 5256 base subject extraction (2.1), the
 * i;unicode-casemap key, address keys, the sent date (2.2), sort program
 * parsing and the comparison with its sequence-number tie-break. */
#include "imap/imap_sort.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

static const struct {
	const char *raw;
	const char *base;
	bool is_reply;
} subject_rows[] = {
	{ "", "", false },
	{ "Hello", "Hello", false },
	{ "Re: Hello", "Hello", true },
	{ "RE: Hello", "Hello", true },
	{ "re:Hello", "Hello", true },
	{ "Re: Re: Re: Hello", "Hello", true },
	{ "Re[2]: Hello", "Hello", true },
	{ "Re [2]: Hello", "Hello", true },
	{ "Fw: Hello", "Hello", true },
	{ "FWD: Hello", "Hello", true },
	{ "Fwd : Hello", "Hello", true },
	{ "[list] Re: Hello", "Hello", true },
	{ "[list] Hello", "Hello", false },
	{ "[a][b] Re: [c] Hello", "Hello", true },
	{ "[only blob]", "[only blob]", false },
	{ "[a] [b]", "[b]", false },
	{ "Re: [only blob]", "[only blob]", true },
	{ "Hello (fwd)", "Hello", true },
	{ "Hello (FWD) (fwd)  ", "Hello", true },
	{ "[Fwd: Hello]", "Hello", true },
	{ "[fwd: Re: Hello (fwd)]", "Hello", true },
	{ "[Fwd: [fwd: Hello]]", "Hello", true },
	{ "  \t Hello   world \t", "Hello world", false },
	{ "Hello\r\n world", "Hello world", false },
	{ "Reply to this", "Reply to this", false },
	{ "Re Hello", "Re Hello", false },
	{ "Re: ", "", true },
	{ "Fwd:", "", true },
	{ "Reminder: x", "Reminder: x", false },
	{ "[unterminated Hello", "[unterminated Hello", false },
	{ "=?UTF-8?Q?Re=3A_Caf=C3=A9?=", "Caf\xc3\xa9", true },
	{ "Re: =?ISO-8859-1?Q?Caf=E9?= (fwd)", "Caf\xc3\xa9", true },
	{ "=?UTF-8?B?W2xpc3RdIEjDqWxsbw==?=", "H\xc3\xa9llo", false },
	{ "Re: =?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab", true },
};

static void test_base_subject(void)
{
	for (size_t i = 0; i < sizeof(subject_rows) / sizeof(subject_rows[0]);
	     i++) {
		char *base;
		bool is_reply = imap_sort_base_subject(subject_rows[i].raw,
			strlen(subject_rows[i].raw), &base);

		test_assert_streq_idx(base, subject_rows[i].base, (int)i);
		test_assert_idx(is_reply == subject_rows[i].is_reply, (int)i);
		free(base);
	}
}

/* Strings with equal keys (casemap equivalence). */
static const struct {
	const char *a, *b;
	bool is_equal;
} casemap_rows[] = {
	{ "hello", "HELLO", true },
	{ "Hello", "hELLO", true },
	{ "caf\xc3\xa9", "CAF\xc3\x89", true },
	{ "caf\xc3\xa9", "cafe\xcc\x81", true },	/* NFKD */
	{ "stra\xc3\x9f" "e", "STRASSE", false },	/* no full folding */
	{ "a", "b", false },
	{ "\xff", "\xef\xbf\xbd", true },		/* invalid -> U+FFFD */
	{ "abc\xc3", "abc\xef\xbf\xbd", true },
};

static void test_casemap(void)
{
	for (size_t i = 0; i < sizeof(casemap_rows) / sizeof(casemap_rows[0]);
	     i++) {
		char *a = imap_sort_casemap(casemap_rows[i].a,
					    strlen(casemap_rows[i].a));
		char *b = imap_sort_casemap(casemap_rows[i].b,
					    strlen(casemap_rows[i].b));

		test_assert_idx((strcmp(a, b) == 0) ==
				casemap_rows[i].is_equal, (int)i);
		free(a);
		free(b);
	}
	/* the key is bounded */
	char *big = malloc(4000), *key;

	memset(big, 'a', 4000);
	key = imap_sort_casemap(big, 4000);
	test_assert(strlen(key) == IMAP_SORT_KEY_MAX);
	free(key);
	/* a cut never splits a character */
	for (size_t i = 0; i + 1 < 4000; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	key = imap_sort_casemap(big, 4000);
	test_assert(strlen(key) <= IMAP_SORT_KEY_MAX);
	free(key);
	free(big);
}

static const struct {
	const char *raw;
	bool is_display;
	const char *key;	/* compared after casemap */
} addr_rows[] = {
	{ "Alice <alice@example.com>", false, "alice" },
	{ "alice@example.com, bob@example.com", false, "alice" },
	{ "\"Zed\" <ZED@x>", false, "zed" },
	{ "undisclosed-recipients:;", false, "undisclosed-recipients" },
	{ "", false, "" },
	{ "Alice <alice@example.com>", true, "alice" },
	{ "bob@example.com", true, "bob@example.com" },
	{ "=?UTF-8?Q?J=C3=B6rg?= <j@x>", true, "J\xc3\xb6rg" },
};

static void test_addr(void)
{
	char *k, *want;

	for (size_t i = 0; i < sizeof(addr_rows) / sizeof(addr_rows[0]);
	     i++) {
		k = imap_sort_addr_key(addr_rows[i].raw,
				       strlen(addr_rows[i].raw),
				       addr_rows[i].is_display);
		want = imap_sort_casemap(addr_rows[i].key,
					 strlen(addr_rows[i].key));
		test_assert_streq_idx(k, want, (int)i);
		free(k);
		free(want);
	}
	k = imap_sort_addr_key(NULL, 0, false);
	test_assert_streq(k, "");
	free(k);
}

static void test_sent_date(void)
{
	const char *d = "Sun, 31 Dec 2000 16:01:33 -0800";

	/* RFC 5256 2.2: normalized to UTC */
	test_assert(imap_sort_sent_date(d, strlen(d), 5) == 978307293);
	test_assert(imap_sort_sent_date("garbage", 7, 5) == 5);
	test_assert(imap_sort_sent_date(NULL, 0, 7) == 7);
}

static const struct {
	const char *words[6];
	int ok;
} prog_rows[] = {
	{ { "SUBJECT" }, 0 },
	{ { "REVERSE", "DATE", "SIZE" }, 0 },
	{ { "ARRIVAL", "CC", "FROM", "TO", "DISPLAYFROM", "DISPLAYTO" }, 0 },
	{ { "REVERSE" }, -1 },
	{ { "REVERSE", "REVERSE", "DATE" }, -1 },
	{ { "BOGUS" }, -1 },
	{ { NULL }, -1 },
};

static void test_program(void)
{
	for (size_t i = 0; i < sizeof(prog_rows) / sizeof(prog_rows[0]);
	     i++) {
		struct imap_arg args[6];
		struct imap_sort_program prog;
		const char *error;
		size_t n = 0;

		memset(args, 0, sizeof(args));
		for (; n < 6 && prog_rows[i].words[n] != NULL; n++) {
			args[n].type = IMAP_ARG_ATOM;
			args[n].str = (char *)prog_rows[i].words[n];
			args[n].len = strlen(prog_rows[i].words[n]);
		}
		test_assert_idx(imap_sort_program_parse(args, n, &prog,
							&error) ==
				prog_rows[i].ok, (int)i);
	}
}

/* Items: subject, date header, size; sorted by a program. */
struct sort_row {
	const char *subject, *date;
	uint64_t size;
};

static const struct sort_row sort_msgs[] = {
	/* seq 1.. */
	{ "Re: b", "1 Jan 2001 00:00:00 +0000", 30 },
	{ "a", "1 Jan 2001 00:00:00 +0000", 10 },
	{ "B", NULL, 20 },
	{ "[x] A", "31 Dec 2000 23:00:00 -0200", 10 },
	{ NULL, "1 Jan 2000 00:00:00 +0000", 40 },
};

static const struct {
	const char *words[4];
	uint32_t order[5];
} order_rows[] = {
	{ { "SUBJECT" }, { 5, 2, 4, 1, 3 } },
	{ { "REVERSE", "SUBJECT" }, { 1, 3, 2, 4, 5 } },
	{ { "SIZE" }, { 2, 4, 3, 1, 5 } },
	{ { "REVERSE", "SIZE" }, { 5, 1, 3, 2, 4 } },
	/* internal date of seq 3 is 0: no Date: falls back to it */
	{ { "DATE" }, { 3, 5, 1, 2, 4 } },
	{ { "SUBJECT", "REVERSE", "DATE" }, { 5, 4, 2, 1, 3 } },
	{ { "ARRIVAL" }, { 3, 1, 2, 4, 5 } },
	{ { "REVERSE", "ARRIVAL" }, { 5, 4, 2, 1, 3 } },
};

static void test_sort(void)
{
	for (size_t r = 0; r < sizeof(order_rows) / sizeof(order_rows[0]);
	     r++) {
		struct imap_sort_item items[5];
		struct imap_sort_program prog;
		struct imap_arg args[4];
		const char *error;
		size_t n = 0;

		memset(args, 0, sizeof(args));
		for (; n < 4 && order_rows[r].words[n] != NULL; n++) {
			args[n].type = IMAP_ARG_ATOM;
			args[n].str = (char *)order_rows[r].words[n];
		}
		test_assert_idx(imap_sort_program_parse(args, n, &prog,
							&error) == 0,
				(int)r);
		for (uint32_t i = 0; i < 5; i++) {
			struct imap_sort_header h;

			memset(&h, 0, sizeof(h));
			h.subject = sort_msgs[i].subject;
			h.subject_len = h.subject ? strlen(h.subject) : 0;
			h.date = sort_msgs[i].date;
			h.date_len = h.date ? strlen(h.date) : 0;
			imap_sort_item_fill(&items[i], &prog, &h, i + 1,
					    i == 2 ? 0 : 1000 + (time_t)i * 100,
					    sort_msgs[i].size);
		}
		/* seq 3's internal date 0 sorts first by DATE */
		imap_sort_items(items, 5, &prog);
		for (uint32_t i = 0; i < 5; i++) {
			test_assert_idx(items[i].seq ==
					order_rows[r].order[i], (int)r);
			imap_sort_item_free(&items[i]);
		}
	}
}

int main(void)
{
	test_run("base_subject", test_base_subject);
	test_run("casemap", test_casemap);
	test_run("addr", test_addr);
	test_run("sent_date", test_sent_date);
	test_run("program", test_program);
	test_run("sort", test_sort);
	return test_done("imap_sort");
}
