/*
 * Schedule ticks and leases in the state database (docs/scheduling.md).
 *
 * A tick is keyed by (workflow, nominal time): claiming it inserts that key, so whatever
 * crashes, two daemons, or a restart, a tick is started at most once. A tick that was not
 * run is recorded as skipped with its reason. A lease names the one process scheduling a
 * workflow for a while; it is renewed by its holder and taken over once it expires.
 * Plain calls on the read connection (serialized), made off the hot path of a run.
 */
#include <stdio.h>
#include <string.h>

#include "store/internal.h"

/* Runs one statement with these parameters (those `sql` lacks are not bound). */
static int bind_exec7(sl_store_t *store, const char *sql, const char *what, const char *t1,
                      int64_t n2, const char *t3, const char *t4, const char *t5, int64_t n6,
                      const char *t7, int *changes, char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&store->read_lock);
    int rc = sqlite3_prepare_v2(store->read_db, sql, -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : sl__store_fail(store->read_db, what, err, err_size);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, t1, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, n2);
        sqlite3_bind_text(st, 3, t3, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, t4, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, t5, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, n6);
        sqlite3_bind_text(st, 7, t7, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sl__store_fail(store->read_db, what, err, err_size);
        else if (changes)
            *changes = sqlite3_changes(store->read_db);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

static int bind_exec(sl_store_t *store, const char *sql, const char *what, const char *t1,
                     int64_t n2, const char *t3, const char *t4, const char *t5, int64_t n6,
                     int *changes, char *err, size_t err_size)
{
    return bind_exec7(store, sql, what, t1, n2, t3, t4, t5, n6, NULL, changes, err, err_size);
}

int sl__store_tick_claim(sl_store_t *store, const sl_store_tick_t *tick, bool *won, char *err,
                         size_t err_size)
{
    /* One statement: a tick taken already keeps its record whole (its run too). */
    int changes = 0;
    int rc = bind_exec7(store,
                        "INSERT OR IGNORE INTO ticks(workflow, tick, trigger, status, reason,"
                        " run, time) VALUES(?1, ?2, ?3, ?4, ?5, ?7, ?6)",
                       "recording a tick", tick->workflow, tick->tick_ms, tick->trigger,
                       tick->status, tick->reason, sl__store_now_ms(), tick->run_id,
                       &changes, err, err_size);
    *won = rc == 0 && changes == 1;
    return rc;
}

int sl__store_tick_set_run(sl_store_t *store, const char *workflow, int64_t tick_ms,
                           const char *run_id, char *err, size_t err_size)
{
    return bind_exec(store,
                     "UPDATE ticks SET run = ?3, status = 'run', reason = ?4 "
                     "WHERE workflow = ?1 AND tick = ?2",
                     "recording a tick", workflow, tick_ms, run_id, NULL, NULL, 0, NULL, err,
                     err_size);
}

int sl__store_tick_last(sl_store_t *store, const char *workflow, const char *trigger,
                        int64_t *tick_ms, char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    *tick_ms = 0;
    pthread_mutex_lock(&store->read_lock);
    int rc = sqlite3_prepare_v2(store->read_db,
                                "SELECT max(tick) FROM ticks WHERE workflow = ?1 AND "
                                "trigger = ?2",
                                -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : sl__store_fail(store->read_db, "reading ticks", err, err_size);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, workflow, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, trigger, -1, SQLITE_STATIC);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            *tick_ms = sqlite3_column_int64(st, 0);
        else if (s != SQLITE_DONE)
            rc = sl__store_fail(store->read_db, "reading ticks", err, err_size);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&store->read_lock);
    return rc;
}

int sl__store_tick_find(sl_store_t *store, const char *workflow, int64_t tick_ms,
                        sl_store_tick_row_t *out, char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&store->read_lock);
    int rc = sqlite3_prepare_v2(store->read_db,
                                "SELECT trigger, status, coalesce(reason, ''), "
                                "coalesce(run, '') FROM ticks WHERE workflow = ?1 AND tick = ?2",
                                -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : sl__store_fail(store->read_db, "reading ticks", err, err_size);
    int s = SQLITE_DONE;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, workflow, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, tick_ms);
        s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            snprintf(out->trigger, sizeof(out->trigger), "%s", sqlite3_column_text(st, 0));
            snprintf(out->status, sizeof(out->status), "%s", sqlite3_column_text(st, 1));
            snprintf(out->reason, sizeof(out->reason), "%s", sqlite3_column_text(st, 2));
            snprintf(out->run_id, sizeof(out->run_id), "%s", sqlite3_column_text(st, 3));
        } else if (s != SQLITE_DONE) {
            rc = sl__store_fail(store->read_db, "reading ticks", err, err_size);
        }
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&store->read_lock);
    return rc < 0 ? rc : s == SQLITE_ROW ? 0 : SL_ENOTFOUND;
}

int sl__store_lease(sl_store_t *store, const char *workflow, const char *owner, int64_t ttl_ms,
                    bool *held, char *err, size_t err_size)
{
    int64_t now = sl__store_now_ms();
    int changes = 0;
    int rc = bind_exec(store,
                       "INSERT INTO leases(workflow, owner, expires) VALUES(?1, ?3, ?2 + ?6) "
                       "ON CONFLICT(workflow) DO UPDATE SET owner = excluded.owner, "
                       "expires = excluded.expires WHERE leases.owner = excluded.owner "
                       "OR leases.expires < ?2",
                       "taking a lease", workflow, now, owner, NULL, NULL, ttl_ms, &changes, err,
                       err_size);
    *held = rc == 0 && changes == 1;
    return rc;
}

int sl__store_lease_release(sl_store_t *store, const char *workflow, const char *owner, char *err,
                            size_t err_size)
{
    return bind_exec(store, "DELETE FROM leases WHERE workflow = ?1 AND owner = ?3",
                     "releasing a lease", workflow, 0, owner, NULL, NULL, 0, NULL, err, err_size);
}

int sl__store_lease_owner(sl_store_t *store, const char *workflow, char *owner,
                          size_t owner_size, char *err, size_t err_size)
{
    sqlite3_stmt *st = NULL;
    owner[0] = '\0';
    pthread_mutex_lock(&store->read_lock);
    int rc = sqlite3_prepare_v2(store->read_db, "SELECT owner FROM leases WHERE workflow = ?1",
                                -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : sl__store_fail(store->read_db, "reading a lease", err, err_size);
    int s = SQLITE_DONE;
    if (rc == 0) {
        sqlite3_bind_text(st, 1, workflow, -1, SQLITE_STATIC);
        s = sqlite3_step(st);
        if (s == SQLITE_ROW)
            snprintf(owner, owner_size, "%s", sqlite3_column_text(st, 0));
        else if (s != SQLITE_DONE)
            rc = sl__store_fail(store->read_db, "reading a lease", err, err_size);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&store->read_lock);
    return rc < 0 ? rc : s == SQLITE_ROW ? 0 : SL_ENOTFOUND;
}

int sl__store_lease_take(sl_store_t *store, const char *workflow, const char *dead,
                         const char *owner, int64_t ttl_ms, bool *held, char *err,
                         size_t err_size)
{
    int changes = 0;
    int rc = bind_exec(store,
                       "UPDATE leases SET owner = ?3, expires = ?2 + ?6 "
                       "WHERE workflow = ?1 AND owner = ?4",
                       "taking a lease", workflow, sl__store_now_ms(), owner, dead, NULL, ttl_ms,
                       &changes, err, err_size);
    *held = rc == 0 && changes == 1;
    return rc;
}
