/* cmd_sort.c: SORT, UID SORT, THREAD and UID THREAD (RFC 5256), with
 * ESORT result options (RFC 5267 3: SORT RETURN (MIN MAX COUNT ALL)).
 * The search keys after the charset are a SEARCH program (imap_search.h);
 * sort keys and threading are imap_sort.c and imap_thread.c.
 *
 * Like SEARCH, the view is walked in time slices (imap_search_run.h: the
 * handler returns IMAP_CMD_AGAIN and is woken from the event loop); each
 * match gets its sort data at once: index values, or header values from
 * the MIME tree in the store's cache (shared with FETCH ENVELOPE) or,
 * when not cached, from the message's header alone (at most
 * SORT_HEADER_MAX bytes read), whose tree is then queued for the cache.
 * THREAD=REFERENCES always reads the header: References is not in the
 * cached tree. Kept per match: a few short keys (imap_sort.h). The sort
 * or threading itself runs at the end in one go (n log n in memory). */
#include "imap/imap_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "imap/imap_fetch.h"
#include "imap/imap_search_run.h"
#include "imap/imap_sort.h"
#include "imap/imap_thread.h"
#include "lib/log.h"
#include "lib/strbuf.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"
#include "mail/rfc5322.h"

/* Header bytes read for the sort keys; a longer header is cut there. */
#define SORT_HEADER_MAX (256 * 1024)

struct sort_ctx {
	struct imap_search_run run;
	bool is_thread;
	struct imap_sort_program sort;
	enum imap_thread_alg alg;
	unsigned ret;		/* enum imap_search_return; 0: SORT */
	unsigned needs;			/* enum imap_sort_need */
	bool needs_refs;		/* THREAD=REFERENCES */
	struct imap_sort_item *items;	/* SORT matches */
	struct imap_thread_msg *msgs;	/* THREAD matches */
	size_t count, cap;
};

/* A message's header as sort data: the tree (cached or parsed from the
 * header) and, for REFERENCES, the References value. */
struct sort_header {
	struct message_part *root;
	char *refs;
	size_t refs_len;
};

static void sort_ctx_free(void *_ctx)
{
	struct sort_ctx *ctx = _ctx;

	imap_search_run_deinit(&ctx->run);
	for (size_t i = 0; i < ctx->count; i++) {
		if (ctx->is_thread)
			imap_thread_msg_free(&ctx->msgs[i]);
		else
			imap_sort_item_free(&ctx->items[i]);
	}
	free(ctx->items);
	free(ctx->msgs);
	free(ctx);
}

/* ---- header data ---- */

static ssize_t sort_pread(int fd, void *buf, size_t size, uint64_t off)
{
	ssize_t r;

	do {
		r = pread(fd, buf, size, (off_t)off);
	} while (r < 0 && errno == EINTR);
	return r;
}

/* Reads the header block into *buf_r (at most SORT_HEADER_MAX bytes).
 * *is_whole_r: its end was found (or the file ended). Returns the
 * length, or -1 (errno). */
static ssize_t sort_read_header(int fd, char **buf_r, bool *is_whole_r)
{
	size_t cap = 16 * 1024, len = 0, end = 0;
	char *buf = xmalloc(cap);
	ssize_t r;

	for (;;) {
		r = sort_pread(fd, buf + len, cap - len, len);
		if (r < 0) {
			free(buf);
			return -1;
		}
		len += (size_t)r;
		end = imap_fetch_header_end(buf, len);
		if (end > 0 || r == 0 || len == SORT_HEADER_MAX)
			break;
		if (len == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	*is_whole_r = end > 0 || r == 0;
	*buf_r = buf;
	return (ssize_t)(end > 0 ? end : len);
}

/* The first References field of a header block, unfolded. */
static void sort_find_refs(const char *hdr, size_t len,
			   struct sort_header *sh)
{
	struct rfc5322_field f;
	size_t pos = 0;

	while (rfc5322_header_next(hdr, len, &pos, &f)) {
		if (f.name_len == 10 &&
		    strncasecmp(f.name, "References", 10) == 0) {
			sh->refs = rfc5322_unfold(f.value, f.value_len,
						  &sh->refs_len);
			return;
		}
	}
}

/* Parses the header of the open file fd. Returns 0 or -1 (errno). */
static int sort_parse_file(struct imap_cmd *cmd, struct sort_ctx *ctx,
			   const struct store_msg *msg, int fd,
			   struct sort_header *sh)
{
	bool is_whole, was_cached = sh->root != NULL;
	struct message_parser *parser;
	char *hdr;
	ssize_t len;

	if ((len = sort_read_header(fd, &hdr, &is_whole)) < 0)
		return -1;
	if (ctx->needs_refs)
		sort_find_refs(hdr, (size_t)len, sh);
	if (!was_cached) {
		parser = message_parser_create(NULL);
		message_parser_feed(parser, hdr, (size_t)len);
		sh->root = message_parser_finish(&parser);
		/* a cut header would be a wrong tree for FETCH */
		if (is_whole)
			imap_parts_cache_put(cmd->client->mb, msg->uid,
					     sh->root, false);
	}
	free(hdr);
	return 0;
}

/* Gets msg's header data. Returns 1, 0 when the message is gone, -1 on
 * error (logged). */
static int sort_get_header(struct imap_cmd *cmd, struct sort_ctx *ctx,
			   const struct store_msg *msg,
			   struct sort_header *sh)
{
	struct imap_client *client = cmd->client;
	const char *error;
	bool is_full;
	int fd, ret;

	memset(sh, 0, sizeof(*sh));
	(void)imap_parts_cache_get(client->mb, msg->uid, false, &sh->root,
				   &is_full);
	if (sh->root != NULL && !ctx->needs_refs)
		return 1;
	if ((fd = store_msg_open(client->mb, msg, &error)) < 0) {
		message_part_free(&sh->root);
		if (errno == ENOENT)
			return 0;	/* expunged meanwhile */
		log_error("imap sort user=%s uid=%u: %s", client->user,
			  msg->uid, error);
		return -1;
	}
	ret = sort_parse_file(cmd, ctx, msg, fd, sh);
	if (ret < 0)
		log_error("imap sort user=%s uid=%u: read() failed: %m",
			  client->user, msg->uid);
	close(fd);
	if (ret < 0) {
		message_part_free(&sh->root);
		free(sh->refs);
		return -1;
	}
	return 1;
}

static void sort_header_free(struct sort_header *sh)
{
	message_part_free(&sh->root);
	free(sh->refs);
}

/* ---- collecting matches ---- */

#define FIELD(root, f) (root)->fields[f], (root)->field_lens[f]

static void sort_fill_item(struct sort_ctx *ctx, struct imap_sort_item *it,
			   const struct store_msg *msg, uint32_t seq,
			   const struct message_part *root)
{
	struct imap_sort_header h;

	memset(&h, 0, sizeof(h));
	if (root != NULL) {
		h.date = root->fields[MESSAGE_FIELD_DATE];
		h.date_len = root->field_lens[MESSAGE_FIELD_DATE];
		h.subject = root->fields[MESSAGE_FIELD_SUBJECT];
		h.subject_len = root->field_lens[MESSAGE_FIELD_SUBJECT];
		h.from = root->fields[MESSAGE_FIELD_FROM];
		h.from_len = root->field_lens[MESSAGE_FIELD_FROM];
		h.to = root->fields[MESSAGE_FIELD_TO];
		h.to_len = root->field_lens[MESSAGE_FIELD_TO];
		h.cc = root->fields[MESSAGE_FIELD_CC];
		h.cc_len = root->field_lens[MESSAGE_FIELD_CC];
	}
	imap_sort_item_fill(it, &ctx->sort, root != NULL ? &h : NULL, seq,
			    msg->internal_date, msg->vsize);
}

static void sort_fill_thread(struct imap_cmd *cmd, struct sort_ctx *ctx,
			     struct imap_thread_msg *tm,
			     const struct store_msg *msg, uint32_t seq,
			     const struct sort_header *sh)
{
	const struct message_part *root = sh->root;
	char *base;

	memset(tm, 0, sizeof(*tm));
	tm->seq = seq;
	tm->number = cmd->uid ? msg->uid : seq;
	tm->sent = imap_sort_sent_date(FIELD(root, MESSAGE_FIELD_DATE),
				       msg->internal_date);
	if (root->fields[MESSAGE_FIELD_SUBJECT] != NULL) {
		tm->is_reply = imap_sort_base_subject(
			FIELD(root, MESSAGE_FIELD_SUBJECT), &base);
		tm->subject = imap_sort_casemap(base, strlen(base));
		free(base);
	}
	if (ctx->needs_refs)
		imap_thread_msg_set_ids(tm,
			FIELD(root, MESSAGE_FIELD_MESSAGE_ID),
			sh->refs, sh->refs_len,
			FIELD(root, MESSAGE_FIELD_IN_REPLY_TO));
}

static void sort_grow(struct sort_ctx *ctx)
{
	if (ctx->count < ctx->cap)
		return;
	ctx->cap = ctx->cap == 0 ? 256 : ctx->cap * 2;
	if (ctx->is_thread)
		ctx->msgs = xreallocarray(ctx->msgs, ctx->cap,
					  sizeof(*ctx->msgs));
	else
		ctx->items = xreallocarray(ctx->items, ctx->cap,
					   sizeof(*ctx->items));
}

/* imap_search_match_func: adds a match with its sort data. Returns
 * true if a file was read. */
static bool sort_add(struct imap_cmd *cmd, uint32_t seq,
		     const struct store_msg *msg)
{
	struct sort_ctx *ctx = cmd->ctx;
	struct sort_header sh;
	int ret = 1;

	memset(&sh, 0, sizeof(sh));
	if (ctx->needs != 0 &&
	    (ret = sort_get_header(cmd, ctx, msg, &sh)) <= 0) {
		if (ret < 0)
			ctx->run.has_error = true;
		return true;
	}
	sort_grow(ctx);
	if (ctx->is_thread)
		sort_fill_thread(cmd, ctx, &ctx->msgs[ctx->count], msg, seq,
				 &sh);
	else
		sort_fill_item(ctx, &ctx->items[ctx->count], msg, seq,
			       sh.root);
	ctx->count++;
	sort_header_free(&sh);
	return ctx->needs != 0;
}

/* ---- replies ---- */

static void sort_reply(struct imap_cmd *cmd, struct sort_ctx *ctx)
{
	struct evbuffer *out = imap_client_output(cmd->client);
	struct strbuf sb = { NULL, 0, 0 };
	uint32_t *seqs;
	char *text;

	if (ctx->is_thread) {
		imap_thread_build(ctx->alg, ctx->msgs, ctx->count, &sb);
		text = strbuf_take(&sb);
		evbuffer_add_printf(out, "* THREAD%s\r\n", text);
		free(text);
		return;
	}
	imap_sort_items(ctx->items, ctx->count, &ctx->sort);
	seqs = xreallocarray(NULL, ctx->count + 1, sizeof(*seqs));
	for (size_t i = 0; i < ctx->count; i++)
		seqs[i] = ctx->items[i].seq;
	/* RFC 5182 1: SAVE works for commands based on SEARCH, SORT too */
	if (ctx->ret & IMAP_SEARCH_RETURN_SAVE)
		imap_search_save(cmd->client, seqs, ctx->count, ctx->ret);
	/* RFC 5267 3: MIN and MAX are the first and last in sort order;
	 * RFC 5182 2.4: SAVE alone gives no ESORT reply */
	if (ctx->ret != 0 && ctx->ret != IMAP_SEARCH_RETURN_SAVE)
		imap_search_reply_esearch(cmd, seqs, ctx->count, ctx->ret,
					  false);
	else if (ctx->ret == 0)
		imap_search_reply_list(cmd, "SORT", seqs, ctx->count, false);
	free(seqs);
}

static int sort_continue(struct imap_cmd *cmd)
{
	struct sort_ctx *ctx = cmd->ctx;

	if (!imap_search_run_slice(cmd, &ctx->run, sort_continue))
		return IMAP_CMD_AGAIN;
	if (ctx->run.has_error) {
		if (ctx->ret & IMAP_SEARCH_RETURN_SAVE)
			cmd->client->saved_count = 0;	/* RFC 5182 2.1 */
		imap_cmd_no(cmd, "[SERVERBUG] %s failed: messages could not "
			    "be read", ctx->is_thread ? "Thread" : "Sort");
		return IMAP_CMD_DONE;
	}
	sort_reply(cmd, ctx);
	imap_cmd_ok(cmd, "%s%s completed", cmd->uid ? "UID " : "",
		    ctx->is_thread ? "THREAD" : "SORT");
	return IMAP_CMD_DONE;
}

/* ---- parsing ---- */

/* The search program from "charset key...": SEARCH's parser with the
 * charset given as "CHARSET name" (RFC 5256 5 search-criteria).
 * Returns 0, or -1 after replying. */
static int sort_parse_search(struct imap_cmd *cmd, struct sort_ctx *ctx,
			     const struct imap_arg *args, size_t count)
{
	static char charset_word[] = "CHARSET";
	struct imap_arg *full;
	const char *cs;
	int ret;

	if (count < 2 || !imap_arg_get_astring(&args[0], &cs, NULL)) {
		imap_cmd_bad(cmd, "Missing charset or search keys");
		return -1;
	}
	full = xcalloc(count + 1, sizeof(*full));
	full[0].type = IMAP_ARG_ATOM;
	full[0].str = charset_word;
	full[0].len = sizeof(charset_word) - 1;
	memcpy(full + 1, args, count * sizeof(*args));
	/* RFC 6855 3: only UTF-8 (US-ASCII) after ENABLE UTF8=ACCEPT */
	ret = imap_search_run_parse(cmd, &ctx->run, full, count + 1);
	free(full);
	return ret;
}

/* SORT: [RETURN (...)] (criteria) charset keys. Returns 0 or -1 after
 * replying. */
static int sort_parse_sort(struct imap_cmd *cmd, struct sort_ctx *ctx)
{
	const struct imap_arg *args = cmd->args, *list;
	size_t count = cmd->args_count, list_count;
	const char *error;
	int used;

	/* RFC 5267 3: RETURN (MIN MAX COUNT ALL) before the criteria;
	 * SAVE (RFC 5182) too */
	if ((used = imap_search_parse_return(args, count, ~0u,
					     &ctx->ret)) < 0) {
		imap_cmd_bad(cmd, "Invalid RETURN options");
		return -1;
	}
	args += used;
	count -= (size_t)used;
	if (count < 1 || !imap_arg_get_list(&args[0], &list, &list_count)) {
		imap_cmd_bad(cmd, "Missing sort criteria");
		return -1;
	}
	if (imap_sort_program_parse(list, list_count, &ctx->sort,
				    &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		return -1;
	}
	ctx->needs = ctx->sort.needs;
	return sort_parse_search(cmd, ctx, args + 1, count - 1);
}

/* THREAD: algorithm charset keys. */
static int sort_parse_thread(struct imap_cmd *cmd, struct sort_ctx *ctx)
{
	if (cmd->args_count >= 1 &&
	    imap_arg_atom_equals(&cmd->args[0], "ORDEREDSUBJECT")) {
		ctx->alg = IMAP_THREAD_ORDEREDSUBJECT;
	} else if (cmd->args_count >= 1 &&
		   imap_arg_atom_equals(&cmd->args[0], "REFERENCES")) {
		ctx->alg = IMAP_THREAD_REFERENCES;
		ctx->needs_refs = true;
	} else {
		imap_cmd_bad(cmd, "Unknown threading algorithm");
		return -1;
	}
	ctx->needs = IMAP_SORT_NEED_DATE | IMAP_SORT_NEED_SUBJECT;
	return sort_parse_search(cmd, ctx, cmd->args + 1,
				 cmd->args_count - 1);
}

static int sort_start(struct imap_cmd *cmd, bool is_thread)
{
	struct sort_ctx *ctx = xcalloc(1, sizeof(*ctx));

	cmd->ctx = ctx;
	cmd->ctx_free = sort_ctx_free;
	ctx->run.what = "sort";
	ctx->run.match = sort_add;
	ctx->is_thread = is_thread;
	if ((is_thread ? sort_parse_thread(cmd, ctx) :
	     sort_parse_sort(cmd, ctx)) < 0) {
		/* RFC 5182 2.1: a failed SORT ... SAVE empties "$" */
		if (ctx->ret & IMAP_SEARCH_RETURN_SAVE)
			cmd->client->saved_count = 0;
		return IMAP_CMD_DONE;
	}
	return sort_continue(cmd);
}

int cmd_sort(struct imap_cmd *cmd)
{
	return sort_start(cmd, false);
}

int cmd_thread(struct imap_cmd *cmd)
{
	return sort_start(cmd, true);
}
