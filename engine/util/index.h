/*
 * util/index: a string-keyed hash index (open addressing) used by the
 * loader for step ids, YAML anchors and duplicate keys, so a 100,000-step
 * workflow loads in linear time. Keys are borrowed: they must outlive the
 * index. Single-threaded.
 */
#ifndef SL_UTIL_INDEX_H
#define SL_UTIL_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define SL_INDEX_NONE SIZE_MAX

typedef struct sl_index_slot {
    const char *key; /* borrowed; NULL = empty */
    size_t value;
} sl_index_slot_t;

typedef struct sl_index {
    sl_index_slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} sl_index_t;

void sl__index_init(sl_index_t *ix);
void sl__index_close(sl_index_t *ix);
/**
 * Adds `key` → `value`. When the key is present already, leaves it and
 * returns 1 with *old its value (old may be NULL); `replace` then overwrites
 * the value and key pointer. Returns 0 when added, SL_ENOMEM.
 */
int sl__index_put(sl_index_t *ix, const char *key, size_t value, int replace,
                         size_t *old);
/** The value of `key`, or SL_INDEX_NONE. */
size_t sl__index_get(const sl_index_t *ix, const char *key);

#endif
