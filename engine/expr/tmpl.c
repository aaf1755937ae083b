/*
 * Templates, build side: a YAML node tree becomes a tree of literal values
 * and scalars split into text and `${{ … }}` expressions. Every expression is
 * syntax-checked here (once, at load time) so a typo is a FILE:LINE:COL
 * problem before anything runs. Evaluation lives in eval.c.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "expr/tmpl.h"

#define EXPR_OPEN "${{"
#define EXPR_ERR_MAX 256

typedef struct build_ctx {
    const char *file;
    sl_diag_t *diag;
    lua_State *L; /* throwaway state for syntax checks, created on first use */
    int status;   /* first error: SL_EINVAL for problems, SL_ENOMEM */
} build_ctx_t;

static void fail(build_ctx_t *ctx, int code)
{
    if (ctx->status == 0 || code == SL_ENOMEM)
        ctx->status = code;
}

/* ---- syntax check ------------------------------------------------------- */

/* Drops Lua's "chunk:LINE: " prefix from a message. */
static const char *strip_position(const char *msg, const char *chunk)
{
    size_t n = strlen(chunk);
    if (strncmp(msg, chunk, n) != 0 || msg[n] != ':')
        return msg;
    const char *p = msg + n + 1;
    while (*p >= '0' && *p <= '9')
        p++;
    return p[0] == ':' && p[1] == ' ' ? p + 2 : msg;
}

static int check_in(lua_State *L, const char *src, size_t len, char *err, size_t err_size)
{
    static const char head[] = "return (", tail[] = "\n)";
    size_t n = sizeof(head) - 1 + len + sizeof(tail) - 1;
    char *chunk = sl__malloc(n + 1);
    if (chunk == NULL)
        return SL_ENOMEM;
    memcpy(chunk, head, sizeof(head) - 1);
    memcpy(chunk + sizeof(head) - 1, src, len);
    memcpy(chunk + sizeof(head) - 1 + len, tail, sizeof(tail));
    int status = luaL_loadbufferx(L, chunk, n, "=expression", "t");
    sl__free(chunk);
    int rc = 0;
    if (status == LUA_ERRMEM) {
        rc = SL_ENOMEM;
    } else if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (err && err_size)
            snprintf(err, err_size, "expression syntax error: %s",
                     strip_position(msg ? msg : "?", "expression"));
        rc = SL_EPARSE;
    }
    lua_settop(L, 0);
    return rc;
}

int sl__expr_check(const char *src, size_t len, char *err, size_t err_size)
{
    lua_State *L = luaL_newstate();
    if (L == NULL)
        return SL_ENOMEM;
    int rc = check_in(L, src, len, err, err_size);
    lua_close(L);
    return rc;
}

/* ---- building ----------------------------------------------------------- */

static sl_tmpl_t *tmpl_alloc(tmpl_kind_t kind, sl_mark_t mark)
{
    sl_tmpl_t *t = sl__calloc(1, sizeof(*t));
    if (t) {
        t->kind = kind;
        t->mark = mark;
    }
    return t;
}

/*
 * Where offset `at` of a scalar's text is in the file. Exact for scalars on
 * one line (a quoted one starts one column after its quote); other scalars
 * report their own start.
 */
static sl_mark_t mark_at(const sl_node_t *node, size_t at)
{
    sl_mark_t m = node->mark;
    if (m.line == 0 || memchr(node->str, '\n', node->len) != NULL)
        return m;
    uint32_t chars = 0;
    for (size_t i = 0; i < at; i++)
        if (((unsigned char)node->str[i] & 0xc0) != 0x80)
            chars++;
    m.col += chars + (node->plain ? 0 : 1);
    return m;
}

typedef struct ref_ctx {
    sl_tmpl_t *t;
    sl_mark_t mark;
} ref_ctx_t;

static int add_ref(void *ud, const char *id, size_t id_len)
{
    ref_ctx_t *rc = ud;
    sl_tmpl_t *t = rc->t;
    tmpl_ref_t *refs = sl__realloc(t->refs, (t->ref_count + 1) * sizeof(*refs));
    if (refs == NULL)
        return SL_ENOMEM;
    t->refs = refs;
    refs[t->ref_count].step = sl__strndup(id, id_len);
    if (refs[t->ref_count].step == NULL)
        return SL_ENOMEM;
    refs[t->ref_count++].mark = rc->mark;
    return 0;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && strchr(" \t\r\n", (*s)[0]) != NULL) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && strchr(" \t\r\n", (*s)[*len - 1]) != NULL)
        (*len)--;
}

/* Checks one expression and records it as a part of `t`. */
static void add_expr(build_ctx_t *ctx, sl_tmpl_t *t, const char *src, size_t len, sl_mark_t mark)
{
    trim(&src, &len);
    if (len == 0) {
        sl__diag_add(ctx->diag, ctx->file, mark, "empty expression");
        fail(ctx, SL_EINVAL);
        return;
    }
    if (ctx->L == NULL && (ctx->L = luaL_newstate()) == NULL) {
        fail(ctx, SL_ENOMEM);
        return;
    }
    char err[EXPR_ERR_MAX];
    int rc = check_in(ctx->L, src, len, err, sizeof(err));
    if (rc == SL_EPARSE) {
        sl__diag_add(ctx->diag, ctx->file, mark, "%s", err);
        fail(ctx, SL_EINVAL);
        return;
    }
    ref_ctx_t refs = {t, mark};
    if (rc == 0)
        rc = sl__expr_scan_refs(src, len, add_ref, &refs);
    if (rc < 0) {
        fail(ctx, rc);
        return;
    }
    t->parts[t->part_count++] = (tmpl_part_t){src, len, mark, true};
    t->flags |= SL_TMPL_HAS_EXPR;
    if (sl__expr_uses_item(src, len))
        t->flags |= SL_TMPL_USES_ITEM;
}

/* Splits the scalar's text (already copied to t->text) into parts. */
static void split_scalar(build_ctx_t *ctx, const sl_node_t *node, sl_tmpl_t *t)
{
    const char *text = t->text;
    size_t len = node->len, pos = 0;
    while (pos < len) {
        const char *open = strstr(text + pos, EXPR_OPEN);
        size_t at = open ? (size_t)(open - text) : len;
        if (at > pos)
            t->parts[t->part_count++] = (tmpl_part_t){text + pos, at - pos, {0, 0}, false};
        if (open == NULL)
            break;
        size_t start = at + 3;
        size_t end = start + sl__expr_find_end(text + start, len - start);
        if (end >= len) {
            sl__diag_add(ctx->diag, ctx->file, mark_at(node, at),
                         "unterminated expression: missing '}}'");
            fail(ctx, SL_EINVAL);
            return;
        }
        add_expr(ctx, t, text + start, end - start, mark_at(node, at));
        pos = end + 2;
    }
}

static sl_tmpl_t *build_scalar(build_ctx_t *ctx, const sl_node_t *node)
{
    if (memchr(node->str, '\0', node->len) != NULL || strstr(node->str, EXPR_OPEN) == NULL) {
        sl_value_t *v = NULL;
        int rc = sl__yaml_scalar_value(node->str, node->len, node->plain, &v);
        sl_tmpl_t *t = rc == 0 ? tmpl_alloc(TMPL_VALUE, node->mark) : NULL;
        if (t == NULL) {
            sl_value_free(v);
            fail(ctx, rc < 0 ? rc : SL_ENOMEM);
            return NULL;
        }
        t->literal = v;
        return t;
    }
    sl_tmpl_t *t = tmpl_alloc(TMPL_TEXT, node->mark);
    size_t max_parts = 1;
    for (const char *p = node->str; (p = strstr(p, EXPR_OPEN)) != NULL; p += 3)
        max_parts += 2;
    if (t == NULL || (t->text = sl__strndup(node->str, node->len)) == NULL ||
        (t->parts = sl__calloc(max_parts, sizeof(*t->parts))) == NULL) {
        sl__tmpl_free(t);
        fail(ctx, SL_ENOMEM);
        return NULL;
    }
    split_scalar(ctx, node, t);
    const char *id;
    size_t id_len;
    if (t->part_count == 1 && t->parts[0].expr &&
        sl__expr_single_ref(t->parts[0].text, t->parts[0].len, &id, &id_len) &&
        (t->stream_ref = sl__strndup(id, id_len)) == NULL)
        fail(ctx, SL_ENOMEM);
    return t;
}

static sl_tmpl_t *build(build_ctx_t *ctx, const sl_node_t *node);

/* A list or map without expressions becomes one literal value. */
static void collapse(build_ctx_t *ctx, sl_tmpl_t *t)
{
    sl_value_t *v = t->kind == TMPL_LIST ? sl_value_list() : sl_value_map();
    int rc = v ? 0 : SL_ENOMEM;
    if (rc == 0 && t->kind == TMPL_LIST)
        rc = sl_value_reserve(v, t->child_count);
    for (size_t i = 0; i < t->child_count && rc == 0; i++) {
        sl_value_t *item = t->children[i]->literal;
        t->children[i]->literal = NULL;
        if (t->kind == TMPL_LIST) /* map keys come from a YAML map: unique */
            rc = sl_value_push(v, item);
        else
            rc = sl__value_map_append_key(v, t->keys[i], item);
    }
    if (rc < 0) {
        sl_value_free(v);
        fail(ctx, rc);
        return;
    }
    for (size_t i = 0; i < t->child_count; i++) {
        sl__tmpl_free(t->children[i]);
        if (t->keys)
            sl__vstr_drop(t->keys[i]);
    }
    sl__free(t->children);
    sl__free(t->keys);
    t->children = NULL;
    t->keys = NULL;
    t->child_count = 0;
    t->kind = TMPL_VALUE;
    t->literal = v;
}

static sl_tmpl_t *build_collection(build_ctx_t *ctx, const sl_node_t *node)
{
    bool is_map = node->kind == SL_NODE_MAP;
    sl_tmpl_t *t = tmpl_alloc(is_map ? TMPL_MAP : TMPL_LIST, node->mark);
    if (t != NULL && node->count > 0) {
        t->children = sl__calloc(node->count, sizeof(*t->children));
        t->keys = is_map ? sl__calloc(node->count, sizeof(*t->keys)) : NULL;
    }
    if (t == NULL || (node->count > 0 && t->children == NULL) ||
        (is_map && node->count > 0 && t->keys == NULL)) {
        sl__tmpl_free(t);
        fail(ctx, SL_ENOMEM);
        return NULL;
    }
    t->child_count = node->count; /* slots stay NULL where building failed */
    for (size_t i = 0; i < node->count; i++) {
        const sl_node_t *value = is_map ? node->items[2 * i + 1] : node->items[i];
        if (is_map) {
            const sl_node_t *key = node->items[2 * i];
            if (key->kind != SL_NODE_SCALAR) {
                sl__diag_add(ctx->diag, ctx->file, key->mark, "a map key must be a scalar");
                fail(ctx, SL_EINVAL);
                continue;
            }
            if ((t->keys[i] = sl__vstr_new(key->str, key->len)) == NULL) {
                fail(ctx, SL_ENOMEM);
                continue;
            }
        }
        sl_tmpl_t *child = build(ctx, value);
        t->children[i] = child;
        if (child)
            t->flags |= child->flags;
    }
    if (ctx->status == 0 && !(t->flags & SL_TMPL_HAS_EXPR))
        collapse(ctx, t);
    return t;
}

static sl_tmpl_t *build(build_ctx_t *ctx, const sl_node_t *node)
{
    if (node->kind == SL_NODE_SCALAR)
        return build_scalar(ctx, node);
    return build_collection(ctx, node);
}

int sl__tmpl_new(const sl_node_t *node, const char *file, sl_tmpl_t **out, sl_diag_t *diag)
{
    *out = NULL;
    if (node == NULL) {
        sl_value_t *nil = sl_value_nil();
        return nil ? sl__tmpl_from_value(nil, out) : SL_ENOMEM;
    }
    build_ctx_t ctx = {file, diag, NULL, 0};
    sl_tmpl_t *t = build(&ctx, node);
    if (ctx.L)
        lua_close(ctx.L);
    if (ctx.status == 0 && t == NULL)
        ctx.status = SL_ENOMEM;
    if (ctx.status < 0) {
        sl__tmpl_free(t);
        return ctx.status;
    }
    *out = t;
    return 0;
}

int sl__tmpl_from_value(sl_value_t *v, sl_tmpl_t **out)
{
    *out = NULL;
    if (v == NULL)
        return SL_ENOMEM;
    sl_tmpl_t *t = tmpl_alloc(TMPL_VALUE, (sl_mark_t){0, 0});
    if (t == NULL) {
        sl_value_free(v);
        return SL_ENOMEM;
    }
    t->literal = v;
    *out = t;
    return 0;
}

void sl__tmpl_free(sl_tmpl_t *t)
{
    if (t == NULL)
        return;
    sl_value_free(t->literal);
    sl__free(t->text);
    sl__free(t->parts);
    for (size_t i = 0; i < t->child_count; i++) {
        sl__tmpl_free(t->children[i]);
        if (t->keys)
            sl__vstr_drop(t->keys[i]);
    }
    sl__free(t->children);
    sl__free(t->keys);
    for (size_t i = 0; i < t->ref_count; i++)
        sl__free(t->refs[i].step);
    sl__free(t->refs);
    sl__free(t->stream_ref);
    sl__free(t);
}

/* ---- accessors ---------------------------------------------------------- */

unsigned sl__tmpl_flags(const sl_tmpl_t *t)
{
    return t ? t->flags : 0;
}

sl_mark_t sl__tmpl_mark(const sl_tmpl_t *t)
{
    return t ? t->mark : (sl_mark_t){0, 0};
}

const sl_value_t *sl__tmpl_literal(const sl_tmpl_t *t)
{
    return t && t->kind == TMPL_VALUE ? t->literal : NULL;
}

void sl__tmpl_each_ref(const sl_tmpl_t *t,
                       void (*fn)(void *ud, const char *step, sl_mark_t mark), void *ud)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ref_count; i++)
        fn(ud, t->refs[i].step, t->refs[i].mark);
    for (size_t i = 0; i < t->child_count; i++)
        sl__tmpl_each_ref(t->children[i], fn, ud);
}

typedef struct var_ref_ctx {
    int (*fn)(void *ud, const char *name, size_t len, sl_mark_t mark);
    void *ud;
    sl_mark_t mark;
} var_ref_ctx_t;

static int on_var_ref(void *ud, const char *name, size_t len)
{
    var_ref_ctx_t *c = ud;
    return c->fn(c->ud, name, len, c->mark);
}

int sl__tmpl_each_var_ref(const sl_tmpl_t *t,
                          int (*fn)(void *ud, const char *name, size_t len, sl_mark_t mark),
                          void *ud)
{
    if (t == NULL)
        return 0;
    int rc = 0;
    for (size_t i = 0; i < t->part_count && rc == 0; i++) {
        const tmpl_part_t *p = &t->parts[i];
        var_ref_ctx_t c = {fn, ud, p->mark};
        if (p->expr)
            rc = sl__expr_scan_fields(p->text, p->len, "vars", on_var_ref, &c);
    }
    for (size_t i = 0; i < t->child_count && rc == 0; i++)
        rc = sl__tmpl_each_var_ref(t->children[i], fn, ud);
    return rc;
}

const char *sl__tmpl_stream_ref(const sl_tmpl_t *t)
{
    return t ? t->stream_ref : NULL;
}
