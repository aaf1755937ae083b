/*
 * The sandbox's string.find, string.match, string.gmatch and string.gsub, on the
 * project's own pattern matcher (pattern.c), with Lua 5.4's semantics as the reference
 * manual (§6.4, §6.4.1) gives them: init positions, plain find, captures and position
 * captures, gsub's string, table and function replacements with %0-%9 and %%, its
 * maximum count, anchors, and gmatch's init (where '^' is a plain character).
 *
 * Lua's own functions run their matcher in C, where the count hook never fires: a
 * backtracking pattern such as '.-.-.-.-b' over a few thousand bytes runs for hours and
 * nothing can stop it. These charge every step to the running thread's instruction
 * budget, so such a call fails with "instruction budget exceeded (pattern matching)".
 * Plain find is charged for the bytes it scans and the candidates it compares.
 * Results and error messages are Lua's, byte for byte: tests/unit/test_vm.c and the
 * fuzz target tests/fuzz/fuzz_strmatch.c compare them with the real library's.
 */
#include <ctype.h>
#include <stddef.h>
#include <string.h>

#include "vm/internal.h"
#include "vm/pattern.h"

#define STRMATCH_SMALL_NODES 32 /* patterns this small compile on the C stack */
#define STRMATCH_SMALL_SETS 4
#define STRMATCH_NO_MATCH SIZE_MAX /* gmatch and gsub: no match yet */

/* A compiled pattern with room for a small one; bigger ones live in a userdata. */
typedef struct strmatch_program {
    sl_pattern_t pat;
    sl_pattern_node_t nodes[STRMATCH_SMALL_NODES];
    uint8_t sets[STRMATCH_SMALL_SETS][32];
} strmatch_program_t;

/* gmatch's iterator state (upvalue 3; upvalues 1 and 2 are the subject and pattern);
 * the compiled pattern's sets and nodes follow it in the same userdata. */
typedef struct strmatch_gmatch {
    sl_pattern_t pat;
    size_t from; /* where the next search starts */
    size_t last; /* where the last match ended */
} strmatch_gmatch_t;

/* ---- helpers ------------------------------------------------------------------- */

/* A 1-based, possibly negative position as a 0-based index (past the end when after it). */
static size_t start_index(lua_Integer pos, size_t length)
{
    if (pos > 0)
        return (size_t)pos - 1;
    if (pos == 0 || pos < -(lua_Integer)length)
        return 0;
    return length + (size_t)pos;
}

/* Whether the pattern has a character that makes it more than a plain string. */
static bool has_specials(const char *p, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        switch (p[i]) {
        case '^':
        case '$':
        case '*':
        case '+':
        case '?':
        case '.':
        case '(':
        case '[':
        case '%':
        case '-':
            return true;
        default:
            break;
        }
    }
    return false;
}

static void check_length(lua_State *L, size_t length)
{
    if (length > UINT32_MAX)
        luaL_error(L, "pattern too long");
}

/* Compiles into `prog`, or when it does not fit, into a userdata pushed on the stack
 * (kept there until the calling function returns). */
static sl_pattern_t *compile(lua_State *L, strmatch_program_t *prog, const char *p, size_t lp,
                             bool anchors)
{
    sl_pattern_t *pat = &prog->pat;
    check_length(L, lp);
    pat->nodes = prog->nodes;
    pat->sets = prog->sets;
    if (sl__pattern_compile(pat, p, lp, anchors, STRMATCH_SMALL_NODES, STRMATCH_SMALL_SETS))
        return pat;
    uint32_t nodes = pat->node_count, sets = pat->set_count;
    char *room = lua_newuserdatauv(L, (size_t)sets * 32 + (size_t)nodes * sizeof(*pat->nodes), 0);
    pat->sets = (uint8_t(*)[32])(void *)room;
    pat->nodes = (sl_pattern_node_t *)(void *)(room + (size_t)sets * 32);
    sl__pattern_compile(pat, p, lp, anchors, nodes, sets);
    return pat;
}

/* Pushes capture `i` of the last match (s..e), or the whole match when there are no
 * captures and `i` is 0. Raises on an invalid index or an unfinished capture. */
static void push_capture(lua_State *L, const sl_pattern_match_t *m, int i, size_t s, size_t e)
{
    if (i >= m->level) {
        if (i != 0)
            luaL_error(L, "invalid capture index %%%d", i + 1);
        lua_pushlstring(L, m->subject + s, e - s);
    } else if (m->cap_len[i] == SL_PATTERN_CAP_OPEN) {
        luaL_error(L, "unfinished capture");
    } else if (m->cap_len[i] == SL_PATTERN_CAP_POSITION) {
        lua_pushinteger(L, (lua_Integer)m->cap_start[i] + 1);
    } else {
        lua_pushlstring(L, m->subject + m->cap_start[i], (size_t)m->cap_len[i]);
    }
}

/* Pushes every capture, or the whole match (`whole`) when there are none. */
static int push_captures(lua_State *L, const sl_pattern_match_t *m, size_t s, size_t e, bool whole)
{
    int count = m->level == 0 && whole ? 1 : m->level;
    luaL_checkstack(L, count, "too many captures");
    for (int i = 0; i < count; i++)
        push_capture(L, m, i, s, e);
    return count;
}

/* A match state for subject s (ls bytes); the capture arrays are left unset (each match
 * writes the captures it reports). */
static void match_init(sl_pattern_match_t *m, lua_State *L, const char *s, size_t ls)
{
    m->L = L;
    m->subject = s;
    m->length = ls;
    m->credit = 0;
    m->level = 0;
}

/* ---- find and match --------------------------------------------------------------- */

/* find with no pattern: the first occurrence of p at or after `init`. */
static int find_plain(lua_State *L, const char *s, size_t ls, const char *p, size_t lp, size_t init)
{
    if (lp == 0) {
        lua_pushinteger(L, (lua_Integer)init + 1);
        lua_pushinteger(L, (lua_Integer)init);
        return 2;
    }
    if (lp > ls - init) {
        luaL_pushfail(L);
        return 1;
    }
    sl_pattern_match_t m;
    match_init(&m, L, NULL, 0);
    size_t found = sl__pattern_memfind(&m, s + init, ls - init, p, lp);
    sl__pattern_settle(&m);
    if (found == SIZE_MAX) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)(init + found) + 1);
    lua_pushinteger(L, (lua_Integer)(init + found + lp));
    return 2;
}

static int find_or_match(lua_State *L, bool find)
{
    size_t ls, lp;
    const char *s = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_index(luaL_optinteger(L, 3, 1), ls);
    if (init > ls) {
        luaL_pushfail(L);
        return 1;
    }
    if (find && (lua_toboolean(L, 4) || !has_specials(p, lp)))
        return find_plain(L, s, ls, p, lp, init);
    strmatch_program_t prog;
    sl_pattern_t *pat = compile(L, &prog, p, lp, true);
    sl_pattern_match_t m;
    match_init(&m, L, s, ls);
    size_t start, end;
    bool found = sl__pattern_search(&m, pat, init, &start, &end);
    sl__pattern_settle(&m);
    if (!found) {
        luaL_pushfail(L);
        return 1;
    }
    if (!find)
        return push_captures(L, &m, start, end, true);
    lua_pushinteger(L, (lua_Integer)start + 1);
    lua_pushinteger(L, (lua_Integer)end);
    return 2 + push_captures(L, &m, start, end, false);
}

static int l_string_find(lua_State *L)
{
    return find_or_match(L, true);
}

static int l_string_match(lua_State *L)
{
    return find_or_match(L, false);
}

/* ---- gmatch ------------------------------------------------------------------------ */

static int gmatch_next(lua_State *L)
{
    size_t ls;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
    strmatch_gmatch_t *gm = lua_touserdata(L, lua_upvalueindex(3));
    sl_pattern_match_t m;
    match_init(&m, L, s, ls);
    size_t start, end;
    while (gm->from <= ls && sl__pattern_search(&m, &gm->pat, gm->from, &start, &end)) {
        if (end == gm->last) { /* empty, where the last match ended: try one further */
            gm->from = start + 1;
            continue;
        }
        gm->from = gm->last = end;
        sl__pattern_settle(&m);
        return push_captures(L, &m, start, end, true);
    }
    gm->from = ls + 1;
    sl__pattern_settle(&m);
    return 0;
}

static int l_string_gmatch(lua_State *L)
{
    size_t ls, lp;
    luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    size_t init = start_index(luaL_optinteger(L, 3, 1), ls);
    lua_settop(L, 2);
    check_length(L, lp);
    sl_pattern_t probe = {0}; /* counts what the compiled pattern needs */
    sl__pattern_compile(&probe, p, lp, false, 0, 0);
    uint32_t nodes = probe.node_count, sets = probe.set_count;
    strmatch_gmatch_t *gm = lua_newuserdatauv(
        L, sizeof(*gm) + (size_t)sets * 32 + (size_t)nodes * sizeof(sl_pattern_node_t), 0);
    gm->pat.sets = (uint8_t(*)[32])(void *)(gm + 1);
    gm->pat.nodes = (sl_pattern_node_t *)(void *)((char *)(gm + 1) + (size_t)sets * 32);
    sl__pattern_compile(&gm->pat, p, lp, false, nodes, sets);
    gm->from = init > ls ? ls + 1 : init;
    gm->last = STRMATCH_NO_MATCH;
    lua_pushcclosure(L, gmatch_next, 3);
    return 1;
}

/* ---- gsub ------------------------------------------------------------------------------ */

/* Appends the replacement string (argument 3) for the match s..e, with %0-%9 and %%. */
static void add_string(lua_State *L, sl_pattern_match_t *m, luaL_Buffer *b, size_t s, size_t e)
{
    size_t left;
    const char *text = lua_tolstring(L, 3, &left), *escape;
    sl__pattern_charge(m, left / 32 + 1);
    while ((escape = memchr(text, '%', left)) != NULL) {
        luaL_addlstring(b, text, (size_t)(escape - text));
        char what = escape[1]; /* the string's terminating '\0' after a final '%' */
        if (what == '%') {
            luaL_addchar(b, '%');
        } else if (what == '0') {
            luaL_addlstring(b, m->subject + s, e - s);
        } else if (isdigit((unsigned char)what)) {
            push_capture(L, m, what - '1', s, e);
            luaL_addvalue(b);
        } else {
            luaL_error(L, "invalid use of '%%' in replacement string");
        }
        left -= (size_t)(escape + 2 - text);
        text = escape + 2;
    }
    luaL_addlstring(b, text, left);
}

/* Appends the replacement of the match s..e; false when the match is kept as it is (the
 * table or function gave false or nil). */
static bool add_value(lua_State *L, sl_pattern_match_t *m, luaL_Buffer *b, size_t s, size_t e,
                      int repl_type)
{
    if (repl_type == LUA_TFUNCTION) {
        sl__pattern_settle(m); /* the function's instructions are charged by the hook */
        lua_pushvalue(L, 3);
        int count = push_captures(L, m, s, e, true);
        lua_call(L, count, 1);
    } else if (repl_type == LUA_TTABLE) {
        sl__pattern_settle(m); /* an __index metamethod may run */
        push_capture(L, m, 0, s, e);
        lua_gettable(L, 3);
    } else {
        add_string(L, m, b, s, e);
        return true;
    }
    if (!lua_toboolean(L, -1)) {
        lua_pop(L, 1);
        luaL_addlstring(b, m->subject + s, e - s);
        return false;
    }
    if (!lua_isstring(L, -1))
        luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    luaL_addvalue(b);
    return true;
}

static int l_string_gsub(lua_State *L)
{
    size_t ls, lp;
    const char *src = luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int repl_type = lua_type(L, 3);
    lua_Integer max_count = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
    luaL_argexpected(L,
                     repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING ||
                         repl_type == LUA_TFUNCTION || repl_type == LUA_TTABLE,
                     3, "string/function/table");
    strmatch_program_t prog;
    sl_pattern_t *pat = compile(L, &prog, p, lp, true);
    sl_pattern_match_t m;
    match_init(&m, L, src, ls);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t at = 0, last = STRMATCH_NO_MATCH, start, end;
    lua_Integer count = 0;
    bool changed = false;
    while (count < max_count && sl__pattern_search(&m, pat, at, &start, &end)) {
        if (end == last) { /* empty, where the last match ended: keep a character */
            if (start >= ls)
                break;
            luaL_addlstring(&b, src + at, start + 1 - at);
            at = start + 1;
            continue;
        }
        luaL_addlstring(&b, src + at, start - at);
        count++;
        changed = add_value(L, &m, &b, start, end, repl_type) || changed;
        at = last = end;
        if (pat->anchored)
            break;
    }
    sl__pattern_settle(&m);
    if (!changed) {
        lua_pushvalue(L, 1);
    } else {
        luaL_addlstring(&b, src + at, ls - at);
        luaL_pushresult(&b);
    }
    lua_pushinteger(L, count);
    return 2;
}

static const luaL_Reg strmatch_funcs[] = {
    {"find", l_string_find},
    {"match", l_string_match},
    {"gmatch", l_string_gmatch},
    {"gsub", l_string_gsub},
    {NULL, NULL},
};

void sl__vm_open_strmatch(lua_State *L, int string_table)
{
    string_table = lua_absindex(L, string_table);
    for (const luaL_Reg *f = strmatch_funcs; f->name; f++) {
        lua_pushcfunction(L, f->func);
        lua_setfield(L, string_table, f->name);
    }
}
