/* strnum.c: overflow-checked decimal parsing. */
#include "strnum.h"

#include <string.h>

int str_to_u64(const char *s, size_t len, uint64_t max, uint64_t *num_r)
{
	uint64_t n = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';
		if (d > 9)
			return -1;
		if (d > max || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*num_r = n;
	return 0;
}

int str_to_u64z(const char *s, uint64_t max, uint64_t *num_r)
{
	return str_to_u64(s, strlen(s), max, num_r);
}

int hex_digit_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
