/*
 * yaml: YAML text to a node tree that keeps line:column marks.
 *
 * Built on libyaml's event parser. Aliases are expanded by copying, bounded
 * by a node budget (a billion-laughs file gets a clear error, not an OOM);
 * the document size and nesting depth are bounded too. Duplicate map keys,
 * invalid UTF-8, multiple documents, and YAML syntax errors are reported as
 * problems with their location. Not thread-safe per tree; no global state.
 */
#ifndef SL_YAML_H
#define SL_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"
#include "value/value.h"

#define SL_YAML_BYTES_MAX ((size_t)64 << 20) /* 64 MiB document */
#define SL_YAML_NODES_MAX ((size_t)4 << 20)  /* nodes after alias expansion */
#define SL_YAML_DEPTH_MAX 256
#define SL_YAML_ALIAS_NODES_MAX ((size_t)1 << 18) /* nodes copied by aliases and merges */

typedef enum sl_node_kind { SL_NODE_SCALAR, SL_NODE_SEQ, SL_NODE_MAP } sl_node_kind_t;

typedef struct sl_node {
    sl_node_kind_t kind;
    sl_mark_t mark;   /* where the node starts (1-based) */
    bool plain;       /* scalar: written without quotes or block style */
    char *str;        /* scalar: text, NUL-terminated */
    size_t len;       /* scalar: text length */
    struct sl_node **items; /* seq: `count` items; map: 2*count (key, value, ...) */
    size_t count;
    char style;       /* scalar: 0 plain, '\'' or '"' quoted, '|' or '>' block */
    sl_mark_t end;    /* where the node ends (1-based, just past its last character) */
} sl_node_t;

/**
 * Parses `text` (as read from `file`, used in messages) into a tree.
 * Returns 0 and *out, or SL_EPARSE with every problem found added to `diag`
 * (then *out is NULL), or SL_ENOMEM / SL_ELIMIT (also described in diag).
 * An empty document gives a NULL tree and 0: callers decide if that is bad.
 */
int sl__yaml_parse(const char *file, const char *text, size_t len, sl_node_t **out,
                   sl_diag_t *diag);
/**
 * As sl__yaml_parse, but a duplicate key is reported (in `diag`), counted in *duplicates
 * and dropped (the first definition stays) instead of failing the parse, so the caller can
 * check the rest of the file and report every problem in one pass.
 */
int sl__yaml_parse_lenient(const char *file, const char *text, size_t len, sl_node_t **out,
                           sl_diag_t *diag, size_t *duplicates);
/** Reads a file whole into `buf` (initialised here; the caller closes it on success),
 *  bounded by SL_YAML_BYTES_MAX; problems go to `diag`. */
int sl__yaml_read_file(const char *file, sl_buf_t *buf, sl_diag_t *diag);
/** Reads and parses a file (bounded by SL_YAML_BYTES_MAX). */
int sl__yaml_parse_file(const char *file, sl_node_t **out, sl_diag_t *diag);
void sl__yaml_free(sl_node_t *node);

/** Map lookup by key (scalar keys); NULL when absent or `map` is not a map. */
const sl_node_t *sl__yaml_get(const sl_node_t *map, const char *key);

/**
 * Converts a node to a value. Plain scalars follow the YAML 1.2 core schema:
 * null/~/empty → nil, true/false → boolean, integers (decimal, 0x, 0o) →
 * integer, floats (.inf, .nan included) → number, the rest → string. Quoted
 * and block scalars are strings.
 */
int sl__yaml_to_value(const sl_node_t *node, sl_value_t **out);

/** The value of one plain scalar as the core schema types it. */
int sl__yaml_scalar_value(const char *text, size_t len, bool plain, sl_value_t **out);

#endif
