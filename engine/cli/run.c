/* sluice run: load, (dry-run or) run on a libuv loop with progress, summarise. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cli/report.h"
#include "cli/watchdog.h"
#include "expr/expr.h"
#include "graph/graph.h"
#include "host/slurm.h"
#include "sched/sched.h"
#include "vm/vm.h"

/*
 * The process exits right after a run: its values (15,000 outputs take 10 ms to free) are
 * left to the kernel, as exit would. Sanitizer builds free them, so leaks still show.
 */
#if defined(__SANITIZE_ADDRESS__)
#define FREE_AT_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FREE_AT_EXIT 1
#endif
#endif
#ifndef FREE_AT_EXIT
#define FREE_AT_EXIT 0
#endif

typedef struct run_opts {
    const char *file;
    const char **vars;
    size_t var_count;
    bool dry_run, quiet;
    const char *resume;
    bool force, no_cache;
    long workers;
    sl_logfmt_t log_format;
} run_opts_t;

typedef struct run_ctx {
    uv_loop_t loop;
    sl_run_t *run;
    sl_workflow_t *wf;
    const sl_registry_t *registry;
    sl_services_t *services;
    sl_store_t *store;          /* NULL: SLUICE_STATE=none */
    sl_store_run_row_t *resume; /* the run resumed, or NULL */
    sl_recorder_t *recorder;
    sl_watchdog_t *watchdog; /* NULL: could not start (the run goes on unwatched) */
    uv_signal_t sigint;
    uv_signal_t sigterm[4]; /* STOP_SIGNALS: each cancels running tasks, as SIGTERM does */
    uv_timer_t progress_timer;
    /* SLUICE_LOOP_STATS: the longest stretch the loop worked without polling, measured
     * from the check after a poll to the prepare before the next (for benchmarks). */
    uv_check_t turn_start;
    uv_prepare_t turn_end;
    uint64_t turn_started_ns, turn_max_ns;
    bool loop_stats;
    sl_progress_t progress;
    bool show_progress;
    int signals_seen;
} run_ctx_t;

enum { RUN_VAR, RUN_DRY_RUN, RUN_RESUME, RUN_FORCE, RUN_NO_CACHE, RUN_WORKERS, RUN_LOG, RUN_QUIET };

/* The short names are the letters getopt has always accepted for these options. */
static const sl_cli_option_t run_options[] = {
    [RUN_VAR] = {"var", 'v', "K=V", "override a variable (typed like YAML: 5, true, text)",
                 SL_CLI_REPEATABLE},
    [RUN_DRY_RUN] = {"dry-run", 'n', NULL, "print the planned steps and tasks, run nothing", 0},
    [RUN_RESUME] = {"resume", 'r', "RUN", "rerun only what did not finish in RUN (or 'last')", 0},
    [RUN_FORCE] = {"force", 'f', NULL,
                   "resume even though the workflow changed (what changed reruns)", 0},
    [RUN_NO_CACHE] = {"no-cache", 'C', NULL, "run every task, even where cache: true", 0},
    [RUN_WORKERS] = {"workers", 'w', "N", "CPU worker processes (default: limits.cpu.workers)", 0},
    [RUN_LOG] = {"log", 'l', "text|json", "log line format on stderr (default text)", 0},
    [RUN_QUIET] = {"quiet", 'q', NULL, "no progress line and only warnings and errors in the log",
                   0},
};

const sl_cli_command_t sl__cli_run_command = {
    .name = "run",
    .operands = "FILE",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "run a workflow",
    .description = "Runs a workflow.",
    .epilogue = "Exit codes: 0 success, 1 a step failed, 2 bad input, 3 internal error.",
    .options = run_options,
    .option_count = SL_COUNTOF(run_options),
    .run = sl__cli_run,
};

static const sl_cli_command_t *const run_cmd = &sl__cli_run_command;

/* Takes one option into o; returns 0 or a usage error's exit code. */
static int take_run_option(int index, const char *value, run_opts_t *o)
{
    char *end;
    switch (index) {
    case RUN_VAR:
        if (strchr(value, '=') == NULL || value[0] == '=')
            return sl__cli_usage_error(run_cmd, "--var expects K=V, got '%s'", value);
        o->vars[o->var_count++] = value;
        return 0;
    case RUN_DRY_RUN:
        o->dry_run = true;
        return 0;
    case RUN_QUIET:
        o->quiet = true;
        return 0;
    case RUN_RESUME:
        o->resume = value;
        return 0;
    case RUN_FORCE:
        o->force = true;
        return 0;
    case RUN_NO_CACHE:
        o->no_cache = true;
        return 0;
    case RUN_WORKERS:
        o->workers = strtol(value, &end, 10);
        if (*value == '\0' || *end != '\0' || o->workers < 1 || o->workers > 4096)
            return sl__cli_usage_error(run_cmd, "--workers expects 1..4096, got '%s'", value);
        return 0;
    case RUN_LOG:
        if (strcmp(value, "text") == 0)
            o->log_format = SL_LOGFMT_TEXT;
        else if (strcmp(value, "json") == 0)
            o->log_format = SL_LOGFMT_JSON;
        else
            return sl__cli_usage_error(run_cmd, "--log expects text or json, got '%s'", value);
        return 0;
    default:
        return SL_EXIT_USAGE;
    }
}

static int parse_run_args(int argc, char **argv, run_opts_t *o)
{
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, &sl__cli_run_command, argc, argv);
    int index, status = 0;
    while (status == 0 && (index = sl__cli_parser_next(&parser)) != SL_CLI_PARSE_END)
        status =
            index == SL_CLI_PARSE_BAD ? SL_EXIT_USAGE : take_run_option(index, parser.value, o);
    return status ? status : sl__cli_parser_one_file(&parser, &o->file);
}

/* ---- dry run -------------------------------------------------------------- */

static void print_task_plan(sl_vm_t *vm, const sl_step_t *step, const sl_value_t *item,
                            int64_t index)
{
    sl_value_t *args = NULL;
    char *err = NULL;
    sl_buf_t text;
    sl__buf_init(&text, 4096);
    if (sl__expr_eval(vm, step->with, item, index, &args, &err) == 0)
        sl__value_json_append(&text, args, 0);
    fprintf(stdout, "    task %" PRId64 ": %s\n", index ? index : 1,
            text.data ? text.data : (err ? err : "(args known at run time)"));
    sl__buf_close(&text);
    sl_value_free(args);
    sl__free(err);
}

static int no_outputs(void *ud, const char *step, const sl_value_t **out)
{
    return 0;
}

static void print_step_plan(sl_vm_t *vm, const sl_workflow_t *wf, const sl_step_t *step)
{
    fprintf(stdout, "%s (%s)", step->id, step->uses);
    for (size_t d = 0; d < step->dep_count; d++)
        fprintf(stdout, "%s%s", d ? ", " : " after ", wf->steps[step->deps[d]].id);
    fputc('\n', stdout);
    bool static_args = step->dep_count == 0;
    if (step->foreach == NULL && step->stream_from == SL_NO_STEP) {
        if (static_args)
            print_task_plan(vm, step, NULL, 0);
        else
            fputs("    1 task, arguments known at run time\n", stdout);
        return;
    }
    sl_value_t *items = NULL;
    char *err = NULL;
    if (!static_args || sl__expr_eval(vm, step->foreach, NULL, 0, &items, &err) < 0 ||
        sl_value_type(items) != SL_TYPE_LIST) {
        fprintf(stdout, "    foreach: items known at run time%s%s\n", err ? ": " : "",
                err ? err : "");
    } else {
        size_t n = sl_value_len(items), shown = n < 10 ? n : 10;
        fprintf(stdout, "    foreach: %zu task%s\n", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < shown; i++)
            print_task_plan(vm, step, sl_value_at(items, i), (int64_t)i + 1);
        if (n > shown)
            fprintf(stdout, "    ... and %zu more\n", n - shown);
    }
    sl_value_free(items);
    sl__free(err);
}

static int dry_run(const sl_workflow_t *wf)
{
    size_t *order = sl__malloc((wf->step_count ? wf->step_count : 1) * sizeof(*order));
    sl_vm_scope_t scope = {.vars = wf->vars,
                           .workflow_name = wf->name,
                           .run_id = "dry-run",
                           .run_started = (int64_t)time(NULL),
                           .step_output = no_outputs};
    sl_vm_t *vm = NULL;
    sl_graph_t graph = {0};
    int rc = order ? sl__workflow_graph(wf, &graph) : SL_ENOMEM;
    if (rc == 0)
        rc = sl__graph_order(&graph, order);
    sl__graph_close(&graph);
    if (rc < 0 || sl__vm_new(&scope, NULL, &vm) < 0) {
        sl__free(order);
        fputs("sluice: error: out of memory\n", stderr);
        return SL_EXIT_INTERNAL;
    }
    fprintf(stdout, "workflow %s: %zu step%s, in order:\n", wf->name, wf->step_count,
            wf->step_count == 1 ? "" : "s");
    for (size_t i = 0; i < wf->step_count; i++)
        print_step_plan(vm, wf, &wf->steps[order[i]]);
    sl__vm_free(vm);
    sl__free(order);
    return SL_EXIT_OK;
}

/* ---- running -------------------------------------------------------------- */

static void on_progress_tick(uv_timer_t *timer)
{
    run_ctx_t *ctx = timer->data;
    sl__report_progress_draw(&ctx->progress, ctx->run, ctx->wf, ctx->services);
}

/* Signals whose default action would kill the run and leave `.part` files behind: each is
 * handled as SIGTERM (a terminal hang-up, Ctrl-backslash, a stray `kill -USR1`). */
static const int STOP_SIGNALS[] = {SIGTERM, SIGHUP, SIGQUIT, SIGUSR1};

static void on_signal(uv_signal_t *handle, int signum)
{
    run_ctx_t *ctx = handle->data;
    ctx->signals_seen++;
    sl__report_progress_clear(&ctx->progress);
    /* Ctrl-C once lets running tasks finish; again, or SIGTERM (a supervisor's stop),
     * cancels them. */
    if (signum == SIGINT && ctx->signals_seen == 1) {
        fputs("sluice: interrupted: no new tasks; running ones may finish "
              "(Ctrl-C again to cancel them)\n",
              stderr);
        sl__run_stop(ctx->run, false);
    } else {
        fprintf(stderr, "sluice: %s: canceling running tasks\n",
                signum == SIGINT    ? "interrupted again"
                : signum == SIGHUP  ? "hang-up (SIGHUP)"
                : signum == SIGQUIT ? "quit (SIGQUIT)"
                : signum == SIGUSR1 ? "SIGUSR1"
                                    : "terminated");
        sl__run_stop(ctx->run, true);
    }
}

static void on_turn_start(uv_check_t *check)
{
    run_ctx_t *ctx = check->data;
    ctx->turn_started_ns = uv_hrtime();
}

static void on_turn_end(uv_prepare_t *prepare)
{
    run_ctx_t *ctx = prepare->data;
    uint64_t now = uv_hrtime();
    if (ctx->turn_started_ns && now - ctx->turn_started_ns > ctx->turn_max_ns)
        ctx->turn_max_ns = now - ctx->turn_started_ns;
}

static void start_loop_stats(run_ctx_t *ctx)
{
    ctx->loop_stats = getenv("SLUICE_LOOP_STATS") != NULL;
    uv_check_init(&ctx->loop, &ctx->turn_start);
    uv_prepare_init(&ctx->loop, &ctx->turn_end);
    ctx->turn_start.data = ctx->turn_end.data = ctx;
    if (ctx->loop_stats) {
        uv_check_start(&ctx->turn_start, on_turn_start);
        uv_prepare_start(&ctx->turn_end, on_turn_end);
        uv_unref((uv_handle_t *)&ctx->turn_start);
        uv_unref((uv_handle_t *)&ctx->turn_end);
    }
}

static void on_run_done(sl_run_t *run, void *ud)
{
    run_ctx_t *ctx = ud;
    uv_timer_stop(&ctx->progress_timer);
    uv_signal_stop(&ctx->sigint);
    for (size_t i = 0; i < SL_COUNTOF(STOP_SIGNALS); i++)
        uv_signal_stop(&ctx->sigterm[i]);
    uv_stop(&ctx->loop);
}

static void close_walk(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* Records the run's end and waits for the store to have it: a run counts as recorded once
 * its last batch is committed. A store that failed makes it an internal error. */
static int finish_record(run_ctx_t *ctx, int status)
{
    if (ctx->recorder == NULL)
        return status;
    sl__host_services_close(ctx->services); /* no task reports after this */
    sl__host_recorder_finish(ctx->recorder, ctx->run);
    char err[1024];
    int rc = sl__store_sync(ctx->store, err, sizeof(err));
    const char *failure = sl__host_recorder_error(ctx->recorder);
    if (rc < 0 || failure) {
        fprintf(stderr, "sluice: error: the run's state could not be recorded: %s\n",
                failure ? failure : err);
        status = SL_EXIT_INTERNAL;
    }
    sl__host_recorder_free(ctx->recorder);
    ctx->recorder = NULL;
    return status;
}

static int execute(run_ctx_t *ctx, const run_opts_t *o)
{
    time_t now = time(NULL);
    char run_id[40];
    sl__store_run_id(run_id, sizeof(run_id));
    int uv_rc = uv_loop_init(&ctx->loop);
    if (uv_rc < 0) { /* EMFILE, most likely: the loop needs descriptors of its own */
        fprintf(stderr, "sluice: error: cannot start the event loop: %s\n", uv_strerror(uv_rc));
        return SL_EXIT_INTERNAL;
    }
    sl_services_opts_t services = {.registry = ctx->registry, .prestart = ctx->resume == NULL};
    int rc = sl__host_services_new(&ctx->loop, ctx->wf, &services, &ctx->services);
    sl_run_opts_t opts = {.run_id = run_id,
                          .started_unix = (int64_t)now,
                          .cpu = sl__host_executor(ctx->services),
                          .services = ctx->services};
    char err[1024] = "";
    if (rc == 0 && ctx->store) {
        sl_recorder_opts_t ro = {
            .store = ctx->store,
            .wf = ctx->wf,
            .loop = &ctx->loop,
            .run_id = run_id,
            .trigger = ctx->resume ? "resume" : "manual",
            .started_ms = sl__store_now_ms(),
            .resume = ctx->resume,
            .no_cache = o->no_cache,
        };
        rc = sl__host_recorder_new(&ro, &ctx->recorder, err, sizeof(err));
        if (rc == 0)
            rc = sl__host_services_record(ctx->services, ctx->recorder, err, sizeof(err));
        opts.observer = ctx->recorder ? sl__host_recorder_observer(ctx->recorder) : NULL;
        opts.memo = ctx->recorder ? sl__host_recorder_memo(ctx->recorder) : NULL;
    }
    if (rc == 0)
        rc = sl__run_new(&ctx->loop, ctx->wf, &opts, &ctx->run);
    if (rc < 0) {
        fprintf(stderr, "sluice: error: cannot start the run: %s\n",
                err[0] ? err : sl_strerror(rc));
        sl__host_recorder_free(ctx->recorder);
        sl__host_services_free(ctx->services);
        uv_loop_close(&ctx->loop);
        return SL_EXIT_INTERNAL;
    }
    if (ctx->recorder)
        sl__host_recorder_watch(ctx->recorder, ctx->run);
    start_loop_stats(ctx);
    uv_signal_init(&ctx->loop, &ctx->sigint);
    uv_timer_init(&ctx->loop, &ctx->progress_timer);
    ctx->sigint.data = ctx->progress_timer.data = ctx;
    uv_signal_start(&ctx->sigint, on_signal, SIGINT);
    for (size_t i = 0; i < SL_COUNTOF(STOP_SIGNALS); i++) {
        uv_signal_init(&ctx->loop, &ctx->sigterm[i]);
        ctx->sigterm[i].data = ctx;
        uv_signal_start(&ctx->sigterm[i], on_signal, STOP_SIGNALS[i]);
    }
    /* A loop stuck in one call (Lua's or a plugin's) still yields, honours the stop
     * signals and, failing everything, exits (docs/architecture.md). */
    if (sl__watchdog_start(&ctx->loop, &ctx->watchdog) < 0)
        SL_LOG(SL_LOG_WARN, run_id, NULL, "cannot start the loop's watchdog");
    sl__watchdog_chain(ctx->watchdog, SIGINT);
    for (size_t i = 0; i < SL_COUNTOF(STOP_SIGNALS); i++)
        sl__watchdog_chain(ctx->watchdog, STOP_SIGNALS[i]);
    sl__report_progress_init(&ctx->progress, stdout);
    if (ctx->show_progress)
        uv_timer_start(&ctx->progress_timer, on_progress_tick, 100, 200);
    SL_LOG(SL_LOG_INFO, run_id, NULL, "run %s of %s started", run_id, ctx->wf->name);
    uint64_t started = sl__clock_now_ns();
    sl__run_start(ctx->run, on_run_done, ctx);
    uv_run(&ctx->loop, UV_RUN_DEFAULT);
    sl__watchdog_stop(ctx->watchdog);
    ctx->watchdog = NULL;
    uint64_t elapsed = sl__clock_now_ns() - started;
    sl__report_progress_clear(&ctx->progress);
    sl__report_summary_print(stdout, ctx->run, ctx->wf, ctx->services, elapsed);
    if (ctx->resume && ctx->recorder)
        fprintf(stdout, "resumed run %s: %" PRIu64 " task%s reused\n", ctx->resume->id,
                sl__host_recorder_reused(ctx->recorder),
                sl__host_recorder_reused(ctx->recorder) == 1 ? "" : "s");
    if (ctx->loop_stats)
        fprintf(stdout, "loop: longest turn %.3f ms\n", (double)ctx->turn_max_ns / 1e6);
    fflush(stdout);
    int status = sl__run_succeeded(ctx->run) ? SL_EXIT_OK : SL_EXIT_FAILED;
    status = finish_record(ctx, status);
    if (sl__run_stragglers(ctx->run) > 0) {
        /* A kind never finished a canceled task (a thread stuck in a syscall, say):
         * exiting normally would wait for it in libuv's shutdown. */
        fflush(NULL);
        _exit(status);
    }
    uv_close((uv_handle_t *)&ctx->sigint, NULL);
    for (size_t i = 0; i < SL_COUNTOF(STOP_SIGNALS); i++)
        uv_close((uv_handle_t *)&ctx->sigterm[i], NULL);
    uv_close((uv_handle_t *)&ctx->progress_timer, NULL);
    uv_close((uv_handle_t *)&ctx->turn_start, NULL);
    uv_close((uv_handle_t *)&ctx->turn_end, NULL);
    sl__host_services_close(ctx->services);
    sl__run_close(ctx->run);
    if (FREE_AT_EXIT) {
        sl__run_free(ctx->run);
        sl__host_services_free(ctx->services);
    }
    uv_walk(&ctx->loop, close_walk, NULL);
    for (int i = 0; i < 100 && uv_loop_close(&ctx->loop) == UV_EBUSY; i++)
        uv_run(&ctx->loop, UV_RUN_NOWAIT);
    return status;
}

int sl__cli_run(int argc, char **argv)
{
    run_opts_t o = {.vars = sl__calloc((size_t)argc + 1, sizeof(char *))};
    if (o.vars == NULL)
        return SL_EXIT_INTERNAL;
    int status = parse_run_args(argc, argv, &o);
    if (status != 0) {
        sl__free(o.vars);
        return status;
    }
    run_ctx_t ctx = {0};
    sl_registry_t *reg = NULL;
    sl__log_setup(o.quiet ? SL_LOG_WARN : SL_LOG_INFO, o.log_format);
    if (o.resume && o.var_count) {
        status = sl__cli_usage_error(run_cmd, "--var cannot be used with --resume: a resumed "
                                              "run keeps the vars it was run with");
        goto out;
    }
    if (o.force && !o.resume) {
        status = sl__cli_usage_error(run_cmd, "--force is for --resume");
        goto out;
    }
    if (sl__cli_registry(&reg) < 0) {
        status = SL_EXIT_INTERNAL;
        goto out;
    }
    ctx.registry = reg;
    status = sl__cli_load(o.file, reg, &ctx.wf);
    for (size_t i = 0; status == SL_EXIT_OK && i < o.var_count; i++) {
        char err[1024];
        int rc = sl__workflow_set_var(ctx.wf, o.vars[i], err, sizeof(err));
        if (rc == SL_ENOMEM)
            status = SL_EXIT_INTERNAL;
        else if (rc < 0)
            status = sl__cli_usage_error(run_cmd, "%s", err);
    }
    if (status != SL_EXIT_OK)
        goto out;
    if (o.workers)
        ctx.wf->limits.cpu_workers = (uint32_t)o.workers;
    if (o.dry_run) {
        status = dry_run(ctx.wf);
        goto out;
    }
    char slurm_err[512];
    if (sl__host_slurm_check(ctx.wf, slurm_err, sizeof(slurm_err)) < 0) {
        fprintf(stderr, "sluice: error: %s\n", slurm_err);
        status = SL_EXIT_USAGE;
        goto out;
    }
    status = sl__cli_state_open(SL_STORE_WRITE, &ctx.store);
    if (status == SL_EXIT_OK && o.resume && ctx.store == NULL)
        status = sl__cli_usage_error(run_cmd, "--resume needs the state store "
                                              "(SLUICE_STATE is 'none')");
    sl_store_run_row_t resumed;
    if (status == SL_EXIT_OK && o.resume) {
        status = sl__cli_resume_prepare(ctx.store, o.resume, o.force, ctx.wf, &resumed);
        ctx.resume = &resumed;
    }
    if (status != SL_EXIT_OK)
        goto out;
    ctx.show_progress = !o.quiet && isatty(STDOUT_FILENO);
    status = execute(&ctx, &o);
out:
    sl__store_close(ctx.store);
    sl__workflow_free(ctx.wf);
    sl__registry_free(reg);
    sl__free(o.vars);
    return status;
}
