/*
 * The `lua` kind (SPEC §4). Each task runs as a coroutine of the run's VM
 * with its own _ENV, whose __index is the shared step scope (the expression
 * sandbox plus the `sluice` module), so a task's globals stay its own. Code
 * is compiled once per distinct source into a chunk taking its _ENV as a
 * vararg (lua/script.h, shared with pool: true); a script file is read in the
 * threadpool first, once for all the tasks that start while it is read.
 * IO calls (sluice.sleep, sluice.http, sluice.fs) yield the coroutine
 * and resume it from a libuv callback, so sequential Lua code runs
 * concurrently; sluice.gather and sluice.map run functions in more coroutines
 * of the same task (lua/fiber.h).
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "lua/fiber.h"
#include "lua/lua.h"
#include "lua/require.h"
#include "lua/script.h"
#include "lua/url.h"
#include "sched/sched.h"
#include "sched/task.h"

#define STEP_INSTRUCTIONS_DEFAULT 1000000000u
#define STEP_ERR_MAX 512

static const char *const reserved_params[] = {"code", "script", "pool", "unsafe",
                                              "max_instructions"};

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
    sl__url_open(L, module);
    sl__now_open(L, module);
}

/* ---- per-VM state: the step scope, compiled chunks, the task env metatable -- */

typedef struct script_load script_load_t;

/* The kind's state in one VM: its step scope (in the Lua registry), its live tasks,
 * which are let go when the VM is freed before them (steps_detach), and the scripts
 * being read for them. */
typedef struct vm_state {
    sl_vm_t *vm;
    int step_ref;
    lua_task_t *tasks;
    script_load_t *loads;
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
    st->vm = vm;
    st->step_ref = LUA_NOREF;
    if (sl__vm_attach(vm, &vm_state_key, st, steps_detach) < 0) {
        sl__free(st);
        return NULL;
    }
    return st;
}

/* Pushes the kind's Lua state in the VM: {env_mt, chunks}, made on first use. Raises. */
static void push_step_state(lua_State *L, sl_vm_t *vm)
{
    vm_state_t *st = sl__vm_attached(vm, &vm_state_key); /* made by lua_step_start */
    if (st->step_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, st->step_ref);
        return;
    }
    lua_createtable(L, 0, 2);
    sl__script_push_env_mt(L, push_module, l_sluice_print, sl__require_fetch(false));
    lua_setfield(L, -2, "env_mt");
    lua_newtable(L); /* compiled sources, by chunk key */
    lua_setfield(L, -2, "chunks");
    lua_pushvalue(L, -1);
    st->step_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

typedef struct prepare_args {
    lua_task_t *lt;
    const sl_value_t *args;
    const char *code;
    size_t code_len; /* all of it: a NUL byte inside a Lua string literal is fine */
    const char *script;
    char *path; /* the script's file (sl__script_path) */
    bool unsafe;
    bool need_read; /* out: the script is not compiled yet; the task must wait for it */
} prepare_args_t;

/* Pushes the compiled chunk of the task's code or script and returns true, compiling
 * inline code on first use. A script not compiled yet pushes nothing and returns false:
 * its file is read off the loop first (wait_for_script). Raises. */
static bool push_chunk(lua_State *L, const prepare_args_t *pa, int state)
{
    const char *step_id = sl__task_step_id(pa->lt->task);
    lua_getfield(L, state, "chunks");
    if (pa->path)
        lua_pushfstring(L, "@%s", pa->path);
    else {
        lua_pushfstring(L, "=step '%s'\n", step_id);
        lua_pushlstring(L, pa->code, pa->code_len);
        lua_concat(L, 2);
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) == LUA_TFUNCTION) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return true;
    }
    lua_pop(L, 1);
    if (pa->path) {
        lua_pop(L, 2);
        return false;
    }
    const char *chunkname = lua_pushfstring(L, "=step '%s'", step_id);
    if (sl__script_compile(L, pa->code, pa->code_len, chunkname, false) != LUA_OK)
        lua_error(L);
    lua_remove(L, -2); /* the chunk name */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -5); /* chunks[key] = chunk */
    lua_replace(L, -3);
    lua_pop(L, 1);
    return true;
}

/* Makes the task's main coroutine and stacks [chunk, env] on it (the chunk on top of L
 * is popped). Raises. */
static void make_main(lua_State *L, lua_task_t *lt)
{
    lua_State *co = lua_newthread(L);
    lt->main->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lt->main->co = co;
    if (!lua_checkstack(co, 4))
        luaL_error(L, "out of memory");
    lua_xmove(L, co, 1);
    lua_rawgeti(co, LUA_REGISTRYINDEX, lt->env_ref);
}

/* Protected: makes the task's env and, when its chunk is compiled, its main coroutine. */
static int l_step_prepare(lua_State *L)
{
    prepare_args_t *pa = lua_touserdata(L, 1);
    lua_task_t *lt = pa->lt;
    sl_task_t *task = lt->task;
    push_step_state(L, lt->vm);
    int state = lua_gettop(L);
    const sl_script_task_t env = {
        .step = sl__task_step_id(task),
        .item = sl__task_item(task),
        .index = sl__task_index(task),
        .attempt = sl__lua_host->task_attempt(task),
        .args = pa->args,
        .skip = reserved_params,
        .skip_count = SL_COUNTOF(reserved_params),
        .unsafe = pa->unsafe,
    };
    lua_getfield(L, state, "env_mt");
    sl__script_push_env(L, -1, &env);
    lt->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (push_chunk(L, pa, state))
        make_main(L, lt);
    else
        pa->need_read = true;
    return 0;
}

/* ---- scripts read off the loop ---------------------------------------------- */

/*
 * A script file being read for the VM's tasks. The first task that needs a script not
 * compiled yet starts the read (in the threadpool, lua/script.h); tasks of the same path
 * that start meanwhile wait with it, so the file is read and compiled once however many
 * tasks start together. Each waiter counts the read in its work_pending: a waiter that
 * is canceled (or whose VM is freed) meanwhile ends as with fs.c's work, completing once
 * when the read reports. A read none waits for any more is canceled if it has not
 * started, and taken off the VM's list so that a later task starts a fresh one.
 */
struct script_load {
    script_load_t *next;    /* the VM's loads */
    vm_state_t *st;         /* NULL once off the list: reported, unwanted, or the VM is gone */
    sl_script_read_t *read; /* NULL once it reported */
    lua_task_t *waiters, *waiters_tail; /* through load_next, in start order */
    size_t live;                        /* waiters not ending */
    char key[];                         /* "@PATH": the chunk's name, its key in `chunks` */
};

/* Takes the load off its VM's list. */
static void unlist_load(script_load_t *load)
{
    vm_state_t *st = load->st;
    if (st == NULL)
        return;
    script_load_t **link = &st->loads;
    while (*link != load)
        link = &(*link)->next;
    *link = load->next;
    load->next = NULL;
    load->st = NULL;
}

/* The waiting task `lt` is ending: when no waiter is left alive, the read is not wanted. */
static void stop_waiting(lua_task_t *lt)
{
    script_load_t *load = lt->load;
    if (load == NULL || --load->live > 0)
        return;
    unlist_load(load);
    if (load->read)
        sl__script_read_cancel(load->read);
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
    int64_t lt_retry_after_ms = lt->path_refused ? -1 : lt->http_retry_after_ms;
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
        if (lt_retry_after_ms != 0) /* a delay, or a refused path's "never" */
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
    stop_waiting(lt);
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
    if (lt->timed_out) { /* what the timeout's timer would say, had the loop turned */
        char message[96];
        snprintf(message, sizeof(message), "timed out after %.3gs",
                 (double)sl__sched_task_timeout_ms(lt->task) / 1000);
        finish_fail(lt, SL_ETIMEDOUT, message);
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
    if (!sl__script_push_run(co, 1)) {
        lua_settop(co, 0);
        return false;
    }
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
    pa->code = code ? sl_value_str(code, &pa->code_len) : NULL;
    pa->script = script ? sl_value_str(script, NULL) : NULL;
    pa->unsafe = unsafe && sl_value_truthy(unsafe);
    *instructions = STEP_INSTRUCTIONS_DEFAULT;
    if (max && sl_value_type(max) == SL_TYPE_INT && sl_value_int_of(max) > 0)
        *instructions = (uint64_t)sl_value_int_of(max);
    return (pa->code == NULL) == (pa->script == NULL) ? SL_EINVAL : 0;
}

/* Runs `fn` protected on the VM's main state with two light userdata arguments. On an
 * error fails the task and returns false. */
static bool run_protected(lua_task_t *lt, lua_CFunction fn, void *arg1, void *arg2)
{
    lua_State *L = sl__vm_lua(lt->vm);
    int base = lua_gettop(L);
    lua_pushcfunction(L, sl__vm_msgh);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, arg1);
    lua_pushlightuserdata(L, arg2);
    sl__vm_mem_clear(lt->vm);
    int status = lua_pcall(L, 2, 0, base + 1);
    if (status == LUA_OK) {
        lua_settop(L, base);
        return true;
    }
    const char *msg = status == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1);
    char *copy = sl__strdup(msg ? msg : "?");
    lua_settop(L, base);
    finish_fail(lt, status == LUA_ERRMEM ? SL_ELIMIT : SL_ELUA, copy ? copy : "Lua error");
    sl__free(copy);
    return false;
}

/* Starts the prepared task: the main fiber resumes [chunk, env]. Until now `remaining`
 * held the task's whole budget. */
static void run_main(lua_task_t *lt)
{
    fiber_t *main = lt->main;
    sl__vm_budget_start(main->co, &main->budget, lt->remaining);
    main->budget.preemptible = true;
    lt->remaining = main->budget.remaining;
    lt->budget_message = main->budget.message;
    lt->hook = lua_gethook(main->co);
    sl__fiber_ready(main, 1);
    sl__fiber_run(lt);
}

typedef struct compile_args {
    const script_load_t *load;
    const char *text;
    size_t len;
} compile_args_t;

/* Protected: compiles the text read for a load into `chunks`. */
static int l_step_compile(lua_State *L)
{
    const compile_args_t *ca = lua_touserdata(L, 1);
    push_step_state(L, ca->load->st->vm);
    lua_getfield(L, -1, "chunks");
    if (sl__script_compile(L, ca->text, ca->len, ca->load->key, true) != LUA_OK)
        return lua_error(L);
    lua_setfield(L, -2, ca->load->key);
    return 0;
}

/* Compiles the text read for `load`, once for all its waiters. Returns 0, or the code to
 * fail them with and *error (NULL when no memory was left for the message). */
static int compile_script(const script_load_t *load, const char *text, size_t len, char **error)
{
    sl_vm_t *vm = load->st->vm;
    lua_State *L = sl__vm_lua(vm);
    int base = lua_gettop(L);
    compile_args_t ca = {load, text, len};
    lua_pushcfunction(L, sl__vm_msgh);
    lua_pushcfunction(L, l_step_compile);
    lua_pushlightuserdata(L, &ca);
    sl__vm_mem_clear(vm);
    int status = lua_pcall(L, 1, 0, base + 1);
    if (status != LUA_OK) {
        const char *msg = status == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1);
        *error = sl__strdup(msg ? msg : "Lua error");
    }
    lua_settop(L, base);
    return status == LUA_OK ? 0 : status == LUA_ERRMEM ? SL_ELIMIT : SL_ELUA;
}

/* Protected: the main coroutine of a task whose script (key at arg 2) is compiled now. */
static int l_step_attach(lua_State *L)
{
    lua_task_t *lt = lua_touserdata(L, 1);
    const char *key = lua_touserdata(L, 2);
    push_step_state(L, lt->vm);
    lua_getfield(L, -1, "chunks");
    if (lua_getfield(L, -1, key) != LUA_TFUNCTION)
        return luaL_error(L, "script '%s' was not compiled", key + 1);
    make_main(L, lt);
    return 0;
}

/* The waiter `lt` of a load that reported: it ends (a canceled one), fails with the
 * load's error, or runs. */
static void resume_waiter(lua_task_t *lt, const script_load_t *load, int code, const char *message)
{
    lt->load = NULL;
    lt->load_next = NULL;
    lt->work_pending--;
    if (lt->ending) {
        if (lt->work_pending == 0)
            sl__lua_task_settle(lt);
    } else if (code != 0) {
        finish_fail(lt, code, message);
    } else if (run_protected(lt, l_step_attach, lt, (void *)load->key)) {
        run_main(lt);
    }
}

/* sl_script_read_cb: the script is read (or failed, or was canceled); compiles it and
 * lets every waiter go on. Takes `text`. */
static void on_script_read(void *ud, int code, char *text, size_t len, const char *message)
{
    script_load_t *load = ud;
    char *error = NULL;
    load->read = NULL;
    if (load->st == NULL && code == 0) {
        code = SL_ECANCELED; /* no waiter is alive: nothing to compile for */
        message = "canceled";
    }
    if (code == 0) {
        code = compile_script(load, text, len, &error);
        message = code == 0 || error ? error : "out of memory";
    }
    unlist_load(load);
    sl__free(text);
    lua_task_t *lt;
    while ((lt = load->waiters) != NULL) { /* one at a time: a waiter may end others */
        load->waiters = lt->load_next;
        resume_waiter(lt, load, code, message);
    }
    sl__free(error);
    sl__free(load);
}

/* Makes the task wait for its script's read, starting the read unless a task of the
 * same path already did. Returns 0 or an SL_E code (the task then fails). */
static int wait_for_script(lua_task_t *lt, vm_state_t *st, const char *path)
{
    script_load_t *load = st->loads;
    while (load && strcmp(load->key + 1, path) != 0)
        load = load->next;
    if (load == NULL) {
        size_t len = strlen(path);
        if ((load = sl__calloc(1, sizeof(*load) + len + 2)) == NULL)
            return SL_ENOMEM;
        load->key[0] = '@';
        memcpy(load->key + 1, path, len + 1);
        int rc = sl__script_read_start(sl__lua_host->task_loop(lt->task), path, on_script_read,
                                       load, &load->read);
        if (rc < 0) {
            sl__free(load);
            return rc;
        }
        load->st = st;
        load->next = st->loads;
        st->loads = load;
    }
    if (load->waiters_tail)
        load->waiters_tail->load_next = lt;
    else
        load->waiters = lt;
    load->waiters_tail = lt;
    load->live++;
    lt->load = load;
    lt->work_pending++; /* the read: an ending task completes once it reports */
    return 0;
}

/* The task's state, linked into the VM's live tasks; NULL when out of memory. */
static lua_task_t *task_new(sl_task_t *task, vm_state_t *st)
{
    lua_task_t *lt = sl__calloc(1, sizeof(*lt));
    if (lt == NULL)
        return NULL;
    lt->task = task;
    lt->env_ref = LUA_NOREF;
    if ((lt->main = sl__fiber_new(lt)) == NULL) {
        sl__free(lt);
        return NULL;
    }
    sl__lua_host->task_set_data(task, lt);
    lt->vm = st->vm;
    lt->next = st->tasks;
    if (lt->next)
        lt->next->prev = lt;
    st->tasks = lt;
    return lt;
}

/* Prepares and runs the task, or makes it wait for its script to be read. */
static void task_begin(lua_task_t *lt, vm_state_t *st, prepare_args_t *pa)
{
    if (!run_protected(lt, l_step_prepare, pa, NULL))
        return;
    if (!pa->need_read) {
        run_main(lt);
        return;
    }
    int rc = wait_for_script(lt, st, pa->path);
    if (rc < 0) {
        char message[SL_SCRIPT_ERR_MAX];
        snprintf(message, sizeof(message), "cannot read script '%s': %s", pa->path,
                 sl_strerror(rc));
        finish_fail(lt, rc, message);
    }
}

static int lua_step_start(sl_task_t *task, const sl_value_t *args)
{
    if (sl_value_truthy(sl_value_get(args, "pool"))) {
        int rc = sl__lua_pooled_start(task, args, reserved_params, SL_COUNTOF(reserved_params));
        if (rc <= 0)
            return rc; /* in the pool, or out of memory; 1: no pool, run here */
    }
    prepare_args_t pa = {.args = args};
    uint64_t instructions;
    if (read_params(args, &pa, &instructions) < 0)
        return SL_EINVAL;
    vm_state_t *st = vm_state(sl__task_vm(task));
    if (st == NULL)
        return SL_ENOMEM;
    if (pa.script && (pa.path = sl__script_path(sl__task_workflow_dir(task), pa.script)) == NULL)
        return SL_ENOMEM;
    if ((pa.lt = task_new(task, st)) == NULL) {
        sl__free(pa.path);
        return SL_ENOMEM;
    }
    pa.lt->remaining = instructions;
    task_begin(pa.lt, st, &pa);
    sl__free(pa.path);
    return 0;
}

static void lua_step_cancel(sl_task_t *task)
{
    if (sl__lua_pooled_cancel(task))
        return;
    lua_task_t *lt = sl__lua_host->task_data(task);
    if (lt == NULL || lt->ending)
        return; /* an ending task completes once its file work (or script read) reports */
    finish_fail(lt, SL_ECANCELED, "canceled"); /* retire() cancels the fibers' IO first */
}

/* The VM is being freed: its live tasks end canceled (those waiting for a script once
 * the read reports), and the kind's state goes. */
static void steps_detach(void *data)
{
    vm_state_t *st = data;
    while (st->loads)
        unlist_load(st->loads); /* their reads report to no VM */
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
    sl__require_init();
    sl__vm_set_url_join(sl__url_helper());
    return &lua_plugin;
}
