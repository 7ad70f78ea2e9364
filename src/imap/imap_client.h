/* imap_client.h: an IMAP session (RFC 3501 / RFC 9051) and what command
 * handlers (cmd_*.c) may use. The session owns the parser, the login state,
 * the selected mailbox view (sequence numbers = view index + 1) and the
 * untagged updates; handlers interpret arguments and answer.
 *
 * One command runs at a time; pipelined commands wait in the input buffer.
 * A handler returns IMAP_CMD_DONE after sending its tagged reply, or
 * IMAP_CMD_AGAIN after setting cmd->resume: the session then calls resume
 * when the output has drained (long FETCH, SEARCH in slices) or when
 * imap_cmd_wake() is called (an auth verdict, IDLE input). Handlers never
 * block the loop for long: work in slices and return AGAIN.
 *
 * Memory: struct imap_cmd and its parsed arguments live until the command
 * finishes; handler state goes in cmd->ctx (freed with cmd->ctx_free). */
#ifndef HERON_IMAP_CLIENT_H
#define HERON_IMAP_CLIENT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parser.h"
#include "net/conn.h"
#include "store/store.h"

struct evbuffer;
struct imap_cmd;
struct imap_watcher;

extern const struct proto_ops imap_proto_ops;

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* ENABLEd extensions (RFC 5161). */
enum imap_enabled {
	IMAP_ENABLED_CONDSTORE = 1 << 0,
	IMAP_ENABLED_QRESYNC = 1 << 1,
	IMAP_ENABLED_UTF8 = 1 << 2,
	/* RFC 9051 (ENABLE IMAP4rev2, Appendix A): UTF-8 mailbox names
	 * and quoted strings, no \Recent / RECENT, ESEARCH for SEARCH. */
	IMAP_ENABLED_IMAP4REV2 = 1 << 3,
};

enum imap_cmd_result {
	IMAP_CMD_DONE,
	IMAP_CMD_AGAIN,
};

/* Flags of a command table entry. */
enum imap_cmd_flags {
	IMAP_CMD_NOT_AUTH = 1 << 0,	/* allowed before login */
	IMAP_CMD_AUTH = 1 << 1,		/* allowed when logged in */
	IMAP_CMD_SELECTED = 1 << 2,	/* needs a selected mailbox */
	/* RFC 3501 section 7.4.1: no EXPUNGE responses while answering
	 * FETCH, STORE, SEARCH (the UID variants may send them). */
	IMAP_CMD_NO_EXPUNGES = 1 << 3,
	IMAP_CMD_UID_OK = 1 << 4,	/* has a UID variant */
};

struct imap_cmd_def {
	const char *name;
	int (*func)(struct imap_cmd *cmd);
	unsigned flags;			/* enum imap_cmd_flags */
};

struct imap_recent_range {
	uint32_t first, last;
};

struct imap_client {
	struct conn *conn;
	const struct settings *set;
	/* NULL while no command is being parsed (saves ~500 bytes per
	 * idle session): imap_client_input creates it. */
	struct imap_parser *parser;
	enum imap_state state;
	unsigned enabled;		/* enum imap_enabled */
	char *user;			/* after login */
	struct store_user *su;
	struct imap_cmd *cmd;		/* the running command, or NULL */
	struct evbuffer *push_out;	/* imap_client_sync_push's output */
	struct auth_request *auth_req;
	unsigned bad_count;		/* client errors, for disconnect */
	unsigned auth_failures;

	/* The selected mailbox (IMAP_STATE_SELECTED). */
	struct store_mailbox *mb;
	char *mailbox_name;
	bool is_readonly;		/* EXAMINE */
	int watch_id;			/* store_watch_add, -1 if none */
	struct imap_watcher *watcher;	/* our entry in the watch routing */
	bool mailbox_changed;		/* watch fired since the last sync */
	/* The process synced the folder's index since that event: the
	 * next sync may trust the index without reading directories. */
	bool index_is_fresh;
	uint32_t exists_sent;		/* last EXISTS reported */
	uint32_t recent_sent;
	/* UIDs this session holds \Recent for (RFC 3501 2.3.2). */
	struct imap_recent_range *recent;
	size_t recent_count;
	/* SEARCHRES (RFC 5182): the saved result, ascending, NULL if
	 * none. */
	uint32_t *saved_uids;
	size_t saved_count;
	bool is_idling;
	/* APPEND being received (cmd_append.c owns it), or NULL. */
	struct imap_append *append;
	struct event *wake_event;	/* imap_cmd_wake */
	struct event *flush_event;	/* background Maildir renames */
};

struct imap_cmd {
	struct imap_client *client;
	struct imap_command *parsed;
	const char *tag;
	const char *name;		/* "FETCH" also for "UID FETCH" */
	const struct imap_arg *args;	/* after the name (and after UID) */
	size_t args_count;
	bool uid;			/* UID prefix */
	const struct imap_cmd_def *def;
	int (*resume)(struct imap_cmd *cmd);
	/* With resume set: call it when input arrives (IDLE's DONE,
	 * AUTHENTICATE responses) rather than when output drains. */
	bool wants_input;
	void *ctx;
	void (*ctx_free)(void *ctx);
	char *tag_owned;		/* after imap_cmd_drop_args */
};

/* ---- replies (the tagged ones end the command) ---- */
void imap_cmd_ok(struct imap_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_cmd_no(struct imap_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Counts a client error (too many: the session is closed). */
void imap_cmd_bad(struct imap_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "* " + text + CRLF */
void imap_client_untagged(struct imap_client *client, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
struct evbuffer *imap_client_output(struct imap_client *client);
/* True while the client's output queue is over the high-water mark: a
 * long reply should stop and return IMAP_CMD_AGAIN. */
bool imap_client_output_full(struct imap_client *client);
/* Frees the parsed command (args, args_count become empty) but keeps the
 * tag; name becomes the table's. For a command that waits long (IDLE). */
void imap_cmd_drop_args(struct imap_cmd *cmd);
/* Calls cmd->resume soon (from the event loop). */
void imap_cmd_wake(struct imap_cmd *cmd);
/* Quote flags for imap_append_*: UTF-8 when enabled. */
unsigned imap_client_quote_flags(const struct imap_client *client);
/* Mailbox names are UTF-8, not modified UTF-7: after ENABLE UTF8=ACCEPT
 * (RFC 6855 3) or ENABLE IMAP4rev2 (RFC 9051 5.1, Appendix A). */
bool imap_client_utf8_names(const struct imap_client *client);

/* ---- the selected mailbox ---- */
uint32_t imap_client_count(const struct imap_client *client);
/* seq 1..count */
const struct store_msg *imap_client_msg(const struct imap_client *client,
					uint32_t seq);
/* UID -> seq (0 if not in the view); binary search. */
uint32_t imap_client_uid_to_seq(const struct imap_client *client,
				uint32_t uid);
/* How many messages of the view have a UID below uid (the view is
 * sorted by UID): the 0-based index of the first with a UID >= uid. */
uint32_t imap_client_uids_below(const struct imap_client *client,
				uint32_t uid);
bool imap_client_is_recent(const struct imap_client *client, uint32_t uid);
/* Read-write sessions take \Recent for the view's messages that no
 * session has claimed yet (RFC 3501 2.3.2); EXAMINE takes none. */
void imap_client_claim_recent(struct imap_client *client);
/* Messages of the view this session holds \Recent for. */
uint32_t imap_client_count_recent(const struct imap_client *client);
/* Parses a sequence set argument (also "$", RFC 5182) against the view:
 * with is_uid the numbers are UIDs. Fills *seqs_r with the matching
 * sequence numbers, ascending, no duplicates (caller frees). Returns 0, or
 * -1 with *error_r for a syntax error. Numbers past the end are not an
 * error for UID sets (RFC 3501 6.4.8), and give -1 for sequence sets. */
int imap_client_seqset(struct imap_client *client, const struct imap_arg *arg,
		       bool is_uid, uint32_t **seqs_r, size_t *count_r,
		       const char **error_r);
/* Brings the view up to date and sends EXPUNGE/EXISTS/RECENT/FETCH FLAGS
 * (expunges only when allow_expunges). Called by the session after each
 * command; handlers call it only for NOOP-like semantics. */
void imap_client_sync(struct imap_client *client, bool allow_expunges);
/* imap_client_sync(client, true) for an idling session: its updates are
 * sent at once. */
void imap_client_sync_push(struct imap_client *client);
/* Writes "FLAGS (...)" content for a message: system flags, keywords,
 * \Recent. */
void imap_client_append_flags(struct imap_client *client,
			      struct evbuffer *out,
			      const struct store_msg *msg);
/* Parses a flag list (or a single flag) for STORE/APPEND: system flags
 * (\Seen \Answered \Flagged \Deleted \Draft; \Recent refused) and
 * keywords (created in the selected or given mailbox when create). */
int imap_client_parse_flags(struct imap_client *client,
			    struct store_mailbox *mb,
			    const struct imap_arg *arg, bool create,
			    uint32_t *flags_r, uint64_t *keywords_r,
			    const char **error_r);

/* Sets client->su for a logged-in user: sessions of one user in a worker
 * share one store_user (cmd_auth.c). Returns -1 with *error_r. */
int imap_client_user_open(struct imap_client *client, const char *user,
			  const char **error_r);
/* Drops client->su (the last session of the user closes it). */
void imap_client_user_close(struct imap_client *client);
/* The parser's limits follow the login state: call after login. */
void imap_client_parser_update(struct imap_client *client);
/* Frees the parser if no command is partly parsed (a session that waits,
 * e.g. in IDLE, keeps none); the next input creates it again. */
void imap_client_parser_release(struct imap_client *client);

/* Closes the selected mailbox (no expunge). */
void imap_client_unselect(struct imap_client *client);
/* After store_watch_add succeeded for the selected mailbox (watch_id set):
 * routes its change events to this session (IDLE). */
void imap_client_watch_start(struct imap_client *client);

/* ---- APPEND streaming (cmd_append.c) ----
 * The session calls these while an APPEND command is still being parsed:
 * its message literals are streamed into Maildir tmp files, never held in
 * memory. partial is the command parsed so far (tag, name "APPEND",
 * mailbox, optional flags/date for this message). start returns 0 to
 * stream the literal (the session then sends "+ OK" for a synchronizing
 * one), or -1 after it has answered the command itself (e.g. NO
 * [TRYCREATE], NO [TOOBIG]); the session then aborts the parse. data gets
 * the bytes (is_last on the last chunk); -1 = write failed (the session
 * aborts the parse; the error is reported when the command completes).
 * abort drops everything (connection closed, parse error). After the
 * command parses completely cmd_append() commits all messages (MULTIAPPEND,
 * RFC 3502: all or nothing) and replies. */
int imap_append_literal_start(struct imap_client *client,
			      const struct imap_command *partial,
			      const struct imap_literal_info *info);
int imap_append_literal_data(struct imap_client *client,
			     const unsigned char *data, size_t size,
			     bool is_last);
void imap_append_abort(struct imap_client *client);

/* ---- command handlers (cmd_*.c), listed in imap_commands.c ---- */
const struct imap_cmd_def *imap_command_find(const char *name);

int cmd_capability(struct imap_cmd *cmd);
int cmd_noop(struct imap_cmd *cmd);
int cmd_logout(struct imap_cmd *cmd);
int cmd_starttls(struct imap_cmd *cmd);
int cmd_login(struct imap_cmd *cmd);
int cmd_authenticate(struct imap_cmd *cmd);
int cmd_id(struct imap_cmd *cmd);
int cmd_enable(struct imap_cmd *cmd);
int cmd_namespace(struct imap_cmd *cmd);
int cmd_select(struct imap_cmd *cmd);	/* also EXAMINE */
int cmd_create(struct imap_cmd *cmd);
int cmd_delete(struct imap_cmd *cmd);
int cmd_rename(struct imap_cmd *cmd);
int cmd_subscribe(struct imap_cmd *cmd);	/* also UNSUBSCRIBE */
int cmd_list(struct imap_cmd *cmd);	/* also LSUB */
int cmd_status(struct imap_cmd *cmd);
int cmd_check(struct imap_cmd *cmd);
int cmd_close(struct imap_cmd *cmd);	/* also UNSELECT */
int cmd_expunge(struct imap_cmd *cmd);	/* also UID EXPUNGE */
int cmd_idle(struct imap_cmd *cmd);
int cmd_append(struct imap_cmd *cmd);
int cmd_fetch(struct imap_cmd *cmd);
int cmd_store(struct imap_cmd *cmd);
int cmd_copy(struct imap_cmd *cmd);	/* also MOVE */
int cmd_search(struct imap_cmd *cmd);
int cmd_compress(struct imap_cmd *cmd);	/* cmd_compress.c, RFC 4978 */
int cmd_sort(struct imap_cmd *cmd);	/* cmd_sort.c, RFC 5256, 5267 */
int cmd_thread(struct imap_cmd *cmd);

#endif
