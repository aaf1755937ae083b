/*
 * The dashboard's front door: a request goes to the part that answers its path (api.c,
 * events.c, metrics.c, pages.c; 404 when none does), and the parts' reads of the state
 * database run here, in the threadpool, on one read-only connection opened by the first
 * read that finds the database (a dashboard may start before any run was recorded).
 */
#include <stdio.h>
#include <string.h>

#include "dash/internal.h"

int sl__dash_new(const sl_dash_opts_t *opts, sl_dash_t **out, char *err, size_t err_size)
{
    sl_dash_t *dash = sl__calloc(1, sizeof(*dash));
    if (dash == NULL || (dash->state_dir = sl__strdup(opts->state_dir)) == NULL) {
        sl__free(dash);
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    dash->loop = opts->loop;
    dash->daemon = opts->daemon;
    pthread_mutex_init(&dash->store_lock, NULL);
    int rc = sl__dash_events_new(dash);
    if (rc == 0)
        rc = sl__dash_metrics_new(dash);
    if (rc < 0) {
        snprintf(err, err_size, "out of memory");
        sl__dash_free(dash);
        return rc;
    }
    *out = dash;
    return 0;
}

void sl__dash_free(sl_dash_t *dash)
{
    if (dash == NULL)
        return;
    sl__dash_events_free(dash);
    sl__dash_metrics_free(dash);
    sl__store_close(dash->store);
    pthread_mutex_destroy(&dash->store_lock);
    sl__free(dash->state_dir);
    sl__free(dash);
}

bool sl__dash_busy(const sl_dash_t *dash)
{
    return dash->works > 0;
}

void sl__dash_handle(void *ud, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    sl_dash_t *dash = ud;
    if (sl__dash_event_stream(dash, ex, req) || sl__dash_api(dash, ex, req) ||
        sl__dash_metrics_answer(dash, ex, req) || sl__dash_pages(dash, ex, req))
        return;
    sl__http_error(ex, 404, "no such page");
}

/* ---- reads in the threadpool ------------------------------------------------------------ */

/* The store, opened once the database exists (NULL before). */
static sl_store_t *store_work(sl_dash_t *dash)
{
    pthread_mutex_lock(&dash->store_lock);
    if (dash->store == NULL) {
        char err[512];
        sl_store_t *store = NULL;
        if (sl__store_open(dash->state_dir, SL_STORE_READONLY, &store, err, sizeof err) == 0)
            dash->store = store;
    }
    sl_store_t *store = dash->store;
    pthread_mutex_unlock(&dash->store_lock);
    return store;
}

static void work_run(uv_work_t *work)
{
    sl_dash_work_t *w = work->data;
    w->run(w, store_work(w->dash));
}

static void work_after(uv_work_t *work, int status)
{
    sl_dash_work_t *w = work->data;
    w->dash->works--;
    if (status == UV_ECANCELED && w->rc == 0)
        w->rc = SL_ECANCELED;
    w->after(w);
}

int sl__dash_submit(sl_dash_t *dash, sl_dash_work_t *w)
{
    w->dash = dash;
    w->work.data = w;
    dash->works++;
    if (uv_queue_work(dash->loop, &w->work, work_run, work_after) < 0) {
        dash->works--;
        return SL_ESYS;
    }
    return 0;
}
