/*
 * One worker process seen from the loop: spawn, batches out, results in, and what its
 * death means for its jobs. The process and its socket are libuv handles embedded here;
 * the worker is freed when both have closed.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pool/internal.h"

typedef struct write_req {
    uv_write_t req;
    sl_pool_worker_t *worker;
    size_t len;
    uint8_t data[];
} write_req_t;

static void maybe_dead(sl_pool_worker_t *w);

/* ---- lifetime ------------------------------------------------------------------------- */

static void unlink_worker(sl_pool_t *pool, sl_pool_worker_t *w)
{
    if (pool->next_worker == w)
        pool->next_worker = NULL;
    if (w->prev)
        w->prev->next = w->next;
    else
        pool->workers = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

static void on_worker_handle_closed(uv_handle_t *handle)
{
    sl_pool_worker_t *w = handle->data;
    if (--w->handles_open > 0)
        return;
    sl_pool_t *pool = w->pool;
    unlink_worker(pool, w);
    if (w->shared)
        munmap(w->shared, SL_POOL_SHARED_SIZE);
    sl__free(w->rbuf);
    sl__wire_keys_clear(&w->keys);
    sl__free(w);
    sl__pool_worker_freed(pool);
}

static void close_handles(sl_pool_worker_t *w)
{
    if (!uv_is_closing((uv_handle_t *)&w->pipe))
        uv_close((uv_handle_t *)&w->pipe, on_worker_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&w->process))
        uv_close((uv_handle_t *)&w->process, on_worker_handle_closed);
}

/* ---- reading results ------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sl_pool_worker_t *w = handle->data;
    size_t need = w->rlen + POOL_READ_CHUNK;
    if (w->rlen >= SL_POOL_HEADER_SIZE) {
        /* a frame's size is known: read the rest of it straight into place */
        size_t frame = SL_POOL_HEADER_SIZE + (size_t)sl__pool_get_u32(w->rbuf);
        if (frame > need)
            need = frame;
    }
    if (need > w->rcap) {
        uint8_t *grown = sl__realloc(w->rbuf, need);
        if (grown == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        w->rbuf = grown;
        w->rcap = need;
    }
    *buf = uv_buf_init((char *)w->rbuf + w->rlen, (unsigned)(w->rcap - w->rlen));
}

static sl_pool_job_t *pop_job(sl_pool_worker_t *w)
{
    sl_pool_job_t *job = w->head;
    w->head = job->next;
    if (w->head == NULL)
        w->tail = NULL;
    else
        w->head->prev = NULL;
    job->next = job->prev = NULL;
    job->worker = NULL;
    if (--w->job_count == 0) {
        uv_unref((uv_handle_t *)&w->pipe); /* an idle worker does not keep the loop running */
        sl__pool_metrics_workers(-1, +1);
    }
    if (job->batch_end) {
        w->batches--;
        sl__pool_kick(w->pool);
    }
    w->tasks_done++;
    w->pool->barren_deaths = 0;
    w->pool->stats.tasks++;
    return job;
}

static void note_time(sl_pool_job_t *job, uint64_t elapsed_ns)
{
    if (job->task_ns == NULL)
        return;
    uint64_t avg = *job->task_ns;
    avg = avg ? (avg * 7 + elapsed_ns) / 8 : elapsed_ns;
    *job->task_ns = avg ? avg : 1;
}

/* Copies a message out of a frame (NUL-terminated, cut at 64 KiB). */
static char *take_text(sl_pool_cursor_t *c)
{
    uint32_t len = sl__pool_take_u32(c);
    const uint8_t *bytes = sl__pool_take(c, len);
    if (bytes == NULL)
        return NULL;
    return sl__strndup((const char *)bytes, len > 65536 ? 65536 : len);
}

/* One result record; returns false on a malformed one. */
static bool handle_record(sl_pool_worker_t *w, sl_pool_cursor_t *c)
{
    sl_pool_t *pool = w->pool;
    uint8_t type = sl__pool_take_u8(c);
    uint64_t seq = sl__pool_take_u64(c);
    sl_pool_job_t *job = w->head;
    if (c->error || job == NULL || job->seq != seq)
        return false;
    if (type == SL_POOL_REC_LOG) {
        int level = sl__pool_take_u8(c);
        char *text = take_text(c);
        if (text && !job->cancel_requested)
            sl__pool_job_cbs(pool, job)->log(job, level, text);
        sl__free(text);
        return !c->error;
    }
    uint64_t elapsed = sl__pool_take_u64(c);
    if (type == SL_POOL_REC_DONE) {
        uint64_t size = sl__pool_take_u64(c);
        const uint8_t *bytes = size <= c->len ? sl__pool_take(c, (size_t)size) : NULL;
        if (bytes == NULL)
            return false;
        sl_value_t *output = sl__malloc(sizeof(*output));
        size_t used = 0;
        int rc = output ? sl__value_wire_decode_keys(output, bytes, (size_t)size, &used, &w->keys)
                        : SL_ENOMEM;
        if (rc < 0) {
            sl__free(output);
            output = NULL;
        }
        if (rc == SL_EPARSE || (rc == 0 && used != size)) {
            sl_value_free(output);
            return false;
        }
        pop_job(w);
        note_time(job, elapsed);
        if (rc < 0)
            sl__pool_job_cbs(pool, job)->fail(job, rc, "cannot receive the task's output from its worker", 0);
        else
            sl__pool_job_cbs(pool, job)->done(job, output);
        return true;
    }
    if (type != SL_POOL_REC_FAIL)
        return false;
    int code = (int)(int32_t)sl__pool_take_u32(c);
    int64_t retry_after_ms = (int64_t)sl__pool_take_u64(c);
    char *message = take_text(c);
    if (c->error) {
        sl__free(message);
        return false;
    }
    pop_job(w);
    note_time(job, elapsed);
    sl__pool_job_cbs(pool, job)->fail(job, code < 0 ? code : SL_EFAILED, message ? message : "out of memory",
                   retry_after_ms);
    sl__free(message);
    return true;
}

static void handle_frame(sl_pool_worker_t *w, uint8_t type, const uint8_t *payload, size_t len)
{
    sl_pool_cursor_t c = {payload, len, 0, 0};
    bool ok = type == SL_POOL_MSG_RESULTS;
    while (ok && c.pos < c.len && w->kill_reason != KILL_PROTOCOL)
        ok = handle_record(w, &c);
    if (!ok)
        sl__pool_kill(w, KILL_PROTOCOL, NULL);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sl_pool_worker_t *w = stream->data;
    if (nread < 0) {
        /* The end, or a reset when the worker died with a batch unread: either way its
         * exit tells what happened. One still alive cannot talk to us any more. */
        uv_read_stop(stream);
        w->eof = true;
        uv_ref((uv_handle_t *)&w->process); /* the loop must stay up to see the exit */
        if (!w->exited && !w->dead)
            uv_process_kill(&w->process, SIGKILL);
        maybe_dead(w);
        return;
    }
    w->rlen += (size_t)nread;
    size_t pos = 0;
    while (w->rlen - pos >= SL_POOL_HEADER_SIZE && w->kill_reason != KILL_PROTOCOL) {
        size_t len = sl__pool_get_u32(w->rbuf + pos);
        if (len > SL_POOL_FRAME_MAX) {
            sl__pool_kill(w, KILL_PROTOCOL, NULL);
            break;
        }
        if (w->rlen - pos - SL_POOL_HEADER_SIZE < len)
            break;
        handle_frame(w, w->rbuf[pos + 4], w->rbuf + pos + SL_POOL_HEADER_SIZE, len);
        pos += SL_POOL_HEADER_SIZE + len;
    }
    if (w->kill_reason == KILL_PROTOCOL) {
        uv_read_stop(stream); /* nothing it says can be trusted now: this is its end */
        w->rlen = 0;
        w->eof = true;
        maybe_dead(w);
        return;
    }
    memmove(w->rbuf, w->rbuf + pos, w->rlen - pos);
    w->rlen -= pos;
    if (w->rcap > 4 * POOL_READ_CHUNK && w->rlen < POOL_READ_CHUNK) {
        /* a big frame went through: give its memory back */
        uint8_t *smaller = sl__realloc(w->rbuf, POOL_READ_CHUNK + w->rlen);
        if (smaller) {
            w->rbuf = smaller;
            w->rcap = POOL_READ_CHUNK + w->rlen;
        }
    }
}

/* ---- spawning ------------------------------------------------------------------------- */

static void on_exit(uv_process_t *process, int64_t exit_status, int term_signal)
{
    sl_pool_worker_t *w = process->data;
    w->exited = true;
    w->exit_status = exit_status;
    w->term_signal = term_signal;
    w->exited_ns = sl__clock_now_ns();
    if (!w->eof)
        sl__pool_watch(w->pool); /* in case the socket never reports its end */
    maybe_dead(w);
}

static sl_pool_shared_t *map_shared(int *fd_out)
{
    int fd = memfd_create("sluice-worker", MFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *page = MAP_FAILED;
    if (ftruncate(fd, SL_POOL_SHARED_SIZE) == 0)
        page = mmap(NULL, SL_POOL_SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (page == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return page;
}

static int start_process(sl_pool_worker_t *w, int shared_fd, char *err, size_t err_size)
{
    sl_pool_t *pool = w->pool;
    char id[16], parent[24], memory[24], log_level[8];
    snprintf(id, sizeof(id), "%u", w->id);
    snprintf(log_level, sizeof(log_level), "%d", sl__log_level);
    snprintf(parent, sizeof(parent), "%ld", (long)getpid());
    snprintf(memory, sizeof(memory), "%llu", (unsigned long long)pool->memory_bytes);
    char *args[] = {pool->exe, SL_POOL_WORKER_COMMAND_NAME, "--id", id, "--parent", parent,
                    "--memory", memory, "--log-level", log_level, NULL};
    /* The worker's stdout is our stderr: a plugin's stray printf must not land in the
     * run's output, nor in the socket. */
    uv_stdio_container_t stdio[5] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
        {.flags = UV_INHERIT_FD, .data.fd = STDERR_FILENO},
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE | UV_WRITABLE_PIPE,
         .data.stream = (uv_stream_t *)&w->pipe},
        {.flags = UV_INHERIT_FD, .data.fd = shared_fd},
    };
    uv_process_options_t options = {
        .exit_cb = on_exit, .file = pool->exe, .args = args,
        .stdio_count = 5, .stdio = stdio,
    };
    int rc = uv_spawn(pool->loop, &w->process, &options);
    if (rc < 0)
        snprintf(err, err_size, "cannot start a worker process (%s %s): %s", pool->exe,
                 SL_POOL_WORKER_COMMAND_NAME, uv_strerror(rc));
    return rc;
}

int sl__pool_spawn(sl_pool_t *pool, char *err, size_t err_size)
{
    sl_pool_worker_t *w = sl__calloc(1, sizeof(*w));
    int shared_fd = -1;
    if (w == NULL || (w->shared = map_shared(&shared_fd)) == NULL) {
        snprintf(err, err_size, "cannot start a worker process: %s",
                 w ? "no shared memory" : "out of memory");
        sl__free(w);
        return w ? SL_ESYS : SL_ENOMEM;
    }
    w->pool = pool;
    w->id = (uint32_t)pool->stats.started + 1;
    uv_pipe_init(pool->loop, &w->pipe, 0);
    w->pipe.data = w->process.data = w;
    w->handles_open = 2;
    w->next = pool->workers; /* linked first: a failed spawn is freed by its close callbacks */
    if (pool->workers)
        pool->workers->prev = w;
    pool->workers = w;
    int rc = start_process(w, shared_fd, err, err_size);
    close(shared_fd); /* the worker has its own copy now */
    if (rc < 0) {
        w->dead = true;
        close_handles(w);
        return SL_ESYS;
    }
    w->pid = w->process.pid;
    pool->alive++;
    sl__pool_metrics_workers(0, +1);
    pool->stats.started++;
    uv_unref((uv_handle_t *)&w->process);
    uv_unref((uv_handle_t *)&w->pipe);
    if (uv_read_start((uv_stream_t *)&w->pipe, on_alloc, on_read) < 0)
        sl__pool_kill(w, KILL_PROTOCOL, NULL);
    return 0;
}

/* ---- sending -------------------------------------------------------------------------- */

bool sl__pool_hungry(const sl_pool_worker_t *w)
{
    return !w->dead && !w->exited && !w->eof && w->kill_reason == KILL_NONE &&
           w->batches < POOL_BATCHES_PER_WORKER && w->write_bytes < POOL_WRITE_PENDING_MAX;
}

static void on_written(uv_write_t *req, int status)
{
    write_req_t *wr = (write_req_t *)req;
    sl_pool_worker_t *w = wr->worker;
    w->write_bytes -= wr->len;
    sl__free(wr);
    if (status == 0)
        sl__pool_kick(w->pool);
    /* a failed write means the worker is gone: its exit sorts out the jobs */
}

/* The plugin path sent with a job: none when unknown, or too long to send (it never is). */
static size_t plugin_len(const sl_pool_job_t *job)
{
    size_t len = job->plugin ? strlen(job->plugin) : 0;
    return len <= UINT16_MAX ? len : 0;
}

size_t sl__pool_job_head_size(const sl_pool_job_t *job)
{
    return 8 + 1 + strlen(job->kind) + 2 + plugin_len(job) + 4;
}

static size_t encode_job(uint8_t *out, const sl_pool_job_t *job)
{
    size_t kind_len = strlen(job->kind), plugin = plugin_len(job);
    sl__pool_put_u64(out, job->seq);
    size_t n = 8;
    out[n++] = (uint8_t)kind_len;
    memcpy(out + n, job->kind, kind_len);
    n += kind_len;
    out[n++] = (uint8_t)plugin;
    out[n++] = (uint8_t)(plugin >> 8);
    if (plugin > 0)
        memcpy(out + n, job->plugin, plugin);
    n += plugin;
    sl__pool_put_u32(out + n, job->attempt);
    n += 4;
    return n + sl__value_wire_encode(job->args, out + n);
}

static void link_job(sl_pool_worker_t *w, sl_pool_job_t *job)
{
    job->worker = w;
    job->next = NULL;
    job->prev = w->tail;
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    if (w->job_count++ == 0) {
        uv_ref((uv_handle_t *)&w->pipe);
        sl__pool_metrics_workers(+1, -1);
    }
}

void sl__pool_send(sl_pool_worker_t *w, sl_pool_job_t **jobs, size_t n)
{
    sl_pool_t *pool = w->pool;
    size_t len = SL_POOL_HEADER_SIZE + 4;
    for (size_t i = 0; i < n; i++)
        len += sl__pool_job_head_size(jobs[i]) + jobs[i]->wire_size;
    write_req_t *wr = sl__malloc(sizeof(*wr) + len);
    if (wr == NULL) {
        for (size_t i = n; i-- > 0;)
            sl__pool_requeue_front(pool, jobs[i]); /* the kick tries again later */
        return;
    }
    sl__pool_put_u32(wr->data, (uint32_t)(len - SL_POOL_HEADER_SIZE));
    wr->data[4] = SL_POOL_MSG_BATCH;
    sl__pool_put_u32(wr->data + SL_POOL_HEADER_SIZE, (uint32_t)n);
    size_t pos = SL_POOL_HEADER_SIZE + 4;
    for (size_t i = 0; i < n; i++) {
        jobs[i]->seq = pool->next_seq++;
        jobs[i]->batch_end = i == n - 1;
        pos += encode_job(wr->data + pos, jobs[i]);
        link_job(w, jobs[i]);
    }
    w->batches++;
    pool->stats.batches++;
    wr->worker = w;
    wr->len = len;
    w->write_bytes += len;
    uv_buf_t buf = uv_buf_init((char *)wr->data, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&w->pipe, &buf, 1, on_written) < 0) {
        w->write_bytes -= len;
        sl__free(wr);
        sl__pool_kill(w, KILL_PROTOCOL, NULL); /* its death queues the jobs again */
    }
    sl__pool_watch(pool);
}

/* ---- killing and dying ---------------------------------------------------------------- */

void sl__pool_kill(sl_pool_worker_t *w, kill_reason_t reason, sl_pool_job_t *job)
{
    if (w->dead || w->kill_reason != KILL_NONE)
        return;
    w->kill_reason = reason;
    w->kill_job = job;
    uv_ref((uv_handle_t *)&w->process); /* the loop must stay up to see the exit */
    if (!w->exited)
        uv_process_kill(&w->process, SIGKILL);
}

sl_pool_job_t *sl__pool_running(sl_pool_worker_t *w, uint64_t *started_ns)
{
    uint64_t seq = atomic_load_explicit(&w->shared->running_seq, memory_order_acquire);
    *started_ns = atomic_load_explicit(&w->shared->started_ns, memory_order_relaxed);
    if (seq == 0)
        return NULL;
    for (sl_pool_job_t *job = w->head; job; job = job->next)
        if (job->seq == seq)
            return job;
    return NULL;
}

static void format_bytes(char *buf, size_t size, uint64_t bytes)
{
    static const char *const units[] = {"GiB", "MiB", "KiB"};
    static const int shifts[] = {30, 20, 10};
    for (int i = 0; i < 3; i++) {
        if (bytes >= (1ull << shifts[i]) && bytes % (1ull << shifts[i]) == 0) {
            snprintf(buf, size, "%llu %s", (unsigned long long)(bytes >> shifts[i]), units[i]);
            return;
        }
    }
    snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
}

/* "SIGSEGV", "exit 3": why the worker died, for messages and the summary. */
static void death_cause(const sl_pool_worker_t *w, char *buf, size_t size)
{
    if (w->kill_reason == KILL_TIMEOUT)
        snprintf(buf, size, "timeout");
    else if (w->term_signal)
        snprintf(buf, size, "SIG%s", sigabbrev_np(w->term_signal) ? sigabbrev_np(w->term_signal)
                                                                   : "?");
    else
        snprintf(buf, size, "exit %d", (int)w->exit_status);
}

/* The message of the task a worker died running. */
static int culprit_message(const sl_pool_worker_t *w, const sl_pool_job_t *job, char *buf,
                           size_t size)
{
    char how[64];
    if (w->kill_reason == KILL_TIMEOUT) {
        snprintf(buf, size, "timed out after %.3gs", (double)job->timeout_ms / 1000);
        return SL_ETIMEDOUT;
    }
    if (w->kill_reason == KILL_PROTOCOL)
        snprintf(how, sizeof(how), "sent a malformed message");
    else if (w->term_signal)
        snprintf(how, sizeof(how), "killed by SIG%s",
                 sigabbrev_np(w->term_signal) ? sigabbrev_np(w->term_signal) : "?");
    else
        snprintf(how, sizeof(how), "exited with status %d", (int)w->exit_status);
    bool oom = w->pool->memory_bytes &&
               atomic_load_explicit(&w->shared->out_of_memory, memory_order_relaxed);
    if (oom) {
        char limit[32];
        format_bytes(limit, sizeof(limit), w->pool->memory_bytes);
        snprintf(buf, size, "out of memory: limits.cpu.memory is %s (worker %u, pid %d, %s)",
                 limit, w->id, w->pid, how);
        return SL_ENOMEM;
    }
    snprintf(buf, size, "worker %u (pid %d) %s while running this task", w->id, w->pid, how);
    return SL_EPROCESS;
}

/* Fails or requeues the unanswered jobs of a dead worker; `running` is the culprit. */
static void settle_jobs(sl_pool_worker_t *w, sl_pool_job_t *running)
{
    sl_pool_t *pool = w->pool;
    sl_pool_job_t *jobs = w->head;
    w->head = w->tail = NULL;
    w->job_count = 0;
    w->batches = 0;
    sl_pool_job_t *ended = NULL; /* failed below, once the queue is consistent */
    for (sl_pool_job_t *job = jobs, *next; job; job = next) {
        next = job->next;
        bool ends = job == running || job->cancel_requested || pool->closing;
        if (!ends)
            continue;
        if (job->prev)
            job->prev->next = job->next;
        else
            jobs = job->next;
        if (job->next)
            job->next->prev = job->prev;
        job->next = ended;
        ended = job;
    }
    sl_pool_job_t *last = jobs;
    while (last && last->next)
        last = last->next;
    for (sl_pool_job_t *job = last, *prev; job; job = prev) {
        prev = job->prev; /* requeued at the front, last first: the order is kept */
        sl__pool_requeue_front(pool, job);
    }
    char message[256];
    while (ended) {
        sl_pool_job_t *job = ended;
        ended = job->next;
        job->next = job->prev = NULL;
        if (job == running && !job->cancel_requested && !pool->closing) {
            int code = culprit_message(w, job, message, sizeof(message));
            sl__pool_fail_job(pool, job, code, message);
        } else {
            sl__pool_fail_job(pool, job, SL_ECANCELED, "canceled");
        }
    }
}

static bool holds(const sl_pool_worker_t *w, const sl_pool_job_t *job)
{
    for (const sl_pool_job_t *j = w->head; j; j = j->next)
        if (j == job)
            return true;
    return false;
}

static void died(sl_pool_worker_t *w)
{
    sl_pool_t *pool = w->pool;
    w->dead = true;
    pool->alive--;
    sl__pool_metrics_workers(w->job_count > 0 ? -1 : 0, w->job_count > 0 ? 0 : -1);
    uint64_t started = 0;
    sl_pool_job_t *running = sl__pool_running(w, &started);
    if (w->kill_reason == KILL_TIMEOUT) /* its result may have come in before the kill landed */
        running = holds(w, w->kill_job) ? w->kill_job : NULL;
    bool expected = pool->closing || w->kill_reason == KILL_CANCEL ||
                    w->kill_reason == KILL_CLOSE || (w->job_count == 0 && w->exit_status == 0 &&
                                                     w->term_signal == 0);
    if (!expected) {
        char cause[16];
        death_cause(w, cause, sizeof(cause));
        sl__pool_count_cause(pool, cause);
        if (running == NULL && w->tasks_done == 0)
            pool->barren_deaths++;
        /* with a culprit, the task's own error says it all */
        SL_LOG(running ? SL_LOG_DEBUG : SL_LOG_WARN, NULL, NULL,
               "pool: worker %u (pid %d) died (%s)%s", w->id, w->pid, cause,
               running ? " while running a task" : " between tasks");
    }
    close_handles(w);
    sl__pool_worker_gone(pool, w); /* replace it first: requeued jobs go to the new one */
    settle_jobs(w, running);
    sl__pool_kick(pool);
}

static void maybe_dead(sl_pool_worker_t *w)
{
    if (!w->dead && w->exited && w->eof)
        died(w);
}

void sl__pool_reap_late(sl_pool_worker_t *w, uint64_t now_ns)
{
    /* A child the worker left behind may hold the socket open: do not wait for it. */
    if (!w->dead && w->exited && !w->eof && now_ns - w->exited_ns > POOL_EOF_WAIT_NS) {
        uv_read_stop((uv_stream_t *)&w->pipe);
        w->eof = true;
        died(w);
    }
}

void sl__pool_shut(sl_pool_worker_t *w)
{
    if (w->dead)
        return;
    if (w->job_count > 0)
        sl__pool_kill(w, KILL_CLOSE, NULL);
    if (!w->eof) {
        uv_read_stop((uv_stream_t *)&w->pipe);
        w->eof = true;
        uv_close((uv_handle_t *)&w->pipe, on_worker_handle_closed); /* the worker reads EOF */
    }
    uv_ref((uv_handle_t *)&w->process); /* the loop waits for the exit */
    maybe_dead(w);
}
