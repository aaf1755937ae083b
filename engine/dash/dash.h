/*
 * dash: the dashboard of `sluice serve --http` (SPEC §5, docs/dashboard.md): web pages of
 * the runs, a run and a workflow, the same data as JSON under /api/, live updates as
 * Server-Sent Events at /api/events, and Prometheus metrics at /metrics. Read-only: it
 * reads the state database (WAL: never in the writers' way) in the threadpool and
 * answers on the daemon's loop through http/.
 */
#ifndef SL_DASH_H
#define SL_DASH_H

#include <stdbool.h>
#include <uv.h>

#include "http/http.h"
#include "serve/serve.h"

typedef struct sl_dash sl_dash_t;

typedef struct sl_dash_opts {
    uv_loop_t *loop;
    const char *state_dir;      /* the state folder (it may not exist yet) */
    sl_serve_daemon_t *daemon;  /* the daemon whose workflows are shown; NULL: none */
} sl_dash_opts_t;

/** Makes the dashboard. Returns 0 and *out; SL_ENOMEM (message in `err`). */
int sl__dash_new(const sl_dash_opts_t *opts, sl_dash_t **out, char *err, size_t err_size);
/** The handler to give sl__http_listen, with the dashboard as its `ud`. */
void sl__dash_handle(void *dash, sl_http_exchange_t *ex, const sl_http_request_t *req);
/** True while reads of the dashboard are in the threadpool: wait for them (turning the
 *  loop) before sl__dash_free. */
bool sl__dash_busy(const sl_dash_t *dash);
/** Frees the dashboard once its server is closed (no exchange is left). */
void sl__dash_free(sl_dash_t *dash);

#endif
