/* The command tables (cli/command.h) turned into --help, usage lines and a getopt parser. */
#include <stdarg.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/command.h"

/* getopt_long's value for the long option at index i: past every short option's char. */
#define LONG_OPTION_BASE 0x100

const sl_cli_command_t *sl__cli_command_find(const char *name)
{
    for (size_t i = 0; i < sl__cli_command_count; i++)
        if (strcmp(sl__cli_commands[i]->name, name) == 0)
            return sl__cli_commands[i];
    return NULL;
}

static int check_command(const sl_cli_command_t *cmd, FILE *err)
{
    int problems = 0;
    if (cmd->option_count > SL_CLI_OPTIONS_MAX || !cmd->summary || !cmd->description) {
        fprintf(err, "sluice: error: command '%s': more than %d options, or no summary or "
                     "description\n", cmd->name, SL_CLI_OPTIONS_MAX);
        problems++;
    }
    for (size_t i = 0; i < cmd->option_count; i++) {
        const sl_cli_option_t *opt = &cmd->options[i];
        if (strcmp(opt->name, "help") == 0 || opt->short_name == 'h') {
            /* main() answers --help and -h before the command's parser runs */
            fprintf(err, "sluice: error: command '%s': --help and -h are every command's\n",
                    cmd->name);
            problems++;
        }
        for (size_t j = 0; j < i; j++) {
            const sl_cli_option_t *before = &cmd->options[j];
            if (strcmp(opt->name, before->name) == 0 ||
                (opt->short_name && opt->short_name == before->short_name)) {
                fprintf(err, "sluice: error: command '%s': options '%s' and '%s' share a name\n",
                        cmd->name, before->name, opt->name);
                problems++;
            }
        }
    }
    return problems;
}

int sl__cli_tables_check(FILE *err)
{
    int problems = 0;
    for (size_t i = 0; i < sl__cli_command_count; i++) {
        problems += check_command(sl__cli_commands[i], err);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sl__cli_commands[i]->name, sl__cli_commands[j]->name) == 0) {
                fprintf(err, "sluice: error: command '%s' is in the table twice\n",
                        sl__cli_commands[i]->name);
                problems++;
            }
        }
    }
    return problems;
}

/* Appends to buf at *used, keeping it NUL-terminated when it fills up. */
static void append(char *buf, size_t size, size_t *used, const char *text)
{
    size_t len = strlen(text);
    if (*used + 1 >= size)
        return;
    if (len > size - 1 - *used)
        len = size - 1 - *used;
    memcpy(buf + *used, text, len);
    *used += len;
    buf[*used] = '\0';
}

void sl__cli_synopsis(const sl_cli_command_t *cmd, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    append(buf, size, &used, "sluice ");
    append(buf, size, &used, cmd->name);
    if (cmd->operands) {
        append(buf, size, &used, " ");
        append(buf, size, &used, cmd->operands);
    }
    for (size_t i = 0; i < cmd->option_count; i++) {
        const sl_cli_option_t *opt = &cmd->options[i];
        append(buf, size, &used, (opt->flags & SL_CLI_REQUIRED) ? " --" : " [--");
        append(buf, size, &used, opt->name);
        if (opt->arg) {
            append(buf, size, &used, " ");
            append(buf, size, &used, opt->arg);
        }
        append(buf, size, &used, (opt->flags & SL_CLI_REQUIRED) ? "" : "]");
        if ((opt->flags & SL_CLI_REPEATABLE))
            append(buf, size, &used, "...");
    }
}

/* "-v, --var K=V" or "--count N": the option as --help shows it; `shorts` when some option
 * of the command has a short name, so that the long names line up. */
static void option_label(const sl_cli_option_t *opt, bool shorts, char *buf, size_t size)
{
    if (opt->short_name)
        snprintf(buf, size, "-%c, --%s%s%s", opt->short_name, opt->name, opt->arg ? " " : "",
                 opt->arg ? opt->arg : "");
    else
        snprintf(buf, size, "%s--%s%s%s", shorts ? "    " : "", opt->name, opt->arg ? " " : "",
                 opt->arg ? opt->arg : "");
}

static bool has_short_names(const sl_cli_command_t *cmd)
{
    for (size_t i = 0; i < cmd->option_count; i++)
        if (cmd->options[i].short_name)
            return true;
    return false;
}

/* Prints the options two columns wide: labels, then help lines all starting at the column
 * three spaces past the longest label. */
static void print_options(const sl_cli_command_t *cmd, FILE *out)
{
    bool shorts = has_short_names(cmd);
    int width = 0;
    char label[128];
    for (size_t i = 0; i < cmd->option_count; i++) {
        option_label(&cmd->options[i], shorts, label, sizeof label);
        if ((int)strlen(label) > width)
            width = (int)strlen(label);
    }
    for (size_t i = 0; i < cmd->option_count; i++) {
        option_label(&cmd->options[i], shorts, label, sizeof label);
        const char *line = cmd->options[i].help;
        fprintf(out, "  %-*s   ", width, label);
        for (const char *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
            fprintf(out, "%.*s\n  %-*s   ", (int)(nl - line), line, width, "");
        fprintf(out, "%s\n", line);
    }
}

void sl__cli_help_print(const sl_cli_command_t *cmd, FILE *out)
{
    char synopsis[512];
    sl__cli_synopsis(cmd, synopsis, sizeof synopsis);
    fprintf(out, "usage: %s\n\n%s\n", synopsis, cmd->description);
    if (cmd->option_count > 0) {
        fputc('\n', out);
        print_options(cmd, out);
    }
    if (cmd->epilogue)
        fprintf(out, "\n%s\n", cmd->epilogue);
}

int sl__cli_usage_error(const sl_cli_command_t *cmd, const char *fmt, ...)
{
    char synopsis[512];
    sl__cli_synopsis(cmd, synopsis, sizeof synopsis);
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", synopsis);
    return SL_EXIT_USAGE;
}

/* ---- parsing --------------------------------------------------------------- */

void sl__cli_parser_init(sl_cli_parser_t *p, const sl_cli_command_t *cmd, int argc,
                         char **argv)
{
    memset(p, 0, sizeof *p);
    p->cmd = cmd;
    p->argc = argc;
    p->argv = argv;
    /* A leading ':' makes getopt report a missing value apart from an unknown option. */
    char *shorts = p->shortopts;
    *shorts++ = ':';
    size_t count = cmd->option_count < SL_CLI_OPTIONS_MAX ? cmd->option_count
                                                          : SL_CLI_OPTIONS_MAX;
    for (size_t i = 0; i < count; i++) {
        const sl_cli_option_t *opt = &cmd->options[i];
        p->longopts[i] = (struct option){opt->name, opt->arg ? required_argument : no_argument,
                                         NULL, LONG_OPTION_BASE + (int)i};
        if (opt->short_name) {
            *shorts++ = opt->short_name;
            if (opt->arg)
                *shorts++ = ':';
        }
    }
    *shorts = '\0';
    optind = 0; /* glibc: start over, as for a new argv */
    opterr = 0; /* the messages are ours, with the usage line */
}

static int short_index(const sl_cli_command_t *cmd, int c)
{
    for (size_t i = 0; i < cmd->option_count; i++)
        if (cmd->options[i].short_name == c)
            return (int)i;
    return SL_CLI_PARSE_BAD;
}

/* The option getopt stopped at, as the user wrote it ("--count", "-w"). */
static void problem_name(const sl_cli_parser_t *p, char *buf, size_t size)
{
    if (optopt >= LONG_OPTION_BASE)
        snprintf(buf, size, "--%s", p->cmd->options[optopt - LONG_OPTION_BASE].name);
    else if (optopt != 0)
        snprintf(buf, size, "-%c", optopt);
    else /* an unknown long option: getopt leaves optopt at 0 and steps past it */
        snprintf(buf, size, "%s", p->argv[optind - 1]);
}

int sl__cli_parser_next(sl_cli_parser_t *p)
{
    int c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
    p->value = optarg;
    if (c == -1) {
        p->operand_index = optind;
        return SL_CLI_PARSE_END;
    }
    if (c >= LONG_OPTION_BASE)
        return c - LONG_OPTION_BASE;
    if (c != '?' && c != ':')
        return short_index(p->cmd, c);
    char name[128];
    problem_name(p, name, sizeof name);
    if (c == ':')
        sl__cli_usage_error(p->cmd, "option '%s' needs a value", name);
    else if (optopt >= LONG_OPTION_BASE)
        sl__cli_usage_error(p->cmd, "option '%s' takes no value", name);
    else
        sl__cli_usage_error(p->cmd, "unknown option '%s'", name);
    return SL_CLI_PARSE_BAD;
}

int sl__cli_parser_one_file(sl_cli_parser_t *p, const char **out)
{
    if (p->operand_index >= p->argc)
        return sl__cli_usage_error(p->cmd, "no workflow file given");
    if (p->operand_index != p->argc - 1)
        return sl__cli_usage_error(p->cmd, "expected one workflow file");
    *out = p->argv[p->operand_index];
    return 0;
}
