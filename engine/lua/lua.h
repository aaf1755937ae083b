/*
 * lua: the built-in `lua` step kind (SPEC §4), as a plugin compiled into the binary.
 *
 * Its tasks run as coroutines of the run's VM (vm/) on the loop, or, with `pool: true`,
 * in a worker process as the internal CPU kind `lua.pooled`. Its IO goes through the
 * run's services (host/host.h): the HTTP client, the worker pool.
 */
#ifndef SL_LUA_H
#define SL_LUA_H

#include "sluice/plugin.h"

/**
 * The kind's entry, as a shared object's sl_plugin_entry_v1: hand it to
 * sl__registry_add_builtin. Keeps `host` for the process's life (the engine's table, or
 * a worker's).
 */
const sl_plugin_t *sl__lua_entry(const sl_host_t *host);

#endif
