/* imap_vanished.h: QRESYNC's VANISHED responses (RFC 7162 3.2.10): the
 * plain form that replaces EXPUNGE in a selected mailbox once QRESYNC is
 * enabled, and VANISHED (EARLIER) for SELECT/EXAMINE (QRESYNC) and UID
 * FETCH (CHANGEDSINCE n VANISHED), built from the store's expunge history
 * (store_mailbox_expunged_since). UIDs go out as ranges ("3:7,9"), at
 * most IMAP_VANISHED_RANGES_PER_LINE ranges per response line (more
 * ranges: more VANISHED responses). Output only; no state. */
#ifndef HERON_IMAP_VANISHED_H
#define HERON_IMAP_VANISHED_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_client.h"
#include "imap/imap_seqset.h"

#define IMAP_VANISHED_RANGES_PER_LINE 500

/* "* VANISHED <uids>" for count ascending UIDs of the view the client
 * knows (nothing when count is 0). */
void imap_vanished_send(struct imap_client *client, const uint32_t *uids,
			size_t count);

/* "* VANISHED (EARLIER) <uids>" for the UIDs of known (UIDs, not
 * sequence numbers) not below min_uid that were expunged with a modseq
 * greater than modseq. When the store's history no longer reaches back
 * to modseq, every such UID below UIDNEXT is reported (RFC 7162 3.2.6,
 * <minmodseq>). UIDs still in the view are never reported: the next sync
 * announces them with the plain form. Returns 0, or -1 (logged; nothing
 * sent). */
int imap_vanished_send_earlier(struct imap_client *client,
			       const struct imap_seqset *known,
			       uint32_t min_uid, uint64_t modseq);

/* imap_vanished_send_earlier for a UID set argument (UID FETCH ...
 * (CHANGEDSINCE modseq VANISHED)): '*' stands for UIDNEXT - 1, so UIDs
 * above the view's last are covered; "$" is the saved search result (RFC
 * 5182). The set was checked already: a syntax error sends nothing.
 * Returns 0 or -1. */
int imap_vanished_send_for_set(struct imap_client *client,
			       const struct imap_arg *arg, uint64_t modseq);

#endif
