/* conn.c: a client connection on top of a libevent bufferevent (plain or
 * OpenSSL). Owns the socket, the idle/stall timeouts, back-pressure and the
 * switch to TLS; the protocol module owns the session (struct proto_ops).
 *
 * Back-pressure: reading stops while more than CONN_OUTPUT_HIWAT bytes wait
 * to be sent, and the input buffer itself is capped (CONN_INPUT_MAX), so a
 * client that sends without reading costs bounded memory.
 *
 * Compression (IMAP COMPRESS=DEFLATE, RFC 4978): after conn_start_compress
 * the protocol reads and writes plaintext evbuffers of struct
 * conn_compress; input is inflated from the bufferevent's input (at most
 * up to the input cap, so a small bomb costs no more than a full input
 * buffer), output is deflated into the bufferevent's output, which for
 * TLS is what SSL_write takes: plaintext -> deflate -> TLS. Output is
 * flushed (Z_SYNC_FLUSH) after every protocol callback, in conn_send_now
 * and, for output made elsewhere (timers, auth replies), by an event. */
#include "net/net_private.h"
#include "net/metrics.h"
#include "net/zstream.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Stop reading from the socket while this much input is unprocessed. */
#define CONN_INPUT_MAX (64 * 1024)
/* A kicked session's goodbye gets this long to reach a slow reader. */
#define CONN_KICK_FLUSH_SECS 5
/* A TLS handshake (imaps, pop3s, STARTTLS/STLS) must finish this soon
 * (or within the idle timeout, if shorter): a half-done handshake holds
 * ~40 KB of OpenSSL state. */
#define CONN_TLS_HANDSHAKE_SECS 30
/* Protocols with a login (not LMTP): a connection still not logged in
 * after this many of its pre-login idle periods is closed at its next
 * input. A byte every few seconds (slowloris) resets the idle timer but
 * not this deadline. The protocol's login_timeout_reply (IMAP: "* BYE
 * Login timeout") is sent first, also at a pre-login idle timeout. */
#define CONN_PRELOGIN_IDLE_PERIODS 2
/* With compression, output is compressed (without a flush) as soon as
 * this much plaintext waits, so CONN_OUTPUT_HIWAT counts compressed
 * bytes and plaintext never piles up. */
#define CONN_ZCHUNK (32 * 1024)
/* ... and output counts as full once this much plaintext went through
 * the compressor since the last flush: very compressible output (100:1)
 * would otherwise keep one callback busy for ~25 MB per high-water mark
 * while the worker's other connections wait. */
#define CONN_ZROUND_MAX (1024 * 1024)

/* COMPRESS=DEFLATE state of a connection. */
struct conn_compress {
	struct zstream *zs;
	struct evbuffer *in;	/* inflated input: what conn_input gives */
	struct evbuffer *raw;	/* compressed input from before the switch */
	struct evbuffer *out;	/* plaintext output: what conn_output gives */
	struct event *flush_ev;	/* flushes output made outside callbacks */
	bool is_sending;	/* in conn_send_now: no flush event needed */
	size_t round_bytes;	/* plaintext compressed since the last flush */
};

struct conn {
	struct worker *worker;
	struct conn *prev, *next;	/* worker's list */
	struct bufferevent *bev;
	const struct proto_ops *ops;
	void *session;
	const struct listener_conf *listener;
	uint64_t id;
	uint64_t bytes_in, bytes_out;
	char *user;			/* counted in max_conns_per_user */
	char *close_reason;		/* set by conn_close_after_flush */
	unsigned idle_secs;
	int fd;
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
	time_t started;			/* CLOCK_MONOTONIC seconds */
	enum metrics_proto mproto;
	int cmd_index;			/* metrics_cmd_index of a command */
	uint64_t cmd_start_nsecs;	/* running since, 0 = none */
	bool is_counted:1;		/* in metrics_conn_open */
	bool tls_handshaking:1;		/* until BEV_EVENT_CONNECTED */
	/* imaps/pop3s: no OpenSSL state until the client sends something */
	struct event *tls_wait;
	unsigned prelogin_secs;		/* login deadline after started; 0 = none */
	bool is_tls:1;
	bool is_loopback:1;
	bool input_paused:1;
	bool closing:1;			/* no more input, close when flushed */
	bool tls_pending:1;		/* start TLS when output is flushed */
	bool skipping_line:1;		/* discarding an over-long line */
	bool in_callback:1;
	bool destroyed:1;		/* destroy requested in a callback */
	struct conn_compress *z;	/* NULL unless COMPRESS is active */
};

static uint64_t conn_next_id = 1;
/* Every connection of this process (a worker is one process). */
static struct conn *conn_list;

static void conn_read_cb(struct bufferevent *bev, void *ctx);
static void conn_write_cb(struct bufferevent *bev, void *ctx);
static void conn_event_cb(struct bufferevent *bev, short what, void *ctx);

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_UNIX)
		return true;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		const uint8_t *b = in6->sin6_addr.s6_addr;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
			(IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127);
	}
	return false;
}

static void sockaddr_ip(const struct sockaddr *sa, char *buf, size_t size)
{
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)
				     sa)->sin_addr, buf, size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
				      (const void *)sa)->sin6_addr, buf, size);
	else
		snprintf(buf, size, "unix");
}

static uint16_t sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->
			     sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->
			     sin6_port);
	return 0;
}

static time_t conn_now_secs(void)
{
	return (time_t)(time_mono_coarse_msecs() / 1000);
}

/* Bytes in and out per protocol, counted where the buffers change. */
static void conn_input_cb(struct evbuffer *buf,
			  const struct evbuffer_cb_info *info, void *ctx)
{
	struct conn *c = ctx;

	if (info->n_added > 0)
		metrics_bytes(c->mproto, false, info->n_added);
}

static void conn_output_cb(struct evbuffer *buf,
			   const struct evbuffer_cb_info *info, void *ctx)
{
	struct conn *c = ctx;

	if (info->n_added > 0)
		metrics_bytes(c->mproto, true, info->n_added);
}

static void conn_apply_timeouts(struct conn *c)
{
	struct timeval tv = { .tv_sec = c->idle_secs, .tv_usec = 0 };

	if (c->tls_handshaking &&
	    (c->idle_secs == 0 || c->idle_secs > CONN_TLS_HANDSHAKE_SECS))
		tv.tv_sec = CONN_TLS_HANDSHAKE_SECS;

	/* The same limit covers a peer that stops reading (write stall). */
	bufferevent_set_timeouts(c->bev, tv.tv_sec ? &tv : NULL,
				 tv.tv_sec ? &tv : NULL);
}

/* Input is buffered up to this much (the read high-water mark). */
static size_t conn_input_max(struct conn *c)
{
	size_t line_max = worker_settings(c->worker)->max_line_length + 2;

	return line_max > CONN_INPUT_MAX ? line_max : CONN_INPUT_MAX;
}

static void conn_setup_bev(struct conn *c)
{
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
			  c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, conn_input_max(c));
	bufferevent_setwatermark(c->bev, EV_WRITE, CONN_OUTPUT_HIWAT / 2, 0);
	/* libevent writes at most 16 KiB per call by default: a big FETCH
	 * or RETR would cost a syscall and a loop turn per 16 KiB. */
	bufferevent_set_max_single_write(c->bev, CONN_OUTPUT_HIWAT);
	evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input_cb, c);
	evbuffer_add_cb(bufferevent_get_output(c->bev), conn_output_cb, c);
	conn_apply_timeouts(c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static struct bufferevent *conn_new_tls_bev(struct conn *c)
{
	SSL *ssl = SSL_new(worker_tls_ctx(c->worker));
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	/* With CLOSE_ON_FREE the bufferevent owns (and frees) the SSL and
	 * the socket. */
	bev = bufferevent_openssl_socket_new(worker_base(c->worker), c->fd,
					     ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE |
					     BEV_OPT_DEFER_CALLBACKS);
	if (bev != NULL) {
		c->fd = -1;
		c->tls_handshaking = true;
	}
	return bev;
}

/* The bufferevent is ready: timeouts, then the protocol's greeting. */
static void conn_start_session(struct conn *c)
{
	conn_setup_bev(c);
	c->in_callback = true;
	c->session = c->ops->create(c);
	c->in_callback = false;
	if (c->session == NULL || c->destroyed) {
		conn_destroy(c, "refused");
		return;
	}
	if (c->listener->proto != PROTO_LMTP)
		c->prelogin_secs = CONN_PRELOGIN_IDLE_PERIODS * c->idle_secs;
}

/* imaps/pop3s: the client sent its first bytes (or the wait timed out). */
static void conn_tls_wait_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct conn *c = ctx;

	event_free(c->tls_wait);
	c->tls_wait = NULL;
	if (what & EV_TIMEOUT) {
		conn_destroy(c, "timeout");
		return;
	}
	c->bev = conn_new_tls_bev(c);
	if (c->bev == NULL) {
		conn_destroy(c, "bufferevent failed");
		return;
	}
	conn_start_session(c);
}

/* Defers SSL_new until the ClientHello arrives: a bare TCP connection on
 * a TLS port then costs no OpenSSL memory (~40 KB per connection). */
static void conn_tls_wait(struct conn *c)
{
	struct timeval tv = { .tv_sec = c->idle_secs, .tv_usec = 0 };

	if (tv.tv_sec == 0 || tv.tv_sec > CONN_TLS_HANDSHAKE_SECS)
		tv.tv_sec = CONN_TLS_HANDSHAKE_SECS;
	event_add(c->tls_wait, &tv);
}

void conn_accept(struct worker *w, int fd, const struct sockaddr *sa,
		 const struct listener_conf *l, const struct proto_ops *ops)
{
	const struct settings *set = worker_settings(w);
	struct conn *c = xcalloc(1, sizeof(*c));

	c->worker = w;
	c->fd = fd;
	c->ops = ops;
	c->listener = l;
	c->id = conn_next_id++;
	c->is_loopback = sockaddr_is_loopback(sa);
	sockaddr_ip(sa, c->ip, sizeof(c->ip));
	c->port = sockaddr_port(sa);
	c->started = conn_now_secs();
	c->mproto = metrics_proto_of(ops->name);
	if (worker_count_add(w, false, c->ip, set->max_conns_per_ip) < 0) {
		const char *msg = ops->busy_reply != NULL ? ops->busy_reply :
			"Too many connections from your IP\r\n";
		log_info("conn refused ip=%s reason=max_conns_per_ip", c->ip);
		/* On an implicit-TLS port a cleartext reply is noise. */
		if (!l->is_tls && write(fd, msg, strlen(msg)) < 0) {
			/* best effort */
		}
		close(fd);
		free(c);
		return;
	}
	c->idle_secs = set->idle_timeout_secs;
	if (sa->sa_family != AF_UNIX) {
		int one = 1;
		/* Replies are written whole: don't let Nagle hold the last
		 * segment of one for the peer's delayed ACK (~40 ms). */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
	}
	if (l->is_tls && worker_tls_ctx(w) != NULL) {
		c->tls_wait = event_new(worker_base(w), fd, EV_READ,
					conn_tls_wait_cb, c);
		c->is_tls = true;
	} else if (!l->is_tls) {
		c->bev = bufferevent_socket_new(worker_base(w), fd,
						BEV_OPT_DEFER_CALLBACKS);
	}
	worker_conn_link(w, c);
	c->next = conn_list;
	if (conn_list != NULL)
		conn_list->prev = c;
	conn_list = c;
	if (c->bev == NULL && c->tls_wait == NULL) {
		conn_destroy(c, "bufferevent failed");
		return;
	}
	metrics_conn_open(c->mproto, c->is_tls);
	c->is_counted = true;
	log_info("connect id=%llu proto=%s ip=%s tls=%d",
		  (unsigned long long)c->id, ops->name, c->ip, c->is_tls);
	if (c->tls_wait != NULL)
		conn_tls_wait(c);
	else
		conn_start_session(c);
}

/* Closing a socket with unread input makes the kernel send a reset,
 * which can destroy our last reply (BYE, -ERR) before the client reads
 * it. So after a deliberate close, read away what is already there
 * (bounded) and close our side for writing first. */
static void conn_discard_unread(int fd)
{
	char buf[4096];

	if (fd < 0)
		return;
	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16; i++) {
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
	}
}

/* ---- compression (RFC 4978) ---- */

/* Compresses the waiting output into the bufferevent, ending on a sync
 * flush so the client can read all of it now. */
static void conn_zflush(struct conn *c)
{
	struct conn_compress *z = c->z;

	if (z == NULL || c->bev == NULL ||
	    (evbuffer_get_length(z->out) == 0 &&
	     !zstream_deflate_pending(z->zs)))
		return;
	zstream_deflate(z->zs, z->out, bufferevent_get_output(c->bev), true);
	z->round_bytes = 0;
}

static void conn_zflush_cb(evutil_socket_t fd, short what, void *ctx)
{
	conn_zflush(ctx);
}

/* Output added outside a protocol callback (an auth verdict, a timer):
 * no conn_after_callback will flush it, so the event does, later in
 * this loop turn (after anything else the same code path adds). */
static void conn_zout_cb(struct evbuffer *buf,
			 const struct evbuffer_cb_info *info, void *ctx)
{
	struct conn *c = ctx;

	if (info->n_added > 0 && !c->in_callback && !c->z->is_sending)
		event_active(c->z->flush_ev, 0, 0);
}

static void conn_compress_free(struct conn *c)
{
	struct conn_compress *z = c->z;

	if (z == NULL)
		return;
	c->z = NULL;
	evbuffer_remove_cb(z->out, conn_zout_cb, c);
	event_free(z->flush_ev);
	evbuffer_free(z->in);
	evbuffer_free(z->raw);
	evbuffer_free(z->out);
	zstream_destroy(&z->zs);
	free(z);
}

/* Inflates buffered compressed input into z->in, up to the input cap:
 * first what came before the switch, then the bufferevent's input.
 * Returns -1 on corrupt input. */
static int conn_zinflate(struct conn *c)
{
	struct conn_compress *z = c->z;
	size_t max = conn_input_max(c), have = evbuffer_get_length(z->in);
	const char *error;

	if (have < max &&
	    zstream_inflate(z->zs, z->raw, z->in, max - have, &error) < 0)
		goto out_error;
	have = evbuffer_get_length(z->in);
	if (have < max && evbuffer_get_length(z->raw) == 0 &&
	    zstream_inflate(z->zs, bufferevent_get_input(c->bev), z->in,
			    max - have, &error) < 0)
		goto out_error;
	return 0;
out_error:
	log_info("conn id=%llu ip=%s: bad compressed input: %s",
		 (unsigned long long)c->id, c->ip, error);
	return -1;
}

/* Compressed input is buffered and there is room to inflate it. */
static bool conn_zinput_waiting(struct conn *c)
{
	struct conn_compress *z = c->z;

	return z != NULL &&
		evbuffer_get_length(z->in) < conn_input_max(c) &&
		(evbuffer_get_length(z->raw) > 0 ||
		 evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
		 zstream_inflate_pending(z->zs));
}

void conn_destroy(struct conn *c, const char *reason)
{
	if (c->in_callback) {
		/* Finish the callback first; conn_after_callback frees. */
		c->destroyed = true;
		return;
	}
	if (c->session != NULL) {
		void *session = c->session;
		c->session = NULL;
		c->ops->destroy(session, reason);
	}
	if (c->bev != NULL && c->closing)
		conn_discard_unread(bufferevent_getfd(c->bev));
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	conn_compress_free(c);
	if (c->tls_wait != NULL)
		event_free(c->tls_wait);
	if (c->fd >= 0)
		close(c->fd);
	if (c->user != NULL)
		worker_count_del(c->worker, true, c->user);
	worker_count_del(c->worker, false, c->ip);
	if (c->is_counted)
		metrics_conn_close(c->mproto, c->is_tls);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conn_list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	worker_conn_unlink(c->worker, c);
	free(c->user);
	free(c->close_reason);
	free(c);
}

/* After any protocol callback: apply deferred close, back-pressure. */
static void conn_after_callback(struct conn *c)
{
	c->in_callback = false;
	if (c->destroyed) {
		conn_destroy(c, c->close_reason ? c->close_reason : "closed");
		return;
	}
	conn_zflush(c);
	if (c->closing || c->tls_pending || c->input_paused ||
	    conn_output_len(c) >= CONN_OUTPUT_HIWAT) {
		bufferevent_disable(c->bev, EV_READ);
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
	/* Compressed input left behind by the input cap: no socket event
	 * will come for it, so run the read callback again. */
	if (conn_zinput_waiting(c))
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
}

/* A connection that did not log in in time: the protocol's goodbye
 * (IMAP "* BYE"), if it has one, then close once it is sent (within
 * CONN_KICK_FLUSH_SECS); no more input is read. */
static void conn_login_timeout(struct conn *c)
{
	const char *bye = c->ops->login_timeout_reply;

	if (bye == NULL || c->tls_pending || c->tls_handshaking) {
		conn_destroy(c, "login timeout");
		return;
	}
	bufferevent_disable(c->bev, EV_READ);
	conn_write(c, bye, strlen(bye));
	conn_close_after_flush(c, "login timeout");
	conn_set_idle_timeout(c, CONN_KICK_FLUSH_SECS);
	/* bufferevent timeouts disable the direction that timed out */
	bufferevent_enable(c->bev, EV_WRITE);
}

static void conn_read_cb(struct bufferevent *bev, void *ctx)
{
	struct conn *c = ctx;

	if (c->closing || c->tls_pending || c->input_paused)
		return;
	if (c->user == NULL && c->prelogin_secs != 0 &&
	    conn_now_secs() - c->started > (time_t)c->prelogin_secs) {
		log_info("conn id=%llu ip=%s: no login within %u s",
			 (unsigned long long)c->id, c->ip, c->prelogin_secs);
		conn_login_timeout(c);
		return;
	}
	if (c->z != NULL && conn_zinflate(c) < 0) {
		/* The stream can't resync: send what is queued, then close. */
		bufferevent_disable(c->bev, EV_READ);
		conn_close_after_flush(c, "compression error");
		return;
	}
	c->in_callback = true;
	c->ops->on_input(c->session);
	conn_after_callback(c);
}

static void conn_switch_to_tls(struct conn *c)
{
	struct bufferevent *old = c->bev;

	/* RFC 3207 section 4.2, RFC 2595 section 3.1: nothing the client
	 * sent before the handshake is kept. */
	c->tls_pending = false;
	c->bev = conn_new_tls_bev(c);
	bufferevent_free(old);
	if (c->bev == NULL) {
		c->destroyed = true;
		return;
	}
	c->is_tls = true;
	metrics_conn_starttls(c->mproto);
	c->skipping_line = false;
	conn_setup_bev(c);
}

static void conn_write_cb(struct bufferevent *bev, void *ctx)
{
	struct conn *c = ctx;

	c->in_callback = true;
	if (conn_output_len(c) == 0 && c->closing)
		c->destroyed = true;
	else if (conn_output_len(c) == 0 && c->tls_pending)
		conn_switch_to_tls(c);
	else if (!c->closing && c->ops->on_drain != NULL)
		c->ops->on_drain(c->session);
	conn_after_callback(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct conn *c = ctx;
	const char *reason = "error";

	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake done: the idle timeout applies again. */
		c->tls_handshaking = false;
		conn_apply_timeouts(c);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		reason = "disconnected";
	} else if (what & BEV_EVENT_TIMEOUT) {
		reason = "timeout";
		/* Pre-login idle timeout: say goodbye first (not when the
		 * peer stalls our writes, nor during the TLS handshake). */
		if ((what & BEV_EVENT_READING) && c->user == NULL &&
		    !c->closing && c->session != NULL &&
		    c->prelogin_secs != 0) {
			conn_login_timeout(c);
			return;
		}
	} else if (c->is_tls && bufferevent_get_openssl_error(bev) != 0) {
		reason = "tls error";
	}
	conn_destroy(c, reason);
}

void conn_destroy_all(const char *reason)
{
	while (conn_list != NULL) {
		conn_list->in_callback = false;
		conn_destroy(conn_list, reason);
	}
}

/* ---- protocol-facing API ---- */

struct evbuffer *conn_input(struct conn *c)
{
	return c->z != NULL ? c->z->in : bufferevent_get_input(c->bev);
}

struct evbuffer *conn_output(struct conn *c)
{
	return c->z != NULL ? c->z->out : bufferevent_get_output(c->bev);
}

size_t conn_output_len(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct conn_compress *z = c->z;

	if (z == NULL)
		return evbuffer_get_length(out);
	/* Compress whole chunks now, so the count is mostly of compressed
	 * bytes; what zlib holds back counts as one byte (not empty). */
	if (evbuffer_get_length(z->out) >= CONN_ZCHUNK) {
		z->round_bytes += evbuffer_get_length(z->out);
		zstream_deflate(z->zs, z->out, out, false);
	}
	if (z->round_bytes >= CONN_ZROUND_MAX &&
	    evbuffer_get_length(out) < CONN_OUTPUT_HIWAT)
		return CONN_OUTPUT_HIWAT;
	return evbuffer_get_length(out) + evbuffer_get_length(z->out) +
		(zstream_deflate_pending(z->zs) ? 1 : 0);
}

void conn_write(struct conn *c, const void *data, size_t len)
{
	c->bytes_out += len;
	evbuffer_add(conn_output(c), data, len);
}

/* conn_send_now with compression: everything waiting plus buf is
 * compressed and flushed into a scratch buffer, which is what gets sent
 * (IDLE updates reach the client as soon as uncompressed ones do). */
static struct evbuffer *conn_zsend_buf(struct conn *c, struct evbuffer *buf)
{
	static struct evbuffer *scratch;

	if (scratch == NULL)
		scratch = evbuffer_new();
	c->z->is_sending = true;
	evbuffer_add_buffer(c->z->out, buf);
	c->z->is_sending = false;
	zstream_deflate(c->z->zs, c->z->out, scratch, true);
	c->z->round_bytes = 0;
	return scratch;
}

void conn_send_now(struct conn *c, struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf), sent = 0;
	ssize_t n = 0;
	SSL *ssl;

	if (len == 0)
		return;
	c->bytes_out += len;
	if (c->z != NULL) {
		buf = conn_zsend_buf(c, buf);
		len = evbuffer_get_length(buf);
	}
	if (c->closing || c->tls_pending || c->tls_handshaking ||
	    conn_output_len(c) > 0 || len > INT_MAX) {
		/* queued behind what waits, or not ours to write now */
	} else if (!c->is_tls) {
		n = send(bufferevent_getfd(c->bev), evbuffer_pullup(buf, -1),
			 len, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else if ((ssl = bufferevent_openssl_get_ssl(c->bev)) != NULL) {
		/* Nothing is queued, so libevent has no write of its own
		 * pending on this SSL. If this one can't complete, the data
		 * goes to the bufferevent, whose SSL_write then repeats it
		 * (libevent sets SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
		n = SSL_write(ssl, evbuffer_pullup(buf, -1), (int)len);
		if (n <= 0)
			ERR_clear_error();
	}
	if (n > 0) {
		sent = (size_t)n;
		evbuffer_drain(buf, sent);
		metrics_bytes(c->mproto, true, sent);
	}
	/* Errors too: the bufferevent meets them again and reports. */
	if (evbuffer_get_length(buf) > 0)
		bufferevent_write_buffer(c->bev, buf);
}

void conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = evbuffer_add_vprintf(conn_output(c), fmt, ap);
	va_end(ap);
	if (n > 0)
		c->bytes_out += (uint64_t)n;
}

/* Discards input up to and including the next LF, if buffered. Returns
 * true when the end of the line was found. */
static bool conn_skip_line(struct evbuffer *in)
{
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);

	if (p.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, (size_t)p.pos + 1);
	return true;
}

int conn_read_line(struct conn *c, size_t max_len, char **line_r,
		   size_t *len_r)
{
	struct evbuffer *in = conn_input(c);
	struct evbuffer_ptr p;
	size_t len;
	char *line;

	if (c->closing || c->tls_pending)
		return 0;
	if (c->skipping_line) {
		if (!conn_skip_line(in))
			return 0;
		c->skipping_line = false;
	}
	p = evbuffer_search(in, "\n", 1, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) <= max_len)
			return 0;
		c->skipping_line = !conn_skip_line(in);
		return -1;
	}
	len = (size_t)p.pos;
	if (len > max_len) {
		evbuffer_drain(in, len + 1);
		return -1;
	}
	line = xmalloc(len + 1);
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, 1);
	c->bytes_in += len + 1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	*line_r = line;
	*len_r = len;
	return 1;
}

void conn_pause_input(struct conn *c, bool pause)
{
	if (c->input_paused == pause)
		return;
	c->input_paused = pause;
	if (pause || c->in_callback)
		return;	/* conn_after_callback applies it */
	bufferevent_enable(c->bev, EV_READ);
	/* Lines may already be buffered: run on_input again soon. */
	if (evbuffer_get_length(conn_input(c)) > 0 || conn_zinput_waiting(c))
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
}

void conn_set_idle_timeout(struct conn *c, unsigned secs)
{
	c->idle_secs = secs;
	conn_apply_timeouts(c);
}

void conn_close_after_flush(struct conn *c, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	free(c->close_reason);
	c->close_reason = xstrdup(reason);
	/* Never destroy synchronously here: the caller may still use its
	 * session. The write callback finishes the job. */
	if (conn_output_len(c) == 0) {
		if (c->in_callback)
			c->destroyed = true;
		else
			bufferevent_trigger(c->bev, EV_WRITE,
					    BEV_TRIG_IGNORE_WATERMARKS |
					    BEV_TRIG_DEFER_CALLBACKS);
	}
}

int conn_start_tls(struct conn *c)
{
	struct evbuffer *in;

	/* RFC 4978 section 3: TLS goes below compression, never above. */
	if (c->is_tls || worker_tls_ctx(c->worker) == NULL || c->z != NULL)
		return -1;
	c->tls_pending = true;
	/* RFC 3207 section 4.2 / RFC 2595 section 3.1: anything the client
	 * pipelined after the command is dropped now, before any protocol
	 * code can parse it. */
	in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (conn_output_len(c) == 0 && !c->in_callback)
		conn_switch_to_tls(c);
	else if (conn_output_len(c) == 0)
		bufferevent_trigger(c->bev, EV_WRITE,
				    BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
	return 0;
}

int conn_start_compress(struct conn *c)
{
	struct conn_compress *z;

	if (c->z != NULL || c->tls_pending || c->tls_handshaking ||
	    c->closing)
		return -1;
	z = xcalloc(1, sizeof(*z));
	z->zs = zstream_create();
	z->in = evbuffer_new();
	z->raw = evbuffer_new();
	z->out = evbuffer_new();
	z->flush_ev = event_new(worker_base(c->worker), -1, 0,
				conn_zflush_cb, c);
	if (z->in == NULL || z->raw == NULL || z->out == NULL ||
	    z->flush_ev == NULL)
		log_fatal("conn_start_compress: out of memory");
	evbuffer_add_cb(z->out, conn_zout_cb, c);
	/* RFC 4978 section 3: everything after the command is compressed,
	 * and what is queued now (the tagged OK) goes out uncompressed. Any
	 * input already here is moved away, so no code holding the old
	 * input buffer parses it as plaintext. */
	evbuffer_add_buffer(z->raw, bufferevent_get_input(c->bev));
	c->z = z;
	if (!c->in_callback && evbuffer_get_length(z->raw) > 0)
		bufferevent_trigger(c->bev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS |
				    BEV_TRIG_DEFER_CALLBACKS);
	return 0;
}

bool conn_is_compressed(struct conn *c) { return c->z != NULL; }
bool conn_is_tls(struct conn *c) { return c->is_tls; }
bool conn_is_loopback(struct conn *c) { return c->is_loopback; }
bool conn_tls_available(struct conn *c)
{
	return worker_tls_ctx(c->worker) != NULL;
}
bool conn_plaintext_auth_ok(struct conn *c)
{
	return c->is_tls || c->is_loopback ||
		worker_settings(c->worker)->allow_plaintext_auth;
}
const char *conn_remote_ip(struct conn *c) { return c->ip; }
uint64_t conn_id(struct conn *c) { return c->id; }
const struct settings *conn_settings(struct conn *c)
{
	return worker_settings(c->worker);
}
struct event_base *conn_event_base(struct conn *c)
{
	return worker_base(c->worker);
}
const char *conn_user(struct conn *c) { return c->user; }
uint64_t conn_bytes_in(struct conn *c) { return c->bytes_in; }
uint64_t conn_bytes_out(struct conn *c) { return c->bytes_out; }

int conn_set_user(struct conn *c, const char *user)
{
	if (c->user != NULL) {
		worker_count_del(c->worker, true, c->user);
		free(c->user);
		c->user = NULL;
	}
	if (worker_count_add(c->worker, true, user,
			     worker_settings(c->worker)->max_conns_per_user) < 0)
		return -1;
	c->user = xstrdup(user);
	return 0;
}

/* ---- command metrics ---- */

void conn_cmd_begin(struct conn *c, const char *name, size_t len)
{
	c->cmd_index = name != NULL ?
		metrics_cmd_index(c->mproto, name, len) : 0;
	c->cmd_start_nsecs = time_mono_nsecs();
}

void conn_cmd_end(struct conn *c, const char *name)
{
	uint64_t now;

	if (c->cmd_start_nsecs == 0)
		return;
	now = time_mono_nsecs();
	if (name != NULL)
		c->cmd_index = metrics_cmd_index(c->mproto, name,
						 strlen(name));
	metrics_cmd_done(c->mproto, c->cmd_index, now - c->cmd_start_nsecs);
	c->cmd_start_nsecs = 0;
}

/* ---- control socket (worker side) ---- */

struct conn *conn_list_first(void) { return conn_list; }
struct conn *conn_list_next(struct conn *c) { return c->next; }
const char *conn_proto_name(struct conn *c) { return c->ops->name; }
unsigned conn_remote_port(struct conn *c) { return c->port; }
void *conn_session(struct conn *c) { return c->session; }

unsigned long conn_age_secs(struct conn *c)
{
	time_t now = conn_now_secs();

	return now > c->started ? (unsigned long)(now - c->started) : 0;
}

int conn_kick(struct conn *c, const char *user)
{
	const char *bye;

	if (c->closing || c->destroyed || c->user == NULL ||
	    strcmp(c->user, user) != 0)
		return 0;
	if (strcmp(c->ops->name, "imap") == 0)
		bye = "* BYE Disconnected by administrator\r\n";
	else if (strcmp(c->ops->name, "pop3") == 0)
		bye = "-ERR [SYS/PERM] Disconnected by administrator\r\n";
	else
		bye = "421 4.3.2 Disconnected by administrator\r\n";
	if (c->bev != NULL && !c->tls_pending)
		conn_write(c, bye, strlen(bye));
	conn_close_after_flush(c, "kicked");
	conn_set_idle_timeout(c, CONN_KICK_FLUSH_SECS);
	return 1;
}
