/* The engine's host table: what plugins may call (sluice/plugin.h), bound to the scheduler. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "host/host.h"

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

static void host_http_started(void *ud)
{
    sl__sched_task_timeout_resume(ud);
}

static int host_http_request(sl_task_t *task, const sl_value_t *request, sl_http_done_fn done,
                             void *ud, sl_http_t **out)
{
    sl_http_client_t *client;
    char err[256];
    int rc = sl__host_http(task, &client, err, sizeof(err));
    if (rc < 0) {
        host_log(task, SL_LOG_ERROR, "%s", err);
        return rc;
    }
    /* The step's timeout bounds the attempt from when the request reaches curl: time spent
     * waiting for the host's turn (per_host, rate, robots) is not the attempt's. */
    sl_http_call_t call = {
        .attempt = (uint32_t)sl__sched_task_attempt(task),
        .step_timeout_ms = sl__sched_task_timeout_hold(task),
        .started = host_http_started,
        .started_ud = task,
    };
    if (call.step_timeout_ms <= 0)
        call.started = NULL;
    if (call.step_timeout_ms == 0)
        call.step_timeout_ms = sl__sched_task_timeout_ms(task);
    rc = sl__io_http_start_call(client, &call, request, done, ud, out);
    char subject[1024];
    if (rc == 0 && sl__io_http_subject(*out, subject, sizeof(subject)))
        sl__sched_task_set_subject(task, subject); /* its timeout names the request */
    return rc;
}

static sl_host_t table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    sl__plugin_host_init(&table);
    table.log = host_log;
    table.task_done = sl__sched_task_done;
    table.task_fail = sl__sched_task_fail;
    table.task_loop = sl__sched_task_loop;
    table.task_set_data = sl__sched_task_set_data;
    table.task_data = sl__sched_task_data;
    table.task_attempt = sl__sched_task_attempt;
    table.task_failf = host_task_failf;
    table.task_retry_after = sl__sched_task_retry_after;
    table.http_request = host_http_request;
    table.http_cancel = sl__io_http_cancel;
    sl__plugin_file_roots(sl__host_roots); /* file_read/file_write: the task's run's roots */
}

const sl_host_t *sl__host_table(void)
{
    pthread_once(&table_once, make_table);
    return &table;
}
