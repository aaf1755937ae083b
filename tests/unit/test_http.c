/*
 * Unit tests of http/: the request target split and percent-decoded, query parameters,
 * the --http address, and the server itself on a real loop with a real client (a thread
 * with blocking sockets): chunked streaming under flow control, HEAD, HTTP/1.0,
 * pipelining, the bounds' statuses, a client gone mid-response, and closing the server
 * with an exchange open.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "http/internal.h"
#include "test.h"

/* ---- pure functions ------------------------------------------------------------------ */

static int split(const char *target, char *path, size_t size, const char **query)
{
    static char copy[256];
    snprintf(copy, sizeof copy, "%s", target);
    return sl__http_split_target(copy, path, size, query);
}

static void test_split_target(void)
{
    char path[256];
    const char *query = NULL;
    CHECK_INT(split("/a%20b?x=1&y=%zz", path, sizeof path, &query), 0);
    CHECK_STR(path, "/a b");
    CHECK_STR(query, "x=1&y=%zz");
    CHECK_INT(split("/runs/2026", path, sizeof path, &query), 0);
    CHECK_STR(path, "/runs/2026");
    CHECK_STR(query, "");
    CHECK_INT(split("/a+b%2Fc", path, sizeof path, &query), 0);
    CHECK_STR(path, "/a+b/c"); /* '+' is a plus in a path */
    CHECK_INT(split("/a#frag", path, sizeof path, &query), 0);
    CHECK_STR(path, "/a");
    CHECK_INT(split("/a?q=1#frag", path, sizeof path, &query), 0);
    CHECK_STR(query, "q=1");
    CHECK_INT(split("/%e2%82%AC", path, sizeof path, &query), 0);
    CHECK_STR(path, "/\xe2\x82\xac");
    /* refused: malformed escapes, %00, not a path, too long for the buffer */
    CHECK_INT(split("/%zz", path, sizeof path, &query), -1);
    CHECK_INT(split("/%4", path, sizeof path, &query), -1);
    CHECK_INT(split("/a%", path, sizeof path, &query), -1);
    CHECK_INT(split("/a%00b", path, sizeof path, &query), -1);
    CHECK_INT(split("*", path, sizeof path, &query), -1);
    CHECK_INT(split("http://example.com/", path, sizeof path, &query), -1);
    CHECK_INT(split("", path, sizeof path, &query), -1);
    CHECK_INT(split("/abcdef", path, 4, &query), -1);
}

static void test_query(void)
{
    const char *q = "a=1&b=x+y&c=%41%zz%00%4&d&e=&k%20x=2&a=second;f=%2B";
    char buf[64];
    CHECK_INT(sl__http_query_find(q, "a", buf, sizeof buf), 1);
    CHECK_STR(buf, "1"); /* the first of a repeated key */
    CHECK_INT(sl__http_query_find(q, "b", buf, sizeof buf), 3);
    CHECK_STR(buf, "x y");
    CHECK_INT(sl__http_query_find(q, "c", buf, sizeof buf), 9);
    CHECK_STR(buf, "A%zz%00%4"); /* malformed and %00 kept as written: never a NUL */
    CHECK_INT(sl__http_query_find(q, "d", buf, sizeof buf), 0);
    CHECK_INT(sl__http_query_find(q, "e", buf, sizeof buf), 0);
    CHECK_INT(sl__http_query_find(q, "k x", buf, sizeof buf), 1);
    CHECK_STR(buf, "2");
    CHECK_INT(sl__http_query_find(q, "f", buf, sizeof buf), 1);
    CHECK_STR(buf, "+");
    CHECK_INT(sl__http_query_find(q, "missing", buf, sizeof buf), -1);
    CHECK_INT(sl__http_query_find("", "a", buf, sizeof buf), -1);
    CHECK_INT(sl__http_query_find("a=12345", "a", buf, 5), -2);
    CHECK_INT(sl__http_query_find("a=1234", "a", buf, 5), 4);
    sl_http_request_t req = {.method = "GET", .path = "/", .query = "status=failed"};
    CHECK_INT(sl__http_query(&req, "status", buf, sizeof buf), 6);
    CHECK_STR(buf, "failed");
}

static void test_addr(void)
{
    struct sockaddr_storage ss;
    bool loopback = false;
    char err[256];
    const char *local[] = {"127.0.0.1:7070", ":0",          "localhost:80",
                           "[::1]:80",       "127.9.9.9:1", "[::ffff:127.0.0.1]:5"};
    for (size_t i = 0; i < SL_COUNTOF(local); i++) {
        loopback = false;
        CHECK_INT(sl__http_parse_addr(local[i], &ss, &loopback, err, sizeof err), 0);
        CHECK(loopback);
    }
    CHECK_INT(sl__http_parse_addr(":7070", &ss, &loopback, err, sizeof err), 0);
    CHECK_INT(ss.ss_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 7070);
    const char *open[] = {"0.0.0.0:80", "10.1.2.3:80", "[::]:80", "[2001:db8::1]:443"};
    for (size_t i = 0; i < SL_COUNTOF(open); i++) {
        loopback = true;
        CHECK_INT(sl__http_parse_addr(open[i], &ss, &loopback, err, sizeof err), 0);
        CHECK(!loopback);
    }
    const char *bad[] = {
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80",   "host.example:80",
        "[::1]80",   "1.2.3.4:-1", "[127.0.0.1]:80",  "1.2.3:80", "",
        ":",         "[::1:80"};
    for (size_t i = 0; i < SL_COUNTOF(bad); i++) {
        err[0] = '\0';
        CHECK_INT(sl__http_parse_addr(bad[i], &ss, &loopback, err, sizeof err), -1);
        CHECK(err[0] != '\0');
    }
}

/* ---- the server, with a client thread ------------------------------------------------ */

#define STREAM_BYTES (4u * 1024 * 1024)
#define PIECE_BYTES (64u * 1024)

typedef struct fixture {
    uv_loop_t loop;
    sl_http_server_t *server;
    uv_async_t finished;
    int port;
    size_t max_queued; /* the most a producer saw queued */
    int gone_calls, closed_calls;
    sl_http_exchange_t *held; /* an exchange left open (for the close test) */
    uint32_t write_timeout_ms;
    void (*client)(struct fixture *f);
} fixture_t;

typedef struct producer {
    fixture_t *f;
    sl_http_exchange_t *ex;
    size_t sent, total;
    bool gone;
    uv_timer_t timer;
} producer_t;

static void produce(void *ud);

static void on_producer_closed(uv_handle_t *h)
{
    sl__free(h->data);
}

static void producer_done(producer_t *p)
{
    sl__http_end(p->ex);
    uv_close((uv_handle_t *)&p->timer, on_producer_closed);
}

static void on_gone(void *ud)
{
    producer_t *p = ud;
    p->f->gone_calls++;
    p->gone = true;
    producer_done(p);
}

static void produce(void *ud)
{
    producer_t *p = ud;
    char piece[PIECE_BYTES];
    memset(piece, 'x', sizeof piece);
    while (p->sent < p->total) {
        size_t q = sl__http_queued(p->ex);
        if (q > p->f->max_queued)
            p->f->max_queued = q;
        if (q >= SL_HTTP_HIGH_WATER) {
            sl__http_on_drain(p->ex, produce, p);
            return;
        }
        if (sl__http_write(p->ex, piece, sizeof piece) < 0)
            return; /* gone: on_gone ends it */
        p->sent += sizeof piece;
    }
    sl__http_on_gone(p->ex, NULL, NULL);
    producer_done(p);
}

static void on_later(uv_timer_t *t)
{
    producer_t *p = t->data;
    sl__http_on_gone(p->ex, NULL, NULL);
    sl__http_respond(p->ex, 200, "text/plain", "later", 5);
    uv_close((uv_handle_t *)&p->timer, on_producer_closed);
}

static void handler(void *ud, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    fixture_t *f = ud;
    if (strcmp(req->path, "/hello") == 0) {
        sl__http_header(ex, "Cache-Control", "no-store");
        sl__http_header(ex, "X-Bad", "a\r\nInjected: yes"); /* refused: no header splitting */
        sl__http_respond(ex, 200, "text/plain", "hello", 5);
        return;
    }
    if (strcmp(req->path, "/echo") == 0) {
        sl__http_begin(ex, 200, "text/plain");
        char value[64];
        int n = sl__http_query(req, "v", value, sizeof value);
        sl__http_printf(ex, "%s|%d|%s|%s", req->method, n, n >= 0 ? value : "-",
                        req->last_event_id ? req->last_event_id : "-");
        sl__http_end(ex);
        return;
    }
    producer_t *p = sl__calloc(1, sizeof(*p));
    if (p == NULL) {
        sl__http_error(ex, 500, "out of memory");
        return;
    }
    p->f = f;
    p->ex = ex;
    uv_timer_init(&f->loop, &p->timer);
    p->timer.data = p;
    sl__http_on_gone(ex, on_gone, p);
    if (strcmp(req->path, "/stream") == 0) {
        char pieces[16];
        p->total = sl__http_query(req, "pieces", pieces, sizeof pieces) > 0
                       ? (size_t)atoi(pieces) * PIECE_BYTES
                       : STREAM_BYTES;
        sl__http_begin(ex, 200, "application/octet-stream");
        produce(p);
    } else if (strcmp(req->path, "/later") == 0) {
        uv_timer_start(&p->timer, on_later, 50, 0);
    } else if (strcmp(req->path, "/hold") == 0) {
        sl__http_streaming(ex);
        sl__http_begin(ex, 200, "text/event-stream");
        sl__http_write(ex, "data: 1\n\n", 9);
        f->held = ex; /* ended by on_gone */
    } else {
        uv_close((uv_handle_t *)&p->timer, on_producer_closed);
        sl__http_on_gone(ex, NULL, NULL);
        sl__http_error(ex, 404, "no such page");
    }
}

static void on_closed(void *ud)
{
    fixture_t *f = ud;
    f->closed_calls++;
}

static void on_finished(uv_async_t *a)
{
    fixture_t *f = a->data;
    sl__http_close(f->server, on_closed, f);
    uv_close((uv_handle_t *)a, NULL);
}

static void *client_main(void *arg)
{
    fixture_t *f = arg;
    f->client(f);
    uv_async_send(&f->finished);
    return NULL;
}

/* Runs `client` in a thread against a server on the loop until it is done. */
static void run_with_client(fixture_t *f, void (*client)(fixture_t *f), uint32_t header_timeout_ms)
{
    char err[256];
    CHECK_INT(uv_loop_init(&f->loop), 0);
    sl_http_opts_t o = {.addr = "127.0.0.1:0",
                        .handler = handler,
                        .ud = f,
                        .header_timeout_ms = header_timeout_ms,
                        .max_conns = 8,
                        .write_timeout_ms = f->write_timeout_ms};
    CHECK_INT(sl__http_listen(&f->loop, &o, &f->server, err, sizeof err), 0);
    CHECK(!sl__http_public(f->server));
    const char *addr = sl__http_address(f->server);
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
    f->port = atoi(addr + 10);
    CHECK(f->port > 0);
    uv_async_init(&f->loop, &f->finished, on_finished);
    f->finished.data = f;
    f->client = client;
    pthread_t thread;
    pthread_create(&thread, NULL, client_main, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(thread, NULL);
    CHECK_INT(f->closed_calls, 1);
    CHECK_INT(uv_loop_close(&f->loop), 0);
}

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until EOF (or the 10 s timeout, or `max`), NUL-terminated; returns its length. */
static size_t read_all(int fd, char *buf, size_t max)
{
    size_t len = 0;
    ssize_t n;
    while (len + 1 < max && (n = recv(fd, buf + len, max - 1 - len, 0)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return len;
}

/* Reads until `needle` has been seen `count` times. */
static size_t read_until(int fd, char *buf, size_t max, const char *needle, int count)
{
    size_t len = 0;
    ssize_t n;
    buf[0] = '\0';
    for (;;) {
        int seen = 0;
        for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
            seen++;
        if (seen >= count || len + 1 >= max)
            break;
        if ((n = recv(fd, buf + len, max - 1 - len, 0)) <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return len;
}

static char *exchange(int port, const char *request)
{
    static char buf[64 * 1024];
    int fd = client_connect(port);
    send_all(fd, request, strlen(request));
    read_all(fd, buf, sizeof buf);
    close(fd);
    return buf;
}

static void client_basics(fixture_t *f)
{
    char *r = exchange(f->port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_CONTAINS(r, "Content-Type: text/plain\r\n");
    CHECK_CONTAINS(r, "X-Content-Type-Options: nosniff\r\n");
    CHECK_CONTAINS(r, "Cache-Control: no-store\r\n");
    CHECK_CONTAINS(r, "Content-Length: 5\r\n");
    CHECK_CONTAINS(r, "Connection: close\r\n");
    CHECK(strstr(r, "Injected") == NULL);
    CHECK(strcmp(r + strlen(r) - 9, "\r\n\r\nhello") == 0);
    r = exchange(f->port, "GET /echo?v=a+b%21 HTTP/1.1\r\nLast-Event-ID: 42\r\n"
                          "Connection: close\r\n\r\n");
    CHECK_CONTAINS(r, "Transfer-Encoding: chunked\r\n");
    CHECK_CONTAINS(r, "\r\n\r\nd\r\nGET|4|a b!|42\r\n0\r\n\r\n");
    /* HTTP/1.0: no chunks, the close ends the body */
    r = exchange(f->port, "GET /echo HTTP/1.0\r\n\r\n");
    CHECK(strstr(r, "Transfer-Encoding") == NULL);
    CHECK_CONTAINS(r, "Connection: close\r\n");
    CHECK(strcmp(r + strlen(r) - 14, "\r\n\r\nGET|-1|-|-") == 0);
    r = exchange(f->port, "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    CHECK_CONTAINS(r, "{\"error\": \"no such page\"}");
}

static void client_refusals(fixture_t *f)
{
    const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < SL_COUNTOF(methods); i++) {
        char req[128];
        snprintf(req, sizeof req, "%s /hello HTTP/1.1\r\nConnection: close\r\n\r\n", methods[i]);
        char *r = exchange(f->port, req);
        CHECK(strncmp(r, "HTTP/1.1 405 ", 13) == 0);
        CHECK_CONTAINS(r, "Allow: GET, HEAD\r\n");
        CHECK_CONTAINS(r, "application/json");
    }
    char *r = exchange(f->port, "GET /hello HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde");
    CHECK(strncmp(r, "HTTP/1.1 413 ", 13) == 0);
    CHECK_CONTAINS(r, "Connection: close\r\n");
    r = exchange(f->port, "GET /%zz HTTP/1.1\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    r = exchange(f->port, "GET /a%00 HTTP/1.1\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    r = exchange(f->port, "NOT HTTP AT ALL\r\n\r\n");
    CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
    static char big[20000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    snprintf(big + 9000, sizeof big - 9000, " HTTP/1.1\r\n\r\n");
    r = exchange(f->port, big);
    CHECK(strncmp(r, "HTTP/1.1 414 ", 13) == 0);
    size_t at = (size_t)snprintf(big, sizeof big, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 65; i++)
        at += (size_t)snprintf(big + at, sizeof big - at, "X-H%d: v\r\n", i);
    snprintf(big + at, sizeof big - at, "\r\n");
    r = exchange(f->port, big);
    CHECK(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
    at = (size_t)snprintf(big, sizeof big, "GET /hello HTTP/1.1\r\nX-Long: ");
    memset(big + at, 'v', 9000);
    snprintf(big + at + 9000, sizeof big - at - 9000, "\r\n\r\n");
    r = exchange(f->port, big);
    CHECK(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
}

static void client_pipeline(fixture_t *f)
{
    static char buf[64 * 1024];
    int fd = client_connect(f->port);
    const char *reqs = "GET /hello HTTP/1.1\r\n\r\nGET /later HTTP/1.1\r\n\r\n"
                       "HEAD /stream HTTP/1.1\r\n\r\nGET /echo?v=3 HTTP/1.1\r\n\r\n";
    send_all(fd, reqs, strlen(reqs));
    read_until(fd, buf, sizeof buf, "GET|1|3|-\r\n0\r\n\r\n", 1);
    const char *a = strstr(buf, "hello"), *b = strstr(buf, "later"), *c = strstr(buf, "GET|1|3|-");
    CHECK(a && b && c && a < b && b < c); /* in order, the slow one too */
    const char *head = strstr(buf, "application/octet-stream");
    CHECK(head && head > b && head < c);
    CHECK(strstr(buf, "xxxx") == NULL); /* HEAD: no body */
    /* The same connection goes on: keep-alive. */
    send_all(fd, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n", 42);
    read_all(fd, buf, sizeof buf);
    CHECK_CONTAINS(buf, "hello");
    close(fd);
}

static void client_stream(fixture_t *f)
{
    int fd = client_connect(f->port);
    send_all(fd, "GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n", 43);
    usleep(300 * 1000); /* a slow reader: the producer must wait for the drain */
    size_t max = STREAM_BYTES + 1024 * 1024;
    char *buf = malloc(max);
    size_t len = read_all(fd, buf, max);
    close(fd);
    size_t body = 0;
    for (size_t i = 0; i < len; i++)
        body += buf[i] == 'x';
    CHECK_INT(body, STREAM_BYTES);
    CHECK(len > STREAM_BYTES && strcmp(buf + len - 5, "0\r\n\r\n") == 0);
    free(buf);
    CHECK(f->max_queued <= SL_HTTP_HIGH_WATER + PIECE_BYTES + 64);
    /* A client that leaves mid-response: its producer is told, the server goes on. */
    fd = client_connect(f->port);
    send_all(fd, "GET /stream?pieces=1024 HTTP/1.1\r\n\r\n", 36);
    char small[4096];
    CHECK(recv(fd, small, sizeof small, 0) > 0);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg); /* a reset, at once */
    close(fd);
    usleep(200 * 1000);
    CHECK_INT(f->gone_calls, 1);
    char *r = exchange(f->port, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK_CONTAINS(r, "hello");
}

static void client_timeouts(fixture_t *f)
{
    static char buf[4096];
    /* Slowloris: a byte at a time; closed at the header timeout (300 ms), whole request. */
    int fd = client_connect(f->port);
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    struct timeval start, now;
    gettimeofday(&start, NULL);
    for (size_t i = 0; i < strlen(req); i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0)
            break; /* answered */
    }
    gettimeofday(&now, NULL);
    read_all(fd, buf, sizeof buf);
    double secs = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_usec - start.tv_usec) / 1e6;
    CHECK(strncmp(buf, "HTTP/1.1 408 ", 13) == 0);
    CHECK(secs > 0.25 && secs < 1.6);
    close(fd);
    /* An idle connection is closed at the same timeout, without a word. */
    fd = client_connect(f->port);
    CHECK_INT(read_all(fd, buf, sizeof buf), 0);
    close(fd);
}

static void client_held(fixture_t *f)
{
    static char buf[4096];
    int fd = client_connect(f->port);
    send_all(fd, "GET /hold HTTP/1.1\r\n\r\n", 22);
    read_until(fd, buf, sizeof buf, "data: 1", 1);
    CHECK_CONTAINS(buf, "text/event-stream");
    close(fd); /* EOF on a stream: gone */
    usleep(200 * 1000);
    CHECK_INT(f->gone_calls, 1);
    fd = client_connect(f->port);
    send_all(fd, "GET /hold HTTP/1.1\r\n\r\n", 22);
    read_until(fd, buf, sizeof buf, "data: 1", 1);
    /* left open: closing the server tells its producer (on_finished) */
}

/* A client that asks for a big response and reads nothing is dropped at the write
 * timeout (300 ms) once the socket's buffers are full. */
static void client_no_reader(fixture_t *f)
{
    int fd = client_connect(f->port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_all(fd, "GET /stream?pieces=1024 HTTP/1.1\r\n\r\n", 36);
    struct timeval start, now;
    gettimeofday(&start, NULL);
    for (int i = 0; i < 100 && f->gone_calls == 0; i++)
        usleep(50 * 1000);
    gettimeofday(&now, NULL);
    double secs = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_usec - start.tv_usec) / 1e6;
    CHECK_INT(f->gone_calls, 1);
    CHECK(secs < 3);
    close(fd);
}

static void test_server_write_timeout(void)
{
    fixture_t f = {.write_timeout_ms = 300};
    run_with_client(&f, client_no_reader, 0);
}

/* The n-th allocation of the server fails while it answers: the client gets its answer or
 * a closed connection, never a crash, and the server goes on (no leak under ASan). */
static void client_alloc_failures(fixture_t *f)
{
    const char *reqs[] = {"GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n",
                          "GET /echo?v=1 HTTP/1.1\r\nLast-Event-ID: 9\r\nConnection: close\r\n\r\n",
                          "GET /stream?pieces=2 HTTP/1.0\r\n\r\n",
                          "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
                          "GET /later HTTP/1.1\r\nConnection: close\r\n\r\n"};
    for (uint64_t n = 1; n <= 25; n++)
        for (size_t i = 0; i < SL_COUNTOF(reqs); i++) {
            sl__alloc_fail_at(n);
            char *r = exchange(f->port, reqs[i]);
            sl__alloc_fail_at(0);
            CHECK(r[0] == '\0' || strncmp(r, "HTTP/1.1 ", 9) == 0);
        }
    char *r = exchange(f->port, reqs[0]);
    CHECK_CONTAINS(r, "hello");
}

static void test_server_alloc_failures(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_alloc_failures, 0);
}

static void test_server_basics(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_basics, 0);
}

static void test_server_refusals(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_refusals, 0);
}

static void test_server_pipeline(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_pipeline, 0);
}

static void test_server_stream(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_stream, 0);
}

static void test_server_timeouts(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_timeouts, 300);
}

static void test_server_close_with_exchange_open(void)
{
    fixture_t f = {0};
    run_with_client(&f, client_held, 0);
    CHECK_INT(f.gone_calls, 2); /* the second told by sl__http_close */
}

static void test_listen_errors(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char err[256];
    sl_http_server_t *s = NULL, *t = NULL;
    sl_http_opts_t o = {.addr = "0.0.0.0:0", .handler = handler};
    CHECK_INT(sl__http_listen(&loop, &o, &s, err, sizeof err), SL_EINVAL);
    CHECK_CONTAINS(err, "0.0.0.0 is off loopback");
    CHECK_CONTAINS(err, "--http-public");
    CHECK_INT(sl__http_check(&o, err, sizeof err), SL_EINVAL);
    o.public_ok = true;
    CHECK_INT(sl__http_check(&o, err, sizeof err), 0);
    o.addr = "nonsense";
    CHECK_INT(sl__http_listen(&loop, &o, &s, err, sizeof err), SL_EINVAL);
    o.addr = "127.0.0.1:0";
    CHECK_INT(sl__http_listen(&loop, &o, &s, err, sizeof err), 0);
    sl_http_opts_t taken = o;
    taken.addr = sl__http_address(s);
    CHECK_INT(sl__http_check(&taken, err, sizeof err), SL_ESYS);
    CHECK_STR(err, "address already in use");
    CHECK_INT(sl__http_listen(&loop, &taken, &t, err, sizeof err), SL_ESYS);
    CHECK_STR(err, "address already in use");
    sl__http_close(s, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST_MAIN(60, T(test_split_target), T(test_query), T(test_addr), T(test_server_basics),
          T(test_server_refusals), T(test_server_pipeline), T(test_server_stream),
          T(test_server_timeouts), T(test_server_close_with_exchange_open),
          T(test_server_write_timeout), T(test_server_alloc_failures), T(test_listen_errors))
