/* binary_convert.h: makes a message that arrived as a literal8 (RFC 3516)
 * safe to store and to send in ordinary IMAP literals, as Dovecot does:
 * every leaf MIME part whose Content-Transfer-Encoding is "binary", or
 * whose body holds a NUL or a bare CR (one not followed by LF), gets
 * "Content-Transfer-Encoding: base64" (replacing its CTE field, or added
 * when missing) and its body base64-encoded in 76-column CRLF lines.
 * RFC 3516 4.4 lets the server change the CTE of appended data; section 6
 * wants BODYSTRUCTURE and BODY[] to show such sections in a CTE fit for
 * IMAP4, and RFC 9051 4.3.1 forbids NUL outside BINARY fetches.
 *
 * Everything else stays byte for byte: multipart structure, boundaries,
 * other headers and parts. Not converted: multipart and message/rfc822
 * bodies (only their leaves are; nested messages are walked), leaves
 * already in base64 or quoted-printable. A NUL left outside a converted
 * leaf (preamble, epilogue, a header, a body the parser did not split,
 * a base64/QP leaf) becomes a space; a "binary" CTE on a multipart or
 * message/rfc822 part becomes "8bit" (RFC 2045 6.4: its leaves are now
 * encoded). Bare LFs in undeclared parts are not a reason to convert.
 *
 * Input: the message exactly as the client sent it (before the store's
 * CRLF -> LF), spooled to an anonymous file; it is read twice (parse with
 * message_parser.h, then copy) in BINARY_CONVERT_CHUNK_SIZE chunks, so
 * memory is bounded by the part tree (message_parser limits), not by
 * the message size. */
#ifndef HERON_BINARY_CONVERT_H
#define HERON_BINARY_CONVERT_H

#include <stdbool.h>
#include <stddef.h>

#define BINARY_CONVERT_CHUNK_SIZE (32 * 1024)

/* Receives the output in order; is_last is true on the final call (size
 * may be 0 then). Returns 0, or -1 to stop (the callee reports its own
 * error). */
typedef int binary_convert_output_fn(void *ctx, const void *data,
				     size_t size, bool is_last);

struct binary_convert;

/* Opens an anonymous spool file in state_dir/spool (the workers' spool
 * directory, as LMTP uses), or in P_tmpdir when state_dir is NULL or
 * empty or its spool can't be used. Returns NULL with *error_r (static
 * text, errno kept). */
struct binary_convert *binary_convert_begin(const char *state_dir,
					    const char **error_r);
/* Appends message bytes as received. Returns 0, or -1 with *error_r
 * (errno kept: ENOSPC/EDQUOT for a full disk). */
int binary_convert_write(struct binary_convert *bc, const void *data,
			 size_t size, const char **error_r);
/* Takes *bc (NULLs it first, so the output function may free whatever
 * held it) and sends the message to out: the converted copy, or the
 * original bytes when nothing needed converting. Returns 1 converted,
 * 0 unchanged, -1 on error with *error_r (static text), or with *error_r
 * NULL when out returned -1. */
int binary_convert_finish(struct binary_convert **bc,
			  binary_convert_output_fn *out, void *ctx,
			  const char **error_r);
/* Drops the spool. Safe on NULL. */
void binary_convert_abort(struct binary_convert **bc);

/* The converter on any readable, seekable fd (read with pread from 0 to
 * size), in chunks of chunk_size bytes (0: the default; tests vary it).
 * Returns 1 and writes the converted copy to out, or 0 without writing
 * anything when nothing needs converting, or -1 as above. */
int binary_convert_fd(int fd, size_t chunk_size,
		      binary_convert_output_fn *out, void *ctx,
		      const char **error_r);

#endif
