/* message_parser.c: the streaming MIME parser (see message_parser.h).
 *
 * The input is cut into lines with memchr(); only the first LINEBUF_SIZE
 * bytes of a line are kept (enough to recognise any boundary) and, in a
 * header, the bytes of the current field up to max_header_bytes. Sizes are
 * derived from running counters of offset, LFs and bare LFs: a part's size
 * is the difference between the counters at its start and at its end, so
 * no per-part work happens per byte. Open parts form a stack (innermost
 * last); a multipart's stack entry holds its boundary while it is active. */
#include "mail/message_parser.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/xmalloc.h"
#include "mail/mime_param.h"

#define LINEBUF_SIZE (MESSAGE_PARSER_MAX_BOUNDARY_LEN + 64)
/* Room for the field name in front of the kept value bytes. */
#define FIELD_NAME_ROOM 256

const struct message_parser_limits message_parser_default_limits = {
	MESSAGE_PARSER_DEFAULT_MAX_PARTS,
	MESSAGE_PARSER_DEFAULT_MAX_NESTING,
	MESSAGE_PARSER_DEFAULT_MAX_HEADER_BYTES,
};

/* A point in the input: offset and the counters there. */
struct mp_pos {
	uint64_t offset, lfs, bare_lfs;
};

struct open_part {
	struct message_part *part;
	struct message_part **tail;	/* where the next child is linked */
	char *boundary;			/* active boundary, or NULL */
	size_t boundary_len;
	bool is_digest;			/* multipart/digest */
	struct mp_pos start;		/* of the header, then of the body */
};

struct message_parser {
	struct message_parser_limits limits;
	struct message_part *root;
	struct open_part *stack;
	unsigned int depth, stack_cap, part_count, active_boundaries;
	bool in_header;			/* the top part is in its header */

	struct mp_pos now;		/* after the last byte fed */
	bool prev_cr;			/* last byte fed was CR */

	struct mp_pos line_start;
	unsigned int prev_eol_len;	/* 0, 1 (LF) or 2 (CRLF) */
	bool prev_eol_bare;
	char line[LINEBUF_SIZE];	/* head of the current line, no LF */
	size_t line_len;		/* full length so far */

	char *field;			/* current header field, unfolded */
	size_t field_len, field_cap, hdr_stored;
	bool field_active;
};

enum store_mode { STORE_FIRST, STORE_REPLACE, STORE_APPEND };

static const struct {
	const char *name;
	enum message_field field;
	enum store_mode mode;
} field_table[] = {
	{ "Content-Type", MESSAGE_FIELD_CONTENT_TYPE, STORE_FIRST },
	{ "Content-Transfer-Encoding",
	  MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING, STORE_FIRST },
	{ "Content-ID", MESSAGE_FIELD_CONTENT_ID, STORE_FIRST },
	{ "Content-Description", MESSAGE_FIELD_CONTENT_DESCRIPTION,
	  STORE_FIRST },
	{ "Content-Disposition", MESSAGE_FIELD_CONTENT_DISPOSITION,
	  STORE_FIRST },
	{ "Content-Language", MESSAGE_FIELD_CONTENT_LANGUAGE, STORE_FIRST },
	{ "Content-Location", MESSAGE_FIELD_CONTENT_LOCATION, STORE_FIRST },
	{ "Content-MD5", MESSAGE_FIELD_CONTENT_MD5, STORE_FIRST },
	{ "Date", MESSAGE_FIELD_DATE, STORE_REPLACE },
	{ "Subject", MESSAGE_FIELD_SUBJECT, STORE_REPLACE },
	{ "From", MESSAGE_FIELD_FROM, STORE_APPEND },
	{ "Sender", MESSAGE_FIELD_SENDER, STORE_APPEND },
	{ "Reply-To", MESSAGE_FIELD_REPLY_TO, STORE_APPEND },
	{ "To", MESSAGE_FIELD_TO, STORE_APPEND },
	{ "Cc", MESSAGE_FIELD_CC, STORE_APPEND },
	{ "Bcc", MESSAGE_FIELD_BCC, STORE_APPEND },
	{ "In-Reply-To", MESSAGE_FIELD_IN_REPLY_TO, STORE_REPLACE },
	{ "Message-ID", MESSAGE_FIELD_MESSAGE_ID, STORE_REPLACE },
};

static struct open_part *top(struct message_parser *p)
{
	return &p->stack[p->depth - 1];
}

/* ---- header fields ---- */

static void store_field(struct message_parser *p, struct message_part *part,
			enum message_field f, enum store_mode mode,
			const char *value, size_t len)
{
	size_t budget = p->limits.max_header_bytes - p->hdr_stored;
	char *old = part->fields[f];
	size_t old_len = part->field_lens[f];

	if (len > budget)
		len = budget;
	if (old != NULL && mode == STORE_FIRST)
		return;
	if (old != NULL && mode == STORE_APPEND) {
		if (len + 2 > budget)
			return;
		part->fields[f] = xmalloc(old_len + 2 + len + 1);
		memcpy(part->fields[f], old, old_len);
		memcpy(part->fields[f] + old_len, ", ", 2);
		memcpy(part->fields[f] + old_len + 2, value, len);
		part->field_lens[f] = old_len + 2 + len;
		part->fields[f][part->field_lens[f]] = '\0';
		p->hdr_stored += len + 2;
		free(old);
		return;
	}
	if (old != NULL)
		p->hdr_stored -= old_len;
	free(old);
	/* values may hold NUL bytes: copy by length */
	part->fields[f] = xmalloc(len + 1);
	memcpy(part->fields[f], value, len);
	part->fields[f][len] = '\0';
	part->field_lens[f] = len;
	p->hdr_stored += len;
}

/* RFC 5322 2.2: "name" ":" value; the value was unfolded on input. */
static void field_flush(struct message_parser *p)
{
	struct message_part *part = top(p)->part;
	const char *colon, *v, *end;
	size_t name_len, i;

	p->field_active = false;
	if (p->field_len == 0)
		return;
	end = p->field + p->field_len;
	/* the final line break is not part of the value */
	while (end > p->field && (end[-1] == '\n' || end[-1] == '\r'))
		end--;
	p->field_len = 0;
	colon = memchr(p->field, ':', (size_t)(end - p->field));
	if (colon == NULL)
		return;
	for (name_len = (size_t)(colon - p->field); name_len > 0 &&
	     (p->field[name_len - 1] == ' ' ||
	      p->field[name_len - 1] == '\t'); name_len--)
		;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	for (i = 0; i < sizeof(field_table) / sizeof(field_table[0]); i++) {
		if (strlen(field_table[i].name) != name_len ||
		    strncasecmp(field_table[i].name, p->field, name_len) != 0)
			continue;
		if (field_table[i].field >= MESSAGE_FIELD_FIRST_ENVELOPE &&
		    (part->flags & MESSAGE_PART_FLAG_IS_MESSAGE) == 0)
			return;
		store_field(p, part, field_table[i].field,
			    field_table[i].mode, v, (size_t)(end - v));
		return;
	}
}

static void field_append(struct message_parser *p, const char *s, size_t n)
{
	size_t max = p->limits.max_header_bytes + FIELD_NAME_ROOM, i;

	for (i = 0; i < n && p->field_len < max; i++) {
		if (p->field_len == p->field_cap) {
			p->field_cap = p->field_cap == 0 ? 256 :
				p->field_cap * 2;
			if (p->field_cap > max)
				p->field_cap = max;
			p->field = xrealloc(p->field, p->field_cap);
		}
		p->field[p->field_len++] = s[i];
	}
}

/* ---- part stack ---- */

static void part_push(struct message_parser *p, struct message_part *parent)
{
	struct message_part *part = xcalloc(1, sizeof(*part));
	struct open_part *op;

	if (p->depth == p->stack_cap) {
		p->stack_cap = p->stack_cap == 0 ? 8 : p->stack_cap * 2;
		p->stack = xreallocarray(p->stack, p->stack_cap,
					 sizeof(*p->stack));
	}
	part->header_offset = p->now.offset;
	part->parent = parent;
	if (parent == NULL) {
		p->root = part;
		part->flags |= MESSAGE_PART_FLAG_IS_MESSAGE;
	} else {
		*top(p)->tail = part;
		top(p)->tail = &part->next;
		parent->children_count++;
		if (parent->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822)
			part->flags |= MESSAGE_PART_FLAG_IS_MESSAGE;
	}
	op = &p->stack[p->depth++];
	memset(op, 0, sizeof(*op));
	op->part = part;
	op->tail = &part->children;
	op->start = p->now;
	p->part_count++;
	p->in_header = true;
	p->hdr_stored = 0;
	p->field_len = 0;
	p->field_active = false;
}

static void set_type(struct message_part *part, const char *type,
		     const char *subtype, unsigned int flags)
{
	part->type = xstrdup(type);
	part->subtype = xstrdup(subtype);
	part->flags |= flags;
}

/* RFC 2045 5.2 / RFC 2046 5.1.5 defaults; classifies the part. Returns the
 * boundary (heap) of a multipart, or NULL. */
static char *parse_type(struct open_part *op, const struct open_part *parent)
{
	struct message_part *part = op->part;
	const char *ct = part->fields[MESSAGE_FIELD_CONTENT_TYPE], *b;
	struct mime_params params;
	char *boundary = NULL;

	if (ct == NULL) {
		if (parent != NULL && parent->is_digest) {
			set_type(part, "message", "rfc822",
				 MESSAGE_PART_FLAG_MESSAGE_RFC822);
		} else {
			set_type(part, "text", "plain",
				 MESSAGE_PART_FLAG_TEXT);
		}
		part->flags |= MESSAGE_PART_FLAG_DEFAULT_TYPE;
		return NULL;
	}
	mime_content_type_parse(ct, part->field_lens[
		MESSAGE_FIELD_CONTENT_TYPE], &part->type, &part->subtype,
		&params);
	if (strcasecmp(part->type, "text") == 0) {
		part->flags |= MESSAGE_PART_FLAG_TEXT;
	} else if (strcasecmp(part->type, "multipart") == 0) {
		part->flags |= MESSAGE_PART_FLAG_MULTIPART;
		op->is_digest = strcasecmp(part->subtype, "digest") == 0;
		b = mime_params_get(&params, "boundary");
		if (b != NULL && b[0] != '\0' &&
		    strlen(b) <= MESSAGE_PARSER_MAX_BOUNDARY_LEN)
			boundary = xstrdup(b);
	} else if (strcasecmp(part->type, "message") == 0 &&
		   strcasecmp(part->subtype, "rfc822") == 0) {
		part->flags |= MESSAGE_PART_FLAG_MESSAGE_RFC822;
	}
	mime_params_free(&params);
	return boundary;
}

/* The blank line ending the top part's header was just consumed. */
static void header_end(struct message_parser *p)
{
	struct open_part *op = top(p);
	struct message_part *part = op->part;
	bool may_nest = p->depth - 1 < p->limits.max_nesting;
	char *boundary;

	field_flush(p);
	part->header.physical = p->now.offset - part->header_offset;
	part->header.lines = p->now.lfs - op->start.lfs;
	part->header.virtual_size = part->header.physical +
		(p->now.bare_lfs - op->start.bare_lfs);
	part->body_offset = p->now.offset;
	op->start = p->now;
	p->in_header = false;
	boundary = parse_type(op, p->depth > 1 ? &p->stack[p->depth - 2] :
			      NULL);
	if (boundary != NULL && may_nest) {
		op->boundary = boundary;
		op->boundary_len = strlen(boundary);
		p->active_boundaries++;
		return;
	}
	free(boundary);
	if (boundary != NULL || ((part->flags &
	    MESSAGE_PART_FLAG_MESSAGE_RFC822) != 0 &&
	    (!may_nest || p->part_count >= p->limits.max_parts))) {
		part->flags |= MESSAGE_PART_FLAG_LIMITED;
		return;
	}
	if ((part->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822) != 0)
		part_push(p, part);
}

static void drop_boundary(struct message_parser *p, struct open_part *op)
{
	if (op->boundary == NULL)
		return;
	free(op->boundary);
	op->boundary = NULL;
	p->active_boundaries--;
}

/* Ends the top part at *end (clamped to the part's start) and pops it. */
static void part_close(struct message_parser *p, const struct mp_pos *end)
{
	struct open_part *op = top(p);
	struct message_part *part = op->part;
	struct message_size *size = &part->body;

	if (p->in_header) {
		field_flush(p);
		if (end->offset > part->header_offset) {
			part->header.physical = end->offset -
				part->header_offset;
			part->header.lines = end->lfs - op->start.lfs;
			part->header.virtual_size = part->header.physical +
				(end->bare_lfs - op->start.bare_lfs);
		}
		part->body_offset = part->header_offset +
			part->header.physical;
		free(parse_type(op, p->depth > 1 ?
				&p->stack[p->depth - 2] : NULL));
		p->in_header = false;
	} else if (end->offset > part->body_offset) {
		size->physical = end->offset - part->body_offset;
		size->lines = end->lfs - op->start.lfs;
		size->virtual_size = size->physical +
			(end->bare_lfs - op->start.bare_lfs);
	}
	drop_boundary(p, op);
	p->depth--;
}

/* ---- boundaries ---- */

static bool is_lwsp_only(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	}
	return true;
}

/* RFC 2046 5.1.1: "--" boundary [ "--" ] *LWSP. Returns the stack index
 * of the matching multipart, or -1. */
static int find_boundary(struct message_parser *p, bool *is_close_r)
{
	size_t len = p->line_len < LINEBUF_SIZE ? p->line_len : LINEBUF_SIZE;
	const char *rest;
	size_t rest_len;
	int i, prefix = -1;

	if (p->active_boundaries == 0 || len < 3 || p->line[0] != '-' ||
	    p->line[1] != '-')
		return -1;
	if (len == p->line_len && p->line[len - 1] == '\r')
		len--;
	for (i = (int)p->depth - 1; i >= 0; i--) {
		const struct open_part *op = &p->stack[i];

		if (op->boundary == NULL || len - 2 < op->boundary_len ||
		    memcmp(p->line + 2, op->boundary, op->boundary_len) != 0)
			continue;
		rest = p->line + 2 + op->boundary_len;
		rest_len = len - 2 - op->boundary_len;
		if (rest_len >= 2 && rest[0] == '-' && rest[1] == '-') {
			*is_close_r = true;
			return i;
		}
		if (is_lwsp_only(rest, rest_len)) {
			*is_close_r = false;
			return i;
		}
		if (prefix < 0)
			prefix = i;
	}
	*is_close_r = false;
	return prefix;
}

static void boundary_line(struct message_parser *p, int idx, bool is_close)
{
	struct mp_pos end = p->line_start;
	struct open_part *op;
	unsigned int i;

	/* the line break before the boundary belongs to the boundary */
	end.offset -= p->prev_eol_len;
	if (p->prev_eol_len > 0)
		end.lfs--;
	if (p->prev_eol_bare)
		end.bare_lfs--;
	while (p->depth > (unsigned int)idx + 1)
		part_close(p, &end);
	op = top(p);
	p->in_header = false;
	if (is_close) {
		drop_boundary(p, op);
		return;
	}
	if (p->part_count >= p->limits.max_parts) {
		/* no more parts: the rest is this multipart's epilogue */
		for (i = 0; i < p->depth; i++)
			drop_boundary(p, &p->stack[i]);
		op->part->flags |= MESSAGE_PART_FLAG_LIMITED;
		return;
	}
	part_push(p, op->part);
}

/* ---- input ---- */

static void line_bytes(struct message_parser *p, const char *s, size_t n)
{
	size_t keep;

	if (p->line_len == 0 && p->in_header && s[0] != ' ' && s[0] != '\t') {
		/* RFC 5322 2.2.3: not a continuation: a new field starts */
		field_flush(p);
		p->field_active = true;
	}
	if (p->line_len < LINEBUF_SIZE) {
		keep = LINEBUF_SIZE - p->line_len;
		memcpy(p->line + p->line_len, s, keep < n ? keep : n);
	}
	if (p->in_header && p->field_active)
		field_append(p, s, n);
	p->line_len += n;
	p->now.offset += n;
	p->prev_cr = s[n - 1] == '\r';
}

static void line_end(struct message_parser *p, bool has_lf)
{
	bool is_bare = has_lf && !p->prev_cr, is_close = false;
	int idx;

	if (has_lf) {
		p->now.offset++;
		p->now.lfs++;
		if (is_bare)
			p->now.bare_lfs++;
	}
	if (has_lf && p->in_header && p->field_active)
		field_append(p, "\n", 1);
	idx = find_boundary(p, &is_close);
	if (idx >= 0)
		boundary_line(p, idx, is_close);
	else if (p->in_header && (p->line_len == 0 ||
		 (p->line_len == 1 && p->line[0] == '\r')))
		header_end(p);
	p->line_start = p->now;
	p->prev_eol_len = !has_lf ? 0 : is_bare ? 1 : 2;
	p->prev_eol_bare = is_bare;
	if (idx >= 0 && is_close) {
		/* like Dovecot: a close delimiter keeps its own line break,
		 * a following boundary line does not take it */
		p->prev_eol_len = 0;
		p->prev_eol_bare = false;
	}
	p->line_len = 0;
	p->prev_cr = false;
}

struct message_parser *
message_parser_create(const struct message_parser_limits *limits)
{
	struct message_parser *p = xcalloc(1, sizeof(*p));

	p->limits = limits != NULL ? *limits : message_parser_default_limits;
	if (p->limits.max_parts == 0)
		p->limits.max_parts = 1;
	part_push(p, NULL);
	return p;
}

void message_parser_feed(struct message_parser *p, const void *data,
			 size_t size)
{
	const char *d = data, *lf;
	size_t pos = 0, n;

	while (pos < size) {
		lf = memchr(d + pos, '\n', size - pos);
		n = lf != NULL ? (size_t)(lf - (d + pos)) : size - pos;
		if (n > 0)
			line_bytes(p, d + pos, n);
		pos += n;
		if (lf != NULL) {
			line_end(p, true);
			pos++;
		}
	}
}

struct message_part *message_parser_finish(struct message_parser **parser)
{
	struct message_parser *p = *parser;
	struct message_part *root;

	if (p->line_len > 0)
		line_end(p, false);
	while (p->depth > 0)
		part_close(p, &p->now);
	root = p->root;
	p->root = NULL;
	message_parser_destroy(parser);
	return root;
}

void message_parser_destroy(struct message_parser **parser)
{
	struct message_parser *p = *parser;
	unsigned int i;

	if (p == NULL)
		return;
	for (i = 0; i < p->depth; i++)
		free(p->stack[i].boundary);
	message_part_free(&p->root);
	free(p->stack);
	free(p->field);
	free(p);
	*parser = NULL;
}

struct message_part *
message_parse(const void *data, size_t size,
	      const struct message_parser_limits *limits)
{
	struct message_parser *p = message_parser_create(limits);

	message_parser_feed(p, data, size);
	return message_parser_finish(&p);
}
