/*
 * The state folder and its database: opening, the schema and its forward migrations,
 * refusing what is not ours, runs' locks (a crash frees them, so a run left "running"
 * by a dead process is known to be interrupted), and recording a run's start.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "util/tmplog.h"

/* ---- the schema ----------------------------------------------------------------------
 * migrations[v] takes a database of version v to v + 1. Never edit a shipped one: add. */

static const char *const migrations[SL_STORE_SCHEMA_VERSION] = {
    /* 0 -> 1: runs, their steps and tasks */
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT INTO meta VALUES('application', 'sluice');"
    "CREATE TABLE workflows(name TEXT PRIMARY KEY, path TEXT, hash TEXT, updated INTEGER);"
    "CREATE TABLE runs(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " workflow TEXT NOT NULL, path TEXT, hash TEXT, trigger TEXT NOT NULL, tick INTEGER,"
    " started INTEGER NOT NULL, finished INTEGER, status TEXT NOT NULL, vars TEXT,"
    " error TEXT, pid INTEGER);"
    "CREATE INDEX runs_workflow ON runs(workflow, seq);"
    "CREATE TABLE steps(run INTEGER NOT NULL, idx INTEGER NOT NULL, id TEXT NOT NULL,"
    " kind TEXT, status TEXT, started INTEGER, finished INTEGER, total INTEGER, ok INTEGER,"
    " failed INTEGER, skipped INTEGER, retries INTEGER, PRIMARY KEY(run, idx)) WITHOUT ROWID;"
    "CREATE TABLE tasks(run INTEGER NOT NULL, step INTEGER NOT NULL, item INTEGER NOT NULL,"
    " status TEXT NOT NULL, attempts INTEGER, started INTEGER, finished INTEGER, error TEXT,"
    " output BLOB, object TEXT, PRIMARY KEY(run, step, item)) WITHOUT ROWID;",
    /* 1 -> 2: resume lineage, counts of cached tasks, log lines, the cache */
    "ALTER TABLE runs ADD COLUMN resumed_from TEXT;"
    "ALTER TABLE runs ADD COLUMN tasks_ok INTEGER;"
    "ALTER TABLE runs ADD COLUMN tasks_failed INTEGER;"
    "ALTER TABLE runs ADD COLUMN tasks_cached INTEGER;"
    "ALTER TABLE steps ADD COLUMN def_hash TEXT;"
    "ALTER TABLE steps ADD COLUMN cached INTEGER;"
    "ALTER TABLE tasks ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN cache_note TEXT;"
    "CREATE TABLE logs(run INTEGER NOT NULL, seq INTEGER NOT NULL, time INTEGER,"
    " level TEXT, task TEXT, message TEXT, PRIMARY KEY(run, seq)) WITHOUT ROWID;"
    "CREATE TABLE cache(key TEXT PRIMARY KEY, workflow TEXT NOT NULL, step TEXT NOT NULL,"
    " item INTEGER, kind TEXT, version TEXT, parts BLOB, output BLOB, object TEXT,"
    " file TEXT, file_hash TEXT, etag TEXT, last_modified TEXT, created INTEGER,"
    " run INTEGER);"
    "CREATE INDEX cache_workflow ON cache(workflow, step, item);",
    /* 2 -> 3: the end of a run's latest recorded task, kept per batch, so that marking a
     * dead run interrupted does not scan its tasks */
    "ALTER TABLE runs ADD COLUMN active INTEGER;",
    /* 3 -> 4: schedule ticks, keyed by (workflow, nominal time), and leases */
    "CREATE TABLE ticks(workflow TEXT NOT NULL, tick INTEGER NOT NULL, trigger TEXT NOT NULL,"
    " status TEXT NOT NULL, reason TEXT, run TEXT, time INTEGER,"
    " PRIMARY KEY(workflow, tick)) WITHOUT ROWID;"
    "CREATE TABLE leases(workflow TEXT PRIMARY KEY, owner TEXT NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;",
    /* 4 -> 5: the Slurm array jobs a run submitted (or took over), so that --resume
     * re-attaches to them (docs/slurm.md) */
    "CREATE TABLE slurm_jobs(run INTEGER NOT NULL, job INTEGER NOT NULL, step TEXT NOT NULL,"
    " name TEXT NOT NULL, dir TEXT NOT NULL, first INTEGER NOT NULL,"
    " elements INTEGER NOT NULL, tasks BLOB, PRIMARY KEY(run, job)) WITHOUT ROWID;",
    /* 5 -> 6: each step's `needs` (a JSON list of step ids) for the dashboard's graph;
     * indexes for its lists: runs by status, a run's failed tasks in order and by time */
    "ALTER TABLE steps ADD COLUMN needs TEXT;"
    "CREATE INDEX runs_status ON runs(status, seq);"
    "CREATE INDEX tasks_failed ON tasks(run, step, item) WHERE status = 'failed';"
    "CREATE INDEX tasks_failed_time ON tasks(run, finished) WHERE status = 'failed';",
};

int sl__store_fail(sqlite3 *db, const char *what, char *err, size_t err_size)
{
    snprintf(err, err_size, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return SL_EIO;
}

int sl__store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **out, char *err, size_t err_size)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
        return sl__store_fail(db, "state database", err, err_size);
    return 0;
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return SL_EIO;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SL_EIO;
}

/* Ours: a meta table naming sluice. An empty database is new, anything else foreign. */
static int check_ours(sl_store_t *store, sqlite3 *db, int64_t version, char *err, size_t err_size)
{
    int64_t tables = 0;
    if (query_int(db, "SELECT count(*) FROM sqlite_master", &tables) < 0)
        return sl__store_fail(db, store->db_path, err, err_size);
    if (version == 0 && tables == 0)
        return 0;
    sqlite3_stmt *st;
    bool ours = false;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'application'", -1, &st, NULL) ==
        SQLITE_OK) {
        ours = sqlite3_step(st) == SQLITE_ROW &&
               strcmp((const char *)sqlite3_column_text(st, 0), "sluice") == 0;
        sqlite3_finalize(st);
    }
    if (!ours) {
        snprintf(err, err_size,
                 "%s is not a sluice state database (move it away, or set "
                 "SLUICE_STATE to another folder)",
                 store->db_path);
        return SL_EINVAL;
    }
    if (version > SL_STORE_SCHEMA_VERSION) {
        snprintf(err, err_size,
                 "%s has schema version %" PRId64 ", newer than this sluice "
                 "knows (%d): use a newer sluice, or set SLUICE_STATE to another folder",
                 store->db_path, version, SL_STORE_SCHEMA_VERSION);
        return SL_EINVAL;
    }
    return 0;
}

/* Runs each migration from `version` up in one transaction of its own. The version is
 * read again under the write lock: two processes opening a new state folder at once both
 * saw version 0, and the second must not run the first one's migrations again. */
static int migrate(sl_store_t *store, sqlite3 *db, int64_t version, char *err, size_t err_size)
{
    for (int64_t v = version; v < SL_STORE_SCHEMA_VERSION; v++) {
        char bump[64];
        int64_t now = v;
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %" PRId64, v + 1);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
            query_int(db, "PRAGMA user_version", &now) == 0 && now > v) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            v = now - 1; /* migrated meanwhile: go on from there */
            continue;
        }
        if (sqlite3_get_autocommit(db) ||
            sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, bump, NULL, NULL, NULL) != SQLITE_OK) {
            int rc = sl__store_fail(db, "migrating the state database", err, err_size);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        /* Another process may have migrated meanwhile: its version stands. */
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return sl__store_fail(db, "migrating the state database", err, err_size);
    }
    return 0;
}

static int open_db(sl_store_t *store, bool write, sqlite3 **out, char *err, size_t err_size)
{
    int flags = (write                                ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                 : store->mode == SL_STORE_READONLY ? SQLITE_OPEN_READONLY
                                                    : SQLITE_OPEN_READWRITE) |
                SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(store->db_path, &db, flags, NULL) != SQLITE_OK) {
        int rc = sl__store_fail(db, store->db_path, err, err_size);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 1);
    *out = db;
    return 0;
}

/* WAL, so readers never block the writer; FULL sync: a committed batch survives a power
 * cut, and batches are few (group commit). */
static int setup_db(sl_store_t *store, sqlite3 *db, char *err, size_t err_size)
{
    int64_t version = 0;
    if (query_int(db, "PRAGMA user_version", &version) < 0)
        return sl__store_fail(db, store->db_path, err, err_size);
    int rc = check_ours(store, db, version, err, err_size);
    if (rc < 0)
        return rc;
    if (store->mode != SL_STORE_READONLY &&
        sqlite3_exec(db,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                     "PRAGMA foreign_keys = OFF",
                     NULL, NULL, NULL) != SQLITE_OK)
        return sl__store_fail(db, store->db_path, err, err_size);
    if (store->mode == SL_STORE_WRITE && version < SL_STORE_SCHEMA_VERSION)
        return migrate(store, db, version, err, err_size);
    if (version < SL_STORE_SCHEMA_VERSION) {
        snprintf(err, err_size,
                 "%s has schema version %" PRId64 "; a `sluice run` updates "
                 "it to %d",
                 store->db_path, version, SL_STORE_SCHEMA_VERSION);
        return SL_EINVAL;
    }
    return 0;
}

int64_t sl__store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned run_id_base;
static _Atomic unsigned run_id_counter;

static void seed_run_ids(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    run_id_base = (unsigned)(((uint64_t)ts.tv_nsec ^ (uint64_t)getpid() * 2654435761u) & 0xffffu);
}

/* Ids of one process never collide within a second (a counter from a random start: a
 * daemon starts a thousand runs in one); another process's start differs at random. */
void sl__store_run_id(char *buf, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, seed_run_ids);
    time_t now = (time_t)(sl__store_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    unsigned suffix = (run_id_base + run_id_counter++) & 0xffffu;
    snprintf(buf, size, "%04d%02d%02dT%02d%02d%02d-%04x", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, suffix);
}

const char *sl__store_default_dir(void)
{
    const char *dir = getenv("SLUICE_STATE");
    if (dir && strcmp(dir, "none") == 0)
        return NULL;
    return dir && *dir ? dir : ".sluice";
}

static int make_dirs(sl_store_t *store, char *err, size_t err_size)
{
    const char *dirs[] = {store->dir, store->objects_dir};
    for (size_t i = 0; i < SL_COUNTOF(dirs); i++) {
        if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST) {
            snprintf(err, err_size, "cannot make the state folder %s: %s", dirs[i],
                     strerror(errno));
            return SL_EIO;
        }
    }
    char *locks = sl__asprintf("%s/locks", store->dir);
    int rc = locks && (mkdir(locks, 0755) == 0 || errno == EEXIST) ? 0 : SL_EIO;
    if (rc < 0)
        snprintf(err, err_size, "cannot make %s: %s", locks ? locks : "locks",
                 locks ? strerror(errno) : "out of memory");
    sl__free(locks);
    return rc;
}

/* SQLite allocates through the engine's wrapper too, so the fault injection of the tests
 * (sl__alloc_fail_at) reaches the store's error paths. */
static void *sqlite_malloc(int n)
{
    return sl__malloc((size_t)n);
}

static void sqlite_free(void *p)
{
    sl__free(p);
}

static void *sqlite_realloc(void *p, int n)
{
    return sl__realloc(p, (size_t)n);
}

static int sqlite_size(void *p)
{
    return p ? (int)malloc_usable_size(p) : 0;
}

static int sqlite_roundup(int n)
{
    return (n + 7) & ~7;
}

static int sqlite_init(void *unused)
{
    return SQLITE_OK;
}

static void sqlite_shutdown(void *unused)
{
}

static void configure_sqlite(void)
{
    static const sqlite3_mem_methods methods = {
        sqlite_malloc,  sqlite_free, sqlite_realloc,  sqlite_size,
        sqlite_roundup, sqlite_init, sqlite_shutdown, NULL};
    sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
    sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
    sqlite3_initialize();
}

/* What dead processes left: runs still "running" become "interrupted", and their
 * temporary files beside targets are removed; then this process keeps its own log. */
static int sweep(sl_store_t *store, char *err, size_t err_size)
{
    int rc = sl__store_reap(store, err, err_size);
    char *tmp = rc == 0 ? sl__asprintf("%s/tmp", store->dir) : NULL;
    if (rc == 0 && tmp == NULL)
        rc = SL_ENOMEM;
    if (rc == 0) {
        sl__tmplog_sweep(tmp);
        if (sl__tmplog_open(tmp) < 0) {
            snprintf(err, err_size, "cannot write in %s: %s", tmp, strerror(errno));
            rc = SL_EIO;
        }
    }
    sl__free(tmp);
    return rc;
}

static int store_init(sl_store_t *store, char *err, size_t err_size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure_sqlite);
    struct stat st;
    if (store->mode != SL_STORE_WRITE && stat(store->db_path, &st) < 0) {
        snprintf(err, err_size, "no state in %s yet (no run has been recorded here)", store->dir);
        return SL_ENOENT;
    }
    int rc = store->mode == SL_STORE_WRITE ? make_dirs(store, err, err_size) : 0;
    if (rc == 0)
        rc = open_db(store, store->mode == SL_STORE_WRITE, &store->read_db, err, err_size);
    if (rc == 0)
        rc = setup_db(store, store->read_db, err, err_size);
    if (rc == 0 && store->mode == SL_STORE_WRITE)
        rc = open_db(store, true, &store->write_db, err, err_size);
    if (rc == 0 && store->mode == SL_STORE_WRITE)
        rc = sl__store_writer_start(store, err, err_size);
    if (rc == 0 && store->mode == SL_STORE_WRITE)
        rc = sweep(store, err, err_size);
    return rc;
}

int sl__store_open(const char *dir, sl_store_mode_t mode, sl_store_t **out, char *err,
                   size_t err_size)
{
    sl_store_t *store = sl__calloc(1, sizeof(*store));
    if (store == NULL) {
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    store->mode = mode;
    pthread_mutexattr_t recursive; /* a group of run starts reads inside its transaction */
    pthread_mutexattr_init(&recursive);
    pthread_mutexattr_settype(&recursive, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&store->read_lock, &recursive);
    pthread_mutexattr_destroy(&recursive);
    pthread_mutex_init(&store->lock, NULL);
    pthread_cond_init(&store->wake, NULL);
    pthread_cond_init(&store->done, NULL);
    store->dir = sl__strdup(dir);
    store->db_path = sl__asprintf("%s/state.db", dir);
    store->objects_dir = sl__asprintf("%s/objects", dir);
    int rc = store->dir && store->db_path && store->objects_dir ? 0 : SL_ENOMEM;
    if (rc < 0)
        snprintf(err, err_size, "out of memory");
    if (rc == 0)
        rc = store_init(store, err, err_size);
    if (rc < 0) {
        sl__store_close(store);
        return rc;
    }
    *out = store;
    return 0;
}

void sl__store_close(sl_store_t *store)
{
    if (store == NULL)
        return;
    sl__store_detach(store);
    sl__store_writer_stop(store);
    if (store->mode == SL_STORE_WRITE)
        sl__tmplog_close();
    sqlite3_close(store->write_db);
    sqlite3_finalize(store->cache_output_st);
    sqlite3_close(store->read_db);
    pthread_mutex_destroy(&store->read_lock);
    pthread_mutex_destroy(&store->lock);
    pthread_cond_destroy(&store->wake);
    pthread_cond_destroy(&store->done);
    sl__free(store->error);
    sl__free(store->dir);
    sl__free(store->db_path);
    sl__free(store->objects_dir);
    sl__free(store);
}

const char *sl__store_dir(const sl_store_t *store)
{
    return store->dir;
}

/* ---- run locks ------------------------------------------------------------------------ */

static char *lock_path(const sl_store_t *store, int64_t seq)
{
    return sl__asprintf("%s/locks/run-%" PRId64 ".lock", store->dir, seq);
}

/* True when the process recording run `seq` is gone: its lock file is free or absent. */
bool sl__store_run_is_dead(const sl_store_t *store, int64_t seq)
{
    char *path = lock_path(store, seq);
    if (path == NULL)
        return false;
    int fd = open(path, (store->mode == SL_STORE_READONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    bool dead = fd < 0 ? errno == ENOENT : flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0 && dead && store->mode == SL_STORE_WRITE)
        unlink(path); /* still holding the lock: no recorder can come back for it */
    if (fd >= 0)
        close(fd);
    sl__free(path);
    return dead;
}

int sl__store_reap(sl_store_t *store, char *err, size_t err_size)
{
    if (store->mode == SL_STORE_READONLY)
        return 0; /* never written: readers show such runs interrupted (query.c) */
    sqlite3 *db = store->read_db;
    sqlite3_stmt *list = NULL, *mark = NULL;
    int rc = sl__store_prepare(db, "SELECT seq FROM runs WHERE status = 'running'", &list, err,
                               err_size);
    if (rc == 0)
        rc =
            sl__store_prepare(db,
                              "UPDATE runs SET status = 'interrupted', finished = coalesce(active, "
                              "(SELECT max(finished) FROM tasks WHERE run = ?1)), error = "
                              "coalesce(error, 'the process recording it ended') WHERE "
                              "seq = ?1 AND status = 'running'",
                              &mark, err, err_size);
    sqlite3_stmt *steps = NULL; /* its steps recorded running (their counters so far) */
    if (rc == 0)
        rc = sl__store_prepare(db,
                               "UPDATE steps SET status = 'canceled' WHERE run = ?1 AND"
                               " status = 'running'",
                               &steps, err, err_size);
    while (rc == 0 && sqlite3_step(list) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(list, 0);
        if (!sl__store_run_is_dead(store, seq))
            continue;
        sqlite3_bind_int64(mark, 1, seq);
        sqlite3_bind_int64(steps, 1, seq);
        int step = sqlite3_step(mark) & 0xff;
        if (step == SQLITE_DONE)
            step = sqlite3_step(steps) & 0xff;
        /* Busy: another connection wrote since this one's read began (a run just ended,
         * its lock gone with its commit). The mark is only an early view of what the
         * next look sees too: skipped, not an error. */
        if (step != SQLITE_DONE && step != SQLITE_BUSY && step != SQLITE_LOCKED &&
            store->mode == SL_STORE_WRITE)
            rc = sl__store_fail(db, "marking an interrupted run", err, err_size);
        sqlite3_reset(mark);
        sqlite3_reset(steps);
    }
    sqlite3_finalize(list);
    sqlite3_finalize(mark);
    sqlite3_finalize(steps);
    return rc;
}

/* ---- a run's start ------------------------------------------------------------------- */

static int insert_run(sl_store_t *store, const sl_store_run_info_t *info, char *vars, int64_t *seq,
                      char *err, size_t err_size)
{
    sqlite3 *db = store->read_db;
    sqlite3_stmt *st;
    int rc = sl__store_prepare(db,
                               "INSERT INTO runs(id, workflow, path, hash, trigger, tick,"
                               " started, status, vars, pid, resumed_from) VALUES(?, ?, ?, ?,"
                               " ?, ?, ?, 'running', ?, ?, ?)",
                               &st, err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, info->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, info->workflow, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, info->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, info->file_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, info->trigger, -1, SQLITE_STATIC);
    if (info->tick_ms)
        sqlite3_bind_int64(st, 6, info->tick_ms);
    sqlite3_bind_int64(st, 7, info->started_ms);
    sqlite3_bind_text(st, 8, vars, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, (int64_t)getpid());
    sqlite3_bind_text(st, 10, info->resumed_from, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0
                                         : sl__store_fail(db, "recording the run", err, err_size);
    sqlite3_finalize(st);
    *seq = sqlite3_last_insert_rowid(db);
    return rc;
}

static uint32_t part_len(const char *text)
{
    return text ? (uint32_t)strlen(text) : REC_NULL;
}

/* A step's needs as a JSON list of ids into *out (the caller's), "[]" when none. */
static int needs_json(const sl_store_step_info_t *s, char **out)
{
    sl_value_t *list = sl_value_list();
    int rc = list ? 0 : SL_ENOMEM;
    for (size_t i = 0; rc == 0 && i < s->needs_count; i++)
        rc = sl_value_push(list, sl_value_cstring(s->needs[i]));
    size_t len;
    if (rc == 0)
        rc = sl_value_to_json(list, out, &len);
    sl_value_free(list);
    return rc;
}

/* The records of the run's steps (id, kind, definition hash, needs) in one block. */
static rec_block_t *steps_block(const sl_store_run_info_t *info, int64_t seq, char **needs)
{
    size_t size = 0;
    for (size_t i = 0; i < info->step_count; i++) {
        const sl_store_step_info_t *s = &info->steps[i];
        uint32_t len[4] = {part_len(s->id), part_len(s->kind), part_len(s->def_hash),
                           part_len(needs[i])};
        size += sl__store_record_size(4, len);
    }
    rec_block_t *block = sl__store_block_new(size);
    for (size_t i = 0; block && i < info->step_count; i++) {
        const sl_store_step_info_t *s = &info->steps[i];
        const char *texts[4] = {s->id, s->kind, s->def_hash, needs[i]};
        uint32_t len[4];
        for (int k = 0; k < 4; k++)
            len[k] = part_len(texts[k]);
        rec_t *r = sl__store_block_put(block, REC_STEP_INFO, seq, 4, len);
        r->num[0] = (int64_t)i;
        for (int k = 0; k < 4; k++)
            if (texts[k])
                memcpy(sl__store_part(r, (size_t)k, NULL), texts[k], len[k]);
    }
    return block;
}

/* The run's steps go to the writer in a block of their own, handed over once the run's
 * row is committed (their rows come with the writer's next batch, off the loop; this may
 * be a threadpool thread, so the loop's filling block is not touched); the workflow's row
 * is written now. */
static int insert_steps(sl_store_t *store, const sl_store_run_info_t *info, int64_t seq,
                        rec_block_t **steps, char *err, size_t err_size)
{
    rec_block_t *block = NULL;
    if (info->step_count) {
        char **needs = sl__calloc(info->step_count, sizeof(char *));
        int rc = needs ? 0 : SL_ENOMEM;
        for (size_t i = 0; rc == 0 && i < info->step_count; i++)
            rc = needs_json(&info->steps[i], &needs[i]);
        if (rc == 0)
            block = steps_block(info, seq, needs);
        for (size_t i = 0; needs && i < info->step_count; i++)
            sl__free(needs[i]);
        sl__free(needs);
        if (block == NULL)
            return SL_ENOMEM;
    }
    *steps = block;
    sqlite3 *db = store->read_db;
    sqlite3_stmt *st;
    int rc = sl__store_prepare(db,
                               "INSERT OR REPLACE INTO workflows(name, path, hash, updated)"
                               " VALUES(?, ?, ?, ?)",
                               &st, err, err_size);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, info->workflow, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, info->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, info->file_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, info->started_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sl__store_fail(db, "recording the workflow", err, err_size);
    sqlite3_finalize(st);
    return rc;
}

/* Takes the run's lock before anyone can see it "running" without one. */
static int take_lock(sl_store_run_t *run, char *err, size_t err_size)
{
    run->lock_path = lock_path(run->store, run->seq);
    if (run->lock_path == NULL)
        return SL_ENOMEM;
    run->lock_fd = open(run->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (run->lock_fd < 0 || flock(run->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, err_size, "cannot lock %s: %s", run->lock_path, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

/* The run's tick, claimed in the run's own transaction (one commit for both). */
static int claim_tick(sl_store_t *store, const sl_store_run_info_t *info, char *err,
                      size_t err_size)
{
    sl_store_tick_t tick = {info->workflow, info->tick_ms, info->trigger, "run", NULL, info->id};
    bool won = false;
    int rc = sl__store_tick_claim(store, &tick, &won, err, err_size);
    if (rc == 0 && !won) {
        snprintf(err, err_size, "the tick is taken");
        rc = SL_EEXIST;
    }
    return rc;
}

/* ---- groups of run starts ------------------------------------------------------------ */

int sl__store_group_begin(sl_store_t *store, char *err, size_t err_size)
{
    pthread_mutex_lock(&store->read_lock);
    if (sqlite3_exec(store->read_db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        int rc = sl__store_fail(store->read_db, "recording runs", err, err_size);
        pthread_mutex_unlock(&store->read_lock);
        return rc;
    }
    store->group_open = true;
    return 0;
}

int sl__store_group_end(sl_store_t *store, char *err, size_t err_size)
{
    int rc = sqlite3_exec(store->read_db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
                 ? 0
                 : sl__store_fail(store->read_db, "recording runs", err, err_size);
    if (rc < 0)
        sqlite3_exec(store->read_db, "ROLLBACK", NULL, NULL, NULL);
    store->group_open = false;
    rec_block_t *steps = store->group_steps;
    store->group_steps = NULL;
    while (steps) { /* their runs are committed now (or rolled back: dropped) */
        rec_block_t *next = steps->next;
        steps->next = NULL;
        if (rc == 0)
            sl__store_enqueue(store, steps);
        else
            sl__free(steps);
        steps = next;
    }
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

/* The statements of a run's start: a transaction of its own, or a savepoint in a group. */
static int start_tx(sl_store_t *store, char *err, size_t err_size)
{
    const char *sql = store->group_open ? "SAVEPOINT run_begin" : "BEGIN IMMEDIATE";
    return sqlite3_exec(store->read_db, sql, NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : sl__store_fail(store->read_db, "recording the run", err, err_size);
}

static int end_tx(sl_store_t *store, int rc, char *err, size_t err_size)
{
    sqlite3 *db = store->read_db;
    const char *sql = store->group_open ? "RELEASE run_begin" : "COMMIT";
    if (rc == 0 && sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = sl__store_fail(db, "recording the run", err, err_size);
    if (rc < 0 && store->group_open)
        sqlite3_exec(db, "ROLLBACK TO run_begin; RELEASE run_begin", NULL, NULL, NULL);
    else if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int sl__store_run_begin(sl_store_t *store, const sl_store_run_info_t *info, sl_store_run_t **out,
                        char *err, size_t err_size)
{
    sl_store_run_t *run = sl__calloc(1, sizeof(*run));
    char *vars = NULL;
    size_t vars_len;
    if (run == NULL || (info->vars && sl_value_to_json(info->vars, &vars, &vars_len) < 0)) {
        sl__free(run);
        snprintf(err, err_size, "out of memory");
        return SL_ENOMEM;
    }
    run->store = store;
    run->lock_fd = -1;
    rec_block_t *steps = NULL;
    pthread_mutex_lock(&store->read_lock);
    int rc = start_tx(store, err, err_size);
    if (rc == 0 && info->claim_tick)
        rc = claim_tick(store, info, err, err_size);
    if (rc == 0)
        rc = insert_run(store, info, vars, &run->seq, err, err_size);
    if (rc == 0)
        rc = take_lock(run, err, err_size);
    if (rc == 0)
        rc = insert_steps(store, info, run->seq, &steps, err, err_size);
    rc = end_tx(store, rc, err, err_size);
    if (rc == 0 && steps && store->group_open) { /* handed over with the group's commit */
        steps->next = store->group_steps;
        store->group_steps = steps;
    } else if (rc == 0 && steps) {
        sl__store_enqueue(store, steps);
    } else {
        sl__free(steps);
    }
    pthread_mutex_unlock(&store->read_lock);
    sl__free(vars);
    if (rc < 0) {
        sl__store_run_discard(run);
        return rc;
    }
    *out = run;
    return 0;
}

void sl__store_run_discard(sl_store_run_t *run)
{
    if (run == NULL)
        return;
    if (run->lock_fd >= 0) {
        unlink(run->lock_path);
        close(run->lock_fd);
    }
    sl__free(run->lock_path);
    sl__free(run);
}

int64_t sl__store_run_seq(const sl_store_run_t *run)
{
    return run->seq;
}
