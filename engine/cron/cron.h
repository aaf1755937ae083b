/*
 * cron: schedule expressions and time zones.
 *
 * Standard five fields (minute hour day-of-month month day-of-week) with
 * lists, ranges, steps, names (JAN..DEC, SUN..SAT; 7 is Sunday too) and the
 * shorthands @yearly @annually @monthly @weekly @daily @midnight @hourly.
 * When both day fields are restricted, a day matching either fires (Vixie).
 *
 * Times are Unix seconds; `tz` is an IANA name ("Europe/Paris", "UTC").
 * Local wall-clock semantics: a tick inside a DST gap fires once at the first
 * instant after the gap; a tick inside a repeated hour fires once (at its
 * first occurrence). Zones are read from TZif files in $TZDIR or
 * /usr/share/zoneinfo (v2+ data and the POSIX footer rule); the process TZ
 * and libc's time zone state are never touched. Thread: any; no global state.
 */
#ifndef SL_CRON_H
#define SL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_cron sl_cron_t;

/**
 * Parses an expression. On error returns SL_EINVAL, writes a message into
 * `err` (e.g. "minute field: 61 is out of range 0-59") and sets *err_offset
 * to the byte offset in `expr` where the bad field starts.
 */
int sl__cron_parse(const char *expr, sl_cron_t **out, char *err, size_t err_size,
                   size_t *err_offset);
void sl__cron_free(sl_cron_t *cron);

/**
 * 0 when `name` is a time zone this machine knows (or "UTC", "Etc/UTC", known
 * even without tzdata), else SL_ENOENT; SL_ENOMEM when out of memory.
 */
int sl__tz_check(const char *name);

/**
 * The first fire time strictly after `after` (Unix seconds) in zone `tz`.
 * Returns SL_ENOTFOUND when none within ~5 years (e.g. "0 0 30 2 *").
 */
int sl__cron_next(const sl_cron_t *cron, const char *tz, int64_t after, int64_t *out);

/**
 * Formats `t` as ISO-8601 with the zone's UTC offset at that instant,
 * "2026-03-29T03:00:00+02:00" into buf (at least 32 bytes).
 */
int sl__time_format(int64_t t, const char *tz, char *buf, size_t size);

/**
 * Parses ISO-8601 "YYYY-MM-DDTHH:MM[:SS]" with an optional offset ("Z",
 * "+02:00"); without an offset the time is local to `tz`. Also accepts
 * "YYYY-MM-DD" (midnight). Returns SL_EINVAL when malformed.
 */
int sl__time_parse(const char *text, const char *tz, int64_t *out);

/* ---- zones as objects ------------------------------------------------------
 * The string-taking functions above load the zone on each call; a caller that
 * asks many times (the daemon, `sluice next`) loads it once with sl__tz_load. */
typedef struct sl_tz sl_tz_t;

/**
 * Loads zone `name` from $TZDIR or /usr/share/zoneinfo ("UTC" and "Etc/UTC"
 * work without tzdata). Returns SL_ENOENT for an unknown or unsafe name
 * (absolute, "..", not a TZif file), SL_ENOMEM. *out is the caller's.
 */
int sl__tz_load(const char *name, sl_tz_t **out);
void sl__tz_free(sl_tz_t *tz);
/** UTC offset in seconds east of Greenwich in effect at instant `t`. */
int32_t sl__tz_offset(const sl_tz_t *tz, int64_t t);
/**
 * The instant a local wall-clock time `wall` (seconds since 1970-01-01T00:00
 * read as if UTC) denotes: the first occurrence in a repeated hour, the end of
 * the gap for a time inside a DST gap.
 */
int64_t sl__tz_from_wall(const sl_tz_t *tz, int64_t wall);

/** sl__cron_next with a loaded zone. */
int sl__cron_next_tz(const sl_cron_t *cron, const sl_tz_t *tz, int64_t after, int64_t *out);
/** sl__time_format with a loaded zone. */
int sl__time_format_tz(int64_t t, const sl_tz_t *tz, char *buf, size_t size);
/** sl__time_parse with a loaded zone. */
int sl__time_parse_tz(const char *text, const sl_tz_t *tz, int64_t *out);

/* ---- civil calendar (proleptic Gregorian), shared inside the module ------ */
/** Days since 1970-01-01 of y-m-d (m 1..12, d 1..31). */
int64_t sl__time_days_from_civil(int64_t y, unsigned m, unsigned d);
/** Inverse of sl__time_days_from_civil. */
void sl__time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/** Days in month m (1..12) of year y. */
unsigned sl__time_days_in_month(int64_t y, unsigned m);

/* ---- the clock of schedules (clock.c) -------------------------------------
 * serve, next and backfill read the wall clock here. SLUICE_NOW (ISO-8601 with a UTC
 * offset) starts it at that time, from where it advances in real time (tests). */
/**
 * Sets the clock from `value` (SLUICE_NOW's text; NULL or "" = the real clock). Returns
 * SL_EINVAL with a message in `err` for a value that is not a time with an offset.
 */
int sl__clock_setup(const char *value, char *err, size_t err_size);
/** sl__clock_setup with getenv("SLUICE_NOW"). */
int sl__clock_setup_env(char *err, size_t err_size);
/** The clock's time in Unix milliseconds. */
int64_t sl__clock_wall_ms(void);
/** True when SLUICE_NOW set the clock. */
bool sl__clock_simulated(void);

#endif
