/* Unit tests of dash/layout.c: layers by dependency depth, rows by the needs' rows, the cap
 * on drawn steps, needs naming no step, a cycle (never from a validated workflow) and
 * allocation failures; a 10,000-step chain laid out fast. */
#include <time.h>

#include "dash/pages.h"
#include "test.h"

/* A run of `n` steps s0..s(n-1) with no needs yet; the test owns its strings. */
static sl_dash_run_t *make_run(size_t n)
{
    sl_dash_run_t *run = sl__calloc(1, sizeof(*run));
    run->steps = sl__calloc(n ? n : 1, sizeof(sl_dash_step_t));
    run->step_count = n;
    for (size_t i = 0; i < n; i++) {
        run->steps[i].row.id = sl__asprintf("s%zu", i);
        run->steps[i].row.status = "ok";
    }
    return run;
}

static void need(sl_dash_run_t *run, size_t step, const char *id)
{
    sl_dash_step_t *s = &run->steps[step];
    s->needs = sl__realloc(s->needs, (s->needs_count + 1) * sizeof(char *));
    s->needs[s->needs_count++] = sl__strdup(id);
}

static void free_run(sl_dash_run_t *run)
{
    for (size_t i = 0; i < run->step_count; i++) {
        sl__free((char *)run->steps[i].row.id);
        for (size_t k = 0; k < run->steps[i].needs_count; k++)
            sl__free(run->steps[i].needs[k]);
        sl__free(run->steps[i].needs);
    }
    sl__free(run->steps);
    sl__free(run);
}

/* s0 -> s1, s0 -> s2, {s1, s2} -> s3; s4 needs nothing and a step that does not exist. */
static void test_diamond(void)
{
    sl_dash_run_t *run = make_run(5);
    need(run, 1, "s0");
    need(run, 2, "s0");
    need(run, 3, "s2");
    need(run, 3, "s1");
    need(run, 4, "nope");
    sl_dash_layout_t l;
    CHECK_INT(sl__dash_layout(run, &l), 0);
    CHECK_INT(l.count, 5);
    CHECK_INT(l.layers, 3);
    CHECK_INT(l.layer[0], 0);
    CHECK_INT(l.layer[1], 1);
    CHECK_INT(l.layer[2], 1);
    CHECK_INT(l.layer[3], 2);
    CHECK_INT(l.layer[4], 0);
    CHECK(l.x[1] == l.x[2] && l.x[1] > l.x[0] && l.x[3] > l.x[1]);
    CHECK(l.y[1] < l.y[2]); /* workflow order inside a layer */
    CHECK(l.y[0] < l.y[4]);
    CHECK_INT(l.dep_first[3 + 1] - l.dep_first[3], 2);
    CHECK_INT(l.dep_first[4 + 1] - l.dep_first[4], 0); /* the unknown need dropped */
    CHECK(l.width >= l.x[3] + SL_DASH_NODE_W && l.height >= l.y[2] + SL_DASH_NODE_H);
    for (size_t i = 0; i < 5; i++)
        CHECK(l.shown[i]);
    sl__dash_layout_close(&l);
    free_run(run);
}

/* Rows follow the needs' rows: b's child is drawn below a's child. */
static void test_barycentre(void)
{
    sl_dash_run_t *run = make_run(4);
    need(run, 2, "s1"); /* listed first, but needs the lower root */
    need(run, 3, "s0");
    sl_dash_layout_t l;
    CHECK_INT(sl__dash_layout(run, &l), 0);
    CHECK(l.y[3] < l.y[2]);
    sl__dash_layout_close(&l);
    free_run(run);
}

static void test_cap(void)
{
    size_t n = SL_DASH_GRAPH_NODES_MAX + 500;
    sl_dash_run_t *run = make_run(n);
    for (size_t i = 1; i < n; i++)
        need(run, i, "s0");
    sl_dash_layout_t l;
    CHECK_INT(sl__dash_layout(run, &l), 0);
    CHECK_INT(l.count, SL_DASH_GRAPH_NODES_MAX);
    CHECK(l.shown[0]);
    CHECK(!l.shown[n - 1]);
    CHECK_INT(l.drawn[0], 0);
    sl__dash_layout_close(&l);
    free_run(run);
}

static void test_cycle(void)
{
    sl_dash_run_t *run = make_run(3);
    need(run, 0, "s1");
    need(run, 1, "s0");
    need(run, 2, "s2"); /* itself */
    sl_dash_layout_t l;
    CHECK_INT(sl__dash_layout(run, &l), 0);
    CHECK_INT(l.count, 3);
    CHECK_INT(l.layer[2], 0);
    sl__dash_layout_close(&l);
    free_run(run);
}

static void test_chain_10000(void)
{
    sl_dash_run_t *run = make_run(10000);
    for (size_t i = 1; i < 10000; i++) {
        char id[32];
        snprintf(id, sizeof id, "s%zu", i - 1);
        need(run, i, id);
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    sl_dash_layout_t l;
    CHECK_INT(sl__dash_layout(run, &l), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    CHECK(ms < 500);
    CHECK_INT(l.layer[9999], 9999);
    CHECK_INT(l.count, SL_DASH_GRAPH_NODES_MAX);
    sl__dash_layout_close(&l);
    free_run(run);
}

static void test_empty(void)
{
    sl_dash_run_t *run = make_run(0);
    sl_dash_layout_t l;
    CHECK_INT(sl__dash_layout(run, &l), 0);
    CHECK_INT(l.count, 0);
    CHECK(l.width > 0 && l.height > 0);
    sl__dash_layout_close(&l);
    free_run(run);
}

static void test_alloc_failures(void)
{
    sl_dash_run_t *run = make_run(4);
    need(run, 1, "s0");
    need(run, 2, "s1");
    need(run, 3, "s0");
    for (uint64_t n = 1; n < 40; n++) {
        sl_dash_layout_t l;
        sl__alloc_fail_at(n);
        int rc = sl__dash_layout(run, &l);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM);
        if (rc == 0)
            CHECK_INT(l.layer[2], 2);
        sl__dash_layout_close(&l);
    }
    free_run(run);
}

TEST_MAIN(60, T(test_diamond), T(test_barycentre), T(test_cap), T(test_cycle), T(test_chain_10000),
          T(test_empty), T(test_alloc_failures))
