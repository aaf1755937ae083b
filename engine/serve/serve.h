/*
 * serve: running workflows at the ticks of their schedules (docs/scheduling.md).
 *
 * - ticks.c: which ticks are due (SPEC §5: on-time ticks, `missed`, `catchup`), the
 *   schedule's expressions merged, and the deterministic jitter of a tick.
 * - run.c: one run of a workflow for a tick, recorded with its trigger and tick (--once,
 *   backfill: a loop of its own).
 * - daemon.c, launch.c, files.c: the daemon (`sluice serve`): every workflow's ticks on one
 *   loop, runs sharing one HTTP client and one CPU pool, leases renewed on a timer,
 *   `concurrency`, reloads (uv_fs_event, SIGHUP) and the graceful stop (daemon.h).
 *
 * Times are Unix seconds unless named _ms. Loop thread (run.c) or any (ticks.c).
 */
#ifndef SL_SERVE_H
#define SL_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "cron/cron.h"
#include "loader/workflow.h"
#include "plugin/registry.h"
#include "store/store.h"

#define SL_SERVE_MISSED_MAX 100 /* `missed: all` runs at most this many */
#define SL_SERVE_ON_TIME 60     /* a tick younger than this (s) is on time */

/** A workflow's schedule made ready: its expressions parsed and its zone loaded. */
typedef struct sl_serve_schedule {
    const sl_schedule_t *def; /* borrowed */
    sl_cron_t **crons;
    size_t count;
    sl_tz_t *tz;
} sl_serve_schedule_t;

/**
 * Parses `def`'s expressions and loads its zone. Returns 0; SL_EINVAL with the message
 * in `err` (a bad expression, an unknown zone); SL_ENOMEM.
 */
int sl__serve_schedule_open(const sl_schedule_t *def, sl_serve_schedule_t *out, char *err,
                            size_t err_size);
void sl__serve_schedule_close(sl_serve_schedule_t *s);

/** The first tick of any expression strictly after `after`; SL_ENOTFOUND when none. */
int sl__serve_next(const sl_serve_schedule_t *s, int64_t after, int64_t *out);

/**
 * The ticks due at `now` for a workflow whose newest recorded tick is `last` (0: none),
 * oldest first, into out[SL_SERVE_MISSED_MAX]: the ticks after `last` up to `now`
 * (with no `last`, only an on-time one), those older than `catchup` dropped, then all of
 * them (the newest 100), the newest, or only an on-time one as `missed` says.
 */
size_t sl__serve_due(const sl_serve_schedule_t *s, int64_t last, int64_t now, int64_t *out);

/**
 * What sl__serve_due(s, last, now) left out when it returned `due` ticks: how many ticks
 * after `last` were older than `catchup` (*catchup), and how many within it `missed` (or
 * the cap of SL_SERVE_MISSED_MAX) dropped (*missed). Both 0 without a `last`.
 */
void sl__serve_dropped(const sl_serve_schedule_t *s, int64_t last, int64_t now, size_t due,
                       uint64_t *catchup, uint64_t *missed);

/** The jitter of `tick` of `workflow` in ms: the same on every call, below `jitter_ms`. */
int64_t sl__serve_jitter_ms(const char *workflow, int64_t tick, int64_t jitter_ms);

/* ---- one run (run.c) -------------------------------------------------------------- */

typedef struct sl_serve_run_opts {
    sl_workflow_t *wf;                /* borrowed */
    const sl_registry_t *registry;    /* borrowed */
    sl_store_t *store;                /* borrowed */
    const char *trigger;              /* "cron", "backfill" */
    int64_t tick;                     /* its nominal time */
    int64_t delay_ms;                 /* wait this long first (jitter) */
    const sl_store_run_row_t *resume; /* the run this one resumes, or NULL */
    char run_id[40];                  /* set by sl__serve_run_id */
} sl_serve_run_opts_t;

/** A new run id into opts->run_id. */
void sl__serve_run_id(sl_serve_run_opts_t *opts);

/**
 * Runs the workflow once on a loop of its own, recorded with the trigger and tick, and
 * waits for its record to be committed. SIGINT/SIGTERM stop it (recorded interrupted,
 * resumable); *signaled tells that one came. Returns "succeeded", "failed",
 * "interrupted", or NULL when it could not start (the reason logged).
 */
const char *sl__serve_run(sl_serve_run_opts_t *opts, bool *signaled);

/* ---- the files served (files.c) ------------------------------------------------- */

#define SL_SERVE_FILES_MAX 10000

typedef struct sl_serve_files {
    char **items; /* paths, each the list's */
    size_t count, cap;
} sl_serve_files_t;

/**
 * Adds `path` to `l`: a file as itself, a folder as its *.yaml and *.yml files (not
 * hidden ones), by name. Returns 0; SL_ENOENT (no such file or folder), SL_EIO (a folder
 * that cannot be read), SL_ELIMIT (more than SL_SERVE_FILES_MAX), SL_ENOMEM, with the
 * message in `err`. Any thread.
 */
int sl__serve_collect(const char *path, sl_serve_files_t *l, char *err, size_t err_size);
void sl__serve_files_free(sl_serve_files_t *l);

/* ---- the daemon (daemon.c) ------------------------------------------------------- */

struct uv_loop_s;
typedef struct sl_serve_daemon sl_serve_daemon_t;

typedef struct sl_serve_opts {
    const sl_registry_t *registry; /* borrowed */
    sl_store_t *store;             /* borrowed: ticks and leases; runs open their own */
    char **operands;               /* the files and folders given (borrowed) */
    size_t operand_count;
    int64_t grace_ms; /* after SIGTERM/SIGINT, runs get this long before they are canceled */
    /* Told when the loop starts, its stop signals handled, and when it has stopped: the
     * command line watches the loop with these (cli/watchdog.h), so that a run stuck in one
     * call still yields and a stop signal still ends the daemon. NULL: not watched. */
    void (*loop_started)(struct uv_loop_s *loop, sl_serve_daemon_t *daemon, void *ud);
    void (*loop_stopped)(void *ud);
    void *loop_ud;
} sl_serve_opts_t;

/**
 * Serves until SIGTERM or SIGINT (then the grace period; a second signal cancels at
 * once). Returns 0 after a clean stop; SL_ESYS when the loop cannot be set up; SL_ENOMEM.
 * The process's only loop while it runs (it owns the signals).
 */
int sl__serve_daemon(const sl_serve_opts_t *opts);

/** A workflow the daemon serves, as the dashboard shows it (borrowed for the call). */
typedef struct sl_serve_workflow_info {
    const char *name; /* NULL: the file never validated */
    const char *path;
    const sl_serve_schedule_t *sched; /* NULL or count 0: no schedule */
    const sl_schedule_t *def;         /* its `schedule:` (concurrency, missed, ...), or NULL */
    int64_t last_tick;                /* the newest tick taken (s); 0: none */
    size_t active;                    /* its runs going now */
    bool held;                        /* this daemon holds its lease (schedules it) */
    bool removed;                     /* its file is gone: no longer scheduled */
} sl_serve_workflow_info_t;

/** Calls `fn` for each workflow file the daemon serves, by path. Loop thread. */
void sl__serve_workflows(sl_serve_daemon_t *d,
                         void (*fn)(void *ud, const sl_serve_workflow_info_t *info), void *ud);

#endif
