/* test_imap_search.c: SEARCH program parsing (every key, nesting, OR/NOT,
 * sets, bad syntax, CHARSET) and evaluation against small in-memory
 * messages (flags, dates, RFC 2047 headers, addresses, base64 / QP /
 * ISO-8859-1 bodies, multipart). */
#include "test.h"

#include <stdlib.h>
#include <sys/types.h>

#include "imap/imap_parser.h"
#include "imap/imap_search.h"

#define N_MSGS 6

static const char *const msg_text[N_MSGS] = {
	/* 0: plain ASCII */
	"From: \"John Doe\" <john@example.com>\n"
	"To: alice@example.org\n"
	"Subject: Hello World\n"
	"Date: Mon, 1 Jan 2024 23:30:00 -0500\n"
	"\n"
	"The quick brown fox jumps over the lazy dog.\n",
	/* 1: RFC 2047 header, QP UTF-8 body with a soft break */
	"From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>\n"
	"To: Bob <bob@example.net>,\n"
	" Carol <carol@example.net>\n"
	"Cc: dave@example.com\n"
	"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_M=FCnchen?=\n"
	"Date: 15 Feb 2024 10:00:00 +0100\n"
	"MIME-Version: 1.0\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e, Haupt=\n"
	"stra=C3=9Fe 5\n",
	/* 2: base64 ISO-8859-1 body */
	"From: latin@example.com\n"
	"Subject: Masse\n"
	"Content-Type: text/plain; charset=\"iso-8859-1\"\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"R3L232UgdW5kIE1h3wo=\n",
	/* 3: multipart: text, binary attachment, HTML in QP */
	"From: multi@example.com\n"
	"Bcc: secret-bcc@example.com\n"
	"Subject: parts\n"
	"Content-Type: multipart/mixed; boundary=\"XX\"\n"
	"\n"
	"preamble words\n"
	"--XX\n"
	"Content-Type: text/plain\n"
	"\n"
	"first part secret\n"
	"--XX\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"aGlkZGVuIHRyZWFzdXJl\n"
	"--XX\n"
	"Content-Type: text/html; charset=us-ascii\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"<b>Bold=20Text</b>\n"
	"--XX--\n",
	/* 4: Greek, custom header, no Date */
	"From: greek@example.gr\n"
	"X-Custom: Some Value\n"
	"Subject: \xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5"
	"\xce\xa3\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"\n"
	"\xe1\xbd\x88\xce\xb4\xcf\x85\xcf\x83\xcf\x83\xce\xb5\xcf\x8d\xcf\x82"
	" and \xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3"
	"\n",
	/* 5: no header block end, CRLF line ends */
	"Subject: crlf message\r\n"
	"To: Undisclosed recipients:;\r\n"
	"\r\n"
	"line one\r\nline two\r\n",
};

static struct store_msg msgs[N_MSGS];

static void msgs_init(void)
{
	static const uint32_t flags[N_MSGS] = {
		STORE_FLAG_SEEN,
		STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED,
		STORE_FLAG_DELETED | STORE_FLAG_SEEN,
		STORE_FLAG_DRAFT,
		0,
		STORE_FLAG_SEEN,
	};

	for (int i = 0; i < N_MSGS; i++) {
		msgs[i].uid = (uint32_t)(i + 1) * 10;
		msgs[i].flags = flags[i];
		msgs[i].keywords = i == 4 ? 1 : (i == 0 ? 2 : 0);
		msgs[i].size = strlen(msg_text[i]);
		msgs[i].vsize = (uint64_t)(i + 1) * 100;
		/* 2024-01-0(i+1) 12:00 UTC */
		msgs[i].internal_date = 1704110400 + (time_t)i * 86400;
		msgs[i].modseq = (uint64_t)i + 1;
	}
}

static int kw_index(void *ctx, const char *name, unsigned *idx_r)
{
	if (strcasecmp(name, "$Work") == 0) {
		*idx_r = 0;
		return 0;
	}
	if (strcasecmp(name, "Later") == 0) {
		*idx_r = 1;
		return 0;
	}
	return -1;
}

static const uint32_t saved[] = { 20, 40 };

static int parse(const char *keys, struct imap_search_program **prog_r,
		 const char **error_r)
{
	struct imap_parser_settings set;
	struct imap_parser *parser;
	struct imap_search_env env = {
		N_MSGS, N_MSGS * 10, saved, 2, kw_index, NULL,
		1704110400 + 10 * 86400, };
	char *line = NULL;
	size_t used;
	int ret;

	imap_parser_settings_default(&set, true);
	set.utf8 = true;
	parser = imap_parser_create(&set);
	if (asprintf(&line, "t SEARCH %s\r\n", keys) < 0)
		abort();
	for (size_t pos = 0;; pos += used) {
		ret = imap_parser_feed(parser, line + pos, strlen(line + pos),
				       &used);
		if (ret != IMAP_PARSE_LITERAL)
			break;
		(void)imap_parser_literal_accept(parser, IMAP_LITERAL_MEMORY);
	}
	if (ret != IMAP_PARSE_DONE) {
		*error_r = "imap parse error";
		ret = IMAP_SEARCH_ERR_SYNTAX;
	} else {
		const struct imap_command *c = imap_parser_command(parser);

		ret = imap_search_parse(c->args, c->args_count, &env, prog_r,
					error_r);
	}
	imap_parser_destroy(&parser);
	free(line);
	return ret;
}

struct parse_case {
	const char *keys;
	int ret;
};

static const struct parse_case parse_cases[] = {
	{ "ALL", 0 }, { "ANSWERED", 0 }, { "BCC x", 0 },
	{ "BEFORE 1-Feb-1994", 0 }, { "BODY \"a b\"", 0 }, { "CC x", 0 },
	{ "DELETED", 0 }, { "DRAFT", 0 }, { "FLAGGED", 0 }, { "FROM x", 0 },
	{ "HEADER X-Foo bar", 0 }, { "HEADER \"X-Foo\" \"\"", 0 },
	{ "KEYWORD $Work", 0 }, { "KEYWORD nosuch", 0 }, { "LARGER 10", 0 },
	{ "NEW", 0 }, { "NOT SEEN", 0 }, { "OLD", 0 },
	{ "ON \"1-Feb-1994\"", 0 }, { "OR SEEN FLAGGED", 0 },
	{ "RECENT", 0 }, { "SEEN", 0 }, { "SENTBEFORE 1-Feb-1994", 0 },
	{ "SENTON 01-Feb-1994", 0 }, { "SENTSINCE 1-Feb-1994", 0 },
	{ "SINCE 1-Feb-1994", 0 }, { "SMALLER 5", 0 }, { "SUBJECT x", 0 },
	{ "TEXT x", 0 }, { "TO x", 0 }, { "UID 1:*", 0 }, { "UID $", 0 },
	{ "UNANSWERED", 0 }, { "UNDELETED", 0 }, { "UNDRAFT", 0 },
	{ "UNFLAGGED", 0 }, { "UNKEYWORD x", 0 }, { "UNSEEN", 0 },
	{ "1,3:*", 0 }, { "$", 0 }, { "*", 0 }, { "OLDER 60", 0 },
	{ "YOUNGER 60", 0 }, { "MODSEQ 5", 0 },
	{ "MODSEQ \"/flags/\\\\draft\" all 5", 0 },
	{ "seen unseen not deleted", 0 },
	{ "(SEEN FLAGGED) OR (DRAFT) NOT (1:2 UID 3)", 0 },
	{ "OR OR SEEN DRAFT NOT OR A B", IMAP_SEARCH_ERR_SYNTAX },
	{ "OR (OR SEEN DRAFT) (NOT (OR FROM a TO b))", 0 },
	{ "CHARSET UTF-8 SUBJECT x", 0 },
	{ "CHARSET us-ascii ALL", 0 },
	{ "CHARSET ISO-8859-1 BODY {4}\r\ncaf\xe9", 0 },
	{ "CHARSET KOI8-R TEXT x", 0 },
	{ "CHARSET X-NOSUCH-CHARSET ALL", IMAP_SEARCH_ERR_CHARSET },
	/* bad syntax */
	{ "", IMAP_SEARCH_ERR_SYNTAX },
	{ "FOO", IMAP_SEARCH_ERR_SYNTAX },
	{ "FROM", IMAP_SEARCH_ERR_SYNTAX },
	{ "HEADER X-Foo", IMAP_SEARCH_ERR_SYNTAX },
	{ "OR SEEN", IMAP_SEARCH_ERR_SYNTAX },
	{ "NOT", IMAP_SEARCH_ERR_SYNTAX },
	{ "()", IMAP_SEARCH_ERR_SYNTAX },
	{ "BEFORE 32-Jan-2020", IMAP_SEARCH_ERR_SYNTAX },
	{ "BEFORE 1-Foo-2020", IMAP_SEARCH_ERR_SYNTAX },
	{ "LARGER -1", IMAP_SEARCH_ERR_SYNTAX },
	{ "LARGER x", IMAP_SEARCH_ERR_SYNTAX },
	{ "SMALLER 99999999999999999999", IMAP_SEARCH_ERR_SYNTAX },
	{ "OLDER 0", IMAP_SEARCH_ERR_SYNTAX },
	{ "UID", IMAP_SEARCH_ERR_SYNTAX },
	{ "UID 1:x", IMAP_SEARCH_ERR_SYNTAX },
	{ "0", IMAP_SEARCH_ERR_SYNTAX },
	{ "1,,2", IMAP_SEARCH_ERR_SYNTAX },
	{ "MODSEQ", IMAP_SEARCH_ERR_SYNTAX },
	{ "MODSEQ \"/flags/x\" bogus 5", IMAP_SEARCH_ERR_SYNTAX },
	{ "KEYWORD (a)", IMAP_SEARCH_ERR_SYNTAX },
	{ "CHARSET", IMAP_SEARCH_ERR_SYNTAX },
	{ "SEEN CHARSET UTF-8", IMAP_SEARCH_ERR_SYNTAX },
	{ "BODY (x)", IMAP_SEARCH_ERR_SYNTAX },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]);
	     i++) {
		struct imap_search_program *prog = NULL;
		const char *error = NULL;
		int ret = parse(parse_cases[i].keys, &prog, &error);

		test_assert_idx(ret == parse_cases[i].ret, (int)i);
		if (ret != parse_cases[i].ret)
			printf("    keys=%s ret=%d error=%s\n",
			       parse_cases[i].keys, ret,
			       error != NULL ? error : "");
		test_assert_idx((ret == 0) == (prog != NULL), (int)i);
		imap_search_free(&prog);
	}
}

static void test_parse_depth(void)
{
	char *keys = malloc(5000);
	struct imap_search_program *prog = NULL;
	const char *error;
	size_t n = 0;

	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(keys + n, 5000 - n, "NOT ");
	snprintf(keys + n, 5000 - n, "SEEN");
	test_assert(parse(keys, &prog, &error) == IMAP_SEARCH_ERR_SYNTAX);
	test_assert(prog == NULL);
	free(keys);
}

/* ---- evaluation ---- */

struct mem_ctx {
	const char *data;
	size_t len;
};

static ssize_t mem_read(void *_ctx, uint64_t off, void *buf, size_t size)
{
	struct mem_ctx *ctx = _ctx;

	if (off >= ctx->len)
		return 0;
	if (size > ctx->len - off)
		size = ctx->len - (size_t)off;
	/* short reads exercise the chunking */
	if (size > 7)
		size = 7;
	memcpy(buf, ctx->data + off, size);
	return (ssize_t)size;
}

/* Bit i set: message i matches. */
static unsigned eval(struct imap_search_program *prog)
{
	unsigned mask = 0;

	for (int i = 0; i < N_MSGS; i++) {
		struct imap_search_msg m = { (uint32_t)i + 1, &msgs[i],
					     i == 4 };
		struct mem_ctx mc = { msg_text[i], strlen(msg_text[i]) };
		int r = imap_search_eval_cheap(prog, &m);

		if (r == IMAP_SEARCH_MAYBE)
			r = imap_search_eval_content(prog, &m, mem_read, &mc);
		if (r == IMAP_SEARCH_YES)
			mask |= 1u << i;
	}
	return mask;
}

struct eval_case {
	const char *keys;
	unsigned mask;
};

static const struct eval_case eval_cases[] = {
	{ "ALL", 0x3f },
	{ "SEEN", 0x25 }, { "UNSEEN", 0x1a }, { "ANSWERED", 0x02 },
	{ "UNANSWERED", 0x3d }, { "FLAGGED", 0x02 }, { "UNFLAGGED", 0x3d },
	{ "DELETED", 0x04 }, { "UNDELETED", 0x3b }, { "DRAFT", 0x08 },
	{ "UNDRAFT", 0x37 },
	{ "KEYWORD $Work", 0x10 }, { "KEYWORD $work", 0x10 },
	{ "KEYWORD Later", 0x01 }, { "UNKEYWORD $Work", 0x2f },
	{ "KEYWORD nosuch", 0 }, { "UNKEYWORD nosuch", 0x3f },
	{ "KEYWORD \\Seen", 0x25 },
	{ "RECENT", 0x10 }, { "NEW", 0x10 }, { "OLD", 0x2f },
	{ "LARGER 300", 0x38 }, { "SMALLER 300", 0x03 },
	{ "1:2", 0x03 }, { "2,4:*", 0x3a }, { "*", 0x20 }, { "$", 0x0a },
	{ "UID 20:30", 0x06 }, { "UID *", 0x20 }, { "UID $", 0x0a },
	{ "UID 15", 0 },
	/* internal dates are 1..6 Jan 2024 12:00 UTC */
	{ "BEFORE 3-Jan-2024", 0x03 }, { "ON 3-Jan-2024", 0x04 },
	{ "SINCE 3-Jan-2024", 0x3c },
	/* "now" is 11 Jan 12:00; msg i is 10-i days old */
	{ "OLDER 691200", 0x07 }, { "YOUNGER 691200", 0x38 },
	{ "MODSEQ 4", 0x38 },
	/* SENT*: msg 0 is 1 Jan in -0500 (2 Jan UTC); no Date: internal */
	{ "SENTON 1-Jan-2024", 0x01 }, { "SENTON 2-Jan-2024", 0 },
	{ "SENTBEFORE 2-Jan-2024", 0x01 },
	{ "SENTSINCE 15-Feb-2024", 0x02 },
	{ "SENTON 5-Jan-2024", 0x10 },
	/* headers */
	{ "FROM john", 0x01 }, { "FROM \"JOHN DOE\"", 0x01 },
	{ "FROM \"john doe <john@example.com>\"", 0x01 },
	{ "FROM example.com", 0x0d }, { "FROM \"j\xc3\xb6rg m\xc3\xbc\"",
					  0x02 },
	{ "TO carol", 0x02 }, { "TO \"bob <bob@\"", 0x02 },
	{ "TO alice", 0x01 }, { "CC dave", 0x02 }, { "BCC secret", 0x08 },
	{ "SUBJECT hello", 0x01 }, { "SUBJECT \"WORLD\"", 0x01 },
	{ "SUBJECT \"gr\xc3\xbc\xc3\x9f" "e aus m\xc3\xbcnchen\"", 0x02 },
	{ "SUBJECT \"GR\xc3\x9c\x53SE\"", 0x02 },
	{ "SUBJECT \"\xcf\x83\xcf\x83\xce\xb5\"", 0x10 },
	{ "HEADER X-Custom \"some val\"", 0x10 },
	{ "HEADER x-custom \"\"", 0x10 },
	{ "HEADER Content-Type multipart", 0x08 },
	{ "HEADER X-Missing \"\"", 0 },
	{ "SUBJECT crlf", 0x20 },
	/* bodies */
	{ "BODY \"lazy DOG\"", 0x01 },
	{ "BODY \"CAF\xc3\x89 CR\xc3\x88ME\"", 0x02 },
	{ "BODY hauptstrasse", 0x02 },
	{ "BODY \"gr\xc3\xb6\xc3\x9f" "e und ma\xc3\x9f\"", 0x04 },
	{ "BODY \"GR\xc3\x96SSE\"", 0x04 },
	{ "BODY \"secret\"", 0x08 }, { "BODY treasure", 0 },
	{ "BODY \"bold text\"", 0x08 }, { "BODY preamble", 0 },
	{ "BODY \"\xce\xbf\xce\xb4\xcf\x85\xcf\x83\xcf\x83\"", 0x10 },
	{ "BODY \"line one\"", 0x20 },
	{ "BODY hello", 0 }, { "TEXT hello", 0x01 },
	{ "TEXT \"subject: masse\"", 0x04 }, { "TEXT secret", 0x08 },
	{ "BODY \"\"", 0x3f },
	/* combinations */
	{ "OR SEEN FLAGGED", 0x27 }, { "NOT SEEN", 0x1a },
	{ "SEEN BODY fox", 0x01 }, { "UNSEEN BODY fox", 0 },
	{ "OR BODY fox SUBJECT parts", 0x09 },
	{ "NOT BODY fox", 0x3e },
	{ "(SEEN) (NOT DELETED) OR FROM john FROM latin", 0x01 },
	{ "OR (DRAFT BODY secret) (FROM greek NOT DELETED)", 0x18 },
	{ "BODY fox BODY lazy BODY quick", 0x01 },
	{ "CHARSET ISO-8859-1 BODY {5}\r\ngr\xf6\xdf" "e", 0x04 },
	{ "CHARSET UTF-8 SUBJECT {6}\r\nM\xc3\x9c\x4e\x43H", 0x02 },
};

static void test_eval(void)
{
	for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]);
	     i++) {
		struct imap_search_program *prog = NULL;
		const char *error = NULL;
		unsigned mask;

		if (parse(eval_cases[i].keys, &prog, &error) != 0) {
			test_assert_idx(false, (int)i);
			printf("    keys=%s error=%s\n", eval_cases[i].keys,
			       error);
			continue;
		}
		mask = eval(prog);
		test_assert_idx(mask == eval_cases[i].mask, (int)i);
		if (mask != eval_cases[i].mask)
			printf("    keys=%s got 0x%02x want 0x%02x\n",
			       eval_cases[i].keys, mask, eval_cases[i].mask);
		imap_search_free(&prog);
	}
}

/* A body key over a long message: matches across chunk ends. */
static void test_eval_long(void)
{
	static const char head[] = "Subject: long\n\n";
	size_t len = IMAP_SEARCH_CHUNK_SIZE * 3 + 100, hl = sizeof(head) - 1;
	char *text = malloc(len + 1);
	struct imap_search_program *prog = NULL;
	struct imap_search_msg m = { 1, &msgs[0], false };
	const char *error;
	size_t needle_pos[] = { IMAP_SEARCH_CHUNK_SIZE - 3,
				2 * IMAP_SEARCH_CHUNK_SIZE - 5, len - 9 };

	memcpy(text, head, hl);
	for (size_t i = hl; i < len; i++)
		text[i] = (i % 61 == 0) ? '\n' : 'a' + (char)(i % 23);
	text[len] = '\0';
	for (size_t k = 0; k < 3; k++) {
		char *t = strdup(text);
		struct mem_ctx mc = { t, len };

		memcpy(t + needle_pos[k], "NeEdLe", 6);
		test_assert_idx(parse("BODY needle", &prog, &error) == 0,
				(int)k);
		test_assert_idx(imap_search_eval_content(prog, &m, mem_read,
							 &mc) ==
				IMAP_SEARCH_YES, (int)k);
		imap_search_free(&prog);
		free(t);
	}
	free(text);
}

int main(void)
{
	msgs_init();
	setenv("TZ", "UTC", 1);
	test_run("parse", test_parse);
	test_run("parse_depth", test_parse_depth);
	test_run("eval", test_eval);
	test_run("eval_long", test_eval_long);
	return test_done("imap_search");
}
