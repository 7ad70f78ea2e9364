/* imap_mailbox_name.h: IMAP mailbox names and LIST patterns (RFC 3501
 * sections 5.1, 5.1.3, 6.3.8; RFC 6855 section 3 for UTF8=ACCEPT).
 *
 * Three spellings of a name:
 *   client  what the client sends: modified UTF-7 (7-bit), or UTF-8 when
 *           the session has UTF8=ACCEPT enabled;
 *   store   what store.h gets: always modified UTF-7 (so Maildir++ folder
 *           names on disk are what Dovecot/Courier write), "INBOX" upper
 *           case, also as the first level of "INBOX/child";
 *   UTF-8   the decoded store name: what imap_append_mailbox() writes and
 *           what LIST patterns are matched against.
 * The hierarchy separator is '/'. Names are bounded by the store
 * (store_mailbox_name_error); patterns by IMAP_MAILBOX_PATTERN_MAX. */
#ifndef HERON_IMAP_MAILBOX_NAME_H
#define HERON_IMAP_MAILBOX_NAME_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

#define IMAP_MAILBOX_SEP '/'
#define IMAP_MAILBOX_SEP_STR "/"
/* Longest reference + pattern accepted by LIST/LSUB, in bytes. */
#define IMAP_MAILBOX_PATTERN_MAX 4096

/* "INBOX" in any case (RFC 3501 5.1). */
bool imap_mailbox_name_is_inbox(const char *name);
/* Length of the leading "INBOX" level of name (5 for "inbox" and
 * "Inbox/x", else 0): matched case-insensitively. */
size_t imap_mailbox_name_inbox_len(const char *name);

/* Client name -> store name (heap, caller frees). is_utf8: the session has
 * UTF8=ACCEPT, name is UTF-8 (converted to mUTF-7); otherwise it must be
 * canonical modified UTF-7. Control characters (C0, DEL, C1) and
 * U+2028/U+2029 are refused in both (RFC 6855 section 3).
 * "INBOX" (any case) as the first level is upper-cased. Store rules ('.',
 * empty levels, length) are left to store_mailbox_name_error. Returns 0,
 * or -1 with a static *error_r. */
int imap_mailbox_name_from_client(const char *name, size_t len, bool is_utf8,
				  char **store_name_r, const char **error_r);
/* Store name -> UTF-8 (heap). -1 when it is not valid mUTF-7 (a folder
 * made by another program), such names are skipped by LIST. */
int imap_mailbox_name_to_utf8(const char *store_name, char **utf8_r);
/* Writes a store name as an IMAP mailbox (imap_append_mailbox: mUTF-7,
 * or UTF-8 with IMAP_QUOTE_UTF8). Returns -1 (nothing written) if the name
 * cannot be represented. */
int imap_mailbox_name_append(struct evbuffer *out, const char *store_name,
			     unsigned quote_flags);

/* RFC 3501 6.3.8: reference + pattern -> the canonical pattern in UTF-8
 * (heap), matched by imap_mailbox_pattern_match. A pattern starting with
 * the separator ignores the reference. Runs of wildcards are collapsed
 * ("%*" = "*"). Without is_utf8 a pattern that is not valid mUTF-7 is
 * used as it is. Returns 0, or -1 with *error_r (too long, bad UTF-8). */
int imap_mailbox_pattern_make(const char *ref, size_t ref_len,
			      const char *pattern, size_t pattern_len,
			      bool is_utf8, char **pattern_r,
			      const char **error_r);
/* '*' matches any characters, '%' any but the separator. The leading
 * INBOX level of name compares case-insensitively. name is UTF-8. */
bool imap_mailbox_pattern_match(const char *pattern, const char *name);

/* The answer to LIST ref "" (RFC 3501 6.3.8): the root of the reference,
 * its first level including the separator, "" for an empty reference. Heap. */
char *imap_mailbox_ref_root(const char *ref, size_t ref_len);

/* The parent of a store name (heap), or NULL for a top-level name. */
char *imap_mailbox_name_parent(const char *name);

/* Special-use attribute (RFC 6154) of a store name, or NULL: the default
 * folders Drafts, Sent, Trash, Junk, Archive by name. */
const char *imap_mailbox_special_use(const char *store_name);

#endif
