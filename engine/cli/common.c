/* Helpers shared by commands: the plugin registry, loading workflows. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "host/host.h"
#include "lua/lua.h"
#include "plugin/registry.h"

const sl_plugin_entry_fn sl__cli_builtins[SL_CLI_BUILTIN_COUNT] = {sl__lua_entry};

int sl__cli_registry(struct sl_registry **out)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    int rc = sl__registry_new(sl__host_table(), out);
    for (size_t i = 0; rc == 0 && i < SL_COUNTOF(sl__cli_builtins); i++)
        rc = sl__registry_add_builtin(*out, sl__cli_builtins[i], &diag);
    if (rc == 0)
        rc = sl__registry_load_default(*out, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "%s: warning: %s\n", diag.items[i].file ? diag.items[i].file : "sluice",
                diag.items[i].message);
    sl__diag_close(&diag);
    if (rc < 0) {
        fprintf(stderr, "sluice: error: cannot load plugins: %s\n", sl_strerror(rc));
        sl__registry_free(*out);
        *out = NULL;
    }
    return rc;
}

int sl__cli_load(const char *path, const sl_registry_t *reg, sl_workflow_t **out)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    int rc = sl__workflow_load(path, reg, out, &diag);
    sl__diag_sort(&diag);
    sl__diag_print(&diag, stderr);
    if (rc < 0 && diag.count == 0)
        fprintf(stderr, "%s: error: %s\n", path, sl_strerror(rc));
    sl__diag_close(&diag);
    if (rc == SL_ENOMEM)
        return SL_EXIT_INTERNAL;
    return rc < 0 ? SL_EXIT_USAGE : SL_EXIT_OK;
}

bool sl__cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}
