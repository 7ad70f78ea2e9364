/* fuzz_zstream.c: libFuzzer target for net/zstream.c (IMAP COMPRESS).
 * The first byte picks the inflate step size and the piece size; the rest
 * is (1) inflated as client data, once whole and once fed in pieces with
 * a small max_out per call: the same output and verdict either way, and
 * no call adds more than max_out; (2) deflated in pieces with flushes
 * between some of them, then inflated again: the round trip must give
 * the input back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "net/zstream.h"

/* Inflates everything in src, max_out at a time; returns 0 or -1. */
static int inflate_all(struct zstream *zs, struct evbuffer *src,
		       struct evbuffer *dst, size_t max_out)
{
	const char *error;
	size_t before, prev_src;

	for (;;) {
		before = evbuffer_get_length(dst);
		prev_src = evbuffer_get_length(src);
		if (zstream_inflate(zs, src, dst, max_out, &error) < 0)
			return -1;
		if (evbuffer_get_length(dst) - before > max_out)
			abort();
		if ((evbuffer_get_length(src) == 0 &&
		     !zstream_inflate_pending(zs)) ||
		    (evbuffer_get_length(src) == prev_src &&
		     evbuffer_get_length(dst) == before))
			return 0;
	}
}

static void check_inflate(const uint8_t *data, size_t size, size_t max_out,
			  size_t piece)
{
	struct zstream *a = zstream_create(), *b = zstream_create();
	struct evbuffer *src = evbuffer_new(), *out_a = evbuffer_new();
	struct evbuffer *out_b = evbuffer_new();
	int ret_a, ret_b = 0;

	evbuffer_add(src, data, size);
	ret_a = inflate_all(a, src, out_a, 1 << 20);
	evbuffer_drain(src, evbuffer_get_length(src));
	for (size_t off = 0; off < size && ret_b == 0; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		evbuffer_add(src, data + off, n);
		ret_b = inflate_all(b, src, out_b, max_out);
	}
	if (ret_a != ret_b)
		abort();
	if (ret_a == 0 &&
	    (evbuffer_get_length(out_a) != evbuffer_get_length(out_b) ||
	     (evbuffer_get_length(out_a) > 0 &&
	      memcmp(evbuffer_pullup(out_a, -1), evbuffer_pullup(out_b, -1),
		     evbuffer_get_length(out_a)) != 0)))
		abort();
	evbuffer_free(src);
	evbuffer_free(out_a);
	evbuffer_free(out_b);
	zstream_destroy(&a);
	zstream_destroy(&b);
}

static void check_roundtrip(const uint8_t *data, size_t size, size_t piece,
			    uint8_t flushes)
{
	struct zstream *zs = zstream_create(), *back = zstream_create();
	struct evbuffer *src = evbuffer_new(), *comp = evbuffer_new();
	struct evbuffer *plain = evbuffer_new();
	unsigned i = 0;

	for (size_t off = 0; off < size; off += piece, i++) {
		size_t n = size - off < piece ? size - off : piece;

		evbuffer_add(src, data + off, n);
		zstream_deflate(zs, src, comp, (flushes >> (i % 8)) & 1);
	}
	zstream_deflate(zs, src, comp, true);
	if (inflate_all(back, comp, plain, 1 << 16) < 0 ||
	    evbuffer_get_length(plain) != size ||
	    (size > 0 && memcmp(evbuffer_pullup(plain, -1), data, size) != 0))
		abort();
	evbuffer_free(src);
	evbuffer_free(comp);
	evbuffer_free(plain);
	zstream_destroy(&zs);
	zstream_destroy(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t max_out, piece;
	uint8_t flushes;

	if (size < 2)
		return 0;
	max_out = 1 + (data[0] & 0x0f) * 97;
	piece = 1 + (data[0] >> 4) * 13;
	flushes = data[1];
	data += 2;
	size -= 2;
	check_inflate(data, size, max_out, piece);
	check_roundtrip(data, size, piece, flushes);
	return 0;
}
