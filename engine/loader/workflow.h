/*
 * loader/workflow: a workflow file, loaded and validated.
 *
 * sl__workflow_load reads the YAML, checks every rule of SPEC §2 and reports
 * all problems in one pass as FILE:LINE:COL diagnostics. A workflow that
 * loaded without problems is complete: every step has its kind, templates
 * compiled, dependencies resolved to step indices, and no cycle.
 * Single-threaded; a workflow is immutable once loaded.
 */
#ifndef SL_LOADER_WORKFLOW_H
#define SL_LOADER_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expr/expr.h"
#include "graph/graph.h"
#include "plugin/registry.h"
#include "yaml/yaml.h"
#include "util/fingerprint.h"
#include "util/util.h"
#include "value/value.h"

typedef enum { SL_ON_ERROR_FAIL = 0, SL_ON_ERROR_CONTINUE = 1 } sl_on_error_t;
typedef enum { SL_EXECUTOR_LOCAL = 0, SL_EXECUTOR_SLURM = 1 } sl_executor_kind_t;
typedef enum {
    SL_CONCURRENCY_FORBID = 0,
    SL_CONCURRENCY_ALLOW,
    SL_CONCURRENCY_REPLACE,
    SL_CONCURRENCY_QUEUE
} sl_sched_concurrency_t;
typedef enum { SL_MISSED_LAST = 0, SL_MISSED_NONE, SL_MISSED_ALL } sl_missed_t;

#define SL_NO_STEP SL_GRAPH_NONE
#define SL_RETRY_ATTEMPTS_MAX 100

typedef struct sl_retry {
    uint32_t attempts;      /* total attempts, >= 1 (1 = no retry) */
    int64_t backoff_ms;     /* first delay */
    int64_t max_backoff_ms; /* cap of any delay */
} sl_retry_t;

/** `cache:` of a step (SPEC §2). */
typedef struct sl_cache_opts {
    bool on;            /* a recorded success with the same key is reused */
    int64_t max_age_ms; /* `cache: {max_age}`: younger entries are used without asking the
                         * server again (HTTP); 0 = revalidate or rerun as the kind does */
} sl_cache_opts_t;

typedef struct sl_step {
    char *id;
    sl_mark_t mark;            /* of the step's key */
    char *uses;
    const sl_kind_t *kind;
    const char *plugin;        /* the shared object providing kind (the registry's); NULL: built in */
    sl_tmpl_t *with;           /* a map template (empty map when absent) */
    sl_tmpl_t *foreach;        /* NULL when absent */
    sl_tmpl_t *if_cond;        /* NULL when absent */
    size_t *deps;              /* indices of the steps this one waits for, sorted, unique */
    size_t dep_count;
    size_t stream_from;        /* foreach streams from this step's items, or SL_NO_STEP */
    int64_t timeout_ms;        /* per attempt; 0 = none */
    sl_retry_t retry;
    sl_on_error_t on_error;
    uint32_t concurrency;      /* tasks in flight at once; 0 = no step limit */
    sl_executor_kind_t executor;
    sl_cache_opts_t cache;
    char def_hash[SL_FINGERPRINT_HEX_SIZE]; /* fingerprint of the step's definition (hex) */
    /* executor: slurm: the sbatch options `slurm:` gives ("--partition=short", ...; a list of
     * strings, maybe empty); NULL for other executors. */
    sl_value_t *slurm;
} sl_step_t;

typedef struct sl_schedule {
    bool present;
    char **cron;               /* expressions */
    sl_mark_t *cron_marks;
    size_t cron_count;
    char *timezone;            /* "UTC" by default */
    sl_sched_concurrency_t concurrency;
    sl_missed_t missed;
    int64_t catchup_ms;        /* default 1h */
    int64_t jitter_ms;         /* default 0 */
} sl_schedule_t;

typedef struct sl_limits {
    uint32_t http_concurrency; /* default 128 */
    uint32_t http_per_host;    /* default 32 */
    double http_rate;          /* requests/s per host; 0 = unlimited */
    bool http_robots;
    char *http_ca_file;        /* resolved against the workflow's folder; NULL = system */
    char *http_proxy;          /* as written: may hold ${{ env.NAME }}; NULL = variables */
    bool http_h2c;             /* cleartext HTTP/2 by prior knowledge */
    uint32_t http_max_streams; /* 0 = the server's limit */
    uint32_t cpu_workers;      /* 0 = auto */
    uint64_t cpu_memory_bytes; /* 0 = unlimited */
    char *slurm_workdir;       /* limits.slurm.workdir as written; NULL = .sluice/slurm */
    int64_t slurm_poll_ms;     /* limits.slurm.poll; 0 = 1 s */
    char **fs_allow;           /* limits.fs.allow: folders data paths may use besides cwd */
    sl_mark_t *fs_allow_marks;
    size_t fs_allow_count;
} sl_limits_t;

typedef struct sl_workflow {
    char *path;                /* as given */
    char file_hash[65];        /* SHA-256 of the file's text (hex) */
    char *dir;                 /* folder of the file: `script` paths resolve here */
    char *name;                /* `name`, or the file name without .yaml/.yml */
    char *description;         /* or NULL */
    sl_value_t *vars;          /* a map, never NULL */
    sl_schedule_t schedule;
    sl_limits_t limits;
    sl_step_t *steps;          /* in file order */
    size_t step_count;
} sl_workflow_t;

/**
 * Loads and validates `path`. Kinds are looked up in `reg`. Returns 0 and
 * *out; or SL_EINVAL with every problem in `diag` (*out NULL); or SL_ENOMEM.
 */
int sl__workflow_load(const char *path, const sl_registry_t *reg, sl_workflow_t **out,
                      sl_diag_t *diag);
/** The same from text in memory (`path` names it in messages); used by fuzzers. */
int sl__workflow_load_text(const char *path, const char *text, size_t len,
                           const sl_registry_t *reg, sl_workflow_t **out, sl_diag_t *diag);
void sl__workflow_free(sl_workflow_t *wf);

/**
 * The workflow's steps as a dependency graph (graph/graph.h): one node per step, in file
 * order, borrowing the workflow's strings and dependency arrays. Close it with
 * sl__graph_close. Returns SL_ENOMEM.
 */
int sl__workflow_graph(const sl_workflow_t *wf, sl_graph_t *out);

/**
 * Expands the ${{ env.NAME }} expressions of `text` (limits.http.proxy) into *out
 * (sl__free it); a value inside a URL's credentials is percent-encoded. With `out` NULL,
 * only checks the form. SL_EINVAL for another expression, SL_ENOTFOUND for an unset
 * variable, with the reason (never a value) in `err`; or SL_ENOMEM.
 */
int sl__loader_env_expand(const char *text, char **out, char *err, size_t err_size);

/** Index of step `id`, or SL_NO_STEP. */
size_t sl__workflow_find(const sl_workflow_t *wf, const char *id);

/** The declared var closest to `name` (edit distance at most 2), or NULL. */
const char *sl__workflow_suggest_var(const sl_workflow_t *wf, const char *name);

/** "'a', 'b' and 'c'" (or "none"): the declared vars, for messages, into `out`. */
void sl__workflow_var_names(const sl_workflow_t *wf, char *out, size_t size);

/**
 * Applies `--var K=V`: V is typed like a plain YAML scalar (5 → integer,
 * true → boolean, else string). K names a var the workflow declares; `a.b` sets
 * field b of the map var a (a missing field is added; a var that is no map is
 * refused). Returns SL_EINVAL with the reason in `err` for text without '=', an
 * undeclared var (the message lists the declared ones) or a path through a non-map.
 */
int sl__workflow_set_var(sl_workflow_t *wf, const char *assignment, char *err,
                         size_t err_size);

#endif
