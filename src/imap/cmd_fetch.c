/* cmd_fetch.c: FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8, 7.4.2; RFC
 * 9051; RFC 7162 MODSEQ and CHANGEDSINCE).
 *
 * Work is done in slices: at most FETCH_MSGS_PER_SLICE messages per call
 * and nothing new while the output is over the high-water mark; the
 * handler then returns IMAP_CMD_AGAIN and is resumed on drain. Message
 * data (BODY[...], RFC822*) goes out as a literal whose size is known up
 * front (the virtual size of the range after partial clipping); its
 * bytes are read from the file FETCH_CHUNK_SIZE at a time, converted LF
 * -> CRLF straight into the output buffer, so memory stays bounded
 * whatever the message or mailbox size.
 *
 * The MIME tree is built per message when an item needs it (BODY,
 * BODYSTRUCTURE, part sections: the whole file; ENVELOPE, HEADER, TEXT:
 * only the header) and lives while that message's reply is written.
 * It is taken from the store's per-message cache when there
 * (imap_parts_cache_get: a whole tree serves every item, a header-only
 * one ENVELOPE/HEADER/TEXT); a parsed tree is queued for the cache, the
 * queue being written when full (STORE_CACHE_QUEUE_MAX trees) and at the
 * end of the command, one LMDB transaction each.
 * With a cached tree and no item reading message bytes (ENVELOPE, BODY,
 * BODYSTRUCTURE with UID, FLAGS, sizes...) the file is not opened.
 *
 * Expunged by another session (store_msg_open ENOENT): RFC 2180 4.1.3
 * lets us leave the message out; like Dovecot we send no "* n FETCH" for
 * it, fetch the others, and end with "NO [EXPUNGEISSUED]" (RFC 5530).
 * A read error or a file that does not match its indexed size in the
 * middle of a literal cannot be reported: the connection is closed.
 *
 * BINARY[...] (RFC 3516): the part must be a leaf (RFC 9051 6.4.5), else
 * the message is left out and the command ends BAD; an unknown
 * Content-Transfer-Encoding likewise ends it "NO [UNKNOWN-CTE]" (both
 * checked before "* n FETCH (" is written). The literal's size is the
 * decoded size, so the part is first decoded once without output
 * (fetch_binary_measure; BINARY.SIZE is that pass alone, or the virtual
 * size for an identity CTE), then streamed like BODY[] through the
 * decoder; it is a literal8 "~{n}" when the octets sent contain NUL.
 * Memory: two FETCH_CHUNK_SIZE * 2 buffers more, whatever the size.
 *
 * \Seen (RFC 3501 6.4.5): BODY[...] (not PEEK), BINARY[...] (not PEEK),
 * RFC822 and RFC822.TEXT set
 * it in read-write sessions, in batches of FETCH_SEEN_BATCH messages (one
 * index transaction each) just before those messages are fetched; FLAGS
 * (and MODSEQ with CONDSTORE) is then added to the message's reply. */
#include "imap/imap_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_date.h"
#include "imap/imap_envelope.h"
#include "imap/imap_fetch.h"
#include "imap/imap_vanished.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"

/* File bytes read per step; the converted output is at most twice that. */
#define FETCH_CHUNK_SIZE (64 * 1024)
/* File bytes read per BINARY step: converted and decoded they fit the
 * output buffers (FETCH_CHUNK_SIZE * 2). SIZE-MATH: see the assert. */
#define FETCH_BINARY_READ_SIZE (FETCH_CHUNK_SIZE - DECODE_OUT_MAX(0))
_Static_assert(IMAP_BINARY_OUT_MAX(FETCH_BINARY_READ_SIZE) <=
	       2 * FETCH_CHUNK_SIZE, "BINARY output exceeds the buffers");
/* Output buffers a streaming command owns (FETCH_CHUNK_SIZE * 2 each).
 * They are handed to the output evbuffer by reference and come back when
 * sent, so the hot path allocates nothing; the output is at most about
 * CONN_OUTPUT_HIWAT + one chunk, so two are in flight at most. */
#define FETCH_OUT_BUFS 3
/* Messages begun per call before yielding to other sessions. */
#define FETCH_MSGS_PER_SLICE 200
/* Messages whose \Seen is set per index transaction. */
#define FETCH_SEEN_BATCH 256
/* A root header longer than this is parsed with the whole message. */
#define FETCH_HEADER_MAX (1024 * 1024)
/* HEADER.FIELDS reads at most this much of a header. */
#define FETCH_FIELDS_HEADER_MAX (1024 * 1024)

/* The output buffers; freed when the command and the output evbuffer
 * have both let go of them (the session may end with data queued). */
struct fetch_pool {
	unsigned refs;		/* 1 for the command + buffers in flight */
	bool is_busy[FETCH_OUT_BUFS];
	unsigned char *bufs[FETCH_OUT_BUFS];
};

/* Where BINARY[...] takes its octets from. */
struct fetch_binary_src {
	enum decode_type type;		/* the part's CTE */
	uint64_t offset, physical;	/* the physical range */
	uint64_t plain;			/* first octets, not decoded */
	uint64_t vsize;			/* the range's size with CRLF */
};

enum fetch_binary_status {
	FETCH_BINARY_OK,
	FETCH_BINARY_MISSING,		/* no such part: an empty string */
	FETCH_BINARY_NOT_LEAF,		/* multipart, message/rfc822 */
	FETCH_BINARY_UNKNOWN_CTE,
};

struct fetch_ctx {
	struct imap_fetch_spec spec;
	uint32_t *seqs;			/* the set, ascending */
	size_t count, pos;		/* pos: next message to begin */
	bool any_expunged, any_failed;
	bool any_not_leaf, any_unknown_cte;	/* BINARY refused */
	bool needs_data;		/* an item streams message bytes */
	/* \Seen batches: seqs[..seen_until) were handled; seen_uids are
	 * the UIDs of the current batch whose \Seen this FETCH set;
	 * had_uids those another session had set in the index already
	 * (this view's copy of their flags is older). */
	size_t seen_until;
	uint32_t seen_uids[FETCH_SEEN_BATCH];
	size_t seen_count, seen_pos;
	uint32_t had_uids[FETCH_SEEN_BATCH];
	size_t had_count, had_pos;

	/* The message being written (in_msg). */
	bool in_msg;
	uint32_t seq;
	size_t item;			/* next item to write */
	bool add_flags;			/* this FETCH set \Seen */
	bool had_seen;			/* \Seen set elsewhere, not in view */
	int fd;
	struct message_part *parts;
	bool parts_full;		/* whole tree, not header only */

	/* A literal being streamed (is_streaming). */
	bool is_streaming;
	struct imap_crlf crlf;
	uint64_t phys_off, phys_left;
	unsigned char *buf;		/* FETCH_CHUNK_SIZE */
	struct fetch_pool *pool;	/* created at the first literal */
	/* BINARY (is_binary while streaming one). */
	bool has_binary;		/* the spec has BINARY items */
	bool is_binary;
	struct imap_binary bin;
	unsigned char *bin_scratch;	/* FETCH_CHUNK_SIZE * 2 */
	unsigned char *bin_out;		/* the measuring pass's output */
};

static void fetch_pool_unref(struct fetch_pool *pool)
{
	if (--pool->refs > 0)
		return;
	for (unsigned i = 0; i < FETCH_OUT_BUFS; i++)
		free(pool->bufs[i]);
	free(pool);
}

/* evbuffer_add_reference cleanup: the buffer's bytes were sent (or the
 * connection's output was freed). */
static void fetch_pool_release(const void *data, size_t len, void *extra)
{
	struct fetch_pool *pool = extra;

	for (unsigned i = 0; i < FETCH_OUT_BUFS; i++) {
		if (pool->bufs[i] == data)
			pool->is_busy[i] = false;
	}
	fetch_pool_unref(pool);
}

/* A free output buffer, or -1 when all are in flight. */
static int fetch_pool_get(struct fetch_ctx *ctx)
{
	struct fetch_pool *pool = ctx->pool;

	if (pool == NULL) {
		pool = ctx->pool = xcalloc(1, sizeof(*pool));
		pool->refs = 1;
	}
	for (unsigned i = 0; i < FETCH_OUT_BUFS; i++) {
		if (pool->is_busy[i])
			continue;
		if (pool->bufs[i] == NULL)
			pool->bufs[i] = xmalloc(2 * FETCH_CHUNK_SIZE);
		return (int)i;
	}
	return -1;
}

static void fetch_msg_end(struct fetch_ctx *ctx)
{
	if (ctx->fd >= 0)
		close(ctx->fd);
	ctx->fd = -1;
	if (ctx->parts != NULL)
		message_part_free(&ctx->parts);
	ctx->in_msg = false;
	ctx->is_streaming = false;
	ctx->is_binary = false;
}

static void fetch_ctx_free(void *_ctx)
{
	struct fetch_ctx *ctx = _ctx;

	fetch_msg_end(ctx);
	imap_fetch_spec_free(&ctx->spec);
	free(ctx->seqs);
	free(ctx->buf);
	free(ctx->bin_scratch);
	free(ctx->bin_out);
	if (ctx->pool != NULL)
		fetch_pool_unref(ctx->pool);
	free(ctx);
}

static const char *fetch_user(const struct imap_cmd *cmd)
{
	return cmd->client->user != NULL ? cmd->client->user : "";
}

/* pread() all of size bytes unless EOF; returns bytes read or -1. */
static ssize_t fetch_pread(int fd, void *buf, size_t size, uint64_t off)
{
	size_t done = 0;
	ssize_t r;

	while (done < size) {
		r = pread(fd, (char *)buf + done, size - done,
			  (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* ---- parsing the message ---- */

static int fetch_parse_full(struct fetch_ctx *ctx)
{
	struct message_parser *parser = message_parser_create(NULL);
	uint64_t off = 0;
	ssize_t r;

	while ((r = fetch_pread(ctx->fd, ctx->buf, FETCH_CHUNK_SIZE,
				off)) > 0) {
		message_parser_feed(parser, ctx->buf, (size_t)r);
		off += (uint64_t)r;
	}
	if (r < 0) {
		message_parser_destroy(&parser);
		return -1;
	}
	ctx->parts = message_parser_finish(&parser);
	ctx->parts_full = true;
	return 0;
}

/* Only the root header: ENVELOPE, HEADER and TEXT need no more. A header
 * without an end within FETCH_HEADER_MAX gets the full parse. */
static int fetch_parse_header(struct fetch_ctx *ctx)
{
	size_t cap = 16 * 1024, len = 0, hdr_len = 0;
	char *buf = xmalloc(cap);
	struct message_parser *parser;
	ssize_t r;

	for (;;) {
		r = fetch_pread(ctx->fd, buf + len, cap - len, len);
		if (r < 0) {
			free(buf);
			return -1;
		}
		len += (size_t)r;
		hdr_len = imap_fetch_header_end(buf, len);
		if (hdr_len > 0 || len < cap)
			break;	/* found, or EOF: all of it is header */
		if (cap >= FETCH_HEADER_MAX) {
			free(buf);
			return fetch_parse_full(ctx);
		}
		cap *= 2;
		buf = xrealloc(buf, cap);
	}
	parser = message_parser_create(NULL);
	message_parser_feed(parser, buf, hdr_len > 0 ? hdr_len : len);
	ctx->parts = message_parser_finish(&parser);
	ctx->parts_full = false;
	free(buf);
	return 0;
}

/* ---- \Seen ---- */

static bool fetch_wanted(const struct fetch_ctx *ctx,
			 const struct store_msg *msg)
{
	/* RFC 7162 3.1.4.1: only messages changed since. */
	return !ctx->spec.has_changedsince ||
		msg->modseq > ctx->spec.changedsince;
}

/* Sets \Seen on the next batch of messages that lack it. */
static void fetch_seen_batch(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	struct store_update_result results[FETCH_SEEN_BATCH];
	uint32_t uids[FETCH_SEEN_BATCH];
	struct imap_client *client = cmd->client;
	size_t n = 0, end = ctx->pos + FETCH_SEEN_BATCH;
	const char *error;

	if (end > ctx->count)
		end = ctx->count;
	for (size_t i = ctx->pos; i < end; i++) {
		const struct store_msg *msg = imap_client_msg(client,
							      ctx->seqs[i]);
		if ((msg->flags & STORE_FLAG_SEEN) == 0 &&
		    fetch_wanted(ctx, msg))
			uids[n++] = msg->uid;
	}
	ctx->seen_until = end;
	ctx->seen_count = ctx->seen_pos = 0;
	ctx->had_count = ctx->had_pos = 0;
	if (n == 0)
		return;
	if (store_msgs_update_flags(client->mb, uids, n, STORE_FLAGS_ADD,
				    STORE_FLAG_SEEN, 0, 0, results,
				    &error) < 0) {
		log_error("imap fetch store_msgs_update_flags(%s, \\Seen) "
			  "failed id=%llu user=%s: %s", client->mailbox_name,
			  (unsigned long long)conn_id(client->conn),
			  fetch_user(cmd), error);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (results[i].status == STORE_UPDATE_CHANGED)
			ctx->seen_uids[ctx->seen_count++] = uids[i];
		else if (results[i].status == STORE_UPDATE_UNCHANGED)
			ctx->had_uids[ctx->had_count++] = uids[i];
	}
}

/* Is uid in the ascending list? (*pos advances: UIDs come ascending.) */
static bool fetch_uid_listed(const uint32_t *list, size_t count,
			     size_t *pos, uint32_t uid)
{
	while (*pos < count && list[*pos] < uid)
		(*pos)++;
	return *pos < count && list[*pos] == uid;
}

/* The message's flags; RFC 3501 6.4.5: after BODY[] they include
 * \Seen, also when another session had set it and this view's copy
 * is older (the other changes come with the next sync). */
static void fetch_append_flags(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			       struct evbuffer *out,
			       const struct store_msg *msg)
{
	struct store_msg copy = *msg;

	if (ctx->had_seen)
		copy.flags |= STORE_FLAG_SEEN;
	imap_client_append_flags(cmd->client, out, &copy);
}

/* Did this FETCH set uid's \Seen? (UIDs come in ascending order.) */
static bool fetch_seen_set(struct fetch_ctx *ctx, uint32_t uid)
{
	while (ctx->seen_pos < ctx->seen_count &&
	       ctx->seen_uids[ctx->seen_pos] < uid)
		ctx->seen_pos++;
	return ctx->seen_pos < ctx->seen_count &&
		ctx->seen_uids[ctx->seen_pos] == uid;
}

/* ---- one message ---- */

/* The tree from the cache, or parsed from the open file and queued for
 * the cache. Returns 0 or -1 (read error). */
static int fetch_parse(struct imap_cmd *cmd, struct fetch_ctx *ctx,
		       const struct store_msg *msg)
{
	struct store_mailbox *mb = cmd->client->mb;
	int ret;

	if (ctx->spec.needs & IMAP_FETCH_NEED_PARTS)
		ret = fetch_parse_full(ctx);
	else
		ret = fetch_parse_header(ctx);
	if (ret == 0)
		imap_parts_cache_put(mb, msg->uid, ctx->parts,
				     ctx->parts_full);
	return ret;
}

static void fetch_open_failed(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			      const struct store_msg *msg, const char *error)
{
	struct imap_client *client = cmd->client;

	if (errno == ENOENT) {
		ctx->any_expunged = true;
		return;
	}
	log_error("imap fetch store_msg_open(%s, uid=%u) failed id=%llu "
		  "user=%s: %s", client->mailbox_name, msg->uid,
		  (unsigned long long)conn_id(client->conn), fetch_user(cmd),
		  error);
	ctx->any_failed = true;
}

/* Opens and parses what the items need. Returns 1 ready, 0 skip the
 * message (expunged or failed: noted in ctx). */
static int fetch_msg_prepare(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			     const struct store_msg *msg)
{
	struct imap_client *client = cmd->client;
	unsigned needs = ctx->spec.needs;
	bool is_cached = false;
	const char *error;

	if ((needs & IMAP_FETCH_NEED_FILE) == 0)
		return 1;
	if (needs & (IMAP_FETCH_NEED_PARTS | IMAP_FETCH_NEED_HEADER))
		is_cached = imap_parts_cache_get(client->mb, msg->uid,
			(needs & IMAP_FETCH_NEED_PARTS) != 0, &ctx->parts,
			&ctx->parts_full) > 0;
	if (is_cached && !ctx->needs_data)
		return 1;
	ctx->fd = store_msg_open(client->mb, msg, &error);
	if (ctx->fd < 0) {
		fetch_open_failed(cmd, ctx, msg, error);
		fetch_msg_end(ctx);
		return 0;
	}
	if (is_cached || (needs & (IMAP_FETCH_NEED_PARTS |
				   IMAP_FETCH_NEED_HEADER)) == 0)
		return 1;
	if (fetch_parse(cmd, ctx, msg) < 0) {
		log_error("imap fetch read(%s, uid=%u) failed id=%llu "
			  "user=%s: %s", client->mailbox_name, msg->uid,
			  (unsigned long long)conn_id(client->conn),
			  fetch_user(cmd), strerror(errno));
		ctx->any_failed = true;
		fetch_msg_end(ctx);
		return 0;
	}
	return 1;
}

/* ---- BINARY ---- */

/* The octets of BINARY[path]: a leaf part's body, or for BINARY[] the
 * whole message (header as it is, body decoded). */
static enum fetch_binary_status
fetch_binary_source(const struct fetch_ctx *ctx,
		    const struct imap_fetch_item *item,
		    const struct store_msg *msg, struct fetch_binary_src *src)
{
	const struct message_part *p = ctx->parts;
	enum message_field cte = MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING;

	if (item->path_len > 0 &&
	    (p = imap_section_part(ctx->parts, item->path,
				   item->path_len)) == NULL)
		return FETCH_BINARY_MISSING;
	/* RFC 9051 6.4.5: only leaf parts, not multipart/ *, message/ * */
	if (p->flags & (MESSAGE_PART_FLAG_MULTIPART |
			MESSAGE_PART_FLAG_MESSAGE_RFC822))
		return FETCH_BINARY_NOT_LEAF;
	/* RFC 3516 4.3: an unknown CTE fails with UNKNOWN-CTE */
	if (decode_type_parse_known(p->fields[cte], p->field_lens[cte],
				    &src->type) < 0)
		return FETCH_BINARY_UNKNOWN_CTE;
	if (item->path_len == 0) {
		src->offset = 0;
		src->physical = msg->size;
		src->plain = p->header.physical;
		src->vsize = msg->vsize;
	} else {
		src->offset = p->body_offset;
		src->physical = p->body.physical;
		src->plain = 0;
		src->vsize = p->body.virtual_size;
	}
	return FETCH_BINARY_OK;
}

/* Can every BINARY item of the message be answered? If not, notes why
 * for the tagged reply and returns false (the message is left out). */
static bool fetch_binary_check(struct fetch_ctx *ctx,
			       const struct store_msg *msg)
{
	struct fetch_binary_src src;

	for (size_t i = 0; i < ctx->spec.count; i++) {
		const struct imap_fetch_item *item = &ctx->spec.items[i];

		if (item->type != IMAP_FETCH_BINARY &&
		    item->type != IMAP_FETCH_BINARY_SIZE)
			continue;
		switch (fetch_binary_source(ctx, item, msg, &src)) {
		case FETCH_BINARY_OK:
		case FETCH_BINARY_MISSING:
			break;
		case FETCH_BINARY_NOT_LEAF:
			ctx->any_not_leaf = true;
			return false;
		case FETCH_BINARY_UNKNOWN_CTE:
			ctx->any_unknown_cte = true;
			return false;
		}
	}
	return true;
}

/* A message refused by fetch_binary_check keeps its flags: the \Seen
 * this FETCH set for it in the batch is taken back. */
static void fetch_seen_undo(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			    uint32_t uid)
{
	struct imap_client *client = cmd->client;
	struct store_update_result result;
	const char *error;

	if ((ctx->spec.needs & IMAP_FETCH_SETS_SEEN) == 0 ||
	    client->is_readonly || !fetch_seen_set(ctx, uid))
		return;
	if (store_msgs_update_flags(client->mb, &uid, 1, STORE_FLAGS_REMOVE,
				    STORE_FLAG_SEEN, 0, 0, &result,
				    &error) < 0)
		log_error("imap fetch store_msgs_update_flags(%s, -\\Seen) "
			  "failed id=%llu user=%s: %s", client->mailbox_name,
			  (unsigned long long)conn_id(client->conn),
			  fetch_user(cmd), error);
}

/* Begins seqs[pos]: \Seen, file, parse, "* n FETCH (". */
static void fetch_msg_begin(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	const struct store_msg *msg;

	if ((ctx->spec.needs & IMAP_FETCH_SETS_SEEN) && !client->is_readonly &&
	    ctx->pos >= ctx->seen_until)
		fetch_seen_batch(cmd, ctx);
	ctx->seq = ctx->seqs[ctx->pos++];
	msg = imap_client_msg(client, ctx->seq);
	if (!fetch_wanted(ctx, msg) || fetch_msg_prepare(cmd, ctx, msg) == 0)
		return;
	if (ctx->has_binary && !fetch_binary_check(ctx, msg)) {
		fetch_seen_undo(cmd, ctx, msg->uid);
		fetch_msg_end(ctx);
		return;
	}
	ctx->add_flags = (ctx->spec.needs & IMAP_FETCH_SETS_SEEN) &&
		fetch_seen_set(ctx, msg->uid);
	ctx->had_seen = (ctx->spec.needs & IMAP_FETCH_SETS_SEEN) &&
		fetch_uid_listed(ctx->had_uids, ctx->had_count,
				 &ctx->had_pos, msg->uid);
	ctx->in_msg = true;
	ctx->item = 0;
	evbuffer_add_printf(imap_client_output(client), "* %u FETCH (",
			    ctx->seq);
}

/* The range of a section item; -1 when the section does not exist. */
static int fetch_item_range(const struct fetch_ctx *ctx,
			    const struct imap_fetch_item *item,
			    const struct store_msg *msg,
			    struct imap_section_range *r)
{
	const struct message_part *root = ctx->parts;

	if (item->path_len == 0 && item->kind == IMAP_SECTION_NONE) {
		r->offset = 0;
		r->physical_size = msg->size;
		r->virtual_size = msg->vsize;
		return 0;
	}
	if (item->path_len == 0 && item->kind == IMAP_SECTION_TEXT &&
	    !ctx->parts_full) {
		/* Only the header was parsed: the rest is the text. */
		r->offset = root->header.physical;
		r->physical_size = msg->size - root->header.physical;
		r->virtual_size = msg->vsize - root->header.virtual_size;
		return 0;
	}
	return imap_section_lookup(root, item->path, item->path_len,
				   item->kind, r);
}

/* HEADER.FIELDS[.NOT]: filtered in memory, then sent as a literal. */
static int fetch_write_fields(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			      const struct imap_fetch_item *item,
			      const struct imap_section_range *r)
{
	struct evbuffer *out = imap_client_output(cmd->client);
	struct evbuffer *tmp = evbuffer_new();
	size_t len = r->physical_size < FETCH_FIELDS_HEADER_MAX ?
		(size_t)r->physical_size : FETCH_FIELDS_HEADER_MAX;
	char *hdr = xmalloc(len + 1);
	uint64_t skip, count;
	ssize_t got;

	got = fetch_pread(ctx->fd, hdr, len, r->offset);
	if (got < 0) {
		free(hdr);
		evbuffer_free(tmp);
		return -1;
	}
	imap_header_fields_write(tmp, hdr, (size_t)got,
				 (const char *const *)item->fields,
				 item->fields_count, item->kind ==
				 IMAP_SECTION_HEADER_FIELDS_NOT);
	free(hdr);
	imap_fetch_partial_clip(item, evbuffer_get_length(tmp), &skip, &count);
	evbuffer_drain(tmp, (size_t)skip);
	if (count == 0) {
		evbuffer_add(out, " \"\"", 3);
	} else {
		evbuffer_add_printf(out, " {%llu}\r\n",
				    (unsigned long long)count);
		evbuffer_remove_buffer(tmp, out, (size_t)count);
	}
	evbuffer_free(tmp);
	return 0;
}

/* A section item: " {n}\r\n" and starts streaming the range, or writes
 * the empty string. Returns 0 or -1 (read error). */
static int fetch_write_section(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			       const struct imap_fetch_item *item,
			       const struct store_msg *msg)
{
	struct evbuffer *out = imap_client_output(cmd->client);
	struct imap_section_range r;
	uint64_t skip, count;

	evbuffer_add(out, item->label, strlen(item->label));
	if (fetch_item_range(ctx, item, msg, &r) < 0) {
		/* Like Dovecot: a missing section is an empty string. */
		evbuffer_add(out, " \"\"", 3);
		return 0;
	}
	if (item->kind == IMAP_SECTION_HEADER_FIELDS ||
	    item->kind == IMAP_SECTION_HEADER_FIELDS_NOT)
		return fetch_write_fields(cmd, ctx, item, &r);
	imap_fetch_partial_clip(item, r.virtual_size, &skip, &count);
	if (count == 0) {
		evbuffer_add(out, " \"\"", 3);
		return 0;
	}
	evbuffer_add_printf(out, " {%llu}\r\n", (unsigned long long)count);
	imap_crlf_init(&ctx->crlf, skip, count);
	ctx->phys_off = r.offset;
	ctx->phys_left = r.physical_size;
	ctx->is_streaming = true;
	return 0;
}

/* Decodes the source once without output: the decoded size, and whether
 * the octets the item's partial range selects hold a NUL. Returns 0, or
 * -1 on a read error or a file shorter than indexed. */
static int fetch_binary_measure(struct fetch_ctx *ctx,
				const struct imap_fetch_item *item,
				const struct fetch_binary_src *src,
				uint64_t *size_r, bool *has_nul_r)
{
	struct imap_binary b;
	uint64_t off = src->offset, left = src->physical;
	size_t want;
	ssize_t r;

	imap_binary_init(&b, src->type, src->plain,
			 item->has_partial ? item->partial_start : 0,
			 item->has_partial ? item->partial_len : UINT64_MAX);
	while (left > 0) {
		want = left < FETCH_BINARY_READ_SIZE ? (size_t)left :
			FETCH_BINARY_READ_SIZE;
		r = fetch_pread(ctx->fd, ctx->buf, want, off);
		if (r <= 0)
			return -1;
		off += (uint64_t)r;
		left -= (uint64_t)r;
		(void)imap_binary_convert(&b, ctx->buf, (size_t)r,
					  ctx->bin_scratch, ctx->bin_out);
	}
	(void)imap_binary_finish(&b, ctx->bin_out);
	*size_r = b.size;
	*has_nul_r = b.has_nul;
	return 0;
}

/* BINARY[...] or BINARY.SIZE[...]: the size, or " {n}\r\n" / " ~{n}\r\n"
 * (RFC 3516 4.3) and starts streaming. Returns 0 or -1 (read error). */
static int fetch_write_binary(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			      const struct imap_fetch_item *item,
			      const struct store_msg *msg)
{
	struct evbuffer *out = imap_client_output(cmd->client);
	bool is_size = item->type == IMAP_FETCH_BINARY_SIZE, has_nul;
	struct fetch_binary_src src;
	uint64_t size, skip, count;

	evbuffer_add(out, item->label, strlen(item->label));
	if (fetch_binary_source(ctx, item, msg, &src) != FETCH_BINARY_OK) {
		/* no such part (fetch_binary_check refused the rest) */
		evbuffer_add_printf(out, " %s", is_size ? "0" : "\"\"");
		return 0;
	}
	if (is_size && src.type == DECODE_NONE) {
		evbuffer_add_printf(out, " %llu",
				    (unsigned long long)src.vsize);
		return 0;
	}
	if (fetch_binary_measure(ctx, item, &src, &size, &has_nul) < 0)
		return -1;
	if (is_size) {
		evbuffer_add_printf(out, " %llu", (unsigned long long)size);
		return 0;
	}
	imap_fetch_partial_clip(item, size, &skip, &count);
	if (count == 0) {
		evbuffer_add(out, " \"\"", 3);
		return 0;
	}
	evbuffer_add_printf(out, " %s{%llu}\r\n", has_nul ? "~" : "",
			    (unsigned long long)count);
	imap_binary_init(&ctx->bin, src.type, src.plain, skip, count);
	ctx->phys_off = src.offset;
	ctx->phys_left = src.physical;
	ctx->is_streaming = true;
	ctx->is_binary = true;
	return 0;
}

static void fetch_write_simple(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			       const struct imap_fetch_item *item,
			       const struct store_msg *msg)
{
	struct imap_client *client = cmd->client;
	struct evbuffer *out = imap_client_output(client);
	char date[IMAP_DATETIME_MAX];
	size_t len;

	switch (item->type) {
	case IMAP_FETCH_UID:
		evbuffer_add_printf(out, "UID %u", msg->uid);
		break;
	case IMAP_FETCH_FLAGS:
		evbuffer_add(out, "FLAGS (", 7);
		fetch_append_flags(cmd, ctx, out, msg);
		evbuffer_add(out, ")", 1);
		break;
	case IMAP_FETCH_INTERNALDATE:
		/* The store keeps no zone: shown in UTC. */
		len = imap_datetime_format(msg->internal_date, (int)
			(imap_local_offset_secs(msg->internal_date) / 60),
			date);
		evbuffer_add_printf(out, "INTERNALDATE \"%.*s\"", (int)len,
				    date);
		break;
	case IMAP_FETCH_RFC822_SIZE:
		evbuffer_add_printf(out, "RFC822.SIZE %llu",
				    (unsigned long long)msg->vsize);
		break;
	case IMAP_FETCH_MODSEQ:
		evbuffer_add_printf(out, "MODSEQ (%llu)",
				    (unsigned long long)msg->modseq);
		break;
	case IMAP_FETCH_ENVELOPE:
		evbuffer_add(out, "ENVELOPE ", 9);
		imap_envelope_write_flags(out, ctx->parts,
					  imap_client_quote_flags(client));
		break;
	case IMAP_FETCH_BODY:
	case IMAP_FETCH_BODYSTRUCTURE:
		evbuffer_add_printf(out, "%s ", item->label);
		imap_bodystructure_write(out, ctx->parts, item->type ==
					 IMAP_FETCH_BODYSTRUCTURE);
		break;
	default:
		log_fatal("imap fetch: item type %d is not simple",
			  (int)item->type);
	}
}

/* Hands len bytes of output buffer i to the output evbuffer. */
static void fetch_out_add(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			  int i, size_t len)
{
	struct fetch_pool *pool = ctx->pool;

	pool->is_busy[i] = true;
	pool->refs++;
	if (evbuffer_add_reference(imap_client_output(cmd->client),
				   pool->bufs[i], len, fetch_pool_release,
				   pool) < 0)
		log_fatal("imap fetch: evbuffer_add_reference failed");
}

/* fetch_stream for BINARY: read, LF -> CRLF, decode, clip. */
static int fetch_stream_binary(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	bool is_end;
	size_t want, len;
	ssize_t r;
	int i;

	while (!imap_binary_is_done(&ctx->bin)) {
		if (imap_client_output_full(cmd->client) ||
		    (i = fetch_pool_get(ctx)) < 0)
			return 0;	/* resumed on drain */
		is_end = ctx->phys_left == 0;
		if (is_end) {
			len = imap_binary_finish(&ctx->bin,
						 ctx->pool->bufs[i]);
		} else {
			want = ctx->phys_left < FETCH_BINARY_READ_SIZE ?
				(size_t)ctx->phys_left :
				FETCH_BINARY_READ_SIZE;
			r = fetch_pread(ctx->fd, ctx->buf, want,
					ctx->phys_off);
			if (r <= 0)
				return -1;
			ctx->phys_off += (uint64_t)r;
			ctx->phys_left -= (uint64_t)r;
			len = imap_binary_convert(&ctx->bin, ctx->buf,
						  (size_t)r, ctx->bin_scratch,
						  ctx->pool->bufs[i]);
		}
		if (len > 0)
			fetch_out_add(cmd, ctx, i, len);
		if (is_end && !imap_binary_is_done(&ctx->bin))
			return -1;	/* the file changed since measured */
	}
	ctx->is_streaming = false;
	ctx->is_binary = false;
	return 1;
}

/* Streams the current literal while the output has room. Returns 1 done,
 * 0 output full, -1 read error or size mismatch. */
static int fetch_stream(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	struct fetch_pool *pool;
	size_t want, len;
	ssize_t r;
	int i;

	if (ctx->is_binary)
		return fetch_stream_binary(cmd, ctx);
	while (!imap_crlf_is_done(&ctx->crlf)) {
		if (imap_client_output_full(cmd->client) ||
		    (i = fetch_pool_get(ctx)) < 0)
			return 0;	/* resumed on drain */
		pool = ctx->pool;
		want = ctx->phys_left < FETCH_CHUNK_SIZE ?
			(size_t)ctx->phys_left : FETCH_CHUNK_SIZE;
		if (want == 0)
			return -1;	/* file shorter than indexed */
		r = fetch_pread(ctx->fd, ctx->buf, want, ctx->phys_off);
		if (r <= 0)
			return -1;
		ctx->phys_off += (uint64_t)r;
		ctx->phys_left -= (uint64_t)r;
		len = imap_crlf_convert(&ctx->crlf, ctx->buf, (size_t)r,
					pool->bufs[i]);
		if (len == 0)
			continue;	/* all skipped (partial start) */
		fetch_out_add(cmd, ctx, i, len);
	}
	ctx->is_streaming = false;
	return 1;
}

/* The literal can't be finished: the client would misparse anything we
 * send, so the session ends. */
static void fetch_abort_session(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	struct imap_client *client = cmd->client;
	const struct store_msg *msg = imap_client_msg(client, ctx->seq);

	log_error("imap fetch of %s uid=%u failed id=%llu user=%s: "
		  "read error or file size differs from the index",
		  client->mailbox_name, msg->uid,
		  (unsigned long long)conn_id(client->conn), fetch_user(cmd));
	client->state = IMAP_STATE_LOGOUT;
	conn_close_after_flush(client->conn, "fetch failed");
}

/* After the items: FLAGS/MODSEQ changed by our \Seen, and ")". */
static void fetch_msg_close(struct imap_cmd *cmd, struct fetch_ctx *ctx,
			    const struct store_msg *msg)
{
	struct imap_client *client = cmd->client;
	struct evbuffer *out = imap_client_output(client);
	bool has_flags = false;

	for (size_t i = 0; i < ctx->spec.count; i++)
		has_flags |= ctx->spec.items[i].type == IMAP_FETCH_FLAGS;
	/* RFC 3501 6.4.5: flags changed by FETCH SHOULD be included;
	 * RFC 7162 3.2: with CONDSTORE so is the new MODSEQ. */
	if (ctx->add_flags && !has_flags) {
		evbuffer_add(out, " FLAGS (", 8);
		fetch_append_flags(cmd, ctx, out, msg);
		evbuffer_add(out, ")", 1);
	}
	if (ctx->add_flags && !ctx->spec.has_modseq &&
	    (client->enabled & IMAP_ENABLED_CONDSTORE))
		evbuffer_add_printf(out, " MODSEQ (%llu)",
				    (unsigned long long)msg->modseq);
	evbuffer_add(out, ")\r\n", 3);
}

/* Writes the current message's items from ctx->item on. Returns 1 when
 * the message is complete, 0 when the output is full, -1 when the
 * session must end. */
static int fetch_msg_items(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	struct evbuffer *out = imap_client_output(cmd->client);
	const struct store_msg *msg = imap_client_msg(cmd->client, ctx->seq);
	const struct imap_fetch_item *item;
	int ret;

	for (;;) {
		if (ctx->is_streaming) {
			if ((ret = fetch_stream(cmd, ctx)) <= 0)
				return ret;
		}
		if (ctx->item == ctx->spec.count)
			break;
		if (imap_client_output_full(cmd->client))
			return 0;
		item = &ctx->spec.items[ctx->item];
		if (ctx->item++ > 0)
			evbuffer_add(out, " ", 1);
		if (item->type < IMAP_FETCH_RFC822)
			fetch_write_simple(cmd, ctx, item, msg);
		else if (item->type >= IMAP_FETCH_BINARY) {
			if (fetch_write_binary(cmd, ctx, item, msg) < 0)
				return -1;
		} else if (fetch_write_section(cmd, ctx, item, msg) < 0)
			return -1;
	}
	fetch_msg_close(cmd, ctx, msg);
	return 1;
}

static void fetch_finish(struct imap_cmd *cmd, struct fetch_ctx *ctx)
{
	if (ctx->any_not_leaf)
		/* RFC 9051 6.4.5: BINARY only for leaf body parts */
		imap_cmd_bad(cmd, "FETCH BINARY[] of a multipart or "
			     "message/rfc822 part");
	else if (ctx->any_unknown_cte)
		/* RFC 3516 4.3 */
		imap_cmd_no(cmd, "[UNKNOWN-CTE] Unknown Content-Transfer-"
			    "Encoding in FETCH BINARY[]");
	else if (ctx->any_failed)
		imap_cmd_no(cmd, "[SERVERBUG] Internal error fetching some "
			    "messages");
	else if (ctx->any_expunged)
		/* RFC 5530 3, RFC 2180 4.1.3 */
		imap_cmd_no(cmd, "[EXPUNGEISSUED] Some of the requested "
			    "messages no longer exist");
	else
		imap_cmd_ok(cmd, "Fetch completed.");
}

/* Writes the queued trees (one index transaction). */
static void fetch_cache_flush(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	const char *error;

	if (client->mb != NULL &&
	    store_msg_cache_flush(client->mb, &error) < 0)
		log_warn("imap fetch cache flush (%s) failed id=%llu "
			 "user=%s: %s", client->mailbox_name,
			 (unsigned long long)conn_id(client->conn),
			 fetch_user(cmd), error);
}

static int fetch_slice(struct imap_cmd *cmd)
{
	struct fetch_ctx *ctx = cmd->ctx;
	unsigned begun = 0;
	int ret;

	for (;;) {
		if (ctx->in_msg) {
			ret = fetch_msg_items(cmd, ctx);
			if (ret == 0)
				return IMAP_CMD_AGAIN;	/* resumed on drain */
			if (ret < 0) {
				fetch_abort_session(cmd, ctx);
				return IMAP_CMD_DONE;
			}
			fetch_msg_end(ctx);
			continue;
		}
		if (ctx->pos == ctx->count)
			break;
		if (imap_client_output_full(cmd->client))
			return IMAP_CMD_AGAIN;
		if (begun++ == FETCH_MSGS_PER_SLICE) {
			/* Let other sessions run: resumed on drain, or with
			 * nothing queued, by the wake-up. */
			if (evbuffer_get_length(
				imap_client_output(cmd->client)) == 0)
				imap_cmd_wake(cmd);
			return IMAP_CMD_AGAIN;
		}
		fetch_msg_begin(cmd, ctx);
	}
	fetch_finish(cmd, ctx);
	return IMAP_CMD_DONE;
}

static int fetch_continue(struct imap_cmd *cmd)
{
	int ret = fetch_slice(cmd);

	/* A full queue is written by the next put; the rest here. */
	if (ret == IMAP_CMD_DONE)
		fetch_cache_flush(cmd);
	return ret;
}

/* RFC 7162 3.1: FETCH MODSEQ / CHANGEDSINCE enable CONDSTORE; the first
 * such command reports HIGHESTMODSEQ. */
static void fetch_enable_condstore(struct imap_client *client)
{
	if ((client->enabled & IMAP_ENABLED_CONDSTORE) != 0)
		return;
	client->enabled |= IMAP_ENABLED_CONDSTORE;
	imap_client_untagged(client, "OK [HIGHESTMODSEQ %llu] Highest",
		(unsigned long long)store_mailbox_highestmodseq(client->mb));
}

int cmd_fetch(struct imap_cmd *cmd)
{
	struct fetch_ctx *ctx = xcalloc(1, sizeof(*ctx));
	const char *error;

	ctx->fd = -1;
	cmd->ctx = ctx;
	cmd->ctx_free = fetch_ctx_free;
	if (cmd->args_count < 2) {
		imap_cmd_bad(cmd, "FETCH needs a sequence set and items");
		return IMAP_CMD_DONE;
	}
	if (imap_fetch_parse(cmd->args + 1, cmd->args_count - 1, cmd->uid,
			     &ctx->spec, &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		return IMAP_CMD_DONE;
	}
	/* RFC 7162 3.2.6: VANISHED needs ENABLE QRESYNC. */
	if (ctx->spec.has_vanished &&
	    !(cmd->client->enabled & IMAP_ENABLED_QRESYNC)) {
		imap_cmd_bad(cmd, "VANISHED needs ENABLE QRESYNC");
		return IMAP_CMD_DONE;
	}
	if (imap_client_seqset(cmd->client, &cmd->args[0], cmd->uid,
			       &ctx->seqs, &ctx->count, &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		return IMAP_CMD_DONE;
	}
	if (ctx->spec.needs & IMAP_FETCH_NEED_FILE)
		ctx->buf = xmalloc(FETCH_CHUNK_SIZE);
	for (size_t i = 0; i < ctx->spec.count; i++) {
		ctx->needs_data |= ctx->spec.items[i].type >= IMAP_FETCH_RFC822;
		ctx->has_binary |= ctx->spec.items[i].type >=
			IMAP_FETCH_BINARY;
	}
	if (ctx->has_binary) {
		ctx->bin_scratch = xmalloc(2 * FETCH_CHUNK_SIZE);
		ctx->bin_out = xmalloc(2 * FETCH_CHUNK_SIZE);
	}
	if (ctx->spec.has_modseq)
		fetch_enable_condstore(cmd->client);
	/* RFC 7162 3.2.6: VANISHED (EARLIER) before any FETCH response. */
	if (ctx->spec.has_vanished)
		(void)imap_vanished_send_for_set(cmd->client, &cmd->args[0],
						 ctx->spec.changedsince);
	cmd->resume = fetch_continue;
	return fetch_continue(cmd);
}
