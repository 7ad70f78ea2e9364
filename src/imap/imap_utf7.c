/* imap_utf7.c: modified UTF-7 (RFC 3501 section 5.1.3): printable ASCII
 * but "&" stands for itself, "&" is "&-", everything else is UTF-16 in
 * modified base64 (",", not "/"; no padding) between "&" and "-".
 * Output is at most 4x (encode) or 3x (decode) the input. */
#include "imap/imap_utf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static bool is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* One code point from UTF-8; returns its length or 0 if invalid. */
static size_t utf8_get(const unsigned char *s, size_t len, uint32_t *cp_r)
{
	size_t n, k;
	uint32_t cp;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 2;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 3;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len <= n)
		return 0;
	for (k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n + 1;
}

struct b64_out {
	char *out;
	size_t o;
	uint32_t bits;
	unsigned nbits;
};

static void b64_put16(struct b64_out *b, uint32_t unit)
{
	b->bits = (b->bits << 16) | unit;
	b->nbits += 16;
	while (b->nbits >= 6) {
		b->nbits -= 6;
		b->out[b->o++] = b64chars[(b->bits >> b->nbits) & 0x3f];
	}
}

static void b64_flush(struct b64_out *b)
{
	if (b->nbits > 0)
		b->out[b->o++] = b64chars[(b->bits << (6 - b->nbits)) & 0x3f];
	b->nbits = 0;
	b->out[b->o++] = '-';
}

int imap_utf7_encode(const char *utf8, size_t len, char **mutf7_r)
{
	const unsigned char *s = (const unsigned char *)utf8;
	struct b64_out b = { NULL, 0, 0, 0 };
	bool in_b64 = false;
	size_t i = 0, n;
	uint32_t cp;

	/* SIZE-MATH: a 4-byte UTF-8 char becomes 2 units = 32 bits <= 6
	 * base64 chars; "&" + "-" per run; "&" becomes "&-": <= 4x + 2 */
	b.out = xmalloc(len * 4 + 3);
	while (i < len) {
		if (s[i] == '\0' || (n = utf8_get(s + i, len - i, &cp)) == 0)
			goto fail;
		i += n;
		if (cp < 0x80 && is_direct((unsigned char)cp)) {
			if (in_b64) {
				b64_flush(&b);
				in_b64 = false;
			}
			b.out[b.o++] = (char)cp;
			if (cp == '&')
				b.out[b.o++] = '-';
			continue;
		}
		if (!in_b64) {
			b.out[b.o++] = '&';
			in_b64 = true;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			b64_put16(&b, 0xd800 | (cp >> 10));
			b64_put16(&b, 0xdc00 | (cp & 0x3ff));
		} else {
			b64_put16(&b, cp);
		}
	}
	if (in_b64)
		b64_flush(&b);
	b.out[b.o] = '\0';
	*mutf7_r = b.out;
	return 0;
fail:
	free(b.out);
	return -1;
}

static int b64_value(unsigned char c)
{
	const char *p = c == '\0' ? NULL : strchr(b64chars, c);

	return p == NULL ? -1 : (int)(p - b64chars);
}

static size_t utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Decodes the base64 run starting at s[*pos] (after "&") up to "-". */
static int decode_run(const char *s, size_t len, size_t *pos, char *out,
		      size_t *o)
{
	uint32_t bits = 0, high = 0, unit;
	unsigned nbits = 0, nchars = 0;
	int v;

	for (; *pos < len && s[*pos] != '-'; (*pos)++, nchars++) {
		if ((v = b64_value((unsigned char)s[*pos])) < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unit = (bits >> nbits) & 0xffff;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff)
				return -1;
			*o += utf8_put(out + *o, 0x10000 +
				       ((high - 0xd800) << 10) +
				       (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			return -1;
		} else if (unit == 0 || (unit < 0x80 && is_direct(unit))) {
			return -1;	/* must have been sent directly */
		} else {
			*o += utf8_put(out + *o, unit);
		}
	}
	/* unterminated, empty, dangling surrogate, or padding that is
	 * 6 bits or more / not zero: all non-canonical */
	if (*pos == len || nchars == 0 || high != 0 || nbits >= 6 ||
	    (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	(*pos)++;
	return 0;
}

int imap_utf7_decode(const char *mutf7, size_t len, char **utf8_r)
{
	char *out = xmalloc(len * 3 + 1);	/* SIZE-MATH: 4 b64 chars ->
						   at most 3 UTF-8 bytes */
	size_t pos = 0, o = 0;
	bool prev_run = false;

	while (pos < len) {
		unsigned char c = (unsigned char)mutf7[pos++];

		if (!is_direct(c))
			goto fail;
		if (c != '&') {
			out[o++] = (char)c;
			prev_run = false;
			continue;
		}
		if (pos < len && mutf7[pos] == '-') {
			out[o++] = '&';
			pos++;
			prev_run = false;
			continue;
		}
		/* "&a-&b-" is "&ab-" in canonical form */
		if (prev_run || decode_run(mutf7, len, &pos, out, &o) < 0)
			goto fail;
		prev_run = true;
	}
	out[o] = '\0';
	*utf8_r = out;
	return 0;
fail:
	free(out);
	return -1;
}

bool imap_utf7_is_valid(const char *mutf7, size_t len)
{
	char *out;

	if (imap_utf7_decode(mutf7, len, &out) < 0)
		return false;
	free(out);
	return true;
}
