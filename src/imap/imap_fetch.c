/* imap_fetch.c: fetch-att parsing (RFC 3501 6.4.5 / 9 "fetch-att", RFC
 * 3516 BINARY*, RFC 7162 3.1.4 CHANGEDSINCE), the LF -> CRLF range
 * converter used to stream BODY[...] and the decoding one for BINARY[...]
 * (see imap_fetch.h). Also the MIME tree's cache entry
 * (imap_parts_cache_*). */
#include "imap/imap_fetch.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_quote.h"
#include "lib/log.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mail/message_parser.h"

/* RFC 3501 section 9: number = 32-bit unsigned; RFC 7162: modseq is a
 * 63-bit value. */
#define FETCH_NUMBER_MAX UINT64_C(4294967295)
#define FETCH_MODSEQ_MAX UINT64_C(9223372036854775807)

struct fetch_simple {
	const char *name;
	enum imap_fetch_type type;
	unsigned needs;
};

static const struct fetch_simple fetch_simple_atts[] = {
	{ "UID", IMAP_FETCH_UID, 0 },
	{ "FLAGS", IMAP_FETCH_FLAGS, 0 },
	{ "INTERNALDATE", IMAP_FETCH_INTERNALDATE, 0 },
	{ "RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, 0 },
	{ "MODSEQ", IMAP_FETCH_MODSEQ, 0 },
	{ "ENVELOPE", IMAP_FETCH_ENVELOPE,
	  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER },
	{ "BODY", IMAP_FETCH_BODY,
	  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS },
	{ "BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE,
	  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_PARTS },
	/* RFC 3501 6.4.5: RFC822 = BODY[], RFC822.HEADER = BODY.PEEK[HEADER],
	 * RFC822.TEXT = BODY[TEXT]; the reply keeps the old names. */
	{ "RFC822", IMAP_FETCH_RFC822,
	  IMAP_FETCH_NEED_FILE | IMAP_FETCH_SETS_SEEN },
	{ "RFC822.HEADER", IMAP_FETCH_RFC822_HEADER,
	  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER },
	{ "RFC822.TEXT", IMAP_FETCH_RFC822_TEXT,
	  IMAP_FETCH_NEED_FILE | IMAP_FETCH_NEED_HEADER |
	  IMAP_FETCH_SETS_SEEN },
};

/* RFC 3501 6.4.5 macros; only alone, never inside a list. */
static const char *const fetch_macro_all[] = {
	"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", NULL
};
static const char *const fetch_macro_fast[] = {
	"FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL
};
static const char *const fetch_macro_full[] = {
	"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY", NULL
};

static char *fetch_buf_take(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	char *str = xmalloc(len + 1);

	evbuffer_remove(buf, str, len);
	str[len] = '\0';
	evbuffer_free(buf);
	return str;
}

static bool fetch_has_type(const struct imap_fetch_spec *spec,
			   enum imap_fetch_type type)
{
	for (size_t i = 0; i < spec->count; i++) {
		if (spec->items[i].type == type)
			return true;
	}
	return false;
}

static struct imap_fetch_item *fetch_new_item(struct imap_fetch_spec *spec,
					      const char **error_r)
{
	struct imap_fetch_item *item;

	if (spec->count == IMAP_FETCH_ITEMS_MAX) {
		*error_r = "Too many FETCH items";
		return NULL;
	}
	spec->items = xreallocarray(spec->items, spec->count + 1,
				    sizeof(*spec->items));
	item = &spec->items[spec->count++];
	memset(item, 0, sizeof(*item));
	return item;
}

/* Adds a simple item (no section) by name. Returns 1 added, 0 not a
 * simple item name, -1 error. */
static int fetch_add_simple(struct imap_fetch_spec *spec, const char *name,
			    const char **error_r)
{
	const struct fetch_simple *s = NULL;
	struct imap_fetch_item *item;

	for (size_t i = 0; i < sizeof(fetch_simple_atts) /
	     sizeof(fetch_simple_atts[0]); i++) {
		if (strcasecmp(name, fetch_simple_atts[i].name) == 0)
			s = &fetch_simple_atts[i];
	}
	if (s == NULL)
		return 0;
	/* Items without data of their own are sent once. */
	if ((s->type == IMAP_FETCH_UID || s->type == IMAP_FETCH_FLAGS ||
	     s->type == IMAP_FETCH_MODSEQ) && fetch_has_type(spec, s->type))
		return 1;
	if ((item = fetch_new_item(spec, error_r)) == NULL)
		return -1;
	item->type = s->type;
	item->needs = s->needs;
	item->label = xstrdup(s->name);
	if (s->type == IMAP_FETCH_RFC822_HEADER)
		item->kind = IMAP_SECTION_HEADER;
	else if (s->type == IMAP_FETCH_RFC822_TEXT)
		item->kind = IMAP_SECTION_TEXT;
	spec->needs |= s->needs;
	return 1;
}

/* "<start.length>" (RFC 3501 9: "<" number "." nz-number ">"). Like
 * Dovecot, "<start>" alone is taken too: from start to the end. */
static int fetch_parse_partial(struct imap_fetch_item *item, const char *s,
			       const char **error_r)
{
	const char *dot, *end;

	if (*s == '\0')
		return 0;
	end = s + strlen(s) - 1;
	dot = memchr(s, '.', (size_t)(end - s));
	if (dot == NULL)
		dot = end;
	item->partial_len = UINT64_MAX;
	if (*s != '<' || *end != '>' || end == s ||
	    str_to_u64(s + 1, (size_t)(dot - s - 1), FETCH_NUMBER_MAX,
		       &item->partial_start) < 0 ||
	    (dot != end &&
	     (str_to_u64(dot + 1, (size_t)(end - dot - 1), FETCH_NUMBER_MAX,
			 &item->partial_len) < 0 || item->partial_len == 0))) {
		*error_r = "Invalid partial range in FETCH";
		return -1;
	}
	item->has_partial = true;
	return 0;
}

/* RFC 5322 ftext: printable US-ASCII but ':'. */
static bool fetch_is_field_name(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

/* The header-list of HEADER.FIELDS[.NOT]: names kept upper-cased, and
 * written into label as " (A B)". */
static int fetch_parse_fields(struct imap_fetch_item *item,
			      const struct imap_arg *list,
			      struct evbuffer *label, const char **error_r)
{
	const struct imap_arg *names;
	size_t count, len;
	const char *name;

	if (!imap_arg_get_list(list, &names, &count) || count == 0 ||
	    count > IMAP_FETCH_FIELDS_MAX) {
		*error_r = "Invalid header field list in FETCH BODY[]";
		return -1;
	}
	item->fields = xcalloc(count, sizeof(*item->fields));
	evbuffer_add(label, " (", 2);
	for (size_t i = 0; i < count; i++) {
		if (!imap_arg_get_astring(&names[i], &name, &len) ||
		    !fetch_is_field_name(name, len)) {
			*error_r = "Invalid header field name in FETCH BODY[]";
			return -1;
		}
		item->fields[i] = xstrndup(name, len);
		for (char *p = item->fields[i]; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		item->fields_count++;
		if (i > 0)
			evbuffer_add(label, " ", 1);
		imap_append_astring(label, item->fields[i], len, 0);
	}
	evbuffer_add(label, ")", 1);
	return 0;
}

/* Fills a section item from the spec text between '[' and ']' (or the end
 * of the atom when a field list follows). */
static int fetch_section_spec(struct imap_fetch_item *item,
			      const char *spec, size_t len,
			      struct evbuffer *label, const char **error_r)
{
	char *copy = xstrndup(spec, len);
	int ret;

	ret = imap_section_parse(copy, item->path, IMAP_FETCH_PATH_MAX,
				 &item->path_len, &item->kind);
	for (char *p = copy; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	evbuffer_add(label, copy, len);
	free(copy);
	if (ret < 0) {
		*error_r = "Invalid section in FETCH BODY[]";
		return -1;
	}
	return 0;
}

static void fetch_section_needs(struct imap_fetch_item *item, bool is_peek)
{
	item->needs = IMAP_FETCH_NEED_FILE;
	if (item->path_len > 0)
		item->needs |= IMAP_FETCH_NEED_PARTS;
	else if (item->kind != IMAP_SECTION_NONE)
		item->needs |= IMAP_FETCH_NEED_HEADER;
	if (!is_peek)
		item->needs |= IMAP_FETCH_SETS_SEEN;
}

/* BODY[...] / BODY.PEEK[...] starting at args[*i]; advances *i past the
 * arguments used (three for a header field list). */
static int fetch_add_section(struct imap_fetch_spec *spec,
			     const struct imap_arg *args, size_t count,
			     size_t *i, const char *atom, const char **error_r)
{
	bool is_peek = strncasecmp(atom, "BODY.PEEK[", 10) == 0;
	const char *spec_start = atom + (is_peek ? 10 : 5), *close, *tail;
	struct evbuffer *label = evbuffer_new();
	struct imap_fetch_item *item;
	int ret = -1;

	if ((item = fetch_new_item(spec, error_r)) == NULL)
		goto out;
	item->type = IMAP_FETCH_SECTION;
	evbuffer_add(label, "BODY[", 5);
	close = strchr(spec_start, ']');
	if (close != NULL) {
		if (fetch_section_spec(item, spec_start,
				       (size_t)(close - spec_start), label,
				       error_r) < 0)
			goto out;
		if (item->kind == IMAP_SECTION_HEADER_FIELDS ||
		    item->kind == IMAP_SECTION_HEADER_FIELDS_NOT) {
			*error_r = "Missing header field list in FETCH BODY[]";
			goto out;
		}
		tail = close + 1;
	} else {
		if (fetch_section_spec(item, spec_start, strlen(spec_start),
				       label, error_r) < 0)
			goto out;
		if ((item->kind != IMAP_SECTION_HEADER_FIELDS &&
		     item->kind != IMAP_SECTION_HEADER_FIELDS_NOT) ||
		    *i + 2 >= count ||
		    fetch_parse_fields(item, &args[*i + 1], label,
				       error_r) < 0)
			goto out_syntax;
		if (args[*i + 2].type != IMAP_ARG_ATOM ||
		    args[*i + 2].str[0] != ']')
			goto out_syntax;
		tail = args[*i + 2].str + 1;
		*i += 2;
	}
	if (fetch_parse_partial(item, tail, error_r) < 0)
		goto out;
	evbuffer_add(label, "]", 1);
	if (item->has_partial)
		evbuffer_add_printf(label, "<%llu>",
				    (unsigned long long)item->partial_start);
	fetch_section_needs(item, is_peek);
	spec->needs |= item->needs;
	ret = 0;
	goto out;
out_syntax:
	if (*error_r == NULL)
		*error_r = "Invalid FETCH BODY[] section";
out:
	if (item != NULL)
		item->label = fetch_buf_take(label);
	else
		evbuffer_free(label);
	(*i)++;
	return ret;
}

/* BINARY[...], BINARY.PEEK[...], BINARY.SIZE[...] (RFC 3516 7:
 * section-binary = "[" [section-part] "]"; partial, not for SIZE). */
static int fetch_add_binary(struct imap_fetch_spec *spec, const char *atom,
			    const char **error_r)
{
	bool is_size = strncasecmp(atom, "BINARY.SIZE[", 12) == 0;
	bool is_peek = strncasecmp(atom, "BINARY.PEEK[", 12) == 0;
	const char *spec_start = atom + (is_size || is_peek ? 12 : 7);
	const char *close = strchr(spec_start, ']');
	struct evbuffer *label = evbuffer_new();
	struct imap_fetch_item *item;
	int ret = -1;

	if ((item = fetch_new_item(spec, error_r)) == NULL)
		goto out;
	item->type = is_size ? IMAP_FETCH_BINARY_SIZE : IMAP_FETCH_BINARY;
	evbuffer_add_printf(label, "%s[", is_size ? "BINARY.SIZE" : "BINARY");
	if (close == NULL ||
	    fetch_section_spec(item, spec_start, (size_t)(close - spec_start),
			       label, error_r) < 0 ||
	    item->kind != IMAP_SECTION_NONE) {
		*error_r = "Invalid section in FETCH BINARY[]: only part "
			"numbers are allowed";
		goto out;
	}
	if (is_size && close[1] != '\0') {
		*error_r = "FETCH BINARY.SIZE[] takes no partial range";
		goto out;
	}
	if (fetch_parse_partial(item, close + 1, error_r) < 0)
		goto out;
	evbuffer_add(label, "]", 1);
	if (item->has_partial)
		evbuffer_add_printf(label, "<%llu>",
				    (unsigned long long)item->partial_start);
	fetch_section_needs(item, is_peek || is_size);
	/* BINARY[] needs the root's CTE and type */
	if (item->path_len == 0)
		item->needs |= IMAP_FETCH_NEED_HEADER;
	spec->needs |= item->needs;
	ret = 0;
out:
	if (item != NULL)
		item->label = fetch_buf_take(label);
	else
		evbuffer_free(label);
	return ret;
}

/* One fetch-att at args[*i]. */
static int fetch_parse_att(struct imap_fetch_spec *spec,
			   const struct imap_arg *args, size_t count,
			   size_t *i, const char **error_r)
{
	const char *atom;
	int ret;

	if (args[*i].type != IMAP_ARG_ATOM) {
		*error_r = "Invalid FETCH item";
		return -1;
	}
	atom = args[*i].str;
	if (strncasecmp(atom, "BODY[", 5) == 0 ||
	    strncasecmp(atom, "BODY.PEEK[", 10) == 0)
		return fetch_add_section(spec, args, count, i, atom, error_r);
	if (strncasecmp(atom, "BINARY[", 7) == 0 ||
	    strncasecmp(atom, "BINARY.PEEK[", 12) == 0 ||
	    strncasecmp(atom, "BINARY.SIZE[", 12) == 0) {
		(*i)++;
		return fetch_add_binary(spec, atom, error_r);
	}
	ret = fetch_add_simple(spec, atom, error_r);
	if (ret == 0)
		*error_r = "Unknown FETCH item";
	(*i)++;
	return ret > 0 ? 0 : -1;
}

static int fetch_parse_macro(struct imap_fetch_spec *spec, const char *name,
			     bool *is_macro_r, const char **error_r)
{
	const char *const *names = NULL;

	if (strcasecmp(name, "ALL") == 0)
		names = fetch_macro_all;
	else if (strcasecmp(name, "FAST") == 0)
		names = fetch_macro_fast;
	else if (strcasecmp(name, "FULL") == 0)
		names = fetch_macro_full;
	*is_macro_r = names != NULL;
	for (; names != NULL && *names != NULL; names++) {
		if (fetch_add_simple(spec, *names, error_r) < 0)
			return -1;
	}
	return 0;
}

/* RFC 7162 3.1.4.1: "(CHANGEDSINCE n)". */
static int fetch_parse_modifiers(struct imap_fetch_spec *spec,
				 const struct imap_arg *arg,
				 const char **error_r)
{
	const struct imap_arg *mods;
	size_t count;
	const char *num;

	if (!imap_arg_get_list(arg, &mods, &count) || count == 0) {
		*error_r = "Invalid FETCH modifiers";
		return -1;
	}
	for (size_t i = 0; i < count; i++) {
		/* RFC 7162 3.2.6: "VANISHED" (checked in imap_fetch_parse) */
		if (imap_arg_atom_equals(&mods[i], "VANISHED") &&
		    !spec->has_vanished) {
			spec->has_vanished = true;
			continue;
		}
		if (!imap_arg_atom_equals(&mods[i], "CHANGEDSINCE") ||
		    i + 1 >= count || spec->has_changedsince ||
		    !imap_arg_get_atom(&mods[i + 1], &num) ||
		    str_to_u64z(num, FETCH_MODSEQ_MAX,
				&spec->changedsince) < 0) {
			*error_r = "Invalid FETCH modifier";
			return -1;
		}
		spec->has_changedsince = true;
		i++;
	}
	return 0;
}

/* Items from a list or a single att/macro; *used_r args consumed. */
static int fetch_parse_items(struct imap_fetch_spec *spec,
			     const struct imap_arg *args, size_t count,
			     size_t *used_r, const char **error_r)
{
	const struct imap_arg *list;
	size_t list_count, i = 0;
	bool is_macro;

	*used_r = 1;
	if (imap_arg_get_list(&args[0], &list, &list_count)) {
		if (list_count == 0) {
			*error_r = "Empty FETCH item list";
			return -1;
		}
		while (i < list_count) {
			if (fetch_parse_att(spec, list, list_count, &i,
					    error_r) < 0)
				return -1;
		}
		return 0;
	}
	if (args[0].type == IMAP_ARG_ATOM) {
		if (fetch_parse_macro(spec, args[0].str, &is_macro,
				      error_r) < 0)
			return -1;
		if (is_macro)
			return 0;
	}
	if (fetch_parse_att(spec, args, count, &i, error_r) < 0)
		return -1;
	*used_r = i;
	return 0;
}

/* UID first for UID FETCH (RFC 3501 6.4.8: always included). */
static void fetch_add_uid_first(struct imap_fetch_spec *spec)
{
	if (fetch_has_type(spec, IMAP_FETCH_UID))
		return;
	spec->items = xreallocarray(spec->items, spec->count + 1,
				    sizeof(*spec->items));
	memmove(spec->items + 1, spec->items,
		spec->count * sizeof(*spec->items));
	memset(spec->items, 0, sizeof(*spec->items));
	spec->items[0].type = IMAP_FETCH_UID;
	spec->items[0].label = xstrdup("UID");
	spec->count++;
}

int imap_fetch_parse(const struct imap_arg *args, size_t count, bool is_uid,
		     struct imap_fetch_spec *spec, const char **error_r)
{
	size_t used;

	memset(spec, 0, sizeof(*spec));
	*error_r = NULL;
	if (count == 0) {
		*error_r = "Missing FETCH items";
		return -1;
	}
	if (fetch_parse_items(spec, args, count, &used, error_r) < 0)
		return -1;
	if (used < count) {
		if (used + 1 != count ||
		    fetch_parse_modifiers(spec, &args[used], error_r) < 0) {
			if (*error_r == NULL)
				*error_r = "Invalid FETCH arguments";
			return -1;
		}
	}
	/* RFC 7162 3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE. */
	if (spec->has_vanished && (!is_uid || !spec->has_changedsince)) {
		*error_r = "VANISHED needs UID FETCH and CHANGEDSINCE";
		return -1;
	}
	/* RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ. */
	if (spec->has_changedsince &&
	    fetch_add_simple(spec, "MODSEQ", error_r) < 0)
		return -1;
	if (is_uid)
		fetch_add_uid_first(spec);
	spec->has_modseq = fetch_has_type(spec, IMAP_FETCH_MODSEQ);
	return 0;
}

void imap_fetch_spec_free(struct imap_fetch_spec *spec)
{
	for (size_t i = 0; i < spec->count; i++) {
		struct imap_fetch_item *item = &spec->items[i];

		for (unsigned int j = 0; j < item->fields_count; j++)
			free(item->fields[j]);
		free(item->fields);
		free(item->label);
	}
	free(spec->items);
	memset(spec, 0, sizeof(*spec));
}

void imap_fetch_partial_clip(const struct imap_fetch_item *item,
			     uint64_t vsize, uint64_t *skip_r,
			     uint64_t *count_r)
{
	*skip_r = 0;
	*count_r = vsize;
	if (!item->has_partial)
		return;
	if (item->partial_start >= vsize) {
		*skip_r = vsize;
		*count_r = 0;
		return;
	}
	*skip_r = item->partial_start;
	*count_r = vsize - item->partial_start;
	if (*count_r > item->partial_len)
		*count_r = item->partial_len;
}

/* ---- LF -> CRLF ---- */

void imap_crlf_init(struct imap_crlf *c, uint64_t skip, uint64_t count)
{
	c->skip = skip;
	c->left = count;
	c->last_cr = false;
}

/* Emits virtual octets src[0..len) honouring skip and left. */
static inline unsigned char *crlf_put(struct imap_crlf *c, unsigned char *o,
				      const unsigned char *src, size_t len)
{
	if (c->skip > 0) {
		if (c->skip >= len) {
			c->skip -= len;
			return o;
		}
		src += c->skip;
		len -= (size_t)c->skip;
		c->skip = 0;
	}
	if (len > c->left)
		len = (size_t)c->left;
	memcpy(o, src, len);
	c->left -= len;
	return o + len;
}

size_t imap_crlf_convert(struct imap_crlf *c, const void *in, size_t in_len,
			 void *out)
{
	const unsigned char *p = in, *end = p + in_len, *lf;
	unsigned char *o = out;

	while (p < end && c->left > 0) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			o = crlf_put(c, o, p, (size_t)(end - p));
			c->last_cr = end[-1] == '\r';
			break;
		}
		if (lf > p) {
			o = crlf_put(c, o, p, (size_t)(lf - p));
			c->last_cr = lf[-1] == '\r';
		}
		/* RFC 3501 2.2: lines end in CRLF on the wire. */
		if (c->last_cr)
			o = crlf_put(c, o, (const unsigned char *)"\n", 1);
		else
			o = crlf_put(c, o, (const unsigned char *)"\r\n", 2);
		c->last_cr = false;
		p = lf + 1;
	}
	return (size_t)(o - (unsigned char *)out);
}

/* ---- BINARY[] ---- */

void imap_binary_init(struct imap_binary *b, enum decode_type type,
		      uint64_t plain_len, uint64_t skip, uint64_t count)
{
	memset(b, 0, sizeof(*b));
	imap_crlf_init(&b->crlf, 0, UINT64_MAX);
	decode_init(&b->dec, type);
	b->plain_left = plain_len;
	b->skip = skip;
	b->left = count;
}

/* Takes n fresh decoded octets at out[0..n): counts them, drops those
 * before skip and after left, keeps the rest at out[0..). Returns the
 * octets kept. */
static size_t binary_clip(struct imap_binary *b, unsigned char *out,
			  size_t n)
{
	size_t drop = 0;

	b->size += n;
	if (b->skip > 0) {
		drop = b->skip < n ? (size_t)b->skip : n;
		b->skip -= drop;
	}
	n -= drop;
	if (n > b->left)
		n = (size_t)b->left;
	if (n > 0 && drop > 0)
		memmove(out, out + drop, n);
	b->left -= n;
	if (!b->has_nul && memchr(out, '\0', n) != NULL)
		b->has_nul = true;
	return n;
}

size_t imap_binary_convert(struct imap_binary *b, const void *in,
			   size_t in_len, void *scratch, void *out)
{
	const unsigned char *p = in;
	unsigned char *o = out;
	size_t plain = 0, n, done = 0;

	if (b->plain_left > 0) {
		plain = b->plain_left < in_len ? (size_t)b->plain_left :
			in_len;
		b->plain_left -= plain;
		n = imap_crlf_convert(&b->crlf, p, plain, o);
		done = binary_clip(b, o, n);
	}
	if (plain == in_len)
		return done;
	n = imap_crlf_convert(&b->crlf, p + plain, in_len - plain, scratch);
	n = decode_feed(&b->dec, scratch, n, o + done);
	return done + binary_clip(b, o + done, n);
}

size_t imap_binary_finish(struct imap_binary *b, void *out)
{
	return binary_clip(b, out, decode_finish(&b->dec, out));
}

size_t imap_fetch_header_end(const void *data, size_t len)
{
	const unsigned char *buf = data, *lf;
	size_t i;

	/* An empty header: the message starts with the blank line. */
	if (len > 0 && buf[0] == '\n')
		return 1;
	if (len > 1 && buf[0] == '\r' && buf[1] == '\n')
		return 2;
	for (i = 0; i < len; i = (size_t)(lf - buf) + 1) {
		lf = memchr(buf + i, '\n', len - i);
		if (lf == NULL)
			break;
		i = (size_t)(lf - buf);
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* ---- the MIME tree in the store's cache ---- */

#define PARTS_KIND_FULL 'F'
#define PARTS_KIND_HEADER 'H'
/* A cached tree is read back with the parser's own limits (and some room:
 * the parser may make one part past its nesting limit). */
#define PARTS_CACHE_MAX_DEPTH (MESSAGE_PARSER_DEFAULT_MAX_NESTING + 2)

int imap_parts_cache_get(struct store_mailbox *mb, uint32_t uid,
			 bool need_full, struct message_part **root_r,
			 bool *is_full_r)
{
	unsigned char *data;
	size_t size;
	const char *error;
	int ret;

	*root_r = NULL;
	ret = store_msg_cache_get(mb, uid, &data, &size, &error);
	if (ret < 0)
		log_warn("imap: cache read uid=%u failed: %s", uid, error);
	if (ret <= 0)
		return 0;
	ret = 0;
	if (size < 1 || (data[0] != PARTS_KIND_FULL &&
			 data[0] != PARTS_KIND_HEADER))
		log_warn("imap: cache entry uid=%u: unknown kind", uid);
	else if (need_full && data[0] != PARTS_KIND_FULL)
		;	/* header only: parse the whole message */
	else if (message_part_deserialize(data + 1, size - 1,
					  MESSAGE_PARSER_DEFAULT_MAX_PARTS,
					  PARTS_CACHE_MAX_DEPTH, root_r,
					  &error) < 0)
		log_warn("imap: cache entry uid=%u: %s", uid, error);
	else {
		*is_full_r = data[0] == PARTS_KIND_FULL;
		ret = 1;
	}
	free(data);
	return ret;
}

void imap_parts_cache_put(struct store_mailbox *mb, uint32_t uid,
			  const struct message_part *root, bool is_full)
{
	unsigned char *blob, *entry;
	size_t size;

	message_part_serialize(root, &blob, &size);
	entry = xmalloc(size + 1);
	entry[0] = is_full ? PARTS_KIND_FULL : PARTS_KIND_HEADER;
	memcpy(entry + 1, blob, size);
	store_msg_cache_put(mb, uid, entry, size + 1);
	free(entry);
	free(blob);
}
