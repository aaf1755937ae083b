/*
 * The cache (docs/state.md): a task of a `cache: true` step has a key, the SHA-256 of its
 * parts — the kind, its plugin's name and version, a hash of each expanded `with` value,
 * and the content hash of each file the kind reads (parameters flagged
 * SL_PARAM_READS_FILE or SL_PARAM_READS_SCRIPT). A recorded success with the same key is
 * reused; a miss says which part changed, against the newest entry of the same task.
 *
 * HTTP kinds revalidate: an entry with an ETag or Last-Modified is reused only after a
 * conditional request answers 304 Not Modified (the step's `cache: {max_age}` skips the
 * request while the entry is young); an entry without either is reused as recorded.
 *
 * A lookup never blocks the loop: hashing files, checking a saved file and reading a
 * recorded output happen in libuv's threadpool; values stay on the loop (the threadpool
 * sees paths and bytes only).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "host/internal.h"
#include "util/sha256.h"

#define NOTE_MAX 256

typedef struct file_hash {
    char *path; /* as the kind will open it */
    char *name; /* as the workflow wrote it: the parts' key */
    bool data;  /* a data path (SL_PARAM_READS_FILE): opened beneath the run's roots */
    char hex[SL_SHA256_HEX_SIZE];
    int rc;
} file_hash_t;

typedef struct cache_memo {
    sl_recorder_t *rec;
    sl_task_t *task;          /* while the lookup runs */
    const sl_confine_t *roots; /* the run's, for data paths (borrowed) */
    size_t step, item;
    bool http;                /* the kind revalidates */
    sl_value_t *parts;        /* the key's parts (with the files' hashes once known) */
    char key[SL_SHA256_HEX_SIZE];
    const cache_entry_t *entry; /* the entry the key matched */
    file_hash_t *files;
    size_t file_count;
    uint8_t *recorded;        /* the entry's output (wire), once read */
    size_t recorded_len;
    int saved_rc;             /* the check of the entry's saved file */
    char saved_hex[SL_SHA256_HEX_SIZE];
    bool conditional;         /* the task runs as a conditional request */
    bool revalidated;         /* it answered 304: the recorded output stands */
    bool in_flight, canceled, forgotten;
    uv_work_t work;
    char note[NOTE_MAX];
} cache_memo_t;

/* ---- the index of entries -------------------------------------------------------------- */

static char *slot_name(const char *step, int64_t item)
{
    return sl__asprintf("%s\x1f%lld", step, (long long)item);
}

static int add_entry(void *ud, const sl_store_cache_row_t *row)
{
    cache_index_t *ix = ud;
    if (sl__array_grow(&ix->entries, &ix->cap, ix->count, sizeof(*ix->entries), 64) < 0)
        return SL_ENOMEM;
    cache_entry_t *e = &ix->entries[ix->count];
    memset(e, 0, sizeof(*e));
    const char *texts[] = {row->key, row->step, row->kind, row->version, row->file,
                           row->file_hash, row->etag, row->last_modified};
    char **fields[] = {&e->key, &e->step, &e->kind, &e->version, &e->file, &e->file_hash,
                       &e->etag, &e->last_modified};
    for (size_t i = 0; i < SL_COUNTOF(texts); i++)
        if (texts[i] && (*fields[i] = sl__strdup(texts[i])) == NULL)
            return SL_ENOMEM;
    e->item = row->item;
    e->created_ms = row->created_ms;
    size_t used;
    if (row->parts && sl__value_wire_decode(row->parts, row->parts_len, &used, &e->parts) < 0)
        e->parts = NULL; /* unreadable parts only lose the miss reason */
    ix->count++;
    return 0;
}

static void free_entry(cache_entry_t *e)
{
    char *fields[] = {e->key, e->step, e->kind, e->version, e->file, e->file_hash, e->etag,
                      e->last_modified};
    for (size_t i = 0; i < SL_COUNTOF(fields); i++)
        sl__free(fields[i]);
    sl_value_free(e->parts);
}

/* Indexes entries by key, and each task slot by its newest entry. */
static int index_entries(cache_index_t *ix)
{
    for (size_t i = 0; i < ix->count; i++) {
        cache_entry_t *e = &ix->entries[i];
        if (sl__index_put(&ix->by_key, e->key, i, 1, NULL) < 0)
            return SL_ENOMEM;
        char *name = slot_name(e->step, e->item);
        if (name == NULL || sl__array_grow(&ix->slot_names, &ix->slot_cap, ix->slot_count,
                                           sizeof(char *), 64) < 0) {
            sl__free(name);
            return SL_ENOMEM;
        }
        ix->slot_names[ix->slot_count++] = name;
        size_t old;
        int rc = sl__index_put(&ix->by_slot, name, i, 0, &old);
        if (rc < 0)
            return rc;
        if (rc == 1 && ix->entries[old].created_ms <= e->created_ms)
            sl__index_put(&ix->by_slot, name, i, 1, NULL);
    }
    return 0;
}

static bool has_cached_steps(const sl_workflow_t *wf)
{
    for (size_t i = 0; i < wf->step_count; i++)
        if (wf->steps[i].cache.on)
            return true;
    return false;
}

int sl__host_cache_load(sl_recorder_t *rec, char *err, size_t err_size)
{
    cache_index_t *ix = &rec->cache;
    sl__index_init(&ix->by_key);
    sl__index_init(&ix->by_slot);
    if (!has_cached_steps(rec->wf))
        return 0;
    int rc = sl__store_cache_list(rec->store, rec->wf->name, add_entry, ix, err, err_size);
    return rc < 0 ? rc : index_entries(ix);
}

void sl__host_cache_close(sl_recorder_t *rec)
{
    cache_index_t *ix = &rec->cache;
    while (rec->lookups > 0) /* a lookup's threadpool work outlives nothing */
        uv_run(rec->loop, UV_RUN_ONCE);
    for (size_t i = 0; i < ix->count; i++)
        free_entry(&ix->entries[i]);
    for (size_t i = 0; i < ix->slot_count; i++)
        sl__free(ix->slot_names[i]);
    sl__free(ix->entries);
    sl__free(ix->slot_names);
    sl__index_close(&ix->by_key);
    sl__index_close(&ix->by_slot);
}

/* ---- the key's parts ------------------------------------------------------------------- */

static const sl_param_t *param_of(const sl_kind_t *kind, const char *name)
{
    for (const sl_param_t *p = kind->params; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

/* A path the kind reads, as it resolves it: scripts against the workflow's folder. */
static char *resolve(sl_task_t *task, const char *path, uint32_t flags)
{
    const char *dir = sl__task_workflow_dir(task);
    if ((flags & SL_PARAM_READS_SCRIPT) && path[0] != '/' && dir && dir[0] &&
        strcmp(dir, ".") != 0)
        return sl__asprintf("%s/%s", dir, path);
    return sl__strdup(path);
}

static int note_file(cache_memo_t *m, sl_task_t *task, const char *name, uint32_t flags)
{
    file_hash_t *files = sl__realloc(m->files, (m->file_count + 1) * sizeof(*files));
    if (files == NULL)
        return SL_ENOMEM;
    m->files = files;
    file_hash_t *f = &files[m->file_count];
    memset(f, 0, sizeof(*f));
    f->name = sl__strdup(name);
    f->path = resolve(task, name, flags);
    f->data = !(flags & SL_PARAM_READS_SCRIPT);
    m->file_count++;
    return f->name && f->path ? 0 : SL_ENOMEM;
}

/* The hash of a value's wire encoding into `hex`. */
static int hash_value(const sl_value_t *v, char hex[SL_SHA256_HEX_SIZE])
{
    size_t size;
    int rc = sl__value_wire_size(v, &size);
    uint8_t *wire = rc == 0 ? sl__malloc(size ? size : 1) : NULL;
    if (wire == NULL)
        return rc < 0 ? rc : SL_ENOMEM;
    sl__value_wire_encode(v, wire);
    sl__sha256_hex_of(wire, size, hex);
    sl__free(wire);
    return 0;
}

/* A finished step's output hash, computed once: outputs of ended steps never change. */
static const char *output_hash(sl_recorder_t *rec, size_t step)
{
    if (rec->output_hash == NULL &&
        (rec->output_hash = sl__calloc(rec->wf->step_count + 1, 65)) == NULL)
        return NULL;
    char *hex = rec->output_hash[step];
    const sl_value_t *out = rec->watched ? sl__run_output(rec->watched, step) : NULL;
    if (hex[0] == '\0' && hash_value(out ? out : &(sl_value_t){0}, hex) < 0)
        return NULL;
    return hex;
}

/* What a kind that reads the scope sees beyond its arguments: {vars, item, index,
 * steps: {ID: hash}}. */
static int scope_parts(cache_memo_t *m, const sl_step_t *def, sl_value_t **out)
{
    char hex[SL_SHA256_HEX_SIZE];
    sl_value_t *scope = sl_value_map(), *steps = sl_value_map();
    int rc = scope && steps ? hash_value(m->rec->wf->vars, hex) : SL_ENOMEM;
    if (rc == 0)
        rc = sl_value_set(scope, "vars", sl_value_cstring(hex));
    const sl_value_t *item = sl__task_item(m->task);
    if (rc == 0 && item && (rc = hash_value(item, hex)) == 0)
        rc = sl_value_set(scope, "item", sl_value_cstring(hex));
    if (rc == 0)
        rc = sl_value_set(scope, "index", sl_value_int(sl__task_index(m->task)));
    for (size_t i = 0; rc == 0 && i < def->dep_count; i++) {
        const char *h = output_hash(m->rec, def->deps[i]);
        rc = h ? sl_value_set(steps, m->rec->wf->steps[def->deps[i]].id, sl_value_cstring(h))
               : SL_ENOMEM;
    }
    if (rc == 0) {
        rc = sl_value_set(scope, "steps", steps);
        steps = NULL;
    }
    sl_value_free(steps);
    if (rc < 0) {
        sl_value_free(scope);
        return rc;
    }
    *out = scope;
    return 0;
}

/* {kind, version, with: {NAME: hash of the value}}; files come after hashing. */
static int make_parts(cache_memo_t *m, sl_task_t *task, const sl_kind_t *kind,
                      const char *version, const sl_value_t *args)
{
    sl_value_t *with = sl_value_map();
    int rc = with && (m->parts = sl_value_map()) ? 0 : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < sl_value_len(args); i++) {
        const char *name;
        const sl_value_t *v = sl_value_entry(args, i, &name);
        size_t size;
        uint8_t *wire = NULL;
        rc = sl__value_wire_size(v, &size);
        if (rc == 0 && (wire = sl__malloc(size ? size : 1)) == NULL)
            rc = SL_ENOMEM;
        char hex[SL_SHA256_HEX_SIZE];
        if (rc == 0) {
            sl__value_wire_encode(v, wire);
            sl__sha256_hex_of(wire, size, hex);
            rc = sl_value_set(with, name, sl_value_cstring(hex));
        }
        sl__free(wire);
        const sl_param_t *p = param_of(kind, name);
        const char *path = sl_value_str(v, NULL);
        if (rc == 0 && p && (p->flags & (SL_PARAM_READS_FILE | SL_PARAM_READS_SCRIPT)) && path)
            rc = note_file(m, task, path, p->flags);
    }
    if (rc == 0)
        rc = sl_value_set(m->parts, "kind", sl_value_cstring(kind->name));
    if (rc == 0)
        rc = sl_value_set(m->parts, "version", sl_value_cstring(version));
    if (rc == 0) {
        rc = sl_value_set(m->parts, "with", with);
        with = NULL;
    }
    sl_value_free(with);
    const sl_step_t *def = &m->rec->wf->steps[m->step];
    sl_value_t *scope = NULL;
    if (rc == 0 && (kind->flags & SL_KIND_READS_SCOPE) && (rc = scope_parts(m, def, &scope)) == 0)
        rc = sl_value_set(m->parts, "scope", scope);
    return rc;
}

/* Adds the files' hashes to the parts and computes the key. */
static int finish_key(cache_memo_t *m)
{
    sl_value_t *files = sl_value_map();
    int rc = files ? 0 : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < m->file_count; i++)
        rc = sl_value_set(files, m->files[i].name,
                          sl_value_cstring(m->files[i].rc == 0 ? m->files[i].hex : "missing"));
    if (rc == 0) {
        rc = sl_value_set(m->parts, "files", files);
        files = NULL;
    }
    sl_value_free(files);
    size_t size;
    uint8_t *wire = NULL;
    if (rc == 0)
        rc = sl__value_wire_size(m->parts, &size);
    if (rc == 0 && (wire = sl__malloc(size ? size : 1)) == NULL)
        rc = SL_ENOMEM;
    if (rc == 0) {
        sl__value_wire_encode(m->parts, wire);
        sl__sha256_hex_of(wire, size, m->key);
    }
    sl__free(wire);
    return rc;
}

/* ---- why it missed ------------------------------------------------------------------------ */

static void add_reason(char *note, const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(note);
    if (n >= NOTE_MAX - 16)
        return;
    if (n)
        n += (size_t)snprintf(note + n, NOTE_MAX - n, ", ");
    snprintf(note + n, NOTE_MAX - n, fmt, a, b);
}

/* "with.url changed", "file 'in.txt' is new", "steps.read changed": `what` is the prefix
 * with a %s for the name. */
static void compare_maps(char *note, const sl_value_t *now, const sl_value_t *then,
                         const char *what)
{
    char fmt[64];
    for (size_t i = 0; i < sl_value_len(now); i++) {
        const char *name;
        const sl_value_t *v = sl_value_entry(now, i, &name);
        const sl_value_t *old = sl_value_get(then, name);
        if (old && sl_value_equal(v, old))
            continue;
        snprintf(fmt, sizeof(fmt), "%s%%s%%s", what);
        add_reason(note, fmt, name, old ? " changed" : " is new");
    }
    for (size_t i = 0; i < sl_value_len(then); i++) {
        const char *name;
        sl_value_entry(then, i, &name);
        snprintf(fmt, sizeof(fmt), "%s%%s%%s", what);
        if (sl_value_get(now, name) == NULL)
            add_reason(note, fmt, name, " is gone");
    }
}

/* The reason a key missed, against the newest entry of the same task. */
static void miss_reason(cache_memo_t *m)
{
    cache_index_t *ix = &m->rec->cache;
    const char *step = m->rec->wf->steps[m->step].id;
    char *name = slot_name(step, (int64_t)m->item);
    size_t at = name ? sl__index_get(&ix->by_slot, name) : SL_INDEX_NONE;
    sl__free(name);
    m->note[0] = '\0';
    if (at == SL_INDEX_NONE || ix->entries[at].parts == NULL) {
        snprintf(m->note, sizeof(m->note), "not cached before");
        return;
    }
    const sl_value_t *then = ix->entries[at].parts;
    const char *kind = sl_value_str(sl_value_get(m->parts, "kind"), NULL);
    const char *version = sl_value_str(sl_value_get(m->parts, "version"), NULL);
    const char *old_kind = sl_value_str(sl_value_get(then, "kind"), NULL);
    const char *old_version = sl_value_str(sl_value_get(then, "version"), NULL);
    if (kind && old_kind && strcmp(kind, old_kind) != 0)
        add_reason(m->note, "kind changed (%s, was %s)", kind, old_kind);
    else if (version && old_version && strcmp(version, old_version) != 0)
        add_reason(m->note, "plugin version changed (%s, was %s)", version, old_version);
    compare_maps(m->note, sl_value_get(m->parts, "with"), sl_value_get(then, "with"), "with.");
    compare_maps(m->note, sl_value_get(m->parts, "files"), sl_value_get(then, "files"),
                 "file ");
    const sl_value_t *scope = sl_value_get(m->parts, "scope");
    const sl_value_t *old_scope = sl_value_get(then, "scope");
    if (!sl_value_equal(sl_value_get(scope, "vars"), sl_value_get(old_scope, "vars")))
        add_reason(m->note, "%s%s", "vars changed", "");
    if (!sl_value_equal(sl_value_get(scope, "item"), sl_value_get(old_scope, "item")))
        add_reason(m->note, "%s%s", "item changed", "");
    compare_maps(m->note, sl_value_get(scope, "steps"), sl_value_get(old_scope, "steps"),
                 "steps.");
    if (m->note[0] == '\0')
        snprintf(m->note, sizeof(m->note), "its key changed");
}

/* ---- the lookup ----------------------------------------------------------------------------- */

static void memo_free(cache_memo_t *m)
{
    for (size_t i = 0; i < m->file_count; i++) {
        sl__free(m->files[i].path);
        sl__free(m->files[i].name);
    }
    sl__free(m->files);
    sl__free(m->recorded);
    sl_value_free(m->parts);
    sl__free(m);
}

/* The hash of a data path's file, opened beneath the roots (a path outside hashes as
 * unreadable: the task then fails with the reason when it runs). */
static int hash_data_file(const sl_confine_t *roots, const char *path,
                          char hex[SL_SHA256_HEX_SIZE])
{
    int fd = sl__confine_open(roots, path, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return fd == -ENOENT ? SL_ENOENT : fd == -SL_CONFINE_OUTSIDE ? SL_EPATH : SL_EIO;
    return sl__sha256_fd(fd, hex);
}

static void hash_files_work(uv_work_t *work)
{
    cache_memo_t *m = work->data;
    for (size_t i = 0; i < m->file_count; i++)
        m->files[i].rc = m->files[i].data
                             ? hash_data_file(m->roots, m->files[i].path, m->files[i].hex)
                             : sl__sha256_file(m->files[i].path, m->files[i].hex);
}

/* The entry's output, and its saved file's hash when it saved one. */
static void read_entry_work(uv_work_t *work)
{
    cache_memo_t *m = work->data;
    char err[256];
    if (m->entry->file && m->entry->file_hash)
        m->saved_rc = hash_data_file(m->roots, m->entry->file, m->saved_hex);
    if (m->saved_rc == 0 &&
        sl__store_cache_output(m->rec->store, m->key, &m->recorded, &m->recorded_len, err,
                               sizeof(err)) < 0)
        m->recorded = NULL;
}

static void after_lookup_work(uv_work_t *work, int status);

static int queue_work(cache_memo_t *m, uv_work_cb cb)
{
    m->work.data = m;
    if (uv_queue_work(m->rec->loop, &m->work, cb, after_lookup_work) < 0)
        return SL_ESYS;
    m->in_flight = true;
    m->rec->lookups++;
    return 0;
}

static void answer(cache_memo_t *m, sl_lookup_t answer, sl_value_t *value)
{
    sl_task_t *task = m->task;
    m->task = NULL;
    sl__sched_task_lookup_done(task, answer, value);
}

/* A conditional request: the task's arguments plus If-None-Match / If-Modified-Since, and
 * 304 among the statuses it expects. */
static sl_value_t *conditional_args(const cache_memo_t *m, const sl_value_t *args)
{
    const sl_value_t *old_headers = sl_value_get(args, "headers");
    const sl_value_t *old_expect = sl_value_get(args, "expect");
    sl_value_t *copy = sl_value_copy(args);
    sl_value_t *headers = old_headers ? sl_value_copy(old_headers) : sl_value_map();
    sl_value_t *expect = sl_value_list();
    int rc = copy && headers && expect ? 0 : SL_ENOMEM;
    if (rc == 0 && m->entry->etag)
        rc = sl_value_set(headers, "If-None-Match", sl_value_cstring(m->entry->etag));
    if (rc == 0 && m->entry->last_modified)
        rc = sl_value_set(headers, "If-Modified-Since",
                          sl_value_cstring(m->entry->last_modified));
    if (sl_value_type(old_expect) == SL_TYPE_LIST)
        for (size_t i = 0; rc == 0 && i < sl_value_len(old_expect); i++)
            rc = sl_value_push(expect, sl_value_copy(sl_value_at(old_expect, i)));
    else if (rc == 0)
        rc = sl_value_push(expect, old_expect ? sl_value_copy(old_expect)
                                              : sl_value_cstring("2xx"));
    if (rc == 0)
        rc = sl_value_push(expect, sl_value_int(304));
    if (rc == 0) {
        rc = sl_value_set(copy, "headers", headers);
        headers = NULL;
    }
    if (rc == 0) {
        rc = sl_value_set(copy, "expect", expect);
        expect = NULL;
    }
    sl_value_free(headers);
    sl_value_free(expect);
    if (rc < 0) {
        sl_value_free(copy);
        return NULL;
    }
    return copy;
}

static sl_value_t *decode_recorded(const cache_memo_t *m)
{
    sl_value_t *v = NULL;
    size_t used;
    if (m->recorded == NULL ||
        sl__value_wire_decode(m->recorded, m->recorded_len, &used, &v) < 0)
        return NULL;
    return v;
}

/* The entry's output is read: reuse it, ask the server, or run. */
static void decide(cache_memo_t *m)
{
    const cache_entry_t *e = m->entry;
    const sl_step_t *def = &m->rec->wf->steps[m->step];
    if (m->saved_rc != 0 || (e->file_hash && strcmp(m->saved_hex, e->file_hash) != 0)) {
        snprintf(m->note, sizeof(m->note), "the saved file '%s' changed or is gone", e->file);
        answer(m, SL_LOOKUP_MISS, NULL);
        return;
    }
    bool validators = m->http && (e->etag || e->last_modified);
    int64_t age = sl__store_now_ms() - e->created_ms;
    bool young = def->cache.max_age_ms > 0 && age < def->cache.max_age_ms;
    bool expired = def->cache.max_age_ms > 0 && !young;
    if (m->http && (expired || (validators && !young))) {
        sl_value_t *args = validators ? conditional_args(m, sl__sched_task_args(m->task)) : NULL;
        m->conditional = args != NULL;
        snprintf(m->note, sizeof(m->note), validators ? "revalidated" : "older than max_age");
        answer(m, args ? SL_LOOKUP_RUN_WITH : SL_LOOKUP_MISS, args);
        return;
    }
    sl_value_t *output = decode_recorded(m);
    snprintf(m->note, sizeof(m->note), output ? "cached" : "its recorded output is gone");
    answer(m, output ? SL_LOOKUP_HIT : SL_LOOKUP_MISS, output);
}

/* The files are hashed: the key is known, and so is whether an entry has it. */
static void key_known(cache_memo_t *m)
{
    if (finish_key(m) < 0) {
        snprintf(m->note, sizeof(m->note), "out of memory computing its key");
        answer(m, SL_LOOKUP_MISS, NULL);
        return;
    }
    cache_index_t *ix = &m->rec->cache;
    size_t at = sl__index_get(&ix->by_key, m->key);
    if (m->rec->no_cache || at == SL_INDEX_NONE) {
        if (m->rec->no_cache)
            snprintf(m->note, sizeof(m->note), "--no-cache");
        else
            miss_reason(m);
        answer(m, SL_LOOKUP_MISS, NULL);
        return;
    }
    m->entry = &ix->entries[at];
    if (queue_work(m, read_entry_work) < 0) {
        snprintf(m->note, sizeof(m->note), "cannot read its entry");
        answer(m, SL_LOOKUP_MISS, NULL);
    }
}

static void after_lookup_work(uv_work_t *work, int status)
{
    cache_memo_t *m = work->data;
    m->in_flight = false;
    m->rec->lookups--;
    if (m->canceled) {
        if (m->forgotten)
            memo_free(m);
        return;
    }
    if (work->work_cb == hash_files_work)
        key_known(m);
    else
        decide(m);
}

int sl__host_cache_lookup(void *ud, sl_task_t *task, const sl_value_t *args)
{
    sl_recorder_t *rec = ud;
    size_t step = sl__sched_task_step(task);
    const sl_step_t *def = &rec->wf->steps[step];
    const sl_registry_t *reg = sl__host_registry(task);
    const sl_kind_info_t *info = reg ? sl__registry_find(reg, def->kind->name) : NULL;
    cache_memo_t *m = sl__calloc(1, sizeof(*m));
    if (m == NULL)
        return SL_ENOMEM;
    *m = (cache_memo_t){.rec = rec, .task = task, .step = step,
                        .item = sl__sched_task_item(task), .roots = sl__host_roots(task)};
    m->http = strcmp(def->kind->name, "http.get") == 0 ||
              strcmp(def->kind->name, "http.request") == 0;
    char version[256];
    snprintf(version, sizeof(version), "%s %s", info ? info->plugin->name : "?",
             info ? info->plugin->version : "?");
    int rc = make_parts(m, task, def->kind, version, args);
    if (rc == 0)
        rc = queue_work(m, hash_files_work);
    if (rc < 0) {
        memo_free(m);
        return rc;
    }
    sl__sched_task_set_memo(task, m);
    return 0;
}

void sl__host_cache_lookup_cancel(void *ud, sl_task_t *task)
{
    cache_memo_t *m = sl__sched_task_memo(task);
    if (m) {
        m->canceled = true;
        m->task = NULL;
    }
}

sl_value_t *sl__host_cache_finish(void *ud, sl_task_t *task, sl_value_t *output, bool *cached)
{
    cache_memo_t *m = sl__sched_task_memo(task);
    if (m == NULL || !m->conditional)
        return output;
    if (sl_value_int_of(sl_value_get(output, "status")) != 304) {
        snprintf(m->note, sizeof(m->note), "the server sent a new version");
        return output;
    }
    sl_value_t *recorded = decode_recorded(m);
    if (recorded == NULL)
        return output; /* cannot happen: it was read before the request went */
    sl_value_free(output);
    m->revalidated = true;
    *cached = true;
    snprintf(m->note, sizeof(m->note), "revalidated: 304 Not Modified");
    return recorded;
}

void sl__host_cache_forget(void *ud, void *memo)
{
    cache_memo_t *m = memo;
    m->forgotten = true;
    m->canceled = true;
    if (!m->in_flight)
        memo_free(m);
}

/* ---- recording entries ---------------------------------------------------------------------- */

/* A response header's value, from a map of lower-case names. */
static const char *header(const sl_value_t *output, const char *name)
{
    return sl_value_str(sl_value_get(sl_value_get(output, "headers"), name), NULL);
}

const char *sl__host_cache_ended(sl_recorder_t *rec, const sl_item_report_t *r)
{
    cache_memo_t *m = (cache_memo_t *)r->memo;
    if (r->status != SL_ITEM_OK || m->key[0] == '\0')
        return m->note[0] ? m->note : NULL;
    if (r->cached && !m->revalidated)
        return m->note; /* reused as recorded: its entry stands */
    const sl_step_t *def = &rec->wf->steps[r->step];
    const sl_value_t *out = r->output;
    bool saved = m->http && sl_value_get(out, "path") != NULL;
    sl_store_cache_entry_t e = {
        .key = m->key, .workflow = rec->wf->name, .step = def->id, .item = r->item,
        .kind = def->kind->name, .version = sl_value_str(sl_value_get(m->parts, "version"),
                                                        NULL),
        .parts = m->parts, .output = out,
        .file = saved ? sl_value_str(sl_value_get(out, "path"), NULL) : NULL,
        .etag = m->http ? header(out, "etag") : NULL,
        .last_modified = m->http ? header(out, "last-modified") : NULL,
    };
    if (m->revalidated && m->entry) { /* the entry stands, and its age starts again */
        e.etag = m->entry->etag;
        e.last_modified = m->entry->last_modified;
        e.file_hash = m->entry->file_hash;
    }
    sl__store_cache_put(rec->srun, &e);
    return m->note[0] ? m->note : NULL;
}
