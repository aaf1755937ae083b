/* A plugin whose entry refuses to load (returns NULL): the engine must
 * report it and go on. */
#include "sluice/plugin.h"

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *host);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *host)
{
    return NULL;
}
