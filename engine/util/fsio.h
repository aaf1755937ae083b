/*
 * fsio: the blocking file work behind file.read/file.write (through the host table's
 * file_read and file_write, plugin/abi.c) and sluice.fs.read/write, for a threadpool
 * thread: one implementation of the atomic write. No engine state; memory comes from
 * sl__malloc, and data handed out is freed with sl__free (host->free for a plugin).
 *
 * A write is atomic unless it appends: the bytes go to a temporary file beside the
 * target ("DIR/.NAME.XXXXXXXX.tmp"), which is fsync'd and renamed over it (keeping the
 * target's permissions), and then the folder is fsync'd. Missing folders are created;
 * when the write fails, the temporary file and the folders it created are removed and
 * the target is as it was. An append is one write() call, so concurrent appends of whole
 * lines do not interleave.
 */
#ifndef SL_UTIL_FSIO_H
#define SL_UTIL_FSIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sl_fsio_stage {
    SL_FSIO_OK = 0,
    SL_FSIO_IO,      /* open, read, write, fsync or rename failed: `error` */
    SL_FSIO_MKDIR,   /* a missing folder could not be made: `error`, `folder_len` */
    SL_FSIO_NOT_DIR, /* a parent is not a folder: `folder_len` */
    SL_FSIO_NO_NAME, /* the path names a folder ("out/", ".", "..") */
    SL_FSIO_TOO_BIG, /* a read larger than max_bytes */
    SL_FSIO_SPECIAL  /* a read of a FIFO, device or socket */
} sl_fsio_stage_t;

typedef struct sl_fsio_result {
    sl_fsio_stage_t stage;
    int error;         /* the errno of SL_FSIO_IO and SL_FSIO_MKDIR */
    size_t folder_len; /* SL_FSIO_MKDIR, SL_FSIO_NOT_DIR: the folder is path[0, folder_len) */
} sl_fsio_result_t;

/**
 * Reads the regular file `path` (never blocking on a FIFO), at most `max_bytes` (>= 0): on
 * success *data (its bytes and a NUL after them; the caller frees it with sl__free) and
 * *len. ENOMEM comes back as SL_FSIO_IO.
 */
sl_fsio_result_t sl__fsio_read(const char *path, int64_t max_bytes, char **data, size_t *len);

/**
 * Writes `len` bytes to `path`, atomically or appended (see above). With `canceled`, a
 * write goes in 1 MiB chunks and stops with ECANCELED once it is set, leaving the target
 * as it was.
 */
sl_fsio_result_t sl__fsio_write(const char *path, const char *data, size_t len, bool append,
                                atomic_bool *canceled);

#endif
