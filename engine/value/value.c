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

sl_vstr_t *sl__vstr_new(const char *s, size_t len)
{
    if (len > SIZE_MAX - sizeof(sl_vstr_t) - 1)
        return NULL;
    sl_vstr_t *str = sl__malloc(sizeof(*str) + len + 1);
    if (str == NULL)
        return NULL;
    str->len = len;
    str->refs = 1;
    if (len && s)
        memcpy(str->data, s, len);
    str->data[len] = '\0';
    return str;
}

sl_vstr_t *sl__vstr_share(const sl_vstr_t *s)
{
    if (s->refs == UINT32_MAX)
        return sl__vstr_new(s->data, s->len);
    sl_vstr_t *shared = (sl_vstr_t *)s; /* the count is not the string: strings never change */
    shared->refs++;
    return shared;
}

void sl__vstr_drop(sl_vstr_t *s)
{
    if (s && --s->refs == 0)
        sl__free(s);
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

sl_value_t *sl_value_list(void)
{
    sl_value_t *v = new_value(SL_TYPE_LIST);
    if (v == NULL)
        return NULL;
    v->as.list = sl__calloc(1, sizeof(sl_vlist_t));
    if (v->as.list == NULL) {
        sl__free(v);
        return NULL;
    }
    return v;
}

sl_value_t *sl_value_map(void)
{
    sl_value_t *v = new_value(SL_TYPE_MAP);
    if (v == NULL)
        return NULL;
    v->as.map = sl__calloc(1, sizeof(sl_vmap_t));
    if (v->as.map == NULL) {
        sl__free(v);
        return NULL;
    }
    return v;
}

void sl_value_clear(sl_value_t *v)
{
    switch (v->type) {
    case SL_TYPE_STRING:
        sl__vstr_drop(v->as.s);
        break;
    case SL_TYPE_LIST:
        for (size_t i = 0; i < v->as.list->len; i++)
            sl_value_clear(&v->as.list->items[i]);
        sl__free(v->as.list->items);
        sl__free(v->as.list);
        break;
    case SL_TYPE_MAP:
        for (size_t i = 0; i < v->as.map->len; i++) {
            sl__vstr_drop(v->as.map->entries[i].key);
            sl_value_clear(&v->as.map->entries[i].value);
        }
        sl__free(v->as.map->entries);
        sl__free(v->as.map);
        break;
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
    case SL_TYPE_LIST: {
        const sl_vlist_t *from = src->as.list;
        sl_vlist_t *list = sl__calloc(1, sizeof(*list));
        if (list == NULL)
            return SL_ENOMEM;
        dst->type = SL_TYPE_LIST;
        dst->as.list = list;
        if (from->len == 0)
            return 0;
        list->items = sl__malloc(from->len * sizeof(sl_value_t));
        if (list->items == NULL)
            goto fail;
        list->cap = from->len;
        for (size_t i = 0; i < from->len; i++) {
            if (sl_value_copy_into(&list->items[i], &from->items[i]) < 0)
                goto fail; /* len counts the copied ones, so clearing frees them */
            list->len++;
        }
        return 0;
    }
    case SL_TYPE_MAP: {
        const sl_vmap_t *from = src->as.map;
        sl_vmap_t *map = sl__calloc(1, sizeof(*map));
        if (map == NULL)
            return SL_ENOMEM;
        dst->type = SL_TYPE_MAP;
        dst->as.map = map;
        if (from->len == 0)
            return 0;
        map->entries = sl__malloc(from->len * sizeof(sl_ventry_t));
        if (map->entries == NULL)
            goto fail;
        map->cap = from->len;
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
    }
    default:
        *dst = *src;
        return 0;
    }
fail:
    sl_value_clear(dst); /* a failed copy owns nothing and reads as nil */
    return SL_ENOMEM;
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

int sl_value_reserve(sl_value_t *list, size_t n)
{
    if (list != NULL && list->type == SL_TYPE_MAP) {
        sl_vmap_t *m = list->as.map;
        if (n <= m->cap - m->len)
            return 0;
        if (n > SIZE_MAX / sizeof(sl_ventry_t) - m->len)
            return SL_ENOMEM;
        sl_ventry_t *entries = sl__realloc(m->entries, (m->len + n) * sizeof(sl_ventry_t));
        if (entries == NULL)
            return SL_ENOMEM;
        m->entries = entries;
        m->cap = m->len + n;
        return 0;
    }
    if (list == NULL || list->type != SL_TYPE_LIST)
        return SL_ETYPE;
    sl_vlist_t *l = list->as.list;
    if (n <= l->cap - l->len)
        return 0;
    if (n > SIZE_MAX / sizeof(sl_value_t) - l->len)
        return SL_ENOMEM;
    size_t cap = l->cap ? l->cap : 4;
    while (cap - l->len < n)
        cap = cap * 2 < cap ? l->len + n : cap * 2;
    sl_value_t *items = sl__realloc(l->items, cap * sizeof(sl_value_t));
    if (items == NULL)
        return SL_ENOMEM;
    l->items = items;
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

/* Appends an entry with key `k` (taken, even on failure); the caller knows it is new. */
static int map_append_vstr(sl_vmap_t *m, sl_vstr_t *k, sl_value_t *item)
{
    if (k == NULL || sl__array_grow(&m->entries, &m->cap, m->len, sizeof(*m->entries), 4) < 0) {
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
    return map_append_vstr(map->as.map, sl__vstr_new(key, key_len), item);
}

int sl__value_map_append_key(sl_value_t *map, const sl_vstr_t *key, sl_value_t *item)
{
    if (item == NULL)
        return SL_ENOMEM;
    if (map == NULL || map->type != SL_TYPE_MAP) {
        sl_value_free(item);
        return SL_ETYPE;
    }
    return map_append_vstr(map->as.map, sl__vstr_share(key), item);
}

int sl_value_set(sl_value_t *map, const char *key, sl_value_t *item)
{
    if (item == NULL)
        return SL_ENOMEM;
    if (map == NULL || map->type != SL_TYPE_MAP || key == NULL) {
        sl_value_free(item);
        return SL_ETYPE;
    }
    sl_vmap_t *m = map->as.map;
    size_t key_len = strlen(key);
    sl_ventry_t *e = find_entry(m, key, key_len);
    if (e) {
        sl_value_clear(&e->value);
        sl_value_move_into(&e->value, item);
        return 0;
    }
    return map_append_vstr(m, sl__vstr_new(key, key_len), item);
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
        if (a->as.list->len != b->as.list->len)
            return false;
        for (size_t i = 0; i < a->as.list->len; i++)
            if (!sl_value_equal(&a->as.list->items[i], &b->as.list->items[i]))
                return false;
        return true;
    case SL_TYPE_MAP:
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
