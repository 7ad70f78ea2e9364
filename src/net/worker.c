/* worker.c: the worker process. Accepts on the inherited listening
 * sockets, counts connections per IP and per user (max_conns_per_ip,
 * max_conns_per_user: enforced per worker), and shuts down cleanly.
 * Does not bind anything or read secrets: the master and the auth process
 * do that. */
#include "net/worker.h"
#include "net/net_private.h"
#include "net/limits.h"
#include "net/sandbox.h"
#include "net/control.h"
#include "net/tls.h"
#include "auth/auth.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "imap/imap_client.h"
#include "lmtp/lmtp.h"
#include "pop3/pop3.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Accepts per listener wake-up, so one busy port can't starve others. */
#define WORKER_ACCEPT_BATCH 32

struct worker_listener {
	struct worker *w;
	struct event *ev;
	int fd;
	const struct listener_conf *conf;
	const struct proto_ops *ops;
};

struct worker {
	struct event_base *base;
	const struct settings *set;
	SSL_CTX *tls;
	struct worker_listener *listeners;
	size_t listeners_count;
	struct conn *conns;
	unsigned conns_count;
	bool draining;
	struct limits *limits;	/* shared connection counts */
	unsigned row;		/* this worker's row in them */
};

struct event_base *worker_base(struct worker *w) { return w->base; }
const struct settings *worker_settings(struct worker *w) { return w->set; }
SSL_CTX *worker_tls_ctx(struct worker *w) { return w->tls; }

int worker_count_add(struct worker *w, bool is_user, const char *key,
		     unsigned max)
{
	return limits_add(w->limits, w->row, is_user, key, max);
}

void worker_count_del(struct worker *w, bool is_user, const char *key)
{
	limits_del(w->limits, w->row, is_user, key);
}

static void worker_check_drained(struct worker *w)
{
	if (w->draining && w->conns_count == 0)
		event_base_loopbreak(w->base);
}

void worker_conn_link(struct worker *w, struct conn *conn)
{
	w->conns_count++;
}

void worker_conn_unlink(struct worker *w, struct conn *conn)
{
	w->conns_count--;
	worker_check_drained(w);
}

static void worker_accept_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker_listener *wl = ctx;

	for (int i = 0; i < WORKER_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &len,
				  SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("accept(%s) failed: %s",
					 wl->ops->name, strerror(errno));
			return;
		}
		if (ss.ss_family == AF_UNIX)
			((struct sockaddr *)&ss)->sa_family = AF_UNIX;
		conn_accept(wl->w, cfd, (struct sockaddr *)&ss, wl->conf,
			    wl->ops);
	}
}

static const struct proto_ops *worker_proto(enum listener_proto proto)
{
	switch (proto) {
	case PROTO_POP3:
		return &pop3_proto_ops;
	case PROTO_LMTP:
		return &lmtp_proto_ops;
	case PROTO_IMAP:
		return &imap_proto_ops;
	}
	return NULL;
}

static void worker_stop_listening(struct worker *w)
{
	for (size_t i = 0; i < w->listeners_count; i++) {
		if (w->listeners[i].ev != NULL) {
			event_free(w->listeners[i].ev);
			w->listeners[i].ev = NULL;
		}
		close(w->listeners[i].fd);
	}
	w->listeners_count = 0;
}

static void worker_signal_cb(evutil_socket_t sig, short what, void *ctx)
{
	struct worker *w = ctx;

	worker_stop_listening(w);
	if (sig == SIGUSR1) {
		log_info("draining sessions=%u", w->conns_count);
		w->draining = true;
		worker_check_drained(w);
	} else {
		/* POP3 sessions end without UPDATE (nothing is deleted);
		 * unfinished LMTP transactions drop their temp files. */
		conn_destroy_all("shutdown");
		event_base_loopbreak(w->base);
	}
}

static void worker_listen(struct worker *w, const int *fds, unsigned slots,
			  unsigned slot)
{
	const struct settings *set = w->set;

	w->listeners = xcalloc(set->listeners_count, sizeof(*w->listeners));
	for (size_t i = 0; i < set->listeners_count; i++) {
		struct worker_listener *wl = &w->listeners[i];
		const int *row = &fds[i * slots];

		/* The other workers' SO_REUSEPORT sockets stay open in the
		 * master; a Unix listener's one socket is in every slot. */
		for (unsigned s = 0; s < slots; s++) {
			if (s != slot && row[s] != row[slot])
				close(row[s]);
		}
		wl->w = w;
		wl->fd = row[slot];
		wl->conf = &set->listeners[i];
		wl->ops = worker_proto(wl->conf->proto);
		if (wl->ops == NULL)
			log_fatal("listener %zu: protocol not available", i);
		wl->ev = event_new(w->base, wl->fd, EV_READ | EV_PERSIST,
				   worker_accept_cb, wl);
		event_add(wl->ev, NULL);
	}
	w->listeners_count = set->listeners_count;
}

void worker_main(const struct settings *set, const int *fds,
		 unsigned slots, int index,
		 struct limits *limits, unsigned row, SSL_CTX *tls)
{
	struct worker w = { .set = set, .limits = limits, .row = row,
			    .tls = tls };
	struct event *sig_term, *sig_int, *sig_usr1;
	char tag[32], *auth_path;

	snprintf(tag, sizeof(tag), "worker%d", index);
	log_set_tag(tag);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* Privileges were dropped by the master (master_worker_tls); no
	 * thread exists yet, so Landlock covers all of them. */
	/* The zone (/etc/localtime) is read once, before the sandbox
	 * closes the files: INTERNALDATE is shown in it. */
	tzset();
	if (sandbox_worker(set) < 0)
		log_fatal("sandbox: cannot set no_new_privs");
	w.base = event_base_new();
	if (w.base == NULL)
		log_fatal("event_base_new failed");
	worker_listen(&w, fds, slots, (unsigned)(index - 1) % slots);
	sig_term = evsignal_new(w.base, SIGTERM, worker_signal_cb, &w);
	sig_int = evsignal_new(w.base, SIGINT, worker_signal_cb, &w);
	sig_usr1 = evsignal_new(w.base, SIGUSR1, worker_signal_cb, &w);
	event_add(sig_term, NULL);
	event_add(sig_int, NULL);
	event_add(sig_usr1, NULL);
	control_worker_start(w.base);
	auth_path = xasprintf("%s/auth.sock", set->state_dir);
	auth_client_init(w.base, auth_path);
	free(auth_path);

	event_base_dispatch(w.base);
	log_debug("worker exiting sessions=%u", w.conns_count);
	_exit(0);
}
