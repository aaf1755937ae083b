/* The value type: constructors, accessors, copies. */
#include <math.h>
#include <string.h>

#include "value.h"

static sl_value_t *new_value(sl_type_t type)
{
    sl_value_t *v = sl__malloc(sizeof(*v));
    if (v) {
        v->type = (uint8_t)type;
        v->as.i = 0;
    }
    return v;
}

sl_value_t *sl_value_nil(void)
{
    return new_value(SL_TYPE_NIL);
}

sl_value_t *sl_value_bool(int b)
{
    sl_value_t *v = new_value(SL_TYPE_BOOL);
    if (v)
        v->as.b = b != 0;
    return v;
}

sl_value_t *sl_value_int(int64_t i)
{
    sl_value_t *v = new_value(SL_TYPE_INT);
    if (v)
        v->as.i = i;
    return v;
}

sl_value_t *sl_value_number(double n)
{
    sl_value_t *v = new_value(SL_TYPE_NUMBER);
    if (v)
        v->as.n = n;
    return v;
}


sl_value_t *sl_value_string(const char *s, size_t len)
{
    sl_value_t *v = new_value(SL_TYPE_STRING);
    if (v == NULL)
        return NULL;
    v->as.s = sl__vstr_new(s, len);
    if (v->as.s == NULL) {
        sl__free(v);
        return NULL;
    }
    return v;
}

sl_value_t *sl__value_string_adopt(sl_vstr_t *str)
{
    sl_value_t *v = new_value(SL_TYPE_STRING);
    if (v)
        v->as.s = str;
    return v;
}

sl_value_t *sl_value_cstring(const char *s)
{
    return sl_value_string(s, strlen(s));
}

/* ---- containers: one allocation when made with room, shared until written -------- */

static bool list_inline(const sl_vlist_t *l)
{
    return l->items == (const sl_value_t *)(l + 1);
}

static bool map_inline(const sl_vmap_t *m)
{
    return m->entries == (const sl_ventry_t *)(m + 1);
}

int sl__value_init_list(sl_value_t *dst, size_t cap)
{
    sl_value_init_nil(dst);
    if (cap > (SIZE_MAX - sizeof(sl_vlist_t)) / sizeof(sl_value_t))
        return SL_ENOMEM;
    sl_vlist_t *l = sl__malloc(sizeof(*l) + cap * sizeof(sl_value_t));
    if (l == NULL)
        return SL_ENOMEM;
    *l = (sl_vlist_t){.cap = cap, .items = cap ? (sl_value_t *)(l + 1) : NULL, .refs = 1};
    dst->type = SL_TYPE_LIST;
    dst->as.list = l;
    return 0;
}

int sl__value_init_map(sl_value_t *dst, size_t cap)
{
    sl_value_init_nil(dst);
    if (cap > (SIZE_MAX - sizeof(sl_vmap_t)) / sizeof(sl_ventry_t))
        return SL_ENOMEM;
    sl_vmap_t *m = sl__malloc(sizeof(*m) + cap * sizeof(sl_ventry_t));
    if (m == NULL)
        return SL_ENOMEM;
    *m = (sl_vmap_t){.cap = cap, .entries = cap ? (sl_ventry_t *)(m + 1) : NULL, .refs = 1};
    dst->type = SL_TYPE_MAP;
    dst->as.map = m;
    return 0;
}

static sl_value_t *new_container(sl_type_t type, size_t cap)
{
    sl_value_t *v = sl__malloc(sizeof(*v));
    if (v == NULL)
        return NULL;
    int rc = type == SL_TYPE_LIST ? sl__value_init_list(v, cap) : sl__value_init_map(v, cap);
    if (rc < 0) {
        sl__free(v);
        return NULL;
    }
    return v;
}

sl_value_t *sl__value_new_list(size_t cap)
{
    return new_container(SL_TYPE_LIST, cap);
}

sl_value_t *sl__value_new_map(size_t cap)
{
    return new_container(SL_TYPE_MAP, cap);
}

sl_value_t *sl_value_list(void)
{
    return new_container(SL_TYPE_LIST, 0);
}

sl_value_t *sl_value_map(void)
{
    return new_container(SL_TYPE_MAP, 0);
}

void sl_value_clear(sl_value_t *v)
{
    switch (v->type) {
    case SL_TYPE_STRING:
        sl__vstr_drop(v->as.s);
        break;
    case SL_TYPE_LIST: {
        sl_vlist_t *l = v->as.list;
        if (--l->refs > 0)
            break;
        for (size_t i = 0; i < l->len; i++)
            sl_value_clear(&l->items[i]);
        if (!list_inline(l))
            sl__free(l->items);
        sl__free(l);
        break;
    }
    case SL_TYPE_MAP: {
        sl_vmap_t *m = v->as.map;
        if (--m->refs > 0)
            break;
        for (size_t i = 0; i < m->len; i++) {
            sl__vstr_drop(m->entries[i].key);
            sl_value_clear(&m->entries[i].value);
        }
        if (!map_inline(m))
            sl__free(m->entries);
        sl__free(m);
        break;
    }
    default:
        break;
    }
    sl_value_init_nil(v);
}

void sl_value_free(sl_value_t *v)
{
    if (v == NULL)
        return;
    sl_value_clear(v);
    sl__free(v);
}

void sl_value_move_into(sl_value_t *dst, sl_value_t *heap)
{
    *dst = *heap;
    sl__free(heap);
}

/* A copy of the list or map `src` with containers of its own at the top level only (its
 * elements are shared, as copies share them): for a writer, or when the count is full. */
static int copy_container(sl_value_t *dst, const sl_value_t *src)
{
    if (src->type == SL_TYPE_LIST) {
        const sl_vlist_t *from = src->as.list;
        if (sl__value_init_list(dst, from->len) < 0)
            return SL_ENOMEM;
        sl_vlist_t *list = dst->as.list;
        for (size_t i = 0; i < from->len; i++) {
            if (sl_value_copy_into(&list->items[i], &from->items[i]) < 0)
                goto fail; /* len counts the copied ones, so clearing frees them */
            list->len++;
        }
        return 0;
    }
    const sl_vmap_t *from = src->as.map;
    if (sl__value_init_map(dst, from->len) < 0)
        return SL_ENOMEM;
    sl_vmap_t *map = dst->as.map;
    for (size_t i = 0; i < from->len; i++) {
        sl_ventry_t *e = &map->entries[i];
        e->key = sl__vstr_share(from->entries[i].key);
        if (e->key == NULL)
            goto fail;
        if (sl_value_copy_into(&e->value, &from->entries[i].value) < 0) {
            sl__vstr_drop(e->key);
            goto fail;
        }
        map->len++;
    }
    return 0;
fail:
    sl_value_clear(dst); /* a failed copy owns nothing and reads as nil */
    return SL_ENOMEM;
}

int sl_value_copy_into(sl_value_t *dst, const sl_value_t *src)
{
    sl_value_init_nil(dst);
    switch (src->type) {
    case SL_TYPE_STRING: {
        sl_vstr_t *s = sl__vstr_share(src->as.s);
        if (s == NULL)
            return SL_ENOMEM;
        dst->type = SL_TYPE_STRING;
        dst->as.s = s;
        return 0;
    }
    case SL_TYPE_LIST:
    case SL_TYPE_MAP: {
        /* the count is not the contents, which no owner changes while others share it */
        uint32_t *refs = src->type == SL_TYPE_LIST ? &((sl_vlist_t *)src->as.list)->refs
                                                   : &((sl_vmap_t *)src->as.map)->refs;
        if (*refs == UINT32_MAX)
            return copy_container(dst, src);
        ++*refs;
        *dst = *src;
        return 0;
    }
    default:
        *dst = *src;
        return 0;
    }
}

int sl__value_unshare(sl_value_t *v)
{
    uint32_t refs = v->type == SL_TYPE_LIST  ? v->as.list->refs
                    : v->type == SL_TYPE_MAP ? v->as.map->refs
                                             : 1;
    if (refs == 1)
        return 0;
    sl_value_t own;
    if (copy_container(&own, v) < 0)
        return SL_ENOMEM;
    sl_value_clear(v); /* drops this holder's share; the others keep theirs */
    *v = own;
    return 0;
}

sl_value_t *sl_value_copy(const sl_value_t *v)
{
    sl_value_t *copy = sl__malloc(sizeof(*copy));
    if (copy == NULL)
        return NULL;
    if (sl_value_copy_into(copy, v ? v : &(sl_value_t){.type = SL_TYPE_NIL}) < 0) {
        sl_value_free(copy);
        return NULL;
    }
    return copy;
}

sl_type_t sl_value_type(const sl_value_t *v)
{
    return v ? (sl_type_t)v->type : SL_TYPE_NIL;
}

int sl_value_truthy(const sl_value_t *v)
{
    if (v == NULL || v->type == SL_TYPE_NIL)
        return 0;
    if (v->type == SL_TYPE_BOOL)
        return v->as.b;
    return 1;
}

int64_t sl_value_int_of(const sl_value_t *v)
{
    if (v == NULL)
        return 0;
    if (v->type == SL_TYPE_INT)
        return v->as.i;
    if (v->type == SL_TYPE_NUMBER && isfinite(v->as.n) && v->as.n >= -9.2e18 && v->as.n <= 9.2e18)
        return (int64_t)v->as.n;
    if (v->type == SL_TYPE_BOOL)
        return v->as.b;
    return 0;
}

double sl_value_number_of(const sl_value_t *v)
{
    if (v == NULL)
        return 0;
    if (v->type == SL_TYPE_NUMBER)
        return v->as.n;
    if (v->type == SL_TYPE_INT)
        return (double)v->as.i;
    return 0;
}

const char *sl_value_str(const sl_value_t *v, size_t *len)
{
    if (v == NULL || v->type != SL_TYPE_STRING) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->as.s->len;
    return v->as.s->data;
}

size_t sl_value_len(const sl_value_t *v)
{
    if (v == NULL)
        return 0;
    if (v->type == SL_TYPE_LIST)
        return v->as.list->len;
    if (v->type == SL_TYPE_MAP)
        return v->as.map->len;
    return 0;
}

const sl_value_t *sl_value_at(const sl_value_t *list, size_t i)
{
    if (list == NULL || list->type != SL_TYPE_LIST || i >= list->as.list->len)
        return NULL;
    return &list->as.list->items[i];
}

const sl_value_t *sl_value_entry(const sl_value_t *map, size_t i, const char **key)
{
    if (map == NULL || map->type != SL_TYPE_MAP || i >= map->as.map->len)
        return NULL;
    if (key)
        *key = map->as.map->entries[i].key->data;
    return &map->as.map->entries[i].value;
}

static sl_ventry_t *find_entry(const sl_vmap_t *map, const char *key, size_t key_len)
{
    for (size_t i = 0; i < map->len; i++) {
        sl_ventry_t *e = &map->entries[i];
        if (e->key->len == key_len && memcmp(e->key->data, key, key_len) == 0)
            return e;
    }
    return NULL;
}

const sl_value_t *sl_value_get(const sl_value_t *map, const char *key)
{
    if (map == NULL || map->type != SL_TYPE_MAP || key == NULL)
        return NULL;
    sl_ventry_t *e = find_entry(map->as.map, key, strlen(key));
    return e ? &e->value : NULL;
}

/* Moves `*block` (of `used` elements of `size` bytes) to a block of its own with room for
 * `cap`: a realloc, or a new block when it sits inside its container. */
static int move_block(void **block, bool in_container, size_t used, size_t cap, size_t size)
{
    void *moved = in_container ? sl__malloc(cap * size) : sl__realloc(*block, cap * size);
    if (moved == NULL)
        return SL_ENOMEM;
    if (in_container && used)
        memcpy(moved, *block, used * size);
    *block = moved;
    return 0;
}

/* Room for `n` more in a container of `len` used of `cap`: doubling from 4, or exact
 * (`exact`, a map sized by its maker). SIZE_MAX when it cannot be counted. */
static size_t grown_cap(size_t len, size_t cap, size_t n, size_t size, bool exact)
{
    if (n > SIZE_MAX / size - len)
        return SIZE_MAX;
    if (exact)
        return len + n;
    cap = cap ? cap : 4;
    while (cap - len < n)
        cap = cap > SIZE_MAX / size / 2 ? len + n : cap * 2;
    return cap;
}

int sl_value_reserve(sl_value_t *list, size_t n)
{
    if (list == NULL || (list->type != SL_TYPE_LIST && list->type != SL_TYPE_MAP))
        return SL_ETYPE;
    if (sl__value_unshare(list) < 0)
        return SL_ENOMEM;
    if (list->type == SL_TYPE_MAP) {
        sl_vmap_t *m = list->as.map;
        if (n <= m->cap - m->len)
            return 0;
        size_t cap = grown_cap(m->len, m->cap, n, sizeof(sl_ventry_t), true);
        if (cap == SIZE_MAX || move_block((void **)&m->entries, map_inline(m), m->len, cap,
                                          sizeof(sl_ventry_t)) < 0)
            return SL_ENOMEM;
        m->cap = cap;
        return 0;
    }
    sl_vlist_t *l = list->as.list;
    if (n <= l->cap - l->len)
        return 0;
    size_t cap = grown_cap(l->len, l->cap, n, sizeof(sl_value_t), false);
    if (cap == SIZE_MAX ||
        move_block((void **)&l->items, list_inline(l), l->len, cap, sizeof(sl_value_t)) < 0)
        return SL_ENOMEM;
    l->cap = cap;
    return 0;
}

int sl_value_push(sl_value_t *list, sl_value_t *item)
{
    if (item == NULL)
        return SL_ENOMEM;
    int rc = sl_value_reserve(list, 1);
    if (rc < 0) {
        sl_value_free(item);
        return rc;
    }
    sl_value_move_into(&list->as.list->items[list->as.list->len++], item);
    return 0;
}

/* Appends an entry with key `k` (taken, even on failure) to the map `map` holds, made its
 * own; the caller knows the key is new. */
static int map_append_vstr(sl_value_t *map, sl_vstr_t *k, sl_value_t *item)
{
    int rc = k ? sl__value_unshare(map) : SL_ENOMEM;
    sl_vmap_t *m = map->as.map;
    if (rc == 0 && m->len == m->cap) {
        size_t cap = grown_cap(m->len, m->cap, 1, sizeof(sl_ventry_t), false);
        rc = cap == SIZE_MAX ? SL_ENOMEM
                             : move_block((void **)&m->entries, map_inline(m), m->len, cap,
                                          sizeof(sl_ventry_t));
        if (rc == 0)
            m->cap = cap;
    }
    if (rc < 0) {
        sl__vstr_drop(k);
        sl_value_free(item);
        return SL_ENOMEM;
    }
    m->entries[m->len].key = k;
    sl_value_move_into(&m->entries[m->len].value, item);
    m->len++;
    return 0;
}

int sl__value_map_append(sl_value_t *map, const char *key, size_t key_len, sl_value_t *item)
{
    if (item == NULL)
        return SL_ENOMEM;
    if (map == NULL || map->type != SL_TYPE_MAP) {
        sl_value_free(item);
        return SL_ETYPE;
    }
    return map_append_vstr(map, sl__vstr_new(key, key_len), item);
}

int sl__value_map_append_key(sl_value_t *map, const sl_vstr_t *key, sl_value_t *item)
{
    if (item == NULL)
        return SL_ENOMEM;
    if (map == NULL || map->type != SL_TYPE_MAP) {
        sl_value_free(item);
        return SL_ETYPE;
    }
    return map_append_vstr(map, sl__vstr_share(key), item);
}

int sl_value_set(sl_value_t *map, const char *key, sl_value_t *item)
{
    if (item == NULL)
        return SL_ENOMEM;
    if (map == NULL || map->type != SL_TYPE_MAP || key == NULL) {
        sl_value_free(item);
        return SL_ETYPE;
    }
    size_t key_len = strlen(key);
    if (find_entry(map->as.map, key, key_len) == NULL)
        return map_append_vstr(map, sl__vstr_new(key, key_len), item);
    if (sl__value_unshare(map) < 0) {
        sl_value_free(item);
        return SL_ENOMEM;
    }
    sl_ventry_t *e = find_entry(map->as.map, key, key_len);
    sl_value_clear(&e->value);
    sl_value_move_into(&e->value, item);
    return 0;
}

bool sl_value_equal(const sl_value_t *a, const sl_value_t *b)
{
    sl_type_t ta = sl_value_type(a), tb = sl_value_type(b);
    bool numeric_a = ta == SL_TYPE_INT || ta == SL_TYPE_NUMBER;
    bool numeric_b = tb == SL_TYPE_INT || tb == SL_TYPE_NUMBER;
    if (numeric_a && numeric_b) {
        if (ta == SL_TYPE_INT && tb == SL_TYPE_INT)
            return a->as.i == b->as.i;
        return sl_value_number_of(a) == sl_value_number_of(b);
    }
    if (ta != tb)
        return false;
    switch (ta) {
    case SL_TYPE_NIL:
        return true;
    case SL_TYPE_BOOL:
        return a->as.b == b->as.b;
    case SL_TYPE_STRING:
        return a->as.s->len == b->as.s->len &&
               memcmp(a->as.s->data, b->as.s->data, a->as.s->len) == 0;
    case SL_TYPE_LIST:
        if (a->as.list == b->as.list)
            return true;
        if (a->as.list->len != b->as.list->len)
            return false;
        for (size_t i = 0; i < a->as.list->len; i++)
            if (!sl_value_equal(&a->as.list->items[i], &b->as.list->items[i]))
                return false;
        return true;
    case SL_TYPE_MAP:
        if (a->as.map == b->as.map)
            return true;
        if (a->as.map->len != b->as.map->len)
            return false;
        for (size_t i = 0; i < a->as.map->len; i++) {
            const sl_ventry_t *e = &a->as.map->entries[i];
            const sl_ventry_t *f = find_entry(b->as.map, e->key->data, e->key->len);
            if (f == NULL || !sl_value_equal(&e->value, &f->value))
                return false;
        }
        return true;
    default:
        return false;
    }
}

const char *sl_value_type_name(sl_type_t t)
{
    static const char *names[] = {"nil", "boolean", "integer", "number", "string", "list", "map"};
    return (unsigned)t < SL_COUNTOF(names) ? names[t] : "unknown";
}
