/*
 * sluice.fs.read and sluice.fs.write: file IO for Lua steps in libuv's
 * threadpool (uv_queue_work), never on the loop thread. The calling fiber
 * yields until the work is done. The work sees only the op's own copies of
 * the path and bytes, so a canceled task can go away while it runs.
 *
 * A write is file.write's (the same code, util/fsio.c): the bytes go to a
 * temporary file beside the target, which is fsync'd and renamed over it;
 * missing folders are created, and removed again when the write fails. With
 * `append` the bytes are appended in one write() instead.
 * Relative paths are against the working directory (SPEC §2, data paths), and every path
 * is confined beneath the run's roots (util/confine.h: the working directory and
 * limits.fs.allow) in safe and unsafe steps alike; one that leaves them raises the
 * standard message, and the task is not retried.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "host/host.h"
#include "lua/fiber.h"
#include "plugin/registry.h"
#include "util/fsio.h"
#include "sched/task.h"

#define FS_READ_MAX_DEFAULT ((int64_t)64 << 20)

typedef struct fs_op {
    fiber_op_t op;
    lua_task_t *owner; /* counts this op in work_pending until it reports */
    const sl_confine_t *roots; /* the run's (borrowed: the task outlives its work) */
    uv_work_t work;
    bool write;
    bool append;
    char *path;
    char *data; /* write: the bytes; read: what was read */
    size_t len;
    int64_t max_bytes;
    atomic_bool canceled; /* set on the loop, read by the work */
    int error;            /* errno of the failure; 0 = none */
    bool outside;         /* the path leaves the roots */
    const char *cause;    /* static text instead of strerror(error) */
} fs_op_t;

/* ---- threadpool side --------------------------------------------------------------- */

/* What a script reads after "cannot write 'P': " when strerror would not say it. */
static const char *cause_of(sl_fsio_stage_t stage)
{
    switch (stage) {
    case SL_FSIO_NOT_DIR: return "a parent is not a folder";
    case SL_FSIO_NO_NAME: return "the path names a folder";
    case SL_FSIO_TOO_BIG: return "file is larger than max_bytes";
    case SL_FSIO_SPECIAL: return "not a regular file (a FIFO, device or socket)";
    default: return NULL;
    }
}

/* The work itself is util/fsio.c, which file.read and file.write run too. */
static void work_cb(uv_work_t *req)
{
    fs_op_t *op = req->data;
    if (atomic_load(&op->canceled))
        return;
    sl_fsio_result_t r =
        op->write ? sl__fsio_write(op->roots, op->path, op->data, op->len, op->append,
                                   &op->canceled)
                  : sl__fsio_read_in(op->roots, op->path, op->max_bytes, &op->data, &op->len);
    op->outside = r.stage == SL_FSIO_OUTSIDE;
    if (r.stage != SL_FSIO_OK) {
        op->error = r.error ? r.error : EIO;
        op->cause = cause_of(r.stage);
    }
}

/* ---- loop side ----------------------------------------------------------------------- */

static void fs_free(fiber_op_t *base)
{
    fs_op_t *op = (fs_op_t *)base;
    sl__free(op->path);
    sl__free(op->data);
    sl__free(op);
}

static void fs_cancel(fiber_op_t *base)
{
    fs_op_t *op = (fs_op_t *)base;
    atomic_store(&op->canceled, true); /* running work stops at its next check */
    uv_cancel((uv_req_t *)&op->work);  /* the after-work callback frees the op */
}

static int fs_push(lua_State *L, fiber_op_t *base)
{
    fs_op_t *op = (fs_op_t *)base;
    if (op->outside) {
        char message[1024];
        sl__confine_outside_message(op->path, message, sizeof(message));
        lua_pushboolean(L, 0);
        lua_pushstring(L, message);
        return 2;
    }
    if (op->error) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "cannot %s '%s': %s", op->write ? "write" : "read", op->path,
                        op->cause ? op->cause : strerror(op->error));
        return 2;
    }
    lua_pushboolean(L, 1);
    if (op->write)
        lua_pushinteger(L, (lua_Integer)op->len);
    else
        lua_pushlstring(L, op->data ? op->data : "", op->len);
    return 2;
}

static const fiber_op_kind_t fs_kind = {fs_cancel, fs_push, fs_free};

static void after_work_cb(uv_work_t *req, int status)
{
    fs_op_t *op = req->data;
    lua_task_t *owner = op->owner;
    if (status == UV_ECANCELED && op->error == 0)
        op->error = ECANCELED;
    owner->work_pending--;
    if (op->outside)
        owner->path_refused = true; /* an outside path stays outside: no retry */
    bool settle = owner->ending && owner->work_pending == 0;
    sl__fiber_op_done(&op->op); /* an ending task's ops have no fiber: this frees the op */
    if (settle)
        sl__lua_task_settle(owner);
}

/* The path argument at 1: a non-empty string without NUL bytes. Raises. */
static const char *path_arg(lua_State *L, const char *what)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    if (len == 0 || strlen(path) != len)
        luaL_error(L, "%s: the path must be a non-empty string without NUL bytes", what);
    return path;
}

/* Queues the op (which owns its copies) and waits for it; frees it and raises on failure. */
static int fs_start(lua_State *L, fiber_t *f, fs_op_t *op, const char *what)
{
    op->op.kind = &fs_kind;
    op->work.data = op;
    op->roots = sl__host_roots(f->lt->task);
    atomic_init(&op->canceled, false);
    int rc = uv_queue_work(sl__lua_host->task_loop(f->lt->task), &op->work, work_cb, after_work_cb);
    if (rc != 0) {
        fs_free(&op->op);
        return luaL_error(L, "%s: cannot queue file work: %s", what, uv_strerror(rc));
    }
    op->owner = f->lt;
    f->lt->work_pending++;
    return sl__fiber_wait(L, f, &op->op);
}

static int l_fs_read(lua_State *L)
{
    const char *path = path_arg(L, "sluice.fs.read");
    int64_t max_bytes = FS_READ_MAX_DEFAULT;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        if (lua_getfield(L, 2, "max_bytes") != LUA_TNIL) {
            int ok = 0;
            lua_Integer n = lua_tointegerx(L, -1, &ok);
            if (!ok || n < 0)
                return luaL_error(L, "sluice.fs.read: 'max_bytes' must be a non-negative "
                                     "integer");
            max_bytes = n;
        }
    }
    fiber_t *f = sl__fiber_for_io(L, "sluice.fs.read");
    fs_op_t *op = sl__calloc(1, sizeof(*op));
    if (op == NULL || (op->path = sl__strdup(path)) == NULL) {
        sl__free(op);
        return luaL_error(L, "sluice.fs.read: out of memory");
    }
    op->max_bytes = max_bytes;
    return fs_start(L, f, op, "sluice.fs.read");
}

/* The bytes to write, from the value at 2: a string as is, anything else as JSON and a
 * newline (as file.write). Kept in the box on top of the stack. Raises. */
static void write_data(lua_State *L, sl_vm_box_t *box, const char **data, size_t *len)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        *data = lua_tolstring(L, 2, len);
        return;
    }
    char err[256];
    int rc = sl__vm_pull(L, 2, &box->value, err, sizeof(err));
    if (rc < 0)
        luaL_error(L, "sluice.fs.write: %s", rc == SL_ENOMEM ? "out of memory" : err);
    size_t json_len = 0;
    if (sl_value_to_json(box->value, &box->text, &json_len) < 0)
        luaL_error(L, "sluice.fs.write: the JSON text is too large");
    char *text = sl__realloc(box->text, json_len + 1);
    if (text == NULL)
        luaL_error(L, "sluice.fs.write: out of memory");
    text[json_len] = '\n';
    box->text = text;
    *data = text;
    *len = json_len + 1;
}

static int l_fs_write(lua_State *L)
{
    const char *path = path_arg(L, "sluice.fs.write");
    luaL_argexpected(L, !lua_isnoneornil(L, 2), 2, "a string or a value to write as JSON");
    bool append = false;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        append = lua_getfield(L, 3, "append") != LUA_TNIL && lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    fiber_t *f = sl__fiber_for_io(L, "sluice.fs.write");
    sl_vm_box_t *box = sl__vm_box(L);
    const char *data;
    size_t len;
    write_data(L, box, &data, &len);
    fs_op_t *op = sl__calloc(1, sizeof(*op));
    if (op == NULL || (op->path = sl__strdup(path)) == NULL ||
        (op->data = sl__malloc(len ? len : 1)) == NULL) {
        if (op)
            sl__free(op->path);
        sl__free(op);
        return luaL_error(L, "sluice.fs.write: out of memory");
    }
    memcpy(op->data, data, len);
    op->len = len;
    op->write = true;
    op->append = append;
    sl__vm_box_clear(box);
    return fs_start(L, f, op, "sluice.fs.write");
}

static const luaL_Reg fs_funcs[] = {
    {"read", l_fs_read},
    {"write", l_fs_write},
    {NULL, NULL},
};

void sl__lua_open_fs(lua_State *L, int module)
{
    luaL_newlib(L, fs_funcs);
    lua_setfield(L, module, "fs");
}
