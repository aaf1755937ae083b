/*
 * fsio: the blocking file work behind file.read/file.write (through the host table's
 * file_read and file_write, plugin/abi.c) and sluice.fs.read/write, for a threadpool
 * thread: one implementation of the atomic write. No engine state; memory comes from
 * sl__malloc, and data handed out is freed with sl__free (host->free for a plugin).
 *
 * Data paths are confined (util/confine.h): resolved beneath the run's roots, folder by
 * folder with descriptors, so that nothing is read or written outside them whatever `..`
 * or symbolic links say (SL_FSIO_OUTSIDE).
 *
 * A write is atomic unless it appends: the bytes go to a temporary file beside the
 * target ("DIR/.NAME.PID.XXXXXXXX.tmp"), which is fsync'd and renamed over it (keeping the
 * target's permissions), and then the folder is fsync'd; the temporary file, the rename
 * and the folder's fsync all go through the folder's descriptor. Missing folders are
 * created; when the write fails, the temporary file and the folders it created are removed
 * and the target is as it was. A target that exists and is not a regular file (a FIFO, a
 * device, a socket) is refused, never replaced. An append is one write() call, so
 * concurrent appends of whole lines do not interleave; a failed one is cut back to the
 * file's previous length.
 */
#ifndef SL_UTIL_FSIO_H
#define SL_UTIL_FSIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "confine.h"

typedef enum sl_fsio_stage {
    SL_FSIO_OK = 0,
    SL_FSIO_IO,      /* open, read, write, fsync or rename failed: `error` */
    SL_FSIO_MKDIR,   /* a missing folder could not be made: `error`, `folder_len` */
    SL_FSIO_NOT_DIR, /* a parent is not a folder: `folder_len` */
    SL_FSIO_NO_NAME, /* the path names a folder ("out/", ".", "..") */
    SL_FSIO_TOO_BIG, /* a read larger than max_bytes */
    SL_FSIO_SPECIAL, /* a read or write of a FIFO, device or socket */
    SL_FSIO_OUTSIDE  /* the path leaves the working directory and limits.fs.allow */
} sl_fsio_stage_t;

typedef struct sl_fsio_result {
    sl_fsio_stage_t stage;
    int error;         /* the errno of SL_FSIO_IO and SL_FSIO_MKDIR */
    size_t folder_len; /* SL_FSIO_MKDIR, SL_FSIO_NOT_DIR: the folder is path[0, folder_len) */
} sl_fsio_result_t;

/**
 * Reads the regular file `path` (never blocking on a FIFO), at most `max_bytes` (>= 0): on
 * success *data (its bytes and a NUL after them; the caller frees it with sl__free) and
 * *len. ENOMEM comes back as SL_FSIO_IO. Not confined: for paths the workflow's author
 * names (a `script`), not data paths.
 */
sl_fsio_result_t sl__fsio_read(const char *path, int64_t max_bytes, char **data, size_t *len);

/** The same for a data path, resolved beneath `roots` (NULL: the working directory). */
sl_fsio_result_t sl__fsio_read_in(const sl_confine_t *roots, const char *path,
                                  int64_t max_bytes, char **data, size_t *len);

/**
 * Writes `len` bytes to the data path `path` beneath `roots` (NULL: the working
 * directory), atomically or appended (see above). With `canceled`, a write goes in 1 MiB
 * chunks and stops with ECANCELED once it is set, leaving the target as it was.
 */
sl_fsio_result_t sl__fsio_write(const sl_confine_t *roots, const char *path, const char *data,
                                size_t len, bool append, atomic_bool *canceled);

#endif
