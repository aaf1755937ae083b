/*
 * file.so: the `file.read` and `file.write` step kinds (SPEC §3).
 *
 * Both are IO kinds: start() checks the arguments on the loop thread (with the
 * host's argument helpers), hands the blocking file work to libuv's threadpool
 * (uv_queue_work) and completes the task in the after-work callback, back on
 * the loop thread. The work function calls only the host's file_read and
 * file_write, which are made for that thread, and touches no value: it sees
 * only the plain bytes and paths copied into its job.
 *
 * file.write is atomic unless `append` is set: the host writes a temporary file
 * beside the target, fsyncs it and renames it over it; on failure the temporary
 * file and any folder this write created are removed, and the target is
 * untouched. sluice.fs.write writes files the same way (the same engine code).
 * Every data path goes through the host's file functions, which is where the
 * engine keeps paths beneath the run's allowed folders.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "sluice/plugin.h"

#define FILE_MAX_BYTES_DEFAULT ((int64_t)64 * 1024 * 1024)

static const sl_host_t *host;

typedef enum job_kind { JOB_READ, JOB_WRITE } job_kind_t;

/* One file task. Owned by the task from start() until after_work() frees it. */
typedef struct file_job {
    uv_work_t work;
    sl_task_t *task;
    job_kind_t kind;
    char *path; /* the host's copy of `path` (host->arg_string): host->free */
    /* file.write: the bytes to write, this plugin's own copy (malloc) */
    char *content;
    size_t content_len;
    bool append;
    /* file.read */
    int64_t max_bytes;
    char *data; /* from host->file_read, data_len bytes: host->free */
    size_t data_len;
    /* set by cancel (loop thread), read by the write (threadpool) */
    sl_cancel_flag_t canceled;
    int rc;                /* of the work: 0 or a negative SL_E*, with the message in err */
    char err[SL_ERR_SIZE]; /* "cannot read 'PATH': ...", written by the host */
} file_job_t;

/* ---- helpers ------------------------------------------------------------ */

/* Fails the task with a helper's standard message, prefixed by the kind. Returns 0, what
 * start() returns for a task it completed. */
static int fail_arg(sl_task_t *task, const char *kind, int rc, const char *err)
{
    host->task_failf(task, rc, "%s: %s", kind, err);
    return 0;
}

static void job_free(file_job_t *job)
{
    if (job == NULL)
        return;
    host->free(job->path);
    free(job->content);
    host->free(job->data);
    free(job);
}

/* The threadpool side: the host's file functions, the engine's atomic write and bounded
 * read (the same code as sluice.fs.read/write). */
static void work_cb(uv_work_t *req)
{
    file_job_t *job = req->data;
    job->rc = job->kind == JOB_READ
                  ? host->file_read(job->task, job->path, job->max_bytes, &job->data,
                                    &job->data_len, job->err, sizeof(job->err))
                  : host->file_write(job->task, job->path, job->content, job->content_len,
                                     job->append ? SL_FILE_APPEND : 0, &job->canceled, job->err,
                                     sizeof(job->err));
}

/* ---- loop side ------------------------------------------------------------ */

static sl_value_t *write_output(file_job_t *job)
{
    sl_value_t *map = host->value_map();
    sl_value_t *path = host->value_string(job->path, strlen(job->path));
    sl_value_t *bytes = host->value_int((int64_t)job->content_len);
    if (map == NULL || path == NULL || bytes == NULL) {
        host->value_free(map);
        host->value_free(path);
        host->value_free(bytes);
        return NULL;
    }
    if (host->value_set(map, "path", path) != 0 || host->value_set(map, "bytes", bytes) != 0) {
        host->value_free(map);
        return NULL;
    }
    return map;
}

static void after_work_cb(uv_work_t *req, int status)
{
    file_job_t *job = req->data;
    sl_task_t *task = job->task;
    host->task_set_data(task, NULL);
    if (status == UV_ECANCELED || atomic_load(&job->canceled)) {
        host->task_failf(task, SL_ECANCELED, "%s of '%s' canceled",
                         job->kind == JOB_READ ? "file.read" : "file.write", job->path);
    } else if (job->rc != 0) {
        host->task_fail(task, job->rc, job->err);
    } else {
        sl_value_t *out =
            job->kind == JOB_READ
                ? host->value_string(job->data != NULL ? job->data : "", job->data_len)
                : write_output(job);
        if (out == NULL)
            host->task_fail(task, SL_ENOMEM, "out of memory");
        else
            host->task_done(task, out);
    }
    job_free(job);
}

/* Queues the job; on failure fails the task and frees the job. Returns 0. */
static int queue_job(file_job_t *job)
{
    job->work.data = job;
    host->task_set_data(job->task, job);
    int rc = uv_queue_work(host->task_loop(job->task), &job->work, work_cb, after_work_cb);
    if (rc != 0) {
        host->task_set_data(job->task, NULL);
        host->task_failf(job->task, SL_EIO, "cannot queue file work: %s", uv_strerror(rc));
        job_free(job);
    }
    return 0;
}

/* A job for `path` (the host's copy, taken even on failure); NULL when out of memory. */
static file_job_t *job_new(sl_task_t *task, job_kind_t kind, char *path)
{
    file_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) {
        host->free(path);
        return NULL;
    }
    atomic_init(&job->canceled, false);
    job->path = path;
    job->task = task;
    job->kind = kind;
    return job;
}

/* The `path` parameter: a non-empty string without NUL bytes, copied. 0, or the helper's
 * code after its message (SL_ENOMEM included) went into err. */
static int path_arg(const sl_value_t *args, char **path, char *err, size_t err_size)
{
    return host->arg_string(args, "path", SL_ARG_REQUIRED | SL_ARG_NOT_EMPTY, path, NULL, err,
                            err_size);
}

static int read_start(sl_task_t *task, const sl_value_t *args)
{
    char err[SL_ERR_SIZE], *path;
    int64_t max_bytes = FILE_MAX_BYTES_DEFAULT;
    int rc = path_arg(args, &path, err, sizeof(err));
    if (rc == SL_ENOMEM)
        return rc;
    if (rc != 0)
        return fail_arg(task, "file.read", rc, err);
    rc = host->arg_int(args, "max_bytes", 0, 0, INT64_MAX, NULL, &max_bytes, err, sizeof(err));
    if (rc != 0) {
        host->free(path);
        return fail_arg(task, "file.read", rc, err);
    }
    file_job_t *job = job_new(task, JOB_READ, path);
    if (job == NULL)
        return SL_ENOMEM;
    job->max_bytes = max_bytes;
    return queue_job(job);
}

/* Copies the bytes to write into the job: a string as is, anything else as
 * JSON plus a newline. A copy rather than the borrowed args, so the
 * threadpool never reads the engine's memory, even if the engine gives up on
 * a canceled task before its work finished. 0, or SL_ENOMEM. */
static int set_content(file_job_t *job, const sl_value_t *content)
{
    size_t len;
    const char *s = host->value_str(content, &len);
    char *json = NULL;
    if (s == NULL) {
        if (host->value_to_json(content, &json, &len) != 0)
            return SL_ENOMEM;
        s = json;
    }
    size_t size = len + (json != NULL ? 1 : 0);
    job->content = malloc(size > 0 ? size : 1);
    if (job->content != NULL) {
        memcpy(job->content, s, len);
        if (json != NULL)
            job->content[len] = '\n';
        job->content_len = size;
    }
    if (json != NULL)
        host->free(json);
    return job->content != NULL ? 0 : SL_ENOMEM;
}

static int write_start(sl_task_t *task, const sl_value_t *args)
{
    char err[SL_ERR_SIZE], *path;
    int rc = path_arg(args, &path, err, sizeof(err));
    if (rc == SL_ENOMEM)
        return rc;
    if (rc != 0)
        return fail_arg(task, "file.write", rc, err);
    const sl_value_t *content = host->value_get(args, "content");
    if (content == NULL) {
        host->free(path);
        host->task_fail(task, SL_EINVAL, "file.write: 'content' is required");
        return 0;
    }
    const sl_value_t *append = host->value_get(args, "append");
    file_job_t *job = job_new(task, JOB_WRITE, path);
    if (job == NULL)
        return SL_ENOMEM;
    job->append = append != NULL && host->value_truthy(append);
    if (set_content(job, content) != 0) {
        job_free(job);
        return SL_ENOMEM;
    }
    return queue_job(job);
}

/* Cancels work not yet picked up by a thread; running work finishes and the
 * task completes normally. */
static void file_cancel(sl_task_t *task)
{
    file_job_t *job = host->task_data(task);
    if (job != NULL) {
        atomic_store(&job->canceled, true); /* work already running stops at its next check */
        uv_cancel((uv_req_t *)&job->work);
    }
}

/* ---- descriptor ------------------------------------------------------------ */

static const sl_param_t read_params[] = {
    {"path", SL_PT_STRING, SL_PARAM_REQUIRED | SL_PARAM_READS_FILE, "file to read (relative to the working directory)"},
    {"max_bytes", SL_PT_INT, 0, "largest file accepted (default 64 MiB)"},
    {NULL, 0, 0, NULL},
};

static const sl_param_t write_params[] = {
    {"path", SL_PT_STRING, SL_PARAM_REQUIRED, "file to write; missing folders are created"},
    {"content", SL_PT_ANY, SL_PARAM_REQUIRED,
     "a string, written as is, or any other value, written as JSON and a newline"},
    {"append", SL_PT_BOOL, 0, "append instead of replacing atomically (default false)"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t file_kinds[] = {
    {"file.read", SL_EXEC_IO, 0, "Reads a file's text.", read_params, read_start, file_cancel},
    {"file.write", SL_EXEC_IO, 0, "Writes a file atomically (or appends); output {path, bytes}.",
     write_params, write_start, file_cancel},
};

static const sl_plugin_t file_plugin = SL_PLUGIN_INIT("file", "1.0.0", file_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
/* The first ABI 1.2 function this plugin calls that `h` lacks; NULL when it has them all. */
static const char *missing_function(const sl_host_t *h)
{
    if (!SL_HOST_HAS(h, file_read))
        return "file_read";
    if (!SL_HOST_HAS(h, file_write))
        return "file_write";
    if (!SL_HOST_HAS(h, arg_int))
        return "arg_int";
    if (!SL_HOST_HAS(h, arg_string))
        return "arg_string";
    return NULL;
}

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR)
        return NULL;
    const char *missing = missing_function(h);
    if (missing != NULL) {
        h->log(NULL, SL_LOG_ERROR,
               "file.so needs sluice's plugin ABI 1.2 (host function '%s'); this sluice has "
               "ABI %u.%u: not loaded", missing, (unsigned)h->abi_major, (unsigned)h->abi_minor);
        return NULL;
    }
    host = h;
    return &file_plugin;
}
