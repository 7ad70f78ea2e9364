/* fuzz_mime.c: MIME parser (fed in two chunks at a data-chosen point) ->
 * serialize -> deserialize -> serialize must round trip; BODYSTRUCTURE,
 * BODY and ENVELOPE of both trees must be identical; section lookups and
 * HEADER.FIELDS filtering must stay in range. Structure-aware round trip:
 * the BODYSTRUCTURE, BODY and ENVELOPE text is parsed back with the IMAP
 * command parser (literals accepted) and the resulting lists must follow
 * RFC 3501 section 9's body/envelope grammar (balanced lists, strings
 * where strings belong, numbers) and match the part tree: kinds, child
 * counts, type/subtype, sizes and line counts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "imap/imap_parser.h"
#include "mail/message_parser.h"

static void structure(const struct message_part *root, struct evbuffer *b)
{
	imap_bodystructure_write(b, root, true);
	imap_bodystructure_write(b, root, false);
	imap_envelope_write(b, root);
}

/* ---- BODYSTRUCTURE / BODY / ENVELOPE read back by the IMAP parser ---- */

static bool is_string(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_QUOTED || (a->type == IMAP_ARG_LITERAL &&
					      !a->is_streamed);
}

static bool is_nstring(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_NIL || is_string(a);
}

/* number = 1*DIGIT, at most 2^63 here (sizes are 64-bit). */
static bool is_number(const struct imap_arg *a, uint64_t want)
{
	uint64_t v = 0;
	size_t i;

	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19)
		return false;
	for (i = 0; i < a->len; i++) {
		if (a->str[i] < '0' || a->str[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(a->str[i] - '0');
	}
	return v == want;
}

static bool is_any_number(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && a->len > 0 && a->len <= 19 &&
		strspn(a->str, "0123456789") == a->len;
}

/* body-fld-param = "(" string SP string *(SP string SP string) ")" / nil */
static void check_params(const struct imap_arg *a)
{
	size_t i;

	if (a->type == IMAP_ARG_NIL)
		return;
	if (a->type != IMAP_ARG_LIST || a->list_count == 0 ||
	    a->list_count % 2 != 0)
		abort();
	for (i = 0; i < a->list_count; i++) {
		if (!is_string(&a->list[i]))
			abort();
	}
}

/* address = "(" nstring SP nstring SP nstring SP nstring ")" */
static void check_addresses(const struct imap_arg *a)
{
	size_t i, j;

	if (a->type == IMAP_ARG_NIL)
		return;
	if (a->type != IMAP_ARG_LIST || a->list_count == 0)
		abort();
	for (i = 0; i < a->list_count; i++) {
		const struct imap_arg *addr = &a->list[i];

		if (addr->type != IMAP_ARG_LIST || addr->list_count != 4)
			abort();
		for (j = 0; j < 4; j++) {
			if (!is_nstring(&addr->list[j]))
				abort();
		}
	}
}

/* RFC 3501 9 envelope: date subject from sender reply-to to cc bcc
 * in-reply-to message-id */
static void check_envelope(const struct imap_arg *a)
{
	size_t i;

	if (a->type != IMAP_ARG_LIST || a->list_count != 10)
		abort();
	for (i = 0; i < 10; i++) {
		if (i >= 2 && i < 8)
			check_addresses(&a->list[i]);
		else if (!is_nstring(&a->list[i]))
			abort();
	}
}

/* body-ext: [dsp [lang [loc *(extension)]]] after md5 / params. */
static void check_ext_tail(const struct imap_arg *a, size_t n)
{
	size_t i;

	if (n > 0 && a[0].type != IMAP_ARG_NIL &&
	    (a[0].type != IMAP_ARG_LIST || a[0].list_count != 2 ||
	     !is_string(&a[0].list[0])))
		abort();
	if (n > 0 && a[0].type == IMAP_ARG_LIST)
		check_params(&a[0].list[1]);
	if (n > 1 && !is_nstring(&a[1])) {
		if (a[1].type != IMAP_ARG_LIST || a[1].list_count == 0)
			abort();
		for (i = 0; i < a[1].list_count; i++) {
			if (!is_string(&a[1].list[i]))
				abort();
		}
	}
	if (n > 2 && !is_nstring(&a[2]))
		abort();
}

static bool str_equals(const struct imap_arg *a, const char *s)
{
	return s != NULL && a->len == strlen(s) &&
		memcmp(a->str, s, a->len) == 0;
}

static void check_body(const struct imap_arg *a,
		       const struct message_part *p, bool extended,
		       unsigned depth);

static void check_multipart(const struct imap_arg *a,
			    const struct message_part *p, bool extended,
			    unsigned depth)
{
	const struct message_part *child = p != NULL ? p->children : NULL;
	size_t i, n = 0;

	while (n < a->list_count && a->list[n].type == IMAP_ARG_LIST)
		n++;
	if (p != NULL && n != (p->children_count > 0 ? p->children_count : 1))
		abort();
	for (i = 0; i < n; i++) {
		check_body(&a->list[i], child, extended, depth + 1);
		if (child != NULL)
			child = child->next;
	}
	if (n >= a->list_count || !is_string(&a->list[n]))
		abort();
	if (!extended) {
		if (a->list_count != n + 1)
			abort();
		return;
	}
	if (a->list_count < n + 2)
		abort();
	check_params(&a->list[n + 1]);
	check_ext_tail(&a->list[n + 2], a->list_count - n - 2);
}

static void check_single(const struct imap_arg *a,
			 const struct message_part *p, bool extended,
			 unsigned depth)
{
	const struct imap_arg *l = a->list;
	bool is_msg = p != NULL ?
		(p->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822) != 0 :
		a->list_count > 9 && l[7].type == IMAP_ARG_LIST;
	bool is_text = p != NULL ? (p->flags & MESSAGE_PART_FLAG_TEXT) != 0 :
		a->list_count > 7 && is_any_number(&l[7]);
	size_t n = 7 + (is_msg ? 3 : is_text ? 1 : 0);

	/* type subtype params id desc enc octets */
	if (a->list_count < n || !is_string(&l[0]) || !is_string(&l[1]) ||
	    !is_nstring(&l[3]) || !is_nstring(&l[4]) || !is_string(&l[5]))
		abort();
	check_params(&l[2]);
	if (p != NULL && (!str_equals(&l[0], p->type) ||
			  !str_equals(&l[1], p->subtype) ||
			  !is_number(&l[6], p->body.virtual_size)))
		abort();
	if (!is_any_number(&l[6]))
		abort();
	if (is_msg) {
		check_envelope(&l[7]);
		check_body(&l[8], p != NULL ? p->children : NULL, extended,
			   depth + 1);
	}
	if ((is_msg || is_text) && !(p != NULL ?
	    is_number(&l[n - 1], p->body.lines) : is_any_number(&l[n - 1])))
		abort();
	if (!extended) {
		if (a->list_count != n)
			abort();
		return;
	}
	if (a->list_count < n + 1 || !is_nstring(&l[n]))
		abort();
	check_ext_tail(&l[n + 1], a->list_count - n - 1);
}

/* body = "(" (body-type-1part / body-type-mpart) ")"; p is the part it
 * was written from (NULL for the made-up parts of empty containers). */
static void check_body(const struct imap_arg *a,
		       const struct message_part *p, bool extended,
		       unsigned depth)
{
	if (a->type != IMAP_ARG_LIST || a->list_count == 0 || depth > 1000)
		abort();
	if (a->list[0].type == IMAP_ARG_LIST) {
		if (p != NULL && (p->flags & MESSAGE_PART_FLAG_MULTIPART) == 0)
			abort();
		check_multipart(a, p, extended, depth);
	} else {
		if (p != NULL && (p->flags & MESSAGE_PART_FLAG_MULTIPART) != 0)
			abort();
		check_single(a, p, extended, depth);
	}
}

/* RFC 3501's body-type-mpart puts the child bodies side by side, "(..)(..)",
 * while the command parser wants SP between arguments: copy the response
 * text with a SP added between ')' and '(' outside strings and literals. */
static void add_list_spaces(const unsigned char *d, size_t len,
			    struct evbuffer *out)
{
	size_t i = 0, n;
	bool in_quote = false;

	while (i < len) {
		if (in_quote) {
			if (d[i] == '\\' && i + 1 < len)
				evbuffer_add(out, d + i++, 1);
			else if (d[i] == '"')
				in_quote = false;
		} else if (d[i] == '"') {
			in_quote = true;
		} else if (d[i] == '{') {	/* {n}CRLF + n bytes */
			n = strtoul((const char *)d + i + 1, NULL, 10);
			while (i < len && d[i] != '\n')
				evbuffer_add(out, d + i++, 1);
			n = n < len - i ? n : len - i - 1;
			evbuffer_add(out, d + i, n + 1);
			i += n + 1;
			continue;
		} else if (d[i] == '(' && i > 0 && d[i - 1] == ')') {
			evbuffer_add(out, " ", 1);
		}
		evbuffer_add(out, d + i++, 1);
	}
}

/* Parses "x FETCH <bodystructure> <body> <envelope>\r\n" written from
 * root and checks it against RFC 3501's body grammar and the tree. */
static void check_structure_grammar(const struct message_part *root)
{
	struct imap_parser_settings set;
	struct imap_parser *p;
	struct evbuffer *raw = evbuffer_new(), *b = evbuffer_new();
	const struct imap_command *cmd;
	const unsigned char *d;
	size_t len, pos = 0, used;
	int ret;

	evbuffer_add(b, "x FETCH ", 8);
	imap_bodystructure_write(raw, root, true);
	evbuffer_add(raw, " ", 1);
	imap_bodystructure_write(raw, root, false);
	evbuffer_add(raw, " ", 1);
	imap_envelope_write(raw, root);
	add_list_spaces(evbuffer_pullup(raw, -1), evbuffer_get_length(raw), b);
	evbuffer_add(b, "\r\n", 2);
	len = evbuffer_get_length(b);
	d = evbuffer_pullup(b, -1);
	imap_parser_settings_default(&set, true);
	set.max_line_length = set.max_literal_size = 64 * 1024 * 1024;
	set.max_list_depth = 10000;
	set.max_args = SIZE_MAX;
	p = imap_parser_create(&set);
	for (;;) {
		ret = imap_parser_feed(p, d + pos, len - pos, &used);
		pos += used;
		if (ret != IMAP_PARSE_LITERAL ||
		    imap_parser_literal_accept(p, IMAP_LITERAL_MEMORY) < 0)
			break;
	}
	if (ret != IMAP_PARSE_DONE || pos != len)
		abort();
	cmd = imap_parser_command(p);
	if (cmd->args_count != 3)
		abort();
	check_body(&cmd->args[0], root, true, 0);
	check_body(&cmd->args[1], root, false, 0);
	check_envelope(&cmd->args[2]);
	imap_parser_destroy(&p);
	evbuffer_free(raw);
	evbuffer_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "subject", "from" };
	struct message_parser_limits lim = { 200, 20, 1024 };
	struct message_parser *p = message_parser_create(&lim);
	struct message_part *root, *copy;
	struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
	struct imap_section_range r;
	unsigned char *blob, *blob2;
	size_t blob_len, blob2_len, split = size > 0 ? data[0] % (size + 1) : 0;
	unsigned int path[3] = { 1, 2, 1 }, k;
	const char *error;

	message_parser_feed(p, data, split);
	message_parser_feed(p, data + split, size - split);
	root = message_parser_finish(&p);
	message_part_serialize(root, &blob, &blob_len);
	if (message_part_deserialize(blob, blob_len, 1000, 100, &copy,
				     &error) < 0)
		abort();
	message_part_serialize(copy, &blob2, &blob2_len);
	if (blob_len != blob2_len || memcmp(blob, blob2, blob_len) != 0)
		abort();
	structure(root, a);
	structure(copy, b);
	check_structure_grammar(root);
	if (evbuffer_get_length(a) != evbuffer_get_length(b) ||
	    memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1),
		   evbuffer_get_length(a)) != 0)
		abort();
	for (k = 0; k <= 3; k++) {
		enum imap_section_kind kind;

		for (kind = IMAP_SECTION_NONE; kind <= IMAP_SECTION_MIME;
		     kind++) {
			if (imap_section_lookup(root, path, k, kind, &r) < 0)
				continue;
			if (r.offset + r.physical_size > size ||
			    r.virtual_size < r.physical_size)
				abort();
			if (kind == IMAP_SECTION_HEADER_FIELDS)
				imap_header_fields_write(a,
					(const char *)data + r.offset,
					r.physical_size, names, 2, k == 1);
		}
	}
	evbuffer_free(a);
	evbuffer_free(b);
	free(blob);
	free(blob2);
	message_part_free(&root);
	message_part_free(&copy);
	return 0;
}
