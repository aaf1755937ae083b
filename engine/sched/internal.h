/* sched internals shared by run.c and task.c. */
#ifndef SL_SCHED_INTERNAL_H
#define SL_SCHED_INTERNAL_H

#include "sched/sched.h"
#include "vm/vm.h"
#include "sched/task.h"

typedef struct step_rt step_rt_t;

struct step_rt {
    sl_run_t *run;
    const sl_step_t *def;
    size_t index;
    sl_step_stats_t stats;
    uint32_t waiting_deps;   /* dependencies (not counting a stream source) not ended */
    size_t *dependents;      /* steps waiting for this one to end */
    size_t dependent_count;
    size_t *sinks;           /* steps streaming from this one's items */
    size_t sink_count;
    bool active;             /* activated: items known or streaming */
    bool queued;             /* on the ready queue */
    bool is_foreach;
    bool expanded;           /* foreach items known (0 when skipped) */
    bool args_constant;      /* `with` does not vary per item: evaluated once */
    sl_value_t args;         /* the constant args */
    sl_value_t items;        /* expanded foreach items (a list), or nil */
    sl_value_t output;       /* a list of item outputs for foreach, else the output */
    size_t next;             /* next item to dispatch (non-streaming) */
    size_t ended_items;      /* items finished: ok, failed or skipped */
    size_t *stream_queue;    /* streaming sinks: item indices ready to dispatch */
    size_t stream_head, stream_len, stream_cap;
    uint8_t *item_ended;     /* stream sources: one bit per item */
    uint64_t cpu_task_ns;    /* CPU kinds: the executor's measured time per task */
    step_rt_t *queue_next;
};

typedef enum {
    TASK_STARTING = 0, /* inside kind->start */
    TASK_RUNNING,      /* started, waiting for the kind to complete it */
    TASK_WAITING,      /* waiting for a retry's backoff */
    TASK_LOOKUP,       /* waiting for the memo's cache lookup */
    TASK_ZOMBIE,       /* given up on (timeout, cancel): freed when the kind completes it */
    TASK_FREE
} task_state_t;

struct sl_task {
    sl_run_t *run;
    step_rt_t *step;
    size_t item;         /* 0-based */
    uint32_t attempt;    /* 1-based */
    uint8_t state;       /* task_state_t */
    bool timer_inited;
    bool timeout_held;   /* an IO attempt's timeout waits for its request to reach curl */
    bool timeout_used;   /* ... which only the attempt's first request does */
    bool completed;      /* the kind reported (done or fail) */
    bool in_executor;    /* a CPU task handed to the run's executor (exec_handle) */
    bool looked_up;      /* the memo's lookup ran for this item: its finish applies */
    int64_t retry_after_ms; /* the kind's hint for the next attempt (0 = backoff) */
    sl_value_t *owned_args;
    const sl_value_t *args;
    void *data;          /* the kind's */
    sl_task_t *prev, *next; /* run's list of live tasks */
    uv_timer_t timer;    /* timeout while running, backoff while waiting */
    void *exec_handle;   /* the executor's, while in_executor */
    void *memo;          /* the memo's, carried across attempts (sl__sched_task_set_memo) */
    int64_t item_started_ms; /* Unix time of the item's first attempt */
    char *subject;       /* "GET URL" of the attempt's first request, named by its timeout */
    char where[64];
};

struct sl_run {
    uv_loop_t *loop;
    const sl_workflow_t *wf;
    sl_vm_t *vm;
    step_rt_t *steps;
    size_t steps_ended;
    step_rt_t *ready_head, *ready_tail;
    size_t *activation_queue;   /* steps whose dependencies all ended, FIFO; each enters once */
    size_t activation_head, activation_tail;
    bool activating;            /* draining the queue: a step that ends at once does not recurse */
    uv_idle_t pump;
    uv_timer_t grace;    /* how long canceled tasks get to stop at the end */
    int handles_open;
    bool pump_closed, grace_over;
    size_t inflight;     /* items started and not ended (including retry waits) */
    uint32_t inflight_max;
    sl_task_t *live;     /* tasks with a kind call outstanding or a timer */
    sl_task_t *spare;    /* freed tasks kept for reuse (no timer) */
    size_t spare_count;
    bool started, stopping, canceling, failed, finished;
    char *error;
    char *run_id;
    int64_t started_unix;
    uint64_t rng;
    sl_executor_t *cpu;  /* where CPU tasks go; NULL: they run on the loop */
    sl_services_t *services;
    const sl_run_observer_t *observer;
    const sl_run_memo_t *memo;
    uint64_t origin_loop_ms; /* the loop's clock at the run's start, and the Unix time */
    int64_t origin_ms;       /* then: wall times of items from the loop's cached clock */
    sl_run_done_cb done_cb;
    void *done_ud;
};

/* How an item's last attempt went, for the observer (zero: it never started). */
typedef struct item_end {
    uint32_t attempts;
    int64_t started_ms;
    bool cached;
    void *memo;
} item_end_t;

/* run.c */
void sl__sched_activate(sl_run_t *run, step_rt_t *step);
void sl__sched_schedule_pump(sl_run_t *run);
/* An item ended; `end` may be NULL (it never started). */
void sl__sched_item_ok(step_rt_t *step, size_t item, sl_value_t *output, const item_end_t *end);
void sl__sched_item_failed(step_rt_t *step, size_t item, int code, const char *message,
                           const item_end_t *end);
void sl__sched_item_skipped(step_rt_t *step, size_t item, const item_end_t *end);
/** Unix milliseconds now, from the loop's clock (updated once per loop turn: no syscall). */
int64_t sl__sched_now_ms(const sl_run_t *run);
const sl_value_t *sl__sched_item_value(const sl_run_t *run, const step_rt_t *step, size_t item);

/* task.c */
void sl__sched_dispatch(sl_run_t *run, step_rt_t *step, size_t item, uint32_t attempt);
void sl__sched_cancel_all(sl_run_t *run, bool cancel_running);
void sl__sched_free_tasks(sl_run_t *run);

#endif
