/*
 * What a run's recorder counts for /metrics (docs/metrics.md): every item that ends, by its
 * step's kind and its outcome, and the time it ran, by kind. The series of a step are
 * looked up at its first item end and kept with the recorder: an item end costs a few adds.
 * Loop thread (the observer's).
 */
#include "util/metrics.h"
#include "host/internal.h"

enum {
    OUTCOME_OK,
    OUTCOME_FAILED,
    OUTCOME_SKIPPED,
    OUTCOME_CANCELED,
    OUTCOME_CACHED,
    OUTCOMES,
    DURATION = OUTCOMES,
    PER_STEP
};

static const char *const outcome_names[OUTCOMES] = {"ok", "failed", "skipped", "canceled",
                                                    "cached"};

/* Fills the step's slots: one series per outcome and its duration histogram. */
static void step_series(const char *kind, sl_metrics_series_t **slots)
{
    sl_metrics_t *m = sl__metrics_global();
    static const char *const task_labels[] = {"kind", "outcome", NULL};
    static const char *const kind_label[] = {"kind", NULL};
    sl_metrics_family_t *tasks =
        sl__metrics_family(m, "sluice_tasks_total", SL_METRICS_COUNTER,
                           "Tasks (items) ended, by step kind and outcome.", task_labels);
    for (int o = 0; o < OUTCOMES; o++)
        slots[o] = sl__metrics_series(tasks, (const char *[]){kind, outcome_names[o]});
    sl_metrics_family_t *durations = sl__metrics_family(
        m, "sluice_task_duration_seconds", SL_METRICS_HISTOGRAM,
        "Seconds a task ran (its attempts together), by step kind; cached ones not counted.",
        kind_label);
    slots[DURATION] = sl__metrics_series(durations, (const char *[]){kind});
}

static int outcome_of(const sl_item_report_t *r)
{
    switch (r->status) {
    case SL_ITEM_OK:
        return r->cached ? OUTCOME_CACHED : OUTCOME_OK;
    case SL_ITEM_FAILED:
        return OUTCOME_FAILED;
    case SL_ITEM_SKIPPED:
        return OUTCOME_SKIPPED;
    case SL_ITEM_CANCELED:
        return OUTCOME_CANCELED;
    }
    return OUTCOME_FAILED;
}

void sl__host_metrics_item(sl_recorder_t *rec, const sl_item_report_t *r)
{
    size_t steps = rec->wf->step_count;
    if (r->step >= steps)
        return;
    if (rec->metric_series == NULL &&
        (rec->metric_series = sl__calloc(steps * PER_STEP, sizeof(sl_metrics_series_t *))) == NULL)
        return; /* out of memory: not counted */
    sl_metrics_series_t **slots = rec->metric_series + r->step * PER_STEP;
    if (slots[DURATION] == NULL)
        step_series(rec->wf->steps[r->step].uses, slots);
    sl__metrics_add(slots[outcome_of(r)], 1);
    if (r->attempts > 0 && !r->cached && r->started_ms > 0 && r->ended_ms >= r->started_ms)
        sl__metrics_observe(slots[DURATION], (double)(r->ended_ms - r->started_ms) / 1000);
}
