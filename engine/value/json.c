/* JSON: decoding through jansson, encoding written straight from values. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "value.h"

#define JSON_TEXT_MAX ((size_t)1 << 30) /* 1 GiB: encoding past this is refused */

static int from_jansson(const json_t *j, sl_value_t *out)
{
    sl_value_init_nil(out);
    switch (json_typeof(j)) {
    case JSON_NULL:
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        out->type = SL_TYPE_BOOL;
        out->as.b = json_is_true(j);
        return 0;
    case JSON_INTEGER:
        out->type = SL_TYPE_INT;
        out->as.i = json_integer_value(j);
        return 0;
    case JSON_REAL:
        out->type = SL_TYPE_NUMBER;
        out->as.n = json_real_value(j);
        return 0;
    case JSON_STRING: {
        sl_value_t *s = sl_value_string(json_string_value(j), json_string_length(j));
        if (s == NULL)
            return SL_ENOMEM;
        sl_value_move_into(out, s);
        return 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (sl__value_init_list(out, n) < 0)
            return SL_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            sl_vlist_t *l = out->as.list;
            if (from_jansson(json_array_get(j, i), &l->items[l->len]) < 0) {
                sl_value_clear(&l->items[l->len]);
                return SL_ENOMEM;
            }
            l->len++;
        }
        return 0;
    }
    case JSON_OBJECT: {
        if (sl__value_init_map(out, json_object_size(j)) < 0)
            return SL_ENOMEM;
        const char *key;
        json_t *item;
        json_object_foreach((json_t *)j, key, item) {
            sl_value_t *v = sl__malloc(sizeof(*v));
            if (v == NULL)
                return SL_ENOMEM;
            if (from_jansson(item, v) < 0) {
                sl_value_free(v);
                return SL_ENOMEM;
            }
            /* jansson keeps the last of duplicate keys, so keys are unique here */
            if (sl__value_map_append(out, key, strlen(key), v) < 0)
                return SL_ENOMEM;
        }
        return 0;
    }
    }
    return SL_EINTERNAL;
}

int sl_value_from_json(const char *text, size_t len, sl_value_t **out, char *err,
                       size_t err_size)
{
    *out = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        if (err && err_size)
            snprintf(err, err_size, "invalid JSON at line %d, column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        return SL_EPARSE;
    }
    sl_value_t *v = sl__malloc(sizeof(*v));
    int rc = v ? from_jansson(root, v) : SL_ENOMEM;
    json_decref(root);
    if (rc < 0) {
        sl_value_free(v);
        if (err && err_size)
            snprintf(err, err_size, "%s", sl_strerror(rc));
        return rc;
    }
    *out = v;
    return 0;
}

/* JSON text is UTF-8: a byte that does not start a valid sequence (a Latin-1 page,
 * binary output) is written as U+FFFD, so the document stays valid JSON. */
static int append_string(sl_buf_t *b, const char *s, size_t len)
{
    int rc = sl__buf_addc(b, '"');
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t n = sl__utf8_next(s + i, len - i);
            if (n > 0) {
                i += n - 1;
                continue;
            }
            rc = sl__buf_add(b, s + run, i - run);
            run = i + 1;
            if (rc == 0)
                rc = sl__buf_add(b, "\\ufffd", 6);
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = sl__buf_add(b, s + run, i - run);
        run = i + 1;
        if (rc < 0)
            break;
        switch (c) {
        case '"': rc = sl__buf_add(b, "\\\"", 2); break;
        case '\\': rc = sl__buf_add(b, "\\\\", 2); break;
        case '\n': rc = sl__buf_add(b, "\\n", 2); break;
        case '\r': rc = sl__buf_add(b, "\\r", 2); break;
        case '\t': rc = sl__buf_add(b, "\\t", 2); break;
        default: rc = sl__buf_addf(b, "\\u%04x", c); break;
        }
    }
    if (rc == 0)
        rc = sl__buf_add(b, s + run, len - run);
    return rc ? rc : sl__buf_addc(b, '"');
}

static int newline(sl_buf_t *b, int indent, int depth)
{
    if (indent <= 0)
        return 0;
    int rc = sl__buf_addc(b, '\n');
    for (int i = 0; i < indent * depth && rc == 0; i++)
        rc = sl__buf_addc(b, ' ');
    return rc;
}

/* An integer in decimal, without printf: outputs are often long lists of numbers. */
static int append_int(sl_buf_t *b, int64_t i)
{
    char text[24], *end = text + sizeof(text), *p = end;
    uint64_t u = i < 0 ? 0 - (uint64_t)i : (uint64_t)i;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (i < 0)
        *--p = '-';
    return sl__buf_add(b, p, (size_t)(end - p));
}

static int append_value(sl_buf_t *b, const sl_value_t *v, int indent, int depth)
{
    if (depth > 1000)
        return SL_ELIMIT;
    switch (sl_value_type(v)) {
    case SL_TYPE_NIL:
        return sl__buf_add(b, "null", 4);
    case SL_TYPE_BOOL:
        return v->as.b ? sl__buf_add(b, "true", 4) : sl__buf_add(b, "false", 5);
    case SL_TYPE_INT:
        return append_int(b, v->as.i);
    case SL_TYPE_NUMBER:
        if (!isfinite(v->as.n))
            return sl__buf_add(b, "null", 4);
        if (v->as.n == floor(v->as.n) && fabs(v->as.n) < 1e15)
            return sl__buf_addf(b, "%.1f", v->as.n);
        return sl__buf_addf(b, "%.17g", v->as.n);
    case SL_TYPE_STRING:
        return append_string(b, v->as.s->data, v->as.s->len);
    case SL_TYPE_LIST: {
        const sl_vlist_t *l = v->as.list;
        int rc = sl__buf_addc(b, '[');
        for (size_t i = 0; i < l->len && rc == 0; i++) {
            if (i)
                rc = sl__buf_addc(b, ',');
            if (rc == 0)
                rc = newline(b, indent, depth + 1);
            if (rc == 0)
                rc = append_value(b, &l->items[i], indent, depth + 1);
        }
        if (rc == 0 && l->len)
            rc = newline(b, indent, depth);
        return rc ? rc : sl__buf_addc(b, ']');
    }
    case SL_TYPE_MAP: {
        const sl_vmap_t *m = v->as.map;
        int rc = sl__buf_addc(b, '{');
        for (size_t i = 0; i < m->len && rc == 0; i++) {
            if (i)
                rc = sl__buf_addc(b, ',');
            if (rc == 0)
                rc = newline(b, indent, depth + 1);
            if (rc == 0)
                rc = append_string(b, m->entries[i].key->data, m->entries[i].key->len);
            if (rc == 0)
                rc = indent > 0 ? sl__buf_add(b, ": ", 2) : sl__buf_addc(b, ':');
            if (rc == 0)
                rc = append_value(b, &m->entries[i].value, indent, depth + 1);
        }
        if (rc == 0 && m->len)
            rc = newline(b, indent, depth);
        return rc ? rc : sl__buf_addc(b, '}');
    }
    }
    return SL_EINTERNAL;
}

int sl__value_json_append(sl_buf_t *b, const sl_value_t *v, int indent)
{
    return append_value(b, v, indent, 0);
}

int sl_value_to_json(const sl_value_t *v, char **out, size_t *len)
{
    sl_buf_t b;
    sl__buf_init(&b, JSON_TEXT_MAX);
    int rc = append_value(&b, v, 0, 0);
    if (rc < 0) {
        sl__buf_close(&b);
        *out = NULL;
        return rc;
    }
    *out = sl__buf_take(&b, len);
    return *out ? 0 : SL_ENOMEM;
}
