/*
 * The sandbox every expression (and, through its scope, every Lua step)
 * sees: safe base functions, copies of string/table/math/utf8, the run's
 * names (vars, steps, env, run, workflow) and the helpers of SPEC §2.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "vm/internal.h"

/* ---- boxes: C allocations that Lua's __gc frees if an error unwinds ----- */

void sl__vm_box_clear(sl_vm_box_t *box)
{
    sl_value_free(box->value);
    sl__free(box->text);
    box->value = NULL;
    box->text = NULL;
}

static int l_box_gc(lua_State *L)
{
    sl__vm_box_clear(lua_touserdata(L, 1));
    return 0;
}

sl_vm_box_t *sl__vm_box(lua_State *L)
{
    sl_vm_box_t *box = lua_newuserdatauv(L, sizeof(*box), 0);
    box->value = NULL;
    box->text = NULL;
    if (luaL_newmetatable(L, "sluice.box")) {
        lua_pushcfunction(L, l_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return box;
}

/* ---- charging the helpers' C work -------------------------------------------------- */

/* The instructions a helper's C loop over `n` elements is worth: an eighth of one an
 * element counted (as vm/costly.c counts), a quarter of one per comparison when it sorts
 * them (keys() compares strings and then builds the list, whose garbage is collected). */
static uint64_t helper_units(uint64_t n, bool sorts)
{
    if (!sorts)
        return n / 8 + 1;
    uint64_t log2n = 1;
    for (uint64_t m = n; m > 1; m >>= 1)
        log2n++;
    return n / 4 * log2n + 1;
}

/* The values in `v`, itself included; a walk of what json_encode writes. */
static uint64_t value_nodes(const sl_value_t *v, int depth)
{
    uint64_t n = 1;
    if (depth > 256 || v == NULL)
        return n;
    if (v->type == SL_TYPE_LIST)
        for (size_t i = 0; i < v->as.list->len; i++)
            n += value_nodes(&v->as.list->items[i], depth + 1);
    else if (v->type == SL_TYPE_MAP)
        for (size_t i = 0; i < v->as.map->len; i++)
            n += value_nodes(&v->as.map->entries[i].value, depth + 1);
    return n;
}

/* ---- keys, values ------------------------------------------------------- */

typedef struct sort_key {
    const char *str; /* NULL for numbers */
    size_t len;
    lua_Number num;
    lua_Integer integer;
    bool is_int;
} sort_key_t;

static int compare_keys(const void *pa, const void *pb)
{
    const sort_key_t *a = pa, *b = pb;
    if ((a->str == NULL) != (b->str == NULL))
        return a->str == NULL ? -1 : 1; /* numbers first */
    if (a->str) {
        int cmp = memcmp(a->str, b->str, a->len < b->len ? a->len : b->len);
        return cmp ? cmp : (a->len > b->len) - (a->len < b->len);
    }
    if (a->is_int && b->is_int)
        return (a->integer > b->integer) - (a->integer < b->integer);
    return (a->num > b->num) - (a->num < b->num);
}

/* Pushes a userdata array of the table's keys in sorted order; returns the count. */
static size_t sorted_keys(lua_State *L, int t, sort_key_t **out)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        n++;
    }
    sl__vm_charge(L, helper_units(n, true)); /* the walk, the sort and the list to come */
    sort_key_t *keys = lua_newuserdatauv(L, n ? n * sizeof(*keys) : 1, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0 && i < n) {
        lua_pop(L, 1);
        sort_key_t *k = &keys[i++];
        memset(k, 0, sizeof(*k));
        if (lua_type(L, -1) == LUA_TSTRING) {
            k->str = lua_tolstring(L, -1, &k->len);
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            k->is_int = lua_isinteger(L, -1);
            k->integer = lua_tointeger(L, -1);
            k->num = lua_tonumber(L, -1);
        } else {
            luaL_error(L, "cannot sort a key of type %s", luaL_typename(L, -1));
        }
    }
    qsort(keys, n, sizeof(*keys), compare_keys);
    *out = keys;
    return n;
}

static void push_key(lua_State *L, const sort_key_t *k)
{
    if (k->str)
        lua_pushlstring(L, k->str, k->len);
    else if (k->is_int)
        lua_pushinteger(L, k->integer);
    else
        lua_pushnumber(L, k->num);
}

/* keys(t) and values(t); a read-only view is read through, its tables handed out as views. */
static int keys_or_values(lua_State *L, bool values)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    int t = 1;
    if (sl__vm_ro_snapshot(L, 1) || sl__vm_ro_real(L, 1))
        t = 2;
    sort_key_t *keys;
    size_t n = sorted_keys(L, t, &keys);
    sl__vm_new_list(L, n > INT32_MAX ? 0 : (int)n);
    for (size_t i = 0; i < n; i++) {
        push_key(L, &keys[i]);
        if (values) {
            int key = lua_gettop(L);
            lua_pushvalue(L, key);
            lua_rawget(L, t);
            sl__vm_ro_wrap_child(L, 1);
            lua_remove(L, key);
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int l_sandbox_keys(lua_State *L)
{
    return keys_or_values(L, false);
}

static int l_sandbox_values(lua_State *L)
{
    return keys_or_values(L, true);
}

/* ---- range, len --------------------------------------------------------- */

/* The elements of range(first, last, step) minus one, in unsigned arithmetic (the span of
 * two lua_Integers can exceed any of them); false when there are none. */
static bool range_count(lua_Integer first, lua_Integer last, lua_Integer step, uint64_t *minus_one)
{
    uint64_t span, stride;
    if (step > 0) {
        if (last < first)
            return false;
        span = (uint64_t)last - (uint64_t)first;
        stride = (uint64_t)step;
    } else {
        if (last > first)
            return false;
        span = (uint64_t)first - (uint64_t)last;
        stride = 0 - (uint64_t)step;
    }
    *minus_one = span / stride;
    return true;
}

static int l_sandbox_range(lua_State *L)
{
    lua_Integer first = luaL_checkinteger(L, 1), last = luaL_checkinteger(L, 2);
    lua_Integer step = luaL_optinteger(L, 3, 1);
    luaL_argcheck(L, step != 0, 3, "step is zero");
    uint64_t minus_one = 0;
    bool any = range_count(first, last, step, &minus_one);
    if (any && minus_one >= SL_VM_RANGE_MAX) {
        char count[32]; /* minus_one + 1 may be 2^64 */
        if (minus_one == UINT64_MAX)
            snprintf(count, sizeof(count), "18446744073709551616");
        else
            snprintf(count, sizeof(count), "%" PRIu64, minus_one + 1);
        return luaL_error(L, "range(%I, %I) has %s elements, more than the limit of %d",
                          (LUAI_UACINT)first, (LUAI_UACINT)last, count, SL_VM_RANGE_MAX);
    }
    int n = any ? (int)minus_one + 1 : 0;
    /* Half an instruction an element (repeated range() calls used to be free): building
     * and later collecting a list of ten million integers takes as long as some millions
     * of instructions, and one such range still fits in an expression's budget. */
    sl__vm_charge(L, (uint64_t)n / 2 + 1);
    sl__vm_new_list(L, n);
    uint64_t value = (uint64_t)first, stride = (uint64_t)step; /* wraps like two's complement */
    for (int i = 0; i < n; i++, value += stride) {
        lua_pushinteger(L, (lua_Integer)value);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_sandbox_len(lua_State *L)
{
    switch (lua_type(L, 1)) {
    case LUA_TNIL:
        lua_pushinteger(L, 0);
        return 1;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, 1) == SL_VM_NULL) {
            lua_pushinteger(L, 0);
            return 1;
        }
        break;
    case LUA_TSTRING:
        lua_pushinteger(L, (lua_Integer)lua_rawlen(L, 1));
        return 1;
    case LUA_TTABLE: {
        lua_Integer n = 0;
        lua_settop(L, 1);
        int t = sl__vm_ro_snapshot(L, 1) || sl__vm_ro_real(L, 1) ? 2 : 1;
        lua_pushnil(L);
        while (lua_next(L, t) != 0) {
            lua_pop(L, 1);
            n++;
        }
        sl__vm_charge(L, helper_units((uint64_t)n, false));
        lua_pushinteger(L, n);
        return 1;
    }
    default:
        break;
    }
    return luaL_error(L, "len() takes a string, list or map, not a %s", luaL_typename(L, 1));
}

/* ---- JSON, through the value type's one JSON path ----------------------- */

static int l_sandbox_json_encode(lua_State *L)
{
    lua_settop(L, 1);
    sl_vm_box_t *box = sl__vm_box(L);
    char err[256];
    int rc = sl__vm_pull(L, 1, &box->value, err, sizeof(err));
    if (rc < 0)
        return luaL_error(L, "json_encode: %s", rc == SL_ENOMEM ? "out of memory" : err);
    sl__vm_charge(L, value_nodes(box->value, 0) + 1); /* converted, then written */
    size_t len = 0;
    if (sl_value_to_json(box->value, &box->text, &len) < 0)
        return luaL_error(L, "json_encode: the text is too large");
    lua_pushlstring(L, box->text, len);
    sl__vm_box_clear(box);
    return 1;
}

static int l_sandbox_json_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    sl__vm_charge(L, len / 2 + 1); /* parsing, then as many values pushed */
    sl_vm_box_t *box = sl__vm_box(L);
    char err[256];
    if (sl_value_from_json(text, len, &box->value, err, sizeof(err)) < 0)
        return luaL_error(L, "json_decode: %s", err);
    sl__vm_push_raw(L, box->value, 0);
    sl__vm_box_clear(box);
    return 1;
}

/* ---- url_join: handed in from above ------------------------------------- */

/* URL resolution needs libcurl, which io/ opens and vm/ may not reach: the lua kind hands
 * its function in once per process (sl__vm_set_url_join), before any VM runs. */
static lua_CFunction url_join_fn;

void sl__vm_set_url_join(lua_CFunction fn)
{
    url_join_fn = fn;
}

static int l_sandbox_url_join(lua_State *L)
{
    if (url_join_fn == NULL)
        return luaL_error(L, "url_join is not available (no URL library in this process)");
    return url_join_fn(L);
}

/* ---- proxies: steps, env, the sandbox itself ----------------------------- */

/* steps.ID: a view of the step's output (ended, so it no longer changes, and kept until the
 * run ends), kept in the closure's cache table, so the proxy itself stays empty and every
 * write reaches __newindex. */
static int l_steps_index(lua_State *L)
{
    sl_vm_t *vm = sl__vm_of(L);
    if (lua_type(L, 2) != LUA_TSTRING)
        return 0;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    const sl_value_t *out = NULL;
    if (vm->scope.step_output == NULL ||
        !vm->scope.step_output(vm->scope.ud, lua_tostring(L, 2), &out))
        return 0;
    const char *path = lua_pushfstring(L, "steps.%s", lua_tostring(L, 2));
    sl__vm_ro_push_value(L, out, path);
    lua_remove(L, -2);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, lua_upvalueindex(1));
    return 1;
}

static int l_env_index(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    const char *value = lua_type(L, 2) == LUA_TSTRING ? getenv(name) : NULL;
    if (value == NULL)
        return 0;
    lua_pushstring(L, value);
    return 1;
}

/* The snapshot of `steps` (argument 1): every finished step's output, read through the
 * proxy so each is the same view steps.ID gives. */
static int l_steps_snapshot(lua_State *L)
{
    sl_vm_t *vm = sl__vm_of(L);
    lua_newtable(L);
    for (size_t i = 0; vm->scope.step_name; i++) {
        const char *name = vm->scope.step_name(vm->scope.ud, i);
        if (name == NULL)
            break;
        if (lua_getfield(L, 1, name) == LUA_TNIL)
            lua_pop(L, 1);
        else
            lua_setfield(L, -2, name);
    }
    return 1;
}

extern char **environ;

/* The snapshot of `env`: the process environment as a map of strings. */
static int l_env_snapshot(lua_State *L)
{
    lua_newtable(L);
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || eq == *e)
            continue;
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
    return 1;
}

/* pairs(steps), pairs(env): next() over their snapshot. */
static int l_computed_pairs(lua_State *L)
{
    sl__vm_ro_push_next(L);
    if (!sl__vm_ro_snapshot(L, 1))
        lua_newtable(L);
    lua_pushnil(L);
    return 3;
}

static int l_readonly_newindex(lua_State *L)
{
    return luaL_error(L, "%s is read-only", lua_tostring(L, lua_upvalueindex(1)));
}

static int l_sandbox_newindex(lua_State *L)
{
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    return luaL_error(L, "cannot assign '%s' in an expression", name);
}

/* setmetatable without finalizers: Lua runs __gc with hooks off, so no budget could stop
 * one that loops (in a GC step or in lua_close). Otherwise base library's setmetatable. */
static int l_sandbox_setmetatable(lua_State *L)
{
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed");
        lua_pop(L, 1);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return luaL_error(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

static int l_null_tostring(lua_State *L)
{
    lua_pushliteral(L, "null");
    return 1;
}

/* Pushes a table whose metatable routes reads to `index` (given an empty table as its
 * upvalue, for caching) and whole-table reads to `snapshot`, and refuses writes. */
static void push_proxy(lua_State *L, lua_CFunction index, lua_CFunction snapshot,
                       const char *name)
{
    lua_newtable(L);
    lua_createtable(L, 0, 5);
    sl__vm_ro_set_snapshot(L, -1, snapshot);
    lua_pushcfunction(L, l_computed_pairs);
    lua_setfield(L, -2, "__pairs");
    lua_newtable(L);
    lua_pushcclosure(L, index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name);
    lua_pushcclosure(L, l_readonly_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
}

/* ---- building the sandbox ------------------------------------------------ */

static const char *const base_names[] = {
    "assert",   "error", "ipairs", "next",     "pairs",  "pcall",  "select",       "tonumber",
    "tostring", "type",  "xpcall", "rawequal", "rawget", "rawlen", "getmetatable", "_VERSION",
};
static const char *const lib_names[] = {"string", "table", "math", "utf8"};

static const luaL_Reg sandbox_helpers[] = {
    {"keys", l_sandbox_keys},
    {"values", l_sandbox_values},
    {"range", l_sandbox_range},
    {"len", l_sandbox_len},
    {"json_encode", l_sandbox_json_encode},
    {"json_decode", l_sandbox_json_decode},
    {"url_join", l_sandbox_url_join},
    {"setmetatable", l_sandbox_setmetatable},
    {NULL, NULL},
};

/* env[name] = a read-only view of a copy of _G[name]. The string copy has no dump and has
 * the budgeted pattern functions (strmatch.c); strings' methods ("x"):upper() use it too. */
static void copy_lib(lua_State *L, int env, const char *name)
{
    lua_getglobal(L, name);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    if (strcmp(name, "string") == 0) {
        lua_pushnil(L);
        lua_setfield(L, -2, "dump");
        sl__vm_open_strmatch(L, -1);
        lua_pushliteral(L, "");
        lua_getmetatable(L, -1);
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "__index");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 2);
    }
    sl__vm_open_costly(L, lua_gettop(L), name);
    sl__vm_ro_lib(L, name);
    lua_setfield(L, env, name);
    lua_pop(L, 1);
}

static void set_names(lua_State *L, sl_vm_t *vm, int env)
{
    sl__vm_push_raw(L, vm->scope.vars, 0);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    sl__vm_ro_wrap(L, "vars");
    lua_setfield(L, env, "vars");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, vm->run_id ? vm->run_id : "");
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, (lua_Integer)vm->scope.run_started);
    lua_setfield(L, -2, "started");
    sl__vm_ro_wrap(L, "run");
    lua_setfield(L, env, "run");
    lua_createtable(L, 0, 1);
    lua_pushstring(L, vm->workflow_name ? vm->workflow_name : "");
    lua_setfield(L, -2, "name");
    sl__vm_ro_wrap(L, "workflow");
    lua_setfield(L, env, "workflow");
    push_proxy(L, l_steps_index, l_steps_snapshot, "steps");
    lua_setfield(L, env, "steps");
    push_proxy(L, l_env_index, l_env_snapshot, "env");
    lua_setfield(L, env, "env");
    lua_pushlightuserdata(L, SL_VM_NULL);
    lua_setfield(L, env, "null");
}

static void set_null_metatable(lua_State *L)
{
    lua_pushlightuserdata(L, SL_VM_NULL);
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, l_null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "null");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* The list marker: protected, or a script could give every list a __gc or an __index. */
static void make_list_marker(lua_State *L, sl_vm_t *vm)
{
    lua_createtable(L, 0, 2);
    lua_pushliteral(L, "list");
    lua_setfield(L, -2, "__name");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    vm->list_mt = lua_topointer(L, -1);
    vm->list_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Replaces the sandbox table on top with an empty table reading from it: assigning a global,
 * new or existing (`string = 1`), reaches __newindex and fails. */
static void protect_env(lua_State *L, sl_vm_t *vm)
{
    lua_pushvalue(L, -1);
    vm->env_real_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_sandbox_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setmetatable(L, -2);
    lua_remove(L, -2);
}

static int l_vm_setup(lua_State *L)
{
    sl_vm_t *vm = lua_touserdata(L, 1);
    luaL_openlibs(L);
    make_list_marker(L, vm);
    sl__vm_ro_open(L, vm);
    lua_newtable(L);
    vm->cache_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    set_null_metatable(L);
    lua_createtable(L, 0, 48);
    int env = lua_gettop(L);
    for (size_t i = 0; i < SL_COUNTOF(base_names); i++) {
        lua_getglobal(L, base_names[i]);
        lua_setfield(L, env, base_names[i]);
    }
    sl__vm_ro_push_next(L); /* next(proxy) walks what the proxy shows, not its insides */
    lua_setfield(L, env, "next");
    for (size_t i = 0; i < SL_COUNTOF(lib_names); i++)
        copy_lib(L, env, lib_names[i]);
    luaL_setfuncs(L, sandbox_helpers, 0);
    set_names(L, vm, env);
    protect_env(L, vm);
    vm->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int sl__vm_open_sandbox(sl_vm_t *vm)
{
    lua_State *L = vm->L;
    lua_pushcfunction(L, l_vm_setup);
    lua_pushlightuserdata(L, vm);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_pop(L, 1);
        return SL_ENOMEM;
    }
    return 0;
}
