/*
 * graph: a dependency graph of named nodes (a workflow's steps, as the loader gives it):
 * cycle detection that names the cycle, a topological order, and DOT / Mermaid output.
 * Iterative throughout, so a 100,000-node chain needs no deep recursion. Knows nothing
 * of workflows. Single-threaded.
 */
#ifndef SL_GRAPH_H
#define SL_GRAPH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

#define SL_GRAPH_NONE SIZE_MAX

/** One node; its strings and `deps` are borrowed from whoever filled the graph. */
typedef struct sl_graph_node {
    const char *id;
    const char *label;   /* shown after the id ("http.get"); NULL: "?" */
    sl_mark_t mark;      /* where the node is defined, for cycle messages */
    const size_t *deps;  /* indices of the nodes it waits for */
    size_t dep_count;
    size_t stream_from;  /* the dependency drawn as a stream edge, or SL_GRAPH_NONE */
    bool multi;          /* one task per item (foreach): drawn as a stack */
} sl_graph_node_t;

typedef struct sl_graph {
    const char *name;       /* the title of DOT output */
    const char *file;       /* the file marks point into */
    sl_graph_node_t *nodes; /* owned: sl__graph_init / sl__graph_close */
    size_t count;
} sl_graph_t;

/** Makes room for `count` zeroed nodes (stream_from none). Returns SL_ENOMEM. */
int sl__graph_init(sl_graph_t *g, size_t count);
void sl__graph_close(sl_graph_t *g);

/**
 * Adds one problem per cycle to `diag`, located at a node of the cycle in `g->file`:
 * "dependency cycle: a -> b -> c -> a". Returns SL_EINVAL when there is a cycle,
 * SL_ENOMEM, or 0.
 */
int sl__graph_check(const sl_graph_t *g, sl_diag_t *diag);

/** Fills `order` (count entries) with node indices, dependencies first. */
int sl__graph_order(const sl_graph_t *g, size_t *order);

typedef enum { SL_GRAPH_DOT = 0, SL_GRAPH_MERMAID = 1 } sl_graph_format_t;

/**
 * Writes the graph (nodes labelled "id (label)", multi nodes marked). Mermaid node ids
 * are `n_ID`, or `nINDEX_ID` with '-' as '_' for an id holding '-': never a keyword.
 */
int sl__graph_write(const sl_graph_t *g, sl_graph_format_t format, FILE *out);

#endif
