/*
 * slurm/cmd: one cluster command (scontrol, sinfo, sbatch, squeue, scancel) as a child
 * process watched by the loop: its stdout and stderr are read through pipes (bounded),
 * a timer kills it when it hangs, and its callback runs once the process has exited and
 * both pipes are closed.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "slurm/internal.h"

typedef struct cmd {
    sl_slurm_t *s;
    struct cmd *prev, *next; /* in s->cmds */
    bool exited;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t timer;
    sl_buf_t out_buf, err_buf;
    int open;
    int64_t status;
    sl_slurm_cmd_fn done;
    void *ud;
} cmd_t;

static void cmd_closed(uv_handle_t *h)
{
    cmd_t *c = h->data;
    if (--c->open > 0)
        return;
    sl_slurm_t *s = c->s;
    size_t out_len = c->out_buf.len;
    char *out = sl__buf_take(&c->out_buf, &out_len);
    c->done(s, c->ud, c->status, out, out ? out_len : 0, c->err_buf.data ? c->err_buf.data : "");
    sl__free(out);
    sl__buf_close(&c->err_buf);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->cmds = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sl__free(c);
    if (--s->children == 0 && s->closing && !uv_is_closing((uv_handle_t *)&s->close_timer))
        uv_close((uv_handle_t *)&s->close_timer, sl__slurm_handle_closed);
}

static void cmd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[64 * 1024];
    buf->base = chunk; /* loop thread only: read callbacks copy it out at once */
    buf->len = sizeof(chunk);
}

static void cmd_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    cmd_t *c = stream->data;
    sl_buf_t *b = stream == (uv_stream_t *)&c->out ? &c->out_buf : &c->err_buf;
    if (n > 0) {
        if (sl__buf_add(b, buf->base, (size_t)n) < 0 && b == &c->out_buf)
            c->status = -2; /* past the bound: the output is not trusted */
        return;
    }
    if (n < 0)
        uv_close((uv_handle_t *)stream, cmd_closed);
}

static void cmd_exit(uv_process_t *proc, int64_t status, int term_signal)
{
    cmd_t *c = proc->data;
    c->exited = true;
    if (c->status == 0)
        c->status = term_signal ? 128 + term_signal : status;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, cmd_closed);
    uv_close((uv_handle_t *)proc, cmd_closed);
}

/* Kills the command and whatever it started: it leads a session of its own (detached),
 * and a child left behind would hold its pipes open. */
static void cmd_kill(cmd_t *c)
{
    c->status = -3;
    if (c->proc.pid > 0 && kill(-c->proc.pid, SIGKILL) < 0)
        uv_process_kill(&c->proc, SIGKILL);
}

static void cmd_timeout(uv_timer_t *t)
{
    cmd_kill(t->data);
}

/* Runs argv[0] (looked up on PATH); `done` comes later from the loop, also when the
 * command cannot start (status -1, the reason in err). Returns SL_ENOMEM only. */
int sl__slurm_cmd(sl_slurm_t *s, char *const *argv, sl_slurm_cmd_fn done, void *ud)
{
    cmd_t *c = sl__calloc(1, sizeof(*c));
    if (c == NULL)
        return SL_ENOMEM;
    c->s = s;
    c->done = done;
    c->ud = ud;
    sl__buf_init(&c->out_buf, SLURM_CMD_OUT_MAX);
    sl__buf_init(&c->err_buf, SLURM_CMD_ERR_MAX);
    uv_pipe_init(s->loop, &c->out, 0);
    uv_pipe_init(s->loop, &c->err, 0);
    uv_timer_init(s->loop, &c->timer);
    c->out.data = c->err.data = c->timer.data = c->proc.data = c;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->err}};
    /* Its own session: a terminal's Ctrl-C (sent to the whole foreground group) must not
     * kill the scancel that a canceled run makes. */
    uv_process_options_t po = {.exit_cb = cmd_exit,
                               .file = argv[0],
                               .args = (char **)argv,
                               .stdio_count = 3,
                               .stdio = stdio,
                               .flags = UV_PROCESS_DETACHED};
    s->children++;
    c->next = s->cmds;
    if (s->cmds)
        s->cmds->prev = c;
    s->cmds = c;
    int rc = uv_spawn(s->loop, &c->proc, &po);
    if (rc < 0) {
        sl__buf_addf(&c->err_buf, "cannot run %s: %s", argv[0], uv_strerror(rc));
        c->status = -1;
        c->exited = true;
        c->open = 4;
        uv_close((uv_handle_t *)&c->proc, cmd_closed);
        uv_close((uv_handle_t *)&c->out, cmd_closed);
        uv_close((uv_handle_t *)&c->err, cmd_closed);
        uv_close((uv_handle_t *)&c->timer, cmd_closed);
        return 0;
    }
    c->open = 4;
    uv_read_start((uv_stream_t *)&c->out, cmd_alloc, cmd_read);
    uv_read_start((uv_stream_t *)&c->err, cmd_alloc, cmd_read);
    uv_timer_start(&c->timer, cmd_timeout, SLURM_CMD_TIMEOUT_MS, 0);
    return 0;
}

static void on_close_wait(uv_timer_t *t)
{
    sl_slurm_t *s = t->data;
    for (cmd_t *c = s->cmds; c; c = c->next)
        if (!c->exited)
            cmd_kill(c);
}

void sl__slurm_cmds_close(sl_slurm_t *s)
{
    if (s->children == 0)
        uv_close((uv_handle_t *)&s->close_timer, sl__slurm_handle_closed);
    else
        uv_timer_start(&s->close_timer, on_close_wait, (uint64_t)s->close_wait_ms, 0);
}

void sl__slurm_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        sl__free(argv[i]);
    sl__free(argv);
}
