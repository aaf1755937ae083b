/*
 * Values across the Lua boundary. Pushing runs where Lua may raise (inside a
 * protected call); pulling never raises: it only walks tables with lua_next
 * and lua_rawgeti and formats integer keys itself, so it can run on any
 * stack and keep plain C allocations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/internal.h"

const char sl__vm_null_sentinel = 0;

/* ---- push --------------------------------------------------------------- */

void sl__vm_new_list(lua_State *L, int n)
{
    lua_createtable(L, n, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sl__vm_of(L)->list_mt_ref);
    lua_setmetatable(L, -2);
}

void sl__vm_push_raw(lua_State *L, const sl_value_t *v, int depth)
{
    luaL_checkstack(L, 4, "value nests too deeply");
    switch (v ? v->type : SL_TYPE_NIL) {
    case SL_TYPE_NIL:
        if (depth == 0)
            lua_pushnil(L);
        else
            lua_pushlightuserdata(L, SL_VM_NULL);
        return;
    case SL_TYPE_BOOL:
        lua_pushboolean(L, v->as.b);
        return;
    case SL_TYPE_INT:
        lua_pushinteger(L, (lua_Integer)v->as.i);
        return;
    case SL_TYPE_NUMBER:
        lua_pushnumber(L, v->as.n);
        return;
    case SL_TYPE_STRING:
        lua_pushlstring(L, v->as.s->data, v->as.s->len);
        return;
    default:
        break;
    }
    if (depth >= SL_VM_DEPTH_MAX)
        luaL_error(L, "value nests deeper than %d levels", SL_VM_DEPTH_MAX);
    if (v->type == SL_TYPE_LIST) {
        const sl_vlist_t *l = v->as.list;
        sl__vm_new_list(L, l->len > INT32_MAX ? 0 : (int)l->len);
        for (size_t i = 0; i < l->len; i++) {
            sl__vm_push_raw(L, &l->items[i], depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
    }
    const sl_vmap_t *m = v->as.map;
    lua_createtable(L, 0, m->len > INT32_MAX ? 0 : (int)m->len);
    for (size_t i = 0; i < m->len; i++) {
        lua_pushlstring(L, m->entries[i].key->data, m->entries[i].key->len);
        sl__vm_push_raw(L, &m->entries[i].value, depth + 1);
        lua_rawset(L, -3);
    }
}

typedef struct push_args {
    const sl_value_t *value;
    int rc;
} push_args_t;

static int l_vm_push(lua_State *L)
{
    push_args_t *args = lua_touserdata(L, 1);
    args->rc = SL_ELIMIT; /* the only error besides memory */
    if (!lua_checkstack(L, 8))
        return luaL_error(L, "stack overflow");
    sl__vm_push_raw(L, args->value, 0);
    args->rc = 0;
    return 1;
}

int sl__vm_push(lua_State *L, const sl_value_t *v)
{
    sl_type_t type = v ? (sl_type_t)v->type : SL_TYPE_NIL;
    if (!lua_checkstack(L, 4))
        return SL_ENOMEM;
    if (type != SL_TYPE_STRING && type != SL_TYPE_LIST && type != SL_TYPE_MAP) {
        sl__vm_push_raw(L, v, 0); /* allocates nothing: cannot raise */
        return 0;
    }
    push_args_t args = {v, 0};
    lua_pushcfunction(L, l_vm_push);
    lua_pushlightuserdata(L, &args);
    int status = lua_pcall(L, 1, 1, 0);
    if (status == LUA_OK)
        return 0;
    lua_pop(L, 1);
    return status == LUA_ERRMEM || args.rc == 0 ? SL_ENOMEM : args.rc;
}

/* ---- pull --------------------------------------------------------------- */

typedef struct pull_ctx {
    lua_State *L;
    const void *list_mt;
    const void *open_tables[SL_VM_DEPTH_MAX + 1]; /* tables being converted: cycles */
    char path[256];
    size_t path_len;
    char *err;
    size_t err_size;
} pull_ctx_t;

static int pull_into(pull_ctx_t *c, int idx, sl_value_t *dst, int depth);

static int pull_error(pull_ctx_t *c, int code, const char *what)
{
    if (c->err && c->err_size) {
        if (c->path_len)
            snprintf(c->err, c->err_size, "%s (at %s)", what, c->path);
        else
            snprintf(c->err, c->err_size, "%s", what);
    }
    return code;
}

static size_t path_push(pull_ctx_t *c, const char *fmt, const char *s, long long i)
{
    size_t saved = c->path_len;
    size_t room = sizeof(c->path) - c->path_len;
    int n = s ? snprintf(c->path + c->path_len, room, fmt, s) :
                snprintf(c->path + c->path_len, room, fmt, i);
    c->path_len = n < 0 ? saved : (size_t)n >= room ? sizeof(c->path) - 1 : c->path_len + (size_t)n;
    return saved;
}

static void path_pop(pull_ctx_t *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
}

static sl_vstr_t *vstr_new(const char *s, size_t len)
{
    sl_vstr_t *str = sl__malloc(sizeof(*str) + len + 1);
    if (str) {
        str->len = len;
        memcpy(str->data, s, len);
        str->data[len] = '\0';
    }
    return str;
}

static int pull_list(pull_ctx_t *c, int idx, sl_value_t *dst, size_t n, int depth)
{
    sl_value_t *list = sl_value_list();
    if (list == NULL || sl_value_reserve(list, n) < 0) {
        sl_value_free(list);
        return pull_error(c, SL_ENOMEM, "out of memory");
    }
    sl_value_move_into(dst, list);
    sl_vlist_t *l = dst->as.list;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(c->L, idx, (lua_Integer)i + 1);
        size_t saved = path_push(c, "[%lld]", NULL, (long long)i + 1);
        int rc = pull_into(c, lua_gettop(c->L), &l->items[i], depth + 1);
        path_pop(c, saved);
        lua_pop(c->L, 1);
        if (rc < 0) {
            sl_value_clear(&l->items[i]);
            return rc;
        }
        l->len++;
    }
    return 0;
}

static int compare_entries(const void *a, const void *b)
{
    const sl_vstr_t *ka = ((const sl_ventry_t *)a)->key, *kb = ((const sl_ventry_t *)b)->key;
    int cmp = memcmp(ka->data, kb->data, ka->len < kb->len ? ka->len : kb->len);
    return cmp ? cmp : (ka->len > kb->len) - (ka->len < kb->len);
}

/* One map entry from the key/value pair on top of the stack. */
static int pull_entry(pull_ctx_t *c, sl_vmap_t *m, int depth)
{
    char digits[32];
    size_t klen;
    const char *key;
    if (lua_type(c->L, -2) == LUA_TSTRING) {
        key = lua_tolstring(c->L, -2, &klen);
    } else {
        int n = snprintf(digits, sizeof(digits), "%lld", (long long)lua_tointeger(c->L, -2));
        key = digits;
        klen = (size_t)n;
    }
    sl_ventry_t *e = &m->entries[m->len];
    if ((e->key = vstr_new(key, klen)) == NULL)
        return pull_error(c, SL_ENOMEM, "out of memory");
    size_t saved = path_push(c, ".%s", key, 0);
    int rc = pull_into(c, lua_gettop(c->L), &e->value, depth + 1);
    path_pop(c, saved);
    if (rc < 0) {
        sl_value_clear(&e->value);
        sl__free(e->key);
        return rc;
    }
    m->len++;
    return 0;
}

static int pull_map(pull_ctx_t *c, int idx, sl_value_t *dst, size_t count, int depth)
{
    sl_value_t *map = sl_value_map();
    sl_ventry_t *entries = count ? sl__calloc(count, sizeof(*entries)) : NULL;
    if (map == NULL || (count && entries == NULL)) {
        sl_value_free(map);
        sl__free(entries);
        return pull_error(c, SL_ENOMEM, "out of memory");
    }
    sl_value_move_into(dst, map);
    sl_vmap_t *m = dst->as.map;
    m->entries = entries;
    m->cap = count;
    lua_pushnil(c->L);
    while (lua_next(c->L, idx) != 0) {
        int rc = m->len < count ? pull_entry(c, m, depth) : 0;
        lua_pop(c->L, 1);
        if (rc < 0) {
            lua_pop(c->L, 1);
            return rc;
        }
    }
    if (m->len > 1)
        qsort(m->entries, m->len, sizeof(*m->entries), compare_entries);
    return 0;
}

static int pull_table(pull_ctx_t *c, int idx, sl_value_t *dst, int depth)
{
    lua_State *L = c->L;
    const void *self = lua_topointer(L, idx);
    if (depth >= SL_VM_DEPTH_MAX)
        return pull_error(c, SL_ETYPE, "value nests deeper than 200 levels");
    for (int i = 0; i < depth; i++)
        if (c->open_tables[i] == self)
            return pull_error(c, SL_ETYPE, "cannot convert a table that contains itself");
    if (!lua_checkstack(L, 6))
        return pull_error(c, SL_ENOMEM, "out of memory");
    c->open_tables[depth] = self;
    size_t n = lua_rawlen(L, idx), count = 0, strings = 0, in_seq = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int kt = lua_type(L, -2);
        count++;
        if (kt == LUA_TSTRING) {
            strings++;
        } else if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
            lua_Integer k = lua_tointeger(L, -2);
            in_seq += k >= 1 && (size_t)k <= n;
        } else {
            lua_pop(L, 2);
            return pull_error(c, SL_ETYPE, kt == LUA_TNUMBER ?
                              "cannot convert a table with a fractional key" :
                              "cannot convert a table with a key that is not a string or integer");
        }
        lua_pop(L, 1);
    }
    if (strings && strings != count)
        return pull_error(c, SL_ETYPE, "cannot convert a table mixing list items and keys");
    int has_mt = lua_getmetatable(L, idx);
    bool marked = has_mt && lua_topointer(L, -1) == c->list_mt;
    if (has_mt)
        lua_pop(L, 1);
    if (strings == 0 && in_seq == count && count == n && (n > 0 || marked))
        return pull_list(c, idx, dst, n, depth);
    return pull_map(c, idx, dst, count, depth);
}

static int pull_into(pull_ctx_t *c, int idx, sl_value_t *dst, int depth)
{
    lua_State *L = c->L;
    sl_value_init_nil(dst);
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return 0;
    case LUA_TBOOLEAN:
        dst->type = SL_TYPE_BOOL;
        dst->as.b = lua_toboolean(L, idx);
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            dst->type = SL_TYPE_INT;
            dst->as.i = (int64_t)lua_tointeger(L, idx);
        } else {
            dst->type = SL_TYPE_NUMBER;
            dst->as.n = (double)lua_tonumber(L, idx);
        }
        return 0;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if ((dst->as.s = vstr_new(s, len)) == NULL)
            return pull_error(c, SL_ENOMEM, "out of memory");
        dst->type = SL_TYPE_STRING;
        return 0;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_VM_NULL)
            return 0;
        return pull_error(c, SL_ETYPE, "cannot convert a userdata to a value");
    case LUA_TTABLE:
        return pull_table(c, idx, dst, depth);
    default: {
        char what[64];
        snprintf(what, sizeof(what), "cannot convert a %s to a value", luaL_typename(L, idx));
        return pull_error(c, SL_ETYPE, what);
    }
    }
}

int sl__vm_pull(lua_State *L, int idx, sl_value_t **out, char *err, size_t err_size)
{
    *out = NULL;
    sl_value_t *v = sl__malloc(sizeof(*v));
    if (v == NULL)
        return SL_ENOMEM;
    sl_vm_t *vm = sl__vm_of(L);
    pull_ctx_t c; /* on the C stack: a pull costs no allocation beyond the value's */
    c.L = L;
    c.list_mt = vm ? vm->list_mt : NULL;
    c.path[0] = '\0';
    c.path_len = 0;
    c.err = err;
    c.err_size = err_size;
    int rc = pull_into(&c, lua_absindex(L, idx), v, 0);
    if (rc < 0) {
        sl_value_free(v);
        return rc;
    }
    *out = v;
    return 0;
}
