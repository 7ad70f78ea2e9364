/* fuzz_imap_binary.c: libFuzzer target for the FETCH BINARY converter
 * (imap_binary_* in src/imap/imap_fetch.c: LF -> CRLF, CTE decoding,
 * partial range). Input: byte 0 picks the CTE, byte 1 the undecoded
 * prefix length, bytes 2-3 the partial start, 4-5 its length (0xffff:
 * to the end), 6 a chunking seed; the rest is the part. The output must
 * equal a byte-wise reference (LF -> CRLF, one decode_feed call) whether
 * fed whole or in pseudo-random chunks, stay within
 * IMAP_BINARY_OUT_MAX per call, and size/has_nul must agree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fetch.h"
#include "mail/decode.h"

#define HDR_LEN 7

struct params {
	enum decode_type type;
	size_t plain;
	uint64_t skip, count;
	uint32_t seed;
};

static size_t reference(const struct params *pr, const uint8_t *in,
			size_t len, uint8_t *out)
{
	uint8_t *body = malloc(2 * len + 1);
	size_t o = 0, b = 0;
	struct decode_state st;

	for (size_t i = 0; i < len; i++) {
		uint8_t *dst = i < pr->plain ? out : body;
		size_t *pos = i < pr->plain ? &o : &b;

		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			dst[(*pos)++] = '\r';
		dst[(*pos)++] = in[i];
	}
	decode_init(&st, pr->type);
	o += decode_feed(&st, body, b, out + o);
	o += decode_finish(&st, out + o);
	free(body);
	return o;
}

static size_t next_chunk(uint32_t *seed, size_t left)
{
	size_t n;

	*seed ^= *seed << 13;
	*seed ^= *seed >> 17;
	*seed ^= *seed << 5;
	n = (*seed & 3) == 0 ? 1 : 1 + (*seed >> 4) % 300;
	return n < left ? n : left;
}

/* chunked: pseudo-random chunk sizes, else one call. */
static size_t run(const struct params *pr, const uint8_t *in, size_t len,
		  bool chunked, uint8_t *out, struct imap_binary *b)
{
	uint32_t seed = pr->seed | 1;
	size_t pos = 0, o = 0, n, w;
	uint8_t *scratch = malloc(2 * len + 1);

	imap_binary_init(b, pr->type, pr->plain, pr->skip, pr->count);
	while (pos < len && !imap_binary_is_done(b)) {
		n = chunked ? next_chunk(&seed, len - pos) : len - pos;
		w = imap_binary_convert(b, in + pos, n, scratch, out + o);
		if (w > IMAP_BINARY_OUT_MAX(n))
			abort();
		o += w;
		pos += n;
	}
	if (pos == len)
		o += imap_binary_finish(b, out + o);
	free(scratch);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t len)
{
	struct params pr;
	struct imap_binary b1, b2;
	uint8_t *ref, *o1, *o2;
	size_t ref_len, n1, n2, want, start;

	if (len < HDR_LEN)
		return 0;
	pr.type = (enum decode_type)(d[0] % 3);
	pr.plain = d[1];
	pr.skip = (uint64_t)d[2] << 8 | d[3];
	pr.count = ((uint64_t)d[4] << 8 | d[5]) == 0xffff ? UINT64_MAX :
		((uint64_t)d[4] << 8 | d[5]);
	pr.seed = d[6];
	d += HDR_LEN;
	len -= HDR_LEN;
	/* SIZE-MATH: out grows at most IMAP_BINARY_OUT_MAX per call and
	 * the reference at most 2 * len + DECODE_OUT_MAX(0) */
	ref = malloc(IMAP_BINARY_OUT_MAX(len) * 2 + 1);
	o1 = malloc(IMAP_BINARY_OUT_MAX(len) + 1);
	o2 = malloc(IMAP_BINARY_OUT_MAX(1) * (len + 1));
	ref_len = reference(&pr, d, len, ref);
	n1 = run(&pr, d, len, false, o1, &b1);
	n2 = run(&pr, d, len, true, o2, &b2);
	start = pr.skip < ref_len ? (size_t)pr.skip : ref_len;
	want = ref_len - start;
	if (pr.count < want)
		want = (size_t)pr.count;
	if (n1 != want || n2 != want || memcmp(o1, ref + start, want) != 0 ||
	    memcmp(o2, ref + start, want) != 0)
		abort();
	if (b1.has_nul != (memchr(ref + start, 0, want) != NULL) ||
	    b2.has_nul != b1.has_nul)
		abort();
	if (pr.count == UINT64_MAX && (b1.size != ref_len ||
				       b2.size != ref_len))
		abort();
	free(ref);
	free(o1);
	free(o2);
	return 0;
}
