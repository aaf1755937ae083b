/*
 * loader/slurm: a step's `slurm:` settings (SPEC §7, docs/slurm.md), checked at load and
 * turned into the sbatch options the Slurm executor passes: a list of strings such as
 * "--partition=short", "--time=1:00:00", "--mem=4G", "--cpus-per-task=4", then `extra`.
 * Time and memory follow Slurm's own syntax, so a typo is a load error with its
 * FILE:LINE:COL rather than a refused submission minutes into a run.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "loader/internal.h"

#define SLURM_TEXT_MAX 256

/* Digits only, at least one and at most `max` of them; *out their value. */
static bool slurm_digits(const char *s, size_t len, size_t max, unsigned long *out)
{
    if (len == 0 || len > max)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Splits `s` at ':' into at most 3 fields of digits. */
static int slurm_clock(const char *s, unsigned long *f)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (n == 3 || !slurm_digits(p, len, 9, &f[n]))
            return -1;
        n++;
        if (colon == NULL)
            return n;
        p = colon + 1;
    }
}

/* Slurm's --time: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, or INFINITE/UNLIMITED. */
bool sl__loader_slurm_time_ok(const char *s)
{
    if (strcmp(s, "INFINITE") == 0 || strcmp(s, "UNLIMITED") == 0 || strcmp(s, "infinite") == 0 ||
        strcmp(s, "unlimited") == 0)
        return true;
    unsigned long f[3], days;
    const char *dash = strchr(s, '-');
    if (dash) {
        if (!slurm_digits(s, (size_t)(dash - s), 6, &days))
            return false;
        int n = slurm_clock(dash + 1, f);
        return n >= 1 && f[0] < 24 && (n < 2 || f[1] < 60) && (n < 3 || f[2] < 60);
    }
    int n = slurm_clock(s, f);
    if (n == 1)
        return f[0] > 0; /* minutes; 0 is not a limit */
    if (n == 2)
        return f[1] < 60;
    return n == 3 && f[1] < 60 && f[2] < 60;
}

/* Slurm's --mem: an integer with an optional K, M, G or T suffix (default M). */
bool sl__loader_slurm_mem_ok(const char *s)
{
    size_t len = strlen(s);
    unsigned long v;
    if (len > 0 && strchr("KMGTkmgt", s[len - 1]))
        len--;
    return slurm_digits(s, len, 12, &v);
}

/* A name Slurm takes as one token: letters, digits, `_ . - ,` (a list of partitions). */
static bool slurm_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > SLURM_TEXT_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-,", *s))
            return false;
    return true;
}

/* sbatch options sluice sets itself: `extra` may not change them. */
static const char *const slurm_reserved[] = {
    "--array", "--output",    "--error",  "--parsable",  "--job-name", "--wrap", "--chdir",
    "--wait",  "--test-only", "--export", "--open-mode", "--hold",     NULL};

static void slurm_extra_one(sl_loader_t *ld, const sl_node_t *item, sl_value_t *args)
{
    const char *text;
    if (!sl__loader_text(ld, item, "extra", &text))
        return;
    if (strncmp(text, "--", 2) != 0 || !isalpha((unsigned char)text[2]) ||
        strlen(text) > SLURM_TEXT_MAX || strpbrk(text, "\n\r")) {
        sl__loader_problem(ld, item->mark,
                           "'extra' items are long sbatch options such as "
                           "'--constraint=avx2', got '%s'",
                           text);
        return;
    }
    /* sbatch takes any unambiguous prefix of a long option: '--arr' is '--array'. */
    size_t name_len = strcspn(text, "=");
    for (size_t i = 0; slurm_reserved[i]; i++)
        if (strlen(slurm_reserved[i]) >= name_len &&
            strncmp(text, slurm_reserved[i], name_len) == 0) {
            bool whole = strlen(slurm_reserved[i]) == name_len;
            sl__loader_problem(ld, item->mark,
                               "'extra' may not set '%s'%s%.*s%s: sluice sets it for "
                               "its array jobs",
                               slurm_reserved[i], whole ? "" : " ('", whole ? 0 : (int)name_len,
                               text, whole ? "" : "' abbreviates it)");
            return;
        }
    if (sl_value_push(args, sl_value_cstring(text)) < 0)
        sl__loader_fail(ld, SL_ENOMEM);
}

static void slurm_extra(sl_loader_t *ld, const sl_node_t *node, sl_value_t *args)
{
    if (node->kind != SL_NODE_SEQ) {
        sl__loader_problem(ld, node->mark, "'extra' expects a list of sbatch options, found %s",
                           sl__loader_found(node));
        return;
    }
    for (size_t i = 0; i < node->count; i++)
        slurm_extra_one(ld, node->items[i], args);
}

static void slurm_option(sl_loader_t *ld, sl_value_t *args, const char *option, const char *v)
{
    char buf[SLURM_TEXT_MAX + 32];
    snprintf(buf, sizeof(buf), "--%s=%s", option, v);
    if (sl_value_push(args, sl_value_cstring(buf)) < 0)
        sl__loader_fail(ld, SL_ENOMEM);
}

/* One text field checked by `ok`; `what` describes the syntax expected. */
static void slurm_text_field(sl_loader_t *ld, const sl_node_t *map, const char *field,
                             const char *option, bool (*ok)(const char *), const char *what,
                             sl_value_t *args)
{
    const sl_node_t *value;
    const char *text;
    if (!sl__loader_entry(map, field, &value) || !sl__loader_string(ld, value, field, &text))
        return;
    if (strlen(text) > SLURM_TEXT_MAX || !ok(text)) {
        sl__loader_problem(ld, value->mark, "'%s' expects %s, got '%s'", field, what, text);
        return;
    }
    slurm_option(ld, args, option, text);
}

void sl__loader_slurm(sl_loader_t *ld, sl_step_t *step, const sl_node_t *node)
{
    static const char *const fields[] = {"partition", "time", "mem",   "cpus",
                                         "account",   "qos",  "extra", NULL};
    if (node->kind != SL_NODE_MAP) {
        sl__loader_problem(ld, node->mark, "'slurm' expects a map, found %s",
                           sl__loader_found(node));
        return;
    }
    sl__loader_check_fields(ld, node, fields);
    sl_value_t *args = sl_value_list();
    if (args == NULL) {
        sl__loader_fail(ld, SL_ENOMEM);
        return;
    }
    slurm_text_field(ld, node, "partition", "partition", slurm_name_ok, "a Slurm partition name",
                     args);
    slurm_text_field(ld, node, "time", "time", sl__loader_slurm_time_ok,
                     "a Slurm time limit (MINUTES, H:M:S, D-H:M:S or INFINITE)", args);
    slurm_text_field(ld, node, "mem", "mem", sl__loader_slurm_mem_ok,
                     "a Slurm memory size (an integer with an optional K, M, G or T suffix)", args);
    slurm_text_field(ld, node, "account", "account", slurm_name_ok, "a Slurm account name", args);
    slurm_text_field(ld, node, "qos", "qos", slurm_name_ok, "a Slurm QOS name", args);
    const sl_node_t *value;
    uint32_t cpus;
    if (sl__loader_entry(node, "cpus", &value) &&
        sl__loader_uint(ld, value, "cpus", 1, 4096, &cpus)) {
        char text[16];
        snprintf(text, sizeof(text), "%u", cpus);
        slurm_option(ld, args, "cpus-per-task", text);
    }
    if (sl__loader_entry(node, "extra", &value))
        slurm_extra(ld, value, args);
    sl_value_free(step->slurm);
    step->slurm = args;
}
