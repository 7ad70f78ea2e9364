/* test_store_dovecot.c: migration from Dovecot (src/store/dovecot.c):
 * dovecot-uidlist versions 3 and 1 read through uidlist_read, P fields
 * kept as POP3 UIDLs, Dovecot's default UIDL format, subscriptions in
 * Dovecot's version 2 (tab-escaped) and 1 formats, and a whole INBOX
 * opened with Dovecot's UIDs, keywords and files left untouched. */
#include "test.h"
#include "store_fixture.h"
#include "store/store_private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define T_IDX(cond, i) test_assert_idx(cond, (int)(i))

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
}

static char *read_all(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static const struct {
	const char *text;
	uint32_t uidvalidity, uidnext;
	const char *name;	/* looked up */
	uint32_t uid;		/* expected for name */
	const char *uidls;	/* heron-pop3-uidls written, NULL none */
} uidlist_rows[] = {
	/* Dovecot 2.3 as written: N lags behind the highest UID */
	{ "3 V1795800454 N1 Gb0f2fe087dbd096b6e6a000083ecc375\n"
	  "1 :1795800454.M865232P28272.vm,S=252,W=265\n"
	  "6 :1795800454.M901326P28272.vm,S=255,W=268\n",
	  1795800454, 7, "1795800454.M901326P28272.vm,S=255,W=268", 6, NULL },
	/* ext fields, P (POP3 UIDL), an old name with its flags */
	{ "3 V7 N20 Gx\n"
	  "4 W99 P7.4-x S90 :a.b.c,S=90\n"
	  "5 O3 :d.e:2,S\n",
	  7, 20, "d.e", 5, "7.4-x a.b.c,S=90\n" },
	/* version 1 */
	{ "1 77 9\n2 old.name\n8 other\n", 77, 9, "other", 8, NULL },
	/* malformed lines skipped; torn last line */
	{ "3 V5 N3\nx :bad\n0 :zero\n2 P1 nocolon\n3 :ok\n4 :torn",
	  5, 4, "ok", 3, NULL },
	/* not a header: ignored */
	{ "hello\n1 :a\n", 0, 1, "a", 0, NULL },
};

static void test_uidlist_import(void)
{
	char path[512], errbuf[256];
	struct uidlist ul;

	store_fixture_setup("heron-dctest");
	for (size_t i = 0; i < sizeof(uidlist_rows) / sizeof(uidlist_rows[0]);
	     i++) {
		const char *got;

		snprintf(path, sizeof(path), "%s/dovecot-uidlist", test_dir);
		write_file(path, uidlist_rows[i].text);
		snprintf(path, sizeof(path), "%s/heron-pop3-uidls", test_dir);
		unlink(path);
		T_IDX(uidlist_read(test_dir, &ul, errbuf, sizeof(errbuf)) == 0,
		      i);
		T_IDX(ul.uidvalidity == uidlist_rows[i].uidvalidity, i);
		T_IDX(ul.uidnext == uidlist_rows[i].uidnext, i);
		T_IDX(ul.is_dovecot == (uidlist_rows[i].uidvalidity != 0), i);
		T_IDX(uidlist_lookup(&ul, uidlist_rows[i].name,
				     strlen(uidlist_rows[i].name)) ==
		      uidlist_rows[i].uid, i);
		got = read_all(path);
		T_IDX(uidlist_rows[i].uidls == NULL ? got == NULL :
		      got != NULL && strcmp(got, uidlist_rows[i].uidls) == 0,
		      i);
		uidlist_free(&ul);
	}
	/* heron-uidlist, when there is one, wins */
	snprintf(path, sizeof(path), "%s/heron-uidlist", test_dir);
	write_file(path, "1 V9 N4\n3 h\n");
	test_assert(uidlist_read(test_dir, &ul, errbuf, sizeof(errbuf)) == 0);
	test_assert(ul.uidvalidity == 9 && !ul.is_dovecot);
	uidlist_free(&ul);
	teardown();
}

struct sub_ctx {
	char names[8][64];
	unsigned count;
};

static void sub_cb(const char *name, void *context)
{
	struct sub_ctx *ctx = context;

	if (ctx->count < 8)
		snprintf(ctx->names[ctx->count++], 64, "%s", name);
}

static const struct {
	const char *text;
	const char *names;	/* joined by '|' */
} subs_rows[] = {
	{ "V\t2\n\nWork\nWork\tSub\nINBOX\n", "Work|Work/Sub|INBOX" },
	{ "V\t2\n\na\001tb\tc\0011\n", "a\tb/c\001" },
	{ "Work\nWork.Sub\n\n", "Work|Work/Sub" },
	{ "", "" },
};

static void test_subscriptions_read(void)
{
	char path[512], errbuf[256], joined[256];

	store_fixture_setup("heron-dctest");
	snprintf(path, sizeof(path), "%s/subscriptions", test_dir);
	for (size_t i = 0; i < sizeof(subs_rows) / sizeof(subs_rows[0]);
	     i++) {
		struct sub_ctx ctx = { .count = 0 };
		size_t len = 0;

		write_file(path, subs_rows[i].text);
		T_IDX(dovecot_subscriptions_read(test_dir, sub_cb, &ctx,
						 errbuf, sizeof(errbuf)) == 0,
		      i);
		joined[0] = '\0';
		for (unsigned j = 0; j < ctx.count; j++)
			len += (size_t)snprintf(joined + len,
						sizeof(joined) - len, "%s%s",
						j ? "|" : "", ctx.names[j]);
		test_assert_streq_idx(joined, subs_rows[i].names, (int)i);
	}
	unlink(path);
	{
		struct sub_ctx ctx = { .count = 0 };

		test_assert(dovecot_subscriptions_read(test_dir, sub_cb, &ctx,
						       errbuf,
						       sizeof(errbuf)) == 0 &&
			    ctx.count == 0);
	}
	teardown();
}

/* A Maildir as Dovecot left it, opened by the store. */
static void test_open_dovecot_maildir(void)
{
	static const char uidlist[] =
		"3 V1700000000 N3 Gabc\n"
		"3 :1700000000.M1P1.h,S=6,W=7\n"
		"5 P1700000000.5-x :1700000001.M2P1.h,S=6,W=7\n"
		"9 :1700000002.M3P1.h,S=6,W=7\n";
	char root[512], path[700], buf[STORE_POP3_UIDL_MAX + 1];
	const char *const *kw;
	const char *error;
	struct store_user *su;
	struct store_mailbox *mb;
	char **subs;
	size_t nsubs;
	unsigned kw_count;

	store_fixture_setup("heron-dctest");
	su = store_fixture_user("eve");
	snprintf(root, sizeof(root), "%s", store_user_root(su));
	snprintf(path, sizeof(path), "%s/cur/1700000000.M1P1.h,S=6,W=7:2,Sb",
		 root);
	write_file(path, "hello\n");
	snprintf(path, sizeof(path), "%s/new/1700000001.M2P1.h,S=6,W=7", root);
	write_file(path, "hello\n");
	snprintf(path, sizeof(path), "%s/cur/1700000002.M3P1.h,S=6,W=7:2,a",
		 root);
	write_file(path, "hello\n");
	/* delivered after Dovecot stopped: not in its list */
	snprintf(path, sizeof(path), "%s/new/1700000003.M4P1.h,S=6,W=7", root);
	write_file(path, "hello\n");
	snprintf(path, sizeof(path), "%s/dovecot-uidlist", root);
	write_file(path, uidlist);
	snprintf(path, sizeof(path), "%s/dovecot-keywords", root);
	write_file(path, "0 $Label1\n1 Junk\n");
	snprintf(path, sizeof(path), "%s/subscriptions", root);
	write_file(path, "V\t2\n\nWork\tSub\n");

	test_assert(store_mailbox_open(su, "INBOX", &mb, &error) == 0);
	test_assert(store_mailbox_uidvalidity(mb) == 1700000000);
	test_assert(store_mailbox_count(mb) == 4);
	test_assert(store_mailbox_uidnext(mb) == 11);
	test_assert(store_mailbox_highestmodseq(mb) > DOVECOT_MODSEQ_FLOOR);
	if (store_mailbox_count(mb) == 4) {
		const struct store_msg *m0 = store_mailbox_msg(mb, 0),
			*m1 = store_mailbox_msg(mb, 1),
			*m2 = store_mailbox_msg(mb, 2),
			*m3 = store_mailbox_msg(mb, 3);

		test_assert(m0->uid == 3 && m1->uid == 5 && m2->uid == 9 &&
			    m3->uid == 10);
		test_assert(m0->flags == STORE_FLAG_SEEN && m0->keywords == 2);
		test_assert(m2->keywords == 1);
		test_assert_streq(store_msg_pop3_uidl(mb, m0, buf,
						      sizeof(buf)),
				  "000000036553f100");
		test_assert_streq(store_msg_pop3_uidl(mb, m1, buf,
						      sizeof(buf)),
				  "1700000000.5-x");
		test_assert_streq(store_msg_pop3_uidl(mb, m3, buf,
						      sizeof(buf)),
				  "0000000a6553f100");
	}
	test_assert(store_mailbox_keyword_names(mb, &kw, &kw_count,
						&error) == 0 &&
		    kw_count == 2 && strcmp(kw[0], "$Label1") == 0 &&
		    strcmp(kw[1], "Junk") == 0);
	store_mailbox_close(&mb);

	/* Dovecot's subscriptions until Heron writes its own file */
	test_assert(store_subscriptions_get(su, &subs, &nsubs, &error) == 0 &&
		    nsubs == 1 && strcmp(subs[0], "Work/Sub") == 0);
	store_subscriptions_free(&subs);
	test_assert(store_subscriptions_set(su, "INBOX", true, &error) == 0);
	test_assert(store_subscriptions_get(su, &subs, &nsubs, &error) == 0 &&
		    nsubs == 2);
	store_subscriptions_free(&subs);
	snprintf(path, sizeof(path), "%s/subscriptions", root);
	test_assert_streq(read_all(path), "V\t2\n\nWork\tSub\n");
	snprintf(path, sizeof(path), "%s/dovecot-uidlist", root);
	test_assert_streq(read_all(path), uidlist);

	/* index lost: heron-uidlist (now written) rebuilds the same UIDs */
	store_user_close(&su);
	snprintf(path, sizeof(path), "%s/heron.index", root);
	test_assert(unlink(path) == 0);
	su = store_fixture_user("eve");
	test_assert(store_mailbox_open(su, "INBOX", &mb, &error) == 0);
	test_assert(store_mailbox_uidvalidity(mb) == 1700000000);
	test_assert(store_mailbox_count(mb) == 4 &&
		    store_mailbox_msg(mb, 3)->uid == 10);
	store_mailbox_close(&mb);
	store_user_close(&su);
	teardown();
}

int main(void)
{
	test_run("dovecot-uidlist import", test_uidlist_import);
	test_run("dovecot subscriptions", test_subscriptions_read);
	test_run("open a Dovecot Maildir", test_open_dovecot_maildir);
	return test_done("store_dovecot");
}
