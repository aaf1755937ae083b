/*
 * The transport of a request: which CAs it trusts (limits.http.ca_file, else
 * $SSL_CERT_FILE, else the system store; verification is never off), which HTTP version
 * it asks for (HTTP/2 by ALPN over TLS, by prior knowledge over cleartext with
 * limits.http.h2c, else HTTP/1.1), and which proxy carries it (limits.http.proxy, else
 * curl's reading of http_proxy, https_proxy, all_proxy and no_proxy). Failures of these
 * get words that say what failed and for which host or proxy, and a proxy's credentials
 * are masked in every message.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/internal.h"

#define MASK "***"
#define SECRET_MIN 3
#define H2C_STREAMS_DEFAULT                                                                        \
    100 /* most servers allow 100 or more streams per connection */ /* shorter "secrets" are not   \
                                                                       masked: they would mangle   \
                                                                       the message */

int sl__io_transport_init(sl_http_client_t *client, const sl_http_limits_t *limits)
{
    const char *ca = limits->ca_file;
    client->ca_from = "limits.http.ca_file";
    if (ca == NULL || *ca == '\0') {
        ca = getenv("SSL_CERT_FILE");
        client->ca_from = "SSL_CERT_FILE";
    }
    if (ca && *ca && (client->ca_file = sl__strdup(ca)) == NULL)
        return SL_ENOMEM;
    if (limits->proxy && *limits->proxy && (client->proxy = sl__strdup(limits->proxy)) == NULL)
        return SL_ENOMEM;
    return 0; /* max_streams is the engine's (sl__io_http_engine_new) */
}

void sl__io_transport_free(sl_http_client_t *client)
{
    if (client->proxy)
        explicit_bzero(client->proxy, strlen(client->proxy));
    sl__free(client->proxy);
    sl__free(client->ca_file);
    client->proxy = client->ca_file = NULL;
}

/*
 * h2c on libcurl before 8.0, which breaks a connection it reuses for a prior-knowledge
 * transfer ("Error in the HTTP2 framing layer": curl issue 10634). There a transfer asks
 * for prior knowledge only when it will make the host's connection (no socket open to
 * the host, none being opened); the others ask for HTTP/2 plainly, which on the HTTP/2
 * connection they wait for (PIPEWAIT) is the same. So that they rarely need a second
 * connection, the host's requests in flight stay within one connection's streams
 * (hosts.c: sl__io_transport_streams_cap). One that needs one all the same (the server
 * closed the connection, or sent GOAWAY) would open it with an HTTP/1.1 Upgrade: its
 * socket is refused, and the transfer starts again as a prior-knowledge one
 * (sl__io_transport_restart).
 */
static curl_socket_t h2c_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    sl_http_t *req = clientp;
    host_t *host = req->host;
    (void)purpose;
    if (!req->h2c_opener) {
        req->h2c_refused = true;
        return CURL_SOCKET_BAD;
    }
    curl_socket_t fd = sl__io_request_socket(req, addr);
    if (fd != CURL_SOCKET_BAD) {
        host->h2c_sockets++;
        host->h2c_opening = false;
    }
    return fd;
}

static int h2c_close(void *clientp, curl_socket_t fd)
{
    host_t *host = clientp;
    if (host->h2c_sockets > 0)
        host->h2c_sockets--;
    return close(fd);
}

static bool h2c_workaround(void)
{
    static int old = -1;
    if (old < 0)
        old = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
    return old == 1;
}

uint32_t sl__io_transport_streams_cap(const host_t *host)
{
    const sl_http_limits_t *limits = &host->client->limits;
    if (!limits->h2c || !h2c_workaround() || strncmp(host->key, "http:", 5) != 0)
        return UINT32_MAX;
    return limits->max_streams ? limits->max_streams : H2C_STREAMS_DEFAULT;
}

/* `refused`: the host's connections would not take this transfer: it opens its own. */
static long h2c_version(sl_http_t *req, CURL *e, bool refused)
{
    host_t *host = req->host;
    if (!h2c_workaround())
        return CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, h2c_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, req);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, h2c_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, host);
    req->h2c_opener = false;
    bool opener = refused || (!host->h2c_opening && host->h2c_sockets == 0);
    /* an opener makes its own connection: reusing one by prior knowledge is the bug */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, opener ? 1L : 0L);
    if (!opener)
        return CURL_HTTP_VERSION_2_0;
    host->h2c_opening = true;
    req->h2c_opener = true;
    return CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
}

bool sl__io_transport_restart(sl_http_t *req, CURLcode result)
{
    if (!req->h2c_refused || result != CURLE_COULDNT_CONNECT || req->h2c_restarts >= 3)
        return false;
    req->h2c_refused = false;
    req->h2c_restarts++;
    req->errbuf[0] = '\0';
    if (req->h2c_opener && req->host->h2c_sockets == 0)
        req->host->h2c_opening = false;
    curl_easy_setopt(req->easy, CURLOPT_HTTP_VERSION, h2c_version(req, req->easy, true));
    return true;
}

void sl__io_transport_setup(sl_http_t *req, CURL *e)
{
    sl_http_client_t *client = req->client;
    if (client->ca_file) { /* instead of the system store, not beside it */
        curl_easy_setopt(e, CURLOPT_CAINFO, client->ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
    }
    bool tls = strncmp(req->url, "https:", 6) == 0;
    long version = tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1;
    if (!tls && client->limits.h2c)
        version = h2c_version(req, e, false);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, version);
    /* HTTP/2 may be coming: wait for a stream on a connection being set up rather than
     * open another. (Over HTTP/1.1 this would only delay.) */
    if (tls || client->limits.h2c)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    if (client->proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, client->proxy);
}

/* ---- which proxy ------------------------------------------------------------------- */

/* The host of `url`, lower case, into `out` ("" when it has none). */
static void url_host(const char *url, char *out, size_t size)
{
    out[0] = '\0';
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        snprintf(out, size, "%s", host);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    curl_free(host);
    curl_url_cleanup(u);
}

static const char *env_either(const char *lower, const char *upper)
{
    const char *v = getenv(lower);
    if ((v == NULL || *v == '\0') && upper)
        v = getenv(upper);
    return v && *v ? v : NULL;
}

/* Whether no_proxy (curl's reading: "*", or names matched exactly or as a domain suffix,
 * a leading dot ignored) exempts `host`. */
static bool no_proxy_matches(const char *host)
{
    const char *list = env_either("no_proxy", "NO_PROXY");
    if (list == NULL)
        return false;
    size_t host_len = strlen(host);
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        const char *name = p;
        p += n;
        if (n == 1 && name[0] == '*')
            return true;
        if (n && name[0] == '.')
            name++, n--;
        if (n && name[n - 1] == '.')
            n--;
        if (n == 0 || n > host_len || strncasecmp(host + host_len - n, name, n) != 0)
            continue;
        if (n == host_len || host[host_len - n - 1] == '.')
            return true;
    }
    return false;
}

/* The proxy that carries `req` (its URL, unmasked), or NULL for a direct connection. */
static const char *proxy_of(const sl_http_t *req, char *host, size_t host_size)
{
    char *url = NULL;
    if (req->easy)
        curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &url);
    url = url ? url : req->url;
    url_host(url, host, host_size);
    const char *proxy = req->client->proxy;
    if (proxy == NULL && strncmp(url, "https:", 6) == 0)
        proxy = env_either("https_proxy", "HTTPS_PROXY");
    else if (proxy == NULL)
        proxy = env_either("http_proxy", NULL); /* curl ignores HTTP_PROXY (CGI's httpoxy) */
    if (proxy == NULL)
        proxy = env_either("all_proxy", "ALL_PROXY");
    return proxy && !no_proxy_matches(host) ? proxy : NULL;
}

/* The credentials of a proxy URL: where they start and end (after "://", before '@'). */
static bool userinfo(const char *proxy, const char **start, const char **end)
{
    const char *scheme = strstr(proxy, "://");
    const char *from = scheme ? scheme + 3 : proxy;
    size_t authority = strcspn(from, "/?#");
    const char *at = NULL;
    for (const char *p = from; p < from + authority; p++)
        if (*p == '@')
            at = p;
    if (at == NULL)
        return false;
    const char *colon = memchr(from, ':', (size_t)(at - from));
    *start = colon ? colon + 1 : from; /* user:SECRET, or a bare token: all of it */
    *end = at;
    return *end > *start;
}

/* `proxy` with its secret replaced by MASK. */
static void masked_proxy(const char *proxy, char *out, size_t size)
{
    const char *start, *end;
    if (!userinfo(proxy, &start, &end)) {
        snprintf(out, size, "%s", proxy);
        return;
    }
    snprintf(out, size, "%.*s" MASK "%s", (int)(start - proxy), proxy, end);
}

/* Replaces each `secret` (len bytes) in `text` with MASK, within `size`. */
static void mask_secret(char *text, size_t size, const char *secret, size_t len)
{
    if (len < SECRET_MIN)
        return;
    char *hit = text;
    while ((hit = memmem(hit, strlen(hit), secret, len)) != NULL) {
        size_t tail = strlen(hit + len);
        size_t mask = strlen(MASK);
        if ((size_t)(hit - text) + mask + tail + 1 > size)
            tail = size - (size_t)(hit - text) - mask - 1;
        memmove(hit + mask, hit + len, tail);
        hit[mask + tail] = '\0';
        memcpy(hit, MASK, mask);
        hit += mask;
    }
}

/* Masks one proxy URL's secret, as written and percent-decoded. */
static void mask_proxy(const char *proxy, char *message, size_t size)
{
    const char *start, *end;
    if (proxy == NULL || !userinfo(proxy, &start, &end))
        return;
    size_t len = (size_t)(end - start);
    mask_secret(message, size, start, len);
    char decoded[256];
    size_t n = 0;
    for (const char *p = start; p < end && n + 1 < sizeof(decoded); p++) {
        unsigned hex;
        if (*p == '%' && end - p >= 3 && sscanf(p + 1, "%2x", &hex) == 1) {
            decoded[n++] = (char)hex;
            p += 2;
        } else {
            decoded[n++] = *p;
        }
    }
    mask_secret(message, size, decoded, n);
}

void sl__io_transport_mask(const sl_http_t *req, char *message, size_t size)
{
    mask_proxy(req->client->proxy, message, size);
    mask_proxy(env_either("https_proxy", "HTTPS_PROXY"), message, size);
    mask_proxy(env_either("http_proxy", NULL), message, size);
    mask_proxy(env_either("all_proxy", "ALL_PROXY"), message, size);
}

/* ---- what a failure means ----------------------------------------------------------- */

/* What the X509 verification result (CURLINFO_SSL_VERIFYRESULT) says of the certificate. */
static const char *verify_words(long verify, const char *detail, bool *unknown_ca)
{
    *unknown_ca = false;
    /* curl checks the name itself, after OpenSSL's verification passed */
    if (strstr(detail, "subject name") || strstr(detail, "does not match"))
        return "does not match the host name";
    switch (verify) {
    case 9:
        return "is not valid yet";
    case 10:
        return "has expired";
    case 18:
        *unknown_ca = true;
        return "is self-signed";
    case 2:
    case 19:
    case 20:
        *unknown_ca = true;
        return "is issued by an unknown CA";
    case 21:
        *unknown_ca = true;
        return "cannot be verified (an unknown CA or an incomplete chain)";
    case 23:
        return "has been revoked";
    case 24:
    case 26:
        return "is not valid for a server";
    case 62:
    case 64:
        return "does not match the host name";
    default:
        return "failed verification";
    }
}

static void certificate_cause(const sl_http_t *req, const char *detail, char *cause, size_t size)
{
    sl_http_client_t *client = req->client;
    long verify = 0;
    curl_easy_getinfo(req->easy, CURLINFO_SSL_VERIFYRESULT, &verify);
    char host[256];
    proxy_of(req, host, sizeof(host));
    bool unknown_ca;
    const char *what = verify_words(verify, detail, &unknown_ca);
    int n = snprintf(cause, size, "TLS certificate of %s %s", host, what);
    if (unknown_ca && client->ca_file)
        n += snprintf(cause + n, size - (size_t)n, " (not in the CA file %s from %s)",
                      client->ca_file, client->ca_from);
    else if (unknown_ca)
        n += snprintf(cause + n, size - (size_t)n,
                      " (not in the system's CA store: name a "
                      "private CA's PEM file in limits.http.ca_file)");
    if (n > 0 && (size_t)n < size)
        snprintf(cause + n, size - (size_t)n, ": %s", detail);
}

/* A failure of the proxy itself, named with its masked URL. */
static bool proxy_cause(const sl_http_t *req, const char *detail, char *cause, size_t size)
{
    char host[256], shown[512];
    const char *proxy = proxy_of(req, host, sizeof(host));
    long connect_code = 0;
    curl_easy_getinfo(req->easy, CURLINFO_HTTP_CONNECTCODE, &connect_code);
    if (proxy == NULL)
        return false;
    masked_proxy(proxy, shown, sizeof(shown));
    if (req->result == CURLE_COULDNT_RESOLVE_PROXY)
        snprintf(cause, size, "cannot resolve the proxy %s: %s", shown, detail);
    else if (connect_code >= 300)
        snprintf(cause, size, "the proxy %s refused the tunnel to %s (CONNECT answered %ld)", shown,
                 host, connect_code);
    else if (req->result == CURLE_COULDNT_CONNECT)
        snprintf(cause, size, "cannot connect to the proxy %s: %s", shown, detail);
    else if (req->result == CURLE_PROXY)
        snprintf(cause, size, "the proxy %s failed: %s", shown, detail);
    else
        return false;
    return true;
}

bool sl__io_transport_cause(const sl_http_t *req, const char *detail, char *cause, size_t size)
{
    if (proxy_cause(req, detail, cause, size))
        return true;
    if (req->result == CURLE_PEER_FAILED_VERIFICATION) {
        certificate_cause(req, detail, cause, size);
        return true;
    }
    if (req->result == CURLE_SSL_CACERT_BADFILE && req->client->ca_file) {
        snprintf(cause, size, "cannot use the CA file %s (from %s): %s", req->client->ca_file,
                 req->client->ca_from, detail);
        return true;
    }
    return false;
}

void sl__io_transport_via(const sl_http_t *req, char *cause, size_t size)
{
    char host[256], shown[512];
    const char *proxy = proxy_of(req, host, sizeof(host));
    if (proxy == NULL)
        return;
    masked_proxy(proxy, shown, sizeof(shown));
    size_t n = strlen(cause);
    if (strstr(cause, shown) == NULL && n < size)
        snprintf(cause + n, size - n, " (via the proxy %s)", shown);
}

void sl__io_transport_count(sl_http_t *req)
{
    if (req->h2c_opener && req->host->h2c_sockets == 0)
        req->host->h2c_opening = false; /* it ended before opening one: the next may */
    sl_http_stats_t *stats = &req->client->stats;
    long connects = 0, version = 0;
    curl_easy_getinfo(req->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(req->easy, CURLINFO_HTTP_VERSION, &version);
    stats->connections += connects > 0 ? (uint64_t)connects : 0;
    switch (version) {
    case CURL_HTTP_VERSION_1_0:
        stats->by_version[0]++;
        break;
    case CURL_HTTP_VERSION_1_1:
        stats->by_version[1]++;
        break;
    case CURL_HTTP_VERSION_2_0:
        stats->by_version[2]++;
        break;
    case CURL_HTTP_VERSION_3:
        stats->by_version[3]++;
        break;
    default:
        break;
    }
}
