/*
 * testkinds.so: step kinds for the engine's tests, built against the public
 * header only, as an out-of-tree plugin would be.
 *
 *   test.noop      IO, completes inside start(): output `value` (nil if absent)
 *   test.noop_cpu  CPU, the same
 *   test.sleep     IO, waits `ms` on a uv_timer, output `ms`; cancelable
 *   test.flaky     IO, fails while the attempt is <= `fail_times`, then
 *                  returns the attempt number
 *   test.fail      IO, always fails with `message`
 *   test.echo      CPU, returns its arguments as given
 *   test.spin_loop IO, spins inside start() for `ms` (the loop's thread stuck in a
 *                  plugin's call, for the watchdog's tests), then outputs `ms`
 */
#include <stdlib.h>
#include <time.h>

#include <uv.h>

#include "sluice/plugin.h"

static const sl_host_t *host;

static const sl_value_t *arg(const sl_value_t *args, const char *name)
{
    if (args == NULL || host->value_type(args) != SL_TYPE_MAP)
        return NULL;
    return host->value_get(args, name);
}

/* Completes with a copy of `v` (nil when NULL). */
static void done_copy(sl_task_t *task, const sl_value_t *v)
{
    sl_value_t *out = v != NULL ? host->value_copy(v) : host->value_nil();
    if (out == NULL)
        host->task_fail(task, SL_ENOMEM, "out of memory");
    else
        host->task_done(task, out);
}

static int noop_start(sl_task_t *task, const sl_value_t *args)
{
    done_copy(task, arg(args, "value"));
    return 0;
}

static int echo_start(sl_task_t *task, const sl_value_t *args)
{
    done_copy(task, args);
    return 0;
}

static int fail_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *message = arg(args, "message");
    const char *text = message != NULL ? host->value_str(message, NULL) : NULL;
    host->task_fail(task, SL_EFAILED, text != NULL ? text : "test.fail failed");
    return 0;
}

static int flaky_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *fail_times = arg(args, "fail_times");
    int64_t times = fail_times != NULL ? host->value_int_of(fail_times) : 1;
    int attempt = host->task_attempt(task);
    if (attempt <= times) {
        host->log(task, SL_LOG_INFO, "test.flaky: attempt %d fails", attempt);
        host->task_fail(task, SL_EFAILED, "test.flaky: failing on purpose");
        return 0;
    }
    sl_value_t *out = host->value_int(attempt);
    if (out == NULL)
        return SL_ENOMEM;
    host->task_done(task, out);
    return 0;
}

/* ---- test.sleep: a timer embedded in its state, freed in the close callback */

typedef struct sleep_state {
    uv_timer_t timer;
    sl_task_t *task;
    int64_t ms;
    int canceled;
} sleep_state_t;

static void sleep_closed(uv_handle_t *handle)
{
    sleep_state_t *state = handle->data;
    sl_task_t *task = state->task;
    int canceled = state->canceled;
    sl_value_t *out = canceled ? NULL : host->value_int(state->ms);
    free(state);
    host->task_set_data(task, NULL);
    if (canceled)
        host->task_fail(task, SL_ECANCELED, "test.sleep canceled");
    else if (out == NULL)
        host->task_fail(task, SL_ENOMEM, "out of memory");
    else
        host->task_done(task, out);
}

static void sleep_fired(uv_timer_t *timer)
{
    uv_close((uv_handle_t *)timer, sleep_closed);
}

static int sleep_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *ms = arg(args, "ms");
    sleep_state_t *state = calloc(1, sizeof(*state));
    if (state == NULL)
        return SL_ENOMEM;
    state->task = task;
    state->ms = ms != NULL ? host->value_int_of(ms) : 0;
    if (state->ms < 0)
        state->ms = 0;
    uv_timer_init(host->task_loop(task), &state->timer);
    state->timer.data = state;
    uv_timer_start(&state->timer, sleep_fired, (uint64_t)state->ms, 0);
    host->task_set_data(task, state);
    return 0;
}

static void sleep_cancel(sl_task_t *task)
{
    sleep_state_t *state = host->task_data(task);
    if (state == NULL || uv_is_closing((uv_handle_t *)&state->timer))
        return;
    state->canceled = 1;
    uv_close((uv_handle_t *)&state->timer, sleep_closed);
}

/* ---- descriptor */

static const sl_param_t value_params[] = {
    {"value", SL_PT_ANY, 0, "the output"},
    {NULL, 0, 0, NULL},
};
static const sl_param_t no_params[] = {{NULL, 0, 0, NULL}};
static int spin_loop_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *ms = arg(args, "ms");
    int64_t wait_ms = ms != NULL ? host->value_int_of(ms) : 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 <
             wait_ms);
    done_copy(task, ms);
    return 0;
}

static const sl_param_t sleep_params[] = {
    {"ms", SL_PT_INT, SL_PARAM_REQUIRED, "milliseconds to wait"},
    {NULL, 0, 0, NULL},
};
static const sl_param_t flaky_params[] = {
    {"fail_times", SL_PT_INT, 0, "attempts that fail before one succeeds (default 1)"},
    {NULL, 0, 0, NULL},
};
static const sl_param_t fail_params[] = {
    {"message", SL_PT_STRING, 0, "the failure message"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t kinds[] = {
    {"test.noop", SL_EXEC_IO, SL_KIND_EXTRA_PARAMS, "Outputs `value` at once.", value_params,
     noop_start, NULL},
    {"test.noop_cpu", SL_EXEC_CPU, SL_KIND_EXTRA_PARAMS, "Outputs `value` (CPU).", value_params,
     noop_start, NULL},
    {"test.sleep", SL_EXEC_IO, 0, "Waits `ms` milliseconds.", sleep_params, sleep_start,
     sleep_cancel},
    {"test.flaky", SL_EXEC_IO, 0, "Fails the first `fail_times` attempts.", flaky_params,
     flaky_start, NULL},
    {"test.fail", SL_EXEC_IO, 0, "Always fails.", fail_params, fail_start, NULL},
    {"test.spin_loop", SL_EXEC_IO, 0, "Spins `ms` milliseconds on the loop's thread.",
     sleep_params, spin_loop_start, NULL},
    {"test.echo", SL_EXEC_CPU, SL_KIND_EXTRA_PARAMS, "Outputs its arguments.", no_params,
     echo_start, NULL},
};

static const sl_plugin_t plugin = SL_PLUGIN_INIT("testkinds", "1.0.0", kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR)
        return NULL;
    host = h;
    return &plugin;
}
