/* control.c: the control socket (control.h). Master side: accepts admin
 * clients on <state_dir>/control, answers RELOAD and STATS itself, fans
 * WHO and KICK out to the workers over their socketpairs and collects the
 * answers with a timeout. Worker side: answers those requests from its
 * connection list. Everything is event-driven; the master never waits on
 * a worker or a client.
 * Limits: CONTROL_MAX_CLIENTS clients at once, command lines of
 * CONTROL_LINE_MAX bytes, CONTROL_CLIENT_TIMEOUT_SECS idle per client,
 * CONTROL_REPLY_MAX bytes of session lines per query (then truncated). */
#include "net/control.h"
#include "net/net_private.h"
#include "imap/imap_client.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTROL_MAX_CLIENTS 16
#define CONTROL_LINE_MAX 1024
#define CONTROL_CLIENT_TIMEOUT_SECS 30
#define CONTROL_REPLY_MAX (32 * 1024 * 1024)
/* A worker line longer than this is a broken channel. */
#define CONTROL_WORKER_LINE_MAX 8192

struct control_channel {
	struct control *ctl;
	pid_t pid;
	int fd;
	struct bufferevent *bev;
	LIST_ENTRY(control_channel) list;
};

struct control_query {
	struct control *ctl;
	struct control_client *client;
	uint64_t id;
	pid_t *awaited;		/* pids still to answer; 0 = answered */
	unsigned awaited_count, pending;
	unsigned kicked;
	bool is_kick, is_truncated;
	struct evbuffer *lines;
	struct event *timer;
	LIST_ENTRY(control_query) list;
};

struct control_client {
	struct control *ctl;
	struct bufferevent *bev;
	struct control_query *query;	/* running, or NULL */
	bool closing;
	LIST_ENTRY(control_client) list;
};

struct control {
	struct event_base *base;
	const struct control_ops *ops;
	void *ctx;
	int listen_fd;
	struct event *listen_ev;
	unsigned clients_count;
	uint64_t next_id;
	LIST_HEAD(, control_channel) channels;
	LIST_HEAD(, control_client) clients;
	LIST_HEAD(, control_query) queries;
};

static void control_client_input(struct control_client *cl);

/* ---- queries (master) ---- */

static void control_query_free(struct control_query *q)
{
	LIST_REMOVE(q, list);
	if (q->client != NULL)
		q->client->query = NULL;
	event_free(q->timer);
	evbuffer_free(q->lines);
	free(q->awaited);
	free(q);
}

static void control_client_free(struct control_client *cl)
{
	if (cl->query != NULL) {
		cl->query->client = NULL;
		control_query_free(cl->query);
	}
	LIST_REMOVE(cl, list);
	cl->ctl->clients_count--;
	bufferevent_free(cl->bev);
	free(cl);
}

/* Sends the collected answer and lets the client send its next line. */
static void control_query_finish(struct control_query *q)
{
	struct control_client *cl = q->client;
	struct evbuffer *out = bufferevent_get_output(cl->bev);

	evbuffer_add_buffer(out, q->lines);
	if (q->is_truncated)
		evbuffer_add_printf(out, "# truncated: more than %d bytes\n",
				    CONTROL_REPLY_MAX);
	if (q->pending > 0)
		evbuffer_add_printf(out, "# partial: %u of %u workers did "
				    "not answer within %d ms\n", q->pending,
				    q->awaited_count,
				    CONTROL_QUERY_TIMEOUT_MSECS);
	if (q->is_kick)
		evbuffer_add_printf(out, "kicked %u\n", q->kicked);
	evbuffer_add_printf(out, "OK\n");
	control_query_free(q);
	bufferevent_enable(cl->bev, EV_READ);
	control_client_input(cl);
}

static void control_query_timeout_cb(evutil_socket_t fd, short what,
				     void *ctx)
{
	control_query_finish(ctx);
}

static struct control_query *control_query_find(struct control *ctl,
						uint64_t id)
{
	struct control_query *q;

	LIST_FOREACH(q, &ctl->queries, list) {
		if (q->id == id)
			return q;
	}
	return NULL;
}

/* pid answered (or went away): one fewer to wait for. */
static void control_query_answered(struct control_query *q, pid_t pid)
{
	for (unsigned i = 0; i < q->awaited_count; i++) {
		if (q->awaited[i] == pid) {
			q->awaited[i] = 0;
			if (--q->pending == 0)
				control_query_finish(q);
			return;
		}
	}
}

static void control_query_start(struct control_client *cl, bool is_kick,
				 const char *user)
{
	struct control *ctl = cl->ctl;
	struct control_query *q = xcalloc(1, sizeof(*q));
	struct timeval tv = { CONTROL_QUERY_TIMEOUT_MSECS / 1000,
			      (CONTROL_QUERY_TIMEOUT_MSECS % 1000) * 1000 };
	struct control_channel *ch;
	unsigned n = 0;

	q->ctl = ctl;
	q->client = cl;
	q->id = ++ctl->next_id;
	q->is_kick = is_kick;
	q->lines = evbuffer_new();
	q->timer = evtimer_new(ctl->base, control_query_timeout_cb, q);
	LIST_FOREACH(ch, &ctl->channels, list)
		n++;
	q->awaited = xcalloc(n + 1, sizeof(*q->awaited));
	LIST_INSERT_HEAD(&ctl->queries, q, list);
	cl->query = q;
	LIST_FOREACH(ch, &ctl->channels, list) {
		q->awaited[q->awaited_count++] = ch->pid;
		if (is_kick)
			evbuffer_add_printf(bufferevent_get_output(ch->bev),
					    "%llu KICK %s\n",
					    (unsigned long long)q->id, user);
		else
			evbuffer_add_printf(bufferevent_get_output(ch->bev),
					    "%llu WHO\n",
					    (unsigned long long)q->id);
	}
	q->pending = q->awaited_count;
	if (q->pending == 0) {
		control_query_finish(q);
		return;
	}
	bufferevent_disable(cl->bev, EV_READ);
	evtimer_add(q->timer, &tv);
}

/* ---- worker channels (master) ---- */

static void control_channel_free(struct control_channel *ch)
{
	struct control *ctl = ch->ctl;
	struct control_query *q, *next;
	pid_t pid = ch->pid;

	LIST_REMOVE(ch, list);
	bufferevent_free(ch->bev);
	free(ch);
	/* Queries waiting for it finish without it. */
	for (q = LIST_FIRST(&ctl->queries); q != NULL; q = next) {
		next = LIST_NEXT(q, list);
		control_query_answered(q, pid);
	}
}

/* "ID S line" or "ID E count" from a worker. */
static void control_channel_line(struct control_channel *ch, char *line)
{
	char *rest;
	unsigned long long id = strtoull(line, &rest, 10);
	struct control_query *q = control_query_find(ch->ctl, id);

	if (q == NULL || rest[0] != ' ' || rest[1] == '\0' || rest[2] != ' ')
		return;	/* late answer to a finished query */
	if (rest[1] == 'S') {
		if (evbuffer_get_length(q->lines) > CONTROL_REPLY_MAX) {
			q->is_truncated = true;
			return;
		}
		evbuffer_add_printf(q->lines, "%s\n", rest + 3);
	} else if (rest[1] == 'E') {
		q->kicked += (unsigned)strtoul(rest + 3, NULL, 10);
		control_query_answered(q, ch->pid);
	}
}

static void control_channel_read_cb(struct bufferevent *bev, void *ctx)
{
	struct control_channel *ch = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		control_channel_line(ch, line);
		free(line);
	}
	if (evbuffer_get_length(in) > CONTROL_WORKER_LINE_MAX) {
		log_error("control: worker pid=%d sent an over-long line",
			  (int)ch->pid);
		control_channel_free(ch);
	}
}

static void control_channel_event_cb(struct bufferevent *bev, short what,
				     void *ctx)
{
	/* EOF or error: the worker is gone. */
	control_channel_free(ctx);
}

void control_worker_add(struct control *ctl, pid_t pid, int fd)
{
	struct control_channel *ch = xcalloc(1, sizeof(*ch));

	evutil_make_socket_nonblocking(fd);
	ch->ctl = ctl;
	ch->pid = pid;
	ch->fd = fd;
	ch->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (ch->bev == NULL) {
		close(fd);
		free(ch);
		return;
	}
	bufferevent_setcb(ch->bev, control_channel_read_cb, NULL,
			  control_channel_event_cb, ch);
	bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
	LIST_INSERT_HEAD(&ctl->channels, ch, list);
}

void control_worker_remove(struct control *ctl, pid_t pid)
{
	struct control_channel *ch;

	LIST_FOREACH(ch, &ctl->channels, list) {
		if (ch->pid == pid) {
			control_channel_free(ch);
			return;
		}
	}
}

/* ---- admin clients (master) ---- */

static void control_reply_err(struct control_client *cl, const char *why)
{
	evbuffer_add_printf(bufferevent_get_output(cl->bev), "ERR %s\n", why);
}

static void control_reload(struct control_client *cl)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);
	char *error = NULL;

	if (cl->ctl->ops->reload(cl->ctl->ctx, &error) < 0) {
		control_reply_err(cl, error != NULL ? error : "reload failed");
		free(error);
		return;
	}
	evbuffer_add_printf(out, "# reloaded: new workers started, old ones "
			    "drain their sessions\nOK\n");
}

static void control_client_command(struct control_client *cl, char *line)
{
	char *arg = strchr(line, ' ');

	if (arg != NULL)
		*arg++ = '\0';
	log_info("control command=%s", line);
	if (strcasecmp(line, "WHO") == 0 && arg == NULL) {
		control_query_start(cl, false, NULL);
	} else if (strcasecmp(line, "KICK") == 0) {
		if (arg == NULL || *arg == '\0' || strchr(arg, ' ') != NULL)
			control_reply_err(cl, "usage: KICK USER");
		else
			control_query_start(cl, true, arg);
	} else if (strcasecmp(line, "RELOAD") == 0 && arg == NULL) {
		control_reload(cl);
	} else if (strcasecmp(line, "STATS") == 0 && arg == NULL) {
		cl->ctl->ops->stats(cl->ctl->ctx,
				    bufferevent_get_output(cl->bev));
		evbuffer_add_printf(bufferevent_get_output(cl->bev), "OK\n");
	} else {
		control_reply_err(cl, "unknown command (WHO, KICK USER, "
				  "RELOAD, STATS)");
	}
}

/* Runs complete lines while no query is running. */
static void control_client_input(struct control_client *cl)
{
	struct evbuffer *in = bufferevent_get_input(cl->bev);
	char *line;
	size_t len;

	while (cl->query == NULL && !cl->closing &&
	       (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		if (len > CONTROL_LINE_MAX || memchr(line, '\0', len) != NULL)
			control_reply_err(cl, "bad command line");
		else
			control_client_command(cl, line);
		free(line);
	}
	if (cl->query == NULL && evbuffer_get_length(in) > CONTROL_LINE_MAX) {
		control_reply_err(cl, "line too long");
		cl->closing = true;
		bufferevent_disable(cl->bev, EV_READ);
	}
}

static void control_client_read_cb(struct bufferevent *bev, void *ctx)
{
	control_client_input(ctx);
}

static void control_client_write_cb(struct bufferevent *bev, void *ctx)
{
	struct control_client *cl = ctx;

	if (cl->closing)
		control_client_free(cl);
}

static void control_client_event_cb(struct bufferevent *bev, short what,
				    void *ctx)
{
	control_client_free(ctx);
}

static void control_accept_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct control *ctl = ctx;
	struct timeval tv = { CONTROL_CLIENT_TIMEOUT_SECS, 0 };
	struct control_client *cl;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (cfd < 0)
		return;
	if (ctl->clients_count >= CONTROL_MAX_CLIENTS) {
		static const char busy[] = "ERR too many control clients\n";
		if (write(cfd, busy, sizeof(busy) - 1) < 0) {
			/* best effort */
		}
		close(cfd);
		return;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->ctl = ctl;
	cl->bev = bufferevent_socket_new(ctl->base, cfd, BEV_OPT_CLOSE_ON_FREE);
	if (cl->bev == NULL) {
		close(cfd);
		free(cl);
		return;
	}
	ctl->clients_count++;
	LIST_INSERT_HEAD(&ctl->clients, cl, list);
	bufferevent_setcb(cl->bev, control_client_read_cb,
			  control_client_write_cb, control_client_event_cb, cl);
	bufferevent_set_timeouts(cl->bev, &tv, &tv);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
}

struct control *control_create(struct event_base *base, int listen_fd,
			       const struct control_ops *ops, void *ctx)
{
	struct control *ctl = xcalloc(1, sizeof(*ctl));

	ctl->base = base;
	ctl->ops = ops;
	ctl->ctx = ctx;
	ctl->listen_fd = listen_fd;
	LIST_INIT(&ctl->channels);
	LIST_INIT(&ctl->clients);
	LIST_INIT(&ctl->queries);
	ctl->listen_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST,
				   control_accept_cb, ctl);
	event_add(ctl->listen_ev, NULL);
	return ctl;
}

void control_destroy(struct control **ctlp)
{
	struct control *ctl = *ctlp;

	if (ctl == NULL)
		return;
	while (!LIST_EMPTY(&ctl->clients))
		control_client_free(LIST_FIRST(&ctl->clients));
	while (!LIST_EMPTY(&ctl->channels))
		control_channel_free(LIST_FIRST(&ctl->channels));
	while (!LIST_EMPTY(&ctl->queries))
		control_query_free(LIST_FIRST(&ctl->queries));
	event_free(ctl->listen_ev);
	close(ctl->listen_fd);
	free(ctl);
	*ctlp = NULL;
}

void control_close_fds(struct control *ctl)
{
	struct control_channel *ch;
	struct control_client *cl;

	if (ctl == NULL)
		return;
	close(ctl->listen_fd);
	LIST_FOREACH(ch, &ctl->channels, list)
		close(ch->fd);
	LIST_FOREACH(cl, &ctl->clients, list)
		close(bufferevent_getfd(cl->bev));
}

/* ---- worker side ---- */

static int control_worker_fd = -1;
static struct bufferevent *control_worker_bev;

/* Copies s into buf, '?' for bytes that would break the line format
 * (controls; also spaces unless allow_space). */
static const char *control_safe(const char *s, bool allow_space, char *buf,
				size_t size)
{
	size_t i;

	if (s == NULL || *s == '\0')
		return "-";
	for (i = 0; s[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[i] = c < 0x20 || c == 0x7f || (c == ' ' && !allow_space) ?
			'?' : (char)c;
	}
	buf[i] = '\0';
	return buf;
}

/* The selected mailbox of an IMAP session, or NULL. */
static const char *control_imap_mailbox(struct conn *c)
{
	const struct imap_client *client = conn_session(c);

	if (client == NULL || strcmp(conn_proto_name(c), "imap") != 0 ||
	    client->state != IMAP_STATE_SELECTED)
		return NULL;
	return client->mailbox_name;
}

static void control_worker_who(struct evbuffer *out, unsigned long long id)
{
	char user[128], mbox[256];
	const char *ip;

	for (struct conn *c = conn_list_first(); c != NULL;
	     c = conn_list_next(c)) {
		ip = conn_remote_ip(c);
		evbuffer_add_printf(out, "%llu S %d %s %s %s%s%s:%u %s %lu %s\n",
				    id, (int)getpid(), conn_proto_name(c),
				    control_safe(conn_user(c), false, user,
						 sizeof(user)),
				    strchr(ip, ':') != NULL ? "[" : "", ip,
				    strchr(ip, ':') != NULL ? "]" : "",
				    conn_remote_port(c),
				    conn_is_tls(c) ? "yes" : "no",
				    conn_age_secs(c),
				    control_safe(control_imap_mailbox(c), true,
						 mbox, sizeof(mbox)));
	}
	evbuffer_add_printf(out, "%llu E 0\n", id);
}

static void control_worker_kick(struct evbuffer *out, unsigned long long id,
				const char *user)
{
	unsigned n = 0;

	for (struct conn *c = conn_list_first(); c != NULL;
	     c = conn_list_next(c))
		n += (unsigned)conn_kick(c, user);
	if (n > 0)
		log_info("kick user=%s sessions=%u", user, n);
	evbuffer_add_printf(out, "%llu E %u\n", id, n);
}

static void control_worker_line(struct evbuffer *out, char *line)
{
	char *rest;
	unsigned long long id = strtoull(line, &rest, 10);

	if (strcmp(rest, " WHO") == 0)
		control_worker_who(out, id);
	else if (strncmp(rest, " KICK ", 6) == 0)
		control_worker_kick(out, id, rest + 6);
	else
		evbuffer_add_printf(out, "%llu E 0\n", id);
}

static void control_worker_read_cb(struct bufferevent *bev, void *ctx)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		control_worker_line(out, line);
		free(line);
	}
	if (evbuffer_get_length(in) > CONTROL_WORKER_LINE_MAX)
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void control_worker_event_cb(struct bufferevent *bev, short what,
				    void *ctx)
{
	/* The master is gone; PR_SET_PDEATHSIG ends us soon. */
	bufferevent_free(control_worker_bev);
	control_worker_bev = NULL;
}

void control_worker_set_fd(int fd)
{
	control_worker_fd = fd;
}

void control_worker_start(struct event_base *base)
{
	if (control_worker_fd < 0)
		return;
	evutil_make_socket_nonblocking(control_worker_fd);
	control_worker_bev = bufferevent_socket_new(base, control_worker_fd,
						    BEV_OPT_CLOSE_ON_FREE);
	if (control_worker_bev == NULL) {
		log_error("control: bufferevent for the master failed");
		close(control_worker_fd);
		control_worker_fd = -1;
		return;
	}
	bufferevent_setcb(control_worker_bev, control_worker_read_cb, NULL,
			  control_worker_event_cb, NULL);
	bufferevent_enable(control_worker_bev, EV_READ | EV_WRITE);
}
