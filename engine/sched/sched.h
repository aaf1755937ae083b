/*
 * sched: runs a loaded workflow on one libuv loop.
 *
 * Event-driven: each step counts the dependencies it still waits for; a step
 * whose count reaches zero is activated (its `if` and `foreach` evaluated)
 * and put on the ready queue; a pump on an idle handle, active only while the
 * queue has work, dispatches tasks within the step, run and kind limits.
 * Kinds complete tasks by callback (the host table's task_done/task_fail),
 * possibly inside start(). Retries wait on timers; timeouts cancel through
 * the kind. A foreach step that iterates another foreach step's output
 * streams: its task i starts when the source's task i finishes.
 *
 * Loop thread only. The run borrows the workflow and registry.
 */
#ifndef SL_SCHED_H
#define SL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "loader/workflow.h"
#include "util/util.h"

#define SL_RUN_INFLIGHT_MAX 10000 /* attempts in flight at once, run-wide */

typedef struct sl_run sl_run_t;
/* What the layers above give a run's tasks (host/host.h); opaque here. */
typedef struct sl_services sl_services_t;

/** A CPU task as an executor sees it: borrowed until the task is reported. */
typedef struct sl_cpu_task {
    const char *kind;       /* the kind's name */
    const char *plugin;     /* the shared object providing it; NULL: built in, or search */
    const sl_value_t *args;
    uint32_t attempt;       /* 1-based */
    int64_t timeout_ms;     /* per attempt, counted from when the task starts; 0 = none */
    uint64_t *task_ns;      /* the step's measured time per task, for the executor to keep */
} sl_cpu_task_t;

/**
 * Where a run's CPU tasks go (docs/architecture.md, "Executors"): the layers above
 * implement it (host/ binds the worker pool, pool/), the scheduler only calls it. Each
 * task submitted is reported exactly once through sl__sched_task_done or
 * sl__sched_task_fail, from the loop and never from inside submit or cancel, unless
 * unqueue takes it back first. Loop thread only.
 */
typedef struct sl_executor sl_executor_t;
struct sl_executor {
    /** Takes `task`; *handle is the executor's, passed back to unqueue and cancel. Returns
     *  SL_ENOMEM and never reports then. */
    int (*submit)(sl_executor_t *ex, sl_task_t *task, const sl_cpu_task_t *cpu,
                  void **handle);
    /** True when the task had not started: it is dropped and will not be reported. */
    bool (*unqueue)(sl_executor_t *ex, void *handle);
    /** Stops a started task; it is reported (failed) later. */
    void (*cancel)(sl_executor_t *ex, void *handle);
    /** Tasks of one step worth having submitted at once (a step with more holds the rest
     *  back, so arguments are made just before they go); 0 = no limit. */
    size_t (*window)(const sl_executor_t *ex);
};

typedef enum {
    SL_STEP_WAITING = 0, /* dependencies not finished */
    SL_STEP_RUNNING,
    SL_STEP_DONE,
    SL_STEP_SKIPPED, /* `if` was false */
    SL_STEP_FAILED,  /* a task failed with on_error: fail, or activation failed */
    SL_STEP_CANCELED /* never finished: the run stopped first */
} sl_step_status_t;

/** Per-step counters, read by the CLI for progress and the summary. */
typedef struct sl_step_stats {
    sl_step_status_t status;
    bool total_known; /* foreach expanded (or not a foreach) */
    size_t total;     /* tasks (items) */
    size_t ok, failed, skipped, retries;
    size_t cached;    /* of `ok`: not run, a recorded output used (cache hit, resumed run) */
    size_t inflight;
    uint64_t started_ns, ended_ns; /* monotonic; 0 = not yet */
} sl_step_stats_t;

typedef enum {
    SL_ITEM_OK = 0,
    SL_ITEM_FAILED,
    SL_ITEM_SKIPPED,  /* a per-item `if` was false */
    SL_ITEM_CANCELED, /* the run stopped before it finished */
} sl_item_status_t;

/** How an item ended, for a run's observer; everything is borrowed for the call. */
typedef struct sl_item_report {
    size_t step, item;          /* indices: the workflow's steps, the step's items */
    sl_item_status_t status;
    uint32_t attempts;          /* 0: it never started (skipped, canceled, recalled) */
    bool cached;                /* not run: a recorded output was used */
    int64_t started_ms, ended_ms; /* Unix time; started 0 when it never started */
    const sl_value_t *output;   /* SL_ITEM_OK: its output, never NULL */
    const char *error;          /* SL_ITEM_FAILED, SL_ITEM_CANCELED: the message */
    const void *memo;           /* what the memo attached to its task (sl__sched_task_memo) */
} sl_item_report_t;

/**
 * What the layers above learn of a run as it goes (the state store records it). Loop
 * thread; each callback is optional and must not call back into the run.
 */
typedef struct sl_run_observer {
    void *ud;
    /** Every item that ends, once, in the order they end. */
    void (*item_ended)(void *ud, const sl_item_report_t *report);
    /** A step ended (its counters in `stats`). */
    void (*step_ended)(void *ud, size_t step, const sl_step_stats_t *stats);
} sl_run_observer_t;

/** A cache lookup's answer, given to sl__sched_task_lookup_done. */
typedef enum {
    SL_LOOKUP_MISS = 0, /* run the kind with the task's arguments */
    SL_LOOKUP_HIT,      /* use the recorded output: the kind does not run */
    SL_LOOKUP_RUN_WITH, /* run the kind with other arguments (a conditional request) */
} sl_lookup_t;

/**
 * Recorded work a run may use instead of running it (the store's resume records and
 * cache, bound by host/). Loop thread; each callback is optional.
 */
typedef struct sl_run_memo {
    void *ud;
    /**
     * Resume: before item `item` of `step` is first dispatched. Returns true with *out (a
     * new value, the caller's) to use that output instead of running the item.
     */
    bool (*recall)(void *ud, size_t step, size_t item, sl_value_t **out);
    /**
     * Cache: for a step with `cache: true`, once the task's arguments are made. Returns 0
     * after starting a lookup that ends with sl__sched_task_lookup_done (from the loop,
     * never from inside this call), or a negative code to run the task uncached.
     */
    int (*lookup)(void *ud, sl_task_t *task, const sl_value_t *args);
    /** Stops a lookup in progress: sl__sched_task_lookup_done then never comes. */
    void (*lookup_cancel)(void *ud, sl_task_t *task);
    /**
     * A task that ran after a lookup completed with `output` (the caller's): returns the
     * output to keep, taking `output`: the recorded one for HTTP 304 Not Modified, which
     * sets *cached. NULL when out of memory.
     */
    sl_value_t *(*finish)(void *ud, sl_task_t *task, sl_value_t *output, bool *cached);
    /** The item a memo pointer (sl__sched_task_set_memo) was for has ended, and the
     *  observer has seen it: the memo may free it. */
    void (*forget)(void *ud, void *memo);
} sl_run_memo_t;

typedef struct sl_run_opts {
    const char *run_id;  /* copied */
    int64_t started_unix;
    uint32_t inflight_max; /* 0 = SL_RUN_INFLIGHT_MAX */
    /* Where CPU tasks run (borrowed, outlives the run); NULL: on the loop, as IO kinds. */
    sl_executor_t *cpu;
    /* Handed to the run's kinds through sl__task_services (borrowed); may be NULL. */
    sl_services_t *services;
    /* Told of every item and step that ends (borrowed; NULL: nobody). */
    const sl_run_observer_t *observer;
    /* Recorded outputs the run may use (borrowed; NULL: it runs everything). */
    const sl_run_memo_t *memo;
} sl_run_opts_t;

/** Called once when the run has finished (all steps ended, or stopped and drained). */
typedef void (*sl_run_done_cb)(sl_run_t *run, void *ud);

int sl__run_new(uv_loop_t *loop, const sl_workflow_t *wf, const sl_run_opts_t *opts,
                sl_run_t **out);
/** Starts the run; `done` is called from the loop later, never from here. */
int sl__run_start(sl_run_t *run, sl_run_done_cb done, void *ud);
/**
 * Stops the run: no new task starts. With `cancel`, running tasks are also
 * canceled through their kinds. The done callback still comes once drained.
 */
void sl__run_stop(sl_run_t *run, bool cancel);
/**
 * Canceled tasks whose kinds never completed them (the run gave up after a grace
 * period). While there are any, sl__run_free keeps the run alive for them, and the
 * process should exit without waiting for the loop's threads.
 */
size_t sl__run_stragglers(const sl_run_t *run);
/**
 * Closes a finished run's handles, running the loop until their close callbacks have
 * come. Its values stay. Idempotent. Close the run's services (HTTP, workers) first.
 */
void sl__run_close(sl_run_t *run);
/** Frees a run that is done (or never started); closes it first. */
void sl__run_free(sl_run_t *run);

/** True when every step succeeded (failures under on_error: continue allowed). */
bool sl__run_succeeded(const sl_run_t *run);
/** True when the run was stopped by sl__run_stop. */
bool sl__run_stopped(const sl_run_t *run);
const sl_step_stats_t *sl__run_step_stats(const sl_run_t *run, size_t step);
/** The first error that failed the run (borrowed), or NULL. */
const char *sl__run_error(const sl_run_t *run);
/** The output of a finished step (borrowed), or NULL. */
const sl_value_t *sl__run_output(const sl_run_t *run, size_t step);
const char *sl__run_id(const sl_run_t *run);

/* Host-table task functions (host/host.c points at these). */
void sl__sched_task_done(sl_task_t *task, sl_value_t *output);
void sl__sched_task_fail(sl_task_t *task, int code, const char *message);
struct uv_loop_s *sl__sched_task_loop(sl_task_t *task);
void sl__sched_task_set_data(sl_task_t *task, void *data);
void *sl__sched_task_data(sl_task_t *task);
int sl__sched_task_attempt(sl_task_t *task);
void sl__sched_task_retry_after(sl_task_t *task, int64_t delay_ms);
/**
 * The attempt's timeout waits for the work to really start. Called from inside kind->start
 * by the first HTTP request of an IO attempt: stops the step's timeout timer and returns
 * its length, to be restarted in full by sl__sched_task_timeout_resume when the request
 * reaches curl. Returns 0 (and holds nothing) when there is no such timer, or it already
 * was held or resumed in this attempt.
 */
int64_t sl__sched_task_timeout_hold(sl_task_t *task);
void sl__sched_task_timeout_resume(sl_task_t *task);
/** Names what the attempt is doing ("GET URL") in its timeout message; the first one set
 *  in an attempt stays. Copied. */
void sl__sched_task_set_subject(sl_task_t *task, const char *subject);
/**
 * When the attempt's timeout timer will fire, in sl__clock_now_ns() time (the loop's
 * clock); 0 when no timeout is running for it (none set, or held). Loop thread only.
 */
uint64_t sl__sched_task_deadline_ns(const sl_task_t *task);
/** The step's timeout per attempt in ms, 0 when it has none. */
int64_t sl__sched_task_timeout_ms(const sl_task_t *task);
void sl__sched_task_vlog(sl_task_t *task, int level, const char *fmt, va_list ap);

/**
 * Ends a cache lookup (sl_run_memo_t.lookup): HIT takes `value` as the item's output;
 * RUN_WITH runs the kind with `value` (taken) as its arguments; MISS runs it as it is
 * (`value` NULL). A task whose run is stopping ends canceled instead.
 */
void sl__sched_task_lookup_done(sl_task_t *task, sl_lookup_t answer, sl_value_t *value);
/** The memo's own pointer on a task (a cache key, say): kept until the item ends and
 *  handed to the observer in sl_item_report_t.memo. */
void sl__sched_task_set_memo(sl_task_t *task, void *memo);
void *sl__sched_task_memo(sl_task_t *task);
/** The task's arguments (its `with`, expanded), borrowed for the task's life. */
const sl_value_t *sl__sched_task_args(const sl_task_t *task);
/** The step (its index in the workflow) and item (0-based) a task is for. */
size_t sl__sched_task_step(const sl_task_t *task);
size_t sl__sched_task_item(const sl_task_t *task);

#endif
