/*
 * A connection's requests: its bytes fed to llhttp, the target and the few headers kept
 * within their bounds (8 KiB of target, 8 KiB and 64 lines of headers: past them 414 and
 * 431), and each request parsed handed on, one at a time: llhttp is paused at the end of a
 * message and resumed once its response has ended, so pipelined requests are answered in
 * order. Only GET and HEAD without a body reach the handler; another method is answered
 * 405, a body 413, a request llhttp refuses 400, and the connection closes after any of
 * those that left bytes unread.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/internal.h"

static sl_http_conn_t *conn_of(llhttp_t *parser)
{
    return parser->data;
}

static int refuse(llhttp_t *parser, int status, const char *reason)
{
    sl_http_conn_t *conn = conn_of(parser);
    conn->reject = status;
    llhttp_set_error_reason(parser, reason);
    return HPE_USER;
}

static int on_message_begin(llhttp_t *parser)
{
    sl_http_conn_t *conn = conn_of(parser);
    sl__buf_reset(&conn->url);
    sl__buf_reset(&conn->last_event_id);
    conn->field_len = 0;
    conn->in_value = conn->lei_field = false;
    conn->header_count = conn->header_bytes = 0;
    conn->reject = 0;
    conn->must_close = false;
    return 0;
}

static int on_url(llhttp_t *parser, const char *at, size_t len)
{
    sl_http_conn_t *conn = conn_of(parser);
    if (sl__buf_add(&conn->url, at, len) < 0)
        return refuse(parser, 414, "the request target is too long");
    return 0;
}

static int on_header_field(llhttp_t *parser, const char *at, size_t len)
{
    sl_http_conn_t *conn = conn_of(parser);
    if (conn->in_value || conn->header_count == 0) {
        conn->in_value = false;
        conn->field_len = 0;
        if (++conn->header_count > SL_HTTP_HEADER_COUNT_MAX)
            return refuse(parser, 431, "too many header lines");
    }
    conn->header_bytes += len;
    if (conn->header_bytes > SL_HTTP_HEADERS_MAX)
        return refuse(parser, 431, "the headers are too long");
    size_t room = sizeof conn->field - 1 - conn->field_len;
    size_t copy = len < room ? len : room;
    memcpy(conn->field + conn->field_len, at, copy);
    conn->field_len += copy;
    conn->field[conn->field_len] = '\0';
    return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t len)
{
    sl_http_conn_t *conn = conn_of(parser);
    if (!conn->in_value) {
        conn->in_value = true;
        conn->lei_field = strcasecmp(conn->field, "Last-Event-ID") == 0;
        if (conn->lei_field)
            sl__buf_reset(&conn->last_event_id);
    }
    conn->header_bytes += len;
    if (conn->header_bytes > SL_HTTP_HEADERS_MAX)
        return refuse(parser, 431, "the headers are too long");
    if (conn->lei_field && sl__buf_add(&conn->last_event_id, at, len) < 0)
        conn->lei_field = false; /* too long to be one of ours: ignored */
    return 0;
}

static int on_headers_complete(llhttp_t *parser)
{
    sl_http_conn_t *conn = conn_of(parser);
    bool body = (parser->flags & F_CHUNKED) || parser->content_length > 0 ||
                (parser->flags & F_TRANSFER_ENCODING);
    if (parser->method != HTTP_GET && parser->method != HTTP_HEAD)
        conn->reject = 405;
    else if (body)
        conn->reject = 413;
    if (body || parser->upgrade) {
        conn->must_close = true; /* its body is not read: the connection cannot go on */
        return HPE_PAUSED;
    }
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    sl_http_conn_t *conn = conn_of(parser);
    conn->keep_alive = llhttp_should_keep_alive(parser);
    return HPE_PAUSED;
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s;
    static bool ready;
    if (!ready) {
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_message_complete = on_message_complete;
        ready = true;
    }
    return &s;
}

void sl__http_request_init(sl_http_conn_t *conn)
{
    llhttp_init(&conn->parser, HTTP_REQUEST, settings());
    conn->parser.data = conn;
    sl__buf_init(&conn->url, SL_HTTP_URL_MAX);
    sl__buf_init(&conn->last_event_id, SL_HTTP_LAST_EVENT_ID_MAX);
}

void sl__http_request_close(sl_http_conn_t *conn)
{
    sl__buf_close(&conn->url);
    sl__buf_close(&conn->last_event_id);
}

/* ---- answering what was parsed ------------------------------------------------------- */

/* A status answered here, not by the handler: JSON, and the connection closed after it
 * when bytes were left unread. */
static void answer_refusal(sl_http_conn_t *conn, int status, const char *message)
{
    bool head = conn->parser.method == HTTP_HEAD;
    sl_http_exchange_t *ex = sl__http_exchange_new(conn, head ? "HEAD" : "GET", "/", "");
    if (ex == NULL) {
        sl__http_conn_close(conn);
        return;
    }
    ex->close_after = conn->must_close || !conn->keep_alive;
    if (status == 405)
        sl__http_header(ex, "Allow", "GET, HEAD");
    sl__http_error(ex, status, message);
}

static void dispatch(sl_http_conn_t *conn)
{
    llhttp_t *p = &conn->parser;
    conn->request_bytes = 0;
    if (conn->reject == 405 || conn->reject == 413) {
        answer_refusal(conn, conn->reject,
                       conn->reject == 405 ? "only GET and HEAD are answered here"
                                           : "a request here has no body");
        return;
    }
    char *target = conn->url.data ? conn->url.data : "";
    char path[SL_HTTP_URL_MAX + 1];
    const char *query = "";
    if (sl__http_split_target(target, path, sizeof path, &query) < 0) {
        conn->must_close = true;
        answer_refusal(conn, 400,
                       "the request target is not a path, or it holds a "
                       "malformed escape or %00");
        return;
    }
    sl_http_exchange_t *ex =
        sl__http_exchange_new(conn, p->method == HTTP_HEAD ? "HEAD" : "GET", path, query);
    if (ex == NULL) {
        sl__http_conn_close(conn);
        return;
    }
    ex->close_after = conn->must_close || !conn->keep_alive;
    conn->server->opts.handler(conn->server->opts.ud, ex, &ex->req);
}

/* A request llhttp or our bounds refused: answer it and close. */
static void parse_failed(sl_http_conn_t *conn)
{
    int status = conn->reject ? conn->reject : 400;
    const char *reason = llhttp_get_error_reason(&conn->parser);
    char message[160];
    snprintf(message, sizeof message, "%s", status == 400 ? "malformed request" : reason);
    if (status == 400 && reason)
        snprintf(message, sizeof message, "malformed request: %s", reason);
    conn->must_close = true;
    conn->keep_alive = false;
    answer_refusal(conn, status, message);
}

static void consume(sl_http_conn_t *conn, size_t used)
{
    memmove(conn->in, conn->in + used, conn->in_len - used);
    conn->in_len -= used;
}

void sl__http_feed(sl_http_conn_t *conn)
{
    if (conn->feeding)
        return; /* a response ended synchronously inside dispatch: the loop below goes on */
    conn->feeding = true;
    while (!conn->closing && conn->ex == NULL && conn->state == SL_HTTP_WAITING &&
           conn->in_len > 0) {
        llhttp_errno_t rc = llhttp_execute(&conn->parser, conn->in, conn->in_len);
        if (rc == HPE_OK) {
            consume(conn, conn->in_len);
        } else if (rc == HPE_PAUSED || rc == HPE_PAUSED_UPGRADE) {
            consume(conn, (size_t)(llhttp_get_error_pos(&conn->parser) - conn->in));
            if (rc == HPE_PAUSED_UPGRADE)
                conn->must_close = true;
            llhttp_resume(&conn->parser);
            dispatch(conn);
        } else {
            conn->in_len = 0;
            parse_failed(conn);
        }
    }
    conn->feeding = false;
    if (!conn->closing && conn->ex == NULL && conn->state == SL_HTTP_WAITING && conn->read_eof)
        sl__http_conn_finish(conn); /* every request the client sent is answered */
}
