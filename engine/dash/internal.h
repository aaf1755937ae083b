/*
 * dash/internal.h: what the parts of the dashboard share. dash.c routes a request to a
 * part and runs their reads of the state database in the threadpool; data.c loads what a
 * page and its JSON both show; api.c answers /api/ as JSON, events.c /api/events as
 * Server-Sent Events, metrics.c /metrics, pages.c the HTML pages and their assets
 * (layout.c draws a run's graph). Loop thread unless named _work (a threadpool thread).
 */
#ifndef SL_DASH_INTERNAL_H
#define SL_DASH_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dash/dash.h"
#include "store/store.h"

#define SL_DASH_PAGE_MAX 500     /* runs in one page of a list (?limit=) */
#define SL_DASH_PAGE_DEFAULT 50
#define SL_DASH_FAILED_MAX 1000  /* failed tasks shown with a run */
#define SL_DASH_LOG_TAIL 200     /* log lines shown with a run */

typedef struct sl_dash_events sl_dash_events_t;   /* events.c */
typedef struct sl_dash_metrics sl_dash_metrics_t; /* metrics.c */

struct sl_dash {
    uv_loop_t *loop;
    char *state_dir;
    sl_serve_daemon_t *daemon; /* NULL: a dashboard of the state only */
    pthread_mutex_t store_lock;
    sl_store_t *store; /* read-only; opened by the first read that finds the database */
    sl_dash_events_t *events;
    sl_dash_metrics_t *metrics;
    size_t works; /* threadpool items in flight */
};

/* ---- reads in the threadpool (dash.c) ------------------------------------------------- */

typedef struct sl_dash_work sl_dash_work_t;
struct sl_dash_work {
    uv_work_t work;
    sl_dash_t *dash;
    /* In the threadpool, with the store (NULL when there is no state yet). */
    void (*run)(sl_dash_work_t *w, sl_store_t *store);
    /* Back on the loop. */
    void (*after)(sl_dash_work_t *w);
    void *ud;
    int rc;
    char err[512];
};

/** Runs w->run in the threadpool, then w->after on the loop. Returns 0 or SL_ESYS. */
int sl__dash_submit(sl_dash_t *dash, sl_dash_work_t *w);

/* ---- what a run page and /api/runs/RUN show (data.c) ------------------------------------ */

typedef struct sl_dash_step {
    sl_store_step_row_t row; /* strings owned by the run below */
    char **needs;            /* the ids of the steps it depends on */
    size_t needs_count;
} sl_dash_step_t;

typedef struct sl_dash_task {
    sl_store_task_row_t row; /* strings owned by the run below */
} sl_dash_task_t;

typedef struct sl_dash_log {
    sl_store_log_row_t row;
} sl_dash_log_t;

typedef struct sl_dash_run {
    sl_store_run_row_t run;
    sl_dash_step_t *steps;
    size_t step_count;
    sl_dash_task_t *failed; /* at most SL_DASH_FAILED_MAX */
    size_t failed_count;
    bool failed_more;       /* more failed than shown */
    sl_dash_log_t *logs;    /* the last SL_DASH_LOG_TAIL, oldest first */
    size_t log_count;
} sl_dash_run_t;

/** Loads run `ref` (an id or "last"). _work. Returns 0; SL_ENOTFOUND; SL_EIO, SL_ENOMEM
 *  (message in `err`). Never writes to the database. */
int sl__dash_run_load_work(sl_store_t *store, const char *ref, sl_dash_run_t **out, char *err,
                           size_t err_size);
void sl__dash_run_free(sl_dash_run_t *run);

/* ---- the parts: each answers its paths and returns true, or returns false ------------- */

bool sl__dash_api(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req);
bool sl__dash_event_stream(sl_dash_t *dash, sl_http_exchange_t *ex,
                           const sl_http_request_t *req);
bool sl__dash_metrics_answer(sl_dash_t *dash, sl_http_exchange_t *ex,
                             const sl_http_request_t *req);
bool sl__dash_pages(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req);

/* Their state, made and freed with the dashboard. */
int sl__dash_events_new(sl_dash_t *dash);
void sl__dash_events_free(sl_dash_t *dash);
int sl__dash_metrics_new(sl_dash_t *dash);
void sl__dash_metrics_free(sl_dash_t *dash);

#endif
