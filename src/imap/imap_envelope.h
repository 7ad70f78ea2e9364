/* imap_envelope.h: RFC 3501 7.4.2 ENVELOPE from a parsed message header.
 * Output matches Dovecot 2.3: subject and address names are written "for
 * humans" (CR/LF dropped, white space runs collapsed, literal when not
 * plain 7-bit), other strings quoted unless they need a literal; sender
 * and reply-to default to from. With UTF8=ACCEPT (_write_flags) valid
 * UTF-8 counts as plain. */
#ifndef HERON_IMAP_ENVELOPE_H
#define HERON_IMAP_ENVELOPE_H

#include <event2/buffer.h>

#include "mail/message_part.h"

/* Appends "(date subject from sender reply-to to cc bcc in-reply-to
 * message-id)" for msg, a part with MESSAGE_PART_FLAG_IS_MESSAGE (other
 * parts, or NULL, give the all-NIL envelope). */
void imap_envelope_write(struct evbuffer *out, const struct message_part *msg);
/* The same for a session: with IMAP_QUOTE_UTF8 in quote_flags (UTF8=ACCEPT
 * enabled, RFC 6855 3) strings that are valid UTF-8 go out quoted rather
 * than as literals; other 8-bit data stays a literal. */
void imap_envelope_write_flags(struct evbuffer *out,
			       const struct message_part *msg,
			       unsigned quote_flags);

/* IMAP string helpers shared with imap_bodystructure.c: nstring drops CR
 * and LF (unfolds), for_humans as described above.
 * TODO: replace with imap/imap_quote.h once it exists. */
void imap_envelope_append_nstring(struct evbuffer *out, const char *s,
				  size_t len);
void imap_envelope_append_for_humans(struct evbuffer *out, const char *s,
				     size_t len);

#endif
