/*
 * What the daemon counts for /metrics (docs/metrics.md): runs started and finished by
 * workflow, the lag from a tick to its run's start, and the ticks skipped by a bounded
 * reason. Called from launch.c and daemon.c once a run or a tick, on the loop: a lookup
 * each time is cheap at that rate. The next tick of each workflow is read at scrape time (dash/).
 */
#include <string.h>

#include "serve/daemon.h"
#include "util/metrics.h"

static const char *const run_labels[] = {"workflow", "trigger", NULL};
static const char *const finished_labels[] = {"workflow", "status", NULL};
static const char *const workflow_label[] = {"workflow", NULL};
static const char *const skip_labels[] = {"workflow", "reason", NULL};

void sl__serve_metrics_started(const sl_serve_job_t *job)
{
    sl_metrics_t *m = sl__metrics_global();
    const char *name = job->v->wf->name;
    sl__metrics_count(sl__metrics_family(m, "sluice_runs_started_total", SL_METRICS_COUNTER,
                                         "Runs started, by workflow and trigger.", run_labels),
                      (const char *[]){name, "cron"}, 1);
    double lag_s = (double)(sl__clock_wall_ms() - job->tick * 1000) / 1000;
    sl__metrics_observe(
        sl__metrics_series(sl__metrics_family(m, "sluice_schedule_lag_seconds",
                                              SL_METRICS_HISTOGRAM,
                                              "Seconds from a tick to the start of its run "
                                              "(its jitter and any wait for a turn included).",
                                              workflow_label),
                           (const char *[]){name}),
        lag_s > 0 ? lag_s : 0);
}

void sl__serve_metrics_finished(const sl_serve_job_t *job, const char *status)
{
    if (!job->started || status == NULL)
        return; /* never started: not counted as started either */
    sl__metrics_count(sl__metrics_family(sl__metrics_global(), "sluice_runs_finished_total",
                                         SL_METRICS_COUNTER,
                                         "Runs finished, by workflow and status.", finished_labels),
                      (const char *[]){job->v->wf->name, status}, 1);
}

/* The reasons sl__serve_skip is given (daemon.c, files.c), as bounded label values. */
static const struct {
    const char *text, *label;
} skip_reasons[] = {
    {"(concurrency: forbid)", "forbid"},      {"(concurrency: replace)", "replace"},
    {"too many ticks waiting", "queue_full"}, {"the daemon stopped", "stopping"},
    {"its file was removed", "removed"},
};

const char *sl__serve_metrics_reason(const char *reason)
{
    for (size_t i = 0; i < SL_COUNTOF(skip_reasons); i++)
        if (strstr(reason, skip_reasons[i].text))
            return skip_reasons[i].label;
    return "other";
}

static sl_metrics_family_t *skipped_family(void)
{
    return sl__metrics_family(sl__metrics_global(), "sluice_ticks_skipped_total",
                              SL_METRICS_COUNTER, "Ticks not run, by workflow and reason.",
                              skip_labels);
}

void sl__serve_metrics_skipped(const sl_serve_entry_t *e, const char *reason)
{
    sl__metrics_count(skipped_family(),
                      (const char *[]){e->name ? e->name : "", sl__serve_metrics_reason(reason)},
                      1);
}

void sl__serve_metrics_dropped(const sl_serve_entry_t *e, int64_t last, int64_t now, size_t due)
{
    uint64_t catchup = 0, missed = 0;
    sl__serve_dropped(&e->cur->sched, last, now, due, &catchup, &missed);
    const char *name = e->name ? e->name : "";
    sl_metrics_family_t *f = catchup || missed ? skipped_family() : NULL;
    if (catchup)
        sl__metrics_count(f, (const char *[]){name, "catchup"}, (double)catchup);
    if (missed)
        sl__metrics_count(f, (const char *[]){name, "missed"}, (double)missed);
}
