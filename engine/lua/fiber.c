/*
 * Fibers of Lua step tasks (lua/fiber.h): the driver that resumes them, the
 * ops they wait for, sluice.sleep, sluice.gather and sluice.map.
 */
#include <string.h>

#include "lua/fiber.h"
#include "plugin/registry.h"
#include "sched/task.h"

#define FIBER_MAGIC 0x66696272u
/* Resumes per turn of the loop before the driver lets the loop run again: a map over
 * many short functions that never wait must not hold the loop for long. */
#define TURN_RESUMES_MAX 256

/* Slots of a group's table in the registry. */
enum { GROUP_FNS = 1, GROUP_ITEMS, GROUP_RESULTS, GROUP_ERROR };

struct fiber_group {
    fiber_t *parent;
    bool is_map;
    bool failed;
    bool error_lost;   /* failed, and no memory was left to keep the message */
    bool reported;     /* the parent is queued to collect the outcome */
    int ref;           /* registry: the group's table (GROUP_* slots) */
    int64_t total;     /* functions or items */
    int64_t next;      /* the next one to start, 1-based */
    int64_t running;   /* live children */
    int64_t limit;     /* most children at once */
    fiber_t *children;
};

/* ---- fibers -------------------------------------------------------------------- */

fiber_t *sl__fiber_new(lua_task_t *lt)
{
    fiber_t *f = sl__calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->magic = FIBER_MAGIC;
    f->lt = lt;
    f->co_ref = LUA_NOREF;
    f->all_next = lt->fibers;
    if (f->all_next)
        f->all_next->all_prev = f;
    lt->fibers = f;
    lt->fiber_count++;
    return f;
}

static void unqueue(fiber_t *f)
{
    lua_task_t *lt = f->lt;
    if (!f->queued)
        return;
    if (f->ready_prev)
        f->ready_prev->ready_next = f->ready_next;
    else
        lt->ready_head = f->ready_next;
    if (f->ready_next)
        f->ready_next->ready_prev = f->ready_prev;
    else
        lt->ready_tail = f->ready_prev;
    f->ready_prev = f->ready_next = NULL;
    f->queued = false;
}

void sl__fiber_ready(fiber_t *f, int nargs)
{
    lua_task_t *lt = f->lt;
    f->nargs = nargs;
    if (f->queued)
        return;
    f->queued = true;
    f->ready_next = NULL;
    f->ready_prev = lt->ready_tail;
    if (lt->ready_tail)
        lt->ready_tail->ready_next = f;
    else
        lt->ready_head = f;
    lt->ready_tail = f;
}

static void group_free(fiber_group_t *g);

static void detach_op(fiber_t *f)
{
    fiber_op_t *op = f->op;
    if (op == NULL)
        return;
    f->op = NULL;
    op->fiber = NULL;
    if (op->finished)
        op->kind->free(op);
    else
        op->kind->cancel(op); /* may report (and free the op) at once */
}

void sl__fiber_kill(fiber_t *f)
{
    lua_task_t *lt = f->lt;
    detach_op(f);
    if (f->group) {
        fiber_group_t *g = f->group;
        f->group = NULL;
        group_free(g);
    }
    unqueue(f);
    fiber_group_t *member_of = f->member_of;
    if (member_of) {
        if (f->sibling_prev)
            f->sibling_prev->sibling_next = f->sibling_next;
        else
            member_of->children = f->sibling_next;
        if (f->sibling_next)
            f->sibling_next->sibling_prev = f->sibling_prev;
        member_of->running--;
    }
    if (lt->vm && f->co_ref != LUA_NOREF)
        luaL_unref(lt->vm->L, LUA_REGISTRYINDEX, f->co_ref);
    if (f->all_prev)
        f->all_prev->all_next = f->all_next;
    else
        lt->fibers = f->all_next;
    if (f->all_next)
        f->all_next->all_prev = f->all_prev;
    lt->fiber_count--;
    if (lt->main == f)
        lt->main = NULL;
    f->magic = 0;
    sl__free(f);
}

void sl__fiber_kill_all(lua_task_t *lt)
{
    if (lt->main)
        sl__fiber_kill(lt->main); /* the whole tree hangs from it */
    while (lt->fibers)
        sl__fiber_kill(lt->fibers);
}

fiber_t *sl__fiber_of(lua_State *L)
{
    sl_vm_t *vm = sl__vm_of(L);
    sl_vm_budget_t *budget = *(sl_vm_budget_t **)lua_getextraspace(L);
    fiber_t *f = (fiber_t *)budget;
    if (vm == NULL || L == vm->L || budget == NULL || budget == &vm->expr_budget ||
        f->magic != FIBER_MAGIC || f->co != L)
        luaL_error(L, "only a Lua step can call this");
    return f;
}

fiber_t *sl__fiber_for_io(lua_State *L, const char *what)
{
    fiber_t *f = sl__fiber_of(L);
    if (!lua_isyieldable(L))
        luaL_error(L, "%s cannot be called here (inside a metamethod or iterator that cannot "
                      "yield)", what);
    return f;
}

/* ---- ops ------------------------------------------------------------------------- */

/* Continuation of a fiber that waited for an op: [ok, results...] or [false, message]. */
static int k_io(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    int base = (int)ctx;
    int n = lua_gettop(L) - base;
    if (n < 1)
        return luaL_error(L, "not enough memory");
    if (!lua_toboolean(L, base + 1)) {
        luaL_where(L, 1);
        lua_pushvalue(L, base + 2);
        lua_concat(L, 2);
        return lua_error(L);
    }
    return n - 1;
}

int sl__fiber_wait(lua_State *L, fiber_t *f, fiber_op_t *op)
{
    op->fiber = f;
    op->finished = false;
    f->op = op;
    return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), k_io);
}

void sl__fiber_op_done(fiber_op_t *op)
{
    fiber_t *f = op->fiber;
    if (f == NULL) {
        op->kind->free(op);
        return;
    }
    op->finished = true;
    sl__fiber_ready(f, 0);
    sl__fiber_run(f->lt);
}

static int l_op_push(lua_State *L)
{
    fiber_op_t *op = lua_touserdata(L, 1);
    lua_settop(L, 0);
    return op->kind->push(L, op);
}

/* Moves a finished op's results onto the fiber's stack and frees the op. Returns their
 * count; 0 when memory ran out (the fiber then raises "not enough memory"). */
static int deliver(fiber_t *f)
{
    fiber_op_t *op = f->op;
    lua_State *L = f->lt->vm->L;
    int base = lua_gettop(L), n = 0;
    f->op = NULL;
    op->fiber = NULL;
    lua_pushcfunction(L, l_op_push);
    lua_pushlightuserdata(L, op);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) == LUA_OK) {
        n = lua_gettop(L) - base;
        if (lua_checkstack(f->co, n + 1))
            lua_xmove(L, f->co, n);
        else
            n = 0;
    }
    lua_settop(L, base);
    op->kind->free(op);
    return n;
}

/* ---- the driver ------------------------------------------------------------------- */

typedef enum step_result { STEP_NEXT, STEP_TURN, STEP_ENDED } step_result_t;

static void on_turn(uv_timer_t *timer)
{
    sl__fiber_run(timer->data);
}

/* Lets the loop run before the next resume. 1 ms, not 0: libuv runs a 0 ms timer started
 * from a timer callback in the same pass, starving the rest. False when it cannot. */
static bool schedule_turn(lua_task_t *lt)
{
    if (!lt->turn_timer_inited) {
        if (uv_timer_init(sl__host()->task_loop(lt->task), &lt->turn_timer) < 0)
            return false;
        lt->turn_timer.data = lt;
        lt->turn_timer_inited = true;
    }
    return uv_timer_start(&lt->turn_timer, on_turn, 1, 0) == 0;
}

static void budget_enter(lua_task_t *lt, fiber_t *f)
{
    f->budget.remaining = lt->remaining;
    f->budget.since_yield = lt->since_yield;
    f->budget.tripped = lt->tripped;
    f->budget.message = lt->budget_message;
    if (lt->tripped && f->budget.armed != 1 && lt->hook) {
        /* Another fiber spent the budget: this one fails at its next instruction. */
        f->budget.armed = 1;
        lua_sethook(f->co, lt->hook, LUA_MASKCOUNT, 1);
    }
}

static void budget_leave(lua_task_t *lt, fiber_t *f)
{
    lt->remaining = f->budget.remaining;
    lt->since_yield = f->budget.since_yield;
    lt->tripped = f->budget.tripped;
    lt->budget_message = f->budget.message;
}

static void group_pump(fiber_group_t *g);
static void group_fail_text(fiber_group_t *g, int64_t index, const char *message);
static void child_ended(fiber_t *f, int status, int nres);

/* After a yield: the fiber waits for IO or a group, or the hook gave the loop a turn. */
static step_result_t after_yield(fiber_t *f)
{
    if (f->op)
        return STEP_NEXT;
    if (f->group) {
        group_pump(f->group);
        return STEP_NEXT;
    }
    if (f->budget.preempted) {
        f->budget.preempted = false;
        sl__fiber_ready(f, 0);
        return STEP_TURN;
    }
    static const char message[] = "a Lua step yielded outside a sluice call";
    if (f == f->lt->main) {
        sl__lua_task_fail(f->lt, SL_ELUA, message);
        return STEP_ENDED;
    }
    fiber_group_t *g = f->member_of;
    int64_t index = f->index;
    sl__fiber_kill(f);
    group_fail_text(g, index, message);
    return STEP_NEXT;
}

static step_result_t step(fiber_t *f)
{
    lua_task_t *lt = f->lt;
    sl_vm_t *vm = lt->vm;
    int nargs = f->nargs;
    f->nargs = 0;
    if (f->op)
        nargs += deliver(f);
    budget_enter(lt, f);
    vm->mem_refused = false;
    int nres = 0;
    int status = lua_resume(f->co, vm->L, nargs, &nres);
    budget_leave(lt, f);
    if (status == LUA_YIELD) {
        lua_pop(f->co, nres);
        return after_yield(f);
    }
    if (f == lt->main)
        return sl__lua_main_ended(lt, status, nres) ? STEP_ENDED : STEP_NEXT;
    child_ended(f, status, nres);
    return STEP_NEXT;
}

void sl__fiber_run(lua_task_t *lt)
{
    if (lt->running || lt->vm == NULL)
        return; /* the driver on the stack picks up what was queued */
    lt->running = true;
    for (unsigned resumes = 0; lt->ready_head != NULL; resumes++) {
        step_result_t result = STEP_TURN;
        if (resumes < TURN_RESUMES_MAX) {
            fiber_t *f = lt->ready_head;
            unqueue(f);
            result = step(f);
        }
        if (result == STEP_ENDED)
            return; /* the task is freed */
        if (result == STEP_TURN) {
            if (!schedule_turn(lt)) {
                sl__lua_task_fail(lt, SL_ESYS, "cannot schedule the step's next turn");
                return;
            }
            break;
        }
    }
    lt->running = false;
}

/* ---- sluice.sleep ------------------------------------------------------------------ */

typedef struct sleep_op {
    fiber_op_t op;
    uv_timer_t timer; /* the struct is freed in its close callback */
} sleep_op_t;

static void on_sleep_closed(uv_handle_t *handle)
{
    sl__free(handle->data);
}

static void sleep_free(fiber_op_t *op)
{
    sleep_op_t *s = (sleep_op_t *)op;
    uv_close((uv_handle_t *)&s->timer, on_sleep_closed);
}

static void sleep_cancel(fiber_op_t *op)
{
    sleep_free(op); /* closing stops the timer */
}

static int sleep_push(lua_State *L, fiber_op_t *op)
{
    (void)op;
    lua_pushboolean(L, 1);
    return 1;
}

static const fiber_op_kind_t sleep_kind = {sleep_cancel, sleep_push, sleep_free};

static void on_wake(uv_timer_t *timer)
{
    sleep_op_t *s = timer->data;
    sl__fiber_op_done(&s->op);
}

static int l_sluice_sleep(lua_State *L)
{
    double seconds = luaL_checknumber(L, 1);
    luaL_argcheck(L, seconds >= 0 && seconds <= 86400.0 * 365, 1, "out of range");
    fiber_t *f = sl__fiber_for_io(L, "sluice.sleep");
    sleep_op_t *s = sl__calloc(1, sizeof(*s));
    if (s == NULL)
        return luaL_error(L, "sluice.sleep: out of memory");
    if (uv_timer_init(sl__host()->task_loop(f->lt->task), &s->timer) < 0) {
        sl__free(s);
        return luaL_error(L, "sluice.sleep: cannot start a timer");
    }
    s->op.kind = &sleep_kind;
    s->timer.data = s;
    uv_timer_start(&s->timer, on_wake, (uint64_t)(seconds * 1000 + 0.5), 0);
    return sl__fiber_wait(L, f, &s->op);
}

/* ---- groups: sluice.gather and sluice.map -------------------------------------------- */

static void group_free(fiber_group_t *g)
{
    while (g->children)
        sl__fiber_kill(g->children);
    lua_task_t *lt = g->parent->lt;
    if (lt->vm)
        luaL_unref(lt->vm->L, LUA_REGISTRYINDEX, g->ref);
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
static void group_fail(fiber_group_t *g, int64_t index, const char *text)
{
    lua_State *L = g->parent->lt->vm->L;
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

static void group_fail_text(fiber_group_t *g, int64_t index, const char *message)
{
    group_fail(g, index, message);
}

/* Protected: the child fiber (arg 1) gets its coroutine and its function's arguments. */
static int l_group_spawn(lua_State *L)
{
    fiber_t *f = lua_touserdata(L, 1);
    fiber_group_t *g = f->member_of;
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, -1);
    f->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    f->co = co;
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
    if (lt->fiber_count >= SL_FIBERS_MAX) {
        group_fail_text(g, index, "too many functions running at once in one task (at most "
                                  "10000)");
        return false;
    }
    fiber_t *f = sl__fiber_new(lt);
    if (f == NULL) {
        group_fail_text(g, index, "not enough memory");
        return false;
    }
    f->index = index;
    f->member_of = g;
    f->sibling_next = g->children;
    if (f->sibling_next)
        f->sibling_next->sibling_prev = f;
    g->children = f;
    g->running++;
    lua_State *L = lt->vm->L;
    int base = lua_gettop(L);
    lua_pushcfunction(L, l_group_spawn);
    lua_pushlightuserdata(L, f);
    int status = lua_pcall(L, 1, 0, 0);
    lua_settop(L, base);
    if (status != LUA_OK) {
        sl__fiber_kill(f);
        group_fail_text(g, index, "not enough memory");
        return false;
    }
    sl__vm_budget_start(f->co, &f->budget, lt->remaining ? lt->remaining : 1);
    f->budget.preemptible = true;
    sl__fiber_ready(f, f->nargs);
    return true;
}

/* Starts children while the group is under its limit. */
static void group_pump(fiber_group_t *g)
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

static void child_ended(fiber_t *f, int status, int nres)
{
    fiber_group_t *g = f->member_of;
    int64_t index = f->index;
    lua_State *L = f->lt->vm->L;
    int base = lua_gettop(L);
    if (!lua_checkstack(L, nres + 6)) {
        sl__fiber_kill(f);
        group_fail_text(g, index, "not enough memory");
        return;
    }
    if (status != LUA_OK) {
        lua_xmove(f->co, L, 1); /* the error object ("not enough memory" for LUA_ERRMEM) */
        sl__fiber_kill(f);
        group_fail(g, index, NULL);
        return;
    }
    lua_pushcfunction(L, l_group_store);
    lua_pushlightuserdata(L, g);
    lua_pushinteger(L, (lua_Integer)index);
    lua_xmove(f->co, L, nres);
    lua_settop(L, base + 4); /* the first result, or nil */
    status = lua_pcall(L, 3, 0, 0);
    lua_settop(L, base);
    sl__fiber_kill(f);
    if (status != LUA_OK)
        group_fail_text(g, index, "not enough memory");
    else
        group_pump(g);
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
    group_free(g);     /* unrefs the table: it is on the stack now */
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

void sl__fiber_open(lua_State *L, int module)
{
    lua_pushcfunction(L, l_sluice_sleep);
    lua_setfield(L, module, "sleep");
    lua_pushcfunction(L, l_sluice_gather);
    lua_setfield(L, module, "gather");
    lua_pushcfunction(L, l_sluice_map);
    lua_setfield(L, module, "map");
}
