/*
 * Logging to stderr, as text or JSON lines. Either way one message is one line: text
 * escapes control characters, JSON holds valid UTF-8 only (util/utf8.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util.h"

int sl__log_level = SL_LOG_INFO;
static sl_logfmt_t log_format = SL_LOGFMT_TEXT;
static sl_log_sink_fn log_sink;
static void *log_sink_ud;

void sl__log_set_sink(sl_log_sink_fn sink, void *ud)
{
    log_sink = sink;
    log_sink_ud = ud;
}

void sl__log_setup(int level, sl_logfmt_t format)
{
    sl__log_level = level;
    log_format = format;
}

static const char *level_name(int level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return level >= 0 && level <= 3 ? names[level] : "info";
}

void sl__log_vwrite(int level, const char *run, const char *where, const char *fmt, va_list ap)
{
    char message[2048];
    vsnprintf(message, sizeof(message), fmt, ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[64];
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));
    sl_buf_t line;
    sl__buf_init(&line, sizeof(message) * 2);
    if (log_format == SL_LOGFMT_JSON) {
        sl__buf_addf(&line, "{\"time\":\"%s\",\"level\":\"%s\"", stamp, level_name(level));
        if (run) {
            sl__buf_add(&line, ",\"run\":", 7);
            sl__utf8_escape_json(&line, run);
        }
        if (where) {
            sl__buf_add(&line, ",\"task\":", 8);
            sl__utf8_escape_json(&line, where);
        }
        sl__buf_add(&line, ",\"msg\":", 7);
        sl__utf8_escape_json(&line, message);
        sl__buf_add(&line, "}\n", 2);
    } else {
        /* Data in a message (a URL, a server's words) cannot start a line of its own. */
        sl__buf_addf(&line, "%s %-5s ", stamp, level_name(level));
        if (where) {
            sl__utf8_escape_text(&line, where);
            sl__buf_add(&line, ": ", 2);
        }
        sl__utf8_escape_text(&line, message);
        sl__buf_addc(&line, '\n');
    }
    if (line.data)
        fwrite(line.data, 1, line.len, stderr);
    sl__buf_close(&line);
    if (log_sink)
        log_sink(log_sink_ud, level, run, where, message);
}

void sl__log_write(int level, const char *run, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl__log_vwrite(level, run, where, fmt, ap);
    va_end(ap);
}
