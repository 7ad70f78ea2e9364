/* test_auth_proto.c: the worker <-> auth process line format, then the
 * real thing: auth_server_main() in a forked child on a Unix socket in
 * /tmp, driven through the auth.h client API (verdicts, per-IP failure
 * delay, abort, SIGHUP reload, TEMPFAIL when the server goes away). */
#include "test.h"

#include "auth/auth.h"
#include "auth/auth_proto.h"
#include "auth/auth_server.h"
#include "conf/config.h"
#include "lib/xmalloc.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N_ELEMENTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* base64: "alice" YWxpY2U=, "pw" cHc=, "" is empty */
static const struct {
	const char *line;
	bool ok;
	char type;
	unsigned id;
	const char *user;
	const char *secret;
} request_rows[] = {
	{ "V\t1\tpop3\t127.0.0.1\tYWxpY2U=\tcHc=", true, 'V', 1, "alice", "pw" },
	{ "V\t4294967295\timap\t::1\tYWxpY2U=\t", true, 'V', 4294967295u,
	  "alice", "" },
	{ "A\t7\tunix\tYWxpY2U=\tcHc=\tc4c9334bac560ecc979e58001b3e22fb", true,
	  'A', 7, "alice", "pw" },
	{ "L\t9\tYWxpY2U=", true, 'L', 9, "alice", NULL },
	{ "L\t9\t", true, 'L', 9, "", NULL },
	{ "", false, 0, 0, NULL, NULL },
	{ "X\t1\tYWxpY2U=", false, 0, 0, NULL, NULL },
	{ "L\t4294967296\tYWxpY2U=", false, 0, 0, NULL, NULL },
	{ "L\t-1\tYWxpY2U=", false, 0, 0, NULL, NULL },
	{ "L\t\tYWxpY2U=", false, 0, 0, NULL, NULL },
	{ "L\t1\tYWxpY2U", false, 0, 0, NULL, NULL },	/* no padding */
	{ "L\t1\tYWxpY2U=\t", false, 0, 0, NULL, NULL },
	{ "L\t1", false, 0, 0, NULL, NULL },
	{ "LL\t1\tYWxpY2U=", false, 0, 0, NULL, NULL },
	{ "L\t1\tAA==", false, 0, 0, NULL, NULL },	/* NUL byte */
	{ "V\t1\tpop3\t127.0.0.1\tYWxpY2U=", false, 0, 0, NULL, NULL },
	{ "V\t1\t\t127.0.0.1\tYWxpY2U=\tcHc=", false, 0, 0, NULL, NULL },
	{ "V\t1\tpop 3\t127.0.0.1\tYWxpY2U=\tcHc=", false, 0, 0, NULL, NULL },
	{ "V\t1\tpop3\t\tYWxpY2U=\tcHc=", false, 0, 0, NULL, NULL },
	{ "V\t1\tpop3\t1.2.3.4\tYWxpY2U=\tcHc=\t", false, 0, 0, NULL, NULL },
	{ "A\t1\t1.2.3.4\tYWxpY2U=\tcHc=\t", false, 0, 0, NULL, NULL },
};

static void test_request_parse(void)
{
	for (int i = 0; i < N_ELEMENTS(request_rows); i++) {
		struct auth_proto_request req;
		const char *line = request_rows[i].line, *error = NULL;
		int ret = auth_proto_request_parse(line, strlen(line), &req,
						   &error);

		test_assert_idx((ret == 0) == request_rows[i].ok, i);
		if (ret < 0) {
			test_assert_idx(error != NULL, i);
			continue;
		}
		test_assert_idx((int)req.type == request_rows[i].type, i);
		test_assert_idx(req.id == request_rows[i].id, i);
		test_assert_streq_idx(req.user, request_rows[i].user, i);
		if (request_rows[i].secret != NULL)
			test_assert_streq_idx(req.secret,
					      request_rows[i].secret, i);
		else
			test_assert_idx(req.secret == NULL, i);
		auth_proto_request_clear(&req);
	}
}

static void test_request_roundtrip(void)
{
	static const char *const users[] = {
		"alice", "a\tb", "new\nline", "\xc3\xa9t\xc3\xa9", "x",
	};

	for (int i = 0; i < N_ELEMENTS(users); i++) {
		struct auth_proto_request in, out;
		const char *error;
		size_t len = 0;
		char *line;

		memset(&in, 0, sizeof(in));
		in.type = i % 2 == 0 ? AUTH_PROTO_VERIFY : AUTH_PROTO_APOP;
		in.id = (uint32_t)i * 1000u + 1;
		memcpy(in.service, "pop3", 5);
		memcpy(in.remote_ip, "192.0.2.1", 10);
		memcpy(in.digest, "00ff", 5);
		in.user = (char *)users[i];
		in.secret = (char *)"p:a\ts s";
		line = auth_proto_request_format(&in, &len);
		test_assert_idx(line != NULL && len > 0 &&
				line[len - 1] == '\n', i);
		if (line == NULL)
			continue;
		test_assert_idx(memchr(line, '\n', len - 1) == NULL, i);
		test_assert_idx(auth_proto_request_parse(line, len - 1, &out,
							 &error) == 0, i);
		test_assert_idx(out.id == in.id && out.type == in.type, i);
		test_assert_streq_idx(out.user, users[i], i);
		test_assert_streq_idx(out.secret, "p:a\ts s", i);
		auth_proto_request_clear(&out);
		free(line);
	}
}

static void test_request_format_refuses(void)
{
	struct auth_proto_request req;
	char *big = xmalloc(AUTH_PROTO_MAX_LINE);
	size_t len;

	memset(big, 'a', AUTH_PROTO_MAX_LINE - 1);
	big[AUTH_PROTO_MAX_LINE - 1] = '\0';
	memset(&req, 0, sizeof(req));
	req.type = AUTH_PROTO_VERIFY;
	memcpy(req.service, "pop3", 5);
	memcpy(req.remote_ip, "1.2.3.4", 8);
	req.user = (char *)"u";
	req.secret = big;	/* base64 grows it over the limit */
	test_assert(auth_proto_request_format(&req, &len) == NULL);
	req.secret = (char *)"pw";
	req.remote_ip[0] = '\0';
	test_assert(auth_proto_request_format(&req, &len) == NULL);
	memcpy(req.remote_ip, "1.2\t3", 6);
	test_assert(auth_proto_request_format(&req, &len) == NULL);
	req.type = AUTH_PROTO_APOP;
	memcpy(req.remote_ip, "1.2.3.4", 8);
	memcpy(req.digest, "a b", 4);
	test_assert(auth_proto_request_format(&req, &len) == NULL);
	free(big);
}

static const struct {
	const char *line;
	bool ok;
	enum auth_proto_status status;
	unsigned id;
	const char *user;
} reply_rows[] = {
	{ "5\tOK\tYWxpY2U=", true, AUTH_PROTO_OK, 5, "alice" },
	{ "5\tFAIL", true, AUTH_PROTO_FAIL, 5, NULL },
	{ "6\tTEMP", true, AUTH_PROTO_TEMP, 6, NULL },
	{ "7\tNOUSER", true, AUTH_PROTO_NOUSER, 7, NULL },
	{ "H\t1", true, AUTH_PROTO_HELLO, 0, NULL },
	{ "H\t0", true, AUTH_PROTO_HELLO, 0, NULL },
	{ "H\t2", false, 0, 0, NULL },
	{ "H", false, 0, 0, NULL },
	{ "5\tOK", false, 0, 0, NULL },
	{ "5\tOK\t", false, 0, 0, NULL },
	{ "5\tFAIL\tYWxpY2U=", false, 0, 0, NULL },
	{ "5\tfail", false, 0, 0, NULL },
	{ "x\tFAIL", false, 0, 0, NULL },
	{ "", false, 0, 0, NULL },
	{ "5", false, 0, 0, NULL },
};

static void test_reply_parse(void)
{
	for (int i = 0; i < N_ELEMENTS(reply_rows); i++) {
		struct auth_proto_reply r, r2;
		const char *line = reply_rows[i].line, *error;
		size_t len = 0;
		char *out;
		int ret = auth_proto_reply_parse(line, strlen(line), &r,
						 &error);

		test_assert_idx((ret == 0) == reply_rows[i].ok, i);
		if (ret < 0)
			continue;
		test_assert_idx(r.status == reply_rows[i].status, i);
		test_assert_idx(r.id == reply_rows[i].id, i);
		if (reply_rows[i].user != NULL)
			test_assert_streq_idx(r.user, reply_rows[i].user, i);
		/* serializer round trip gives back the same line */
		out = auth_proto_reply_format(&r, &len);
		test_assert_idx(out != NULL && len == strlen(line) + 1 &&
				memcmp(out, line, len - 1) == 0, i);
		test_assert_idx(out != NULL && auth_proto_reply_parse(out,
				len - 1, &r2, &error) == 0, i);
		auth_proto_reply_clear(&r2);
		auth_proto_reply_clear(&r);
		free(out);
	}
}

/* ---- end to end against a forked auth process ---- */

#define TEST_DELAY_MSECS 100
#define TEST_DELAY_MAX_MSECS 250

static struct event_base *test_base;
static char test_dir[] = "/tmp/test_auth.XXXXXX";
static char test_passwd[64], test_socket[64];

struct result {
	bool is_done;
	enum auth_result result;
	char user[64];
	long msecs;		/* from request to callback */
	struct timespec start;
};

static long elapsed_msecs(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 +
		(now.tv_nsec - start->tv_nsec) / 1000000;
}

static void result_cb(enum auth_result result, const char *user,
		      void *context)
{
	struct result *r = context;

	r->is_done = true;
	r->result = result;
	snprintf(r->user, sizeof(r->user), "%s", user != NULL ? user : "");
	r->msecs = elapsed_msecs(&r->start);
}

static void result_start(struct result *r)
{
	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_MONOTONIC, &r->start);
}

/* Runs the loop until every result is done or 5 s pass. */
static bool wait_results(struct result *rs, int n)
{
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int done = 0;

		for (int i = 0; i < n; i++)
			done += rs[i].is_done;
		if (done == n)
			return true;
		if (elapsed_msecs(&start) > 5000)
			return false;
		event_base_loop(test_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

static void write_passwd(const char *content)
{
	char tmp[80];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", test_passwd);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) < 0)
		abort();
	close(fd);
	if (rename(tmp, test_passwd) < 0)
		abort();
}

static pid_t start_server(void)
{
	static struct settings set;
	struct sockaddr_un sun;
	pid_t pid;
	int fd;

	memset(&set, 0, sizeof(set));
	set.passwd_file = test_passwd;
	set.auth_fail_delay_msecs = TEST_DELAY_MSECS;
	set.auth_fail_delay_max_msecs = TEST_DELAY_MAX_MSECS;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", test_socket);
	unlink(test_socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 16) < 0)
		abort();
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		auth_server_main(&set, fd);
		_exit(0);
	}
	close(fd);
	return pid;
}

static void stop_server(pid_t pid)
{
	int status = -1;

	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* max_msecs documents the expectation; only lower bounds are checked. */
#define D TEST_DELAY_MSECS
#define DMAX TEST_DELAY_MAX_MSECS
#define SLACK 250

static void test_e2e_verdicts(void)
{
	static const struct {
		char type;	/* V verify, A apop, L lookup */
		const char *user;
		const char *secret;
		const char *ip;
		enum auth_result result;
		long min_msecs, max_msecs;
	} rows[] = {
		{ 'V', "alice", "alicepw", "192.0.2.1", AUTH_RESULT_OK, 0,
		  SLACK },
		{ 'V', "alice", "wrong", "192.0.2.2", AUTH_RESULT_FAIL,
		  D - 5, D + SLACK },
		/* second failure from .2 doubles, then the max caps it */
		{ 'V', "alice", "wrong", "192.0.2.2", AUTH_RESULT_FAIL,
		  2 * D - 5, 2 * D + SLACK },
		{ 'V', "nobody", "x", "192.0.2.2", AUTH_RESULT_FAIL,
		  DMAX - 5, DMAX + SLACK },
		{ 'V', "nobody", "x", "192.0.2.2", AUTH_RESULT_FAIL,
		  DMAX - 5, DMAX + SLACK },	/* uncapped would be 8 * D */
		/* loopback is delayed too */
		{ 'V', "alice", "wrong", "127.0.0.1", AUTH_RESULT_FAIL,
		  D - 5, D + SLACK },
		/* success resets .2 */
		{ 'V', "mrose", "tanstaaf", "192.0.2.2", AUTH_RESULT_OK, 0,
		  SLACK },
		{ 'V', "mrose", "x", "192.0.2.2", AUTH_RESULT_FAIL,
		  D - 5, D + SLACK },
		{ 'A', "mrose", "c4c9334bac560ecc979e58001b3e22fb", "unix",
		  AUTH_RESULT_OK, 0, SLACK },
		{ 'A', "alice", "c4c9334bac560ecc979e58001b3e22fb", "unix",
		  AUTH_RESULT_FAIL, D - 5, D + SLACK },
		/* not a token: refused by the client itself */
		{ 'A', "mrose", "not a digest", "unix", AUTH_RESULT_FAIL,
		  0, SLACK },
		{ 'L', "alice", NULL, NULL, AUTH_RESULT_OK, 0, SLACK },
		{ 'L', "nobody", NULL, NULL, AUTH_RESULT_NOUSER, 0, SLACK },
	};
	static const char ts[] = "<1896.697170952@dbc.mtview.ca.us>";
	struct result r;

	for (int i = 0; i < N_ELEMENTS(rows); i++) {
		result_start(&r);
		if (rows[i].type == 'V')
			auth_verify_plain("pop3", rows[i].user, rows[i].secret,
					  rows[i].ip, result_cb, &r);
		else if (rows[i].type == 'A')
			auth_verify_apop(rows[i].user, ts, rows[i].secret,
					 rows[i].ip, result_cb, &r);
		else
			auth_lookup_user(rows[i].user, result_cb, &r);
		test_assert_idx(!r.is_done, i);	/* never synchronous */
		test_assert_idx(wait_results(&r, 1), i);
		test_assert_idx(r.result == rows[i].result, i);
		/* Lower bounds only: no timing ceilings in tests (the
		 * cap is tested on auth_fail_delay itself). */
		test_assert_idx(r.msecs >= rows[i].min_msecs, i);
		if (r.msecs < rows[i].min_msecs)
			printf("  row %d took %ld ms\n", i, r.msecs);
		if (rows[i].result == AUTH_RESULT_OK)
			test_assert_streq_idx(r.user, rows[i].user, i);
	}
	test_assert(auth_apop_available());
}

static void test_e2e_abort_and_local(void)
{
	struct result r[3];
	struct auth_request *req;
	char *big = xmalloc(10000);

	/* an aborted request never calls back, even with a reply pending */
	result_start(&r[0]);
	req = auth_verify_plain("imap", "alice", "bad", "198.51.100.1",
				result_cb, &r[0]);
	auth_request_abort(&req);
	test_assert(req == NULL);
	/* too long for the wire: FAIL, but still asynchronously */
	memset(big, 'u', 9999);
	big[9999] = '\0';
	result_start(&r[1]);
	auth_verify_plain("imap", big, "pw", "198.51.100.1", result_cb, &r[1]);
	test_assert(!r[1].is_done);
	result_start(&r[2]);
	auth_lookup_user("alice", result_cb, &r[2]);
	test_assert(wait_results(&r[1], 2));
	test_assert(r[1].result == AUTH_RESULT_FAIL);
	test_assert(r[2].result == AUTH_RESULT_OK);
	/* let the aborted request's delayed reply arrive and be ignored */
	usleep((TEST_DELAY_MSECS + 20) * 1000);
	event_base_loop(test_base, EVLOOP_NONBLOCK);
	test_assert(!r[0].is_done);
	free(big);
}

static void test_e2e_reload(pid_t pid)
{
	struct result r;

	write_passwd("alice:{PLAIN}newpw\n");
	kill(pid, SIGHUP);
	usleep(200 * 1000);
	result_start(&r);
	auth_verify_plain("pop3", "alice", "newpw", "203.0.113.9",
			  result_cb, &r);
	test_assert(wait_results(&r, 1) && r.result == AUTH_RESULT_OK);
	/* unreadable file: the old users stay */
	unlink(test_passwd);
	kill(pid, SIGHUP);
	usleep(200 * 1000);
	result_start(&r);
	auth_lookup_user("alice", result_cb, &r);
	test_assert(wait_results(&r, 1) && r.result == AUTH_RESULT_OK);
}

static int raw_connect(void)
{
	struct sockaddr_un sun;
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", test_socket);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		abort();
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Reads until EOF or want bytes; returns what was read, NUL-ended. */
static size_t raw_read(int fd, char *buf, size_t want)
{
	size_t len = 0;
	ssize_t n;

	while (len < want && (n = read(fd, buf + len, want - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len;
}

/* The server assembles lines itself: feed requests a byte at a time,
 * pipelined, then break the protocol and expect a disconnect. */
static void test_e2e_raw(void)
{
	static const char reqs[] = "L\t5\tYWxpY2U=\nL\t6\tYm9i\n";
	static const char want[] = "H\t1\n5\tOK\tYWxpY2U=\n6\tNOUSER\n";
	char buf[128], *big;
	int fd = raw_connect();

	for (size_t i = 0; i < sizeof(reqs) - 1; i++) {
		test_assert(write(fd, reqs + i, 1) == 1);
		usleep(1000);
	}
	test_assert(raw_read(fd, buf, sizeof(want) - 1) == sizeof(want) - 1);
	test_assert_streq(buf, want);
	test_assert(write(fd, "L\t7\tnot base64!\n", 16) == 16);
	test_assert(raw_read(fd, buf, sizeof(buf) - 1) == 0);	/* EOF */
	close(fd);

	/* a line over AUTH_PROTO_MAX_LINE: disconnect, no reply */
	fd = raw_connect();
	big = xmalloc(AUTH_PROTO_MAX_LINE + 10);
	memset(big, 'A', AUTH_PROTO_MAX_LINE + 10);
	memcpy(big, "L\t8\t", 4);
	test_assert(write(fd, big, AUTH_PROTO_MAX_LINE + 10) ==
		    AUTH_PROTO_MAX_LINE + 10);
	test_assert(raw_read(fd, buf, sizeof(buf) - 1) == 4);	/* hello */
	close(fd);
	free(big);
}

static void test_e2e_server_gone(pid_t pid)
{
	struct result r[2];

	result_start(&r[0]);
	/* failure delayed by the server: still pending when it dies */
	auth_verify_plain("pop3", "alice", "bad", "203.0.113.50",
			  result_cb, &r[0]);
	usleep(30 * 1000);
	event_base_loop(test_base, EVLOOP_NONBLOCK);
	stop_server(pid);
	test_assert(wait_results(&r[0], 1));
	test_assert(r[0].result == AUTH_RESULT_TEMPFAIL);
	/* reconnect fails: TEMPFAIL, asynchronously */
	result_start(&r[1]);
	auth_lookup_user("alice", result_cb, &r[1]);
	test_assert(!r[1].is_done);
	test_assert(wait_results(&r[1], 1));
	test_assert(r[1].result == AUTH_RESULT_TEMPFAIL);
}

static void test_e2e(void)
{
	pid_t pid;

	if (mkdtemp(test_dir) == NULL) {
		test_assert(!"mkdtemp");
		return;
	}
	snprintf(test_passwd, sizeof(test_passwd), "%s/passwd", test_dir);
	snprintf(test_socket, sizeof(test_socket), "%s/auth", test_dir);
	write_passwd("alice:{PLAIN}alicepw\n"
		     "mrose:{CLEARTEXT}tanstaaf\n");
	pid = start_server();
	test_base = event_base_new();
	auth_client_init(test_base, test_socket);
	test_e2e_verdicts();
	test_e2e_abort_and_local();
	test_e2e_reload(pid);
	test_e2e_raw();
	test_e2e_server_gone(pid);
	auth_client_deinit();
	event_base_free(test_base);
	unlink(test_socket);
	unlink(test_passwd);
	rmdir(test_dir);
}

static void test_fail_delay(void)
{
	static const struct {
		unsigned base, max, failures, expected;
	} rows[] = {
		{ 100, 1000, 1, 100 }, { 100, 1000, 2, 200 },
		{ 100, 1000, 3, 400 }, { 100, 1000, 4, 800 },
		{ 100, 1000, 5, 1000 }, { 100, 1000, 50, 1000 },
		{ 0, 0, 3, 0 }, { 300, 300, 9, 300 },
		{ 600000, 600000, 4000000000u, 600000 },
	};
	for (int i = 0; i < N_ELEMENTS(rows); i++) {
		struct settings set = { 0 };
		set.auth_fail_delay_msecs = rows[i].base;
		set.auth_fail_delay_max_msecs = rows[i].max;
		test_assert_idx(auth_fail_delay(&set, rows[i].failures) ==
				rows[i].expected, i);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_run("fail_delay", test_fail_delay);
	test_run("request_parse", test_request_parse);
	test_run("request_roundtrip", test_request_roundtrip);
	test_run("request_format_refuses", test_request_format_refuses);
	test_run("reply_parse", test_reply_parse);
	test_run("e2e", test_e2e);
	return test_done("auth_proto");
}
