/*
 * The metrics registry and its Prometheus text exposition (util/metrics.h). Families are
 * kept sorted by name and each family's series sorted by their label values, so lookups
 * are binary searches and the exposition comes out in a stable order without sorting at
 * scrape time. A series' key is its label values, each followed by a NUL.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/metrics.h"
#include "util/util.h"

const double sl__metrics_bounds[SL_METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1,     2.5,  5,     10,   30,  60};

/* The bounds as `le` writes them (the unit test checks they match). */
static const char *const bound_texts[SL_METRICS_BUCKETS + 1] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1",     "2.5",  "5",     "10",   "30",  "60",   "+Inf"};

struct sl_metrics_series {
    char *key; /* the label values, each NUL-terminated, one after the other */
    size_t key_len;
    const char *values[SL_METRICS_LABELS_MAX]; /* into key */
    double value;                              /* counter, gauge; histogram: the sum */
    uint64_t count;                            /* histogram: observations */
    uint64_t buckets[SL_METRICS_BUCKETS + 1];  /* histogram: per bucket, not cumulative */
    sl_metrics_type_t type;
};

struct sl_metrics_family {
    sl_metrics_t *m;
    char *name, *help;
    sl_metrics_type_t type;
    char *labels[SL_METRICS_LABELS_MAX];
    size_t label_count;
    sl_metrics_series_t **series; /* sorted by key */
    size_t count, cap;
    size_t overflow; /* series made past the bound */
    bool warned;
};

struct sl_metrics {
    size_t series_max;
    sl_metrics_family_t **families; /* sorted by name */
    size_t count, cap;
};

static sl_metrics_t *global_registry;

sl_metrics_t *sl__metrics_global(void)
{
    if (global_registry == NULL)
        global_registry = sl__metrics_new(0);
    return global_registry;
}

sl_metrics_t *sl__metrics_new(size_t series_max)
{
    sl_metrics_t *m = sl__calloc(1, sizeof(*m));
    if (m)
        m->series_max = series_max ? series_max : SL_METRICS_SERIES_MAX;
    return m;
}

static void series_free(sl_metrics_series_t *s)
{
    if (s) {
        sl__free(s->key);
        sl__free(s);
    }
}

void sl__metrics_clear(sl_metrics_family_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->count; i++)
        series_free(f->series[i]);
    f->count = 0;
    f->overflow = 0;
}

static void family_free(sl_metrics_family_t *f)
{
    sl__metrics_clear(f);
    sl__free(f->series);
    for (size_t i = 0; i < f->label_count; i++)
        sl__free(f->labels[i]);
    sl__free(f->name);
    sl__free(f->help);
    sl__free(f);
}

void sl__metrics_free(sl_metrics_t *m)
{
    if (m == NULL || m == global_registry)
        return; /* the process's lives as long as the process: its series are kept */
    for (size_t i = 0; i < m->count; i++)
        family_free(m->families[i]);
    sl__free(m->families);
    sl__free(m);
}

/* ---- families ---------------------------------------------------------------------- */

/* [a-zA-Z_:][a-zA-Z0-9_:]* for a metric (colons allowed), [a-zA-Z_][a-zA-Z0-9_]* not
 * starting with __ for a label. */
static bool valid_name(const char *name, bool label)
{
    if (name == NULL || name[0] == '\0' || (label && strncmp(name, "__", 2) == 0))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (!label && c == ':') || (p > name && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* The index of `name` in m->families, or where it goes (*found false). */
static size_t family_slot(const sl_metrics_t *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->families[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t count_labels(const char *const *labels)
{
    size_t n = 0;
    while (labels && labels[n])
        n++;
    return n;
}

static bool same_shape(const sl_metrics_family_t *f, sl_metrics_type_t type,
                       const char *const *labels)
{
    if (f->type != type || f->label_count != count_labels(labels))
        return false;
    for (size_t i = 0; i < f->label_count; i++)
        if (strcmp(f->labels[i], labels[i]) != 0)
            return false;
    return true;
}

static bool valid_family(const char *name, sl_metrics_type_t type, const char *const *labels)
{
    size_t n = count_labels(labels);
    if (!valid_name(name, false) || n > SL_METRICS_LABELS_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!valid_name(labels[i], true) ||
            (type == SL_METRICS_HISTOGRAM && strcmp(labels[i], "le") == 0))
            return false;
    return true;
}

static sl_metrics_family_t *family_make(sl_metrics_t *m, const char *name, sl_metrics_type_t type,
                                        const char *help, const char *const *labels)
{
    sl_metrics_family_t *f = sl__calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->m = m;
    f->type = type;
    f->name = sl__strdup(name);
    f->help = sl__strdup(help ? help : "");
    bool ok = f->name && f->help;
    for (size_t i = 0; ok && labels && labels[i]; i++, f->label_count++)
        ok = (f->labels[i] = sl__strdup(labels[i])) != NULL;
    if (!ok) {
        family_free(f);
        return NULL;
    }
    return f;
}

sl_metrics_family_t *sl__metrics_family(sl_metrics_t *m, const char *name, sl_metrics_type_t type,
                                        const char *help, const char *const *labels)
{
    if (m == NULL)
        return NULL;
    if (!valid_family(name, type, labels)) {
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "metrics: '%s': not a valid family", name ? name : "");
        return NULL;
    }
    bool found;
    size_t slot = family_slot(m, name, &found);
    if (found) {
        sl_metrics_family_t *f = m->families[slot];
        if (same_shape(f, type, labels))
            return f;
        SL_LOG(SL_LOG_ERROR, NULL, NULL, "metrics: '%s' registered twice, differently", name);
        return NULL;
    }
    if (sl__array_grow(&m->families, &m->cap, m->count, sizeof(*m->families), 16) < 0)
        return NULL;
    sl_metrics_family_t *f = family_make(m, name, type, help, labels);
    if (f == NULL)
        return NULL;
    memmove(m->families + slot + 1, m->families + slot, (m->count - slot) * sizeof(*m->families));
    m->families[slot] = f;
    m->count++;
    return f;
}

/* ---- series ------------------------------------------------------------------------ */

/* The length of `v` cut to SL_METRICS_VALUE_MAX bytes, not inside a UTF-8 sequence. */
static size_t value_len(const char *v)
{
    size_t len = strnlen(v, SL_METRICS_VALUE_MAX + 1);
    if (len <= SL_METRICS_VALUE_MAX)
        return len;
    len = SL_METRICS_VALUE_MAX;
    while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80)
        len--;
    return len;
}

/* Builds the key of `values` (n of them) into `key` (room for n * (MAX + 1)). */
static size_t make_key(char *key, const char *const *values, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = values[i] ? values[i] : "";
        size_t l = value_len(v);
        memcpy(key + len, v, l);
        len += l;
        key[len++] = '\0';
    }
    return len;
}

static int key_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    return c ? c : (a_len > b_len) - (a_len < b_len);
}

static size_t series_slot(const sl_metrics_family_t *f, const char *key, size_t key_len,
                          bool *found)
{
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sl_metrics_series_t *s = f->series[mid];
        int c = key_cmp(s->key, s->key_len, key, key_len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static sl_metrics_series_t *series_insert(sl_metrics_family_t *f, size_t slot, const char *key,
                                          size_t key_len)
{
    if (sl__array_grow(&f->series, &f->cap, f->count, sizeof(*f->series), 8) < 0)
        return NULL;
    sl_metrics_series_t *s = sl__calloc(1, sizeof(*s));
    if (s == NULL || (s->key = sl__malloc(key_len + 1)) == NULL) {
        sl__free(s);
        return NULL;
    }
    memcpy(s->key, key, key_len);
    s->key[key_len] = '\0';
    s->key_len = key_len;
    s->type = f->type;
    const char *p = s->key;
    for (size_t i = 0; i < f->label_count; i++, p += strlen(p) + 1)
        s->values[i] = p;
    memmove(f->series + slot + 1, f->series + slot, (f->count - slot) * sizeof(*f->series));
    f->series[slot] = s;
    f->count++;
    return s;
}

/* Past the bound: the label set with its first value "other", or with all of them. */
static size_t overflow_key(sl_metrics_family_t *f, char *key, const char *const *values, bool all)
{
    if (!f->warned) {
        f->warned = true;
        SL_LOG(SL_LOG_WARN, NULL, NULL,
               "metrics: %s has %zu label sets: new ones are counted under %s=\"%s\"", f->name,
               f->m->series_max, f->labels[0], SL_METRICS_OTHER);
    }
    const char *other[SL_METRICS_LABELS_MAX];
    for (size_t i = 0; i < f->label_count; i++)
        other[i] = all || i == 0 ? SL_METRICS_OTHER : values[i];
    return make_key(key, other, f->label_count);
}

sl_metrics_series_t *sl__metrics_series(sl_metrics_family_t *f, const char *const *values)
{
    if (f == NULL)
        return NULL;
    char key[SL_METRICS_LABELS_MAX * (SL_METRICS_VALUE_MAX + 1)];
    size_t key_len = make_key(key, values, f->label_count);
    bool found;
    size_t slot = series_slot(f, key, key_len, &found);
    if (found)
        return f->series[slot];
    if (f->count >= f->m->series_max && f->label_count > 0) {
        bool all = f->overflow >= SL_METRICS_OVERFLOW_MAX;
        key_len = overflow_key(f, key, values, all);
        slot = series_slot(f, key, key_len, &found);
        if (found)
            return f->series[slot];
        if (!all)
            f->overflow++;
    }
    return series_insert(f, slot, key, key_len);
}

void sl__metrics_add(sl_metrics_series_t *s, double delta)
{
    if (s == NULL || s->type == SL_METRICS_HISTOGRAM ||
        (s->type == SL_METRICS_COUNTER && !(delta >= 0)))
        return;
    s->value += delta;
}

void sl__metrics_set(sl_metrics_series_t *s, double value)
{
    if (s && s->type != SL_METRICS_HISTOGRAM)
        s->value = value;
}

void sl__metrics_observe(sl_metrics_series_t *s, double value)
{
    if (s == NULL || s->type != SL_METRICS_HISTOGRAM || isnan(value))
        return;
    size_t b = 0;
    while (b < SL_METRICS_BUCKETS && value > sl__metrics_bounds[b])
        b++;
    s->buckets[b]++;
    s->count++;
    s->value += value;
}

double sl__metrics_value(const sl_metrics_series_t *s)
{
    if (s == NULL)
        return 0;
    return s->type == SL_METRICS_HISTOGRAM ? (double)s->count : s->value;
}

void sl__metrics_count(sl_metrics_family_t *f, const char *const *values, double delta)
{
    sl__metrics_add(sl__metrics_series(f, values), delta);
}

/* ---- the exposition ---------------------------------------------------------------- */

typedef struct writer {
    char buf[64 * 1024]; /* pieces this big: few writes for the output of a whole registry */
    size_t len;
    sl_metrics_out_fn out;
    void *ud;
    int rc;
} writer_t;

static void flush(writer_t *w)
{
    if (w->rc == 0 && w->len > 0)
        w->rc = w->out(w->ud, w->buf, w->len);
    w->len = 0;
}

static void put(writer_t *w, const char *data, size_t len)
{
    while (len > 0 && w->rc == 0) {
        if (w->len == sizeof w->buf)
            flush(w);
        size_t n = sizeof w->buf - w->len < len ? sizeof w->buf - w->len : len;
        memcpy(w->buf + w->len, data, n);
        w->len += n;
        data += n;
        len -= n;
    }
}

static void puts_(writer_t *w, const char *s)
{
    put(w, s, strlen(s));
}

/* `s` escaped: backslash and newline always, the double quote in label values; invalid
 * UTF-8 as U+FFFD. Plain ASCII (nearly every value) is copied at once. */
static void put_escaped(writer_t *w, const char *s, bool quote)
{
    size_t len = strlen(s), plain = 0;
    while (plain < len && (unsigned char)s[plain] < 0x80 && s[plain] != '\\' && s[plain] != '\n' &&
           s[plain] != '"')
        plain++;
    put(w, s, plain);
    for (size_t i = plain; i < len;) {
        size_t n = sl__utf8_next(s + i, len - i);
        if (n == 0) {
            puts_(w, "\xEF\xBF\xBD");
            i++;
        } else if (s[i] == '\\') {
            puts_(w, "\\\\");
            i++;
        } else if (s[i] == '\n') {
            puts_(w, "\\n");
            i++;
        } else if (s[i] == '"' && quote) {
            puts_(w, "\\\"");
            i++;
        } else {
            put(w, s + i, n);
            i += n;
        }
    }
}

/* A sample value as Go's ParseFloat reads it: the shortest form that reads back. */
static void put_number(writer_t *w, double v)
{
    char text[40];
    if (isnan(v))
        snprintf(text, sizeof text, "NaN");
    else if (isinf(v))
        snprintf(text, sizeof text, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && v > -1e15 && v < 1e15) { /* counts: no printf */
        char *end = text + sizeof text, *p = end;
        uint64_t n = v < 0 ? (uint64_t) - (int64_t)v : (uint64_t)v;
        do
            *--p = (char)('0' + n % 10);
        while ((n /= 10) > 0);
        if (v < 0)
            *--p = '-';
        put(w, p, (size_t)(end - p));
        return;
    } else {
        snprintf(text, sizeof text, "%.15g", v);
        if (strtod(text, NULL) != v)
            snprintf(text, sizeof text, "%.17g", v);
    }
    puts_(w, text);
}

/* name{labels[,le="…"]} value\n */
static void put_sample(writer_t *w, const sl_metrics_family_t *f, const char *suffix,
                       const sl_metrics_series_t *s, const char *le, double value)
{
    puts_(w, f->name);
    puts_(w, suffix);
    if (f->label_count > 0 || le) {
        puts_(w, "{");
        for (size_t i = 0; i < f->label_count; i++) {
            puts_(w, i ? "," : "");
            puts_(w, f->labels[i]);
            puts_(w, "=\"");
            put_escaped(w, s->values[i], true);
            puts_(w, "\"");
        }
        if (le) {
            puts_(w, f->label_count ? ",le=\"" : "le=\"");
            puts_(w, le);
            puts_(w, "\"");
        }
        puts_(w, "}");
    }
    puts_(w, " ");
    put_number(w, value);
    puts_(w, "\n");
}

static void put_histogram(writer_t *w, const sl_metrics_family_t *f, const sl_metrics_series_t *s)
{
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= SL_METRICS_BUCKETS; b++) {
        cumulative += s->buckets[b];
        put_sample(w, f, "_bucket", s, bound_texts[b], (double)cumulative);
    }
    put_sample(w, f, "_sum", s, NULL, s->value);
    put_sample(w, f, "_count", s, NULL, (double)s->count);
}

static const char *const type_names[] = {
    [SL_METRICS_COUNTER] = "counter",
    [SL_METRICS_GAUGE] = "gauge",
    [SL_METRICS_HISTOGRAM] = "histogram",
};

static void put_family(writer_t *w, const sl_metrics_family_t *f)
{
    puts_(w, "# HELP ");
    puts_(w, f->name);
    puts_(w, " ");
    put_escaped(w, f->help, false);
    puts_(w, "\n# TYPE ");
    puts_(w, f->name);
    puts_(w, " ");
    puts_(w, type_names[f->type]);
    puts_(w, "\n");
    for (size_t i = 0; i < f->count && w->rc == 0; i++) {
        if (f->type == SL_METRICS_HISTOGRAM)
            put_histogram(w, f, f->series[i]);
        else
            put_sample(w, f, "", f->series[i], NULL, f->series[i]->value);
    }
}

int sl__metrics_write(const sl_metrics_t *m, sl_metrics_out_fn out, void *ud)
{
    if (m == NULL)
        return 0;
    writer_t *w = sl__malloc(sizeof(*w));
    if (w == NULL)
        return SL_ENOMEM;
    w->len = 0;
    w->out = out;
    w->ud = ud;
    w->rc = 0;
    for (size_t i = 0; i < m->count && w->rc == 0; i++)
        put_family(w, m->families[i]);
    flush(w);
    int rc = w->rc;
    sl__free(w);
    return rc;
}
