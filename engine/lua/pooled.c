/*
 * `lua` steps with `pool: true`: the task runs in a worker process, so CPU-heavy Lua
 * runs in parallel instead of sharing the loop thread.
 *
 * On the loop, the lua kind hands the task to the run's pool as a job of the internal
 * CPU kind `lua.pooled`, with everything the code can see: its source (or the script's
 * path), `args`, and a scope map (vars, workflow, run, item, index, and the outputs of
 * the steps it depends on). In the worker, `lua.pooled` builds a sandbox VM from that
 * scope and runs the code to completion under the step's instruction budget, as a
 * plain protected call: there is no loop in a worker, so the `sluice` module offers
 * only what needs none (log, json); an IO function is an error naming the option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"
#include "lua/fiber.h"
#include "sched/task.h"

#define POOLED_INSTRUCTIONS_DEFAULT 1000000000u
#define POOLED_SCRIPT_MAX_BYTES (16u << 20)

static const char chunk_prefix[] = "local _ENV = ...; ";

/* ---- the loop side ------------------------------------------------------------------ */

/* Tells a pooled task's state from a loop task's (lua_task_t starts with a task pointer). */
static const char pooled_tag[] = "lua.pooled";

typedef struct pooled {
    const char *tag; /* first: pooled_tag */
    sl_pool_job_t job;
    sl_pool_t *pool;
    sl_task_t *task;
    sl_value_t *job_args;
} pooled_t;

static pooled_t *pooled_of(sl_pool_job_t *job)
{
    return (pooled_t *)((char *)job - offsetof(pooled_t, job));
}

static sl_task_t *release(pooled_t *p)
{
    sl_task_t *task = p->task;
    sl__lua_host->task_set_data(task, NULL);
    sl_value_free(p->job_args);
    sl__free(p);
    return task;
}

static void on_done(sl_pool_job_t *job, sl_value_t *output)
{
    sl_task_t *task = release(pooled_of(job));
    sl__lua_host->task_done(task, output);
}

static void on_fail(sl_pool_job_t *job, int code, const char *message, int64_t retry_after_ms)
{
    sl_task_t *task = release(pooled_of(job));
    if (retry_after_ms > 0)
        sl__lua_host->task_retry_after(task, retry_after_ms);
    sl__lua_host->task_fail(task, code, message);
}

static void on_log(sl_pool_job_t *job, int level, const char *message)
{
    sl__lua_host->log(pooled_of(job)->task, level, "%s", message);
}

static const sl_pool_cbs_t pooled_cbs = {on_done, on_fail, on_log};

bool sl__lua_pooled_cancel(sl_task_t *task)
{
    pooled_t *p = sl__lua_host->task_data(task);
    if (p == NULL || p->tag != pooled_tag)
        return false;
    if (sl__pool_cancel(p->pool, &p->job)) { /* still queued: no callback will come */
        release(p);
        sl__lua_host->task_fail(task, SL_ECANCELED, "canceled");
    }
    return true; /* sent: the worker is killed and the job fails with SL_ECANCELED */
}

/* The job's arguments: the code or script path, args, limits, and the scope. */
static int job_args(sl_task_t *task, const sl_value_t *args, const char *const *reserved,
                    size_t reserved_count, sl_value_t **out)
{
    sl_value_t *map = sl_value_map(), *user = sl_value_map(), *scope = NULL;
    int rc = map && user ? sl__task_scope(task, &scope) : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < sl_value_len(args); i++) {
        const char *key;
        const sl_value_t *v = sl_value_entry(args, i, &key);
        bool mine = false;
        for (size_t j = 0; j < reserved_count && !mine; j++)
            mine = strcmp(key, reserved[j]) == 0;
        rc = sl_value_set(mine ? map : user, key, sl_value_copy(v));
    }
    const char *script = sl_value_str(sl_value_get(args, "script"), NULL);
    const char *dir = sl__task_workflow_dir(task);
    if (rc == 0 && script && script[0] != '/' && dir && dir[0] && strcmp(dir, ".") != 0) {
        char *path = sl__asprintf("%s/%s", dir, script);
        rc = sl_value_set(map, "script", path ? sl_value_cstring(path) : NULL);
        sl__free(path);
    }
    if (rc == 0)
        rc = sl_value_set(map, "step", sl_value_cstring(sl__task_step_id(task)));
    if (rc == 0) {
        rc = sl_value_set(map, "args", user);
        user = NULL;
    }
    if (rc == 0) {
        rc = sl_value_set(map, "scope", scope);
        scope = NULL;
    }
    sl_value_free(user);
    sl_value_free(scope);
    if (rc < 0) {
        sl_value_free(map);
        return rc;
    }
    *out = map;
    return 0;
}

int sl__lua_pooled_start(sl_task_t *task, const sl_value_t *args,
                         const char *const *reserved, size_t reserved_count)
{
    sl_pool_t *pool = sl__host_pool(task);
    if (pool == NULL)
        return 1; /* no workers (a unit test's run): on the loop */
    pooled_t *p = sl__calloc(1, sizeof(*p));
    if (p == NULL)
        return SL_ENOMEM;
    int rc = job_args(task, args, reserved, reserved_count, &p->job_args);
    if (rc < 0) {
        sl__free(p);
        return rc;
    }
    p->tag = pooled_tag;
    p->pool = pool;
    p->task = task;
    p->job.kind = pooled_tag;
    p->job.args = p->job_args;
    p->job.attempt = (uint32_t)sl__lua_host->task_attempt(task);
    p->job.cbs = &pooled_cbs;
    sl__lua_host->task_set_data(task, p);
    sl__pool_submit(pool, &p->job);
    return 0;
}

/* ---- the worker side --------------------------------------------------------------- */

static int step_output(void *ud, const char *step, const sl_value_t **out)
{
    const sl_value_t *v = sl_value_get(ud, step);
    if (v == NULL)
        return 0;
    *out = v;
    return 1;
}

static sl_task_t *task_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "sluice.pooled_task");
    sl_task_t *task = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return task;
}

static int log_at(lua_State *L, int level)
{
    sl__lua_host->log(task_of(L), level, "%s", sl__lua_join_args(L));
    return 0;
}

static int l_info(lua_State *L)
{
    return log_at(L, SL_LOG_INFO);
}

static int l_warn(lua_State *L)
{
    return log_at(L, SL_LOG_WARN);
}

static int l_error(lua_State *L)
{
    return log_at(L, SL_LOG_ERROR);
}

static int l_unavailable(lua_State *L)
{
    return luaL_error(L, "%s is not available in a step with pool: true (no event loop in a "
                         "worker): use it from a step on the loop",
                      lua_tostring(L, lua_upvalueindex(1)));
}

/* The `sluice` module of a pooled step: log and json; the IO functions raise. */
static void push_module(lua_State *L, int sandbox)
{
    static const luaL_Reg log_funcs[] = {{"info", l_info}, {"warn", l_warn}, {"error", l_error},
                                         {NULL, NULL}};
    static const char *const io[] = {"sleep", "gather", "map"};
    static const char *const io_tables[][3] = {{"http", "get", "request"}, {"fs", "read", "write"},
                                               {"html", "select", NULL}};
    lua_createtable(L, 0, 8);
    luaL_newlib(L, log_funcs);
    lua_setfield(L, -2, "log");
    lua_createtable(L, 0, 2);
    lua_getfield(L, sandbox, "json_encode");
    lua_setfield(L, -2, "encode");
    lua_getfield(L, sandbox, "json_decode");
    lua_setfield(L, -2, "decode");
    lua_setfield(L, -2, "json");
    for (size_t i = 0; i < SL_COUNTOF(io); i++) {
        lua_pushfstring(L, "sluice.%s", io[i]);
        lua_pushcclosure(L, l_unavailable, 1);
        lua_setfield(L, -2, io[i]);
    }
    for (size_t i = 0; i < SL_COUNTOF(io_tables); i++) {
        lua_createtable(L, 0, 2);
        for (size_t j = 1; j < 3 && io_tables[i][j]; j++) {
            lua_pushfstring(L, "sluice.%s.%s", io_tables[i][0], io_tables[i][j]);
            lua_pushcclosure(L, l_unavailable, 1);
            lua_setfield(L, -2, io_tables[i][j]);
        }
        lua_setfield(L, -2, io_tables[i][0]);
    }
}

/* Error handler: the message with the thread's traceback. */
static int msgh(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

typedef struct run_ctx {
    sl_vm_t *vm;
    const sl_value_t *args;
    const sl_value_t *scope;
    sl_task_t *task;
} run_ctx_t;

/* Protected: pushes the chunk, compiled with the `local _ENV = ...` prefix. */
static void push_chunk(lua_State *L, const run_ctx_t *rc)
{
    const char *code = sl_value_str(sl_value_get(rc->args, "code"), NULL);
    const char *script = sl_value_str(sl_value_get(rc->args, "script"), NULL);
    const char *step = sl_value_str(sl_value_get(rc->args, "step"), NULL);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, chunk_prefix);
    if (code) {
        luaL_addstring(&b, code);
        lua_pushfstring(L, "=step '%s'", step ? step : "?");
    } else {
        FILE *in = fopen(script, "rb"); /* a worker may block: it is not the loop */
        if (in == NULL)
            luaL_error(L, "cannot open script '%s': %s", script, strerror(errno));
        char block[4096];
        size_t n, total = 0;
        bool first = true;
        while ((n = fread(block, 1, sizeof(block), in)) > 0 && total <= POOLED_SCRIPT_MAX_BYTES) {
            const char *start = block;
            if (first && block[0] == '#') { /* a #! line: keep its newline for line numbers */
                const char *nl = memchr(block, '\n', n);
                start = nl ? nl : block + n;
            }
            first = false;
            luaL_addlstring(&b, start, n - (size_t)(start - block));
            total += n;
        }
        fclose(in);
        lua_pushfstring(L, "@%s", script);
    }
    const char *chunkname = lua_tostring(L, -1);
    luaL_pushresult(&b);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (luaL_loadbufferx(L, text, len, chunkname, "t") != LUA_OK)
        lua_error(L);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Protected: [chunk] -> [chunk, env]. */
static void push_env(lua_State *L, const run_ctx_t *rc)
{
    lua_createtable(L, 0, 8); /* the task's _ENV */
    int env = lua_gettop(L);
    lua_createtable(L, 0, 2); /* its metatable: the sandbox and the module behind it */
    lua_createtable(L, 0, 48);
    int scope = lua_gettop(L);
    sl__vm_push_sandbox(L);
    int sandbox = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, sandbox) != 0) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, scope);
    }
    push_module(L, sandbox);
    sl__vm_ro_wrap(L, "sluice");
    lua_setfield(L, scope, "sluice");
    lua_pushcfunction(L, l_info);
    lua_setfield(L, scope, "print");
    lua_pop(L, 1); /* the sandbox */
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, env);
    sl__vm_push_raw(L, sl_value_get(rc->scope, "item"), 0);
    lua_setfield(L, env, "item");
    sl__vm_push_raw(L, sl_value_get(rc->scope, "index"), 0);
    lua_setfield(L, env, "index");
    sl__vm_push_raw(L, sl_value_get(rc->args, "args"), 1);
    lua_setfield(L, env, "args");
    lua_createtable(L, 0, 5);
    lua_pushstring(L, sl_value_str(sl_value_get(rc->args, "step"), NULL));
    lua_setfield(L, -2, "step");
    lua_getfield(L, env, "item");
    lua_setfield(L, -2, "item");
    lua_getfield(L, env, "index");
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, sl__lua_host->task_attempt(rc->task));
    lua_setfield(L, -2, "attempt");
    lua_getfield(L, env, "run");
    lua_setfield(L, -2, "run");
    lua_setfield(L, env, "ctx");
    if (sl_value_truthy(sl_value_get(rc->args, "unsafe"))) {
        static const char *const unsafe_names[] = {"io", "os", "package", "debug", "require",
                                                   "load", "loadfile", "dofile",
                                                   "collectgarbage"};
        for (size_t i = 0; i < SL_COUNTOF(unsafe_names); i++) {
            lua_getglobal(L, unsafe_names[i]);
            lua_setfield(L, env, unsafe_names[i]);
        }
    }
}

/* Protected on a thread of its own: runs the chunk, then run(args, ctx) when it returned
 * nothing; leaves the result on top. */
static int l_pooled_run(lua_State *L)
{
    const run_ctx_t *rc = lua_touserdata(L, 1);
    lua_settop(L, 0);
    push_chunk(L, rc);
    push_env(L, rc);
    lua_pushvalue(L, -1);
    lua_insert(L, 1); /* [env, chunk, env] */
    lua_call(L, 1, 1);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "run") != LUA_TFUNCTION)
        return 1; /* nil: the step's output is nil */
    lua_getfield(L, 1, "args");
    lua_getfield(L, 1, "ctx");
    lua_call(L, 2, 1);
    return 1;
}

static int pooled_run(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *scope = sl_value_get(args, "scope");
    if (sl_value_type(scope) != SL_TYPE_MAP ||
        (!sl_value_str(sl_value_get(args, "code"), NULL) &&
         !sl_value_str(sl_value_get(args, "script"), NULL))) {
        sl__lua_host->task_fail(task, SL_EINVAL, "lua.pooled is internal: write `uses: lua` "
                                                "with `pool: true`");
        return 0;
    }
    const sl_value_t *run = sl_value_get(scope, "run");
    sl_vm_scope_t vs = {
        .vars = sl_value_get(scope, "vars"),
        .workflow_name = sl_value_str(sl_value_get(scope, "workflow"), NULL),
        .run_id = sl_value_str(sl_value_get(run, "id"), NULL),
        .run_started = sl_value_int_of(sl_value_get(run, "started")),
        .step_output = step_output,
        .ud = (void *)sl_value_get(scope, "steps"),
    };
    sl_value_t *empty = NULL;
    if (vs.vars == NULL)
        vs.vars = empty = sl_value_map();
    sl_vm_t *vm = NULL;
    int rc = vs.vars ? sl__vm_new(&vs, NULL, &vm) : SL_ENOMEM;
    if (rc < 0) {
        sl_value_free(empty);
        sl__lua_host->task_failf(task, rc, "cannot make a Lua VM: %s", sl_strerror(rc));
        return 0;
    }
    lua_State *L = sl__vm_lua(vm);
    lua_pushlightuserdata(L, task);
    lua_setfield(L, LUA_REGISTRYINDEX, "sluice.pooled_task");
    lua_State *co = lua_newthread(L);
    sl_vm_budget_t budget;
    const sl_value_t *max = sl_value_get(args, "max_instructions");
    uint64_t instructions = max && sl_value_int_of(max) > 0 ? (uint64_t)sl_value_int_of(max)
                                                           : POOLED_INSTRUCTIONS_DEFAULT;
    sl__vm_budget_start(co, &budget, instructions);
    run_ctx_t ctx = {vm, args, scope, task};
    lua_pushcfunction(co, msgh);
    lua_pushcfunction(co, l_pooled_run);
    lua_pushlightuserdata(co, &ctx);
    sl__vm_mem_clear(vm);
    int status = lua_pcall(co, 1, 1, 1);
    sl__vm_budget_stop(co);
    if (status == LUA_OK) {
        char err[256];
        sl_value_t *out = NULL;
        rc = sl__vm_pull(co, -1, &out, err, sizeof(err));
        if (rc < 0)
            sl__lua_host->task_failf(task, rc, "the step's result: %s",
                                    rc == SL_ENOMEM ? "out of memory" : err);
        else
            sl__lua_host->task_done(task, out);
    } else if (status == LUA_ERRMEM) {
        sl__lua_host->task_fail(task, SL_ELIMIT, sl__vm_mem_refused(vm) ?
                               "not enough memory (the Lua memory limit was reached)" :
                               "not enough memory");
    } else {
        const char *msg = lua_tostring(co, -1);
        sl__lua_host->task_fail(task, budget.tripped ? SL_ELIMIT : SL_ELUA,
                               msg ? msg : "Lua error");
    }
    sl__vm_free(vm);
    sl_value_free(empty);
    return 0;
}

/* The kind the lua kind's pooled tasks become; CPU, so it only ever runs in workers. */
int sl__lua_pooled_worker_start(sl_task_t *task, const sl_value_t *args)
{
    /* in a worker, sl__lua_host is the worker's table (pool/worker.c) */
    return pooled_run(task, args);
}
