/*
 * graph: the step dependency graph of a loaded workflow (deps are resolved
 * to indices by the loader): cycle detection that names the cycle, a
 * topological order, and DOT / Mermaid output. Iterative throughout, so a
 * 100,000-step chain needs no deep recursion. Single-threaded.
 */
#ifndef SL_GRAPH_H
#define SL_GRAPH_H

#include <stdio.h>

#include "loader/workflow.h"
#include "util/util.h"

typedef enum { SL_GRAPH_DOT = 0, SL_GRAPH_MERMAID = 1 } sl_graph_format_t;

/**
 * Adds one problem per cycle to `diag`, located at a step of the cycle in
 * `wf->path`: "dependency cycle: a -> b -> c -> a". Returns SL_EINVAL when
 * there is a cycle, SL_ENOMEM, or 0.
 */
int sl__graph_check(const sl_workflow_t *wf, sl_diag_t *diag);

/** Fills `order` (step_count entries) with step indices, dependencies first. */
int sl__graph_order(const sl_workflow_t *wf, size_t *order);

/**
 * Writes the graph (nodes labelled "id (kind)", foreach steps marked). Mermaid node ids
 * are `n_ID`, or `nINDEX_ID` with '-' as '_' for an id holding '-': never a keyword.
 */
int sl__graph_write(const sl_workflow_t *wf, sl_graph_format_t format, FILE *out);

#endif
