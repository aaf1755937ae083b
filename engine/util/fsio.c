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
/* The name: ".NAME.PID.XXXXXXXX.tmp", the pid telling the folder sweep whose it is. */

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

/* Reads the open `fd` (closed here) as a regular file of at most max_bytes. */
static sl_fsio_result_t read_open(int fd, int64_t max_bytes, char **data, size_t *len)
{
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

sl_fsio_result_t sl__fsio_read(const char *path, int64_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO nobody writes to must not park a threadpool thread (the
     * process could not exit); such files are refused below anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return failed(SL_FSIO_IO, errno);
    return read_open(fd, max_bytes, data, len);
}

sl_fsio_result_t sl__fsio_read_in(const sl_confine_t *roots, const char *path,
                                  int64_t max_bytes, char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    int fd = sl__confine_open(roots, path, O_RDONLY | O_NONBLOCK);
    if (fd == -SL_CONFINE_OUTSIDE)
        return failed(SL_FSIO_OUTSIDE, SL_CONFINE_OUTSIDE);
    if (fd < 0)
        return failed(SL_FSIO_IO, -fd);
    return read_open(fd, max_bytes, data, len);
}

/* ---- writing --------------------------------------------------------------------------- */

/* Writes all of buf, retrying short writes and EINTR. 0 or an errno. */
/* Writes all of buf; *written (when given) tells how much went out, also on failure. */
static int write_all(int fd, const char *buf, size_t len, atomic_bool *canceled, size_t *written)
{
    const char *start = buf;
    if (written != NULL)
        *written = 0;
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
        if (written != NULL)
            *written = (size_t)(buf - start);
    }
    return 0;
}

/* Opens a new temporary file in the folder `dir` beside the target; its fd, or -errno.
 * Its name is noted in the temporary-file log, so a crash leaves it for the sweep. */
static int open_temp(const sl_confine_dir_t *dir, char **out_name)
{
    static atomic_uint counter;
    char name[TEMP_BASE_MAX + 48];
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned salt = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
        unsigned tag = (unsigned)now.tv_nsec ^ (salt * 2654435761u) ^ ((unsigned)getpid() << 16);
        snprintf(name, sizeof(name), ".%.*s.%ld.%08x.tmp", TEMP_BASE_MAX, dir->name,
                 (long)getpid(), tag);
        int fd = openat(dir->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *out_name = sl__strdup(name);
            char *logged = sl__asprintf("%s/%s", dir->dir_path, name);
            if (logged)
                sl__tmplog_note(logged);
            sl__free(logged);
            if (*out_name == NULL) {
                close(fd);
                unlinkat(dir->fd, name, 0);
                return -ENOMEM;
            }
            return fd;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* Temporary file, write, fsync, rename, all in the folder's descriptor; the temporary file
 * never survives a failure. `target` is what is at the path now (mode 0: nothing). 0 or an
 * errno. */
static int write_replace(const sl_confine_dir_t *dir, mode_t target, const char *data,
                         size_t len, atomic_bool *canceled)
{
    char *temp = NULL;
    int fd = open_temp(dir, &temp);
    if (fd < 0)
        return -fd;
    if (S_ISREG(target))
        fchmod(fd, target & 07777); /* keep the target's permissions */
    int error = write_all(fd, data, len, canceled, NULL);
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && canceled != NULL && atomic_load(canceled))
        error = ECANCELED; /* the task went away: the target stays as it was */
    if (error == 0 && renameat(dir->fd, temp, dir->fd, dir->name) != 0)
        error = errno;
    if (error != 0) {
        unlinkat(dir->fd, temp, 0);
    } else {
        int dir_fd = openat(dir->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            fsync(dir_fd); /* makes the rename durable; best effort */
            close(dir_fd);
        }
    }
    sl__free(temp);
    return error;
}

/* One write() at the end; a failure cuts the file back to where it ended, unless another
 * writer appended meanwhile (the file is then not just ours plus what we wrote: cutting
 * would drop its lines, so ours stay as far as they went). */
static int write_append(const sl_confine_dir_t *dir, const char *data, size_t len,
                        atomic_bool *canceled)
{
    if (canceled != NULL && atomic_load(canceled))
        return ECANCELED;
    int fd = openat(dir->fd, dir->name,
                    O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd < 0)
        return errno;
    struct stat st;
    int error = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? ENODEV : 0;
    if (error == 0) { /* not to a FIFO or device: that is not what a file write is for */
        size_t written;
        error = write_all(fd, data, len, NULL, &written); /* one write(): lines never mix */
        struct stat now;
        if (error != 0 && fstat(fd, &now) == 0 &&
            now.st_size == st.st_size + (off_t)written) { /* best effort: tell the write's error */
            int cut = ftruncate(fd, st.st_size);
            (void)cut;
        }
    }
    if (close(fd) != 0 && error == 0)
        error = errno;
    return error;
}

/* What is at the target now: 0 for nothing, else its mode; or a refusal. */
static sl_fsio_stage_t target_kind(const sl_confine_dir_t *dir, mode_t *mode, int *error)
{
    struct stat st;
    *mode = 0;
    *error = 0;
    if (fstatat(dir->fd, dir->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        *error = errno == ENOENT ? 0 : errno;
        return *error ? SL_FSIO_IO : SL_FSIO_OK;
    }
    *mode = st.st_mode;
    if (S_ISDIR(st.st_mode)) {
        *error = EISDIR;
        return SL_FSIO_IO; /* "Is a directory", as the rename would have said */
    }
    if (!S_ISREG(st.st_mode)) {
        *error = EINVAL;
        return SL_FSIO_SPECIAL; /* never renamed over: a FIFO or device stays what it is */
    }
    return SL_FSIO_OK;
}

/* The result of a failed resolution. */
static sl_fsio_result_t resolve_failed(int rc, const sl_confine_dir_t *dir)
{
    sl_fsio_result_t r = failed(SL_FSIO_IO, -rc);
    if (rc == -ENOMEM)
        return r;
    if (rc == -SL_CONFINE_OUTSIDE)
        r.stage = SL_FSIO_OUTSIDE;
    else if (rc == -EISDIR)
        r.stage = SL_FSIO_NO_NAME;
    else if (rc == -ENOTDIR && dir->folder_len > 0)
        r.stage = SL_FSIO_NOT_DIR;
    else if (dir->folder_len > 0)
        r.stage = SL_FSIO_MKDIR;
    r.folder_len = dir->folder_len;
    return r;
}

sl_fsio_result_t sl__fsio_write(const sl_confine_t *roots, const char *path, const char *data,
                                size_t len, bool append, atomic_bool *canceled)
{
    sl_confine_dir_t dir;
    int rc = sl__confine_dir(roots, path, true, &dir);
    sl_fsio_result_t r = rc < 0 ? resolve_failed(rc, &dir) : failed(SL_FSIO_OK, 0);
    mode_t target = 0;
    int error = 0;
    if (r.stage == SL_FSIO_OK && (r.stage = target_kind(&dir, &target, &error)) != SL_FSIO_OK)
        r.error = error ? error : EISDIR;
    if (r.stage == SL_FSIO_OK) {
        sl__tmplog_sweep_folder(dir.fd); /* what dead runs left here, once per folder */
        error = append ? write_append(&dir, data, len, canceled)
                       : write_replace(&dir, target, data, len, canceled);
        if (error != 0)
            r = failed(SL_FSIO_IO, error);
    }
    if (r.stage != SL_FSIO_OK)
        sl__confine_unmake(&dir);
    sl__confine_dir_close(&dir);
    return r;
}
