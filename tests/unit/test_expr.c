/* Unit tests for expr: template building, references, syntax checks, evaluation. */
#include <stdio.h>
#include <string.h>

#include "expr/expr.h"
#include "vm/vm.h"
#include "test.h"

/* ---- hand-built YAML nodes ---------------------------------------------- */

static sl_node_t *scalar_at(const char *text, bool plain, uint32_t line, uint32_t col)
{
    sl_node_t *n = calloc(1, sizeof(*n));
    n->kind = SL_NODE_SCALAR;
    n->mark = (sl_mark_t){line, col};
    n->plain = plain;
    n->str = strdup(text);
    n->len = strlen(text);
    return n;
}

static sl_node_t *scalar(const char *text)
{
    return scalar_at(text, true, 3, 10);
}

static sl_node_t *collection(sl_node_kind_t kind, size_t count, sl_node_t **items)
{
    sl_node_t *n = calloc(1, sizeof(*n));
    n->kind = kind;
    n->mark = (sl_mark_t){1, 1};
    n->count = count;
    size_t slots = kind == SL_NODE_MAP ? 2 * count : count;
    n->items = calloc(slots ? slots : 1, sizeof(*n->items));
    memcpy(n->items, items, slots * sizeof(*items));
    return n;
}

static void node_free(sl_node_t *n)
{
    if (n == NULL)
        return;
    size_t slots = n->kind == SL_NODE_MAP ? 2 * n->count : n->count;
    for (size_t i = 0; n->items && i < slots; i++)
        node_free(n->items[i]);
    free(n->items);
    free(n->str);
    free(n);
}

/* Builds a template from one plain scalar; returns NULL on a problem (kept in diag). */
static sl_tmpl_t *tmpl_of(const char *text, sl_diag_t *diag)
{
    sl_node_t *n = scalar(text);
    sl_tmpl_t *t = NULL;
    int rc = sl__tmpl_new(n, "wf.yaml", &t, diag);
    node_free(n);
    return rc == 0 ? t : NULL;
}

/* The single problem of a failing scalar, as "LINE:COL: MESSAGE". */
static const char *problem_of(const char *text, bool plain)
{
    static char out[512];
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_node_t *n = scalar_at(text, plain, 3, 10);
    sl_tmpl_t *t = NULL;
    int rc = sl__tmpl_new(n, "wf.yaml", &t, &diag);
    node_free(n);
    if (rc != SL_EINVAL || diag.count != 1 || t != NULL) {
        snprintf(out, sizeof(out), "rc=%d count=%zu", rc, diag.count);
    } else {
        snprintf(out, sizeof(out), "%u:%u: %s", diag.items[0].mark.line,
                 diag.items[0].mark.col, diag.items[0].message);
    }
    sl__diag_close(&diag);
    return out;
}

/* ---- building ----------------------------------------------------------- */

static void test_literal_scalars(void)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = tmpl_of("42", &diag);
    CHECK(t != NULL);
    CHECK_INT(sl__tmpl_flags(t), 0);
    CHECK(sl__tmpl_literal(t) != NULL);
    CHECK_INT(sl_value_type(sl__tmpl_literal(t)), SL_TYPE_INT);
    CHECK_INT(sl__tmpl_mark(t).line, 3);
    sl__tmpl_free(t);

    sl_node_t *n = scalar_at("42", false, 1, 1); /* quoted: a string */
    CHECK_INT(sl__tmpl_new(n, "wf.yaml", &t, &diag), 0);
    CHECK_INT(sl_value_type(sl__tmpl_literal(t)), SL_TYPE_STRING);
    sl__tmpl_free(t);
    node_free(n);

    t = tmpl_of("just text {{ not an expression }}", &diag);
    CHECK_STR(sl_value_str(sl__tmpl_literal(t), NULL), "just text {{ not an expression }}");
    sl__tmpl_free(t);
    CHECK_INT(diag.count, 0);
    sl__diag_close(&diag);
}

static void test_flags(void)
{
    static const struct {
        const char *text;
        unsigned flags;
    } cases[] = {
        {"${{ item }}", SL_TMPL_HAS_EXPR | SL_TMPL_USES_ITEM},
        {"x-${{ index }}.png", SL_TMPL_HAS_EXPR | SL_TMPL_USES_ITEM},
        {"${{ 'a' .. item }}", SL_TMPL_HAS_EXPR | SL_TMPL_USES_ITEM},
        {"${{ vars.item }}", SL_TMPL_HAS_EXPR},
        {"${{ 'item' }}", SL_TMPL_HAS_EXPR},
        {"${{ [[index]] }}", SL_TMPL_HAS_EXPR},
        {"${{ items }}", SL_TMPL_HAS_EXPR},
        {"${{ vars.a --[[ item ]] }}", SL_TMPL_HAS_EXPR},
        {"${{ x:index() }}", SL_TMPL_HAS_EXPR},
        {"${{ {item} }}", SL_TMPL_HAS_EXPR | SL_TMPL_USES_ITEM},
    };
    for (size_t i = 0; i < SL_COUNTOF(cases); i++) {
        sl_diag_t diag;
        sl__diag_init(&diag);
        sl_tmpl_t *t = tmpl_of(cases[i].text, &diag);
        CHECK(t != NULL);
        if (sl__tmpl_flags(t) != cases[i].flags)
            fprintf(stderr, "  case %s\n", cases[i].text);
        CHECK_INT(sl__tmpl_flags(t), cases[i].flags);
        CHECK(sl__tmpl_literal(t) == NULL);
        sl__tmpl_free(t);
        sl__diag_close(&diag);
    }
}

typedef struct refs_seen {
    char text[256];
    sl_mark_t last;
} refs_seen_t;

static void collect_ref(void *ud, const char *step, sl_mark_t mark)
{
    refs_seen_t *seen = ud;
    size_t n = strlen(seen->text);
    snprintf(seen->text + n, sizeof(seen->text) - n, "%s%s", n ? "," : "", step);
    seen->last = mark;
}

static const char *refs_of(const char *text)
{
    static refs_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = tmpl_of(text, &diag);
    if (t == NULL)
        return "(error)";
    sl__tmpl_each_ref(t, collect_ref, &seen);
    sl__tmpl_free(t);
    sl__diag_close(&diag);
    return seen.text;
}

static void test_refs(void)
{
    CHECK_STR(refs_of("${{ steps.a.body }}"), "a");
    CHECK_STR(refs_of("${{ steps [ \"b-1\" ] .x }} and ${{ steps['c'] }}"), "b-1,c");
    CHECK_STR(refs_of("${{ 'steps.no' .. steps.yes }}"), "yes");
    CHECK_STR(refs_of("${{ x.steps.no }}"), "");
    CHECK_STR(refs_of("${{ steps.a -- steps.comment\n }}"), "a");
    CHECK_STR(refs_of("${{ #steps.flags .. ' flags' }}"), "flags");
    CHECK_STR(refs_of("${{ steps[name] }}"), "");
    CHECK_STR(refs_of("plain"), "");

    refs_seen_t seen;
    memset(&seen, 0, sizeof(seen));
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = tmpl_of("abc ${{ steps.z }}", &diag);
    sl__tmpl_each_ref(t, collect_ref, &seen);
    CHECK_INT(seen.last.line, 3);
    CHECK_INT(seen.last.col, 14);
    sl__tmpl_free(t);
    sl__diag_close(&diag);
}

static void test_stream_ref(void)
{
    static const struct {
        const char *text, *ref;
    } cases[] = {
        {"${{ steps.a }}", "a"},     {"${{steps[\"b\"]}}", "b"}, {"${{ steps['c'] }}", "c"},
        {"${{ steps.a.x }}", NULL},  {"x${{ steps.a }}", NULL},  {"${{ steps.a }} ", NULL},
        {"${{ keys(steps.a) }}", NULL},
    };
    for (size_t i = 0; i < SL_COUNTOF(cases); i++) {
        sl_diag_t diag;
        sl__diag_init(&diag);
        sl_tmpl_t *t = tmpl_of(cases[i].text, &diag);
        CHECK(t != NULL);
        if (cases[i].ref)
            CHECK_STR(sl__tmpl_stream_ref(t), cases[i].ref);
        else
            CHECK(sl__tmpl_stream_ref(t) == NULL);
        sl__tmpl_free(t);
        sl__diag_close(&diag);
    }
}

static void test_problems(void)
{
    CHECK_STR(problem_of("abc ${{ vars.x", true), "3:14: unterminated expression: missing '}}'");
    CHECK_STR(problem_of("${{ }}", true), "3:10: empty expression");
    CHECK_STR(problem_of("ab ${{ 1 x }}", false),
              "3:14: expression syntax error: ')' expected near 'x'");
    CHECK_STR(problem_of("${{ vars. }}", true),
              "3:10: expression syntax error: <name> expected near ')'");
    CHECK_STR(problem_of("${{ 'abc }}", true),
              "3:10: expression syntax error: unfinished string near ''abc'");
    CHECK_STR(problem_of("é ${{ x x }}", true),
              "3:12: expression syntax error: ')' expected near 'x'");

    /* Every problem of a tree in one pass. */
    sl_node_t *items[] = {scalar("${{ }}"), scalar("ok ${{ 1 }}"), scalar("${{ (( }}")};
    sl_node_t *seq = collection(SL_NODE_SEQ, 3, items);
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = (sl_tmpl_t *)1;
    CHECK_INT(sl__tmpl_new(seq, "wf.yaml", &t, &diag), SL_EINVAL);
    CHECK(t == NULL);
    CHECK_INT(diag.count, 2);
    sl__diag_close(&diag);
    node_free(seq);
}

static void test_expr_check(void)
{
    char err[256] = "";
    CHECK_INT(sl__expr_check("1 + 2", 5, err, sizeof(err)), 0);
    CHECK_INT(sl__expr_check("{a={b=1}}", 9, err, sizeof(err)), 0);
    CHECK_INT(sl__expr_check("x -- comment", 12, err, sizeof(err)), 0);
    CHECK_INT(sl__expr_check("+ x", 3, err, sizeof(err)), SL_EPARSE);
    CHECK_STR(err, "expression syntax error: unexpected symbol near '+'");
    CHECK_INT(sl__expr_check("return 1", 8, err, sizeof(err)), SL_EPARSE);
    CHECK_STR(err, "expression syntax error: unexpected symbol near 'return'");
}

static void test_braces_and_strings(void)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = tmpl_of("${{ {a={b=1}} }}", &diag);
    CHECK(t != NULL);
    sl__tmpl_free(t);
    t = tmpl_of("${{ '}}' }} and ${{ \"}}\" .. [[}}]] }}", &diag);
    CHECK(t != NULL);
    sl__tmpl_free(t);
    CHECK_INT(diag.count, 0);
    sl__diag_close(&diag);
}

static void test_collections(void)
{
    sl_node_t *inner[] = {scalar("1"), scalar("two")};
    sl_node_t *kv[] = {scalar("a"), scalar("x"), scalar("b"), collection(SL_NODE_SEQ, 2, inner)};
    sl_node_t *map = collection(SL_NODE_MAP, 2, kv);
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = NULL;
    CHECK_INT(sl__tmpl_new(map, "wf.yaml", &t, &diag), 0);
    const sl_value_t *lit = sl__tmpl_literal(t);
    CHECK(lit != NULL);
    char *json = NULL;
    size_t len;
    CHECK_INT(sl_value_to_json(lit, &json, &len), 0);
    CHECK_STR(json, "{\"a\":\"x\",\"b\":[1,\"two\"]}");
    sl__free(json);
    sl__tmpl_free(t);
    node_free(map);

    sl_node_t *kv2[] = {scalar("url"), scalar("${{ steps.s.u }}/${{ item }}"), scalar("n"),
                        scalar("3")};
    map = collection(SL_NODE_MAP, 2, kv2);
    CHECK_INT(sl__tmpl_new(map, "wf.yaml", &t, &diag), 0);
    CHECK(sl__tmpl_literal(t) == NULL);
    CHECK_INT(sl__tmpl_flags(t), SL_TMPL_HAS_EXPR | SL_TMPL_USES_ITEM);
    CHECK_STR(refs_of("${{ steps.s.u }}"), "s");
    sl__tmpl_free(t);
    node_free(map);
    sl__diag_close(&diag);
}

/* ---- evaluation --------------------------------------------------------- */

static sl_value_t *step_s;

static int step_output(void *ud, const char *step, const sl_value_t **out)
{
    (void)ud;
    if (strcmp(step, "s") != 0)
        return 0;
    *out = step_s;
    return 1;
}

static sl_vm_t *new_vm(void)
{
    char err[64];
    if (step_s == NULL)
        sl_value_from_json("{\"u\": \"http://h\", \"n\": 2}", 25, &step_s, err, sizeof(err));
    sl_vm_scope_t scope = {NULL, "wf", "r1", 0, step_output, NULL, NULL};
    sl_vm_t *vm = NULL;
    CHECK_INT(sl__vm_new(&scope, NULL, &vm), 0);
    return vm;
}

/* Builds and evaluates one scalar; returns JSON of the result or "ERR: message". */
static const char *eval_text(sl_vm_t *vm, const char *text, const sl_value_t *item, int64_t index)
{
    static char out[1024];
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = tmpl_of(text, &diag);
    sl__diag_close(&diag);
    if (t == NULL)
        return "(build failed)";
    sl_value_t *v = NULL;
    char *err = NULL;
    int rc = sl__expr_eval(vm, t, item, index, &v, &err);
    if (rc < 0) {
        snprintf(out, sizeof(out), "ERR: %s", err ? err : "(no message)");
    } else {
        char *json = NULL;
        size_t len;
        sl_value_to_json(v, &json, &len);
        snprintf(out, sizeof(out), "%s", json);
        sl__free(json);
    }
    sl__free(err);
    sl_value_free(v);
    sl__tmpl_free(t);
    return out;
}

static void test_eval(void)
{
    sl_vm_t *vm = new_vm();
    sl_value_t *item = sl_value_cstring("de");
    CHECK_STR(eval_text(vm, "${{ item }}", item, 1), "\"de\"");
    CHECK_STR(eval_text(vm, "${{ {1, 2} }}", NULL, 0), "[1,2]");
    CHECK_STR(eval_text(vm, "${{ steps.s.n }}", NULL, 0), "2");
    CHECK_STR(eval_text(vm, "${{ steps.s.u }}/${{ index }}/${{ item }}.png", item, 7),
              "\"http://h/7/de.png\"");
    CHECK_STR(eval_text(vm, "a${{ 1.5 }}b${{ 10 / 2 }}c${{ true }}d${{ nil }}e${{ {1, {x = 2}} }}",
                        NULL, 0),
              "\"a1.5b5c" "true" "de[1,{\\\"x\\\":2}]\"");
    CHECK_STR(eval_text(vm, "${{ 1/3 }} ", NULL, 0), "\"0.33333333333333 \"");
    CHECK_STR(eval_text(vm, "${{ steps.s.x + 1 }}", NULL, 0),
              "ERR: expression 'steps.s.x + 1' failed: attempt to perform arithmetic on a nil "
              "value (field 'x')");
    CHECK_STR(eval_text(vm, "x ${{ type }}", NULL, 0),
              "ERR: expression 'type' failed: cannot convert a function to a value");
    CHECK_STR(eval_text(vm, "plain", NULL, 0), "\"plain\"");
    sl_value_free(item);

    sl_node_t *kv[] = {scalar("url"), scalar("${{ steps.s.u }}/${{ item }}"), scalar("n"),
                       scalar("3"), scalar("list"), collection(SL_NODE_SEQ, 2,
                                                                (sl_node_t *[]){scalar("${{ index }}"),
                                                                                scalar("x")})};
    sl_node_t *map = collection(SL_NODE_MAP, 3, kv);
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = NULL;
    CHECK_INT(sl__tmpl_new(map, "wf.yaml", &t, &diag), 0);
    sl_value_t *v = NULL, *it = sl_value_int(4);
    char *err = NULL;
    CHECK_INT(sl__expr_eval(vm, t, it, 2, &v, &err), 0);
    char *json = NULL;
    size_t len;
    sl_value_to_json(v, &json, &len);
    CHECK_STR(json, "{\"url\":\"http://h/4\",\"n\":3,\"list\":[2,\"x\"]}");
    sl__free(json);
    sl_value_free(v);
    sl_value_free(it);
    sl__tmpl_free(t);
    node_free(map);
    sl__diag_close(&diag);
    sl__vm_free(vm);
}

static void test_eval_speed(void)
{
    sl_vm_t *vm = new_vm();
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_tmpl_t *t = tmpl_of("${{ item }}", &diag);
    sl_value_t item = {.type = SL_TYPE_INT};
    const int n = 1000000;
    uint64_t start = sl__clock_now_ns();
    for (int i = 0; i < n; i++) {
        item.as.i = i;
        sl_value_t *v = NULL;
        char *err = NULL;
        if (sl__expr_eval(vm, t, &item, i + 1, &v, &err) != 0 || v->as.i != i) {
            CHECK(0);
            break;
        }
        sl_value_free(v);
    }
    double per_ns = (double)(sl__clock_now_ns() - start) / n;
    printf("  sl__expr_eval('${{ item }}'): %.0f ns per evaluation\n", per_ns);
    sl__tmpl_free(t);
    sl__diag_close(&diag);
    sl__vm_free(vm);
}

/* Every allocation failing in turn: a clean SL_ENOMEM, no crash, no leak (under ASan). */
static void test_alloc_failures(void)
{
    sl_node_t *inner[] = {scalar("${{ index }}"), scalar("x")};
    sl_node_t *kv[] = {scalar("url"), scalar("${{ steps.s.u }}/${{ item }}"), scalar("n"),
                       scalar("3"), scalar("list"), collection(SL_NODE_SEQ, 2, inner)};
    sl_node_t *map = collection(SL_NODE_MAP, 3, kv);
    sl_vm_t *vm = new_vm();
    sl_value_t *item = sl_value_cstring("de");
    int ok = 0;
    for (uint64_t n = 1; n < 400; n++) {
        sl_diag_t diag;
        sl__diag_init(&diag);
        sl_tmpl_t *t = NULL;
        sl__alloc_fail_at(n);
        int rc = sl__tmpl_new(map, "wf.yaml", &t, &diag);
        sl_value_t *v = NULL;
        char *err = NULL;
        if (rc == 0)
            rc = sl__expr_eval(vm, t, item, 1, &v, &err);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM);
        ok += rc == 0;
        sl__free(err);
        sl_value_free(v);
        sl__tmpl_free(t);
        sl__diag_close(&diag);
    }
    CHECK(ok > 0);
    sl_value_free(item);
    sl__vm_free(vm);
    node_free(map);
}

TEST_MAIN(30, T(test_literal_scalars), T(test_flags), T(test_refs), T(test_stream_ref),
          T(test_problems), T(test_expr_check), T(test_braces_and_strings),
          T(test_collections), T(test_eval), T(test_eval_speed), T(test_alloc_failures))
