#define _GNU_SOURCE /* syncfs */
/*
 * Outputs too large to sit in a row: files under STATE/objects/, named by the SHA-256
 * of their wire encoding (objects/ab/cdef…), so identical outputs share one file. A file
 * is written whole to a temporary name and renamed, so an object is complete or absent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"

#define OBJECT_BYTES_MAX ((size_t)1 << 30)

static int object_path(const sl_store_t *store, const char *hex, char *path, size_t size,
                       size_t *dir_len)
{
    int n = snprintf(path, size, "%s/%.2s", store->objects_dir, hex);
    if (n < 0 || (size_t)n >= size)
        return SL_ELIMIT;
    *dir_len = (size_t)n;
    n = snprintf(path + n, size - (size_t)n, "/%s", hex + 2);
    return n < 0 || (size_t)n >= size - *dir_len ? SL_ELIMIT : 0;
}

static int write_all(int fd, const uint8_t *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, bytes, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        bytes += n;
        len -= (size_t)n;
    }
    return 0;
}

int sl__store_object_put(sl_store_t *store, const char *hex, const uint8_t *bytes, size_t len,
                         char *err, size_t err_size)
{
    char path[4096], tmp[4200];
    size_t dir_len;
    struct stat st;
    if (object_path(store, hex, path, sizeof(path), &dir_len) < 0) {
        snprintf(err, err_size, "the state folder's path is too long");
        return SL_EIO;
    }
    if (stat(path, &st) == 0 && (size_t)st.st_size == len)
        return 0; /* the same output was stored before */
    path[dir_len] = '\0';
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        goto fail;
    path[dir_len] = '/';
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    int rc = write_all(fd, bytes, len);
    int saved = errno;
    if (close(fd) < 0 && rc == 0)
        rc = -1, saved = errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -1, saved = errno;
    if (rc < 0) {
        unlink(tmp);
        errno = saved;
        goto fail;
    }
    return 0;
fail:
    snprintf(err, err_size, "writing an output to %s: %s", store->objects_dir,
             strerror(errno));
    return SL_EIO;
}

int sl__store_object_get(sl_store_t *store, const char *hex, uint8_t **data, size_t *len)
{
    char path[4096];
    size_t dir_len;
    if (strlen(hex) != 64 || object_path(store, hex, path, sizeof(path), &dir_len) < 0)
        return SL_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SL_ENOTFOUND : SL_EIO;
    struct stat st;
    int rc = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                     (size_t)st.st_size <= OBJECT_BYTES_MAX
                 ? 0
                 : SL_EIO;
    uint8_t *buf = rc == 0 ? sl__malloc((size_t)st.st_size + 1) : NULL;
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf == NULL || got != (size_t)st.st_size) {
        sl__free(buf);
        return rc < 0 ? rc : buf ? SL_EIO : SL_ENOMEM;
    }
    *data = buf;
    *len = got;
    return 0;
}

int sl__store_objects_sync(sl_store_t *store)
{
    int fd = open(store->objects_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = syncfs(fd);
    close(fd);
    return rc;
}
