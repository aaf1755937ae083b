/*
 * util/metrics: a registry of counters, gauges and histograms with labels, and its
 * Prometheus text exposition (format 0.0.4), for `serve --http`'s /metrics
 * (docs/metrics.md). It knows nothing of the engine: the modules that count (serve, host,
 * io, pool) register their families and series here, and dash/ writes the registry out.
 *
 * The hot path is a pointer to a series looked up once and an add: callers look a series
 * up when its labels become known (a run, a step's kind) and keep the pointer; series live
 * as long as the registry (only sl__metrics_clear drops them, for families set at scrape
 * time). Bounded: a family holds at most `series_max` label sets; past it a new label set
 * is counted with its first label replaced by "other" (families put their open-ended
 * label, the workflow, first), at most SL_METRICS_OVERFLOW_MAX such sets, and past those
 * under every label "other"; a warning is logged once per family. Label values are cut at
 * SL_METRICS_VALUE_MAX bytes.
 *
 * Not thread-safe: the registry is used from one thread, the daemon's loop (the pool and
 * the HTTP client report on it; worker processes count nothing). Every function accepts
 * NULL for its registry, family or series and then does nothing, so that a registry that
 * could not be made (out of memory) costs its callers no error handling.
 */
#ifndef SL_UTIL_METRICS_H
#define SL_UTIL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define SL_METRICS_LABELS_MAX 4     /* labels per family */
#define SL_METRICS_SERIES_MAX 1000  /* label sets per family, by default */
#define SL_METRICS_OVERFLOW_MAX 100 /* label sets with the first label "other", beyond it */
#define SL_METRICS_VALUE_MAX 128    /* bytes of a label value kept */
#define SL_METRICS_BUCKETS 13       /* histogram buckets, +Inf not counted */
#define SL_METRICS_OTHER "other"

typedef struct sl_metrics sl_metrics_t;
typedef struct sl_metrics_family sl_metrics_family_t;
typedef struct sl_metrics_series sl_metrics_series_t;

typedef enum {
    SL_METRICS_COUNTER = 0,
    SL_METRICS_GAUGE,
    SL_METRICS_HISTOGRAM,
} sl_metrics_type_t;

/** The upper bounds of the histogram buckets, in seconds: 0.005 … 60 (then +Inf). */
extern const double sl__metrics_bounds[SL_METRICS_BUCKETS];

/** The process's registry, made on the first call (then retried until it is made); NULL
 *  when out of memory. It is never freed: callers keep pointers to its series. */
sl_metrics_t *sl__metrics_global(void);

/** A registry of its own (tests); `series_max` 0: SL_METRICS_SERIES_MAX. NULL: no memory. */
sl_metrics_t *sl__metrics_new(size_t series_max);
/** Frees the registry, its families and series. NULL or the process's: nothing. */
void sl__metrics_free(sl_metrics_t *m);

/**
 * The family `name`, registered on the first call with its type, HELP text and label
 * names (`labels`: NULL-terminated, at most SL_METRICS_LABELS_MAX; NULL: none); later
 * calls with the same name return it. Names are copied. Returns NULL (and logs an error,
 * it is the caller's bug) on a name or label name outside the format's grammar, a label
 * `le` on a histogram, a name registered with another type or labels; NULL when out of
 * memory.
 */
sl_metrics_family_t *sl__metrics_family(sl_metrics_t *m, const char *name, sl_metrics_type_t type,
                                        const char *help, const char *const *labels);

/**
 * The series of `f` with label values `values` (one per label name, copied; NULL for a
 * family without labels), made at its first use. Past the family's bound the series is
 * the overflow one (see above). NULL only when out of memory. A lookup: not for the hot
 * path; keep the pointer.
 */
sl_metrics_series_t *sl__metrics_series(sl_metrics_family_t *f, const char *const *values);

/** Adds `delta` to a counter (never negative: ignored) or a gauge. */
void sl__metrics_add(sl_metrics_series_t *s, double delta);
/** Sets a gauge, or a counter kept elsewhere and copied at scrape time. */
void sl__metrics_set(sl_metrics_series_t *s, double value);
/** Counts `value` (seconds) into a histogram. */
void sl__metrics_observe(sl_metrics_series_t *s, double value);
/** The value of a counter or gauge; a histogram's count. 0 for NULL. */
double sl__metrics_value(const sl_metrics_series_t *s);
/** sl__metrics_series then sl__metrics_add: for what happens once a run, not a task. */
void sl__metrics_count(sl_metrics_family_t *f, const char *const *values, double delta);

/** Drops every series of `f`: for families whose series are all set at scrape time
 *  (nobody keeps their pointers). */
void sl__metrics_clear(sl_metrics_family_t *f);

/** Receives a piece of the exposition; returns 0, or < 0 to stop the writing. */
typedef int (*sl_metrics_out_fn)(void *ud, const char *data, size_t len);

/**
 * Writes the registry in the text format 0.0.4: families sorted by name, each with its
 * HELP and TYPE once, then its series sorted by label values; histograms as cumulative
 * `_bucket{le=…}` up to +Inf, `_sum` and `_count`. Label values are escaped (`\\`, `\"`,
 * `\n`) and invalid UTF-8 written as U+FFFD. Returns 0, or what `out` returned when it
 * stopped.
 */
int sl__metrics_write(const sl_metrics_t *m, sl_metrics_out_fn out, void *ud);

#endif
