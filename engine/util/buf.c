/* Bounded growable buffer. */
#include <stdio.h>
#include <string.h>

#include "util.h"

void sl__buf_init(sl_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sl__buf_close(sl_buf_t *b)
{
    sl__free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void sl__buf_reset(sl_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static int reserve(sl_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return SL_ELIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *data = sl__realloc(b->data, cap);
    if (data == NULL)
        return SL_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

int sl__buf_add_grow(sl_buf_t *b, const void *data, size_t len)
{
    int rc = reserve(b, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int sl__buf_addf(sl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SL_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *sl__buf_take(sl_buf_t *b, size_t *len)
{
    if (b->data == NULL) {
        if (reserve(b, 0) < 0)
            return NULL;
        b->data[0] = '\0'; /* an empty buffer's text is "" too */
    }
    char *data = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return data;
}
