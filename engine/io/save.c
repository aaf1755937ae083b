/*
 * save_to: a body streams to a temporary file beside its target and is renamed
 * over it only when the whole transfer succeeded, so a failure never leaves a
 * half-written file. The disk is never touched on the loop thread: the file is
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/internal.h"
#include "util/tmplog.h"

static void save_advance(sl_http_t *req);

/* ---- threadpool work ------------------------------------------------------------ */

static int make_dirs(char *path)
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        int rc = mkdir(path, 0777);
        int err = errno;
        *p = '/';
        if (rc < 0 && err != EEXIST)
            return err;
    }
    return 0;
}

static void open_work(uv_work_t *work)
{
    sl_http_t *req = work->data;
    save_t *save = req->save;
    save->error = make_dirs(save->tmp_path);
    if (save->error)
        return;
    int fd = mkstemp(save->tmp_path);
    if (fd < 0) {
        save->error = errno;
        return;
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; a download is an ordinary file */
    sl__tmplog_note(save->tmp_path); /* a crash before the rename leaves it for the sweep */
    save->fd = fd;
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
    if (save->error == 0 && rename(save->tmp_path, save->path) < 0)
        save->error = errno;
    if (save->error)
        unlink(save->tmp_path);
}

static void cleanup_work(uv_work_t *work)
{
    sl_http_t *req = work->data;
    save_t *save = req->save;
    if (save->fd >= 0)
        close(save->fd);
    save->fd = -1;
    unlink(save->tmp_path);
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
    }
    if (save->fd < 0 && work->work_cb != open_work) {
        sl__free(save->tmp_path); /* renamed or removed */
        save->tmp_path = NULL;
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
        sl__io_http_pump(client);
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
    save_t *save = req->save;
    sl_buf_t b;
    sl__buf_init(&b, 8192);
    int rc = sl__buf_addf(&b, "%s.part-XXXXXX", save->path);
    save->tmp_path = rc == 0 ? sl__buf_take(&b, NULL) : NULL;
    sl__buf_close(&b);
    if (save->tmp_path == NULL)
        return rc < 0 ? rc : SL_ENOMEM;
    req->state = REQ_OPENING;
    queue(req, open_work);
    return 0;
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
