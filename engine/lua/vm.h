/*
 * lua/vm: the run's Lua VM, shared by expressions and Lua steps.
 *
 * One lua_State per run with a capped allocator (a script that allocates
 * past the cap gets a Lua "not enough memory" error, the engine survives)
 * and instruction budgets enforced with count hooks. Expressions see a
 * sandbox: vars, steps (outputs of finished steps, converted lazily on first
 * access and cached), item, index, env (read-only), run {id, started},
 * workflow {name}, null, the helpers keys/values/range/len/json_encode/
 * json_decode, and the safe standard libraries (string, table, math, utf8,
 * and base functions without load/dofile/require/io/os). An expression can't
 * assign globals, and every table shared across evaluations and tasks (the
 * libraries, vars, steps.*, run, workflow) is a read-only view (readonly.c).
 * Pattern matching is charged to the instruction budget (strmatch.c), and
 * setmetatable refuses __gc (finalizers run with hooks off).
 *
 * Values cross as sl_value_t: nil inside a list or map becomes `null` (a
 * light userdata) so lengths survive; Lua sequences become lists, other
 * tables maps (keys must be strings or integers, which become strings).
 * Loop thread only.
 */
#ifndef SL_LUA_VM_H
#define SL_LUA_VM_H

#include <lua.h>
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
 * naming the path ("[3].name"). A result of more than 10,000,000 values or
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

/** The built-in plugin holding the `lua` kind (lua/step.c). */
extern const sl_plugin_t sl__lua_plugin;

#endif
