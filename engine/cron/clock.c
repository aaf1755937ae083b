/*
 * The wall clock of schedules: the one clock `serve`, `next` and `backfill` read.
 *
 * It is the system's real-time clock, unless SLUICE_NOW (an ISO-8601 time with a UTC
 * offset, for tests) sets it: then it starts at that time when the process first reads it
 * and advances in real time from there (measured on the monotonic clock, so a jump of the
 * system clock does not move it). Thread: any after sl__clock_setup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron/cron.h"
#include "util/util.h"

static bool clock_set;         /* SLUICE_NOW gave the time (1970-01-01T00:00:00Z too) */
static int64_t clock_base_ms;  /* SLUICE_NOW in ms */
static uint64_t clock_base_ns; /* the monotonic clock when it was read */

/* True when `text` ends in an explicit offset ("Z", "+02:00", "-0500"). */
static bool has_offset(const char *text)
{
    size_t n = strlen(text);
    if (n > 0 && (text[n - 1] == 'Z' || text[n - 1] == 'z'))
        return true;
    const char *t = strchr(text, 'T');
    if (t == NULL)
        t = strchr(text, 't');
    return t != NULL && (strchr(t, '+') != NULL || strchr(t, '-') != NULL);
}

int sl__clock_setup(const char *value, char *err, size_t err_size)
{
    clock_set = false;
    clock_base_ms = 0;
    if (value == NULL || value[0] == '\0')
        return 0;
    int64_t t;
    if (!has_offset(value) || sl__time_parse(value, "UTC", &t) < 0) {
        snprintf(err, err_size,
                 "SLUICE_NOW: invalid time '%.64s' (expected ISO-8601 with a UTC offset, "
                 "like 2026-03-29T01:59:30+01:00)",
                 value);
        return SL_EINVAL;
    }
    clock_base_ms = t * 1000;
    clock_base_ns = sl__clock_now_ns();
    clock_set = true;
    return 0;
}

int sl__clock_setup_env(char *err, size_t err_size)
{
    return sl__clock_setup(getenv("SLUICE_NOW"), err, err_size);
}

int64_t sl__clock_wall_ms(void)
{
    if (clock_set)
        return clock_base_ms + (int64_t)((sl__clock_now_ns() - clock_base_ns) / 1000000u);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sl__clock_simulated(void)
{
    return clock_set;
}
