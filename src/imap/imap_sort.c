/* imap_sort.c: SORT keys and comparison (see imap_sort.h). Sections: the
 * sort program, the i;unicode-casemap key, base subject extraction (RFC
 * 5256 2.1 rules 1-6 on a heap copy; the ABNF of section 5 in comments),
 * addresses and dates, then the comparator. */
#include "imap/imap_sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/utf8.h"
#include "lib/xmalloc.h"
#include "mail/rfc2047.h"
#include "mail/rfc5322.h"
#include "mail/unicode.h"

#ifdef HAVE_UTF8PROC
#include <utf8proc.h>
#endif

/* ---- the sort program ---- */

static const struct {
	const char *name;
	enum imap_sort_key key;
	unsigned needs;
} sort_keys[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL, 0 },
	{ "CC", IMAP_SORT_CC, IMAP_SORT_NEED_CC },
	{ "DATE", IMAP_SORT_DATE, IMAP_SORT_NEED_DATE },
	{ "FROM", IMAP_SORT_FROM, IMAP_SORT_NEED_FROM },
	{ "SIZE", IMAP_SORT_SIZE, 0 },
	{ "SUBJECT", IMAP_SORT_SUBJECT, IMAP_SORT_NEED_SUBJECT },
	{ "TO", IMAP_SORT_TO, IMAP_SORT_NEED_TO },
	{ "DISPLAYFROM", IMAP_SORT_DISPLAYFROM, IMAP_SORT_NEED_DISPLAYFROM },
	{ "DISPLAYTO", IMAP_SORT_DISPLAYTO, IMAP_SORT_NEED_DISPLAYTO },
};

int imap_sort_program_parse(const struct imap_arg *list, size_t count,
			    struct imap_sort_program *prog,
			    const char **error_r)
{
	bool is_reverse = false;
	size_t j;

	memset(prog, 0, sizeof(*prog));
	for (size_t i = 0; i < count; i++) {
		if (imap_arg_atom_equals(&list[i], "REVERSE")) {
			if (is_reverse)
				break;	/* REVERSE REVERSE: not a key */
			is_reverse = true;
			continue;
		}
		for (j = 0; j < sizeof(sort_keys) / sizeof(sort_keys[0]); j++)
			if (imap_arg_atom_equals(&list[i], sort_keys[j].name))
				break;
		if (j == sizeof(sort_keys) / sizeof(sort_keys[0])) {
			*error_r = "Unknown sort criterion";
			return -1;
		}
		if (prog->count == IMAP_SORT_MAX_CRITERIA) {
			*error_r = "Too many sort criteria";
			return -1;
		}
		prog->crit[prog->count].key = sort_keys[j].key;
		prog->crit[prog->count++].is_reverse = is_reverse;
		prog->needs |= sort_keys[j].needs;
		is_reverse = false;
	}
	/* RFC 5256 5: "(" sort-criterion *(SP sort-criterion) ")" */
	if (prog->count == 0 || is_reverse) {
		*error_r = "Invalid sort criteria";
		return -1;
	}
	return 0;
}

/* ---- i;unicode-casemap (RFC 5051) ---- */

#ifdef HAVE_UTF8PROC
static utf8proc_int32_t casemap_title(utf8proc_int32_t cp, void *ctx)
{
	(void)ctx;
	return utf8proc_totitle(cp);
}
#endif

#ifdef HAVE_UTF8PROC
/* Invalid UTF-8 bytes -> U+FFFD (EF BF BD), for utf8proc. */
static char *casemap_sanitize(const char *in, size_t len, size_t *len_r)
{
	struct unicode_buf buf = { NULL, 0, 0, NULL, 0 };
	char *out;

	/* per character: RFC 3629 4 validity */
	unicode_buf_reserve(&buf, len * 3 + 1);	/* SIZE-MATH: 1 -> 3 */
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)in[i];
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 :
			c >= 0xe0 && c <= 0xef ? 3 :
			c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		size_t k;

		for (k = 1; n > 1 && k < n && i + k < len; k++)
			if (((unsigned char)in[i + k] & 0xc0) != 0x80)
				break;
		if (n == 0 || k < n || i + n > len ||
		    (n > 1 && !utf8_is_valid((const unsigned char *)in + i,
					     n))) {
			memcpy(buf.data + buf.len, "\xef\xbf\xbd", 3);
			buf.len += 3;
			i++;
			continue;
		}
		memcpy(buf.data + buf.len, in + i, n);
		buf.len += n;
		i += n;
	}
	buf.data[buf.len] = '\0';
	*len_r = buf.len;
	out = (char *)buf.data;
	buf.data = NULL;
	unicode_buf_free(&buf);
	return out;
}
#endif

/* Cuts s (NUL-ended, len bytes) at IMAP_SORT_KEY_MAX, on a character
 * boundary. */
static void key_cut(char *s, size_t len)
{
	size_t n = len;

	if (n <= IMAP_SORT_KEY_MAX)
		return;
	n = IMAP_SORT_KEY_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	s[n] = '\0';
}

char *imap_sort_casemap(const char *in, size_t len)
{
#ifdef HAVE_UTF8PROC
	utf8proc_uint8_t *out = NULL;
	utf8proc_ssize_t n;
	size_t clean_len;
	char *clean, *ret;

	/* RFC 5051 2: the input is mapped to titlecase, then to NFKD */
	clean = casemap_sanitize(in, len, &clean_len);
	n = utf8proc_map_custom((const utf8proc_uint8_t *)clean,
				(utf8proc_ssize_t)clean_len, &out,
				UTF8PROC_STABLE | UTF8PROC_COMPAT |
				UTF8PROC_DECOMPOSE, casemap_title, NULL);
	free(clean);
	if (n < 0)
		return xstrdup("");	/* not expected after sanitizing */
	ret = xstrdup((const char *)out);
	free(out);
	key_cut(ret, (size_t)n);
	return ret;
#else
	struct unicode_buf buf = { NULL, 0, 0, NULL, 0 };
	char *ret;

	unicode_fold_append((const unsigned char *)in, len, &buf);
	unicode_buf_reserve(&buf, 1);
	buf.data[buf.len] = '\0';
	ret = xstrdup((const char *)buf.data);
	key_cut(ret, buf.len);
	unicode_buf_free(&buf);
	return ret;
#endif
}

/* ---- base subject (RFC 5256 2.1) ---- */

struct subj {
	char *s;		/* the text, NUL-ended */
	size_t start, end;	/* the current subject s[start..end) */
	bool is_reply;
};

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Rule 1: decode, unfold, tabs to space, space runs to one space. */
static char *subj_normalize(const char *raw, size_t len, size_t *len_r)
{
	char *unfolded, *decoded;
	size_t unfolded_len, decoded_len, n = 0;

	unfolded = rfc5322_unfold(raw, len, &unfolded_len);
	rfc2047_decode(unfolded, unfolded_len, &decoded, &decoded_len);
	free(unfolded);
	for (size_t i = 0; i < decoded_len; i++) {
		char c = decoded[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && n > 0 && decoded[n - 1] == ' ')
			continue;
		decoded[n++] = c;
	}
	decoded[n] = '\0';
	*len_r = n;
	return decoded;
}

static size_t subj_len(const struct subj *sj)
{
	return sj->end - sj->start;
}

static const char *subj_at(const struct subj *sj, size_t off)
{
	return sj->s + sj->start + off;
}

/* Rule 2: subj-trailer = "(fwd)" / WSP, repeatedly. */
static void subj_trailers(struct subj *sj)
{
	for (;;) {
		if (subj_len(sj) > 0 && is_wsp(sj->s[sj->end - 1])) {
			sj->end--;
		} else if (subj_len(sj) >= 5 &&
			   strncasecmp(sj->s + sj->end - 5, "(fwd)", 5) == 0) {
			sj->end -= 5;
			sj->is_reply = true;
		} else {
			break;
		}
	}
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at off: its length, or 0. */
static size_t subj_blob(const struct subj *sj, size_t off)
{
	size_t len = subj_len(sj), i = off;

	if (i >= len || *subj_at(sj, i) != '[')
		return 0;
	for (i++; i < len && *subj_at(sj, i) != ']'; i++)
		if (*subj_at(sj, i) == '[')
			return 0;
	if (i == len)
		return 0;
	for (i++; i < len && is_wsp(*subj_at(sj, i)); i++)
		;
	return i - off;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at off: its
 * length, or 0. */
static size_t subj_refwd(const struct subj *sj, size_t off)
{
	size_t len = subj_len(sj), i = off;

	if (len - i >= 2 && strncasecmp(subj_at(sj, i), "re", 2) == 0) {
		i += 2;
	} else if (len - i >= 2 && strncasecmp(subj_at(sj, i), "fw", 2) == 0) {
		i += 2;
		if (i < len && (*subj_at(sj, i) == 'd' ||
				*subj_at(sj, i) == 'D'))
			i++;
	} else {
		return 0;
	}
	while (i < len && is_wsp(*subj_at(sj, i)))
		i++;
	i += subj_blob(sj, i);
	if (i >= len || *subj_at(sj, i) != ':')
		return 0;
	return i + 1 - off;
}

/* Rule 3: subj-leader = (*subj-blob subj-refwd) / WSP, repeatedly.
 * Returns true if something was removed. */
static bool subj_leaders(struct subj *sj)
{
	bool removed = false;

	for (;;) {
		size_t off = 0, n;

		if (subj_len(sj) > 0 && is_wsp(*subj_at(sj, 0))) {
			sj->start++;
			removed = true;
			continue;
		}
		while ((n = subj_blob(sj, off)) > 0)
			off += n;
		if ((n = subj_refwd(sj, off)) == 0)
			return removed;
		sj->start += off + n;
		sj->is_reply = true;
		removed = true;
	}
}

/* Rule 4: a leading subj-blob goes when a non-empty subj-base remains
 * (trailing WSP is gone after rule 2, so non-empty is enough). */
static bool subj_blob_leader(struct subj *sj)
{
	size_t n = subj_blob(sj, 0);

	if (n == 0 || n == subj_len(sj))
		return false;
	sj->start += n;
	return true;
}

/* Rule 6: subj-fwd-hdr "[fwd:" ... subj-fwd-trl "]". */
static bool subj_fwd(struct subj *sj)
{
	if (subj_len(sj) < 6 || strncasecmp(subj_at(sj, 0), "[fwd:", 5) != 0 ||
	    sj->s[sj->end - 1] != ']')
		return false;
	sj->start += 5;
	sj->end--;
	sj->is_reply = true;
	return true;
}

bool imap_sort_base_subject(const char *raw, size_t len, char **base_r)
{
	struct subj sj;
	size_t n;

	sj.s = subj_normalize(raw, len, &n);
	sj.start = 0;
	sj.end = n;
	sj.is_reply = false;
	do {
		subj_trailers(&sj);
		/* rule 5: repeat 3 and 4 until no matches remain */
		while (subj_leaders(&sj) || subj_blob_leader(&sj))
			;
	} while (subj_fwd(&sj));
	*base_r = xmalloc(subj_len(&sj) + 1);
	memcpy(*base_r, subj_at(&sj, 0), subj_len(&sj));
	(*base_r)[subj_len(&sj)] = '\0';
	free(sj.s);
	return sj.is_reply;
}

/* ---- addresses and dates ---- */

/* RFC 5957 2: the display name (RFC 2047 decoded) if there is one, else
 * the addr-spec. */
static char *addr_display(const struct rfc5322_address *a)
{
	struct strbuf sb = { NULL, 0, 0 };
	char *decoded;
	size_t decoded_len;

	if (a->name != NULL && *a->name != '\0') {
		rfc2047_decode(a->name, strlen(a->name), &decoded,
			       &decoded_len);
		return decoded;
	}
	strbuf_add(&sb, a->mailbox, strlen(a->mailbox));
	if (a->domain != NULL) {
		strbuf_add(&sb, "@", 1);
		strbuf_add(&sb, a->domain, strlen(a->domain));
	}
	return strbuf_take(&sb);
}

char *imap_sort_addr_key(const char *raw, size_t len, bool is_display)
{
	struct rfc5322_address *list;
	char *unfolded, *text, *key;
	size_t unfolded_len;

	if (raw == NULL)
		return xstrdup("");
	unfolded = rfc5322_unfold(raw, len, &unfolded_len);
	list = rfc5322_address_parse(unfolded, unfolded_len);
	free(unfolded);
	/* RFC 5256 3: the first address; a group start counts with its
	 * name as addr-mailbox, as in the ENVELOPE */
	if (list == NULL || list->mailbox == NULL) {
		rfc5322_address_free(&list);
		return xstrdup("");
	}
	text = is_display ? addr_display(list) : xstrdup(list->mailbox);
	key = imap_sort_casemap(text, strlen(text));
	free(text);
	rfc5322_address_free(&list);
	return key;
}

time_t imap_sort_sent_date(const char *raw, size_t len,
			   time_t internal_date)
{
	time_t t;
	int tz;

	if (raw == NULL || rfc5322_date_parse(raw, len, &t, &tz) < 0)
		return internal_date;
	return t;
}

/* ---- items ---- */

void imap_sort_item_fill(struct imap_sort_item *item,
			 const struct imap_sort_program *prog,
			 const struct imap_sort_header *hdr, uint32_t seq,
			 time_t internal_date, uint64_t size)
{
	static const struct imap_sort_header empty;
	unsigned needs = prog->needs;
	char *base;

	if (hdr == NULL)
		hdr = &empty;
	memset(item, 0, sizeof(*item));
	item->seq = seq;
	item->arrival = internal_date;
	item->size = size;
	item->sent = imap_sort_sent_date(hdr->date, hdr->date_len,
					 internal_date);
	if (needs & IMAP_SORT_NEED_SUBJECT) {
		if (hdr->subject != NULL) {
			(void)imap_sort_base_subject(hdr->subject,
						     hdr->subject_len, &base);
			item->str[IMAP_SORT_STR_SUBJECT] =
				imap_sort_casemap(base, strlen(base));
			free(base);
		} else {
			item->str[IMAP_SORT_STR_SUBJECT] = xstrdup("");
		}
	}
	if (needs & IMAP_SORT_NEED_FROM)
		item->str[IMAP_SORT_STR_FROM] =
			imap_sort_addr_key(hdr->from, hdr->from_len, false);
	if (needs & IMAP_SORT_NEED_TO)
		item->str[IMAP_SORT_STR_TO] =
			imap_sort_addr_key(hdr->to, hdr->to_len, false);
	if (needs & IMAP_SORT_NEED_CC)
		item->str[IMAP_SORT_STR_CC] =
			imap_sort_addr_key(hdr->cc, hdr->cc_len, false);
	if (needs & IMAP_SORT_NEED_DISPLAYFROM)
		item->str[IMAP_SORT_STR_DISPLAYFROM] =
			imap_sort_addr_key(hdr->from, hdr->from_len, true);
	if (needs & IMAP_SORT_NEED_DISPLAYTO)
		item->str[IMAP_SORT_STR_DISPLAYTO] =
			imap_sort_addr_key(hdr->to, hdr->to_len, true);
}

void imap_sort_item_free(struct imap_sort_item *item)
{
	for (unsigned i = 0; i < IMAP_SORT_STR_COUNT; i++) {
		free(item->str[i]);
		item->str[i] = NULL;
	}
}

/* ---- comparison ---- */

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_time(time_t a, time_t b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

/* RFC 5256 3: a missing header is the empty string, which collates
 * first; keys compare as octets (RFC 5051). */
static int cmp_str(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "");
}

static int cmp_criterion(const struct imap_sort_item *a,
			 const struct imap_sort_item *b,
			 enum imap_sort_key key)
{
	switch (key) {
	case IMAP_SORT_ARRIVAL:
		return cmp_time(a->arrival, b->arrival);
	case IMAP_SORT_DATE:
		return cmp_time(a->sent, b->sent);
	case IMAP_SORT_SIZE:
		return cmp_u64(a->size, b->size);
	case IMAP_SORT_SUBJECT:
		return cmp_str(a->str[IMAP_SORT_STR_SUBJECT],
			       b->str[IMAP_SORT_STR_SUBJECT]);
	case IMAP_SORT_FROM:
		return cmp_str(a->str[IMAP_SORT_STR_FROM],
			       b->str[IMAP_SORT_STR_FROM]);
	case IMAP_SORT_TO:
		return cmp_str(a->str[IMAP_SORT_STR_TO],
			       b->str[IMAP_SORT_STR_TO]);
	case IMAP_SORT_CC:
		return cmp_str(a->str[IMAP_SORT_STR_CC],
			       b->str[IMAP_SORT_STR_CC]);
	case IMAP_SORT_DISPLAYFROM:
		return cmp_str(a->str[IMAP_SORT_STR_DISPLAYFROM],
			       b->str[IMAP_SORT_STR_DISPLAYFROM]);
	case IMAP_SORT_DISPLAYTO:
		return cmp_str(a->str[IMAP_SORT_STR_DISPLAYTO],
			       b->str[IMAP_SORT_STR_DISPLAYTO]);
	}
	abort();	/* not reached: the parser knows no other key */
}

static int cmp_items(const void *pa, const void *pb, void *ctx)
{
	const struct imap_sort_program *prog = ctx;
	const struct imap_sort_item *a = pa, *b = pb;

	for (unsigned i = 0; i < prog->count; i++) {
		int r = cmp_criterion(a, b, prog->crit[i].key);

		if (r != 0)
			return prog->crit[i].is_reverse ? -r : r;
	}
	/* RFC 5256 3: the implicit "sequence number" criterion, never
	 * reversed */
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void imap_sort_items(struct imap_sort_item *items, size_t count,
		     const struct imap_sort_program *prog)
{
	if (count > 1)
		qsort_r(items, count, sizeof(*items), cmp_items,
			(void *)prog);
}
