/* sluice: the command line entry point. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "pool/pool.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"run", sl__cli_run, "run a workflow"},
    {"validate", sl__cli_validate, "check workflow files and report every problem"},
    {"graph", sl__cli_graph, "print a workflow's step graph (dot or mermaid)"},
    {"plugins", sl__cli_plugins, "list the step kinds found, with their parameters"},
    {"next", sl__cli_next, "print a schedule's next fire times"},
    {"runs", sl__cli_runs, "list recorded runs, newest first"},
    {"show", sl__cli_show, "show a recorded run: steps, failed tasks, cache, log"},
    {"cache", sl__cli_cache, "cache clear: drop cache entries"},
};

/* Commands of SPEC §5 that later work will bring. */
static const char *const later_commands[] = {"serve", "backfill"};

static void usage(FILE *out)
{
    fputs("usage: sluice COMMAND [ARGS]\n\n"
          "sluice runs YAML workflows of fetch, parse, compute and write steps.\n\n"
          "commands:\n", out);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\nRun 'sluice COMMAND --help' for a command's options.\n"
          "Exit codes: 0 success, 1 the run failed, 2 bad input, 3 internal error.\n", out);
}

/* Output that could not be written (a full disk, a closed pipe) is an error, not a
 * silent success. */
static int finish_output(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sluice: error: cannot write the output: %s\n", strerror(errno));
        return status == SL_EXIT_OK ? SL_EXIT_INTERNAL : status;
    }
    return status;
}

int main(int argc, char **argv)
{
    /* A peer that went away (a subprocess's stdin, later a socket) is an error
     * return from write, not a reason for the engine to die. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return SL_EXIT_USAGE;
    }
    const char *name = argv[1];
    /* Hidden: the pool starts this binary as its workers (pool/worker.c). */
    if (strcmp(name, SL_POOL_WORKER_COMMAND_NAME) == 0)
        return sl__pool_worker_main(argc - 1, argv + 1, sl__cli_builtins,
                                    SL_COUNTOF(sl__cli_builtins));
    /* Workers run this very binary, whatever happens to the file meanwhile. */
    sl__pool_set_default_exe("/proc/self/exe");
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return finish_output(SL_EXIT_OK);
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        fprintf(stdout, "sluice %s\n", SLUICE_VERSION);
        return finish_output(SL_EXIT_OK);
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return finish_output(commands[i].run(argc - 1, argv + 1));
    for (size_t i = 0; i < sizeof(later_commands) / sizeof(later_commands[0]); i++) {
        if (strcmp(name, later_commands[i]) == 0) {
            fprintf(stderr, "sluice: error: '%s' is not available in this version yet\n", name);
            return SL_EXIT_USAGE;
        }
    }
    fprintf(stderr, "sluice: error: unknown command '%s' (see 'sluice --help')\n", name);
    return SL_EXIT_USAGE;
}
