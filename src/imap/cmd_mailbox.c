/* cmd_mailbox.c: mailbox-level commands (RFC 3501 6.3.1-6.3.10, RFC 9051
 * 6.3): SELECT/EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE/UNSUBSCRIBE,
 * STATUS, NAMESPACE (RFC 2342), and LIST/LSUB with LIST-EXTENDED (RFC
 * 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154), CHILDREN (RFC
 * 3348); the CONDSTORE and QRESYNC parameters of SELECT/EXAMINE (RFC
 * 7162 3.1.8, 3.2.5: VANISHED (EARLIER) and FETCH of what changed).
 * After ENABLE IMAP4rev2 (RFC 9051): SELECT sends LIST and no RECENT /
 * UNSEEN (6.3.2), STATUS knows no RECENT, DELETE says HASCHILDREN (7.1),
 * names are UTF-8 (5.1).
 *
 * Names: client spelling -> store spelling via imap_mailbox_name.h;
 * client->mailbox_name holds the store spelling. Not here: message-level
 * commands, the untagged updates of the selected mailbox (the session's
 * imap_client_sync). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "imap/imap_client.h"
#include "imap/imap_mailbox_name.h"
#include "imap/imap_quote.h"
#include "imap/imap_seqset.h"
#include "imap/imap_vanished.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#ifdef HAVE_UTF8PROC
#include <utf8proc.h>
#endif

static unsigned mb_list_flags(struct imap_client *client,
			      const char *name);

static bool mb_is_utf8(const struct imap_client *client)
{
	return imap_client_utf8_names(client);
}

static bool mb_is_rev2(const struct imap_client *client)
{
	return (client->enabled & IMAP_ENABLED_IMAP4REV2) != 0;
}

static int mb_arg(struct imap_cmd *cmd, const struct imap_arg *arg,
		  char **name_r)
{
	const char *str, *error;
	size_t len;

	if (!imap_arg_get_astring(arg, &str, &len)) {
		imap_cmd_bad(cmd, "Invalid mailbox name argument");
		return -1;
	}
	if (imap_mailbox_name_from_client(str, len,
					  mb_is_utf8(cmd->client), name_r,
					  &error) < 0) {
		imap_cmd_no(cmd, "[CANNOT] %s", error);
		return -1;
	}
	return 0;
}

/* RFC 9051 5.1: "Server implementations MUST prohibit the creation of
 * 8-bit mailbox names that do not comply with Net-Unicode" (RFC 5198:
 * NFC). We don't normalize (so no OLDNAME, 6.3.9.7): a rev2 CREATE or
 * RENAME to a name not in NFC is refused. Replies NO itself. */
static int mb_check_nfc(struct imap_cmd *cmd, const char *store_name)
{
	int ret = 0;
#ifdef HAVE_UTF8PROC
	char *utf8 = NULL, *nfc;
	const char *p;

	for (p = store_name; *p != '\0' && *p != '&'; p++)
		;
	if (*p == '\0' || !mb_is_rev2(cmd->client) ||
	    imap_mailbox_name_to_utf8(store_name, &utf8) < 0)
		return 0;	/* ASCII only, or rejected elsewhere */
	nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)utf8);
	if (nfc == NULL || strcmp(nfc, utf8) != 0) {
		imap_cmd_no(cmd, "[CANNOT] Mailbox name is not in Unicode "
			    "normalization form C");
		ret = -1;
	}
	free(nfc);
	free(utf8);
#endif
	return ret;
}

/* Replies NO for a failed store call on a mailbox (RFC 5530 codes). */
static void mb_store_error(struct imap_cmd *cmd, const char *call, int err,
			   const char *error)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		imap_cmd_no(cmd, "[NONEXISTENT] Mailbox doesn't exist");
		break;
	case EEXIST:
		imap_cmd_no(cmd, "[ALREADYEXISTS] Mailbox already exists");
		break;
	case EINVAL:
		imap_cmd_no(cmd, "[CANNOT] %s", error);
		break;
	case EPERM:
		imap_cmd_no(cmd, "[CANNOT] %s", error);
		break;
	case ENOSPC:
	case EDQUOT:
		imap_cmd_no(cmd, "[OVERQUOTA] Not enough disk space");
		break;
	default:
		log_error("imap %s user=%s failed: %s", call,
			  cmd->client->user, error);
		imap_cmd_no(cmd, "[SERVERBUG] Internal error");
		break;
	}
}

/* ---- SELECT / EXAMINE ---- */

static void select_send_flags(struct imap_client *client)
{
	struct evbuffer *out = imap_client_output(client);
	const char *const *names = NULL;
	unsigned count = 0;
	const char *error;

	if (store_mailbox_keyword_names(client->mb, &names, &count,
					&error) < 0) {
		log_warn("imap keyword_names user=%s mailbox=%s failed: %s",
			 client->user, client->mailbox_name, error);
		count = 0;
	}
	evbuffer_add_printf(out, "* FLAGS (\\Answered \\Flagged \\Deleted "
			    "\\Seen \\Draft");
	for (unsigned i = 0; i < count; i++)
		evbuffer_add_printf(out, " %s", names[i]);
	evbuffer_add(out, ")\r\n", 3);
	/* RFC 3501 7.1: PERMANENTFLAGS; "\*" while keywords can still be
	 * created (STORE_KEYWORDS_MAX). Read-only: nothing is permanent. */
	evbuffer_add_printf(out, "* OK [PERMANENTFLAGS (");
	if (!client->is_readonly) {
		evbuffer_add_printf(out, "\\Answered \\Flagged \\Deleted "
				    "\\Seen \\Draft");
		for (unsigned i = 0; i < count; i++)
			evbuffer_add_printf(out, " %s", names[i]);
		if (count < STORE_KEYWORDS_MAX)
			evbuffer_add_printf(out, " \\*");
	}
	evbuffer_add_printf(out, ")] %s\r\n", client->is_readonly ?
			    "Read-only mailbox" : "Flags permitted");
}

static uint32_t select_first_unseen(struct imap_client *client)
{
	uint32_t count = imap_client_count(client);

	for (uint32_t seq = 1; seq <= count; seq++) {
		const struct store_msg *msg = imap_client_msg(client, seq);

		if ((msg->flags & STORE_FLAG_SEEN) == 0)
			return seq;
	}
	return 0;
}

/* RFC 3501 2.3.2: a read-write SELECT takes \Recent for this session;
 * returns how many messages of the view it holds. */
static uint32_t select_claim_recent(struct imap_client *client)
{
	imap_client_claim_recent(client);
	return imap_client_count_recent(client);
}

static void select_send_list(struct imap_client *client)
{
	struct evbuffer *out = imap_client_output(client);
	const char *use = imap_mailbox_special_use(client->mailbox_name);
	unsigned flags = mb_list_flags(client, client->mailbox_name);

	/* RFC 9051 6.3.2: a LIST response with the mailbox name, its
	 * attributes "MUST be accurate": the ones LIST gives it (children,
	 * special use; a selected mailbox is never \Noselect). */
	evbuffer_add_printf(out, "* LIST (%s%s%s) \"/\" ",
			    (flags & STORE_LIST_HAS_CHILDREN) ?
			    "\\HasChildren" : "\\HasNoChildren",
			    use != NULL ? " " : "", use != NULL ? use : "");
	(void)imap_mailbox_name_append(out, client->mailbox_name,
				       imap_client_quote_flags(client));
	evbuffer_add(out, "\r\n", 2);
}

static void select_send_status(struct imap_client *client)
{
	bool rev2 = (client->enabled & IMAP_ENABLED_IMAP4REV2) != 0;
	uint32_t count = imap_client_count(client), recent, unseen;

	select_send_flags(client);
	recent = select_claim_recent(client);
	imap_client_untagged(client, "%u EXISTS", count);
	client->exists_sent = count;
	client->recent_sent = recent;
	/* RFC 9051 drops RECENT and the UNSEEN code. */
	if (!rev2) {
		imap_client_untagged(client, "%u RECENT", recent);
		unseen = select_first_unseen(client);
		if (unseen != 0)
			imap_client_untagged(client, "OK [UNSEEN %u] First "
					     "unseen.", unseen);
	} else {
		select_send_list(client);
	}
	imap_client_untagged(client, "OK [UIDVALIDITY %u] UIDs valid",
			     store_mailbox_uidvalidity(client->mb));
	imap_client_untagged(client, "OK [UIDNEXT %u] Predicted next UID",
			     store_mailbox_uidnext(client->mb));
	/* RFC 7162 3.1.2.1: always fine to send. */
	imap_client_untagged(client, "OK [HIGHESTMODSEQ %llu] Highest",
			     (unsigned long long)
			     store_mailbox_highestmodseq(client->mb));
}

/* RFC 7162 3.2.5: SELECT/EXAMINE (QRESYNC (uidvalidity modseq
 * [known-uids] [(known-sequence-set known-uid-set)])). Kept in cmd->ctx
 * while the FETCH replies go out. */
struct select_qresync {
	uint32_t uidvalidity;
	uint64_t modseq;
	bool has_known;
	struct imap_seqset known;	/* known-uids (UIDs) */
	bool has_match;
	struct imap_seqset match_seqs, match_uids;	/* seq-match-data */
	uint32_t next_seq;		/* FETCH replies: next message */
};

/* mod-sequence-value (RFC 7162 7): 63 bits. */
#define SELECT_MODSEQ_MAX UINT64_C(9223372036854775807)

static void select_qresync_free(void *ctx)
{
	struct select_qresync *qr = ctx;

	imap_seqset_free(&qr->known);
	imap_seqset_free(&qr->match_seqs);
	imap_seqset_free(&qr->match_uids);
	free(qr);
}

/* A known-uids / known-sequence-set / known-uid-set: no '*', no '$'. */
static int select_parse_set(const struct imap_arg *arg,
			    struct imap_seqset *set)
{
	const char *error;
	bool is_saved;

	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	if (imap_seqset_parse(arg->str, strlen(arg->str), 0, set, &is_saved,
			      &error) < 0)
		return -1;
	return set->has_star || is_saved ? -1 : 0;
}

/* (known-sequence-set known-uid-set), both of one size (3.2.5.2). */
static int select_parse_match(const struct imap_arg *arg,
			      struct select_qresync *qr)
{
	const struct imap_arg *list;
	size_t count;

	if (!imap_arg_get_list(arg, &list, &count) || count != 2)
		return -1;
	qr->has_match = true;
	if (select_parse_set(&list[0], &qr->match_seqs) < 0 ||
	    select_parse_set(&list[1], &qr->match_uids) < 0)
		return -1;
	return imap_seqset_count(&qr->match_seqs) ==
		imap_seqset_count(&qr->match_uids) ? 0 : -1;
}

/* The QRESYNC parameter's list; -1 when it is not valid syntax. */
static int select_parse_qresync(const struct imap_arg *arg,
				struct select_qresync *qr)
{
	const struct imap_arg *list;
	const char *str;
	uint64_t num;
	size_t count, i = 2;

	if (!imap_arg_get_list(arg, &list, &count) || count < 2 ||
	    count > 4 || !imap_arg_get_atom(&list[0], &str) ||
	    str_to_u64z(str, UINT32_MAX, &num) < 0 || num == 0)
		return -1;
	qr->uidvalidity = (uint32_t)num;
	if (!imap_arg_get_atom(&list[1], &str) ||
	    str_to_u64z(str, SELECT_MODSEQ_MAX, &qr->modseq) < 0)
		return -1;
	if (i < count && list[i].type == IMAP_ARG_ATOM) {
		qr->has_known = true;
		if (select_parse_set(&list[i++], &qr->known) < 0)
			return -1;
	}
	if (i < count && select_parse_match(&list[i++], qr) < 0)
		return -1;
	return i == count ? 0 : -1;
}

/* SELECT parameters (RFC 4466): (CONDSTORE), RFC 7162 3.1.8, and
 * (QRESYNC (...)), 3.2.5, which sets cmd->ctx. Replies BAD itself. */
static int select_parse_params(struct imap_cmd *cmd, bool *condstore_r)
{
	const struct imap_arg *list;
	struct select_qresync *qr;
	size_t count;

	*condstore_r = false;
	if (cmd->args_count == 1)
		return 0;
	if (cmd->args_count != 2 ||
	    !imap_arg_get_list(&cmd->args[1], &list, &count)) {
		imap_cmd_bad(cmd, "Invalid arguments");
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		if (imap_arg_atom_equals(&list[i], "CONDSTORE")) {
			*condstore_r = true;
			continue;
		}
		if (!imap_arg_atom_equals(&list[i], "QRESYNC") ||
		    cmd->ctx != NULL || i + 1 == count) {
			imap_cmd_bad(cmd, "Unsupported SELECT parameter");
			return -1;
		}
		/* RFC 7162 3.2.5: BAD unless QRESYNC was enabled. */
		if (!(cmd->client->enabled & IMAP_ENABLED_QRESYNC)) {
			imap_cmd_bad(cmd, "QRESYNC not enabled");
			return -1;
		}
		qr = xcalloc(1, sizeof(*qr));
		cmd->ctx = qr;
		cmd->ctx_free = select_qresync_free;
		if (select_parse_qresync(&list[++i], qr) < 0) {
			imap_cmd_bad(cmd, "Invalid QRESYNC parameter");
			return -1;
		}
	}
	return 0;
}

static int select_open(struct imap_cmd *cmd, char *name)
{
	struct imap_client *client = cmd->client;
	struct store_mailbox *mb = NULL;
	const char *error;
	int err;

	if (store_mailbox_open_flags(client->su, name, STORE_OPEN_NO_NAMES,
				     &mb, &error) < 0 ||
	    store_mailbox_sync(mb, &error) < 0) {
		err = errno;
		if (mb != NULL)
			store_mailbox_close(&mb);
		mb_store_error(cmd, "select", err, error);
		return -1;
	}
	client->mb = mb;
	client->mailbox_name = name;
	client->is_readonly = strcmp(cmd->name, "EXAMINE") == 0;
	client->state = IMAP_STATE_SELECTED;
	if (store_watch_add(mb, &client->watch_id, &error) < 0) {
		log_warn("imap watch_add user=%s mailbox=%s failed: %s",
			 client->user, name, error);
		client->watch_id = -1;
	} else {
		imap_client_watch_start(client);
	}
	return 0;
}

static int select_done(struct imap_cmd *cmd)
{
	imap_cmd_ok(cmd, "%s %s completed", cmd->client->is_readonly ?
		    "[READ-ONLY]" : "[READ-WRITE]", cmd->name);
	return IMAP_CMD_DONE;
}

/* RFC 7162 3.2.5.2: UIDs up to the last pair of seq-match-data that
 * matches the mailbox (in order, until the first mismatch) are known to
 * the client: no VANISHED for them. Returns the lowest UID to report. */
static uint32_t qresync_min_uid(struct imap_client *client,
				const struct select_qresync *qr)
{
	uint32_t seq, uid, min_uid = 1, count = imap_client_count(client);
	struct imap_seqset_iter si, ui;

	if (!qr->has_match)
		return 1;
	imap_seqset_iter_init(&si);
	imap_seqset_iter_init(&ui);
	while (imap_seqset_iter_next(&qr->match_seqs, &si, &seq) &&
	       imap_seqset_iter_next(&qr->match_uids, &ui, &uid)) {
		if (seq > count || imap_client_msg(client, seq)->uid != uid ||
		    uid == UINT32_MAX)
			break;
		min_uid = uid + 1;
	}
	return min_uid;
}

/* The flag changes since qr->modseq of the known UIDs, as FETCH (UID
 * FLAGS MODSEQ), a slice until the output is full. */
static int select_qresync_fetch(struct imap_cmd *cmd)
{
	struct select_qresync *qr = cmd->ctx;
	struct imap_client *client = cmd->client;
	struct evbuffer *out = imap_client_output(client);
	uint32_t count = imap_client_count(client);

	for (; qr->next_seq <= count; qr->next_seq++) {
		const struct store_msg *msg = imap_client_msg(client,
							      qr->next_seq);

		if (msg->modseq <= qr->modseq ||
		    !imap_seqset_contains(&qr->known, msg->uid))
			continue;
		if (imap_client_output_full(client))
			return IMAP_CMD_AGAIN;	/* resumed on drain */
		evbuffer_add_printf(out, "* %u FETCH (UID %u FLAGS (",
				    qr->next_seq, msg->uid);
		imap_client_append_flags(client, out, msg);
		evbuffer_add_printf(out, ") MODSEQ (%llu))\r\n",
				    (unsigned long long)msg->modseq);
	}
	return select_done(cmd);
}

/* RFC 7162 3.2.5.1: after the usual responses, VANISHED (EARLIER) and
 * then FETCH for what changed since the client's modseq; nothing when
 * its UIDVALIDITY is not the mailbox's. */
static int select_qresync(struct imap_cmd *cmd)
{
	struct select_qresync *qr = cmd->ctx;
	struct imap_client *client = cmd->client;
	uint32_t uidnext = store_mailbox_uidnext(client->mb);

	if (qr->uidvalidity != store_mailbox_uidvalidity(client->mb))
		return select_done(cmd);
	if (!qr->has_known && uidnext > 1) {
		/* "1:<maxuid>"; an unused mailbox: the empty set */
		qr->known.ranges = xcalloc(1, sizeof(*qr->known.ranges));
		qr->known.ranges[0].first = 1;
		qr->known.ranges[0].last = uidnext - 1;
		qr->known.count = 1;
	}
	(void)imap_vanished_send_earlier(client, &qr->known,
					 qresync_min_uid(client, qr),
					 qr->modseq);
	qr->next_seq = 1;
	cmd->resume = select_qresync_fetch;
	return select_qresync_fetch(cmd);
}

int cmd_select(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	bool condstore, was_selected = client->mb != NULL;
	char *name;

	if (cmd->args_count < 1) {
		imap_cmd_bad(cmd, "Missing mailbox name");
		return IMAP_CMD_DONE;
	}
	if (select_parse_params(cmd, &condstore) < 0)
		return IMAP_CMD_DONE;
	/* RFC 3501 6.3.1: a failed SELECT leaves no mailbox selected. */
	imap_client_unselect(client);
	/* RFC 7162 3.2.11: [CLOSED] whenever a mailbox was selected, as we
	 * advertise CONDSTORE and QRESYNC. */
	if (was_selected)
		imap_client_untagged(client, "OK [CLOSED] Previous mailbox "
				     "closed.");
	if (mb_arg(cmd, &cmd->args[0], &name) < 0)
		return IMAP_CMD_DONE;
	if (select_open(cmd, name) < 0) {
		free(name);
		return IMAP_CMD_DONE;
	}
	if (condstore)
		client->enabled |= IMAP_ENABLED_CONDSTORE;
	select_send_status(client);
	if (cmd->ctx != NULL)
		return select_qresync(cmd);
	return select_done(cmd);
}

/* ---- CREATE / DELETE / RENAME ---- */

/* RFC 3501 6.3.3: "the server SHOULD create any superior hierarchical
 * names that are needed". Existing levels are fine; INBOX is skipped. */
static void create_parents(struct imap_client *client, const char *name)
{
	char *parent = imap_mailbox_name_parent(name);
	const char *error;

	if (parent == NULL)
		return;
	create_parents(client, parent);
	if (!imap_mailbox_name_is_inbox(parent) &&
	    store_mailbox_create(client->su, parent, &error) < 0 &&
	    errno != EEXIST)
		log_debug("imap create parent user=%s mailbox=%s: %s",
			  client->user, parent, error);
	free(parent);
}

/* RFC 6154 section 3 (CREATE-SPECIAL-USE): only the use the name already
 * has is accepted; uses are not stored. */
static int create_check_use(struct imap_cmd *cmd, const char *name)
{
	const struct imap_arg *list, *uses;
	size_t count, use_count;
	const char *use = imap_mailbox_special_use(name), *attr;

	if (!imap_arg_get_list(&cmd->args[1], &list, &count) || count != 2 ||
	    !imap_arg_atom_equals(&list[0], "USE") ||
	    !imap_arg_get_list(&list[1], &uses, &use_count)) {
		imap_cmd_bad(cmd, "Invalid CREATE parameters");
		return -1;
	}
	for (size_t i = 0; i < use_count; i++) {
		if (uses[i].type != IMAP_ARG_ATOM) {
			imap_cmd_bad(cmd, "Invalid USE attribute");
			return -1;
		}
		attr = uses[i].str;
		if (use == NULL || strcasecmp(attr, use) != 0) {
			imap_cmd_no(cmd, "[USEATTR] Special use not supported "
				    "for this name");
			return -1;
		}
	}
	return 0;
}

int cmd_create(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	const char *error;
	char *name;
	size_t len;

	if (cmd->args_count < 1 || cmd->args_count > 2) {
		imap_cmd_bad(cmd, "Invalid arguments");
		return IMAP_CMD_DONE;
	}
	if (mb_arg(cmd, &cmd->args[0], &name) < 0)
		return IMAP_CMD_DONE;
	/* RFC 3501 6.3.3: a trailing separator declares the intent to
	 * create names under it; the name itself is created without it. */
	len = strlen(name);
	if (len > 1 && name[len - 1] == IMAP_MAILBOX_SEP)
		name[len - 1] = '\0';
	if (cmd->args_count == 2 && create_check_use(cmd, name) < 0)
		goto out;
	if (imap_mailbox_name_is_inbox(name)) {
		imap_cmd_no(cmd, "[ALREADYEXISTS] INBOX always exists");
		goto out;
	}
	if ((error = store_mailbox_name_error(name)) != NULL) {
		imap_cmd_no(cmd, "[CANNOT] %s", error);
		goto out;
	}
	if (mb_check_nfc(cmd, name) < 0)
		goto out;
	create_parents(client, name);
	if (store_mailbox_create(client->su, name, &error) < 0)
		mb_store_error(cmd, "create", errno, error);
	else
		imap_cmd_ok(cmd, "CREATE completed");
out:
	free(name);
	return IMAP_CMD_DONE;
}

/* True when name is the selected mailbox or one of its ancestors. */
static bool is_selected_or_parent(struct imap_client *client,
				  const char *name)
{
	size_t len = strlen(name);
	const char *sel = client->mailbox_name;

	if (client->mb == NULL || sel == NULL)
		return false;
	return strncmp(sel, name, len) == 0 &&
		(sel[len] == '\0' || sel[len] == IMAP_MAILBOX_SEP);
}

/* RFC 2180 3.3/3.4: this session deletes or renames its own selected
 * mailbox. Its view would point at nothing, so it is closed. */
static void close_selected(struct imap_client *client)
{
	imap_client_unselect(client);
	imap_client_untagged(client, "OK [CLOSED] Selected mailbox closed.");
}

/* DELETE of a name the store lists only as a parent (no folder). */
static bool is_noselect_parent(struct imap_client *client, const char *name)
{
	return mb_list_flags(client, name) & STORE_LIST_NOSELECT;
}

int cmd_delete(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	const char *error;
	char *name;

	if (cmd->args_count != 1) {
		imap_cmd_bad(cmd, "Invalid arguments");
		return IMAP_CMD_DONE;
	}
	if (mb_arg(cmd, &cmd->args[0], &name) < 0)
		return IMAP_CMD_DONE;
	if (imap_mailbox_name_is_inbox(name)) {
		imap_cmd_no(cmd, "[CANNOT] INBOX can't be deleted");
		goto out;
	}
	if (client->mb != NULL && strcmp(client->mailbox_name, name) == 0)
		close_selected(client);
	if (store_mailbox_delete(client->su, name, &error) == 0) {
		imap_cmd_ok(cmd, "DELETE completed");
	} else if (errno == ENOENT && is_noselect_parent(client, name)) {
		/* RFC 3501 6.3.4: deleting a \Noselect name that has
		 * inferiors is an error; RFC 9051 7.1 names it. */
		imap_cmd_no(cmd, "[%s] Mailbox has children and is "
			    "\\Noselect", mb_is_rev2(client) ?
			    "HASCHILDREN" : "CANNOT");
	} else {
		mb_store_error(cmd, "delete", errno, error);
	}
out:
	free(name);
	return IMAP_CMD_DONE;
}

static int rename_check(struct imap_cmd *cmd, const char *old_name,
			const char *new_name)
{
	size_t len = strlen(old_name);
	const char *error;

	if (imap_mailbox_name_is_inbox(new_name) ||
	    strcmp(old_name, new_name) == 0) {
		imap_cmd_no(cmd, "[ALREADYEXISTS] Target mailbox exists");
		return -1;
	}
	if (!imap_mailbox_name_is_inbox(old_name) &&
	    strncmp(new_name, old_name, len) == 0 &&
	    new_name[len] == IMAP_MAILBOX_SEP) {
		imap_cmd_no(cmd, "[CANNOT] Can't move a mailbox under itself");
		return -1;
	}
	if ((error = store_mailbox_name_error(new_name)) != NULL) {
		imap_cmd_no(cmd, "[CANNOT] %s", error);
		return -1;
	}
	return mb_check_nfc(cmd, new_name);
}

int cmd_rename(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	char *old_name = NULL, *new_name = NULL;
	const char *error;
	size_t len;

	if (cmd->args_count != 2) {
		imap_cmd_bad(cmd, "Invalid arguments");
		return IMAP_CMD_DONE;
	}
	if (mb_arg(cmd, &cmd->args[0], &old_name) < 0 ||
	    mb_arg(cmd, &cmd->args[1], &new_name) < 0)
		goto out;
	len = strlen(new_name);
	if (len > 1 && new_name[len - 1] == IMAP_MAILBOX_SEP)
		new_name[len - 1] = '\0';
	if (rename_check(cmd, old_name, new_name) < 0)
		goto out;
	/* Renaming INBOX moves its messages (the selected INBOX then sees
	 * them expunged); other renames move the folder away. */
	if (!imap_mailbox_name_is_inbox(old_name) &&
	    is_selected_or_parent(client, old_name))
		close_selected(client);
	create_parents(client, new_name);
	if (store_mailbox_rename(client->su, old_name, new_name, &error) < 0)
		mb_store_error(cmd, "rename", errno, error);
	else
		imap_cmd_ok(cmd, "RENAME completed");
out:
	free(old_name);
	free(new_name);
	return IMAP_CMD_DONE;
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

int cmd_subscribe(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	bool subscribe = strcmp(cmd->name, "SUBSCRIBE") == 0;
	const char *error;
	char *name;

	if (cmd->args_count != 1) {
		imap_cmd_bad(cmd, "Invalid arguments");
		return IMAP_CMD_DONE;
	}
	if (mb_arg(cmd, &cmd->args[0], &name) < 0)
		return IMAP_CMD_DONE;
	/* RFC 3501 6.3.6: a nonexistent name may be subscribed. */
	if (store_subscriptions_set(client->su, name, subscribe, &error) < 0)
		mb_store_error(cmd, cmd->name, errno, error);
	else
		imap_cmd_ok(cmd, "%s completed", cmd->name);
	free(name);
	return IMAP_CMD_DONE;
}

/* ---- NAMESPACE (RFC 2342) ---- */

int cmd_namespace(struct imap_cmd *cmd)
{
	if (cmd->args_count != 0) {
		imap_cmd_bad(cmd, "NAMESPACE takes no arguments");
		return IMAP_CMD_DONE;
	}
	imap_client_untagged(cmd->client, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_cmd_ok(cmd, "NAMESPACE completed");
	return IMAP_CMD_DONE;
}

/* ---- STATUS ---- */

enum status_item {
	STATUS_MESSAGES = 1 << 0,
	STATUS_RECENT = 1 << 1,
	STATUS_UIDNEXT = 1 << 2,
	STATUS_UIDVALIDITY = 1 << 3,
	STATUS_UNSEEN = 1 << 4,
	STATUS_HIGHESTMODSEQ = 1 << 5,	/* RFC 7162 3.1.9 */
	STATUS_SIZE = 1 << 6,		/* RFC 8438 */
	STATUS_DELETED = 1 << 7,	/* RFC 9051 */
};

static const struct {
	const char *name;
	unsigned item;
} status_names[] = {
	{ "MESSAGES", STATUS_MESSAGES },
	{ "RECENT", STATUS_RECENT },
	{ "UIDNEXT", STATUS_UIDNEXT },
	{ "UIDVALIDITY", STATUS_UIDVALIDITY },
	{ "UNSEEN", STATUS_UNSEEN },
	{ "HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ },
	{ "SIZE", STATUS_SIZE },
	{ "DELETED", STATUS_DELETED },
};
#define STATUS_NAMES_COUNT (sizeof(status_names) / sizeof(status_names[0]))

struct status_vals {
	uint64_t v[STATUS_NAMES_COUNT];	/* indexed like status_names */
};

/* "(MESSAGES UNSEEN ...)": -1 for an unknown item or bad syntax.
 * RFC 9051 9 "status-att" has no RECENT (Appendix E item 12): after
 * ENABLE IMAP4rev2 it is unknown. */
static int status_parse_items(const struct imap_client *client,
			      const struct imap_arg *arg, unsigned *items_r)
{
	const struct imap_arg *list;
	size_t count, j;

	*items_r = 0;
	if (!imap_arg_get_list(arg, &list, &count) || count == 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		for (j = 0; j < STATUS_NAMES_COUNT; j++) {
			if (imap_arg_atom_equals(&list[i],
						 status_names[j].name))
				break;
		}
		if (j == STATUS_NAMES_COUNT ||
		    (status_names[j].item == STATUS_RECENT &&
		     mb_is_rev2(client)))
			return -1;
		*items_r |= status_names[j].item;
	}
	return 0;
}

static void status_count(struct imap_client *client, struct store_mailbox *mb,
			 bool is_selected, struct status_vals *sv)
{
	uint32_t count = store_mailbox_count(mb);

	memset(sv, 0, sizeof(*sv));
	sv->v[0] = count;
	sv->v[2] = store_mailbox_uidnext(mb);
	sv->v[3] = store_mailbox_uidvalidity(mb);
	sv->v[5] = store_mailbox_highestmodseq(mb);
	for (uint32_t i = 0; i < count; i++) {
		const struct store_msg *msg = store_mailbox_msg(mb, i);

		/* Another mailbox: the messages no session has claimed. */
		if (is_selected ? imap_client_is_recent(client, msg->uid) :
		    msg->uid >= store_mailbox_first_recent_uid(mb))
			sv->v[1]++;
		if ((msg->flags & STORE_FLAG_SEEN) == 0)
			sv->v[4]++;
		sv->v[6] += msg->vsize;
		if ((msg->flags & STORE_FLAG_DELETED) != 0)
			sv->v[7]++;
	}
}

/* Counts for a store name; the selected mailbox answers from its view
 * (RFC 9051 6.3.11 allows STATUS on it). Returns 0, or -1 with errno. */
static int status_get(struct imap_client *client, const char *name,
		      struct status_vals *sv, const char **error_r)
{
	struct store_mailbox *mb;

	if (client->mb != NULL && strcmp(client->mailbox_name, name) == 0) {
		status_count(client, client->mb, true, sv);
		return 0;
	}
	/* store_mailbox_open syncs the index with the Maildir. */
	if (store_mailbox_open_flags(client->su, name, STORE_OPEN_NO_NAMES,
				     &mb, error_r) < 0)
		return -1;
	status_count(client, mb, false, sv);
	store_mailbox_close(&mb);
	return 0;
}

static void status_write(struct imap_client *client, const char *name,
			 unsigned items, const struct status_vals *sv)
{
	struct evbuffer *out = imap_client_output(client);
	bool first = true;

	evbuffer_add(out, "* STATUS ", 9);
	(void)imap_mailbox_name_append(out, name,
				       imap_client_quote_flags(client));
	evbuffer_add(out, " (", 2);
	for (size_t i = 0; i < STATUS_NAMES_COUNT; i++) {
		if ((items & status_names[i].item) == 0)
			continue;
		evbuffer_add_printf(out, "%s%s %llu", first ? "" : " ",
				    status_names[i].name,
				    (unsigned long long)sv->v[i]);
		first = false;
	}
	evbuffer_add(out, ")\r\n", 3);
}

int cmd_status(struct imap_cmd *cmd)
{
	struct imap_client *client = cmd->client;
	struct status_vals sv;
	const char *error;
	unsigned items;
	char *name;

	if (cmd->args_count != 2 ||
	    status_parse_items(client, &cmd->args[1], &items) < 0) {
		imap_cmd_bad(cmd, "Invalid STATUS arguments");
		return IMAP_CMD_DONE;
	}
	if (mb_arg(cmd, &cmd->args[0], &name) < 0)
		return IMAP_CMD_DONE;
	/* RFC 7162 3.1: STATUS (HIGHESTMODSEQ) enables CONDSTORE. */
	if (items & STATUS_HIGHESTMODSEQ)
		client->enabled |= IMAP_ENABLED_CONDSTORE;
	if (status_get(client, name, &sv, &error) < 0) {
		mb_store_error(cmd, "status", errno, error);
	} else {
		status_write(client, name, items, &sv);
		imap_cmd_ok(cmd, "STATUS completed");
	}
	free(name);
	return IMAP_CMD_DONE;
}

/* ---- LIST / LSUB ---- */

enum list_sel {
	LIST_SEL_SUBSCRIBED = 1 << 0,
	LIST_SEL_REMOTE = 1 << 1,
	LIST_SEL_RECURSIVE = 1 << 2,
	LIST_SEL_SPECIAL_USE = 1 << 3,
};

enum list_ret {
	LIST_RET_SUBSCRIBED = 1 << 0,
	LIST_RET_CHILDREN = 1 << 1,
	LIST_RET_SPECIAL_USE = 1 << 2,
	LIST_RET_STATUS = 1 << 3,
};

/* A name that exists, is subscribed, or is a parent of a subscribed
 * name. */
struct list_node {
	char *name;		/* store spelling */
	char *utf8;		/* NULL: not valid mUTF-7, never listed */
	unsigned store_flags;	/* enum store_list_flags, when in_store */
	bool in_store;		/* listed by store_mailbox_list */
	bool is_subscribed;
	bool is_matched;	/* matches one of the patterns */
};

struct list_ctx {
	struct imap_cmd *cmd;
	struct list_node *nodes;	/* sorted by strcmp of name */
	size_t count, cap;
	char **patterns;		/* canonical, UTF-8 */
	size_t pattern_count;
	unsigned sel, ret;		/* enum list_sel, enum list_ret */
	unsigned status_items;		/* enum status_item */
	bool is_lsub, is_extended;
};

static void list_add(struct list_ctx *ctx, const char *name, unsigned flags,
		     bool in_store, bool is_subscribed)
{
	struct list_node *node;

	if (ctx->count == ctx->cap) {
		ctx->cap = ctx->cap == 0 ? 32 : ctx->cap * 2;
		ctx->nodes = xreallocarray(ctx->nodes, ctx->cap,
					   sizeof(*ctx->nodes));
	}
	node = &ctx->nodes[ctx->count++];
	memset(node, 0, sizeof(*node));
	node->name = xstrdup(name);
	node->store_flags = flags;
	node->in_store = in_store;
	node->is_subscribed = is_subscribed;
}

static void list_store_cb(const char *name, unsigned flags, void *context)
{
	list_add(context, name, flags, true, false);
}

static int list_node_cmp(const void *a, const void *b)
{
	const struct list_node *na = a, *nb = b;

	return strcmp(na->name, nb->name);
}

/* Sorts and merges duplicate names. */
static void list_sort(struct list_ctx *ctx)
{
	size_t w = 0;

	if (ctx->count == 0)
		return;
	qsort(ctx->nodes, ctx->count, sizeof(*ctx->nodes), list_node_cmp);
	for (size_t r = 1; r < ctx->count; r++) {
		struct list_node *prev = &ctx->nodes[w], *cur = &ctx->nodes[r];

		if (strcmp(prev->name, cur->name) != 0) {
			ctx->nodes[++w] = *cur;
			continue;
		}
		if (cur->in_store) {
			prev->in_store = true;
			prev->store_flags = cur->store_flags;
		}
		prev->is_subscribed |= cur->is_subscribed;
		free(cur->name);
	}
	ctx->count = w + 1;
}

static int list_add_subscriptions(struct list_ctx *ctx, const char **error_r)
{
	char **subs;
	size_t count;

	if (store_subscriptions_get(ctx->cmd->client->su, &subs, &count,
				    error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		char *parent = imap_mailbox_name_parent(subs[i]), *next;

		list_add(ctx, subs[i], 0, false, true);
		/* Parents can be reported as \Noselect (LSUB) or with
		 * CHILDINFO (RECURSIVEMATCH). */
		for (; parent != NULL; parent = next) {
			next = imap_mailbox_name_parent(parent);
			list_add(ctx, parent, 0, false, false);
			free(parent);
		}
	}
	store_subscriptions_free(&subs);
	return 0;
}

static void list_match(struct list_ctx *ctx)
{
	for (size_t i = 0; i < ctx->count; i++) {
		struct list_node *node = &ctx->nodes[i];

		if (imap_mailbox_name_to_utf8(node->name, &node->utf8) < 0) {
			node->utf8 = NULL;
			continue;
		}
		for (size_t p = 0; p < ctx->pattern_count; p++) {
			if (imap_mailbox_pattern_match(ctx->patterns[p],
						       node->utf8)) {
				node->is_matched = true;
				break;
			}
		}
	}
}

/* True when node has a subscribed descendant that no pattern matches
 * (RFC 5258 3.5 CHILDINFO; RFC 3501 6.3.9 LSUB with '%'). Descendants
 * "name/..." are contiguous in strcmp order. */
static bool list_has_unmatched_sub_child(const struct list_ctx *ctx,
					 const struct list_node *node)
{
	size_t len = strlen(node->name);
	size_t lo = (size_t)(node - ctx->nodes) + 1, hi = ctx->count;
	char *prefix = xasprintf("%s/", node->name);
	bool found = false;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ctx->nodes[mid].name, prefix) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ctx->count && !found; lo++) {
		const struct list_node *c = &ctx->nodes[lo];

		if (strncmp(c->name, prefix, len + 1) != 0)
			break;
		found = c->is_subscribed && !c->is_matched && c->utf8 != NULL;
	}
	free(prefix);
	return found;
}

static void list_write_attrs(struct list_ctx *ctx,
			     const struct list_node *node, struct evbuffer *out)
{
	const char *use = imap_mailbox_special_use(node->name);
	bool is_noselect = (node->store_flags & STORE_LIST_NOSELECT) != 0;
	const char *sp = "";

	if (!node->in_store) {
		evbuffer_add_printf(out, "\\NonExistent");
		sp = " ";
	} else {
		if (is_noselect)
			evbuffer_add_printf(out, "\\Noselect ");
		/* RFC 3348 / RFC 5258 4: always computed. */
		evbuffer_add_printf(out, "%s", (node->store_flags &
					       STORE_LIST_HAS_CHILDREN) ?
				    "\\HasChildren" : "\\HasNoChildren");
		sp = " ";
	}
	if (node->is_subscribed && ((ctx->sel & LIST_SEL_SUBSCRIBED) ||
				    (ctx->ret & LIST_RET_SUBSCRIBED))) {
		evbuffer_add_printf(out, "%s\\Subscribed", sp);
		sp = " ";
	}
	/* RFC 6154 2: may be sent even without RETURN (SPECIAL-USE). */
	if (use != NULL && node->in_store && !is_noselect)
		evbuffer_add_printf(out, "%s%s", sp, use);
}

static bool list_is_selectable(const struct list_node *node)
{
	return node->in_store &&
		(node->store_flags & STORE_LIST_NOSELECT) == 0;
}

static void list_emit_status(struct list_ctx *ctx,
			     const struct list_node *node)
{
	struct imap_client *client = ctx->cmd->client;
	struct status_vals sv;
	const char *error;

	/* RFC 5819 section 2: no STATUS for \Noselect / \NonExistent; a
	 * failure just leaves the STATUS out. */
	if (!list_is_selectable(node))
		return;
	if (status_get(client, node->name, &sv, &error) < 0) {
		log_debug("imap list-status user=%s mailbox=%s: %s",
			  client->user, node->name, error);
		return;
	}
	status_write(client, node->name, ctx->status_items, &sv);
}

/* RFC 3501 6.3.9: LSUB shows subscribed names; a parent whose
 * subscribed children don't match is shown \Noselect. */
static void list_emit_lsub(struct list_ctx *ctx, const struct list_node *node,
			   struct evbuffer *out)
{
	bool is_noselect = !node->is_subscribed || !list_is_selectable(node);

	if (!node->is_subscribed && !list_has_unmatched_sub_child(ctx, node))
		return;
	evbuffer_add_printf(out, "* LSUB (%s) \"/\" ", is_noselect ?
			    "\\Noselect" : "");
	imap_append_mailbox(out, node->utf8, strlen(node->utf8),
			    imap_client_quote_flags(ctx->cmd->client));
	evbuffer_add(out, "\r\n", 2);
}

static void list_emit(struct list_ctx *ctx, const struct list_node *node)
{
	struct evbuffer *out = imap_client_output(ctx->cmd->client);
	bool is_selected, has_childinfo = false;

	if (node->utf8 == NULL || !node->is_matched)
		return;
	if (ctx->is_lsub) {
		list_emit_lsub(ctx, node, out);
		return;
	}
	is_selected = (ctx->sel & LIST_SEL_SUBSCRIBED) ? node->is_subscribed :
		node->in_store;
	if ((ctx->sel & LIST_SEL_SPECIAL_USE) &&
	    (!list_is_selectable(node) ||
	     imap_mailbox_special_use(node->name) == NULL))
		is_selected = false;
	/* RFC 5258 3.1 RECURSIVEMATCH (special-use folders have no
	 * children, so only SUBSCRIBED can produce CHILDINFO). */
	if ((ctx->sel & LIST_SEL_RECURSIVE) &&
	    (ctx->sel & LIST_SEL_SUBSCRIBED))
		has_childinfo = list_has_unmatched_sub_child(ctx, node);
	if (!is_selected && !has_childinfo)
		return;
	evbuffer_add(out, "* LIST (", 8);
	list_write_attrs(ctx, node, out);
	evbuffer_add(out, ") \"/\" ", 6);
	imap_append_mailbox(out, node->utf8, strlen(node->utf8),
			    imap_client_quote_flags(ctx->cmd->client));
	if (has_childinfo)
		evbuffer_add_printf(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	evbuffer_add(out, "\r\n", 2);
	if ((ctx->ret & LIST_RET_STATUS) && is_selected)
		list_emit_status(ctx, node);
}

static int list_parse_sel(struct list_ctx *ctx, const struct imap_arg *arg)
{
	static const struct { const char *name; unsigned bit; } opts[] = {
		{ "SUBSCRIBED", LIST_SEL_SUBSCRIBED },
		{ "REMOTE", LIST_SEL_REMOTE },
		{ "RECURSIVEMATCH", LIST_SEL_RECURSIVE },
		{ "SPECIAL-USE", LIST_SEL_SPECIAL_USE },
	};
	const struct imap_arg *list;
	size_t count, j;

	(void)imap_arg_get_list(arg, &list, &count);
	for (size_t i = 0; i < count; i++) {
		for (j = 0; j < sizeof(opts) / sizeof(opts[0]); j++) {
			if (imap_arg_atom_equals(&list[i], opts[j].name))
				break;
		}
		if (j == sizeof(opts) / sizeof(opts[0]))
			return -1;
		ctx->sel |= opts[j].bit;
	}
	/* RFC 5258 3.1: RECURSIVEMATCH alone (or with REMOTE) is BAD. */
	if ((ctx->sel & LIST_SEL_RECURSIVE) &&
	    !(ctx->sel & (LIST_SEL_SUBSCRIBED | LIST_SEL_SPECIAL_USE)))
		return -1;
	/* RFC 6154 2: the selection option implies the return option. */
	if (ctx->sel & LIST_SEL_SPECIAL_USE)
		ctx->ret |= LIST_RET_SPECIAL_USE;
	return 0;
}

static int list_parse_ret(struct list_ctx *ctx, const struct imap_arg *arg)
{
	const struct imap_arg *list;
	size_t count;

	if (!imap_arg_get_list(arg, &list, &count))
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (imap_arg_atom_equals(&list[i], "SUBSCRIBED"))
			ctx->ret |= LIST_RET_SUBSCRIBED;
		else if (imap_arg_atom_equals(&list[i], "CHILDREN"))
			ctx->ret |= LIST_RET_CHILDREN;
		else if (imap_arg_atom_equals(&list[i], "SPECIAL-USE"))
			ctx->ret |= LIST_RET_SPECIAL_USE;
		else if (imap_arg_atom_equals(&list[i], "STATUS") &&
			 i + 1 < count &&
			 status_parse_items(ctx->cmd->client, &list[i + 1],
					    &ctx->status_items) == 0) {
			ctx->ret |= LIST_RET_STATUS;
			i++;
		} else {
			return -1;
		}
	}
	return 0;
}

static int list_add_pattern(struct list_ctx *ctx, const char *ref,
			    size_t ref_len, const struct imap_arg *arg,
			    const char **error_r)
{
	const char *pat;
	size_t len;
	char *canon;

	if (!imap_arg_get_list_mailbox(arg, &pat, &len)) {
		*error_r = "Invalid mailbox pattern";
		return -1;
	}
	if (imap_mailbox_pattern_make(ref, ref_len, pat, len,
				      mb_is_utf8(ctx->cmd->client),
				      &canon, error_r) < 0)
		return -1;
	ctx->patterns = xreallocarray(ctx->patterns, ctx->pattern_count + 1,
				      sizeof(*ctx->patterns));
	ctx->patterns[ctx->pattern_count++] = canon;
	return 0;
}

/* [(sel-opts)] ref (pattern | (patterns)) [RETURN (ret-opts)]; LSUB
 * takes ref pattern only. Sets *empty_r for the single "" pattern. */
static int list_parse(struct list_ctx *ctx, const char **ref_r,
		      size_t *ref_len_r, bool *empty_r, const char **error_r)
{
	const struct imap_arg *args = ctx->cmd->args, *pats;
	size_t n = ctx->cmd->args_count, i = 0, pat_count;

	*error_r = "Invalid LIST arguments";
	if (!ctx->is_lsub && n > 0 && args[0].type == IMAP_ARG_LIST) {
		ctx->is_extended = true;
		if (list_parse_sel(ctx, &args[i++]) < 0)
			return -1;
	}
	if (n - i < 2 || !imap_arg_get_list_mailbox(&args[i], ref_r,
						    ref_len_r))
		return -1;
	*empty_r = args[i + 1].type != IMAP_ARG_LIST &&
		args[i + 1].type != IMAP_ARG_NIL && args[i + 1].len == 0;
	if (imap_arg_get_list(&args[i + 1], &pats, &pat_count)) {
		if (ctx->is_lsub || pat_count == 0)
			return -1;
		ctx->is_extended = true;
	} else {
		pats = &args[i + 1];
		pat_count = 1;
	}
	for (size_t p = 0; p < pat_count; p++) {
		if (list_add_pattern(ctx, *ref_r, *ref_len_r, &pats[p],
				     error_r) < 0)
			return -1;
	}
	i += 2;
	if (i < n && !ctx->is_lsub && i + 2 == n &&
	    imap_arg_atom_equals(&args[i], "RETURN")) {
		ctx->is_extended = true;
		if (list_parse_ret(ctx, &args[i + 1]) < 0)
			return -1;
		i += 2;
	}
	return i == n ? 0 : -1;
}

static void list_ctx_free(struct list_ctx *ctx)
{
	for (size_t i = 0; i < ctx->count; i++) {
		free(ctx->nodes[i].name);
		free(ctx->nodes[i].utf8);
	}
	free(ctx->nodes);
	for (size_t i = 0; i < ctx->pattern_count; i++)
		free(ctx->patterns[i]);
	free(ctx->patterns);
}

/* RFC 3501 6.3.8: LIST ref "" gives the delimiter and the root name. */
static void list_reply_delimiter(struct list_ctx *ctx, const char *ref,
				 size_t ref_len)
{
	struct imap_client *client = ctx->cmd->client;
	struct evbuffer *out = imap_client_output(client);
	char *root = imap_mailbox_ref_root(ref, ref_len);

	evbuffer_add_printf(out, "* %s (\\Noselect) \"/\" ", ctx->is_lsub ?
			    "LSUB" : "LIST");
	imap_append_string(out, root, strlen(root),
			   imap_client_quote_flags(client));
	evbuffer_add(out, "\r\n", 2);
	free(root);
}

static int list_collect(struct list_ctx *ctx, const char **error_r)
{
	struct store_user *su = ctx->cmd->client->su;

	if (store_mailbox_list(su, list_store_cb, ctx, error_r) < 0)
		return -1;
	if ((ctx->is_lsub || (ctx->sel & LIST_SEL_SUBSCRIBED) ||
	     (ctx->ret & LIST_RET_SUBSCRIBED)) &&
	    list_add_subscriptions(ctx, error_r) < 0)
		return -1;
	list_sort(ctx);
	list_match(ctx);
	return 0;
}

int cmd_list(struct imap_cmd *cmd)
{
	struct list_ctx ctx = { .cmd = cmd };
	const char *ref, *error;
	size_t ref_len, inbox = SIZE_MAX;
	bool is_empty;

	ctx.is_lsub = strcmp(cmd->name, "LSUB") == 0;
	if (list_parse(&ctx, &ref, &ref_len, &is_empty, &error) < 0) {
		imap_cmd_bad(cmd, "%s", error);
		goto out;
	}
	if (is_empty && ctx.pattern_count == 1) {
		list_reply_delimiter(&ctx, ref, ref_len);
		imap_cmd_ok(cmd, "%s completed", cmd->name);
		goto out;
	}
	if (list_collect(&ctx, &error) < 0) {
		mb_store_error(cmd, "list", errno, error);
		goto out;
	}
	/* INBOX first (the store lists it first; sorting moved it). */
	for (size_t i = 0; i < ctx.count; i++) {
		if (strcmp(ctx.nodes[i].name, "INBOX") == 0) {
			inbox = i;
			list_emit(&ctx, &ctx.nodes[i]);
		}
	}
	for (size_t i = 0; i < ctx.count; i++) {
		if (i != inbox)
			list_emit(&ctx, &ctx.nodes[i]);
	}
	imap_cmd_ok(cmd, "%s completed", cmd->name);
out:
	list_ctx_free(&ctx);
	return IMAP_CMD_DONE;
}

static void list_flags_cb(const char *name, unsigned flags, void *context)
{
	struct list_node *node = context;

	if (strcmp(name, node->name) == 0) {
		node->in_store = true;
		node->store_flags = flags;
	}
}

/* The store's list flags of one name, 0 if it isn't listed. */
static unsigned mb_list_flags(struct imap_client *client,
			      const char *name)
{
	struct list_node node = { .name = (char *)name };
	const char *error;

	if (store_mailbox_list(client->su, list_flags_cb, &node, &error) < 0)
		return 0;
	return node.store_flags;
}
