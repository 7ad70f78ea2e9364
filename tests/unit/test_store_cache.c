/* test_store_cache.c: the per-message cache of the store (store.h): get,
 * put and flush, the guard against stale entries, removal with expunge,
 * vanished files and mailbox delete, persistence over a reopen, and the
 * queue bound. Real files under a mkdtemp() directory. */
#include "test.h"
#include "store_fixture.h"
#include "store/store.h"
#include "store/store_private.h"
#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>




static void setup(void)
{
	store_fixture_setup("heron-cache");
}

static struct store_user *user_open(void)
{
	return store_fixture_user("u");
}

static struct store_mailbox *mbox_open(struct store_user *su,
				       const char *name)
{
	struct store_mailbox *mb = NULL;
	const char *error;

	if (store_mailbox_open_flags(su, name, STORE_OPEN_NO_NAMES, &mb,
				     &error) < 0) {
		printf("store_mailbox_open(%s): %s\n", name, error);
		abort();
	}
	return mb;
}

static uint32_t deliver(struct store_user *su, const char *mailbox,
			const char *body)
{
	struct store_delivery *d;
	const char *error;
	uint32_t uid = 0;

	if (store_delivery_begin(su, mailbox, &d, &error) < 0 ||
	    store_delivery_write(d, body, strlen(body), &error) < 0 ||
	    store_delivery_commit(&d, 0, 0, &uid, &error) < 0) {
		printf("deliver: %s\n", error);
		abort();
	}
	return uid;
}

/* 1 when uid's entry is data, 0 when not cached, -1 error, 2 other. */
static int get_is(struct store_mailbox *mb, uint32_t uid, const char *data)
{
	unsigned char *got;
	size_t len;
	const char *error;
	int ret;

	ret = store_msg_cache_get(mb, uid, &got, &len, &error);
	if (ret == 1 && (len != strlen(data) || memcmp(got, data, len) != 0))
		ret = 2;
	free(got);
	return ret;
}

static void put_str(struct store_mailbox *mb, uint32_t uid, const char *s)
{
	store_msg_cache_put(mb, uid, s, strlen(s));
}

static int flush(struct store_mailbox *mb)
{
	const char *error;

	return store_msg_cache_flush(mb, &error);
}

/* Number of records in the cache DB (all mailboxes). */
static size_t cache_records(struct store_user *su)
{
	struct store_index *idx = su->index;
	MDB_stat st;
	MDB_txn *txn;

	if (store_index_txn_begin(idx, MDB_RDONLY, &txn) != 0)
		abort();
	if (mdb_stat(txn, idx->dbi_cache, &st) != 0)
		abort();
	store_txn_abort(txn);
	return st.ms_entries;
}

static void test_put_get_flush(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	uint32_t u1, u2;

	setup();
	su = user_open();
	u1 = deliver(su, "INBOX", "Subject: a\n\nbody one\n");
	u2 = deliver(su, "INBOX", "Subject: b\n\nbody two\n");
	mb = mbox_open(su, "INBOX");
	test_assert(get_is(mb, u1, "x") == 0);
	test_assert(flush(mb) == 0);	/* empty queue */
	put_str(mb, u1, "tree-one");
	put_str(mb, u2, "tree-two");
	test_assert(store_msg_cache_queued(mb) == 2);
	/* not visible before the flush */
	test_assert(get_is(mb, u1, "tree-one") == 0);
	test_assert(flush(mb) == 0);
	test_assert(store_msg_cache_queued(mb) == 0);
	test_assert(get_is(mb, u1, "tree-one") == 1);
	test_assert(get_is(mb, u2, "tree-two") == 1);
	/* replaced */
	put_str(mb, u1, "tree-one-b");
	test_assert(flush(mb) == 0);
	test_assert(get_is(mb, u1, "tree-one-b") == 1);
	/* not in the view: ignored */
	put_str(mb, 999, "nope");
	test_assert(store_msg_cache_queued(mb) == 0);
	test_assert(get_is(mb, 999, "nope") == 0);
	test_assert(cache_records(su) == 2);
	store_mailbox_close(&mb);
	store_user_close(&su);
	teardown();
}

/* An entry whose guard does not match the record is never served. */
static void test_stale_guard(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	struct index_cache_hdr hdr;
	uint8_t kbuf[8];
	MDB_val key = { sizeof(kbuf), kbuf }, val;
	MDB_txn *txn;
	uint32_t u1;

	setup();
	su = user_open();
	u1 = deliver(su, "INBOX", "Subject: a\n\nbody\n");
	mb = mbox_open(su, "INBOX");
	put_str(mb, u1, "tree");
	test_assert(flush(mb) == 0);
	test_assert(get_is(mb, u1, "tree") == 1);
	/* another message's guard (basename hash) */
	test_assert(store_index_txn_begin(su->index, 0, &txn) == 0);
	index_msg_key(kbuf, mb->rec.id, u1);
	test_assert(mdb_get(txn, su->index->dbi_cache, &key, &val) == 0);
	memcpy(&hdr, val.mv_data, sizeof(hdr));
	hdr.bname_hash ^= 1;
	val.mv_size = sizeof(hdr);
	val.mv_data = &hdr;
	test_assert(mdb_put(txn, su->index->dbi_cache, &key, &val, 0) == 0);
	test_assert(store_txn_commit(txn) == 0);
	test_assert(get_is(mb, u1, "") == 0);
	/* a size that differs */
	test_assert(store_index_txn_begin(su->index, 0, &txn) == 0);
	hdr.bname_hash ^= 1;
	hdr.size++;
	test_assert(mdb_put(txn, su->index->dbi_cache, &key, &val, 0) == 0);
	test_assert(store_txn_commit(txn) == 0);
	test_assert(get_is(mb, u1, "") == 0);
	/* a put is rewritten with the right guard */
	put_str(mb, u1, "tree2");
	test_assert(flush(mb) == 0);
	test_assert(get_is(mb, u1, "tree2") == 1);
	store_mailbox_close(&mb);
	store_user_close(&su);
	teardown();
}

static void test_expunge_removes(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	uint32_t uids[4];
	const char *error;

	setup();
	su = user_open();
	for (int i = 0; i < 4; i++)
		uids[i] = deliver(su, "INBOX", "Subject: x\n\nbody\n");
	mb = mbox_open(su, "INBOX");
	for (int i = 0; i < 4; i++)
		put_str(mb, uids[i], "t");
	test_assert(flush(mb) == 0);
	test_assert(cache_records(su) == 4);
	/* IMAP EXPUNGE */
	test_assert(store_msgs_expunge(mb, &uids[0], 1, &error) == 0);
	test_assert(cache_records(su) == 3);
	test_assert(get_is(mb, uids[0], "t") == 0);
	/* store_mailbox_expunge */
	test_assert(store_mailbox_expunge(mb, &uids[1], 1, &error) == 0);
	test_assert(cache_records(su) == 2);
	test_assert(get_is(mb, uids[2], "t") == 1);
	/* a put queued before the expunge is dropped at flush */
	put_str(mb, uids[2], "t2");
	test_assert(store_mailbox_expunge(mb, &uids[2], 1, &error) == 0);
	test_assert(flush(mb) == 0);
	test_assert(cache_records(su) == 1);
	store_mailbox_close(&mb);
	store_user_close(&su);
	teardown();
}

/* Unlinks every file of dir/sub. */
static void unlink_all(const char *dir)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "rm -f %s/new/* %s/cur/*", dir, dir);
	if (system(cmd) != 0)
		abort();
}

static void test_vanished_and_delete(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	uint32_t u1, f1;
	const char *error;
	char dir[400];

	setup();
	su = user_open();
	u1 = deliver(su, "INBOX", "Subject: x\n\nbody\n");
	test_assert(store_mailbox_create(su, "Box", &error) == 0);
	f1 = deliver(su, "Box", "Subject: y\n\nbody\n");
	mb = mbox_open(su, "INBOX");
	put_str(mb, u1, "t");
	test_assert(flush(mb) == 0);
	store_mailbox_close(&mb);
	mb = mbox_open(su, "Box");
	put_str(mb, f1, "f");
	test_assert(flush(mb) == 0);
	store_mailbox_close(&mb);
	test_assert(cache_records(su) == 2);
	/* another MUA removes INBOX's file: the sync drops the entry */
	snprintf(dir, sizeof(dir), "%s/u", test_dir);
	unlink_all(dir);
	mb = mbox_open(su, "INBOX");
	test_assert(store_mailbox_count(mb) == 0);
	store_mailbox_close(&mb);
	test_assert(cache_records(su) == 1);
	test_assert(store_mailbox_delete(su, "Box", &error) == 0);
	test_assert(cache_records(su) == 0);
	store_user_close(&su);
	teardown();
}

static void test_reopen_keeps(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	uint32_t u1, u2;

	setup();
	su = user_open();
	u1 = deliver(su, "INBOX", "Subject: x\n\nbody\n");
	u2 = deliver(su, "INBOX", "Subject: y\n\nbody\n");
	mb = mbox_open(su, "INBOX");
	put_str(mb, u1, "kept");
	test_assert(flush(mb) == 0);
	/* queued, never flushed: dropped at close without a leak */
	put_str(mb, u2, "lost");
	store_mailbox_close(&mb);
	store_user_close(&su);
	su = user_open();
	mb = mbox_open(su, "INBOX");
	test_assert(get_is(mb, u1, "kept") == 1);
	test_assert(get_is(mb, u2, "lost") == 0);
	store_mailbox_close(&mb);
	store_user_close(&su);
	teardown();
}

/* A full queue is flushed by the next put; big blobs are refused. */
static void test_queue_bound(void)
{
	struct store_user *su;
	struct store_mailbox *mb;
	uint32_t uid;
	unsigned char *big;
	char data[32];

	setup();
	su = user_open();
	uid = deliver(su, "INBOX", "Subject: x\n\nbody\n");
	mb = mbox_open(su, "INBOX");
	for (unsigned i = 0; i < STORE_CACHE_QUEUE_MAX + 3; i++) {
		snprintf(data, sizeof(data), "v%u", i);
		put_str(mb, uid, data);
		test_assert(store_msg_cache_queued(mb) <=
			    STORE_CACHE_QUEUE_MAX);
	}
	test_assert(store_msg_cache_queued(mb) == 3);
	snprintf(data, sizeof(data), "v%u", STORE_CACHE_QUEUE_MAX - 1);
	test_assert(get_is(mb, uid, data) == 1);
	test_assert(flush(mb) == 0);
	snprintf(data, sizeof(data), "v%u", STORE_CACHE_QUEUE_MAX + 2);
	test_assert(get_is(mb, uid, data) == 1);
	big = xcalloc(1, STORE_CACHE_ENTRY_MAX + 1);
	store_msg_cache_put(mb, uid, big, STORE_CACHE_ENTRY_MAX + 1);
	test_assert(store_msg_cache_queued(mb) == 0);
	free(big);
	store_mailbox_close(&mb);
	store_user_close(&su);
	teardown();
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	test_run("put_get_flush", test_put_get_flush);
	test_run("stale_guard", test_stale_guard);
	test_run("expunge_removes", test_expunge_removes);
	test_run("vanished_and_delete", test_vanished_and_delete);
	test_run("reopen_keeps", test_reopen_keeps);
	test_run("queue_bound", test_queue_bound);
	free(test_set.mail_path);
	return test_done("store_cache");
}
