/*
 * robots.txt obedience (RFC 9309), with limits.http.robots: true. A host's
 * robots.txt is fetched once, ahead of its first request, through the same
 * client; its requests wait meanwhile. The group for "sluice" applies, else
 * the "*" group. Longest matching rule wins, Allow on a tie; `*` and a final
 * `$` work as in the RFC. Crawl-delay becomes the host's rate unless
 * limits.http.rate is set. A missing robots.txt (4xx) allows everything; an
 * unreachable one (5xx, network error) disallows everything, as the RFC asks.
 */
#define _GNU_SOURCE /* strcasestr */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/internal.h"

#define ROBOTS_BYTES_MAX (512 << 10)
#define ROBOTS_RULES_MAX 4096

typedef struct rule {
    bool allow;
    char *pattern;
} rule_t;

struct robots {
    bool disallow_all;
    rule_t *rules;
    size_t rule_count, rule_cap;
    double crawl_delay_s;
};

void sl__io_robots_free(robots_t *robots)
{
    if (robots == NULL)
        return;
    for (size_t i = 0; i < robots->rule_count; i++)
        sl__free(robots->rules[i].pattern);
    sl__free(robots->rules);
    sl__free(robots);
}

/*
 * A rule matches a path that starts with it, where `*` matches any run of characters,
 * or, with a final `$`, the whole path. Greedy with one backtrack point (the last `*`):
 * O(pattern x path) at worst, never exponential, whatever a server sends.
 */
static bool pattern_matches(const char *pattern, const char *path)
{
    size_t plen = strlen(pattern);
    bool anchored = plen > 0 && pattern[plen - 1] == '$';
    if (anchored)
        plen--;
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    for (;;) {
        if (pi == plen && (!anchored || path[si] == '\0'))
            return true;
        if (path[si] == '\0')
            break;
        if (pi < plen && pattern[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < plen && pattern[pi] == path[si]) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < plen && pattern[pi] == '*')
        pi++;
    return pi == plen;
}

bool sl__io_robots_allows(const robots_t *robots, const char *path, const char **rule)
{
    if (robots->disallow_all) {
        *rule = "robots.txt unreachable: everything disallowed";
        return false;
    }
    const rule_t *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < robots->rule_count; i++) {
        const rule_t *r = &robots->rules[i];
        size_t len = strlen(r->pattern);
        if (!pattern_matches(r->pattern, path))
            continue;
        if (best == NULL || len > best_len || (len == best_len && r->allow && !best->allow)) {
            best = r;
            best_len = len;
        }
    }
    if (best && !best->allow) {
        static __thread char text[160];
        snprintf(text, sizeof(text), "Disallow: %.140s", best->pattern);
        *rule = text;
        return false;
    }
    return true;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int add_rule(robots_t *robots, bool allow, const char *pattern)
{
    if (robots->rule_count == ROBOTS_RULES_MAX)
        return 0; /* a longer file is cut, as crawlers do */
    if (sl__array_grow(&robots->rules, &robots->rule_cap, robots->rule_count,
                       sizeof(*robots->rules), 16) < 0)
        return SL_ENOMEM;
    char *copy = sl__strdup(pattern);
    if (copy == NULL)
        return SL_ENOMEM;
    robots->rules[robots->rule_count].allow = allow;
    robots->rules[robots->rule_count].pattern = copy;
    robots->rule_count++;
    return 0;
}

/*
 * Parses the body in two passes: the first finds whether a group names us, the
 * second keeps that group's rules (or the "*" group's).
 */
/* Whether a User-agent line (not a comment, not a path) names us. */
static bool names_us(const char *text)
{
    for (const char *line = text; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        while (*line == ' ' || *line == '\t')
            line++;
        if (strncasecmp(line, "user-agent:", 11) != 0)
            continue;
        size_t len = strcspn(line, "#\n");
        char value[256];
        snprintf(value, sizeof(value), "%.*s", (int)(len < 255 ? len : 255), line);
        if (strcasestr(value + 11, "sluice"))
            return true;
    }
    return false;
}

static int parse(robots_t *robots, char *text)
{
    bool named = names_us(text);
    int rc = 0;
    bool in_group = false, group_open = false, ours = false;
    for (char *line = text; line && rc == 0;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            char *key = trim(line), *value = trim(colon + 1);
            if (strcasecmp(key, "user-agent") == 0) {
                if (!group_open)
                    ours = false; /* a new group starts */
                group_open = true;
                bool match = named ? strcasestr(value, "sluice") != NULL : strcmp(value, "*") == 0;
                ours = ours || match;
                in_group = ours;
            } else {
                group_open = false;
                if (in_group && strcasecmp(key, "disallow") == 0 && *value)
                    rc = add_rule(robots, false, value);
                else if (in_group && strcasecmp(key, "allow") == 0 && *value)
                    rc = add_rule(robots, true, value);
                else if (in_group && strcasecmp(key, "crawl-delay") == 0)
                    robots->crawl_delay_s = strtod(value, NULL);
            }
        }
        line = next;
    }
    return rc;
}

int sl__io_robots_parse(const char *text, size_t len, robots_t **out)
{
    robots_t *robots = sl__calloc(1, sizeof(*robots));
    char *copy = sl__strndup(text, len);
    int rc = robots && copy ? parse(robots, copy) : SL_ENOMEM;
    sl__free(copy);
    if (rc < 0) {
        sl__io_robots_free(robots);
        return rc;
    }
    *out = robots;
    return 0;
}

double sl__io_robots_crawl_delay(const robots_t *robots)
{
    return robots->crawl_delay_s;
}

static void on_robots(void *ud, int code, sl_value_t *response, const char *message,
                      int64_t retry_after_ms)
{
    host_t *host = ud;
    sl_http_client_t *client = host->client;
    host->robots_state = ROBOTS_KNOWN;
    if (code == SL_ECANCELED) {
        sl_value_free(response);
        return;
    }
    robots_t *robots = sl__calloc(1, sizeof(*robots));
    int64_t status = code == 0 ? sl_value_int_of(sl_value_get(response, "status")) : 0;
    if (robots == NULL) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "robots.txt of %s: out of memory; not obeyed", host->key);
    } else if (status >= 200 && status < 300) {
        size_t len = 0;
        const char *body = sl_value_str(sl_value_get(response, "body"), &len);
        char *text = body ? sl__strndup(body, len) : NULL;
        if (text == NULL || parse(robots, text) < 0)
            SL_LOG(SL_LOG_WARN, NULL, NULL, "robots.txt of %s: out of memory", host->key);
        sl__free(text);
        if (robots->crawl_delay_s > 0 && client->limits.rate == 0)
            host->rate = 1.0 / robots->crawl_delay_s;
    } else if (status < 400 || status >= 500) {
        robots->disallow_all = true;
        SL_LOG(SL_LOG_WARN, NULL, NULL,
               "robots.txt of %s is unreachable (%s); treating the site as disallowed",
               host->key, code < 0 ? message : "server error");
    }
    host->robots = robots;
    sl_value_free(response);
    sl__io_hosts_wake(host);
}

/* Queues the host's robots.txt request ahead of its others. */
int sl__io_robots_fetch(host_t *host)
{
    sl_http_client_t *client = host->client;
    sl_value_t *opts = sl_value_map();
    sl_buf_t url;
    sl__buf_init(&url, 8192);
    int rc = opts && sl__buf_addf(&url, "%s/robots.txt", host->key) == 0 ? 0 : SL_ENOMEM;
    if (rc == 0 && (sl_value_set(opts, "url", sl_value_cstring(url.data)) < 0 ||
                    sl_value_set(opts, "expect", sl_value_cstring("100-599")) < 0 ||
                    sl_value_set(opts, "max_bytes", sl_value_int(ROBOTS_BYTES_MAX)) < 0 ||
                    sl_value_set(opts, "timeout", sl_value_int(30)) < 0))
        rc = SL_ENOMEM;
    sl__buf_close(&url);
    sl_http_t *req = rc == 0 ? sl__io_http_new_request(client, 0, on_robots, host) : NULL;
    char err[256];
    if (req == NULL || sl__io_request_parse(req, opts, err, sizeof(err)) < 0) {
        if (req) {
            req->done = NULL;
            sl__io_http_release(req);
        }
        sl_value_free(opts);
        return SL_ENOMEM;
    }
    sl_value_free(opts);
    req->internal = true;
    host->robots_state = ROBOTS_FETCHING;
    rc = sl__io_hosts_enqueue(client, req);
    if (rc < 0) {
        host->robots_state = ROBOTS_UNKNOWN;
        req->done = NULL;
        sl__io_http_release(req);
    }
    return rc;
}
