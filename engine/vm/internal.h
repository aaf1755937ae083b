/*
 * vm/internal.h: what the VM's files (vm.c, convert.c, readonly.c, helpers.c,
 * strmatch.c, pattern.c) share. Not for other modules: they use vm/vm.h.
 */
#ifndef SL_VM_INTERNAL_H
#define SL_VM_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>

#include "vm/vm.h"

#define SL_VM_DEPTH_MAX 200
/* Values in one conversion from Lua: the longest range() list and the list itself, so
 * `foreach: ${{ range(1, 10000000) }}` converts (it used to fail by one node). */
#define SL_VM_PULL_NODES_MAX (SL_VM_RANGE_MAX + 1)

typedef struct sl_vm_attachment {
    const void *key;
    void *data;
    void (*detach)(void *data);
} sl_vm_attachment_t;

struct sl_vm {
    lua_State *L;
    sl_vm_scope_t scope;
    char *workflow_name;
    char *run_id;
    size_t mem_used;
    size_t mem_max;
    bool mem_refused; /* the allocator refused a request since last cleared */
    uint64_t expr_instructions;
    sl_vm_budget_t expr_budget; /* the main thread's */
    int env_ref;                /* the sandbox: the expression scope (a read-only proxy) */
    int env_real_ref;           /* the table behind it */
    int ro_proxy_ref, ro_path_ref, ro_mt_ref, ro_next_ref; /* vm/readonly.c's state */
    int cache_ref;       /* compiled expressions, keyed by light userdata */
    int list_mt_ref;     /* metatable marking tables that came from lists */
    const void *list_mt; /* its identity, for sl__vm_pull */
    sl_vm_attachment_t attached[SL_VM_ATTACHED_MAX]; /* the embedders' state (sl__vm_attach) */
};

/** Sets up read-only views (readonly.c). Raises. */
void sl__vm_ro_open(lua_State *L, sl_vm_t *vm);
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

/**
 * Views computed on read (steps, env): `fn(proxy)` pushes a plain table of everything the
 * proxy shows (a snapshot), so whole-table reads (pairs, next, keys, values, len,
 * json_encode, a Lua step's result) see the contents rather than an empty proxy. Sets it
 * in metatable `mt`. Raises.
 */
void sl__vm_ro_set_snapshot(lua_State *L, int mt, lua_CFunction fn);
/** Pushes the snapshot of the computed view at `idx` and returns true; else pushes nothing.
 *  Raises (out of memory). */
bool sl__vm_ro_snapshot(lua_State *L, int idx);
/** The same, protected: 1 pushed, 0 not a computed view, -1 it failed (out of memory);
 *  pushes nothing but for 1. */
int sl__vm_ro_try_snapshot(lua_State *L, int idx);

/** Sets the sandbox's pattern functions (find, match, gmatch, gsub) in a string table. */
void sl__vm_open_strmatch(lua_State *L, int string_table);

/** Replaces string.rep in a string table, and table.concat/move/insert in a table table,
 *  by versions that charge their C work first (costly.c). */
void sl__vm_open_costly(lua_State *L, int lib_table, const char *name);

/** Builds the sandbox (helpers.c); runs protected, pushes nothing, returns 0 or SL_ENOMEM. */
int sl__vm_open_sandbox(sl_vm_t *vm);
/** Drops Lua's "CHUNK:LINE: " position prefix for chunk `chunkname` from `msg`. */
const char *sl__vm_strip_position(const char *msg, const char *chunkname);

#endif
