/* imap_thread.h: THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256
 * 3) over messages already searched, and the THREAD response text. No
 * session and no I/O: cmd_sort.c fills the messages from their headers.
 *
 * Everything is iterative (no recursion over the tree), so a reply chain
 * of any length needs no stack. Work is O(n log n) for usual mail; the
 * loop checks of REFERENCES step 1 walk up the tree, skipped when the
 * child has no children (the common case of messages in order).
 * Limits: IMAP_THREAD_REFS_MAX references per message (the last ones:
 * the nearest ancestors are kept). */
#ifndef HERON_IMAP_THREAD_H
#define HERON_IMAP_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/strbuf.h"

#define IMAP_THREAD_REFS_MAX 64
/* Longest Message-ID kept; longer ones count as invalid. */
#define IMAP_THREAD_MSGID_MAX 512

enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

/* One searched message (the array is in sequence order). All strings
 * are owned by the caller (imap_thread_msg_free frees them). */
struct imap_thread_msg {
	uint32_t seq;		/* tie-breaker (RFC 5256 2.2) */
	uint32_t number;	/* printed: seq, or the UID for UID THREAD */
	time_t sent;		/* RFC 5256 2.2 */
	char *subject;		/* base subject key ("" = none) */
	bool is_reply;		/* imap_sort_base_subject's verdict */
	char *msgid;		/* normalized Message-ID, NULL if none */
	char **refs;		/* normalized references, oldest first */
	size_t refs_count;
};

void imap_thread_msg_free(struct imap_thread_msg *msg);

/* Fills msg->msgid and msg->refs from raw (folded) header values, any
 * of them NULL when absent: References, else the first In-Reply-To id
 * (RFC 5256 3 REFERENCES). IDs are normalized (rfc5322_msgid_next:
 * quoting and comments dropped). */
void imap_thread_msg_set_ids(struct imap_thread_msg *msg,
			     const char *message_id, size_t message_id_len,
			     const char *references, size_t references_len,
			     const char *in_reply_to, size_t in_reply_to_len);

/* Threads msgs[0..count) (in ascending sequence order) and appends the
 * thread-list text of RFC 5256 5 (" (1)(2 3)...", each thread preceded
 * by nothing but the first by a space) to out. */
void imap_thread_build(enum imap_thread_alg alg,
		       const struct imap_thread_msg *msgs, size_t count,
		       struct strbuf *out);

#endif
