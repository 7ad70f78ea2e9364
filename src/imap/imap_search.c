/* imap_search.c: SEARCH key parsing and evaluation (see imap_search.h).
 * The grammar is RFC 3501 section 9 "search-key" plus RFC 5032 OLDER /
 * YOUNGER and RFC 7162 MODSEQ; a list of keys is their AND (RFC 3501
 * 6.4.4). Sections: the key tree, parsing, evaluation from the index
 * record, then content matching (header, streamed MIME body). */
#include "imap/imap_search.h"
#include "imap/imap_date.h"
#include "imap/imap_seqset.h"

#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mail/decode.h"
#include "mail/message_parser.h"
#include "mail/mime_param.h"
#include "mail/rfc2047.h"
#include "mail/rfc5322.h"
#include "mail/unicode.h"

/* RFC 7162 mod-sequence-valzer: up to 2^63-1. */
#define SEARCH_MODSEQ_MAX UINT64_C(9223372036854775807)
#define SEARCH_CHARSET_MAX 64
#define SECS_PER_DAY 86400

/* ---- the key tree ---- */

enum key_type {
	KEY_AND,
	KEY_OR,
	KEY_NOT,
	KEY_ALL,
	KEY_SEQSET,
	KEY_UIDSET,
	KEY_FLAGS,		/* all of flags set */
	KEY_UNFLAGS,		/* none of flags set */
	KEY_KEYWORD,
	KEY_UNKEYWORD,
	KEY_RECENT,
	KEY_NEW,
	KEY_OLD,
	KEY_LARGER,
	KEY_SMALLER,
	KEY_BEFORE,
	KEY_ON,
	KEY_SINCE,
	KEY_OLDER,
	KEY_YOUNGER,
	KEY_MODSEQ,
	/* keys that need the message content */
	KEY_SENTBEFORE,
	KEY_SENTON,
	KEY_SENTSINCE,
	KEY_HEADER,
	KEY_BODY,
	KEY_TEXT,
};
#define KEY_FIRST_CONTENT KEY_SENTBEFORE

struct imap_search_key {
	enum key_type type;
	struct imap_search_key *child;	/* AND/OR/NOT operands */
	struct imap_search_key *next;	/* sibling */
	uint32_t flags;			/* FLAGS/UNFLAGS */
	int keyword;			/* bit, -1: no such keyword */
	uint64_t num;			/* sizes, seconds, modseq */
	int64_t day;			/* dates: days since the epoch */
	struct imap_seqset set;
	char *field;			/* HEADER field name */
	bool is_address;		/* FROM/TO/CC/BCC */
	unsigned char *needle;		/* folded UTF-8 search string */
	size_t needle_len;
	/* content keys, per message: YES/NO, MAYBE while unknown */
	enum imap_search_result result;
};

enum key_arg {
	ARG_NONE,
	ARG_STRING,	/* astring */
	ARG_HEADER,	/* field-name astring, then astring */
	ARG_DATE,
	ARG_NUMBER,	/* number (RFC 3501: 32 bit) */
	ARG_NZNUMBER,	/* RFC 5032 interval: nz-number */
	ARG_FLAG_KEYWORD,
	ARG_SEQSET,
	ARG_KEY,	/* NOT */
	ARG_KEY2,	/* OR */
	ARG_MODSEQ,
};

struct key_def {
	const char *name;
	enum key_type type;
	enum key_arg arg;
	uint32_t flags;		/* FLAGS/UNFLAGS */
	const char *field;	/* header keys */
};

static const struct key_def key_defs[] = {
	{ "ALL", KEY_ALL, ARG_NONE, 0, NULL },
	{ "ANSWERED", KEY_FLAGS, ARG_NONE, STORE_FLAG_ANSWERED, NULL },
	{ "BCC", KEY_HEADER, ARG_STRING, 0, "Bcc" },
	{ "BEFORE", KEY_BEFORE, ARG_DATE, 0, NULL },
	{ "BODY", KEY_BODY, ARG_STRING, 0, NULL },
	{ "CC", KEY_HEADER, ARG_STRING, 0, "Cc" },
	{ "DELETED", KEY_FLAGS, ARG_NONE, STORE_FLAG_DELETED, NULL },
	{ "DRAFT", KEY_FLAGS, ARG_NONE, STORE_FLAG_DRAFT, NULL },
	{ "FLAGGED", KEY_FLAGS, ARG_NONE, STORE_FLAG_FLAGGED, NULL },
	{ "FROM", KEY_HEADER, ARG_STRING, 0, "From" },
	{ "HEADER", KEY_HEADER, ARG_HEADER, 0, NULL },
	{ "KEYWORD", KEY_KEYWORD, ARG_FLAG_KEYWORD, 0, NULL },
	{ "LARGER", KEY_LARGER, ARG_NUMBER, 0, NULL },
	{ "MODSEQ", KEY_MODSEQ, ARG_MODSEQ, 0, NULL },
	{ "NEW", KEY_NEW, ARG_NONE, 0, NULL },
	{ "NOT", KEY_NOT, ARG_KEY, 0, NULL },
	{ "OLD", KEY_OLD, ARG_NONE, 0, NULL },
	{ "OLDER", KEY_OLDER, ARG_NZNUMBER, 0, NULL },
	{ "ON", KEY_ON, ARG_DATE, 0, NULL },
	{ "OR", KEY_OR, ARG_KEY2, 0, NULL },
	{ "RECENT", KEY_RECENT, ARG_NONE, 0, NULL },
	{ "SEEN", KEY_FLAGS, ARG_NONE, STORE_FLAG_SEEN, NULL },
	{ "SENTBEFORE", KEY_SENTBEFORE, ARG_DATE, 0, NULL },
	{ "SENTON", KEY_SENTON, ARG_DATE, 0, NULL },
	{ "SENTSINCE", KEY_SENTSINCE, ARG_DATE, 0, NULL },
	{ "SINCE", KEY_SINCE, ARG_DATE, 0, NULL },
	{ "SMALLER", KEY_SMALLER, ARG_NUMBER, 0, NULL },
	{ "SUBJECT", KEY_HEADER, ARG_STRING, 0, "Subject" },
	{ "TEXT", KEY_TEXT, ARG_STRING, 0, NULL },
	{ "TO", KEY_HEADER, ARG_STRING, 0, "To" },
	{ "UID", KEY_UIDSET, ARG_SEQSET, 0, NULL },
	{ "UNANSWERED", KEY_UNFLAGS, ARG_NONE, STORE_FLAG_ANSWERED, NULL },
	{ "UNDELETED", KEY_UNFLAGS, ARG_NONE, STORE_FLAG_DELETED, NULL },
	{ "UNDRAFT", KEY_UNFLAGS, ARG_NONE, STORE_FLAG_DRAFT, NULL },
	{ "UNFLAGGED", KEY_UNFLAGS, ARG_NONE, STORE_FLAG_FLAGGED, NULL },
	{ "UNKEYWORD", KEY_UNKEYWORD, ARG_FLAG_KEYWORD, 0, NULL },
	{ "UNSEEN", KEY_UNFLAGS, ARG_NONE, STORE_FLAG_SEEN, NULL },
	{ "YOUNGER", KEY_YOUNGER, ARG_NZNUMBER, 0, NULL },
};

struct imap_search_scratch;
static void imap_search_scratch_free(struct imap_search_scratch *s);

struct parse_ctx {
	const struct imap_search_env *env;
	const char *charset;	/* NULL: UTF-8 */
	const char *error;
	int error_code;
	struct imap_search_program *prog;
};

static struct imap_search_key *key_new(enum key_type type)
{
	struct imap_search_key *key = xcalloc(1, sizeof(*key));

	key->type = type;
	key->keyword = -1;
	return key;
}

static void key_free(struct imap_search_key *key)
{
	while (key != NULL) {
		struct imap_search_key *next = key->next;

		key_free(key->child);
		imap_seqset_free(&key->set);
		free(key->field);
		free(key->needle);
		free(key);
		key = next;
	}
}

static int parse_fail(struct parse_ctx *ctx, const char *error)
{
	if (ctx->error == NULL) {
		ctx->error = error;
		ctx->error_code = IMAP_SEARCH_ERR_SYNTAX;
	}
	return -1;
}

static const struct key_def *key_def_find(const char *name)
{
	for (size_t i = 0; i < sizeof(key_defs) / sizeof(key_defs[0]); i++) {
		if (strcasecmp(key_defs[i].name, name) == 0)
			return &key_defs[i];
	}
	return NULL;
}

/* A search string: converted to UTF-8 from the CHARSET and folded. */
static int parse_string(struct parse_ctx *ctx, const struct imap_arg *arg,
			struct imap_search_key *key)
{
	struct unicode_buf buf = { NULL, 0, 0, NULL, 0 };
	const char *str;
	char *utf8 = NULL;
	size_t len, utf8_len;

	if (!imap_arg_get_astring(arg, &str, &len))
		return parse_fail(ctx, "Invalid search string");
	if (ctx->charset != NULL) {
		if (rfc2047_charset_to_utf8(ctx->charset, str, len, &utf8,
					    &utf8_len) < 0)
			return parse_fail(ctx, "Invalid charset");
		str = utf8;
		len = utf8_len;
	}
	unicode_fold_append((const unsigned char *)str, len, &buf);
	free(utf8);
	unicode_buf_reserve(&buf, 1);
	buf.data[buf.len] = '\0';
	key->needle = buf.data;
	key->needle_len = buf.len;
	free(buf.scratch);
	return 0;
}

static int parse_date(struct parse_ctx *ctx, const struct imap_arg *arg,
		      struct imap_search_key *key)
{
	const char *str;
	size_t len;
	time_t t;

	/* RFC 3501: date = date-text / DQUOTE date-text DQUOTE */
	if ((arg == NULL || arg->type == IMAP_ARG_LITERAL) ||
	    !imap_arg_get_astring(arg, &str, &len) ||
	    imap_date_parse(str, len, &t) < 0)
		return parse_fail(ctx, "Invalid search date");
	key->day = (int64_t)t / 86400;
	return 0;
}

static int parse_number(struct parse_ctx *ctx, const struct imap_arg *arg,
			uint64_t max, bool nonzero, uint64_t *num_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM ||
	    str_to_u64z(arg->str, max, num_r) < 0 ||
	    (nonzero && *num_r == 0))
		return parse_fail(ctx, "Invalid search number");
	return 0;
}

/* Builds a set from the saved UIDs ("$", RFC 5182). */
static void saved_set(const struct imap_search_env *env,
		      struct imap_seqset *set)
{
	set->ranges = xreallocarray(NULL, env->saved_count + 1,
				    sizeof(*set->ranges));
	set->count = 0;
	set->has_star = false;
	for (size_t i = 0; i < env->saved_count; i++) {
		uint32_t uid = env->saved_uids[i];

		if (set->count > 0 &&
		    set->ranges[set->count - 1].last + 1 >= uid) {
			if (uid > set->ranges[set->count - 1].last)
				set->ranges[set->count - 1].last = uid;
			continue;
		}
		set->ranges[set->count].first = uid;
		set->ranges[set->count].last = uid;
		set->count++;
	}
}

static int parse_seqset(struct parse_ctx *ctx, const struct imap_arg *arg,
			struct imap_search_key *key)
{
	const char *str, *error;
	bool is_saved;

	/* '*' is no ATOM-CHAR: take the atom as it is */
	if (arg->type != IMAP_ARG_ATOM)
		return parse_fail(ctx, "Invalid sequence set");
	str = arg->str;
	if (imap_seqset_parse(str, strlen(str), key->type == KEY_UIDSET ?
			      ctx->env->max_uid : ctx->env->msg_count,
			      &key->set, &is_saved, &error) < 0)
		return parse_fail(ctx, error);
	if (is_saved) {
		/* RFC 5182 2.1: "$" is the saved UIDs in both forms */
		key->type = KEY_UIDSET;
		saved_set(ctx->env, &key->set);
	}
	return 0;
}

static int parse_keyword(struct parse_ctx *ctx, const struct imap_arg *arg,
			 struct imap_search_key *key)
{
	const char *name;
	unsigned idx;

	/* flag-keyword is an atom; "\\Seen" (not ATOM-CHARs) is taken as
	 * the system flag, like Dovecot does */
	if (arg->type != IMAP_ARG_ATOM)
		return parse_fail(ctx, "Invalid keyword");
	name = arg->str;
	/* system flags given as KEYWORD: as their flag key */
	static const struct { const char *name; uint32_t flag; } sys[] = {
		{ "\\Seen", STORE_FLAG_SEEN },
		{ "\\Answered", STORE_FLAG_ANSWERED },
		{ "\\Flagged", STORE_FLAG_FLAGGED },
		{ "\\Deleted", STORE_FLAG_DELETED },
		{ "\\Draft", STORE_FLAG_DRAFT },
	};
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (strcasecmp(name, sys[i].name) == 0) {
			key->type = key->type == KEY_KEYWORD ? KEY_FLAGS :
				KEY_UNFLAGS;
			key->flags = sys[i].flag;
			return 0;
		}
	}
	if (ctx->env->keyword_index != NULL &&
	    ctx->env->keyword_index(ctx->env->ctx, name, &idx) == 0 &&
	    idx < 64)
		key->keyword = (int)idx;
	return 0;
}

static int parse_key(struct parse_ctx *ctx, const struct imap_arg *args,
		     size_t count, size_t *pos, unsigned depth,
		     struct imap_search_key **key_r);

/* Keys args[0..count) as children of an AND key. */
static int parse_keys(struct parse_ctx *ctx, const struct imap_arg *args,
		      size_t count, unsigned depth,
		      struct imap_search_key *parent)
{
	struct imap_search_key **tail = &parent->child;
	size_t pos = 0;

	if (count == 0)
		return parse_fail(ctx, "Missing search key");
	while (pos < count) {
		if (parse_key(ctx, args, count, &pos, depth, tail) < 0)
			return -1;
		tail = &(*tail)->next;
	}
	return 0;
}

static int parse_modseq(struct parse_ctx *ctx, const struct imap_arg *args,
			size_t count, size_t *pos,
			struct imap_search_key *key)
{
	/* RFC 7162 3.1.5: MODSEQ [entry-name entry-type-req] modseq; the
	 * entry names a flag, we have one modseq for all of them */
	if (*pos < count && (args[*pos].type == IMAP_ARG_QUOTED ||
			     args[*pos].type == IMAP_ARG_LITERAL)) {
		if (*pos + 1 >= count ||
		    !(imap_arg_atom_equals(&args[*pos + 1], "priv") ||
		      imap_arg_atom_equals(&args[*pos + 1], "shared") ||
		      imap_arg_atom_equals(&args[*pos + 1], "all")))
			return parse_fail(ctx, "Invalid MODSEQ entry");
		*pos += 2;
	}
	if (*pos >= count)
		return parse_fail(ctx, "Missing MODSEQ value");
	ctx->prog->has_modseq = true;
	return parse_number(ctx, &args[(*pos)++], SEARCH_MODSEQ_MAX, false,
			    &key->num);
}

/* The argument(s) of key def at args[*pos..). */
static int parse_key_args(struct parse_ctx *ctx, const struct key_def *def,
			  const struct imap_arg *args, size_t count,
			  size_t *pos, unsigned depth,
			  struct imap_search_key *key)
{
	const struct imap_arg *arg = *pos < count ? &args[*pos] : NULL;
	const char *str;

	if (def->arg == ARG_NONE)
		return 0;
	if (def->arg == ARG_MODSEQ)
		return parse_modseq(ctx, args, count, pos, key);
	if (arg == NULL)
		return parse_fail(ctx, "Missing search key argument");
	switch (def->arg) {
	case ARG_STRING:
		(*pos)++;
		return parse_string(ctx, arg, key);
	case ARG_HEADER:
		if (!imap_arg_get_astring(arg, &str, NULL) || *str == '\0' ||
		    *pos + 1 >= count)
			return parse_fail(ctx, "Invalid HEADER field");
		key->field = xstrdup(str);
		*pos += 2;
		return parse_string(ctx, arg + 1, key);
	case ARG_DATE:
		(*pos)++;
		return parse_date(ctx, arg, key);
	case ARG_NUMBER:
	case ARG_NZNUMBER:
		(*pos)++;
		/* RFC 9051 9: LARGER/SMALLER take number64 */
		return parse_number(ctx, arg, def->arg == ARG_NUMBER ?
				    SEARCH_MODSEQ_MAX : UINT32_MAX,
				    def->arg == ARG_NZNUMBER, &key->num);
	case ARG_FLAG_KEYWORD:
		(*pos)++;
		return parse_keyword(ctx, arg, key);
	case ARG_SEQSET:
		(*pos)++;
		return parse_seqset(ctx, arg, key);
	case ARG_KEY:
		return parse_key(ctx, args, count, pos, depth + 1,
				 &key->child);
	case ARG_KEY2:
		if (parse_key(ctx, args, count, pos, depth + 1,
			      &key->child) < 0)
			return -1;
		if (*pos >= count)
			return parse_fail(ctx, "OR needs two keys");
		return parse_key(ctx, args, count, pos, depth + 1,
				 &key->child->next);
	default:
		break;
	}
	return parse_fail(ctx, "Invalid search key");
}

static void key_note_content(struct parse_ctx *ctx,
			     struct imap_search_key *key)
{
	if (key->type >= KEY_FIRST_CONTENT) {
		ctx->prog->needs_content = true;
		key->result = IMAP_SEARCH_MAYBE;
	}
}

static int parse_key(struct parse_ctx *ctx, const struct imap_arg *args,
		     size_t count, size_t *pos, unsigned depth,
		     struct imap_search_key **key_r)
{
	const struct imap_arg *arg = &args[*pos];
	const struct key_def *def;
	const char *name;

	if (depth > IMAP_SEARCH_MAX_DEPTH)
		return parse_fail(ctx, "Search keys nested too deeply");
	if (arg->type == IMAP_ARG_LIST) {
		/* RFC 3501 9: "(" search-key *(SP search-key) ")" */
		*key_r = key_new(KEY_AND);
		(*pos)++;
		return parse_keys(ctx, arg->list, arg->list_count, depth + 1,
				  *key_r);
	}
	if (arg->type != IMAP_ARG_ATOM)
		return parse_fail(ctx, "Invalid search key");
	name = arg->str;
	if ((name[0] >= '0' && name[0] <= '9') || name[0] == '*' ||
	    name[0] == '$') {
		*key_r = key_new(KEY_SEQSET);
		return parse_seqset(ctx, &args[(*pos)++], *key_r);
	}
	if ((def = key_def_find(name)) == NULL)
		return parse_fail(ctx, "Unknown search key");
	(*pos)++;
	*key_r = key_new(def->type);
	(*key_r)->flags = def->flags;
	if (def->field != NULL) {
		(*key_r)->field = xstrdup(def->field);
		(*key_r)->is_address = def->type == KEY_HEADER &&
			strcasecmp(def->field, "Subject") != 0;
	}
	if (parse_key_args(ctx, def, args, count, pos, depth, *key_r) < 0)
		return -1;
	key_note_content(ctx, *key_r);
	return 0;
}

/* "CHARSET name": -1 if iconv does not know it. */
static int parse_charset(struct parse_ctx *ctx, const struct imap_arg *arg)
{
	const char *name;
	char *out;
	size_t out_len;

	if (!imap_arg_get_astring(arg, &name, NULL) || *name == '\0' ||
	    strlen(name) >= SEARCH_CHARSET_MAX)
		return parse_fail(ctx, "Invalid CHARSET");
	if (rfc2047_charset_to_utf8(name, "", 0, &out, &out_len) < 0) {
		ctx->error = "[BADCHARSET (UTF-8 US-ASCII)] Unknown charset";
		ctx->error_code = IMAP_SEARCH_ERR_CHARSET;
		return -1;
	}
	free(out);
	if (strcasecmp(name, "UTF-8") != 0 &&
	    strcasecmp(name, "US-ASCII") != 0)
		ctx->charset = name;
	return 0;
}

int imap_search_parse(const struct imap_arg *args, size_t count,
		      const struct imap_search_env *env,
		      struct imap_search_program **prog_r,
		      const char **error_r)
{
	struct parse_ctx ctx = { env, NULL, NULL, 0, NULL };
	struct imap_search_program *prog = xcalloc(1, sizeof(*prog));

	ctx.prog = prog;
	prog->root = key_new(KEY_AND);
	prog->now = env->now;
	if (count >= 2 && imap_arg_atom_equals(&args[0], "CHARSET")) {
		if (parse_charset(&ctx, &args[1]) < 0)
			goto fail;
		args += 2;
		count -= 2;
	}
	if (parse_keys(&ctx, args, count, 0, prog->root) < 0)
		goto fail;
	*prog_r = prog;
	return 0;
fail:
	imap_search_free(&prog);
	*error_r = ctx.error;
	return ctx.error_code;
}

void imap_search_free(struct imap_search_program **progp)
{
	struct imap_search_program *prog = *progp;

	if (prog == NULL)
		return;
	key_free(prog->root);
	imap_search_scratch_free(prog->scratch);
	free(prog);
	*progp = NULL;
}

/* ---- evaluation from the index record ---- */

struct eval_ctx {
	struct imap_search_program *prog;
	const struct imap_search_msg *m;
	bool use_content;	/* content keys' results are known */
	bool has_day;
	int64_t day;		/* local day of the internal date */
};

static int64_t floor_div(int64_t a, int64_t b)
{
	return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* RFC 3501 6.4.4: the internal date "disregarding time and timezone":
 * its day in the server's time zone. */
static int64_t internal_day(struct eval_ctx *ec)
{
	time_t t = ec->m->msg->internal_date;

	if (!ec->has_day) {
		ec->day = floor_div((int64_t)t + imap_local_offset_secs(t),
				    SECS_PER_DAY);
		ec->has_day = true;
	}
	return ec->day;
}

static enum imap_search_result yes_if(bool cond)
{
	return cond ? IMAP_SEARCH_YES : IMAP_SEARCH_NO;
}

static enum imap_search_result eval_key(struct eval_ctx *ec,
					const struct imap_search_key *key);

static enum imap_search_result eval_list(struct eval_ctx *ec,
					 const struct imap_search_key *key)
{
	/* AND: any NO decides; OR: any YES decides */
	enum imap_search_result decisive = key->type == KEY_AND ?
		IMAP_SEARCH_NO : IMAP_SEARCH_YES;
	enum imap_search_result res = key->type == KEY_AND ?
		IMAP_SEARCH_YES : IMAP_SEARCH_NO;

	for (const struct imap_search_key *c = key->child; c != NULL;
	     c = c->next) {
		enum imap_search_result r = eval_key(ec, c);

		if (r == decisive)
			return r;
		if (r == IMAP_SEARCH_MAYBE)
			res = IMAP_SEARCH_MAYBE;
	}
	return res;
}

static enum imap_search_result eval_key(struct eval_ctx *ec,
					const struct imap_search_key *key)
{
	const struct store_msg *msg = ec->m->msg;
	enum imap_search_result r;

	switch (key->type) {
	case KEY_AND:
	case KEY_OR:
		return eval_list(ec, key);
	case KEY_NOT:
		r = eval_key(ec, key->child);
		return r == IMAP_SEARCH_MAYBE ? r : yes_if(r == IMAP_SEARCH_NO);
	case KEY_ALL:
		return IMAP_SEARCH_YES;
	case KEY_SEQSET:
		return yes_if(imap_seqset_contains(&key->set, ec->m->seq));
	case KEY_UIDSET:
		return yes_if(imap_seqset_contains(&key->set, msg->uid));
	case KEY_FLAGS:
		return yes_if((msg->flags & key->flags) == key->flags);
	case KEY_UNFLAGS:
		return yes_if((msg->flags & key->flags) == 0);
	case KEY_KEYWORD:
		return yes_if(key->keyword >= 0 &&
			      (msg->keywords >> key->keyword & 1) != 0);
	case KEY_UNKEYWORD:
		return yes_if(key->keyword < 0 ||
			      (msg->keywords >> key->keyword & 1) == 0);
	case KEY_RECENT:
		return yes_if(ec->m->is_recent);
	case KEY_NEW:
		return yes_if(ec->m->is_recent &&
			      (msg->flags & STORE_FLAG_SEEN) == 0);
	case KEY_OLD:
		return yes_if(!ec->m->is_recent);
	case KEY_LARGER:
		return yes_if(msg->vsize > key->num);
	case KEY_SMALLER:
		return yes_if(msg->vsize < key->num);
	case KEY_BEFORE:
		return yes_if(internal_day(ec) < key->day);
	case KEY_ON:
		return yes_if(internal_day(ec) == key->day);
	case KEY_SINCE:
		return yes_if(internal_day(ec) >= key->day);
	case KEY_OLDER:
		/* RFC 5032 3 */
		return yes_if((int64_t)msg->internal_date <=
			      (int64_t)ec->prog->now - (int64_t)key->num);
	case KEY_YOUNGER:
		return yes_if((int64_t)msg->internal_date >
			      (int64_t)ec->prog->now - (int64_t)key->num);
	case KEY_MODSEQ:
		/* RFC 7162 3.1.5: modseq equal or greater */
		return yes_if(msg->modseq >= key->num);
	default:
		return ec->use_content ? key->result : IMAP_SEARCH_MAYBE;
	}
}

enum imap_search_result
imap_search_eval_cheap(struct imap_search_program *prog,
		       const struct imap_search_msg *m)
{
	struct eval_ctx ec = { prog, m, false, false, 0 };

	return eval_key(&ec, prog->root);
}

/* ---- content matching ---- */

/* Room before decoded text for bytes carried from the previous chunk
 * (an incomplete character for folding or for iconv). */
#define STAGE_CARRY_MAX 64
/* iconv: worst growth of one input byte to UTF-8 (single-byte charsets
 * reach 3 bytes, e.g. TIS-620; UTF-16 pairs give 4 for 4). */
#define CONV_GROWTH 3

struct imap_search_scratch {
	/* content keys of the tree */
	struct imap_search_key **keys;
	size_t key_count;
	unsigned char *hdr;		/* IMAP_SEARCH_HEADER_MAX bytes */
	size_t hdr_read;		/* bytes of the file in hdr */
	size_t hdr_len;			/* the header block */
	unsigned char *raw;		/* IMAP_SEARCH_CHUNK_SIZE */
	unsigned char *dec;		/* decoded chunk */
	unsigned char *stage;		/* UTF-8 text waiting to be folded */
	size_t stage_len, stage_cap;
	struct unicode_buf folded;	/* overlap + newly folded text */
	size_t overlap;			/* longest pending needle - 1 */
	struct unicode_buf tmp;		/* header values */
	iconv_t cd;			/* (iconv_t)-1: text is UTF-8 */
	unsigned char icarry[16];	/* incomplete iconv input */
	size_t icarry_len;
	/* the message being evaluated */
	imap_search_parts_get_func *parts_get;	/* may be NULL */
	imap_search_parts_put_func *parts_put;	/* may be NULL */
};

static void collect_keys(struct imap_search_scratch *s,
			 struct imap_search_key *key)
{
	for (; key != NULL; key = key->next) {
		if (key->type >= KEY_FIRST_CONTENT) {
			s->keys = xreallocarray(s->keys, s->key_count + 1,
						sizeof(*s->keys));
			s->keys[s->key_count++] = key;
		}
		collect_keys(s, key->child);
	}
}

static struct imap_search_scratch *
scratch_get(struct imap_search_program *prog)
{
	struct imap_search_scratch *s = prog->scratch;

	if (s != NULL)
		return s;
	s = xcalloc(1, sizeof(*s));
	collect_keys(s, prog->root);
	s->hdr = xmalloc(IMAP_SEARCH_HEADER_MAX);
	s->raw = xmalloc(IMAP_SEARCH_CHUNK_SIZE);
	s->dec = xmalloc(DECODE_OUT_MAX(IMAP_SEARCH_CHUNK_SIZE));
	s->stage_cap = STAGE_CARRY_MAX +
		CONV_GROWTH * DECODE_OUT_MAX(IMAP_SEARCH_CHUNK_SIZE) + 16;
	s->stage = xmalloc(s->stage_cap);
	s->cd = (iconv_t)-1;
	prog->scratch = s;
	return s;
}

static void imap_search_scratch_free(struct imap_search_scratch *s)
{
	if (s == NULL)
		return;
	if (s->cd != (iconv_t)-1)
		iconv_close(s->cd);
	free(s->keys);
	free(s->hdr);
	free(s->raw);
	free(s->dec);
	free(s->stage);
	unicode_buf_free(&s->folded);
	unicode_buf_free(&s->tmp);
	free(s);
}

static bool is_text_key(const struct imap_search_key *key)
{
	return (key->type == KEY_BODY || key->type == KEY_TEXT) &&
		key->result == IMAP_SEARCH_MAYBE;
}

/* Longest pending body needle - 1: the bytes kept between chunks. */
static size_t body_overlap(const struct imap_search_scratch *s,
			   size_t *pending_r)
{
	size_t max = 0, pending = 0;

	for (size_t i = 0; i < s->key_count; i++) {
		if (!is_text_key(s->keys[i]))
			continue;
		pending++;
		if (s->keys[i]->needle_len > max)
			max = s->keys[i]->needle_len;
	}
	*pending_r = pending;
	return max > 0 ? max - 1 : 0;
}

static bool needle_in(const struct imap_search_key *key,
		      const unsigned char *text, size_t len)
{
	/* len > 0: text may be NULL for an empty value (fuzz_search) */
	return key->needle_len == 0 || (len > 0 &&
		memmem(text, len, key->needle, key->needle_len) != NULL);
}

/* Folds text and matches it against key (one header value). */
static bool match_value(struct imap_search_scratch *s,
			const struct imap_search_key *key,
			const char *text, size_t len)
{
	s->tmp.len = 0;
	unicode_fold_append((const unsigned char *)text, len, &s->tmp);
	return needle_in(key, s->tmp.data, s->tmp.len);
}

/* ---- header ---- */

/* "name <mailbox@domain>, ..." with RFC 2047 decoded names. */
static char *address_text(const char *value, size_t len, size_t *len_r)
{
	struct rfc5322_address *list = rfc5322_address_parse(value, len);
	struct unicode_buf b = { NULL, 0, 0, NULL, 0 };
	char *name;
	size_t name_len;

	for (struct rfc5322_address *a = list; a != NULL; a = a->next) {
		if (a->name != NULL) {
			rfc2047_decode(a->name, strlen(a->name), &name,
				       &name_len);
			unicode_buf_reserve(&b, name_len + 1);
			memcpy(b.data + b.len, name, name_len);
			b.len += name_len;
			b.data[b.len++] = ' ';
			free(name);
		}
		if (a->mailbox == NULL)
			continue;
		unicode_buf_reserve(&b, strlen(a->mailbox) + 5 +
				    (a->domain != NULL ? strlen(a->domain) : 0));
		b.len += (size_t)snprintf((char *)b.data + b.len,
					  b.cap - b.len, "<%s%s%s>, ",
					  a->mailbox, a->domain != NULL ?
					  "@" : "", a->domain != NULL ?
					  a->domain : "");
	}
	rfc5322_address_free(&list);
	*len_r = b.len;
	return (char *)b.data;
}

/* HEADER/FROM/...: the decoded value, or for address fields also the
 * parsed address list. */
static bool match_field(struct imap_search_scratch *s,
			const struct imap_search_key *key,
			const char *decoded, size_t decoded_len,
			const char *unfolded, size_t unfolded_len)
{
	char *addr;
	size_t addr_len;
	bool ret;

	if (match_value(s, key, decoded, decoded_len))
		return true;
	if (!key->is_address)
		return false;
	addr = address_text(unfolded, unfolded_len, &addr_len);
	ret = addr != NULL && match_value(s, key, addr, addr_len);
	free(addr);
	return ret;
}

static bool field_is(const struct rfc5322_field *f, const char *name)
{
	return f->name_len == strlen(name) &&
		strncasecmp(f->name, name, f->name_len) == 0;
}

/* Header fields the body scan needs. */
struct header_info {
	const char *ctype, *cte, *date;
	size_t ctype_len, cte_len, date_len;
};

static void note_field(const struct rfc5322_field *f, struct header_info *hi)
{
	if (hi->ctype == NULL && field_is(f, "Content-Type")) {
		hi->ctype = f->value;
		hi->ctype_len = f->value_len;
	} else if (hi->cte == NULL &&
		   field_is(f, "Content-Transfer-Encoding")) {
		hi->cte = f->value;
		hi->cte_len = f->value_len;
	} else if (hi->date == NULL && field_is(f, "Date")) {
		hi->date = f->value;
		hi->date_len = f->value_len;
	}
}

/* Matches one field against the pending HEADER and TEXT keys. */
static void match_header_field(struct imap_search_scratch *s,
			       const struct rfc5322_field *f)
{
	char *unfolded = NULL, *decoded = NULL, *line;
	size_t unfolded_len, decoded_len, line_len;

	for (size_t i = 0; i < s->key_count; i++) {
		struct imap_search_key *key = s->keys[i];

		if (key->result != IMAP_SEARCH_MAYBE ||
		    (key->type != KEY_HEADER && key->type != KEY_TEXT) ||
		    (key->type == KEY_HEADER && !field_is(f, key->field)))
			continue;
		if (decoded == NULL) {
			unfolded = rfc5322_unfold(f->value, f->value_len,
						  &unfolded_len);
			rfc2047_decode(unfolded, unfolded_len, &decoded,
				       &decoded_len);
		}
		if (key->type == KEY_HEADER) {
			if (match_field(s, key, decoded, decoded_len,
					unfolded, unfolded_len))
				key->result = IMAP_SEARCH_YES;
			continue;
		}
		/* TEXT: "Name: value" */
		line = xasprintf("%.*s: %s", (int)f->name_len, f->name,
				 decoded);
		line_len = strlen(line);
		if (match_value(s, key, line, line_len))
			key->result = IMAP_SEARCH_YES;
		free(line);
	}
	free(unfolded);
	free(decoded);
}

/* SENT*: the Date: header's day in its own zone (RFC 3501 6.4.4
 * "disregarding time and timezone"); the internal date without one. */
static void match_sent(struct imap_search_scratch *s, struct eval_ctx *ec,
		       const struct header_info *hi)
{
	time_t t;
	int tz;
	int64_t day;

	if (hi->date != NULL &&
	    rfc5322_date_parse(hi->date, hi->date_len, &t, &tz) == 0)
		day = floor_div((int64_t)t + (int64_t)tz * 60, SECS_PER_DAY);
	else
		day = internal_day(ec);
	for (size_t i = 0; i < s->key_count; i++) {
		struct imap_search_key *key = s->keys[i];

		if (key->type == KEY_SENTBEFORE)
			key->result = yes_if(day < key->day);
		else if (key->type == KEY_SENTON)
			key->result = yes_if(day == key->day);
		else if (key->type == KEY_SENTSINCE)
			key->result = yes_if(day >= key->day);
	}
}

/* End of the header block in hdr[0..len): the offset after the blank
 * line, or 0 when there is none yet. */
static size_t header_end(const unsigned char *hdr, size_t len)
{
	const unsigned char *p = hdr, *end = hdr + len;

	if (len > 0 && hdr[0] == '\n')
		return 1;
	if (len > 1 && hdr[0] == '\r' && hdr[1] == '\n')
		return 2;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p++;
		if (p < end && *p == '\n')
			return (size_t)(p + 1 - hdr);
		if (p + 1 < end && p[0] == '\r' && p[1] == '\n')
			return (size_t)(p + 2 - hdr);
	}
	return 0;
}

/* Reads the header (and what follows it in the same reads) into
 * s->hdr. */
static int read_header(struct imap_search_scratch *s,
		       imap_search_read_func *read, void *ctx)
{
	size_t end = 0;
	ssize_t n;

	s->hdr_read = 0;
	while (s->hdr_read < IMAP_SEARCH_HEADER_MAX) {
		size_t want = IMAP_SEARCH_HEADER_MAX - s->hdr_read;

		if (want > IMAP_SEARCH_CHUNK_SIZE)
			want = IMAP_SEARCH_CHUNK_SIZE;
		n = read(ctx, s->hdr_read, s->hdr + s->hdr_read, want);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		s->hdr_read += (size_t)n;
		if ((end = header_end(s->hdr, s->hdr_read)) > 0)
			break;
	}
	s->hdr_len = end > 0 ? end : s->hdr_read;
	return 0;
}

static void search_header(struct imap_search_scratch *s, struct eval_ctx *ec,
			  struct header_info *hi)
{
	struct rfc5322_field f;
	size_t pos = 0;

	memset(hi, 0, sizeof(*hi));
	while (rfc5322_header_next((const char *)s->hdr, s->hdr_len, &pos,
				   &f)) {
		if (f.name_len == 0)
			continue;
		note_field(&f, hi);
		match_header_field(s, &f);
	}
	for (size_t i = 0; i < s->key_count; i++) {
		if (s->keys[i]->type == KEY_HEADER &&
		    s->keys[i]->result == IMAP_SEARCH_MAYBE)
			s->keys[i]->result = IMAP_SEARCH_NO;
	}
	match_sent(s, ec, hi);
}

/* ---- body text ---- */

/* Matches the folded text (overlap + new) against the pending text keys
 * and keeps the overlap. Returns true when none is pending any more. */
static bool match_folded(struct imap_search_scratch *s)
{
	size_t pending;

	for (size_t i = 0; i < s->key_count; i++) {
		struct imap_search_key *key = s->keys[i];

		if (is_text_key(key) &&
		    needle_in(key, s->folded.data, s->folded.len))
			key->result = IMAP_SEARCH_YES;
	}
	s->overlap = body_overlap(s, &pending);
	if (s->folded.len > s->overlap) {
		memmove(s->folded.data, s->folded.data + s->folded.len -
			s->overlap, s->overlap);
		s->folded.len = s->overlap;
	}
	return pending == 0;
}

/* Folds the staged UTF-8 text (all of it when is_last) and matches. */
static bool stage_flush(struct imap_search_scratch *s, bool is_last)
{
	size_t n = is_last ? s->stage_len :
		unicode_fold_safe_len(s->stage, s->stage_len);

	unicode_fold_append(s->stage, n, &s->folded);
	memmove(s->stage, s->stage + n, s->stage_len - n);
	s->stage_len -= n;
	return match_folded(s);
}

/* Converts in[0..len) with s->cd into the stage. */
static bool stage_convert(struct imap_search_scratch *s,
			  const unsigned char *in, size_t len)
{
	char *ip = (char *)in, *op;
	size_t ileft = len, oleft;

	while (ileft > 0) {
		op = (char *)s->stage + s->stage_len;
		oleft = s->stage_cap - s->stage_len;
		if (iconv(s->cd, &ip, &ileft, &op, &oleft) != (size_t)-1)
			s->stage_len = (size_t)((unsigned char *)op - s->stage);
		else {
			s->stage_len = (size_t)((unsigned char *)op - s->stage);
			if (errno == EINVAL) {
				/* incomplete character: keep it */
				if (ileft <= sizeof(s->icarry)) {
					memcpy(s->icarry, ip, ileft);
					s->icarry_len = ileft;
				}
				break;
			}
			if (errno == EILSEQ) {
				ip++;
				ileft--;
				if (s->stage_cap - s->stage_len >= 3) {
					memcpy(s->stage + s->stage_len,
					       "\xef\xbf\xbd", 3);
					s->stage_len += 3;
				}
			} else if (errno != E2BIG) {
				break;
			}
			/* E2BIG: fold what we have, go on */
		}
		if (stage_flush(s, false))
			return true;
	}
	return false;
}

/* Decoded text of a part: into the stage (converted when needed). */
static bool text_feed(struct imap_search_scratch *s, const unsigned char *in,
		      size_t len)
{
	unsigned char joined[2 * sizeof(s->icarry)];
	size_t take;

	if (s->cd == (iconv_t)-1) {
		memcpy(s->stage + s->stage_len, in, len);
		s->stage_len += len;
		return stage_flush(s, false);
	}
	if (s->icarry_len > 0) {
		/* complete the carried character from the new bytes */
		take = len < sizeof(s->icarry) ? len : sizeof(s->icarry);
		memcpy(joined, s->icarry, s->icarry_len);
		memcpy(joined + s->icarry_len, in, take);
		len -= take;
		in += take;
		take += s->icarry_len;
		s->icarry_len = 0;
		if (stage_convert(s, joined, take))
			return true;
		if (s->icarry_len > 0 && len > 0) {
			/* still incomplete with more input: must be junk */
			s->icarry_len = 0;
		}
	}
	return stage_convert(s, in, len);
}

/* A part's body: bytes of one chunk, through the CTE decoder. */
static bool part_feed(struct imap_search_scratch *s, struct decode_state *ds,
		      const unsigned char *raw, size_t len)
{
	size_t n;

	if (ds->type == DECODE_NONE && s->cd == (iconv_t)-1) {
		/* the common case: no copy into s->dec */
		while (len > 0) {
			n = len < IMAP_SEARCH_CHUNK_SIZE ? len :
				IMAP_SEARCH_CHUNK_SIZE;
			if (text_feed(s, raw, n))
				return true;
			raw += n;
			len -= n;
		}
		return false;
	}
	while (len > 0) {
		n = len < IMAP_SEARCH_CHUNK_SIZE ? len :
			IMAP_SEARCH_CHUNK_SIZE;
		if (text_feed(s, s->dec, decode_feed(ds, raw, n, s->dec)))
			return true;
		raw += n;
		len -= n;
	}
	return false;
}

static bool is_utf8_charset(const char *cs)
{
	return cs == NULL || *cs == '\0' || strcasecmp(cs, "utf-8") == 0 ||
		strcasecmp(cs, "utf8") == 0 || strcasecmp(cs, "us-ascii") == 0;
}

/* Sets up decoding of a part from its Content-Type and CTE values. */
static void part_begin(struct imap_search_scratch *s, struct decode_state *ds,
		       const char *ctype, size_t ctype_len,
		       const char *cte, size_t cte_len)
{
	struct mime_params params = { NULL, 0 };
	char *type = NULL, *subtype = NULL;
	const char *cs = NULL;

	decode_init(ds, decode_type_parse(cte, cte_len));
	if (ctype != NULL) {
		mime_content_type_parse(ctype, ctype_len, &type, &subtype,
					&params);
		cs = mime_params_get(&params, "charset");
	}
	if (s->cd != (iconv_t)-1)
		iconv_close(s->cd);
	s->cd = (iconv_t)-1;
	/* unknown charsets are searched as they are (like UTF-8) */
	if (!is_utf8_charset(cs))
		s->cd = iconv_open("UTF-8", cs);
	s->stage_len = 0;
	s->icarry_len = 0;
	s->folded.len = 0;
	free(type);
	free(subtype);
	mime_params_free(&params);
}

static bool part_end(struct imap_search_scratch *s, struct decode_state *ds)
{
	unsigned char tail[DECODE_OUT_MAX(0)];
	size_t n = decode_finish(ds, tail);
	char *op;
	size_t oleft;

	if (n > 0 && text_feed(s, tail, n))
		return true;
	if (s->cd != (iconv_t)-1) {
		op = (char *)s->stage + s->stage_len;
		oleft = s->stage_cap - s->stage_len;
		(void)iconv(s->cd, NULL, NULL, &op, &oleft);
		s->stage_len = (size_t)((unsigned char *)op - s->stage);
	}
	return stage_flush(s, true);
}

/* Searches bytes [start, end) of the file (end UINT64_MAX: to EOF) as one
 * text part. Returns 1 when every text key matched, 0, or -1. */
static int scan_range(struct imap_search_scratch *s,
		      struct decode_state *ds, uint64_t start, uint64_t end,
		      imap_search_read_func *read, void *ctx)
{
	uint64_t off = start;
	ssize_t n;

	/* what read_header already has */
	if (off < s->hdr_read) {
		size_t len = s->hdr_read - (size_t)off;

		if (end - off < len)
			len = (size_t)(end - off);
		if (part_feed(s, ds, s->hdr + off, len))
			return 1;
		off += len;
		if (off < s->hdr_read || off == end)
			return part_end(s, ds) ? 1 : 0;
	}
	while (off < end) {
		size_t want = IMAP_SEARCH_CHUNK_SIZE;

		if (end - off < want)
			want = (size_t)(end - off);
		if ((n = read(ctx, off, s->raw, want)) < 0)
			return -1;
		if (n == 0)
			break;
		if (part_feed(s, ds, s->raw, (size_t)n))
			return 1;
		off += (uint64_t)n;
	}
	return part_end(s, ds) ? 1 : 0;
}

/* Walks a MIME tree: text leaves are searched. */
static int scan_parts(struct imap_search_scratch *s,
		      const struct message_part *part,
		      imap_search_read_func *read, void *ctx)
{
	struct decode_state ds;
	int ret;

	for (; part != NULL; part = part->next) {
		if (part->children != NULL) {
			if ((ret = scan_parts(s, part->children, read,
					      ctx)) != 0)
				return ret;
			continue;
		}
		if ((part->flags & MESSAGE_PART_FLAG_TEXT) == 0 ||
		    (part->flags & (MESSAGE_PART_FLAG_MULTIPART |
				    MESSAGE_PART_FLAG_MESSAGE_RFC822)) != 0)
			continue;
		part_begin(s, &ds, part->fields[MESSAGE_FIELD_CONTENT_TYPE],
			   part->field_lens[MESSAGE_FIELD_CONTENT_TYPE],
			   part->fields[MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING],
			   part->field_lens[
				MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING]);
		ret = scan_range(s, &ds, part->body_offset, part->body_offset +
				 part->body.physical, read, ctx);
		if (ret != 0)
			return ret;
	}
	return 0;
}

/* The MIME tree streamed through the parser (the header block's reads
 * first), or NULL on a read error. */
static struct message_part *parse_mime(struct imap_search_scratch *s,
				       imap_search_read_func *read, void *ctx)
{
	struct message_parser *parser = message_parser_create(NULL);
	uint64_t off = s->hdr_read;
	ssize_t n;

	message_parser_feed(parser, s->hdr, s->hdr_read);
	while ((n = read(ctx, off, s->raw, IMAP_SEARCH_CHUNK_SIZE)) > 0) {
		message_parser_feed(parser, s->raw, (size_t)n);
		off += (uint64_t)n;
	}
	if (n < 0) {
		message_parser_destroy(&parser);
		return NULL;
	}
	return message_parser_finish(&parser);
}

/* A multipart or message/ * message: the MIME tree (cached, or parsed
 * and offered to the cache), then its text parts, so with a cached tree
 * the file is read once. */
static int scan_mime(struct imap_search_scratch *s,
		     imap_search_read_func *read, void *ctx)
{
	struct message_part *root = NULL;
	int ret;

	if (s->parts_get != NULL)
		root = s->parts_get(ctx);
	if (root == NULL) {
		if ((root = parse_mime(s, read, ctx)) == NULL)
			return -1;
		if (s->parts_put != NULL)
			s->parts_put(ctx, root);
	}
	ret = scan_parts(s, root, read, ctx);
	message_part_free(&root);
	return ret;
}

static bool ctype_is(const char *type, const char *name)
{
	return strcasecmp(type, name) == 0;
}

/* BODY / TEXT: the message's text parts. */
static int search_body(struct imap_search_scratch *s,
		       const struct header_info *hi,
		       imap_search_read_func *read, void *ctx)
{
	struct mime_params params = { NULL, 0 };
	char *type = NULL, *subtype = NULL;
	struct decode_state ds;
	bool is_text = true, is_mime = false;

	if (hi->ctype != NULL) {
		mime_content_type_parse(hi->ctype, hi->ctype_len, &type,
					&subtype, &params);
		is_mime = ctype_is(type, "multipart") ||
			ctype_is(type, "message");
		/* RFC 2045 5.2: a broken type is text/plain */
		is_text = *type == '\0' || *subtype == '\0' ||
			ctype_is(type, "text");
		free(type);
		free(subtype);
		mime_params_free(&params);
	}
	if (is_mime)
		return scan_mime(s, read, ctx);
	if (!is_text)
		return 0;
	part_begin(s, &ds, hi->ctype, hi->ctype_len, hi->cte, hi->cte_len);
	return scan_range(s, &ds, s->hdr_len, UINT64_MAX, read, ctx);
}

int imap_search_eval_content(struct imap_search_program *prog,
			     const struct imap_search_msg *m,
			     imap_search_read_func *read, void *read_ctx)
{
	return imap_search_eval_content_parts(prog, m, read, read_ctx, NULL,
					      NULL);
}

/* imap_search_eval_content; a multipart message's tree comes from
 * parts_get(read_ctx) when it returns one (freed here), else is parsed
 * and given to parts_put(read_ctx, root) (not kept). */
int imap_search_eval_content_parts(struct imap_search_program *prog,
				   const struct imap_search_msg *m,
				   imap_search_read_func *read, void *read_ctx,
				   imap_search_parts_get_func *parts_get,
				   imap_search_parts_put_func *parts_put)
{
	struct imap_search_scratch *s = scratch_get(prog);
	struct eval_ctx ec = { prog, m, true, false, 0 };
	struct header_info hi;
	enum imap_search_result r;
	size_t pending;

	s->parts_get = parts_get;
	s->parts_put = parts_put;

	for (size_t i = 0; i < s->key_count; i++)
		s->keys[i]->result = IMAP_SEARCH_MAYBE;
	if (read_header(s, read, read_ctx) < 0)
		return -1;
	search_header(s, &ec, &hi);
	if ((r = eval_key(&ec, prog->root)) != IMAP_SEARCH_MAYBE)
		return r;
	(void)body_overlap(s, &pending);
	if (pending > 0 && search_body(s, &hi, read, read_ctx) < 0)
		return -1;
	for (size_t i = 0; i < s->key_count; i++) {
		if (s->keys[i]->result == IMAP_SEARCH_MAYBE)
			s->keys[i]->result = IMAP_SEARCH_NO;
	}
	r = eval_key(&ec, prog->root);
	return r == IMAP_SEARCH_YES ? IMAP_SEARCH_YES : IMAP_SEARCH_NO;
}

ssize_t imap_search_file_read(void *read_ctx, uint64_t offset, void *buf,
			      size_t size)
{
	const struct imap_search_file *f = read_ctx;
	ssize_t n;

	if (offset >= f->size)
		return 0;
	do {
		n = pread(f->fd, buf, size, (off_t)offset);
	} while (n < 0 && errno == EINTR);
	return n;
}
