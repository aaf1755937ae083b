/*
 * The commands of SPEC §5 in its order: the list `sluice --help`, the man page and the
 * completion walk. Each implemented command's table sits beside its code; the commands
 * this version lacks have a placeholder here (`run` NULL) with their SPEC synopsis, so the
 * man page can show them. Implementing one moves its table to its file (cli/command.h
 * says how) and points its entry in sl__cli_commands[] at that.
 */
#include "cli/cli.h"
#include "cli/command.h"

const char sl__cli_tagline[] = "sluice runs YAML workflows of fetch, parse, compute and write "
                               "steps.";

static const sl_cli_option_t serve_options[] = {
    {"once", 0, NULL, "run every tick that is due now and exit when those runs end", 0},
    {"http", 0, "ADDR", "also serve the dashboard and /metrics at ADDR (e.g.\n"
                        "127.0.0.1:7070); an address off loopback must be explicit", 0},
};

static const sl_cli_command_t serve_command = {
    .name = "serve",
    .operands = "[PATH...]",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "run workflows at the ticks of their schedules, with a dashboard",
    .description = "Runs each workflow of the files or folders given that has a schedule at "
                   "its ticks,\nall on one loop, recording each run with trigger cron.",
    .options = serve_options,
    .option_count = SL_COUNTOF(serve_options),
};

static const sl_cli_option_t backfill_options[] = {
    {"from", 0, "TIME", "the first tick's earliest time (ISO-8601)", SL_CLI_REQUIRED},
    {"to", 0, "TIME", "the last tick's latest time (ISO-8601)", SL_CLI_REQUIRED},
};

static const sl_cli_command_t backfill_command = {
    .name = "backfill",
    .operands = "FILE",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "run one run per tick of a schedule in a range, oldest first",
    .description = "Runs the workflow once for each tick of its schedule in the range, oldest "
                   "first.",
    .options = backfill_options,
    .option_count = SL_COUNTOF(backfill_options),
};

const sl_cli_command_t *const sl__cli_commands[] = {
    &sl__cli_run_command,  &sl__cli_validate_command, &sl__cli_graph_command,
    &serve_command,        &sl__cli_runs_command,     &sl__cli_show_command,
    &sl__cli_cache_command,        &sl__cli_plugins_command,  &sl__cli_next_command,
    &backfill_command,
};

const size_t sl__cli_command_count = SL_COUNTOF(sl__cli_commands);
