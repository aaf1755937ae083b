/*
 * The loop's watchdog (cli/watchdog.h). The loop thread only counts: a prepare handle
 * marks "waiting for events", a check handle "turned, working". The watchdog thread wakes
 * every WATCH_TICK_MS and reads the two; everything it does to the loop thread goes
 * through sl__vm_poke, which Lua allows from another thread (lua_sethook). Signals are
 * counted by a handler chained in front of libuv's, since libuv's own handler only writes
 * to a pipe that the stuck loop never reads.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/watchdog.h"
#include "util/util.h"
#include "vm/vm.h"

#define WATCH_TICK_MS 50
#define WATCH_STALL_MS 200   /* no turn for this long: poke the running Lua code */
#define WATCH_GRACE_MS 5000  /* a stop signal left unhandled this long: exit */
#define WATCH_SIGNALS_MAX 65 /* signal numbers chained, 1..64 */

struct sl_watchdog {
    uv_prepare_t before_poll;
    uv_check_t after_poll;
    uv_thread_t thread;
    bool thread_started;
    atomic_bool stopping;
    atomic_uint_fast64_t turns;
    atomic_bool polling;
    int handles_open; /* freed when both handles have closed (in either order) */
};

/* The signal handler has no argument: the one watched run's state is global. */
static atomic_uint signals_caught;
static atomic_int signal_last;
static struct sigaction chained[WATCH_SIGNALS_MAX];
static bool chained_set[WATCH_SIGNALS_MAX];

static void on_before_poll(uv_prepare_t *handle)
{
    sl_watchdog_t *wd = handle->data;
    atomic_store_explicit(&wd->polling, true, memory_order_relaxed);
}

static void on_after_poll(uv_check_t *handle)
{
    sl_watchdog_t *wd = handle->data;
    atomic_store_explicit(&wd->polling, false, memory_order_relaxed);
    atomic_fetch_add_explicit(&wd->turns, 1, memory_order_relaxed);
}

static void on_signal(int signum, siginfo_t *info, void *context)
{
    int saved = errno;
    atomic_store(&signal_last, signum);
    atomic_fetch_add(&signals_caught, 1);
    const struct sigaction *next = &chained[signum];
    if (next->sa_flags & SA_SIGINFO)
        next->sa_sigaction(signum, info, context);
    else if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN)
        next->sa_handler(signum);
    errno = saved;
}

/* async-signal-safe enough for a thread about to _exit: one write(2) of a formatted line. */
static void say(const char *message)
{
    ssize_t ignored = write(STDERR_FILENO, message, strlen(message));
    (void)ignored;
}

typedef struct watch_state {
    uint64_t turns;        /* the loop's count when last seen to move */
    uint64_t still_since;  /* when it last moved (or polled), ms */
    unsigned signals;      /* signals_caught that the loop was seen to handle */
    uint64_t signal_since; /* when an unhandled signal was first seen, ms; 0: none */
    bool aborted;          /* the running Lua call was asked to abort for it */
} watch_state_t;

static uint64_t now_ms(void)
{
    return sl__clock_now_ns() / 1000000u;
}

/* One look at the loop. */
static void watch_tick(sl_watchdog_t *wd, watch_state_t *s)
{
    uint64_t now = now_ms(), turns = atomic_load(&wd->turns);
    unsigned signals = atomic_load(&signals_caught);
    if (turns != s->turns || atomic_load(&wd->polling)) {
        s->turns = turns;
        s->still_since = now;
        s->signals = signals; /* the loop is free: it handles signals by itself */
        s->signal_since = 0;
        s->aborted = false;
        return;
    }
    if (now - s->still_since >= WATCH_STALL_MS)
        sl__vm_poke(SL_VM_POKE_TURN); /* a Lua step yields: its timers get their turn */
    if (signals == s->signals)
        return;
    if (s->signal_since == 0)
        s->signal_since = now;
    uint64_t waited = now - s->signal_since;
    if (waited >= WATCH_STALL_MS && !s->aborted && sl__vm_poke(SL_VM_POKE_ABORT)) {
        s->aborted = true; /* no Lua running (a plugin's call): asked again next tick */
        say("sluice: the loop is stuck in a Lua call: interrupting it\n");
    }
    if (waited >= WATCH_GRACE_MS) {
        char line[160];
        snprintf(line, sizeof(line),
                 "sluice: the loop has not turned for %.1fs after signal %d (a plugin's call "
                 "on the loop?): exiting now; the run stays resumable\n",
                 (double)(now - s->still_since) / 1000, atomic_load(&signal_last));
        say(line);
        _exit(1);
    }
}

static void watch_thread(void *arg)
{
    sl_watchdog_t *wd = arg;
    watch_state_t s = {.turns = atomic_load(&wd->turns), .still_since = now_ms(),
                       .signals = atomic_load(&signals_caught)};
    const struct timespec tick = {0, WATCH_TICK_MS * 1000000L};
    while (!atomic_load(&wd->stopping)) {
        nanosleep(&tick, NULL);
        if (!atomic_load(&wd->stopping))
            watch_tick(wd, &s);
    }
}

int sl__watchdog_start(uv_loop_t *loop, sl_watchdog_t **out)
{
    *out = NULL;
    sl_watchdog_t *wd = sl__calloc(1, sizeof(*wd));
    if (wd == NULL)
        return SL_ENOMEM;
    uv_prepare_init(loop, &wd->before_poll);
    uv_check_init(loop, &wd->after_poll);
    wd->before_poll.data = wd->after_poll.data = wd;
    uv_prepare_start(&wd->before_poll, on_before_poll);
    uv_check_start(&wd->after_poll, on_after_poll);
    uv_unref((uv_handle_t *)&wd->before_poll);
    uv_unref((uv_handle_t *)&wd->after_poll);
    if (uv_thread_create(&wd->thread, watch_thread, wd) == 0)
        wd->thread_started = true;
    *out = wd;
    return wd->thread_started ? 0 : SL_ESYS;
}

void sl__watchdog_chain(sl_watchdog_t *wd, int signum)
{
    if (wd == NULL || signum <= 0 || signum >= WATCH_SIGNALS_MAX || chained_set[signum])
        return;
    struct sigaction mine;
    if (sigaction(signum, NULL, &chained[signum]) < 0)
        return;
    memset(&mine, 0, sizeof(mine));
    mine.sa_sigaction = on_signal;
    mine.sa_flags = SA_SIGINFO | SA_RESTART;
    mine.sa_mask = chained[signum].sa_mask;
    if (sigaction(signum, &mine, NULL) == 0)
        chained_set[signum] = true;
}

static void on_handle_closed(uv_handle_t *handle)
{
    sl_watchdog_t *wd = handle->data;
    if (--wd->handles_open == 0)
        sl__free(wd);
}

void sl__watchdog_stop(sl_watchdog_t *wd)
{
    if (wd == NULL)
        return;
    atomic_store(&wd->stopping, true);
    if (wd->thread_started)
        uv_thread_join(&wd->thread);
    for (int signum = 1; signum < WATCH_SIGNALS_MAX; signum++) {
        struct sigaction now;
        if (!chained_set[signum])
            continue;
        /* libuv may have put its default back already (its last handle stopped). */
        if (sigaction(signum, NULL, &now) == 0 && (now.sa_flags & SA_SIGINFO) &&
            now.sa_sigaction == on_signal)
            sigaction(signum, &chained[signum], NULL);
        chained_set[signum] = false;
    }
    wd->handles_open = 2;
    uv_close((uv_handle_t *)&wd->before_poll, on_handle_closed);
    uv_close((uv_handle_t *)&wd->after_poll, on_handle_closed);
}
