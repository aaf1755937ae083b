/*
 * lua/script.h: the one loader of Lua step code, shared by the loop (step.c) and the
 * worker process (pooled.c), so both read, compile and see code the same way.
 *
 * - Reading a `script:` file: regular files only (a FIFO or a device is refused without
 *   blocking), at most SL_SCRIPT_MAX_BYTES, with the same errors on both paths. The loop
 *   reads in libuv's threadpool (sl__script_read_start); a worker may block and calls
 *   sl__script_read_file itself.
 * - Compiling: code or a script becomes a chunk that takes its _ENV as its vararg
 *   (`local _ENV = ...; ` on the first line, so line numbers stay right); a script's
 *   leading `#!` line is dropped, its newline kept.
 * - A task's _ENV: item, index, args, ctx and, with `unsafe: true`, the unsafe
 *   libraries; behind it (its metatable's __index) the step scope: the expression
 *   sandbox, the `sluice` module and print.
 */
#ifndef SL_LUA_SCRIPT_H
#define SL_LUA_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/fsio.h"
#include "vm/vm.h"

/* The largest script file read; a larger one fails, naming the path and the cap. */
#define SL_SCRIPT_MAX_BYTES ((int64_t)16 << 20)
#define SL_SCRIPT_MAX_TEXT "16 MiB"
/* Room for a read error's message: the path and a sentence. */
#define SL_SCRIPT_ERR_MAX 4352

/**
 * The file a `script` value names: `script` itself when absolute or when `dir` (the
 * workflow file's folder) is empty or ".", else "DIR/SCRIPT". Returns a new string (the
 * caller frees it), or NULL when out of memory. Any thread.
 */
char *sl__script_path(const char *dir, const char *script);

/**
 * Reads script file `path` (blocking: a threadpool thread or a worker process, never the
 * loop). On success *text (malloc'd, the caller frees it) and *len. Allocates with the C
 * library, not the engine's wrapper, so it is safe off the loop thread.
 */
sl_fsio_result_t sl__script_read_file(const char *path, char **text, size_t *len);

/**
 * The message of a failed sl__script_read_file, in `buf`: "cannot open script 'P':
 * CAUSE", "script 'P' is not a regular file", "script 'P' is larger than 16 MiB".
 * Returns the error code to fail the task with (SL_EIO, SL_ELIMIT).
 */
int sl__script_read_error(const char *path, sl_fsio_result_t result, char *buf, size_t size);

/** Script files this process has read (or tried to); tests prove reads are shared. */
uint64_t sl__script_read_count(void);

typedef struct sl_script_read sl_script_read_t;

/**
 * The outcome of a threadpool read, on the loop: `code` 0 with `text` (the callee owns
 * it, sl__free) and `len`, or an error code and `message` (borrowed for the call).
 */
typedef void (*sl_script_read_cb)(void *ud, int code, char *text, size_t len, const char *message);

/**
 * Reads `path` (copied) in libuv's threadpool; `done` runs once on the loop. Returns 0,
 * or an SL_E code when the read cannot be queued (`done` is then never called).
 * Loop thread only.
 */
int sl__script_read_start(uv_loop_t *loop, const char *path, sl_script_read_cb done, void *ud,
                          sl_script_read_t **out);
/**
 * Asks a read that has not started not to: `done` still comes, with SL_ECANCELED. A
 * read already running finishes (it is bounded by the cap). Loop thread only.
 */
void sl__script_read_cancel(sl_script_read_t *read);

/**
 * Compiles `len` bytes of `source` as a chunk taking its _ENV as vararg, named
 * `chunkname` ("@PATH" or "=step 'ID'"); `is_file` drops a leading `#!` line. Pushes
 * the chunk, or the error message; returns lua_load's status. Never raises.
 */
int sl__script_compile(lua_State *L, const char *source, size_t len, const char *chunkname,
                       bool is_file);

/**
 * Pushes the metatable every task _ENV of a VM shares: __index is a new scope table (a
 * copy of the sandbox, plus `sluice`, built by `push_module(L, sandbox)` and made
 * read-only, `print`, and the restricted `require` reading modules with `fetch`, see
 * lua/require.h), __metatable is false. Raises; protected code only.
 */
void sl__script_push_env_mt(lua_State *L, void (*push_module)(lua_State *L, int sandbox),
                            lua_CFunction print, lua_CFunction fetch);

/** What a task's _ENV holds (sl__script_push_env). Everything is borrowed. */
typedef struct sl_script_task {
    const char *step;        /* the step's id */
    const sl_value_t *item;  /* the foreach item; NULL: nil */
    int64_t index;           /* 1-based; 0 (no foreach): nil */
    int64_t attempt;         /* 1-based */
    const sl_value_t *args;  /* a map: every entry becomes args.KEY ... */
    const char *const *skip; /* ... except these keys (the kind's own parameters) */
    size_t skip_count;
    bool unsafe; /* also io, os, package, debug, require, load, loadfile, dofile,
                    collectgarbage */
} sl_script_task_t;

/** Pushes a task's new _ENV with the metatable at `mt`. Raises; protected code only. */
void sl__script_push_env(lua_State *L, int mt, const sl_script_task_t *task);

/**
 * After the chunk returned nothing: when the task's env at `env` has its own global
 * function `run` (the scope's `run` is the run's info, not a function), pushes run, args
 * and ctx and returns true; otherwise pushes nothing and returns false. Needs 3 free
 * stack slots; never raises.
 */
bool sl__script_push_run(lua_State *L, int env);

#endif
