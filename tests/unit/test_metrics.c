/* util/metrics: the registry and its Prometheus text exposition (escaping, histogram
 * buckets, sorting, the bound on label sets and the overflow series, allocation faults). */
#include "test.h"
#include "util/metrics.h"
#include "util/util.h"

typedef struct text {
    sl_buf_t buf;
    size_t calls;
    size_t stop_after; /* 0: never stop */
} text_t;

static int collect(void *ud, const char *data, size_t len)
{
    text_t *t = ud;
    t->calls++;
    if (t->stop_after && t->calls >= t->stop_after)
        return -7;
    return sl__buf_add(&t->buf, data, len);
}

/* The exposition of `m`, to free with sl__free. */
static char *expose(const sl_metrics_t *m)
{
    text_t t = {0};
    sl__buf_init(&t.buf, 64u << 20);
    CHECK_INT(sl__metrics_write(m, collect, &t), 0);
    size_t len;
    char *s = sl__buf_take(&t.buf, &len);
    sl__buf_close(&t.buf);
    return s ? s : sl__strdup("");
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_counter_and_gauge(void)
{
    sl_metrics_t *m = sl__metrics_new(0);
    const char *labels[] = {"workflow", "status", NULL};
    sl_metrics_family_t *f = sl__metrics_family(m, "sluice_runs_finished_total", SL_METRICS_COUNTER,
                                                "Runs finished.", labels);
    CHECK(f != NULL);
    CHECK(sl__metrics_family(m, "sluice_runs_finished_total", SL_METRICS_COUNTER, "x", labels) ==
          f);
    sl_metrics_series_t *ok = sl__metrics_series(f, (const char *[]){"b", "succeeded"});
    CHECK(sl__metrics_series(f, (const char *[]){"b", "succeeded"}) == ok);
    sl__metrics_add(ok, 2);
    sl__metrics_add(ok, -5); /* a counter never goes down */
    sl__metrics_count(f, (const char *[]){"a", "failed"}, 1);
    CHECK(sl__metrics_value(ok) == 2);
    sl_metrics_family_t *g = sl__metrics_family(m, "a_gauge", SL_METRICS_GAUGE, "A gauge.", NULL);
    sl_metrics_series_t *gs = sl__metrics_series(g, NULL);
    sl__metrics_add(gs, 3);
    sl__metrics_add(gs, -1.5);
    sl__metrics_set(sl__metrics_series(g, NULL), sl__metrics_value(gs) + 0.25);
    char *text = expose(m);
    CHECK_STR(text, "# HELP a_gauge A gauge.\n"
                    "# TYPE a_gauge gauge\n"
                    "a_gauge 1.75\n"
                    "# HELP sluice_runs_finished_total Runs finished.\n"
                    "# TYPE sluice_runs_finished_total counter\n"
                    "sluice_runs_finished_total{workflow=\"a\",status=\"failed\"} 1\n"
                    "sluice_runs_finished_total{workflow=\"b\",status=\"succeeded\"} 2\n");
    sl__free(text);
    sl__metrics_free(m);
}

static void test_numbers(void)
{
    sl_metrics_t *m = sl__metrics_new(0);
    const char *labels[] = {"n", NULL};
    sl_metrics_family_t *g = sl__metrics_family(m, "g", SL_METRICS_GAUGE, "G.", labels);
    double values[] = {-3, 0, 0.1, 1e15, 123456789012345, 2.5e-7, 1.0 / 3};
    const char *texts[] = {
        "-3", "0", "0.1", "1e+15", "123456789012345", "2.5e-07", "0.33333333333333331"};
    for (size_t i = 0; i < SL_COUNTOF(values); i++) {
        char n[8];
        snprintf(n, sizeof n, "%zu", i);
        sl__metrics_set(sl__metrics_series(g, (const char *[]){n}), values[i]);
    }
    char *text = expose(m);
    for (size_t i = 0; i < SL_COUNTOF(values); i++) {
        char line[64];
        snprintf(line, sizeof line, "g{n=\"%zu\"} %s\n", i, texts[i]);
        CHECK_CONTAINS(text, line);
    }
    sl__free(text);
    sl__metrics_free(m);
}

static void test_bad_families(void)
{
    sl_metrics_t *m = sl__metrics_new(0);
    const char *bad_label[] = {"1x", NULL}, *reserved[] = {"__name", NULL}, *le[] = {"le", NULL};
    const char *five[] = {"a", "b", "c", "d", "e", NULL}, *one[] = {"a", NULL};
    CHECK(sl__metrics_family(m, "9lives", SL_METRICS_COUNTER, "", NULL) == NULL);
    CHECK(sl__metrics_family(m, "has-dash", SL_METRICS_COUNTER, "", NULL) == NULL);
    CHECK(sl__metrics_family(m, "", SL_METRICS_COUNTER, "", NULL) == NULL);
    CHECK(sl__metrics_family(m, "x", SL_METRICS_COUNTER, "", bad_label) == NULL);
    CHECK(sl__metrics_family(m, "x", SL_METRICS_COUNTER, "", reserved) == NULL);
    CHECK(sl__metrics_family(m, "x", SL_METRICS_HISTOGRAM, "", le) == NULL);
    CHECK(sl__metrics_family(m, "x", SL_METRICS_COUNTER, "", five) == NULL);
    CHECK(sl__metrics_family(m, "ns:x_total", SL_METRICS_COUNTER, "", one) != NULL);
    /* the same name again with another type or other labels */
    CHECK(sl__metrics_family(m, "ns:x_total", SL_METRICS_GAUGE, "", one) == NULL);
    CHECK(sl__metrics_family(m, "ns:x_total", SL_METRICS_COUNTER, "", NULL) == NULL);
    /* NULL everywhere is a no-op */
    CHECK(sl__metrics_family(NULL, "y", SL_METRICS_COUNTER, "", NULL) == NULL);
    CHECK(sl__metrics_series(NULL, NULL) == NULL);
    sl__metrics_add(NULL, 1);
    sl__metrics_observe(NULL, 1);
    sl__metrics_clear(NULL);
    CHECK_INT(sl__metrics_write(NULL, collect, NULL), 0);
    sl__metrics_free(m);
}

static void test_escaping(void)
{
    sl_metrics_t *m = sl__metrics_new(0);
    const char *labels[] = {"workflow", NULL};
    sl_metrics_family_t *f = sl__metrics_family(m, "t_total", SL_METRICS_COUNTER,
                                                "Help with \\ and\nnewline \"quoted\".", labels);
    sl__metrics_count(f, (const char *[]){"a\\b\"c\nd"}, 1);
    sl__metrics_count(f, (const char *[]){"bad\xff utf8"}, 1);
    char *text = expose(m);
    CHECK_CONTAINS(text, "# HELP t_total Help with \\\\ and\\nnewline \"quoted\".\n");
    CHECK_CONTAINS(text, "t_total{workflow=\"a\\\\b\\\"c\\nd\"} 1\n");
    CHECK_CONTAINS(text, "t_total{workflow=\"bad\xEF\xBF\xBD utf8\"} 1\n");
    sl__free(text);
    /* a long value is cut, whole UTF-8 sequences kept: 'é' is 2 bytes, 100 of them */
    char longv[201] = "";
    for (int i = 0; i < 100; i++)
        strcat(longv, "\xC3\xA9");
    sl_metrics_series_t *s = sl__metrics_series(f, (const char *[]){longv});
    CHECK(s != NULL);
    text = expose(m);
    char cut[160] = "t_total{workflow=\"";
    size_t at = strlen(cut);
    memcpy(cut + at, longv, SL_METRICS_VALUE_MAX);
    memcpy(cut + at + SL_METRICS_VALUE_MAX, "\"} 0\n", 6);
    CHECK_CONTAINS(text, cut);
    sl__free(text);
    sl__metrics_free(m);
}

static void test_histogram(void)
{
    sl_metrics_t *m = sl__metrics_new(0);
    const char *labels[] = {"kind", NULL};
    sl_metrics_family_t *f =
        sl__metrics_family(m, "d_seconds", SL_METRICS_HISTOGRAM, "Durations.", labels);
    sl_metrics_series_t *s = sl__metrics_series(f, (const char *[]){"lua"});
    double seen[] = {0.001, 0.005, 0.007, 0.3, 59, 61, 1000};
    for (size_t i = 0; i < SL_COUNTOF(seen); i++)
        sl__metrics_observe(s, seen[i]);
    sl__metrics_add(s, 5); /* not for histograms */
    char *text = expose(m);
    CHECK_CONTAINS(text, "# TYPE d_seconds histogram\n");
    CHECK_CONTAINS(text, "d_seconds_bucket{kind=\"lua\",le=\"0.005\"} 2\n"); /* le is <= */
    CHECK_CONTAINS(text, "d_seconds_bucket{kind=\"lua\",le=\"0.01\"} 3\n");
    CHECK_CONTAINS(text, "d_seconds_bucket{kind=\"lua\",le=\"0.25\"} 3\n");
    CHECK_CONTAINS(text, "d_seconds_bucket{kind=\"lua\",le=\"0.5\"} 4\n");
    CHECK_CONTAINS(text, "d_seconds_bucket{kind=\"lua\",le=\"60\"} 5\n");
    CHECK_CONTAINS(text, "d_seconds_bucket{kind=\"lua\",le=\"+Inf\"} 7\n");
    CHECK_CONTAINS(text, "d_seconds_sum{kind=\"lua\"} 1120.31");
    CHECK_CONTAINS(text, "d_seconds_count{kind=\"lua\"} 7\n");
    CHECK_INT(count_of(text, "_bucket{"), SL_METRICS_BUCKETS + 1);
    CHECK(strstr(text, "le=\"2.5\"") < strstr(text, "le=\"5\"")); /* in bound order */
    for (size_t b = 0; b < SL_METRICS_BUCKETS; b++) { /* every bound, written as it is */
        char le[32];
        snprintf(le, sizeof le, "le=\"%g\"", sl__metrics_bounds[b]);
        CHECK_CONTAINS(text, le);
    }
    sl__free(text);
    sl__metrics_free(m);
}

static void test_bound_and_overflow(void)
{
    sl_metrics_t *m = sl__metrics_new(10);
    const char *labels[] = {"workflow", "status", NULL};
    sl_metrics_family_t *f = sl__metrics_family(m, "r_total", SL_METRICS_COUNTER, "Runs.", labels);
    char name[32];
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "wf%02d", i);
        sl__metrics_count(f, (const char *[]){name, "ok"}, 1);
    }
    /* past the bound: the workflow becomes "other", the status is kept */
    sl__metrics_count(f, (const char *[]){"new1", "ok"}, 1);
    sl__metrics_count(f, (const char *[]){"new2", "ok"}, 1);
    sl__metrics_count(f, (const char *[]){"new3", "failed"}, 1);
    sl__metrics_count(f, (const char *[]){"wf03", "ok"}, 1); /* known: still its own */
    char *text = expose(m);
    CHECK_CONTAINS(text, "r_total{workflow=\"other\",status=\"ok\"} 2\n");
    CHECK_CONTAINS(text, "r_total{workflow=\"other\",status=\"failed\"} 1\n");
    CHECK_CONTAINS(text, "r_total{workflow=\"wf03\",status=\"ok\"} 2\n");
    CHECK(strstr(text, "new1") == NULL);
    CHECK_INT(count_of(text, "\nr_total{"), 12);
    sl__free(text);
    /* overflow sets are bounded too: past SL_METRICS_OVERFLOW_MAX every label is "other" */
    for (int i = 0; i < SL_METRICS_OVERFLOW_MAX + 50; i++) {
        snprintf(name, sizeof name, "s%d", i);
        sl__metrics_count(f, (const char *[]){"x", name}, 1);
    }
    text = expose(m);
    CHECK_INT(count_of(text, "\nr_total{"), 10 + SL_METRICS_OVERFLOW_MAX + 1);
    CHECK_CONTAINS(text, "r_total{workflow=\"other\",status=\"other\"} ");
    sl__free(text);
    sl__metrics_free(m);
}

static void test_clear_and_sorted(void)
{
    sl_metrics_t *m = sl__metrics_new(0);
    const char *labels[] = {"workflow", NULL};
    sl_metrics_family_t *z = sl__metrics_family(m, "z_next", SL_METRICS_GAUGE, "Z.", labels);
    sl_metrics_family_t *a = sl__metrics_family(m, "a_info", SL_METRICS_GAUGE, "A.", NULL);
    sl__metrics_set(sl__metrics_series(a, NULL), 1);
    sl__metrics_set(sl__metrics_series(z, (const char *[]){"gone"}), 5);
    sl__metrics_clear(z);
    sl__metrics_set(sl__metrics_series(z, (const char *[]){"kept"}), 1.5e9);
    char *text = expose(m);
    CHECK(strstr(text, "gone") == NULL);
    CHECK_CONTAINS(text, "z_next{workflow=\"kept\"} 1500000000\n");
    CHECK(strstr(text, "# HELP a_info") == text); /* families by name */
    sl__free(text);
    sl__metrics_free(m);
}

static void test_writer_stops(void)
{
    sl_metrics_t *m = sl__metrics_new(10000);
    const char *labels[] = {"workflow", NULL};
    sl_metrics_family_t *f = sl__metrics_family(m, "many_total", SL_METRICS_COUNTER, "M.", labels);
    char name[32];
    for (int i = 0; i < 6000; i++) { /* about 38 bytes a line: 4 pieces of 64 KiB */
        snprintf(name, sizeof name, "workflow-%04d", i);
        sl__metrics_count(f, (const char *[]){name}, i);
    }
    text_t t = {.stop_after = 2};
    sl__buf_init(&t.buf, 1u << 20);
    CHECK_INT(sl__metrics_write(m, collect, &t), -7);
    CHECK_INT(t.calls, 2); /* nothing more once the output said stop */
    sl__buf_close(&t.buf);
    char *text = expose(m); /* and in 64 KiB pieces, whole */
    CHECK_INT(count_of(text, "\nmany_total{"), 6000);
    CHECK_CONTAINS(text, "many_total{workflow=\"workflow-5999\"} 5999\n");
    sl__free(text);
    sl__metrics_free(m);
}

/* Every allocation failing in turn: NULLs, never a crash or a leak (ASan checks). */
static void test_alloc_faults(void)
{
    for (uint64_t n = 1; n < 40; n++) {
        sl__alloc_fail_at(n);
        sl_metrics_t *m = sl__metrics_new(0);
        const char *labels[] = {"kind", NULL};
        sl_metrics_family_t *f =
            sl__metrics_family(m, "h_seconds", SL_METRICS_HISTOGRAM, "H.", labels);
        sl__metrics_observe(sl__metrics_series(f, (const char *[]){"a"}), 1);
        sl__metrics_observe(sl__metrics_series(f, (const char *[]){"b"}), 1);
        text_t t = {0};
        sl__buf_init(&t.buf, 1u << 20);
        int rc = sl__metrics_write(m, collect, &t);
        CHECK(rc == 0 || rc == SL_ENOMEM);
        sl__buf_close(&t.buf);
        sl__metrics_free(m);
        sl__alloc_fail_at(0);
    }
}

static void test_global(void)
{
    sl_metrics_t *g = sl__metrics_global();
    CHECK(g != NULL && sl__metrics_global() == g);
    sl_metrics_family_t *f = sl__metrics_family(g, "kept_total", SL_METRICS_COUNTER, "K.", NULL);
    sl_metrics_series_t *s = sl__metrics_series(f, NULL);
    sl__metrics_add(s, 1);
    sl__metrics_free(g); /* refused: callers keep its series */
    CHECK(sl__metrics_global() == g);
    sl__metrics_add(s, 1);
    CHECK(sl__metrics_value(s) == 2);
}

TEST_MAIN(30, T(test_counter_and_gauge), T(test_numbers), T(test_bad_families), T(test_escaping),
          T(test_histogram), T(test_bound_and_overflow), T(test_clear_and_sorted),
          T(test_writer_stops), T(test_alloc_faults), T(test_global))
