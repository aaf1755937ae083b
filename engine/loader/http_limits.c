/*
 * limits.http keys about the transport: `ca_file` (checked here: it must be a readable
 * PEM bundle), `proxy` (an http://, https://, socks5:// or socks5h:// URL whose only
 * expressions are ${{ env.NAME }}, expanded when the HTTP client starts so that a
 * credential never sits in the workflow's text), `h2c` and `max_streams`.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "loader/internal.h"

#define CA_FILE_BYTES_MAX (16u << 20)
#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"

static const char *const proxy_schemes[] = {"http://", "https://", "socks5://", "socks5h://", NULL};

/* One `${{ env.NAME }}` at `p` (just past "${{"): the name's bounds and where it ends. */
static bool env_expr(const char *p, const char **name, size_t *name_len, const char **end)
{
    while (*p == ' ')
        p++;
    if (strncmp(p, "env.", 4) != 0)
        return false;
    p += 4;
    *name = p;
    if (!(isalpha((unsigned char)*p) || *p == '_'))
        return false;
    while (isalnum((unsigned char)*p) || *p == '_')
        p++;
    *name_len = (size_t)(p - *name);
    while (*p == ' ')
        p++;
    if (strncmp(p, "}}", 2) != 0)
        return false;
    *end = p + 2;
    return true;
}

/* Appends `value`, percent-encoding what is not unreserved when it lands in credentials. */
static int add_value(sl_buf_t *b, const char *value, bool in_userinfo)
{
    int rc = 0;
    for (const char *v = value; rc == 0 && *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (!in_userinfo || isalnum(c) || strchr("-._~", c))
            rc = sl__buf_add(b, v, 1);
        else
            rc = sl__buf_addf(b, "%%%02X", c);
    }
    return rc;
}

int sl__loader_env_expand(const char *text, char **out, char *err, size_t err_size)
{
    const char *authority = strstr(text, "://");
    const char *at = strrchr(text, '@');
    sl_buf_t b;
    sl__buf_init(&b, 64 << 10);
    int rc = 0;
    const char *p = text;
    while (rc == 0 && *p) {
        const char *open = strstr(p, "${{");
        size_t plain = open ? (size_t)(open - p) : strlen(p);
        rc = sl__buf_add(&b, p, plain);
        if (open == NULL || rc < 0)
            break;
        const char *name, *end;
        size_t name_len;
        if (!env_expr(open + 3, &name, &name_len, &end)) {
            snprintf(err, err_size, "only ${{ env.NAME }} expressions are allowed here");
            rc = SL_EINVAL;
            break;
        }
        char var[128];
        snprintf(var, sizeof(var), "%.*s", (int)(name_len < 127 ? name_len : 127), name);
        const char *value = getenv(var);
        if (out && value == NULL) {
            snprintf(err, err_size, "the environment variable %s is not set", var);
            rc = SL_ENOTFOUND;
            break;
        }
        bool in_userinfo = authority && open > authority && at && open < at;
        if (out)
            rc = add_value(&b, value, in_userinfo);
        p = end;
    }
    if (rc == 0 && out && (*out = sl__buf_take(&b, NULL)) == NULL)
        rc = SL_ENOMEM;
    sl__buf_close(&b);
    if (rc == SL_ELIMIT) /* the buffer's bound: the other failures wrote their message */
        snprintf(err, err_size, "longer than 64 KiB once expanded");
    else if (rc == SL_ENOMEM)
        snprintf(err, err_size, "%s", sl_strerror(rc));
    return rc;
}

static void http_ca_file(sl_loader_t *ld, const sl_node_t *value)
{
    const char *text;
    sl_mark_t m;
    if (!sl__loader_text(ld, value, "ca_file", &text))
        return;
    if (*text == '\0' || sl__loader_has_expr(value, &m)) {
        sl__loader_problem(ld, value->mark,
                           "'ca_file' expects the path of a PEM file of CA "
                           "certificates (no expressions)");
        return;
    }
    sl_buf_t b;
    sl__buf_init(&b, 1 << 20);
    bool as_is = text[0] == '/' || strcmp(ld->wf->dir, ".") == 0;
    int rc = as_is ? sl__buf_addf(&b, "%s", text) : sl__buf_addf(&b, "%s/%s", ld->wf->dir, text);
    char *path = rc == 0 ? sl__buf_take(&b, NULL) : NULL;
    sl__buf_close(&b);
    if (path == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *data = NULL;
    const char *why = NULL;
    if (f == NULL)
        why = strerror(errno);
    else if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size > (off_t)CA_FILE_BYTES_MAX)
        why = "larger than 16 MiB";
    else if ((data = sl__calloc(1, (size_t)st.st_size + 1)) == NULL)
        why = "out of memory";
    else if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        why = "read error";
    else if (strstr(data, PEM_CERT_BEGIN) == NULL)
        why = "no PEM certificate in it (a line " PEM_CERT_BEGIN ")";
    if (f)
        fclose(f);
    sl__free(data);
    if (why) {
        sl__loader_problem(ld, value->mark, "'ca_file': cannot use '%s': %s", path, why);
        sl__free(path);
        return;
    }
    sl__free(ld->wf->limits.http_ca_file);
    ld->wf->limits.http_ca_file = path;
}

static void http_proxy(sl_loader_t *ld, const sl_node_t *value)
{
    const char *text;
    if (!sl__loader_text(ld, value, "proxy", &text))
        return;
    size_t k = 0;
    while (proxy_schemes[k] && strncmp(text, proxy_schemes[k], strlen(proxy_schemes[k])) != 0)
        k++;
    const char *rest = proxy_schemes[k] ? text + strlen(proxy_schemes[k]) : "";
    if (*rest == '\0' || *rest == '/' || strpbrk(rest, "\r\n")) {
        /* The value is not echoed: it may hold a password. */
        sl__loader_problem(ld, value->mark,
                           "'proxy' expects an http://, https://, socks5:// "
                           "or socks5h:// URL such as http://127.0.0.1:3128");
        return;
    }
    char err[128];
    if (sl__loader_env_expand(text, NULL, err, sizeof(err)) < 0) {
        sl__loader_problem(ld, value->mark, "'proxy': %s", err);
        return;
    }
    sl__free(ld->wf->limits.http_proxy);
    ld->wf->limits.http_proxy = sl__strdup(text);
    if (ld->wf->limits.http_proxy == NULL)
        sl__loader_fail(ld, SL_ENOMEM);
}

void sl__loader_http_transport(sl_loader_t *ld, const sl_node_t *node)
{
    const sl_node_t *value;
    sl_limits_t *l = &ld->wf->limits;
    if (sl__loader_entry(node, "ca_file", &value))
        http_ca_file(ld, value);
    if (sl__loader_entry(node, "proxy", &value))
        http_proxy(ld, value);
    if (sl__loader_entry(node, "h2c", &value))
        sl__loader_bool(ld, value, "h2c", &l->http_h2c);
    if (sl__loader_entry(node, "max_streams", &value))
        sl__loader_uint(ld, value, "max_streams", 1, 1000000, &l->http_max_streams);
}
