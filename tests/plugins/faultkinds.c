/*
 * faultkinds.so: CPU kinds that misbehave on purpose, for the worker pool's tests.
 * Built against the public header only.
 *
 *   test.crash     dies of SIGSEGV
 *   test.abort     abort()
 *   test.exit      exit(3) in the middle of the task
 *   test.spin      a busy loop that never ends (or lasts `ms` milliseconds)
 *   test.hog       allocates and touches 1 MiB blocks until malloc fails, frees them
 *                  and fails with SL_ENOMEM (or outputs the MiB count at `max_mb`)
 *   test.cpu_echo  outputs its arguments
 *   test.pid       outputs the worker's process id
 *
 * The faulty ones misbehave only when `when` is true (default) and while the attempt is
 * at most `times` (default: every attempt); otherwise they output `value`.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/plugin.h"

static const sl_host_t *host;

static const sl_value_t *arg(const sl_value_t *args, const char *name)
{
    if (args == NULL || host->value_type(args) != SL_TYPE_MAP)
        return NULL;
    return host->value_get(args, name);
}

static void done_copy(sl_task_t *task, const sl_value_t *v)
{
    sl_value_t *out = v != NULL ? host->value_copy(v) : host->value_nil();
    if (out == NULL)
        host->task_fail(task, SL_ENOMEM, "out of memory");
    else
        host->task_done(task, out);
}

/* Whether this attempt misbehaves; when it does not, the task outputs `value`. */
static int triggered(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *when = arg(args, "when");
    const sl_value_t *times = arg(args, "times");
    if (when != NULL && !host->value_truthy(when))
        return 0;
    if (times != NULL && host->task_attempt(task) > host->value_int_of(times))
        return 0;
    return 1;
}

static int crash_start(sl_task_t *task, const sl_value_t *args)
{
    if (triggered(task, args))
        raise(SIGSEGV); /* not a null write: UBSan would catch that and exit instead */
    done_copy(task, arg(args, "value"));
    return 0;
}

static int abort_start(sl_task_t *task, const sl_value_t *args)
{
    if (triggered(task, args))
        abort();
    done_copy(task, arg(args, "value"));
    return 0;
}

static int exit_start(sl_task_t *task, const sl_value_t *args)
{
    if (triggered(task, args))
        _exit(3);
    done_copy(task, arg(args, "value"));
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int spin_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *ms = arg(args, "ms");
    int64_t until = ms != NULL ? now_ms() + host->value_int_of(ms) : INT64_MAX;
    volatile unsigned long counter = 0;
    while (triggered(task, args) && now_ms() < until)
        counter++;
    done_copy(task, arg(args, "value"));
    return 0;
}

typedef struct block {
    struct block *next;
} block_t;

static int hog_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *max = arg(args, "max_mb");
    int64_t max_mb = max != NULL ? host->value_int_of(max) : 65536;
    block_t *blocks = NULL;
    int64_t mb = 0;
    while (mb < max_mb) {
        block_t *b = malloc(1u << 20);
        if (b == NULL)
            break;
        memset(b, 0xa5, 1u << 20); /* touched: resident, not just reserved */
        b->next = blocks;
        blocks = b;
        mb++;
    }
    while (blocks) {
        block_t *next = blocks->next;
        free(blocks);
        blocks = next;
    }
    if (mb < max_mb) {
        host->task_failf(task, SL_ENOMEM, "test.hog: malloc failed after %lld MiB",
                         (long long)mb);
        return 0;
    }
    sl_value_t *out = host->value_int(mb);
    if (out == NULL)
        return SL_ENOMEM;
    host->task_done(task, out);
    return 0;
}

static int echo_start(sl_task_t *task, const sl_value_t *args)
{
    done_copy(task, args);
    return 0;
}

static int pid_start(sl_task_t *task, const sl_value_t *args)
{
    sl_value_t *out = host->value_int((int64_t)getpid());
    if (out == NULL)
        return SL_ENOMEM;
    host->task_done(task, out);
    return 0;
}

/* The plugins this process has mapped: the file names of the "*.so" under a plugins/
 * folder in /proc/self/maps, each once, in the order first mapped. */
static int plugins_start(sl_task_t *task, const sl_value_t *args)
{
    (void)args;
    FILE *maps = fopen("/proc/self/maps", "r");
    sl_value_t *out = host->value_list();
    if (maps == NULL || out == NULL) {
        if (maps)
            fclose(maps);
        host->value_free(out);
        host->task_fail(task, SL_EFAILED, "test.plugins: cannot read /proc/self/maps");
        return 0;
    }
    char line[4096];
    while (fgets(line, sizeof(line), maps)) {
        char *path = strchr(line, '/'), *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *name = path ? strrchr(path, '/') + 1 : NULL;
        size_t len = name ? strlen(name) : 0;
        if (name == NULL || len < 4 || strcmp(name + len - 3, ".so") != 0 ||
            strstr(path, "/plugins/") == NULL)
            continue;
        bool seen = false;
        for (size_t i = 0; i < host->value_len(out) && !seen; i++)
            seen = strcmp(host->value_str(host->value_at(out, i), NULL), name) == 0;
        if (!seen)
            host->value_push(out, host->value_string(name, len));
    }
    fclose(maps);
    host->task_done(task, out);
    return 0;
}

static const sl_param_t fault_params[] = {
    {"when", SL_PT_ANY, 0, "misbehave only when true (default true)"},
    {"times", SL_PT_INT, 0, "misbehave while the attempt is at most this (default always)"},
    {"value", SL_PT_ANY, 0, "the output when not misbehaving"},
    {NULL, 0, 0, NULL},
};
static const sl_param_t spin_params[] = {
    {"when", SL_PT_ANY, 0, "spin only when true (default true)"},
    {"times", SL_PT_INT, 0, "spin while the attempt is at most this (default always)"},
    {"value", SL_PT_ANY, 0, "the output when done"},
    {"ms", SL_PT_INT, 0, "spin this long, then output `value` (default: forever)"},
    {NULL, 0, 0, NULL},
};
static const sl_param_t hog_params[] = {
    {"max_mb", SL_PT_INT, 0, "stop (and succeed) after this many MiB (default 65536)"},
    {NULL, 0, 0, NULL},
};
static const sl_param_t no_params[] = {{NULL, 0, 0, NULL}};

static const sl_kind_t kinds[] = {
    {"test.crash", SL_EXEC_CPU, 0, "Dies of SIGSEGV.", fault_params, crash_start, NULL},
    {"test.abort", SL_EXEC_CPU, 0, "Calls abort().", fault_params, abort_start, NULL},
    {"test.exit", SL_EXEC_CPU, 0, "Exits with status 3.", fault_params, exit_start, NULL},
    {"test.spin", SL_EXEC_CPU, 0, "Spins (forever).", spin_params, spin_start, NULL},
    {"test.hog", SL_EXEC_CPU, 0, "Allocates until malloc fails.", hog_params, hog_start, NULL},
    {"test.cpu_echo", SL_EXEC_CPU, SL_KIND_EXTRA_PARAMS, "Outputs its arguments.", no_params,
     echo_start, NULL},
    {"test.pid", SL_EXEC_CPU, SL_KIND_EXTRA_PARAMS, "Outputs the worker's pid.", no_params,
     pid_start, NULL},
    {"test.plugins", SL_EXEC_CPU, 0, "Outputs the plugin files the worker has loaded.", no_params,
     plugins_start, NULL},
};

static const sl_plugin_t plugin = SL_PLUGIN_INIT("faultkinds", "1.0.0", kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR)
        return NULL;
    host = h;
    return &plugin;
}
