/* imap_seqset.c: sequence-set parsing, normalisation and lookups (see
 * imap_seqset.h). The range array has at most one entry per comma in the
 * input, so its size is bounded by the command line limit. */
#include "imap/imap_seqset.h"
#include "lib/xmalloc.h"

#include <event2/buffer.h>

#include <stdlib.h>

#include "lib/xmalloc.h"

#define SEQ_STAR_MARK 0		/* internal: '*' before resolution */

/* seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT, 32-bit */
static int parse_number(const char *s, size_t len, size_t *pos,
			uint32_t *n_r, const char **error_r)
{
	uint64_t n = 0;
	size_t start = *pos;

	if (*pos < len && s[*pos] == '*') {
		(*pos)++;
		*n_r = SEQ_STAR_MARK;
		return 0;
	}
	while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
		n = n * 10 + (uint64_t)(s[*pos] - '0');
		if (n > UINT32_MAX) {
			*error_r = "Sequence number too large";
			return -1;
		}
		(*pos)++;
	}
	if (*pos == start) {
		*error_r = "Invalid sequence set";
		return -1;
	}
	if (n == 0 || s[start] == '0') {
		*error_r = "Invalid sequence number 0";
		return -1;
	}
	*n_r = (uint32_t)n;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *ra = a, *rb = b;

	return ra->first < rb->first ? -1 : ra->first > rb->first;
}

static void normalize(struct imap_seqset *set)
{
	size_t i, o = 0;

	qsort(set->ranges, set->count, sizeof(*set->ranges), range_cmp);
	for (i = 0; i < set->count; i++) {
		struct imap_seq_range r = set->ranges[i];

		/* merge overlapping and adjacent ranges; SIZE-MATH: last
		 * + 1 done in 64 bits */
		if (o > 0 && (uint64_t)set->ranges[o - 1].last + 1 >=
		    r.first) {
			if (r.last > set->ranges[o - 1].last)
				set->ranges[o - 1].last = r.last;
		} else {
			set->ranges[o++] = r;
		}
	}
	set->count = o;
}

static bool add_range(struct imap_seqset *set, uint32_t a, uint32_t b,
		      uint32_t star)
{
	struct imap_seq_range *r;

	if (a == SEQ_STAR_MARK || b == SEQ_STAR_MARK) {
		set->has_star = true;
		if (star == 0)
			return false;	/* empty mailbox: nothing */
		if (a == SEQ_STAR_MARK)
			a = star;
		if (b == SEQ_STAR_MARK)
			b = star;
	}
	r = &set->ranges[set->count++];
	r->first = a < b ? a : b;
	r->last = a < b ? b : a;
	return true;
}

int imap_seqset_parse(const char *str, size_t len, uint32_t star,
		      struct imap_seqset *set_r, bool *is_searchres_r,
		      const char **error_r)
{
	size_t pos = 0, i, commas = 0;
	uint32_t a, b;

	set_r->ranges = NULL;
	set_r->count = 0;
	set_r->has_star = false;
	*is_searchres_r = false;
	if (len == 1 && str[0] == '$') {
		*is_searchres_r = true;
		return 0;
	}
	for (i = 0; i < len; i++)
		commas += str[i] == ',';
	set_r->ranges = xreallocarray(NULL, commas + 1,
				      sizeof(*set_r->ranges));
	for (;;) {
		if (parse_number(str, len, &pos, &a, error_r) < 0)
			goto fail;
		b = a;
		if (pos < len && str[pos] == ':') {
			pos++;
			if (parse_number(str, len, &pos, &b, error_r) < 0)
				goto fail;
		}
		(void)add_range(set_r, a, b, star);
		if (pos == len)
			break;
		if (str[pos++] != ',') {
			*error_r = "Invalid sequence set";
			goto fail;
		}
	}
	normalize(set_r);
	return 0;
fail:
	imap_seqset_free(set_r);
	return -1;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	set->ranges = NULL;
	set->count = 0;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (n < set->ranges[mid].first)
			hi = mid;
		else if (n > set->ranges[mid].last)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t imap_seqset_count(const struct imap_seqset *set)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < set->count; i++)
		total += (uint64_t)set->ranges[i].last -
			set->ranges[i].first + 1;
	return total;
}

uint32_t imap_seqset_max(const struct imap_seqset *set)
{
	return set->count == 0 ? 0 : set->ranges[set->count - 1].last;
}

void imap_seqset_iter_init(struct imap_seqset_iter *iter)
{
	iter->idx = 0;
	iter->next = 0;
}

bool imap_seqset_iter_next(const struct imap_seqset *set,
			   struct imap_seqset_iter *iter, uint32_t *n_r)
{
	if (iter->idx >= set->count)
		return false;
	if (iter->next < set->ranges[iter->idx].first)
		iter->next = set->ranges[iter->idx].first;
	*n_r = (uint32_t)iter->next;
	if (iter->next == set->ranges[iter->idx].last)
		iter->idx++;
	iter->next++;
	return true;
}

char *imap_seqset_format(const uint32_t *nums, const uint32_t *filter,
			 size_t count)
{
	struct evbuffer *buf = evbuffer_new();
	size_t len, i = 0;
	char *str;

	while (i < count) {
		size_t j;

		if (filter != NULL && filter[i] == 0) {
			i++;
			continue;
		}
		for (j = i; j + 1 < count && nums[j + 1] == nums[j] + 1 &&
		     (filter == NULL || filter[j + 1] != 0); j++)
			;
		evbuffer_add_printf(buf, evbuffer_get_length(buf) > 0 ?
				    ",%u" : "%u", nums[i]);
		if (j > i)
			evbuffer_add_printf(buf, ":%u", nums[j]);
		i = j + 1;
	}
	len = evbuffer_get_length(buf);
	str = xmalloc(len + 1);
	evbuffer_remove(buf, str, len);
	str[len] = '\0';
	evbuffer_free(buf);
	return str;
}
