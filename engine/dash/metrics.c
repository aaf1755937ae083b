/*
 * GET /metrics (docs/metrics.md): the process's metrics registry (util/metrics.h) in the
 * Prometheus text format 0.0.4. What is known only at scrape time is set first: the build,
 * the process (CPU, memory and start time, read from /proc/self: procfs answers from
 * memory, so it does not block the loop) and the next tick of every workflow this daemon
 * schedules. Answered on the loop, at once: the output is bounded by the registry's bounds
 * (a few hundred KiB with 1,000 workflows).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cron/cron.h"
#include "dash/internal.h"
#include "util/metrics.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct sl_dash_metrics {
    double start_time_s; /* the process's start, Unix seconds; 0: unknown */
};

/* ---- the process, from /proc ------------------------------------------------------ */

static size_t read_proc(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* Fields 14, 15 (utime, stime) and 22 (starttime) of /proc/self/stat, in clock ticks:
 * counted after the command's closing parenthesis (the command may hold anything). */
static bool proc_stat(unsigned long long *utime, unsigned long long *stime,
                      unsigned long long *start)
{
    char buf[1024];
    if (read_proc("/proc/self/stat", buf, sizeof buf) == 0)
        return false;
    char *p = strrchr(buf, ')');
    return p && sscanf(p + 1,
                       " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                       "%*d %*d %llu",
                       utime, stime, start) == 3;
}

static double boot_time_s(void)
{
    char buf[8192];
    if (read_proc("/proc/stat", buf, sizeof buf) == 0)
        return 0;
    const char *p = strstr(buf, "\nbtime ");
    unsigned long long btime = 0;
    return p && sscanf(p + 7, "%llu", &btime) == 1 ? (double)btime : 0;
}

static sl_metrics_series_t *plain(sl_metrics_t *m, const char *name, sl_metrics_type_t type,
                                  const char *help)
{
    return sl__metrics_series(sl__metrics_family(m, name, type, help, NULL), NULL);
}

static void set_process(sl_dash_metrics_t *dm, sl_metrics_t *m)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long utime = 0, stime = 0, start = 0, pages = 0, rss = 0;
    if (tick > 0 && proc_stat(&utime, &stime, &start))
        sl__metrics_set(plain(m, "process_cpu_seconds_total", SL_METRICS_COUNTER,
                              "User and system CPU time spent, in seconds."),
                        (double)(utime + stime) / (double)tick);
    char buf[256];
    if (page > 0 && read_proc("/proc/self/statm", buf, sizeof buf) &&
        sscanf(buf, "%llu %llu", &pages, &rss) == 2) {
        sl__metrics_set(plain(m, "process_resident_memory_bytes", SL_METRICS_GAUGE,
                              "Resident memory size in bytes."),
                        (double)rss * (double)page);
        sl__metrics_set(plain(m, "process_virtual_memory_bytes", SL_METRICS_GAUGE,
                              "Virtual memory size in bytes."),
                        (double)pages * (double)page);
    }
    if (dm->start_time_s > 0)
        sl__metrics_set(plain(m, "process_start_time_seconds", SL_METRICS_GAUGE,
                              "Start time of the process since the Unix epoch, in seconds."),
                        dm->start_time_s);
}

/* ---- the schedules ------------------------------------------------------------------ */

static void set_next_tick(void *ud, const sl_serve_workflow_info_t *info)
{
    sl_metrics_family_t *f = ud;
    if (info->name == NULL || info->sched == NULL || !info->held || info->removed)
        return; /* not scheduled here */
    int64_t now = sl__clock_wall_ms() / 1000, next;
    int64_t after = info->last_tick > now ? info->last_tick : now;
    if (sl__serve_next(info->sched, after, &next) == 0)
        sl__metrics_set(sl__metrics_series(f, (const char *[]){info->name}), (double)next);
}

static void set_scrape_time(sl_dash_t *dash, sl_metrics_t *m)
{
    static const char *const version_label[] = {"version", NULL};
    sl__metrics_set(
        sl__metrics_series(sl__metrics_family(m, "sluice_build_info", SL_METRICS_GAUGE,
                                              "The version of sluice; always 1.", version_label),
                           (const char *[]){SLUICE_VERSION}),
        1);
    set_process(dash->metrics, m);
    static const char *const workflow_label[] = {"workflow", NULL};
    sl_metrics_family_t *next = sl__metrics_family(
        m, "sluice_schedule_next_tick_timestamp_seconds", SL_METRICS_GAUGE,
        "The next tick of each workflow this daemon schedules, Unix seconds.", workflow_label);
    sl__metrics_clear(next); /* a workflow removed or taken by another daemon: gone */
    if (dash->daemon)
        sl__serve_workflows(dash->daemon, set_next_tick, next);
}

/* ---- the answer ------------------------------------------------------------------- */

static int to_client(void *ud, const char *data, size_t len)
{
    return sl__http_write(ud, data, len) < 0 ? -1 : 0;
}

bool sl__dash_metrics_answer(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    if (strcmp(req->path, "/metrics") != 0)
        return false;
    sl_metrics_t *m = sl__metrics_global();
    if (m == NULL) {
        sl__http_error(ex, 503, "out of memory");
        return true;
    }
    set_scrape_time(dash, m);
    sl__http_header(ex, "Cache-Control", "no-store");
    sl__http_begin(ex, 200, METRICS_CONTENT_TYPE);
    if (!req->head)
        sl__metrics_write(m, to_client, ex); /* a client gone stops it: nothing to say */
    sl__http_end(ex);
    return true;
}

int sl__dash_metrics_new(sl_dash_t *dash)
{
    sl_dash_metrics_t *dm = sl__calloc(1, sizeof(*dm));
    if (dm == NULL)
        return SL_ENOMEM;
    unsigned long long utime, stime, start = 0;
    long tick = sysconf(_SC_CLK_TCK);
    double boot = boot_time_s();
    if (tick > 0 && boot > 0 && proc_stat(&utime, &stime, &start))
        dm->start_time_s = boot + (double)start / (double)tick;
    dash->metrics = dm;
    return 0;
}

void sl__dash_metrics_free(sl_dash_t *dash)
{
    sl__free(dash->metrics);
    dash->metrics = NULL;
}
