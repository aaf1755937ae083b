/*
 * sluice.gather and sluice.map (lua/fiber.h): a group of child fibers started
 * by a waiting parent fiber. The group's Lua side (the functions or the
 * function and its items, the results, the first error) is a table anchored
 * in the registry; its C side counts the children and links the live ones.
 * The first failure kills the other children and stops starting new ones;
 * the parent resumes once no child is left, with the results or the error.
 */
#include "lua/fiber.h"

/* Slots of a group's table in the registry. */
enum { GROUP_FNS = 1, GROUP_ITEMS, GROUP_RESULTS, GROUP_ERROR };

void sl__group_free(fiber_group_t *g)
{
    while (g->children)
        sl__fiber_kill(g->children);
    lua_task_t *lt = g->parent->lt;
    if (lt->vm)
        luaL_unref(sl__vm_lua(lt->vm), LUA_REGISTRYINDEX, g->ref);
    sl__free(g);
}

/* Queues the parent once every child has ended (or been killed after a failure). */
static void group_check_done(fiber_group_t *g)
{
    if (g->reported || g->running > 0 || (!g->failed && g->next <= g->total))
        return;
    g->reported = true;
    sl__fiber_ready(g->parent, 0);
}

/* Protected: the group's error message from the error object at 2 (index at 3), or
 * from the C text at 4 when that is not nil. */
static int l_group_fail(lua_State *L)
{
    fiber_group_t *g = lua_touserdata(L, 1);
    int64_t index = (int64_t)lua_tointeger(L, 3);
    const char *text = lua_touserdata(L, 4);
    if (text == NULL && (text = lua_tostring(L, 2)) == NULL)
        text = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 2));
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
    if (g->is_map)
        lua_pushfstring(L, "sluice.map: item %I failed: %s", (lua_Integer)index, text);
    else
        lua_pushfstring(L, "sluice.gather: function %I failed: %s", (lua_Integer)index, text);
    lua_rawseti(L, -2, GROUP_ERROR);
    return 0;
}

/* Records the group's first failure, from the error object on top of the main state
 * (popped) or from `text`, and kills the other children. */
void sl__group_fail(fiber_group_t *g, int64_t index, const char *text)
{
    lua_State *L = sl__vm_lua(g->parent->lt->vm);
    int base = lua_gettop(L) - (text ? 0 : 1);
    if (!g->failed) {
        g->failed = true;
        if (!lua_checkstack(L, 6)) {
            g->error_lost = true;
        } else {
            lua_pushcfunction(L, l_group_fail);
            lua_pushlightuserdata(L, g);
            if (text)
                lua_pushnil(L);
            else
                lua_pushvalue(L, base + 1);
            lua_pushinteger(L, (lua_Integer)index);
            lua_pushlightuserdata(L, (void *)text);
            if (lua_pcall(L, 4, 0, 0) != LUA_OK)
                g->error_lost = true;
        }
    }
    lua_settop(L, base);
    while (g->children)
        sl__fiber_kill(g->children);
    group_check_done(g);
}

/* Protected: the child fiber (arg 1) gets its coroutine and its function's arguments. */
static int l_group_spawn(lua_State *L)
{
    fiber_t *f = lua_touserdata(L, 1);
    fiber_group_t *g = f->member_of;
    if (f->co == NULL) {
        lua_State *co = lua_newthread(L);
        lua_pushvalue(L, -1);
        f->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        f->co = co;
    }
    lua_State *co = f->co;
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
    int table = lua_gettop(L);
    int nargs = 0;
    lua_rawgeti(L, table, GROUP_FNS);
    if (g->is_map) {
        lua_rawgeti(L, table, GROUP_ITEMS);
        lua_rawgeti(L, -1, (lua_Integer)f->index);
        lua_remove(L, -2);
        lua_pushinteger(L, (lua_Integer)f->index);
        nargs = 2;
    } else {
        lua_rawgeti(L, -1, (lua_Integer)f->index);
        lua_remove(L, -2);
    }
    if (!lua_checkstack(co, nargs + 4))
        return luaL_error(L, "not enough memory");
    lua_xmove(L, co, nargs + 1);
    f->nargs = nargs;
    return 0;
}

/* Starts the child for function or item `index`; false after failing the group. */
static bool group_spawn(fiber_group_t *g, int64_t index)
{
    lua_task_t *lt = g->parent->lt;
    fiber_t *f = sl__fiber_take_spare(lt);
    bool fresh = f == NULL;
    if (fresh && lt->fiber_count - lt->spare_count >= SL_FIBERS_MAX) {
        sl__group_fail(g, index, "too many functions running at once in one task (at most 10000)");
        return false;
    }
    if (fresh && (f = sl__fiber_new(lt)) == NULL) {
        sl__group_fail(g, index, "not enough memory");
        return false;
    }
    f->index = index;
    f->member_of = g;
    f->sibling_next = g->children;
    if (f->sibling_next)
        f->sibling_next->sibling_prev = f;
    g->children = f;
    g->running++;
    lua_State *L = sl__vm_lua(lt->vm);
    int base = lua_gettop(L);
    lua_pushcfunction(L, l_group_spawn);
    lua_pushlightuserdata(L, f);
    int status = lua_pcall(L, 1, 0, 0);
    lua_settop(L, base);
    if (status != LUA_OK) {
        sl__fiber_kill(f);
        sl__group_fail(g, index, "not enough memory");
        return false;
    }
    if (fresh) { /* a reused coroutine keeps its hook and its count */
        sl__vm_budget_start(f->co, &f->budget, lt->remaining ? lt->remaining : 1);
        f->budget.preemptible = true;
    }
    sl__fiber_ready(f, f->nargs);
    return true;
}

/* Starts children while the group is under its limit. */
void sl__group_pump(fiber_group_t *g)
{
    while (!g->failed && g->running < g->limit && g->next <= g->total) {
        int64_t index = g->next++;
        if (!group_spawn(g, index))
            break;
    }
    group_check_done(g);
}

/* Protected: stores the result at 3 for the child index at 2. */
static int l_group_store(lua_State *L)
{
    fiber_group_t *g = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
    lua_rawgeti(L, -1, GROUP_RESULTS);
    if (lua_isnil(L, 3) && g->is_map)
        lua_pushlightuserdata(L, SL_VM_NULL); /* keeps the list's length */
    else
        lua_pushvalue(L, 3);
    lua_rawseti(L, -2, lua_tointeger(L, 2));
    return 0;
}

void sl__group_child_ended(fiber_t *f, int status, int nres)
{
    fiber_group_t *g = f->member_of;
    int64_t index = f->index;
    lua_State *L = sl__vm_lua(f->lt->vm);
    int base = lua_gettop(L);
    if (!lua_checkstack(L, nres + 6)) {
        sl__fiber_kill(f);
        sl__group_fail(g, index, "not enough memory");
        return;
    }
    if (status != LUA_OK) {
        lua_xmove(f->co, L, 1); /* the error object ("not enough memory" for LUA_ERRMEM) */
        sl__fiber_kill(f);
        sl__group_fail(g, index, NULL);
        return;
    }
    lua_pushcfunction(L, l_group_store);
    lua_pushlightuserdata(L, g);
    lua_pushinteger(L, (lua_Integer)index);
    lua_xmove(f->co, L, nres);
    lua_settop(L, base + 4); /* the first result, or nil */
    status = lua_pcall(L, 3, 0, 0);
    lua_settop(L, base);
    sl__fiber_recycle(f);
    if (status != LUA_OK)
        sl__group_fail(g, index, "not enough memory");
    else
        sl__group_pump(g);
}

/* Continuation of a fiber whose gather or map ended. */
static int k_group(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    fiber_t *f = sl__fiber_of(L);
    fiber_group_t *g = f->group;
    f->group = NULL;
    bool failed = g->failed, error_lost = g->error_lost, is_map = g->is_map;
    int64_t total = g->total;
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->ref);
    g->children = NULL; /* all ended */
    sl__group_free(g);  /* unrefs the table: it is on the stack now */
    int table = lua_gettop(L);
    if (failed) {
        if (error_lost || lua_rawgeti(L, table, GROUP_ERROR) != LUA_TSTRING)
            return luaL_error(L, "%s: a function failed (not enough memory to say how)",
                              is_map ? "sluice.map" : "sluice.gather");
        luaL_where(L, 1);
        lua_insert(L, -2);
        lua_concat(L, 2);
        return lua_error(L);
    }
    lua_rawgeti(L, table, GROUP_RESULTS);
    if (is_map)
        return 1;
    luaL_checkstack(L, (int)total, "too many results");
    int results = lua_gettop(L);
    for (int64_t i = 1; i <= total; i++)
        lua_rawgeti(L, results, (lua_Integer)i);
    return (int)total;
}

/* Makes the group described by the table on top (popped) and yields the fiber to it. */
static int group_wait(lua_State *L, fiber_t *f, bool is_map, int64_t total, int64_t limit)
{
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    fiber_group_t *g = sl__calloc(1, sizeof(*g));
    if (g == NULL) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return luaL_error(L, "%s: out of memory", is_map ? "sluice.map" : "sluice.gather");
    }
    g->parent = f;
    g->is_map = is_map;
    g->ref = ref;
    g->total = total;
    g->next = 1;
    g->limit = limit;
    f->group = g; /* the driver starts the children once this fiber has yielded */
    return lua_yieldk(L, 0, 0, k_group);
}

static int l_sluice_gather(lua_State *L)
{
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        luaL_checktype(L, i, LUA_TFUNCTION);
    if (n == 0)
        return 0;
    fiber_t *f = sl__fiber_for_io(L, "sluice.gather");
    if (n > SL_FIBERS_MAX)
        return luaL_error(L, "sluice.gather: too many functions (%d; at most %d)", n,
                          SL_FIBERS_MAX);
    lua_createtable(L, 4, 0);
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i);
    }
    lua_rawseti(L, -2, GROUP_FNS);
    lua_createtable(L, n, 0);
    lua_rawseti(L, -2, GROUP_RESULTS);
    return group_wait(L, f, false, n, n);
}

/* The `concurrency` option of sluice.map. */
static int64_t map_limit(lua_State *L, int64_t total)
{
    int64_t limit = SL_MAP_CONCURRENCY_DEFAULT;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (lua_getfield(L, 3, "concurrency") != LUA_TNIL) {
            int ok = 0;
            lua_Integer n = lua_tointegerx(L, -1, &ok);
            if (!ok || n < 1)
                luaL_error(L, "sluice.map: 'concurrency' must be a positive integer");
            limit = n < SL_FIBERS_MAX ? (int64_t)n : SL_FIBERS_MAX;
        }
        lua_pop(L, 1);
    }
    return limit < total ? limit : total;
}

static int l_sluice_map(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_Integer n = luaL_len(L, 1);
    int64_t limit = map_limit(L, n);
    if (n <= 0) {
        sl__vm_new_list(L, 0);
        return 1;
    }
    if (n > SL_VM_RANGE_MAX)
        return luaL_error(L, "sluice.map: too many items (%I; at most %d)", n, SL_VM_RANGE_MAX);
    fiber_t *f = sl__fiber_for_io(L, "sluice.map");
    lua_settop(L, 2);
    lua_createtable(L, 4, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, GROUP_FNS);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 1, i); /* a read-only view's items are views too */
        lua_rawseti(L, -2, i);
    }
    lua_rawseti(L, -2, GROUP_ITEMS);
    sl__vm_new_list(L, (int)n);
    lua_rawseti(L, -2, GROUP_RESULTS);
    return group_wait(L, f, true, n, limit);
}

void sl__group_open(lua_State *L, int module)
{
    lua_pushcfunction(L, l_sluice_gather);
    lua_setfield(L, module, "gather");
    lua_pushcfunction(L, l_sluice_map);
    lua_setfield(L, module, "map");
}
