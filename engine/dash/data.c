/*
 * What the run page and /api/runs/RUN both show, loaded in the threadpool from the
 * read-only store: the run, its steps with their needs, its failed tasks (at most
 * SL_DASH_FAILED_MAX) and its log tail. The strings live in an arena of the run, freed
 * with it. Nothing here writes to the database.
 */
#include <stdio.h>
#include <string.h>

#include "dash/internal.h"

#define ARENA_CHUNK (64u * 1024)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk_t;

/* The run and what its strings are kept in: sl_dash_run_t first, so a run is freed by it. */
typedef struct loaded {
    sl_dash_run_t run;
    chunk_t *chunks;
    size_t step_cap, log_cap;
    int rc;
} loaded_t;

static const char *keep(loaded_t *l, const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s) + 1;
    chunk_t *c = l->chunks;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if ((c = sl__malloc(sizeof(*c) + cap)) == NULL) {
            l->rc = SL_ENOMEM;
            return "";
        }
        c->next = l->chunks, c->used = 0, c->cap = cap;
        l->chunks = c;
    }
    char *p = c->data + c->used;
    memcpy(p, s, n);
    c->used += n;
    return p;
}

static bool grow(void **items, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 16;
    void *p = sl__realloc(*items, n * size);
    if (p == NULL)
        return false;
    *items = p;
    *cap = n;
    return true;
}

/* A step's needs from their JSON list; a list that does not parse is none. */
static void keep_needs(loaded_t *l, sl_dash_step_t *s, const char *json)
{
    sl_value_t *list = NULL;
    char err[128];
    if (json == NULL || sl_value_from_json(json, strlen(json), &list, err, sizeof err) < 0)
        return;
    size_t n = sl_value_type(list) == SL_TYPE_LIST ? sl_value_len(list) : 0;
    if (n && (s->needs = sl__calloc(n, sizeof(*s->needs))) == NULL)
        l->rc = SL_ENOMEM;
    for (size_t i = 0; s->needs && i < n; i++) {
        const sl_value_t *item = sl_value_at(list, i);
        if (sl_value_type(item) == SL_TYPE_STRING)
            s->needs[s->needs_count++] = (char *)keep(l, sl_value_str(item, NULL));
    }
    sl_value_free(list);
}

static int add_step(void *ud, const sl_store_step_row_t *row)
{
    loaded_t *l = ud;
    sl_dash_run_t *r = &l->run;
    if (!grow((void **)&r->steps, &l->step_cap, r->step_count, sizeof(*r->steps)))
        return l->rc = SL_ENOMEM;
    sl_dash_step_t *s = &r->steps[r->step_count++];
    memset(s, 0, sizeof(*s));
    s->row = *row;
    s->row.id = keep(l, row->id);
    s->row.kind = keep(l, row->kind);
    s->row.def_hash = keep(l, row->def_hash);
    /* A step recorded running in a run that is over (its process died: the reap marks
     * the run, not its steps) was stopped before it finished, as SPEC's states name it. */
    bool over = strcmp(r->run.status, "running") != 0;
    s->row.status = keep(l, over && strcmp(row->status, "running") == 0 ? "canceled"
                                                                         : row->status);
    s->row.needs = keep(l, row->needs);
    keep_needs(l, s, row->needs);
    return l->rc;
}

static int add_failed(void *ud, const sl_store_task_row_t *row)
{
    loaded_t *l = ud;
    sl_dash_run_t *r = &l->run;
    if (r->failed_count == SL_DASH_FAILED_MAX) {
        r->failed_more = true;
        return 1;
    }
    sl_dash_task_t *t = &r->failed[r->failed_count++];
    t->row = *row;
    t->row.step_id = keep(l, row->step_id);
    t->row.status = keep(l, row->status);
    t->row.error = keep(l, row->error);
    t->row.cache_note = keep(l, row->cache_note);
    return l->rc;
}

static int add_log(void *ud, const sl_store_log_row_t *row)
{
    loaded_t *l = ud;
    sl_dash_run_t *r = &l->run;
    if (!grow((void **)&r->logs, &l->log_cap, r->log_count, sizeof(*r->logs)))
        return l->rc = SL_ENOMEM;
    sl_dash_log_t *g = &r->logs[r->log_count++];
    g->row = *row;
    g->row.level = keep(l, row->level);
    g->row.where = keep(l, row->where);
    g->row.message = keep(l, row->message);
    return l->rc;
}

static int load_parts(sl_store_t *store, loaded_t *l, char *err, size_t err_size)
{
    sl_dash_run_t *r = &l->run;
    int64_t seq = r->run.seq;
    int rc = sl__store_list_steps(store, seq, add_step, l, err, err_size);
    if (rc == 0 && l->rc == 0 &&
        (r->failed = sl__calloc(SL_DASH_FAILED_MAX, sizeof(*r->failed))) == NULL)
        l->rc = SL_ENOMEM;
    if (rc == 0 && l->rc == 0)
        rc = sl__store_list_failed(store, seq, SL_DASH_FAILED_MAX + 1, add_failed, l, err,
                                   err_size);
    if (rc == 0 && l->rc == 0)
        rc = sl__store_list_logs(store, seq, SL_DASH_LOG_TAIL, add_log, l, err, err_size);
    if (rc == 0 && l->rc < 0) {
        snprintf(err, err_size, "out of memory");
        rc = l->rc;
    }
    return rc;
}

int sl__dash_run_load_work(sl_store_t *store, const char *ref, sl_dash_run_t **out, char *err,
                           size_t err_size)
{
    if (store == NULL) {
        snprintf(err, err_size, "no run '%s' recorded (no state yet)", ref);
        return SL_ENOTFOUND;
    }
    loaded_t *l = sl__calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    int rc = sl__store_find_run(store, ref, NULL, &l->run.run, err, err_size);
    if (rc == 0)
        rc = load_parts(store, l, err, err_size);
    if (rc < 0) {
        sl__dash_run_free(&l->run);
        return rc;
    }
    *out = &l->run;
    return 0;
}

void sl__dash_run_free(sl_dash_run_t *run)
{
    if (run == NULL)
        return;
    loaded_t *l = (loaded_t *)run;
    for (size_t i = 0; i < run->step_count; i++)
        sl__free(run->steps[i].needs);
    sl__free(run->steps);
    sl__free(run->failed);
    sl__free(run->logs);
    for (chunk_t *c = l->chunks, *next; c; c = next) {
        next = c->next;
        sl__free(c);
    }
    sl__free(l);
}
