/* fuzz_sort.c: RFC 5256 base subject extraction, the casemap key and
 * address keys (src/imap/imap_sort.c), Message-ID parsing and both
 * threading algorithms (src/imap/imap_thread.c). The input is up to
 * FUZZ_SORT_MSGS lines "message-id TAB references TAB in-reply-to TAB
 * subject" (missing fields are absent headers). Checks: base subjects
 * are fixed points of the extraction (when no "=?" is left to decode
 * and there is no NUL),
 * keys are bounded, and each THREAD reply has balanced parentheses and
 * names every message exactly once, with no "()" and no nested list
 * standing alone. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_sort.h"
#include "imap/imap_thread.h"

#define FUZZ_SORT_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_subject(const char *s, size_t len)
{
	char *base, *again, *key;

	(void)imap_sort_base_subject(s, len, &base);
	if (strlen(base) > 3 * len + 1)
		abort();
	/* NUL cuts the C string: no fixed point to compare */
	if (strstr(base, "=?") == NULL && memchr(s, '\0', len) == NULL) {
		(void)imap_sort_base_subject(base, strlen(base), &again);
		if (strcmp(base, again) != 0)
			abort();
		free(again);
	}
	key = imap_sort_casemap(base, strlen(base));
	if (strlen(key) > IMAP_SORT_KEY_MAX)
		abort();
	free(key);
	free(base);
	free(imap_sort_addr_key(s, len, false));
	free(imap_sort_addr_key(s, len, true));
}

/* Field i (0-based, TAB-separated) of line[0..len), or NULL. */
static const char *field(const char *line, size_t len, int i, size_t *n_r)
{
	const char *p = line, *end = line + len, *tab;

	for (; i > 0; i--) {
		if ((tab = memchr(p, '\t', (size_t)(end - p))) == NULL)
			return NULL;
		p = tab + 1;
	}
	tab = memchr(p, '\t', (size_t)(end - p));
	*n_r = (size_t)((tab != NULL ? tab : end) - p);
	return p;
}

static void check_reply(const char *text, size_t count)
{
	unsigned char *seen = calloc(count + 1, 1);
	long depth = 0;

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '(') {
			if (p[1] == ')')
				abort();
			depth++;
		} else if (*p == ')') {
			if (--depth < 0)
				abort();
		} else if (*p >= '0' && *p <= '9') {
			unsigned long n = strtoul(p, (char **)&p, 10);

			p--;
			if (n == 0 || n > count || seen[n]++)
				abort();
		}
	}
	for (size_t i = 1; i <= count; i++)
		if (!seen[i])
			abort();
	if (depth != 0)
		abort();
	free(seen);
}

static void fill(struct imap_thread_msg *m, uint32_t seq, const char *line,
		 size_t len)
{
	const char *f[4];
	size_t n[4] = { 0, 0, 0, 0 };
	char *base;

	for (int i = 0; i < 4; i++)
		f[i] = field(line, len, i, &n[i]);
	memset(m, 0, sizeof(*m));
	m->seq = m->number = seq;
	m->sent = (time_t)(len % 7);
	imap_thread_msg_set_ids(m, f[0], n[0], f[1], n[1], f[2], n[2]);
	if (f[3] != NULL) {
		check_subject(f[3], n[3]);
		m->is_reply = imap_sort_base_subject(f[3], n[3], &base);
		m->subject = imap_sort_casemap(base, strlen(base));
		free(base);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_thread_msg msgs[FUZZ_SORT_MSGS];
	const char *p = (const char *)data, *end = p + size, *nl;
	size_t count = 0;

	while (p < end && count < FUZZ_SORT_MSGS) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		fill(&msgs[count], (uint32_t)count + 1, p, (size_t)(nl - p));
		count++;
		p = nl + 1;
	}
	for (int alg = 0; alg < 2; alg++) {
		struct strbuf sb = { NULL, 0, 0 };
		char *text;

		imap_thread_build(alg == 0 ? IMAP_THREAD_REFERENCES :
				  IMAP_THREAD_ORDEREDSUBJECT, msgs, count, &sb);
		text = strbuf_take(&sb);
		check_reply(text, count);
		free(text);
	}
	for (size_t i = 0; i < count; i++)
		imap_thread_msg_free(&msgs[i]);
	return 0;
}
