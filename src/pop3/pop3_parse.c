/* pop3_parse.c: the pure parts of POP3: command line parsing, the
 * RETR/TOP message transform and the UIDL sanitizer. No I/O, no session
 * state: everything is unit-tested (tests/unit/test_pop3.c) and fuzzed
 * (tests/fuzz/fuzz_pop3.c). Limits: keywords 3..4 characters (RFC 2449
 * section 4); the line length is limited by the caller (conn_read_line). */
#include "pop3/pop3_private.h"

#include <sodium.h>
#include <string.h>

#include "lib/strnum.h"

static bool pop3_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int pop3_parse_keyword(const char *line, size_t len, size_t *pos_r,
			      struct pop3_cmd *cmd)
{
	size_t i;

	/* RFC 2449 section 4: keyword = 3*4VCHAR, case-insensitive. */
	for (i = 0; i < len && line[i] != ' '; i++) {
		unsigned char c = (unsigned char)line[i];

		if (i >= POP3_KEYWORD_MAX_LEN || c <= 0x20 || c >= 0x7f)
			return -1;
		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		cmd->name[i] = (char)c;
	}
	if (i < POP3_KEYWORD_MIN_LEN)
		return -1;
	cmd->name[i] = '\0';
	*pos_r = i;
	return 0;
}

static void pop3_parse_args(const char *line, size_t len, size_t pos,
			    struct pop3_cmd *cmd)
{
	while (pos < len) {
		size_t start;

		if (line[pos] == ' ') {
			pos++;
			continue;
		}
		start = pos;
		while (pos < len && line[pos] != ' ')
			pos++;
		if (cmd->argc < POP3_MAX_ARGS) {
			cmd->args[cmd->argc].data = line + start;
			cmd->args[cmd->argc].len = pos - start;
		}
		if (pos - start > cmd->max_arg_len)
			cmd->max_arg_len = pos - start;
		cmd->argc++;
	}
}

int pop3_parse_line(const char *line, size_t len, struct pop3_cmd *cmd_r,
		    const char **error_r)
{
	size_t pos;

	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->rest.data = line + len;
	for (size_t i = 0; i < len; i++) {
		if (pop3_is_ctl((unsigned char)line[i])) {
			*error_r = "Invalid characters in command";
			return -1;
		}
	}
	if (pop3_parse_keyword(line, len, &pos, cmd_r) < 0) {
		*error_r = "Unknown command";
		return -1;
	}
	if (pos < len) {
		/* the single space after the keyword */
		cmd_r->rest.data = line + pos + 1;
		cmd_r->rest.len = len - pos - 1;
	}
	pop3_parse_args(line, len, pos, cmd_r);
	return 0;
}

int pop3_parse_u64(const struct pop3_token *tok, uint64_t *num_r)
{
	return str_to_u64(tok->data, tok->len, UINT64_MAX, num_r);
}

int pop3_parse_msgnum(const struct pop3_token *tok, uint32_t *num_r)
{
	uint64_t num;

	if (str_to_u64(tok->data, tok->len, UINT32_MAX, &num) < 0 ||
	    num == 0)
		return -1;
	*num_r = (uint32_t)num;
	return 0;
}

/* ---- message transform ---- */

void pop3_xform_init(struct pop3_xform *x, bool has_limit,
		     uint64_t top_lines)
{
	memset(x, 0, sizeof(*x));
	x->at_line_start = true;
	x->line_blank = true;
	x->has_limit = has_limit;
	x->body_lines_left = top_lines;
}

/* An LF was sent: count lines for TOP. RFC 1939 section 7: "the headers
 * of the message, the blank line separating the headers from the body,
 * and then the number of lines of the indicated message's body". */
static void pop3_xform_end_line(struct pop3_xform *x)
{
	x->at_line_start = true;
	if (x->has_limit) {
		if (!x->in_body) {
			if (x->line_blank) {
				x->in_body = true;
				if (x->body_lines_left == 0)
					x->is_done = true;
			}
		} else if (--x->body_lines_left == 0) {
			x->is_done = true;
		}
	}
	x->line_blank = true;
}

size_t pop3_xform_feed(struct pop3_xform *x, const unsigned char *in,
		       size_t len, unsigned char *out)
{
	unsigned char *o = out;

	for (size_t i = 0; i < len && !x->is_done; i++) {
		unsigned char c = in[i];

		if (c == '\n') {
			if (!x->last_cr)
				*o++ = '\r';
			*o++ = '\n';
			x->last_cr = false;
			pop3_xform_end_line(x);
			continue;
		}
		/* RFC 1939 section 3: a line starting with the termination
		 * octet is byte-stuffed. */
		if (x->at_line_start && c == '.')
			*o++ = '.';
		*o++ = c;
		x->at_line_start = false;
		x->last_cr = c == '\r';
		if (c != '\r')
			x->line_blank = false;
	}
	return (size_t)(o - out);
}

size_t pop3_xform_finish(struct pop3_xform *x, unsigned char *out)
{
	unsigned char *o = out;

	if (!x->is_done) {
		/* A file not ending in LF: end its last line first. */
		if (x->last_cr) {
			*o++ = '\n';
		} else if (!x->at_line_start) {
			*o++ = '\r';
			*o++ = '\n';
		}
	}
	*o++ = '.';
	*o++ = '\r';
	*o++ = '\n';
	x->is_done = true;
	return (size_t)(o - out);
}

/* ---- UIDL ---- */

static bool pop3_uidl_is_valid(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++) {
		unsigned char c = (unsigned char)id[i];

		if (i >= POP3_UIDL_MAX_LEN || c < 0x21 || c > 0x7e)
			return false;
	}
	return i > 0;
}

const char *pop3_uidl(const char *basename, char buf[POP3_UIDL_BUF_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char hash[crypto_hash_sha256_BYTES];

	if (pop3_uidl_is_valid(basename))
		return basename;
	crypto_hash_sha256(hash, (const unsigned char *)basename,
			   strlen(basename));
	for (size_t i = 0; i < POP3_UIDL_HASH_LEN / 2; i++) {
		buf[i * 2] = hex[hash[i] >> 4];
		buf[i * 2 + 1] = hex[hash[i] & 0x0f];
	}
	buf[POP3_UIDL_HASH_LEN] = '\0';
	return buf;
}
