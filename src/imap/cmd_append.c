/* cmd_append.c: APPEND (RFC 3501 6.3.11) with MULTIAPPEND (RFC 3502),
 * literal8 (RFC 3516), LITERAL+ (RFC 7888), APPENDUID (RFC 4315) and the
 * UTF8 data extension (RFC 6855 4: "UTF8 (~{n}...)" once the client
 * has enabled UTF8=ACCEPT). A NUL is accepted only in a literal8 (RFC
 * 3501 9: CHAR8 excludes it); binary parts of a literal8 are stored as
 * base64 (src/mail/binary_convert.h), so BINARY[] gives them back.
 *
 * Message literals never sit in memory: while the command is still being
 * parsed the session hands each one to imap_append_literal_start/_data,
 * which check the target and the size limit and stream the bytes into a
 * Maildir tmp/ file (CRLF -> LF, as messages are stored; a bare CR is
 * kept). When the command has parsed completely, cmd_append() checks the
 * flags and dates, commits the messages in order and answers
 * "OK [APPENDUID v uids]". All or nothing (RFC 3502 6.3.11): a failed
 * commit expunges the messages committed before it; an aborted command or
 * a lost connection removes the tmp files.
 *
 * Limits: max_message_size per message (NO [TOOBIG], RFC 4469/7889
 * wording), APPEND_MAX_MESSAGES per MULTIAPPEND (one open file each),
 * APPEND_MAILBOX_LITERAL_MAX for a mailbox name sent as a literal. */
#include "imap/imap_client.h"
#include "imap/imap_seqset.h"
#include "imap/imap_date.h"
#include "imap/imap_mailbox_name.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf/config.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "mail/binary_convert.h"

/* Messages in one MULTIAPPEND (each holds an open tmp file). */
#define APPEND_MAX_MESSAGES 100
/* A mailbox name given as a literal, in bytes. */
#define APPEND_MAILBOX_LITERAL_MAX 1024
/* Commits (each fsync()s) per call before yielding to the loop. */
#define APPEND_COMMITS_PER_CALL 16

struct imap_append {
	char *tag;			/* for replies from the hooks */
	struct store_mailbox *mb;	/* the target */
	char *store_name;
	struct store_delivery *d[APPEND_MAX_MESSAGES];
	uint32_t uids[APPEND_MAX_MESSAGES];	/* committed */
	size_t lits[APPEND_MAX_MESSAGES];	/* arg of message i (literal/list) */
	/* args [first, end) of message i are its flags and date */
	size_t opts_first[APPEND_MAX_MESSAGES];
	size_t opts_end[APPEND_MAX_MESSAGES];
	size_t count;			/* literals started */
	size_t committed;
	size_t next_arg;		/* first arg of the next message */
	bool has_pending_cr;		/* last chunk ended in CR */
	bool is_literal8;		/* the current message's literal */
	struct binary_convert *bin;	/* its spool (RFC 3516 4.4) */
	bool is_name_literal;		/* streaming the mailbox name */
	char name[APPEND_MAILBOX_LITERAL_MAX + 1];
	size_t name_len;
	bool is_done;			/* replied OK: keep what's committed */
};

/* Expunges the messages committed so far (keeps errno). */
static void append_rollback(struct imap_append *ap)
{
	const char *error;
	int err = errno;

	if (ap->committed > 0 &&
	    store_mailbox_expunge(ap->mb, ap->uids, ap->committed,
				  &error) < 0)
		log_error("imap APPEND rollback: store_mailbox_expunge(%s) "
			  "failed: %s", ap->store_name, error);
	ap->committed = 0;
	errno = err;
}

/* Drops uncommitted tmp files and, unless the command succeeded, the
 * messages already committed. */
static void append_free(struct imap_append **_ap)
{
	struct imap_append *ap = *_ap;

	if (ap == NULL)
		return;
	*_ap = NULL;
	for (size_t i = 0; i < ap->count; i++)
		store_delivery_abort(&ap->d[i]);	/* NULL once committed */
	binary_convert_abort(&ap->bin);
	if (!ap->is_done)
		append_rollback(ap);
	store_mailbox_close(&ap->mb);
	free(ap->store_name);
	free(ap->tag);
	free(ap);
}

static void append_ctx_free(void *ctx)
{
	struct imap_append *ap = ctx;

	append_free(&ap);
}

void imap_append_abort(struct imap_client *client)
{
	append_free(&client->append);
}

/* A tagged reply from a hook (no struct imap_cmd exists yet); drops the
 * APPEND. Returns -1 for the hook to return. */
static int append_hook_fail(struct imap_client *client, const char *status,
			    const char *text)
{
	evbuffer_add_printf(imap_client_output(client), "%s %s %s\r\n",
			    client->append->tag, status, text);
	if (status[0] == 'B')
		client->bad_count++;
	append_free(&client->append);
	return -1;
}

static void append_log_error(struct imap_client *client, const char *call,
			     const char *error)
{
	log_error("imap APPEND %s(%s) failed id=%llu user=%s: %s", call,
		  client->append != NULL && client->append->store_name !=
		  NULL ? client->append->store_name : "",
		  (unsigned long long)conn_id(client->conn), client->user,
		  error);
}

/* Opens the target mailbox named by arg (or the streamed name). */
static int append_open_target(struct imap_client *client,
			      const struct imap_arg *arg)
{
	struct imap_append *ap = client->append;
	const char *name = ap->name, *error;
	size_t len = ap->name_len;

	if (arg->is_streamed) {
		if (memchr(ap->name, '\0', ap->name_len) != NULL)
			return append_hook_fail(client, "BAD",
						"Invalid mailbox name");
	} else if (!imap_arg_get_astring(arg, &name, &len)) {
		return append_hook_fail(client, "BAD", "Invalid mailbox name");
	}
	if (imap_mailbox_name_from_client(name, len,
			imap_client_utf8_names(client),
			&ap->store_name, &error) < 0)
		return append_hook_fail(client, "NO", error);
	if (store_mailbox_open_flags(client->su, ap->store_name,
				     STORE_OPEN_NO_NAMES, &ap->mb,
				     &error) == 0)
		return 0;
	/* RFC 3501 6.3.11: TRYCREATE when the mailbox does not exist */
	if (errno == ENOENT || errno == ENOTDIR)
		return append_hook_fail(client, "NO",
					"[TRYCREATE] Mailbox doesn't exist");
	if (errno == EINVAL)
		return append_hook_fail(client, "NO",
					"[CANNOT] Invalid mailbox name");
	append_log_error(client, "store_mailbox_open", error);
	return append_hook_fail(client, "NO",
				"[SERVERBUG] Can't open the mailbox");
}

/* The optional flag list and date-time before a message literal: args
 * [first, end). Sets *flags_arg_r / *date_arg_r (NULL when absent).
 * Returns 0, or -1 with *error_r (BAD). */
static int append_parse_opts(const struct imap_arg *args, size_t first,
			     size_t end, const struct imap_arg **flags_arg_r,
			     const struct imap_arg **date_arg_r,
			     const char **error_r)
{
	size_t i = first;

	*flags_arg_r = *date_arg_r = NULL;
	if (i < end && args[i].type == IMAP_ARG_LIST)
		*flags_arg_r = &args[i++];
	if (i < end && args[i].type == IMAP_ARG_QUOTED)
		*date_arg_r = &args[i++];
	if (i != end) {
		*error_r = "Invalid APPEND arguments";
		return -1;
	}
	return 0;
}

static int append_parse_date(const struct imap_arg *date_arg,
			     time_t *date_r)
{
	int tz;

	*date_r = 0;		/* 0 = now, for store_delivery_commit */
	if (date_arg == NULL)
		return 0;
	return imap_datetime_parse(date_arg->str, date_arg->len, date_r,
				   &tz);
}

/* Checks the flags and date of the message whose literal comes at
 * arg_index (the keywords are created only at commit). Returns 0 or -1
 * (replied). */
static int append_check_opts(struct imap_client *client,
			     const struct imap_command *partial,
			     size_t arg_index)
{
	struct imap_append *ap = client->append;
	const struct imap_arg *flags_arg, *date_arg;
	const char *error;
	uint32_t flags;
	uint64_t keywords;
	time_t date;

	if (arg_index > partial->args_count ||
	    append_parse_opts(partial->args, ap->next_arg, arg_index,
			      &flags_arg, &date_arg, &error) < 0)
		return append_hook_fail(client, "BAD",
					"Invalid APPEND arguments");
	if (flags_arg != NULL &&
	    imap_client_parse_flags(client, ap->mb, flags_arg, false, &flags,
				    &keywords, &error) < 0)
		return append_hook_fail(client, errno == EINVAL ? "BAD" :
					"NO", error);
	if (append_parse_date(date_arg, &date) < 0)
		return append_hook_fail(client, "BAD", "Invalid date-time");
	ap->next_arg = arg_index + 1;
	return 0;
}

/* A message literal: limits, then a tmp file. */
static int append_start_message(struct imap_client *client,
				const struct imap_literal_info *info)
{
	struct imap_append *ap = client->append;
	uint64_t max = client->set->max_message_size;
	const char *error;

	if (ap->count == APPEND_MAX_MESSAGES)
		return append_hook_fail(client, "NO",
					"[LIMIT] Too many messages in one "
					"APPEND");
	/* RFC 4469 / 7889: TOOBIG, before the client sends the data */
	if (max != 0 && info->size > max)
		return append_hook_fail(client, "NO",
					"[TOOBIG] Message too large");
	if (info->size == 0)
		return append_hook_fail(client, "NO",
					"Can't save an empty message");
	if (store_delivery_begin(client->su, ap->store_name,
				 &ap->d[ap->count], &error) < 0) {
		append_log_error(client, "store_delivery_begin", error);
		return append_hook_fail(client, "NO",
					"[SERVERBUG] Can't save the message");
	}
	ap->count++;
	ap->has_pending_cr = false;
	ap->is_literal8 = info->is_literal8;
	/* RFC 3516 4.4 / 6: a literal8 is spooled raw, its binary parts
	 * become base64 before the store sees it (binary_convert.h) */
	if (ap->is_literal8 && (ap->bin = binary_convert_begin(
			client->set->state_dir, &error)) == NULL) {
		append_log_error(client, "binary_convert_begin", error);
		return append_hook_fail(client, "NO",
					"[SERVERBUG] Can't save the message");
	}
	return 0;
}

/* RFC 6855 4: utf8-literal = "UTF8" SP "(" literal8 ")": the literal
 * opens the list right after the atom UTF8, the last top-level arg so
 * far. Returns the atom's index, or 0 (replied) when it is not that. */
static size_t append_utf8_literal(struct imap_client *client,
				  const struct imap_command *partial,
				  const struct imap_literal_info *info)
{
	size_t n = partial->args_count;

	if (info->depth != 1 || info->arg_index != 0 || n < 2 ||
	    !imap_arg_atom_equals(&partial->args[n - 1], "UTF8") ||
	    !info->is_literal8) {
		append_hook_fail(client, "BAD", "Invalid APPEND arguments");
		return 0;
	}
	if ((client->enabled & IMAP_ENABLED_UTF8) == 0) {
		append_hook_fail(client, "BAD", "APPEND UTF8 needs "
				 "ENABLE UTF8=ACCEPT first");
		return 0;
	}
	return n - 1;
}

int imap_append_literal_start(struct imap_client *client,
			      const struct imap_command *partial,
			      const struct imap_literal_info *info)
{
	struct imap_append *ap = client->append;

	if (ap == NULL) {
		ap = client->append = xcalloc(1, sizeof(*ap));
		ap->tag = xstrdup(partial->tag);
		ap->next_arg = 1;
	}
	if (info->depth == 0 && info->arg_index == 0) {
		/* the mailbox name as a literal: small, kept here */
		if (info->size > APPEND_MAILBOX_LITERAL_MAX)
			return append_hook_fail(client, "BAD",
						"Mailbox name too long");
		ap->is_name_literal = true;
		return 0;
	}
	if (ap->mb == NULL &&
	    (partial->args_count == 0 ||
	     append_open_target(client, &partial->args[0]) < 0)) {
		if (client->append != NULL)
			return append_hook_fail(client, "BAD",
						"Missing mailbox");
		return -1;
	}
	if (info->depth == 0) {
		if (append_check_opts(client, partial, info->arg_index) < 0)
			return -1;
	} else {
		size_t utf8 = append_utf8_literal(client, partial, info);

		if (utf8 == 0 || append_check_opts(client, partial, utf8) < 0)
			return -1;
		ap->next_arg = utf8 + 2;	/* after "UTF8 (...)" */
	}
	return append_start_message(client, info);
}

static int append_write(struct imap_client *client, const void *data,
			size_t size)
{
	struct imap_append *ap = client->append;
	const char *error;

	if (size == 0 || store_delivery_write(ap->d[ap->count - 1], data, size,
					      &error) == 0)
		return 0;
	if (errno == ENOSPC || errno == EDQUOT) {
		log_warn("imap APPEND store_delivery_write(%s) failed "
			 "id=%llu user=%s: %s", ap->store_name,
			 (unsigned long long)conn_id(client->conn),
			 client->user, error);
		return append_hook_fail(client, "NO", "Out of disk space");
	}
	append_log_error(client, "store_delivery_write", error);
	return append_hook_fail(client, "NO",
				"[SERVERBUG] Can't save the message");
}

/* CRLF -> LF; a CR at the end of a chunk waits for the next one. */
static int append_write_message(struct imap_client *client,
				const unsigned char *data, size_t size,
				bool is_last)
{
	struct imap_append *ap = client->append;
	size_t start = 0;

	if (ap->has_pending_cr && (size > 0 || is_last)) {
		ap->has_pending_cr = false;
		if ((size == 0 || data[0] != '\n') &&
		    append_write(client, "\r", 1) < 0)
			return -1;
	}
	for (size_t i = 0; i < size; i++) {
		if (data[i] != '\r')
			continue;
		if (i + 1 < size && data[i + 1] != '\n')
			continue;	/* a bare CR stays */
		if (append_write(client, data + start, i - start) < 0)
			return -1;
		start = i + 1;
		if (i + 1 == size) {	/* CR ends the chunk */
			if (!is_last)
				ap->has_pending_cr = true;
			else if (append_write(client, "\r", 1) < 0)
				return -1;
		}
	}
	return append_write(client, data + start, size - start);
}

static int append_bin_out(void *ctx, const void *data, size_t size,
			  bool is_last)
{
	return append_write_message(ctx, data, size, is_last);
}

/* A literal8: into the spool; at its end, converted into the store. */
static int append_write_literal8(struct imap_client *client,
				 const unsigned char *data, size_t size,
				 bool is_last)
{
	struct imap_append *ap = client->append;
	const char *error;

	if (binary_convert_write(ap->bin, data, size, &error) == 0 &&
	    (!is_last || binary_convert_finish(&ap->bin, append_bin_out,
					       client, &error) >= 0))
		return 0;
	if (client->append == NULL)
		return -1;	/* append_write_message replied */
	append_log_error(client, "binary_convert", error);
	return append_hook_fail(client, "NO", errno == ENOSPC ||
				errno == EDQUOT ? "Out of disk space" :
				"[SERVERBUG] Can't save the message");
}

int imap_append_literal_data(struct imap_client *client,
			     const unsigned char *data, size_t size,
			     bool is_last)
{
	struct imap_append *ap = client->append;

	if (ap == NULL)
		return 0;
	if (ap->is_name_literal) {
		if (size > sizeof(ap->name) - 1 - ap->name_len)
			size = sizeof(ap->name) - 1 - ap->name_len;
		memcpy(ap->name + ap->name_len, data, size);
		ap->name_len += size;
		ap->name[ap->name_len] = '\0';
		if (is_last)
			ap->is_name_literal = false;
		return 0;
	}
	if (ap->count == 0)
		return 0;	/* not a literal we accepted */
	/* RFC 3501 9 / RFC 3516: NUL only in a literal8 */
	if (!ap->is_literal8 && memchr(data, '\0', size) != NULL)
		return append_hook_fail(client, "BAD", "NUL in a literal: "
					"use a literal8 ~{n}");
	if (ap->is_literal8)
		return append_write_literal8(client, data, size, is_last);
	return append_write_message(client, data, size, is_last);
}

/* Keyword names of a flag list (the store creates them at commit). */
static size_t append_keyword_names(const struct imap_arg *flags_arg,
				   const char **names, size_t max)
{
	size_t n = 0;

	if (flags_arg == NULL)
		return 0;
	for (size_t i = 0; i < flags_arg->list_count && n < max; i++) {
		if (flags_arg->list[i].str[0] != '\\')
			names[n++] = flags_arg->list[i].str;
	}
	return n;
}

/* Commits message idx, whose flags and date are args[first, lit).
 * Returns 0, or -1 after replying. */
static int append_commit_one(struct imap_cmd *cmd, struct imap_append *ap,
			     size_t first, size_t lit)
{
	const struct imap_arg *flags_arg, *date_arg;
	const char *names[STORE_KEYWORDS_MAX], *error;
	uint32_t flags = 0;
	uint64_t keywords;
	size_t n;
	time_t date;

	if (append_parse_opts(cmd->args, first, lit, &flags_arg, &date_arg,
			      &error) < 0 ||
	    append_parse_date(date_arg, &date) < 0) {
		imap_cmd_bad(cmd, "Invalid APPEND arguments");
		return -1;
	}
	if (flags_arg != NULL &&
	    imap_client_parse_flags(cmd->client, ap->mb, flags_arg, false,
				    &flags, &keywords, &error) < 0) {
		if (errno == EINVAL)
			imap_cmd_bad(cmd, "%s", error);
		else
			imap_cmd_no(cmd, "%s", error);
		return -1;
	}
	n = append_keyword_names(flags_arg, names, STORE_KEYWORDS_MAX);
	if (store_delivery_commit_keywords(&ap->d[ap->committed], flags,
					   names, n, date,
					   &ap->uids[ap->committed],
					   &error) == 0) {
		ap->committed++;
		return 0;
	}
	/* d was freed by the commit; the earlier ones go before we reply
	 * (RFC 3502: all or nothing) */
	append_rollback(ap);
	if (errno == ENOSPC && strstr(error, "keyword") != NULL) {
		imap_cmd_no(cmd, "[LIMIT] Too many keywords in this mailbox");
	} else if (errno == EINVAL) {
		imap_cmd_bad(cmd, "Invalid keyword");
	} else {
		log_error("imap APPEND store_delivery_commit(%s) failed "
			  "id=%llu user=%s: %s", ap->store_name,
			  (unsigned long long)conn_id(cmd->client->conn),
			  cmd->client->user, error);
		imap_cmd_no(cmd, "[SERVERBUG] Can't save the message");
	}
	return -1;
}


static int append_continue(struct imap_cmd *cmd)
{
	struct imap_append *ap = cmd->ctx;
	char *set;

	for (unsigned n = 0; ap->committed < ap->count; n++) {
		size_t k = ap->committed;

		if (n == APPEND_COMMITS_PER_CALL) {
			imap_cmd_wake(cmd);
			return IMAP_CMD_AGAIN;
		}
		if (append_commit_one(cmd, ap, ap->opts_first[k],
				      ap->opts_end[k]) < 0)
			return IMAP_CMD_DONE;
	}
	ap->is_done = true;
	set = imap_seqset_format(ap->uids, NULL, ap->committed);
	/* RFC 4315 3 / RFC 3502: APPENDUID with a UID set */
	imap_cmd_ok(cmd, "[APPENDUID %u %s] Append completed",
		    store_mailbox_uidvalidity(ap->mb), set);
	free(set);
	return IMAP_CMD_DONE;
}

/* Is args[i] the "(literal8)" of "UTF8 (~{n})" (RFC 6855 4)? */
static bool append_is_utf8_data(const struct imap_arg *args, size_t i)
{
	const struct imap_arg *arg = &args[i];

	return arg->type == IMAP_ARG_LIST && arg->list_count == 1 &&
		arg->list[0].type == IMAP_ARG_LITERAL && i >= 2 &&
		imap_arg_atom_equals(&args[i - 1], "UTF8");
}

/* Finds the messages among the args: each streamed literal after the
 * mailbox, or "UTF8 (literal)", the last arg being one; notes where
 * each message's flags and date are. */
static int append_find_literals(struct imap_cmd *cmd,
				struct imap_append *ap)
{
	const struct imap_arg *lit;
	size_t k = 0, first = 1, end;

	for (size_t i = 1; i < cmd->args_count; i++) {
		const struct imap_arg *arg = &cmd->args[i];

		if (arg->type == IMAP_ARG_LITERAL) {
			lit = arg;
			end = i;
		} else if (append_is_utf8_data(cmd->args, i)) {
			lit = &arg->list[0];
			end = i - 1;
		} else {
			continue;
		}
		if (!lit->is_streamed || k == ap->count || end < first)
			return -1;
		ap->lits[k] = i;
		ap->opts_first[k] = first;
		ap->opts_end[k++] = end;
		first = i + 1;
	}
	if (k != ap->count || k == 0 ||
	    ap->lits[k - 1] != cmd->args_count - 1)
		return -1;
	return 0;
}

int cmd_append(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct imap_append *ap = client->append;

	/* The command's args own the message now: disconnects and errors
	 * free it through ctx_free (rolling back). */
	client->append = NULL;
	cmd->ctx = ap;
	cmd->ctx_free = append_ctx_free;
	if (ap == NULL || ap->count == 0 ||
	    append_find_literals(cmd, ap) < 0) {
		imap_cmd_bad(cmd, "Invalid APPEND arguments");
		return IMAP_CMD_DONE;
	}
	cmd->resume = append_continue;
	return append_continue(cmd);
}
