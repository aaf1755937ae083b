/*
 * The HTTP server's request path (engine/http/): any bytes a client sends, over a
 * socketpair served as an accepted connection, must get answers in order and a closed
 * connection once the client's side is shut, never a crash, a hang or a leak. The handler
 * uses what the dashboard's do: queries, headers, chunked pieces, printf, errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void handler(void *ud, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    char value[64];
    int n = sl__http_query(req, "limit", value, sizeof value);
    n += sl__http_query(req, "status", value, sizeof value);
    sl__http_header(ex, "Cache-Control", "no-store");
    if (strncmp(req->path, "/s", 2) == 0) {
        sl__http_begin(ex, 200, "text/plain");
        sl__http_printf(ex, "%s %s %d %s\n", req->method, req->path, n,
                        req->last_event_id ? req->last_event_id : "-");
        sl__http_write(ex, req->query, strlen(req->query));
        sl__http_end(ex);
    } else if (strncmp(req->path, "/e", 2) == 0) {
        sl__http_error(ex, 404, req->path);
    } else {
        sl__http_respond(ex, 200, "text/plain", req->path, strlen(req->path));
    }
}

static uv_loop_t loop;
static sl_http_server_t *server;

static int setup(void)
{
    char err[256];
    if (server)
        return 0;
    uv_loop_init(&loop);
    sl_http_opts_t o = {.addr = "127.0.0.1:0", .handler = handler};
    return sl__http_listen(&loop, &o, &server, err, sizeof err);
}

/* Reads and drops what the server answered, so that its writes never wait on us. */
static void drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    if (setup() < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return 0;
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    if (sl__http_adopt(server, fds[0]) < 0) {
        close(fds[1]);
        return 0;
    }
    size_t sent = 0;
    bool shut = false;
    for (int i = 0; i < 100000 && (sl__http_open_conns(server) > 0 || !shut); i++) {
        if (sent < size) {
            ssize_t n = write(fds[1], data + sent, size - sent);
            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                sent = size;
        }
        if (sent == size && !shut) {
            shutdown(fds[1], SHUT_WR); /* the client sent all it will */
            shut = true;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(fds[1]);
    }
    if (sl__http_open_conns(server) > 0)
        abort(); /* the connection did not close after the client's EOF: a hang */
    close(fds[1]);
    return 0;
}
