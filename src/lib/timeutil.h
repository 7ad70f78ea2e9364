/* timeutil.h: calendar arithmetic without the C library's time zones,
 * and the monotonic clock as one number. */
#ifndef HERON_TIMEUTIL_H
#define HERON_TIMEUTIL_H

#include <stdint.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12);
 * H. Hinnant's days_from_civil. */
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);

/* CLOCK_MONOTONIC in nanoseconds: for durations. */
uint64_t time_mono_nsecs(void);
/* CLOCK_MONOTONIC_COARSE in milliseconds (a few ms of resolution, no
 * system call): for timeouts and rate limits on hot paths. */
uint64_t time_mono_coarse_msecs(void);

#endif
