/* tlsidle.c: idle IMAP connections over implicit TLS (imaps) for bench/run.
 *
 * Opens N connections one after the other (blocking: connect, TLS
 * handshake, greeting, LOGIN, SELECT INBOX, IDLE up to the "+"), prints
 * "READY authenticated=N ...", waits for SIGUSR1 (or the hold time), then
 * delivers one message over plain LMTP to users PREFIX1..PREFIXU (U =
 * min(users, N)), timestamps the end of DATA, and waits (epoll, sockets
 * non-blocking) until every idler has read "* n EXISTS" or the timeout
 * passes. Prints the latencies as "RESULT ..." and closes everything (DONE,
 * LOGOUT). The certificate is not verified: loopback benchmark only.
 * Limits: loopback addresses only; N <= 30000; every blocking read has a
 * timeout (-t, default 10 s); the whole run ends by itself.
 * Build: cc -O2 tlsidle.c -o tlsidle $(pkg-config --cflags --libs openssl) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "arrival.h"

#define MAX_CONNS 30000
#define LINE_MAX_LEN 8192

struct idler {
	int fd;
	SSL *ssl;
	bool notified;
	bool skipping;		/* dropping the rest of a long line */
	size_t len;		/* partial line in buf */
	char buf[256];
};

static struct idler *idlers;
static unsigned nconns, nusers = 1, ok_conns, notified;
static const char *prefix = "idle", *pass = "benchpass", *domain = "localhost";
static double timeout = 10, hold = 300, linger;
static struct sockaddr_in imap_addr, lmtp_addr;
static volatile sig_atomic_t got_usr1, got_stop;
static uint32_t *lat;
static size_t lat_count;
/* Kernel arrival times of the EXISTS (arrival.h), from t0_real. */
static uint32_t *arr;
static size_t arr_count;
static uint64_t t0_real;

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "tlsidle: %s%s%s\n", msg, arg ? ": " : "",
		arg ? arg : "");
	exit(2);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_usr1(int sig) { (void)sig; got_usr1 = 1; }
static void on_stop(int sig) { (void)sig; got_stop = 1; }

static void set_addr(struct sockaddr_in *sin, const char *addr, long port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1 ||
	    (ntohl(sin->sin_addr.s_addr) >> 24) != 127)
		die("only 127.0.0.0/8 addresses", addr);
	if (port <= 0 || port > 65535)
		die("bad port", NULL);
	sin->sin_port = htons((uint16_t)port);
}

static int tcp_connect(const struct sockaddr_in *sin)
{
	struct timeval tv = { (time_t)timeout, 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	arrival_enable(fd);
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Blocking line read over TLS (the idler's buf holds what follows). */
static int ssl_line(struct idler *c, char *line, size_t size)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		int n;

		if (nl != NULL) {
			size_t l = (size_t)(nl - c->buf) + 1;
			size_t k = l < size ? l : size - 1;
			bool skipped = c->skipping;

			memcpy(line, c->buf, k);
			line[k] = '\0';
			memmove(c->buf, c->buf + l, c->len - l);
			c->len -= l;
			c->skipping = false;
			if (skipped)
				continue;	/* the tail of a long line */
			return 0;
		}
		if (c->len == sizeof(c->buf)) {
			/* A long line: its start (tag, "*") is returned,
			 * the rest dropped up to its end. */
			bool skipped = c->skipping;
			size_t k = c->len < size ? c->len : size - 1;

			memcpy(line, c->buf, k);
			line[k] = '\0';
			c->len = 0;
			c->skipping = true;
			if (!skipped)
				return 0;
			continue;
		}
		n = SSL_read(c->ssl, c->buf + c->len,
			     (int)(sizeof(c->buf) - c->len));
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

static int ssl_send(struct idler *c, const char *s)
{
	return SSL_write(c->ssl, s, (int)strlen(s)) == (int)strlen(s) ? 0 : -1;
}

/* Reads until the tagged reply for tag; 0 when it is OK. */
static int ssl_tagged(struct idler *c, const char *tag)
{
	char line[LINE_MAX_LEN];
	size_t tl = strlen(tag);

	for (;;) {
		if (ssl_line(c, line, sizeof(line)) < 0)
			return -1;
		if (strncmp(line, tag, tl) == 0 && line[tl] == ' ')
			return strncmp(line + tl + 1, "OK", 2) == 0 ? 0 : -1;
	}
}

static int idler_open(SSL_CTX *ctx, struct idler *c, unsigned idx)
{
	char cmd[512], line[LINE_MAX_LEN];

	c->fd = tcp_connect(&imap_addr);
	if (c->fd < 0)
		return -1;
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_connect(c->ssl) != 1)
		return -1;
	if (ssl_line(c, line, sizeof(line)) < 0 || strncmp(line, "* OK", 4))
		return -1;
	snprintf(cmd, sizeof(cmd), "a1 LOGIN %s%u \"%s\"\r\n", prefix,
		 idx % nusers + 1, pass);
	if (ssl_send(c, cmd) < 0 || ssl_tagged(c, "a1") < 0)
		return -1;
	if (ssl_send(c, "a2 SELECT INBOX\r\n") < 0 || ssl_tagged(c, "a2") < 0)
		return -1;
	if (ssl_send(c, "a3 IDLE\r\n") < 0)
		return -1;
	for (;;) {
		if (ssl_line(c, line, sizeof(line)) < 0)
			return -1;
		if (line[0] == '+')
			return 0;
		if (line[0] != '*')
			return -1;
	}
}

static void idler_close(struct idler *c)
{
	if (c->ssl != NULL) {
		if (c->fd >= 0) {
			int fl = fcntl(c->fd, F_GETFL);

			(void)fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
			(void)SSL_write(c->ssl, "DONE\r\na4 LOGOUT\r\n", 17);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		struct linger l = { 1, 0 };

		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(c->fd);
		c->fd = -1;
	}
}

/* LMTP up to the 354; returns the fd, or -1. */
static int lmtp_start(unsigned users)
{
	char buf[4096];
	int fd = tcp_connect(&lmtp_addr);
	FILE *in;

	if (fd < 0)
		return -1;
	in = fdopen(dup(fd), "r");
	if (in == NULL)
		return -1;
#define EXPECT(code) do { \
		do { \
			if (fgets(buf, sizeof(buf), in) == NULL) \
				goto fail; \
		} while (buf[3] == '-'); \
		if (strncmp(buf, code, 3) != 0) \
			goto fail; \
	} while (0)
#define SEND(...) do { \
		int n_ = snprintf(buf, sizeof(buf), __VA_ARGS__); \
		if (write(fd, buf, (size_t)n_) != n_) \
			goto fail; \
	} while (0)
	EXPECT("220");
	SEND("LHLO tlsidle.localhost\r\n");
	EXPECT("250");
	SEND("MAIL FROM:<loadgen@localhost>\r\n");
	EXPECT("250");
	for (unsigned u = 1; u <= users; u++) {
		SEND("RCPT TO:<%s%u@%s>\r\n", prefix, u, domain);
		EXPECT("250");
	}
	SEND("DATA\r\n");
	EXPECT("354");
	fclose(in);
	return fd;
fail:
	fprintf(stderr, "tlsidle: LMTP: %s", buf);
	fclose(in);
	close(fd);
	return -1;
#undef EXPECT
#undef SEND
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_of_ms(const uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	return v[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0;
}

static double pct_ms(double p)
{
	return pct_of_ms(lat, lat_count, p);
}

/* Scans what an idler can read now for "* n EXISTS". */
static void idler_readable(struct idler *c, uint64_t t0)
{
	uint64_t stamp = 0;
	char byte;

	if (!c->notified)
		(void)arrival_recv(c->fd, &byte, 1, MSG_PEEK, &stamp);
	for (;;) {
		int n = SSL_read(c->ssl, c->buf + c->len,
				 (int)(sizeof(c->buf) - c->len));
		char *nl;

		if (n <= 0)
			return;		/* WANT_READ, or closed */
		c->len += (size_t)n;
		while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t l = (size_t)(nl - c->buf) + 1;

			if (!c->notified && c->buf[0] == '*' &&
			    memmem(c->buf, l, " EXISTS", 7) != NULL) {
				c->notified = true;
				notified++;
				lat[lat_count++] = (uint32_t)(now_us() - t0);
				if (stamp >= t0_real)
					arr[arr_count++] =
						(uint32_t)(stamp - t0_real);
			}
			memmove(c->buf, c->buf + l, c->len - l);
			c->len -= l;
		}
		if (c->len == sizeof(c->buf))
			c->len = 0;
	}
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	long port = 0, lport = 0;
	unsigned users, replies = 0;
	uint64_t t0 = 0, t_lmtp = 0, end;
	struct sigaction sa;
	struct rlimit rl;
	SSL_CTX *ctx;
	int ch, ep, lfd;
	static const char msg[] =
		"From: <loadgen@localhost>\r\nTo: <idle@localhost>\r\n"
		"Subject: tlsidle\r\nMessage-ID: <tlsidle@localhost>\r\n\r\n"
		"one message for the idlers\r\n.\r\n";

	while ((ch = getopt(argc, argv, "a:p:L:c:u:U:P:D:t:H:W:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = atol(optarg); break;
		case 'L': lport = atol(optarg); break;
		case 'c': nconns = (unsigned)atoi(optarg); break;
		case 'u': nusers = (unsigned)atoi(optarg); break;
		case 'U': prefix = optarg; break;
		case 'P': pass = optarg; break;
		case 'D': domain = optarg; break;
		case 't': timeout = atof(optarg); break;
		case 'H': hold = atof(optarg); break;
		case 'W': linger = atof(optarg); break;
		default: goto usage;
		}
	}
	if (nconns == 0 || nconns > MAX_CONNS || nusers == 0 ||
	    timeout < 1 || timeout > 600 || hold < 0 || hold > 3600 ||
	    strlen(prefix) > 100 || strlen(pass) > 200 || strlen(domain) > 100)
		goto usage;
	set_addr(&imap_addr, addr, port);
	set_addr(&lmtp_addr, addr, lport);
	users = nusers < nconns ? nusers : nconns;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	idlers = calloc(nconns, sizeof(*idlers));
	lat = calloc(nconns, sizeof(*lat));
	arr = calloc(nconns, sizeof(*arr));
	ctx = SSL_CTX_new(TLS_client_method());
	if (idlers == NULL || lat == NULL || arr == NULL || ctx == NULL)
		die("out of memory", NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	ep = epoll_create1(EPOLL_CLOEXEC);
	end = now_us() + (uint64_t)(120 + timeout) * 1000000u;
	for (unsigned i = 0; i < nconns && !got_stop && now_us() < end; i++) {
		struct idler *c = &idlers[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		c->fd = -1;
		if (idler_open(ctx, c, i) < 0) {
			if (i - ok_conns < 10)	/* the first 10 */
				fprintf(stderr, "tlsidle: connection %u failed "
					"to reach IDLE\n", i);
			ERR_clear_error();
			idler_close(c);
			continue;
		}
		ok_conns++;
		(void)fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl", strerror(errno));
	}
	printf("READY authenticated=%u failed=%u\n", ok_conns,
	       nconns - ok_conns);
	fflush(stdout);
	end = now_us() + (uint64_t)(hold * 1e6);
	while (!got_usr1 && !got_stop && now_us() < end)
		usleep(10000);
	lfd = got_stop ? -1 : lmtp_start(users);
	if (lfd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		t0 = now_us();
		t0_real = arrival_now_us();
		if (write(lfd, msg, sizeof(msg) - 1) != (ssize_t)sizeof(msg) - 1)
			die("LMTP write", strerror(errno));
		(void)fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
		end = t0 + (uint64_t)(timeout * 1e6);
		while ((notified < ok_conns || replies < users) && !got_stop &&
		       now_us() < end) {
			struct epoll_event evs[256];
			int n = epoll_wait(ep, evs, 256, 20);

			for (int i = 0; i < n; i++) {
				struct idler *c = evs[i].data.ptr;
				char buf[1024];
				ssize_t r;

				if (c != NULL) {
					idler_readable(c, t0);
					continue;
				}
				while ((r = read(lfd, buf, sizeof(buf))) > 0)
					for (ssize_t k = 0; k < r; k++)
						if (buf[k] == '\n' &&
						    ++replies == users)
							t_lmtp = now_us();
				if (r == 0)
					replies = users;
			}
		}
		(void)write(lfd, "QUIT\r\n", 6);
		close(lfd);
		/* -W: everyone notified; stay a while before closing, so
		 * that a profile of the notification ends before the
		 * teardown starts. */
		printf("NOTIFIED\n");
		fflush(stdout);
		end = now_us() + (uint64_t)(linger * 1e6);
		while (!got_stop && now_us() < end)
			usleep(10000);
	}
	for (unsigned i = 0; i < nconns; i++)
		idler_close(&idlers[i]);
	qsort(lat, lat_count, sizeof(*lat), cmp_u32);
	qsort(arr, arr_count, sizeof(*arr), cmp_u32);
	fprintf(stderr, "tlsidle: %zu arrival stamps: median %.2f ms p99 "
		"%.2f ms max %.2f ms\n", arr_count,
		pct_of_ms(arr, arr_count, 0.5), pct_of_ms(arr, arr_count, 0.99),
		pct_of_ms(arr, arr_count, 1.0));
	fprintf(stderr, "tlsidle: %u in IDLE over TLS; delivery %s; EXISTS "
		"seen by %u: median %.2f ms p99 %.2f ms max %.2f ms\n",
		ok_conns, lfd >= 0 ? "done" : "FAILED", notified,
		pct_ms(0.5), pct_ms(0.99), pct_ms(1.0));
	printf("RESULT mode=idle-imaps authenticated=%u failed=%u errors=%u "
	       "watching=%u notified=%u p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
	       "lmtp_ms=%.3f delivered=%d arrived=%zu arrive_p50_ms=%.3f "
	       "arrive_p99_ms=%.3f arrive_max_ms=%.3f\n", ok_conns,
	       nconns - ok_conns,
	       (nconns - ok_conns) + (lfd < 0) + (ok_conns - notified),
	       ok_conns, notified, pct_ms(0.5), pct_ms(0.99), pct_ms(1.0),
	       t_lmtp > t0 ? (t_lmtp - t0) / 1e3 : 0.0, lfd >= 0, arr_count,
	       pct_of_ms(arr, arr_count, 0.5), pct_of_ms(arr, arr_count, 0.99),
	       pct_of_ms(arr, arr_count, 1.0));
	SSL_CTX_free(ctx);
	return ok_conns == nconns && notified == ok_conns && lfd >= 0 ? 0 : 1;
usage:
	fputs("usage: tlsidle -p IMAPS-PORT -L LMTP-PORT -c N [-u USERS] "
	      "[-U PREFIX] [-P PASS] [-D DOMAIN] [-t SECS] [-H SECS] "
	      "[-W SECS]\n",
	      stderr);
	return 2;
}
