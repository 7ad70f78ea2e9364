/* pop3_private.h: internals shared by the files of src/pop3/.
 *
 * Pure parts (no I/O, unit-tested and fuzzed, pop3_parse.c):
 *   - pop3_parse_line: one command line -> keyword + arguments (views).
 *   - pop3_xform: a message file -> the body of a multi-line reply
 *     (bare LF -> CRLF, dot-stuffing, TOP line limit), fed in chunks; the
 *     output never depends on where the chunks split.
 *   - pop3_uidl: a Maildir basename -> a valid RFC 1939 unique-id.
 * Session parts: pop3_client.c (connection, input loop, dispatch, login),
 * pop3_commands.c (command table, TRANSACTION commands, multi-line
 * replies), pop3_auth.c (USER/PASS, APOP, AUTH PLAIN/LOGIN). */
#ifndef HERON_POP3_PRIVATE_H
#define HERON_POP3_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"

/* ---- parser ---- */

/* RFC 2449 section 4: keywords are 3 or 4 characters. */
#define POP3_KEYWORD_MIN_LEN 3
#define POP3_KEYWORD_MAX_LEN 4
/* Arguments kept per command (TOP, APOP and AUTH take two). */
#define POP3_MAX_ARGS 2
/* RFC 2449 section 4 allows command lines of 255 octets (RFC 1939 had
 * 40-character arguments). We accept any argument that fits a 255-octet
 * line; AUTH initial responses and PASS may use the whole line limit. */
#define POP3_MAX_ARG_LEN 255
/* RFC 2449 section 4: we must accept at least 255-octet command lines. */
#define POP3_MIN_LINE_LEN 255

struct pop3_token {
	const char *data;	/* points into the line; not NUL-ended */
	size_t len;
};

struct pop3_cmd {
	char name[POP3_KEYWORD_MAX_LEN + 1];	/* upper-cased, NUL-ended */
	unsigned argc;		/* arguments seen; may exceed POP3_MAX_ARGS,
				   only the first POP3_MAX_ARGS are kept */
	size_t max_arg_len;	/* longest argument seen */
	struct pop3_token args[POP3_MAX_ARGS];
	/* Everything after the keyword and one space, up to the end of the
	 * line (PASS: RFC 1939 lets passwords contain spaces). NUL-ended
	 * because it runs to the end of the line. */
	struct pop3_token rest;
};

/* Parses one command line (without CRLF). Arguments are separated by
 * spaces; runs of spaces and trailing spaces are tolerated. Control
 * bytes (including NUL, CR, TAB and DEL) are refused. Returns 0, or -1
 * with *error_r set to a static reason ("Unknown command" for a bad or
 * missing keyword, "Invalid characters in command" ...). */
int pop3_parse_line(const char *line, size_t len, struct pop3_cmd *cmd_r,
		    const char **error_r);
/* A message number: decimal 1..UINT32_MAX. Returns 0 or -1. */
int pop3_parse_msgnum(const struct pop3_token *tok, uint32_t *num_r);
/* Any non-negative decimal (TOP's line count). Returns 0 or -1. */
int pop3_parse_u64(const struct pop3_token *tok, uint64_t *num_r);

/* ---- message transform (RETR, TOP) ---- */

struct pop3_xform {
	bool at_line_start;	/* next byte starts a line (dot-stuffing) */
	bool last_cr;		/* last input byte was CR: an LF adds no CR */
	bool line_blank;	/* the current line held only CRs so far */
	bool in_body;		/* TOP: the header/body blank line was sent */
	bool has_limit;		/* TOP: stop after body_lines_left lines */
	bool is_done;		/* TOP limit reached: ignore further input */
	uint64_t body_lines_left;
};

/* Bytes pop3_xform_finish may write. */
#define POP3_XFORM_FINISH_MAX 5

/* has_limit false: RETR (whole message). true: TOP with top_lines body
 * lines after the headers and the blank line (RFC 1939 section 7). */
void pop3_xform_init(struct pop3_xform *x, bool has_limit,
		     uint64_t top_lines);
/* Transforms len input bytes into out, which must hold 2 * len bytes
 * (SIZE-MATH: every byte expands to at most two). Returns the bytes
 * written. After x->is_done input is ignored. */
size_t pop3_xform_feed(struct pop3_xform *x, const unsigned char *in,
		       size_t len, unsigned char *out);
/* Ends the reply: completes a last line without LF, then ".\r\n". out
 * holds POP3_XFORM_FINISH_MAX bytes. Returns the bytes written. */
size_t pop3_xform_finish(struct pop3_xform *x, unsigned char *out);

/* ---- UIDL ---- */

/* RFC 1939 section 7: a unique-id is 1..70 characters in 0x21..0x7E. */
#define POP3_UIDL_MAX_LEN 70
#define POP3_UIDL_HASH_LEN 40
#define POP3_UIDL_BUF_SIZE (POP3_UIDL_MAX_LEN + 1)

/* Returns basename itself when it is a valid unique-id, otherwise a
 * stable substitute written into buf: the first 40 hex digits of the
 * SHA-256 of the basename (the same basename always gives the same id). */
const char *pop3_uidl(const char *basename, char buf[POP3_UIDL_BUF_SIZE]);

/* ---- session ---- */

enum pop3_state {
	POP3_STATE_AUTHORIZATION = 1 << 0,
	POP3_STATE_TRANSACTION = 1 << 1,
};

struct pop3_session;
struct pop3_sasl;
struct pop3_stream;
struct auth_request;
struct store_user;
struct store_mailbox;

/* A multi-line reply in progress: returns 1 when finished, 0 to be called
 * again from on_drain when the output queue has room. */
typedef int pop3_cont_func(struct pop3_session *s);

struct pop3_session {
	struct conn *conn;
	const struct settings *set;
	enum pop3_state state;
	char *apop_timestamp;	/* "<pid.time.rand@host>" if APOP offered */
	char *user;		/* USER argument, then the logged-in user */
	char *auth_user;	/* name of the pending attempt (for the log) */
	const char *auth_method;	/* "USER", "APOP", "PLAIN", "LOGIN" */
	struct auth_request *auth_req;
	bool auth_pending;	/* a verdict is awaited (auth_req may still
				   be NULL while auth_verify_* runs) */
	bool in_input;		/* pop3_client_input is on the stack */
	bool closing;		/* conn_close_after_flush was called */
	unsigned auth_failures;
	unsigned errors;	/* client protocol errors */
	struct pop3_sasl *sasl;	/* AUTH exchange in progress */

	/* TRANSACTION state */
	struct store_user *su;
	struct store_mailbox *mb;
	uint32_t msg_count;	/* snapshot taken at login */
	uint8_t *deleted;	/* bitmap over msg_count messages */
	uint32_t deleted_count;
	uint64_t deleted_bytes;
	uint64_t total_bytes;
	uint32_t retr_count;
	uint64_t retr_bytes;
	uint32_t expunged_count;

	pop3_cont_func *cont;	/* multi-line reply in progress */
	struct pop3_stream *stream;	/* its state */
};

/* Maximum client protocol errors before disconnecting (nginx max_errors,
 * STYLE.md section 4). */
#define POP3_MAX_ERRORS 10

struct pop3_command {
	const char *name;
	/* Returns 0, or -1 for a client mistake (the handler has replied;
	 * the dispatcher counts it). */
	int (*func)(struct pop3_session *s, const struct pop3_cmd *cmd);
	unsigned states;	/* enum pop3_state bits */
	unsigned min_args, max_args;
	unsigned flags;		/* enum pop3_command_flags */
};

enum pop3_command_flags {
	/* Arguments may be longer than POP3_MAX_ARG_LEN (AUTH initial
	 * response) or ignore argc (PASS uses cmd->rest). */
	POP3_CMD_FLAG_LONG_ARGS = 1 << 0,
	POP3_CMD_FLAG_RAW_REST = 1 << 1,
};

/* pop3_commands.c */
const struct pop3_command *pop3_command_find(const char *name);
void pop3_stream_free(struct pop3_session *s);

/* pop3_client.c */
void pop3_reply_error(struct pop3_session *s, const char *text);
void pop3_close(struct pop3_session *s, const char *reason);
void pop3_update_pause(struct pop3_session *s);
void pop3_client_input(struct pop3_session *s);
/* Called with the canonical user after a successful verdict: opens and
 * locks the maildrop and enters TRANSACTION (or replies and closes). */
void pop3_login(struct pop3_session *s, const char *user);
/* A printable, length-capped copy of a client-supplied name for logs,
 * in buf. */
const char *pop3_log_str(const char *str, char *buf, size_t size);
bool pop3_msg_exists(const struct pop3_session *s, uint32_t num);

/* pop3_auth.c */
int pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd);
int pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd);
int pop3_cmd_apop(struct pop3_session *s, const struct pop3_cmd *cmd);
int pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd);
/* A line while s->sasl is set: the client's SASL response. Returns 0,
 * or -1 for a client mistake (already answered). */
int pop3_sasl_input(struct pop3_session *s, const char *line, size_t len);
void pop3_sasl_free(struct pop3_session *s);
void pop3_auth_abort(struct pop3_session *s);

#endif
