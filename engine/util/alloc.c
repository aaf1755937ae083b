/* Allocation wrapper with fault injection for tests. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* 0 = never fail. Atomic because threadpool threads allocate too (util/fsio.c under the
 * host table's file_read/file_write): counting down from two threads must not race. */
static _Atomic uint64_t fail_countdown;

void sl__alloc_fail_at(uint64_t n)
{
    atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}

static bool should_fail(void)
{
    uint64_t left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (left != 0) {
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &left, left - 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return left == 1;
    }
    return false;
}

void *sl__malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *sl__calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *sl__realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
}

void sl__free(void *p)
{
    free(p);
}

char *sl__strndup(const char *s, size_t n)
{
    char *copy = sl__malloc(n + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, n);
    copy[n] = '\0';
    return copy;
}

char *sl__strdup(const char *s)
{
    return s ? sl__strndup(s, strlen(s)) : NULL;
}

char *sl__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *out = sl__malloc((size_t)n + 1);
    if (out == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return out;
}

const char *sl_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define SL_STRERROR_CASE_(name, num, text) \
    case num:                              \
        return text;
        SL_ERRNO_MAP(SL_STRERROR_CASE_)
#undef SL_STRERROR_CASE_
    default:
        return "unknown error";
    }
}
