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
 * target is untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "sluice/plugin.h"

#define FILE_MAX_BYTES_DEFAULT ((int64_t)64 * 1024 * 1024)
/* How many temporary names to try before giving up on EEXIST. */
#define TEMP_NAME_ATTEMPTS 64
/* Longest part of the target's name copied into a temporary name. */
#define TEMP_BASE_MAX 100

static const sl_host_t *host;

typedef enum job_kind { JOB_READ, JOB_WRITE } job_kind_t;

/* Where a failure happened; picks the wording of the message. */
typedef enum job_stage {
    STAGE_NONE = 0,
    STAGE_IO,      /* open/read/write/fsync/rename: "cannot write 'P': CAUSE" */
    STAGE_MKDIR,   /* "cannot write 'P': cannot create folder 'D': CAUSE" */
    STAGE_NOT_DIR, /* "cannot write 'P': 'D' is not a folder" */
    STAGE_TOO_BIG, /* "cannot read 'P': file is larger than max_bytes (N bytes)" */
    STAGE_NO_NAME, /* "cannot write 'P': the path names a folder" */
    STAGE_SPECIAL  /* "cannot read 'P': not a regular file (…)" */
} job_stage_t;

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
    /* result of the work */
    job_stage_t stage;
    int error;         /* errno of the failure */
    size_t folder_len; /* STAGE_MKDIR / STAGE_NOT_DIR: length of the folder in path */
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

/* Records why the work failed; returns -1 for the caller to pass on. */
static int job_set_error(file_job_t *job, job_stage_t stage, int error)
{
    job->stage = stage;
    job->error = error;
    return -1;
}

#define WRITE_CHUNK ((size_t)1 << 20)

/* Writes all of buf, retrying short writes and EINTR. With `canceled`, writes in 1 MiB
 * chunks and stops with ECANCELED once it is set. 0 or an errno. */
static int write_all(int fd, const char *buf, size_t len, atomic_bool *canceled)
{
    while (len > 0) {
        if (canceled != NULL && atomic_load(canceled))
            return ECANCELED;
        size_t chunk = canceled != NULL && len > WRITE_CHUNK ? WRITE_CHUNK : len;
        ssize_t n = write(fd, buf, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- file.read: threadpool side ------------------------------------------ */

/* Reads into job->data, growing up to max_bytes + 1 to detect a larger file
 * whose size stat did not tell (pipes, /proc). 0, or -1 with the job's error set. */
static int read_fd(file_job_t *job, int fd, size_t size_hint)
{
    size_t limit = (size_t)job->max_bytes + 1;
    size_t cap = size_hint < limit ? size_hint + 1 : limit;
    if (cap < 4096)
        cap = limit < 4096 ? limit : 4096;
    job->data = malloc(cap);
    if (job->data == NULL)
        return job_set_error(job, STAGE_IO, ENOMEM);
    for (;;) {
        if (job->data_len == cap) {
            if (cap == limit)
                break;
            size_t next = cap > limit / 2 ? limit : cap * 2;
            char *grown = realloc(job->data, next);
            if (grown == NULL)
                return job_set_error(job, STAGE_IO, ENOMEM);
            job->data = grown;
            cap = next;
        }
        ssize_t n = read(fd, job->data + job->data_len, cap - job->data_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return job_set_error(job, STAGE_IO, errno);
        if (n == 0)
            break;
        job->data_len += (size_t)n;
    }
    if (job->data_len > (size_t)job->max_bytes)
        return job_set_error(job, STAGE_TOO_BIG, 0);
    return 0;
}

static void read_work(file_job_t *job)
{
    /* O_NONBLOCK: opening a FIFO nobody writes to must not park a threadpool thread
     * (the process could not exit); such files are refused below anyway. */
    int fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        job_set_error(job, STAGE_IO, errno);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        job_set_error(job, STAGE_IO, errno);
    } else if (S_ISDIR(st.st_mode)) {
        job_set_error(job, STAGE_IO, EISDIR);
    } else if (!S_ISREG(st.st_mode)) {
        job_set_error(job, STAGE_SPECIAL, 0);
    } else if (st.st_size > job->max_bytes) {
        job_set_error(job, STAGE_TOO_BIG, 0);
    } else {
        read_fd(job, fd, S_ISREG(st.st_mode) ? (size_t)st.st_size : 0);
    }
    close(fd);
}

/* ---- file.write: threadpool side ----------------------------------------- */

/* Creates the missing folders of `dir` (a writable copy of the parent
 * folder; modified and restored). *created_from becomes the length of the
 * first folder this call made (0 if none), for remove_created(). */
static int make_parents(file_job_t *job, char *dir, size_t *created_from)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    size_t len = strlen(dir);
    for (size_t i = 1; i <= len; i++) {
        if ((i < len && dir[i] != '/') || dir[i - 1] == '/')
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        int rc = mkdir(dir, 0777);
        int error = errno;
        if (rc == 0 && *created_from == 0)
            *created_from = i;
        if (rc != 0 && stat(dir, &st) == 0) {
            rc = S_ISDIR(st.st_mode) ? 0 : -1;
            error = ENOTDIR;
        }
        dir[i] = saved;
        if (rc != 0) {
            job_set_error(job, error == ENOTDIR ? STAGE_NOT_DIR : STAGE_MKDIR, error);
            job->folder_len = i;
            return -1;
        }
    }
    return 0;
}

/* Removes the folders make_parents() created, deepest first. */
static void remove_created(char *dir, size_t created_from)
{
    size_t len = strlen(dir);
    if (created_from == 0)
        return;
    while (len >= created_from) {
        dir[len] = '\0';
        rmdir(dir);
        while (len > 0 && dir[len - 1] != '/')
            len--;
        while (len > 0 && dir[len - 1] == '/')
            len--;
        if (len == 0)
            break;
    }
}

/* Opens a new temporary file beside the target: "DIR/.BASE.XXXXXXXX.tmp". */
static int open_temp(const char *dir, const char *base, char **out_name)
{
    static unsigned counter;
    size_t size = strlen(dir) + TEMP_BASE_MAX + 32;
    char *name = malloc(size);
    if (name == NULL)
        return -ENOMEM;
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned salt = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        unsigned tag = (unsigned)now.tv_nsec ^ (salt * 2654435761u) ^ ((unsigned)getpid() << 16);
        snprintf(name, size, "%s/.%.*s.%08x.tmp", dir, TEMP_BASE_MAX, base, tag);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *out_name = name;
            return fd;
        }
        if (errno != EEXIST) {
            int error = errno;
            free(name);
            return -error;
        }
    }
    free(name);
    return -EEXIST;
}

/* Temporary file, write, fsync, rename; the temporary file never survives a
 * failure. 0 or an errno. */
static int write_replace(file_job_t *job, const char *dir, const char *base)
{
    char *temp = NULL;
    int fd = open_temp(dir, base, &temp);
    if (fd < 0)
        return -fd;
    struct stat st;
    if (stat(job->path, &st) == 0 && S_ISREG(st.st_mode))
        fchmod(fd, st.st_mode & 07777); /* keep the target's permissions */
    int error = write_all(fd, job->content, job->content_len, &job->canceled);
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && atomic_load(&job->canceled))
        error = ECANCELED; /* timed out or interrupted: the target stays as it was */
    if (error == 0 && rename(temp, job->path) != 0)
        error = errno;
    if (error != 0) {
        unlink(temp);
    } else {
        int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            fsync(dir_fd); /* makes the rename durable; best effort */
            close(dir_fd);
        }
    }
    free(temp);
    return error;
}

static int write_append(file_job_t *job)
{
    if (atomic_load(&job->canceled))
        return ECANCELED;
    int fd = open(job->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd < 0)
        return errno;
    struct stat st;
    int error = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? ENODEV : 0;
    if (error != 0) {
        close(fd); /* appending to a FIFO or device is not what file.write is for */
        return error;
    }
    /* One write() call, so concurrent appends of whole lines do not interleave. */
    error = write_all(fd, job->content, job->content_len, NULL);
    if (close(fd) != 0 && error == 0)
        error = errno;
    return error;
}

static void write_work(file_job_t *job)
{
    const char *slash = strrchr(job->path, '/');
    const char *base = slash != NULL ? slash + 1 : job->path;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        job_set_error(job, STAGE_NO_NAME, EISDIR);
        return;
    }
    size_t dir_len = slash == NULL ? 1 : slash == job->path ? 1 : (size_t)(slash - job->path);
    char *dir = malloc(dir_len + 1);
    if (dir == NULL) {
        job_set_error(job, STAGE_IO, ENOMEM);
        return;
    }
    memcpy(dir, slash == NULL ? "." : job->path, dir_len);
    dir[dir_len] = '\0';
    size_t created_from = 0;
    if (make_parents(job, dir, &created_from) == 0) {
        int error = job->append ? write_append(job) : write_replace(job, dir, base);
        if (error != 0)
            job_set_error(job, STAGE_IO, error);
    }
    if (job->stage != STAGE_NONE)
        remove_created(dir, created_from);
    free(dir);
}

static void work_cb(uv_work_t *req)
{
    file_job_t *job = req->data;
    if (job->kind == JOB_READ)
        read_work(job);
    else
        write_work(job);
}

/* ---- loop side ------------------------------------------------------------ */

static void fail_job(file_job_t *job)
{
    const char *verb = job->kind == JOB_READ ? "read" : "write";
    int folder_len = (int)job->folder_len;
    switch (job->stage) {
    case STAGE_TOO_BIG:
        host->task_failf(job->task, SL_ELIMIT,
                         "cannot read '%s': file is larger than max_bytes (%lld bytes)", job->path,
                         (long long)job->max_bytes);
        break;
    case STAGE_MKDIR:
        host->task_failf(job->task, code_of_errno(job->error),
                         "cannot write '%s': cannot create folder '%.*s': %s", job->path,
                         folder_len, job->path, strerror(job->error));
        break;
    case STAGE_NOT_DIR:
        host->task_failf(job->task, SL_EIO, "cannot write '%s': '%.*s' is not a folder", job->path,
                         folder_len, job->path);
        break;
    case STAGE_NO_NAME:
        host->task_failf(job->task, SL_EINVAL, "cannot write '%s': the path names a folder",
                         job->path);
        break;
    case STAGE_SPECIAL:
        host->task_failf(job->task, SL_EINVAL,
                         "cannot read '%s': not a regular file (a FIFO, device or socket)",
                         job->path);
        break;
    default:
        host->task_failf(job->task, code_of_errno(job->error), "cannot %s '%s': %s", verb,
                         job->path, strerror(job->error));
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
    } else if (job->stage != STAGE_NONE) {
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
    {"path", SL_PT_STRING, SL_PARAM_REQUIRED, "file to read (relative to the working directory)"},
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
