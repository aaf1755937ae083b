/*
 * file.so: the `file.read` and `file.write` step kinds (SPEC §3).
 *
 * Both are IO kinds: start() checks the arguments on the loop thread, hands
 * the blocking file work to libuv's threadpool (uv_queue_work) and completes
 * the task in the after-work callback, back on the loop thread. The work
 * function touches no host function and no value: it sees only the plain
 * bytes and paths copied into its job.
 *
 * file.write is atomic unless `append` is set: the bytes go to a temporary
 * file beside the target, which is fsync'd and renamed over it. On failure
 * the temporary file and any folder this write created are removed, and the
 * target is untouched. The threadpool side is engine/util/fsio.c, compiled
 * in here too, so sluice.fs.write writes files the same way.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "fsio.h"
#include "sluice/plugin.h"

#define FILE_MAX_BYTES_DEFAULT ((int64_t)64 * 1024 * 1024)

static const sl_host_t *host;

typedef enum job_kind { JOB_READ, JOB_WRITE } job_kind_t;

/* One file task. Owned by the task from start() until after_work() frees it. */
typedef struct file_job {
    uv_work_t work;
    sl_task_t *task;
    job_kind_t kind;
    char *path; /* owned copy of `path` */
    /* file.write: the bytes to write (content == owned_content, malloc'd) */
    const char *content;
    size_t content_len;
    char *owned_content;
    int append;
    /* file.read */
    int64_t max_bytes;
    char *data; /* malloc'd, data_len bytes */
    size_t data_len;
    /* set by cancel (loop thread), read by the work (threadpool) */
    atomic_bool canceled;
    sl_fsio_result_t result; /* of the work */
} file_job_t;

/* ---- helpers ------------------------------------------------------------ */

static int code_of_errno(int error)
{
    switch (error) {
    case ENOENT:
        return SL_ENOENT;
    case ENOMEM:
        return SL_ENOMEM;
    case EEXIST:
        return SL_EEXIST;
    default:
        return SL_EIO;
    }
}

/* The non-empty string parameter `name`, or NULL after failing the task. */
static const char *arg_string(sl_task_t *task, const sl_value_t *args, const char *kind,
                              const char *name, size_t *len)
{
    const sl_value_t *v = args != NULL ? host->value_get(args, name) : NULL;
    const char *s = v != NULL ? host->value_str(v, len) : NULL;
    if (s == NULL || *len == 0 || strlen(s) != *len) {
        host->task_failf(task, SL_EINVAL, "%s: '%s' must be a non-empty string without NUL bytes",
                         kind, name);
        return NULL;
    }
    return s;
}

/* An optional non-negative integer parameter; -1 after failing the task. */
static int64_t arg_size(sl_task_t *task, const sl_value_t *args, const char *kind, const char *name,
                        int64_t fallback)
{
    const sl_value_t *v = args != NULL ? host->value_get(args, name) : NULL;
    if (v == NULL || host->value_type(v) == SL_TYPE_NIL)
        return fallback;
    sl_type_t t = host->value_type(v);
    double n = t == SL_TYPE_NUMBER ? host->value_number_of(v) : 0;
    if ((t != SL_TYPE_INT && !(t == SL_TYPE_NUMBER && n == (double)(int64_t)n)) ||
        host->value_int_of(v) < 0) {
        host->task_failf(task, SL_EINVAL, "%s: '%s' must be a non-negative integer", kind, name);
        return -1;
    }
    return host->value_int_of(v);
}

static void job_free(file_job_t *job)
{
    if (job == NULL)
        return;
    free(job->path);
    free(job->owned_content);
    free(job->data);
    free(job);
}


/* The threadpool side: util/fsio.c, which sluice.fs.read/write share. */
static void work_cb(uv_work_t *req)
{
    file_job_t *job = req->data;
    job->result = job->kind == JOB_READ
                      ? sl__fsio_read(job->path, job->max_bytes, &job->data, &job->data_len)
                      : sl__fsio_write(job->path, job->content, job->content_len,
                                       job->append != 0, &job->canceled);
}

/* ---- loop side ------------------------------------------------------------ */

static void fail_job(file_job_t *job)
{
    const char *verb = job->kind == JOB_READ ? "read" : "write";
    int folder_len = (int)job->result.folder_len, error = job->result.error;
    switch (job->result.stage) {
    case SL_FSIO_TOO_BIG:
        host->task_failf(job->task, SL_ELIMIT,
                         "cannot read '%s': file is larger than max_bytes (%lld bytes)", job->path,
                         (long long)job->max_bytes);
        break;
    case SL_FSIO_MKDIR:
        host->task_failf(job->task, code_of_errno(error),
                         "cannot write '%s': cannot create folder '%.*s': %s", job->path,
                         folder_len, job->path, strerror(error));
        break;
    case SL_FSIO_NOT_DIR:
        host->task_failf(job->task, SL_EIO, "cannot write '%s': '%.*s' is not a folder", job->path,
                         folder_len, job->path);
        break;
    case SL_FSIO_NO_NAME:
        host->task_failf(job->task, SL_EINVAL, "cannot write '%s': the path names a folder",
                         job->path);
        break;
    case SL_FSIO_SPECIAL:
        host->task_failf(job->task, SL_EINVAL,
                         "cannot read '%s': not a regular file (a FIFO, device or socket)",
                         job->path);
        break;
    default:
        host->task_failf(job->task, code_of_errno(error), "cannot %s '%s': %s", verb,
                         job->path, strerror(error));
        break;
    }
}

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
    } else if (job->result.stage != SL_FSIO_OK) {
        fail_job(job);
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

static file_job_t *job_new(sl_task_t *task, job_kind_t kind, const char *path, size_t len)
{
    file_job_t *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return NULL;
    atomic_init(&job->canceled, false);
    job->path = malloc(len + 1);
    if (job->path == NULL) {
        free(job);
        return NULL;
    }
    memcpy(job->path, path, len + 1);
    job->task = task;
    job->kind = kind;
    return job;
}

static int read_start(sl_task_t *task, const sl_value_t *args)
{
    size_t len;
    const char *path = arg_string(task, args, "file.read", "path", &len);
    if (path == NULL)
        return 0;
    int64_t max_bytes = arg_size(task, args, "file.read", "max_bytes", FILE_MAX_BYTES_DEFAULT);
    if (max_bytes < 0)
        return 0;
    file_job_t *job = job_new(task, JOB_READ, path, len);
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
    job->owned_content = malloc(size > 0 ? size : 1);
    if (job->owned_content != NULL) {
        memcpy(job->owned_content, s, len);
        if (json != NULL)
            job->owned_content[len] = '\n';
        job->content = job->owned_content;
        job->content_len = size;
    }
    if (json != NULL)
        host->free(json);
    return job->owned_content != NULL ? 0 : SL_ENOMEM;
}

static int write_start(sl_task_t *task, const sl_value_t *args)
{
    size_t len;
    const char *path = arg_string(task, args, "file.write", "path", &len);
    if (path == NULL)
        return 0;
    const sl_value_t *content = host->value_get(args, "content");
    if (content == NULL) {
        host->task_fail(task, SL_EINVAL, "file.write: 'content' is required");
        return 0;
    }
    const sl_value_t *append = host->value_get(args, "append");
    file_job_t *job = job_new(task, JOB_WRITE, path, len);
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
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR || !SL_HOST_HAS(h, strerror))
        return NULL;
    host = h;
    return &file_plugin;
}
