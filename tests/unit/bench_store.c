/* bench_store.c: not a test (no pass/fail, not built by `make`): measures
 * the IMAP-facing store paths on a 100,000-message Maildir under /tmp:
 * SELECT of a warm mailbox (open with STORE_OPEN_NO_NAMES), a no-change
 * sync, view bytes per message, STORE 1:* as one batch (the command, then
 * the deferred renames flushed in slices of 500) vs one transaction per
 * message; then the memory of many open users/views (1,000 users with a
 * 20-message INBOX, as idle POP3/IMAP sessions hold them) and the cost of
 * reopening an evicted LMDB environment. Build and run:
 *   gcc -O2 $CF -Itests/unit -o /tmp/bench_store tests/unit/bench_store.c \
 *       src/store/STAR.c src/lib/{xmalloc,log,strnum}.c (STAR = *) $(pkg-config --libs lmdb)
 *   /tmp/bench_store [messages] */
#include "store/store.h"
#include "store/store_private.h"
#include "conf/config.h"
#include "lib/xmalloc.h"

#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char bench_dir[256];

char *config_mail_path(const struct settings *set, const char *user)
{
	(void)set;
	return xasprintf("%s/%s", bench_dir, user);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int rm_cb(const char *path, const struct stat *st, int type,
		 struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;
	return remove(path);
}

static void age_dirs(const char *root)
{
	static const char *const subs[] = { "new", "cur" };
	struct timespec ts[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	char path[512];

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, subs[i]);
		utimensat(AT_FDCWD, path, ts, 0);
	}
}

static void die(const char *what, const char *error)
{
	printf("%s: %s\n", what, error);
	exit(1);
}

/* Runs the deferred renames the way the IMAP event loop will: slices
 * of 500 until none remain. */
static void flush_timed(struct store_mailbox *mb, uint32_t n)
{
	const char *error;
	double t = now_ms(), worst = 0, s;
	unsigned slices = 0;
	int left;

	do {
		s = now_ms();
		left = store_mailbox_flush_renames(mb, 500, &error);
		s = now_ms() - s;
		worst = s > worst ? s : worst;
		slices++;
	} while (left > 0);
	if (left < 0)
		die("flush", error);
	printf("  flush of %u renames: %.0f ms in %u slices of 500 "
	       "(longest slice %.1f ms)\n", n, now_ms() - t, slices, worst);
}

static long pss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "Pss: %ld kB", &kb) == 1)
			break;
	}
	if (f != NULL)
		fclose(f);
	return kb;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (d != NULL && readdir(d) != NULL)
		n++;
	if (d != NULL)
		closedir(d);
	return n;
}

static size_t heap_bytes(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

#define MANY_USERS 1000
#define MANY_MSGS 20

/* MANY_USERS users with MANY_MSGS messages each, all open at once with
 * their INBOX view (POP3 mode: names), as idle sessions hold them. */
static void bench_many_users(const struct settings *set)
{
	static struct store_user *users[MANY_USERS];
	static struct store_mailbox *boxes[MANY_USERS];
	const char *error;
	char name[32];
	long pss0;
	size_t heap0;
	int fds0;
	double t;

	for (int i = 0; i < MANY_USERS; i++) {
		struct store_delivery *d;

		snprintf(name, sizeof(name), "many%d", i);
		if (store_user_open(set, name, &users[i], &error) < 0)
			die("user", error);
		for (int j = 0; j < MANY_MSGS; j++) {
			if (store_delivery_begin(users[i], "INBOX", &d,
						 &error) < 0 ||
			    store_delivery_write(d, "Subject: x\n\nbody\n",
						 17, &error) < 0 ||
			    store_delivery_commit(&d, 0, 0, NULL, &error) < 0)
				die("deliver", error);
		}
		store_user_close(&users[i]);
	}
	malloc_trim(0);
	pss0 = pss_kb();
	heap0 = heap_bytes();
	fds0 = count_fds();
	t = now_ms();
	for (int i = 0; i < MANY_USERS; i++) {
		snprintf(name, sizeof(name), "many%d", i);
		if (store_user_open(set, name, &users[i], &error) < 0 ||
		    store_mailbox_open(users[i], "INBOX", &boxes[i],
				       &error) < 0 ||
		    store_mailbox_lock_pop3(boxes[i], &error) < 0)
			die("open", error);
	}
	t = now_ms() - t;
	printf("%d users open, INBOX of %d msgs each (POP3 mode, locked): "
	       "%.1f KB PSS, %.0f B heap, %.2f fds per user; "
	       "%u LMDB envs open; login+open %.3f ms each\n",
	       MANY_USERS, MANY_MSGS,
	       (double)(pss_kb() - pss0) / MANY_USERS,
	       (double)(heap_bytes() - heap0) / MANY_USERS,
	       (double)(count_fds() - fds0) / MANY_USERS,
	       store_index_open_env_count(), t / MANY_USERS);
	/* every call on an evicted user reopens its environment */
	unsigned long opens = store_index_env_opens;
	t = now_ms();
	for (int i = 0; i < MANY_USERS; i++) {
		if (store_mailbox_sync(boxes[i], &error) < 0)
			die("sync", error);
	}
	t = now_ms() - t;
	printf("sync of each (env evicted, reopened): %.3f ms each, "
	       "%lu reopens\n", t / MANY_USERS,
	       store_index_env_opens - opens);
	t = now_ms();
	for (int r = 0; r < MANY_USERS; r++) {
		if (store_mailbox_sync(boxes[0], &error) < 0)
			die("sync", error);
	}
	printf("sync of one (env cached): %.3f ms each\n",
	       (now_ms() - t) / MANY_USERS);
	for (int i = 0; i < MANY_USERS; i++) {
		store_mailbox_close(&boxes[i]);
		store_user_close(&users[i]);
	}
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)atoi(argv[1]) : 100000;
	struct settings set;
	struct store_user *su;
	struct store_mailbox *mb;
	const char *error, *root;
	char path[512];
	double t, best = 1e9;
	uint32_t *uids;

	memset(&set, 0, sizeof(set));
	snprintf(bench_dir, sizeof(bench_dir), "/tmp/heron-bench-XXXXXX");
	if (mkdtemp(bench_dir) == NULL)
		return 1;
	if (store_user_open(&set, "u", &su, &error) < 0)
		die("user", error);
	root = store_user_root(su);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path),
			 "%s/cur/%u.M%06uP1Q%u.bench,S=12,W=13:2,", root,
			 1000000000 + i, i % 1000000, i);
		int fd = open(path, O_WRONLY | O_CREAT, 0600);
		if (fd < 0 || write(fd, "Subject: x\n\n", 12) != 12)
			return 1;
		close(fd);
	}
	age_dirs(root);
	t = now_ms();
	if (store_mailbox_open(su, "INBOX", &mb, &error) < 0)
		die("open", error);
	printf("initial index build of %u files: %.0f ms\n", n, now_ms() - t);
	if (store_mailbox_sync(mb, &error) < 0)	/* records the mtimes */
		die("sync", error);
	store_mailbox_close(&mb);

	for (int r = 0; r < 5; r++) {
		t = now_ms();
		if (store_mailbox_open_flags(su, "INBOX", STORE_OPEN_NO_NAMES,
					     &mb, &error) < 0)
			die("open", error);
		t = now_ms() - t;
		best = t < best ? t : best;
		store_mailbox_close(&mb);
	}
	printf("SELECT (open, NO_NAMES) warm, %u msgs: best of 5 %.2f ms\n",
	       n, best);
	best = 1e9;
	for (int r = 0; r < 5; r++) {
		t = now_ms();
		if (store_mailbox_open(su, "INBOX", &mb, &error) < 0)
			die("open", error);
		t = now_ms() - t;
		best = t < best ? t : best;
		store_mailbox_close(&mb);
	}
	printf("open with names (POP3 mode) warm: best of 5 %.2f ms\n", best);

	struct mallinfo2 m0 = mallinfo2();
	store_mailbox_open_flags(su, "INBOX", STORE_OPEN_NO_NAMES, &mb, &error);
	struct mallinfo2 m1 = mallinfo2();
	printf("view memory NO_NAMES: %.1f bytes/message\n",
	       (double)(m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd) / n);
	t = now_ms();
	for (int r = 0; r < 1000; r++)
		store_mailbox_sync(mb, &error);
	printf("no-change sync: %.3f ms each\n", (now_ms() - t) / 1000);
	store_mailbox_close(&mb);
	m0 = mallinfo2();
	store_mailbox_open(su, "INBOX", &mb, &error);
	m1 = mallinfo2();
	printf("view memory with names: %.1f bytes/message\n",
	       (double)(m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd) / n);
	store_mailbox_close(&mb);

	store_mailbox_open_flags(su, "INBOX", STORE_OPEN_NO_NAMES, &mb, &error);
	uids = xcalloc(n, sizeof(*uids));
	for (uint32_t i = 0; i < n; i++)
		uids[i] = store_mailbox_msg(mb, i)->uid;
	t = now_ms();
	if (store_msgs_update_flags(mb, uids, n, STORE_FLAGS_ADD,
				    STORE_FLAG_SEEN, 0, 0, NULL, &error) < 0)
		die("store", error);
	printf("STORE 1:* +FLAGS (\\Seen), one txn, %u msgs: %.0f ms "
	       "(command)\n", n, now_ms() - t);
	flush_timed(mb, n);
	t = now_ms();
	if (store_msgs_update_flags(mb, uids, n, STORE_FLAGS_ADD, 0,
				    UINT64_C(1) << 40, 0, NULL, &error) < 0)
		die("store", error);
	printf("STORE 1:* +FLAGS (kw40, no rename), one txn: %.0f ms\n",
	       now_ms() - t);
	uint32_t k = n < 1000 ? n : 1000;
	t = now_ms();
	for (uint32_t i = 0; i < k; i++) {
		uint64_t ms;
		bool ch;

		if (store_msg_update_flags(mb, uids[i], STORE_FLAGS_REMOVE,
					   STORE_FLAG_SEEN, 0, 0, &ms, &ch,
					   &error) < 0)
			die("store1", error);
	}
	t = now_ms() - t;
	printf("STORE -FLAGS one txn per message: %u msgs %.0f ms "
	       "(%.2f ms each; x%u = %.0f ms)\n", k, t, t / k, n,
	       t / k * n);
	flush_timed(mb, k);
	free(uids);
	store_mailbox_close(&mb);
	store_user_close(&su);
	bench_many_users(&set);
	nftw(bench_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
