/*
 * sluice.url.join, sluice.url.parse, sluice.url.normalize (SPEC §4), and the C function
 * behind the expressions' url_join helper (handed to the VM by sl__lua_entry, since vm/ sits
 * below io/ and cannot reach libcurl itself: docs/architecture.md).
 *
 * The parsing and the RFC 3986 §5.2 resolution are libcurl's URL API (curl_url, opened with
 * dlopen by io/curl.h). Three cases are settled here, where curl 7.88 differs from §5.4:
 * an empty reference is the base (curl drops the last segment), a reference of a fragment
 * only keeps the base's path and query (curl drops the last segment), and an absolute
 * reference of a scheme without "//" ("mailto:x", "g:h", "javascript:f()") is the result
 * as it stands (curl refuses it). The same functions run on the loop and in a worker.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/curl.h"
#include "lua/fiber.h"
#include "lua/url.h"

/* URLs longer than this are refused before curl sees them (curl's own cap is 8 MB). */
#define URL_MAX_BYTES (64 * 1024)

/* The curl flags every parse uses: any scheme, dot segments removed. */
#define URL_FLAGS (CURLU_NON_SUPPORT_SCHEME)

/* Fills `err` and returns the SL_E code for a failure of `what` on `url`. */
static int url_error(const char *what, const char *url, const char *reason, char *err,
                     size_t err_size)
{
    snprintf(err, err_size, "bad %s '%.200s%s': %s", what, url, strlen(url) > 200 ? "..." : "",
             reason);
    return SL_EINVAL;
}

/* Opens libcurl; on failure writes why to `err` and returns its code. */
static int url_ready(char *err, size_t err_size)
{
    char why[256];
    if (sl__curl_open(why, sizeof(why)) < 0) {
        snprintf(err, err_size, "%s", why);
        return SL_ENOTFOUND;
    }
    return 0;
}

/* Length of the scheme of `ref` ("http" in "http://x"), or 0 when it has none (RFC 3986
 * §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) followed by ':'). */
static size_t scheme_len(const char *ref)
{
    if (!isalpha((unsigned char)ref[0]))
        return 0;
    size_t i = 1;
    while (isalnum((unsigned char)ref[i]) || ref[i] == '+' || ref[i] == '-' || ref[i] == '.')
        i++;
    return ref[i] == ':' ? i : 0;
}

/* A handle holding `url` parsed, or NULL with `err` filled (`what` names the argument). */
static CURLU *url_parse_handle(const char *url, const char *what, int *code, char *err,
                               size_t err_size)
{
    if (strlen(url) > URL_MAX_BYTES) {
        *code = url_error(what, url, "longer than 64 KiB", err, err_size);
        return NULL;
    }
    CURLU *h = curl_url();
    if (h == NULL) {
        *code = SL_ENOMEM;
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    CURLUcode rc = curl_url_set(h, CURLUPART_URL, url, URL_FLAGS);
    if (rc != CURLUE_OK) {
        *code = url_error(what, url, curl_url_strerror(rc), err, err_size);
        curl_url_cleanup(h);
        return NULL;
    }
    return h;
}

/* The whole URL of `h` as a new string (sl__strdup), or NULL with `err`. */
static char *url_text(CURLU *h, unsigned flags, const char *url, int *code, char *err,
                      size_t err_size)
{
    char *part = NULL;
    CURLUcode rc = curl_url_get(h, CURLUPART_URL, &part, flags);
    if (rc != CURLUE_OK) {
        *code = url_error("URL", url, curl_url_strerror(rc), err, err_size);
        return NULL;
    }
    char *copy = sl__strdup(part);
    curl_free(part);
    if (copy == NULL) {
        *code = SL_ENOMEM;
        snprintf(err, err_size, "out of memory");
    }
    return copy;
}

/* A reference curl resolves against the base handle `h` (everything but the cases in the
 * header comment). */
static char *join_resolved(CURLU *h, const char *ref, int *code, char *err, size_t err_size)
{
    CURLUcode rc;
    if (ref[0] == '\0')
        rc = curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
    else if (ref[0] == '#')
        rc = curl_url_set(h, CURLUPART_FRAGMENT, ref + 1, 0);
    else
        rc = curl_url_set(h, CURLUPART_URL, ref, URL_FLAGS);
    if (rc != CURLUE_OK) {
        *code = url_error("reference", ref, curl_url_strerror(rc), err, err_size);
        return NULL;
    }
    return url_text(h, 0, ref, code, err, err_size);
}

int sl__url_join(const char *base, const char *ref, char **out, char *err, size_t err_size)
{
    int code = url_ready(err, err_size);
    if (code < 0)
        return code;
    if (strlen(ref) > URL_MAX_BYTES)
        return url_error("reference", ref, "longer than 64 KiB", err, err_size);
    CURLU *h = url_parse_handle(base, "base URL", &code, err, err_size);
    if (h == NULL)
        return code;
    size_t scheme = scheme_len(ref);
    if (scheme > 0 && strncmp(ref + scheme, "://", 3) != 0) {
        /* An opaque absolute reference: §5.2.2 takes it as it is. */
        curl_url_cleanup(h);
        if ((*out = sl__strdup(ref)) == NULL)
            return SL_ENOMEM;
        return 0;
    }
    *out = join_resolved(h, ref, &code, err, err_size);
    curl_url_cleanup(h);
    return *out ? 0 : code;
}

static int url_normalize_once(const char *url, char **out, char *err, size_t err_size);

/* Lower-cases the host of `h` (curl keeps its case). */
static int lower_host(CURLU *h)
{
    char *host = NULL;
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        return 0; /* no host ("file:///x") */
    for (char *c = host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    CURLUcode rc = curl_url_set(h, CURLUPART_HOST, host, 0);
    curl_free(host);
    return rc == CURLUE_OK ? 0 : SL_EINVAL;
}

static int hex_value(char c)
{
    if (isdigit((unsigned char)c))
        return c - '0';
    return isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10 : -1;
}

/* RFC 3986 §6.2.2.1-2 in place, from `from` on (the path, query): a percent-encoded
 * unreserved character is decoded ("%7e" is "~"), other escapes get upper-case digits. */
static bool normalize_escapes(char *text, size_t from)
{
    static const char hex[] = "0123456789ABCDEF";
    char *in = text + from, *out = in;
    bool decoded = false;
    while (*in) {
        int hi = in[0] == '%' ? hex_value(in[1]) : -1, lo = hi >= 0 ? hex_value(in[2]) : -1;
        if (lo < 0) {
            *out++ = *in++;
            continue;
        }
        char c = (char)(hi * 16 + lo);
        if (isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *out++ = c;
            decoded = true;
        } else {
            *out++ = '%';
            *out++ = hex[hi];
            *out++ = hex[lo];
        }
        in += 3;
    }
    *out = '\0';
    return decoded;
}

/* Where the path of absolute URL `url` starts (after "scheme://authority"). */
static size_t path_start(const char *url)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return 0;
    p += 3;
    p += strcspn(p, "/?#");
    return (size_t)(p - url);
}

int sl__url_normalize(const char *url, char **out, char *err, size_t err_size)
{
    char *first = NULL;
    int code = url_normalize_once(url, &first, err, err_size);
    if (code < 0)
        return code;
    if (!normalize_escapes(first, path_start(first))) {
        *out = first;
        return 0;
    }
    /* decoding may have made dot segments ("%2E%2E"): curl removes them on a second pass */
    code = url_normalize_once(first, out, err, err_size);
    sl__free(first);
    return code;
}

static int url_normalize_once(const char *url, char **out, char *err, size_t err_size)
{
    int code = url_ready(err, err_size);
    if (code < 0)
        return code;
    CURLU *h = url_parse_handle(url, "URL", &code, err, err_size);
    if (h == NULL)
        return code;
    /* curl lower-cases the scheme and removes dot segments as it parses. */
    if (lower_host(h) < 0 || curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK) {
        curl_url_cleanup(h);
        return url_error("URL", url, "cannot normalise its host", err, err_size);
    }
    *out = url_text(h, CURLU_NO_DEFAULT_PORT, url, &code, err, err_size);
    curl_url_cleanup(h);
    return *out ? 0 : code;
}

/* ---- Lua ------------------------------------------------------------------------------- */

/* A string argument without NUL bytes. Raises. */
static const char *url_arg(lua_State *L, int arg, const char *fn)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    if (strlen(s) != len)
        luaL_error(L, "%s: argument %d holds a NUL byte", fn, arg);
    return s;
}

/* Pushes the outcome of a URL function: its string (held in `box` while Lua copies it, so
 * that no malloc'd local survives a call that can raise) or raises "FN: ERR". */
static int push_outcome(lua_State *L, sl_vm_box_t *box, const char *fn, int code, char *text,
                        const char *err)
{
    box->text = text;
    if (code < 0)
        return luaL_error(L, "%s: %s", fn, code == SL_ENOMEM ? "out of memory" : err);
    lua_pushstring(L, text);
    sl__vm_box_clear(box);
    return 1;
}

static int l_url_join(lua_State *L)
{
    const char *base = url_arg(L, 1, "sluice.url.join");
    const char *ref = url_arg(L, 2, "sluice.url.join");
    sl_vm_box_t *box = sl__vm_box(L); /* made before the C work: nothing can be lost */
    char err[512], *out = NULL;
    int code = sl__url_join(base, ref, &out, err, sizeof(err));
    return push_outcome(L, box, "sluice.url.join", code, out, err);
}

static int l_url_normalize(lua_State *L)
{
    const char *url = url_arg(L, 1, "sluice.url.normalize");
    sl_vm_box_t *box = sl__vm_box(L);
    char err[512], *out = NULL;
    int code = sl__url_normalize(url, &out, err, sizeof(err));
    return push_outcome(L, box, "sluice.url.normalize", code, out, err);
}

/* The curl handle of a parse, in a userdata whose __gc frees it on any exit. */
typedef struct parse_ud {
    CURLU *h;
} parse_ud_t;

static int l_parse_gc(lua_State *L)
{
    parse_ud_t *ud = lua_touserdata(L, 1);
    if (ud->h)
        curl_url_cleanup(ud->h);
    ud->h = NULL;
    return 0;
}

/* Sets result[name] (the table at -1) to the part of `h`, when the URL has it. Raises. */
static void set_part(lua_State *L, CURLU *h, CURLUPart part, const char *name)
{
    char *text = NULL;
    if (curl_url_get(h, part, &text, 0) != CURLUE_OK || text == NULL)
        return;
    sl_vm_box_t *box = sl__vm_box(L);
    box->text = sl__strdup(text);
    curl_free(text);
    if (box->text == NULL)
        luaL_error(L, "sluice.url.parse: out of memory");
    if (part == CURLUPART_PORT)
        lua_pushinteger(L, (lua_Integer)strtol(box->text, NULL, 10));
    else
        lua_pushstring(L, box->text);
    sl__vm_box_clear(box);
    lua_setfield(L, -3, name);
    lua_pop(L, 1); /* the box */
}

static int l_url_parse(lua_State *L)
{
    static const struct {
        CURLUPart part;
        const char *name;
    } parts[] = {{CURLUPART_SCHEME, "scheme"},     {CURLUPART_USER, "user"},
                 {CURLUPART_PASSWORD, "password"}, {CURLUPART_HOST, "host"},
                 {CURLUPART_PORT, "port"},         {CURLUPART_PATH, "path"},
                 {CURLUPART_QUERY, "query"},       {CURLUPART_FRAGMENT, "fragment"}};
    const char *url = url_arg(L, 1, "sluice.url.parse");
    parse_ud_t *ud = lua_newuserdatauv(L, sizeof(*ud), 0);
    ud->h = NULL;
    if (luaL_newmetatable(L, "sluice.url_handle")) {
        lua_pushcfunction(L, l_parse_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    char err[512];
    int code = url_ready(err, sizeof(err));
    if (code == 0)
        ud->h = url_parse_handle(url, "URL", &code, err, sizeof(err));
    if (ud->h == NULL)
        return luaL_error(L, "sluice.url.parse: %s", code == SL_ENOMEM ? "out of memory" : err);
    lua_createtable(L, 0, 8);
    for (size_t i = 0; i < SL_COUNTOF(parts); i++)
        set_part(L, ud->h, parts[i].part, parts[i].name);
    curl_url_cleanup(ud->h);
    ud->h = NULL;
    return 1;
}

/* The expressions' url_join(base, ref) (vm/helpers.c calls it through sl__vm_url_join). */
static int l_helper_url_join(lua_State *L)
{
    const char *base = url_arg(L, 1, "url_join");
    const char *ref = url_arg(L, 2, "url_join");
    sl_vm_box_t *box = sl__vm_box(L);
    char err[512], *out = NULL;
    int code = sl__url_join(base, ref, &out, err, sizeof(err));
    return push_outcome(L, box, "url_join", code, out, err);
}

lua_CFunction sl__url_helper(void)
{
    return l_helper_url_join;
}

static const luaL_Reg url_funcs[] = {
    {"join", l_url_join},
    {"parse", l_url_parse},
    {"normalize", l_url_normalize},
    {NULL, NULL},
};

void sl__url_open(lua_State *L, int module)
{
    luaL_newlib(L, url_funcs);
    lua_setfield(L, module, "url");
}
