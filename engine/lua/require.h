/*
 * lua/require.h: the restricted `require` of Lua steps (require.c), the same function on
 * the loop and in a worker, loading Lua source from the shipped library folder and the
 * workflow file's folder only.
 */
#ifndef SL_LUA_REQUIRE_H
#define SL_LUA_REQUIRE_H

#include <stdbool.h>

#include "vm/vm.h"

/** Finds the library folder (beside the binary, or under the prefix). Once, at start. */
void sl__require_init(void);
/** The library folder ("" when the binary's own path is unknown). Borrowed, static. */
const char *sl__require_lib_dir(void);

/**
 * The function that reads a module's file: on the loop (false) in the threadpool while the
 * calling fiber yields; in a worker (true) at once, from the folder set by
 * sl__require_set_pooled_dir.
 */
lua_CFunction sl__require_fetch(bool pooled);
/** The workflow folder a worker's require reads from, for the VM of `L`. Raises. */
void sl__require_set_pooled_dir(lua_State *L, const char *dir);

/**
 * Pushes a new `require` function with its own `loaded` table (one per VM), reading with
 * `fetch` and running modules under an _ENV whose metatable is the table at `env_mt`.
 * Raises; protected code only.
 */
void sl__require_push(lua_State *L, int env_mt, lua_CFunction fetch);

#endif
