/*
 * /api/events: live progress as Server-Sent Events (docs/dashboard-api.md). One poller per
 * dashboard, not per client: every POLL_MS while a client is connected it reads the
 * database in the threadpool (nothing when PRAGMA data_version says no other connection
 * committed), compares what it finds with what it saw, and turns the differences into
 * events: run_started, step_progress, task_failed, run_finished. A run recorded by any
 * process is seen, since every recorder writes its steps' counters while they run
 * (host/record.c). Events get consecutive ids and are kept in a ring of the last
 * RING_SIZE; each client has a cursor in it. A client is written to while its socket's
 * queue is under SL_HTTP_HIGH_WATER and then waits for the drain, so a burst (10,000
 * steps ending) reaches a reading client whole; one that reads so slowly that the ring
 * moves past its cursor is dropped (it reconnects with Last-Event-ID and is sent what the
 * ring still holds). Bounded: clients (CLIENTS_MAX, more are answered 503), runs
 * followed (TRACK_MAX), events per poll (POLL_EVENTS_MAX, fewer than the ring: the rest
 * come with the next poll). A comment every KEEPALIVE_MS keeps proxies from closing a
 * quiet stream.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash/internal.h"

#define POLL_MS 500
#define KEEPALIVE_MS 15000
#define RING_SIZE 2000
#define CLIENTS_MAX 64
#define TRACK_MAX 256         /* running runs followed at once */
#define NEW_RUNS_MAX 100      /* new runs taken per poll */
#define POLL_EVENTS_MAX 1000  /* events made per poll: fewer than the ring holds */
#define FAILED_PER_POLL 1000  /* failed tasks read per run and poll */
#define ERROR_MAX 2048        /* bytes of a task's error in an event */
#define RESTART_AFTER_MS 60000 /* a poller idle longer starts from the present again */

typedef struct event {
    uint64_t id;
    const char *type; /* static */
    char run[64];
    char *data;       /* JSON, one line */
} event_t;

/* What the poller knows of a step of a followed run. */
typedef struct step_seen {
    char status[16];
    uint64_t total, ok, failed, skipped;
} step_seen_t;

typedef struct tracked {
    int64_t seq;
    char id[64];
    step_seen_t *steps;
    size_t step_count, step_cap;
    int64_t failed[3]; /* (ended_ms, step, item) of the last failed task told */
} tracked_t;

/* The poller's state and its one job: touched by the threadpool while `busy`, by the
 * loop otherwise. Outlives the dashboard's events while a poll is in flight. */
typedef struct poller {
    sl_dash_work_t w;
    struct sl_dash_events *events; /* NULL: the dashboard went while it polled */
    bool busy, ready, stale;
    int64_t version, last_seq;
    tracked_t *runs;
    size_t run_count;
    event_t *out; /* made by the last poll, to be numbered on the loop */
    size_t out_count;
} poller_t;

typedef struct client {
    struct client *next;
    struct sl_dash_events *events;
    sl_http_exchange_t *ex;
    char run[64];     /* only this run's events; "" = all */
    uint64_t next_id; /* the id of the next event it is to be sent */
    bool waiting;     /* for its socket to drain */
} client_t;

typedef struct timers {
    uv_timer_t poll, keepalive;
    int open;
} timers_t;

struct sl_dash_events {
    sl_dash_t *dash;
    timers_t *timers;
    poller_t *poller;
    client_t *clients;
    size_t client_count;
    event_t ring[RING_SIZE];
    size_t ring_start, ring_count;
    uint64_t next_id;
    uint64_t stopped_at; /* loop time the poller stopped; 0: running or never */
    uint64_t drops;      /* clients dropped so far */
};

/* ---- events made in the threadpool ------------------------------------------------------ */

static bool emit(poller_t *p, const char *type, const char *run, sl_value_t *data)
{
    if (p->out_count == POLL_EVENTS_MAX || data == NULL) {
        sl_value_free(data);
        p->stale = true; /* look again next time, whatever data_version says */
        return false;
    }
    char *json = NULL;
    size_t len;
    int rc = sl_value_to_json(data, &json, &len);
    sl_value_free(data);
    if (rc < 0) {
        p->stale = true;
        return false;
    }
    event_t *e = &p->out[p->out_count++];
    e->id = 0;
    e->type = type;
    snprintf(e->run, sizeof e->run, "%s", run);
    e->data = json;
    return true;
}

/* A map of `pairs` (key, value) pairs; NULL when out of memory. */
static sl_value_t *map_of(size_t pairs, const char *const *keys, sl_value_t **values)
{
    sl_value_t *m = sl_value_map();
    int rc = m ? 0 : SL_ENOMEM;
    for (size_t i = 0; i < pairs; i++)
        if (rc == 0)
            rc = sl_value_set(m, keys[i], values[i]);
        else
            sl_value_free(values[i]);
    if (rc < 0) {
        sl_value_free(m);
        return NULL;
    }
    return m;
}

static bool emit_run_started(poller_t *p, const sl_store_run_row_t *r)
{
    char started[32];
    sl__store_format_time(r->started_ms, started, sizeof started);
    const char *keys[] = {"run", "workflow", "trigger", "started"};
    sl_value_t *values[] = {sl_value_cstring(r->id), sl_value_cstring(r->workflow),
                            sl_value_cstring(r->trigger), sl_value_cstring(started)};
    return emit(p, "run_started", r->id, map_of(4, keys, values));
}

static bool emit_run_finished(poller_t *p, const sl_store_run_row_t *r)
{
    const char *keys[] = {"run", "status", "duration_ms"};
    sl_value_t *values[] = {sl_value_cstring(r->id), sl_value_cstring(r->status),
                            r->finished_ms ? sl_value_int(r->finished_ms - r->started_ms)
                                           : sl_value_nil()};
    return emit(p, "run_finished", r->id, map_of(3, keys, values));
}

typedef struct step_ctx {
    poller_t *p;
    tracked_t *t;
    size_t at;
    bool full;
} step_ctx_t;

static int see_step(void *ud, const sl_store_step_row_t *s)
{
    step_ctx_t *c = ud;
    tracked_t *t = c->t;
    if (c->at == t->step_cap) {
        size_t cap = t->step_cap ? t->step_cap * 2 : 16;
        step_seen_t *steps = sl__realloc(t->steps, cap * sizeof(*steps));
        if (steps == NULL)
            return c->full = true, 1;
        memset(steps + t->step_cap, 0, (cap - t->step_cap) * sizeof(*steps));
        t->steps = steps, t->step_cap = cap;
    }
    step_seen_t *seen = &t->steps[c->at++];
    if (c->at > t->step_count)
        t->step_count = c->at;
    step_seen_t now = {.total = s->total, .ok = s->ok, .failed = s->failed,
                       .skipped = s->skipped};
    snprintf(now.status, sizeof now.status, "%s", s->status);
    bool fresh = seen->status[0] == '\0';
    if (fresh && strcmp(now.status, "waiting") == 0 && now.total == 0)
        return *seen = now, 0; /* not started: nothing to tell */
    if (!fresh && memcmp(seen, &now, sizeof now) == 0)
        return 0;
    const char *keys[] = {"run", "step", "status", "total", "ok", "failed", "skipped"};
    sl_value_t *values[] = {sl_value_cstring(t->id), sl_value_cstring(s->id),
                            sl_value_cstring(s->status), sl_value_int((int64_t)s->total),
                            sl_value_int((int64_t)s->ok), sl_value_int((int64_t)s->failed),
                            sl_value_int((int64_t)s->skipped)};
    if (!emit(c->p, "step_progress", t->id, map_of(7, keys, values)))
        return c->full = true, 1;
    *seen = now;
    return 0;
}

typedef struct failed_ctx {
    poller_t *p;
    tracked_t *t;
    bool full;
    size_t rows;
} failed_ctx_t;

static int see_failed(void *ud, const sl_store_task_row_t *r)
{
    failed_ctx_t *c = ud;
    tracked_t *t = c->t;
    c->rows++;
    char error[ERROR_MAX];
    snprintf(error, sizeof error, "%s", r->error ? r->error : "failed");
    const char *keys[] = {"run", "step", "item", "error", "attempts"};
    sl_value_t *values[] = {sl_value_cstring(t->id), sl_value_cstring(r->step_id),
                            sl_value_int(r->item + 1), sl_value_cstring(error),
                            sl_value_int(r->attempts)};
    if (!emit(c->p, "task_failed", t->id, map_of(5, keys, values)))
        return c->full = true, 1;
    t->failed[0] = r->ended_ms, t->failed[1] = r->step, t->failed[2] = r->item;
    return 0;
}

static void untrack(poller_t *p, size_t i)
{
    sl__free(p->runs[i].steps);
    p->runs[i] = p->runs[--p->run_count];
}

/* A followed run: its steps' news, its new failed tasks, its end. False when the poll's
 * events are full (the rest waits for the next poll). */
static bool update_run(poller_t *p, sl_store_t *store, size_t i, char *err, size_t n)
{
    tracked_t *t = &p->runs[i];
    sl_store_run_row_t row;
    int rc = sl__store_run_by_seq(store, t->seq, &row, err, n);
    if (rc == SL_ENOTFOUND) {
        untrack(p, i);
        return true;
    }
    step_ctx_t sc = {p, t, 0, false};
    if (rc == 0)
        rc = sl__store_list_steps(store, t->seq, see_step, &sc, err, n);
    failed_ctx_t fc = {p, t, false, 0};
    if (rc == 0 && !sc.full)
        rc = sl__store_failed_after(store, t->seq, t->failed, FAILED_PER_POLL, see_failed, &fc,
                                    err, n);
    if (rc < 0 || sc.full || fc.full)
        return rc == 0 ? false : (p->stale = true, true);
    if (fc.rows == FAILED_PER_POLL) /* more failed tasks to read: the end comes after */
        return p->stale = true, true;
    if (strcmp(row.status, "running") == 0)
        return true;
    if (!emit_run_finished(p, &row))
        return false;
    untrack(p, i);
    return true;
}

static int track(poller_t *p, const sl_store_run_row_t *r, int64_t failed_ms)
{
    if (p->run_count == TRACK_MAX)
        return 0; /* followed no further: its start (and end, if seen) are still told */
    tracked_t *t = &p->runs[p->run_count++];
    memset(t, 0, sizeof(*t));
    t->seq = r->seq;
    snprintf(t->id, sizeof t->id, "%s", r->id);
    t->failed[0] = failed_ms, t->failed[1] = -1, t->failed[2] = -1;
    return 0;
}

static int see_new_run(void *ud, const sl_store_run_row_t *r)
{
    poller_t *p = ud;
    if (p->out_count + 2 > POLL_EVENTS_MAX || !emit_run_started(p, r))
        return 1;
    p->last_seq = r->seq;
    size_t followed = p->run_count;
    track(p, r, 0);
    if (p->run_count > followed)
        p->stale = true; /* its steps and end: the next poll, whatever data_version says */
    else if (strcmp(r->status, "running") != 0) /* not followed: its end now */
        emit_run_finished(p, r);
    return 0;
}

static int note_newest(void *ud, const sl_store_run_row_t *r)
{
    ((poller_t *)ud)->last_seq = r->seq;
    return 1;
}

static int note_running(void *ud, const sl_store_run_row_t *r)
{
    poller_t *p = ud;
    if (strcmp(r->status, "running") == 0)
        track(p, r, sl__store_now_ms());
    return 0;
}

/* The first look: what is there is the present, told to nobody; running runs are followed
 * from their counters now. */
static int start_poller(poller_t *p, sl_store_t *store, char *err, size_t n)
{
    while (p->run_count)
        untrack(p, p->run_count - 1);
    p->last_seq = 0;
    sl_store_filter_t newest = {.limit = 1};
    int rc = sl__store_list_runs(store, &newest, note_newest, p, err, n);
    sl_store_filter_t running = {.status = "running", .limit = TRACK_MAX};
    if (rc == 0)
        rc = sl__store_list_runs(store, &running, note_running, p, err, n);
    for (size_t i = 0; rc == 0 && i < p->run_count; i++) {
        step_ctx_t sc = {p, &p->runs[i], 0, false};
        rc = sl__store_list_steps(store, p->runs[i].seq, see_step, &sc, err, n);
    }
    for (size_t i = 0; i < p->out_count; i++) /* the steps' present state: not news */
        sl__free(p->out[i].data);
    p->out_count = 0;
    return rc;
}

static void poll_work(sl_dash_work_t *w, sl_store_t *store)
{
    poller_t *p = w->ud;
    if (store == NULL)
        return; /* no state yet */
    int64_t version = 0;
    w->rc = sl__store_data_version(store, &version, w->err, sizeof w->err);
    if (w->rc < 0 || (p->ready && !p->stale && version == p->version))
        return;
    p->version = version;
    p->stale = false;
    if (!p->ready) {
        w->rc = start_poller(p, store, w->err, sizeof w->err);
        p->ready = w->rc == 0;
        return;
    }
    for (size_t i = p->run_count; i-- > 0 && w->rc == 0;)
        if (!update_run(p, store, i, w->err, sizeof w->err))
            return;
    if (w->rc == 0 && p->run_count < TRACK_MAX)
        w->rc = sl__store_runs_after(store, p->last_seq, NEW_RUNS_MAX, see_new_run, p, w->err,
                                     sizeof w->err);
}

/* ---- clients, on the loop -------------------------------------------------------------- */

static void client_drop(client_t *c)
{
    sl_dash_events_t *e = c->events;
    for (client_t **pp = &e->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    e->client_count--;
    e->drops++;
    sl__http_end(c->ex);
    sl__free(c);
    if (e->client_count == 0 && e->timers) {
        uv_timer_stop(&e->timers->poll);
        uv_timer_stop(&e->timers->keepalive);
        e->stopped_at = uv_now(e->dash->loop) + 1;
    }
}

static void on_client_drain(void *ud);

/* Sends the client the ring's events from its cursor on, while its socket's queue is
 * under the high-water mark; then waits for the drain. A cursor the ring has moved past
 * drops the client. A write that fails closes the connection, whose gone callback drops
 * the client (maybe before the write returns): `c` may be freed after a send. */
static void client_pump(client_t *c)
{
    sl_dash_events_t *e = c->events;
    c->waiting = false;
    uint64_t first = e->ring_count ? e->ring[e->ring_start].id : e->next_id;
    if (c->next_id < first) {
        client_drop(c); /* too slow: it missed events */
        return;
    }
    uint64_t drops = e->drops;
    while (c->next_id < e->next_id) {
        if (sl__http_queued(c->ex) >= SL_HTTP_HIGH_WATER) {
            c->waiting = true;
            sl__http_on_drain(c->ex, on_client_drain, c);
            return;
        }
        const event_t *ev = &e->ring[(e->ring_start + (c->next_id - first)) % RING_SIZE];
        c->next_id++;
        if (c->run[0] && strcmp(c->run, ev->run) != 0)
            continue;
        sl__http_printf(c->ex, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", ev->id, ev->type,
                        ev->data);
        if (e->drops != drops)
            return;
    }
}

static void on_client_drain(void *ud)
{
    client_pump(ud);
}

/* New events in the ring: each client waiting on its drain is checked (still in the
 * ring?), the others are sent what is new. */
static void broadcast(sl_dash_events_t *e)
{
    uint64_t first = e->ring_count ? e->ring[e->ring_start].id : e->next_id;
    for (client_t *c = e->clients, *next; c; c = next) {
        next = c->next;
        if (!c->waiting)
            client_pump(c);
        else if (c->next_id < first)
            client_drop(c);
    }
}

static void ring_add(sl_dash_events_t *e, event_t *ev)
{
    ev->id = e->next_id++;
    if (e->ring_count == RING_SIZE) {
        sl__free(e->ring[e->ring_start].data);
        e->ring[e->ring_start] = *ev;
        e->ring_start = (e->ring_start + 1) % RING_SIZE;
    } else {
        e->ring[(e->ring_start + e->ring_count++) % RING_SIZE] = *ev;
    }
}

static void poll_after(sl_dash_work_t *w)
{
    poller_t *p = w->ud;
    sl_dash_events_t *e = p->events;
    p->busy = false;
    for (size_t i = 0; i < p->out_count; i++) {
        if (e == NULL)
            sl__free(p->out[i].data);
        else
            ring_add(e, &p->out[i]);
    }
    if (e && p->out_count)
        broadcast(e);
    p->out_count = 0;
    if (e == NULL) { /* the dashboard is gone */
        while (p->run_count)
            untrack(p, p->run_count - 1);
        sl__free(p->runs);
        sl__free(p->out);
        sl__free(p);
    }
}

static void on_poll(uv_timer_t *timer)
{
    sl_dash_events_t *e = timer->data;
    poller_t *p = e->poller;
    if (p->busy || e->client_count == 0)
        return;
    p->busy = true;
    p->w.run = poll_work;
    p->w.after = poll_after;
    p->w.ud = p;
    p->w.rc = 0;
    p->w.err[0] = '\0';
    if (sl__dash_submit(e->dash, &p->w) < 0)
        p->busy = false;
}

static void on_keepalive(uv_timer_t *timer)
{
    sl_dash_events_t *e = timer->data;
    for (client_t *c = e->clients, *next; c; c = next) {
        next = c->next;
        if (!c->waiting) /* one waiting on its drain is not quiet */
            sl__http_printf(c->ex, ": keepalive\n\n"); /* a failure drops it (gone) */
    }
}

static void on_client_gone(void *ud)
{
    client_drop(ud);
}

/* A reconnecting client's cursor: after `last`, or the ring's oldest event when the ring
 * no longer holds what came after it. A `last` that is not an id: nothing missed. */
static uint64_t resume_at(const sl_dash_events_t *e, const char *last)
{
    char *end;
    unsigned long long id = strtoull(last, &end, 10);
    if (*last == '\0' || *end != '\0' || id >= e->next_id)
        return e->next_id;
    uint64_t first = e->ring_count ? e->ring[e->ring_start].id : e->next_id;
    return id + 1 > first ? id + 1 : first;
}

static void start_polling(sl_dash_events_t *e)
{
    if (e->stopped_at && uv_now(e->dash->loop) - e->stopped_at > RESTART_AFTER_MS)
        e->poller->ready = false; /* long gone: the present again, not the gap's news */
    e->stopped_at = 0;
    uv_timer_start(&e->timers->poll, on_poll, 0, POLL_MS);
    uv_timer_start(&e->timers->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
}

bool sl__dash_event_stream(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    if (strcmp(req->path, "/api/events") != 0)
        return false;
    sl_dash_events_t *e = dash->events;
    char run[64] = "";
    int n = sl__http_query(req, "run", run, sizeof run);
    if (n == -2 || n == 0) {
        sl__http_error(ex, 400, "run: expected a run id");
        return true;
    }
    if (e->client_count >= CLIENTS_MAX) {
        sl__http_error(ex, 503, "too many event streams open (64)");
        return true;
    }
    client_t *c = sl__calloc(1, sizeof(*c));
    if (c == NULL) {
        sl__http_error(ex, 503, "out of memory");
        return true;
    }
    c->events = e, c->ex = ex;
    snprintf(c->run, sizeof c->run, "%s", n > 0 ? run : "");
    c->next = e->clients;
    e->clients = c;
    e->client_count++;
    sl__http_header(ex, "Cache-Control", "no-store");
    sl__http_begin(ex, 200, "text/event-stream");
    sl__http_streaming(ex);
    sl__http_on_gone(ex, on_client_gone, c);
    if (req->head) { /* the head is all it gets */
        client_drop(c);
        return true;
    }
    if (e->client_count == 1)
        start_polling(e);
    c->next_id = req->last_event_id ? resume_at(e, req->last_event_id) : e->next_id;
    uint64_t drops = e->drops;
    sl__http_printf(ex, "retry: 2000\n: sluice events\n\n");
    if (e->drops == drops)
        client_pump(c);
    return true;
}

/* ---- made and freed with the dashboard ---------------------------------------------------- */

int sl__dash_events_new(sl_dash_t *dash)
{
    sl_dash_events_t *e = sl__calloc(1, sizeof(*e));
    poller_t *p = sl__calloc(1, sizeof(*p));
    timers_t *t = sl__calloc(1, sizeof(*t));
    if (p) {
        p->runs = sl__calloc(TRACK_MAX, sizeof(*p->runs));
        p->out = sl__calloc(POLL_EVENTS_MAX, sizeof(*p->out));
    }
    if (e == NULL || p == NULL || t == NULL || p->runs == NULL || p->out == NULL) {
        if (p)
            sl__free(p->runs), sl__free(p->out);
        sl__free(e), sl__free(p), sl__free(t);
        return SL_ENOMEM;
    }
    e->dash = dash;
    e->poller = p;
    p->events = e;
    p->w.ud = p;
    e->timers = t;
    /* Ids go on from the time the dashboard started: a client of an earlier one that
     * reconnects with its last id is sent the whole ring, not a wrong part of it. */
    e->next_id = (uint64_t)sl__store_now_ms() * 1000;
    uv_timer_init(dash->loop, &t->poll);
    uv_timer_init(dash->loop, &t->keepalive);
    t->poll.data = t->keepalive.data = e;
    t->open = 2;
    dash->events = e;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    timers_t *t = h->data;
    if (--t->open == 0)
        sl__free(t);
}

void sl__dash_events_free(sl_dash_t *dash)
{
    sl_dash_events_t *e = dash->events;
    if (e == NULL)
        return;
    while (e->clients)
        client_drop(e->clients);
    /* The daemon closes every handle of its loop before the dashboard is freed (serve's
     * shutdown walks them): then the timers are only memory. Another embedder's loop may
     * still run: then they are closed here, and freed once closed. */
    timers_t *t = e->timers;
    if (uv_is_closing((uv_handle_t *)&t->poll) && uv_is_closing((uv_handle_t *)&t->keepalive)) {
        sl__free(t);
    } else {
        t->poll.data = t->keepalive.data = t;
        uv_close((uv_handle_t *)&t->poll, timer_closed);
        uv_close((uv_handle_t *)&t->keepalive, timer_closed);
    }
    e->timers = NULL;
    poller_t *p = e->poller;
    p->events = NULL;
    if (!p->busy)
        poll_after(&p->w); /* with no events to go to: frees it */
    for (size_t i = 0; i < e->ring_count; i++)
        sl__free(e->ring[(e->ring_start + i) % RING_SIZE].data);
    sl__free(e);
    dash->events = NULL;
}
