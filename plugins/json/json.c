/*
 * json.so: the `json.parse` step kind (SPEC §3). A CPU kind: it runs in a
 * worker and completes the task before start() returns. Decoding goes
 * through the host (host->value_from_json), so the plugin needs no JSON
 * library of its own.
 */
#include <stdio.h>
#include <string.h>

#include "sluice/plugin.h"

/* Room for the host's "invalid JSON at line L, column C: …" message. */
#define JSON_ERROR_MAX 512

static const sl_host_t *host;

static int parse_start(sl_task_t *task, const sl_value_t *args)
{
    const sl_value_t *text = args != NULL ? host->value_get(args, "text") : NULL;
    size_t len = 0;
    const char *s = text != NULL ? host->value_str(text, &len) : NULL;
    if (s == NULL) {
        host->task_fail(task, SL_EINVAL, "json.parse: 'text' must be a string");
        return 0;
    }
    sl_value_t *out = NULL;
    char err[JSON_ERROR_MAX] = "";
    int rc = host->value_from_json(s, len, &out, err, sizeof(err));
    if (rc != 0) {
        host->task_fail(task, rc, err[0] != '\0' ? err : host->strerror(rc));
        return 0;
    }
    host->task_done(task, out);
    return 0;
}

static const sl_param_t parse_params[] = {
    {"text", SL_PT_STRING, SL_PARAM_REQUIRED, "JSON text to decode"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t json_kinds[] = {
    {"json.parse", SL_EXEC_CPU, 0, "Decodes JSON text into a value.", parse_params, parse_start,
     NULL},
};

static const sl_plugin_t json_plugin = SL_PLUGIN_INIT("json", "1.0.0", json_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR || !SL_HOST_HAS(h, strerror))
        return NULL;
    host = h;
    return &json_plugin;
}
