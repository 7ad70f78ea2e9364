/* mime_param.h: RFC 2045 Content-Type, RFC 2183 Content-Disposition and
 * RFC 3282 Content-Language values, with RFC 2231 parameter merging.
 *
 * Parsing is tolerant (comments, stray ';', empty values, 8-bit bytes in
 * tokens) and never fails: what cannot be parsed is skipped. Parameter
 * lists follow Dovecot's BODYSTRUCTURE form: plain parameters first in
 * header order, then RFC 2231 ones merged (name*0, name*1... joined) and
 * sorted by name; a merged parameter that had any charset-encoded
 * segment is named "name*" and keeps its raw charset'lang'%XX value (no
 * decoding; rfc2231_decode_value() does that for SEARCH). Limits: at most
 * MIME_PARAMS_MAX parameters and 100 continuation segments a name. */
#ifndef HERON_MIME_PARAM_H
#define HERON_MIME_PARAM_H

#include <stdbool.h>
#include <stddef.h>

#define MIME_PARAMS_MAX 256

struct mime_param {
	char *name, *value;	/* heap, NUL-terminated */
};

struct mime_params {
	struct mime_param *v;
	unsigned int count;
};

/* "type/subtype *(; param)". type_r and subtype_r get heap strings: "" when
 * missing (Dovecot reports "text" "" for "text", "" "" for "/plain"). */
void mime_content_type_parse(const char *value, size_t len, char **type_r,
			     char **subtype_r, struct mime_params *params_r);
/* "disposition *(; param)"; *disp_r is NULL when there is no token. */
void mime_disposition_parse(const char *value, size_t len, char **disp_r,
			    struct mime_params *params_r);
/* Comma-separated language tags; *count_r is 0 when there are none. The
 * array and the strings are heap (free with mime_strings_free). */
void mime_language_parse(const char *value, size_t len, char ***langs_r,
			 unsigned int *count_r);
void mime_strings_free(char **strs, unsigned int count);
/* The first token of a value (Content-Transfer-Encoding), heap, or NULL. */
char *mime_token_parse(const char *value, size_t len);

/* Case-insensitive lookup; NULL when missing. */
const char *mime_params_get(const struct mime_params *params,
			    const char *name);
void mime_params_free(struct mime_params *params);

/* Decodes a merged RFC 2231 value "charset'lang'%XX..." to UTF-8 (heap).
 * Returns -1 if the value has no charset part or the charset is unknown to
 * iconv (then *utf8_r is NULL). */
int rfc2231_decode_value(const char *value, char **utf8_r);

#endif
