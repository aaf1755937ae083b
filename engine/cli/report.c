/* Live progress line and end-of-run summary. */
#include <inttypes.h>
#include <string.h>

#include "cli/report.h"

#define SUMMARY_ROWS_MAX 40

void sl__report_progress_init(sl_progress_t *p, FILE *out)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->started_ns = p->last_ns = sl__clock_now_ns();
}

typedef struct totals {
    size_t steps_ended, done, failed, known_total, running;
    bool all_known;
} totals_t;

static totals_t count(const sl_run_t *run, const sl_workflow_t *wf)
{
    totals_t t = {.all_known = true};
    for (size_t i = 0; i < wf->step_count; i++) {
        const sl_step_stats_t *s = sl__run_step_stats(run, i);
        t.steps_ended += s->ended_ns != 0;
        t.done += s->ok + s->failed + s->skipped;
        t.failed += s->failed;
        t.running += s->inflight;
        if (s->total_known)
            t.known_total += s->total;
        else if (wf->steps[i].foreach || wf->steps[i].stream_from != SL_NO_STEP)
            t.all_known = false;
        else
            t.known_total += 1;
    }
    return t;
}

static void format_duration(char *buf, size_t size, double seconds)
{
    if (seconds < 60)
        snprintf(buf, size, "%.0fs", seconds);
    else if (seconds < 3600)
        snprintf(buf, size, "%dm%02ds", (int)seconds / 60, (int)seconds % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)seconds / 3600, (int)seconds % 3600 / 60);
}

static void format_bytes(char *buf, size_t size, uint64_t bytes)
{
    if (bytes < 10000)
        snprintf(buf, size, "%" PRIu64 " B", bytes);
    else if (bytes < 10000000)
        snprintf(buf, size, "%.1f kB", (double)bytes / 1e3);
    else
        snprintf(buf, size, "%.1f MB", (double)bytes / 1e6);
}

/* ", 1 connection (HTTP/2: 100)": connections opened and the protocols that answered. */
static void format_connections(char *out, size_t size, const sl_http_stats_t *hs)
{
    static const char *const names[4] = {"HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"};
    int n = snprintf(out, size, ", %" PRIu64 " connection%s", hs->connections,
                     hs->connections == 1 ? "" : "s");
    const char *sep = " (";
    for (int v = 3; v >= 0 && n > 0 && (size_t)n < size; v--) {
        if (hs->by_version[v] == 0)
            continue;
        n += snprintf(out + n, size - (size_t)n, "%s%s: %" PRIu64, sep, names[v],
                      hs->by_version[v]);
        sep = ", ";
    }
    if (*sep == ',' && n > 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n, ")");
}

void sl__report_progress_draw(sl_progress_t *p, const sl_run_t *run, const sl_workflow_t *wf,
                              const sl_services_t *svc)
{
    totals_t t = count(run, wf);
    uint64_t now = sl__clock_now_ns();
    double dt = (double)(now - p->last_ns) / 1e9;
    sl_http_stats_t hs;
    bool has_http = sl__host_http_stats(svc, &hs);
    if (dt > 0.05) {
        double instant = (double)(t.done - p->last_done) / dt;
        p->rate = p->rate == 0 ? instant : 0.7 * p->rate + 0.3 * instant;
        if (has_http) {
            double requests = (double)(hs.requests - p->last_requests) / dt;
            p->request_rate =
                p->request_rate == 0 ? requests : 0.7 * p->request_rate + 0.3 * requests;
            p->last_requests = hs.requests;
        }
        p->last_ns = now;
        p->last_done = t.done;
    }
    char total[32], eta[32] = "";
    if (t.all_known)
        snprintf(total, sizeof(total), "%zu", t.known_total);
    else
        snprintf(total, sizeof(total), "%zu+", t.known_total);
    if (t.all_known && p->rate > 0 && t.known_total > t.done) {
        char d[16];
        format_duration(d, sizeof(d), (double)(t.known_total - t.done) / p->rate);
        snprintf(eta, sizeof(eta), " · ETA %s", d);
    }
    char elapsed[16], http[96] = "";
    format_duration(elapsed, sizeof(elapsed), (double)(now - p->started_ns) / 1e9);
    if (has_http) {
        char bytes[16];
        format_bytes(bytes, sizeof(bytes), hs.bytes);
        snprintf(http, sizeof(http), " · http %" PRIu64 " req (%.0f/s), %s", hs.requests,
                 p->request_rate, bytes);
    }
    fprintf(p->out, "\r\033[2K%s: steps %zu/%zu · tasks %zu/%s · %zu running · %.1f/s%s%s%s · %s",
            wf->name, t.steps_ended, wf->step_count, t.done, total, t.running, p->rate, eta, http,
            t.failed ? " · failures!" : "", elapsed);
    fflush(p->out);
    p->drawn = true;
}

void sl__report_progress_clear(sl_progress_t *p)
{
    if (p->drawn) {
        fputs("\r\033[2K", p->out);
        fflush(p->out);
        p->drawn = false;
    }
}

static const char *status_name(const sl_step_stats_t *s)
{
    switch (s->status) {
    /* partial: some tasks ok and some failed; all failed (on_error: continue) is failed */
    case SL_STEP_DONE:
        return s->failed == 0 ? "ok" : s->ok ? "partial" : "failed";
    case SL_STEP_SKIPPED:
        return "skipped";
    case SL_STEP_FAILED:
        return "failed";
    case SL_STEP_CANCELED:
        return s->started_ns ? "canceled" : "not run";
    case SL_STEP_RUNNING:
        return "running";
    default:
        return "waiting";
    }
}

/* "pool: 2 workers, 1 respawned (SIGSEGV)": worker deaths are worth a glance. */
static void print_pool(FILE *out, const sl_services_t *svc)
{
    sl_pool_stats_t ps;
    if (!sl__host_pool_stats(svc, &ps))
        return;
    fprintf(out, "pool: %" PRIu32 " worker%s, %" PRIu64 " respawned", ps.workers,
            ps.workers == 1 ? "" : "s", ps.respawned);
    for (size_t i = 0; i < SL_POOL_CAUSES_MAX && ps.causes[i].count; i++) {
        fprintf(out, "%s", i == 0 ? " (" : ", ");
        if (ps.causes[i].count > 1)
            fprintf(out, "%" PRIu64 "× ", ps.causes[i].count);
        fprintf(out, "%s", ps.causes[i].name);
    }
    fprintf(out, "%s\n", ps.causes[0].count ? ")" : "");
}

void sl__report_summary_print(FILE *out, const sl_run_t *run, const sl_workflow_t *wf,
                              const sl_services_t *svc, uint64_t elapsed_ns)
{
    int id_width = 4, kind_width = 4;
    for (size_t i = 0; i < wf->step_count && i < 10000; i++) {
        int len = (int)strlen(wf->steps[i].id), kind_len = (int)strlen(wf->steps[i].uses);
        id_width = len > id_width ? (len < 40 ? len : 40) : id_width;
        kind_width = kind_len > kind_width ? (kind_len < 30 ? kind_len : 30) : kind_width;
    }
    fprintf(out, "%-*s  %-*s  %-8s %8s %8s %8s %8s %9s\n", id_width, "step", kind_width, "kind",
            "status", "ok", "failed", "skipped", "retries", "time");
    /* A huge workflow shows its unusual steps only: a 100,000-line table helps nobody. */
    bool compact = wf->step_count > SUMMARY_ROWS_MAX;
    size_t tasks = 0, failed = 0, shown = 0, hidden = 0;
    uint64_t now = sl__clock_now_ns();
    for (size_t i = 0; i < wf->step_count; i++) {
        const sl_step_stats_t *s = sl__run_step_stats(run, i);
        /* A step the run stopped while it ran (canceled) counts up to now, not 0. */
        uint64_t end = s->ended_ns ? s->ended_ns : now;
        double secs =
            s->started_ns && end > s->started_ns ? (double)(end - s->started_ns) / 1e9 : 0;
        tasks += s->ok + s->failed + s->skipped;
        failed += s->failed;
        bool usual = s->status == SL_STEP_DONE && s->failed == 0;
        if ((compact && usual) || shown == SUMMARY_ROWS_MAX) {
            hidden++;
            continue;
        }
        shown++;
        fprintf(out, "%-*.*s  %-*.*s  %-8s %8zu %8zu %8zu %8zu %8.3fs\n", id_width, id_width,
                wf->steps[i].id, kind_width, kind_width, wf->steps[i].uses, status_name(s), s->ok,
                s->failed, s->skipped, s->retries, secs);
    }
    if (hidden)
        fprintf(out, "(%zu more step%s not listed%s)\n", hidden, hidden == 1 ? "" : "s",
                compact ? "; listed are the steps that did not simply succeed" : "");
    const char *verdict = sl__run_succeeded(run) ? "succeeded"
                          : sl__run_stopped(run) ? "was interrupted"
                                                 : "failed";
    fprintf(out, "run %s %s in %.3fs: %zu task%s, %zu failed\n", sl__run_id(run), verdict,
            (double)elapsed_ns / 1e9, tasks, tasks == 1 ? "" : "s", failed);
    size_t cached = 0;
    for (size_t i = 0; i < wf->step_count; i++)
        cached += sl__run_step_stats(run, i)->cached;
    if (cached)
        fprintf(out, "cached: %zu of %zu task%s not run (recorded outputs reused)\n", cached, tasks,
                tasks == 1 ? "" : "s");
    sl_http_stats_t hs;
    if (sl__host_http_stats(svc, &hs)) {
        char bytes[16];
        format_bytes(bytes, sizeof(bytes), hs.bytes);
        char conns[160];
        format_connections(conns, sizeof(conns), &hs);
        fprintf(out,
                "http: %" PRIu64 " request%s, %" PRIu64 " failed, %s received, at most %" PRIu32
                " in flight%s\n",
                hs.requests, hs.requests == 1 ? "" : "s", hs.failed, bytes, hs.inflight_max, conns);
    }
    print_pool(out, svc);
    if (sl__run_error(run)) { /* escaped as in the log: it may quote fetched data */
        sl_buf_t line;
        sl__buf_init(&line, 64 << 10);
        sl__utf8_escape_text(&line, sl__run_error(run));
        fprintf(out, "first error: %s\n", line.data ? line.data : "");
        sl__buf_close(&line);
    }
}
