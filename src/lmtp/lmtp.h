/* lmtp.h: the LMTP delivery service (RFC 2033) and `heron deliver`.
 *
 * The server side plugs into a worker through lmtp_proto_ops (conn.h);
 * recipients are checked with auth_lookup_user (auth.h) and messages are
 * written to each recipient's INBOX through store.h. A success reply for a
 * recipient is sent only after store_delivery_commit returned 0 (RFC 2033
 * section 4.2: the message must not be lost after a 250). */
#ifndef HERON_LMTP_H
#define HERON_LMTP_H

struct settings;

extern const struct proto_ops lmtp_proto_ops;

/* `heron deliver -u USER [-f SENDER] < msg`: checks USER against
 * set->passwd_file, reads the message from in_fd (CRLF becomes LF, a
 * leading mbox "From " line is dropped) and stores it in USER's INBOX with
 * Return-Path and Delivered-To prepended. sender may be NULL (null
 * reverse-path). Returns a sysexits code: 0 delivered, 64 usage,
 * 65 bad data (message too big), 67 no such user, 75 temporary failure
 * (unreadable password file, read error, disk full, store error). */
int lmtp_deliver_cli(const struct settings *set, const char *user,
		     const char *sender, int in_fd);

#endif
