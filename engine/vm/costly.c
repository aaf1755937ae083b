/*
 * Library functions whose single C call does work proportional to its arguments
 * (string.rep/upper/lower/reverse/sub/byte/char/format, table.concat/move/insert/remove/
 * unpack/sort, utf8.len/char/codepoint): the sandbox's copies charge
 * that work to the instruction budget (sl__vm_charge) before calling the standard
 * function, so one call such as string.rep('', math.maxinteger) trips the budget
 * instead of freezing the loop.
 */
#include <string.h>

#include "vm/internal.h"
#include "vm/vm.h"

#include <lauxlib.h>
#include <lua.h>

/* C work worth one instruction: elements visited by a tight C loop (a string.rep round,
 * one slot moved), and bytes copied. A VM instruction costs a few of either, so a 10 MiB
 * string.rep('x', n) stays well inside an expression's budget while rep('', maxinteger)
 * is charged 10^18. */
#define COSTLY_ELEMENTS_PER_UNIT 8u
#define COSTLY_BYTES_PER_UNIT 64u

/* `count` elements and `bytes` bytes, saturated. */
static uint64_t costly_units(uint64_t count, double bytes)
{
    double units = (double)count / COSTLY_ELEMENTS_PER_UNIT + bytes / COSTLY_BYTES_PER_UNIT;
    return units >= 1.8e19 ? UINT64_MAX : (uint64_t)units;
}

/* Calls the standard function (upvalue 1) with this call's arguments. */
static int costly_call(lua_State *L)
{
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

static int l_costly_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    double bytes = (double)n * (double)(l + lsep);
    /* A result past the memory cap fails in its allocation, before the copying loop. */
    if (n > 0 && !(bytes > 0 && sl__vm_mem_exceeds(L, bytes)))
        sl__vm_charge(L, costly_units((uint64_t)n, bytes));
    return costly_call(L);
}

/* Elements from i to j inclusive; 0 when empty. */
static uint64_t costly_span(lua_Integer i, lua_Integer j)
{
    if (j < i)
        return 0;
    uint64_t span = (uint64_t)j - (uint64_t)i + 1;
    return span == 0 ? UINT64_MAX : span;
}

static int l_costly_concat(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer i = luaL_optinteger(L, 3, 1);
    lua_Integer j = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
    sl__vm_charge(L, costly_units(costly_span(i, j), 0));
    return costly_call(L);
}

static int l_costly_move(lua_State *L)
{
    lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
    sl__vm_charge(L, costly_units(costly_span(f, e), 0));
    return costly_call(L);
}

static int l_costly_insert(lua_State *L)
{
    if (lua_gettop(L) == 3) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_Integer e = luaL_len(L, 1), pos = luaL_checkinteger(L, 2);
        sl__vm_charge(L, costly_units(costly_span(pos, e), 0));
    }
    return costly_call(L);
}

/* Work proportional to the string argument's length: upper, lower, reverse, utf8.len. */
static int l_costly_by_length(lua_State *L)
{
    size_t l;
    luaL_checklstring(L, 1, &l);
    sl__vm_charge(L, costly_units(0, (double)l));
    return costly_call(L);
}

/* The span of s[i..j] under Lua's position rules, charged as that many elements and bytes. */
static void charge_span(lua_State *L, lua_Integer j_default)
{
    size_t l;
    luaL_checklstring(L, 1, &l);
    lua_Integer len = (lua_Integer)l, i = luaL_optinteger(L, 2, 1);
    lua_Integer j = luaL_optinteger(L, 3, j_default == 0 ? i : j_default);
    i = i < 0 ? (i < -len ? 1 : len + i + 1) : (i == 0 ? 1 : i);
    j = j < 0 ? (j < -len ? 0 : len + j + 1) : (j > len ? len : j);
    uint64_t span = costly_span(i, j);
    sl__vm_charge(L, costly_units(span, (double)span));
}

/* string.sub: the bytes it copies (j defaults to -1). */
static int l_costly_sub(lua_State *L)
{
    charge_span(L, -1);
    return costly_call(L);
}

/* string.byte, utf8.codepoint: a value pushed per byte (j defaults to i). */
static int l_costly_byte(lua_State *L)
{
    charge_span(L, 0);
    return costly_call(L);
}

/* string.format and string.char, utf8.char: a unit per argument and the bytes of the
 * strings among them (a %s of a 100 MiB string copies it). */
static int l_costly_args(lua_State *L)
{
    int n = lua_gettop(L);
    double bytes = 0;
    for (int i = 1; i <= n; i++)
        if (lua_type(L, i) == LUA_TSTRING)
            bytes += (double)lua_rawlen(L, i);
    sl__vm_charge(L, costly_units((uint64_t)n, bytes));
    return costly_call(L);
}

static int l_costly_remove(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer e = luaL_len(L, 1);
    lua_Integer pos = luaL_optinteger(L, 2, e);
    sl__vm_charge(L, costly_units(costly_span(pos, e), 0));
    return costly_call(L);
}

static int l_costly_unpack(lua_State *L)
{
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer e = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
    sl__vm_charge(L, costly_units(costly_span(i, e), 0));
    return costly_call(L);
}

/* table.sort: n log2 n comparisons, each worth a few elements. */
static int l_costly_sort(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    if (n > 1) {
        uint64_t log2n = 0;
        for (uint64_t m = (uint64_t)n; m > 1; m >>= 1)
            log2n++;
        double comparisons = (double)n * (double)(log2n + 1);
        sl__vm_charge(L, comparisons >= 1.8e19 ? UINT64_MAX : costly_units((uint64_t)comparisons, 0));
    }
    return costly_call(L);
}

static void costly_set(lua_State *L, int lib_table, const char *field, lua_CFunction fn)
{
    lua_getfield(L, lib_table, field);
    lua_pushcclosure(L, fn, 1);
    lua_setfield(L, lib_table, field);
}

void sl__vm_open_costly(lua_State *L, int lib_table, const char *name)
{
    if (strcmp(name, "string") == 0) {
        costly_set(L, lib_table, "rep", l_costly_rep);
        costly_set(L, lib_table, "upper", l_costly_by_length);
        costly_set(L, lib_table, "lower", l_costly_by_length);
        costly_set(L, lib_table, "reverse", l_costly_by_length);
        costly_set(L, lib_table, "sub", l_costly_sub);
        costly_set(L, lib_table, "byte", l_costly_byte);
        costly_set(L, lib_table, "format", l_costly_args);
        costly_set(L, lib_table, "char", l_costly_args);
    } else if (strcmp(name, "table") == 0) {
        costly_set(L, lib_table, "concat", l_costly_concat);
        costly_set(L, lib_table, "move", l_costly_move);
        costly_set(L, lib_table, "insert", l_costly_insert);
        costly_set(L, lib_table, "remove", l_costly_remove);
        costly_set(L, lib_table, "unpack", l_costly_unpack);
        costly_set(L, lib_table, "sort", l_costly_sort);
    } else if (strcmp(name, "utf8") == 0) {
        costly_set(L, lib_table, "len", l_costly_by_length);
        costly_set(L, lib_table, "codepoint", l_costly_byte);
        costly_set(L, lib_table, "char", l_costly_args);
    }
}
