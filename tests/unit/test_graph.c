/* Unit tests of graph/: cycles named in file order, topological order, DOT and Mermaid. */
#include <time.h>

#include "graph/graph.h"
#include "test.h"

/* A graph of `n` nodes s0..s(n-1), labelled test.noop, with no dependencies yet; the
 * test owns its strings and dependency arrays. */
static sl_graph_t *make_graph(size_t n)
{
    sl_graph_t *g = sl__calloc(1, sizeof(*g));
    CHECK_INT(sl__graph_init(g, n), 0);
    g->file = "wf.yaml";
    g->name = "wf";
    for (size_t i = 0; i < n; i++) {
        sl_graph_node_t *s = &g->nodes[i];
        s->id = sl__asprintf("s%zu", i);
        s->label = "test.noop";
        s->mark = (sl_mark_t){(uint32_t)(2 + i), 3};
    }
    return g;
}

static void free_graph(sl_graph_t *g)
{
    for (size_t i = 0; i < g->count; i++) {
        sl__free((char *)g->nodes[i].id);
        sl__free((size_t *)g->nodes[i].deps);
    }
    sl__graph_close(g);
    sl__free(g);
}

static void add_dep(sl_graph_t *g, size_t node, size_t dep)
{
    sl_graph_node_t *s = &g->nodes[node];
    size_t *deps = sl__realloc((size_t *)s->deps, (s->dep_count + 1) * sizeof(size_t));
    deps[s->dep_count++] = dep;
    s->deps = deps;
}

static void check_ok(sl_graph_t *wf)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(sl__graph_check(wf, &diag), 0);
    CHECK_INT(diag.count, 0);
    sl__diag_close(&diag);
}

static void test_no_cycle(void)
{
    sl_graph_t *wf = make_graph(4);
    add_dep(wf, 1, 0);
    add_dep(wf, 2, 0);
    add_dep(wf, 3, 1);
    add_dep(wf, 3, 2);
    check_ok(wf);
    size_t order[4];
    CHECK_INT(sl__graph_order(wf, order), 0);
    CHECK_INT(order[0], 0);
    CHECK_INT(order[3], 3);
    free_graph(wf);
}

static void test_cycle_message(void)
{
    /* s0 needs s2, s1 needs s0, s2 needs s1: in data-flow order s0 -> s1 -> s2 -> s0. */
    sl_graph_t *wf = make_graph(5);
    add_dep(wf, 0, 2);
    add_dep(wf, 1, 0);
    add_dep(wf, 2, 1);
    add_dep(wf, 3, 0);
    add_dep(wf, 4, 4); /* a self-loop is a cycle too */
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(sl__graph_check(wf, &diag), SL_EINVAL);
    CHECK_INT(diag.count, 2);
    CHECK_STR(diag.items[0].message, "dependency cycle: s0 -> s1 -> s2 -> s0");
    CHECK_STR(diag.items[0].file, "wf.yaml");
    CHECK_INT(diag.items[0].mark.line, 2);
    CHECK_STR(diag.items[1].message, "dependency cycle: s4 -> s4");
    size_t order[5];
    CHECK_INT(sl__graph_order(wf, order), SL_EINVAL);
    sl__diag_close(&diag);
    free_graph(wf);
}

static void test_two_cycles(void)
{
    sl_graph_t *wf = make_graph(4);
    add_dep(wf, 0, 1);
    add_dep(wf, 1, 0);
    add_dep(wf, 2, 3);
    add_dep(wf, 3, 2);
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(sl__graph_check(wf, &diag), SL_EINVAL);
    CHECK_INT(diag.count, 2);
    CHECK_STR(diag.items[0].message, "dependency cycle: s0 -> s1 -> s0");
    CHECK_STR(diag.items[1].message, "dependency cycle: s2 -> s3 -> s2");
    sl__diag_close(&diag);
    free_graph(wf);
}

static void test_long_chain(void)
{
    size_t n = 100000;
    sl_graph_t *wf = make_graph(n);
    for (size_t i = 1; i < n; i++)
        add_dep(wf, i, i - 1);
    clock_t start = clock();
    check_ok(wf);
    size_t *order = sl__malloc(n * sizeof(size_t));
    CHECK_INT(sl__graph_order(wf, order), 0);
    CHECK_INT(order[0], 0);
    CHECK_INT(order[n - 1], n - 1);
    fprintf(stderr, "  100000-step chain checked and ordered in %.2fs\n",
            (double)(clock() - start) / CLOCKS_PER_SEC);
    /* Close the chain into one long cycle: the message is elided, not huge. */
    add_dep(wf, 0, n - 1);
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(sl__graph_check(wf, &diag), SL_EINVAL);
    CHECK_INT(diag.count, 1);
    CHECK_CONTAINS(diag.items[0].message, "dependency cycle: s0 -> s1 -> s2 -> ");
    CHECK_CONTAINS(diag.items[0].message, " -> ... (99989 more) -> s99999 -> s0");
    sl__diag_close(&diag);
    sl__free(order);
    free_graph(wf);
}

static char *write_graph(const sl_graph_t *wf, sl_graph_format_t format)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_INT(sl__graph_write(wf, format, f), 0);
    fclose(f);
    return text;
}

static void test_write(void)
{
    sl_graph_t *wf = make_graph(3);
    add_dep(wf, 1, 0);
    add_dep(wf, 2, 1);
    wf->nodes[1].multi = true;
    wf->nodes[2].multi = true;
    wf->nodes[2].stream_from = 1;
    char *dot = write_graph(wf, SL_GRAPH_DOT);
    CHECK_CONTAINS(dot, "digraph \"wf\" {\n");
    CHECK_CONTAINS(dot, "  \"s0\" [label=\"s0 (test.noop)\"];\n");
    CHECK_CONTAINS(dot, "  \"s1\" [label=\"s1 (test.noop) [foreach]\", shape=box3d];\n");
    CHECK_CONTAINS(dot, "  \"s0\" -> \"s1\";\n");
    CHECK_CONTAINS(dot, "  \"s1\" -> \"s2\" [style=dashed, label=\"stream\"];\n");
    free(dot);
    char *mermaid = write_graph(wf, SL_GRAPH_MERMAID);
    CHECK_CONTAINS(mermaid, "flowchart LR\n");
    CHECK_CONTAINS(mermaid, "  n_s0[\"s0 (test.noop)\"]\n");
    CHECK_CONTAINS(mermaid, "  n_s1[[\"s1 (test.noop) [foreach]\"]]\n");
    CHECK_CONTAINS(mermaid, "  n_s0 --> n_s1\n");
    CHECK_CONTAINS(mermaid, "  n_s1 -. stream .-> n_s2\n");
    free(mermaid);
    free_graph(wf);
}

/* Step ids that are Mermaid keywords or hold '-' get node ids Mermaid can parse, all
 * distinct; the label keeps the real id. */
static void test_mermaid_ids(void)
{
    static const char *const ids[] = {"end", "subgraph", "a-b", "a_b", "x--y"};
    sl_graph_t *wf = make_graph(SL_COUNTOF(ids));
    for (size_t i = 0; i < SL_COUNTOF(ids); i++) {
        sl__free((char *)wf->nodes[i].id);
        wf->nodes[i].id = sl__strdup(ids[i]);
    }
    add_dep(wf, 1, 0);
    add_dep(wf, 3, 2);
    add_dep(wf, 4, 3);
    char *mermaid = write_graph(wf, SL_GRAPH_MERMAID);
    CHECK_CONTAINS(mermaid, "  n_end[\"end (test.noop)\"]\n");
    CHECK_CONTAINS(mermaid, "  n_subgraph[\"subgraph (test.noop)\"]\n");
    CHECK_CONTAINS(mermaid, "  n2_a_b[\"a-b (test.noop)\"]\n");
    CHECK_CONTAINS(mermaid, "  n_a_b[\"a_b (test.noop)\"]\n");
    CHECK_CONTAINS(mermaid, "  n4_x__y[\"x--y (test.noop)\"]\n");
    CHECK_CONTAINS(mermaid, "  n_end --> n_subgraph\n");
    CHECK_CONTAINS(mermaid, "  n2_a_b --> n_a_b\n");
    CHECK_CONTAINS(mermaid, "  n_a_b --> n4_x__y\n");
    free(mermaid);
    free_graph(wf);
}

static void test_alloc_failures(void)
{
    sl_graph_t *wf = make_graph(3);
    add_dep(wf, 0, 1);
    add_dep(wf, 1, 0);
    for (uint64_t n = 1; n < 20; n++) {
        sl_diag_t diag;
        sl__diag_init(&diag);
        sl__alloc_fail_at(n);
        int rc = sl__graph_check(wf, &diag);
        sl__alloc_fail_at(0);
        CHECK(rc == SL_EINVAL || rc == SL_ENOMEM);
        sl__diag_close(&diag);
    }
    free_graph(wf);
}

TEST_MAIN(60, T(test_no_cycle), T(test_cycle_message), T(test_two_cycles), T(test_long_chain),
          T(test_write), T(test_mermaid_ids), T(test_alloc_failures))
