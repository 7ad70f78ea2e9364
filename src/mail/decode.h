/* decode.h: streaming Content-Transfer-Encoding decoders (RFC 2045 6.7
 * quoted-printable, 6.8 base64) for SEARCH BODY/TEXT.
 *
 * Pure: no I/O, no allocation; the state lives in struct decode_state and
 * the decoder is fed chunks split anywhere (the output does not depend on
 * the split). Lenient like mail readers: base64 skips characters outside
 * its alphabet and restarts after '=' padding; quoted-printable keeps a
 * malformed "=" sequence as it is, accepts bare LF and CRLF line ends and
 * white space between "=" and the line end of a soft line break, and drops
 * trailing white space of a line (RFC 2045 6.7 rule 3) up to
 * DECODE_QP_WS_MAX bytes of it (a longer run is passed on). */
#ifndef HERON_DECODE_H
#define HERON_DECODE_H

#include <stddef.h>

enum decode_type {
	DECODE_NONE,		/* 7bit, 8bit, binary, unknown: copied */
	DECODE_BASE64,
	DECODE_QP,
};

/* White space of a QP line held back until the line end is known. */
#define DECODE_QP_WS_MAX 64
/* decode_feed writes at most this many bytes for len input bytes. */
#define DECODE_OUT_MAX(len) ((len) + DECODE_QP_WS_MAX + 4)

struct decode_state {
	enum decode_type type;
	unsigned state;		/* decoder phase (decode.c) */
	unsigned bits;		/* base64: bits collected */
	unsigned nbits;
	unsigned char held[2];	/* QP: "=X" kept across a chunk end */
	unsigned char ws[DECODE_QP_WS_MAX];	/* QP: pending white space */
	unsigned ws_len;
};

/* The type named by a Content-Transfer-Encoding value (case-insensitive,
 * surrounding white space and comments ignored); NULL or unknown gives
 * DECODE_NONE. */
enum decode_type decode_type_parse(const char *value, size_t len);
/* The same, strictly (FETCH BINARY, RFC 3516 4.3): 0 with *type_r for
 * base64, quoted-printable, 7bit, 8bit, binary or a NULL value (RFC 2045
 * 6.1 default 7bit); -1 (*type_r DECODE_NONE) for any other value. */
int decode_type_parse_known(const char *value, size_t len,
			    enum decode_type *type_r);

void decode_init(struct decode_state *st, enum decode_type type);
/* Decodes in[0..len) into out, which has room for DECODE_OUT_MAX(len)
 * bytes. Returns the number of bytes written. */
size_t decode_feed(struct decode_state *st, const unsigned char *in,
		   size_t len, unsigned char *out);
/* Flushes what is held at the end of the input (at most
 * DECODE_OUT_MAX(0) bytes); the state is then reset. */
size_t decode_finish(struct decode_state *st, unsigned char *out);

#endif
