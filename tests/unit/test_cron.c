/*
 * cron: expression parsing, time zones, next fire times, ISO-8601 times.
 * Expected instants were computed independently with GNU date and zdump, e.g.
 *   TZ=Europe/Paris date -d "2026-03-29 03:00" +"%s %FT%T%:z"
 *   zdump -v -c 2026,2027 Europe/Paris
 * Europe/Paris 2026: 02:00 CET -> 03:00 CEST on 03-29 (gap), 03:00 CEST ->
 * 02:00 CET on 10-25 (02:00-03:00 repeated).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cron/cron.h"
#include "test.h"
#include "util/util.h"

/* ---- helpers ------------------------------------------------------------- */

static int parse_error(const char *expr, char *err, size_t size, size_t *offset)
{
    sl_cron_t *cron = NULL;
    err[0] = '\0';
    *offset = 999;
    int rc = sl__cron_parse(expr, &cron, err, size, offset);
    CHECK(cron == NULL || rc == 0);
    sl__cron_free(cron);
    return rc;
}

#define CHECK_PARSE_ERROR(expr, message, offset)                     \
    do {                                                             \
        char err_[256];                                              \
        size_t off_;                                                 \
        CHECK_INT(parse_error((expr), err_, sizeof err_, &off_), SL_EINVAL); \
        CHECK_STR(err_, (message));                                  \
        CHECK_INT(off_, (offset));                                   \
    } while (0)

/*
 * Checks the fire times after `from` (ISO-8601) of `expr` in `tz`, given as
 * one string of formatted times separated by spaces.
 */
static void check_next(const char *expr, const char *tz, const char *from, const char *expected,
                       int line)
{
    sl_cron_t *cron = NULL;
    char err[256] = "";
    size_t offset = 0;
    int rc = sl__cron_parse(expr, &cron, err, sizeof err, &offset);
    if (rc != 0) {
        fprintf(stderr, "  line %d: parse of \"%s\" failed: %s\n", line, expr, err);
        sl_test_failures_++;
        return;
    }
    int64_t t = 0;
    CHECK_INT(sl__time_parse(from, tz, &t), 0);
    char got[1024] = "";
    size_t used = 0;
    size_t count = 1;
    for (const char *s = expected; *s; s++)
        count += *s == ' ';
    for (size_t i = 0; i < count; i++) {
        char buf[64] = "";
        rc = sl__cron_next(cron, tz, t, &t);
        if (rc == 0)
            rc = sl__time_format(t, tz, buf, sizeof buf);
        if (rc != 0)
            snprintf(buf, sizeof buf, "error(%d)", rc);
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%s", i ? " " : "", buf);
        if (rc != 0)
            break;
    }
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "  line %d: \"%s\" in %s after %s:\n    got      %s\n    expected %s\n",
                line, expr, tz, from, got, expected);
        sl_test_failures_++;
    }
    sl__cron_free(cron);
}

#define CHECK_NEXT(expr, tz, from, expected) check_next((expr), (tz), (from), (expected), __LINE__)

static int next_once(const char *expr, const char *tz, int64_t after, int64_t *out)
{
    sl_cron_t *cron = NULL;
    int rc = sl__cron_parse(expr, &cron, NULL, 0, NULL);
    if (rc == 0)
        rc = sl__cron_next(cron, tz, after, out);
    sl__cron_free(cron);
    return rc;
}

static bool have_zone(const char *name)
{
    return sl__tz_check(name) == 0;
}

/* ---- parsing --------------------------------------------------------------- */

static void test_parse_syntax(void)
{
    static const char *const valid[] = {
        "* * * * *", "0 0 1 1 0", "59 23 31 12 7", "*/15 * * * *", "1-30/5 * * * *",
        "5/10 * * * *", "1,2,3-5,*/20 * * * *", "0 9-17 * * MON-FRI", "0 0 * JAN,jul sun",
        "0 0 * Feb-Dec/2 Sat", "\t 0  0\t* * *  ", "@yearly", "@annually", "@monthly",
        "@weekly", "@daily", "@midnight", "@hourly", "  @DAILY  ",
    };
    for (size_t i = 0; i < SL_COUNTOF(valid); i++) {
        sl_cron_t *cron = NULL;
        char err[128] = "";
        int rc = sl__cron_parse(valid[i], &cron, err, sizeof err, NULL);
        if (rc != 0)
            fprintf(stderr, "  \"%s\": %s\n", valid[i], err);
        CHECK_INT(rc, 0);
        CHECK(cron != NULL);
        sl__cron_free(cron);
    }
    sl__cron_free(NULL);
}

static void test_parse_errors(void)
{
    CHECK_PARSE_ERROR("61 * * * *", "minute field: 61 is out of range 0-59", 0);
    CHECK_PARSE_ERROR("* 24 * * *", "hour field: 24 is out of range 0-23", 2);
    CHECK_PARSE_ERROR("* * 0 * *", "day-of-month field: 0 is out of range 1-31", 4);
    CHECK_PARSE_ERROR("* * 32 * *", "day-of-month field: 32 is out of range 1-31", 4);
    CHECK_PARSE_ERROR("* * * 13 *", "month field: 13 is out of range 1-12", 6);
    CHECK_PARSE_ERROR("* * * 0 *", "month field: 0 is out of range 1-12", 6);
    CHECK_PARSE_ERROR("* * * * 8", "day-of-week field: 8 is out of range 0-7", 8);
    CHECK_PARSE_ERROR("99999999999999 * * * *",
                      "minute field: 99999999999999 is out of range 0-59", 0);
    CHECK_PARSE_ERROR("* * * *", "expected 5 fields, found 4", 0);
    CHECK_PARSE_ERROR("* * * * * *", "expected 5 fields, found 6", 10);
    CHECK_PARSE_ERROR("", "empty cron expression", 0);
    CHECK_PARSE_ERROR("   ", "empty cron expression", 0);
    CHECK_PARSE_ERROR("* * * FOO *", "month field: unknown name 'FOO'", 6);
    CHECK_PARSE_ERROR("* * * * MONDAY", "day-of-week field: unknown name 'MONDAY'", 8);
    CHECK_PARSE_ERROR("* * MON * *", "day-of-month field: 'MON' is not a number", 4);
    CHECK_PARSE_ERROR("a * * * *", "minute field: 'a' is not a number", 0);
    CHECK_PARSE_ERROR("1,,2 * * * *", "minute field: empty list item", 0);
    CHECK_PARSE_ERROR("1, * * * *", "minute field: empty list item", 0);
    CHECK_PARSE_ERROR("30-10 * * * *", "minute field: range 30-10 runs backwards", 0);
    CHECK_PARSE_ERROR("0 0 * * FRI-MON", "day-of-week field: range FRI-MON runs backwards", 8);
    CHECK_PARSE_ERROR("0 0 * DEC-JAN *", "month field: range DEC-JAN runs backwards", 6);
    CHECK_PARSE_ERROR("*/0 * * * *", "minute field: step 0 is out of range 1-60", 0);
    CHECK_PARSE_ERROR("0 */25 * * *", "hour field: step 25 is out of range 1-24", 2);
    CHECK_PARSE_ERROR("*/ * * * *", "minute field: '/' must be followed by a step number", 0);
    CHECK_PARSE_ERROR("1- * * * *", "minute field: a value is missing", 0);
    CHECK_PARSE_ERROR("1-* * * * *", "minute field: unexpected '*'", 0);
    CHECK_PARSE_ERROR("5# * * * *", "minute field: unexpected '#'", 0);
    CHECK_PARSE_ERROR("** * * * *", "minute field: unexpected '*'", 0);
    CHECK_PARSE_ERROR("0 0 ? * *", "day-of-month field: unexpected '?'", 4);
    CHECK_PARSE_ERROR("  0 0 1 1 1 x", "expected 5 fields, found 6", 12);
    CHECK_PARSE_ERROR("0  0  1  1  -1", "day-of-week field: unexpected '-'", 12);
    CHECK_PARSE_ERROR("@reboot",
                      "unknown shorthand '@reboot' (expected @yearly, @annually, @monthly, "
                      "@weekly, @daily, @midnight or @hourly)", 0);
    CHECK_PARSE_ERROR("@daily 5", "unexpected text after @daily", 7);

    /* No error buffer and no offset pointer: still a clean failure. */
    sl_cron_t *cron = (sl_cron_t *)1;
    CHECK_INT(sl__cron_parse("61 * * * *", &cron, NULL, 0, NULL), SL_EINVAL);
    CHECK(cron == NULL);
    char tiny[8];
    CHECK_INT(sl__cron_parse("61 * * * *", &cron, tiny, sizeof tiny, NULL), SL_EINVAL);
    CHECK_STR(tiny, "minute ");
}

static void test_parse_alloc_failure(void)
{
    sl_cron_t *cron = NULL;
    sl__alloc_fail_at(1);
    CHECK_INT(sl__cron_parse("* * * * *", &cron, NULL, 0, NULL), SL_ENOMEM);
    CHECK(cron == NULL);
    sl__alloc_fail_at(0);
}

/* ---- next fire times ----------------------------------------------------- */

static void test_next_utc(void)
{
    CHECK_NEXT("*/15 * * * *", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-01T00:15:00+00:00 2026-01-01T00:30:00+00:00 "
               "2026-01-01T00:45:00+00:00 2026-01-01T01:00:00+00:00");
    /* Strictly after: a `from` on a tick skips it; seconds round up. */
    CHECK_NEXT("*/15 * * * *", "UTC", "2026-01-01T00:14:59Z", "2026-01-01T00:15:00+00:00");
    CHECK_NEXT("*/15 * * * *", "UTC", "2026-01-01T00:15:00Z", "2026-01-01T00:30:00+00:00");
    CHECK_NEXT("1-30/5 * * * *", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-01T00:01:00+00:00 2026-01-01T00:06:00+00:00 2026-01-01T00:11:00+00:00 "
               "2026-01-01T00:16:00+00:00 2026-01-01T00:21:00+00:00 2026-01-01T00:26:00+00:00 "
               "2026-01-01T01:01:00+00:00");
    /* "5/10" is 5-59/10. */
    CHECK_NEXT("5/10 * * * *", "UTC", "2026-01-01T00:50:00Z",
               "2026-01-01T00:55:00+00:00 2026-01-01T01:05:00+00:00 2026-01-01T01:15:00+00:00");
    CHECK_NEXT("1,2,58 * * * *", "UTC", "2026-01-01T00:02:00Z",
               "2026-01-01T00:58:00+00:00 2026-01-01T01:01:00+00:00");
    /* 2026-01-01 is a Thursday. 7 is Sunday. */
    CHECK_NEXT("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-04T00:00:00+00:00 2026-01-11T00:00:00+00:00");
    CHECK_NEXT("0 9 * * MON-FRI", "UTC", "2026-01-02T10:00:00Z",
               "2026-01-05T09:00:00+00:00 2026-01-06T09:00:00+00:00 2026-01-07T09:00:00+00:00 "
               "2026-01-08T09:00:00+00:00 2026-01-09T09:00:00+00:00 2026-01-12T09:00:00+00:00");
    /* A range ending on Sunday by name reaches 7: FRI-SUN is 5-7. */
    CHECK_NEXT("0 0 * * FRI-SUN", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-02T00:00:00+00:00 2026-01-03T00:00:00+00:00 2026-01-04T00:00:00+00:00 "
               "2026-01-09T00:00:00+00:00");
    CHECK_NEXT("0 0 * * 5-7", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-02T00:00:00+00:00 2026-01-03T00:00:00+00:00 2026-01-04T00:00:00+00:00 "
               "2026-01-09T00:00:00+00:00");
    CHECK_NEXT("0 0 1 JAN,jul *", "UTC", "2026-01-01T00:00:00Z",
               "2026-07-01T00:00:00+00:00 2027-01-01T00:00:00+00:00");
    CHECK_NEXT("59 23 31 12 *", "UTC", "2026-06-01T00:00:00Z",
               "2026-12-31T23:59:00+00:00 2027-12-31T23:59:00+00:00");
    CHECK_NEXT("0 0 * Feb-Dec/2 *", "UTC", "2026-02-27T00:00:00Z",
               "2026-02-28T00:00:00+00:00 2026-04-01T00:00:00+00:00");
}

static void test_next_vixie_or(void)
{
    /* Both day fields restricted: the 1st OR a Monday (2026-02-01 is a Sunday). */
    CHECK_NEXT("0 0 1 * MON", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-05T00:00:00+00:00 2026-01-12T00:00:00+00:00 2026-01-19T00:00:00+00:00 "
               "2026-01-26T00:00:00+00:00 2026-02-01T00:00:00+00:00 2026-02-02T00:00:00+00:00");
    /* Feb 30 never exists, but Mondays of February do. */
    CHECK_NEXT("0 0 30 2 MON", "UTC", "2026-01-01T00:00:00Z",
               "2026-02-02T00:00:00+00:00 2026-02-09T00:00:00+00:00");
    /* A field starting with '*' is unrestricted: "*\/2" AND Monday, odd days only. */
    CHECK_NEXT("0 0 */2 * 1", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-05T00:00:00+00:00 2026-01-19T00:00:00+00:00 2026-02-09T00:00:00+00:00 "
               "2026-02-23T00:00:00+00:00 2026-03-09T00:00:00+00:00");
    /* 13th or Friday: 2026-02-13 is both, fired once. */
    CHECK_NEXT("0 0 13 * 5", "UTC", "2026-02-01T00:00:00Z",
               "2026-02-06T00:00:00+00:00 2026-02-13T00:00:00+00:00 2026-02-20T00:00:00+00:00");
}

static void test_next_shorthands(void)
{
    CHECK_NEXT("@yearly", "UTC", "2026-05-05T00:00:00Z",
               "2027-01-01T00:00:00+00:00 2028-01-01T00:00:00+00:00");
    CHECK_NEXT("@annually", "UTC", "2026-05-05T00:00:00Z", "2027-01-01T00:00:00+00:00");
    CHECK_NEXT("@monthly", "UTC", "2026-01-31T12:00:00Z",
               "2026-02-01T00:00:00+00:00 2026-03-01T00:00:00+00:00");
    CHECK_NEXT("@weekly", "UTC", "2026-01-01T00:00:00Z",
               "2026-01-04T00:00:00+00:00 2026-01-11T00:00:00+00:00");
    CHECK_NEXT("@daily", "UTC", "2026-12-31T00:00:00Z",
               "2027-01-01T00:00:00+00:00 2027-01-02T00:00:00+00:00");
    CHECK_NEXT("@midnight", "UTC", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00+00:00");
    CHECK_NEXT("@hourly", "UTC", "2026-01-01T23:30:00Z",
               "2026-01-02T00:00:00+00:00 2026-01-02T01:00:00+00:00");
}

static void test_next_leap_and_impossible(void)
{
    /* date -d "2028-02-29 12:00 UTC" +%s = 1835438400 */
    CHECK_NEXT("0 12 29 2 *", "UTC", "2026-01-01T00:00:00Z",
               "2028-02-29T12:00:00+00:00 2032-02-29T12:00:00+00:00");
    int64_t t = 0;
    CHECK_INT(next_once("0 12 29 2 *", "UTC", 1767225600, &t), 0);
    CHECK_INT(t, 1835438400);
    /* 2100 is not a leap year: after 2097-03-01 the next Feb 29 is in 2104, past the bound. */
    CHECK_INT(next_once("0 12 29 2 *", "UTC", 4012934400 /* 2097-03-01 */, &t), SL_ENOTFOUND);
    CHECK_INT(next_once("0 0 30 2 *", "UTC", 1767225600, &t), SL_ENOTFOUND);
    CHECK_INT(next_once("0 0 31 4,6,9,11 *", "Europe/Paris", 1767225600, &t), SL_ENOTFOUND);
    CHECK_INT(next_once("0 0 * * *", "No/Such_Zone", 1767225600, &t), SL_ENOENT);
}

/* Both Paris transitions of 2026 (zdump: 03-29 01:00 UT, 10-25 01:00 UT). */
static void test_next_paris(void)
{
    CHECK_NEXT("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00+01:00",
               "2026-03-28T02:30:00+01:00 2026-03-29T03:00:00+02:00 2026-03-30T02:30:00+02:00");
    /* Every tick inside the gap collapses into one firing at 03:00. */
    CHECK_NEXT("*/20 2 * * *", "Europe/Paris", "2026-03-29T00:00:00+01:00",
               "2026-03-29T03:00:00+02:00 2026-03-30T02:00:00+02:00");
    CHECK_NEXT("0,30 1-3 * * *", "Europe/Paris", "2026-03-29T00:00:00+01:00",
               "2026-03-29T01:00:00+01:00 2026-03-29T01:30:00+01:00 2026-03-29T03:00:00+02:00 "
               "2026-03-29T03:30:00+02:00 2026-03-30T01:00:00+02:00");
    CHECK_NEXT("@hourly", "Europe/Paris", "2026-03-29T00:30:00+01:00",
               "2026-03-29T01:00:00+01:00 2026-03-29T03:00:00+02:00 2026-03-29T04:00:00+02:00");
    /* Repeated hour 02:00-03:00: each tick fires once, in the first pass. */
    CHECK_NEXT("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00+02:00",
               "2026-10-25T02:30:00+02:00 2026-10-26T02:30:00+01:00");
    CHECK_NEXT("*/20 1-3 * * *", "Europe/Paris", "2026-10-25T00:30:00+02:00",
               "2026-10-25T01:00:00+02:00 2026-10-25T01:20:00+02:00 2026-10-25T01:40:00+02:00 "
               "2026-10-25T02:00:00+02:00 2026-10-25T02:20:00+02:00 2026-10-25T02:40:00+02:00 "
               "2026-10-25T03:00:00+01:00 2026-10-25T03:20:00+01:00");
    CHECK_NEXT("@hourly", "Europe/Paris", "2026-10-25T00:30:00+02:00",
               "2026-10-25T01:00:00+02:00 2026-10-25T02:00:00+02:00 2026-10-25T03:00:00+01:00 "
               "2026-10-25T04:00:00+01:00");
    /* From inside the second pass: its ticks already fired in the first. */
    CHECK_NEXT("*/20 * * * *", "Europe/Paris", "2026-10-25T02:10:00+01:00",
               "2026-10-25T03:00:00+01:00");
    /* Past the file's last transition the footer rule applies (date: 4118119200). */
    CHECK_NEXT("0 12 1 7 *", "Europe/Paris", "2099-12-01T00:00:00Z", "2100-07-01T12:00:00+02:00");
    CHECK_NEXT("30 2 28 3 *", "Europe/Paris", "2100-01-01T00:00:00Z",
               "2100-03-28T03:00:00+02:00");
}

/* America/New_York 2026: gap 03-08 02:00-03:00, repeat 11-01 01:00-02:00. */
static void test_next_new_york(void)
{
    if (!have_zone("America/New_York"))
        return;
    CHECK_NEXT("30 2 * * *", "America/New_York", "2026-03-07T00:00:00-05:00",
               "2026-03-07T02:30:00-05:00 2026-03-08T03:00:00-04:00 2026-03-09T02:30:00-04:00");
    CHECK_NEXT("30 1 * * *", "America/New_York", "2026-10-31T12:00:00-04:00",
               "2026-11-01T01:30:00-04:00 2026-11-02T01:30:00-05:00");
}

/* Australia/Lord_Howe shifts by 30 minutes: 2026-04-05 02:00+11 -> 01:30+10:30,
 * 2026-10-04 02:00+10:30 -> 02:30+11 (zdump). */
static void test_next_lord_howe(void)
{
    if (!have_zone("Australia/Lord_Howe"))
        return;
    CHECK_NEXT("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00:00+11:00",
               "2026-04-05T01:45:00+11:00 2026-04-06T01:45:00+10:30");
    CHECK_NEXT("*/30 * * * *", "Australia/Lord_Howe", "2026-04-05T01:00:00+11:00",
               "2026-04-05T01:30:00+11:00 2026-04-05T02:00:00+10:30 2026-04-05T02:30:00+10:30");
    CHECK_NEXT("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00+10:30",
               "2026-10-04T02:30:00+11:00 2026-10-05T02:15:00+11:00");
}

static void test_next_efficient(void)
{
    sl_tz_t *tz = NULL;
    sl_cron_t *never = NULL, *every = NULL;
    CHECK_INT(sl__tz_load("Europe/Paris", &tz), 0);
    CHECK_INT(sl__cron_parse("0 0 30 2 *", &never, NULL, 0, NULL), 0);
    CHECK_INT(sl__cron_parse("* * * * *", &every, NULL, 0, NULL), 0);
    if (!tz || !never || !every)
        goto out;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int64_t t = 1767225600;
    for (int i = 0; i < 2000; i++)
        CHECK_INT(sl__cron_next_tz(never, tz, t + i * 3600, &t), SL_ENOTFOUND);
    for (int i = 0; i < 100000; i++) {
        int64_t prev = t;
        CHECK_INT(sl__cron_next_tz(every, tz, prev, &t), 0);
        if (t - prev != 60 && t - prev != 3660) {
            CHECK_INT(t - prev, 60);
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    fprintf(stderr, "  102000 searches in %.2fs\n", secs); /* speed is bench/'s to judge */
out:
    sl__cron_free(never);
    sl__cron_free(every);
    sl__tz_free(tz);
}

/*
 * A brute-force reference: walks instants minute by minute with the C
 * library's localtime_r (TZ set in this forked test process only). A tick
 * fires at instant t when a matching wall time lies in (latest wall time
 * already reached, wall time at t]: that is one firing per gap, none for a
 * repeated hour's second pass.
 */
typedef bool (*wall_pred_t)(int hour, int minute);

static int64_t wall_of(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    return t + tm.tm_gmtoff;
}

static bool wall_matches(wall_pred_t pred, int64_t wall)
{
    int64_t secs = ((wall % 86400) + 86400) % 86400;
    return pred((int)(secs / 3600), (int)(secs / 60 % 60));
}

static int64_t brute_next(wall_pred_t pred, int64_t after)
{
    int64_t start = after - after % 60;
    int64_t reached = wall_of(after);
    for (int64_t s = start - 4 * 3600; s <= after; s += 60)
        reached = wall_of(s) > reached ? wall_of(s) : reached;
    for (int64_t t = start + 60; t < after + 3 * 86400; t += 60) {
        int64_t wall = wall_of(t);
        for (int64_t w = (reached / 60 + 1) * 60; w <= wall; w += 60)
            if (wall_matches(pred, w))
                return t;
        reached = wall > reached ? wall : reached;
    }
    return -1;
}

static bool pred_every_20_of_1_to_3(int h, int m)
{
    return m % 20 == 0 && h >= 1 && h <= 3;
}
static bool pred_half_past_2(int h, int m)
{
    return h == 2 && m == 30;
}
static bool pred_hourly(int h, int m)
{
    return m == 0;
}
static bool pred_every_7(int h, int m)
{
    return m % 7 == 0;
}
static bool pred_45_of_1_2(int h, int m)
{
    return m == 45 && (h == 1 || h == 2);
}

static void cross_check(const char *zone, int64_t from, int64_t to)
{
    static const struct {
        const char *expr;
        wall_pred_t pred;
    } exprs[] = {
        {"*/20 1-3 * * *", pred_every_20_of_1_to_3}, {"30 2 * * *", pred_half_past_2},
        {"@hourly", pred_hourly},                    {"*/7 * * * *", pred_every_7},
        {"45 1,2 * * *", pred_45_of_1_2},
    };
    if (!have_zone(zone))
        return;
    setenv("TZ", zone, 1);
    tzset();
    sl_tz_t *tz = NULL;
    CHECK_INT(sl__tz_load(zone, &tz), 0);
    for (size_t i = 0; tz && i < SL_COUNTOF(exprs); i++) {
        sl_cron_t *cron = NULL;
        CHECK_INT(sl__cron_parse(exprs[i].expr, &cron, NULL, 0, NULL), 0);
        int mismatches = 0;
        for (int64_t after = from; cron && after < to && mismatches < 3; after += 7 * 60 + 13) {
            int64_t got = 0, want = brute_next(exprs[i].pred, after);
            CHECK_INT(sl__cron_next_tz(cron, tz, after, &got), 0);
            if (got != want) {
                fprintf(stderr, "  %s \"%s\" after %lld: got %lld, brute force %lld\n", zone,
                        exprs[i].expr, (long long)after, (long long)got, (long long)want);
                mismatches++;
                sl_test_failures_++;
            }
        }
        sl__cron_free(cron);
    }
    sl__tz_free(tz);
}

static void test_next_brute_force(void)
{
    cross_check("Europe/Paris", 1774659600 - 86400, 1774746000 + 86400);     /* 03-29 */
    cross_check("Europe/Paris", 1792888200 - 86400, 1792888200 + 86400);     /* 10-25 */
    cross_check("America/New_York", 1772953200 - 86400, 1772953200 + 86400); /* 03-08 */
    cross_check("America/New_York", 1793511000 - 86400, 1793511000 + 86400); /* 11-01 */
    cross_check("Australia/Lord_Howe", 1775313900 - 86400, 1775313900 + 86400);
    cross_check("Australia/Lord_Howe", 1791041400 - 86400, 1791041400 + 86400);
}

/* ---- zones ----------------------------------------------------------------- */

static void test_tz_check(void)
{
    CHECK_INT(sl__tz_check("UTC"), 0);
    CHECK_INT(sl__tz_check("Etc/UTC"), 0);
    CHECK_INT(sl__tz_check("Europe/Paris"), 0);
    CHECK_INT(sl__tz_check(NULL), SL_ENOENT);
    CHECK_INT(sl__tz_check(""), SL_ENOENT);
    CHECK_INT(sl__tz_check("/usr/share/zoneinfo/Europe/Paris"), SL_ENOENT);
    CHECK_INT(sl__tz_check("../zoneinfo/Europe/Paris"), SL_ENOENT);
    CHECK_INT(sl__tz_check("Europe/../Europe/Paris"), SL_ENOENT);
    CHECK_INT(sl__tz_check("Europe//Paris"), SL_ENOENT);
    CHECK_INT(sl__tz_check("Europe/Paris/"), SL_ENOENT);
    CHECK_INT(sl__tz_check("Europe"), SL_ENOENT);   /* a folder */
    CHECK_INT(sl__tz_check("zone.tab"), SL_ENOENT); /* not TZif */
    CHECK_INT(sl__tz_check("Mars/Olympus_Mons"), SL_ENOENT);
    CHECK_INT(sl__tz_check("Europe/Paris\n"), SL_ENOENT);
}

/* With an empty TZDIR only UTC is known, and it still works. */
static void test_tz_without_tzdata(void)
{
    char dir[] = "/tmp/sluice-tz-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fake[64];
    snprintf(fake, sizeof fake, "%s/Fake", dir);
    FILE *f = fopen(fake, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("TZif but not really, just text long enough to pass a size check...\n", f);
        fclose(f);
    }
    setenv("TZDIR", dir, 1);
    CHECK_INT(sl__tz_check("UTC"), 0);
    CHECK_INT(sl__tz_check("Etc/UTC"), 0);
    CHECK_INT(sl__tz_check("Europe/Paris"), SL_ENOENT);
    CHECK_INT(sl__tz_check("Fake"), SL_ENOENT);
    CHECK_NEXT("@daily", "UTC", "2026-03-29T00:30:00Z", "2026-03-30T00:00:00+00:00");
    CHECK_NEXT("@daily", "Etc/UTC", "2026-03-29T00:30:00", "2026-03-30T00:00:00+00:00");
    unlink(fake);
    rmdir(dir);
    unsetenv("TZDIR");
    /* The process environment is left alone by the engine. */
    CHECK(getenv("TZ") == NULL);
}

/* ---- ISO-8601 ---------------------------------------------------------------- */

static void check_format(int64_t t, const char *tz, const char *expected)
{
    char buf[64] = "";
    CHECK_INT(sl__time_format(t, tz, buf, sizeof buf), 0);
    CHECK_STR(buf, expected);
}

static void test_time_format(void)
{
    check_format(0, "UTC", "1970-01-01T00:00:00+00:00");
    check_format(1774746000, "Europe/Paris", "2026-03-29T03:00:00+02:00");
    check_format(1774746000 - 1, "Europe/Paris", "2026-03-29T01:59:59+01:00");
    check_format(1792888200, "Europe/Paris", "2026-10-25T02:30:00+02:00");
    check_format(1792888200 + 3600, "Europe/Paris", "2026-10-25T02:30:00+01:00");
    check_format(-1, "UTC", "1969-12-31T23:59:59+00:00");
    /* Before 1891 Paris kept local mean time, +00:09:21 (GNU date %:::z). */
    check_format(-5364662400, "Europe/Paris", "1800-01-01T00:09:21+00:09:21");
    if (have_zone("America/New_York"))
        check_format(1772953200, "America/New_York", "2026-03-08T03:00:00-04:00");
    if (have_zone("Australia/Lord_Howe")) {
        check_format(1775313900, "Australia/Lord_Howe", "2026-04-05T01:45:00+11:00");
        check_format(1775402100, "Australia/Lord_Howe", "2026-04-06T01:45:00+10:30");
    }
    char small[10];
    CHECK_INT(sl__time_format(0, "UTC", small, sizeof small), SL_ELIMIT);
    CHECK_INT(sl__time_format(0, "Nope/Nope", small, sizeof small), SL_ENOENT);
}

static void check_parse(const char *text, const char *tz, int64_t expected)
{
    int64_t t = 0;
    int rc = sl__time_parse(text, tz, &t);
    if (rc != 0 || t != expected) {
        fprintf(stderr, "  \"%s\" in %s: rc %d, %lld, expected %lld\n", text, tz, rc,
                (long long)t, (long long)expected);
        sl_test_failures_++;
    }
}

static void test_time_parse(void)
{
    check_parse("2026-03-29T03:00:00+02:00", "UTC", 1774746000);
    check_parse("2026-03-29T01:00:00Z", "Europe/Paris", 1774746000);
    check_parse("2026-03-29T03:00+0200", "UTC", 1774746000);
    check_parse("2026-03-29T03:00:00+02", "UTC", 1774746000);
    check_parse("2026-03-29 03:00:00+02:00", "UTC", 1774746000);
    check_parse("2026-03-29T03:00:00.250+02:00", "UTC", 1774746000);
    check_parse("2026-03-29T00:00:00-01:00", "UTC", 1774746000);
    /* Local times: inside the gap -> its end; in the repeat -> first pass. */
    check_parse("2026-03-29T02:30", "Europe/Paris", 1774746000);
    check_parse("2026-03-29T03:00:00", "Europe/Paris", 1774746000);
    check_parse("2026-10-25T02:30", "Europe/Paris", 1792888200);
    check_parse("2026-01-01", "UTC", 1767225600);
    check_parse("2026-01-01", "Europe/Paris", 1767225600 - 3600);
    check_parse("2028-02-29T12:00:00Z", "UTC", 1835438400);

    static const char *const bad[] = {
        "", "now", "2026", "26-01-01", "2026-1-01", "2026-01-1", "2026-02-29", "2026-13-01",
        "2026-00-10", "2026-04-31", "2026-01-01T", "2026-01-01T10", "2026-01-01T24:00",
        "2026-01-01T10:60", "2026-01-01T10:00:60", "2026-01-01T10:00:00+2",
        "2026-01-01T10:00:00+24:00", "2026-01-01T10:00:00+02:60", "2026-01-01T10:00:00Zx",
        "2026-01-01T10:00:00 ", "2026-01-01X10:00", "2026-01-01T10:00:00.",
    };
    for (size_t i = 0; i < SL_COUNTOF(bad); i++) {
        int64_t t = 0;
        int rc = sl__time_parse(bad[i], "UTC", &t);
        if (rc != SL_EINVAL)
            fprintf(stderr, "  \"%s\" parsed (rc %d)\n", bad[i], rc);
        CHECK_INT(rc, SL_EINVAL);
    }
    int64_t t = 0;
    CHECK_INT(sl__time_parse("2026-01-01", "Nope/Nope", &t), SL_ENOENT);
}

static void test_time_round_trip(void)
{
    static const char *const zones[] = {"UTC", "Europe/Paris", "America/New_York",
                                        "Australia/Lord_Howe"};
    for (size_t z = 0; z < SL_COUNTOF(zones); z++) {
        sl_tz_t *tz = NULL;
        if (sl__tz_load(zones[z], &tz) != 0)
            continue;
        int bad = 0;
        for (int64_t t = 1767225600; t < 1767225600 + 400 * 86400 && bad < 3; t += 7919) {
            char buf[64];
            int64_t back = 0;
            CHECK_INT(sl__time_format_tz(t, tz, buf, sizeof buf), 0);
            CHECK_INT(sl__time_parse_tz(buf, tz, &back), 0);
            if (back != t) {
                fprintf(stderr, "  %s: %lld -> %s -> %lld\n", zones[z], (long long)t, buf,
                        (long long)back);
                bad++;
                sl_test_failures_++;
            }
        }
        sl__tz_free(tz);
    }
}

/* ---- robustness: corrupt zone files and random expressions ---------------- */

static uint32_t lcg_next(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

static bool read_whole(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    *len = fread(buf, 1, cap, f);
    fclose(f);
    return *len > 0;
}

/* Truncated and bit-flipped copies of a real TZif file load or fail cleanly. */
static void test_tz_corrupt_files(void)
{
    static unsigned char orig[1 << 17], copy[1 << 17];
    size_t len = 0;
    if (!read_whole("/usr/share/zoneinfo/Europe/Paris", orig, sizeof orig, &len))
        return;
    char dir[] = "/tmp/sluice-tzfuzz-XXXXXX", path[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/Z", dir);
    setenv("TZDIR", dir, 1);
    uint32_t seed = 12345;
    for (int round = 0; round < 400; round++) {
        size_t n = round < 100 ? len * (size_t)round / 100 : len;
        memcpy(copy, orig, n);
        for (int flips = round < 100 ? 0 : 1 + (int)(lcg_next(&seed) % 8); flips > 0; flips--)
            copy[lcg_next(&seed) % n] ^= (unsigned char)(1u << (lcg_next(&seed) % 8));
        FILE *f = fopen(path, "wb");
        if (f == NULL)
            break;
        fwrite(copy, 1, n, f);
        fclose(f);
        sl_tz_t *tz = NULL;
        if (sl__tz_load("Z", &tz) == 0) {
            char buf[64];
            int64_t t = 0;
            for (int64_t at = -4000000000; at < 5000000000; at += 123456789) {
                sl__time_format_tz(at, tz, buf, sizeof buf);
                sl__time_parse_tz("2026-03-29T02:30", tz, &t);
            }
            sl__tz_free(tz);
        }
    }
    unlink(path);
    rmdir(dir);
    unsetenv("TZDIR");
}

/* Random strings over cron's alphabet never crash the parser, and errors
 * always come with a message and an offset inside the text. */
static void test_parse_random(void)
{
    static const char alphabet[] = "0123456789*/-,@ \tJANMONsunxyz?#";
    uint32_t seed = 777;
    for (int round = 0; round < 20000; round++) {
        char expr[40];
        size_t n = lcg_next(&seed) % (sizeof expr - 1);
        for (size_t i = 0; i < n; i++)
            expr[i] = alphabet[lcg_next(&seed) % (sizeof alphabet - 1)];
        expr[n] = '\0';
        sl_cron_t *cron = NULL;
        char err[128] = "";
        size_t offset = 0;
        int rc = sl__cron_parse(expr, &cron, err, sizeof err, &offset);
        if (rc == 0) {
            int64_t t;
            rc = sl__cron_next(cron, "UTC", 1767225600, &t);
            CHECK(rc == 0 || rc == SL_ENOTFOUND);
            sl__cron_free(cron);
        } else {
            CHECK_INT(rc, SL_EINVAL);
            CHECK(err[0] != '\0');
            CHECK(offset <= n);
        }
    }
}

/* Every allocation of loading a zone can fail; each failure is clean. */
static void test_tz_alloc_failure(void)
{
    for (uint64_t n = 1; n < 20; n++) {
        sl_tz_t *tz = (sl_tz_t *)1;
        sl__alloc_fail_at(n);
        int rc = sl__tz_load("Europe/Paris", &tz);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM);
        CHECK((rc == 0) == (tz != NULL));
        sl__tz_free(tz);
        char buf[64];
        sl__alloc_fail_at(n);
        rc = sl__time_format(0, "UTC", buf, sizeof buf);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM);
        sl__alloc_fail_at(n);
        rc = sl__tz_check("Europe/Paris");
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM);
    }
}

TEST_MAIN(60, T(test_parse_syntax), T(test_parse_errors), T(test_parse_alloc_failure),
          T(test_next_utc), T(test_next_vixie_or), T(test_next_shorthands),
          T(test_next_leap_and_impossible), T(test_next_paris), T(test_next_new_york),
          T(test_next_lord_howe), T(test_next_efficient), T(test_next_brute_force),
          T(test_tz_check), T(test_tz_without_tzdata), T(test_time_format), T(test_time_parse),
          T(test_time_round_trip), T(test_tz_corrupt_files), T(test_parse_random),
          T(test_tz_alloc_failure))
