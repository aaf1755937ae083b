/* Cron expressions: parsing the five fields and finding the next fire time. */
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cron/cron.h"
#include "util/util.h"

enum { FIELD_MINUTE, FIELD_HOUR, FIELD_DOM, FIELD_MONTH, FIELD_DOW, FIELD_COUNT };

struct sl_cron {
    uint64_t bits[FIELD_COUNT]; /* bit v set when value v matches */
    bool dom_star;              /* the day-of-month field starts with '*' */
    bool dow_star;              /* the day-of-week field starts with '*' */
};

typedef struct field_spec {
    const char *name;
    unsigned min, max;
    const char *const *names; /* value names, indexed from `min`; NULL if none */
    size_t name_count;
} field_spec_t;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

/* Day of week accepts 7 for Sunday, folded to 0 once parsed. */
static const field_spec_t fields[FIELD_COUNT] = {
    {"minute", 0, 59, NULL, 0},
    {"hour", 0, 23, NULL, 0},
    {"day-of-month", 1, 31, NULL, 0},
    {"month", 1, 12, month_names, 12},
    {"day-of-week", 0, 7, day_names, 7},
};

static const struct {
    const char *name;
    const char *expansion;
} shorthands[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* Where a parse error goes: the caller's buffer (may be NULL). */
typedef struct parse_err {
    char *buf;
    size_t size;
} parse_err_t;

static int fail(parse_err_t *err, const char *field, const char *fmt, ...) SL_PRINTF(3, 4);

static int fail(parse_err_t *err, const char *field, const char *fmt, ...)
{
    if (err->buf == NULL || err->size == 0)
        return SL_EINVAL;
    char detail[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (field)
        snprintf(err->buf, err->size, "%s field: %s", field, detail);
    else
        snprintf(err->buf, err->size, "%s", detail);
    return SL_EINVAL;
}

/* Shows at most 20 bytes of [s, end) in messages. */
static int shown(const char *s, const char *end)
{
    return (int)(end - s > 20 ? 20 : end - s);
}

static int parse_number(const field_spec_t *spec, const char **p, const char *end,
                        unsigned *out, parse_err_t *err)
{
    const char *s = *p;
    unsigned long v = 0;
    while (s < end && isdigit((unsigned char)*s)) {
        if (v < 1000000)
            v = v * 10 + (unsigned long)(*s - '0');
        s++;
    }
    if (v < spec->min || v > spec->max)
        return fail(err, spec->name, "%.*s is out of range %u-%u", shown(*p, s), *p,
                    spec->min, spec->max);
    *out = (unsigned)v;
    *p = s;
    return 0;
}

/* Reads one value, a number or (month, day of week) a name, at *p. */
static int parse_value(const field_spec_t *spec, const char **p, const char *end,
                       unsigned *out, parse_err_t *err)
{
    const char *s = *p;
    if (s < end && isdigit((unsigned char)*s))
        return parse_number(spec, p, end, out, err);
    while (s < end && isalpha((unsigned char)*s))
        s++;
    size_t len = (size_t)(s - *p);
    if (len == 0) {
        if (*p == end)
            return fail(err, spec->name, "a value is missing");
        return fail(err, spec->name, "unexpected '%c'", **p);
    }
    for (size_t i = 0; spec->names && i < spec->name_count; i++) {
        if (len == 3 && strncasecmp(*p, spec->names[i], 3) == 0) {
            *out = spec->min + (unsigned)i;
            *p = s;
            return 0;
        }
    }
    if (spec->names)
        return fail(err, spec->name, "unknown name '%.*s'", shown(*p, s), *p);
    return fail(err, spec->name, "'%.*s' is not a number", shown(*p, s), *p);
}

/* Reads "/N" at *p when present; *step stays 1 otherwise. */
static int parse_step(const field_spec_t *spec, const char **p, const char *end,
                      unsigned *step, parse_err_t *err)
{
    const char *s = *p;
    if (s == end || *s != '/')
        return 0;
    s++;
    if (s == end || !isdigit((unsigned char)*s))
        return fail(err, spec->name, "'/' must be followed by a step number");
    const char *digits = s;
    unsigned long v = 0;
    while (s < end && isdigit((unsigned char)*s)) {
        if (v < 1000000)
            v = v * 10 + (unsigned long)(*s - '0');
        s++;
    }
    unsigned span = spec->max - spec->min + 1;
    if (v == 0 || v > span)
        return fail(err, spec->name, "step %.*s is out of range 1-%u", shown(digits, s),
                    digits, span);
    *step = (unsigned)v;
    *p = s;
    return 0;
}

/* Parses one list item: `*`, `A`, `A-B`, each optionally `/STEP`, into *bits. */
static int parse_item(const field_spec_t *spec, const char *s, const char *end, uint64_t *bits,
                      parse_err_t *err)
{
    unsigned lo = spec->min, hi = spec->max, step = 1;
    const char *item = s;
    bool star = s < end && *s == '*';
    int rc;
    if (star) {
        s++;
    } else {
        if ((rc = parse_value(spec, &s, end, &lo, err)) < 0)
            return rc;
        hi = lo;
        if (s < end && *s == '-') {
            s++;
            if ((rc = parse_value(spec, &s, end, &hi, err)) < 0)
                return rc;
            if (spec == &fields[FIELD_DOW] && hi == 0 && lo > 0)
                hi = 7; /* "SAT-SUN" ends on the Sunday numbered 7 */
            if (hi < lo)
                return fail(err, spec->name, "range %.*s runs backwards", shown(item, s), item);
        }
    }
    const char *step_at = s;
    if ((rc = parse_step(spec, &s, end, &step, err)) < 0)
        return rc;
    if (s != step_at && !star && hi == lo)
        hi = spec->max; /* "5/10" means 5-max/10 */
    if (s != end)
        return fail(err, spec->name, "unexpected '%c'", *s);
    for (unsigned v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return 0;
}

static int parse_field(const field_spec_t *spec, const char *s, const char *end, uint64_t *bits,
                       parse_err_t *err)
{
    *bits = 0;
    for (;;) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *item_end = comma ? comma : end;
        if (item_end == s)
            return fail(err, spec->name, "empty list item");
        int rc = parse_item(spec, s, item_end, bits, err);
        if (rc < 0)
            return rc;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits `expr` into fields; *count may exceed FIELD_COUNT (only the first
 * FIELD_COUNT + 1 are recorded). */
static void split_fields(const char *expr, const char *start[FIELD_COUNT + 1],
                         const char *stop[FIELD_COUNT + 1], size_t *count)
{
    const char *s = expr;
    *count = 0;
    for (;;) {
        while (is_blank(*s))
            s++;
        if (*s == '\0')
            return;
        const char *b = s;
        while (*s && !is_blank(*s))
            s++;
        if (*count <= FIELD_COUNT) {
            start[*count] = b;
            stop[*count] = s;
        }
        (*count)++;
    }
}

static int parse_fields(const char *expr, size_t base, sl_cron_t *cron, parse_err_t *err,
                        size_t *err_offset)
{
    const char *start[FIELD_COUNT + 1], *stop[FIELD_COUNT + 1];
    size_t count;
    split_fields(expr, start, stop, &count);
    if (count != FIELD_COUNT) {
        *err_offset = base + (count > FIELD_COUNT ? (size_t)(start[FIELD_COUNT] - expr) : 0);
        if (count == 0)
            return fail(err, NULL, "empty cron expression");
        return fail(err, NULL, "expected 5 fields, found %zu", count);
    }
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        int rc = parse_field(&fields[i], start[i], stop[i], &cron->bits[i], err);
        if (rc < 0) {
            *err_offset = base + (size_t)(start[i] - expr);
            return rc;
        }
    }
    if (cron->bits[FIELD_DOW] & ((uint64_t)1 << 7))
        cron->bits[FIELD_DOW] = (cron->bits[FIELD_DOW] & 0x7f) | 1;
    cron->dom_star = *start[FIELD_DOM] == '*';
    cron->dow_star = *start[FIELD_DOW] == '*';
    return 0;
}

/* Expands a shorthand; NULL and an error when `expr` starts with an unknown one. */
static int expand_shorthand(const char *expr, size_t *base, const char **out, parse_err_t *err)
{
    const char *s = expr;
    while (is_blank(*s))
        s++;
    *base = (size_t)(s - expr);
    *out = expr;
    if (*s != '@')
        return 0;
    size_t len = 0;
    while (s[len] && !is_blank(s[len]))
        len++;
    const char *rest = s + len;
    while (is_blank(*rest))
        rest++;
    for (size_t i = 0; i < SL_COUNTOF(shorthands); i++) {
        if (strlen(shorthands[i].name) == len && strncasecmp(s, shorthands[i].name, len) == 0) {
            if (*rest != '\0') {
                *base = (size_t)(rest - expr);
                return fail(err, NULL, "unexpected text after %s", shorthands[i].name);
            }
            *out = shorthands[i].expansion;
            return 0;
        }
    }
    return fail(err, NULL, "unknown shorthand '%.*s' (expected @yearly, @annually, @monthly, "
                "@weekly, @daily, @midnight or @hourly)", shown(s, s + len), s);
}

int sl__cron_parse(const char *expr, sl_cron_t **out, char *err_buf, size_t err_size,
                   size_t *err_offset)
{
    parse_err_t err = {err_buf, err_size};
    size_t offset_unused;
    if (err_offset == NULL)
        err_offset = &offset_unused;
    *err_offset = 0;
    *out = NULL;
    if (expr == NULL)
        return fail(&err, NULL, "empty cron expression");
    const char *text;
    size_t base;
    int rc = expand_shorthand(expr, &base, &text, &err);
    if (rc < 0) {
        *err_offset = base;
        return rc;
    }
    sl_cron_t parsed = {{0}, false, false};
    if (text != expr) {
        parse_fields(text, 0, &parsed, &err, err_offset); /* built-in text: cannot fail */
    } else if ((rc = parse_fields(expr, 0, &parsed, &err, err_offset)) < 0) {
        return rc;
    }
    sl_cron_t *cron = sl__malloc(sizeof *cron);
    if (cron == NULL)
        return SL_ENOMEM;
    *cron = parsed;
    *out = cron;
    return 0;
}

void sl__cron_free(sl_cron_t *cron)
{
    sl__free(cron);
}

/* ---- next fire time ----------------------------------------------------- */

/* Local wall-clock times are seconds since 1970-01-01T00:00 read as if UTC. */
#define SEARCH_YEARS 5

static bool has_bit(uint64_t bits, unsigned v)
{
    return (bits >> v) & 1;
}

/* The smallest set bit >= from, or -1. */
static int next_bit(uint64_t bits, unsigned from, unsigned max)
{
    for (unsigned v = from; v <= max; v++)
        if (has_bit(bits, v))
            return (int)v;
    return -1;
}

static bool day_matches(const sl_cron_t *cron, int64_t days, unsigned mday)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    unsigned wday = (unsigned)(w < 0 ? w + 7 : w);
    bool dom = has_bit(cron->bits[FIELD_DOM], mday);
    bool dow = has_bit(cron->bits[FIELD_DOW], wday);
    if (cron->dom_star || cron->dow_star)
        return dom && dow;
    return dom || dow;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* The first matching wall time >= `from` (a whole minute), before `limit`. */
static int next_wall(const sl_cron_t *cron, int64_t from, int64_t limit, int64_t *out)
{
    int64_t wall = from;
    while (wall < limit) {
        int64_t days = floor_div(wall, 86400), y;
        unsigned mon, mday, secs = (unsigned)(wall - days * 86400);
        sl__time_civil_from_days(days, &y, &mon, &mday);
        if (!has_bit(cron->bits[FIELD_MONTH], mon)) {
            int64_t ny = mon == 12 ? y + 1 : y;
            wall = sl__time_days_from_civil(ny, mon == 12 ? 1 : mon + 1, 1) * 86400;
            continue;
        }
        if (!day_matches(cron, days, mday)) {
            wall = (days + 1) * 86400;
            continue;
        }
        int hour = next_bit(cron->bits[FIELD_HOUR], secs / 3600, 23);
        if (hour < 0) {
            wall = (days + 1) * 86400;
            continue;
        }
        unsigned from_min = (unsigned)hour == secs / 3600 ? secs / 60 % 60 : 0;
        int minute = next_bit(cron->bits[FIELD_MINUTE], from_min, 59);
        if (minute < 0) {
            wall = days * 86400 + (int64_t)(hour + 1) * 3600;
            continue;
        }
        *out = days * 86400 + (int64_t)hour * 3600 + minute * 60;
        return 0;
    }
    return SL_ENOTFOUND;
}

int sl__cron_next_tz(const sl_cron_t *cron, const sl_tz_t *tz, int64_t after, int64_t *out)
{
    int64_t local = after + sl__tz_offset(tz, after);
    int64_t wall = floor_div(local, 60) * 60 + 60;
    int64_t limit = wall + (int64_t)SEARCH_YEARS * 366 * 86400;
    /* Wall-to-instant is non-decreasing, so the first wall tick whose instant
     * lies after `after` is the answer; ticks mapping at or before `after`
     * (a repeated hour's second pass, a gap already fired) are skipped. */
    for (;;) {
        int64_t tick;
        int rc = next_wall(cron, wall, limit, &tick);
        if (rc < 0)
            return rc;
        int64_t t = sl__tz_from_wall(tz, tick);
        if (t > after) {
            *out = t;
            return 0;
        }
        wall = tick + 60;
    }
}

int sl__cron_next(const sl_cron_t *cron, const char *tz_name, int64_t after, int64_t *out)
{
    sl_tz_t *tz;
    int rc = sl__tz_load(tz_name ? tz_name : "UTC", &tz);
    if (rc < 0)
        return rc;
    rc = sl__cron_next_tz(cron, tz, after, out);
    sl__tz_free(tz);
    return rc;
}
