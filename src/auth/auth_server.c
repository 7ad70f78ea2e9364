/* auth_server.c: the auth process. Accepts worker connections on a Unix
 * socket, answers auth_proto.h requests from the password file, and delays
 * failure replies per remote IP: auth_fail_delay_msecs for the first
 * failure, doubling per consecutive failure up to auth_fail_delay_max_msecs.
 * An IP is forgotten AUTH_FAIL_FORGET_SECS after its last failure; the
 * table holds at most AUTH_FAIL_MAX_IPS entries (the stalest is evicted).
 * Delays are evtimers, the process never sleeps.
 *
 * Limits: hash verification (argon2: tens of ms) runs inline in the event
 * loop, so one slow hash stalls the other workers' requests meanwhile; a
 * worker's unread replies are capped at AUTH_CONN_MAX_OUTPUT (reading from
 * it pauses). Secrets left in libevent's freed input chains are not wiped. */
#include "auth/auth_server.h"

#include "auth/auth_cache.h"
#include "auth/auth_proto.h"
#include "auth/passdb.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"
#include "net/metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#define AUTH_FAIL_MAX_IPS 4096
#define AUTH_FAIL_BUCKETS 1024
#define AUTH_FAIL_FORGET_SECS 600
#define AUTH_CONN_MAX_OUTPUT (256 * 1024)
#define AUTH_LOG_USER_MAX 64

struct fail_ip {
	char ip[AUTH_PROTO_MAX_IP + 1];
	unsigned failures;	/* consecutive, since the last success */
	time_t last_fail_secs;	/* CLOCK_MONOTONIC */
	struct fail_ip *hash_next;
	TAILQ_ENTRY(fail_ip) lru;	/* least recently failed first */
};

struct delayed_reply {
	struct auth_conn *conn;
	struct event *timer;
	uint32_t id;
	LIST_ENTRY(delayed_reply) list;
};

struct auth_conn {
	struct auth_server *srv;
	struct bufferevent *bev;
	bool is_read_paused;	/* too much unread output */
	LIST_ENTRY(auth_conn) list;
	LIST_HEAD(, delayed_reply) delayed;
};

struct auth_server {
	const struct settings *set;
	struct event_base *base;
	struct evconnlistener *listener;
	struct passdb *db;
	struct event *sig_events[3];
	LIST_HEAD(, auth_conn) conns;
	struct fail_ip *fail_buckets[AUTH_FAIL_BUCKETS];
	TAILQ_HEAD(, fail_ip) fail_lru;
	unsigned fail_count;
};

static time_t monotonic_secs(void)
{
	return (time_t)(time_mono_nsecs() / 1000000000u);
}

/* ---- per-IP failure table ---- */

static unsigned fail_hash(const char *ip)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *ip != '\0'; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % AUTH_FAIL_BUCKETS;
}

static struct fail_ip **fail_slot(struct auth_server *srv, const char *ip)
{
	struct fail_ip **pp = &srv->fail_buckets[fail_hash(ip)];

	while (*pp != NULL && strcmp((*pp)->ip, ip) != 0)
		pp = &(*pp)->hash_next;
	return pp;
}

static void fail_remove(struct auth_server *srv, struct fail_ip *f)
{
	struct fail_ip **pp = fail_slot(srv, f->ip);

	*pp = f->hash_next;
	TAILQ_REMOVE(&srv->fail_lru, f, lru);
	srv->fail_count--;
	free(f);
}

/* Drops entries idle for AUTH_FAIL_FORGET_SECS, and the stalest ones
 * while the table is full. */
static void fail_expire(struct auth_server *srv, time_t now)
{
	struct fail_ip *f;

	while ((f = TAILQ_FIRST(&srv->fail_lru)) != NULL &&
	       (now - f->last_fail_secs >= AUTH_FAIL_FORGET_SECS ||
		srv->fail_count >= AUTH_FAIL_MAX_IPS))
		fail_remove(srv, f);
}

/* Counts a failure from ip; returns the consecutive failure count. */
static unsigned fail_record(struct auth_server *srv, const char *ip)
{
	time_t now = monotonic_secs();
	struct fail_ip *f, **pp;

	pp = fail_slot(srv, ip);
	f = *pp;
	if (f != NULL && now - f->last_fail_secs >= AUTH_FAIL_FORGET_SECS)
		f->failures = 0;
	if (f != NULL) {
		TAILQ_REMOVE(&srv->fail_lru, f, lru);
	} else {
		fail_expire(srv, now);
		pp = fail_slot(srv, ip);	/* expiry may move the tail */
		f = xcalloc(1, sizeof(*f));
		snprintf(f->ip, sizeof(f->ip), "%s", ip);
		*pp = f;
		srv->fail_count++;
	}
	if (f->failures < UINT32_MAX)
		f->failures++;
	f->last_fail_secs = now;
	TAILQ_INSERT_TAIL(&srv->fail_lru, f, lru);
	return f->failures;
}

static void fail_reset(struct auth_server *srv, const char *ip)
{
	struct fail_ip *f = *fail_slot(srv, ip);

	if (f != NULL)
		fail_remove(srv, f);
}

unsigned auth_fail_delay(const struct settings *set, unsigned failures)
{
	uint64_t delay = set->auth_fail_delay_msecs;
	uint64_t max = set->auth_fail_delay_max_msecs;

	if (max < delay)
		max = delay;
	for (unsigned i = 1; i < failures && delay < max; i++)
		delay *= 2;
	return (unsigned)(delay < max ? delay : max);
}

/* ---- replies ---- */

static void conn_reply(struct auth_conn *conn, enum auth_proto_status status,
		       uint32_t id, const char *user)
{
	struct auth_proto_reply reply = {
		.status = status, .id = id, .user = (char *)user,
	};
	size_t len;
	char *line = auth_proto_reply_format(&reply, &len);

	if (line == NULL) {
		/* canonical names are short; cannot happen with passdb's */
		reply.status = AUTH_PROTO_TEMP;
		line = auth_proto_reply_format(&reply, &len);
	}
	bufferevent_write(conn->bev, line, len);
	free(line);
}

static void conn_send_hello(struct auth_conn *conn)
{
	struct auth_proto_reply reply = {
		.status = AUTH_PROTO_HELLO,
		.is_apop = passdb_has_plaintext(conn->srv->db),
	};
	size_t len;
	char *line = auth_proto_reply_format(&reply, &len);

	bufferevent_write(conn->bev, line, len);
	free(line);
}

static void delayed_free(struct delayed_reply *d)
{
	LIST_REMOVE(d, list);
	event_free(d->timer);
	free(d);
}

static void delayed_timeout(evutil_socket_t fd, short what, void *context)
{
	struct delayed_reply *d = context;
	struct auth_conn *conn = d->conn;
	uint32_t id = d->id;

	delayed_free(d);
	conn_reply(conn, AUTH_PROTO_FAIL, id, NULL);
}

static void conn_reply_fail(struct auth_conn *conn, uint32_t id,
			    unsigned delay_msecs)
{
	struct delayed_reply *d;
	struct timeval tv;

	if (delay_msecs == 0) {
		conn_reply(conn, AUTH_PROTO_FAIL, id, NULL);
		return;
	}
	d = xcalloc(1, sizeof(*d));
	d->conn = conn;
	d->id = id;
	d->timer = evtimer_new(conn->srv->base, delayed_timeout, d);
	if (d->timer == NULL)
		log_fatal("evtimer_new() failed");
	tv.tv_sec = delay_msecs / 1000;
	tv.tv_usec = (suseconds_t)(delay_msecs % 1000) * 1000;
	evtimer_add(d->timer, &tv);
	LIST_INSERT_HEAD(&conn->delayed, d, list);
}

/* ---- requests ---- */

/* User names come from the network: log printable ASCII only. */
static void log_safe(const char *in, char *out, size_t out_size)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < out_size; i++) {
		unsigned char c = (unsigned char)in[i];
		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[i] = '\0';
}

static void handle_verdict(struct auth_conn *conn,
			   const struct auth_proto_request *req, bool ok)
{
	struct auth_server *srv = conn->srv;
	const char *what = req->type == AUTH_PROTO_APOP ? "apop" : "verify";
	const char *service = req->type == AUTH_PROTO_APOP ? "pop3" :
		req->service;
	char user[AUTH_LOG_USER_MAX + 1];
	unsigned failures, delay;

	log_safe(req->user, user, sizeof(user));
	metrics_login(service, ok);
	if (ok) {
		fail_reset(srv, req->remote_ip);
		log_info("auth ok method=%s service=%s user=%s rip=%s",
			 what, service, user, req->remote_ip);
		conn_reply(conn, AUTH_PROTO_OK, req->id, req->user);
		return;
	}
	failures = fail_record(srv, req->remote_ip);
	delay = auth_fail_delay(srv->set, failures);
	if (delay > 0)
		metrics_inc(METRICS_AUTH_DELAY_HITS);
	log_info("auth failed method=%s service=%s user=%s rip=%s "
		 "failures=%u delay_ms=%u", what, service, user,
		 req->remote_ip, failures, delay);
	conn_reply_fail(conn, req->id, delay);
}

static void handle_request(struct auth_conn *conn,
			   const struct auth_proto_request *req)
{
	const struct passdb *db = conn->srv->db;
	bool ok;

	switch (req->type) {
	case AUTH_PROTO_VERIFY:
		ok = auth_cache_lookup(req->user, req->secret);
		if (!ok && (ok = passdb_verify(db, req->user, req->secret)))
			auth_cache_add(req->user, req->secret);
		handle_verdict(conn, req, ok);
		break;
	case AUTH_PROTO_APOP:
		ok = passdb_verify_apop(db, req->user, req->secret,
					req->digest);
		handle_verdict(conn, req, ok);
		break;
	case AUTH_PROTO_LOOKUP:
		if (passdb_user_exists(db, req->user))
			conn_reply(conn, AUTH_PROTO_OK, req->id, req->user);
		else
			conn_reply(conn, AUTH_PROTO_NOUSER, req->id, NULL);
		break;
	}
}

/* ---- connections ---- */

static void conn_destroy(struct auth_conn *conn)
{
	while (!LIST_EMPTY(&conn->delayed))
		delayed_free(LIST_FIRST(&conn->delayed));
	LIST_REMOVE(conn, list);
	bufferevent_free(conn->bev);
	free(conn);
}

/* Takes one complete line off the input; 1 = got one, 0 = need more,
 * -1 = too long. */
static int conn_read_line(struct auth_conn *conn, char *line, size_t *len_r)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	struct evbuffer_ptr eol;
	size_t eol_len;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0)
		return evbuffer_get_length(in) >= AUTH_PROTO_MAX_LINE ? -1 : 0;
	if ((size_t)eol.pos >= AUTH_PROTO_MAX_LINE)
		return -1;
	evbuffer_remove(in, line, (size_t)eol.pos);
	evbuffer_drain(in, eol_len);
	*len_r = (size_t)eol.pos;
	return 1;
}

/* Handles buffered lines; returns -1 if conn was destroyed. */
static int conn_handle_lines(struct auth_conn *conn)
{
	struct evbuffer *out = bufferevent_get_output(conn->bev);
	char line[AUTH_PROTO_MAX_LINE];
	struct auth_proto_request req;
	const char *error;
	size_t len = 0;
	int ret;

	while (evbuffer_get_length(out) < AUTH_CONN_MAX_OUTPUT) {
		if ((ret = conn_read_line(conn, line, &len)) == 0)
			return 0;
		if (ret < 0 ||
		    auth_proto_request_parse(line, len, &req, &error) < 0) {
			log_error("worker sent a bad request (%s), "
				  "disconnecting", ret < 0 ? "line too long" :
				  error);
			xwipe(line, len);
			conn_destroy(conn);
			return -1;
		}
		xwipe(line, len);
		handle_request(conn, &req);
		auth_proto_request_clear(&req);
	}
	conn->is_read_paused = true;
	bufferevent_disable(conn->bev, EV_READ);
	return 0;
}

static void conn_read_cb(struct bufferevent *bev, void *context)
{
	(void)conn_handle_lines(context);
}

static void conn_write_cb(struct bufferevent *bev, void *context)
{
	struct auth_conn *conn = context;

	/* the output drained (write low-watermark 0): resume reading */
	if (conn->is_read_paused) {
		conn->is_read_paused = false;
		bufferevent_enable(bev, EV_READ);
		(void)conn_handle_lines(conn);
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *context)
{
	if ((what & BEV_EVENT_ERROR) != 0)
		log_warn("worker connection error: %s",
			 evutil_socket_error_to_string(
				 EVUTIL_SOCKET_ERROR()));
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0)
		conn_destroy(context);
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd,
		      struct sockaddr *addr, int addr_len, void *context)
{
	struct auth_server *srv = context;
	struct auth_conn *conn = xcalloc(1, sizeof(*conn));

	conn->srv = srv;
	conn->bev = bufferevent_socket_new(srv->base, fd,
					   BEV_OPT_CLOSE_ON_FREE);
	if (conn->bev == NULL)
		log_fatal("bufferevent_socket_new() failed");
	LIST_INIT(&conn->delayed);
	LIST_INSERT_HEAD(&srv->conns, conn, list);
	bufferevent_setcb(conn->bev, conn_read_cb, conn_write_cb,
			  conn_event_cb, conn);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
	conn_send_hello(conn);
	log_debug("worker connected fd=%d", (int)fd);
}

static void accept_error_cb(struct evconnlistener *listener, void *context)
{
	int err = EVUTIL_SOCKET_ERROR();

	log_error("accept() on auth socket failed: %s",
		  evutil_socket_error_to_string(err));
}

/* ---- process ---- */

static void signal_cb(evutil_socket_t sig, short what, void *context)
{
	struct auth_server *srv = context;
	struct passdb *db;
	struct auth_conn *conn;
	char *error;

	if (sig != SIGHUP) {
		log_info("signal %d: shutting down", (int)sig);
		event_base_loopbreak(srv->base);
		return;
	}
	db = passdb_load(srv->set->passwd_file, &error);
	if (db == NULL) {
		log_error("reload failed, keeping the old users: %s", error);
		free(error);
		return;
	}
	passdb_free(&srv->db);
	srv->db = db;
	/* Changed or removed passwords apply at once. */
	auth_cache_clear();
	log_info("reloaded %s users=%zu", srv->set->passwd_file,
		 passdb_count(db));
	LIST_FOREACH(conn, &srv->conns, list)
		conn_send_hello(conn);
}

static void server_init_events(struct auth_server *srv, int listen_fd)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT };

	srv->base = event_base_new();
	if (srv->base == NULL)
		log_fatal("event_base_new() failed");
	srv->listener = evconnlistener_new(srv->base, accept_cb, srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listen_fd);
	if (srv->listener == NULL)
		log_fatal("evconnlistener_new(fd=%d) failed", listen_fd);
	evconnlistener_set_error_cb(srv->listener, accept_error_cb);
	for (size_t i = 0; i < 3; i++) {
		srv->sig_events[i] = evsignal_new(srv->base, sigs[i],
						  signal_cb, srv);
		if (srv->sig_events[i] == NULL ||
		    evsignal_add(srv->sig_events[i], NULL) < 0)
			log_fatal("evsignal_add(%d) failed", sigs[i]);
	}
}

static void server_deinit(struct auth_server *srv)
{
	struct fail_ip *f;

	while (!LIST_EMPTY(&srv->conns))
		conn_destroy(LIST_FIRST(&srv->conns));
	while ((f = TAILQ_FIRST(&srv->fail_lru)) != NULL)
		fail_remove(srv, f);
	for (size_t i = 0; i < 3; i++)
		event_free(srv->sig_events[i]);
	evconnlistener_free(srv->listener);
	passdb_free(&srv->db);
	event_base_free(srv->base);
}

void auth_server_main(const struct settings *set, int listen_fd)
{
	struct auth_server srv;
	char *error;

	memset(&srv, 0, sizeof(srv));
	log_set_tag("auth");
	srv.set = set;
	LIST_INIT(&srv.conns);
	TAILQ_INIT(&srv.fail_lru);
	srv.db = passdb_load(set->passwd_file, &error);
	if (srv.db == NULL)
		log_fatal("cannot load passwd_file: %s", error);
	auth_cache_init(set->auth_cache_size, set->auth_cache_ttl_secs);
	/* a worker that went away must not kill us on write */
	signal(SIGPIPE, SIG_IGN);
	server_init_events(&srv, listen_fd);
	log_info("started passwd_file=%s users=%zu", set->passwd_file,
		 passdb_count(srv.db));
	event_base_dispatch(srv.base);
	server_deinit(&srv);
}
