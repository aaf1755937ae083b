/*
 * pool/: real worker processes (the built sluice binary's `__worker` command) running
 * the test plugins' CPU kinds. Checks what comes back, how faults end, and that nothing
 * is left behind: no child process, no file descriptor.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <uv.h>

#include "loader/workflow.h"
#include "plugin/registry.h"
#include "pool/pool.h"
#include "sched/sched.h"
#include "engine.h"
#include "test.h"

#define SLUICE_EXE SLUICE_BINARY_DIR "/sluice"

typedef struct outcome {
    sl_pool_job_t job;
    bool ended, ok;
    int code;
    char message[256];
    sl_value_t *output;
} outcome_t;

static int logs_seen;

static outcome_t *outcome_of(sl_pool_job_t *job)
{
    return (outcome_t *)(void *)job;
}

static void on_done(sl_pool_job_t *job, sl_value_t *output)
{
    outcome_t *o = outcome_of(job);
    CHECK(!o->ended);
    o->ended = o->ok = true;
    o->output = output;
}

static void on_fail(sl_pool_job_t *job, int code, const char *message, int64_t retry_after_ms)
{
    outcome_t *o = outcome_of(job);
    CHECK(!o->ended);
    o->ended = true;
    o->code = code;
    snprintf(o->message, sizeof(o->message), "%s", message);
}

static void on_log(sl_pool_job_t *job, int level, const char *message)
{
    logs_seen++;
}

static const sl_pool_cbs_t cbs = {on_done, on_fail, on_log};

static size_t count_dir(const char *path)
{
    size_t n = 0;
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* Processes whose parent is this one (zombies included), from /proc. */
static size_t count_children(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        const char *close_paren = strrchr(buf, ')'); /* the name may hold spaces */
        char state;
        long ppid;
        if (close_paren && sscanf(close_paren + 1, " %c %ld", &state, &ppid) == 2 &&
            ppid == (long)getpid())
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

static void setup(void)
{
    setenv("SLUICE_PLUGIN_PATH", SLUICE_BINARY_DIR "/tests/plugins", 1);
    /* the faults are expected; TEST_LOG=1 shows the pool's log */
    sl__log_setup(getenv("TEST_LOG") ? SL_LOG_DEBUG : SL_LOG_ERROR + 1, SL_LOGFMT_TEXT);
}

static sl_pool_t *new_pool(uv_loop_t *loop, uint32_t workers, uint64_t memory)
{
    sl_pool_opts_t opts = {.workers = workers, .memory_bytes = memory, .exe = SLUICE_EXE};
    sl_pool_t *pool = NULL;
    CHECK_INT(sl__pool_new(loop, &opts, &cbs, &pool), 0);
    return pool;
}

static void close_pool(uv_loop_t *loop, sl_pool_t *pool)
{
    sl__pool_close(pool);
    while (!sl__pool_closed(pool))
        uv_run(loop, UV_RUN_ONCE);
    sl__pool_free(pool);
}

/* Runs the loop until every outcome has ended. */
static void wait_all(uv_loop_t *loop, outcome_t *outs, size_t n)
{
    size_t ended = 0;
    while (ended < n) {
        uv_run(loop, UV_RUN_ONCE);
        ended = 0;
        for (size_t i = 0; i < n; i++)
            ended += outs[i].ended;
    }
}

static void submit(sl_pool_t *pool, outcome_t *o, const char *kind, const sl_value_t *args)
{
    memset(o, 0, sizeof(*o));
    o->job.kind = kind;
    o->job.args = args;
    o->job.attempt = 1;
    sl__pool_submit(pool, &o->job);
}

static void clear_outcomes(outcome_t *outs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sl_value_free(outs[i].output);
}

static void test_start_stop(void)
{
    setup();
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_pool_t *pool = new_pool(&loop, 3, 0);
    CHECK_INT(count_children(), 3);
    close_pool(&loop, pool);
    CHECK_INT(count_children(), 0);
    /* Again, now that libuv's SIGCHLD machinery exists: the fds must come back exactly. */
    size_t fds = count_dir("/proc/self/fd");
    pool = new_pool(&loop, 2, 0);
    sl_pool_stats_t stats;
    sl__pool_stats(pool, &stats);
    CHECK_INT(stats.workers, 2);
    CHECK_INT(stats.started, 2);
    close_pool(&loop, pool);
    CHECK_INT(count_dir("/proc/self/fd"), fds);
    CHECK_INT(count_children(), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* An args map with NUL bytes in a string and nested containers, different per task. */
static sl_value_t *make_args(size_t i)
{
    char text[64];
    int len = snprintf(text, sizeof(text), "item %zu end", i);
    text[4] = text[len - 4] = '\0'; /* NUL bytes inside */
    sl_value_t *args = sl_value_map();
    sl_value_t *nested = sl_value_map();
    sl_value_t *list = sl_value_list();
    sl_value_push(list, sl_value_int((int64_t)i));
    sl_value_push(list, sl_value_number((double)i / 4));
    sl_value_push(list, sl_value_bool(i % 2));
    sl_value_push(list, sl_value_nil());
    sl_value_set(nested, "list", list);
    sl_value_set(nested, "deep", sl_value_map());
    sl_value_set(args, "text", sl_value_string(text, (size_t)len));
    sl_value_set(args, "nested", nested);
    return args;
}

static void test_round_trip_many(void)
{
    setup();
    enum { N = 10000 };
    uv_loop_t loop;
    uv_loop_init(&loop);
    outcome_t *outs = calloc(N, sizeof(*outs));
    sl_value_t **args = calloc(N, sizeof(*args));
    uint64_t task_ns = 0;
    sl_pool_t *pool = new_pool(&loop, 2, 0);
    for (size_t i = 0; i < N; i++) {
        args[i] = make_args(i);
        submit(pool, &outs[i], "test.cpu_echo", args[i]);
        outs[i].job.task_ns = &task_ns;
    }
    wait_all(&loop, outs, N);
    size_t ok = 0;
    for (size_t i = 0; i < N; i++) {
        bool same = outs[i].ok && sl_value_equal(outs[i].output, args[i]);
        if (!same && ok == i)
            fprintf(stderr, "  task %zu: %s\n", i, outs[i].ok ? "differs" : outs[i].message);
        ok += same;
    }
    CHECK_INT(ok, N);
    CHECK(task_ns > 0);
    sl_pool_stats_t stats;
    sl__pool_stats(pool, &stats);
    CHECK_INT(stats.tasks, N);
    CHECK(stats.batches < N / 4); /* tiny tasks went in batches */
    CHECK_INT(stats.respawned, 0);
    close_pool(&loop, pool);
    for (size_t i = 0; i < N; i++)
        sl_value_free(args[i]);
    clear_outcomes(outs, N);
    free(outs);
    free(args);
    CHECK_INT(count_children(), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* One task of `kind` among echo tasks: only it fails, with `expected` in its message. */
static void fault_among_others(const char *kind, const char *expected, int64_t timeout_ms)
{
    enum { N = 40, BAD = 17 };
    uv_loop_t loop;
    uv_loop_init(&loop);
    outcome_t outs[N];
    sl_value_t *args = sl_value_map();
    sl_value_set(args, "value", sl_value_cstring("fine"));
    sl_pool_t *pool = new_pool(&loop, 2, 0);
    for (size_t i = 0; i < N; i++) {
        submit(pool, &outs[i], i == BAD ? kind : "test.cpu_echo", args);
        outs[i].job.timeout_ms = timeout_ms;
    }
    wait_all(&loop, outs, N);
    for (size_t i = 0; i < N; i++) {
        if (i == BAD) {
            CHECK(!outs[i].ok);
            CHECK_CONTAINS(outs[i].message, expected);
        } else {
            CHECK(outs[i].ok);
        }
    }
    sl_pool_stats_t stats;
    sl__pool_stats(pool, &stats);
    CHECK_INT(stats.respawned, 1);
    CHECK_INT(stats.causes[0].count, 1);
    close_pool(&loop, pool);
    clear_outcomes(outs, N);
    sl_value_free(args);
    CHECK_INT(count_children(), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_crash(void)
{
    setup();
    fault_among_others("test.crash", "killed by SIGSEGV while running this task", 0);
}

static void test_abort(void)
{
    setup();
    fault_among_others("test.abort", "killed by SIGABRT while running this task", 0);
}

static void test_exit(void)
{
    setup();
    fault_among_others("test.exit", "exited with status 3 while running this task", 0);
}

static void test_spin_timeout(void)
{
    setup();
    fault_among_others("test.spin", "timed out after 0.2s", 200);
}

static void test_memory_limit(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return; /* ASan's reserved address space makes any RLIMIT_AS unusable */
#endif
    setup();
    uv_loop_t loop;
    uv_loop_init(&loop);
    outcome_t outs[2];
    sl_value_t *args = sl_value_map();
    sl_pool_t *pool = new_pool(&loop, 1, 256u << 20);
    submit(pool, &outs[0], "test.hog", args);
    submit(pool, &outs[1], "test.pid", args);
    wait_all(&loop, outs, 2);
    CHECK(!outs[0].ok);
    CHECK_INT(outs[0].code, SL_ENOMEM);
    CHECK_CONTAINS(outs[0].message, "out of memory: limits.cpu.memory is 256 MiB (test.hog: "
                                     "malloc failed after ");
    CHECK(outs[1].ok); /* the worker survived it and goes on */
    close_pool(&loop, pool);
    clear_outcomes(outs, 2);
    sl_value_free(args);
    CHECK_INT(uv_loop_close(&loop), 0);
}

static void test_cancel(void)
{
    setup();
    uv_loop_t loop;
    uv_loop_init(&loop);
    outcome_t outs[3];
    sl_value_t *args = sl_value_map();
    sl_pool_t *pool = new_pool(&loop, 1, 0);
    submit(pool, &outs[0], "test.spin", args);
    while (outs[0].job.worker == NULL)
        uv_run(&loop, UV_RUN_ONCE); /* sent */
    submit(pool, &outs[1], "test.cpu_echo", args);
    submit(pool, &outs[2], "test.cpu_echo", args);
    CHECK(sl__pool_cancel(pool, &outs[2].job)); /* still queued: removed, no callback */
    CHECK(!sl__pool_cancel(pool, &outs[0].job)); /* running: its worker is killed */
    wait_all(&loop, outs, 2);
    CHECK_INT(outs[0].code, SL_ECANCELED);
    CHECK(outs[1].ok); /* queued behind it, run by the next worker */
    CHECK(!outs[2].ended);
    close_pool(&loop, pool);
    clear_outcomes(outs, 3);
    sl_value_free(args);
    CHECK_INT(count_children(), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* A worker binary that is not there: jobs fail with the reason, nothing hangs. */
static void test_missing_binary(void)
{
    setup();
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_pool_opts_t opts = {.workers = 2, .exe = SLUICE_BINARY_DIR "/no-such-sluice"};
    sl_pool_t *pool = NULL;
    CHECK_INT(sl__pool_new(&loop, &opts, &cbs, &pool), 0);
    outcome_t out;
    sl_value_t *args = sl_value_map();
    submit(pool, &out, "test.cpu_echo", args);
    wait_all(&loop, &out, 1);
    CHECK_CONTAINS(out.message, "cannot start a worker process");
    close_pool(&loop, pool);
    sl_value_free(args);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* Workers that die before running anything: three in a row stop the respawning. */
static void test_barren_workers(void)
{
    setup();
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_pool_opts_t opts = {.workers = 2, .exe = "/bin/false"}; /* exits 1 at once */
    sl_pool_t *pool = NULL;
    CHECK_INT(sl__pool_new(&loop, &opts, &cbs, &pool), 0);
    outcome_t outs[5];
    sl_value_t *args = sl_value_map();
    for (size_t i = 0; i < 5; i++)
        submit(pool, &outs[i], "test.cpu_echo", args);
    wait_all(&loop, outs, 5);
    for (size_t i = 0; i < 5; i++)
        CHECK_CONTAINS(outs[i].message, "worker processes keep dying before running any task");
    sl_pool_stats_t stats;
    sl__pool_stats(pool, &stats);
    CHECK(stats.started <= 4); /* the 2 first ones and at most 2 replacements */
    close_pool(&loop, pool);
    sl_value_free(args);
    CHECK_INT(count_children(), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* A worker that does not exit when its socket closes is killed after a grace period. */
static void test_close_kills_stuck(void)
{
    setup();
    char script[] = "/tmp/sluice-stuck-XXXXXX";
    int fd = mkstemp(script);
    CHECK(fd >= 0);
    const char body[] = "#!/bin/sh\nexec sleep 600\n";
    CHECK_INT(write(fd, body, sizeof(body) - 1), sizeof(body) - 1);
    close(fd);
    chmod(script, 0700);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_pool_opts_t opts = {.workers = 1, .exe = script};
    sl_pool_t *pool = NULL;
    CHECK_INT(sl__pool_new(&loop, &opts, &cbs, &pool), 0);
    CHECK_INT(count_children(), 1);
    close_pool(&loop, pool); /* returns after the grace period */
    CHECK_INT(count_children(), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
    unlink(script);
}

/* ---- through the scheduler ------------------------------------------------------------ */

static const char FOREACH_CRASH[] =
    "steps:\n"
    "  parse:\n"
    "    uses: json.parse\n"
    "    foreach: \"${{ range(1, 200) }}\"\n"
    "    with: { text: \"[${{ item }}, {\\\"k\\\": \\\"v\\\"}]\" }\n"
    "  crashy:\n"
    "    uses: test.crash\n"
    "    foreach: \"${{ range(1, 20) }}\"\n"
    "    on_error: continue\n"
    "    with: { when: \"${{ item == 7 }}\", value: \"${{ item }}\" }\n";

static void on_run_done(sl_run_t *run, void *ud)
{
    *(int *)ud += 1;
}

static void test_run_with_pool(void)
{
    setup();
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
    sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/tests/plugins", &diag);
    sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/plugins", &diag);
    sl_workflow_t *wf = NULL;
    CHECK_INT(sl__workflow_load_text("t.yaml", FOREACH_CRASH, strlen(FOREACH_CRASH), reg, &wf,
                                     &diag), 0);
    sl__diag_print(&diag, stderr);
    sl__diag_close(&diag);
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (int round = 0; round < 2; round++) {
        size_t fds = count_dir("/proc/self/fd");
        sl_run_t *run = NULL;
        sl_services_t *svc = NULL;
        sl_services_opts_t svc_opts = {.worker_exe = SLUICE_EXE, .registry = reg};
        CHECK_INT(sl__host_services_new(&loop, wf, &svc_opts, &svc), 0);
        sl_run_opts_t opts = {.run_id = "pool", .cpu = sl__host_executor(svc), .services = svc};
        int done = 0;
        CHECK_INT(sl__run_new(&loop, wf, &opts, &run), 0);
        CHECK_INT(sl__run_start(run, on_run_done, &done), 0);
        while (!done)
            uv_run(&loop, UV_RUN_ONCE);
        CHECK(sl__run_succeeded(run));
        CHECK_INT(sl__run_step_stats(run, 0)->ok, 200);
        CHECK_INT(sl__run_step_stats(run, 1)->ok, 19);
        CHECK_INT(sl__run_step_stats(run, 1)->failed, 1);
        const sl_value_t *parsed = sl__run_output(run, 0);
        CHECK_INT(sl_value_int_of(sl_value_at(sl_value_at(parsed, 199), 0)), 200);
        CHECK_INT(sl_value_int_of(sl_value_at(sl__run_output(run, 1), 19)), 20);
        sl_pool_stats_t stats;
        CHECK(sl__host_pool_stats(svc, &stats));
        CHECK_INT(stats.respawned, 1);
        CHECK_STR(stats.causes[0].name, "SIGSEGV");
        sl__host_services_close(svc);
        sl__run_free(run);
        sl__host_services_free(svc);
        CHECK_INT(count_children(), 0);
        if (round == 1) /* the first round made libuv's SIGCHLD pipe */
            CHECK_INT(count_dir("/proc/self/fd"), fds);
    }
    CHECK_INT(uv_loop_close(&loop), 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

/* Allocation n of the engine fails, for every n over a pooled run: it ends (or cannot
 * start), nothing crashes, leaks (under ASan) or is left running. */
static void test_allocation_failures(void)
{
    setup();
    sl_registry_t *reg = NULL;
    sl_diag_t diag;
    sl__diag_init(&diag);
    CHECK_INT(test_registry_new(&reg), 0);
    sl__registry_load_dir(reg, SLUICE_BINARY_DIR "/tests/plugins", &diag);
    static const char text[] = "steps:\n"
                               "  echo:\n"
                               "    uses: test.cpu_echo\n"
                               "    foreach: [1, 2, 3, 4, 5]\n"
                               "    with: { v: \"${{ item }}\", s: \"x${{ item }}\" }\n";
    sl_workflow_t *wf = NULL;
    CHECK_INT(sl__workflow_load_text("t.yaml", text, strlen(text), reg, &wf, &diag), 0);
    sl__diag_close(&diag);
    int completed = 0;
    for (uint64_t n = 1; n < 200; n++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        sl_run_t *run = NULL;
        sl_services_t *svc = NULL;
        sl_services_opts_t svc_opts = {.worker_exe = SLUICE_EXE, .registry = reg};
        int done = 0;
        if (getenv("TEST_LOG"))
            fprintf(stderr, "-- allocation %llu fails\n", (unsigned long long)n);
        sl__alloc_fail_at(n);
        if (sl__host_services_new(&loop, wf, &svc_opts, &svc) == 0) {
            sl_run_opts_t opts = {.run_id = "alloc", .cpu = sl__host_executor(svc),
                                  .services = svc};
            if (sl__run_new(&loop, wf, &opts, &run) == 0) {
                sl__run_start(run, on_run_done, &done);
                while (!done)
                    uv_run(&loop, UV_RUN_ONCE);
                completed += sl__run_succeeded(run);
                sl__alloc_fail_at(0);
                sl__host_services_close(svc);
                sl__run_free(run);
            }
            sl__alloc_fail_at(0);
            sl__host_services_free(svc);
        }
        sl__alloc_fail_at(0);
        uv_run(&loop, UV_RUN_DEFAULT);
        CHECK_INT(uv_loop_close(&loop), 0);
        CHECK_INT(count_children(), 0);
    }
    CHECK(completed > 0);
    sl__workflow_free(wf);
    sl__registry_free(reg);
}

TEST_MAIN(60, T(test_start_stop), T(test_round_trip_many), T(test_crash), T(test_abort),
          T(test_exit), T(test_spin_timeout), T(test_memory_limit), T(test_cancel),
          T(test_missing_binary), T(test_barren_workers), T(test_close_kills_stuck),
          T(test_run_with_pool), T(test_allocation_failures))
