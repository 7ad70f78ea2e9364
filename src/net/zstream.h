/* zstream.h: raw DEFLATE (RFC 1951, no zlib header) in both directions
 * between libevent evbuffers, for IMAP COMPRESS=DEFLATE (RFC 4978). Used
 * by conn.c only: protocol modules see conn_start_compress() and never
 * zlib. No I/O here.
 *
 * Memory: the decompressor keeps ~7 KB of state plus, once data came,
 * the 32 KB window a peer may use (RFC 1951 allows any window up to 32
 * KB, so ours must be that big). The compressor uses a 4 KB window
 * (RFC 4978 section 4 lets each side pick its own trade-off) and exists
 * only between a first zstream_deflate() and the next flush: ~38 KB
 * while output is being produced, nothing on an idle connection.
 * zstream_memory() says what zlib holds right now. */
#ifndef HERON_ZSTREAM_H
#define HERON_ZSTREAM_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;
struct zstream;

/* Aborts on out of memory like xmalloc; never returns NULL. */
struct zstream *zstream_create(void);
/* Frees everything and sets *zs to NULL; NULL is fine. */
void zstream_destroy(struct zstream **zs);

/* Inflates bytes of src into dst, adding at most max_out bytes to dst
 * (a bomb costs no more than that); what was consumed is drained from
 * src, the rest stays there for the next call. Returns 0 (also when
 * nothing could be done) or -1 with *error_r (static text) for corrupt
 * data or data after the end of the peer's stream. */
int zstream_inflate(struct zstream *zs, struct evbuffer *src,
		    struct evbuffer *dst, size_t max_out,
		    const char **error_r);

/* True when zstream_inflate stopped at max_out with output possibly
 * left inside zlib: call it again even if src is empty. */
bool zstream_inflate_pending(const struct zstream *zs);

/* Compresses all of src (drained) onto the end of dst. With flush, the
 * output ends on a Z_SYNC_FLUSH boundary, so the peer can decode all of
 * it now, and the compressor's memory is released: the next call starts
 * a fresh one, which a raw inflater reads as more blocks (like after a
 * Z_FULL_FLUSH, RFC 4978 section 4). Without flush, zlib may hold some
 * input back (see zstream_deflate_pending). */
void zstream_deflate(struct zstream *zs, struct evbuffer *src,
		     struct evbuffer *dst, bool flush);
/* True when compressed input is held back until the next flush. */
bool zstream_deflate_pending(const struct zstream *zs);

/* Bytes zlib has allocated for this stream right now. */
size_t zstream_memory(const struct zstream *zs);

#endif
