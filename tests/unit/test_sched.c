/* sched/: runs real workflows (test plugins built by the build) on a real libuv loop. */
#include <uv.h>

#include "loader/workflow.h"
#include "plugin/registry.h"
#include "sched/sched.h"
#include "engine.h"
#include "test.h"

static sl_registry_t *registry(void)
{
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
    CHECK_INT(sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/tests/plugins", &diag), 0);
    CHECK_INT(sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/plugins", &diag), 0);
    CHECK_INT(diag.count, 0);
    sl__diag_close(&diag);
    return reg;
}

static sl_workflow_t *load(const sl_registry_t *reg, const char *text)
{
    sl_workflow_t *wf = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    int rc = sl__workflow_load_text("t.yaml", text, strlen(text), reg, &wf, &diag);
    if (rc != 0)
        sl__diag_print(&diag, stderr);
    CHECK_INT(rc, 0);
    sl__diag_close(&diag);
    return wf;
}

static void on_done(sl_run_t *run, void *ud)
{
    *(int *)ud += 1;
}

/* Runs to the end; returns the run (free it) or NULL if it could not be made. */
static sl_run_t *run_to_end(uv_loop_t *loop, const sl_workflow_t *wf, int *done_calls)
{
    sl_run_t *run = NULL;
    sl_run_opts_t opts = {.run_id = "test"};
    if (sl__run_new(loop, wf, &opts, &run) < 0)
        return NULL;
    CHECK_INT(sl__run_start(run, on_done, done_calls), 0);
    CHECK_INT(*done_calls, 0); /* never called from start */
    uv_run(loop, UV_RUN_DEFAULT);
    return run;
}

static const char DAG[] = "steps:\n"
                          "  a: { uses: test.noop, with: { value: 20 } }\n"
                          "  b: { uses: test.echo, foreach: [1, 2, 3], "
                          "with: { v: \"${{ item * steps.a }}\" } }\n"
                          "  c: { uses: test.noop_cpu, with: { value: \"${{ len(steps.b) }}\" } }\n";

static void test_outputs_in_order(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, DAG);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int done = 0;
    sl_run_t *run = run_to_end(&loop, wf, &done);
    CHECK(run != NULL);
    CHECK_INT(done, 1);
    CHECK(sl__run_succeeded(run));
    const sl_value_t *b = sl__run_output(run, 1);
    CHECK_INT(sl_value_len(b), 3);
    CHECK_INT(sl_value_int_of(sl_value_get(sl_value_at(b, 2), "v")), 60);
    CHECK_INT(sl_value_int_of(sl__run_output(run, 2)), 3);
    const sl_step_stats_t *s = sl__run_step_stats(run, 1);
    CHECK_INT(s->ok, 3);
    CHECK_INT(s->total, 3);
    CHECK_INT(s->status, SL_STEP_DONE);
    sl__run_free(run);
    CHECK_INT(uv_loop_close(&loop), 0); /* every handle closed */
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

static void test_stop_before_start_drains(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, "steps:\n  nap: { uses: test.sleep, foreach: [50, 50], "
                                  "with: { ms: \"${{ item }}\" } }\n"
                                  "  after: { uses: test.noop, needs: [nap] }\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_run_t *run = NULL;
    sl_run_opts_t opts = {0};
    int done = 0;
    CHECK_INT(sl__run_new(&loop, wf, &opts, &run), 0);
    sl__run_start(run, on_done, &done);
    sl__run_stop(run, false); /* nothing was dispatched yet: nothing runs */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(done, 1);
    CHECK(!sl__run_succeeded(run));
    CHECK(sl__run_stopped(run));
    CHECK_INT(sl__run_step_stats(run, 0)->ok, 0);
    CHECK_INT(sl__run_step_stats(run, 1)->status, SL_STEP_CANCELED);
    sl__run_free(run);
    CHECK_INT(uv_loop_close(&loop), 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

static void test_inflight_cap(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, "steps:\n  nap: { uses: test.sleep, "
                                  "foreach: \"${{ range(1, 50) }}\", with: { ms: 5 } }\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_run_t *run = NULL;
    sl_run_opts_t opts = {.inflight_max = 7};
    int done = 0;
    CHECK_INT(sl__run_new(&loop, wf, &opts, &run), 0);
    sl__run_start(run, on_done, &done);
    size_t most = 0;
    while (uv_run(&loop, UV_RUN_ONCE) && !done) {
        size_t now = sl__run_step_stats(run, 0)->inflight;
        most = now > most ? now : most;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(done, 1);
    CHECK(most <= 7);
    CHECK(most >= 2); /* it did run things concurrently */
    CHECK_INT(sl__run_step_stats(run, 0)->ok, 50);
    sl__run_free(run);
    CHECK_INT(uv_loop_close(&loop), 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

/* A root step that ends at once activates its dependant inside sl__run_start's loop;
 * the loop must not activate it a second time when it gets there. */
static void test_activated_once(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, "steps:\n  a: { uses: test.noop, if: false }\n"
                                  "  b: { uses: test.noop, needs: [a], with: { value: 1 } }\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    int done = 0;
    sl_run_t *run = run_to_end(&loop, wf, &done);
    CHECK_INT(sl__run_step_stats(run, 0)->status, SL_STEP_SKIPPED);
    CHECK_INT(sl__run_step_stats(run, 1)->ok, 1);
    CHECK_INT(sl__run_step_stats(run, 1)->total, 1);
    CHECK(sl__run_succeeded(run));
    sl__run_free(run);
    CHECK_INT(uv_loop_close(&loop), 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

/* Allocation n fails, for every n: the run ends (or cannot start), no crash or leak. */
static void test_allocation_failures(void)
{
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, DAG);
    int completed = 0;
    sl__log_setup(SL_LOG_ERROR + 1, SL_LOGFMT_TEXT); /* the failures are expected */
    for (uint64_t n = 1; n < 400; n++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        int done = 0;
        sl__alloc_fail_at(n);
        sl_run_t *run = run_to_end(&loop, wf, &done);
        sl__alloc_fail_at(0);
        if (run) {
            CHECK_INT(done, 1);
            completed += sl__run_succeeded(run);
            sl__run_free(run);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_INT(uv_loop_close(&loop), 0);
    }
    CHECK(completed > 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

TEST_MAIN(60, T(test_outputs_in_order), T(test_stop_before_start_drains), T(test_inflight_cap), T(test_activated_once),
          T(test_allocation_failures))
