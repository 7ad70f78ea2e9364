/* cmd_search.c: SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4)
 * with ESEARCH result options (RFC 4731: RETURN (MIN MAX ALL COUNT)),
 * SEARCHRES (RFC 5182: RETURN (SAVE) and "$"), CONDSTORE MODSEQ (RFC
 * 7162 3.1.5) and WITHIN OLDER/YOUNGER (RFC 5032). The keys are parsed
 * and evaluated by imap_search.c.
 *
 * The view is walked in slices: after SEARCH_SLICE_USECS of work the
 * handler returns IMAP_CMD_AGAIN and is woken from the event loop, so a
 * BODY search over a big mailbox does not hold the worker. Messages are
 * opened only when a header or body key is undecided after the index
 * record (imap_search_eval_cheap). The MIME tree of a multipart message
 * comes from the store's cache (shared with FETCH, imap_fetch.h) when
 * there, so a body search reads each file once; trees parsed here are
 * queued for the cache (written when the queue is full and at the end). */
#include "imap/imap_client.h"
#include "imap/imap_search.h"

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

enum search_return {
	SEARCH_RETURN_MIN = 1 << 0,
	SEARCH_RETURN_MAX = 1 << 1,
	SEARCH_RETURN_ALL = 1 << 2,
	SEARCH_RETURN_COUNT = 1 << 3,
	SEARCH_RETURN_SAVE = 1 << 4,
};

struct search_ctx {
	struct imap_search_program *prog;
	unsigned ret;			/* enum search_return */
	bool is_esearch;		/* reply with ESEARCH */
	uint32_t next_seq;		/* next message to look at */
	uint32_t *seqs;			/* matches, ascending */
	size_t count, cap;
	bool has_error;
};

struct search_read_ctx {
	struct imap_search_file file;	/* first: imap_search_file_read */
	struct store_mailbox *mb;
	uint32_t uid;
};

static void search_ctx_free(void *_ctx)
{
	struct search_ctx *ctx = _ctx;

	imap_search_free(&ctx->prog);
	free(ctx->seqs);
	free(ctx);
}

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

static int search_keyword_index(void *_ctx, const char *name,
				unsigned *idx_r)
{
	struct imap_client *client = _ctx;
	const char *error;

	return store_mailbox_keyword_index(client->mb, name, false, idx_r,
					   &error);
}

/* RFC 4731 3.1: RETURN (...) before the keys. Returns the number of
 * arguments used or -1. */
static int search_parse_return(struct search_ctx *ctx,
			       const struct imap_arg *args, size_t count)
{
	static const struct { const char *name; unsigned bit; } opts[] = {
		{ "MIN", SEARCH_RETURN_MIN }, { "MAX", SEARCH_RETURN_MAX },
		{ "ALL", SEARCH_RETURN_ALL }, { "COUNT", SEARCH_RETURN_COUNT },
		{ "SAVE", SEARCH_RETURN_SAVE },
	};
	const struct imap_arg *list;
	size_t list_count, j;

	if (count < 2 || !imap_arg_atom_equals(&args[0], "RETURN"))
		return 0;
	if (!imap_arg_get_list(&args[1], &list, &list_count))
		return -1;
	ctx->is_esearch = true;
	for (size_t i = 0; i < list_count; i++) {
		for (j = 0; j < sizeof(opts) / sizeof(opts[0]); j++) {
			if (imap_arg_atom_equals(&list[i], opts[j].name))
				break;
		}
		if (j == sizeof(opts) / sizeof(opts[0]))
			return -1;
		ctx->ret |= opts[j].bit;
	}
	/* "RETURN ()" is "RETURN (ALL)" */
	if (ctx->ret == 0)
		ctx->ret = SEARCH_RETURN_ALL;
	return 2;
}

static void search_add(struct search_ctx *ctx, uint32_t seq)
{
	if (ctx->count == ctx->cap) {
		ctx->cap = ctx->cap == 0 ? 256 : ctx->cap * 2;
		ctx->seqs = xreallocarray(ctx->seqs, ctx->cap,
					  sizeof(*ctx->seqs));
	}
	ctx->seqs[ctx->count++] = seq;
}

/* The message's content is needed: open it and evaluate fully. */
static int search_content(struct imap_cmd *cmd, struct search_ctx *ctx,
			  const struct imap_search_msg *m)
{
	struct imap_client *client = cmd->client;
	struct search_read_ctx rc;
	const char *error;
	int ret;

	if ((rc.file.fd = store_msg_open(client->mb, m->msg, &error)) < 0) {
		if (errno == ENOENT)
			return IMAP_SEARCH_NO;	/* expunged meanwhile */
		log_error("imap search user=%s uid=%u: %s", client->user,
			  m->msg->uid, error);
		ctx->has_error = true;
		return IMAP_SEARCH_NO;
	}
	rc.file.size = m->msg->size > 0 ? m->msg->size : UINT64_MAX;
	rc.mb = client->mb;
	rc.uid = m->msg->uid;
	ret = imap_search_eval_content_parts(ctx->prog, m,
					     imap_search_file_read, &rc,
					     search_parts_get,
					     search_parts_put);
	if (ret < 0) {
		log_error("imap search user=%s uid=%u: read() failed: %m",
			  client->user, m->msg->uid);
		ctx->has_error = true;
		ret = IMAP_SEARCH_NO;
	}
	close(rc.file.fd);
	return ret;
}

/* Evaluates messages until the slice is used up. Returns true when the
 * whole view was searched. */
static bool search_slice(struct imap_cmd *cmd, struct search_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	uint32_t count = imap_client_count(client);
	uint64_t start = now_usecs();
	unsigned since_clock = 0;

	for (; ctx->next_seq <= count; ctx->next_seq++) {
		struct imap_search_msg m;
		int r;

		m.seq = ctx->next_seq;
		m.msg = imap_client_msg(client, m.seq);
		m.is_recent = imap_client_is_recent(client, m.msg->uid);
		r = imap_search_eval_cheap(ctx->prog, &m);
		if (r == IMAP_SEARCH_MAYBE) {
			r = search_content(cmd, ctx, &m);
			since_clock = SEARCH_CLOCK_EVERY;
		}
		if (r == IMAP_SEARCH_YES)
			search_add(ctx, m.seq);
		if (++since_clock >= SEARCH_CLOCK_EVERY) {
			since_clock = 0;
			if (now_usecs() - start >= SEARCH_SLICE_USECS &&
			    ctx->next_seq < count) {
				ctx->next_seq++;
				return false;
			}
		}
	}
	return true;
}

static uint32_t search_number(struct imap_cmd *cmd, uint32_t seq)
{
	return cmd->uid ? imap_client_msg(cmd->client, seq)->uid : seq;
}

/* Highest modseq of the matches in seqs[0..count). */
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

/* "* SEARCH 1 2 3 [(MODSEQ n)]" */
static void search_reply_plain(struct imap_cmd *cmd, struct search_ctx *ctx)
{
	struct evbuffer *out = imap_client_output(cmd->client);

	evbuffer_add(out, "* SEARCH", 8);
	for (size_t i = 0; i < ctx->count; i++)
		evbuffer_add_printf(out, " %u",
				    search_number(cmd, ctx->seqs[i]));
	/* RFC 7162 3.1.5 */
	if (ctx->prog->has_modseq && ctx->count > 0)
		evbuffer_add_printf(out, " (MODSEQ %llu)",
			(unsigned long long)search_max_modseq(cmd, ctx->seqs,
							      ctx->count));
	evbuffer_add(out, "\r\n", 2);
}

/* The matches as a sequence set "1:3,7" (UIDs for UID SEARCH; UIDs
 * ascend with sequence numbers). */
static void search_add_set(struct imap_cmd *cmd, struct evbuffer *out,
			   const struct search_ctx *ctx)
{
	for (size_t i = 0; i < ctx->count;) {
		uint32_t first = search_number(cmd, ctx->seqs[i]), last = first;
		size_t j = i + 1;

		while (j < ctx->count &&
		       search_number(cmd, ctx->seqs[j]) == last + 1) {
			last++;
			j++;
		}
		evbuffer_add_printf(out, i == 0 ? "%u" : ",%u", first);
		if (last != first)
			evbuffer_add_printf(out, ":%u", last);
		i = j;
	}
}

/* RFC 4731 3.1: "* ESEARCH (TAG "t") [UID] MIN n MAX n ALL set COUNT n",
 * MIN/MAX/ALL left out when nothing matched; RFC 7162 3.1.5 MODSEQ. */
static void search_reply_esearch(struct imap_cmd *cmd,
				 struct search_ctx *ctx)
{
	struct evbuffer *out = imap_client_output(cmd->client);
	unsigned ret = ctx->ret;
	uint32_t ends[2];
	uint64_t modseq;
	size_t n;

	evbuffer_add_printf(out, "* ESEARCH (TAG \"%s\")%s", cmd->tag,
			    cmd->uid ? " UID" : "");
	if (ctx->count > 0) {
		if (ret & SEARCH_RETURN_MIN)
			evbuffer_add_printf(out, " MIN %u",
				search_number(cmd, ctx->seqs[0]));
		if (ret & SEARCH_RETURN_MAX)
			evbuffer_add_printf(out, " MAX %u",
				search_number(cmd, ctx->seqs[ctx->count - 1]));
		if (ret & SEARCH_RETURN_ALL) {
			evbuffer_add(out, " ALL ", 5);
			search_add_set(cmd, out, ctx);
		}
	}
	if (ret & SEARCH_RETURN_COUNT)
		evbuffer_add_printf(out, " COUNT %zu", ctx->count);
	if (ctx->prog->has_modseq && ctx->count > 0) {
		/* RFC 7162 3.1.5: the highest of the messages returned: the
		 * MIN one, the MAX one, or both of them. */
		n = 0;
		if (ret & SEARCH_RETURN_MIN)
			ends[n++] = ctx->seqs[0];
		if (ret & SEARCH_RETURN_MAX)
			ends[n++] = ctx->seqs[ctx->count - 1];
		modseq = (ret & (SEARCH_RETURN_ALL | SEARCH_RETURN_COUNT)) ||
			n == 0 ?
			search_max_modseq(cmd, ctx->seqs, ctx->count) :
			search_max_modseq(cmd, ends, n);
		evbuffer_add_printf(out, " MODSEQ %llu",
				    (unsigned long long)modseq);
	}
	evbuffer_add(out, "\r\n", 2);
}

/* RFC 5182 2.4: SAVE with MIN and/or MAX alone saves those only. */
static void search_save(struct imap_cmd *cmd, struct search_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	bool ends_only = (ctx->ret & (SEARCH_RETURN_MIN | SEARCH_RETURN_MAX)) &&
		!(ctx->ret & (SEARCH_RETURN_ALL | SEARCH_RETURN_COUNT));
	size_t n = 0;

	free(client->saved_uids);
	client->saved_uids = xreallocarray(NULL, ctx->count + 1,
					   sizeof(uint32_t));
	for (size_t i = 0; i < ctx->count; i++) {
		bool keep = !ends_only ||
			((ctx->ret & SEARCH_RETURN_MIN) && i == 0) ||
			((ctx->ret & SEARCH_RETURN_MAX) &&
			 i == ctx->count - 1);

		if (keep)
			client->saved_uids[n++] =
				imap_client_msg(client, ctx->seqs[i])->uid;
	}
	client->saved_count = n;
}

static void search_finish(struct imap_cmd *cmd, struct search_ctx *ctx)
{
	if (ctx->has_error) {
		if (ctx->ret & SEARCH_RETURN_SAVE)
			cmd->client->saved_count = 0;
		imap_cmd_no(cmd, "[SERVERBUG] Search failed: messages could "
			    "not be read");
		return;
	}
	if (ctx->ret & SEARCH_RETURN_SAVE)
		search_save(cmd, ctx);
	if (!ctx->is_esearch)
		search_reply_plain(cmd, ctx);
	else if (ctx->ret != SEARCH_RETURN_SAVE)
		/* RFC 5182 2.4: SAVE alone gives no ESEARCH */
		search_reply_esearch(cmd, ctx);
	imap_cmd_ok(cmd, "%sSEARCH completed", cmd->uid ? "UID " : "");
}

/* Writes the queued trees (one index transaction). */
static void search_cache_flush(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	const char *error;

	if (store_msg_cache_flush(client->mb, &error) < 0)
		log_warn("imap search cache flush user=%s: %s", client->user,
			 error);
}

static int search_continue(struct imap_cmd *cmd)
{
	struct search_ctx *ctx = cmd->ctx;
	/* A full queue is written by the next put; the rest at the end. */
	if (!search_slice(cmd, ctx)) {
		cmd->resume = search_continue;
		imap_cmd_wake(cmd);
		return IMAP_CMD_AGAIN;
	}
	search_cache_flush(cmd);
	search_finish(cmd, ctx);
	return IMAP_CMD_DONE;
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

/* RFC 6855 3: after ENABLE UTF8=ACCEPT a SEARCH CHARSET other than
 * UTF-8 (or its subset US-ASCII, RFC 9051 6.4.4) conflicts. */
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

int cmd_search(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct search_ctx *ctx = xcalloc(1, sizeof(*ctx));
	struct imap_search_env env;
	const char *error;
	int used, ret;

	cmd->ctx = ctx;
	cmd->ctx_free = search_ctx_free;
	ctx->next_seq = 1;
	ctx->is_esearch = (client->enabled & IMAP_ENABLED_IMAP4REV2) != 0;
	if ((used = search_parse_return(ctx, cmd->args,
					cmd->args_count)) < 0) {
		imap_cmd_bad(cmd, "Invalid RETURN options");
		return IMAP_CMD_DONE;
	}
	if (ctx->is_esearch && ctx->ret == 0)
		ctx->ret = SEARCH_RETURN_ALL;	/* RFC 9051 6.4.4 */
	if (search_charset_conflicts(client, cmd->args + used,
				     cmd->args_count - (size_t)used)) {
		if (ctx->ret & SEARCH_RETURN_SAVE)
			client->saved_count = 0;
		imap_cmd_bad(cmd, "CHARSET conflicts with UTF8=ACCEPT");
		return IMAP_CMD_DONE;
	}
	search_env_init(client, &env);
	ret = imap_search_parse(cmd->args + used, cmd->args_count -
				(size_t)used, &env, &ctx->prog, &error);
	if (ret < 0) {
		/* RFC 5182 2.1: a failed SEARCH ... SAVE empties "$" */
		if (ctx->ret & SEARCH_RETURN_SAVE)
			client->saved_count = 0;
		if (ret == IMAP_SEARCH_ERR_CHARSET)
			imap_cmd_no(cmd, "%s", error);
		else
			imap_cmd_bad(cmd, "%s", error);
		return IMAP_CMD_DONE;
	}
	if (ctx->prog->has_modseq)
		search_enable_condstore(client);
	return search_continue(cmd);
}
