/*
 * Read-only views of the tables every expression and Lua step shares: the sandbox's
 * libraries (string, table, math, utf8), vars, steps.ID, run, workflow and the `sluice`
 * module. A view (a "proxy") is an empty table whose metatable sends reads to the real
 * table and refuses writes ("attempt to modify read-only table 'vars.limit'"); its
 * __metatable is false, so a script can neither see nor replace it.
 *
 * Data proxies are made lazily: reading a table out of a proxy hands back that table's
 * proxy, made on first access and then found again in a weak cache (so `vars.x ==
 * vars.x`, and an unused proxy can be collected). A proxy holds its real table under a
 * light userdata key no script can name (the sandbox's `next` is proxy-aware, `pairs`
 * goes through __pairs, and reads through __index), so finding the real table is one raw
 * read: no map from proxies to real tables, whose weak keys would make the collector
 * work hard on every live proxy. The real tables never hold proxies and are never handed
 * out, so C code that sees through a proxy (sl__vm_ro_real: the helpers, sl__vm_pull)
 * converts plain tables.
 *
 * A view may also show an engine value instead of a table: a step's output (steps.ID),
 * immutable once the step has ended and alive as long as the run. Its REAL_KEY holds the
 * value's address (a light userdata), and reads convert only what they reach: a Lua step
 * reading the URL of each of 1,000 fetched pages never copies their bodies into Lua, and
 * one reading 15,000 outputs builds no table for them. Maps of more than
 * VALUE_SCAN_MAX keys get an index (key -> position) on first use, kept in the view.
 *
 * A proxy's name ("vars.list[2].b", for the error of a write) is found only when an error
 * asks for it: by a search from the named roots (vars, steps.ID, ...) through their real
 * tables. Reading a list of 15,000 maps makes 15,000 proxies; recording a name for each
 * would cost as much as the rest of the read.
 *
 * Library proxies read straight from the real table (their __index is the table, so
 * `string.format` costs no C call): a library holds functions and numbers, no tables.
 */
#include <string.h>

#include "vm/internal.h"

enum { UP_PROXY = 1, UP_PATH, UP_MT, UP_NEXT };

/* The key of a proxy's real table (or value), inside the proxy: its address is known to C
 * alone. INDEX_KEY: a value-backed map's index, key -> position, once it is big. */
static const char REAL_KEY, INDEX_KEY, SNAPSHOT_KEY;

#define VALUE_SCAN_MAX 8 /* a map with more keys than this is looked up through an index */

/* Stack or upvalue indices of the two maps and the data proxies' metatable. */
typedef struct ro_state {
    int proxy; /* real table -> proxy (weak values) */
    int path;  /* root proxy -> its name, "vars" (weak keys) */
    int mt;    /* the data proxies' metatable */
} ro_state_t;

static const ro_state_t upvalue_state = {lua_upvalueindex(UP_PROXY), lua_upvalueindex(UP_PATH),
                                         lua_upvalueindex(UP_MT)};

/* Replaces the real table on top of the stack with its proxy, made on first use; `root`
 * names a proxy that is not inside another. */
static void wrap_top(lua_State *L, const ro_state_t *s, const char *root)
{
    luaL_checkstack(L, 6, "read-only view");
    lua_pushvalue(L, -1);
    if (lua_rawget(L, s->proxy) == LUA_TTABLE) {
        lua_remove(L, -2);
        return;
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 1); /* [real, proxy] */
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, &REAL_KEY);
    lua_pushvalue(L, s->mt);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, s->proxy);
    if (root) {
        lua_pushvalue(L, -1);
        lua_pushstring(L, root);
        lua_rawset(L, s->path);
    }
    lua_remove(L, -2);
}

/* Pushes the real table of the proxy at `idx`; returns false (pushing something else: nil,
 * or a value-backed view's light userdata) for a non-proxy or a value-backed one. */
static bool push_real(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE) {
        lua_pushnil(L);
        return false;
    }
    return lua_rawgetp(L, idx, &REAL_KEY) == LUA_TTABLE;
}

/* The value a value-backed view at `idx` shows, or NULL. Pushes nothing. */
static const sl_value_t *view_value(lua_State *L, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        return NULL;
    const sl_value_t *v =
        lua_rawgetp(L, idx, &REAL_KEY) == LUA_TLIGHTUSERDATA ? lua_touserdata(L, -1) : NULL;
    lua_pop(L, 1);
    return v;
}

/* Pushes `v`: a scalar as itself (nil inside a container is sluice.null, as a conversion
 * makes it), a list or map as its value-backed view, made on first use. */
static void push_view(lua_State *L, const ro_state_t *s, const sl_value_t *v, int depth,
                      const char *root)
{
    if (v->type != SL_TYPE_LIST && v->type != SL_TYPE_MAP) {
        sl__vm_push_raw(L, v, depth);
        return;
    }
    luaL_checkstack(L, 6, "read-only view");
    lua_pushlightuserdata(L, (void *)v);
    if (lua_rawget(L, s->proxy) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, (void *)v);
    lua_rawsetp(L, -2, &REAL_KEY);
    lua_pushvalue(L, s->mt);
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, (void *)v);
    lua_pushvalue(L, -2);
    lua_rawset(L, s->proxy);
    if (root) {
        lua_pushvalue(L, -1);
        lua_pushstring(L, root);
        lua_rawset(L, s->path);
    }
}

/* The position of `key` (a string at stack index `key`) in map `m` shown by the view at
 * `view`, or -1: a scan of a small map, the view's index for a big one. */
static lua_Integer map_find(lua_State *L, int view, const sl_vmap_t *m, int key)
{
    size_t len;
    const char *k = lua_tolstring(L, key, &len);
    if (m->len <= VALUE_SCAN_MAX) {
        for (size_t i = 0; i < m->len; i++)
            if (m->entries[i].key->len == len && memcmp(m->entries[i].key->data, k, len) == 0)
                return (lua_Integer)i;
        return -1;
    }
    if (lua_rawgetp(L, view, &INDEX_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, m->len > INT32_MAX ? 0 : (int)m->len);
        for (size_t i = 0; i < m->len; i++) {
            lua_pushlstring(L, m->entries[i].key->data, m->entries[i].key->len);
            lua_pushinteger(L, (lua_Integer)i);
            lua_rawset(L, -3);
        }
        lua_pushvalue(L, -1);
        lua_rawsetp(L, view, &INDEX_KEY);
    }
    lua_pushvalue(L, key);
    lua_Integer at = lua_rawget(L, -2) == LUA_TNUMBER ? lua_tointeger(L, -1) : -1;
    lua_pop(L, 2);
    return at;
}

/* The number at `key` as a list position (2.0 is 2, as a table's key), or 0. */
static lua_Integer position(lua_State *L, int key)
{
    int exact = 0;
    lua_Integer i = lua_type(L, key) == LUA_TNUMBER ? lua_tointegerx(L, key, &exact) : 0;
    return exact ? i : 0;
}

/* The element of the value shown by the view at `view` under the key at `key`, or NULL. */
static const sl_value_t *value_at(lua_State *L, int view, const sl_value_t *v, int key)
{
    if (v->type == SL_TYPE_LIST) {
        lua_Integer i = position(L, key);
        return i >= 1 && (lua_Unsigned)i <= v->as.list->len ? &v->as.list->items[i - 1] : NULL;
    }
    if (lua_type(L, key) != LUA_TSTRING)
        return NULL;
    lua_Integer at = map_find(L, view, v->as.map, key);
    return at >= 0 ? &v->as.map->entries[at].value : NULL;
}

/* The hot path of every read: two raw lookups, and a proxy only for a table. */
static int l_ro_index(lua_State *L)
{
    if (lua_gettop(L) != 2)
        lua_settop(L, 2); /* only the VM calls it (the metatable is hidden): always 2 */
    int type = lua_rawgetp(L, 1, &REAL_KEY);
    if (type == LUA_TLIGHTUSERDATA) {
        const sl_value_t *child = value_at(L, 1, lua_touserdata(L, 3), 2);
        if (child == NULL)
            return 0;
        push_view(L, &upvalue_state, child, 1, NULL);
        return 1;
    }
    if (type != LUA_TTABLE)
        return 0;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, 3) == LUA_TTABLE)
        wrap_top(L, &upvalue_state, NULL);
    return 1;
}

#define NAME_DEPTH_MAX 200 /* deeper than any value can nest */

/* Pushes the key at `key` as a path step: ".name", "[3]" or "[?]". */
static void push_step(lua_State *L, int key)
{
    if (lua_type(L, key) == LUA_TSTRING)
        lua_pushfstring(L, ".%s", lua_tostring(L, key));
    else if (lua_isinteger(L, key))
        lua_pushfstring(L, "[%I]", (LUAI_UACINT)lua_tointeger(L, key));
    else
        lua_pushliteral(L, "[?]");
}

/*
 * Searches real table `t` and the tables inside it for the table at `target`; when found,
 * pushes the path to it from `t` (".list[2].b") and returns true.
 */
static bool push_path_to(lua_State *L, int t, int target, int depth)
{
    if (depth >= NAME_DEPTH_MAX)
        return false;
    luaL_checkstack(L, 6, "read-only view");
    int key = lua_gettop(L) + 1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -1) == LUA_TTABLE &&
            (lua_rawequal(L, -1, target) || push_path_to(L, key + 1, target, depth + 1))) {
            if (lua_gettop(L) == key + 1)
                lua_pushliteral(L, ""); /* the target itself: nothing below */
            push_step(L, key);
            lua_insert(L, -2);
            lua_concat(L, 2);
            lua_replace(L, key);
            lua_settop(L, key);
            return true;
        }
        lua_pop(L, 1);
    }
    return false;
}

/* Searches value `v` for `target`; when found, pushes the path to it (".list[2].b"). */
static bool push_value_path(lua_State *L, const sl_value_t *v, const sl_value_t *target, int depth)
{
    if (v == target) {
        lua_pushliteral(L, "");
        return true;
    }
    if (depth >= NAME_DEPTH_MAX || (v->type != SL_TYPE_LIST && v->type != SL_TYPE_MAP))
        return false;
    luaL_checkstack(L, 4, "read-only view");
    bool list = v->type == SL_TYPE_LIST;
    size_t len = list ? v->as.list->len : v->as.map->len;
    for (size_t i = 0; i < len; i++) {
        const sl_value_t *child = list ? &v->as.list->items[i] : &v->as.map->entries[i].value;
        if (push_value_path(L, child, target, depth + 1)) {
            if (list)
                lua_pushfstring(L, "[%I]", (LUAI_UACINT)(i + 1));
            else
                lua_pushfstring(L, ".%s", v->as.map->entries[i].key->data);
            lua_insert(L, -2);
            lua_concat(L, 2);
            return true;
        }
    }
    return false;
}

/* Pushes the name of the proxy at absolute index `idx`: "vars.list[2]", or "?". */
static void push_name(lua_State *L, int path, int idx)
{
    luaL_checkstack(L, 8, "read-only view");
    int top = lua_gettop(L);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, path) == LUA_TSTRING)
        return; /* a root */
    const sl_value_t *shown = view_value(L, idx);
    if (shown) {
        lua_pushnil(L);
        while (lua_next(L, path)) { /* root proxy, name */
            int root = lua_gettop(L) - 1;
            const sl_value_t *v = view_value(L, root);
            if (v && push_value_path(L, v, shown, 0)) {
                lua_concat(L, 2); /* name .. path */
                lua_replace(L, top + 1);
                lua_settop(L, top + 1);
                return;
            }
            lua_settop(L, root);
        }
    } else if (push_real(L, idx)) {
        int target = top + 2;
        lua_pushnil(L);
        while (lua_next(L, path)) { /* root proxy, name */
            int root = lua_gettop(L) - 1;
            if (push_real(L, root) && push_path_to(L, root + 2, target, 0)) {
                lua_remove(L, root + 2); /* the root's real table */
                lua_concat(L, 2);        /* name .. path */
                lua_replace(L, top + 1);
                lua_settop(L, top + 1);
                return;
            }
            lua_settop(L, root);
        }
    }
    lua_settop(L, top);
    lua_pushliteral(L, "?");
}

static int l_ro_newindex(lua_State *L)
{
    lua_settop(L, 2);
    push_name(L, lua_upvalueindex(UP_PATH), 1);
    const char *path = lua_tostring(L, -1);
    if (lua_type(L, 2) == LUA_TSTRING)
        return luaL_error(L, "attempt to modify read-only table '%s.%s'", path, lua_tostring(L, 2));
    if (lua_isinteger(L, 2))
        return luaL_error(L, "attempt to modify read-only table '%s[%I]'", path,
                          (LUAI_UACINT)lua_tointeger(L, 2));
    return luaL_error(L, "attempt to modify read-only table '%s'", path);
}

static int l_ro_len(lua_State *L)
{
    const sl_value_t *v = view_value(L, 1);
    if (v) {
        lua_pushinteger(L, v->type == SL_TYPE_LIST ? (lua_Integer)v->as.list->len : 0);
        return 1;
    }
    if (!push_real(L, 1))
        return luaL_error(L, "not a read-only table");
    lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
    return 1;
}

void sl__vm_ro_set_snapshot(lua_State *L, int mt, lua_CFunction fn)
{
    mt = lua_absindex(L, mt);
    lua_pushcfunction(L, fn);
    lua_rawsetp(L, mt, &SNAPSHOT_KEY);
}

bool sl__vm_ro_snapshot(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "read-only view");
    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return false;
    if (lua_rawgetp(L, -1, &SNAPSHOT_KEY) != LUA_TFUNCTION) {
        lua_pop(L, 2);
        return false;
    }
    lua_remove(L, -2);
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    return true;
}

/* Protected: the snapshot of the view at index 1. */
static int l_ro_snapshot(lua_State *L)
{
    if (!sl__vm_ro_snapshot(L, 1))
        lua_pushnil(L);
    return 1;
}

/*
 * The sandbox's `next`, and the iterator of pairs(proxy): over a proxy, next() over its
 * real table with tables handed out as proxies; over any other table, plain next().
 */
static int l_ro_next(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    const sl_value_t *v = view_value(L, 1);
    if (v) { /* the element after key 2: by position */
        size_t next = 0, len = v->type == SL_TYPE_LIST ? v->as.list->len : v->as.map->len;
        if (!lua_isnil(L, 2)) {
            lua_Integer at = -1;
            if (v->type == SL_TYPE_LIST)
                at = position(L, 2) - 1;
            else if (lua_type(L, 2) == LUA_TSTRING)
                at = map_find(L, 1, v->as.map, 2);
            if (at < 0 || (size_t)at >= len)
                return luaL_error(L, "invalid key to 'next'");
            next = (size_t)at + 1;
        }
        if (next == len) {
            lua_pushnil(L);
            return 1;
        }
        const sl_value_t *child;
        if (v->type == SL_TYPE_LIST) {
            lua_pushinteger(L, (lua_Integer)next + 1);
            child = &v->as.list->items[next];
        } else {
            lua_pushlstring(L, v->as.map->entries[next].key->data,
                            v->as.map->entries[next].key->len);
            child = &v->as.map->entries[next].value;
        }
        push_view(L, &upvalue_state, child, 1, NULL);
        return 2;
    }
    bool proxy = push_real(L, 1);
    if (!proxy) {
        lua_pop(L, 1);
        if (!sl__vm_ro_snapshot(L, 1)) /* steps, env: next() over what they show */
            lua_pushvalue(L, 1);
    }
    lua_pushvalue(L, 2);
    if (lua_next(L, 3) == 0) {
        lua_pushnil(L);
        return 1;
    }
    if (proxy && lua_type(L, -1) == LUA_TTABLE)
        wrap_top(L, &upvalue_state, NULL);
    return 2;
}

static int l_ro_pairs(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(UP_NEXT));
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* ---- setup ---------------------------------------------------------------- */

static int weak_table_ref(lua_State *L, const char *mode)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Pushes the maps and the metatable; fills `s` with their absolute indices. */
static void push_state(lua_State *L, sl_vm_t *vm, ro_state_t *s)
{
    luaL_checkstack(L, 8, "read-only view");
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ro_proxy_ref);
    s->proxy = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ro_path_ref);
    s->path = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->ro_mt_ref);
    s->mt = lua_gettop(L);
}

/* Makes a closure of `fn` with the maps and the metatable as upvalues (and `extra`). */
static void push_closure(lua_State *L, const ro_state_t *s, lua_CFunction fn, int extra)
{
    lua_pushvalue(L, s->proxy);
    lua_pushvalue(L, s->path);
    lua_pushvalue(L, s->mt);
    if (extra) {
        lua_pushvalue(L, extra);
        lua_pushcclosure(L, fn, 4);
    } else {
        lua_pushcclosure(L, fn, 3);
    }
}

void sl__vm_ro_open(lua_State *L, sl_vm_t *vm)
{
    vm->ro_proxy_ref = weak_table_ref(L, "v");
    vm->ro_path_ref = weak_table_ref(L, "k");
    lua_createtable(L, 0, 5);
    vm->ro_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ro_state_t s;
    push_state(L, vm, &s);
    push_closure(L, &s, l_ro_index, 0);
    lua_setfield(L, s.mt, "__index");
    push_closure(L, &s, l_ro_newindex, 0);
    lua_setfield(L, s.mt, "__newindex");
    push_closure(L, &s, l_ro_len, 0);
    lua_setfield(L, s.mt, "__len");
    push_closure(L, &s, l_ro_next, 0);
    lua_pushvalue(L, -1);
    vm->ro_next_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    push_closure(L, &s, l_ro_pairs, lua_gettop(L));
    lua_setfield(L, s.mt, "__pairs");
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    lua_setfield(L, s.mt, "__metatable");
    lua_pop(L, 3);
}

void sl__vm_ro_push_next(lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, sl__vm_of(L)->ro_next_ref);
}

void sl__vm_ro_wrap(lua_State *L, const char *path)
{
    if (lua_type(L, -1) != LUA_TTABLE)
        return;
    ro_state_t s;
    push_state(L, sl__vm_of(L), &s);
    lua_pushvalue(L, s.proxy - 1);
    wrap_top(L, &s, path);
    lua_replace(L, s.proxy - 1);
    lua_pop(L, 3);
}

void sl__vm_ro_wrap_child(lua_State *L, int parent)
{
    if (lua_type(L, -1) != LUA_TTABLE)
        return;
    parent = lua_absindex(L, parent);
    ro_state_t s;
    push_state(L, sl__vm_of(L), &s);
    lua_pushvalue(L, s.proxy - 1);
    if (push_real(L, parent) || lua_type(L, -1) == LUA_TLIGHTUSERDATA) {
        lua_pop(L, 1);
        wrap_top(L, &s, NULL);
    } else {
        lua_pop(L, 1); /* not from a proxy: a plain table stays as it is */
    }
    lua_replace(L, s.proxy - 1);
    lua_pop(L, 3);
}

void sl__vm_ro_lib(lua_State *L, const char *name)
{
    ro_state_t s;
    int lib = lua_gettop(L);
    push_state(L, sl__vm_of(L), &s);
    lua_createtable(L, 0, 1);
    int proxy = lua_gettop(L);
    lua_pushvalue(L, lib);
    lua_rawsetp(L, proxy, &REAL_KEY);
    lua_createtable(L, 0, 5);
    lua_pushvalue(L, lib);
    lua_setfield(L, -2, "__index");
    static const char *const shared[] = {"__newindex", "__len", "__pairs", "__metatable"};
    for (size_t i = 0; i < SL_COUNTOF(shared); i++) {
        lua_getfield(L, s.mt, shared[i]);
        lua_setfield(L, -2, shared[i]);
    }
    lua_setmetatable(L, proxy);
    lua_pushvalue(L, proxy);
    lua_pushstring(L, name);
    lua_rawset(L, s.path);
    lua_replace(L, lib);
    lua_settop(L, lib);
}

const sl_value_t *sl__vm_ro_value(lua_State *L, int idx)
{
    return view_value(L, idx);
}

bool sl__vm_ro_real(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    const sl_value_t *v = view_value(L, idx);
    if (v) {
        sl__vm_push_raw(L, v, 0); /* a plain copy: what the C helpers read */
        return true;
    }
    if (push_real(L, idx))
        return true;
    lua_pop(L, 1);
    return false;
}

int sl__vm_ro_try_snapshot(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 4) || lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return 0;
    bool computed = lua_rawgetp(L, -1, &SNAPSHOT_KEY) == LUA_TFUNCTION;
    lua_pop(L, 2);
    if (!computed)
        return 0;
    lua_pushcfunction(L, l_ro_snapshot);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TTABLE)
        return 1;
    lua_pop(L, 1);
    return -1;
}

void sl__vm_ro_push_value(lua_State *L, const sl_value_t *v, const char *name)
{
    ro_state_t s;
    push_state(L, sl__vm_of(L), &s);
    push_view(L, &s, v, 0, name);
    lua_replace(L, s.proxy);
    lua_settop(L, s.proxy);
}
