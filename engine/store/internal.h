/*
 * store/internal.h: what store.c (opening, schema), writer.c (the writer thread),
 * objects.c (content-addressed outputs) and query.c (reads) share. Not for other modules.
 */
#ifndef SL_STORE_INTERNAL_H
#define SL_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

#define STORE_BUSY_TIMEOUT_MS 10000
#define STORE_BLOCK_BYTES (64u * 1024)

typedef enum rec_type {
    REC_TASK = 1,
    REC_STEP,
    REC_LOG,
    REC_CACHE,
    REC_RUN_END,
    REC_STEP_INFO,
    REC_SLURM_JOB,
} rec_type_t;

/*
 * One queued record: this head, then `parts` uint32 lengths, then the parts themselves
 * (each padded to 8 bytes). What the numbers and parts mean depends on the type
 * (writer.c). A part of length UINT32_MAX is NULL.
 */
#define REC_NUMS 10
#define REC_PARTS_MAX 12
#define REC_NULL UINT32_MAX

typedef struct rec {
    uint32_t size; /* of the whole record, head included, a multiple of 8 */
    uint8_t type;  /* rec_type_t */
    uint8_t status;
    uint8_t flag;
    uint8_t parts;
    int64_t run;   /* runs.seq */
    int64_t num[REC_NUMS];
} rec_t;

/* Records are written into blocks on the loop thread and handed over whole. */
typedef struct rec_block {
    struct rec_block *next;
    size_t used, cap;
    uint64_t records;
    _Alignas(8) uint8_t data[];
} rec_block_t;

struct sl_store {
    char *dir;
    char *db_path;
    char *objects_dir;
    sl_store_mode_t mode;
    sqlite3 *read_db;        /* reads, serialized by read_lock */
    pthread_mutex_t read_lock;
    sqlite3_stmt *cache_output_st; /* on read_db, kept: a cached rerun reads one per task */

    /* The writer thread and its queue. */
    sqlite3 *write_db;       /* the writer thread's own */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    pthread_cond_t wake;     /* the writer: work, or stop */
    pthread_cond_t done;     /* sync waiters: a commit happened */
    rec_block_t *queue_head, *queue_tail; /* handed over, not yet written */
    uint64_t queued;         /* records handed over */
    uint64_t committed;      /* records committed (or dropped after a failure) */
    bool stopping;
    char *error;             /* the writer's first failure; nothing is written after it */

    /* The loop side. */
    rec_block_t *filling;    /* the block records go into now */
    uint64_t filled;         /* records put into blocks */
    uv_loop_t *loop;
    uv_prepare_t turn;       /* hands the filling block over once per loop turn */
    uv_async_t notify;       /* the writer's commits and failure, back on the loop */
    bool attached;
    sl_store_event_cb event_cb;
    void *event_ud;
    uint64_t reported;       /* committed count last told to event_cb */
    bool error_reported;
    int handles_open;
};

struct sl_store_run {
    sl_store_t *store;
    int64_t seq;
    int lock_fd;             /* flock'ed while the run lives: a crash frees it */
    char *lock_path;
    int64_t log_seq;         /* the run's log lines so far */
};

/* store.c */
/** Prepares `sql` on `db`, reporting a failure into `err`. */
int sl__store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err,
                      size_t err_size);
/** Formats SQLite's error of `db` (with `what` it was doing) into `err`; returns SL_EIO. */
int sl__store_fail(sqlite3 *db, const char *what, char *err, size_t err_size);
/** True when the process recording run `seq` is gone (its lock is free or absent). */
bool sl__store_run_is_dead(const sl_store_t *store, int64_t seq);
/** Marks runs left "running" by dead processes as "interrupted" (their lock is free);
 *  nothing in SL_STORE_READONLY. */
int sl__store_reap(sl_store_t *store, char *err, size_t err_size);

/* writer.c */
int sl__store_writer_start(sl_store_t *store, char *err, size_t err_size);
void sl__store_writer_stop(sl_store_t *store);
/** Room for a record of `type` with `parts` parts of these lengths (REC_NULL: a NULL
 *  part) in the filling block; NULL when out of memory (the failure is recorded). */
rec_t *sl__store_record(sl_store_t *store, rec_type_t type, int64_t run, size_t parts,
                        const uint32_t *len);
/** Part `i` of a record (NULL for a NULL part), and its length. */
uint8_t *sl__store_part(const rec_t *r, size_t i, uint32_t *len);
/** Hands the filling block to the writer. Loop thread. */
void sl__store_hand_over(sl_store_t *store);

/* objects.c */
/**
 * Writes `bytes` as object `hex` under the objects folder unless it is there (temporary
 * file, rename); not synced: the writer syncs the filesystem once per batch. Writer thread.
 */
int sl__store_object_put(sl_store_t *store, const char *hex, const uint8_t *bytes, size_t len,
                         char *err, size_t err_size);
/** Reads object `hex` into *data (sl__malloc'd) and *len. SL_ENOTFOUND, SL_EIO. */
int sl__store_object_get(sl_store_t *store, const char *hex, uint8_t **data, size_t *len);
/** Makes what was written to the objects folder durable. */
int sl__store_objects_sync(sl_store_t *store);

#endif
