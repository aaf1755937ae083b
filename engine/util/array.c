/* Growing arrays by doubling, on the engine's allocator. */
#include <string.h>

#include "util.h"

int sl__array_grow(void *items, size_t *cap, size_t count, size_t size, size_t first)
{
    if (count < *cap)
        return 0;
    size_t grown = *cap ? *cap * 2 : first;
    if (grown <= *cap || grown > SIZE_MAX / size)
        return SL_ENOMEM;
    /* `items` points at a `T *`: copy the pointer through memcpy rather than read it as a
     * `void *` lvalue, which strict aliasing would not allow. */
    void *array;
    memcpy(&array, items, sizeof(array));
    void *moved = sl__realloc(array, grown * size);
    if (moved == NULL)
        return SL_ENOMEM;
    memcpy(items, &moved, sizeof(moved));
    *cap = grown;
    return 0;
}
