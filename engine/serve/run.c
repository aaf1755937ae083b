/*
 * One run of a workflow for a schedule tick (serve --once, backfill): on a loop of its
 * own, with its own services, recorded with its trigger and tick; a jitter delay first
 * (a timer: the loop never sleeps); SIGINT/SIGTERM stop it, leaving it resumable.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/host.h"
#include "sched/sched.h"
#include "serve/serve.h"

typedef struct tick_run {
    uv_loop_t loop;
    sl_run_t *run;
    uv_signal_t sigint, sigterm;
    uv_timer_t delay;
    bool signaled, done;
} tick_run_t;

void sl__serve_run_id(sl_serve_run_opts_t *opts)
{
    sl__store_run_id(opts->run_id, sizeof(opts->run_id));
}

static void on_done(sl_run_t *run, void *ud)
{
    tick_run_t *t = ud;
    t->done = true;
    uv_stop(&t->loop);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    tick_run_t *t = handle->data;
    t->signaled = true;
    SL_LOG(SL_LOG_WARN, NULL, NULL, "%s: canceling the run (it stays resumable)",
           signum == SIGINT ? "interrupted" : "terminated");
    if (uv_is_active((uv_handle_t *)&t->delay)) {
        uv_timer_stop(&t->delay);
        sl__run_stop(t->run, true);
        uv_stop(&t->loop);
        return;
    }
    sl__run_stop(t->run, true);
}

static void on_delay(uv_timer_t *timer)
{
    tick_run_t *t = timer->data;
    sl__run_start(t->run, on_done, t);
}

static void close_walk(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* Runs the prepared run to its end (or a signal before it started). */
static void drive(tick_run_t *t, int64_t delay_ms)
{
    uv_signal_init(&t->loop, &t->sigint);
    uv_signal_init(&t->loop, &t->sigterm);
    uv_timer_init(&t->loop, &t->delay);
    t->sigint.data = t->sigterm.data = t->delay.data = t;
    uv_signal_start(&t->sigint, on_signal, SIGINT);
    uv_signal_start(&t->sigterm, on_signal, SIGTERM);
    uv_timer_start(&t->delay, on_delay, delay_ms > 0 ? (uint64_t)delay_ms : 0, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_signal_stop(&t->sigint);
    uv_signal_stop(&t->sigterm);
}

const char *sl__serve_run(sl_serve_run_opts_t *o, bool *signaled)
{
    tick_run_t t = {0};
    sl_services_t *svc = NULL;
    sl_recorder_t *rec = NULL;
    char err[1024] = "";
    if (uv_loop_init(&t.loop) < 0)
        return NULL;
    sl_services_opts_t so = {.registry = o->registry, .prestart = o->resume == NULL};
    int rc = sl__host_services_new(&t.loop, o->wf, &so, &svc);
    sl_run_opts_t ro = {.run_id = o->run_id,
                        .started_unix = sl__store_now_ms() / 1000,
                        .cpu = sl__host_executor(svc),
                        .services = svc};
    if (rc == 0) {
        sl_recorder_opts_t rec_opts = {
            .store = o->store,
            .wf = o->wf,
            .loop = &t.loop,
            .run_id = o->run_id,
            .trigger = o->trigger,
            .tick_ms = o->tick * 1000,
            .started_ms = sl__store_now_ms(),
            .resume = o->resume,
        };
        rc = sl__host_recorder_new(&rec_opts, &rec, err, sizeof(err));
        if (rc == 0) /* Slurm jobs recorded (and a resumed run's taken over) */
            rc = sl__host_services_record(svc, rec, err, sizeof(err));
        ro.observer = rec ? sl__host_recorder_observer(rec) : NULL;
        ro.memo = rec ? sl__host_recorder_memo(rec) : NULL;
    }
    if (rc == 0)
        rc = sl__run_new(&t.loop, o->wf, &ro, &t.run);
    const char *status = NULL;
    if (rc < 0) {
        SL_LOG(SL_LOG_ERROR, o->run_id, NULL, "cannot start the run of %s: %s", o->wf->name,
               err[0] ? err : sl_strerror(rc));
    } else {
        sl__host_recorder_watch(rec, t.run);
        drive(&t, o->delay_ms);
        sl__host_services_close(svc);
        sl__host_recorder_finish(rec, t.run);
        status = sl__run_succeeded(t.run) ? "succeeded"
                 : sl__run_stopped(t.run) ? "interrupted"
                                          : "failed";
        if (sl__store_sync(o->store, err, sizeof(err)) < 0 || sl__host_recorder_error(rec)) {
            SL_LOG(SL_LOG_ERROR, o->run_id, NULL, "the run's state could not be recorded: %s",
                   sl__host_recorder_error(rec) ? sl__host_recorder_error(rec) : err);
            status = NULL;
        }
    }
    sl__host_recorder_free(rec);
    sl__host_services_close(svc);
    if (t.run)
        sl__run_close(t.run);
    sl__run_free(t.run);
    sl__host_services_free(svc);
    uv_walk(&t.loop, close_walk, NULL);
    for (int i = 0; i < 100 && uv_loop_close(&t.loop) == UV_EBUSY; i++)
        uv_run(&t.loop, UV_RUN_NOWAIT);
    *signaled = t.signaled;
    return status;
}
