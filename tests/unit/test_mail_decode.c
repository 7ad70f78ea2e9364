/* test_mail_decode.c: streaming base64 / quoted-printable decoders (fed
 * whole, byte by byte and split at every point) and the case folding
 * used by SEARCH. */
#include "test.h"

#include <stdlib.h>

#include "mail/decode.h"
#include "mail/unicode.h"

struct decode_case {
	enum decode_type type;
	const char *in;
	const char *out;
};

static const struct decode_case decode_cases[] = {
	{ DECODE_BASE64, "", "" },
	{ DECODE_BASE64, "aGVsbG8=", "hello" },
	{ DECODE_BASE64, "aGVsbG8gd29ybGQ=\n", "hello world" },
	{ DECODE_BASE64, "aGVs\r\nbG8g\nd29y\nbGQh", "hello world!" },
	{ DECODE_BASE64, "YQ==", "a" },
	{ DECODE_BASE64, "YWI=", "ab" },
	{ DECODE_BASE64, "YWJj", "abc" },
	/* junk skipped, decoding restarts after padding */
	{ DECODE_BASE64, "Y*W!J j", "abc" },
	{ DECODE_BASE64, "YQ==YWI=", "aab" },
	/* truncated: the complete bytes */
	{ DECODE_BASE64, "YWJjZ", "abc" },
	{ DECODE_BASE64, "w6TDtsO8", "\xc3\xa4\xc3\xb6\xc3\xbc" },
	{ DECODE_QP, "", "" },
	{ DECODE_QP, "plain text", "plain text" },
	{ DECODE_QP, "caf=C3=A9", "caf\xc3\xa9" },
	{ DECODE_QP, "caf=c3=a9", "caf\xc3\xa9" },
	/* soft line breaks: LF, CRLF, with trailing white space */
	{ DECODE_QP, "soft=\nbreak", "softbreak" },
	{ DECODE_QP, "soft=\r\nbreak", "softbreak" },
	{ DECODE_QP, "soft= \t\r\nbreak", "softbreak" },
	/* trailing white space of a line is dropped (RFC 2045 6.7 (3)) */
	{ DECODE_QP, "a  \nb", "a\nb" },
	{ DECODE_QP, "a \t\r\nb", "a\r\nb" },
	{ DECODE_QP, "a b\n", "a b\n" },
	{ DECODE_QP, "end  ", "end" },
	/* malformed sequences kept as they are */
	{ DECODE_QP, "=ZZ", "=ZZ" },
	{ DECODE_QP, "=4", "=4" },
	{ DECODE_QP, "=4x", "=4x" },
	{ DECODE_QP, "a=", "a=" },
	{ DECODE_QP, "= x", "= x" },
	{ DECODE_QP, "100% =3D sure", "100% = sure" },
	{ DECODE_NONE, "as =3D is", "as =3D is" },
};

/* Decodes in split at the given points (every split_every bytes). */
static char *decode_split(enum decode_type type, const char *in,
			  size_t split_at, size_t step, size_t *len_r)
{
	size_t len = strlen(in), o = 0, pos = 0;
	unsigned char *out = malloc(DECODE_OUT_MAX(len) * 2 + 8);
	struct decode_state st;

	decode_init(&st, type);
	if (split_at > 0 && split_at <= len) {
		o += decode_feed(&st, (const unsigned char *)in, split_at,
				 out);
		pos = split_at;
	}
	while (pos < len) {
		size_t n = step == 0 || len - pos < step ? len - pos : step;

		o += decode_feed(&st, (const unsigned char *)in + pos, n,
				 out + o);
		pos += n;
	}
	o += decode_finish(&st, out + o);
	out[o] = '\0';
	*len_r = o;
	return (char *)out;
}

static void test_decode(void)
{
	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]);
	     i++) {
		const struct decode_case *c = &decode_cases[i];
		size_t len = strlen(c->in), out_len;
		char *out;

		/* whole, at every split point, byte by byte */
		for (size_t split = 0; split <= len; split++) {
			out = decode_split(c->type, c->in, split, 0, &out_len);
			test_assert_streq_idx(out, c->out, (int)i);
			free(out);
		}
		out = decode_split(c->type, c->in, 0, 1, &out_len);
		test_assert_streq_idx(out, c->out, (int)i);
		free(out);
	}
}

static void test_decode_bounds(void)
{
	/* a long white space run: output bound holds, text survives */
	char in[600], out_expect[600];
	size_t out_len;
	char *out;

	memset(in, ' ', 300);
	memcpy(in + 300, "x\n", 3);
	memset(out_expect, ' ', 300);
	memcpy(out_expect + 300, "x\n", 3);
	out = decode_split(DECODE_QP, in, 0, 0, &out_len);
	test_assert_streq(out, out_expect);
	free(out);
	/* all 256 byte values through base64 of a known encoding */
	out = decode_split(DECODE_BASE64, "AAECA/8=", 0, 1, &out_len);
	test_assert(out_len == 5 && memcmp(out, "\0\1\2\3\xff", 5) == 0);
	free(out);
}

static void test_decode_type(void)
{
	test_assert(decode_type_parse("base64", 6) == DECODE_BASE64);
	test_assert(decode_type_parse(" BASE64 \r\n", 10) == DECODE_BASE64);
	test_assert(decode_type_parse("Quoted-Printable", 16) == DECODE_QP);
	test_assert(decode_type_parse("quoted-printable (x)", 20) ==
		    DECODE_QP);
	test_assert(decode_type_parse("7bit", 4) == DECODE_NONE);
	test_assert(decode_type_parse("base64x", 7) == DECODE_NONE);
	test_assert(decode_type_parse(NULL, 0) == DECODE_NONE);
}

/* ---- folding ---- */

static char *fold(const char *s)
{
	struct unicode_buf b = { NULL, 0, 0, NULL, 0 };

	unicode_fold_append((const unsigned char *)s, strlen(s), &b);
	unicode_buf_reserve(&b, 1);
	b.data[b.len] = '\0';
	free(b.scratch);
	return (char *)b.data;
}

struct fold_case {
	const char *a, *b;	/* fold equally */
};

static const struct fold_case fold_same[] = {
	{ "Hello World", "hello world" },
	{ "\xc3\x84pfel", "\xc3\xa4pfel" },		/* Äpfel */
	{ "STRASSE", "stra\xc3\x9f" "e" },		/* straße */
	{ "Stra\xc3\x9f" "e", "strasse" },
	{ "CAF\xc3\x89", "caf\xc3\xa9" },		/* CAFÉ */
	/* Greek: Σ, σ and final ς all fold to σ */
	{ "\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3",
	  "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82" },
	/* Cyrillic */
	{ "\xd0\x9c\xd0\x9e\xd0\xa1\xd0\x9a\xd0\x92\xd0\x90",
	  "\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0" },
	/* Turkish İ (U+0130) folds to i + U+0307 (full folding) */
	{ "\xc4\xb0", "i\xcc\x87" },
	/* invalid UTF-8 is replacement characters on both sides */
	{ "a\xff" "b", "A\xff" "B" },
};

static void test_fold(void)
{
	for (size_t i = 0; i < sizeof(fold_same) / sizeof(fold_same[0]);
	     i++) {
		char *a = fold(fold_same[i].a), *b = fold(fold_same[i].b);

		test_assert_streq_idx(a, b, (int)i);
		free(a);
		free(b);
	}
}

static void test_fold_specific(void)
{
	char *s;

	/* dotless ı stays distinct from i: consistently */
	s = fold("\xc4\xb1");
	test_assert(strcmp(s, "i") != 0);
	free(s);
	s = fold("I");
	test_assert_streq(s, "i");
	free(s);
	s = fold("\xff");
	test_assert_streq(s, "\xef\xbf\xbd");
	free(s);
#ifdef HAVE_UTF8PROC
	/* precomposed and decomposed É match (NFKC) */
	{
		char *a = fold("E\xcc\x81"), *b = fold("\xc3\xa9");

		test_assert_streq(a, b);
		free(a);
		free(b);
		a = fold("\xef\xac\x83");	/* ﬃ ligature */
		test_assert_streq(a, "ffi");
		free(a);
	}
#endif
}

static void test_fold_safe_len(void)
{
	const unsigned char *s = (const unsigned char *)"abc\xc3\xa9";

	test_assert(unicode_fold_safe_len((const unsigned char *)"abc", 3) ==
		    3);
	/* ends with a non-ASCII char: split before the ASCII char before */
	test_assert(unicode_fold_safe_len(s, 5) == 2);
	test_assert(unicode_fold_safe_len(s, 4) == 2);
	/* no ASCII: before the last lead byte */
	test_assert(unicode_fold_safe_len(
		(const unsigned char *)"\xc3\xa9\xc3\xa9", 4) == 2);
	test_assert(unicode_fold_safe_len(s, 0) == 0);
}

int main(void)
{
	test_run("decode", test_decode);
	test_run("decode_bounds", test_decode_bounds);
	test_run("decode_type", test_decode_type);
	test_run("fold", test_fold);
	test_run("fold_specific", test_fold_specific);
	test_run("fold_safe_len", test_fold_safe_len);
	return test_done("mail_decode");
}
