/* test_imap_parser.c: the incremental IMAP command parser. Each row is fed
 * whole, byte by byte and split at every point; the event transcript must
 * be the same every time and equal the expected one. Transcript events:
 *   DONE     "<tag> <NAME> <args>|" (atoms bare, NIL as NIL, quoted as
 *            "..", literals {text}, literal8 ~{text}, streamed ^{size},
 *            lists (..))
 *   LITERAL  "L<size>[+][8]|" (then the row's policy decides)
 *   stream   "S<bytes>|" once the last chunk arrived
 *   ERROR    "E<code>:<tag or *>[!fatal]|"
 * The transcript ends with "." if the parser is idle afterwards. */
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "test.h"

enum policy {
	POL_MEM,	/* accept in memory (abort if over the limit) */
	POL_STREAM,	/* stream every literal */
	POL_REFUSE,	/* abort the command at every literal */
	POL_STREAM8,	/* stream literal8, memory for the rest */
};

enum setmode { SET_POST, SET_PRE, SET_MINUS, SET_NOSYNC, SET_UTF8,
	       SET_TINY };

struct row {
	const char *in;
	size_t len;
	enum policy pol;
	enum setmode set;
	const char *out;
};

struct out {
	char buf[8192];
	size_t len;
	char stream[4096];
	size_t stream_len;
};

static void out_add(struct out *o, const char *s, size_t len)
{
	if (o->len + len >= sizeof(o->buf))
		len = sizeof(o->buf) - 1 - o->len;
	memcpy(o->buf + o->len, s, len);
	o->len += len;
	o->buf[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
	out_add(o, s, strlen(s));
}

/* NUL bytes shown as "^@" */
static void out_bytes(struct out *o, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0')
			out_str(o, "^@");
		else
			out_add(o, s + i, 1);
	}
}

static void out_args(struct out *o, const struct imap_arg *args, size_t n)
{
	char num[32];
	size_t i;

	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		if (i > 0 && !(a->type == IMAP_ARG_ATOM && a->str[0] == ']' &&
			       args[i - 1].type == IMAP_ARG_LIST))
			out_str(o, " ");
		switch (a->type) {
		case IMAP_ARG_ATOM:
			out_str(o, a->str);
			break;
		case IMAP_ARG_NIL:
			out_str(o, "NIL");
			break;
		case IMAP_ARG_QUOTED:
			out_str(o, "\"");
			out_add(o, a->str, a->len);
			out_str(o, "\"");
			break;
		case IMAP_ARG_LITERAL:
			if (a->is_streamed) {
				snprintf(num, sizeof(num), "^%s{%llu}",
					 a->is_literal8 ? "~" : "",
					 (unsigned long long)a->len);
				out_str(o, num);
				break;
			}
			out_str(o, a->is_literal8 ? "~{" : "{");
			out_bytes(o, a->str, a->len);
			out_str(o, "}");
			break;
		case IMAP_ARG_LIST:
			out_str(o, "(");
			out_args(o, a->list, a->list_count);
			out_str(o, ")");
			break;
		}
	}
}

static void settings_for(enum setmode mode, struct imap_parser_settings *s)
{
	imap_parser_settings_default(s, mode != SET_PRE);
	switch (mode) {
	case SET_POST:
	case SET_PRE:
		break;
	case SET_MINUS:
		s->literal_minus = true;
		break;
	case SET_NOSYNC:
		s->allow_nonsync = false;
		break;
	case SET_UTF8:
		s->utf8 = true;
		break;
	case SET_TINY:
		s->max_line_length = 20;
		s->max_list_depth = 2;
		s->max_args = 4;
		s->max_literal_size = 10;
		break;
	}
}

static void on_literal(struct imap_parser *p, enum policy pol,
		       struct out *o)
{
	const struct imap_literal_info *li = imap_parser_literal_info(p);
	char buf[64];
	bool stream = pol == POL_STREAM ||
		(pol == POL_STREAM8 && li->is_literal8);

	snprintf(buf, sizeof(buf), "L%llu%s%s|", (unsigned long long)li->size,
		 li->is_sync ? "" : "+", li->is_literal8 ? "8" : "");
	out_str(o, buf);
	if (pol == POL_REFUSE) {
		imap_parser_abort_command(p);
	} else if (stream) {
		o->stream_len = 0;
		test_assert(imap_parser_literal_accept(p,
				IMAP_LITERAL_STREAM) == 0);
	} else if (imap_parser_literal_accept(p, IMAP_LITERAL_MEMORY) < 0) {
		out_str(o, "TOOBIG|");
		imap_parser_abort_command(p);
	}
}

static void on_chunk(struct imap_parser *p, struct out *o)
{
	const unsigned char *data;
	size_t size;
	bool last;

	imap_parser_literal_chunk(p, &data, &size, &last);
	if (o->stream_len + size < sizeof(o->stream)) {
		memcpy(o->stream + o->stream_len, data, size);
		o->stream_len += size;
	}
	if (last) {
		out_str(o, "S");
		out_add(o, o->stream, o->stream_len);
		out_str(o, "|");
		o->stream_len = 0;
	}
}

/* Returns false after a fatal error. */
static bool on_result(struct imap_parser *p, int ret, enum policy pol,
		      struct out *o)
{
	const struct imap_command *cmd;
	const struct imap_parse_error *err;
	char buf[128];

	switch (ret) {
	case IMAP_PARSE_DONE:
		cmd = imap_parser_command(p);
		out_str(o, cmd->tag);
		out_str(o, " ");
		out_str(o, cmd->name);
		if (cmd->args_count > 0)
			out_str(o, " ");
		out_args(o, cmd->args, cmd->args_count);
		out_str(o, "|");
		break;
	case IMAP_PARSE_LITERAL:
		on_literal(p, pol, o);
		break;
	case IMAP_PARSE_LITERAL_DATA:
		on_chunk(p, o);
		break;
	case IMAP_PARSE_ERROR:
		err = imap_parser_error(p);
		snprintf(buf, sizeof(buf), "E%d:%s%s|", (int)err->code,
			 err->tag != NULL ? err->tag : "*",
			 err->is_fatal ? "!" : "");
		out_str(o, buf);
		return !err->is_fatal;
	}
	return true;
}

/* Feeds in[0..len) in pieces of at most piece bytes, except that split
 * (if nonzero) cuts once at that offset instead. */
static void run(const struct row *r, size_t piece, size_t split,
		struct out *o)
{
	struct imap_parser_settings set;
	struct imap_parser *p;
	size_t len = r->len, pos = 0, end, used;
	int ret;

	memset(o, 0, sizeof(*o));
	settings_for(r->set, &set);
	p = imap_parser_create(&set);
	while (pos < len) {
		end = split != 0 ? (pos < split ? split : len) :
			(len - pos > piece ? pos + piece : len);
		for (;;) {
			ret = imap_parser_feed(p, r->in + pos, end - pos,
					       &used);
			pos += used;
			if (!on_result(p, ret, r->pol, o))
				goto out;
			if (ret == IMAP_PARSE_NEED_MORE)
				break;
		}
	}
	if (imap_parser_is_idle(p))
		out_str(o, ".");
out:
	imap_parser_destroy(&p);
}

#define ROW(in, pol, set, out) { in, sizeof(in) - 1, pol, set, out }

static const struct row rows[] = {
	/* 0: basics */
	ROW("a1 NOOP\r\n", POL_MEM, SET_POST, "a1 NOOP|."),
	ROW("a1 noop\n", POL_MEM, SET_POST, "a1 NOOP|."),
	ROW("a1 LOGIN fred \"p\\\"w\\\\d\"\r\n", POL_MEM, SET_POST,
	  "a1 LOGIN fred \"p\"w\\d\"|."),
	ROW("x SELECT nil\r\ny SELECT \"\"\r\n", POL_MEM, SET_POST,
	  "x SELECT NIL|y SELECT \"\"|."),
	ROW("a STORE 1:*,5 +FLAGS.SILENT (\\Seen \\Flagged $Label)\r\n",
	  POL_MEM, SET_POST,
	  "a STORE 1:*,5 +FLAGS.SILENT (\\Seen \\Flagged $Label)|."),
	/* 5: nesting and empty lists */
	ROW("a X (a (b (c)) () d)\r\n", POL_MEM, SET_POST,
	  "a X (a (b (c)) () d)|."),
	ROW("a LIST \"\" %/*\r\n", POL_MEM, SET_POST, "a LIST \"\" %/*|."),
	ROW("a FETCH 1 (BODY[HEADER.FIELDS (From To)]<0.100> FLAGS)\r\n",
	  POL_MEM, SET_POST,
	  "a FETCH 1 (BODY[HEADER.FIELDS (From To)]<0.100> FLAGS)|."),
	ROW("a FETCH 1 BODY.PEEK[1.HEADER.FIELDS.NOT (X-A)]\r\n", POL_MEM,
	  SET_POST, "a FETCH 1 BODY.PEEK[1.HEADER.FIELDS.NOT (X-A)]|."),
	ROW("a FETCH 1:2 (BODY[] BODY[TEXT]<5.10> RFC822.SIZE)\r\n", POL_MEM,
	  SET_POST, "a FETCH 1:2 (BODY[] BODY[TEXT]<5.10> RFC822.SIZE)|."),
	/* 10: ']' right after a list only after a section atom */
	ROW("a X (b)]\r\n", POL_MEM, SET_POST, "E4:a|."),
	ROW("a RENAME a[b c\r\n", POL_MEM, SET_POST, "a RENAME a[b c|."),
	/* literals */
	ROW("a LOGIN {4}\r\nfred {3}\r\nx y\r\n", POL_MEM, SET_POST,
	  "L4|L3|a LOGIN {fred} {x y}|."),
	ROW("A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n", POL_MEM,
	  SET_POST, "L11+|L7+|A001 LOGIN {FRED FOOBAR} {fat man}|."),
	ROW("a X {0}\r\n\r\n", POL_MEM, SET_POST, "L0|a X {}|."),
	/* 15: literal8 and streaming (MULTIAPPEND) */
	ROW("a APPEND box (\\Seen) ~{3}\r\nx\0y\r\n", POL_MEM, SET_POST,
	  "L38|a APPEND box (\\Seen) ~{x^@y}|."),
	ROW("a APPEND box (\\Seen) \" 7-Jul-1996 02:44:25 -0700\" {5+}\r\n"
	  "hello (\\Draft) {3}\r\nabc\r\n", POL_STREAM, SET_POST,
	  "L5+|Shello|L3|Sabc|a APPEND box (\\Seen) \" 7-Jul-1996 "
	  "02:44:25 -0700\" ^{5} (\\Draft) ^{3}|."),
	ROW("a APPEND b {0+}\r\n\r\n", POL_STREAM, SET_POST,
	  "L0+|S|a APPEND b ^{0}|."),
	ROW("a APPEND b ~{2+}\r\nxy {1+}\r\nz\r\n", POL_STREAM8, SET_POST,
	  "L2+8|Sxy|L1+|a APPEND b ^~{2} {z}|."),
	/* refusing: a sync literal isn't sent, a non-sync one is skipped */
	ROW("a APPEND b {5}\r\nb NOOP\r\n", POL_REFUSE, SET_POST,
	  "L5|b NOOP|."),
	/* 20 */
	ROW("a APPEND b {5+}\r\nhello x {2+}\r\nyy\r\nb NOOP\r\n", POL_REFUSE,
	  SET_POST, "L5+|b NOOP|."),
	ROW("a X {11}\r\nhello world\r\n", POL_MEM, SET_TINY,
	  "L11|TOOBIG|hello WORLD|."),
	ROW("a X {11+}\r\nhello world\r\nb Y\r\n", POL_MEM, SET_TINY,
	  "L11+|TOOBIG|b Y|."),
	/* LITERAL- and no non-sync at all */
	ROW("a X {4097+}\r\n", POL_MEM, SET_MINUS, "E10:a|"),
	ROW("a X {4096+}\r\nb\r\n", POL_MEM, SET_MINUS, "L4096+|"),
	/* 25 */
	ROW("a X {3+}\r\nabc {1}\r\nb NOOP\r\n", POL_MEM, SET_NOSYNC,
	  "E9:a|b NOOP|."),
	ROW("a X {2+}\r\nab (\r\nc Y\r\n", POL_MEM, SET_POST,
	  "L2+|E4:a|c Y|."),
	/* lying literal length: fewer bytes than announced swallow the
	 * next command */
	ROW("a LOGIN {10}\r\nfred\r\nb NOOP\r\n", POL_MEM, SET_POST,
	  "L10|E4:a|."),
	/* malformed literal headers are fatal */
	ROW("a X {12x}\r\nb NOOP\r\n", POL_MEM, SET_POST, "E8:a!|"),
	ROW("a X {99999999999999999999+}\r\nb NOOP\r\n", POL_MEM, SET_POST,
	  "E8:a!|"),
	/* 30 */
	ROW("a X {5}x\r\n", POL_MEM, SET_POST, "E8:a!|"),
	ROW("a X {}\r\n", POL_MEM, SET_POST, "E8:a!|"),
	/* unbalanced parentheses */
	ROW("a X (b c\r\nd NOOP\r\n", POL_MEM, SET_POST, "E4:a|d NOOP|."),
	ROW("a X b)\r\nd NOOP\r\n", POL_MEM, SET_POST, "E4:a|d NOOP|."),
	ROW("a X ((b) c))\r\n", POL_MEM, SET_POST, "E4:a|."),
	/* 35: nesting limit */
	ROW("a X ((b))\r\nc Y (((d)))\r\ne Z\r\n", POL_MEM, SET_TINY,
	  "a X ((b))|E6:c|e Z|."),
	ROW("a X (b)\r\n", POL_MEM, SET_PRE, "a X (b)|."),
	ROW("a X ((b))\r\nc Y\r\n", POL_MEM, SET_PRE, "E6:a|c Y|."),
	/* too many args */
	ROW("a X 1 2 3 4\r\nb X (1 2) 3\r\nc X 1 2 3 4 5\r\n", POL_MEM,
	  SET_TINY, "a X 1 2 3 4|b X (1 2) 3|E7:c|."),
	/* empty lines, garbage, tags */
	ROW("\r\n\na NOOP\r\n", POL_MEM, SET_POST, "E1:*|E1:*|a NOOP|."),
	/* 40 */
	ROW("a\r\n", POL_MEM, SET_POST, "E3:a|."),
	ROW("a \r\n", POL_MEM, SET_POST, "E3:a|."),
	ROW(" a NOOP\r\n", POL_MEM, SET_POST, "E2:*|."),
	ROW("a+b NOOP\r\nc] NOOP\r\n", POL_MEM, SET_POST,
	  "E2:*|c] NOOP|."),
	ROW("{5+}\r\nhello\r\nb NOOP\r\n", POL_MEM, SET_POST, "E2:*|b NOOP|."),
	/* 45 */
	ROW("*tag NOOP\r\n%x NOOP\r\n\"q\" NOOP\r\n(x NOOP\r\n", POL_MEM,
	  SET_POST, "E2:*|E2:*|E2:*|E2:*|."),
	ROW("t!#&'-.:;<=>?@^_`|~ NOOP\r\n", POL_MEM, SET_POST,
	  "t!#&'-.:;<=>?@^_`|~ NOOP|."),
	ROW("a NO*OP\r\na NO]OP\r\n", POL_MEM, SET_POST, "E3:a|E3:a|."),
	ROW("a NOOP \r\na NOOP  x\r\n", POL_MEM, SET_POST, "E4:a|E4:a|."),
	ROW("\x01\x02\xff garbage\r\nb NOOP\r\n", POL_MEM, SET_POST,
	  "E2:*|b NOOP|."),
	/* 50: quoted strings */
	ROW("a X \"a\rb\" c\r\nd Y\r\n", POL_MEM, SET_POST, "E4:a|d Y|."),
	ROW("a X \"unterminated\r\nd Y\r\n", POL_MEM, SET_POST,
	  "E4:a|d Y|."),
	ROW("a X \"\\n\"\r\n", POL_MEM, SET_POST, "E4:a|."),
	ROW("a X \"caf\xc3\xa9\"\r\n", POL_MEM, SET_POST, "E4:a|."),
	ROW("a X \"caf\xc3\xa9\"\r\n", POL_MEM, SET_UTF8,
	  "a X \"caf\xc3\xa9\"|."),
	/* 55 */
	ROW("a X \"caf\xc3\"\r\nb X \"\xc0\xaf\"\r\n", POL_MEM, SET_UTF8,
	  "E4:a|E4:b|."),
	ROW("a X \"a\"b\r\n", POL_MEM, SET_POST, "E4:a|."),
	ROW("a X a\"b\r\n", POL_MEM, SET_POST, "E4:a|."),
	ROW("a X ab{3}\r\n", POL_MEM, SET_POST, "E4:a|."),
	/* atoms with 8-bit are refused; the bad line's trailing {n+} is
	 * still honoured */
	ROW("a X caf\xc3\xa9 {3+}\r\nb Y\r\nc Z\r\n", POL_MEM, SET_UTF8,
	  "E4:a|c Z|."),
	/* 60: overlong lines, then resync */
	ROW("a X 123456789012345678901234567890\r\nb NOOP\r\n", POL_MEM,
	  SET_TINY, "E5:a|b NOOP|."),
	ROW("abcdefghijklmnopqrstuvwxyz NOOP\r\nb NOOP\r\n", POL_MEM,
	  SET_TINY, "E5:*|b NOOP|."),
	ROW("a X 123456789012345678901234 {6+}\r\nb NOOP\r\nd NOOP\r\n",
	  POL_MEM, SET_TINY, "E5:a|d NOOP|."),
	/* literal inside a list, '~' atoms, bare CR */
	ROW("a X (b {2}\r\ncd e)\r\n", POL_MEM, SET_POST,
	  "L2|a X (b {cd} e)|."),
	ROW("a X ~ ~a (~)\r\n", POL_MEM, SET_POST, "a X ~ ~a (~)|."),
	/* 65 */
	ROW("a X\rb\r\nc Y\r\n", POL_MEM, SET_POST, "E4:a|c Y|."),
	ROW("a X b\rc\r\nd Y\r\n", POL_MEM, SET_POST, "E4:a|d Y|."),
	ROW("a X {3}\r\na\0b\r\n", POL_MEM, SET_POST, "L3|E4:a|."),
	ROW("a UID FETCH 1:* (UID FLAGS)\r\n", POL_MEM, SET_POST,
	  "a UID FETCH 1:* (UID FLAGS)|."),
	/* sync literal at the end of a discarded line ends the command */
	ROW("a X ( {3}\r\nb Y\r\n", POL_MEM, SET_POST, "E4:a|b Y|."),
	/* 70 */
	ROW("a X", POL_MEM, SET_POST, ""),
	ROW("a X {3}\r\nab", POL_MEM, SET_POST, "L3|"),
	/* huge announced sizes: refused, the client sends nothing for a
	 * sync literal; a non-sync one is skipped */
	ROW("a APPEND b {4294967296}\r\nc NOOP\r\n", POL_MEM, SET_POST,
	    "L4294967296|TOOBIG|c NOOP|."),
	ROW("a APPEND b {9223372036854775807+}\r\nxx", POL_MEM, SET_POST,
	    "L9223372036854775807+|TOOBIG|"),
	ROW("a APPEND b {9223372036854775808}\r\n", POL_MEM, SET_POST,
	    "E8:a!|"),
	/* 75: pre-login: depth 1, small literals */
	ROW("a LOGIN {2000+}\r\n", POL_MEM, SET_PRE, "L2000+|TOOBIG|"),
	ROW("a AUTHENTICATE PLAIN\r\n", POL_MEM, SET_PRE,
	    "a AUTHENTICATE PLAIN|."),
	/* 77: literal8 (RFC 3516) and APPEND's UTF8 data (RFC 6855 4) */
	ROW("a APPEND b UTF8 (~{3+}\r\nxyz) UTF8 (~{2}\r\nab)\r\n",
	    POL_STREAM8, SET_POST,
	    "L3+8|Sxyz|L28|Sab|a APPEND b UTF8 (^~{3}) UTF8 (^~{2})|."),
	ROW("a X (~{2}\r\n\0\0 ~{0}\r\n)\r\n", POL_MEM, SET_POST,
	    "L28|L08|a X (~{^@^@} ~{})|."),
	ROW("a X ~{11}\r\nhello world\r\n", POL_MEM, SET_TINY,
	    "L118|TOOBIG|hello WORLD|."),
	/* 80 */
	ROW("a X ~{11+}\r\nhello\0world\r\nb Y\r\n", POL_MEM, SET_TINY,
	    "L11+8|TOOBIG|b Y|."),
	ROW("a X ) ~{3+}\r\na\0c\r\nb Y\r\n", POL_MEM, SET_POST,
	    "E4:a|b Y|."),
	ROW("a X ~{3x}\r\nb Y\r\n", POL_MEM, SET_POST, "E8:a!|"),
	ROW("a X ~{3+}\r\nabc\r\n", POL_MEM, SET_NOSYNC, "E9:a|."),
	ROW("a X ~ {1}\r\n\0\r\n", POL_MEM, SET_POST, "L1|E4:a|."),
};

static void test_rows(void)
{
	struct out whole, other;
	size_t i, k, len;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		len = rows[i].len;
		run(&rows[i], len + 1, 0, &whole);
		test_assert_streq_idx(whole.buf, rows[i].out, (int)i);
		run(&rows[i], 1, 0, &other);
		test_assert_streq_idx(other.buf, whole.buf, (int)i);
		for (k = 1; k < len; k++) {
			run(&rows[i], len + 1, k, &other);
			if (strcmp(other.buf, whole.buf) != 0) {
				printf("  split at %zu\n", k);
				test_assert_streq_idx(other.buf, whole.buf,
						      (int)i);
				break;
			}
		}
	}
}

/* The evbuffer interface with input spread over many segments, chunk
 * views staying valid until the next call, and the stop after LF. */
static void test_evbuffer(void)
{
	static const char *parts[] = {
		"a APP", "END box {6+}\r\nhel", "lo!", " {2}\r\n", "xy\r\n",
		"IDLE-DONE\r\n",
	};
	struct imap_parser_settings set;
	struct imap_parser *p;
	struct evbuffer *in = evbuffer_new();
	char streamed[32] = "", rest[32];
	const unsigned char *data;
	size_t i, size, n = 0;
	bool last;
	int ret, lits = 0;

	imap_parser_settings_default(&set, true);
	p = imap_parser_create(&set);
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		evbuffer_add(in, parts[i], strlen(parts[i]));
	while ((ret = imap_parser_feed_evbuffer(p, in)) != IMAP_PARSE_DONE) {
		test_assert(ret > 0);
		if (ret <= 0)
			break;
		if (ret == IMAP_PARSE_LITERAL) {
			lits++;
			test_assert(imap_parser_partial(p)->args_count ==
				    (lits == 1 ? 1u : 2u));
			imap_parser_literal_accept(p, lits == 1 ?
				IMAP_LITERAL_STREAM : IMAP_LITERAL_MEMORY);
		} else {
			imap_parser_literal_chunk(p, &data, &size, &last);
			memcpy(streamed + n, data, size);
			n += size;
		}
	}
	test_assert_streq(streamed, "hello!");
	test_assert(imap_parser_command(p)->args_count == 3);
	test_assert_streq(imap_parser_command(p)->args[2].str, "xy");
	/* the rest stays in the buffer for the session */
	i = evbuffer_remove(in, rest, sizeof(rest) - 1);
	rest[i] = '\0';
	test_assert_streq(rest, "IDLE-DONE\r\n");
	test_assert(imap_parser_feed_evbuffer(p, in) == IMAP_PARSE_NEED_MORE);
	test_assert(imap_parser_is_idle(p));
	imap_parser_destroy(&p);
	evbuffer_free(in);
}

/* Aborting a streamed literal midway (e.g. disk full) skips the rest of
 * the literal and of its line; take_command keeps a command alive. */
static void test_abort_and_take(void)
{
	static const char in[] = "a APPEND b {10}\r\n0123456789 x\r\n"
		"b NOOP\r\n";
	struct imap_parser_settings set;
	struct imap_parser *p;
	struct imap_command *cmd;
	const unsigned char *data;
	size_t used, pos = 0, size;
	bool last;
	int ret;

	imap_parser_settings_default(&set, true);
	p = imap_parser_create(&set);
	ret = imap_parser_feed(p, in, 20, &used);
	test_assert(ret == IMAP_PARSE_LITERAL);
	pos += used;
	test_assert(imap_parser_literal_accept(p, IMAP_LITERAL_STREAM) == 0);
	ret = imap_parser_feed(p, in + pos, 20 - pos, &used);
	pos += used;
	test_assert(ret == IMAP_PARSE_LITERAL_DATA);
	imap_parser_literal_chunk(p, &data, &size, &last);
	test_assert(size == 3 && !last && memcmp(data, "012", 3) == 0);
	imap_parser_abort_command(p);
	ret = imap_parser_feed(p, in + pos, sizeof(in) - 1 - pos, &used);
	test_assert(ret == IMAP_PARSE_DONE);
	cmd = imap_parser_take_command(p);
	test_assert_streq(cmd->tag, "b");
	test_assert(imap_parser_feed(p, "", 0, &used) ==
		    IMAP_PARSE_NEED_MORE);
	imap_parser_destroy(&p);
	test_assert_streq(cmd->name, "NOOP");
	imap_command_free(&cmd);
	test_assert(cmd == NULL);
}

static void test_accessors(void)
{
	static const char in[] = "t X a]b \"q\" NIL %a* \\Seen (x) {1}\r\n"
		"L\r\n";
	struct imap_parser_settings set;
	struct imap_parser *p;
	const struct imap_command *cmd;
	const struct imap_arg *list;
	const char *s;
	size_t used, len, count;

	imap_parser_settings_default(&set, true);
	p = imap_parser_create(&set);
	test_assert(imap_parser_feed(p, in, sizeof(in) - 1, &used) ==
		    IMAP_PARSE_LITERAL);
	imap_parser_literal_accept(p, IMAP_LITERAL_MEMORY);
	test_assert(imap_parser_feed(p, in + used, sizeof(in) - 1 - used,
				     &used) == IMAP_PARSE_DONE);
	cmd = imap_parser_command(p);
	test_assert(cmd->args_count == 7);
	test_assert(!imap_arg_get_atom(&cmd->args[0], &s));
	test_assert(imap_arg_get_astring(&cmd->args[0], &s, &len) &&
		    len == 3);
	test_assert(imap_arg_get_astring(&cmd->args[1], &s, NULL));
	test_assert_streq(s, "q");
	test_assert(imap_arg_get_astring(&cmd->args[2], &s, NULL));
	test_assert_streq(s, "NIL");
	test_assert(imap_arg_get_nstring(&cmd->args[2], &s, NULL) &&
		    s == NULL);
	test_assert(!imap_arg_get_astring(&cmd->args[3], &s, NULL));
	test_assert(imap_arg_get_list_mailbox(&cmd->args[3], &s, NULL));
	test_assert(!imap_arg_get_atom(&cmd->args[4], &s));
	test_assert(imap_arg_get_list(&cmd->args[5], &list, &count) &&
		    count == 1 && imap_arg_atom_equals(&list[0], "X"));
	test_assert(imap_arg_get_string(&cmd->args[6], &s, &len) &&
		    len == 1);
	test_assert(!imap_arg_get_string(&cmd->args[0], &s, &len));
	test_assert(!imap_arg_get_list(NULL, &list, &count));
	imap_parser_destroy(&p);

	/* a literal8 (may hold NUL) is not a string */
	p = imap_parser_create(&set);
	test_assert(imap_parser_feed(p, "t X ~{3}\r\n", 10, &used) ==
		    IMAP_PARSE_LITERAL);
	imap_parser_literal_accept(p, IMAP_LITERAL_MEMORY);
	test_assert(imap_parser_feed(p, "a\0b\r\n", 5, &used) ==
		    IMAP_PARSE_DONE);
	cmd = imap_parser_command(p);
	test_assert(cmd->args_count == 1 && cmd->args[0].is_literal8 &&
		    cmd->args[0].len == 3);
	test_assert(!imap_arg_get_string(&cmd->args[0], &s, &len));
	test_assert(!imap_arg_get_astring(&cmd->args[0], &s, &len));
	test_assert(!imap_arg_get_nstring(&cmd->args[0], &s, &len));
	test_assert(!imap_arg_get_list_mailbox(&cmd->args[0], &s, &len));
	imap_parser_destroy(&p);
}

static void test_char_classes(void)
{
	test_assert(imap_char_is_atom('a') && !imap_char_is_atom(']'));
	test_assert(imap_char_is_astring(']') && !imap_char_is_astring('%'));
	test_assert(!imap_char_is_tag('+') && imap_char_is_tag(']'));
	test_assert(imap_char_is_list('*') && imap_char_is_list('%'));
	test_assert(!imap_char_is_atom(0x80) && !imap_char_is_atom(0x7f));
	test_assert(!imap_char_is_atom('\\') && !imap_char_is_atom('"'));
}

int main(void)
{
	test_run("parser rows", test_rows);
	test_run("parser evbuffer", test_evbuffer);
	test_run("parser abort/take", test_abort_and_take);
	test_run("parser accessors", test_accessors);
	test_run("char classes", test_char_classes);
	return test_done("imap_parser");
}
