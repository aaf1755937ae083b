/*
 * The responses: an exchange opened for each request handed to the handler, its head
 * (with X-Content-Type-Options: nosniff always), its body in chunks (HTTP/1.1; HTTP/1.0
 * gets the bytes as they are and a close) or with a Content-Length (sl__http_respond), the
 * bytes queued on the socket counted for the producer's flow control, and the client's
 * going away told to the producer. After sl__http_end the next pipelined request is
 * parsed, or the connection closes when the request or the response said so.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/internal.h"

#define PRINTF_PIECE_MAX (64u * 1024)

typedef struct write_req {
    uv_write_t req;
    sl_http_conn_t *conn;
    size_t len;
    char data[];
} write_req_t;

/* ---- the socket --------------------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
    write_req_t *w = req->data;
    sl_http_conn_t *conn = w->conn;
    conn->queued -= w->len;
    conn->server->queued -= w->len;
    sl__free(w);
    if (status < 0) {
        sl__http_conn_close(conn); /* a no-op when it is closing already */
        return;
    }
    sl__http_sent(conn);
}

/* Queues the pieces as one write. Returns 0; -1 when the connection is closing or was
 * closed here (out of memory, a write refused, a client that reads too little). */
static int send_pieces(sl_http_conn_t *conn, const uv_buf_t *pieces, size_t count)
{
    if (conn->closing)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < count; i++)
        total += pieces[i].len;
    if (total == 0)
        return 0;
    if (conn->queued + total > SL_HTTP_QUEUED_MAX ||
        conn->server->queued + total > SL_HTTP_SERVER_QUEUED_MAX) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "http: a client reads too slowly: dropped");
        sl__http_conn_close(conn);
        return -1;
    }
    write_req_t *w = sl__malloc(sizeof(*w) + total);
    if (w == NULL) {
        sl__http_conn_close(conn);
        return -1;
    }
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        memcpy(w->data + at, pieces[i].base, pieces[i].len);
        at += pieces[i].len;
    }
    w->conn = conn;
    w->len = total;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)total);
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &buf, 1, on_written) < 0) {
        sl__free(w);
        sl__http_conn_close(conn);
        return -1;
    }
    conn->queued += total;
    conn->server->queued += total;
    return 0;
}

int sl__http_send(sl_http_conn_t *conn, const void *data, size_t len)
{
    uv_buf_t piece = uv_buf_init((char *)data, (unsigned)len);
    return send_pieces(conn, &piece, 1);
}

void sl__http_sent(sl_http_conn_t *conn)
{
    if (conn->closing)
        return;
    if (conn->state != SL_HTTP_WAITING)
        sl__http_conn_timer(conn); /* the client reads: the write timeout starts again */
    sl_http_exchange_t *ex = conn->ex;
    if (ex && ex->drain_cb && conn->queued < SL_HTTP_HIGH_WATER / 4) {
        void (*cb)(void *) = ex->drain_cb;
        ex->drain_cb = NULL;
        cb(ex->drain_ud);
    }
}

/* ---- the exchange ------------------------------------------------------------------- */

sl_http_exchange_t *sl__http_exchange_new(sl_http_conn_t *conn, const char *method,
                                          const char *path, const char *query)
{
    const char *lei = conn->last_event_id.len ? conn->last_event_id.data : NULL;
    size_t lens[4] = {strlen(method) + 1, strlen(path) + 1, strlen(query) + 1,
                      lei ? strlen(lei) + 1 : 0};
    sl_http_exchange_t *ex = sl__calloc(1, sizeof(*ex));
    char *strings = ex ? sl__malloc(lens[0] + lens[1] + lens[2] + lens[3]) : NULL;
    if (strings == NULL) {
        sl__free(ex);
        return NULL;
    }
    ex->strings = strings;
    ex->req.method = memcpy(strings, method, lens[0]);
    ex->req.path = memcpy(strings + lens[0], path, lens[1]);
    ex->req.query = memcpy(strings + lens[0] + lens[1], query, lens[2]);
    if (lei)
        ex->req.last_event_id = memcpy(strings + lens[0] + lens[1] + lens[2], lei, lens[3]);
    ex->req.head = ex->head = strcmp(method, "HEAD") == 0;
    ex->http10 = conn->parser.http_major == 1 && conn->parser.http_minor == 0;
    ex->conn = conn;
    conn->ex = ex;
    conn->state = SL_HTTP_ANSWERING;
    sl__http_conn_timer(conn);
    return ex;
}

void sl__http_exchange_detach(sl_http_exchange_t *ex)
{
    sl_http_conn_t *conn = ex->conn;
    conn->ex = NULL;
    conn->gone_ex = ex;
    ex->closing_conn = conn;
    ex->conn = NULL;
    ex->gone = true;
    ex->drain_cb = NULL;
}

void sl__http_exchange_tell_gone(sl_http_conn_t *conn)
{
    sl_http_exchange_t *ex = conn->gone_ex;
    if (ex == NULL)
        return;
    conn->gone_ex = NULL;
    ex->closing_conn = NULL;
    void (*cb)(void *) = ex->gone_cb;
    ex->gone_cb = NULL;
    if (cb)
        cb(ex->gone_ud); /* it may end the exchange: ex is not used after */
}

static bool header_text_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return false;
    return true;
}

void sl__http_header(sl_http_exchange_t *ex, const char *name, const char *value)
{
    if (ex->begun || !header_text_ok(name) || !header_text_ok(value) || name[0] == '\0')
        return;
    size_t room = sizeof ex->headers - ex->headers_len;
    int n = snprintf(ex->headers + ex->headers_len, room, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= room) {
        ex->headers[ex->headers_len] = '\0';
        ex->headers_overflow = true;
        SL_LOG(SL_LOG_WARN, NULL, NULL, "http: response header %s dropped (too many headers)",
               name);
        return;
    }
    ex->headers_len += (size_t)n;
}

/* The head: chunked when length < 0 (and HTTP/1.1), else with a Content-Length. */
static void send_head(sl_http_exchange_t *ex, int status, const char *content_type,
                      long long length)
{
    ex->begun = true;
    sl_http_conn_t *conn = ex->conn;
    if (conn == NULL)
        return;
    if (length < 0 && ex->http10)
        ex->close_after = true; /* no chunks in HTTP/1.0: the close ends the body */
    ex->chunked = length < 0 && !ex->http10;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nX-Content-Type-Options: nosniff\r\n",
                     status, sl__http_reason(status),
                     content_type && header_text_ok(content_type) ? content_type
                                                                  : "application/octet-stream");
    if (n < 0 || (size_t)n >= sizeof head)
        n = snprintf(head, sizeof head, "HTTP/1.1 500 Internal Server Error\r\n");
    char tail[128];
    int m =
        snprintf(tail, sizeof tail, "%s%s\r\n", ex->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                 ex->close_after ? "Connection: close\r\n"
                 : ex->http10    ? "Connection: keep-alive\r\n"
                                 : "");
    char length_line[64] = "";
    if (length >= 0)
        snprintf(length_line, sizeof length_line, "Content-Length: %lld\r\n", length);
    uv_buf_t pieces[] = {
        uv_buf_init(head, (unsigned)n), uv_buf_init(ex->headers, (unsigned)ex->headers_len),
        uv_buf_init(length_line, (unsigned)strlen(length_line)), uv_buf_init(tail, (unsigned)m)};
    send_pieces(conn, pieces, SL_COUNTOF(pieces));
}

void sl__http_begin(sl_http_exchange_t *ex, int status, const char *content_type)
{
    if (!ex->begun)
        send_head(ex, status, content_type, -1);
}

int sl__http_write(sl_http_exchange_t *ex, const void *data, size_t len)
{
    if (ex->gone || ex->conn == NULL || ex->conn->closing)
        return -1;
    if (!ex->begun)
        sl__http_begin(ex, 200, "application/octet-stream");
    if (ex->head || len == 0)
        return 0;
    if (!ex->chunked)
        return sl__http_send(ex->conn, data, len) < 0 ? -1 : 0;
    char size_line[32];
    int n = snprintf(size_line, sizeof size_line, "%zx\r\n", len);
    uv_buf_t pieces[] = {uv_buf_init(size_line, (unsigned)n),
                         uv_buf_init((char *)data, (unsigned)len), uv_buf_init("\r\n", 2)};
    return send_pieces(ex->conn, pieces, SL_COUNTOF(pieces)) < 0 ? -1 : 0;
}

int sl__http_printf(sl_http_exchange_t *ex, const char *fmt, ...)
{
    char small[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return sl__http_write(ex, small, (size_t)n);
    size_t size = (size_t)n < PRINTF_PIECE_MAX ? (size_t)n + 1 : PRINTF_PIECE_MAX + 1;
    char *big = sl__malloc(size);
    if (big == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(big, size, fmt, ap); /* a piece past 64 KiB is cut there */
    va_end(ap);
    int rc = sl__http_write(ex, big, size - 1);
    sl__free(big);
    return rc;
}

size_t sl__http_queued(const sl_http_exchange_t *ex)
{
    return ex->conn ? ex->conn->queued : 0;
}

void sl__http_on_drain(sl_http_exchange_t *ex, void (*cb)(void *ud), void *ud)
{
    if (ex->gone || ex->conn == NULL)
        return; /* the gone callback tells instead */
    ex->drain_cb = cb;
    ex->drain_ud = ud;
}

void sl__http_on_gone(sl_http_exchange_t *ex, void (*cb)(void *ud), void *ud)
{
    ex->gone_cb = cb;
    ex->gone_ud = ud;
}

void sl__http_streaming(sl_http_exchange_t *ex)
{
    ex->streaming = true;
}

void sl__http_end(sl_http_exchange_t *ex)
{
    sl_http_conn_t *conn = ex->conn; /* NULL once the connection is closing */
    if (ex->closing_conn) /* ended before its connection's close told it: nothing to tell */
        ex->closing_conn->gone_ex = NULL;
    if (conn && !ex->begun) {
        sl__http_error(ex, 500, "the handler ended without a response"); /* ends ex */
        return;
    }
    if (conn) {
        conn->ex = NULL; /* first: a failing last write closes a connection without it */
        if (ex->chunked && !ex->head)
            sl__http_send(conn, "0\r\n\r\n", 5);
        if (conn->closing) {
            /* the last write failed: closed already */
        } else if (ex->close_after) {
            sl__http_conn_finish(conn);
        } else {
            conn->state = SL_HTTP_WAITING;
            sl__http_conn_timer(conn);
            sl__http_feed(conn);
            sl__http_conn_reading(conn);
        }
    }
    sl__free(ex->strings);
    sl__free(ex);
}

void sl__http_respond(sl_http_exchange_t *ex, int status, const char *content_type,
                      const void *body, size_t len)
{
    if (!ex->begun)
        send_head(ex, status, content_type, (long long)len);
    if (!ex->head && ex->conn && len > 0) {
        if (ex->chunked)
            sl__http_write(ex, body, len);
        else
            sl__http_send(ex->conn, body, len);
    }
    sl__http_end(ex);
}

void sl__http_error(sl_http_exchange_t *ex, int status, const char *message)
{
    sl_buf_t b;
    sl__buf_init(&b, 16 * 1024);
    sl__buf_add(&b, "{\"error\": ", 10);
    sl__utf8_escape_json(&b, message ? message : "");
    sl__buf_add(&b, "}\n", 2);
    if (b.data == NULL)
        sl__http_respond(ex, status, "application/json", "{}\n", 3);
    else
        sl__http_respond(ex, status, "application/json", b.data, b.len);
    sl__buf_close(&b);
}

const char *sl__http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}
