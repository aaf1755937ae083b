/* Diagnostics: problems with a location, printed as FILE:LINE:COL: error: … */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void sl__diag_init(sl_diag_t *d)
{
    memset(d, 0, sizeof(*d));
}

void sl__diag_close(sl_diag_t *d)
{
    for (size_t i = 0; i < d->count; i++) {
        sl__free(d->items[i].file);
        sl__free(d->items[i].message);
    }
    sl__free(d->items);
    memset(d, 0, sizeof(*d));
}

int sl__diag_vadd(sl_diag_t *d, const char *file, sl_mark_t mark, const char *fmt, va_list ap)
{
    size_t max = d->max ? d->max : 1000;
    if (d->count >= max) {
        d->dropped = true;
        return 0;
    }
    if (sl__array_grow(&d->items, &d->cap, d->count, sizeof(*d->items), 8) < 0)
        return SL_ENOMEM;
    char text[1024];
    vsnprintf(text, sizeof(text), fmt, ap);
    sl_problem_t *p = &d->items[d->count];
    p->file = file ? sl__strdup(file) : NULL;
    p->message = sl__strdup(text);
    p->mark = mark;
    if (p->message == NULL || (file && p->file == NULL)) {
        sl__free(p->file);
        sl__free(p->message);
        return SL_ENOMEM;
    }
    d->count++;
    return 0;
}

int sl__diag_add(sl_diag_t *d, const char *file, sl_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sl__diag_vadd(d, file, mark, fmt, ap);
    va_end(ap);
    return rc;
}

static int compare_problems(const void *a, const void *b)
{
    const sl_problem_t *pa = a, *pb = b;
    int c = strcmp(pa->file ? pa->file : "", pb->file ? pb->file : "");
    if (c != 0)
        return c;
    if (pa->mark.line != pb->mark.line)
        return pa->mark.line < pb->mark.line ? -1 : 1;
    if (pa->mark.col != pb->mark.col)
        return pa->mark.col < pb->mark.col ? -1 : 1;
    return 0;
}

void sl__diag_sort(sl_diag_t *d)
{
    /* Insertion sort: stable, and a diag holds at most a thousand problems. */
    for (size_t i = 1; i < d->count; i++) {
        sl_problem_t p = d->items[i];
        size_t j = i;
        while (j > 0 && compare_problems(&d->items[j - 1], &p) > 0) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = p;
    }
}

void sl__diag_print(const sl_diag_t *d, void *out)
{
    FILE *f = out;
    for (size_t i = 0; i < d->count; i++) {
        const sl_problem_t *p = &d->items[i];
        if (p->file && p->mark.line)
            fprintf(f, "%s:%u:%u: error: %s\n", p->file, p->mark.line,
                    p->mark.col ? p->mark.col : 1, p->message);
        else if (p->file)
            fprintf(f, "%s: error: %s\n", p->file, p->message);
        else
            fprintf(f, "sluice: error: %s\n", p->message);
    }
    if (d->dropped)
        fprintf(f, "sluice: error: too many problems; only the first %zu are shown\n", d->count);
}
