/* Unit tests of yaml/: marks, typing, aliases and their limits, errors. */
#include <math.h>
#include <time.h>

#include "yaml/yaml.h"
#include "test.h"


static sl_node_t *parse_ok(const char *text)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_node_t *root = NULL;
    int rc = sl__yaml_parse("t.yaml", text, strlen(text), &root, &diag);
    if (rc != 0 || diag.count)
        fprintf(stderr, "  unexpected: %s\n", diag.count ? diag.items[0].message : "");
    CHECK_INT(rc, 0);
    sl__diag_close(&diag);
    return root;
}

/* Parses text expected to fail; returns the first problem as "L:C: message". */
static char *parse_error(const char *text, size_t len, int *rc_out)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_node_t *root = NULL;
    int rc = sl__yaml_parse("t.yaml", text, len, &root, &diag);
    CHECK(rc < 0);
    CHECK(root == NULL);
    if (rc_out)
        *rc_out = rc;
    char *out = NULL;
    if (diag.count)
        out = sl__asprintf("%u:%u: %s", diag.items[0].mark.line, diag.items[0].mark.col,
                           diag.items[0].message);
    sl__diag_close(&diag);
    return out;
}

static void test_marks(void)
{
    sl_node_t *root = parse_ok("a: 1\nsteps:\n  x:\n    uses: lua\n");
    CHECK(root && root->kind == SL_NODE_MAP);
    CHECK_INT(root->count, 2);
    const sl_node_t *steps = sl__yaml_get(root, "steps");
    CHECK(steps && steps->kind == SL_NODE_MAP);
    CHECK_INT(steps->items[0]->mark.line, 3);
    CHECK_INT(steps->items[0]->mark.col, 3);
    const sl_node_t *uses = sl__yaml_get(steps->items[1], "uses");
    CHECK_STR(uses->str, "lua");
    CHECK_INT(uses->mark.line, 4);
    CHECK_INT(uses->mark.col, 11);
    CHECK(uses->plain);
    sl__yaml_free(root);
}

static void test_scalar_styles(void)
{
    sl_node_t *root = parse_ok("a: 'x'\nb: \"y\"\nc: |\n  z\nd: !!str 5\ne: plain\n");
    CHECK_INT(sl__yaml_get(root, "a")->style, '\'');
    CHECK_INT(sl__yaml_get(root, "b")->style, '"');
    CHECK_INT(sl__yaml_get(root, "c")->style, '|');
    CHECK(!sl__yaml_get(root, "d")->plain);
    CHECK(sl__yaml_get(root, "e")->plain);
    CHECK_INT(sl__yaml_get(root, "e")->end.col, 9);
    sl__yaml_free(root);
}

static int type_of(const char *text)
{
    sl_value_t *v = NULL;
    CHECK_INT(sl__yaml_scalar_value(text, strlen(text), true, &v), 0);
    int t = v ? (int)sl_value_type(v) : -1;
    sl_value_free(v);
    return t;
}

static void test_core_schema(void)
{
    CHECK_INT(type_of(""), SL_TYPE_NIL);
    CHECK_INT(type_of("~"), SL_TYPE_NIL);
    CHECK_INT(type_of("null"), SL_TYPE_NIL);
    CHECK_INT(type_of("True"), SL_TYPE_BOOL);
    CHECK_INT(type_of("false"), SL_TYPE_BOOL);
    CHECK_INT(type_of("yes"), SL_TYPE_STRING); /* YAML 1.1 booleans are strings in 1.2 */
    CHECK_INT(type_of("42"), SL_TYPE_INT);
    CHECK_INT(type_of("-7"), SL_TYPE_INT);
    CHECK_INT(type_of("0x1F"), SL_TYPE_INT);
    CHECK_INT(type_of("0o17"), SL_TYPE_INT);
    CHECK_INT(type_of("1.5"), SL_TYPE_NUMBER);
    CHECK_INT(type_of("1e3"), SL_TYPE_NUMBER);
    CHECK_INT(type_of(".inf"), SL_TYPE_NUMBER);
    CHECK_INT(type_of(".NaN"), SL_TYPE_NUMBER);
    CHECK_INT(type_of("99999999999999999999"), SL_TYPE_NUMBER);
    CHECK_INT(type_of("1.2.3"), SL_TYPE_STRING);
    CHECK_INT(type_of("30s"), SL_TYPE_STRING);
    sl_value_t *v = NULL;
    sl__yaml_scalar_value("0x10", 4, true, &v);
    CHECK_INT(sl_value_int_of(v), 16);
    sl_value_free(v);
    sl__yaml_scalar_value("true", 4, false, &v);
    CHECK_INT(sl_value_type(v), SL_TYPE_STRING);
    sl_value_free(v);
}

static void test_to_value(void)
{
    sl_node_t *root = parse_ok("a: [1, two, 3.5, null, \"4\"]\nb: {c: true}\n");
    sl_value_t *v = NULL;
    CHECK_INT(sl__yaml_to_value(root, &v), 0);
    const sl_value_t *a = sl_value_get(v, "a");
    CHECK_INT(sl_value_len(a), 5);
    CHECK_INT(sl_value_type(sl_value_at(a, 0)), SL_TYPE_INT);
    CHECK_INT(sl_value_type(sl_value_at(a, 1)), SL_TYPE_STRING);
    CHECK_INT(sl_value_type(sl_value_at(a, 3)), SL_TYPE_NIL);
    CHECK_INT(sl_value_type(sl_value_at(a, 4)), SL_TYPE_STRING);
    CHECK_INT(sl_value_type(sl_value_get(sl_value_get(v, "b"), "c")), SL_TYPE_BOOL);
    sl_value_free(v);
    sl__yaml_free(root);
}

static void test_aliases_and_merge(void)
{
    sl_node_t *root = parse_ok("base: &b {x: 1, y: 2}\n"
                               "copy: *b\n"
                               "m:\n  <<: *b\n  y: 3\n");
    const sl_node_t *copy = sl__yaml_get(root, "copy");
    CHECK(copy && copy->kind == SL_NODE_MAP && copy->count == 2);
    const sl_node_t *m = sl__yaml_get(root, "m");
    CHECK_INT(m->count, 2);
    CHECK_STR(sl__yaml_get(m, "x")->str, "1");
    CHECK_STR(sl__yaml_get(m, "y")->str, "3");
    sl__yaml_free(root);
}

static void test_empty(void)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_node_t *root = (sl_node_t *)1;
    CHECK_INT(sl__yaml_parse("t.yaml", "", 0, &root, &diag), 0);
    CHECK(root == NULL);
    CHECK_INT(sl__yaml_parse("t.yaml", "# only a comment\n", 17, &root, &diag), 0);
    CHECK(root == NULL);
    CHECK_INT(diag.count, 0);
    sl__diag_close(&diag);
}

static void test_duplicate_key(void)
{
    const char *text = "a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n";
    char *msg = parse_error(text, strlen(text), NULL);
    CHECK_STR(msg, "5:3: duplicate key 'x' (first defined at line 3)");
    sl__free(msg);
}

static void test_syntax_error(void)
{
    const char *text = "a: 1\nb: [1, 2\n";
    char *msg = parse_error(text, strlen(text), NULL);
    CHECK_CONTAINS(msg, "did not find expected ',' or ']'");
    CHECK_CONTAINS(msg, "while parsing a flow sequence at line 2, column 4");
    sl__free(msg);
    text = "a: b: c\n";
    msg = parse_error(text, strlen(text), NULL);
    CHECK_STR(msg, "1:5: mapping values are not allowed in this context");
    sl__free(msg);
}

static void test_invalid_utf8(void)
{
    const char text[] = "a: 1\nb: \"h\xc3\xa9llo \xff\"\n";
    char *msg = parse_error(text, sizeof(text) - 1, NULL);
    CHECK_STR(msg, "2:11: invalid UTF-8 (byte 0xff)");
    sl__free(msg);
    const char ctl[] = "a: \x01\n";
    msg = parse_error(ctl, sizeof(ctl) - 1, NULL);
    CHECK_STR(msg, "1:4: control characters are not allowed (byte 0x01)");
    sl__free(msg);
}

static void test_multiple_documents(void)
{
    const char *text = "a: 1\n---\nb: 2\n";
    char *msg = parse_error(text, strlen(text), NULL);
    CHECK_STR(msg, "2:1: a workflow file holds one YAML document; found a second one here");
    sl__free(msg);
}

static void test_unknown_anchor(void)
{
    const char *text = "a: *nope\n";
    char *msg = parse_error(text, strlen(text), NULL);
    CHECK_STR(msg, "1:4: unknown anchor 'nope'");
    sl__free(msg);
}

static void test_billion_laughs(void)
{
    const char *text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    clock_t start = clock();
    int rc = 0;
    char *msg = parse_error(text, strlen(text), &rc);
    CHECK_INT(rc, SL_ELIMIT);
    CHECK_CONTAINS(msg, "aliases expand to too many nodes");
    fprintf(stderr, "  refused in %.3fs\n", (double)(clock() - start) / CLOCKS_PER_SEC);
    sl__free(msg);
}

static void test_depth_limit(void)
{
    size_t n = SL_YAML_DEPTH_MAX + 10;
    char *text = sl__malloc(2 * n + 1);
    memset(text, '[', n);
    memset(text + n, ']', n);
    text[2 * n] = '\0';
    int rc = 0;
    char *msg = parse_error(text, 2 * n, &rc);
    CHECK_INT(rc, SL_ELIMIT);
    CHECK_CONTAINS(msg, "nests deeper than 256 levels");
    sl__free(msg);
    sl__free(text);
}

static void test_alias_depth_chain(void)
{
    /* Each alias adds a level: the depth limit must hold across aliases too. */
    sl_buf_t b;
    sl__buf_init(&b, 1 << 20);
    sl__buf_addf(&b, "a0: &a0 [1]\n");
    for (int i = 1; i < 300; i++)
        sl__buf_addf(&b, "a%d: &a%d [*a%d]\n", i, i, i - 1);
    int rc = 0;
    char *msg = parse_error(b.data, b.len, &rc);
    CHECK_INT(rc, SL_ELIMIT);
    CHECK_CONTAINS(msg, "nests deeper");
    sl__free(msg);
    sl__buf_close(&b);
}

static void test_complex_key(void)
{
    const char *text = "? [a, b]\n: 1\n";
    char *msg = parse_error(text, strlen(text), NULL);
    CHECK_STR(msg, "1:3: a map key must be a scalar, found a list");
    sl__free(msg);
}

static void test_parse_file_missing(void)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_node_t *root = NULL;
    CHECK_INT(sl__yaml_parse_file("/nonexistent/x.yaml", &root, &diag), SL_ENOENT);
    CHECK_INT(diag.count, 1);
    CHECK_STR(diag.items[0].message, "cannot read: No such file or directory");
    CHECK_INT(diag.items[0].mark.line, 0);
    sl__diag_close(&diag);
}

static void test_alloc_failures(void)
{
    const char *text = "a: &a {x: [1, 2], y: 'z'}\nb: *a\nc:\n  <<: *a\n  w: 1\n";
    for (uint64_t n = 1; n < 200; n++) {
        sl_diag_t diag;
        sl__diag_init(&diag);
        sl_node_t *root = NULL;
        sl__alloc_fail_at(n);
        int rc = sl__yaml_parse("t.yaml", text, strlen(text), &root, &diag);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM);
        CHECK((rc == 0) == (root != NULL));
        sl__yaml_free(root);
        sl__diag_close(&diag);
    }
}

TEST_MAIN(30, T(test_marks), T(test_scalar_styles), T(test_core_schema), T(test_to_value),
          T(test_aliases_and_merge), T(test_empty), T(test_duplicate_key), T(test_syntax_error),
          T(test_invalid_utf8), T(test_multiple_documents), T(test_unknown_anchor),
          T(test_billion_laughs), T(test_depth_limit), T(test_alias_depth_chain),
          T(test_complex_key), T(test_parse_file_missing), T(test_alloc_failures))
