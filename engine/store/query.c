/*
 * Reads: run history, a run's steps, failed tasks and log tail, the outputs a resume
 * reuses, cache entries. On the store's read connection, one caller at a time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

static const char *text(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s ? s : "";
}

static const char *text_or_null(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* Runs one prepared query, calling `row` per result row; stops at its nonzero result. */
typedef int (*row_fn)(sqlite3_stmt *st, void *ctx);

static int each_row(sl_store_t *store, sqlite3_stmt *st, row_fn row, void *ctx, char *err,
                    size_t err_size)
{
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = row(st, ctx)) != 0)
            break;
    if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
        rc = sl__store_fail(store->read_db, "reading the state database", err, err_size);
    sqlite3_finalize(st);
    return rc < 0 ? rc : 0;
}

/* ---- runs ----------------------------------------------------------------------------- */

#define RUN_COLUMNS                                                                                \
    "seq, id, workflow, path, hash, trigger, status, resumed_from, tick, started, finished,"       \
    " tasks_ok, tasks_failed, tasks_cached, error, CASE WHEN status = 'running' THEN"           \
    " coalesce(active, (SELECT max(finished) FROM tasks WHERE tasks.run = runs.seq)) END"

static void read_run(sqlite3_stmt *st, sl_store_run_row_t *r)
{
    memset(r, 0, sizeof(*r));
    r->seq = sqlite3_column_int64(st, 0);
    copy(r->id, sizeof(r->id), text(st, 1));
    copy(r->workflow, sizeof(r->workflow), text(st, 2));
    copy(r->path, sizeof(r->path), text(st, 3));
    copy(r->file_hash, sizeof(r->file_hash), text(st, 4));
    copy(r->trigger, sizeof(r->trigger), text(st, 5));
    copy(r->status, sizeof(r->status), text(st, 6));
    copy(r->resumed_from, sizeof(r->resumed_from), text(st, 7));
    r->tick_ms = sqlite3_column_int64(st, 8);
    r->started_ms = sqlite3_column_int64(st, 9);
    r->finished_ms = sqlite3_column_int64(st, 10);
    r->tasks_ok = (uint64_t)sqlite3_column_int64(st, 11);
    r->tasks_failed = (uint64_t)sqlite3_column_int64(st, 12);
    r->tasks_cached = (uint64_t)sqlite3_column_int64(st, 13);
    copy(r->error, sizeof(r->error), text(st, 14));
}

/* A read-only store marks nothing: a run left "running" by a process that died reads as
 * sl__store_reap would have marked it. */
static void read_run_of(sl_store_t *store, sqlite3_stmt *st, sl_store_run_row_t *r)
{
    read_run(st, r);
    if (store->mode != SL_STORE_READONLY || strcmp(r->status, "running") != 0 ||
        !sl__store_run_is_dead(store, r->seq))
        return;
    copy(r->status, sizeof(r->status), "interrupted");
    r->finished_ms = sqlite3_column_int64(st, 15); /* what the reap would set (0: none) */
    if (r->error[0] == '\0')
        copy(r->error, sizeof(r->error), "the process recording it ended");
}

typedef struct first_ctx {
    sl_store_t *store;
    sl_store_run_row_t *row;
} first_ctx_t;

static int first_run(sqlite3_stmt *st, void *ctx)
{
    first_ctx_t *c = ctx;
    read_run_of(c->store, st, c->row);
    return 1;
}

int sl__store_find_run(sl_store_t *store, const char *ref, const char *workflow,
                       sl_store_run_row_t *out, char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    int rc = sl__store_reap(store, err, err_size);
    sqlite3_stmt *st = NULL;
    bool last = strcmp(ref, "last") == 0;
    const char *sql = !last      ? "SELECT " RUN_COLUMNS " FROM runs WHERE id = ?1"
                      : workflow ? "SELECT " RUN_COLUMNS " FROM runs WHERE workflow = ?1"
                                   " ORDER BY seq DESC LIMIT 1"
                                 : "SELECT " RUN_COLUMNS " FROM runs ORDER BY seq DESC LIMIT 1";
    if (rc == 0)
        rc = sl__store_prepare(store->read_db, sql, &st, err, err_size);
    out->seq = 0;
    if (rc == 0) {
        if (!last || workflow)
            sqlite3_bind_text(st, 1, last ? workflow : ref, -1, SQLITE_STATIC);
        first_ctx_t ctx = {store, out};
        rc = each_row(store, st, first_run, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    if (rc == 0 && out->seq == 0) {
        if (last)
            snprintf(err, err_size, "no run%s%s recorded in %s", workflow ? " of " : "",
                     workflow ? workflow : "", store->dir);
        else
            snprintf(err, err_size, "no run '%s' recorded in %s", ref, store->dir);
        return SL_ENOTFOUND;
    }
    return rc;
}

typedef struct run_ctx {
    sl_store_t *store;
    int (*fn)(void *ud, const sl_store_run_row_t *row);
    void *ud;
} run_ctx_t;

static int each_run(sqlite3_stmt *st, void *ctx)
{
    run_ctx_t *c = ctx;
    sl_store_run_row_t row;
    read_run_of(c->store, st, &row);
    return c->fn(c->ud, &row);
}

/* One statement per combination of filters: `(?1 IS NULL OR workflow = ?1)` would keep
 * SQLite from the index of the filter given, and `(?3 = 0 OR seq < ?3)` from its range
 * (a deep page of 100,000 runs would scan them). */
static const char *list_sql(const sl_store_filter_t *f)
{
    static const char *const sql[4] = {
        "SELECT " RUN_COLUMNS " FROM runs WHERE ?1 IS NULL AND ?2 IS NULL AND"
        " seq < ?3 ORDER BY seq DESC LIMIT ?4",
        "SELECT " RUN_COLUMNS " FROM runs INDEXED BY runs_workflow WHERE workflow = ?1 AND"
        " ?2 IS NULL AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
        "SELECT " RUN_COLUMNS " FROM runs INDEXED BY runs_status WHERE ?1 IS NULL AND"
        " status = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
        "SELECT " RUN_COLUMNS " FROM runs INDEXED BY runs_workflow WHERE workflow = ?1 AND"
        " status = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
    };
    return sql[(f->workflow ? 1 : 0) | (f->status ? 2 : 0)];
}

int sl__store_list_runs(sl_store_t *store, const sl_store_filter_t *filter,
                        int (*fn)(void *ud, const sl_store_run_row_t *row), void *ud, char *err,
                        size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    int rc = sl__store_reap(store, err, err_size);
    sqlite3_stmt *st = NULL;
    if (rc == 0)
        rc = sl__store_prepare(store->read_db, list_sql(filter), &st, err, err_size);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, filter->workflow, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, filter->status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, filter->before_seq > 0 ? filter->before_seq : INT64_MAX);
        sqlite3_bind_int64(st, 4, filter->limit ? filter->limit : 20);
        run_ctx_t ctx = {store, fn, ud};
        rc = each_row(store, st, each_run, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

static int query_runs(sl_store_t *store, const char *sql, int64_t a, int64_t b,
                      int (*fn)(void *ud, const sl_store_run_row_t *row), void *ud, char *err,
                      size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st = NULL;
    int rc = sl__store_prepare(store->read_db, sql, &st, err, err_size);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, a);
        sqlite3_bind_int64(st, 2, b);
        run_ctx_t ctx = {store, fn, ud};
        rc = each_row(store, st, each_run, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

int sl__store_runs_after(sl_store_t *store, int64_t after_seq, uint32_t limit,
                         int (*fn)(void *ud, const sl_store_run_row_t *row), void *ud,
                         char *err, size_t err_size)
{
    return query_runs(store,
                      "SELECT " RUN_COLUMNS " FROM runs WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                      after_seq, limit, fn, ud, err, err_size);
}

static int copy_run(void *ud, const sl_store_run_row_t *row)
{
    *(sl_store_run_row_t *)ud = *row;
    return 1;
}

int sl__store_run_by_seq(sl_store_t *store, int64_t seq, sl_store_run_row_t *out, char *err,
                         size_t err_size)
{
    out->seq = 0;
    int rc = query_runs(store, "SELECT " RUN_COLUMNS " FROM runs WHERE seq = ?1 AND ?2 = ?2",
                        seq, 0, copy_run, out, err, err_size);
    if (rc == 0 && out->seq == 0) {
        snprintf(err, err_size, "no run number %" PRId64 " recorded in %s", seq, store->dir);
        return SL_ENOTFOUND;
    }
    return rc;
}

static int each_workflow(sqlite3_stmt *st, void *ctx)
{
    run_ctx_t *c = ctx;
    sl_store_workflow_row_t r = {text(st, 0), text(st, 1), text(st, 2),
                                 sqlite3_column_int64(st, 3)};
    return ((int (*)(void *, const sl_store_workflow_row_t *))(void *)c->fn)(c->ud, &r);
}

int sl__store_list_workflows(sl_store_t *store,
                             int (*fn)(void *ud, const sl_store_workflow_row_t *row), void *ud,
                             char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st = NULL;
    int rc = sl__store_prepare(store->read_db,
                               "SELECT name, path, hash, updated FROM workflows ORDER BY name",
                               &st, err, err_size);
    if (rc == 0) {
        run_ctx_t ctx = {store, (int (*)(void *, const sl_store_run_row_t *))(void *)fn, ud};
        rc = each_row(store, st, each_workflow, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

int sl__store_data_version(sl_store_t *store, int64_t *out, char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st = NULL;
    int rc = sl__store_prepare(store->read_db, "PRAGMA data_version", &st, err, err_size);
    if (rc == 0) {
        int step = sqlite3_step(st);
        *out = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        if (step != SQLITE_ROW)
            rc = sl__store_fail(store->read_db, "reading the state database", err, err_size);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

/* ---- a run's steps, tasks and log ------------------------------------------------------ */

typedef struct cb_ctx {
    void *fn;
    void *ud;
} cb_ctx_t;

static int each_step(sqlite3_stmt *st, void *ctx)
{
    cb_ctx_t *c = ctx;
    sl_store_step_row_t r = {
        .index = sqlite3_column_int64(st, 0),
        .id = text(st, 1),
        .kind = text(st, 2),
        .def_hash = text(st, 3),
        .status = text(st, 4),
        .started_ms = sqlite3_column_int64(st, 5),
        .ended_ms = sqlite3_column_int64(st, 6),
        .needs = text_or_null(st, 13),
    };
    uint64_t *counts[] = {&r.total, &r.ok, &r.failed, &r.skipped, &r.cached, &r.retries};
    for (int i = 0; i < 6; i++)
        *counts[i] = (uint64_t)sqlite3_column_int64(st, 7 + i);
    return ((int (*)(void *, const sl_store_step_row_t *))c->fn)(c->ud, &r);
}

static int query_run(sl_store_t *store, const char *sql, int64_t run_seq, int64_t extra, row_fn row,
                     cb_ctx_t *ctx, char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db, sql, &st, err, err_size);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, run_seq);
        sqlite3_bind_int64(st, 2, extra);
        rc = each_row(store, st, row, ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

int sl__store_list_steps(sl_store_t *store, int64_t run_seq,
                         int (*fn)(void *ud, const sl_store_step_row_t *row), void *ud, char *err,
                         size_t err_size)
{
    cb_ctx_t ctx = {(void *)fn, ud};
    return query_run(store,
                     "SELECT idx, id, kind, def_hash, status, started, finished, total,"
                     " ok, failed, skipped, cached, retries, needs FROM steps WHERE run = ?1 AND"
                     " ?2 = ?2 ORDER BY idx",
                     run_seq, 0, each_step, &ctx, err, err_size);
}

static int each_task(sqlite3_stmt *st, void *ctx)
{
    cb_ctx_t *c = ctx;
    sl_store_task_row_t r = {
        .step = sqlite3_column_int64(st, 0),
        .item = sqlite3_column_int64(st, 1),
        .step_id = text(st, 2),
        .status = text(st, 3),
        .error = text_or_null(st, 4),
        .cache_note = text_or_null(st, 5),
        .attempts = (uint32_t)sqlite3_column_int(st, 6),
        .cached = sqlite3_column_int(st, 7) != 0,
        .started_ms = sqlite3_column_int64(st, 8),
        .ended_ms = sqlite3_column_int64(st, 9),
    };
    return ((int (*)(void *, const sl_store_task_row_t *))c->fn)(c->ud, &r);
}

int sl__store_list_tasks(sl_store_t *store, int64_t run_seq, bool notes,
                         int (*fn)(void *ud, const sl_store_task_row_t *row), void *ud, char *err,
                         size_t err_size)
{
    cb_ctx_t ctx = {(void *)fn, ud};
    return query_run(store,
                     "SELECT t.step, t.item, s.id, t.status, t.error, t.cache_note,"
                     " t.attempts, t.cached, t.started, t.finished FROM tasks t JOIN steps s"
                     " ON s.run = t.run AND s.idx = t.step WHERE t.run = ?1 AND (t.status ="
                     " 'failed' OR (?2 AND t.cache_note IS NOT NULL)) ORDER BY t.step, t.item",
                     run_seq, notes, each_task, &ctx, err, err_size);
}

int sl__store_list_failed(sl_store_t *store, int64_t run_seq, uint32_t limit,
                          int (*fn)(void *ud, const sl_store_task_row_t *row), void *ud,
                          char *err, size_t err_size)
{
    cb_ctx_t ctx = {(void *)fn, ud};
    return query_run(store,
                     "SELECT t.step, t.item, s.id, t.status, t.error, t.cache_note,"
                     " t.attempts, t.cached, t.started, t.finished FROM tasks t INDEXED BY"
                     " tasks_failed JOIN steps s ON s.run = t.run AND s.idx = t.step WHERE"
                     " t.run = ?1 AND t.status = 'failed' ORDER BY t.step, t.item LIMIT ?2",
                     run_seq, limit, each_task, &ctx, err, err_size);
}

int sl__store_failed_after(sl_store_t *store, int64_t run_seq, const int64_t after[3],
                           uint32_t limit, int (*fn)(void *ud, const sl_store_task_row_t *row),
                           void *ud, char *err, size_t err_size)
{
    cb_ctx_t ctx = {(void *)fn, ud};
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db,
                               "SELECT t.step, t.item, s.id, t.status, t.error, t.cache_note,"
                               " t.attempts, t.cached, t.started, t.finished FROM tasks t"
                               " INDEXED BY tasks_failed_time JOIN steps s ON s.run = t.run AND"
                               " s.idx = t.step WHERE t.run = ?1 AND t.status = 'failed' AND"
                               " (t.finished, t.step, t.item) > (?2, ?3, ?4)"
                               " ORDER BY t.finished, t.step, t.item LIMIT ?5",
                               &st, err, err_size);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, run_seq);
        for (int i = 0; i < 3; i++)
            sqlite3_bind_int64(st, 2 + i, after[i]);
        sqlite3_bind_int64(st, 5, limit);
        rc = each_row(store, st, each_task, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

static int each_log(sqlite3_stmt *st, void *ctx)
{
    cb_ctx_t *c = ctx;
    sl_store_log_row_t r = {sqlite3_column_int64(st, 0), text(st, 1), text_or_null(st, 2),
                            text(st, 3)};
    return ((int (*)(void *, const sl_store_log_row_t *))c->fn)(c->ud, &r);
}

int sl__store_list_logs(sl_store_t *store, int64_t run_seq, uint32_t count,
                        int (*fn)(void *ud, const sl_store_log_row_t *row), void *ud, char *err,
                        size_t err_size)
{
    cb_ctx_t ctx = {(void *)fn, ud};
    return query_run(store,
                     "SELECT time, level, task, message FROM (SELECT * FROM logs"
                     " WHERE run = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
                     run_seq, count, each_log, &ctx, err, err_size);
}

typedef struct vars_ctx {
    sl_value_t *vars;
    char err[256];
} vars_ctx_t;

static int vars_row(sqlite3_stmt *st, void *ctx)
{
    vars_ctx_t *c = ctx;
    const char *json = text_or_null(st, 0);
    if (json)
        sl_value_from_json(json, strlen(json), &c->vars, c->err, sizeof(c->err));
    return 1;
}

int sl__store_run_vars(sl_store_t *store, int64_t run_seq, sl_value_t **out, char *err,
                       size_t err_size)
{
    vars_ctx_t ctx = {0};
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db, "SELECT vars FROM runs WHERE seq = ?", &st, err,
                               err_size);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, run_seq);
        rc = each_row(store, st, vars_row, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    if (rc == 0 && ctx.vars == NULL && (ctx.vars = sl_value_map()) == NULL)
        rc = SL_ENOMEM;
    if (rc == 0)
        *out = ctx.vars;
    return rc;
}

/* ---- outputs -------------------------------------------------------------------------- */

/* A stored output's bytes: the inline blob at `col`, or the object named at `col + 1`. */
static int read_bytes(sl_store_t *store, sqlite3_stmt *st, int col, uint8_t **out, size_t *out_len)
{
    const uint8_t *blob = sqlite3_column_blob(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    const char *object = text_or_null(st, col + 1);
    if (blob == NULL && object)
        return sl__store_object_get(store, object, out, out_len);
    if (blob == NULL)
        return SL_ENOTFOUND;
    if ((*out = sl__malloc(len ? len : 1)) == NULL)
        return SL_ENOMEM;
    memcpy(*out, blob, len);
    *out_len = len;
    return 0;
}

/* A stored output as a value. */
static int read_output(sl_store_t *store, sqlite3_stmt *st, int col, sl_value_t **out)
{
    uint8_t *data = NULL;
    size_t len = 0, used = 0;
    int rc = read_bytes(store, st, col, &data, &len);
    if (rc == 0)
        rc = sl__value_wire_decode(data, len, &used, out);
    if (rc == 0 && used != len) {
        sl_value_free(*out);
        rc = SL_EPARSE;
    }
    sl__free(data);
    return rc;
}

typedef struct outputs_ctx {
    sl_store_t *store;
    int (*fn)(void *ud, const char *step, size_t item, sl_value_t *output);
    void *ud;
    int rc;
} outputs_ctx_t;

static int each_output(sqlite3_stmt *st, void *ctx)
{
    outputs_ctx_t *c = ctx;
    sl_value_t *output = NULL;
    int rc = read_output(c->store, st, 2, &output);
    if (rc == SL_ENOTFOUND || rc == SL_EPARSE)
        return 0; /* a lost or damaged output: that task runs again */
    if (rc < 0)
        return c->rc = rc;
    return c->fn(c->ud, text(st, 0), (size_t)sqlite3_column_int64(st, 1), output);
}

int sl__store_load_outputs(sl_store_t *store, int64_t run_seq,
                           int (*fn)(void *ud, const char *step, size_t item, sl_value_t *output),
                           void *ud, char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db,
                               "SELECT s.id, t.item, t.output, t.object FROM"
                               " tasks t JOIN steps s ON s.run = t.run AND s.idx = t.step"
                               " WHERE t.run = ? AND t.status = 'ok'",
                               &st, err, err_size);
    outputs_ctx_t ctx = {store, fn, ud, 0};
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, run_seq);
        rc = each_row(store, st, each_output, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    if (rc == 0 && ctx.rc < 0) {
        snprintf(err, err_size, "reading recorded outputs: %s", sl_strerror(ctx.rc));
        rc = ctx.rc;
    }
    return rc;
}

/* ---- the cache ---------------------------------------------------------------------- */

static int each_cache(sqlite3_stmt *st, void *ctx)
{
    cb_ctx_t *c = ctx;
    sl_store_cache_row_t r = {
        .key = text(st, 0),
        .step = text(st, 1),
        .kind = text(st, 2),
        .version = text(st, 3),
        .file = text_or_null(st, 4),
        .file_hash = text_or_null(st, 5),
        .etag = text_or_null(st, 6),
        .last_modified = text_or_null(st, 7),
        .item = sqlite3_column_int64(st, 8),
        .created_ms = sqlite3_column_int64(st, 9),
        .parts = sqlite3_column_blob(st, 10),
        .parts_len = (size_t)sqlite3_column_bytes(st, 10),
    };
    return ((int (*)(void *, const sl_store_cache_row_t *))c->fn)(c->ud, &r);
}

int sl__store_cache_list(sl_store_t *store, const char *workflow,
                         int (*fn)(void *ud, const sl_store_cache_row_t *row), void *ud, char *err,
                         size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db,
                               "SELECT key, step, kind, version, file,"
                               " file_hash, etag, last_modified, item, created, parts FROM"
                               " cache WHERE workflow = ?",
                               &st, err, err_size);
    cb_ctx_t ctx = {(void *)fn, ud};
    if (rc == 0) {
        sqlite3_bind_text(st, 1, workflow, -1, SQLITE_STATIC);
        rc = each_row(store, st, each_cache, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

/* The statement is prepared once and kept: a cached rerun asks once per task. */
int sl__store_cache_output(sl_store_t *store, const char *key, uint8_t **data, size_t *len,
                           char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    int rc = 0, found = SL_ENOTFOUND;
    if (store->cache_output_st == NULL)
        rc = sl__store_prepare(store->read_db, "SELECT output, object FROM cache WHERE key = ?",
                               &store->cache_output_st, err, err_size);
    sqlite3_stmt *st = store->cache_output_st;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            found = read_bytes(store, st, 0, data, len);
        else if (step != SQLITE_DONE)
            rc = sl__store_fail(store->read_db, "reading the state database", err, err_size);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    pthread_mutex_unlock(&store->read_lock);
    if (rc == 0 && found < 0) {
        snprintf(err, err_size, "cache entry %.12s: %s", key, sl_strerror(found));
        return found;
    }
    return rc;
}

int sl__store_cache_clear(sl_store_t *store, const char *workflow, uint64_t *removed, char *err,
                          size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db,
                               "DELETE FROM cache WHERE ?1 IS NULL OR"
                               " workflow = ?1",
                               &st, err, err_size);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, workflow, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sl__store_fail(store->read_db, "clearing the cache", err, err_size);
        *removed = (uint64_t)sqlite3_changes(store->read_db);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

/* ---- Slurm array jobs --------------------------------------------------------------- */

typedef struct slurm_ctx {
    int (*fn)(void *ud, const sl_store_slurm_job_t *job);
    void *ud;
    int rc;
} slurm_ctx_t;

static int each_slurm_job(sqlite3_stmt *st, void *ctx)
{
    slurm_ctx_t *c = ctx;
    sl_value_t *tasks = NULL;
    const void *blob = sqlite3_column_blob(st, 6);
    size_t used = 0;
    if (blob && sl__value_wire_decode(blob, (size_t)sqlite3_column_bytes(st, 6), &used,
                                      &tasks) < 0)
        return 0; /* unreadable: that array is submitted again */
    sl_store_slurm_job_t job = {
        .job_id = sqlite3_column_int64(st, 0),
        .step = text(st, 1),
        .name = text(st, 2),
        .dir = text(st, 3),
        .first = sqlite3_column_int64(st, 4),
        .elements = sqlite3_column_int64(st, 5),
        .tasks = tasks,
    };
    c->rc = tasks ? c->fn(c->ud, &job) : 0;
    sl_value_free(tasks);
    return c->rc;
}

int sl__store_slurm_jobs(sl_store_t *store, int64_t run_seq,
                         int (*fn)(void *ud, const sl_store_slurm_job_t *job), void *ud,
                         char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    sqlite3_stmt *st;
    int rc = sl__store_prepare(store->read_db,
                               "SELECT job, step, name, dir, first, elements, tasks FROM"
                               " slurm_jobs WHERE run = ? ORDER BY job",
                               &st, err, err_size);
    slurm_ctx_t ctx = {fn, ud, 0};
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, run_seq);
        rc = each_row(store, st, each_slurm_job, &ctx, err, err_size);
    }
    pthread_mutex_unlock(&store->read_lock);
    if (rc == 0 && ctx.rc < 0) {
        snprintf(err, err_size, "reading the run's Slurm jobs: %s", sl_strerror(ctx.rc));
        rc = ctx.rc;
    }
    return rc;
}
