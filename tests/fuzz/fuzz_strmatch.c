/*
 * libFuzzer target: the sandbox's pattern functions (engine/vm/pattern.c, strmatch.c)
 * against Lua 5.4's own on the same random pattern and subject: results, captures and
 * error messages must be identical. See CMakeLists.txt for building and running.
 *
 * Input: byte 0 picks the function (find, find plain, match, gmatch, gsub with a string,
 * a table or a function), byte 1 the init argument (-8..+8) or gsub's maximum, byte 2
 * the pattern's length (at most 24), then the pattern, then the subject (at most 64
 * bytes). The sandbox's function runs first under an instruction budget of a million
 * steps; when it runs out the input is skipped (Lua's matcher has no budget and could run
 * for hours on the same pattern), else Lua's runs and the two are compared. A difference
 * aborts, with both answers on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "vm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PATTERN_MAX 24
#define FUZZ_SUBJECT_MAX 64
#define FUZZ_BUDGET 1000000

/* compare(mode, s, p, n): runs the sandbox's function (strings' methods reach it), then
 * Lua's (_G.string in the raw state), and returns nil when they agree, else both answers. */
static const char compare_source[] =
    "local mine = {find = ('').find, match = ('').match, gmatch = ('').gmatch,\n"
    "  gsub = ('').gsub}\n"
    "local theirs = {find = string.find, match = string.match, gmatch = string.gmatch,\n"
    "  gsub = string.gsub}\n"
    "local pack, concat, tostring, pcall = table.pack, table.concat, tostring, pcall\n"
    "local function show(t)\n"
    "  local out = {}\n"
    "  for i = 1, t.n do\n"
    "    local v = t[i]\n"
    "    if type(v) == 'string' then v = v:gsub(\"to 'string%.%w+'\", \"to '?'\") end\n"
    "    out[i] = math.type(v) and (math.type(v) .. ':' .. tostring(v)) or\n"
    "      (type(v) == 'string' and ('%q'):format(v) or tostring(v))\n"
    "  end\n"
    "  return concat(out, ' ')\n"
    "end\n"
    "local function all(gmatch, s, p, n)\n"
    "  local out = {}\n"
    "  for a, b, c in gmatch(s, p, n) do\n"
    "    out[#out + 1] = ('%q|%q|%q'):format(tostring(a), tostring(b), tostring(c))\n"
    "  end\n"
    "  return concat(out, ',')\n"
    "end\n"
    "local repl_table = {a = 'A', [1] = 'one', ['(('] = false}\n"
    "local function repl_function(a, b) if b then return a .. tostring(b) end\n"
    "  return a == 'b' and {} or nil end\n"
    "local function call(lib, mode, s, p, n)\n"
    "  if mode == 0 then return pack(pcall(lib.find, s, p, n))\n"
    "  elseif mode == 1 then return pack(pcall(lib.find, s, p, n, true))\n"
    "  elseif mode == 2 then return pack(pcall(lib.match, s, p, n))\n"
    "  elseif mode == 3 then return pack(pcall(all, lib.gmatch, s, p, n))\n"
    "  elseif mode == 4 then return pack(pcall(lib.gsub, s, p, '<%0|%1>%%', n))\n"
    "  elseif mode == 5 then return pack(pcall(lib.gsub, s, p, repl_table, n))\n"
    "  else return pack(pcall(lib.gsub, s, p, repl_function, n)) end\n"
    "end\n"
    "return function(mode, s, p, n)\n"
    "  local a = show(call(mine, mode, s, p, n))\n"
    "  local b = show(call(theirs, mode, s, p, n))\n"
    "  if a ~= b then return 'mine:   ' .. a .. '\\nLua\\'s: ' .. b end\n"
    "end\n";

static lua_State *fuzz_lua;
static sl_vm_budget_t fuzz_budget;

static int no_steps(void *ud, const char *step, const sl_value_t **out)
{
    (void)ud, (void)step, (void)out;
    return 0;
}

static lua_State *fuzz_setup(void)
{
    static sl_vm_t *vm;
    sl_vm_scope_t scope = {NULL, "fuzz", "run", 0, no_steps, NULL};
    sl_vm_limits_t limits = {0, 0};
    if (sl__vm_new(&scope, &limits, &vm) != 0)
        abort();
    lua_State *L = sl__vm_lua(vm);
    if (luaL_loadstring(L, compare_source) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_strmatch: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz_strmatch_compare");
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if (fuzz_lua == NULL)
        fuzz_lua = fuzz_setup();
    lua_State *L = fuzz_lua;
    int mode = data[0] % 7;
    int n = (int)(data[1] % 17) - 8;
    size_t lp = data[2] % (FUZZ_PATTERN_MAX + 1);
    data += 3, size -= 3;
    if (lp > size)
        lp = size;
    size_t ls = size - lp > FUZZ_SUBJECT_MAX ? FUZZ_SUBJECT_MAX : size - lp;
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz_strmatch_compare");
    lua_pushinteger(L, mode);
    lua_pushlstring(L, (const char *)data + lp, ls);
    lua_pushlstring(L, (const char *)data, lp);
    lua_pushinteger(L, n);
    sl__vm_budget_start(L, &fuzz_budget, FUZZ_BUDGET);
    int status = lua_pcall(L, 4, 1, 0);
    sl__vm_budget_stop(L);
    if (status == LUA_OK && lua_isstring(L, -1)) {
        fprintf(stderr, "fuzz_strmatch: the sandbox and Lua differ on pattern %.*s\n%s\n", (int)lp,
                (const char *)data, lua_tostring(L, -1));
        abort();
    }
    /* Anything else is a budget that ran out in the sandbox's matcher: skipped. */
    if (status != LUA_OK && !fuzz_budget.tripped) {
        fprintf(stderr, "fuzz_strmatch: unexpected error %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, 0);
    /* Frees what this input allocated: libFuzzer runs its (slow) leak check on every input
     * that ends with more allocations than frees. */
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
