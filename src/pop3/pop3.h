/* pop3.h: the POP3 server side (RFC 1939 with RFC 2449 CAPA, RFC 5034
 * AUTH and RFC 2595 STLS) as a protocol module on top of net/conn.h.
 * The worker hands each accepted POP3 connection to pop3_proto_ops. */
#ifndef HERON_POP3_H
#define HERON_POP3_H

#include "net/conn.h"

extern const struct proto_ops pop3_proto_ops;

#endif
