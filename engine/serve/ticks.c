/*
 * Which ticks of a schedule are due (SPEC §5, docs/scheduling.md): from the workflow's
 * newest recorded tick up to now, minus those older than `catchup`, chosen by `missed`;
 * and the deterministic jitter of a tick, so that a restart does not move it.
 */
#include <stdio.h>
#include <string.h>

#include "serve/serve.h"
#include "util/fingerprint.h"

int sl__serve_schedule_open(const sl_schedule_t *def, sl_serve_schedule_t *out, char *err,
                            size_t err_size)
{
    memset(out, 0, sizeof(*out));
    out->def = def;
    const char *zone = def->timezone ? def->timezone : "UTC";
    int rc = sl__tz_load(zone, &out->tz);
    if (rc < 0) {
        snprintf(err, err_size, "unknown timezone '%s'", zone);
        return rc == SL_ENOMEM ? rc : SL_EINVAL;
    }
    out->crons = sl__calloc(def->cron_count + 1, sizeof(*out->crons));
    if (out->crons == NULL) {
        sl__serve_schedule_close(out);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < def->cron_count; i++, out->count++) {
        char msg[256] = "";
        size_t offset = 0;
        rc = sl__cron_parse(def->cron[i], &out->crons[i], msg, sizeof msg, &offset);
        if (rc < 0) {
            snprintf(err, err_size, "schedule.cron: %s", msg);
            sl__serve_schedule_close(out);
            return rc == SL_ENOMEM ? rc : SL_EINVAL;
        }
    }
    return 0;
}

void sl__serve_schedule_close(sl_serve_schedule_t *s)
{
    for (size_t i = 0; s->crons && i < s->count; i++)
        sl__cron_free(s->crons[i]);
    sl__free(s->crons);
    sl__tz_free(s->tz);
    memset(s, 0, sizeof(*s));
}

int sl__serve_next(const sl_serve_schedule_t *s, int64_t after, int64_t *out)
{
    int64_t best = INT64_MAX, t;
    for (size_t i = 0; i < s->count; i++)
        if (sl__cron_next_tz(s->crons[i], s->tz, after, &t) == 0 && t < best)
            best = t;
    if (best == INT64_MAX)
        return SL_ENOTFOUND;
    *out = best;
    return 0;
}

/* Ticks are walked at most this many times per call (catchup: 30d of every minute). */
#define DUE_WALK_MAX 1000000

size_t sl__serve_due(const sl_serve_schedule_t *s, int64_t last, int64_t now, int64_t *out)
{
    int64_t catchup = s->def->catchup_ms / 1000;
    int64_t after = last ? last : now - SL_SERVE_ON_TIME; /* none recorded: on time only */
    if (after < now - catchup - 1)
        after = now - catchup - 1; /* older than catchup: dropped */
    int64_t ring[SL_SERVE_MISSED_MAX];
    size_t seen = 0;
    int64_t t = after;
    for (size_t walked = 0; walked < DUE_WALK_MAX; walked++) {
        if (sl__serve_next(s, t, &t) < 0 || t > now)
            break;
        ring[seen++ % SL_SERVE_MISSED_MAX] = t;
    }
    if (seen == 0)
        return 0;
    int64_t newest = ring[(seen - 1) % SL_SERVE_MISSED_MAX];
    switch (s->def->missed) {
    case SL_MISSED_NONE:
        if (now - newest >= SL_SERVE_ON_TIME)
            return 0;
        out[0] = newest;
        return 1;
    case SL_MISSED_LAST:
        out[0] = newest;
        return 1;
    case SL_MISSED_ALL:
    default:
        break;
    }
    size_t n = seen < SL_SERVE_MISSED_MAX ? seen : SL_SERVE_MISSED_MAX;
    for (size_t i = 0; i < n; i++)
        out[i] = ring[(seen - n + i) % SL_SERVE_MISSED_MAX];
    return n;
}

/* The ticks in (after, now], walked at most DUE_WALK_MAX times. */
static uint64_t ticks_between(const sl_serve_schedule_t *s, int64_t after, int64_t now)
{
    uint64_t n = 0;
    int64_t t = after;
    for (size_t walked = 0; walked < DUE_WALK_MAX; walked++, n++)
        if (sl__serve_next(s, t, &t) < 0 || t > now)
            break;
    return n;
}

void sl__serve_dropped(const sl_serve_schedule_t *s, int64_t last, int64_t now, size_t due,
                       uint64_t *catchup, uint64_t *missed)
{
    *catchup = *missed = 0;
    if (last == 0 || last >= now)
        return; /* no history: only an on-time tick was ever wanted */
    int64_t floor = now - s->def->catchup_ms / 1000 - 1;
    uint64_t within = ticks_between(s, last > floor ? last : floor, now);
    if (last < floor)
        *catchup = ticks_between(s, last, floor);
    *missed = within > due ? within - due : 0;
}

int64_t sl__serve_jitter_ms(const char *workflow, int64_t tick, int64_t jitter_ms)
{
    if (jitter_ms <= 0)
        return 0;
    char key[320];
    int n = snprintf(key, sizeof key, "%s\n%lld", workflow, (long long)tick);
    uint64_t h = 1469598103934665603ull; /* FNV-1a: stable across builds and machines */
    for (int i = 0; i < n && i < (int)sizeof key; i++)
        h = (h ^ (uint8_t)key[i]) * 1099511628211ull;
    return (int64_t)(h % (uint64_t)jitter_ms);
}
