/* imap_sort.h: the pure parts of SORT (RFC 5256 3, ESORT RFC 5267 3,
 * DISPLAYFROM/DISPLAYTO RFC 5957): the sort program, base subject
 * extraction (RFC 5256 2.1), the sent date (2.2), the i;unicode-casemap
 * collation key (RFC 5051), the per-message sort keys and the sort
 * itself. No session and no I/O: cmd_sort.c gives the raw header values
 * (as kept in the MIME part tree, still folded) and the index record.
 *
 * Memory: per message a few heap strings (collation keys), each cut at
 * IMAP_SORT_KEY_MAX bytes, so two subjects or addresses that agree in
 * their first IMAP_SORT_KEY_MAX key bytes compare equal. */
#ifndef HERON_IMAP_SORT_H
#define HERON_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap/imap_parser.h"

#define IMAP_SORT_KEY_MAX 512
/* Sort criteria accepted in one program (duplicates included). */
#define IMAP_SORT_MAX_CRITERIA 16

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,		/* RFC 5957 */
	IMAP_SORT_DISPLAYTO,
};

/* String keys of an item, indexed by enum imap_sort_str. */
enum imap_sort_str {
	IMAP_SORT_STR_SUBJECT,
	IMAP_SORT_STR_FROM,
	IMAP_SORT_STR_TO,
	IMAP_SORT_STR_CC,
	IMAP_SORT_STR_DISPLAYFROM,
	IMAP_SORT_STR_DISPLAYTO,
	IMAP_SORT_STR_COUNT
};

struct imap_sort_criterion {
	enum imap_sort_key key;
	bool is_reverse;
};

struct imap_sort_program {
	struct imap_sort_criterion crit[IMAP_SORT_MAX_CRITERIA];
	unsigned count;
	/* Header values needed: bits of enum imap_sort_need. */
	unsigned needs;
};

enum imap_sort_need {
	IMAP_SORT_NEED_DATE = 1 << 0,
	IMAP_SORT_NEED_SUBJECT = 1 << 1,
	IMAP_SORT_NEED_FROM = 1 << 2,
	IMAP_SORT_NEED_TO = 1 << 3,
	IMAP_SORT_NEED_CC = 1 << 4,
	IMAP_SORT_NEED_DISPLAYFROM = 1 << 5,
	IMAP_SORT_NEED_DISPLAYTO = 1 << 6,
};
#define IMAP_SORT_NEED_HEADER 0x7f

/* Parses the sort-criteria list members list[0..count) (RFC 5256 5:
 * [REVERSE] key, at least one). Returns 0, or -1 with a static
 * *error_r for a BAD reply. */
int imap_sort_program_parse(const struct imap_arg *list, size_t count,
			    struct imap_sort_program *prog,
			    const char **error_r);

/* Raw header values of one message (NULL: field absent), still folded. */
struct imap_sort_header {
	const char *date, *subject, *from, *to, *cc;
	size_t date_len, subject_len, from_len, to_len, cc_len;
};

/* One message to sort. */
struct imap_sort_item {
	uint32_t seq;			/* the implicit last criterion */
	time_t sent;			/* RFC 5256 2.2 */
	time_t arrival;			/* INTERNALDATE */
	uint64_t size;
	char *str[IMAP_SORT_STR_COUNT];	/* keys (heap) or NULL */
};

/* Fills item's keys the program needs from hdr (NULL when the program
 * needs no header) and the index values. */
void imap_sort_item_fill(struct imap_sort_item *item,
			 const struct imap_sort_program *prog,
			 const struct imap_sort_header *hdr, uint32_t seq,
			 time_t internal_date, uint64_t size);
void imap_sort_item_free(struct imap_sort_item *item);

/* Sorts items[0..count) by the program, ties by sequence number. */
void imap_sort_items(struct imap_sort_item *items, size_t count,
		     const struct imap_sort_program *prog);

/* RFC 5256 2.1 base subject of a raw (folded, maybe RFC 2047 encoded)
 * Subject value, not yet case-mapped: heap string in *base_r. Returns
 * true when the extraction removed a subj-refwd, a "(fwd)" trailer or
 * a subj-fwd-hdr/trl pair (a reply or forward, RFC 5256 REFERENCES). */
bool imap_sort_base_subject(const char *raw, size_t len, char **base_r);

/* RFC 5051 i;unicode-casemap: titlecase, then NFKD (utf8proc); octet
 * comparison of the results is the collation. Invalid UTF-8 bytes count
 * as U+FFFD. Heap result, cut at IMAP_SORT_KEY_MAX bytes. */
char *imap_sort_casemap(const char *in, size_t len);

/* RFC 5256 2.2: the Date: value as UTC, else the internal date. */
time_t imap_sort_sent_date(const char *raw, size_t len,
			   time_t internal_date);

/* RFC 5256 3 "addr-mailbox of the first address" (FROM/TO/CC) or RFC
 * 5957 display name (with the addr-spec as fallback), case-mapped. */
char *imap_sort_addr_key(const char *raw, size_t len, bool is_display);

#endif
