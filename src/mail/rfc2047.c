/* rfc2047.c: encoded-word decoding (see rfc2047.h). */
#include "mail/rfc2047.h"

#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/strnum.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"
#include "mail/decode.h"

#define CHARSET_NAME_MAX 64

static bool is_utf8_name(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
		strcasecmp(cs, "us-ascii") == 0;
}

/* Copies UTF-8 input, each byte that does not start a valid sequence
 * (RFC 3629) replaced by '?' as iconv's failures are below. */
static void add_valid_utf8(struct strbuf *o, const unsigned char *in,
			   size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = in[i] < 0x80 ? 1 : in[i] >= 0xf0 ? 4 :
			in[i] >= 0xe0 ? 3 : 2;
		if (n <= len - i && utf8_is_valid(in + i, n)) {
			strbuf_add(o, in + i, n);
			i += n;
		} else {
			strbuf_add(o, "?", 1);
			i++;
		}
	}
}

int rfc2047_charset_to_utf8(const char *charset, const void *in, size_t len,
			    char **out_r, size_t *out_len_r)
{
	struct strbuf o = { NULL, 0, 0 };
	char name[CHARSET_NAME_MAX], buf[256], *ip, *op;
	size_t n, ileft = len, oleft;
	iconv_t cd;

	/* RFC 2231 5: "charset*language" */
	n = strcspn(charset, "*");
	if (n >= sizeof(name))
		return -1;
	memcpy(name, charset, n);
	name[n] = '\0';
	if (is_utf8_name(name)) {
		/* valid UTF-8 passes through; invalid bytes become '?'
		 * (found by fuzz_rfc2047: the output must be UTF-8) */
		strbuf_add(&o, "", 0);
		add_valid_utf8(&o, in, len);
		*out_r = o.data;
		*out_len_r = o.len;
		return 0;
	}
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1) {
		*out_r = NULL;
		return -1;
	}
	ip = (char *)in;
	strbuf_add(&o, "", 0);
	while (ileft > 0) {
		op = buf;
		oleft = sizeof(buf);
		if (iconv(cd, &ip, &ileft, &op, &oleft) == (size_t)-1 &&
		    errno != E2BIG) {
			/* EILSEQ / EINVAL: replace one byte and go on */
			strbuf_add(&o, buf, sizeof(buf) - oleft);
			strbuf_add(&o, "?", 1);
			ip++;
			ileft--;
			continue;
		}
		strbuf_add(&o, buf, sizeof(buf) - oleft);
	}
	iconv_close(cd);
	if (!utf8_is_valid((const unsigned char *)o.data, o.len)) {
		/* glibc's UTF-8 aliases ("utf\t8") pass 5- and 6-byte forms
		 * (found by fuzz_rfc2047) */
		struct strbuf v = { NULL, 0, 0 };

		strbuf_add(&v, "", 0);
		add_valid_utf8(&v, (const unsigned char *)o.data, o.len);
		free(o.data);
		o = v;
	}
	*out_r = o.data;
	*out_len_r = o.len;
	return 0;
}


/* RFC 2047 4.1: B encoding; invalid characters are skipped (the
 * streaming base64 decoder of decode.c). */
static void decode_b(const char *p, size_t len, struct strbuf *o)
{
	unsigned char *tmp = xmalloc(DECODE_OUT_MAX(len));
	struct decode_state st;
	size_t n;

	decode_init(&st, DECODE_BASE64);
	n = decode_feed(&st, (const unsigned char *)p, len, tmp);
	n += decode_finish(&st, tmp + n);
	strbuf_add(o, tmp, n);
	free(tmp);
}

/* RFC 2047 4.2: Q encoding. */
static void decode_q(const char *p, size_t len, struct strbuf *o)
{
	char c;
	size_t i;

	for (i = 0; i < len; i++) {
		c = p[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=' && i + 2 < len + 0 && hex_digit_value((unsigned char)p[i + 1]) >= 0
			   && hex_digit_value((unsigned char)p[i + 2]) >= 0) {
			c = (char)(hex_digit_value((unsigned char)p[i + 1]) * 16 + hex_digit_value((unsigned char)p[i + 2]));
			i += 2;
		}
		strbuf_add(o, &c, 1);
	}
}

struct eword {
	const char *charset;
	size_t charset_len;
	char enc;
	const char *text;
	size_t text_len;
	size_t total_len;	/* from "=?" to "?=" inclusive */
};

/* Parses an encoded-word at p ("=?"...). */
static bool parse_eword(const char *p, const char *end, struct eword *w)
{
	const char *q, *t;

	if (end - p < 8 || p[0] != '=' || p[1] != '?')
		return false;
	w->charset = p + 2;
	for (q = w->charset; q < end && *q != '?'; q++) {
		if (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
			return false;
	}
	if (end - q < 5 || q == w->charset ||
	    (size_t)(q - w->charset) >= CHARSET_NAME_MAX)
		return false;
	w->charset_len = (size_t)(q - w->charset);
	w->enc = q[1];
	if ((w->enc != 'B' && w->enc != 'b' && w->enc != 'Q' &&
	     w->enc != 'q') || q[2] != '?')
		return false;
	w->text = q + 3;
	for (t = w->text; t + 1 < end; t++) {
		if (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n')
			return false;
		if (t[0] == '?' && t[1] == '=')
			break;
	}
	if (t + 1 >= end)
		return false;
	w->text_len = (size_t)(t - w->text);
	w->total_len = (size_t)(t + 2 - p);
	return true;
}

struct decoder {
	struct strbuf out;
	struct strbuf raw;	/* decoded bytes pending conversion */
	char charset[CHARSET_NAME_MAX];
};

static void flush_raw(struct decoder *d)
{
	char *conv;
	size_t len;

	if (d->raw.len == 0)
		return;
	if (rfc2047_charset_to_utf8(d->charset, d->raw.data, d->raw.len,
				    &conv, &len) == 0) {
		strbuf_add(&d->out, conv, len);
		free(conv);
	}
	d->raw.len = 0;
}

static bool charset_is_known(const struct eword *w)
{
	char cs[CHARSET_NAME_MAX];
	iconv_t cd;

	memcpy(cs, w->charset, w->charset_len);
	cs[w->charset_len] = '\0';
	cs[strcspn(cs, "*")] = '\0';
	if (is_utf8_name(cs))
		return true;
	if ((cd = iconv_open("UTF-8", cs)) == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

/* Returns false when the charset is unknown (the word stays raw). */
static bool add_eword(struct decoder *d, const struct eword *w)
{
	if (d->raw.len > 0 && strlen(d->charset) == w->charset_len &&
	    strncasecmp(w->charset, d->charset, w->charset_len) == 0)
		goto decode;
	if (!charset_is_known(w))
		return false;
	flush_raw(d);
	memcpy(d->charset, w->charset, w->charset_len);
	d->charset[w->charset_len] = '\0';
decode:
	if (w->enc == 'B' || w->enc == 'b')
		decode_b(w->text, w->text_len, &d->raw);
	else
		decode_q(w->text, w->text_len, &d->raw);
	return true;
}

void rfc2047_decode(const char *in, size_t len, char **out_r,
		    size_t *out_len_r)
{
	struct decoder d;
	const char *p = in, *end = in + len, *ws;
	struct eword w;

	memset(&d, 0, sizeof(d));
	strbuf_add(&d.out, "", 0);
	while (p < end) {
		if (parse_eword(p, end, &w) && add_eword(&d, &w)) {
			p += w.total_len;
			/* RFC 2047 6.2: white space between adjacent
			 * encoded-words is not displayed */
			for (ws = p; ws < end && (*ws == ' ' || *ws == '\t' ||
					*ws == '\r' || *ws == '\n'); ws++)
				;
			if (ws > p && parse_eword(ws, end, &w) &&
			    charset_is_known(&w))
				p = ws;
			continue;
		}
		flush_raw(&d);
		strbuf_add(&d.out, p, 1);
		p++;
	}
	flush_raw(&d);
	free(d.raw.data);
	*out_r = d.out.data;
	*out_len_r = d.out.len;
}
