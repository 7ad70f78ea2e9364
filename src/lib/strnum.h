/* strnum.h: decimal parsing with overflow checks. */
#ifndef HERON_STRNUM_H
#define HERON_STRNUM_H

#include <stddef.h>
#include <stdint.h>

/* Parses exactly len bytes of decimal digits (no sign, no spaces) into
 * *num_r, refusing values above max. Returns 0 or -1. */
int str_to_u64(const char *s, size_t len, uint64_t max, uint64_t *num_r);
/* Same for a NUL-ended string. */
int str_to_u64z(const char *s, uint64_t max, uint64_t *num_r);

/* Value of one hex digit (either case), or -1. */
int hex_digit_value(unsigned char c);

#endif
