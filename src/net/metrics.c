/* metrics.c: shared counter rows (metrics.h) and their Prometheus text
 * exposition over evhttp.
 *
 * Writes: each process adds to its own row with a relaxed load + relaxed
 * store of an aligned 64-bit word (a plain mov on x86-64, no lock prefix):
 * a single writer per row makes that exact, and readers never see a torn
 * value. Rows are cache-line aligned so workers never share a line.
 * Command latency: a fixed table of names per protocol ("other" for the
 * rest, so clients can't create series) and METRICS_BUCKETS fixed buckets;
 * a row stores per-bucket counts and rendering makes them cumulative. */
#include "net/metrics.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#define METRICS_CMD_MAX 32
#define METRICS_BUCKETS 9

/* Bucket upper bounds ("le"), in nanoseconds and as printed. */
static const uint64_t metrics_bucket_nsecs[METRICS_BUCKETS] = {
	500000, 1000000, 5000000, 10000000, 50000000, 100000000,
	500000000, 1000000000, 5000000000ull,
};
static const char *const metrics_bucket_le[METRICS_BUCKETS] = {
	"0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5",
};

static const char *const metrics_proto_names[METRICS_PROTO_COUNT] = {
	"imap", "pop3", "lmtp",
};

/* Index 0 is "other"; NULL ends a table. */
static const char *const metrics_imap_cmds[METRICS_CMD_MAX] = {
	"other", "APPEND", "AUTHENTICATE", "CAPABILITY", "CHECK", "CLOSE",
	"COPY", "CREATE", "DELETE", "ENABLE", "EXAMINE", "EXPUNGE", "FETCH",
	"ID", "IDLE", "LIST", "LOGIN", "LOGOUT", "LSUB", "MOVE", "NAMESPACE",
	"NOOP", "RENAME", "SEARCH", "SELECT", "STARTTLS", "STATUS", "STORE",
	"SUBSCRIBE", "UNSELECT", "UNSUBSCRIBE", NULL,
};
static const char *const metrics_pop3_cmds[METRICS_CMD_MAX] = {
	"other", "APOP", "AUTH", "CAPA", "DELE", "LIST", "NOOP", "PASS",
	"QUIT", "RETR", "RSET", "STAT", "STLS", "TOP", "UIDL", "USER", NULL,
};
static const char *const metrics_lmtp_cmds[METRICS_CMD_MAX] = {
	"other", "LHLO", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET",
	"NOOP", "QUIT", "VRFY", "STARTTLS", NULL,
};
static const char *const *const metrics_cmd_tables[METRICS_PROTO_COUNT] = {
	metrics_imap_cmds, metrics_pop3_cmds, metrics_lmtp_cmds,
};

struct metrics_cmd {
	uint64_t count;
	uint64_t sum_nsecs;
	uint64_t bucket[METRICS_BUCKETS];	/* not cumulative */
};

/* Counters only: folded word by word into the retired row. */
struct metrics_counters {
	uint64_t counter[METRICS_COUNTER_COUNT];
	uint64_t accepted[METRICS_PROTO_COUNT][2];	/* [is_tls] */
	uint64_t starttls[METRICS_PROTO_COUNT];
	uint64_t logins[METRICS_PROTO_COUNT][2];	/* [failed] */
	uint64_t bytes[METRICS_PROTO_COUNT][2];		/* [is_out] */
	struct metrics_cmd cmd[METRICS_PROTO_COUNT][METRICS_CMD_MAX];
};

struct metrics_gauges {
	int64_t current[METRICS_PROTO_COUNT][2];	/* [is_tls] */
};

struct metrics_row {
	struct metrics_counters c;
	struct metrics_gauges g;
} __attribute__((aligned(64)));

struct metrics {
	unsigned rows;		/* worker rows + auth + retired */
	struct metrics_row row[];
};

struct metrics_http {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	metrics_render_func *render;
	void *ctx;
};

/* This process's row, or NULL. */
static struct metrics_row *metrics_self;

/* ---- writing (owner only) ---- */

static inline void metrics_add(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void metrics_gauge_add(int64_t *p, int64_t n)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

void metrics_attach(struct metrics *m, unsigned row)
{
	metrics_self = m != NULL && row < m->rows ? &m->row[row] : NULL;
}

void metrics_inc(enum metrics_counter counter)
{
	if (metrics_self != NULL && counter < METRICS_COUNTER_COUNT)
		metrics_add(&metrics_self->c.counter[counter], 1);
}

enum metrics_proto metrics_proto_of(const char *name)
{
	for (int i = 0; i < METRICS_PROTO_COUNT; i++) {
		if (strcmp(metrics_proto_names[i], name) == 0)
			return (enum metrics_proto)i;
	}
	return METRICS_PROTO_COUNT;
}

void metrics_conn_open(enum metrics_proto proto, bool is_tls)
{
	if (metrics_self == NULL || proto >= METRICS_PROTO_COUNT)
		return;
	metrics_add(&metrics_self->c.accepted[proto][is_tls], 1);
	metrics_gauge_add(&metrics_self->g.current[proto][is_tls], 1);
}

void metrics_conn_close(enum metrics_proto proto, bool is_tls)
{
	if (metrics_self == NULL || proto >= METRICS_PROTO_COUNT)
		return;
	metrics_gauge_add(&metrics_self->g.current[proto][is_tls], -1);
}

void metrics_conn_starttls(enum metrics_proto proto)
{
	if (metrics_self == NULL || proto >= METRICS_PROTO_COUNT)
		return;
	metrics_add(&metrics_self->c.starttls[proto], 1);
	metrics_gauge_add(&metrics_self->g.current[proto][0], -1);
	metrics_gauge_add(&metrics_self->g.current[proto][1], 1);
}

void metrics_login(const char *service, bool ok)
{
	enum metrics_proto proto = metrics_proto_of(service);

	if (metrics_self != NULL && proto < METRICS_PROTO_COUNT)
		metrics_add(&metrics_self->c.logins[proto][!ok], 1);
}

void metrics_bytes(enum metrics_proto proto, bool is_out, uint64_t n)
{
	if (metrics_self != NULL && proto < METRICS_PROTO_COUNT)
		metrics_add(&metrics_self->c.bytes[proto][is_out], n);
}

int metrics_cmd_index(enum metrics_proto proto, const char *name,
		      size_t len)
{
	const char *const *table;
	char first;

	if (proto >= METRICS_PROTO_COUNT || len > METRICS_CMD_NAME_MAX)
		return 0;
	if (len == 0)
		return 0;
	table = metrics_cmd_tables[proto];
	first = (char)(name[0] & ~0x20);	/* ASCII upper case */
	for (int i = 1; i < METRICS_CMD_MAX && table[i] != NULL; i++) {
		if (table[i][0] == first &&
		    strncasecmp(table[i], name, len) == 0 &&
		    table[i][len] == '\0')
			return i;
	}
	return 0;
}

void metrics_cmd_done(enum metrics_proto proto, int index, uint64_t nsecs)
{
	struct metrics_cmd *mc;
	int b;

	if (metrics_self == NULL || proto >= METRICS_PROTO_COUNT ||
	    index < 0 || index >= METRICS_CMD_MAX)
		return;
	mc = &metrics_self->c.cmd[proto][index];
	metrics_add(&mc->count, 1);
	metrics_add(&mc->sum_nsecs, nsecs);
	for (b = 0; b < METRICS_BUCKETS; b++) {
		if (nsecs <= metrics_bucket_nsecs[b]) {
			metrics_add(&mc->bucket[b], 1);
			break;
		}
	}
}

/* ---- master ---- */

struct metrics *metrics_create(unsigned worker_rows)
{
	unsigned rows = worker_rows + 2;
	size_t size = sizeof(struct metrics) +
		(size_t)rows * sizeof(struct metrics_row);
	struct metrics *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		log_fatal("mmap(%zu) for metrics failed", size);
	m->rows = rows;
	return m;
}

unsigned metrics_auth_row(const struct metrics *m)
{
	return m->rows - 2;
}

static unsigned metrics_retired_row(const struct metrics *m)
{
	return m->rows - 1;
}

/* Adds the counters of row src into *dst (relaxed loads). */
static void metrics_sum_into(struct metrics_counters *dst,
			     const struct metrics_row *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)&src->c;

	for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

void metrics_row_retire(struct metrics *m, unsigned row)
{
	struct metrics_row *r, *ret;
	struct metrics_counters sum = { 0 };

	if (row >= metrics_retired_row(m))
		return;
	r = &m->row[row];
	ret = &m->row[metrics_retired_row(m)];
	/* The owner is dead (reaped): nobody writes either row now. */
	metrics_sum_into(&sum, ret);
	metrics_sum_into(&sum, r);
	memcpy(&ret->c, &sum, sizeof(sum));
	memset(r, 0, sizeof(*r));
}

/* ---- rendering ---- */

static void metrics_help(struct evbuffer *out, const char *name,
			 const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			    name, type);
}

static void metrics_render_conns(const struct metrics_counters *t,
				 const int64_t cur[][2],
				 struct evbuffer *out)
{
	metrics_help(out, "heron_connections_accepted_total", "counter",
		     "Connections accepted, by protocol and implicit TLS.");
	for (int p = 0; p < METRICS_PROTO_COUNT; p++)
		for (int tls = 0; tls < 2; tls++)
			evbuffer_add_printf(out, "heron_connections_accepted_"
					    "total{proto=\"%s\",tls=\"%s\"} "
					    "%llu\n", metrics_proto_names[p],
					    tls ? "yes" : "no",
					    (unsigned long long)
					    t->accepted[p][tls]);
	metrics_help(out, "heron_connections_current", "gauge",
		     "Open connections, by protocol and TLS (STARTTLS "
		     "included).");
	for (int p = 0; p < METRICS_PROTO_COUNT; p++)
		for (int tls = 0; tls < 2; tls++)
			evbuffer_add_printf(out, "heron_connections_current"
					    "{proto=\"%s\",tls=\"%s\"} %lld\n",
					    metrics_proto_names[p],
					    tls ? "yes" : "no",
					    (long long)(cur[p][tls] < 0 ? 0 :
							cur[p][tls]));
	metrics_help(out, "heron_starttls_total", "counter",
		     "Connections switched to TLS by STARTTLS/STLS.");
	for (int p = 0; p < METRICS_PROTO_COUNT; p++)
		evbuffer_add_printf(out, "heron_starttls_total{proto=\"%s\"} "
				    "%llu\n", metrics_proto_names[p],
				    (unsigned long long)t->starttls[p]);
}

static void metrics_render_traffic(const struct metrics_counters *t,
				   struct evbuffer *out)
{
	metrics_help(out, "heron_logins_total", "counter",
		     "Password verifications by the auth process.");
	for (int p = 0; p < METRICS_PROTO_LMTP; p++)
		for (int failed = 0; failed < 2; failed++)
			evbuffer_add_printf(out, "heron_logins_total{proto=\"%s"
					    "\",result=\"%s\"} %llu\n",
					    metrics_proto_names[p],
					    failed ? "failed" : "ok",
					    (unsigned long long)
					    t->logins[p][failed]);
	metrics_help(out, "heron_auth_delay_hits_total", "counter",
		     "Failed logins answered after the failure delay.");
	evbuffer_add_printf(out, "heron_auth_delay_hits_total %llu\n",
			    (unsigned long long)
			    t->counter[METRICS_AUTH_DELAY_HITS]);
	metrics_help(out, "heron_bytes_received_total", "counter",
		     "Bytes read from clients (after TLS decryption).");
	for (int p = 0; p < METRICS_PROTO_COUNT; p++)
		evbuffer_add_printf(out, "heron_bytes_received_total{proto="
				    "\"%s\"} %llu\n", metrics_proto_names[p],
				    (unsigned long long)t->bytes[p][0]);
	metrics_help(out, "heron_bytes_sent_total", "counter",
		     "Bytes queued to clients (before TLS encryption).");
	for (int p = 0; p < METRICS_PROTO_COUNT; p++)
		evbuffer_add_printf(out, "heron_bytes_sent_total{proto="
				    "\"%s\"} %llu\n", metrics_proto_names[p],
				    (unsigned long long)t->bytes[p][1]);
	metrics_help(out, "heron_lmtp_deliveries_total", "counter",
		     "LMTP recipients answered, by result.");
	evbuffer_add_printf(out, "heron_lmtp_deliveries_total{result=\"ok\"} "
			    "%llu\nheron_lmtp_deliveries_total{result="
			    "\"failed\"} %llu\n", (unsigned long long)
			    t->counter[METRICS_LMTP_DELIVERED],
			    (unsigned long long)
			    t->counter[METRICS_LMTP_FAILED]);
	metrics_help(out, "heron_index_rebuilds_total", "counter",
		     "Mailbox indexes rebuilt or repaired.");
	evbuffer_add_printf(out, "heron_index_rebuilds_total %llu\n",
			    (unsigned long long)
			    t->counter[METRICS_INDEX_REBUILDS]);
}

static void metrics_render_cmd(const struct metrics_cmd *mc, const char *proto,
			       const char *name, struct evbuffer *out)
{
	uint64_t cum = 0;

	for (int b = 0; b < METRICS_BUCKETS; b++) {
		cum += mc->bucket[b];
		evbuffer_add_printf(out, "heron_command_duration_seconds_bucket"
				    "{proto=\"%s\",command=\"%s\",le=\"%s\"} "
				    "%llu\n", proto, name,
				    metrics_bucket_le[b],
				    (unsigned long long)cum);
	}
	evbuffer_add_printf(out, "heron_command_duration_seconds_bucket"
			    "{proto=\"%s\",command=\"%s\",le=\"+Inf\"} %llu\n"
			    "heron_command_duration_seconds_sum{proto=\"%s\","
			    "command=\"%s\"} %.6f\n"
			    "heron_command_duration_seconds_count{proto=\"%s\","
			    "command=\"%s\"} %llu\n", proto, name,
			    (unsigned long long)mc->count, proto, name,
			    (double)mc->sum_nsecs / 1e9, proto, name,
			    (unsigned long long)mc->count);
}

static void metrics_render_cmds(const struct metrics_counters *t,
				struct evbuffer *out)
{
	metrics_help(out, "heron_command_duration_seconds", "histogram",
		     "Command latency from dispatch to final reply; only "
		     "commands seen so far.");
	for (int p = 0; p < METRICS_PROTO_COUNT; p++) {
		const char *const *table = metrics_cmd_tables[p];

		for (int i = 0; i < METRICS_CMD_MAX && table[i] != NULL; i++) {
			if (t->cmd[p][i].count > 0)
				metrics_render_cmd(&t->cmd[p][i],
						   metrics_proto_names[p],
						   table[i], out);
		}
	}
}

void metrics_render(const struct metrics *m, unsigned workers_alive,
		    time_t started, struct evbuffer *out)
{
	struct metrics_counters *total = xcalloc(1, sizeof(*total));
	int64_t cur[METRICS_PROTO_COUNT][2] = { { 0 } };
	struct timespec now;

	for (unsigned r = 0; r < m->rows; r++) {
		metrics_sum_into(total, &m->row[r]);
		for (int p = 0; p < METRICS_PROTO_COUNT; p++)
			for (int tls = 0; tls < 2; tls++)
				cur[p][tls] += __atomic_load_n(
					&m->row[r].g.current[p][tls],
					__ATOMIC_RELAXED);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	metrics_help(out, "heron_uptime_seconds", "gauge",
		     "Seconds since the master started.");
	evbuffer_add_printf(out, "heron_uptime_seconds %lld\n",
			    (long long)(now.tv_sec - started));
	metrics_help(out, "heron_workers_alive", "gauge",
		     "Worker processes running (draining ones included).");
	evbuffer_add_printf(out, "heron_workers_alive %u\n", workers_alive);
	metrics_render_conns(total, (const int64_t (*)[2])cur, out);
	metrics_render_traffic(total, out);
	metrics_render_cmds(total, out);
	free(total);
}

/* ---- HTTP ---- */

/* "HOST:PORT" or "[V6]:PORT" -> host (in buf) and port. */
static int metrics_addr_parse(const char *addr, char *buf, size_t size,
			      uint16_t *port_r)
{
	const char *colon, *host = addr, *end;
	char *endp;
	unsigned long port;

	if (addr[0] == '[') {
		end = strchr(addr, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		host = addr + 1;
		colon = end + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return -1;
		end = colon;
	}
	if (end == host || (size_t)(end - host) >= size)
		return -1;
	port = strtoul(colon + 1, &endp, 10);
	if (colon[1] == '\0' || *endp != '\0' || port == 0 || port > 65535)
		return -1;
	memcpy(buf, host, (size_t)(end - host));
	buf[end - host] = '\0';
	*port_r = (uint16_t)port;
	return 0;
}

bool metrics_addr_is_valid(const char *addr)
{
	char host[64];
	uint16_t port;

	return metrics_addr_parse(addr, host, sizeof(host), &port) == 0;
}

static void metrics_http_cb(struct evhttp_request *req, void *ctx)
{
	struct metrics_http *h = ctx;
	const char *uri = evhttp_request_get_uri(req);
	size_t plen = strcspn(uri, "?");
	struct evbuffer *body;

	if ((evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	     evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) ||
	    plen != strlen("/metrics") || strncmp(uri, "/metrics", plen) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	body = evbuffer_new();
	if (body == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	h->render(h->ctx, body);
	evhttp_add_header(evhttp_request_get_output_headers(req),
			  "Content-Type", "text/plain; version=0.0.4; "
			  "charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

struct metrics_http *metrics_http_start(struct event_base *base,
					const char *addr,
					metrics_render_func *render, void *ctx,
					const char **error_r)
{
	struct metrics_http *h;
	char host[64];
	uint16_t port;

	if (metrics_addr_parse(addr, host, sizeof(host), &port) < 0) {
		*error_r = "metrics_listen: expected HOST:PORT or [V6]:PORT";
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->render = render;
	h->ctx = ctx;
	h->http = evhttp_new(base);
	if (h->http == NULL) {
		free(h);
		*error_r = "evhttp_new failed";
		return NULL;
	}
	evhttp_set_timeout(h->http, 10);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_gencb(h->http, metrics_http_cb, h);
	h->sock = evhttp_bind_socket_with_handle(h->http, host, port);
	if (h->sock == NULL) {
		evhttp_free(h->http);
		free(h);
		*error_r = "metrics_listen: cannot bind the address";
		return NULL;
	}
	return h;
}

int metrics_http_fd(const struct metrics_http *h)
{
	return h != NULL && h->sock != NULL ?
		(int)evhttp_bound_socket_get_fd(h->sock) : -1;
}

void metrics_http_stop(struct metrics_http **hp)
{
	struct metrics_http *h = *hp;

	if (h == NULL)
		return;
	evhttp_free(h->http);
	free(h);
	*hp = NULL;
}
