/* One step: its kind, settings, `with` against the kind's schema, templates, deps. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader/internal.h"
#include "plugin/registry.h"
#include "util/confine.h"
#include "util/fingerprint.h"

static const char *const step_fields[] = {
    "uses",     "with",        "needs",    "foreach", "if",          "timeout", "retry",
    "on_error", "concurrency", "executor", "slurm",   "description", "cache",   NULL};

/* ---- kind and settings ------------------------------------------------------ */

static void step_kind(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node)
{
    const sl_node_t *uses = NULL;
    if (sl__loader_entry(node, "uses", &uses) == NULL) {
        sl__loader_problem(ld, step->mark, "step '%s' needs 'uses' (its step kind)", step->id);
        return;
    }
    const char *name;
    if (!sl__loader_string(ld, uses, "uses", &name))
        return;
    if ((step->uses = sl__strdup(name)) == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    const sl_kind_info_t *info = sl__registry_find(ld->reg, name);
    if (info && (info->kind->flags & SL_KIND_INTERNAL)) {
        sl__loader_problem(ld, uses->mark,
                           "step kind '%s' is internal to sluice and cannot "
                           "be used in a workflow",
                           name);
        return;
    }
    if (info) {
        step->kind = info->kind;
        step->plugin = sl__registry_file(info);
        return;
    }
    const char *guess = sl__registry_suggest(ld->reg, name);
    if (guess)
        sl__loader_problem(ld, uses->mark, "unknown step kind '%s' (did you mean '%s'?)", name,
                           guess);
    else
        sl__loader_problem(ld, uses->mark, "unknown step kind '%s'", name);
}

static void step_executor(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node)
{
    static const char *const executors[] = {"local", "slurm", NULL};
    const sl_node_t *value;
    int choice;
    if (sl__loader_entry(node, "executor", &value) &&
        sl__loader_enum(ld, value, "executor", executors, &choice)) {
        step->executor = (sl_executor_kind_t)choice;
        if (step->executor == SL_EXECUTOR_SLURM && step->kind && step->kind->exec != SL_EXEC_CPU)
            sl__loader_problem(ld, value->mark,
                               "executor 'slurm' is for CPU step kinds; '%s' runs on the loop",
                               step->kind->name);
    }
    if (sl__loader_entry(node, "slurm", &value)) {
        sl__loader_slurm(ld, step, value);
        if (step->executor != SL_EXECUTOR_SLURM)
            sl__loader_problem(ld, value->mark,
                               "'slurm' settings need 'executor: slurm' (this step runs in "
                               "the local pool)");
    }
    if (step->executor == SL_EXECUTOR_SLURM && step->slurm == NULL &&
        (step->slurm = sl_value_list()) == NULL)
        sl__loader_fail(ld, SL_ENOMEM);
}

static void step_settings(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node)
{
    static const char *const on_error[] = {"fail", "continue", NULL};
    const sl_step_defaults_t *d = &ld->defaults;
    step->retry = d->has_retry ? d->retry : (sl_retry_t){1, 1000, 30000};
    step->timeout_ms = d->has_timeout ? d->timeout_ms : 0;
    step->on_error = d->has_on_error ? d->on_error : SL_ON_ERROR_FAIL;
    step->concurrency = d->has_concurrency ? d->concurrency : 0;
    step->cache = d->has_cache ? d->cache : (sl_cache_opts_t){false, 0};
    const sl_node_t *value;
    int choice;
    const char *text;
    if (sl__loader_entry(node, "timeout", &value))
        sl__loader_duration(ld, value, "timeout", &step->timeout_ms);
    if (sl__loader_entry(node, "retry", &value))
        sl__loader_retry(ld, value, &step->retry);
    if (sl__loader_entry(node, "on_error", &value) &&
        sl__loader_enum(ld, value, "on_error", on_error, &choice))
        step->on_error = (sl_on_error_t)choice;
    if (sl__loader_entry(node, "concurrency", &value))
        sl__loader_uint(ld, value, "concurrency", 1, UINT32_MAX, &step->concurrency);
    if (sl__loader_entry(node, "cache", &value))
        sl__loader_cache(ld, value, &step->cache);
    if (sl__loader_entry(node, "description", &value))
        sl__loader_text(ld, value, "description", &text);
    step_executor(ld, step, node);
}

/* ---- with: parameters against the kind's schema ------------------------------ */

static const sl_param_t *find_param(const sl_kind_t *kind, const char *name)
{
    for (const sl_param_t *p = kind->params; p && p->name; p++) {
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

/* "a boolean", "a string or a list", ... for a type mask. */
static void describe_types(uint32_t types, char *buf, size_t size)
{
    static const char *const names[] = {"null",     "a boolean", "an integer", "a number",
                                        "a string", "a list",    "a map"};
    const char *parts[7];
    size_t n = 0;
    for (int t = SL_TYPE_BOOL; t <= SL_TYPE_MAP; t++) {
        bool redundant = t == SL_TYPE_INT && (types & SL_PT_NUMBER);
        if ((types & (1u << t)) && !redundant)
            parts[n++] = names[t];
    }
    if (n == 0)
        parts[n++] = names[0];
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + used, size - used, "%s%s", sep, parts[i]);
        used += w > 0 ? (size_t)w : 0;
    }
}

static void check_param_type(sl_loader_t *ld, const sl_kind_t *kind, const sl_param_t *param,
                             const sl_node_t *value)
{
    if (sl__loader_has_expr(value, NULL))
        return; /* known only at run time */
    sl_value_t *v = NULL;
    if (sl__yaml_to_value(value, &v) < 0) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    sl_type_t type = sl_value_type(v);
    sl_value_free(v);
    uint32_t accepted = param->types;
    if (accepted & SL_PT_NUMBER)
        accepted |= SL_PT_INT;
    if (accepted & (1u << type))
        return;
    char expects[128];
    describe_types(param->types, expects, sizeof(expects));
    sl__loader_problem(ld, value->mark, "parameter '%s' of %s expects %s, got %s", param->name,
                       kind->name, expects, sl__loader_found(value));
}

static void check_unknown_param(sl_loader_t *ld, const sl_kind_t *kind, const sl_node_t *key)
{
    const char *known[64];
    size_t n = 0;
    for (const sl_param_t *p = kind->params; p && p->name && n + 1 < SL_COUNTOF(known); p++)
        known[n++] = p->name;
    known[n] = NULL;
    const char *guess = sl__loader_suggest(key->str, known);
    if (guess)
        sl__loader_problem(ld, key->mark, "unknown parameter '%s' of %s (did you mean '%s'?)",
                           key->str, kind->name, guess);
    else
        sl__loader_problem(ld, key->mark, "unknown parameter '%s' of %s", key->str, kind->name);
}

/* Required parameters, and exactly one parameter of each one-of group. */
static void check_required(sl_loader_t *ld, const sl_step_t *step, const sl_node_t *with,
                           sl_mark_t where)
{
    const sl_kind_t *kind = step->kind;
    uint32_t groups_done[8] = {0};
    for (const sl_param_t *p = kind->params; p && p->name; p++) {
        uint32_t g = SL_PARAM_GROUP(p->flags);
        if (g == 0) {
            if ((p->flags & SL_PARAM_REQUIRED) && !sl__loader_entry(with, p->name, NULL))
                sl__loader_problem(ld, where, "step '%s' is missing parameter '%s' of %s", step->id,
                                   p->name, kind->name);
            continue;
        }
        if (groups_done[g / 32] & (1u << (g % 32)))
            continue;
        groups_done[g / 32] |= 1u << (g % 32);
        char names[256] = "";
        size_t used = 0, present = 0;
        for (const sl_param_t *q = p; q->name; q++) {
            if (SL_PARAM_GROUP(q->flags) != g)
                continue;
            present += sl__loader_entry(with, q->name, NULL) != NULL;
            int w =
                snprintf(names + used, sizeof(names) - used, "%s'%s'", used ? ", " : "", q->name);
            used += w > 0 && (size_t)w < sizeof(names) - used ? (size_t)w : 0;
        }
        if (present != 1)
            sl__loader_problem(ld, where, "step '%s' needs exactly one of %s", step->id, names);
    }
}

/*
 * A literal data path (`path`, `save_to`: no `${{ }}`) that certainly leaves the working
 * directory and limits.fs.allow, lexically. Symbolic links are the run's to judge.
 */
static void check_data_path(sl_loader_t *ld, const sl_param_t *param, const sl_node_t *value)
{
    if ((strcmp(param->name, "path") != 0 && strcmp(param->name, "save_to") != 0) ||
        value->kind != SL_NODE_SCALAR || value->len == 0 || strlen(value->str) != value->len ||
        sl__loader_has_expr(value, NULL))
        return;
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return;
    const sl_limits_t *l = &ld->wf->limits;
    if (sl__confine_lexically_inside(cwd, (const char *const *)l->fs_allow, l->fs_allow_count,
                                     value->str))
        return;
    char message[PATH_MAX + 128];
    sl__confine_outside_message(value->str, message, sizeof(message));
    sl__loader_problem(ld, value->mark, "%s", message);
}

static void check_params(sl_loader_t *ld, const sl_step_t *step, const sl_node_t *with_key,
                         const sl_node_t *with)
{
    const sl_kind_t *kind = step->kind;
    for (size_t i = 0; with && i < with->count; i++) {
        const sl_node_t *key = with->items[2 * i];
        if (key->kind != SL_NODE_SCALAR)
            continue;
        const sl_param_t *param = find_param(kind, key->str);
        if (param) {
            check_param_type(ld, kind, param, with->items[2 * i + 1]);
            check_data_path(ld, param, with->items[2 * i + 1]);
        }
        else if (!(kind->flags & SL_KIND_EXTRA_PARAMS))
            check_unknown_param(ld, kind, key);
    }
    check_required(ld, step, with, with_key ? with_key->mark : step->mark);
}

/* ---- templates --------------------------------------------------------------- */

static void make_tmpl(sl_loader_t *ld, const sl_node_t *node, sl_tmpl_t **out)
{
    int rc = sl__tmpl_new(node, ld->file, out, ld->diag);
    if (rc == SL_EINVAL)
        ld->errors++;
    else if (rc < 0)
        sl__loader_fail(ld, rc);
}

static void step_with(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node)
{
    const sl_node_t *with = NULL;
    const sl_node_t *key = sl__loader_entry(node, "with", &with);
    bool empty = with && with->kind == SL_NODE_SCALAR && with->plain && with->len == 0;
    if (key && !empty && with->kind != SL_NODE_MAP) {
        sl__loader_problem(ld, with->mark, "'with' expects a map of parameters, found %s",
                           sl__loader_found(with));
        with = NULL;
    }
    if (with && with->kind != SL_NODE_MAP)
        with = NULL;
    if (step->kind)
        check_params(ld, step, key, with);
    if (with) {
        make_tmpl(ld, with, &step->with);
        return;
    }
    sl_value_t *map = sl_value_map();
    if (map == NULL || sl__tmpl_from_value(map, &step->with) < 0)
        sl__loader_fail(ld, SL_ENOMEM);
}

/* True when the scalar is one `${{ … }}` and nothing else. */
static bool whole_expression(const sl_node_t *node)
{
    const char *s = node->str, *end = node->str + node->len;
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
        end--;
    if (end - s < 5 || strncmp(s, "${{", 3) != 0 || strncmp(end - 2, "}}", 2) != 0)
        return false;
    return strstr(s + 3, "${{") == NULL || strstr(s + 3, "${{") >= end;
}

static void step_foreach_if(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node)
{
    const sl_node_t *value;
    if (sl__loader_entry(node, "foreach", &value)) {
        if (value->kind == SL_NODE_SEQ ||
            (value->kind == SL_NODE_SCALAR && whole_expression(value)))
            make_tmpl(ld, value, &step->foreach);
        else
            sl__loader_problem(ld, value->mark,
                               "foreach expects a list or an expression, "
                               "found %s",
                               sl__loader_found(value));
    }
    if (sl__loader_entry(node, "if", &value)) {
        const char *found = sl__loader_found(value);
        bool literal_bool = strcmp(found, "a boolean") == 0;
        bool expr = value->kind == SL_NODE_SCALAR && strstr(value->str, "${{");
        if (literal_bool || expr)
            make_tmpl(ld, value, &step->if_cond);
        if (expr && step->if_cond && !sl__tmpl_single_expr(step->if_cond)) {
            /* Text around it (a space inside the quotes) makes a string: always true. */
            sl__loader_problem(ld, value->mark,
                               "'if' must be exactly one expression: text around '${{ }}' "
                               "makes a string, which is always true");
            sl__tmpl_free(step->if_cond);
            step->if_cond = NULL;
        } else if (!literal_bool && !expr)
            sl__loader_problem(ld, value->mark, "'if' expects a boolean or an expression, found %s",
                               found);
    }
}

/* ---- vars: every `vars.NAME` names a declared var ---------------------------------- */

static int on_var_ref(void *ud, const char *name, size_t len, sl_mark_t mark)
{
    sl_loader_t *ld = ud;
    char var[128];
    if (len >= sizeof(var))
        len = sizeof(var) - 1;
    memcpy(var, name, len);
    var[len] = '\0';
    if (sl_value_get(ld->wf->vars, var) != NULL)
        return 0;
    const char *guess = sl__workflow_suggest_var(ld->wf, var);
    char names[512];
    sl__workflow_var_names(ld->wf, names, sizeof(names));
    if (guess)
        sl__loader_problem(ld, mark, "unknown var '%s' (did you mean '%s'?)", var, guess);
    else
        sl__loader_problem(ld, mark, "unknown var '%s' (declared: %s)", var, names);
    return 0;
}

static void check_var_refs(sl_loader_t *ld, const sl_step_t *step)
{
    const sl_tmpl_t *tmpls[] = {step->with, step->foreach, step->if_cond};
    for (size_t i = 0; i < SL_COUNTOF(tmpls); i++)
        sl__tmpl_each_var_ref(tmpls[i], on_var_ref, ld);
}

/* ---- lua: literal script paths ---------------------------------------------------- */

/* The `with` entry `name` of a `lua` step, when it is a scalar. */
static const sl_node_t *lua_param(const sl_step_t *step, const sl_node_t *node, const char *name)
{
    const sl_node_t *with, *value;
    if (step->uses == NULL || strcmp(step->uses, "lua") != 0 ||
        !sl__loader_entry(node, "with", &with) || with->kind != SL_NODE_MAP ||
        !sl__loader_entry(with, name, &value) || value->kind != SL_NODE_SCALAR)
        return NULL;
    return value;
}

/* A literal `script` must name a readable regular file, resolved as the lua kind does:
 * against the workflow file's folder unless absolute. */
static void check_script(sl_loader_t *ld, const sl_step_t *step, const sl_node_t *node)
{
    const sl_node_t *script = lua_param(step, node, "script");
    if (script == NULL || strstr(script->str, "${{") != NULL ||
        strcmp(sl__loader_found(script), "a string") != 0)
        return;
    bool absolute = script->str[0] == '/';
    char *path =
        absolute ? sl__strdup(script->str) : sl__asprintf("%s/%s", ld->wf->dir, script->str);
    if (path == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    struct stat st;
    int err = stat(path, &st) == 0 ? 0 : errno;
    if (err == 0 && !S_ISREG(st.st_mode))
        sl__loader_problem(ld, script->mark, "script '%s' is not a regular file (%s)", script->str,
                           path);
    else if (err == 0 && access(path, R_OK) != 0)
        err = errno;
    if (err == ENOENT || err == ENOTDIR)
        sl__loader_problem(ld, script->mark, "script '%s' not found (looked in %s)", script->str,
                           path);
    else if (err != 0)
        sl__loader_problem(ld, script->mark, "script '%s' cannot be read (%s: %s)", script->str,
                           path, strerror(err));
    sl__free(path);
}

/* Literal inline `code` is compiled at load (not run): a syntax error fails `validate`, at
 * the YAML line of the code's own line (block scalars start on the line after `|`). */
static void check_code(sl_loader_t *ld, const sl_step_t *step, const sl_node_t *node)
{
    const sl_node_t *code = lua_param(step, node, "code");
    if (code == NULL || strstr(code->str, "${{") != NULL ||
        strcmp(sl__loader_found(code), "a string") != 0)
        return;
    char err[512];
    int line;
    int rc = sl__expr_check_chunk(code->str, code->len, &line, err, sizeof(err));
    if (rc == SL_ENOMEM) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    if (rc == 0)
        return;
    int lines = 1; /* a syntax error at the end is on the code's last line */
    for (size_t i = 0; i + 1 < code->len; i++)
        lines += code->str[i] == '\n';
    line = line > lines ? lines : line;
    sl_mark_t mark = code->mark;
    if (code->style == '|' && line > 0)
        mark = (sl_mark_t){.line = code->mark.line + (uint32_t)line, .col = 1};
    sl__loader_problem(ld, mark, "Lua syntax error in code (line %d of it): %s",
                       line > 0 ? line : 1, err);
}

/* A literal `max_instructions` must be a positive integer: 0 or less would not mean "no
 * limit" but silently fall back to the default budget. */
static void check_max_instructions(sl_loader_t *ld, const sl_step_t *step, const sl_node_t *node)
{
    const sl_node_t *max = lua_param(step, node, "max_instructions");
    if (max == NULL || strstr(max->str, "${{") != NULL ||
        strcmp(sl__loader_found(max), "an integer") != 0)
        return;
    char *end;
    errno = 0;
    long long n = strtoll(max->str, &end, 0);
    if (errno == 0 && *end == '\0' && n <= 0)
        sl__loader_problem(ld, max->mark, "'max_instructions' expects a positive integer, got '%s'",
                           max->str);
}

/* ---- dependencies -------------------------------------------------------------- */

typedef struct dep_ctx {
    sl_loader_t *ld;
    size_t self;
    size_t *deps;
    size_t count, cap;
    size_t watch; /* a step whose mention `seen` records */
    bool seen;
} dep_ctx_t;

static const char *suggest_step(const sl_loader_t *ld, const char *name)
{
    size_t max = ld->diag->max ? ld->diag->max : 1000;
    if (ld->diag->count >= max)
        return NULL; /* not shown anyway: spare the scan */
    const char *best = NULL;
    size_t best_distance = 3;
    for (size_t i = 0; i < ld->wf->step_count; i++) {
        const char *id = ld->wf->steps[i].id;
        size_t d = id ? sl__edit_distance(name, id, 2) : 3;
        if (d < best_distance && d < strlen(name)) {
            best_distance = d;
            best = id;
        }
    }
    return best;
}

static void add_dep(dep_ctx_t *c, const char *id, sl_mark_t mark, const char *where)
{
    sl_loader_t *ld = c->ld;
    size_t index = sl__index_get(&ld->ids, id);
    if (index == SL_INDEX_NONE) {
        const char *guess = suggest_step(ld, id);
        if (guess)
            sl__loader_problem(ld, mark, "unknown step '%s' %s (did you mean '%s'?)", id, where,
                               guess);
        else
            sl__loader_problem(ld, mark, "unknown step '%s' %s", id, where);
        return;
    }
    if (index == c->self) {
        sl__loader_problem(ld, mark, "step '%s' depends on itself %s", id, where);
        return;
    }
    if (sl__array_grow(&c->deps, &c->cap, c->count, sizeof(*c->deps), 4) < 0) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    c->deps[c->count++] = index;
}

static void on_ref(void *ud, const char *step, sl_mark_t mark)
{
    add_dep(ud, step, mark, "in expression");
}

static void on_watch_ref(void *ud, const char *step, sl_mark_t mark)
{
    dep_ctx_t *c = ud;
    if (sl__index_get(&c->ld->ids, step) == c->watch)
        c->seen = true;
}

/* A `lua` step's inline code names steps too (`steps.a`): they are implicit needs, as
 * in expressions, so `return steps.a + 1` waits for `a`. */
typedef struct code_ref_ctx {
    dep_ctx_t *deps;
    sl_mark_t mark;
    bool watch_only;
} code_ref_ctx_t;

static int on_code_ref(void *ud, const char *id, size_t id_len)
{
    code_ref_ctx_t *r = ud;
    char name[128];
    if (id_len >= sizeof(name))
        return 0;
    memcpy(name, id, id_len);
    name[id_len] = '\0';
    if (r->watch_only)
        on_watch_ref(r->deps, name, r->mark);
    else
        add_dep(r->deps, name, r->mark, "in code");
    return 0;
}

static void scan_code_refs(dep_ctx_t *c, const sl_step_t *step, const sl_node_t *node,
                           bool watch_only)
{
    const sl_node_t *code = lua_param(step, node, "code");
    if (code == NULL)
        return;
    code_ref_ctx_t r = {c, code->mark, watch_only};
    sl__expr_scan_refs(code->str, code->len, on_code_ref, &r);
}

static void step_needs(dep_ctx_t *c, const sl_node_t *node)
{
    const sl_node_t *needs;
    if (!sl__loader_entry(node, "needs", &needs))
        return;
    if (needs->kind == SL_NODE_MAP) {
        sl__loader_problem(c->ld, needs->mark,
                           "'needs' expects a step id or a list of step "
                           "ids, found a map");
        return;
    }
    size_t n = needs->kind == SL_NODE_SEQ ? needs->count : 1;
    for (size_t i = 0; i < n; i++) {
        const sl_node_t *item = needs->kind == SL_NODE_SEQ ? needs->items[i] : needs;
        const char *id;
        if (sl__loader_string(c->ld, item, "needs", &id))
            add_dep(c, id, item->mark, "in needs");
    }
}

static int compare_index(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Streams from step A when foreach is exactly `${{ steps.A }}`, nothing else names A. */
static void step_stream(dep_ctx_t *c, sl_step_t *step, const sl_node_t *node)
{
    const char *source = step->foreach ? sl__tmpl_stream_ref(step->foreach) : NULL;
    size_t index = source ? sl__index_get(&c->ld->ids, source) : SL_INDEX_NONE;
    if (index == SL_INDEX_NONE || index == c->self)
        return;
    for (size_t i = 0; i < c->count; i++) {
        if (c->deps[i] == index)
            return; /* named in needs: wait for all of it */
    }
    c->watch = index;
    c->seen = false;
    if (step->with)
        sl__tmpl_each_ref(step->with, on_watch_ref, c);
    if (step->if_cond)
        sl__tmpl_each_ref(step->if_cond, on_watch_ref, c);
    scan_code_refs(c, step, node, true);
    if (!c->seen)
        step->stream_from = index;
}

/*
 * A template that failed to compile has other expressions that still name steps: each
 * scalar is compiled alone (its problems are reported already, so into `scratch`) and
 * its references kept, so one bad expression hides no unknown step and no cycle.
 * Recursion is bounded by the tree's depth (SL_YAML_DEPTH_MAX).
 */
static void scan_node_refs(dep_ctx_t *c, const sl_node_t *node, sl_diag_t *scratch)
{
    if (node == NULL)
        return;
    if (node->kind == SL_NODE_SCALAR) {
        if (strstr(node->str, "${{") == NULL)
            return;
        sl_tmpl_t *tmpl = NULL;
        int rc = sl__tmpl_new(node, c->ld->file, &tmpl, scratch);
        if (rc == 0)
            sl__tmpl_each_ref(tmpl, on_ref, c);
        else if (rc != SL_EINVAL)
            sl__loader_fail(c->ld, rc);
        sl__tmpl_free(tmpl);
        return;
    }
    bool map = node->kind == SL_NODE_MAP;
    for (size_t i = 0; i < node->count; i++)
        scan_node_refs(c, node->items[map ? 2 * i + 1 : i], scratch);
}

/* Steps named in the expressions of `with`, `foreach` and `if`. */
static void expression_refs(dep_ctx_t *c, const sl_step_t *step, const sl_node_t *node)
{
    static const char *const fields[] = {"with", "foreach", "if"};
    const sl_tmpl_t *tmpls[] = {step->with, step->foreach, step->if_cond};
    for (size_t i = 0; i < SL_COUNTOF(tmpls); i++) {
        const sl_node_t *value;
        if (tmpls[i]) {
            sl__tmpl_each_ref(tmpls[i], on_ref, c);
        } else if (sl__loader_entry(node, fields[i], &value)) {
            sl_diag_t scratch;
            sl__diag_init(&scratch);
            scan_node_refs(c, value, &scratch);
            sl__diag_close(&scratch);
        }
    }
}

static void step_deps(sl_loader_t *ld, size_t index, const sl_node_t *node)
{
    sl_step_t *step = &ld->wf->steps[index];
    dep_ctx_t c = {.ld = ld, .self = index};
    step_needs(&c, node);
    step_stream(&c, step, node);
    expression_refs(&c, step, node);
    scan_code_refs(&c, step, node, false);
    if (c.count > 1)
        qsort(c.deps, c.count, sizeof(*c.deps), compare_index);
    size_t unique = 0;
    for (size_t i = 0; i < c.count; i++) {
        if (unique == 0 || c.deps[unique - 1] != c.deps[i])
            c.deps[unique++] = c.deps[i];
    }
    step->deps = c.deps;
    step->dep_count = unique;
}

void sl__loader_streams(sl_loader_t *ld)
{
    for (size_t i = 0; i < ld->wf->step_count; i++) {
        sl_step_t *step = &ld->wf->steps[i];
        if (step->stream_from != SL_NO_STEP && ld->wf->steps[step->stream_from].foreach == NULL)
            step->stream_from = SL_NO_STEP;
    }
}

/* Feeds one node to the fingerprint: its kind, then a scalar's text and whether it was
 * plain (a plain `1` may be a number, a quoted one never is), or a collection's children in
 * order. The YAML parser bounds the depth. */
static void hash_node(sl_fingerprint_t *h, const sl_node_t *node)
{
    uint8_t head[2] = {(uint8_t)node->kind, node->kind == SL_NODE_SCALAR && node->plain};
    uint64_t n = node->kind == SL_NODE_SCALAR ? node->len : node->count;
    sl__fingerprint_add(h, head, sizeof(head));
    sl__fingerprint_add(h, &n, sizeof(n));
    if (node->kind == SL_NODE_SCALAR) {
        sl__fingerprint_add(h, node->str, node->len);
        return;
    }
    size_t items = node->kind == SL_NODE_MAP ? 2 * node->count : node->count;
    for (size_t i = 0; i < items; i++)
        hash_node(h, node->items[i]);
}

/* A fingerprint of the step's definition (its YAML tree, so formatting and comments do not
 * count): what tells a resumed run which steps changed. */
static void step_hash(sl_step_t *step, const sl_node_t *node)
{
    sl_fingerprint_t h;
    sl__fingerprint_init(&h);
    hash_node(&h, node);
    sl__fingerprint_hex(&h, step->def_hash);
}

void sl__loader_step(sl_loader_t *ld, size_t index, const sl_node_t *node)
{
    sl_step_t *step = &ld->wf->steps[index];
    step->stream_from = SL_NO_STEP;
    step->retry = (sl_retry_t){1, 1000, 30000};
    if (node == NULL || node->kind != SL_NODE_MAP) {
        sl__loader_problem(ld, node ? node->mark : step->mark,
                           "step '%s' expects a map of step fields, found %s", step->id,
                           sl__loader_found(node));
        return;
    }
    sl__loader_check_fields(ld, node, step_fields);
    step_kind(ld, step, node);
    step_settings(ld, step, node);
    step_with(ld, step, node);
    step_foreach_if(ld, step, node);
    check_var_refs(ld, step);
    check_script(ld, step, node);
    check_code(ld, step, node);
    check_max_instructions(ld, step, node);
    step_deps(ld, index, node);
    step_hash(step, node);
}
