/*
 * A dependency graph: strongly connected components (Tarjan, with an explicit
 * stack) name each cycle; Kahn's algorithm gives a topological order; DOT
 * and Mermaid writers. Nothing recurses, so a 100,000-node chain is fine.
 *
 * Edges point from a dependency to its dependant (data flow): a cycle reads
 * "a -> b -> a" when b needs a and a needs b.
 */
#include <string.h>

#include "graph/graph.h"

#define NO_INDEX SIZE_MAX
#define CYCLE_NAMES_MAX 12 /* names shown in a cycle message before eliding */

typedef struct tarjan {
    const sl_graph_t *g;
    size_t *index, *low, *comp, *stack, *call, *edge;
    bool *on_stack;
    size_t next_index, stack_len, call_len, comp_count;
} tarjan_t;

static void tarjan_push(tarjan_t *t, size_t v)
{
    t->index[v] = t->low[v] = t->next_index++;
    t->stack[t->stack_len++] = v;
    t->on_stack[v] = true;
    t->call[t->call_len] = v;
    t->edge[t->call_len++] = 0;
}

static void tarjan_finish(tarjan_t *t, size_t v)
{
    if (t->low[v] != t->index[v])
        return;
    size_t w;
    do {
        w = t->stack[--t->stack_len];
        t->on_stack[w] = false;
        t->comp[w] = t->comp_count;
    } while (w != v);
    t->comp_count++;
}

/* Labels each step with its strongly connected component in t->comp. */
static void tarjan_run(tarjan_t *t)
{
    size_t n = t->g->count;
    for (size_t root = 0; root < n; root++) {
        if (t->index[root] != NO_INDEX)
            continue;
        tarjan_push(t, root);
        while (t->call_len > 0) {
            size_t v = t->call[t->call_len - 1];
            const sl_graph_node_t *s = &t->g->nodes[v];
            if (t->edge[t->call_len - 1] < s->dep_count) {
                size_t w = s->deps[t->edge[t->call_len - 1]++];
                if (w >= n)
                    continue;
                if (t->index[w] == NO_INDEX)
                    tarjan_push(t, w);
                else if (t->on_stack[w] && t->index[w] < t->low[v])
                    t->low[v] = t->index[w];
                continue;
            }
            t->call_len--;
            if (t->call_len > 0) {
                size_t parent = t->call[t->call_len - 1];
                if (t->low[v] < t->low[parent])
                    t->low[parent] = t->low[v];
            }
            tarjan_finish(t, v);
        }
    }
}

static bool has_self_dep(const sl_graph_node_t *s, size_t self)
{
    for (size_t i = 0; i < s->dep_count; i++) {
        if (s->deps[i] == self)
            return true;
    }
    return false;
}

/*
 * Shortest cycle through `start` inside its component, found by a breadth-first
 * walk along `needs` edges; `parent` and `queue` are scratch arrays.
 * Returns the step that needs `start` and closes the cycle.
 */
static size_t find_cycle(const sl_graph_t *g, const size_t *comp, size_t start,
                         size_t *parent, size_t *queue)
{
    size_t head = 0, tail = 0;
    queue[tail++] = start;
    parent[start] = start;
    while (head < tail) {
        size_t v = queue[head++];
        const sl_graph_node_t *s = &g->nodes[v];
        for (size_t i = 0; i < s->dep_count; i++) {
            size_t w = s->deps[i];
            if (w == start)
                return v;
            if (w < g->count && comp[w] == comp[start] && parent[w] == NO_INDEX) {
                parent[w] = v;
                queue[tail++] = w;
            }
        }
    }
    return start;
}

/* "a -> b -> ... -> a" in data-flow order: from `start` back along the walk. */
static int report_cycle(const sl_graph_t *g, size_t start, size_t last,
                        const size_t *parent, sl_diag_t *diag)
{
    sl_buf_t b;
    sl__buf_init(&b, 4096);
    size_t length = 1;
    for (size_t v = last; v != start; v = parent[v])
        length++;
    int rc = sl__buf_addf(&b, "dependency cycle: %s", g->nodes[start].id);
    size_t shown = 1;
    for (size_t v = last; rc == 0; v = parent[v], shown++) {
        if (shown < CYCLE_NAMES_MAX - 2 || shown >= length - 1 || length <= CYCLE_NAMES_MAX)
            rc = sl__buf_addf(&b, " -> %s", g->nodes[v].id);
        else if (shown == CYCLE_NAMES_MAX - 2)
            rc = sl__buf_addf(&b, " -> ... (%zu more)", length - CYCLE_NAMES_MAX + 1);
        if (v == start)
            break;
    }
    if (rc == 0)
        rc = sl__diag_add(diag, g->file, g->nodes[start].mark, "%s", b.data);
    sl__buf_close(&b);
    return rc == SL_ENOMEM ? SL_ENOMEM : 0;
}

static int report_cycles(const sl_graph_t *g, const size_t *comp, size_t comp_count,
                         size_t *scratch, sl_diag_t *diag)
{
    size_t n = g->count;
    size_t *size = scratch, *parent = scratch + n, *queue = scratch + 2 * n;
    bool *reported = (bool *)(scratch + 3 * n);
    memset(size, 0, comp_count * sizeof(*size));
    memset(reported, 0, comp_count * sizeof(*reported));
    for (size_t v = 0; v < n; v++)
        size[comp[v]]++;
    int cycles = 0;
    for (size_t v = 0; v < n; v++) {
        size_t c = comp[v];
        if (reported[c] || (size[c] < 2 && !has_self_dep(&g->nodes[v], v)))
            continue;
        reported[c] = true;
        cycles++;
        for (size_t i = 0; i < n; i++)
            parent[i] = NO_INDEX;
        size_t last = find_cycle(g, comp, v, parent, queue);
        if (report_cycle(g, v, last, parent, diag) < 0)
            return SL_ENOMEM;
    }
    return cycles ? SL_EINVAL : 0;
}

int sl__graph_init(sl_graph_t *g, size_t count)
{
    memset(g, 0, sizeof(*g));
    g->nodes = sl__calloc(count ? count : 1, sizeof(*g->nodes));
    if (g->nodes == NULL)
        return SL_ENOMEM;
    g->count = count;
    for (size_t i = 0; i < count; i++)
        g->nodes[i].stream_from = SL_GRAPH_NONE;
    return 0;
}

void sl__graph_close(sl_graph_t *g)
{
    sl__free(g->nodes);
    g->nodes = NULL;
    g->count = 0;
}

int sl__graph_check(const sl_graph_t *g, sl_diag_t *diag)
{
    size_t n = g->count;
    if (n == 0)
        return 0;
    tarjan_t t;
    memset(&t, 0, sizeof(t));
    t.g = g;
    int rc = SL_ENOMEM;
    size_t *block = sl__malloc(6 * n * sizeof(size_t));
    size_t *scratch = sl__malloc(4 * n * sizeof(size_t));
    t.on_stack = sl__calloc(n, sizeof(bool));
    if (block == NULL || scratch == NULL || t.on_stack == NULL)
        goto out;
    t.index = block;
    t.low = block + n;
    t.comp = block + 2 * n;
    t.stack = block + 3 * n;
    t.call = block + 4 * n;
    t.edge = block + 5 * n;
    for (size_t i = 0; i < n; i++)
        t.index[i] = NO_INDEX;
    tarjan_run(&t);
    rc = report_cycles(g, t.comp, t.comp_count, scratch, diag);
out:
    sl__free(block);
    sl__free(scratch);
    sl__free(t.on_stack);
    return rc;
}

int sl__graph_order(const sl_graph_t *g, size_t *order)
{
    size_t n = g->count;
    if (n == 0)
        return 0;
    int rc = SL_ENOMEM;
    size_t *pending = sl__calloc(n, sizeof(size_t));
    size_t *start = sl__calloc(n + 1, sizeof(size_t));
    size_t *fill = sl__calloc(n + 1, sizeof(size_t));
    size_t edges = 0;
    for (size_t v = 0; v < n; v++)
        edges += g->nodes[v].dep_count;
    size_t *dependants = sl__calloc(edges ? edges : 1, sizeof(size_t));
    if (pending == NULL || start == NULL || fill == NULL || dependants == NULL)
        goto out;
    /* Dependants of each step, as one array sliced by `start` (CSR). */
    for (size_t v = 0; v < n; v++) {
        for (size_t i = 0; i < g->nodes[v].dep_count; i++)
            start[g->nodes[v].deps[i] + 1]++;
    }
    for (size_t v = 0; v < n; v++)
        start[v + 1] += start[v];
    memcpy(fill, start, (n + 1) * sizeof(size_t));
    for (size_t v = 0; v < n; v++) {
        pending[v] = g->nodes[v].dep_count;
        for (size_t i = 0; i < g->nodes[v].dep_count; i++)
            dependants[fill[g->nodes[v].deps[i]]++] = v;
    }
    size_t head = 0, tail = 0;
    for (size_t v = 0; v < n; v++) {
        if (pending[v] == 0)
            order[tail++] = v;
    }
    while (head < tail) {
        size_t v = order[head++];
        for (size_t i = start[v]; i < start[v + 1]; i++) {
            if (--pending[dependants[i]] == 0)
                order[tail++] = dependants[i];
        }
    }
    rc = tail == n ? 0 : SL_EINVAL;
out:
    sl__free(pending);
    sl__free(start);
    sl__free(fill);
    sl__free(dependants);
    return rc;
}

/* Writes `s` for a double-quoted DOT string or a quoted Mermaid label. */
static void put_escaped(FILE *out, const char *s, sl_graph_format_t format)
{
    for (; *s; s++) {
        if (*s == '"')
            fputs(format == SL_GRAPH_DOT ? "\\\"" : "#quot;", out);
        else if (*s == '\\' && format == SL_GRAPH_DOT)
            fputs("\\\\", out);
        else if (*s == '\n')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

/*
 * A Mermaid node id that is never a Mermaid keyword (`end`, `subgraph`, `style`…):
 * `n_ID` for an id of letters, digits and '_'; `nINDEX_ID`, '-' written '_', for an id
 * with '-', which Mermaid can read as part of an arrow. The index keeps `a-b` and `a_b`
 * apart, and the two forms cannot meet (`n_` against `n` and a digit).
 */
static void put_mermaid_id(FILE *out, const sl_graph_t *g, size_t v)
{
    const char *id = g->nodes[v].id;
    if (strchr(id, '-') == NULL) {
        fprintf(out, "n_%s", id);
        return;
    }
    fprintf(out, "n%zu_", v);
    for (const char *p = id; *p; p++)
        fputc(*p == '-' ? '_' : *p, out);
}

static void write_node(FILE *out, const sl_graph_t *g, size_t v, sl_graph_format_t format)
{
    const sl_graph_node_t *s = &g->nodes[v];
    const char *kind = s->label ? s->label : "?";
    const char *foreach = s->multi ? " [foreach]" : "";
    if (format == SL_GRAPH_DOT) {
        fprintf(out, "  \"%s\" [label=\"%s (", s->id, s->id);
        put_escaped(out, kind, format);
        fprintf(out, ")%s\"%s];\n", foreach, s->multi ? ", shape=box3d" : "");
    } else {
        fputs("  ", out);
        put_mermaid_id(out, g, v);
        fputs(s->multi ? "[[\"" : "[\"", out);
        put_escaped(out, s->id, format);
        fputs(" (", out);
        put_escaped(out, kind, format);
        fprintf(out, ")%s\"%s\n", foreach, s->multi ? "]]" : "]");
    }
}

static void write_mermaid_edge(FILE *out, const sl_graph_t *g, size_t from, size_t to,
                               bool stream)
{
    fputs("  ", out);
    put_mermaid_id(out, g, from);
    fputs(stream ? " -. stream .-> " : " --> ", out);
    put_mermaid_id(out, g, to);
    fputc('\n', out);
}

static void write_edges(FILE *out, const sl_graph_t *g, size_t v, sl_graph_format_t format)
{
    const sl_graph_node_t *s = &g->nodes[v];
    for (size_t i = 0; i < s->dep_count; i++) {
        if (s->deps[i] >= g->count)
            continue;
        const char *from = g->nodes[s->deps[i]].id;
        bool stream = s->stream_from == s->deps[i];
        if (format == SL_GRAPH_DOT)
            fprintf(out, "  \"%s\" -> \"%s\"%s;\n", from, s->id,
                    stream ? " [style=dashed, label=\"stream\"]" : "");
        else
            write_mermaid_edge(out, g, s->deps[i], v, stream);
    }
}

int sl__graph_write(const sl_graph_t *g, sl_graph_format_t format, FILE *out)
{
    if (format == SL_GRAPH_DOT) {
        fputs("digraph \"", out);
        put_escaped(out, g->name ? g->name : "workflow", format);
        fputs("\" {\n  rankdir=LR;\n  node [shape=box];\n", out);
    } else {
        fputs("flowchart LR\n", out);
    }
    for (size_t v = 0; v < g->count; v++)
        write_node(out, g, v, format);
    for (size_t v = 0; v < g->count; v++)
        write_edges(out, g, v, format);
    if (format == SL_GRAPH_DOT)
        fputs("}\n", out);
    return ferror(out) ? SL_EIO : 0;
}
