/*
 * The argument helpers of the host table (ABI 1.2, sluice/plugin.h): a kind's `with` values
 * read as luaL_checkinteger reads Lua's, each refusal worded by one standard message,
 *
 *     'NAME' must be EXPECTED, got GOT
 *
 * (and, for an integer above its maximum, a limit rather than a mistake: "'NAME' GOT is
 * above the maximum, MAX", SL_ELIMIT). The words were chosen so that the messages the
 * built-in plugins printed before the helpers existed read the same ("'limit' must be >= 0,
 * got -5"). The helpers only read the value and write plain memory, so they run on any
 * thread that owns `args`; a kind adds its name when it fails the task.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/args.h"
#include "value/value.h"

#define GOT_QUOTE_MAX 40          /* bytes of a string quoted after "got" */
#define NAME_MAX_SHOWN 64         /* bytes of a parameter's name in a message */
#define DURATION_MAX_S 3153600000 /* 100 years, as sl__duration_parse allows */
#define POWER_NAMED_MIN 65536     /* a maximum from 2^16 that is a power of two reads as 2^k */

static int failf(char *err, size_t err_size, int code, const char *fmt, ...) SL_PRINTF(4, 5);

/* Writes the message (cut to fit) when there is a buffer; returns `code`. */
static int failf(char *err, size_t err_size, int code, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* The shortest decimal text that reads back as `n` ("2.5", "1e+300"), and "nan", "inf" or
 * "-inf" for the rest: printf's own spelling of NaN carries a sign that means nothing. */
static void format_number(double n, char *buf, size_t size)
{
    if (isnan(n)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(n)) {
        snprintf(buf, size, "%s", n > 0 ? "inf" : "-inf");
        return;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, n);
        if (strtod(buf, NULL) == n)
            return;
    }
}

/* Bytes of `s` (of `len`) to quote: up to GOT_QUOTE_MAX, before any control byte, never
 * splitting a UTF-8 sequence. */
static size_t quotable(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && n < GOT_QUOTE_MAX && (unsigned char)s[n] >= 0x20 && s[n] != 0x7f)
        n++;
    while (n > 0 && n < len && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* What the message says after "got": the value itself when short, else its type. */
static void describe(const sl_value_t *v, char *buf, size_t size)
{
    size_t len = 0;
    const char *s;
    switch (sl_value_type(v)) {
    case SL_TYPE_NIL: snprintf(buf, size, "nil"); break;
    case SL_TYPE_BOOL: snprintf(buf, size, "%s", sl_value_truthy(v) ? "true" : "false"); break;
    case SL_TYPE_INT: snprintf(buf, size, "%" PRId64, sl_value_int_of(v)); break;
    case SL_TYPE_NUMBER: format_number(sl_value_number_of(v), buf, size); break;
    case SL_TYPE_STRING: {
        s = sl_value_str(v, &len);
        size_t shown = quotable(s, len);
        snprintf(buf, size, "'%.*s%s'", (int)shown, s, shown < len ? "…" : "");
        break;
    }
    case SL_TYPE_LIST:
        snprintf(buf, size, "%s", sl_value_len(v) ? "a list" : "an empty list");
        break;
    case SL_TYPE_MAP: snprintf(buf, size, "a map"); break;
    }
}

/*
 * The value of parameter `name`, or NULL when it is absent or nil (args that are not a map
 * read as empty). *rc is 0, or SL_EINVAL with the message when SL_ARG_REQUIRED wants it.
 */
static const sl_value_t *lookup(const sl_value_t *args, const char *name, uint32_t flags,
                                int *rc, char *err, size_t err_size)
{
    const sl_value_t *v = sl_value_get(args, name);
    *rc = 0;
    if (v != NULL && sl_value_type(v) != SL_TYPE_NIL)
        return v;
    if (flags & SL_ARG_REQUIRED)
        *rc = failf(err, err_size, SL_EINVAL, "'%.*s' is required", NAME_MAX_SHOWN, name);
    return NULL;
}

/* ---- integers ------------------------------------------------------------------------ */

/* Whether `n` has an int64_t value, and that value: the test comes before the conversion,
 * which is undefined for NaN, the infinities and anything beyond ±2^63. */
static bool number_as_int(double n, int64_t *out)
{
    if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0) || n != trunc(n))
        return false;
    *out = (int64_t)n;
    return true;
}

/* The maximum as the message names it: "1000000000", or "2^32 = 4294967296". */
static void format_max(int64_t max, char *buf, size_t size)
{
    if (max >= POWER_NAMED_MIN && (max & (max - 1)) == 0) {
        int bits = 0;
        while (((int64_t)1 << bits) != max)
            bits++;
        snprintf(buf, size, "2^%d = %" PRId64, bits, max);
    } else {
        snprintf(buf, size, "%" PRId64, max);
    }
}

/* A value that is not an integer in range: the first two standard messages. */
static int not_integer(const sl_value_t *v, const char *name, int64_t min, int64_t max,
                       const char *hint, char *err, size_t err_size)
{
    char got[GOT_QUOTE_MAX + 16];
    describe(v, got, sizeof(got));
    if (sl_value_type(v) != SL_TYPE_NUMBER)
        return failf(err, err_size, SL_EINVAL, "'%.*s' must be an integer%s%s%s, got %s",
                     NAME_MAX_SHOWN, name, hint ? " (" : "", hint ? hint : "", hint ? ")" : "",
                     got);
    if (hint != NULL)
        return failf(err, err_size, SL_EINVAL, "'%.*s' must be a whole number (%s), got %s",
                     NAME_MAX_SHOWN, name, hint, got);
    return failf(err, err_size, SL_EINVAL,
                 "'%.*s' must be a whole number from %" PRId64 " to %" PRId64 ", got %s",
                 NAME_MAX_SHOWN, name, min, max, got);
}

int sl__args_int(const sl_value_t *args, const char *name, uint32_t flags, int64_t min,
                 int64_t max, const char *hint, int64_t *out, char *err, size_t err_size)
{
    int rc;
    const sl_value_t *v = lookup(args, name, flags, &rc, err, err_size);
    if (v == NULL)
        return rc;
    int64_t n = 0;
    sl_type_t type = sl_value_type(v);
    if (type == SL_TYPE_INT)
        n = sl_value_int_of(v);
    else if (type != SL_TYPE_NUMBER || !number_as_int(sl_value_number_of(v), &n))
        return not_integer(v, name, min, max, hint, err, err_size);
    if (n < min)
        return failf(err, err_size, SL_EINVAL, "'%.*s' must be >= %" PRId64 ", got %" PRId64,
                     NAME_MAX_SHOWN, name, min, n);
    if (n > max) {
        char max_text[64];
        format_max(max, max_text, sizeof(max_text));
        return failf(err, err_size, SL_ELIMIT, "'%.*s' %" PRId64 " is above the maximum, %s",
                     NAME_MAX_SHOWN, name, n, max_text);
    }
    *out = n;
    return 0;
}

/* ---- durations ----------------------------------------------------------------------- */

/* A duration in milliseconds: a string as workflows write them, or a number of seconds. */
static bool duration_of(const sl_value_t *v, int64_t *out_ms)
{
    size_t len = 0;
    const char *s = sl_value_str(v, &len);
    if (s != NULL)
        return strlen(s) == len && sl__duration_parse(s, out_ms) == 0;
    sl_type_t type = sl_value_type(v);
    if (type != SL_TYPE_INT && type != SL_TYPE_NUMBER)
        return false;
    double seconds = sl_value_number_of(v); /* an int64 becomes the nearest double */
    if (!(seconds >= 0 && seconds <= DURATION_MAX_S)) /* also false for NaN */
        return false;
    *out_ms = (int64_t)llround(seconds * 1000);
    return true;
}

int sl__args_duration(const sl_value_t *args, const char *name, uint32_t flags, int64_t *out_ms,
                      char *err, size_t err_size)
{
    int rc;
    const sl_value_t *v = lookup(args, name, flags, &rc, err, err_size);
    if (v == NULL)
        return rc;
    int64_t ms = 0;
    if (!duration_of(v, &ms)) {
        char got[GOT_QUOTE_MAX + 16];
        describe(v, got, sizeof(got));
        return failf(err, err_size, SL_EINVAL,
                     "'%.*s' must be a duration (250ms, 30s, 5m, 2h, 1d or a number of "
                     "seconds), got %s",
                     NAME_MAX_SHOWN, name, got);
    }
    *out_ms = ms;
    return 0;
}

/* ---- strings ------------------------------------------------------------------------- */

/* Room for a number or boolean as text. */
typedef struct scalar_text {
    char buf[64];
} scalar_text_t;

/*
 * The text of `v` (`label` is how the message names it: "'path'", "'argv[2]'") in *s and
 * *len: a string's bytes, or with SL_ARG_SCALARS a number's or boolean's text in `num`.
 * Returns 0, or SL_EINVAL with the standard message.
 */
static int text_of(const sl_value_t *v, const char *label, uint32_t flags, scalar_text_t *num,
                   const char **s, size_t *len, char *err, size_t err_size)
{
    sl_type_t type = sl_value_type(v);
    char got[GOT_QUOTE_MAX + 16];
    *s = sl_value_str(v, len);
    if (*s == NULL && (flags & SL_ARG_SCALARS) && type != SL_TYPE_NIL && type != SL_TYPE_LIST &&
        type != SL_TYPE_MAP) {
        if (type == SL_TYPE_NUMBER)
            format_number(sl_value_number_of(v), num->buf, sizeof(num->buf));
        else
            describe(v, num->buf, sizeof(num->buf)); /* an integer or a boolean */
        *s = num->buf;
        *len = strlen(num->buf);
    }
    if (*s == NULL) {
        describe(v, got, sizeof(got));
        return failf(err, err_size, SL_EINVAL, "%s must be %s, got %s", label,
                     flags & SL_ARG_SCALARS ? "a string, a number or a boolean" : "a string",
                     got);
    }
    if ((flags & SL_ARG_NOT_EMPTY) && *len == 0)
        return failf(err, err_size, SL_EINVAL, "%s must be a non-empty string, got ''", label);
    if (!(flags & SL_ARG_BYTES) && memchr(*s, '\0', *len) != NULL)
        return failf(err, err_size, SL_EINVAL,
                     "%s must be a string without NUL bytes, got one with a NUL byte", label);
    return 0;
}

int sl__args_string(const sl_value_t *args, const char *name, uint32_t flags, char **out,
                    size_t *len, char *err, size_t err_size)
{
    *out = NULL;
    if (len != NULL)
        *len = 0;
    int rc;
    const sl_value_t *v = lookup(args, name, flags, &rc, err, err_size);
    if (v == NULL)
        return rc;
    char label[NAME_MAX_SHOWN + 4];
    snprintf(label, sizeof(label), "'%.*s'", NAME_MAX_SHOWN, name);
    scalar_text_t num;
    const char *s;
    size_t n;
    rc = text_of(v, label, flags, &num, &s, &n, err, err_size);
    if (rc < 0)
        return rc;
    char *copy = sl__strndup(s, n);
    if (copy == NULL)
        return failf(err, err_size, SL_ENOMEM, "out of memory");
    *out = copy;
    if (len != NULL)
        *len = n;
    return 0;
}

/* ---- lists of strings ---------------------------------------------------------------- */

/* Checks every item of `list`, adding up the bytes their copies need. 0 or SL_EINVAL. */
static int check_items(const sl_value_t *list, const char *name, uint32_t flags, size_t *bytes,
                       char *err, size_t err_size)
{
    size_t count = sl_value_len(list);
    *bytes = (count + 1) * sizeof(char *);
    for (size_t i = 0; i < count; i++) {
        char label[NAME_MAX_SHOWN + 32];
        snprintf(label, sizeof(label), "'%.*s[%zu]'", NAME_MAX_SHOWN, name, i + 1);
        scalar_text_t num;
        const char *s;
        size_t n;
        int rc = text_of(sl_value_at(list, i), label, flags & ~SL_ARG_NOT_EMPTY, &num, &s, &n,
                         err, err_size);
        if (rc < 0)
            return rc;
        *bytes += n + 1;
    }
    return 0;
}

/* Fills `block` (of the size check_items counted): the pointers, a NULL, then the texts. */
static void fill_items(const sl_value_t *list, uint32_t flags, char **block)
{
    size_t count = sl_value_len(list);
    char *text = (char *)(block + count + 1);
    for (size_t i = 0; i < count; i++) {
        scalar_text_t num;
        const char *s;
        size_t n;
        text_of(sl_value_at(list, i), "", flags & ~SL_ARG_NOT_EMPTY, &num, &s, &n, NULL, 0);
        memcpy(text, s, n);
        text[n] = '\0';
        block[i] = text;
        text += n + 1;
    }
    block[count] = NULL;
}

int sl__args_strings(const sl_value_t *args, const char *name, uint32_t flags, char ***out,
                     size_t *count, char *err, size_t err_size)
{
    *out = NULL;
    *count = 0;
    int rc;
    const sl_value_t *list = lookup(args, name, flags, &rc, err, err_size);
    if (list == NULL)
        return rc;
    const char *what =
        flags & SL_ARG_NOT_EMPTY ? "a non-empty list of strings" : "a list of strings";
    if (sl_value_type(list) != SL_TYPE_LIST ||
        ((flags & SL_ARG_NOT_EMPTY) && sl_value_len(list) == 0)) {
        char got[GOT_QUOTE_MAX + 16];
        describe(list, got, sizeof(got));
        return failf(err, err_size, SL_EINVAL, "'%.*s' must be %s, got %s", NAME_MAX_SHOWN,
                     name, what, got);
    }
    size_t bytes = 0;
    rc = check_items(list, name, flags, &bytes, err, err_size);
    if (rc < 0)
        return rc;
    char **block = sl__malloc(bytes);
    if (block == NULL)
        return failf(err, err_size, SL_ENOMEM, "out of memory");
    fill_items(list, flags, block);
    *out = block;
    *count = sl_value_len(list);
    return 0;
}
