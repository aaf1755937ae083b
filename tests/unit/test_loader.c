/*
 * Unit tests of loader/workflow. Kinds come from the built-in plugins and the
 * test plugin (tests/plugins/testkinds.so) in the build folder; the error
 * messages of every rule are covered by the data-driven cases in
 * tests/cases/validate/.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "graph/graph.h"
#include "loader/workflow.h"
#include "test.h"

static sl_registry_t *registry(void)
{
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
    sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/plugins", &diag);
    sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/tests/plugins", &diag);
    sl__diag_close(&diag);
    CHECK(sl__registry_find(reg, "file.write") != NULL);
    CHECK(sl__registry_find(reg, "test.noop") != NULL);
    return reg;
}

/* Loads text; returns the workflow or NULL, with the problems joined in *errors. */
static sl_workflow_t *load(sl_registry_t *reg, const char *text, char **errors)
{
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_workflow_t *wf = NULL;
    int rc = sl__workflow_load_text("dir/wf.yaml", text, strlen(text), reg, &wf, &diag);
    CHECK((rc == 0) == (wf != NULL));
    CHECK(rc == 0 || rc == SL_EINVAL);
    sl__diag_sort(&diag);
    sl_buf_t b;
    sl__buf_init(&b, 1 << 20);
    sl__buf_add(&b, "", 0);
    for (size_t i = 0; i < diag.count; i++)
        sl__buf_addf(&b, "%u:%u: %s\n", diag.items[i].mark.line, diag.items[i].mark.col,
                     diag.items[i].message);
    if (errors)
        *errors = sl__buf_take(&b, NULL);
    else if (diag.count)
        fprintf(stderr, "  unexpected problems:\n%s", b.data);
    sl__buf_close(&b);
    sl__diag_close(&diag);
    return wf;
}

static const char valid_text[] =
    "vars: { n: 3, base: 'http://x' }\n"
    "defaults: { timeout: 30s, retry: 4, on_error: continue, concurrency: 7 }\n"
    "steps:\n"
    "  a:\n"
    "    uses: test.noop\n"
    "    foreach: [1, 2, 3]\n"
    "  b:\n"
    "    uses: test.noop\n"
    "    foreach: ${{ steps.a }}\n"
    "    timeout: 2m\n"
    "    on_error: fail\n"
    "    with: { value: '${{ item }}' }\n"
    "  c:\n"
    "    uses: file.write\n"
    "    needs: [a, b]\n"
    "    retry: { attempts: 2, backoff: 250ms, max_backoff: 2s }\n"
    "    if: ${{ steps['b'] ~= nil }}\n"
    "    with: { path: out.txt, content: \"${{ steps.a }}\" }\n"
    "  d:\n"
    "    uses: test.noop_cpu\n"
    "    executor: local\n"
    "    foreach: ${{ steps.b }}\n"
    "    with: { value: '${{ steps.b[index] }}' }\n";

static void test_valid(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, valid_text, NULL);
    CHECK(wf != NULL);
    if (wf == NULL)
        goto out;
    CHECK_STR(wf->name, "wf");
    CHECK_STR(wf->dir, "dir");
    CHECK_INT(wf->step_count, 4);
    CHECK_INT(sl_value_int_of(sl_value_get(wf->vars, "n")), 3);
    const sl_step_t *a = &wf->steps[0], *b = &wf->steps[1], *c = &wf->steps[2];
    const sl_step_t *d = &wf->steps[3];
    CHECK_INT(a->timeout_ms, 30000);
    CHECK_INT(a->retry.attempts, 4);
    CHECK_INT(a->on_error, SL_ON_ERROR_CONTINUE);
    CHECK_INT(a->concurrency, 7);
    CHECK(sl__tmpl_literal(a->with) != NULL);
    CHECK_INT(b->timeout_ms, 120000);
    CHECK_INT(b->on_error, SL_ON_ERROR_FAIL);
    CHECK_INT(b->dep_count, 1);
    CHECK_INT(b->stream_from, 0);
    CHECK_INT(c->dep_count, 2);
    CHECK_INT(c->deps[0], 0);
    CHECK_INT(c->deps[1], 1);
    CHECK_INT(c->retry.attempts, 2);
    CHECK_INT(c->retry.backoff_ms, 250);
    CHECK_INT(c->retry.max_backoff_ms, 2000);
    CHECK(c->if_cond != NULL);
    CHECK_INT(c->stream_from, SL_NO_STEP);
    CHECK_INT(d->executor, SL_EXECUTOR_LOCAL);
    CHECK_INT(d->stream_from, SL_NO_STEP); /* `with` names b too */
    CHECK_INT(sl__workflow_find(wf, "c"), 2);
    CHECK_INT(sl__workflow_find(wf, "zz"), SL_NO_STEP);
    CHECK_STR(wf->schedule.timezone, "UTC");
    CHECK(!wf->schedule.present);
    CHECK_INT(wf->limits.http_concurrency, 128);
    CHECK_INT(wf->limits.http_per_host, 32);
    sl__workflow_free(wf);
out:
    sl__registry_free(reg);
}

static void test_sections(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg,
                             "name: custom\n"
                             "schedule:\n"
                             "  cron: ['0 3 * * *', '@hourly']\n"
                             "  timezone: UTC\n"
                             "  concurrency: replace\n"
                             "  missed: none\n"
                             "  catchup: 10m\n"
                             "  jitter: 5\n"
                             "limits:\n"
                             "  http: { concurrency: 10, per_host: 2, rate: 0.5, robots: true }\n"
                             "  cpu: { workers: 3, memory: 2GiB }\n"
                             "steps: { only: { uses: test.noop } }\n",
                             NULL);
    CHECK(wf != NULL);
    if (wf) {
        CHECK_STR(wf->name, "custom");
        CHECK(wf->schedule.present);
        CHECK_INT(wf->schedule.cron_count, 2);
        CHECK_STR(wf->schedule.cron[1], "@hourly");
        CHECK_INT(wf->schedule.cron_marks[0].line, 3);
        CHECK_INT(wf->schedule.concurrency, SL_CONCURRENCY_REPLACE);
        CHECK_INT(wf->schedule.missed, SL_MISSED_NONE);
        CHECK_INT(wf->schedule.catchup_ms, 600000);
        CHECK_INT(wf->schedule.jitter_ms, 5000);
        CHECK_INT(wf->limits.http_concurrency, 10);
        CHECK_INT(wf->limits.http_per_host, 2);
        CHECK(wf->limits.http_rate == 0.5);
        CHECK(wf->limits.http_robots);
        CHECK_INT(wf->limits.cpu_workers, 3);
        CHECK_INT(wf->limits.cpu_memory_bytes, 2147483648LL);
        CHECK_INT(wf->steps[0].retry.attempts, 1);
        CHECK_INT(wf->steps[0].timeout_ms, 0);
    }
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

static void test_set_var(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg,
                             "vars: { n: 1, flag: false, base: x, opts: { depth: 1 } }\n"
                             "steps: { a: { uses: test.noop } }\n",
                             NULL);
    CHECK(wf != NULL);
    char err[512];
    if (wf) {
        CHECK_INT(sl__workflow_set_var(wf, "n=5", err, sizeof(err)), 0);
        CHECK_INT(sl__workflow_set_var(wf, "flag=true", err, sizeof(err)), 0);
        CHECK_INT(sl__workflow_set_var(wf, "base=http://127.0.0.1:8080/a=b", err, sizeof(err)), 0);
        CHECK_INT(sl__workflow_set_var(wf, "novalue", err, sizeof(err)), SL_EINVAL);
        CHECK_STR(err, "--var expects K=V, got 'novalue'");
        CHECK_INT(sl_value_type(sl_value_get(wf->vars, "n")), SL_TYPE_INT);
        CHECK_INT(sl_value_type(sl_value_get(wf->vars, "flag")), SL_TYPE_BOOL);
        CHECK_STR(sl_value_str(sl_value_get(wf->vars, "base"), NULL), "http://127.0.0.1:8080/a=b");
        /* A nested field is set in place; no var named 'opts.depth' appears. */
        CHECK_INT(sl__workflow_set_var(wf, "opts.depth=3", err, sizeof(err)), 0);
        CHECK_INT(sl_value_int_of(sl_value_get(sl_value_get(wf->vars, "opts"), "depth")), 3);
        CHECK(sl_value_get(wf->vars, "opts.depth") == NULL);
        CHECK_INT(sl_value_len(wf->vars), 4);
        CHECK_INT(sl__workflow_set_var(wf, "n.x=3", err, sizeof(err)), SL_EINVAL);
        CHECK_STR(err, "--var n.x: 'n' is not a map, so it has no field 'x'");
        CHECK_INT(sl__workflow_set_var(wf, "nmae=3", err, sizeof(err)), SL_EINVAL);
        CHECK_STR(err, "--var nmae: the workflow declares no var 'nmae' (declared: 'n', "
                       "'flag', 'base' and 'opts')");
        CHECK_INT(sl__workflow_set_var(wf, "a.b=3", err, sizeof(err)), SL_EINVAL);
        CHECK(sl_value_get(wf->vars, "a.b") == NULL && sl_value_get(wf->vars, "a") == NULL);
    }
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

static void test_all_problems_at_once(void)
{
    sl_registry_t *reg = registry();
    char *errors = NULL;
    sl_workflow_t *wf = load(reg,
                             "stpes: 1\n"
                             "steps:\n"
                             "  a:\n"
                             "    uses: test.nop\n"
                             "    timeout: 3x\n"
                             "  b:\n"
                             "    uses: file.write\n"
                             "    needs: [a, c]\n"
                             "    with: { path: 5, content: x, extra: 1 }\n",
                             &errors);
    CHECK(wf == NULL);
    CHECK_STR(errors, "1:1: unknown field 'stpes' (did you mean 'steps'?)\n"
                      "4:11: unknown step kind 'test.nop' (did you mean 'test.noop'?)\n"
                      "5:14: invalid duration '3x' (use 250ms, 30s, 5m, 2h, 1d or a number of "
                      "seconds)\n"
                      "8:16: unknown step 'c' in needs\n"
                      "9:19: parameter 'path' of file.write expects a string, got an integer\n"
                      "9:34: unknown parameter 'extra' of file.write\n");
    sl__free(errors);
    sl__registry_free(reg);
}

/* One problem hides no other: an unknown need and a cycle, every bad retry field, a
 * syntax error and an unknown step in the same `with`. */
static void test_one_pass(void)
{
    sl_registry_t *reg = registry();
    char *errors = NULL;
    sl_workflow_t *wf = load(reg,
                             "steps:\n"
                             "  d: { uses: test.noop, with: { value: '${{ steps.e }}' } }\n"
                             "  e: { uses: test.noop, needs: d }\n"
                             "  b:\n"
                             "    uses: test.noop\n"
                             "    needs: [nope]\n"
                             "    retry: { attempts: 0, backoff: 2s, max_backoff: 1s }\n"
                             "  c:\n"
                             "    uses: lua\n"
                             "    with: { code: 'return 1', x: '${{ 1 + }}', y: '${{ steps.zz }}' }\n",
                             &errors);
    CHECK(wf == NULL);
    CHECK_STR(errors, "2:3: dependency cycle: d -> e -> d\n"
                      "6:13: unknown step 'nope' in needs\n"
                      "7:24: 'attempts' expects an integer from 1 to 100, got '0'\n"
                      "7:53: 'max_backoff' must not be less than 'backoff'\n"
                      "10:35: expression syntax error: unexpected symbol near ')'\n"
                      "10:52: unknown step 'zz' in expression\n");
    sl__free(errors);
    sl__registry_free(reg);
}

static void test_field_types(void)
{
    sl_registry_t *reg = registry();
    char *errors = NULL;
    sl_workflow_t *wf = load(reg,
                             "version: '1'\n"
                             "name: 5\n"
                             "description: true\n"
                             "steps:\n"
                             "  a: { uses: test.noop, description: 1.5, retry: '3' }\n"
                             "  b: { uses: test.noop, description: 'x', retry: 4 }\n",
                             &errors);
    CHECK(wf == NULL);
    CHECK_STR(errors, "1:10: 'version' expects the integer 1, got a string\n"
                      "2:7: 'name' expects a string, got an integer\n"
                      "3:14: 'description' expects a string, got a boolean\n"
                      "5:38: 'description' expects a string, got a number\n"
                      "5:50: 'retry' expects a map {attempts, backoff, max_backoff} or an "
                      "integer, got a string\n");
    sl__free(errors);
    wf = load(reg, "version: 3\nsteps: { a: { uses: test.noop } }\n", &errors);
    CHECK(wf == NULL);
    CHECK_STR(errors, "1:10: unsupported version 3 (the only version is 1)\n");
    sl__free(errors);
    sl__registry_free(reg);
}

/* A literal `script` resolves against the workflow's folder; an expression is not checked. */
static void test_lua_script(void)
{
    char dir[] = "/tmp/sluice-loader-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *script = sl__asprintf("%s/ok.lua", dir), *wf_path = sl__asprintf("%s/wf.yaml", dir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    static const char text[] = "steps:\n"
                               "  a: { uses: lua, with: { script: ok.lua } }\n"
                               "  b: { uses: lua, with: { script: '${{ \"no.lua\" }}' } }\n"
                               "  c: { uses: lua, with: { script: no.lua } }\n";
    sl_registry_t *reg = registry();
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_workflow_t *wf = NULL;
    CHECK_INT(sl__workflow_load_text(wf_path, text, strlen(text), reg, &wf, &diag), SL_EINVAL);
    CHECK_INT(diag.count, 1);
    if (diag.count == 1) {
        char *expected = sl__asprintf("script 'no.lua' not found (looked in %s/no.lua)", dir);
        CHECK_STR(diag.items[0].message, expected);
        CHECK_INT(diag.items[0].mark.line, 4);
        sl__free(expected);
    }
    sl__diag_close(&diag);
    sl__registry_free(reg);
    remove(script);
    rmdir(dir);
    sl__free(script);
    sl__free(wf_path);
}

static void test_stream_rules(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf =
        load(reg,
             "steps:\n"
             "  list: { uses: test.noop }\n"
             "  each: { uses: test.noop, foreach: [1, 2] }\n"
             "  s1: { uses: test.noop, foreach: '${{ steps.list }}' }\n"
             "  s2: { uses: test.noop, foreach: '${{ steps.each }}' }\n"
             "  s3: { uses: test.noop, foreach: '${{ steps.each }}', needs: each }\n"
             "  s4: { uses: test.noop, foreach: '${{ steps.each }}',\n"
             "        if: '${{ #steps.each > 0 }}' }\n",
             NULL);
    CHECK(wf != NULL);
    if (wf) {
        CHECK_INT(wf->steps[2].stream_from, SL_NO_STEP); /* list has no foreach */
        CHECK_INT(wf->steps[3].stream_from, 1);
        CHECK_INT(wf->steps[4].stream_from, SL_NO_STEP); /* needs all of it */
        CHECK_INT(wf->steps[5].stream_from, SL_NO_STEP); /* `if` reads all of it */
    }
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

static void test_missing_file(void)
{
    sl_registry_t *reg = registry();
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_workflow_t *wf = NULL;
    CHECK_INT(sl__workflow_load("/nonexistent/wf.yaml", reg, &wf, &diag), SL_EINVAL);
    CHECK(wf == NULL);
    CHECK_INT(diag.count, 1);
    CHECK_STR(diag.items[0].message, "cannot read: No such file or directory");
    CHECK_INT(diag.items[0].mark.line, 0);
    sl__diag_close(&diag);
    sl__registry_free(reg);
}

static char *chain_text(size_t n, bool expressions)
{
    sl_buf_t b;
    sl__buf_init(&b, (size_t)1 << 30);
    sl__buf_addf(&b, "steps:\n  s0: { uses: test.noop }\n");
    for (size_t i = 1; i < n; i++) {
        if (expressions)
            sl__buf_addf(&b, "  s%zu: { uses: test.noop, with: { value: '${{ steps.s%zu }}' } }\n",
                         i, i - 1);
        else
            sl__buf_addf(&b, "  s%zu: { uses: test.noop, needs: s%zu }\n", i, i - 1);
    }
    return sl__buf_take(&b, NULL);
}

static void load_chain(bool expressions)
{
    sl_registry_t *reg = registry();
    size_t n = 100000;
    char *text = chain_text(n, expressions);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sl_workflow_t *wf = load(reg, text, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "  %zu steps (%s) loaded in %.2fs\n", n, expressions ? "expressions" : "needs",
            seconds);
    CHECK(wf != NULL); /* no time bound here: speed is bench/'s; a quadratic load of
                          100,000 steps would still trip the test's timeout */
    if (wf) {
        CHECK_INT(wf->step_count, n);
        CHECK_INT(wf->steps[n - 1].deps[0], n - 2);
    }
    sl__workflow_free(wf);
    sl__free(text);
    sl__registry_free(reg);
}

static void test_100k_chain_needs(void)
{
    load_chain(false);
}

static void test_100k_chain_expressions(void)
{
    load_chain(true);
}

/* limits.http.proxy's ${{ env.NAME }}: expanded, percent-encoded inside credentials. */
static void test_env_expand(void)
{
    char err[160];
    char *out = NULL;
    setenv("SLUICE_T_PASS", "p@ss:w/rd", 1);
    setenv("SLUICE_T_HOST", "proxy.example:3128", 1);
    CHECK_INT(sl__loader_env_expand("http://u:${{ env.SLUICE_T_PASS }}@${{env.SLUICE_T_HOST}}",
                                      &out, err, sizeof(err)), 0);
    CHECK_STR(out, "http://u:p%40ss%3Aw%2Frd@proxy.example:3128");
    sl__free(out);
    out = NULL;
    CHECK_INT(sl__loader_env_expand("${{ env.SLUICE_T_HOST }}", &out, err, sizeof(err)), 0);
    CHECK_STR(out, "proxy.example:3128");
    sl__free(out);
    unsetenv("SLUICE_T_GONE");
    CHECK_INT(sl__loader_env_expand("http://u:${{ env.SLUICE_T_GONE }}@h:1", NULL, err,
                                      sizeof(err)), 0); /* only the form is checked */
    CHECK_INT(sl__loader_env_expand("http://u:${{ env.SLUICE_T_GONE }}@h:1", &out, err,
                                      sizeof(err)), SL_ENOTFOUND);
    CHECK_STR(err, "the environment variable SLUICE_T_GONE is not set");
    CHECK_INT(sl__loader_env_expand("http://${{ vars.x }}@h:1", NULL, err, sizeof(err)),
              SL_EINVAL);
    CHECK_STR(err, "only ${{ env.NAME }} expressions are allowed here");
    CHECK_INT(sl__loader_env_expand("http://${{ env.X", NULL, err, sizeof(err)), SL_EINVAL);
}

/* limits.http's transport keys reach the workflow; the proxy stays unexpanded. */
static void test_http_transport_limits(void)
{
    sl_registry_t *reg = registry();
    char *errors = NULL;
    sl_workflow_t *wf = load(reg,
                             "limits:\n"
                             "  http: { h2c: true, max_streams: 64,\n"
                             "          proxy: \"socks5h://u:${{ env.P }}@127.0.0.1:1080\" }\n"
                             "steps: { a: { uses: test.noop } }\n",
                             &errors);
    CHECK(wf != NULL);
    if (wf) {
        CHECK(wf->limits.http_h2c);
        CHECK_INT(wf->limits.http_max_streams, 64);
        CHECK_STR(wf->limits.http_proxy, "socks5h://u:${{ env.P }}@127.0.0.1:1080");
        CHECK(wf->limits.http_ca_file == NULL);
    }
    sl__free(errors);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

static void test_alloc_failures(void)
{
    sl_registry_t *reg = registry();
    for (uint64_t n = 1; n < 400; n++) {
        sl_diag_t diag;
        sl__diag_init(&diag);
        sl_workflow_t *wf = NULL;
        sl__alloc_fail_at(n);
        int rc = sl__workflow_load_text("wf.yaml", valid_text, strlen(valid_text), reg, &wf, &diag);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || rc == SL_ENOMEM || rc == SL_EINVAL);
        CHECK((rc == 0) == (wf != NULL));
        sl__workflow_free(wf);
        sl__diag_close(&diag);
    }
    sl__registry_free(reg);
}

TEST_MAIN(60, T(test_valid), T(test_sections), T(test_set_var), T(test_all_problems_at_once),
          T(test_one_pass), T(test_field_types), T(test_lua_script), T(test_stream_rules),
          T(test_missing_file), T(test_100k_chain_needs), T(test_100k_chain_expressions),
          T(test_env_expand), T(test_http_transport_limits), T(test_alloc_failures))
