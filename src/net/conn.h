/* conn.h: one client connection in a worker: socket, buffers, TLS,
 * timeouts. Protocol modules (pop3/, lmtp/, imap/) sit on top through a
 * struct proto_ops; they never touch sockets or OpenSSL directly.
 *
 * Buffers are libevent evbuffers. Input is read only while the output is
 * below CONN_OUTPUT_HIWAT, so a client that never reads its replies stalls
 * its own session and nothing else (back-pressure). */
#ifndef HERON_CONN_H
#define HERON_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/config.h"

struct conn;
struct evbuffer;
struct event_base;

/* Produce output only while less than this is queued (bytes). */
#define CONN_OUTPUT_HIWAT (256 * 1024)

struct proto_ops {
	const char *name;		/* "pop3", "lmtp", "imap" */
	/* A new connection: send the greeting, return the session (or NULL
	 * to refuse: the connection is then closed). */
	void *(*create)(struct conn *conn);
	/* New input is in conn_input(conn). */
	void (*on_input)(void *session);
	/* The output queue fell below CONN_OUTPUT_HIWAT / 2: continue a
	 * long reply (RETR, FETCH). May be NULL. */
	void (*on_drain)(void *session);
	/* The connection is gone (EOF, error, timeout, conn_close). Free the
	 * session; do not touch conn after returning. */
	void (*destroy)(void *session, const char *reason);
	/* Sent (best effort) before closing a connection refused for
	 * max_conns_per_ip: one complete reply line with CRLF. */
	const char *busy_reply;
	/* Sent (best effort) before closing a connection that did not log
	 * in in time (pre-login idle timeout or login deadline): one
	 * complete reply line with CRLF. NULL: just close. */
	const char *login_timeout_reply;
};

/* ---- for protocol modules ---- */
struct evbuffer *conn_input(struct conn *conn);
struct evbuffer *conn_output(struct conn *conn);
size_t conn_output_len(struct conn *conn);
/* Appends formatted text to the output. */
void conn_printf(struct conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void conn_write(struct conn *conn, const void *data, size_t len);
/* Takes everything in buf: on a connection with nothing queued it is
 * sent at once (one send() or SSL_write(), no trip through the event
 * loop); what the socket doesn't take is queued as usual. */
void conn_send_now(struct conn *conn, struct evbuffer *buf);

/* Reads one line ending in LF (a preceding CR is stripped) from the input.
 * Returns 1 and a NUL-ended heap line in *line_r (caller frees; the line
 * may contain NUL bytes, *len_r is its length), 0 if no complete line is
 * buffered yet, or -1 if the line is longer than max_len: then the rest of
 * that line is discarded as it arrives and the caller should reply with an
 * error (policy: skip to EOL). */
int conn_read_line(struct conn *conn, size_t max_len, char **line_r,
		   size_t *len_r);

/* Stops or resumes calling on_input (e.g. while an auth request is out). */
void conn_pause_input(struct conn *conn, bool pause);
/* Idle timeout: the connection is closed (destroy reason "timeout") after
 * secs without input. 0 disables. Reset on every input. */
void conn_set_idle_timeout(struct conn *conn, unsigned secs);
/* Closes after the queued output is sent (QUIT, fatal errors). No further
 * on_input calls. */
void conn_close_after_flush(struct conn *conn, const char *reason);
/* Starts a TLS handshake after the queued output (the STLS/STARTTLS OK
 * reply) is flushed. Any input already buffered is discarded (RFC 3207
 * section 4.2 / the USENIX 2021 injection class). Returns -1 if TLS is not
 * configured. */
int conn_start_tls(struct conn *conn);

/* IMAP COMPRESS=DEFLATE (RFC 4978): call right after queueing the tagged
 * OK. What is queued now goes out as it is; from then on conn_input gives
 * inflated input and everything written (conn_output, conn_printf,
 * conn_write, conn_send_now) is deflated, below TLS if any. Input already
 * buffered is taken as compressed. Bad compressed input closes the
 * connection. Returns -1 if compression is already on or a TLS switch or
 * close is pending. Costs per connection: zlib's inflate state (~7 KB)
 * and its 32 KB window (touched as input comes: ~14 KB RSS at first, ~40
 * KB after 32 KB of commands), plus ~38 KB for the compressor only while
 * output is being compressed (released at every flush). */
int conn_start_compress(struct conn *conn);
bool conn_is_compressed(struct conn *conn);

bool conn_is_tls(struct conn *conn);
bool conn_is_loopback(struct conn *conn);	/* also true for Unix sockets */
bool conn_tls_available(struct conn *conn);
/* Plaintext passwords allowed: TLS, loopback, or allow_plaintext_auth. */
bool conn_plaintext_auth_ok(struct conn *conn);
const char *conn_remote_ip(struct conn *conn);	/* "unix" for sockets */
uint64_t conn_id(struct conn *conn);		/* unique in the worker */
const struct settings *conn_settings(struct conn *conn);
struct event_base *conn_event_base(struct conn *conn);
/* Per-user session accounting (max_conns_per_user). Returns -1 if the
 * user already has the maximum number of sessions in this worker. */
int conn_set_user(struct conn *conn, const char *user);
const char *conn_user(struct conn *conn);
/* Bytes read from / written to the peer so far. */
uint64_t conn_bytes_in(struct conn *conn);
uint64_t conn_bytes_out(struct conn *conn);

/* Command metrics (net/metrics.h): call begin when a command is dispatched
 * (name/len may be NULL/0 and given at the end instead) and end when its
 * final reply is queued; end without a pending begin does nothing. Costs
 * one clock_gettime per call. */
void conn_cmd_begin(struct conn *conn, const char *name, size_t len);
void conn_cmd_end(struct conn *conn, const char *name);

#endif
