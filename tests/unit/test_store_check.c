/* test_store_check.c: index self-healing (issue 4 item 3) and the check /
 * rebuild / force-resync calls of store.h. Table-driven: each row damages
 * a user's store in one way (index deleted, truncated, zeroed, garbage,
 * random bytes in data pages, heron-uidlist torn or lost, files moved in
 * or out of the Maildir by other tools), then reopens it and checks that
 * UIDVALIDITY and the UIDs of the files still there are kept, that new
 * files get new UIDs above every UID handed out before, and that removed
 * files are gone. Each row runs in a child process, so that a crash (a
 * SIGBUS from a truncated map, a SIGSEGV from a garbage page) is reported
 * as that row's failure instead of ending the suite. */
#include "test.h"
#include "store_fixture.h"
#include "store/store.h"
#include "store/store_private.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T_IDX(cond, i) test_assert_idx(cond, (int)(i))
#define MSGS_PER_BOX 12
#define STATE_MAX 16384

static const char *const boxes[] = { "INBOX", "Work", "Work/Old" };
#define N_BOXES (sizeof(boxes) / sizeof(boxes[0]))

/* Per mailbox: UIDVALIDITY and the "uid=basename" list before damage. */
struct box_state {
	uint32_t uidvalidity, uidnext, count;
	uint32_t uids[MSGS_PER_BOX * 2];
	char names[MSGS_PER_BOX * 2][64];
	uint32_t flags[MSGS_PER_BOX * 2];
};

static struct box_state before[N_BOXES];

static struct store_mailbox *mbox_open(struct store_user *su,
				       const char *name)
{
	struct store_mailbox *mb = NULL;
	const char *error;

	if (store_mailbox_open(su, name, &mb, &error) < 0) {
		printf("store_mailbox_open(%s): %s\n", name, error);
		return NULL;
	}
	return mb;
}

static int deliver(struct store_user *su, const char *mailbox, int n)
{
	struct store_delivery *d;
	const char *error;
	char body[256];
	uint32_t uid;
	int len;

	len = snprintf(body, sizeof(body),
		       "Subject: message %d of %s\n\nbody %d\n", n, mailbox,
		       n);
	if (store_delivery_begin(su, mailbox, &d, &error) < 0 ||
	    store_delivery_write(d, body, (size_t)len, &error) < 0 ||
	    store_delivery_commit(&d, 0, 0, &uid, &error) < 0) {
		printf("deliver: %s\n", error);
		return -1;
	}
	return 0;
}

static void box_state_get(struct store_mailbox *mb, struct box_state *s)
{
	memset(s, 0, sizeof(*s));
	s->uidvalidity = store_mailbox_uidvalidity(mb);
	s->uidnext = store_mailbox_uidnext(mb);
	s->count = store_mailbox_count(mb);
	for (uint32_t i = 0; i < s->count && i < MSGS_PER_BOX * 2; i++) {
		const struct store_msg *m = store_mailbox_msg(mb, i);

		s->uids[i] = m->uid;
		s->flags[i] = m->flags;
		snprintf(s->names[i], sizeof(s->names[i]), "%s", m->basename);
	}
}

/* A user with three mailboxes of MSGS_PER_BOX messages, some expunged
 * (also the highest UID, so UIDNEXT is above every file), some flagged
 * (renames flushed by close, so file names carry the flags). */
static struct store_user *populate(void)
{
	struct store_user *su = store_fixture_user("ann");
	const char *error;

	for (size_t b = 0; b < N_BOXES; b++) {
		struct store_mailbox *mb;
		uint32_t exp[] = { 2, 7, MSGS_PER_BOX };

		if (b > 0 && store_mailbox_create(su, boxes[b], &error) < 0)
			abort();
		for (int i = 0; i < MSGS_PER_BOX; i++) {
			if (deliver(su, boxes[b], i) < 0)
				abort();
		}
		if ((mb = mbox_open(su, boxes[b])) == NULL)
			abort();
		if (store_mailbox_expunge(mb, exp, 3, &error) < 0 ||
		    store_msg_set_flags(mb, 3, STORE_FLAG_SEEN, &error) < 0 ||
		    store_msg_set_flags(mb, 5, STORE_FLAG_FLAGGED |
					STORE_FLAG_ANSWERED, &error) < 0)
			abort();
		store_mailbox_close(&mb);
		mb = mbox_open(su, boxes[b]);
		box_state_get(mb, &before[b]);
		store_mailbox_close(&mb);
	}
	return su;
}

static char *root_path(const char *rel)
{
	return xasprintf("%s/ann/%s", test_dir, rel);
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) < 0 ? -1 : st.st_size;
}

static void overwrite(const char *path, off_t off, const void *data,
		      size_t len)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || pwrite(fd, data, len, off) != (ssize_t)len)
		abort();
	close(fd);
}

/* ---- damage ---- */

enum damage {
	DMG_NONE,
	DMG_INDEX_DELETE,
	DMG_INDEX_AND_LOCK_DELETE,
	DMG_INDEX_ZERO_LENGTH,
	DMG_INDEX_GARBAGE,
	DMG_INDEX_TRUNCATE_HALF,
	DMG_INDEX_TRUNCATE_PAGES,	/* meta pages only */
	DMG_INDEX_RANDOM_BYTES,		/* arg = seed */
	DMG_INDEX_ZERO_PAGE,		/* arg = page number */
	DMG_INDEX_META_GARBAGE,
	DMG_UIDLIST_TRUNCATE,		/* index deleted too */
	DMG_UIDLIST_GARBAGE_HEADER,	/* index kept */
	DMG_UIDLIST_GARBAGE_HEADER_NO_INDEX,
	DMG_UIDLIST_DELETE,		/* index kept */
	DMG_UIDLIST_JUNK_LINES,		/* index deleted too */
};

static void damage_random(const char *path, unsigned seed)
{
	off_t size = file_size(path);
	unsigned char junk[64];

	srand(seed);
	/* data pages only: pages 0 and 1 are LMDB's meta pages */
	for (int n = 0; n < 8 && size > 3 * 4096; n++) {
		off_t off = 2 * 4096 + (off_t)((unsigned)rand() %
					       (unsigned)(size - 2 * 4096 -
							  sizeof(junk)));

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (unsigned char)rand();
		overwrite(path, off, junk, sizeof(junk));
	}
}

static void uidlist_damage(enum damage d)
{
	for (size_t b = 0; b < N_BOXES; b++) {
		char *key = b == 0 ? xstrdup("") :
			maildir_name_to_key(boxes[b]);
		char *path = xasprintf("%s/ann/%s%s%s", test_dir, key,
				       b == 0 ? "" : "/", STORE_UIDLIST_NAME);

		if (d == DMG_UIDLIST_TRUNCATE) {
			/* cut inside the last third: a torn line */
			if (truncate(path, file_size(path) * 2 / 3 + 1) < 0)
				abort();
		} else if (d == DMG_UIDLIST_DELETE) {
			unlink(path);
		} else if (d == DMG_UIDLIST_JUNK_LINES) {
			int fd = open(path, O_WRONLY | O_APPEND);
			static const char junk[] = "\x01\x02 zz\nabc def\n"
				"12x name\n 5 lead\n0 zero\n\xff\xfe\n";

			if (fd < 0 || write(fd, junk, sizeof(junk) - 1) < 0)
				abort();
			close(fd);
		} else {
			overwrite(path, 0, "#$%", 3);
		}
		free(path);
		free(key);
	}
}

static void damage(enum damage d, unsigned arg)
{
	char *idx = root_path(STORE_INDEX_NAME);
	char *lock = root_path(STORE_INDEX_NAME "-lock");
	char junk[20000];

	switch (d) {
	case DMG_NONE:
		break;
	case DMG_INDEX_DELETE:
		unlink(idx);
		break;
	case DMG_INDEX_AND_LOCK_DELETE:
		unlink(idx);
		unlink(lock);
		break;
	case DMG_INDEX_ZERO_LENGTH:
		if (truncate(idx, 0) < 0)
			abort();
		break;
	case DMG_INDEX_GARBAGE:
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (char)(i * 131 + 7);
		unlink(idx);
		break;
	case DMG_INDEX_TRUNCATE_HALF:
		if (truncate(idx, file_size(idx) / 2) < 0)
			abort();
		break;
	case DMG_INDEX_TRUNCATE_PAGES:
		if (truncate(idx, 2 * 4096) < 0)
			abort();
		break;
	case DMG_INDEX_RANDOM_BYTES:
		damage_random(idx, arg);
		break;
	case DMG_INDEX_ZERO_PAGE:
		memset(junk, 0, 4096);
		if ((off_t)(arg + 1) * 4096 <= file_size(idx))
			overwrite(idx, (off_t)arg * 4096, junk, 4096);
		break;
	case DMG_INDEX_META_GARBAGE:
		memset(junk, 0x5a, 8192);
		overwrite(idx, 0, junk, 8192);
		break;
	case DMG_UIDLIST_TRUNCATE:
	case DMG_UIDLIST_JUNK_LINES:
	case DMG_UIDLIST_GARBAGE_HEADER_NO_INDEX:
		unlink(idx);
		uidlist_damage(d);
		break;
	case DMG_UIDLIST_GARBAGE_HEADER:
	case DMG_UIDLIST_DELETE:
		uidlist_damage(d);
		break;
	}
	if (d == DMG_INDEX_GARBAGE) {
		int fd = open(idx, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd < 0 || write(fd, junk, sizeof(junk)) < 0)
			abort();
		close(fd);
	}
	free(idx);
	free(lock);
}

/* ---- checks after reopening ---- */

struct expect {
	bool uidvalidity_kept;	/* false: a new one is allowed */
	bool all_uids_kept;	/* false: files may get new UIDs (lines of
				   heron-uidlist lost) */
	bool uidnext_may_drop;	/* heron-uidlist's last lines and the index
				   both lost: UIDs of messages expunged since
				   the file's header was written are unknown */
	bool detected;		/* store_index_check must report it */
};

static int find_name(const struct box_state *s, const char *name)
{
	for (uint32_t i = 0; i < s->count; i++) {
		if (strcmp(s->names[i], name) == 0)
			return (int)i;
	}
	return -1;
}

/* After reopening: every file is there once; the UIDs of files that
 * kept theirs are unchanged; files with new UIDs got them above the old
 * UIDNEXT; UIDNEXT never went down. */
static void check_box(struct store_user *su, size_t b,
		      const struct expect *ex, int row)
{
	const struct box_state *s = &before[b];
	struct store_mailbox *mb = mbox_open(su, boxes[b]);
	struct box_state now;

	T_IDX(mb != NULL, row);
	if (mb == NULL)
		return;
	box_state_get(mb, &now);
	store_mailbox_close(&mb);
	T_IDX(now.count == s->count, row);
	if (getenv("CHECK_DEBUG") != NULL) {
		for (uint32_t i = 0; i < s->count || i < now.count; i++)
			printf("  %zu: %u=%s | %u=%s\n", b, s->uids[i],
			       s->names[i], now.uids[i], now.names[i]);
	}
	if (ex->uidvalidity_kept)
		T_IDX(now.uidvalidity == s->uidvalidity, row);
	if (now.uidvalidity == s->uidvalidity && !ex->uidnext_may_drop)
		T_IDX(now.uidnext >= s->uidnext, row);
	for (uint32_t i = 0; i < now.count; i++) {
		int j = find_name(s, now.names[i]);

		T_IDX(j >= 0, row);
		if (j < 0)
			continue;
		if (ex->all_uids_kept || now.uids[i] < s->uidnext)
			T_IDX(now.uids[i] == s->uids[j], row);
		if (now.uids[i] != s->uids[j] &&
		    now.uidvalidity == s->uidvalidity &&
		    !ex->uidnext_may_drop)
			T_IDX(now.uids[i] >= s->uidnext, row);
	}
}

static int check_all(const struct expect *ex, int row)
{
	struct store_user *su = store_fixture_user("ann");

	for (size_t b = 0; b < N_BOXES; b++)
		check_box(su, b, ex, row);
	store_user_close(&su);
	return test_cur_failed;
}

/* ---- store_index_check in a child (a crash counts as found) ---- */

static void report_quiet(const char *mailbox, const char *text,
			 bool is_problem, void *ctx)
{
	(void)ctx;
	if (getenv("CHECK_DEBUG") != NULL)
		printf("    check: %s %s: %s\n",
		       is_problem ? "problem" : "note", mailbox, text);
}

/* Problems found (a crash: 1000), or -1 when the check failed to run. */
static int check_index(void)
{
	const char *error;
	int n = store_index_check_isolated(&test_set, "ann", report_quiet,
					   NULL, &error);

	return n == STORE_CHECK_CRASHED ? 1000 : n;
}

static int rebuild_all(bool replace)
{
	const char *error;
	int ret;

	(void)replace;
	if ((ret = store_index_repair(&test_set, "ann", &error)) < 0)
		printf("store_index_repair: %s\n", error);
	return ret;
}

/* ---- the table ---- */

static const struct damage_case {
	const char *name;
	enum damage damage;
	unsigned arg;
	struct expect ex;
} damage_cases[] = {
	{ "none", DMG_NONE, 0, { true, true, false, false } },
	{ "index deleted", DMG_INDEX_DELETE, 0, { true, true, false, true } },
	{ "index and lock deleted", DMG_INDEX_AND_LOCK_DELETE, 0,
	  { true, true, false, true } },
	{ "index zero length", DMG_INDEX_ZERO_LENGTH, 0,
	  { true, true, false, true } },
	{ "index garbage", DMG_INDEX_GARBAGE, 0, { true, true, false, true } },
	{ "index truncated to half", DMG_INDEX_TRUNCATE_HALF, 0,
	  { true, true, false, true } },
	{ "index truncated to meta pages", DMG_INDEX_TRUNCATE_PAGES, 0,
	  { true, true, false, true } },
	{ "index meta pages garbage", DMG_INDEX_META_GARBAGE, 0,
	  { true, true, false, true } },
	{ "index page 2 zeroed", DMG_INDEX_ZERO_PAGE, 2,
	  { true, true, false, false } },
	{ "index page 3 zeroed", DMG_INDEX_ZERO_PAGE, 3,
	  { true, true, false, false } },
	{ "index page 4 zeroed", DMG_INDEX_ZERO_PAGE, 4,
	  { true, true, false, false } },
	{ "index page 5 zeroed", DMG_INDEX_ZERO_PAGE, 5,
	  { true, true, false, false } },
	{ "index page 6 zeroed", DMG_INDEX_ZERO_PAGE, 6,
	  { true, true, false, false } },
	{ "index page 8 zeroed", DMG_INDEX_ZERO_PAGE, 8,
	  { true, true, false, false } },
	/* the header's N is kept current by every append (uidlist.c):
	 * UIDNEXT does not drop although the last lines are lost */
	{ "uidlist truncated, index lost", DMG_UIDLIST_TRUNCATE, 0,
	  { true, false, false, true } },
	{ "uidlist header garbage, index kept", DMG_UIDLIST_GARBAGE_HEADER,
	  0, { true, true, false, true } },
	{ "uidlist header garbage, index lost",
	  DMG_UIDLIST_GARBAGE_HEADER_NO_INDEX, 0,
	  { false, true, false, true } },
	{ "uidlist deleted, index kept", DMG_UIDLIST_DELETE, 0,
	  { true, true, false, true } },
	{ "uidlist junk lines, index lost", DMG_UIDLIST_JUNK_LINES, 0,
	  { true, true, false, true } },
};

/* Runs fn(row) in a child; a crash or non-zero exit fails the row. */
static void run_child(int row, int (*fn)(int row))
{
	pid_t pid;
	int status;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		abort();
	if (pid == 0) {
		int failed;

		test_cur_failed = 0;
		failed = fn(row);
		fflush(stdout);
		_exit(failed != 0 ? 1 : 0);
	}
	if (waitpid(pid, &status, 0) < 0)
		abort();
	if (WIFSIGNALED(status))
		printf("  row %d (%s): child killed by signal %d\n", row,
		       damage_cases[row].name, WTERMSIG(status));
	T_IDX(WIFEXITED(status) && WEXITSTATUS(status) == 0, row);
}

static int damage_row(int row)
{
	const struct damage_case *c = &damage_cases[row];

	int found;

	damage(c->damage, c->arg);
	found = check_index();
	T_IDX(found >= 0, row);
	if (c->ex.detected)
		T_IDX(found > 0, row);
	else if (c->damage == DMG_NONE)
		T_IDX(found == 0, row);
	/* Opening repairs what the server notices. Random bytes inside
	 * pages can also leave records that LMDB reads without complaint
	 * (it keeps no checksums): there the admin's check finds them and
	 * the rebuild must come before the next open. */
	if (c->damage != DMG_INDEX_RANDOM_BYTES || found == 0)
		check_all(&c->ex, row);
	/* the rebuild on demand repairs the rest (heron-uidlist) */
	T_IDX(rebuild_all(found >= 1000) == 0, row);
	check_all(&c->ex, row);
	T_IDX(check_index() == 0, row);
	return test_cur_failed;
}

/* Random junk in data pages (seeded): what LMDB reads without complaint
 * may go unnoticed by the server, but the check finds what matters and
 * the rebuild keeps every UID. */
static int random_row(int seed)
{
	static const struct expect ex = { true, true, false, false };
	int found;

	damage(DMG_INDEX_RANDOM_BYTES, (unsigned)seed);
	found = check_index();
	if (found > 0)
		T_IDX(rebuild_all(found >= 1000) == 0, seed);
	check_all(&ex, seed);
	T_IDX(check_index() == 0, seed);
	return test_cur_failed;
}

static void test_random_damage(void)
{
	for (int seed = 1; seed <= 12; seed++) {
		struct store_user *su;
		pid_t pid;
		int status;

		store_fixture_setup("heron-check");
		su = populate();
		store_user_close(&su);
		fflush(stdout);
		if ((pid = fork()) == 0) {
			int failed;

			test_cur_failed = 0;
			failed = random_row(seed);
			fflush(stdout);
			_exit(failed ? 1 : 0);
		}
		waitpid(pid, &status, 0);
		if (WIFSIGNALED(status))
			printf("  seed %d: killed by signal %d\n", seed,
			       WTERMSIG(status));
		T_IDX(WIFEXITED(status) && WEXITSTATUS(status) == 0, seed);
		teardown();
	}
}

static void test_damage(void)
{
	for (size_t i = 0; i < sizeof(damage_cases) / sizeof(damage_cases[0]);
	     i++) {
		struct store_user *su;

		store_fixture_setup("heron-check");
		su = populate();
		store_user_close(&su);
		run_child((int)i, damage_row);
		teardown();
	}
}

/* ---- files moved in and out by other tools ---- */

static char *file_of(size_t b, uint32_t uid)
{
	char *key = b == 0 ? xstrdup("") : maildir_name_to_key(boxes[b]);
	char *dir = xasprintf("%s/ann/%s", test_dir, key);
	char rel[512], *path = NULL;

	for (uint32_t i = 0; i < before[b].count; i++) {
		const char *bn = before[b].names[i];

		if (before[b].uids[i] == uid &&
		    maildir_find(dir, bn, strlen(bn), rel, sizeof(rel)) == 1)
			path = xasprintf("%s/%s", dir, rel);
	}
	free(dir);
	free(key);
	return path;
}

static uint32_t uid_of(const struct box_state *s, const char *name)
{
	int j = find_name(s, name);

	return j < 0 ? 0 : s->uids[j];
}

static void test_external_changes(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	struct box_state inbox, work;
	const char *error;
	char *p, *q;

	store_fixture_setup("heron-check");
	su = populate();
	/* rm: uid 4 of INBOX */
	p = file_of(0, 4);
	test_assert(p != NULL && unlink(p) == 0);
	free(p);
	/* mutt marks uid 5 seen: ":2,FR" -> ":2,FRS" */
	p = file_of(0, 5);
	q = xasprintf("%sS", p);
	test_assert(rename(p, q) == 0);
	free(p);
	free(q);
	/* a file dropped into new/ (delivered by another MDA) */
	p = xasprintf("%s/ann/tmp/1600000000.ext.host", test_dir);
	q = xasprintf("%s/ann/new/1600000000.ext.host", test_dir);
	{
		FILE *f = fopen(p, "w");

		test_assert(f != NULL);
		fputs("Subject: from elsewhere\n\nbody\n", f);
		fclose(f);
	}
	test_assert(rename(p, q) == 0);
	free(p);
	free(q);
	/* uid 6 of Work moved into INBOX's cur/ with flags */
	p = file_of(1, 6);
	test_assert(p != NULL);
	if (p != NULL) {
		const char *bn = strrchr(p, '/') + 1;

		q = xasprintf("%s/ann/cur/%.*s:2,F", test_dir,
			      (int)strcspn(bn, ":"), bn);
		test_assert(rename(p, q) == 0);
		free(q);
	}
	free(p);
	test_assert(store_mailbox_force_resync(su, "INBOX", &error) == 0);
	test_assert(store_mailbox_force_resync(su, "Work", &error) == 0);
	mb = mbox_open(su, "INBOX");
	box_state_get(mb, &inbox);
	store_mailbox_close(&mb);
	mb = mbox_open(su, "Work");
	box_state_get(mb, &work);
	store_mailbox_close(&mb);
	store_user_close(&su);
	test_assert(inbox.uidvalidity == before[0].uidvalidity);
	test_assert(inbox.count == before[0].count + 1);
	test_assert(work.count == before[1].count - 1);
	for (uint32_t i = 0; i < before[0].count; i++) {
		uint32_t uid = uid_of(&inbox, before[0].names[i]);

		if (before[0].uids[i] == 4)
			test_assert(uid == 0);
		else
			test_assert_idx(uid == before[0].uids[i], i);
		if (before[0].uids[i] == 5)
			test_assert((inbox.flags[find_name(&inbox,
				before[0].names[i])] & STORE_FLAG_SEEN) != 0);
	}
	for (uint32_t i = 0; i < inbox.count; i++) {
		if (find_name(&before[0], inbox.names[i]) < 0)
			test_assert_idx(inbox.uids[i] >= before[0].uidnext,
					i);
	}
	for (uint32_t i = 0; i < before[1].count; i++) {
		if (before[1].uids[i] == 6)
			test_assert(uid_of(&work, before[1].names[i]) == 0);
	}
	test_assert(check_index() == 0);
	teardown();
}

/* ---- message records lost, files still there ---- */

/* Deletes the records (message and basename) of uids of mailbox b with
 * LMDB, leaving the mailbox record (count, UIDNEXT) as it was. */
static void drop_records(struct store_user *su, size_t b,
			 const uint32_t *uids, size_t n)
{
	char *key = b == 0 ? xstrdup("INBOX") : maildir_name_to_key(boxes[b]);
	struct index_mbox rec, scratch;
	MDB_txn *txn;

	test_assert(store_index_txn_begin(su->index, 0, &txn) == 0);
	test_assert(index_get_mbox(su->index, txn, key, &rec) == 0);
	scratch = rec;
	for (size_t i = 0; i < n; i++)
		test_assert_idx(index_del_msg(su->index, txn, &scratch,
					      uids[i]) == 0, i);
	test_assert(store_txn_commit(txn) == 0);
	free(key);
}

/* A file with this basename in b's cur/, mtime an hour ago. */
static void put_old_file(size_t b, const char *bn)
{
	char *key = b == 0 ? xstrdup("") : maildir_name_to_key(boxes[b]);
	char *path = xasprintf("%s/ann/%s%scur/%s:2,S", test_dir, key,
			       b == 0 ? "" : "/", bn);
	struct timespec ts[2] = { { time(NULL) - 3600, 0 },
				  { time(NULL) - 3600, 0 } };
	FILE *f = fopen(path, "w");

	test_assert(f != NULL);
	if (f != NULL) {
		fputs("Subject: back again\n\nbody\n", f);
		fclose(f);
	}
	test_assert(utimensat(AT_FDCWD, path, ts, 0) == 0);
	free(path);
	free(key);
}

/* Index damage that loses message records while their files stay: the
 * next sync gives the files their old UIDs back from heron-uidlist (also
 * flagged ones, whose names carry the flags), a file delivered meanwhile
 * by another MDA gets a new one, and a file whose UID was expunged comes
 * back under a new UID (RFC 3501 2.3.1.1). */
static void test_lost_records(void)
{
	static const uint32_t lost[] = { 1, 3, 5, 8, 11 }, gone = 4;
	struct store_user *su;
	struct store_mailbox *mb;
	struct box_state ref, now;
	const char *error;
	char gone_bn[64] = "", *p, *q;

	store_fixture_setup("heron-check");
	su = populate();
	mb = mbox_open(su, "INBOX");
	for (uint32_t i = 0; mb != NULL && i < store_mailbox_count(mb); i++) {
		const struct store_msg *m = store_mailbox_msg(mb, i);

		if (m->uid == gone)
			snprintf(gone_bn, sizeof(gone_bn), "%s", m->basename);
	}
	test_assert(gone_bn[0] != '\0');
	test_assert(store_mailbox_expunge(mb, &gone, 1, &error) == 0);
	store_mailbox_close(&mb);
	mb = mbox_open(su, "INBOX");
	box_state_get(mb, &ref);
	store_mailbox_close(&mb);
	drop_records(su, 0, lost, sizeof(lost) / sizeof(lost[0]));
	drop_records(su, 1, lost, 2);
	/* another MDA delivers into INBOX (new/ changes: sync scans) */
	p = xasprintf("%s/ann/tmp/1900000000.ext2.host", test_dir);
	q = xasprintf("%s/ann/new/1900000000.ext2.host", test_dir);
	{
		FILE *f = fopen(p, "w");

		test_assert(f != NULL);
		if (f != NULL) {
			fputs("Subject: fresh\n\nbody\n", f);
			fclose(f);
		}
	}
	test_assert(rename(p, q) == 0);
	free(p);
	free(q);
	/* the expunged message's file comes back (old mtime) */
	put_old_file(0, gone_bn);
	test_assert(store_mailbox_force_resync(su, "Work", &error) == 0);
	mb = mbox_open(su, "INBOX");
	test_assert(mb != NULL);
	box_state_get(mb, &now);
	store_mailbox_close(&mb);
	test_assert(now.count == ref.count + 2);
	for (uint32_t i = 0; i < ref.count; i++)
		test_assert_idx(uid_of(&now, ref.names[i]) == ref.uids[i], i);
	for (uint32_t i = 0; i < now.count; i++) {
		if (find_name(&ref, now.names[i]) < 0)
			test_assert_idx(now.uids[i] >= ref.uidnext, i);
	}
	test_assert(uid_of(&now, gone_bn) >= ref.uidnext);
	for (uint32_t i = 0; i < ref.count; i++) {
		if (ref.uids[i] == 3)
			test_assert((now.flags[find_name(&now, ref.names[i])] &
				     STORE_FLAG_SEEN) != 0);
	}
	mb = mbox_open(su, "Work");
	test_assert(mb != NULL);
	box_state_get(mb, &now);
	store_mailbox_close(&mb);
	test_assert(now.count == before[1].count);
	for (uint32_t i = 0; i < before[1].count; i++)
		test_assert_idx(uid_of(&now, before[1].names[i]) ==
				before[1].uids[i], i);
	store_user_close(&su);
	test_assert(check_index() == 0);
	teardown();
}

/* ---- symlinks and other non-files in the Maildir ---- */

/* A symlink in cur/ (to a file the user may not read) is not indexed and
 * cannot be opened; nor can a message whose file was replaced by one, or
 * a directory in new/. */
static void test_symlinks(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	struct store_msg fake;
	const char *error;
	char *secret, *link, *dir, *msg_path;
	char *bn = NULL;
	FILE *f;

	store_fixture_setup("heron-check");
	su = store_fixture_user("ann");
	test_assert(deliver(su, "INBOX", 1) == 0 &&
		    deliver(su, "INBOX", 2) == 0);
	secret = xasprintf("%s/secret", test_dir);
	f = fopen(secret, "w");
	test_assert(f != NULL);
	if (f != NULL) {
		fputs("root:$6$hash:19000:0:99999:7:::\n", f);
		fclose(f);
	}
	link = xasprintf("%s/ann/cur/1700000000.evil.host:2,S", test_dir);
	test_assert(symlink(secret, link) == 0);
	dir = xasprintf("%s/ann/new/1700000001.dir.host", test_dir);
	test_assert(mkdir(dir, 0700) == 0);
	test_assert(store_mailbox_force_resync(su, "INBOX", &error) == 0);
	mb = mbox_open(su, "INBOX");
	test_assert(mb != NULL && store_mailbox_count(mb) == 2);
	for (uint32_t i = 0; mb != NULL && i < store_mailbox_count(mb); i++) {
		const struct store_msg *m = store_mailbox_msg(mb, i);

		test_assert_idx(strstr(m->basename, "evil") == NULL, i);
		test_assert_idx(strstr(m->basename, "dir") == NULL, i);
	}
	/* a view entry naming the link directly */
	memset(&fake, 0, sizeof(fake));
	fake.uid = 1;
	fake.path = (char *)"cur/1700000000.evil.host:2,S";
	errno = 0;
	test_assert(mb != NULL && store_msg_open(mb, &fake, &error) < 0 &&
		    errno == ELOOP);
	/* an indexed message's file replaced by a link under its name */
	if (mb != NULL) {
		const struct store_msg *m = store_mailbox_msg(mb, 0);

		bn = xstrdup(m->basename);
		msg_path = xasprintf("%s/ann/%s", test_dir, m->path);
		test_assert(unlink(msg_path) == 0 &&
			    symlink(secret, msg_path) == 0);
		errno = 0;
		test_assert(store_msg_open(mb, m, &error) < 0 &&
			    errno == ELOOP);
		free(msg_path);
		store_mailbox_close(&mb);
	}
	/* the next sync drops it: a link is no message */
	test_assert(store_mailbox_force_resync(su, "INBOX", &error) == 0);
	mb = mbox_open(su, "INBOX");
	test_assert(mb != NULL && store_mailbox_count(mb) == 1);
	for (uint32_t i = 0; mb != NULL && bn != NULL &&
	     i < store_mailbox_count(mb); i++)
		test_assert(strcmp(store_mailbox_msg(mb, i)->basename, bn));
	store_mailbox_close(&mb);
	store_user_close(&su);
	free(bn);
	free(dir);
	free(link);
	free(secret);
	teardown();
}

int main(void)
{
	log_set_level(getenv("CHECK_DEBUG") != NULL ? LOG_LEVEL_WARN :
		      (enum log_level)(LOG_LEVEL_ERROR + 1));
	test_run("damage", test_damage);
	test_run("random damage", test_random_damage);
	test_run("external changes", test_external_changes);
	test_run("lost message records", test_lost_records);
	test_run("symlinks", test_symlinks);
	return test_done("store_check");
}
