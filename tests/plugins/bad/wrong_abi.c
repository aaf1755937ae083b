/* A plugin built for a future ABI (99.0): the engine must refuse it with a
 * message naming both versions, and go on loading the others. */
#include "sluice/plugin.h"

static int never_start(sl_task_t *task, const sl_value_t *args)
{
    return SL_EINTERNAL;
}

static const sl_param_t no_params[] = {{NULL, 0, 0, NULL}};

static const sl_kind_t kinds[] = {
    {"wrong_abi.kind", SL_EXEC_IO, 0, "must never be registered", no_params, never_start, NULL},
};

static const sl_plugin_t plugin = {
    99, 0, sizeof(sl_plugin_t), "wrong_abi", "1.0.0", sizeof(sl_kind_t), 1, kinds,
};

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *host);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *host)
{
    return &plugin;
}
