/*
 * A daemon's run of a tick, on the daemon's loop: the tick is claimed and the run's start
 * recorded in the threadpool, with the claims of every other tick waiting, in one commit
 * of the daemon's store (its one writer then records all the runs); then the run's
 * services (the daemon's shared client and pool) and the run are made, it waits out its
 * jitter (and the rest of its tick, when it was claimed ahead) on a timer, and runs. A
 * finished run is reaped between loop turns (closing a run turns the loop, which must not
 * happen inside one of its callbacks). A canceled run is recorded interrupted, so it stays
 * resumable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "serve/daemon.h"

void sl__serve_when(const sl_serve_version_t *v, int64_t t, char *buf, size_t size)
{
    int rc = v && v->sched.tz ? sl__time_format_tz(t, v->sched.tz, buf, size)
                              : sl__time_format(t, "UTC", buf, size);
    if (rc < 0)
        snprintf(buf, size, "%" PRId64, t);
}

void sl__serve_version_unref(sl_serve_version_t *v)
{
    if (v == NULL || --v->refs > 0)
        return;
    sl__serve_schedule_close(&v->sched);
    sl__workflow_free(v->wf);
    sl__free(v);
}

/* ---- skipped ticks ----------------------------------------------------------------- */

typedef struct skip_work {
    uv_work_t work;
    sl_serve_daemon_t *d;
    char *name, *reason;
    int64_t tick_ms;
    char err[512];
} skip_work_t;

static void skip_work(uv_work_t *work)
{
    skip_work_t *s = work->data;
    bool won = false;
    sl_store_tick_t rec = {s->name, s->tick_ms, "cron", "skipped", s->reason, NULL};
    sl__store_tick_claim(s->d->store, &rec, &won, s->err, sizeof s->err);
}

static void skip_after(uv_work_t *work, int status)
{
    skip_work_t *s = work->data;
    if (s->err[0])
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: recording a skipped tick: %s", s->name, s->err);
    s->d->works--;
    sl__serve_maybe_quit(s->d);
    sl__free(s->name);
    sl__free(s->reason);
    sl__free(s);
}

void sl__serve_skip(sl_serve_entry_t *e, int64_t tick, const char *reason)
{
    char when[64];
    sl__serve_when(e->cur, tick, when, sizeof when);
    SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s skipped: %s", e->name, when, reason);
    sl__serve_metrics_skipped(e, reason);
    skip_work_t *s = sl__calloc(1, sizeof(*s));
    if (s == NULL || (s->name = sl__strdup(e->name)) == NULL ||
        (s->reason = sl__strdup(reason)) == NULL) {
        if (s)
            sl__free(s->name);
        sl__free(s);
        return;
    }
    s->d = e->d;
    s->tick_ms = tick * 1000;
    s->work.data = s;
    e->d->works++;
    if (uv_queue_work(&e->d->loop, &s->work, skip_work, skip_after) < 0)
        skip_after(&s->work, 0);
}

/* ---- a run ------------------------------------------------------------------------- */

static void job_done(sl_serve_job_t *job)
{
    if (job->reaped)
        return;
    job->reaped = true;
    job->next_done = job->d->done;
    job->d->done = job;
}

static void on_run_done(sl_run_t *run, void *ud)
{
    job_done(ud);
}

/* When the run of `job` starts: its tick and its jitter, in the daemon's clock (ms). */
static int64_t start_at_ms(const sl_serve_job_t *job)
{
    const sl_workflow_t *wf = job->v->wf;
    return job->tick * 1000 + sl__serve_jitter_ms(wf->name, job->tick, wf->schedule.jitter_ms);
}

static void on_delay(uv_timer_t *timer)
{
    sl_serve_job_t *job = timer->data;
    int64_t early_ms = start_at_ms(job) - sl__clock_wall_ms();
    if (early_ms > 0) { /* the loop's clock runs a little behind the wall's: never early */
        uv_timer_start(&job->delay, on_delay, (uint64_t)early_ms, 0);
        return;
    }
    char when[64];
    sl__serve_when(job->v, job->tick, when, sizeof when);
    job->started = true;
    job->started_ns = sl__clock_now_ns();
    SL_LOG(SL_LOG_INFO, job->run_id, NULL, "%s: run %s started for tick %s", job->v->wf->name,
           job->run_id, when);
    if (sl__run_start(job->run, on_run_done, job) < 0) {
        job->started = false;
        snprintf(job->err, sizeof job->err, "the run could not start");
        job_done(job);
    }
    if (job->started)
        sl__serve_metrics_started(job);
}

/* Makes the run of a claimed tick and waits out its jitter. */
static void start_job(sl_serve_job_t *job)
{
    sl_serve_daemon_t *d = job->d;
    sl_workflow_t *wf = job->v->wf;
    sl_services_opts_t so = {.registry = d->opts->registry, .prestart = true, .shared = d->shared};
    int rc = sl__host_services_new(&d->loop, wf, &so, &job->svc);
    if (rc == 0 && (rc = sl__host_recorder_attach(job->rec, &d->loop)) < 0)
        snprintf(job->err, sizeof job->err, "cannot record the run: %s", sl_strerror(rc));
    if (rc == 0) /* its Slurm jobs are recorded, so a resume takes them over */
        rc = sl__host_services_record(job->svc, job->rec, job->err, sizeof job->err);
    if (rc == 0) {
        sl_run_opts_t ro = {.run_id = job->run_id,
                            .started_unix = sl__store_now_ms() / 1000,
                            .cpu = sl__host_executor(job->svc),
                            .services = job->svc,
                            .observer = sl__host_recorder_observer(job->rec),
                            .memo = sl__host_recorder_memo(job->rec)};
        rc = sl__run_new(&d->loop, wf, &ro, &job->run);
    }
    if (rc < 0) {
        if (job->err[0] == '\0')
            snprintf(job->err, sizeof job->err, "%s", sl_strerror(rc));
        job_done(job);
        return;
    }
    sl__host_recorder_watch(job->rec, job->run);
    int64_t delay_ms = start_at_ms(job) - sl__clock_wall_ms();
    uv_timer_init(&d->loop, &job->delay);
    job->delay.data = job;
    job->delay_open = true;
    if (job->canceled) {
        sl__run_stop(job->run, true);
        job_done(job);
        return;
    }
    uv_timer_start(&job->delay, on_delay, delay_ms > 0 ? (uint64_t)delay_ms : 0, 0);
}

/* ---- claims: the ticks' runs recorded in groups ------------------------------------- */

/* A tick's run recorded with its tick's claim, in the threadpool, inside a group. */
static void claim_job_work(sl_serve_job_t *job)
{
    /* when it will start (after its jitter, or its tick when claimed ahead), in the store's
     * clock (the real one; the daemon's may be SLUICE_NOW's) */
    int64_t wait_ms = start_at_ms(job) - sl__clock_wall_ms();
    sl_recorder_opts_t ro = {.store = job->d->store,
                             .wf = job->v->wf,
                             .run_id = job->run_id,
                             .trigger = "cron",
                             .tick_ms = job->tick * 1000,
                             .started_ms = sl__store_now_ms() + (wait_ms > 0 ? wait_ms : 0),
                             .claim_tick = true,
                             .store_shared = true};
    int rc = sl__host_recorder_new(&ro, &job->rec, job->err, sizeof job->err);
    job->won = rc == 0;
    if (rc < 0)
        job->rec = NULL;
    if (rc == SL_EEXIST)
        job->err[0] = '\0'; /* taken: not an error */
}

/* Every claim waiting, SL_SERVE_CLAIM_GROUP at a time, in one commit: SQLite's commits
 * wait on the disk, and a thousand workflows may share a tick. */
static void group_work(uv_work_t *work)
{
    sl_serve_daemon_t *d = work->data;
    char err[512] = "";
    if (sl__store_group_begin(d->store, err, sizeof err) < 0) {
        for (sl_serve_job_t *job = d->claiming; job; job = job->next_claim)
            snprintf(job->err, sizeof job->err, "%s", err);
        return;
    }
    for (sl_serve_job_t *job = d->claiming; job; job = job->next_claim)
        claim_job_work(job);
    if (sl__store_group_end(d->store, err, sizeof err) == 0)
        return;
    for (sl_serve_job_t *job = d->claiming; job; job = job->next_claim) {
        sl__host_recorder_discard(job->rec); /* rolled back: nothing of it is recorded */
        job->rec = NULL;
        job->won = false;
        snprintf(job->err, sizeof job->err, "%s", err);
    }
}

static void claim_after(sl_serve_job_t *job)
{
    char when[64];
    sl__serve_when(job->v, job->tick, when, sizeof when);
    if (!job->won && job->err[0] == '\0')
        SL_LOG(SL_LOG_INFO, NULL, NULL,
               "%s: tick %s already taken (by another sluice serve): "
               "not run again",
               job->v->wf->name, when);
    if (!job->won || job->rec == NULL) {
        job_done(job);
        return;
    }
    start_job(job);
}

static void submit_group(sl_serve_daemon_t *d);

static void group_after(uv_work_t *work, int status)
{
    sl_serve_daemon_t *d = work->data;
    d->works--;
    sl_serve_job_t *jobs = d->claiming;
    d->claiming = NULL;
    while (jobs) {
        sl_serve_job_t *job = jobs;
        jobs = job->next_claim;
        job->next_claim = NULL;
        claim_after(job);
    }
    submit_group(d);
}

/* Hands the claims waiting to the threadpool, unless a group is in it already. */
static void submit_group(sl_serve_daemon_t *d)
{
    if (d->claiming || d->claims == NULL)
        return;
    sl_serve_job_t **tail = &d->claims;
    for (size_t n = 0; *tail && n < SL_SERVE_CLAIM_GROUP; n++)
        tail = &(*tail)->next_claim;
    d->claiming = d->claims;
    d->claims = *tail;
    *tail = NULL;
    if (d->claims == NULL)
        d->claims_tail = &d->claims;
    d->claim_work.data = d;
    d->works++;
    if (uv_queue_work(&d->loop, &d->claim_work, group_work, group_after) < 0) {
        for (sl_serve_job_t *job = d->claiming; job; job = job->next_claim)
            snprintf(job->err, sizeof job->err, "the threadpool refused the tick");
        group_after(&d->claim_work, 0);
    }
}

static void begin_claim(sl_serve_job_t *job)
{
    sl_serve_daemon_t *d = job->d;
    job->counted = true;
    d->open_runs++;
    *d->claims_tail = job;
    d->claims_tail = &job->next_claim;
    submit_group(d);
}

/* A counted run is over: the first one waiting takes its turn. */
static void next_turn(sl_serve_daemon_t *d)
{
    d->open_runs--;
    sl_serve_job_t *job = d->waiting_head;
    if (job == NULL)
        return;
    d->waiting_head = job->next_waiting;
    if (d->waiting_head == NULL)
        d->waiting_tail = NULL;
    job->waiting = false;
    begin_claim(job);
}

static void unwait(sl_serve_job_t *job)
{
    sl_serve_daemon_t *d = job->d;
    sl_serve_job_t *prev = NULL;
    for (sl_serve_job_t *j = d->waiting_head; j; prev = j, j = j->next_waiting)
        if (j == job) {
            if (prev)
                prev->next_waiting = j->next_waiting;
            else
                d->waiting_head = j->next_waiting;
            if (d->waiting_tail == j)
                d->waiting_tail = prev;
            break;
        }
    job->waiting = false;
}

void sl__serve_launch(sl_serve_entry_t *e, int64_t tick)
{
    sl_serve_daemon_t *d = e->d;
    sl_serve_job_t *job = sl__calloc(1, sizeof(*job));
    if (job == NULL) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: out of memory: tick not run", e->name);
        return;
    }
    sl_serve_run_opts_t id = {0};
    sl__serve_run_id(&id);
    memcpy(job->run_id, id.run_id, sizeof job->run_id);
    job->d = d;
    job->e = e;
    job->v = e->cur;
    job->v->refs++;
    job->tick = tick;
    job->next = e->runs;
    e->runs = job;
    e->active++;
    d->running++;
    if (d->open_runs >= SL_SERVE_RUNS_MAX) { /* the daemon-wide cap: wait for a turn */
        job->waiting = true;
        if (d->waiting_tail)
            d->waiting_tail->next_waiting = job;
        else
            d->waiting_head = job;
        d->waiting_tail = job;
        return;
    }
    begin_claim(job);
}

void sl__serve_job_cancel(sl_serve_job_t *job)
{
    if (job->canceled || job->reaped)
        return;
    job->canceled = true;
    if (job->waiting) { /* never claimed: its tick stays free */
        unwait(job);
        job_done(job);
    } else if (job->started) {
        sl__run_stop(job->run, true);
    } else if (job->run) { /* waiting out its jitter */
        uv_timer_stop(&job->delay);
        sl__run_stop(job->run, true);
        job_done(job);
    } /* else its claim is in the threadpool: start_job stops it */
}

/* ---- reaping ----------------------------------------------------------------------- */

static void free_job(sl_serve_job_t *job)
{
    sl_serve_daemon_t *d = job->d;
    if (job->counted)
        next_turn(d);
    sl__free(job);
    sl__serve_maybe_quit(d);
}

static void on_delay_closed(uv_handle_t *handle)
{
    sl_serve_job_t *job = handle->data;
    job->d->works--;
    free_job(job);
}

static void unlink_job(sl_serve_job_t *job)
{
    sl_serve_entry_t *e = job->e;
    for (sl_serve_job_t **p = &e->runs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    e->active--;
    job->d->running--;
}

/* Logs how the run ended and frees what it held but its delay timer and its store. */
static void finish_job(sl_serve_job_t *job)
{
    char when[64];
    sl__serve_when(job->v, job->tick, when, sizeof when);
    const char *status = NULL;
    if (job->drop && job->rec) {
        sl__host_recorder_drop(job->rec);
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s not started (the daemon stops): not taken",
               job->v->wf->name, when);
        if (job->run)
            sl__run_close(job->run);
    } else if (job->rec && job->run) {
        sl__host_recorder_finish(job->rec, job->run);
        status = sl__run_succeeded(job->run) ? "succeeded"
                 : sl__run_stopped(job->run) ? "interrupted"
                                             : "failed";
        if (sl__host_recorder_error(job->rec))
            snprintf(job->err, sizeof job->err, "%s", sl__host_recorder_error(job->rec));
        sl__run_close(job->run);
    }
    double secs = job->started ? (double)(sl__clock_now_ns() - job->started_ns) / 1e9 : 0;
    sl__serve_metrics_finished(job, status);
    if (status)
        SL_LOG(strcmp(status, "succeeded") == 0 ? SL_LOG_INFO : SL_LOG_WARN, job->run_id, NULL,
               "%s: run %s for tick %s %s in %.3f s%s%s", job->v->wf->name, job->run_id, when,
               status, secs, job->err[0] ? ": " : "", job->err);
    else if ((job->won || job->err[0]) && !job->drop)
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: tick %s: the run could not start: %s",
               job->v->wf->name, when, job->err[0] ? job->err : "unknown reason");
    sl__host_recorder_free(job->rec);
    sl__run_free(job->run);
    sl__host_services_free(job->svc);
    job->rec = NULL;
    job->run = NULL;
    job->svc = NULL;
}

void sl__serve_reap(sl_serve_daemon_t *d)
{
    while (d->done) {
        sl_serve_job_t *job = d->done;
        d->done = job->next_done;
        finish_job(job);
        unlink_job(job);
        sl_serve_entry_t *e = job->e;
        sl__serve_version_unref(job->v);
        job->v = NULL;
        if (job->delay_open) {
            d->works++; /* until its timer is closed */
            uv_close((uv_handle_t *)&job->delay, on_delay_closed);
        } else {
            free_job(job);
        }
        sl__serve_entry_idle(e);
    }
}
