/*
 * expr: templates, i.e. YAML values whose strings may hold `${{ … }}`.
 *
 * A template is built once per workflow value at load time: every expression
 * is syntax-checked with Lua there (a syntax error is a FILE:LINE:COL
 * problem), and the step references it makes (steps.ID, steps["ID"],
 * steps['ID']) are recorded for the dependency graph. At run time a template
 * is evaluated per task in the run's VM (vm/vm.h), which compiles each
 * expression once and caches it; a scalar that is exactly one expression
 * keeps the expression's type, other scalars interpolate into a string.
 * Templates are immutable after sl__tmpl_new. Loop thread only.
 */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "yaml/yaml.h"
#include "util/util.h"
#include "value/value.h"

typedef struct sl_tmpl sl_tmpl_t;
typedef struct sl_vm sl_vm_t;

#define SL_TMPL_HAS_EXPR 1u  /* holds at least one expression */
#define SL_TMPL_USES_ITEM 2u /* mentions `item` or `index`: varies per task */

/**
 * Builds a template from `node`. Problems (unterminated `${{`, empty
 * expression, Lua syntax errors) go to `diag` located in `file` at the
 * expression; returns SL_EINVAL then. SL_ENOMEM when out of memory.
 */
int sl__tmpl_new(const sl_node_t *node, const char *file, sl_tmpl_t **out, sl_diag_t *diag);
/** A template of a literal value; takes ownership of `v`. */
int sl__tmpl_from_value(sl_value_t *v, sl_tmpl_t **out);
void sl__tmpl_free(sl_tmpl_t *t);

unsigned sl__tmpl_flags(const sl_tmpl_t *t);
/** Where the template starts in the file. */
sl_mark_t sl__tmpl_mark(const sl_tmpl_t *t);
/** The literal value of a template without expressions (borrowed), else NULL. */
const sl_value_t *sl__tmpl_literal(const sl_tmpl_t *t);

/** Calls `fn` once per step reference, with the expression's position. */
void sl__tmpl_each_ref(const sl_tmpl_t *t,
                       void (*fn)(void *ud, const char *step, sl_mark_t mark), void *ud);
/** If the template is exactly `${{ steps.ID }}` (any spelling), ID; else NULL. */
const char *sl__tmpl_stream_ref(const sl_tmpl_t *t);

/**
 * Evaluates the template in `vm` with `item` bound (borrowed; NULL = nil) and
 * `index` (1-based; 0 = unbound). Returns 0 and a new value in *out, or a
 * negative code with *err a message (free with sl__free) that quotes the
 * expression: SL_ELUA for a runtime error, SL_ELIMIT for a tripped budget,
 * SL_ETYPE for a result that is not a value (a function, say).
 */
int sl__expr_eval(sl_vm_t *vm, const sl_tmpl_t *t, const sl_value_t *item, int64_t index,
                  sl_value_t **out, char **err);

/**
 * Calls `fn` once per step reference (`steps.ID`, `steps["ID"]`, `steps['ID']`)
 * in Lua source `src`, skipping strings and comments: the same scan templates
 * use, for callers that want the references of a `lua` step's `code`. `id` is
 * not NUL-terminated. Stops at and returns fn's first negative result; else 0.
 */
int sl__expr_scan_refs(const char *src, size_t len,
                       int (*fn)(void *ud, const char *id, size_t id_len), void *ud);

/** The same scan for the fields of another name: `root` "vars" finds `vars.NAME`. */
int sl__expr_scan_fields(const char *src, size_t len, const char *root,
                         int (*fn)(void *ud, const char *id, size_t id_len), void *ud);
/**
 * Calls `fn` once per `vars.NAME` (or `vars["NAME"]`) in the template's expressions, with
 * the expression's position; `name` is not NUL-terminated. Stops at fn's first negative
 * result and returns it; else 0.
 */
int sl__tmpl_each_var_ref(const sl_tmpl_t *t,
                          int (*fn)(void *ud, const char *name, size_t len, sl_mark_t mark),
                          void *ud);
/** Syntax-checks one expression (the text between `${{` and `}}`). */
int sl__expr_check(const char *src, size_t len, char *err, size_t err_size);

#endif
