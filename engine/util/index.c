/* String-keyed hash index with borrowed keys (FNV-1a, linear probing). */
#include <string.h>

#include "util/index.h"
#include "util/util.h"

void sl__index_init(sl_index_t *ix)
{
    memset(ix, 0, sizeof(*ix));
}

void sl__index_close(sl_index_t *ix)
{
    sl__free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}

static size_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 29));
}

static sl_index_slot_t *find_slot(sl_index_slot_t *slots, size_t cap, const char *key)
{
    size_t i = hash_key(key) & (cap - 1);
    while (slots[i].key != NULL && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(sl_index_t *ix)
{
    size_t cap = ix->cap ? ix->cap * 2 : 16;
    sl_index_slot_t *slots = sl__calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return SL_ENOMEM;
    for (size_t i = 0; i < ix->cap; i++) {
        if (ix->slots[i].key != NULL)
            *find_slot(slots, cap, ix->slots[i].key) = ix->slots[i];
    }
    sl__free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    return 0;
}

int sl__index_put(sl_index_t *ix, const char *key, size_t value, int replace,
                         size_t *old)
{
    if ((ix->count + 1) * 2 > ix->cap) {
        int rc = grow(ix);
        if (rc < 0)
            return rc;
    }
    sl_index_slot_t *slot = find_slot(ix->slots, ix->cap, key);
    if (slot->key != NULL) {
        if (old)
            *old = slot->value;
        if (replace) {
            slot->key = key;
            slot->value = value;
        }
        return 1;
    }
    slot->key = key;
    slot->value = value;
    ix->count++;
    return 0;
}

size_t sl__index_get(const sl_index_t *ix, const char *key)
{
    if (ix->cap == 0)
        return SL_INDEX_NONE;
    const sl_index_slot_t *slot = find_slot(ix->slots, ix->cap, key);
    return slot->key ? slot->value : SL_INDEX_NONE;
}
