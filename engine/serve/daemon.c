/*
 * `sluice serve` without --once (SPEC §5, docs/scheduling.md): every scheduled workflow of
 * the files served, on one loop. Each workflow has a timer for its next tick, armed from
 * the wall clock (sl__clock_wall_ms); a periodic check of the wall clock against the
 * loop's re-arms them all after a suspend or a clock jump (then `missed` and `catchup`
 * bound what fires). A workflow is scheduled only under its lease in the store, renewed on
 * a timer; a lease left by a dead daemon is taken over once it expires, and the tick keys
 * of the store keep a tick from running twice whatever happens. `concurrency` decides what
 * a tick does while a run of its workflow is going. SIGTERM/SIGINT stop taking ticks and
 * give the runs a grace period before canceling them; a second one cancels at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/daemon.h"

/* ---- ticks ------------------------------------------------------------------------- */

static void on_entry_timer(uv_timer_t *timer)
{
    sl__serve_entry_check(timer->data);
}

static void cancel_runs(sl_serve_entry_t *e, const char *why)
{
    for (sl_serve_job_t *job = e->runs; job; job = job->next)
        if (!job->canceled && !job->reaped) {
            SL_LOG(SL_LOG_INFO, job->run_id, NULL, "%s: canceling run %s (%s)", e->name,
                   job->run_id, why);
            sl__serve_job_cancel(job);
        }
}

static void enqueue(sl_serve_entry_t *e, int64_t tick, const char *when, const char *what)
{
    if (e->queued >= SL_SERVE_QUEUE_MAX) {
        sl__serve_skip(e, tick, "too many ticks waiting");
        return;
    }
    e->queue[e->queued++] = tick;
    SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s %s", e->name, when, what);
}

/* A due tick: run it, or what `concurrency` says while a run of the workflow is going. */
static void dispatch(sl_serve_entry_t *e, int64_t tick)
{
    char when[64];
    sl__serve_when(e->cur, tick, when, sizeof when);
    SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s due", e->name, when);
    if (e->active == 0 && e->queued == 0) {
        sl__serve_launch(e, tick);
        return;
    }
    switch (e->cur->wf->schedule.concurrency) {
    case SL_CONCURRENCY_ALLOW:
        sl__serve_launch(e, tick);
        break;
    case SL_CONCURRENCY_REPLACE:
        for (size_t i = 0; i < e->queued; i++)
            sl__serve_skip(e, e->queue[i], "replaced by a newer tick (concurrency: replace)");
        e->queue[0] = tick;
        e->queued = 1;
        cancel_runs(e, "concurrency: replace");
        break;
    case SL_CONCURRENCY_QUEUE:
        enqueue(e, tick, when, "queued: it starts when the run going ends");
        break;
    case SL_CONCURRENCY_FORBID:
    default:
        sl__serve_skip(e, tick, "a run of the workflow is still going (concurrency: forbid)");
        break;
    }
}

/* The ticks due at one look, oldest first. Several (catching up after downtime, `missed:
 * all`) run one after the other, as --once runs them, unless `allow` lets them overlap;
 * while a run is going, each meets the policy as a lone tick would. */
static void dispatch_due(sl_serve_entry_t *e, const int64_t *due, size_t n)
{
    bool in_turn = n > 1 && e->cur->wf->schedule.concurrency != SL_CONCURRENCY_ALLOW &&
                   e->active == 0 && e->queued == 0;
    for (size_t i = 0; i < n; i++) {
        if (!in_turn || i == 0) {
            dispatch(e, due[i]);
            continue;
        }
        char when[64];
        sl__serve_when(e->cur, due[i], when, sizeof when);
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s due", e->name, when);
        enqueue(e, due[i], when, "catching up: it starts when the tick before it has run");
    }
}

/* An idle workflow's next tick is claimed and its run made SL_SERVE_AHEAD_MS before it
 * (its run's timer waits for the tick): at the tick itself only the run starts, so a
 * thousand workflows on one tick start on time. A workflow with a run going meets its
 * tick when it comes, where `concurrency` decides. */
static int64_t take_ahead(sl_serve_entry_t *e, int64_t next, int64_t now_ms)
{
    for (int i = 0; i < 4 && next * 1000 - now_ms <= SL_SERVE_AHEAD_MS; i++) {
        if (e->ahead_tried == next)
            return next; /* was busy when looked at: the tick is met when it comes */
        e->ahead_tried = next;
        if (e->active > 0 || e->queued > 0)
            return next;
        char when[64];
        sl__serve_when(e->cur, next, when, sizeof when);
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s due (its run made ready ahead)", e->name,
               when);
        e->last_tick = next;
        sl__serve_launch(e, next);
        if (sl__serve_next(&e->cur->sched, next, &next) < 0)
            return 0;
    }
    return next;
}

void sl__serve_entry_check(sl_serve_entry_t *e)
{
    sl_serve_daemon_t *d = e->d;
    uv_timer_stop(&e->timer);
    if (d->stopping || e->removed || !e->held || e->cur == NULL || e->cur->sched.count == 0)
        return;
    int64_t now_ms = sl__clock_wall_ms(), now = now_ms / 1000;
    int64_t due[SL_SERVE_MISSED_MAX];
    size_t n = sl__serve_due(&e->cur->sched, e->last_tick, now, due);
    sl__serve_metrics_dropped(e, e->last_tick, now, n);
    if (n > 0)
        e->last_tick = due[n - 1];
    dispatch_due(e, due, n);
    int64_t next, after = e->last_tick > now ? e->last_tick : now;
    if (sl__serve_next(&e->cur->sched, after, &next) < 0 ||
        (next = take_ahead(e, next, now_ms)) == 0)
        return; /* no tick ever again (a date that never comes) */
    int64_t at_ms = next * 1000 - (e->ahead_tried == next ? 0 : SL_SERVE_AHEAD_MS);
    int64_t delay_ms = at_ms - now_ms;
    uv_timer_start(&e->timer, on_entry_timer, delay_ms > 0 ? (uint64_t)delay_ms : 0, 0);
}

void sl__serve_entry_idle(sl_serve_entry_t *e)
{
    sl_serve_daemon_t *d = e->d;
    if (e->active == 0 && e->queued > 0 && !d->stopping && !e->removed && e->cur) {
        int64_t tick = e->queue[0];
        memmove(e->queue, e->queue + 1, (e->queued - 1) * sizeof(e->queue[0]));
        e->queued--;
        sl__serve_launch(e, tick);
    }
    sl__serve_maybe_quit(d);
}

/* ---- leases ------------------------------------------------------------------------ */

typedef struct lease_item {
    sl_serve_entry_t *e;
    char *name, *release; /* the lease to hold (or give back), one to give back */
    bool want, was_held, held;
    int64_t last_ms;
    char err[256];
    char dead[128]; /* the dead daemon the lease was taken from */
} lease_item_t;

typedef struct lease_round {
    uv_work_t work;
    sl_serve_daemon_t *d;
    lease_item_t *items;
    size_t count;
} lease_round_t;

/* A lease held by a daemon of this host that is gone (killed): taken at once, rather
 * than when it expires. */
static void take_dead_lease(sl_serve_daemon_t *d, lease_item_t *it)
{
    char holder[128], err[256];
    size_t host_len = strcspn(d->owner, ":");
    if (sl__store_lease_owner(d->store, it->name, holder, sizeof holder, err, sizeof err) < 0 ||
        strncmp(holder, d->owner, host_len + 1) != 0)
        return;
    char *end = NULL;
    long pid = strtol(holder + host_len + 1, &end, 10);
    if (end == holder + host_len + 1 || *end != '\0' || pid <= 0 || pid == (long)getpid() ||
        kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return;
    if (sl__store_lease_take(d->store, it->name, holder, d->owner, SL_SERVE_LEASE_TTL_MS, &it->held,
                             it->err, sizeof it->err) == 0 &&
        it->held)
        snprintf(it->dead, sizeof it->dead, "%s", holder);
}

/* A round is one transaction: a thousand workflows' renewals wait on the disk once. */
static void lease_work(uv_work_t *work)
{
    lease_round_t *r = work->data;
    sl_serve_daemon_t *d = r->d;
    char err[256];
    bool grouped = sl__store_group_begin(d->store, err, sizeof err) == 0;
    for (size_t i = 0; i < r->count; i++) {
        lease_item_t *it = &r->items[i];
        if (it->release)
            sl__store_lease_release(d->store, it->release, d->owner, err, sizeof err);
        if (it->name && !it->want) {
            sl__store_lease_release(d->store, it->name, d->owner, err, sizeof err);
            continue;
        }
        if (it->name == NULL || sl__store_lease(d->store, it->name, d->owner, SL_SERVE_LEASE_TTL_MS,
                                                &it->held, it->err, sizeof it->err) < 0)
            continue;
        if (!it->held)
            take_dead_lease(d, it);
        if (it->held && !it->was_held &&
            sl__store_tick_last(d->store, it->name, "cron", &it->last_ms, it->err, sizeof it->err) <
                0)
            it->held = false;
    }
    if (!grouped || sl__store_group_end(d->store, err, sizeof err) == 0)
        return;
    for (size_t i = 0; i < r->count; i++) { /* nothing of the round was recorded */
        r->items[i].held = false;
        snprintf(r->items[i].err, sizeof r->items[i].err, "%s", err);
    }
}

/* What a round learned of one entry (unless it was renamed meanwhile). */
static void lease_apply(sl_serve_daemon_t *d, lease_item_t *it)
{
    sl_serve_entry_t *e = it->e;
    if (it->release && e->old_name && strcmp(e->old_name, it->release) == 0) {
        sl__free(e->old_name);
        e->old_name = NULL;
    }
    if (it->name == NULL || e->name == NULL || strcmp(e->name, it->name) != 0)
        return;
    if (it->err[0])
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: lease: %s", e->name, it->err);
    if (!it->want) {
        e->held = false;
        return;
    }
    if (it->held && !e->held && !d->stopping && !e->removed) {
        e->held = true;
        int64_t last = it->last_ms / 1000;
        if (last > e->last_tick)
            e->last_tick = last;
        if (it->dead[0])
            SL_LOG(SL_LOG_INFO, NULL, NULL,
                   "%s: scheduled here (lease taken from %s, a daemon that is gone)", e->name,
                   it->dead);
        else
            SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: scheduled here (lease taken)", e->name);
        sl__serve_entry_check(e);
    } else if (!it->held && e->held) {
        e->held = false;
        uv_timer_stop(&e->timer);
        SL_LOG(SL_LOG_WARN, NULL, NULL, "%s: lease lost: scheduled by another sluice serve",
               e->name);
    } else if (!it->held && !it->was_held && it->err[0] == '\0' && !e->lease_logged &&
               !e->removed) {
        e->lease_logged = true;
        SL_LOG(SL_LOG_INFO, NULL, NULL,
               "%s: scheduled by another sluice serve (its lease); taken over if it stops",
               e->name);
    }
}

static void lease_after(uv_work_t *work, int status)
{
    lease_round_t *r = work->data;
    sl_serve_daemon_t *d = r->d;
    d->works--;
    d->lease_busy = false;
    for (size_t i = 0; i < r->count; i++) {
        lease_apply(d, &r->items[i]);
        sl__free(r->items[i].name);
        sl__free(r->items[i].release);
    }
    sl__free(r->items);
    sl__free(r);
    sl__serve_maybe_quit(d);
}

void sl__serve_leases(sl_serve_daemon_t *d)
{
    if (d->lease_busy || d->stopping)
        return;
    size_t n = 0;
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        n++;
    lease_round_t *r = sl__calloc(1, sizeof(*r));
    if (r == NULL || (r->items = sl__calloc(n + 1, sizeof(lease_item_t))) == NULL) {
        sl__free(r);
        return;
    }
    r->d = d;
    for (sl_serve_entry_t *e = d->entries; e; e = e->next) {
        lease_item_t *it = &r->items[r->count++];
        it->e = e;
        it->want = !e->removed && e->cur && e->cur->sched.count > 0;
        it->was_held = e->held;
        it->name = e->name && (it->want || e->held) ? sl__strdup(e->name) : NULL;
        it->release = e->old_name ? sl__strdup(e->old_name) : NULL;
    }
    r->work.data = r;
    d->lease_busy = true;
    d->works++;
    if (uv_queue_work(&d->loop, &r->work, lease_work, lease_after) < 0) {
        d->works--;
        d->lease_busy = false;
        for (size_t i = 0; i < r->count; i++) {
            sl__free(r->items[i].name);
            sl__free(r->items[i].release);
        }
        sl__free(r->items);
        sl__free(r);
    }
}

static void on_lease_timer(uv_timer_t *timer)
{
    sl__serve_leases(timer->data);
}

/* ---- the wall clock ---------------------------------------------------------------- */

static void on_watch_timer(uv_timer_t *timer)
{
    sl_serve_daemon_t *d = timer->data;
    int64_t wall = sl__clock_wall_ms();
    uint64_t mono = uv_hrtime() / 1000000;
    int64_t drift = (wall - d->base_wall_ms) - (int64_t)(mono - d->base_loop_ms);
    if (drift > -SL_SERVE_JUMP_MS && drift < SL_SERVE_JUMP_MS)
        return;
    d->base_wall_ms = wall;
    d->base_loop_ms = mono;
    SL_LOG(SL_LOG_WARN, NULL, NULL,
           "the wall clock moved %+.1f s against the monotonic one (suspend or clock change): "
           "timers re-armed from it",
           (double)drift / 1000);
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        sl__serve_entry_check(e);
}

/* ---- stopping ---------------------------------------------------------------------- */

void sl__serve_maybe_quit(sl_serve_daemon_t *d)
{
    if (d->stopping && !d->quit && d->running == 0 && d->works == 0 && d->done == NULL) {
        d->quit = true;
        uv_stop(&d->loop);
    }
}

static void cancel_all(sl_serve_daemon_t *d)
{
    d->canceling = true;
    uv_timer_stop(&d->grace_timer);
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        cancel_runs(e, "the daemon stops");
}

static void on_grace_timer(uv_timer_t *timer)
{
    sl_serve_daemon_t *d = timer->data;
    SL_LOG(SL_LOG_WARN, NULL, NULL, "grace period over: canceling %zu run%s (they stay resumable)",
           d->running, d->running == 1 ? "" : "s");
    cancel_all(d);
}

static void begin_stop(sl_serve_daemon_t *d, const char *signame)
{
    d->stopping = true;
    uv_timer_stop(&d->lease_timer);
    uv_timer_stop(&d->watch_timer);
    sl__serve_unwatch(d);
    for (sl_serve_entry_t *e = d->entries; e; e = e->next) {
        uv_timer_stop(&e->timer);
        for (size_t i = 0; i < e->queued; i++)
            sl__serve_skip(e, e->queue[i], "the daemon stopped");
        e->queued = 0;
    }
    while (d->waiting_head) /* ticks not claimed yet: not taken */
        sl__serve_job_cancel(d->waiting_head);
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        for (sl_serve_job_t *job = e->runs; job; job = job->next)
            if (!job->started && !job->canceled && !job->reaped) {
                job->drop = true; /* claimed ahead or waiting out its jitter: given back */
                sl__serve_job_cancel(job);
            }
    SL_LOG(SL_LOG_INFO, NULL, NULL,
           "%s: stopping: no more ticks; %zu run%s going get %.3g s to finish", signame, d->running,
           d->running == 1 ? "" : "s", (double)d->opts->grace_ms / 1000);
    if (d->running > 0)
        uv_timer_start(&d->grace_timer, on_grace_timer, (uint64_t)d->opts->grace_ms, 0);
    sl__serve_maybe_quit(d);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    sl_serve_daemon_t *d = handle->data;
    if (signum == SIGHUP) {
        if (!d->stopping) {
            SL_LOG(SL_LOG_INFO, NULL, NULL, "SIGHUP: reloading the files");
            sl__serve_reload(d, false);
        }
        return;
    }
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (!d->stopping) {
        begin_stop(d, name);
    } else if (!d->canceling) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "%s again: canceling %zu run%s now (they stay resumable)",
               name, d->running, d->running == 1 ? "" : "s");
        cancel_all(d);
    }
}

/* ---- the daemon -------------------------------------------------------------------- */

/* The store's writer failed (disk full, a corrupted database): nothing more is recorded,
 * so the runs stop and so does the daemon. */
static void on_store_event(void *ud, uint64_t committed, const char *error)
{
    sl_serve_daemon_t *d = ud;
    if (error == NULL || d->store_failed)
        return;
    d->store_failed = true;
    SL_LOG(SL_LOG_ERROR, NULL, NULL, "the state store failed: %s; the daemon stops", error);
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        for (sl_serve_job_t *job = e->runs; job; job = job->next)
            if (job->rec)
                sl__host_recorder_store_failed(job->rec, error);
    if (!d->stopping)
        begin_stop(d, "store failure");
}

static void start_handles(sl_serve_daemon_t *d)
{
    uv_signal_t *signals[] = {&d->sigint, &d->sigterm, &d->sighup};
    int numbers[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&d->loop, signals[i]);
        signals[i]->data = d;
        uv_signal_start(signals[i], on_signal, numbers[i]);
    }
    uv_timer_t *timers[] = {&d->lease_timer, &d->watch_timer, &d->grace_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(&d->loop, timers[i]);
        timers[i]->data = d;
    }
    uv_timer_start(&d->lease_timer, on_lease_timer, SL_SERVE_LEASE_RENEW_MS,
                   SL_SERVE_LEASE_RENEW_MS);
    uv_timer_start(&d->watch_timer, on_watch_timer, SL_SERVE_WATCH_MS, SL_SERVE_WATCH_MS);
    d->base_wall_ms = sl__clock_wall_ms();
    d->base_loop_ms = uv_hrtime() / 1000000;
}

static void close_walk(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* After the loop: the leases given back, the entries and the shared services freed. */
static void shut_down(sl_serve_daemon_t *d)
{
    char err[256];
    for (sl_serve_entry_t *e = d->entries, *next; e; e = next) {
        next = e->next;
        if (e->held && e->name)
            sl__store_lease_release(d->store, e->name, d->owner, err, sizeof err);
        if (e->cur)
            sl__serve_version_unref(e->cur);
        uv_close((uv_handle_t *)&e->timer, NULL);
    }
    sl__host_shared_free(d->shared);
    sl__store_detach(d->store); /* its writer finishes with the store's close */
    uv_walk(&d->loop, close_walk, NULL);
    for (int i = 0; i < 1000 && uv_loop_close(&d->loop) == UV_EBUSY; i++)
        uv_run(&d->loop, UV_RUN_NOWAIT);
    for (sl_serve_entry_t *e = d->entries, *next; e; e = next) {
        next = e->next;
        sl__free(e->path);
        sl__free(e->name);
        sl__free(e->old_name);
        sl__free(e);
    }
}

static size_t count_scheduled(const sl_serve_daemon_t *d, size_t *files)
{
    size_t n = 0;
    *files = 0;
    for (const sl_serve_entry_t *e = d->entries; e; e = e->next, ++*files)
        n += e->cur && e->cur->sched.count > 0;
    return n;
}

void sl__serve_workflows(sl_serve_daemon_t *d,
                         void (*fn)(void *ud, const sl_serve_workflow_info_t *info), void *ud)
{
    for (sl_serve_entry_t *e = d->entries; e; e = e->next) {
        const sl_serve_version_t *v = e->cur;
        sl_serve_workflow_info_t info = {
            .name = v ? v->wf->name : NULL, .path = e->path,
            .sched = v && v->sched.count ? &v->sched : NULL,
            .def = v && v->sched.count ? &v->wf->schedule : NULL,
            .last_tick = e->last_tick, .active = e->active, .held = e->held,
            .removed = e->removed,
        };
        fn(ud, &info);
    }
}

int sl__serve_daemon(const sl_serve_opts_t *opts)
{
    sl_serve_daemon_t *d = sl__calloc(1, sizeof(*d));
    if (d == NULL)
        return SL_ENOMEM;
    if (uv_loop_init(&d->loop) < 0) {
        sl__free(d);
        return SL_ESYS;
    }
    d->opts = opts;
    d->store = opts->store;
    d->claims_tail = &d->claims;
    if (sl__store_attach(d->store, &d->loop, on_store_event, d) < 0) {
        uv_loop_close(&d->loop);
        sl__free(d);
        return SL_ESYS;
    }
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(d->owner, sizeof d->owner, "%s:%d", host, (int)getpid());
    sl_host_shared_opts_t so = {0};
    if (sl__host_shared_new(&d->loop, &so, &d->shared) < 0) {
        sl__store_detach(d->store);
        uv_loop_close(&d->loop);
        sl__free(d);
        return SL_ENOMEM;
    }
    start_handles(d);
    if (opts->loop_started)
        opts->loop_started(&d->loop, d, opts->loop_ud);
    sl__serve_reload(d, true);
    size_t files, scheduled = count_scheduled(d, &files);
    SL_LOG(SL_LOG_INFO, NULL, NULL, "serving %zu workflow file%s, %zu scheduled (pid %d)", files,
           files == 1 ? "" : "s", scheduled, (int)getpid());
    sl__serve_watch(d);
    while (!d->quit) {
        uv_run(&d->loop, UV_RUN_ONCE);
        sl__serve_reap(d); /* between turns: closing a run turns the loop */
        sl__serve_maybe_quit(d);
    }
    SL_LOG(SL_LOG_INFO, NULL, NULL, "stopped");
    if (opts->loop_stopped)
        opts->loop_stopped(opts->loop_ud);
    shut_down(d);
    int rc = d->store_failed ? SL_EIO : 0;
    sl__free(d);
    return rc;
}
