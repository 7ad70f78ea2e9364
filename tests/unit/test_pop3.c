/* test_pop3.c: the pure parts of src/pop3/: command line parser, number
 * parsing, the RETR/TOP transform (fed whole, byte by byte and at every
 * split point: the output must not depend on chunk boundaries) and the
 * UIDL sanitizer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "pop3/pop3_private.h"

struct parse_row {
	const char *line;
	int ret;
	const char *name;
	unsigned argc;
	const char *arg0, *arg1, *rest;
};

static const struct parse_row parse_rows[] = {
	{ "QUIT", 0, "QUIT", 0, NULL, NULL, "" },
	{ "quit", 0, "QUIT", 0, NULL, NULL, "" },
	{ "StAt", 0, "STAT", 0, NULL, NULL, "" },
	{ "TOP", 0, "TOP", 0, NULL, NULL, "" },
	{ "LIST 1", 0, "LIST", 1, "1", NULL, "1" },
	{ "LIST 1 ", 0, "LIST", 1, "1", NULL, "1 " },
	{ "TOP 10 0", 0, "TOP", 2, "10", "0", "10 0" },
	{ "TOP  10   0  ", 0, "TOP", 2, "10", "0", " 10   0  " },
	{ "PASS my secret pw", 0, "PASS", 3, "my", "secret",
	  "my secret pw" },
	{ "PASS  lead", 0, "PASS", 1, "lead", NULL, " lead" },
	{ "AUTH PLAIN =", 0, "AUTH", 2, "PLAIN", "=", "PLAIN =" },
	{ "user bob@example.org", 0, "USER", 1, "bob@example.org", NULL,
	  "bob@example.org" },
	{ "USER b\xc3\xa4r", 0, "USER", 1, "b\xc3\xa4r", NULL,
	  "b\xc3\xa4r" },
	{ "", -1, NULL, 0, NULL, NULL, NULL },
	{ " QUIT", -1, NULL, 0, NULL, NULL, NULL },
	{ "QU", -1, NULL, 0, NULL, NULL, NULL },
	{ "QUITT", -1, NULL, 0, NULL, NULL, NULL },
	{ "CAPABILITY", -1, NULL, 0, NULL, NULL, NULL },
	{ "QUIT\r", -1, NULL, 0, NULL, NULL, NULL },
	{ "USER a\tb", -1, NULL, 0, NULL, NULL, NULL },
	{ "USER a\x7f", -1, NULL, 0, NULL, NULL, NULL },
	{ "QU\xc3\xa4", -1, NULL, 0, NULL, NULL, NULL },
};

static bool tok_eq(const struct pop3_token *t, const char *s)
{
	return t->len == strlen(s) && memcmp(t->data, s, t->len) == 0;
}

static void test_parse_line(void)
{
	for (size_t i = 0; i < sizeof(parse_rows) / sizeof(*parse_rows);
	     i++) {
		const struct parse_row *r = &parse_rows[i];
		struct pop3_cmd cmd;
		const char *error = NULL;
		/* a heap copy so ASan sees reads past the end */
		size_t len = strlen(r->line);
		char *line = malloc(len + 1);
		int ret;

		memcpy(line, r->line, len + 1);
		ret = pop3_parse_line(line, len, &cmd, &error);
		test_assert_idx(ret == r->ret, (int)i);
		if (ret < 0) {
			test_assert_idx(error != NULL, (int)i);
			free(line);
			continue;
		}
		test_assert_streq_idx(cmd.name, r->name, (int)i);
		test_assert_idx(cmd.argc == r->argc, (int)i);
		if (r->arg0 != NULL)
			test_assert_idx(tok_eq(&cmd.args[0], r->arg0), (int)i);
		if (r->arg1 != NULL)
			test_assert_idx(tok_eq(&cmd.args[1], r->arg1), (int)i);
		test_assert_idx(tok_eq(&cmd.rest, r->rest), (int)i);
		test_assert_idx(cmd.rest.data[cmd.rest.len] == '\0', (int)i);
		free(line);
	}
}

static void test_parse_nul(void)
{
	static const char line[] = "USER a\0b";
	struct pop3_cmd cmd;
	const char *error;

	test_assert(pop3_parse_line(line, sizeof(line) - 1, &cmd,
				    &error) < 0);
}

static void test_parse_max_arg_len(void)
{
	struct pop3_cmd cmd;
	const char *error;

	test_assert(pop3_parse_line("AUTH PLAIN abcdefgh", 19, &cmd,
				    &error) == 0);
	test_assert(cmd.max_arg_len == 8);
}

struct num_row {
	const char *str;
	int ret;
	uint32_t num;
};

static const struct num_row num_rows[] = {
	{ "1", 0, 1 },
	{ "42", 0, 42 },
	{ "007", 0, 7 },
	{ "4294967295", 0, UINT32_MAX },
	{ "4294967296", -1, 0 },
	{ "99999999999999999999999", -1, 0 },
	{ "0", -1, 0 },
	{ "", -1, 0 },
	{ "-1", -1, 0 },
	{ "+1", -1, 0 },
	{ "1a", -1, 0 },
	{ "0x10", -1, 0 },
};

static void test_parse_msgnum(void)
{
	for (size_t i = 0; i < sizeof(num_rows) / sizeof(*num_rows); i++) {
		struct pop3_token tok = {
			num_rows[i].str, strlen(num_rows[i].str)
		};
		uint32_t num = 0;

		test_assert_idx(pop3_parse_msgnum(&tok, &num) ==
				num_rows[i].ret, (int)i);
		if (num_rows[i].ret == 0)
			test_assert_idx(num == num_rows[i].num, (int)i);
	}
}

static void test_parse_u64(void)
{
	struct pop3_token tok = { "18446744073709551615", 20 };
	struct pop3_token tok2 = { "18446744073709551616", 20 };
	struct pop3_token tok3 = { "0", 1 };
	uint64_t n;

	test_assert(pop3_parse_u64(&tok, &n) == 0 && n == UINT64_MAX);
	test_assert(pop3_parse_u64(&tok2, &n) < 0);
	test_assert(pop3_parse_u64(&tok3, &n) == 0 && n == 0);
}

/* ---- transform ---- */

struct xform_row {
	const char *in;
	int top;		/* -1: RETR, else TOP line count */
	const char *out;
};

static const struct xform_row xform_rows[] = {
	{ "", -1, ".\r\n" },
	{ "a", -1, "a\r\n.\r\n" },
	{ "a\n", -1, "a\r\n.\r\n" },
	{ "a\r\n", -1, "a\r\n.\r\n" },
	{ "a\r", -1, "a\r\n.\r\n" },
	{ "a\rb\n", -1, "a\rb\r\n.\r\n" },
	{ "\n\n", -1, "\r\n\r\n.\r\n" },
	{ ".", -1, "..\r\n.\r\n" },
	{ ".\n", -1, "..\r\n.\r\n" },
	{ "a\n.\nb\n", -1, "a\r\n..\r\nb\r\n.\r\n" },
	{ "a\r\n.\r\n..x\r\n", -1, "a\r\n..\r\n...x\r\n.\r\n" },
	{ "x.y\n", -1, "x.y\r\n.\r\n" },
	{ "a\r.b\n", -1, "a\r.b\r\n.\r\n" },
	{ "\r\r\n", -1, "\r\r\n.\r\n" },
	{ "Subject: x\nFrom: y\n\nl1\nl2\nl3\n", -1,
	  "Subject: x\r\nFrom: y\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n" },
	/* TOP */
	{ "Subject: x\nFrom: y\n\nl1\nl2\nl3\n", 0,
	  "Subject: x\r\nFrom: y\r\n\r\n.\r\n" },
	{ "Subject: x\nFrom: y\n\nl1\nl2\nl3\n", 2,
	  "Subject: x\r\nFrom: y\r\n\r\nl1\r\nl2\r\n.\r\n" },
	{ "Subject: x\r\n\r\n.l1\r\nl2", 1,
	  "Subject: x\r\n\r\n..l1\r\n.\r\n" },
	{ "Subject: x\r\n\r\nl1\r\nl2", 5,
	  "Subject: x\r\n\r\nl1\r\nl2\r\n.\r\n" },
	{ "Subject: x\nFrom: y\n", 0, "Subject: x\r\nFrom: y\r\n.\r\n" },
	{ "Subject: x", 0, "Subject: x\r\n.\r\n" },
	{ "\nbody\n", 0, "\r\n.\r\n" },
	{ "\nbody\nmore\n", 1, "\r\nbody\r\n.\r\n" },
	{ "H: \r\n\r\n\r\n\r\nx\r\n", 2, "H: \r\n\r\n\r\n\r\n.\r\n" },
	{ "", 3, ".\r\n" },
	{ "H: v\n\n", 3, "H: v\r\n\r\n.\r\n" },
};

/* Runs the transform over in split into pieces at the given cut points. */
static char *xform_run(const char *in, size_t len, int top,
		       const size_t *cuts, size_t ncuts, size_t *out_len_r)
{
	struct pop3_xform x;
	unsigned char *out = malloc(2 * len + POP3_XFORM_FINISH_MAX + 1);
	size_t o = 0, pos = 0;

	pop3_xform_init(&x, top >= 0, top >= 0 ? (uint64_t)top : 0);
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		/* a heap copy of exactly this chunk for ASan */
		unsigned char *chunk = malloc(end - pos + 1);

		memcpy(chunk, in + pos, end - pos);
		o += pop3_xform_feed(&x, chunk, end - pos, out + o);
		free(chunk);
		pos = end;
	}
	o += pop3_xform_finish(&x, out + o);
	out[o] = '\0';
	*out_len_r = o;
	return (char *)out;
}

static void test_xform(void)
{
	for (size_t i = 0; i < sizeof(xform_rows) / sizeof(*xform_rows);
	     i++) {
		const struct xform_row *r = &xform_rows[i];
		size_t len = strlen(r->in), out_len;
		size_t *cuts = malloc((len + 1) * sizeof(*cuts));
		char *out;

		/* whole */
		out = xform_run(r->in, len, r->top, NULL, 0, &out_len);
		test_assert_streq_idx(out, r->out, (int)i);
		free(out);
		/* every single split point */
		for (size_t s = 0; s <= len; s++) {
			out = xform_run(r->in, len, r->top, &s, 1, &out_len);
			test_assert_streq_idx(out, r->out, (int)i);
			free(out);
		}
		/* byte by byte */
		for (size_t s = 0; s < len; s++)
			cuts[s] = s;
		out = xform_run(r->in, len, r->top, cuts, len, &out_len);
		test_assert_streq_idx(out, r->out, (int)i);
		free(out);
		free(cuts);
	}
}

/* The wire must never contain the terminator before the end. */
static void test_xform_no_early_end(void)
{
	static const char alphabet[] = { '.', '\r', '\n', 'a' };
	char in[8];
	size_t out_len;

	/* all 4^8 strings over the alphabet */
	for (unsigned v = 0; v < (1u << 16); v++) {
		char *out, *p;

		for (unsigned k = 0; k < sizeof(in); k++)
			in[k] = alphabet[(v >> (2 * k)) & 3];
		out = xform_run(in, sizeof(in), -1, NULL, 0, &out_len);
		p = strstr(out, "\r\n.\r\n");
		test_assert_idx(out_len >= 3, (int)v);
		test_assert_idx(memcmp(out + out_len - 3, ".\r\n", 3) == 0,
				(int)v);
		test_assert_idx(p == NULL || p + 5 == out + out_len, (int)v);
		test_assert_idx(out_len == 3 ||
				strncmp(out, ".\r\n", 3) != 0, (int)v);
		free(out);
	}
}

/* ---- UIDL ---- */

static void test_uidl(void)
{
	char buf[POP3_UIDL_BUF_SIZE], buf2[POP3_UIDL_BUF_SIZE];
	char longname[200];
	const char *id, *id2;
	const char *valid = "1700000000.M1P2Q3.host";

	test_assert(pop3_uidl(valid, buf) == valid);
	memset(longname, 'a', 70);
	longname[70] = '\0';
	test_assert(pop3_uidl(longname, buf) == longname);
	longname[70] = 'a';
	longname[71] = '\0';
	id = pop3_uidl(longname, buf);
	test_assert(id == buf && strlen(id) == POP3_UIDL_HASH_LEN);
	id2 = pop3_uidl(longname, buf2);
	test_assert_streq(id, id2);
	longname[0] = 'b';
	id2 = pop3_uidl(longname, buf2);
	test_assert(strcmp(id, id2) != 0);

	id = pop3_uidl("with space", buf);
	test_assert(id == buf && strlen(id) == POP3_UIDL_HASH_LEN);
	for (size_t i = 0; id[i] != '\0'; i++)
		test_assert_idx((id[i] >= '0' && id[i] <= '9') ||
				(id[i] >= 'a' && id[i] <= 'f'), (int)i);
	id = pop3_uidl("", buf);
	test_assert(id == buf && strlen(id) == POP3_UIDL_HASH_LEN);
	id = pop3_uidl("caf\xc3\xa9", buf);
	test_assert(id == buf && strlen(id) == POP3_UIDL_HASH_LEN);
	/* known value: first 40 hex digits of SHA-256("a b") */
	id = pop3_uidl("a b", buf);
	test_assert_streq(id, "c8687a08aa5d6ed2044328fa6a697ab8e96dc342");
}

int main(void)
{
	test_run("pop3_parse_line", test_parse_line);
	test_run("pop3_parse_nul", test_parse_nul);
	test_run("pop3_parse_max_arg_len", test_parse_max_arg_len);
	test_run("pop3_parse_msgnum", test_parse_msgnum);
	test_run("pop3_parse_u64", test_parse_u64);
	test_run("pop3_xform", test_xform);
	test_run("pop3_xform_no_early_end", test_xform_no_early_end);
	test_run("pop3_uidl", test_uidl);
	return test_done("pop3");
}
