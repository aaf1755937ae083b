/*
 * pool: the worker processes that run CPU kinds (docs/executors.md).
 *
 * A pool is a set of `sluice __worker` processes started with uv_spawn, each talking
 * to the loop over one socket (framing in pool/proto.h). Jobs are queued, sent in
 * batches sized from measured task time, and answered one by one. A worker that dies
 * fails only the task it was running (named by its shared page) and is replaced; the
 * rest of its batch is queued again. Timeouts kill the worker running the late task.
 *
 * Loop thread only. Callbacks are never called from inside sl__pool_submit or
 * sl__pool_cancel; they come from the loop (read, exit and idle callbacks) and from
 * sl__pool_close.
 */
#ifndef SL_POOL_H
#define SL_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "value/value.h"

typedef struct sl_pool sl_pool_t;
typedef struct sl_pool_worker sl_pool_worker_t;

/** One task for the pool, embedded in its owner (the scheduler's task). */
typedef struct sl_pool_job {
    /* Set by the owner before sl__pool_submit; borrowed until the job completes. */
    const char *kind;         /* kind name */
    const char *plugin;       /* the file providing it, for the worker to load; NULL: search */
    const sl_value_t *args;
    uint32_t attempt;         /* 1-based */
    int64_t timeout_ms;       /* 0 = none; counted from when a worker starts the task */
    /* A kind of task's measured cost (one per step), what batch sizes follow: the moving
     * average of one task's time in a worker, 0 = not measured. May be NULL. */
    uint64_t *task_ns;
    const struct sl_pool_cbs *cbs; /* this job's callbacks; NULL = the pool's */
    /* The pool's. */
    struct sl_pool_job *prev, *next;
    sl_pool_worker_t *worker; /* NULL while queued */
    uint64_t seq;
    size_t wire_size;         /* of args, while being sent */
    bool queued, batch_end, cancel_requested;
} sl_pool_job_t;

/** How jobs end. Each job gets exactly one of done/fail; log may come before. */
typedef struct sl_pool_cbs {
    /** Takes `output`. */
    void (*done)(sl_pool_job_t *job, sl_value_t *output);
    /** `message` is borrowed for the call; `retry_after_ms` is the kind's hint. */
    void (*fail)(sl_pool_job_t *job, int code, const char *message, int64_t retry_after_ms);
    void (*log)(sl_pool_job_t *job, int level, const char *message);
} sl_pool_cbs_t;

typedef struct sl_pool_opts {
    uint32_t workers;      /* 0 = online CPUs */
    uint64_t memory_bytes; /* RLIMIT_AS of each worker; 0 = none */
    const char *exe;       /* the sluice binary to run as `EXE __worker`; copied */
} sl_pool_opts_t;

#define SL_POOL_CAUSES_MAX 4

/** Counters for the summary. */
typedef struct sl_pool_stats {
    uint32_t workers;   /* the pool's size */
    uint64_t started;   /* processes started, first ones included */
    uint64_t respawned; /* started to replace one that died */
    uint64_t batches, tasks;
    struct {
        char name[16]; /* "SIGSEGV", "exit 3", "timeout" */
        uint64_t count;
    } causes[SL_POOL_CAUSES_MAX]; /* why workers died, most frequent kept */
} sl_pool_stats_t;

/**
 * Makes a pool and starts its workers. `cbs` is copied. Returns SL_ENOMEM; a worker
 * that cannot be started makes every job fail with the reason instead. Never calls back.
 */
int sl__pool_new(uv_loop_t *loop, const sl_pool_opts_t *opts, const sl_pool_cbs_t *cbs,
                 sl_pool_t **out);
/** The callbacks a job reports through: its own, else the pool's. */
const sl_pool_cbs_t *sl__pool_job_cbs(const sl_pool_t *pool, const sl_pool_job_t *job);
/** Queues a job; its callback comes from the loop later. */
void sl__pool_submit(sl_pool_t *pool, sl_pool_job_t *job);
/**
 * Stops a job. A job still queued is removed and true returned: no callback will come.
 * A job sent to a worker gets false: the worker is killed, and the job fails with
 * SL_ECANCELED from the loop later.
 */
bool sl__pool_cancel(sl_pool_t *pool, sl_pool_job_t *job);
/** Removes a job that is still queued (true); leaves a sent one alone (false). */
bool sl__pool_unqueue(sl_pool_t *pool, sl_pool_job_t *job);
/**
 * Shuts the pool down: outstanding jobs fail with SL_ECANCELED (from this call), idle
 * workers see their socket close and exit, busy ones are killed. Run the loop until
 * sl__pool_closed, then sl__pool_free.
 */
void sl__pool_close(sl_pool_t *pool);
bool sl__pool_closed(const sl_pool_t *pool);
/**
 * How many jobs keep every worker in full batches (two batches of up to 256 each): a
 * submitter with more to give may hold the rest back, so that a job's arguments are made
 * shortly before they are sent rather than 10,000 jobs ahead.
 */
size_t sl__pool_window(const sl_pool_t *pool);
/** Frees a closed pool; NULL is a no-op. */
void sl__pool_free(sl_pool_t *pool);
void sl__pool_stats(const sl_pool_t *pool, sl_pool_stats_t *out);

/** The binary pools run by default (the CLI sets its own); NULL = no default. Copied. */
void sl__pool_set_default_exe(const char *path);
const char *sl__pool_default_exe(void);

/** The hidden command that makes the sluice binary a worker. */
#define SL_POOL_WORKER_COMMAND_NAME "__worker"

/**
 * Entry of `sluice __worker`: the worker's blocking loop (worker.c). `builtins` (borrowed)
 * are the plugins compiled into the binary, offered before any shared object is loaded.
 * Returns an exit code.
 */
int sl__pool_worker_main(int argc, char **argv, const sl_plugin_entry_fn *builtins,
                         size_t builtin_count);

#endif
