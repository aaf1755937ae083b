/*
 * host/slurm: `executor: slurm` steps' tasks sent to the Slurm executor (slurm/) rather
 * than the pool: services.c hands a task here when its step says so. Each task becomes a
 * slurm job record (reused like the pool's), reported back to the scheduler through the
 * executor's callbacks. Also the check that a run with Slurm steps can reach the cluster's
 * commands before anything starts.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/internal.h"
#include "host/slurm.h"
#include "slurm/slurm.h"

typedef struct slurm_rec {
    uint8_t tag; /* SL_HOST_REC_SLURM: tells our records from the pool's */
    sl_slurm_job_t job;
    sl_task_t *task;
} slurm_rec_t;

struct sl_host_slurm {
    sl_slurm_t *slurm;
    uv_loop_t *loop;
    const sl_workflow_t *wf;
    sl_recorder_t *rec; /* where submissions are recorded; NULL: not recorded */
};

static slurm_rec_t *rec_of(sl_slurm_job_t *job)
{
    return (slurm_rec_t *)(void *)((char *)job - offsetof(slurm_rec_t, job));
}

static void on_done(sl_slurm_job_t *job, sl_value_t *output)
{
    slurm_rec_t *r = rec_of(job);
    sl_task_t *task = r->task;
    sl__free(r);
    sl__sched_task_done(task, output);
}

static void on_fail(sl_slurm_job_t *job, int code, const char *message, int64_t retry_after_ms)
{
    slurm_rec_t *r = rec_of(job);
    sl_task_t *task = r->task;
    sl__free(r);
    sl__sched_task_retry_after(task, retry_after_ms);
    sl__sched_task_fail(task, code, message);
}

static const sl_slurm_cbs_t slurm_cbs = {on_done, on_fail};

bool sl__host_slurm_step(const sl_workflow_t *wf, sl_task_t *task)
{
    size_t step = sl__sched_task_step(task);
    return step < wf->step_count && wf->steps[step].executor == SL_EXECUTOR_SLURM;
}

/* limits.slurm.workdir made absolute against the working directory. */
static char *workdir_of(const sl_workflow_t *wf)
{
    const char *dir = wf->limits.slurm_workdir ? wf->limits.slurm_workdir : ".sluice/slurm";
    if (dir[0] == '/')
        return sl__strdup(dir);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    return sl__asprintf("%s/%s", cwd, dir);
}

static sl_host_slurm_t *slurm_get(sl_host_slurm_t **slot, uv_loop_t *loop, const sl_workflow_t *wf,
                                  const char *exe)
{
    if (*slot)
        return *slot;
    sl_host_slurm_t *h = sl__calloc(1, sizeof(*h));
    char *workdir = workdir_of(wf);
    /* The cluster runs the binary by its real path ("/proc/self/exe" is this process's:
     * reading that link is procfs, no disk). */
    char real[PATH_MAX];
    if (exe && realpath(exe, real))
        exe = real;
    sl_slurm_opts_t opts = {.exe = exe, .workdir = workdir, .poll_ms = wf->limits.slurm_poll_ms};
    if (h == NULL || workdir == NULL || sl__slurm_new(loop, &opts, &slurm_cbs, &h->slurm) < 0) {
        sl__free(h);
        sl__free(workdir);
        return NULL;
    }
    sl__free(workdir);
    h->loop = loop;
    h->wf = wf;
    *slot = h;
    return h;
}

int sl__host_slurm_submit(sl_host_slurm_t **slot, uv_loop_t *loop, const sl_workflow_t *wf,
                          const char *exe, sl_task_t *task, const sl_cpu_task_t *cpu, void **handle)
{
    sl_host_slurm_t *h = slurm_get(slot, loop, wf, exe);
    slurm_rec_t *r = h ? sl__calloc(1, sizeof(*r)) : NULL;
    if (r == NULL)
        return SL_ENOMEM;
    size_t index = sl__sched_task_step(task);
    const sl_step_t *step = &wf->steps[index];
    r->tag = SL_HOST_REC_SLURM;
    r->task = task;
    r->job.kind = cpu->kind;
    r->job.plugin = cpu->plugin;
    r->job.args = cpu->args;
    r->job.attempt = cpu->attempt;
    r->job.task_ns = cpu->task_ns;
    r->job.group = (uint32_t)index;
    r->job.item = sl__sched_task_item(task);
    r->job.group_name = step->id;
    r->job.sbatch = step->slurm;
    r->job.throttle = step->concurrency;
    *handle = r;
    sl__slurm_submit(h->slurm, &r->job);
    return 0;
}

bool sl__host_slurm_unqueue(sl_host_slurm_t *h, void *handle)
{
    slurm_rec_t *r = handle;
    if (h == NULL || !sl__slurm_unqueue(h->slurm, &r->job))
        return false;
    sl__free(r);
    return true;
}

void sl__host_slurm_cancel(sl_host_slurm_t *h, void *handle)
{
    slurm_rec_t *r = handle;
    if (h)
        sl__slurm_cancel(h->slurm, &r->job);
}

void sl__host_slurm_close(sl_host_slurm_t **slot)
{
    sl_host_slurm_t *h = *slot;
    if (h == NULL)
        return;
    /* Outstanding tasks fail as canceled, the run's jobs are scancel'ed: the wait for the
     * scancel and the threadpool work in flight is short and bounded. */
    sl__slurm_close(h->slurm);
    while (!sl__slurm_closed(h->slurm))
        uv_run(h->loop, UV_RUN_ONCE);
    sl__slurm_free(h->slurm);
    sl__free(h);
    *slot = NULL;
}

int sl__host_slurm_check(const sl_workflow_t *wf, char *err, size_t err_size)
{
    for (size_t i = 0; i < wf->step_count; i++) {
        const sl_step_t *step = &wf->steps[i];
        if (step->executor != SL_EXECUTOR_SLURM)
            continue;
        static const char *const commands[] = {"sbatch", "squeue", "scancel", "scontrol", NULL};
        for (size_t c = 0; commands[c]; c++)
            if (!sl__slurm_on_path(commands[c])) {
                snprintf(err, err_size,
                         "step '%s' has 'executor: slurm', but '%s' is not on "
                         "PATH: run where Slurm's commands are installed, or use 'executor: "
                         "local'",
                         step->id, commands[c]);
                return SL_ENOTFOUND;
            }
        return 0;
    }
    return 0;
}

/* ---- recording and resuming ---------------------------------------------------------- */

static void record_submission(void *ud, const sl_slurm_submission_t *sub)
{
    sl_host_slurm_t *h = ud;
    if (h->rec == NULL || h->rec->srun == NULL || sub->group >= h->wf->step_count)
        return;
    sl_store_slurm_job_t row = {(int64_t)sub->job_id,
                                h->wf->steps[sub->group].id,
                                sub->name,
                                sub->dir,
                                sub->first,
                                sub->count,
                                sub->tasks};
    sl__store_slurm_job(h->rec->srun, &row);
}

/* One array job of the resumed run: taken over when its step is unchanged, and recorded
 * for this run too (a resume of this run finds it). */
static int adopt_row(void *ud, const sl_store_slurm_job_t *row)
{
    sl_host_slurm_t *h = ud;
    size_t step = sl__workflow_find(h->wf, row->step);
    if (step == SL_NO_STEP || h->wf->steps[step].executor != SL_EXECUTOR_SLURM ||
        (h->rec->rerun && h->rec->rerun[step]) || row->job_id <= 0 || row->first < 0 ||
        row->elements <= 0 || row->elements > UINT32_MAX || row->first > UINT32_MAX)
        return 0;
    sl_slurm_submission_t sub = {
        (uint64_t)row->job_id,   row->name, row->dir, (uint32_t)step, (uint32_t)row->first,
        (uint32_t)row->elements, row->tasks};
    int rc = sl__slurm_adopt(h->slurm, &sub);
    if (rc == SL_EINVAL)
        return 0; /* a row that does not describe an array: its tasks go out again */
    if (rc == 0)
        sl__store_slurm_job(h->rec->srun, row);
    return rc;
}

int sl__host_slurm_record(sl_host_slurm_t **slot, uv_loop_t *loop, const sl_workflow_t *wf,
                          const char *exe, sl_recorder_t *rec, char *err, size_t err_size)
{
    bool has_slurm = false;
    for (size_t i = 0; i < wf->step_count; i++)
        has_slurm |= wf->steps[i].executor == SL_EXECUTOR_SLURM;
    if (!has_slurm || rec == NULL)
        return 0;
    sl_host_slurm_t *h = slurm_get(slot, loop, wf, exe);
    if (h == NULL) {
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    h->rec = rec;
    sl__slurm_on_submitted(h->slurm, record_submission, h);
    if (rec->resume_seq <= 0)
        return 0;
    return sl__store_slurm_jobs(rec->store, rec->resume_seq, adopt_row, h, err, err_size);
}
