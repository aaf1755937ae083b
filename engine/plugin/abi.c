/*
 * The half of the host table that needs no scheduler: values, JSON, memory and error
 * text, the argument helpers (plugin/args.c) and the file functions. The engine
 * (host/host.c) and a worker process (pool/worker.c) start from it and bind the task and
 * HTTP functions to what runs their tasks.
 *
 * The file functions are util/fsio.c (which sluice.fs.read/write run too) with the
 * messages file.read and file.write have always printed, so that a plugin forwards `err`
 * as it is. They run on libuv threadpool threads: nothing here touches a value or a task.
 * Their paths are data paths, confined beneath a root set (util/confine.h): here the
 * the run's, found through the callback the engine sets (sl__plugin_file_roots: the plugin
 * layer never calls up), or the working directory in a worker.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin/args.h"
#include "plugin/registry.h"
#include "util/fsio.h"
#include "value/value.h"

#define ELLIPSIS "…"
#define FOLDER_SHOWN_MAX 256 /* bytes of a folder named inside a cause */

/* The SL_E* code of a failed system call's errno. */
static int code_of_errno(int error)
{
    switch (error) {
    case ENOENT: return SL_ENOENT;
    case ENOMEM: return SL_ENOMEM;
    case EEXIST: return SL_EEXIST;
    case ECANCELED: return SL_ECANCELED;
    default: return SL_EIO;
    }
}

/* strerror's text, without its shared buffer: these run on several threads at once. */
static const char *errno_text(int error, char *buf, size_t size)
{
    if (strerror_r(error, buf, size) != 0)
        snprintf(buf, size, "error %d", error);
    return buf;
}

/* How many of `len` bytes of `s` to keep within `room`, never splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t room)
{
    if (len <= room)
        return len;
    while (room > 0 && ((unsigned char)s[room] & 0xc0) == 0x80)
        room--;
    return room;
}

/*
 * "cannot VERB 'PATH': CAUSE" into err. When it does not fit, the path is shortened with
 * "…" so that the cause, which says what went wrong, still shows.
 */
static void path_message(char *err, size_t err_size, const char *verb, const char *path,
                         const char *cause)
{
    if (err == NULL || err_size == 0)
        return;
    int n = snprintf(err, err_size, "cannot %s '%s': %s", verb, path, cause);
    if (n < 0 || (size_t)n < err_size)
        return;
    size_t path_len = strlen(path), fixed = (size_t)n - path_len + strlen(ELLIPSIS);
    if (fixed >= err_size)
        return; /* not even the cause fits: cut as snprintf did */
    size_t keep = utf8_cut(path, path_len, err_size - 1 - fixed);
    snprintf(err, err_size, "cannot %s '%.*s" ELLIPSIS "': %s", verb, (int)keep, path, cause);
}

/* The folder path[0, len) for a cause, shortened like a path. */
static void folder_text(const char *path, size_t len, char *buf, size_t size)
{
    size_t keep = utf8_cut(path, len, FOLDER_SHOWN_MAX);
    snprintf(buf, size, "%.*s%s", (int)keep, path, keep < len ? ELLIPSIS : "");
}

/* The code and message of a failed fsio call. */
static int failure(sl_fsio_result_t r, const char *verb, const char *path, int64_t max_bytes,
                   char *err, size_t err_size)
{
    char cause[FOLDER_SHOWN_MAX + 256], text[128], folder[FOLDER_SHOWN_MAX + 8];
    int code = code_of_errno(r.error);
    switch (r.stage) {
    case SL_FSIO_TOO_BIG:
        snprintf(cause, sizeof(cause), "file is larger than max_bytes (%lld bytes)",
                 (long long)max_bytes);
        code = SL_ELIMIT;
        break;
    case SL_FSIO_SPECIAL:
        snprintf(cause, sizeof(cause), "not a regular file (a FIFO, device or socket)");
        code = SL_EINVAL;
        break;
    case SL_FSIO_MKDIR:
        folder_text(path, r.folder_len, folder, sizeof(folder));
        snprintf(cause, sizeof(cause), "cannot create folder '%s': %s", folder,
                 errno_text(r.error, text, sizeof(text)));
        break;
    case SL_FSIO_NOT_DIR:
        folder_text(path, r.folder_len, folder, sizeof(folder));
        snprintf(cause, sizeof(cause), "'%s' is not a folder", folder);
        code = SL_EIO;
        break;
    case SL_FSIO_NO_NAME:
        snprintf(cause, sizeof(cause), "the path names a folder");
        code = SL_EINVAL;
        break;
    case SL_FSIO_OUTSIDE:
        sl__confine_outside_message(path, err, err_size);
        return SL_EPATH;
    default:
        snprintf(cause, sizeof(cause), "%s", errno_text(r.error, text, sizeof(text)));
        break;
    }
    path_message(err, err_size, verb, path, cause);
    return code;
}

int sl__plugin_file_read(const sl_confine_t *roots, const char *path, int64_t max_bytes,
                         char **data, size_t *len, char *err, size_t err_size)
{
    *data = NULL;
    *len = 0;
    if (path == NULL || max_bytes < 0) {
        path_message(err, err_size, "read", path ? path : "", "max_bytes must be >= 0");
        return SL_EINVAL;
    }
    sl_fsio_result_t r = sl__fsio_read_in(roots, path, max_bytes, data, len);
    return r.stage == SL_FSIO_OK ? 0 : failure(r, "read", path, max_bytes, err, err_size);
}

int sl__plugin_file_write(const sl_confine_t *roots, const char *path, const char *data,
                          size_t len, uint32_t flags, sl_cancel_flag_t *canceled, char *err,
                          size_t err_size)
{
    if (path == NULL || (data == NULL && len > 0) || (flags & ~SL_FILE_APPEND) != 0) {
        path_message(err, err_size, "write", path ? path : "", "invalid arguments");
        return SL_EINVAL;
    }
    sl_fsio_result_t r = sl__fsio_write(roots, path, data ? data : "", len,
                                        (flags & SL_FILE_APPEND) != 0, canceled);
    return r.stage == SL_FSIO_OK ? 0 : failure(r, "write", path, 0, err, err_size);
}

/* Set by the engine (host/host.c); a worker has none and uses the working directory. */
static const sl_confine_t *(*_Atomic roots_of)(sl_task_t *task);

void sl__plugin_file_roots(const sl_confine_t *(*fn)(sl_task_t *task))
{
    roots_of = fn;
}

static const sl_confine_t *task_roots(sl_task_t *task)
{
    const sl_confine_t *(*fn)(sl_task_t *) = roots_of;
    return fn && task ? fn(task) : NULL;
}

static int host_file_read(sl_task_t *task, const char *path, int64_t max_bytes, char **data,
                          size_t *len, char *err, size_t err_size)
{
    return sl__plugin_file_read(task_roots(task), path, max_bytes, data, len, err, err_size);
}

static int host_file_write(sl_task_t *task, const char *path, const char *data, size_t len,
                           uint32_t flags, sl_cancel_flag_t *canceled, char *err,
                           size_t err_size)
{
    return sl__plugin_file_write(task_roots(task), path, data, len, flags, canceled, err, err_size);
}

void sl__plugin_host_init(sl_host_t *host)
{
    *host = (sl_host_t){
        .abi_major = SL_ABI_MAJOR,
        .abi_minor = SL_ABI_MINOR,
        .struct_size = sizeof(sl_host_t),
        .value_nil = sl_value_nil,
        .value_bool = sl_value_bool,
        .value_int = sl_value_int,
        .value_number = sl_value_number,
        .value_string = sl_value_string,
        .value_list = sl_value_list,
        .value_map = sl_value_map,
        .value_copy = sl_value_copy,
        .value_free = sl_value_free,
        .value_type = sl_value_type,
        .value_truthy = sl_value_truthy,
        .value_int_of = sl_value_int_of,
        .value_number_of = sl_value_number_of,
        .value_str = sl_value_str,
        .value_len = sl_value_len,
        .value_at = sl_value_at,
        .value_entry = sl_value_entry,
        .value_get = sl_value_get,
        .value_push = sl_value_push,
        .value_set = sl_value_set,
        .value_from_json = sl_value_from_json,
        .value_to_json = sl_value_to_json,
        .free = sl__free,
        .strerror = sl_strerror,
        .file_read = host_file_read,
        .file_write = host_file_write,
        .arg_int = sl__args_int,
        .arg_duration = sl__args_duration,
        .arg_string = sl__args_string,
        .arg_strings = sl__args_strings,
    };
}
