/*
 * loader/internal.h: state and helpers shared by the loader's files
 * (workflow.c, fields.c, schema.c, step.c). Not for other modules.
 */
#ifndef SL_LOADER_INTERNAL_H
#define SL_LOADER_INTERNAL_H

#include "util/index.h"
#include "loader/workflow.h"

/* Step settings from `defaults:`, applied where a step does not set them. */
typedef struct sl_step_defaults {
    bool has_timeout, has_retry, has_on_error, has_concurrency, has_cache;
    sl_cache_opts_t cache;
    int64_t timeout_ms;
    sl_retry_t retry;
    sl_on_error_t on_error;
    uint32_t concurrency;
} sl_step_defaults_t;

typedef struct sl_loader {
    const char *file;
    sl_diag_t *diag;
    const sl_registry_t *reg;
    sl_workflow_t *wf;
    sl_index_t ids;                 /* step id → index */
    sl_step_defaults_t defaults;
    int errors;                     /* problems found */
    int rc;                         /* SL_ENOMEM once out of memory */
} sl_loader_t;

/* ---- fields.c ------------------------------------------------------------ */

void sl__loader_problem(sl_loader_t *ld, sl_mark_t mark, const char *fmt, ...) SL_PRINTF(3, 4);
/** Records SL_ENOMEM (or another hard failure) unless one is recorded. */
void sl__loader_fail(sl_loader_t *ld, int rc);
/** "a map", "a list", "a string", "an integer", "a number", "a boolean", "null". */
const char *sl__loader_found(const sl_node_t *node);
/** The closest of `known` (NULL-terminated) within edit distance 2, or NULL. */
const char *sl__loader_suggest(const char *name, const char *const *known);
/** Reports each key of `map` not in `known`, with a did-you-mean. */
void sl__loader_check_fields(sl_loader_t *ld, const sl_node_t *map, const char *const *known);
/** The key node of entry `name` (and its value in *value), or NULL. */
const sl_node_t *sl__loader_entry(const sl_node_t *map, const char *name,
                                  const sl_node_t **value);
/** True when a scalar of the subtree holds `${{`; *where gets the first one's mark. */
bool sl__loader_has_expr(const sl_node_t *node, sl_mark_t *where);

/* Typed fields: report a problem and return false when `node` is wrong. */
bool sl__loader_string(sl_loader_t *ld, const sl_node_t *node, const char *field,
                       const char **out);
/** Like sl__loader_string, but a plain scalar YAML types otherwise (5, true) is refused. */
bool sl__loader_text(sl_loader_t *ld, const sl_node_t *node, const char *field,
                     const char **out);
bool sl__loader_duration(sl_loader_t *ld, const sl_node_t *node, const char *field,
                         int64_t *out_ms);
bool sl__loader_uint(sl_loader_t *ld, const sl_node_t *node, const char *field, uint32_t min,
                     uint32_t max, uint32_t *out);
bool sl__loader_bool(sl_loader_t *ld, const sl_node_t *node, const char *field, bool *out);
/** One of `names` (NULL-terminated); *out is its index. */
bool sl__loader_enum(sl_loader_t *ld, const sl_node_t *node, const char *field,
                     const char *const *names, int *out);
bool sl__loader_size(sl_loader_t *ld, const sl_node_t *node, const char *field, uint64_t *out);

/* ---- schema.c ------------------------------------------------------------ */

void sl__loader_schedule(sl_loader_t *ld, const sl_node_t *node);
void sl__loader_limits(sl_loader_t *ld, const sl_node_t *node);

/* ---- http_limits.c ------------------------------------------------------- */

/** limits.http's ca_file, proxy, h2c and max_streams. */
void sl__loader_http_transport(sl_loader_t *ld, const sl_node_t *node);
void sl__loader_defaults(sl_loader_t *ld, const sl_node_t *node);
/** `cache:` as a boolean or a map {max_age}. */
bool sl__loader_cache(sl_loader_t *ld, const sl_node_t *node, sl_cache_opts_t *out);
/** `retry:` as a map or a bare number of attempts. */
bool sl__loader_retry(sl_loader_t *ld, const sl_node_t *node, sl_retry_t *out);

/* ---- step.c -------------------------------------------------------------- */

/** Loads step `index` from its map node (its id and mark are set already). */
void sl__loader_step(sl_loader_t *ld, size_t index, const sl_node_t *node);
/** Keeps stream_from only where the source step has a foreach. */
void sl__loader_streams(sl_loader_t *ld);

/* slurm.c: `slurm:` of a step, into step->slurm as sbatch options (a list of strings). */
void sl__loader_slurm(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node);
bool sl__loader_slurm_time_ok(const char *s);
bool sl__loader_slurm_mem_ok(const char *s);

#endif
