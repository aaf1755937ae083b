/*
 * Unit tests of serve/ticks.c over engine/cron: which ticks are due (on-time, `missed`,
 * `catchup`, the cap of 100) and how many they leave out, deterministic jitter, and the
 * DST sweep: for Europe/Berlin, America/New_York, Australia/Lord_Howe (a 30-minute shift)
 * and Europe/London, around every transition from 2000 to 2037, schedules at 01:30 and
 * 02:30 fire exactly once per local day (a time in the gap at the first instant after it,
 * a repeated one at its first occurrence), and hourly and every-15-minute schedules fire
 * exactly once in every local slot that exists (never 0, never 2).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "test.h"

typedef struct sched_fixture {
    sl_schedule_t def;
    char *cron[1];
    sl_serve_schedule_t s;
} sched_fixture_t;

static void open_sched(sched_fixture_t *f, const char *expr, const char *tz, sl_missed_t missed,
                       int64_t catchup_s)
{
    memset(f, 0, sizeof(*f));
    f->cron[0] = (char *)expr;
    f->def = (sl_schedule_t){.present = true,
                             .cron = f->cron,
                             .cron_count = 1,
                             .timezone = (char *)tz,
                             .missed = missed,
                             .catchup_ms = catchup_s * 1000};
    char err[256] = "";
    int rc = sl__serve_schedule_open(&f->def, &f->s, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "  schedule %s %s: %s\n", expr, tz, err);
    CHECK_INT(rc, 0);
}

static int64_t at(const char *iso)
{
    int64_t t = 0;
    CHECK_INT(sl__time_parse(iso, "UTC", &t), 0);
    return t;
}

/* ---- due ticks ----------------------------------------------------------------------- */

static void test_due_on_time_only_without_history(void)
{
    sched_fixture_t f;
    int64_t due[SL_SERVE_MISSED_MAX];
    open_sched(&f, "*/10 * * * *", "UTC", SL_MISSED_ALL, 3600);
    CHECK_INT(sl__serve_due(&f.s, 0, at("2030-01-07T10:20:59Z"), due), 1);
    CHECK_INT(due[0], at("2030-01-07T10:20:00Z"));
    CHECK_INT(sl__serve_due(&f.s, 0, at("2030-01-07T10:21:00Z"), due), 0); /* a minute old */
    sl__serve_schedule_close(&f.s);
}

static void test_due_missed_modes(void)
{
    sched_fixture_t f;
    int64_t due[SL_SERVE_MISSED_MAX], last = at("2030-01-07T10:00:00Z");
    int64_t now = at("2030-01-07T10:35:10Z");
    open_sched(&f, "*/10 * * * *", "UTC", SL_MISSED_ALL, 3600);
    CHECK_INT(sl__serve_due(&f.s, last, now, due), 3);
    CHECK_INT(due[0], at("2030-01-07T10:10:00Z"));
    CHECK_INT(due[2], at("2030-01-07T10:30:00Z"));
    sl__serve_schedule_close(&f.s);
    open_sched(&f, "*/10 * * * *", "UTC", SL_MISSED_LAST, 3600);
    CHECK_INT(sl__serve_due(&f.s, last, now, due), 1);
    CHECK_INT(due[0], at("2030-01-07T10:30:00Z"));
    sl__serve_schedule_close(&f.s);
    open_sched(&f, "*/10 * * * *", "UTC", SL_MISSED_NONE, 3600);
    CHECK_INT(sl__serve_due(&f.s, last, now, due), 0); /* 10:30 is 5 minutes old */
    CHECK_INT(sl__serve_due(&f.s, last, at("2030-01-07T10:30:30Z"), due), 1);
    CHECK_INT(due[0], at("2030-01-07T10:30:00Z"));
    sl__serve_schedule_close(&f.s);
}

static void test_due_catchup_and_cap(void)
{
    sched_fixture_t f;
    int64_t due[SL_SERVE_MISSED_MAX], last = at("2030-01-07T00:00:00Z");
    open_sched(&f, "0 * * * *", "UTC", SL_MISSED_ALL, 3 * 3600);
    CHECK_INT(sl__serve_due(&f.s, last, at("2030-01-07T10:00:30Z"), due),
              3); /* 07:00 is past 3 h */
    CHECK_INT(due[0], at("2030-01-07T08:00:00Z"));
    sl__serve_schedule_close(&f.s);
    open_sched(&f, "* * * * *", "UTC", SL_MISSED_ALL, 30 * 86400);
    CHECK_INT(sl__serve_due(&f.s, last, at("2030-01-08T00:00:00Z"), due), SL_SERVE_MISSED_MAX);
    CHECK_INT(due[SL_SERVE_MISSED_MAX - 1], at("2030-01-08T00:00:00Z")); /* the newest 100 */
    CHECK_INT(due[0], at("2030-01-07T22:21:00Z"));
    sl__serve_schedule_close(&f.s);
}

/* What sl__serve_due left out, for sluice_ticks_skipped_total{reason=catchup|missed}. */
static void test_dropped_ticks(void)
{
    sched_fixture_t f;
    int64_t due[SL_SERVE_MISSED_MAX], last = at("2030-01-07T00:00:00Z");
    int64_t now = at("2030-01-07T10:00:30Z");
    uint64_t catchup = 9, missed = 9;
    open_sched(&f, "0 * * * *", "UTC", SL_MISSED_ALL, 3 * 3600);
    size_t n = sl__serve_due(&f.s, last, now, due);
    sl__serve_dropped(&f.s, last, now, n, &catchup, &missed);
    CHECK_INT(catchup, 7); /* 01:00 … 07:00 are past 3 h; 08, 09, 10 run */
    CHECK_INT(missed, 0);
    sl__serve_schedule_close(&f.s);
    open_sched(&f, "0 * * * *", "UTC", SL_MISSED_LAST, 3 * 3600);
    n = sl__serve_due(&f.s, last, now, due);
    sl__serve_dropped(&f.s, last, now, n, &catchup, &missed);
    CHECK_INT(catchup, 7);
    CHECK_INT(missed, 2); /* 08 and 09: only the newest runs */
    sl__serve_dropped(&f.s, 0, now, 1, &catchup, &missed);
    CHECK(catchup == 0 && missed == 0); /* no history: nothing was owed */
    sl__serve_dropped(&f.s, at("2030-01-07T10:00:00Z"), now, 0, &catchup, &missed);
    CHECK(catchup == 0 && missed == 0); /* the last tick is the newest */
    sl__serve_schedule_close(&f.s);
    open_sched(&f, "* * * * *", "UTC", SL_MISSED_ALL, 30 * 86400);
    now = at("2030-01-08T00:00:00Z");
    n = sl__serve_due(&f.s, last, now, due);
    sl__serve_dropped(&f.s, last, now, n, &catchup, &missed);
    CHECK_INT(catchup, 0);
    CHECK_INT(missed, 1440 - SL_SERVE_MISSED_MAX); /* past the cap of 100 */
    sl__serve_schedule_close(&f.s);
}

static void test_jitter_deterministic(void)
{
    int64_t a = sl__serve_jitter_ms("flags", 1893146400, 30000);
    CHECK_INT(sl__serve_jitter_ms("flags", 1893146400, 30000), a);
    CHECK(a >= 0 && a < 30000);
    CHECK_INT(sl__serve_jitter_ms("flags", 1893146400, 0), 0);
    int differ = 0;
    for (int64_t t = 0; t < 50; t++)
        differ += sl__serve_jitter_ms("flags", 1893146400 + 60 * t, 30000) != a;
    CHECK(differ > 40); /* spread over ticks, not one delay for all */
}

/* ---- the DST sweep ------------------------------------------------------------------- */

#define SWEEP_FROM 946684800 /* 2000-01-01 */
#define SWEEP_TO 2145916800  /* 2038-01-01 */
#define DAY 86400

static int64_t local_of(const sl_tz_t *tz, int64_t t)
{
    return t + sl__tz_offset(tz, t);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The transitions of the zone in the sweep's years, into out (at most max). */
static size_t transitions(const sl_tz_t *tz, int64_t *out, size_t max)
{
    size_t n = 0;
    for (int64_t t = SWEEP_FROM; t < SWEEP_TO && n < max; t += 6 * 3600) {
        if (sl__tz_offset(tz, t) == sl__tz_offset(tz, t + 6 * 3600))
            continue;
        int64_t lo = t, hi = t + 6 * 3600; /* offset(lo) != offset(hi): find the instant */
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (sl__tz_offset(tz, mid) == sl__tz_offset(tz, lo))
                lo = mid;
            else
                hi = mid;
        }
        out[n++] = hi;
    }
    return n;
}

/* A fixed-time schedule around one transition: one fire per local day, each the first
 * instant at or after its local time. */
static int sweep_fixed(const sl_serve_schedule_t *s, int64_t wall, int64_t from, int64_t to)
{
    const sl_tz_t *tz = s->tz;
    int64_t t = from, prev_day = INT64_MIN;
    int fires = 0, bad = 0;
    while (sl__serve_next(s, t, &t) == 0 && t < to) {
        int64_t day = floor_div(local_of(tz, t), DAY), sod = local_of(tz, t) - day * DAY;
        bool once = prev_day == INT64_MIN || day == prev_day + 1;
        bool first = sod >= wall && local_of(tz, t - 1) - day * DAY < wall &&
                     local_of(tz, t - 1800) - day * DAY < wall &&
                     local_of(tz, t - 3600) - day * DAY < wall;
        if (!once || !first) {
            char when[64];
            sl__time_format_tz(t, tz, when, sizeof when);
            fprintf(stderr, "  %s: fires at %s (%s)\n", s->def->cron[0], when,
                    !once ? "not once a day" : "not the first instant at its time");
            bad++;
        }
        prev_day = day;
        fires++;
    }
    return bad || fires < 3 ? 1 : 0;
}

/* An interval schedule: every local slot of `slot` seconds that exists in the inner window
 * has exactly one fire. */
static int sweep_interval(const sl_serve_schedule_t *s, int64_t slot, int64_t from, int64_t to)
{
    enum { SLOTS = 8 * 96 };
    unsigned char exists[SLOTS] = {0}, count[SLOTS] = {0};
    int64_t base = floor_div(local_of(s->tz, from), slot) - 8;
    for (int64_t t = from + DAY; t < to - DAY; t += 900) {
        int64_t i = floor_div(local_of(s->tz, t), slot) - base;
        if (i >= 0 && i < SLOTS)
            exists[i] = 1;
    }
    for (int64_t t = from; sl__serve_next(s, t, &t) == 0 && t < to;) {
        int64_t i = floor_div(local_of(s->tz, t), slot) - base;
        if (i >= 0 && i < SLOTS && count[i] < 255)
            count[i]++;
    }
    int bad = 0;
    for (int i = 0; i < SLOTS; i++)
        if (exists[i] && count[i] != 1) {
            fprintf(stderr, "  %s: %d fires in the local slot starting %lld (local seconds)\n",
                    s->def->cron[0], count[i], (long long)((base + i) * slot));
            bad++;
        }
    return bad;
}

static void sweep_zone(const char *zone)
{
    if (sl__tz_check(zone) != 0) {
        fprintf(stderr, "  (no tzdata for %s: skipped)\n", zone);
        return;
    }
    sched_fixture_t fixed1, fixed2, hourly, quarter;
    open_sched(&fixed1, "30 1 * * *", zone, SL_MISSED_LAST, 3600);
    open_sched(&fixed2, "30 2 * * *", zone, SL_MISSED_LAST, 3600);
    open_sched(&hourly, "0 * * * *", zone, SL_MISSED_LAST, 3600);
    open_sched(&quarter, "*/15 * * * *", zone, SL_MISSED_LAST, 3600);
    int64_t list[200];
    size_t n = transitions(fixed1.s.tz, list, 200);
    CHECK(n >= 70); /* two a year for 38 years, give or take a rule change */
    int bad = 0;
    for (size_t i = 0; i < n && bad < 5; i++) {
        int64_t from = list[i] - 2 * DAY, to = list[i] + 2 * DAY;
        bad += sweep_fixed(&fixed1.s, 5400, from, to);
        bad += sweep_fixed(&fixed2.s, 9000, from, to);
        bad += sweep_interval(&hourly.s, 3600, from, to);
        bad += sweep_interval(&quarter.s, 900, from, to);
    }
    if (bad)
        fprintf(stderr, "  %s: %d problems (the first shown)\n", zone, bad);
    CHECK_INT(bad, 0);
    sl__serve_schedule_close(&fixed1.s);
    sl__serve_schedule_close(&fixed2.s);
    sl__serve_schedule_close(&hourly.s);
    sl__serve_schedule_close(&quarter.s);
}

static void test_dst_sweep_berlin(void)
{
    sweep_zone("Europe/Berlin");
}

static void test_dst_sweep_new_york(void)
{
    sweep_zone("America/New_York");
}

static void test_dst_sweep_lord_howe(void)
{
    sweep_zone("Australia/Lord_Howe");
}

static void test_dst_sweep_london(void)
{
    sweep_zone("Europe/London");
}

TEST_MAIN(60, T(test_due_on_time_only_without_history), T(test_due_missed_modes),
          T(test_due_catchup_and_cap), T(test_dropped_ticks), T(test_jitter_deterministic),
          T(test_dst_sweep_berlin), T(test_dst_sweep_new_york), T(test_dst_sweep_lord_howe), T(test_dst_sweep_london))
