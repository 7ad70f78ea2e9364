/* imap_parser.c: the incremental IMAP command parser (contract and
 * recovery policy in imap_parser.h). A byte-at-a-time state machine for
 * command lines; literal bytes move in bulk. Tokens are collected in one
 * growing buffer bounded by max_line_length; arguments are heap copies
 * owned by the command. Limits: settings (line, depth, args, in-memory
 * literal); literal sizes up to 2^63-1 (RFC 9051 number64). */
#include "imap/imap_parser.h"
#include "lib/utf8.h"

#include <assert.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"

#define LITERAL_SIZE_MAX ((uint64_t)INT64_MAX)

enum parser_state {
	PS_LINE_START,
	PS_TAG,
	PS_NAME,
	PS_ARG_START,		/* after SP: an argument must follow */
	PS_LIST_START,		/* after '(': argument or ')' */
	PS_AFTER_ARG,		/* SP, ')' or end of line */
	PS_AFTER_LIST,		/* like AFTER_ARG, or ']' after a section */
	PS_ATOM,
	PS_TILDE,		/* '~' at argument start: literal8 or atom */
	PS_QUOTED,
	PS_QUOTED_ESC,
	PS_LIT_NUM,		/* inside "{..." */
	PS_LIT_PLUS,		/* "{n+": '}' must follow */
	PS_LIT_CR,		/* "{n}": CRLF must follow */
	PS_LIT_LF,
	PS_LIT_WAIT,		/* LITERAL returned, caller decides */
	PS_LIT_DATA,
	PS_CR,			/* CR at end of command: LF must follow */
	PS_DONE,
	PS_SKIP,		/* discarding the rest of a line */
	PS_SKIP_LIT,		/* discarding literal bytes */
	PS_FATAL,
};

/* Skip mode tracks only the end of the line: "{digits[+]}" CRLF. */
enum skip_tail { TAIL_NONE, TAIL_BRACE, TAIL_DIGITS, TAIL_PLUS, TAIL_CLOSE };

struct arg_vec {
	struct imap_arg *args;
	size_t count, cap;
	bool section_open;	/* last atom ended at SP with '[' unclosed */
	bool section_list;	/* the open child list follows such an atom */
};

struct imap_parser {
	struct imap_parser_settings set;
	enum parser_state state;
	struct imap_command *cmd;	/* tag/name as read; args at DONE */
	struct imap_command partial;	/* view for imap_parser_partial() */
	bool cmd_over;			/* DONE/ERROR given: free at next call */

	struct arg_vec *levels;		/* [0] = top level */
	unsigned levels_count;
	unsigned depth;
	size_t total_args;
	size_t line_len;		/* bytes outside literals */

	char *tok;
	size_t tok_len, tok_cap;
	bool tok_has_8bit;

	struct imap_literal_info lit;
	enum imap_literal_mode lit_mode;
	bool lit_plus;
	unsigned lit_digits;
	uint64_t lit_left;
	char *lit_buf;
	size_t lit_pos;
	const unsigned char *chunk;
	size_t chunk_size;
	bool chunk_last;

	enum skip_tail tail;
	uint64_t tail_num;
	bool tail_plus, tail_overflow;

	struct imap_parse_error error;
	size_t pending_drain;		/* evbuffer bytes of the last chunk */
};

/* ---- character classes (RFC 3501 section 9) ---- */

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool imap_char_is_atom(unsigned char c)
{
	/* atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
	 * quoted-specials / resp-specials; CHAR = %x01-7F */
	if (c == 0 || c >= 0x80 || is_ctl(c))
		return false;
	return strchr("(){ %*\"\\]", c) == NULL;
}

bool imap_char_is_astring(unsigned char c)
{
	return imap_char_is_atom(c) || c == ']';
}

bool imap_char_is_tag(unsigned char c)
{
	/* tag = 1*<any ASTRING-CHAR except "+"> */
	return imap_char_is_astring(c) && c != '+';
}

bool imap_char_is_list(unsigned char c)
{
	/* list-char = ATOM-CHAR / list-wildcards / resp-specials */
	return imap_char_is_atom(c) || c == '%' || c == '*' || c == ']';
}

/* What the parser accepts inside an atom: every CHAR but SP, CTL, "(",
 * ")", "{" and DQUOTE. Wider than ATOM-CHAR so flags ("\Seen"), sequence
 * sets ("1:*"), list patterns and fetch sections stay atoms. */
static bool is_token_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* ---- settings ---- */

void imap_parser_settings_default(struct imap_parser_settings *set_r,
				  bool is_logged_in)
{
	memset(set_r, 0, sizeof(*set_r));
	set_r->allow_nonsync = true;
	if (is_logged_in) {
		set_r->max_line_length = 64 * 1024;
		set_r->max_list_depth = 32;
		set_r->max_args = 100000;
		set_r->max_literal_size = 64 * 1024;
	} else {
		/* STYLE.md section 6: pre-auth is tight. */
		set_r->max_line_length = 8 * 1024;
		set_r->max_list_depth = 1;
		set_r->max_args = 50;
		set_r->max_literal_size = 1024;
	}
}

/* ---- memory ---- */

static void args_free(struct imap_arg *args, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		free(args[i].str);
		args_free(args[i].list, args[i].list_count);
	}
	free(args);
}

void imap_command_free(struct imap_command **cmd)
{
	if (*cmd == NULL)
		return;
	free((*cmd)->tag);
	free((*cmd)->name);
	args_free((*cmd)->args, (*cmd)->args_count);
	free(*cmd);
	*cmd = NULL;
}

static void levels_clear(struct imap_parser *p)
{
	unsigned i;

	for (i = 0; i < p->levels_count; i++) {
		args_free(p->levels[i].args, p->levels[i].count);
		memset(&p->levels[i], 0, sizeof(p->levels[i]));
	}
	p->depth = 0;
	p->total_args = 0;
	free(p->lit_buf);
	p->lit_buf = NULL;
}

static void command_reset(struct imap_parser *p)
{
	levels_clear(p);
	imap_command_free(&p->cmd);
	p->cmd_over = false;
	p->line_len = 0;
	memset(&p->error, 0, sizeof(p->error));
}

struct imap_parser *imap_parser_create(const struct imap_parser_settings
				       *set)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->set = *set;
	p->state = PS_LINE_START;
	return p;
}

void imap_parser_destroy(struct imap_parser **parser)
{
	struct imap_parser *p = *parser;

	if (p == NULL)
		return;
	command_reset(p);
	free(p->levels);
	free(p->tok);
	free(p);
	*parser = NULL;
}

void imap_parser_set_settings(struct imap_parser *parser,
			      const struct imap_parser_settings *set)
{
	parser->set = *set;
}

/* ---- tokens and arguments ---- */

static void tok_reset(struct imap_parser *p)
{
	p->tok_len = 0;
	p->tok_has_8bit = false;
}

static void tok_add(struct imap_parser *p, unsigned char c)
{
	if (p->tok_len + 1 >= p->tok_cap) {
		p->tok_cap = p->tok_cap == 0 ? 64 : p->tok_cap * 2;
		p->tok = xrealloc(p->tok, p->tok_cap);
	}
	p->tok[p->tok_len++] = (char)c;
}

static char *tok_dup(struct imap_parser *p)
{
	char *s = xmalloc(p->tok_len + 1);

	if (p->tok_len > 0)
		memcpy(s, p->tok, p->tok_len);
	s[p->tok_len] = '\0';
	return s;
}

static struct arg_vec *cur_level(struct imap_parser *p)
{
	return &p->levels[p->depth];
}

static void levels_ensure(struct imap_parser *p, unsigned depth)
{
	if (depth < p->levels_count)
		return;
	p->levels = xreallocarray(p->levels, depth + 1, sizeof(*p->levels));
	memset(p->levels + p->levels_count, 0,
	       (depth + 1 - p->levels_count) * sizeof(*p->levels));
	p->levels_count = depth + 1;
}

static void vec_push(struct arg_vec *v, const struct imap_arg *arg)
{
	if (v->count == v->cap) {
		v->cap = v->cap == 0 ? 8 : v->cap * 2;
		v->args = xreallocarray(v->args, v->cap, sizeof(*v->args));
	}
	v->args[v->count++] = *arg;
}

/* ---- errors ---- */

static int skip_byte(struct imap_parser *p, unsigned char c);

static int fail_fatal(struct imap_parser *p, enum imap_parse_error_code code,
		      const char *message)
{
	p->error.code = code;
	p->error.message = message;
	p->error.tag = p->cmd != NULL ? p->cmd->tag : NULL;
	p->error.is_fatal = true;
	p->cmd_over = true;
	p->state = PS_FATAL;
	levels_clear(p);
	return IMAP_PARSE_ERROR;
}

static void skip_start(struct imap_parser *p)
{
	p->state = PS_SKIP;
	p->tail = TAIL_NONE;
}

static void skip_literal_start(struct imap_parser *p, uint64_t size)
{
	if (size == 0) {
		skip_start(p);
	} else {
		p->state = PS_SKIP_LIT;
		p->lit_left = size;
	}
}

/* A client error at byte c: the rest of the line (from c on, unless c
 * ended the line) is discarded. */
static int fail(struct imap_parser *p, enum imap_parse_error_code code,
		const char *message, unsigned char c)
{
	p->error.code = code;
	p->error.message = message;
	p->error.tag = p->cmd != NULL ? p->cmd->tag : NULL;
	p->error.is_fatal = false;
	p->cmd_over = true;
	levels_clear(p);
	if (c == '\n') {
		p->state = PS_LINE_START;
	} else {
		skip_start(p);
		/* c may start a literal header at the end of the line */
		(void)skip_byte(p, c);
	}
	return IMAP_PARSE_ERROR;
}

/* ---- skip mode ---- */

static void tail_update(struct imap_parser *p, unsigned char c)
{
	if (c == '{') {
		p->tail = TAIL_BRACE;
		p->tail_num = 0;
		p->tail_overflow = false;
	} else if (c >= '0' && c <= '9' &&
		   (p->tail == TAIL_BRACE || p->tail == TAIL_DIGITS)) {
		p->tail = TAIL_DIGITS;
		if (p->tail_num > (LITERAL_SIZE_MAX - (c - '0')) / 10)
			p->tail_overflow = true;
		else
			p->tail_num = p->tail_num * 10 + (c - '0');
	} else if (c == '+' && p->tail == TAIL_DIGITS) {
		p->tail = TAIL_PLUS;
	} else if (c == '}' &&
		   (p->tail == TAIL_DIGITS || p->tail == TAIL_PLUS)) {
		p->tail_plus = p->tail == TAIL_PLUS;
		p->tail = TAIL_CLOSE;
	} else if (c != '\r') {
		p->tail = TAIL_NONE;
	}
}

/* RFC 7888 section 3: the end of every line is checked for "{n+}" even
 * when the line is being discarded. */
static int skip_byte(struct imap_parser *p, unsigned char c)
{
	if (c != '\n') {
		tail_update(p, c);
		return IMAP_PARSE_NEED_MORE;
	}
	if (p->tail == TAIL_CLOSE && p->tail_plus) {
		if (p->tail_overflow)
			return fail_fatal(p, IMAP_PARSE_ERR_LITERAL,
					  "Invalid literal size");
		skip_literal_start(p, p->tail_num);
	} else {
		/* no literal, or a synchronizing one the client won't send
		 * without our "+" (RFC 3501 section 7.5) */
		p->state = PS_LINE_START;
	}
	p->tail = TAIL_NONE;
	return IMAP_PARSE_NEED_MORE;
}

/* ---- arguments ---- */

static int push_arg(struct imap_parser *p, struct imap_arg *arg,
		    unsigned char c)
{
	if (p->total_args >= p->set.max_args) {
		free(arg->str);
		args_free(arg->list, arg->list_count);
		return fail(p, IMAP_PARSE_ERR_TOO_MANY_ARGS,
			    "Too many arguments", c);
	}
	p->total_args++;
	vec_push(cur_level(p), arg);
	return IMAP_PARSE_NEED_MORE;
}

static bool tok_is_nil(const struct imap_parser *p)
{
	return p->tok_len == 3 && strncasecmp(p->tok, "NIL", 3) == 0;
}

static int finish_atom(struct imap_parser *p, unsigned char c)
{
	struct imap_arg arg;
	long brackets = 0;
	size_t i;
	int ret;

	memset(&arg, 0, sizeof(arg));
	arg.type = tok_is_nil(p) ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	arg.str = tok_dup(p);
	arg.len = p->tok_len;
	for (i = 0; i < p->tok_len; i++) {
		if (p->tok[i] == '[')
			brackets++;
		else if (p->tok[i] == ']')
			brackets--;
	}
	ret = push_arg(p, &arg, c);
	if (ret == IMAP_PARSE_NEED_MORE)
		cur_level(p)->section_open = c == ' ' && brackets > 0;
	return ret;
}


static int finish_quoted(struct imap_parser *p)
{
	struct imap_arg arg;

	if (p->tok_has_8bit &&
	    !utf8_is_valid((const unsigned char *)p->tok, p->tok_len))
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Invalid UTF-8 in quoted string", '"');
	memset(&arg, 0, sizeof(arg));
	arg.type = IMAP_ARG_QUOTED;
	arg.str = tok_dup(p);
	arg.len = p->tok_len;
	p->state = PS_AFTER_ARG;
	return push_arg(p, &arg, '"');
}

static int finish_literal(struct imap_parser *p)
{
	struct imap_arg arg;

	memset(&arg, 0, sizeof(arg));
	arg.type = IMAP_ARG_LITERAL;
	arg.is_literal8 = p->lit.is_literal8;
	arg.len = p->lit.size;
	if (p->lit_mode == IMAP_LITERAL_STREAM) {
		arg.is_streamed = true;
	} else {
		/* RFC 3501 section 9: CHAR8 = %x01-ff; only literal8
		 * (RFC 3516) may carry NUL. */
		if (!p->lit.is_literal8 &&
		    memchr(p->lit_buf, '\0', p->lit.size) != NULL)
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "NUL in literal", 0);
		p->lit_buf[p->lit.size] = '\0';
		arg.str = p->lit_buf;
		p->lit_buf = NULL;
	}
	p->state = PS_AFTER_ARG;
	return push_arg(p, &arg, 0);
}

static int command_done(struct imap_parser *p)
{
	struct arg_vec *v = &p->levels[0];

	p->cmd->args = v->args;
	p->cmd->args_count = v->count;
	memset(v, 0, sizeof(*v));
	p->state = PS_DONE;
	p->cmd_over = true;
	return IMAP_PARSE_DONE;
}

static int open_list(struct imap_parser *p, bool is_section, unsigned char c)
{
	if (p->depth >= p->set.max_list_depth)
		return fail(p, IMAP_PARSE_ERR_DEPTH, "Too deep list nesting",
			    c);
	cur_level(p)->section_list = is_section;
	levels_ensure(p, p->depth + 1);
	p->depth++;
	p->state = PS_LIST_START;
	return IMAP_PARSE_NEED_MORE;
}

static int close_list(struct imap_parser *p, unsigned char c)
{
	struct arg_vec *v = cur_level(p);
	struct imap_arg arg;

	memset(&arg, 0, sizeof(arg));
	arg.type = IMAP_ARG_LIST;
	arg.list = v->args;
	arg.list_count = v->count;
	memset(v, 0, sizeof(*v));
	p->depth--;
	p->state = PS_AFTER_LIST;
	return push_arg(p, &arg, c);
}

/* ---- the state machine ---- */

static int arg_start(struct imap_parser *p, unsigned char c)
{
	struct arg_vec *v = cur_level(p);
	bool is_section = v->section_open;

	v->section_open = false;
	tok_reset(p);
	switch (c) {
	case '(':
		return open_list(p, is_section, c);
	case '"':
		p->state = PS_QUOTED;
		return IMAP_PARSE_NEED_MORE;
	case '{':
	case '~':
		p->lit.is_literal8 = false;
		p->lit_plus = false;
		p->lit_digits = 0;
		p->lit.size = 0;
		p->state = c == '{' ? PS_LIT_NUM : PS_TILDE;
		return IMAP_PARSE_NEED_MORE;
	case ' ':
		return fail(p, IMAP_PARSE_ERR_SYNTAX, "Unexpected space", c);
	case ')':
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Unexpected space before ')'", c);
	case '\r':
	case '\n':
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Unexpected space at end of line", c);
	}
	if (!is_token_char(c))
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Invalid characters in atom", c);
	tok_add(p, c);
	p->state = PS_ATOM;
	return IMAP_PARSE_NEED_MORE;
}

static int after_arg(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
		p->state = PS_ARG_START;
		return IMAP_PARSE_NEED_MORE;
	case ')':
		if (p->depth == 0)
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Unexpected ')'", c);
		return close_list(p, c);
	case '\r':
	case '\n':
		if (p->depth > 0)
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Missing ')'", c);
		if (c == '\n')
			return command_done(p);
		p->state = PS_CR;
		return IMAP_PARSE_NEED_MORE;
	}
	return fail(p, IMAP_PARSE_ERR_SYNTAX, "Missing space after argument",
		    c);
}

static int after_list(struct imap_parser *p, unsigned char c)
{
	struct arg_vec *v = cur_level(p);
	bool is_section = v->section_list;

	v->section_list = false;
	if (c == ']' && is_section) {
		/* "BODY[HEADER.FIELDS (From)]<0.10>": the atom "]<0.10>" */
		tok_reset(p);
		tok_add(p, c);
		p->state = PS_ATOM;
		return IMAP_PARSE_NEED_MORE;
	}
	return after_arg(p, c);
}

static int tag_byte(struct imap_parser *p, unsigned char c)
{
	if (imap_char_is_tag(c)) {
		tok_add(p, c);
		return IMAP_PARSE_NEED_MORE;
	}
	if (p->tok_len > 0 && (c == ' ' || c == '\r' || c == '\n')) {
		p->cmd->tag = tok_dup(p);
		tok_reset(p);
		p->state = PS_NAME;
		if (c == ' ')
			return IMAP_PARSE_NEED_MORE;
		return fail(p, IMAP_PARSE_ERR_COMMAND, "Missing command", c);
	}
	return fail(p, IMAP_PARSE_ERR_TAG, "Invalid tag", c);
}

static int name_byte(struct imap_parser *p, unsigned char c)
{
	size_t i;

	if (imap_char_is_atom(c)) {
		tok_add(p, c);
		return IMAP_PARSE_NEED_MORE;
	}
	if (c != ' ' && c != '\r' && c != '\n')
		return fail(p, IMAP_PARSE_ERR_COMMAND,
			    "Invalid characters in command name", c);
	if (p->tok_len == 0)
		return fail(p, IMAP_PARSE_ERR_COMMAND, "Missing command", c);
	p->cmd->name = tok_dup(p);
	for (i = 0; i < p->tok_len; i++) {
		if (p->cmd->name[i] >= 'a' && p->cmd->name[i] <= 'z')
			p->cmd->name[i] -= 'a' - 'A';
	}
	if (c == ' ')
		p->state = PS_ARG_START;
	else if (c == '\r')
		p->state = PS_CR;
	else
		return command_done(p);
	return IMAP_PARSE_NEED_MORE;
}

static int quoted_byte(struct imap_parser *p, unsigned char c)
{
	/* RFC 3501 section 9: QUOTED-CHAR = <any TEXT-CHAR except
	 * quoted-specials> / "\" quoted-specials; RFC 9051 adds UTF8-2/3/4
	 * under UTF8=ACCEPT. */
	if (p->state == PS_QUOTED_ESC) {
		if (c != '"' && c != '\\')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid escape in quoted string", c);
		tok_add(p, c);
		p->state = PS_QUOTED;
		return IMAP_PARSE_NEED_MORE;
	}
	if (c == '"')
		return finish_quoted(p);
	if (c == '\\') {
		p->state = PS_QUOTED_ESC;
		return IMAP_PARSE_NEED_MORE;
	}
	if (c == '\r' || c == '\n')
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Unterminated quoted string", c);
	if (c == '\0')
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "NUL in quoted string", c);
	if (c >= 0x80) {
		if (!p->set.utf8)
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "8-bit data in quoted string", c);
		p->tok_has_8bit = true;
	}
	tok_add(p, c);
	return IMAP_PARSE_NEED_MORE;
}

static int literal_announced(struct imap_parser *p)
{
	struct arg_vec *v = cur_level(p);

	p->lit.is_sync = !p->lit_plus;
	p->lit.depth = p->depth;
	p->lit.arg_index = v->count;
	if (p->lit_plus && !p->set.allow_nonsync) {
		(void)fail(p, IMAP_PARSE_ERR_NONSYNC,
			   "Non-synchronizing literals not allowed", '\n');
		skip_literal_start(p, p->lit.size);
		return IMAP_PARSE_ERROR;
	}
	if (p->lit_plus && p->set.literal_minus &&
	    p->lit.size > IMAP_LITERAL_MINUS_MAX) {
		/* RFC 7888 section 5: tagged BAD with TOOBIG */
		(void)fail(p, IMAP_PARSE_ERR_TOOBIG,
			   "Non-synchronizing literal too large", '\n');
		skip_literal_start(p, p->lit.size);
		return IMAP_PARSE_ERROR;
	}
	if (p->total_args >= p->set.max_args) {
		(void)fail(p, IMAP_PARSE_ERR_TOO_MANY_ARGS,
			   "Too many arguments", '\n');
		if (p->lit_plus)
			skip_literal_start(p, p->lit.size);
		return IMAP_PARSE_ERROR;
	}
	p->state = PS_LIT_WAIT;
	return IMAP_PARSE_LITERAL;
}

static int literal_header_byte(struct imap_parser *p, unsigned char c)
{
	switch (p->state) {
	case PS_LIT_NUM:
		if (c >= '0' && c <= '9') {
			if (p->lit.size > (LITERAL_SIZE_MAX - (c - '0')) / 10)
				break;
			p->lit.size = p->lit.size * 10 + (c - '0');
			p->lit_digits++;
			return IMAP_PARSE_NEED_MORE;
		}
		if (p->lit_digits == 0 || (c != '+' && c != '}'))
			break;
		p->lit_plus = c == '+';
		p->state = c == '+' ? PS_LIT_PLUS : PS_LIT_CR;
		return IMAP_PARSE_NEED_MORE;
	case PS_LIT_PLUS:
		if (c != '}')
			break;
		p->state = PS_LIT_CR;
		return IMAP_PARSE_NEED_MORE;
	case PS_LIT_CR:
		if (c == '\n')
			return literal_announced(p);
		if (c != '\r')
			break;
		p->state = PS_LIT_LF;
		return IMAP_PARSE_NEED_MORE;
	case PS_LIT_LF:
		if (c == '\n')
			return literal_announced(p);
		break;
	default:
		assert(!"not in a literal header");
	}
	/* how many literal bytes follow is unknown: can't resync */
	return fail_fatal(p, IMAP_PARSE_ERR_LITERAL, "Invalid literal");
}

static bool state_is_lit_header(enum parser_state state)
{
	return state == PS_LIT_NUM || state == PS_LIT_PLUS ||
		state == PS_LIT_CR || state == PS_LIT_LF;
}

static int parse_byte(struct imap_parser *p, unsigned char c)
{
	if (p->state != PS_SKIP && c != '\r' && c != '\n' &&
	    ++p->line_len > p->set.max_line_length) {
		if (state_is_lit_header(p->state))
			return fail_fatal(p, IMAP_PARSE_ERR_LITERAL,
					  "Invalid literal");
		return fail(p, IMAP_PARSE_ERR_LINE_TOO_LONG,
			    "Line too long", c);
	}
again:
	switch (p->state) {
	case PS_LINE_START:
		command_reset(p);
		p->line_len = 1;
		p->cmd = xcalloc(1, sizeof(*p->cmd));
		levels_ensure(p, 0);
		tok_reset(p);
		p->state = PS_TAG;
		if (c == '\r' || c == '\n')
			return fail(p, IMAP_PARSE_ERR_EMPTY,
				    "Empty command line", c);
		goto again;
	case PS_TAG:
		return tag_byte(p, c);
	case PS_NAME:
		return name_byte(p, c);
	case PS_LIST_START:
		if (c == ')')
			return close_list(p, c);
		/* fall through */
	case PS_ARG_START:
		return arg_start(p, c);
	case PS_AFTER_ARG:
		return after_arg(p, c);
	case PS_AFTER_LIST:
		return after_list(p, c);
	case PS_ATOM:
		if (is_token_char(c)) {
			tok_add(p, c);
			return IMAP_PARSE_NEED_MORE;
		}
		if (c != ' ' && c != ')' && c != '\r' && c != '\n')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid characters in atom", c);
		if (finish_atom(p, c) != IMAP_PARSE_NEED_MORE)
			return IMAP_PARSE_ERROR;
		return after_arg(p, c);
	case PS_TILDE:
		if (c == '{') {
			p->lit.is_literal8 = true;
			p->state = PS_LIT_NUM;
			return IMAP_PARSE_NEED_MORE;
		}
		tok_add(p, '~');
		p->state = PS_ATOM;
		goto again;
	case PS_QUOTED:
	case PS_QUOTED_ESC:
		return quoted_byte(p, c);
	case PS_LIT_NUM:
	case PS_LIT_PLUS:
	case PS_LIT_CR:
	case PS_LIT_LF:
		return literal_header_byte(p, c);
	case PS_CR:
		if (c == '\n')
			return command_done(p);
		return fail(p, IMAP_PARSE_ERR_SYNTAX, "CR without LF", c);
	case PS_SKIP:
		return skip_byte(p, c);
	case PS_LIT_WAIT:
	case PS_LIT_DATA:
	case PS_SKIP_LIT:
	case PS_DONE:
	case PS_FATAL:
		break;
	}
	assert(!"unexpected parser state");
	return IMAP_PARSE_ERROR;
}

/* Literal bytes: memory, stream or skip. Returns a result, sets *used_r. */
static int literal_bytes(struct imap_parser *p, const unsigned char *data,
			 size_t size, size_t *used_r)
{
	size_t n = size;

	if (n > p->lit_left)
		n = (size_t)p->lit_left;
	*used_r = n;
	p->lit_left -= n;
	if (p->state == PS_SKIP_LIT) {
		if (p->lit_left == 0)
			skip_start(p);
		return IMAP_PARSE_NEED_MORE;
	}
	if (p->lit_mode == IMAP_LITERAL_MEMORY) {
		memcpy(p->lit_buf + p->lit_pos, data, n);
		p->lit_pos += n;
		if (p->lit_left > 0)
			return IMAP_PARSE_NEED_MORE;
		return finish_literal(p) == IMAP_PARSE_ERROR ?
			IMAP_PARSE_ERROR : IMAP_PARSE_NEED_MORE;
	}
	p->chunk = data;
	p->chunk_size = n;
	p->chunk_last = p->lit_left == 0;
	/* max_args was checked when the literal was announced */
	if (p->chunk_last && finish_literal(p) == IMAP_PARSE_ERROR)
		assert(!"streamed literal push failed");
	return IMAP_PARSE_LITERAL_DATA;
}

int imap_parser_feed(struct imap_parser *parser, const void *data,
		     size_t size, size_t *used_r)
{
	static const unsigned char empty[1];
	const unsigned char *d = data != NULL ? data : empty;
	size_t i = 0, n;
	int ret = IMAP_PARSE_NEED_MORE;

	assert(parser->state != PS_LIT_WAIT);
	if (parser->state == PS_FATAL) {
		*used_r = 0;
		return IMAP_PARSE_ERROR;
	}
	if (parser->cmd_over)
		command_reset(parser);
	if (parser->state == PS_DONE)
		parser->state = PS_LINE_START;
	for (;;) {
		if (parser->state == PS_LIT_DATA ||
		    parser->state == PS_SKIP_LIT) {
			if (i == size && (parser->lit_left > 0 ||
					  parser->state == PS_SKIP_LIT))
				break;
			ret = literal_bytes(parser, d + i, size - i, &n);
			i += n;
		} else if (i < size) {
			ret = parse_byte(parser, d[i++]);
		} else {
			break;
		}
		if (ret != IMAP_PARSE_NEED_MORE)
			break;
	}
	*used_r = i;
	return ret;
}

int imap_parser_feed_evbuffer(struct imap_parser *parser,
			      struct evbuffer *in)
{
	struct evbuffer_iovec v;
	size_t used;
	int ret;

	if (parser->pending_drain > 0) {
		evbuffer_drain(in, parser->pending_drain);
		parser->pending_drain = 0;
	}
	do {
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) {
			v.iov_base = NULL;
			v.iov_len = 0;
		}
		ret = imap_parser_feed(parser, v.iov_base, v.iov_len, &used);
		if (ret == IMAP_PARSE_LITERAL_DATA) {
			parser->pending_drain = used;
			return ret;
		}
		evbuffer_drain(in, used);
	} while (ret == IMAP_PARSE_NEED_MORE && v.iov_len > 0);
	return ret;
}

/* ---- caller interface ---- */

const struct imap_command *imap_parser_command(struct imap_parser *parser)
{
	assert(parser->state == PS_DONE && parser->cmd != NULL);
	return parser->cmd;
}

struct imap_command *imap_parser_take_command(struct imap_parser *parser)
{
	struct imap_command *cmd = parser->cmd;

	assert(parser->state == PS_DONE && cmd != NULL);
	parser->cmd = NULL;
	return cmd;
}

const struct imap_command *imap_parser_partial(struct imap_parser *parser)
{
	struct imap_command *view = &parser->partial;

	memset(view, 0, sizeof(*view));
	if (parser->cmd == NULL)
		return view;
	if (parser->state == PS_DONE)
		return parser->cmd;
	view->tag = parser->cmd->tag;
	view->name = parser->cmd->name;
	if (parser->levels_count > 0 && !parser->cmd_over) {
		view->args = parser->levels[0].args;
		view->args_count = parser->levels[0].count;
	}
	return view;
}

const struct imap_literal_info *
imap_parser_literal_info(struct imap_parser *parser)
{
	return &parser->lit;
}

int imap_parser_literal_accept(struct imap_parser *parser,
			       enum imap_literal_mode mode)
{
	assert(parser->state == PS_LIT_WAIT);
	if (mode == IMAP_LITERAL_MEMORY &&
	    parser->lit.size > parser->set.max_literal_size)
		return -1;
	parser->lit_mode = mode;
	parser->lit_left = parser->lit.size;
	parser->lit_pos = 0;
	if (mode == IMAP_LITERAL_MEMORY)
		parser->lit_buf = xmalloc((size_t)parser->lit.size + 1);
	parser->state = PS_LIT_DATA;
	return 0;
}

void imap_parser_literal_chunk(struct imap_parser *parser,
			       const unsigned char **data_r, size_t *size_r,
			       bool *is_last_r)
{
	*data_r = parser->chunk;
	*size_r = parser->chunk_size;
	*is_last_r = parser->chunk_last;
}

void imap_parser_abort_command(struct imap_parser *parser)
{
	switch (parser->state) {
	case PS_LIT_WAIT:
		levels_clear(parser);
		parser->cmd_over = true;
		if (parser->lit.is_sync)
			parser->state = PS_LINE_START;
		else
			skip_literal_start(parser, parser->lit.size);
		break;
	case PS_LIT_DATA:
		levels_clear(parser);
		parser->cmd_over = true;
		skip_literal_start(parser, parser->lit_left);
		break;
	case PS_LINE_START:
	case PS_DONE:
	case PS_SKIP:
	case PS_SKIP_LIT:
	case PS_FATAL:
		break;
	default:
		/* mid-line (caller gave up on a partial command) */
		levels_clear(parser);
		parser->cmd_over = true;
		skip_start(parser);
		break;
	}
}

const struct imap_parse_error *imap_parser_error(struct imap_parser *parser)
{
	return &parser->error;
}

bool imap_parser_is_idle(struct imap_parser *parser)
{
	return parser->state == PS_LINE_START || parser->state == PS_DONE;
}


/* ---- accessors ---- */

static bool str_all(const char *s, size_t len, bool (*is_ok)(unsigned char))
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!is_ok((unsigned char)s[i]))
			return false;
	}
	return len > 0;
}

bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL) ||
	    !str_all(arg->str, (size_t)arg->len, imap_char_is_atom))
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r,
			 size_t *len_r)
{
	/* RFC 3516 7: literal8 is no string (only APPEND data and FETCH
	 * BINARY use it); it may hold NUL, which a C string would cut. */
	if (arg == NULL || arg->is_streamed || arg->is_literal8 ||
	    (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL))
		return false;
	*str_r = arg->str;
	if (len_r != NULL)
		*len_r = (size_t)arg->len;
	return true;
}

bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r,
			  size_t *len_r)
{
	if (imap_arg_get_string(arg, str_r, len_r))
		return true;
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL) ||
	    !str_all(arg->str, (size_t)arg->len, imap_char_is_astring))
		return false;
	*str_r = arg->str;
	if (len_r != NULL)
		*len_r = (size_t)arg->len;
	return true;
}

bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
			  size_t *len_r)
{
	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		if (len_r != NULL)
			*len_r = 0;
		return true;
	}
	return imap_arg_get_string(arg, str_r, len_r);
}

bool imap_arg_get_list_mailbox(const struct imap_arg *arg,
			       const char **str_r, size_t *len_r)
{
	if (imap_arg_get_string(arg, str_r, len_r))
		return true;
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL) ||
	    !str_all(arg->str, (size_t)arg->len, imap_char_is_list))
		return false;
	*str_r = arg->str;
	if (len_r != NULL)
		*len_r = (size_t)arg->len;
	return true;
}

bool imap_arg_get_list(const struct imap_arg *arg,
		       const struct imap_arg **list_r, size_t *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return false;
	*list_r = arg->list;
	*count_r = arg->list_count;
	return true;
}

bool imap_arg_atom_equals(const struct imap_arg *arg, const char *name)
{
	return arg != NULL &&
		(arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_NIL) &&
		strcasecmp(arg->str, name) == 0;
}
