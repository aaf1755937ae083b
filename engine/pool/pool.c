/*
 * The pool: its job queue, batching, the watchdog and the API. One worker process's
 * plumbing (spawn, framing, deaths) is in proc.c; the worker's own loop in worker.c.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pool/internal.h"

static char *default_exe;

void sl__pool_set_default_exe(const char *path)
{
    sl__free(default_exe);
    default_exe = path ? sl__strdup(path) : NULL;
}

const char *sl__pool_default_exe(void)
{
    return default_exe;
}

/* ---- the queue ---------------------------------------------------------------------- */

static void queue_push(sl_pool_t *pool, sl_pool_job_t *job)
{
    job->next = NULL;
    job->prev = pool->queue_tail;
    if (pool->queue_tail)
        pool->queue_tail->next = job;
    else
        pool->queue_head = job;
    pool->queue_tail = job;
    job->queued = true;
    pool->queued++;
}

static void queue_remove(sl_pool_t *pool, sl_pool_job_t *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        pool->queue_head = job->next;
    if (job->next)
        job->next->prev = job->prev;
    else
        pool->queue_tail = job->prev;
    job->prev = job->next = NULL;
    job->queued = false;
    pool->queued--;
}

void sl__pool_requeue_front(sl_pool_t *pool, sl_pool_job_t *job)
{
    job->worker = NULL;
    job->batch_end = false;
    job->prev = NULL;
    job->next = pool->queue_head;
    if (pool->queue_head)
        pool->queue_head->prev = job;
    else
        pool->queue_tail = job;
    pool->queue_head = job;
    job->queued = true;
    pool->queued++;
}

const sl_pool_cbs_t *sl__pool_job_cbs(const sl_pool_t *pool, const sl_pool_job_t *job)
{
    return job->cbs ? job->cbs : &pool->cbs;
}

void sl__pool_fail_job(sl_pool_t *pool, sl_pool_job_t *job, int code, const char *message)
{
    job->worker = NULL;
    sl__pool_job_cbs(pool, job)->fail(job, code, message, 0);
}

static void on_kick(uv_idle_t *idle);

void sl__pool_kick(sl_pool_t *pool)
{
    if (!pool->closing && pool->queue_head && !uv_is_active((uv_handle_t *)&pool->kick))
        uv_idle_start(&pool->kick, on_kick);
}

/* ---- batching ----------------------------------------------------------------------- */

/*
 * How many jobs the next batch takes: enough measured work to fill about 1.5 ms (so the
 * pipe round trip is small against it), at most POOL_BATCH_MAX, and no more than a fair
 * share of the queue, so that every worker gets some. Unmeasured kinds go one by one.
 */
static size_t batch_size(const sl_pool_t *pool)
{
    const sl_pool_job_t *head = pool->queue_head;
    uint64_t task_ns = head->task_ns ? *head->task_ns : 0;
    size_t n = 1;
    if (task_ns > 0)
        n = task_ns >= POOL_BATCH_TARGET_NS ? 1 : (size_t)(POOL_BATCH_TARGET_NS / task_ns);
    if (n > POOL_BATCH_MAX)
        n = POOL_BATCH_MAX;
    size_t fair = (pool->queued + pool->size - 1) / pool->size;
    if (n > fair)
        n = fair;
    return n ? n : 1;
}

#define BATCH_BYTES_SOFT_MAX (64u * 1024 * 1024) /* a batch past this takes no more jobs */

/* Takes up to `n` jobs off the queue into `jobs`; jobs whose args cannot be sent fail. */
static size_t take_batch(sl_pool_t *pool, sl_pool_job_t **jobs, size_t n)
{
    size_t count = 0, bytes = SL_POOL_HEADER_SIZE + 4;
    while (count < n && pool->queue_head) {
        sl_pool_job_t *job = pool->queue_head;
        size_t size = 0;
        int rc = sl__value_wire_size(job->args, &size);
        size_t need = sl__pool_job_head_size(job) + size;
        if (rc == 0 && bytes + need > SL_POOL_FRAME_MAX)
            rc = SL_ELIMIT;
        if (rc == 0 && count > 0 && bytes + need > BATCH_BYTES_SOFT_MAX)
            break;
        queue_remove(pool, job);
        if (rc < 0) {
            char message[160];
            snprintf(message, sizeof(message), "the task's arguments cannot be sent to a "
                     "worker: %s (at most %u levels deep and 1 GiB)", sl_strerror(rc),
                     SL_WIRE_DEPTH_MAX);
            sl__pool_fail_job(pool, job, rc, message);
            continue;
        }
        job->wire_size = size;
        bytes += need;
        jobs[count++] = job;
    }
    return count;
}

static sl_pool_worker_t *hungry_worker(sl_pool_t *pool)
{
    sl_pool_worker_t *start = pool->next_worker ? pool->next_worker : pool->workers;
    if (start && start->dead)
        start = pool->workers; /* next_worker is cleared when it is freed; dead ones wait */
    sl_pool_worker_t *w = start;
    while (w) {
        sl_pool_worker_t *next = w->next ? w->next : pool->workers;
        if (sl__pool_hungry(w)) {
            pool->next_worker = next;
            return w;
        }
        w = next == start ? NULL : next;
    }
    return NULL;
}

static void fail_queue(sl_pool_t *pool, int code, const char *message)
{
    while (pool->queue_head) {
        sl_pool_job_t *job = pool->queue_head;
        queue_remove(pool, job);
        sl__pool_fail_job(pool, job, code, message);
    }
}

/* The kick: sends queued jobs to hungry workers, starting workers the pool lacks. */
static void on_kick(uv_idle_t *idle)
{
    sl_pool_t *pool = idle->data;
    sl_pool_job_t *jobs[POOL_BATCH_MAX];
    while (pool->queue_head && !pool->closing) {
        if (pool->broken) {
            fail_queue(pool, SL_ESYS, pool->broken);
            break;
        }
        sl_pool_worker_t *w = hungry_worker(pool);
        if (w == NULL && pool->alive < pool->size) {
            char err[256];
            if (sl__pool_spawn(pool, err, sizeof(err)) < 0 &&
                (pool->broken = sl__strdup(err)) == NULL) {
                fail_queue(pool, SL_ENOMEM, err);
                break;
            }
            continue;
        }
        if (w == NULL)
            break; /* every worker has work ahead: their results kick again */
        size_t n = take_batch(pool, jobs, batch_size(pool));
        if (n > 0)
            sl__pool_send(w, jobs, n);
    }
    uv_idle_stop(idle);
}

/* ---- watchdog: timeouts, and exits whose socket stays open ---------------------------- */

static void on_watchdog(uv_timer_t *timer)
{
    sl_pool_t *pool = timer->data;
    uint64_t now = sl__clock_now_ns();
    bool busy = false;
    for (sl_pool_worker_t *w = pool->workers, *next; w; w = next) {
        next = w->next;
        if (w->dead)
            continue;
        if (w->exited) {
            sl__pool_reap_late(w, now);
            busy = true;
            continue;
        }
        busy = busy || w->job_count > 0;
        uint64_t started = 0;
        sl_pool_job_t *job = sl__pool_running(w, &started);
        if (job && job->timeout_ms > 0 && w->kill_reason == KILL_NONE && now > started &&
            now - started >= (uint64_t)job->timeout_ms * 1000000u)
            sl__pool_kill(w, KILL_TIMEOUT, job);
    }
    if (!busy) {
        uv_timer_stop(timer);
        pool->watchdog_on = false;
    }
}

void sl__pool_watch(sl_pool_t *pool)
{
    if (!pool->watchdog_on && !pool->closing) {
        uv_timer_start(&pool->watchdog, on_watchdog, POOL_WATCHDOG_MS, POOL_WATCHDOG_MS);
        pool->watchdog_on = true;
    }
}

/* ---- deaths --------------------------------------------------------------------------- */

void sl__pool_count_cause(sl_pool_t *pool, const char *cause)
{
    sl_pool_stats_t *s = &pool->stats;
    size_t slot = SL_POOL_CAUSES_MAX - 1;
    for (size_t i = 0; i < SL_POOL_CAUSES_MAX; i++) {
        if (s->causes[i].count == 0 || strcmp(s->causes[i].name, cause) == 0) {
            slot = i;
            break;
        }
    }
    if (strcmp(s->causes[slot].name, cause) != 0) {
        snprintf(s->causes[slot].name, sizeof(s->causes[slot].name), "%s", cause);
        s->causes[slot].count = 0; /* the table is full: the last slot shows the latest */
    }
    s->causes[slot].count++;
}

/* A worker died (proc.c has sorted out its jobs): replace it unless that is pointless. */
void sl__pool_worker_gone(sl_pool_t *pool, sl_pool_worker_t *w)
{
    if (pool->closing || pool->broken || w->kill_reason == KILL_CANCEL)
        return;
    if (pool->barren_deaths >= POOL_BARREN_DEATHS_MAX) {
        char message[200];
        snprintf(message, sizeof(message), "worker processes keep dying before running any "
                 "task (%u in a row; the last one, pid %d, %s)", pool->barren_deaths,
                 w->pid, w->term_signal ? "was killed by a signal" : "exited");
        pool->broken = sl__strdup(message);
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s", message);
        return;
    }
    char err[256];
    if (sl__pool_spawn(pool, err, sizeof(err)) < 0)
        pool->broken = sl__strdup(err);
    else {
        SL_LOG(SL_LOG_DEBUG, NULL, NULL, "pool: worker %u replaced", w->id);
        sl__pool_metrics_respawned();
    }
}

/* ---- the API -------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle)
{
    sl_pool_t *pool = handle->data;
    pool->handles_open--;
}

/* A dead worker's socket makes writes fail: that must come back as EPIPE, not as a
 * SIGPIPE that kills the engine (the CLI ignores it already; an embedder may not). */
static void ignore_sigpipe(void)
{
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

size_t sl__pool_window(const sl_pool_t *pool)
{
    return (size_t)pool->size * POOL_BATCHES_PER_WORKER * POOL_BATCH_MAX;
}

int sl__pool_new(uv_loop_t *loop, const sl_pool_opts_t *opts, const sl_pool_cbs_t *cbs,
                 sl_pool_t **out)
{
    ignore_sigpipe();
    sl_pool_t *pool = sl__calloc(1, sizeof(*pool));
    if (pool == NULL)
        return SL_ENOMEM;
    pool->loop = loop;
    pool->cbs = *cbs;
    pool->exe = sl__strdup(opts->exe ? opts->exe : "/proc/self/exe");
    if (pool->exe == NULL) {
        sl__free(pool);
        return SL_ENOMEM;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    pool->size = opts->workers ? opts->workers : (uint32_t)(cpus > 0 ? cpus : 1);
    if (pool->size > 4096)
        pool->size = 4096;
    pool->memory_bytes = opts->memory_bytes;
    pool->next_seq = 1;
    pool->stats.workers = pool->size;
    uv_idle_init(loop, &pool->kick);
    uv_timer_init(loop, &pool->watchdog);
    uv_unref((uv_handle_t *)&pool->watchdog);
    pool->kick.data = pool->watchdog.data = pool;
    pool->handles_open = 2;
    /* A worker that cannot start is reported through the jobs (the kick retries it and
     * fails them with the reason), so a run without CPU tasks left is not disturbed. */
    for (uint32_t i = 0; i < pool->size; i++) {
        char err[256];
        if (sl__pool_spawn(pool, err, sizeof(err)) < 0) {
            SL_LOG(SL_LOG_DEBUG, NULL, NULL, "%s", err);
            break;
        }
    }
    *out = pool;
    return 0;
}

void sl__pool_submit(sl_pool_t *pool, sl_pool_job_t *job)
{
    job->worker = NULL;
    job->seq = 0;
    job->batch_end = job->cancel_requested = false;
    queue_push(pool, job);
    if (!pool->closing && !uv_is_active((uv_handle_t *)&pool->kick))
        uv_idle_start(&pool->kick, on_kick);
}

bool sl__pool_unqueue(sl_pool_t *pool, sl_pool_job_t *job)
{
    if (!job->queued)
        return false;
    queue_remove(pool, job);
    return true;
}

bool sl__pool_cancel(sl_pool_t *pool, sl_pool_job_t *job)
{
    if (sl__pool_unqueue(pool, job))
        return true;
    job->cancel_requested = true;
    if (job->worker)
        sl__pool_kill(job->worker, KILL_CANCEL, job);
    return false;
}

/* Closing took too long: an idle worker that does not exit on EOF (a plugin's atexit work
 * hangs, say) is killed, so that closing the pool is bounded. */
static void on_close_grace_over(uv_timer_t *timer)
{
    sl_pool_t *pool = timer->data;
    for (sl_pool_worker_t *w = pool->workers; w; w = w->next)
        if (!w->dead && !w->exited) {
            SL_LOG(SL_LOG_WARN, NULL, NULL, "pool: worker %u (pid %d) did not exit; killed",
                   w->id, w->pid);
            uv_process_kill(&w->process, SIGKILL);
        }
}

void sl__pool_worker_freed(sl_pool_t *pool)
{
    if (pool->closing && pool->workers == NULL &&
        !uv_is_closing((uv_handle_t *)&pool->watchdog))
        uv_close((uv_handle_t *)&pool->watchdog, on_handle_closed);
}

void sl__pool_close(sl_pool_t *pool)
{
    if (pool->closing)
        return;
    pool->closing = true;
    SL_LOG(SL_LOG_INFO, NULL, NULL, "pool: %llu tasks in %llu batches on %llu workers",
           (unsigned long long)pool->stats.tasks, (unsigned long long)pool->stats.batches,
           (unsigned long long)pool->stats.started);
    fail_queue(pool, SL_ECANCELED, "not started: the worker pool closed");
    for (sl_pool_worker_t *w = pool->workers, *next; w; w = next) {
        next = w->next; /* a worker whose handles were already closed may go now */
        sl__pool_shut(w);
    }
    uv_close((uv_handle_t *)&pool->kick, on_handle_closed);
    /* the watchdog turns into the grace timer; it closes with the last worker */
    uv_timer_stop(&pool->watchdog);
    uv_timer_start(&pool->watchdog, on_close_grace_over, POOL_CLOSE_GRACE_MS, 0);
    sl__pool_worker_freed(pool);
}

bool sl__pool_closed(const sl_pool_t *pool)
{
    return pool->handles_open == 0 && pool->workers == NULL;
}

void sl__pool_free(sl_pool_t *pool)
{
    if (pool == NULL)
        return;
    sl__free(pool->exe);
    sl__free(pool->broken);
    sl__free(pool);
}

void sl__pool_stats(const sl_pool_t *pool, sl_pool_stats_t *out)
{
    *out = pool->stats;
    out->respawned = pool->stats.started > pool->size ? pool->stats.started - pool->size : 0;
}
