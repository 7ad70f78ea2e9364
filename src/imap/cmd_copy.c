/* cmd_copy.c: COPY / UID COPY (RFC 3501 6.4.7, 6.4.8) and MOVE / UID
 * MOVE (RFC 6851), answering COPYUID (RFC 4315 UIDPLUS).
 *
 * The set becomes UIDs once. Messages are copied in batches of
 * COPY_BATCH_MSGS (store_mailbox_copy: hard links, one index transaction
 * per batch); the handler returns IMAP_CMD_AGAIN between batches so the
 * worker keeps serving others. If a batch fails, the copies already made
 * are expunged from the destination (RFC 3501 6.4.7: the destination is
 * restored). MOVE then sends "* OK [COPYUID ...]" and expunges the
 * sources in batches, each followed by imap_client_sync() which sends
 * the "* n EXPUNGE" responses and updates the view (RFC 6851 3.3). */
#include "imap/imap_client.h"
#include "imap/imap_seqset.h"
#include "imap/imap_mailbox_name.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/xmalloc.h"

/* Messages per store_mailbox_copy / store_msgs_expunge call. */
#define COPY_BATCH_MSGS 500

struct copy_ctx {
	struct store_mailbox *dst;
	uint32_t *src_uids;		/* the set, ascending */
	uint32_t *dst_uids;		/* new UIDs; 0 = source vanished */
	size_t count;
	size_t pos;			/* next to copy */
	size_t expunge_pos;		/* MOVE: next source to expunge */
	bool is_move;
	bool copy_done;
};

static void copy_ctx_free(void *_ctx)
{
	struct copy_ctx *ctx = _ctx;

	store_mailbox_close(&ctx->dst);
	free(ctx->src_uids);
	free(ctx->dst_uids);
	free(ctx);
}


/* Destination by client name; replies NO itself. */
static int copy_open_dst(struct imap_cmd *cmd, const char *name,
			 size_t len, struct store_mailbox **dst_r)
{
	struct imap_client *client = cmd->client;
	const char *error;
	char *store_name;

	if (imap_mailbox_name_from_client(name, len,
			imap_client_utf8_names(client),
			&store_name, &error) < 0) {
		imap_cmd_no(cmd, "%s", error);
		return -1;
	}
	if (store_mailbox_open_flags(client->su, store_name,
				     STORE_OPEN_NO_NAMES, dst_r,
				     &error) == 0) {
		free(store_name);
		return 0;
	}
	if (errno == ENOENT || errno == ENOTDIR) {
		/* RFC 3501 6.4.7: the client may CREATE and retry */
		imap_cmd_no(cmd, "[TRYCREATE] Mailbox doesn't exist");
	} else if (errno == EINVAL) {
		imap_cmd_no(cmd, "[CANNOT] %s", error);
	} else {
		log_error("imap store_mailbox_open(%s) failed id=%llu "
			  "user=%s: %s", store_name,
			  (unsigned long long)conn_id(client->conn),
			  client->user, error);
		imap_cmd_no(cmd, "[SERVERBUG] Can't open the mailbox");
	}
	free(store_name);
	return -1;
}

/* A failed batch: takes back the copies made (RFC 3501 6.4.7 "restore
 * the destination mailbox to its state before the COPY attempt"). */
static void copy_undo(struct imap_cmd *cmd, struct copy_ctx *ctx)
{
	uint32_t *uids = xcalloc(ctx->pos + 1, sizeof(*uids));
	const char *error;
	size_t n = 0;

	for (size_t i = 0; i < ctx->pos; i++) {
		if (ctx->dst_uids[i] != 0)
			uids[n++] = ctx->dst_uids[i];
	}
	if (n > 0 && store_mailbox_expunge(ctx->dst, uids, n, &error) < 0)
		log_error("imap COPY rollback: store_mailbox_expunge failed "
			  "id=%llu user=%s: %s",
			  (unsigned long long)conn_id(cmd->client->conn),
			  cmd->client->user, error);
	free(uids);
}

/* Copies one batch. Returns 0, or -1 after replying NO. */
static int copy_batch(struct imap_cmd *cmd, struct copy_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	size_t n = ctx->count - ctx->pos;
	const char *error;
	int err;

	if (n > COPY_BATCH_MSGS)
		n = COPY_BATCH_MSGS;
	if (store_mailbox_copy(client->mb, ctx->src_uids + ctx->pos, n,
			       ctx->dst, ctx->dst_uids + ctx->pos,
			       &error) == 0) {
		ctx->pos += n;
		return 0;
	}
	err = errno;
	log_error("imap store_mailbox_copy(%s) failed id=%llu user=%s: %s",
		  client->mailbox_name,
		  (unsigned long long)conn_id(client->conn), client->user,
		  error);
	copy_undo(cmd, ctx);
	if (err == ENOSPC || err == EDQUOT)
		imap_cmd_no(cmd, "Copy failed: out of space");
	else
		imap_cmd_no(cmd, "[SERVERBUG] Copy failed");
	return -1;
}

/* "[COPYUID uidvalidity src-set dst-set]" text, or NULL when nothing was
 * copied (every source vanished: no valid COPYUID). Caller frees. */
static char *copy_uid_code(struct copy_ctx *ctx)
{
	char *src, *dst, *code;

	src = imap_seqset_format(ctx->src_uids, ctx->dst_uids, ctx->count);
	if (*src == '\0') {
		free(src);
		return NULL;
	}
	dst = imap_seqset_format(ctx->dst_uids, ctx->dst_uids, ctx->count);
	code = xasprintf("[COPYUID %u %s %s] ",
			 store_mailbox_uidvalidity(ctx->dst), src, dst);
	free(src);
	free(dst);
	return code;
}

/* MOVE: removes one batch of the copied sources, then sends their
 * EXPUNGEs. Returns 0, or -1 after replying NO. */
static int copy_expunge_batch(struct imap_cmd *cmd, struct copy_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	uint32_t uids[COPY_BATCH_MSGS];
	const char *error;
	size_t n = 0;

	while (ctx->expunge_pos < ctx->count && n < COPY_BATCH_MSGS) {
		if (ctx->dst_uids[ctx->expunge_pos] != 0)
			uids[n++] = ctx->src_uids[ctx->expunge_pos];
		ctx->expunge_pos++;
	}
	if (store_msgs_expunge(client->mb, uids, n, &error) < 0) {
		log_error("imap MOVE store_msgs_expunge(%s) failed id=%llu "
			  "user=%s: %s", client->mailbox_name,
			  (unsigned long long)conn_id(client->conn),
			  client->user, error);
		imap_cmd_no(cmd, "[SERVERBUG] Messages copied, but not "
			    "all removed from the source");
		return -1;
	}
	imap_client_sync(client, true);
	return 0;
}

/* Copying is over: COPY replies; MOVE announces COPYUID untagged. */
static int copy_copied(struct imap_cmd *cmd, struct copy_ctx *ctx)
{
	char *code = copy_uid_code(ctx);

	ctx->copy_done = true;
	if (!ctx->is_move) {
		imap_cmd_ok(cmd, "%sCopy completed", code != NULL ? code : "");
		free(code);
		return IMAP_CMD_DONE;
	}
	/* RFC 6851 3.3: COPYUID in an untagged OK before the expunges */
	if (code != NULL)
		imap_client_untagged(cmd->client, "OK %sMoved UIDs.", code);
	free(code);
	return IMAP_CMD_AGAIN;
}

/* After a batch with more to do: yield to the loop. */
static int copy_yield(struct imap_cmd *cmd)
{
	if (evbuffer_get_length(imap_client_output(cmd->client)) == 0)
		imap_cmd_wake(cmd);
	return IMAP_CMD_AGAIN;
}

static int copy_continue(struct imap_cmd *cmd)
{
	struct copy_ctx *ctx = cmd->ctx;

	if (imap_client_output_full(cmd->client))
		return IMAP_CMD_AGAIN;		/* resumed on drain */
	if (!ctx->copy_done) {
		if (ctx->pos < ctx->count && copy_batch(cmd, ctx) < 0)
			return IMAP_CMD_DONE;
		if (ctx->pos < ctx->count)
			return copy_yield(cmd);
		if (copy_copied(cmd, ctx) == IMAP_CMD_DONE)
			return IMAP_CMD_DONE;
	}
	if (ctx->expunge_pos < ctx->count) {
		if (copy_expunge_batch(cmd, ctx) < 0)
			return IMAP_CMD_DONE;
		if (ctx->expunge_pos < ctx->count)
			return copy_yield(cmd);
	}
	/* RFC 6851 4.4: with QRESYNC the new HIGHESTMODSEQ (VANISHED
	 * replaced EXPUNGE in the batches' syncs). */
	if (ctx->count > 0 && (cmd->client->enabled & IMAP_ENABLED_QRESYNC))
		imap_cmd_ok(cmd, "[HIGHESTMODSEQ %llu] Move completed",
			    (unsigned long long)
			    store_mailbox_highestmodseq(cmd->client->mb));
	else
		imap_cmd_ok(cmd, "Move completed");
	return IMAP_CMD_DONE;
}

/* Arguments: set, mailbox. Replies itself on error. */
static int copy_parse(struct imap_cmd *cmd, struct copy_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	const char *name, *error;
	uint32_t *seqs;
	size_t len;

	if (cmd->args_count != 2 ||
	    !imap_arg_get_astring(&cmd->args[1], &name, &len)) {
		imap_cmd_bad(cmd, "%s needs a message set and a mailbox",
			     cmd->name);
		return -1;
	}
	if (imap_client_seqset(client, &cmd->args[0], cmd->uid, &seqs,
			       &ctx->count, &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		return -1;
	}
	ctx->src_uids = xcalloc(ctx->count + 1, sizeof(*ctx->src_uids));
	ctx->dst_uids = xcalloc(ctx->count + 1, sizeof(*ctx->dst_uids));
	for (size_t i = 0; i < ctx->count; i++)
		ctx->src_uids[i] = imap_client_msg(client, seqs[i])->uid;
	free(seqs);
	/* RFC 6851 3.3 / 3501 6.4.3: MOVE expunges, so not in a mailbox
	 * opened read-only. */
	if (ctx->is_move && client->is_readonly) {
		imap_cmd_no(cmd, "Mailbox is read-only");
		return -1;
	}
	return copy_open_dst(cmd, name, len, &ctx->dst);
}

/* COPY and MOVE, with or without UID. */
int cmd_copy(struct imap_cmd *cmd)
{
	struct copy_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->is_move = strcasecmp(cmd->name, "MOVE") == 0;
	cmd->ctx = ctx;
	cmd->ctx_free = copy_ctx_free;
	if (copy_parse(cmd, ctx) < 0)
		return IMAP_CMD_DONE;
	cmd->resume = copy_continue;
	return copy_continue(cmd);
}
