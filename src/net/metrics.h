/* metrics.h: server counters, served by the master in the Prometheus text
 * format (metrics_listen = ADDR:PORT, GET /metrics) and by the control
 * socket's STATS command.
 *
 * Storage: one shared anonymous mapping made by the master before it
 * forks, one row per worker (the limits.h row) plus one for the auth
 * process and one "retired" row. A process writes only its own row
 * (metrics_attach), with relaxed 64-bit stores and no locks; the master
 * only reads them. When a child exits the master adds its counters to the
 * retired row and clears its row, so totals never go down; gauges (open
 * connections) of a dead child are dropped with it.
 *
 * Every update function is a no-op in a process that has no row (the CLI
 * tools, unit tests), so any module may call them. */
#ifndef HERON_METRICS_H
#define HERON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct evbuffer;
struct event_base;
struct metrics;
struct metrics_http;

enum metrics_proto {
	METRICS_PROTO_IMAP,
	METRICS_PROTO_POP3,
	METRICS_PROTO_LMTP,
	METRICS_PROTO_COUNT,
};

/* Plain event counters. */
enum metrics_counter {
	METRICS_AUTH_DELAY_HITS,	/* auth failures answered late */
	METRICS_INDEX_REBUILDS,		/* store: an index rebuilt/repaired */
	METRICS_LMTP_DELIVERED,		/* LMTP recipient got 250 */
	METRICS_LMTP_FAILED,		/* LMTP recipient got 4xx/5xx */
	METRICS_COUNTER_COUNT,
};

/* Commands longer than this many bytes are "other" without a lookup. */
#define METRICS_CMD_NAME_MAX 16

/* ---- master ---- */
/* worker_rows: rows for workers (limits_rows()); the auth and retired rows
 * come on top. Fatal if the mapping fails. */
struct metrics *metrics_create(unsigned worker_rows);
/* The auth process's row. */
unsigned metrics_auth_row(const struct metrics *m);
/* A child using row exited: fold its counters into the retired row, then
 * clear the row for its next user. */
void metrics_row_retire(struct metrics *m, unsigned row);
/* Appends the Prometheus text exposition (format 0.0.4) of all rows plus
 * the master's own gauges. */
void metrics_render(const struct metrics *m, unsigned workers_alive,
		    time_t started, struct evbuffer *out);

typedef void metrics_render_func(void *ctx, struct evbuffer *out);
/* Serves GET /metrics on addr ("HOST:PORT", "[V6]:PORT"; should be a
 * loopback address: there is no authentication) with libevent's evhttp;
 * anything else gets 404. NULL with *error_r on a bad address or bind
 * failure. */
struct metrics_http *metrics_http_start(struct event_base *base,
					const char *addr,
					metrics_render_func *render, void *ctx,
					const char **error_r);
/* The listening socket (a forked child closes it), or -1. */
int metrics_http_fd(const struct metrics_http *h);
void metrics_http_stop(struct metrics_http **h);
/* Checks an address for metrics_listen syntax (config check). */
bool metrics_addr_is_valid(const char *addr);

/* ---- any process ---- */
/* After fork: this process writes row of m from now on. */
void metrics_attach(struct metrics *m, unsigned row);

void metrics_inc(enum metrics_counter counter);
/* "imap", "pop3", "lmtp"; METRICS_PROTO_COUNT for anything else. */
enum metrics_proto metrics_proto_of(const char *name);
void metrics_conn_open(enum metrics_proto proto, bool is_tls);
void metrics_conn_close(enum metrics_proto proto, bool is_tls);
/* A connection switched to TLS (STARTTLS/STLS). */
void metrics_conn_starttls(enum metrics_proto proto);
/* service: "imap", "pop3" (auth process verdicts). */
void metrics_login(const char *service, bool ok);
void metrics_bytes(enum metrics_proto proto, bool is_out, uint64_t n);

/* Command timing: index of a command name (case-insensitive, len bytes)
 * in the protocol's fixed table, 0 = "other". */
int metrics_cmd_index(enum metrics_proto proto, const char *name,
		      size_t len);
/* nsecs: the command's duration (time_mono_nsecs). */
void metrics_cmd_done(enum metrics_proto proto, int index, uint64_t nsecs);

#endif
