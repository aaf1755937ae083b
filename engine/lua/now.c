/*
 * sluice.now(): the Unix time in seconds, as a float (SPEC §4), the same on the loop and in
 * a worker. It reads the system's real-time clock at each call rather than the loop's
 * cached time (uv_now), which stands still while a task computes and has whole
 * milliseconds only: two calls around a computation must see it take time. SLUICE_NOW
 * sets the clock of serve, next and backfill only (SPEC §5), not this one.
 */
#include <time.h>

#include "lua/fiber.h"

static int l_sluice_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

void sl__now_open(lua_State *L, int module)
{
    lua_pushcfunction(L, l_sluice_now);
    lua_setfield(L, module, "now");
}
