/* sluice: the command line entry point. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/command.h"
#include "cli/common.h"
#include "pool/pool.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice COMMAND [ARGS]\n\n%s\n\ncommands:\n", sl__cli_tagline);
    /* The commands this version has; the man page also lists those it lacks. */
    for (size_t i = 0; i < sl__cli_command_count; i++)
        if (sl__cli_commands[i]->run)
            fprintf(out, "  %-10s %s\n", sl__cli_commands[i]->name, sl__cli_commands[i]->summary);
    fputs("\nRun 'sluice COMMAND --help' for a command's options.\n"
          "Exit codes: 0 success, 1 the run failed, 2 bad input, 3 internal error.\n",
          out);
}

/* Runs the command of the table named `name`, answering its --help from the table. */
static int run_command(const sl_cli_command_t *cmd, int argc, char **argv)
{
    if (cmd->run == NULL) {
        fprintf(stderr, "sluice: error: '%s' is not available in this version yet\n", cmd->name);
        return SL_EXIT_USAGE;
    }
    if (sl__cli_wants_help(argc, argv)) {
        sl__cli_help_print(cmd, stdout);
        return SL_EXIT_OK;
    }
    return cmd->run(argc, argv);
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

/* A descriptor 0, 1 or 2 closed by the caller (`<&-`, `>&-`) would be handed out by the
 * next open() and later closed as if it were a standard stream (libuv asserts on that in
 * uv_loop_close): fill each closed one with /dev/null before anything else opens a file. */
static void fill_closed_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd >= 0 && nfd != fd) {
            dup2(nfd, fd);
            close(nfd);
        }
    }
}

/* A soft RLIMIT_NOFILE (1,024 by default) is too small for thousands of requests in flight:
 * raise it to the hard limit (capped at FD_SOFT_MAX, so that a child closing every possible
 * descriptor does not loop for ever). The HTTP client sizes its concurrency to what remains
 * (io/fds.c). */
#define FD_SOFT_MAX ((rlim_t)1 << 20)

static void raise_fd_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return;
    rlim_t want =
        lim.rlim_max == RLIM_INFINITY || lim.rlim_max > FD_SOFT_MAX ? FD_SOFT_MAX : lim.rlim_max;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
        lim.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &lim); /* on failure the old limit stays: sized to as well */
    }
}

/* libuv aborts when its loop cannot get its own descriptors (epoll, the signal pipe): with
 * fewer than FD_FREE_MIN free, say so and stop instead. */
#define FD_FREE_MIN 8

static bool fds_left(void)
{
    int fds[FD_FREE_MIN];
    int n = 0;
    while (n < FD_FREE_MIN && (fds[n] = fcntl(2, F_DUPFD_CLOEXEC, 3)) >= 0)
        n++;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return n == FD_FREE_MIN || (errno != EMFILE && errno != ENFILE);
}

int main(int argc, char **argv)
{
    fill_closed_std_fds();
    raise_fd_limit();
    if (!fds_left()) {
        fprintf(stderr,
                "sluice: error: too many open files: fewer than %d descriptors left "
                "(raise ulimit -n)\n",
                FD_FREE_MIN);
        return SL_EXIT_INTERNAL;
    }
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
    if (strcmp(name, "help") == 0 && argc > 2) {
        /* `sluice help run` is `sluice run --help` */
        const sl_cli_command_t *topic = sl__cli_command_find(argv[2]);
        if (topic == NULL) {
            fprintf(stderr, "sluice: error: unknown command '%s' (see 'sluice --help')\n", argv[2]);
            return SL_EXIT_USAGE;
        }
        sl__cli_help_print(topic, stdout);
        return finish_output(SL_EXIT_OK);
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return finish_output(SL_EXIT_OK);
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        fprintf(stdout, "sluice %s\n", SLUICE_VERSION);
        return finish_output(SL_EXIT_OK);
    }
    /* Hidden: build-time generators of the man page and the completion (CMakeLists.txt). */
    if (strcmp(name, "__man") == 0)
        return finish_output(sl__cli_man(argc - 1, argv + 1));
    if (strcmp(name, "__completion") == 0)
        return finish_output(sl__cli_completion(argc - 1, argv + 1));
    const sl_cli_command_t *cmd = sl__cli_command_find(name);
    if (cmd)
        return finish_output(run_command(cmd, argc - 1, argv + 1));
    fprintf(stderr, "sluice: error: unknown command '%s' (see 'sluice --help')\n", name);
    return SL_EXIT_USAGE;
}
