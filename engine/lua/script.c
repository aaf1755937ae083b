/*
 * The loader of Lua step code (lua/script.h): reading scripts, compiling code, building a
 * task's _ENV. The loop (step.c) and the worker (pooled.c) both use it, so a script reads,
 * compiles and sees the same names wherever it runs.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/require.h"
#include "lua/script.h"

static const char chunk_prefix[] = "local _ENV = ...; ";

static const char *const unsafe_names[] = {
    "io", "os", "package", "debug", "require", "load", "loadfile", "dofile", "collectgarbage"};

/* Threadpool threads count too, hence atomic. */
static atomic_uint_fast64_t reads_count;

/* ---- reading ------------------------------------------------------------------------ */

char *sl__script_path(const char *dir, const char *script)
{
    if (script[0] == '/' || dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
        return sl__strdup(script);
    return sl__asprintf("%s/%s", dir, script);
}

sl_fsio_result_t sl__script_read_file(const char *path, char **text, size_t *len)
{
    atomic_fetch_add_explicit(&reads_count, 1, memory_order_relaxed);
    /* fsio opens with O_NONBLOCK and reads regular files only: a FIFO nobody writes to
     * fails at once instead of parking the thread. */
    return sl__fsio_read(path, SL_SCRIPT_MAX_BYTES, text, len);
}

uint64_t sl__script_read_count(void)
{
    return atomic_load_explicit(&reads_count, memory_order_relaxed);
}

int sl__script_read_error(const char *path, sl_fsio_result_t result, char *buf, size_t size)
{
    if (result.stage == SL_FSIO_TOO_BIG) {
        snprintf(buf, size, "script '%s' is larger than " SL_SCRIPT_MAX_TEXT, path);
        return SL_ELIMIT;
    }
    if (result.stage == SL_FSIO_SPECIAL || (result.stage == SL_FSIO_IO && result.error == EISDIR))
        snprintf(buf, size, "script '%s' is not a regular file", path);
    else
        snprintf(buf, size, "cannot open script '%s': %s", path,
                 strerror(result.error ? result.error : EIO));
    return SL_EIO;
}

/* ---- reading in the threadpool -------------------------------------------------------- */

struct sl_script_read {
    uv_work_t work;
    sl_script_read_cb done;
    void *ud;
    char *text;
    size_t len;
    sl_fsio_result_t result;
    char path[]; /* the work sees only this copy */
};

static void read_work(uv_work_t *req)
{
    sl_script_read_t *read = req->data;
    read->result = sl__script_read_file(read->path, &read->text, &read->len);
}

static void after_read(uv_work_t *req, int status)
{
    sl_script_read_t *read = req->data;
    char message[SL_SCRIPT_ERR_MAX];
    int code = 0;
    if (status == UV_ECANCELED) {
        code = SL_ECANCELED;
        snprintf(message, sizeof(message), "canceled");
    } else if (read->result.stage != SL_FSIO_OK) {
        code = sl__script_read_error(read->path, read->result, message, sizeof(message));
    }
    char *text = code == 0 ? read->text : NULL;
    if (code != 0)
        free(read->text);
    read->done(read->ud, code, text, code == 0 ? read->len : 0, code == 0 ? NULL : message);
    sl__free(read);
}

int sl__script_read_start(uv_loop_t *loop, const char *path, sl_script_read_cb done, void *ud,
                          sl_script_read_t **out)
{
    size_t path_len = strlen(path);
    sl_script_read_t *read = sl__calloc(1, sizeof(*read) + path_len + 1);
    if (read == NULL)
        return SL_ENOMEM;
    memcpy(read->path, path, path_len + 1);
    read->done = done;
    read->ud = ud;
    read->work.data = read;
    int rc = uv_queue_work(loop, &read->work, read_work, after_read);
    if (rc != 0) {
        sl__free(read);
        return SL_ESYS;
    }
    *out = read;
    return 0;
}

void sl__script_read_cancel(sl_script_read_t *read)
{
    uv_cancel((uv_req_t *)&read->work); /* fails (harmlessly) once the work has started */
}

/* ---- compiling ------------------------------------------------------------------------ */

/* The chunk's text in pieces, so a large script is not copied to prepend the prefix. */
typedef struct chunk_reader {
    const char *parts[2];
    size_t lens[2];
    int next;
} chunk_reader_t;

static const char *read_parts(lua_State *L, void *ud, size_t *size)
{
    (void)L;
    chunk_reader_t *r = ud;
    while (r->next < 2 && r->lens[r->next] == 0)
        r->next++;
    if (r->next == 2) {
        *size = 0;
        return NULL;
    }
    *size = r->lens[r->next];
    return r->parts[r->next++];
}

int sl__script_compile(lua_State *L, const char *source, size_t len, const char *chunkname,
                       bool is_file)
{
    if (is_file && len > 0 && source[0] == '#') {
        /* Drop the #! line but keep its newline: the file's line 2 stays line 2. */
        const char *newline = memchr(source, '\n', len);
        size_t skip = newline ? (size_t)(newline - source) : len;
        source += skip;
        len -= skip;
    }
    chunk_reader_t reader = {{chunk_prefix, source}, {sizeof(chunk_prefix) - 1, len}, 0};
    return lua_load(L, read_parts, &reader, chunkname, "t");
}

/* ---- a task's _ENV ---------------------------------------------------------------------- */

void sl__script_push_env_mt(lua_State *L, void (*push_module)(lua_State *L, int sandbox),
                            lua_CFunction print, lua_CFunction fetch)
{
    lua_createtable(L, 0, 2);
    int mt = lua_gettop(L);
    lua_createtable(L, 0, 48); /* the scope: a copy of the sandbox, plus the module */
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
    lua_pushcfunction(L, print);
    lua_setfield(L, scope, "print");
    sl__require_push(L, mt, fetch);
    lua_setfield(L, scope, "require");
    lua_pop(L, 1); /* the sandbox */
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
}

/* Pushes `args` minus the skipped keys; nil values become null, so the key stays. */
static void push_args(lua_State *L, const sl_script_task_t *task)
{
    size_t n = sl_value_len(task->args);
    lua_createtable(L, 0, (int)(n < 64 ? n : 64));
    for (size_t i = 0; i < n; i++) {
        const char *key;
        const sl_value_t *v = sl_value_entry(task->args, i, &key);
        bool skipped = false;
        for (size_t j = 0; j < task->skip_count && !skipped; j++)
            skipped = strcmp(key, task->skip[j]) == 0;
        if (skipped)
            continue;
        sl__vm_push_raw(L, v, 1);
        lua_setfield(L, -2, key);
    }
}

/* Pushes ctx {step, item, index, attempt, run} for the env at `env`. */
static void push_ctx(lua_State *L, int env, const sl_script_task_t *task)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, task->step);
    lua_setfield(L, -2, "step");
    lua_getfield(L, env, "item");
    lua_setfield(L, -2, "item");
    lua_getfield(L, env, "index");
    lua_setfield(L, -2, "index");
    lua_pushinteger(L, (lua_Integer)task->attempt);
    lua_setfield(L, -2, "attempt");
    lua_getfield(L, env, "run"); /* the scope's run info */
    lua_setfield(L, -2, "run");
}

void sl__script_push_env(lua_State *L, int mt, const sl_script_task_t *task)
{
    mt = lua_absindex(L, mt);
    lua_createtable(L, 0, 8);
    int env = lua_gettop(L);
    lua_pushvalue(L, mt);
    lua_setmetatable(L, env);
    sl__vm_push_raw(L, task->item, 0);
    lua_setfield(L, env, "item");
    if (task->index > 0)
        lua_pushinteger(L, (lua_Integer)task->index);
    else
        lua_pushnil(L);
    lua_setfield(L, env, "index");
    push_args(L, task);
    lua_setfield(L, env, "args");
    push_ctx(L, env, task);
    lua_setfield(L, env, "ctx");
    for (size_t i = 0; task->unsafe && i < SL_COUNTOF(unsafe_names); i++) {
        lua_getglobal(L, unsafe_names[i]);
        lua_setfield(L, env, unsafe_names[i]);
    }
}

bool sl__script_push_run(lua_State *L, int env)
{
    env = lua_absindex(L, env);
    lua_pushliteral(L, "run");
    if (lua_rawget(L, env) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        return false;
    }
    lua_pushliteral(L, "args");
    lua_rawget(L, env);
    lua_pushliteral(L, "ctx");
    lua_rawget(L, env);
    return true;
}
