/*
 * sluice.html.select(html, selector, opts): the html.select kind, run in the worker
 * pool as a job of the calling task, like a CPU step's task. Parsing never happens on
 * the loop; the calling fiber yields until the worker answers, then gets a string (or
 * nil), or with `all` a list. opts: `attr`, `all`, and `xpath = true` when the selector
 * is XPath rather than CSS.
 */
#include <string.h>

#include "host/host.h"
#include "lua/fiber.h"
#include "sched/task.h"

typedef struct html_op {
    fiber_op_t op;
    sl_pool_job_t job;
    sl_pool_t *pool;
    bool reported;
    int code;
    sl_value_t *args;     /* owned: the job borrows it until it reports */
    sl_value_t *output;   /* owned */
    char *message;        /* owned; NULL on success */
} html_op_t;

/* The shared object providing html.select, for the worker to load that file only (NULL:
 * the worker searches every plugin folder). */
static const char *html_plugin(sl_task_t *task)
{
    const sl_registry_t *reg = sl__host_registry(task);
    const sl_kind_info_t *info = reg ? sl__registry_find(reg, "html.select") : NULL;
    return info ? sl__registry_file(info) : NULL;
}

static html_op_t *op_of(sl_pool_job_t *job)
{
    return (html_op_t *)((char *)job - offsetof(html_op_t, job));
}

static void html_free(fiber_op_t *op)
{
    html_op_t *h = (html_op_t *)op;
    sl_value_free(h->args);
    sl_value_free(h->output);
    sl__free(h->message);
    sl__free(h);
}

static void html_cancel(fiber_op_t *op)
{
    html_op_t *h = (html_op_t *)op;
    if (!h->reported && sl__pool_cancel(h->pool, &h->job)) /* still queued: no report comes */
        html_free(op);
}

static int html_push(lua_State *L, fiber_op_t *op)
{
    html_op_t *h = (html_op_t *)op;
    if (h->code < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, h->message ? h->message : sl_strerror(h->code));
        return 2;
    }
    lua_pushboolean(L, 1);
    sl__vm_push_raw(L, h->output, 0);
    return 2;
}

static const fiber_op_kind_t html_kind = {html_cancel, html_push, html_free};

static void on_done(sl_pool_job_t *job, sl_value_t *output)
{
    html_op_t *h = op_of(job);
    h->reported = true;
    h->output = output;
    sl__fiber_op_done(&h->op);
}

static void on_fail(sl_pool_job_t *job, int code, const char *message, int64_t retry_after_ms)
{
    (void)retry_after_ms;
    html_op_t *h = op_of(job);
    h->reported = true;
    h->code = code;
    if (h->op.fiber) {
        h->message = sl__strdup(message ? message : sl_strerror(code));
        if (h->message == NULL)
            h->code = SL_ENOMEM;
    }
    sl__fiber_op_done(&h->op);
}

static void on_log(sl_pool_job_t *job, int level, const char *message)
{
    html_op_t *h = op_of(job);
    if (h->op.fiber)
        sl__lua_host->log(h->op.fiber->lt->task, level, "%s", message);
}

static const sl_pool_cbs_t html_cbs = {on_done, on_fail, on_log};

/* Builds the html.select arguments from (html, selector, opts) into `box`. */
static void pull_args(lua_State *L, sl_vm_box_t *box)
{
    bool xpath = false;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_getfield(L, 3, "xpath");
        xpath = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "html");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, xpath ? "xpath" : "css");
    if (!lua_isnoneornil(L, 3)) {
        static const char *const passed[] = {"attr", "all"};
        for (size_t i = 0; i < SL_COUNTOF(passed); i++) {
            lua_getfield(L, 3, passed[i]);
            lua_setfield(L, -2, passed[i]);
        }
        lua_pushnil(L);
        while (lua_next(L, 3)) { /* a misspelled option is an error, not ignored */
            lua_pop(L, 1);
            const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
            if (strcmp(key, "attr") != 0 && strcmp(key, "all") != 0 && strcmp(key, "xpath") != 0)
                luaL_error(L, "sluice.html.select: unknown option '%s' (attr, all, xpath)", key);
        }
    }
    char err[256];
    int rc = sl__vm_pull(L, lua_gettop(L), &box->value, err, sizeof(err));
    if (rc < 0)
        luaL_error(L, "sluice.html.select: %s", rc == SL_ENOMEM ? "out of memory" : err);
    lua_pop(L, 1);
}

static int l_html_select(lua_State *L)
{
    luaL_checkstring(L, 1);
    luaL_checkstring(L, 2);
    lua_settop(L, 3);
    fiber_t *f = sl__fiber_for_io(L, "sluice.html.select");
    sl_pool_t *pool = sl__host_pool(f->lt->task);
    if (pool == NULL)
        return luaL_error(L, "sluice.html.select: no worker pool to parse in");
    sl_vm_box_t *box = sl__vm_box(L); /* frees the arguments if anything below raises */
    pull_args(L, box);
    html_op_t *h = sl__calloc(1, sizeof(*h));
    if (h == NULL)
        return luaL_error(L, "sluice.html.select: out of memory");
    /* From here to the yield nothing raises: `h` is owned by no one until it waits. */
    h->op.kind = &html_kind;
    h->pool = pool;
    h->args = box->value;
    box->value = NULL;
    h->job.kind = "html.select";
    h->job.plugin = html_plugin(f->lt->task);
    h->job.args = h->args;
    h->job.attempt = (uint32_t)sl__lua_host->task_attempt(f->lt->task);
    h->job.cbs = &html_cbs;
    sl__pool_submit(pool, &h->job);
    return sl__fiber_wait(L, f, &h->op);
}

static const luaL_Reg html_funcs[] = {
    {"select", l_html_select},
    {NULL, NULL},
};

void sl__lua_open_html(lua_State *L, int module)
{
    luaL_newlib(L, html_funcs);
    lua_setfield(L, module, "html");
}
