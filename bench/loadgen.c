/* loadgen.c: POP3/LMTP/IMAP load generator for bench/run.
 *
 * One process, one epoll loop, one non-blocking state machine per
 * connection; no threads. Pipelining is off: each client sends one command
 * and waits for its whole reply. Modes:
 *   pop3       N clients loop sessions: greeting, USER, PASS, STAT, LIST,
 *              RETR every message, QUIT (never DELE).
 *   lmtp       C connections: LHLO once, then MAIL/RCPT/DATA transactions.
 *   idle-pop3  N connections log in, print "READY ..." and stay idle.
 *   imap       N clients loop sessions: greeting, LOGIN, SELECT INBOX,
 *              FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE), UID FETCH of
 *              one message BODY.PEEK[], LOGOUT.
 *   idle-imap  N connections LOGIN, SELECT INBOX, IDLE, print "READY ...";
 *              on SIGUSR1 (or after the hold time) one LMTP delivery to
 *              the users they watch, then the latency from the end of
 *              DATA to each idler's "* n EXISTS"; DONE, LOGOUT.
 * IMAP replies are parsed by response, not by line: a line ending in a
 * literal "{n}" is followed by n bytes that are skipped by count, and the
 * line after them continues the same response (RFC 3501 section 4.3).
 * Limits: loopback addresses only (anything else is refused); every mode
 * ends by itself (duration or count, plus a hard stop at duration + 2 *
 * timeout); every connection has an inactivity timeout; reply lines are
 * capped at RBUF_SIZE; at most MAX_LATENCIES samples are kept.
 * Output: human summary on stderr, one "RESULT key=value ..." line on
 * stdout for scripts. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arrival.h"

#define RBUF_SIZE 16384
#define MAX_LATENCIES 5000000
#define MAX_CLIENTS 60000
#define MAX_ERR_PRINT 10
#define TICK_MSECS 20
#define IDLE_MAX_ATTEMPTS 3

enum mode { MODE_POP3, MODE_LMTP, MODE_IDLE, MODE_IMAP, MODE_IDLE_IMAP };

#define IDLE_MODE (opt.mode == MODE_IDLE || opt.mode == MODE_IDLE_IMAP)
#define IMAP_MODE (opt.mode == MODE_IMAP || opt.mode == MODE_IDLE_IMAP)

enum cstate {
	CS_WAIT,		/* not connected; (re)start at restart_at */
	CS_CONNECTING,
	CS_P_GREETING, CS_P_USER, CS_P_PASS, CS_P_STAT, CS_P_LIST,
	CS_P_RETR, CS_P_QUIT, CS_P_IDLE,
	CS_L_GREETING, CS_L_LHLO, CS_L_MAIL, CS_L_RCPT, CS_L_DATA,
	CS_L_DOT, CS_L_QUIT,
	CS_I_GREETING, CS_I_LOGIN, CS_I_SELECT, CS_I_FETCH, CS_I_UIDFETCH,
	CS_I_LOGOUT, CS_I_IDLE_START, CS_I_DONE,
	CS_D_GREETING, CS_D_LHLO, CS_D_MAIL, CS_D_RCPT, CS_D_DATA, CS_D_DOT,
	CS_D_QUIT,
	CS_DONE,		/* finished for good */
};

struct client {
	int fd;
	unsigned idx;
	enum cstate state;
	bool in_multi;		/* inside a POP3 multi-line reply */
	bool got_status;	/* multi-line: "+OK" line seen */
	bool in_flight;		/* idle mode: counted in in_flight */
	unsigned attempts;	/* idle mode: login attempts */
	uint64_t sess_start, txn_start, deadline, restart_at;
	unsigned msgs, next_msg, list_lines, rcpt_sent, replies_left;
	/* IMAP */
	uint64_t lit_left;	/* literal bytes still to skip */
	uint64_t lit_bytes;	/* literal bytes in the current command */
	bool in_resp;		/* next line continues a response */
	bool notified;		/* idle-imap: EXISTS after the delivery */
	uint64_t arrived_us;	/* idle-imap: kernel stamp of unread data */
	unsigned tagn, exists, fetches, pick_seq, pick_uid;
	size_t rlen;
	const char *wptr;
	size_t wlen;
	char cmd[512];
	char rbuf[RBUF_SIZE];
};

struct options {
	enum mode mode;
	struct sockaddr_storage addr;
	struct sockaddr_storage lmtp_addr;	/* idle-imap delivery */
	socklen_t addrlen;
	unsigned clients;
	double duration;	/* seconds; 0 = until sessions */
	uint64_t sessions;	/* 0 = until duration */
	unsigned users;
	const char *user_prefix;
	const char *password;
	const char *rcpt_domain;	/* "" = bare local part */
	size_t msg_size;
	unsigned rcpts;
	double timeout;
	double hold;		/* idle mode */
	double linger;		/* idle-imap: wait after the notification */
	unsigned ramp;		/* idle mode: logins in flight */
	bool verbose;
};

static struct options opt;
static struct client *clients;
static int ep_fd;
static uint64_t t_start, t_end, t_hard_end, t_last_done;
static uint64_t started, completed, deliveries, errors, timeouts;
static uint64_t conn_errors, dropped, bytes_in;
static uint32_t *lat;
static size_t lat_count;
static char *message;
static size_t message_len;
static unsigned authed, failed_final, in_flight;
static bool ready_printed, holding, idle_stopping;
static volatile sig_atomic_t got_signal, got_usr1;
/* idle-imap: the one LMTP delivery and the idlers' notifications. */
static struct client deliver;
static uint64_t t_deliver, t_delivered;
/* The delivery's start on CLOCK_REALTIME and the idlers' arrival times
 * (arrival.h), sorted like lat at the end. */
static uint64_t t_deliver_real;
static uint32_t *arr;
static size_t arr_count;
static bool deliver_started, deliver_done, deliver_failed;
static unsigned notified;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void usage(void)
{
	fputs("usage: loadgen pop3|lmtp|idle-pop3|imap|idle-imap [options]\n"
	      "  -a ADDR       loopback address (127.0.0.1)\n"
	      "  -p PORT       port (required)\n"
	      "  -c N          concurrent clients (pop3 50, lmtp 8, idle 1000)\n"
	      "  -d SECS       duration (10; 0 = use -n)\n"
	      "  -n N          stop after N sessions/deliveries\n"
	      "  -u N          users PREFIX1..PREFIXN (50)\n"
	      "  -U PREFIX     user name prefix (bench)\n"
	      "  -P PASS       password (benchpass)\n"
	      "  -D DOMAIN     LMTP recipient domain (localhost; '' = none)\n"
	      "  -s BYTES      LMTP message size (4096)\n"
	      "  -r N          LMTP recipients per transaction (1)\n"
	      "  -t SECS       inactivity timeout per connection (10)\n"
	      "  -H SECS       idle-*: hold time after READY (10)\n"
	      "  -W SECS       idle-imap: stay idle this long after the\n"
	      "                notification, printing NOTIFIED (0)\n"
	      "  -R N          idle-*: logins in flight at once (50)\n"
	      "  -L PORT       idle-imap: LMTP port for the delivery\n"
	      "  -v            print every error\n", stderr);
	exit(2);
}

/* Only 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 are accepted. */
static void parse_addr(const char *s, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&opt.addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&opt.addr;
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					      0xff, 0xff };

	memset(&opt.addr, 0, sizeof(opt.addr));
	if (strcmp(s, "localhost") == 0)
		s = "127.0.0.1";
	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
			die("refusing non-loopback address %s", s);
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		opt.addrlen = sizeof(*sin);
		return;
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		const uint8_t *b = sin6->sin6_addr.s6_addr;

		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) &&
		    !(memcmp(b, v4mapped, 12) == 0 && b[12] == 127))
			die("refusing non-loopback address %s", s);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		opt.addrlen = sizeof(*sin6);
		return;
	}
	die("not a numeric loopback address: %s", s);
}

static unsigned long parse_num(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		die("bad number: %s (max %lu)", s, max);
	return v;
}

static double parse_secs(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end != '\0' || !(v >= 0) || v > 86400)
		die("bad seconds: %s", s);
	return v;
}

static void parse_args(int argc, char **argv)
{
	const char *addr = "127.0.0.1";
	unsigned long port = 0, lmtp_port = 0;
	int ch;

	if (argc < 2)
		usage();
	if (strcmp(argv[1], "pop3") == 0)
		opt.mode = MODE_POP3;
	else if (strcmp(argv[1], "lmtp") == 0)
		opt.mode = MODE_LMTP;
	else if (strcmp(argv[1], "idle-pop3") == 0)
		opt.mode = MODE_IDLE;
	else if (strcmp(argv[1], "imap") == 0)
		opt.mode = MODE_IMAP;
	else if (strcmp(argv[1], "idle-imap") == 0)
		opt.mode = MODE_IDLE_IMAP;
	else
		usage();
	opt.clients = opt.mode == MODE_LMTP ? 8 :
		      IDLE_MODE ? 1000 : 50;
	opt.duration = 10;
	opt.users = 50;
	opt.user_prefix = "bench";
	opt.password = "benchpass";
	opt.rcpt_domain = "localhost";
	opt.msg_size = 4096;
	opt.rcpts = 1;
	opt.timeout = 10;
	opt.hold = 10;
	opt.ramp = 50;
	optind = 2;
	while ((ch = getopt(argc, argv, "a:p:c:d:n:u:U:P:D:s:r:t:H:W:R:L:v")) !=
	       -1) {
		switch (ch) {
		case 'a': addr = optarg; break;
		case 'p': port = parse_num(optarg, 65535); break;
		case 'c': opt.clients = parse_num(optarg, MAX_CLIENTS); break;
		case 'd': opt.duration = parse_secs(optarg); break;
		case 'n': opt.sessions = parse_num(optarg, 1000000000); break;
		case 'u': opt.users = parse_num(optarg, 1000000); break;
		case 'U': opt.user_prefix = optarg; break;
		case 'P': opt.password = optarg; break;
		case 'D': opt.rcpt_domain = optarg; break;
		case 's': opt.msg_size = parse_num(optarg, 64 << 20); break;
		case 'r': opt.rcpts = parse_num(optarg, 1000); break;
		case 't': opt.timeout = parse_secs(optarg); break;
		case 'H': opt.hold = parse_secs(optarg); break;
		case 'W': opt.linger = parse_secs(optarg); break;
		case 'R': opt.ramp = parse_num(optarg, MAX_CLIENTS); break;
		case 'L': lmtp_port = parse_num(optarg, 65535); break;
		case 'v': opt.verbose = true; break;
		default: usage();
		}
	}
	if (port == 0 || opt.clients == 0 || opt.users == 0 ||
	    opt.rcpts == 0 || opt.ramp == 0 || opt.timeout < 0.1)
		usage();
	if (!IDLE_MODE && opt.duration == 0 && opt.sessions == 0)
		die("need -d SECS or -n COUNT");
	if (strlen(opt.user_prefix) + strlen(opt.rcpt_domain) > 200 ||
	    strlen(opt.password) > 200)
		die("user prefix, domain or password too long");
	if (opt.mode == MODE_IDLE_IMAP && lmtp_port == 0)
		die("idle-imap needs -L LMTP-PORT");
	parse_addr(addr, (uint16_t)lmtp_port);
	memcpy(&opt.lmtp_addr, &opt.addr, sizeof(opt.addr));
	parse_addr(addr, (uint16_t)port);
}

/* A message of about opt.msg_size bytes, CRLF lines of 78 characters,
 * no line starting with '.', followed by the DATA terminator. */
static void build_message(void)
{
	static const char hdr[] =
		"From: <loadgen@localhost>\r\n"
		"To: <bench@localhost>\r\n"
		"Subject: heron bench message\r\n"
		"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Message-ID: <loadgen@localhost>\r\n"
		"\r\n";
	size_t cap = opt.msg_size + sizeof(hdr) + 128, len;

	message = malloc(cap);
	if (message == NULL)
		die("out of memory");
	memcpy(message, hdr, sizeof(hdr) - 1);
	len = sizeof(hdr) - 1;
	while (len + 80 <= opt.msg_size || len == sizeof(hdr) - 1) {
		for (int i = 0; i < 78; i++)
			message[len + i] = (char)('a' + (len / 80 + i) % 26);
		memcpy(message + len + 78, "\r\n", 2);
		len += 80;
	}
	memcpy(message + len, ".\r\n", 3);
	message_len = len + 3;
}

static void lat_add(uint64_t usecs)
{
	static size_t cap;

	if (lat_count == MAX_LATENCIES)
		return;
	if (lat_count == cap) {
		size_t ncap = cap == 0 ? 4096 : cap * 2;
		uint32_t *n = realloc(lat, ncap * sizeof(*lat));

		if (n == NULL)
			die("out of memory");
		lat = n;
		cap = ncap;
	}
	lat[lat_count++] = usecs > UINT32_MAX ? UINT32_MAX : (uint32_t)usecs;
}

static bool may_start(void)
{
	if (got_signal)
		return false;
	if (IDLE_MODE)
		return !idle_stopping;
	if (opt.duration > 0 && now_us() >= t_end)
		return false;
	if (opt.sessions > 0 && started >= opt.sessions)
		return false;
	return true;
}

static void close_fd(struct client *c, bool reset)
{
	if (c->fd < 0)
		return;
	if (reset) {
		/* RST instead of FIN: no TIME_WAIT pile-up on loopback. */
		struct linger l = { 1, 0 };

		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(c->fd);
	c->fd = -1;
	c->rlen = 0;
	c->wlen = 0;
}

static void client_fail(struct client *c, const char *what, const char *line,
			size_t len)
{
	errors++;
	if (opt.verbose || errors <= MAX_ERR_PRINT) {
		while (len > 0 && (line[len - 1] == '\n' ||
				   line[len - 1] == '\r'))
			len--;
		fprintf(stderr, "loadgen: client %u: %s%s%.*s\n", c->idx,
			what, len > 0 ? ": " : "", (int)(len > 200 ? 200 : len),
			line);
	}
	if (c->state == CS_P_IDLE)
		authed--;
	if (c->in_flight) {
		c->in_flight = false;
		in_flight--;
	}
	close_fd(c, true);
	if (c == &deliver) {
		c->state = CS_DONE;
		deliver_failed = true;
		return;
	}
	if (IDLE_MODE && c->attempts >= IDLE_MAX_ATTEMPTS) {
		c->state = CS_DONE;
		failed_final++;
		return;
	}
	c->state = CS_WAIT;
	c->restart_at = now_us() + 100000;	/* back off 100 ms */
}

static void set_events(struct client *c, bool want_out)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	if (want_out)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(ep_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* Writes what is pending; returns -1 on error. */
static int flush_out(struct client *c)
{
	while (c->wlen > 0) {
		ssize_t n = write(c->fd, c->wptr, c->wlen);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_events(c, true);
			return 0;
		}
		if (n <= 0)
			return -1;
		c->wptr += n;
		c->wlen -= (size_t)n;
	}
	set_events(c, false);
	return 0;
}

static int send_buf(struct client *c, const char *buf, size_t len)
{
	c->wptr = buf;
	c->wlen = len;
	if (flush_out(c) == 0)
		return 0;
	client_fail(c, "write", strerror(errno), strlen(strerror(errno)));
	return -1;
}

static int send_cmd(struct client *c, enum cstate next, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->cmd, sizeof(c->cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(c->cmd))
		die("command too long");
	c->state = next;
	return send_buf(c, c->cmd, (size_t)n);
}

static void client_start(struct client *c)
{
	int fd;

	if (c == &deliver) {
		/* counted apart */
	} else if (IDLE_MODE) {
		if (in_flight >= opt.ramp)
			return;
		in_flight++;
		c->in_flight = true;
		c->attempts++;
	} else {
		started++;
	}
	c->sess_start = now_us();
	c->deadline = c->sess_start + (uint64_t)(opt.timeout * 1e6);
	fd = socket(opt.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	c->fd = fd;
	c->rlen = 0;
	c->wlen = 0;
	c->state = CS_CONNECTING;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)(c == &deliver ? &opt.lmtp_addr :
					    &opt.addr), opt.addrlen) < 0 &&
	    errno != EINPROGRESS) {
		conn_errors++;
		client_fail(c, "connect", strerror(errno),
			    strlen(strerror(errno)));
	}
}

static void client_finished_session(struct client *c)
{
	uint64_t now = now_us();

	completed++;
	lat_add(now - c->sess_start);
	t_last_done = now;
	close_fd(c, true);
	if (may_start()) {
		client_start(c);
	} else {
		c->state = CS_DONE;
	}
}

static const char *user_of(const struct client *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s%u", opt.user_prefix,
		 c->idx % opt.users + 1);
	return buf;
}

/* ---- POP3 (RFC 1939) ---- */

static int pop3_next_retr_or_quit(struct client *c)
{
	c->in_multi = false;
	c->got_status = false;
	if (c->next_msg <= c->msgs)
		return send_cmd(c, CS_P_RETR, "RETR %u\r\n", c->next_msg++);
	return send_cmd(c, CS_P_QUIT, "QUIT\r\n");
}

/* Multi-line replies (LIST, RETR): returns 1 when the "." line ended it. */
static int pop3_multi(struct client *c, const char *line, size_t len)
{
	if (!c->got_status) {
		c->got_status = true;
		c->in_multi = true;
		c->list_lines = 0;
		return 0;
	}
	if (len == 3 && memcmp(line, ".\r\n", 3) == 0) {
		c->in_multi = false;
		return 1;
	}
	c->list_lines++;
	return 0;
}

static int pop3_line(struct client *c, const char *line, size_t len)
{
	char ubuf[256];
	bool ok = len >= 3 && memcmp(line, "+OK", 3) == 0;

	if (!c->in_multi && !ok) {
		client_fail(c, c->state == CS_P_IDLE ? "unexpected line" :
			    "-ERR", line, len);
		return -1;
	}
	switch (c->state) {
	case CS_P_GREETING:
		return send_cmd(c, CS_P_USER, "USER %s\r\n",
				user_of(c, ubuf, sizeof(ubuf)));
	case CS_P_USER:
		return send_cmd(c, CS_P_PASS, "PASS %s\r\n", opt.password);
	case CS_P_PASS:
		if (opt.mode == MODE_IDLE) {
			c->state = CS_P_IDLE;
			authed++;
			c->in_flight = false;
			in_flight--;
			return 0;
		}
		return send_cmd(c, CS_P_STAT, "STAT\r\n");
	case CS_P_STAT:
		if (sscanf(line, "+OK %u", &c->msgs) != 1) {
			client_fail(c, "bad STAT reply", line, len);
			return -1;
		}
		c->next_msg = 1;
		c->got_status = false;
		return send_cmd(c, CS_P_LIST, "LIST\r\n");
	case CS_P_LIST:
		if (pop3_multi(c, line, len) == 0)
			return 0;
		if (c->list_lines != c->msgs) {
			client_fail(c, "LIST count differs from STAT", "", 0);
			return -1;
		}
		return pop3_next_retr_or_quit(c);
	case CS_P_RETR:
		if (pop3_multi(c, line, len) == 0)
			return 0;
		return pop3_next_retr_or_quit(c);
	case CS_P_QUIT:
		client_finished_session(c);
		return 1;
	default:
		client_fail(c, "unexpected line", line, len);
		return -1;
	}
}

/* ---- LMTP (RFC 2033) ---- */

static int lmtp_mail(struct client *c)
{
	if (!may_start())
		return send_cmd(c, CS_L_QUIT, "QUIT\r\n");
	started++;
	c->txn_start = now_us();
	c->rcpt_sent = 0;
	return send_cmd(c, CS_L_MAIL, "MAIL FROM:<loadgen@localhost>\r\n");
}

static int lmtp_rcpt(struct client *c)
{
	/* Spread recipients over users: client idx, transaction, rcpt. */
	unsigned u = (unsigned)((c->idx + started * 7 + c->rcpt_sent) %
				opt.users) + 1;

	c->rcpt_sent++;
	if (opt.rcpt_domain[0] == '\0')
		return send_cmd(c, CS_L_RCPT, "RCPT TO:<%s%u>\r\n",
				opt.user_prefix, u);
	return send_cmd(c, CS_L_RCPT, "RCPT TO:<%s%u@%s>\r\n",
			opt.user_prefix, u, opt.rcpt_domain);
}

static int lmtp_line(struct client *c, const char *line, size_t len)
{
	int code;

	if (len < 4 || line[0] < '1' || line[0] > '5')
		goto bad;
	code = atoi(line);
	if (line[3] == '-')
		return 0;	/* continuation of a multi-line reply */
	switch (c->state) {
	case CS_L_GREETING:
		if (code != 220)
			goto bad;
		return send_cmd(c, CS_L_LHLO, "LHLO loadgen.localhost\r\n");
	case CS_L_LHLO:
		if (code != 250)
			goto bad;
		return lmtp_mail(c);
	case CS_L_MAIL:
		if (code != 250)
			goto bad;
		return lmtp_rcpt(c);
	case CS_L_RCPT:
		if (code != 250)
			goto bad;
		if (c->rcpt_sent < opt.rcpts)
			return lmtp_rcpt(c);
		return send_cmd(c, CS_L_DATA, "DATA\r\n");
	case CS_L_DATA:
		if (code != 354)
			goto bad;
		c->state = CS_L_DOT;
		c->replies_left = opt.rcpts;
		return send_buf(c, message, message_len);
	case CS_L_DOT:
		if (code != 250)
			goto bad;
		if (--c->replies_left > 0)
			return 0;
		completed++;
		deliveries += opt.rcpts;
		t_last_done = now_us();
		lat_add(t_last_done - c->txn_start);
		return lmtp_mail(c);
	case CS_L_QUIT:
		close_fd(c, true);
		c->state = CS_DONE;
		return 1;
	default:
		break;
	}
bad:
	client_fail(c, "unexpected reply", line, len);
	return -1;
}

/* ---- IMAP (RFC 3501) ---- */

/* Sends "a<n> " + the formatted command, n counting per connection. */
static int imap_send(struct client *c, enum cstate next, const char *fmt, ...)
{
	va_list ap;
	int t, n;

	c->tagn++;
	t = snprintf(c->cmd, sizeof(c->cmd), "a%u ", c->tagn);
	va_start(ap, fmt);
	n = vsnprintf(c->cmd + t, sizeof(c->cmd) - (size_t)t, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)(n + t) >= sizeof(c->cmd))
		die("command too long");
	c->state = next;
	c->lit_bytes = 0;
	return send_buf(c, c->cmd, (size_t)(n + t));
}

/* RFC 3501 section 4.3: a line that ends in "{n}" CRLF is followed by
 * exactly n octets, then the rest of the same response. */
static bool imap_literal_at_end(const char *line, size_t len, uint64_t *n_r)
{
	size_t end = len, i;
	uint64_t n = 0, mul = 1;

	if (end > 0 && line[end - 1] == '\n')
		end--;
	if (end > 0 && line[end - 1] == '\r')
		end--;
	if (end < 3 || line[end - 1] != '}')
		return false;
	i = end - 1;
	if (i > 0 && line[i - 1] == '+')
		i--;		/* LITERAL+ form; servers don't send it */
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

/* "* n FETCH (... UID u ...)": the UID from the part before any literal. */
static unsigned imap_fetch_uid(const char *line, size_t len)
{
	const char *p = line, *end = line + len;

	while ((p = memmem(p, (size_t)(end - p), "UID ", 4)) != NULL) {
		if (p > line && (p[-1] == '(' || p[-1] == ' '))
			return (unsigned)strtoul(p + 4, NULL, 10);
		p += 4;
	}
	return 0;
}

static int imap_untagged(struct client *c, const char *line, size_t len)
{
	unsigned long n;
	char *end;

	if (len >= 5 && memcmp(line, "* BYE", 5) == 0) {
		if (c->state == CS_I_LOGOUT)
			return 0;
		client_fail(c, "BYE", line, len);
		return -1;
	}
	if (line[2] < '0' || line[2] > '9')
		return 0;	/* * OK, * FLAGS, * CAPABILITY, ... */
	n = strtoul(line + 2, &end, 10);
	if ((size_t)(end - line) + 7 <= len &&
	    memcmp(end, " EXISTS", 7) == 0) {
		c->exists = (unsigned)n;
		if (c->state == CS_P_IDLE && t_deliver != 0 && !c->notified) {
			c->notified = true;
			notified++;
			lat_add(now_us() - t_deliver);
			if (c->arrived_us >= t_deliver_real && arr != NULL)
				arr[arr_count++] = (uint32_t)(c->arrived_us -
							      t_deliver_real);
		}
	} else if ((size_t)(end - line) + 8 <= len &&
		   memcmp(end, " FETCH (", 8) == 0) {
		c->fetches++;
		if (c->state == CS_I_FETCH && n == c->pick_seq)
			c->pick_uid = imap_fetch_uid(line, len);
	}
	return 0;
}

static int imap_tagged_ok(struct client *c, const char *line, size_t len)
{
	switch (c->state) {
	case CS_I_LOGIN:
		c->exists = 0;
		return imap_send(c, CS_I_SELECT, "SELECT INBOX\r\n");
	case CS_I_SELECT:
		if (opt.mode == MODE_IDLE_IMAP)
			return imap_send(c, CS_I_IDLE_START, "IDLE\r\n");
		if (c->exists == 0) {
			client_fail(c, "SELECT: empty mailbox", line, len);
			return -1;
		}
		c->fetches = 0;
		c->pick_uid = 0;
		c->pick_seq = (unsigned)((c->idx + completed) % c->exists) + 1;
		return imap_send(c, CS_I_FETCH, "FETCH 1:* (FLAGS UID "
				 "RFC822.SIZE ENVELOPE)\r\n");
	case CS_I_FETCH:
		if (c->fetches != c->exists || c->pick_uid == 0) {
			client_fail(c, "FETCH: responses differ from EXISTS "
				    "or no UID", line, len);
			return -1;
		}
		return imap_send(c, CS_I_UIDFETCH,
				 "UID FETCH %u BODY.PEEK[]\r\n", c->pick_uid);
	case CS_I_UIDFETCH:
		if (c->lit_bytes == 0) {
			client_fail(c, "UID FETCH: no body literal", line, len);
			return -1;
		}
		return imap_send(c, CS_I_LOGOUT, "LOGOUT\r\n");
	case CS_I_DONE:
		return imap_send(c, CS_I_LOGOUT, "LOGOUT\r\n");
	case CS_I_LOGOUT:
		if (opt.mode == MODE_IMAP) {
			client_finished_session(c);
			return 1;
		}
		close_fd(c, true);
		c->state = CS_DONE;
		return 1;
	default:
		client_fail(c, "unexpected tagged reply", line, len);
		return -1;
	}
}

/* One line (or the first line of a response, or a piece after a
 * literal when cont is set). */
static int imap_line(struct client *c, const char *line, size_t len, bool cont)
{
	char tag[16];
	size_t tl;
	char ubuf[256];

	if (cont)
		return 0;
	if (c->state == CS_I_GREETING) {
		if (len < 4 || memcmp(line, "* OK", 4) != 0) {
			client_fail(c, "greeting", line, len);
			return -1;
		}
		return imap_send(c, CS_I_LOGIN, "LOGIN %s \"%s\"\r\n",
				 user_of(c, ubuf, sizeof(ubuf)), opt.password);
	}
	if (len >= 2 && line[0] == '*' && line[1] == ' ')
		return imap_untagged(c, line, len);
	if (line[0] == '+') {
		if (c->state != CS_I_IDLE_START) {
			client_fail(c, "unexpected continuation", line, len);
			return -1;
		}
		c->state = CS_P_IDLE;
		authed++;
		c->in_flight = false;
		in_flight--;
		return 0;
	}
	tl = (size_t)snprintf(tag, sizeof(tag), "a%u ", c->tagn);
	if (len < tl + 2 || memcmp(line, tag, tl) != 0) {
		client_fail(c, "unexpected line", line, len);
		return -1;
	}
	if (memcmp(line + tl, "OK", 2) != 0) {
		client_fail(c, "command failed", line, len);
		return -1;
	}
	return imap_tagged_ok(c, line, len);
}

/* Splits rbuf into response pieces, skipping literals by count;
 * returns -1 when the client was closed. */
static int process_input_imap(struct client *c)
{
	size_t pos = 0;

	while (pos < c->rlen) {
		char *nl;
		size_t len;
		bool cont;

		if (c->lit_left > 0) {
			size_t take = c->rlen - pos;

			if (take > c->lit_left)
				take = (size_t)c->lit_left;
			c->lit_left -= take;
			c->lit_bytes += take;
			pos += take;
			continue;
		}
		nl = memchr(c->rbuf + pos, '\n', c->rlen - pos);
		if (nl == NULL)
			break;
		len = (size_t)(nl - (c->rbuf + pos)) + 1;
		if (c->wlen > 0) {
			client_fail(c, "reply before command was sent", "", 0);
			return -1;
		}
		cont = c->in_resp;
		c->in_resp = imap_literal_at_end(c->rbuf + pos, len,
						 &c->lit_left);
		if (imap_line(c, c->rbuf + pos, len, cont) != 0)
			return c->fd < 0 ? -1 : 0;
		pos += len;
	}
	if (pos > 0) {
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
	if (c->rlen == sizeof(c->rbuf)) {
		client_fail(c, "reply line too long", "", 0);
		return -1;
	}
	return 0;
}

/* ---- idle-imap: one LMTP delivery to every watched user ---- */

static unsigned deliver_users(void)
{
	return opt.users < opt.clients ? opt.users : opt.clients;
}

static int deliver_rcpt(struct client *c)
{
	unsigned u = ++c->rcpt_sent;

	if (opt.rcpt_domain[0] == '\0')
		return send_cmd(c, CS_D_RCPT, "RCPT TO:<%s%u>\r\n",
				opt.user_prefix, u);
	return send_cmd(c, CS_D_RCPT, "RCPT TO:<%s%u@%s>\r\n",
			opt.user_prefix, u, opt.rcpt_domain);
}

static int deliver_line(struct client *c, const char *line, size_t len)
{
	int code;

	if (len < 4 || line[0] < '1' || line[0] > '5')
		goto bad;
	code = atoi(line);
	if (line[3] == '-')
		return 0;
	switch (c->state) {
	case CS_D_GREETING:
		if (code != 220)
			goto bad;
		return send_cmd(c, CS_D_LHLO, "LHLO loadgen.localhost\r\n");
	case CS_D_LHLO:
		if (code != 250)
			goto bad;
		c->rcpt_sent = 0;
		return send_cmd(c, CS_D_MAIL,
				"MAIL FROM:<loadgen@localhost>\r\n");
	case CS_D_MAIL:
		if (code != 250)
			goto bad;
		return deliver_rcpt(c);
	case CS_D_RCPT:
		if (code != 250)
			goto bad;
		if (c->rcpt_sent < deliver_users())
			return deliver_rcpt(c);
		return send_cmd(c, CS_D_DATA, "DATA\r\n");
	case CS_D_DATA:
		if (code != 354)
			goto bad;
		c->state = CS_D_DOT;
		c->replies_left = deliver_users();
		t_deliver = now_us();
		t_deliver_real = arrival_now_us();
		return send_buf(c, message, message_len);
	case CS_D_DOT:
		if (code != 250)
			goto bad;
		if (--c->replies_left > 0)
			return 0;
		t_delivered = now_us();
		return send_cmd(c, CS_D_QUIT, "QUIT\r\n");
	case CS_D_QUIT:
		close_fd(c, true);
		c->state = CS_DONE;
		deliver_done = true;
		return 1;
	default:
		break;
	}
bad:
	client_fail(c, "LMTP delivery: unexpected reply", line, len);
	return -1;
}

/* ---- I/O ---- */

static int handle_line(struct client *c, const char *line, size_t len)
{
	if (c == &deliver)
		return deliver_line(c, line, len);
	if (opt.mode == MODE_LMTP)
		return lmtp_line(c, line, len);
	return pop3_line(c, line, len);
}

/* Splits rbuf into lines; returns -1 when the client was closed. */
static int process_input(struct client *c)
{
	size_t pos = 0;

	while (pos < c->rlen) {
		char *nl = memchr(c->rbuf + pos, '\n', c->rlen - pos);
		size_t len;

		if (nl == NULL)
			break;
		len = (size_t)(nl - (c->rbuf + pos)) + 1;
		if (c->wlen > 0) {
			client_fail(c, "reply before command was sent", "", 0);
			return -1;
		}
		if (handle_line(c, c->rbuf + pos, len) != 0)
			return c->fd < 0 ? -1 : 0;
		pos += len;
	}
	if (pos > 0) {
		memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
		c->rlen -= pos;
	}
	if (c->rlen == sizeof(c->rbuf)) {
		client_fail(c, "reply line too long", "", 0);
		return -1;
	}
	return 0;
}

static void handle_read(struct client *c)
{
	ssize_t n;

	if (c->state == CS_P_IDLE && t_deliver != 0 && !c->notified)
		n = arrival_recv(c->fd, c->rbuf + c->rlen,
				 sizeof(c->rbuf) - c->rlen, 0, &c->arrived_us);
	else
		n = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (c->state == CS_P_IDLE && holding)
			dropped++;
		client_fail(c, n == 0 ? "server closed the connection" :
			    "read", n < 0 ? strerror(errno) : "",
			    n < 0 ? strlen(strerror(errno)) : 0);
		return;
	}
	bytes_in += (uint64_t)n;
	c->rlen += (size_t)n;
	c->deadline = now_us() + (uint64_t)(opt.timeout * 1e6);
	if (IMAP_MODE && c != &deliver)
		(void)process_input_imap(c);
	else
		(void)process_input(c);
}

static void handle_connected(struct client *c)
{
	int err = 0;
	socklen_t elen = sizeof(err);
	int one = 1;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err != 0) {
		conn_errors++;
		client_fail(c, "connect", strerror(err), strlen(strerror(err)));
		return;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.mode == MODE_IDLE_IMAP && c != &deliver)
		arrival_enable(c->fd);
	c->state = c == &deliver ? CS_D_GREETING :
		   opt.mode == MODE_LMTP ? CS_L_GREETING :
		   IMAP_MODE ? CS_I_GREETING : CS_P_GREETING;
	c->in_multi = false;
	c->lit_left = 0;
	c->in_resp = false;
	c->tagn = 0;
	c->notified = false;
	set_events(c, false);
}

static void handle_event(struct client *c, uint32_t events)
{
	if (c->fd < 0)
		return;
	if (c->state == CS_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			handle_connected(c);
		return;
	}
	if ((events & EPOLLOUT) && c->wlen > 0) {
		if (flush_out(c) < 0) {
			client_fail(c, "write", strerror(errno),
				    strlen(strerror(errno)));
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		handle_read(c);
}

/* Timeouts and restarts; returns how many clients are not done. */
static unsigned tick(uint64_t now)
{
	unsigned alive = 0;

	for (unsigned i = 0; i < opt.clients; i++) {
		struct client *c = &clients[i];

		if (c->state == CS_DONE)
			continue;
		if (c->state == CS_WAIT) {
			if (!may_start()) {
				c->state = CS_DONE;
				continue;
			}
			if (now >= c->restart_at)
				client_start(c);
		} else if (c->state != CS_P_IDLE && now >= c->deadline) {
			timeouts++;
			client_fail(c, "timeout", "", 0);
		}
		if (c->state != CS_DONE)
			alive++;
	}
	return alive;
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

static const char *mode_name(void)
{
	return opt.mode == MODE_LMTP ? "lmtp" :
	       opt.mode == MODE_IDLE ? "idle-pop3" :
	       opt.mode == MODE_IMAP ? "imap" :
	       opt.mode == MODE_IDLE_IMAP ? "idle-imap" : "pop3";
}

static void report(uint64_t t_stop)
{
	uint64_t span = (t_last_done > t_start ? t_last_done : t_stop) -
			t_start;
	double secs = span / 1e6, rate;
	const char *what = opt.mode == MODE_LMTP ? "deliveries" : "sessions";

	qsort(lat, lat_count, sizeof(*lat), cmp_u32);
	if (opt.mode == MODE_LMTP)
		rate = secs > 0 ? deliveries / secs : 0;
	else
		rate = secs > 0 ? completed / secs : 0;
	fprintf(stderr, "%s: %" PRIu64 " %s in %.2f s = %.1f/s, errors %"
		PRIu64 " (timeouts %" PRIu64 ", connect %" PRIu64
		"), latency median %.2f ms p99 %.2f ms, %.1f MB received\n",
		mode_name(), opt.mode == MODE_LMTP ? deliveries : completed,
		what, secs, rate, errors, timeouts, conn_errors, pct_ms(0.5),
		pct_ms(0.99), bytes_in / 1e6);
	printf("RESULT mode=%s count=%" PRIu64 " secs=%.3f rate=%.2f "
	       "errors=%" PRIu64 " timeouts=%" PRIu64 " p50_ms=%.3f "
	       "p99_ms=%.3f bytes_in=%" PRIu64 "\n", mode_name(),
	       opt.mode == MODE_LMTP ? deliveries : completed, secs, rate,
	       errors, timeouts, pct_ms(0.5), pct_ms(0.99), bytes_in);
}

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static void setup(void)
{
	struct rlimit rl;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)opt.clients + 16)
		die("open file limit %lu is below %u clients",
		    (unsigned long)rl.rlim_cur, opt.clients);
	ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ep_fd < 0)
		die("epoll_create1: %s", strerror(errno));
	clients = calloc(opt.clients, sizeof(*clients));
	if (clients == NULL)
		die("out of memory");
	/* one arrival stamp per idler at most (notified once) */
	if (opt.mode == MODE_IDLE_IMAP &&
	    (arr = calloc(opt.clients, sizeof(*arr))) == NULL)
		die("out of memory");
	for (unsigned i = 0; i < opt.clients; i++) {
		clients[i].fd = -1;
		clients[i].idx = i;
		clients[i].state = CS_WAIT;
	}
	if (opt.mode == MODE_LMTP || opt.mode == MODE_IDLE_IMAP)
		build_message();
}

/* One epoll round plus a tick; returns the clients not done. */
static unsigned run_once(void)
{
	struct epoll_event evs[256];
	static uint64_t last_tick;
	int n = epoll_wait(ep_fd, evs, 256, TICK_MSECS);
	uint64_t now;

	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		handle_event(evs[i].data.ptr, evs[i].events);
	now = now_us();
	if (n > 0 && now - last_tick < TICK_MSECS * 1000u)
		return 1;	/* tick at most every TICK_MSECS */
	last_tick = now;
	return tick(now);
}

static unsigned abandon_all(void)
{
	unsigned left = 0;

	for (unsigned i = 0; i < opt.clients; i++) {
		if (clients[i].state == CS_DONE)
			continue;
		if (clients[i].fd >= 0)
			left++;
		close_fd(&clients[i], true);
		clients[i].state = CS_DONE;
	}
	return left;
}

static int run_load(void)
{
	unsigned left;

	t_hard_end = t_start + (uint64_t)((opt.duration +
					   2 * opt.timeout) * 1e6);
	if (opt.duration == 0)
		t_hard_end = t_start + (uint64_t)3600 * 1000000u;
	while (run_once() > 0 && now_us() < t_hard_end)
		;
	left = abandon_all();
	report(now_us());
	if (left > 0)
		fprintf(stderr, "loadgen: %u sessions unfinished at the hard "
			"stop\n", left);
	return errors > 0 ? 1 : 0;
}

static void idle_quit_all(void)
{
	idle_stopping = true;
	holding = false;
	for (unsigned i = 0; i < opt.clients; i++) {
		struct client *c = &clients[i];

		if (c->state == CS_P_IDLE) {
			authed--;
			c->deadline = now_us() + (uint64_t)(opt.timeout * 1e6);
			/* RFC 2177: DONE ends IDLE, then LOGOUT */
			if (opt.mode == MODE_IDLE_IMAP)
				(void)send_cmd(c, CS_I_DONE, "DONE\r\n");
			else
				(void)send_cmd(c, CS_P_QUIT, "QUIT\r\n");
		} else if (c->state != CS_DONE) {
			close_fd(c, true);
			c->state = CS_DONE;
		}
	}
}

static int run_idle(void)
{
	uint64_t login_end = t_start + (uint64_t)((60 + opt.timeout) * 1e6);
	uint64_t hold_end = 0, quit_end = 0, deliver_end = 0, now;
	uint64_t linger_end = 0;
	unsigned ok = 0, watching = 0;

	for (;;) {
		unsigned alive = run_once();

		now = now_us();
		if (!ready_printed && (authed + failed_final >= opt.clients ||
				       now >= login_end || got_signal)) {
			ok = authed;
			printf("READY authenticated=%u failed=%u secs=%.3f\n",
			       authed, failed_final, (now - t_start) / 1e6);
			fflush(stdout);
			ready_printed = true;
			holding = true;
			hold_end = now + (uint64_t)(opt.hold * 1e6);
		}
		if (holding && opt.mode == MODE_IDLE_IMAP && !deliver_started &&
		    (got_usr1 || now >= hold_end) && !got_signal) {
			deliver_started = true;
			watching = authed;
			deliver_end = now + (uint64_t)(opt.timeout * 1e6);
			deliver.fd = -1;
			deliver.idx = opt.clients;
			client_start(&deliver);
		}
		if (holding && opt.mode == MODE_IDLE_IMAP && linger_end == 0 &&
		    deliver_done && notified >= watching) {
			printf("NOTIFIED\n");
			fflush(stdout);
			linger_end = now + (uint64_t)(opt.linger * 1e6);
		}
		if (holding && (opt.mode == MODE_IDLE_IMAP ? deliver_started &&
				((deliver_done && notified >= watching &&
				  now >= linger_end) ||
				 deliver_failed || now >= deliver_end) :
				now >= hold_end) ) {
			idle_quit_all();
			quit_end = now + (uint64_t)(opt.timeout * 1e6);
		} else if (holding && got_signal) {
			idle_quit_all();
			quit_end = now + (uint64_t)(opt.timeout * 1e6);
		}
		if (idle_stopping && (alive == 0 || now >= quit_end))
			break;
	}
	abandon_all();
	close_fd(&deliver, true);
	fprintf(stderr, "%s: %u authenticated, %u failed, %" PRIu64
		" errors, %" PRIu64 " dropped by the server while idle\n",
		mode_name(), ok, failed_final, errors, dropped);
	if (opt.mode == MODE_IDLE_IMAP) {
		qsort(lat, lat_count, sizeof(*lat), cmp_u32);
		qsort(arr, arr_count, sizeof(*arr), cmp_u32);
		fprintf(stderr, "idle-imap: %zu arrival stamps: median %.2f ms "
			"p99 %.2f ms max %.2f ms\n", arr_count,
			pct_of_ms(arr, arr_count, 0.5),
			pct_of_ms(arr, arr_count, 0.99),
			pct_of_ms(arr, arr_count, 1.0));
		fprintf(stderr, "idle-imap: delivery %s in %.2f ms; %u of %u "
			"idlers saw EXISTS, latency median %.2f ms p99 %.2f "
			"ms max %.2f ms\n", deliver_done ? "done" : "FAILED",
			t_delivered > t_deliver ?
			(t_delivered - t_deliver) / 1e3 : 0.0, notified,
			watching, pct_ms(0.5), pct_ms(0.99), pct_ms(1.0));
		printf("RESULT mode=idle-imap authenticated=%u failed=%u "
		       "errors=%" PRIu64 " dropped=%" PRIu64 " watching=%u "
		       "notified=%u p50_ms=%.3f p99_ms=%.3f max_ms=%.3f "
		       "lmtp_ms=%.3f delivered=%d arrived=%zu "
		       "arrive_p50_ms=%.3f arrive_p99_ms=%.3f "
		       "arrive_max_ms=%.3f\n", ok, failed_final,
		       errors, dropped, watching, notified, pct_ms(0.5),
		       pct_ms(0.99), pct_ms(1.0), t_delivered > t_deliver ?
		       (t_delivered - t_deliver) / 1e3 : 0.0,
		       deliver_done ? 1 : 0, arr_count,
		       pct_of_ms(arr, arr_count, 0.5),
		       pct_of_ms(arr, arr_count, 0.99),
		       pct_of_ms(arr, arr_count, 1.0));
		return ok == opt.clients && dropped == 0 &&
		       notified == watching && deliver_done ? 0 : 1;
	}
	printf("RESULT mode=idle-pop3 authenticated=%u failed=%u errors=%"
	       PRIu64 " dropped=%" PRIu64 "\n", ok, failed_final, errors,
	       dropped);
	return ok == opt.clients && dropped == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setup();
	t_start = now_us();
	t_end = t_start + (uint64_t)(opt.duration * 1e6);
	if (IDLE_MODE)
		return run_idle();
	return run_load();
}
