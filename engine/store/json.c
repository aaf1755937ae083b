/*
 * The store's rows as JSON values, with the field names docs/state.md lists: what
 * `sluice runs --json` and `sluice show --json` print and what the dashboard's API
 * answers (docs/dashboard-api.md), made in one place so that the two never differ.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

void sl__store_format_time(int64_t ms, char *buf, size_t size)
{
    if (ms <= 0) {
        snprintf(buf, size, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int set_str(sl_value_t *map, const char *key, const char *s)
{
    return sl_value_set(map, key, s && *s ? sl_value_cstring(s) : sl_value_nil());
}

static int set_time(sl_value_t *map, const char *key, int64_t ms)
{
    char buf[32];
    sl__store_format_time(ms, buf, sizeof(buf));
    return sl_value_set(map, key, ms > 0 ? sl_value_cstring(buf) : sl_value_nil());
}

static sl_value_t *done(sl_value_t *m, int rc)
{
    if (rc == 0)
        return m;
    sl_value_free(m);
    return NULL;
}

static int set_run_tasks(sl_value_t *m, const sl_store_run_row_t *r)
{
    sl_value_t *tasks = sl_value_map();
    int rc = tasks ? 0 : SL_ENOMEM;
    if (rc == 0)
        rc = sl_value_set(tasks, "ok", sl_value_int((int64_t)r->tasks_ok));
    if (rc == 0)
        rc = sl_value_set(tasks, "failed", sl_value_int((int64_t)r->tasks_failed));
    if (rc == 0)
        rc = sl_value_set(tasks, "cached", sl_value_int((int64_t)r->tasks_cached));
    if (rc < 0) {
        sl_value_free(tasks);
        return rc;
    }
    return sl_value_set(m, "tasks", tasks);
}

sl_value_t *sl__store_run_json(const sl_store_run_row_t *r)
{
    sl_value_t *m = sl_value_map();
    int rc = m ? 0 : SL_ENOMEM;
    const char *names[] = {"id", "workflow", "path", "trigger", "status", "resumed_from",
                           "error"};
    const char *values[] = {r->id, r->workflow, r->path, r->trigger, r->status,
                            r->resumed_from, r->error};
    for (size_t i = 0; rc == 0 && i < SL_COUNTOF(names); i++)
        rc = set_str(m, names[i], values[i]);
    if (rc == 0)
        rc = set_time(m, "tick", r->tick_ms);
    if (rc == 0)
        rc = set_time(m, "started", r->started_ms);
    if (rc == 0)
        rc = set_time(m, "finished", r->finished_ms);
    if (rc == 0)
        rc = sl_value_set(m, "duration_ms", r->finished_ms ? sl_value_int(r->finished_ms -
                                                                           r->started_ms)
                                                           : sl_value_nil());
    if (rc == 0)
        rc = set_run_tasks(m, r);
    return done(m, rc);
}

sl_value_t *sl__store_step_json(const sl_store_step_row_t *s)
{
    sl_value_t *m = sl_value_map();
    int rc = m ? 0 : SL_ENOMEM;
    const char *names[] = {"id", "kind", "status"};
    const char *values[] = {s->id, s->kind, s->status};
    for (size_t i = 0; rc == 0 && i < 3; i++)
        rc = set_str(m, names[i], values[i]);
    const char *counts[] = {"total", "ok", "failed", "skipped", "cached", "retries"};
    uint64_t nums[] = {s->total, s->ok, s->failed, s->skipped, s->cached, s->retries};
    for (size_t i = 0; rc == 0 && i < 6; i++)
        rc = sl_value_set(m, counts[i], sl_value_int((int64_t)nums[i]));
    if (rc == 0)
        rc = set_time(m, "started", s->started_ms);
    if (rc == 0)
        rc = set_time(m, "finished", s->ended_ms);
    if (rc == 0)
        rc = sl_value_set(m, "duration_ms", s->ended_ms && s->started_ms
                                                ? sl_value_int(s->ended_ms - s->started_ms)
                                                : sl_value_nil());
    return done(m, rc);
}

sl_value_t *sl__store_task_json(const sl_store_task_row_t *t)
{
    bool failed = strcmp(t->status, "failed") == 0;
    sl_value_t *m = sl_value_map();
    int rc = m ? set_str(m, "step", t->step_id) : SL_ENOMEM;
    if (rc == 0)
        rc = sl_value_set(m, "item", sl_value_int(t->item + 1));
    if (rc == 0)
        rc = set_str(m, failed ? "error" : "reason", failed ? t->error : t->cache_note);
    if (rc == 0)
        rc = sl_value_set(m, "attempts", sl_value_int(t->attempts));
    return done(m, rc);
}

sl_value_t *sl__store_log_json(const sl_store_log_row_t *l)
{
    char when[32];
    sl__store_format_time(l->time_ms, when, sizeof(when));
    sl_value_t *m = sl_value_map();
    int rc = m ? set_str(m, "time", when) : SL_ENOMEM;
    if (rc == 0)
        rc = set_str(m, "level", l->level);
    if (rc == 0)
        rc = set_str(m, "task", l->where);
    if (rc == 0)
        rc = set_str(m, "message", l->message);
    return done(m, rc);
}
