/* test_imap_fetch.c: the pure parts of FETCH (src/imap/imap_fetch.c):
 * fetch-att parsing (through the real command parser), partial clipping,
 * the header-end finder, and the LF -> CRLF range converter checked
 * against a byte-wise reference for every partial range, fed whole, at
 * every split point and byte by byte. */
#include "test.h"

#include <stdlib.h>

#include "imap/imap_fetch.h"
#include "imap/imap_parser.h"

/* Parses "T FETCH 1 <items>" and runs imap_fetch_parse on its args. */
static int parse_items(const char *items, bool is_uid,
		       struct imap_fetch_spec *spec, const char **error_r)
{
	struct imap_parser_settings set;
	struct imap_parser *parser;
	const struct imap_command *cmd;
	char line[1024];
	size_t used, len;
	int ret = -2, r;

	memset(spec, 0, sizeof(*spec));
	imap_parser_settings_default(&set, true);
	parser = imap_parser_create(&set);
	len = (size_t)snprintf(line, sizeof(line), "T FETCH 1 %s\r\n", items);
	r = imap_parser_feed(parser, line, len, &used);
	if (r == IMAP_PARSE_DONE) {
		cmd = imap_parser_command(parser);
		ret = imap_fetch_parse(cmd->args + 1, cmd->args_count - 1,
				       is_uid, spec, error_r);
	}
	imap_parser_destroy(&parser);
	return ret;
}

static void labels(const struct imap_fetch_spec *spec, char *buf,
		   size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < spec->count && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s",
				      i > 0 ? "|" : "", spec->items[i].label);
}

static void test_parse_ok(void)
{
	static const struct {
		const char *items;
		bool is_uid;
		const char *labels;	/* joined by | */
		unsigned needs;
	} rows[] = {
		{ "FLAGS", false, "FLAGS", 0 },
		{ "(UID FLAGS)", false, "UID|FLAGS", 0 },
		{ "(FLAGS)", true, "UID|FLAGS", 0 },
		{ "(FLAGS uid)", true, "FLAGS|UID", 0 },
		{ "(uid UID flags)", false, "UID|FLAGS", 0 },
		{ "ALL", false, "FLAGS|INTERNALDATE|RFC822.SIZE|ENVELOPE",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER },
		{ "fast", false, "FLAGS|INTERNALDATE|RFC822.SIZE", 0 },
		{ "FULL", false,
		  "FLAGS|INTERNALDATE|RFC822.SIZE|ENVELOPE|BODY",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER |
		  IMAP_FETCH_NEED_PARTS },
		{ "BODY[]", false, "BODY[]",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_SETS_SEEN },
		{ "BODY.PEEK[]", false, "BODY[]", IMAP_FETCH_NEED_FILE },
		{ "body.peek[text]<0.10>", false, "BODY[TEXT]<0>",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER },
		{ "BODY.PEEK[]<7>", false, "BODY[]<7>", IMAP_FETCH_NEED_FILE },
		{ "BODY[1.2.MIME]<5.1>", false, "BODY[1.2.MIME]<5>",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS |
		  IMAP_FETCH_SETS_SEEN },
		{ "BODY.PEEK[HEADER.FIELDS (From to)]", false,
		  "BODY[HEADER.FIELDS (FROM TO)]",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER },
		{ "(UID BODY.PEEK[2.HEADER.FIELDS.NOT (\"X-a\")]<1.2> FLAGS)",
		  false, "UID|BODY[2.HEADER.FIELDS.NOT (X-A)]<1>|FLAGS",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS },
		{ "(RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE)", false,
		  "RFC822|RFC822.HEADER|RFC822.TEXT|RFC822.SIZE",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER |
		  IMAP_FETCH_SETS_SEEN },
		{ "(BODYSTRUCTURE BODY ENVELOPE INTERNALDATE)", false,
		  "BODYSTRUCTURE|BODY|ENVELOPE|INTERNALDATE",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER |
		  IMAP_FETCH_NEED_PARTS },
		{ "(FLAGS) (CHANGEDSINCE 12)", false, "FLAGS|MODSEQ", 0 },
		{ "FLAGS (CHANGEDSINCE 12)", true, "UID|FLAGS|MODSEQ", 0 },
		{ "(MODSEQ FLAGS) (CHANGEDSINCE 0)", false, "MODSEQ|FLAGS",
		  0 },
		{ "BODY.PEEK[HEADER.FIELDS (A)] (CHANGEDSINCE 1)", false,
		  "BODY[HEADER.FIELDS (A)]|MODSEQ",
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER },
	};
	struct imap_fetch_spec spec;
	const char *error;
	char buf[512];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = parse_items(rows[i].items, rows[i].is_uid, &spec,
				      &error);
		test_assert_idx(ret == 0, i);
		if (ret == 0) {
			labels(&spec, buf, sizeof(buf));
			test_assert_streq_idx(buf, rows[i].labels, i);
			test_assert_idx(spec.needs == rows[i].needs, i);
		}
		imap_fetch_spec_free(&spec);
	}
}

static void test_parse_details(void)
{
	struct imap_fetch_spec spec;
	const struct imap_fetch_item *it;
	const char *error;

	test_assert(parse_items("(BODY[1.2.3.HEADER.FIELDS (a b c)]<7.9>) "
				"(CHANGEDSINCE 99)", false, &spec,
				&error) == 0);
	it = &spec.items[0];
	test_assert(it->type == IMAP_FETCH_SECTION);
	test_assert(it->path_len == 3 && it->path[0] == 1 &&
		    it->path[1] == 2 && it->path[2] == 3);
	test_assert(it->kind == IMAP_SECTION_HEADER_FIELDS);
	test_assert(it->fields_count == 3);
	test_assert_streq(it->fields[2], "C");
	test_assert(it->has_partial && it->partial_start == 7 &&
		    it->partial_len == 9);
	test_assert(spec.has_changedsince && spec.changedsince == 99);
	test_assert(spec.has_modseq);
	imap_fetch_spec_free(&spec);

	test_assert(parse_items("RFC822.TEXT", false, &spec, &error) == 0);
	test_assert(spec.items[0].type == IMAP_FETCH_RFC822_TEXT);
	test_assert(spec.items[0].kind == IMAP_SECTION_TEXT);
	test_assert(!spec.has_modseq);
	imap_fetch_spec_free(&spec);
}

static void test_parse_bad(void)
{
	static const char *const rows[] = {
		"", "()", "(FLAGS", "FOO", "(FLAGS FOO)", "(ALL)",
		"(FAST FLAGS)", "BODY[", "BODY[]<", "BODY[]<>", "BODY[]<1.0>",
		"BODY[]<.1>", "BODY[]<1.>",
		"BODY[]<a.1>", "BODY[]<1.2>x", "BODY[]x", "BODY[0]",
		"BODY[1.]", "BODY[TEXT.1]", "BODY[MIME]", "BODY[HEADER.FIELDS]",
		"BODY[HEADER.FIELDS ()]", "BODY[HEADER (A)]",
		"BODY[HEADER.FIELDS (A:B)]", "BODY.PEEK", "BINARY[TEXT]",
		"BODY[]<4294967296.1>", "(FLAGS) (CHANGEDSINCE)",
		"(FLAGS) (CHANGEDSINCE x)", "(FLAGS) (VANISHED)",
		"(FLAGS) (CHANGEDSINCE 1 CHANGEDSINCE 2)",
		"(FLAGS) (CHANGEDSINCE 9223372036854775808)",
		"FLAGS FLAGS", "(FLAGS) ()", "(FLAGS) (CHANGEDSINCE 1) X",
		"\"FLAGS\"", "((FLAGS))",
	};
	struct imap_fetch_spec spec;
	const char *error;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = parse_items(rows[i], false, &spec, &error);

		/* -2: the command parser itself refused it: also fine */
		test_assert_idx(ret != 0, i);
		if (ret == -1)
			test_assert_idx(error != NULL, i);
		imap_fetch_spec_free(&spec);
	}
}

static void test_partial_clip(void)
{
	static const struct {
		bool has;
		uint64_t start, len, vsize, skip, count;
	} rows[] = {
		{ false, 0, 0, 100, 0, 100 },
		{ true, 0, 10, 100, 0, 10 },
		{ true, 95, 10, 100, 95, 5 },
		{ true, 100, 10, 100, 100, 0 },
		{ true, 200, 10, 100, 100, 0 },
		{ true, 0, 4294967295u, 5, 0, 5 },
		{ true, 0, 1, 0, 0, 0 },
	};
	struct imap_fetch_item item;
	uint64_t skip, count;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&item, 0, sizeof(item));
		item.has_partial = rows[i].has;
		item.partial_start = rows[i].start;
		item.partial_len = rows[i].len;
		imap_fetch_partial_clip(&item, rows[i].vsize, &skip, &count);
		test_assert_idx(skip == rows[i].skip, i);
		test_assert_idx(count == rows[i].count, i);
	}
}

static void test_header_end(void)
{
	static const struct {
		const char *in;
		size_t end;
	} rows[] = {
		{ "", 0 },
		{ "\n", 1 },
		{ "\r\n", 2 },
		{ "\r", 0 },
		{ "A: b\n", 0 },
		{ "A: b\n\n", 6 },
		{ "A: b\n\nbody\n\n", 6 },
		{ "A: b\r\n\r\nbody", 8 },
		{ "A: b\r\n\r", 0 },
		{ "A: b\n\r\nX", 7 },
		{ "A: b\n c\nD: e\n\nx", 14 },
		{ "A: b\n \nD: e\n\n", 13 },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		test_assert_idx(imap_fetch_header_end(rows[i].in,
			strlen(rows[i].in)) == rows[i].end, i);
}

/* ---- LF -> CRLF ---- */

/* The reference: every LF not after CR becomes CRLF. */
static size_t ref_convert(const char *in, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	return o;
}

/* Converts in with the given split points (chunk sizes cycle through
 * split: 0 = whole input). */
static size_t run_convert(const char *in, size_t len, uint64_t skip,
			  uint64_t count, size_t first_chunk, size_t chunk,
			  char *out)
{
	struct imap_crlf c;
	char tmp[512];
	size_t pos = 0, o = 0, n;

	imap_crlf_init(&c, skip, count);
	while (pos < len && !imap_crlf_is_done(&c)) {
		n = pos == 0 ? first_chunk : chunk;
		if (n == 0 || n > len - pos)
			n = len - pos;
		size_t w = imap_crlf_convert(&c, in + pos, n, tmp);
		test_assert(w <= 2 * n);
		memcpy(out + o, tmp, w);
		o += w;
		pos += n;
	}
	return o;
}

static void test_crlf(void)
{
	static const char *const rows[] = {
		"", "a", "\n", "\n\n", "\r\n", "\r", "\r\r\n\n",
		"ab\ncd\r\nef\n", "\n\r\n\n\r\r\nx", "line one\nline two\n",
		"no newline at end", "\r\n\r\n\n\n\r",
	};
	char ref[256], got[256];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *in = rows[i];
		size_t len = strlen(in), vlen = ref_convert(in, len, ref);
		bool ok = true;

		for (size_t skip = 0; skip <= vlen; skip++) {
			for (size_t count = 0; skip + count <= vlen + 1;
			     count++) {
				size_t want = skip + count > vlen ?
					vlen - skip : count;
				for (size_t split = 0; split <= len; split++) {
					/* two chunks split at split, and
					 * byte by byte after it */
					for (int mode = 0; mode < 2; mode++) {
						size_t n = run_convert(in, len,
							skip, count, split,
							mode == 0 ? 0 : 1, got);
						if (n != want || memcmp(got,
						    ref + skip, want) != 0)
							ok = false;
					}
				}
			}
		}
		test_assert_idx(ok, i);
	}
}

/* A big input in 64 KiB chunks, the streaming case. */
static void test_crlf_big(void)
{
	size_t len = 300000, vlen, o = 0, pos = 0;
	char *in = malloc(len), *ref = malloc(2 * len), *got = malloc(2 * len);
	struct imap_crlf c;

	for (size_t i = 0; i < len; i++)
		in[i] = i % 77 == 76 ? '\n' : (i % 1000 == 999 ? '\r' :
					      (char)('a' + i % 26));
	vlen = ref_convert(in, len, ref);
	imap_crlf_init(&c, 12345, vlen - 12345 - 7);
	while (pos < len) {
		size_t n = len - pos < 65536 ? len - pos : 65536;
		o += imap_crlf_convert(&c, in + pos, n, got + o);
		pos += n;
	}
	test_assert(o == vlen - 12345 - 7);
	test_assert(memcmp(got, ref + 12345, o) == 0);
	free(in);
	free(ref);
	free(got);
}

int main(void)
{
	test_run("parse_ok", test_parse_ok);
	test_run("parse_details", test_parse_details);
	test_run("parse_bad", test_parse_bad);
	test_run("partial_clip", test_partial_clip);
	test_run("header_end", test_header_end);
	test_run("crlf", test_crlf);
	test_run("crlf_big", test_crlf_big);
	return test_done("imap_fetch");
}
