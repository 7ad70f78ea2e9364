/* imap_fetch.h: the pure parts of FETCH (RFC 3501 6.4.5 and 7.4.2, RFC
 * 9051 6.4.5, RFC 7162 3.1.4): fetch-att arguments -> a list of items,
 * and the LF -> CRLF converter that streams a byte range of a stored
 * message as IMAP wants it (every bare LF sent as CRLF), with partial
 * <start.length> counted in those converted ("virtual") octets. No I/O and
 * no session here: cmd_fetch.c reads files and writes replies.
 *
 * BINARY[] (RFC 3516, RFC 9051 6.4.5): the same range conversion followed
 * by Content-Transfer-Encoding decoding (mail/decode.h), partial counted
 * in decoded octets (imap_binary_*).
 *
 * Also the MIME tree's entry in the store's per-message cache, shared
 * with SEARCH (imap_parts_cache_get/put, the only store calls here).
 *
 * Limits: IMAP_FETCH_PATH_MAX section levels, IMAP_FETCH_ITEMS_MAX items
 * and IMAP_FETCH_FIELDS_MAX header field names per command. */
#ifndef HERON_IMAP_FETCH_H
#define HERON_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_parser.h"
#include "mail/decode.h"
#include "store/store.h"

#define IMAP_FETCH_PATH_MAX 32
#define IMAP_FETCH_ITEMS_MAX 100
#define IMAP_FETCH_FIELDS_MAX 1000

enum imap_fetch_type {
	IMAP_FETCH_UID,
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY,		/* BODY without section: structure */
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_MODSEQ,		/* RFC 7162 3.3.2 */
	IMAP_FETCH_RFC822,		/* = BODY[] (sets \Seen) */
	IMAP_FETCH_RFC822_HEADER,	/* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT,		/* = BODY[TEXT] (sets \Seen) */
	IMAP_FETCH_SECTION,		/* BODY[...] and BODY.PEEK[...] */
	IMAP_FETCH_BINARY,		/* BINARY[...], BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE,		/* BINARY.SIZE[...] */
};

/* What an item needs before its message's reply can be written. */
enum imap_fetch_need {
	IMAP_FETCH_NEED_FILE = 1 << 0,	 /* message content */
	IMAP_FETCH_NEED_HEADER = 1 << 1, /* the root header parsed */
	IMAP_FETCH_NEED_PARTS = 1 << 2,	 /* the whole MIME tree */
	IMAP_FETCH_SETS_SEEN = 1 << 3,	 /* RFC 3501 6.4.5: sets \Seen */
};

struct imap_fetch_item {
	enum imap_fetch_type type;
	/* Sections (IMAP_FETCH_SECTION; RFC822* are mapped onto them;
	 * BINARY* have only a path, kind IMAP_SECTION_NONE). */
	unsigned int path[IMAP_FETCH_PATH_MAX];
	unsigned int path_len;
	enum imap_section_kind kind;
	char **fields;			/* HEADER.FIELDS[.NOT] names */
	unsigned int fields_count;
	bool has_partial;
	uint64_t partial_start, partial_len;
	/* The label of the reply, e.g. "BODY[1.HEADER.FIELDS (FROM)]<0>",
	 * "RFC822.SIZE" (heap). */
	char *label;
	unsigned needs;			/* enum imap_fetch_need */
};

struct imap_fetch_spec {
	struct imap_fetch_item *items;
	size_t count;
	unsigned needs;			/* union of the items' needs */
	/* RFC 7162 3.1.4.1 CHANGEDSINCE: only messages with a greater
	 * modseq are fetched (MODSEQ is then added to the items). */
	bool has_changedsince;
	uint64_t changedsince;
	bool has_modseq;		/* MODSEQ asked for or implied */
	/* RFC 7162 3.2.6 VANISHED (UID FETCH, with CHANGEDSINCE only):
	 * the caller reports expunged UIDs of the set first. */
	bool has_vanished;
};

/* Parses the FETCH arguments after the sequence set: a macro (ALL, FAST,
 * FULL), one fetch-att, or a parenthesized list of them, then optionally
 * the modifier list "(CHANGEDSINCE n)". With is_uid, UID is put first
 * unless asked for (RFC 3501 6.4.8). Repeated UID/FLAGS/MODSEQ are kept
 * once. Returns 0, or -1 with *error_r (static text for a BAD reply).
 * Free with imap_fetch_spec_free() in both cases. */
int imap_fetch_parse(const struct imap_arg *args, size_t count, bool is_uid,
		     struct imap_fetch_spec *spec, const char **error_r);
void imap_fetch_spec_free(struct imap_fetch_spec *spec);

/* Applies a partial <start.len> (has_partial) to a section of vsize
 * octets: *skip_r octets are dropped and *count_r sent (0 when start is
 * past the end: RFC 3501 6.4.5 then gives an empty string). */
void imap_fetch_partial_clip(const struct imap_fetch_item *item,
			     uint64_t vsize, uint64_t *skip_r,
			     uint64_t *count_r);

/* Length of the header at the start of data[0..len) including the blank
 * line that ends it (LF or CRLF line ends), or 0 if no blank line is in
 * data yet. */
size_t imap_fetch_header_end(const void *data, size_t len);

/* ---- LF -> CRLF streaming ----
 * Fed the physical bytes of a range in chunks of any size; produces the
 * virtual octets skip .. skip+count-1 of it. A bare LF (not preceded by
 * CR, the range start counting as "not CR") becomes CRLF; a partial start
 * or end may fall between the CR and LF made from one LF. */
struct imap_crlf {
	uint64_t skip;		/* virtual octets still to drop */
	uint64_t left;		/* virtual octets still to produce */
	bool last_cr;		/* the previous physical byte was CR */
};

void imap_crlf_init(struct imap_crlf *c, uint64_t skip, uint64_t count);
/* Converts in[0..in_len); out must have room for 2 * in_len bytes.
 * Returns the octets written to out. Stops early once left is 0. */
size_t imap_crlf_convert(struct imap_crlf *c, const void *in, size_t in_len,
			 void *out);
static inline bool imap_crlf_is_done(const struct imap_crlf *c)
{
	return c->left == 0;
}

/* ---- BINARY[] (RFC 3516) ----
 * Fed the physical bytes of a leaf part's body, or of a whole single-part
 * message whose first plain_left bytes (the header) are not decoded, in
 * chunks of any size: converts bare LF -> CRLF as for BODY[] (RFC 3516
 * 6: textual sections go out with CRLF; quoted-printable line breaks
 * are CRLF in canonical form, RFC 2045 6.7), then decodes the CTE. Of
 * the decoded octets, skip .. skip+count-1 are produced; all are counted
 * in size, and has_nul tells whether a produced octet was NUL (the reply
 * is then a literal8, RFC 3516 4.3). */
struct imap_binary {
	struct imap_crlf crlf;
	struct decode_state dec;
	uint64_t plain_left;	/* physical octets to pass undecoded */
	uint64_t skip, left;	/* decoded octets to drop / to produce */
	uint64_t size;		/* decoded octets so far */
	bool has_nul;
};

/* Room imap_binary_convert needs in out for in_len input octets (and
 * imap_binary_finish: IMAP_BINARY_OUT_MAX(0)). SIZE-MATH: LF -> CRLF at
 * most doubles, decoding adds at most DECODE_OUT_MAX(0) held octets. */
#define IMAP_BINARY_OUT_MAX(in_len) (2 * (in_len) + DECODE_OUT_MAX(0))

void imap_binary_init(struct imap_binary *b, enum decode_type type,
		      uint64_t plain_len, uint64_t skip, uint64_t count);
/* Converts in[0..in_len); scratch has room for 2 * in_len octets, out
 * for IMAP_BINARY_OUT_MAX(in_len). Returns the octets written to out. */
size_t imap_binary_convert(struct imap_binary *b, const void *in,
			   size_t in_len, void *scratch, void *out);
/* At the end of the input: what the decoder held back. */
size_t imap_binary_finish(struct imap_binary *b, void *out);
static inline bool imap_binary_is_done(const struct imap_binary *b)
{
	return b->left == 0;
}

/* ---- the MIME tree in the store's per-message cache ----
 * Entry: one kind byte, 'F' (the whole tree) or 'H' (only the root
 * header was parsed: enough for ENVELOPE, HEADER, TEXT), then
 * message_part_serialize(). A deserialized tree equals the parsed one,
 * so replies are byte-identical either way. */

/* 1 with *root_r (caller frees) and *is_full_r when uid's tree is cached
 * (a whole one when need_full), 0 when not. Store errors and corrupt
 * entries are logged and count as 0. */
int imap_parts_cache_get(struct store_mailbox *mb, uint32_t uid,
			 bool need_full, struct message_part **root_r,
			 bool *is_full_r);
/* Queues root as uid's entry (store_msg_cache_put); the caller flushes
 * (store_msg_cache_flush) at the end of its slice. */
void imap_parts_cache_put(struct store_mailbox *mb, uint32_t uid,
			  const struct message_part *root, bool is_full);

#endif
