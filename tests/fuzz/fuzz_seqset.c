/* fuzz_seqset.c: IMAP sequence sets (src/imap/imap_seqset.c). The first
 * input byte picks '*' (0, 1, 7, 1000 or 4294967295); the rest is the set.
 * A parsed set must be sorted, merged (no overlap, no adjacency), inside
 * 1..2^32-1, agree with count/max/contains/iteration, and a set of up to
 * 4096 members must survive format -> parse unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"

#define SEQSET_FUZZ_MAX_LIST 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_shape(const struct imap_seqset *set)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < set->count; i++) {
		const struct imap_seq_range *r = &set->ranges[i];

		if (r->first == 0 || r->first > r->last)
			abort();
		if (i > 0 && (uint64_t)set->ranges[i - 1].last + 1 >= r->first)
			abort();
		if (!imap_seqset_contains(set, r->first) ||
		    !imap_seqset_contains(set, r->last) ||
		    (r->first > 1 && imap_seqset_contains(set, r->first - 1)))
			abort();
		total += (uint64_t)r->last - r->first + 1;
	}
	if (imap_seqset_count(set) != total)
		abort();
	if (imap_seqset_max(set) !=
	    (set->count == 0 ? 0 : set->ranges[set->count - 1].last))
		abort();
	if (imap_seqset_contains(set, 0))
		abort();
}

/* Walks the set (at most SEQSET_FUZZ_MAX_LIST members) and, when that is
 * all of it, formats and reparses it. */
static void check_iter_format(const struct imap_seqset *set)
{
	uint32_t *nums = malloc(SEQSET_FUZZ_MAX_LIST * sizeof(*nums));
	struct imap_seqset_iter it;
	struct imap_seqset again;
	const char *error;
	bool is_searchres;
	size_t n = 0;
	uint32_t v;
	char *str;

	for (imap_seqset_iter_init(&it); n < SEQSET_FUZZ_MAX_LIST &&
	     imap_seqset_iter_next(set, &it, &v);) {
		if ((n > 0 && v <= nums[n - 1]) ||
		    !imap_seqset_contains(set, v))
			abort();
		nums[n++] = v;
	}
	if (n == imap_seqset_count(set)) {
		str = imap_seqset_format(nums, NULL, n);
		if (n > 0 && (imap_seqset_parse(str, strlen(str), 1, &again,
						&is_searchres, &error) < 0 ||
			      is_searchres || again.count != set->count ||
			      memcmp(again.ranges, set->ranges, set->count *
				     sizeof(*set->ranges)) != 0))
			abort();
		if (n > 0)
			imap_seqset_free(&again);
		free(str);
	}
	free(nums);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t stars[] = { 0, 1, 7, 1000, 4294967295U };
	struct imap_seqset set;
	const char *error;
	bool is_searchres;
	char *copy;

	if (size == 0)
		return 0;
	copy = malloc(size - 1 > 0 ? size - 1 : 1);	/* exact size */
	memcpy(copy, data + 1, size - 1);
	if (imap_seqset_parse(copy, size - 1, stars[data[0] % 5], &set,
			      &is_searchres, &error) == 0) {
		if (is_searchres && set.count != 0)
			abort();
		check_shape(&set);
		check_iter_format(&set);
		imap_seqset_free(&set);
	} else if (error == NULL) {
		abort();
	}
	free(copy);
	return 0;
}
