/*
 * sluice runs, sluice show, sluice cache clear: the run history and the cache, read from
 * the state store. Text is aligned like the run summary; --json prints the same fields
 * (docs/state.md lists them), one document per command.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/common.h"
#include "store/store.h"
#include "value/value.h"

enum { RUNS_WORKFLOW, RUNS_LIMIT, RUNS_JSON };
static const sl_cli_option_t runs_options[] = {
    [RUNS_WORKFLOW] = {"workflow", 0, "NAME", "only the runs of workflow NAME", 0},
    [RUNS_LIMIT] = {"limit", 0, "N", "at most N runs (default 20)", 0},
    [RUNS_JSON] = {"json", 0, NULL, "print the same as JSON", 0},
};

const sl_cli_command_t sl__cli_runs_command = {
    .name = "runs",
    .summary = "list the recorded runs, newest first",
    .description = "Prints one line per run (id, workflow, trigger, start, duration, status,\n"
                   "tasks ok/failed/cached), newest first, from the state folder (.sluice,\n"
                   "or SLUICE_STATE).",
    .options = runs_options,
    .option_count = SL_COUNTOF(runs_options),
    .run = sl__cli_runs,
};

enum { SHOW_JSON };
static const sl_cli_option_t show_options[] = {
    [SHOW_JSON] = {"json", 0, NULL, "print the same as JSON", 0},
};

const sl_cli_command_t sl__cli_show_command = {
    .name = "show",
    .operands = "RUN",
    .operand_kind = SL_CLI_OPERANDS_OTHER,
    .summary = "print a run's steps and its failed tasks with their errors",
    .description = "Prints the steps of RUN (an id from `sluice runs`, or last) with their "
                   "counts and\ntimes, its failed tasks with their errors, why its cached "
                   "steps ran, and\nthe tail of its log.",
    .options = show_options,
    .option_count = SL_COUNTOF(show_options),
    .run = sl__cli_show,
};

enum { CACHE_WORKFLOW };
static const sl_cli_option_t cache_options[] = {
    [CACHE_WORKFLOW] = {"workflow", 0, "NAME", "only the cache of workflow NAME", 0},
};

const sl_cli_command_t sl__cli_cache_command = {
    .name = "cache",
    .operands = "clear",
    .operand_kind = SL_CLI_OPERANDS_WORDS,
    .summary = "clear the cache of task outputs",
    .description = "Drops the cache entries of the state folder (of one workflow with "
                   "--workflow):\nthe next run of a cached step runs its tasks again.",
    .options = cache_options,
    .option_count = SL_COUNTOF(cache_options),
    .run = sl__cli_cache,
};

#define LOG_TAIL 20

/* "2026-12-03T21:28:52Z", or "-" for no time. */
static void format_time(int64_t ms, char *buf, size_t size)
{
    sl__store_format_time(ms, buf, size);
}

static void format_duration(int64_t from, int64_t to, char *buf, size_t size)
{
    if (from <= 0 || to < from)
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, "%.3fs", (double)(to - from) / 1e3);
}

/* The store, or an exit code: SLUICE_STATE=none keeps no history to show. */
static int open_store(sl_store_mode_t mode, sl_store_t **out)
{
    int status = sl__cli_state_open(mode, out);
    if (status == SL_EXIT_OK && *out == NULL) {
        fputs("sluice: error: no state is kept (SLUICE_STATE is 'none')\n", stderr);
        return SL_EXIT_USAGE;
    }
    return status;
}

/* ---- JSON: the store's rows as values (store/json.c), printed once ------------------ */

static int set_str(sl_value_t *map, const char *key, const char *s)
{
    return sl_value_set(map, key, s && *s ? sl_value_cstring(s) : sl_value_nil());
}

static sl_value_t *run_json(const sl_store_run_row_t *r)
{
    return sl__store_run_json(r);
}

static int print_json(const sl_value_t *v)
{
    sl_buf_t b;
    sl__buf_init(&b, (size_t)1 << 30);
    int rc = v ? sl__value_json_append(&b, v, 2) : SL_ENOMEM;
    if (rc == 0)
        fprintf(stdout, "%s\n", b.data);
    sl__buf_close(&b);
    if (rc < 0)
        fprintf(stderr, "sluice: error: %s\n", sl_strerror(rc));
    return rc < 0 ? SL_EXIT_INTERNAL : SL_EXIT_OK;
}

/* ---- sluice runs ------------------------------------------------------------------------- */

typedef struct runs_ctx {
    bool json;
    sl_value_t *list;
    bool header;
} runs_ctx_t;

static int print_run_row(void *ud, const sl_store_run_row_t *r)
{
    runs_ctx_t *c = ud;
    if (c->json)
        return sl_value_push(c->list, run_json(r));
    if (!c->header) {
        fprintf(stdout, "%-22s %-16s %-8s %-20s %9s  %-11s %7s %7s %7s\n", "run", "workflow",
                "trigger", "started", "duration", "status", "ok", "failed", "cached");
        c->header = true;
    }
    char started[32], duration[32];
    format_time(r->started_ms, started, sizeof(started));
    format_duration(r->started_ms, r->finished_ms, duration, sizeof(duration));
    fprintf(stdout, "%-22s %-16.32s %-8s %-20s %9s  %-11s %7" PRIu64 " %7" PRIu64 " %7" PRIu64
            "\n", r->id, r->workflow, r->trigger, started, duration, r->status, r->tasks_ok,
            r->tasks_failed, r->tasks_cached);
    return 0;
}

static int parse_limit(const char *text, uint32_t *out)
{
    char *end;
    long n = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || n < 1 || n > 1000000)
        return sl__cli_usage_error(&sl__cli_runs_command, "--limit expects 1..1000000, got '%s'",
                                   text);
    *out = (uint32_t)n;
    return 0;
}

int sl__cli_runs(int argc, char **argv)
{
    sl_store_filter_t filter = {0};
    runs_ctx_t ctx = {0};
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, &sl__cli_runs_command, argc, argv);
    int index;
    while ((index = sl__cli_parser_next(&parser)) >= 0) {
        if (index == RUNS_WORKFLOW)
            filter.workflow = parser.value;
        else if (index == RUNS_LIMIT && parse_limit(parser.value, &filter.limit) != 0)
            return SL_EXIT_USAGE;
        else if (index == RUNS_JSON)
            ctx.json = true;
    }
    if (index == SL_CLI_PARSE_BAD)
        return SL_EXIT_USAGE;
    if (parser.operand_index < argc)
        return sl__cli_usage_error(&sl__cli_runs_command, "unexpected argument '%s'",
                                   argv[parser.operand_index]);
    sl_store_t *store;
    int status = open_store(SL_STORE_READ, &store);
    if (status != SL_EXIT_OK)
        return status;
    ctx.list = ctx.json ? sl_value_list() : NULL;
    char err[1024];
    int rc = sl__store_list_runs(store, &filter, print_run_row, &ctx, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "sluice: error: %s\n", err);
    else if (ctx.json)
        status = print_json(ctx.list);
    else if (!ctx.header)
        fprintf(stdout, "no runs recorded%s%s\n", filter.workflow ? " of " : "",
                filter.workflow ? filter.workflow : "");
    sl_value_free(ctx.list);
    sl__store_close(store);
    return rc < 0 ? SL_EXIT_INTERNAL : status;
}

/* ---- sluice show ------------------------------------------------------------------------- */

typedef struct show_ctx {
    bool json;
    sl_value_t *steps, *failed, *notes, *log;
    int id_width;
    bool any;
} show_ctx_t;

static int show_step(void *ud, const sl_store_step_row_t *s)
{
    show_ctx_t *c = ud;
    if (c->json)
        return sl_value_push(c->steps, sl__store_step_json(s));
    char duration[32];
    format_duration(s->started_ms, s->ended_ms, duration, sizeof(duration));
    fprintf(stdout, "%-*s  %-12.30s %-9s %7" PRIu64 " %7" PRIu64 " %7" PRIu64 " %7" PRIu64
            " %7" PRIu64 " %7" PRIu64 " %9s\n", c->id_width, s->id, s->kind, s->status,
            s->total, s->ok, s->failed, s->skipped, s->cached, s->retries, duration);
    return 0;
}

static int show_task(void *ud, const sl_store_task_row_t *t)
{
    show_ctx_t *c = ud;
    bool failed = strcmp(t->status, "failed") == 0;
    if (c->json)
        return sl_value_push(failed ? c->failed : c->notes, sl__store_task_json(t));
    c->any = true;
    if (!failed)
        return 0;
    /* "step[2] (1 attempt): message", a traceback's lines indented under it */
    fprintf(stdout, "  %s[%" PRId64 "] (%" PRIu32 " attempt%s): ", t->step_id, t->item + 1,
            t->attempts, t->attempts == 1 ? "" : "s");
    for (const char *p = t->error ? t->error : "failed"; *p; p++) {
        fputc(*p, stdout);
        if (*p == '\n' && p[1])
            fputs("    ", stdout);
    }
    fputc('\n', stdout);
    return 0;
}

/* Per step, how many tasks were cached and why the others ran, counted by reason. */
typedef struct reasons {
    const char *step;
    char step_buf[256];
    struct { char text[256]; uint64_t count; } items[16];
    size_t count;
    uint64_t cached;
    sl_value_t *json;
} reasons_t;

static void flush_reasons(reasons_t *r, bool json)
{
    if (r->step == NULL)
        return;
    if (json) {
        sl_value_t *m = sl_value_map(), *why = sl_value_map();
        int rc = m && why ? set_str(m, "step", r->step) : SL_ENOMEM;
        if (rc == 0)
            rc = sl_value_set(m, "cached", sl_value_int((int64_t)r->cached));
        for (size_t i = 0; rc == 0 && i < r->count; i++)
            rc = sl_value_set(why, r->items[i].text, sl_value_int((int64_t)r->items[i].count));
        rc = rc == 0 ? sl_value_set(m, "misses", why) : (sl_value_free(why), rc);
        if (rc == 0)
            sl_value_push(r->json, m);
        else
            sl_value_free(m);
    } else {
        fprintf(stdout, "  %s: %" PRIu64 " cached", r->step, r->cached);
        for (size_t i = 0; i < r->count; i++)
            fprintf(stdout, "%s%" PRIu64 " ran: %s", i ? "; " : ", ", r->items[i].count,
                    r->items[i].text);
        fputc('\n', stdout);
    }
    r->step = NULL;
    r->count = 0;
    r->cached = 0;
}

static int count_reason(void *ud, const sl_store_task_row_t *t)
{
    reasons_t *r = ud;
    if (t->cache_note == NULL)
        return 0;
    if (r->step == NULL || strcmp(r->step, t->step_id) != 0) {
        flush_reasons(r, r->json != NULL);
        snprintf(r->step_buf, sizeof(r->step_buf), "%s", t->step_id);
        r->step = r->step_buf;
    }
    if (t->cached) {
        r->cached++;
        return 0;
    }
    size_t i = 0;
    while (i < r->count && strcmp(r->items[i].text, t->cache_note) != 0)
        i++;
    if (i == r->count && r->count < SL_COUNTOF(r->items)) {
        snprintf(r->items[i].text, sizeof(r->items[0].text), "%s", t->cache_note);
        r->items[r->count++].count = 0;
    }
    if (i < r->count)
        r->items[i].count++;
    return 0;
}

static int show_log(void *ud, const sl_store_log_row_t *l)
{
    show_ctx_t *c = ud;
    char when[32];
    format_time(l->time_ms, when, sizeof(when));
    c->any = true;
    if (!c->json) {
        fprintf(stdout, "  %s %-5s %s%s%s\n", when, l->level, l->where ? l->where : "",
                l->where ? ": " : "", l->message);
        return 0;
    }
    return sl_value_push(c->log, sl__store_log_json(l));
}

static void print_run_head(const sl_store_run_row_t *r)
{
    char started[32], duration[32];
    format_time(r->started_ms, started, sizeof(started));
    format_duration(r->started_ms, r->finished_ms, duration, sizeof(duration));
    fprintf(stdout, "run %s of %s (%s): %s\n", r->id, r->workflow, r->path, r->status);
    fprintf(stdout, "trigger %s%s%s, started %s, took %s; tasks %" PRIu64 " ok, %" PRIu64
            " failed, %" PRIu64 " cached\n", r->trigger, r->resumed_from[0] ? " of " : "",
            r->resumed_from, started, duration, r->tasks_ok, r->tasks_failed, r->tasks_cached);
    if (r->error[0])
        fprintf(stdout, "error: %s\n", r->error);
}

static int show_text(sl_store_t *store, const sl_store_run_row_t *r, char *err, size_t n)
{
    show_ctx_t c = {.id_width = 16};
    print_run_head(r);
    fprintf(stdout, "\n%-*s  %-12s %-9s %7s %7s %7s %7s %7s %7s %9s\n", c.id_width, "step",
            "kind", "status", "tasks", "ok", "failed", "skipped", "cached", "retries", "time");
    int rc = sl__store_list_steps(store, r->seq, show_step, &c, err, n);
    fprintf(stdout, "\nfailed tasks:\n");
    if (rc == 0)
        rc = sl__store_list_tasks(store, r->seq, false, show_task, &c, err, n);
    if (rc == 0 && !c.any)
        fputs("  none\n", stdout);
    reasons_t reasons = {0};
    fprintf(stdout, "\ncache:\n");
    if (rc == 0)
        rc = sl__store_list_tasks(store, r->seq, true, count_reason, &reasons, err, n);
    if (rc == 0 && reasons.step == NULL)
        fputs("  no cached steps\n", stdout);
    flush_reasons(&reasons, false);
    fprintf(stdout, "\nlog (last %d lines):\n", LOG_TAIL);
    c.any = false;
    if (rc == 0)
        rc = sl__store_list_logs(store, r->seq, LOG_TAIL, show_log, &c, err, n);
    if (rc == 0 && !c.any)
        fputs("  none\n", stdout);
    return rc;
}

static int show_json(sl_store_t *store, const sl_store_run_row_t *r, char *err, size_t n)
{
    show_ctx_t c = {.json = true, .steps = sl_value_list(), .failed = sl_value_list(),
                    .log = sl_value_list(), .notes = sl_value_list()};
    reasons_t reasons = {.json = sl_value_list()};
    sl_value_t *doc = run_json(r);
    int rc = doc && c.steps && c.failed && c.log && c.notes && reasons.json ? 0 : SL_ENOMEM;
    if (rc == 0)
        rc = sl__store_list_steps(store, r->seq, show_step, &c, err, n);
    if (rc == 0)
        rc = sl__store_list_tasks(store, r->seq, false, show_task, &c, err, n);
    if (rc == 0)
        rc = sl__store_list_tasks(store, r->seq, true, count_reason, &reasons, err, n);
    flush_reasons(&reasons, true);
    if (rc == 0)
        rc = sl__store_list_logs(store, r->seq, LOG_TAIL, show_log, &c, err, n);
    const char *keys[] = {"steps", "failed", "cache", "log"};
    sl_value_t *parts[] = {c.steps, c.failed, reasons.json, c.log};
    for (size_t i = 0; i < SL_COUNTOF(keys); i++) {
        if (rc == 0)
            rc = sl_value_set(doc, keys[i], parts[i]);
        else
            sl_value_free(parts[i]);
    }
    sl_value_free(c.notes);
    if (rc == 0)
        rc = print_json(doc) == SL_EXIT_OK ? 0 : SL_ENOMEM;
    else if (rc == SL_ENOMEM)
        snprintf(err, n, "out of memory");
    sl_value_free(doc);
    return rc;
}

int sl__cli_show(int argc, char **argv)
{
    bool json = false;
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, &sl__cli_show_command, argc, argv);
    int index;
    while ((index = sl__cli_parser_next(&parser)) >= 0)
        json = json || index == SHOW_JSON;
    if (index == SL_CLI_PARSE_BAD)
        return SL_EXIT_USAGE;
    if (parser.operand_index >= argc)
        return sl__cli_usage_error(&sl__cli_show_command, "no run given (an id from "
                                   "'sluice runs', or 'last')");
    if (parser.operand_index + 1 < argc)
        return sl__cli_usage_error(&sl__cli_show_command, "expected one run");
    const char *ref = argv[parser.operand_index];
    sl_store_t *store;
    int status = open_store(SL_STORE_READ, &store);
    if (status != SL_EXIT_OK)
        return status;
    char err[1024];
    sl_store_run_row_t row;
    int rc = sl__store_find_run(store, ref, NULL, &row, err, sizeof(err));
    if (rc == 0)
        rc = json ? show_json(store, &row, err, sizeof(err)) : show_text(store, &row, err,
                                                                          sizeof(err));
    if (rc < 0)
        fprintf(stderr, "sluice: error: %s\n", err);
    sl__store_close(store);
    return rc == SL_ENOTFOUND ? SL_EXIT_USAGE : rc < 0 ? SL_EXIT_INTERNAL : SL_EXIT_OK;
}

/* ---- sluice cache clear ------------------------------------------------------------------- */

int sl__cli_cache(int argc, char **argv)
{
    const char *workflow = NULL;
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, &sl__cli_cache_command, argc, argv);
    int index;
    while ((index = sl__cli_parser_next(&parser)) >= 0)
        if (index == CACHE_WORKFLOW)
            workflow = parser.value;
    if (index == SL_CLI_PARSE_BAD)
        return SL_EXIT_USAGE;
    int at = parser.operand_index;
    if (at >= argc)
        return sl__cli_usage_error(&sl__cli_cache_command, "no cache command given (clear)");
    if (strcmp(argv[at], "clear") != 0)
        return sl__cli_usage_error(&sl__cli_cache_command, "unknown cache command '%s' "
                                   "(clear)", argv[at]);
    if (at + 1 < argc)
        return sl__cli_usage_error(&sl__cli_cache_command, "unexpected argument '%s'",
                                   argv[at + 1]);
    sl_store_t *store;
    int status = open_store(SL_STORE_WRITE, &store);
    if (status != SL_EXIT_OK)
        return status;
    char err[1024];
    uint64_t removed = 0;
    int rc = sl__store_cache_clear(store, workflow, &removed, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "sluice: error: %s\n", err);
    else
        fprintf(stdout, "cache: %" PRIu64 " entr%s removed%s%s\n", removed,
                removed == 1 ? "y" : "ies", workflow ? " of " : "", workflow ? workflow : "");
    sl__store_close(store);
    return rc < 0 ? SL_EXIT_INTERNAL : SL_EXIT_OK;
}
