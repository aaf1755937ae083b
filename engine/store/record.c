/*
 * What a run records, on the loop thread: each call copies its data into a record of the
 * filling block (writer.c) and returns; nothing here waits for the database.
 */
#include <string.h>
#include <unistd.h>

#include "store/internal.h"

static uint32_t text_len(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return s == NULL ? REC_NULL : n < REC_NULL ? (uint32_t)n : REC_NULL - 1;
}

/* Copies text into part `i` (as long as text_len said). */
static void put_text(rec_t *r, size_t i, const char *s)
{
    uint32_t len;
    uint8_t *p = sl__store_part(r, i, &len);
    if (p)
        memcpy(p, s, len);
}

/* The wire size of `v` for a part, or REC_NULL when there is none (or it is too big to
 * encode: then the record says nothing rather than something wrong). */
static uint32_t value_len(const sl_value_t *v)
{
    size_t size;
    if (v == NULL || sl__value_wire_size(v, &size) < 0 || size >= REC_NULL)
        return REC_NULL;
    return (uint32_t)size;
}

static void put_value(rec_t *r, size_t i, const sl_value_t *v)
{
    uint8_t *p = sl__store_part(r, i, NULL);
    if (p)
        sl__value_wire_encode(v, p);
}

void sl__store_task(sl_store_run_t *run, const sl_store_task_t *task)
{
    sl_store_task_t t_ = *task, *t = &t_;
    uint32_t len[3] = {text_len(t->error), value_len(t->output), text_len(t->cache_note)};
    if (t->status == SL_STORE_TASK_OK && len[1] == REC_NULL) {
        /* Past the wire encoding's bounds: not recorded as done, so a resume reruns it. */
        t->status = SL_STORE_TASK_CANCELED;
        t->error = "its output is too large to record";
        len[0] = text_len(t->error);
    }
    rec_t *r = sl__store_record(run->store, REC_TASK, run->seq, 3, len);
    if (r == NULL)
        return;
    r->num[0] = (int64_t)t->step;
    r->num[1] = (int64_t)t->item;
    r->num[2] = t->attempts;
    r->num[3] = t->started_ms;
    r->num[4] = t->ended_ms;
    r->status = (uint8_t)t->status;
    r->flag = t->cached;
    put_text(r, 0, t->error);
    put_value(r, 1, t->output);
    put_text(r, 2, t->cache_note);
}

void sl__store_step(sl_store_run_t *run, size_t step, const sl_store_step_t *c)
{
    uint32_t len[4] = {text_len(c->status), text_len(c->id), text_len(c->kind),
                       text_len(c->def_hash)};
    rec_t *r = sl__store_record(run->store, REC_STEP, run->seq, 4, len);
    if (r == NULL)
        return;
    put_text(r, 1, c->id);
    put_text(r, 2, c->kind);
    put_text(r, 3, c->def_hash);
    int64_t nums[REC_NUMS] = {(int64_t)step, c->started_ms, c->ended_ms, (int64_t)c->total,
                              (int64_t)c->ok, (int64_t)c->failed, (int64_t)c->skipped,
                              (int64_t)c->cached, (int64_t)c->retries};
    memcpy(r->num, nums, sizeof(nums));
    put_text(r, 0, c->status);
}

void sl__store_log(sl_store_run_t *run, int level, const char *where, const char *message,
                   int64_t time_ms)
{
    uint32_t len[2] = {text_len(where), text_len(message)};
    rec_t *r = sl__store_record(run->store, REC_LOG, run->seq, 2, len);
    if (r == NULL)
        return;
    r->num[0] = time_ms;
    r->num[1] = level;
    r->num[2] = ++run->log_seq;
    put_text(r, 0, where);
    put_text(r, 1, message);
}

void sl__store_cache_put(sl_store_run_t *run, const sl_store_cache_entry_t *e)
{
    const char *texts[5] = {e->key, e->workflow, e->step, e->kind, e->version};
    const char *files[4] = {e->file, e->file_hash, e->etag, e->last_modified};
    uint32_t len[11];
    for (size_t i = 0; i < 5; i++)
        len[i] = text_len(texts[i]);
    len[5] = value_len(e->parts);
    len[6] = value_len(e->output);
    for (size_t i = 0; i < 4; i++)
        len[7 + i] = text_len(files[i]);
    rec_t *r = sl__store_record(run->store, REC_CACHE, run->seq, 11, len);
    if (r == NULL)
        return;
    r->num[0] = (int64_t)e->item;
    r->num[1] = sl__store_now_ms();
    for (size_t i = 0; i < 5; i++)
        put_text(r, i, texts[i]);
    put_value(r, 5, e->parts);
    put_value(r, 6, e->output);
    for (size_t i = 0; i < 4; i++)
        put_text(r, 7 + i, files[i]);
}

/* The run's end (or, with `drop`, its removal), and its lock handed to the writer. */
static void queue_end(sl_store_run_t *run, const char *status, int64_t finished_ms,
                      const char *error, const uint64_t counts[3], bool drop)
{
    uint32_t len[3] = {text_len(status), text_len(error), run->lock_path ?
                       (uint32_t)strlen(run->lock_path) + 1 : REC_NULL};
    rec_t *r = sl__store_record(run->store, REC_RUN_END, run->seq, 3, len);
    if (r) {
        int64_t nums[5] = {finished_ms, (int64_t)counts[0], (int64_t)counts[1],
                           (int64_t)counts[2], run->lock_fd};
        memcpy(r->num, nums, sizeof(nums));
        r->flag = drop;
        put_text(r, 0, status);
        put_text(r, 1, error);
        uint8_t *p = sl__store_part(r, 2, NULL);
        if (p)
            memcpy(p, run->lock_path, len[2]); /* with its NUL: the writer unlinks it */
        run->lock_fd = -1; /* the writer closes it once the end is committed */
    }
    if (run->lock_fd >= 0) { /* no record: the lock goes now, the run reads as interrupted */
        unlink(run->lock_path);
        close(run->lock_fd);
    }
    sl__store_hand_over(run->store);
    sl__free(run->lock_path);
    sl__free(run);
}

void sl__store_run_end(sl_store_run_t *run, const char *status, int64_t finished_ms,
                       const char *error, uint64_t tasks_ok, uint64_t tasks_failed,
                       uint64_t tasks_cached)
{
    uint64_t counts[3] = {tasks_ok, tasks_failed, tasks_cached};
    queue_end(run, status, finished_ms, error, counts, false);
}

void sl__store_run_drop(sl_store_run_t *run)
{
    uint64_t counts[3] = {0, 0, 0};
    queue_end(run, NULL, 0, NULL, counts, true);
}

void sl__store_slurm_job(sl_store_run_t *run, const sl_store_slurm_job_t *job)
{
    const char *texts[3] = {job->step, job->name, job->dir};
    uint32_t len[4] = {text_len(texts[0]), text_len(texts[1]), text_len(texts[2]),
                       value_len(job->tasks)};
    rec_t *r = sl__store_record(run->store, REC_SLURM_JOB, run->seq, 4, len);
    if (r == NULL)
        return;
    r->num[0] = job->job_id;
    r->num[1] = job->first;
    r->num[2] = job->elements;
    for (size_t i = 0; i < 3; i++)
        put_text(r, i, texts[i]);
    if (len[3] != REC_NULL)
        put_value(r, 3, job->tasks);
}
