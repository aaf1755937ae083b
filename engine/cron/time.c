/* Civil calendar arithmetic and ISO-8601 formatting and parsing. */
#include <stdio.h>
#include <string.h>

#include "cron/cron.h"
#include "util/util.h"

/* Howard Hinnant's days_from_civil / civil_from_days (public domain). */
int64_t sl__time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void sl__time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

unsigned sl__time_days_in_month(int64_t y, unsigned m)
{
    static const unsigned days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return m >= 1 && m <= 12 ? days[m - 1] : 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int sl__time_format_tz(int64_t t, const sl_tz_t *tz, char *buf, size_t size)
{
    int32_t off = sl__tz_offset(tz, t);
    int64_t wall = t + off;
    int64_t days = floor_div(wall, 86400), secs = wall - days * 86400;
    int64_t y;
    unsigned m, d;
    sl__time_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return SL_EINVAL;
    int32_t a = off < 0 ? -off : off;
    char off_text[16];
    if (a % 60)
        snprintf(off_text, sizeof off_text, "%c%02d:%02d:%02d", off < 0 ? '-' : '+', a / 3600,
                 a / 60 % 60, a % 60);
    else
        snprintf(off_text, sizeof off_text, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600,
                 a / 60 % 60);
    int n = snprintf(buf, size, "%04d-%02u-%02uT%02d:%02d:%02d%s", (int)y, m, d,
                     (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60), off_text);
    return n < 0 || (size_t)n >= size ? SL_ELIMIT : 0;
}

int sl__time_format(int64_t t, const char *tz_name, char *buf, size_t size)
{
    sl_tz_t *tz;
    int rc = sl__tz_load(tz_name, &tz);
    if (rc < 0)
        return rc;
    rc = sl__time_format_tz(t, tz, buf, size);
    sl__tz_free(tz);
    return rc;
}

/* Reads exactly `digits` digits. */
static const char *digits_at(const char *s, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (s[i] < '0' || s[i] > '9')
            return NULL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return s + digits;
}

/* "Z", "+HH", "+HH:MM", "+HHMM"; *present false when the text ends here. */
static const char *parse_offset(const char *s, bool *present, int32_t *off)
{
    *present = true;
    if (*s == '\0') {
        *present = false;
        return s;
    }
    if (*s == 'Z' || *s == 'z') {
        *off = 0;
        return s + 1;
    }
    if (*s != '+' && *s != '-')
        return NULL;
    int sign = *s == '-' ? -1 : 1, hh, mm = 0;
    if (!(s = digits_at(s + 1, 2, &hh)))
        return NULL;
    if (*s == ':')
        s++;
    if (*s != '\0' && !(s = digits_at(s, 2, &mm)))
        return NULL;
    if (hh > 23 || mm > 59)
        return NULL;
    *off = sign * (hh * 3600 + mm * 60);
    return s;
}

/* Reads "THH:MM[:SS[.fff]]" when present. */
static const char *parse_clock(const char *s, int *h, int *mi, int *sec)
{
    *h = *mi = *sec = 0;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return s;
    if (!(s = digits_at(s + 1, 2, h)) || *s++ != ':' || !(s = digits_at(s, 2, mi)))
        return NULL;
    if (*s == ':') {
        if (!(s = digits_at(s + 1, 2, sec)))
            return NULL;
        if (*s == '.' && s[1] >= '0' && s[1] <= '9')
            for (s++; *s >= '0' && *s <= '9'; s++) {
            }
    }
    return *h > 23 || *mi > 59 || *sec > 59 ? NULL : s;
}

int sl__time_parse_tz(const char *text, const sl_tz_t *tz, int64_t *out)
{
    int y, mo, d, h, mi, sec;
    const char *s = text;
    if (s == NULL || !(s = digits_at(s, 4, &y)) || *s++ != '-' || !(s = digits_at(s, 2, &mo)) ||
        *s++ != '-' || !(s = digits_at(s, 2, &d)))
        return SL_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > sl__time_days_in_month(y, (unsigned)mo))
        return SL_EINVAL;
    if (!(s = parse_clock(s, &h, &mi, &sec)))
        return SL_EINVAL;
    bool has_offset;
    int32_t off = 0;
    if (!(s = parse_offset(s, &has_offset, &off)) || *s != '\0')
        return SL_EINVAL;
    int64_t wall = sl__time_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                   h * 3600 + mi * 60 + sec;
    *out = has_offset ? wall - off : sl__tz_from_wall(tz, wall);
    return 0;
}

int sl__time_parse(const char *text, const char *tz_name, int64_t *out)
{
    sl_tz_t *tz;
    int rc = sl__tz_load(tz_name ? tz_name : "UTC", &tz);
    if (rc < 0)
        return rc;
    rc = sl__time_parse_tz(text, tz, out);
    sl__tz_free(tz);
    return rc;
}
