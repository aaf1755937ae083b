/*
 * slurm/: the Slurm executor against stand-in cluster commands (shell scripts first on
 * PATH: scontrol reports MaxArraySize=3, sinfo 2 CPUs, sbatch runs each array element's
 * script at once with SLURM_ARRAY_TASK_ID set, squeue lists nothing), so that batching,
 * array splitting, the input and output files, their verification and the failure
 * messages are checked without a cluster. The real one is tests/integration/slurm.sh.
 */
#include <sys/stat.h>
#include <uv.h>

#include "slurm/slurm.h"
#include "test.h"

#define SLUICE_EXE SLUICE_BINARY_DIR "/sluice"

typedef struct outcome {
    sl_slurm_job_t job;
    bool ended, ok;
    int code;
    char message[4096];
    sl_value_t *output;
} outcome_t;

static void on_done(sl_slurm_job_t *job, sl_value_t *output)
{
    outcome_t *o = (outcome_t *)(void *)job;
    CHECK(!o->ended);
    o->ended = o->ok = true;
    o->output = output;
}

static void on_fail(sl_slurm_job_t *job, int code, const char *message, int64_t retry_after_ms)
{
    outcome_t *o = (outcome_t *)(void *)job;
    CHECK(!o->ended);
    o->ended = true;
    o->code = code;
    snprintf(o->message, sizeof(o->message), "%s", message);
}

static const sl_slurm_cbs_t cbs = {on_done, on_fail};
static char dir[256];

static void write_script(const char *name, const char *body)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/bin/%s", dir, name);
    FILE *f = fopen(path, "w");
    fprintf(f, "#!/bin/sh\necho \"$*\" >> %s/calls.%s\n%s", dir, name, body);
    fclose(f);
    chmod(path, 0755);
}

/* The stand-in commands; `sbatch_body` replaces the default sbatch. */
static void setup(const char *sbatch_body)
{
    snprintf(dir, sizeof(dir), "/tmp/sluice-test-slurm.%d", (int)getpid());
    char path[512];
    snprintf(path, sizeof(path), "%s/bin", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    write_script("scontrol", "echo 'MaxArraySize            = 3'\n"
                             "echo 'MaxJobCount             = 100'\n");
    write_script("sinfo", "echo 0/2/0/2\n");
    write_script("squeue", "");
    write_script("scancel", "");
    write_script("sbatch", sbatch_body ? sbatch_body :
        /* --array=0-N[%K] --output=PATTERN ... SCRIPT: run each element now */
        "for a; do case $a in --array=*) n=${a#--array=0-}; n=${n%%%*};; "
        "--output=*) out=${a#--output=};; esac; script=$a; done\n"
        "i=0; while [ $i -le $n ]; do SLURM_ARRAY_TASK_ID=$i sh \"$script\" "
        "> \"$(echo \"$out\" | sed \"s/%a/$i/\")\" 2>&1; i=$((i + 1)); done\n"
        "echo 42\n");
    char env[1024];
    snprintf(env, sizeof(env), "%s:%s", path, getenv("PATH"));
    setenv("PATH", env, 1);
    setenv("SLUICE_PLUGIN_PATH", SLUICE_BINARY_DIR "/tests/plugins", 1);
    sl__log_setup(getenv("TEST_LOG") ? SL_LOG_DEBUG : SL_LOG_ERROR + 1, SL_LOGFMT_TEXT);
}

static int calls(const char *name)
{
    char path[512], line[4096];
    snprintf(path, sizeof(path), "%s/calls.%s", dir, name);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n++;
    if (f)
        fclose(f);
    return n;
}

static sl_slurm_t *new_slurm(uv_loop_t *loop)
{
    char work[300];
    snprintf(work, sizeof(work), "%s/work", dir);
    sl_slurm_opts_t opts = {.exe = SLUICE_EXE, .workdir = work, .poll_ms = 100};
    sl_slurm_t *s = NULL;
    CHECK_INT(sl__slurm_new(loop, &opts, &cbs, &s), 0);
    return s;
}

static void wait_all(uv_loop_t *loop, outcome_t *outs, size_t n)
{
    for (size_t ended = 0; ended < n;) {
        uv_run(loop, UV_RUN_ONCE);
        ended = 0;
        for (size_t i = 0; i < n; i++)
            ended += outs[i].ended;
    }
}

static void remove_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_INT(system(cmd), 0);
}

static void finish(uv_loop_t *loop, sl_slurm_t *s)
{
    sl__slurm_close(s);
    while (!sl__slurm_closed(s))
        uv_run(loop, UV_RUN_ONCE);
    sl__slurm_free(s);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(loop), 0);
    remove_dir();
}

static void submit_echo(sl_slurm_t *s, outcome_t *outs, sl_value_t **args, size_t n,
                        const char *kind)
{
    for (size_t i = 0; i < n; i++) {
        args[i] = sl_value_map();
        sl_value_set(args[i], "n", sl_value_int((int64_t)i));
        outs[i].job = (sl_slurm_job_t){.kind = kind, .args = args[i], .attempt = 1,
                                       .group = 0, .item = i, .group_name = "step"};
        sl__slurm_submit(s, &outs[i].job);
    }
}

/* 7 tasks, 2 CPUs: 4 elements of 2 tasks, in arrays of at most 3: 2 sbatch calls. */
static void test_round_trip(void)
{
    setup(NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_slurm_t *s = new_slurm(&loop);
    outcome_t outs[7] = {0};
    sl_value_t *args[7];
    submit_echo(s, outs, args, 7, "test.echo");
    wait_all(&loop, outs, 7);
    for (size_t i = 0; i < 7; i++) {
        CHECK(outs[i].ok);
        CHECK_INT(outs[i].ok ? sl_value_int_of(sl_value_get(outs[i].output, "n")) : -1,
                  (long long)i);
        sl_value_free(outs[i].output);
        sl_value_free(args[i]);
    }
    sl_slurm_stats_t st;
    sl__slurm_stats(s, &st);
    CHECK_INT(st.elements, 4);
    CHECK_INT(calls("sbatch"), 2);
    CHECK_INT(calls("scontrol"), 1);
    finish(&loop, s);
}

/* A worker that dies: its tasks fail with the job id, a state and the log's tail. */
static void test_crash(void)
{
    setup(NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_slurm_t *s = new_slurm(&loop);
    outcome_t outs[1] = {0};
    sl_value_t *args[1];
    submit_echo(s, outs, args, 1, "test.crash");
    wait_all(&loop, outs, 1);
    CHECK(!outs[0].ok);
    CHECK_INT(outs[0].code, SL_EFAILED);
    CHECK_CONTAINS(outs[0].message, "slurm job 42_0 (element 0, state unknown) ended without "
                                    "its results");
    CHECK_CONTAINS(outs[0].message, "worker exited with status 139");
    sl_value_free(args[0]);
    finish(&loop, s);
}

/* sbatch refuses: Slurm's words, without its prefixes. */
static void test_sbatch_refuses(void)
{
    setup("echo 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_slurm_t *s = new_slurm(&loop);
    outcome_t outs[2] = {0};
    sl_value_t *args[2];
    submit_echo(s, outs, args, 2, "test.echo");
    wait_all(&loop, outs, 2);
    for (size_t i = 0; i < 2; i++) {
        CHECK(!outs[i].ok);
        CHECK_CONTAINS(outs[i].message, "step 'step': sbatch refused the array job (no job "
                                        "id): invalid partition specified: nope");
        sl_value_free(args[i]);
    }
    finish(&loop, s);
}

/* A corrupt output file is never taken for results. */
static void test_truncated_output(void)
{
    setup(NULL);
    write_script("sbatch",
                 "for a; do script=$a; done\nSLURM_ARRAY_TASK_ID=0 sh \"$script\" >/dev/null\n"
                 "d=$(sed -n 's/^d=//p' \"$script\" | tr -d \"'\")\n"
                 "head -c 20 \"$d/e0.out\" > \"$d/x\" && mv \"$d/x\" \"$d/e0.out\"\necho 43\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_slurm_t *s = new_slurm(&loop);
    outcome_t outs[1] = {0};
    sl_value_t *args[1];
    submit_echo(s, outs, args, 1, "test.echo");
    wait_all(&loop, outs, 1);
    CHECK(!outs[0].ok);
    CHECK_CONTAINS(outs[0].message, "wrote a malformed output file");
    sl_value_free(args[0]);
    finish(&loop, s);
}

/* Closing with jobs queued fails them as canceled from the close, and calls nothing. */
static void test_close_queued(void)
{
    setup(NULL);
    uv_loop_t loop;
    uv_loop_init(&loop);
    sl_slurm_t *s = new_slurm(&loop);
    outcome_t outs[3] = {0};
    sl_value_t *args[3];
    submit_echo(s, outs, args, 3, "test.echo");
    CHECK(sl__slurm_unqueue(s, &outs[2].job));
    sl__slurm_close(s);
    CHECK(outs[0].ended && outs[1].ended && !outs[2].ended);
    CHECK_INT(outs[0].code, SL_ECANCELED);
    while (!sl__slurm_closed(s))
        uv_run(&loop, UV_RUN_ONCE);
    sl__slurm_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    CHECK_INT(calls("sbatch"), 0);
    for (size_t i = 0; i < 3; i++)
        sl_value_free(args[i]);
    remove_dir();
}

/* A cluster command that hangs at close (an sbatch that never answers): killed after
 * close_wait_ms, so that closing the executor is bounded; its jobs end canceled. */
static void test_close_bounded(void)
{
    setup("sleep 300\n");
    uv_loop_t loop;
    uv_loop_init(&loop);
    char work[300];
    snprintf(work, sizeof(work), "%s/work", dir);
    sl_slurm_opts_t opts = {.exe = SLUICE_EXE, .workdir = work, .poll_ms = 100,
                            .close_wait_ms = 300};
    sl_slurm_t *s = NULL;
    CHECK_INT(sl__slurm_new(&loop, &opts, &cbs, &s), 0);
    outcome_t outs[2] = {0};
    sl_value_t *args[2];
    submit_echo(s, outs, args, 2, "test.echo");
    while (calls("sbatch") == 0) /* the hanging sbatch has started */
        uv_run(&loop, UV_RUN_NOWAIT);
    uint64_t t0 = uv_hrtime();
    sl__slurm_close(s);
    while (!sl__slurm_closed(s))
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    CHECK(secs < 10); /* the command's own timeout is 120 s */
    CHECK(outs[0].ended && outs[1].ended);
    CHECK_INT(outs[0].code, SL_ECANCELED);
    sl__slurm_free(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    for (size_t i = 0; i < 2; i++)
        sl_value_free(args[i]);
    remove_dir();
}

TEST_MAIN(60, T(test_round_trip), T(test_crash), T(test_sbatch_refuses),
          T(test_truncated_output), T(test_close_queued), T(test_close_bounded))
