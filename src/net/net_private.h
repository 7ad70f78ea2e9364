/* net_private.h: what conn.c and worker.c share. */
#ifndef HERON_NET_PRIVATE_H
#define HERON_NET_PRIVATE_H

#include "net/conn.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

struct worker;

/* Creates a connection for an accepted fd and calls ops->create. On
 * failure the fd is closed. */
void conn_accept(struct worker *w, int fd, const struct sockaddr *sa,
		 const struct listener_conf *l, const struct proto_ops *ops);
/* Closes a connection now (shutdown): destroy reason is given. */
void conn_destroy(struct conn *conn, const char *reason);
/* Destroys every connection of this process (worker shutdown). */
void conn_destroy_all(const char *reason);

/* worker.c services for conn.c */
struct event_base *worker_base(struct worker *w);
const struct settings *worker_settings(struct worker *w);
SSL_CTX *worker_tls_ctx(struct worker *w);
/* Per-key counters (IPs, users). Returns the new count, or -1 when
 * incrementing would pass max (then nothing changes). */
int worker_count_add(struct worker *w, bool is_user, const char *key,
		     unsigned max);
void worker_count_del(struct worker *w, bool is_user, const char *key);
void worker_conn_link(struct worker *w, struct conn *conn);
void worker_conn_unlink(struct worker *w, struct conn *conn);

/* For the worker side of the control socket (control.c). */
struct conn *conn_list_first(void);
struct conn *conn_list_next(struct conn *conn);
const char *conn_proto_name(struct conn *conn);	/* ops->name */
unsigned conn_remote_port(struct conn *conn);	/* 0 for Unix sockets */
unsigned long conn_age_secs(struct conn *conn);
void *conn_session(struct conn *conn);
/* If conn is a session of user: sends the protocol's goodbye, closes it
 * after the flush (or CONN_KICK_FLUSH_SECS) and returns 1; else 0. */
int conn_kick(struct conn *conn, const char *user);

#endif
