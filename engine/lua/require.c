/*
 * `require` in the sandbox of Lua steps (docs/lua.md, "The Lua library"): modules come from
 * the shipped library folder (lua/ beside the binary in a build tree, PREFIX/share/sluice/lua
 * installed) and then from the workflow file's folder, as Lua source only: no package.path,
 * no C modules, no bytecode. A name is dot-separated components ("sluice.crawl" is
 * sluice/crawl.lua, or sluice/crawl/init.lua); an empty component, "..", '/' or '\' is
 * refused, so a name never leaves those two folders.
 *
 * The same `require` serves the loop and the worker: a small Lua function over three
 * upvalues, the VM's `loaded` table (package.loaded's semantics: a module's result is kept
 * per VM, `true` for nil), `fetch` and `compile`. On the loop, fetch reads the
 * candidates in libuv's threadpool through lua/script.h's reader (regular files, 16 MiB) and
 * the calling fiber yields meanwhile; a worker (not the loop) reads them itself. compile
 * loads the text with mode "t", under an _ENV of the module's own whose __index is the
 * step scope, so a module sees the sandbox and `sluice` but not a task's globals.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua/fiber.h"
#include "lua/require.h"
#include "lua/script.h"
#include "sched/task.h"

#define NAME_MAX_BYTES 200
#define CANDIDATES 4

static char lib_dir[PATH_MAX];

void sl__require_init(void)
{
    const char *exe = sl__exe_dir();
    struct stat st;
    if (exe == NULL || lib_dir[0] != '\0')
        return;
    snprintf(lib_dir, sizeof(lib_dir), "%s/lua", exe); /* a build tree */
    if (stat(lib_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(lib_dir, sizeof(lib_dir), "%s/../%s", exe, SLUICE_INSTALL_LUA_DIR);
}

const char *sl__require_lib_dir(void)
{
    return lib_dir;
}

/* ---- names and candidate files --------------------------------------------------------- */

/* Checks module name `name` and writes its relative file stem ("sluice/crawl") to `stem`.
 * Returns NULL, or why the name is refused. */
static const char *name_stem(const char *name, size_t len, char *stem)
{
    if (len == 0)
        return "the name is empty";
    if (len > NAME_MAX_BYTES)
        return "the name is longer than 200 bytes";
    if (strlen(name) != len)
        return "the name holds a NUL byte";
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '/' || c == '\\')
            return "a module name is dot-separated, without '/' or '\\'";
        if ((unsigned char)c < 0x20 || c == 0x7f)
            return "the name holds a control character";
        if (c == '.' && (i == 0 || i + 1 == len || name[i + 1] == '.'))
            return "a component of the name is empty or '..'";
        stem[i] = c == '.' ? '/' : c;
    }
    stem[len] = '\0';
    return NULL;
}

/* The candidate files of `stem`, in order: the library's, then the workflow folder's. */
static int candidates(const char *stem, const char *wf_dir, char *out[CANDIDATES])
{
    const char *dirs[2] = {lib_dir, wf_dir};
    int n = 0;
    for (int d = 0; d < 2; d++) {
        if (d == 0 && lib_dir[0] == '\0')
            continue;
        char rel[NAME_MAX_BYTES + 16];
        snprintf(rel, sizeof(rel), "%s.lua", stem);
        out[n++] = sl__script_path(dirs[d], rel);
        snprintf(rel, sizeof(rel), "%s/init.lua", stem);
        out[n++] = sl__script_path(dirs[d], rel);
    }
    for (int i = 0; i < n; i++)
        if (out[i] == NULL)
            return SL_ENOMEM;
    return n;
}

/* A module's files and what reading them gave; the work (threadpool or worker) sees only
 * this. */
typedef struct module_read {
    char *paths[CANDIDATES];
    int count;
    int found;  /* index of the file read, or -1 */
    char *text; /* malloc'd (the C library: it is read off the loop) */
    size_t len;
    char message[SL_SCRIPT_ERR_MAX]; /* when found is -1 */
} module_read_t;

static void module_read_clear(module_read_t *r)
{
    for (int i = 0; i < r->count; i++)
        sl__free(r->paths[i]);
    free(r->text);
    r->count = 0;
    r->text = NULL;
}

/* Reads the first candidate that exists (blocking). */
static void module_read_run(module_read_t *r, const char *name)
{
    r->found = -1;
    for (int i = 0; i < r->count; i++) {
        sl_fsio_result_t res = sl__script_read_file(r->paths[i], &r->text, &r->len);
        if (res.stage == SL_FSIO_OK) {
            r->found = i;
            return;
        }
        if (res.stage == SL_FSIO_IO && (res.error == ENOENT || res.error == ENOTDIR))
            continue;
        char why[SL_SCRIPT_ERR_MAX - NAME_MAX_BYTES - 16];
        sl__script_read_error(r->paths[i], res, why, sizeof(why));
        snprintf(r->message, sizeof(r->message), "require '%s': %s", name, why);
        return;
    }
    int at = snprintf(r->message, sizeof(r->message), "require: module '%s' not found:", name);
    for (int i = 0; i < r->count && at > 0 && (size_t)at < sizeof(r->message); i++)
        at += snprintf(r->message + at, sizeof(r->message) - (size_t)at, "%s no file '%s'",
                       i ? "," : "", r->paths[i]);
}

/* Fills `r` for `name` at arg 1; on a refused name pushes nil and the message and returns
 * false. Raises on out of memory. */
static bool module_read_init(lua_State *L, module_read_t *r, const char *wf_dir)
{
    size_t len;
    memset(r, 0, sizeof(*r));
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        lua_pushfstring(L, "require: the module name must be a string, not a %s",
                        luaL_typename(L, 1));
        return false;
    }
    const char *name = lua_tolstring(L, 1, &len);
    char stem[NAME_MAX_BYTES + 1];
    const char *why = name_stem(name, len, stem);
    if (why) {
        lua_pushnil(L);
        lua_pushfstring(L, "require: bad module name '%s': %s", name, why);
        return false;
    }
    int n = candidates(stem, wf_dir, r->paths);
    if (n < 0) {
        for (int i = 0; i < CANDIDATES; i++)
            sl__free(r->paths[i]);
        luaL_error(L, "require: out of memory");
    }
    r->count = n;
    return true;
}

/* Pushes what fetch returns for a finished read: text and path, or nil and the message. */
static int push_read(lua_State *L, const module_read_t *r)
{
    if (r->found < 0) {
        lua_pushnil(L);
        lua_pushstring(L, r->message);
        return 2;
    }
    lua_pushlstring(L, r->text ? r->text : "", r->len);
    lua_pushstring(L, r->paths[r->found]);
    return 2;
}

/* ---- fetch on the loop: the threadpool ---------------------------------------------------- */

typedef struct require_op {
    fiber_op_t op;
    lua_task_t *owner; /* counts this op in work_pending until it reports */
    uv_work_t work;
    atomic_bool canceled;
    bool ran;
    module_read_t read;
    char name[NAME_MAX_BYTES + 1];
} require_op_t;

static void require_work(uv_work_t *req)
{
    require_op_t *op = req->data;
    if (atomic_load(&op->canceled))
        return;
    module_read_run(&op->read, op->name);
    op->ran = true;
}

static void require_free(fiber_op_t *base)
{
    require_op_t *op = (require_op_t *)base;
    module_read_clear(&op->read);
    sl__free(op);
}

static void require_cancel(fiber_op_t *base)
{
    require_op_t *op = (require_op_t *)base;
    atomic_store(&op->canceled, true);
    uv_cancel((uv_req_t *)&op->work); /* the after-work callback frees the op */
}

static int require_push(lua_State *L, fiber_op_t *base)
{
    require_op_t *op = (require_op_t *)base;
    lua_pushboolean(L, 1); /* a failure is nil and a message: require raises it at its caller */
    if (!op->ran) {
        lua_pushnil(L);
        lua_pushfstring(L, "require '%s': canceled", op->name);
        return 3;
    }
    return 1 + push_read(L, &op->read);
}

static const fiber_op_kind_t require_kind = {require_cancel, require_push, require_free};

static void after_require(uv_work_t *req, int status)
{
    require_op_t *op = req->data;
    lua_task_t *owner = op->owner;
    (void)status;
    owner->work_pending--;
    bool settle = owner->ending && owner->work_pending == 0;
    sl__fiber_op_done(&op->op);
    if (settle)
        sl__lua_task_settle(owner);
}

/* fetch(name) on the loop: yields until the module's file is read. */
static int l_require_fetch_loop(lua_State *L)
{
    fiber_t *f = sl__fiber_for_io(L, "require");
    lua_settop(L, 1);
    sl_vm_box_t *box = sl__vm_box(L); /* frees the op if module_read_init raises */
    require_op_t *op = sl__calloc(1, sizeof(*op));
    if (op == NULL)
        return luaL_error(L, "require: out of memory");
    box->text = (char *)op;
    if (!module_read_init(L, &op->read, sl__task_workflow_dir(f->lt->task))) {
        sl__vm_box_clear(box);
        return 2;
    }
    box->text = NULL;
    snprintf(op->name, sizeof(op->name), "%s", lua_tostring(L, 1));
    op->op.kind = &require_kind;
    op->work.data = op;
    atomic_init(&op->canceled, false);
    lua_settop(L, 1);
    int rc =
        uv_queue_work(sl__lua_host->task_loop(f->lt->task), &op->work, require_work, after_require);
    if (rc != 0) {
        require_free(&op->op);
        return luaL_error(L, "require: cannot queue file work: %s", uv_strerror(rc));
    }
    op->owner = f->lt;
    f->lt->work_pending++;
    return sl__fiber_wait(L, f, &op->op);
}

/* ---- fetch in a worker: a plain read ------------------------------------------------------ */

/* The workflow folder a worker's require reads from (pooled.c sets it per job). */
static const char pooled_dir_key = 0;

void sl__require_set_pooled_dir(lua_State *L, const char *dir)
{
    lua_pushstring(L, dir ? dir : "");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &pooled_dir_key);
}

/* The read's state while it runs: a userdata, so an error cannot lose it. */
static int l_read_gc(lua_State *L)
{
    module_read_clear(lua_touserdata(L, 1));
    return 0;
}

static int l_require_fetch_pooled(lua_State *L)
{
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &pooled_dir_key);
    const char *dir = lua_tostring(L, 2);
    module_read_t *r = lua_newuserdatauv(L, sizeof(*r), 0);
    r->count = 0;
    r->text = NULL;
    if (luaL_newmetatable(L, "sluice.module_read")) {
        lua_pushcfunction(L, l_read_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (!module_read_init(L, r, dir ? dir : ""))
        return 2;
    module_read_run(r, lua_tostring(L, 1));
    int n = push_read(L, r);
    module_read_clear(r);
    return n;
}

lua_CFunction sl__require_fetch(bool pooled)
{
    return pooled ? l_require_fetch_pooled : l_require_fetch_loop;
}

/* ---- compile, and the require function ------------------------------------------------------ */

/* compile(text, path) -> the module's chunk, under an _ENV of its own whose metatable is
 * the step scope's (upvalue 1); or nil and the message. */
static int l_require_compile(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *path = luaL_checkstring(L, 2);
    if (len > 0 && text[0] == LUA_SIGNATURE[0]) {
        lua_pushnil(L);
        lua_pushfstring(L,
                        "require: '%s' is precompiled Lua (bytecode): only source text is "
                        "loaded",
                        path);
        return 2;
    }
    const char *chunkname = lua_pushfstring(L, "@%s", path);
    if (luaL_loadbufferx(L, text, len, chunkname, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_createtable(L, 0, 4); /* the module's globals */
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_setmetatable(L, -2);
    if (lua_setupvalue(L, -2, 1) == NULL) /* a main chunk's one upvalue is _ENV */
        lua_pop(L, 1);
    return 1;
}

/* running(): the calling coroutine, to tell a cycle from another task loading the same. */
static int l_require_running(lua_State *L)
{
    lua_pushthread(L);
    return 1;
}

/* `loading[name]` is the coroutine running the module's chunk: the same one requiring it
 * again is a cycle (an error, not an endless recursion); another coroutine (a task or
 * a sluice.map function that asks at the same moment) loads it too, and the first result
 * is kept. */
static const char require_source[] =
    "local loaded, loading, fetch, compile, error, pcall, running = ...\n"
    "return function(name)\n"
    "  local module = loaded[name]\n"
    "  if module ~= nil then return module end\n"
    "  local co = running()\n"
    "  if name ~= nil and loading[name] == co then\n"
    "    error(\"require: module '\" .. tostring(name) .. \"' requires itself (a cycle)\", 2)\n"
    "  end\n"
    "  local text, path = fetch(name)\n"
    "  if text == nil then error(path, 2) end\n"
    "  local chunk, message = compile(text, path)\n"
    "  if chunk == nil then error(message, 2) end\n"
    "  local previous = loading[name]\n"
    "  loading[name] = co\n"
    "  local ok, result = pcall(chunk, name, path)\n"
    "  loading[name] = previous\n"
    "  if not ok then error(result, 0) end\n"
    "  if result == nil then result = true end\n"
    "  if loaded[name] == nil then loaded[name] = result end\n"
    "  return loaded[name]\n"
    "end\n";

void sl__require_push(lua_State *L, int env_mt, lua_CFunction fetch)
{
    env_mt = lua_absindex(L, env_mt);
    if (luaL_loadbufferx(L, require_source, sizeof(require_source) - 1, "=require", "t") != LUA_OK)
        lua_error(L);
    lua_newtable(L); /* loaded: this VM's modules */
    lua_newtable(L); /* loading */
    lua_pushcfunction(L, fetch);
    lua_pushvalue(L, env_mt);
    lua_pushcclosure(L, l_require_compile, 1);
    lua_getglobal(L, "error");
    lua_getglobal(L, "pcall");
    lua_pushcfunction(L, l_require_running);
    lua_call(L, 7, 1);
}
