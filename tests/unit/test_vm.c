/* Unit tests for lua/vm: sandbox, conversions, helpers, budgets, evaluation speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/vm.h"
#include "test.h"

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
static sl_value_t *step_a;

static int step_output(void *ud, const char *step, const sl_value_t **out)
{
    (void)ud;
    if (strcmp(step, "a") != 0)
        return 0;
    step_calls++;
    *out = step_a;
    return 1;
}

static sl_vm_t *new_vm(size_t memory_bytes)
{
    static sl_value_t *vars;
    if (vars == NULL)
        vars = json("{\"base\": \"http://x\", \"n\": 3}");
    if (step_a == NULL)
        step_a = json("{\"x\": 1, \"y\": [1, 2, null], \"s\": \"hi\", \"e\": {}}");
    sl_vm_scope_t scope = {vars, "wf", "run-1", 1700000000, step_output, NULL};
    sl_vm_limits_t limits = {memory_bytes, 0};
    sl_vm_t *vm = NULL;
    CHECK_INT(sl__vm_new(&scope, &limits, &vm), 0);
    return vm;
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
    sl__vm_free(vm);
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

static void test_speed(void)
{
    sl_vm_t *vm = new_vm(0);
    const int n = 1000000;
    static const char src[] = "item";
    sl_value_t item;
    item.type = SL_TYPE_INT;
    uint64_t start = sl__now_ns();
    for (int i = 0; i < n; i++) {
        item.as.i = i;
        sl_value_t *v = NULL;
        char err[128];
        if (sl__vm_eval(vm, src, src, 4, "=expression", &item, i + 1, &v, err, sizeof(err)) != 0 ||
            v->as.i != i) {
            CHECK(0);
            break;
        }
        sl_value_free(v);
    }
    double per_ns = (double)(sl__now_ns() - start) / n;
    printf("  sl__vm_eval('item'): %.0f ns per evaluation\n", per_ns);
    CHECK(per_ns < 5000);
    sl__vm_free(vm);
}

TEST_MAIN(60, T(test_values), T(test_bad_results), T(test_item_index), T(test_scope),
          T(test_helpers), T(test_budgets), T(test_push_pull), T(test_cache_is_checked),
          T(test_speed))
