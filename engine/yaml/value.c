/* YAML nodes to values: the YAML 1.2 core schema for plain scalars. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "yaml/yaml.h"

static bool is_one_of(const char *text, size_t len, const char *const *words)
{
    for (size_t i = 0; words[i]; i++) {
        if (strlen(words[i]) == len && memcmp(text, words[i], len) == 0)
            return true;
    }
    return false;
}

static bool all_digits(const char *s, size_t len, int base)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = base == 16 ? (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                   (c >= 'A' && c <= 'F')
                             : c >= '0' && c < '0' + base;
        if (!ok)
            return false;
    }
    return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_float(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++, exp_digits++;
        if (exp_digits == 0)
            return false;
    }
    return i == len;
}

/* Integers: [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+. Returns 1 when typed. */
static int scalar_int(const char *text, size_t len, sl_value_t **out)
{
    int base = 10;
    size_t skip = 0;
    if (len > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'o')) {
        base = text[1] == 'x' ? 16 : 8;
        skip = 2;
    } else if (len > 0 && (text[0] == '-' || text[0] == '+')) {
        skip = 1;
    }
    if (!all_digits(text + skip, len - skip, base))
        return 0;
    char *end;
    errno = 0;
    if (base == 10) {
        long long v = strtoll(text, &end, 10);
        if (errno == ERANGE) /* too large for an integer: a number */
            *out = sl_value_number(strtod(text, NULL));
        else
            *out = sl_value_int(v);
    } else {
        unsigned long long v = strtoull(text + skip, &end, base);
        if (errno == ERANGE || v > INT64_MAX)
            return 0;
        *out = sl_value_int((int64_t)v);
    }
    return 1;
}

static int scalar_special(const char *text, size_t len, sl_value_t **out)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
    static const char *const neg_infs[] = {"-.inf", "-.Inf", "-.INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    if (is_one_of(text, len, nulls))
        *out = sl_value_nil();
    else if (is_one_of(text, len, trues))
        *out = sl_value_bool(1);
    else if (is_one_of(text, len, falses))
        *out = sl_value_bool(0);
    else if (is_one_of(text, len, infs))
        *out = sl_value_number(INFINITY);
    else if (is_one_of(text, len, neg_infs))
        *out = sl_value_number(-INFINITY);
    else if (is_one_of(text, len, nans))
        *out = sl_value_number(NAN);
    else
        return 0;
    return 1;
}

int sl__yaml_scalar_value(const char *text, size_t len, bool plain, sl_value_t **out)
{
    *out = NULL;
    bool typed = false;
    if (plain && memchr(text, '\0', len) == NULL) {
        typed = scalar_special(text, len, out) || scalar_int(text, len, out);
        if (!typed && is_float(text, len)) {
            *out = sl_value_number(strtod(text, NULL));
            typed = true;
        }
    }
    if (!typed)
        *out = sl_value_string(text, len);
    return *out ? 0 : SL_ENOMEM;
}

/* Recursion is bounded by the tree's depth (SL_YAML_DEPTH_MAX). */
int sl__yaml_to_value(const sl_node_t *node, sl_value_t **out)
{
    *out = NULL;
    if (node == NULL)
        return (*out = sl_value_nil()) ? 0 : SL_ENOMEM;
    if (node->kind == SL_NODE_SCALAR)
        return sl__yaml_scalar_value(node->str, node->len, node->plain, out);
    bool is_map = node->kind == SL_NODE_MAP;
    sl_value_t *v = is_map ? sl_value_map() : sl_value_list();
    if (v == NULL)
        return SL_ENOMEM;
    int rc = is_map ? 0 : sl_value_reserve(v, node->count);
    for (size_t i = 0; i < node->count && rc == 0; i++) {
        sl_value_t *item;
        rc = sl__yaml_to_value(node->items[is_map ? 2 * i + 1 : i], &item);
        if (rc < 0)
            break;
        const sl_node_t *key = is_map ? node->items[2 * i] : NULL;
        if (key && key->kind == SL_NODE_SCALAR) /* unique: the YAML layer refuses duplicates */
            rc = sl__value_map_append(v, key->str, strlen(key->str), item);
        else if (is_map)
            sl_value_free(item);
        else
            rc = sl_value_push(v, item);
    }
    if (rc < 0) {
        sl_value_free(v);
        return rc;
    }
    *out = v;
    return 0;
}
