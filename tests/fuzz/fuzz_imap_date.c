/* fuzz_imap_date.c: IMAP date and date-time (src/imap/imap_date.c). The
 * input is parsed as date-text and as date-time; a date must be a UTC
 * midnight, a date-time must format and parse back to the same instant
 * and zone. The first 10 bytes are also used as a raw (time_t, zone) pair
 * for the formatter, whose output must be exactly 26 characters (clamped
 * values included) and parse back when in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_date.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_format(time_t t, int tz)
{
	char buf[IMAP_DATETIME_MAX];
	size_t n = imap_datetime_format(t, tz, buf);
	time_t t2;
	int tz2;

	if (n != 26 || strlen(buf) != n)
		abort();
	/* clamped input formats fine but need not come back equal */
	if (imap_datetime_parse(buf, n, &t2, &tz2) < 0)
		abort();
	if (tz >= -1439 && tz <= 1439 && t >= -62135596800LL + 2 * 86400 &&
	    t <= 253402300799LL - 2 * 86400 && (t2 != t || tz2 != tz))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size > 0 ? size : 1);	/* exact size */
	time_t t;
	int tz;

	memcpy(copy, data, size);
	if (imap_date_parse(copy, size, &t) == 0 && t % 86400 != 0)
		abort();
	if (imap_datetime_parse(copy, size, &t, &tz) == 0) {
		if (tz < -1439 || tz > 1439)
			abort();
		check_format(t, tz);
	}
	if (size >= 10) {
		int64_t raw;
		int16_t raw_tz;

		memcpy(&raw, data, sizeof(raw));
		memcpy(&raw_tz, data + 8, sizeof(raw_tz));
		check_format((time_t)raw, raw_tz);
	}
	free(copy);
	return 0;
}
