/* imapcmd.c: times single IMAP commands for bench/run (bigbox, bigmsg).
 *
 * Per round: connect (loopback only), greeting, LOGIN, then each command
 * given on the command line in order, each timed on the client from the
 * moment it is sent to the end of its tagged reply; LOGOUT; close. Every
 * round is a fresh connection, so SELECT opens the mailbox anew.
 * Replies are parsed by response: a line ending in "{n}" is followed by
 * n bytes, read and dropped by count (RFC 3501 section 4.3), and the line
 * after them continues the same response. Blocking I/O, one connection.
 * Limits: loopback addresses only; a receive timeout (-t, default 300 s)
 * per read and per command; response lines up to 64 MB (SEARCH results).
 * Output, one line per command and round, on stdout:
 *   CMD round=R idx=I ms=M bytes=B literal=L untagged=U hits=H status=OK
 * (hits: numbers in "* SEARCH" responses). Exit 1 when a command did not
 * end in OK. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define RBUF_SIZE (4u << 20)
#define MAX_LINE (64u << 20)

static char *rbuf;
static size_t rpos, rlen;
static char *line;
static size_t line_len, line_cap;
static int fd = -1;
static double timeout = 300;

struct reply {
	uint64_t bytes, literal, untagged, hits;
	char status[8];
};

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "imapcmd: %s%s%s\n", msg, arg ? ": " : "",
		arg ? arg : "");
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void connect_to(const char *addr, unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { (time_t)timeout, 0 };
	int one = 1;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127)
		die("only 127.0.0.0/8 addresses", addr);
	sin.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect", strerror(errno));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rpos = rlen = 0;
}

static void fill(struct reply *r)
{
	ssize_t n;

	do
		n = recv(fd, rbuf, RBUF_SIZE, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		die("server closed the connection", NULL);
	if (n < 0)
		die("recv", strerror(errno));
	rpos = 0;
	rlen = (size_t)n;
	r->bytes += (uint64_t)n;
}

/* Next line (with its CRLF) into line/line_len. */
static void read_line(struct reply *r)
{
	line_len = 0;
	for (;;) {
		char *nl;
		size_t take;

		if (rpos == rlen)
			fill(r);
		nl = memchr(rbuf + rpos, '\n', rlen - rpos);
		take = nl ? (size_t)(nl - (rbuf + rpos)) + 1 : rlen - rpos;
		if (line_len + take > MAX_LINE)
			die("response line too long", NULL);
		if (line_len + take > line_cap) {
			line_cap = (line_len + take) * 2;
			line = realloc(line, line_cap);
			if (line == NULL)
				die("out of memory", NULL);
		}
		memcpy(line + line_len, rbuf + rpos, take);
		line_len += take;
		rpos += take;
		if (nl)
			return;
	}
}

static void skip_bytes(struct reply *r, uint64_t n)
{
	r->literal += n;
	while (n > 0) {
		size_t take;

		if (rpos == rlen)
			fill(r);
		take = rlen - rpos;
		if (take > n)
			take = (size_t)n;
		rpos += take;
		n -= take;
	}
}

static bool literal_at_end(uint64_t *n_r)
{
	size_t end = line_len, i;
	uint64_t n = 0, mul = 1;

	while (end > 0 && (line[end - 1] == '\n' || line[end - 1] == '\r'))
		end--;
	if (end < 3 || line[end - 1] != '}')
		return false;
	i = end - 1;
	if (line[i - 1] == '+')
		i--;
	if (i == 0 || line[i - 1] < '0' || line[i - 1] > '9')
		return false;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9') {
		if (mul > 1000000000000u)
			return false;
		n += (uint64_t)(line[i - 1] - '0') * mul;
		mul *= 10;
		i--;
	}
	if (i == 0 || line[i - 1] != '{')
		return false;
	*n_r = n;
	return true;
}

static uint64_t count_numbers(const char *p, size_t len)
{
	uint64_t n = 0;
	bool in = false;

	for (size_t i = 0; i < len; i++) {
		bool d = p[i] >= '0' && p[i] <= '9';

		if (d && !in)
			n++;
		in = d;
	}
	return n;
}

/* Reads responses up to the tagged one for tag ("" = the greeting). */
static void read_reply(const char *tag, struct reply *r)
{
	size_t tl = strlen(tag);
	bool cont = false;

	memset(r, 0, sizeof(*r));
	for (;;) {
		uint64_t lit;
		bool has_lit;

		read_line(r);
		has_lit = literal_at_end(&lit);
		if (!cont) {
			if (tl == 0) {
				snprintf(r->status, sizeof(r->status), "%s",
					 line_len >= 4 &&
					 memcmp(line, "* OK", 4) == 0 ?
					 "OK" : "BAD");
				return;
			}
			if (line_len > tl && memcmp(line, tag, tl) == 0 &&
			    line[tl] == ' ') {
				size_t k = 0;

				while (k < 7 && tl + 1 + k < line_len &&
				       line[tl + 1 + k] >= 'A' &&
				       line[tl + 1 + k] <= 'Z') {
					r->status[k] = line[tl + 1 + k];
					k++;
				}
				r->status[k] = '\0';
				return;
			}
			if (line[0] == '*') {
				r->untagged++;
				if (line_len > 9 &&
				    memcmp(line, "* SEARCH ", 9) == 0)
					r->hits += count_numbers(line + 9,
								 line_len - 9);
			}
		}
		cont = has_lit;
		if (has_lit)
			skip_bytes(r, lit);
	}
}

static void send_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send", strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
}

static void command(unsigned tagn, const char *cmd, struct reply *r,
		    double *ms_r)
{
	char tag[16], *buf;
	size_t len = strlen(cmd) + 32;
	double t0;

	snprintf(tag, sizeof(tag), "x%u", tagn);
	buf = malloc(len);
	if (buf == NULL)
		die("out of memory", NULL);
	len = (size_t)snprintf(buf, len, "%s %s\r\n", tag, cmd);
	t0 = now_ms();
	send_all(buf, len);
	read_reply(tag, r);
	*ms_r = now_ms() - t0;
	free(buf);
}

int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *user = "bench1", *pass = "benchpass";
	unsigned port = 0, rounds = 1, tagn = 0;
	int ch, failed = 0;
	struct reply r;
	double ms;
	char login[512];

	while ((ch = getopt(argc, argv, "a:p:u:P:r:t:")) != -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = (unsigned)atoi(optarg); break;
		case 'u': user = optarg; break;
		case 'P': pass = optarg; break;
		case 'r': rounds = (unsigned)atoi(optarg); break;
		case 't': timeout = atof(optarg); break;
		default: goto usage;
		}
	}
	if (port == 0 || port > 65535 || rounds == 0 || rounds > 100 ||
	    optind >= argc || timeout < 1 || timeout > 3600)
		goto usage;
	rbuf = malloc(RBUF_SIZE);
	if (rbuf == NULL)
		die("out of memory", NULL);
	for (unsigned round = 1; round <= rounds; round++) {
		connect_to(addr, port);
		read_reply("", &r);
		if (strcmp(r.status, "OK") != 0)
			die("bad greeting", NULL);
		snprintf(login, sizeof(login), "LOGIN %s \"%s\"", user, pass);
		command(++tagn, login, &r, &ms);
		if (strcmp(r.status, "OK") != 0)
			die("LOGIN failed", r.status);
		for (int i = optind; i < argc; i++) {
			command(++tagn, argv[i], &r, &ms);
			printf("CMD round=%u idx=%d ms=%.3f bytes=%" PRIu64
			       " literal=%" PRIu64 " untagged=%" PRIu64
			       " hits=%" PRIu64 " status=%s cmd=%s\n", round,
			       i - optind, ms, r.bytes, r.literal, r.untagged,
			       r.hits, r.status, argv[i]);
			fflush(stdout);
			if (strcmp(r.status, "OK") != 0)
				failed = 1;
		}
		command(++tagn, "LOGOUT", &r, &ms);
		close(fd);
	}
	return failed;
usage:
	fputs("usage: imapcmd -p PORT [-a 127.0.0.1] [-u USER] [-P PASS] "
	      "[-r ROUNDS] [-t SECS] COMMAND...\n", stderr);
	return 2;
}
