/* test_store_imap.c: the store features IMAP needs, on real files under a
 * mkdtemp() directory: the mtime fast path of sync, keywords (table,
 * letters in file names, dovecot-keywords), flag updates with modseqs and
 * UNCHANGEDSINCE, expunge history, \Recent, change reporting between two
 * views, mailbox delete/rename/list/subscriptions, copy, APPEND with
 * keywords, and inotify watches with a delivering child process. */
#include "test.h"
#include "store_fixture.h"
#include "store/store.h"
#include "store/store_private.h"
#include "conf/config.h"
#include "lib/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_IDX(cond, i) test_assert_idx(cond, (int)(i))




static void setup(void)
{
	store_fixture_setup("heron-simap");
}

static struct store_user *user_open(const char *user)
{
	return store_fixture_user(user);
}

static struct store_mailbox *mbox_open(struct store_user *su,
				       const char *name, unsigned flags)
{
	struct store_mailbox *mb = NULL;
	const char *error;

	if (store_mailbox_open_flags(su, name, flags, &mb, &error) < 0) {
		printf("store_mailbox_open(%s): %s\n", name, error);
		abort();
	}
	return mb;
}

static int deliver(struct store_user *su, const char *mailbox,
		   const char *body, uint32_t flags, uint32_t *uid_r)
{
	struct store_delivery *d;
	const char *error;

	if (store_delivery_begin(su, mailbox, &d, &error) < 0 ||
	    store_delivery_write(d, body, strlen(body), &error) < 0) {
		store_delivery_abort(&d);
		return -1;
	}
	return store_delivery_commit(&d, flags, 0, uid_r, &error);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		abort();
	close(fd);
}

/* Sets the mtime of <dir>/new and <dir>/cur to secs (long ago). */
static void age_dirs(const char *dir, time_t secs)
{
	static const char *const subs[] = { "new", "cur" };
	char path[512];

	for (int i = 0; i < 2; i++) {
		struct timespec ts[2] = { { secs, 0 }, { secs, 0 } };

		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		if (utimensat(AT_FDCWD, path, ts, 0) < 0)
			abort();
	}
}

static const char *msg_path(struct store_mailbox *mb, uint32_t uid)
{
	for (uint32_t i = 0; i < store_mailbox_count(mb); i++) {
		if (store_mailbox_msg(mb, i)->uid == uid)
			return store_mailbox_msg(mb, i)->path;
	}
	return NULL;
}

static void test_fast_sync(void)
{
	struct store_user *su = user_open("fast");
	struct store_mailbox *mb;
	const struct store_msg *first;
	const char *error, *root = store_user_root(su);
	char path[512];

	for (int i = 0; i < 3; i++)
		deliver(su, "INBOX", "x\n", 0, NULL);
	age_dirs(root, 1000000000);
	mb = mbox_open(su, "INBOX", 0);
	test_assert(store_mailbox_count(mb) == 3);
	/* The scan recorded the old mtimes: a file slipped in with the
	 * mtime put back is not seen, proving no readdir happens. */
	snprintf(path, sizeof(path), "%s/new/1000000001.hidden.host", root);
	write_file(path, "hidden\n");
	age_dirs(root, 1000000000);
	first = store_mailbox_msg(mb, 0);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 3);
	/* nor was the view rebuilt */
	test_assert(store_mailbox_msg(mb, 0) == first);
	/* Another (old) mtime: scanned. */
	age_dirs(root, 1000000005);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 4);
	/* A recent mtime is never trusted: always scanned. */
	snprintf(path, sizeof(path), "%s/new/1000000002.recent.host", root);
	write_file(path, "recent\n");
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 5);
	snprintf(path, sizeof(path), "%s/new/1000000003.recent.host", root);
	write_file(path, "recent2\n");
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 6);
	/* Index-only change by another view: refreshed without a scan. */
	age_dirs(root, 1000000010);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	struct store_mailbox *mb2 = mbox_open(su, "INBOX", 0);
	uint64_t modseq;
	bool changed;
	test_assert(store_msg_update_flags(mb2, 1, STORE_FLAGS_ADD, 0,
					   UINT64_C(1) << 40, 0, &modseq,
					   &changed, &error) == 0 && changed);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_msg(mb, 0)->keywords == UINT64_C(1) << 40);
	store_mailbox_close(&mb2);
	store_mailbox_close(&mb);
	store_user_close(&su);
}

static const struct {
	const char *name;
	int err;		/* 0 = valid */
} kw_names[] = {
	{ "$Junk", 0 }, { "Work", 0 }, { "NonJunk", 0 }, { "a b", EINVAL },
	{ "\\Seen", EINVAL }, { "x(", EINVAL }, { "", EINVAL },
	{ "caf\xc3\xa9", EINVAL }, { "x]", EINVAL }, { "w*", EINVAL },
};

static void test_keywords(void)
{
	struct store_user *su = user_open("kw");
	struct store_mailbox *mb;
	const char *const *names;
	const char *error, *root = store_user_root(su);
	unsigned idx, count;
	char path[600], buf[256];

	deliver(su, "INBOX", "k\n", 0, NULL);
	mb = mbox_open(su, "INBOX", 0);
	for (size_t i = 0; i < sizeof(kw_names) / sizeof(kw_names[0]); i++) {
		int ret = store_mailbox_keyword_index(mb, kw_names[i].name,
						      true, &idx, &error);
		T_IDX(kw_names[i].err == 0 ? ret == 0 && idx == i :
		      ret < 0 && errno == kw_names[i].err, i);
	}
	test_assert(store_mailbox_keyword_index(mb, "work", false, &idx,
						&error) == 0 && idx == 1);
	test_assert(store_mailbox_keyword_index(mb, "Other", false, &idx,
						&error) < 0 &&
		    errno == ENOENT);
	test_assert(store_mailbox_keyword_names(mb, &names, &count,
						&error) == 0 &&
		    count == 3 && strcmp(names[1], "Work") == 0);
	/* the Dovecot file */
	snprintf(path, sizeof(path), "%s/dovecot-keywords", root);
	int fd = open(path, O_RDONLY);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	buf[r > 0 ? r : 0] = '\0';
	test_assert_streq(buf, "0 $Junk\n1 Work\n2 NonJunk\n");
	/* keyword 1 goes into the file name as 'b' */
	uint64_t modseq;
	bool changed;
	test_assert(store_msg_update_flags(mb, 1, STORE_FLAGS_ADD,
					   STORE_FLAG_SEEN, 1u << 1, 0,
					   &modseq, &changed, &error) == 0);
	test_assert(store_mailbox_flush_renames(mb, 10, &error) == 0);
	const char *p = msg_path(mb, 1);
	test_assert(p != NULL && strlen(p) > 5 &&
		    strcmp(p + strlen(p) - 5, ":2,Sb") == 0);
	/* a MUA adds letter 'c' (NonJunk) */
	char from[600], to[640];
	snprintf(from, sizeof(from), "%s/%s", root, p);
	snprintf(to, sizeof(to), "%sc", from);
	test_assert(rename(from, to) == 0);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_msg(mb, 0)->keywords == 6);
	/* the 64 limit */
	for (int i = 3; i < STORE_KEYWORDS_MAX; i++) {
		snprintf(buf, sizeof(buf), "kw%d", i);
		T_IDX(store_mailbox_keyword_index(mb, buf, true, &idx,
						  &error) == 0 &&
		      idx == (unsigned)i, i);
	}
	test_assert(store_mailbox_keyword_index(mb, "onemore", true, &idx,
						&error) < 0 &&
		    errno == ENOSPC);
	store_mailbox_close(&mb);
	/* index lost: names 0..25 come back from dovecot-keywords */
	store_user_close(&su);
	snprintf(path, sizeof(path), "%s/kw/heron.index", test_dir);
	unlink(path);
	su = user_open("kw");
	mb = mbox_open(su, "INBOX", 0);
	test_assert(store_mailbox_keyword_names(mb, &names, &count,
						&error) == 0 &&
		    count == 26 && strcmp(names[2], "NonJunk") == 0);
	test_assert(store_mailbox_msg(mb, 0)->keywords == 6);
	store_mailbox_close(&mb);
	store_user_close(&su);
}

struct exp_rec {
	uint32_t uids[16];
	int n;
	uint64_t last_modseq;
};

static void exp_cb(uint32_t first, uint32_t last, uint64_t modseq,
		   void *ctx)
{
	struct exp_rec *e = ctx;

	for (uint32_t u = first; u <= last && e->n < 16; u++)
		e->uids[e->n++] = u;
	e->last_modseq = modseq;
}

static void test_update_flags(void)
{
	struct store_user *su = user_open("flags");
	struct store_mailbox *mb;
	struct store_update_result res[5];
	const char *error, *p;
	uint64_t modseq, hms;
	uint32_t uids[5] = { 1, 2, 3, 4, 99 };
	bool changed;
	char before[300];

	for (int i = 0; i < 4; i++)
		deliver(su, "INBOX", "f\n", 0, NULL);
	mb = mbox_open(su, "INBOX", 0);
	hms = store_mailbox_highestmodseq(mb);
	test_assert(store_msg_update_flags(mb, 1, STORE_FLAGS_ADD,
					   STORE_FLAG_SEEN, 0, 0, &modseq,
					   &changed, &error) == 0);
	test_assert(changed && modseq == hms + 1);
	test_assert(store_mailbox_highestmodseq(mb) == hms + 1);
	test_assert(store_mailbox_msg(mb, 0)->modseq == modseq);
	/* no change: same modseq */
	test_assert(store_msg_update_flags(mb, 1, STORE_FLAGS_ADD,
					   STORE_FLAG_SEEN, 0, 0, &modseq,
					   &changed, &error) == 0);
	test_assert(!changed && modseq == hms + 1);
	/* UNCHANGEDSINCE below the message's modseq fails */
	test_assert(store_msg_update_flags(mb, 1, STORE_FLAGS_REMOVE,
					   STORE_FLAG_SEEN, 0, hms, &modseq,
					   &changed, &error) == 0);
	test_assert(!changed && modseq == hms + 1);
	test_assert(store_mailbox_msg(mb, 0)->flags == STORE_FLAG_SEEN);
	/* keyword 40 only: modseq bumps, the file is not renamed */
	snprintf(before, sizeof(before), "%s", msg_path(mb, 1));
	test_assert(store_msg_update_flags(mb, 1, STORE_FLAGS_ADD, 0,
					   UINT64_C(1) << 40, 0, &modseq,
					   &changed, &error) == 0);
	test_assert(changed && modseq == hms + 2);
	test_assert_streq(msg_path(mb, 1), before);
	/* batch: one modseq for all changed */
	test_assert(store_msgs_update_flags(mb, uids, 5, STORE_FLAGS_REPLACE,
					    STORE_FLAG_FLAGGED, 0, hms + 1,
					    res, &error) == 0);
	test_assert(res[0].status == STORE_UPDATE_MODIFIED &&
		    res[0].modseq == hms + 2);
	for (int i = 1; i < 4; i++)
		T_IDX(res[i].status == STORE_UPDATE_CHANGED &&
		      res[i].modseq == hms + 3, i);
	test_assert(res[4].status == STORE_UPDATE_EXPUNGED);
	test_assert(store_mailbox_flush_renames(mb, 10, &error) == 0);
	p = msg_path(mb, 3);
	test_assert(p != NULL && strstr(p, ":2,F") != NULL);
	test_assert(store_mailbox_highestmodseq(mb) == hms + 3);
	/* expunge: modseq bump and history */
	uint32_t ex[2] = { 3, 2 };
	test_assert(store_msgs_expunge(mb, ex, 2, &error) == 0);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_highestmodseq(mb) == hms + 4);
	struct exp_rec e = { { 0 }, 0, 0 };
	test_assert(store_mailbox_expunged_since(mb, hms + 3, exp_cb, &e,
						 &error) == 0);
	test_assert(e.n == 2 && e.uids[0] == 2 && e.uids[1] == 3 &&
		    e.last_modseq == hms + 4);
	e.n = 0;
	test_assert(store_mailbox_expunged_since(mb, hms + 4, exp_cb, &e,
						 &error) == 0 && e.n == 0);
	/* set_flags keeps keywords */
	test_assert(store_msg_set_flags(mb, 1, STORE_FLAG_DRAFT, &error) == 0);
	test_assert(store_mailbox_msg(mb, 0)->keywords == UINT64_C(1) << 40);
	test_assert(store_mailbox_msg(mb, 0)->flags == STORE_FLAG_DRAFT);
	store_mailbox_close(&mb);
	store_user_close(&su);
}

static void test_recent(void)
{
	struct store_user *su = user_open("recent");
	struct store_mailbox *a, *b;
	const char *error;
	uint32_t first;

	deliver(su, "INBOX", "r1\n", 0, NULL);
	deliver(su, "INBOX", "r2\n", 0, NULL);
	a = mbox_open(su, "INBOX", STORE_OPEN_NO_NAMES);
	b = mbox_open(su, "INBOX", STORE_OPEN_NO_NAMES);
	test_assert(store_mailbox_claim_recent(a, &first, &error) == 0 &&
		    first == 1);	/* a: uids 1, 2 recent */
	test_assert(store_mailbox_claim_recent(b, &first, &error) == 0 &&
		    first == 3);	/* b: none */
	deliver(su, "INBOX", "r3\n", 0, NULL);
	test_assert(store_mailbox_claim_recent(a, &first, &error) == 0 &&
		    first == 3);	/* a's view lacks uid 3: not claimed */
	test_assert(store_mailbox_sync(b, &error) == 0);
	test_assert(store_mailbox_claim_recent(b, &first, &error) == 0 &&
		    first == 3);	/* b gets uid 3 */
	test_assert(store_mailbox_sync(a, &error) == 0);
	test_assert(store_mailbox_claim_recent(a, &first, &error) == 0 &&
		    first == 4);	/* a: nothing recent */
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_user_close(&su);
}

static void test_changes(void)
{
	struct store_user *su = user_open("chg");
	struct store_mailbox *a, *b;
	struct store_changes ch;
	const char *error;
	uint64_t modseq;
	bool changed;
	int fd;

	for (int i = 0; i < 5; i++)
		deliver(su, "INBOX", "c\n", 0, NULL);
	a = mbox_open(su, "INBOX", STORE_OPEN_NO_NAMES);
	b = mbox_open(su, "INBOX", 0);
	test_assert(store_mailbox_msg(a, 0)->path == NULL);
	/* nothing changed */
	test_assert(store_mailbox_sync_changes(a, &ch, &error) == 0);
	test_assert(ch.expunged_count == 0 && ch.new_count == 0 &&
		    ch.changed_count == 0 && !ch.uidvalidity_changed);
	store_changes_free(&ch);
	/* b: flags of 2, expunge 1 and 4; a: flags of 3 (own) */
	test_assert(store_msg_update_flags(b, 2, STORE_FLAGS_ADD,
					   STORE_FLAG_SEEN, 0, 0, &modseq,
					   &changed, &error) == 0);
	uint32_t ex[2] = { 1, 4 };
	test_assert(store_msgs_expunge(b, ex, 2, &error) == 0);
	test_assert(store_msg_update_flags(a, 3, STORE_FLAGS_ADD,
					   STORE_FLAG_FLAGGED, 0, 0, &modseq,
					   &changed, &error) == 0);
	deliver(su, "INBOX", "new\n", 0, NULL);
	test_assert(store_mailbox_sync_changes(a, &ch, &error) == 0);
	test_assert(ch.expunged_count == 2 && ch.expunged_uids[0] == 1 &&
		    ch.expunged_seqs[0] == 1 && ch.expunged_uids[1] == 4 &&
		    ch.expunged_seqs[1] == 4);
	test_assert(ch.new_count == 1);
	test_assert(ch.changed_count == 1 && ch.changed_uids[0] == 2);
	test_assert(store_mailbox_count(a) == 4);
	test_assert(store_mailbox_msg(a, 3)->uid == 6);
	store_changes_free(&ch);
	/* NO_NAMES views open messages through the index */
	fd = store_msg_open(a, store_mailbox_msg(a, 0), &error);
	test_assert(fd >= 0);
	if (fd >= 0)
		close(fd);
	test_assert(store_mailbox_sync_changes(b, &ch, &error) == 0);
	test_assert(ch.expunged_count == 2 && ch.new_count == 1 &&
		    ch.changed_count == 1 && ch.changed_uids[0] == 3);
	store_changes_free(&ch);
	store_mailbox_close(&a);
	store_mailbox_close(&b);
	store_user_close(&su);
}

struct list_out {
	char text[1024];
};

static void list_cb(const char *name, unsigned flags, void *ctx)
{
	struct list_out *o = ctx;
	size_t len = strlen(o->text);

	snprintf(o->text + len, sizeof(o->text) - len, "%s%s%s;", name,
		 (flags & STORE_LIST_NOSELECT) ? "!" : "",
		 (flags & STORE_LIST_HAS_CHILDREN) ? "+" :
		 (flags & STORE_LIST_HAS_NO_CHILDREN) ? "-" : "?");
}

static void list_text(struct store_user *su, struct list_out *o)
{
	const char *error;

	o->text[0] = '\0';
	test_assert(store_mailbox_list(su, list_cb, o, &error) == 0);
}

static void test_mailboxes(void)
{
	struct store_user *su = user_open("mgmt");
	struct store_mailbox *mb;
	struct list_out o;
	const char *error;
	uint32_t uidv, uid, inbox_uidv;

	test_assert(store_mailbox_create(su, "A", &error) == 0);
	test_assert(store_mailbox_create(su, "A/B", &error) == 0);
	test_assert(store_mailbox_create(su, "A/B/C", &error) == 0);
	test_assert(store_mailbox_create(su, "Z", &error) == 0);
	/* '.' is escaped on disk (".foo^2ebar") and lists back as is. */
	test_assert(store_mailbox_create(su, "foo.bar", &error) == 0);
	{
		struct stat st;
		char path[4096];
		snprintf(path, sizeof(path), "%s/.foo^2ebar/cur",
			 store_user_root(su));
		test_assert(stat(path, &st) == 0);
	}
	test_assert(store_mailbox_create(su, "x/..", &error) < 0 &&
		    errno == EINVAL);
	list_text(su, &o);
	test_assert_streq(o.text, "INBOX-;A+;A/B+;A/B/C-;Z-;foo.bar-;");
	/* delete keeps children; A becomes \Noselect */
	test_assert(deliver(su, "A", "in A\n", 0, &uid) == 0 && uid == 1);
	test_assert(store_mailbox_delete(su, "A", &error) == 0);
	test_assert(store_mailbox_delete(su, "A", &error) < 0 &&
		    errno == ENOENT);
	test_assert(store_mailbox_delete(su, "inbox", &error) < 0 &&
		    errno == EPERM);
	list_text(su, &o);
	test_assert_streq(o.text, "INBOX-;A!+;A/B+;A/B/C-;Z-;foo.bar-;");
	/* rename with children keeps UIDVALIDITY and UIDs */
	deliver(su, "A/B", "in B\n", STORE_FLAG_SEEN, NULL);
	mb = mbox_open(su, "A/B", 0);
	uidv = store_mailbox_uidvalidity(mb);
	store_mailbox_close(&mb);
	test_assert(store_mailbox_rename(su, "A/B", "Z", &error) < 0 &&
		    errno == EEXIST);
	test_assert(store_mailbox_rename(su, "A/B", "A/B/X", &error) < 0);
	test_assert(store_mailbox_rename(su, "A/B", "N/M", &error) == 0);
	list_text(su, &o);
	test_assert_streq(o.text, "INBOX-;N!+;N/M+;N/M/C-;Z-;foo.bar-;");
	mb = mbox_open(su, "N/M", 0);
	test_assert(store_mailbox_uidvalidity(mb) == uidv);
	test_assert(store_mailbox_count(mb) == 1 &&
		    store_mailbox_msg(mb, 0)->uid == 1 &&
		    store_mailbox_msg(mb, 0)->flags == STORE_FLAG_SEEN);
	store_mailbox_close(&mb);
	/* INBOX rename: messages move, INBOX stays empty */
	deliver(su, "INBOX", "i1\n", 0, NULL);
	deliver(su, "INBOX", "i2\n", STORE_FLAG_FLAGGED, NULL);
	mb = mbox_open(su, "INBOX", 0);
	inbox_uidv = store_mailbox_uidvalidity(mb);
	test_assert(store_mailbox_rename(su, "INBOX", "Z", &error) < 0 &&
		    errno == EEXIST);
	test_assert(store_mailbox_rename(su, "INBOX", "Old", &error) == 0);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 0);
	test_assert(store_mailbox_uidvalidity(mb) == inbox_uidv);
	store_mailbox_close(&mb);
	mb = mbox_open(su, "Old", 0);
	test_assert(store_mailbox_count(mb) == 2);
	test_assert(store_mailbox_uidvalidity(mb) != inbox_uidv);
	test_assert(store_mailbox_msg(mb, 1)->flags == STORE_FLAG_FLAGGED);
	store_mailbox_close(&mb);
	/* subscriptions */
	char **subs;
	size_t n;
	test_assert(store_subscriptions_set(su, "Z", true, &error) == 0);
	test_assert(store_subscriptions_set(su, "inbox", true, &error) == 0);
	test_assert(store_subscriptions_set(su, "Gone/X", true, &error) == 0);
	test_assert(store_subscriptions_set(su, "Z", true, &error) == 0);
	test_assert(store_subscriptions_set(su, "Gone/X", false, &error) == 0);
	test_assert(store_subscriptions_set(su, "a/..", true, &error) < 0);
	test_assert(store_subscriptions_get(su, &subs, &n, &error) == 0);
	test_assert(n == 2 && strcmp(subs[0], "INBOX") == 0 &&
		    strcmp(subs[1], "Z") == 0 && subs[2] == NULL);
	store_subscriptions_free(&subs);
	test_assert(subs == NULL);
	store_user_close(&su);
}

static void test_copy_append(void)
{
	struct store_user *su = user_open("copy");
	struct store_mailbox *src, *dst;
	struct store_delivery *d;
	const char *error, *root = store_user_root(su);
	const char *const kws[] = { "Work", "$Label1" };
	uint32_t uid, uids[3], dst_uids[3];
	char p1[600], p2[600];
	struct stat st1, st2;
	unsigned idx;

	test_assert(store_mailbox_create(su, "Dst", &error) == 0);
	deliver(su, "INBOX", "one\n", 0, NULL);
	/* APPEND with keywords into a folder, uid_r */
	test_assert(store_delivery_begin(su, "INBOX", &d, &error) == 0);
	test_assert(store_delivery_write(d, "two\n", 4, &error) == 0);
	test_assert(store_delivery_commit_keywords(&d, STORE_FLAG_SEEN, kws,
						   2, 0, &uid, &error) == 0);
	test_assert(uid == 2);
	src = mbox_open(su, "INBOX", 0);
	test_assert(store_mailbox_msg(src, 1)->keywords == 3);
	test_assert(strstr(store_mailbox_msg(src, 1)->path, ":2,Sab") !=
		    NULL);
	/* dst already has a keyword: Work maps to index 1 there */
	dst = mbox_open(su, "Dst", 0);
	test_assert(store_mailbox_keyword_index(dst, "Other", true, &idx,
						&error) == 0 && idx == 0);
	uids[0] = 2;
	uids[1] = 1;
	uids[2] = 77;
	test_assert(store_mailbox_copy(src, uids, 3, dst, dst_uids,
				       &error) == 0);
	test_assert(dst_uids[0] == 1 && dst_uids[1] == 2 &&
		    dst_uids[2] == 0);
	test_assert(store_mailbox_sync(dst, &error) == 0);
	test_assert(store_mailbox_count(dst) == 2);
	const struct store_msg *m = store_mailbox_msg(dst, 0);
	test_assert(m->flags == STORE_FLAG_SEEN && m->keywords == 6);
	test_assert_streq(m->basename, store_mailbox_msg(src, 1)->basename);
	/* a hard link of the source */
	snprintf(p1, sizeof(p1), "%s/%s", root, store_mailbox_msg(src, 1)->path);
	snprintf(p2, sizeof(p2), "%s/.Dst/%s", root, m->path);
	test_assert(stat(p1, &st1) == 0 && stat(p2, &st2) == 0 &&
		    st1.st_ino == st2.st_ino);
	/* copying again: a new basename, new UID */
	test_assert(store_mailbox_copy(src, uids, 1, dst, dst_uids,
				       &error) == 0 && dst_uids[0] == 3);
	test_assert(store_mailbox_sync(dst, &error) == 0);
	test_assert(store_mailbox_count(dst) == 3);
	test_assert(strcmp(store_mailbox_msg(dst, 2)->basename,
			   store_mailbox_msg(dst, 0)->basename) != 0);
	test_assert(store_mailbox_msg(dst, 2)->size == 4);
	/* an index rebuild keeps the copies' UIDs */
	store_mailbox_close(&src);
	store_mailbox_close(&dst);
	store_user_close(&su);
	snprintf(p1, sizeof(p1), "%s/copy/heron.index", test_dir);
	unlink(p1);
	su = user_open("copy");
	dst = mbox_open(su, "Dst", 0);
	test_assert(store_mailbox_count(dst) == 3 &&
		    store_mailbox_msg(dst, 2)->uid == 3);
	store_mailbox_close(&dst);
	store_user_close(&su);
}

struct watch_seen {
	int ids[4];
	int n;
};

static void watch_cb(int id, void *ctx)
{
	struct watch_seen *w = ctx;

	if (w->n < 4)
		w->ids[w->n++] = id;
}

static void test_watch(void)
{
	struct store_user *su = user_open("watch");
	struct store_mailbox *mb, *mb2, *f;
	struct watch_seen w = { { 0 }, 0 };
	const char *error;
	int id, id2, idf, status;
	pid_t pid;

	test_assert(store_mailbox_create(su, "F", &error) == 0);
	mb = mbox_open(su, "INBOX", 0);
	mb2 = mbox_open(su, "INBOX", 0);
	f = mbox_open(su, "F", 0);
	test_assert(store_watch_add(mb, &id, &error) == 0);
	test_assert(store_watch_add(mb2, &id2, &error) == 0 && id2 == id);
	test_assert(store_watch_add(f, &idf, &error) == 0 && idf != id);
	test_assert(store_watch_fd() >= 0);
	test_assert(store_watch_read(watch_cb, &w) == 0);
	pid = fork();
	if (pid == 0) {
		struct store_user *csu = user_open("watch");
		int ret = deliver(csu, "INBOX", "hello\n", 0, NULL);

		store_user_close(&csu);
		_exit(ret == 0 ? 0 : 1);
	}
	test_assert(waitpid(pid, &status, 0) == pid && status == 0);
	struct pollfd pfd = { store_watch_fd(), POLLIN, 0 };
	test_assert(poll(&pfd, 1, 2000) == 1);
	test_assert(store_watch_read(watch_cb, &w) == 1);
	test_assert(w.n == 1 && w.ids[0] == id);
	test_assert(store_mailbox_sync(mb, &error) == 0 &&
		    store_mailbox_count(mb) == 1);
	/* a flag change (rename in cur/) is seen too; one report per read */
	w.n = 0;
	test_assert(store_msg_set_flags(mb, 1, STORE_FLAG_SEEN, &error) == 0);
	test_assert(store_mailbox_flush_renames(mb, 10, &error) == 0);
	test_assert(store_watch_read(watch_cb, &w) == 1 && w.ids[0] == id);
	store_watch_remove(id);
	store_watch_remove(id2);
	w.n = 0;
	test_assert(store_msg_set_flags(mb, 1, 0, &error) == 0);
	test_assert(store_mailbox_flush_renames(mb, 10, &error) == 0);
	test_assert(store_watch_read(watch_cb, &w) == 0);
	store_watch_remove(idf);
	store_mailbox_close(&f);
	store_mailbox_close(&mb2);
	store_mailbox_close(&mb);
	store_user_close(&su);
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

#define ENV_USERS 5

/* More users than the environment cache holds: every view stays usable
 * (each call reopens its user's environment when it was evicted), the
 * cache stays within its bound, and nothing leaks. */
static void test_env_cache(void)
{
	struct store_user *su[ENV_USERS];
	struct store_mailbox *mb[ENV_USERS];
	uint32_t uidvalidity[ENV_USERS];
	unsigned long opens;
	const char *error;
	char name[32], buf[64];
	uint64_t modseq;
	unsigned kw;
	bool changed;
	int fds = count_fds();

	store_env_cache_set_max(2);
	for (int i = 0; i < ENV_USERS; i++) {
		snprintf(name, sizeof(name), "env%d", i);
		su[i] = user_open(name);
		T_IDX(deliver(su[i], "INBOX", "e1\n", 0, NULL) == 0, i);
		mb[i] = mbox_open(su[i], "INBOX", i % 2 ? STORE_OPEN_NO_NAMES :
				  0);
		uidvalidity[i] = store_mailbox_uidvalidity(mb[i]);
		T_IDX(store_index_open_env_count() <= 2, i);
	}
	opens = store_index_env_opens;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < ENV_USERS; i++) {
			uint32_t uid;

			T_IDX(deliver(su[i], "INBOX", "e2\n", 0, &uid) == 0 &&
			      uid == (uint32_t)round + 2, i);
			T_IDX(store_mailbox_sync(mb[i], &error) == 0 &&
			      store_mailbox_count(mb[i]) ==
			      (uint32_t)round + 2, i);
			T_IDX(store_mailbox_uidvalidity(mb[i]) ==
			      uidvalidity[i], i);
			T_IDX(store_msg_update_flags(mb[i], 1, STORE_FLAGS_ADD,
						     STORE_FLAG_FLAGGED, 0, 0,
						     &modseq, &changed,
						     &error) == 0, i);
			T_IDX(store_mailbox_keyword_index(mb[i], "Work", true,
							  &kw, &error) == 0 &&
			      kw == 0, i);
			int fd = store_msg_open(mb[i], store_mailbox_msg(mb[i],
								 0), &error);
			ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
			T_IDX(r == 3 && memcmp(buf, "e1\n", 3) == 0, i);
			if (fd >= 0)
				close(fd);
			T_IDX(store_index_open_env_count() <= 2, i);
		}
	}
	/* 5 users round robin through 2 slots: reopened nearly each time */
	test_assert(store_index_env_opens - opens >= 2 * ENV_USERS - 2);
	for (int i = 0; i < ENV_USERS; i++) {
		store_mailbox_close(&mb[i]);
		store_user_close(&su[i]);
	}
	test_assert(store_index_open_env_count() == 0);
	test_assert(count_fds() == fds);
	/* a smaller bound evicts at once; a reopen sees committed data */
	store_env_cache_set_max(STORE_ENV_CACHE_DEFAULT);
	su[0] = user_open("env0");
	su[1] = user_open("env1");
	test_assert(store_index_open_env_count() == 2);
	store_env_cache_set_max(1);
	test_assert(store_index_open_env_count() == 1);
	mb[0] = mbox_open(su[0], "INBOX", 0);
	test_assert(store_mailbox_count(mb[0]) == 3 &&
		    store_mailbox_msg(mb[0], 0)->flags == STORE_FLAG_FLAGGED);
	store_mailbox_close(&mb[0]);
	store_user_close(&su[0]);
	store_user_close(&su[1]);
	store_env_cache_set_max(STORE_ENV_CACHE_DEFAULT);
}

static int count_dir(const char *root, const char *sub)
{
	char path[512];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", root, sub);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Finds uid's file on disk (by the basename the index has) into buf. */
static bool disk_name(struct store_mailbox *mb, uint32_t uid, char *buf,
		      size_t size)
{
	struct store_user *su = mb->su;
	const char *root = store_user_root(su);
	static const char *const subs[] = { "new", "cur" };
	const struct store_msg *m = NULL;

	for (uint32_t i = 0; i < store_mailbox_count(mb); i++) {
		if (store_mailbox_msg(mb, i)->uid == uid)
			m = store_mailbox_msg(mb, i);
	}
	if (m == NULL || m->basename == NULL)
		return false;
	for (int i = 0; i < 2; i++) {
		char path[512];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s/%s", root, subs[i]);
		if ((d = opendir(path)) == NULL)
			return false;
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, m->basename,
				    strlen(m->basename)) == 0) {
				snprintf(buf, size, "%s/%s", subs[i],
					 de->d_name);
				closedir(d);
				return true;
			}
		}
		closedir(d);
	}
	return false;
}

static bool name_ends(struct store_mailbox *mb, uint32_t uid,
		      const char *suffix)
{
	char name[400];
	size_t len;

	if (!disk_name(mb, uid, name, sizeof(name)))
		return false;
	len = strlen(name);
	return len > strlen(suffix) &&
		strcmp(name + len - strlen(suffix), suffix) == 0;
}

static const struct store_msg *view_msg(struct store_mailbox *mb,
					uint32_t uid)
{
	for (uint32_t i = 0; i < store_mailbox_count(mb); i++) {
		if (store_mailbox_msg(mb, i)->uid == uid)
			return store_mailbox_msg(mb, i);
	}
	return NULL;
}

/* Renames uid's file (as it is on disk) to "cur/<basename>:2,<info>". */
static void external_rename(struct store_mailbox *mb, uint32_t uid,
			    const char *info)
{
	const char *root = store_user_root(mb->su);
	char name[400], from[800], to[800];

	if (!disk_name(mb, uid, name, sizeof(name)))
		abort();
	snprintf(from, sizeof(from), "%s/%s", root, name);
	snprintf(to, sizeof(to), "%s/cur/%s:2,%s", root,
		 view_msg(mb, uid)->basename, info);
	if (rename(from, to) < 0)
		abort();
}

/* STORE changes the index only; renames survive a crash (a child that
 * exits without closing), sync keeps pending flags, external renames are
 * merged flag by flag, flushes rename in slices and at close. */
static void test_deferred_renames(void)
{
	struct store_user *su = user_open("defer");
	struct store_mailbox *mb;
	const char *error, *root = store_user_root(su);
	uint32_t uids[6] = { 1, 2, 3, 4, 5, 6 };
	char buf[16];
	int status, fd, left;
	pid_t pid;

	for (int i = 0; i < 6; i++)
		deliver(su, "INBOX", "d\n", 0, NULL);
	mb = mbox_open(su, "INBOX", 0);
	store_mailbox_close(&mb);
	pid = fork();
	if (pid == 0) {
		struct store_user *csu = user_open("defer");
		struct store_mailbox *cmb = mbox_open(csu, "INBOX", 0);
		unsigned kw;

		if (store_msgs_update_flags(cmb, uids, 6, STORE_FLAGS_ADD,
					    STORE_FLAG_SEEN, 0, 0, NULL,
					    &error) < 0 ||
		    store_mailbox_keyword_index(cmb, "$Junk", true, &kw,
						&error) < 0 || kw != 0 ||
		    store_msgs_update_flags(cmb, uids + 1, 1, STORE_FLAGS_ADD,
					    0, 1, 0, NULL, &error) < 0)
			_exit(1);
		_exit(0);	/* "crash": no close, no flush */
	}
	test_assert(waitpid(pid, &status, 0) == pid && status == 0);
	test_assert(count_dir(root, "new") == 6);
	mb = mbox_open(su, "INBOX", 0);
	for (uint32_t i = 0; i < 6; i++)
		T_IDX(store_mailbox_msg(mb, i)->flags == STORE_FLAG_SEEN, i);
	test_assert(store_mailbox_msg(mb, 1)->keywords == 1);
	/* a full scan (recent mtimes) must not take the old names for
	 * external changes */
	age_dirs(root, 1000000000);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_msg(mb, 0)->flags == STORE_FLAG_SEEN);
	/* files open where they are */
	fd = store_msg_open(mb, store_mailbox_msg(mb, 0), &error);
	test_assert(fd >= 0 && read(fd, buf, sizeof(buf)) == 2);
	if (fd >= 0)
		close(fd);
	/* Another MUA, knowing nothing of our \Seen: uid 3 gets F (F
	 * taken, S kept), uid 4 gets our S (nothing left to do), uid 2
	 * gets T (T taken; S and $Junk kept), uid 6 is expunged. */
	external_rename(mb, 3, "F");
	external_rename(mb, 4, "S");
	external_rename(mb, 2, "T");
	char name[400], path[800];
	test_assert(disk_name(mb, 6, name, sizeof(name)));
	snprintf(path, sizeof(path), "%s/%s", root, name);
	test_assert(unlink(path) == 0);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 5);
	test_assert(view_msg(mb, 3)->flags ==
		    (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED));
	test_assert(view_msg(mb, 4)->flags == STORE_FLAG_SEEN);
	test_assert(view_msg(mb, 2)->flags ==
		    (STORE_FLAG_SEEN | STORE_FLAG_DELETED) &&
		    view_msg(mb, 2)->keywords == 1);
	test_assert(view_msg(mb, 1)->flags == STORE_FLAG_SEEN);
	/* 1, 2, 3, 5 remain: flushed two at a time */
	test_assert(store_mailbox_flush_renames(mb, 2, &error) == 2);
	left = store_mailbox_flush_renames(mb, 2, &error);
	test_assert(left == 0);
	test_assert(store_mailbox_flush_renames(mb, 2, &error) == 0);
	test_assert(name_ends(mb, 1, ":2,S"));
	test_assert(name_ends(mb, 2, ":2,STa"));
	test_assert(name_ends(mb, 3, ":2,FS"));
	test_assert(name_ends(mb, 4, ":2,S"));
	test_assert(name_ends(mb, 5, ":2,S"));
	test_assert(count_dir(root, "new") == 0);
	/* a rename pending when the file vanishes: not counted, and the
	 * next sync reports the expunge */
	test_assert(store_msg_update_flags(mb, 5, STORE_FLAGS_ADD,
					   STORE_FLAG_ANSWERED, 0, 0,
					   (uint64_t[]){ 0 }, (bool[]){ 0 },
					   &error) == 0);
	test_assert(disk_name(mb, 5, name, sizeof(name)));
	snprintf(path, sizeof(path), "%s/%s", root, name);
	test_assert(unlink(path) == 0);
	test_assert(store_mailbox_flush_renames(mb, 10, &error) == 0);
	test_assert(store_mailbox_sync(mb, &error) == 0);
	test_assert(store_mailbox_count(mb) == 4);
	/* setting and clearing before a flush: nothing to rename */
	test_assert(store_msgs_update_flags(mb, uids, 1, STORE_FLAGS_ADD,
					    STORE_FLAG_DRAFT, 0, 0, NULL,
					    &error) == 0);
	test_assert(store_msgs_update_flags(mb, uids, 1, STORE_FLAGS_REMOVE,
					    STORE_FLAG_DRAFT, 0, 0, NULL,
					    &error) == 0);
	test_assert(store_mailbox_flush_renames(mb, 10, &error) == 0);
	/* close flushes */
	test_assert(store_msgs_update_flags(mb, uids, 4, STORE_FLAGS_REMOVE,
					    STORE_FLAG_SEEN, 0, 0, NULL,
					    &error) == 0);
	test_assert(name_ends(mb, 1, ":2,S"));
	store_mailbox_close(&mb);
	mb = mbox_open(su, "INBOX", 0);
	test_assert(name_ends(mb, 1, ":2,"));
	test_assert(name_ends(mb, 2, ":2,Ta"));
	test_assert(view_msg(mb, 2)->flags == STORE_FLAG_DELETED);
	store_mailbox_close(&mb);
	store_user_close(&su);
}

int main(void)
{
	setup();
	test_run("fast_sync", test_fast_sync);
	test_run("keywords", test_keywords);
	test_run("update_flags", test_update_flags);
	test_run("recent", test_recent);
	test_run("changes", test_changes);
	test_run("mailboxes", test_mailboxes);
	test_run("copy_append", test_copy_append);
	test_run("watch", test_watch);
	test_run("env_cache", test_env_cache);
	test_run("deferred_renames", test_deferred_renames);
	teardown();
	return test_done("store_imap");
}
