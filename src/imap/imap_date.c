/* imap_date.c: IMAP date / date-time parsing and formatting with our own
 * civil-calendar arithmetic (proleptic Gregorian, years 1..9999), so
 * results don't depend on TZ or the C library's mktime. */
#include "imap/imap_date.h"
#include "lib/timeutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30,
				      31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}


static void civil_from_days(int64_t z, int64_t *y_r, int *m_r, int *d_r)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d_r = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m_r = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y_r = yoe + era * 400 + (*m_r <= 2);
}

/* n digits at s[*pos] into *v. */
static bool get_digits(const char *s, size_t len, size_t *pos, unsigned n,
		       int *v)
{
	unsigned i;

	*v = 0;
	for (i = 0; i < n; i++, (*pos)++) {
		if (*pos >= len || s[*pos] < '0' || s[*pos] > '9')
			return false;
		*v = *v * 10 + (s[*pos] - '0');
	}
	return true;
}

static bool get_char(const char *s, size_t len, size_t *pos, char c)
{
	if (*pos >= len || s[*pos] != c)
		return false;
	(*pos)++;
	return true;
}

/* day "-" month "-" year, day already positioned; fills *days_r. */
static bool parse_date_rest(const char *s, size_t len, size_t *pos,
			    int day, int64_t *days_r)
{
	int m, y;

	if (!get_char(s, len, pos, '-') || len - *pos < 4)
		return false;
	for (m = 0; m < 12; m++) {
		if (strncasecmp(s + *pos, months[m], 3) == 0)
			break;
	}
	if (m == 12)
		return false;
	*pos += 3;
	if (!get_char(s, len, pos, '-') || !get_digits(s, len, pos, 4, &y))
		return false;
	if (y < 1 || day < 1 || day > days_in_month(y, m + 1))
		return false;
	*days_r = days_from_civil(y, (unsigned)m + 1, (unsigned)day);
	return true;
}

/* date-day = 1*2DIGIT (with a leading SP for date-day-fixed) */
static bool parse_day(const char *s, size_t len, size_t *pos, bool fixed,
		      int *day_r)
{
	if (fixed && *pos < len && s[*pos] == ' ')
		(*pos)++;
	if (!get_digits(s, len, pos, 1, day_r))
		return false;
	if (*pos < len && s[*pos] >= '0' && s[*pos] <= '9')
		*day_r = *day_r * 10 + (s[(*pos)++] - '0');
	return true;
}

int imap_date_parse(const char *str, size_t len, time_t *time_r)
{
	size_t pos = 0;
	int64_t days;
	int day;

	if (!parse_day(str, len, &pos, false, &day) ||
	    !parse_date_rest(str, len, &pos, day, &days) || pos != len)
		return -1;
	*time_r = (time_t)(days * 86400);
	return 0;
}

int imap_datetime_parse(const char *str, size_t len, time_t *time_r,
			int *tz_offset_mins_r)
{
	size_t pos = 0;
	int64_t days;
	int day, hh, mm, ss, zh, zm, sign;

	if (!parse_day(str, len, &pos, true, &day) ||
	    !parse_date_rest(str, len, &pos, day, &days) ||
	    !get_char(str, len, &pos, ' ') ||
	    !get_digits(str, len, &pos, 2, &hh) ||
	    !get_char(str, len, &pos, ':') ||
	    !get_digits(str, len, &pos, 2, &mm) ||
	    !get_char(str, len, &pos, ':') ||
	    !get_digits(str, len, &pos, 2, &ss) ||
	    !get_char(str, len, &pos, ' ') || pos >= len)
		return -1;
	/* zone = ("+" / "-") 4DIGIT */
	sign = str[pos] == '+' ? 1 : str[pos] == '-' ? -1 : 0;
	pos++;
	if (sign == 0 || !get_digits(str, len, &pos, 2, &zh) ||
	    !get_digits(str, len, &pos, 2, &zm) || pos != len)
		return -1;
	/* ss 60: a leap second */
	if (hh > 23 || mm > 59 || ss > 60 || zh > 23 || zm > 59)
		return -1;
	*tz_offset_mins_r = sign * (zh * 60 + zm);
	*time_r = (time_t)(days * 86400 + hh * 3600 + mm * 60 + ss -
			   (int64_t)*tz_offset_mins_r * 60);
	return 0;
}

#define DATE_MIN_SECS (-62135596800LL)	/* 0001-01-01 00:00:00 UTC */
#define DATE_MAX_SECS 253402300799LL	/* 9999-12-31 23:59:59 UTC */

size_t imap_datetime_format(time_t t, int tz_offset_mins,
			    char buf[IMAP_DATETIME_MAX])
{
	int64_t local;
	int64_t days, secs, y;
	int m, d, off, n;

	/* clamp so the arithmetic can't overflow and the year has 4
	 * digits */
	if (tz_offset_mins < -1439 || tz_offset_mins > 1439)
		tz_offset_mins = 0;
	local = (int64_t)t;
	if (local < DATE_MIN_SECS + 86400)
		local = DATE_MIN_SECS + 86400;
	if (local > DATE_MAX_SECS - 86400)
		local = DATE_MAX_SECS - 86400;
	local += (int64_t)tz_offset_mins * 60;
	days = local / 86400;
	secs = local % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	off = tz_offset_mins < 0 ? -tz_offset_mins : tz_offset_mins;
	civil_from_days(days, &y, &m, &d);
	n = snprintf(buf, IMAP_DATETIME_MAX,
		     "%2d-%s-%04lld %02d:%02d:%02d %c%02d%02d", d,
		     months[m - 1], (long long)y, (int)(secs / 3600),
		     (int)(secs / 60 % 60), (int)(secs % 60),
		     tz_offset_mins < 0 ? '-' : '+', off / 60 % 100, off % 60);
	if (n < 0)
		n = 0;
	return (size_t)n < IMAP_DATETIME_MAX ? (size_t)n :
		IMAP_DATETIME_MAX - 1;
}

long imap_local_offset_secs(time_t t)
{
	struct tm tm;

	return localtime_r(&t, &tm) != NULL ? tm.tm_gmtoff : 0;
}
