/* auth_proto.c: encoding and decoding of the worker <-> auth process lines
 * described in auth_proto.h. No I/O here. Parsers take (pointer, length)
 * views and never read past len; decoded user names and secrets are heap
 * copies that must not contain NUL bytes. */
#include "auth/auth_proto.h"

#include "lib/base64.h"
#include "lib/strnum.h"
#include "lib/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_PROTO_MAX_FIELDS 6

struct field {
	const char *p;
	size_t len;
};

/* Splits at TAB; -1 if there are not exactly want fields. */
static int split_fields(const char *line, size_t len, struct field *f,
			unsigned want)
{
	const char *p = line, *end = line + len;
	unsigned n = 0;

	for (;;) {
		const char *tab = memchr(p, '\t', (size_t)(end - p));
		const char *fend = tab != NULL ? tab : end;

		if (n == want)
			return -1;
		f[n].p = p;
		f[n].len = (size_t)(fend - p);
		n++;
		if (tab == NULL)
			break;
		p = tab + 1;
	}
	return n == want ? 0 : -1;
}

static bool token_valid(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

bool auth_proto_token_valid(const char *s, size_t max)
{
	return token_valid(s, strnlen(s, max + 1), max);
}

static int copy_token(const struct field *f, char *out, size_t max)
{
	if (!token_valid(f->p, f->len, max))
		return -1;
	memcpy(out, f->p, f->len);
	out[f->len] = '\0';
	return 0;
}

/* Decodes base64 into a NUL-free heap string; *out_r NULL on error. */
static int decode_b64(const struct field *f, char **out_r)
{
	char *out = xmalloc(f->len / 4 * 3 + 1);	/* SIZE-MATH */
	long n = base64_decode(f->p, f->len, (unsigned char *)out);

	if (n < 0 || memchr(out, '\0', (size_t)n) != NULL) {
		xwipe(out, f->len / 4 * 3 + 1);
		free(out);
		*out_r = NULL;
		return -1;
	}
	*out_r = out;
	return 0;
}

static int parse_id(const struct field *f, uint32_t *id_r)
{
	uint64_t n;

	if (str_to_u64(f->p, f->len, UINT32_MAX, &n) < 0)
		return -1;
	*id_r = (uint32_t)n;
	return 0;
}

static int request_fields(struct auth_proto_request *req, struct field *f)
{
	switch (req->type) {
	case AUTH_PROTO_VERIFY:
		if (copy_token(&f[2], req->service, AUTH_PROTO_MAX_SERVICE) < 0 ||
		    copy_token(&f[3], req->remote_ip, AUTH_PROTO_MAX_IP) < 0 ||
		    decode_b64(&f[4], &req->user) < 0 ||
		    decode_b64(&f[5], &req->secret) < 0)
			return -1;
		return 0;
	case AUTH_PROTO_APOP:
		if (copy_token(&f[2], req->remote_ip, AUTH_PROTO_MAX_IP) < 0 ||
		    decode_b64(&f[3], &req->user) < 0 ||
		    decode_b64(&f[4], &req->secret) < 0 ||
		    copy_token(&f[5], req->digest, AUTH_PROTO_MAX_DIGEST) < 0)
			return -1;
		return 0;
	case AUTH_PROTO_LOOKUP:
		return decode_b64(&f[2], &req->user);
	}
	return -1;
}

int auth_proto_request_parse(const char *line, size_t len,
			     struct auth_proto_request *req_r,
			     const char **error_r)
{
	struct field f[AUTH_PROTO_MAX_FIELDS];
	unsigned want;

	memset(req_r, 0, sizeof(*req_r));
	if (len < 1 || len >= AUTH_PROTO_MAX_LINE) {
		*error_r = "bad line length";
		return -1;
	}
	switch (line[0]) {
	case 'V': case 'A': want = 6; break;
	case 'L': want = 3; break;
	default:
		*error_r = "unknown request type";
		return -1;
	}
	req_r->type = (enum auth_proto_type)line[0];
	if (split_fields(line, len, f, want) < 0 || f[0].len != 1) {
		*error_r = "wrong number of fields";
		return -1;
	}
	if (parse_id(&f[1], &req_r->id) < 0 ||
	    request_fields(req_r, f) < 0) {
		auth_proto_request_clear(req_r);
		*error_r = "malformed field";
		return -1;
	}
	return 0;
}

void auth_proto_request_clear(struct auth_proto_request *req)
{
	if (req->secret != NULL) {
		xwipe(req->secret, strlen(req->secret));
		free(req->secret);
	}
	free(req->user);
	req->secret = NULL;
	req->user = NULL;
}

static char *b64_dup(const char *s)
{
	size_t len = strlen(s);
	char *out = xmalloc(BASE64_ENCODED_SIZE(len));

	base64_encode(s, len, out);
	return out;
}

static void b64_free(char *s)
{
	xwipe(s, strlen(s));
	free(s);
}

static char *request_format_fields(const struct auth_proto_request *req,
				   const char *user, const char *secret)
{
	switch (req->type) {
	case AUTH_PROTO_VERIFY:
		if (!auth_proto_token_valid(req->service,
					    AUTH_PROTO_MAX_SERVICE) ||
		    !auth_proto_token_valid(req->remote_ip, AUTH_PROTO_MAX_IP))
			return NULL;
		return xasprintf("V\t%u\t%s\t%s\t%s\t%s\n", req->id,
				 req->service, req->remote_ip, user, secret);
	case AUTH_PROTO_APOP:
		if (!auth_proto_token_valid(req->remote_ip,
					    AUTH_PROTO_MAX_IP) ||
		    !auth_proto_token_valid(req->digest,
					    AUTH_PROTO_MAX_DIGEST))
			return NULL;
		return xasprintf("A\t%u\t%s\t%s\t%s\t%s\n", req->id,
				 req->remote_ip, user, secret, req->digest);
	case AUTH_PROTO_LOOKUP:
		return xasprintf("L\t%u\t%s\n", req->id, user);
	}
	return NULL;
}

char *auth_proto_request_format(const struct auth_proto_request *req,
				size_t *len_r)
{
	char *user, *secret, *line;

	/* refuse early what cannot fit, before allocating encodings */
	if (strlen(req->user) > AUTH_PROTO_MAX_LINE ||
	    (req->secret != NULL &&
	     strlen(req->secret) > AUTH_PROTO_MAX_LINE))
		return NULL;
	user = b64_dup(req->user);
	secret = b64_dup(req->secret != NULL ? req->secret : "");
	line = request_format_fields(req, user, secret);
	b64_free(user);
	b64_free(secret);
	if (line != NULL && strlen(line) > AUTH_PROTO_MAX_LINE) {
		b64_free(line);
		line = NULL;
	}
	if (line != NULL)
		*len_r = strlen(line);
	return line;
}

static const char *const status_names[] = {
	[AUTH_PROTO_OK] = "OK",
	[AUTH_PROTO_FAIL] = "FAIL",
	[AUTH_PROTO_TEMP] = "TEMP",
	[AUTH_PROTO_NOUSER] = "NOUSER",
};

static int parse_hello(const char *line, size_t len,
		       struct auth_proto_reply *reply_r)
{
	if (len != 3 || line[1] != '\t' || (line[2] != '0' && line[2] != '1'))
		return -1;
	reply_r->status = AUTH_PROTO_HELLO;
	reply_r->is_apop = line[2] == '1';
	return 0;
}

static int parse_status(const struct field *f, enum auth_proto_status *r)
{
	for (unsigned i = 0; i <= AUTH_PROTO_NOUSER; i++) {
		if (strlen(status_names[i]) == f->len &&
		    memcmp(status_names[i], f->p, f->len) == 0) {
			*r = (enum auth_proto_status)i;
			return 0;
		}
	}
	return -1;
}

int auth_proto_reply_parse(const char *line, size_t len,
			   struct auth_proto_reply *reply_r,
			   const char **error_r)
{
	struct field f[3];

	memset(reply_r, 0, sizeof(*reply_r));
	*error_r = "malformed reply";
	if (len >= AUTH_PROTO_MAX_LINE)
		return -1;
	if (len > 0 && line[0] == 'H')
		return parse_hello(line, len, reply_r);
	if (split_fields(line, len, f, 3) == 0) {
		if (parse_id(&f[0], &reply_r->id) < 0 ||
		    parse_status(&f[1], &reply_r->status) < 0 ||
		    reply_r->status != AUTH_PROTO_OK ||
		    decode_b64(&f[2], &reply_r->user) < 0 ||
		    reply_r->user[0] == '\0') {
			auth_proto_reply_clear(reply_r);
			return -1;
		}
		return 0;
	}
	if (split_fields(line, len, f, 2) < 0 ||
	    parse_id(&f[0], &reply_r->id) < 0 ||
	    parse_status(&f[1], &reply_r->status) < 0 ||
	    reply_r->status == AUTH_PROTO_OK)
		return -1;
	return 0;
}

void auth_proto_reply_clear(struct auth_proto_reply *reply)
{
	free(reply->user);
	reply->user = NULL;
}

char *auth_proto_reply_format(const struct auth_proto_reply *reply,
			      size_t *len_r)
{
	char *line, *user;

	if (reply->status == AUTH_PROTO_HELLO) {
		line = xasprintf("H\t%c\n", reply->is_apop ? '1' : '0');
	} else if (reply->status == AUTH_PROTO_OK) {
		if (reply->user == NULL || reply->user[0] == '\0' ||
		    strlen(reply->user) > AUTH_PROTO_MAX_LINE)
			return NULL;
		user = b64_dup(reply->user);
		line = xasprintf("%u\tOK\t%s\n", reply->id, user);
		free(user);
	} else {
		line = xasprintf("%u\t%s\n", reply->id,
				 status_names[reply->status]);
	}
	if (strlen(line) > AUTH_PROTO_MAX_LINE) {
		free(line);
		return NULL;
	}
	*len_r = strlen(line);
	return line;
}
