/*
 * host: binds the scheduler to what runs its tasks.
 *
 * - The host table plugins are handed (sluice/plugin.h): its task functions reach the
 *   scheduler, its http_request the run's HTTP client; the value half comes from
 *   plugin/abi.c, shared with worker processes.
 * - A run's services: the HTTP client (made on the first request, with the workflow's
 *   limits), the worker pool (started with the first CPU task) and the pool as the
 *   run's CPU executor (sched.h's sl_executor_t), and the registry the run's kinds came
 *   from. Kinds reach them from a task (sl__host_http, sl__host_pool).
 *
 * The scheduler never calls up here: it is given the executor and the services as
 * opaque pointers when the run is made. Loop thread only.
 */
#ifndef SL_HOST_H
#define SL_HOST_H

#include <stdbool.h>
#include <uv.h>

#include "io/http.h"
#include "plugin/registry.h"
#include "pool/pool.h"
#include "sched/sched.h"
#include "sched/task.h"
#include "store/store.h"

/** The engine's host table (built on first use; lives as long as the process). */
const sl_host_t *sl__host_table(void);

/* A daemon's HTTP engine (one curl multi: each run has its own client with its own limits
 * in it) and worker pool, shared by all its runs (serve). */
typedef struct sl_host_shared sl_host_shared_t;

typedef struct sl_host_shared_opts {
    uint32_t http_concurrency;                /* the daemon-wide cap; 0 = 1024 */
    uint32_t cpu_workers;                     /* 0 = auto */
    uint64_t cpu_memory_bytes;                /* per worker; 0 = unlimited */
    const char *worker_exe;                   /* copied; NULL = sl__pool_default_exe() */
} sl_host_shared_opts_t;

/**
 * A client and a pool for the runs of `loop` (each made on first use). Returns 0 and
 * *out, or SL_ENOMEM. Loop thread only.
 */
int sl__host_shared_new(uv_loop_t *loop, const sl_host_shared_opts_t *opts,
                        sl_host_shared_t **out);
/** Closes and frees them once no run uses them (runs the loop for the close). NULL: no-op. */
void sl__host_shared_free(sl_host_shared_t *sh);

typedef struct sl_services_opts {
    /* The binary whose `__worker` command runs CPU kinds (copied); NULL = the process
     * default (sl__pool_default_exe). With neither, CPU kinds run on the loop. */
    const char *worker_exe;
    /* The registry the workflow's kinds came from (borrowed, outlives the services):
     * where engine code finds a kind it runs on a task's behalf (Lua's html.select). */
    const sl_registry_t *registry;
    /* Start the pool now when the workflow has CPU steps without `cache:`, so workers are
     * up by the time the first CPU task comes (a process start overlaps the run's first
     * steps). Otherwise, and for a resumed run, the pool starts with the first CPU task:
     * a run whose CPU tasks are all reused starts no process. */
    bool prestart;
    /* The daemon's client and pool, borrowed (outlive the services): the run uses them
     * instead of its own, and its limits.http/limits.cpu give way to the daemon's caps. */
    sl_host_shared_t *shared;
} sl_services_opts_t;

/**
 * Services for one run of `wf` (borrowed, outlives them) on `loop`: limits are read from
 * the workflow; the pool starts as `opts->prestart` says (a worker that cannot start fails
 * its tasks with the reason). Returns 0 and *out, or SL_ENOMEM.
 */
int sl__host_services_new(uv_loop_t *loop, const sl_workflow_t *wf,
                          const sl_services_opts_t *opts, sl_services_t **out);
/** The worker pool as an executor for sl_run_opts_t.cpu; NULL without a worker binary. */
sl_executor_t *sl__host_executor(sl_services_t *svc);
/**
 * Cancels what is still going (HTTP requests, queued and running CPU tasks, each
 * reported canceled) and closes the client and the pool, running the loop until they
 * are closed: the wait is short and bounded. Idempotent; NULL is a no-op.
 */
void sl__host_services_close(sl_services_t *svc);
/** Frees closed services (closing them first). NULL is a no-op. */
void sl__host_services_free(sl_services_t *svc);

/**
 * The HTTP client of the task's run, made on first use: 0, or SL_ENOMEM, SL_ENOTFOUND
 * (libcurl cannot be loaded) or SL_EINVAL (a run without services) with the reason in
 * `err`. The client is borrowed for the run's life.
 */
int sl__host_http(sl_task_t *task, sl_http_client_t **out, char *err, size_t err_size);
/**
 * The worker pool of the task's run, for engine code that runs a CPU kind on a task's
 * behalf (Lua's sluice.html.select, `pool: true`); NULL when the run has no workers.
 */
sl_pool_t *sl__host_pool(sl_task_t *task);
/**
 * Where the task's data paths may lead (util/confine.h): the run's working directory and
 * limits.fs.allow, or the process default without services. Borrowed for the run's life;
 * any thread while the task lives.
 */
const sl_confine_t *sl__host_roots(sl_task_t *task);
/** The registry the task's kinds came from, or NULL. */
const sl_registry_t *sl__host_registry(sl_task_t *task);

/* ---- recording a run in the state store (record.c, cache.c) ------------------------- */

typedef struct sl_recorder sl_recorder_t;

/**
 * The run's Slurm array jobs are recorded through `rec`, and those of the run it resumes
 * taken over (host/slurm.h); a no-op without `executor: slurm` steps. Before the run
 * starts. 0, or SL_EIO, SL_ENOMEM with the message in `err`.
 */
int sl__host_services_record(sl_services_t *svc, sl_recorder_t *rec, char *err,
                             size_t err_size);

typedef struct sl_recorder_opts {
    sl_store_t *store;             /* borrowed; outlives the recorder */
    const sl_workflow_t *wf;       /* borrowed */
    uv_loop_t *loop;               /* NULL: made off the loop, sl__host_recorder_attach later */
    const char *run_id;
    const char *trigger;           /* "manual", "resume", "cron", "backfill" */
    int64_t tick_ms;               /* the schedule tick, or 0 */
    int64_t started_ms;
    const sl_store_run_row_t *resume; /* the run this one resumes, or NULL */
    bool no_cache;                 /* `--no-cache`: lookups always miss (entries are kept) */
    bool claim_tick;               /* claim the tick with the run's start: SL_EEXIST if taken */
    bool store_shared;             /* the store serves other runs too: its owner attaches it
                                      to the loop and hears its failures (sl__host_recorder_
                                      store_failed), not the recorder */
} sl_recorder_opts_t;

/**
 * Records a run: its start now (before the loop), then what its observer hears. With
 * `resume`, the outputs of that run's completed tasks are loaded to be recalled (steps
 * whose definition changed, and those after them, run again); the cache entries of the
 * workflow are loaded for its memo. Returns SL_EIO (message in `err`), SL_ENOMEM.
 */
int sl__host_recorder_new(const sl_recorder_opts_t *opts, sl_recorder_t **out, char *err,
                          size_t err_size);
/**
 * Binds a recorder made with no loop (in a threadpool thread: its reads and the run's
 * start are SQLite work the loop should not wait on) to `loop`, on the loop thread,
 * before its run starts. A store of the run's own is attached to the loop (one loop per
 * store); a shared one is its owner's to attach. SL_ESYS.
 */
int sl__host_recorder_attach(sl_recorder_t *rec, uv_loop_t *loop);
/** For sl_run_opts_t: what the run reports to, and what it may reuse. */
const sl_run_observer_t *sl__host_recorder_observer(sl_recorder_t *rec);
const sl_run_memo_t *sl__host_recorder_memo(sl_recorder_t *rec);
/** Stops `run` (letting running tasks finish) if the store fails; the error is kept. */
void sl__host_recorder_watch(sl_recorder_t *rec, sl_run_t *run);
/** Frees a recorder made in a group of run starts that was rolled back (nothing of it is
 *  recorded). The thread that made it; NULL: no-op. */
void sl__host_recorder_discard(sl_recorder_t *rec);
/** Removes the run of a recorder whose run never started (its tick's claim goes too);
 *  the recorder is then freed as usual. Loop thread. */
void sl__host_recorder_drop(sl_recorder_t *rec);
/** Tells a recorder of a shared store that the store failed: its run stops. */
void sl__host_recorder_store_failed(sl_recorder_t *rec, const char *error);
/** The store's failure, if one happened (borrowed), or NULL. */
const char *sl__host_recorder_error(const sl_recorder_t *rec);
/** Records the end of the finished `run`: every step's counters and the run's status. */
void sl__host_recorder_finish(sl_recorder_t *rec, const sl_run_t *run);
/** Tasks the run took from the run it resumes. */
uint64_t sl__host_recorder_reused(const sl_recorder_t *rec);
/** Frees the recorder (after the run is finished and its lookups are over). */
void sl__host_recorder_free(sl_recorder_t *rec);

/**
 * What changed in `wf` since run `seq` recorded it, as "step 'a' changed, step 'b' is
 * new, step 'c' is gone" into `out` (empty when nothing did). Returns SL_EIO, SL_ENOMEM.
 */
int sl__host_resume_changes(sl_store_t *store, int64_t seq, const sl_workflow_t *wf,
                            sl_buf_t *out, char *err, size_t err_size);
/** The vars run `seq` was run with, in *out (the caller's). */
int sl__host_resume_vars(sl_store_t *store, int64_t seq, sl_value_t **out, char *err,
                         size_t err_size);

/** The client's counters; false when the run made no HTTP request. */
bool sl__host_http_stats(const sl_services_t *svc, sl_http_stats_t *out);
/** The pool's counters; false when the run started no pool. */
bool sl__host_pool_stats(const sl_services_t *svc, sl_pool_stats_t *out);

#endif
