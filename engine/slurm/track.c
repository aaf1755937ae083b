/*
 * slurm/track: following the submitted arrays to their end. One squeue call per poll
 * interval lists all of the executor's elements (by job name, one line each); the
 * interval backs off while nothing changes. An element that left the queue, or ended,
 * has its output file read in the threadpool and verified (whole, one result per task,
 * in order) before its tasks are reported; one that can never start (a Reason such as
 * PartitionConfig) fails with Slurm's reason and is scancel'ed. Cancel and close gather
 * the elements to scancel into one call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slurm/internal.h"
#include "util/fsio.h"

/* Pending reasons that mean the job will never start as submitted. */
static const char *const never_reasons[] = {
    "PartitionConfig",          "PartitionNodeLimit",
    "PartitionTimeLimit",       "BadConstraints",
    "InvalidAccount",           "InvalidQOS",
    "AccountNotAllowed",        "QOSMaxCpuPerJobLimit",
    "QOSMaxMemoryPerJob",       "QOSMaxWallDurationPerJobLimit",
    "AssocMaxCpuPerJobLimit",   "AssocMaxWallDurationPerJobLimit",
    "DependencyNeverSatisfied", NULL};
/* States of an element that has not ended yet. */
static const char *const live_states[] = {"PENDING",   "RUNNING",      "CONFIGURING", "COMPLETING",
                                          "SUSPENDED", "REQUEUED",     "RESIZING",    "STAGE_OUT",
                                          "SIGNALING", "REQUEUE_HOLD", "REQUEUE_FED", NULL};
/* Ended without a chance of results. */
static const char *const failed_states[] = {"FAILED",    "CANCELLED",     "TIMEOUT",
                                            "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                                            "DEADLINE",  "PREEMPTED",     NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* ---- scancel ------------------------------------------------------------------------ */

static void on_scancel(sl_slurm_t *s, void *ud, int64_t status, char *out, size_t len,
                       const char *err)
{
    if (status != 0)
        SL_LOG(SL_LOG_WARN, NULL, NULL, "slurm: scancel failed (exit %lld): %s", (long long)status,
               err);
    if (s->closing)
        s->close_scancel_done = true;
}

/* Adds "JOB" or "JOB_IDX" to the next scancel. */
void sl__slurm_cancel_add(sl_slurm_t *s, uint64_t job, int64_t index)
{
    char id[48];
    if (index >= 0)
        snprintf(id, sizeof(id), "%llu_%lld", (unsigned long long)job, (long long)index);
    else
        snprintf(id, sizeof(id), "%llu", (unsigned long long)job);
    if (sl__array_grow(&s->cancel_ids, &s->cancel_cap, s->cancel_count + 1, sizeof(char *), 16) < 0)
        return;
    char *copy = sl__strdup(id);
    if (copy)
        s->cancel_ids[s->cancel_count++] = copy;
}

/* One scancel for everything gathered. */
void sl__slurm_scancel_flush(sl_slurm_t *s)
{
    if (s->cancel_count == 0) {
        if (s->closing)
            s->close_scancel_done = true;
        return;
    }
    char **argv = sl__calloc(s->cancel_count + 2, sizeof(char *));
    if (argv) {
        argv[0] = "scancel";
        memcpy(argv + 1, s->cancel_ids, s->cancel_count * sizeof(char *));
        if (sl__slurm_cmd(s, argv, on_scancel, NULL) == 0)
            s->stats.scancel++;
        else if (s->closing)
            s->close_scancel_done = true;
        sl__free(argv);
    }
    for (size_t i = 0; i < s->cancel_count; i++)
        sl__free(s->cancel_ids[i]);
    s->cancel_count = 0;
}

/* Elements no job of which is wanted any more: failed (canceled) and scancel'ed. */
static void on_cancel_timer(uv_timer_t *t)
{
    sl_slurm_t *s = t->data;
    for (sl_slurm_sub_t *sub = s->subs, *next; sub; sub = next) {
        next = sub->next; /* the sub goes with its last element */
        for (uint32_t i = 0, n = sub->count; i < n; i++) {
            sl_slurm_elem_t *e = &sub->elems[i];
            if (e->wanted == 0 && e->state == ELEM_QUEUED) {
                sl__slurm_cancel_add(s, sub->job_id, e->array_index);
                bool last = sub->live == 1;
                sl__slurm_elem_fail(e, SL_ECANCELED, "canceled");
                if (last)
                    break;
            }
        }
    }
    sl__slurm_scancel_flush(s);
}

void sl__slurm_cancel_soon(sl_slurm_t *s)
{
    if (!uv_is_active((uv_handle_t *)&s->cancel_timer))
        uv_timer_start(&s->cancel_timer, on_cancel_timer, 0, 0);
}

void sl__slurm_cancel(sl_slurm_t *s, sl_slurm_job_t *job)
{
    sl_slurm_elem_t *e = job->elem;
    if (e == NULL || job->canceled)
        return;
    job->canceled = true;
    if (--e->wanted == 0)
        sl__slurm_cancel_soon(s); /* an element in sbatch waits for its job id */
}

/* ---- collecting an element ---------------------------------------------------------- */

typedef struct collect_work {
    uv_work_t req;
    sl_slurm_elem_t *elem;
    char *output, *log;
    size_t output_len, log_len;
    bool present;
} collect_work_t;

/* Threadpool: the element's output file, or the tail of its log when there is none. */
static void collect_read(uv_work_t *req)
{
    collect_work_t *w = req->data;
    const sl_slurm_elem_t *e = w->elem;
    const char *dir = sl__slurm_sub_dir(e->sub);
    char path[4096];
    snprintf(path, sizeof(path), "%s/e%u.out", dir, e->index);
    sl_fsio_result_t r = sl__fsio_read(path, SLURM_OUTPUT_MAX, &w->output, &w->output_len);
    w->present = r.stage == SL_FSIO_OK;
    if (w->present)
        return;
    snprintf(path, sizeof(path), "%s/s%u_%u.log", dir, e->sub->base, e->array_index);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fseek(f, -(long)SLURM_LOG_TAIL, SEEK_END) < 0)
        rewind(f);
    w->log = sl__malloc(SLURM_LOG_TAIL + 1);
    if (w->log) {
        w->log_len = fread(w->log, 1, SLURM_LOG_TAIL, f);
        w->log[w->log_len] = '\0';
    }
    fclose(f);
}

static void note_time(sl_slurm_job_t *job, uint64_t elapsed_ns)
{
    if (job->task_ns == NULL)
        return;
    uint64_t avg = *job->task_ns;
    avg = avg ? (avg * 7 + elapsed_ns) / 8 : elapsed_ns;
    *job->task_ns = avg ? avg : 1;
}

/* One DONE or FAIL record for the job in *slot (reported, and *slot emptied; an empty slot's
 * record is skipped); false when it is malformed. */
static bool take_record(sl_slurm_t *s, sl_pool_cursor_t *c, uint8_t type, sl_slurm_job_t **slot,
                        sl_wire_keys_t *keys)
{
    sl_slurm_job_t *job = *slot;
    uint64_t elapsed = sl__pool_take_u64(c);
    if (type == SL_POOL_REC_DONE) {
        uint64_t len = sl__pool_take_u64(c);
        const uint8_t *data = sl__pool_take(c, len);
        sl_value_t *v = data ? sl__malloc(sizeof(*v)) : NULL;
        size_t used = 0;
        int rc = v ? sl__value_wire_decode_keys(v, data, len, &used, keys) : SL_ENOMEM;
        if (rc == 0 && used != len) {
            sl_value_free(v); /* decoded, with bytes after it: the file is not one record */
            return false;
        }
        if (rc < 0) {
            sl__free(v);
            return false;
        }
        if (job == NULL) {
            sl_value_free(v);
            return true;
        }
        *slot = NULL;
        note_time(job, elapsed);
        job->elem = NULL;
        if (job->canceled) {
            sl_value_free(v);
            s->cbs.fail(job, SL_ECANCELED, "canceled", 0);
        } else {
            s->cbs.done(job, v);
        }
        return true;
    }
    int code = (int)sl__pool_take_u32(c);
    int64_t retry_after = (int64_t)sl__pool_take_u64(c);
    uint32_t len = sl__pool_take_u32(c);
    const uint8_t *text = sl__pool_take(c, len);
    char *message = text ? sl__strndup((const char *)text, len > 65536 ? 65536 : len) : NULL;
    if (message == NULL)
        return false;
    if (job == NULL) {
        sl__free(message);
        return true;
    }
    *slot = NULL;
    note_time(job, elapsed);
    job->elem = NULL;
    s->cbs.fail(job, job->canceled ? SL_ECANCELED : code, job->canceled ? "canceled" : message,
                retry_after);
    sl__free(message);
    return true;
}

/*
 * Reports the element's jobs from its output (pool/proto.h RESULTS frames, then END).
 * Returns false, reporting nothing more, when the file is not whole or does not answer
 * every task in order; jobs reported before that point stay reported.
 */
static bool elem_results(sl_slurm_elem_t *e, const uint8_t *data, size_t len)
{
    sl_slurm_t *s = e->sub->s;
    sl_pool_cursor_t c = {data, len, 0, 0};
    sl_wire_keys_t keys = {0};
    uint64_t seq = 1;
    bool ended = false;
    while (!ended && !c.error && c.pos < c.len) {
        uint32_t frame = sl__pool_take_u32(&c);
        uint8_t type = sl__pool_take_u8(&c);
        const uint8_t *payload = sl__pool_take(&c, frame);
        if (payload == NULL || (type != SL_POOL_MSG_RESULTS && type != SL_POOL_MSG_END))
            break;
        ended = type == SL_POOL_MSG_END;
        sl_pool_cursor_t r = {payload, frame, 0, 0};
        while (!ended && r.pos < r.len && !r.error) {
            uint8_t rec = sl__pool_take_u8(&r);
            uint64_t got = sl__pool_take_u64(&r);
            if (rec == SL_POOL_REC_LOG) {
                sl__pool_take_u8(&r);
                sl__pool_take(&r, sl__pool_take_u32(&r));
                continue;
            }
            bool result = rec == SL_POOL_REC_DONE || rec == SL_POOL_REC_FAIL;
            if (got != seq || seq > e->count || !result) {
                r.error = 1;
                break;
            }
            if (!take_record(s, &r, rec, &e->slots[seq - 1], &keys))
                r.error = 1; /* a job whose record is bad fails below with the rest */
            seq++;
        }
        if (r.error)
            break;
    }
    sl__wire_keys_clear(&keys);
    return ended && seq == (uint64_t)e->count + 1 && c.pos == c.len;
}

static void elem_failed(sl_slurm_elem_t *e, const char *what, const char *log)
{
    char message[SLURM_LOG_TAIL + 512];
    const char *step = e->sub->group_name;
    snprintf(message, sizeof(message),
             "step '%s': slurm job %llu_%u (element %u, state %s) %s; its log (%s/s%u_%u.log) "
             "ends with:\n%s",
             step, (unsigned long long)e->sub->job_id, e->array_index, e->index,
             e->slurm_state[0] ? e->slurm_state : "unknown", what, sl__slurm_sub_dir(e->sub),
             e->sub->base, e->array_index, log && log[0] ? log : "(no log)");
    sl__slurm_elem_fail(e, SL_EFAILED, message);
}

static void after_collect(uv_work_t *req, int status)
{
    collect_work_t *w = req->data;
    sl_slurm_elem_t *e = w->elem;
    sl_slurm_t *s = e->sub->s;
    s->works--;
    if (s->closing) {
        sl__slurm_elem_fail(e, SL_ECANCELED, "canceled"); /* its jobs are reported already */
    } else if (w->present) {
        if (!elem_results(e, (const uint8_t *)w->output, w->output_len))
            elem_failed(e, "wrote a malformed output file", NULL);
        else
            sl__slurm_elem_end(e);
    } else if (!in_list(failed_states, e->slurm_state) && ++e->missing < SLURM_MISSING_POLLS) {
        e->state = ELEM_QUEUED; /* its output may still be on its way (a shared filesystem) */
    } else if (e->sub->adopted) {
        sl__slurm_elem_requeue(e); /* a resumed run's element that died: its tasks go again */
    } else {
        elem_failed(e, "ended without its results", w->log);
    }
    sl__free(w->output);
    sl__free(w->log);
    sl__free(w);
    sl__slurm_poll_arm(s);
}

static void elem_collect(sl_slurm_elem_t *e)
{
    sl_slurm_t *s = e->sub->s;
    collect_work_t *w = sl__calloc(1, sizeof(*w));
    if (w == NULL)
        return; /* the next poll tries again */
    w->req.data = w;
    w->elem = e;
    e->state = ELEM_COLLECTING;
    s->works++;
    uv_queue_work(s->loop, &w->req, collect_read, after_collect);
}

/* ---- polling ------------------------------------------------------------------------ */

static sl_slurm_elem_t *find_elem(sl_slurm_t *s, uint64_t job, uint32_t index)
{
    for (sl_slurm_sub_t *sub = s->subs; sub; sub = sub->next)
        if (sub->job_id == job)
            return index < sub->count ? &sub->elems[index] : NULL;
    return NULL;
}

/* One line "JOB_INDEX|STATE|REASON"; returns true when it changed what we knew. */
static bool poll_line(sl_slurm_t *s, char *line)
{
    char *end;
    uint64_t job = strtoull(line, &end, 10);
    if (end == line || *end != '_')
        return false; /* a pending range "12_[3-9%2]" is not listed with -r */
    unsigned long index = strtoul(end + 1, &end, 10);
    char *state = strchr(end, '|');
    char *reason = state ? strchr(state + 1, '|') : NULL;
    sl_slurm_elem_t *e = find_elem(s, job, (uint32_t)index);
    if (e == NULL || reason == NULL)
        return false;
    *reason++ = '\0';
    state++;
    e->seen_gen = s->poll_gen;
    bool changed = strcmp(e->slurm_state, state) != 0;
    snprintf(e->slurm_state, sizeof(e->slurm_state), "%s", state);
    snprintf(e->reason, sizeof(e->reason), "%s", reason);
    return changed;
}

/* After a poll: what each element of an array the poll could see has become. */
static bool poll_sweep(sl_slurm_t *s, uint32_t poll)
{
    bool changed = false;
    for (sl_slurm_sub_t *sub = s->subs, *next; sub; sub = next) {
        next = sub->next;
        if (sub->job_id == 0 || sub->poll_after >= poll)
            continue;
        for (uint32_t i = 0, n = sub->count; i < n; i++) {
            sl_slurm_elem_t *e = &sub->elems[i];
            if (e->state != ELEM_QUEUED)
                continue;
            bool seen = e->seen_gen == s->poll_gen;
            bool pending = seen && strcmp(e->slurm_state, "PENDING") == 0;
            if (pending && in_list(never_reasons, e->reason)) {
                char message[512];
                snprintf(message, sizeof(message),
                         "step '%s': slurm job %llu_%u can never "
                         "start: Slurm says %s (the request exceeds what the partition "
                         "offers)",
                         sub->group_name, (unsigned long long)sub->job_id, e->array_index,
                         e->reason);
                sl__slurm_cancel_add(s, sub->job_id, e->array_index);
                bool last = sub->live == 1;
                sl__slurm_elem_fail(e, SL_EFAILED, message);
                changed = true;
                if (last)
                    break;
            } else if (!seen || !in_list(live_states, e->slurm_state)) {
                elem_collect(e);
                changed = true;
            }
        }
    }
    sl__slurm_scancel_flush(s);
    return changed;
}

static void poll_fail_all(sl_slurm_t *s, const char *why)
{
    char message[1024];
    snprintf(message, sizeof(message),
             "squeue failed %d times in a row, the jobs cannot be "
             "followed: %s",
             SLURM_SQUEUE_FAILS_MAX, why);
    for (sl_slurm_sub_t *sub = s->subs, *next; sub; sub = next) {
        next = sub->next;
        for (uint32_t i = 0, n = sub->count; i < n; i++) {
            bool last = sub->live == 1;
            if (sub->elems[i].state == ELEM_QUEUED) {
                sl__slurm_cancel_add(s, sub->job_id, sub->elems[i].array_index);
                sl__slurm_elem_fail(&sub->elems[i], SL_EFAILED, message);
                if (last)
                    break;
            }
        }
    }
    sl__slurm_scancel_flush(s);
}

static void on_squeue(sl_slurm_t *s, void *ud, int64_t status, char *out, size_t len,
                      const char *err)
{
    uint32_t poll = (uint32_t)(uintptr_t)ud;
    s->polling = false;
    if (s->closing)
        return;
    if (status != 0) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "slurm: squeue failed (exit %lld): %s", (long long)status,
               err);
        if (++s->squeue_fails >= SLURM_SQUEUE_FAILS_MAX)
            poll_fail_all(s, err[0] ? err : "no message");
        sl__slurm_poll_arm(s);
        return;
    }
    s->squeue_fails = 0;
    s->poll_gen++;
    bool changed = false;
    for (char *line = out, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        changed |= poll_line(s, line);
    }
    changed |= poll_sweep(s, poll);
    int64_t max = s->poll_ms * SLURM_POLL_BACKOFF;
    s->poll_now_ms = changed ? s->poll_ms : (s->poll_now_ms * 2 > max ? max : s->poll_now_ms * 2);
    sl__slurm_poll_arm(s);
}

static void on_poll_timer(uv_timer_t *t)
{
    sl_slurm_t *s = t->data;
    s->poll_armed = false;
    if (s->outstanding == 0 || s->closing)
        return;
    char name[4096];
    snprintf(name, sizeof(name), "--name=%s%s%s", s->name, s->names ? "," : "",
             s->names ? s->names : "");
    char *argv[] = {"squeue", "-h", "-r", "-t", "all", name, "-o", "%i|%T|%r", NULL};
    uint32_t poll = ++s->polls_started;
    s->polling = true;
    if (sl__slurm_cmd(s, argv, on_squeue, (void *)(uintptr_t)poll) < 0) {
        s->polling = false;
        sl__slurm_poll_arm(s);
        return;
    }
    s->stats.squeue++;
}

/* The next poll, unless one is waiting or running, or nothing is out. */
void sl__slurm_poll_arm(sl_slurm_t *s)
{
    if (s->polling || s->poll_armed || s->outstanding == 0 || s->closing)
        return;
    s->poll_armed = true;
    uv_timer_start(&s->poll_timer, on_poll_timer, (uint64_t)s->poll_now_ms, 0);
}
