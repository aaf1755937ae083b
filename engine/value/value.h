/*
 * value: the one value type of sluice, shared by expressions, plugins, IPC
 * and the store. Plugins reach these functions through the host table.
 *
 * A value is a 16-byte tagged union. Lists hold their elements inline, so a
 * list of a million integers is one allocation; strings carry their length
 * and a trailing NUL. Maps keep insertion order.
 *
 * Strings, lists and maps are shared by copies: a copy of 15,000 step outputs
 * (`${{ steps.sieve }}`) is one count increment, not 30,000 allocations. A list or
 * map is copied on write: every function that changes one (push, set, reserve,
 * append) first makes it its holder's own, and code writing into a container's
 * elements directly calls sl__value_unshare first.
 *
 * Ownership follows the host table (sluice/plugin.h): constructors return a
 * new heap value; push/set take ownership of the item; getters borrow.
 * Not thread-safe: a value belongs to one thread at a time.
 */
#ifndef SL_VALUE_H
#define SL_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"
#include "util/util.h"

/*
 * A string value or map key. Immutable once made, so copies share it: `refs` counts its
 * owners, and a copy of a 50 KB page or of 15,000 maps' keys allocates nothing for them.
 * Only the loop thread (or a worker process's one thread) touches the count.
 */
typedef struct sl_vstr {
    size_t len;
    uint32_t refs; /* 1 when made (sl__vstr_new, or by hand with refs = 1) */
    char data[];   /* len bytes and a NUL */
} sl_vstr_t;

/* A list or map made with room for its elements holds them right after itself (one
 * allocation); one that grows past that room moves them to a block of their own. */
typedef struct sl_vlist {
    size_t len;
    size_t cap;
    sl_value_t *items;
    uint32_t refs; /* its owners: copies share a container until one writes */
} sl_vlist_t;

typedef struct sl_ventry sl_ventry_t;

typedef struct sl_vmap {
    size_t len;
    size_t cap;
    sl_ventry_t *entries;
    uint32_t refs;
} sl_vmap_t;

struct sl_value {
    uint8_t type; /* sl_type_t */
    union {
        bool b;
        int64_t i;
        double n;
        sl_vstr_t *s;
        sl_vlist_t *list;
        sl_vmap_t *map;
    } as;
};

struct sl_ventry {
    sl_vstr_t *key;
    sl_value_t value;
};

/** A new string of `len` bytes from `s` (NULL: left for the caller to fill); NULL on ENOMEM. */
sl_vstr_t *sl__vstr_new(const char *s, size_t len);
/** Another owner of `s`: `s` itself, or a copy once the count is full; NULL on ENOMEM. */
sl_vstr_t *sl__vstr_share(const sl_vstr_t *s);
/** Drops an owner of `s`, freeing it with the last; NULL is a no-op. */
void sl__vstr_drop(sl_vstr_t *s);

/* Constructors: a new heap value, NULL when out of memory. */
sl_value_t *sl_value_nil(void);
sl_value_t *sl_value_bool(int b);
sl_value_t *sl_value_int(int64_t i);
sl_value_t *sl_value_number(double n);
sl_value_t *sl_value_string(const char *s, size_t len);
sl_value_t *sl_value_cstring(const char *s);
/**
 * A string value that takes `str` (allocated with sl__malloc, len set, data NUL-terminated)
 * without copying it; NULL when out of memory (the caller still owns `str` then).
 */
sl_value_t *sl__value_string_adopt(sl_vstr_t *str);
sl_value_t *sl_value_list(void);
sl_value_t *sl_value_map(void);
sl_value_t *sl_value_copy(const sl_value_t *v);
/** Frees a heap value and everything in it; NULL is a no-op. */
void sl_value_free(sl_value_t *v);

/* In-place forms, for values embedded in other structs. */
static inline void sl_value_init_nil(sl_value_t *v)
{
    v->type = SL_TYPE_NIL;
    v->as.i = 0;
}
/** Releases what `v` owns and leaves it nil; does not free `v` itself. */
void sl_value_clear(sl_value_t *v);
/** Deep-copies `src` into the uninitialised `dst`; on failure `dst` is left nil. */
int sl_value_copy_into(sl_value_t *dst, const sl_value_t *src);
/** Moves a heap value's contents into `dst` and frees the shell. */
void sl_value_move_into(sl_value_t *dst, sl_value_t *heap);
/**
 * Makes the uninitialised `dst` an empty list (map) with room for `cap` elements (entries)
 * in the same allocation, for decoders that know the count. SL_ENOMEM leaves `dst` nil.
 */
int sl__value_init_list(sl_value_t *dst, size_t cap);
int sl__value_init_map(sl_value_t *dst, size_t cap);
/** The same as a new heap value; NULL when out of memory. */
sl_value_t *sl__value_new_list(size_t cap);
sl_value_t *sl__value_new_map(size_t cap);
/**
 * Makes the list or map `v` holds its own (a shallow copy when it is shared), for code
 * about to write into its elements; other values are left alone. 0 or SL_ENOMEM.
 */
int sl__value_unshare(sl_value_t *v);

sl_type_t sl_value_type(const sl_value_t *v);
int sl_value_truthy(const sl_value_t *v);
int64_t sl_value_int_of(const sl_value_t *v);
double sl_value_number_of(const sl_value_t *v);
const char *sl_value_str(const sl_value_t *v, size_t *len);
size_t sl_value_len(const sl_value_t *v);
const sl_value_t *sl_value_at(const sl_value_t *list, size_t i);
const sl_value_t *sl_value_entry(const sl_value_t *map, size_t i, const char **key);
const sl_value_t *sl_value_get(const sl_value_t *map, const char *key);
int sl_value_push(sl_value_t *list, sl_value_t *item);
int sl_value_set(sl_value_t *map, const char *key, sl_value_t *item);
/**
 * Appends a map entry without looking for `key` first: for decoders whose keys are
 * already unique (JSON objects from jansson, YAML maps the loader checked), so that
 * building a map of n keys costs O(n), not O(n²). Takes `item`.
 */
int sl__value_map_append(sl_value_t *map, const char *key, size_t key_len, sl_value_t *item);
/** The same with a key the map comes to share (a template's: no string is allocated). */
int sl__value_map_append_key(sl_value_t *map, const sl_vstr_t *key, sl_value_t *item);
/** Reserves room for `n` more list elements or map entries. */
int sl_value_reserve(sl_value_t *list, size_t n);

/** Deep equality (ints and numbers compare by value; map order ignored). */
bool sl_value_equal(const sl_value_t *a, const sl_value_t *b);
/** Name of a type: "nil", "boolean", "integer", "number", "string", "list", "map". */
const char *sl_value_type_name(sl_type_t t);

/* JSON (json.c). Decoding is bounded by the caller's length and a depth limit. */
int sl_value_from_json(const char *text, size_t len, sl_value_t **out, char *err,
                       size_t err_size);
int sl_value_to_json(const sl_value_t *v, char **out, size_t *len);
/** Appends JSON to a bounded buffer; pretty-prints with `indent` > 0. */
int sl__value_json_append(sl_buf_t *b, const sl_value_t *v, int indent);

/* ---- wire encoding (wire.c) ----------------------------------------------------------
 * A compact binary form of a value, for the worker pipes (and later the store): a tag
 * byte, then for integers a zigzag varint, for numbers 8 bytes little-endian, for
 * strings a varint length and the bytes, for lists a varint count and the elements, for
 * maps a varint count and (varint key length, key bytes, value) per entry. Decoding
 * checks every length against the bytes left, so hostile input costs at most its size. */
#define SL_WIRE_DEPTH_MAX 1000               /* nesting, as the JSON encoder allows */
#define SL_WIRE_BYTES_MAX (1024u * 1024 * 1024) /* longest string or key */

/**
 * Exact encoded size of `v` in *size. Returns SL_ELIMIT when `v` nests deeper than
 * SL_WIRE_DEPTH_MAX or holds a string longer than SL_WIRE_BYTES_MAX (nothing is encoded).
 */
int sl__value_wire_size(const sl_value_t *v, size_t *size);
/** Writes the encoding of `v` (which sl__value_wire_size accepted) to `out`, which has
 *  room for that size. Returns the bytes written. */
size_t sl__value_wire_encode(const sl_value_t *v, uint8_t *out);
/**
 * Decodes one value from `data[0..len)` into the uninitialised `dst` and sets *used to
 * the bytes it took. Returns SL_EPARSE (truncated or malformed), SL_ELIMIT (too deep,
 * too long) or SL_ENOMEM, leaving `dst` nil; never reads past `len`.
 */
int sl__value_wire_decode_into(sl_value_t *dst, const uint8_t *data, size_t len, size_t *used);
/** The same into a new heap value (*out, owned by the caller). */
int sl__value_wire_decode(const uint8_t *data, size_t len, size_t *used, sl_value_t **out);

#define SL_WIRE_KEYS 16

/**
 * Map keys met lately, for decodes to share: a stream of task arguments or outputs repeats
 * the same few keys, and each one met again costs no allocation. Zero-initialise; clear
 * with sl__wire_keys_clear.
 */
typedef struct sl_wire_keys {
    sl_vstr_t *slot[SL_WIRE_KEYS];
    unsigned next; /* the slot a new key takes */
} sl_wire_keys_t;

void sl__wire_keys_clear(sl_wire_keys_t *keys);
/** sl__value_wire_decode_into, sharing keys through `keys` (NULL: no sharing). */
int sl__value_wire_decode_keys(sl_value_t *dst, const uint8_t *data, size_t len, size_t *used,
                               sl_wire_keys_t *keys);

#endif
