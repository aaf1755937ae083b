/*
 * http: a small HTTP/1.1 server on a libuv loop, for the dashboard (docs/dashboard.md).
 *
 * Requests are parsed by llhttp (Debian's node-llhttp sources, built into the binary; see
 * docs/dependencies.md). Everything is bounded: the request line and headers (8 KiB
 * each, 64 headers), the connections open at once (over the cap a new one is answered
 * 503 and closed), the time a client may take to send its request (10 s) and the time a
 * response may wait on a client that reads nothing (30 s). Only GET and HEAD reach the
 * handler; anything else is answered 405 with an Allow header. A request with a body is
 * answered 413. Keep-alive is honoured, one request at a time per connection.
 *
 * A response is streamed: the handler begins it, writes pieces and ends it, at once or
 * later (from a threadpool callback, a timer). The server counts the bytes queued on the
 * socket; a producer of a big response writes while sl__http_queued() is under
 * SL_HTTP_HIGH_WATER and otherwise waits for its drain callback. Bodies are sent chunked;
 * HEAD sends the same head and no body. A client that goes away is told to the exchange's
 * gone callback; the exchange stays valid (writes are dropped) until sl__http_end.
 */
#ifndef SL_HTTP_H
#define SL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define SL_HTTP_HIGH_WATER (256u * 1024) /* bytes queued on a socket before a producer waits */

typedef struct sl_http_server sl_http_server_t;
typedef struct sl_http_exchange sl_http_exchange_t; /* one request and its response */

typedef struct sl_http_request {
    const char *method;        /* "GET" or "HEAD" */
    const char *path;          /* percent-decoded, without the query: "/runs/2026…" */
    const char *query;         /* raw, after '?'; "" when none */
    bool head;                 /* HEAD: the body written is not sent */
    const char *last_event_id; /* the Last-Event-ID header (SSE reconnects), or NULL */
} sl_http_request_t;

/** Answers one request: must lead to exactly one sl__http_end, now or later. */
typedef void (*sl_http_handler_fn)(void *ud, sl_http_exchange_t *ex,
                                   const sl_http_request_t *req);

typedef struct sl_http_opts {
    const char *addr;        /* "127.0.0.1:7070", "[::1]:7070", "localhost:7070", ":7070"
                                (loopback), port 0 = any free port */
    bool public_ok;          /* an address off loopback is allowed (--http-public) */
    uint32_t max_conns;      /* 0: 1024 */
    uint32_t header_timeout_ms; /* 0: 10 s to send a whole request */
    uint32_t write_timeout_ms;  /* 0: 30 s without the client reading anything */
    sl_http_handler_fn handler;
    void *ud;
} sl_http_opts_t;

/**
 * Listens on `addr`. Returns 0 and *out; SL_EINVAL with the message in `err` (a malformed
 * address; an address off loopback without public_ok), SL_ESYS (cannot bind: in use,
 * no permission), SL_ENOMEM.
 */
int sl__http_listen(uv_loop_t *loop, const sl_http_opts_t *opts, sl_http_server_t **out,
                    char *err, size_t err_size);
/**
 * Checks `opts->addr` as sl__http_listen does (its form; loopback unless public_ok) and that
 * it can be bound now, by binding a socket and closing it at once: a command line refuses a
 * bad address this way before it starts its loop. The same returns as sl__http_listen.
 */
int sl__http_check(const sl_http_opts_t *opts, char *err, size_t err_size);
/** The address bound, as "127.0.0.1:7070" (the real port when 0 was asked). */
const char *sl__http_address(const sl_http_server_t *server);
/** True when the address bound is off loopback. */
bool sl__http_public(const sl_http_server_t *server);
/** Stops listening and closes every connection (their gone callbacks run); `done` is
 *  called on the loop once every handle is closed and the server freed. */
void sl__http_close(sl_http_server_t *server, void (*done)(void *ud), void *ud);

/* ---- answering ---------------------------------------------------------------------- */

/** The value of query parameter `key`, percent-decoded into `buf` (NUL-terminated).
 *  Returns its length; -1 when absent; -2 when longer than size - 1. */
int sl__http_query(const sl_http_request_t *req, const char *key, char *buf, size_t size);
/** Adds a response header (before sl__http_begin); name and value are copied. */
void sl__http_header(sl_http_exchange_t *ex, const char *name, const char *value);
/** Sends the status line and headers; the body follows in pieces. */
void sl__http_begin(sl_http_exchange_t *ex, int status, const char *content_type);
/** Queues a piece of the body. Returns 0; -1 when the client is gone (stop producing). */
int sl__http_write(sl_http_exchange_t *ex, const void *data, size_t len);
/** printf into the body (bounded pieces of 64 KiB). */
int sl__http_printf(sl_http_exchange_t *ex, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** Bytes queued on the socket and not yet sent. */
size_t sl__http_queued(const sl_http_exchange_t *ex);
/** Calls `cb` once, when the queued bytes fall under SL_HTTP_HIGH_WATER / 4. */
void sl__http_on_drain(sl_http_exchange_t *ex, void (*cb)(void *ud), void *ud);
/** Calls `cb` once if the client goes away before sl__http_end. */
void sl__http_on_gone(sl_http_exchange_t *ex, void (*cb)(void *ud), void *ud);
/** A long-lived response (Server-Sent Events): no write timeout while the client reads. */
void sl__http_streaming(sl_http_exchange_t *ex);
/** Ends the response; `ex` is not used again. */
void sl__http_end(sl_http_exchange_t *ex);
/** begin + write + end. */
void sl__http_respond(sl_http_exchange_t *ex, int status, const char *content_type,
                      const void *body, size_t len);
/** A JSON error `{"error": message}` with `status`. */
void sl__http_error(sl_http_exchange_t *ex, int status, const char *message);

#endif
