/*
 * lua/fiber.h: a Lua step task as a tree of fibers (step.c, fiber.c, group.c, io.c, fs.c).
 * The loader of the tasks' code, shared with pooled.c, is lua/script.h.
 *
 * A task starts with one fiber, its main coroutine. sluice.gather and sluice.map
 * suspend the calling fiber and run each function in a child fiber of the same
 * task; only leaves of the tree run. A fiber that calls an IO function (sleep,
 * http, fs) starts the IO as an *op*, records it and yields; the op's callback
 * marks it finished and queues exactly that fiber, which is resumed with the
 * op's results. The task's driver (sl__fiber_run) resumes queued fibers one at
 * a time, from loop callbacks only, never from inside a coroutine.
 *
 * Lifetimes: a fiber's coroutine is anchored in the registry while the fiber
 * lives; killing a fiber detaches and cancels its op (the op frees itself when
 * its IO ends, possibly at once), kills its group's children and unrefs the
 * coroutine. The task frees all its fibers when it ends or is canceled.
 *
 * Budget: the task's instruction budget lives in the task and is copied into
 * the running fiber's sl_vm_budget_t around each resume, so all fibers of a
 * task draw on one budget and preemption counts their work together.
 *
 * Loop thread only.
 */
#ifndef SL_LUA_FIBER_H
#define SL_LUA_FIBER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "vm/vm.h"

/* Live fibers per task, all groups together. */
#define SL_FIBERS_MAX 10000
/* sluice.map's default concurrency. */
#define SL_MAP_CONCURRENCY_DEFAULT 64

typedef struct lua_task lua_task_t;
typedef struct fiber fiber_t;
typedef struct fiber_op fiber_op_t;
typedef struct fiber_group fiber_group_t;

/** What an op kind does; see struct fiber_op. */
typedef struct fiber_op_kind {
    /**
     * Stops the IO of an op whose fiber is gone (op->fiber is NULL). The op frees
     * itself when its IO reports, which may happen before this returns.
     */
    void (*cancel)(fiber_op_t *op);
    /**
     * Runs protected on the VM's main state: pushes what the fiber resumes with,
     * `true` and the results, or `false` and an error message. Returns the count.
     */
    int (*push)(lua_State *L, fiber_op_t *op);
    /** Frees a finished op (or one whose IO reported after it was detached). */
    void (*free)(fiber_op_t *op);
} fiber_op_kind_t;

/** An IO operation a fiber waits for; embedded first in each kind's struct. */
struct fiber_op {
    const fiber_op_kind_t *kind;
    fiber_t *fiber; /* the waiting fiber; NULL once detached (the fiber is gone) */
    bool finished;  /* the IO reported; results wait in the op until the fiber resumes */
};

struct fiber {
    sl_vm_budget_t budget; /* first: the coroutine's extra space points here */
    uint32_t magic;
    lua_task_t *lt;
    lua_State *co;
    int co_ref;
    fiber_t *all_prev, *all_next;     /* the task's live fibers */
    fiber_t *ready_prev, *ready_next; /* the task's ready queue */
    bool queued;
    int nargs;                            /* values on the coroutine's stack to resume with */
    fiber_op_t *op;                       /* the IO this fiber waits for */
    fiber_group_t *group;                 /* the gather/map this fiber waits for */
    fiber_group_t *member_of;             /* the gather/map this fiber runs a function of */
    fiber_t *sibling_prev, *sibling_next; /* member_of's children, or the task's spares */
    int64_t index;                        /* 1-based position in member_of */
    bool spare; /* ended; its coroutine waits to run the next function of a group */
};

/** A gather or map: the children a parent fiber waits for (group.c). */
struct fiber_group {
    fiber_t *parent;
    bool is_map;
    bool failed;
    bool error_lost; /* failed, and no memory was left to keep the message */
    bool reported;   /* the parent is queued to collect the outcome */
    int ref;         /* registry: the group's table (GROUP_* slots) */
    int64_t total;   /* functions or items */
    int64_t next;    /* the next one to start, 1-based */
    int64_t running; /* live children */
    int64_t limit;   /* most children at once */
    fiber_t *children;
};

struct lua_task {
    sl_task_t *task;
    sl_vm_t *vm;             /* NULL once the VM is gone */
    lua_task_t *prev, *next; /* the VM's live tasks */
    int env_ref;
    bool in_run;  /* the chunk is done; run(args, ctx) is running */
    bool running; /* sl__fiber_run is on the stack */
    /* The instruction budget shared by the fibers (see the header comment). */
    uint64_t remaining;
    uint64_t since_yield;
    bool tripped;
    bool timed_out; /* it tripped on the attempt's deadline (a long C call) */
    const char *budget_message;
    lua_Hook hook; /* vm/vm.c's count hook */
    fiber_t *main;
    fiber_t *fibers;
    size_t fiber_count;
    fiber_t *ready_head, *ready_tail;
    fiber_t *spares; /* ended children kept for reuse (in `fibers` too) */
    size_t spare_count;
    bool turn_timer_inited;
    uv_timer_t turn_timer; /* the next turn; the struct is freed in its close callback */
    /* The Retry-After of the task's last failed HTTP request (0: none, or a later
     * request succeeded): when the task then fails, the next attempt waits that long. */
    int64_t http_retry_after_ms;
    /* A data path of the task left the allowed folders (fs.c, io.c): when the task then
     * fails, it is not retried (the path would leave them again). */
    bool path_refused;
    /* Threadpool work of the task not yet reported (fs.c, a script read), canceled or not. */
    unsigned work_pending;
    /* The script read this task waits for before it can run (step.c), counted in
     * work_pending, and the next task waiting for the same read. */
    struct script_load *load;
    lua_task_t *load_next;
    /* The task ended while work was pending: its outcome waits for the work. */
    bool ending;
    int end_code;
    char *end_message;
    sl_value_t *end_output;
};

/* ---- fiber.c ---------------------------------------------------------------- */

/** A new fiber of `lt`, linked into its list (co unset). NULL when out of memory. */
fiber_t *sl__fiber_new(lua_task_t *lt);
/**
 * Keeps a child that ended normally for the next function of a group: its coroutine is
 * reused, so the instructions it ran since the count hook last fired are charged to the
 * budget later instead of being lost (Lua keeps the count per coroutine). Kills it when
 * enough are kept already.
 */
void sl__fiber_recycle(fiber_t *f);
/** A kept fiber (coroutine set, stack empty, in no group), or NULL. */
fiber_t *sl__fiber_take_spare(lua_task_t *lt);
/** Kills a fiber and everything under it (see the header comment). */
void sl__fiber_kill(fiber_t *f);
/** Kills every fiber of the task (the task is ending). */
void sl__fiber_kill_all(lua_task_t *lt);
/** Queues a fiber to be resumed with `nargs` values already on its stack. */
void sl__fiber_ready(fiber_t *f, int nargs);
/** Resumes the task's ready fibers; the task may end (and be freed) inside. */
void sl__fiber_run(lua_task_t *lt);

/** The fiber running on `L`; raises when `L` is not a Lua step's coroutine. */
fiber_t *sl__fiber_of(lua_State *L);
/** As sl__fiber_of, and raises when `L` cannot yield here; `what` names the caller. */
fiber_t *sl__fiber_for_io(lua_State *L, const char *what);
/**
 * Makes the fiber wait for `op` (started, owned by the fiber from now on) and
 * yields; the fiber resumes with the op's results, or raises its error message
 * prefixed with the caller's position. Use as `return sl__fiber_wait(L, f, op);`.
 */
int sl__fiber_wait(lua_State *L, fiber_t *f, fiber_op_t *op);
/** An op's IO reported: resumes the waiting fiber, or frees the op when it has none. */
void sl__fiber_op_done(fiber_op_t *op);

/** Sets sleep in the module table at `module`. Raises. */
void sl__fiber_open(lua_State *L, int module);

/* ---- group.c ------------------------------------------------------------------ */

/** Kills the group's children, forgets its table and frees it. */
void sl__group_free(fiber_group_t *g);
/** Starts children while the group is under its limit; queues the parent when all ended. */
void sl__group_pump(fiber_group_t *g);
/**
 * Fails the group (the first failure counts) for child `index` with `message`, or when
 * that is NULL with the error object on top of the VM's main state (popped), and kills
 * the other children.
 */
void sl__group_fail(fiber_group_t *g, int64_t index, const char *message);
/** Child `f` ended with `status` (and `nres` results on LUA_OK); `f` is freed. */
void sl__group_child_ended(fiber_t *f, int status, int nres);
/** Sets gather and map in the module table at `module`. Raises. */
void sl__group_open(lua_State *L, int module);

/* ---- io.c, fs.c, html.c ----------------------------------------------------------- */

/** Sets the `http` table in the module table at `module`. Raises. */
void sl__lua_open_http(lua_State *L, int module);
/** Sets the `fs` table in the module table at `module`. Raises. */
void sl__lua_open_fs(lua_State *L, int module);
/** Joins the function's arguments with spaces as print does; pushes and returns the text. Raises. */
const char *sl__lua_join_args(lua_State *L);

/* ---- pooled.c: `pool: true` ---------------------------------------------------------- */

/**
 * Sends the task to the run's worker pool; returns 0 (the pool completes it), 1 when the
 * run has no pool (run it on the loop), or SL_ENOMEM. `reserved` are the kind's own
 * parameters (the rest become `args`).
 */
int sl__lua_pooled_start(sl_task_t *task, const sl_value_t *args,
                         const char *const *reserved, size_t reserved_count);
/** Cancels a pooled task; false when the task is not a pooled one. */
bool sl__lua_pooled_cancel(sl_task_t *task);
/** Start of the internal CPU kind `lua.pooled`, in a worker process. */
int sl__lua_pooled_worker_start(sl_task_t *task, const sl_value_t *args);

/** Sets the `html` table (select, run in the worker pool) at `module`. Raises. */
void sl__lua_open_html(lua_State *L, int module);
/** Sets `now` (the Unix time as a float, now.c) at `module`. Raises. */
void sl__now_open(lua_State *L, int module);

/* ---- step.c ----------------------------------------------------------------------- */

/** The host table the kind was loaded with (sl__lua_entry): the engine's, or a worker's. */
extern const sl_host_t *sl__lua_host;

/**
 * The main fiber's coroutine ended with `status` (LUA_OK with `nres` results, or
 * an error). Returns true when the task ended (`lt` is freed), false when the
 * main fiber was queued again (to call run(args, ctx)).
 */
bool sl__lua_main_ended(lua_task_t *lt, int status, int nres);
/** Fails the task with `message` (copied); the task is over (see sl__lua_task_settle). */
void sl__lua_task_fail(lua_task_t *lt, int code, const char *message);
/**
 * The last threadpool work of an ending task reported (fs.c, when `ending` is set and
 * `work_pending` is 0): completes the task with its outcome and frees `lt`.
 */
void sl__lua_task_settle(lua_task_t *lt);

#endif
