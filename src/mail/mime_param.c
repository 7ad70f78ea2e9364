/* mime_param.c: RFC 2045 5.1 / RFC 2183 / RFC 3282 value parsing and the
 * RFC 2231 parameter merge (see mime_param.h for the output form). */
#include "mail/mime_param.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strnum.h"
#include "lib/xmalloc.h"
#include "mail/rfc2047.h"

#define RFC2231_MAX_SEGMENTS 100

struct cursor {
	const char *p, *end;
};

/* RFC 2045 5.1: tspecials, plus SPACE and CTLs, end a token. */
static bool is_token_char(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skips white space and (nested, quoted-pair aware) RFC 822 comments. */
static void skip_cfws(struct cursor *c)
{
	unsigned int depth;

	while (c->p < c->end) {
		if (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' ||
		    *c->p == '\n') {
			c->p++;
			continue;
		}
		if (*c->p != '(')
			return;
		depth = 0;
		for (; c->p < c->end; c->p++) {
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			else if (*c->p == '(')
				depth++;
			else if (*c->p == ')' && --depth == 0) {
				c->p++;
				break;
			}
		}
	}
}

static char *read_token(struct cursor *c)
{
	const char *start = c->p;

	while (c->p < c->end && is_token_char((unsigned char)*c->p))
		c->p++;
	return xstrndup(start, (size_t)(c->p - start));
}

/* A quoted-string at c->p ('"'); unterminated runs to the end. The
 * field comes folded: RFC 5322 2.2.3 unfolding drops the CRLF and keeps
 * the white space after it (boundary="foo<CRLF> bar" is "foo bar"). */
static char *read_quoted(struct cursor *c)
{
	char *out = xmalloc((size_t)(c->end - c->p) + 1);
	size_t n = 0;

	for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
		if (*c->p == '\r' || *c->p == '\n')
			continue;
		if (*c->p == '\\' && c->p + 1 < c->end)
			c->p++;
		out[n++] = *c->p;
	}
	if (c->p < c->end)
		c->p++;
	out[n] = '\0';
	return out;
}

/* ---- RFC 2231 merge ---- */

struct seg {
	struct mime_param param;	/* name is the base name */
	unsigned int idx, order;
	bool is_encoded;
};

/* "base*", "base*N", "base*N*": returns false for a plain name. */
static bool split_2231(const char *name, size_t *base_len_r,
		       unsigned int *idx_r, bool *encoded_r)
{
	const char *star = strchr(name, '*'), *p;
	unsigned int idx = 0;

	if (star == NULL || star == name)
		return false;
	p = star + 1;
	*encoded_r = false;
	if (*p == '\0') {
		*encoded_r = true;
	} else {
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (idx > RFC2231_MAX_SEGMENTS)
				return false;
			idx = idx * 10 + (unsigned int)(*p - '0');
		}
		if (*p == '*') {
			*encoded_r = true;
			p++;
		}
		if (*p != '\0')
			return false;
	}
	*base_len_r = (size_t)(star - name);
	*idx_r = idx;
	return true;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	int r = strcasecmp(x->param.name, y->param.name);

	if (r != 0)
		return r;
	if (x->idx != y->idx)
		return x->idx < y->idx ? -1 : 1;
	return x->order < y->order ? -1 : (x->order > y->order);
}

/* Joins the sorted segments [i, j) of one base name into a parameter. */
static void merge_segments(struct mime_params *out, struct seg *segs,
			   unsigned int i, unsigned int j)
{
	size_t total = 0, n = 0, len;
	bool is_encoded = false;
	unsigned int k;
	char *value;

	for (k = i; k < j; k++) {
		total += strlen(segs[k].param.value);
		is_encoded = is_encoded || segs[k].is_encoded;
	}
	value = xmalloc(total + 1);
	for (k = i; k < j; k++) {
		len = strlen(segs[k].param.value);
		memcpy(value + n, segs[k].param.value, len);
		n += len;
	}
	value[n] = '\0';
	out->v[out->count].name = is_encoded ?
		xasprintf("%s*", segs[i].param.name) :
		xstrdup(segs[i].param.name);
	out->v[out->count++].value = value;
}

/* RFC 2231 3/4: plain parameters keep their order; continuations and
 * charset-encoded ones are merged per name, sorted by name, after them. */
static void rfc2231_merge(struct mime_params *params)
{
	struct seg *segs = xcalloc(params->count + 1, sizeof(*segs));
	unsigned int i, j, nsegs = 0, nplain = 0;
	size_t base_len;

	for (i = 0; i < params->count; i++) {
		struct mime_param *mp = &params->v[i];
		struct seg *s = &segs[nsegs];

		if (!split_2231(mp->name, &base_len, &s->idx,
				&s->is_encoded)) {
			params->v[nplain++] = *mp;
			continue;
		}
		mp->name[base_len] = '\0';
		s->param = *mp;
		s->order = nsegs++;
	}
	qsort(segs, nsegs, sizeof(*segs), seg_cmp);
	params->count = nplain;
	for (i = 0; i < nsegs; i = j) {
		for (j = i + 1; j < nsegs && strcasecmp(segs[i].param.name,
							segs[j].param.name) == 0; j++)
			;
		merge_segments(params, segs, i, j);
	}
	for (i = 0; i < nsegs; i++) {
		free(segs[i].param.name);
		free(segs[i].param.value);
	}
	free(segs);
}

static void parse_params(struct cursor *c, struct mime_params *params)
{
	char *name, *value;

	params->v = NULL;
	params->count = 0;
	while (c->p < c->end && params->count < MIME_PARAMS_MAX) {
		skip_cfws(c);
		if (c->p == c->end)
			break;
		if (!is_token_char((unsigned char)*c->p)) {
			if (*c->p == '"')
				free(read_quoted(c));
			else
				c->p++;
			continue;
		}
		name = read_token(c);
		skip_cfws(c);
		if (c->p == c->end || *c->p != '=') {
			free(name);
			continue;
		}
		c->p++;
		skip_cfws(c);
		value = c->p < c->end && *c->p == '"' ? read_quoted(c) :
			read_token(c);
		params->v = xreallocarray(params->v, params->count + 1,
					  sizeof(*params->v));
		params->v[params->count].name = name;
		params->v[params->count++].value = value;
	}
	if (params->count > 0)
		rfc2231_merge(params);
}

void mime_content_type_parse(const char *value, size_t len, char **type_r,
			     char **subtype_r, struct mime_params *params_r)
{
	struct cursor c = { value, value + len };

	params_r->v = NULL;
	params_r->count = 0;
	skip_cfws(&c);
	*type_r = read_token(&c);
	if (**type_r == '\0') {
		*subtype_r = xstrdup("");
		return;
	}
	skip_cfws(&c);
	if (c.p < c.end && *c.p == '/') {
		c.p++;
		skip_cfws(&c);
		*subtype_r = read_token(&c);
	} else {
		*subtype_r = xstrdup("");
	}
	parse_params(&c, params_r);
}

void mime_disposition_parse(const char *value, size_t len, char **disp_r,
			    struct mime_params *params_r)
{
	struct cursor c = { value, value + len };

	params_r->v = NULL;
	params_r->count = 0;
	skip_cfws(&c);
	*disp_r = read_token(&c);
	if (**disp_r == '\0') {
		free(*disp_r);
		*disp_r = NULL;
		return;
	}
	parse_params(&c, params_r);
}

void mime_language_parse(const char *value, size_t len, char ***langs_r,
			 unsigned int *count_r)
{
	struct cursor c = { value, value + len };
	char **langs = NULL, *tok;
	unsigned int n = 0;

	while (c.p < c.end && n < MIME_PARAMS_MAX) {
		skip_cfws(&c);
		if (c.p == c.end)
			break;
		if (!is_token_char((unsigned char)*c.p)) {
			c.p++;
			continue;
		}
		tok = read_token(&c);
		langs = xreallocarray(langs, n + 1, sizeof(*langs));
		langs[n++] = tok;
	}
	*langs_r = langs;
	*count_r = n;
}

void mime_strings_free(char **strs, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++)
		free(strs[i]);
	free(strs);
}

char *mime_token_parse(const char *value, size_t len)
{
	struct cursor c = { value, value + len };
	char *tok;

	skip_cfws(&c);
	tok = read_token(&c);
	if (*tok == '\0') {
		free(tok);
		return NULL;
	}
	return tok;
}

const char *mime_params_get(const struct mime_params *params,
			    const char *name)
{
	unsigned int i;

	for (i = 0; i < params->count; i++) {
		if (strcasecmp(params->v[i].name, name) == 0)
			return params->v[i].value;
	}
	return NULL;
}

void mime_params_free(struct mime_params *params)
{
	unsigned int i;

	for (i = 0; i < params->count; i++) {
		free(params->v[i].name);
		free(params->v[i].value);
	}
	free(params->v);
	params->v = NULL;
	params->count = 0;
}


/* RFC 2231 4: charset'language'percent-encoded-octets. */
int rfc2231_decode_value(const char *value, char **utf8_r)
{
	const char *q1 = strchr(value, '\''), *q2, *p;
	char *charset, *raw;
	size_t n = 0, len;
	int ret;

	*utf8_r = NULL;
	if (q1 == NULL || (q2 = strchr(q1 + 1, '\'')) == NULL)
		return -1;
	raw = xmalloc(strlen(q2) + 1);
	for (p = q2 + 1; *p != '\0'; p++) {
		if (*p == '%' && hex_digit_value((unsigned char)p[1]) >= 0 && hex_digit_value((unsigned char)p[2]) >= 0) {
			raw[n++] = (char)(hex_digit_value((unsigned char)p[1]) * 16 + hex_digit_value((unsigned char)p[2]));
			p += 2;
		} else {
			raw[n++] = *p;
		}
	}
	charset = xstrndup(value, (size_t)(q1 - value));
	ret = rfc2047_charset_to_utf8(charset[0] == '\0' ? "us-ascii" :
				      charset, raw, n, utf8_r, &len);
	free(charset);
	free(raw);
	return ret;
}
