/* rfc5322.c: header fields, address lists (RFC 5322 3.4 with the 4.4
 * obsolete route and phrase forms), dates (3.3, 4.3) and msg-ids (3.6.4).
 * See rfc5322.h for the tolerance rules. */
#include "mail/rfc5322.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/timeutil.h"
#include "lib/xmalloc.h"

/* ---- header fields ---- */

bool rfc5322_header_next(const char *data, size_t len, size_t *pos,
			 struct rfc5322_field *f)
{
	size_t i = *pos, line_end;
	const char *colon, *nl;

	if (i >= len || data[i] == '\n' ||
	    (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n'))
		return false;
	f->raw = data + i;
	for (;;) {
		nl = memchr(data + i, '\n', len - i);
		i = nl == NULL ? len : (size_t)(nl - data) + 1;
		if (i >= len || (data[i] != ' ' && data[i] != '\t'))
			break;
	}
	f->raw_len = i - *pos;
	line_end = f->raw_len;
	if (line_end > 0 && f->raw[line_end - 1] == '\n')
		line_end--;
	if (line_end > 0 && f->raw[line_end - 1] == '\r')
		line_end--;
	nl = memchr(f->raw, '\n', f->raw_len);
	colon = memchr(f->raw, ':', nl != NULL ? (size_t)(nl - f->raw) :
		       f->raw_len);
	f->name = f->raw;
	f->name_len = 0;
	f->value = f->raw;
	f->value_len = line_end;
	if (colon != NULL) {
		f->name_len = (size_t)(colon - f->raw);
		while (f->name_len > 0 && (f->raw[f->name_len - 1] == ' ' ||
					   f->raw[f->name_len - 1] == '\t'))
			f->name_len--;
		f->value = colon + 1;
		while (f->value < f->raw + line_end &&
		       (*f->value == ' ' || *f->value == '\t'))
			f->value++;
		f->value_len = (size_t)(f->raw + line_end - f->value);
	}
	*pos = i;
	return true;
}

char *rfc5322_unfold(const char *value, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (value[i] != '\r' && value[i] != '\n')
			out[n++] = value[i];
	}
	out[n] = '\0';
	if (len_r != NULL)
		*len_r = n;
	return out;
}

/* ---- lexical ---- */

struct lex {
	const char *p, *end;
	const char *comment;	/* last comment skipped, without parens */
	size_t comment_len;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 5322 3.2.3 atext; 8-bit bytes are accepted (RFC 6532). */
static bool is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Skips CFWS; returns true if anything was skipped. */
static bool skip_cfws(struct lex *l)
{
	const char *start = l->p;
	unsigned int depth;

	while (l->p < l->end) {
		if (is_wsp(*l->p)) {
			l->p++;
			continue;
		}
		if (*l->p != '(')
			break;
		depth = 0;
		l->comment = l->p + 1;
		/* unterminated: the comment runs to the end */
		l->comment_len = (size_t)(l->end - l->comment);
		for (; l->p < l->end; l->p++) {
			if (*l->p == '\\' && l->p + 1 < l->end)
				l->p++;
			else if (*l->p == '(')
				depth++;
			else if (*l->p == ')' && --depth == 0) {
				l->comment_len = (size_t)(l->p - l->comment);
				l->p++;
				break;
			}
		}
	}
	return l->p != start;
}

static void read_atom(struct lex *l, struct strbuf *s)
{
	const char *start = l->p;

	while (l->p < l->end && is_atext((unsigned char)*l->p))
		l->p++;
	strbuf_add(s, start, (size_t)(l->p - start));
}

/* quoted-string at '"'; -1 when unterminated. */
static int read_quoted(struct lex *l, struct strbuf *s)
{
	for (l->p++; l->p < l->end; l->p++) {
		if (*l->p == '"') {
			l->p++;
			return 0;
		}
		if (*l->p == '\\' && l->p + 1 < l->end)
			l->p++;
		if (*l->p != '\r' && *l->p != '\n')
			strbuf_add(s, l->p, 1);
	}
	return -1;
}

/* phrase / obs-phrase: words and dots, white space collapsed to one
 * space, comments dropped. */
static int read_phrase(struct lex *l, struct strbuf *s)
{
	bool space = false;

	for (;;) {
		if (skip_cfws(l))
			space = s->len > 0;
		if (l->p == l->end)
			return 0;
		if (*l->p != '"' && *l->p != '.' &&
		    !is_atext((unsigned char)*l->p))
			return 0;
		if (space)
			strbuf_add(s, " ", 1);
		space = false;
		if (*l->p == '"') {
			if (read_quoted(l, s) < 0)
				return -1;
		} else if (*l->p == '.') {
			strbuf_add(s, ".", 1);
			l->p++;
		} else {
			read_atom(l, s);
		}
	}
}

/* dot-atom / obs-local-part / obs-domain: words joined by '.', CFWS
 * dropped; domain literals when is_domain. */
static int read_dotted(struct lex *l, struct strbuf *s, bool is_domain)
{
	const char *close;

	for (;;) {
		skip_cfws(l);
		if (l->p == l->end)
			return 0;
		if (*l->p == '"' && !is_domain) {
			if (read_quoted(l, s) < 0)
				return -1;
		} else if (*l->p == '[' && is_domain) {
			close = memchr(l->p, ']', (size_t)(l->end - l->p));
			if (close == NULL)
				return -1;
			strbuf_add(s, l->p, (size_t)(close + 1 - l->p));
			l->p = close + 1;
		} else if (is_atext((unsigned char)*l->p)) {
			read_atom(l, s);
		} else if (*l->p != '.') {
			return 0;
		}
		skip_cfws(l);
		if (l->p == l->end || *l->p != '.')
			return 0;
		strbuf_add(s, ".", 1);
		l->p++;
	}
}

/* ---- addresses ---- */

struct aparser {
	struct lex l;
	struct rfc5322_address *head, **tail;
	unsigned int count;
};

static struct rfc5322_address *add_addr(struct aparser *ap)
{
	struct rfc5322_address *a = xcalloc(1, sizeof(*a));

	*ap->tail = a;
	ap->tail = &a->next;
	ap->count++;
	return a;
}

static char *take_or(struct strbuf *s, const char *missing)
{
	if (s->len > 0)
		return strbuf_take(s);
	free(s->data);
	s->data = NULL;
	s->len = s->cap = 0;
	return missing == NULL ? NULL : xstrdup(missing);
}

/* addr-spec into a (local-part "@" domain, either may be missing). */
static int read_addr_spec(struct aparser *ap, struct rfc5322_address *a)
{
	struct strbuf local = { NULL, 0, 0 }, dom = { NULL, 0, 0 };
	int ret;

	ret = read_dotted(&ap->l, &local, false);
	skip_cfws(&ap->l);
	if (ret == 0 && ap->l.p < ap->l.end && *ap->l.p == '@') {
		ap->l.p++;
		ret = read_dotted(&ap->l, &dom, true);
	}
	a->mailbox = take_or(&local, RFC5322_MISSING_MAILBOX);
	a->domain = take_or(&dom, RFC5322_MISSING_DOMAIN);
	return ret;
}

/* obs-route: "@a,@b:" before the addr-spec of an angle-addr. */
static void read_route(struct aparser *ap, struct rfc5322_address *a)
{
	struct strbuf route = { NULL, 0, 0 };
	const char *start = ap->l.p;

	skip_cfws(&ap->l);
	while (ap->l.p < ap->l.end && (*ap->l.p == '@' || *ap->l.p == ',')) {
		if (*ap->l.p == ',') {
			strbuf_add(&route, ",", 1);
			ap->l.p++;
			skip_cfws(&ap->l);
			continue;
		}
		strbuf_add(&route, "@", 1);
		ap->l.p++;
		(void)read_dotted(&ap->l, &route, true);
		skip_cfws(&ap->l);
	}
	if (ap->l.p < ap->l.end && *ap->l.p == ':' && route.len > 0) {
		ap->l.p++;
		a->route = strbuf_take(&route);
		return;
	}
	free(route.data);
	ap->l.p = start;
}

static int parse_list(struct aparser *ap, bool in_group);

static int parse_group(struct aparser *ap, struct strbuf *name)
{
	struct rfc5322_address *a = add_addr(ap);
	int ret;

	ap->l.p++;	/* ':' */
	a->mailbox = strbuf_take(name);
	ret = parse_list(ap, true);
	(void)add_addr(ap);	/* group end marker */
	return ret;
}

/* "addr-spec (Comment)": Dovecot reports the comment as the name. */
static char *unescape_comment(const char *p, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (p[i] == '\\' && i + 1 < len)
			i++;
		out[n++] = p[i];
	}
	out[n] = '\0';
	return out;
}

/* RFC 5322 3.4: address = mailbox / group. */
static int parse_element(struct aparser *ap, bool in_group)
{
	struct strbuf name = { NULL, 0, 0 };
	const char *start = ap->l.p;
	struct rfc5322_address *a;
	int ret;

	if (read_phrase(&ap->l, &name) < 0) {
		free(name.data);
		a = add_addr(ap);
		a->mailbox = xstrdup(RFC5322_MISSING_MAILBOX);
		a->domain = xstrdup(RFC5322_MISSING_DOMAIN);
		return -1;
	}
	skip_cfws(&ap->l);
	if (!in_group && ap->l.p < ap->l.end && *ap->l.p == ':')
		return parse_group(ap, &name);
	a = add_addr(ap);
	if (ap->l.p < ap->l.end && *ap->l.p == '<') {
		a->name = take_or(&name, NULL);
		ap->l.p++;
		read_route(ap, a);
		ret = read_addr_spec(ap, a);
		skip_cfws(&ap->l);
		if (ap->l.p < ap->l.end && *ap->l.p == '>')
			ap->l.p++;
		return ret;
	}
	free(name.data);
	ap->l.p = start;
	ap->l.comment = NULL;
	ret = read_addr_spec(ap, a);
	if (ap->l.comment != NULL && ap->l.comment_len > 0)
		a->name = unescape_comment(ap->l.comment, ap->l.comment_len);
	return ret;
}

static int parse_list(struct aparser *ap, bool in_group)
{
	for (;;) {
		skip_cfws(&ap->l);
		if (ap->l.p == ap->l.end)
			return 0;
		if (in_group && *ap->l.p == ';') {
			ap->l.p++;
			return 0;
		}
		if (ap->count >= RFC5322_MAX_ADDRESSES ||
		    parse_element(ap, in_group) < 0)
			return -1;
		skip_cfws(&ap->l);
		if (ap->l.p == ap->l.end)
			return 0;
		if (*ap->l.p == ',')
			ap->l.p++;
		else if (!in_group || *ap->l.p != ';')
			return -1;
	}
}

struct rfc5322_address *rfc5322_address_parse(const char *value, size_t len)
{
	struct aparser ap;

	memset(&ap, 0, sizeof(ap));
	ap.l.p = value;
	ap.l.end = value + len;
	ap.tail = &ap.head;
	(void)parse_list(&ap, false);
	return ap.head;
}

void rfc5322_address_free(struct rfc5322_address **list)
{
	struct rfc5322_address *a = *list, *next;

	for (; a != NULL; a = next) {
		next = a->next;
		free(a->name);
		free(a->route);
		free(a->mailbox);
		free(a->domain);
		free(a);
	}
	*list = NULL;
}

/* ---- dates ---- */

static const char *const month_names[] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec"
};

static const struct {
	const char *name;
	int offset;	/* minutes */
} zone_names[] = {
	{ "UT", 0 }, { "GMT", 0 }, { "Z", 0 },
	{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
	{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
};

static int read_number(struct lex *l, unsigned int max_digits, int *n_r,
		       unsigned int *digits_r)
{
	unsigned int d = 0;
	int n = 0;

	skip_cfws(l);
	while (l->p < l->end && *l->p >= '0' && *l->p <= '9' &&
	       d < max_digits) {
		n = n * 10 + (*l->p++ - '0');
		d++;
	}
	*n_r = n;
	if (digits_r != NULL)
		*digits_r = d;
	return d == 0 ? -1 : 0;
}

static size_t read_alpha(struct lex *l, char *buf, size_t size)
{
	size_t n = 0;

	skip_cfws(l);
	while (l->p < l->end && ((*l->p >= 'a' && *l->p <= 'z') ||
				 (*l->p >= 'A' && *l->p <= 'Z'))) {
		if (n + 1 < size)
			buf[n++] = *l->p;
		l->p++;
	}
	buf[n] = '\0';
	return n;
}


static int parse_zone(struct lex *l, int *offset_r)
{
	char name[8];
	int sign, n;
	unsigned int i, digits;

	*offset_r = 0;
	skip_cfws(l);
	if (l->p < l->end && (*l->p == '+' || *l->p == '-')) {
		sign = *l->p++ == '-' ? -1 : 1;
		if (read_number(l, 4, &n, &digits) < 0 || digits != 4 ||
		    n % 100 > 59)
			return -1;
		*offset_r = sign * ((n / 100) * 60 + n % 100);
		return 0;
	}
	if (read_alpha(l, name, sizeof(name)) == 0)
		return 0;	/* no zone: treat as UTC */
	for (i = 0; i < sizeof(zone_names) / sizeof(zone_names[0]); i++) {
		if (strcasecmp(name, zone_names[i].name) == 0)
			*offset_r = zone_names[i].offset;
	}
	/* RFC 5322 4.3: other (military) zones are treated as -0000 */
	return 0;
}

int rfc5322_date_parse(const char *value, size_t len, time_t *time_r,
		       int *tz_offset_r)
{
	struct lex l = { value, value + len, NULL, 0 };
	const char *save;
	char word[16];
	int day, year, hour, min, sec = 0, month = -1, i;
	unsigned int digits;

	save = l.p;
	if (read_alpha(&l, word, sizeof(word)) > 0) {
		skip_cfws(&l);
		if (l.p < l.end && *l.p == ',')
			l.p++;
	} else {
		l.p = save;
	}
	if (read_number(&l, 2, &day, NULL) < 0 ||
	    read_alpha(&l, word, sizeof(word)) < 3)
		return -1;
	for (i = 0; i < 12; i++) {
		if (strncasecmp(word, month_names[i], 3) == 0)
			month = i + 1;
	}
	if (month < 0 || read_number(&l, 4, &year, &digits) < 0 ||
	    read_number(&l, 2, &hour, NULL) < 0)
		return -1;
	/* RFC 5322 4.3: 2-digit years < 50 are 20xx, 3-digit add 1900 */
	if (digits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (digits == 3)
		year += 1900;
	skip_cfws(&l);
	if (l.p == l.end || *l.p++ != ':' ||
	    read_number(&l, 2, &min, NULL) < 0)
		return -1;
	skip_cfws(&l);
	if (l.p < l.end && *l.p == ':') {
		l.p++;
		if (read_number(&l, 2, &sec, NULL) < 0)
			return -1;
	}
	if (day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60 ||
	    parse_zone(&l, tz_offset_r) < 0)
		return -1;
	*time_r = (time_t)(days_from_civil(year, (unsigned int)month,
					   (unsigned int)day) * 86400 +
			   hour * 3600 + min * 60 + sec -
			   *tz_offset_r * 60);
	return 0;
}

/* ---- msg-id ---- */

int rfc5322_msgid_next(const char *value, size_t len, size_t *pos,
		       char **id_r)
{
	struct lex l = { value + *pos, value + len, NULL, 0 };
	struct strbuf s = { NULL, 0, 0 };
	const char *lt;

	while ((lt = memchr(l.p, '<', (size_t)(l.end - l.p))) != NULL) {
		l.p = lt + 1;
		for (;;) {
			skip_cfws(&l);
			if (l.p == l.end || *l.p == '>' || *l.p == '<')
				break;
			strbuf_add(&s, l.p++, 1);
		}
		if (l.p < l.end && *l.p == '>' && s.len > 0 &&
		    memchr(s.data, '@', s.len) != NULL) {
			*pos = (size_t)(l.p + 1 - value);
			*id_r = strbuf_take(&s);
			return 0;
		}
		s.len = 0;
	}
	free(s.data);
	*pos = len;
	return -1;
}
