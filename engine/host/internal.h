/*
 * host/internal.h: what record.c (the run's recorder: observer and resume) and cache.c
 * (its cache lookups) share. Not for other modules.
 */
#ifndef SL_HOST_INTERNAL_H
#define SL_HOST_INTERNAL_H

#include "host/host.h"
#include "util/index.h"

/* A step's outputs from the run being resumed, by item (NULL: not completed). */
typedef struct recall_step {
    sl_value_t **items;
    size_t count;
} recall_step_t;

/* A cache entry as loaded (outputs stay in the store until a lookup needs one). */
typedef struct cache_entry {
    char *key, *step, *kind, *version, *file, *file_hash, *etag, *last_modified;
    int64_t item, created_ms;
    sl_value_t *parts;   /* the key's parts, decoded; NULL when unreadable */
} cache_entry_t;

typedef struct cache_index {
    cache_entry_t *entries;
    size_t count, cap;
    sl_index_t by_key;   /* key -> entry */
    sl_index_t by_slot;  /* "STEP\x1fITEM" -> the newest entry for that task */
    char **slot_names;   /* the by_slot keys, owned */
    size_t slot_count, slot_cap;
} cache_index_t;

struct sl_recorder {
    sl_store_t *store;
    sl_store_run_t *srun;
    const sl_workflow_t *wf;
    uv_loop_t *loop;
    char *run_id;
    uint64_t origin_ns;  /* the monotonic clock when the recorder began, */
    int64_t origin_ms;   /* and the Unix time then */
    sl_run_observer_t observer;
    sl_run_memo_t memo;
    sl_run_t *watched;   /* stopped when the store fails */
    uint64_t *progress_ms; /* per step: the loop time its counters were last recorded */
    char *error;         /* the store's failure */
    recall_step_t *recall; /* per step, or NULL without a resume */
    bool *rerun;         /* per step: changed since the resumed run (or after one that did) */
    int64_t resume_seq;  /* the resumed run's runs.seq, or 0 */
    uint64_t reused;
    bool no_cache;
    cache_index_t cache;
    size_t lookups;      /* in the threadpool now */
    bool *step_recorded; /* per step: its final counters are recorded (it ended) */
    char (*output_hash)[65]; /* per step: its output's hash once asked for ("" = not yet) */
    uint64_t ok, failed, cached;
    bool live;                /* in the list of recorders the log is handed to */
    sl_recorder_t *next_live; /* (the runs of one loop: a daemon has several) */
};

/* cache.c */
int sl__host_cache_load(sl_recorder_t *rec, char *err, size_t err_size);
void sl__host_cache_close(sl_recorder_t *rec);
int sl__host_cache_lookup(void *ud, sl_task_t *task, const sl_value_t *args);
void sl__host_cache_lookup_cancel(void *ud, sl_task_t *task);
sl_value_t *sl__host_cache_finish(void *ud, sl_task_t *task, sl_value_t *output, bool *cached);
void sl__host_cache_forget(void *ud, void *memo);
/** What a cached task's item end means for the cache: records a new entry, and gives the
 *  note the task row keeps (why it ran, or that it was reused). */
const char *sl__host_cache_ended(sl_recorder_t *rec, const sl_item_report_t *report);

#endif
