/* Value strings: immutable, reference-counted, shared by copies and map keys. */
#include <string.h>

#include "value.h"

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
