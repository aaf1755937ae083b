/*
 * A daemon's run of a tick, on the daemon's loop: the tick is claimed in the store and the
 * run's own store connection opened in the threadpool; then its services (the daemon's
 * shared client and pool), its recorder and the run are made, it waits out its jitter on
 * a timer, and runs. A finished run is reaped between loop turns (closing a run turns the
 * loop, which must not happen inside one of its callbacks); its store is closed in the
 * threadpool. A canceled run is recorded interrupted, so it stays resumable.
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

static void on_delay(uv_timer_t *timer)
{
    sl_serve_job_t *job = timer->data;
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
        snprintf(job->err, sizeof job->err, "cannot watch the run's store: %s", sl_strerror(rc));
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
    int64_t delay_ms = job->tick * 1000 +
                       sl__serve_jitter_ms(wf->name, job->tick, wf->schedule.jitter_ms) -
                       sl__clock_wall_ms();
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

/* The run's store opened, and its start recorded with its tick's claim in one commit
 * (SQLite's commits wait on the disk: the fewer the better). */
static void claim_work(uv_work_t *work)
{
    sl_serve_job_t *job = work->data;
    if (sl__store_open(sl__store_dir(job->d->store), SL_STORE_WRITE, &job->store, job->err,
                       sizeof job->err) < 0) {
        job->store = NULL;
        return;
    }
    sl_recorder_opts_t ro = {.store = job->store,
                             .wf = job->v->wf,
                             .run_id = job->run_id,
                             .trigger = "cron",
                             .tick_ms = job->tick * 1000,
                             .started_ms = sl__store_now_ms(),
                             .claim_tick = true};
    int rc = sl__host_recorder_new(&ro, &job->rec, job->err, sizeof job->err);
    job->won = rc == 0;
    if (rc < 0)
        job->rec = NULL;
    if (rc == SL_EEXIST)
        job->err[0] = '\0'; /* taken: not an error */
}

static void claim_after(uv_work_t *work, int status)
{
    sl_serve_job_t *job = work->data;
    job->d->works--;
    char when[64];
    sl__serve_when(job->v, job->tick, when, sizeof when);
    if (!job->won && job->err[0] == '\0')
        SL_LOG(SL_LOG_INFO, NULL, NULL,
               "%s: tick %s already taken (by another sluice serve): "
               "not run again",
               job->v->wf->name, when);
    if (!job->won || job->store == NULL || job->rec == NULL) {
        job_done(job);
        return;
    }
    start_job(job);
}

static void begin_claim(sl_serve_job_t *job)
{
    sl_serve_daemon_t *d = job->d;
    job->counted = true;
    d->open_runs++;
    d->works++;
    if (uv_queue_work(&d->loop, &job->work, claim_work, claim_after) < 0) {
        d->works--;
        snprintf(job->err, sizeof job->err, "the threadpool refused the tick");
        job_done(job);
    }
}

/* A counted run has let its store go: the first one waiting takes its turn. */
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
    job->work.data = job;
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

static void store_close_work(uv_work_t *work)
{
    sl_serve_job_t *job = work->data;
    sl__store_close(job->store); /* waits for the writer's last commit */
}

static void store_close_after(uv_work_t *work, int status)
{
    sl_serve_job_t *job = work->data;
    sl_serve_daemon_t *d = job->d;
    d->works--;
    if (job->counted)
        next_turn(d);
    sl__free(job);
    sl__serve_maybe_quit(d);
}

/* Closes the run's store in the threadpool, then frees the job (counted in d->works since
 * its reap: the daemon does not quit before the store has committed and closed). */
static void release_store(sl_serve_job_t *job)
{
    sl_serve_daemon_t *d = job->d;
    if (job->store == NULL ||
        uv_queue_work(&d->loop, &job->work, store_close_work, store_close_after) < 0) {
        sl__store_close(job->store);
        store_close_after(&job->work, 0);
    }
}

static void on_delay_closed(uv_handle_t *handle)
{
    release_store(handle->data);
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
    if (job->rec && job->run) {
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
    else if (job->won || job->err[0])
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
        d->works++; /* until its store is closed */
        if (job->delay_open)
            uv_close((uv_handle_t *)&job->delay, on_delay_closed);
        else
            release_store(job);
        sl__serve_entry_idle(e);
    }
}
