/*
 * sluice plugin ABI, version 1.
 *
 * This is the one public header of sluice and the only thing a plugin
 * includes. A plugin is a shared object exporting one symbol,
 * `sl_plugin_entry_v1`, that returns a descriptor of its step kinds.
 *
 * Rules of the ABI:
 *   - Descriptors and the host table start with abi_major, abi_minor and
 *     struct_size. The host table is append-only: a plugin built against
 *     minor N may call a function added in minor N+k only after checking
 *     `SL_HOST_HAS(host, member)`.
 *   - A breaking change means a new entry symbol (`sl_plugin_entry_v2`).
 *   - Plugins see opaque handles (sl_task_t, sl_value_t) and host functions,
 *     never the engine's structs. Whoever allocates frees: values are made
 *     and freed through the host table.
 *   - Every host function is called on the thread that called the plugin
 *     (the loop thread for IO kinds, the worker for CPU kinds).
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_MAJOR 1
#define SL_ABI_MINOR 1

#if defined(__GNUC__)
#define SL_API __attribute__((visibility("default")))
#define SL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SL_API
#define SL_PRINTF(fmt, args)
#endif

/* ---- errors ------------------------------------------------------------ */

/*
 * Error codes: 0 is success, failures are negative. A code is never
 * renumbered; new codes are appended.
 */
#define SL_ERRNO_MAP(X)                                           \
    X(ENOMEM, -1, "out of memory")                                \
    X(EINVAL, -2, "invalid argument")                             \
    X(EIO, -3, "input/output error")                              \
    X(ENOENT, -4, "no such file or directory")                    \
    X(ETIMEDOUT, -5, "timed out")                                 \
    X(ECANCELED, -6, "canceled")                                  \
    X(ELIMIT, -7, "limit exceeded")                               \
    X(EPARSE, -8, "parse error")                                  \
    X(EABI, -9, "incompatible plugin ABI")                        \
    X(ENOTFOUND, -10, "not found")                                \
    X(ETYPE, -11, "wrong type")                                   \
    X(ELUA, -12, "Lua error")                                     \
    X(EFAILED, -13, "step failed")                                \
    X(ESYS, -14, "system call failed")                            \
    X(EINTERNAL, -15, "internal error")                           \
    X(EEXIST, -16, "already exists")                              \
    X(EPROCESS, -17, "process exited with an error")

typedef enum sl_errno {
#define SL_ERRNO_ENUM_(name, code, text) SL_##name = code,
    SL_ERRNO_MAP(SL_ERRNO_ENUM_)
#undef SL_ERRNO_ENUM_
} sl_errno_t;

/* ---- opaque handles ---------------------------------------------------- */

/** A value: nil, boolean, integer, number, string, list or map. */
typedef struct sl_value sl_value_t;

/** One task (one attempt of one item of one step) handed to a kind. */
typedef struct sl_task sl_task_t;

/** An HTTP request in flight through the engine's client (ABI 1.1). */
typedef struct sl_http sl_http_t;

/**
 * Completion of host->http_request, called once on the loop thread. On success
 * `code` is 0 and `response` is the response map, owned by the callee. On failure
 * `code` is a negative SL_E*, `response` is NULL, `message` (borrowed for the call)
 * names the URL and the cause, and `retry_after_ms` says what the next attempt
 * should do: 0 = wait the usual backoff, > 0 = the server asked for this delay
 * (Retry-After), < 0 = the failure is permanent (do not retry).
 */
typedef void (*sl_http_done_fn)(void *ud, int code, sl_value_t *response, const char *message,
                                int64_t retry_after_ms);

/** libuv's loop; an IO kind includes <uv.h> itself to use it. */
struct uv_loop_s;

typedef enum sl_type {
    SL_TYPE_NIL = 0,
    SL_TYPE_BOOL = 1,
    SL_TYPE_INT = 2,    /* int64_t */
    SL_TYPE_NUMBER = 3, /* double */
    SL_TYPE_STRING = 4, /* bytes with a length; may hold NUL */
    SL_TYPE_LIST = 5,
    SL_TYPE_MAP = 6     /* string keys, insertion order */
} sl_type_t;

typedef enum sl_log_level {
    SL_LOG_DEBUG = 0,
    SL_LOG_INFO = 1,
    SL_LOG_WARN = 2,
    SL_LOG_ERROR = 3
} sl_log_level_t;

/* ---- host services ----------------------------------------------------- */

/**
 * Host services a plugin may call. Append-only: never reorder or remove.
 *
 * Ownership: a function that returns `sl_value_t *` hands a new value to the
 * caller, who frees it with value_free() or passes it to a function that
 * takes it (task_done, value_list_push, value_map_set). `const sl_value_t *`
 * results are borrowed from their container and live as long as it does.
 * Constructors return NULL when out of memory.
 */
typedef struct sl_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t struct_size;

    /** Logs a line tagged with the task's run, step and item. */
    void (*log)(sl_task_t *task, int level, const char *fmt, ...) SL_PRINTF(3, 4);

    /** Completes the task. Takes ownership of `output` (NULL means nil). */
    void (*task_done)(sl_task_t *task, sl_value_t *output);
    /** Fails the task; `message` is copied. `code` is a negative SL_E*. */
    void (*task_fail)(sl_task_t *task, int code, const char *message);
    /** The loop an IO kind starts its IO on. Loop thread only. */
    struct uv_loop_s *(*task_loop)(sl_task_t *task);
    /** Per-task pointer for the kind's own state; NULL until set. */
    void (*task_set_data)(sl_task_t *task, void *data);
    void *(*task_data)(sl_task_t *task);
    /** 1-based attempt number of this task. */
    int (*task_attempt)(sl_task_t *task);

    sl_value_t *(*value_nil)(void);
    sl_value_t *(*value_bool)(int b);
    sl_value_t *(*value_int)(int64_t i);
    sl_value_t *(*value_number)(double n);
    /** Copies `len` bytes of `s`. */
    sl_value_t *(*value_string)(const char *s, size_t len);
    sl_value_t *(*value_list)(void);
    sl_value_t *(*value_map)(void);
    /** Deep copy. */
    sl_value_t *(*value_copy)(const sl_value_t *v);
    void (*value_free)(sl_value_t *v);

    sl_type_t (*value_type)(const sl_value_t *v);
    /** Truthiness as in Lua: nil and false are false, the rest true. */
    int (*value_truthy)(const sl_value_t *v);
    int64_t (*value_int_of)(const sl_value_t *v);   /* ints and whole numbers */
    double (*value_number_of)(const sl_value_t *v); /* ints and numbers */
    /** Borrowed bytes of a string (NUL-terminated); NULL if not a string. */
    const char *(*value_str)(const sl_value_t *v, size_t *len);
    /** Elements of a list or entries of a map; 0 for other types. */
    size_t (*value_len)(const sl_value_t *v);
    const sl_value_t *(*value_at)(const sl_value_t *list, size_t i);
    /** Map entry by position: its key (borrowed) and value. */
    const sl_value_t *(*value_entry)(const sl_value_t *map, size_t i, const char **key);
    /** Map lookup; NULL when absent. */
    const sl_value_t *(*value_get)(const sl_value_t *map, const char *key);
    /** Appends to a list; takes ownership of `item` (freed on failure). */
    int (*value_push)(sl_value_t *list, sl_value_t *item);
    /** Sets a map entry (replacing); `key` is copied; takes `item`. */
    int (*value_set)(sl_value_t *map, const char *key, sl_value_t *item);

    /**
     * Decodes JSON text into a new value. On failure returns SL_EPARSE and
     * writes a message with line and column into `err`.
     */
    int (*value_from_json)(const char *text, size_t len, sl_value_t **out, char *err,
                           size_t err_size);
    /** Encodes a value as compact JSON; *out is freed with host->free. */
    int (*value_to_json)(const sl_value_t *v, char **out, size_t *len);

    /** Frees memory the host handed out (value_to_json's text). */
    void (*free)(void *p);
    /** Message of an SL_E* code. */
    const char *(*strerror)(int code);

    /** task_fail with a printf-style message, formatted to fit (never cut). */
    void (*task_failf)(sl_task_t *task, int code, const char *fmt, ...) SL_PRINTF(3, 4);

    /* ---- ABI 1.1 ---------------------------------------------------------- */

    /**
     * Hint for the attempt after this one, given before task_fail: wait
     * `delay_ms` instead of the step's backoff (still capped by its max_backoff),
     * or, with a negative delay, do not retry at all (a permanent failure such
     * as HTTP 404). Without a hint the step's retry policy applies as usual.
     */
    void (*task_retry_after)(sl_task_t *task, int64_t delay_ms);
    /**
     * Starts an HTTP request through the engine's client, under the run's
     * limits (total and per-host concurrency, rate, robots.txt), with
     * connection reuse and HTTP/2. `request` is a map of the http.request
     * parameters (docs/http.md), borrowed until this returns. Loop thread only.
     * Returns 0 and *out, then calls `done` exactly once, never from inside
     * this call (a bad parameter is reported through `done` as SL_EINVAL); or
     * returns a negative SL_E* (SL_ENOMEM) and never calls `done`.
     */
    int (*http_request)(sl_task_t *task, const sl_value_t *request, sl_http_done_fn done,
                        void *ud, sl_http_t **out);
    /** Cancels a request; its `done` is called with SL_ECANCELED before this returns. */
    void (*http_cancel)(sl_http_t *req);
} sl_host_t;

/** True when the host table has member `m` (it may be older than the plugin). */
#define SL_HOST_HAS(host, m) \
    ((host)->struct_size >= offsetof(sl_host_t, m) + sizeof((host)->m))

/* ---- step kinds -------------------------------------------------------- */

/** Where a kind's tasks run. */
typedef enum sl_exec {
    SL_EXEC_IO = 1, /* on the loop: start() begins IO and returns at once */
    SL_EXEC_CPU = 2 /* in a worker: start() computes and completes before returning */
} sl_exec_t;

/** Types a parameter accepts (a mask). */
#define SL_PT_NIL (1u << SL_TYPE_NIL)
#define SL_PT_BOOL (1u << SL_TYPE_BOOL)
#define SL_PT_INT (1u << SL_TYPE_INT)
#define SL_PT_NUMBER (1u << SL_TYPE_NUMBER)
#define SL_PT_STRING (1u << SL_TYPE_STRING)
#define SL_PT_LIST (1u << SL_TYPE_LIST)
#define SL_PT_MAP (1u << SL_TYPE_MAP)
#define SL_PT_ANY 0x7fu

/** Parameter flags. */
#define SL_PARAM_REQUIRED 1u
/** Exactly one parameter of group `g` (1..255) must be given, e.g. `code` or `script`. */
#define SL_PARAM_ONE_OF(g) ((uint32_t)(g) << 8)
#define SL_PARAM_GROUP(flags) (((flags) >> 8) & 0xffu)
/** (ABI 1.2) The value is a path the task reads, against the working directory: its
 *  content is part of a cached task's key (SPEC §2 `cache`). */
#define SL_PARAM_READS_FILE 2u
/** (ABI 1.2) The same for a path against the workflow file's folder (a `script`). */
#define SL_PARAM_READS_SCRIPT 4u

typedef struct sl_param {
    const char *name;
    uint32_t types; /* SL_PT_* mask of accepted types */
    uint32_t flags; /* SL_PARAM_* */
    const char *help;
} sl_param_t;

/** Kind flags. */
#define SL_KIND_EXTRA_PARAMS 1u /* accepts parameters beyond its schema */
/* (ABI 1.1) the engine's own: not listed by `sluice plugins`, not for `uses:` in a
 * workflow (e.g. `lua.pooled`, what a `lua` step with `pool: true` becomes in a worker) */
#define SL_KIND_INTERNAL 2u
/* (ABI 1.2) the kind's code reads the run's scope (vars, the outputs of the steps it
 * needs) beyond its arguments, as a Lua step does: a cached task's key includes them */
#define SL_KIND_READS_SCOPE 4u

/**
 * One step kind.
 *
 * start(): begins the task. `args` is the step's `with` map after expansion,
 * borrowed until the task completes. Returns 0 when the task was started: the
 * kind then completes it exactly once with host->task_done or host->task_fail,
 * possibly before start() returns. Returns a negative SL_E* when it could not
 * start; it then never completes the task. A CPU kind always completes the task
 * before start() returns.
 *
 * cancel(): optional, IO kinds. Asks a started task to stop (timeout, Ctrl-C);
 * the kind still completes it, usually with task_fail(SL_ECANCELED).
 */
typedef struct sl_kind {
    const char *name; /* "namespace.name" */
    sl_exec_t exec;
    uint32_t flags; /* SL_KIND_* */
    const char *help;
    const sl_param_t *params; /* terminated by an entry with name == NULL */
    int (*start)(sl_task_t *task, const sl_value_t *args);
    void (*cancel)(sl_task_t *task);
} sl_kind_t;

/** What sl_plugin_entry_v1 returns. Lives as long as the plugin is loaded. */
typedef struct sl_plugin {
    uint32_t abi_major; /* SL_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;
    size_t struct_size; /* sizeof(sl_plugin_t) */
    const char *name;
    const char *version;
    size_t kind_size; /* sizeof(sl_kind_t): stride of `kinds` */
    size_t kind_count;
    const sl_kind_t *kinds;
} sl_plugin_t;

/** Fills the constant head of a descriptor. */
#define SL_PLUGIN_INIT(name_, version_, kinds_)                                     \
    {                                                                               \
        SL_ABI_MAJOR, SL_ABI_MINOR, sizeof(sl_plugin_t), (name_), (version_),       \
            sizeof(sl_kind_t), sizeof(kinds_) / sizeof((kinds_)[0]), (kinds_)       \
    }

/**
 * The one symbol a plugin exports. Called once, on the loading thread,
 * before any task. `host` lives as long as the process; keep the pointer.
 * Return NULL to refuse loading (the engine reports it).
 */
typedef const sl_plugin_t *(*sl_plugin_entry_fn)(const sl_host_t *host);
#define SL_PLUGIN_ENTRY_SYMBOL "sl_plugin_entry_v1"

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_PLUGIN_H */
