/* watch.c: change notification for IMAP IDLE. One inotify fd per process
 * watches new/ and cur/ of each folder some session asked for; watches
 * are refcounted by folder directory and named by a small integer id.
 * The caller polls store_watch_fd() (e.g. in its libevent loop) and
 * calls store_watch_read(), which reports each changed id once per call;
 * the caller then runs store_mailbox_sync_changes for the sessions that
 * have that mailbox selected. Deliveries (new/), flag renames and
 * expunges (cur/) all show up; keyword changes beyond the 26 letters live
 * only in the index and are not seen (they show at the next sync).
 * Sizes grow on demand (thousands of folders per process); lookups by
 * directory and by inotify descriptor are O(1). The kernel's
 * fs.inotify.max_user_watches bounds the total. Not thread-safe. */
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WATCH_EVENTS (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | \
		      IN_ATTRIB | IN_ONLYDIR)
#define WATCH_BUCKETS 4096

struct watch {
	char *dir;		/* NULL = free slot */
	unsigned refcount;
	int wd[2];		/* new/, cur/ */
	bool is_pending;	/* reported in the current read */
	int hash_next;		/* next id in the dir bucket, -1 = end */
};

static struct watch *watches;
static int watches_count, watches_cap;
static int buckets[WATCH_BUCKETS];	/* dir hash -> first id, -1 */
static int *wd_ids;			/* inotify wd -> id, -1 */
static int wd_ids_cap;
static int *pending;			/* ids marked in this read */
static int pending_count;
static int watch_fd = -1;
static pid_t watch_pid;

static unsigned watch_hash(const char *dir)
{
	unsigned h = 5381;

	while (*dir != '\0')
		h = h * 33 + (unsigned char)*dir++;
	return h % WATCH_BUCKETS;
}

static void watch_reset(void)
{
	for (int i = 0; i < watches_count; i++)
		free(watches[i].dir);
	free(watches);
	free(wd_ids);
	free(pending);
	watches = NULL;
	wd_ids = pending = NULL;
	watches_count = watches_cap = wd_ids_cap = pending_count = 0;
	for (int i = 0; i < WATCH_BUCKETS; i++)
		buckets[i] = -1;
}

/* A child of fork() must not share the parent's inotify queue. */
static void watch_forget_forked(void)
{
	if (watch_fd < 0 || watch_pid == getpid())
		return;
	close(watch_fd);
	watch_fd = -1;
	watch_reset();
}

static int watch_open(const char **error_r)
{
	static char error[STORE_ERROR_MAX];

	watch_forget_forked();
	if (watch_fd >= 0)
		return 0;
	watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (watch_fd < 0)
		return store_set_error_buf(error, error_r,
					   "inotify_init1() failed: %s",
					   strerror(errno));
	watch_pid = getpid();
	watch_reset();
	return 0;
}

static int watch_find(const char *dir)
{
	for (int id = buckets[watch_hash(dir)]; id >= 0;
	     id = watches[id].hash_next) {
		if (strcmp(watches[id].dir, dir) == 0)
			return id;
	}
	return -1;
}

static void watch_set_wd(int wd, int id)
{
	if (wd >= wd_ids_cap) {
		int cap = wd_ids_cap == 0 ? 256 : wd_ids_cap;

		while (cap <= wd)
			cap *= 2;
		wd_ids = xreallocarray(wd_ids, (size_t)cap, sizeof(*wd_ids));
		for (int i = wd_ids_cap; i < cap; i++)
			wd_ids[i] = -1;
		wd_ids_cap = cap;
	}
	wd_ids[wd] = id;
}

static int watch_alloc(void)
{
	for (int id = 0; id < watches_count; id++) {
		if (watches[id].dir == NULL)
			return id;
	}
	if (watches_count == watches_cap) {
		watches_cap = watches_cap == 0 ? 64 : watches_cap * 2;
		watches = xreallocarray(watches, (size_t)watches_cap,
					sizeof(*watches));
		pending = xreallocarray(pending, (size_t)watches_cap,
					sizeof(*pending));
	}
	memset(&watches[watches_count], 0, sizeof(watches[0]));
	return watches_count++;
}

int store_watch_add(struct store_mailbox *mb, int *id_r,
		    const char **error_r)
{
	static const char *const subs[] = { "new", "cur" };
	char path[4096];
	int id, wd[2];
	unsigned b;

	if (watch_open(error_r) < 0)
		return -1;
	if ((id = watch_find(mb->dir)) >= 0) {
		watches[id].refcount++;
		*id_r = id;
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", mb->dir, subs[i]);
		wd[i] = inotify_add_watch(watch_fd, path, WATCH_EVENTS);
		if (wd[i] < 0) {
			int err = errno;

			if (i == 1)
				inotify_rm_watch(watch_fd, wd[0]);
			errno = err;
			return store_set_error(mb->error, error_r,
					       "inotify_add_watch(%s): %s",
					       path, strerror(err));
		}
	}
	id = watch_alloc();
	watches[id].dir = xstrdup(mb->dir);
	watches[id].refcount = 1;
	watches[id].wd[0] = wd[0];
	watches[id].wd[1] = wd[1];
	b = watch_hash(mb->dir);
	watches[id].hash_next = buckets[b];
	buckets[b] = id;
	watch_set_wd(wd[0], id);
	watch_set_wd(wd[1], id);
	*id_r = id;
	return 0;
}

void store_watch_remove(int id)
{
	struct watch *w;

	if (id < 0 || id >= watches_count || watches[id].dir == NULL)
		return;
	w = &watches[id];
	if (--w->refcount > 0)
		return;
	/* The same wd can be handed out again for another directory, so
	 * drop it from the kernel before forgetting it. */
	inotify_rm_watch(watch_fd, w->wd[0]);
	inotify_rm_watch(watch_fd, w->wd[1]);
	wd_ids[w->wd[0]] = wd_ids[w->wd[1]] = -1;
	for (int *p = &buckets[watch_hash(w->dir)]; *p >= 0;
	     p = &watches[*p].hash_next) {
		if (*p == id) {
			*p = w->hash_next;
			break;
		}
	}
	free(w->dir);
	memset(w, 0, sizeof(*w));
}

int store_watch_fd(void)
{
	watch_forget_forked();
	return watch_fd;
}

static void watch_mark_id(int id)
{
	if (id < 0 || watches[id].dir == NULL || watches[id].is_pending)
		return;
	watches[id].is_pending = true;
	pending[pending_count++] = id;
}

/* Marks the watches named in one buffer of events. */
static void watch_mark(const char *buf, ssize_t len)
{
	const struct inotify_event *ev;

	for (ssize_t off = 0; off + (ssize_t)sizeof(*ev) <= len;
	     off += (ssize_t)sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)(const void *)(buf + off);
		if ((ev->mask & IN_Q_OVERFLOW) != 0) {
			/* Events lost: report everything. */
			for (int i = 0; i < watches_count; i++)
				watch_mark_id(i);
			continue;
		}
		if (ev->wd >= 0 && ev->wd < wd_ids_cap)
			watch_mark_id(wd_ids[ev->wd]);
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
	/* cb may add or remove watches: take the list first. */
	while (pending_count > 0) {
		int id = pending[--pending_count];

		if (id >= watches_count || !watches[id].is_pending)
			continue;
		watches[id].is_pending = false;
		n++;
		cb(id, ctx);
	}
	return n;
}
