/* Time zones: TZif files read directly (no TZ environment changes). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cron/cron.h"
#include "util/util.h"

#define TZIF_BYTES_MAX (1024 * 1024)
#define TZ_NAME_MAX 255

static bool is_utc_name(const char *name)
{
    return strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0;
}

/* A zone name is relative, made of [A-Za-z0-9._+-] parts, none "." or "..". */
static bool name_is_safe(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > TZ_NAME_MAX || name[0] == '/')
        return false;
    const char *part = name;
    for (const char *s = name;; s++) {
        if (*s == '/' || *s == '\0') {
            size_t plen = (size_t)(s - part);
            if (plen == 0 || (plen == 1 && part[0] == '.') ||
                (plen == 2 && part[0] == '.' && part[1] == '.'))
                return false;
            if (*s == '\0')
                return true;
            part = s + 1;
            continue;
        }
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '+' || c == '-';
        if (!ok)
            return false;
    }
}

/* Reads the zone's TZif file, at most TZIF_BYTES_MAX bytes. */
static int read_zone_file(const char *name, unsigned char **out, size_t *out_len)
{
    const char *dir = getenv("TZDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/usr/share/zoneinfo";
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return SL_ENOENT;
    int rc = SL_ENOENT;
    unsigned char *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SL_ENOENT;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 44 ||
        st.st_size > TZIF_BYTES_MAX)
        goto out;
    size_t size = (size_t)st.st_size, got = 0;
    data = sl__malloc(size);
    if (data == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            goto out;
        got += (size_t)r;
    }
    if (memcmp(data, "TZif", 4) != 0)
        goto out;
    *out = data;
    *out_len = size;
    data = NULL;
    rc = 0;
out:
    sl__free(data);
    close(fd);
    return rc;
}

int sl__tz_check(const char *name)
{
    if (name == NULL)
        return SL_ENOENT;
    if (is_utc_name(name))
        return 0;
    sl_tz_t *tz = NULL;
    int rc = sl__tz_load(name, &tz);
    sl__tz_free(tz);
    return rc == SL_ENOMEM ? rc : rc < 0 ? SL_ENOENT : 0;
}

/* ---- POSIX TZ rule (the TZif footer) -------------------------------------- */

typedef struct rule_date {
    char kind;       /* 'M' month.week.day, 'J' Julian 1..365 (no Feb 29), 'N' 0..365 */
    int month, week, wday, day;
    int32_t time;    /* seconds after local midnight, may be negative or past 24h */
} rule_date_t;

typedef struct posix_rule {
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    bool has_dst;
    rule_date_t start, end;
} posix_rule_t;

struct sl_tz {
    int64_t *trans;      /* transition instants, ascending */
    uint8_t *trans_type; /* type in effect from each transition */
    size_t trans_count;
    int32_t *type_off;   /* UTC offset of each type */
    size_t type_count;
    bool has_rule;       /* times after the last transition follow `rule` */
    posix_rule_t rule;
};

/* Reads [+-]h[h[h]][:mm[:ss]] into seconds; hours up to `hours_max`. */
static const char *parse_hms(const char *s, int hours_max, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return NULL;
        int v = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) {
            v = v * 10 + (*s++ - '0');
            digits++;
        }
        part[i] = v;
    }
    if (part[0] > hours_max || part[1] > 59 || part[2] > 59)
        return NULL;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return s;
}

static const char *parse_zone_abbr(const char *s)
{
    if (*s == '<') {
        const char *close = strchr(s, '>');
        return close && close - s >= 2 ? close + 1 : NULL;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    return s - b >= 3 ? s : NULL;
}

static const char *parse_number_in(const char *s, int lo, int hi, int *out)
{
    if (*s < '0' || *s > '9')
        return NULL;
    int v = 0;
    while (*s >= '0' && *s <= '9' && v <= hi)
        v = v * 10 + (*s++ - '0');
    if (v < lo || v > hi)
        return NULL;
    *out = v;
    return s;
}

static const char *parse_rule_date(const char *s, rule_date_t *d)
{
    d->time = 7200;
    if (*s == 'M') {
        d->kind = 'M';
        if (!(s = parse_number_in(s + 1, 1, 12, &d->month)) || *s++ != '.' ||
            !(s = parse_number_in(s, 1, 5, &d->week)) || *s++ != '.' ||
            !(s = parse_number_in(s, 0, 6, &d->wday)))
            return NULL;
    } else if (*s == 'J') {
        d->kind = 'J';
        if (!(s = parse_number_in(s + 1, 1, 365, &d->day)))
            return NULL;
    } else {
        d->kind = 'N';
        if (!(s = parse_number_in(s, 0, 365, &d->day)))
            return NULL;
    }
    if (*s == '/')
        s = parse_hms(s + 1, 167, &d->time);
    return s;
}

static int parse_posix_rule(const char *s, posix_rule_t *r)
{
    int32_t west;
    memset(r, 0, sizeof *r);
    if (!(s = parse_zone_abbr(s)) || !(s = parse_hms(s, 24, &west)))
        return SL_EINVAL;
    r->std_off = -west;
    if (*s == '\0')
        return 0;
    if (!(s = parse_zone_abbr(s)))
        return SL_EINVAL;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if (!(s = parse_hms(s, 24, &west)))
            return SL_EINVAL;
        r->dst_off = -west;
    }
    if (*s == '\0') { /* POSIX's default: the US rules */
        r->start = (rule_date_t){'M', 3, 2, 0, 0, 7200};
        r->end = (rule_date_t){'M', 11, 1, 0, 0, 7200};
        return 0;
    }
    if (*s++ != ',' || !(s = parse_rule_date(s, &r->start)) || *s++ != ',' ||
        !(s = parse_rule_date(s, &r->end)) || *s != '\0')
        return SL_EINVAL;
    return 0;
}

static int weekday_of_days(int64_t days)
{
    int64_t w = (days + 4) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since the epoch of the rule's date in year y. */
static int64_t rule_day(const rule_date_t *d, int64_t y)
{
    int64_t jan1 = sl__time_days_from_civil(y, 1, 1);
    if (d->kind == 'J')
        return jan1 + d->day - 1 + (is_leap(y) && d->day >= 60 ? 1 : 0);
    if (d->kind == 'N')
        return jan1 + d->day;
    int64_t first = sl__time_days_from_civil(y, (unsigned)d->month, 1);
    int64_t day = first + (d->wday - weekday_of_days(first) + 7) % 7 + (d->week - 1) * 7;
    int64_t dim = sl__time_days_in_month(y, (unsigned)d->month);
    while (day >= first + dim)
        day -= 7;
    return day;
}

static int32_t rule_offset(const posix_rule_t *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    unsigned m, d;
    int64_t days = (t + r->std_off) / 86400 - ((t + r->std_off) % 86400 < 0 ? 1 : 0);
    sl__time_civil_from_days(days, &y, &m, &d);
    int64_t best = INT64_MIN;
    int32_t off = r->std_off;
    for (int64_t year = y - 1; year <= y + 1; year++) {
        int64_t start = rule_day(&r->start, year) * 86400 + r->start.time - r->std_off;
        int64_t end = rule_day(&r->end, year) * 86400 + r->end.time - r->dst_off;
        if (start <= t && start > best) {
            best = start;
            off = r->dst_off;
        }
        if (end <= t && end > best) {
            best = end;
            off = r->std_off;
        }
    }
    return off;
}

/* ---- TZif ------------------------------------------------------------------ */

typedef struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
} tzif_counts_t;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Reads a header at `p`; returns the size of the data block after it, or 0. */
static size_t tzif_header(const unsigned char *p, size_t avail, size_t time_size,
                          tzif_counts_t *c)
{
    if (avail < 44 || memcmp(p, "TZif", 4) != 0)
        return 0;
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->type == 0 || c->type > 256 || c->time > TZIF_BYTES_MAX || c->leap > TZIF_BYTES_MAX ||
        c->chars > TZIF_BYTES_MAX || c->isut > c->type || c->isstd > c->type)
        return 0;
    size_t size = (size_t)c->time * (time_size + 1) + (size_t)c->type * 6 + c->chars +
                  (size_t)c->leap * (time_size + 4) + c->isstd + c->isut;
    return size <= avail - 44 ? size : 0;
}

/* Copies transitions and types from the data block at `p`. */
static int tzif_block(sl_tz_t *tz, const unsigned char *p, size_t time_size,
                      const tzif_counts_t *c)
{
    tz->trans_count = c->time;
    tz->type_count = c->type;
    tz->trans = sl__calloc(c->time ? c->time : 1, sizeof *tz->trans);
    tz->trans_type = sl__calloc(c->time ? c->time : 1, 1);
    tz->type_off = sl__calloc(c->type, sizeof *tz->type_off);
    if (!tz->trans || !tz->trans_type || !tz->type_off)
        return SL_ENOMEM;
    for (size_t i = 0; i < c->time; i++) {
        const unsigned char *q = p + i * time_size;
        tz->trans[i] = time_size == 8 ? be64(q) : (int64_t)(int32_t)be32(q);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
            return SL_EINVAL;
    }
    p += (size_t)c->time * time_size;
    for (size_t i = 0; i < c->time; i++) {
        if (p[i] >= c->type)
            return SL_EINVAL;
        tz->trans_type[i] = p[i];
    }
    p += c->time;
    for (size_t i = 0; i < c->type; i++) {
        int32_t off = (int32_t)be32(p + i * 6);
        if (off < -25 * 3600 || off > 26 * 3600)
            return SL_EINVAL;
        tz->type_off[i] = off;
    }
    return 0;
}

/* The footer "\nRULE\n" after the v2+ block; an empty rule means none. */
static int tzif_footer(sl_tz_t *tz, const unsigned char *p, size_t avail)
{
    if (avail < 2 || p[0] != '\n')
        return 0; /* tolerated: no footer */
    const unsigned char *nl = memchr(p + 1, '\n', avail - 1);
    if (nl == NULL || nl == p + 1 || (size_t)(nl - p) > 256)
        return 0;
    char text[260];
    memcpy(text, p + 1, (size_t)(nl - p - 1));
    text[nl - p - 1] = '\0';
    if (parse_posix_rule(text, &tz->rule) < 0)
        return SL_EINVAL;
    tz->has_rule = true;
    return 0;
}

static int tzif_parse(sl_tz_t *tz, const unsigned char *data, size_t len)
{
    tzif_counts_t c;
    size_t v1 = tzif_header(data, len, 4, &c);
    if (v1 == 0)
        return SL_EINVAL;
    if (data[4] == '\0')
        return tzif_block(tz, data + 44, 4, &c);
    const unsigned char *h2 = data + 44 + v1;
    size_t avail = len - 44 - v1;
    size_t v2 = tzif_header(h2, avail, 8, &c);
    if (v2 == 0)
        return SL_EINVAL;
    int rc = tzif_block(tz, h2 + 44, 8, &c);
    if (rc < 0)
        return rc;
    return tzif_footer(tz, h2 + 44 + v2, avail - 44 - v2);
}

static int utc_zone(sl_tz_t *tz)
{
    tz->type_count = 1;
    tz->type_off = sl__calloc(1, sizeof *tz->type_off);
    return tz->type_off ? 0 : SL_ENOMEM;
}

int sl__tz_load(const char *name, sl_tz_t **out)
{
    *out = NULL;
    if (name == NULL || !name_is_safe(name))
        return SL_ENOENT;
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_zone_file(name, &data, &len);
    if (rc == SL_ENOMEM || (rc < 0 && !is_utc_name(name)))
        return rc;
    sl_tz_t *tz = sl__calloc(1, sizeof *tz);
    if (tz == NULL) {
        rc = SL_ENOMEM;
        goto out;
    }
    if (data == NULL)
        rc = utc_zone(tz);
    else if ((rc = tzif_parse(tz, data, len)) == SL_EINVAL)
        rc = SL_ENOENT;
    if (rc == 0) {
        *out = tz;
        tz = NULL;
    }
out:
    sl__tz_free(tz);
    sl__free(data);
    return rc;
}

void sl__tz_free(sl_tz_t *tz)
{
    if (tz == NULL)
        return;
    sl__free(tz->trans);
    sl__free(tz->trans_type);
    sl__free(tz->type_off);
    sl__free(tz);
}

int32_t sl__tz_offset(const sl_tz_t *tz, int64_t t)
{
    size_t n = tz->trans_count;
    if (n == 0)
        return tz->has_rule ? rule_offset(&tz->rule, t) : tz->type_off[0];
    if (t < tz->trans[0])
        return tz->type_off[0];
    if (t >= tz->trans[n - 1] && tz->has_rule)
        return rule_offset(&tz->rule, t);
    size_t lo = 0, hi = n; /* the last transition <= t is in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return tz->type_off[tz->trans_type[lo]];
}

/* Candidate offsets are those in effect a day either side of `wall`: a
 * wall time maps to one instant, two (repeated hour: the first wins) or none
 * (a gap: the transition instant ending it). */
int64_t sl__tz_from_wall(const sl_tz_t *tz, int64_t wall)
{
    int32_t cand[3] = {sl__tz_offset(tz, wall - 90000), sl__tz_offset(tz, wall),
                       sl__tz_offset(tz, wall + 90000)};
    int64_t best = INT64_MAX;
    int32_t off_min = cand[0], off_max = cand[0];
    for (int i = 0; i < 3; i++) {
        int64_t t = wall - cand[i];
        if (sl__tz_offset(tz, t) == cand[i] && t < best)
            best = t;
        off_min = cand[i] < off_min ? cand[i] : off_min;
        off_max = cand[i] > off_max ? cand[i] : off_max;
    }
    if (best != INT64_MAX)
        return best;
    int64_t lo = wall - off_max, hi = wall - off_min; /* local(lo) < wall < local(hi) */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + sl__tz_offset(tz, mid) > wall)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}
