/*
 * Values across the Lua boundary. Pushing runs where Lua may raise (inside a
 * protected call); pulling never raises: it only walks tables with lua_next
 * and lua_rawgeti and formats integer keys itself, so it can run on any
 * stack and keep plain C allocations.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/internal.h"

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

typedef struct measure_slot measure_slot_t;

typedef struct pull_ctx {
    lua_State *L;
    const void *list_mt;
    measure_slot_t *slots; /* the measuring pass's, with each table's keys counted */
    size_t slot_cap;
    uint64_t nodes_left; /* values still allowed: shared tables are copied once per use */
    uint64_t bytes_left; /* bytes of the converted value still allowed */
    uint64_t bytes_max;
    const void *open_tables[SL_VM_DEPTH_MAX + 1]; /* tables being converted: cycles */
    char what[192];     /* the first error, without its place */
    char path[256];     /* its place, built while the error unwinds ("[3].name") */
    size_t path_len;
} pull_ctx_t;

static int pull_into(pull_ctx_t *c, int idx, sl_value_t *dst, int depth);

/* What a table's keys make it: counted by the measuring pass, or by count_keys. */
typedef struct table_shape {
    size_t count, strings, in_seq; /* keys; string keys; integer keys in 1..#t */
    uint8_t bad_key;               /* 0, or BAD_KEY_*: a key no value can have */
} table_shape_t;

enum { BAD_KEY_FRACTIONAL = 1, BAD_KEY_OTHER };

/* Counts the key at -2 (of a table whose length is `n`) into *shape; false for a key no
 * value can have (the first such is recorded). */
static bool count_key(lua_State *L, size_t n, table_shape_t *shape)
{
    int kt = lua_type(L, -2);
    shape->count++;
    if (kt == LUA_TSTRING) {
        shape->strings++;
        return true;
    }
    if (kt == LUA_TNUMBER && lua_isinteger(L, -2)) {
        lua_Integer k = lua_tointeger(L, -2);
        shape->in_seq += k >= 1 && (size_t)k <= n;
        return true;
    }
    if (!shape->bad_key)
        shape->bad_key = kt == LUA_TNUMBER ? BAD_KEY_FRACTIONAL : BAD_KEY_OTHER;
    return false;
}

/* Counts the keys of the table at `t`, whose length is `n`, into *shape, up to the first
 * bad one. */
static void count_keys(lua_State *L, int t, size_t n, table_shape_t *shape)
{
    *shape = (table_shape_t){0};
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        bool good = count_key(L, n, shape);
        lua_pop(L, good ? 1 : 2);
        if (!good)
            return;
    }
}

static bool measured_shape(const pull_ctx_t *c, const void *table, table_shape_t *out);

static int pull_error(pull_ctx_t *c, int code, const char *what)
{
    snprintf(c->what, sizeof(c->what), "%s", what);
    return code;
}

/* Names one level of the failed value's place, on the way out of the error: paths
 * cost nothing unless something fails. */
static void path_prepend(pull_ctx_t *c, const char *fmt, const char *s, long long i)
{
    char segment[96];
    int n = s ? snprintf(segment, sizeof(segment), fmt, s) : snprintf(segment, sizeof(segment),
                                                                          fmt, i);
    if (n <= 0)
        return;
    size_t len = (size_t)n < sizeof(segment) ? (size_t)n : sizeof(segment) - 1;
    if (c->path_len + len >= sizeof(c->path))
        return; /* deep enough: the innermost part is kept */
    memmove(c->path + len, c->path, c->path_len + 1);
    memcpy(c->path, segment, len);
    c->path_len += len;
}

/* Charges `bytes` of the value being built; false (with the error set) past the limit. */
static int charge_bytes(pull_ctx_t *c, uint64_t bytes)
{
    if (bytes <= c->bytes_left) {
        c->bytes_left -= bytes;
        return 0;
    }
    char what[96];
    snprintf(what, sizeof(what), "value too large to convert (more than %" PRIu64 " bytes)",
             c->bytes_max);
    return pull_error(c, SL_ELIMIT, what);
}


static int pull_list(pull_ctx_t *c, int idx, sl_value_t *dst, size_t n, int depth)
{
    int rc = charge_bytes(c, sizeof(sl_vlist_t) + (uint64_t)n * sizeof(sl_value_t));
    if (rc < 0)
        return rc;
    if (sl__value_init_list(dst, n) < 0)
        return pull_error(c, SL_ENOMEM, "out of memory");
    sl_vlist_t *l = dst->as.list;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(c->L, idx, (lua_Integer)i + 1);
        rc = pull_into(c, lua_gettop(c->L), &l->items[i], depth + 1);
        lua_pop(c->L, 1);
        if (rc < 0) {
            sl_value_clear(&l->items[i]);
            path_prepend(c, "[%lld]", NULL, (long long)i + 1);
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
    int rc = charge_bytes(c, sizeof(sl_vstr_t) + (uint64_t)klen + 1);
    if (rc < 0)
        return rc;
    if ((e->key = sl__vstr_new(key, klen)) == NULL)
        return pull_error(c, SL_ENOMEM, "out of memory");
    rc = pull_into(c, lua_gettop(c->L), &e->value, depth + 1);
    if (rc < 0) {
        path_prepend(c, ".%s", key, 0);
        sl_value_clear(&e->value);
        sl__vstr_drop(e->key);
        return rc;
    }
    m->len++;
    return 0;
}

static int pull_map(pull_ctx_t *c, int idx, sl_value_t *dst, size_t count, int depth)
{
    int rc = charge_bytes(c, sizeof(sl_vmap_t) + (uint64_t)count * sizeof(sl_ventry_t));
    if (rc < 0)
        return rc;
    if (sl__value_init_map(dst, count) < 0)
        return pull_error(c, SL_ENOMEM, "out of memory");
    sl_vmap_t *m = dst->as.map;
    lua_pushnil(c->L);
    while (lua_next(c->L, idx) != 0) {
        rc = m->len < count ? pull_entry(c, m, depth) : 0;
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
    size_t n = lua_rawlen(L, idx);
    table_shape_t shape;
    if (!measured_shape(c, self, &shape)) /* the measuring pass saw it: one walk fewer */
        count_keys(L, idx, n, &shape);
    if (shape.bad_key)
        return pull_error(c, SL_ETYPE, shape.bad_key == BAD_KEY_FRACTIONAL ?
                          "cannot convert a table with a fractional key" :
                          "cannot convert a table with a key that is not a string or integer");
    size_t count = shape.count, strings = shape.strings, in_seq = shape.in_seq;
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

/* A table, or what a read-only view shows: an engine value (steps.ID) is shared as it is,
 * a table is converted. */
static int pull_table_or_view(pull_ctx_t *c, int idx, sl_value_t *dst, int depth)
{
    const sl_value_t *shown = sl__vm_ro_value(c->L, idx);
    if (shown)
        return sl_value_copy_into(dst, shown) < 0 ? pull_error(c, SL_ENOMEM, "out of memory")
                                                  : 0;
    if (!lua_checkstack(c->L, 2))
        return pull_error(c, SL_ENOMEM, "out of memory");
    int snapshot = sl__vm_ro_try_snapshot(c->L, idx); /* steps, env: what they show */
    if (snapshot < 0)
        return pull_error(c, SL_ENOMEM, "out of memory");
    if (snapshot == 0 && !sl__vm_ro_real(c->L, idx))
        return pull_table(c, idx, dst, depth);
    int rc = pull_table(c, lua_gettop(c->L), dst, depth);
    lua_pop(c->L, 1);
    return rc;
}

static int pull_into(pull_ctx_t *c, int idx, sl_value_t *dst, int depth)
{
    lua_State *L = c->L;
    sl_value_init_nil(dst);
    if (c->nodes_left == 0) {
        char what[96];
        snprintf(what, sizeof(what), "value too large to convert (more than %d nodes)",
                 SL_VM_PULL_NODES_MAX);
        return pull_error(c, SL_ELIMIT, what);
    }
    c->nodes_left--;
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
        int rc = charge_bytes(c, sizeof(sl_vstr_t) + (uint64_t)len + 1);
        if (rc < 0)
            return rc;
        if ((dst->as.s = sl__vstr_new(s, len)) == NULL)
            return pull_error(c, SL_ENOMEM, "out of memory");
        dst->type = SL_TYPE_STRING;
        return 0;
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == SL_VM_NULL)
            return 0;
        return pull_error(c, SL_ETYPE, "cannot convert a userdata to a value");
    case LUA_TTABLE:
        return pull_table_or_view(c, idx, dst, depth);
    default: {
        char what[64];
        snprintf(what, sizeof(what), "cannot convert a %s to a value", luaL_typename(L, idx));
        return pull_error(c, SL_ETYPE, what);
    }
    }
}

/* ---- measure: a lower bound of a conversion's size, before converting ---------- */

/*
 * A table shared n times is converted n times, so a few kilobytes of Lua can stand for
 * 2^40 values. The counters of pull_ctx_t stop such a conversion, but only after it has
 * built as much as the limit allows. This walk visits each distinct table once (sizes are
 * memoised by address) and adds up a lower bound of what converting would allocate, so
 * such a value fails at once. Cycles and deep nesting are left to the conversion's errors.
 */
struct measure_slot {
    const void *table; /* NULL: free */
    uint64_t bytes, nodes;
    bool open; /* being measured: met again, it is a cycle */
    bool done; /* bytes and nodes are its total */
    bool shaped; /* `shape` counts all its keys */
    table_shape_t shape;
};

typedef struct measure_ctx {
    lua_State *L;
    measure_slot_t *slots;
    size_t cap, used; /* cap: a power of two */
    uint64_t bytes_max, nodes_max;
    bool no_memory;
} measure_ctx_t;

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static measure_slot_t *slot_find(measure_slot_t *slots, size_t cap, const void *table)
{
    size_t i = (size_t)(((uintptr_t)table >> 4) * 0x9E3779B97F4A7C15u) & (cap - 1);
    while (slots[i].table != NULL && slots[i].table != table)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool measured_shape(const pull_ctx_t *c, const void *table, table_shape_t *out)
{
    if (c->slots == NULL)
        return false;
    const measure_slot_t *slot = slot_find(c->slots, c->slot_cap, table);
    if (slot->table != table || !slot->shaped)
        return false;
    *out = slot->shape;
    return true;
}

/* The table's slot, added when new; NULL when out of memory. */
static measure_slot_t *slot_get(measure_ctx_t *m, const void *table)
{
    if ((m->used + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        measure_slot_t *slots = sl__calloc(cap, sizeof(*slots));
        if (slots == NULL) {
            m->no_memory = true;
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].table)
                *slot_find(slots, cap, m->slots[i].table) = m->slots[i];
        sl__free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    measure_slot_t *slot = slot_find(m->slots, m->cap, table);
    if (slot->table == NULL) {
        slot->table = table;
        m->used++;
    }
    return slot;
}

static void measure_value(measure_ctx_t *m, int idx, int depth, uint64_t *bytes,
                          uint64_t *nodes);

/* Adds the plain table at `t` (walked once, then memoised) to *bytes and *nodes. */
static void measure_table(measure_ctx_t *m, int t, int depth, uint64_t *bytes, uint64_t *nodes)
{
    lua_State *L = m->L;
    const void *self = lua_topointer(L, t);
    measure_slot_t *slot = slot_get(m, self);
    if (slot == NULL || !slot->done) {
        *nodes = add_sat(*nodes, 1);
        if (slot == NULL || slot->open)
            return; /* out of memory (no estimate), or a cycle (pull_table reports it) */
    } else {
        *bytes = add_sat(*bytes, slot->bytes);
        *nodes = add_sat(*nodes, slot->nodes);
        return;
    }
    slot->open = true;
    uint64_t total_bytes = sizeof(sl_vlist_t), total_nodes = 1;
    size_t n = lua_rawlen(L, t);
    table_shape_t shape = {0}; /* pull_table's count of the keys, taken on the way */
    bool whole = true;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        total_bytes = add_sat(total_bytes, sizeof(sl_value_t));
        if (lua_type(L, -2) == LUA_TSTRING)
            total_bytes = add_sat(total_bytes, sizeof(sl_vstr_t) + lua_rawlen(L, -2) + 1);
        count_key(L, n, &shape);
        measure_value(m, lua_gettop(L), depth + 1, &total_bytes, &total_nodes);
        lua_pop(L, 1);
        if (total_bytes > m->bytes_max || total_nodes > m->nodes_max || m->no_memory) {
            lua_pop(L, 1);
            whole = false;
            break;
        }
    }
    slot = slot_get(m, self); /* the slots may have moved */
    if (slot) {
        slot->bytes = total_bytes;
        slot->nodes = total_nodes;
        slot->done = true;
        slot->shaped = whole;
        slot->shape = shape;
    }
    *bytes = add_sat(*bytes, total_bytes);
    *nodes = add_sat(*nodes, total_nodes - 1); /* its own node was counted on the way in */
}

/* Adds the value at `idx` to *bytes and *nodes. */
static void measure_value(measure_ctx_t *m, int idx, int depth, uint64_t *bytes, uint64_t *nodes)
{
    lua_State *L = m->L;
    int type = lua_type(L, idx);
    if (type == LUA_TTABLE && sl__vm_ro_value(L, idx)) {
        *nodes = add_sat(*nodes, 1); /* an engine value: shared, not converted */
        return;
    }
    if (type == LUA_TTABLE && depth < SL_VM_DEPTH_MAX && !m->no_memory && lua_checkstack(L, 4)) {
        if (sl__vm_ro_try_snapshot(L, idx) > 0 || sl__vm_ro_real(L, idx)) {
            measure_table(m, lua_gettop(L), depth, bytes, nodes);
            lua_pop(L, 1);
        } else {
            measure_table(m, idx, depth, bytes, nodes);
        }
        return;
    }
    *nodes = add_sat(*nodes, 1);
    if (type == LUA_TSTRING)
        *bytes = add_sat(*bytes, sizeof(sl_vstr_t) + lua_rawlen(L, idx) + 1);
}

/* 0, or SL_ELIMIT (message in c) when converting the table at `idx` would pass a limit. */
static int measure(pull_ctx_t *c, int idx)
{
    measure_ctx_t m = {c->L, NULL, 0, 0, c->bytes_max, SL_VM_PULL_NODES_MAX, false};
    uint64_t bytes = sizeof(sl_value_t), nodes = 0;
    measure_value(&m, idx, 0, &bytes, &nodes);
    c->slots = m.slots; /* pull_table reads the shapes; sl__vm_pull frees them */
    c->slot_cap = m.cap;
    char what[96];
    if (nodes > SL_VM_PULL_NODES_MAX)
        snprintf(what, sizeof(what), "value too large to convert (more than %d nodes)",
                 SL_VM_PULL_NODES_MAX);
    else if (bytes > c->bytes_max)
        snprintf(what, sizeof(what), "value too large to convert (more than %" PRIu64 " bytes)",
                 c->bytes_max);
    else
        return 0;
    return pull_error(c, SL_ELIMIT, what);
}

int sl__vm_pull(lua_State *L, int idx, sl_value_t **out, char *err, size_t err_size)
{
    *out = NULL;
    sl_value_t *v = sl__malloc(sizeof(*v));
    if (v == NULL)
        return SL_ENOMEM;
    sl_value_init_nil(v); /* freed as is when measuring refuses the value */
    sl_vm_t *vm = sl__vm_of(L);
    pull_ctx_t c; /* on the C stack: a pull costs no allocation beyond the value's */
    c.L = L;
    c.list_mt = vm ? vm->list_mt : NULL;
    c.slots = NULL;
    c.slot_cap = 0;
    c.nodes_left = SL_VM_PULL_NODES_MAX;
    c.bytes_max = vm ? vm->mem_max : (uint64_t)256 << 20;
    c.bytes_left = c.bytes_max;
    c.what[0] = c.path[0] = '\0';
    c.path_len = 0;
    idx = lua_absindex(L, idx);
    int rc = lua_type(L, idx) == LUA_TTABLE ? measure(&c, idx) : 0;
    if (rc == 0)
        rc = pull_into(&c, idx, v, 0);
    sl__free(c.slots);
    if (rc < 0) {
        if (err && err_size && c.path_len)
            snprintf(err, err_size, "%s (at %s)", c.what, c.path);
        else if (err && err_size)
            snprintf(err, err_size, "%s", c.what);
        sl_value_free(v);
        return rc;
    }
    *out = v;
    return 0;
}
