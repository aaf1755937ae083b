/* Commands that look at workflows and plugins without running: validate, graph, plugins. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "graph/graph.h"

static const char VALIDATE_USAGE[] = "sluice validate FILE...";
static const char GRAPH_USAGE[] = "sluice graph FILE [--format dot|mermaid]";
static const char PLUGINS_USAGE[] = "sluice plugins";

int sl__cli_validate(int argc, char **argv)
{
    if (sl__cli_wants_help(argc, argv)) {
        fprintf(stdout, "usage: %s\n\nChecks each workflow file and reports every problem as "
                        "FILE:LINE:COL: error: MESSAGE.\nExit 0 when all are valid, 2 otherwise.\n",
                VALIDATE_USAGE);
        return SL_EXIT_OK;
    }
    if (argc < 2)
        return sl__cli_usage_error(VALIDATE_USAGE, "no workflow file given");
    sl_registry_t *reg;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    int status = SL_EXIT_OK;
    for (int i = 1; i < argc; i++) {
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

int sl__cli_graph(int argc, char **argv)
{
    static const struct option options[] = {
        {"format", required_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {0}};
    sl_graph_format_t format = SL_GRAPH_DOT;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:h", options, NULL)) != -1) {
        if (c == 'h') {
            fprintf(stdout, "usage: %s\n\nPrints the step graph in Graphviz DOT (default) or "
                            "Mermaid.\n", GRAPH_USAGE);
            return SL_EXIT_OK;
        } else if (c == 'f' && strcmp(optarg, "dot") == 0) {
            format = SL_GRAPH_DOT;
        } else if (c == 'f' && strcmp(optarg, "mermaid") == 0) {
            format = SL_GRAPH_MERMAID;
        } else if (c == 'f') {
            return sl__cli_usage_error(GRAPH_USAGE, "unknown format '%s' (use dot or mermaid)",
                                       optarg);
        } else {
            return sl__cli_usage_error(GRAPH_USAGE, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return sl__cli_usage_error(GRAPH_USAGE, "expected one workflow file");
    sl_registry_t *reg;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    sl_workflow_t *wf = NULL;
    int status = sl__cli_load(argv[optind], reg, &wf);
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
    if (sl__cli_wants_help(argc, argv)) {
        fprintf(stdout, "usage: %s\n\nLists every step kind found (built-in, the plugins folder, "
                        "then SLUICE_PLUGIN_PATH),\nwith its parameters.\n", PLUGINS_USAGE);
        return SL_EXIT_OK;
    }
    if (argc > 1)
        return sl__cli_usage_error(PLUGINS_USAGE, "unexpected argument '%s'", argv[1]);
    sl_registry_t *reg;
    if (sl__cli_registry(&reg) < 0)
        return SL_EXIT_INTERNAL;
    bool first = true;
    for (size_t i = 0; i < sl__registry_count(reg); i++) {
        const sl_kind_info_t *info = sl__registry_at(reg, i);
        if (info->kind->flags & SL_KIND_INTERNAL)
            continue; /* the engine's own (lua.pooled) */
        if (!first)
            fputc('\n', stdout);
        first = false;
        print_kind(info);
    }
    sl__registry_free(reg);
    return SL_EXIT_OK;
}
