/* unicode.c: case folding for SEARCH (unicode.h). ASCII is folded with a
 * table; each run of non-ASCII text (with the ASCII character before it,
 * which a combining mark may attach to) goes to utf8proc's NFKC_Casefold
 * or, without utf8proc, to a small built-in simple+full folding. */
#include "mail/unicode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

#ifdef HAVE_UTF8PROC
#include <utf8proc.h>
/* utf8proc_NFKC_Casefold() options */
#define FOLD_OPTIONS (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT | \
		      UTF8PROC_CASEFOLD | UTF8PROC_IGNORE)
#endif

static const unsigned char ascii_lower[256] = {
#define R(b) b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7
	R(0), R(8), R(16), R(24), R(32), R(40), R(48), R(56),
	/* '@' then 'A'..'Z' -> 'a'..'z' */
	64, R(97), R(105), R(113), 121, 122, 91, 92, 93, 94, 95,
	R(96), R(104), R(112), R(120),
	R(128), R(136), R(144), R(152), R(160), R(168), R(176), R(184),
	R(192), R(200), R(208), R(216), R(224), R(232), R(240), R(248),
#undef R
};

void unicode_buf_free(struct unicode_buf *buf)
{
	free(buf->data);
	free(buf->scratch);
	memset(buf, 0, sizeof(*buf));
}

void unicode_buf_reserve(struct unicode_buf *buf, size_t n)
{
	size_t cap = buf->cap == 0 ? 256 : buf->cap;

	if (buf->cap - buf->len >= n)
		return;
	while (cap - buf->len < n)
		cap *= 2;
	buf->data = xrealloc(buf->data, cap);
	buf->cap = cap;
}

static void buf_add(struct unicode_buf *buf, const void *p, size_t n)
{
	unicode_buf_reserve(buf, n);
	memcpy(buf->data + buf->len, p, n);
	buf->len += n;
}

/* Length of the valid UTF-8 sequence at in[0..len) (RFC 3629: no
 * overlongs, surrogates or values above U+10FFFF), or 0. */
static size_t utf8_seq_len(const unsigned char *in, size_t len,
			   uint32_t *cp_r)
{
	unsigned char c = in[0];
	size_t n;
	uint32_t cp, min;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2; cp = c & 0x1f; min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3; cp = c & 0x0f; min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((in[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (in[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

#ifndef HAVE_UTF8PROC
static size_t utf8_encode(uint32_t cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	} else if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	} else if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}
#endif

#ifdef HAVE_UTF8PROC
/* Appends in[0..len) with invalid bytes replaced by U+FFFD. */
static void sanitize(const unsigned char *in, size_t len,
		     struct unicode_buf *out)
{
	static const unsigned char repl[3] = { 0xef, 0xbf, 0xbd };
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(in + i, len - i, &cp);

		if (n == 0) {
			buf_add(out, repl, sizeof(repl));
			i++;
		} else {
			buf_add(out, in + i, n);
			i += n;
		}
	}
}

static void fold_segment(const unsigned char *in, size_t len,
			 struct unicode_buf *buf)
{
	struct unicode_buf clean = { NULL, 0, 0, NULL, 0 };
	utf8proc_ssize_t n;

	for (;;) {
		n = utf8proc_decompose(in, (utf8proc_ssize_t)len,
				       buf->scratch,
				       (utf8proc_ssize_t)buf->scratch_cap,
				       FOLD_OPTIONS);
		if (n == UTF8PROC_ERROR_INVALIDUTF8 && clean.data == NULL) {
			sanitize(in, len, &clean);
			in = clean.data;
			len = clean.len;
			continue;
		}
		if (n < 0)
			break;	/* cannot happen on valid input: drop it */
		/* utf8proc_reencode needs one byte more than 4n */
		if ((size_t)n + 1 <= buf->scratch_cap)
			break;
		buf->scratch_cap = (size_t)n + 1 + len;
		buf->scratch = xreallocarray(buf->scratch, buf->scratch_cap,
					     sizeof(int32_t));
	}
	if (n > 0) {
		n = utf8proc_reencode(buf->scratch, n, FOLD_OPTIONS);
		if (n > 0)
			buf_add(buf, buf->scratch, (size_t)n);
	}
	free(clean.data);
}
#else
/* Simple case folding of the common European scripts (Unicode
 * CaseFolding.txt, status C and F) for builds without utf8proc. */
static uint32_t fold_cp(uint32_t cp)
{
	if (cp < 0x80)
		return ascii_lower[cp];
	if ((cp >= 0xc0 && cp <= 0xde && cp != 0xd7) ||
	    (cp >= 0x391 && cp <= 0x3ab && cp != 0x3a2) ||
	    (cp >= 0x410 && cp <= 0x42f))
		return cp + 0x20;
	if (cp >= 0x400 && cp <= 0x40f)
		return cp + 0x50;
	if ((cp >= 0x100 && cp <= 0x12f) || (cp >= 0x132 && cp <= 0x137) ||
	    (cp >= 0x14a && cp <= 0x177))
		return cp | 1;
	if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
		return (cp & 1) ? cp + 1 : cp;
	switch (cp) {
	case 0xb5: return 0x3bc;	/* micro sign */
	case 0x178: return 0xff;
	case 0x17f: return 's';
	case 0x3c2: return 0x3c3;	/* final sigma */
	case 0x386: return 0x3ac;
	case 0x388: case 0x389: case 0x38a: return cp + 0x25;
	case 0x38c: return 0x3cc;
	case 0x38e: case 0x38f: return cp + 0x3f;
	}
	return cp;
}

static void fold_segment(const unsigned char *in, size_t len,
			 struct unicode_buf *buf)
{
	static const unsigned char repl[3] = { 0xef, 0xbf, 0xbd };
	unsigned char enc[4];
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(in + i, len - i, &cp);

		if (n == 0) {
			buf_add(buf, repl, sizeof(repl));
			i++;
			continue;
		}
		i += n;
		if (cp == 0xdf) {		/* ß: full folding "ss" */
			buf_add(buf, "ss", 2);
		} else if (cp == 0x130) {	/* İ: "i" U+0307 */
			buf_add(buf, "i\xcc\x87", 3);
		} else {
			cp = fold_cp(cp);
			buf_add(buf, enc, utf8_encode(cp, enc));
		}
	}
}
#endif

void unicode_fold_append(const unsigned char *in, size_t len,
			 struct unicode_buf *buf)
{
	size_t i = 0;

	unicode_buf_reserve(buf, len);
	while (i < len) {
		unsigned char *out = buf->data + buf->len;
		size_t start = i, end;

		/* ASCII fast path (room was reserved: folding ASCII never
		 * grows it) */
		while (i < len && in[i] < 0x80)
			*out++ = ascii_lower[in[i++]];
		buf->len += i - start;
		if (i == len)
			break;
		/* a combining mark may attach to the ASCII letter before */
		start = i;
		if (i > 0 && in[i - 1] < 0x80 && buf->len > 0) {
			start--;
			buf->len--;
		}
		end = i;
		while (end < len && (in[end] >= 0x80 ||
				     (end + 1 < len && in[end + 1] >= 0x80)))
			end++;
		fold_segment(in + start, end - start, buf);
		i = end;
		unicode_buf_reserve(buf, len - i);
	}
}

size_t unicode_fold_safe_len(const unsigned char *in, size_t len)
{
	size_t min = len > UNICODE_FOLD_CARRY_MAX ?
		len - UNICODE_FOLD_CARRY_MAX : 0;

	if (len == 0 || in[len - 1] < 0x80)
		return len;
	for (size_t i = len; i > min; i--) {
		if (in[i - 1] < 0x80)
			return i - 1;
	}
	/* no ASCII nearby: split before the last lead byte */
	for (size_t i = len; i > min; i--) {
		if ((in[i - 1] & 0xc0) != 0x80)
			return i - 1;
	}
	return len;
}

const char *unicode_fold_impl(void)
{
#ifdef HAVE_UTF8PROC
	return "utf8proc";
#else
	return "builtin";
#endif
}
