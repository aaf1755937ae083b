/*
 * save_to: a body streams to a temporary file beside its target and is renamed
 * over it only when the whole transfer succeeded, so a failure never leaves a
 * half-written file. The target is a data path: its folder is resolved (and made)
 * beneath the run's roots (util/confine.h), and the temporary file, the rename and its
 * removal go through that folder's descriptor, so a symbolic link swapped in cannot
 * redirect them. A target that is not a regular file (a FIFO, a device) is refused. The disk is never touched on the loop thread: the file is
 * made (folders included) and finished in libuv's threadpool and written with
 * uv_fs_write. At most HTTP_SAVE_BUFFER_MAX bytes wait for the disk; beyond
 * that curl is paused until a write completes.
 *
 * Everything after a disk operation goes through save_advance(), which looks at
 * the request's state and takes the next step: write more, finish (fsync, close,
 * rename), or clean up (close, unlink), then report and release.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/internal.h"
#include "util/tmplog.h"

static void save_advance(sl_http_t *req);

/* ---- threadpool work ------------------------------------------------------------ */

#define TEMP_NAME_ATTEMPTS 64

/* Refuses a target that exists and is not a regular file: renaming over a FIFO or a
 * device would destroy it. 0, EISDIR, ENODEV, or the errno of the look. */
static int check_target(const sl_confine_dir_t *dir)
{
    struct stat st;
    if (fstatat(dir->fd, dir->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : errno;
    return S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ? 0 : ENODEV;
}

/* NAME.part-PID-XXXXXX beside the target (the pid tells the folder sweep whose it is), made in its folder's descriptor; 0 or an errno. */
static int make_temp(save_t *save)
{
    static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static atomic_uint counter;
    const sl_confine_dir_t *dir = save->dir;
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned salt = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
        uint64_t tag = (uint64_t)now.tv_nsec ^ ((uint64_t)salt * 2654435761u) ^
                       ((uint64_t)getpid() << 20);
        char suffix[7];
        for (int i = 0; i < 6; i++, tag /= 36)
            suffix[i] = letters[tag % 36];
        suffix[6] = '\0';
        char *name = sl__asprintf("%s.part-%ld-%s", dir->name, (long)getpid(), suffix);
        if (name == NULL)
            return ENOMEM;
        int fd = openat(dir->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            save->fd = fd;
            save->tmp_name = name;
            save->tmp_path = sl__asprintf("%s/%s", dir->dir_path, name);
            if (save->tmp_path == NULL) {
                unlinkat(dir->fd, name, 0);
                return ENOMEM; /* open_work closes the descriptor */
            }
            sl__tmplog_note(save->tmp_path); /* a crash before the rename leaves it for the sweep */
            return 0;
        }
        int error = errno;
        sl__free(name);
        if (error != EEXIST)
            return error;
    }
    return EEXIST;
}

static void open_work(uv_work_t *work)
{
    sl_http_t *req = work->data;
    save_t *save = req->save;
    save->dir = sl__malloc(sizeof(*save->dir));
    if (save->dir == NULL) {
        save->error = ENOMEM;
        return;
    }
    int rc = sl__confine_dir(req->client->limits.roots, save->path, true, save->dir);
    save->error = rc < 0 ? -rc : check_target(save->dir);
    if (save->error == 0) {
        sl__tmplog_sweep_folder(save->dir->fd); /* what dead runs left here, once per folder */
        save->error = make_temp(save);
    }
    if (save->error != 0 && save->fd >= 0) {
        close(save->fd);
        save->fd = -1;
        sl__free(save->tmp_name);
        save->tmp_name = NULL;
    }
    if (save->error != 0 && rc == 0 && save->dir->made_count > 0 && save->tmp_name == NULL)
        sl__confine_unmake(save->dir); /* nothing was made beside the folders: remove them */
}

static void finish_work(uv_work_t *work)
{
    sl_http_t *req = work->data;
    save_t *save = req->save;
    if (fsync(save->fd) < 0)
        save->error = errno;
    if (close(save->fd) < 0 && save->error == 0)
        save->error = errno;
    save->fd = -1;
    if (save->error == 0 && (save->error = check_target(save->dir)) == 0 &&
        renameat(save->dir->fd, save->tmp_name, save->dir->fd, save->dir->name) < 0)
        save->error = errno;
    if (save->error)
        unlinkat(save->dir->fd, save->tmp_name, 0);
}

static void cleanup_work(uv_work_t *work)
{
    sl_http_t *req = work->data;
    save_t *save = req->save;
    if (save->fd >= 0)
        close(save->fd);
    save->fd = -1;
    unlinkat(save->dir->fd, save->tmp_name, 0);
}

static void after_work(uv_work_t *work, int status)
{
    sl_http_t *req = work->data;
    save_t *save = req->save;
    sl_http_client_t *client = req->client;
    save->busy = false;
    bool closed = save->closing && save->fd < 0;
    if (closed) { /* its descriptor is free for another request */
        save->closing = false;
        client->saves_closing--;
        client->engine->saves_closing--;
    }
    if (save->fd < 0 && work->work_cb != open_work) {
        sl__free(save->tmp_path); /* renamed or removed */
        save->tmp_path = NULL;
    }
    if (save->fd < 0) {
        sl__free(save->tmp_name);
        save->tmp_name = NULL;
    }
    if (work->work_cb == open_work) {
        if (save->error && save->tmp_path) {
            sl__free(save->tmp_path); /* nothing was made */
            save->tmp_path = NULL;
        }
        if (req->state == REQ_OPENING) {
            sl__io_http_opened(req, save->error);
            return;
        }
    }
    save_advance(req); /* may free req */
    if (closed)
        sl__io_http_slot_freed(client);
}

static void queue(sl_http_t *req, uv_work_cb cb)
{
    save_t *save = req->save;
    save->work.data = req;
    save->busy = true;
    if (uv_queue_work(req->client->loop, &save->work, cb, after_work) < 0) {
        cb(&save->work); /* cannot happen with a valid loop; do it here rather than leak */
        after_work(&save->work, 0);
    }
}

/* ---- writes ------------------------------------------------------------------ */

static void after_write(uv_fs_t *fs)
{
    sl_http_t *req = fs->data;
    save_t *save = req->save;
    ssize_t result = fs->result;
    uv_fs_req_cleanup(fs);
    save->busy = false;
    if (result < 0) {
        save->error = (int)-result;
    } else if ((size_t)result < save->writing_len) {
        memmove(save->writing, save->writing + result, save->writing_len - (size_t)result);
        save->writing_len -= (size_t)result;
    } else {
        save->writing_len = 0;
    }
    save_advance(req);
}

static void start_write(sl_http_t *req)
{
    save_t *save = req->save;
    if (save->writing_len == 0) { /* swap the buffers: curl fills one while the other drains */
        char *t = save->writing;
        save->writing = save->filling;
        save->writing_len = save->filling_len;
        save->filling = t;
        save->filling_len = 0;
    }
    uv_buf_t buf = uv_buf_init(save->writing, (unsigned)save->writing_len);
    save->fs.data = req;
    save->busy = true;
    if (uv_fs_write(req->client->loop, &save->fs, save->fd, &buf, 1, -1, after_write) < 0) {
        save->busy = false;
        save->error = EIO;
    }
}

size_t sl__io_save_write(sl_http_t *req, const char *data, size_t len)
{
    save_t *save = req->save;
    if (save->error)
        return 0; /* aborts the transfer */
    if (save->filling_len && save->filling_len + len > HTTP_SAVE_BUFFER_MAX) {
        save->paused = true;
        return CURL_WRITEFUNC_PAUSE; /* curl hands the same bytes again after the unpause */
    }
    size_t need = save->filling_len + len;
    size_t cap = need < HTTP_SAVE_BUFFER_MAX ? HTTP_SAVE_BUFFER_MAX : need;
    if (save->filling == NULL) {
        save->filling = sl__malloc(cap);
        if (save->filling == NULL)
            return 0;
    } else if (need > HTTP_SAVE_BUFFER_MAX) {
        char *grown = sl__realloc(save->filling, cap);
        if (grown == NULL)
            return 0;
        save->filling = grown;
    }
    memcpy(save->filling + save->filling_len, data, len);
    save->filling_len = need;
    if (!save->busy && save->writing_len == 0)
        start_write(req);
    return len;
}

/* ---- the steps --------------------------------------------------------------- */

int sl__io_save_open(sl_http_t *req)
{
    req->state = REQ_OPENING;
    queue(req, open_work);
    return 0;
}

int sl__io_save_open_failed(const sl_http_t *req, int error, char *message, size_t size)
{
    const char *path = req->save->path;
    switch (error) {
    case SL_CONFINE_OUTSIDE:
        sl__confine_outside_message(path, message, size);
        return SL_EPATH;
    case ENODEV:
        snprintf(message, size, "%s %s: cannot save to '%s': not a regular file (a FIFO, "
                 "device or socket)", req->method, req->url, path);
        return SL_EINVAL;
    case EISDIR:
        snprintf(message, size, "%s %s: cannot save to '%s': the path names a folder",
                 req->method, req->url, path);
        return SL_EINVAL;
    default:
        snprintf(message, size, "%s %s: cannot create a file beside '%s': %s", req->method,
                 req->url, path, strerror(error));
        return SL_EIO;
    }
}

static void report_failure(sl_http_t *req)
{
    sl__io_http_report(req, req->fail_code, NULL, req->fail_message, req->fail_retry_after_ms);
    sl__io_http_release(req);
}

static void finishing(sl_http_t *req)
{
    save_t *save = req->save;
    if (!save->judged) {
        save->judged = true;
        /* Judge the transfer before the file counts; a disk error judges it too. */
        char message[1024];
        int64_t retry = 0;
        int code = sl__io_request_outcome(req, message, sizeof(message), &retry);
        if (code < 0) {
            req->fail_code = code;
            req->fail_retry_after_ms = retry;
            req->fail_message = sl__strdup(message);
        }
    }
    if (req->fail_code < 0) {
        if (save->tmp_path)
            queue(req, cleanup_work);
        else
            report_failure(req);
        return;
    }
    if (save->filling_len || save->writing_len) {
        start_write(req);
        return;
    }
    if (save->tmp_path) {
        /* The response first: once the file is renamed, only success may be reported. */
        save->response = sl__io_request_response(req);
        if (save->response == NULL) {
            req->fail_code = SL_ENOMEM;
            req->fail_message = sl__strdup("out of memory building the response");
            queue(req, cleanup_work);
            return;
        }
        /* 304 Not Modified has no body: the file saved before stays as it is. */
        queue(req, req->status == 304 ? cleanup_work : finish_work);
        return;
    }
    sl_value_t *response = save->response;
    save->response = NULL;
    if (save->error) { /* the fsync or rename failed */
        sl_value_free(response);
        req->fail_code = SL_EIO;
        char message[1024];
        snprintf(message, sizeof(message), "%s %s: cannot save '%s': %s", req->method, req->url,
                 save->path, strerror(save->error));
        req->fail_message = sl__strdup(message);
        report_failure(req);
        return;
    }
    req->client->stats.bytes += req->bytes;
    sl__io_http_report(req, 0, response, NULL, 0);
    sl__io_http_release(req);
}

static void save_advance(sl_http_t *req)
{
    save_t *save = req->save;
    if (save->busy)
        return;
    switch ((req_state_t)req->state) {
    case REQ_ACTIVE:
        if (save->error) {
            curl_easy_pause(req->easy, CURLPAUSE_CONT); /* the write callback aborts it */
        } else if (save->filling_len || save->writing_len) {
            start_write(req);
        } else if (save->paused) {
            save->paused = false;
            curl_easy_pause(req->easy, CURLPAUSE_CONT); /* may call the write callback */
        }
        return;
    case REQ_FINISHING:
        finishing(req);
        return;
    case REQ_DONE: /* reported (canceled): remove what is on disk, then go */
        if (save->tmp_path && save->fd >= 0)
            queue(req, cleanup_work);
        else
            sl__io_http_release(req);
        return;
    case REQ_NEW:
    case REQ_QUEUED:
    case REQ_OPENING:
        return;
    }
}

void sl__io_save_advance(sl_http_t *req)
{
    save_advance(req);
}

bool sl__io_save_settled(const sl_http_t *req)
{
    const save_t *save = req->save;
    return save == NULL || (!save->busy && save->fd < 0);
}
