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
 * only what needs none (log, json, url, now); an IO function is an error naming the
 * option. `require` reads its modules at once (require.c), from the folder the job names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host.h"
#include "lua/fiber.h"
#include "lua/require.h"
#include "lua/script.h"
#include "lua/url.h"
#include "sched/sched.h"
#include "sched/task.h"

#define POOLED_INSTRUCTIONS_DEFAULT 1000000000u

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
    if (rc == 0 && script) { /* the worker gets the file as the loop would read it */
        char *path = sl__script_path(sl__task_workflow_dir(task), script);
        rc = sl_value_set(map, "script", path ? sl_value_cstring(path) : NULL);
        sl__free(path);
    }
    if (rc == 0)
        rc = sl_value_set(map, "step", sl_value_cstring(sl__task_step_id(task)));
    const char *dir = sl__task_workflow_dir(task);
    if (rc == 0) /* where require finds the modules beside the workflow */
        rc = sl_value_set(map, "dir", sl_value_cstring(dir ? dir : ""));
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
    /* The attempt's timeout counts from when a worker starts it, as a CPU task's does: the
     * pool times it (and kills the worker), and the step's timer, which started at
     * dispatch and would count the wait in the pool's queue, is held for good. */
    p->job.timeout_ms = sl__sched_task_timeout_hold(task);
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

static const char *step_name(void *ud, size_t i)
{
    const char *key = NULL;
    return sl_value_entry(ud, i, &key) ? key : NULL;
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

/* The `sluice` module of a pooled step: log, json, url and now; the IO functions raise. */
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
    sl__url_open(L, lua_gettop(L));
    sl__now_open(L, lua_gettop(L));
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
    const char *text; /* the script's text (read before the VM ran anything), or NULL */
    size_t text_len;
} run_ctx_t;

/* Protected: pushes the chunk of the task's code or script. */
static void push_chunk(lua_State *L, const run_ctx_t *rc)
{
    size_t code_len = 0;
    const char *code = sl_value_str(sl_value_get(rc->args, "code"), &code_len);
    const char *script = sl_value_str(sl_value_get(rc->args, "script"), NULL);
    const char *step = sl_value_str(sl_value_get(rc->args, "step"), NULL);
    const char *chunkname;
    int status;
    if (code) {
        chunkname = lua_pushfstring(L, "=step '%s'", step ? step : "?");
        status = sl__script_compile(L, code, code_len, chunkname, false);
    } else {
        chunkname = lua_pushfstring(L, "@%s", script);
        status = sl__script_compile(L, rc->text, rc->text_len, chunkname, true);
    }
    if (status != LUA_OK)
        lua_error(L);
    lua_remove(L, -2); /* the chunk name */
}

/* Protected: [chunk] -> [chunk, env]. */
static void push_env(lua_State *L, const run_ctx_t *rc)
{
    sl__require_set_pooled_dir(L, sl_value_str(sl_value_get(rc->args, "dir"), NULL));
    sl__script_push_env_mt(L, push_module, l_info, sl__require_fetch(true));
    const sl_script_task_t task = {
        .step = sl_value_str(sl_value_get(rc->args, "step"), NULL),
        .item = sl_value_get(rc->scope, "item"),
        .index = sl_value_int_of(sl_value_get(rc->scope, "index")),
        .attempt = sl__lua_host->task_attempt(rc->task),
        .args = sl_value_get(rc->args, "args"), /* the loop left the kind's own out */
        .unsafe = sl_value_truthy(sl_value_get(rc->args, "unsafe")),
    };
    sl__script_push_env(L, -1, &task);
    lua_remove(L, -2); /* the metatable */
}

/* Protected: [ctx] -> [chunk]. Run with the traceback-less handler, so a syntax error
 * reads as on the loop. */
static int l_pooled_compile(lua_State *L)
{
    const run_ctx_t *rc = lua_touserdata(L, 1);
    lua_settop(L, 0);
    push_chunk(L, rc);
    return 1;
}

/* Protected: [chunk, ctx] -> the result: the chunk's, or run(args, ctx)'s when the chunk
 * returned nothing. */
static int l_pooled_run(lua_State *L)
{
    const run_ctx_t *rc = lua_touserdata(L, 2);
    lua_settop(L, 1);
    push_env(L, rc);
    lua_pushvalue(L, -1);
    lua_insert(L, 1); /* [env, chunk, env] */
    lua_call(L, 1, 1);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    if (!sl__script_push_run(L, 1)) {
        lua_pushnil(L); /* the step's output is nil */
        return 1;
    }
    lua_call(L, 2, 1);
    return 1;
}

/* Compiles and runs the job on `co`; the result or the error message ends up on top. */
static int run_job(lua_State *co, run_ctx_t *ctx)
{
    lua_settop(co, 0);
    lua_pushcfunction(co, msgh);
    lua_pushcfunction(co, sl__vm_msgh);
    lua_pushcfunction(co, l_pooled_compile);
    lua_pushlightuserdata(co, ctx);
    int status = lua_pcall(co, 1, 1, 2);
    if (status != LUA_OK)
        return status;
    lua_pushcfunction(co, l_pooled_run);
    lua_insert(co, -2);
    lua_pushlightuserdata(co, ctx); /* [msgh, vm msgh, l_pooled_run, chunk, ctx] */
    return lua_pcall(co, 2, 1, 1);
}

/* Reads the task's script, if it has one, as the loop would: the same cap and errors. A
 * worker may block (it is not the loop). False when the task failed. */
static bool read_script(sl_task_t *task, const sl_value_t *args, run_ctx_t *rc, char **text)
{
    const char *code = sl_value_str(sl_value_get(args, "code"), NULL);
    const char *script = sl_value_str(sl_value_get(args, "script"), NULL);
    *text = NULL;
    if (code || script == NULL)
        return true;
    sl_fsio_result_t r = sl__script_read_file(script, text, &rc->text_len);
    if (r.stage == SL_FSIO_OK) {
        rc->text = *text;
        return true;
    }
    char message[SL_SCRIPT_ERR_MAX];
    int code_rc = sl__script_read_error(script, r, message, sizeof(message));
    sl__lua_host->task_fail(task, code_rc, message);
    return false;
}

/* A VM for the job's scope; fails the task and returns NULL when it cannot. *empty is a
 * map standing in for missing vars, to free after the VM. */
static sl_vm_t *job_vm(sl_task_t *task, const sl_value_t *scope, sl_value_t **empty)
{
    const sl_value_t *run = sl_value_get(scope, "run");
    sl_vm_scope_t vs = {
        .vars = sl_value_get(scope, "vars"),
        .workflow_name = sl_value_str(sl_value_get(scope, "workflow"), NULL),
        .run_id = sl_value_str(sl_value_get(run, "id"), NULL),
        .run_started = sl_value_int_of(sl_value_get(run, "started")),
        .step_output = step_output,
        .step_name = step_name,
        .ud = (void *)sl_value_get(scope, "steps"),
    };
    *empty = NULL;
    if (vs.vars == NULL)
        vs.vars = *empty = sl_value_map();
    sl_vm_t *vm = NULL;
    int rc = vs.vars ? sl__vm_new(&vs, NULL, &vm) : SL_ENOMEM;
    if (rc < 0) {
        sl_value_free(*empty);
        *empty = NULL;
        sl__lua_host->task_failf(task, rc, "cannot make a Lua VM: %s", sl_strerror(rc));
        return NULL;
    }
    lua_State *L = sl__vm_lua(vm);
    lua_pushlightuserdata(L, task);
    lua_setfield(L, LUA_REGISTRYINDEX, "sluice.pooled_task");
    return vm;
}

/* Completes the task from the outcome of l_pooled_run on `co`. */
static void report(sl_task_t *task, sl_vm_t *vm, lua_State *co, int status, bool tripped)
{
    if (status == LUA_OK) {
        char err[256];
        sl_value_t *out = NULL;
        int rc = sl__vm_pull(co, -1, &out, err, sizeof(err));
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
        sl__lua_host->task_fail(task, tripped ? SL_ELIMIT : SL_ELUA, msg ? msg : "Lua error");
    }
}

static int pooled_run(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *scope = sl_value_get(args, "scope");
    if (sl_value_type(scope) != SL_TYPE_MAP ||
        (!sl_value_str(sl_value_get(args, "code"), NULL) &&
         !sl_value_str(sl_value_get(args, "script"), NULL))) {
        sl__lua_host->task_fail(task, SL_EINVAL,
                                "lua.pooled is internal: write `uses: lua` "
                                "with `pool: true`");
        return 0;
    }
    run_ctx_t ctx = {.args = args, .scope = scope, .task = task};
    char *text;
    if (!read_script(task, args, &ctx, &text))
        return 0;
    sl_value_t *empty;
    if ((ctx.vm = job_vm(task, scope, &empty)) == NULL) {
        sl__free(text);
        return 0;
    }
    lua_State *co = lua_newthread(sl__vm_lua(ctx.vm));
    sl_vm_budget_t budget = {0};
    const sl_value_t *max = sl_value_get(args, "max_instructions");
    uint64_t instructions = max && sl_value_int_of(max) > 0 ? (uint64_t)sl_value_int_of(max)
                                                            : POOLED_INSTRUCTIONS_DEFAULT;
    sl__vm_budget_start(co, &budget, instructions);
    sl__vm_mem_clear(ctx.vm);
    int status = run_job(co, &ctx);
    sl__vm_budget_stop(co);
    report(task, ctx.vm, co, status, budget.tripped);
    sl__vm_free(ctx.vm);
    sl_value_free(empty);
    sl__free(text);
    return 0;
}

/* The kind the lua kind's pooled tasks become; CPU, so it only ever runs in workers. */
int sl__lua_pooled_worker_start(sl_task_t *task, const sl_value_t *args)
{
    /* in a worker, sl__lua_host is the worker's table (pool/worker.c) */
    return pooled_run(task, args);
}
