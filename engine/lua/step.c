/*
 * The `lua` kind (SPEC §4). Each task runs as a coroutine of the run's VM
 * with its own _ENV, whose __index is the shared step scope (the expression
 * sandbox plus the `sluice` module), so a task's globals stay its own. Code
 * is compiled once per distinct source into a chunk taking its _ENV as a
 * vararg. IO calls (sluice.sleep, sluice.http, sluice.fs) yield the coroutine
 * and resume it from a libuv callback, so sequential Lua code runs
 * concurrently; sluice.gather and sluice.map run functions in more coroutines
 * of the same task (lua/fiber.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "lua/fiber.h"
#include "lua/lua.h"
#include "sched/task.h"

#define STEP_INSTRUCTIONS_DEFAULT 1000000000u
#define STEP_ERR_MAX 512

static const char *const reserved_params[] = {"code", "script", "pool", "unsafe",
                                              "max_instructions"};
static const char *const unsafe_names[] = {"io", "os", "package", "debug", "require",
                                           "load", "loadfile", "dofile", "collectgarbage"};

/* The task running on coroutine L; raises when L is not a Lua step's coroutine. */
static lua_task_t *task_of(lua_State *L)
{
    return sl__fiber_of(L)->lt;
}

/* ---- the sluice module ---------------------------------------------------- */

static int log_at(lua_State *L, int level)
{
    lua_task_t *lt = task_of(L);
    const char *msg = sl__lua_join_args(L);
    sl__lua_host->log(lt->task, level, "%s", msg);
    return 0;
}

static int l_sluice_log_info(lua_State *L)
{
    return log_at(L, SL_LOG_INFO);
}

static int l_sluice_log_warn(lua_State *L)
{
    return log_at(L, SL_LOG_WARN);
}

static int l_sluice_log_error(lua_State *L)
{
    return log_at(L, SL_LOG_ERROR);
}

static int l_sluice_print(lua_State *L)
{
    return log_at(L, SL_LOG_INFO);
}

static const luaL_Reg sluice_log_funcs[] = {
    {"info", l_sluice_log_info},
    {"warn", l_sluice_log_warn},
    {"error", l_sluice_log_error},
    {NULL, NULL},
};

/* Pushes the `sluice` module; `env` is the sandbox (for its JSON helpers). */
static void push_module(lua_State *L, int env)
{
    lua_createtable(L, 0, 8);
    luaL_newlib(L, sluice_log_funcs);
    lua_setfield(L, -2, "log");
    lua_createtable(L, 0, 2);
    lua_getfield(L, env, "json_encode");
    lua_setfield(L, -2, "encode");
    lua_getfield(L, env, "json_decode");
    lua_setfield(L, -2, "decode");
    lua_setfield(L, -2, "json");
    int module = lua_gettop(L);
    sl__fiber_open(L, module);
    sl__group_open(L, module);
    sl__lua_open_http(L, module);
    sl__lua_open_fs(L, module);
    sl__lua_open_html(L, module);
}

/* ---- per-VM state: the step scope, compiled chunks, the task env metatable -- */

/* The kind's state in one VM: its step scope (in the Lua registry) and its live tasks,
 * which are let go when the VM is freed before them (steps_detach). */
typedef struct vm_state {
    int step_ref;
    lua_task_t *tasks;
} vm_state_t;

static const char vm_state_key; /* its address names the kind's attachment */

static void steps_detach(void *data);

/* The kind's state in `vm`, made on first use; NULL when out of memory. */
static vm_state_t *vm_state(sl_vm_t *vm)
{
    vm_state_t *st = sl__vm_attached(vm, &vm_state_key);
    if (st)
        return st;
    if ((st = sl__calloc(1, sizeof(*st))) == NULL)
        return NULL;
    st->step_ref = LUA_NOREF;
    if (sl__vm_attach(vm, &vm_state_key, st, steps_detach) < 0) {
        sl__free(st);
        return NULL;
    }
    return st;
}

static void push_step_state(lua_State *L, sl_vm_t *vm)
{
    vm_state_t *st = sl__vm_attached(vm, &vm_state_key); /* made by lua_step_start */
    if (st->step_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, st->step_ref);
        return;
    }
    lua_createtable(L, 0, 3);
    int state = lua_gettop(L);
    sl__vm_push_sandbox(L);
    int env = lua_gettop(L);
    lua_createtable(L, 0, 48); /* the scope: a copy of the sandbox, plus the module */
    lua_pushnil(L);
    while (lua_next(L, env) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    push_module(L, env);
    sl__vm_ro_wrap(L, "sluice");
    lua_setfield(L, -2, "sluice");
    lua_pushcfunction(L, l_sluice_print);
    lua_setfield(L, -2, "print");
    lua_createtable(L, 0, 2); /* every task env's metatable; the scope behind it is shared */
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_setfield(L, state, "env_mt");
    lua_setfield(L, state, "scope");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_setfield(L, state, "chunks");
    lua_pushvalue(L, state);
    st->step_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

typedef struct script_reader {
    FILE *file;
    bool prefix_done;
    bool first_block;
    char block[4096];
} script_reader_t;

static const char chunk_prefix[] = "local _ENV = ...; ";

/* lua_Reader: the prefix, then the file without a leading #! line. */
static const char *read_script(lua_State *L, void *ud, size_t *size)
{
    script_reader_t *r = ud;
    if (!r->prefix_done) {
        r->prefix_done = true;
        *size = sizeof(chunk_prefix) - 1;
        return chunk_prefix;
    }
    size_t n = fread(r->block, 1, sizeof(r->block), r->file);
    char *start = r->block;
    if (r->first_block && n > 0 && r->block[0] == '#') {
        char *nl = memchr(r->block, '\n', n);
        start = nl ? nl : r->block + n; /* keep the newline: line numbers stay right */
    }
    r->first_block = false;
    *size = n - (size_t)(start - r->block);
    return *size ? start : NULL;
}

static int load_script(lua_State *L, const char *path, const char *chunkname)
{
    script_reader_t *r = lua_newuserdatauv(L, sizeof(*r), 0);
    r->prefix_done = false;
    r->first_block = true;
    if ((r->file = fopen(path, "rb")) == NULL)
        return luaL_error(L, "cannot open script '%s': %s", path, strerror(errno));
    int status = lua_load(L, read_script, r, chunkname, "t");
    bool read_failed = ferror(r->file) != 0;
    fclose(r->file);
    if (status == LUA_OK && read_failed)
        return luaL_error(L, "cannot read script '%s'", path);
    lua_remove(L, -2);
    return status;
}

typedef struct prepare_args {
    lua_task_t *lt;
    const sl_value_t *args;
    const char *code;
    const char *script;
    bool unsafe;
} prepare_args_t;

/* Pushes the compiled chunk for the task's code or script, compiling it on first use. */
static void push_chunk(lua_State *L, const prepare_args_t *pa, int state)
{
    sl_task_t *task = pa->lt->task;
    lua_getfield(L, state, "chunks");
    const char *dir = sl__task_workflow_dir(task);
    if (pa->script && dir && dir[0] && strcmp(dir, ".") != 0 && pa->script[0] != '/')
        lua_pushfstring(L, "@%s/%s", dir, pa->script);
    else if (pa->script)
        lua_pushfstring(L, "@%s", pa->script);
    else
        lua_pushfstring(L, "=step '%s'\n%s", sl__task_step_id(task), pa->code);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TFUNCTION) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    const char *key = lua_tostring(L, -1);
    int status;
    if (pa->script) {
        status = load_script(L, key + 1, key);
    } else {
        const char *chunkname = lua_pushfstring(L, "=step '%s'", sl__task_step_id(task));
        lua_pushfstring(L, "%s%s", chunk_prefix, pa->code);
        status = luaL_loadbufferx(L, lua_tostring(L, -1), lua_rawlen(L, -1), chunkname, "t");
        lua_replace(L, -3);
        lua_pop(L, 1);
    }
    if (status != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5); /* chunks[key] = chunk */
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Pushes `with` minus the kind's own parameters. */
static void push_args(lua_State *L, const sl_value_t *args)
{
    size_t n = sl_value_len(args);
    lua_createtable(L, 0, (int)(n < 64 ? n : 64));
    for (size_t i = 0; i < n; i++) {
        const char *key;
        const sl_value_t *v = sl_value_entry(args, i, &key);
        bool reserved = false;
        for (size_t j = 0; j < SL_COUNTOF(reserved_params) && !reserved; j++)
            reserved = strcmp(key, reserved_params[j]) == 0;
        if (reserved)
            continue;
        sl__vm_push_raw(L, v, 1); /* nil values become null, so the key stays */
        lua_setfield(L, -2, key);
    }
}

/* Pushes the task's _ENV: item, index, args, ctx, and the unsafe libraries on request. */
static void push_task_env(lua_State *L, const prepare_args_t *pa, int state)
{
    sl_task_t *task = pa->lt->task;
    int64_t index = sl__task_index(task);
    lua_createtable(L, 0, 8);
    int env = lua_gettop(L);
    lua_getfield(L, state, "env_mt");
    lua_setmetatable(L, env);
    sl__vm_push_raw(L, sl__task_item(task), 0);
    lua_setfield(L, env, "item");
    if (index > 0)
        lua_pushinteger(L, (lua_Integer)index);
    else
        lua_pushnil(L);
    lua_setfield(L, env, "index");
    push_args(L, pa->args);
    lua_setfield(L, env, "args");
    lua_createtable(L, 0, 5);
    lua_pushstring(L, sl__task_step_id(task));
    lua_setfield(L, -2, "step");
    lua_getfield(L, env, "item");
    lua_setfield(L, -2, "item");
    lua_getfield(L, env, "index");
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, sl__lua_host->task_attempt(task));
    lua_setfield(L, -2, "attempt");
    lua_getfield(L, env, "run");
    lua_setfield(L, -2, "run");
    lua_setfield(L, env, "ctx");
    for (size_t i = 0; pa->unsafe && i < SL_COUNTOF(unsafe_names); i++) {
        lua_getglobal(L, unsafe_names[i]);
        lua_setfield(L, env, unsafe_names[i]);
    }
}

/* Protected: compiles, makes the coroutine and its env, and stacks [chunk, env] on it. */
static int l_step_prepare(lua_State *L)
{
    prepare_args_t *pa = lua_touserdata(L, 1);
    lua_task_t *lt = pa->lt;
    push_step_state(L, lt->vm);
    int state = lua_gettop(L);
    push_chunk(L, pa, state);
    push_task_env(L, pa, state);
    lua_pushvalue(L, -1);
    lt->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, -1);
    lt->main->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lt->main->co = co;
    lua_pop(L, 1);
    if (!lua_checkstack(co, 4))
        return luaL_error(L, "out of memory");
    lua_xmove(L, co, 2); /* the chunk and its env */
    return 0;
}

/* ---- running ------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *handle)
{
    sl__free(handle->data);
}

/* Kills the task's fibers (canceling their IO) and forgets its Lua objects. */
static void retire(lua_task_t *lt)
{
    sl_vm_t *vm = lt->vm;
    sl__fiber_kill_all(lt);
    if (vm) {
        if (lt->prev)
            lt->prev->next = lt->next;
        else
            ((vm_state_t *)sl__vm_attached(vm, &vm_state_key))->tasks = lt->next;
        if (lt->next)
            lt->next->prev = lt->prev;
        luaL_unref(sl__vm_lua(vm), LUA_REGISTRYINDEX, lt->env_ref);
    }
    lt->vm = NULL;
    lt->prev = lt->next = NULL;
}

/* Completes the task (done when `code` is 0, failed otherwise) and frees its state
 * (after the turn timer closes). Takes `output`. */
static void complete(lua_task_t *lt, int code, const char *message, sl_value_t *output)
{
    sl_task_t *task = lt->task;
    int64_t lt_retry_after_ms = lt->http_retry_after_ms;
    if (task)
        sl__lua_host->task_set_data(task, NULL);
    if (lt->turn_timer_inited)
        uv_close((uv_handle_t *)&lt->turn_timer, on_timer_closed);
    else
        sl__free(lt);
    if (task == NULL)
        sl_value_free(output);
    else if (code < 0) {
        /* Only a delay is passed on: a permanent HTTP failure the script caught must not
         * stop the retries of an error it raised itself. */
        if (lt_retry_after_ms > 0)
            sl__lua_host->task_retry_after(task, lt_retry_after_ms);
        sl__lua_host->task_fail(task, code, message);
    }
    else
        sl__lua_host->task_done(task, output);
}

/* Ends the task. File work of its fibers still running in the threadpool (canceled, it
 * stops soon) holds the outcome back until it reports: a task is never completed, nor
 * the run let go, while a thread still works for it. Takes `output`. */
static void finish(lua_task_t *lt, int code, const char *message, sl_value_t *output)
{
    retire(lt);
    if (lt->work_pending == 0) {
        complete(lt, code, message, output);
        return;
    }
    lt->ending = true;
    lt->end_code = code;
    lt->end_output = output;
    lt->end_message = code < 0 ? sl__strdup(message) : NULL;
    if (code < 0 && lt->end_message == NULL)
        lt->end_code = SL_ENOMEM;
}

void sl__lua_task_settle(lua_task_t *lt)
{
    char *message = lt->end_message;
    complete(lt, lt->end_code, message ? message : "out of memory", lt->end_output);
    sl__free(message);
}

static void finish_fail(lua_task_t *lt, int code, const char *message)
{
    finish(lt, code, message, NULL);
}

void sl__lua_task_fail(lua_task_t *lt, int code, const char *message)
{
    finish_fail(lt, code, message);
}

static void finish_ok(lua_task_t *lt, int idx)
{
    char err[STEP_ERR_MAX], message[STEP_ERR_MAX + 32];
    sl_value_t *out = NULL;
    int rc = idx ? sl__vm_pull(lt->main->co, idx, &out, err, sizeof(err)) : 0;
    if (rc < 0) {
        snprintf(message, sizeof(message), "the step's result: %s",
                 rc == SL_ENOMEM ? "out of memory" : err);
        finish_fail(lt, rc, message);
        return;
    }
    finish(lt, 0, NULL, out);
}

/* Protected: the error on the coroutine (arg 1) with its traceback. */
static int l_step_traceback(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    const char *msg = lua_tostring(co, -1);
    if (msg == NULL) {
        if (luaL_getmetafield(co, -1, "__tostring") != LUA_TNIL) {
            lua_pop(co, 1);
            msg = luaL_tolstring(co, -1, NULL);
        } else {
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
        }
    }
    luaL_traceback(L, co, msg, 0);
    return 1;
}

static void fail_from_error(lua_task_t *lt, int status)
{
    lua_State *L = sl__vm_lua(lt->vm);
    if (status == LUA_ERRMEM) {
        finish_fail(lt, SL_ELIMIT, sl__vm_mem_refused(lt->vm) ?
                    "not enough memory (the run's Lua memory limit was reached)" :
                    "not enough memory");
        return;
    }
    int code = lt->tripped ? SL_ELIMIT : SL_ELUA;
    int base = lua_gettop(L);
    lua_pushcfunction(L, l_step_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lt->main->co_ref);
    const char *text = lua_pcall(L, 1, 1, 0) == LUA_OK ? lua_tostring(L, -1) : NULL;
    char *copy = sl__strdup(text ? text : "Lua error (no memory left to describe it)");
    lua_settop(L, base);
    finish_fail(lt, code, copy ? copy : "Lua error");
    sl__free(copy);
}

/* The chunk finished with `nres` results: its value, or run(args, ctx) when it gave none. */
static bool chunk_done(lua_task_t *lt, int nres)
{
    lua_State *co = lt->main->co;
    if (lt->in_run || (nres > 0 && !lua_isnil(co, -nres)))
        return false;
    lua_settop(co, 0);
    if (!lua_checkstack(co, 4))
        return false;
    lua_rawgeti(co, LUA_REGISTRYINDEX, lt->env_ref);
    lua_pushliteral(co, "run"); /* the task's own global: `run` of the scope is the run info */
    if (lua_rawget(co, 1) != LUA_TFUNCTION) {
        lua_settop(co, 0);
        return false;
    }
    lua_pushliteral(co, "args");
    lua_rawget(co, 1);
    lua_pushliteral(co, "ctx");
    lua_rawget(co, 1);
    lua_remove(co, 1); /* [run, args, ctx] */
    lt->in_run = true;
    return true;
}

bool sl__lua_main_ended(lua_task_t *lt, int status, int nres)
{
    if (status != LUA_OK) {
        fail_from_error(lt, status);
        return true;
    }
    if (chunk_done(lt, nres)) {
        sl__fiber_ready(lt->main, 2);
        return false;
    }
    lua_State *co = lt->main->co;
    finish_ok(lt, lua_gettop(co) > 0 && nres > 0 ? lua_gettop(co) - nres + 1 : 0);
    return true;
}

static int read_params(const sl_value_t *args, prepare_args_t *pa, uint64_t *instructions)
{
    const sl_value_t *code = sl_value_get(args, "code"), *script = sl_value_get(args, "script");
    const sl_value_t *unsafe = sl_value_get(args, "unsafe");
    const sl_value_t *max = sl_value_get(args, "max_instructions");
    pa->code = code ? sl_value_str(code, NULL) : NULL;
    pa->script = script ? sl_value_str(script, NULL) : NULL;
    pa->unsafe = unsafe && sl_value_truthy(unsafe);
    *instructions = STEP_INSTRUCTIONS_DEFAULT;
    if (max && sl_value_type(max) == SL_TYPE_INT && sl_value_int_of(max) > 0)
        *instructions = (uint64_t)sl_value_int_of(max);
    return (pa->code == NULL) == (pa->script == NULL) ? SL_EINVAL : 0;
}

static int lua_step_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_host_t *host = sl__lua_host;
    if (sl_value_truthy(sl_value_get(args, "pool"))) {
        int rc = sl__lua_pooled_start(task, args, reserved_params, SL_COUNTOF(reserved_params));
        if (rc <= 0)
            return rc; /* in the pool, or out of memory; 1: no pool, run here */
    }
    sl_vm_t *vm = sl__task_vm(task);
    vm_state_t *st = vm_state(vm);
    lua_task_t *lt = st ? sl__calloc(1, sizeof(*lt)) : NULL;
    if (lt == NULL)
        return SL_ENOMEM;
    prepare_args_t pa = {lt, args, NULL, NULL, false};
    uint64_t instructions;
    lt->task = task;
    lt->env_ref = LUA_NOREF;
    if (read_params(args, &pa, &instructions) < 0) {
        sl__free(lt);
        return SL_EINVAL;
    }
    if ((lt->main = sl__fiber_new(lt)) == NULL) {
        sl__free(lt);
        return SL_ENOMEM;
    }
    host->task_set_data(task, lt);
    lt->vm = vm;
    lt->next = st->tasks;
    if (lt->next)
        lt->next->prev = lt;
    st->tasks = lt;
    lua_State *L = sl__vm_lua(vm);
    int base = lua_gettop(L);
    lua_pushcfunction(L, sl__vm_msgh);
    lua_pushcfunction(L, l_step_prepare);
    lua_pushlightuserdata(L, &pa);
    sl__vm_mem_clear(vm);
    int status = lua_pcall(L, 1, 0, base + 1);
    if (status != LUA_OK) {
        const char *msg = status == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1);
        char *copy = sl__strdup(msg ? msg : "?");
        lua_settop(L, base);
        finish_fail(lt, status == LUA_ERRMEM ? SL_ELIMIT : SL_ELUA, copy ? copy : "Lua error");
        sl__free(copy);
        return 0;
    }
    lua_settop(L, base);
    fiber_t *main = lt->main;
    sl__vm_budget_start(main->co, &main->budget, instructions);
    main->budget.preemptible = true;
    lt->remaining = main->budget.remaining;
    lt->budget_message = main->budget.message;
    lt->hook = lua_gethook(main->co);
    sl__fiber_ready(main, 1);
    sl__fiber_run(lt);
    return 0;
}

static void lua_step_cancel(sl_task_t *task)
{
    if (sl__lua_pooled_cancel(task))
        return;
    lua_task_t *lt = sl__lua_host->task_data(task);
    if (lt == NULL || lt->ending)
        return; /* an ending task completes once its file work has stopped */
    finish_fail(lt, SL_ECANCELED, "canceled"); /* retire() cancels the fibers' IO first */
}

/* The VM is being freed: its live tasks end canceled, and the kind's state goes. */
static void steps_detach(void *data)
{
    vm_state_t *st = data;
    lua_task_t *lt = st->tasks;
    while (lt) {
        lua_task_t *next = lt->next;
        if (lt->turn_timer_inited)
            uv_timer_stop(&lt->turn_timer);
        lt->vm = NULL;
        lt->prev = lt->next = NULL;
        if (lt->task)
            sl__lua_host->task_set_data(lt->task, NULL);
        lt->task = NULL;
        finish(lt, SL_ECANCELED, "the run's Lua VM was freed", NULL);
        lt = next;
    }
    sl__free(st);
}

/* ---- the kind ------------------------------------------------------------ */

static const sl_param_t lua_params[] = {
    {"code", SL_PT_STRING, SL_PARAM_ONE_OF(1), "Lua source; what it returns is the output"},
    {"script", SL_PT_STRING, SL_PARAM_ONE_OF(1) | SL_PARAM_READS_SCRIPT,
     "a Lua file (relative to the workflow's folder) returning a value or defining "
     "run(args, ctx)"},
    {"pool", SL_PT_BOOL, 0,
     "run in a worker process (CPU-heavy code in parallel; no sluice IO functions there)"},
    {"unsafe", SL_PT_BOOL, 0, "also give the step io, os, package, debug, require and load"},
    {"max_instructions", SL_PT_INT, 0, "instruction budget per task (default 1000000000)"},
    {NULL, 0, 0, NULL},
};

static const sl_param_t pooled_params[] = {
    {NULL, 0, 0, NULL},
};

static const sl_kind_t lua_kinds[] = {
    {"lua", SL_EXEC_IO, SL_KIND_EXTRA_PARAMS | SL_KIND_READS_SCOPE,
     "Lua code run as a coroutine on the loop; other `with` values arrive as `args`",
     lua_params, lua_step_start, lua_step_cancel},
    /* What `lua` with `pool: true` sends to a worker (pooled.c); not for workflows. */
    {"lua.pooled", SL_EXEC_CPU, SL_KIND_EXTRA_PARAMS | SL_KIND_INTERNAL,
     "internal: a `lua` step with `pool: true`, as a worker process runs it",
     pooled_params, sl__lua_pooled_worker_start, NULL},
};

static const sl_plugin_t lua_plugin = SL_PLUGIN_INIT("lua", SLUICE_VERSION, lua_kinds);

const sl_host_t *sl__lua_host;

const sl_plugin_t *sl__lua_entry(const sl_host_t *host)
{
    sl__lua_host = host;
    return &lua_plugin;
}
