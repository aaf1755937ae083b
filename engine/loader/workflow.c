/*
 * The workflow loader: YAML tree → sl_workflow_t, checking every rule of
 * SPEC §2 and reporting all problems in one pass. Step ids are indexed in a
 * hash first, so steps may refer to later steps and lookups stay O(1).
 */
#include <stdio.h>
#include <string.h>

#include "graph/graph.h"
#include "loader/internal.h"
#include "util/sha256.h"

static const char *const workflow_fields[] = {
    "version", "name", "description", "vars", "schedule", "defaults", "limits", "steps", NULL};

/* ---- free and look-up ---------------------------------------------------------- */

static void step_close(sl_step_t *step)
{
    sl__free(step->id);
    sl__free(step->uses);
    sl__tmpl_free(step->with);
    sl__tmpl_free(step->foreach);
    sl__tmpl_free(step->if_cond);
    sl__free(step->deps);
    sl_value_free(step->slurm);
}

void sl__workflow_free(sl_workflow_t *wf)
{
    if (wf == NULL)
        return;
    for (size_t i = 0; i < wf->step_count; i++)
        step_close(&wf->steps[i]);
    sl__free(wf->steps);
    for (size_t i = 0; i < wf->schedule.cron_count; i++)
        sl__free(wf->schedule.cron[i]);
    sl__free(wf->schedule.cron);
    sl__free(wf->schedule.cron_marks);
    for (size_t i = 0; i < wf->limits.fs_allow_count; i++)
        sl__free(wf->limits.fs_allow[i]);
    sl__free(wf->limits.fs_allow);
    sl__free(wf->limits.fs_allow_marks);
    sl__free(wf->schedule.timezone);
    sl__free(wf->limits.slurm_workdir);
    sl__free(wf->limits.http_ca_file);
    sl__free(wf->limits.http_proxy);
    sl_value_free(wf->vars);
    sl__free(wf->path);
    sl__free(wf->dir);
    sl__free(wf->name);
    sl__free(wf->description);
    sl__free(wf);
}

int sl__workflow_graph(const sl_workflow_t *wf, sl_graph_t *out)
{
    int rc = sl__graph_init(out, wf->step_count);
    if (rc < 0)
        return rc;
    out->name = wf->name;
    out->file = wf->path;
    for (size_t i = 0; i < wf->step_count; i++) {
        const sl_step_t *s = &wf->steps[i];
        out->nodes[i] = (sl_graph_node_t){
            .id = s->id,
            .label = s->kind ? s->kind->name : s->uses,
            .mark = s->mark,
            .deps = s->deps,
            .dep_count = s->dep_count,
            .stream_from = s->stream_from,
            .multi = s->foreach != NULL,
        };
    }
    return 0;
}

size_t sl__workflow_find(const sl_workflow_t *wf, const char *id)
{
    /* Linear: callers look up a handful of ids; the loader uses its own index. */
    for (size_t i = 0; i < wf->step_count; i++) {
        if (strcmp(wf->steps[i].id, id) == 0)
            return i;
    }
    return SL_NO_STEP;
}

const char *sl__workflow_suggest_var(const sl_workflow_t *wf, const char *name)
{
    const char *best = NULL;
    size_t best_distance = 3, n = sl_value_len(wf->vars);
    for (size_t i = 0; i < n; i++) {
        const char *key;
        sl_value_entry(wf->vars, i, &key);
        size_t d = sl__edit_distance(name, key, 2);
        if (d < best_distance && d < strlen(name)) {
            best_distance = d;
            best = key;
        }
    }
    return best;
}

void sl__workflow_var_names(const sl_workflow_t *wf, char *out, size_t size)
{
    const sl_value_t *vars = wf->vars;
    size_t n = sl_value_len(vars), used = 0;
    snprintf(out, size, "%s", n ? "" : "none");
    for (size_t i = 0; i < n && used < size; i++) {
        const char *key;
        sl_value_entry(vars, i, &key);
        const char *sep = i == 0 ? "" : i + 1 == n ? " and " : ", ";
        int w = snprintf(out + used, size - used, "%s'%s'", sep, key);
        used += w > 0 ? (size_t)w : 0;
    }
}

/* The map that holds the last part of the dotted name `key` (in *map, its last part in
 * *leaf), which must lead through declared maps: SL_EINVAL with `err` set otherwise. */
static int var_parent(sl_workflow_t *wf, char *key, sl_value_t **out, char **leaf, char *err,
                      size_t err_size)
{
    sl_value_t *map = wf->vars;
    char *part = key;
    for (char *dot; (dot = strchr(part, '.')) != NULL; part = dot + 1) {
        *dot = '\0';
        sl_value_t *next = (sl_value_t *)sl_value_get(map, part);
        if (next == NULL && map == wf->vars) {
            *dot = '.';
            break; /* undeclared: reported below */
        }
        if (sl_value_type(next) != SL_TYPE_MAP) {
            snprintf(err, err_size, "--var %s.%s: '%s' is not a map, so it has no field '%s'", key,
                     dot + 1, key, dot + 1);
            return SL_EINVAL;
        }
        if (sl__value_unshare(next) < 0)
            return SL_ENOMEM;
        map = next;
        *dot = '.';
    }
    char top[256];
    size_t top_len = strcspn(key, ".");
    snprintf(top, sizeof(top), "%.*s", (int)top_len, key);
    if (sl_value_get(wf->vars, top) == NULL) {
        char names[512];
        sl__workflow_var_names(wf, names, sizeof(names));
        const char *guess = sl__workflow_suggest_var(wf, top);
        if (guess)
            snprintf(err, err_size,
                     "--var %s: the workflow declares no var '%s' (did you "
                     "mean '%s'? declared: %s)",
                     key, top, guess, names);
        else
            snprintf(err, err_size,
                     "--var %s: the workflow declares no var '%s' (declared: "
                     "%s)",
                     key, top, names);
        return SL_EINVAL;
    }
    *leaf = part;
    *out = map;
    return 0;
}

int sl__workflow_set_var(sl_workflow_t *wf, const char *assignment, char *err, size_t err_size)
{
    const char *eq = strchr(assignment, '=');
    snprintf(err, err_size, "--var expects K=V, got '%s'", assignment);
    if (eq == NULL || eq == assignment)
        return SL_EINVAL;
    char *key = sl__strndup(assignment, (size_t)(eq - assignment));
    if (key == NULL)
        return SL_ENOMEM;
    char *leaf = NULL;
    sl_value_t *map = NULL;
    int rc = sl__value_unshare(wf->vars);
    if (rc == 0)
        rc = var_parent(wf, key, &map, &leaf, err, err_size);
    if (rc == 0 && *leaf == '\0')
        rc = SL_EINVAL; /* `a.=1`: the message above still fits */
    sl_value_t *value = NULL;
    if (rc == 0)
        rc = sl__yaml_scalar_value(eq + 1, strlen(eq + 1), true, &value);
    if (rc == 0)
        rc = sl_value_set(map, leaf, value);
    sl__free(key);
    return rc;
}

/* ---- path, name, header fields ------------------------------------------------- */

static int set_path(sl_workflow_t *wf, const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t base_len = strlen(base);
    static const char *const exts[] = {".yaml", ".yml"};
    for (size_t i = 0; i < SL_COUNTOF(exts); i++) {
        size_t n = strlen(exts[i]);
        if (base_len > n && strcmp(base + base_len - n, exts[i]) == 0) {
            base_len -= n;
            break;
        }
    }
    wf->path = sl__strdup(path);
    wf->name = sl__strndup(base, base_len);
    if (slash == NULL)
        wf->dir = sl__strdup(".");
    else
        wf->dir = sl__strndup(path, slash == path ? 1 : (size_t)(slash - path));
    return wf->path && wf->name && wf->dir ? 0 : SL_ENOMEM;
}

static void load_version(sl_loader_t *ld, const sl_node_t *node)
{
    const char *found = sl__loader_found(node);
    if (node->kind != SL_NODE_SCALAR || strcmp(found, "an integer") != 0) {
        sl__loader_problem(ld, node->mark, "'version' expects the integer 1, got %s", found);
        return;
    }
    sl_value_t *v = NULL;
    if (sl__yaml_scalar_value(node->str, node->len, node->plain, &v) < 0) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    if (sl_value_int_of(v) != 1)
        sl__loader_problem(ld, node->mark, "unsupported version %s (the only version is 1)",
                           node->str);
    sl_value_free(v);
}

static void load_text_field(sl_loader_t *ld, const sl_node_t *node, const char *field, char **out)
{
    const char *text;
    if (!sl__loader_text(ld, node, field, &text))
        return;
    char *copy = sl__strdup(text);
    if (copy == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    sl__free(*out);
    *out = copy;
}

static void load_vars(sl_loader_t *ld, const sl_node_t *node)
{
    bool empty = node->kind == SL_NODE_SCALAR && node->plain && node->len == 0;
    if (empty)
        return;
    if (node->kind != SL_NODE_MAP) {
        sl__loader_problem(ld, node->mark, "'vars' expects a map, found %s",
                           sl__loader_found(node));
        return;
    }
    for (size_t i = 0; i < node->count; i++) {
        sl_mark_t where;
        if (sl__loader_has_expr(node->items[2 * i + 1], &where))
            sl__loader_problem(ld, where, "vars are literal: '${{' is not allowed in var '%s'",
                               node->items[2 * i]->str);
    }
    sl_value_t *vars = NULL;
    if (sl__yaml_to_value(node, &vars) < 0) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    sl_value_free(ld->wf->vars);
    ld->wf->vars = vars;
}

/* ---- steps ------------------------------------------------------------------------ */

static bool valid_id(const char *id)
{
    bool first_ok =
        (id[0] >= 'A' && id[0] <= 'Z') || (id[0] >= 'a' && id[0] <= 'z') || id[0] == '_';
    if (!first_ok)
        return false;
    for (const char *p = id + 1; *p; p++) {
        char c = *p;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Allocates the steps and indexes their ids, so any step may name any other. */
static void index_steps(sl_loader_t *ld, const sl_node_t *steps)
{
    sl_workflow_t *wf = ld->wf;
    wf->steps = sl__calloc(steps->count, sizeof(*wf->steps));
    if (wf->steps == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    for (size_t i = 0; i < steps->count; i++) {
        const sl_node_t *key = steps->items[2 * i];
        sl_step_t *step = &wf->steps[wf->step_count];
        step->stream_from = SL_NO_STEP;
        if ((step->id = sl__strdup(key->str)) == NULL) {
            sl__loader_fail(ld, SL_ENOMEM);
            return;
        }
        step->mark = key->mark;
        wf->step_count++;
        if (!valid_id(key->str))
            sl__loader_problem(ld, key->mark,
                               "invalid step id '%s' (use letters, digits, '_' "
                               "and '-', starting with a letter or '_')",
                               key->str);
        if (sl__index_put(&ld->ids, step->id, i, 0, NULL) < 0) {
            sl__loader_fail(ld, SL_ENOMEM);
            return;
        }
    }
}

static void load_steps(sl_loader_t *ld, const sl_node_t *root)
{
    const sl_node_t *steps = NULL;
    const sl_node_t *key = sl__loader_entry(root, "steps", &steps);
    if (key == NULL) {
        /* A misspelt `steps:` is reported as an unknown field already. */
        static const char *const only_steps[] = {"steps", NULL};
        for (size_t i = 0; i < root->count; i++) {
            if (sl__loader_suggest(root->items[2 * i]->str, only_steps))
                return;
        }
        sl__loader_problem(ld, root->mark, "missing required field 'steps'");
        return;
    }
    bool empty = (steps->kind == SL_NODE_SCALAR && steps->plain && steps->len == 0) ||
                 (steps->kind == SL_NODE_MAP && steps->count == 0);
    if (empty) {
        sl__loader_problem(ld, key->mark, "'steps' is empty: a workflow needs at least one step");
        return;
    }
    if (steps->kind != SL_NODE_MAP) {
        sl__loader_problem(ld, steps->mark,
                           "'steps' expects a map of step ids to steps, "
                           "found %s",
                           sl__loader_found(steps));
        return;
    }
    index_steps(ld, steps);
    for (size_t i = 0; i < ld->wf->step_count && ld->rc == 0; i++)
        sl__loader_step(ld, i, steps->items[2 * i + 1]);
    if (ld->rc == 0)
        sl__loader_streams(ld);
}

/* ---- the whole file ----------------------------------------------------------------- */

static void load_root(sl_loader_t *ld, const sl_node_t *root)
{
    if (root == NULL) {
        sl__loader_problem(ld, (sl_mark_t){1, 1}, "the workflow is empty");
        return;
    }
    if (root->kind != SL_NODE_MAP) {
        sl__loader_problem(ld, root->mark, "expected a map of workflow fields, found %s",
                           sl__loader_found(root));
        return;
    }
    sl__loader_check_fields(ld, root, workflow_fields);
    const sl_node_t *value;
    if (sl__loader_entry(root, "version", &value))
        load_version(ld, value);
    if (sl__loader_entry(root, "name", &value))
        load_text_field(ld, value, "name", &ld->wf->name);
    if (sl__loader_entry(root, "description", &value))
        load_text_field(ld, value, "description", &ld->wf->description);
    if (sl__loader_entry(root, "vars", &value))
        load_vars(ld, value);
    if (sl__loader_entry(root, "schedule", &value))
        sl__loader_schedule(ld, value);
    if (sl__loader_entry(root, "defaults", &value))
        sl__loader_defaults(ld, value);
    if (sl__loader_entry(root, "limits", &value))
        sl__loader_limits(ld, value);
    load_steps(ld, root);
    /* Over the dependencies that resolved: an unknown id elsewhere hides no cycle. */
    if (ld->rc == 0) {
        sl_graph_t graph;
        int rc = sl__workflow_graph(ld->wf, &graph);
        if (rc == 0)
            rc = sl__graph_check(&graph, ld->diag);
        sl__graph_close(&graph);
        if (rc == SL_EINVAL)
            ld->errors++;
        else if (rc < 0)
            sl__loader_fail(ld, rc);
    }
}

static sl_workflow_t *workflow_new(const char *path)
{
    sl_workflow_t *wf = sl__calloc(1, sizeof(*wf));
    if (wf == NULL)
        return NULL;
    wf->vars = sl_value_map();
    wf->schedule.timezone = sl__strdup("UTC");
    wf->schedule.catchup_ms = 3600 * 1000;
    wf->limits.http_concurrency = 128;
    wf->limits.http_per_host = 32;
    if (wf->vars == NULL || wf->schedule.timezone == NULL || set_path(wf, path) < 0) {
        sl__workflow_free(wf);
        return NULL;
    }
    return wf;
}

static int load_tree(const char *path, const sl_node_t *root, const sl_registry_t *reg,
                     sl_workflow_t **out, sl_diag_t *diag)
{
    sl_loader_t ld;
    memset(&ld, 0, sizeof(ld));
    ld.file = path;
    ld.diag = diag;
    ld.reg = reg;
    sl__index_init(&ld.ids);
    ld.wf = workflow_new(path);
    if (ld.wf == NULL)
        return SL_ENOMEM;
    load_root(&ld, root);
    sl__index_close(&ld.ids);
    if (ld.rc == 0 && ld.errors == 0) {
        *out = ld.wf;
        return 0;
    }
    sl__workflow_free(ld.wf);
    return ld.rc ? ld.rc : SL_EINVAL;
}

int sl__workflow_load_text(const char *path, const char *text, size_t len, const sl_registry_t *reg,
                           sl_workflow_t **out, sl_diag_t *diag)
{
    *out = NULL;
    sl_node_t *root = NULL;
    size_t duplicates = 0;
    int rc = sl__yaml_parse_lenient(path, text, len, &root, diag, &duplicates);
    if (rc == 0)
        rc = load_tree(path, root, reg, out, diag);
    else if (rc != SL_ENOMEM)
        rc = SL_EINVAL;
    sl__yaml_free(root);
    if (rc == 0 && duplicates > 0) {
        /* Reported by the parser; the rest of the file was checked all the same. */
        sl__workflow_free(*out);
        *out = NULL;
        rc = SL_EINVAL;
    }
    if (rc == 0)
        sl__sha256_hex_of(text, len, (*out)->file_hash);
    return rc;
}

int sl__workflow_load(const char *path, const sl_registry_t *reg, sl_workflow_t **out,
                      sl_diag_t *diag)
{
    *out = NULL;
    sl_buf_t text;
    int rc = sl__yaml_read_file(path, &text, diag);
    /* `sluice run -` reads standard input; its messages name it "<stdin>" */
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    if (rc == 0)
        rc = sl__workflow_load_text(name, text.data ? text.data : "", text.len, reg, out, diag);
    else if (rc != SL_ENOMEM)
        rc = SL_EINVAL;
    sl__buf_close(&text);
    return rc;
}
