/*
 * http/internal.h: what the server's files share. server.c listens, accepts and closes
 * connections and owns their timers; request.c feeds a connection's bytes to llhttp, keeps
 * the request within its bounds and hands it on; exchange.c writes the responses; url.c
 * splits and percent-decodes the request target and the query (pure: unit-tested and
 * fuzzed). Loop thread throughout.
 */
#ifndef SL_HTTP_INTERNAL_H
#define SL_HTTP_INTERNAL_H

#include <llhttp.h>

#include "http/http.h"
#include "util/util.h"

#define SL_HTTP_URL_MAX (8u * 1024)     /* the request target: past it, 414 */
#define SL_HTTP_HEADERS_MAX (8u * 1024) /* the header lines together: past it, 431 */
#define SL_HTTP_HEADER_COUNT_MAX 64     /* header lines: past it, 431 */
#define SL_HTTP_IN_MAX (8u * 1024)      /* bytes read ahead (pipelined) while one is answered */
#define SL_HTTP_QUEUED_MAX (8u * 1024 * 1024)         /* queued past this: the client is dropped */
#define SL_HTTP_SERVER_QUEUED_MAX (64u * 1024 * 1024) /* the same, all connections together */
#define SL_HTTP_RESP_HEADERS_MAX 4096                 /* the handler's added headers */
#define SL_HTTP_LINGER_MS 2000 /* after the last response, the wait for the client's EOF */
#define SL_HTTP_LAST_EVENT_ID_MAX 256

typedef struct sl_http_conn sl_http_conn_t;

/* What a connection is doing; its one timer means what the state says. */
typedef enum {
    SL_HTTP_WAITING,   /* for a request: the header timeout runs */
    SL_HTTP_ANSWERING, /* an exchange is open: the write timeout runs */
    SL_HTTP_LINGERING, /* the response sent and the sending side shut: waiting for EOF */
} sl_http_state_t;

struct sl_http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    sl_http_opts_t opts; /* addr not kept */
    char address[64];    /* as bound: "127.0.0.1:7070", "[::1]:7070" */
    bool public_;
    sl_http_conn_t *conns;  /* every open connection, refused ones too */
    size_t served;          /* connections under the cap */
    size_t refused;         /* connections being answered 503 */
    size_t closing_handles; /* connections whose handles are closing */
    size_t queued;          /* bytes queued on every connection */
    bool listener_open, closing;
    void (*done)(void *ud);
    void *done_ud;
};

struct sl_http_exchange {
    sl_http_conn_t *conn;         /* NULL once the client is gone or the connection closed */
    sl_http_conn_t *closing_conn; /* gone: the connection whose close will tell gone_cb */
    sl_http_request_t req;        /* its strings point into `strings` */
    char *strings;
    bool head, http10, close_after, begun, chunked, streaming, ended, gone;
    char headers[SL_HTTP_RESP_HEADERS_MAX]; /* "Name: value\r\n"... */
    size_t headers_len;
    bool headers_overflow;
    void (*drain_cb)(void *ud);
    void *drain_ud;
    void (*gone_cb)(void *ud);
    void *gone_ud;
};

struct sl_http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    sl_http_server_t *server;
    sl_http_conn_t *prev, *next;
    sl_http_state_t state;
    int open_handles; /* tcp and timer, until their close callbacks */
    bool closing, refused, reading, read_eof, feeding;
    bool shut_down; /* the sending side is shut: everything queued was sent */
    llhttp_t parser;
    /* The bytes read and not parsed yet. */
    char in[SL_HTTP_IN_MAX];
    size_t in_len;
    /* The request being parsed. */
    sl_buf_t url, last_event_id;
    char field[16]; /* the header name being read, while it may be Last-Event-ID */
    size_t field_len;
    bool in_value, lei_field;
    size_t header_count, header_bytes, request_bytes;
    int reject;      /* a status to answer instead of the handler, 0: none */
    bool must_close; /* answer, then close (a body unread, an error) */
    bool keep_alive;
    size_t queued;               /* bytes written and not yet sent */
    sl_http_exchange_t *ex;      /* the exchange open, or NULL */
    sl_http_exchange_t *gone_ex; /* the exchange to tell once the handles have closed */
};

/* server.c */
/** Closes the connection at once; an open exchange is told its client is gone. */
void sl__http_conn_close(sl_http_conn_t *conn);
/** (Re)arms the connection's timer for its state. */
void sl__http_conn_timer(sl_http_conn_t *conn);
/** Starts or stops reading as the connection's state and buffer allow. */
void sl__http_conn_reading(sl_http_conn_t *conn);
/** The response is over: shut down the sending side and linger for the client's EOF. */
void sl__http_conn_finish(sl_http_conn_t *conn);
/** Serves a connected stream socket as if accepted (the fuzz target's socketpair); the
 *  server owns `fd` from then on, also on failure. Returns 0, SL_ENOMEM or SL_ESYS. */
int sl__http_adopt(sl_http_server_t *s, uv_os_sock_t fd);
/** Connections open or closing. */
size_t sl__http_open_conns(const sl_http_server_t *s);

/* request.c */
/** Sets up the parser of a new connection. */
void sl__http_request_init(sl_http_conn_t *conn);
/** Frees the request buffers. */
void sl__http_request_close(sl_http_conn_t *conn);
/** Parses the bytes read while no exchange is open, answering each request in turn. */
void sl__http_feed(sl_http_conn_t *conn);

/* exchange.c */
/** Queues `len` bytes on the connection (copied). Returns 0; -1 when it is closing. */
int sl__http_send(sl_http_conn_t *conn, const void *data, size_t len);
/** A write finished: drain callbacks, timers. */
void sl__http_sent(sl_http_conn_t *conn);
/** Opens an exchange for the request parsed; NULL when out of memory. */
sl_http_exchange_t *sl__http_exchange_new(sl_http_conn_t *conn, const char *method,
                                          const char *path, const char *query);
/** The client went away: writes are dropped from now on, and the gone callback runs from
 *  the connection's close callback (never inside a call of the handler's: a write that
 *  fails does not end the exchange under its caller), unless the exchange ends first. */
void sl__http_exchange_detach(sl_http_exchange_t *ex);
/** The connection's handles have closed: its detached exchange is told. */
void sl__http_exchange_tell_gone(sl_http_conn_t *conn);
/** The standard reason phrase of `status`. */
const char *sl__http_reason(int status);

/* url.c: pure functions of strings. */
/** Splits `target` ("/a%20b?x=1") into its percent-decoded path, NUL-terminated in `path`
 *  (size `size`, at least strlen(target) + 1), and *query (pointing into target after
 *  '?', or at ""); a fragment ("#...") is cut off in place. Returns 0; -1 when the target
 *  is not a path ("*", "http://..."), has a malformed escape, or decodes to a NUL. */
int sl__http_split_target(char *target, char *path, size_t size, const char **query);
/** Looks `key` up in a raw query: sl__http_query's rules (see http.h), on a string. */
int sl__http_query_find(const char *query, const char *key, char *buf, size_t size);
/** Parses ADDR into a socket address: see sl_http_opts_t. Returns 0; -1 with the message
 *  in `err`. *loopback tells whether it is on loopback. */
int sl__http_parse_addr(const char *addr, struct sockaddr_storage *out, bool *loopback, char *err,
                        size_t err_size);

#endif
