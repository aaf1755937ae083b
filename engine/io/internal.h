/* io internals shared by http.c, request.c, hosts.c, fds.c, robots.c and save.c. */
#ifndef SL_IO_INTERNAL_H
#define SL_IO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "io/curl.h"
#include "io/http.h"
#include "value/value.h"

#define HTTP_MAX_BYTES_DEFAULT (64ll << 20)
#define HTTP_CONNECT_TIMEOUT_MS_DEFAULT 30000
#define HTTP_MAX_REDIRECTS 10
#define HTTP_HEADER_BYTES_MAX (256u << 10) /* all response headers of one request */
#define HTTP_SAVE_BUFFER_MAX (1u << 20)    /* body bytes waiting for the disk, per request */
#define HTTP_EXPECT_MAX 16
#define HTTP_BODY_RESERVE_MAX (64u << 10) /* body bytes reserved before they arrive */
#define HTTP_TIMEOUT_MS_DEFAULT (5 * 60 * 1000) /* an attempt with no timeout of its own */
#define HTTP_IDLE_TIMEOUT_MS_DEFAULT (60 * 1000) /* ... and no byte received for this long */

typedef struct host host_t;
typedef struct sock_ctx sock_ctx_t;
typedef struct robots robots_t;

typedef enum {
    REQ_NEW = 0,   /* parsed, not yet queued */
    REQ_QUEUED,    /* waiting on its host */
    REQ_OPENING,   /* save_to: creating the temporary file */
    REQ_ACTIVE,    /* in curl */
    REQ_FINISHING, /* curl is done; the file is being flushed and renamed */
    REQ_DONE       /* reported; waiting for file work to end before being freed */
} req_state_t;

/* save_to: the body streams to a temporary file beside the target, renamed on success. */
typedef struct save {
    char *path;
    sl_confine_dir_t *dir; /* the target's folder, resolved beneath the roots; NULL until then */
    char *tmp_name;     /* the temporary file's name in `dir` */
    char *tmp_path;     /* NULL until created */
    uv_file fd;         /* -1 when closed */
    char *filling;      /* curl appends here */
    size_t filling_len;
    char *writing;      /* a uv_fs_write is writing this */
    size_t writing_len;
    uv_fs_t fs;
    uv_work_t work;
    bool busy;          /* fs or work request outstanding */
    bool paused;        /* curl paused until the disk catches up */
    bool judged;        /* the finished transfer's outcome is known */
    bool closing;       /* counted in the client's saves_closing */
    sl_value_t *response; /* built before the rename, reported after it */
    int error;          /* errno-style, from the disk */
} save_t;

struct sl_http {
    sl_http_client_t *client;
    uint32_t attempt;          /* named in messages; 0 = not shown */
    host_t *host;
    sl_http_done_fn done;      /* NULL once reported */
    void *ud;
    sl_http_started_fn started; /* when it reaches curl (sl_http_call_t); NULL: not told */
    void *started_ud;
    int64_t step_timeout_ms;   /* the caller bounds the attempt itself: no default timeouts */
    uint8_t state;             /* req_state_t */
    bool internal;             /* a robots.txt fetch: not subject to robots */
    bool too_big;
    bool headers_too_big;
    bool head_done;            /* the blank line ending a response head was seen */
    bool out_of_memory;        /* the body could not be stored */
    bool timeout_default;      /* timeout_ms and idle_ms are the defaults, not the caller's */
    char length_conflict[64];  /* two Content-Length values that disagree, for the message */
    bool fresh_connect;        /* no idle connection to reuse: skip curl's search */
    bool broken;               /* on the client's broken list: curl cannot be watched */
    bool h2c_opener;           /* h2c on old libcurl (transport.c): by prior knowledge */
    bool h2c_refused;          /* ... a new connection refused to it: start again */
    uint8_t h2c_restarts;
    sl_http_t *queue_next;     /* host queue, or the deferred or broken list */
    sl_http_t *queue_prev;     /* host queue only */
    sl_http_t *live_prev, *live_next;
    /* what to do */
    char *url;
    char *path;                /* path and query, for robots.txt */
    char *method;
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    int64_t max_bytes;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;        /* total; 0 = none (the step's timeout governs) */
    int64_t idle_ms;           /* no byte for this long ends it; 0 = no such limit */
    bool follow_redirects;
    uint16_t expect[HTTP_EXPECT_MAX][2]; /* inclusive status ranges */
    size_t expect_count;
    save_t *save;              /* NULL without save_to */
    /* what happened */
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    long status;
    char reason[64];
    sl_value_t *resp_headers;  /* a map, reset at each response of a redirect chain */
    size_t header_bytes;
    sl_vstr_t *resp_body;      /* in memory: the body, grown as it comes */
    size_t resp_body_cap;
    uint64_t bytes;
    uint64_t started_ns;
    CURLcode result;
    int socket_errno;          /* why the last socket() failed (EMFILE...), or 0 */
    uint32_t redirects;        /* followed so far (request.c follows them, not curl) */
    bool headers_dropped;      /* a redirect left the origin: only sluice's headers go on */
    bool hop_queued;           /* a redirect's next hop, set up, waiting on its new host */
    char *hop_url;             /* that hop's URL (the host it is queued on); NULL: none */
    /* a failure found before curl ran, reported from the loop */
    int fail_code;
    char *fail_message;
    int64_t fail_retry_after_ms;
};

struct host {
    char *key;                 /* scheme://host:port */
    uint64_t hash;
    host_t *bucket_next;
    sl_http_client_t *client;
    uint32_t inflight;
    uint32_t idle_conns;       /* estimate of curl's idle connections to the host */
    sl_http_t *queue_head, *queue_tail;
    bool in_ready;
    host_t *ready_next;
    double rate;               /* starts per second; 0 = unlimited */
    uint64_t next_start_ns;
    uv_timer_t *rate_timer;    /* made when the rate first holds a request back */
    uint8_t robots_state;      /* robots_state_t */
    uint32_t h2c_sockets;      /* h2c on old libcurl: sockets open to the host ... */
    bool h2c_opening;          /* ... and a prior-knowledge transfer opening one (transport.c) */
    robots_t *robots;
};

typedef enum { ROBOTS_UNKNOWN = 0, ROBOTS_FETCHING, ROBOTS_KNOWN } robots_state_t;

/* One curl multi and its watches: a client's own, or shared by a daemon's runs'. */
struct sl_http_engine {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;             /* DNS answers and TLS sessions */
    uv_timer_t timer;          /* curl's timeout */
    sock_ctx_t *socks;         /* sockets curl asked us to watch */
    uint32_t concurrency;      /* requests in flight, all its clients */
    uint32_t inflight, saves_closing;
    sl_http_client_t *clients; /* the clients using it */
    sl_http_client_t *pump_from; /* where the next pump of all clients begins (fairness) */
    int handles_open;
    bool closing;
    bool owned;                /* made by its one client (sl__io_http_new), freed with it */
};

struct sl_http_client {
    uv_loop_t *loop;
    sl_http_engine_t *engine;
    sl_http_client_t *engine_prev, *engine_next;
    uv_idle_t deferred_idle;   /* reports failures found outside curl */
    sl_http_limits_t limits;
    int64_t default_timeout_ms; /* HTTP_TIMEOUT_MS_DEFAULT or SLUICE_HTTP_TIMEOUT */
    int64_t default_idle_ms;    /* HTTP_IDLE_TIMEOUT_MS_DEFAULT or SLUICE_HTTP_IDLE_TIMEOUT */
    char user_agent[64];
    host_t **buckets;
    size_t bucket_count, host_count;
    host_t *ready_head, *ready_tail;
    sl_http_t *deferred_head, *deferred_tail;
    sl_http_t *broken;         /* transfers whose socket could not be watched */
    sl_http_t *live;           /* every request not yet freed */
    uint32_t inflight;
    uint32_t saves_closing;    /* save_to files still open after their transfer (fsync,
                                * rename): descriptors that count against concurrency */
    int handles_open;
    bool closing;
    sl_http_stats_t stats;
    /* transport.c */
    char *ca_file;             /* the CA bundle curl trusts; NULL = the system store */
    const char *ca_from;       /* where ca_file came from, for messages */
    char *proxy;               /* limits.http.proxy; NULL = curl reads the variables */
};

/* http.c */
sl_http_t *sl__io_http_new_request(sl_http_client_t *client, uint32_t attempt,
                                   sl_http_done_fn done, void *ud);
void sl__io_http_defer_fail(sl_http_t *req, int code, int64_t retry_after_ms, const char *fmt,
                            ...) SL_PRINTF(4, 5);
void sl__io_http_pump(sl_http_client_t *client);
/** A slot of `client` (and so of its engine) came free: pumps it, then its engine's others. */
void sl__io_http_slot_freed(sl_http_client_t *client);
int sl__io_http_activate(sl_http_t *req);
void sl__io_http_report(sl_http_t *req, int code, sl_value_t *response, const char *message,
                        int64_t retry_after_ms);
void sl__io_http_release(sl_http_t *req);
/* The code and message of a save_to whose temporary file could not be made (`error`). */
int sl__io_save_open_failed(const sl_http_t *req, int error, char *message, size_t size);
void sl__io_http_opened(sl_http_t *req, int error);

/* request.c: options in, easy handle set up, response out */
int sl__io_request_parse(sl_http_t *req, const sl_value_t *request, char *err, size_t err_size);
int sl__io_request_setup(sl_http_t *req);
/** A socket for curl, its errno kept in req->socket_errno (any opener of a request). */
curl_socket_t sl__io_request_socket(sl_http_t *req, const struct curl_sockaddr *addr);
/** CURLOPT_HEADERFUNCTION: one response header line into req->resp_headers (bounded). */
size_t sl__io_request_header(char *data, size_t size, size_t count, void *ud);
int sl__io_request_outcome(sl_http_t *req, char *message, size_t size, int64_t *retry_after_ms);
sl_value_t *sl__io_request_response(sl_http_t *req);
/** What a finished transfer is: a final response (or req->result now says why a redirect
 *  is not followed), or a redirect whose next hop the handle is set up for. A hop to
 *  another host has that host's key and path in req->hop_url and req->path: it waits on
 *  that host's queue (its per_host, rate and robots.txt) before it goes on. */
typedef enum {
    SL_IO_HOP_NONE = 0,
    SL_IO_HOP_SAME_HOST,
    SL_IO_HOP_OTHER_HOST,
} sl_io_hop_t;
sl_io_hop_t sl__io_request_redirect(sl_http_t *req);
void sl__io_request_finish(sl_http_t *req);
void sl__io_request_free(sl_http_t *req);

/* transport.c: TLS, HTTP version and proxy of a request, and what their failures mean */
int sl__io_transport_init(sl_http_client_t *client, const sl_http_limits_t *limits);
void sl__io_transport_free(sl_http_client_t *client);
void sl__io_transport_setup(sl_http_t *req, CURL *easy);
/** A cause for a failed transfer curl's words do not make clear (a certificate, a CA
 *  file, a proxy); false to keep curl's. */
bool sl__io_transport_cause(const sl_http_t *req, const char *detail, char *cause,
                            size_t size);
/** Appends " (via proxy URL)" to a failure's cause when a proxy carried the request. */
void sl__io_transport_via(const sl_http_t *req, char *cause, size_t size);
/** Masks every proxy credential in `message` (in place). */
void sl__io_transport_mask(const sl_http_t *req, char *message, size_t size);
/** True when a finished transfer is to start again (h2c on old libcurl): the handle is
 *  set up for it; add it to the multi again. */
bool sl__io_transport_restart(sl_http_t *req, CURLcode result);
/** The most requests a host may have in flight beyond per_host (UINT32_MAX: no cap). */
uint32_t sl__io_transport_streams_cap(const host_t *host);
/** Counts the finished transfer's new connections and protocol version. */
void sl__io_transport_count(sl_http_t *req);
/* metrics.c */
/** Counts a finished transfer for /metrics: its status class and body bytes. */
void sl__io_metrics_transfer(sl_http_t *req);

/* hosts.c */
/** "scheme://host:port" of `url` (the scheme's default port when it has none), or NULL. */
char *sl__io_hosts_key(const char *url);
int sl__io_hosts_enqueue(sl_http_client_t *client, sl_http_t *req);
void sl__io_hosts_unqueue(sl_http_t *req);
void sl__io_hosts_started(host_t *host, sl_http_t *req);
void sl__io_hosts_ended(host_t *host, bool conn_kept);
host_t *sl__io_hosts_next_ready(sl_http_client_t *client);
void sl__io_hosts_wake(host_t *host);
void sl__io_hosts_close_timers(sl_http_client_t *client);
void sl__io_hosts_free_all(sl_http_client_t *client);

/* fds.c */
/** `wanted` requests in flight, lowered (with a warning) to what RLIMIT_NOFILE allows. */
uint32_t sl__io_fds_concurrency(uint32_t wanted);

/* robots.c */
int sl__io_robots_parse(const char *text, size_t len, robots_t **out);
double sl__io_robots_crawl_delay(const robots_t *robots);
int sl__io_robots_fetch(host_t *host);
bool sl__io_robots_allows(const robots_t *robots, const char *path, const char **rule);
void sl__io_robots_free(robots_t *robots);

/* save.c */
int sl__io_save_open(sl_http_t *req);
size_t sl__io_save_write(sl_http_t *req, const char *data, size_t len);
void sl__io_save_advance(sl_http_t *req);
bool sl__io_save_settled(const sl_http_t *req);

#endif
