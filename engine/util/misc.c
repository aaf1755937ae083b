/* Durations, clock, edit distance, UTF-8 check. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

int sl__duration_parse(const char *text, int64_t *out_ms)
{
    if (text == NULL || *text == '\0')
        return SL_EINVAL;
    const char *p = text;
    if (!isdigit((unsigned char)*p) && *p != '.')
        return SL_EINVAL;
    errno = 0;
    char *end;
    double amount = strtod(p, &end);
    if (end == p || errno != 0 || !isfinite(amount) || amount < 0)
        return SL_EINVAL;
    double unit_ms;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit_ms = 1000;
    else if (strcmp(end, "ms") == 0)
        unit_ms = 1;
    else if (strcmp(end, "m") == 0)
        unit_ms = 60e3;
    else if (strcmp(end, "h") == 0)
        unit_ms = 3600e3;
    else if (strcmp(end, "d") == 0)
        unit_ms = 86400e3;
    else
        return SL_EINVAL;
    double ms = amount * unit_ms;
    if (ms > 100.0 * 365 * 86400e3)
        return SL_EINVAL;
    *out_ms = (int64_t)llround(ms);
    return 0;
}

uint64_t sl__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t sl__edit_distance(const char *a, const char *b, size_t max)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return max + 1;
    if ((la > lb ? la - lb : lb - la) > max)
        return max + 1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            bool same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
            size_t cost = same ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > max ? max + 1 : row[lb];
}

size_t sl__utf8_next(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k <= n; k++) {
        if (k >= len || (s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, or a surrogate */
    return n + 1;
}

size_t sl__utf8_check(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = sl__utf8_next(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}
