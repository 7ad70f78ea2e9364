/* zstream.c: raw DEFLATE between evbuffers with zlib (see zstream.h).
 * Works in chunks of ZSTREAM_CHUNK bytes of output space; never holds
 * more than zlib's own state. Does not know about sockets or IMAP. */
#include "net/zstream.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdlib.h>

#define ZLIB_CONST	/* next_in is const */
#include <zlib.h>

/* Output space reserved per inflate()/deflate() call. */
#define ZSTREAM_CHUNK (16 * 1024)
/* Input handed to zlib per call (avail_in is an unsigned int). */
#define ZSTREAM_MAX_IN (1024 * 1024 * 1024)
/* RFC 4978 section 4: responses compress well even at low levels, and
 * the RFC suggests 1-5. */
#define ZSTREAM_LEVEL 5
/* The compressor's window: 2^12 = 4 KB. zlib's deflate needs about
 * (1 << (WBITS + 2)) + (1 << (MEMLEVEL + 9)) bytes plus ~6 KB of state:
 * 16 + 16 + 6 = ~38 KB, against ~268 KB for zlib's defaults (15, 8).
 * The decompressor must take the full 2^15 (a client may use it). */
#define ZSTREAM_DEFLATE_WBITS 12
#define ZSTREAM_DEFLATE_MEMLEVEL 5
#define ZSTREAM_INFLATE_WBITS 15

struct zstream {
	z_stream in, out;
	size_t mem;		/* bytes zlib has allocated (both ways) */
	bool has_out;		/* the compressor exists */
	bool out_pending;	/* deflate() took input since the last flush */
	bool in_ended;		/* the peer's stream had its final block */
	/* inflate() filled the output space: it may hold more output
	 * (the rest of a match) even with all input consumed */
	bool in_more;
};

/* zlib allocations go through xmalloc (aborts on OOM) with a header
 * recording the size, so zstream_memory() can tell the cost. */
union zstream_hdr {
	size_t size;
	max_align_t align;
};

static voidpf zstream_alloc(voidpf opaque, uInt items, uInt size)
{
	struct zstream *zs = opaque;
	size_t n = (size_t)items * size;	/* SIZE-MATH: uInt * uInt fits */
	union zstream_hdr *h = xmalloc(sizeof(*h) + n);

	h->size = n;
	zs->mem += n;
	return h + 1;
}

static void zstream_free(voidpf opaque, voidpf ptr)
{
	struct zstream *zs = opaque;
	union zstream_hdr *h = (union zstream_hdr *)ptr - 1;

	zs->mem -= h->size;
	free(h);
}

static void zstream_setup(struct zstream *zs, z_stream *s)
{
	s->zalloc = zstream_alloc;
	s->zfree = zstream_free;
	s->opaque = zs;
}

struct zstream *zstream_create(void)
{
	struct zstream *zs = xcalloc(1, sizeof(*zs));

	zstream_setup(zs, &zs->in);
	/* Negative windowBits: raw deflate, no zlib header (RFC 4978
	 * section 4 names deflateInit2/inflateInit2 with -8..-15). */
	if (inflateInit2(&zs->in, -ZSTREAM_INFLATE_WBITS) != Z_OK)
		log_fatal("zstream: inflateInit2 failed: %s",
			  zs->in.msg != NULL ? zs->in.msg : "?");
	return zs;
}

static void zstream_deflate_end(struct zstream *zs)
{
	if (!zs->has_out)
		return;
	/* Z_DATA_ERROR here only says the stream was not finished. */
	(void)deflateEnd(&zs->out);
	zs->has_out = false;
	zs->out_pending = false;
}

void zstream_destroy(struct zstream **zsp)
{
	struct zstream *zs = *zsp;

	if (zs == NULL)
		return;
	*zsp = NULL;
	zstream_deflate_end(zs);
	(void)inflateEnd(&zs->in);
	free(zs);
}

/* One inflate() call on the first chunk of src. Returns 1 if progress
 * was made, 0 if none is possible now, -1 on corrupt data. */
static int zstream_inflate_step(struct zstream *zs, struct evbuffer *src,
				struct evbuffer *dst, size_t room,
				const char **error_r)
{
	struct evbuffer_iovec in, out;
	size_t in_len, consumed, produced;
	int ret;

	if (evbuffer_peek(src, -1, NULL, &in, 1) < 1) {
		in.iov_base = NULL;
		in.iov_len = 0;
	}
	if (in.iov_len == 0 && !zs->in_more)
		return 0;
	if (in.iov_len > 0 && zs->in_ended) {
		*error_r = "data after the end of the compressed stream";
		return -1;
	}
	if (evbuffer_reserve_space(dst, room, &out, 1) < 1)
		log_fatal("zstream: evbuffer_reserve_space(%zu) failed", room);
	in_len = in.iov_len < ZSTREAM_MAX_IN ? in.iov_len : ZSTREAM_MAX_IN;
	zs->in.next_in = in.iov_base;
	zs->in.avail_in = (uInt)in_len;
	zs->in.next_out = out.iov_base;
	zs->in.avail_out = (uInt)room;
	ret = inflate(&zs->in, Z_SYNC_FLUSH);
	consumed = in_len - zs->in.avail_in;
	produced = room - zs->in.avail_out;
	zs->in_more = zs->in.avail_out == 0;
	out.iov_len = produced;
	evbuffer_commit_space(dst, &out, produced > 0 ? 1 : 0);
	evbuffer_drain(src, consumed);
	if (ret == Z_STREAM_END) {
		zs->in_more = false;
		zs->in_ended = true;
		return 1;
	}
	if (ret != Z_OK && ret != Z_BUF_ERROR) {
		*error_r = zs->in.msg != NULL ? zs->in.msg :
			"corrupt compressed data";
		return -1;
	}
	return consumed > 0 || produced > 0 ? 1 : 0;
}

int zstream_inflate(struct zstream *zs, struct evbuffer *src,
		    struct evbuffer *dst, size_t max_out,
		    const char **error_r)
{
	size_t added = 0, before;
	int ret;

	while (added < max_out) {
		size_t room = max_out - added;

		if (room > ZSTREAM_CHUNK)
			room = ZSTREAM_CHUNK;
		before = evbuffer_get_length(dst);
		ret = zstream_inflate_step(zs, src, dst, room, error_r);
		if (ret <= 0)
			return ret;
		added += evbuffer_get_length(dst) - before;
	}
	return 0;
}

static void zstream_deflate_init(struct zstream *zs)
{
	if (zs->has_out)
		return;
	zstream_setup(zs, &zs->out);
	if (deflateInit2(&zs->out, ZSTREAM_LEVEL, Z_DEFLATED,
			 -ZSTREAM_DEFLATE_WBITS, ZSTREAM_DEFLATE_MEMLEVEL,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		log_fatal("zstream: deflateInit2 failed: %s",
			  zs->out.msg != NULL ? zs->out.msg : "?");
	zs->has_out = true;
}

/* Runs deflate() over data until zlib has taken all of it and (for a
 * flush) has no more output to give. */
static void zstream_deflate_run(struct zstream *zs, const void *data,
				size_t len, struct evbuffer *dst, int flush)
{
	struct evbuffer_iovec out;
	size_t produced;
	int ret;

	zs->out.next_in = data;
	zs->out.avail_in = (uInt)len;
	do {
		if (evbuffer_reserve_space(dst, ZSTREAM_CHUNK, &out, 1) < 1)
			log_fatal("zstream: evbuffer_reserve_space failed");
		zs->out.next_out = out.iov_base;
		zs->out.avail_out = ZSTREAM_CHUNK;
		ret = deflate(&zs->out, flush);
		if (ret == Z_STREAM_ERROR)
			log_fatal("zstream: deflate: inconsistent stream");
		produced = ZSTREAM_CHUNK - zs->out.avail_out;
		out.iov_len = produced;
		evbuffer_commit_space(dst, &out, produced > 0 ? 1 : 0);
	} while (zs->out.avail_in > 0 || zs->out.avail_out == 0);
}

void zstream_deflate(struct zstream *zs, struct evbuffer *src,
		     struct evbuffer *dst, bool flush)
{
	struct evbuffer_iovec v;
	size_t len;

	while (evbuffer_peek(src, -1, NULL, &v, 1) == 1 && v.iov_len > 0) {
		zstream_deflate_init(zs);
		len = v.iov_len < ZSTREAM_MAX_IN ? v.iov_len : ZSTREAM_MAX_IN;
		zstream_deflate_run(zs, v.iov_base, len, dst, Z_NO_FLUSH);
		evbuffer_drain(src, len);
		zs->out_pending = true;
	}
	if (!flush)
		return;
	/* RFC 4978 section 4: every response must reach the client now;
	 * Z_SYNC_FLUSH ends on a byte boundary with an empty stored block. */
	if (zs->out_pending)
		zstream_deflate_run(zs, NULL, 0, dst, Z_SYNC_FLUSH);
	zstream_deflate_end(zs);
}

bool zstream_inflate_pending(const struct zstream *zs)
{
	return zs->in_more;
}

bool zstream_deflate_pending(const struct zstream *zs)
{
	return zs->out_pending;
}

size_t zstream_memory(const struct zstream *zs)
{
	return zs->mem;
}
