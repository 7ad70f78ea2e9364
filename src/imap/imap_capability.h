/* imap_capability.h: the CAPABILITY list for a session's state. It lists
 * exactly what this server implements. */
#ifndef HERON_IMAP_CAPABILITY_H
#define HERON_IMAP_CAPABILITY_H

struct imap_client;

/* Space-separated capabilities for the session's current state (TLS,
 * login, plaintext policy). Static buffer: valid until the next call. */
const char *imap_capability_string(struct imap_client *client);

#endif
