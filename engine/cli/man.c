/*
 * `sluice __man`: the man page sluice(1) in roff, written from the command tables
 * (cli/command.h) so that it says what `--help` says. The build runs it into
 * build/sluice.1 (CMakeLists.txt); only the sections no table describes (exit status,
 * environment, files) are written out here.
 */
#include <ctype.h>
#include <stdlib.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/command.h"

/* Writes `text` as roff text lines. A '\n' starts a new input line (roff refills them), a
 * blank line a new paragraph; a backslash, a '-' (an ASCII minus, not a hyphen, so that
 * options copy and search as typed) and a control character at a line's start are
 * escaped. */
static void put_text(FILE *out, const char *text)
{
    bool line_start = true;
    for (const char *p = text; *p; p++) {
        if (line_start && *p == '\n') {
            fputs(".PP\n", out);
            continue;
        }
        if (line_start && (*p == '.' || *p == '\''))
            fputs("\\&", out);
        line_start = *p == '\n';
        if (*p == '\\')
            fputs("\\e", out);
        else if (*p == '-')
            fputs("\\-", out);
        else
            fputc(*p, out);
    }
    if (!line_start)
        fputc('\n', out);
}

/* A character of a name: '-' is an ASCII minus in roff, not a hyphen. */
static void put_name_char(FILE *out, char c)
{
    if (c == '-')
        fputs("\\-", out);
    else
        fputc(c, out);
}

static void put_name(FILE *out, const char *name)
{
    for (const char *p = name; *p; p++)
        put_name_char(out, *p);
}

/* Writes a synopsis word ("FILE...", "text|json", "[PATH...]") in man's fonts: upper-case
 * names of values in italics, literal lower-case words in bold, punctuation in roman. */
static void put_word(FILE *out, const char *word)
{
    for (const char *p = word; *p;) {
        const char *start = p;
        if (isupper((unsigned char)*p)) {
            while (isupper((unsigned char)*p) || *p == '_')
                p++;
            fprintf(out, "\\fI%.*s\\fR", (int)(p - start), start);
        } else if (islower((unsigned char)*p)) {
            while (islower((unsigned char)*p) || *p == '-' || *p == '_')
                p++;
            fputs("\\fB", out);
            for (; start < p; start++)
                put_name_char(out, *start);
            fputs("\\fR", out);
        } else {
            put_name_char(out, *p++);
        }
    }
}

/* "\fB\-\-var\fR\ \fIK=V\fR": an option and its value, kept on one output line. */
static void put_option(FILE *out, const sl_cli_option_t *opt)
{
    fputs("\\fB\\-\\-", out);
    put_name(out, opt->name);
    fputs("\\fR", out);
    if (opt->arg) {
        fputs("\\ ", out);
        put_word(out, opt->arg);
    }
}

/* One command's synopsis as a text line: "\fBsluice run\fR \fIFILE\fR [...]...". */
static void put_synopsis(FILE *out, const sl_cli_command_t *cmd)
{
    fputs("\\fBsluice ", out);
    put_name(out, cmd->name);
    fputs("\\fR", out);
    if (cmd->operands) {
        fputc(' ', out);
        put_word(out, cmd->operands);
    }
    for (size_t i = 0; i < cmd->option_count; i++) {
        const sl_cli_option_t *opt = &cmd->options[i];
        fputs((opt->flags & SL_CLI_REQUIRED) ? " " : " [", out);
        put_option(out, opt);
        fputs((opt->flags & SL_CLI_REQUIRED) ? "" : "]", out);
        if ((opt->flags & SL_CLI_REPEATABLE))
            fputs("...", out);
    }
    fputc('\n', out);
}

static void put_options(FILE *out, const sl_cli_command_t *cmd)
{
    for (size_t i = 0; i < cmd->option_count; i++) {
        const sl_cli_option_t *opt = &cmd->options[i];
        fputs(".TP\n", out);
        if (opt->short_name)
            fprintf(out, "\\fB\\-%c\\fR, ", opt->short_name);
        put_option(out, opt);
        fputc('\n', out);
        put_text(out, opt->help ? opt->help : "");
    }
}

static void put_command(FILE *out, const sl_cli_command_t *cmd)
{
    fprintf(out, ".SS %s\n", cmd->name);
    put_synopsis(out, cmd);
    fputs(".PP\n", out);
    put_text(out, cmd->description);
    if (cmd->run == NULL)
        fputs(".PP\nNot implemented in this version of sluice yet: it exits with status 2.\n",
              out);
    put_options(out, cmd);
    if (cmd->epilogue) {
        fputs(".PP\n", out);
        put_text(out, cmd->epilogue);
    }
}

/* The page's date: SOURCE_DATE_EPOCH when the build sets it (reproducible builds), else
 * none, so that the same sources give the same page. */
static void put_title(FILE *out)
{
    char date[32] = "";
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    char *end;
    time_t seconds = epoch ? (time_t)strtoll(epoch, &end, 10) : 0;
    struct tm tm;
    if (epoch && *epoch && *end == '\0' && gmtime_r(&seconds, &tm))
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
    fputs(".\\\" sluice(1), written by `sluice __man` from the command tables of engine/cli.\n"
          ".\\\" Do not edit: change the tables (engine/cli/command.h).\n", out);
    fprintf(out, ".TH SLUICE 1 \"%s\" \"sluice %s\" \"User Commands\"\n", date, SLUICE_VERSION);
    /* No hyphenation: a broken option name or path is no longer copied as typed. */
    fputs(".nh\n", out);
    fputs(".SH NAME\nsluice \\- run workflows of fetch, parse, compute and write steps\n", out);
}

static void put_synopses(FILE *out)
{
    fputs(".SH SYNOPSIS\n", out);
    for (size_t i = 0; i < sl__cli_command_count; i++) {
        put_synopsis(out, sl__cli_commands[i]);
        fputs(".br\n", out);
    }
    fputs("\\fBsluice\\fR \\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR | "
          "\\fICOMMAND\\fR \\fB\\-\\-help\\fR\n", out);
}

static const char DESCRIPTION[] =
    "sluice runs a workflow: a YAML file of steps with dependencies. IO steps (HTTP, files,\n"
    "subprocesses) run on one event loop, CPU steps in a pool of worker processes; every\n"
    "step kind is a plugin, a shared object, or a Lua script.\n"
    "\n"
    "Each command below accepts -h or --help, which prints its usage and options.\n"
    "Errors about a workflow are printed to standard error as FILE:LINE:COL: error: MESSAGE,\n"
    "one per problem, all of them in one pass.";

static const char EXIT_STATUS[][2][64] = {
    {"0", "success"},
    {"1", "the run failed: a step failed"},
    {"2", "the input is wrong: usage, YAML, validation"},
    {"3", "internal error"},
};

/* The sections no table holds. The plugin folder is the one engine/plugin/registry.c
 * searches, relative to the binary. */
static void put_reference(FILE *out)
{
    fputs(".SH EXIT STATUS\n", out);
    for (size_t i = 0; i < SL_COUNTOF(EXIT_STATUS); i++)
        fprintf(out, ".TP\n.B %s\n%s\n", EXIT_STATUS[i][0], EXIT_STATUS[i][1]);
    fputs(".SH ENVIRONMENT\n.TP\n.B SLUICE_PLUGIN_PATH\n", out);
    put_text(out, "Folders of further plugins, separated by ':', searched after the built-in\n"
                  "plugins folder, in that order.");
    fputs(".TP\n.B SLUICE_STATE\n", out);
    put_text(out, "The state folder, instead of .sluice under the working directory;\n"
                  "'none' keeps no state (no history, no cache, no --resume).");
    fputs(".TP\n.B SLUICE_NOW\n", out);
    put_text(out, "An ISO-8601 time with offset: the clock of serve, next and backfill\n"
                  "starts there and advances in real time. It exists for tests. (This version's\n"
                  "next does not read it yet; serve and backfill are still to come.)");
    fputs(".SH FILES\n.TP\n.I .sluice/\n", out);
    put_text(out, "The state: state.db, a SQLite database of runs, steps and tasks;\n"
                  "objects/, their outputs and the cache; locks/, the run locks.");
    fprintf(out, ".TP\n.I PREFIX/%s/\n", SLUICE_INSTALL_PLUGIN_DIR);
    put_text(out, "The built-in plugins: every *.so there is loaded. Your own plugins go\n"
                  "there too; pkg-config --variable=plugindir sluice names it.");
    fprintf(out, ".TP\n.I PREFIX/%s/\n", SLUICE_INSTALL_LUA_DIR);
    put_text(out, "The Lua library and example Lua steps.");
    fputs(".SH SEE ALSO\n.BR pkg\\-config (1)\n.PP\n", out);
    put_text(out, "The guides in the docs/ folder of sluice's sources: workflow.md (the YAML\n"
                  "reference), plugins.md (writing a plugin), lua.md, http.md, install.md.");
}

int sl__cli_man(int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "sluice: error: usage: sluice __man\n");
        return SL_EXIT_USAGE;
    }
    if (sl__cli_tables_check(stderr) != 0)
        return SL_EXIT_INTERNAL;
    put_title(stdout);
    put_synopses(stdout);
    fputs(".SH DESCRIPTION\n", stdout);
    put_text(stdout, DESCRIPTION);
    fputs(".SH COMMANDS\n", stdout);
    for (size_t i = 0; i < sl__cli_command_count; i++)
        put_command(stdout, sl__cli_commands[i]);
    put_reference(stdout);
    return SL_EXIT_OK;
}
