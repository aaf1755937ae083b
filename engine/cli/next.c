/* `sluice next`: a schedule's next fire times, in its time zone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cron/cron.h"

#define NEXT_COUNT_DEFAULT 5
#define NEXT_COUNT_MAX 100000

typedef struct next_args {
    const char *path;
    const char *from; /* NULL: now */
    long count;
} next_args_t;

enum { NEXT_COUNT, NEXT_FROM };

/* The numbers in --count's help are NEXT_COUNT_DEFAULT and NEXT_COUNT_MAX. */
static const sl_cli_option_t next_options[] = {
    [NEXT_COUNT] = {"count", 0, "N", "how many times to print (default 5, at most 100000)", 0},
    [NEXT_FROM] = {"from", 0, "TIME",
                   "start strictly after TIME, e.g. 2026-03-29T00:00:00+01:00 or\n"
                   "2026-03-29 (without an offset: in the schedule's timezone;\n"
                   "default: now)", 0},
};

const sl_cli_command_t sl__cli_next_command = {
    .name = "next",
    .operands = "FILE",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "print a schedule's next fire times",
    .description = "Prints the next fire times of the workflow's schedule, all its cron "
                   "expressions\nmerged, one per line in ISO-8601 with the UTC offset of the "
                   "schedule's timezone.",
    .options = next_options,
    .option_count = SL_COUNTOF(next_options),
    .run = sl__cli_next,
};

static const sl_cli_command_t *const next_cmd = &sl__cli_next_command;

static int parse_count(const char *text, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < 1 || v > NEXT_COUNT_MAX)
        return sl__cli_usage_error(next_cmd, "invalid --count '%s' (expected 1 to %d)", text,
                                   NEXT_COUNT_MAX);
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, next_args_t *args)
{
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, next_cmd, argc, argv);
    int index;
    while ((index = sl__cli_parser_next(&parser)) >= 0) {
        int64_t t;
        if (index == NEXT_COUNT && parse_count(parser.value, &args->count) != 0)
            return SL_EXIT_USAGE;
        if (index == NEXT_FROM && sl__time_parse(parser.value, "UTC", &t) < 0)
            return sl__cli_usage_error(next_cmd, "invalid --from '%s' (expected an "
                                       "ISO-8601 time like 2026-03-29T00:00:00+01:00)",
                                       parser.value);
        if (index == NEXT_FROM)
            args->from = parser.value;
    }
    if (index == SL_CLI_PARSE_BAD)
        return SL_EXIT_USAGE;
    return sl__cli_parser_one_file(&parser, &args->path);
}

static void print_problem(const char *path, sl_mark_t mark, const char *message)
{
    if (mark.line)
        fprintf(stderr, "%s:%u:%u: error: %s\n", path, mark.line, mark.col, message);
    else
        fprintf(stderr, "%s: error: %s\n", path, message);
}

/* Parses every expression of the schedule; NULL entries never happen on success. */
static int parse_schedule(const char *path, const sl_schedule_t *sched, sl_cron_t **crons)
{
    for (size_t i = 0; i < sched->cron_count; i++) {
        char err[256] = "", message[320];
        size_t offset = 0;
        int rc = sl__cron_parse(sched->cron[i], &crons[i], err, sizeof err, &offset);
        if (rc == SL_ENOMEM)
            return SL_EXIT_INTERNAL;
        if (rc < 0) {
            snprintf(message, sizeof message, "schedule.cron: %s", err);
            print_problem(path, sched->cron_marks ? sched->cron_marks[i] : (sl_mark_t){0, 0},
                          message);
            return SL_EXIT_USAGE;
        }
    }
    return 0;
}

/* Prints up to `count` times, merging the expressions and dropping duplicates. */
static int print_times(const sl_schedule_t *sched, sl_cron_t **crons, const sl_tz_t *tz,
                       int64_t from, long count, long *printed)
{
    size_t n = sched->cron_count;
    int64_t *next = sl__calloc(n, sizeof *next);
    bool *done = sl__calloc(n, sizeof *done);
    int status = SL_EXIT_INTERNAL;
    if (next == NULL || done == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        done[i] = sl__cron_next_tz(crons[i], tz, from, &next[i]) < 0;
    for (*printed = 0; *printed < count; (*printed)++) {
        int64_t t = INT64_MAX;
        for (size_t i = 0; i < n; i++)
            if (!done[i] && next[i] < t)
                t = next[i];
        if (t == INT64_MAX)
            break;
        char buf[64];
        if (sl__time_format_tz(t, tz, buf, sizeof buf) < 0)
            break;
        fprintf(stdout, "%s\n", buf);
        for (size_t i = 0; i < n; i++)
            if (!done[i] && next[i] == t)
                done[i] = sl__cron_next_tz(crons[i], tz, t, &next[i]) < 0;
    }
    status = SL_EXIT_OK;
out:
    sl__free(next);
    sl__free(done);
    return status;
}

static int64_t now_seconds(void)
{
    return sl__clock_wall_ms() / 1000; /* SLUICE_NOW's clock (cron/clock.c) */
}

/* Prints the times of a loaded workflow's schedule; returns an exit code. */
static int run_next(const next_args_t *args, const sl_workflow_t *wf)
{
    const sl_schedule_t *sched = &wf->schedule;
    sl_cron_t **crons = NULL;
    sl_tz_t *tz = NULL;
    int status = SL_EXIT_USAGE, rc;
    if (!sched->present || sched->cron_count == 0) {
        fprintf(stderr, "%s: error: workflow '%s' has no schedule\n", args->path, wf->name);
        return SL_EXIT_USAGE;
    }
    const char *zone = sched->timezone ? sched->timezone : "UTC";
    if ((rc = sl__tz_load(zone, &tz)) < 0) {
        status = rc == SL_ENOMEM ? SL_EXIT_INTERNAL : SL_EXIT_USAGE;
        if (rc != SL_ENOMEM)
            fprintf(stderr, "%s: error: unknown timezone '%s'\n", args->path, zone);
        goto out;
    }
    int64_t from = now_seconds();
    if (args->from && sl__time_parse_tz(args->from, tz, &from) < 0) {
        status = sl__cli_usage_error(next_cmd, "invalid --from '%s'", args->from);
        goto out;
    }
    crons = sl__calloc(sched->cron_count, sizeof *crons);
    if (crons == NULL) {
        status = SL_EXIT_INTERNAL;
        goto out;
    }
    if ((status = parse_schedule(args->path, sched, crons)) != 0)
        goto out;
    long printed = 0;
    status = print_times(sched, crons, tz, from, args->count, &printed);
    if (status == SL_EXIT_OK && printed == 0) {
        print_problem(args->path, sched->cron_marks ? sched->cron_marks[0] : (sl_mark_t){0, 0},
                      "the schedule never fires (searched 5 years ahead)");
        status = SL_EXIT_USAGE;
    }
out:
    for (size_t i = 0; crons && i < sched->cron_count; i++)
        sl__cron_free(crons[i]);
    sl__free(crons);
    sl__tz_free(tz);
    return status;
}

int sl__cli_next(int argc, char **argv)
{
    next_args_t args = {NULL, NULL, NEXT_COUNT_DEFAULT};
    int status = parse_args(argc, argv, &args);
    if (status != 0)
        return status;
    char err[256];
    if (sl__clock_setup_env(err, sizeof err) < 0) {
        fprintf(stderr, "sluice: error: %s\n", err);
        return SL_EXIT_USAGE;
    }
    sl_registry_t *reg = NULL;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    sl_workflow_t *wf = NULL;
    status = sl__cli_load(args.path, reg, &wf);
    if (status == SL_EXIT_OK)
        status = run_next(&args, wf);
    sl__workflow_free(wf);
    sl__registry_free(reg);
    return status;
}
