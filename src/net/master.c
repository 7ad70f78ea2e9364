/* master.c: binds ports (also privileged ones when started as root), then
 * forks the auth process (the only one that reads the password file; it
 * keeps the master's user) and the workers (which drop to `user`). It
 * restarts crashed children, replaces the workers on SIGHUP (old ones
 * drain their sessions: nothing is dropped) and stops everything on
 * SIGTERM. It parses no network input.
 *
 * state_dir belongs to the master's user (root), mode 0755: the master
 * creates and removes the sockets in it without CAP_DAC_OVERRIDE, and a
 * worker can't replace the control socket. The auth socket is handed to
 * `user` (0600); the only directory workers write is MASTER_SPOOL_DIR
 * (spool_open: LMTP and literal8 APPEND), owned by `user`, mode 0700. */
#include "net/master.h"
#include "net/control.h"
#include "net/limits.h"
#include "net/metrics.h"
#include "net/tls.h"
#include "net/worker.h"
#include "auth/auth_server.h"
#include "conf/config.h"
#include "lib/fault.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MASTER_LISTEN_BACKLOG 1024
#define MASTER_STOP_GRACE_SECS 5
/* A child that dies sooner than this after its start is respawned only
 * after MASTER_RESPAWN_DELAY_SECS, so a crash loop can't spin. */
#define MASTER_FAST_CRASH_SECS 2
#define MASTER_RESPAWN_DELAY_SECS 1
/* Under state_dir; lmtp_deliver.c opens its spool files there. */
#define MASTER_SPOOL_DIR "spool"

enum child_role { CHILD_AUTH, CHILD_WORKER, CHILD_DRAINING };

struct child {
	pid_t pid;
	enum child_role role;
	int index;
	int row;		/* workers: row in the shared limits, or -1 */
	time_t started;
};

struct master {
	struct settings *set;
	struct event_base *base;
	/* Listening sockets: listeners_count rows of `slots` (one per
	 * worker, SO_REUSEPORT, so the kernel spreads connections evenly
	 * over the workers); a Unix listener has one socket, in every slot
	 * of its row. */
	int *fds;
	unsigned slots;
	int auth_fd;
	char *auth_path;
	struct child *children;
	size_t children_count;
	unsigned workers;
	bool stopping;
	struct limits *limits;	/* shared connection counters */
	struct metrics *metrics;	/* shared counters, row = limits row */
	struct metrics_http *metrics_http;	/* metrics_listen, or NULL */
	struct control *control;	/* <state_dir>/control */
	int control_fd;
	char *control_path;
	time_t started;		/* CLOCK_MONOTONIC seconds */
	bool *row_used;
	struct passwd *pw;	/* drop target, NULL = stay */
	uid_t uid;
	gid_t gid;
	bool drop;
	pid_t pid;		/* the master's: children compare getppid() */
};

static int listen_tcp(const struct listener_conf *l, bool reuseport)
{
	struct addrinfo hints = { 0 }, *ai = NULL;
	char port[8];
	int fd = -1, one = 1, err;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", l->port);
	err = getaddrinfo(l->host, port, &hints, &ai);
	if (err != 0)
		log_fatal("listen %s:%s: %s (use a numeric address)", l->host,
			  port, gai_strerror(err));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		log_fatal("socket() failed: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		log_fatal("setsockopt(SO_REUSEPORT) failed: %s",
			  strerror(errno));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		log_fatal("bind(%s:%s) failed: %s", l->host, port,
			  strerror(errno));
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0)
		log_fatal("listen(%s:%s) failed: %s", l->host, port,
			  strerror(errno));
	freeaddrinfo(ai);
	return fd;
}

static int listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		log_fatal("unix socket path too long: %s", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		log_fatal("socket(AF_UNIX) failed: %s", strerror(errno));
	if (unlink(path) < 0 && errno != ENOENT)
		log_fatal("unlink(%s) failed: %s", path, strerror(errno));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		log_fatal("bind(%s) failed: %s", path, strerror(errno));
	if (chmod(path, mode) < 0)
		log_fatal("chmod(%s) failed: %s", path, strerror(errno));
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0)
		log_fatal("listen(%s) failed: %s", path, strerror(errno));
	return fd;
}

/* Earlier versions gave state_dir to `user`: take it back (CAP_CHOWN),
 * else a worker could swap the sockets in it. Returns true when it did.
 * Another owner, or a directory writable by others (/tmp), is only
 * logged: the admin chose it. */
static bool master_own_state_dir(struct master *m, int fd,
				 const struct stat *st)
{
	const char *dir = m->set->state_dir;

	if (m->drop && st->st_uid == m->uid) {
		if (fchownat(fd, "", geteuid(), getegid(),
			     AT_EMPTY_PATH) < 0)
			log_fatal("chown(%s) to the master's user failed: %s",
				  dir, strerror(errno));
		log_info("state_dir %s belonged to %s; now to the master's "
			 "user", dir, m->set->user);
		return true;
	}
	if (st->st_uid != geteuid())
		log_warn("state_dir %s belongs to uid %u, not to the master's "
			 "(%u): its owner can replace the sockets in it", dir,
			 (unsigned)st->st_uid, (unsigned)geteuid());
	else if ((st->st_mode & 0022) != 0)
		log_warn("state_dir %s is writable by group or others (mode "
			 "%04o): they can replace the sockets in it", dir,
			 (unsigned)(st->st_mode & 07777));
	return false;
}

/* <state_dir>/MASTER_SPOOL_DIR: the workers' only writable directory
 * here. By name, not by fd: once it is `user`'s (0700), root without
 * CAP_DAC_OVERRIDE can't open it. AT_SYMLINK_NOFOLLOW: never chown what
 * a symlink points to (only root writes state_dir, but earlier versions
 * let `user` do it). */
static void master_spool_dir(struct master *m, int dir_fd)
{
	const char *dir = m->set->state_dir;
	struct stat st;

	if (mkdirat(dir_fd, MASTER_SPOOL_DIR, 0700) < 0 && errno != EEXIST)
		log_fatal("mkdir(%s/%s) failed: %s", dir, MASTER_SPOOL_DIR,
			  strerror(errno));
	if (fstatat(dir_fd, MASTER_SPOOL_DIR, &st, AT_SYMLINK_NOFOLLOW) < 0)
		log_fatal("stat(%s/%s) failed: %s", dir, MASTER_SPOOL_DIR,
			  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		log_fatal("%s/%s is not a directory", dir, MASTER_SPOOL_DIR);
	/* chmod first: after the chown only CAP_FOWNER could. */
	if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0700 &&
	    fchmodat(dir_fd, MASTER_SPOOL_DIR, 0700, 0) < 0)
		log_fatal("chmod(%s/%s) failed: %s", dir, MASTER_SPOOL_DIR,
			  strerror(errno));
	if (m->drop && (st.st_uid != m->uid || st.st_gid != m->gid) &&
	    fchownat(dir_fd, MASTER_SPOOL_DIR, m->uid, m->gid,
		     AT_SYMLINK_NOFOLLOW) < 0)
		log_fatal("chown(%s/%s) failed: %s", dir, MASTER_SPOOL_DIR,
			  strerror(errno));
}

/* state_dir: the master's. When it creates or reclaims it, mode 0755
 * (workers and the MTA pass through it to the sockets; the unit's
 * UMask=0077 must not narrow it); an existing mode is the admin's. */
static void master_state_dir(struct master *m)
{
	const char *dir = m->set->state_dir;
	bool is_new;
	struct stat st;
	int fd;

	is_new = mkdir(dir, 0755) == 0;
	if (!is_new && errno != EEXIST)
		log_fatal("mkdir(%s) failed: %s", dir, strerror(errno));
	/* O_PATH: a legacy state_dir (`user`'s, 0700) can't be read. */
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		log_fatal("open(%s) failed: %s (must be a directory)", dir,
			  strerror(errno));
	if (master_own_state_dir(m, fd, &st))
		is_new = true;
	if (is_new && (st.st_mode & 07777) != 0755 && chmod(dir, 0755) < 0)
		log_fatal("chmod(%s) failed: %s", dir, strerror(errno));
	master_spool_dir(m, fd);
	close(fd);
}

/* Closes every listening socket (a Unix one once); unlink: remove the
 * Unix listeners' files too (the master at exit). */
static void master_close_listeners(struct master *m, bool unlink_paths)
{
	for (size_t i = 0; i < m->set->listeners_count; i++) {
		const struct listener_conf *l = &m->set->listeners[i];
		int *row = &m->fds[i * m->slots];

		for (unsigned s = 0; s < m->slots; s++) {
			if (l->unix_path == NULL || s == 0)
				close(row[s]);
		}
		if (unlink_paths && l->unix_path != NULL)
			unlink(l->unix_path);
	}
}

static void master_bind(struct master *m)
{
	const struct settings *set = m->set;

	/* First: Unix listeners may live in it (and in a legacy state_dir
	 * of `user`'s root could not create them). */
	master_state_dir(m);
	m->fds = xcalloc((size_t)set->listeners_count * m->slots,
			 sizeof(*m->fds));
	for (size_t i = 0; i < set->listeners_count; i++) {
		const struct listener_conf *l = &set->listeners[i];
		int *row = &m->fds[i * m->slots];

		if (l->unix_path != NULL) {
			/* The MTA (e.g. Postfix's lmtp client) must reach
			 * it. */
			row[0] = listen_unix(l->unix_path, 0666);
			for (unsigned s = 1; s < m->slots; s++)
				row[s] = row[0];
			continue;
		}
		/* A plain bind first: a port already in use (another
		 * server, a second heron) fails here as it should, rather
		 * than joining its SO_REUSEPORT group. */
		close(listen_tcp(l, false));
		for (unsigned s = 0; s < m->slots; s++)
			row[s] = listen_tcp(l, m->slots > 1);
	}
	/* Workers (as `user`) connect to it; nobody else may. */
	m->auth_path = xasprintf("%s/auth.sock", set->state_dir);
	m->auth_fd = listen_unix(m->auth_path, 0600);
	if (m->drop && chown(m->auth_path, m->uid, m->gid) < 0)
		log_fatal("chown(%s) failed: %s", m->auth_path,
			  strerror(errno));
	/* Stays the master's (root's): only it may kick and reload. */
	m->control_path = xasprintf("%s/control", set->state_dir);
	m->control_fd = listen_unix(m->control_path, 0600);
}

static void master_drop_privileges(struct master *m)
{
	if (!m->drop)
		return;
	if (setgroups(0, NULL) < 0 || setgid(m->gid) < 0 ||
	    setuid(m->uid) < 0)
		log_fatal("dropping privileges to %s failed: %s",
			  m->set->user, strerror(errno));
	if (setuid(0) == 0)
		log_fatal("privileges could be regained after dropping");
	/* The uid change cleared PR_SET_PDEATHSIG (prctl(2)): set it again,
	 * and check that the master did not die in between. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != m->pid)
		_exit(0);
}

/* In a new worker, still privileged: loads the certificate and key, then
 * drops privileges. The master checked the files at start and reload, so
 * a failure here (files changed since) leaves TLS off, logged. */
static SSL_CTX *master_worker_tls(struct master *m)
{
	SSL_CTX *ctx = NULL;
	const char *error;

	if (m->set->tls_cert != NULL &&
	    (ctx = tls_ctx_create(m->set, &error)) == NULL)
		log_error("TLS disabled in this worker: %s", error);
	master_drop_privileges(m);
	return ctx;
}

/* Start-up and reload: refuses certificate or key files that don't load
 * (STYLE.md section 4: a broken environment at start-up is fatal). */
static int master_check_tls(const struct settings *set, const char **error_r)
{
	SSL_CTX *ctx;

	if (set->tls_cert == NULL)
		return 0;
	ctx = tls_ctx_create(set, error_r);
	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

static void master_child_setup(struct master *m)
{
	/* A child must not outlive the master. The master may have died
	 * before the prctl: then the parent is no longer its pid (but not
	 * necessarily 1: a subreaper such as systemd adopts orphans). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != m->pid)
		_exit(0);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	{
		/* Ctrl-C reaches the whole process group: only the master
		 * acts on it, stopping workers first and auth last. */
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
	}
	signal(SIGUSR1, SIG_DFL);
}

/* A free row of the shared counters, cleared; -1 if all are taken. */
static int master_row_alloc(struct master *m)
{
	for (unsigned r = 0; r < limits_rows(m->limits); r++) {
		if (!m->row_used[r]) {
			m->row_used[r] = true;
			limits_row_clear(m->limits, r);
			return (int)r;
		}
	}
	return -1;
}

static void master_row_free(struct master *m, struct child *c)
{
	if (c->row < 0)
		return;
	metrics_row_retire(m->metrics, (unsigned)c->row);
	limits_row_clear(m->limits, (unsigned)c->row);
	m->row_used[c->row] = false;
	c->row = -1;
}

/* In a new child: the master's sockets are not its business. */
static void master_child_close(struct master *m)
{
	int fd = metrics_http_fd(m->metrics_http);

	control_close_fds(m->control);
	if (fd >= 0)
		close(fd);
}

static void master_spawn(struct master *m, struct child *c)
{
	int ctl[2] = { -1, -1 };
	pid_t pid;

	if (c->role != CHILD_AUTH && c->row < 0 &&
	    (c->row = master_row_alloc(m)) < 0) {
		log_error("no free connection-counter row: too many draining "
			  "workers; not starting a worker now");
		c->pid = -1;
		return;
	}
	/* The worker's end of the control channel, made before the fork. */
	if (c->role != CHILD_AUTH &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0)
		log_error("socketpair() for the control channel failed: %s",
			  strerror(errno));
	pid = fork();

	if (pid < 0) {
		log_error("fork() failed: %s", strerror(errno));
		if (ctl[0] >= 0) {
			close(ctl[0]);
			close(ctl[1]);
		}
		c->pid = -1;
		return;
	}
	if (pid == 0) {
		/* The master's event base must not be shared with the
		 * child: give it its own epoll instance, then drop it. */
		event_reinit(m->base);
		event_base_free(m->base);
		m->base = NULL;
		master_child_setup(m);
		master_child_close(m);
		if (c->role == CHILD_AUTH) {
			metrics_attach(m->metrics,
				       metrics_auth_row(m->metrics));
			master_close_listeners(m, false);
			auth_server_main(m->set, m->auth_fd);
			_exit(0);
		}
		close(m->auth_fd);
		metrics_attach(m->metrics, (unsigned)c->row);
		if (ctl[0] >= 0) {
			close(ctl[0]);
			control_worker_set_fd(ctl[1]);
		}
		worker_main(m->set, m->fds, m->slots, c->index, m->limits,
			    (unsigned)c->row, master_worker_tls(m));
	}
	/* Test builds: the master dies right after a fork, before the child
	 * has set PR_SET_PDEATHSIG (master_child_setup must notice). */
	FAULT_POINT("master-forked");
	if (ctl[0] >= 0) {
		close(ctl[1]);
		control_worker_add(m->control, pid, ctl[0]);
	}
	c->pid = pid;
	c->started = time(NULL);
	log_debug("started %s pid=%d", c->role == CHILD_AUTH ? "auth" :
		  "worker", (int)pid);
}

static struct child *master_add_child(struct master *m, enum child_role role,
				      int index)
{
	struct child *c;

	m->children = xreallocarray(m->children, m->children_count + 1,
				    sizeof(*m->children));
	c = &m->children[m->children_count++];
	c->role = role;
	c->index = index;
	c->row = -1;
	c->pid = -1;
	master_spawn(m, c);
	return c;
}

static void master_respawn_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct master *m = ctx;

	if (m->stopping)
		return;
	for (size_t i = 0; i < m->children_count; i++) {
		if (m->children[i].pid == -1 &&
		    m->children[i].role != CHILD_DRAINING)
			master_spawn(m, &m->children[i]);
	}
}

static void master_child_exited(struct master *m, pid_t pid, int status)
{
	for (size_t i = 0; i < m->children_count; i++) {
		struct child *c = &m->children[i];
		struct timeval tv = { MASTER_RESPAWN_DELAY_SECS, 0 };

		if (c->pid != pid)
			continue;
		c->pid = -1;
		/* Its connections are gone with it; its counts stay. */
		master_row_free(m, c);
		control_worker_remove(m->control, pid);
		if (c->role == CHILD_AUTH)
			metrics_row_retire(m->metrics,
					   metrics_auth_row(m->metrics));
		if (c->role == CHILD_DRAINING) {
			m->children[i] = m->children[--m->children_count];
			return;
		}
		if (m->stopping)
			return;
		if (WIFSIGNALED(status))
			log_error("%s pid=%d killed by signal %d; restarting",
				  c->role == CHILD_AUTH ? "auth" : "worker",
				  (int)pid, WTERMSIG(status));
		else
			log_error("%s pid=%d exited with %d; restarting",
				  c->role == CHILD_AUTH ? "auth" : "worker",
				  (int)pid, WEXITSTATUS(status));
		if (time(NULL) - c->started < MASTER_FAST_CRASH_SECS)
			event_base_once(m->base, -1, EV_TIMEOUT,
					master_respawn_cb, m, &tv);
		else
			master_spawn(m, c);
		return;
	}
}

static bool master_has_children(struct master *m)
{
	for (size_t i = 0; i < m->children_count; i++) {
		if (m->children[i].pid > 0)
			return true;
	}
	return false;
}

/* Signals the workers (also draining ones), or with auth set only the
 * auth process. */
static void master_kill(struct master *m, int sig, bool auth)
{
	for (size_t i = 0; i < m->children_count; i++) {
		if (m->children[i].pid > 0 &&
		    (m->children[i].role == CHILD_AUTH) == auth)
			kill(m->children[i].pid, sig);
	}
}

static bool master_has_workers(struct master *m)
{
	for (size_t i = 0; i < m->children_count; i++) {
		if (m->children[i].pid > 0 &&
		    m->children[i].role != CHILD_AUTH)
			return true;
	}
	return false;
}

static void master_sigchld_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct master *m = ctx;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		master_child_exited(m, pid, status);
	/* The auth process stops last: workers may still ask it. */
	if (m->stopping && !master_has_workers(m))
		master_kill(m, SIGTERM, true);
	if (m->stopping && !master_has_children(m))
		event_base_loopbreak(m->base);
}

static void master_stop_timeout_cb(evutil_socket_t fd, short what,
				   void *ctx)
{
	struct master *m = ctx;

	log_warn("children still running after %d s: killing",
		 MASTER_STOP_GRACE_SECS);
	master_kill(m, SIGKILL, false);
	master_kill(m, SIGKILL, true);
}

static void master_sigterm_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct master *m = ctx;
	struct timeval tv = { MASTER_STOP_GRACE_SECS, 0 };

	if (m->stopping)
		return;
	log_info("stopping");
	m->stopping = true;
	master_kill(m, SIGTERM, false);
	if (!master_has_workers(m))
		master_kill(m, SIGTERM, true);
	event_base_once(m->base, -1, EV_TIMEOUT, master_stop_timeout_cb, m,
			&tv);
	if (!master_has_children(m))
		event_base_loopbreak(m->base);
}

/* Start-up and reload: the password hashes should be readable by the
 * auth process (the master's user) alone. A warning, not an error:
 * nothing breaks, but offline guessing becomes possible for whoever can
 * read them. */
static void master_check_passwd_file(const struct settings *set)
{
	const char *path = set->passwd_file;
	struct group *gr;
	struct stat st;

	if (path == NULL || stat(path, &st) < 0)
		return;		/* the auth process reports it */
	if ((st.st_mode & S_IROTH) != 0)
		log_warn("passwd_file %s is readable by all users (mode %04o);"
			 " chmod o-r it", path,
			 (unsigned)(st.st_mode & 07777));
	else if ((st.st_mode & S_IRGRP) != 0 && st.st_gid != 0) {
		gr = getgrgid(st.st_gid);
		log_warn("passwd_file %s is readable by group %s (gid %u, "
			 "mode %04o); chmod g-r it or chgrp it to root's group",
			 path, gr != NULL ? gr->gr_name : "?",
			 (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
	}
}

/* Keeps the listeners of the running configuration: sockets were bound
 * before privileges were dropped. */
static bool master_same_listeners(const struct settings *a,
				  const struct settings *b)
{
	if (a->listeners_count != b->listeners_count)
		return false;
	for (size_t i = 0; i < a->listeners_count; i++) {
		const struct listener_conf *x = &a->listeners[i];
		const struct listener_conf *y = &b->listeners[i];
		if (x->proto != y->proto || x->is_tls != y->is_tls ||
		    x->port != y->port ||
		    strcmp(x->host ? x->host : "", y->host ? y->host : "") ||
		    strcmp(x->unix_path ? x->unix_path : "",
			   y->unix_path ? y->unix_path : ""))
			return false;
	}
	return true;
}

/* SIGHUP and the control socket's RELOAD: -1 with a heap *error_r when
 * the new configuration is refused (the running one stays). */
static int master_reload(void *ctx, char **error_r)
{
	struct master *m = ctx;
	struct settings *set;
	const char *tls_error;
	char *error;

	if (config_load(m->set->path, &set, &error) < 0) {
		log_error("reload failed, keeping the running config: %s",
			  error);
		*error_r = error;
		return -1;
	}
	if (master_check_tls(set, &tls_error) < 0) {
		log_error("reload failed, keeping the running config: %s",
			  tls_error);
		*error_r = xasprintf("TLS: %s", tls_error);
		config_free(&set);
		return -1;
	}
	if (!master_same_listeners(m->set, set) ||
	    strcmp(m->set->state_dir, set->state_dir) != 0)
		log_warn("reload: listener and state_dir changes need a "
			 "restart; keeping the old ones");
	/* Swap listeners and state_dir back: they are bound already. */
	{
		struct listener_conf *l = set->listeners;
		size_t n = set->listeners_count;
		char *dir = set->state_dir;
		set->listeners = m->set->listeners;
		set->listeners_count = m->set->listeners_count;
		set->state_dir = m->set->state_dir;
		m->set->listeners = l;
		m->set->listeners_count = n;
		m->set->state_dir = dir;
	}
	config_free(&m->set);
	m->set = set;
	log_set_level((enum log_level)set->log_level);
	master_check_passwd_file(set);
	log_info("reloading: new workers, old ones drain their sessions");
	for (size_t i = 0; i < m->children_count; i++) {
		struct child *c = &m->children[i];
		if (c->role == CHILD_AUTH && c->pid > 0)
			kill(c->pid, SIGHUP);
		else if (c->role == CHILD_WORKER) {
			c->role = CHILD_DRAINING;
			if (c->pid > 0)
				kill(c->pid, SIGUSR1);
		}
	}
	for (unsigned i = 0; i < m->workers; i++)
		master_add_child(m, CHILD_WORKER, (int)i + 1);
	return 0;
}

static void master_sighup_cb(evutil_socket_t fd, short what, void *ctx)
{
	char *error = NULL;

	if (master_reload(ctx, &error) < 0)
		free(error);
}

static unsigned master_workers_alive(const struct master *m)
{
	unsigned n = 0;

	for (size_t i = 0; i < m->children_count; i++)
		n += m->children[i].pid > 0 &&
			m->children[i].role != CHILD_AUTH;
	return n;
}

static void master_render_metrics(void *ctx, struct evbuffer *out)
{
	struct master *m = ctx;

	metrics_render(m->metrics, master_workers_alive(m), m->started, out);
}

static const struct control_ops master_control_ops = {
	.reload = master_reload,
	.stats = master_render_metrics,
};

/* The metrics endpoint and the control socket (after master_bind). */
static void master_start_admin(struct master *m)
{
	struct timespec ts;
	const char *error;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	m->started = ts.tv_sec;
	m->metrics = metrics_create(limits_rows(m->limits));
	m->control = control_create(m->base, m->control_fd,
				    &master_control_ops, m);
	if (m->set->metrics_listen == NULL)
		return;
	m->metrics_http = metrics_http_start(m->base, m->set->metrics_listen,
					     master_render_metrics, m, &error);
	if (m->metrics_http == NULL)
		log_fatal("%s: %s (%s)", m->set->path, error,
			  m->set->metrics_listen);
	log_info("metrics listen=%s", m->set->metrics_listen);
}

static void master_resolve_user(struct master *m)
{
	if (geteuid() != 0 || m->set->user == NULL)
		return;
	m->pw = getpwnam(m->set->user);
	if (m->pw == NULL)
		log_fatal("%s: user %s does not exist", m->set->path,
			  m->set->user);
	m->uid = m->pw->pw_uid;
	m->gid = m->pw->pw_gid;
	m->drop = m->uid != 0;
}

int master_run(struct settings *set)
{
	struct master m = { .set = set, .auth_fd = -1, .control_fd = -1 };
	const char *tls_error;
	struct event *evs[4];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	log_set_tag("master");
	log_set_level((enum log_level)set->log_level);
	signal(SIGPIPE, SIG_IGN);
	m.pid = getpid();
	master_resolve_user(&m);
	master_check_passwd_file(set);
	if (master_check_tls(set, &tls_error) < 0)
		log_fatal("%s: TLS: %s", set->path, tls_error);
	m.workers = set->workers ? set->workers :
		(ncpu > 0 ? (unsigned)ncpu : 1);
	m.slots = m.workers;
	master_bind(&m);
	/* Room for a few generations of draining workers after reloads. */
	m.limits = limits_create(4 * m.workers + 4);
	m.row_used = xcalloc(limits_rows(m.limits), sizeof(*m.row_used));
	m.base = event_base_new();
	if (m.base == NULL)
		log_fatal("event_base_new failed");
	evs[0] = evsignal_new(m.base, SIGCHLD, master_sigchld_cb, &m);
	evs[1] = evsignal_new(m.base, SIGTERM, master_sigterm_cb, &m);
	evs[2] = evsignal_new(m.base, SIGINT, master_sigterm_cb, &m);
	evs[3] = evsignal_new(m.base, SIGHUP, master_sighup_cb, &m);
	for (int i = 0; i < 4; i++)
		event_add(evs[i], NULL);
	master_start_admin(&m);
	master_add_child(&m, CHILD_AUTH, 0);
	for (unsigned i = 0; i < m.workers; i++)
		master_add_child(&m, CHILD_WORKER, (int)i + 1);
	log_info("started workers=%u listeners=%zu", m.workers,
		 set->listeners_count);

	event_base_dispatch(m.base);

	for (int i = 0; i < 4; i++)
		event_free(evs[i]);
	unlink(m.auth_path);
	control_destroy(&m.control);
	unlink(m.control_path);
	free(m.control_path);
	metrics_http_stop(&m.metrics_http);
	master_close_listeners(&m, true);
	log_info("stopped");
	free(m.fds);
	free(m.auth_path);
	free(m.children);
	free(m.row_used);
	event_base_free(m.base);
	config_free(&m.set);
	return 0;
}
