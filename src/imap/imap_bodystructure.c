/* imap_bodystructure.c: BODY/BODYSTRUCTURE writer and section lookup.
 * Parameter, disposition and language values are parsed from the raw
 * header values on every call (they are small); sizes come from the tree. */
#include "imap/imap_bodystructure.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_envelope.h"
#include "mail/mime_param.h"
#include "mail/rfc5322.h"

#define EMPTY_BODY "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL " \
	"\"7bit\" 0 0"
#define EMPTY_ENVELOPE "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"

/* TODO: use imap_append_string() from imap/imap_quote.h when it exists */
static void add_str(struct evbuffer *out, const char *s)
{
	imap_envelope_append_nstring(out, s, s == NULL ? 0 : strlen(s));
}

static void add_field(struct evbuffer *out, const struct message_part *p,
		      enum message_field f)
{
	imap_envelope_append_nstring(out, p->fields[f], p->field_lens[f]);
}

static void write_params(struct evbuffer *out, const struct mime_params *pr,
			 bool add_charset)
{
	unsigned int i;

	if (pr->count == 0 && !add_charset) {
		evbuffer_add(out, "NIL", 3);
		return;
	}
	evbuffer_add(out, "(", 1);
	for (i = 0; i < pr->count; i++) {
		if (i > 0)
			evbuffer_add(out, " ", 1);
		add_str(out, pr->v[i].name);
		evbuffer_add(out, " ", 1);
		add_str(out, pr->v[i].value);
	}
	if (add_charset) {
		evbuffer_add_printf(out, "%s\"charset\" \"us-ascii\"",
				    pr->count > 0 ? " " : "");
	}
	evbuffer_add(out, ")", 1);
}

/* Content-Type parameters of a part, with Dovecot's charset default. */
static void write_type_params(struct evbuffer *out,
			      const struct message_part *p)
{
	const char *ct = p->fields[MESSAGE_FIELD_CONTENT_TYPE];
	struct mime_params params = { NULL, 0 };
	char *type = NULL, *subtype = NULL;
	bool is_text = (p->flags & MESSAGE_PART_FLAG_TEXT) != 0;

	if (ct != NULL)
		mime_content_type_parse(ct, p->field_lens[
			MESSAGE_FIELD_CONTENT_TYPE], &type, &subtype, &params);
	write_params(out, &params, is_text &&
		     mime_params_get(&params, "charset") == NULL);
	mime_params_free(&params);
	free(type);
	free(subtype);
}

/* body-ext-1part / body-ext-mpart tail: disposition language location. */
static void write_dsp_lang_loc(struct evbuffer *out,
			       const struct message_part *p)
{
	const char *v = p->fields[MESSAGE_FIELD_CONTENT_DISPOSITION];
	struct mime_params params = { NULL, 0 };
	char *disp = NULL, **langs = NULL;
	unsigned int i, n = 0;

	evbuffer_add(out, " ", 1);
	if (v != NULL)
		mime_disposition_parse(v, p->field_lens[
			MESSAGE_FIELD_CONTENT_DISPOSITION], &disp, &params);
	if (disp == NULL) {
		evbuffer_add(out, "NIL", 3);
	} else {
		evbuffer_add(out, "(", 1);
		add_str(out, disp);
		evbuffer_add(out, " ", 1);
		write_params(out, &params, false);
		evbuffer_add(out, ")", 1);
	}
	mime_params_free(&params);
	free(disp);
	evbuffer_add(out, " ", 1);
	v = p->fields[MESSAGE_FIELD_CONTENT_LANGUAGE];
	if (v != NULL)
		mime_language_parse(v, p->field_lens[
			MESSAGE_FIELD_CONTENT_LANGUAGE], &langs, &n);
	if (n == 0) {
		evbuffer_add(out, "NIL", 3);
	} else {
		evbuffer_add(out, "(", 1);
		for (i = 0; i < n; i++) {
			if (i > 0)
				evbuffer_add(out, " ", 1);
			add_str(out, langs[i]);
		}
		evbuffer_add(out, ")", 1);
	}
	mime_strings_free(langs, n);
	evbuffer_add(out, " ", 1);
	add_field(out, p, MESSAGE_FIELD_CONTENT_LOCATION);
}

static void write_part(struct evbuffer *out, const struct message_part *p,
		       bool extended);

static void write_multipart(struct evbuffer *out,
			    const struct message_part *p, bool extended)
{
	const struct message_part *c;
	struct mime_params params = { NULL, 0 };
	char *type = NULL, *subtype = NULL;
	const char *ct = p->fields[MESSAGE_FIELD_CONTENT_TYPE];

	if (p->children == NULL) {
		evbuffer_add_printf(out, "%s%s)", EMPTY_BODY,
				    extended ? " NIL NIL NIL NIL" : "");
	}
	for (c = p->children; c != NULL; c = c->next)
		write_part(out, c, extended);
	evbuffer_add(out, " ", 1);
	add_str(out, p->subtype);
	if (!extended)
		return;
	evbuffer_add(out, " ", 1);
	if (ct != NULL)
		mime_content_type_parse(ct, p->field_lens[
			MESSAGE_FIELD_CONTENT_TYPE], &type, &subtype, &params);
	write_params(out, &params, false);
	mime_params_free(&params);
	free(type);
	free(subtype);
	write_dsp_lang_loc(out, p);
}

/* body-type-1part: basic, text or message/rfc822. */
static void write_single(struct evbuffer *out, const struct message_part *p,
			 bool extended)
{
	const char *cte = p->fields[MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING];
	char *enc = cte == NULL ? NULL : mime_token_parse(cte, p->field_lens[
		MESSAGE_FIELD_CONTENT_TRANSFER_ENCODING]);

	add_str(out, p->type);
	evbuffer_add(out, " ", 1);
	add_str(out, p->subtype);
	evbuffer_add(out, " ", 1);
	write_type_params(out, p);
	evbuffer_add(out, " ", 1);
	add_field(out, p, MESSAGE_FIELD_CONTENT_ID);
	evbuffer_add(out, " ", 1);
	add_field(out, p, MESSAGE_FIELD_CONTENT_DESCRIPTION);
	evbuffer_add(out, " ", 1);
	add_str(out, enc != NULL ? enc : "7bit");
	free(enc);
	evbuffer_add_printf(out, " %llu",
			    (unsigned long long)p->body.virtual_size);
	if ((p->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822) != 0) {
		/* body-type-msg: envelope body body-fld-lines */
		evbuffer_add(out, " ", 1);
		if (p->children != NULL) {
			imap_envelope_write(out, p->children);
			evbuffer_add(out, " ", 1);
			write_part(out, p->children, extended);
		} else {
			evbuffer_add_printf(out, "%s %s%s)", EMPTY_ENVELOPE,
					    EMPTY_BODY, extended ?
					    " NIL NIL NIL NIL" : "");
		}
	}
	if ((p->flags & (MESSAGE_PART_FLAG_TEXT |
			 MESSAGE_PART_FLAG_MESSAGE_RFC822)) != 0)
		evbuffer_add_printf(out, " %llu",
				    (unsigned long long)p->body.lines);
	if (!extended)
		return;
	evbuffer_add(out, " ", 1);
	add_field(out, p, MESSAGE_FIELD_CONTENT_MD5);
	write_dsp_lang_loc(out, p);
}

static void write_part(struct evbuffer *out, const struct message_part *p,
		       bool extended)
{
	evbuffer_add(out, "(", 1);
	if ((p->flags & MESSAGE_PART_FLAG_MULTIPART) != 0)
		write_multipart(out, p, extended);
	else
		write_single(out, p, extended);
	evbuffer_add(out, ")", 1);
}

void imap_bodystructure_write(struct evbuffer *out,
			      const struct message_part *part, bool extended)
{
	write_part(out, part, extended);
}

/* ---- sections ---- */

static const struct message_part *nth_child(const struct message_part *p,
					    unsigned int n)
{
	const struct message_part *c = p->children;

	for (; c != NULL && n > 1; n--)
		c = c->next;
	return c;
}

/* RFC 3501 6.4.5 part numbering, as Dovecot resolves it: a multipart's
 * number picks a child; a message/rfc822 part is entered (its message's
 * multipart children, or "1" for its single body); any other part
 * accepts one trailing ".1" meaning itself. */
static const struct message_part *
resolve_path(const struct message_part *root, const unsigned int *path,
	     unsigned int path_len)
{
	const struct message_part *p = root;
	bool exhausted = false;
	unsigned int i;

	for (i = 0; i < path_len && p != NULL; i++) {
		if (i > 0 && p->children != NULL &&
		    (p->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822) != 0) {
			p = p->children;
			exhausted = false;
		}
		if ((p->flags & MESSAGE_PART_FLAG_MULTIPART) != 0) {
			p = nth_child(p, path[i]);
			exhausted = false;
		} else if (path[i] != 1 || exhausted) {
			p = NULL;
		} else {
			exhausted = true;
		}
	}
	return p;
}

const struct message_part *
imap_section_part(const struct message_part *root, const unsigned int *path,
		  unsigned int path_len)
{
	return resolve_path(root, path, path_len);
}

static void range_header(const struct message_part *p,
			 struct imap_section_range *r)
{
	r->offset = p->header_offset;
	r->physical_size = p->header.physical;
	r->virtual_size = p->header.virtual_size;
}

static void range_body(const struct message_part *p,
		       struct imap_section_range *r)
{
	r->offset = p->body_offset;
	r->physical_size = p->body.physical;
	r->virtual_size = p->body.virtual_size;
}

int imap_section_lookup(const struct message_part *root,
			const unsigned int *path, unsigned int path_len,
			enum imap_section_kind kind,
			struct imap_section_range *r)
{
	const struct message_part *p = root;

	memset(r, 0, sizeof(*r));
	if (path_len > 0) {
		p = resolve_path(root, path, path_len);
		if (p == NULL)
			return -1;
		if (kind != IMAP_SECTION_NONE && kind != IMAP_SECTION_MIME) {
			/* HEADER/TEXT of a part: its encapsulated message */
			if ((p->flags & MESSAGE_PART_FLAG_MESSAGE_RFC822) ==
			    0 || p->children == NULL)
				return -1;
			p = p->children;
		}
	}
	switch (kind) {
	case IMAP_SECTION_NONE:
		if (path_len > 0) {
			range_body(p, r);
			return 0;
		}
		r->offset = p->header_offset;
		r->physical_size = p->header.physical + p->body.physical;
		r->virtual_size = p->header.virtual_size +
			p->body.virtual_size;
		return 0;
	case IMAP_SECTION_MIME:
		if (path_len == 0)
			return -1;
		/* fall through */
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
		range_header(p, r);
		return 0;
	case IMAP_SECTION_TEXT:
		range_body(p, r);
		return 0;
	}
	return -1;
}

int imap_section_parse(const char *spec, unsigned int *path,
		       unsigned int path_max, unsigned int *path_len_r,
		       enum imap_section_kind *kind_r)
{
	static const struct {
		const char *name;
		enum imap_section_kind kind;
	} kinds[] = {
		{ "HEADER.FIELDS.NOT", IMAP_SECTION_HEADER_FIELDS_NOT },
		{ "HEADER.FIELDS", IMAP_SECTION_HEADER_FIELDS },
		{ "HEADER", IMAP_SECTION_HEADER },
		{ "TEXT", IMAP_SECTION_TEXT },
		{ "MIME", IMAP_SECTION_MIME },
	};
	unsigned int n = 0, i;
	unsigned long v;
	char *end;

	*kind_r = IMAP_SECTION_NONE;
	while (*spec >= '1' && *spec <= '9') {
		v = strtoul(spec, &end, 10);
		if (n == path_max || v > 0xffffff)
			return -1;
		path[n++] = (unsigned int)v;
		spec = end;
		if (*spec == '\0') {
			*path_len_r = n;
			return 0;
		}
		if (*spec++ != '.' || *spec == '\0')
			return -1;	/* "1x" or a trailing dot */
	}
	*path_len_r = n;
	if (*spec == '\0')
		return n == 0 ? 0 : -1;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcasecmp(spec, kinds[i].name) == 0) {
			*kind_r = kinds[i].kind;
			return kinds[i].kind == IMAP_SECTION_MIME && n == 0 ?
				-1 : 0;
		}
	}
	return -1;
}

static bool name_listed(const char *name, size_t len,
			const char *const *names, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		if (strlen(names[i]) == len &&
		    strncasecmp(names[i], name, len) == 0)
			return true;
	}
	return false;
}

/* Writes raw with every bare LF as CRLF. */
static size_t add_crlf(struct evbuffer *out, const char *raw, size_t len)
{
	size_t i, start = 0, n = 0;

	for (i = 0; i < len; i++) {
		if (raw[i] != '\n' || (i > 0 && raw[i - 1] == '\r'))
			continue;
		evbuffer_add(out, raw + start, i - start);
		evbuffer_add(out, "\r\n", 2);
		n += i - start + 2;
		start = i + 1;
	}
	evbuffer_add(out, raw + start, len - start);
	return n + len - start;
}

size_t imap_header_fields_write(struct evbuffer *out, const char *hdr,
				size_t len, const char *const *names,
				unsigned int names_count, bool exclude)
{
	struct rfc5322_field f;
	size_t pos = 0, n = 0;

	while (rfc5322_header_next(hdr, len, &pos, &f)) {
		if (f.name_len == 0 ||
		    name_listed(f.name, f.name_len, names, names_count) ==
		    exclude)
			continue;
		n += add_crlf(out, f.raw, f.raw_len);
		if (f.raw_len == 0 || f.raw[f.raw_len - 1] != '\n') {
			evbuffer_add(out, "\r\n", 2);
			n += 2;
		}
	}
	/* the blank line only if the header had one (Dovecot) */
	if ((len >= 1 && hdr[len - 1] == '\n') &&
	    (len == 1 || hdr[len - 2] == '\n' || (hdr[len - 2] == '\r' &&
	     (len == 2 || hdr[len - 3] == '\n')))) {
		evbuffer_add(out, "\r\n", 2);
		n += 2;
	}
	return n;
}
