/*
 * io/http: the engine's HTTP client. One curl multi handle driven by the libuv
 * loop (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION with uv_poll and uv_timer), so
 * thousands of requests are in flight on one thread with connection reuse,
 * HTTP/2 multiplexing and curl's threaded resolver.
 *
 * Requests wait in the engine, not in curl: a request is queued on its host
 * (scheme://host:port) and started only while the client is under its total
 * concurrency and the host under its per-host limit, its rate allows, and
 * (with robots obedience) its robots.txt is known and allows the path.
 *
 * Both the http.get/http.request kinds (through the host table) and Lua's
 * sluice.http take this one path. Loop thread only.
 */
#ifndef SL_IO_HTTP_H
#define SL_IO_HTTP_H

#include "util/confine.h"
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "sluice/plugin.h"

typedef struct sl_http_client sl_http_client_t;
typedef struct sl_http_engine sl_http_engine_t;

typedef struct sl_http_limits {
    uint32_t concurrency; /* requests in flight, all hosts; 0 = 128 */
    uint32_t per_host;    /* requests in flight per host; 0 = 32 */
    double rate;          /* requests started per second per host; 0 = unlimited */
    bool robots;          /* obey robots.txt (fetched once per host) */
    const sl_confine_t *roots; /* where save_to may write (borrowed; NULL: the working
                                * directory): util/confine.h */
    const char *ca_file;  /* PEM bundle trusted instead of the system store; NULL = system
                           * store (or $SSL_CERT_FILE); copied by sl__io_http_new */
    const char *proxy;    /* proxy URL (credentials allowed); NULL = the proxy variables */
    bool h2c;             /* cleartext http:// speaks HTTP/2 by prior knowledge */
    uint32_t max_streams; /* HTTP/2 streams per connection; 0 = the server's limit */
} sl_http_limits_t;

/**
 * Loads libcurl, once per process (io/curl.h): 0, or SL_ENOTFOUND with the reason in
 * `err`. sl__io_http_new does it too; call this first to learn why a client cannot start.
 */
int sl__io_http_load(char *err, size_t err_size);

/**
 * A client on `loop` with `limits` (copied). Returns 0 or SL_ENOMEM, SL_ENOTFOUND (no
 * libcurl) or SL_EINTERNAL.
 */
int sl__io_http_new(uv_loop_t *loop, const sl_http_limits_t *limits, sl_http_client_t **out);

/**
 * One curl multi for many clients (the runs of a daemon): their requests share its
 * connections, DNS answers and TLS sessions, and `concurrency` caps them in flight all
 * together (0 = 1024, within the descriptors the process may open), while each client's
 * own limits still apply to its requests. `max_streams` (HTTP/2 streams per connection;
 * 0 = the server's) is the engine's: a client's own is not used. SL_ENOMEM, SL_ENOTFOUND.
 */
int sl__io_http_engine_new(uv_loop_t *loop, uint32_t concurrency, uint32_t max_streams,
                           sl_http_engine_t **out);
/** A client with `limits` whose requests go through `engine` (sl__io_http_new otherwise). */
int sl__io_http_new_in(sl_http_engine_t *engine, const sl_http_limits_t *limits,
                       sl_http_client_t **out);
/** Starts closing an engine whose clients are all freed; run the loop until
 *  sl__io_http_engine_closed, then free it. NULL: no-op (and closed). */
void sl__io_http_engine_close(sl_http_engine_t *engine);
bool sl__io_http_engine_closed(const sl_http_engine_t *engine);
void sl__io_http_engine_free(sl_http_engine_t *engine);

/**
 * Cancels every request (their callbacks run with SL_ECANCELED) and starts closing
 * the client's handles and removing temporary files. Run the loop until
 * sl__io_http_closed(), then sl__io_http_free(). NULL is a no-op.
 */
void sl__io_http_close(sl_http_client_t *client);
/** True once a closing client has no handle and no disk work left (and for NULL). */
bool sl__io_http_closed(const sl_http_client_t *client);
/** Frees a closed client. NULL is a no-op. */
void sl__io_http_free(sl_http_client_t *client);

/**
 * Starts a request described by `request`, a map of the http.request
 * parameters (docs/http.md), borrowed until this returns. `attempt` (1-based;
 * 0 = none) is named in failure messages. Returns 0 and *out, then calls `done`
 * exactly once from the loop, never from inside this call (a bad parameter
 * comes through `done` as SL_EINVAL); or returns SL_ENOMEM, or SL_ECANCELED once
 * the client is closing, and never calls it.
 */
int sl__io_http_start(sl_http_client_t *client, uint32_t attempt, const sl_value_t *request,
                      sl_http_done_fn done, void *ud, sl_http_t **out);

/** Told once when a request reaches curl (after any wait in sluice's own queues). */
typedef void (*sl_http_started_fn)(void *ud);

/** What a caller running a task's attempt tells the client beyond the request map. */
typedef struct sl_http_call {
    uint32_t attempt;           /* as for sl__io_http_start */
    int64_t step_timeout_ms;    /* > 0: the caller bounds the attempt with its own timeout,
                                 * so the default timeouts (docs/http.md) do not apply */
    sl_http_started_fn started; /* may be NULL; never called after `done` */
    void *started_ud;
} sl_http_call_t;

/** "METHOD URL" of a started request into `buf` (as its failure messages name it); false
 *  when its options did not give them. */
bool sl__io_http_subject(const sl_http_t *req, char *buf, size_t size);

/** sl__io_http_start with the caller's attempt, timeout and start notification. */
int sl__io_http_start_call(sl_http_client_t *client, const sl_http_call_t *call,
                           const sl_value_t *request, sl_http_done_fn done, void *ud,
                           sl_http_t **out);

/** Cancels a request; its `done` runs with SL_ECANCELED before this returns. */
void sl__io_http_cancel(sl_http_t *req);

/** Counters for the run's summary and tests. */
typedef struct sl_http_stats {
    uint64_t requests;   /* finished, any outcome */
    uint64_t failed;
    uint64_t bytes;      /* body bytes received */
    uint32_t inflight;   /* now */
    uint32_t inflight_max;
    uint64_t connections; /* connections opened (CURLINFO_NUM_CONNECTS, summed) */
    uint64_t by_version[4]; /* finished transfers that got a response, by protocol:
                             * HTTP/1.0, HTTP/1.1, HTTP/2, HTTP/3 */
} sl_http_stats_t;

void sl__io_http_stats(const sl_http_client_t *client, sl_http_stats_t *out);

#endif
