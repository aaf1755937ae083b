/*
 * vm: the run's Lua VM, shared by expressions and Lua steps.
 *
 * One lua_State per run with a capped allocator (a script that allocates
 * past the cap gets a Lua "not enough memory" error, the engine survives)
 * and instruction budgets enforced with count hooks. Expressions see a
 * sandbox: vars, steps (outputs of finished steps, converted lazily on first
 * access and cached), item, index, env (read-only), run {id, started},
 * workflow {name}, null, the helpers keys/values/range/len/json_encode/
 * json_decode/url_join, and the safe standard libraries (string, table, math, utf8,
 * and base functions without load/dofile/require/io/os). An expression can't
 * assign globals, and every table shared across evaluations and tasks (the
 * libraries, vars, steps.*, run, workflow) is a read-only view (readonly.c).
 * Pattern matching is the project's own, charged to the instruction budget
 * (pattern.c, strmatch.c), and setmetatable refuses __gc (finalizers run with
 * hooks off).
 *
 * Values cross as sl_value_t: nil inside a list or map becomes `null` (a
 * light userdata) so lengths survive; Lua sequences become lists, other
 * tables maps (keys must be strings or integers, which become strings).
 * Loop thread only.
 */
#ifndef SL_VM_H
#define SL_VM_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"
#include "value/value.h"

typedef struct sl_vm sl_vm_t;

typedef struct sl_vm_scope {
    const sl_value_t *vars;    /* borrowed; outlives the VM */
    const char *workflow_name; /* copied */
    const char *run_id;        /* copied */
    int64_t run_started;       /* Unix seconds */
    /* A finished step's output: returns 1 and *out (borrowed), or 0 when the
     * step has not finished (steps.ID is then nil and not cached). */
    int (*step_output)(void *ud, const char *step, const sl_value_t **out);
    /* The id of the i-th step that steps.ID may name (finished or not), NULL past the last;
     * what pairs(steps), keys(steps) and json_encode(steps) walk. NULL: none. */
    const char *(*step_name)(void *ud, size_t i);
    void *ud;
} sl_vm_scope_t;

typedef struct sl_vm_limits {
    size_t memory_bytes;        /* whole VM; 0 = 256 MiB */
    uint64_t expr_instructions; /* per expression evaluation; 0 = 10,000,000 */
} sl_vm_limits_t;

int sl__vm_new(const sl_vm_scope_t *scope, const sl_vm_limits_t *limits, sl_vm_t **out);
void sl__vm_free(sl_vm_t *vm);
lua_State *sl__vm_lua(sl_vm_t *vm);

/** Pushes a value. Returns SL_ENOMEM (nothing pushed) or SL_ELIMIT for depth > 200. */
int sl__vm_push(lua_State *L, const sl_value_t *v);
/**
 * Converts the Lua value at `idx` to a new value; read-only views convert as
 * the tables behind them. Functions, threads, userdata other than null,
 * cycles, depth > 200 and mixed tables are SL_ETYPE with a message in `err`
 * naming the path ("[3].name"). A result of more than 10,000,001 values (a range() list of 10,000,000 fits) or
 * more bytes than the VM's memory cap (a shared table counts once per use) is
 * SL_ELIMIT, found before anything is built. Never raises.
 */
int sl__vm_pull(lua_State *L, int idx, sl_value_t **out, char *err, size_t err_size);

/**
 * Evaluates expression `src` (compiled on first use and cached under `key`,
 * any stable pointer) with item/index bound; `chunkname` names it in errors.
 * Returns 0 and *out, SL_ELUA (runtime error, message in err), SL_ELIMIT
 * (instruction or memory budget), SL_ETYPE (result not convertible).
 */
int sl__vm_eval(sl_vm_t *vm, const void *key, const char *src, size_t len, const char *chunkname,
                const sl_value_t *item, int64_t index, sl_value_t **out, char *err,
                size_t err_size);

/** What `steps.ID` reads: a finished step's output (borrowed), or NULL when not finished. */
const sl_value_t *sl__vm_step_output(const sl_vm_t *vm, const char *id);

/* ---- embedding: what the layers above (the lua kind) build on ------------ */

#define SL_VM_RANGE_MAX 10000000 /* elements of range(); items of one sluice.map */

/*
 * An instruction budget. A thread's extra space (lua_getextraspace) points
 * at the budget its count hook charges; threads made by lua_newthread start
 * with the main thread's pointer, so the lua kind points each coroutine at its own.
 */
typedef struct sl_vm_budget {
    uint64_t remaining;   /* instructions left, the armed chunk included */
    int armed;            /* instructions the count hook was set to before it next fires */
    bool tripped;         /* the budget ran out: the error is SL_ELIMIT */
    const char *message;  /* why it tripped (static text) */
    bool preemptible;     /* a Lua step's coroutine: the hook yields it now and then */
    uint64_t since_yield; /* instructions run since the hook last yielded */
    bool preempted;       /* the last yield came from the hook, not from a sluice call */
    uint64_t deadline_ns; /* sl__clock_now_ns() past which the work times out; 0: none */
    uint64_t unclocked;   /* C work charged since the clock was last read */
    bool timed_out;       /* it tripped on deadline_ns: the error is a timeout */
} sl_vm_budget_t;

/** The VM owning a state or thread (the allocator's user data). */
static inline sl_vm_t *sl__vm_of(lua_State *L)
{
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/** `null`: a light userdata, so list lengths survive. */
extern const char sl__vm_null_sentinel;
#define SL_VM_NULL ((void *)&sl__vm_null_sentinel)

/** Pushes a value; raises a Lua error when out of memory or too deep. Protected code only. */
void sl__vm_push_raw(lua_State *L, const sl_value_t *v, int depth);
/** Pushes an empty list-marked table with room for `n` items. Raises. */
void sl__vm_new_list(lua_State *L, int n);

/**
 * A userdata holding C allocations while Lua calls that can raise run: its
 * __gc frees whatever is still in it. Pushes it. Raises when out of memory.
 */
typedef struct sl_vm_box {
    sl_value_t *value;
    char *text;
} sl_vm_box_t;
sl_vm_box_t *sl__vm_box(lua_State *L);
/** Frees the box's contents now. */
void sl__vm_box_clear(sl_vm_box_t *box);

/**
 * Starts charging thread `L` against `budget` with `instructions`; stop clears the hook.
 * Once a budget trips, every later instruction of the thread raises again, so a pcall in
 * the script cannot swallow the error and carry on.
 */
void sl__vm_budget_start(lua_State *L, sl_vm_budget_t *budget, uint64_t instructions);
void sl__vm_budget_stop(lua_State *L);
/**
 * Charged C work and the count hook read the clock now and then: past `deadline_ns` (a
 * sl__clock_now_ns() time, 0 for none) the budget trips with "timed out" and sets
 * `timed_out`, so one long C call cannot outlive the task's timeout. The lua kind sets it
 * from the attempt's timeout.
 */
void sl__vm_budget_set_deadline(sl_vm_budget_t *budget, uint64_t deadline_ns);
/**
 * Work done in C (pattern matching) charged to the running thread's budget: takes up to
 * `want` steps and returns how many it took (at least 1). Raises "instruction budget
 * exceeded (pattern matching)" when nothing is left. `refund` gives unused steps back.
 */
uint64_t sl__vm_budget_take(lua_State *L, uint64_t want);
void sl__vm_budget_refund(lua_State *L, uint64_t unused);

/**
 * The C-level work of one library call (string.rep, table.concat/move/insert, a
 * matcher's scan), charged before it is done: `units` instructions, roughly one per
 * element or per 64 bytes. Raises "instruction budget exceeded" when the running
 * thread's budget has fewer left (the budget is then spent, as the count hook leaves
 * it). No budget running (the engine's own calls): nothing happens.
 */
void sl__vm_charge(lua_State *L, uint64_t units);
/** True when `bytes` more would pass the VM's memory cap: a call about to build a
 *  result that big fails with "not enough memory" anyway, before any work is done. */
bool sl__vm_mem_exceeds(lua_State *L, double bytes);

/**
 * The C function behind the sandbox's url_join(base, ref), for every VM of the process:
 * vm/ cannot reach libcurl (io/ is above it), so the lua kind hands its own in at start
 * (sl__lua_entry). Until then url_join raises "url_join is not available". Call before
 * any VM runs (not thread-safe).
 */
void sl__vm_set_url_join(lua_CFunction fn);

/** Replaces the value on top, if a table, with a read-only view named `path`. Raises. */
void sl__vm_ro_wrap(lua_State *L, const char *path);

/** A message handler turning any error object into a string (no traceback). */
int sl__vm_msgh(lua_State *L);

/**
 * Pushes the sandbox: the table of names expressions see (vars, steps, helpers, safe
 * libraries), not its read-only proxy. Never raises; needs one free stack slot.
 */
void sl__vm_push_sandbox(lua_State *L);

/*
 * The watchdog's handle on the loop thread's Lua code (docs/architecture.md, "The loop's
 * guarantees"). Whoever runs Lua on the loop thread brackets the call with enter/leave
 * (nesting allowed: leave restores what enter returned); sl__vm_poke, from any thread,
 * then reaches the code running inside: its count hook fires at its next instruction
 * (lua_sethook, which Lua allows from another thread or a signal handler), and charged C
 * work (sl__vm_charge, the matcher) checks the request too.
 *   SL_VM_POKE_TURN   a Lua step's coroutine yields there, so the loop turns (its timers,
 *                     its signals); other code carries on.
 *   SL_VM_POKE_ABORT  the call fails with "interrupted (the run is being stopped)", which
 *                     a pcall in the script cannot catch.
 * A poke that finds no Lua running, or that is still pending when the outermost call
 * leaves, is dropped. sl__vm_poke returns whether Lua was running.
 */
enum { SL_VM_POKE_TURN = 1, SL_VM_POKE_ABORT = 2 };
lua_State *sl__vm_running_enter(lua_State *L);
void sl__vm_running_leave(lua_State *saved);
bool sl__vm_poke(int what);

/** The budget thread `L` is charged to; NULL for the VM's main thread and threads that
 *  still use the expression budget (not a Lua step's coroutine). */
sl_vm_budget_t *sl__vm_thread_budget(lua_State *L);

/** True when the allocator refused a request (the memory cap) since sl__vm_mem_clear. */
bool sl__vm_mem_refused(const sl_vm_t *vm);
void sl__vm_mem_clear(sl_vm_t *vm);

#define SL_VM_ATTACHED_MAX 4

/**
 * Attaches an embedder's state to the VM under `key` (any stable address, one per
 * embedder): `detach(data)` runs when the VM is freed, before its Lua state closes, so
 * the embedder can let go of what it holds in Lua (the lua kind's live tasks). Returns
 * 0, SL_EEXIST when `key` is taken, SL_ELIMIT past SL_VM_ATTACHED_MAX embedders.
 */
int sl__vm_attach(sl_vm_t *vm, const void *key, void *data, void (*detach)(void *data));
/** The state attached under `key`, or NULL. */
void *sl__vm_attached(const sl_vm_t *vm, const void *key);

#endif
