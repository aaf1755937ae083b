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
    const char *plugin; /* the file providing the kind; NULL: the worker searches */
    const sl_value_t *args;
    uint32_t attempt;
    uint64_t *task_ns;        /* the step's measured time per task (kept here); may be NULL */
    uint32_t group;           /* jobs batch with their own group only (the step) */
    uint64_t item;            /* the task's item in its group (resume finds it by both) */
    const char *group_name;   /* the step id, for messages */
    const sl_value_t *sbatch; /* a list of sbatch options (strings); may be NULL */
    uint32_t throttle;        /* elements of one array running at once (%K); 0 = any */
    /* The executor's. */
    struct sl_slurm_job *next, *prev;
    sl_slurm_elem_t *elem; /* NULL while queued */
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
    int64_t close_wait_ms; /* at close, how long the commands going (scancel) get before
                              they are killed; 0 = 15 s */
} sl_slurm_opts_t;

/**
 * What one sbatch call submitted, for the state store: its job id and name, the folder of
 * its files, the group (step) of its tasks, its first element's number and its element
 * count, and per element the items of its tasks as a list of lists of integers (-1: a
 * slot no task of this run wanted). Borrowed.
 */
typedef struct sl_slurm_submission {
    uint64_t job_id;
    const char *name, *dir;
    uint32_t group, first, count;
    const sl_value_t *tasks;
} sl_slurm_submission_t;
typedef void (*sl_submitted_fn)(void *ud, const sl_slurm_submission_t *sub);

/** Calls `fn` after each accepted sbatch (the state store records job ids). */
void sl__slurm_on_submitted(sl_slurm_t *s, sl_submitted_fn fn, void *ud);
/**
 * Resume: takes over an array a previous run submitted (as recorded): its elements'
 * tasks are claimed by the jobs submitted later with the same (group, item) and attempt
 * 1, which then wait for that element (queued or running) or take its finished output,
 * instead of going out again. Before the first submit. Returns SL_ENOMEM, SL_EINVAL.
 */
int sl__slurm_adopt(sl_slurm_t *s, const sl_slurm_submission_t *sub);

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
