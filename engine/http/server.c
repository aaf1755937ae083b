/*
 * The server's sockets: the listener, the connections accepted (over max_conns, a 503 and
 * close), reading into each connection's bounded buffer, its timer (the header timeout
 * while a request is awaited, the write timeout while one is answered, the linger after
 * the last response) and the closing of everything, once, through the close callbacks.
 *
 * For tests only: SLUICE_TEST_HTTP_TIMEOUT_MS shortens the header timeout and
 * SLUICE_TEST_HTTP_MAX_CONNS lowers the connection cap below what a test can open (the
 * defaults are http.h's), so that a slowloris or a flood is seen in a few seconds.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/internal.h"

#define DEFAULT_MAX_CONNS 1024
#define DEFAULT_HEADER_TIMEOUT_MS 10000
#define DEFAULT_WRITE_TIMEOUT_MS 30000

static const char refusal[] = "HTTP/1.1 503 Service Unavailable\r\n"
                              "Content-Type: application/json\r\n"
                              "X-Content-Type-Options: nosniff\r\n"
                              "Retry-After: 1\r\n"
                              "Content-Length: 38\r\n"
                              "Connection: close\r\n\r\n"
                              "{\"error\": \"too many connections open\"}";

/* ---- closing ------------------------------------------------------------------------ */

static void server_maybe_done(sl_http_server_t *s)
{
    if (!s->closing || s->listener_open || s->conns != NULL || s->closing_handles > 0)
        return;
    void (*done)(void *) = s->done;
    void *ud = s->done_ud;
    sl__free(s);
    if (done)
        done(ud);
}

static void on_conn_closed(uv_handle_t *handle)
{
    sl_http_conn_t *conn = handle->data;
    if (--conn->open_handles > 0)
        return;
    sl_http_server_t *s = conn->server;
    s->closing_handles--;
    sl__http_exchange_tell_gone(conn);
    sl__http_request_close(conn);
    sl__free(conn);
    server_maybe_done(s);
}

void sl__http_conn_close(sl_http_conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    sl_http_server_t *s = conn->server;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        s->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    if (conn->refused)
        s->refused--;
    else
        s->served--;
    s->closing_handles++;
    if (conn->ex)
        sl__http_exchange_detach(conn->ex);
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&conn->timer, on_conn_closed);
}

static void on_listener_closed(uv_handle_t *handle)
{
    sl_http_server_t *s = handle->data;
    s->listener_open = false;
    server_maybe_done(s);
}

void sl__http_close(sl_http_server_t *server, void (*done)(void *ud), void *ud)
{
    if (server == NULL || server->closing)
        return;
    server->closing = true;
    server->done = done;
    server->done_ud = ud;
    while (server->conns)
        sl__http_conn_close(server->conns);
    if (server->listener_open)
        uv_close((uv_handle_t *)&server->listener, on_listener_closed);
    else
        server_maybe_done(server);
}

/* ---- timers ------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *timer)
{
    sl_http_conn_t *conn = timer->data;
    if (conn->state == SL_HTTP_ANSWERING && conn->ex && conn->ex->streaming && conn->queued == 0) {
        sl__http_conn_timer(conn); /* a stream the client keeps up with: no timeout */
        return;
    }
    if (conn->state == SL_HTTP_WAITING && conn->request_bytes > 0 && !conn->refused) {
        static const char timeout[] = "HTTP/1.1 408 Request Timeout\r\n"
                                      "Content-Type: application/json\r\n"
                                      "X-Content-Type-Options: nosniff\r\n"
                                      "Content-Length: 46\r\n"
                                      "Connection: close\r\n\r\n"
                                      "{\"error\": \"the request took too long to send\"}";
        sl__http_send(conn, timeout, sizeof timeout - 1);
        sl__http_conn_finish(conn);
        return;
    }
    sl__http_conn_close(conn);
}

void sl__http_conn_timer(sl_http_conn_t *conn)
{
    if (conn->closing)
        return;
    const sl_http_opts_t *o = &conn->server->opts;
    uint64_t ms = conn->state == SL_HTTP_WAITING ? o->header_timeout_ms : o->write_timeout_ms;
    if (conn->state == SL_HTTP_LINGERING && conn->queued == 0 && SL_HTTP_LINGER_MS < ms)
        ms = SL_HTTP_LINGER_MS; /* all sent: a short wait for the client's EOF */
    uv_timer_start(&conn->timer, on_timer, ms, 0);
}

/* ---- reading ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    sl_http_conn_t *conn = handle->data;
    static char discard[4096]; /* a lingering connection's bytes are thrown away */
    if (conn->state == SL_HTTP_LINGERING || conn->refused) {
        *buf = uv_buf_init(discard, sizeof discard);
        return;
    }
    *buf = uv_buf_init(conn->in + conn->in_len, (unsigned)(SL_HTTP_IN_MAX - conn->in_len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    sl_http_conn_t *conn = stream->data;
    if (nread == 0 || conn->closing)
        return;
    if (nread < 0) {
        bool gone = nread != UV_EOF || (conn->ex && conn->ex->streaming) ||
                    (conn->state == SL_HTTP_LINGERING && conn->shut_down);
        if (gone) {
            sl__http_conn_close(conn);
            return;
        }
        /* The client sent all it will: what it asked is answered (the bytes queued are
         * sent), then the connection closes. */
        conn->read_eof = true;
        sl__http_conn_reading(conn);
        if (conn->state == SL_HTTP_WAITING && conn->ex == NULL)
            sl__http_feed(conn); /* it finishes the connection once nothing is left */
        return;
    }
    if (conn->state == SL_HTTP_LINGERING || conn->refused)
        return;
    conn->in_len += (size_t)nread;
    if (conn->state == SL_HTTP_WAITING)
        conn->request_bytes += (size_t)nread;
    sl__http_feed(conn);
    if (!conn->closing)
        sl__http_conn_reading(conn);
}

void sl__http_conn_reading(sl_http_conn_t *conn)
{
    if (conn->closing)
        return;
    bool want = !conn->read_eof && (conn->state == SL_HTTP_LINGERING || conn->refused ||
                                    conn->in_len < SL_HTTP_IN_MAX);
    if (want && !conn->reading) {
        if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) < 0) {
            sl__http_conn_close(conn);
            return;
        }
        conn->reading = true;
    } else if (!want && conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sl_http_conn_t *conn = req->data;
    conn->shut_down = true;
    if ((status < 0 || conn->read_eof) && !conn->closing)
        sl__http_conn_close(conn); /* sent, and the client has closed its side already */
}

void sl__http_conn_finish(sl_http_conn_t *conn)
{
    if (conn->closing || conn->state == SL_HTTP_LINGERING)
        return;
    conn->state = SL_HTTP_LINGERING;
    conn->shutdown.data = conn;
    if (uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, on_shutdown) < 0) {
        sl__http_conn_close(conn);
        return;
    }
    sl__http_conn_timer(conn);
    sl__http_conn_reading(conn);
}

/* ---- accepting ---------------------------------------------------------------------- */

/* A connection made and counted, its socket not set up yet; NULL when out of memory. */
static sl_http_conn_t *conn_new(sl_http_server_t *s)
{
    sl_http_conn_t *conn = sl__calloc(1, sizeof(*conn));
    if (conn == NULL)
        return NULL;
    conn->server = s;
    uv_tcp_init(s->loop, &conn->tcp);
    uv_timer_init(s->loop, &conn->timer);
    conn->tcp.data = conn->timer.data = conn;
    conn->open_handles = 2;
    conn->next = s->conns;
    if (s->conns)
        s->conns->prev = conn;
    s->conns = conn;
    conn->refused = s->served >= s->opts.max_conns;
    if (conn->refused)
        s->refused++;
    else
        s->served++;
    sl__http_request_init(conn);
    return conn;
}

/* The connection's socket is ready: refuse it (over the cap) or wait for its request. */
static void conn_start(sl_http_conn_t *conn)
{
    sl_http_server_t *s = conn->server;
    uv_tcp_nodelay(&conn->tcp, 1);
    if (conn->refused && s->refused > s->opts.max_conns) {
        sl__http_conn_close(conn); /* a flood past twice the cap: not even a 503 */
    } else if (conn->refused) {
        sl__http_send(conn, refusal, sizeof refusal - 1);
        sl__http_conn_finish(conn);
    } else {
        conn->state = SL_HTTP_WAITING;
        sl__http_conn_timer(conn);
        sl__http_conn_reading(conn);
    }
}

static void free_handle(uv_handle_t *handle)
{
    sl__free(handle);
}

static void accept_one(sl_http_server_t *s)
{
    sl_http_conn_t *conn = conn_new(s);
    if (conn == NULL) { /* take it and drop it: the backlog must not fill */
        uv_tcp_t *spare = sl__malloc(sizeof(*spare));
        if (spare == NULL)
            return;
        uv_tcp_init(s->loop, spare);
        uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)spare);
        uv_close((uv_handle_t *)spare, free_handle);
        return;
    }
    if (uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&conn->tcp) < 0) {
        sl__http_conn_close(conn);
        return;
    }
    conn_start(conn);
}

int sl__http_adopt(sl_http_server_t *s, uv_os_sock_t fd)
{
    sl_http_conn_t *conn = conn_new(s);
    if (conn == NULL)
        return SL_ENOMEM;
    if (uv_tcp_open(&conn->tcp, fd) < 0) {
        close(fd);
        sl__http_conn_close(conn);
        return SL_ESYS;
    }
    conn_start(conn);
    return 0;
}

size_t sl__http_open_conns(const sl_http_server_t *s)
{
    return s->served + s->refused + s->closing_handles;
}

static void on_connection(uv_stream_t *listener, int status)
{
    sl_http_server_t *s = listener->data;
    if (status < 0 || s->closing)
        return;
    accept_one(s);
}

/* ---- listening ---------------------------------------------------------------------- */

static uint32_t test_env(const char *name, uint32_t value)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0')
        return value;
    char *end;
    unsigned long v = strtoul(text, &end, 10);
    return *end == '\0' && v > 0 && v < 3600000 ? (uint32_t)v : value;
}

static void format_address(sl_http_server_t *s)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    snprintf(s->address, sizeof s->address, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
             port);
}

/* The address checked: its form, and loopback unless public_ok. */
static int check_addr(const sl_http_opts_t *opts, struct sockaddr_storage *ss, bool *loopback,
                      char *err, size_t err_size)
{
    char why[256];
    if (opts->addr == NULL || sl__http_parse_addr(opts->addr, ss, loopback, why, sizeof why) < 0) {
        snprintf(err, err_size, "%s", opts->addr ? why : "no address");
        return SL_EINVAL;
    }
    if (!*loopback && !opts->public_ok) {
        char host[INET6_ADDRSTRLEN] = "?";
        if (ss->ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)ss, host, sizeof host);
        else
            uv_ip4_name((struct sockaddr_in *)ss, host, sizeof host);
        snprintf(err, err_size,
                 "%s is off loopback: the dashboard would be open to the network; add "
                 "--http-public to serve it there",
                 host);
        return SL_EINVAL;
    }
    return 0;
}

static int bind_listener(sl_http_server_t *s, const struct sockaddr_storage *ss, char *err,
                         size_t err_size)
{
    int rc = uv_tcp_init(s->loop, &s->listener);
    if (rc == 0) {
        s->listener_open = true;
        s->listener.data = s;
        rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)ss,
                         ss->ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc < 0) {
        snprintf(err, err_size, "%s",
                 rc == UV_EADDRINUSE ? "address already in use" : uv_strerror(rc));
        return SL_ESYS;
    }
    return 0;
}

/* A client that resets its connection must not raise a SIGPIPE that kills the engine (the
 * CLI ignores it already; an embedder may not). */
static void ignore_sigpipe(void)
{
    struct sigaction current;
    if (sigaction(SIGPIPE, NULL, &current) == 0 && current.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

int sl__http_listen(uv_loop_t *loop, const sl_http_opts_t *opts, sl_http_server_t **out, char *err,
                    size_t err_size)
{
    ignore_sigpipe();
    struct sockaddr_storage ss;
    bool loopback = true;
    int rc = check_addr(opts, &ss, &loopback, err, err_size);
    if (rc < 0)
        return rc;
    sl_http_server_t *s = sl__calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    s->loop = loop;
    s->opts = *opts;
    s->opts.addr = NULL;
    s->public_ = !loopback;
    if (s->opts.max_conns == 0)
        s->opts.max_conns = test_env("SLUICE_TEST_HTTP_MAX_CONNS", DEFAULT_MAX_CONNS);
    if (s->opts.header_timeout_ms == 0)
        s->opts.header_timeout_ms =
            test_env("SLUICE_TEST_HTTP_TIMEOUT_MS", DEFAULT_HEADER_TIMEOUT_MS);
    if (s->opts.write_timeout_ms == 0)
        s->opts.write_timeout_ms = DEFAULT_WRITE_TIMEOUT_MS;
    rc = bind_listener(s, &ss, err, err_size);
    if (rc < 0) {
        sl__http_close(s, NULL, NULL); /* frees it once the listener has closed */
        return rc;
    }
    format_address(s);
    *out = s;
    return 0;
}

int sl__http_check(const sl_http_opts_t *opts, char *err, size_t err_size)
{
    struct sockaddr_storage ss;
    bool loopback = true;
    int rc = check_addr(opts, &ss, &loopback, err, err_size);
    if (rc < 0)
        return rc;
    uv_loop_t loop;
    if (uv_loop_init(&loop) < 0) {
        snprintf(err, err_size, "cannot make a loop");
        return SL_ESYS;
    }
    uv_tcp_t probe;
    rc = uv_tcp_init(&loop, &probe);
    if (rc == 0) {
        rc = uv_tcp_bind(&probe, (const struct sockaddr *)&ss,
                         ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&probe, 1, NULL);
        uv_close((uv_handle_t *)&probe, NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc < 0) {
        snprintf(err, err_size, "%s",
                 rc == UV_EADDRINUSE ? "address already in use" : uv_strerror(rc));
        return SL_ESYS;
    }
    return 0;
}

const char *sl__http_address(const sl_http_server_t *server)
{
    return server->address;
}

bool sl__http_public(const sl_http_server_t *server)
{
    return server->public_;
}
