/*
 * The HTTP client: curl's multi interface driven by the libuv loop.
 *
 * curl tells us which sockets to watch (socket_cb) and when to wake it
 * (timer_cb); we watch with uv_poll and uv_timer and hand events back with
 * curl_multi_socket_action. Nothing polls and nothing blocks: DNS runs in
 * curl's resolver threads, file writes in libuv's threadpool.
 *
 * A request's life: parsed (request.c), queued on its host (hosts.c), taken
 * by the pump when limits allow, its file opened if it saves to one (save.c),
 * handed to curl, and reported exactly once through its `done` callback.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/internal.h"

#define SPARE_EASY_MAX 256

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    sl_http_engine_t *engine;
    sock_ctx_t *prev, *next; /* the engine's watched sockets */
};

static void check_done(sl_http_engine_t *engine);
static void on_sock_closed(uv_handle_t *handle);

/* ---- handles ---------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle)
{
    sl_http_client_t *client = handle->data;
    client->handles_open--;
}

static void on_engine_handle_closed(uv_handle_t *handle)
{
    sl_http_engine_t *engine = handle->data;
    engine->handles_open--;
}

static void unwatch(sock_ctx_t *ctx)
{
    sl_http_engine_t *engine = ctx->engine;
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        engine->socks = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    uv_poll_stop(&ctx->poll);
    uv_close((uv_handle_t *)&ctx->poll, on_sock_closed);
}

static void on_sock_closed(uv_handle_t *handle)
{
    sock_ctx_t *ctx = handle->data;
    sl_http_engine_t *engine = ctx->engine;
    sl__free(ctx);
    engine->handles_open--;
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    sock_ctx_t *ctx = poll->data;
    sl_http_engine_t *engine = ctx->engine;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(engine->multi, ctx->fd, flags, &running);
    check_done(engine);
}

static void on_deferred(uv_idle_t *idle);

/*
 * A socket we could not watch (out of memory) would leave its transfer waiting
 * forever: fail the transfer instead, from the loop (curl must not be re-entered
 * from its own callback).
 */
static int unwatchable(CURL *easy)
{
    sl_http_t *req = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
    if (req && !req->broken && req->state == REQ_ACTIVE) {
        sl_http_client_t *client = req->client;
        req->broken = true;
        req->queue_next = client->broken;
        client->broken = req;
        uv_idle_start(&client->deferred_idle, on_deferred);
    }
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching a socket. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sl_http_engine_t *engine = userp;
    sock_ctx_t *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx) {
            unwatch(ctx);
            curl_multi_assign(engine->multi, fd, NULL);
        }
        return 0;
    }
    if (ctx == NULL) {
        ctx = sl__malloc(sizeof(*ctx));
        if (ctx == NULL)
            return unwatchable(easy);
        ctx->fd = fd;
        ctx->engine = engine;
        if (uv_poll_init_socket(engine->loop, &ctx->poll, fd) < 0) {
            sl__free(ctx);
            return unwatchable(easy);
        }
        ctx->poll.data = ctx;
        ctx->prev = NULL;
        ctx->next = engine->socks;
        if (engine->socks)
            engine->socks->prev = ctx;
        engine->socks = ctx;
        engine->handles_open++;
        curl_multi_assign(engine->multi, fd, ctx);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&ctx->poll, events, on_poll) < 0 ? unwatchable(easy) : 0;
}

static void on_timer(uv_timer_t *timer)
{
    sl_http_engine_t *engine = timer->data;
    int running = 0;
    curl_multi_socket_action(engine->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(engine);
}

/*
 * CURLMOPT_TIMERFUNCTION. A 0 ms wish becomes 1 ms: libuv would run a 0 ms timer
 * restarted from inside its own callback again in the same pass, and curl asks for
 * 0 ms from inside socket_action.
 */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    sl_http_engine_t *engine = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&engine->timer);
    else
        uv_timer_start(&engine->timer, on_timer, timeout_ms > 0 ? (uint64_t)timeout_ms : 1, 0);
    return 0;
}

/* ---- reporting ---------------------------------------------------------------- */

void sl__io_http_report(sl_http_t *req, int code, sl_value_t *response, const char *message,
                        int64_t retry_after_ms)
{
    sl_http_client_t *client = req->client;
    sl_http_done_fn done = req->done;
    req->done = NULL;
    req->state = REQ_DONE;
    if (req->easy) { /* only requests that reached curl count: not a bad option */
        client->stats.requests++;
        if (code < 0)
            client->stats.failed++;
    }
    if (done)
        done(req->ud, code, response, message, retry_after_ms);
    else
        sl_value_free(response);
}

void sl__io_http_release(sl_http_t *req)
{
    if (!sl__io_save_settled(req)) {
        sl__io_save_advance(req); /* finishes the disk work, then releases it */
        return;
    }
    sl_http_client_t *client = req->client;
    if (req->live_prev)
        req->live_prev->live_next = req->live_next;
    else
        client->live = req->live_next;
    if (req->live_next)
        req->live_next->live_prev = req->live_prev;
    if (req->easy) {
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    sl__io_request_free(req);
}

static void on_curl_done(sl_http_t *req, CURLcode result);

static void on_deferred(uv_idle_t *idle)
{
    sl_http_client_t *client = idle->data;
    while (client->broken) {
        sl_http_t *req = client->broken;
        client->broken = req->queue_next;
        req->queue_next = NULL;
        if (req->state == REQ_ACTIVE)
            on_curl_done(req, CURLE_OUT_OF_MEMORY);
    }
    sl__io_http_slot_freed(client);
    sl_http_t *list = client->deferred_head;
    client->deferred_head = client->deferred_tail = NULL;
    uv_idle_stop(idle);
    while (list) {
        sl_http_t *req = list;
        list = req->queue_next;
        req->queue_next = NULL;
        sl__io_http_report(req, req->fail_code, NULL, req->fail_message,
                           req->fail_retry_after_ms);
        sl__io_http_release(req);
    }
}

/* Fails a request outside curl; the report comes from the loop, never from the caller. */
void sl__io_http_defer_fail(sl_http_t *req, int code, int64_t retry_after_ms, const char *fmt,
                            ...)
{
    sl_http_client_t *client = req->client;
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    req->fail_code = code;
    req->fail_retry_after_ms = retry_after_ms;
    sl__free(req->fail_message);
    req->fail_message = sl__strdup(message);
    req->state = REQ_DONE;
    req->queue_next = NULL;
    if (client->deferred_tail)
        client->deferred_tail->queue_next = req;
    else
        client->deferred_head = req;
    client->deferred_tail = req;
    uv_idle_start(&client->deferred_idle, on_deferred);
}

static void unlink_deferred(sl_http_t *req)
{
    sl_http_client_t *client = req->client;
    sl_http_t *prev = NULL;
    for (sl_http_t *r = client->deferred_head; r; prev = r, r = r->queue_next) {
        if (r != req)
            continue;
        if (prev)
            prev->queue_next = r->queue_next;
        else
            client->deferred_head = r->queue_next;
        if (client->deferred_tail == r)
            client->deferred_tail = prev;
        r->queue_next = NULL;
        return;
    }
}

/* ---- starting and finishing ------------------------------------------------- */

/* The request has its slot (and its file, if it saves): hand it to curl. */
int sl__io_http_activate(sl_http_t *req)
{
    int rc = sl__io_request_setup(req);
    if (rc < 0)
        return rc;
    req->state = REQ_ACTIVE;
    req->started_ns = sl__clock_now_ns();
    if (curl_multi_add_handle(req->client->engine->multi, req->easy) != CURLM_OK)
        return SL_EINTERNAL;
    sl_http_started_fn started = req->started;
    req->started = NULL;
    if (started && req->done) /* curl only acts from the loop: this cannot re-enter it */
        started(req->started_ud);
    return 0;
}

/* The request's slot is free; `conn_kept` when curl kept its connection for reuse. */
static void slot_free(sl_http_t *req, bool conn_kept)
{
    req->client->inflight--;
    req->client->engine->inflight--;
    sl__io_hosts_ended(req->host, conn_kept);
}

/* A queued hop's turn: its handle goes back to curl as it is. */
static int resume_hop(sl_http_t *req)
{
    req->hop_queued = false;
    req->state = REQ_ACTIVE;
    return curl_multi_add_handle(req->client->engine->multi, req->easy) == CURLM_OK
               ? 0
               : SL_EINTERNAL;
}

/* Room for one more request in the engine (all its clients together). */
static bool engine_room(const sl_http_engine_t *engine)
{
    return engine->inflight + engine->saves_closing < engine->concurrency;
}

/* Takes requests off the host queues while the limits (the client's and its engine's)
 * allow. */
void sl__io_http_pump(sl_http_client_t *client)
{
    sl_http_engine_t *engine = client->engine;
    while (!client->closing && engine_room(engine) &&
           client->inflight + client->saves_closing < client->limits.concurrency) {
        host_t *host = sl__io_hosts_next_ready(client);
        if (host == NULL)
            return;
        sl_http_t *req = host->queue_head;
        sl__io_hosts_unqueue(req);
        const char *rule = NULL;
        if (!req->internal && host->robots && !sl__io_robots_allows(host->robots, req->path, &rule)) {
            sl__io_http_defer_fail(req, SL_EFAILED, -1, "%s %s: %s%s%sblocked by robots.txt (%s)",
                                   req->method, req->url, req->hop_url ? "redirected to " : "",
                                   req->hop_url ? req->hop_url : "", req->hop_url ? ", " : "",
                                   rule);
            sl__io_hosts_wake(host);
            continue;
        }
        client->inflight++;
        engine->inflight++;
        if (client->inflight > client->stats.inflight_max)
            client->stats.inflight_max = client->inflight;
        sl__io_hosts_started(host, req);
        int rc = req->hop_queued ? resume_hop(req)
                 : req->save      ? sl__io_save_open(req)
                                  : sl__io_http_activate(req);
        if (rc < 0) {
            slot_free(req, false);
            sl__io_http_defer_fail(req, rc, 0, "%s %s: cannot start: %s", req->method, req->url,
                                   sl_strerror(rc));
        }
    }
}

/* save_to: the temporary file is made (error is an errno, or 0). */
void sl__io_http_opened(sl_http_t *req, int error)
{
    sl_http_client_t *client = req->client;
    char message[1024];
    int rc = error ? sl__io_save_open_failed(req, error, message, sizeof(message))
                   : sl__io_http_activate(req);
    if (rc < 0) {
        slot_free(req, false);
        if (!error)
            snprintf(message, sizeof(message), "%s %s: cannot start: %s", req->method, req->url,
                     sl_strerror(rc));
        sl__io_http_report(req, rc, NULL, message, -1);
        sl__io_http_release(req);
    }
    sl__io_http_slot_freed(client);
}

/* A redirect to another host: the request leaves its slot and its host, and waits on the
 * new host's queue like a new request (per_host, rate, robots.txt), its handle set up. */
static bool queue_hop(sl_http_t *req)
{
    host_t *from = req->host;
    if (sl__io_hosts_enqueue(req->client, req) < 0) { /* nothing changed */
        req->result = CURLE_OUT_OF_MEMORY;
        req->out_of_memory = true;
        return false;
    }
    req->hop_queued = true;
    req->client->inflight--;
    req->client->engine->inflight--;
    sl__io_hosts_ended(from, true);
    sl__io_http_slot_freed(req->client);
    return true;
}

static void on_curl_done(sl_http_t *req, CURLcode result)
{
    sl_http_client_t *client = req->client;
    CURLM *multi = client->engine->multi;
    curl_multi_remove_handle(multi, req->easy);
    if (sl__io_transport_restart(req, result) && curl_multi_add_handle(multi, req->easy) == CURLM_OK)
        return;
    req->result = result;
    sl__io_transport_count(req);
    sl__io_metrics_transfer(req);
    sl_io_hop_t hop = sl__io_request_redirect(req);
    if (hop == SL_IO_HOP_SAME_HOST && curl_multi_add_handle(multi, req->easy) == CURLM_OK)
        return; /* the next hop, in the same slot */
    if (hop == SL_IO_HOP_OTHER_HOST && queue_hop(req))
        return; /* the next hop, once its host's limits and robots.txt allow */
    slot_free(req, result == CURLE_OK);
    if (req->save && req->save->fd >= 0) { /* its file holds a descriptor a while longer */
        req->save->closing = true;
        client->saves_closing++;
        client->engine->saves_closing++;
    }
    if (req->save) {
        req->state = REQ_FINISHING;
        sl__io_save_advance(req); /* reports when the file is complete (or removed) */
    } else {
        sl__io_request_finish(req);
        sl__io_http_release(req);
    }
}

/* Pumps every client that has requests waiting, from where the last round stopped, until
 * the engine is full: one client's queue does not starve the others. */
static void pump_engine(sl_http_engine_t *engine)
{
    sl_http_client_t *first = engine->pump_from ? engine->pump_from : engine->clients;
    sl_http_client_t *c = first;
    while (c && engine_room(engine)) {
        sl_http_client_t *next = c->engine_next ? c->engine_next : engine->clients;
        if (c->ready_head)
            sl__io_http_pump(c);
        engine->pump_from = next;
        c = next == first ? NULL : next;
    }
}

void sl__io_http_slot_freed(sl_http_client_t *client)
{
    sl__io_http_pump(client);
    if (!client->engine->owned)
        pump_engine(client->engine);
}

static void check_done(sl_http_engine_t *engine)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(engine->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        sl_http_t *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        on_curl_done(req, msg->data.result);
    }
    pump_engine(engine);
}

/* ---- the API ------------------------------------------------------------------ */

int sl__io_http_load(char *err, size_t err_size)
{
    return sl__curl_open(err, err_size);
}

/* A default timeout from the environment (docs/http.md); a bad value is named and ignored. */
static int64_t env_duration(const char *name, int64_t fallback)
{
    const char *text = getenv(name);
    int64_t ms = 0;
    if (text == NULL || *text == '\0')
        return fallback;
    if (sl__duration_parse(text, &ms) == 0 && ms > 0)
        return ms;
    SL_LOG(SL_LOG_WARN, NULL, NULL,
           "%s='%.64s' is not a positive duration such as 5m or 30s: "
           "ignored",
           name, text);
    return fallback;
}

int sl__io_http_engine_new(uv_loop_t *loop, uint32_t concurrency, uint32_t max_streams,
                           sl_http_engine_t **out)
{
    char err[256];
    if (sl__curl_open(err, sizeof(err)) < 0)
        return SL_ENOTFOUND;
    sl_http_engine_t *engine = sl__calloc(1, sizeof(*engine));
    if (engine == NULL)
        return SL_ENOMEM;
    engine->loop = loop;
    engine->concurrency = sl__io_fds_concurrency(concurrency ? concurrency : 1024);
    engine->multi = curl_multi_init();
    engine->share = curl_share_init();
    if (engine->multi == NULL || engine->share == NULL) {
        curl_multi_cleanup(engine->multi);
        curl_share_cleanup(engine->share);
        sl__free(engine);
        return SL_ENOMEM;
    }
    /* DNS answers and TLS sessions survive across the multi's connections. */
    curl_share_setopt(engine->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(engine->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(engine->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(engine->multi, CURLMOPT_SOCKETDATA, engine);
    curl_multi_setopt(engine->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(engine->multi, CURLMOPT_TIMERDATA, engine);
    curl_multi_setopt(engine->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(engine->multi, CURLMOPT_MAXCONNECTS, (long)engine->concurrency);
    if (max_streams > 0)
        curl_multi_setopt(engine->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)max_streams);
    uv_timer_init(loop, &engine->timer);
    engine->timer.data = engine;
    engine->handles_open = 1;
    *out = engine;
    return 0;
}

int sl__io_http_new_in(sl_http_engine_t *engine, const sl_http_limits_t *limits,
                       sl_http_client_t **out)
{
    sl_http_client_t *client = sl__calloc(1, sizeof(*client));
    if (client == NULL)
        return SL_ENOMEM;
    client->loop = engine->loop;
    client->engine = engine;
    client->limits = *limits;
    if (client->limits.concurrency == 0)
        client->limits.concurrency = 128;
    client->limits.concurrency = sl__io_fds_concurrency(client->limits.concurrency);
    if (client->limits.per_host == 0)
        client->limits.per_host = 32;
    snprintf(client->user_agent, sizeof(client->user_agent), "sluice/%s", SLUICE_VERSION);
    client->default_timeout_ms = env_duration("SLUICE_HTTP_TIMEOUT", HTTP_TIMEOUT_MS_DEFAULT);
    client->default_idle_ms =
        env_duration("SLUICE_HTTP_IDLE_TIMEOUT", HTTP_IDLE_TIMEOUT_MS_DEFAULT);
    if (sl__io_transport_init(client, limits) < 0) {
        sl__io_transport_free(client);
        sl__free(client);
        return SL_ENOMEM;
    }
    client->limits.ca_file = client->limits.proxy = NULL; /* the caller's: not kept */
    uv_idle_init(engine->loop, &client->deferred_idle);
    client->deferred_idle.data = client;
    client->handles_open = 1;
    client->engine_next = engine->clients;
    if (engine->clients)
        engine->clients->engine_prev = client;
    engine->clients = client;
    *out = client;
    return 0;
}

int sl__io_http_new(uv_loop_t *loop, const sl_http_limits_t *limits, sl_http_client_t **out)
{
    sl_http_engine_t *engine;
    uint32_t concurrency = limits->concurrency ? limits->concurrency : 128;
    int rc = sl__io_http_engine_new(loop, concurrency, limits->max_streams, &engine);
    if (rc < 0)
        return rc;
    engine->owned = true;
    rc = sl__io_http_new_in(engine, limits, out);
    if (rc < 0) {
        sl__io_http_engine_close(engine);
        while (!sl__io_http_engine_closed(engine))
            uv_run(loop, UV_RUN_NOWAIT);
        sl__io_http_engine_free(engine);
    }
    return rc;
}

sl_http_t *sl__io_http_new_request(sl_http_client_t *client, uint32_t attempt,
                                   sl_http_done_fn done, void *ud)
{
    sl_http_t *req = sl__calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->client = client;
    req->attempt = attempt;
    req->done = done;
    req->ud = ud;
    req->live_next = client->live;
    if (client->live)
        client->live->live_prev = req;
    client->live = req;
    return req;
}

int sl__io_http_start(sl_http_client_t *client, uint32_t attempt, const sl_value_t *request,
                      sl_http_done_fn done, void *ud, sl_http_t **out)
{
    sl_http_call_t call = {.attempt = attempt};
    return sl__io_http_start_call(client, &call, request, done, ud, out);
}

int sl__io_http_start_call(sl_http_client_t *client, const sl_http_call_t *call,
                           const sl_value_t *request, sl_http_done_fn done, void *ud,
                           sl_http_t **out)
{
    if (client->closing)
        return SL_ECANCELED;
    sl_http_t *req = sl__io_http_new_request(client, call->attempt, done, ud);
    if (req == NULL)
        return SL_ENOMEM;
    req->started = call->started;
    req->started_ud = call->started_ud;
    req->step_timeout_ms = call->step_timeout_ms;
    *out = req;
    /* curl reads the URL as a C string: "http://h/a\0b" would fetch http://h/a. */
    size_t url_len = 0;
    const char *url = sl_value_str(sl_value_get(request, "url"), &url_len);
    if (url && memchr(url, '\0', url_len)) {
        sl__io_http_defer_fail(req, SL_EINVAL, -1, "url contains a NUL byte");
        return 0;
    }
    char err[256];
    int rc = sl__io_request_parse(req, request, err, sizeof(err));
    if (rc == SL_ENOMEM) {
        req->done = NULL;
        sl__io_http_release(req);
        return SL_ENOMEM;
    }
    if (rc < 0) {
        sl__io_http_defer_fail(req, rc, -1, "%s", err);
        return 0;
    }
    rc = sl__io_hosts_enqueue(client, req);
    if (rc < 0) {
        req->done = NULL;
        sl__io_http_release(req);
        return rc;
    }
    sl__io_http_pump(client);
    return 0;
}

void sl__io_http_cancel(sl_http_t *req)
{
    if (req == NULL || req->done == NULL)
        return;
    sl_http_client_t *client = req->client;
    switch ((req_state_t)req->state) {
    case REQ_QUEUED:
        sl__io_hosts_unqueue(req);
        break;
    case REQ_OPENING:
        slot_free(req, false);
        break;
    case REQ_ACTIVE:
        if (req->broken) {
            sl_http_t **link = &client->broken;
            while (*link != req)
                link = &(*link)->queue_next;
            *link = req->queue_next;
        }
        curl_multi_remove_handle(client->engine->multi, req->easy);
        slot_free(req, false);
        break;
    case REQ_DONE:
        unlink_deferred(req);
        break;
    case REQ_NEW:
    case REQ_FINISHING:
        break;
    }
    char message[512];
    snprintf(message, sizeof(message), "%s %s: canceled", req->method ? req->method : "GET",
             req->url ? req->url : "?");
    sl__io_http_report(req, SL_ECANCELED, NULL, message, 0);
    sl__io_http_release(req);
    sl__io_http_slot_freed(client);
}

bool sl__io_http_closed(const sl_http_client_t *client)
{
    return client == NULL ||
           (client->closing && client->handles_open == 0 && client->live == NULL &&
            (!client->engine->owned || sl__io_http_engine_closed(client->engine)));
}

void sl__io_http_free(sl_http_client_t *client)
{
    if (client == NULL)
        return;
    sl_http_engine_t *engine = client->engine;
    if (client->engine_prev)
        client->engine_prev->engine_next = client->engine_next;
    else
        engine->clients = client->engine_next;
    if (client->engine_next)
        client->engine_next->engine_prev = client->engine_prev;
    if (engine->pump_from == client)
        engine->pump_from = NULL;
    sl__io_transport_free(client);
    sl__io_hosts_free_all(client);
    sl__free(client);
    if (engine->owned) /* last: requests that waited for their disk work used its share */
        sl__io_http_engine_free(engine);
}

void sl__io_http_close(sl_http_client_t *client)
{
    if (client == NULL || client->closing)
        return;
    client->closing = true; /* no new request starts, none is taken off a queue */
    /*
     * A report can run code that cancels other requests, so scan again from the head
     * after each one. Unreported requests sit at the head (a request waiting only for
     * its disk work is already reported), so this stays linear.
     */
    for (;;) {
        sl_http_t *req = client->live;
        while (req && req->done == NULL)
            req = req->live_next;
        if (req == NULL)
            break;
        sl__io_http_cancel(req);
    }
    uv_close((uv_handle_t *)&client->deferred_idle, on_handle_closed);
    sl__io_hosts_close_timers(client);
    if (client->engine->owned)
        sl__io_http_engine_close(client->engine);
}

void sl__io_http_engine_close(sl_http_engine_t *engine)
{
    if (engine == NULL || engine->closing)
        return;
    engine->closing = true;
    uv_timer_stop(&engine->timer);
    curl_multi_cleanup(engine->multi);
    engine->multi = NULL;
    while (engine->socks) /* whatever curl closed without telling socket_cb */
        unwatch(engine->socks);
    uv_close((uv_handle_t *)&engine->timer, on_engine_handle_closed);
}

bool sl__io_http_engine_closed(const sl_http_engine_t *engine)
{
    return engine == NULL || (engine->closing && engine->handles_open == 0);
}

void sl__io_http_engine_free(sl_http_engine_t *engine)
{
    if (engine == NULL)
        return;
    curl_share_cleanup(engine->share);
    sl__free(engine);
}

void sl__io_http_stats(const sl_http_client_t *client, sl_http_stats_t *out)
{
    *out = client->stats;
    out->inflight = client->inflight;
}
