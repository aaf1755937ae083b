/*
 * hello.so: a minimal sluice plugin, built out of the tree (docs/plugins.md).
 *
 *     cc -shared -fPIC -fvisibility=hidden -I"$PREFIX/include" -o hello.so hello.c
 *
 * One CPU kind, `hello.greet`: takes `name` (a string, required) and
 * returns the string "hello, NAME".
 */
#include <stdio.h>
#include <stdlib.h>

#include <sluice/plugin.h>

/* The host table handed to the entry function; valid for the whole process. */
static const sl_host_t *host;

/* A CPU kind: computes and completes the task before returning. */
static int greet_start(sl_task_t *task, const sl_value_t *args)
{
    size_t len = 0;
    const sl_value_t *name = host->value_get(args, "name");
    const char *text = name != NULL ? host->value_str(name, &len) : NULL;
    if (text == NULL) {
        host->task_fail(task, SL_EINVAL, "hello.greet: 'name' must be a string");
        return 0; /* started, and completed (with a failure) */
    }
    size_t size = len + sizeof("hello, ");
    char *greeting = malloc(size);
    if (greeting == NULL)
        return SL_ENOMEM; /* not started: the engine reports it */
    int n = snprintf(greeting, size, "hello, %s", text);
    sl_value_t *out = host->value_string(greeting, (size_t)n); /* copies the bytes */
    free(greeting);
    if (out == NULL)
        return SL_ENOMEM;
    host->task_done(task, out); /* the host now owns `out` */
    return 0;
}

static const sl_param_t greet_params[] = {
    {"name", SL_PT_STRING, SL_PARAM_REQUIRED, "who to greet"},
    {NULL, 0, 0, NULL}, /* end of the list */
};

static const sl_kind_t hello_kinds[] = {
    {"hello.greet", SL_EXEC_CPU, 0, "Returns \"hello, NAME\".", greet_params, greet_start, NULL},
};

static const sl_plugin_t hello_plugin = SL_PLUGIN_INIT("hello", "1.0.0", hello_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    /* This plugin calls nothing newer than ABI 1.0; a plugin that does
     * checks SL_HOST_HAS(h, member) first and does without it or refuses. */
    if (h->abi_major != SL_ABI_MAJOR)
        return NULL;
    host = h;
    return &hello_plugin;
}
