/*
 * host/slurm.h: the Slurm executor bound to the scheduler (host/slurm.c), for services.c
 * and the CLI. Loop thread only.
 */
#ifndef SL_HOST_SLURM_H
#define SL_HOST_SLURM_H

#include <stdbool.h>
#include <uv.h>

#include "loader/workflow.h"
#include "sched/sched.h"

#define SL_HOST_REC_POOL 0
#define SL_HOST_REC_SLURM 1 /* the first byte of an executor handle says whose it is */

typedef struct sl_host_slurm sl_host_slurm_t;

/** Does the task's step run on Slurm? */
bool sl__host_slurm_step(const sl_workflow_t *wf, sl_task_t *task);
/** Sends a task to the run's Slurm executor (*slot, made on first use). SL_ENOMEM. */
int sl__host_slurm_submit(sl_host_slurm_t **slot, uv_loop_t *loop, const sl_workflow_t *wf,
                          const char *exe, sl_task_t *task, const sl_cpu_task_t *cpu,
                          void **handle);
bool sl__host_slurm_unqueue(sl_host_slurm_t *h, void *handle);
void sl__host_slurm_cancel(sl_host_slurm_t *h, void *handle);
typedef struct sl_recorder sl_recorder_t;
/**
 * Records the run's Slurm submissions through `rec` (borrowed, outlives the executor);
 * when `rec` resumes a run, takes over that run's recorded array jobs of unchanged steps
 * (slurm.h's sl__slurm_adopt). Before the run starts. 0, or SL_EIO, SL_ENOMEM with the
 * message in `err`.
 */
int sl__host_slurm_record(sl_host_slurm_t **slot, uv_loop_t *loop, const sl_workflow_t *wf,
                          const char *exe, sl_recorder_t *rec, char *err, size_t err_size);
/** Cancels what is out (scancel), runs the loop until closed, frees; *slot = NULL. */
void sl__host_slurm_close(sl_host_slurm_t **slot);
/**
 * Before a run: a workflow with `executor: slurm` steps needs sbatch, squeue, scancel and
 * scontrol on PATH. 0, or SL_ENOTFOUND with the message in `err`. Reads PATH's folders
 * (blocking; before the loop runs).
 */
int sl__host_slurm_check(const sl_workflow_t *wf, char *err, size_t err_size);

#endif
