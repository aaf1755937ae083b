/*
 * sluice plugin ABI, version 1 (minor 2).
 *
 * This is the one public header of sluice and the only thing a plugin
 * includes. A plugin is a shared object exporting one symbol,
 * `sl_plugin_entry_v1`, that returns a descriptor of its step kinds.
 * docs/plugins.md walks through writing one and has a reference section for
 * every host function and descriptor field.
 *
 * Rules of the ABI:
 *   - Descriptors and the host table start with abi_major, abi_minor and
 *     struct_size. The host table is append-only: a plugin built against
 *     minor N may call a function added in minor N+k only after checking
 *     `SL_HOST_HAS(host, member)`.
 *   - A breaking change means a new entry symbol (`sl_plugin_entry_v2`).
 *   - Plugins see opaque handles (sl_task_t, sl_value_t) and host functions,
 *     never the engine's structs. Whoever allocates frees: values are made
 *     and freed through the host table, and memory the host hands out (JSON
 *     text, file contents, argument copies) is freed with host->free.
 *   - Threads: a task's functions and every value function are called on the
 *     thread that runs the task (the loop thread for IO kinds: start, cancel
 *     and libuv callbacks; the worker process's thread for CPU kinds). Values
 *     are not thread-safe, not even copies (they share storage). The
 *     exceptions are said per function: file_read and file_write are for a
 *     libuv threadpool thread, and the arg_* helpers run on any thread that
 *     owns the value they read.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <atomic>
#else
#include <stdatomic.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define SL_ABI_MAJOR 1
#define SL_ABI_MINOR 2

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
    X(EPROCESS, -17, "process exited with an error")              \
    X(EPATH, -18, "path outside the allowed folders")

typedef enum sl_errno {
#define SL_ERRNO_ENUM_(name, code, text) SL_##name = code,
    SL_ERRNO_MAP(SL_ERRNO_ENUM_)
#undef SL_ERRNO_ENUM_
} sl_errno_t;

/* ---- opaque handles ---------------------------------------------------- */

/**
 * (ABI 1.2) The cancel flag of host->file_write: set by the loop thread (a
 * kind's cancel), read by the write on its threadpool thread. C's atomic_bool;
 * in C++ std::atomic<bool>, which has the same size and representation with
 * the compilers sluice supports (GCC, Clang).
 */
#ifdef __cplusplus
typedef std::atomic<bool> sl_cancel_flag_t;
#else
typedef atomic_bool sl_cancel_flag_t;
#endif

/**
 * (ABI 1.2) A buffer this big holds any message the host writes into a
 * caller's `err` (the arg_* helpers, file_read, file_write). A shorter buffer
 * gets the message cut to fit; in a message longer than the buffer, a path is
 * shortened with "…" so that the cause still shows.
 */
#define SL_ERR_SIZE 1024

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

/** (ABI 1.2) Flags of the arg_* helpers. */
#define SL_ARG_REQUIRED 1u  /* absent or nil fails ("'NAME' is required") */
#define SL_ARG_NOT_EMPTY 2u /* arg_string: not ""; arg_strings: at least one item */
#define SL_ARG_SCALARS 4u   /* arg_string(s): a number or boolean is taken as its text */
#define SL_ARG_BYTES 8u     /* arg_string: the string may hold NUL bytes */

/** (ABI 1.2) Flags of host->file_write. */
#define SL_FILE_APPEND 1u /* append in one write() instead of replacing atomically */

/**
 * Host services a plugin may call. Append-only: never reorder or remove.
 *
 * Ownership: a function that returns `sl_value_t *` hands a new value to the
 * caller, who frees it with value_free() or passes it to a function that
 * takes it (task_done, value_push, value_set). `const sl_value_t *` results
 * are borrowed from their container and live as long as it does, unchanged.
 * Constructors return NULL when out of memory. Memory handed out as `char *`
 * (value_to_json, file_read, arg_string, arg_strings) is freed with free().
 *
 * Threads: see the head of this file. Unless a member says otherwise, it is
 * called on the thread that runs the task, and a value stays on that thread.
 */
typedef struct sl_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t struct_size;

    /**
     * Logs a line at `level` (SL_LOG_*), tagged with the task's run, step and item;
     * a line below the engine's level (INFO; WARN with --quiet) is not formatted. `task` may be
     * NULL (the entry function saying why it refuses to load): the line then names
     * no task. In a worker process the line goes to the engine with the task's
     * result; a NULL task's line is dropped there.
     */
    void (*log)(sl_task_t *task, int level, const char *fmt, ...) SL_PRINTF(3, 4);

    /**
     * Completes the task. Takes ownership of `output` (NULL means nil). A second
     * completion of the same task is ignored (its output freed): the first counts.
     */
    void (*task_done)(sl_task_t *task, sl_value_t *output);
    /**
     * Fails the task; `message` is copied (NULL: the code's own message). `code` is
     * a negative SL_E*; anything else is taken as SL_EFAILED. A retry may follow
     * (the step's `retry`; see task_retry_after). Ignored after a first completion.
     */
    void (*task_fail)(sl_task_t *task, int code, const char *message);
    /**
     * The loop an IO kind starts its IO on. Loop thread only; NULL in a worker
     * process (CPU kinds have no loop).
     */
    struct uv_loop_s *(*task_loop)(sl_task_t *task);
    /** Per-task pointer for the kind's own state (how cancel finds it); NULL until set. */
    void (*task_set_data)(sl_task_t *task, void *data);
    void *(*task_data)(sl_task_t *task);
    /** 1-based attempt number of this task. */
    int (*task_attempt)(sl_task_t *task);

    sl_value_t *(*value_nil)(void);
    /** A boolean: false for 0, true for anything else. */
    sl_value_t *(*value_bool)(int b);
    sl_value_t *(*value_int)(int64_t i);
    sl_value_t *(*value_number)(double n);
    /** Copies `len` bytes of `s` (which may hold NUL bytes) and adds a NUL. */
    sl_value_t *(*value_string)(const char *s, size_t len);
    sl_value_t *(*value_list)(void);
    sl_value_t *(*value_map)(void);
    /**
     * A copy of `v` (NULL: nil) that shares: the copy and the original count
     * references to the same strings, lists and maps, and a changed copy is
     * copied on write (value_push, value_set), so the original never changes.
     * Never hand a value, even a copy, to another thread: the counts are not
     * atomic. NULL when out of memory.
     */
    sl_value_t *(*value_copy)(const sl_value_t *v);
    /** Frees a value the caller owns; NULL is a no-op. Never a borrowed one. */
    void (*value_free)(sl_value_t *v);

    /** The type; SL_TYPE_NIL for NULL. */
    sl_type_t (*value_type)(const sl_value_t *v);
    /** Truthiness as in Lua: nil (and NULL) and false are false, the rest true. */
    int (*value_truthy)(const sl_value_t *v);
    /**
     * An integer's value; a number's truncated toward zero when finite and within
     * ±9.2e18 (so 2.7 gives 2: check whole numbers with arg_int); a boolean's 0 or
     * 1; 0 for anything else.
     */
    int64_t (*value_int_of)(const sl_value_t *v);
    /** A number's or an integer's value as a double; 0 for anything else. */
    double (*value_number_of)(const sl_value_t *v);
    /**
     * Borrowed bytes of a string (NUL-terminated, but it may hold NUL bytes: use
     * *len); NULL, and *len = 0, if not a string. `len` may be NULL.
     */
    const char *(*value_str)(const sl_value_t *v, size_t *len);
    /** Elements of a list or entries of a map; 0 for other types. */
    size_t (*value_len)(const sl_value_t *v);
    /** Element `i` (0-based) of a list; NULL when out of range or not a list. */
    const sl_value_t *(*value_at)(const sl_value_t *list, size_t i);
    /**
     * Map entry by position (0-based, insertion order): its value, and its key
     * (borrowed) in *key when `key` is not NULL; NULL when out of range or not a map.
     */
    const sl_value_t *(*value_entry)(const sl_value_t *map, size_t i, const char **key);
    /** Map lookup; NULL when absent, or when `map` is not a map. */
    const sl_value_t *(*value_get)(const sl_value_t *map, const char *key);
    /**
     * Appends to a list; takes ownership of `item` even on failure (then it is
     * freed), so `value_push(list, value_int(n))` leaks nothing. Returns 0;
     * SL_ENOMEM when `item` is NULL (a failed constructor) or memory runs out;
     * SL_ETYPE when `list` is not a list.
     */
    int (*value_push)(sl_value_t *list, sl_value_t *item);
    /**
     * Sets a map entry, replacing one of the same key in place (or appending);
     * `key` is copied; takes ownership of `item` even on failure. Returns 0;
     * SL_ENOMEM when `item` is NULL or memory runs out; SL_ETYPE when `map` is not
     * a map or `key` is NULL.
     */
    int (*value_set)(sl_value_t *map, const char *key, sl_value_t *item);

    /**
     * Decodes JSON text (any value at the top) into a new value in *out. On failure
     * *out is NULL and the return is SL_EPARSE, with "invalid JSON at line L,
     * column C: ..." in `err`, or SL_ENOMEM with the code's message; `err` may be
     * NULL.
     */
    int (*value_from_json)(const char *text, size_t len, sl_value_t **out, char *err,
                           size_t err_size);
    /**
     * Encodes a value as compact JSON: *out (NUL-terminated, freed with host->free)
     * and *len (may be NULL). Bytes that are not UTF-8 become U+FFFD and non-finite
     * numbers null, so the text is always valid JSON. Returns 0, SL_ENOMEM, or
     * SL_ELIMIT (deeper than 1000 levels, or more than 1 GiB of text); *out is NULL
     * on failure.
     */
    int (*value_to_json)(const sl_value_t *v, char **out, size_t *len);

    /** Frees memory the host handed out as `char *`; NULL is a no-op. Any thread. */
    void (*free)(void *p);
    /** Message of an SL_E* code ("unknown error" for others); static text. Any thread. */
    const char *(*strerror)(int code);

    /**
     * task_fail with a printf-style message, formatted whole (not cut to a buffer;
     * a worker process sends at most 64 KiB of it to the engine). When memory runs
     * out for the text, `fmt` itself is the message.
     */
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
     * returns a negative SL_E* and never calls `done`: SL_ENOMEM, SL_ECANCELED
     * once the run's client is closing, the error of loading libcurl, or (in a
     * worker process, which has no loop) SL_EINVAL.
     */
    int (*http_request)(sl_task_t *task, const sl_value_t *request, sl_http_done_fn done,
                        void *ud, sl_http_t **out);
    /** Cancels a request; its `done` is called with SL_ECANCELED before this returns. */
    void (*http_cancel)(sl_http_t *req);

    /* ---- ABI 1.2 ---------------------------------------------------------- */

    /**
     * Reads the regular file `path` whole: on success returns 0, *data (its bytes
     * and a NUL after them; freed with host->free) and *len. Blocking: call it on a
     * libuv threadpool thread (the work function of uv_queue_work), never on the
     * loop; thread-safe, and it touches no value. `task` is the task the read is for,
     * which must not complete before this returns (complete it in the after-work
     * callback): the data path is resolved beneath its run's allowed folders (the
     * working directory and limits.fs.allow, SPEC §2), so read every data path
     * through here. `path` is relative to the working directory unless absolute; a
     * FIFO is never waited on. Errors: SL_EPATH (the path leaves the allowed
     * folders: "path 'P' is outside the working directory (add a folder to
     * limits.fs.allow to permit it)"; never retried), SL_EINVAL (`max_bytes` < 0; a
     * FIFO, device or socket),
     * SL_ELIMIT (larger than `max_bytes`), SL_ENOENT, SL_ENOMEM, SL_EIO; `err` then
     * holds the whole message, e.g. "cannot read 'in.txt': No such file or
     * directory", and *data is NULL.
     */
    int (*file_read)(sl_task_t *task, const char *path, int64_t max_bytes, char **data,
                     size_t *len, char *err, size_t err_size);
    /**
     * Writes `len` bytes of `data` to `path`, creating missing folders. Atomic
     * unless `flags` has SL_FILE_APPEND: a temporary file beside the target, fsync'd
     * and renamed over it (keeping the target's permissions); on failure the
     * temporary file and the folders this call created are removed and the target
     * is as it was. An append is one write() call, so appended lines do not
     * interleave. With `canceled` (may be NULL) the write goes in 1 MiB chunks and
     * stops with SL_ECANCELED once it is set, leaving the target as it was.
     * A target that exists and is not a regular file (a FIFO, a device) is refused
     * (SL_EINVAL), never replaced; a failed append is cut back to the previous length.
     * Blocking and thread-safe like file_read, with the same `task` rule and the same
     * confinement (SL_EPATH); `data` is the caller's and only read. Errors: SL_EINVAL
     * (the path names a folder),
     * SL_ECANCELED, SL_ENOENT, SL_EEXIST, SL_ENOMEM, SL_EIO, with the whole message
     * in `err` ("cannot write 'out/x': 'out' is not a folder").
     */
    int (*file_write)(sl_task_t *task, const char *path, const char *data, size_t len,
                      uint32_t flags, sl_cancel_flag_t *canceled, char *err, size_t err_size);
    /**
     * Reads integer parameter `name` of `args` (a map; NULL or not a map reads as
     * absent), as luaL_optinteger does: an integer, or a number with an integer
     * value (2.0), from `min` to `max`. Absent or nil: returns 0 and leaves *out as
     * it is (the default), or fails with SL_ARG_REQUIRED. On a bad value returns
     * SL_EINVAL, or SL_ELIMIT above `max`, and writes the standard message to `err`:
     *   'NAME' must be an integer, got GOT                       (not a number)
     *   'NAME' must be a whole number from MIN to MAX, got GOT   (a fraction, NaN,
     *                                                             ±inf, 1e300, …)
     *   'NAME' must be >= MIN, got GOT
     *   'NAME' GOT is above the maximum, MAX                     (SL_ELIMIT)
     * `hint` (may be NULL) replaces " from MIN to MAX" with " (HINT)" and is added to
     * the first message, for a parameter that has another form too (bigint.pow: "use
     * a string of digits for big values"). Prefix the kind when failing the task:
     * task_failf(task, rc, "primes.sieve: %s", err). Any thread owning `args`.
     */
    int (*arg_int)(const sl_value_t *args, const char *name, uint32_t flags, int64_t min,
                   int64_t max, const char *hint, int64_t *out, char *err, size_t err_size);
    /**
     * Reads duration parameter `name` (SPEC §2: "250ms", "30s", "5m", "2h", "1d", or
     * a number of seconds, up to 100 years) into *out_ms, with the rules of arg_int
     * for absent values. A bad one gives SL_EINVAL and "'NAME' must be a duration
     * (250ms, 30s, 5m, 2h, 1d or a number of seconds), got GOT".
     */
    int (*arg_duration)(const sl_value_t *args, const char *name, uint32_t flags,
                        int64_t *out_ms, char *err, size_t err_size);
    /**
     * Reads string parameter `name` into *out, a copy (NUL-terminated, freed with
     * host->free; plain memory that may go to another thread) of *len bytes (`len`
     * may be NULL). Absent or nil: returns 0 with *out NULL, or fails with
     * SL_ARG_REQUIRED. SL_ARG_SCALARS takes a number or boolean as its text (30 ->
     * "30", 2.5 -> "2.5"); SL_ARG_NOT_EMPTY refuses ""; without SL_ARG_BYTES a
     * string holding a NUL byte is refused. Errors: SL_EINVAL with "'NAME' must be
     * a string, got GOT" ("a string, a number or a boolean" with SL_ARG_SCALARS; "a
     * non-empty string"; "a string without NUL bytes"), SL_ENOMEM.
     */
    int (*arg_string)(const sl_value_t *args, const char *name, uint32_t flags, char **out,
                      size_t *len, char *err, size_t err_size);
    /**
     * Reads a list of strings (exec's argv) into *out: an array of *count strings
     * and a NULL after them, in one block freed with one host->free(*out). Absent or
     * nil: 0 with *out NULL and *count 0, or fails with SL_ARG_REQUIRED;
     * SL_ARG_NOT_EMPTY wants at least one item; each item follows arg_string's rules
     * for SL_ARG_SCALARS and SL_ARG_BYTES (and may be ""). Errors: SL_EINVAL with
     * "'NAME' must be a list of strings, got GOT" ("a non-empty list of strings"),
     * or an item's message naming it as 'NAME[I]' (1-based); SL_ENOMEM.
     */
    int (*arg_strings)(const sl_value_t *args, const char *name, uint32_t flags, char ***out,
                       size_t *count, char *err, size_t err_size);
} sl_host_t;

/**
 * True when the host table has member `m`: the running sluice may be older than
 * the header the plugin was built with, and its table then ends before the
 * newer members. Test every member added after the minor you require before
 * calling it, or refuse in the entry function.
 */
#define SL_HOST_HAS(host, m) \
    ((host)->struct_size >= offsetof(sl_host_t, m) + sizeof((host)->m))

/* ---- step kinds -------------------------------------------------------- */

/** Where a kind's tasks run. */
typedef enum sl_exec {
    SL_EXEC_IO = 1, /* on the loop: start() begins IO and returns at once */
    SL_EXEC_CPU = 2 /* in a worker: start() computes and completes before returning */
} sl_exec_t;

/**
 * Types a parameter accepts (a mask). The loader checks a literal in `with`
 * against it before anything runs (SL_PT_NUMBER accepts an integer too); a value
 * computed by a `${{ }}` expression is only known when the task runs, so start()
 * checks what it reads (the arg_* helpers do it with the standard messages).
 */
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

/** One parameter of a kind's schema; a schema ends with an entry whose name is NULL. */
typedef struct sl_param {
    const char *name;
    uint32_t types; /* SL_PT_* mask of accepted types */
    uint32_t flags; /* SL_PARAM_* */
    const char *help; /* one line, shown by `sluice plugins` */
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
 * start(): begins the task, on the loop thread (IO kinds) or in a worker process
 * (CPU kinds). `args` is the step's `with` map after expansion (nil for a step
 * without `with`: value_get and the arg_* helpers read that as empty), borrowed
 * and read-only until the task completes. Returns 0 when the task was started:
 * the kind then completes it exactly once with host->task_done or
 * host->task_fail, possibly before start() returns, and never touches the task
 * afterwards. Returns a negative SL_E* when it could not start
 * (SL_ENOMEM); it then never completes the task, and the engine fails the
 * attempt with "kind 'NAME' could not start: MESSAGE". A CPU kind always
 * completes the task before start() returns.
 *
 * cancel(): optional, IO kinds, loop thread. Asks a started task to stop (its
 * timeout, Ctrl-C), at most once, at any time after start() returned 0 and before
 * the task completed. The kind still completes it, usually with
 * task_fail(SL_ECANCELED); a kind without cancel runs to completion and its
 * result is discarded.
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
    const char *version; /* the plugin's own; part of a cached task's key (SPEC §2 cache) */
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
 * The one symbol a plugin exports. Called on the loading thread before any of
 * the plugin's tasks, once in each process that loads it: the engine, and each
 * worker process that runs one of its CPU kinds. `host` lives as long as the
 * process; keep the pointer. Return NULL to refuse loading: the engine warns
 * "plugin refused: its entry returned no descriptor" and goes on without it, so
 * say why first with host->log(NULL, SL_LOG_ERROR, ...) (a host older than the
 * functions the plugin needs, say).
 */
typedef const sl_plugin_t *(*sl_plugin_entry_fn)(const sl_host_t *host);
#define SL_PLUGIN_ENTRY_SYMBOL "sl_plugin_entry_v1"

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_PLUGIN_H */
