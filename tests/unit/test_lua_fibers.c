/*
 * lua/fiber.c, group.c, fs.c: Lua steps with sluice.gather, sluice.map, sluice.fs and
 * sluice.sleep, run on a real loop: results, cancellation mid-flight and allocation
 * failures (every handle closed, no work left behind, no leak under ASan).
 * lua/script.c and step.c: a script read off the loop once for all the tasks that need
 * it, and tasks canceled (or their VM freed) while it is read.
 */
#include <stdlib.h>
#include <uv.h>

#include "loader/workflow.h"
#include "lua/script.h"
#include "sched/internal.h"
#include "plugin/registry.h"
#include "sched/sched.h"
#include "engine.h"
#include "test.h"

static char workdir[] = "/tmp/sluice-test-lua-fibers.XXXXXX";

static sl_registry_t *registry(void)
{
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
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
    (void)run;
    *(int *)ud += 1;
}

/* Each test works in a folder of its own (fs paths are relative to it). */
static void enter_workdir(void)
{
    CHECK(mkdtemp(workdir) != NULL);
    CHECK_INT(chdir(workdir), 0);
}

static void leave_workdir(void)
{
    char command[128];
    CHECK_INT(chdir("/"), 0);
    snprintf(command, sizeof(command), "rm -rf '%s'", workdir);
    CHECK_INT(system(command), 0);
}

static const char FIBERS[] =
    "steps:\n"
    "  work:\n"
    "    uses: lua\n"
    "    with:\n"
    "      code: |\n"
    "        local a, b = sluice.gather(\n"
    "          function() sluice.sleep(0.002) return 'a' end,\n"
    "          function() return sluice.fs.write('out/x.json', { n = 1 }) end)\n"
    "        local m = sluice.map(range(1, 6), function(i)\n"
    "          if i % 2 == 0 then sluice.sleep(0.001) end\n"
    "          return i * 2\n"
    "        end, { concurrency = 3 })\n"
    "        local text = sluice.fs.read('out/x.json')\n"
    "        local ok = pcall(sluice.gather, function() sluice.sleep(1) end,\n"
    "                         function() error('x') end)\n"
    "        return { a = a, b = b, m = m, text = text, ok = ok }\n";

static void test_results(void)
{
    enter_workdir();
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, FIBERS);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_run_t *run = NULL;
    sl_run_opts_t opts = {.run_id = "test"};
    int done = 0;
    CHECK_INT(sl__run_new(&loop, wf, &opts, &run), 0);
    CHECK_INT(sl__run_start(run, on_done, &done), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(done, 1);
    CHECK(sl__run_succeeded(run));
    const sl_value_t *out = sl__run_output(run, 0);
    CHECK_STR(sl_value_str(sl_value_get(out, "a"), NULL), "a");
    CHECK_INT(sl_value_int_of(sl_value_get(out, "b")), 8);
    const sl_value_t *m = sl_value_get(out, "m");
    CHECK_INT(sl_value_len(m), 6);
    for (size_t i = 0; i < 6; i++)
        CHECK_INT(sl_value_int_of(sl_value_at(m, i)), (int64_t)(i + 1) * 2);
    CHECK_STR(sl_value_str(sl_value_get(out, "text"), NULL), "{\"n\":1}\n");
    CHECK(!sl_value_truthy(sl_value_get(out, "ok")));
    sl__run_free(run);
    CHECK_INT(uv_loop_close(&loop), 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
    leave_workdir();
}

static void on_stop_timer(uv_timer_t *timer)
{
    sl__run_stop(timer->data, true);
    uv_close((uv_handle_t *)timer, NULL);
}

/* Canceling the run while fibers wait on sleeps, file work and nested groups. */
static void test_cancel_in_flight(void)
{
    enter_workdir();
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(
        reg, "steps:\n"
             "  wait:\n"
             "    uses: lua\n"
             "    foreach: \"${{ range(1, 4) }}\"\n"
             "    with:\n"
             "      code: |\n"
             "        local data = string.rep('z', 4 * 1024 * 1024)\n"
             "        return sluice.map(range(1, 8), function(i)\n"
             "          return sluice.gather(\n"
             "            function() sluice.sleep(30) end,\n"
             "            function() for k = 1, 1000 do sluice.fs.write('out/' .. item .. '-' "
             ".. i, data) end end,\n"
             "            function() while true do end end)\n"
             "        end)\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_run_t *run = NULL;
    sl_run_opts_t opts = {.run_id = "test"};
    int done = 0;
    CHECK_INT(sl__run_new(&loop, wf, &opts, &run), 0);
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    stop.data = run;
    uv_timer_start(&stop, on_stop_timer, 100, 0);
    CHECK_INT(sl__run_start(run, on_done, &done), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(done, 1);
    CHECK(!sl__run_succeeded(run));
    sl__run_free(run);
    CHECK_INT(uv_loop_close(&loop), 0); /* no timer, request or work left */
    sl__workflow_free(wf);
    sl__registry_free(reg);
    leave_workdir();
}

/* Allocation n fails, for every n: the run ends (or cannot start), no crash or leak. */
static void test_allocation_failures(void)
{
    enter_workdir();
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, FIBERS);
    int completed = 0;
    sl__log_setup(SL_LOG_ERROR + 1, SL_LOGFMT_TEXT); /* the failures are expected */
    for (uint64_t n = 1; n < 6000; n += n < 1500 ? 1 : 7) { /* every one, then a sample */
        uv_loop_t loop;
        uv_loop_init(&loop);
        int done = 0;
        sl_run_t *run = NULL;
        sl_run_opts_t opts = {.run_id = "test"};
        sl__alloc_fail_at(n);
        if (sl__run_new(&loop, wf, &opts, &run) == 0) {
            if (sl__run_start(run, on_done, &done) == 0)
                uv_run(&loop, UV_RUN_DEFAULT);
            sl__alloc_fail_at(0);
            completed += done == 1 && sl__run_succeeded(run);
            sl__run_free(run);
        }
        sl__alloc_fail_at(0);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_INT(uv_loop_close(&loop), 0);
    }
    CHECK(completed > 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
    leave_workdir();
}

/* ---- scripts ------------------------------------------------------------------------ */

/* Holds libuv's only threadpool thread (UV_THREADPOOL_SIZE=1, set before the pool
 * starts) until released, so a script read queued meanwhile waits and every task of a
 * foreach starts while it does. */
typedef struct blocker {
    uv_work_t work;
    uv_sem_t release;
    bool released;
} blocker_t;

static void block_work(uv_work_t *req)
{
    blocker_t *b = req->data;
    uv_sem_wait(&b->release);
}

static void block_done(uv_work_t *req, int status)
{
    (void)req;
    (void)status;
}

static void block_start(uv_loop_t *loop, blocker_t *b)
{
    CHECK_INT(uv_sem_init(&b->release, 0), 0);
    b->released = false;
    b->work.data = b;
    CHECK_INT(uv_queue_work(loop, &b->work, block_work, block_done), 0);
}

static void block_release(blocker_t *b)
{
    if (!b->released)
        uv_sem_post(&b->release);
    b->released = true;
}

static void write_file(const char *path, const char *text)
{
    FILE *out = fopen(path, "w");
    CHECK(out != NULL);
    fputs(text, out);
    fclose(out);
}

static const char SHARED_SCRIPT[] = "#!/usr/bin/env lua\n"
                                    "function run(args, ctx) return (ctx.index or 1) * args.k end\n";

/* Two foreach steps of 100 items and a later step, all of one script: tasks that start
 * while the script is read wait for that read, and later ones find it compiled. */
static const char SHARED[] = "steps:\n"
                             "  a:\n"
                             "    uses: lua\n"
                             "    foreach: \"${{ range(1, 100) }}\"\n"
                             "    with: { script: shared.lua, k: 2 }\n"
                             "  b:\n"
                             "    uses: lua\n"
                             "    foreach: \"${{ range(1, 100) }}\"\n"
                             "    with: { script: shared.lua, k: 3 }\n"
                             "  c:\n"
                             "    uses: lua\n"
                             "    needs: [a, b]\n"
                             "    with: { script: shared.lua, k: 5 }\n";

typedef struct script_test {
    uv_loop_t loop;
    sl_registry_t *reg;
    sl_workflow_t *wf;
    sl_run_t *run;
    blocker_t blocker;
    uv_timer_t timer;
    int done;
    uint64_t reads_before;
} script_test_t;

/* A run of SHARED with the threadpool held; `on_timer` fires after 50 ms. */
static void script_test_start(script_test_t *t, uv_timer_cb on_timer)
{
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    enter_workdir();
    write_file("shared.lua", SHARED_SCRIPT);
    t->reg = registry();
    t->wf = load(t->reg, SHARED);
    uv_loop_init(&t->loop);
    sl_run_opts_t opts = {.run_id = "test"};
    t->done = 0;
    CHECK_INT(sl__run_new(&t->loop, t->wf, &opts, &t->run), 0);
    block_start(&t->loop, &t->blocker);
    uv_timer_init(&t->loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, on_timer, 50, 0);
    t->reads_before = sl__script_read_count();
    CHECK_INT(sl__run_start(t->run, on_done, &t->done), 0);
}

static void script_test_end(script_test_t *t)
{
    CHECK_INT(uv_loop_close(&t->loop), 0); /* no timer, request or work left */
    sl__workflow_free(t->wf);
    sl__registry_free(t->reg);
    leave_workdir();
}

static void on_release(uv_timer_t *timer)
{
    script_test_t *t = timer->data;
    /* Every task of a and b has started by now, and waits for the one read. */
    CHECK_INT(sl__run_step_stats(t->run, 0)->inflight, 100);
    CHECK_INT(sl__run_step_stats(t->run, 1)->inflight, 100);
    CHECK_INT(sl__script_read_count() - t->reads_before, 0);
    block_release(&t->blocker);
    uv_close((uv_handle_t *)timer, NULL);
}

/* 201 tasks of one script: the file is read once. */
static void test_script_read_once(void)
{
    script_test_t t;
    script_test_start(&t, on_release);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    CHECK_INT(t.done, 1);
    CHECK(sl__run_succeeded(t.run));
    CHECK_INT(sl__script_read_count() - t.reads_before, 1);
    const sl_value_t *a = sl__run_output(t.run, 0), *b = sl__run_output(t.run, 1);
    CHECK_INT(sl_value_len(a), 100);
    CHECK_INT(sl_value_len(b), 100);
    for (size_t i = 0; i < 100; i++) {
        CHECK_INT(sl_value_int_of(sl_value_at(a, i)), (int64_t)(i + 1) * 2);
        CHECK_INT(sl_value_int_of(sl_value_at(b, i)), (int64_t)(i + 1) * 3);
    }
    CHECK_INT(sl_value_int_of(sl__run_output(t.run, 2)), 5); /* compiled already: no read */
    sl__run_free(t.run);
    script_test_end(&t);
}

static void on_cancel_waiting(uv_timer_t *timer)
{
    script_test_t *t = timer->data;
    sl__run_stop(t->run, true); /* the waiters end; the read, still queued, is called off */
    block_release(&t->blocker);
    uv_close((uv_handle_t *)timer, NULL);
}

/* The run is canceled while its tasks wait for the script: each completes once, canceled,
 * and the read that was still queued never runs. */
static void test_script_read_canceled(void)
{
    script_test_t t;
    script_test_start(&t, on_cancel_waiting);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    CHECK_INT(t.done, 1);
    CHECK(!sl__run_succeeded(t.run));
    for (size_t step = 0; step < 2; step++) {
        const sl_step_stats_t *stats = sl__run_step_stats(t.run, step);
        CHECK_INT(stats->ok, 0);
        CHECK_INT(stats->inflight, 0);
    }
    CHECK_INT(sl__script_read_count() - t.reads_before, 0);
    sl__run_free(t.run);
    script_test_end(&t);
}

static void on_stop_loop(uv_timer_t *timer)
{
    script_test_t *t = timer->data;
    uv_close((uv_handle_t *)timer, NULL);
    uv_stop(&t->loop);
}

/* The run (and its VM) is freed while its tasks wait for the script: they are let go,
 * and the read reports later to no VM without touching freed memory. */
static void test_script_vm_freed_during_read(void)
{
    script_test_t t;
    script_test_start(&t, on_stop_loop);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    CHECK_INT(t.done, 0);
    /* sl__run_free leaves the tasks of a run freed mid-flight to their kinds (an IO kind
     * may still hold one); the lua kind lets go of its own as the VM goes, so they are
     * freed here afterwards, and LeakSanitizer judges the lua kind alone. */
    size_t live_count = 0;
    sl_task_t *live[256];
    for (sl_task_t *task = t.run->live; task && live_count < 256; task = task->next) {
        CHECK(!task->timer_inited);
        live[live_count++] = task;
    }
    CHECK_INT(live_count, 200);
    sl__run_free(t.run); /* the threadpool is still held: the read is pending */
    block_release(&t.blocker);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    CHECK_INT(t.done, 0);
    for (size_t i = 0; i < live_count; i++) {
        sl_value_free(live[i]->owned_args);
        sl__free(live[i]);
    }
    script_test_end(&t);
}

/* Allocation n fails, for every n, in a run whose tasks share a script read: no crash,
 * no leak, no work left behind. */
static void test_script_allocation_failures(void)
{
    enter_workdir();
    write_file("shared.lua", SHARED_SCRIPT);
    sl_registry_t *reg = registry();
    sl_workflow_t *wf = load(reg, "steps:\n"
                                  "  a:\n"
                                  "    uses: lua\n"
                                  "    foreach: [1, 2, 3]\n"
                                  "    with: { script: shared.lua, k: 2 }\n"
                                  "  b:\n"
                                  "    uses: lua\n"
                                  "    needs: [a]\n"
                                  "    with: { script: shared.lua, k: 3 }\n");
    int completed = 0;
    sl__log_setup(SL_LOG_ERROR + 1, SL_LOGFMT_TEXT); /* the failures are expected */
    for (uint64_t n = 1; n < 3000; n += n < 1000 ? 1 : 5) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        int done = 0;
        sl_run_t *run = NULL;
        sl_run_opts_t opts = {.run_id = "test"};
        sl__alloc_fail_at(n);
        if (sl__run_new(&loop, wf, &opts, &run) == 0) {
            if (sl__run_start(run, on_done, &done) == 0)
                uv_run(&loop, UV_RUN_DEFAULT);
            sl__alloc_fail_at(0);
            completed += done == 1 && sl__run_succeeded(run);
            sl__run_free(run);
        }
        sl__alloc_fail_at(0);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_INT(uv_loop_close(&loop), 0);
    }
    CHECK(completed > 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
    leave_workdir();
}

TEST_MAIN(120, T(test_results), T(test_cancel_in_flight), T(test_allocation_failures),
          T(test_script_read_once), T(test_script_read_canceled),
          T(test_script_vm_freed_during_read), T(test_script_allocation_failures))
