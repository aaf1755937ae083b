/*
 * One request: its options read from a value map, its curl easy handle set up,
 * its response collected (bounded) and judged, and the result built.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "io/internal.h"

static const char *const request_keys[] = {
    "url", "method", "headers", "body", "save_to", "expect", "max_bytes", "follow_redirects",
    "connect_timeout", "timeout", NULL};

/* ---- options ------------------------------------------------------------------ */

static int opt_duration(const sl_value_t *v, const char *name, int64_t *out_ms, char *err,
                        size_t err_size)
{
    sl_type_t t = sl_value_type(v);
    if (t == SL_TYPE_INT || t == SL_TYPE_NUMBER) {
        double seconds = sl_value_number_of(v);
        if (seconds > 0 && seconds < 1e9) {
            *out_ms = (int64_t)(seconds * 1000);
            return 0;
        }
    } else if (t == SL_TYPE_STRING && sl__duration_parse(sl_value_str(v, NULL), out_ms) == 0 &&
               *out_ms > 0) {
        return 0;
    }
    snprintf(err, err_size, "'%s' must be a positive duration such as 10s or 500ms", name);
    return SL_EINVAL;
}

static bool status_range(const char *text, uint16_t range[2])
{
    unsigned lo, hi;
    char x1, x2, end;
    if (sscanf(text, "%1u%c%c%c", &lo, &x1, &x2, &end) == 3 && (x1 == 'x' || x1 == 'X') &&
        (x2 == 'x' || x2 == 'X') && lo >= 1 && lo <= 5) {
        range[0] = (uint16_t)(lo * 100);
        range[1] = (uint16_t)(lo * 100 + 99);
        return true;
    }
    int n = 0;
    if (sscanf(text, "%3u-%3u%n", &lo, &hi, &n) == 2 && text[n] == '\0' && lo >= 100 &&
        hi <= 599 && lo <= hi) {
        range[0] = (uint16_t)lo;
        range[1] = (uint16_t)hi;
        return true;
    }
    return false;
}

static int opt_expect_one(sl_http_t *req, const sl_value_t *v)
{
    uint16_t range[2];
    if (sl_value_type(v) == SL_TYPE_INT) {
        int64_t status = sl_value_int_of(v);
        if (status < 100 || status > 599)
            return SL_EINVAL;
        range[0] = range[1] = (uint16_t)status;
    } else if (sl_value_type(v) != SL_TYPE_STRING || !status_range(sl_value_str(v, NULL), range)) {
        return SL_EINVAL;
    }
    if (req->expect_count == HTTP_EXPECT_MAX)
        return SL_ELIMIT;
    req->expect[req->expect_count][0] = range[0];
    req->expect[req->expect_count][1] = range[1];
    req->expect_count++;
    return 0;
}

static int opt_expect(sl_http_t *req, const sl_value_t *v, char *err, size_t err_size)
{
    int rc = 0;
    if (sl_value_type(v) == SL_TYPE_LIST) {
        for (size_t i = 0; rc == 0 && i < sl_value_len(v); i++)
            rc = opt_expect_one(req, sl_value_at(v, i));
    } else {
        rc = opt_expect_one(req, v);
    }
    if (rc < 0 || req->expect_count == 0)
        snprintf(err, err_size,
                 "'expect' must be a status (200), a class (\"2xx\"), a range (\"200-299\") "
                 "or a list of them, at most %d", HTTP_EXPECT_MAX);
    return rc < 0 || req->expect_count == 0 ? SL_EINVAL : 0;
}

static bool header_name_ok(const char *name)
{
    if (*name == '\0')
        return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

static int opt_headers(sl_http_t *req, const sl_value_t *v, bool *has_user_agent,
                       bool *has_content_type, char *err, size_t err_size)
{
    if (sl_value_type(v) != SL_TYPE_MAP) {
        snprintf(err, err_size, "'headers' must be a map of names to strings");
        return SL_EINVAL;
    }
    sl_buf_t line;
    sl__buf_init(&line, 64 << 10);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sl_value_len(v); i++) {
        const char *name;
        const sl_value_t *value = sl_value_entry(v, i, &name);
        size_t len = 0;
        const char *text = sl_value_str(value, &len);
        char number[32];
        if (text == NULL && sl_value_type(value) == SL_TYPE_INT) {
            len = (size_t)snprintf(number, sizeof(number), "%" PRId64, sl_value_int_of(value));
            text = number;
        }
        if (!header_name_ok(name) || text == NULL || strlen(text) != len ||
            strpbrk(text, "\r\n")) {
            snprintf(err, err_size, "header '%.64s' must have a token name and a one-line "
                     "string value", name);
            rc = SL_EINVAL;
            break;
        }
        *has_user_agent = *has_user_agent || strcasecmp(name, "user-agent") == 0;
        *has_content_type = *has_content_type || strcasecmp(name, "content-type") == 0;
        sl__buf_reset(&line);
        /* "Name;" is curl's way to send a header with an empty value. */
        rc = len ? sl__buf_addf(&line, "%s: %s", name, text) : sl__buf_addf(&line, "%s;", name);
        struct curl_slist *list = rc == 0 ? curl_slist_append(req->headers, line.data) : NULL;
        if (list == NULL)
            rc = SL_ENOMEM;
        else
            req->headers = list;
    }
    sl__buf_close(&line);
    return rc;
}

static int opt_body(sl_http_t *req, const sl_value_t *v, bool has_content_type)
{
    size_t len = 0;
    const char *text = sl_value_str(v, &len);
    if (text) {
        req->body = sl__malloc(len + 1);
        if (req->body == NULL)
            return SL_ENOMEM;
        memcpy(req->body, text, len + 1);
        req->body_len = len;
        return 0;
    }
    /* Anything else goes as JSON. */
    int rc = sl_value_to_json(v, &req->body, &req->body_len);
    if (rc < 0)
        return rc;
    if (!has_content_type) {
        struct curl_slist *list = curl_slist_append(req->headers, "Content-Type: application/json");
        if (list == NULL)
            return SL_ENOMEM;
        req->headers = list;
    }
    return 0;
}

static int opt_url(sl_http_t *req, const sl_value_t *v, char *err, size_t err_size)
{
    const char *url = sl_value_str(v, NULL);
    if (url == NULL || *url == '\0') {
        snprintf(err, err_size, "'url' must be a non-empty string");
        return SL_EINVAL;
    }
    req->url = sl__strdup(url);
    if (req->url == NULL)
        return SL_ENOMEM;
    CURLU *u = curl_url();
    if (u == NULL)
        return SL_ENOMEM;
    char *scheme = NULL, *path = NULL, *query = NULL;
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, err_size, "'%.200s' is not an http:// or https:// URL", url);
        rc = SL_EINVAL;
        goto out;
    }
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    sl_buf_t b;
    sl__buf_init(&b, 1 << 20);
    rc = sl__buf_addf(&b, "%s%s%s", path ? path : "/", query ? "?" : "", query ? query : "");
    req->path = rc == 0 ? sl__buf_take(&b, NULL) : NULL;
    sl__buf_close(&b);
    if (rc == 0 && req->path == NULL)
        rc = SL_ENOMEM;
out:
    curl_free(scheme);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static int opt_method(sl_http_t *req, const sl_value_t *v, char *err, size_t err_size)
{
    const char *method = v ? sl_value_str(v, NULL) : "GET";
    if (method == NULL || *method == '\0' || strlen(method) > 32 || !header_name_ok(method)) {
        snprintf(err, err_size, "'method' must be an HTTP method such as GET or POST");
        return SL_EINVAL;
    }
    req->method = sl__strdup(method);
    if (req->method == NULL)
        return SL_ENOMEM;
    for (char *p = req->method; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return 0;
}

static int check_keys(const sl_value_t *request, char *err, size_t err_size)
{
    for (size_t i = 0; i < sl_value_len(request); i++) {
        const char *key;
        sl_value_entry(request, i, &key);
        size_t k = 0;
        while (request_keys[k] && strcmp(request_keys[k], key) != 0)
            k++;
        if (request_keys[k] == NULL) {
            snprintf(err, err_size, "unknown HTTP option '%.64s'", key);
            return SL_EINVAL;
        }
    }
    return 0;
}

/* Fills `req` from the option map; SL_EINVAL with a message in `err` for a bad option. */
int sl__io_request_parse(sl_http_t *req, const sl_value_t *request, char *err, size_t err_size)
{
    req->max_bytes = HTTP_MAX_BYTES_DEFAULT;
    req->connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS_DEFAULT;
    req->follow_redirects = true;
    if (sl_value_type(request) != SL_TYPE_MAP) {
        snprintf(err, err_size, "an HTTP request must be a map of options");
        return SL_EINVAL;
    }
    int rc = check_keys(request, err, err_size);
    const sl_value_t *v;
    if (rc == 0)
        rc = opt_method(req, sl_value_get(request, "method"), err, err_size);
    if (rc == 0) {
        v = sl_value_get(request, "url");
        rc = v ? opt_url(req, v, err, err_size) : SL_EINVAL;
        if (v == NULL)
            snprintf(err, err_size, "'url' is required");
    }
    if (rc < 0)
        return rc;
    /* From here on messages name the request. */
    char why[256] = "";
    bool has_user_agent = false, has_content_type = false;
    if ((v = sl_value_get(request, "headers")) && sl_value_type(v) != SL_TYPE_NIL)
        rc = opt_headers(req, v, &has_user_agent, &has_content_type, why, sizeof(why));
    if (rc == 0 && (v = sl_value_get(request, "body")) && sl_value_type(v) != SL_TYPE_NIL)
        rc = opt_body(req, v, has_content_type);
    if (rc == 0 && !has_user_agent) {
        char line[96];
        snprintf(line, sizeof(line), "User-Agent: %s", req->client->user_agent);
        struct curl_slist *list = curl_slist_append(req->headers, line);
        rc = list ? 0 : SL_ENOMEM;
        if (list)
            req->headers = list;
    }
    if (rc == 0 && (v = sl_value_get(request, "expect")) && sl_value_type(v) != SL_TYPE_NIL)
        rc = opt_expect(req, v, why, sizeof(why));
    if (rc == 0 && (v = sl_value_get(request, "max_bytes")) && sl_value_type(v) != SL_TYPE_NIL) {
        req->max_bytes = sl_value_type(v) == SL_TYPE_INT ? sl_value_int_of(v) : 0;
        if (req->max_bytes <= 0) {
            snprintf(why, sizeof(why), "'max_bytes' must be a positive integer");
            rc = SL_EINVAL;
        }
    }
    if (rc == 0 && (v = sl_value_get(request, "follow_redirects")) &&
        sl_value_type(v) != SL_TYPE_NIL) {
        if (sl_value_type(v) != SL_TYPE_BOOL) {
            snprintf(why, sizeof(why), "'follow_redirects' must be true or false");
            rc = SL_EINVAL;
        }
        req->follow_redirects = sl_value_truthy(v);
    }
    if (rc == 0 && (v = sl_value_get(request, "connect_timeout")) &&
        sl_value_type(v) != SL_TYPE_NIL)
        rc = opt_duration(v, "connect_timeout", &req->connect_timeout_ms, why, sizeof(why));
    if (rc == 0 && (v = sl_value_get(request, "timeout")) && sl_value_type(v) != SL_TYPE_NIL)
        rc = opt_duration(v, "timeout", &req->timeout_ms, why, sizeof(why));
    if (rc == 0 && req->timeout_ms == 0 && req->step_timeout_ms <= 0) {
        /* Nothing bounds this attempt: a server that never answers must not hold the run. */
        req->timeout_ms = req->client->default_timeout_ms;
        req->idle_ms = req->client->default_idle_ms;
        req->timeout_default = true;
    }
    if (rc == 0 && (v = sl_value_get(request, "save_to")) && sl_value_type(v) != SL_TYPE_NIL) {
        const char *path = sl_value_str(v, NULL);
        if (path == NULL || *path == '\0') {
            snprintf(why, sizeof(why), "'save_to' must be a non-empty path");
            rc = SL_EINVAL;
        } else {
            req->save = sl__calloc(1, sizeof(*req->save));
            rc = req->save ? 0 : SL_ENOMEM;
            if (req->save) {
                req->save->fd = -1;
                req->save->path = sl__strdup(path);
                rc = req->save->path ? 0 : SL_ENOMEM;
            }
        }
    }
    if (rc == 0 && req->expect_count == 0) {
        req->expect[0][0] = 200;
        req->expect[0][1] = 299;
        req->expect_count = 1;
    }
    if (rc == SL_EINVAL)
        snprintf(err, err_size, "%s %s: %s", req->method, req->url,
                 why[0] ? why : "bad request options");
    return rc;
}

bool sl__io_http_subject(const sl_http_t *req, char *buf, size_t size)
{
    if (req == NULL || req->method == NULL || req->url == NULL)
        return false;
    snprintf(buf, size, "%s %s", req->method, req->url);
    return true;
}

/* ---- transfer callbacks ------------------------------------------------------ */

/*
 * A repeated Content-Length must repeat the same value (RFC 9112 §6.3): two that disagree
 * make the body's length unknowable, and a response that reads as either is a smuggling
 * vector. Records the two values in req->length_conflict when they disagree.
 */
static bool same_length_values(sl_http_t *req, const char *a, size_t a_len, const char *b,
                               size_t b_len)
{
    if (a_len == b_len && memcmp(a, b, a_len) == 0)
        return true;
    snprintf(req->length_conflict, sizeof(req->length_conflict), "%.*s and %.*s",
             (int)(a_len < 24 ? a_len : 24), a, (int)(b_len < 24 ? b_len : 24), b);
    return false;
}

size_t sl__io_request_header(char *data, size_t size, size_t count, void *ud)
{
    sl_http_t *req = ud;
    size_t len = size * count;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (the first, or the next of a redirect chain). */
        sl_value_free(req->resp_headers);
        req->resp_headers = sl_value_map();
        req->header_bytes = 0;
        req->head_done = false;
        req->length_conflict[0] = '\0';
        req->reason[0] = '\0';
        const char *sp = memchr(data, ' ', len);
        const char *reason = sp ? memchr(sp + 1, ' ', len - (size_t)(sp + 1 - data)) : NULL;
        if (reason) {
            size_t n = len - (size_t)(reason + 1 - data);
            while (n && (reason[n] == '\r' || reason[n] == '\n' || reason[n] == '\0'))
                n--;
            n = n < sizeof(req->reason) - 1 ? n : sizeof(req->reason) - 1;
            memcpy(req->reason, reason + 1, n);
            req->reason[n] = '\0';
            req->reason[strcspn(req->reason, "\r\n")] = '\0';
        }
        return req->resp_headers ? len : 0;
    }
    req->header_bytes += len;
    if (req->header_bytes > HTTP_HEADER_BYTES_MAX) {
        req->headers_too_big = true;
        return 0;
    }
    const char *colon = memchr(data, ':', len);
    if (colon == NULL || req->resp_headers == NULL) {
        if (len <= 2 && (data[0] == '\r' || data[0] == '\n'))
            req->head_done = true; /* the blank line that ends the head */
        return len;
    }
    char name[128];
    size_t name_len = (size_t)(colon - data);
    if (name_len == 0 || name_len >= sizeof(name))
        return len;
    for (size_t i = 0; i < name_len; i++)
        name[i] = (char)tolower((unsigned char)data[i]);
    name[name_len] = '\0';
    const char *value = colon + 1, *end = data + len;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    const sl_value_t *old = sl_value_get(req->resp_headers, name);
    if (old && strcmp(name, "content-length") == 0 &&
        !same_length_values(req, sl_value_str(old, NULL), strlen(sl_value_str(old, NULL)), value,
                            (size_t)(end - value)))
        return 0; /* the transfer ends here; the outcome names the two values */
    sl_value_t *joined;
    if (old) { /* a repeated header: joined with ", " as RFC 9110 allows */
        size_t old_len = 0;
        const char *old_text = sl_value_str(old, &old_len);
        sl_buf_t b;
        sl__buf_init(&b, HTTP_HEADER_BYTES_MAX);
        int rc = sl__buf_addf(&b, "%.*s, %.*s", (int)old_len, old_text, (int)(end - value), value);
        joined = rc == 0 ? sl_value_string(b.data, b.len) : NULL;
        sl__buf_close(&b);
    } else {
        joined = sl_value_string(value, (size_t)(end - value));
    }
    if (joined == NULL || sl_value_set(req->resp_headers, name, joined) < 0)
        return 0;
    return len;
}

/*
 * Room for `need` body bytes. Capacity doubles as bytes arrive, never past the announced
 * length (`expected`, -1 when unknown) once the bytes reach it; an announced length alone
 * reserves at most HTTP_BODY_RESERVE_MAX, so a server that announces 64 MiB and stalls
 * costs 64 KiB, not 64 MiB.
 */
static int grow_body(sl_http_t *req, size_t need, int64_t expected)
{
    size_t cap = req->resp_body_cap;
    if (cap < need) {
        cap = cap ? cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 4 ? need : cap * 2;
        if (expected > 0 && (uint64_t)expected >= need && (uint64_t)expected < cap)
            cap = (size_t)expected;
        if (req->resp_body == NULL && expected > 0 && (uint64_t)expected > need)
            cap = (uint64_t)expected < HTTP_BODY_RESERVE_MAX ? (size_t)expected
                                                             : HTTP_BODY_RESERVE_MAX;
        if (cap < need)
            cap = need;
        if ((int64_t)cap > req->max_bytes && (int64_t)need <= req->max_bytes)
            cap = (size_t)req->max_bytes;
    }
    if (req->resp_body && cap == req->resp_body_cap)
        return 0;
    sl_vstr_t *s = sl__realloc(req->resp_body, sizeof(sl_vstr_t) + cap + 1);
    if (s == NULL)
        return SL_ENOMEM;
    if (req->resp_body == NULL) {
        s->len = 0;
        s->refs = 1;
    }
    req->resp_body = s;
    req->resp_body_cap = cap;
    return 0;
}

/* The current response is a redirect this request follows (once its head is in). */
static bool redirect_response(sl_http_t *req)
{
    long status = 0;
    if (!req->follow_redirects || req->resp_headers == NULL ||
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        return false;
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return false;
    return sl_value_get(req->resp_headers, "location") != NULL;
}

/* Where a finished redirect points (absolute; curl resolves it when the transfer ends). */
static const char *redirect_target(sl_http_t *req)
{
    char *target = NULL;
    if (!redirect_response(req) ||
        curl_easy_getinfo(req->easy, CURLINFO_REDIRECT_URL, &target) != CURLE_OK)
        return NULL;
    return target;
}

static size_t on_body(char *data, size_t size, size_t count, void *ud)
{
    sl_http_t *req = ud;
    size_t len = size * count;
    if (redirect_response(req))
        return len; /* a redirect's own body is nobody's data */
    if ((int64_t)(req->bytes + len) > req->max_bytes) {
        req->too_big = true;
        return 0;
    }
    if (req->save) {
        size_t taken = sl__io_save_write(req, data, len);
        if (taken == len)
            req->bytes += len;
        return taken;
    }
    size_t have = req->resp_body ? req->resp_body->len : 0;
    if (req->resp_body == NULL || have + len > req->resp_body_cap) {
        curl_off_t expected = -1;
        curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
        if (grow_body(req, have + len, (int64_t)expected) < 0) {
            req->out_of_memory = true;
            return 0;
        }
    }
    memcpy(req->resp_body->data + have, data, len);
    req->resp_body->len = have + len;
    req->bytes += len;
    return len;
}

/*
 * Opens a socket for curl (CURLOPT_OPENSOCKETFUNCTION, here and in transport.c's h2c
 * opener): curl's own socket() call keeps no errno (CURLINFO_OS_ERRNO stays 0), so
 * descriptor exhaustion would read as "Couldn't connect to server". Opening the socket
 * here records why it failed. Close-on-exec: `exec` children get none.
 */
curl_socket_t sl__io_request_socket(sl_http_t *req, const struct curl_sockaddr *addr)
{
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    req->socket_errno = fd < 0 ? errno : 0; /* the last attempt's: happy eyeballs tries two */
    return fd < 0 ? CURL_SOCKET_BAD : fd;
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    return sl__io_request_socket(ud, addr);
}

/* Before transport setup, which may put its own opener in (h2c on old curl). */
static void setup_socket(sl_http_t *req)
{
    curl_easy_setopt(req->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(req->easy, CURLOPT_OPENSOCKETDATA, req);
}

/* Sets up the easy handle; the request then goes to curl. */
int sl__io_request_setup(sl_http_t *req)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return SL_ENOMEM;
    req->easy = e;
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, req->client->engine->share);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  /* sl__io_request_redirect follows */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding curl can decode */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    if (req->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->idle_ms > 0) { /* fewer than 1 byte a second for idle_ms: no data is coming */
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)((req->idle_ms + 999) / 1000));
    }
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_bytes);
    setup_socket(req);
    sl__io_transport_setup(req, e); /* CAs, HTTP version, PIPEWAIT, proxy */
    if (req->fresh_connect)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* curl holds a receive buffer per transfer: small for in-memory bodies (pages and
     * API answers), so that 10,000 transfers in flight stay cheap; large for downloads
     * to files. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, req->save ? 65536L : 2048L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, sl__io_request_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    if (strcmp(req->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(req->method, "GET") != 0 || req->body)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        struct curl_slist *list = curl_slist_append(req->headers, "Expect:");
        if (list == NULL)
            return SL_ENOMEM;
        req->headers = list;
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
    }
    return 0;
}

/* ---- redirects ------------------------------------------------------------------
 * sluice follows redirects itself, so that headers the workflow set (API keys, tokens,
 * cookies) never reach another origin: curl would re-send every CURLOPT_HTTPHEADER line
 * to wherever a server points it (it strips only Authorization and Cookie). */

/* A header line sluice adds itself, or that only describes the body: kept across origins. */
static bool header_kept_across_origins(const char *line)
{
    static const char *const kept[] = {"user-agent:", "content-type:", "expect:", NULL};
    for (size_t i = 0; kept[i]; i++)
        if (strncasecmp(line, kept[i], strlen(kept[i])) == 0)
            return true;
    return false;
}

/* The request leaves its origin: drop every header but sluice's own (docs/http.md). */
static int drop_headers(sl_http_t *req)
{
    struct curl_slist *kept = NULL;
    for (struct curl_slist *l = req->headers; l; l = l->next) {
        if (!header_kept_across_origins(l->data))
            continue;
        struct curl_slist *next = curl_slist_append(kept, l->data);
        if (next == NULL) {
            curl_slist_free_all(kept);
            return SL_ENOMEM;
        }
        kept = next;
    }
    curl_slist_free_all(req->headers);
    req->headers = kept;
    req->headers_dropped = true;
    curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
    return 0;
}

/* As curl and browsers do: 303 turns anything but HEAD into a GET, 301 and 302 a POST. */
static void redirect_method(sl_http_t *req, long status)
{
    bool head = strcmp(req->method, "HEAD") == 0;
    bool to_get = (status == 303 && !head) ||
                  ((status == 301 || status == 302) && strcmp(req->method, "POST") == 0);
    if (!to_get)
        return;
    curl_easy_setopt(req->easy, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(req->easy, CURLOPT_HTTPGET, 1L); /* no body from here on */
}

/* Why `target` cannot be followed (written to errbuf, with req->result), or 0. */
static int redirect_refused(sl_http_t *req, const char *target)
{
    if (req->redirects >= HTTP_MAX_REDIRECTS) {
        req->result = CURLE_TOO_MANY_REDIRECTS;
        return SL_ELIMIT;
    }
    if (strncasecmp(target, "http://", 7) != 0 && strncasecmp(target, "https://", 8) != 0) {
        req->result = CURLE_UNSUPPORTED_PROTOCOL;
        snprintf(req->errbuf, sizeof(req->errbuf),
                 "redirected to '%.160s', which is not an http:// or https:// URL", target);
        return SL_EINVAL;
    }
    return 0;
}

/* The rest of the attempt's total timeout for the next hop (curl's counts per transfer). */
static void redirect_timeout(sl_http_t *req)
{
    if (req->timeout_ms <= 0)
        return;
    int64_t spent = (int64_t)((sl__clock_now_ns() - req->started_ns) / 1000000);
    int64_t left = req->timeout_ms - spent;
    curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
}

/* The path and query of `url`, as robots.txt rules read them; NULL when out of memory. */
static char *robots_path(const char *url)
{
    CURLU *u = curl_url();
    char *path = NULL, *query = NULL, *out = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_PATH, &path, 0);
        curl_url_get(u, CURLUPART_QUERY, &query, 0);
        out = sl__asprintf("%s%s%s", path ? path : "/", query ? "?" : "", query ? query : "");
    }
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return out;
}

/* A hop to another host: queued there (its limits and robots.txt), with its path. */
static bool other_host_hop(sl_http_t *req, const char *target)
{
    char *path = robots_path(target);
    char *url = path ? sl__strdup(target) : NULL;
    if (url == NULL) {
        sl__free(path);
        return false;
    }
    sl__free(req->path);
    sl__free(req->hop_url);
    req->path = path;
    req->hop_url = url;
    return true;
}

sl_io_hop_t sl__io_request_redirect(sl_http_t *req)
{
    if (req->result != CURLE_OK)
        return SL_IO_HOP_NONE;
    const char *found = redirect_target(req);
    if (found == NULL || redirect_refused(req, found) < 0)
        return SL_IO_HOP_NONE;
    long status = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    char *target = sl__strdup(found); /* curl's string lives until the handle's next use */
    char *from = target ? sl__io_hosts_key(req->hop_url ? req->hop_url : req->url) : NULL;
    char *to = from ? sl__io_hosts_key(target) : NULL;
    bool ok = to != NULL, other = ok && strcmp(from, to) != 0;
    if (ok && other && !req->headers_dropped)
        ok = drop_headers(req) == 0;
    if (ok && other)
        ok = other_host_hop(req, target);
    if (ok) {
        redirect_method(req, status);
        redirect_timeout(req);
        curl_easy_setopt(req->easy, CURLOPT_URL, target); /* curl copies it */
        req->errbuf[0] = '\0';
        req->redirects++;
    } else {
        req->result = CURLE_OUT_OF_MEMORY;
        req->out_of_memory = true;
    }
    sl__free(to);
    sl__free(from);
    sl__free(target);
    return !ok ? SL_IO_HOP_NONE : other ? SL_IO_HOP_OTHER_HOST : SL_IO_HOP_SAME_HOST;
}

/* ---- the outcome --------------------------------------------------------------- */

static bool status_expected(const sl_http_t *req)
{
    for (size_t i = 0; i < req->expect_count; i++)
        if (req->status >= req->expect[i][0] && req->status <= req->expect[i][1])
            return true;
    return false;
}

static bool status_retryable(long status)
{
    return status == 408 || status == 425 || status == 429 || status == 500 || status == 502 ||
           status == 503 || status == 504;
}

/* Transport failures worth another attempt: the network or the server may recover. */
static bool result_retryable(CURLcode result)
{
    switch (result) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
        return true;
    default:
        return false;
    }
}

/* "timed out after 2s", or what the default timeouts (io/internal.h) ended. */
static void timeout_cause(const sl_http_t *req, const char *detail, char *cause, size_t size)
{
    bool idle = req->idle_ms > 0 && strncmp(detail, "Operation too slow", 18) == 0;
    int64_t ms = idle ? req->idle_ms : req->timeout_ms;
    if (ms <= 0) {
        snprintf(cause, size, "%s", detail);
        return;
    }
    snprintf(cause, size, "%s %.3gs", idle ? "no data received for" : "timed out after",
             (double)ms / 1000);
    if (req->timeout_default) {
        size_t n = strlen(cause);
        snprintf(cause + n, size - n,
                 " (the default HTTP %stimeout: set the step's timeout to "
                 "change it)",
                 idle ? "idle " : "");
    }
}

/*
 * Judges a finished transfer: 0, or a negative SL_E* with a message naming the
 * method, URL, cause and attempt, and the retry hint (sl_http_done_fn).
 */
int sl__io_request_outcome(sl_http_t *req, char *message, size_t size, int64_t *retry_after_ms)
{
    char cause[CURL_ERROR_SIZE + 128];
    int code = 0;
    *retry_after_ms = -1;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    if (req->length_conflict[0]) {
        code = SL_EFAILED;
        snprintf(cause, sizeof(cause), "conflicting Content-Length headers (%s)",
                 req->length_conflict);
    } else if (req->out_of_memory) {
        code = SL_ENOMEM;
        snprintf(cause, sizeof(cause),
                 "out of memory storing the body (%" PRIu64 " bytes received)", req->bytes);
    } else if (req->result == CURLE_OUT_OF_MEMORY && !req->head_done) {
        /* curl refuses a header line over CURL_MAX_HTTP_HEADER with its out-of-memory code */
        code = SL_ELIMIT;
        snprintf(cause, sizeof(cause), "response header too large (a header line over %d KiB)",
                 CURL_MAX_HTTP_HEADER >> 10);
    } else if (req->too_big || req->result == CURLE_FILESIZE_EXCEEDED) {
        code = SL_ELIMIT;
        snprintf(cause, sizeof(cause), "body exceeds max_bytes (%" PRId64 " bytes)",
                 req->max_bytes);
    } else if (req->headers_too_big) {
        code = SL_ELIMIT;
        snprintf(cause, sizeof(cause), "response headers exceed %u bytes", HTTP_HEADER_BYTES_MAX);
    } else if (req->save && req->save->error) {
        code = SL_EIO;
        snprintf(cause, sizeof(cause), "cannot write '%s': %s", req->save->path,
                 strerror(req->save->error));
    } else if (req->result != CURLE_OK) {
        const char *detail = req->errbuf[0] ? req->errbuf : curl_easy_strerror(req->result);
        code = req->result == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
        long os_errno = req->socket_errno;
        if (os_errno == 0)
            curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &os_errno);
        if (req->result == CURLE_OPERATION_TIMEDOUT)
            timeout_cause(req, detail, cause, sizeof(cause));
        else if (os_errno == EMFILE || os_errno == ENFILE)
            snprintf(cause, sizeof(cause), "%s (raise ulimit -n, or lower limits.http.concurrency)",
                     os_errno == EMFILE ? "too many open files"
                                        : "too many open files in the system");
        else if (req->result == CURLE_PARTIAL_FILE)
            snprintf(cause, sizeof(cause), "truncated body (%s)", detail);
        else if (req->result == CURLE_TOO_MANY_REDIRECTS)
            snprintf(cause, sizeof(cause), "too many redirects (more than %d)", HTTP_MAX_REDIRECTS);
        else if (sl__io_transport_cause(req, detail, cause, sizeof(cause)))
            ; /* a certificate, the CA file or the proxy: said in words */
        else
            snprintf(cause, sizeof(cause), "%s", detail);
        if (result_retryable(req->result))
            *retry_after_ms = 0;
    } else if (!status_expected(req)) {
        code = SL_EFAILED;
        snprintf(cause, sizeof(cause), "HTTP %ld%s%s", req->status, req->reason[0] ? " " : "",
                 req->reason);
        if (status_retryable(req->status)) {
            curl_off_t seconds = -1;
            curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &seconds);
            *retry_after_ms = seconds > 0 ? (int64_t)seconds * 1000 : 0;
            if (seconds > 0) {
                size_t n = strlen(cause);
                snprintf(cause + n, sizeof(cause) - n, " (Retry-After: %" PRId64 "s)",
                         (int64_t)seconds);
            }
        }
    }
    if (code == 0)
        return 0;
    sl__io_transport_via(req, cause, sizeof(cause));
    if (req->attempt > 0)
        snprintf(message, size, "%s %s: %s (attempt %" PRIu32 ")", req->method, req->url, cause,
                 req->attempt);
    else
        snprintf(message, size, "%s %s: %s", req->method, req->url, cause);
    sl__io_transport_mask(req, message, size);
    return code;
}

/*
 * The body outlives the transfer in the step's output: move it to a block of its size
 * when it has much slack (a shrinking realloc would leave small live blocks scattered
 * through freed buffers, and the heap would only grow).
 */
static void shrink_body(sl_http_t *req)
{
    size_t len = req->resp_body->len;
    if (req->resp_body_cap <= len + len / 8 + 64)
        return;
    sl_vstr_t *fit = sl__vstr_new(req->resp_body->data, len);
    if (fit == NULL)
        return;
    sl__free(req->resp_body);
    req->resp_body = fit;
    req->resp_body_cap = len;
}

/* The response map of SPEC §3: status, url, headers, body or path, bytes, elapsed_ms. */
sl_value_t *sl__io_request_response(sl_http_t *req)
{
    char *final_url = NULL;
    curl_easy_getinfo(req->easy, CURLINFO_EFFECTIVE_URL, &final_url);
    if (!req->save && req->resp_body == NULL && grow_body(req, 0, -1) < 0)
        return NULL;
    sl_value_t *map = sl_value_map();
    if (map == NULL)
        return NULL;
    uint64_t elapsed_ms = (sl__clock_now_ns() - req->started_ns) / 1000000;
    int rc = sl_value_set(map, "status", sl_value_int(req->status));
    if (rc == 0)
        rc = sl_value_set(map, "url", sl_value_cstring(final_url ? final_url : req->url));
    if (rc == 0) { /* the set takes the headers, or frees them when it fails */
        sl_value_t *headers = req->resp_headers ? req->resp_headers : sl_value_map();
        req->resp_headers = NULL;
        rc = sl_value_set(map, "headers", headers);
    }
    if (rc == 0 && req->save) {
        rc = sl_value_set(map, "path", sl_value_cstring(req->save->path));
    } else if (rc == 0) {
        shrink_body(req);
        req->resp_body->data[req->resp_body->len] = '\0';
        sl_value_t *body = sl__value_string_adopt(req->resp_body);
        if (body)
            req->resp_body = NULL;
        rc = sl_value_set(map, "body", body);
    }
    if (rc == 0)
        rc = sl_value_set(map, "bytes", sl_value_int((int64_t)req->bytes));
    if (rc == 0)
        rc = sl_value_set(map, "elapsed_ms", sl_value_int((int64_t)elapsed_ms));
    if (rc < 0) {
        sl_value_free(map);
        return NULL;
    }
    return map;
}

/* Reports a finished in-memory transfer. */
void sl__io_request_finish(sl_http_t *req)
{
    char message[1024];
    int64_t retry_after_ms = 0;
    req->client->stats.bytes += req->bytes;
    int code = sl__io_request_outcome(req, message, sizeof(message), &retry_after_ms);
    if (code < 0) {
        sl__io_http_report(req, code, NULL, message, retry_after_ms);
        return;
    }
    sl_value_t *response = sl__io_request_response(req);
    if (response == NULL) {
        snprintf(message, sizeof(message), "%s %s: out of memory building the response",
                 req->method, req->url);
        sl__io_http_report(req, SL_ENOMEM, NULL, message, 0);
        return;
    }
    sl__io_http_report(req, 0, response, NULL, 0);
}

void sl__io_request_free(sl_http_t *req)
{
    curl_slist_free_all(req->headers);
    sl_value_free(req->resp_headers);
    sl__free(req->resp_body);
    if (req->save) {
        sl_value_free(req->save->response);
        sl__free(req->save->path);
        sl__free(req->save->tmp_path);
        sl__free(req->save->tmp_name);
        if (req->save->dir) /* the target's folder (save.c) */
            sl__confine_dir_close(req->save->dir);
        sl__free(req->save->dir);
        sl__free(req->save->filling);
        sl__free(req->save->writing);
        sl__free(req->save);
    }
    sl__free(req->url);
    sl__free(req->path);
    sl__free(req->hop_url);
    sl__free(req->method);
    sl__free(req->body);
    sl__free(req->fail_message);
    sl__free(req);
}
