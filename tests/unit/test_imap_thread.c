/* test_imap_thread.c: RFC 5256 THREAD=REFERENCES (id table, dummies,
 * loops, duplicate ids, pruning, subject grouping, date sorting) and
 * THREAD=ORDEREDSUBJECT, compared as reply text. */
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"

#include <stdlib.h>
#include <string.h>

#include "test.h"

#define MAX_MSGS 8

struct msg_row {
	const char *msgid, *refs, *irt, *subject;
	time_t sent;
};

struct thread_case {
	enum imap_thread_alg alg;
	struct msg_row msgs[MAX_MSGS];	/* seq 1.., until subject NULL */
	const char *reply;
};

#define R IMAP_THREAD_REFERENCES
#define O IMAP_THREAD_ORDEREDSUBJECT

static const struct thread_case cases[] = {
	/* 0: a chain */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", "<a@x>", NULL, "", 2 },
	       { "<c@x>", "<a@x> <b@x>", NULL, "", 3 } }, " (1 2 3)" },
	/* 1: a branch */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", "<a@x>", NULL, "", 2 },
	       { "<c@x>", "<a@x>", NULL, "", 3 } }, " (1 (2)(3))" },
	/* 2: a missing parent with two children stays a dummy */
	{ R, { { "<b@x>", "<x@x>", NULL, "", 1 },
	       { "<c@x>", "<x@x>", NULL, "", 2 } }, " ((1)(2))" },
	/* 3: ... with one child it is pruned */
	{ R, { { "<b@x>", "<x@x>", NULL, "", 1 },
	       { "<c@x>", NULL, NULL, "", 2 } }, " (1)(2)" },
	/* 4: a loop is not made */
	{ R, { { "<a@x>", "<b@x>", NULL, "", 1 },
	       { "<b@x>", "<a@x>", NULL, "", 1 } }, " (2 1)" },
	/* 5: a message referencing itself */
	{ R, { { "<a@x>", "<a@x>", NULL, "", 1 } }, " (1)" },
	/* 6: duplicate Message-ID: the first keeps it */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<a@x>", NULL, NULL, "", 2 },
	       { "<c@x>", "<a@x>", NULL, "", 3 } }, " (1 3)(2)" },
	/* 7: In-Reply-To when there is no References */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", NULL, "<a@x> (foo) <zz@x>", "", 2 } },
	  " (1 2)" },
	/* 8: References win over In-Reply-To */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", NULL, NULL, "", 2 },
	       { "<c@x>", "<b@x>", "<a@x>", "", 3 } }, " (1)(2 3)" },
	/* 9: quoting does not matter (RFC 5256 3) */
	{ R, { { "<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>", NULL, NULL, "", 1 },
	       { "<b@x>", "<01KF8JCEOCBS0045PS@xxx.yyy.com>", NULL, "",
		 2 } }, " (1 2)" },
	/* 10: top level by date, then by sequence */
	{ R, { { "<a@x>", NULL, NULL, "", 30 },
	       { "<b@x>", NULL, NULL, "", 10 },
	       { "<c@x>", NULL, NULL, "", 10 } }, " (2)(3)(1)" },
	/* 11: children by date */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", "<a@x>", NULL, "", 9 },
	       { "<c@x>", "<a@x>", NULL, "", 5 } }, " (1 (3)(2))" },
	/* 12: a reply by subject joins the original */
	{ R, { { "<a@x>", NULL, NULL, "hello", 1 },
	       { "<b@x>", NULL, NULL, "Re: hello", 2 } }, " (1 2)" },
	/* 13: two originals of one subject get a dummy */
	{ R, { { "<a@x>", NULL, NULL, "hello", 1 },
	       { "<b@x>", NULL, NULL, "HELLO", 2 } }, " ((1)(2))" },
	/* 14: the original comes later: the reply still joins it */
	{ R, { { "<a@x>", NULL, NULL, "Re: hello", 1 },
	       { "<b@x>", NULL, NULL, "hello", 2 } }, " (2 1)" },
	/* 15: a dummy (lost parent) collects a same-subject message */
	{ R, { { "<b@x>", "<x@x>", NULL, "s", 1 },
	       { "<c@x>", "<x@x>", NULL, "Re: s", 2 },
	       { "<d@x>", NULL, NULL, "s", 3 } }, " ((1)(2)(3))" },
	/* 16: empty subjects are not grouped */
	{ R, { { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", NULL, NULL, "Re: ", 2 } }, " (1)(2)" },
	/* 17: an existing parent is kept (1A), the last ref wins (1B);
	 * b has no references itself, so 1B leaves it without parent */
	{ R, { { "<c@x>", "<a@x> <b@x>", NULL, "", 3 },
	       { "<d@x>", "<z@x> <b@x> <c@x>", NULL, "", 4 },
	       { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", NULL, NULL, "", 2 } }, " (3)(4 1 2)" },
	/* 18: ... b with its own reference to a keeps it */
	{ R, { { "<c@x>", "<a@x> <b@x>", NULL, "", 3 },
	       { "<a@x>", NULL, NULL, "", 1 },
	       { "<b@x>", "<a@x>", NULL, "", 2 } }, " (2 3 1)" },
	/* 19: no Message-ID at all */
	{ R, { { NULL, NULL, NULL, "", 2 },
	       { NULL, NULL, NULL, "", 1 } }, " (2)(1)" },
	/* ORDEREDSUBJECT */
	{ O, { { NULL, NULL, NULL, "a", 3 },
	       { NULL, NULL, NULL, "b", 1 },
	       { NULL, NULL, NULL, "Re: a", 2 },
	       { NULL, NULL, NULL, "A", 4 } }, " (2)(3 (1)(4))" },
	{ O, { { NULL, NULL, NULL, "x", 2 },
	       { NULL, NULL, NULL, "Re: x", 1 } }, " (2 1)" },
	{ O, { { NULL, NULL, NULL, "", 2 },
	       { NULL, NULL, NULL, "z", 1 },
	       { NULL, NULL, NULL, NULL, 0 } }, " (2)(1)" },
	/* nothing */
	{ O, { { NULL, NULL, NULL, NULL, 0 } }, "" },
};

static size_t fill(const struct thread_case *c, struct imap_thread_msg *m)
{
	size_t n = 0;

	for (; n < MAX_MSGS && c->msgs[n].subject != NULL; n++) {
		const struct msg_row *r = &c->msgs[n];
		char *base;

		memset(&m[n], 0, sizeof(m[n]));
		m[n].seq = (uint32_t)n + 1;
		m[n].number = (uint32_t)n + 1;
		m[n].sent = r->sent;
		m[n].is_reply = imap_sort_base_subject(r->subject,
						       strlen(r->subject),
						       &base);
		m[n].subject = imap_sort_casemap(base, strlen(base));
		free(base);
		imap_thread_msg_set_ids(&m[n], r->msgid,
					r->msgid ? strlen(r->msgid) : 0,
					r->refs, r->refs ? strlen(r->refs) : 0,
					r->irt, r->irt ? strlen(r->irt) : 0);
	}
	return n;
}

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_thread_msg m[MAX_MSGS];
		struct strbuf sb = { NULL, 0, 0 };
		size_t n = fill(&cases[i], m);
		char *text;

		imap_thread_build(cases[i].alg, m, n, &sb);
		text = strbuf_take(&sb);
		test_assert_streq_idx(text, cases[i].reply, (int)i);
		free(text);
		for (size_t k = 0; k < n; k++)
			imap_thread_msg_free(&m[k]);
	}
}

/* At most IMAP_THREAD_REFS_MAX references, the last ones. */
static void test_refs_limit(void)
{
	struct imap_thread_msg m;
	char buf[200 * 16];
	size_t len = 0;

	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"<%d@x> ", i);
	memset(&m, 0, sizeof(m));
	imap_thread_msg_set_ids(&m, NULL, 0, buf, len, NULL, 0);
	test_assert(m.refs_count == IMAP_THREAD_REFS_MAX);
	test_assert_streq(m.refs[m.refs_count - 1], "199@x");
	test_assert_streq(m.refs[0], "136@x");
	imap_thread_msg_free(&m);
}

/* A long reply chain, and a long comb (each message with a leaf reply):
 * no recursion, so no stack trouble; the chain is one flat list. */
static void test_deep(void)
{
	enum { N = 100000 };
	struct imap_thread_msg *m = calloc(N, sizeof(*m));
	struct strbuf sb = { NULL, 0, 0 };
	char id[32], ref[32];
	char *text;

	for (uint32_t i = 0; i < N; i++) {
		m[i].seq = m[i].number = i + 1;
		m[i].sent = i;
		snprintf(id, sizeof(id), "<%u@x>", i);
		/* comb: even messages continue the spine from i-2, odd
		 * ones are leaves under i-1 */
		snprintf(ref, sizeof(ref), "<%u@x>",
			 i % 2 == 0 ? (i >= 2 ? i - 2 : 0) : i - 1);
		imap_thread_msg_set_ids(&m[i], id, strlen(id), ref,
					i == 0 ? 0 : strlen(ref), NULL, 0);
	}
	imap_thread_build(IMAP_THREAD_REFERENCES, m, N, &sb);
	text = strbuf_take(&sb);
	test_assert(strncmp(text, " (1 (2)(3 (4)(5 ", 16) == 0);
	free(text);
	for (uint32_t i = 0; i < N; i++)
		imap_thread_msg_free(&m[i]);
	free(m);
}

int main(void)
{
	test_run("cases", test_cases);
	test_run("refs_limit", test_refs_limit);
	test_run("deep", test_deep);
	return test_done("imap_thread");
}
