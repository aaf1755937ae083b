/* Workflow sections other than steps: schedule, limits, defaults, retry. */
#include <string.h>
#include <sys/stat.h>

#include "cron/cron.h"
#include "loader/internal.h"

#define CRON_ERR_MAX 256

static bool expect_map(sl_loader_t *ld, const sl_node_t *node, const char *field)
{
    if (node && node->kind == SL_NODE_MAP)
        return true;
    sl__loader_problem(ld, node ? node->mark : (sl_mark_t){1, 1}, "'%s' expects a map, found %s",
                       field, sl__loader_found(node));
    return false;
}

/* ---- schedule ------------------------------------------------------------- */

/* Where byte `offset` of a scalar's text is, when the text maps onto its source. */
static sl_mark_t scalar_offset_mark(const sl_node_t *node, size_t offset)
{
    sl_mark_t m = node->mark;
    bool single_line = node->end.line == node->mark.line;
    bool escapes = (node->style == '"' && strchr(node->str, '\\')) ||
                   (node->style == '\'' && strchr(node->str, '\''));
    if (!single_line || escapes || node->style == '|' || node->style == '>')
        return m;
    m.col += (uint32_t)offset + (node->style == '"' || node->style == '\'' ? 1 : 0);
    return m;
}

static void add_cron(sl_loader_t *ld, const sl_node_t *node)
{
    sl_schedule_t *s = &ld->wf->schedule;
    const char *text;
    if (!sl__loader_string(ld, node, "cron", &text))
        return;
    char err[CRON_ERR_MAX];
    size_t offset = 0;
    sl_cron_t *cron = NULL;
    if (sl__cron_parse(text, &cron, err, sizeof(err), &offset) < 0) {
        sl__loader_problem(ld, scalar_offset_mark(node, offset), "invalid cron expression: %s",
                           err);
        return;
    }
    sl__cron_free(cron);
    char *copy = sl__strdup(text);
    if (copy == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    s->cron[s->cron_count] = copy;
    s->cron_marks[s->cron_count++] = node->mark;
}

static void schedule_cron(sl_loader_t *ld, const sl_node_t *node)
{
    sl_schedule_t *s = &ld->wf->schedule;
    size_t n = node->kind == SL_NODE_SEQ ? node->count : 1;
    if (node->kind == SL_NODE_SEQ && n == 0) {
        sl__loader_problem(ld, node->mark, "'cron' needs at least one expression");
        return;
    }
    s->cron = sl__calloc(n, sizeof(*s->cron));
    s->cron_marks = sl__calloc(n, sizeof(*s->cron_marks));
    if (s->cron == NULL || s->cron_marks == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++)
        add_cron(ld, node->kind == SL_NODE_SEQ ? node->items[i] : node);
}

static void schedule_timezone(sl_loader_t *ld, const sl_node_t *node)
{
    const char *tz = "UTC";
    if (node && sl__loader_string(ld, node, "timezone", &tz) && sl__tz_check(tz) != 0)
        sl__loader_problem(ld, node->mark, "unknown time zone '%s'", tz);
    sl__free(ld->wf->schedule.timezone);
    if ((ld->wf->schedule.timezone = sl__strdup(tz)) == NULL)
        sl__loader_fail(ld, SL_ENOMEM);
}

void sl__loader_schedule(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"cron", "timezone", "concurrency", "missed",
                                         "catchup", "jitter", NULL};
    static const char *const concurrency[] = {"forbid", "allow", "replace", "queue", NULL};
    static const char *const missed[] = {"last", "none", "all", NULL};
    sl_schedule_t *s = &ld->wf->schedule;
    if (!expect_map(ld, node, "schedule"))
        return;
    s->present = true;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value = NULL;
    if (sl__loader_entry(node, "cron", &value) == NULL)
        sl__loader_problem(ld, node->mark, "a schedule needs 'cron'");
    else
        schedule_cron(ld, value);
    value = NULL;
    sl__loader_entry(node, "timezone", &value);
    schedule_timezone(ld, value);
    int choice;
    if (sl__loader_entry(node, "concurrency", &value) &&
        sl__loader_enum(ld, value, "concurrency", concurrency, &choice))
        s->concurrency = (sl_sched_concurrency_t)choice;
    if (sl__loader_entry(node, "missed", &value) &&
        sl__loader_enum(ld, value, "missed", missed, &choice))
        s->missed = (sl_missed_t)choice;
    if (sl__loader_entry(node, "catchup", &value))
        sl__loader_duration(ld, value, "catchup", &s->catchup_ms);
    if (sl__loader_entry(node, "jitter", &value))
        sl__loader_duration(ld, value, "jitter", &s->jitter_ms);
}

/* ---- limits --------------------------------------------------------------- */

static void limits_http(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"concurrency", "per_host", "rate",        "robots",
                                         "ca_file",     "proxy",    "h2c", "max_streams", NULL};
    sl_limits_t *l = &ld->wf->limits;
    if (!expect_map(ld, node, "http"))
        return;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value;
    if (sl__loader_entry(node, "concurrency", &value))
        sl__loader_uint(ld, value, "concurrency", 1, UINT32_MAX, &l->http_concurrency);
    if (sl__loader_entry(node, "per_host", &value))
        sl__loader_uint(ld, value, "per_host", 1, UINT32_MAX, &l->http_per_host);
    if (sl__loader_entry(node, "robots", &value))
        sl__loader_bool(ld, value, "robots", &l->http_robots);
    if (sl__loader_entry(node, "rate", &value)) {
        sl_value_t *v = NULL;
        if (value->kind == SL_NODE_SCALAR &&
            sl__yaml_scalar_value(value->str, value->len, value->plain, &v) < 0) {
            sl__loader_fail(ld, SL_ENOMEM);
            return;
        }
        sl_type_t t = v ? sl_value_type(v) : SL_TYPE_NIL;
        double rate = (t == SL_TYPE_INT || t == SL_TYPE_NUMBER) ? sl_value_number_of(v) : 0;
        sl_value_free(v);
        if (!(rate > 0 && rate < 1e9))
            sl__loader_problem(ld, value->mark, "'rate' expects a number of requests per second "
                                                "above 0, got '%s'",
                               value->kind == SL_NODE_SCALAR ? value->str : "a collection");
        else
            l->http_rate = rate;
    }
    sl__loader_http_transport(ld, node);
}

static void limits_cpu(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"workers", "memory", NULL};
    sl_limits_t *l = &ld->wf->limits;
    if (!expect_map(ld, node, "cpu"))
        return;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value;
    if (sl__loader_entry(node, "workers", &value)) {
        bool is_auto = value->kind == SL_NODE_SCALAR && strcmp(value->str, "auto") == 0;
        if (is_auto)
            l->cpu_workers = 0;
        else if (value->kind == SL_NODE_SCALAR && value->plain && value->str[0] >= '0' &&
                 value->str[0] <= '9')
            sl__loader_uint(ld, value, "workers", 1, 4096, &l->cpu_workers);
        else
            sl__loader_problem(ld, value->mark, "'workers' expects 'auto' or a positive "
                                                "integer, got '%s'",
                               value->kind == SL_NODE_SCALAR ? value->str : "a collection");
    }
    if (sl__loader_entry(node, "memory", &value))
        sl__loader_size(ld, value, "memory", &l->cpu_memory_bytes);
}

static void limits_slurm(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"workdir", "poll", NULL};
    sl_limits_t *l = &ld->wf->limits;
    if (!expect_map(ld, node, "slurm"))
        return;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value;
    const char *text;
    if (sl__loader_entry(node, "workdir", &value) &&
        sl__loader_text(ld, value, "workdir", &text)) {
        if (text[0] == '\0')
            sl__loader_problem(ld, value->mark, "'workdir' expects a folder, got ''");
        else if ((l->slurm_workdir = sl__strdup(text)) == NULL)
            sl__loader_fail(ld, SL_ENOMEM);
    }
    if (sl__loader_entry(node, "poll", &value) &&
        sl__loader_duration(ld, value, "poll", &l->slurm_poll_ms) &&
        (l->slurm_poll_ms < 100 || l->slurm_poll_ms > 600000))
        sl__loader_problem(ld, value->mark, "'poll' expects a duration from 100ms to 10m, "
                                            "got '%s'", value->str);
}

/* One folder of limits.fs.allow: a non-empty string naming an existing folder (absolute,
 * or relative to the working directory, as data paths). */
static void add_allow(sl_loader_t *ld, const sl_node_t *node)
{
    sl_limits_t *l = &ld->wf->limits;
    const char *text;
    if (!sl__loader_string(ld, node, "allow", &text))
        return;
    struct stat st;
    if (text[0] == '\0' || strlen(text) != node->len) {
        sl__loader_problem(ld, node->mark, "'allow' expects folder names, got an empty one");
        return;
    }
    bool found = stat(text, &st) == 0;
    if (!found || !S_ISDIR(st.st_mode)) {
        sl__loader_problem(ld, node->mark, "'allow' names '%s', which %s", text,
                           found ? "is not a folder" : "does not exist");
        return;
    }
    char *copy = sl__strdup(text);
    if (copy == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    l->fs_allow[l->fs_allow_count] = copy;
    l->fs_allow_marks[l->fs_allow_count++] = node->mark;
}

static void limits_fs(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"allow", NULL};
    sl_limits_t *l = &ld->wf->limits;
    if (!expect_map(ld, node, "fs"))
        return;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value;
    if (!sl__loader_entry(node, "allow", &value))
        return;
    if (value->kind != SL_NODE_SEQ) {
        sl__loader_problem(ld, value->mark, "'allow' expects a list of folders, found %s",
                           sl__loader_found(value));
        return;
    }
    if (value->count == 0 || l->fs_allow != NULL)
        return;
    l->fs_allow = sl__calloc(value->count, sizeof(*l->fs_allow));
    l->fs_allow_marks = sl__calloc(value->count, sizeof(*l->fs_allow_marks));
    if (l->fs_allow == NULL || l->fs_allow_marks == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    for (size_t i = 0; i < value->count; i++)
        add_allow(ld, value->items[i]);
}

void sl__loader_limits(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"http", "cpu", "slurm", "fs", NULL};
    if (!expect_map(ld, node, "limits"))
        return;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value;
    if (sl__loader_entry(node, "http", &value))
        limits_http(ld, value);
    if (sl__loader_entry(node, "cpu", &value))
        limits_cpu(ld, value);
    if (sl__loader_entry(node, "slurm", &value))
        limits_slurm(ld, value);
    if (sl__loader_entry(node, "fs", &value))
        limits_fs(ld, value);
}

/* ---- retry and defaults ------------------------------------------------------ */

/* The map form. Each field is checked on its own, and the backoff pair is compared
 * whenever both parsed, so one bad field hides no other problem. */
static void retry_map(sl_loader_t *ld, const sl_node_t *node, sl_retry_t *r)
{
    static const char *const fields[] = {"attempts", "backoff", "max_backoff", NULL};
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value, *backoff = NULL, *max_backoff = NULL;
    if (sl__loader_entry(node, "attempts", &value))
        sl__loader_uint(ld, value, "attempts", 1, SL_RETRY_ATTEMPTS_MAX, &r->attempts);
    bool backoff_ok = true, max_backoff_ok = true;
    if (sl__loader_entry(node, "backoff", &backoff))
        backoff_ok = sl__loader_duration(ld, backoff, "backoff", &r->backoff_ms);
    if (sl__loader_entry(node, "max_backoff", &max_backoff))
        max_backoff_ok = sl__loader_duration(ld, max_backoff, "max_backoff", &r->max_backoff_ms);
    if (backoff == NULL && r->max_backoff_ms < r->backoff_ms)
        r->backoff_ms = r->max_backoff_ms;
    if (backoff_ok && max_backoff_ok && r->max_backoff_ms < r->backoff_ms)
        sl__loader_problem(ld, max_backoff ? max_backoff->mark : node->mark,
                           "'max_backoff' must not be less than 'backoff'");
}

bool sl__loader_retry(sl_loader_t *ld, const sl_node_t *node, sl_retry_t *out)
{
    sl_retry_t r = {1, 1000, 30000};
    int errors = ld->errors;
    const char *found = sl__loader_found(node);
    bool expression = node->kind == SL_NODE_SCALAR && strstr(node->str, "${{") != NULL;
    if (node->kind == SL_NODE_MAP)
        retry_map(ld, node, &r);
    else if (strcmp(found, "an integer") == 0 || expression)
        sl__loader_uint(ld, node, expression ? "retry" : "attempts", 1, SL_RETRY_ATTEMPTS_MAX,
                        &r.attempts);
    else
        sl__loader_problem(ld, node->mark, "'retry' expects a map {attempts, backoff, "
                                           "max_backoff} or an integer, got %s", found);
    if (ld->errors != errors)
        return false;
    *out = r;
    return true;
}

bool sl__loader_cache(sl_loader_t *ld, const sl_node_t *node, sl_cache_opts_t *out)
{
    static const char *const fields[] = {"max_age", NULL};
    sl_cache_opts_t cache = {false, 0};
    if (node->kind == SL_NODE_MAP) {
        int errors = ld->errors;
        sl__loader_check_fields(ld, node, fields);
        const sl_node_t *value;
        cache.on = true;
        if (sl__loader_entry(node, "max_age", &value) &&
            sl__loader_duration(ld, value, "max_age", &cache.max_age_ms) &&
            cache.max_age_ms <= 0)
            sl__loader_problem(ld, value->mark, "'max_age' must be longer than 0");
        if (ld->errors != errors)
            return false;
    } else if (node->kind != SL_NODE_SCALAR) {
        sl__loader_problem(ld, node->mark, "'cache' expects true, false or a map {max_age}, "
                           "got %s", sl__loader_found(node));
        return false;
    } else if (!sl__loader_bool(ld, node, "cache", &cache.on)) {
        return false;
    }
    *out = cache;
    return true;
}

void sl__loader_defaults(sl_loader_t *ld, const sl_node_t *node)
{
    static const char *const fields[] = {"timeout", "retry", "on_error", "concurrency",
                                         "cache", NULL};
    static const char *const on_error[] = {"fail", "continue", NULL};
    sl_step_defaults_t *d = &ld->defaults;
    if (!expect_map(ld, node, "defaults"))
        return;
    sl__loader_check_fields(ld, node, fields);
    const sl_node_t *value;
    int choice;
    if (sl__loader_entry(node, "timeout", &value))
        d->has_timeout = sl__loader_duration(ld, value, "timeout", &d->timeout_ms);
    if (sl__loader_entry(node, "retry", &value))
        d->has_retry = sl__loader_retry(ld, value, &d->retry);
    if (sl__loader_entry(node, "on_error", &value) &&
        sl__loader_enum(ld, value, "on_error", on_error, &choice)) {
        d->has_on_error = true;
        d->on_error = (sl_on_error_t)choice;
    }
    if (sl__loader_entry(node, "concurrency", &value))
        d->has_concurrency =
            sl__loader_uint(ld, value, "concurrency", 1, UINT32_MAX, &d->concurrency);
    if (sl__loader_entry(node, "cache", &value))
        d->has_cache = sl__loader_cache(ld, value, &d->cache);
}
