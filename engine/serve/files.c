/*
 * The files a daemon serves (docs/scheduling.md, "Reloads"): the operands' files found,
 * those new or changed since the last look loaded in the threadpool (the disk and the
 * loader stay off the loop), then applied on the loop: a new file is scheduled, a changed
 * one that validates replaces its version (an edited schedule counts only ticks after
 * the edit), one that does not keeps its previous version, and a removed one stops being
 * scheduled while its runs finish. uv_fs_event on the operands' folders and SIGHUP start
 * a reload.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "serve/daemon.h"

/* ---- finding the files ------------------------------------------------------------- */

static int add_file(sl_serve_files_t *l, char *path, char *err, size_t err_size)
{
    if (path == NULL) {
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    if (l->count >= SL_SERVE_FILES_MAX ||
        sl__array_grow(&l->items, &l->cap, l->count, sizeof(char *), 16) < 0) {
        sl__free(path);
        snprintf(err, err_size, "too many workflow files (at most %d)", SL_SERVE_FILES_MAX);
        return SL_ELIMIT;
    }
    l->items[l->count++] = path;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_workflow_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
                              (n > 4 && strcmp(name + n - 4, ".yml") == 0));
}

int sl__serve_collect(const char *path, sl_serve_files_t *l, char *err, size_t err_size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, err_size, "%s: error: no such file or folder", path);
        return SL_ENOENT;
    }
    if (!S_ISDIR(st.st_mode))
        return add_file(l, sl__strdup(path), err, err_size);
    DIR *dir = opendir(path);
    if (dir == NULL) {
        snprintf(err, err_size, "%s: error: cannot read the folder", path);
        return SL_EIO;
    }
    size_t first = l->count;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir)) != NULL)
        if (is_workflow_name(e->d_name))
            rc = add_file(l, sl__asprintf("%s/%s", path, e->d_name), err, err_size);
    closedir(dir);
    qsort(l->items + first, l->count - first, sizeof(char *), by_name);
    return rc;
}

void sl__serve_files_free(sl_serve_files_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        sl__free(l->items[i]);
    sl__free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ---- a reload: the threadpool's half ------------------------------------------------ */

typedef struct known_file {
    const char *path; /* the entry's */
    sl_serve_entry_t *e;
    sl_serve_stamp_t stamp;
    bool removed;
} known_file_t;

typedef struct found_file {
    char *path;
    sl_serve_entry_t *e; /* NULL: a new file */
    sl_serve_stamp_t stamp;
    sl_workflow_t *wf; /* NULL: it does not validate */
    bool unchanged, removed;
} found_file_t;

typedef struct reload {
    uv_work_t work;
    sl_serve_daemon_t *d;
    known_file_t *known;
    size_t known_count;
    found_file_t *found;
    size_t found_count, found_cap;
    bool at_start;
    char err[1024]; /* an operand that could not be read */
} reload_t;

static int by_known_path(const void *a, const void *b)
{
    return strcmp(((const known_file_t *)a)->path, ((const known_file_t *)b)->path);
}

static sl_serve_stamp_t stamp_of(const struct stat *st)
{
    return (sl_serve_stamp_t){(int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                              (int64_t)st->st_size, (uint64_t)st->st_ino};
}

static bool same_stamp(const sl_serve_stamp_t *a, const sl_serve_stamp_t *b)
{
    return a->mtime_ns == b->mtime_ns && a->size == b->size && a->ino == b->ino;
}

static found_file_t *found_add(reload_t *r)
{
    if (sl__array_grow(&r->found, &r->found_cap, r->found_count, sizeof(found_file_t), 16) < 0)
        return NULL;
    found_file_t *f = &r->found[r->found_count++];
    memset(f, 0, sizeof(*f));
    return f;
}

/* Loads one file unless it is as it was; `k` is what the daemon knows of it, or NULL. */
static void look_at(reload_t *r, const char *path, known_file_t *k)
{
    struct stat st;
    sl_serve_stamp_t stamp = {0};
    if (stat(path, &st) == 0)
        stamp = stamp_of(&st);
    if (k && same_stamp(&k->stamp, &stamp) && stamp.ino != 0)
        return;
    found_file_t *f = found_add(r);
    if (f == NULL || (f->path = sl__strdup(path)) == NULL)
        return;
    f->e = k ? k->e : NULL;
    f->stamp = stamp;
    sl_diag_t diag;
    sl__diag_init(&diag);
    int rc = sl__workflow_load(path, r->d->opts->registry, &f->wf, &diag);
    sl__diag_sort(&diag);
    sl__diag_print(&diag, stderr);
    if (rc < 0 && diag.count == 0)
        fprintf(stderr, "%s: error: %s\n", path, sl_strerror(rc));
    sl__diag_close(&diag);
    if (rc < 0)
        f->wf = NULL;
}

static void reload_work(uv_work_t *work)
{
    reload_t *r = work->data;
    const sl_serve_opts_t *o = r->d->opts;
    sl_serve_files_t files = {0};
    for (size_t i = 0; i < o->operand_count; i++)
        if (sl__serve_collect(o->operands[i], &files, r->err, sizeof r->err) == SL_ENOMEM)
            break;
    qsort(r->known, r->known_count, sizeof(known_file_t), by_known_path);
    bool *seen = sl__calloc(r->known_count + 1, sizeof(bool));
    for (size_t i = 0; seen && i < files.count; i++) {
        known_file_t key = {.path = files.items[i]};
        known_file_t *k =
            bsearch(&key, r->known, r->known_count, sizeof(known_file_t), by_known_path);
        if (k)
            seen[k - r->known] = true;
        look_at(r, files.items[i], k);
    }
    for (size_t i = 0; seen && i < r->known_count; i++) {
        found_file_t *f;
        if (!seen[i] && !r->known[i].removed && (f = found_add(r)) != NULL) {
            f->e = r->known[i].e;
            f->removed = true;
        }
    }
    sl__free(seen);
    sl__serve_files_free(&files);
}

/* ---- a reload: the loop's half ------------------------------------------------------ */

static sl_serve_entry_t *entry_new(sl_serve_daemon_t *d, const char *path)
{
    sl_serve_entry_t *e = sl__calloc(1, sizeof(*e));
    if (e == NULL || (e->path = sl__strdup(path)) == NULL) {
        sl__free(e);
        return NULL;
    }
    e->d = d;
    uv_timer_init(&d->loop, &e->timer);
    e->timer.data = e;
    e->next = d->entries;
    d->entries = e;
    return e;
}

static bool same_schedule(const sl_schedule_t *a, const sl_schedule_t *b)
{
    if (a->cron_count != b->cron_count || a->missed != b->missed ||
        strcmp(a->timezone ? a->timezone : "UTC", b->timezone ? b->timezone : "UTC") != 0)
        return false;
    for (size_t i = 0; i < a->cron_count; i++)
        if (strcmp(a->cron[i], b->cron[i]) != 0)
            return false;
    return true;
}

/* The entry serving workflow `name` other than `self`, or NULL. */
static sl_serve_entry_t *name_taken(sl_serve_daemon_t *d, const sl_serve_entry_t *self,
                                    const char *name)
{
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        if (e != self && !e->removed && e->name && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* A version from a loaded workflow (taken), or NULL with the reason logged. */
static sl_serve_version_t *version_new(sl_serve_daemon_t *d, sl_serve_entry_t *e, sl_workflow_t *wf)
{
    sl_serve_entry_t *other = name_taken(d, e, wf->name);
    char err[512];
    sl_serve_version_t *v = sl__calloc(1, sizeof(*v));
    if (other) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: workflow %s is already served from %s", e->path,
               wf->name, other->path);
    } else if (v && wf->schedule.present && wf->schedule.cron_count > 0 &&
               sl__serve_schedule_open(&wf->schedule, &v->sched, err, sizeof err) < 0) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s:1:1: error: %s", e->path, err);
    } else if (v) {
        v->wf = wf;
        v->refs = 1;
        return v;
    }
    sl__free(v);
    sl__workflow_free(wf);
    return NULL;
}

static void entry_set_name(sl_serve_entry_t *e, const char *name)
{
    if (e->name && strcmp(e->name, name) == 0)
        return;
    if (e->held && e->name && e->old_name == NULL) {
        e->old_name = e->name; /* its lease goes in the next round */
        e->name = NULL;
    }
    sl__free(e->name);
    e->name = sl__strdup(name);
    e->held = false;
    e->last_tick = 0;
    uv_timer_stop(&e->timer);
}

static void entry_apply(sl_serve_daemon_t *d, sl_serve_entry_t *e, found_file_t *f, bool at_start)
{
    bool was_removed = e->removed;
    e->stamp = f->stamp;
    e->removed = false;
    sl_serve_version_t *v = f->wf ? version_new(d, e, f->wf) : NULL;
    f->wf = NULL;
    if (v == NULL) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s: does not validate: %s", e->path,
               e->cur && !was_removed ? "the previous version keeps being served"
                                      : "not scheduled");
        return;
    }
    sl_serve_version_t *old = was_removed ? NULL : e->cur;
    bool edited = old && !same_schedule(&old->wf->schedule, &v->wf->schedule);
    e->cur = v;
    if (old)
        sl__serve_version_unref(old);
    entry_set_name(e, v->wf->name);
    SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: %s workflow %s%s", e->path,
           at_start ? "loaded"
           : old    ? "reloaded"
                    : "added",
           v->wf->name, v->sched.count == 0 ? " (no schedule: not scheduled)" : "");
    if (edited && e->held) {
        int64_t now = sl__clock_wall_ms() / 1000;
        if (e->last_tick < now)
            e->last_tick = now; /* an edited schedule counts only ticks after the edit */
        SL_LOG(SL_LOG_INFO, NULL, NULL, "%s: schedule changed: only ticks from now on count",
               v->wf->name);
    }
    if (e->held)
        sl__serve_entry_check(e);
}

static void entry_remove(sl_serve_entry_t *e)
{
    e->removed = true;
    memset(&e->stamp, 0, sizeof(e->stamp));
    uv_timer_stop(&e->timer);
    for (size_t i = 0; i < e->queued; i++)
        sl__serve_skip(e, e->queue[i], "its file was removed");
    e->queued = 0;
    SL_LOG(SL_LOG_INFO, NULL, NULL,
           "%s: removed: workflow %s is no longer scheduled (%zu run%s going finish%s)", e->path,
           e->name ? e->name : "?", e->active, e->active == 1 ? "" : "s",
           e->active == 1 ? "es" : "");
    if (e->cur)
        sl__serve_version_unref(e->cur);
    e->cur = NULL;
}

static void reload_apply(reload_t *r)
{
    sl_serve_daemon_t *d = r->d;
    if (r->err[0])
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "%s", r->err);
    for (size_t i = 0; i < r->found_count; i++) {
        found_file_t *f = &r->found[i];
        if (d->stopping) {
            /* nothing new once stopping */
        } else if (f->removed) {
            entry_remove(f->e);
        } else if (f->e || (f->e = entry_new(d, f->path)) != NULL) {
            entry_apply(d, f->e, f, r->at_start);
        }
        sl__workflow_free(f->wf);
        sl__free(f->path);
    }
    sl__free(r->found);
    sl__free(r->known);
    sl__free(r);
    sl__serve_leases(d);
}

static void reload_after(uv_work_t *work, int status)
{
    reload_t *r = work->data;
    sl_serve_daemon_t *d = r->d;
    d->works--;
    d->reload_busy = false;
    reload_apply(r);
    if (d->reload_again && !d->stopping) {
        d->reload_again = false;
        sl__serve_reload(d, false);
    }
    sl__serve_maybe_quit(d);
}

void sl__serve_reload(sl_serve_daemon_t *d, bool at_start)
{
    if (d->reload_busy) {
        d->reload_again = true;
        return;
    }
    reload_t *r = sl__calloc(1, sizeof(*r));
    size_t n = 0;
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        n++;
    if (r == NULL || (r->known = sl__calloc(n + 1, sizeof(known_file_t))) == NULL) {
        sl__free(r);
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "reload: out of memory");
        return;
    }
    r->d = d;
    r->at_start = at_start;
    for (sl_serve_entry_t *e = d->entries; e; e = e->next)
        r->known[r->known_count++] = (known_file_t){e->path, e, e->stamp, e->removed};
    r->work.data = r;
    if (at_start) { /* before the loop runs: nothing to keep responsive yet */
        reload_work(&r->work);
        reload_apply(r);
        return;
    }
    d->reload_busy = true;
    d->works++;
    if (uv_queue_work(&d->loop, &r->work, reload_work, reload_after) < 0) {
        d->works--;
        d->reload_busy = false;
        sl__free(r->known);
        sl__free(r);
    }
}

/* ---- watching ---------------------------------------------------------------------- */

static void on_reload_timer(uv_timer_t *timer)
{
    sl_serve_daemon_t *d = timer->data;
    if (!d->stopping)
        sl__serve_reload(d, false);
}

static void on_fs_event(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    sl_serve_daemon_t *d = handle->data;
    if (!d->stopping)
        uv_timer_start(&d->reload_timer, on_reload_timer, SL_SERVE_RELOAD_DELAY_MS, 0);
}

static void watch_folder(sl_serve_daemon_t *d, const char *folder)
{
    char current[4096];
    for (size_t i = 0; i < d->watch_count; i++)
        if (uv_fs_event_getpath(&d->watches[i], current, &(size_t){sizeof current}) == 0 &&
            strcmp(current, folder) == 0)
            return;
    if (d->watch_count >= SL_SERVE_WATCHES_MAX)
        return;
    uv_fs_event_t *h = &d->watches[d->watch_count];
    uv_fs_event_init(&d->loop, h);
    h->data = d;
    int rc = uv_fs_event_start(h, on_fs_event, folder, 0);
    if (rc < 0) {
        SL_LOG(SL_LOG_WARN, NULL, NULL, "%s: not watched for changes (%s): SIGHUP reloads it",
               folder, uv_strerror(rc));
        uv_close((uv_handle_t *)h, NULL); /* its slot stays taken: it is closing */
    }
    d->watch_count++;
}

void sl__serve_watch(sl_serve_daemon_t *d)
{
    uv_timer_init(&d->loop, &d->reload_timer);
    d->reload_timer.data = d;
    for (size_t i = 0; i < d->opts->operand_count; i++) {
        const char *path = d->opts->operands[i];
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            watch_folder(d, path);
            continue;
        }
        char *copy = sl__strdup(path); /* a file: its folder (editors replace files) */
        if (copy)
            watch_folder(d, dirname(copy));
        sl__free(copy);
    }
}

void sl__serve_unwatch(sl_serve_daemon_t *d)
{
    for (size_t i = 0; i < d->watch_count; i++) {
        uv_fs_event_stop(&d->watches[i]);
        if (!uv_is_closing((uv_handle_t *)&d->watches[i]))
            uv_close((uv_handle_t *)&d->watches[i], NULL);
    }
    d->watch_count = 0;
    uv_timer_stop(&d->reload_timer);
}
