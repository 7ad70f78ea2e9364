/* test_imap_util.c: IMAP syntax helpers: string output (imap_quote),
 * sequence sets, modified UTF-7 and dates. Table-driven. */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_date.h"
#include "imap/imap_quote.h"
#include "imap/imap_seqset.h"
#include "imap/imap_utf7.h"
#include "test.h"

/* ---- imap_quote ---- */

enum qfunc { Q_STRING, Q_NSTRING, Q_ASTRING, Q_QUOTED, Q_MAILBOX };

static const struct {
	enum qfunc fn;
	const char *in;		/* NULL: NIL */
	unsigned flags;
	const char *out;
} quote_rows[] = {
	{ Q_STRING, "abc", 0, "\"abc\"" },
	{ Q_STRING, "a\"b\\c", 0, "\"a\\\"b\\\\c\"" },
	{ Q_STRING, "a\r\nb", 0, "{4}\r\na\r\nb" },
	{ Q_STRING, "caf\xc3\xa9", 0, "{5}\r\ncaf\xc3\xa9" },
	{ Q_STRING, "caf\xc3\xa9", IMAP_QUOTE_UTF8, "\"caf\xc3\xa9\"" },
	/* 5 */
	{ Q_STRING, "bad\xc3", IMAP_QUOTE_UTF8, "{4}\r\nbad\xc3" },
	{ Q_STRING, "", 0, "\"\"" },
	{ Q_NSTRING, NULL, 0, "NIL" },
	{ Q_NSTRING, "NIL", 0, "\"NIL\"" },
	{ Q_ASTRING, "INBOX", 0, "INBOX" },
	/* 10 */
	{ Q_ASTRING, "a]b", 0, "a]b" },
	{ Q_ASTRING, "nil", 0, "\"nil\"" },
	{ Q_ASTRING, "a b", 0, "\"a b\"" },
	{ Q_ASTRING, "a%", 0, "\"a%\"" },
	{ Q_ASTRING, "", 0, "\"\"" },
	/* 15 */
	{ Q_QUOTED, "x\ny", 0, "{3}\r\nx\ny" },
	{ Q_MAILBOX, "inbox", 0, "INBOX" },
	{ Q_MAILBOX, "Entw\xc3\xbcrfe", 0, "Entw&APw-rfe" },
	{ Q_MAILBOX, "Entw\xc3\xbcrfe", IMAP_QUOTE_UTF8,
	  "\"Entw\xc3\xbcrfe\"" },
	{ Q_MAILBOX, "A & B", 0, "\"A &- B\"" },
	/* 20 */
	{ Q_MAILBOX, "Sent", 0, "Sent" },
};

static void test_quote(void)
{
	struct evbuffer *out = evbuffer_new();
	char buf[256];
	size_t i, n, len;

	for (i = 0; i < sizeof(quote_rows) / sizeof(quote_rows[0]); i++) {
		const char *in = quote_rows[i].in;
		unsigned fl = quote_rows[i].flags;

		len = in != NULL ? strlen(in) : 0;
		switch (quote_rows[i].fn) {
		case Q_STRING:
			imap_append_string(out, in, len, fl);
			break;
		case Q_NSTRING:
			imap_append_nstring(out, in, len, fl);
			break;
		case Q_ASTRING:
			imap_append_astring(out, in, len, fl);
			break;
		case Q_QUOTED:
			imap_append_quoted(out, in, len, fl);
			break;
		case Q_MAILBOX:
			test_assert_idx(imap_append_mailbox(out, in, len, fl)
					== 0, (int)i);
			break;
		}
		n = evbuffer_remove(out, buf, sizeof(buf) - 1);
		buf[n] = '\0';
		test_assert_streq_idx(buf, quote_rows[i].out, (int)i);
	}
	test_assert(imap_append_mailbox(out, "\xff", 1, 0) < 0);
	test_assert(evbuffer_get_length(out) == 0);
	/* long strings become literals */
	memset(buf, 'x', sizeof(buf));
	{
		char *big = malloc(IMAP_QUOTE_MAX_LEN + 1);

		memset(big, 'x', IMAP_QUOTE_MAX_LEN + 1);
		imap_append_string(out, big, IMAP_QUOTE_MAX_LEN + 1, 0);
		n = evbuffer_remove(out, buf, 7);
		buf[n] = '\0';
		test_assert_streq(buf, "{1025}\r");
		free(big);
	}
	evbuffer_free(out);
}

/* ---- imap_seqset ---- */

static const struct {
	const char *in;
	uint32_t star;
	int ret;
	const char *ranges;	/* "a-b,c-d" */
	bool has_star, is_searchres;
} seq_rows[] = {
	{ "1", 10, 0, "1-1", false, false },
	{ "1,3:5,7:*", 10, 0, "1-1,3-5,7-10", true, false },
	{ "5:3", 10, 0, "3-5", false, false },
	{ "*:4", 10, 0, "4-10", true, false },
	{ "4,2,3,1,9:8", 10, 0, "1-4,8-9", false, false },
	/* 5 */
	{ "1:5,3:8,10,11", 100, 0, "1-8,10-11", false, false },
	{ "*", 0, 0, "", true, false },
	{ "1:*", 0, 0, "", true, false },
	{ "559:*", 500, 0, "500-559", true, false },
	{ "$", 10, 0, "", false, true },
	/* 10 */
	{ "4294967295", 1, 0, "4294967295-4294967295", false, false },
	{ "1:4294967295,4294967295", 1, 0, "1-4294967295", false, false },
	{ "4294967296", 1, -1, NULL, false, false },
	{ "99999999999999999999999", 1, -1, NULL, false, false },
	{ "0", 10, -1, NULL, false, false },
	/* 15 */
	{ "1:0", 10, -1, NULL, false, false },
	{ "01", 10, -1, NULL, false, false },
	{ "", 10, -1, NULL, false, false },
	{ "1,", 10, -1, NULL, false, false },
	{ ",1", 10, -1, NULL, false, false },
	/* 20 */
	{ "1::2", 10, -1, NULL, false, false },
	{ "1:2:3", 10, -1, NULL, false, false },
	{ "$,1", 10, -1, NULL, false, false },
	{ "1 2", 10, -1, NULL, false, false },
	{ "-1", 10, -1, NULL, false, false },
	/* 25 */
	{ "**", 10, -1, NULL, false, false },
};

static void seq_format(const struct imap_seqset *set, char *buf, size_t size)
{
	size_t i, o = 0;

	buf[0] = '\0';
	for (i = 0; i < set->count && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%u-%u",
				      i > 0 ? "," : "",
				      set->ranges[i].first,
				      set->ranges[i].last);
}

static void test_seqset(void)
{
	struct imap_seqset set;
	const char *error;
	bool searchres;
	char buf[128];
	size_t i;
	int ret;

	for (i = 0; i < sizeof(seq_rows) / sizeof(seq_rows[0]); i++) {
		ret = imap_seqset_parse(seq_rows[i].in,
					strlen(seq_rows[i].in),
					seq_rows[i].star, &set, &searchres,
					&error);
		test_assert_idx(ret == seq_rows[i].ret, (int)i);
		if (ret < 0 || seq_rows[i].ret < 0)
			continue;
		seq_format(&set, buf, sizeof(buf));
		test_assert_streq_idx(buf, seq_rows[i].ranges, (int)i);
		test_assert_idx(set.has_star == seq_rows[i].has_star, (int)i);
		test_assert_idx(searchres == seq_rows[i].is_searchres,
				(int)i);
		imap_seqset_free(&set);
	}
}

static void test_seqset_lookup(void)
{
	struct imap_seqset set;
	struct imap_seqset_iter it;
	const char *error;
	bool searchres;
	uint32_t n, got[16];
	size_t count = 0;

	test_assert(imap_seqset_parse("2:4,9,20:21,4294967295", 22, 0, &set,
				      &searchres, &error) == 0);
	test_assert(!imap_seqset_contains(&set, 1));
	test_assert(imap_seqset_contains(&set, 2));
	test_assert(imap_seqset_contains(&set, 4));
	test_assert(!imap_seqset_contains(&set, 5));
	test_assert(imap_seqset_contains(&set, 9));
	test_assert(!imap_seqset_contains(&set, 19));
	test_assert(imap_seqset_contains(&set, 21));
	test_assert(imap_seqset_contains(&set, 4294967295u));
	test_assert(!imap_seqset_contains(&set, 0));
	test_assert(imap_seqset_count(&set) == 7);
	test_assert(imap_seqset_max(&set) == 4294967295u);
	for (imap_seqset_iter_init(&it);
	     imap_seqset_iter_next(&set, &it, &n) && count < 16;)
		got[count++] = n;
	test_assert(count == 7 && got[0] == 2 && got[2] == 4 &&
		    got[3] == 9 && got[5] == 21 && got[6] == 4294967295u);
	imap_seqset_free(&set);
	test_assert(imap_seqset_parse("1:4294967295", 12, 5, &set,
				      &searchres, &error) == 0);
	test_assert(imap_seqset_count(&set) == 4294967295u);
	imap_seqset_free(&set);
}

/* ---- imap_utf7 ---- */

static const struct {
	const char *utf8;
	const char *mutf7;
} utf7_rows[] = {
	{ "INBOX", "INBOX" },
	{ "&", "&-" },
	{ "A&B", "A&-B" },
	{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
	  "\xe8\xaa\x9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
	/* 5 */
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },
	{ "a\x01z", "a&AAE-z" },
	{ "\xc3\xa9\xc3\xa9\xc3\xa9", "&AOkA6QDp-" },
	{ "", "" },
	{ "\xe2\x82\xac&", "&IKw-&-" },
};

static const char *const utf7_bad_decode[] = {
	"&", "&AOk", "&AOk-&AOk-", "&Jjo!-", "&AGE-", "&AAA-", "&2D3-",
	"&3gA-", "&2D0AYQ-", "&AOl-", "&AOkA-", "\x7f", "\xc3\xa9", "a\tb",
	"&-&", "&=-", "&A-",
};

static const char *const utf7_bad_encode[] = {
	"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3",
	"\xe2\x82",
};

static void test_utf7(void)
{
	char *out;
	size_t i;

	for (i = 0; i < sizeof(utf7_rows) / sizeof(utf7_rows[0]); i++) {
		test_assert_idx(imap_utf7_encode(utf7_rows[i].utf8,
						 strlen(utf7_rows[i].utf8),
						 &out) == 0, (int)i);
		test_assert_streq_idx(out, utf7_rows[i].mutf7, (int)i);
		free(out);
		test_assert_idx(imap_utf7_decode(utf7_rows[i].mutf7,
						 strlen(utf7_rows[i].mutf7),
						 &out) == 0, (int)i);
		test_assert_streq_idx(out, utf7_rows[i].utf8, (int)i);
		free(out);
	}
	for (i = 0; i < sizeof(utf7_bad_decode) / sizeof(utf7_bad_decode[0]);
	     i++)
		test_assert_idx(!imap_utf7_is_valid(utf7_bad_decode[i],
					strlen(utf7_bad_decode[i])), (int)i);
	for (i = 0; i < sizeof(utf7_bad_encode) / sizeof(utf7_bad_encode[0]);
	     i++)
		test_assert_idx(imap_utf7_encode(utf7_bad_encode[i],
					strlen(utf7_bad_encode[i]), &out) < 0,
				(int)i);
	test_assert(imap_utf7_encode("a\0b", 3, &out) < 0);
	test_assert(imap_utf7_decode("a\0b", 3, &out) < 0);
}

/* ---- imap_date ---- */

static const struct {
	const char *in;
	int ret;
	long long t;
} date_rows[] = {
	{ "1-Feb-1994", 0, 760060800 },
	{ "01-feb-1994", 0, 760060800 },
	{ "1-Jan-1970", 0, 0 },
	{ "29-Feb-2000", 0, 951782400 },
	{ "29-Feb-1900", -1, 0 },
	/* 5 */
	{ "31-Apr-2020", -1, 0 },
	{ "0-Jan-2020", -1, 0 },
	{ "1-Foo-2020", -1, 0 },
	{ "1-Feb-94", -1, 0 },
	{ "1-Feb-1994 ", -1, 0 },
	/* 10 */
	{ "123-Feb-1994", -1, 0 },
	{ "", -1, 0 },
	{ "31-Dec-1969", 0, -86400 },
};

static const struct {
	const char *in;
	int ret;
	long long t;
	int tz;
	const char *formatted;
} datetime_rows[] = {
	{ "17-Jul-1996 02:44:25 -0700", 0, 837596665, -420,
	  "17-Jul-1996 02:44:25 -0700" },
	{ " 7-Jul-1996 02:44:25 +0000", 0, 836707465, 0,
	  " 7-Jul-1996 02:44:25 +0000" },
	{ "07-Jul-1996 02:44:25 +0130", 0, 836702065, 90,
	  " 7-Jul-1996 02:44:25 +0130" },
	{ "1-Jan-1970 00:00:00 +0000", 0, 0, 0,
	  " 1-Jan-1970 00:00:00 +0000" },
	{ "31-Dec-1999 23:59:59 -2359", 0, 946771139, -1439,
	  "31-Dec-1999 23:59:59 -2359" },
	/* 5 */
	{ "17-Jul-1996 24:00:00 +0000", -1, 0, 0, NULL },
	{ "17-Jul-1996 02:60:00 +0000", -1, 0, 0, NULL },
	{ "17-Jul-1996 02:44:25 0700", -1, 0, 0, NULL },
	{ "17-Jul-1996 02:44:25 -07", -1, 0, 0, NULL },
	{ "17-Jul-1996 2:44:25 -0700", -1, 0, 0, NULL },
	/* 10 */
	{ "17-Jul-1996  02:44:25 -0700", -1, 0, 0, NULL },
	{ "17-Jul-1996 02:44:25 -0760", -1, 0, 0, NULL },
	{ "17-Jul-1996", -1, 0, 0, NULL },
};

static void test_date(void)
{
	char buf[IMAP_DATETIME_MAX];
	time_t t;
	size_t i;
	int tz;

	for (i = 0; i < sizeof(date_rows) / sizeof(date_rows[0]); i++) {
		t = 12345;
		test_assert_idx(imap_date_parse(date_rows[i].in,
						strlen(date_rows[i].in),
						&t) == date_rows[i].ret,
				(int)i);
		if (date_rows[i].ret == 0)
			test_assert_idx((long long)t == date_rows[i].t,
					(int)i);
	}
	for (i = 0; i < sizeof(datetime_rows) / sizeof(datetime_rows[0]);
	     i++) {
		test_assert_idx(imap_datetime_parse(datetime_rows[i].in,
				strlen(datetime_rows[i].in), &t, &tz) ==
				datetime_rows[i].ret, (int)i);
		if (datetime_rows[i].ret < 0)
			continue;
		test_assert_idx((long long)t == datetime_rows[i].t, (int)i);
		test_assert_idx(tz == datetime_rows[i].tz, (int)i);
		imap_datetime_format(t, tz, buf);
		test_assert_streq_idx(buf, datetime_rows[i].formatted,
				      (int)i);
	}
	/* absurd times are clamped, never overflow */
	test_assert(imap_datetime_format((time_t)INT64_MAX, 0, buf) == 26);
	test_assert(imap_datetime_format((time_t)INT64_MIN, -600, buf) == 26);
	test_assert(imap_datetime_format(0, 100000, buf) == 26);
}

static void test_seqset_format(void)
{
	static const uint32_t a[] = { 1, 2, 3, 7, 9, 10 };
	static const uint32_t f[] = { 1, 0, 1, 1, 1, 1 };
	static const uint32_t b[] = { 5, 4, 3 };
	char *s;

	s = imap_seqset_format(a, NULL, 6);
	test_assert_streq(s, "1:3,7,9:10");
	free(s);
	s = imap_seqset_format(a, f, 6);
	test_assert_streq(s, "1,3,7,9:10");
	free(s);
	s = imap_seqset_format(b, NULL, 3);
	test_assert_streq(s, "5,4,3");
	free(s);
	s = imap_seqset_format(a, NULL, 0);
	test_assert_streq(s, "");
	free(s);
}

int main(void)
{
	test_run("quote", test_quote);
	test_run("seqset format", test_seqset_format);
	test_run("seqset", test_seqset);
	test_run("seqset lookup", test_seqset_lookup);
	test_run("utf7", test_utf7);
	test_run("date", test_date);
	return test_done("imap_util");
}
