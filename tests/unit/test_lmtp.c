/* test_lmtp.c: the pure parts of the LMTP server: command keywords,
 * MAIL/RCPT path parsing, the DATA decoder (whole, byte by byte, at every
 * split point, against a byte-at-a-time reference on random input, in
 * linear time) and the Message-ID scanner. Inputs are copied into exact-
 * size heap buffers so ASan catches any read past the end. */
#include "test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "lmtp/lmtp_private.h"

static char *dup_exact(const char *s, size_t len)
{
	char *p = malloc(len == 0 ? 1 : len);

	memcpy(p, s, len);
	return p;
}

/* ---- command keywords ---- */

static const struct {
	const char *line;
	enum lmtp_cmd cmd;
	const char *args;
} cmd_rows[] = {
	{ "LHLO foo.example", LMTP_CMD_LHLO, "foo.example" },
	{ "lhlo", LMTP_CMD_LHLO, "" },
	{ "Mail FROM:<>", LMTP_CMD_MAIL, "FROM:<>" },
	{ "RCPT TO:<a@b>", LMTP_CMD_RCPT, "TO:<a@b>" },
	{ "DATA", LMTP_CMD_DATA, "" },
	{ "DATA ", LMTP_CMD_DATA, "" },
	{ "rset", LMTP_CMD_RSET, "" },
	{ "NOOP x", LMTP_CMD_NOOP, "x" },
	{ "QUIT", LMTP_CMD_QUIT, "" },
	{ "VRFY a", LMTP_CMD_VRFY, "a" },
	{ "STARTTLS", LMTP_CMD_STARTTLS, "" },
	{ "HELO x", LMTP_CMD_HELO, "x" },
	{ "EHLO x", LMTP_CMD_EHLO, "x" },
	{ "STARTTLSX", LMTP_CMD_UNKNOWN, "" },
	{ "", LMTP_CMD_UNKNOWN, "" },
	{ " LHLO", LMTP_CMD_UNKNOWN, "LHLO" },
	{ "DAT", LMTP_CMD_UNKNOWN, "" },
	{ "MAILFROM:<>", LMTP_CMD_UNKNOWN, "" },
};

static void test_cmd_parse(void)
{
	for (size_t i = 0; i < sizeof(cmd_rows) / sizeof(cmd_rows[0]); i++) {
		size_t len = strlen(cmd_rows[i].line), args_len;
		char *line = dup_exact(cmd_rows[i].line, len);
		const char *args;
		enum lmtp_cmd cmd = lmtp_cmd_parse(line, len, &args, &args_len);

		test_assert_idx(cmd == cmd_rows[i].cmd, (int)i);
		test_assert_idx(args_len == strlen(cmd_rows[i].args) &&
				memcmp(args, cmd_rows[i].args, args_len) == 0,
				(int)i);
		free(line);
	}
}

/* ---- MAIL / RCPT paths ---- */

static const struct {
	const char *args;
	bool is_mail;
	enum lmtp_parse_error err;
	const char *addr;
	const char *user;
	unsigned params;
} path_rows[] = {
	{ "FROM:<a@b.c>", true, LMTP_PARSE_OK, "a@b.c", "a@b.c", 0 },
	{ "from:<a@b.c>", true, LMTP_PARSE_OK, "a@b.c", "a@b.c", 0 },
	{ "FROM: <a@b.c>", true, LMTP_PARSE_OK, "a@b.c", "a@b.c", 0 },
	{ "FROM:  <a@b.c>", true, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "FROM:<>", true, LMTP_PARSE_OK, "", "", 0 },
	{ "FROM:<> BODY=8BITMIME SIZE=100", true, LMTP_PARSE_OK, "", "", 2 },
	{ "TO:<>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "FROM:<@x.y,@z:a@b.c>", true, LMTP_PARSE_OK, "a@b.c", "a@b.c", 0 },
	{ "FROM:<@x.y:>", true, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "FROM:<@x.y,a@b.c>", true, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<\"john doe\"@b.c>", false, LMTP_PARSE_OK, "\"john doe\"@b.c",
	  "john doe@b.c", 0 },
	{ "TO:<\"a\\\"b>\"@c>", false, LMTP_PARSE_OK, "\"a\\\"b>\"@c",
	  "a\"b>@c", 0 },
	{ "TO:<\"Joe\\,Smith\"@c>", false, LMTP_PARSE_OK,
	  "\"Joe\\,Smith\"@c", "Joe,Smith@c", 0 },
	{ "TO:<\"unterminated@b>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<postmaster>", false, LMTP_PARSE_OK, "postmaster",
	  "postmaster", 0 },
	{ "TO:<alice>", false, LMTP_PARSE_OK, "alice", "alice", 0 },
	{ "TO:<first..last@b>", false, LMTP_PARSE_OK, "first..last@b",
	  "first..last@b", 0 },
	{ "TO:<a+tag@b-c.d>", false, LMTP_PARSE_OK, "a+tag@b-c.d",
	  "a+tag@b-c.d", 0 },
	{ "TO:<a@[1.2.3.4]>", false, LMTP_PARSE_OK, "a@[1.2.3.4]",
	  "a@[1.2.3.4]", 0 },
	{ "TO:<a@[IPv6:::1]>", false, LMTP_PARSE_OK, "a@[IPv6:::1]",
	  "a@[IPv6:::1]", 0 },
	{ "TO:<a@[]>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@[1.2>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b.c> FOO=bar BAZ", false, LMTP_PARSE_OK, "a@b.c", "a@b.c",
	  2 },
	{ "TO:<a@b.c>  X  ", false, LMTP_PARSE_OK, "a@b.c", "a@b.c", 1 },
	{ "TO:<a@b.c>FOO", false, LMTP_PARSE_PARAMS, NULL, NULL, 0 },
	{ "TO:<a@b.c> =x", false, LMTP_PARSE_PARAMS, NULL, NULL, 0 },
	{ "TO:<a@b.c> K=", false, LMTP_PARSE_PARAMS, NULL, NULL, 0 },
	{ "TO:<a@b.c> K=a=b", false, LMTP_PARSE_PARAMS, NULL, NULL, 0 },
	{ "TO:<a@b.c> -K", false, LMTP_PARSE_PARAMS, NULL, NULL, 0 },
	{ "TO:<a@b.c> A B C D E F G H", false, LMTP_PARSE_OK, "a@b.c",
	  "a@b.c", 8 },
	{ "TO:<a@b.c> A B C D E F G H I", false, LMTP_PARSE_PARAMS, NULL,
	  NULL, 0 },
	{ "TO:a@b.c", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b.c", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b_c>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<@b.c>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a b@c>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b..c>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@.b>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b.>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a\r@b>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b>\n", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<\"a\tb\"@c>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<\xc3\xa9@b>", false, LMTP_PARSE_PATH, NULL, NULL, 0 },
	{ "TO:<a@b> K=\xc3\xa9", false, LMTP_PARSE_PARAMS, NULL, NULL, 0 },
	{ "FROM:<a@b>", false, LMTP_PARSE_PREFIX, NULL, NULL, 0 },
	{ "TO:<a@b>", true, LMTP_PARSE_PREFIX, NULL, NULL, 0 },
	{ "TO<a@b>", false, LMTP_PARSE_PREFIX, NULL, NULL, 0 },
	{ "", false, LMTP_PARSE_PREFIX, NULL, NULL, 0 },
};

static void test_path_parse(void)
{
	for (size_t i = 0; i < sizeof(path_rows) / sizeof(path_rows[0]); i++) {
		size_t len = strlen(path_rows[i].args);
		char *args = dup_exact(path_rows[i].args, len);
		struct lmtp_path path;
		enum lmtp_parse_error err;

		err = lmtp_path_parse(args, len, path_rows[i].is_mail, &path);
		test_assert_idx(err == path_rows[i].err, (int)i);
		if (err == LMTP_PARSE_OK && path_rows[i].err == err) {
			test_assert_streq_idx(path.addr, path_rows[i].addr,
					      (int)i);
			test_assert_streq_idx(path.user, path_rows[i].user,
					      (int)i);
			test_assert_idx(path.params_count ==
					path_rows[i].params, (int)i);
		}
		free(args);
	}
}

static void test_path_params(void)
{
	const char *s = "FROM:<a@b> SIZE=1234 BODY=8BITMIME";
	struct lmtp_path path;

	test_assert(lmtp_path_parse(s, strlen(s), true, &path) ==
		    LMTP_PARSE_OK);
	test_assert(path.params_count == 2);
	test_assert(path.params[0].key_len == 4 &&
		    memcmp(path.params[0].key, "SIZE", 4) == 0);
	test_assert(path.params[0].value_len == 4 &&
		    memcmp(path.params[0].value, "1234", 4) == 0);
	test_assert(path.params[1].value_len == 8 &&
		    memcmp(path.params[1].value, "8BITMIME", 8) == 0);
}

static void test_path_limits(void)
{
	/* RFC 5321 4.5.3.1.3: 256 octets including "<" and ">" */
	char buf[600], *args;
	size_t len;
	struct lmtp_path path;

	for (size_t n = 250; n <= 260; n++) {
		/* "TO:<" + local part + "@b" + ">" = path of n octets */
		size_t local = n - 4;

		memcpy(buf, "TO:<", 4);
		memset(buf + 4, 'x', local);
		memcpy(buf + 4 + local, "@b>", 3);
		len = 4 + local + 3;
		args = dup_exact(buf, len);
		test_assert_idx(lmtp_path_parse(args, len, false, &path) ==
				(n <= LMTP_PATH_MAX ? LMTP_PARSE_OK :
				 LMTP_PARSE_TOO_LONG), (int)n);
		free(args);
	}
	/* NUL inside the line */
	args = dup_exact("TO:<a\0b@c>", 10);
	test_assert(lmtp_path_parse(args, 10, false, &path) ==
		    LMTP_PARSE_PATH);
	free(args);
}

/* ---- the DATA decoder ---- */

static const struct {
	const char *in;
	const char *out;
	bool done;
	const char *rest;	/* input left for the next command */
	size_t in_len, out_len;	/* for rows with NUL bytes; 0 = strlen */
} data_rows[] = {
	{ "hello\r\n.\r\n", "hello\n", true, "", 0, 0 },
	{ ".\r\n", "", true, "", 0, 0 },
	{ ".\n", "", true, "", 0, 0 },
	{ "\r\n.\r\n", "\n", true, "", 0, 0 },
	{ "..\r\n.\r\n", ".\n", true, "", 0, 0 },
	{ "a\r\n..\r\n.\r\n", "a\n.\n", true, "", 0, 0 },
	{ "..foo\r\n.bar\r\n...\r\n.\r\n", ".foo\nbar\n..\n", true, "", 0, 0 },
	{ "a\nb\n.\n", "a\nb\n", true, "", 0, 0 },
	{ "a\n.\r\n", "a\n", true, "", 0, 0 },
	{ "a\r\n.\nX", "a\n", true, "X", 0, 0 },
	{ "a\r\n.\r\nQUIT\r\n", "a\n", true, "QUIT\r\n", 0, 0 },
	{ "a\r\n.\r\n.\r\n", "a\n", true, ".\r\n", 0, 0 },
	{ "abc", "abc", false, "", 0, 0 },
	{ "abc.\r\n", "abc.\n", false, "", 0, 0 },
	{ "abc\r\n.", "abc\n", false, "", 0, 0 },
	{ "abc\r\n.\r", "abc\n", false, "", 0, 0 },
	{ "abc\r", "abc", false, "", 0, 0 },
	{ "a\rb\r\n.\r\n", "a\rb\n", true, "", 0, 0 },
	{ "a\r\r\n.\r\n", "a\r\n", true, "", 0, 0 },
	{ "a\r\r\r\n.\r\n", "a\r\r\n", true, "", 0, 0 },
	{ ".\rx\r\n.\r\n", "\rx\n", true, "", 0, 0 },
	{ ".\r\r\n.\r\n", "\r\n", true, "", 0, 0 },
	{ "x\r\n. \r\n.\r\n", "x\n \n", true, "", 0, 0 },
	{ "x\r\n .\r\n.\r\n", "x\n .\n", true, "", 0, 0 },
	{ "\0a\r\n.\r\n", "\0a\n", true, "", 7, 3 },
	{ "Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\n\nbody\n", true,
	  "", 0, 0 },
};

struct data_result {
	char out[256];
	size_t out_len;
	size_t consumed;
	bool done;
};

/* Feeds in[start..end) once; returns false after done. */
static bool data_feed(struct lmtp_data_decoder *dec, const char *in,
		      size_t len, struct data_result *res)
{
	char *chunk = dup_exact(in, len);
	unsigned char *out = malloc(len + 1);
	size_t out_len, consumed;
	int ret;

	ret = lmtp_data_decode(dec, (const unsigned char *)chunk, len, out,
			       &out_len, &consumed);
	test_assert(out_len <= len + 1 && consumed <= len);
	test_assert(ret == 1 || consumed == len);
	if (res->out_len + out_len <= sizeof(res->out)) {
		memcpy(res->out + res->out_len, out, out_len);
		res->out_len += out_len;
	}
	res->consumed += consumed;
	res->done = ret == 1;
	free(out);
	free(chunk);
	return !res->done;
}

static void data_check(size_t row, const struct data_result *res,
		       size_t in_len)
{
	/* the inputs contain NUL: compare with explicit lengths */
	size_t out_len = data_rows[row].out_len != 0 ?
		data_rows[row].out_len : strlen(data_rows[row].out);
	size_t rest_len = strlen(data_rows[row].rest);
	test_assert_idx(res->done == data_rows[row].done, (int)row);
	test_assert_idx(res->out_len == out_len &&
			memcmp(res->out, data_rows[row].out, out_len) == 0,
			(int)row);
	test_assert_idx(in_len - res->consumed == rest_len, (int)row);
}

static size_t data_in_len(size_t row)
{
	return data_rows[row].in_len != 0 ? data_rows[row].in_len :
		strlen(data_rows[row].in);
}

static void test_data_whole_and_bytes(void)
{
	for (size_t i = 0; i < sizeof(data_rows) / sizeof(data_rows[0]); i++) {
		const char *in = data_rows[i].in;
		size_t len = data_in_len(i);
		struct lmtp_data_decoder dec = { LMTP_DATA_LINE_START };
		struct data_result res = { .out_len = 0 };

		data_feed(&dec, in, len, &res);
		data_check(i, &res, len);

		memset(&dec, 0, sizeof(dec));
		memset(&res, 0, sizeof(res));
		for (size_t j = 0; j < len; j++) {
			if (!data_feed(&dec, in + j, 1, &res))
				break;
		}
		data_check(i, &res, len);
	}
}

static void test_data_split(void)
{
	for (size_t i = 0; i < sizeof(data_rows) / sizeof(data_rows[0]); i++) {
		const char *in = data_rows[i].in;
		size_t len = data_in_len(i);

		for (size_t split = 0; split <= len; split++) {
			struct lmtp_data_decoder dec = { LMTP_DATA_LINE_START };
			struct data_result res = { .out_len = 0 };

			if (data_feed(&dec, in, split, &res))
				data_feed(&dec, in + split, len - split, &res);
			data_check(i, &res, len);
		}
	}
}

/* A big message: every line dot-stuffed, fed in odd chunk sizes. */
static void test_data_big(void)
{
	size_t lines = 5000, len = 0, pos = 0, out_len = 0;
	char *in = malloc(lines * 6 + 3);
	unsigned char *out = malloc(lines * 6 + 4);
	struct lmtp_data_decoder dec = { LMTP_DATA_LINE_START };
	int ret = 0;

	for (size_t i = 0; i < lines; i++) {
		memcpy(in + len, "..ab\r\n", 6);
		len += 6;
	}
	memcpy(in + len, ".\r\n", 3);
	len += 3;
	while (pos < len && ret == 0) {
		size_t n = len - pos < 977 ? len - pos : 977, o, c;

		ret = lmtp_data_decode(&dec, (unsigned char *)in + pos, n,
				       out + out_len, &o, &c);
		pos += c;
		out_len += o;
	}
	test_assert(ret == 1 && pos == len && out_len == lines * 4);
	test_assert(memcmp(out, ".ab\n.ab\n", 8) == 0);
	free(in);
	free(out);
}

/* The byte-at-a-time decoder the fast path (memchr runs) must match. */
static int ref_decode(enum lmtp_data_state *st, const unsigned char *in,
		      size_t len, unsigned char *out, size_t *out_len_r,
		      size_t *consumed_r)
{
	size_t i, o = 0;

	for (i = 0; i < len && *st != LMTP_DATA_DONE; i++) {
		unsigned char c = in[i];
		bool held_cr = *st == LMTP_DATA_CR || *st == LMTP_DATA_DOT_CR;

		if ((*st == LMTP_DATA_DOT || *st == LMTP_DATA_DOT_CR) &&
		    c == '\n') {
			*st = LMTP_DATA_DONE;
			continue;
		}
		if (*st == LMTP_DATA_LINE_START && c == '.') {
			*st = LMTP_DATA_DOT;
			continue;
		}
		if (held_cr && c != '\n')
			out[o++] = '\r';
		if (*st == LMTP_DATA_DOT && c == '\r') {
			*st = LMTP_DATA_DOT_CR;
		} else if (c == '\r') {
			*st = LMTP_DATA_CR;
		} else {
			out[o++] = c;
			*st = c == '\n' ? LMTP_DATA_LINE_START : LMTP_DATA_MID;
		}
	}
	*out_len_r = o;
	*consumed_r = i;
	return *st == LMTP_DATA_DONE;
}

/* Random texts over {a, '.', CR, LF}, random chunking: same output,
 * consumption and state as the reference. */
static void test_data_random(void)
{
	static const unsigned char alphabet[] = "a.\r\n";
	unsigned char in[300], out1[301], out2[301];
	unsigned seed = 12345;

	for (int row = 0; row < 20000; row++) {
		struct lmtp_data_decoder dec = { LMTP_DATA_LINE_START };
		enum lmtp_data_state ref = LMTP_DATA_LINE_START;
		size_t len, pos = 0;
		int r1 = 0, r2 = 0;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % sizeof(in);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = alphabet[(seed >> 16) % 4];
		}
		while (pos < len && r1 == 0) {
			size_t n, o1, o2, c1, c2;

			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 40;
			if (n > len - pos)
				n = len - pos;
			r1 = lmtp_data_decode(&dec, in + pos, n, out1, &o1,
					      &c1);
			r2 = ref_decode(&ref, in + pos, n, out2, &o2, &c2);
			test_assert_idx(r1 == r2 && o1 == o2 && c1 == c2 &&
					memcmp(out1, out2, o1) == 0 &&
					dec.state == ref, row);
			if (r1 != r2 || c1 != c2)
				break;
			pos += c1;
		}
	}
}

/* Long lines of bare CRs (or no CR at all) decode in linear time. */
static void test_data_linear(void)
{
	size_t len = 4 * 1024 * 1024, o, c;
	unsigned char *in = malloc(len), *out = malloc(len + 1);
	struct lmtp_data_decoder dec = { LMTP_DATA_LINE_START };
	struct timespec t0, t1;
	long ms;

	for (size_t i = 0; i < len; i++)
		in[i] = i % 2 == 0 ? 'a' : '\r';
	clock_gettime(CLOCK_MONOTONIC, &t0);
	lmtp_data_decode(&dec, in, len, out, &o, &c);
	/* the last CR is held back */
	test_assert(c == len && o == len - 1);
	memset(in, 'a', len);
	for (size_t i = 4095; i < len; i += 4096)
		in[i] = '\n';
	lmtp_data_decode(&dec, in, len, out, &o, &c);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000;
	/* plus the held CR */
	test_assert(c == len && o == len + 1);
	/* quadratic would be hours; linear is milliseconds (ASan too) */
	test_assert(ms < 2000);
	free(in);
	free(out);
}

/* ---- Message-ID scanner ---- */

static const struct {
	const char *in;
	const char *msgid;
} hdr_rows[] = {
	{ "Message-ID: <a@b>\nSubject: x\n\nbody\n", "<a@b>" },
	{ "Subject: x\nMessage-Id:\n <folded@x>\n\n", "<folded@x>" },
	{ "Subject: x\n\nMessage-ID: <no@x>\n", "" },
	{ "Message-ID: <a@b>", "<a@b>" },
	{ "message-id   :  <c@d>  \n\n", "<c@d>" },
	{ "Message-ID: <1@x>\nMessage-ID: <2@x>\n\n", "<1@x>" },
	{ "Message-IDX: <1@x>\n\n", "" },
	{ "Message-ID <1@x>\n\n", "" },
	{ "Message-ID:\n\n", "" },
	{ "X: y\n\tMessage-ID: <cont@x>\n\n", "" },
	{ "Message-ID: <a\x01\xff@b>\n\n", "<a@b>" },
	{ "", "" },
};

static void hdr_run(const char *in, size_t len, size_t split,
		    char *msgid, size_t size)
{
	struct lmtp_hdr_scan *scan = malloc(sizeof(*scan));
	char *a = dup_exact(in, split), *b = dup_exact(in + split, len - split);

	lmtp_hdr_scan_init(scan);
	lmtp_hdr_scan_feed(scan, a, split);
	lmtp_hdr_scan_feed(scan, b, len - split);
	lmtp_hdr_scan_finish(scan);
	snprintf(msgid, size, "%s", scan->msgid);
	free(a);
	free(b);
	free(scan);
}

static void test_hdr_scan(void)
{
	char msgid[LMTP_MSGID_MAX + 1];

	for (size_t i = 0; i < sizeof(hdr_rows) / sizeof(hdr_rows[0]); i++) {
		size_t len = strlen(hdr_rows[i].in);

		for (size_t split = 0; split <= len; split++) {
			hdr_run(hdr_rows[i].in, len, split, msgid,
				sizeof(msgid));
			test_assert_streq_idx(msgid, hdr_rows[i].msgid,
					      (int)i);
		}
	}
}

static void test_hdr_scan_long(void)
{
	/* a field over LMTP_HDR_FIELD_MAX is skipped, the next one found */
	size_t big = LMTP_HDR_FIELD_MAX * 3;
	char *in = malloc(big + 64), msgid[LMTP_MSGID_MAX + 1];
	size_t len;

	memcpy(in, "X-Long: ", 8);
	memset(in + 8, 'a', big);
	len = 8 + big;
	len += (size_t)snprintf(in + len, 64, "\nMessage-ID: <z@y>\n\n");
	hdr_run(in, len, len / 2, msgid, sizeof(msgid));
	test_assert_streq(msgid, "<z@y>");
	/* a Message-ID longer than the field buffer is not reported */
	memcpy(in, "Message-ID: ", 12);
	memset(in + 12, 'a', big);
	in[12 + big] = '\n';
	hdr_run(in, 13 + big, 5, msgid, sizeof(msgid));
	test_assert_streq(msgid, "");
	free(in);
}

int main(void)
{
	test_run("cmd_parse", test_cmd_parse);
	test_run("path_parse", test_path_parse);
	test_run("path_params", test_path_params);
	test_run("path_limits", test_path_limits);
	test_run("data_whole_and_bytes", test_data_whole_and_bytes);
	test_run("data_split", test_data_split);
	test_run("data_big", test_data_big);
	test_run("data_random", test_data_random);
	test_run("data_linear", test_data_linear);
	test_run("hdr_scan", test_hdr_scan);
	test_run("hdr_scan_long", test_hdr_scan_long);
	return test_done("lmtp");
}
