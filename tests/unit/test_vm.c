/* Unit tests for vm/: sandbox, conversions, helpers, budgets, evaluation speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "vm/vm.h"
#include "test.h"

static int l_fake_url_join(lua_State *L);

static sl_value_t *json(const char *text)
{
    sl_value_t *v = NULL;
    char err[128];
    if (sl_value_from_json(text, strlen(text), &v, err, sizeof(err)) < 0) {
        fprintf(stderr, "bad JSON in test: %s\n", err);
        abort();
    }
    return v;
}

static int step_calls;
static sl_value_t *step_a, *step_big;

static int step_output(void *ud, const char *step, const sl_value_t **out)
{
    (void)ud;
    if (strcmp(step, "big") == 0) {
        if (step_big == NULL)
            step_big = json("{\"k1\": 1, \"k2\": 2, \"k3\": 3, \"k4\": 4, \"k5\": 5, "
                            "\"k6\": 6, \"k7\": 7, \"k8\": 8, \"k9\": 9, \"k10\": 10, "
                            "\"rows\": [{\"n\": 1}, {\"n\": 2}, {\"n\": 3}], \"none\": null}");
        *out = step_big;
        return 1;
    }
    if (strcmp(step, "a") != 0)
        return 0;
    step_calls++;
    *out = step_a;
    return 1;
}

static sl_vm_t *new_vm_limits(size_t memory_bytes, uint64_t expr_instructions)
{
    static sl_value_t *vars;
    if (vars == NULL)
        vars = json("{\"base\": \"http://x\", \"n\": 3, \"list\": [3, 1, 2], "
                    "\"m\": {\"k\": {\"z\": 1}, \"j\": [true]}}");
    if (step_a == NULL)
        step_a = json("{\"x\": 1, \"y\": [1, 2, null], \"s\": \"hi\", \"e\": {}}");
    sl_vm_scope_t scope = {vars, "wf", "run-1", 1700000000, step_output, NULL, NULL};
    sl_vm_limits_t limits = {memory_bytes, expr_instructions};
    sl_vm_t *vm = NULL;
    CHECK_INT(sl__vm_new(&scope, &limits, &vm), 0);
    return vm;
}

static sl_vm_t *new_vm(size_t memory_bytes)
{
    return new_vm_limits(memory_bytes, 0);
}

/* Evaluates `src` (keyed by its text's address) and returns compact JSON of the result or
 * "ERR <code>: <message>". */
static const char *eval_item(sl_vm_t *vm, const char *src, const sl_value_t *item, int64_t index)
{
    static char out[1024];
    char err[512] = "";
    sl_value_t *v = NULL;
    int rc = sl__vm_eval(vm, src, src, strlen(src), "=expression", item, index, &v, err,
                         sizeof(err));
    if (rc < 0) {
        snprintf(out, sizeof(out), "ERR %d: %s", rc, err);
        return out;
    }
    char *text = NULL;
    size_t len;
    if (sl_value_to_json(v, &text, &len) < 0)
        snprintf(out, sizeof(out), "(unencodable)");
    else
        snprintf(out, sizeof(out), "%s%s", sl_value_type(v) == SL_TYPE_NUMBER ? "n:" : "", text);
    sl__free(text);
    sl_value_free(v);
    return out;
}

static const char *eval(sl_vm_t *vm, const char *src)
{
    return eval_item(vm, src, NULL, 0);
}

static void test_values(void)
{
    sl_vm_t *vm = new_vm(0);
    CHECK_STR(eval(vm, "1 + 2"), "3");
    CHECK_STR(eval(vm, "1.5"), "n:1.5");
    CHECK_STR(eval(vm, "4 / 2"), "n:2.0");
    CHECK_STR(eval(vm, "'a' .. 'b'"), "\"ab\"");
    CHECK_STR(eval(vm, "nil"), "null");
    CHECK_STR(eval(vm, "{1, 2, {true, false}}"), "[1,2,[true,false]]");
    CHECK_STR(eval(vm, "{}"), "{}");
    CHECK_STR(eval(vm, "{b = 1, a = {x = 'y'}, [3] = nil}"), "{\"a\":{\"x\":\"y\"},\"b\":1}");
    CHECK_STR(eval(vm, "{[1] = 'a', [3] = 'c'}"), "{\"1\":\"a\",\"3\":\"c\"}");
    CHECK_STR(eval(vm, "{1, null, 3}"), "[1,null,3]");
    CHECK_STR(eval(vm, "null"), "null");
    CHECK_STR(eval(vm, "tostring(null)"), "\"null\"");
    sl__vm_free(vm);
}

static void test_bad_results(void)
{
    sl_vm_t *vm = new_vm(0);
    CHECK_STR(eval(vm, "type"), "ERR -11: cannot convert a function to a value");
    CHECK_STR(eval(vm, "{a = {1, type}}"), "ERR -11: cannot convert a function to a value (at .a[2])");
    CHECK_STR(eval(vm, "(function() local t = {} t.t = t return t end)()"),
              "ERR -11: cannot convert a table that contains itself (at .t)");
    CHECK_STR(eval(vm, "{1, a = 2}"), "ERR -11: cannot convert a table mixing list items and keys");
    CHECK_STR(eval(vm, "{[1.5] = 1}"), "ERR -11: cannot convert a table with a fractional key");
    CHECK_STR(eval(vm, "{[true] = 1}"),
              "ERR -11: cannot convert a table with a key that is not a string or integer");
    sl__vm_free(vm);
}

static void test_item_index(void)
{
    sl_vm_t *vm = new_vm(0);
    sl_value_t *i21 = sl_value_int(21), *s = sl_value_cstring("de"), *list = json("[1,[2,3]]");
    sl_value_t *map = json("{\"key\": \"k\", \"value\": 7}");
    CHECK_STR(eval_item(vm, "item * 2", i21, 1), "42");
    CHECK_STR(eval_item(vm, "index", i21, 5), "5");
    CHECK_STR(eval_item(vm, "index", NULL, 0), "null");
    CHECK_STR(eval_item(vm, "item", NULL, 0), "null");
    CHECK_STR(eval_item(vm, "'flag-' .. item .. '.png'", s, 1), "\"flag-de.png\"");
    CHECK_STR(eval_item(vm, "item[2][1] + #item", list, 1), "4");
    CHECK_STR(eval_item(vm, "item.key .. item.value", map, 1), "\"k7\"");
    CHECK_STR(eval_item(vm, "item", list, 1), "[1,[2,3]]");
    sl_value_free(i21);
    sl_value_free(s);
    sl_value_free(list);
    sl_value_free(map);
    sl__vm_free(vm);
}

static void test_scope(void)
{
    sl_vm_t *vm = new_vm(0);
    setenv("SL_TEST_VAR", "hello", 1);
    CHECK_STR(eval(vm, "vars.base .. '/' .. vars.n"), "\"http://x/3\"");
    CHECK_STR(eval(vm, "env.SL_TEST_VAR"), "\"hello\"");
    CHECK_STR(eval(vm, "env.SL_TEST_NOT_SET_ANYWHERE"), "null");
    CHECK_STR(eval(vm, "run.id .. ' ' .. run.started .. ' ' .. workflow.name"),
              "\"run-1 1700000000 wf\"");
    step_calls = 0;
    CHECK_STR(eval(vm, "steps.a.x + #steps.a.y"), "4");
    CHECK_STR(eval(vm, "steps['a'].s"), "\"hi\"");
    CHECK_INT(step_calls, 1); /* converted once, then cached */
    CHECK_STR(eval(vm, "steps.a.y"), "[1,2,null]");
    CHECK_STR(eval(vm, "steps.a.e"), "{}");
    CHECK_STR(eval(vm, "steps.nope"), "null");
    CHECK_STR(eval(vm, "steps.a.nope + 1"),
              "ERR -12: attempt to perform arithmetic on a nil value (field 'nope')");
    CHECK_STR(eval(vm, "(function() x = 1 end)()"), "ERR -12: cannot assign 'x' in an expression");
    CHECK_STR(eval(vm, "(function() env.HOME = 1 end)()"), "ERR -12: env is read-only");
    CHECK_STR(eval(vm, "(function() steps.a = 1 end)()"), "ERR -12: steps is read-only");
    CHECK_STR(eval(vm, "io == nil and os == nil and load == nil and require == nil and "
                       "debug == nil and dofile == nil and collectgarbage == nil and "
                       "package == nil and string.dump == nil and rawset == nil"),
              "true");
    CHECK_STR(eval(vm, "('abc'):upper() .. string.format('%03d', 7) .. math.floor(2.5)"),
              "\"ABC0072\"");
    CHECK_STR(eval(vm, "getmetatable('')"), "false");
    CHECK_STR(eval(vm, "nosuchfunction(1)"),
              "ERR -12: attempt to call a nil value (global 'nosuchfunction')");
    CHECK_STR(eval(vm, "error({})"), "ERR -12: (error object is a table value)");
    sl__vm_free(vm);
}

static void test_helpers(void)
{
    sl_vm_t *vm = new_vm(0);
    CHECK_STR(eval(vm, "keys({b = 1, a = 2, B = 3})"), "[\"B\",\"a\",\"b\"]");
    CHECK_STR(eval(vm, "keys({[10] = 1, [9] = 2, [1.5] = 3})"), "[1.5,9,10]");
    CHECK_STR(eval(vm, "values({b = 1, a = 2})"), "[2,1]");
    CHECK_STR(eval(vm, "keys({'x', 'y'})"), "[1,2]");
    CHECK_STR(eval(vm, "keys({})"), "[]");
    CHECK_STR(eval(vm, "keys(steps.a)"), "[\"e\",\"s\",\"x\",\"y\"]");
    CHECK_CONTAINS(eval(vm, "keys(nil)"), "bad argument #1 to 'keys' (table expected, got nil)");
    CHECK_STR(eval(vm, "range(1, 5)"), "[1,2,3,4,5]");
    CHECK_STR(eval(vm, "range(3, 1)"), "[]");
    CHECK_STR(eval(vm, "range(10, 1, -4)"), "[10,6,2]");
    CHECK_STR(eval(vm, "#range(1, 10000000)"), "10000000");
    CHECK_STR(eval(vm, "range(1, 10000001)"),
              "ERR -12: range(1, 10000001) has 10000001 elements, more than the limit of "
              "10000000");
    CHECK_STR(eval(vm, "{len('abc'), len({1, 2}), len({a = 1}), len(nil), len(null)}"),
              "[3,2,1,0,0]");
    CHECK_STR(eval(vm, "len(steps.a.y)"), "3");
    CHECK_STR(eval(vm, "len(5)"), "ERR -12: len() takes a string, list or map, not a number");
    CHECK_STR(eval(vm, "json_encode({a = {1, 2.5, 'x'}, b = null})"),
              "\"{\\\"a\\\":[1,2.5,\\\"x\\\"],\\\"b\\\":null}\"");
    CHECK_STR(eval(vm, "json_encode(json_decode('[]'))"), "\"[]\"");
    CHECK_STR(eval(vm, "json_decode('[1, null, {\"x\": true}]')"), "[1,null,{\"x\":true}]");
    CHECK_STR(eval(vm, "json_decode('[1, null]')[2] == null"), "true");
    CHECK_CONTAINS(eval(vm, "json_decode('{')"), "ERR -12: json_decode: invalid JSON");
    CHECK_CONTAINS(eval(vm, "json_encode(type)"), "json_encode: cannot convert a function");
    /* url_join needs the function the lua kind hands in (vm/ cannot reach libcurl) */
    CHECK_STR(eval(vm, "url_join('http://a/b', 'c')"),
              "ERR -12: url_join is not available (no URL library in this process)");
    sl__vm_set_url_join(l_fake_url_join);
    CHECK_STR(eval(vm, "url_join('http://a/b', 'c')"), "\"joined http://a/b + c\"");
    sl__vm_set_url_join(NULL);
    sl__vm_free(vm);
}

/* Stands in for lua/url.c's url_join: the VM calls whatever it was handed. */
static int l_fake_url_join(lua_State *L)
{
    lua_pushfstring(L, "joined %s + %s", luaL_checkstring(L, 1), luaL_checkstring(L, 2));
    return 1;
}

static void test_budgets(void)
{
    sl_vm_t *vm = new_vm((size_t)16 << 20);
    CHECK_STR(eval(vm, "(function() while true do end end)()"),
              "ERR -7: instruction budget exceeded");
    CHECK_STR(eval(vm, "1 + 1"), "2");
    CHECK_CONTAINS(eval(vm, "#string.rep('x', 64 * 1024 * 1024)"), "ERR -7: not enough memory");
    CHECK_CONTAINS(eval(vm, "(function() local t = {} for i = 1, 1e7 do t[i] = i end end)()"),
                   "ERR -7: not enough memory");
    CHECK_STR(eval(vm, "#string.rep('x', 1024 * 1024)"), "1048576");
    sl__vm_free(vm);
}

static void test_push_pull(void)
{
    sl_vm_t *vm = new_vm(0);
    lua_State *L = sl__vm_lua(vm);
    const char *texts[] = {"[]", "{}", "[1,2.5,\"x\",null,true,{\"a\":[[]]}]", "\"s\\u0000t\"",
                           "{\"z\":1,\"a\":{\"k\":null}}", "null", "-9007199254740993"};
    for (size_t i = 0; i < SL_COUNTOF(texts); i++) {
        sl_value_t *v = json(texts[i]), *back = NULL;
        char err[128];
        CHECK_INT(sl__vm_push(L, v), 0);
        CHECK_INT(sl__vm_pull(L, -1, &back, err, sizeof(err)), 0);
        lua_pop(L, 1);
        CHECK(sl_value_equal(v, back));
        sl_value_free(v);
        sl_value_free(back);
    }
    CHECK_INT(lua_gettop(L), 0);

    sl_value_t *deep = sl_value_list(), *cur = deep;
    for (int i = 0; i < 250; i++) {
        sl_value_t *inner = sl_value_list();
        sl_value_push(cur, inner);
        cur = (sl_value_t *)sl_value_at(cur, 0);
    }
    CHECK_INT(sl__vm_push(L, deep), SL_ELIMIT);
    CHECK_INT(lua_gettop(L), 0);
    sl_value_free(deep);
    sl__vm_free(vm);
}

/* The sandbox's find/match/gmatch/gsub (engine/vm/strmatch.c) against Lua's own, which
 * the raw state still has in _G.string: strings' methods reach the sandbox's copy. Called
 * through pcall, an argument error names Lua's functions 'string.gsub' (found in
 * package.loaded) and the copies '?'; called directly, both are named by the call site. */
static const char pattern_diff[] =
    "local mine = ('').find and getmetatable ~= nil and {\n"
    "  find = ('').find, match = ('').match, gmatch = ('').gmatch, gsub = ('').gsub }\n"
    "assert(mine.find ~= string.find, 'the sandbox must have its own find')\n"
    "local function same(what, a, b)\n"
    "  if a.n ~= b.n then error(what .. ': ' .. a.n .. ' results, expected ' .. b.n) end\n"
    "  for i = 1, a.n do\n"
    "    local x, y = a[i], b[i]\n"
    "    if type(y) == 'string' then y = y:gsub(\"to 'string%.%w+'\", \"to '?'\") end\n"
    "    if x ~= y then\n"
    "      error(what .. ': result ' .. i .. ' is ' .. tostring(x) .. ', expected ' ..\n"
    "            tostring(y))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function both(what, f, g, ...)\n"
    "  same(what, table.pack(pcall(f, ...)), table.pack(pcall(g, ...)))\n"
    "end\n"
    "local function all(f, ...)\n"
    "  local out = {}\n"
    "  for a, b, c in f(...) do out[#out + 1] = tostring(a) .. '|' .. tostring(b) .. '|' ..\n"
    "    tostring(c) end\n"
    "  return table.concat(out, ',')\n"
    "end\n"
    "local subjects = {'', 'hello world', 'THE (quick) fox', 'a.b-c+d*e?f', '  x = 1, y = 22  ',\n"
    "  'f(a(b)c)d', 'aaa', 'THE (quick) fox jumps', 'one\\0two', '[[x]]', 'x%y'}\n"
    "local patterns = {'o', 'l+', 'l*', 'l-', 'l?', '^h', 'x$', '^$', '(o)', '()o()', '%a+',\n"
    "  '%s*(%w+)%s*=%s*(%d+)', '%b()', '%f[%a]%a+', '%f[%A]', '[%a-]+', '[^%s]+', '.-',\n"
    "  '(a)(a)%2', '(%w+) (%w+)', '%u+', '[a-c]', '%.', '%', '[a', '(()', '%b', '%f', 'a)',\n"
    "  '%1', '\\0', '[%z]', '%z', '.', '', '^', '$', '(a*(.)%w(%s*))', '%d+%.?%d*', '[]]',\n"
    "  '[^]]', '%g+', '%p', '%c', '%x+', '[%]]', '((((((((((((((((((((((((((((((((((x)))'}\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(patterns) do\n"
    "    for _, init in ipairs({1, 2, -3, 0, 100}) do\n"
    "      local w = string.format('%q %q %d', s, p, init)\n"
    "      both('find ' .. w, mine.find, string.find, s, p, init)\n"
    "      both('find plain ' .. w, mine.find, string.find, s, p, init, true)\n"
    "      both('match ' .. w, mine.match, string.match, s, p, init)\n"
    "      both('gmatch ' .. w, function(...) return all(mine.gmatch, ...) end,\n"
    "           function(...) return all(string.gmatch, ...) end, s, p, init)\n"
    "    end\n"
    "    local w = string.format('%q %q', s, p)\n"
    "    both('gsub ' .. w, mine.gsub, string.gsub, s, p, '<%0>')\n"
    "    both('gsub %1 ' .. w, mine.gsub, string.gsub, s, p, '[%1]', 2)\n"
    "    both('gsub %% ' .. w, mine.gsub, string.gsub, s, p, '%%')\n"
    "    both('gsub bad % ' .. w, mine.gsub, string.gsub, s, p, '%x')\n"
    "    both('gsub table ' .. w, mine.gsub, string.gsub, s, p, {o = 'O', l = false, a = 1})\n"
    "    both('gsub function ' .. w, mine.gsub, string.gsub, s, p,\n"
    "         function(a, b) return b and (a .. b) or (a == 'l' and {} or nil) end)\n"
    "    both('gsub number ' .. w, mine.gsub, string.gsub, s, p, 7)\n"
    "    both('gsub 0 ' .. w, mine.gsub, string.gsub, s, p, 'x', 0)\n"
    "  end\n"
    "end\n"
    "both('gsub bad repl', mine.gsub, string.gsub, 'x', 'x', true)\n"
    "both('find no args', mine.find, string.find)\n"
    "return 'same'\n";

static void test_patterns_match_lua(void)
{
    sl_vm_t *vm = new_vm(0);
    lua_State *L = sl__vm_lua(vm);
    int status = luaL_loadstring(L, pattern_diff);
    if (status == LUA_OK)
        status = lua_pcall(L, 0, 1, 0);
    CHECK_STR(lua_tostring(L, -1), "same");
    lua_settop(L, 0);
    /* Through the sandbox too. */
    CHECK_STR(eval(vm, "{('key = value'):match('(%w+)%s*=%s*(%w+)')}"), "[\"key\",\"value\"]");
    CHECK_STR(eval(vm, "{string.gsub('hello world', 'o', {o = '0'})}"), "[\"hell0 w0rld\",2]");
    CHECK_STR(eval(vm, "(function() local t = {} for k, v in ('a=1, b=2'):gmatch('(%w+)=(%w+)', 2) "
                       "do t[#t + 1] = k .. v end return t end)()"),
              "[\"b2\"]");
    sl__vm_free(vm);
}

/* More of the same comparison (pattern_diff's helpers, then cases the first table does not
 * reach): set syntax corner cases, back-references, position captures in replacements,
 * Lua's nesting limit ("pattern too complex" at 200 nested items, captures included),
 * patterns too big for the matcher's stack buffers, and 10,000 random patterns and
 * subjects built from pattern syntax (malformed ones included). */
static const char pattern_diff_more[] =
    "local mine = { find = ('').find, match = ('').match, gmatch = ('').gmatch,\n"
    "  gsub = ('').gsub }\n"
    "assert(mine.find ~= string.find, 'the sandbox must have its own find')\n"
    "local function same(what, a, b)\n"
    "  if a.n ~= b.n then error(what .. ': ' .. a.n .. ' results, expected ' .. b.n) end\n"
    "  for i = 1, a.n do\n"
    "    local x, y = a[i], b[i]\n"
    "    if type(y) == 'string' then y = y:gsub(\"to 'string%.%w+'\", \"to '?'\") end\n"
    "    if x ~= y or math.type(x) ~= math.type(y) then\n"
    "      error(what .. ': result ' .. i .. ' is ' .. tostring(x) .. ', expected ' ..\n"
    "            tostring(y))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function both(what, f, g, ...)\n"
    "  same(what, table.pack(pcall(f, ...)), table.pack(pcall(g, ...)))\n"
    "end\n"
    "local function all(f, ...)\n"
    "  local out = {}\n"
    "  for a, b, c in f(...) do out[#out + 1] = tostring(a) .. '|' .. tostring(b) .. '|' ..\n"
    "    tostring(c) end\n"
    "  return table.concat(out, ',')\n"
    "end\n"
    "local repls = {'<%0>', '%1-%2', '%%', '%', 'x%', '%9', '%1%1', {a = 'A', [1] = 'one'},\n"
    "  function(a, b) return b end, function(a) return a == 'a' and 1.5 or false end,\n"
    "  function() return {} end, 12}\n"
    "local function compare(s, p, init)\n"
    "  local w = string.format('%q %q %d', s, p, init)\n"
    "  both('find ' .. w, mine.find, string.find, s, p, init)\n"
    "  both('match ' .. w, mine.match, string.match, s, p, init)\n"
    "  both('gmatch ' .. w, function(...) return all(mine.gmatch, ...) end,\n"
    "       function(...) return all(string.gmatch, ...) end, s, p, init)\n"
    "  for i, r in ipairs(repls) do\n"
    "    both('gsub ' .. i .. ' ' .. w, mine.gsub, string.gsub, s, p, r, init - 1)\n"
    "  end\n"
    "end\n"
    "local subjects = {'', 'a', 'ab]c-d^e', '(a(b)c))(', 'aXbXXc', 'a1b22c333', 'x\\0y\\0',\n"
    "  '\\255\\128a\\127', 'abab', 'hello world from lua', '[]^-%', '  ', 'aaaa'}\n"
    "local patterns = {'[]]', '[^]]', '[]', '[^]', '[a-]', '[-a]', '[%a-z]', '[x-%%]',\n"
    "  '[!-%]]', '[%]', '[a-%]', '[%w_]+', '[\\0-\\31]', '[\\128-\\255]+', '[^%z]', '%Z+',\n"
    "  '(a)%1', '(a*)%1', '()a%1', '(.)(.)%2%1', '(%w)%1*', '%0', '(a%1)', '%b', '%ba',\n"
    "  '%baa', '%b()', '%b)(', '%bxy', '%f', '%fa', '%f[', '%f[%w]%w+', '%f[%W]', '%f[^\\0]',\n"
    "  '%f[\\0]', 'a**', '*a', '+', '-', '?', 'a?b?c?', '.-b', '.-$', '^.-$', '^(.-)%s*$',\n"
    "  '$^', 'a$b', '^^a', '(^a)', '()()()', '(()())', '((a)(b))', ')', '(', '%', 'x%',\n"
    "  '[%', '[a%', '%q%Q%.%%', '%a-%d', '.+.+.+', '(a+)+', '[^%s]*', '\\0', '\\0*',\n"
    "  string.rep('a?', 199), string.rep('a?', 200), string.rep('a?', 198) .. '()',\n"
    "  string.rep('a?', 199) .. '()', string.rep('(a)', 32), string.rep('(a)', 33),\n"
    "  string.rep('(', 40), string.rep('()', 33), string.rep('[ab]', 40),\n"
    "  string.rep('%a', 50) .. '+', string.rep('x', 100) .. '%', string.rep('.-', 100),\n"
    "  string.rep('a*', 150) .. '$', string.rep('(a?)', 100)}\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(patterns) do\n"
    "    for _, init in ipairs({1, 3, -1, -100}) do compare(s, p, init) end\n"
    "  end\n"
    "end\n"
    "local long = string.rep('a', 300)\n"
    "for _, p in ipairs(patterns) do compare(long, p, 1) end\n"
    "both('gsub anchored', mine.gsub, string.gsub, 'aaa', '^a', 'b')\n"
    "both('gsub anchored empty', mine.gsub, string.gsub, 'aaa', '^', 'b')\n"
    "both('gsub empty', mine.gsub, string.gsub, 'abc', '', '-')\n"
    "both('gsub max', mine.gsub, string.gsub, 'abc', '%w', '%0%0', 2)\n"
    "both('gsub negative max', mine.gsub, string.gsub, 'abc', '%w', 'x', -1)\n"
    "both('gsub position', mine.gsub, string.gsub, 'abc', '()', '%1')\n"
    "both('gsub position table', mine.gsub, string.gsub, 'abc', '()b', {[2] = 'two'})\n"
    "both('gsub bad max', mine.gsub, string.gsub, 'abc', 'b', true, 'x')\n"
    "both('gsub no repl', mine.gsub, string.gsub, 'abc', 'b')\n"
    "both('find float init', mine.find, string.find, 'abc', 'b', 1.5)\n"
    "both('find string init', mine.find, string.find, 'abc', 'b', '2')\n"
    "both('find number subject', mine.find, string.find, 12345, 3)\n"
    "both('find plain special', mine.find, string.find, 'a.b(c', '.b(', 1, true)\n"
    "both('find plain past', mine.find, string.find, 'abc', 'c', 4, true)\n"
    "both('find plain empty', mine.find, string.find, 'abc', '', 4, true)\n"
    "both('find plain too far', mine.find, string.find, 'abc', '', 5, true)\n"
    "both('find no specials', mine.find, string.find, 'aaa', 'a)')\n"
    "both('match no specials', mine.match, string.match, 'aaa', 'a)')\n"
    "both('gmatch init past', function(...) return all(mine.gmatch, ...) end,\n"
    "     function(...) return all(string.gmatch, ...) end, 'abc', '', 10)\n"
    "both('gmatch anchor', function(...) return all(mine.gmatch, ...) end,\n"
    "     function(...) return all(string.gmatch, ...) end, '^a^a', '^a')\n"
    "both('gmatch bad', mine.gmatch, string.gmatch, 'abc')\n"
    "local big = string.rep('ab', 1 << 19) .. 'needle'\n"
    "both('find plain big', mine.find, string.find, big, 'needle', 1, true)\n"
    "both('find literal big', mine.find, string.find, big, 'needle%s*')\n"
    "both('find plain big miss', mine.find, string.find, big, 'needles', 1, true)\n"
    "math.randomseed(13)\n"
    "local tokens = {'a', 'b', 'a', 'b', '.', '%a', '%d', '%s', '%w', '%A', '%z', '%%',\n"
    "  '[ab]', '[^a]', '[a-c]', '[]]', '[%a_]', '[', ']', '%b()', '%bab', '%f[%w]', '%f[a]',\n"
    "  '(', ')', '()', '%1', '%2', '%0', '^', '$', '*', '+', '-', '?', '%', '\\0', '(', ')'}\n"
    "local letters = {'a', 'b', 'a', 'b', '(', ')', ' ', '1', '.', '\\0', 'x', ']'}\n"
    "for _ = 1, 10000 do\n"
    "  local p, s = {}, {}\n"
    "  for i = 1, math.random(1, 6) do p[i] = tokens[math.random(#tokens)] end\n"
    "  for i = 1, math.random(0, 10) do s[i] = letters[math.random(#letters)] end\n"
    "  p, s = table.concat(p), table.concat(s)\n"
    "  local init = math.random(-3, 4)\n"
    "  local w = string.format('%q %q %d', s, p, init)\n"
    "  both('random find ' .. w, mine.find, string.find, s, p, init)\n"
    "  both('random match ' .. w, mine.match, string.match, s, p, init)\n"
    "  both('random gmatch ' .. w, function(...) return all(mine.gmatch, ...) end,\n"
    "       function(...) return all(string.gmatch, ...) end, s, p, init)\n"
    "  local r = repls[math.random(#repls)]\n"
    "  both('random gsub ' .. w, mine.gsub, string.gsub, s, p, r, init + 1)\n"
    "end\n"
    "return 'same'\n";

static void test_patterns_match_lua_more(void)
{
    sl_vm_t *vm = new_vm(0);
    lua_State *L = sl__vm_lua(vm);
    int status = luaL_loadstring(L, pattern_diff_more);
    if (status == LUA_OK)
        status = lua_pcall(L, 0, 1, 0);
    CHECK_STR(lua_tostring(L, -1), "same");
    lua_settop(L, 0);
    sl__vm_free(vm);
}

static void test_pattern_budget(void)
{
    sl_vm_t *vm = new_vm(0); /* unbudgeted, each of these runs for hours: the timeout fails it */
    CHECK_STR(eval(vm, "string.find(string.rep('a', 3000), '.-.-.-.-b')"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "(string.rep('a', 3000)):match('.-.-.-.-b')"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "string.gsub(string.rep('a', 3000), '.-.-.-.-b', '')"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "(function() for x in string.rep('(', 100000):gmatch('%b()') do end end)()"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    /* pcall catches the error, but the next instruction fails again. */
    CHECK_STR(eval(vm, "(function() pcall(string.find, string.rep('a', 3000), '.-.-.-.-b') "
                       "while true do end end)()"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "(function() pcall(function() while true do end end) "
                       "while true do end end)()"),
              "ERR -7: instruction budget exceeded");
    CHECK_STR(eval(vm, "(function() while true do pcall(function() while true do end end) "
                       "end end)()"),
              "ERR -7: instruction budget exceeded");
    /* Budgets are per evaluation: a long but finite match still works. */
    CHECK_STR(eval(vm, "#string.rep('ab', 100000):gsub('b', 'c')"), "200000");
    CHECK_STR(eval(vm, "1 + 1"), "2");
    sl__vm_free(vm);
}

/* Plain find is charged by the bytes it scans: a loop of finds over a big string stops at
 * the budget (uncharged, this scans 100 GB). Lua's nesting limit still applies under a
 * budget, and a gsub calling back into Lua is charged once, not twice. */
static void test_pattern_budget_more(void)
{
    sl_vm_t *vm = new_vm_limits(0, 1000000); /* a tenth of the default: quicker to trip */
    CHECK_STR(eval(vm, "(function() local s = string.rep('a', 1 << 20) "
                       "for i = 1, 100000 do s:find('b', 1, true) end end)()"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "(function() local s = string.rep('a', 1 << 20) "
                       "for i = 1, 100000 do s:find('ab') end end)()"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "(function() local s = string.rep('a', 1 << 20) "
                       "for i = 1, 100000 do s:find('[b]') end end)()"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "(function() for x in string.rep('a', 5000):gmatch('(a*)*b') do end "
                       "end)()"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "string.rep('a', 300):find(string.rep('a*', 150) .. 'b')"),
              "ERR -7: instruction budget exceeded (pattern matching)");
    CHECK_STR(eval(vm, "#string.rep('a', 300):match(string.rep('a?', 199))"), "199");
    CHECK_CONTAINS(eval(vm, "string.rep('a', 300):match(string.rep('a?', 200))"),
                   "pattern too complex");
    CHECK_STR(eval(vm, "(function() local n = 0 for i = 1, 20 do n = n + "
                       "select(2, string.rep('ab', 1000):gsub('a', function() return 'x' end)) "
                       "end return n end)()"),
              "20000");
    CHECK_STR(eval(vm, "({string.rep('ab', 1 << 20):find('b', -1, true)})[1]"), "2097152");
    sl__vm_free(vm);
}

static void test_conversion_limits(void)
{
    sl_vm_t *vm = new_vm(0); /* 2^40 values: converted one by one, this never ends */
    CHECK_CONTAINS(eval(vm, "(function() local t = {} for i = 1, 40 do t = {t, t} end "
                            "return t end)()"),
                   "ERR -7: value too large to convert (more than 268435456 bytes)");
    CHECK_CONTAINS(eval(vm, "json_encode((function() local t = {} for i = 1, 40 do t = {t, t} end "
                            "return t end)())"),
                   "json_encode: value too large to convert (more than 268435456 bytes)");
    CHECK_CONTAINS(eval(vm, "(function() local s, t = string.rep('x', 1 << 20), {} "
                            "for i = 1, 2000 do t[i] = s end return t end)()"),
                   "ERR -7: value too large to convert (more than 268435456 bytes)");
    CHECK_STR(eval(vm, "{range(1, 10000000), 1}"),
              "ERR -7: value too large to convert (more than 10000001 nodes)");
    CHECK_STR(eval(vm, "(function() local t = {1, 2} return {t, t, {t}} end)()"),
              "[[1,2],[1,2],[[1,2]]]");
    sl__vm_free(vm);
    vm = new_vm((size_t)16 << 20); /* the limit is the VM's memory cap */
    CHECK_CONTAINS(eval(vm, "(function() local t = {} for i = 1, 40 do t = {t, t} end "
                            "return t end)()"),
                   "ERR -7: value too large to convert (more than 16777216 bytes)");
    CHECK_STR(eval(vm, "#json_encode(range(1, 100000))"), "588896");
    sl__vm_free(vm);
}

static void test_no_finalizers(void)
{
    sl_vm_t *vm = new_vm(0);
    CHECK_STR(eval(vm, "setmetatable({}, {__gc = function() while true do end end}) and 1"),
              "ERR -12: __gc metamethods are not allowed");
    CHECK_STR(eval(vm, "setmetatable({}, {__gc = false}) and 1"),
              "ERR -12: __gc metamethods are not allowed");
    CHECK_STR(eval(vm, "setmetatable({}, {__index = {a = 1}}).a"), "1");
    CHECK_STR(eval(vm, "getmetatable(setmetatable({}, nil))"), "null");
    CHECK_CONTAINS(eval(vm, "setmetatable({}, 1)"), "bad argument #2 to 'setmetatable'");
    CHECK_STR(eval(vm, "setmetatable(setmetatable({}, {__metatable = 1}), {})"),
              "ERR -12: cannot change a protected metatable");
    /* The lists' shared marker is protected: a __gc or __index on it would reach every list. */
    CHECK_STR(eval(vm, "getmetatable(range(1, 2))"), "false");
    CHECK_STR(eval(vm, "setmetatable(json_decode('[1]'), {})"),
              "ERR -12: cannot change a protected metatable");
    sl__vm_free(vm);
}

static void test_range_limits(void)
{
    sl_vm_t *vm = new_vm(0);
    CHECK_STR(eval(vm, "range(0, 9223372036854775807, 4611686018427387904)"),
              "[0,4611686018427387904]");
    CHECK_STR(eval(vm, "range(math.maxinteger - 2, math.maxinteger)"),
              "[9223372036854775805,9223372036854775806,9223372036854775807]");
    CHECK_STR(eval(vm, "range(math.mininteger, math.mininteger + 1)"),
              "[-9223372036854775808,-9223372036854775807]");
    CHECK_STR(eval(vm, "range(math.maxinteger, math.mininteger, -4611686018427387904)"),
              "[9223372036854775807,4611686018427387903,-1,-4611686018427387905]");
    CHECK_STR(eval(vm, "range(math.mininteger, math.maxinteger, math.maxinteger)"),
              "[-9223372036854775808,-1,9223372036854775806]");
    CHECK_STR(eval(vm, "range(5, 1, -2)"), "[5,3,1]");
    CHECK_STR(eval(vm, "range(1, 5, -1)"), "[]");
    CHECK_STR(eval(vm, "range(1, 1)"), "[1]");
    CHECK_STR(eval(vm, "range(1, 3, math.mininteger)"), "[]");
    CHECK_STR(eval(vm, "range(-9223372036854775807, 9223372036854775807)"),
              "ERR -12: range(-9223372036854775807, 9223372036854775807) has 18446744073709551615 "
              "elements, more than the limit of 10000000");
    CHECK_STR(eval(vm, "range(math.mininteger, math.maxinteger)"),
              "ERR -12: range(-9223372036854775808, 9223372036854775807) has 18446744073709551616 "
              "elements, more than the limit of 10000000");
    CHECK_STR(eval(vm, "range(math.maxinteger, math.mininteger, -1)"),
              "ERR -12: range(9223372036854775807, -9223372036854775808) has 18446744073709551616 "
              "elements, more than the limit of 10000000");
    sl__vm_free(vm);
}

static void test_read_only(void)
{
    sl_vm_t *vm = new_vm(0);
    /* Writes fail, naming what they would have changed. */
    CHECK_STR(eval(vm, "(function() string.upper = nil end)()"),
              "ERR -12: attempt to modify read-only table 'string.upper'");
    CHECK_STR(eval(vm, "(function() math.pi = 3 end)()"),
              "ERR -12: attempt to modify read-only table 'math.pi'");
    CHECK_STR(eval(vm, "(function() vars.n = 99999 end)()"),
              "ERR -12: attempt to modify read-only table 'vars.n'");
    CHECK_STR(eval(vm, "(function() vars.m.k.z = 2 end)()"),
              "ERR -12: attempt to modify read-only table 'vars.m.k.z'");
    CHECK_STR(eval(vm, "(function() table.sort(vars.list) end)()"),
              "ERR -12: attempt to modify read-only table 'vars.list[1]'");
    CHECK_STR(eval(vm, "(function() table.insert(steps.a.y, 1) end)()"),
              "ERR -12: attempt to modify read-only table 'steps.a.y[4]'");
    CHECK_STR(eval(vm, "(function() steps.a.x = 5 end)()"),
              "ERR -12: attempt to modify read-only table 'steps.a.x'");
    CHECK_STR(eval(vm, "(function() run.id = 'x' end)()"),
              "ERR -12: attempt to modify read-only table 'run.id'");
    CHECK_STR(eval(vm, "(function() values(vars.m)[2].z = 1 end)()"),
              "ERR -12: attempt to modify read-only table 'vars.m.k.z'");
    /* A name is found when the error asks: through lists, and for a proxy read before. */
    CHECK_STR(eval(vm, "(function() local j = vars.m.j; j[2] = 1 end)()"),
              "ERR -12: attempt to modify read-only table 'vars.m.j[2]'");
    CHECK_STR(eval(vm, "(function() vars.m.k[1] = 1 end)()"),
              "ERR -12: attempt to modify read-only table 'vars.m.k[1]'");
    CHECK_STR(eval(vm, "(function() string = 1 end)()"),
              "ERR -12: cannot assign 'string' in an expression");
    CHECK_STR(eval(vm, "(function() vars = {} end)()"),
              "ERR -12: cannot assign 'vars' in an expression");
    CHECK_STR(eval(vm, "setmetatable(vars, {})"), "ERR -12: cannot change a protected metatable");
    CHECK_STR(eval(vm, "{getmetatable(vars), getmetatable(string), getmetatable(vars.m)}"),
              "[false,false,false]");
    /* A step's output is a view of the engine's value: reads reach into it, by key (a scan,
     * or an index past 8 keys) or position, and hand out views of what they reach. */
    CHECK_STR(eval(vm, "{steps.big.k1, steps.big.k10, steps.big.k7, tostring(steps.big.zz), "
                       "#steps.big.rows, steps.big.rows[3].n, tostring(steps.big.rows[4]), "
                       "steps.big.none == null, steps.big == steps.big, "
                       "steps.big.rows[2] == steps.big.rows[2], type(steps.big.rows), "
                       "steps.big.rows[2.0].n, tostring(steps.big.rows['2'])}"),
              "[1,10,7,\"nil\",3,3,\"nil\",true,true,true,\"table\",2,\"nil\"]");
    CHECK_STR(eval(vm, "(function() local ks, n = {}, 0 for k, v in pairs(steps.big) do "
                       "n = n + 1; ks[#ks + 1] = k end return n .. ':' .. ks[1] .. ',' .. ks[11] "
                       "end)()"),
              "\"12:k1,rows\"");
    CHECK_STR(eval(vm, "(function() local s = 0 for i, r in ipairs(steps.big.rows) do "
                       "s = s + i * r.n end local k = next(steps.big.rows, 3) "
                       "local k2, v2 = next(steps.big.rows, 2) "
                       "return {s, tostring(k), k2, v2.n} end)()"),
              "[14,\"nil\",3,3]");
    CHECK_STR(eval(vm, "json_encode(steps.big.rows) .. len(steps.big) .. #keys(steps.big) .. "
                       "values(steps.big.rows)[2].n"),
              "\"[{\\\"n\\\":1},{\\\"n\\\":2},{\\\"n\\\":3}]12122\"");
    CHECK_STR(eval(vm, "(function() steps.big.rows[2].n = 0 end)()"),
              "ERR -12: attempt to modify read-only table 'steps.big.rows[2].n'");
    CHECK_STR(eval(vm, "(function() steps.big.k9 = 0 end)()"),
              "ERR -12: attempt to modify read-only table 'steps.big.k9'");
    CHECK_STR(eval(vm, "(function() values(steps.big.rows)[1].n = 0 end)()"),
              "ERR -12: attempt to modify read-only table '?.n'");
    CHECK_STR(eval(vm, "next(steps.big, 'nope')"), "ERR -12: invalid key to 'next'");
    /* next() walks what a view shows (its tables as views), never what it is made of. */
    CHECK_STR(eval(vm, "(function() local n = 0; for k, v in next, vars.m do n = n + 1; "
                       "if type(k) ~= 'string' then return 'bad key' end end return n end)()"),
              "2");
    CHECK_STR(eval(vm, "(function() local _, j = next(vars.m, 'k'); "
                       "if j == nil then _, j = next(vars.m) end; "
                       "return pcall(function() j[1] = 0 end) end)()"),
              "false");
    CHECK_STR(eval(vm, "tostring(next({})) .. rawlen(vars.list) .. #vars.list .. "
                       "tostring(rawget(vars, 'n')) .. tostring(next({5}))"),
              "\"nil03nil1\"");
    /* ... and nothing changed. */
    CHECK_STR(eval(vm, "string.upper('x') .. vars.n .. ('y'):upper() .. vars.m.k.z .. run.id"),
              "\"X3Y1run-1\"");
    CHECK_STR(eval(vm, "vars.list"), "[3,1,2]");
    /* Reading works as on plain tables. */
    CHECK_STR(eval(vm, "{#vars.list, vars.list[2], #steps.a.y, vars.m.j[1], vars.m == vars.m, "
                       "vars.m.k == vars.m.k, rawequal(vars.m.k, vars.m.k)}"),
              "[3,1,3,true,true,true,true]");
    CHECK_STR(eval(vm, "(function() local s = 0 for i, v in ipairs(vars.list) do s = s + i * v end "
                       "return s end)()"),
              "11");
    CHECK_STR(eval(vm, "(function() local t = {} for k, v in pairs(vars.m) do t[#t + 1] = k end "
                       "table.sort(t) return t end)()"),
              "[\"j\",\"k\"]");
    CHECK_STR(eval(vm, "(function() local n = 0 for k in pairs(string) do n = n + 1 end "
                       "return n > 10 end)()"),
              "true");
    CHECK_STR(eval(vm, "{keys(vars.m), values(vars.m), len(vars.m), len(vars.list)}"),
              "[[\"j\",\"k\"],[[true],{\"z\":1}],2,3]");
    CHECK_STR(eval(vm, "{json_encode(vars.m), table.concat(vars.list, ','), "
                       "select('#', table.unpack(vars.list))}"),
              "[\"{\\\"j\\\":[true],\\\"k\\\":{\\\"z\\\":1}}\",\"3,1,2\",3]");
    CHECK_STR(eval(vm, "{a = vars.m, b = steps.a.e, c = steps.a.y}"),
              "{\"a\":{\"j\":[true],\"k\":{\"z\":1}},\"b\":{},\"c\":[1,2,null]}");
    CHECK_STR(eval(vm, "string.gsub('n', '%a', vars)"), "\"3\"");
    /* Copies are the script's own. */
    CHECK_STR(eval(vm, "(function() local t = {} for i, v in ipairs(vars.list) do t[i] = v end "
                       "table.sort(t) t[4] = 4 return t end)()"),
              "[1,2,3,4]");
    CHECK_STR(eval(vm, "(function() local t = json_decode(json_encode(vars.m)) t.k.z = 7 "
                       "return t end)()"),
              "{\"j\":[true],\"k\":{\"z\":7}}");
    CHECK_STR(eval(vm, "vars.m.k.z"), "1");
    sl__vm_free(vm);
}

static void test_item_is_per_task(void)
{
    sl_vm_t *vm = new_vm(0);
    sl_value_t *list = json("[1,[2,3]]");
    CHECK_STR(eval_item(vm, "(function() item[2][1] = 9 return item end)()", list, 1), "[1,[9,3]]");
    CHECK_STR(eval_item(vm, "item", list, 1), "[1,[2,3]]");
    sl_value_free(list);
    sl__vm_free(vm);
}

static void test_cache_is_checked(void)
{
    sl_vm_t *vm = new_vm(0);
    static const char key = 0;
    sl_value_t *v = NULL;
    char err[128];
    CHECK_INT(sl__vm_eval(vm, &key, "1", 1, "=expression", NULL, 0, &v, err, sizeof(err)), 0);
    CHECK_INT(sl_value_int_of(v), 1);
    sl_value_free(v);
    /* Same key, other source (a freed template's address reused): recompiled. */
    CHECK_INT(sl__vm_eval(vm, &key, "2", 1, "=expression", NULL, 0, &v, err, sizeof(err)), 0);
    CHECK_INT(sl_value_int_of(v), 2);
    sl_value_free(v);
    sl__vm_free(vm);
}

/* Nanoseconds per evaluation of `src` with an integer item. */
static double eval_speed(sl_vm_t *vm, const char *src, int64_t offset)
{
    const int n = 1000000;
    sl_value_t item;
    item.type = SL_TYPE_INT;
    uint64_t start = sl__clock_now_ns();
    for (int i = 0; i < n; i++) {
        item.as.i = i;
        sl_value_t *v = NULL;
        char err[128];
        if (sl__vm_eval(vm, src, src, strlen(src), "=expression", &item, i + 1, &v, err,
                        sizeof(err)) != 0 ||
            v->as.i != i + offset) {
            CHECK(0);
            sl_value_free(v);
            break;
        }
        sl_value_free(v);
    }
    double per_ns = (double)(sl__clock_now_ns() - start) / n;
    printf("  sl__vm_eval('%s'): %.0f ns per evaluation\n", src, per_ns);
    return per_ns;
}

/* Prints the hot path's cost (no wall-clock assertion: bench/ measures speed). */
static void test_speed(void)
{
    sl_vm_t *vm = new_vm(0);
    static const char whole[] = "item", read[] = "vars.n + item";
    eval_speed(vm, whole, 0);
    eval_speed(vm, read, 3);
    sl__vm_free(vm);
}

TEST_MAIN(60, T(test_values), T(test_bad_results), T(test_item_index), T(test_scope),
          T(test_helpers), T(test_budgets), T(test_push_pull), T(test_patterns_match_lua),
          T(test_patterns_match_lua_more), T(test_pattern_budget), T(test_pattern_budget_more), T(test_conversion_limits), T(test_no_finalizers),
          T(test_range_limits), T(test_read_only), T(test_item_is_per_task),
          T(test_cache_is_checked), T(test_speed))
