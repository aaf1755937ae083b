/*
 * sluice.http.get and sluice.http.request: a Lua step's requests go through the
 * run's HTTP client (io/http.h), the one HTTP path, under the run's limits. The
 * calling fiber yields until the request reports, then gets the response table,
 * or raises the client's message (method, URL, cause, attempt).
 */
#include <string.h>

#include "host/host.h"
#include "lua/fiber.h"
#include "sched/task.h"

typedef struct http_op {
    fiber_op_t op;
    sl_http_t *req; /* NULL once the request reported */
    int code;
    sl_value_t *response; /* owned */
    char *message;        /* owned; NULL on success */
} http_op_t;

static void http_free(fiber_op_t *op)
{
    http_op_t *h = (http_op_t *)op;
    sl_value_free(h->response);
    sl__free(h->message);
    sl__free(h);
}

static void http_cancel(fiber_op_t *op)
{
    http_op_t *h = (http_op_t *)op;
    if (h->req)
        sl__io_http_cancel(h->req); /* reports at once: the op is freed before this returns */
}

static int http_push(lua_State *L, fiber_op_t *op)
{
    http_op_t *h = (http_op_t *)op;
    if (h->code < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, h->message ? h->message : sl_strerror(h->code));
        return 2;
    }
    lua_pushboolean(L, 1);
    sl__vm_push_raw(L, h->response, 0);
    return 2;
}

static const fiber_op_kind_t http_kind = {http_cancel, http_push, http_free};

static void on_http_done(void *ud, int code, sl_value_t *response, const char *message,
                         int64_t retry_after_ms)
{
    http_op_t *h = ud;
    h->req = NULL;
    h->code = code;
    h->response = response;
    if (h->op.fiber) /* a server's Retry-After holds for the task's next attempt */
        h->op.fiber->lt->http_retry_after_ms = code < 0 && retry_after_ms > 0 ? retry_after_ms : 0;
    if (h->op.fiber && code == SL_EPATH) /* save_to left the allowed folders */
        h->op.fiber->lt->path_refused = true;
    if (code < 0 && h->op.fiber) {
        h->message = sl__strdup(message ? message : sl_strerror(code));
        if (h->message == NULL)
            h->code = SL_ENOMEM;
    }
    sl__fiber_op_done(&h->op);
}

/*
 * Starts a request whose options are the table at `opts` (0: none) plus, when `url`
 * is not 0, the URL at that index, and waits for it.
 */
static int http_start(lua_State *L, const char *what, int opts, int url)
{
    fiber_t *f = sl__fiber_for_io(L, what);
    sl_http_client_t *client;
    char err[256];
    if (sl__host_http(f->lt->task, &client, err, sizeof(err)) < 0)
        return luaL_error(L, "%s: %s", what, err);
    sl_vm_box_t *box = sl__vm_box(L); /* frees the options if anything below raises */
    if (opts) {
        int rc = sl__vm_pull(L, opts, &box->value, err, sizeof(err));
        if (rc < 0)
            return luaL_error(L, "%s: options: %s", what, rc == SL_ENOMEM ? "out of memory" : err);
        if (sl_value_type(box->value) != SL_TYPE_MAP)
            return luaL_error(L, "%s: options must be a table of named options", what);
    } else if ((box->value = sl_value_map()) == NULL) {
        return luaL_error(L, "%s: out of memory", what);
    }
    if (url) {
        size_t len;
        const char *text = lua_tolstring(L, url, &len);
        sl_value_t *v = sl_value_string(text, len);
        if (v == NULL || sl_value_set(box->value, "url", v) < 0)
            return luaL_error(L, "%s: out of memory", what);
    }
    http_op_t *h = sl__calloc(1, sizeof(*h));
    if (h == NULL)
        return luaL_error(L, "%s: out of memory", what);
    h->op.kind = &http_kind;
    /* From here to the yield nothing raises: `h` is owned by no one until it waits. */
    int rc = sl__io_http_start(client, (uint32_t)sl__lua_host->task_attempt(f->lt->task), box->value,
                               on_http_done, h, &h->req);
    sl__vm_box_clear(box);
    if (rc < 0) {
        sl__free(h);
        return luaL_error(L, "%s: %s", what, sl_strerror(rc));
    }
    return sl__fiber_wait(L, f, &h->op);
}

static int l_http_get(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    return http_start(L, "sluice.http.get", lua_isnil(L, 2) ? 0 : 2, 1);
}

static int l_http_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return http_start(L, "sluice.http.request", 1, 0);
}

static const luaL_Reg http_funcs[] = {
    {"get", l_http_get},
    {"request", l_http_request},
    {NULL, NULL},
};

void sl__lua_open_http(lua_State *L, int module)
{
    luaL_newlib(L, http_funcs);
    lua_setfield(L, module, "http");
}
