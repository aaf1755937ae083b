/*
 * store: the state of runs in SQLite (docs/state.md).
 *
 * One database, STATE/state.db (STATE is .sluice/ under the working directory, or
 * SLUICE_STATE), in WAL mode with a busy timeout, so a `serve` and manual runs share it:
 * each run has one writer, readers never block writers. Its schema carries a version
 * (PRAGMA user_version) and is migrated forward when opened for writing; a database of a
 * newer schema, or one that is not sluice's, is refused with a clear message.
 *
 * Writes never hold up the loop: a run's records (task and step ends, log lines, cache
 * entries, its end) are appended to blocks on the loop thread and handed, once per loop
 * turn, to the store's writer thread, which commits everything waiting in one transaction
 * (group commit) with prepared statements, then tells the loop what it committed. An
 * output above SL_STORE_INLINE_MAX bytes is a file under STATE/objects/ named by the
 * SHA-256 of its wire encoding (written atomically, shared by identical outputs).
 *
 * Reads (history, resume records, cache entries) are plain calls on the calling thread
 * with a connection of their own; they are made before a run starts or by commands that
 * run no loop, or from the threadpool.
 */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"
#include "value/value.h"

#define SL_STORE_SCHEMA_VERSION 6
#define SL_STORE_INLINE_MAX 4096 /* larger outputs live in objects/ */

typedef struct sl_store sl_store_t;
typedef struct sl_store_run sl_store_run_t;

typedef enum {
    SL_STORE_READ = 0,  /* history commands: nothing is created or migrated */
    SL_STORE_WRITE = 1, /* runs: the folder and database are made and migrated */
    SL_STORE_READONLY = 2, /* the dashboard: a read-only connection that never writes
                              (runs whose recorder died are shown "interrupted", not marked) */
} sl_store_mode_t;

/** The wall clock in Unix milliseconds, as the store records times. */
int64_t sl__store_now_ms(void);

/**
 * The state folder this process uses: SLUICE_STATE, or ".sluice". Borrowed (the
 * environment's or static); NULL when SLUICE_STATE is "none" (no state kept).
 */
const char *sl__store_default_dir(void);

/**
 * Opens the state in folder `dir`. Returns 0 and *out; or, with a message in `err`:
 * SL_ENOENT (READ, and there is no state yet), SL_EINVAL (not a sluice database, a
 * newer schema), SL_EIO (cannot create, read-only, corrupted, disk full), SL_ENOMEM.
 */
int sl__store_open(const char *dir, sl_store_mode_t mode, sl_store_t **out, char *err,
                   size_t err_size);
/** Waits for the writer to commit everything queued, stops it and closes. NULL: no-op. */
void sl__store_close(sl_store_t *store);
const char *sl__store_dir(const sl_store_t *store);

/**
 * What the loop hears from the writer: `committed` counts records committed so far;
 * `error` is the first failure (then nothing more is written: the run should stop).
 */
typedef void (*sl_store_event_cb)(void *ud, uint64_t committed, const char *error);

/**
 * Binds the store to `loop`: records are handed to the writer once per loop turn, and
 * `cb` hears of commits and failures on the loop thread. Returns SL_ESYS. Undo with
 * sl__store_detach before the loop is closed.
 */
int sl__store_attach(sl_store_t *store, uv_loop_t *loop, sl_store_event_cb cb, void *ud);
void sl__store_detach(sl_store_t *store);
/**
 * Hands over what is queued and blocks until the writer has committed it: for the end of
 * `sluice run` (never inside a serving loop). Returns 0, or SL_EIO with the writer's
 * first error in `err`.
 */
int sl__store_sync(sl_store_t *store, char *err, size_t err_size);

/* ---- recording a run --------------------------------------------------------------- */

typedef struct sl_store_step_info {
    const char *id;
    const char *kind;
    const char *def_hash; /* fingerprint of the step's definition: what changed on resume */
    char *const *needs;   /* the ids of the steps it depends on (its `needs`, explicit and
                             implied), recorded as a JSON list */
    size_t needs_count;
} sl_store_step_info_t;

typedef struct sl_store_run_info {
    const char *id;           /* the run's id ("20261203T201500-1a2b") */
    const char *workflow;     /* its name */
    const char *path;         /* the workflow file as given */
    const char *file_hash;    /* SHA-256 of its text */
    const char *trigger;      /* "manual", "resume", "cron", "backfill" */
    const char *resumed_from; /* the run id this one resumes, or NULL */
    int64_t tick_ms;          /* the schedule tick it is for; 0 = none */
    bool claim_tick;          /* also claim (workflow, tick_ms) in `ticks`, in the same
                                 commit: sl__store_run_begin is SL_EEXIST when it is taken */
    int64_t started_ms;
    const sl_value_t *vars;   /* as the run sees them */
    const sl_store_step_info_t *steps;
    size_t step_count;
} sl_store_run_info_t;

/**
 * Records a run's start now (synchronously: before the loop runs it) and returns its
 * recorder. Everything given is copied. Returns SL_EIO (message in `err`), SL_ENOMEM;
 * SL_EEXIST with `claim_tick` when the tick is recorded already (nothing is written).
 */
int sl__store_run_begin(sl_store_t *store, const sl_store_run_info_t *info,
                        sl_store_run_t **out, char *err, size_t err_size);
/** The run's number in the database (runs.seq). */
int64_t sl__store_run_seq(const sl_store_run_t *run);

typedef enum {
    SL_STORE_TASK_OK = 0,
    SL_STORE_TASK_FAILED,
    SL_STORE_TASK_SKIPPED,
    SL_STORE_TASK_CANCELED,
} sl_store_task_status_t;

typedef struct sl_store_task {
    size_t step, item;
    sl_store_task_status_t status;
    uint32_t attempts;
    bool cached;              /* a recorded output was used */
    int64_t started_ms, ended_ms;
    const sl_value_t *output; /* OK: recorded (wire encoding); else NULL */
    const char *error;        /* FAILED, CANCELED */
    const char *cache_note;   /* why a cached step's task ran ("with.url changed"), or NULL */
} sl_store_task_t;

/** Queues a task's end. Loop thread; copies what it needs. */
void sl__store_task(sl_store_run_t *run, const sl_store_task_t *task);

typedef struct sl_store_step {
    const char *id, *kind, *def_hash; /* as at the run's start (the row is written whole) */
    const char *status; /* "ok", "failed", "partial", "skipped", "canceled", ... */
    int64_t started_ms, ended_ms;
    uint64_t total, ok, failed, skipped, cached, retries;
} sl_store_step_t;

/** Queues a step's counters (the latest recorded wins). Loop thread. */
void sl__store_step(sl_store_run_t *run, size_t step, const sl_store_step_t *counts);
/** Queues a log line of the run. Loop thread. */
void sl__store_log(sl_store_run_t *run, int level, const char *where, const char *message,
                   int64_t time_ms);

typedef struct sl_store_cache_entry {
    const char *key;        /* hex SHA-256 of the task's key */
    const char *workflow, *step;
    size_t item;
    const char *kind, *version;
    const sl_value_t *parts; /* the key's parts, to explain a later miss */
    const sl_value_t *output;
    const char *file, *file_hash; /* a file the task wrote (save_to) and its SHA-256 */
    const char *etag, *last_modified; /* HTTP validators of the response */
} sl_store_cache_entry_t;

/** Queues a cache entry (replacing one of the same key). Loop thread. */
void sl__store_cache_put(sl_store_run_t *run, const sl_store_cache_entry_t *entry);

/** Queues the run's end and lets the recorder go (its lock on the run too, once
 *  committed). `status`: "succeeded", "failed", "interrupted". */
void sl__store_run_end(sl_store_run_t *run, const char *status, int64_t finished_ms,
                       const char *error, uint64_t tasks_ok, uint64_t tasks_failed,
                       uint64_t tasks_cached);

/** A Slurm array job the run submitted or took over (slurm_jobs). `tasks`: per element
 *  the (step index, item) pairs of its tasks (slurm/slurm.h). */
typedef struct sl_store_slurm_job {
    int64_t job_id;
    const char *step, *name, *dir;
    int64_t first, elements;
    const sl_value_t *tasks;
} sl_store_slurm_job_t;

/** Queues a Slurm array job of the run. Loop thread; copies what it needs. */
void sl__store_slurm_job(sl_store_run_t *run, const sl_store_slurm_job_t *job);

/* ---- reading ------------------------------------------------------------------------ */

typedef struct sl_store_run_row {
    int64_t seq;
    char id[64];
    char workflow[256];
    char path[1024];
    char file_hash[65];
    char trigger[16];
    char status[16];
    char resumed_from[64];
    int64_t tick_ms, started_ms, finished_ms; /* finished 0 while running */
    uint64_t tasks_ok, tasks_failed, tasks_cached;
    char error[1024];
} sl_store_run_row_t;

/**
 * Finds run `ref`: its id, or "last" (the newest; of `workflow` when not NULL). Runs left
 * "running" by a process that died are marked "interrupted" first (SL_STORE_READONLY:
 * shown so, not marked). Returns 0 and *out, or
 * SL_ENOTFOUND, SL_EIO (message in `err`).
 */
int sl__store_find_run(sl_store_t *store, const char *ref, const char *workflow,
                       sl_store_run_row_t *out, char *err, size_t err_size);

typedef struct sl_store_filter {
    const char *workflow; /* NULL: all */
    const char *status;   /* NULL: all */
    int64_t before_seq;   /* 0: from the newest */
    uint32_t limit;       /* 0: 20 */
} sl_store_filter_t;

/** Calls `fn` per run, newest first. Stops at `fn`'s first nonzero result. Returns SL_EIO.
 *  Each filter given uses its index (runs(workflow, seq), runs(status, seq)). */
int sl__store_list_runs(sl_store_t *store, const sl_store_filter_t *filter,
                        int (*fn)(void *ud, const sl_store_run_row_t *row), void *ud,
                        char *err, size_t err_size);

typedef struct sl_store_step_row {
    int64_t index;
    const char *id, *kind, *def_hash, *status;
    const char *needs; /* a JSON list of step ids; NULL for runs recorded before schema 6 */
    int64_t started_ms, ended_ms;
    uint64_t total, ok, failed, skipped, cached, retries;
} sl_store_step_row_t;

/** The run's steps in workflow order; strings are borrowed for the call. */
int sl__store_list_steps(sl_store_t *store, int64_t run_seq,
                         int (*fn)(void *ud, const sl_store_step_row_t *row), void *ud,
                         char *err, size_t err_size);

typedef struct sl_store_task_row {
    int64_t step, item;
    const char *step_id, *status, *error, *cache_note;
    uint32_t attempts;
    bool cached;
    int64_t started_ms, ended_ms;
} sl_store_task_row_t;

/** The run's tasks that failed (or, with `notes`, also those with a cache note), in step
 *  and item order. */
int sl__store_list_tasks(sl_store_t *store, int64_t run_seq, bool notes,
                         int (*fn)(void *ud, const sl_store_task_row_t *row), void *ud,
                         char *err, size_t err_size);

typedef struct sl_store_log_row {
    int64_t time_ms;
    const char *level, *where, *message;
} sl_store_log_row_t;

/** At most `limit` of the run's failed tasks, in step and item order (an index of the
 *  failed ones: a run of a million tasks reads only these). */
int sl__store_list_failed(sl_store_t *store, int64_t run_seq, uint32_t limit,
                          int (*fn)(void *ud, const sl_store_task_row_t *row), void *ud,
                          char *err, size_t err_size);
/** At most `limit` of the run's failed tasks after (ended_ms, step, item) `after` in that
 *  order (a cursor: many tasks end in the same millisecond). {0, -1, -1}: from the first. */
int sl__store_failed_after(sl_store_t *store, int64_t run_seq, const int64_t after[3],
                           uint32_t limit, int (*fn)(void *ud, const sl_store_task_row_t *row),
                           void *ud, char *err, size_t err_size);
/** At most `limit` runs with a seq above `after_seq`, oldest first. */
int sl__store_runs_after(sl_store_t *store, int64_t after_seq, uint32_t limit,
                         int (*fn)(void *ud, const sl_store_run_row_t *row), void *ud,
                         char *err, size_t err_size);
/** The run numbered `seq`: 0, SL_ENOTFOUND, SL_EIO. */
int sl__store_run_by_seq(sl_store_t *store, int64_t seq, sl_store_run_row_t *out, char *err,
                         size_t err_size);

typedef struct sl_store_workflow_row {
    const char *name, *path, *hash;
    int64_t updated_ms; /* its latest run's start */
} sl_store_workflow_row_t;

/** The workflows recorded (the `workflows` table), by name. Strings borrowed for the call. */
int sl__store_list_workflows(sl_store_t *store,
                             int (*fn)(void *ud, const sl_store_workflow_row_t *row), void *ud,
                             char *err, size_t err_size);
/** SQLite's PRAGMA data_version of the read connection: it changes when another
 *  connection commits (a poller skips its work while it does not). */
int sl__store_data_version(sl_store_t *store, int64_t *out, char *err, size_t err_size);

/* ---- the same rows as JSON (json.c): `sluice runs/show --json` and the dashboard ------ */

/** "2026-12-03T21:28:52Z" (UTC), or "-" for no time (ms <= 0). */
void sl__store_format_time(int64_t ms, char *buf, size_t size);
/** A run as `sluice runs --json` prints it (a new map; NULL when out of memory). */
sl_value_t *sl__store_run_json(const sl_store_run_row_t *r);
/** A step as `sluice show --json` prints it under "steps". */
sl_value_t *sl__store_step_json(const sl_store_step_row_t *s);
/** A failed task (step, item from 1, error, attempts) as under "failed"; with a cache note
 *  and not failed: step, item, reason, attempts. */
sl_value_t *sl__store_task_json(const sl_store_task_row_t *t);
/** A log line (time, level, task, message) as under "log". */
sl_value_t *sl__store_log_json(const sl_store_log_row_t *l);

/** The last `count` log lines of the run, oldest first. */
int sl__store_list_logs(sl_store_t *store, int64_t run_seq, uint32_t count,
                        int (*fn)(void *ud, const sl_store_log_row_t *row), void *ud,
                        char *err, size_t err_size);

/** The vars run `seq` ran with, in *out (the caller's); an empty map when none. */
int sl__store_run_vars(sl_store_t *store, int64_t run_seq, sl_value_t **out, char *err,
                       size_t err_size);

/**
 * The outputs of the run's completed tasks, for resume: `fn` gets the step's id, the item
 * and the output (a new value, the callee's). Returns SL_EIO, SL_ENOMEM.
 */
/**
 * Calls `fn` with each Slurm array job recorded for run `run_seq` (the row and its tasks
 * are borrowed for the call; a nonzero return stops). Returns SL_EIO (message in `err`).
 */
int sl__store_slurm_jobs(sl_store_t *store, int64_t run_seq,
                         int (*fn)(void *ud, const sl_store_slurm_job_t *job), void *ud,
                         char *err, size_t err_size);
int sl__store_load_outputs(sl_store_t *store, int64_t run_seq,
                           int (*fn)(void *ud, const char *step, size_t item, sl_value_t *output),
                           void *ud, char *err, size_t err_size);

typedef struct sl_store_cache_row {
    const char *key, *step, *kind, *version, *file, *file_hash, *etag, *last_modified;
    int64_t item, created_ms;
    const uint8_t *parts; /* wire encoding of the key's parts */
    size_t parts_len;
} sl_store_cache_row_t;

/** The cache entries of `workflow` (without outputs). Strings borrowed for the call. */
int sl__store_cache_list(sl_store_t *store, const char *workflow,
                         int (*fn)(void *ud, const sl_store_cache_row_t *row), void *ud,
                         char *err, size_t err_size);
/** The output of cache entry `key` as its wire encoding in *data (sl__malloc'd, the
 *  caller's) and *len. SL_ENOTFOUND, SL_EIO. Any thread: the store's reads are serialized,
 *  and bytes, not values, cross to the caller's thread. */
int sl__store_cache_output(sl_store_t *store, const char *key, uint8_t **data, size_t *len,
                           char *err, size_t err_size);
/** Drops the cache entries (of `workflow`, or all); *removed counts them. */
int sl__store_cache_clear(sl_store_t *store, const char *workflow, uint64_t *removed,
                          char *err, size_t err_size);

/* ---- schedule ticks and leases (ticks.c) ------------------------------------------- */

typedef struct sl_store_tick {
    const char *workflow;
    int64_t tick_ms;     /* the nominal time */
    const char *trigger; /* "cron", "backfill" */
    const char *status;  /* "run" (then run_id), "skipped" (then reason) */
    const char *reason;  /* why it was skipped, or NULL */
    const char *run_id;  /* the run started for it, or NULL */
} sl_store_tick_t;

/**
 * Records tick (workflow, tick_ms) unless it is recorded: *won tells whether this call
 * recorded it (then the caller, alone, runs or skips it). Returns SL_EIO.
 */
int sl__store_tick_claim(sl_store_t *store, const sl_store_tick_t *tick, bool *won, char *err,
                         size_t err_size);
/** Sets the run a claimed tick was run by (a resume replaces it). */
int sl__store_tick_set_run(sl_store_t *store, const char *workflow, int64_t tick_ms,
                           const char *run_id, char *err, size_t err_size);
/** The newest recorded tick of `workflow` with `trigger` in *tick_ms; 0 when none. */
int sl__store_tick_last(sl_store_t *store, const char *workflow, const char *trigger,
                        int64_t *tick_ms, char *err, size_t err_size);

typedef struct sl_store_tick_row {
    char trigger[16], status[16], reason[256], run_id[64];
} sl_store_tick_row_t;

/** The record of tick (workflow, tick_ms): 0, SL_ENOTFOUND or SL_EIO. */
int sl__store_tick_find(sl_store_t *store, const char *workflow, int64_t tick_ms,
                        sl_store_tick_row_t *out, char *err, size_t err_size);
/**
 * Takes or renews the lease on scheduling `workflow` for `ttl_ms` as `owner`: *held is
 * false while another owner's lease has not expired. Returns SL_EIO.
 */
int sl__store_lease(sl_store_t *store, const char *workflow, const char *owner,
                    int64_t ttl_ms, bool *held, char *err, size_t err_size);
/**
 * The owner of `workflow`'s lease into `owner` (size at least 128), or SL_ENOTFOUND when
 * nobody holds one. Returns SL_EIO.
 */
int sl__store_lease_owner(sl_store_t *store, const char *workflow, char *owner,
                          size_t owner_size, char *err, size_t err_size);
/**
 * Takes the lease from `dead`, its holder, when `dead` still holds it (a daemon that the
 * caller knows has died): *held tells whether it did. Returns SL_EIO.
 */
int sl__store_lease_take(sl_store_t *store, const char *workflow, const char *dead,
                         const char *owner, int64_t ttl_ms, bool *held, char *err,
                         size_t err_size);
/** Gives the lease up (when `owner` holds it). */
int sl__store_lease_release(sl_store_t *store, const char *workflow, const char *owner,
                            char *err, size_t err_size);

#endif
