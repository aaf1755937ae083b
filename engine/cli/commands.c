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

const sl_cli_command_t *const sl__cli_commands[] = {
    &sl__cli_run_command,      &sl__cli_validate_command, &sl__cli_graph_command,
    &sl__cli_serve_command,    &sl__cli_runs_command,     &sl__cli_show_command,
    &sl__cli_cache_command,    &sl__cli_plugins_command,  &sl__cli_next_command,
    &sl__cli_backfill_command,
};

const size_t sl__cli_command_count = SL_COUNTOF(sl__cli_commands);
