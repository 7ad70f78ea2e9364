/* auth_client.c: the worker side of auth.h. One bufferevent connection to
 * the auth process' Unix socket, opened at init and again lazily by the
 * next request after a disconnect. Pending requests sit in a hash table
 * keyed by request id; a reply for an aborted (unknown) id is ignored.
 *
 * Callbacks are never called from inside auth_verify_*() or
 * auth_lookup_user(): results decided locally (socket unreachable, request
 * line too long or a field unusable) are delivered through an event made
 * active at once. On disconnect every request sent on that connection gets
 * AUTH_RESULT_TEMPFAIL. auth_client_deinit() drops pending requests
 * without calling their callbacks; it must not be called from a callback.
 * Limit: passwords copied into libevent's output buffer are not wiped. */
#include "auth/auth.h"

#include "auth/auth_proto.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define AUTH_CLIENT_BUCKETS 256

struct auth_request {
	uint32_t id;
	auth_callback *cb;
	void *context;
	struct auth_request *hash_next;
	unsigned conn_gen;	/* connection the request was sent on */
	struct event *local_ev;	/* set: result decided without a reply */
	enum auth_result local_result;
	bool is_finishing;	/* its callback is running */
};

static struct {
	struct event_base *base;
	char *socket_path;
	struct bufferevent *bev;	/* NULL while disconnected */
	unsigned conn_gen;		/* bumped per connection */
	bool is_apop;			/* from the server's hello line */
	uint32_t next_id;
	struct auth_request *buckets[AUTH_CLIENT_BUCKETS];
} ac;

/* ---- pending table ---- */

static struct auth_request **table_slot(uint32_t id)
{
	struct auth_request **pp = &ac.buckets[id % AUTH_CLIENT_BUCKETS];

	while (*pp != NULL && (*pp)->id != id)
		pp = &(*pp)->hash_next;
	return pp;
}

static struct auth_request *table_find(uint32_t id)
{
	return *table_slot(id);
}

static void table_remove(struct auth_request *req)
{
	struct auth_request **pp = table_slot(req->id);

	if (*pp == req)
		*pp = req->hash_next;
	req->hash_next = NULL;
}

static void table_add(struct auth_request *req)
{
	do {
		req->id = ++ac.next_id;
	} while (req->id == 0 || table_find(req->id) != NULL);
	req->hash_next = ac.buckets[req->id % AUTH_CLIENT_BUCKETS];
	ac.buckets[req->id % AUTH_CLIENT_BUCKETS] = req;
}

static void request_free(struct auth_request *req)
{
	if (req->local_ev != NULL)
		event_free(req->local_ev);
	free(req);
}

/* Removes req, calls its callback once, frees it. */
static void request_finish(struct auth_request *req, enum auth_result result,
			   const char *user)
{
	table_remove(req);
	req->is_finishing = true;
	req->cb(result, result == AUTH_RESULT_OK ? user : NULL, req->context);
	request_free(req);
}

static void local_result_cb(evutil_socket_t fd, short what, void *context)
{
	struct auth_request *req = context;

	request_finish(req, req->local_result, NULL);
}

static void request_finish_later(struct auth_request *req,
				 enum auth_result result)
{
	req->local_result = result;
	req->local_ev = event_new(ac.base, -1, 0, local_result_cb, req);
	if (req->local_ev == NULL)
		log_fatal("event_new() failed");
	event_active(req->local_ev, EV_TIMEOUT, 1);
}

/* TEMPFAILs the requests sent on connection generation gen. Callbacks may
 * abort or add requests, so collect ids first and look each up again. */
static void fail_generation(unsigned gen)
{
	uint32_t *ids = NULL;
	size_t count = 0;

	for (size_t b = 0; b < AUTH_CLIENT_BUCKETS; b++) {
		for (struct auth_request *r = ac.buckets[b]; r != NULL;
		     r = r->hash_next) {
			if (r->local_ev != NULL || r->conn_gen != gen)
				continue;
			ids = xreallocarray(ids, count + 1, sizeof(*ids));
			ids[count++] = r->id;
		}
	}
	for (size_t i = 0; i < count; i++) {
		struct auth_request *r = table_find(ids[i]);
		if (r != NULL && r->local_ev == NULL && r->conn_gen == gen)
			request_finish(r, AUTH_RESULT_TEMPFAIL, NULL);
	}
	free(ids);
}

/* ---- connection ---- */

static void client_disconnect(const char *reason)
{
	unsigned gen = ac.conn_gen;

	log_warn("auth connection closed: %s", reason);
	bufferevent_free(ac.bev);
	ac.bev = NULL;
	ac.is_apop = false;
	fail_generation(gen);
}

static void handle_reply(const struct auth_proto_reply *reply)
{
	struct auth_request *req;
	enum auth_result result = AUTH_RESULT_TEMPFAIL;

	if (reply->status == AUTH_PROTO_HELLO) {
		ac.is_apop = reply->is_apop;
		return;
	}
	req = table_find(reply->id);
	if (req == NULL || req->local_ev != NULL)
		return;		/* aborted meanwhile */
	switch (reply->status) {
	case AUTH_PROTO_OK: result = AUTH_RESULT_OK; break;
	case AUTH_PROTO_FAIL: result = AUTH_RESULT_FAIL; break;
	case AUTH_PROTO_NOUSER: result = AUTH_RESULT_NOUSER; break;
	case AUTH_PROTO_TEMP:
	case AUTH_PROTO_HELLO: break;
	}
	request_finish(req, result, reply->user);
}

/* Takes one line off in into line; 1 got one, 0 need more, -1 too long. */
static int read_line(struct evbuffer *in, char *line, size_t *len_r)
{
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

static void client_read_cb(struct bufferevent *bev, void *context)
{
	char line[AUTH_PROTO_MAX_LINE];
	struct auth_proto_reply reply;
	const char *error;
	size_t len;
	int ret;

	/* a callback may deinit the client: stop once bev is not ours */
	while (ac.bev == bev) {
		ret = read_line(bufferevent_get_input(bev), line, &len);
		if (ret == 0)
			break;
		if (ret < 0 ||
		    auth_proto_reply_parse(line, len, &reply, &error) < 0) {
			client_disconnect(ret < 0 ? "reply line too long" :
					  "malformed reply");
			break;
		}
		handle_reply(&reply);
		auth_proto_reply_clear(&reply);
	}
}

static void client_event_cb(struct bufferevent *bev, short what,
			    void *context)
{
	if ((what & BEV_EVENT_CONNECTED) != 0)
		log_debug("auth connection established");
	if ((what & BEV_EVENT_EOF) != 0)
		client_disconnect("EOF from the auth process");
	else if ((what & BEV_EVENT_ERROR) != 0)
		client_disconnect(evutil_socket_error_to_string(
			EVUTIL_SOCKET_ERROR()));
}

static int client_connect(void)
{
	struct sockaddr_un sun;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(ac.socket_path) >= sizeof(sun.sun_path)) {
		log_error("auth socket path too long: %s", ac.socket_path);
		return -1;
	}
	memcpy(sun.sun_path, ac.socket_path, strlen(ac.socket_path));
	ac.bev = bufferevent_socket_new(ac.base, -1,
					BEV_OPT_CLOSE_ON_FREE);
	if (ac.bev == NULL)
		log_fatal("bufferevent_socket_new() failed");
	bufferevent_setcb(ac.bev, client_read_cb, NULL, client_event_cb, NULL);
	bufferevent_enable(ac.bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(ac.bev, (struct sockaddr *)&sun,
				       sizeof(sun)) < 0) {
		log_error("connect(%s) failed: %s", ac.socket_path,
			  evutil_socket_error_to_string(
				  EVUTIL_SOCKET_ERROR()));
		bufferevent_free(ac.bev);
		ac.bev = NULL;
		return -1;
	}
	ac.conn_gen++;
	ac.is_apop = false;
	return 0;
}

void auth_client_init(struct event_base *base, const char *socket_path)
{
	memset(&ac, 0, sizeof(ac));
	ac.base = base;
	ac.socket_path = xstrdup(socket_path);
	(void)client_connect();
}

void auth_client_deinit(void)
{
	for (size_t b = 0; b < AUTH_CLIENT_BUCKETS; b++) {
		while (ac.buckets[b] != NULL) {
			struct auth_request *req = ac.buckets[b];
			ac.buckets[b] = req->hash_next;
			request_free(req);
		}
	}
	if (ac.bev != NULL)
		bufferevent_free(ac.bev);
	free(ac.socket_path);
	memset(&ac, 0, sizeof(ac));
}

/* ---- requests ---- */

static struct auth_request *client_send(struct auth_proto_request *preq,
					auth_callback *cb, void *context)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));
	size_t len;
	char *line;

	req->cb = cb;
	req->context = context;
	table_add(req);
	preq->id = req->id;
	line = auth_proto_request_format(preq, &len);
	if (line == NULL) {
		/* oversized user/password or an unusable field */
		request_finish_later(req, AUTH_RESULT_FAIL);
		return req;
	}
	if (ac.bev == NULL && client_connect() < 0) {
		request_finish_later(req, AUTH_RESULT_TEMPFAIL);
	} else {
		req->conn_gen = ac.conn_gen;
		bufferevent_write(ac.bev, line, len);
	}
	xwipe(line, len);
	free(line);
	return req;
}

/* Copies s into a fixed field; an unusable value becomes "" so that
 * auth_proto_request_format() refuses the request. */
static void set_field(char *dst, size_t size, const char *s)
{
	if (strlen(s) < size)
		memcpy(dst, s, strlen(s) + 1);
	else
		dst[0] = '\0';
}

struct auth_request *auth_verify_plain(const char *service, const char *user,
				       const char *pass, const char *remote_ip,
				       auth_callback *cb, void *context)
{
	struct auth_proto_request preq;

	memset(&preq, 0, sizeof(preq));
	preq.type = AUTH_PROTO_VERIFY;
	set_field(preq.service, sizeof(preq.service), service);
	set_field(preq.remote_ip, sizeof(preq.remote_ip), remote_ip);
	preq.user = (char *)user;
	preq.secret = (char *)pass;
	return client_send(&preq, cb, context);
}

struct auth_request *auth_verify_apop(const char *user,
				      const char *timestamp,
				      const char *digest,
				      const char *remote_ip,
				      auth_callback *cb, void *context)
{
	struct auth_proto_request preq;

	memset(&preq, 0, sizeof(preq));
	preq.type = AUTH_PROTO_APOP;
	set_field(preq.remote_ip, sizeof(preq.remote_ip), remote_ip);
	set_field(preq.digest, sizeof(preq.digest), digest);
	preq.user = (char *)user;
	preq.secret = (char *)timestamp;
	return client_send(&preq, cb, context);
}

struct auth_request *auth_lookup_user(const char *user, auth_callback *cb,
				      void *context)
{
	struct auth_proto_request preq;

	memset(&preq, 0, sizeof(preq));
	preq.type = AUTH_PROTO_LOOKUP;
	preq.user = (char *)user;
	return client_send(&preq, cb, context);
}

void auth_request_abort(struct auth_request **_req)
{
	struct auth_request *req = *_req;

	if (req == NULL)
		return;
	*_req = NULL;
	if (req->is_finishing)
		return;		/* freed when its callback returns */
	table_remove(req);
	request_free(req);
}

bool auth_apop_available(void)
{
	if (ac.bev == NULL && ac.base != NULL)
		(void)client_connect();
	return ac.is_apop;
}
