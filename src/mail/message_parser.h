/* message_parser.h: streaming MIME parser producing a message_part tree.
 *
 * Fed the stored message in arbitrary chunks (no I/O inside); the result
 * does not depend on how the input was split. Never fails: broken MIME
 * still gives a sensible tree (RFC 2046 5.1.1 boundaries, innermost first;
 * missing close delimiters end at the outer boundary or EOF; a multipart
 * without boundary has no children; multipart/digest parts default to
 * message/rfc822). A boundary line matches when "--" boundary is followed
 * only by white space or by "--"; failing that, like Dovecot, the
 * innermost boundary that is a prefix of the line. The line break before
 * a boundary line belongs to the boundary (not to the part's body).
 *
 * Limits (struct message_parser_limits): past max_parts no new part is
 * made and the rest of the message is the open multipart's epilogue;
 * past max_nesting a multipart or message/rfc822 part gets no children;
 * header values kept per part are capped at max_header_bytes. Work is
 * linear in the input. */
#ifndef HERON_MESSAGE_PARSER_H
#define HERON_MESSAGE_PARSER_H

#include <stddef.h>

#include "mail/message_part.h"

struct message_parser_limits {
	unsigned int max_parts;		/* parts in the tree, root included */
	unsigned int max_nesting;	/* multipart/message levels */
	size_t max_header_bytes;	/* raw header value bytes kept a part */
};

#define MESSAGE_PARSER_DEFAULT_MAX_PARTS 10000
#define MESSAGE_PARSER_DEFAULT_MAX_NESTING 100
#define MESSAGE_PARSER_DEFAULT_MAX_HEADER_BYTES 16384
/* Longest boundary honoured (RFC 2046 allows 70). */
#define MESSAGE_PARSER_MAX_BOUNDARY_LEN 200

extern const struct message_parser_limits message_parser_default_limits;

struct message_parser;

/* limits may be NULL for the defaults. */
struct message_parser *
message_parser_create(const struct message_parser_limits *limits);
void message_parser_feed(struct message_parser *parser, const void *data,
			 size_t size);
/* Ends the input, destroys the parser and returns the tree (caller frees
 * with message_part_free()). */
struct message_part *message_parser_finish(struct message_parser **parser);
/* Aborts a parse. */
void message_parser_destroy(struct message_parser **parser);

/* Convenience: parses a whole message in memory. */
struct message_part *
message_parse(const void *data, size_t size,
	      const struct message_parser_limits *limits);

#endif
