/* imap_parser.h: incremental IMAP command parser (RFC 3501 section 9,
 * RFC 9051, RFC 7888 LITERAL+/LITERAL-, RFC 3516 literal8). Bytes in,
 * arguments out: no I/O, no command semantics (cmd_*.c interpret args).
 *
 * Input: imap_parser_feed() takes (ptr, len) and reports how many bytes it
 * used; imap_parser_feed_evbuffer() does the same on the connection's
 * input evbuffer and drains what was used. Use one or the other on a
 * parser. The parser stops right after the LF that ends a command, so the
 * caller can read non-command lines (AUTHENTICATE responses, IDLE's DONE)
 * from the same buffer itself.
 *
 * Results (int):
 *   IMAP_PARSE_NEED_MORE  all input used, feed more.
 *   IMAP_PARSE_DONE       a command is complete: imap_parser_command()
 *                         (or imap_parser_take_command()).
 *   IMAP_PARSE_LITERAL    a literal was announced ({n}, {n+}, ~{n}, ~{n+}):
 *                         imap_parser_literal_info(). The caller MUST call
 *                         imap_parser_literal_accept() or
 *                         imap_parser_abort_command() before feeding on.
 *                         For a synchronizing literal that was accepted the
 *                         caller sends "+ Ready for literal data" itself.
 *   IMAP_PARSE_LITERAL_DATA  a chunk of a streamed literal:
 *                         imap_parser_literal_chunk(). The chunk points into
 *                         the caller's input and is valid until the next
 *                         call into the parser. The last chunk of a literal
 *                         has is_last set (a 0-byte literal gives one empty
 *                         last chunk).
 *   IMAP_PARSE_ERROR      imap_parser_error(): reply "<tag> BAD <message>"
 *                         when error->tag is set, else "* BAD <message>".
 *                         If error->is_fatal, close the connection (the
 *                         stream cannot be resynchronized); otherwise just
 *                         feed on: the parser discards the rest of the bad
 *                         command itself (see "Recovery").
 *
 * Arguments: atoms (generic: any CHAR except SP, CTL, "(", ")", "{", DQUOTE;
 * this includes "\Seen", "\*", "1:*", "%", "BODY[TEXT]<0.10>"; commands
 * check strict classes with the imap_char_is_*() predicates or the
 * imap_arg_get_*() accessors), NIL (an atom "NIL" in any case), quoted
 * strings (unescaped), literals (in memory, or streamed: only the size is
 * kept) and parenthesized lists.
 *
 * FETCH sections: "BODY[HEADER.FIELDS (From To)]<0.100>" is emitted as the
 * atom "BODY[HEADER.FIELDS", the list ("From" "To") and the atom "]<0.100>".
 * Rule: an atom that ends at SP with more '[' than ']' may be followed by a
 * list, and that list may be followed directly (no SP) by an atom starting
 * with ']'. Nothing else is allowed without a separating SP.
 *
 * Recovery (errors that are not fatal): the rest of the line is discarded.
 * As RFC 7888 section 3 requires, the end of every discarded line is still
 * checked for a non-synchronizing literal "{n+}" (also "~{n+}"): its n
 * bytes are discarded too and discarding goes on with the following line.
 * A discarded line ending in a synchronizing "{n}" ends the command: the
 * client waits for "+", gets our tagged BAD and abandons the command
 * (RFC 3501 section 7.5). Fatal: a malformed literal header ("{12x}",
 * size overflow, "}" not followed by CRLF), since the number of literal
 * bytes that follow cannot be known.
 *
 * Memory: the command being parsed belongs to the parser; after DONE it
 * stays valid until the next feed/abort/destroy call, unless taken with
 * imap_parser_take_command(). Ceilings come from struct
 * imap_parser_settings. */
#ifndef HERON_IMAP_PARSER_H
#define HERON_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct imap_parser;

/* RFC 7888 section 5: LITERAL- allows non-synchronizing literals only up
 * to this many bytes. */
#define IMAP_LITERAL_MINUS_MAX 4096

struct imap_parser_settings {
	/* Bytes of a command outside literals, CRLF not counted. */
	size_t max_line_length;
	/* Parenthesized list nesting: 0 = no lists at all. */
	unsigned max_list_depth;
	/* Arguments in the whole command (list members count, lists too). */
	size_t max_args;
	/* imap_parser_literal_accept(MEMORY) refuses bigger literals. */
	size_t max_literal_size;
	/* {n+} allowed at all (LITERAL+ or LITERAL- advertised). */
	bool allow_nonsync;
	/* LITERAL- (not LITERAL+): {n+} above IMAP_LITERAL_MINUS_MAX is an
	 * error IMAP_PARSE_ERR_TOOBIG ("tag BAD [TOOBIG] ..."). */
	bool literal_minus;
	/* UTF8=ACCEPT (RFC 9051 / 6855): valid UTF-8 inside quoted strings. */
	bool utf8;
};

/* Defaults: pre-login 8 KiB lines, depth 1, 50 args, 1 KiB literals;
 * post-login 64 KiB lines, depth 32, 100000 args, 64 KiB literals.
 * Both with allow_nonsync (LITERAL+) and without UTF-8. */
void imap_parser_settings_default(struct imap_parser_settings *set_r,
				  bool is_logged_in);

enum imap_parse_result {
	IMAP_PARSE_ERROR = -1,
	IMAP_PARSE_NEED_MORE = 0,
	IMAP_PARSE_DONE = 1,
	IMAP_PARSE_LITERAL = 2,
	IMAP_PARSE_LITERAL_DATA = 3,
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_NIL,		/* str is the original text, e.g. "nil" */
	IMAP_ARG_QUOTED,	/* str is unescaped */
	IMAP_ARG_LITERAL,	/* str may contain NUL bytes if literal8 */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	bool is_literal8;	/* ~{n} (RFC 3516) */
	bool is_streamed;	/* literal handed to the caller: str NULL */
	char *str;		/* NUL-ended copy (not for lists) */
	uint64_t len;		/* str length; for a streamed literal its size */
	struct imap_arg *list;	/* IMAP_ARG_LIST members */
	size_t list_count;
};

struct imap_command {
	char *tag;
	char *name;		/* upper-cased ("UID" for UID FETCH) */
	struct imap_arg *args;
	size_t args_count;
};

enum imap_parse_error_code {
	IMAP_PARSE_ERR_NONE = 0,
	IMAP_PARSE_ERR_EMPTY,	/* empty line */
	IMAP_PARSE_ERR_TAG,	/* missing or invalid tag */
	IMAP_PARSE_ERR_COMMAND,	/* missing or invalid command name */
	IMAP_PARSE_ERR_SYNTAX,	/* any other grammar violation */
	IMAP_PARSE_ERR_LINE_TOO_LONG,
	IMAP_PARSE_ERR_DEPTH,	/* list nesting over max_list_depth */
	IMAP_PARSE_ERR_TOO_MANY_ARGS,
	IMAP_PARSE_ERR_LITERAL,	/* malformed literal header (fatal) */
	IMAP_PARSE_ERR_NONSYNC,	/* {n+} while allow_nonsync is off */
	IMAP_PARSE_ERR_TOOBIG,	/* LITERAL-: {n+} over 4096 bytes */
};

struct imap_parse_error {
	enum imap_parse_error_code code;
	const char *message;	/* static text for the BAD reply */
	const char *tag;	/* NULL when no valid tag was read */
	bool is_fatal;		/* close the connection */
};

struct imap_literal_info {
	uint64_t size;
	bool is_sync;		/* {n}: caller sends "+ ..." after accepting */
	bool is_literal8;	/* ~{n} */
	unsigned depth;		/* list nesting of the literal (0 = top) */
	/* Index the literal will have among the args at its depth. */
	size_t arg_index;
};

enum imap_literal_mode {
	IMAP_LITERAL_MEMORY,	/* keep it in the argument */
	IMAP_LITERAL_STREAM,	/* hand bytes over: LITERAL_DATA results */
};

struct imap_parser *imap_parser_create(const struct imap_parser_settings
				       *set);
void imap_parser_destroy(struct imap_parser **parser);
/* Between commands (e.g. after login or ENABLE UTF8=ACCEPT). */
void imap_parser_set_settings(struct imap_parser *parser,
			      const struct imap_parser_settings *set);

/* Parses from data; *used_r is set to the number of bytes consumed (all of
 * them when NEED_MORE is returned). Returns enum imap_parse_result. */
int imap_parser_feed(struct imap_parser *parser, const void *data,
		     size_t size, size_t *used_r);
/* Same, taking input from (and draining) in. After LITERAL_DATA the chunk's
 * bytes are drained at the next call, so the chunk stays valid. */
int imap_parser_feed_evbuffer(struct imap_parser *parser,
			      struct evbuffer *in);

/* After DONE. Owned by the parser (see Memory above). */
const struct imap_command *imap_parser_command(struct imap_parser *parser);
/* After DONE: the caller owns the command; free with imap_command_free. */
struct imap_command *imap_parser_take_command(struct imap_parser *parser);
void imap_command_free(struct imap_command **cmd);
/* The command parsed so far (tag, name, top-level args completed so far;
 * an open list is not included), e.g. for APPEND at LITERAL time. Valid
 * until the next call into the parser. tag/name may be NULL. */
const struct imap_command *imap_parser_partial(struct imap_parser *parser);

/* After LITERAL, and while streaming. */
const struct imap_literal_info *
imap_parser_literal_info(struct imap_parser *parser);
/* After LITERAL. Returns -1 (nothing changed) if mode is MEMORY and the
 * size is over max_literal_size: then abort the command or stream. */
int imap_parser_literal_accept(struct imap_parser *parser,
			       enum imap_literal_mode mode);
/* After LITERAL_DATA. */
void imap_parser_literal_chunk(struct imap_parser *parser,
			       const unsigned char **data_r, size_t *size_r,
			       bool *is_last_r);

/* Abandons the command being parsed (the caller has replied, e.g. "tag NO
 * [TOOBIG]" or a failed write of a streamed APPEND): the parser discards
 * the rest of it. At LITERAL: a synchronizing literal is not sent by the
 * client (RFC 3501 section 7.5) so nothing is discarded; a non-synchronizing
 * one is discarded, then the rest of its line. While streaming: the rest of
 * the literal, then the rest of the line. No-op between commands. */
void imap_parser_abort_command(struct imap_parser *parser);

/* After ERROR (valid until the next call). */
const struct imap_parse_error *imap_parser_error(struct imap_parser *parser);

/* True between commands (nothing of a command buffered or pending). */
bool imap_parser_is_idle(struct imap_parser *parser);

/* ---- character classes, RFC 3501 section 9 ---- */
bool imap_char_is_atom(unsigned char c);	/* ATOM-CHAR */
bool imap_char_is_astring(unsigned char c);	/* ASTRING-CHAR */
bool imap_char_is_tag(unsigned char c);		/* ASTRING-CHAR but '+' */
bool imap_char_is_list(unsigned char c);	/* list-char */

/* ---- accessors for command handlers (NULL arg gives false) ---- */
/* ATOM (or NIL) made only of ATOM-CHARs. */
bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r);
/* astring: strict ASTRING-CHAR atom, NIL (as "NIL"), quoted, in-memory
 * literal. len_r may be NULL. */
bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r,
			  size_t *len_r);
/* string: quoted or in-memory literal (not a literal8). */
bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r,
			 size_t *len_r);
/* nstring: string, or NIL giving *str_r = NULL. */
bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
			  size_t *len_r);
/* list-mailbox: list-char atom (with % and *) or string. */
bool imap_arg_get_list_mailbox(const struct imap_arg *arg,
			       const char **str_r, size_t *len_r);
bool imap_arg_get_list(const struct imap_arg *arg,
		       const struct imap_arg **list_r, size_t *count_r);
/* ATOM (or NIL) equal to name, ASCII case-insensitively. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *name);

#endif
