/*
 * What llhttp leaves to us of a request target and an address: the path split from the
 * query and percent-decoded (strict: a malformed escape or a %00 refuses the request), a
 * query parameter looked up and decoded (lenient, as browsers write queries: `+` is a
 * space, an escape that is malformed or %00 stays as written, so a value never holds a
 * NUL), and the --http address parsed (HOST:PORT, [V6]:PORT, :PORT, localhost:PORT; no
 * name is resolved). Pure functions of their strings, any thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/internal.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte of the escape at s ('%' then two hex digits), or -1. */
static int escape_at(const char *s, size_t left)
{
    if (left < 3 || s[0] != '%')
        return -1;
    int hi = hex_value(s[1]), lo = hex_value(s[2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

int sl__http_split_target(char *target, char *path, size_t size, const char **query)
{
    if (target[0] != '/')
        return -1;
    char *end = strchr(target, '?');
    char *hash = strchr(target, '#'); /* a fragment is never sent; drop one that is */
    if (end == NULL)
        end = hash ? hash : target + strlen(target);
    else if (hash && hash < end)
        end = hash;
    size_t out = 0;
    for (const char *s = target; s < end; s++) {
        if (out + 1 >= size)
            return -1;
        if (*s != '%') {
            path[out++] = *s;
            continue;
        }
        int byte = escape_at(s, (size_t)(end - s));
        if (byte <= 0) /* malformed, or %00 */
            return -1;
        path[out++] = (char)byte;
        s += 2;
    }
    path[out] = '\0';
    if (*end == '?') {
        *query = end + 1;
        char *q_hash = strchr(end + 1, '#');
        if (q_hash) /* the query ends at a fragment: never sent by clients, cut it */
            *q_hash = '\0';
    } else {
        *query = "";
    }
    return 0;
}

/* Decodes s[0..len) of a query into buf: `+` a space, %XY its byte (but %00 and a
 * malformed escape kept as written). Returns the length, -2 when it does not fit. */
static int decode_query_part(const char *s, size_t len, char *buf, size_t size)
{
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (out + 1 >= size)
            return -2;
        int byte = s[i] == '%' ? escape_at(s + i, len - i) : -1;
        if (byte > 0) {
            buf[out++] = (char)byte;
            i += 2;
        } else {
            buf[out++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    buf[out] = '\0';
    return (int)out;
}

int sl__http_query_find(const char *query, const char *key, char *buf, size_t size)
{
    char name[256];
    if (size == 0)
        return -2;
    for (const char *p = query; *p;) {
        size_t len = strcspn(p, "&;");
        const char *eq = memchr(p, '=', len);
        size_t name_len = eq ? (size_t)(eq - p) : len;
        if (decode_query_part(p, name_len, name, sizeof name) >= 0 && strcmp(name, key) == 0) {
            if (eq == NULL) {
                buf[0] = '\0';
                return 0;
            }
            return decode_query_part(eq + 1, len - name_len - 1, buf, size);
        }
        p += len;
        if (*p)
            p++;
    }
    return -1;
}

int sl__http_query(const sl_http_request_t *req, const char *key, char *buf, size_t size)
{
    return sl__http_query_find(req->query ? req->query : "", key, buf, size);
}

/* ---- the address -------------------------------------------------------------------- */

static int parse_port(const char *s, int *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    int value = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        value = value * 10 + (*s - '0');
    }
    if (value > 65535)
        return -1;
    *port = value;
    return 0;
}

static bool v6_loopback(const struct in6_addr *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (IN6_IS_ADDR_LOOPBACK(a))
        return true;
    return memcmp(a->s6_addr, mapped, 12) == 0 && a->s6_addr[12] == 127;
}

/* The host (without brackets) and port of addr into host[size]; -1 when malformed. */
static int split_addr(const char *addr, char *host, size_t size, int *port)
{
    const char *colon;
    size_t host_len;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host_len = (size_t)(close - addr - 1);
        colon = close + 1;
        addr++;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
            return -1; /* no port, or a bare IPv6 address: it needs brackets */
        host_len = (size_t)(colon - addr);
    }
    if (host_len >= size)
        return -1;
    memcpy(host, addr, host_len);
    host[host_len] = '\0';
    return parse_port(colon + 1, port);
}

int sl__http_parse_addr(const char *addr, struct sockaddr_storage *out, bool *loopback, char *err,
                        size_t err_size)
{
    char host[64];
    int port = 0;
    memset(out, 0, sizeof(*out));
    if (split_addr(addr, host, sizeof host, &port) < 0) {
        snprintf(err, err_size, "expects HOST:PORT, [IPV6]:PORT or :PORT (a port of 0-65535)");
        return -1;
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (host[0] == '\0' || strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (addr[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
        return 0;
    }
    if (addr[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *loopback = v6_loopback(&v6->sin6_addr);
        return 0;
    }
    snprintf(err, err_size,
             "the host must be an IP address (IPv6 in brackets), localhost or empty");
    return -1;
}
