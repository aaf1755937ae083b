/* Durations as workflows write them: 250ms, 30s, 5m, 2h, 1d, or bare seconds. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
