/*
 * The run's recorder: what the scheduler's observer hears goes to the state store as
 * records (queued, never waited for on the loop); a resumed run's completed tasks are
 * recalled from the store instead of run; the run's log lines are kept with it.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "host/internal.h"

#define PROGRESS_MS 500 /* a running step's counters are recorded at most this often */

/* ---- the observer --------------------------------------------------------------------- */

static const sl_store_task_status_t task_status[] = {
    [SL_ITEM_OK] = SL_STORE_TASK_OK,
    [SL_ITEM_FAILED] = SL_STORE_TASK_FAILED,
    [SL_ITEM_SKIPPED] = SL_STORE_TASK_SKIPPED,
    [SL_ITEM_CANCELED] = SL_STORE_TASK_CANCELED,
};

static void record_progress(sl_recorder_t *rec, size_t step);

static void on_item_ended(void *ud, const sl_item_report_t *r)
{
    sl_recorder_t *rec = ud;
    const char *note = r->memo ? sl__host_cache_ended(rec, r) : NULL;
    sl_store_task_t t = {
        .step = r->step, .item = r->item, .status = task_status[r->status],
        .attempts = r->attempts, .cached = r->cached, .started_ms = r->started_ms,
        .ended_ms = r->ended_ms, .output = r->output, .error = r->error, .cache_note = note,
    };
    rec->ok += r->status == SL_ITEM_OK;
    rec->failed += r->status == SL_ITEM_FAILED;
    rec->cached += r->cached;
    sl__store_task(rec->srun, &t);
    record_progress(rec, r->step);
}

static int64_t unix_ms(const sl_recorder_t *rec, uint64_t mono_ns)
{
    if (mono_ns == 0)
        return 0;
    return rec->origin_ms + ((int64_t)mono_ns - (int64_t)rec->origin_ns) / 1000000;
}

/* The states a step ends in, as docs/state.md names them. */
static const char *step_status_name(const sl_step_stats_t *s)
{
    switch (s->status) {
    case SL_STEP_WAITING: return "waiting";
    case SL_STEP_RUNNING: return "running";
    case SL_STEP_SKIPPED: return "skipped";
    case SL_STEP_FAILED: return "failed";
    case SL_STEP_CANCELED: return "canceled";
    case SL_STEP_DONE: return s->failed && s->ok ? "partial" : s->failed ? "failed" : "ok";
    }
    return "unknown";
}

static void record_step(sl_recorder_t *rec, size_t step, const sl_step_stats_t *s)
{
    const sl_step_t *def = &rec->wf->steps[step];
    sl_store_step_t c = {
        .id = def->id, .kind = def->uses, .def_hash = def->def_hash,
        .status = step_status_name(s), .started_ms = unix_ms(rec, s->started_ns),
        .ended_ms = unix_ms(rec, s->ended_ns), .total = s->total, .ok = s->ok,
        .failed = s->failed, .skipped = s->skipped, .cached = s->cached,
        .retries = s->retries,
    };
    sl__store_step(rec->srun, step, &c);
}

/* A running step's counters reach the database as its items end, at most every
 * PROGRESS_MS per step (one clock read, no timer), so that the dashboard, or a `serve` in
 * another process, follows the run live. Its end records them once more, whole. */
static void record_progress(sl_recorder_t *rec, size_t step)
{
    if (rec->watched == NULL || rec->progress_ms == NULL || rec->loop == NULL)
        return;
    uint64_t now = uv_now(rec->loop);
    if (rec->progress_ms[step] && now - rec->progress_ms[step] < PROGRESS_MS)
        return;
    const sl_step_stats_t *stats = sl__run_step_stats(rec->watched, step);
    if (stats == NULL || stats->ended_ns)
        return; /* ended: on_step_ended records it */
    rec->progress_ms[step] = now ? now : 1;
    record_step(rec, step, stats);
}

static void on_step_ended(void *ud, size_t step, const sl_step_stats_t *stats)
{
    sl_recorder_t *rec = ud;
    record_step(rec, step, stats);
    if (rec->step_recorded)
        rec->step_recorded[step] = true;
}

/* ---- the log ----------------------------------------------------------------------------- */

static pthread_t loop_thread;
static sl_recorder_t *live_recorders; /* loop thread only */

/* A log line of the loop goes to the recorder of its run (a line naming no run: to the
 * only recorder, if there is one). */
static void on_log(void *ud, int level, const char *run, const char *where,
                   const char *message)
{
    if (!pthread_equal(pthread_self(), loop_thread))
        return; /* not from the loop: the store is the loop's */
    sl_recorder_t *rec = NULL;
    for (sl_recorder_t *r = live_recorders; r; r = r->next_live)
        if (run ? strcmp(run, r->run_id) == 0 : r == live_recorders && r->next_live == NULL)
            rec = r;
    if (rec == NULL || rec->srun == NULL)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sl__store_log(rec->srun, level, where, message,
                  (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

static void live_add(sl_recorder_t *rec)
{
    loop_thread = pthread_self();
    rec->next_live = live_recorders;
    live_recorders = rec;
    rec->live = true;
    sl__log_set_sink(on_log, NULL);
}

static void live_remove(sl_recorder_t *rec)
{
    if (!rec->live)
        return;
    for (sl_recorder_t **p = &live_recorders; *p; p = &(*p)->next_live)
        if (*p == rec) {
            *p = rec->next_live;
            break;
        }
    rec->live = false;
    if (live_recorders == NULL)
        sl__log_set_sink(NULL, NULL);
}

/* ---- the store's news --------------------------------------------------------------------- */

static void on_store_event(void *ud, uint64_t committed, const char *error)
{
    sl_recorder_t *rec = ud;
    if (error == NULL || rec->error)
        return;
    rec->error = sl__strdup(error);
    SL_LOG(SL_LOG_ERROR, rec->run_id, NULL, "the state store failed: %s; the run stops",
           error);
    if (rec->watched)
        sl__run_stop(rec->watched, false);
}

void sl__host_recorder_watch(sl_recorder_t *rec, sl_run_t *run)
{
    rec->watched = run;
    if (rec->error)
        sl__run_stop(run, false);
}

const char *sl__host_recorder_error(const sl_recorder_t *rec)
{
    return rec->error;
}

/* ---- resume ------------------------------------------------------------------------------ */

static bool on_recall(void *ud, size_t step, size_t item, sl_value_t **out)
{
    sl_recorder_t *rec = ud;
    if (rec->recall == NULL || rec->rerun[step] || item >= rec->recall[step].count ||
        rec->recall[step].items[item] == NULL)
        return false;
    *out = rec->recall[step].items[item]; /* handed over: each item is recalled once */
    rec->recall[step].items[item] = NULL;
    rec->reused++;
    return true;
}

static int keep_output(void *ud, const char *step_id, size_t item, sl_value_t *output)
{
    sl_recorder_t *rec = ud;
    size_t step = sl__workflow_find(rec->wf, step_id);
    recall_step_t *rs = step == SL_NO_STEP ? NULL : &rec->recall[step];
    if (rs == NULL || item >= SIZE_MAX / sizeof(sl_value_t *) / 2) {
        sl_value_free(output);
        return 0; /* a step that is gone */
    }
    if (item >= rs->count) {
        size_t count = item + 1 > rs->count * 2 ? item + 1 : rs->count * 2;
        sl_value_t **items = sl__realloc(rs->items, count * sizeof(*items));
        if (items == NULL) {
            sl_value_free(output);
            return SL_ENOMEM;
        }
        memset(items + rs->count, 0, (count - rs->count) * sizeof(*items));
        rs->items = items;
        rs->count = count;
    }
    sl_value_free(rs->items[item]);
    rs->items[item] = output;
    return 0;
}

typedef struct step_hashes {
    const sl_workflow_t *wf;
    bool *seen;    /* the workflow's steps found in the old run */
    bool *changed; /* per step of wf; may be NULL */
    sl_buf_t *out;
} step_hashes_t;

static int compare_step(void *ud, const sl_store_step_row_t *row)
{
    step_hashes_t *c = ud;
    size_t i = sl__workflow_find(c->wf, row->id);
    if (i == SL_NO_STEP)
        return c->out ? sl__buf_addf(c->out, "%sstep '%s' is gone", c->out->len ? ", " : "",
                                     row->id) : 0;
    c->seen[i] = true;
    if (strcmp(c->wf->steps[i].def_hash, row->def_hash) == 0)
        return 0;
    if (c->changed)
        c->changed[i] = true;
    return c->out ? sl__buf_addf(c->out, "%sstep '%s' changed", c->out->len ? ", " : "",
                                 row->id) : 0;
}

static int compare_steps(sl_store_t *store, int64_t seq, const sl_workflow_t *wf,
                         bool *changed, sl_buf_t *out, char *err, size_t err_size)
{
    step_hashes_t c = {wf, sl__calloc(wf->step_count + 1, sizeof(bool)), changed, out};
    if (c.seen == NULL)
        return SL_ENOMEM;
    int rc = sl__store_list_steps(store, seq, compare_step, &c, err, err_size);
    for (size_t i = 0; rc == 0 && i < wf->step_count; i++) {
        if (c.seen[i])
            continue;
        if (changed)
            changed[i] = true;
        if (out)
            rc = sl__buf_addf(out, "%sstep '%s' is new", out->len ? ", " : "",
                              wf->steps[i].id);
    }
    sl__free(c.seen);
    return rc;
}

int sl__host_resume_changes(sl_store_t *store, int64_t seq, const sl_workflow_t *wf,
                            sl_buf_t *out, char *err, size_t err_size)
{
    return compare_steps(store, seq, wf, NULL, out, err, err_size);
}

int sl__host_resume_vars(sl_store_t *store, int64_t seq, sl_value_t **out, char *err,
                         size_t err_size)
{
    return sl__store_run_vars(store, seq, out, err, err_size);
}

/* Steps that changed run again, and so does every step after one of them (its inputs may
 * differ): in file order a dependency comes first only for a sorted workflow, so repeat
 * until nothing more is marked. */
static void spread_reruns(sl_recorder_t *rec)
{
    const sl_workflow_t *wf = rec->wf;
    for (bool more = true; more;) {
        more = false;
        for (size_t i = 0; i < wf->step_count; i++) {
            for (size_t d = 0; d < wf->steps[i].dep_count && !rec->rerun[i]; d++)
                if (rec->rerun[wf->steps[i].deps[d]])
                    rec->rerun[i] = more = true;
        }
    }
}

static int load_resume(sl_recorder_t *rec, const sl_store_run_row_t *row, char *err,
                       size_t err_size)
{
    size_t n = rec->wf->step_count;
    rec->recall = sl__calloc(n + 1, sizeof(*rec->recall));
    rec->rerun = sl__calloc(n + 1, sizeof(*rec->rerun));
    if (rec->recall == NULL || rec->rerun == NULL)
        return SL_ENOMEM;
    int rc = compare_steps(rec->store, row->seq, rec->wf, rec->rerun, NULL, err, err_size);
    if (rc == 0)
        spread_reruns(rec);
    if (rc == 0)
        rc = sl__store_load_outputs(rec->store, row->seq, keep_output, rec, err, err_size);
    return rc;
}

/* ---- the recorder -------------------------------------------------------------------------- */

static int begin(sl_recorder_t *rec, const sl_recorder_opts_t *o, char *err, size_t err_size)
{
    const sl_workflow_t *wf = o->wf;
    size_t deps = 0;
    for (size_t i = 0; i < wf->step_count; i++)
        deps += wf->steps[i].dep_count;
    sl_store_step_info_t *steps = sl__calloc(wf->step_count + 1, sizeof(*steps));
    char **needs = sl__calloc(deps + 1, sizeof(*needs)); /* the ids, borrowed from wf */
    if (steps == NULL || needs == NULL) {
        sl__free(steps);
        sl__free(needs);
        return SL_ENOMEM;
    }
    for (size_t i = 0, at = 0; i < wf->step_count; i++) {
        const sl_step_t *step = &wf->steps[i];
        steps[i] = (sl_store_step_info_t){step->id, step->uses, step->def_hash, needs + at,
                                          step->dep_count};
        for (size_t d = 0; d < step->dep_count; d++)
            needs[at++] = wf->steps[step->deps[d]].id;
    }
    sl_store_run_info_t info = {
        .id = o->run_id, .workflow = wf->name, .path = wf->path, .file_hash = wf->file_hash,
        .trigger = o->trigger ? o->trigger : "manual",
        .resumed_from = o->resume ? o->resume->id : NULL, .tick_ms = o->tick_ms,
        .started_ms = o->started_ms, .vars = wf->vars, .steps = steps,
        .step_count = wf->step_count, .claim_tick = o->claim_tick,
    };
    int rc = sl__store_run_begin(rec->store, &info, &rec->srun, err, err_size);
    sl__free(steps);
    sl__free(needs);
    return rc;
}

int sl__host_recorder_new(const sl_recorder_opts_t *o, sl_recorder_t **out, char *err,
                          size_t err_size)
{
    sl_recorder_t *rec = sl__calloc(1, sizeof(*rec));
    if (rec == NULL || (rec->run_id = sl__strdup(o->run_id)) == NULL) {
        sl__free(rec);
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    rec->store = o->store;
    rec->wf = o->wf;
    rec->loop = o->loop;
    rec->no_cache = o->no_cache;
    rec->resume_seq = o->resume ? o->resume->seq : 0;
    rec->origin_ns = sl__clock_now_ns();
    rec->step_recorded = sl__calloc(o->wf->step_count + 1, sizeof(bool)); /* NULL: all again */
    rec->progress_ms = sl__calloc(o->wf->step_count + 1, sizeof(uint64_t)); /* NULL: none */
    rec->origin_ms = sl__store_now_ms();
    rec->observer = (sl_run_observer_t){rec, on_item_ended, on_step_ended};
    rec->memo = (sl_run_memo_t){rec, on_recall, sl__host_cache_lookup,
                                sl__host_cache_lookup_cancel, sl__host_cache_finish,
                                sl__host_cache_forget};
    int rc = o->resume ? load_resume(rec, o->resume, err, err_size) : 0;
    if (rc == 0)
        rc = sl__host_cache_load(rec, err, err_size);
    if (rc == 0)
        rc = begin(rec, o, err, err_size);
    if (rc == 0 && rec->loop)
        rc = sl__store_attach(rec->store, rec->loop, on_store_event, rec);
    if (rc < 0) {
        if (rc == SL_ENOMEM)
            snprintf(err, err_size, "out of memory");
        if (rec->srun)
            sl__store_run_end(rec->srun, "failed", sl__store_now_ms(), err, 0, 0, 0);
        rec->srun = NULL;
        sl__host_recorder_free(rec);
        return rc;
    }
    if (rec->loop)
        live_add(rec);
    *out = rec;
    return 0;
}

int sl__host_recorder_attach(sl_recorder_t *rec, uv_loop_t *loop)
{
    int rc = sl__store_attach(rec->store, loop, on_store_event, rec);
    if (rc < 0)
        return rc;
    rec->loop = loop;
    live_add(rec);
    return 0;
}

const sl_run_observer_t *sl__host_recorder_observer(sl_recorder_t *rec)
{
    return &rec->observer;
}

const sl_run_memo_t *sl__host_recorder_memo(sl_recorder_t *rec)
{
    return &rec->memo;
}

uint64_t sl__host_recorder_reused(const sl_recorder_t *rec)
{
    return rec->reused;
}

void sl__host_recorder_finish(sl_recorder_t *rec, const sl_run_t *run)
{
    if (rec->srun == NULL)
        return;
    for (size_t i = 0; i < rec->wf->step_count; i++)
        if (rec->step_recorded == NULL || !rec->step_recorded[i]) /* ended ones are */
            record_step(rec, i, sl__run_step_stats(run, i));
    const char *status = sl__run_succeeded(run) ? "succeeded"
                         : sl__run_stopped(run) ? "interrupted"
                                                : "failed";
    const char *error = rec->error ? rec->error : sl__run_error(run);
    live_remove(rec);
    sl__store_run_end(rec->srun, status, sl__store_now_ms(), error, rec->ok, rec->failed,
                      rec->cached);
    rec->srun = NULL;
}

void sl__host_recorder_free(sl_recorder_t *rec)
{
    if (rec == NULL)
        return;
    if (rec->srun) /* never finished: the lock goes, the run reads as interrupted */
        sl__store_run_end(rec->srun, "interrupted", sl__store_now_ms(), rec->error, rec->ok,
                          rec->failed, rec->cached);
    live_remove(rec);
    sl__store_detach(rec->store);
    for (size_t i = 0; rec->recall && i < rec->wf->step_count; i++) {
        for (size_t k = 0; k < rec->recall[i].count; k++)
            sl_value_free(rec->recall[i].items[k]);
        sl__free(rec->recall[i].items);
    }
    sl__free(rec->recall);
    sl__free(rec->rerun);
    sl__free(rec->output_hash);
    sl__free(rec->step_recorded);
    sl__free(rec->progress_ms);
    sl__host_cache_close(rec);
    sl__free(rec->error);
    sl__free(rec->run_id);
    sl__free(rec);
}
