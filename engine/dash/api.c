/*
 * The dashboard's JSON API (docs/dashboard-api.md): /api/runs (filters and paging),
 * /api/runs/RUN, /api/runs/RUN/graph, /api/workflows, /api/workflows/NAME. Each request
 * reads the database once in the threadpool (dash.c's sl__dash_submit) into a job, then
 * the answer is written from the job in pieces while the socket drains (a run of 10,000
 * steps is never one string). The fields are those of `sluice runs/show --json`
 * (store/json.c), with a few more named in the docs. Read-only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"
#include "dash/internal.h"

#define API_PIECE (64u * 1024)  /* bytes of JSON put together before a write */
#define API_REF_MAX 128         /* a run id or a workflow name in a path */
#define API_NEXT_TICKS 5        /* next ticks shown per schedule */
#define API_WORKFLOW_RUNS 20    /* runs shown with one workflow */
#define API_WORKFLOWS_MAX 20000 /* workflows listed (the daemon's and the store's) */

typedef enum { OUT_RUNS, OUT_RUN, OUT_GRAPH, OUT_WORKFLOWS, OUT_WORKFLOW } out_kind_t;

/* A workflow as /api/workflows shows it: the daemon's view (copied on the loop), then
 * what the store knows (filled in the threadpool). */
typedef struct wf_info {
    char *name, *path, *timezone, *hash;
    char **cron;
    size_t cron_count;
    const char *concurrency, *missed;
    int64_t catchup_ms, jitter_ms;
    char next[API_NEXT_TICKS][48];
    size_t next_count;
    char last_tick[48];
    size_t active;
    bool served, held, removed;
    int64_t updated_ms; /* its latest recorded run's start; 0: none */
} wf_info_t;

typedef struct api_job api_job_t;

/* One list of the answer: `open`, its items (each written by `item`), `close`. */
typedef struct section {
    const char *open, *close;
    size_t count;
    int (*item)(api_job_t *j, size_t i, sl_buf_t *b);
} section_t;

struct api_job {
    sl_dash_work_t w;
    sl_http_exchange_t *ex;
    out_kind_t kind;
    bool gone, waiting, ended;
    int status; /* of an error answer */
    /* the request */
    char ref[API_REF_MAX];
    char before[API_REF_MAX];
    char workflow[256];
    char status_filter[16];
    uint32_t limit;
    /* what was read */
    sl_store_run_row_t *runs;
    size_t run_count, run_cap;
    bool more;
    sl_dash_run_t *run;
    size_t *edge_from, *edge_to; /* step indices */
    size_t edge_count;
    wf_info_t *wfs;
    size_t wf_count, wf_cap;
    /* the answer, in pieces */
    sl_buf_t head, tail, piece;
    section_t sections[4];
    size_t section_count, section_at, item_at;
    bool head_done, opened;
};

/* ---- JSON pieces ----------------------------------------------------------------------- */

static int add_value(sl_buf_t *b, sl_value_t *v)
{
    int rc = v ? sl__value_json_append(b, v, 0) : SL_ENOMEM;
    sl_value_free(v);
    return rc;
}

/* A map's JSON without its closing brace, so that more fields can follow. */
static int add_open_map(sl_buf_t *b, sl_value_t *v)
{
    int rc = add_value(b, v);
    if (rc == 0 && b->len && b->data[b->len - 1] == '}')
        b->data[--b->len] = '\0';
    return rc;
}

static int add_str(sl_buf_t *b, const char *s)
{
    sl_value_t *v = s ? sl_value_cstring(s) : sl_value_nil();
    return add_value(b, v);
}

static sl_value_t *run_value(const sl_store_run_row_t *r)
{
    sl_value_t *m = sl__store_run_json(r);
    if (m && sl_value_set(m, "seq", sl_value_int(r->seq)) < 0) {
        sl_value_free(m);
        return NULL;
    }
    return m;
}

static int item_run(api_job_t *j, size_t i, sl_buf_t *b)
{
    return add_value(b, run_value(&j->runs[i]));
}

static sl_value_t *needs_value(const sl_dash_step_t *s)
{
    sl_value_t *list = sl_value_list();
    for (size_t i = 0; list && i < s->needs_count; i++)
        if (sl_value_push(list, sl_value_cstring(s->needs[i])) < 0) {
            sl_value_free(list);
            return NULL;
        }
    return list;
}

static int item_step(api_job_t *j, size_t i, sl_buf_t *b)
{
    const sl_dash_step_t *s = &j->run->steps[i];
    sl_value_t *m = sl__store_step_json(&s->row);
    int rc = m ? sl_value_set(m, "needs", needs_value(s)) : SL_ENOMEM;
    if (rc < 0) {
        sl_value_free(m);
        return rc;
    }
    return add_value(b, m);
}

static int item_failed(api_job_t *j, size_t i, sl_buf_t *b)
{
    return add_value(b, sl__store_task_json(&j->run->failed[i].row));
}

static int item_log(api_job_t *j, size_t i, sl_buf_t *b)
{
    return add_value(b, sl__store_log_json(&j->run->logs[i].row));
}

static int item_edge(api_job_t *j, size_t i, sl_buf_t *b)
{
    const sl_dash_step_t *steps = j->run->steps;
    int rc = sl__buf_add(b, "{\"from\":", 8);
    if (rc == 0)
        rc = add_str(b, steps[j->edge_from[i]].row.id);
    if (rc == 0)
        rc = sl__buf_add(b, ",\"to\":", 6);
    if (rc == 0)
        rc = add_str(b, steps[j->edge_to[i]].row.id);
    return rc == 0 ? sl__buf_addc(b, '}') : rc;
}

static int set_strings(sl_value_t *m, const char *key, char **items, size_t count)
{
    sl_value_t *list = sl_value_list();
    int rc = list ? 0 : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = sl_value_push(list, sl_value_cstring(items[i]));
    if (rc < 0) {
        sl_value_free(list);
        return rc;
    }
    return sl_value_set(m, key, list);
}

static sl_value_t *opt_str(const char *s)
{
    return s && *s ? sl_value_cstring(s) : sl_value_nil();
}

static int set_schedule(sl_value_t *m, const wf_info_t *w)
{
    if (!w->served || w->cron_count == 0)
        return sl_value_set(m, "schedule", sl_value_nil());
    sl_value_t *s = sl_value_map();
    int rc = s ? set_strings(s, "cron", w->cron, w->cron_count) : SL_ENOMEM;
    if (rc == 0)
        rc = sl_value_set(s, "timezone", opt_str(w->timezone));
    if (rc == 0)
        rc = sl_value_set(s, "concurrency", opt_str(w->concurrency));
    if (rc == 0)
        rc = sl_value_set(s, "missed", opt_str(w->missed));
    if (rc == 0)
        rc = sl_value_set(s, "catchup_ms", sl_value_int(w->catchup_ms));
    if (rc == 0)
        rc = sl_value_set(s, "jitter_ms", sl_value_int(w->jitter_ms));
    if (rc < 0) {
        sl_value_free(s);
        return rc;
    }
    return sl_value_set(m, "schedule", s);
}

static sl_value_t *workflow_value(const wf_info_t *w)
{
    sl_value_t *m = sl_value_map(), *next = sl_value_list();
    int rc = m && next ? sl_value_set(m, "name", opt_str(w->name)) : SL_ENOMEM;
    if (rc == 0)
        rc = sl_value_set(m, "path", opt_str(w->path));
    if (rc == 0)
        rc = sl_value_set(m, "hash", opt_str(w->hash));
    if (rc == 0)
        rc = sl_value_set(m, "served", sl_value_bool(w->served));
    if (rc == 0)
        rc = set_schedule(m, w);
    for (size_t i = 0; rc == 0 && i < w->next_count; i++)
        rc = sl_value_push(next, sl_value_cstring(w->next[i]));
    rc = rc == 0 ? sl_value_set(m, "next", next) : (sl_value_free(next), rc);
    if (rc == 0)
        rc = sl_value_set(m, "last_tick", opt_str(w->last_tick));
    if (rc == 0)
        rc = sl_value_set(m, "active", sl_value_int((int64_t)w->active));
    if (rc == 0)
        rc = sl_value_set(m, "lease_held", sl_value_bool(w->held));
    if (rc == 0)
        rc = sl_value_set(m, "removed", sl_value_bool(w->removed));
    char when[32];
    sl__store_format_time(w->updated_ms, when, sizeof when);
    if (rc == 0)
        rc = sl_value_set(m, "last_run", w->updated_ms > 0 ? sl_value_cstring(when)
                                                           : sl_value_nil());
    if (rc < 0) {
        sl_value_free(m);
        return NULL;
    }
    return m;
}

static int item_workflow(api_job_t *j, size_t i, sl_buf_t *b)
{
    return add_value(b, workflow_value(&j->wfs[i]));
}

/* ---- writing the answer while the socket drains ------------------------------------------ */

static void job_free(api_job_t *j)
{
    sl__free(j->runs);
    sl__dash_run_free(j->run);
    sl__free(j->edge_from);
    sl__free(j->edge_to);
    for (size_t i = 0; i < j->wf_count; i++) {
        wf_info_t *w = &j->wfs[i];
        sl__free(w->name), sl__free(w->path), sl__free(w->timezone), sl__free(w->hash);
        for (size_t k = 0; k < w->cron_count; k++)
            sl__free(w->cron[k]);
        sl__free(w->cron);
    }
    sl__free(j->wfs);
    sl__buf_close(&j->head);
    sl__buf_close(&j->tail);
    sl__buf_close(&j->piece);
    sl__free(j);
}

static void job_end(api_job_t *j)
{
    if (j->ended)
        return;
    j->ended = true;
    sl__http_end(j->ex);
    job_free(j);
}

/* The next piece of the answer into j->piece: 1 when there is one, 0 at the end. */
static int next_piece(api_job_t *j)
{
    sl_buf_t *b = &j->piece;
    sl__buf_reset(b);
    int rc = 0;
    if (!j->head_done) {
        j->head_done = true;
        rc = sl__buf_add(b, j->head.data ? j->head.data : "", j->head.len);
    }
    while (rc == 0 && b->len < API_PIECE && j->section_at < j->section_count) {
        section_t *s = &j->sections[j->section_at];
        if (!j->opened) {
            j->opened = true;
            rc = sl__buf_add(b, s->open, strlen(s->open));
            continue;
        }
        if (j->item_at < s->count) {
            if (j->item_at > 0)
                rc = sl__buf_addc(b, ',');
            if (rc == 0)
                rc = s->item(j, j->item_at++, b);
            continue;
        }
        rc = sl__buf_add(b, s->close, strlen(s->close));
        j->section_at++, j->item_at = 0, j->opened = false;
        if (rc == 0 && j->section_at == j->section_count)
            rc = sl__buf_add(b, j->tail.data ? j->tail.data : "", j->tail.len);
    }
    return rc < 0 ? rc : b->len > 0;
}

static void on_drain(void *ud);

static void pump(api_job_t *j)
{
    j->waiting = false;
    while (!j->gone) {
        if (sl__http_queued(j->ex) >= SL_HTTP_HIGH_WATER) {
            j->waiting = true;
            sl__http_on_drain(j->ex, on_drain, j);
            return;
        }
        int more = next_piece(j);
        if (more <= 0 || sl__http_write(j->ex, j->piece.data, j->piece.len) < 0)
            break; /* the end; out of memory ends the body short, like a client gone */
    }
    job_end(j);
}

static void on_drain(void *ud)
{
    pump(ud);
}

static void on_gone(void *ud)
{
    api_job_t *j = ud;
    j->gone = true;
    if (j->waiting) /* no drain comes now */
        job_end(j);
}

static void section(api_job_t *j, const char *open, size_t count,
                    int (*item)(api_job_t *, size_t, sl_buf_t *), const char *close)
{
    j->sections[j->section_count++] = (section_t){open, close, count, item};
}

/* ---- what each answer holds --------------------------------------------------------------- */

static int plan_runs(api_job_t *j)
{
    int rc = sl__buf_add(&j->head, "{", 1);
    section(j, "\"runs\":[", j->run_count, item_run, "]");
    if (rc == 0)
        rc = sl__buf_add(&j->tail, ",\"next\":", 8);
    if (rc == 0)
        rc = add_str(&j->tail, j->more && j->run_count ? j->runs[j->run_count - 1].id : NULL);
    return rc == 0 ? sl__buf_addc(&j->tail, '}') : rc;
}

static int plan_run(api_job_t *j)
{
    sl_dash_run_t *r = j->run;
    int rc = add_open_map(&j->head, run_value(&r->run));
    if (rc == 0)
        rc = sl__buf_addf(&j->head, ",\"failed_more\":%s,", r->failed_more ? "true" : "false");
    section(j, "\"steps\":[", r->step_count, item_step, "],");
    section(j, "\"failed\":[", r->failed_count, item_failed, "],");
    section(j, "\"log\":[", r->log_count, item_log, "]");
    return rc == 0 ? sl__buf_addc(&j->tail, '}') : rc;
}

/* A step index by id: the steps are few enough per need to look up in order of the file
 * (a need almost always names an earlier step, found by a scan back from it). */
static size_t find_step(const sl_dash_run_t *r, size_t from, const char *id)
{
    for (size_t k = from; k-- > 0;)
        if (strcmp(r->steps[k].row.id, id) == 0)
            return k;
    for (size_t k = from; k < r->step_count; k++)
        if (strcmp(r->steps[k].row.id, id) == 0)
            return k;
    return SIZE_MAX;
}

static int plan_graph(api_job_t *j)
{
    sl_dash_run_t *r = j->run;
    size_t n = 0;
    for (size_t i = 0; i < r->step_count; i++)
        n += r->steps[i].needs_count;
    j->edge_from = sl__calloc(n + 1, sizeof(size_t));
    j->edge_to = sl__calloc(n + 1, sizeof(size_t));
    if (j->edge_from == NULL || j->edge_to == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < r->step_count; i++)
        for (size_t d = 0; d < r->steps[i].needs_count; d++) {
            size_t from = find_step(r, i, r->steps[i].needs[d]);
            if (from != SIZE_MAX)
                j->edge_from[j->edge_count] = from, j->edge_to[j->edge_count++] = i;
        }
    int rc = sl__buf_add(&j->head, "{\"run\":", 7);
    if (rc == 0)
        rc = add_str(&j->head, r->run.id);
    if (rc == 0)
        rc = sl__buf_add(&j->head, ",\"status\":", 10);
    if (rc == 0)
        rc = add_str(&j->head, r->run.status);
    if (rc == 0)
        rc = sl__buf_addc(&j->head, ',');
    section(j, "\"nodes\":[", r->step_count, item_step, "],");
    section(j, "\"edges\":[", j->edge_count, item_edge, "]");
    return rc == 0 ? sl__buf_addc(&j->tail, '}') : rc;
}

static int plan_workflows(api_job_t *j)
{
    int rc = sl__buf_add(&j->head, "{", 1);
    section(j, "\"workflows\":[", j->wf_count, item_workflow, "]");
    return rc == 0 ? sl__buf_addc(&j->tail, '}') : rc;
}

static int plan_workflow(api_job_t *j)
{
    int rc = add_open_map(&j->head, workflow_value(&j->wfs[0]));
    if (rc == 0)
        rc = sl__buf_addc(&j->head, ',');
    section(j, "\"runs\":[", j->run_count, item_run, "]");
    return rc == 0 ? sl__buf_addc(&j->tail, '}') : rc;
}

static void answer(sl_dash_work_t *w)
{
    api_job_t *j = w->ud;
    if (w->rc < 0) {
        int status = j->status          ? j->status
                     : w->rc == SL_ENOTFOUND ? 404
                     : w->rc == SL_ECANCELED ? 503
                                             : 500;
        sl__http_error(j->ex, status, w->err[0] ? w->err : sl_strerror(w->rc));
        j->ended = true; /* sl__http_error ends the exchange */
        job_free(j);
        return;
    }
    int (*plan[])(api_job_t *) = {plan_runs, plan_run, plan_graph, plan_workflows,
                                  plan_workflow};
    if (plan[j->kind](j) < 0) {
        sl__http_error(j->ex, 500, "out of memory");
        j->ended = true;
        job_free(j);
        return;
    }
    sl__http_header(j->ex, "Cache-Control", "no-store");
    sl__http_begin(j->ex, 200, "application/json");
    pump(j);
}

/* ---- the reads, in the threadpool ------------------------------------------------------- */

static int keep_run(void *ud, const sl_store_run_row_t *row)
{
    api_job_t *j = ud;
    if (j->status_filter[0] && strcmp(row->status, j->status_filter) != 0)
        return 0; /* recorded running, its recorder dead: shown interrupted */
    if (j->run_count == j->limit) {
        j->more = true;
        return 1;
    }
    if (j->run_count == j->run_cap) {
        size_t cap = j->run_cap ? j->run_cap * 2 : 16;
        sl_store_run_row_t *p = sl__realloc(j->runs, cap * sizeof(*p));
        if (p == NULL)
            return SL_ENOMEM;
        j->runs = p, j->run_cap = cap;
    }
    j->runs[j->run_count++] = *row;
    return 0;
}

/* `before`: a run's seq, or its id. */
static int before_seq(api_job_t *j, sl_store_t *store, int64_t *out)
{
    *out = 0;
    if (j->before[0] == '\0')
        return 0;
    char *end;
    long long n = strtoll(j->before, &end, 10);
    if (*end == '\0' && n > 0) {
        *out = n;
        return 0;
    }
    sl_store_run_row_t row;
    int rc = sl__store_find_run(store, j->before, NULL, &row, j->w.err, sizeof j->w.err);
    if (rc == SL_ENOTFOUND) {
        j->status = 400;
        snprintf(j->w.err, sizeof j->w.err, "before: no run '%s' recorded", j->before);
    }
    *out = row.seq;
    return rc;
}

static void read_runs(sl_dash_work_t *w, sl_store_t *store)
{
    api_job_t *j = w->ud;
    if (store == NULL)
        return; /* no state yet: no runs */
    sl_store_filter_t f = {
        .workflow = j->workflow[0] ? j->workflow : NULL,
        .status = j->status_filter[0] ? j->status_filter : NULL,
        .limit = j->limit + 1,
    };
    w->rc = before_seq(j, store, &f.before_seq);
    if (w->rc == 0)
        w->rc = sl__store_list_runs(store, &f, keep_run, j, w->err, sizeof w->err);
}

static void read_run(sl_dash_work_t *w, sl_store_t *store)
{
    api_job_t *j = w->ud;
    w->rc = sl__dash_run_load_work(store, j->ref, &j->run, w->err, sizeof w->err);
}

static wf_info_t *add_wf(api_job_t *j)
{
    if (j->wf_count == API_WORKFLOWS_MAX)
        return NULL;
    if (j->wf_count == j->wf_cap) {
        size_t cap = j->wf_cap ? j->wf_cap * 2 : 16;
        wf_info_t *p = sl__realloc(j->wfs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        j->wfs = p, j->wf_cap = cap;
    }
    wf_info_t *w = &j->wfs[j->wf_count++];
    memset(w, 0, sizeof(*w));
    return w;
}

/* The store's row of a workflow completes the daemon's, or stands alone. */
static int merge_workflow(void *ud, const sl_store_workflow_row_t *row)
{
    api_job_t *j = ud;
    if (j->kind == OUT_WORKFLOW && strcmp(row->name, j->ref) != 0)
        return 0;
    wf_info_t *w = NULL;
    for (size_t i = 0; i < j->wf_count && w == NULL; i++)
        if (j->wfs[i].name && strcmp(j->wfs[i].name, row->name) == 0)
            w = &j->wfs[i];
    if (w == NULL && (w = add_wf(j)) != NULL) {
        w->name = sl__strdup(row->name);
        w->path = sl__strdup(row->path);
        if (w->name == NULL || w->path == NULL)
            return SL_ENOMEM;
    }
    if (w == NULL)
        return j->wf_count == API_WORKFLOWS_MAX ? 1 : SL_ENOMEM;
    w->updated_ms = row->updated_ms;
    sl__free(w->hash);
    return (w->hash = sl__strdup(row->hash)) ? 0 : SL_ENOMEM;
}

static void read_workflows(sl_dash_work_t *w, sl_store_t *store)
{
    api_job_t *j = w->ud;
    if (store)
        w->rc = sl__store_list_workflows(store, merge_workflow, j, w->err, sizeof w->err);
    if (w->rc == SL_ENOMEM)
        snprintf(w->err, sizeof w->err, "out of memory");
    if (w->rc == 0 && j->kind == OUT_WORKFLOW && j->wf_count == 0) {
        snprintf(w->err, sizeof w->err, "no workflow '%s' is served or recorded", j->ref);
        w->rc = SL_ENOTFOUND;
    }
    if (w->rc == 0 && j->kind == OUT_WORKFLOW && store) {
        sl_store_filter_t f = {.workflow = j->ref, .limit = API_WORKFLOW_RUNS};
        j->limit = API_WORKFLOW_RUNS;
        w->rc = sl__store_list_runs(store, &f, keep_run, j, w->err, sizeof w->err);
    }
}

/* ---- the daemon's workflows, on the loop ------------------------------------------------ */

static const char *const concurrency_names[] = {"forbid", "allow", "replace", "queue"};
static const char *const missed_names[] = {"last", "none", "all"};

static int copy_schedule(wf_info_t *w, const sl_serve_workflow_info_t *info)
{
    const sl_schedule_t *def = info->def;
    if (def == NULL || !def->present)
        return 0;
    w->timezone = sl__strdup(def->timezone ? def->timezone : "UTC");
    w->cron = sl__calloc(def->cron_count + 1, sizeof(char *));
    if (w->timezone == NULL || w->cron == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < def->cron_count; i++, w->cron_count++)
        if ((w->cron[i] = sl__strdup(def->cron[i])) == NULL)
            return SL_ENOMEM;
    w->concurrency = def->concurrency < 4 ? concurrency_names[def->concurrency] : NULL;
    w->missed = def->missed < 3 ? missed_names[def->missed] : NULL;
    w->catchup_ms = def->catchup_ms;
    w->jitter_ms = def->jitter_ms;
    const sl_serve_schedule_t *s = info->sched;
    if (s == NULL || s->count == 0)
        return 0;
    int64_t t = sl__clock_wall_ms() / 1000;
    while (!info->removed && w->next_count < API_NEXT_TICKS && sl__serve_next(s, t, &t) == 0)
        if (sl__time_format_tz(t, s->tz, w->next[w->next_count], sizeof w->next[0]) == 0)
            w->next_count++;
    if (info->last_tick > 0 &&
        sl__time_format_tz(info->last_tick, s->tz, w->last_tick, sizeof w->last_tick) < 0)
        w->last_tick[0] = '\0';
    return 0;
}

typedef struct collect {
    api_job_t *job;
    int rc;
} collect_t;

static void collect_workflow(void *ud, const sl_serve_workflow_info_t *info)
{
    collect_t *c = ud;
    api_job_t *j = c->job;
    if (c->rc < 0 || (j->kind == OUT_WORKFLOW && (info->name == NULL ||
                                                  strcmp(info->name, j->ref) != 0)))
        return;
    wf_info_t *w = add_wf(j);
    if (w == NULL) {
        c->rc = j->wf_count == API_WORKFLOWS_MAX ? 0 : SL_ENOMEM;
        return;
    }
    w->served = true;
    w->active = info->active;
    w->held = info->held;
    w->removed = info->removed;
    if ((info->name && (w->name = sl__strdup(info->name)) == NULL) ||
        (info->path && (w->path = sl__strdup(info->path)) == NULL))
        c->rc = SL_ENOMEM;
    if (c->rc == 0)
        c->rc = copy_schedule(w, info);
}

/* ---- requests ------------------------------------------------------------------------------ */

static bool valid_status(const char *s)
{
    static const char *const names[] = {"running", "succeeded", "failed", "interrupted"};
    for (size_t i = 0; i < SL_COUNTOF(names); i++)
        if (strcmp(s, names[i]) == 0)
            return true;
    return false;
}

#define LIMIT_MESSAGE "limit: expected a number from 1 to 500"
_Static_assert(SL_DASH_PAGE_MAX == 500, "LIMIT_MESSAGE names SL_DASH_PAGE_MAX");

/* The filters of /api/runs into the job; false with a 400 answered when one is bad. */
static bool parse_filters(api_job_t *j, const sl_http_request_t *req)
{
    char limit[32];
    const char *bad = NULL;
    int n = sl__http_query(req, "limit", limit, sizeof limit);
    j->limit = SL_DASH_PAGE_DEFAULT;
    if (n >= 0) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (n == 0 || *end != '\0' || v < 1 || v > SL_DASH_PAGE_MAX)
            bad = LIMIT_MESSAGE;
        j->limit = (uint32_t)v;
    } else if (n == -2)
        bad = LIMIT_MESSAGE;
    n = sl__http_query(req, "status", j->status_filter, sizeof j->status_filter);
    if (!bad && (n == -2 || (n >= 0 && !valid_status(j->status_filter))))
        bad = "status: expected running, succeeded, failed or interrupted";
    if (n < 0)
        j->status_filter[0] = '\0';
    n = sl__http_query(req, "workflow", j->workflow, sizeof j->workflow);
    if (!bad && (n == -2 || n == 0))
        bad = "workflow: expected a workflow name (at most 255 bytes)";
    if (n < 0)
        j->workflow[0] = '\0';
    n = sl__http_query(req, "before", j->before, sizeof j->before);
    if (!bad && (n == -2 || n == 0))
        bad = "before: expected a run's id or seq";
    if (n < 0)
        j->before[0] = '\0';
    if (bad)
        sl__http_error(j->ex, 400, bad);
    return bad == NULL;
}

/* Which answer a path asks for; false when it is none of the API's. */
static bool route(const char *path, api_job_t *j)
{
    const char *rest;
    if (strcmp(path, "/api/runs") == 0)
        return j->kind = OUT_RUNS, true;
    if (strcmp(path, "/api/workflows") == 0)
        return j->kind = OUT_WORKFLOWS, true;
    bool runs = strncmp(path, "/api/runs/", 10) == 0;
    bool wfs = strncmp(path, "/api/workflows/", 15) == 0;
    if (!runs && !wfs)
        return false;
    rest = path + (runs ? 10 : 15);
    size_t len = strcspn(rest, "/");
    if (len == 0 || len >= sizeof j->ref)
        return false;
    memcpy(j->ref, rest, len);
    j->ref[len] = '\0';
    if (rest[len] == '\0')
        return j->kind = runs ? OUT_RUN : OUT_WORKFLOW, true;
    if (runs && strcmp(rest + len, "/graph") == 0)
        return j->kind = OUT_GRAPH, true;
    return false;
}

bool sl__dash_api(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    if (strncmp(req->path, "/api/", 5) != 0)
        return false;
    api_job_t *j = sl__calloc(1, sizeof(*j));
    if (j == NULL) {
        sl__http_error(ex, 503, "out of memory");
        return true;
    }
    if (!route(req->path, j)) {
        sl__free(j);
        return false;
    }
    j->ex = ex;
    sl__buf_init(&j->head, (size_t)1 << 20);
    sl__buf_init(&j->tail, (size_t)1 << 20);
    sl__buf_init(&j->piece, (size_t)1 << 24);
    if (j->kind == OUT_RUNS && !parse_filters(j, req)) {
        j->ended = true;
        job_free(j);
        return true;
    }
    collect_t c = {j, 0};
    if ((j->kind == OUT_WORKFLOWS || j->kind == OUT_WORKFLOW) && dash->daemon)
        sl__serve_workflows(dash->daemon, collect_workflow, &c);
    void (*run[])(sl_dash_work_t *, sl_store_t *) = {read_runs, read_run, read_run,
                                                     read_workflows, read_workflows};
    j->w.run = run[j->kind];
    j->w.after = answer;
    j->w.ud = j;
    if (c.rc < 0 || sl__dash_submit(dash, &j->w) < 0) {
        sl__http_error(ex, 503, c.rc < 0 ? "out of memory" : "cannot read the state now");
        j->ended = true;
        job_free(j);
        return true;
    }
    sl__http_on_gone(ex, on_gone, j);
    return true;
}
