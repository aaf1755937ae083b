/*
 * cli/command: every command of SPEC §5 described once, by a table.
 *
 * A command's sl_cli_command_t (beside its code, in run.c, next.c, inspect.c; the ones
 * this version lacks in commands.c) is the single source of `COMMAND --help`, the list
 * of `sluice --help`, the getopt options its parser accepts, its usage line in errors,
 * its section of the man page (`sluice __man`, cli/man.c) and its bash completion
 * (`sluice __completion bash`, cli/completion.c). Nothing else spells an option, so they
 * cannot drift.
 *
 * Adding (or implementing) a command:
 *   1. In its file (cli/NAME.c), an enum naming its options' indexes and their table:
 *        enum { SHOW_JSON };
 *        static const sl_cli_option_t show_options[] = {
 *            [SHOW_JSON] = {"json", 0, NULL, "print the run as JSON"},
 *        };
 *   2. Its command, with `run` set to its function (`int sl__cli_NAME(int, char **)`,
 *      declared in cli/cli.h with `extern const sl_cli_command_t sl__cli_NAME_command`):
 *        const sl_cli_command_t sl__cli_show_command = {
 *            .name = "show", .operands = "RUN", .operand_kind = SL_CLI_OPERANDS_OTHER,
 *            .summary = "...", .description = "...",
 *            .options = show_options, .option_count = SL_COUNTOF(show_options),
 *            .run = sl__cli_show,
 *        };
 *   3. In commands.c, its place in sl__cli_commands[] (SPEC §5's order) points at it,
 *      replacing the placeholder there if it had one.
 *   4. Its function parses with sl_cli_parser_t: sl__cli_parser_init, then
 *      sl__cli_parser_next returns each option's index in the table (with `value`) until
 *      SL_CLI_PARSE_END; SL_CLI_PARSE_BAD means the error is printed, exit 2. Usage
 *      errors go through sl__cli_usage_error(&sl__cli_NAME_command, ...). `--help` never
 *      reaches it: main() answers it from the table.
 * The man page, completion and tests/integration/man_help.sh pick the command up from
 * there. A subcommand word such as `cache clear` is the operand (SL_CLI_OPERANDS_WORDS).
 */
#ifndef SL_CLI_COMMAND_H
#define SL_CLI_COMMAND_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/util.h"

/** Options a command may have; the parser's getopt arrays are sized by it. */
#define SL_CLI_OPTIONS_MAX 16

typedef struct sl_cli_option {
    const char *name;  /**< long name without "--": "dry-run" */
    char short_name;   /**< 'n' for -n; 0 when there is none */
    const char *arg;   /**< the value's name ("N", "K=V"); a '|' list names the values
                            completion offers ("text|json"); NULL for a flag */
    const char *help;  /**< --help's text, wrapped with '\n' for an 80-column terminal
                            (the man page refills it) */
    unsigned flags;    /**< SL_CLI_REPEATABLE, SL_CLI_REQUIRED; 0 for neither */
} sl_cli_option_t;

enum {
    SL_CLI_REPEATABLE = 1, /* may be given more than once: "[--var K=V]..." */
    SL_CLI_REQUIRED = 2,   /* must be given: the synopsis shows it without brackets */
};

/** What a command's operands are, for completion. */
typedef enum {
    SL_CLI_OPERANDS_NONE,
    SL_CLI_OPERANDS_WORKFLOWS, /* workflow files (*.yaml, *.yml) or folders of them */
    SL_CLI_OPERANDS_OTHER,     /* run ids, names: nothing to offer */
    SL_CLI_OPERANDS_WORDS,     /* `operands` is a '|' list of literal words ("clear") */
} sl_cli_operands_t;

typedef struct sl_cli_command {
    const char *name;
    const char *operands;            /**< the synopsis's operands ("FILE", "FILE..."), or NULL */
    sl_cli_operands_t operand_kind;
    const char *summary;             /**< one line, lower case: `sluice --help`'s list */
    const char *description;         /**< --help's paragraph(s) under the usage line; a blank
                                          line starts a new paragraph */
    const char *epilogue;            /**< printed after the options, or NULL */
    const sl_cli_option_t *options;
    size_t option_count;
    /** Runs the command, argv[0] its name; NULL: not in this version (exit 2). */
    int (*run)(int argc, char **argv);
} sl_cli_command_t;

/** Every command of SPEC §5, in its order; commands.c. */
extern const sl_cli_command_t *const sl__cli_commands[];
extern const size_t sl__cli_command_count;
/** The one-line description of sluice (`sluice --help`, the man page's NAME). */
extern const char sl__cli_tagline[];

/** Checks the tables: at most SL_CLI_OPTIONS_MAX options a command, no name or short name
 *  twice in a command, no command twice, a summary and description each. Prints each
 *  problem to `err` and returns their number. `sluice __man` and `__completion` run it, so a
 *  table the parser could not follow fails the build. */
int sl__cli_tables_check(FILE *err);
/** The command named `name` (hidden ones excluded), or NULL. */
const sl_cli_command_t *sl__cli_command_find(const char *name);

/** Writes "sluice NAME OPERANDS [--opt ARG]..." into `buf` (truncated to `size`). */
void sl__cli_synopsis(const sl_cli_command_t *cmd, char *buf, size_t size);
/** Prints `COMMAND --help`. */
void sl__cli_help_print(const sl_cli_command_t *cmd, FILE *out);
/** Prints "sluice: error: …" and the command's usage line to stderr; returns SL_EXIT_USAGE. */
int sl__cli_usage_error(const sl_cli_command_t *cmd, const char *fmt, ...) SL_PRINTF(2, 3);

/** getopt_long over a command's table. `--help` is handled before a command runs
 *  (sl__cli_wants_help), so the parser never sees it. */
typedef struct sl_cli_parser {
    const sl_cli_command_t *cmd;
    int argc;
    char **argv;
    const char *value; /**< the argument of the option just returned; borrowed from argv */
    int operand_index; /**< after SL_CLI_PARSE_END: argv[operand_index..argc-1] are the
                            operands (getopt moves them behind the options) */
    struct option longopts[SL_CLI_OPTIONS_MAX + 1];
    char shortopts[2 + 2 * SL_CLI_OPTIONS_MAX];
} sl_cli_parser_t;

enum {
    SL_CLI_PARSE_END = -1, /* no option left: argv[optind..argc-1] are the operands */
    SL_CLI_PARSE_BAD = -2, /* a usage error was printed: exit SL_EXIT_USAGE */
};

void sl__cli_parser_init(sl_cli_parser_t *p, const sl_cli_command_t *cmd, int argc,
                         char **argv);
/** Returns the index in cmd->options of the next option, or SL_CLI_PARSE_END/BAD. */
int sl__cli_parser_next(sl_cli_parser_t *p);
/** After SL_CLI_PARSE_END: the one operand into *out (borrowed), or a usage error's exit
 *  code ("no workflow file given", "expected one workflow file"). */
int sl__cli_parser_one_file(sl_cli_parser_t *p, const char **out);

#endif
