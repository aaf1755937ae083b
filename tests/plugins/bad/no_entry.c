/* A shared object without sl_plugin_entry_v1: the engine must refuse it,
 * naming the missing symbol. It exports something else so it is not empty. */
#include "sluice/plugin.h"

SL_API int sl_plugin_entry_v0(void);
SL_API int sl_plugin_entry_v0(void)
{
    return 0;
}
