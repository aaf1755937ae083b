/* Blocking file reads and atomic writes, for threadpool threads (see fsio.h). Memory comes
 * from the engine's allocator, so tests can make it fail; its fault injection is safe to
 * reach from a threadpool thread. */
#include "fsio.h"
#include "tmplog.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WRITE_CHUNK ((size_t)1 << 20) /* a cancelable write checks between chunks */
#define TEMP_NAME_ATTEMPTS 64         /* temporary names tried before giving up on EEXIST */
#define TEMP_BASE_MAX 100             /* longest part of the target's name in a temporary one */

static sl_fsio_result_t failed(sl_fsio_stage_t stage, int error)
{
    return (sl_fsio_result_t){.stage = stage, .error = error};
}

/* ---- reading --------------------------------------------------------------------------- */

/* Reads `fd` to its end into *data, growing up to max_bytes + 1 so that a larger file
 * whose size fstat did not tell (/proc) is noticed. The buffer keeps one byte more than it
 * reads into, for the NUL after the data. */
static sl_fsio_result_t read_fd(int fd, size_t size_hint, int64_t max_bytes, char **data,
                                size_t *len)
{
    size_t limit = (size_t)max_bytes + 1, cap = size_hint < limit ? size_hint + 1 : limit;
    if (cap < 4096)
        cap = limit < 4096 ? limit : 4096;
    char *buf = sl__malloc(cap + 1);
    size_t used = 0;
    if (buf == NULL)
        return failed(SL_FSIO_IO, ENOMEM);
    for (;;) {
        if (used == cap) {
            if (cap == limit)
                break;
            size_t next = cap > limit / 2 ? limit : cap * 2;
            char *grown = sl__realloc(buf, next + 1);
            if (grown == NULL) {
                sl__free(buf);
                return failed(SL_FSIO_IO, ENOMEM);
            }
            buf = grown;
            cap = next;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int error = errno;
            sl__free(buf);
            return failed(SL_FSIO_IO, error);
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (used > (size_t)max_bytes) {
        sl__free(buf);
        return failed(SL_FSIO_TOO_BIG, EFBIG);
    }
    buf[used] = '\0';
    *data = buf;
    *len = used;
    return failed(SL_FSIO_OK, 0);
}

sl_fsio_result_t sl__fsio_read(const char *path, int64_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO nobody writes to must not park a threadpool thread (the
     * process could not exit); such files are refused below anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return failed(SL_FSIO_IO, errno);
    struct stat st;
    sl_fsio_result_t r;
    if (fstat(fd, &st) != 0)
        r = failed(SL_FSIO_IO, errno);
    else if (S_ISDIR(st.st_mode))
        r = failed(SL_FSIO_IO, EISDIR);
    else if (!S_ISREG(st.st_mode))
        r = failed(SL_FSIO_SPECIAL, EINVAL);
    else if (st.st_size > max_bytes)
        r = failed(SL_FSIO_TOO_BIG, EFBIG);
    else
        r = read_fd(fd, (size_t)st.st_size, max_bytes, data, len);
    close(fd);
    return r;
}

/* ---- writing --------------------------------------------------------------------------- */

/* Writes all of buf, retrying short writes and EINTR. 0 or an errno. */
static int write_all(int fd, const char *buf, size_t len, atomic_bool *canceled)
{
    while (len > 0) {
        if (canceled != NULL && atomic_load(canceled))
            return ECANCELED;
        ssize_t n = write(fd, buf, canceled != NULL && len > WRITE_CHUNK ? WRITE_CHUNK : len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates the missing folders of `dir` (a writable copy of the target's folder, modified
 * and restored). *created_from becomes the length of the first folder this call made (0
 * if none), for remove_created. */
static sl_fsio_result_t make_parents(char *dir, size_t *created_from)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return failed(SL_FSIO_OK, 0);
    size_t len = strlen(dir);
    for (size_t i = 1; i <= len; i++) {
        if ((i < len && dir[i] != '/') || dir[i - 1] == '/')
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        int rc = mkdir(dir, 0777), error = errno;
        if (rc == 0 && *created_from == 0)
            *created_from = i;
        if (rc != 0 && stat(dir, &st) == 0) {
            rc = S_ISDIR(st.st_mode) ? 0 : -1;
            error = ENOTDIR;
        }
        dir[i] = saved;
        if (rc != 0) {
            sl_fsio_result_t r =
                failed(error == ENOTDIR ? SL_FSIO_NOT_DIR : SL_FSIO_MKDIR, error);
            r.folder_len = i;
            return r;
        }
    }
    return failed(SL_FSIO_OK, 0);
}

/* Removes the folders make_parents created, deepest first. */
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

/* Opens a new temporary file beside the target; its fd, or -errno. */
static int open_temp(const char *dir, const char *base, char **out_name)
{
    static atomic_uint counter;
    size_t size = strlen(dir) + TEMP_BASE_MAX + 32;
    char *name = sl__malloc(size);
    if (name == NULL)
        return -ENOMEM;
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned salt = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
        unsigned tag = (unsigned)now.tv_nsec ^ (salt * 2654435761u) ^ ((unsigned)getpid() << 16);
        snprintf(name, size, "%s/.%.*s.%08x.tmp", dir, TEMP_BASE_MAX, base, tag);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            sl__tmplog_note(name); /* a crash before the rename leaves it for the sweep */
            *out_name = name;
            return fd;
        }
        if (errno != EEXIST) {
            int error = errno;
            sl__free(name);
            return -error;
        }
    }
    sl__free(name);
    return -EEXIST;
}

/* Temporary file, write, fsync, rename; the temporary file never survives a failure.
 * 0 or an errno. */
static int write_replace(const char *path, const char *dir, const char *base, const char *data,
                         size_t len, atomic_bool *canceled)
{
    char *temp = NULL;
    int fd = open_temp(dir, base, &temp);
    if (fd < 0)
        return -fd;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        fchmod(fd, st.st_mode & 07777); /* keep the target's permissions */
    int error = write_all(fd, data, len, canceled);
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && canceled != NULL && atomic_load(canceled))
        error = ECANCELED; /* the task went away: the target stays as it was */
    if (error == 0 && rename(temp, path) != 0)
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
    sl__free(temp);
    return error;
}

static int write_append(const char *path, const char *data, size_t len, atomic_bool *canceled)
{
    if (canceled != NULL && atomic_load(canceled))
        return ECANCELED;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd < 0)
        return errno;
    struct stat st;
    int error = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? ENODEV : 0;
    if (error == 0) /* not to a FIFO or device: that is not what a file write is for */
        error = write_all(fd, data, len, NULL); /* one write() call: lines do not interleave */
    if (close(fd) != 0 && error == 0)
        error = errno;
    return error;
}

sl_fsio_result_t sl__fsio_write(const char *path, const char *data, size_t len, bool append,
                                atomic_bool *canceled)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return failed(SL_FSIO_NO_NAME, EISDIR);
    size_t dir_len = slash == NULL || slash == path ? 1 : (size_t)(slash - path);
    char *dir = sl__malloc(dir_len + 1);
    if (dir == NULL)
        return failed(SL_FSIO_IO, ENOMEM);
    memcpy(dir, slash == NULL ? "." : path, dir_len);
    dir[dir_len] = '\0';
    size_t created_from = 0;
    sl_fsio_result_t r = make_parents(dir, &created_from);
    if (r.stage == SL_FSIO_OK) {
        int error = append ? write_append(path, data, len, canceled)
                           : write_replace(path, dir, base, data, len, canceled);
        if (error != 0)
            r = failed(SL_FSIO_IO, error);
    }
    if (r.stage != SL_FSIO_OK)
        remove_created(dir, created_from);
    sl__free(dir);
    return r;
}
