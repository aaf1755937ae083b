/*
 * cli/watchdog.h: a thread that watches the run's loop turn (docs/architecture.md, "The
 * loop's guarantees"). When the loop has not turned for a while (a callback still running,
 * not a wait for events), it pokes the Lua code running there (sl__vm_poke) so a Lua step
 * yields and the loop's timers run; when a stop signal arrived and the loop has not turned
 * to handle it, it aborts the running Lua call, and as a last resort exits the process.
 */
#ifndef SL_CLI_WATCHDOG_H
#define SL_CLI_WATCHDOG_H

#include <uv.h>

typedef struct sl_watchdog sl_watchdog_t;

/**
 * Starts watching `loop` (loop thread): two unreferenced handles count its turns and a
 * thread checks them. Returns 0, SL_ENOMEM or SL_ESYS (*out NULL: the run goes on
 * unwatched).
 */
int sl__watchdog_start(uv_loop_t *loop, sl_watchdog_t **out);
/**
 * Makes `signum` (already handled by a uv_signal_t) known to the watchdog as well: its
 * handler is chained in front of libuv's. Loop thread, after uv_signal_start.
 */
void sl__watchdog_chain(sl_watchdog_t *wd, int signum);
/** Stops the thread, restores the chained handlers and closes the handles (the loop must
 *  run once more to free them, as for any handle). NULL is a no-op. */
void sl__watchdog_stop(sl_watchdog_t *wd);

#endif
