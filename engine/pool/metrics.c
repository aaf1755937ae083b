/*
 * What the worker pool counts for /metrics (docs/metrics.md): its workers busy (a batch
 * sent and not all answered) and idle, as gauges moved on each change by proc.c, and the
 * workers started to replace one that died. Summed over the pools of the process (a daemon
 * has one). Loop thread; the series are looked up once (the registry is never freed).
 */
#include "util/metrics.h"
#include "pool/internal.h"

static sl_metrics_series_t *busy_series, *idle_series, *respawned_series;
static bool looked_up;

static void look_up(void)
{
    static const char *const labels[] = {"state", NULL};
    sl_metrics_t *m = sl__metrics_global();
    sl_metrics_family_t *workers =
        sl__metrics_family(m, "sluice_pool_workers", SL_METRICS_GAUGE,
                           "Worker processes alive, busy (running a batch) or idle.", labels);
    busy_series = sl__metrics_series(workers, (const char *[]){"busy"});
    idle_series = sl__metrics_series(workers, (const char *[]){"idle"});
    respawned_series = sl__metrics_series(
        sl__metrics_family(m, "sluice_pool_workers_respawned_total", SL_METRICS_COUNTER,
                           "Worker processes started to replace one that died.", NULL),
        NULL);
    looked_up = busy_series && idle_series && respawned_series;
}

void sl__pool_metrics_workers(int busy_delta, int idle_delta)
{
    if (!looked_up)
        look_up();
    sl__metrics_add(busy_series, busy_delta);
    sl__metrics_add(idle_series, idle_delta);
}

void sl__pool_metrics_respawned(void)
{
    if (!looked_up)
        look_up();
    sl__metrics_add(respawned_series, 1);
}
