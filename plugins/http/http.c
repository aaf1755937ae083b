/*
 * http.so: the `http.get` and `http.request` step kinds (SPEC §3). IO kinds:
 * the request goes through the engine's HTTP client (host->http_request), the
 * same path Lua's sluice.http takes, so the run's limits, per-host queues and
 * connection reuse apply to both. This plugin only ties a request to its task
 * and passes the client's retry advice on to the scheduler.
 */
#include <stdlib.h>

#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct fetch {
    sl_task_t *task;
    sl_http_t *req;
} fetch_t;

static void on_done(void *ud, int code, sl_value_t *response, const char *message,
                    int64_t retry_after_ms)
{
    fetch_t *fetch = ud;
    sl_task_t *task = fetch->task;
    free(fetch);
    host->task_set_data(task, NULL);
    if (code == 0) {
        host->task_done(task, response);
        return;
    }
    host->task_retry_after(task, retry_after_ms);
    host->task_fail(task, code, message);
}

static int http_start(sl_task_t *task, const sl_value_t *args)
{
    fetch_t *fetch = malloc(sizeof(*fetch));
    if (fetch == NULL)
        return SL_ENOMEM;
    fetch->task = task;
    host->task_set_data(task, fetch);
    int rc = host->http_request(task, args, on_done, fetch, &fetch->req);
    if (rc < 0) {
        host->task_set_data(task, NULL);
        free(fetch);
    }
    return rc;
}

static void http_cancel(sl_task_t *task)
{
    fetch_t *fetch = host->task_data(task);
    if (fetch)
        host->http_cancel(fetch->req); /* on_done runs before this returns */
}

#define DURATION (SL_PT_STRING | SL_PT_INT | SL_PT_NUMBER)

static const sl_param_t http_params[] = {
    {"url", SL_PT_STRING, SL_PARAM_REQUIRED, "http:// or https:// URL"},
    {"method", SL_PT_STRING, 0, "HTTP method (default GET)"},
    {"headers", SL_PT_MAP, 0, "request headers, name: value"},
    {"body", SL_PT_ANY, 0, "request body: a string as is, any other value as JSON"},
    {"save_to", SL_PT_STRING, 0, "stream the body to this file (atomic; folders created)"},
    {"expect", SL_PT_INT | SL_PT_STRING | SL_PT_LIST, 0,
     "accepted statuses: 200, \"2xx\", \"200-299\" or a list (default 2xx)"},
    {"max_bytes", SL_PT_INT, 0, "largest body accepted (default 64 MiB)"},
    {"follow_redirects", SL_PT_BOOL, 0, "follow up to 10 redirects (default true)"},
    {"connect_timeout", DURATION, 0, "time to connect (default 30s)"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t http_kinds[] = {
    {"http.get", SL_EXEC_IO, 0, "Fetches a URL (GET unless `method` says otherwise).",
     http_params, http_start, http_cancel},
    {"http.request", SL_EXEC_IO, 0, "Makes an HTTP request with any method, headers and body.",
     http_params, http_start, http_cancel},
};

static const sl_plugin_t http_plugin = SL_PLUGIN_INIT("http", "1.0.0", http_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR || !SL_HOST_HAS(h, http_cancel))
        return NULL;
    host = h;
    return &http_plugin;
}
