/* test_imap_binary.c: FETCH BINARY (RFC 3516) pure parts: the strict CTE
 * name check (decode_type_parse_known), BINARY / BINARY.PEEK /
 * BINARY.SIZE item parsing (through the real command parser), and the
 * decoding range converter (imap_binary_*) checked against a reference
 * (byte-wise LF -> CRLF, then one-shot decode_feed) for every partial
 * range, fed whole, at every split point and byte by byte. */
#include "test.h"

#include <stdlib.h>

#include "imap/imap_fetch.h"
#include "imap/imap_parser.h"
#include "mail/decode.h"

static void test_cte_known(void)
{
	static const struct {
		const char *value;	/* NULL: no header */
		int ret;
		enum decode_type type;
	} rows[] = {
		{ NULL, 0, DECODE_NONE },
		{ "7bit", 0, DECODE_NONE },
		{ " 8BIT\r\n", 0, DECODE_NONE },
		{ "Binary (comment)", 0, DECODE_NONE },
		{ "", 0, DECODE_NONE },
		{ "base64", 0, DECODE_BASE64 },
		{ "\tBASE64 ", 0, DECODE_BASE64 },
		{ "Quoted-Printable", 0, DECODE_QP },
		{ "x-uuencode", -1, DECODE_NONE },
		{ "base6", -1, DECODE_NONE },
		{ "base644", -1, DECODE_NONE },
		{ "7bits", -1, DECODE_NONE },
		{ "quoted-printable-x", -1, DECODE_NONE },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum decode_type type = DECODE_QP;
		const char *v = rows[i].value;
		int ret = decode_type_parse_known(v, v != NULL ? strlen(v) : 0,
						  &type);

		test_assert_idx(ret == rows[i].ret, i);
		test_assert_idx(type == rows[i].type, i);
		/* the lenient parser agrees on what it knows */
		test_assert_idx(decode_type_parse(v, v != NULL ? strlen(v) :
						  0) == rows[i].type, i);
	}
}

/* Parses "T FETCH 1 <items>" and runs imap_fetch_parse on its args. */
static int parse_items(const char *items, struct imap_fetch_spec *spec,
		       const char **error_r)
{
	struct imap_parser_settings set;
	struct imap_parser *parser;
	const struct imap_command *cmd;
	char line[1024];
	size_t used, len;
	int ret = -2;

	memset(spec, 0, sizeof(*spec));
	*error_r = NULL;
	imap_parser_settings_default(&set, true);
	parser = imap_parser_create(&set);
	len = (size_t)snprintf(line, sizeof(line), "T FETCH 1 %s\r\n", items);
	if (imap_parser_feed(parser, line, len, &used) == IMAP_PARSE_DONE) {
		cmd = imap_parser_command(parser);
		ret = imap_fetch_parse(cmd->args + 1, cmd->args_count - 1,
				       false, spec, error_r);
	}
	imap_parser_destroy(&parser);
	return ret;
}

static void test_parse_ok(void)
{
	static const struct {
		const char *items;
		const char *label;	/* of the first item */
		enum imap_fetch_type type;
		unsigned path_len, needs;
		bool has_partial;
	} rows[] = {
		{ "BINARY[]", "BINARY[]", IMAP_FETCH_BINARY, 0,
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER |
		  IMAP_FETCH_SETS_SEEN, false },
		{ "binary.peek[1.2]<0.10>", "BINARY[1.2]<0>",
		  IMAP_FETCH_BINARY, 2,
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS, true },
		{ "(BINARY[3]<7.1> FLAGS)", "BINARY[3]<7>", IMAP_FETCH_BINARY,
		  1, IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS |
		  IMAP_FETCH_SETS_SEEN, true },
		{ "BINARY.SIZE[1]", "BINARY.SIZE[1]", IMAP_FETCH_BINARY_SIZE,
		  1, IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS, false },
		{ "BINARY.SIZE[]", "BINARY.SIZE[]", IMAP_FETCH_BINARY_SIZE,
		  0, IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER, false },
		{ "(BINARY.PEEK[1] BODY.PEEK[1])", "BINARY[1]",
		  IMAP_FETCH_BINARY, 1,
		  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS, false },
	};
	struct imap_fetch_spec spec;
	const char *error;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = parse_items(rows[i].items, &spec, &error);

		test_assert_idx(ret == 0, i);
		if (ret == 0) {
			const struct imap_fetch_item *it = &spec.items[0];

			test_assert_streq_idx(it->label, rows[i].label, i);
			test_assert_idx(it->type == rows[i].type, i);
			test_assert_idx(it->path_len == rows[i].path_len, i);
			test_assert_idx(it->kind == IMAP_SECTION_NONE, i);
			test_assert_idx(it->needs == rows[i].needs, i);
			test_assert_idx(it->has_partial ==
					rows[i].has_partial, i);
		}
		imap_fetch_spec_free(&spec);
	}
}

static void test_parse_bad(void)
{
	static const char *const rows[] = {
		"BINARY", "BINARY[", "BINARY[1", "BINARY[HEADER]",
		"BINARY[TEXT]", "BINARY[1.MIME]", "BINARY[1.HEADER]",
		"BINARY[1.TEXT]", "BINARY.PEEK[HEADER.FIELDS (A)]",
		"BINARY[0]", "BINARY[1.]", "BINARY[.1]", "BINARY[x]",
		"BINARY[]<1.0>", "BINARY[]<>", "BINARY[]x", "BINARY[]<a.1>",
		"BINARY.SIZE[1]<0.1>", "BINARY.SIZE", "BINARY.SIZE[1]x",
		"BINARY.PEEK", "BINARY.PEEKX[1]", "BINARY.SIZE[HEADER]",
	};
	struct imap_fetch_spec spec;
	const char *error;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ret = parse_items(rows[i], &spec, &error);

		/* -2: the command parser itself refused it: also fine */
		test_assert_idx(ret != 0, i);
		if (ret == -1)
			test_assert_idx(error != NULL, i);
		imap_fetch_spec_free(&spec);
	}
}

/* ---- the converter ---- */

/* Reference: LF -> CRLF byte by byte over all of in; the first plain
 * input bytes pass, the rest is decoded in one call. Returns the
 * decoded length in out. */
static size_t ref_binary(enum decode_type type, const unsigned char *in,
			 size_t len, size_t plain, unsigned char *out)
{
	unsigned char *body = malloc(2 * len + 1);
	size_t o = 0, b = 0;
	struct decode_state st;

	for (size_t i = 0; i < len; i++) {
		unsigned char *dst = i < plain ? out : body;
		size_t *pos = i < plain ? &o : &b;

		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			dst[(*pos)++] = '\r';
		dst[(*pos)++] = in[i];
	}
	decode_init(&st, type);
	o += decode_feed(&st, body, b, out + o);
	o += decode_finish(&st, out + o);
	free(body);
	return o;
}

/* Converts in with chunks: the first of first_chunk bytes, the others
 * of chunk bytes (0 = the rest). */
static size_t run_binary(struct imap_binary *b, const unsigned char *in,
			 size_t len, size_t first_chunk, size_t chunk,
			 unsigned char *out)
{
	unsigned char scratch[1024], tmp[IMAP_BINARY_OUT_MAX(512)];
	size_t pos = 0, o = 0, n, w;

	while (pos < len && !imap_binary_is_done(b)) {
		n = pos == 0 ? first_chunk : chunk;
		if (n == 0 || n > len - pos)
			n = len - pos;
		w = imap_binary_convert(b, in + pos, n, scratch, tmp);
		test_assert(w <= IMAP_BINARY_OUT_MAX(n));
		memcpy(out + o, tmp, w);
		o += w;
		pos += n;
	}
	if (pos == len) {
		w = imap_binary_finish(b, tmp);
		memcpy(out + o, tmp, w);
		o += w;
	}
	return o;
}

static bool check_range(enum decode_type type, const unsigned char *in,
			size_t len, size_t plain, const unsigned char *ref,
			size_t ref_len, size_t skip, size_t count)
{
	size_t want = skip >= ref_len ? 0 :
		(count < ref_len - skip ? count : ref_len - skip);
	bool want_nul = memchr(ref + (skip < ref_len ? skip : ref_len),
			       '\0', want) != NULL;
	unsigned char got[1024];
	struct imap_binary b;
	bool ok = true;

	for (size_t split = 0; split <= len; split++) {
		for (int mode = 0; mode < 2; mode++) {
			imap_binary_init(&b, type, plain, skip, count);
			size_t n = run_binary(&b, in, len, split,
					      mode == 0 ? 0 : 1, got);
			if (n != want || memcmp(got, ref + skip, want) != 0 ||
			    b.has_nul != want_nul)
				ok = false;
			/* size counts everything when run to the end */
			if (count == SIZE_MAX && b.size != ref_len)
				ok = false;
		}
	}
	return ok;
}

static void test_convert(void)
{
	static const struct {
		enum decode_type type;
		size_t plain;
		const char *in;
		size_t len;		/* 0: strlen (NUL rows give it) */
	} rows[] = {
		{ DECODE_NONE, 0, "", 0 },
		{ DECODE_NONE, 0, "a\nb\0c\r\nd\n", 9 },
		{ DECODE_NONE, 3, "H:\n\nx\0\ny", 8 },
		{ DECODE_BASE64, 0, "AAEC\nAwQ=\n", 0 },
		{ DECODE_BASE64, 0, "YWJj\r\nZGVm\nZw==", 0 },
		{ DECODE_BASE64, 8, "X: base\n\nAP8A\n/w==\n", 0 },
		{ DECODE_QP, 0, "caf=C3=A9 =\nsoft\nhard  \n=00nul=3D\n", 0 },
		{ DECODE_QP, 6, "H: v\n\n=41=\r\nB\r\nc=\n", 0 },
		{ DECODE_QP, 0, "x=\ny =4", 0 },
	};
	unsigned char ref[512];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const unsigned char *in = (const unsigned char *)rows[i].in;
		size_t len = rows[i].len != 0 ? rows[i].len :
			strlen(rows[i].in), ref_len;
		bool ok = true;

		ref_len = ref_binary(rows[i].type, in, len, rows[i].plain,
				     ref);
		for (size_t skip = 0; skip <= ref_len + 1; skip++) {
			for (size_t count = 0; skip + count <= ref_len + 2;
			     count++)
				ok &= check_range(rows[i].type, in, len,
						  rows[i].plain, ref, ref_len,
						  skip, count);
			ok &= check_range(rows[i].type, in, len,
					  rows[i].plain, ref, ref_len, skip,
					  SIZE_MAX);
		}
		test_assert_idx(ok, i);
	}
}

/* A large base64 body in streaming-sized chunks, with a partial range. */
static void test_convert_big(void)
{
	size_t raw_len = 300000, len = 0, chunk = 65536 - 68, pos = 0, o = 0;
	unsigned char *raw = malloc(raw_len), *in = malloc(raw_len * 2);
	unsigned char *scratch = malloc(2 * chunk);
	unsigned char *out = malloc(IMAP_BINARY_OUT_MAX(chunk));
	unsigned char *got = malloc(raw_len);
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
		"opqrstuvwxyz0123456789+/";
	struct imap_binary b;

	for (size_t i = 0; i < raw_len; i++)
		raw[i] = (unsigned char)(i * 7 + i / 1000);
	for (size_t i = 0; i + 3 <= raw_len; i += 3) {
		unsigned v = (unsigned)raw[i] << 16 | raw[i + 1] << 8 |
			raw[i + 2];
		for (int k = 3; k >= 0; k--)
			in[len++] = (unsigned char)alpha[(v >> (6 * k)) & 63];
		if ((i / 3) % 19 == 18)
			in[len++] = '\n';
	}
	imap_binary_init(&b, DECODE_BASE64, 0, 12345, 200000);
	while (pos < len) {
		size_t n = len - pos < chunk ? len - pos : chunk;
		size_t w = imap_binary_convert(&b, in + pos, n, scratch, out);

		memcpy(got + o, out, w);
		o += w;
		pos += n;
	}
	o += imap_binary_finish(&b, got + o);
	test_assert(o == 200000);
	test_assert(memcmp(got, raw + 12345, 200000) == 0);
	test_assert(b.size == raw_len);
	test_assert(b.has_nul);
	free(raw);
	free(in);
	free(scratch);
	free(out);
	free(got);
}

int main(void)
{
	test_run("cte_known", test_cte_known);
	test_run("parse_ok", test_parse_ok);
	test_run("parse_bad", test_parse_bad);
	test_run("convert", test_convert);
	test_run("convert_big", test_convert_big);
	return test_done("imap_binary");
}
