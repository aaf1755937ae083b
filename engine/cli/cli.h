/*
 * cli: the sluice command line. Each command is `int sl__cli_NAME(int argc,
 * char **argv)` with argv[0] the command name; it returns the process exit
 * code of SPEC §5 (0 ok, 1 run failed, 2 bad input, 3 internal error). Its
 * options, help and synopsis are its table, sl__cli_NAME_command (cli/command.h);
 * main() answers --help from the table before the command runs.
 * The CLI module owns user-facing output: progress, summaries, errors.
 */
#ifndef SL_CLI_H
#define SL_CLI_H

enum { SL_EXIT_OK = 0, SL_EXIT_FAILED = 1, SL_EXIT_USAGE = 2, SL_EXIT_INTERNAL = 3 };

int sl__cli_run(int argc, char **argv);
int sl__cli_validate(int argc, char **argv);
int sl__cli_graph(int argc, char **argv);
int sl__cli_plugins(int argc, char **argv);
int sl__cli_next(int argc, char **argv);
int sl__cli_runs(int argc, char **argv);
int sl__cli_show(int argc, char **argv);
int sl__cli_cache(int argc, char **argv);
int sl__cli_serve(int argc, char **argv);
int sl__cli_backfill(int argc, char **argv);

struct sl_cli_command;
extern const struct sl_cli_command sl__cli_run_command;
extern const struct sl_cli_command sl__cli_validate_command;
extern const struct sl_cli_command sl__cli_graph_command;
extern const struct sl_cli_command sl__cli_plugins_command;
extern const struct sl_cli_command sl__cli_next_command;
extern const struct sl_cli_command sl__cli_runs_command;
extern const struct sl_cli_command sl__cli_show_command;
extern const struct sl_cli_command sl__cli_cache_command;
extern const struct sl_cli_command sl__cli_serve_command;
extern const struct sl_cli_command sl__cli_backfill_command;

/** Hidden: `sluice __man` prints the man page sluice(1) in roff (cli/man.c). */
int sl__cli_man(int argc, char **argv);
/** Hidden: `sluice __completion bash` prints the bash completion script (cli/completion.c). */
int sl__cli_completion(int argc, char **argv);

/** Loads the default plugin registry, printing plugin problems as warnings. */
struct sl_registry;
int sl__cli_registry(struct sl_registry **out);

#endif
