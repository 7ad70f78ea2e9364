/* cmd_store.c: STORE and UID STORE (RFC 3501 6.4.6, 6.4.8) with the
 * CONDSTORE UNCHANGEDSINCE modifier (RFC 7162 3.1.3).
 *
 * The set is turned into UIDs once; the flags of all its messages change
 * in one store_msgs_update_flags call (one index transaction, index only:
 * the store renames files later), so they share one new modseq (RFC 7162
 * 3.1). The untagged FETCH replies are then written while the output has
 * room; when it fills the handler returns IMAP_CMD_AGAIN and the drain
 * resumes it, so a STORE 1:* on a big mailbox never floods memory.
 * Keywords are created on demand (RFC 3501 PERMANENTFLAGS "\*") up to
 * the store's STORE_KEYWORDS_MAX, by -FLAGS too (store_parse_flag_arg). */
#include "imap/imap_client.h"
#include "imap/imap_seqset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

/* RFC 7162 mod-sequence-valzer: up to 2^63-1. */
#define STORE_MODSEQ_MAX UINT64_C(9223372036854775807)

struct store_ctx {
	uint32_t *seqs;			/* the set, ascending */
	uint32_t *uids;			/* uids[i] = UID of seqs[i] */
	size_t count, pos;		/* pos: next message to change */
	enum store_flag_op op;
	uint32_t flags;
	uint64_t keywords;
	uint64_t unchanged_since;
	bool has_unchanged_since;
	bool is_silent;
	/* RFC 7162 MODIFIED: numbers (seq, or UID for UID STORE) that
	 * failed UNCHANGEDSINCE, ascending. */
	uint32_t *modified;
	size_t modified_count;
	struct store_update_result *results;	/* per message */
};

static void store_ctx_free(void *_ctx)
{
	struct store_ctx *ctx = _ctx;

	free(ctx->seqs);
	free(ctx->uids);
	free(ctx->modified);
	free(ctx->results);
	free(ctx);
}


/* "(UNCHANGEDSINCE n)", RFC 4466 store-modifier list. */
static int store_parse_modifiers(struct store_ctx *ctx,
				 const struct imap_arg *arg,
				 const char **error_r)
{
	const struct imap_arg *list;
	size_t count;
	uint64_t n;

	if (!imap_arg_get_list(arg, &list, &count) || count == 0 ||
	    count % 2 != 0) {
		*error_r = "Invalid STORE modifiers";
		return -1;
	}
	for (size_t i = 0; i < count; i += 2) {
		if (!imap_arg_atom_equals(&list[i], "UNCHANGEDSINCE")) {
			*error_r = "Unknown STORE modifier";
			return -1;
		}
		if (list[i + 1].type != IMAP_ARG_ATOM ||
		    str_to_u64z(list[i + 1].str, STORE_MODSEQ_MAX, &n) < 0) {
			*error_r = "Invalid UNCHANGEDSINCE value";
			return -1;
		}
		/* RFC 7162 3.1.3: UNCHANGEDSINCE 0 always fails; keep it
		 * distinct from "no modifier". */
		ctx->unchanged_since = n;
		ctx->has_unchanged_since = true;
	}
	return 0;
}

/* "[+|-]FLAGS[.SILENT]" */
static int store_parse_item(struct store_ctx *ctx, const struct imap_arg *arg,
			    const char **error_r)
{
	const char *name;

	if (!imap_arg_get_atom(arg, &name)) {
		*error_r = "Invalid STORE data item";
		return -1;
	}
	ctx->op = STORE_FLAGS_REPLACE;
	if (*name == '+' || *name == '-') {
		ctx->op = *name == '+' ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE;
		name++;
	}
	if (strcasecmp(name, "FLAGS.SILENT") == 0) {
		ctx->is_silent = true;
	} else if (strcasecmp(name, "FLAGS") != 0) {
		*error_r = "Invalid STORE data item";
		return -1;
	}
	return 0;
}

/* One flag argument -> bits. Keywords are created even for -FLAGS: a
 * name resolved to "no bit" here could be created and set on the message
 * by a session in another process before our update transaction, and
 * the reply would then show the keyword this -FLAGS removed (found by
 * tests/concurrency). A created bit is fixed for good, so the update
 * removes whatever any session sets under that name. Only when the table
 * is full, names not in it stay bit-less: nobody can add them now. */
static int store_parse_flag_arg(struct imap_cmd *cmd, struct store_ctx *ctx,
				const struct imap_arg *arg, uint32_t *flags_r,
				uint64_t *keywords_r, const char **error_r)
{
	if (imap_client_parse_flags(cmd->client, NULL, arg, true, flags_r,
				    keywords_r, error_r) == 0)
		return 0;
	if (ctx->op != STORE_FLAGS_REMOVE || errno != ENOSPC)
		return -1;
	return imap_client_parse_flags(cmd->client, NULL, arg, false,
				       flags_r, keywords_r, error_r);
}

/* flag-list, or flag *(SP flag) (RFC 3501 9 store-att-flags). Returns
 * -1 with errno EINVAL for BAD, other errno for NO. */
static int store_parse_flags(struct imap_cmd *cmd, struct store_ctx *ctx,
			     const struct imap_arg *args, size_t count,
			     const char **error_r)
{
	uint32_t flags;
	uint64_t keywords;

	if (count == 0 || (args[0].type == IMAP_ARG_LIST && count > 1)) {
		errno = EINVAL;
		*error_r = count == 0 ? "Missing flags" :
			"Invalid arguments after the flag list";
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (i > 0 && args[i].type == IMAP_ARG_LIST) {
			errno = EINVAL;
			*error_r = "Invalid flag";
			return -1;
		}
		if (store_parse_flag_arg(cmd, ctx, &args[i], &flags,
					 &keywords, error_r) < 0)
			return -1;
		ctx->flags |= flags;
		ctx->keywords |= keywords;
	}
	return 0;
}

/* The set -> sequence numbers and UIDs. */
static int store_parse_set(struct imap_cmd *cmd, struct store_ctx *ctx,
			   const char **error_r)
{
	if (imap_client_seqset(cmd->client, &cmd->args[0], cmd->uid,
			       &ctx->seqs, &ctx->count, error_r) < 0)
		return -1;
	ctx->uids = xcalloc(ctx->count > 0 ? ctx->count : 1,
			    sizeof(*ctx->uids));
	for (size_t i = 0; i < ctx->count; i++)
		ctx->uids[i] = imap_client_msg(cmd->client, ctx->seqs[i])->uid;
	return 0;
}

/* Syntax: seqset [(modifiers)] item flags. Replies itself on error. */
static int store_parse(struct imap_cmd *cmd, struct store_ctx *ctx)
{
	const struct imap_arg *args = cmd->args;
	size_t count = cmd->args_count, i = 1;
	const char *error;

	if (count < 3) {
		imap_cmd_bad(cmd, "Missing STORE arguments");
		return -1;
	}
	if (args[1].type == IMAP_ARG_LIST) {
		if (store_parse_modifiers(ctx, &args[1], &error) < 0) {
			imap_cmd_bad(cmd, "%s", error);
			return -1;
		}
		i++;
	}
	if (store_parse_item(ctx, &args[i], &error) < 0 ||
	    store_parse_set(cmd, ctx, &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		return -1;
	}
	/* RFC 3501 6.4.6 / 2180 4.2.1: no flag changes in a read-only
	 * (EXAMINEd) mailbox. */
	if (cmd->client->is_readonly) {
		imap_cmd_no(cmd, "Mailbox is read-only");
		return -1;
	}
	if (store_parse_flags(cmd, ctx, &args[i + 1], count - i - 1,
			      &error) < 0) {
		if (errno == EINVAL)
			imap_cmd_bad(cmd, "%s", error);
		else
			imap_cmd_no(cmd, "%s", error);
		return -1;
	}
	return 0;
}

static void store_add_modified(struct imap_cmd *cmd, struct store_ctx *ctx,
			       size_t i)
{
	if (ctx->modified == NULL)
		ctx->modified = xcalloc(ctx->count, sizeof(*ctx->modified));
	ctx->modified[ctx->modified_count++] =
		cmd->uid ? ctx->uids[i] : ctx->seqs[i];
}

/* x with op applied to it (enum store_flag_op). */
static uint64_t store_apply_op(enum store_flag_op op, uint64_t x, uint64_t v)
{
	if (op == STORE_FLAGS_ADD)
		return x | v;
	if (op == STORE_FLAGS_REMOVE)
		return x & ~v;
	return v;
}

/* "* n FETCH (FLAGS (..) UID u MODSEQ (m))" for message i. An unchanged
 * message already had the flags in the index, set by another session
 * this view has not synced yet: its view copy is older, so the reply
 * shows the view's flags with this STORE applied (RFC 3501 6.4.6: the
 * FETCH gives the flags as this STORE left them); the other session's
 * changes come with the next sync. */
static void store_send_fetch(struct imap_cmd *cmd, struct store_ctx *ctx,
			     size_t i, bool with_flags, uint64_t modseq)
{
	struct imap_client *client = cmd->client;
	struct evbuffer *out = imap_client_output(client);
	struct store_msg msg = *imap_client_msg(client, ctx->seqs[i]);
	const char *sep = "";

	if (ctx->results[i].status == STORE_UPDATE_UNCHANGED) {
		msg.flags = (uint32_t)store_apply_op(ctx->op, msg.flags,
						     ctx->flags);
		msg.keywords = store_apply_op(ctx->op, msg.keywords,
					      ctx->keywords);
	}
	evbuffer_add_printf(out, "* %u FETCH (", ctx->seqs[i]);
	if (with_flags) {
		evbuffer_add_printf(out, "FLAGS (");
		imap_client_append_flags(client, out, &msg);
		evbuffer_add_printf(out, ")");
		sep = " ";
	}
	/* RFC 3501 6.4.8: UID STORE replies carry the UID */
	if (cmd->uid) {
		evbuffer_add_printf(out, "%sUID %u", sep, ctx->uids[i]);
		sep = " ";
	}
	/* RFC 7162 3.2: MODSEQ in every FETCH once CONDSTORE is on */
	if ((client->enabled & IMAP_ENABLED_CONDSTORE) != 0)
		evbuffer_add_printf(out, "%sMODSEQ (%llu)", sep,
				    (unsigned long long)modseq);
	evbuffer_add_printf(out, ")\r\n");
}

/* Replies for message i of the batch just stored. */
static void store_reply_one(struct imap_cmd *cmd, struct store_ctx *ctx,
			    size_t i, const struct store_update_result *res)
{
	switch (res->status) {
	case STORE_UPDATE_CHANGED:
		/* RFC 7162 3.1.3: sent even with .SILENT when
		 * UNCHANGEDSINCE was given, with MODSEQ. */
		if (!ctx->is_silent || ctx->has_unchanged_since)
			store_send_fetch(cmd, ctx, i, !ctx->is_silent,
					 res->modseq);
		break;
	case STORE_UPDATE_UNCHANGED:
		if (!ctx->is_silent)
			store_send_fetch(cmd, ctx, i, true, res->modseq);
		break;
	case STORE_UPDATE_MODIFIED:
		store_add_modified(cmd, ctx, i);
		/* RFC 7162 3.1.3 recommends telling the client the current
		 * state, so it need not FETCH before retrying. */
		store_send_fetch(cmd, ctx, i, true, res->modseq);
		break;
	case STORE_UPDATE_EXPUNGED:
		/* RFC 2180 4.2.1: another session expunged it; the
		 * EXPUNGE is reported by a later sync. */
		break;
	}
}

/* Changes the flags of the whole set in one index transaction (index
 * only: the store renames the files later), so all changed messages get
 * one new modseq (RFC 7162 3.1). Returns 0 or -1 (replied). */
static int store_update(struct imap_cmd *cmd, struct store_ctx *ctx)
{
	const char *error;

	ctx->results = xcalloc(ctx->count + 1, sizeof(*ctx->results));
	if (ctx->has_unchanged_since && ctx->unchanged_since == 0) {
		/* RFC 7162 3.1.3: UNCHANGEDSINCE 0 fails for every message
		 * (a system flag always exists; every modseq is >= 1) */
		for (size_t i = 0; i < ctx->count; i++) {
			ctx->results[i].status = STORE_UPDATE_MODIFIED;
			ctx->results[i].modseq =
				imap_client_msg(cmd->client,
						ctx->seqs[i])->modseq;
		}
		return 0;
	}
	if (store_msgs_update_flags(cmd->client->mb, ctx->uids, ctx->count,
				    ctx->op, ctx->flags, ctx->keywords,
				    ctx->unchanged_since, ctx->results,
				    &error) == 0)
		return 0;
	log_error("imap store_msgs_update_flags(%s) failed id=%llu "
		  "user=%s: %s", cmd->client->mailbox_name,
		  (unsigned long long)conn_id(cmd->client->conn),
		  cmd->client->user, error);
	imap_cmd_no(cmd, "[SERVERBUG] Internal error storing flags");
	return -1;
}

static void store_finish(struct imap_cmd *cmd, struct store_ctx *ctx)
{
	char *set;

	if (ctx->modified_count == 0) {
		imap_cmd_ok(cmd, "Store completed");
		return;
	}
	set = imap_seqset_format(ctx->modified, NULL, ctx->modified_count);
	imap_cmd_ok(cmd, "[MODIFIED %s] Conditional STORE failed", set);
	free(set);
}

/* Writes the replies while the output has room; the drain resumes. */
static int store_continue(struct imap_cmd *cmd)
{
	struct store_ctx *ctx = cmd->ctx;

	while (ctx->pos < ctx->count) {
		if (imap_client_output_full(cmd->client))
			return IMAP_CMD_AGAIN;
		store_reply_one(cmd, ctx, ctx->pos, &ctx->results[ctx->pos]);
		ctx->pos++;
	}
	store_finish(cmd, ctx);
	return IMAP_CMD_DONE;
}

/* RFC 7162 3.1: UNCHANGEDSINCE is a CONDSTORE enabling command; the
 * first one reports HIGHESTMODSEQ. */
static void store_enable_condstore(struct imap_client *client)
{
	if ((client->enabled & IMAP_ENABLED_CONDSTORE) != 0)
		return;
	client->enabled |= IMAP_ENABLED_CONDSTORE;
	imap_client_untagged(client, "OK [HIGHESTMODSEQ %llu] Highest",
		(unsigned long long)store_mailbox_highestmodseq(client->mb));
}

int cmd_store(struct imap_cmd *cmd)
{
	struct store_ctx *ctx = xcalloc(1, sizeof(*ctx));

	cmd->ctx = ctx;
	cmd->ctx_free = store_ctx_free;
	if (store_parse(cmd, ctx) < 0)
		return IMAP_CMD_DONE;
	if (ctx->has_unchanged_since)
		store_enable_condstore(cmd->client);
	if (store_update(cmd, ctx) < 0)
		return IMAP_CMD_DONE;
	cmd->resume = store_continue;
	return store_continue(cmd);
}
