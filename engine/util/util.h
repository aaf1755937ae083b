/*
 * util: allocation, error strings, diagnostics, bounded buffers, logging.
 * Everything here is usable from any thread unless stated otherwise.
 */
#ifndef SL_UTIL_H
#define SL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/plugin.h"

/* ---- allocation ---------------------------------------------------------
 * Every engine allocation goes through these, so tests can make the n-th one
 * fail (SLUICE_FAIL_ALLOC=n) and check that the error path is clean. */
void *sl__malloc(size_t size);
void *sl__calloc(size_t count, size_t size);
void *sl__realloc(void *p, size_t size);
void sl__free(void *p);
/**
 * Makes room for one more element in a growable array: when `count` has reached
 * `*cap`, the array `*items` (of `size`-byte elements) doubles (or starts at
 * `first`). Returns 0, or SL_ENOMEM with the array unchanged.
 */
int sl__array_grow(void *items, size_t *cap, size_t count, size_t size, size_t first);
/** Copies a NUL-terminated string; NULL when out of memory or s is NULL. */
char *sl__strdup(const char *s);
/** Copies n bytes and adds a NUL. */
char *sl__strndup(const char *s, size_t n);
/** Allocates a formatted string; NULL when out of memory. */
char *sl__asprintf(const char *fmt, ...) SL_PRINTF(1, 2);
/** Makes allocation number `n` (1-based, counted from now) fail; 0 disables. */
void sl__alloc_fail_at(uint64_t n);

/** Message of an SL_E* code ("unknown error" for others). */
const char *sl_strerror(int code);

/* ---- diagnostics --------------------------------------------------------
 * A list of problems, each with a location in a file. Problems are kept in
 * the order they are added; sl__diag_sort orders them by position. */
typedef struct sl_mark {
    uint32_t line; /* 1-based; 0 = unknown */
    uint32_t col;  /* 1-based; 0 = unknown */
} sl_mark_t;

typedef struct sl_problem {
    char *file;    /* owned; may be NULL */
    sl_mark_t mark;
    char *message; /* owned */
} sl_problem_t;

typedef struct sl_diag {
    sl_problem_t *items;
    size_t count;
    size_t cap;
    size_t max;    /* stop recording past this many (0 = 1000) */
    bool dropped;  /* more problems than max */
} sl_diag_t;

void sl__diag_init(sl_diag_t *d);
void sl__diag_close(sl_diag_t *d);
/** Adds a problem; `file` and the message are copied. Returns SL_ENOMEM or 0. */
int sl__diag_add(sl_diag_t *d, const char *file, sl_mark_t mark, const char *fmt, ...)
    SL_PRINTF(4, 5);
int sl__diag_vadd(sl_diag_t *d, const char *file, sl_mark_t mark, const char *fmt, va_list ap);
/** Sorts problems by file, line, column (stable). */
void sl__diag_sort(sl_diag_t *d);
/** Writes every problem as `FILE:LINE:COL: error: MESSAGE\n` to `out`. */
void sl__diag_print(const sl_diag_t *d, void *out /* FILE* */);

/* ---- bounded buffer (curl's dynbuf) ---------------------------------------
 * Grows up to `max` bytes; an append past it fails with SL_ELIMIT and leaves
 * the buffer as it was. Always NUL-terminated once anything was added. */
typedef struct sl_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} sl_buf_t;

void sl__buf_init(sl_buf_t *b, size_t max);
void sl__buf_close(sl_buf_t *b);
void sl__buf_reset(sl_buf_t *b);
/** Appends by growing the buffer first: sl__buf_add's path when there is no room. */
int sl__buf_add_grow(sl_buf_t *b, const void *data, size_t len);

/* Inline: encoders append a few bytes at a time, and there is room nearly always (the
 * room never exceeds `max`, so fitting in it is within the bound). */
static inline int sl__buf_add(sl_buf_t *b, const void *data, size_t len)
{
    if (b->cap - b->len <= len)
        return sl__buf_add_grow(b, data, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static inline int sl__buf_addc(sl_buf_t *b, char c)
{
    if (b->cap - b->len <= 1)
        return sl__buf_add_grow(b, &c, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}
int sl__buf_addf(sl_buf_t *b, const char *fmt, ...) SL_PRINTF(2, 3);
/** Hands the bytes to the caller (NUL-terminated) and empties the buffer. */
char *sl__buf_take(sl_buf_t *b, size_t *len);

/* ---- logging --------------------------------------------------------------
 * One macro that checks the level before formatting. `where` is a short
 * "step[item]" tag or NULL. Output goes to stderr as text or JSON lines. */
typedef enum { SL_LOGFMT_TEXT = 0, SL_LOGFMT_JSON = 1 } sl_logfmt_t;

extern int sl__log_level;
void sl__log_setup(int level, sl_logfmt_t format);
void sl__log_write(int level, const char *run, const char *where, const char *fmt, ...)
    SL_PRINTF(4, 5);
void sl__log_vwrite(int level, const char *run, const char *where, const char *fmt, va_list ap);
/**
 * Also hands every line written to `sink` (NULL: none), after it is formatted: the state
 * store keeps a run's log this way. Called on the writing thread; one sink per process.
 */
typedef void (*sl_log_sink_fn)(void *ud, int level, const char *run, const char *where,
                               const char *message);
void sl__log_set_sink(sl_log_sink_fn sink, void *ud);

#define SL_LOG(level, run, where, ...)                     \
    do {                                                   \
        if ((level) >= sl__log_level)                      \
            sl__log_write((level), (run), (where), __VA_ARGS__); \
    } while (0)

/* ---- small helpers ------------------------------------------------------- */

/** Parses a duration ("250ms", "30s", "5m", "2h", "1d", or bare seconds,
 *  which may be fractional) into milliseconds. Returns SL_EINVAL if malformed
 *  or negative or over 100 years. */
int sl__duration_parse(const char *text, int64_t *out_ms);

/** Monotonic clock in nanoseconds. */
uint64_t sl__clock_now_ns(void);

/** Folder of the running binary ("build"), borrowed; NULL if unknown. */
const char *sl__exe_dir(void);

/** Edit distance, bounded: returns max+1 when larger than max. */
size_t sl__edit_distance(const char *a, const char *b, size_t max);

/** Length (1-4) of the valid UTF-8 sequence at `s`, or 0 when it is not one. */
size_t sl__utf8_next(const char *s, size_t len);
/** Checks that `s[0..len)` is valid UTF-8; returns the offset of the first bad
 *  byte or `len` when valid. */
size_t sl__utf8_check(const char *s, size_t len);

/** Appends `s` to `b` for a line of text: control characters escaped (`\n`, `\r`, `\t`,
 *  `\x1b`, C1 as `\u009b`), bytes that are not UTF-8 as `\xHH`; so the text of a message
 *  (fetched data, a URL) stays on its line and cannot drive a terminal. */
void sl__utf8_escape_text(sl_buf_t *b, const char *s);
/** Appends `s` to `b` as a JSON string (quoted), valid UTF-8: each byte that is not part
 *  of a UTF-8 sequence becomes U+FFFD. */
void sl__utf8_escape_json(sl_buf_t *b, const char *s);

/** Counts elements of a static array. */
#define SL_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#endif
