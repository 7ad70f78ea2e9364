/* rfc5322.h: RFC 5322 header fields, address lists, dates, message-ids.
 *
 * Everything works on in-memory values and tolerates broken input the way
 * Dovecot does (addresses: a missing local part or domain becomes
 * "MISSING_MAILBOX" / "MISSING_DOMAIN", parsing stops at the first element
 * that cannot be read and keeps what came before). No decoding of RFC 2047
 * words here (see rfc2047.h). Output strings are heap allocated. */
#ifndef HERON_RFC5322_H
#define HERON_RFC5322_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define RFC5322_MISSING_MAILBOX "MISSING_MAILBOX"
#define RFC5322_MISSING_DOMAIN "MISSING_DOMAIN"
#define RFC5322_MAX_ADDRESSES 10000

/* One header field of a header block (views into the block). */
struct rfc5322_field {
	const char *name;	/* without the colon and trailing WSP */
	size_t name_len;
	const char *value;	/* after ":" and leading WSP, still folded */
	size_t value_len;	/* without the final line break */
	const char *raw;	/* the whole field incl. its final line break */
	size_t raw_len;
};

/* Iterates the fields of the header block data[0..len) from *pos; stops
 * (returns false) at the blank line or the end. Lines without a colon are
 * returned with name_len 0. */
bool rfc5322_header_next(const char *data, size_t len, size_t *pos,
			 struct rfc5322_field *field_r);
/* RFC 5322 2.2.3 unfolding: a heap copy without CR and LF. */
char *rfc5322_unfold(const char *value, size_t len, size_t *len_r);

/* An address list entry. A group start has only mailbox (the group
 * name) set, a group end has all four NULL: IMAP's ENVELOPE form. */
struct rfc5322_address {
	struct rfc5322_address *next;
	char *name, *route, *mailbox, *domain;
};

/* Parses an address-list / mailbox-list. Returns NULL for an empty list. */
struct rfc5322_address *rfc5322_address_parse(const char *value, size_t len);
void rfc5322_address_free(struct rfc5322_address **list);

/* RFC 5322 3.3 date-time with the 4.3 obsolete forms (two/three digit
 * years, alphabetic and military zones, comments, missing seconds). Sets
 * *time_r (UTC) and *tz_offset_r (minutes east). Returns 0 or -1. */
int rfc5322_date_parse(const char *value, size_t len, time_t *time_r,
		       int *tz_offset_r);

/* The first "<id-left@id-right>" in a value (comments and white space
 * inside are dropped); *id_r gets a heap "id-left@id-right" without angle
 * brackets. Returns 0, or -1 when there is none. *pos is advanced, so
 * repeated calls walk In-Reply-To / References lists. */
int rfc5322_msgid_next(const char *value, size_t len, size_t *pos,
		       char **id_r);

#endif
