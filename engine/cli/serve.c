/*
 * `sluice serve` and `sluice backfill` (SPEC §5, docs/scheduling.md): the command lines;
 * what is due and how a tick runs are serve/'s.
 *
 * serve --once: for each scheduled workflow of the files and folders given, takes the
 * workflow's lease, works out the ticks due now from its newest recorded tick, claims each
 * (a tick claimed elsewhere is not run) and runs them oldest first; exits 0, or 1 when a
 * run failed. backfill: one run per tick in [--from, --to], oldest first, trigger
 * backfill; a tick already run is kept, an interrupted one is resumed.
 *
 * serve --http ADDR: the daemon's loop also answers the dashboard (dash/) at ADDR; the
 * address is checked and bound once before the daemon starts, so that a bad one, one off
 * loopback without --http-public, or one in use exits 2 before anything runs.
 */
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cli/watchdog.h"
#include "dash/dash.h"
#include "http/http.h"
#include "serve/serve.h"

#define BACKFILL_TICKS_MAX 100000
#define LEASE_TTL_MS (10 * 60 * 1000)

enum { SERVE_ONCE, SERVE_GRACE, SERVE_HTTP, SERVE_HTTP_PUBLIC, SERVE_LOG };

static const sl_cli_option_t serve_options[] = {
    [SERVE_ONCE] = {"once", 0, NULL, "run every tick that is due now and exit when those runs end",
                    0},
    [SERVE_GRACE] = {"grace", 0, "DURATION",
                     "after SIGTERM or SIGINT, let running runs finish for this\n"
                     "long, then cancel them, resumable (default 30s)",
                     0},
    [SERVE_HTTP] = {"http", 0, "ADDR",
                    "also serve the dashboard and /metrics at ADDR (e.g.\n"
                    "127.0.0.1:7070, [::1]:7070, :7070); without workflows, only\n"
                    "the dashboard is served",
                    0},
    [SERVE_HTTP_PUBLIC] = {"http-public", 0, NULL,
                           "let --http bind an address off loopback (the dashboard is\n"
                           "then open to the network: read-only, but unauthenticated)",
                           0},
    [SERVE_LOG] = {"log", 0, "text|json", "log line format on stderr (default text)", 0},
};

const sl_cli_command_t sl__cli_serve_command = {
    .name = "serve",
    .operands = "[PATH...]",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "run workflows at the ticks of their schedules, with a dashboard",
    .description = "Runs each workflow of the files or folders given that has a schedule at "
                   "its ticks,\nall on one loop, recording each run with trigger cron. "
                   "Files are reloaded when they\nchange (and on SIGHUP); SIGTERM or SIGINT "
                   "stops taking ticks, lets running runs\nfinish for --grace, then cancels "
                   "them (resumable); a second signal cancels at once.\n--http ADDR also "
                   "serves the dashboard, read-only, on the same loop (loopback\nunless "
                   "--http-public).",
    .epilogue = "Exit codes: 0 stopped by a signal (--once: every run succeeded), 1 a run "
                "failed (--once),\n2 bad input.",
    .options = serve_options,
    .option_count = SL_COUNTOF(serve_options),
    .run = sl__cli_serve,
};

enum { BACKFILL_FROM, BACKFILL_TO, BACKFILL_LOG };

static const sl_cli_option_t backfill_options[] = {
    [BACKFILL_FROM] = {"from", 0, "TIME", "the first tick's earliest time (ISO-8601)",
                       SL_CLI_REQUIRED},
    [BACKFILL_TO] = {"to", 0, "TIME", "the last tick's latest time (ISO-8601)", SL_CLI_REQUIRED},
    [BACKFILL_LOG] = {"log", 0, "text|json", "log line format on stderr (default text)", 0},
};

const sl_cli_command_t sl__cli_backfill_command = {
    .name = "backfill",
    .operands = "FILE",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "run one run per tick of a schedule in a range, oldest first",
    .description = "Runs the workflow once for each tick of its schedule in the range, oldest "
                   "first.\nA tick already run is not run again; an interrupted one is resumed.",
    .epilogue = "Exit codes: 0 every run succeeded, 1 a run failed, 2 bad input.",
    .options = backfill_options,
    .option_count = SL_COUNTOF(backfill_options),
    .run = sl__cli_backfill,
};

static int parse_log(const sl_cli_command_t *cmd, const char *value, sl_logfmt_t *out)
{
    if (strcmp(value, "text") == 0 || strcmp(value, "json") == 0) {
        *out = value[0] == 'j' ? SL_LOGFMT_JSON : SL_LOGFMT_TEXT;
        return 0;
    }
    return sl__cli_usage_error(cmd, "--log expects text or json, got '%s'", value);
}

static int setup_clock(void)
{
    char err[256];
    if (sl__clock_setup_env(err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "sluice: error: %s\n", err);
    return SL_EXIT_USAGE;
}

static int open_state(const sl_cli_command_t *cmd, sl_store_t **store)
{
    int status = sl__cli_state_open(SL_STORE_WRITE, store);
    if (status == SL_EXIT_OK && *store == NULL)
        return sl__cli_usage_error(cmd, "%s needs the state store (SLUICE_STATE is 'none')",
                                   cmd->name);
    return status;
}

/* ---- the files served ------------------------------------------------------------- */

static int collect_all(char **paths, int count, sl_serve_files_t *files)
{
    char err[1024];
    for (int i = 0; i < count; i++) {
        int rc = sl__serve_collect(paths[i], files, err, sizeof err);
        if (rc == SL_ENOMEM)
            return SL_EXIT_INTERNAL;
        if (rc < 0) {
            fprintf(stderr, "%s%s\n", rc == SL_ELIMIT ? "sluice: error: " : "", err);
            return SL_EXIT_USAGE;
        }
    }
    return 0;
}

/* ---- serve --once ----------------------------------------------------------------- */

typedef struct serve_ctx {
    sl_store_t *store;
    const sl_registry_t *reg;
    char owner[128];
    bool failed, signaled, invalid;
} serve_ctx_t;

static void log_time(const sl_serve_schedule_t *s, int64_t t, char *buf, size_t size)
{
    if (sl__time_format_tz(t, s->tz, buf, size) < 0)
        snprintf(buf, size, "%" PRId64, t);
}

/* Claims and runs one due tick of `wf`. */
static void run_tick(serve_ctx_t *ctx, sl_workflow_t *wf, const sl_serve_schedule_t *s,
                     int64_t tick, const char *trigger, const sl_store_run_row_t *resume,
                     bool claimed)
{
    sl_serve_run_opts_t o = {.wf = wf,
                             .registry = ctx->reg,
                             .store = ctx->store,
                             .trigger = trigger,
                             .tick = tick,
                             .resume = resume};
    sl__serve_run_id(&o);
    char when[64], err[512];
    log_time(s, tick, when, sizeof when);
    if (!claimed) {
        bool won = false;
        sl_store_tick_t rec = {wf->name, tick * 1000, trigger, "run", NULL, o.run_id};
        if (sl__store_tick_claim(ctx->store, &rec, &won, err, sizeof err) < 0) {
            SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: tick %s: %s", wf->name, when, err);
            ctx->failed = true;
            return;
        }
        if (!won) {
            SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s already taken, not run again", wf->name,
                   when);
            return;
        }
    } else if (sl__store_tick_set_run(ctx->store, wf->name, tick * 1000, o.run_id, err,
                                      sizeof err) < 0) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: tick %s: %s", wf->name, when, err);
        ctx->failed = true;
        return;
    }
    int64_t jitter = sl__serve_jitter_ms(wf->name, tick, wf->schedule.jitter_ms);
    o.delay_ms = tick * 1000 + jitter - sl__clock_wall_ms();
    SL_LOG(SL_LOG_INFO, o.run_id, NULL, "%s: tick %s due (%s), run %s %s", wf->name, when, trigger,
           o.run_id, resume ? "resumes" : "starts");
    uint64_t started = sl__clock_now_ns();
    const char *status = sl__serve_run(&o, &ctx->signaled);
    double secs = (double)(sl__clock_now_ns() - started) / 1e9;
    SL_LOG(status && strcmp(status, "succeeded") == 0 ? SL_LOG_INFO : SL_LOG_WARN, o.run_id, NULL,
           "%s: run %s for tick %s %s in %.3f s", wf->name, o.run_id, when,
           status ? status : "could not start", secs);
    if (status == NULL || strcmp(status, "succeeded") != 0)
        ctx->failed = true;
}

static void serve_workflow(serve_ctx_t *ctx, sl_workflow_t *wf)
{
    sl_serve_schedule_t s;
    char err[512];
    if (sl__serve_schedule_open(&wf->schedule, &s, err, sizeof err) < 0) {
        fprintf(stderr, "%s:1:1: error: %s\n", wf->path, err);
        ctx->invalid = true;
        return;
    }
    bool held = false;
    int64_t last_ms = 0;
    if (sl__store_lease(ctx->store, wf->name, ctx->owner, LEASE_TTL_MS, &held, err, sizeof err) <
            0 ||
        (held &&
         sl__store_tick_last(ctx->store, wf->name, "cron", &last_ms, err, sizeof err) < 0)) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: %s", wf->name, err);
        ctx->failed = true;
    } else if (!held) {
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: scheduled by another sluice serve (its lease)",
               wf->name);
    } else {
        int64_t due[SL_SERVE_MISSED_MAX];
        size_t n = sl__serve_due(&s, last_ms / 1000, sl__clock_wall_ms() / 1000, due);
        if (n == 0)
            SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: no tick due", wf->name);
        for (size_t i = 0; i < n && !ctx->signaled; i++)
            run_tick(ctx, wf, &s, due[i], "cron", NULL, false);
        sl__store_lease_release(ctx->store, wf->name, ctx->owner, err, sizeof err);
    }
    sl__serve_schedule_close(&s);
}

static void serve_file(serve_ctx_t *ctx, const char *path)
{
    sl_workflow_t *wf = NULL;
    if (sl__cli_load(path, ctx->reg, &wf) != SL_EXIT_OK) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: does not validate: skipped", path);
        ctx->invalid = true;
        return;
    }
    if (!wf->schedule.present || wf->schedule.cron_count == 0) {
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: workflow %s has no schedule: skipped", path, wf->name);
    } else {
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: loaded workflow %s", path, wf->name);
        serve_workflow(ctx, wf);
    }
    sl__workflow_free(wf);
}

static int serve_once(sl_serve_files_t *files, sl_store_t *store, const sl_registry_t *reg)
{
    serve_ctx_t ctx = {.store = store, .reg = reg};
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    snprintf(ctx.owner, sizeof ctx.owner, "%s:%d", host, (int)getpid());
    for (size_t i = 0; i < files->count && !ctx.signaled; i++)
        serve_file(&ctx, files->items[i]);
    return ctx.failed ? SL_EXIT_FAILED : ctx.invalid ? SL_EXIT_USAGE : SL_EXIT_OK;
}

static int parse_grace(const char *value, int64_t *out)
{
    if (sl__duration_parse(value, out) == 0 && *out >= 0)
        return 0;
    return sl__cli_usage_error(&sl__cli_serve_command,
                               "--grace expects a duration such as 30s or 2m, got '%s'", value);
}

typedef struct serve_args {
    bool once;
    int64_t grace_ms;
    sl_logfmt_t log;
    const char *http;   /* --http ADDR, or NULL */
    bool http_public;
} serve_args_t;

static int parse_serve(int argc, char **argv, sl_cli_parser_t *parser, serve_args_t *a)
{
    const sl_cli_command_t *cmd = &sl__cli_serve_command;
    sl__cli_parser_init(parser, cmd, argc, argv);
    int index, status = 0;
    bool grace_given = false;
    while (status == 0 && (index = sl__cli_parser_next(parser)) != SL_CLI_PARSE_END) {
        if (index == SL_CLI_PARSE_BAD)
            status = SL_EXIT_USAGE;
        else if (index == SERVE_ONCE)
            a->once = true;
        else if (index == SERVE_GRACE)
            status = parse_grace(parser->value, &a->grace_ms), grace_given = true;
        else if (index == SERVE_LOG)
            status = parse_log(cmd, parser->value, &a->log);
        else if (index == SERVE_HTTP)
            a->http = parser->value;
        else if (index == SERVE_HTTP_PUBLIC)
            a->http_public = true;
    }
    if (status == 0 && a->once && grace_given)
        status = sl__cli_usage_error(cmd, "--grace is for the daemon, not --once");
    if (status == 0 && a->once && a->http)
        status = sl__cli_usage_error(cmd, "--http is for the daemon, not --once");
    if (status == 0 && a->http_public && a->http == NULL)
        status = sl__cli_usage_error(cmd, "--http-public goes with --http ADDR");
    if (status == 0 && parser->operand_index >= argc && a->http == NULL)
        status = sl__cli_usage_error(cmd, "no workflow file or folder given");
    return status;
}

/* ---- the daemon, and its dashboard ------------------------------------------------- */

typedef struct daemon_ctx {
    sl_watchdog_t *watchdog;
    const serve_args_t *args;
    uv_loop_t *loop;
    sl_http_server_t *server;
    sl_dash_t *dash;
    bool http_failed, http_closed;
} daemon_ctx_t;

#define HTTP_STOP_WAIT_MS 10000 /* at the stop, the longest wait for the dashboard's reads */

static int check_http(const serve_args_t *a)
{
    char err[512];
    sl_http_opts_t o = {.addr = a->http, .public_ok = a->http_public};
    if (sl__http_check(&o, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "sluice: error: serve: --http %s: %s\n", a->http, err);
    return SL_EXIT_USAGE;
}

/* The dashboard on the daemon's loop. A failure here (the address taken since it was
 * checked) stops the daemon as a SIGTERM would, and serve exits 2. */
static void start_http(daemon_ctx_t *ctx, uv_loop_t *loop, sl_serve_daemon_t *daemon)
{
    char err[512];
    const char *state_dir = sl__store_default_dir();
    sl_dash_opts_t dopts = {.loop = loop, .state_dir = state_dir ? state_dir : ".", .daemon = daemon};
    sl_http_opts_t hopts = {.addr = ctx->args->http, .public_ok = ctx->args->http_public};
    int rc = sl__dash_new(&dopts, &ctx->dash, err, sizeof err);
    if (rc == 0) {
        hopts.handler = sl__dash_handle;
        hopts.ud = ctx->dash;
        rc = sl__http_listen(loop, &hopts, &ctx->server, err, sizeof err);
    }
    if (rc < 0) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "serve: --http %s: %s", ctx->args->http, err);
        ctx->http_failed = true;
        uv_kill(getpid(), SIGTERM);
        return;
    }
    const char *addr = sl__http_address(ctx->server);
    if (sl__http_public(ctx->server))
        SL_LOG(SL_LOG_WARN, NULL, NULL,
               "the dashboard at %s is off loopback (--http-public): anyone who can reach this "
               "host can read it",
               addr);
    SL_LOG(SL_LOG_INFO, NULL, NULL, "dashboard at http://%s/", addr);
}

/* The daemon's loop is watched as a run's is (docs/architecture.md, "The loop's
 * guarantees"): a Lua call that holds it still yields, and SIGTERM/SIGINT still stop it. */
static void loop_started(uv_loop_t *loop, sl_serve_daemon_t *daemon, void *ud)
{
    daemon_ctx_t *ctx = ud;
    ctx->loop = loop;
    if (sl__watchdog_start(loop, &ctx->watchdog) < 0)
        SL_LOG(SL_LOG_WARN, NULL, NULL, "cannot start the loop's watchdog");
    sl__watchdog_chain(ctx->watchdog, SIGINT);
    sl__watchdog_chain(ctx->watchdog, SIGTERM);
    if (ctx->args->http)
        start_http(ctx, loop, daemon);
}

static void on_http_closed(void *ud)
{
    daemon_ctx_t *ctx = ud;
    ctx->http_closed = true;
}

static bool http_busy(const daemon_ctx_t *ctx)
{
    return (ctx->server && !ctx->http_closed) || (ctx->dash && sl__dash_busy(ctx->dash));
}

/* The server closes (its streams told their clients are gone) and the dashboard's reads
 * in the threadpool come back before the daemon's shutdown closes the loop: the loop is
 * turned here, without waiting on its other handles, for at most HTTP_STOP_WAIT_MS. The
 * dashboard is freed once the loop is gone (serve_daemon); if a read never came back it
 * is left allocated rather than freed under that read. */
static void loop_stopped(void *ud)
{
    daemon_ctx_t *ctx = ud;
    sl__watchdog_stop(ctx->watchdog);
    ctx->watchdog = NULL;
    sl__http_close(ctx->server, on_http_closed, ctx);
    for (int ms = 0; ms < HTTP_STOP_WAIT_MS && http_busy(ctx); ms++) {
        uv_run(ctx->loop, UV_RUN_NOWAIT);
        if (http_busy(ctx))
            usleep(1000);
    }
    if (ctx->dash && sl__dash_busy(ctx->dash)) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "the dashboard's reads did not end in %d s: left as is",
               HTTP_STOP_WAIT_MS / 1000);
        ctx->dash = NULL;
    }
    ctx->server = NULL;
}

static int serve_daemon(const serve_args_t *a, char **operands, size_t count, sl_store_t *store,
                        const sl_registry_t *reg)
{
    if (a->http && check_http(a) != 0)
        return SL_EXIT_USAGE;
    daemon_ctx_t ctx = {.args = a};
    sl_serve_opts_t so = {.registry = reg,
                          .store = store,
                          .operands = operands,
                          .operand_count = count,
                          .grace_ms = a->grace_ms,
                          .loop_started = loop_started,
                          .loop_stopped = loop_stopped,
                          .loop_ud = &ctx};
    int rc = sl__serve_daemon(&so);
    sl__dash_free(ctx.dash); /* its server closed and the loop gone: no exchange is left */
    if (rc < 0) {
        fprintf(stderr, "sluice: error: serve: %s\n", sl_strerror(rc));
        return SL_EXIT_INTERNAL;
    }
    return ctx.http_failed ? SL_EXIT_USAGE : SL_EXIT_OK;
}

int sl__cli_serve(int argc, char **argv)
{
    sl_cli_parser_t parser;
    serve_args_t a = {.grace_ms = 30000, .log = SL_LOGFMT_TEXT};
    int status = parse_serve(argc, argv, &parser, &a);
    if (status == 0)
        status = setup_clock();
    if (status != 0)
        return status;
    sl__log_setup(SL_LOG_INFO, a.log);
    sl_serve_files_t files = {0};
    status = collect_all(argv + parser.operand_index, argc - parser.operand_index, &files);
    sl_registry_t *reg = NULL;
    sl_store_t *store = NULL;
    if (status == 0 && sl__cli_registry(&reg) < 0)
        status = SL_EXIT_INTERNAL;
    if (status == 0)
        status = open_state(&sl__cli_serve_command, &store);
    if (status == 0 && a.once)
        status = serve_once(&files, store, reg);
    else if (status == 0)
        status = serve_daemon(&a, argv + parser.operand_index,
                              (size_t)(argc - parser.operand_index), store, reg);
    sl__store_close(store);
    sl__registry_free(reg);
    sl__serve_files_free(&files);
    return status;
}

/* ---- backfill --------------------------------------------------------------------- */

typedef struct backfill_args {
    const char *path, *from, *to;
    sl_logfmt_t log;
} backfill_args_t;

static int parse_backfill(int argc, char **argv, backfill_args_t *a)
{
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, &sl__cli_backfill_command, argc, argv);
    int index, status = 0;
    while (status == 0 && (index = sl__cli_parser_next(&parser)) != SL_CLI_PARSE_END) {
        if (index == SL_CLI_PARSE_BAD)
            status = SL_EXIT_USAGE;
        else if (index == BACKFILL_FROM)
            a->from = parser.value;
        else if (index == BACKFILL_TO)
            a->to = parser.value;
        else if (index == BACKFILL_LOG)
            status = parse_log(&sl__cli_backfill_command, parser.value, &a->log);
    }
    if (status == 0 && (a->from == NULL || a->to == NULL))
        status = sl__cli_usage_error(&sl__cli_backfill_command, "--from and --to are required");
    return status ? status : sl__cli_parser_one_file(&parser, &a->path);
}

/* One tick of the range: run it, resume its interrupted run, or keep what ran. */
static void backfill_tick(serve_ctx_t *ctx, sl_workflow_t *wf, const sl_serve_schedule_t *s,
                          int64_t tick)
{
    sl_store_tick_row_t row;
    sl_store_run_row_t run;
    char err[1024], when[64];
    log_time(s, tick, when, sizeof when);
    int rc = sl__store_tick_find(ctx->store, wf->name, tick * 1000, &row, err, sizeof err);
    if (rc == SL_ENOTFOUND) {
        run_tick(ctx, wf, s, tick, "backfill", NULL, false);
        return;
    }
    if (rc == 0 && row.run_id[0])
        rc = sl__store_find_run(ctx->store, row.run_id, NULL, &run, err, sizeof err);
    if (rc == SL_ENOTFOUND ||
        (rc == 0 && row.run_id[0] == '\0' && strcmp(row.status, "run") == 0)) {
        run_tick(ctx, wf, s, tick, "backfill", NULL, true); /* claimed, never begun */
    } else if (rc < 0) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: tick %s: %s", wf->name, when, err);
        ctx->failed = true;
    } else if (row.run_id[0] == '\0') {
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s was %s (%s): kept", wf->name, when, row.status,
               row.reason);
    } else if (strcmp(run.status, "interrupted") == 0) {
        run_tick(ctx, wf, s, tick, "backfill", &run, true);
    } else {
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: tick %s already run (%s, run %s): kept", wf->name,
               when, run.status, run.id);
        if (strcmp(run.status, "failed") == 0)
            ctx->failed = true;
    }
}

/* The ticks in [from, to]; a usage error past BACKFILL_TICKS_MAX. */
static int backfill_range(serve_ctx_t *ctx, sl_workflow_t *wf, const sl_serve_schedule_t *s,
                          int64_t from, int64_t to)
{
    size_t count = 0;
    for (int64_t t = from - 1; sl__serve_next(s, t, &t) == 0 && t <= to;)
        if (++count > BACKFILL_TICKS_MAX)
            return sl__cli_usage_error(&sl__cli_backfill_command,
                                       "the range holds more than %d ticks", BACKFILL_TICKS_MAX);
    SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: backfill of %zu tick%s", wf->name, count,
           count == 1 ? "" : "s");
    for (int64_t t = from - 1; !ctx->signaled && sl__serve_next(s, t, &t) == 0 && t <= to;)
        backfill_tick(ctx, wf, s, t);
    return ctx->failed ? SL_EXIT_FAILED : SL_EXIT_OK;
}

static int backfill(const backfill_args_t *a, sl_workflow_t *wf, serve_ctx_t *ctx)
{
    sl_serve_schedule_t s;
    char err[512];
    int64_t from, to;
    if (!wf->schedule.present || wf->schedule.cron_count == 0) {
        fprintf(stderr, "%s:1:1: error: workflow '%s' has no schedule\n", a->path, wf->name);
        return SL_EXIT_USAGE;
    }
    if (sl__serve_schedule_open(&wf->schedule, &s, err, sizeof err) < 0) {
        fprintf(stderr, "%s:1:1: error: %s\n", a->path, err);
        return SL_EXIT_USAGE;
    }
    int status;
    if (sl__time_parse_tz(a->from, s.tz, &from) < 0)
        status = sl__cli_usage_error(&sl__cli_backfill_command, "invalid --from '%s'", a->from);
    else if (sl__time_parse_tz(a->to, s.tz, &to) < 0)
        status = sl__cli_usage_error(&sl__cli_backfill_command, "invalid --to '%s'", a->to);
    else if (from > to)
        status = sl__cli_usage_error(&sl__cli_backfill_command, "--from is after --to");
    else
        status = backfill_range(ctx, wf, &s, from, to);
    sl__serve_schedule_close(&s);
    return status;
}

int sl__cli_backfill(int argc, char **argv)
{
    backfill_args_t a = {.log = SL_LOGFMT_TEXT};
    int status = parse_backfill(argc, argv, &a);
    if (status == 0)
        status = setup_clock();
    if (status != 0)
        return status;
    sl__log_setup(SL_LOG_INFO, a.log);
    sl_registry_t *reg = NULL;
    sl_workflow_t *wf = NULL;
    serve_ctx_t ctx = {0};
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    ctx.reg = reg;
    status = sl__cli_load(a.path, reg, &wf);
    if (status == 0)
        status = open_state(&sl__cli_backfill_command, &ctx.store);
    if (status == 0)
        status = backfill(&a, wf, &ctx);
    sl__store_close(ctx.store);
    sl__workflow_free(wf);
    sl__registry_free(reg);
    return status;
}
