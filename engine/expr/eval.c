/*
 * Templates, run side: evaluation in the run's VM. A scalar that is exactly
 * one expression hands back the expression's value as is (no text built);
 * other scalars interpolate each expression's value into a string.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "expr/tmpl.h"
#include "vm/vm.h"

#define TEXT_MAX ((size_t)64 << 20) /* an interpolated string */
#define EVAL_ERR_MAX 1024

static bool is_name(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

/*
 * The commonest expressions, `item`, `index`, `item.NAME` on a map item and `steps.NAME`,
 * answered without entering Lua (the value would cross into the VM and back: two copies
 * of a page body per task, or of a whole step's output). Anything else, or an item that
 * is not a map, goes to Lua. Returns 1 with *out, 0 to fall through, or SL_ENOMEM.
 */
static int eval_fast(sl_vm_t *vm, const tmpl_part_t *part, const sl_value_t *item,
                     int64_t index, sl_value_t **out)
{
    const char *s = part->text;
    size_t len = part->len;
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 5 && memcmp(s, "index", 5) == 0) {
        *out = index > 0 ? sl_value_int(index) : sl_value_nil();
    } else if (len == 4 && memcmp(s, "item", 4) == 0) {
        *out = item ? sl_value_copy(item) : sl_value_nil();
    } else if (len > 5 && memcmp(s, "item.", 5) == 0 && item && item->type == SL_TYPE_MAP &&
               is_name(s + 5, len - 5) && len - 5 < 128) {
        char key[128];
        memcpy(key, s + 5, len - 5);
        key[len - 5] = '\0';
        const sl_value_t *v = sl_value_get(item, key);
        *out = v ? sl_value_copy(v) : sl_value_nil();
    } else if (len > 6 && memcmp(s, "steps.", 6) == 0 && is_name(s + 6, len - 6) &&
               len - 6 < 128) {
        char id[128];
        memcpy(id, s + 6, len - 6);
        id[len - 6] = '\0';
        const sl_value_t *v = sl__vm_step_output(vm, id);
        *out = v ? sl_value_copy(v) : sl_value_nil();
    } else {
        return 0;
    }
    return *out ? 1 : SL_ENOMEM;
}

static int eval_expr(sl_vm_t *vm, const tmpl_part_t *part, const sl_value_t *item, int64_t index,
                     sl_value_t **out, char **err)
{
    int fast = eval_fast(vm, part, item, index, out);
    if (fast != 0)
        return fast < 0 ? fast : 0;
    char msg[EVAL_ERR_MAX];
    msg[0] = '\0';
    int rc = sl__vm_eval(vm, part, part->text, part->len, "=expression", item, index, out, msg,
                         sizeof(msg));
    if (rc < 0 && err)
        *err = sl__asprintf("expression '%.*s' failed: %s", (int)part->len, part->text,
                            msg[0] ? msg : sl_strerror(rc));
    return rc;
}

/* Appends a value as text: strings as is, integers plainly, numbers with %.14g, JSON for
 * lists and maps, nothing for nil. */
static int append_text(sl_buf_t *b, const sl_value_t *v)
{
    switch (v->type) {
    case SL_TYPE_NIL:
        return 0;
    case SL_TYPE_BOOL:
        return v->as.b ? sl__buf_add(b, "true", 4) : sl__buf_add(b, "false", 5);
    case SL_TYPE_INT:
        return sl__buf_addf(b, "%" PRId64, v->as.i);
    case SL_TYPE_NUMBER:
        return sl__buf_addf(b, "%.14g", v->as.n);
    case SL_TYPE_STRING:
        return sl__buf_add(b, v->as.s->data, v->as.s->len);
    default:
        return sl__value_json_append(b, v, 0);
    }
}

static int interpolate(sl_vm_t *vm, const sl_tmpl_t *t, const sl_value_t *item, int64_t index,
                       sl_value_t **out, char **err)
{
    sl_buf_t b;
    sl__buf_init(&b, TEXT_MAX);
    int rc = 0;
    for (size_t i = 0; i < t->part_count && rc == 0; i++) {
        const tmpl_part_t *part = &t->parts[i];
        if (!part->expr) {
            rc = sl__buf_add(&b, part->text, part->len);
            continue;
        }
        sl_value_t *v = NULL;
        rc = eval_expr(vm, part, item, index, &v, err);
        if (rc == 0)
            rc = append_text(&b, v);
        sl_value_free(v);
    }
    if (rc == SL_ELIMIT && err && *err == NULL)
        *err = sl__asprintf("the text of '%s' is longer than %zu bytes", t->text, TEXT_MAX);
    if (rc == 0) {
        *out = sl_value_string(b.data ? b.data : "", b.len);
        rc = *out ? 0 : SL_ENOMEM;
    }
    sl__buf_close(&b);
    return rc;
}

static int eval_collection(sl_vm_t *vm, const sl_tmpl_t *t, const sl_value_t *item,
                           int64_t index, sl_value_t **out, char **err)
{
    bool is_map = t->kind == TMPL_MAP;
    sl_value_t *result =
        is_map ? sl__value_new_map(t->child_count) : sl__value_new_list(t->child_count);
    int rc = result ? 0 : SL_ENOMEM;
    for (size_t i = 0; i < t->child_count && rc == 0; i++) {
        sl_value_t *v = NULL;
        rc = sl__expr_eval(vm, t->children[i], item, index, &v, err);
        if (rc == 0)
            rc = is_map ? sl__value_map_append_key(result, t->keys[i], v)
                        : sl_value_push(result, v); /* keys come from a YAML map: unique */
    }
    if (rc < 0) {
        sl_value_free(result);
        return rc;
    }
    *out = result;
    return 0;
}

int sl__expr_eval(sl_vm_t *vm, const sl_tmpl_t *t, const sl_value_t *item, int64_t index,
                  sl_value_t **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    int rc;
    switch (t ? t->kind : TMPL_VALUE) {
    case TMPL_VALUE:
        *out = t && t->literal ? sl_value_copy(t->literal) : sl_value_nil();
        rc = *out ? 0 : SL_ENOMEM;
        break;
    case TMPL_TEXT:
        if (t->part_count == 1 && t->parts[0].expr)
            rc = eval_expr(vm, &t->parts[0], item, index, out, err);
        else
            rc = interpolate(vm, t, item, index, out, err);
        break;
    default:
        rc = eval_collection(vm, t, item, index, out, err);
        break;
    }
    if (rc == SL_ENOMEM && err && *err == NULL)
        *err = sl__asprintf("out of memory");
    return rc;
}
