/* Field helpers of the loader: problems, did-you-mean, typed scalars. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loader/internal.h"

void sl__loader_fail(sl_loader_t *ld, int rc)
{
    if (ld->rc == 0)
        ld->rc = rc;
}

void sl__loader_problem(sl_loader_t *ld, sl_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (sl__diag_vadd(ld->diag, ld->file, mark, fmt, ap) < 0)
        sl__loader_fail(ld, SL_ENOMEM);
    va_end(ap);
    ld->errors++;
}

const char *sl__loader_found(const sl_node_t *node)
{
    if (node == NULL)
        return "null";
    if (node->kind == SL_NODE_MAP)
        return "a map";
    if (node->kind == SL_NODE_SEQ)
        return "a list";
    sl_value_t *v = NULL;
    if (sl__yaml_scalar_value(node->str, node->len, node->plain, &v) < 0)
        return "a scalar";
    sl_type_t type = sl_value_type(v);
    sl_value_free(v);
    static const char *const names[] = {"null", "a boolean", "an integer", "a number",
                                        "a string"};
    return (size_t)type < SL_COUNTOF(names) ? names[type] : "a scalar";
}

const char *sl__loader_suggest(const char *name, const char *const *known)
{
    const char *best = NULL;
    size_t best_distance = 3;
    for (size_t i = 0; known[i]; i++) {
        size_t d = sl__edit_distance(name, known[i], 2);
        if (d < best_distance && d < strlen(name)) {
            best_distance = d;
            best = known[i];
        }
    }
    return best;
}

static bool is_known(const char *name, const char *const *known)
{
    for (size_t i = 0; known[i]; i++) {
        if (strcmp(name, known[i]) == 0)
            return true;
    }
    return false;
}

void sl__loader_check_fields(sl_loader_t *ld, const sl_node_t *map, const char *const *known)
{
    for (size_t i = 0; map && map->kind == SL_NODE_MAP && i < map->count; i++) {
        const sl_node_t *key = map->items[2 * i];
        if (key->kind != SL_NODE_SCALAR || is_known(key->str, known))
            continue;
        const char *guess = sl__loader_suggest(key->str, known);
        if (guess)
            sl__loader_problem(ld, key->mark, "unknown field '%s' (did you mean '%s'?)",
                               key->str, guess);
        else
            sl__loader_problem(ld, key->mark, "unknown field '%s'", key->str);
    }
}

const sl_node_t *sl__loader_entry(const sl_node_t *map, const char *name,
                                  const sl_node_t **value)
{
    for (size_t i = 0; map && map->kind == SL_NODE_MAP && i < map->count; i++) {
        const sl_node_t *key = map->items[2 * i];
        if (key->kind == SL_NODE_SCALAR && strcmp(key->str, name) == 0) {
            if (value)
                *value = map->items[2 * i + 1];
            return key;
        }
    }
    return NULL;
}

/* Recursion is bounded by the tree's depth (SL_YAML_DEPTH_MAX). */
bool sl__loader_has_expr(const sl_node_t *node, sl_mark_t *where)
{
    if (node == NULL)
        return false;
    if (node->kind == SL_NODE_SCALAR) {
        if (strstr(node->str, "${{") == NULL)
            return false;
        if (where)
            *where = node->mark;
        return true;
    }
    size_t n = node->kind == SL_NODE_MAP ? node->count * 2 : node->count;
    for (size_t i = 0; i < n; i++) {
        if (sl__loader_has_expr(node->items[i], where))
            return true;
    }
    return false;
}

/* A scalar without expressions, or a problem saying what `field` expects. */
static bool literal_scalar(sl_loader_t *ld, const sl_node_t *node, const char *field,
                           const char *expects)
{
    if (node == NULL || node->kind != SL_NODE_SCALAR) {
        sl__loader_problem(ld, node ? node->mark : (sl_mark_t){0, 0},
                           "'%s' expects %s, found %s", field, expects,
                           sl__loader_found(node));
        return false;
    }
    if (strstr(node->str, "${{") != NULL) {
        sl__loader_problem(ld, node->mark, "'%s' takes a literal value, not an expression",
                           field);
        return false;
    }
    return true;
}

bool sl__loader_string(sl_loader_t *ld, const sl_node_t *node, const char *field,
                       const char **out)
{
    if (node == NULL || node->kind != SL_NODE_SCALAR) {
        sl__loader_problem(ld, node ? node->mark : (sl_mark_t){0, 0},
                           "'%s' expects a string, found %s", field, sl__loader_found(node));
        return false;
    }
    *out = node->str;
    return true;
}

bool sl__loader_text(sl_loader_t *ld, const sl_node_t *node, const char *field,
                     const char **out)
{
    const char *found = sl__loader_found(node);
    if (node == NULL || node->kind != SL_NODE_SCALAR || strcmp(found, "a string") != 0) {
        sl__loader_problem(ld, node ? node->mark : (sl_mark_t){0, 0},
                           "'%s' expects a string, got %s", field, found);
        return false;
    }
    *out = node->str;
    return true;
}

bool sl__loader_duration(sl_loader_t *ld, const sl_node_t *node, const char *field,
                         int64_t *out_ms)
{
    if (!literal_scalar(ld, node, field, "a duration"))
        return false;
    if (sl__duration_parse(node->str, out_ms) == 0)
        return true;
    sl__loader_problem(ld, node->mark,
                       "invalid duration '%s' (use 250ms, 30s, 5m, 2h, 1d or a number of "
                       "seconds)", node->str);
    return false;
}

static bool parse_uint(const char *text, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool sl__loader_uint(sl_loader_t *ld, const sl_node_t *node, const char *field, uint32_t min,
                     uint32_t max, uint32_t *out)
{
    if (!literal_scalar(ld, node, field, "an integer"))
        return false;
    uint64_t v;
    if (node->plain && parse_uint(node->str, &v) && v >= min && v <= max) {
        *out = (uint32_t)v;
        return true;
    }
    if (min == 1 && max == UINT32_MAX)
        sl__loader_problem(ld, node->mark, "'%s' expects a positive integer, got '%s'", field,
                           node->str);
    else
        sl__loader_problem(ld, node->mark, "'%s' expects an integer from %u to %u, got '%s'",
                           field, min, max, node->str);
    return false;
}

bool sl__loader_bool(sl_loader_t *ld, const sl_node_t *node, const char *field, bool *out)
{
    if (!literal_scalar(ld, node, field, "a boolean"))
        return false;
    sl_value_t *v = NULL;
    if (sl__yaml_scalar_value(node->str, node->len, node->plain, &v) < 0) {
        sl__loader_fail(ld, SL_ENOMEM);
        return false;
    }
    bool ok = sl_value_type(v) == SL_TYPE_BOOL;
    if (ok)
        *out = sl_value_truthy(v);
    else
        sl__loader_problem(ld, node->mark, "'%s' expects a boolean (true or false), got '%s'",
                           field, node->str);
    sl_value_free(v);
    return ok;
}

bool sl__loader_enum(sl_loader_t *ld, const sl_node_t *node, const char *field,
                     const char *const *names, int *out)
{
    if (!literal_scalar(ld, node, field, "a string"))
        return false;
    for (int i = 0; names[i]; i++) {
        if (strcmp(node->str, names[i]) == 0) {
            *out = i;
            return true;
        }
    }
    char list[256] = "";
    size_t used = 0;
    for (int i = 0; names[i] && used < sizeof(list); i++) {
        const char *sep = i == 0 ? "" : names[i + 1] ? ", " : " or ";
        int n = snprintf(list + used, sizeof(list) - used, "%s'%s'", sep, names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    sl__loader_problem(ld, node->mark, "'%s' must be %s, got '%s'", field, list, node->str);
    return false;
}

static bool parse_size(const char *text, uint64_t *out)
{
    static const struct { const char *suffix; double factor; } units[] = {
        {"", 1}, {"B", 1}, {"K", 1024.0}, {"KB", 1e3}, {"KiB", 1024.0},
        {"M", 1048576.0}, {"MB", 1e6}, {"MiB", 1048576.0}, {"G", 1073741824.0},
        {"GB", 1e9}, {"GiB", 1073741824.0}, {"T", 1099511627776.0}, {"TB", 1e12},
        {"TiB", 1099511627776.0},
    };
    if ((text[0] < '0' || text[0] > '9') && text[0] != '.')
        return false;
    char *end;
    errno = 0;
    double amount = strtod(text, &end);
    if (errno != 0 || !isfinite(amount) || amount < 0)
        return false;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < SL_COUNTOF(units); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double bytes = amount * units[i].factor;
            if (bytes > 9.0e18)
                return false;
            *out = (uint64_t)llround(bytes);
            return true;
        }
    }
    return false;
}

bool sl__loader_size(sl_loader_t *ld, const sl_node_t *node, const char *field, uint64_t *out)
{
    if (!literal_scalar(ld, node, field, "a size"))
        return false;
    if (parse_size(node->str, out))
        return true;
    sl__loader_problem(ld, node->mark,
                       "invalid size '%s' (use a number of bytes, or 512KiB, 256MiB, 2GiB)",
                       node->str);
    return false;
}
