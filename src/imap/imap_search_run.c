/* imap_search_run.c: a search program run over the selected view for
 * SEARCH and SORT/THREAD (contract: imap_search_run.h).
 *
 * The view is walked in slices: after SEARCH_SLICE_USECS of work the
 * caller returns IMAP_CMD_AGAIN and is woken from the event loop, so a
 * BODY search over a big mailbox does not hold the worker. Messages are
 * opened only when a header or body key is undecided after the index
 * record (imap_search_eval_cheap). The MIME tree of a multipart message
 * comes from the store's cache (shared with FETCH, imap_fetch.h) when
 * there, so a body search reads each file once; trees parsed here are
 * queued for the cache (written when the queue is full and at the end). */
#include "imap/imap_search_run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "imap/imap_fetch.h"
#include "lib/log.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"

/* Work done before yielding to the other sessions of the worker. */
#define SEARCH_SLICE_USECS 8000
/* Index-only messages between clock reads. */
#define SEARCH_CLOCK_EVERY 256

struct search_read_ctx {
	struct imap_search_file file;	/* first: imap_search_file_read */
	struct store_mailbox *mb;
	uint32_t uid;
};

void imap_search_run_deinit(struct imap_search_run *run)
{
	imap_search_free(&run->prog);
	free(run->seqs);
	run->seqs = NULL;
	run->count = run->cap = 0;
}

/* ---- parsing ---- */

int imap_search_parse_return(const struct imap_arg *args, size_t count,
			     unsigned allowed, unsigned *ret_r)
{
	static const struct { const char *name; unsigned bit; } opts[] = {
		{ "MIN", IMAP_SEARCH_RETURN_MIN },
		{ "MAX", IMAP_SEARCH_RETURN_MAX },
		{ "ALL", IMAP_SEARCH_RETURN_ALL },
		{ "COUNT", IMAP_SEARCH_RETURN_COUNT },
		{ "SAVE", IMAP_SEARCH_RETURN_SAVE },
	};
	const size_t n_opts = sizeof(opts) / sizeof(opts[0]);
	const struct imap_arg *list;
	size_t list_count, j;

	if (count < 2 || !imap_arg_atom_equals(&args[0], "RETURN"))
		return 0;
	if (!imap_arg_get_list(&args[1], &list, &list_count))
		return -1;
	for (size_t i = 0; i < list_count; i++) {
		for (j = 0; j < n_opts; j++) {
			if (imap_arg_atom_equals(&list[i], opts[j].name))
				break;
		}
		if (j == n_opts || (opts[j].bit & allowed) == 0)
			return -1;
		*ret_r |= opts[j].bit;
	}
	if (*ret_r == 0)
		*ret_r = IMAP_SEARCH_RETURN_ALL;	/* "RETURN ()" */
	return 2;
}

static int search_keyword_index(void *_ctx, const char *name,
				unsigned *idx_r)
{
	struct imap_client *client = _ctx;
	const char *error;

	return store_mailbox_keyword_index(client->mb, name, false, idx_r,
					   &error);
}

static void search_env_init(struct imap_client *client,
			    struct imap_search_env *env)
{
	uint32_t count = imap_client_count(client);

	memset(env, 0, sizeof(*env));
	env->msg_count = count;
	env->max_uid = count > 0 ? imap_client_msg(client, count)->uid : 0;
	env->saved_uids = client->saved_uids;
	env->saved_count = client->saved_uids != NULL ? client->saved_count :
		0;
	env->keyword_index = search_keyword_index;
	env->ctx = client;
	env->now = time(NULL);
}

/* RFC 6855 3: after ENABLE UTF8=ACCEPT a CHARSET other than UTF-8 (or
 * its subset US-ASCII, RFC 9051 6.4.4) conflicts. */
static bool search_charset_conflicts(const struct imap_client *client,
				     const struct imap_arg *args,
				     size_t count)
{
	const char *cs;

	if ((client->enabled & IMAP_ENABLED_UTF8) == 0 || count < 2 ||
	    !imap_arg_atom_equals(&args[0], "CHARSET"))
		return false;
	return !imap_arg_get_astring(&args[1], &cs, NULL) ||
		(strcasecmp(cs, "UTF-8") != 0 &&
		 strcasecmp(cs, "US-ASCII") != 0);
}

/* RFC 7162 3.1: MODSEQ is a CONDSTORE enabling key. */
static void search_enable_condstore(struct imap_client *client)
{
	if ((client->enabled & IMAP_ENABLED_CONDSTORE) != 0)
		return;
	client->enabled |= IMAP_ENABLED_CONDSTORE;
	imap_client_untagged(client, "OK [HIGHESTMODSEQ %llu] Highest",
		(unsigned long long)store_mailbox_highestmodseq(client->mb));
}

int imap_search_run_parse(struct imap_cmd *cmd, struct imap_search_run *run,
			  const struct imap_arg *args, size_t count)
{
	struct imap_client *client = cmd->client;
	struct imap_search_env env;
	const char *error;
	int ret;

	if (search_charset_conflicts(client, args, count)) {
		imap_cmd_bad(cmd, "CHARSET conflicts with UTF8=ACCEPT");
		return -1;
	}
	search_env_init(client, &env);
	ret = imap_search_parse(args, count, &env, &run->prog, &error);
	if (ret == IMAP_SEARCH_ERR_CHARSET)
		imap_cmd_no(cmd, "%s", error);
	else if (ret < 0)
		imap_cmd_bad(cmd, "%s", error);
	if (ret < 0)
		return -1;
	if (run->prog->has_modseq)
		search_enable_condstore(client);
	return 0;
}

/* ---- evaluation ---- */

static uint64_t now_usecs(void)
{
	return time_mono_nsecs() / 1000;
}

static struct message_part *search_parts_get(void *_ctx)
{
	struct search_read_ctx *rc = _ctx;
	struct message_part *root;
	bool is_full;

	if (imap_parts_cache_get(rc->mb, rc->uid, true, &root, &is_full) > 0)
		return root;
	return NULL;
}

static void search_parts_put(void *_ctx, const struct message_part *root)
{
	struct search_read_ctx *rc = _ctx;

	imap_parts_cache_put(rc->mb, rc->uid, root, true);
}

/* The message's content is needed: open it and evaluate fully. */
static int search_content(struct imap_cmd *cmd, struct imap_search_run *run,
			  const struct imap_search_msg *m)
{
	struct imap_client *client = cmd->client;
	struct search_read_ctx rc;
	const char *error;
	int ret;

	if ((rc.file.fd = store_msg_open(client->mb, m->msg, &error)) < 0) {
		if (errno == ENOENT)
			return IMAP_SEARCH_NO;	/* expunged meanwhile */
		log_error("imap %s user=%s uid=%u: %s", run->what,
			  client->user, m->msg->uid, error);
		run->has_error = true;
		return IMAP_SEARCH_NO;
	}
	rc.file.size = m->msg->size > 0 ? m->msg->size : UINT64_MAX;
	rc.mb = client->mb;
	rc.uid = m->msg->uid;
	ret = imap_search_eval_content_parts(run->prog, m,
					     imap_search_file_read, &rc,
					     search_parts_get,
					     search_parts_put);
	if (ret < 0) {
		log_error("imap %s user=%s uid=%u: read() failed: %m",
			  run->what, client->user, m->msg->uid);
		run->has_error = true;
		ret = IMAP_SEARCH_NO;
	}
	close(rc.file.fd);
	return ret;
}

/* A match: to the caller, or into seqs. Returns true if a file was
 * read. */
static bool search_add(struct imap_cmd *cmd, struct imap_search_run *run,
		       const struct imap_search_msg *m)
{
	if (run->match != NULL)
		return run->match(cmd, m->seq, m->msg);
	if (run->count == run->cap) {
		run->cap = run->cap == 0 ? 256 : run->cap * 2;
		run->seqs = xreallocarray(run->seqs, run->cap,
					  sizeof(*run->seqs));
	}
	run->seqs[run->count++] = m->seq;
	return false;
}

/* Evaluates messages until the slice is used up. Returns true when the
 * whole view was searched. */
static bool search_slice(struct imap_cmd *cmd, struct imap_search_run *run)
{
	struct imap_client *client = cmd->client;
	uint32_t count = imap_client_count(client);
	uint64_t start = now_usecs();
	unsigned since_clock = 0;

	for (; run->next_seq <= count; run->next_seq++) {
		struct imap_search_msg m;
		int r;

		m.seq = run->next_seq;
		m.msg = imap_client_msg(client, m.seq);
		m.is_recent = imap_client_is_recent(client, m.msg->uid);
		r = imap_search_eval_cheap(run->prog, &m);
		if (r == IMAP_SEARCH_MAYBE) {
			r = search_content(cmd, run, &m);
			since_clock = SEARCH_CLOCK_EVERY;
		}
		if (r == IMAP_SEARCH_YES && search_add(cmd, run, &m))
			since_clock = SEARCH_CLOCK_EVERY;
		if (++since_clock >= SEARCH_CLOCK_EVERY) {
			since_clock = 0;
			if (now_usecs() - start >= SEARCH_SLICE_USECS &&
			    run->next_seq < count) {
				run->next_seq++;
				return false;
			}
		}
	}
	return true;
}

bool imap_search_run_slice(struct imap_cmd *cmd, struct imap_search_run *run,
			   int (*resume)(struct imap_cmd *cmd))
{
	const char *error;

	if (run->next_seq == 0)
		run->next_seq = 1;
	/* A full queue is written by the next put; the rest at the end. */
	if (!search_slice(cmd, run)) {
		cmd->resume = resume;
		imap_cmd_wake(cmd);
		return false;
	}
	if (store_msg_cache_flush(cmd->client->mb, &error) < 0)
		log_warn("imap %s cache flush user=%s: %s", run->what,
			 cmd->client->user, error);
	return true;
}

/* ---- replies ---- */

static uint32_t search_number(struct imap_cmd *cmd, uint32_t seq)
{
	return cmd->uid ? imap_client_msg(cmd->client, seq)->uid : seq;
}

/* Highest modseq of the messages in seqs[0..count). */
static uint64_t search_max_modseq(struct imap_cmd *cmd, const uint32_t *seqs,
				  size_t count)
{
	uint64_t max = 0;

	for (size_t i = 0; i < count; i++) {
		uint64_t ms = imap_client_msg(cmd->client, seqs[i])->modseq;

		if (ms > max)
			max = ms;
	}
	return max;
}

void imap_search_reply_list(struct imap_cmd *cmd, const char *name,
			    const uint32_t *seqs, size_t count,
			    bool with_modseq)
{
	struct evbuffer *out = imap_client_output(cmd->client);

	evbuffer_add_printf(out, "* %s", name);
	for (size_t i = 0; i < count; i++)
		evbuffer_add_printf(out, " %u", search_number(cmd, seqs[i]));
	/* RFC 7162 3.1.5 */
	if (with_modseq && count > 0)
		evbuffer_add_printf(out, " (MODSEQ %llu)",
			(unsigned long long)search_max_modseq(cmd, seqs,
							      count));
	evbuffer_add(out, "\r\n", 2);
}

/* The messages as a set "1:3,7" (UIDs for UID commands; UIDs ascend
 * with sequence numbers); RFC 5267 3: in sort order only ascending runs
 * become ranges. */
static void search_add_set(struct imap_cmd *cmd, struct evbuffer *out,
			   const uint32_t *seqs, size_t count)
{
	for (size_t i = 0; i < count;) {
		uint32_t first = search_number(cmd, seqs[i]), last = first;
		size_t j = i + 1;

		while (j < count && last < UINT32_MAX &&
		       search_number(cmd, seqs[j]) == last + 1) {
			last++;
			j++;
		}
		evbuffer_add_printf(out, i == 0 ? "%u" : ",%u", first);
		if (last != first)
			evbuffer_add_printf(out, ":%u", last);
		i = j;
	}
}

/* RFC 7162 3.1.5: the highest of the messages returned: the MIN one,
 * the MAX one, or both of them. */
static uint64_t search_esearch_modseq(struct imap_cmd *cmd,
				      const uint32_t *seqs, size_t count,
				      unsigned ret)
{
	uint32_t ends[2];
	size_t n = 0;

	if (ret & IMAP_SEARCH_RETURN_MIN)
		ends[n++] = seqs[0];
	if (ret & IMAP_SEARCH_RETURN_MAX)
		ends[n++] = seqs[count - 1];
	if ((ret & (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT)) ||
	    n == 0)
		return search_max_modseq(cmd, seqs, count);
	return search_max_modseq(cmd, ends, n);
}

void imap_search_reply_esearch(struct imap_cmd *cmd, const uint32_t *seqs,
			       size_t count, unsigned ret, bool with_modseq)
{
	struct evbuffer *out = imap_client_output(cmd->client);

	evbuffer_add_printf(out, "* ESEARCH (TAG \"%s\")%s", cmd->tag,
			    cmd->uid ? " UID" : "");
	if (count > 0) {
		if (ret & IMAP_SEARCH_RETURN_MIN)
			evbuffer_add_printf(out, " MIN %u",
					    search_number(cmd, seqs[0]));
		if (ret & IMAP_SEARCH_RETURN_MAX)
			evbuffer_add_printf(out, " MAX %u",
				search_number(cmd, seqs[count - 1]));
		if (ret & IMAP_SEARCH_RETURN_ALL) {
			evbuffer_add(out, " ALL ", 5);
			search_add_set(cmd, out, seqs, count);
		}
	}
	if (ret & IMAP_SEARCH_RETURN_COUNT)
		evbuffer_add_printf(out, " COUNT %zu", count);
	if (with_modseq && count > 0)
		evbuffer_add_printf(out, " MODSEQ %llu", (unsigned long long)
			search_esearch_modseq(cmd, seqs, count, ret));
	evbuffer_add(out, "\r\n", 2);
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void imap_search_save(struct imap_client *client, const uint32_t *seqs,
		      size_t count, unsigned ret)
{
	bool ends_only = (ret & (IMAP_SEARCH_RETURN_MIN |
				 IMAP_SEARCH_RETURN_MAX)) &&
		!(ret & (IMAP_SEARCH_RETURN_ALL | IMAP_SEARCH_RETURN_COUNT));
	size_t n = 0;

	free(client->saved_uids);
	client->saved_uids = xreallocarray(NULL, count + 1, sizeof(uint32_t));
	for (size_t i = 0; i < count; i++) {
		bool keep = !ends_only ||
			((ret & IMAP_SEARCH_RETURN_MIN) && i == 0) ||
			((ret & IMAP_SEARCH_RETURN_MAX) && i == count - 1);

		if (keep)
			client->saved_uids[n++] =
				imap_client_msg(client, seqs[i])->uid;
	}
	/* A set: kept ascending (SORT hands them in sort order), as the
	 * lookups of "$" expect. */
	qsort(client->saved_uids, n, sizeof(uint32_t), uid_cmp);
	client->saved_count = n;
}
