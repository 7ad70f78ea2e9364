/* message_part.h: the MIME part tree of one stored message, as produced by
 * message_parser.h, and its compact binary form for the index cache.
 *
 * Offsets are physical bytes in the stored file (LF line ends, CRLF
 * tolerated); "virtual" sizes count every bare LF as CRLF, as IMAP wants.
 * Header values kept per part are raw (still folded: the line breaks of
 * continuation lines are kept, the final one is not; leading white space
 * of the first line is dropped, as in Dovecot's full_value), only
 * for the fields IMAP ENVELOPE/BODYSTRUCTURE need, bounded by the parser's
 * max_header_bytes. Nothing here interprets the values. */
#ifndef HERON_MESSAGE_PART_H
#define HERON_MESSAGE_PART_H

#include <stddef.h>
#include <stdint.h>

enum message_field {
	/* MIME fields, kept for every part; the first occurrence wins. */
	MESSAGE_FIELD_CONTENT_TYPE,
	MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING,
	MESSAGE_FIELD_CONTENT_ID,
	MESSAGE_FIELD_CONTENT_DESCRIPTION,
	MESSAGE_FIELD_CONTENT_DISPOSITION,
	MESSAGE_FIELD_CONTENT_LANGUAGE,
	MESSAGE_FIELD_CONTENT_LOCATION,
	MESSAGE_FIELD_CONTENT_MD5,
	/* Envelope fields, kept only for message headers (root and the
	 * child of message/rfc822). Like Dovecot: a repeated string field
	 * replaces the earlier one, repeated address fields are joined with
	 * ", ". */
	MESSAGE_FIELD_DATE,
	MESSAGE_FIELD_SUBJECT,
	MESSAGE_FIELD_FROM,
	MESSAGE_FIELD_SENDER,
	MESSAGE_FIELD_REPLY_TO,
	MESSAGE_FIELD_TO,
	MESSAGE_FIELD_CC,
	MESSAGE_FIELD_BCC,
	MESSAGE_FIELD_IN_REPLY_TO,
	MESSAGE_FIELD_MESSAGE_ID,
	MESSAGE_FIELD_COUNT
};
#define MESSAGE_FIELD_FIRST_ENVELOPE MESSAGE_FIELD_DATE

enum message_part_flags {
	/* Content-Type multipart/ *: children are its body parts (there may
	 * be none: no boundary, no boundary line, or a limit). */
	MESSAGE_PART_FLAG_MULTIPART = 0x01,
	/* message/rfc822 (explicit, or the multipart/digest default): the
	 * one child, if any, is the encapsulated message. */
	MESSAGE_PART_FLAG_MESSAGE_RFC822 = 0x02,
	/* text/ * or no Content-Type (text/plain default): IMAP reports
	 * body lines. */
	MESSAGE_PART_FLAG_TEXT = 0x04,
	/* The header is a message header (root, child of message/rfc822):
	 * envelope fields were collected. */
	MESSAGE_PART_FLAG_IS_MESSAGE = 0x08,
	/* No Content-Type: type/subtype are the RFC 2045/2046 defaults. */
	MESSAGE_PART_FLAG_DEFAULT_TYPE = 0x10,
	/* A limit (parts, nesting) stopped the parse of this part's
	 * content: its body is opaque. */
	MESSAGE_PART_FLAG_LIMITED = 0x20,
};
#define MESSAGE_PART_FLAGS_ALL 0x3f

struct message_size {
	uint64_t physical;	/* bytes in the file */
	uint64_t virtual_size;	/* bytes with bare LF counted as CRLF */
	uint64_t lines;		/* LF count */
};

struct message_part {
	struct message_part *parent, *next, *children;
	unsigned int children_count;
	unsigned int flags;		/* enum message_part_flags */
	uint64_t header_offset;		/* physical offset of the header */
	struct message_size header;	/* includes the blank line, if any */
	uint64_t body_offset;		/* physical offset of the body */
	struct message_size body;	/* for multipart: all its content */
	/* Content-Type type and subtype as written (case kept); the defaults
	 * ("text"/"plain", "message"/"rfc822") with DEFAULT_TYPE. */
	char *type, *subtype;
	char *fields[MESSAGE_FIELD_COUNT];	/* raw values or NULL */
	size_t field_lens[MESSAGE_FIELD_COUNT];
};

/* Frees the tree below and including *part and sets it NULL. */
void message_part_free(struct message_part **part);
/* Number of parts in the tree (root included). */
unsigned int message_part_count(const struct message_part *root);

/* Appends the tree's binary form to a fresh heap buffer (caller frees). */
void message_part_serialize(const struct message_part *root,
			    unsigned char **data_r, size_t *size_r);
/* Rebuilds a tree from message_part_serialize() output; at most max_parts
 * parts and max_depth levels. Returns 0, or -1 with *error_r (static
 * text) on a corrupt blob. */
int message_part_deserialize(const unsigned char *data, size_t size,
			     unsigned int max_parts, unsigned int max_depth,
			     struct message_part **root_r,
			     const char **error_r);

#endif
