/*
 * What the CLI sets up before it loads or runs a workflow, for the tests that do the
 * same: a registry handing plugins the engine's host table, with the lua kind built in.
 */
#ifndef SL_TEST_ENGINE_H
#define SL_TEST_ENGINE_H

#include "host/host.h"
#include "lua/lua.h"
#include "plugin/registry.h"

static inline int test_registry_new(sl_registry_t **out)
{
    int rc = sl__registry_new(sl__host_table(), out);
    if (rc < 0)
        return rc;
    sl_diag_t diag;
    sl__diag_init(&diag);
    rc = sl__registry_add_builtin(*out, sl__lua_entry, &diag);
    sl__diag_close(&diag);
    if (rc < 0) {
        sl__registry_free(*out);
        *out = NULL;
    }
    return rc;
}

#endif
