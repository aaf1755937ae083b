/*
 * The layout of a run's step graph for its page (pages.c draws it as SVG): layers by
 * dependency depth from the steps' `needs`, in the graph module's topological order, and
 * inside a layer rows ordered by the mean row of the steps' needs (one barycentre pass,
 * which untangles the common fan-out and fan-in shapes). Linear in steps and needs but
 * for one sort per layer. Past SL_DASH_GRAPH_NODES_MAX steps, the first ones in layer
 * order are drawn and the page says how many are not.
 */
#include <stdlib.h>
#include <string.h>

#include "dash/pages.h"
#include "graph/graph.h"
#include "util/index.h"

#define GAP_X 56 /* between layers */
#define GAP_Y 14 /* between rows */
#define MARGIN 8

typedef struct ranked {
    double key;  /* mean row of its needs */
    size_t step; /* ties keep workflow order */
} ranked_t;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->step < y->step ? -1 : x->step > y->step;
}

/* The graph of the run's steps, deps resolved through their ids (unknown ones dropped). */
static int build_graph(const sl_dash_run_t *run, sl_graph_t *g, size_t **deps_out)
{
    size_t n = run->step_count, edges = 0;
    for (size_t i = 0; i < n; i++)
        edges += run->steps[i].needs_count;
    size_t *deps = sl__calloc(edges ? edges : 1, sizeof(size_t));
    sl_index_t ix;
    sl__index_init(&ix);
    int rc = deps == NULL ? SL_ENOMEM : sl__graph_init(g, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *id = run->steps[i].row.id ? run->steps[i].row.id : "";
        if (sl__index_put(&ix, id, i, 0, NULL) < 0)
            rc = SL_ENOMEM;
    }
    size_t used = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        g->nodes[i].id = run->steps[i].row.id;
        g->nodes[i].deps = deps + used;
        for (size_t k = 0; k < run->steps[i].needs_count; k++) {
            const char *need = run->steps[i].needs[k];
            size_t dep = need ? sl__index_get(&ix, need) : SL_INDEX_NONE;
            if (dep != SL_INDEX_NONE && dep != i)
                deps[used + g->nodes[i].dep_count++] = dep;
        }
        used += g->nodes[i].dep_count;
    }
    sl__index_close(&ix);
    if (rc < 0) {
        sl__free(deps);
        sl__graph_close(g);
        return rc;
    }
    *deps_out = deps;
    return 0;
}

/* Each step's layer: its depth along needs that come before it in `order` (a cycle, which
 * a validated workflow never has, is cut where the order stopped). */
static void assign_layers(const sl_graph_t *g, const size_t *order, size_t *pos, size_t *layer)
{
    for (size_t k = 0; k < g->count; k++)
        pos[order[k]] = k;
    for (size_t k = 0; k < g->count; k++) {
        size_t v = order[k];
        layer[v] = 0;
        for (size_t i = 0; i < g->nodes[v].dep_count; i++) {
            size_t d = g->nodes[v].deps[i];
            if (pos[d] < k && layer[d] + 1 > layer[v])
                layer[v] = layer[d] + 1;
        }
    }
}

/* The topological order, completed in workflow order when the graph has a cycle. */
static int full_order(const sl_graph_t *g, size_t *order)
{
    for (size_t i = 0; i < g->count; i++)
        order[i] = SIZE_MAX;
    int rc = sl__graph_order(g, order);
    if (rc != SL_EINVAL)
        return rc;
    bool *seen = sl__calloc(g->count, sizeof(bool));
    if (seen == NULL)
        return SL_ENOMEM;
    size_t filled = 0;
    while (filled < g->count && order[filled] != SIZE_MAX)
        seen[order[filled++]] = true;
    for (size_t v = 0; v < g->count; v++) {
        if (!seen[v])
            order[filled++] = v;
    }
    sl__free(seen);
    return 0;
}

/* Rows: layer by layer, each step ranked by the mean row of its needs. `row` per step. */
static int assign_rows(const sl_graph_t *g, const size_t *layer, size_t layers, size_t *row,
                       size_t *sorted)
{
    size_t n = g->count;
    size_t *start = sl__calloc(layers + 1, sizeof(size_t));
    ranked_t *rank = sl__calloc(n ? n : 1, sizeof(ranked_t));
    if (start == NULL || rank == NULL) {
        sl__free(start);
        sl__free(rank);
        return SL_ENOMEM;
    }
    for (size_t v = 0; v < n; v++)
        start[layer[v] + 1]++;
    for (size_t l = 0; l < layers; l++)
        start[l + 1] += start[l];
    /* Bucketed by layer (workflow order inside one), then each bucket sorted. */
    for (size_t v = 0; v < n; v++)
        rank[start[layer[v]]++].step = v;
    for (size_t l = layers; l > 0; l--)
        start[l] = start[l - 1];
    start[0] = 0;
    for (size_t l = 0; l < layers; l++) {
        for (size_t k = start[l]; k < start[l + 1]; k++) {
            size_t v = rank[k].step;
            double sum = 0;
            for (size_t i = 0; i < g->nodes[v].dep_count; i++)
                sum += (double)row[g->nodes[v].deps[i]];
            rank[k].key = g->nodes[v].dep_count ? sum / (double)g->nodes[v].dep_count : 0;
        }
        qsort(rank + start[l], start[l + 1] - start[l], sizeof(ranked_t), ranked_cmp);
        for (size_t k = start[l]; k < start[l + 1]; k++) {
            row[rank[k].step] = k - start[l];
            sorted[k] = rank[k].step;
        }
    }
    sl__free(start);
    sl__free(rank);
    return 0;
}

void sl__dash_layout_close(sl_dash_layout_t *l)
{
    sl__free(l->drawn);
    sl__free(l->x);
    sl__free(l->y);
    sl__free(l->layer);
    sl__free(l->shown);
    sl__free(l->dep_first);
    sl__free(l->deps);
    memset(l, 0, sizeof(*l));
}

/* Boxes of the first SL_DASH_GRAPH_NODES_MAX steps in layer order. */
static void place(sl_dash_layout_t *l, const size_t *sorted, const size_t *row, size_t n)
{
    l->count = n < SL_DASH_GRAPH_NODES_MAX ? n : SL_DASH_GRAPH_NODES_MAX;
    size_t rows = 0;
    for (size_t k = 0; k < l->count; k++) {
        size_t v = sorted[k];
        l->drawn[k] = v;
        l->shown[v] = true;
        l->x[v] = MARGIN + (int32_t)l->layer[v] * (SL_DASH_NODE_W + GAP_X);
        l->y[v] = MARGIN + (int32_t)row[v] * (SL_DASH_NODE_H + GAP_Y);
        if (row[v] + 1 > rows)
            rows = row[v] + 1;
        if (l->layer[v] + 1 > l->layers)
            l->layers = l->layer[v] + 1;
    }
    l->width = 2 * MARGIN + (int32_t)l->layers * (SL_DASH_NODE_W + GAP_X) - GAP_X;
    l->height = 2 * MARGIN + (int32_t)rows * (SL_DASH_NODE_H + GAP_Y) - GAP_Y;
    if (l->count == 0)
        l->width = l->height = 2 * MARGIN;
}

int sl__dash_layout(const sl_dash_run_t *run, sl_dash_layout_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = run->step_count, *deps = NULL;
    sl_graph_t g = {0};
    int rc = build_graph(run, &g, &deps);
    if (rc < 0)
        return rc;
    size_t m = n ? n : 1;
    size_t *order = sl__calloc(m, sizeof(size_t)), *pos = sl__calloc(m, sizeof(size_t));
    size_t *row = sl__calloc(m, sizeof(size_t)), *sorted = sl__calloc(m, sizeof(size_t));
    out->drawn = sl__calloc(m, sizeof(size_t));
    out->x = sl__calloc(m, sizeof(int32_t));
    out->y = sl__calloc(m, sizeof(int32_t));
    out->layer = sl__calloc(m, sizeof(size_t));
    out->shown = sl__calloc(m, sizeof(bool));
    out->dep_first = sl__calloc(n + 1, sizeof(size_t));
    rc = SL_ENOMEM;
    if (out->dep_first == NULL || order == NULL || pos == NULL || row == NULL || sorted == NULL ||
        out->drawn == NULL || out->x == NULL || out->y == NULL || out->layer == NULL ||
        out->shown == NULL)
        goto out;
    if ((rc = full_order(&g, order)) < 0)
        goto out;
    assign_layers(&g, order, pos, out->layer);
    size_t layers = 0;
    for (size_t v = 0; v < n; v++)
        layers = out->layer[v] + 1 > layers ? out->layer[v] + 1 : layers;
    if ((rc = assign_rows(&g, out->layer, layers, row, sorted)) < 0)
        goto out;
    place(out, sorted, row, n);
    for (size_t v = 0; v < n; v++)
        out->dep_first[v + 1] = out->dep_first[v] + g.nodes[v].dep_count;
    out->deps = deps; /* filled in step order by build_graph */
    deps = NULL;
out:
    if (rc < 0)
        sl__dash_layout_close(out);
    sl__free(order);
    sl__free(pos);
    sl__free(row);
    sl__free(sorted);
    sl__free(deps);
    sl__graph_close(&g);
    return rc;
}
