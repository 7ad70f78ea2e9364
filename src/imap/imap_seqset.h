/* imap_seqset.h: IMAP sequence sets (RFC 3501 section 9 "sequence-set",
 * RFC 5182 "$"). Parsed into sorted, merged ranges of 1..2^32-1, with
 * '*' resolved against the caller's largest number. Syntax and
 * arithmetic only: whether numbers exist is the command's business. */
#ifndef HERON_IMAP_SEQSET_H
#define HERON_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_seq_range {
	uint32_t first, last;		/* first <= last */
};

struct imap_seqset {
	struct imap_seq_range *ranges;	/* sorted, non-overlapping, */
	size_t count;			/* non-adjacent; heap */
	bool has_star;			/* '*' was used */
};

struct imap_seqset_iter {
	size_t idx;
	uint64_t next;
};

/* Parses str[0..len). star is the value of '*' (the number of messages,
 * or the highest UID); when star is 0 (empty mailbox) ranges using '*'
 * are dropped, so "1:*" gives an empty set (has_star tells the caller,
 * e.g. to answer BAD for sequence numbers). "n:m" may be given in either
 * order. "$" (SEARCHRES, RFC 5182) is accepted only as the whole set: it
 * gives *is_searchres_r = true and an empty set. Returns 0, or -1 with a
 * static *error_r (0, overflow above 4294967295, syntax). Free with
 * imap_seqset_free(). */
int imap_seqset_parse(const char *str, size_t len, uint32_t star,
		      struct imap_seqset *set_r, bool *is_searchres_r,
		      const char **error_r);
void imap_seqset_free(struct imap_seqset *set);
/* Writes numbers as a sequence set, runs of +1 as "a:b" ("1:3,7"), in the
 * given order. With filter, entries whose filter[i] is 0 are left out
 * (COPYUID pairs). Returns a heap string the caller frees. */
char *imap_seqset_format(const uint32_t *nums, const uint32_t *filter,
			 size_t count);

/* Binary search. */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* Number of members (up to 2^32-1). */
uint64_t imap_seqset_count(const struct imap_seqset *set);
/* Largest member, 0 for an empty set. */
uint32_t imap_seqset_max(const struct imap_seqset *set);

/* for (imap_seqset_iter_init(&it); imap_seqset_iter_next(set, &it, &n);) */
void imap_seqset_iter_init(struct imap_seqset_iter *iter);
bool imap_seqset_iter_next(const struct imap_seqset *set,
			   struct imap_seqset_iter *iter, uint32_t *n_r);

#endif
