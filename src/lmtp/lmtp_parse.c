/* lmtp_parse.c: LMTP command syntax, no I/O and no semantics.
 *
 * Splits a command line into keyword and arguments and parses the
 * MAIL FROM / RCPT TO argument (RFC 5321 section 4.1.2): a path in angle
 * brackets with an optional source route (ignored), a Dot-string or
 * Quoted-string local part, an optional domain or address literal, then
 * esmtp parameters. Limits: path LMTP_PATH_MAX octets, LMTP_PARAMS_MAX
 * parameters. Control characters, NUL and 8-bit octets are refused
 * (RFC 5321 section 4.1.2: they MUST NOT be used in MAIL or RCPT). */
#include "lmtp/lmtp_private.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum lmtp_cmd cmd;
} lmtp_cmd_names[] = {
	{ "LHLO", LMTP_CMD_LHLO },
	{ "HELO", LMTP_CMD_HELO },
	{ "EHLO", LMTP_CMD_EHLO },
	{ "MAIL", LMTP_CMD_MAIL },
	{ "RCPT", LMTP_CMD_RCPT },
	{ "DATA", LMTP_CMD_DATA },
	{ "RSET", LMTP_CMD_RSET },
	{ "NOOP", LMTP_CMD_NOOP },
	{ "QUIT", LMTP_CMD_QUIT },
	{ "VRFY", LMTP_CMD_VRFY },
	{ "STARTTLS", LMTP_CMD_STARTTLS },
};

enum lmtp_cmd lmtp_cmd_parse(const char *line, size_t len,
			     const char **args_r, size_t *args_len_r)
{
	const char *sp = memchr(line, ' ', len);
	size_t kw_len = sp == NULL ? len : (size_t)(sp - line);
	size_t i;

	if (sp == NULL) {
		*args_r = line + len;
		*args_len_r = 0;
	} else {
		*args_r = sp + 1;
		*args_len_r = len - kw_len - 1;
	}
	for (i = 0; i < sizeof(lmtp_cmd_names) / sizeof(lmtp_cmd_names[0]);
	     i++) {
		const char *name = lmtp_cmd_names[i].name;

		if (strlen(name) == kw_len &&
		    strncasecmp(name, line, kw_len) == 0)
			return lmtp_cmd_names[i].cmd;
	}
	return LMTP_CMD_UNKNOWN;
}

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9');
}

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c)
			       != NULL);
}

/* Output cursor for the decoded mailbox (path->user). */
struct lmtp_out {
	char *buf;
	size_t len;
};

static void out_add(struct lmtp_out *out, char c)
{
	/* The decoded form is never longer than the raw path, which is
	 * bounded by LMTP_PATH_MAX before we get here. */
	out->buf[out->len++] = c;
}

/* Quoted-string local part; *pp at the opening DQUOTE. */
static int parse_quoted(const char **pp, const char *end,
			struct lmtp_out *out)
{
	const char *p = *pp + 1;

	for (; p < end && *p != '"'; p++) {
		unsigned char c = *p;

		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			if (++p == end || (unsigned char)*p < 32 ||
			    (unsigned char)*p > 126)
				return -1;
			c = *p;
		} else if (c < 32 || c > 126) {
			return -1;
		}
		out_add(out, (char)c);
	}
	if (p == end)
		return -1;
	*pp = p + 1;
	return 0;
}

/* Dot-string local part (dots tolerated anywhere: real addresses such as
 * "a..b" exist and we only deliver locally). */
static int parse_dot_string(const char **pp, const char *end,
			    struct lmtp_out *out)
{
	const char *p = *pp;

	while (p < end && (is_atext(*p) || *p == '.'))
		out_add(out, *p++);
	if (p == *pp)
		return -1;
	*pp = p;
	return 0;
}

/* Domain or address literal after '@'. Labels: letters, digits, '-'
 * (RFC 5321 section 4.1.2: underscore is not permitted). */
static int parse_domain(const char **pp, const char *end,
			struct lmtp_out *out)
{
	const char *p = *pp;

	if (p < end && *p == '[') {
		/* dcontent = %d33-90 / %d94-126, plus the tag's ':' */
		for (out_add(out, *p++); p < end && *p != ']'; p++) {
			if ((unsigned char)*p < 33 || (unsigned char)*p > 126 ||
			    *p == '[' || *p == '\\')
				return -1;
			out_add(out, *p);
		}
		if (p == end || p - *pp < 2)
			return -1;
		out_add(out, *p++);
	} else {
		bool label_empty = true;

		for (; p < end && (is_alnum(*p) || *p == '-' || *p == '.');
		     p++) {
			if (*p == '.' && label_empty)
				return -1;
			label_empty = *p == '.';
			out_add(out, *p);
		}
		if (label_empty)
			return -1;
	}
	*pp = p;
	return 0;
}

/* A-d-l ":" : "@dom,@dom:" (RFC 5321 section 4.1.2: MUST be accepted,
 * SHOULD be ignored). */
static int skip_source_route(const char **pp, const char *end)
{
	const char *p = *pp;
	char scratch[LMTP_PATH_MAX + 1];
	struct lmtp_out ignored = { scratch, 0 };

	for (;;) {
		if (p == end || *p != '@')
			return -1;
		p++;
		ignored.len = 0;
		if (parse_domain(&p, end, &ignored) < 0 || p == end)
			return -1;
		if (*p == ':')
			break;
		if (*p != ',')
			return -1;
		p++;
	}
	*pp = p + 1;
	return 0;
}

/* "<" [A-d-l ":"] Mailbox ">" or "<>"; p at '<', end one past the
 * first '>' outside a quoted string. */
static enum lmtp_parse_error parse_path(const char *p, const char *end,
					bool allow_null,
					struct lmtp_path *path)
{
	struct lmtp_out out = { path->user, 0 };
	const char *start;

	p++;
	if (*p == '@' && skip_source_route(&p, end) < 0)
		return LMTP_PARSE_PATH;
	start = p;
	if (*p == '>') {
		/* '>' right after '<' (a source route before it is
		 * not a null path) */
		if (!allow_null || p[-1] != '<')
			return LMTP_PARSE_PATH;
		path->addr[0] = path->user[0] = '\0';
		return LMTP_PARSE_OK;
	}
	if (*p == '"' ? parse_quoted(&p, end, &out) < 0 :
	    parse_dot_string(&p, end, &out) < 0)
		return LMTP_PARSE_PATH;
	if (*p == '@') {
		out_add(&out, *p++);
		if (parse_domain(&p, end, &out) < 0)
			return LMTP_PARSE_PATH;
	}
	if (p != end - 1 || *p != '>' || out.len == 0)
		return LMTP_PARSE_PATH;
	out.buf[out.len] = '\0';
	memcpy(path->addr, start, (size_t)(p - start));
	path->addr[p - start] = '\0';
	return LMTP_PARSE_OK;
}

/* Finds the '>' closing the path that starts at p ('<'), skipping
 * quoted strings. Returns NULL if there is none. */
static const char *path_end(const char *p, const char *end)
{
	bool in_quote = false;

	for (p++; p < end; p++) {
		if (in_quote && *p == '\\' && p + 1 < end)
			p++;
		else if (*p == '"')
			in_quote = !in_quote;
		else if (*p == '>' && !in_quote)
			return p + 1;
	}
	return NULL;
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value] */
static int parse_param(const char **pp, const char *end,
		       struct lmtp_param *param)
{
	const char *p = *pp;

	param->key = p;
	if (p == end || !is_alnum(*p))
		return -1;
	while (p < end && (is_alnum(*p) || *p == '-'))
		p++;
	param->key_len = (size_t)(p - param->key);
	param->value = NULL;
	param->value_len = 0;
	if (p < end && *p == '=') {
		param->value = ++p;
		/* esmtp-value = 1*(%d33-60 / %d62-126) */
		while (p < end && (unsigned char)*p >= 33 &&
		       (unsigned char)*p <= 126 && *p != '=')
			p++;
		param->value_len = (size_t)(p - param->value);
		if (param->value_len == 0)
			return -1;
	}
	if (p < end && *p != ' ')
		return -1;
	*pp = p;
	return 0;
}

static enum lmtp_parse_error parse_params(const char *p, const char *end,
					  struct lmtp_path *path)
{
	path->params_count = 0;
	for (;;) {
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			return LMTP_PARSE_OK;
		if (path->params_count == LMTP_PARAMS_MAX ||
		    parse_param(&p, end, &path->params[path->params_count]) < 0)
			return LMTP_PARSE_PARAMS;
		path->params_count++;
	}
}

enum lmtp_parse_error lmtp_path_parse(const char *args, size_t len,
				      bool is_mail, struct lmtp_path *path_r)
{
	const char *prefix = is_mail ? "FROM:" : "TO:";
	size_t prefix_len = strlen(prefix);
	const char *p = args + prefix_len, *end = args + len, *pend;
	enum lmtp_parse_error ret;

	memset(path_r, 0, sizeof(*path_r));
	if (len < prefix_len || strncasecmp(args, prefix, prefix_len) != 0)
		return LMTP_PARSE_PREFIX;
	/* CR, LF and NUL never belong in a command (the line reader hands
	 * us lines that may contain NUL). */
	if (memchr(args, '\0', len) != NULL || memchr(args, '\r', len) ||
	    memchr(args, '\n', len))
		return LMTP_PARSE_PATH;
	/* Tolerate "FROM: <addr>" as many clients send it. */
	if (p < end && *p == ' ')
		p++;
	if (p == end || *p != '<')
		return LMTP_PARSE_PATH;
	pend = path_end(p, end);
	if (pend == NULL)
		return LMTP_PARSE_PATH;
	/* RFC 5321 section 4.5.3.1.3 */
	if (pend - p > LMTP_PATH_MAX)
		return LMTP_PARSE_TOO_LONG;
	ret = parse_path(p, pend, is_mail, path_r);
	if (ret != LMTP_PARSE_OK)
		return ret;
	if (pend < end && *pend != ' ')
		return LMTP_PARSE_PARAMS;
	return parse_params(pend, end, path_r);
}
