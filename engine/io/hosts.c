/*
 * Hosts: where requests wait. Each scheme://host:port has a FIFO of queued
 * requests and a count in flight. Hosts that may start a request sit on the
 * client's ready list, served round-robin by the pump, so one busy site does
 * not starve the others. A host leaves the ready list when it cannot start
 * (per-host limit, rate, robots.txt not known yet) and is woken when that
 * changes: a request ends, its rate timer fires, its robots.txt arrives.
 */
#include <string.h>

#include "io/internal.h"

static uint64_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static int grow_buckets(sl_http_client_t *client)
{
    size_t count = client->bucket_count ? client->bucket_count * 2 : 64;
    host_t **buckets = sl__calloc(count, sizeof(*buckets));
    if (buckets == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < client->bucket_count; i++) {
        host_t *h = client->buckets[i];
        while (h) {
            host_t *next = h->bucket_next;
            h->bucket_next = buckets[h->hash & (count - 1)];
            buckets[h->hash & (count - 1)] = h;
            h = next;
        }
    }
    sl__free(client->buckets);
    client->buckets = buckets;
    client->bucket_count = count;
    return 0;
}

/* The host part of a URL: "scheme://host:port", with the scheme's default port. */
static char *host_key(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        sl_buf_t b;
        sl__buf_init(&b, 4096);
        if (sl__buf_addf(&b, "%s://%s:%s", scheme, host, port) == 0)
            key = sl__buf_take(&b, NULL);
        sl__buf_close(&b);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return key;
}

char *sl__io_hosts_key(const char *url)
{
    return host_key(url);
}

static host_t *find_or_add(sl_http_client_t *client, const char *url)
{
    char *key = host_key(url);
    if (key == NULL)
        return NULL;
    uint64_t hash = hash_key(key);
    if (client->bucket_count) {
        for (host_t *h = client->buckets[hash & (client->bucket_count - 1)]; h; h = h->bucket_next)
            if (h->hash == hash && strcmp(h->key, key) == 0) {
                sl__free(key);
                return h;
            }
    }
    if (client->host_count >= client->bucket_count && grow_buckets(client) < 0) {
        sl__free(key);
        return NULL;
    }
    host_t *h = sl__calloc(1, sizeof(*h));
    if (h == NULL) {
        sl__free(key);
        return NULL;
    }
    h->key = key;
    h->hash = hash;
    h->client = client;
    h->rate = client->limits.rate;
    size_t b = hash & (client->bucket_count - 1);
    h->bucket_next = client->buckets[b];
    client->buckets[b] = h;
    client->host_count++;
    return h;
}

static void push_ready(host_t *host)
{
    sl_http_client_t *client = host->client;
    if (host->in_ready)
        return;
    host->in_ready = true;
    host->ready_next = NULL;
    if (client->ready_tail)
        client->ready_tail->ready_next = host;
    else
        client->ready_head = host;
    client->ready_tail = host;
}

static host_t *pop_ready(sl_http_client_t *client)
{
    host_t *host = client->ready_head;
    if (host == NULL)
        return NULL;
    client->ready_head = host->ready_next;
    if (client->ready_head == NULL)
        client->ready_tail = NULL;
    host->in_ready = false;
    host->ready_next = NULL;
    return host;
}

int sl__io_hosts_enqueue(sl_http_client_t *client, sl_http_t *req)
{
    host_t *host = find_or_add(client, req->hop_url ? req->hop_url : req->url);
    if (host == NULL)
        return SL_ENOMEM;
    req->host = host;
    req->state = REQ_QUEUED;
    if (req->internal) { /* robots.txt goes first */
        req->queue_prev = NULL;
        req->queue_next = host->queue_head;
        if (host->queue_head)
            host->queue_head->queue_prev = req;
        else
            host->queue_tail = req;
        host->queue_head = req;
    } else {
        req->queue_next = NULL;
        req->queue_prev = host->queue_tail;
        if (host->queue_tail)
            host->queue_tail->queue_next = req;
        else
            host->queue_head = req;
        host->queue_tail = req;
    }
    push_ready(host);
    return 0;
}

/* O(1): a Ctrl-C that cancels 10,000 queued requests must not walk the queue for each. */
void sl__io_hosts_unqueue(sl_http_t *req)
{
    host_t *host = req->host;
    if (req->queue_prev)
        req->queue_prev->queue_next = req->queue_next;
    else
        host->queue_head = req->queue_next;
    if (req->queue_next)
        req->queue_next->queue_prev = req->queue_prev;
    else
        host->queue_tail = req->queue_prev;
    req->queue_next = req->queue_prev = NULL;
    req->state = REQ_NEW;
}

static void on_rate_timer(uv_timer_t *timer)
{
    host_t *host = timer->data;
    push_ready(host);
    sl__io_http_pump(host->client);
}

/* Holds the host back until its next start is due; false when the timer can't run. */
static bool wait_for_rate(host_t *host, uint64_t now_ns)
{
    sl_http_client_t *client = host->client;
    if (host->rate_timer == NULL) {
        host->rate_timer = sl__malloc(sizeof(*host->rate_timer));
        if (host->rate_timer == NULL)
            return false;
        uv_timer_init(client->loop, host->rate_timer);
        host->rate_timer->data = host;
        client->handles_open++;
    }
    uint64_t wait_ms = (host->next_start_ns - now_ns + 999999) / 1000000;
    uv_timer_start(host->rate_timer, on_rate_timer, wait_ms ? wait_ms : 1, 0);
    return true;
}

/* Whether the host may start its first queued request now; arranges a wake-up if not. */
static bool can_start(host_t *host)
{
    sl_http_client_t *client = host->client;
    sl_http_t *head = host->queue_head;
    uint32_t per_host = client->limits.per_host;
    uint32_t cap = sl__io_transport_streams_cap(host);
    if (head == NULL || host->inflight >= (per_host < cap ? per_host : cap))
        return false;
    if (client->limits.robots && !head->internal && host->robots_state != ROBOTS_KNOWN) {
        if (host->robots_state == ROBOTS_UNKNOWN && sl__io_robots_fetch(host) == 0)
            return true; /* the robots.txt request is now first in the queue */
        return host->robots_state == ROBOTS_UNKNOWN; /* could not fetch it: go on without */
    }
    if (host->rate > 0 && !head->internal) {
        uint64_t now = sl__clock_now_ns();
        if (now < host->next_start_ns)
            return !wait_for_rate(host, now);
    }
    return true;
}

host_t *sl__io_hosts_next_ready(sl_http_client_t *client)
{
    host_t *host;
    while ((host = pop_ready(client)))
        if (can_start(host))
            return host;
    return NULL;
}

/*
 * curl looks for a reusable connection by walking every connection it holds to the
 * host, which with thousands open makes each new transfer cost O(connections). Over
 * cleartext HTTP/1.1 (no multiplexing) we know when none can be idle: then the
 * transfer asks for a fresh connection and curl skips the walk. (Over TLS, or with h2c,
 * the walk finds HTTP/2 connections to multiplex on, so it always happens.)
 */
void sl__io_hosts_started(host_t *host, sl_http_t *req)
{
    if (strncmp(host->key, "http:", 5) == 0 && !host->client->limits.h2c &&
        host->idle_conns == 0)
        req->fresh_connect = true;
    else if (host->idle_conns > 0)
        host->idle_conns--;
    host->inflight++;
    if (host->rate > 0) {
        uint64_t interval = (uint64_t)(1e9 / host->rate);
        uint64_t now = sl__clock_now_ns();
        host->next_start_ns = (host->next_start_ns > now ? host->next_start_ns : now) + interval;
    }
    if (host->queue_head)
        push_ready(host); /* behind the others: round-robin */
}

void sl__io_hosts_ended(host_t *host, bool conn_kept)
{
    host->inflight--;
    if (conn_kept)
        host->idle_conns++;
    if (host->queue_head)
        push_ready(host);
}

void sl__io_hosts_wake(host_t *host)
{
    if (host->queue_head)
        push_ready(host);
}

static void on_rate_timer_closed(uv_handle_t *handle)
{
    host_t *host = handle->data;
    sl_http_client_t *client = host->client;
    sl__free(handle);
    client->handles_open--;
}

void sl__io_hosts_close_timers(sl_http_client_t *client)
{
    for (size_t i = 0; i < client->bucket_count; i++)
        for (host_t *h = client->buckets[i]; h; h = h->bucket_next)
            if (h->rate_timer) {
                uv_close((uv_handle_t *)h->rate_timer, on_rate_timer_closed);
                h->rate_timer = NULL;
            }
}

void sl__io_hosts_free_all(sl_http_client_t *client)
{
    for (size_t i = 0; i < client->bucket_count; i++) {
        host_t *h = client->buckets[i];
        while (h) {
            host_t *next = h->bucket_next;
            sl__io_robots_free(h->robots);
            sl__free(h->key);
            sl__free(h);
            h = next;
        }
    }
    sl__free(client->buckets);
    client->buckets = NULL;
    client->bucket_count = client->host_count = 0;
}
