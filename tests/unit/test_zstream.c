/* test_zstream.c: net/zstream.c (raw DEFLATE between evbuffers for IMAP
 * COMPRESS): round trips checked against zlib itself, input fed at every
 * split point and byte by byte, the max_out bound against a bomb, corrupt
 * data and data after the final block, and what the streams cost. */
#include "net/zstream.h"
#include "test.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Deflates with zlib directly (raw, full 32 KB window, as a client). */
static size_t client_deflate(const void *in, size_t len, unsigned char *out,
			     size_t out_size, int flush)
{
	z_stream s;
	size_t n;

	memset(&s, 0, sizeof(s));
	if (deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return 0;
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)out_size;
	(void)deflate(&s, flush);
	n = out_size - s.avail_out;
	deflateEnd(&s);
	return n;
}

/* Inflates with zlib directly (as a client would). */
static size_t client_inflate(const void *in, size_t len, unsigned char *out,
			     size_t out_size)
{
	z_stream s;
	size_t n;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, -15) != Z_OK)
		return 0;
	s.next_in = (Bytef *)in;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)out_size;
	(void)inflate(&s, Z_SYNC_FLUSH);
	n = out_size - s.avail_out;
	inflateEnd(&s);
	return n;
}

static char *text_of(size_t len)
{
	char *t = malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		t[i] = (char)("* 12 FETCH (FLAGS (\\Seen))\r\n"[i % 28] +
			      (i % 997 == 0 ? 1 : 0));
	t[len] = '\0';
	return t;
}

/* Our deflate, in pieces with flushes in between, read by zlib. */
static void test_deflate_roundtrip(void)
{
	static const size_t sizes[] = { 1, 28, 4096, 100000, 700000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct zstream *zs = zstream_create();
		struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
		size_t len = sizes[i], half = len / 2, out_len;
		char *t = text_of(len);
		unsigned char *back = malloc(len + 1);

		evbuffer_add(src, t, half);
		zstream_deflate(zs, src, dst, false);
		test_assert_idx(evbuffer_get_length(src) == 0, (int)i);
		test_assert_idx(half == 0 || zstream_deflate_pending(zs),
				(int)i);
		zstream_deflate(zs, src, dst, true);
		/* After a flush the compressor is gone: ~7 KB (inflate
		 * state, no window yet) remain. */
		test_assert_idx(!zstream_deflate_pending(zs), (int)i);
		test_assert_idx(zstream_memory(zs) < 12 * 1024, (int)i);
		evbuffer_add(src, t + half, len - half);
		zstream_deflate(zs, src, dst, true);
		out_len = evbuffer_get_length(dst);
		test_assert_idx(client_inflate(evbuffer_pullup(dst, -1),
					       out_len, back, len + 1) == len,
				(int)i);
		test_assert_idx(memcmp(back, t, len) == 0, (int)i);
		if (len >= 4096)
			test_assert_idx(out_len < len / 4, (int)i);
		free(back);
		free(t);
		evbuffer_free(src);
		evbuffer_free(dst);
		zstream_destroy(&zs);
		test_assert_idx(zs == NULL, (int)i);
	}
}

/* Client-compressed input fed at every split point and byte by byte. */
static void test_inflate_splits(void)
{
	static const char text[] = "a1 LOGIN alice secret\r\na2 SELECT INBOX"
		"\r\na3 FETCH 1:* (FLAGS)\r\na3 FETCH 1:* (FLAGS)\r\n";
	unsigned char comp[512];
	size_t clen = client_deflate(text, sizeof(text) - 1, comp,
				     sizeof(comp), Z_SYNC_FLUSH);
	const char *error;

	test_assert(clen > 0);
	for (size_t split = 0; split <= clen; split++) {
		struct zstream *zs = zstream_create();
		struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
		int ret;

		evbuffer_add(src, comp, split);
		ret = zstream_inflate(zs, src, dst, 1 << 20, &error);
		test_assert_idx(ret == 0 && evbuffer_get_length(src) == 0,
				(int)split);
		for (size_t i = split; i < clen; i++) {
			evbuffer_add(src, comp + i, 1);
			ret |= zstream_inflate(zs, src, dst, 1 << 20, &error);
		}
		test_assert_idx(ret == 0, (int)split);
		test_assert_idx(evbuffer_get_length(dst) == sizeof(text) - 1 &&
				memcmp(evbuffer_pullup(dst, -1), text,
				       sizeof(text) - 1) == 0, (int)split);
		evbuffer_free(src);
		evbuffer_free(dst);
		zstream_destroy(&zs);
	}
}

/* 64 MB of zeros in ~64 KB: each call adds at most max_out bytes. */
static void test_inflate_bomb_bounded(void)
{
	size_t plain = 64 * 1024 * 1024, max_out = 64 * 1024, total = 0;
	unsigned char *zeros = calloc(1, plain), *comp = malloc(256 * 1024);
	size_t clen = client_deflate(zeros, plain, comp, 256 * 1024,
				     Z_SYNC_FLUSH);
	struct zstream *zs = zstream_create();
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	const char *error;
	int rounds = 0;

	test_assert(clen > 0 && clen < 256 * 1024);
	evbuffer_add(src, comp, clen);
	while ((evbuffer_get_length(src) > 0 ||
		zstream_inflate_pending(zs)) && rounds++ < 10000) {
		test_assert(zstream_inflate(zs, src, dst, max_out, &error) ==
			    0);
		test_assert(evbuffer_get_length(dst) <= max_out);
		total += evbuffer_get_length(dst);
		evbuffer_drain(dst, evbuffer_get_length(dst));
	}
	test_assert(total == plain);
	/* The inflater: state plus its 32 KB window, under 48 KB. */
	test_assert(zstream_memory(zs) > 32 * 1024 &&
		    zstream_memory(zs) < 48 * 1024);
	printf("  zstream inflate memory: %zu bytes\n", zstream_memory(zs));
	free(zeros);
	free(comp);
	evbuffer_free(src);
	evbuffer_free(dst);
	zstream_destroy(&zs);
}

/* One byte of room per call: a match's input is consumed long before
 * its output is out; it must come without more input arriving. */
static void test_inflate_tiny_room(void)
{
	static const char text[] = "a NOOP AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n";
	unsigned char comp[256];
	size_t clen = client_deflate(text, sizeof(text) - 1, comp,
				     sizeof(comp), Z_SYNC_FLUSH);
	struct zstream *zs = zstream_create();
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	const char *error;
	size_t before;

	evbuffer_add(src, comp, clen);
	do {
		before = evbuffer_get_length(dst);
		test_assert(zstream_inflate(zs, src, dst, 1, &error) == 0);
		test_assert(evbuffer_get_length(dst) - before <= 1);
	} while (evbuffer_get_length(dst) > before);
	test_assert(evbuffer_get_length(src) == 0);
	test_assert(!zstream_inflate_pending(zs));
	test_assert(evbuffer_get_length(dst) == sizeof(text) - 1 &&
		    memcmp(evbuffer_pullup(dst, -1), text,
			   sizeof(text) - 1) == 0);
	evbuffer_free(src);
	evbuffer_free(dst);
	zstream_destroy(&zs);
}

static void test_deflate_memory(void)
{
	struct zstream *zs = zstream_create();
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	size_t idle = zstream_memory(zs), busy;

	evbuffer_add(src, "x", 1);
	zstream_deflate(zs, src, dst, false);
	busy = zstream_memory(zs) - idle;
	printf("  zstream memory: %zu idle, +%zu while compressing\n", idle,
	       busy);
	test_assert(busy > 16 * 1024 && busy < 48 * 1024);
	zstream_deflate(zs, src, dst, true);
	test_assert(zstream_memory(zs) == idle);
	evbuffer_free(src);
	evbuffer_free(dst);
	zstream_destroy(&zs);
}

static void test_inflate_errors(void)
{
	static const struct {
		const char *data;
		size_t len;
	} rows[] = {
		{ "\xff\xff\xff\xff", 4 },	/* block type 3 (reserved) */
		/* stored block whose LEN and NLEN disagree */
		{ "\x00\x05\x00\x00\x00hello", 10 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct zstream *zs = zstream_create();
		struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
		const char *error = NULL;

		evbuffer_add(src, rows[i].data, rows[i].len);
		test_assert_idx(zstream_inflate(zs, src, dst, 65536,
						&error) == -1, (int)i);
		test_assert_idx(error != NULL, (int)i);
		evbuffer_free(src);
		evbuffer_free(dst);
		zstream_destroy(&zs);
	}
}

/* After the peer's final block (Z_FINISH) nothing more may come. */
static void test_inflate_after_end(void)
{
	unsigned char comp[64];
	size_t clen = client_deflate("a NOOP\r\n", 8, comp, sizeof(comp),
				     Z_FINISH);
	struct zstream *zs = zstream_create();
	struct evbuffer *src = evbuffer_new(), *dst = evbuffer_new();
	const char *error;

	evbuffer_add(src, comp, clen);
	test_assert(zstream_inflate(zs, src, dst, 65536, &error) == 0);
	test_assert(evbuffer_get_length(dst) == 8);
	evbuffer_add(src, "x", 1);
	test_assert(zstream_inflate(zs, src, dst, 65536, &error) == -1);
	evbuffer_free(src);
	evbuffer_free(dst);
	zstream_destroy(&zs);
}

int main(void)
{
	test_run("deflate_roundtrip", test_deflate_roundtrip);
	test_run("inflate_splits", test_inflate_splits);
	test_run("inflate_bomb_bounded", test_inflate_bomb_bounded);
	test_run("inflate_tiny_room", test_inflate_tiny_room);
	test_run("deflate_memory", test_deflate_memory);
	test_run("inflate_errors", test_inflate_errors);
	test_run("inflate_after_end", test_inflate_after_end);
	return test_done("zstream");
}
