/*
 * The run's Lua VM: a capped allocator, instruction budgets through count
 * hooks, and expression evaluation. Each expression is compiled once into
 *
 *     local _ENV, item, index = ...; return (SRC
 *     )
 *
 * so one function serves every task: the sandbox, item and index arrive as
 * arguments (no per-call table, no upvalue writes), and the compiled function
 * sits in a registry table keyed by the caller's stable pointer.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/internal.h"

#define VM_MEMORY_DEFAULT ((size_t)256 << 20)
#define VM_EXPR_INSTRUCTIONS_DEFAULT 10000000u

/* ---- allocator ---------------------------------------------------------- */

/* Counts every byte; refuses growth past the cap, so Lua raises "not enough memory". */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    sl_vm_t *vm = ud;
    if (ptr == NULL)
        osize = 0; /* then osize is a type tag, not a size */
    if (nsize == 0) {
        free(ptr);
        vm->mem_used -= osize;
        return NULL;
    }
    if (nsize > osize && vm->mem_used + (nsize - osize) > vm->mem_max) {
        vm->mem_refused = true;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p == NULL)
        return NULL;
    vm->mem_used = vm->mem_used - osize + nsize;
    return p;
}

static int vm_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    sl__log_write(SL_LOG_ERROR, NULL, NULL, "Lua panic: %s", msg ? msg : "?");
    abort();
}

/* ---- budgets ------------------------------------------------------------ */

/* The hook fires at least this often, so C work charged between two firings (pattern
 * matching) is noticed within this many instructions. */
#define VM_HOOK_CHUNK 1000000
/* A Lua step computing without sluice calls yields after about this many instructions
 * (some tens of milliseconds), so timers, signals and other tasks get their turn. */
#define VM_SLICE_INSTRUCTIONS 5000000
#define BUDGET_MESSAGE "instruction budget exceeded"
#define BUDGET_MESSAGE_PATTERN "instruction budget exceeded (pattern matching)"

static void budget_hook(lua_State *L, lua_Debug *ar);

static void budget_arm(lua_State *L, sl_vm_budget_t *budget)
{
    uint64_t chunk = budget->remaining < VM_HOOK_CHUNK ? budget->remaining : VM_HOOK_CHUNK;
    budget->armed = chunk ? (int)chunk : 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, budget->armed);
}

/* Marks the budget spent; the hook stays armed at one instruction, so code that catches the
 * error with pcall fails again at its next instruction. */
static void budget_trip(lua_State *L, sl_vm_budget_t *budget, const char *message)
{
    if (!budget->tripped)
        budget->message = message;
    budget->tripped = true;
    budget->remaining = 0;
    budget->armed = 1;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
}

/* ---- the watchdog's pokes ------------------------------------------------- */

static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static lua_State *running_thread; /* the loop thread's Lua code now running; running_lock */
static atomic_int poke_pending;   /* SL_VM_POKE_* bits not yet seen by the running code */

#define BUDGET_MESSAGE_ABORT "interrupted (the run is being stopped)"
#define BUDGET_MESSAGE_TIMEOUT "timed out"
#define CLOCK_EVERY_UNITS 65536 /* charged C work between two reads of the clock */

lua_State *sl__vm_running_enter(lua_State *L)
{
    pthread_mutex_lock(&running_lock);
    lua_State *saved = running_thread;
    running_thread = L;
    pthread_mutex_unlock(&running_lock);
    return saved;
}

void sl__vm_running_leave(lua_State *saved)
{
    pthread_mutex_lock(&running_lock);
    running_thread = saved;
    if (saved == NULL)
        atomic_store(&poke_pending, 0);
    pthread_mutex_unlock(&running_lock);
}

bool sl__vm_poke(int what)
{
    pthread_mutex_lock(&running_lock);
    lua_State *L = running_thread;
    if (L) {
        atomic_fetch_or(&poke_pending, what);
        /* Only code under a budget has the hook; the engine's own calls finish by
         * themselves. Asynchronous lua_sethook is what Lua's own interpreter does on
         * SIGINT (ldebug.c states the assumptions). */
        if (lua_gethook(L) == budget_hook)
            lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    }
    pthread_mutex_unlock(&running_lock);
    return L != NULL;
}

void sl__vm_budget_set_deadline(sl_vm_budget_t *budget, uint64_t deadline_ns)
{
    budget->deadline_ns = deadline_ns;
    budget->unclocked = 0;
}

/* Why the budget must trip now, apart from running out: a poke to abort, or the deadline
 * passed (read from the clock when `clock`). NULL when it may go on. */
static const char *budget_stop_reason(sl_vm_budget_t *budget, bool clock)
{
    if (atomic_load_explicit(&poke_pending, memory_order_relaxed) & SL_VM_POKE_ABORT)
        return BUDGET_MESSAGE_ABORT;
    if (clock && budget->deadline_ns && sl__clock_now_ns() >= budget->deadline_ns) {
        budget->timed_out = true;
        return BUDGET_MESSAGE_TIMEOUT;
    }
    return NULL;
}

/* Trips the budget for `message` and raises it, with the position when the hook has one. */
static void budget_raise(lua_State *L, lua_Debug *ar, sl_vm_budget_t *budget,
                         const char *message)
{
    budget_trip(L, budget, message);
    if (ar && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        lua_pushfstring(L, "%s:%d: %s", ar->short_src, ar->currentline, message);
    else
        lua_pushstring(L, message);
    lua_error(L);
}

/* A Lua step that computes for a while gives the loop a turn (timers, signals, other
 * tasks) every slice, or when the watchdog asks. Where a C call without a continuation
 * is on the stack it cannot yield: a later firing will. */
static void budget_maybe_yield(lua_State *L, sl_vm_budget_t *budget, uint64_t spent, bool asked)
{
    budget->since_yield += spent;
    if (budget->preemptible && (asked || budget->since_yield >= VM_SLICE_INSTRUCTIONS) &&
        lua_isyieldable(L)) {
        budget->since_yield = 0;
        budget->preempted = true;
        lua_yield(L, 0); /* from a hook: the last call, no values */
    }
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    sl_vm_budget_t *budget = *(sl_vm_budget_t **)lua_getextraspace(L);
    if (budget == NULL || ar->event != LUA_HOOKCOUNT)
        return;
    int poke = atomic_load_explicit(&poke_pending, memory_order_relaxed);
    if (poke & SL_VM_POKE_TURN)
        atomic_fetch_and(&poke_pending, ~SL_VM_POKE_TURN);
    /* A poke fires the hook early (its count set to 1): what ran since the arm is unknown
     * and at most `armed`. Charging it all would spend a budget that charged C calls (the
     * pattern matcher) are using up, and the one that runs out would be misnamed. */
    uint64_t spent = poke & SL_VM_POKE_TURN ? 1 : (uint64_t)budget->armed;
    budget->remaining -= spent < budget->remaining ? spent : budget->remaining;
    const char *stop = budget_stop_reason(budget, true);
    if (stop)
        budget_raise(L, ar, budget, stop);
    if (budget->remaining > 0 && !budget->tripped) {
        budget_arm(L, budget);
        budget_maybe_yield(L, budget, spent, (poke & SL_VM_POKE_TURN) != 0);
        return;
    }
    budget_raise(L, ar, budget, budget->tripped ? budget->message : BUDGET_MESSAGE);
}

void sl__vm_budget_start(lua_State *L, sl_vm_budget_t *budget, uint64_t instructions)
{
    *(sl_vm_budget_t **)lua_getextraspace(L) = budget;
    budget->remaining = instructions ? instructions : 1;
    budget->tripped = false;
    budget->message = BUDGET_MESSAGE;
    budget->preemptible = false;
    budget->preempted = false;
    budget->since_yield = 0;
    budget->timed_out = false;
    budget->unclocked = 0;
    budget_arm(L, budget);
}

void sl__vm_budget_stop(lua_State *L)
{
    lua_sethook(L, NULL, 0, 0);
}

/* For charged C work: raises when the budget must stop (a poke to abort, the deadline),
 * reading the clock once per CLOCK_EVERY_UNITS units. */
static void budget_check_stop(lua_State *L, sl_vm_budget_t *budget, uint64_t units)
{
    budget->unclocked += units;
    bool clock = budget->unclocked >= CLOCK_EVERY_UNITS;
    if (clock)
        budget->unclocked = 0;
    const char *stop = budget_stop_reason(budget, clock);
    if (stop) {
        budget_trip(L, budget, stop);
        luaL_error(L, "%s", stop);
    }
}

uint64_t sl__vm_budget_take(lua_State *L, uint64_t want)
{
    sl_vm_budget_t *budget = *(sl_vm_budget_t **)lua_getextraspace(L);
    if (budget == NULL || lua_gethook(L) != budget_hook)
        return want; /* no budget running: the engine's own call */
    if (budget->tripped || budget->remaining == 0) {
        budget_trip(L, budget, BUDGET_MESSAGE_PATTERN);
        luaL_error(L, BUDGET_MESSAGE_PATTERN);
    }
    budget_check_stop(L, budget, want);
    uint64_t taken = want < budget->remaining ? want : budget->remaining;
    budget->remaining -= taken;
    return taken;
}

bool sl__vm_mem_exceeds(lua_State *L, double bytes)
{
    void *ud;
    if (lua_getallocf(L, &ud) != vm_alloc)
        return false;
    const sl_vm_t *vm = ud;
    return bytes > (double)(vm->mem_max - vm->mem_used);
}

void sl__vm_charge(lua_State *L, uint64_t units)
{
    sl_vm_budget_t *budget = *(sl_vm_budget_t **)lua_getextraspace(L);
    if (budget == NULL || lua_gethook(L) != budget_hook)
        return; /* no budget running: the engine's own call */
    if (budget->tripped || budget->remaining < units) {
        budget_trip(L, budget, BUDGET_MESSAGE);
        luaL_error(L, BUDGET_MESSAGE);
    }
    budget_check_stop(L, budget, units);
    budget->remaining -= units;
}

void sl__vm_budget_refund(lua_State *L, uint64_t unused)
{
    sl_vm_budget_t *budget = *(sl_vm_budget_t **)lua_getextraspace(L);
    if (budget && !budget->tripped)
        budget->remaining += unused;
}

/* ---- errors ------------------------------------------------------------- */

int sl__vm_msgh(lua_State *L)
{
    if (lua_type(L, 1) == LUA_TSTRING)
        return 1;
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        return 1;
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

const char *sl__vm_strip_position(const char *msg, const char *chunkname)
{
    const char *name = chunkname + (chunkname[0] == '=' || chunkname[0] == '@');
    size_t n = strlen(name);
    if (strncmp(msg, name, n) != 0 || msg[n] != ':')
        return msg;
    const char *p = msg + n + 1;
    while (*p >= '0' && *p <= '9')
        p++;
    return p[0] == ':' && p[1] == ' ' ? p + 2 : msg;
}

/* ---- lifetime ----------------------------------------------------------- */

int sl__vm_new(const sl_vm_scope_t *scope, const sl_vm_limits_t *limits, sl_vm_t **out)
{
    *out = NULL;
    sl_vm_t *vm = sl__calloc(1, sizeof(*vm));
    if (vm == NULL)
        return SL_ENOMEM;
    if (scope)
        vm->scope = *scope;
    vm->mem_max = limits && limits->memory_bytes ? limits->memory_bytes : VM_MEMORY_DEFAULT;
    vm->expr_instructions = limits && limits->expr_instructions ? limits->expr_instructions
                                                                : VM_EXPR_INSTRUCTIONS_DEFAULT;
    vm->env_ref = vm->env_real_ref = vm->cache_ref = vm->list_mt_ref = LUA_NOREF;
    vm->ro_proxy_ref = vm->ro_path_ref = vm->ro_mt_ref = vm->ro_next_ref = LUA_NOREF;
    const char *name = scope ? scope->workflow_name : NULL;
    if ((name && !(vm->workflow_name = sl__strdup(name))) ||
        (scope && scope->run_id && !(vm->run_id = sl__strdup(scope->run_id))) ||
        (vm->L = lua_newstate(vm_alloc, vm)) == NULL) {
        sl__vm_free(vm);
        return SL_ENOMEM;
    }
    vm->scope.workflow_name = vm->workflow_name;
    vm->scope.run_id = vm->run_id;
    lua_atpanic(vm->L, vm_panic);
    *(sl_vm_budget_t **)lua_getextraspace(vm->L) = &vm->expr_budget;
    if (sl__vm_open_sandbox(vm) < 0) {
        sl__vm_free(vm);
        return SL_ENOMEM;
    }
    *out = vm;
    return 0;
}

void sl__vm_free(sl_vm_t *vm)
{
    if (vm == NULL)
        return;
    for (size_t i = SL_VM_ATTACHED_MAX; i-- > 0;)
        if (vm->attached[i].detach)
            vm->attached[i].detach(vm->attached[i].data);
    if (vm->L)
        lua_close(vm->L);
    sl__free(vm->workflow_name);
    sl__free(vm->run_id);
    sl__free(vm);
}

lua_State *sl__vm_lua(sl_vm_t *vm)
{
    return vm->L;
}

int sl__vm_attach(sl_vm_t *vm, const void *key, void *data, void (*detach)(void *data))
{
    if (sl__vm_attached(vm, key))
        return SL_EEXIST;
    for (size_t i = 0; i < SL_VM_ATTACHED_MAX; i++) {
        if (vm->attached[i].key == NULL) {
            vm->attached[i] = (sl_vm_attachment_t){key, data, detach};
            return 0;
        }
    }
    return SL_ELIMIT;
}

void *sl__vm_attached(const sl_vm_t *vm, const void *key)
{
    for (size_t i = 0; i < SL_VM_ATTACHED_MAX; i++)
        if (vm->attached[i].key == key)
            return vm->attached[i].data;
    return NULL;
}

void sl__vm_push_sandbox(lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, sl__vm_of(L)->env_real_ref);
}

sl_vm_budget_t *sl__vm_thread_budget(lua_State *L)
{
    sl_vm_t *vm = sl__vm_of(L);
    sl_vm_budget_t *budget = *(sl_vm_budget_t **)lua_getextraspace(L);
    if (vm == NULL || L == vm->L || budget == &vm->expr_budget)
        return NULL;
    return budget;
}

bool sl__vm_mem_refused(const sl_vm_t *vm)
{
    return vm->mem_refused;
}

void sl__vm_mem_clear(sl_vm_t *vm)
{
    vm->mem_refused = false;
}

/* ---- expressions -------------------------------------------------------- */

typedef struct compile_args {
    const void *key;
    const char *src;
    size_t len;
    const char *chunkname;
} compile_args_t;

/* Compiles an expression and caches it; the unused _ENV upvalue keeps its source. */
static int l_vm_compile(lua_State *L)
{
    static const char head[] = "local _ENV, item, index = ...; return (", tail[] = "\n)";
    compile_args_t *args = lua_touserdata(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, head, sizeof(head) - 1);
    luaL_addlstring(&b, args->src, args->len);
    luaL_addlstring(&b, tail, sizeof(tail) - 1);
    luaL_pushresult(&b);
    size_t n;
    const char *chunk = lua_tolstring(L, -1, &n);
    if (luaL_loadbufferx(L, chunk, n, args->chunkname, "t") != LUA_OK)
        return lua_error(L);
    lua_pushlstring(L, args->src, args->len);
    lua_setupvalue(L, -2, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sl__vm_of(L)->cache_ref);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, args->key);
    lua_pop(L, 1);
    return 1;
}

/* Pushes the compiled expression for `key`, compiling it when new or stale. */
static int push_compiled(sl_vm_t *vm, const compile_args_t *args, int msgh)
{
    lua_State *L = vm->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->cache_ref);
    if (lua_rawgetp(L, -1, args->key) == LUA_TFUNCTION) {
        size_t len;
        lua_getupvalue(L, -1, 1);
        const char *src = lua_tolstring(L, -1, &len);
        bool same = src && len == args->len && memcmp(src, args->src, len) == 0;
        lua_pop(L, 1);
        if (same) {
            lua_remove(L, -2);
            return LUA_OK;
        }
    }
    lua_pop(L, 2);
    lua_pushcfunction(L, l_vm_compile);
    lua_pushlightuserdata(L, (void *)args);
    return lua_pcall(L, 1, 1, msgh);
}

/* Pushes item, protected when it allocates. */
static int push_item(lua_State *L, const sl_value_t *item)
{
    if (item == NULL) {
        lua_pushnil(L);
        return 0;
    }
    return sl__vm_push(L, item);
}

static int eval_error(sl_vm_t *vm, int status, const char *chunkname, char *err, size_t err_size)
{
    lua_State *L = vm->L;
    int rc = SL_ELUA;
    const char *msg = lua_tostring(L, -1);
    if (status == LUA_ERRMEM) {
        rc = SL_ELIMIT;
        msg = vm->mem_refused ? "not enough memory (the run's Lua memory limit was reached)"
                              : "not enough memory";
    } else if (vm->expr_budget.tripped) {
        rc = SL_ELIMIT;
        msg = vm->expr_budget.message;
    }
    if (err && err_size)
        snprintf(err, err_size, "%s", sl__vm_strip_position(msg ? msg : "?", chunkname));
    return rc;
}

int sl__vm_eval(sl_vm_t *vm, const void *key, const char *src, size_t len, const char *chunkname,
                const sl_value_t *item, int64_t index, sl_value_t **out, char *err, size_t err_size)
{
    lua_State *L = vm->L;
    int base = lua_gettop(L);
    *out = NULL;
    if (!lua_checkstack(L, 8))
        return SL_ENOMEM;
    lua_pushcfunction(L, sl__vm_msgh);
    vm->mem_refused = false;
    vm->expr_budget.tripped = false;
    compile_args_t args = {key, src, len, chunkname ? chunkname : "=expression"};
    int status = push_compiled(vm, &args, base + 1);
    int rc = 0;
    if (status == LUA_OK) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, vm->env_ref);
        rc = push_item(L, item);
        if (rc == 0) {
            if (index > 0)
                lua_pushinteger(L, (lua_Integer)index);
            else
                lua_pushnil(L);
            sl__vm_budget_start(L, &vm->expr_budget, vm->expr_instructions);
            lua_State *saved = sl__vm_running_enter(L);
            status = lua_pcall(L, 3, 1, base + 1);
            sl__vm_running_leave(saved);
            sl__vm_budget_stop(L);
        }
    }
    if (rc == 0 && status != LUA_OK)
        rc = eval_error(vm, status, args.chunkname, err, err_size);
    else if (rc == 0 && (rc = sl__vm_pull(L, -1, out, err, err_size)) == SL_ENOMEM && err)
        snprintf(err, err_size, "out of memory");
    else if (rc == SL_ENOMEM && err)
        snprintf(err, err_size, "out of memory");
    lua_settop(L, base);
    return rc;
}

const sl_value_t *sl__vm_step_output(const sl_vm_t *vm, const char *id)
{
    const sl_value_t *out = NULL;
    if (vm->scope.step_output == NULL || !vm->scope.step_output(vm->scope.ud, id, &out))
        return NULL;
    return out;
}
