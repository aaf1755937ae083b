/*
 * lua/internal.h: what vm.c, convert.c, helpers.c and step.c share. Not for
 * other modules (they use lua/vm.h).
 */
#ifndef SL_LUA_INTERNAL_H
#define SL_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>

#include "lua/vm.h"

#define SL_VM_DEPTH_MAX 200
#define SL_VM_RANGE_MAX 10000000
#define SL_VM_PULL_NODES_MAX 10000000 /* values in one conversion from Lua */

/*
 * An instruction budget. A thread's extra space (lua_getextraspace) points
 * at the budget its count hook charges; threads made by lua_newthread start
 * with the main thread's pointer, so step.c points each coroutine at its own.
 */
typedef struct sl_vm_budget {
    uint64_t remaining;  /* instructions left, the armed chunk included */
    int armed;           /* instructions the count hook was set to before it next fires */
    bool tripped;        /* the budget ran out: the error is SL_ELIMIT */
    const char *message; /* why it tripped (static text) */
    bool preemptible;    /* a Lua step's coroutine: the hook yields it now and then */
    uint64_t since_yield; /* instructions run since the hook last yielded */
    bool preempted;      /* the last yield came from the hook, not from a sluice call */
} sl_vm_budget_t;

struct sl_vm {
    lua_State *L;
    sl_vm_scope_t scope;
    char *workflow_name;
    char *run_id;
    size_t mem_used;
    size_t mem_max;
    bool mem_refused;          /* the allocator refused a request since last cleared */
    uint64_t expr_instructions;
    sl_vm_budget_t expr_budget; /* the main thread's */
    int env_ref;               /* the sandbox: the expression scope (a read-only proxy) */
    int env_real_ref;          /* the table behind it */
    int ro_proxy_ref, ro_path_ref, ro_mt_ref, ro_next_ref; /* lua/readonly.c's state */
    int cache_ref;             /* compiled expressions, keyed by light userdata */
    int list_mt_ref;           /* metatable marking tables that came from lists */
    const void *list_mt;       /* its identity, for sl__vm_pull */
    int step_ref;              /* lua/step.c's state for this VM (LUA_NOREF until used) */
    void *step_tasks;          /* lua/step.c's live tasks, detached when the VM goes */
};

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
 * Work done in C (pattern matching) charged to the running thread's budget: takes up to
 * `want` steps and returns how many it took (at least 1). Raises "instruction budget
 * exceeded (pattern matching)" when nothing is left. `refund` gives unused steps back.
 */
uint64_t sl__vm_budget_take(lua_State *L, uint64_t want);
void sl__vm_budget_refund(lua_State *L, uint64_t unused);

/** Detaches live Lua step tasks from a VM being freed (step.c): their timers stop. */
void sl__lua_steps_detach(sl_vm_t *vm);

/** Sets up read-only views (readonly.c). Raises. */
void sl__vm_ro_open(lua_State *L, sl_vm_t *vm);
/** Replaces the value on top, if a table, with a read-only view named `path`. Raises. */
void sl__vm_ro_wrap(lua_State *L, const char *path);
/**
 * The value on top was read from table `parent`: when `parent` is a read-only view and the
 * value a table, replaces it with its view. Raises.
 */
void sl__vm_ro_wrap_child(lua_State *L, int parent);
/** Replaces the library table on top with a read-only view named `name`. Raises. */
void sl__vm_ro_lib(lua_State *L, const char *name);
/**
 * Pushes a read-only view named `name` of `v`, which must not change and must outlive the
 * VM (a step's output): reads convert only the parts they reach. Raises.
 */
void sl__vm_ro_push_value(lua_State *L, const sl_value_t *v, const char *name);
/** Pushes the sandbox's `next`: plain next(), and over a read-only view, its contents. */
void sl__vm_ro_push_next(lua_State *L);
/**
 * When the value at `idx` is a read-only view, pushes the table behind it and returns
 * true; else pushes nothing. Never raises; needs two free stack slots.
 */
bool sl__vm_ro_real(lua_State *L, int idx);
/** The engine value a value-backed view at `idx` shows (steps.ID and what is in it), or
 *  NULL for anything else. Pushes nothing. */
const sl_value_t *sl__vm_ro_value(lua_State *L, int idx);

/** Sets the sandbox's pattern functions (find, match, gmatch, gsub) in a string table. */
void sl__vm_open_strmatch(lua_State *L, int string_table);

/** Builds the sandbox (helpers.c); runs protected, pushes nothing, returns 0 or SL_ENOMEM. */
int sl__vm_open_sandbox(sl_vm_t *vm);
/** A message handler turning any error object into a string (no traceback). */
int sl__vm_msgh(lua_State *L);
/** Drops Lua's "CHUNK:LINE: " position prefix for chunk `chunkname` from `msg`. */
const char *sl__vm_strip_position(const char *msg, const char *chunkname);

#endif
