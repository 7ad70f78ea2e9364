/* binary_convert.c: binary MIME parts -> base64 for literal8 APPENDs (see
 * binary_convert.h).
 *
 * Three steps over the spooled message: (1) read it once through
 * message_parser (NUL read as a space, as the copy will have it) to get
 * the part tree and note whether it has any NUL or bare CR at all;
 * (2) pick an action per part in preorder (scanning a leaf body only
 * when step 1 saw such a byte); (3) when some action or a NUL
 * asks for a change, read it again and write the copy: gaps and untouched
 * ranges are copied (NUL -> space), a rewritten header goes through a
 * small line machine that swaps the Content-Transfer-Encoding field, a
 * converted body is base64-encoded in 57-byte groups (76 columns).
 * Memory: one input chunk, one output buffer, one action byte per part. */
#include "mail/binary_convert.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/spool.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"

#define BC_OUT_BUF_SIZE 8192
/* RFC 2045 6.8: at most 76 characters per encoded line */
#define BC_B64_GROUP 57		/* input bytes per 76-column line */
/* Head of a header line kept to recognise the CTE field name. */
#define BC_NAME_HEAD 64
#define BC_CTE_NAME "Content-Transfer-Encoding"

struct binary_convert {
	int fd;			/* anonymous spool */
};

enum bc_action { BC_COPY, BC_BASE64, BC_8BIT };

enum bc_cte {
	BC_CTE_NONE, BC_CTE_7BIT, BC_CTE_8BIT, BC_CTE_BINARY, BC_CTE_BASE64,
	BC_CTE_QP, BC_CTE_OTHER
};

enum bc_hdr_mode { BC_HDR_LINE_START, BC_HDR_HEAD, BC_HDR_PASS, BC_HDR_DROP };

struct bc_hdr {
	enum bc_hdr_mode mode;
	const char *value;	/* the new CTE: "base64" or "8bit" */
	char head[BC_NAME_HEAD];	/* start of the current line */
	size_t head_len;	/* bytes of the line in the head (may be more
				   than kept: white space before ':') */
	uint64_t line_off, off;	/* input offsets: line start, next byte */
	bool in_cte;		/* the current field is a CTE field: dropped */
	bool emit_eol;		/* write the line break of the dropped line */
	bool is_done;		/* the new field was written */
	bool prev_cr;
};

struct bc_conv {
	int fd;
	uint64_t size, pos;	/* input size; copied up to pos */
	size_t chunk_size;
	unsigned char *in;
	binary_convert_output_fn *out;
	void *ctx;
	const char *error;	/* NULL: out failed */
	unsigned char obuf[BC_OUT_BUF_SIZE];
	size_t olen;
	struct message_parser *parser;		/* step 1 */
	bool has_nul, has_bare_cr, prev_cr;
	bool scan_hit, scan_prev_cr;		/* leaf scan */
	unsigned char *actions;			/* per part, preorder */
	unsigned int idx, count;
	struct bc_hdr hdr;
	unsigned char carry[BC_B64_GROUP];
	size_t carry_len;
	bool b64_has_line;
};

/* Returns 0 to go on, 1 to stop early, -1 on error. */
typedef int bc_chunk_fn(struct bc_conv *c, const unsigned char *data,
			size_t size);

/* ---- output ---- */

static int out_flush(struct bc_conv *c, bool is_last)
{
	if (c->olen == 0 && !is_last)
		return 0;
	if (c->out(c->ctx, c->obuf, c->olen, is_last) < 0) {
		c->error = NULL;
		return -1;
	}
	c->olen = 0;
	return 0;
}

/* Copies size bytes out; with is_clean, NUL becomes a space. */
static int out_bytes(struct bc_conv *c, const void *data, size_t size,
		     bool is_clean)
{
	const unsigned char *p = data;

	while (size > 0) {
		size_t n = sizeof(c->obuf) - c->olen;

		if (n == 0) {
			if (out_flush(c, false) < 0)
				return -1;
			continue;
		}
		if (n > size)
			n = size;
		memcpy(c->obuf + c->olen, p, n);
		if (is_clean) {
			unsigned char *nul, *end = c->obuf + c->olen + n;

			for (nul = memchr(c->obuf + c->olen, '\0', n);
			     nul != NULL;
			     nul = memchr(nul, '\0', (size_t)(end - nul)))
				*nul = ' ';
		}
		c->olen += n;
		p += n;
		size -= n;
	}
	return 0;
}

static int out_str(struct bc_conv *c, const char *s)
{
	return out_bytes(c, s, strlen(s), false);
}

/* ---- input ---- */

/* Reads [from, to) in chunks and hands them to fn. */
static int read_range(struct bc_conv *c, uint64_t from, uint64_t to,
		      bc_chunk_fn *fn)
{
	while (from < to) {
		size_t want = to - from < c->chunk_size ?
			(size_t)(to - from) : c->chunk_size;
		ssize_t ret = pread(c->fd, c->in, want, (off_t)from);
		int fret;

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EIO;	/* the file shrank */
			c->error = "pread(binary spool) failed";
			return -1;
		}
		fret = fn(c, c->in, (size_t)ret);
		if (fret != 0)
			return fret < 0 ? -1 : 0;
		from += (uint64_t)ret;
	}
	return 0;
}

/* Does data hold a NUL or a CR not followed by LF? *prev_cr carries a CR
 * that ended the previous chunk. */
static bool has_odd_byte(const unsigned char *data, size_t size,
			 bool *prev_cr)
{
	const unsigned char *cr, *end = data + size;

	if (size == 0)
		return false;
	if (*prev_cr && data[0] != '\n')
		return true;
	if (memchr(data, '\0', size) != NULL)
		return true;
	for (cr = memchr(data, '\r', size); cr != NULL;
	     cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1))) {
		if (cr + 1 < end && cr[1] != '\n')
			return true;
		if (cr + 1 == end)
			break;
	}
	*prev_cr = data[size - 1] == '\r';
	return false;
}

/* The parser sees NUL as a space: outside converted leaves the copy has
 * a space there, so the tree (boundaries, header fields) is the one the
 * copy will have, and the actions hold for the copy too. */
static int pass1_chunk(struct bc_conv *c, const unsigned char *data,
		       size_t size)
{
	unsigned char *nul, *end = c->in + size;

	if (!c->has_bare_cr) {
		bool prev = c->prev_cr;

		/* a NUL alone also makes has_odd_byte true: harmless, the
		 * flag only enables the per-leaf scan */
		if (has_odd_byte(data, size, &prev))
			c->has_bare_cr = true;
		c->prev_cr = prev;
	}
	/* data is c->in: clean it in place */
	for (nul = memchr(c->in, '\0', size); nul != NULL;
	     nul = memchr(nul, '\0', (size_t)(end - nul))) {
		c->has_nul = true;
		*nul = ' ';
	}
	message_parser_feed(c->parser, c->in, size);
	return 0;
}

/* ---- step 2: actions ---- */

/* RFC 2045 6.1: mechanism token, after white space, folding and (nested)
 * comments. */
static enum bc_cte cte_of(const struct message_part *part)
{
	static const struct {
		const char *name;
		enum bc_cte cte;
	} names[] = {
		{ "7bit", BC_CTE_7BIT }, { "8bit", BC_CTE_8BIT },
		{ "binary", BC_CTE_BINARY }, { "base64", BC_CTE_BASE64 },
		{ "quoted-printable", BC_CTE_QP },
	};
	const char *v = part->fields[MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING];
	size_t len = part->field_lens[MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING];
	size_t i = 0, start, depth = 0;

	if (v == NULL)
		return BC_CTE_NONE;
	for (; i < len; i++) {
		if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && depth > 0)
			depth--;
		else if (v[i] == '\\' && depth > 0 && i + 1 < len)
			i++;
		else if (depth == 0 && (v[i] == '\0' ||
					strchr(" \t\r\n", v[i]) == NULL))
			break;
	}
	for (start = i; i < len && v[i] != '\0' &&
	     strchr(" \t\r\n(;", v[i]) == NULL; i++)
		;
	if (i == start)
		return BC_CTE_NONE;
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		if (strlen(names[k].name) == i - start &&
		    strncasecmp(names[k].name, v + start, i - start) == 0)
			return names[k].cte;
	}
	return BC_CTE_OTHER;
}

static int scan_chunk(struct bc_conv *c, const unsigned char *data,
		      size_t size)
{
	if (!has_odd_byte(data, size, &c->scan_prev_cr))
		return 0;
	c->scan_hit = true;
	return 1;
}

/* Does the leaf body hold a NUL or a bare CR? A CR ending the body is
 * bare: the line break after it belongs to the boundary. */
static int body_is_binary(struct bc_conv *c, const struct message_part *part,
			  bool *is_binary_r)
{
	c->scan_hit = c->scan_prev_cr = false;
	if (read_range(c, part->body_offset, part->body_offset +
		       part->body.physical, scan_chunk) < 0)
		return -1;
	*is_binary_r = c->scan_hit || c->scan_prev_cr;
	return 0;
}

static bool part_is_leaf(const struct message_part *part)
{
	return (part->flags & (MESSAGE_PART_FLAG_MULTIPART |
			       MESSAGE_PART_FLAG_MESSAGE_RFC822)) == 0;
}

/* Sets the actions of part and its subtree (preorder). */
static int decide_part(struct bc_conv *c, const struct message_part *part)
{
	unsigned int i = c->idx++;
	enum bc_cte cte = cte_of(part);
	bool is_binary = cte == BC_CTE_BINARY;

	c->actions[i] = BC_COPY;
	if (!part_is_leaf(part)) {
		/* RFC 2045 6.4: a composite part is 7bit, 8bit or binary;
		 * its leaves are encoded now */
		if (is_binary)
			c->actions[i] = BC_8BIT;
		for (part = part->children; part != NULL; part = part->next) {
			if (decide_part(c, part) < 0)
				return -1;
		}
		return 0;
	}
	if (!is_binary && cte != BC_CTE_BASE64 && cte != BC_CTE_QP &&
	    (c->has_nul || c->has_bare_cr) &&
	    body_is_binary(c, part, &is_binary) < 0)
		return -1;
	if (is_binary)
		c->actions[i] = BC_BASE64;
	return 0;
}

/* ---- step 3: header rewriting ---- */

static const char *eol(bool is_crlf)
{
	return is_crlf ? "\r\n" : "\n";
}

static int hdr_new_field(struct bc_conv *c)
{
	c->hdr.is_done = true;
	if (out_str(c, BC_CTE_NAME ": ") < 0)
		return -1;
	return out_str(c, c->hdr.value);
}

/* Writes the current line's head: the kept bytes, then those past
 * BC_NAME_HEAD (white space before a colon) read again from the file. */
static int hdr_emit_head(struct bc_conv *c)
{
	struct bc_hdr *h = &c->hdr;
	size_t kept = h->head_len < sizeof(h->head) ? h->head_len :
		sizeof(h->head);
	uint64_t off = h->line_off + kept, end = h->line_off + h->head_len;
	unsigned char buf[256];

	if (out_bytes(c, h->head, kept, true) < 0)
		return -1;
	while (off < end) {
		size_t want = end - off < sizeof(buf) ? (size_t)(end - off) :
			sizeof(buf);
		ssize_t ret = pread(c->fd, buf, want, (off_t)off);

		if (ret < 0 && errno == EINTR)
			continue;
		if (ret <= 0) {
			if (ret == 0)
				errno = EIO;
			c->error = "pread(binary spool) failed";
			return -1;
		}
		if (out_bytes(c, buf, (size_t)ret, true) < 0)
			return -1;
		off += (uint64_t)ret;
	}
	return 0;
}

/* The head ends a header line: the blank line, where a missing field is
 * added, or a short line. */
static int hdr_head_line_end(struct bc_conv *c)
{
	struct bc_hdr *h = &c->hdr;
	bool is_blank = h->head_len == 1 ||
		(h->head_len == 2 && h->head[0] == '\r');

	if (is_blank && !h->is_done &&
	    (hdr_new_field(c) < 0 || out_str(c, eol(h->head_len == 2)) < 0))
		return -1;
	h->mode = BC_HDR_LINE_START;
	return hdr_emit_head(c);
}

/* The field name ended at ':'. While in the head, the line so far is a
 * prefix of the CTE name, or the name and white space (which the parser
 * drops before the colon). */
static int hdr_head_colon(struct bc_conv *c)
{
	struct bc_hdr *h = &c->hdr;

	if (h->head_len - 1 < strlen(BC_CTE_NAME)) {
		h->mode = BC_HDR_PASS;
		return hdr_emit_head(c);
	}
	/* the first CTE field becomes ours, later ones go (the parser
	 * uses the first one) */
	h->in_cte = true;
	h->mode = BC_HDR_DROP;
	h->emit_eol = !h->is_done;
	return h->is_done ? 0 : hdr_new_field(c);
}

/* May the line still be a CTE field (or the blank line), with ch (NUL
 * read as a space) at index i? Like the parser, which keeps at most
 * max_header_bytes + 256 bytes of a field, colon included. */
static bool hdr_head_may_match(size_t i, unsigned char ch)
{
	if (i < strlen(BC_CTE_NAME))
		return tolower(ch) == tolower(BC_CTE_NAME[i]) ||
			(i == 0 && ch == '\r');
	return (ch == ' ' || ch == '\t') &&
		i + 1 < MESSAGE_PARSER_DEFAULT_MAX_HEADER_BYTES + 256;
}

static int hdr_byte(struct bc_conv *c, unsigned char ch)
{
	struct bc_hdr *h = &c->hdr;
	bool prev_cr = h->prev_cr;

	h->prev_cr = ch == '\r';
	if (ch == '\0')
		ch = ' ';	/* as the parser saw it */
	switch (h->mode) {
	case BC_HDR_LINE_START:
		if (ch == ' ' || ch == '\t') {
			h->mode = h->in_cte ? BC_HDR_DROP : BC_HDR_PASS;
			h->emit_eol = false;
			return h->in_cte ? 0 : out_bytes(c, &ch, 1, true);
		}
		h->in_cte = false;
		h->mode = BC_HDR_HEAD;
		h->head_len = 0;
		h->line_off = h->off;
		/* fall through */
	case BC_HDR_HEAD:
		if (h->head_len < sizeof(h->head))
			h->head[h->head_len] = (char)ch;
		h->head_len++;
		if (ch == '\n')
			return hdr_head_line_end(c);
		if (ch == ':')
			return hdr_head_colon(c);
		if (hdr_head_may_match(h->head_len - 1, ch) &&
		    (h->head_len != 2 || h->head[0] != '\r'))
			return 0;
		h->mode = BC_HDR_PASS;
		return hdr_emit_head(c);
	case BC_HDR_PASS:
		if (ch == '\n')
			h->mode = BC_HDR_LINE_START;
		return out_bytes(c, &ch, 1, true);
	case BC_HDR_DROP:
		if (ch != '\n')
			return 0;
		h->mode = BC_HDR_LINE_START;
		if (!h->emit_eol)
			return 0;
		h->emit_eol = false;
		return out_str(c, eol(prev_cr));
	}
	return 0;
}

static int hdr_chunk(struct bc_conv *c, const unsigned char *data,
		     size_t size)
{
	for (size_t i = 0; i < size; i++, c->hdr.off++) {
		if (hdr_byte(c, data[i]) < 0)
			return -1;
	}
	return 0;
}

/* The header range ended (maybe without its blank line: then the body is
 * empty and the new field goes last). */
static int hdr_finish(struct bc_conv *c)
{
	struct bc_hdr *h = &c->hdr;

	if (h->mode == BC_HDR_HEAD && hdr_emit_head(c) < 0)
		return -1;
	if (h->is_done)
		return 0;
	if (h->mode != BC_HDR_LINE_START && out_str(c, "\r\n") < 0)
		return -1;
	if (hdr_new_field(c) < 0)
		return -1;
	return out_str(c, "\r\n");
}

static int rewrite_header(struct bc_conv *c, const struct message_part *part,
			  const char *value)
{
	uint64_t end = part->header_offset + part->header.physical;

	memset(&c->hdr, 0, sizeof(c->hdr));
	c->hdr.value = value;
	c->hdr.off = part->header_offset;
	if (read_range(c, part->header_offset, end, hdr_chunk) < 0 ||
	    hdr_finish(c) < 0)
		return -1;
	c->pos = end;
	return 0;
}

/* ---- step 3: base64 bodies ---- */

static int b64_line(struct bc_conv *c, const unsigned char *data,
		    size_t size)
{
	char line[BASE64_ENCODED_SIZE(BC_B64_GROUP)];
	size_t n = base64_encode(data, size, line);

	if (c->b64_has_line && out_str(c, "\r\n") < 0)
		return -1;
	c->b64_has_line = true;
	return out_bytes(c, line, n, false);
}

static int b64_chunk(struct bc_conv *c, const unsigned char *data,
		     size_t size)
{
	while (size > 0) {
		size_t n = BC_B64_GROUP - c->carry_len;

		if (c->carry_len == 0 && size >= BC_B64_GROUP) {
			if (b64_line(c, data, BC_B64_GROUP) < 0)
				return -1;
			data += BC_B64_GROUP;
			size -= BC_B64_GROUP;
			continue;
		}
		if (n > size)
			n = size;
		memcpy(c->carry + c->carry_len, data, n);
		c->carry_len += n;
		data += n;
		size -= n;
		if (c->carry_len == BC_B64_GROUP) {
			c->carry_len = 0;
			if (b64_line(c, c->carry, BC_B64_GROUP) < 0)
				return -1;
		}
	}
	return 0;
}

/* The body as base64; the line break after the last line is the
 * boundary's, or our own at the end of the message. */
static int encode_body(struct bc_conv *c, const struct message_part *part)
{
	uint64_t end = part->body_offset + part->body.physical;

	c->carry_len = 0;
	c->b64_has_line = false;
	if (read_range(c, part->body_offset, end, b64_chunk) < 0)
		return -1;
	if (c->carry_len > 0 && b64_line(c, c->carry, c->carry_len) < 0)
		return -1;
	if (end == c->size && c->b64_has_line && out_str(c, "\r\n") < 0)
		return -1;
	c->pos = end;
	return 0;
}

/* ---- step 3: the walk ---- */

static int copy_chunk(struct bc_conv *c, const unsigned char *data,
		      size_t size)
{
	return out_bytes(c, data, size, true);
}

static int copy_raw_chunk(struct bc_conv *c, const unsigned char *data,
			  size_t size)
{
	return out_bytes(c, data, size, false);
}

/* Copies [pos, to) with NUL -> space. */
static int copy_to(struct bc_conv *c, uint64_t to)
{
	if (to <= c->pos)
		return 0;
	if (read_range(c, c->pos, to, copy_chunk) < 0)
		return -1;
	c->pos = to;
	return 0;
}

static int emit_part(struct bc_conv *c, const struct message_part *part)
{
	enum bc_action action = c->actions[c->idx++];
	uint64_t hdr_end = part->header_offset + part->header.physical;

	if (copy_to(c, part->header_offset) < 0)
		return -1;
	if (action == BC_COPY ? copy_to(c, hdr_end) :
	    rewrite_header(c, part, action == BC_BASE64 ? "base64" :
			   "8bit") < 0)
		return -1;
	if (action == BC_BASE64)
		return encode_body(c, part);
	for (part = part->children; part != NULL; part = part->next) {
		if (emit_part(c, part) < 0)
			return -1;
	}
	return 0;
}

/* Steps 2 and 3 on the tree of step 1. */
static int convert_tree(struct bc_conv *c, const struct message_part *root)
{
	bool is_changed = c->has_nul;

	c->count = message_part_count(root);
	c->actions = xcalloc(c->count, 1);
	c->idx = 0;
	if (decide_part(c, root) < 0)
		return -1;
	for (unsigned int i = 0; i < c->count && !is_changed; i++)
		is_changed = c->actions[i] != BC_COPY;
	if (!is_changed)
		return 0;
	c->idx = 0;
	c->pos = 0;
	if (emit_part(c, root) < 0 || copy_to(c, c->size) < 0 ||
	    out_flush(c, true) < 0)
		return -1;
	return 1;
}

static int file_size(int fd, uint64_t *size_r, const char **error_r)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		*error_r = "fstat(binary spool) failed";
		return -1;
	}
	*size_r = (uint64_t)st.st_size;
	return 0;
}

int binary_convert_fd(int fd, size_t chunk_size,
		      binary_convert_output_fn *out, void *ctx,
		      const char **error_r)
{
	struct bc_conv *c = xcalloc(1, sizeof(*c));
	struct message_part *root;
	int ret = -1;

	c->fd = fd;
	c->chunk_size = chunk_size != 0 ? chunk_size :
		BINARY_CONVERT_CHUNK_SIZE;
	c->in = xmalloc(c->chunk_size);
	c->out = out;
	c->ctx = ctx;
	c->parser = message_parser_create(NULL);
	if (file_size(fd, &c->size, &c->error) < 0 ||
	    read_range(c, 0, c->size, pass1_chunk) < 0) {
		message_parser_destroy(&c->parser);
		*error_r = c->error;
		goto out_free;
	}
	root = message_parser_finish(&c->parser);
	ret = convert_tree(c, root);
	if (ret < 0)
		*error_r = c->error;
	message_part_free(&root);
out_free:
	free(c->actions);
	free(c->in);
	free(c);
	return ret;
}

/* ---- the spool ---- */

struct binary_convert *binary_convert_begin(const char *state_dir,
					    const char **error_r)
{
	struct binary_convert *bc;
	int fd = spool_open(state_dir);

	if (fd < 0 && state_dir != NULL && *state_dir != '\0')
		fd = spool_open(NULL);

	if (fd < 0) {
		*error_r = "open(binary spool) failed";
		return NULL;
	}
	bc = xcalloc(1, sizeof(*bc));
	bc->fd = fd;
	return bc;
}

int binary_convert_write(struct binary_convert *bc, const void *data,
			 size_t size, const char **error_r)
{
	if (spool_write(bc->fd, data, size) < 0) {
		*error_r = "write(binary spool) failed";
		return -1;
	}
	return 0;
}

/* Sends the spool as it is. */
static int send_original(int fd, binary_convert_output_fn *out, void *ctx,
			 const char **error_r)
{
	struct bc_conv *c = xcalloc(1, sizeof(*c));
	int ret = -1;

	c->fd = fd;
	c->chunk_size = BINARY_CONVERT_CHUNK_SIZE;
	c->in = xmalloc(c->chunk_size);
	c->out = out;
	c->ctx = ctx;
	if (file_size(fd, &c->size, error_r) < 0)
		goto out_free;
	if (read_range(c, 0, c->size, copy_raw_chunk) < 0 ||
	    out_flush(c, true) < 0)
		*error_r = c->error;
	else
		ret = 0;
out_free:
	free(c->in);
	free(c);
	return ret;
}

int binary_convert_finish(struct binary_convert **_bc,
			  binary_convert_output_fn *out, void *ctx,
			  const char **error_r)
{
	struct binary_convert *bc = *_bc;
	int fd = bc->fd, ret, err;

	*_bc = NULL;
	free(bc);
	ret = binary_convert_fd(fd, 0, out, ctx, error_r);
	if (ret == 0 && send_original(fd, out, ctx, error_r) < 0)
		ret = -1;
	err = errno;
	(void)close(fd);
	errno = err;
	return ret;
}

void binary_convert_abort(struct binary_convert **_bc)
{
	struct binary_convert *bc = *_bc;

	if (bc == NULL)
		return;
	*_bc = NULL;
	(void)close(bc->fd);
	free(bc);
}
