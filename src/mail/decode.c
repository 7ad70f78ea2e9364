/* decode.c: streaming base64 and quoted-printable decoders (decode.h).
 * Every input byte is emitted at most once, which bounds the output by
 * the input plus what was held back from earlier chunks. */
#include "mail/decode.h"
#include "lib/strnum.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

enum qp_state {
	QP_TEXT,
	QP_EQ,		/* "=" seen */
	QP_EQ1,		/* "=X" seen, X in held[0] */
	QP_SOFT,	/* "=" then white space: soft line break expected */
};

/* 1 + the value (0..63) of the base64 alphabet (RFC 2045 table 1), 65
 * for '=', 0 otherwise. */
static const unsigned char b64_value[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27,
	['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47,
	['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52,
	['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
	['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62,
	['+'] = 63, ['/'] = 64, ['='] = 65,
};


static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static size_t trim_len(const char *value, size_t len, size_t *start_r)
{
	size_t s = 0;

	while (s < len && (is_wsp(value[s]) || value[s] == '\r' ||
			   value[s] == '\n'))
		s++;
	while (len > s && (is_wsp(value[len - 1]) || value[len - 1] == '\r' ||
			   value[len - 1] == '\n'))
		len--;
	*start_r = s;
	return len - s;
}

/* The mechanism token of a Content-Transfer-Encoding value. */
static const char *cte_token(const char *value, size_t len, size_t *n_r)
{
	size_t start, n;

	n = trim_len(value, len, &start);
	value += start;
	/* a comment after the token: "base64 (foo)" */
	for (size_t i = 0; i < n; i++) {
		if (is_wsp(value[i]) || value[i] == '(' || value[i] == ';') {
			n = i;
			break;
		}
	}
	*n_r = n;
	return value;
}

static bool token_is(const char *tok, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(tok, name, n) == 0;
}

enum decode_type decode_type_parse(const char *value, size_t len)
{
	enum decode_type type;

	return decode_type_parse_known(value, len, &type) < 0 ?
		DECODE_NONE : type;
}

int decode_type_parse_known(const char *value, size_t len,
			    enum decode_type *type_r)
{
	const char *tok;
	size_t n;

	*type_r = DECODE_NONE;
	if (value == NULL)
		return 0;	/* RFC 2045 6.1: the default is 7bit */
	tok = cte_token(value, len, &n);
	if (token_is(tok, n, "base64"))
		*type_r = DECODE_BASE64;
	else if (token_is(tok, n, "quoted-printable"))
		*type_r = DECODE_QP;
	else if (n > 0 &&	/* an empty value: taken as the default */
		 !token_is(tok, n, "7bit") && !token_is(tok, n, "8bit") &&
		 !token_is(tok, n, "binary"))
		return -1;
	return 0;
}

void decode_init(struct decode_state *st, enum decode_type type)
{
	memset(st, 0, sizeof(*st));
	st->type = type;
}

static size_t b64_feed(struct decode_state *st, const unsigned char *in,
		       size_t len, unsigned char *out)
{
	unsigned bits = st->bits, nbits = st->nbits;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned v = b64_value[in[i]];

		if (v == 0)
			continue;
		v--;
		if (v < 64) {
			bits = ((bits << 6) | v) & 0x3fff;
			nbits += 6;
			if (nbits >= 8) {
				nbits -= 8;
				out[o++] = (unsigned char)(bits >> nbits);
			}
		} else if (v == 64) {
			/* padding ends a quantum; a partial byte is dropped
			 * and decoding restarts (concatenated encodings) */
			bits = nbits = 0;
		}
	}
	st->bits = bits;
	st->nbits = nbits;
	return o;
}

static size_t qp_flush_ws(struct decode_state *st, unsigned char *out)
{
	size_t n = st->ws_len;

	memcpy(out, st->ws, n);
	st->ws_len = 0;
	return n;
}

/* One byte in QP_TEXT. */
static size_t qp_text(struct decode_state *st, unsigned char c,
		      unsigned char *out)
{
	size_t o = 0;

	if (is_wsp(c) || c == '\r') {
		if (st->ws_len == DECODE_QP_WS_MAX)
			o = qp_flush_ws(st, out);
		st->ws[st->ws_len++] = c;
		return o;
	}
	if (c == '\n') {
		/* RFC 2045 6.7 rule 3: trailing white space is dropped */
		if (st->ws_len > 0 && st->ws[st->ws_len - 1] == '\r')
			out[o++] = '\r';
		st->ws_len = 0;
		out[o++] = '\n';
		return o;
	}
	o = qp_flush_ws(st, out);
	if (c == '=')
		st->state = QP_EQ;
	else
		out[o++] = c;
	return o;
}

static size_t qp_byte(struct decode_state *st, unsigned char c,
		      unsigned char *out)
{
	int hi, lo;
	size_t o = 0;

	switch ((enum qp_state)st->state) {
	case QP_TEXT:
		return qp_text(st, c, out);
	case QP_EQ:
		if (hex_digit_value((unsigned char)c) >= 0) {
			st->held[0] = c;
			st->state = QP_EQ1;
			return 0;
		}
		if (c == '\n') {		/* soft line break */
			st->state = QP_TEXT;
			return 0;
		}
		if (is_wsp(c) || c == '\r') {
			st->state = QP_SOFT;
			return 0;
		}
		out[o++] = '=';
		break;
	case QP_EQ1:
		hi = hex_digit_value((unsigned char)st->held[0]);
		lo = hex_digit_value((unsigned char)c);
		st->state = QP_TEXT;
		if (lo >= 0) {
			out[0] = (unsigned char)(hi << 4 | lo);
			return 1;
		}
		out[o++] = '=';
		out[o++] = st->held[0];
		break;
	case QP_SOFT:
		if (is_wsp(c) || c == '\r')
			return 0;
		st->state = QP_TEXT;
		if (c == '\n')
			return 0;
		/* "= x": not a soft break after all */
		out[o++] = '=';
		out[o++] = ' ';
		break;
	}
	st->state = QP_TEXT;
	return o + qp_text(st, c, out + o);
}

size_t decode_feed(struct decode_state *st, const unsigned char *in,
		   size_t len, unsigned char *out)
{
	size_t o = 0;

	switch (st->type) {
	case DECODE_NONE:
		memcpy(out, in, len);
		return len;
	case DECODE_BASE64:
		return b64_feed(st, in, len, out);
	case DECODE_QP:
		for (size_t i = 0; i < len; i++) {
			unsigned char c = in[i];

			/* fast path: plain text bytes */
			if (st->state == QP_TEXT && st->ws_len == 0 &&
			    c > ' ' && c != '=') {
				out[o++] = c;
				continue;
			}
			o += qp_byte(st, c, out + o);
		}
		return o;
	}
	return 0;
}

size_t decode_finish(struct decode_state *st, unsigned char *out)
{
	size_t o = 0;

	if (st->type == DECODE_QP) {
		/* trailing white space at the end is dropped (rule 3) */
		if (st->state == QP_EQ1) {
			out[o++] = '=';
			out[o++] = st->held[0];
		} else if (st->state == QP_EQ) {
			out[o++] = '=';
		}
	}
	decode_init(st, st->type);
	return o;
}
