/* imap_date.h: IMAP date ("1-Feb-1994", SEARCH) and date-time
 * ("17-Jul-1996 02:44:25 -0700", APPEND and INTERNALDATE) per RFC 3501
 * section 9. The DQUOTEs belong to the string syntax and are removed by
 * the parser before these are called. No locale, no TZ environment. */
#ifndef HERON_IMAP_DATE_H
#define HERON_IMAP_DATE_H

#include <stddef.h>
#include <time.h>

/* " 7-Jul-1996 02:44:25 -0700" plus NUL, with room to spare */
#define IMAP_DATETIME_MAX 40

/* date-text = date-day "-" date-month "-" date-year (day 1 or 2 digits,
 * month case-insensitive, year 4 digits, day valid for the month).
 * *time_r = 00:00:00 UTC of that day. Returns 0 or -1. */
int imap_date_parse(const char *str, size_t len, time_t *time_r);
/* date-day-fixed "-" date-month "-" date-year SP time SP zone; the day
 * may be " 7", "07" or (leniently) "7". *time_r is UTC;
 * *tz_offset_mins_r the zone (-0700 = -420). Returns 0 or -1. */
int imap_datetime_parse(const char *str, size_t len, time_t *time_r,
			int *tz_offset_mins_r);
/* INTERNALDATE text for t shown in zone tz_offset_mins (no DQUOTEs):
 * " 7-Jul-1996 02:44:25 -0700". Returns the length. */
size_t imap_datetime_format(time_t t, int tz_offset_mins,
			    char buf[IMAP_DATETIME_MAX]);
/* The server's zone offset at t in seconds (localtime_r; 0 if that
 * fails). INTERNALDATE is shown, and SEARCH BEFORE/ON/SINCE compare
 * days, in the server's zone, as Dovecot does. */
long imap_local_offset_secs(time_t t);

#endif
