/* timeutil.h: calendar arithmetic without the C library's time zones. */
#ifndef HERON_TIMEUTIL_H
#define HERON_TIMEUTIL_H

#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12);
 * H. Hinnant's days_from_civil. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
