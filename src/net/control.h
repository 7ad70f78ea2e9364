/* control.h: the admin control socket, <state_dir>/control (mode 0600,
 * owned by the master's user), used by `heron who|kick|reload|stats`.
 *
 * Client protocol: one command line, then reply lines ending with a line
 * "OK" or "ERR <reason>"; lines starting with "#" are notes.
 *   WHO          one line per session from every worker:
 *                PID PROTO USER|- REMOTE TLS(yes|no) SECS MAILBOX|-
 *   KICK USER    workers close USER's sessions (IMAP gets "* BYE", POP3
 *                "-ERR", LMTP "421" first); "kicked N" then OK
 *   RELOAD       same as SIGHUP
 *   STATS        the Prometheus metrics text
 * The master keeps a socketpair to each worker (made before the fork) and
 * asks them without ever blocking: WHO and KICK answer after every worker
 * replied or after CONTROL_QUERY_TIMEOUT_MSECS, then with a "# partial"
 * note. Master <-> worker lines: "ID WHO", "ID KICK USER" -> "ID S
 * <session line>"..., "ID E <count>". */
#ifndef HERON_CONTROL_H
#define HERON_CONTROL_H

#include <sys/types.h>

struct control;
struct evbuffer;
struct event_base;

#define CONTROL_QUERY_TIMEOUT_MSECS 2000

struct control_ops {
	/* RELOAD: 0, or -1 with a heap *error_r (the control frees it). */
	int (*reload)(void *ctx, char **error_r);
	/* STATS: appends the metrics text. */
	void (*stats)(void *ctx, struct evbuffer *out);
};

/* ---- master ---- */
/* listen_fd: bound, listening, non-blocking Unix socket (owned from now). */
struct control *control_create(struct event_base *base, int listen_fd,
			       const struct control_ops *ops, void *ctx);
void control_destroy(struct control **ctl);
/* A worker was forked: fd is the master's end of its socketpair (owned
 * from now). */
void control_worker_add(struct control *ctl, pid_t pid, int fd);
/* The worker exited: queries stop waiting for it. */
void control_worker_remove(struct control *ctl, pid_t pid);
/* In a freshly forked child: closes the master's sockets (listener and
 * every worker channel) without touching the parent's event state. */
void control_close_fds(struct control *ctl);

/* ---- worker ---- */
/* In the worker, before worker_main: its end of the socketpair. */
void control_worker_set_fd(int fd);
/* Serves the master's requests on base (no-op without an fd). */
void control_worker_start(struct event_base *base);

#endif
