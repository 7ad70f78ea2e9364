/* unicode.h: case folding of UTF-8 text for substring matching (IMAP
 * SEARCH, RFC 9051 6.4.4: case-insensitive matching).
 *
 * Both the search string and the searched text are folded with the same
 * function, then compared bytewise (memmem). With utf8proc (HAVE_UTF8PROC)
 * the folding is NFKC_Casefold (Unicode full case folding plus
 * compatibility composition: "Straße" and "STRASSE" match, "É" written
 * precomposed or as E + U+0301 match, final sigma matches sigma, "İ"
 * folds to "i̇"). Without utf8proc a built-in fallback folds ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic (ß -> "ss", ς -> σ) and
 * does no normalization.
 *
 * Invalid UTF-8 bytes become U+FFFD, so any byte string can be folded.
 * ASCII runs take a table-driven fast path; the output buffer grows as
 * needed (folding can lengthen text: "ß" -> "ss", U+FB03 -> "ffi"). */
#ifndef HERON_UNICODE_H
#define HERON_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Growable output buffer (and scratch space of the folding). */
struct unicode_buf {
	unsigned char *data;
	size_t len, cap;
	int32_t *scratch;	/* code points (utf8proc) */
	size_t scratch_cap;
};

void unicode_buf_free(struct unicode_buf *buf);
/* Makes room for n more bytes. */
void unicode_buf_reserve(struct unicode_buf *buf, size_t n);

/* Appends the folded form of in[0..len) to buf->data. */
void unicode_fold_append(const unsigned char *in, size_t len,
			 struct unicode_buf *buf);
/* For streamed text: how many leading bytes of in[0..len) can be folded
 * now without knowing what follows (the rest is kept and prepended to the
 * next chunk): a split before an ASCII byte or, failing that within the
 * last few bytes, at a UTF-8 character boundary. Keeps at most
 * UNICODE_FOLD_CARRY_MAX bytes back. */
#define UNICODE_FOLD_CARRY_MAX 32
size_t unicode_fold_safe_len(const unsigned char *in, size_t len);

/* "utf8proc" or "builtin" (for logs and tests). */
const char *unicode_fold_impl(void);

#endif
