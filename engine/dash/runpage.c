/*
 * A run's page at /runs/RUN (SPEC §5 `--http`, docs/dashboard.md): its header, the step
 * graph as inline SVG (laid out by layout.c), a Gantt timeline of the steps, the steps with
 * their items done/total, the failed tasks with their errors and attempts, and the log
 * tail. The run is loaded (data.c) and laid out in the threadpool; the page is then
 * streamed a piece at a time, waiting for the socket to drain past SL_HTTP_HIGH_WATER, so
 * that a run of 10,000 steps never sits whole in memory twice. app.js keeps it live from
 * /api/events while the run goes on: the elements it updates carry data-step and ids.
 */
#include <string.h>
#include <time.h>

#include "dash/pages.h"

#define LABEL_CHARS 20 /* a node's label; the whole id in its <title> */
#define GANTT_W 1200   /* the timeline's SVG width: labels, then bars */
#define GANTT_LABEL 190
#define GANTT_ROW 16
#define GANTT_AXIS 22

typedef struct run_page {
    sl_dash_work_t w;
    sl_http_exchange_t *ex;
    char ref[128];
    bool gone, waiting;
    sl_dash_run_t *run;
    sl_dash_layout_t layout;
    sl_dash_out_t out;
    size_t section;     /* the section written now (SECTIONS) */
    size_t at;          /* its item written next */
    size_t gantt_scan;  /* the step the timeline looks at next */
    int64_t t0, t1;     /* the timeline's span (ms) */
    size_t gantt_count; /* steps on the timeline */
    size_t gantt_done;  /* bars written */
    int64_t now_ms;
    size_t steps_from, steps_to; /* the rows of the steps table */
} run_page_t;

/* ---- in the threadpool -------------------------------------------------------------------- */

static void run_work(sl_dash_work_t *w, sl_store_t *store)
{
    run_page_t *p = w->ud;
    if (store == NULL) {
        w->rc = SL_ENOTFOUND;
        return;
    }
    w->rc = sl__dash_run_load_work(store, p->ref, &p->run, w->err, sizeof w->err);
    if (w->rc == 0 && sl__dash_layout(p->run, &p->layout) < 0) {
        w->rc = SL_ENOMEM;
        snprintf(w->err, sizeof w->err, "out of memory");
    }
}

/* ---- the pieces ------------------------------------------------------------------------ */

static void write_head(run_page_t *p, size_t item)
{
    sl_dash_out_t *o = &p->out;
    const sl_store_run_row_t *r = &p->run->run;
    sl__dash_out_s(o, "<div id=\"run\" data-run=\"");
    sl__dash_out_h(o, r->id);
    sl__dash_out_s(o, "\" data-status=\"");
    sl__dash_out_h(o, r->status);
    sl__dash_out_s(o, "\"><h1>Run <span class=\"name\">");
    sl__dash_out_h(o, r->id);
    sl__dash_out_s(o, "</span> <span id=\"run-status\">");
    sl__dash_out_badge(o, r->status);
    sl__dash_out_s(o, "</span> <span id=\"live\" class=\"live\" hidden>live</span></h1>"
                      "<dl class=\"facts\"><dt>Workflow</dt><dd>");
    sl__dash_out_link(o, NULL, "/workflows/", r->workflow);
    sl__dash_out_s(o, "</dd><dt>Trigger</dt><dd>");
    sl__dash_out_h(o, r->trigger);
    if (r->resumed_from[0]) {
        sl__dash_out_s(o, " of ");
        sl__dash_out_link(o, NULL, "/runs/", r->resumed_from);
    }
    sl__dash_out_s(o, "</dd><dt>Started</dt><dd>");
    sl__dash_out_time(o, r->started_ms);
    sl__dash_out_s(o, "</dd><dt>Finished</dt><dd id=\"run-finished\">");
    sl__dash_out_time(o, r->finished_ms);
    sl__dash_out_s(o, "</dd><dt>Duration</dt><dd id=\"run-duration\">");
    if (r->finished_ms > 0)
        sl__dash_out_duration(o, r->finished_ms - r->started_ms);
    else
        sl__dash_out_s(o, "running");
    uint64_t ok = r->tasks_ok, failed = r->tasks_failed;
    if (r->finished_ms <= 0) { /* the run's row counts at its end: sum its steps' now */
        ok = failed = 0;
        for (size_t i = 0; i < p->run->step_count; i++) {
            ok += p->run->steps[i].row.ok;
            failed += p->run->steps[i].row.failed;
        }
    }
    sl__dash_out_f(o,
                   "</dd><dt>Tasks</dt><dd><span id=\"run-ok\">%llu</span> ok, "
                   "<span id=\"run-failed\">%llu</span> failed, %llu cached</dd><dt>Steps"
                   "</dt><dd>%zu</dd></dl>",
                   (unsigned long long)ok, (unsigned long long)failed,
                   (unsigned long long)r->tasks_cached, p->run->step_count);
    if (r->error[0]) {
        sl__dash_out_s(o, "<p class=\"error-text run-error\">");
        sl__dash_out_h(o, r->error);
        sl__dash_out_s(o, "</p>");
    }
    sl__dash_out_s(o, "</div>");
}

static void write_graph_open(run_page_t *p, size_t item)
{
    sl_dash_out_t *o = &p->out;
    const sl_dash_layout_t *l = &p->layout;
    sl__dash_out_s(o, "<section class=\"graph-section\"><h2>Graph</h2>");
    if (l->count < p->run->step_count)
        sl__dash_out_f(o,
                       "<p class=\"note\" id=\"graph-cap\">The graph shows the first %zu of "
                       "%zu steps (by dependency depth); the steps table lists them all."
                       "</p>",
                       l->count, p->run->step_count);
    sl__dash_out_f(o,
                   "<div class=\"scroll graph-box\"><svg class=\"graph\" "
                   "xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                   "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"step graph\">"
                   "<g class=\"edges\">",
                   (int)l->width, (int)l->height, (int)l->width, (int)l->height);
}

/* The edges into drawn step number `k`: curves from its needs' right sides to its left. */
static void write_edges(run_page_t *p, size_t item)
{
    const sl_dash_layout_t *l = &p->layout;
    size_t v = l->drawn[item];
    for (size_t i = l->dep_first[v]; i < l->dep_first[v + 1]; i++) {
        size_t d = l->deps[i];
        if (!l->shown[d])
            continue;
        int x1 = l->x[d] + SL_DASH_NODE_W, y1 = l->y[d] + SL_DASH_NODE_H / 2;
        int x2 = l->x[v], y2 = l->y[v] + SL_DASH_NODE_H / 2, mid = (x1 + x2) / 2;
        sl__dash_out_f(&p->out, "<path d=\"M%d %dC%d %d %d %d %d %d\"/>", x1, y1, mid, y1, mid, y2,
                       x2, y2);
    }
}

static void write_node(run_page_t *p, size_t item)
{
    sl_dash_out_t *o = &p->out;
    const sl_dash_layout_t *l = &p->layout;
    size_t v = l->drawn[item];
    const sl_store_step_row_t *s = &p->run->steps[v].row;
    const char *id = s->id ? s->id : "";
    sl__dash_out_f(o, "<g class=\"node st-%s\" transform=\"translate(%d %d)\" data-step=\"",
                   sl__dash_status_class(s->status), (int)l->x[v], (int)l->y[v]);
    sl__dash_out_h(o, id);
    sl__dash_out_s(o, "\"><rect width=\"" SL_DASH_STR(SL_DASH_NODE_W) "\" height=\"" SL_DASH_STR(
                          SL_DASH_NODE_H) "\" rx=\"5\"/><text x=\"10\" y=\"21\">");
    sl__dash_out_h_cut(o, id, LABEL_CHARS);
    sl__dash_out_s(o, "</text>");
    if (strlen(id) > LABEL_CHARS) { /* cut: the whole id on hover (a lean SVG otherwise) */
        sl__dash_out_s(o, "<title>");
        sl__dash_out_h(o, id);
        sl__dash_out_s(o, "</title>");
    }
    sl__dash_out_s(o, "</g>");
}

/* The timeline's span and the steps on it (those started, the first NODES_MAX of them). */
static void gantt_span(run_page_t *p)
{
    const sl_store_run_row_t *r = &p->run->run;
    p->t0 = r->started_ms;
    p->t1 = r->finished_ms > 0 ? r->finished_ms : p->now_ms;
    for (size_t i = 0; i < p->run->step_count; i++) {
        const sl_store_step_row_t *s = &p->run->steps[i].row;
        if (s->started_ms <= 0)
            continue;
        if (p->t0 <= 0 || s->started_ms < p->t0)
            p->t0 = s->started_ms;
        if (s->ended_ms > p->t1)
            p->t1 = s->ended_ms;
        if (p->gantt_count < SL_DASH_GANTT_MAX)
            p->gantt_count++;
    }
    if (p->t1 <= p->t0)
        p->t1 = p->t0 + 1;
}

static int gantt_x(const run_page_t *p, int64_t ms)
{
    double f = (double)(ms - p->t0) / (double)(p->t1 - p->t0);
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return GANTT_LABEL + (int)(f * (GANTT_W - GANTT_LABEL - 10));
}

static void write_gantt_open(run_page_t *p, size_t item)
{
    sl_dash_out_t *o = &p->out;
    gantt_span(p);
    sl__dash_out_s(o, "<section><h2>Timeline</h2>");
    if (p->gantt_count == 0) {
        sl__dash_out_s(o, "<p class=\"empty\">No step has started.</p>");
        return;
    }
    int height = GANTT_AXIS + (int)p->gantt_count * GANTT_ROW + 4;
    sl__dash_out_f(o,
                   "<div class=\"scroll\"><svg class=\"gantt\" "
                   "xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\" "
                   "aria-label=\"timeline of the steps\"><g class=\"axis\">",
                   GANTT_W, height);
    for (int i = 0; i <= 4; i++) {
        int64_t ms = p->t0 + (p->t1 - p->t0) * i / 4;
        int x = gantt_x(p, ms);
        sl__dash_out_f(o,
                       "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/><text x=\"%d\" y=\"14\""
                       "%s>+",
                       x, x, GANTT_AXIS - 4, height, x, i == 4 ? " text-anchor=\"end\"" : "");
        sl__dash_out_duration(o, ms - p->t0);
        sl__dash_out_s(o, "</text>");
    }
    sl__dash_out_s(o, "</g>");
}

/* The next bar: the next started step from `at`, in workflow order. */
static void write_gantt_bar(run_page_t *p, size_t item)
{
    sl_dash_out_t *o = &p->out;
    const sl_store_step_row_t *s = NULL;
    while (s == NULL && p->gantt_scan < p->run->step_count) {
        s = &p->run->steps[p->gantt_scan++].row;
        if (s->started_ms <= 0)
            s = NULL;
    }
    if (s == NULL) {
        p->gantt_done = p->gantt_count;
        return;
    }
    int64_t end = s->ended_ms > 0 ? s->ended_ms : p->now_ms;
    int x1 = gantt_x(p, s->started_ms), x2 = gantt_x(p, end);
    int y = GANTT_AXIS + (int)p->gantt_done * GANTT_ROW;
    sl__dash_out_f(o, "<text x=\"0\" y=\"%d\">", y + 11);
    sl__dash_out_h_cut(o, s->id, 24);
    sl__dash_out_f(o, "</text><rect class=\"bar st-%s\" data-step=\"",
                   sl__dash_status_class(s->status));
    sl__dash_out_h(o, s->id);
    sl__dash_out_f(o, "\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"11\"/>", x1, y + 2,
                   x2 - x1 > 2 ? x2 - x1 : 2);
    p->gantt_done++;
}

/* A link to the steps table from step `from`. */
static void steps_link(run_page_t *p, size_t from, const char *text)
{
    sl__dash_out_s(&p->out, "<a class=\"page\" href=\"/runs/");
    sl__dash_out_url(&p->out, p->run->run.id);
    sl__dash_out_f(&p->out, "?steps=%zu#steps\">%s</a>", from, text);
}

static void write_steps_open(run_page_t *p, size_t item)
{
    size_t n = p->run->step_count;
    p->steps_from = p->steps_from < n ? p->steps_from : 0;
    p->steps_to = n - p->steps_from > SL_DASH_STEPS_PAGE ? p->steps_from + SL_DASH_STEPS_PAGE : n;
    sl__dash_out_s(&p->out, "<section id=\"steps\"><h2>Steps</h2>");
    if (n > SL_DASH_STEPS_PAGE) {
        sl__dash_out_f(&p->out,
                       "<p class=\"pager\"><span class=\"note\">Steps %zu\xe2\x80\x93%zu "
                       "of %zu</span>",
                       p->steps_from + 1, p->steps_to, n);
        if (p->steps_from > 0)
            steps_link(p,
                       p->steps_from > SL_DASH_STEPS_PAGE ? p->steps_from - SL_DASH_STEPS_PAGE : 0,
                       "\xe2\x86\x90 Previous");
        if (p->steps_to < n)
            steps_link(p, p->steps_to, "Next \xe2\x86\x92");
        sl__dash_out_s(&p->out, "</p>");
    }
    sl__dash_out_s(&p->out,
                   "<div class=\"scroll\"><table class=\"steps\">"
                   "<thead><tr><th>Step</th><th>Kind</th><th>Status</th><th>Items done / total"
                   "</th><th>Ok</th><th>Failed</th><th>Skipped</th><th>Cached</th>"
                   "<th>Retries</th><th>Start</th><th>Duration</th></tr></thead><tbody>");
}

static void write_step(run_page_t *p, const sl_store_step_row_t *s)
{
    sl_dash_out_t *o = &p->out;
    uint64_t done = s->ok + s->failed + s->skipped;
    sl__dash_out_s(o, "<tr data-step=\"");
    sl__dash_out_h(o, s->id);
    sl__dash_out_s(o, "\"><td class=\"step\">");
    sl__dash_out_h(o, s->id);
    sl__dash_out_s(o, "</td><td>");
    sl__dash_out_h(o, s->kind);
    sl__dash_out_s(o, "</td><td class=\"c-status\">");
    sl__dash_out_badge(o, s->status);
    sl__dash_out_f(o,
                   "</td><td class=\"items\"><progress max=\"%llu\" value=\"%llu\"></progress>"
                   " <span class=\"c-done\">%llu</span>/<span class=\"c-total\">%llu</span>"
                   "</td><td class=\"num c-ok\">%llu</td><td class=\"num c-failed\">%llu</td>"
                   "<td class=\"num c-skipped\">%llu</td><td class=\"num\">%llu</td>"
                   "<td class=\"num\">%llu</td><td>",
                   (unsigned long long)(s->total ? s->total : 1), (unsigned long long)done,
                   (unsigned long long)done, (unsigned long long)s->total,
                   (unsigned long long)s->ok, (unsigned long long)s->failed,
                   (unsigned long long)s->skipped, (unsigned long long)s->cached,
                   (unsigned long long)s->retries);
    sl__dash_out_time(o, s->started_ms);
    sl__dash_out_s(o, "</td><td class=\"num\">");
    if (s->started_ms > 0 && s->ended_ms >= s->started_ms)
        sl__dash_out_duration(o, s->ended_ms - s->started_ms);
    sl__dash_out_s(o, "</td></tr>");
}

static void write_failed_open(run_page_t *p, size_t item)
{
    sl__dash_out_f(&p->out,
                   "<section><h2>Failed tasks <span class=\"count\" id=\"failed-count\">%zu"
                   "%s</span></h2><div class=\"scroll\"><table class=\"failed\"><thead><tr>"
                   "<th>Step</th><th>Item</th><th>Attempts</th><th>Error</th></tr></thead>"
                   "<tbody id=\"failed-list\">",
                   p->run->failed_count, p->run->failed_more ? "+" : "");
}

static void write_failed(run_page_t *p, const sl_store_task_row_t *t)
{
    sl_dash_out_t *o = &p->out;
    sl__dash_out_s(o, "<tr><td>");
    sl__dash_out_h(o, t->step_id);
    sl__dash_out_f(o,
                   "</td><td class=\"num\">%lld</td><td class=\"num\">%u</td>"
                   "<td class=\"error-text\">",
                   (long long)t->item + 1, (unsigned)t->attempts); /* items from 1 */
    sl__dash_out_h(o, t->error);
    sl__dash_out_s(o, "</td></tr>");
}

static void write_failed_close(run_page_t *p, size_t item)
{
    sl_dash_out_t *o = &p->out;
    sl__dash_out_s(o, "</tbody></table></div>");
    if (p->run->failed_count == 0)
        sl__dash_out_s(o, "<p class=\"empty\" id=\"failed-none\">No task failed.</p>");
    if (p->run->failed_more)
        sl__dash_out_f(o, "<p class=\"note\">Only the first %d are shown.</p>", SL_DASH_FAILED_MAX);
    sl__dash_out_s(o, "</section>");
}

static void write_log_line(run_page_t *p, const sl_store_log_row_t *l)
{
    sl_dash_out_t *o = &p->out;
    time_t t = (time_t)(l->time_ms / 1000);
    struct tm tm;
    char clock[16] = "";
    if (gmtime_r(&t, &tm) != NULL)
        strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    sl__dash_out_f(o, "<span class=\"t\">%s.%03d</span> <span class=\"lv-%s\">", clock,
                   (int)(l->time_ms % 1000), sl__dash_status_class(l->level));
    sl__dash_out_h(o, l->level);
    sl__dash_out_s(o, "</span> ");
    if (l->where && *l->where) {
        sl__dash_out_h(o, l->where);
        sl__dash_out_s(o, ": ");
    }
    sl__dash_out_h(o, l->message);
    sl__dash_out_s(o, "\n");
}

/* ---- streaming ------------------------------------------------------------------------ */

/* ---- the sections, in order: each one piece, or `count` items -------------------------- */

static void nodes_open(run_page_t *p, size_t item)
{
    sl__dash_out_s(&p->out, "</g><g class=\"nodes\">");
}

static size_t drawn_count(const run_page_t *p)
{
    return p->layout.count;
}

static void graph_close(run_page_t *p, size_t item)
{
    sl__dash_out_s(&p->out, "</g></svg></div></section>");
}

static size_t gantt_count(const run_page_t *p)
{
    return p->gantt_count;
}

static void gantt_close(run_page_t *p, size_t item)
{
    if (p->gantt_count < p->run->step_count && p->gantt_count == SL_DASH_GANTT_MAX)
        sl__dash_out_f(&p->out,
                       "</svg></div><p class=\"note\">The timeline shows the first %d steps."
                       "</p></section>",
                       SL_DASH_GANTT_MAX);
    else
        sl__dash_out_s(&p->out, p->gantt_count ? "</svg></div></section>" : "</section>");
}

static size_t steps_count(const run_page_t *p)
{
    return p->steps_to - p->steps_from;
}

static void step_item(run_page_t *p, size_t item)
{
    write_step(p, &p->run->steps[p->steps_from + item].row);
}

static void steps_close(run_page_t *p, size_t item)
{
    sl__dash_out_s(&p->out, "</tbody></table></div></section>");
}

static size_t failed_count(const run_page_t *p)
{
    return p->run->failed_count;
}

static void failed_item(run_page_t *p, size_t item)
{
    write_failed(p, &p->run->failed[item].row);
}

static void log_open(run_page_t *p, size_t item)
{
    sl__dash_out_s(&p->out, p->run->log_count ? "<section><h2>Log</h2><pre class=\"log\">"
                                              : "<section><h2>Log</h2><p class=\"empty\">"
                                                "No log lines.</p>");
}

static size_t log_count(const run_page_t *p)
{
    return p->run->log_count;
}

static void log_item(run_page_t *p, size_t item)
{
    write_log_line(p, &p->run->logs[item].row);
}

static void log_close(run_page_t *p, size_t item)
{
    sl__dash_out_s(&p->out, p->run->log_count ? "</pre></section>" : "</section>");
}

static void page_end(run_page_t *p, size_t item)
{
    sl__dash_page_end(&p->out);
}

static const struct section {
    size_t (*count)(const run_page_t *p); /* NULL: one piece */
    void (*write)(run_page_t *p, size_t item);
} SECTIONS[] = {
    {NULL, write_head},        {NULL, write_graph_open},       {drawn_count, write_edges},
    {NULL, nodes_open},        {drawn_count, write_node},      {NULL, graph_close},
    {NULL, write_gantt_open},  {gantt_count, write_gantt_bar}, {NULL, gantt_close},
    {NULL, write_steps_open},  {steps_count, step_item},       {NULL, steps_close},
    {NULL, write_failed_open}, {failed_count, failed_item},    {NULL, write_failed_close},
    {NULL, log_open},          {log_count, log_item},          {NULL, log_close},
    {NULL, page_end},
};

/* Writes the next piece of the page and moves on. */
static void write_next(run_page_t *p)
{
    const struct section *s = &SECTIONS[p->section];
    if (s->count != NULL && p->at < s->count(p)) {
        s->write(p, p->at++);
        return;
    }
    if (s->count == NULL)
        s->write(p, 0);
    p->section++;
    p->at = 0;
}

static void page_free(run_page_t *p)
{
    sl__dash_out_close(&p->out);
    sl__dash_layout_close(&p->layout);
    sl__dash_run_free(p->run);
    sl__free(p);
}

static void finish(run_page_t *p)
{
    sl__http_end(p->ex);
    page_free(p);
}

static void pump(void *ud);

static void drained(void *ud)
{
    run_page_t *p = ud;
    p->waiting = false;
    pump(p);
}

/* Writes until the page is done, the client is gone, or the socket holds HIGH_WATER. */
static void pump(void *ud)
{
    run_page_t *p = ud;
    while (p->section < SL_COUNTOF(SECTIONS) && !p->gone && !p->out.gone) {
        if (p->out.buf.len > 0 && sl__dash_out_pending(&p->out) >= SL_HTTP_HIGH_WATER)
            sl__dash_out_flush(&p->out);
        if (sl__http_queued(p->ex) >= SL_HTTP_HIGH_WATER) {
            p->waiting = true;
            sl__http_on_drain(p->ex, drained, p);
            return;
        }
        write_next(p);
    }
    sl__dash_out_flush(&p->out);
    finish(p);
}

static void gone(void *ud)
{
    run_page_t *p = ud;
    p->gone = true;
    if (p->waiting) /* no drain will come: end here */
        finish(p);
}

static void run_after(sl_dash_work_t *w)
{
    run_page_t *p = w->ud;
    if (p->gone) {
        finish(p);
        return;
    }
    if (w->rc < 0) {
        bool missing = w->rc == SL_ENOTFOUND;
        sl__dash_page_error(p->ex, missing ? 404 : 500,
                            missing     ? "no such run"
                            : w->err[0] ? w->err
                                        : "cannot read the run");
        page_free(p);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    sl__dash_out_init(&p->out, p->ex);
    char title[160];
    snprintf(title, sizeof title, "Run %s", p->run->run.id);
    sl__dash_page_begin(&p->out, 200, title, "run");
    pump(p);
}

void sl__dash_run_page(sl_dash_t *dash, sl_http_exchange_t *ex, const char *ref, size_t steps_from)
{
    run_page_t *p = sl__calloc(1, sizeof(*p));
    if (p == NULL || strlen(ref) >= sizeof p->ref) {
        sl__free(p);
        sl__dash_page_error(ex, p == NULL ? 503 : 404, p == NULL ? "out of memory" : "no such run");
        return;
    }
    p->ex = ex;
    p->steps_from = steps_from;
    snprintf(p->ref, sizeof p->ref, "%s", ref);
    p->w.run = run_work;
    p->w.after = run_after;
    p->w.ud = p;
    if (sl__dash_submit(dash, &p->w) < 0) {
        sl__free(p);
        sl__dash_page_error(ex, 503, "cannot read the state now");
        return;
    }
    sl__http_on_gone(ex, gone, p);
}
