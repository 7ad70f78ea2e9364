/* cmd_expunge.c: EXPUNGE (RFC 3501 6.4.3), UID EXPUNGE (RFC 4315 2.1),
 * CLOSE (RFC 3501 6.4.2) and UNSELECT (RFC 3691).
 *
 * The \Deleted messages (of the given UID set for UID EXPUNGE) are taken
 * from the view after a sync, and removed with store_msgs_expunge in
 * batches of EXPUNGE_BATCH_MSGS; after each batch imap_client_sync()
 * reports them ("* n EXPUNGE", numbers adjusted as RFC 3501 7.4.1 asks)
 * and updates the view (with QRESYNC: "* VANISHED uids", RFC 7162
 * 3.2.10, and HIGHESTMODSEQ in the tagged OK). Between batches the
 * handler returns IMAP_CMD_AGAIN so other sessions of the worker keep
 * running. CLOSE removes the same messages silently, then closes the
 * mailbox. */
#include "imap/imap_client.h"

#include <stdlib.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* Messages per store_msgs_expunge call. */
#define EXPUNGE_BATCH_MSGS 500

struct expunge_ctx {
	uint32_t *uids;			/* to remove, ascending */
	size_t count, pos;
	bool is_close;			/* CLOSE: silent, then unselect */
};

static void expunge_ctx_free(void *_ctx)
{
	struct expunge_ctx *ctx = _ctx;

	free(ctx->uids);
	free(ctx);
}

/* The \Deleted messages of the view; only those in seqs (count
 * seqs_count) when seqs is not NULL. */
static void expunge_collect(struct imap_client *client,
			    struct expunge_ctx *ctx, const uint32_t *seqs,
			    size_t seqs_count)
{
	uint32_t count = imap_client_count(client);
	size_t n = seqs != NULL ? seqs_count : count;

	ctx->uids = xcalloc(n > 0 ? n : 1, sizeof(*ctx->uids));
	for (size_t i = 0; i < n; i++) {
		uint32_t seq = seqs != NULL ? seqs[i] : (uint32_t)(i + 1);
		const struct store_msg *msg = imap_client_msg(client, seq);

		if ((msg->flags & STORE_FLAG_DELETED) != 0)
			ctx->uids[ctx->count++] = msg->uid;
	}
}

/* Removes one batch. Returns 0, or -1 after replying NO. */
static int expunge_batch(struct imap_cmd *cmd, struct expunge_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	size_t n = ctx->count - ctx->pos;
	const char *error;

	if (n > EXPUNGE_BATCH_MSGS)
		n = EXPUNGE_BATCH_MSGS;
	if (store_msgs_expunge(client->mb, ctx->uids + ctx->pos, n,
			       &error) < 0) {
		log_error("imap store_msgs_expunge(%s) failed id=%llu "
			  "user=%s: %s", client->mailbox_name,
			  (unsigned long long)conn_id(client->conn),
			  client->user, error);
		if (ctx->is_close)
			imap_client_unselect(client);
		imap_cmd_no(cmd, "[SERVERBUG] Expunge failed");
		return -1;
	}
	ctx->pos += n;
	/* RFC 3501 7.4.1: CLOSE sends no EXPUNGE responses. */
	if (!ctx->is_close)
		imap_client_sync(client, true);
	return 0;
}

static int expunge_continue(struct imap_cmd *cmd)
{
	struct expunge_ctx *ctx = cmd->ctx;

	if (ctx->pos < ctx->count) {
		if (imap_client_output_full(cmd->client))
			return IMAP_CMD_AGAIN;	/* resumed on drain */
		if (expunge_batch(cmd, ctx) < 0)
			return IMAP_CMD_DONE;
		if (ctx->pos < ctx->count) {
			/* resumed by the drain of our output, or woken */
			if (evbuffer_get_length(
				imap_client_output(cmd->client)) == 0)
				imap_cmd_wake(cmd);
			return IMAP_CMD_AGAIN;
		}
	}
	if (ctx->is_close) {
		/* RFC 7162 3.2.8: no HIGHESTMODSEQ here */
		imap_client_unselect(cmd->client);
		imap_cmd_ok(cmd, "Close completed");
	} else if (ctx->count > 0 &&
		   (cmd->client->enabled & IMAP_ENABLED_QRESYNC)) {
		/* RFC 7162 3.2.7 / 3.2.9: the new HIGHESTMODSEQ (all
		 * changes up to it were reported by the batches' syncs) */
		imap_cmd_ok(cmd, "[HIGHESTMODSEQ %llu] Expunge completed",
			    (unsigned long long)
			    store_mailbox_highestmodseq(cmd->client->mb));
	} else {
		imap_cmd_ok(cmd, "Expunge completed");
	}
	return IMAP_CMD_DONE;
}

static int expunge_start(struct imap_cmd *cmd, struct expunge_ctx *ctx)
{
	cmd->ctx = ctx;
	cmd->ctx_free = expunge_ctx_free;
	cmd->resume = expunge_continue;
	return expunge_continue(cmd);
}

int cmd_expunge(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct expunge_ctx *ctx;
	uint32_t *seqs = NULL;
	size_t seqs_count = 0;
	const char *error;

	if (cmd->args_count != (cmd->uid ? 1 : 0)) {
		imap_cmd_bad(cmd, cmd->uid ? "UID EXPUNGE needs a UID set" :
			     "EXPUNGE takes no arguments");
		return IMAP_CMD_DONE;
	}
	if (client->is_readonly) {
		/* RFC 3501 6.4.3 / 2180 4.1.1: not in a read-only mailbox */
		imap_cmd_no(cmd, "Mailbox is read-only");
		return IMAP_CMD_DONE;
	}
	/* Current flags first: another session may have (un)set
	 * \Deleted; EXPUNGE responses are allowed here. */
	imap_client_sync(client, true);
	if (client->state != IMAP_STATE_SELECTED) {	/* BYE sent */
		imap_cmd_no(cmd, "Mailbox is gone");
		return IMAP_CMD_DONE;
	}
	if (cmd->uid && imap_client_seqset(client, &cmd->args[0], true, &seqs,
					   &seqs_count, &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		return IMAP_CMD_DONE;
	}
	ctx = xcalloc(1, sizeof(*ctx));
	expunge_collect(client, ctx, cmd->uid ? seqs : NULL, seqs_count);
	free(seqs);
	return expunge_start(cmd, ctx);
}

/* CLOSE and UNSELECT. */
int cmd_close(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct expunge_ctx *ctx;

	if (cmd->args_count != 0) {
		imap_cmd_bad(cmd, "%s takes no arguments", cmd->name);
		return IMAP_CMD_DONE;
	}
	/* RFC 3691: UNSELECT closes without expunging; so does CLOSE in a
	 * read-only mailbox (RFC 3501 6.4.2). */
	if (strcasecmp(cmd->name, "UNSELECT") == 0 || client->is_readonly) {
		imap_client_unselect(client);
		imap_cmd_ok(cmd, "%s completed",
			    cmd->name[0] == 'U' || cmd->name[0] == 'u' ?
			    "Unselect" : "Close");
		return IMAP_CMD_DONE;
	}
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->is_close = true;
	expunge_collect(client, ctx, NULL, 0);
	return expunge_start(cmd, ctx);
}
