/*
 * exec.so: the `exec` step kind (SPEC §3). Runs a program with uv_spawn,
 * feeds it `stdin`, collects stdout and stderr into bounded buffers and
 * returns {status, stdout, stderr}.
 *
 * Lifetime: every libuv handle lives in the task's exec_run_t. Each handle
 * that was initialised is closed exactly once; the task completes, and the
 * run is freed, in the close callback of the last one. So no callback can
 * reach freed memory and the task completes only when nothing of it is left.
 *
 * The child is its own process-group leader (UV_PROCESS_DETACHED), so a
 * cancel or an overflow signals the whole group, including grandchildren
 * that would otherwise keep the pipes open.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "sluice/plugin.h"

#define EXEC_MAX_BYTES_DEFAULT ((int64_t)64 * 1024 * 1024)
/* Grace between SIGTERM and SIGKILL when a task is canceled, unless `kill_grace` says. */
#define EXEC_KILL_GRACE_MS 2000
/* Longest stderr line quoted in a failure message. */
#define EXEC_QUOTE_MAX 300
/* Read chunk handed to libuv. */
#define EXEC_READ_CHUNK 65536

extern char **environ;

static const sl_host_t *host;

typedef struct exec_run exec_run_t;

/* One output stream of the child: its pipe and what was read from it. */
typedef struct exec_stream {
    uv_pipe_t pipe;
    exec_run_t *run;
    char *data; /* malloc'd; never more than run->max_bytes */
    size_t len;
    size_t cap;
    int open; /* initialised and not yet closing */
} exec_stream_t;

/* Why the run ended early; decides the failure message. */
typedef enum exec_end {
    END_NORMAL = 0,
    END_SPAWN_FAILED,
    END_OVERFLOW,
    END_CANCELED,
    END_NO_MEMORY
} exec_end_t;

struct exec_run {
    sl_task_t *task;
    uv_process_t process;
    uv_pipe_t stdin_pipe;
    uv_write_t stdin_write;
    uv_timer_t kill_timer;
    exec_stream_t out;
    exec_stream_t err;
    char *program;    /* argv[0], for messages (malloc) */
    char *cwd;        /* for messages; NULL when not given (host->arg_string: host->free) */
    char *stdin_data; /* copy of `stdin`; NULL when not given (host->arg_string: host->free) */
    size_t stdin_len;
    size_t max_bytes;
    int64_t kill_grace_ms; /* between SIGTERM and SIGKILL on cancel */
    int check;
    int handles; /* handles initialised whose close callback has not run */
    int process_open, stdin_open, timer_open;
    int exited; /* the exit callback ran (or the spawn failed) */
    int64_t exit_status;
    int term_signal;
    int signaled; /* SIGTERM already sent by cancel */
    exec_end_t end;
    int spawn_error; /* libuv error of uv_spawn */
};

/* ---- messages ------------------------------------------------------------ */

static const char *signal_name(int sig)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {
        {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
        {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
        {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
        {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (names[i].sig == sig)
            return names[i].name;
    }
    return "an unknown signal";
}

/* The last non-empty line of `s` (trimmed), as a pointer and a length. */
static const char *last_line(const char *s, size_t len, int *out_len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
        len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    size_t n = len - start;
    *out_len = (int)(n > EXEC_QUOTE_MAX ? EXEC_QUOTE_MAX : n);
    return s + start;
}

/* Fails the task for a non-zero status, quoting the last stderr line. */
static void fail_status(exec_run_t *run, int64_t status)
{
    int quote_len;
    const char *quote =
        last_line(run->err.data != NULL ? run->err.data : "", run->err.len, &quote_len);
    const char *sep = quote_len > 0 ? ": " : "";
    if (run->term_signal != 0) {
        host->task_failf(run->task, SL_EPROCESS, "exec '%s' killed by %s (status %lld)%s%.*s",
                         run->program, signal_name(run->term_signal), (long long)status, sep,
                         quote_len, quote);
    } else {
        host->task_failf(run->task, SL_EPROCESS, "exec '%s' exited with status %lld%s%.*s",
                         run->program, (long long)status, sep, quote_len, quote);
    }
}

/* ---- completion ------------------------------------------------------------ */

static sl_value_t *stream_value(const exec_stream_t *s)
{
    return host->value_string(s->data != NULL ? s->data : "", s->len);
}

static sl_value_t *build_output(exec_run_t *run, int64_t status)
{
    sl_value_t *map = host->value_map();
    if (map == NULL)
        return NULL;
    sl_value_t *st = host->value_int(status);
    if (st == NULL || host->value_set(map, "status", st) != 0)
        goto fail;
    sl_value_t *out = stream_value(&run->out);
    if (out == NULL || host->value_set(map, "stdout", out) != 0)
        goto fail;
    sl_value_t *err = stream_value(&run->err);
    if (err == NULL || host->value_set(map, "stderr", err) != 0)
        goto fail;
    return map;
fail:
    host->value_free(map);
    return NULL;
}

static void fail_spawn(exec_run_t *run)
{
    int code = run->spawn_error == UV_ENOENT ? SL_ENOENT : SL_ESYS;
    const char *cause =
        run->spawn_error == UV_ENOENT ? "no such file or directory" : uv_strerror(run->spawn_error);
    if (run->cwd != NULL) {
        host->task_failf(run->task, code, "exec: cannot run '%s' in '%s': %s", run->program,
                         run->cwd, cause);
    } else {
        host->task_failf(run->task, code, "exec: cannot run '%s': %s", run->program, cause);
    }
}

/* Completes the task from what the run recorded. */
static void complete(exec_run_t *run)
{
    int64_t status = run->term_signal != 0 ? 128 + run->term_signal : run->exit_status;
    switch (run->end) {
    case END_SPAWN_FAILED:
        fail_spawn(run);
        return;
    case END_OVERFLOW:
        host->task_failf(run->task, SL_ELIMIT, "exec '%s': output exceeded max_bytes (%zu bytes)",
                         run->program, run->max_bytes);
        return;
    case END_CANCELED:
        host->task_failf(run->task, SL_ECANCELED, "exec '%s' canceled (%s)", run->program,
                         run->term_signal != 0 ? signal_name(run->term_signal) : "stopped");
        return;
    case END_NO_MEMORY:
        host->task_fail(run->task, SL_ENOMEM, "exec: out of memory");
        return;
    case END_NORMAL:
        break;
    }
    if (run->check && status != 0) {
        fail_status(run, status);
        return;
    }
    sl_value_t *output = build_output(run, status);
    if (output == NULL)
        host->task_fail(run->task, SL_ENOMEM, "exec: out of memory");
    else
        host->task_done(run->task, output);
}

static void run_free(exec_run_t *run)
{
    free(run->out.data);
    free(run->err.data);
    free(run->program);
    host->free(run->cwd);
    host->free(run->stdin_data);
    free(run);
}

/* Every handle's close callback: the last one completes and frees the run. */
static void on_close(uv_handle_t *handle)
{
    exec_run_t *run = handle->data;
    if (--run->handles > 0)
        return;
    sl_task_t *task = run->task;
    host->task_set_data(task, NULL);
    complete(run);
    run_free(run);
}

static void close_handle(uv_handle_t *handle, int *open)
{
    if (*open) {
        *open = 0;
        uv_close(handle, on_close);
    }
}

/* Closes the timer, the last handle, once the child and its pipes are done. */
static void maybe_finish(exec_run_t *run)
{
    if (!run->process_open && !run->stdin_open && !run->out.open && !run->err.open)
        close_handle((uv_handle_t *)&run->kill_timer, &run->timer_open);
}

/* Signals the child's process group (it leads its own, UV_PROCESS_DETACHED). */
static void kill_group(exec_run_t *run, int sig)
{
    if (run->exited && run->end == END_SPAWN_FAILED)
        return;
    if (run->process.pid > 0 && uv_kill(-run->process.pid, sig) != 0 && !run->exited)
        uv_process_kill(&run->process, sig);
}

/* Stops reading and writing: the pipes close, the child is left to exit. */
static void close_pipes(exec_run_t *run)
{
    close_handle((uv_handle_t *)&run->out.pipe, &run->out.open);
    close_handle((uv_handle_t *)&run->err.pipe, &run->err.open);
    close_handle((uv_handle_t *)&run->stdin_pipe, &run->stdin_open);
    maybe_finish(run);
}

/* ---- libuv callbacks --------------------------------------------------------- */

static void on_process_exit(uv_process_t *process, int64_t exit_status, int term_signal)
{
    exec_run_t *run = process->data;
    run->exited = 1;
    run->exit_status = exit_status;
    run->term_signal = term_signal;
    close_handle((uv_handle_t *)&run->process, &run->process_open);
    maybe_finish(run);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    exec_stream_t *s = (exec_stream_t *)handle; /* the pipe is its first member */
    exec_run_t *run = s->run;
    size_t limit = run->max_bytes + 1; /* one byte more detects an overflow */
    if (s->cap - s->len < EXEC_READ_CHUNK / 4 && s->cap < limit) {
        size_t next = s->cap == 0 ? EXEC_READ_CHUNK : s->cap * 2;
        if (next > limit || next < s->cap)
            next = limit;
        char *grown = realloc(s->data, next);
        if (grown != NULL) {
            s->data = grown;
            s->cap = next;
        }
    }
    buf->base = s->data + s->len;
    buf->len = s->cap - s->len;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    exec_stream_t *s = (exec_stream_t *)stream;
    exec_run_t *run = s->run;
    if (nread > 0)
        s->len += (size_t)nread;
    if (s->len > run->max_bytes) {
        s->len = run->max_bytes;
        run->end = END_OVERFLOW;
        kill_group(run, SIGKILL);
        close_pipes(run);
    } else if (nread == UV_ENOBUFS) {
        run->end = END_NO_MEMORY;
        kill_group(run, SIGKILL);
        close_pipes(run);
    } else if (nread < 0) {
        close_handle((uv_handle_t *)&s->pipe, &s->open); /* EOF or a read error */
        maybe_finish(run);
    }
}

static void on_stdin_written(uv_write_t *req, int status)
{
    exec_run_t *run = req->data;
    /* A child that exits without reading its input is not an error (EPIPE). */
    close_handle((uv_handle_t *)&run->stdin_pipe, &run->stdin_open);
    maybe_finish(run);
}

static void on_kill_timer(uv_timer_t *timer)
{
    exec_run_t *run = timer->data;
    kill_group(run, SIGKILL);
    close_pipes(run); /* whatever still holds them, the task ends now */
}

/* ---- arguments ----------------------------------------------------------------- */

/* What uv_spawn needs; freed right after it (uv_spawn copies nothing it
 * needs later: the child has exec'd or failed when it returns). */
typedef struct spawn_args {
    char **argv; /* NULL-terminated, one block from host->arg_strings: host->free */
    char **env;  /* NULL-terminated; the first env_owned strings owned (malloc) */
    size_t env_owned;
} spawn_args_t;

static void spawn_args_free(spawn_args_t *sa)
{
    for (size_t i = 0; i < sa->env_owned; i++)
        free(sa->env[i]);
    host->free(sa->argv);
    free(sa->env);
}

/* The program and its arguments: strings, numbers and booleans as text (a YAML `30` is
 * an integer, and means "30" here). 0, or a code with the message in err. */
static int parse_argv(const sl_value_t *args, spawn_args_t *sa, char *err, size_t err_size)
{
    size_t argc;
    int rc = host->arg_strings(args, "argv", SL_ARG_REQUIRED | SL_ARG_NOT_EMPTY | SL_ARG_SCALARS,
                               &sa->argv, &argc, err, err_size);
    if (rc == 0 && sa->argv[0][0] == '\0') {
        snprintf(err, err_size, "argv[1], the program, must not be empty");
        rc = SL_EINVAL;
    }
    return rc;
}

/* Is environment entry `entry` ("NAME=value") overridden by map `env`? */
static int env_overridden(const sl_value_t *env, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t name_len = eq != NULL ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; i < host->value_len(env); i++) {
        const char *key;
        host->value_entry(env, i, &key);
        if (strlen(key) == name_len && memcmp(key, entry, name_len) == 0)
            return 1;
    }
    return 0;
}

/* "KEY=VALUE" for entry `key` of map `env` into *out (malloc). 0, SL_EINVAL (a bad name
 * or value, message in err) or SL_ENOMEM. */
static int env_entry(const sl_value_t *env, const char *key, char **out, char *err,
                     size_t err_size)
{
    char *text = NULL;
    int rc = host->arg_string(env, key, SL_ARG_REQUIRED | SL_ARG_SCALARS, &text, NULL, NULL, 0);
    if (rc == SL_ENOMEM)
        return rc;
    if (rc != 0 || key[0] == '\0' || strchr(key, '=') != NULL) {
        host->free(text);
        snprintf(err, err_size, "env '%s' must be a name with a string value", key);
        return SL_EINVAL;
    }
    size_t size = strlen(key) + strlen(text) + 2;
    *out = malloc(size);
    if (*out != NULL)
        snprintf(*out, size, "%s=%s", key, text);
    host->free(text);
    return *out != NULL ? 0 : SL_ENOMEM;
}

/* The engine's environment with the entries of map `env` set over it. */
static int parse_env(const sl_value_t *env, spawn_args_t *sa, char *err, size_t err_size)
{
    size_t inherited = 0;
    while (environ[inherited] != NULL)
        inherited++;
    size_t n = host->value_len(env);
    sa->env = calloc(inherited + n + 1, sizeof(char *));
    if (sa->env == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *key;
        host->value_entry(env, i, &key);
        int rc = env_entry(env, key, &sa->env[sa->env_owned], err, err_size);
        if (rc != 0)
            return rc;
        sa->env_owned++;
    }
    size_t count = sa->env_owned;
    for (size_t i = 0; i < inherited; i++) {
        if (!env_overridden(env, environ[i]))
            sa->env[count++] = environ[i];
    }
    return 0;
}

/* `stdin` (its bytes as they are: it may hold NUL bytes), `cwd`, `max_bytes`, `kill_grace`
 * and `check`. 0, or a code with the message in err. */
static int parse_options(const sl_value_t *args, exec_run_t *run, char *err, size_t err_size)
{
    int64_t max_bytes = EXEC_MAX_BYTES_DEFAULT;
    run->kill_grace_ms = EXEC_KILL_GRACE_MS;
    int rc = host->arg_string(args, "stdin", SL_ARG_SCALARS | SL_ARG_BYTES, &run->stdin_data,
                              &run->stdin_len, err, err_size);
    if (rc == 0)
        rc = host->arg_string(args, "cwd", SL_ARG_SCALARS, &run->cwd, NULL, err, err_size);
    if (rc == 0)
        rc = host->arg_int(args, "max_bytes", 0, 0, (int64_t)(SIZE_MAX / 2), NULL, &max_bytes,
                           err, err_size);
    if (rc == 0)
        rc = host->arg_duration(args, "kill_grace", 0, &run->kill_grace_ms, err, err_size);
    run->max_bytes = (size_t)max_bytes;
    const sl_value_t *check = host->value_get(args, "check");
    run->check =
        check == NULL || host->value_type(check) == SL_TYPE_NIL || host->value_truthy(check);
    return rc;
}

/* Fills `run` and `sa` from the step's arguments. 0; SL_EINVAL (or another code of a
 * bad argument) with the message in err; SL_ENOMEM. */
static int parse_args(const sl_value_t *args, exec_run_t *run, spawn_args_t *sa, char *err,
                      size_t err_size)
{
    int rc = parse_argv(args, sa, err, err_size);
    if (rc == 0 && (run->program = strdup(sa->argv[0])) == NULL)
        rc = SL_ENOMEM;
    const sl_value_t *env = host->value_get(args, "env");
    if (rc == 0 && env != NULL && host->value_type(env) != SL_TYPE_NIL) {
        if (host->value_type(env) != SL_TYPE_MAP) {
            snprintf(err, err_size, "'env' must be a map of strings");
            rc = SL_EINVAL;
        } else {
            rc = parse_env(env, sa, err, err_size);
        }
    }
    return rc == 0 ? parse_options(args, run, err, err_size) : rc;
}

/* ---- start and cancel ------------------------------------------------------------ */

static void init_stream(uv_loop_t *loop, exec_run_t *run, exec_stream_t *s)
{
    uv_pipe_init(loop, &s->pipe, 0); /* cannot fail on Unix */
    s->pipe.data = run;
    s->run = run;
    s->open = 1;
    run->handles++;
}

/* Initialises every handle; after this, each is closed exactly once. */
static void init_handles(uv_loop_t *loop, exec_run_t *run)
{
    init_stream(loop, run, &run->out);
    init_stream(loop, run, &run->err);
    if (run->stdin_data != NULL) {
        uv_pipe_init(loop, &run->stdin_pipe, 0);
        run->stdin_pipe.data = run;
        run->stdin_open = 1;
        run->handles++;
    }
    uv_timer_init(loop, &run->kill_timer);
    run->kill_timer.data = run;
    run->timer_open = 1;
    run->handles++;
    run->process.data = run;
}

static void start_io(exec_run_t *run)
{
    if (uv_read_start((uv_stream_t *)&run->out.pipe, on_alloc, on_read) != 0)
        close_handle((uv_handle_t *)&run->out.pipe, &run->out.open);
    if (uv_read_start((uv_stream_t *)&run->err.pipe, on_alloc, on_read) != 0)
        close_handle((uv_handle_t *)&run->err.pipe, &run->err.open);
    if (run->stdin_open) {
        uv_buf_t buf = uv_buf_init(run->stdin_data, (unsigned int)run->stdin_len);
        run->stdin_write.data = run;
        if (run->stdin_len == 0 || run->stdin_len > UINT32_MAX ||
            uv_write(&run->stdin_write, (uv_stream_t *)&run->stdin_pipe, &buf, 1,
                     on_stdin_written) != 0)
            close_handle((uv_handle_t *)&run->stdin_pipe, &run->stdin_open);
    }
    maybe_finish(run);
}

static void spawn_run(uv_loop_t *loop, exec_run_t *run, spawn_args_t *sa)
{
    uv_stdio_container_t stdio[3];
    stdio[0].flags = run->stdin_data != NULL ? UV_CREATE_PIPE | UV_READABLE_PIPE : UV_IGNORE;
    stdio[0].data.stream = (uv_stream_t *)&run->stdin_pipe;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&run->out.pipe;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&run->err.pipe;
    uv_process_options_t options;
    memset(&options, 0, sizeof(options));
    options.exit_cb = on_process_exit;
    options.file = sa->argv[0];
    options.args = sa->argv;
    options.env = sa->env; /* NULL: inherit the engine's environment */
    options.cwd = run->cwd;
    options.flags = UV_PROCESS_DETACHED; /* its own process group, for kill_group() */
    options.stdio_count = 3;
    options.stdio = stdio;
    int rc = uv_spawn(loop, &run->process, &options);
    /* On Unix the process handle is initialised even when the spawn fails. */
    run->process_open = 1;
    run->handles++;
    if (rc != 0) {
        run->end = END_SPAWN_FAILED;
        run->spawn_error = rc;
        run->exited = 1;
        close_handle((uv_handle_t *)&run->process, &run->process_open);
        close_pipes(run);
        return;
    }
    start_io(run);
}

static int exec_start(sl_task_t *task, const sl_value_t *args)
{
    spawn_args_t sa = {0};
    char err[SL_ERR_SIZE];
    exec_run_t *run = calloc(1, sizeof(*run));
    int rc = run != NULL ? parse_args(args, run, &sa, err, sizeof(err)) : SL_ENOMEM;
    if (rc != 0) {
        spawn_args_free(&sa);
        if (run != NULL)
            run_free(run);
        if (rc == SL_ENOMEM)
            return rc; /* not started: the engine reports it */
        host->task_failf(task, rc, "exec: %s", err);
        return 0;
    }
    run->task = task;
    host->task_set_data(task, run);
    uv_loop_t *loop = host->task_loop(task);
    init_handles(loop, run);
    spawn_run(loop, run, &sa);
    spawn_args_free(&sa);
    return 0;
}

/* SIGTERM to the child's group now, SIGKILL after `kill_grace`. */
static void exec_cancel(sl_task_t *task)
{
    exec_run_t *run = host->task_data(task);
    if (run == NULL || run->signaled || run->end == END_SPAWN_FAILED)
        return;
    run->signaled = 1;
    if (run->end == END_NORMAL)
        run->end = END_CANCELED;
    kill_group(run, SIGTERM);
    if (run->timer_open)
        uv_timer_start(&run->kill_timer, on_kill_timer, (uint64_t)run->kill_grace_ms, 0);
}

/* ---- descriptor ------------------------------------------------------------------ */

static const sl_param_t exec_params[] = {
    {"argv", SL_PT_LIST, SL_PARAM_REQUIRED,
     "program and arguments; the program is looked up in PATH"},
    {"stdin", SL_PT_STRING | SL_PT_INT | SL_PT_NUMBER | SL_PT_BOOL | SL_PT_NIL, 0,
     "text written to the program's standard input (default: none, /dev/null)"},
    {"env", SL_PT_MAP | SL_PT_NIL, 0, "variables set over the engine's environment"},
    {"cwd", SL_PT_STRING | SL_PT_NIL, 0, "working directory of the program"},
    {"check", SL_PT_BOOL, 0, "fail on a non-zero status (default true)"},
    {"max_bytes", SL_PT_INT, 0, "most bytes kept per stream (default 64 MiB)"},
    {"kill_grace", SL_PT_STRING | SL_PT_INT | SL_PT_NUMBER, 0,
     "on cancel, time between SIGTERM and SIGKILL (a duration; default 2s)"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t exec_kinds[] = {
    {"exec", SL_EXEC_IO, 0, "Runs a program; output {status, stdout, stderr}.", exec_params,
     exec_start, exec_cancel},
};

static const sl_plugin_t exec_plugin = SL_PLUGIN_INIT("exec", "1.0.0", exec_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
/* The first ABI 1.2 function this plugin calls that `h` lacks; NULL when it has them all. */
static const char *missing_function(const sl_host_t *h)
{
    if (!SL_HOST_HAS(h, arg_int))
        return "arg_int";
    if (!SL_HOST_HAS(h, arg_duration))
        return "arg_duration";
    if (!SL_HOST_HAS(h, arg_string))
        return "arg_string";
    if (!SL_HOST_HAS(h, arg_strings))
        return "arg_strings";
    return NULL;
}

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR)
        return NULL;
    const char *missing = missing_function(h);
    if (missing != NULL) {
        h->log(NULL, SL_LOG_ERROR,
               "exec.so needs sluice's plugin ABI 1.2 (host function '%s'); this sluice has "
               "ABI %u.%u: not loaded", missing, (unsigned)h->abi_major, (unsigned)h->abi_minor);
        return NULL;
    }
    host = h;
    /* Writing a child's stdin after it exited must give EPIPE, not kill the
     * engine. Only a default disposition is changed; libuv resets every
     * signal to its default in the child before exec. */
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL &&
        !(current.sa_flags & SA_SIGINFO))
        signal(SIGPIPE, SIG_IGN);
    return &exec_plugin;
}
