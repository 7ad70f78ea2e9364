/* imap_bodystructure.h: BODY / BODYSTRUCTURE (RFC 3501 7.4.2, 9 "body")
 * from a message_part tree, and BODY[section] lookup (RFC 3501 6.4.5).
 *
 * Output matches Dovecot 2.3 (the corpus in tests/data/mime is checked
 * against it): sizes are virtual (CRLF) octets; text parts without a
 * charset get ("charset" "us-ascii") appended; parameters are RFC 2231
 * merged (see mail/mime_param.h); a multipart without children gets one
 * empty text/plain child, a message/rfc822 without child an all-NIL
 * envelope and an empty text/plain body. */
#ifndef HERON_IMAP_BODYSTRUCTURE_H
#define HERON_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "mail/message_part.h"

/* Appends the body structure of part (normally the root). extended:
 * BODYSTRUCTURE (with extension data), else BODY. */
void imap_bodystructure_write(struct evbuffer *out,
			      const struct message_part *part, bool extended);

enum imap_section_kind {
	IMAP_SECTION_NONE,		/* BODY[] or BODY[1.2] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,	/* caller filters the header */
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

/* A byte range of the stored file. Sending it means converting bare LF
 * to CRLF; virtual_size is the resulting size (for HEADER.FIELDS it is
 * the unfiltered header's: use imap_header_fields_write()). */
struct imap_section_range {
	uint64_t offset, physical_size, virtual_size;
};

/* Finds the range of BODY[path.kind]. path holds path_len part numbers
 * (1-based; path_len 0 = the whole message). Returns 0, or -1 when the
 * section does not exist (Dovecot then returns an empty string), e.g.
 * BODY[1.2] of a single part, HEADER/TEXT of a part that is not
 * message/rfc822, MIME without a path. */
int imap_section_lookup(const struct message_part *root,
			const unsigned int *path, unsigned int path_len,
			enum imap_section_kind kind,
			struct imap_section_range *range_r);

/* The part that path (path_len >= 1) names, as imap_section_lookup
 * resolves it (a single part's trailing ".1" is the part itself), or
 * NULL when there is none. For BINARY[path] (RFC 3516). */
const struct message_part *
imap_section_part(const struct message_part *root, const unsigned int *path,
		  unsigned int path_len);

/* Parses a section spec like "1.2.HEADER.FIELDS" / "TEXT" / "3" (no
 * field list) into path and kind. Returns 0, or -1 on bad syntax. */
int imap_section_parse(const char *spec, unsigned int *path,
		       unsigned int path_max, unsigned int *path_len_r,
		       enum imap_section_kind *kind_r);

/* Writes the fields of header (hdr[0..len), stored form) whose names are
 * (HEADER.FIELDS) or are not (exclude, HEADER.FIELDS.NOT) in names,
 * case-insensitively, in header order, with CRLF line ends, followed by
 * the blank line. Returns the number of bytes written. */
size_t imap_header_fields_write(struct evbuffer *out, const char *hdr,
				size_t len, const char *const *names,
				unsigned int names_count, bool exclude);

#endif
