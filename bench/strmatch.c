/*
 * Pattern matching speed: the sandbox's matcher (engine/vm/pattern.c, reached through
 * strings' methods in the VM's raw state) against Lua 5.4's own (_G.string there) on
 * common patterns over a 1 MB text. Built and run by bench/strmatch.py, which links it
 * with the build's libsluice_core.a. Prints one Markdown table row per pattern: the
 * best of five runs of each, and the ratio (ours ÷ Lua's). Both must give the same
 * checksum, or the program exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lauxlib.h>

#include "vm/vm.h"

#define BENCH_RUNS 15

/* Returns a table of {name, function(lib) -> checksum}; lib has find/match/gmatch/gsub. */
static const char bench_source[] =
    "local words = {'The', 'quick', '(brown)', 'fox_1', 'jumps', 'over', '42', 'lazy',\n"
    "  'dogs;', 'f(a(b)c)d', 'x=17,', 'THE_END', '3.14'}\n"
    "local parts, size, i = {}, 0, 0\n"
    "while size < (1 << 20) do\n"
    "  i = i + 1\n"
    "  local w = words[(i * 7) % #words + 1] .. ((i % 5 == 0) and '  ' or ' ')\n"
    "  parts[#parts + 1] = w\n"
    "  size = size + #w\n"
    "end\n"
    "local text = table.concat(parts)\n"
    "local lines = {}\n"
    "for n = 1, 20000 do lines[n] = '   line ' .. n .. ' of text \\t  ' end\n"
    "local function count(gmatch, p)\n"
    "  local n = 0\n"
    "  for _ in gmatch(text, p) do n = n + 1 end\n"
    "  return n\n"
    "end\n"
    "return {\n"
    "  {'find plain (100 × 1 MB, absent)', function(lib) local n = 0\n"
    "    for _ = 1, 100 do n = n + (lib.find(text, 'zebra', 1, true) or 0) end return n end},\n"
    "  {'find `%d+` through the text', function(lib) local n, at = 0, 1\n"
    "    while true do local s, e = lib.find(text, '%d+', at)\n"
    "      if not s then return n end n = n + 1 at = e + 1 end end},\n"
    "  {'match `^%s*(.-)%s*$` on 20,000 lines', function(lib) local n = 0\n"
    "    for k = 1, #lines do n = n + #lib.match(lines[k], '^%s*(.-)%s*$') end return n end},\n"
    "  {'gmatch `[%w_]+`', function(lib) return count(lib.gmatch, '[%w_]+') end},\n"
    "  {'gsub `%s+` → \" \"', function(lib) local s, n = lib.gsub(text, '%s+', ' ')\n"
    "    return n + #s end},\n"
    "  {'gmatch words `%a+`', function(lib) return count(lib.gmatch, '%a+') end},\n"
    "  {'gmatch `%b()`', function(lib) return count(lib.gmatch, '%b()') end},\n"
    "  {'gmatch frontier `%f[%w]%w+`', function(lib) return count(lib.gmatch, '%f[%w]%w+') end},\n"
    "  {'gmatch `(%w+)=(%w+)`', function(lib) return count(lib.gmatch, '(%w+)=(%w+)') end},\n"
    "}\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int no_steps(void *ud, const char *step, const sl_value_t **out)
{
    (void)ud, (void)step, (void)out;
    return 0;
}

/* Runs benchmark function at stack index `fn` on the library table at `lib` once;
 * returns the seconds taken and the checksum in *sum. */
static double run_once(lua_State *L, int fn, int lib, lua_Integer *sum)
{
    lua_pushvalue(L, fn);
    lua_pushvalue(L, lib);
    double start = now_s();
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    double took = now_s() - start;
    *sum = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return took;
}

/* The best of BENCH_RUNS runs of each, ours and Lua's taking turns, so that a busy
 * machine slows both alike. */
static void best_of(lua_State *L, int fn, double best[2], lua_Integer sum[2])
{
    best[0] = best[1] = 1e9;
    for (int r = 0; r < BENCH_RUNS; r++) {
        for (int which = 0; which < 2; which++) {
            double t = run_once(L, fn, 2 + which, &sum[which]);
            best[which] = t < best[which] ? t : best[which];
        }
    }
}

int main(void)
{
    sl_vm_scope_t scope = {NULL, "bench", "run", 0, no_steps, NULL};
    sl_vm_limits_t limits = {(size_t)1 << 30, 0};
    sl_vm_t *vm = NULL;
    if (sl__vm_new(&scope, &limits, &vm) != 0)
        return 1;
    lua_State *L = sl__vm_lua(vm);
    if (luaL_loadstring(L, bench_source) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "bench: %s\n", lua_tostring(L, -1));
        return 1;
    }
    /* index 1: the benchmarks; 2: ours (strings' methods); 3: Lua's (_G.string) */
    if (luaL_loadstring(L, "return {find = ('').find, match = ('').match, "
                           "gmatch = ('').gmatch, gsub = ('').gsub}, string") != LUA_OK ||
        lua_pcall(L, 0, 2, 0) != LUA_OK)
        return 1;
    printf("| pattern | sluice | Lua 5.4 | sluice ÷ Lua |\n|---|---:|---:|---:|\n");
    int status = 0;
    double worst = 0;
    for (lua_Integer i = 1; lua_rawgeti(L, 1, i) == LUA_TTABLE; i++) {
        int entry = lua_gettop(L);
        lua_rawgeti(L, entry, 1);
        lua_rawgeti(L, entry, 2);
        double best[2];
        lua_Integer sum[2];
        best_of(L, entry + 2, best, sum);
        double ours = best[0], theirs = best[1];
        lua_Integer ours_sum = sum[0], lua_sum = sum[1];
        printf("| %s | %.1f ms | %.1f ms | %.2f× |\n", lua_tostring(L, entry + 1), ours * 1e3,
               theirs * 1e3, ours / theirs);
        if (ours_sum != lua_sum) {
            fprintf(stderr, "bench: %s: checksum %lld, Lua's %lld\n", lua_tostring(L, entry + 1),
                    (long long)ours_sum, (long long)lua_sum);
            status = 1;
        }
        worst = ours / theirs > worst ? ours / theirs : worst;
        lua_settop(L, 3);
    }
    printf("\nworst ratio %.2f×\n", worst);
    sl__vm_free(vm);
    return status;
}
