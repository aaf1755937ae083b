/*
 * The dashboard's HTML pages (SPEC §5 `--http`, docs/dashboard.md): the runs at `/`
 * (filters by workflow and status in a plain form, paged on the server with `before` and
 * `limit`), a workflow at /workflows/NAME (its schedule, next ticks, policies and recent
 * runs) and the assets under /static/ (compiled in: cmake/embed.cmake). The run page is in
 * runpage.c. Pages are never cached and carry a CSP of `default-src 'self'` (no inline
 * script or style: app.js and app.css do everything); every text from the database or a
 * request is escaped. Reads of the store run in the threadpool (sl__dash_submit); the
 * daemon's workflows are read on the loop. Loop thread unless named _work.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron/cron.h"
#include "dash/pages.h"

#define OUT_MAX (4u * 1024 * 1024) /* a piece never nears it: flushed every 16 KiB */

/* ---- writing ---------------------------------------------------------------------------- */

void sl__dash_out_init(sl_dash_out_t *o, sl_http_exchange_t *ex)
{
    o->ex = ex;
    o->gone = false;
    sl__buf_init(&o->buf, OUT_MAX);
}

void sl__dash_out_close(sl_dash_out_t *o)
{
    sl__buf_close(&o->buf);
}

void sl__dash_out_flush(sl_dash_out_t *o)
{
    if (o->buf.len > 0 && !o->gone && sl__http_write(o->ex, o->buf.data, o->buf.len) < 0)
        o->gone = true;
    sl__buf_reset(&o->buf);
}

size_t sl__dash_out_pending(const sl_dash_out_t *o)
{
    return o->buf.len + sl__http_queued(o->ex);
}

static void out_bytes(sl_dash_out_t *o, const char *data, size_t len)
{
    if (sl__buf_add(&o->buf, data, len) < 0) {
        sl__dash_out_flush(o);
        if (len < OUT_MAX && sl__buf_add(&o->buf, data, len) < 0)
            o->gone = true; /* out of memory: the page cannot be finished */
    }
    if (o->buf.len >= SL_DASH_OUT_PIECE)
        sl__dash_out_flush(o);
}

void sl__dash_out_s(sl_dash_out_t *o, const char *raw)
{
    out_bytes(o, raw, strlen(raw));
}

void sl__dash_out_f(sl_dash_out_t *o, const char *fmt, ...)
{
    char piece[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(piece, sizeof piece, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_bytes(o, piece, (size_t)n < sizeof piece ? (size_t)n : sizeof piece - 1);
}

/* Escapes one text, at most `max` characters of it (SIZE_MAX: all). */
static void out_escaped(sl_dash_out_t *o, const char *text, size_t max)
{
    size_t len = strlen(text), at = 0, chars = 0;
    while (at < len) {
        if (chars++ == max) {
            out_bytes(o, "\xe2\x80\xa6", 3); /* … */
            return;
        }
        const char *entity = NULL;
        switch (text[at]) {
        case '&':
            entity = "&amp;";
            break;
        case '<':
            entity = "&lt;";
            break;
        case '>':
            entity = "&gt;";
            break;
        case '"':
            entity = "&quot;";
            break;
        case '\'':
            entity = "&#39;";
            break;
        default:
            break;
        }
        if (entity != NULL) {
            out_bytes(o, entity, strlen(entity));
            at++;
            continue;
        }
        size_t step = sl__utf8_next(text + at, len - at);
        if (step == 0) {
            out_bytes(o, "\xef\xbf\xbd", 3); /* U+FFFD */
            at++;
        } else {
            out_bytes(o, text + at, step);
            at += step;
        }
    }
}

void sl__dash_out_h(sl_dash_out_t *o, const char *text)
{
    if (text != NULL)
        out_escaped(o, text, SIZE_MAX);
}

void sl__dash_out_h_cut(sl_dash_out_t *o, const char *text, size_t max)
{
    if (text != NULL)
        out_escaped(o, text, max);
}

void sl__dash_out_url(sl_dash_out_t *o, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char piece[3] = {(char)*p, 0, 0};
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;
        if (plain) {
            out_bytes(o, piece, 1);
            continue;
        }
        piece[0] = '%';
        piece[1] = hex[*p >> 4];
        piece[2] = hex[*p & 15];
        out_bytes(o, piece, 3);
    }
}

void sl__dash_out_link(sl_dash_out_t *o, const char *attrs, const char *path, const char *name)
{
    sl__dash_out_s(o, "<a ");
    if (attrs) {
        sl__dash_out_s(o, attrs);
        sl__dash_out_s(o, " ");
    }
    sl__dash_out_s(o, "href=\"");
    sl__dash_out_s(o, path);
    sl__dash_out_url(o, name);
    sl__dash_out_s(o, "\">");
    sl__dash_out_h(o, name);
    sl__dash_out_s(o, "</a>");
}

void sl__dash_out_time(sl_dash_out_t *o, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || gmtime_r(&t, &tm) == NULL) {
        sl__dash_out_s(o, "\xe2\x80\x93");
        return;
    }
    char iso[32], shown[32];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(shown, sizeof shown, "%Y-%m-%d %H:%M:%S", &tm);
    sl__dash_out_f(o, "<time datetime=\"%s\">%s</time>", iso, shown);
}

void sl__dash_out_duration(sl_dash_out_t *o, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        sl__dash_out_f(o, "%lld ms", (long long)ms);
    else if (ms < 60000)
        sl__dash_out_f(o, "%.1f s", (double)ms / 1000);
    else if (ms < 3600000)
        sl__dash_out_f(o, "%lld min %lld s", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else
        sl__dash_out_f(o, "%lld h %lld min", (long long)(ms / 3600000),
                       (long long)(ms / 60000 % 60));
}

/* The class of a status: known ones by name, anything else "other" (never the text). */
const char *sl__dash_status_class(const char *status)
{
    static const char *const known[] = {"succeeded", "failed",  "running",  "interrupted", "ok",
                                        "partial",   "skipped", "canceled", "pending",     "queued",
                                        "error",     "warn",    "info",     "debug"};
    for (size_t i = 0; status != NULL && i < SL_COUNTOF(known); i++) {
        if (strcmp(status, known[i]) == 0)
            return known[i];
    }
    return "other";
}

void sl__dash_out_badge(sl_dash_out_t *o, const char *status)
{
    sl__dash_out_f(o, "<span class=\"badge st-%s\">", sl__dash_status_class(status));
    sl__dash_out_h(o, status && *status ? status : "unknown");
    sl__dash_out_s(o, "</span>");
}

/* ---- a page's frame (http/ adds X-Content-Type-Options: nosniff to every response)
 * --------------------------------------------------------------------- */

static const sl_dash_asset_t *asset_named(const char *name)
{
    for (size_t i = 0; i < sl__dash_asset_count; i++) {
        if (strcmp(sl__dash_assets[i].name, name) == 0)
            return &sl__dash_assets[i];
    }
    return NULL;
}

static void security_headers(sl_http_exchange_t *ex)
{
    sl__http_header(ex, "Content-Security-Policy",
                    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'");
    sl__http_header(ex, "Referrer-Policy", "no-referrer");
}

void sl__dash_page_begin(sl_dash_out_t *o, int status, const char *title, const char *page)
{
    sl__http_header(o->ex, "Cache-Control", "no-store");
    security_headers(o->ex);
    sl__http_begin(o->ex, status, "text/html; charset=utf-8");
    const sl_dash_asset_t *css = asset_named("app.css"), *js = asset_named("app.js");
    const sl_dash_asset_t *icon = asset_named("favicon.svg");
    sl__dash_out_s(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                      "<title>");
    sl__dash_out_h(o, title);
    sl__dash_out_s(o, " \xc2\xb7 sluice</title>");
    sl__dash_out_f(o, "<link rel=\"stylesheet\" href=\"/static/app.css?v=%s\">",
                   css ? css->hash : "0");
    sl__dash_out_f(o,
                   "<link rel=\"icon\" type=\"image/svg+xml\" href=\"/static/favicon.svg?v=%s\">",
                   icon ? icon->hash : "0");
    sl__dash_out_f(o, "<script src=\"/static/app.js?v=%s\" defer></script>", js ? js->hash : "0");
    sl__dash_out_f(o, "</head><body data-page=\"%s\">", page);
    sl__dash_out_s(o, "<header class=\"top\"><a class=\"brand\" href=\"/\">sluice</a>"
                      "<nav><a href=\"/\">Runs</a><a href=\"/api/runs\">API</a>"
                      "<a href=\"/metrics\">Metrics</a></nav></header><main>");
}

void sl__dash_page_end(sl_dash_out_t *o)
{
    sl__dash_out_s(o, "</main><footer>sluice dashboard \xc2\xb7 read-only \xc2\xb7 times in UTC"
                      "</footer></body></html>\n");
    sl__dash_out_flush(o);
}

void sl__dash_page_error(sl_http_exchange_t *ex, int status, const char *message)
{
    sl_dash_out_t o;
    sl__dash_out_init(&o, ex);
    sl__dash_page_begin(&o, status, status == 404 ? "Not found" : "Error", "error");
    sl__dash_out_f(&o, "<h1>%d</h1><p class=\"error-text\">", status);
    sl__dash_out_h(&o, message);
    sl__dash_out_s(&o, "</p><p><a href=\"/\">All runs</a></p>");
    sl__dash_page_end(&o);
    sl__dash_out_close(&o);
    sl__http_end(ex);
}

static void serve_asset(sl_http_exchange_t *ex, const char *name)
{
    const sl_dash_asset_t *a = asset_named(name);
    if (a == NULL) {
        sl__dash_page_error(ex, 404, "no such file");
        return;
    }
    char etag[32];
    snprintf(etag, sizeof etag, "\"%s\"", a->hash);
    /* Pages link NAME?v=HASH: a changed asset is a new URL, so a year is safe. */
    sl__http_header(ex, "Cache-Control", "public, max-age=31536000, immutable");
    sl__http_header(ex, "ETag", etag);
    security_headers(ex);
    sl__http_respond(ex, 200, a->content_type, a->data, a->len);
}

/* ---- the runs: `/` --------------------------------------------------------------------- */

typedef struct runs_page {
    sl_dash_work_t w;
    sl_http_exchange_t *ex;
    bool gone;
    char workflow[256], status[32];
    int64_t before;
    uint32_t limit;
    sl_store_run_row_t *rows; /* limit + 1: the one past tells there is an older page */
    size_t count;
    bool no_state;
} runs_page_t;

static void page_gone(void *ud)
{
    *(bool *)ud = true;
}

static int runs_row_work(void *ud, const sl_store_run_row_t *row)
{
    runs_page_t *p = ud;
    p->rows[p->count++] = *row;
    return p->count > p->limit;
}

static void runs_work(sl_dash_work_t *w, sl_store_t *store)
{
    runs_page_t *p = w->ud;
    if (store == NULL) {
        p->no_state = true;
        return;
    }
    sl_store_filter_t filter = {
        .workflow = p->workflow[0] ? p->workflow : NULL,
        .status = p->status[0] ? p->status : NULL,
        .before_seq = p->before,
        .limit = p->limit + 1,
    };
    w->rc = sl__store_list_runs(store, &filter, runs_row_work, p, w->err, sizeof w->err);
}

/* The filter form: plain GET, so it works without JavaScript. */
static void runs_form(sl_dash_out_t *o, const runs_page_t *p)
{
    static const char *const statuses[] = {"running", "succeeded", "failed", "interrupted"};
    sl__dash_out_s(o, "<form class=\"filters\" method=\"get\" action=\"/\">"
                      "<label>Workflow <input name=\"workflow\" value=\"");
    sl__dash_out_h(o, p->workflow);
    sl__dash_out_s(o, "\" placeholder=\"any\"></label><label>Status <select name=\"status\">"
                      "<option value=\"\">any</option>");
    for (size_t i = 0; i < SL_COUNTOF(statuses); i++)
        sl__dash_out_f(o, "<option%s>%s</option>",
                       strcmp(p->status, statuses[i]) == 0 ? " selected" : "", statuses[i]);
    sl__dash_out_f(o,
                   "</select></label><input type=\"hidden\" name=\"limit\" value=\"%u\">"
                   "<button type=\"submit\">Filter</button></form>",
                   (unsigned)p->limit);
}

static void runs_row(sl_dash_out_t *o, const sl_store_run_row_t *r)
{
    sl__dash_out_s(o, "<tr data-run=\"");
    sl__dash_out_h(o, r->id);
    sl__dash_out_s(o, "\"><td>");
    sl__dash_out_link(o, "class=\"run-id\"", "/runs/", r->id);
    sl__dash_out_s(o, "</td><td>");
    sl__dash_out_link(o, NULL, "/workflows/", r->workflow);
    sl__dash_out_s(o, "</td><td>");
    sl__dash_out_h(o, r->trigger);
    sl__dash_out_s(o, "</td><td>");
    sl__dash_out_time(o, r->started_ms);
    sl__dash_out_s(o, "</td><td class=\"num\">");
    if (r->finished_ms > 0)
        sl__dash_out_duration(o, r->finished_ms - r->started_ms);
    else
        sl__dash_out_s(o, "\xe2\x80\xa6");
    sl__dash_out_s(o, "</td><td>");
    sl__dash_out_badge(o, r->status);
    sl__dash_out_f(o,
                   "</td><td class=\"num\"><span class=\"ok\">%llu</span> / "
                   "<span class=\"bad\">%llu</span></td></tr>",
                   (unsigned long long)r->tasks_ok, (unsigned long long)r->tasks_failed);
}

/* A link to the page of runs older than `before`, keeping the filters. */
static void runs_link(sl_dash_out_t *o, const runs_page_t *p, int64_t before, const char *text)
{
    sl__dash_out_s(o, "<a class=\"page\" href=\"/?workflow=");
    sl__dash_out_url(o, p->workflow);
    sl__dash_out_s(o, "&amp;status=");
    sl__dash_out_url(o, p->status);
    sl__dash_out_f(o, "&amp;limit=%u", (unsigned)p->limit);
    if (before > 0)
        sl__dash_out_f(o, "&amp;before=%lld", (long long)before);
    sl__dash_out_f(o, "\">%s</a>", text);
}

static void runs_after(sl_dash_work_t *w)
{
    runs_page_t *p = w->ud;
    if (p->gone) {
        sl__http_end(p->ex);
    } else if (w->rc < 0) {
        sl__dash_page_error(p->ex, 500, w->err[0] ? w->err : "cannot read the state");
    } else {
        sl_dash_out_t o;
        sl__dash_out_init(&o, p->ex);
        sl__dash_page_begin(&o, 200, "Runs", "runs");
        sl__dash_out_s(&o, "<h1>Runs</h1>");
        runs_form(&o, p);
        size_t shown = p->count > p->limit ? p->limit : p->count;
        if (p->no_state || shown == 0) {
            sl__dash_out_s(&o, p->no_state ? "<p class=\"empty\">No runs recorded yet.</p>"
                                           : "<p class=\"empty\">No runs match.</p>");
        } else {
            sl__dash_out_s(&o, "<div class=\"scroll\"><table class=\"runs\"><thead><tr>"
                               "<th>Run</th><th>Workflow</th><th>Trigger</th><th>Start</th>"
                               "<th>Duration</th><th>Status</th><th>Tasks ok / failed</th>"
                               "</tr></thead><tbody>");
            for (size_t i = 0; i < shown; i++)
                runs_row(&o, &p->rows[i]);
            sl__dash_out_s(&o, "</tbody></table></div>");
        }
        sl__dash_out_s(&o, "<p class=\"pager\">");
        if (p->before > 0)
            runs_link(&o, p, 0, "Newest");
        if (p->count > p->limit)
            runs_link(&o, p, p->rows[shown - 1].seq, "Older \xe2\x86\x92");
        sl__dash_out_s(&o, "</p>");
        sl__dash_page_end(&o);
        sl__dash_out_close(&o);
        sl__http_end(p->ex);
    }
    sl__free(p->rows);
    sl__free(p);
}

/* A positive integer query parameter in [1, max]; `fallback` when absent. -1: bad. */
static int64_t query_number(const sl_http_request_t *req, const char *key, int64_t fallback,
                            int64_t max)
{
    char text[32], *end = NULL;
    int n = sl__http_query(req, key, text, sizeof text);
    if (n == -1 || n == 0)
        return fallback;
    if (n < 0)
        return -1;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0' || v < 1 || v > max)
        return -1;
    return v;
}

/* A query parameter that is a number from 0: 0 when absent, -1 when bad. */
static int64_t query_offset(const sl_http_request_t *req, const char *key)
{
    char text[32], *end = NULL;
    int n = sl__http_query(req, key, text, sizeof text);
    if (n == -1)
        return 0;
    if (n <= 0 || text[0] < '0' || text[0] > '9')
        return -1;
    long long v = strtoll(text, &end, 10);
    return *end == '\0' && v >= 0 && v < INT64_MAX ? v : -1;
}

static void runs_page(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    runs_page_t *p = sl__calloc(1, sizeof(*p));
    if (p == NULL) {
        sl__dash_page_error(ex, 503, "out of memory");
        return;
    }
    p->ex = ex;
    int64_t limit = query_number(req, "limit", SL_DASH_PAGE_DEFAULT, SL_DASH_PAGE_MAX);
    p->before = query_number(req, "before", 0, INT64_MAX);
    bool bad = sl__http_query(req, "workflow", p->workflow, sizeof p->workflow) < -1 ||
               sl__http_query(req, "status", p->status, sizeof p->status) < -1;
    if (limit < 0 || p->before < 0 || bad) {
        sl__free(p);
        sl__dash_page_error(ex, 400, "bad query: limit is 1 to 500, before a run's number");
        return;
    }
    p->limit = (uint32_t)limit;
    p->rows = sl__calloc(p->limit + 1, sizeof(sl_store_run_row_t));
    p->w.run = runs_work;
    p->w.after = runs_after;
    p->w.ud = p;
    if (p->rows == NULL || sl__dash_submit(dash, &p->w) < 0) {
        sl__free(p->rows);
        sl__free(p);
        sl__dash_page_error(ex, 503, "cannot read the state now");
        return;
    }
    sl__http_on_gone(ex, page_gone, &p->gone);
}

/* ---- a workflow: /workflows/NAME -------------------------------------------------------- */

#define NEXT_TICKS 5
#define RECENT_RUNS 20

typedef struct wf_page {
    sl_dash_work_t w;
    sl_http_exchange_t *ex;
    bool gone;
    char name[256];
    bool served; /* the daemon serves it */
    char path[1024];
    char crons[1024]; /* its expressions, one a line */
    char timezone[128];
    const char *concurrency, *missed;
    int64_t catchup_ms, jitter_ms, last_tick;
    size_t active, tick_count;
    bool held, removed, scheduled;
    char ticks[NEXT_TICKS][40];
    sl_store_run_row_t rows[RECENT_RUNS];
    size_t count;
    bool no_state;
} wf_page_t;

static const char *concurrency_name(sl_sched_concurrency_t c)
{
    switch (c) {
    case SL_CONCURRENCY_ALLOW:
        return "allow";
    case SL_CONCURRENCY_REPLACE:
        return "replace";
    case SL_CONCURRENCY_QUEUE:
        return "queue";
    default:
        return "forbid";
    }
}

static const char *missed_name(sl_missed_t m)
{
    return m == SL_MISSED_ALL ? "all" : m == SL_MISSED_NONE ? "none" : "last";
}

static void wf_schedule(wf_page_t *p, const sl_serve_workflow_info_t *info)
{
    const sl_schedule_t *def = info->def;
    size_t at = 0;
    for (size_t i = 0; i < def->cron_count && at < sizeof p->crons; i++) {
        int n = snprintf(p->crons + at, sizeof p->crons - at, "%s%s", i ? "\n" : "", def->cron[i]);
        at += n > 0 ? (size_t)n : 0;
    }
    snprintf(p->timezone, sizeof p->timezone, "%s", def->timezone ? def->timezone : "UTC");
    p->concurrency = concurrency_name(def->concurrency);
    p->missed = missed_name(def->missed);
    p->catchup_ms = def->catchup_ms;
    p->jitter_ms = def->jitter_ms;
    if (info->sched == NULL || info->sched->count == 0)
        return;
    p->scheduled = true;
    int64_t from = (int64_t)time(NULL);
    if (info->last_tick > from)
        from = info->last_tick;
    for (size_t i = 0; i < NEXT_TICKS; i++) {
        int64_t next;
        if (sl__serve_next(info->sched, from, &next) < 0 ||
            sl__time_format_tz(next, info->sched->tz, p->ticks[i], sizeof p->ticks[i]) < 0)
            break;
        p->tick_count++;
        from = next;
    }
}

static void wf_info(void *ud, const sl_serve_workflow_info_t *info)
{
    wf_page_t *p = ud;
    if (p->served || info->name == NULL || strcmp(info->name, p->name) != 0)
        return;
    p->served = true;
    snprintf(p->path, sizeof p->path, "%s", info->path ? info->path : "");
    p->last_tick = info->last_tick;
    p->active = info->active;
    p->held = info->held;
    p->removed = info->removed;
    if (info->def != NULL && info->def->present)
        wf_schedule(p, info);
}

static int wf_row_work(void *ud, const sl_store_run_row_t *row)
{
    wf_page_t *p = ud;
    p->rows[p->count++] = *row;
    return p->count >= RECENT_RUNS;
}

static void wf_work(sl_dash_work_t *w, sl_store_t *store)
{
    wf_page_t *p = w->ud;
    if (store == NULL) {
        p->no_state = true;
        return;
    }
    sl_store_filter_t filter = {.workflow = p->name, .limit = RECENT_RUNS};
    w->rc = sl__store_list_runs(store, &filter, wf_row_work, p, w->err, sizeof w->err);
}

static void wf_dt(sl_dash_out_t *o, const char *term, const char *value)
{
    sl__dash_out_f(o, "<dt>%s</dt><dd>", term);
    sl__dash_out_h(o, value);
    sl__dash_out_s(o, "</dd>");
}

static void wf_schedule_html(sl_dash_out_t *o, const wf_page_t *p)
{
    sl__dash_out_s(o, "<section><h2>Schedule</h2>");
    if (!p->served) {
        sl__dash_out_s(o, "<p class=\"empty\">Not served by this daemon: only its recorded "
                          "runs are known.</p></section>");
        return;
    }
    sl__dash_out_s(o, "<dl class=\"facts\">");
    wf_dt(o, "File", p->path);
    if (p->crons[0] == '\0') {
        sl__dash_out_s(o, "</dl><p class=\"empty\">No schedule: runs only when started."
                          "</p></section>");
        return;
    }
    sl__dash_out_s(o, "<dt>Cron</dt><dd><code class=\"cron\">");
    sl__dash_out_h(o, p->crons);
    sl__dash_out_s(o, "</code></dd>");
    wf_dt(o, "Timezone", p->timezone);
    wf_dt(o, "Concurrency", p->concurrency);
    wf_dt(o, "Missed ticks", p->missed);
    sl__dash_out_s(o, "<dt>Catch-up</dt><dd>");
    sl__dash_out_duration(o, p->catchup_ms);
    sl__dash_out_s(o, "</dd><dt>Jitter</dt><dd>");
    sl__dash_out_duration(o, p->jitter_ms);
    sl__dash_out_s(o, "</dd><dt>Last tick</dt><dd>");
    sl__dash_out_time(o, p->last_tick * 1000);
    sl__dash_out_f(o,
                   "</dd><dt>Runs going</dt><dd>%zu</dd><dt>Scheduled here</dt><dd>%s</dd>"
                   "</dl>",
                   p->active,
                   p->removed ? "no (its file is gone)"
                   : p->held  ? "yes (this daemon holds its lease)"
                              : "no (another daemon holds its lease)");
    sl__dash_out_s(o, "<h3>Next ticks</h3><ol class=\"ticks\">");
    for (size_t i = 0; i < p->tick_count; i++) {
        sl__dash_out_s(o, "<li><time>");
        sl__dash_out_h(o, p->ticks[i]);
        sl__dash_out_s(o, "</time></li>");
    }
    sl__dash_out_s(o, "</ol></section>");
}

static void wf_after(sl_dash_work_t *w)
{
    wf_page_t *p = w->ud;
    if (p->gone) {
        sl__http_end(p->ex);
    } else if (w->rc < 0) {
        sl__dash_page_error(p->ex, 500, w->err[0] ? w->err : "cannot read the state");
    } else if (!p->served && p->count == 0) {
        sl__dash_page_error(p->ex, 404, "no such workflow");
    } else {
        sl_dash_out_t o;
        sl__dash_out_init(&o, p->ex);
        sl__dash_page_begin(&o, 200, p->name, "workflow");
        sl__dash_out_s(&o, "<h1>Workflow <span class=\"name\">");
        sl__dash_out_h(&o, p->name);
        sl__dash_out_s(&o, "</span></h1>");
        wf_schedule_html(&o, p);
        sl__dash_out_s(&o, "<section><h2>Recent runs</h2>");
        if (p->count == 0) {
            sl__dash_out_s(&o, "<p class=\"empty\">No runs recorded yet.</p>");
        } else {
            sl__dash_out_s(&o, "<div class=\"scroll\"><table class=\"runs\"><thead><tr>"
                               "<th>Run</th><th>Workflow</th><th>Trigger</th><th>Start</th>"
                               "<th>Duration</th><th>Status</th><th>Tasks ok / failed</th>"
                               "</tr></thead><tbody>");
            for (size_t i = 0; i < p->count; i++)
                runs_row(&o, &p->rows[i]);
            sl__dash_out_s(&o, "</tbody></table></div><p><a href=\"/?workflow=");
            sl__dash_out_url(&o, p->name);
            sl__dash_out_s(&o, "\">All its runs</a></p>");
        }
        sl__dash_out_s(&o, "</section>");
        sl__dash_page_end(&o);
        sl__dash_out_close(&o);
        sl__http_end(p->ex);
    }
    sl__free(p);
}

static void workflow_page(sl_dash_t *dash, sl_http_exchange_t *ex, const char *name)
{
    wf_page_t *p = sl__calloc(1, sizeof(*p));
    if (p == NULL || strlen(name) >= sizeof p->name) {
        sl__free(p);
        sl__dash_page_error(ex, p == NULL ? 503 : 404,
                            p == NULL ? "out of memory" : "no such workflow");
        return;
    }
    p->ex = ex;
    snprintf(p->name, sizeof p->name, "%s", name);
    if (dash->daemon != NULL)
        sl__serve_workflows(dash->daemon, wf_info, p);
    p->w.run = wf_work;
    p->w.after = wf_after;
    p->w.ud = p;
    if (sl__dash_submit(dash, &p->w) < 0) {
        sl__free(p);
        sl__dash_page_error(ex, 503, "cannot read the state now");
        return;
    }
    sl__http_on_gone(ex, page_gone, &p->gone);
}

/* ---- routing ---------------------------------------------------------------------------- */

bool sl__dash_pages(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    const char *path = req->path;
    if (strcmp(path, "/") == 0) {
        runs_page(dash, ex, req);
    } else if (strncmp(path, "/runs/", 6) == 0 && path[6] && !strchr(path + 6, '/')) {
        int64_t from = query_offset(req, "steps");
        if (from < 0)
            sl__dash_page_error(ex, 400, "bad query: steps is a step's number from 0");
        else
            sl__dash_run_page(dash, ex, path + 6, (size_t)from);
    } else if (strncmp(path, "/workflows/", 11) == 0 && path[11] && !strchr(path + 11, '/')) {
        workflow_page(dash, ex, path + 11);
    } else if (strncmp(path, "/static/", 8) == 0) {
        serve_asset(ex, path + 8);
    } else {
        return false;
    }
    return true;
}
