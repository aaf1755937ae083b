/*
 * The wire encoding of values (value.h): what crosses the worker pipes. Sizes are
 * computed first so the encoder writes straight into the caller's buffer (the pipe's
 * write buffer), and each string is copied exactly once each way.
 */
#include <string.h>

#include "value.h"

enum {
    TAG_NIL = 0,
    TAG_FALSE = 1,
    TAG_TRUE = 2,
    TAG_INT = 3,
    TAG_NUMBER = 4,
    TAG_STRING = 5,
    TAG_LIST = 6,
    TAG_MAP = 7
};

static size_t varint_size(uint64_t n)
{
    size_t size = 1;
    while (n >= 0x80) {
        n >>= 7;
        size++;
    }
    return size;
}

static size_t put_varint(uint8_t *out, uint64_t n)
{
    size_t i = 0;
    while (n >= 0x80) {
        out[i++] = (uint8_t)(n | 0x80);
        n >>= 7;
    }
    out[i++] = (uint8_t)n;
    return i;
}

static uint64_t zigzag(int64_t i)
{
    return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
}

static int64_t unzigzag(uint64_t n)
{
    return (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
}

static int size_of(const sl_value_t *v, int depth, size_t *size)
{
    if (depth > SL_WIRE_DEPTH_MAX)
        return SL_ELIMIT;
    switch (v->type) {
    case SL_TYPE_INT:
        *size += 1 + varint_size(zigzag(v->as.i));
        return 0;
    case SL_TYPE_NUMBER:
        *size += 9;
        return 0;
    case SL_TYPE_STRING:
        if (v->as.s->len > SL_WIRE_BYTES_MAX)
            return SL_ELIMIT;
        *size += 1 + varint_size(v->as.s->len) + v->as.s->len;
        return 0;
    case SL_TYPE_LIST:
        *size += 1 + varint_size(v->as.list->len);
        for (size_t i = 0; i < v->as.list->len; i++) {
            int rc = size_of(&v->as.list->items[i], depth + 1, size);
            if (rc < 0)
                return rc;
        }
        return 0;
    case SL_TYPE_MAP:
        *size += 1 + varint_size(v->as.map->len);
        for (size_t i = 0; i < v->as.map->len; i++) {
            const sl_ventry_t *e = &v->as.map->entries[i];
            if (e->key->len > SL_WIRE_BYTES_MAX)
                return SL_ELIMIT;
            *size += varint_size(e->key->len) + e->key->len;
            int rc = size_of(&e->value, depth + 1, size);
            if (rc < 0)
                return rc;
        }
        return 0;
    default: /* nil, booleans */
        *size += 1;
        return 0;
    }
}

int sl__value_wire_size(const sl_value_t *v, size_t *size)
{
    static const sl_value_t nil = {.type = SL_TYPE_NIL};
    *size = 0;
    return size_of(v ? v : &nil, 0, size);
}

static size_t put_bytes(uint8_t *out, const char *data, size_t len)
{
    size_t n = put_varint(out, len);
    if (len)
        memcpy(out + n, data, len);
    return n + len;
}

size_t sl__value_wire_encode(const sl_value_t *v, uint8_t *out)
{
    if (v == NULL) {
        out[0] = TAG_NIL;
        return 1;
    }
    size_t n = 1;
    switch (v->type) {
    case SL_TYPE_BOOL:
        out[0] = v->as.b ? TAG_TRUE : TAG_FALSE;
        return 1;
    case SL_TYPE_INT:
        out[0] = TAG_INT;
        return 1 + put_varint(out + 1, zigzag(v->as.i));
    case SL_TYPE_NUMBER: {
        uint64_t bits;
        memcpy(&bits, &v->as.n, sizeof(bits));
        out[0] = TAG_NUMBER;
        for (int i = 0; i < 8; i++)
            out[1 + i] = (uint8_t)(bits >> (8 * i));
        return 9;
    }
    case SL_TYPE_STRING:
        out[0] = TAG_STRING;
        return 1 + put_bytes(out + 1, v->as.s->data, v->as.s->len);
    case SL_TYPE_LIST:
        out[0] = TAG_LIST;
        n += put_varint(out + n, v->as.list->len);
        for (size_t i = 0; i < v->as.list->len; i++)
            n += sl__value_wire_encode(&v->as.list->items[i], out + n);
        return n;
    case SL_TYPE_MAP:
        out[0] = TAG_MAP;
        n += put_varint(out + n, v->as.map->len);
        for (size_t i = 0; i < v->as.map->len; i++) {
            const sl_ventry_t *e = &v->as.map->entries[i];
            n += put_bytes(out + n, e->key->data, e->key->len);
            n += sl__value_wire_encode(&e->value, out + n);
        }
        return n;
    default:
        out[0] = TAG_NIL;
        return 1;
    }
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *data;
    size_t len, pos;
    sl_wire_keys_t *keys; /* NULL: every key is a new string */
} reader_t;

static int get_varint(reader_t *r, uint64_t *out)
{
    uint64_t n = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->len)
            return SL_EPARSE;
        uint8_t byte = r->data[r->pos++];
        if (shift == 63 && byte > 1)
            return SL_EPARSE; /* more than 64 bits */
        n |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = n;
            return 0;
        }
    }
    return SL_EPARSE;
}

/* A length, checked against the bytes left (each counted thing takes at least one). */
static int get_length(reader_t *r, uint64_t *out)
{
    int rc = get_varint(r, out);
    if (rc < 0)
        return rc;
    if (*out > SL_WIRE_BYTES_MAX)
        return SL_ELIMIT;
    return *out > r->len - r->pos ? SL_EPARSE : 0;
}

static sl_vstr_t *get_str(reader_t *r, int *rc)
{
    uint64_t len;
    *rc = get_length(r, &len);
    if (*rc < 0)
        return NULL;
    sl_vstr_t *s = sl__vstr_new((const char *)r->data + r->pos, (size_t)len);
    if (s == NULL) {
        *rc = SL_ENOMEM;
        return NULL;
    }
    r->pos += (size_t)len;
    return s;
}

/* A map key: one of the keys met lately when it is there, else a new string kept for later. */
static sl_vstr_t *get_key(reader_t *r, int *rc)
{
    sl_wire_keys_t *keys = r->keys;
    if (keys == NULL)
        return get_str(r, rc);
    uint64_t len;
    *rc = get_length(r, &len);
    if (*rc < 0)
        return NULL;
    const uint8_t *bytes = r->data + r->pos;
    for (unsigned i = 0; i < SL_WIRE_KEYS && keys->slot[i]; i++) {
        const sl_vstr_t *k = keys->slot[i];
        if (k->len == len && memcmp(k->data, bytes, (size_t)len) == 0) {
            sl_vstr_t *key = sl__vstr_share(k);
            r->pos += (size_t)len;
            *rc = key ? 0 : SL_ENOMEM;
            return key;
        }
    }
    sl_vstr_t *key = sl__vstr_new((const char *)bytes, (size_t)len);
    if (key == NULL) {
        *rc = SL_ENOMEM;
        return NULL;
    }
    r->pos += (size_t)len;
    sl_vstr_t *kept = sl__vstr_share(key);
    if (kept) {
        sl__vstr_drop(keys->slot[keys->next]);
        keys->slot[keys->next] = kept;
        keys->next = (keys->next + 1) % SL_WIRE_KEYS;
    }
    return key;
}

void sl__wire_keys_clear(sl_wire_keys_t *keys)
{
    for (unsigned i = 0; i < SL_WIRE_KEYS; i++) {
        sl__vstr_drop(keys->slot[i]);
        keys->slot[i] = NULL;
    }
    keys->next = 0;
}

static int decode(reader_t *r, sl_value_t *dst, int depth);

static int decode_list(reader_t *r, sl_value_t *dst, int depth)
{
    uint64_t count;
    int rc = get_length(r, &count);
    if (rc < 0)
        return rc;
    if (sl__value_init_list(dst, (size_t)count) < 0)
        return SL_ENOMEM;
    sl_vlist_t *list = dst->as.list;
    for (size_t i = 0; i < count; i++) {
        rc = decode(r, &list->items[i], depth + 1);
        if (rc < 0)
            return rc;
        list->len++; /* only decoded elements are counted, so clearing frees them */
    }
    return 0;
}

static int decode_map(reader_t *r, sl_value_t *dst, int depth)
{
    uint64_t count;
    int rc = get_length(r, &count);
    if (rc < 0)
        return rc;
    if (sl__value_init_map(dst, (size_t)count) < 0)
        return SL_ENOMEM;
    sl_vmap_t *map = dst->as.map;
    for (size_t i = 0; i < count; i++) {
        sl_ventry_t *e = &map->entries[i];
        e->key = get_key(r, &rc);
        if (e->key == NULL)
            return rc;
        rc = decode(r, &e->value, depth + 1);
        if (rc < 0) {
            sl__vstr_drop(e->key);
            return rc;
        }
        map->len++;
    }
    return 0;
}

/* On failure `dst` may hold a partial value: decode() clears it. */
static int decode_one(reader_t *r, sl_value_t *dst, int depth)
{
    if (depth > SL_WIRE_DEPTH_MAX)
        return SL_ELIMIT;
    if (r->pos >= r->len)
        return SL_EPARSE;
    uint8_t tag = r->data[r->pos++];
    uint64_t n;
    int rc = 0;
    switch (tag) {
    case TAG_NIL:
        return 0;
    case TAG_FALSE:
    case TAG_TRUE:
        dst->type = SL_TYPE_BOOL;
        dst->as.b = tag == TAG_TRUE;
        return 0;
    case TAG_INT:
        rc = get_varint(r, &n);
        if (rc == 0) {
            dst->type = SL_TYPE_INT;
            dst->as.i = unzigzag(n);
        }
        return rc;
    case TAG_NUMBER:
        if (r->len - r->pos < 8)
            return SL_EPARSE;
        n = 0;
        for (int i = 0; i < 8; i++)
            n |= (uint64_t)r->data[r->pos + (size_t)i] << (8 * i);
        r->pos += 8;
        dst->type = SL_TYPE_NUMBER;
        memcpy(&dst->as.n, &n, sizeof(n));
        return 0;
    case TAG_STRING:
        dst->as.s = get_str(r, &rc);
        if (dst->as.s)
            dst->type = SL_TYPE_STRING;
        return rc;
    case TAG_LIST:
        return decode_list(r, dst, depth);
    case TAG_MAP:
        return decode_map(r, dst, depth);
    default:
        return SL_EPARSE;
    }
}

/* Decodes into the uninitialised `dst`; on failure `dst` is nil and owns nothing. */
static int decode(reader_t *r, sl_value_t *dst, int depth)
{
    sl_value_init_nil(dst);
    int rc = decode_one(r, dst, depth);
    if (rc < 0)
        sl_value_clear(dst);
    return rc;
}

int sl__value_wire_decode_into(sl_value_t *dst, const uint8_t *data, size_t len, size_t *used)
{
    return sl__value_wire_decode_keys(dst, data, len, used, NULL);
}

int sl__value_wire_decode_keys(sl_value_t *dst, const uint8_t *data, size_t len, size_t *used,
                               sl_wire_keys_t *keys)
{
    reader_t r = {data, len, 0, keys};
    int rc = decode(&r, dst, 0);
    if (rc < 0)
        return rc;
    if (used)
        *used = r.pos;
    return 0;
}

int sl__value_wire_decode(const uint8_t *data, size_t len, size_t *used, sl_value_t **out)
{
    *out = NULL;
    sl_value_t *v = sl__malloc(sizeof(*v));
    if (v == NULL)
        return SL_ENOMEM;
    int rc = sl__value_wire_decode_into(v, data, len, used);
    if (rc < 0) {
        sl__free(v);
        return rc;
    }
    *out = v;
    return 0;
}
