/*
 * slurm: the Slurm executor (SPEC §7, docs/slurm.md). CPU tasks become array jobs on a
 * Slurm cluster: tasks queued together are batched into array elements (sized from the
 * measured task time, as the pool sizes its batches), each element's batch is a file in
 * the shared work directory in the pool's wire encoding, and `sluice __worker` runs it
 * there (file mode, pool/worker.c), writing its results to a file renamed whole.
 *
 * Every cluster command (scontrol, sinfo, sbatch, squeue, scancel) is a child process
 * watched by the loop (uv_spawn), never a blocking call; file work goes to libuv's
 * threadpool. One squeue call per poll interval covers all of the executor's jobs.
 *
 * Loop thread only. Callbacks are never called from inside sl__slurm_submit or
 * sl__slurm_cancel; they come from the loop and from sl__slurm_close.
 */
#ifndef SL_SLURM_H
#define SL_SLURM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "value/value.h"

typedef struct sl_slurm sl_slurm_t;
typedef struct sl_slurm_elem sl_slurm_elem_t;

/** One task, embedded in its owner. */
typedef struct sl_slurm_job {
    /* Set by the owner before sl__slurm_submit; borrowed until the job is reported. */
    const char *kind;
    const char *plugin;         /* the file providing the kind; NULL: the worker searches */
    const sl_value_t *args;
    uint32_t attempt;
    uint64_t *task_ns;          /* the step's measured time per task (kept here); may be NULL */
    uint32_t group;             /* jobs batch with their own group only (the step) */
    const char *group_name;     /* the step id, for messages */
    const sl_value_t *sbatch;   /* a list of sbatch options (strings); may be NULL */
    uint32_t throttle;          /* elements of one array running at once (%K); 0 = any */
    /* The executor's. */
    struct sl_slurm_job *next, *prev;
    sl_slurm_elem_t *elem;      /* NULL while queued */
    bool canceled;
} sl_slurm_job_t;

typedef struct sl_slurm_cbs {
    /** Takes `output`. */
    void (*done)(sl_slurm_job_t *job, sl_value_t *output);
    /** `message` is borrowed for the call. */
    void (*fail)(sl_slurm_job_t *job, int code, const char *message, int64_t retry_after_ms);
} sl_slurm_cbs_t;

typedef struct sl_slurm_opts {
    const char *exe;     /* the sluice binary the elements run (absolute); copied */
    const char *workdir; /* the shared work directory (absolute); copied */
    int64_t poll_ms;     /* the first poll interval; 0 = 1 s (backs off to 16 times it) */
} sl_slurm_opts_t;

typedef struct sl_slurm_stats {
    uint64_t sbatch, squeue, scancel; /* cluster calls made */
    uint64_t elements, tasks;
} sl_slurm_stats_t;

/** Makes an executor (nothing is started until the first job). Returns SL_ENOMEM. */
int sl__slurm_new(uv_loop_t *loop, const sl_slurm_opts_t *opts, const sl_slurm_cbs_t *cbs,
                  sl_slurm_t **out);
/** Queues a job; it goes out with the next submission (jobs queued together batch). */
void sl__slurm_submit(sl_slurm_t *s, sl_slurm_job_t *job);
/** Removes a job not yet submitted (true: no callback will come); false otherwise. */
bool sl__slurm_unqueue(sl_slurm_t *s, sl_slurm_job_t *job);
/** Stops a submitted job: it fails with SL_ECANCELED later, its element is scancel'ed
 *  once none of its jobs is wanted. */
void sl__slurm_cancel(sl_slurm_t *s, sl_slurm_job_t *job);
/**
 * Shuts down: queued and outstanding jobs fail with SL_ECANCELED (from this call), the
 * jobs on the cluster are scancel'ed (one call). Run the loop until sl__slurm_closed (the
 * wait is bounded), then sl__slurm_free.
 */
void sl__slurm_close(sl_slurm_t *s);
bool sl__slurm_closed(const sl_slurm_t *s);
void sl__slurm_free(sl_slurm_t *s);
void sl__slurm_stats(const sl_slurm_t *s, sl_slurm_stats_t *out);

/** Is `name` (sbatch) an executable on PATH? Blocking: for the start of a run only. */
bool sl__slurm_on_path(const char *name);

#endif
