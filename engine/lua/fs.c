/*
 * sluice.fs.read and sluice.fs.write: file IO for Lua steps in libuv's
 * threadpool (uv_queue_work), never on the loop thread. The calling fiber
 * yields until the work is done. The work sees only the op's own copies of
 * the path and bytes, so a canceled task can go away while it runs.
 *
 * A write is atomic as file.write's: the bytes go to a temporary file beside
 * the target, which is fsync'd and renamed over it; missing folders are
 * created. With `append` the bytes are appended in one write() instead.
 * Relative paths are against the working directory (SPEC §2, data paths).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lua/fiber.h"
#include "plugin/registry.h"
#include "sched/task.h"

#define FS_READ_MAX_DEFAULT ((int64_t)64 << 20)
#define FS_TEMP_ATTEMPTS 64
#define FS_TEMP_BASE_MAX 100
#define FS_WRITE_CHUNK ((size_t)1 << 20)

typedef struct fs_op {
    fiber_op_t op;
    lua_task_t *owner; /* counts this op in work_pending until it reports */
    uv_work_t work;
    bool write;
    bool append;
    char *path;
    char *data; /* write: the bytes; read: what was read */
    size_t len;
    int64_t max_bytes;
    atomic_bool canceled; /* set on the loop, read by the work */
    int error;            /* errno of the failure; 0 = none */
    const char *cause;    /* static text instead of strerror(error) */
} fs_op_t;

/* ---- threadpool side --------------------------------------------------------------- */

static int fail(fs_op_t *op, int error, const char *cause)
{
    op->error = error ? error : EIO;
    op->cause = cause;
    return -1;
}

static void read_fd(fs_op_t *op, int fd, size_t size_hint)
{
    size_t limit = (size_t)op->max_bytes + 1, cap = size_hint + 1 < limit ? size_hint + 1 : limit;
    if (cap < 4096)
        cap = limit < 4096 ? limit : 4096;
    if ((op->data = sl__malloc(cap)) == NULL) {
        fail(op, ENOMEM, NULL);
        return;
    }
    for (;;) {
        if (op->len == cap) {
            if (cap == limit)
                break;
            size_t next = cap > limit / 2 ? limit : cap * 2;
            char *grown = sl__realloc(op->data, next);
            if (grown == NULL) {
                fail(op, ENOMEM, NULL);
                return;
            }
            op->data = grown;
            cap = next;
        }
        ssize_t n = read(fd, op->data + op->len, cap - op->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(op, errno, NULL);
            return;
        }
        if (n == 0)
            break;
        op->len += (size_t)n;
    }
    if (op->len > (size_t)op->max_bytes)
        fail(op, EFBIG, "file is larger than max_bytes");
}

static void read_work(fs_op_t *op)
{
    /* O_NONBLOCK: a FIFO nobody writes to must not park a threadpool thread. */
    int fd = open(op->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        fail(op, errno, NULL);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        fail(op, errno, NULL);
    else if (S_ISDIR(st.st_mode))
        fail(op, EISDIR, NULL);
    else if (!S_ISREG(st.st_mode))
        fail(op, EINVAL, "not a regular file (a FIFO, device or socket)");
    else if (st.st_size > op->max_bytes)
        fail(op, EFBIG, "file is larger than max_bytes");
    else
        read_fd(op, fd, (size_t)st.st_size);
    close(fd);
}

static int write_all(int fd, const char *buf, size_t len, atomic_bool *canceled)
{
    while (len > 0) {
        if (canceled && atomic_load(canceled))
            return ECANCELED;
        ssize_t n = write(fd, buf, canceled && len > FS_WRITE_CHUNK ? FS_WRITE_CHUNK : len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Creates the missing folders of `dir` (modified and restored). */
static int make_parents(fs_op_t *op, char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    size_t len = strlen(dir);
    for (size_t i = 1; i <= len; i++) {
        if ((i < len && dir[i] != '/') || dir[i - 1] == '/')
            continue;
        char saved = dir[i];
        dir[i] = '\0';
        int rc = mkdir(dir, 0777), error = errno;
        if (rc != 0 && stat(dir, &st) == 0) {
            rc = S_ISDIR(st.st_mode) ? 0 : -1;
            error = ENOTDIR;
        }
        dir[i] = saved;
        if (rc != 0)
            return fail(op, error, error == ENOTDIR ? "a parent is not a folder" : NULL);
    }
    return 0;
}

static int open_temp(const char *dir, const char *base, char **out_name)
{
    static atomic_uint counter;
    size_t size = strlen(dir) + FS_TEMP_BASE_MAX + 32;
    char *name = sl__malloc(size);
    if (name == NULL)
        return -ENOMEM;
    for (int attempt = 0; attempt < FS_TEMP_ATTEMPTS; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned salt = atomic_fetch_add(&counter, 1);
        unsigned tag = (unsigned)now.tv_nsec ^ (salt * 2654435761u) ^ ((unsigned)getpid() << 16);
        snprintf(name, size, "%s/.%.*s.%08x.tmp", dir, FS_TEMP_BASE_MAX, base, tag);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *out_name = name;
            return fd;
        }
        if (errno != EEXIST) {
            int error = errno;
            sl__free(name);
            return -error;
        }
    }
    sl__free(name);
    return -EEXIST;
}

/* Temporary file, write, fsync, rename; the temporary file never survives a failure. */
static int write_replace(fs_op_t *op, const char *dir, const char *base)
{
    char *temp = NULL;
    int fd = open_temp(dir, base, &temp);
    if (fd < 0)
        return -fd;
    struct stat st;
    if (stat(op->path, &st) == 0 && S_ISREG(st.st_mode))
        fchmod(fd, st.st_mode & 07777); /* keep the target's permissions */
    int error = write_all(fd, op->data, op->len, &op->canceled);
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && atomic_load(&op->canceled))
        error = ECANCELED; /* the task went away: the target stays as it was */
    if (error == 0 && rename(temp, op->path) != 0)
        error = errno;
    if (error != 0) {
        unlink(temp);
    } else {
        int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0) {
            fsync(dir_fd); /* makes the rename durable; best effort */
            close(dir_fd);
        }
    }
    sl__free(temp);
    return error;
}

static int write_append(fs_op_t *op)
{
    int fd = open(op->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd < 0)
        return errno;
    struct stat st;
    int error = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? ENODEV : 0;
    if (error == 0)
        error = write_all(fd, op->data, op->len, NULL); /* whole lines do not interleave */
    if (close(fd) != 0 && error == 0)
        error = errno;
    return error;
}

static void write_work(fs_op_t *op)
{
    const char *slash = strrchr(op->path, '/');
    const char *base = slash ? slash + 1 : op->path;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        fail(op, EISDIR, "the path names a folder");
        return;
    }
    size_t dir_len = slash == NULL || slash == op->path ? 1 : (size_t)(slash - op->path);
    char *dir = sl__strndup(slash == NULL ? "." : op->path, dir_len);
    if (dir == NULL) {
        fail(op, ENOMEM, NULL);
        return;
    }
    if (make_parents(op, dir) == 0) {
        int error = op->append ? write_append(op) : write_replace(op, dir, base);
        if (error != 0)
            fail(op, error, NULL);
    }
    sl__free(dir);
}

static void work_cb(uv_work_t *req)
{
    fs_op_t *op = req->data;
    if (atomic_load(&op->canceled))
        return;
    if (op->write)
        write_work(op);
    else
        read_work(op);
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
    atomic_init(&op->canceled, false);
    int rc = uv_queue_work(sl__host()->task_loop(f->lt->task), &op->work, work_cb, after_work_cb);
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
