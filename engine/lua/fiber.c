/*
 * Fibers of Lua step tasks (lua/fiber.h): the driver that resumes them, the
 * ops they wait for, and sluice.sleep. Groups (gather, map) are in group.c.
 */
#include <string.h>

#include "lua/fiber.h"
#include "sched/sched.h"
#include "sched/task.h"
#include "vm/vm.h"

#define FIBER_MAGIC 0x66696272u
/* Resumes per turn of the loop before the driver lets the loop run again: a map over
 * many short functions that never wait must not hold the loop for long. */
#define TURN_RESUMES_MAX 256
/* Ended children kept per task for their coroutines to be reused. */
#define SPARES_MAX 16

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

/* Takes the fiber out of its group's children, or out of the task's spares. */
static void leave_list(fiber_t *f)
{
    lua_task_t *lt = f->lt;
    fiber_group_t *member_of = f->member_of;
    fiber_t **head = f->spare ? &lt->spares : member_of ? &member_of->children : NULL;
    if (head == NULL)
        return;
    if (f->sibling_prev)
        f->sibling_prev->sibling_next = f->sibling_next;
    else
        *head = f->sibling_next;
    if (f->sibling_next)
        f->sibling_next->sibling_prev = f->sibling_prev;
    f->sibling_prev = f->sibling_next = NULL;
    if (f->spare)
        lt->spare_count--;
    else
        member_of->running--;
    f->spare = false;
    f->member_of = NULL;
}

void sl__fiber_recycle(fiber_t *f)
{
    lua_task_t *lt = f->lt;
    if (lt->spare_count >= SPARES_MAX || f->co == NULL || f->op || f->group || f->queued ||
        lt->vm == NULL) {
        sl__fiber_kill(f);
        return;
    }
    leave_list(f);
    lua_settop(f->co, 0);
    f->index = 0;
    f->budget.preempted = false;
    f->spare = true;
    f->sibling_next = lt->spares;
    if (f->sibling_next)
        f->sibling_next->sibling_prev = f;
    lt->spares = f;
    lt->spare_count++;
}

fiber_t *sl__fiber_take_spare(lua_task_t *lt)
{
    fiber_t *f = lt->spares;
    if (f)
        leave_list(f);
    return f;
}

void sl__fiber_kill(fiber_t *f)
{
    lua_task_t *lt = f->lt;
    detach_op(f);
    if (f->group) {
        fiber_group_t *g = f->group;
        f->group = NULL;
        sl__group_free(g);
    }
    unqueue(f);
    leave_list(f);
    if (lt->vm && f->co_ref != LUA_NOREF)
        luaL_unref(sl__vm_lua(lt->vm), LUA_REGISTRYINDEX, f->co_ref);
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
    fiber_t *f = (fiber_t *)sl__vm_thread_budget(L);
    if (f == NULL || f->magic != FIBER_MAGIC || f->co != L)
        luaL_error(L, "only a Lua step can call this");
    return f;
}

fiber_t *sl__fiber_for_io(lua_State *L, const char *what)
{
    fiber_t *f = sl__fiber_of(L);
    if (!lua_isyieldable(L))
        luaL_error(L,
                   "%s cannot be called here (inside a metamethod or iterator that cannot "
                   "yield)",
                   what);
    return f;
}

/* ---- ops ------------------------------------------------------------------------- */

/*
 * Pushes "CHUNK:LINE:" of the Lua code that made the call (luaL_where's form): the first
 * Lua frame above the C function, so that `pcall(sluice.http.get, url)` still names the
 * line of the pcall (luaL_where(L, 1) would find pcall itself, and say nothing).
 */
static void fiber_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; level <= 16 && lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

/* Continuation of a fiber that waited for an op: [ok, results...] or [false, message]. */
static int k_io(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    int base = (int)ctx;
    int n = lua_gettop(L) - base;
    if (n < 1)
        return luaL_error(L, "not enough memory");
    if (!lua_toboolean(L, base + 1)) {
        fiber_where(L);
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
    lua_State *L = sl__vm_lua(f->lt->vm);
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
        if (uv_timer_init(sl__lua_host->task_loop(lt->task), &lt->turn_timer) < 0)
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
    /* The attempt's timeout, read again at each resume (an HTTP request may hold it): a
     * long C call checks it, so it cannot outlive the timeout's timer by much. */
    sl__vm_budget_set_deadline(&f->budget, sl__sched_task_deadline_ns(lt->task));
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
    lt->timed_out = lt->timed_out || f->budget.timed_out;
}

/* After a yield: the fiber waits for IO or a group, or the hook gave the loop a turn. */
static step_result_t after_yield(fiber_t *f)
{
    if (f->op)
        return STEP_NEXT;
    if (f->group) {
        sl__group_pump(f->group);
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
    sl__group_fail(g, index, message);
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
    sl__vm_mem_clear(vm);
    int nres = 0;
    lua_State *saved = sl__vm_running_enter(f->co);
    int status = lua_resume(f->co, sl__vm_lua(vm), nargs, &nres);
    sl__vm_running_leave(saved);
    budget_leave(lt, f);
    if (status == LUA_YIELD) {
        lua_pop(f->co, nres);
        return after_yield(f);
    }
    if (f == lt->main)
        return sl__lua_main_ended(lt, status, nres) ? STEP_ENDED : STEP_NEXT;
    sl__group_child_ended(f, status, nres);
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
    if (uv_timer_init(sl__lua_host->task_loop(f->lt->task), &s->timer) < 0) {
        sl__free(s);
        return luaL_error(L, "sluice.sleep: cannot start a timer");
    }
    s->op.kind = &sleep_kind;
    s->timer.data = s;
    uv_timer_start(&s->timer, on_wake, (uint64_t)(seconds * 1000 + 0.5), 0);
    return sl__fiber_wait(L, f, &s->op);
}

void sl__fiber_open(lua_State *L, int module)
{
    lua_pushcfunction(L, l_sluice_sleep);
    lua_setfield(L, module, "sleep");
}

/* Joins the arguments with spaces, as print does. */
const char *sl__lua_join_args(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (memchr(text, '\0', len) == NULL)
        return text;
    /* The log takes C strings: a NUL byte is written as \0 rather than ending the message
     * there. The joined text stays below the new buffer while it is copied. */
    luaL_Buffer escaped;
    luaL_buffinit(L, &escaped);
    for (size_t at = 0; at < len; at++) {
        if (text[at] == '\0')
            luaL_addlstring(&escaped, "\\0", 2);
        else
            luaL_addchar(&escaped, text[at]);
    }
    luaL_pushresult(&escaped);
    lua_remove(L, -2);
    return lua_tostring(L, -1);
}
