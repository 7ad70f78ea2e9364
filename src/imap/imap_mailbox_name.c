/* imap_mailbox_name.c: mailbox name conversion between client, store and
 * UTF-8 spellings, and LIST pattern matching (see imap_mailbox_name.h).
 * Matching is a row-by-row NFA walk: O(pattern x name) time, O(name)
 * memory, no backtracking, so hostile patterns cost little. Not here:
 * store rules for names (store_mailbox_name_error). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_mailbox_name.h"
#include "imap/imap_quote.h"
#include "imap/imap_utf7.h"
#include "lib/xmalloc.h"

#define INBOX_LEN 5

bool imap_mailbox_name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

size_t imap_mailbox_name_inbox_len(const char *name)
{
	if (strncasecmp(name, "INBOX", INBOX_LEN) == 0 &&
	    (name[INBOX_LEN] == '\0' || name[INBOX_LEN] == IMAP_MAILBOX_SEP))
		return INBOX_LEN;
	return 0;
}

/* Net-Unicode (RFC 5198, required by RFC 6855 section 3): no C0/C1
 * controls, no DEL, no LINE SEPARATOR (U+2028, E2 80 A8) or PARAGRAPH
 * SEPARATOR (U+2029, E2 80 A9). str is valid UTF-8. */
static bool utf8_has_controls(const char *str)
{
	const unsigned char *p = (const unsigned char *)str;

	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return true;
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return true;
		if (p[0] == 0xe2 && p[1] == 0x80 &&
		    (p[2] == 0xa8 || p[2] == 0xa9))
			return true;
	}
	return false;
}

/* name needn't be NUL-ended (a parsed argument with its length). */
static char *dup_len(const char *name, size_t len)
{
	char *copy = xmalloc(len + 1);

	memcpy(copy, name, len);
	copy[len] = '\0';
	return copy;
}

static void upcase_inbox(char *name)
{
	size_t n = imap_mailbox_name_inbox_len(name);

	memcpy(name, "INBOX", n);
}

int imap_mailbox_name_from_client(const char *name, size_t len, bool is_utf8,
				  char **store_name_r, const char **error_r)
{
	char *store = NULL, *utf8 = NULL;

	*store_name_r = NULL;
	if (memchr(name, '\0', len) != NULL) {
		*error_r = "NUL in mailbox name";
		return -1;
	}
	if (is_utf8) {
		/* RFC 6855 section 3: accept UTF-8, store the internal
		 * (mUTF-7) form. */
		if (imap_utf7_encode(name, len, &store) < 0) {
			*error_r = "Mailbox name is not valid UTF-8";
			return -1;
		}
		utf8 = dup_len(name, len);
	} else {
		/* RFC 3501 5.1.3: 7-bit, modified UTF-7 for the rest. */
		if (imap_utf7_decode(name, len, &utf8) < 0) {
			*error_r = "Mailbox name is not valid mUTF-7";
			return -1;
		}
		store = dup_len(name, len);
	}
	if (utf8_has_controls(utf8)) {
		free(utf8);
		free(store);
		*error_r = "Control character in mailbox name";
		return -1;
	}
	free(utf8);
	upcase_inbox(store);
	*store_name_r = store;
	return 0;
}

int imap_mailbox_name_to_utf8(const char *store_name, char **utf8_r)
{
	return imap_utf7_decode(store_name, strlen(store_name), utf8_r);
}

int imap_mailbox_name_append(struct evbuffer *out, const char *store_name,
			     unsigned quote_flags)
{
	char *utf8;
	int ret;

	if (imap_mailbox_name_to_utf8(store_name, &utf8) < 0)
		return -1;
	ret = imap_append_mailbox(out, utf8, strlen(utf8), quote_flags);
	free(utf8);
	return ret;
}

/* Collapses runs of wildcards: a run with a '*' is '*', else '%'. */
static void pattern_collapse(char *pat)
{
	char *w = pat;

	for (const char *r = pat; *r != '\0';) {
		if (*r != '*' && *r != '%') {
			*w++ = *r++;
			continue;
		}
		char c = '%';
		for (; *r == '*' || *r == '%'; r++) {
			if (*r == '*')
				c = '*';
		}
		*w++ = c;
	}
	*w = '\0';
}

int imap_mailbox_pattern_make(const char *ref, size_t ref_len,
			      const char *pattern, size_t pattern_len,
			      bool is_utf8, char **pattern_r,
			      const char **error_r)
{
	char *joined, *conv;
	size_t len;

	/* RFC 3501 6.3.8: a pattern that is an absolute name (it starts
	 * with the separator) is interpreted without the reference. */
	if (pattern_len > 0 && pattern[0] == IMAP_MAILBOX_SEP)
		ref_len = 0;
	if (ref_len > IMAP_MAILBOX_PATTERN_MAX ||
	    pattern_len > IMAP_MAILBOX_PATTERN_MAX - ref_len) {
		*error_r = "Mailbox pattern too long";
		return -1;
	}
	len = ref_len + pattern_len;	/* SIZE-MATH: checked above */
	joined = xmalloc(len + 1);
	memcpy(joined, ref, ref_len);
	memcpy(joined + ref_len, pattern, pattern_len);
	joined[len] = '\0';
	if (memchr(joined, '\0', len) != NULL) {
		free(joined);
		*error_r = "NUL in mailbox pattern";
		return -1;
	}
	if (is_utf8) {
		if (imap_utf7_encode(joined, len, &conv) < 0) {
			free(joined);
			*error_r = "Mailbox pattern is not valid UTF-8";
			return -1;
		}
		free(conv);
	} else if (imap_utf7_decode(joined, len, &conv) == 0) {
		free(joined);
		joined = conv;
	}
	pattern_collapse(joined);
	*pattern_r = joined;
	return 0;
}

static bool char_eq(char p, char n, bool icase)
{
	if (p == n)
		return true;
	return icase && (p | 0x20) == (n | 0x20) && (p | 0x20) >= 'a' &&
		(p | 0x20) <= 'z';
}

/* One pattern character: row[j] (name prefix of length j matched so far)
 * -> next. */
static void match_step(char p, const char *name, size_t n, size_t icase,
		       const bool *row, bool *next)
{
	next[0] = (p == '*' || p == '%') && row[0];
	for (size_t j = 1; j <= n; j++) {
		char c = name[j - 1];

		if (p == '*')
			next[j] = row[j] || next[j - 1];
		else if (p == '%')
			next[j] = row[j] ||
				(next[j - 1] && c != IMAP_MAILBOX_SEP);
		else
			next[j] = row[j - 1] && char_eq(p, c, j - 1 < icase);
	}
}

bool imap_mailbox_pattern_match(const char *pattern, const char *name)
{
	size_t n = strlen(name), literals = 0;
	size_t icase = imap_mailbox_name_inbox_len(name);
	bool *row, *next, *tmp, any = true, ret;

	for (const char *p = pattern; *p != '\0'; p++) {
		if (*p != '*' && *p != '%')
			literals++;
	}
	if (literals > n)
		return false;
	row = xcalloc(n + 1, sizeof(*row));
	next = xcalloc(n + 1, sizeof(*next));
	row[0] = true;
	for (const char *p = pattern; *p != '\0' && any; p++) {
		match_step(*p, name, n, icase, row, next);
		tmp = row;
		row = next;
		next = tmp;
		any = memchr(row, true, n + 1) != NULL;
	}
	ret = row[n];
	free(row);
	free(next);
	return ret;
}

char *imap_mailbox_ref_root(const char *ref, size_t ref_len)
{
	const char *sep = memchr(ref, IMAP_MAILBOX_SEP, ref_len);
	size_t len = sep == NULL ? ref_len : (size_t)(sep - ref) + 1;
	char *root = xmalloc(len + 1);

	memcpy(root, ref, len);
	root[len] = '\0';
	return root;
}

char *imap_mailbox_name_parent(const char *name)
{
	const char *sep = strrchr(name, IMAP_MAILBOX_SEP);
	char *parent;

	if (sep == NULL || sep == name)
		return NULL;
	parent = xmalloc((size_t)(sep - name) + 1);
	memcpy(parent, name, (size_t)(sep - name));
	parent[sep - name] = '\0';
	return parent;
}

const char *imap_mailbox_special_use(const char *store_name)
{
	/* RFC 6154 section 2; the folders the login code creates. */
	static const char *const map[][2] = {
		{ "Drafts", "\\Drafts" },
		{ "Sent", "\\Sent" },
		{ "Trash", "\\Trash" },
		{ "Junk", "\\Junk" },
		{ "Archive", "\\Archive" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(store_name, map[i][0]) == 0)
			return map[i][1];
	}
	return NULL;
}
