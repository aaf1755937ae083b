/*
 * A run's services: its HTTP client, its worker pool, and the pool as the run's CPU
 * executor. The scheduler sees the executor through sl_executor_t only; each CPU task it
 * submits becomes a pool job kept in a record of ours (reused, so a step of 15,000 tasks
 * makes a window's worth of them, not 15,000). Tasks of `executor: slurm` steps go to the
 * Slurm executor instead (host/slurm.c).
 *
 * Runs of a daemon (serve) share one curl multi and one pool (sl_host_shared_t, with the
 * daemon's caps): each run still has a client of its own in that multi, with its
 * workflow's limits.http (rates, robots, its folders, trust, proxy), while the pool is
 * borrowed as it is and never closed by a run.
 */
#include <stdio.h>
#include <string.h>

#include "host/host.h"
#include "host/slurm.h"

#define SPARE_JOBS_MAX 1024

typedef struct cpu_job {
    uint8_t tag; /* SL_HOST_REC_POOL */
    sl_pool_job_t job;
    sl_task_t *task;
    struct cpu_job *next_spare;
} cpu_job_t;

struct sl_host_shared {
    uv_loop_t *loop;
    uint32_t http_concurrency;
    sl_pool_opts_t pool_opts;
    char *worker_exe;         /* NULL: no workers */
    sl_http_engine_t *engine; /* made on the first request of any run */
    sl_pool_t *pool;        /* started on the first CPU task of any run */
};

struct sl_services {
    sl_executor_t executor; /* first: the executor's callbacks find the services from it */
    sl_host_shared_t *shared; /* borrowed, or NULL: the engine and pool are the run's own */
    uv_loop_t *loop;
    const sl_workflow_t *wf;
    const sl_registry_t *registry;
    char *worker_exe;        /* NULL: no workers, CPU kinds run on the loop */
    sl_http_client_t *http;  /* made on the first request */
    sl_pool_t *pool;         /* started with a run that has CPU steps, or on first use */
    sl_host_slurm_t *slurm;  /* made with the first task of an `executor: slurm` step */
    sl_confine_t *roots;     /* where data paths may lead: cwd and limits.fs.allow */
    cpu_job_t *spare_jobs;
    size_t spare_count;
};

/* ---- the pool as the run's executor ----------------------------------------------- */

static cpu_job_t *job_of(sl_pool_job_t *job)
{
    return (cpu_job_t *)(void *)((char *)job - offsetof(cpu_job_t, job));
}

static sl_services_t *services_of(sl_executor_t *ex)
{
    return (sl_services_t *)(void *)ex;
}

/* Gives a record back; returns the task it held. */
static sl_task_t *release_job(sl_services_t *svc, cpu_job_t *cj)
{
    sl_task_t *task = cj->task;
    if (svc->spare_count < SPARE_JOBS_MAX) {
        cj->next_spare = svc->spare_jobs;
        svc->spare_jobs = cj;
        svc->spare_count++;
    } else {
        sl__free(cj);
    }
    return task;
}

static void on_job_done(sl_pool_job_t *job, sl_value_t *output);
static void on_job_fail(sl_pool_job_t *job, int code, const char *message,
                        int64_t retry_after_ms);
static void on_job_log(sl_pool_job_t *job, int level, const char *message);

/* The pool reports a job through these; job->cbs is unused for the executor's jobs, so the
 * services are found from the record's task. */
static const sl_pool_cbs_t executor_cbs = {on_job_done, on_job_fail, on_job_log};

static void on_job_done(sl_pool_job_t *job, sl_value_t *output)
{
    cpu_job_t *cj = job_of(job);
    sl_task_t *task = release_job(sl__task_services(cj->task), cj);
    sl__sched_task_done(task, output);
}

static void on_job_fail(sl_pool_job_t *job, int code, const char *message,
                        int64_t retry_after_ms)
{
    cpu_job_t *cj = job_of(job);
    sl_task_t *task = release_job(sl__task_services(cj->task), cj);
    sl__sched_task_retry_after(task, retry_after_ms);
    sl__sched_task_fail(task, code, message);
}

static void on_job_log(sl_pool_job_t *job, int level, const char *message)
{
    sl__host_table()->log(job_of(job)->task, level, "%s", message);
}

/* Workers cost a process each: they start with the first CPU task unless prestarted. */
static sl_pool_t *pool_get(sl_services_t *svc)
{
    sl_host_shared_t *sh = svc->shared;
    if (sh) {
        if (sh->pool == NULL && sh->worker_exe != NULL &&
            sl__pool_new(sh->loop, &sh->pool_opts, &executor_cbs, &sh->pool) < 0)
            sh->pool = NULL;
        return sh->pool;
    }
    if (svc->pool == NULL && svc->worker_exe != NULL) {
        const sl_limits_t *limits = &svc->wf->limits;
        sl_pool_opts_t opts = {.workers = limits->cpu_workers,
                               .memory_bytes = limits->cpu_memory_bytes,
                               .exe = svc->worker_exe};
        if (sl__pool_new(svc->loop, &opts, &executor_cbs, &svc->pool) < 0)
            svc->pool = NULL;
    }
    return svc->pool;
}

static int executor_submit(sl_executor_t *ex, sl_task_t *task, const sl_cpu_task_t *cpu,
                           void **handle)
{
    sl_services_t *svc = services_of(ex);
    if (sl__host_slurm_step(svc->wf, task))
        return sl__host_slurm_submit(&svc->slurm, svc->loop, svc->wf, svc->worker_exe, task,
                                     cpu, handle);
    sl_pool_t *pool = pool_get(svc);
    cpu_job_t *cj = svc->spare_jobs;
    if (pool == NULL)
        return SL_ENOMEM;
    if (cj) {
        svc->spare_jobs = cj->next_spare;
        svc->spare_count--;
    } else if ((cj = sl__malloc(sizeof(*cj))) == NULL) {
        return SL_ENOMEM;
    }
    memset(&cj->job, 0, sizeof(cj->job));
    cj->tag = SL_HOST_REC_POOL;
    cj->task = task;
    cj->job.kind = cpu->kind;
    cj->job.plugin = cpu->plugin;
    cj->job.args = cpu->args;
    cj->job.attempt = cpu->attempt;
    cj->job.timeout_ms = cpu->timeout_ms;
    cj->job.task_ns = cpu->task_ns;
    *handle = cj;
    sl__pool_submit(pool, &cj->job);
    return 0;
}

static bool executor_unqueue(sl_executor_t *ex, void *handle)
{
    sl_services_t *svc = services_of(ex);
    cpu_job_t *cj = handle;
    if (cj->tag == SL_HOST_REC_SLURM)
        return sl__host_slurm_unqueue(svc->slurm, handle);
    if (!sl__pool_unqueue(pool_get(svc), &cj->job))
        return false;
    release_job(svc, cj);
    return true;
}

static void executor_cancel(sl_executor_t *ex, void *handle)
{
    cpu_job_t *cj = handle;
    if (cj->tag == SL_HOST_REC_SLURM) {
        sl__host_slurm_cancel(services_of(ex)->slurm, handle);
        return;
    }
    sl__pool_cancel(pool_get(services_of(ex)), &cj->job); /* kills its worker; fails it later */
}

static size_t executor_window(const sl_executor_t *ex)
{
    const sl_services_t *svc = (const sl_services_t *)(const void *)ex;
    const sl_pool_t *pool = svc->shared ? svc->shared->pool : svc->pool;
    return pool ? sl__pool_window(pool) : 0;
}

/* ---- the services ----------------------------------------------------------------- */

static bool has_uncached_cpu_steps(const sl_workflow_t *wf)
{
    for (size_t i = 0; i < wf->step_count; i++) {
        const sl_step_t *step = &wf->steps[i];
        if (step->kind && step->kind->exec == SL_EXEC_CPU && !step->cache.on &&
            step->executor == SL_EXECUTOR_LOCAL)
            return true;
    }
    return false;
}

/* The run's roots. A folder of limits.fs.allow the loader saw but that is gone now leaves
 * the working directory alone (the paths beneath it then fail as outside), with a warning. */
static int make_roots(sl_services_t *svc)
{
    const sl_limits_t *limits = &svc->wf->limits;
    char err[512];
    int rc = sl__confine_new((const char *const *)limits->fs_allow, limits->fs_allow_count,
                             &svc->roots, err, sizeof(err));
    if (rc == SL_ENOMEM)
        return rc;
    if (rc < 0) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "%s", err);
        rc = sl__confine_new(NULL, 0, &svc->roots, err, sizeof(err));
    }
    return rc == SL_ENOMEM ? rc : 0; /* no roots at all: data paths fail (cwd unreadable) */
}

int sl__host_services_new(uv_loop_t *loop, const sl_workflow_t *wf,
                          const sl_services_opts_t *opts, sl_services_t **out)
{
    sl_services_t *svc = sl__calloc(1, sizeof(*svc));
    if (svc == NULL)
        return SL_ENOMEM;
    svc->executor = (sl_executor_t){executor_submit, executor_unqueue, executor_cancel,
                                    executor_window};
    svc->loop = loop;
    svc->wf = wf;
    svc->registry = opts ? opts->registry : NULL;
    svc->shared = opts ? opts->shared : NULL;
    if (make_roots(svc) < 0) {
        sl__free(svc);
        return SL_ENOMEM;
    }
    const char *exe = opts && opts->worker_exe ? opts->worker_exe : sl__pool_default_exe();
    if (svc->shared)
        exe = svc->shared->worker_exe;
    if (exe && (svc->worker_exe = sl__strdup(exe)) == NULL) {
        sl__confine_free(svc->roots);
        sl__free(svc);
        return SL_ENOMEM;
    }
    if (opts && opts->prestart && svc->worker_exe && has_uncached_cpu_steps(wf) &&
        pool_get(svc) == NULL) {
        sl__host_services_free(svc);
        return SL_ENOMEM;
    }
    *out = svc;
    return 0;
}

int sl__host_services_record(sl_services_t *svc, sl_recorder_t *rec, char *err,
                             size_t err_size)
{
    return sl__host_slurm_record(&svc->slurm, svc->loop, svc->wf, svc->worker_exe, rec, err,
                                 err_size);
}

sl_executor_t *sl__host_executor(sl_services_t *svc)
{
    return svc && svc->worker_exe ? &svc->executor : NULL;
}

void sl__host_services_close(sl_services_t *svc)
{
    if (svc == NULL)
        return;
    sl__host_slurm_close(&svc->slurm); /* a run's own, in a daemon too */
    if (svc->http) { /* in a daemon, the engine under it stays */
        /* Canceled downloads remove their temporary files in the threadpool: wait for
         * that (it is short), so no work outlives the loop. */
        sl__io_http_close(svc->http);
        while (!sl__io_http_closed(svc->http))
            uv_run(svc->loop, UV_RUN_ONCE);
        sl__io_http_free(svc->http);
        svc->http = NULL;
    }
    if (svc->shared) /* the pool is the daemon's: sl__host_shared_free */
        return;
    if (svc->pool) {
        /* Idle workers exit when their socket closes, busy ones are killed: the wait for
         * their exits is short and bounded. */
        sl__pool_close(svc->pool);
        while (!sl__pool_closed(svc->pool))
            uv_run(svc->loop, UV_RUN_ONCE);
        sl__pool_free(svc->pool);
        svc->pool = NULL;
    }
}

void sl__host_services_free(sl_services_t *svc)
{
    if (svc == NULL)
        return;
    sl__host_services_close(svc);
    while (svc->spare_jobs) {
        cpu_job_t *cj = svc->spare_jobs;
        svc->spare_jobs = cj->next_spare;
        sl__free(cj);
    }
    sl__confine_free(svc->roots);
    sl__free(svc->worker_exe);
    sl__free(svc);
}

/* The daemon's engine, made on the first request of any of its runs. */
static int shared_engine(sl_host_shared_t *sh, sl_http_engine_t **out, char *err,
                         size_t err_size)
{
    if (sh->engine == NULL) {
        int rc = sl__io_http_engine_new(sh->loop, sh->http_concurrency, 0, &sh->engine);
        if (rc < 0) {
            snprintf(err, err_size, "cannot start the HTTP client: %s", sl_strerror(rc));
            return rc;
        }
    }
    *out = sh->engine;
    return 0;
}

int sl__host_http(sl_task_t *task, sl_http_client_t **out, char *err, size_t err_size)
{
    sl_services_t *svc = sl__task_services(task);
    if (svc == NULL) {
        snprintf(err, err_size, "this run has no HTTP client");
        return SL_EINVAL;
    }
    if (svc->http == NULL) {
        int rc = sl__io_http_load(err, err_size);
        sl_http_engine_t *engine = NULL;
        if (rc == 0 && svc->shared)
            rc = shared_engine(svc->shared, &engine, err, err_size);
        if (rc < 0)
            return rc;
        const sl_limits_t *limits = &svc->wf->limits;
        char *proxy = NULL; /* the credentials it may hold live only in the client */
        if (limits->http_proxy) {
            char why[160];
            rc = sl__loader_env_expand(limits->http_proxy, &proxy, why, sizeof(why));
            if (rc < 0) {
                snprintf(err, err_size, "limits.http.proxy: %s", why);
                return rc == SL_ENOMEM ? rc : SL_EINVAL;
            }
        }
        sl_http_limits_t http_limits = {
            .concurrency = limits->http_concurrency,
            .per_host = limits->http_per_host,
            .rate = limits->http_rate,
            .robots = limits->http_robots,
            .roots = svc->roots,
            .ca_file = limits->http_ca_file,
            .proxy = proxy,
            .h2c = limits->http_h2c,
            .max_streams = limits->http_max_streams,
        };
        rc = engine ? sl__io_http_new_in(engine, &http_limits, &svc->http)
                    : sl__io_http_new(svc->loop, &http_limits, &svc->http);
        if (proxy)
            explicit_bzero(proxy, strlen(proxy));
        sl__free(proxy);
        if (rc < 0) {
            snprintf(err, err_size, "cannot start the HTTP client: %s", sl_strerror(rc));
            return rc;
        }
    }
    *out = svc->http;
    return 0;
}

sl_pool_t *sl__host_pool(sl_task_t *task)
{
    sl_services_t *svc = sl__task_services(task);
    return svc ? pool_get(svc) : NULL;
}

const sl_confine_t *sl__host_roots(sl_task_t *task)
{
    sl_services_t *svc = task ? sl__task_services(task) : NULL;
    return svc && svc->roots ? svc->roots : sl__confine_default();
}

const sl_registry_t *sl__host_registry(sl_task_t *task)
{
    sl_services_t *svc = sl__task_services(task);
    return svc ? svc->registry : NULL;
}

bool sl__host_http_stats(const sl_services_t *svc, sl_http_stats_t *out)
{
    const sl_http_client_t *http = svc ? svc->http : NULL;
    if (http == NULL)
        return false;
    sl__io_http_stats(http, out);
    return true;
}

bool sl__host_pool_stats(const sl_services_t *svc, sl_pool_stats_t *out)
{
    const sl_pool_t *pool = svc && svc->shared ? svc->shared->pool : svc ? svc->pool : NULL;
    if (pool == NULL)
        return false;
    sl__pool_stats(pool, out);
    return true;
}

/* ---- a daemon's shared client and pool -------------------------------------------- */

int sl__host_shared_new(uv_loop_t *loop, const sl_host_shared_opts_t *opts,
                        sl_host_shared_t **out)
{
    sl_host_shared_t *sh = sl__calloc(1, sizeof(*sh));
    if (sh == NULL)
        return SL_ENOMEM;
    sh->loop = loop;
    sh->http_concurrency = opts->http_concurrency;
    const char *exe = opts->worker_exe ? opts->worker_exe : sl__pool_default_exe();
    if (exe && (sh->worker_exe = sl__strdup(exe)) == NULL) {
        sl__free(sh);
        return SL_ENOMEM;
    }
    sh->pool_opts = (sl_pool_opts_t){.workers = opts->cpu_workers,
                                     .memory_bytes = opts->cpu_memory_bytes,
                                     .exe = sh->worker_exe};
    *out = sh;
    return 0;
}

void sl__host_shared_free(sl_host_shared_t *sh)
{
    if (sh == NULL)
        return;
    if (sh->engine) { /* every run's client is freed by now */
        sl__io_http_engine_close(sh->engine);
        while (!sl__io_http_engine_closed(sh->engine))
            uv_run(sh->loop, UV_RUN_ONCE);
        sl__io_http_engine_free(sh->engine);
    }
    if (sh->pool) {
        sl__pool_close(sh->pool);
        while (!sl__pool_closed(sh->pool))
            uv_run(sh->loop, UV_RUN_ONCE);
        sl__pool_free(sh->pool);
    }
    sl__free(sh->worker_exe);
    sl__free(sh);
}
