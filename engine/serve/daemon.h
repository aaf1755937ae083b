/*
 * The daemon's insides (serve/daemon.c, launch.c, files.c): one loop, one entry per
 * workflow file served, its runs, and the work handed to the threadpool (store calls,
 * loading files), so that the loop never waits on SQLite or the disk.
 *
 * Lifetimes: entries live as long as the daemon (a removed file's entry stays, unscheduled,
 * and comes back if the file does); a loaded version of a file is shared by the entry and
 * the runs started from it, and freed with the last of them. Loop thread unless named
 * _work (a threadpool thread).
 */
#ifndef SL_SERVE_DAEMON_H
#define SL_SERVE_DAEMON_H

#include <sys/types.h>
#include <uv.h>

#include "host/host.h"
#include "serve/serve.h"

#define SL_SERVE_QUEUE_MAX 100       /* ticks waiting under `queue` per workflow */
#define SL_SERVE_LEASE_TTL_MS 20000  /* a lease not renewed for this long is taken over */
#define SL_SERVE_LEASE_RENEW_MS 5000 /* leases are renewed (and free ones taken) this often */
#define SL_SERVE_WATCH_MS 2000       /* wall clock checked against the loop's this often */
#define SL_SERVE_JUMP_MS 1500        /* a drift past this is a clock jump */
#define SL_SERVE_RELOAD_DELAY_MS 300 /* file events are gathered this long before a reload */
#define SL_SERVE_WATCHES_MAX 256     /* folders watched for changes */
#define SL_SERVE_RUNS_MAX 1024       /* runs open at once, all workflows (more wait their turn) */
#define SL_SERVE_CLAIM_GROUP 256     /* tick claims recorded in one commit */
#define SL_SERVE_AHEAD_MS 5000       /* an idle workflow's tick is claimed this long ahead */

typedef struct sl_serve_entry sl_serve_entry_t;
typedef struct sl_serve_job sl_serve_job_t;

/** A loaded version of a workflow file: shared by its entry and its runs. */
typedef struct sl_serve_version {
    sl_workflow_t *wf;
    sl_serve_schedule_t sched; /* count 0: no schedule (loaded, never run) */
    unsigned refs;
} sl_serve_version_t;

/** What identifies a file's content on disk cheaply: a change of any is a reload. */
typedef struct sl_serve_stamp {
    int64_t mtime_ns, size;
    uint64_t ino;
} sl_serve_stamp_t;

struct sl_serve_entry {
    sl_serve_daemon_t *d;
    char *path;
    char *name;              /* the lease's workflow name (the current version's), or NULL */
    char *old_name;          /* a name whose lease is to be released (renamed), or NULL */
    sl_serve_version_t *cur; /* NULL: never validated */
    sl_serve_stamp_t stamp;
    bool removed, held;
    bool lease_logged; /* "scheduled by another" said once */
    int64_t last_tick; /* the newest tick taken (s); 0: none recorded yet */
    int64_t ahead_tried; /* the tick last looked at ahead of time (s) */
    uv_timer_t timer;  /* the next tick */
    size_t active;     /* runs of this entry not yet reaped */
    sl_serve_job_t *runs;
    int64_t queue[SL_SERVE_QUEUE_MAX]; /* ticks waiting for the running one (queue, replace) */
    size_t queued;
    sl_serve_entry_t *next;
};

/** One run of an entry, from its tick's claim to its record's close. */
struct sl_serve_job {
    sl_serve_daemon_t *d;
    sl_serve_entry_t *e;
    sl_serve_version_t *v;
    int64_t tick;
    char run_id[40];
    sl_services_t *svc;
    sl_recorder_t *rec;
    sl_run_t *run;
    uv_timer_t delay;
    bool won, started, canceled, reaped, delay_open;
    bool drop;    /* canceled before it started (the daemon stops): its claim is given back */
    bool waiting; /* in the daemon's queue of runs past SL_SERVE_RUNS_MAX */
    bool counted; /* one of the open runs (from its claim to its reap) */
    uint64_t started_ns;
    char err[512];
    sl_serve_job_t *next;      /* in its entry's runs */
    sl_serve_job_t *next_done; /* in the daemon's reap list */
    sl_serve_job_t *next_waiting;
    sl_serve_job_t *next_claim; /* in the daemon's claims or the group being claimed */
};

struct sl_serve_daemon {
    uv_loop_t loop;
    const sl_serve_opts_t *opts;
    sl_store_t *store; /* ticks, leases and every run's records (its read connection is
                          locked: any thread; its writer is attached to the loop) */
    char owner[128];   /* host:pid, the lease holder's name */
    sl_host_shared_t *shared;
    sl_serve_entry_t *entries;
    sl_serve_job_t *done; /* finished runs to reap outside the loop's callbacks */
    size_t running;       /* jobs not yet reaped, all entries */
    size_t open_runs;     /* jobs counted against SL_SERVE_RUNS_MAX */
    sl_serve_job_t *waiting_head, *waiting_tail; /* their turn comes in this order */
    sl_serve_job_t *claims, **claims_tail;       /* waiting for a group's commit */
    sl_serve_job_t *claiming;                    /* the group in the threadpool */
    uv_work_t claim_work;
    size_t works;                                /* threadpool items in flight */
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t lease_timer, watch_timer, grace_timer, reload_timer;
    uv_fs_event_t watches[SL_SERVE_WATCHES_MAX];
    size_t watch_count;
    int64_t base_wall_ms;
    uint64_t base_loop_ms;
    bool stopping, canceling, quit, lease_busy, reload_busy, reload_again, store_failed;
};

/* launch.c */
/** Claims `tick` for `e` and starts its run (jitter first). */
void sl__serve_launch(sl_serve_entry_t *e, int64_t tick);
/** Cancels a run (recorded interrupted, resumable); its reap comes later. */
void sl__serve_job_cancel(sl_serve_job_t *job);
/** Records `tick` of `e` as skipped with `reason` (copied), in the threadpool. */
void sl__serve_skip(sl_serve_entry_t *e, int64_t tick, const char *reason);
/** Closes and frees the runs that finished; called between loop turns only. */
void sl__serve_reap(sl_serve_daemon_t *d);
/** Formats `t` in the zone of version `v` (UTC without one), ISO-8601 with its offset. */
void sl__serve_when(const sl_serve_version_t *v, int64_t t, char *buf, size_t size);
void sl__serve_version_unref(sl_serve_version_t *v);

/* daemon.c */
/** What an entry does once a run of it is reaped: the queue, then the shutdown check. */
void sl__serve_entry_idle(sl_serve_entry_t *e);
/** Takes the due ticks of `e` now and arms its timer for the next. */
void sl__serve_entry_check(sl_serve_entry_t *e);
/** Starts a lease round now (unless one is going). */
void sl__serve_leases(sl_serve_daemon_t *d);
/** Quits once stopping and nothing is left. */
void sl__serve_maybe_quit(sl_serve_daemon_t *d);

/* metrics.c: the counters of /metrics (docs/metrics.md) */
/** A run started (its trigger, and the lag from its tick). */
void sl__serve_metrics_started(const sl_serve_job_t *job);
/** A run that started ended with `status` (NULL: it never ran; not counted). */
void sl__serve_metrics_finished(const sl_serve_job_t *job, const char *status);
/** A tick of `e` skipped for `reason` (sl__serve_skip's text), counted by its kind. */
void sl__serve_metrics_skipped(const sl_serve_entry_t *e, const char *reason);
/** Counts the ticks sl__serve_due dropped for `e` (catchup, missed) at `now`. */
void sl__serve_metrics_dropped(const sl_serve_entry_t *e, int64_t last, int64_t now, size_t due);
/** The bounded label of a skip's `reason`: forbid, replace, queue_full, stopping, removed,
 *  other. */
const char *sl__serve_metrics_reason(const char *reason);

/* files.c */
/** Loads every file of the operands (changed ones only), then applies what changed. */
void sl__serve_reload(sl_serve_daemon_t *d, bool at_start);
/** Watches the operands' folders for changes (a reload after SL_SERVE_RELOAD_DELAY_MS). */
void sl__serve_watch(sl_serve_daemon_t *d);
void sl__serve_unwatch(sl_serve_daemon_t *d);

#endif
