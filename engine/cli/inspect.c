/* Commands that look at workflows and plugins without running: validate, graph, plugins. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/common.h"
#include "graph/graph.h"

const sl_cli_command_t sl__cli_validate_command = {
    .name = "validate",
    .operands = "FILE...",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "check workflow files and report every problem",
    .description = "Checks each workflow file and reports every problem as "
                   "FILE:LINE:COL: error: MESSAGE.\n"
                   "Exit 0 when all are valid, 2 otherwise.",
    .run = sl__cli_validate,
};

enum { GRAPH_FORMAT };

static const sl_cli_option_t graph_options[] = {
    [GRAPH_FORMAT] = {"format", 'f', "dot|mermaid", "Graphviz DOT (default) or Mermaid", 0},
};

const sl_cli_command_t sl__cli_graph_command = {
    .name = "graph",
    .operands = "FILE",
    .operand_kind = SL_CLI_OPERANDS_WORKFLOWS,
    .summary = "print a workflow's step graph (dot or mermaid)",
    .description = "Prints the step graph in Graphviz DOT (default) or Mermaid.",
    .options = graph_options,
    .option_count = SL_COUNTOF(graph_options),
    .run = sl__cli_graph,
};

const sl_cli_command_t sl__cli_plugins_command = {
    .name = "plugins",
    .summary = "list the step kinds found, with their parameters",
    .description = "Lists every step kind found (built-in, the plugins folder, then "
                   "SLUICE_PLUGIN_PATH),\nwith its parameters.",
    .run = sl__cli_plugins,
};

/* Parses a command that has no options of its own: returns the index of its first operand
 * in argv, or -1 after a usage error. */
static int parse_no_options(const sl_cli_command_t *cmd, int argc, char **argv)
{
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, cmd, argc, argv);
    return sl__cli_parser_next(&parser) == SL_CLI_PARSE_END ? parser.operand_index : -1;
}

int sl__cli_validate(int argc, char **argv)
{
    int first = parse_no_options(&sl__cli_validate_command, argc, argv);
    if (first < 0)
        return SL_EXIT_USAGE;
    if (first >= argc)
        return sl__cli_usage_error(&sl__cli_validate_command, "no workflow file given");
    sl_registry_t *reg;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    int status = SL_EXIT_OK;
    for (int i = first; i < argc; i++) {
        sl_workflow_t *wf = NULL;
        int rc = sl__cli_load(argv[i], reg, &wf);
        if (rc == SL_EXIT_OK)
            fprintf(stdout, "%s: ok (%zu step%s)\n", argv[i], wf->step_count,
                    wf->step_count == 1 ? "" : "s");
        else if (rc > status)
            status = rc;
        sl__workflow_free(wf);
    }
    sl__registry_free(reg);
    return status;
}

static int parse_graph_args(int argc, char **argv, sl_graph_format_t *format,
                            const char **path)
{
    const sl_cli_command_t *cmd = &sl__cli_graph_command;
    sl_cli_parser_t parser;
    sl__cli_parser_init(&parser, cmd, argc, argv);
    int index;
    while ((index = sl__cli_parser_next(&parser)) == GRAPH_FORMAT) {
        if (strcmp(parser.value, "dot") == 0)
            *format = SL_GRAPH_DOT;
        else if (strcmp(parser.value, "mermaid") == 0)
            *format = SL_GRAPH_MERMAID;
        else
            return sl__cli_usage_error(cmd, "unknown format '%s' (use dot or mermaid)",
                                       parser.value);
    }
    return index == SL_CLI_PARSE_BAD ? SL_EXIT_USAGE : sl__cli_parser_one_file(&parser, path);
}

int sl__cli_graph(int argc, char **argv)
{
    sl_graph_format_t format = SL_GRAPH_DOT;
    const char *path = NULL;
    if (parse_graph_args(argc, argv, &format, &path) != 0)
        return SL_EXIT_USAGE;
    sl_registry_t *reg;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    sl_workflow_t *wf = NULL;
    int status = sl__cli_load(path, reg, &wf);
    sl_graph_t graph = {0};
    if (status == SL_EXIT_OK &&
        (sl__workflow_graph(wf, &graph) < 0 || sl__graph_write(&graph, format, stdout) < 0))
        status = SL_EXIT_INTERNAL;
    sl__graph_close(&graph);
    sl__workflow_free(wf);
    sl__registry_free(reg);
    return status;
}

static void type_names(uint32_t mask, char *buf, size_t size)
{
    static const char *names[] = {"nil", "boolean", "integer", "number", "string", "list", "map"};
    buf[0] = '\0';
    if ((mask & SL_PT_ANY) == SL_PT_ANY || mask == 0) {
        snprintf(buf, size, "any");
        return;
    }
    size_t used = 0;
    for (unsigned t = 0; t < 7; t++)
        if (mask & (1u << t))
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s",
                                     used ? "|" : "", names[t]);
}

static void print_kind(const sl_kind_info_t *info)
{
    const sl_kind_t *k = info->kind;
    fprintf(stdout, "%s  (%s; %s %s, %s)\n", k->name, k->exec == SL_EXEC_IO ? "io, on the loop"
                                                                            : "cpu, in the pool",
            info->plugin->name, info->plugin->version ? info->plugin->version : "",
            info->path);
    if (k->help)
        fprintf(stdout, "    %s\n", k->help);
    for (const sl_param_t *p = k->params; p && p->name; p++) {
        char types[64];
        type_names(p->types, types, sizeof(types));
        const char *need = (p->flags & SL_PARAM_REQUIRED) ? "required"
                           : SL_PARAM_GROUP(p->flags)   ? "one of"
                                                        : "";
        fprintf(stdout, "    %-18s %-22s %-9s %s\n", p->name, types, need, p->help ? p->help : "");
    }
    if (k->flags & SL_KIND_EXTRA_PARAMS)
        fputs("    (other parameters are passed through)\n", stdout);
}

int sl__cli_plugins(int argc, char **argv)
{
    int first = parse_no_options(&sl__cli_plugins_command, argc, argv);
    if (first < 0)
        return SL_EXIT_USAGE;
    if (first < argc)
        return sl__cli_usage_error(&sl__cli_plugins_command, "unexpected argument '%s'",
                                   argv[first]);
    sl_registry_t *reg;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    bool first_kind = true;
    for (size_t i = 0; i < sl__registry_count(reg); i++) {
        const sl_kind_info_t *info = sl__registry_at(reg, i);
        if (info->kind->flags & SL_KIND_INTERNAL)
            continue; /* the engine's own (lua.pooled) */
        if (!first_kind)
            fputc('\n', stdout);
        first_kind = false;
        print_kind(info);
    }
    sl__registry_free(reg);
    return SL_EXIT_OK;
}
