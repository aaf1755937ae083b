/*
 * `sluice __completion bash`: the bash completion script, written from the command tables
 * (cli/command.h) so that it offers exactly the commands and options `--help` lists. The
 * build runs it into build/sluice.bash (CMakeLists.txt). The script needs nothing but bash
 * (not the bash-completion package's helpers), so it also works sourced by hand.
 */
#include <string.h>

#include "cli/cli.h"
#include "cli/command.h"

static const char PREAMBLE[] =
    "# bash completion for sluice(1): commands, their options, workflow files.\n"
    "# Written by `sluice __completion bash` from the command tables of engine/cli;\n"
    "# do not edit: change the tables (engine/cli/command.h).\n"
    "\n"
    "# Adds the workflow files (*.yaml, *.yml) and folders whose names start with $1 to\n"
    "# COMPREPLY.\n"
    "_sluice_workflows()\n"
    "{\n"
    "    local path\n"
    "    while IFS= read -r path; do\n"
    "        if [[ -d $path || $path == *.yaml || $path == *.yml ]]; then\n"
    "            COMPREPLY+=(\"$path\")\n"
    "        fi\n"
    "    done < <(compgen -f -- \"$1\")\n"
    "}\n"
    "\n"
    "_sluice()\n"
    "{\n"
    "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
    "    local options='' operands='' words=''\n"
    "    COMPREPLY=()\n"
    "    # bash splits --log=json at the '=': complete the value of the option before it.\n"
    "    [[ $cur == = ]] && cur=''\n"
    "    [[ $prev == = ]] && prev=${COMP_WORDS[COMP_CWORD - 2]}\n";

static const char POSTAMBLE[] =
    "    *) return 0 ;;\n"
    "    esac\n"
    "    if [[ $cur == -* ]]; then\n"
    "        COMPREPLY=($(compgen -W \"$options --help\" -- \"$cur\"))\n"
    "    elif [[ $operands == workflows ]]; then\n"
    "        _sluice_workflows \"$cur\"\n"
    "    elif [[ -n $words ]]; then\n"
    "        COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
    "    fi\n"
    "    return 0\n"
    "}\n"
    "\n"
    "complete -o filenames -F _sluice sluice\n";

/* The first word: the commands this version has, and the global options. */
static void put_first_word(FILE *out)
{
    fputs("    if (( COMP_CWORD == 1 )); then\n"
          "        COMPREPLY=($(compgen -W '", out);
    for (size_t i = 0; i < sl__cli_command_count; i++)
        if (sl__cli_commands[i]->run)
            fprintf(out, "%s ", sl__cli_commands[i]->name);
    fputs("--help --version' -- \"$cur\"))\n"
          "        return 0\n"
          "    fi\n"
          "    case ${COMP_WORDS[1]} in\n", out);
}

/* "text|json" -> "text json": the values a '|' list offers. */
static void put_choices(FILE *out, const char *arg)
{
    for (const char *p = arg; *p; p++)
        fputc(*p == '|' ? ' ' : *p, out);
}

/* After an option that takes a value: offer its choices, or nothing (a K=V, a number). */
static void put_option_values(FILE *out, const sl_cli_command_t *cmd)
{
    bool any = false;
    for (size_t i = 0; i < cmd->option_count; i++)
        any = any || cmd->options[i].arg;
    if (!any)
        return;
    fputs("        case $prev in\n", out);
    for (size_t i = 0; i < cmd->option_count; i++) {
        const sl_cli_option_t *opt = &cmd->options[i];
        if (opt->arg == NULL)
            continue;
        fprintf(out, "        --%s", opt->name);
        if (opt->short_name)
            fprintf(out, "|-%c", opt->short_name);
        if (strchr(opt->arg, '|')) {
            fputs(") COMPREPLY=($(compgen -W '", out);
            put_choices(out, opt->arg);
            fputs("' -- \"$cur\")); return 0 ;;\n", out);
        } else {
            fputs(") return 0 ;;\n", out);
        }
    }
    fputs("        esac\n", out);
}

static void put_command(FILE *out, const sl_cli_command_t *cmd)
{
    fprintf(out, "    %s)\n        options='", cmd->name);
    for (size_t i = 0; i < cmd->option_count; i++)
        fprintf(out, "%s--%s", i ? " " : "", cmd->options[i].name);
    fputs("'\n", out);
    if (cmd->operand_kind == SL_CLI_OPERANDS_WORKFLOWS)
        fputs("        operands=workflows\n", out);
    if (cmd->operand_kind == SL_CLI_OPERANDS_WORDS) {
        fputs("        words='", out);
        put_choices(out, cmd->operands);
        fputs("'\n", out);
    }
    put_option_values(out, cmd);
    fputs("        ;;\n", out);
}

int sl__cli_completion(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "bash") != 0) {
        fprintf(stderr, "sluice: error: usage: sluice __completion bash\n");
        return SL_EXIT_USAGE;
    }
    if (sl__cli_tables_check(stderr) != 0)
        return SL_EXIT_INTERNAL;
    fputs(PREAMBLE, stdout);
    put_first_word(stdout);
    for (size_t i = 0; i < sl__cli_command_count; i++)
        if (sl__cli_commands[i]->run)
            put_command(stdout, sl__cli_commands[i]);
    fputs(POSTAMBLE, stdout);
    return SL_EXIT_OK;
}
