/* The host table: what plugins may call. Append-only (sluice/plugin.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "plugin/registry.h"
#include "sched/sched.h"
#include "sched/task.h"
#include "value/value.h"

static void host_log(sl_task_t *task, int level, const char *fmt, ...)
{
    if (level < sl__log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    sl__sched_task_vlog(task, level, fmt, ap);
    va_end(ap);
}

static void host_task_failf(sl_task_t *task, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *message = n >= 0 ? sl__malloc((size_t)n + 1) : NULL;
    if (message)
        vsnprintf(message, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sl__sched_task_fail(task, code, message ? message : fmt);
    sl__free(message);
}

static int host_http_request(sl_task_t *task, const sl_value_t *request, sl_http_done_fn done,
                             void *ud, sl_http_t **out)
{
    sl_http_client_t *client;
    char err[256];
    int rc = sl__task_http(task, &client, err, sizeof(err));
    if (rc < 0) {
        host_log(task, SL_LOG_ERROR, "%s", err);
        return rc;
    }
    return sl__io_http_start(client, task, request, done, ud, out);
}

static const sl_host_t host = {
    .abi_major = SL_ABI_MAJOR,
    .abi_minor = SL_ABI_MINOR,
    .struct_size = sizeof(sl_host_t),
    .log = host_log,
    .task_done = sl__sched_task_done,
    .task_fail = sl__sched_task_fail,
    .task_loop = sl__sched_task_loop,
    .task_set_data = sl__sched_task_set_data,
    .task_data = sl__sched_task_data,
    .task_attempt = sl__sched_task_attempt,
    .value_nil = sl_value_nil,
    .value_bool = sl_value_bool,
    .value_int = sl_value_int,
    .value_number = sl_value_number,
    .value_string = sl_value_string,
    .value_list = sl_value_list,
    .value_map = sl_value_map,
    .value_copy = sl_value_copy,
    .value_free = sl_value_free,
    .value_type = sl_value_type,
    .value_truthy = sl_value_truthy,
    .value_int_of = sl_value_int_of,
    .value_number_of = sl_value_number_of,
    .value_str = sl_value_str,
    .value_len = sl_value_len,
    .value_at = sl_value_at,
    .value_entry = sl_value_entry,
    .value_get = sl_value_get,
    .value_push = sl_value_push,
    .value_set = sl_value_set,
    .value_from_json = sl_value_from_json,
    .value_to_json = sl_value_to_json,
    .free = sl__free,
    .strerror = sl_strerror,
    .task_failf = host_task_failf,
    .task_retry_after = sl__sched_task_retry_after,
    .http_request = host_http_request,
    .http_cancel = sl__io_http_cancel,
};

/* Worker processes hand plugins a table of their own (pool/worker.c). */
static const sl_host_t *current = &host;

const sl_host_t *sl__host(void)
{
    return current;
}

void sl__host_use(const sl_host_t *table)
{
    current = table ? table : &host;
}
