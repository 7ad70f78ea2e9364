/* cmd_search.c: SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4)
 * with ESEARCH result options (RFC 4731: RETURN (MIN MAX ALL COUNT)),
 * SEARCHRES (RFC 5182: RETURN (SAVE) and "$"), CONDSTORE MODSEQ (RFC
 * 7162 3.1.5) and WITHIN OLDER/YOUNGER (RFC 5032). The keys are parsed
 * and evaluated by imap_search.c; the view is walked in time slices by
 * imap_search_run.c, which also writes the result lines. */
#include "imap/imap_client.h"

#include <stdlib.h>

#include "imap/imap_search_run.h"
#include "lib/xmalloc.h"

struct search_ctx {
	struct imap_search_run run;
	unsigned ret;			/* enum imap_search_return */
	bool is_esearch;		/* reply with ESEARCH */
};

static void search_ctx_free(void *_ctx)
{
	struct search_ctx *ctx = _ctx;

	imap_search_run_deinit(&ctx->run);
	free(ctx);
}

static void search_finish(struct imap_cmd *cmd, struct search_ctx *ctx)
{
	const struct imap_search_run *run = &ctx->run;

	if (run->has_error) {
		if (ctx->ret & IMAP_SEARCH_RETURN_SAVE)
			cmd->client->saved_count = 0;
		imap_cmd_no(cmd, "[SERVERBUG] Search failed: messages could "
			    "not be read");
		return;
	}
	if (ctx->ret & IMAP_SEARCH_RETURN_SAVE)
		imap_search_save(cmd->client, run->seqs, run->count,
				 ctx->ret);
	if (!ctx->is_esearch)
		imap_search_reply_list(cmd, "SEARCH", run->seqs, run->count,
				       run->prog->has_modseq);
	else if (ctx->ret != IMAP_SEARCH_RETURN_SAVE)
		/* RFC 5182 2.4: SAVE alone gives no ESEARCH */
		imap_search_reply_esearch(cmd, run->seqs, run->count,
					  ctx->ret, run->prog->has_modseq);
	imap_cmd_ok(cmd, "%sSEARCH completed", cmd->uid ? "UID " : "");
}

static int search_continue(struct imap_cmd *cmd)
{
	struct search_ctx *ctx = cmd->ctx;

	if (!imap_search_run_slice(cmd, &ctx->run, search_continue))
		return IMAP_CMD_AGAIN;
	search_finish(cmd, ctx);
	return IMAP_CMD_DONE;
}

int cmd_search(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct search_ctx *ctx = xcalloc(1, sizeof(*ctx));
	int used;

	cmd->ctx = ctx;
	cmd->ctx_free = search_ctx_free;
	ctx->run.what = "search";
	ctx->is_esearch = (client->enabled & IMAP_ENABLED_IMAP4REV2) != 0;
	/* RFC 4731 3.1: RETURN (...) before the keys */
	if ((used = imap_search_parse_return(cmd->args, cmd->args_count,
					     ~0u, &ctx->ret)) < 0) {
		imap_cmd_bad(cmd, "Invalid RETURN options");
		return IMAP_CMD_DONE;
	}
	if (used > 0)
		ctx->is_esearch = true;
	if (ctx->is_esearch && ctx->ret == 0)
		ctx->ret = IMAP_SEARCH_RETURN_ALL;	/* RFC 9051 6.4.4 */
	if (imap_search_run_parse(cmd, &ctx->run, cmd->args + used,
				  cmd->args_count - (size_t)used) < 0) {
		/* RFC 5182 2.1: a failed SEARCH ... SAVE empties "$" */
		if (ctx->ret & IMAP_SEARCH_RETURN_SAVE)
			client->saved_count = 0;
		return IMAP_CMD_DONE;
	}
	return search_continue(cmd);
}
