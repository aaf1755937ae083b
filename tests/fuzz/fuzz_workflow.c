/*
 * libFuzzer target: a workflow file, from YAML to a validated workflow and its
 * graph. Kinds are the built-in ones (see tests/fuzz/CMakeLists.txt to run).
 * Invariant checked: a load either succeeds with no problems or fails with at
 * least one problem that has a message.
 */
#include <stdio.h>
#include <stdlib.h>

#include "graph/graph.h"
#include "loader/workflow.h"
#include "../unit/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sl_registry_t *registry;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (registry == NULL && test_registry_new(&registry) < 0)
        abort();
    sl_diag_t diag;
    sl__diag_init(&diag);
    sl_workflow_t *wf = NULL;
    int rc = sl__workflow_load_text("fuzz.yaml", (const char *)data, size, registry, &wf, &diag);
    if (rc == 0) {
        if (wf == NULL || diag.count != 0)
            abort();
        sl_graph_t graph;
        if (sl__workflow_graph(wf, &graph) < 0)
            abort();
        size_t *order = sl__malloc((wf->step_count ? wf->step_count : 1) * sizeof(size_t));
        if (order && sl__graph_order(&graph, order) != 0)
            abort(); /* a loaded workflow has no cycle */
        sl__free(order);
        FILE *null_out = fopen("/dev/null", "w");
        if (null_out) {
            sl__graph_write(&graph, SL_GRAPH_DOT, null_out);
            sl__graph_write(&graph, SL_GRAPH_MERMAID, null_out);
            fclose(null_out);
        }
        sl__graph_close(&graph);
    } else if (rc == SL_EINVAL && (wf != NULL || diag.count == 0)) {
        abort();
    }
    sl__workflow_free(wf);
    sl__diag_close(&diag);
    return 0;
}
