/*
 * The writer: records are put into blocks on the loop thread (no lock, no system call),
 * a block is handed to the writer thread once per loop turn or when full, and the writer
 * commits everything waiting in one transaction. While it commits, the next records
 * gather, so a busy run writes few large transactions and a quiet one small prompt ones:
 * group commit without a timer. After a failure (disk full, a corrupted database) nothing
 * more is written; the loop hears of it and stops the run.
 *
 * Record layouts (rec_t.num, then the parts):
 *   TASK     step, item, attempts, started, ended; status, flag = cached;
 *            error, output (wire), cache note
 *   STEP     step, started, ended, total, ok, failed, skipped, cached, retries; status,
 *            id, kind, definition hash
 *   LOG      time, level, seq; where, message
 *   CACHE    item, created; key, workflow, step, kind, version, parts (wire), output
 *            (wire), file, file hash, etag, last-modified
 *   RUN_END  finished, ok, failed, cached, lock fd; status, error, lock path
 *   STEP_INFO step; id, kind, definition hash, needs (JSON) (a run's steps, written with
 *            its first batch; a STEP record keeps the row's needs)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/internal.h"
#include "util/sha256.h"

/* ---- the loop side: records into blocks ------------------------------------------ */

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void note_failure(sl_store_t *store, const char *message)
{
    pthread_mutex_lock(&store->lock);
    if (store->error == NULL)
        store->error = sl__strdup(message);
    pthread_mutex_unlock(&store->lock);
    if (store->attached)
        uv_async_send(&store->notify);
}

void sl__store_hand_over(sl_store_t *store)
{
    rec_block_t *block = store->filling;
    if (block == NULL || block->records == 0)
        return;
    store->filling = NULL;
    pthread_mutex_lock(&store->lock);
    if (store->queue_tail)
        store->queue_tail->next = block;
    else
        store->queue_head = block;
    store->queue_tail = block;
    store->queued += block->records;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->lock);
}

rec_t *sl__store_record(sl_store_t *store, rec_type_t type, int64_t run, size_t parts,
                        const uint32_t *len)
{
    size_t size = pad8(sizeof(rec_t) + parts * sizeof(uint32_t));
    for (size_t i = 0; i < parts; i++)
        size += len[i] == REC_NULL ? 0 : pad8(len[i]);
    rec_block_t *block = store->filling;
    if (block && block->cap - block->used < size) {
        sl__store_hand_over(store);
        block = NULL;
    }
    if (block == NULL) {
        size_t cap = size > STORE_BLOCK_BYTES ? size : STORE_BLOCK_BYTES;
        block = sl__malloc(sizeof(*block) + cap);
        if (block == NULL) {
            note_failure(store, "out of memory queuing a record");
            return NULL;
        }
        *block = (rec_block_t){.cap = cap};
        store->filling = block;
    }
    rec_t *r = (rec_t *)(void *)(block->data + block->used);
    memset(r, 0, sizeof(*r));
    r->size = (uint32_t)size;
    r->type = (uint8_t)type;
    r->parts = (uint8_t)parts;
    r->run = run;
    memcpy((uint8_t *)(r + 1), len, parts * sizeof(uint32_t));
    block->used += size;
    block->records++;
    store->filled++;
    return r;
}

uint8_t *sl__store_part(const rec_t *r, size_t i, uint32_t *len)
{
    const uint32_t *lens = (const uint32_t *)(const void *)(r + 1);
    uint8_t *p = (uint8_t *)r + pad8(sizeof(rec_t) + r->parts * sizeof(uint32_t));
    for (size_t k = 0; k < i; k++)
        p += lens[k] == REC_NULL ? 0 : pad8(lens[k]);
    if (len)
        *len = lens[i] == REC_NULL ? 0 : lens[i];
    return lens[i] == REC_NULL ? NULL : p;
}

/* ---- the writer thread: records into SQL --------------------------------------------- */

enum {
    ST_TASK, ST_STEP, ST_LOG, ST_CACHE, ST_RUN_END, ST_STEP_INFO, ST_SLURM_JOB, ST_ONE,
    ST_COUNT = ST_ONE
};

/* Runs of the same record go BATCH_ROWS to a statement: one statement per row is most of
 * a busy run's write time (1.1 µs a task row against 0.6). */
#define BATCH_ROWS 16

/* A step's row is replaced whole at each STEP record: its needs (recorded at the run's
 * start) are carried over from the row it replaces. */
#define STEP_NEEDS "(SELECT needs FROM steps WHERE run = ? AND idx = ?)"

static const char *const statements[ST_COUNT] = {
    "INSERT OR REPLACE INTO tasks(run, step, item, status, attempts, started, finished,"
    " error, output, object, cached, cache_note) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "INSERT OR REPLACE INTO steps(run, idx, status, started, finished, total, ok, failed,"
    " skipped, cached, retries, id, kind, def_hash, needs)"
    " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " STEP_NEEDS ")",
    "INSERT OR REPLACE INTO logs(run, seq, time, level, task, message)"
    " VALUES(?, ?, ?, ?, ?, ?)",
    "INSERT OR REPLACE INTO cache(key, workflow, step, item, kind, version, parts, output,"
    " object, file, file_hash, etag, last_modified, created, run)"
    " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "UPDATE runs SET status = ?2, finished = ?3, error = ?4, tasks_ok = ?5,"
    " tasks_failed = ?6, tasks_cached = ?7 WHERE seq = ?1",
    "INSERT INTO steps(run, idx, id, kind, def_hash, needs, status, total, ok, failed,"
    " skipped, cached, retries) VALUES(?, ?, ?, ?, ?, ?, 'waiting', 0, 0, 0, 0, 0, 0)",
    "INSERT OR REPLACE INTO slurm_jobs(run, job, step, name, dir, first, elements, tasks)"
    " VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
};

static const char *const task_status_names[] = {"ok", "failed", "skipped", "canceled"};
static const char *const level_names[] = {"debug", "info", "warn", "error"};

typedef struct batch_kind batch_kind_t;

/* The runs of one batch whose latest task end is kept (a daemon writes several runs at
 * once); a batch with more writes the oldest kept one early. */
#define ACTIVE_RUNS 8

typedef struct writer {
    sl_store_t *store;
    sqlite3_stmt *st[ST_COUNT];
    sqlite3_stmt *batch_st[3]; /* batch_kinds' statements */
    sqlite3_stmt *active_st;   /* a batch's latest task ends onto their runs' rows */
    struct {
        int64_t run, ms;
    } active[ACTIVE_RUNS]; /* the batch's runs and their latest task ends */
    int actives;
    bool wrote_objects;
    char err[512];
} writer_t;

static void bind_part(sqlite3_stmt *st, int col, const rec_t *r, size_t part)
{
    uint32_t len;
    const uint8_t *p = sl__store_part(r, part, &len);
    if (p)
        sqlite3_bind_text(st, col, (const char *)p, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, col);
}

/* An output inline when small, else as an object named by its hash. */
static int bind_output(writer_t *w, sqlite3_stmt *st, int col, const rec_t *r, size_t part)
{
    uint32_t len;
    const uint8_t *p = sl__store_part(r, part, &len);
    if (p == NULL || len <= SL_STORE_INLINE_MAX) {
        if (p)
            sqlite3_bind_blob(st, col, p, (int)len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, col);
        sqlite3_bind_null(st, col + 1);
        return 0;
    }
    char hex[SL_SHA256_HEX_SIZE];
    sl__sha256_hex_of(p, len, hex);
    int rc = sl__store_object_put(w->store, hex, p, len, w->err, sizeof(w->err));
    if (rc < 0)
        return rc;
    w->wrote_objects = true;
    sqlite3_bind_null(st, col);
    sqlite3_bind_text(st, col + 1, hex, -1, SQLITE_TRANSIENT);
    return 0;
}

static int step_statement(writer_t *w, sqlite3_stmt *st, int rc)
{
    if (rc == 0 && sqlite3_step(st) != SQLITE_DONE)
        rc = sl__store_fail(w->store->write_db, "writing the state database", w->err,
                            sizeof(w->err));
    sqlite3_reset(st); /* every statement binds each of its columns: no clearing */
    return rc;
}

static int write_active(writer_t *w, int i)
{
    sqlite3_bind_int64(w->active_st, 1, w->active[i].run);
    sqlite3_bind_int64(w->active_st, 2, w->active[i].ms);
    return step_statement(w, w->active_st, 0);
}

/* A task record's end time for its run's `active` column, written with the batch. */
static int note_active(writer_t *w, int64_t run, int64_t ms)
{
    int i = 0;
    while (i < w->actives && w->active[i].run != run)
        i++;
    if (i == w->actives) {
        if (i == ACTIVE_RUNS) {
            int rc = write_active(w, 0);
            memmove(&w->active[0], &w->active[1], sizeof(w->active[0]) * (ACTIVE_RUNS - 1));
            i--;
            if (rc < 0)
                return rc;
        } else {
            w->actives++;
        }
        w->active[i].run = run, w->active[i].ms = ms;
    } else if (ms > w->active[i].ms) {
        w->active[i].ms = ms;
    }
    return 0;
}

/* A task's columns, from column `at` + 1 on (one row of a multi-row statement). */
static int bind_task(writer_t *w, sqlite3_stmt *st, const rec_t *r, int at)
{
    int rc = note_active(w, r->run, r->num[4]);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, at + 1, r->run);
    sqlite3_bind_int64(st, at + 2, r->num[0]);
    sqlite3_bind_int64(st, at + 3, r->num[1]);
    sqlite3_bind_text(st, at + 4, task_status_names[r->status & 3], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, at + 5, r->num[2]);
    if (r->num[3])
        sqlite3_bind_int64(st, at + 6, r->num[3]);
    else
        sqlite3_bind_null(st, at + 6);
    sqlite3_bind_int64(st, at + 7, r->num[4]);
    bind_part(st, at + 8, r, 0);
    sqlite3_bind_int(st, at + 11, r->flag);
    bind_part(st, at + 12, r, 2);
    return bind_output(w, st, at + 9, r, 1);
}

static int bind_step(writer_t *w, sqlite3_stmt *st, const rec_t *r, int at)
{
    sqlite3_bind_int64(st, at + 1, r->run);
    sqlite3_bind_int64(st, at + 2, r->num[0]);
    bind_part(st, at + 3, r, 0);
    for (int i = 1; i <= 8; i++)
        sqlite3_bind_int64(st, at + 3 + i, r->num[i]);
    for (int i = 1; i <= 3; i++)
        bind_part(st, at + 11 + i, r, (size_t)i);
    sqlite3_bind_int64(st, at + 15, r->run);
    sqlite3_bind_int64(st, at + 16, r->num[0]);
    return 0;
}

static int bind_log(sqlite3_stmt *st, const rec_t *r)
{
    sqlite3_bind_int64(st, 2, r->num[2]);
    sqlite3_bind_int64(st, 3, r->num[0]);
    sqlite3_bind_text(st, 4, level_names[r->num[1] & 3], -1, SQLITE_STATIC);
    bind_part(st, 5, r, 0);
    bind_part(st, 6, r, 1);
    return 0;
}

static int bind_cache(writer_t *w, sqlite3_stmt *st, const rec_t *r)
{
    static const int text_cols[] = {1, 2, 3, 5, 6};
    for (size_t i = 0; i < SL_COUNTOF(text_cols); i++)
        bind_part(st, text_cols[i], r, i);
    uint32_t len;
    const uint8_t *parts = sl__store_part(r, 5, &len);
    sqlite3_bind_blob(st, 7, parts, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->num[0]);
    for (int i = 0; i < 4; i++)
        bind_part(st, 10 + i, r, 7 + (size_t)i);
    /* The file a task saved is hashed here, off the loop, as the entry is recorded. */
    const char *file = (const char *)sl__store_part(r, 7, &len);
    if (file && sl__store_part(r, 8, NULL) == NULL) {
        char path[4096], hex[SL_SHA256_HEX_SIZE];
        snprintf(path, sizeof(path), "%.*s", (int)len, file);
        if (sl__sha256_file(path, hex) == 0)
            sqlite3_bind_text(st, 11, hex, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(st, 14, r->num[1]);
    sqlite3_bind_int64(st, 15, r->run);
    return bind_output(w, st, 8, r, 6);
}

static int bind_run_end(sqlite3_stmt *st, const rec_t *r)
{
    bind_part(st, 2, r, 0);
    sqlite3_bind_int64(st, 3, r->num[0]);
    bind_part(st, 4, r, 1);
    for (int i = 0; i < 3; i++)
        sqlite3_bind_int64(st, 5 + i, r->num[1 + i]);
    return 0;
}

static int bind_step_info(writer_t *w, sqlite3_stmt *st, const rec_t *r, int at)
{
    sqlite3_bind_int64(st, at + 1, r->run);
    sqlite3_bind_int64(st, at + 2, r->num[0]);
    for (int i = 0; i < 4; i++)
        bind_part(st, at + 3 + i, r, (size_t)i);
    return 0;
}

static int bind_slurm_job(sqlite3_stmt *st, const rec_t *r)
{
    sqlite3_bind_int64(st, 2, r->num[0]);
    for (int i = 0; i < 3; i++)
        bind_part(st, 3 + i, r, (size_t)i);
    sqlite3_bind_int64(st, 6, r->num[1]);
    sqlite3_bind_int64(st, 7, r->num[2]);
    uint32_t len;
    const uint8_t *tasks = sl__store_part(r, 3, &len);
    if (tasks)
        sqlite3_bind_blob(st, 8, tasks, (int)len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 8);
    return 0;
}

static int write_record(writer_t *w, const rec_t *r)
{
    int which = r->type - REC_TASK;
    if (which < 0 || which >= ST_COUNT)
        return 0;
    sqlite3_stmt *st = w->st[which];
    sqlite3_bind_int64(st, 1, r->run);
    int rc = which == ST_TASK        ? bind_task(w, st, r, 0)
             : which == ST_STEP      ? bind_step(w, st, r, 0)
             : which == ST_LOG       ? bind_log(st, r)
             : which == ST_CACHE     ? bind_cache(w, st, r)
             : which == ST_STEP_INFO ? bind_step_info(w, st, r, 0)
             : which == ST_SLURM_JOB ? bind_slurm_job(st, r)
                                     : bind_run_end(st, r);
    return step_statement(w, st, rc);
}

/* A committed run end lets its lock go: the run is over and recorded as such. */
static void release_locks(const rec_block_t *blocks)
{
    for (const rec_block_t *b = blocks; b; b = b->next) {
        for (size_t at = 0; at < b->used;) {
            const rec_t *r = (const rec_t *)(const void *)(b->data + at);
            if (r->type == REC_RUN_END && r->num[4] >= 0) {
                const char *path = (const char *)sl__store_part(r, 2, NULL);
                if (path)
                    unlink(path);
                close((int)r->num[4]);
            }
            at += r->size;
        }
    }
}

/* The records written BATCH_ROWS to a statement: SQL before the rows, one row's values,
 * SQL after them, and how a record binds from column `at` + 1 on. */
struct batch_kind {
    rec_type_t type;
    int columns;
    const char *head, *row, *tail;
    int (*bind)(writer_t *w, sqlite3_stmt *st, const rec_t *r, int at);
};

static const batch_kind_t batch_kinds[3] = {
    {REC_TASK, 12,
     "INSERT OR REPLACE INTO tasks(run, step, item, status, attempts, started, finished,"
     " error, output, object, cached, cache_note) VALUES ",
     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "", bind_task},
    {REC_STEP_INFO, 6,
     "INSERT INTO steps(run, idx, id, kind, def_hash, needs, status, total, ok, failed,"
     " skipped, cached, retries) VALUES ",
     "(?, ?, ?, ?, ?, ?, 'waiting', 0, 0, 0, 0, 0, 0)", "", bind_step_info},
    /* a step's end replaces its row whole: an UPDATE costs more, and UPDATE … FROM
     * (VALUES …) ten times more, than a replacing insert */
    {REC_STEP, 16,
     "INSERT OR REPLACE INTO steps(run, idx, status, started, finished, total, ok, failed,"
     " skipped, cached, retries, id, kind, def_hash, needs) VALUES ",
     "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " STEP_NEEDS ")", "", bind_step},
};

/* BATCH_ROWS records of one batch kind from `at` in one statement, when that many follow
 * in the block: returns the bytes taken, 0 when they do not (they go one by one), or a
 * negative code. */
static long write_batch(writer_t *w, const rec_block_t *b, size_t at)
{
    const rec_t *first = (const rec_t *)(const void *)(b->data + at);
    size_t kind = 0;
    while (kind < SL_COUNTOF(batch_kinds) && batch_kinds[kind].type != first->type)
        kind++;
    if (kind == SL_COUNTOF(batch_kinds))
        return 0;
    const rec_t *rows[BATCH_ROWS];
    size_t end = at;
    for (int k = 0; k < BATCH_ROWS; k++) {
        if (end >= b->used)
            return 0;
        rows[k] = (const rec_t *)(const void *)(b->data + end);
        if (rows[k]->type != first->type)
            return 0;
        end += rows[k]->size;
    }
    const batch_kind_t *bk = &batch_kinds[kind];
    int rc = 0;
    for (int k = 0; k < BATCH_ROWS && rc == 0; k++)
        rc = bk->bind(w, w->batch_st[kind], rows[k], k * bk->columns);
    rc = step_statement(w, w->batch_st[kind], rc);
    return rc < 0 ? rc : (long)(end - at);
}

static int write_blocks(writer_t *w, const rec_block_t *blocks)
{
    sqlite3 *db = w->store->write_db;
    w->wrote_objects = false;
    w->actives = 0;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sl__store_fail(db, "writing the state database", w->err, sizeof(w->err));
    int rc = 0;
    for (const rec_block_t *b = blocks; b && rc == 0; b = b->next)
        for (size_t at = 0; at < b->used && rc == 0;) {
            long taken = write_batch(w, b, at);
            if (taken > 0) {
                at += (size_t)taken;
                continue;
            }
            const rec_t *r = (const rec_t *)(const void *)(b->data + at);
            rc = taken < 0 ? (int)taken : write_record(w, r);
            at += r->size;
        }
    for (int i = 0; i < w->actives && rc == 0; i++)
        rc = write_active(w, i);
    /* Objects are durable before the rows that name them. */
    if (rc == 0 && w->wrote_objects && sl__store_objects_sync(w->store) < 0)
        rc = SL_EIO,
        snprintf(w->err, sizeof(w->err), "syncing %s: %s", w->store->objects_dir, strerror(errno));
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = sl__store_fail(db, "committing to the state database", w->err, sizeof(w->err));
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void free_blocks(rec_block_t *b)
{
    while (b) {
        rec_block_t *next = b->next;
        sl__free(b);
        b = next;
    }
}

static uint64_t count_records(const rec_block_t *b)
{
    uint64_t n = 0;
    for (; b; b = b->next)
        n += b->records;
    return n;
}

static void finalize_all(writer_t *w)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(w->st[i]);
    for (size_t i = 0; i < SL_COUNTOF(w->batch_st); i++)
        sqlite3_finalize(w->batch_st[i]);
    sqlite3_finalize(w->active_st);
}

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    sl_store_t *store = w->store;
    pthread_mutex_lock(&store->lock);
    for (;;) {
        while (store->queue_head == NULL && !store->stopping)
            pthread_cond_wait(&store->wake, &store->lock);
        if (store->queue_head == NULL)
            break;
        rec_block_t *blocks = store->queue_head;
        store->queue_head = store->queue_tail = NULL;
        bool failed = store->error != NULL;
        pthread_mutex_unlock(&store->lock);
        int rc = failed ? 0 : write_blocks(w, blocks);
        release_locks(blocks); /* after a failure too: the process is the run's owner */
        pthread_mutex_lock(&store->lock);
        if (rc < 0 && store->error == NULL)
            store->error = sl__strdup(w->err);
        store->committed += count_records(blocks);
        pthread_cond_broadcast(&store->done);
        if (store->attached)
            uv_async_send(&store->notify);
        pthread_mutex_unlock(&store->lock);
        free_blocks(blocks);
        pthread_mutex_lock(&store->lock);
    }
    pthread_mutex_unlock(&store->lock);
    finalize_all(w);
    sl__free(w);
    return NULL;
}

/* A batch kind's statement with BATCH_ROWS rows of values. */
static char *batch_sql(const batch_kind_t *bk)
{
    sl_buf_t b;
    sl__buf_init(&b, 16384);
    int rc = sl__buf_addf(&b, "%s", bk->head);
    for (int k = 0; rc == 0 && k < BATCH_ROWS; k++)
        rc = sl__buf_addf(&b, "%s%s", k ? ", " : "", bk->row);
    if (rc == 0)
        rc = sl__buf_addf(&b, "%s", bk->tail);
    char *sql = rc == 0 ? sl__buf_take(&b, NULL) : NULL;
    sl__buf_close(&b);
    return sql;
}

int sl__store_writer_start(sl_store_t *store, char *err, size_t err_size)
{
    writer_t *w = sl__calloc(1, sizeof(*w));
    if (w == NULL)
        return SL_ENOMEM;
    w->store = store;
    int rc = 0;
    for (int i = 0; i < ST_COUNT && rc == 0; i++)
        if (statements[i])
            rc = sl__store_prepare(store->write_db, statements[i], &w->st[i], err, err_size);
    if (rc == 0)
        rc = sl__store_prepare(store->write_db,
                               "UPDATE runs SET active = max(coalesce(active,"
                               " 0), ?2) WHERE seq = ?1",
                               &w->active_st, err, err_size);
    for (size_t i = 0; i < SL_COUNTOF(batch_kinds) && rc == 0; i++) {
        char *sql = batch_sql(&batch_kinds[i]);
        rc = sql ? sl__store_prepare(store->write_db, sql, &w->batch_st[i], err, err_size)
                 : SL_ENOMEM;
        sl__free(sql);
    }
    if (rc == 0 && pthread_create(&store->thread, NULL, writer_main, w) != 0) {
        snprintf(err, err_size, "cannot start the state writer: %s", strerror(errno));
        rc = SL_ESYS;
    }
    if (rc < 0) {
        finalize_all(w);
        sl__free(w);
        return rc;
    }
    store->thread_started = true;
    return 0;
}

void sl__store_writer_stop(sl_store_t *store)
{
    if (!store->thread_started)
        return;
    sl__store_hand_over(store);
    pthread_mutex_lock(&store->lock);
    store->stopping = true;
    pthread_cond_signal(&store->wake);
    pthread_mutex_unlock(&store->lock);
    pthread_join(store->thread, NULL);
    store->thread_started = false;
    free_blocks(store->filling);
    store->filling = NULL;
}

int sl__store_sync(sl_store_t *store, char *err, size_t err_size)
{
    sl__store_hand_over(store);
    pthread_mutex_lock(&store->lock);
    while (store->committed < store->queued && store->error == NULL && store->thread_started)
        pthread_cond_wait(&store->done, &store->lock);
    int rc = store->error ? SL_EIO : 0;
    if (rc < 0)
        snprintf(err, err_size, "%s", store->error);
    pthread_mutex_unlock(&store->lock);
    return rc;
}

/* ---- the loop side: once per turn, and the writer's news ------------------------------- */

static void on_turn(uv_prepare_t *prepare)
{
    sl__store_hand_over(prepare->data);
}

static void on_notify(uv_async_t *async)
{
    sl_store_t *store = async->data;
    pthread_mutex_lock(&store->lock);
    uint64_t committed = store->committed;
    char *error = store->error && !store->error_reported ? sl__strdup(store->error) : NULL;
    store->error_reported = store->error_reported || error != NULL;
    pthread_mutex_unlock(&store->lock);
    if (store->event_cb && (committed != store->reported || error))
        store->event_cb(store->event_ud, committed, error);
    store->reported = committed;
    sl__free(error);
}

int sl__store_attach(sl_store_t *store, uv_loop_t *loop, sl_store_event_cb cb, void *ud)
{
    if (uv_prepare_init(loop, &store->turn) < 0)
        return SL_ESYS;
    if (uv_async_init(loop, &store->notify, on_notify) < 0) {
        uv_close((uv_handle_t *)&store->turn, NULL);
        return SL_ESYS;
    }
    store->turn.data = store->notify.data = store;
    uv_prepare_start(&store->turn, on_turn);
    uv_unref((uv_handle_t *)&store->turn); /* neither keeps the loop alive */
    uv_unref((uv_handle_t *)&store->notify);
    store->loop = loop;
    store->event_cb = cb;
    store->event_ud = ud;
    pthread_mutex_lock(&store->lock);
    store->attached = true;
    pthread_mutex_unlock(&store->lock);
    store->handles_open = 2;
    return 0;
}

static void on_closed(uv_handle_t *handle)
{
    ((sl_store_t *)handle->data)->handles_open--;
}

void sl__store_detach(sl_store_t *store)
{
    if (store == NULL || store->loop == NULL)
        return;
    sl__store_hand_over(store);
    pthread_mutex_lock(&store->lock);
    store->attached = false; /* the writer sends nothing more */
    pthread_mutex_unlock(&store->lock);
    uv_close((uv_handle_t *)&store->turn, on_closed);
    uv_close((uv_handle_t *)&store->notify, on_closed);
    while (store->handles_open > 0)
        uv_run(store->loop, UV_RUN_NOWAIT);
    store->loop = NULL;
}
