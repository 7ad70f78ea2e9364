/* watch.c: change notification for IMAP IDLE. One inotify fd per process
 * watches new/ and cur/ of each folder some session asked for; watches
 * are refcounted by folder directory and named by a small integer id.
 * The caller polls store_watch_fd() (e.g. in its libevent loop) and
 * calls store_watch_read(), which reports each changed id once per call;
 * the caller then runs store_mailbox_sync_changes for the sessions that
 * have that mailbox selected. Deliveries (new/), flag renames and
 * expunges (cur/) all show up; keyword changes beyond the 26 letters live
 * only in the index and are not seen (they show at the next sync).
 * Limits: STORE_WATCH_MAX folders per process. Not thread-safe. */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define STORE_WATCH_MAX 1024
#define WATCH_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
		      IN_ATTRIB | IN_ONLYDIR)

struct watch {
	char *dir;		/* NULL = free slot */
	unsigned refcount;
	int wd[2];		/* new/, cur/ */
	bool is_pending;	/* reported in the current read */
};

static struct watch watches[STORE_WATCH_MAX];
static int watch_fd = -1;
static pid_t watch_pid;

/* A child of fork() must not share the parent's inotify queue. */
static void watch_forget_forked(void)
{
	if (watch_fd < 0 || watch_pid == getpid())
		return;
	close(watch_fd);
	watch_fd = -1;
	for (int i = 0; i < STORE_WATCH_MAX; i++) {
		free(watches[i].dir);
		memset(&watches[i], 0, sizeof(watches[i]));
	}
}

static int watch_open(const char **error_r)
{
	static char error[STORE_ERROR_MAX];

	watch_forget_forked();
	if (watch_fd >= 0)
		return 0;
	watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch_fd < 0)
		return store_set_error(error, error_r,
				       "inotify_init1() failed: %s",
				       strerror(errno));
	watch_pid = getpid();
	return 0;
}

static int watch_find(const char *dir)
{
	for (int i = 0; i < STORE_WATCH_MAX; i++) {
		if (watches[i].dir != NULL && strcmp(watches[i].dir, dir) == 0)
			return i;
	}
	return -1;
}

int store_watch_add(struct store_mailbox *mb, int *id_r,
		    const char **error_r)
{
	static const char *const subs[] = { "new", "cur" };
	char path[4096];
	int id;

	if (watch_open(error_r) < 0)
		return -1;
	if ((id = watch_find(mb->dir)) >= 0) {
		watches[id].refcount++;
		*id_r = id;
		return 0;
	}
	for (id = 0; id < STORE_WATCH_MAX && watches[id].dir != NULL; id++)
		;
	if (id == STORE_WATCH_MAX) {
		errno = EMFILE;
		return store_set_error(mb->error, error_r, "too many watches");
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", mb->dir, subs[i]);
		watches[id].wd[i] = inotify_add_watch(watch_fd, path,
						      WATCH_EVENTS);
		if (watches[id].wd[i] < 0) {
			int err = errno;

			if (i == 1)
				inotify_rm_watch(watch_fd, watches[id].wd[0]);
			errno = err;
			return store_set_error(mb->error, error_r,
					       "inotify_add_watch(%s): %s",
					       path, strerror(err));
		}
	}
	watches[id].dir = xstrdup(mb->dir);
	watches[id].refcount = 1;
	*id_r = id;
	return 0;
}

void store_watch_remove(int id)
{
	struct watch *w;

	if (id < 0 || id >= STORE_WATCH_MAX || watches[id].dir == NULL)
		return;
	w = &watches[id];
	if (--w->refcount > 0)
		return;
	/* The same wd can be handed out again for another directory, so
	 * drop it from the kernel before forgetting it. */
	inotify_rm_watch(watch_fd, w->wd[0]);
	inotify_rm_watch(watch_fd, w->wd[1]);
	free(w->dir);
	memset(w, 0, sizeof(*w));
}

int store_watch_fd(void)
{
	watch_forget_forked();
	return watch_fd;
}

static int watch_by_wd(int wd)
{
	for (int i = 0; i < STORE_WATCH_MAX; i++) {
		if (watches[i].dir != NULL &&
		    (watches[i].wd[0] == wd || watches[i].wd[1] == wd))
			return i;
	}
	return -1;
}

/* Marks the watches named in one buffer of events. */
static void watch_mark(const char *buf, ssize_t len)
{
	const struct inotify_event *ev;
	int id;

	for (ssize_t off = 0; off + (ssize_t)sizeof(*ev) <= len;
	     off += (ssize_t)sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)(const void *)(buf + off);
		if ((ev->mask & IN_Q_OVERFLOW) != 0) {
			/* Events lost: report everything. */
			for (int i = 0; i < STORE_WATCH_MAX; i++)
				watches[i].is_pending = watches[i].dir != NULL;
			continue;
		}
		if ((id = watch_by_wd(ev->wd)) >= 0)
			watches[id].is_pending = true;
	}
}

int store_watch_read(void (*cb)(int id, void *ctx), void *ctx)
{
	char buf[16384]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t r;
	int n = 0;

	if (store_watch_fd() < 0)
		return 0;
	while ((r = read(watch_fd, buf, sizeof(buf))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			log_error("store: read(inotify) failed: %s",
				  strerror(errno));
			return -1;
		}
		watch_mark(buf, r);
	}
	for (int i = 0; i < STORE_WATCH_MAX; i++) {
		if (!watches[i].is_pending)
			continue;
		watches[i].is_pending = false;
		n++;
		cb(i, ctx);
	}
	return n;
}
