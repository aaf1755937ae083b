/*
 * CSS selectors → XPath 1.0, for html.select.
 *
 * A small recursive-descent parser over the subset documented in
 * docs/workflow.md ("CSS selectors (html.select)"):
 *
 *   group     := selector (',' selector)*
 *   selector  := compound (combinator compound)*      combinator: ' ' or '>'
 *   compound  := [type | '*'] (#id | .class | [attr…] | :pseudo)*
 *
 * Each selector becomes a location path from the document node, and a group a
 * union of them, so libxml2 returns the matches in document order. A compound
 * becomes one step: `type[pred]…`, or, when it has structural pseudo-classes,
 * `*[positional test][self::type][pred]…`. The positional test is written with
 * position() and last() in the first predicate of a child step, which libxml2
 * evaluates in constant time per node, where count(preceding-sibling::*) would
 * be quadratic in the number of siblings.
 *
 * Element and attribute names are lowercased (the HTML parser lowercases
 * them); classes, ids and attribute values are compared as written.
 */
#include "css.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sluice/plugin.h"

/* Bound on the XPath text; a selector within CSS_SELECTOR_MAX_BYTES stays far below. */
#define XPATH_MAX_BYTES ((size_t)1 << 20)
/* Digits accepted in a number of :nth-child(an+b). */
#define NTH_DIGITS_MAX 9

typedef struct css_buf {
    char *data;
    size_t len;
    size_t cap;
} css_buf_t;

typedef struct css_parser {
    const char *src;
    size_t len;
    size_t pos;
    css_buf_t xpath; /* the translation so far */
    char *err;
    size_t err_size;
} css_parser_t;

/* One compound selector being translated. */
typedef struct css_compound {
    char type[128];     /* lowercased type name; "" for none or '*' */
    css_buf_t position; /* conditions on position()/last(), joined with " and " */
    css_buf_t preds;    /* the other predicates, each "[…]" */
} css_compound_t;

/* ---- buffers -------------------------------------------------------------- */

static int buf_add(css_buf_t *buf, const char *s, size_t n)
{
    if (n > XPATH_MAX_BYTES - buf->len)
        return SL_ELIMIT;
    if (buf->len + n + 1 > buf->cap) {
        size_t cap = buf->cap != 0 ? buf->cap : 128;
        while (cap < buf->len + n + 1)
            cap *= 2;
        char *data = realloc(buf->data, cap);
        if (data == NULL)
            return SL_ENOMEM;
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, s, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return 0;
}

static int buf_str(css_buf_t *buf, const char *s)
{
    return buf_add(buf, s, strlen(s));
}

static int buf_fmt(css_buf_t *buf, const char *fmt, ...) SL_PRINTF(2, 3);
static int buf_fmt(css_buf_t *buf, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return SL_EINTERNAL;
    return buf_add(buf, tmp, (size_t)n);
}

/* Appends `s` as an XPath string literal (XPath 1.0 has no escapes). */
static int buf_literal(css_buf_t *buf, const char *s, size_t n)
{
    if (memchr(s, '\'', n) == NULL) {
        int rc = buf_add(buf, "'", 1);
        rc = rc != 0 ? rc : buf_add(buf, s, n);
        return rc != 0 ? rc : buf_add(buf, "'", 1);
    }
    if (memchr(s, '"', n) == NULL) {
        int rc = buf_add(buf, "\"", 1);
        rc = rc != 0 ? rc : buf_add(buf, s, n);
        return rc != 0 ? rc : buf_add(buf, "\"", 1);
    }
    /* Both quotes: concat('…', "'", '…'). */
    int rc = buf_str(buf, "concat(''");
    size_t start = 0;
    for (size_t i = 0; rc == 0 && i <= n; i++) {
        if (i < n && s[i] != '\'')
            continue;
        if (i > start) {
            rc = buf_str(buf, ", '");
            rc = rc != 0 ? rc : buf_add(buf, s + start, i - start);
            rc = rc != 0 ? rc : buf_str(buf, "'");
        }
        if (rc == 0 && i < n)
            rc = buf_str(buf, ", \"'\"");
        start = i + 1;
    }
    return rc != 0 ? rc : buf_str(buf, ")");
}

/* ---- errors --------------------------------------------------------------- */

/* "invalid CSS at N in 'S': WHAT": malformed input. */
static int invalid(css_parser_t *p, size_t at, const char *what)
{
    snprintf(p->err, p->err_size, "invalid CSS at %zu in '%.*s': %s", at + 1, (int)p->len, p->src,
             what);
    return SL_EINVAL;
}

/* "unsupported CSS at N in 'S': 'TOKEN' (supported: …)": valid CSS outside the subset. */
static int unsupported(css_parser_t *p, size_t at, size_t token_len)
{
    snprintf(p->err, p->err_size, "unsupported CSS at %zu in '%.*s': '%.*s' (%s)", at + 1,
             (int)p->len, p->src, (int)token_len, p->src + at, CSS_SUPPORTED);
    return SL_EINVAL;
}

/* ---- lexing --------------------------------------------------------------- */

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int tolower_ascii(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Characters of a class or id: ASCII name characters and any non-ASCII byte. */
static int is_ident(int c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c >= 0x80;
}

/* Element and attribute names: ASCII only, as the HTML parser knows them. */
static int is_name_start(int c)
{
    return is_alpha(c) || c == '_';
}

static int is_name(int c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-';
}

static int peek(const css_parser_t *p)
{
    return p->pos < p->len ? (unsigned char)p->src[p->pos] : -1;
}

static int peek_at(const css_parser_t *p, size_t ahead)
{
    return p->pos + ahead < p->len ? (unsigned char)p->src[p->pos + ahead] : -1;
}

static int skip_space(css_parser_t *p)
{
    size_t start = p->pos;
    while (is_space(peek(p)))
        p->pos++;
    return p->pos > start;
}

/* Length of the run of characters accepted by `accept` at the current position. */
static size_t span(const css_parser_t *p, int (*accept)(int))
{
    size_t n = 0;
    while (p->pos + n < p->len && accept((unsigned char)p->src[p->pos + n]))
        n++;
    return n;
}

/* Length of the token shown for an unsupported construct at `at`. */
static size_t token_length(const css_parser_t *p, size_t at)
{
    size_t n = 1;
    while (at + n < p->len && p->src[at + n] == ':' && n < 2)
        n++;
    if (p->src[at] == ':') {
        while (at + n < p->len && is_ident((unsigned char)p->src[at + n]))
            n++;
        if (at + n < p->len && p->src[at + n] == '(')
            n++;
    } else if ((unsigned char)p->src[at] >= 0x80) {
        while (at + n < p->len && ((unsigned char)p->src[at + n] & 0xc0) == 0x80)
            n++;
    }
    return n;
}

/* ---- :nth-child(an+b) ----------------------------------------------------- */

static int parse_number(css_parser_t *p, long *out)
{
    size_t digits = span(p, is_digit);
    if (digits == 0)
        return invalid(p, p->pos, "expected a number in :nth-child()");
    if (digits > NTH_DIGITS_MAX)
        return invalid(p, p->pos, "number too large in :nth-child()");
    long value = 0;
    for (size_t i = 0; i < digits; i++)
        value = value * 10 + (p->src[p->pos + i] - '0');
    p->pos += digits;
    *out = value;
    return 0;
}

static int word_is(const css_parser_t *p, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(p->src + p->pos, word, n) == 0;
}

/* Parses "odd", "even", "b", "an", "an+b" (signs and spaces as in CSS) up to ')'. */
static int parse_nth(css_parser_t *p, long *a, long *b)
{
    skip_space(p);
    size_t word = span(p, is_alpha);
    if (word_is(p, word, "odd") || word_is(p, word, "even")) {
        *a = 2;
        *b = word == 3 ? 1 : 0;
        p->pos += word;
    } else {
        long sign = 1;
        if (peek(p) == '+' || peek(p) == '-')
            sign = p->src[p->pos++] == '-' ? -1 : 1;
        long number = 1;
        int has_number = is_digit(peek(p));
        if (has_number && parse_number(p, &number) != 0)
            return SL_EINVAL;
        if (peek(p) == 'n' || peek(p) == 'N') {
            p->pos++;
            *a = sign * number;
            *b = 0;
            skip_space(p);
            if (peek(p) == '+' || peek(p) == '-') {
                long sign_b = p->src[p->pos++] == '-' ? -1 : 1;
                skip_space(p);
                if (parse_number(p, b) != 0)
                    return SL_EINVAL;
                *b *= sign_b;
            }
        } else if (has_number) {
            *a = 0;
            *b = sign * number;
        } else {
            return invalid(p, p->pos, "expected odd, even or an+b in :nth-child()");
        }
    }
    skip_space(p);
    if (peek(p) != ')')
        return invalid(p, p->pos, "expected ')' after the :nth-child() argument");
    p->pos++;
    return 0;
}

/* Adds to `cond` the test that position `pos_expr` is a*n+b for some n >= 0. */
static int nth_condition(css_buf_t *cond, const char *pos_expr, long a, long b)
{
    int rc = cond->len > 0 ? buf_str(cond, " and ") : 0;
    if (rc != 0)
        return rc;
    if (a == 0)
        return b < 1 ? buf_str(cond, "false()") : buf_fmt(cond, "%s = %ld", pos_expr, b);
    if (a < 0) {
        if (b < 1)
            return buf_str(cond, "false()");
        rc = buf_fmt(cond, "%s <= %ld", pos_expr, b);
        if (rc == 0 && a < -1)
            rc = buf_fmt(cond, " and (%ld - %s) mod %ld = 0", b, pos_expr, -a);
        return rc;
    }
    /* a > 0: the smallest positive member of b + a*n, n >= 0, is b itself when b >= 1. */
    if (b < 1)
        b = ((b - 1) % a + a) % a + 1;
    if (b == 1 && a == 1)
        return buf_str(cond, "true()");
    if (b > 1)
        rc = buf_fmt(cond, "%s >= %ld", pos_expr, b);
    if (rc == 0 && a > 1)
        rc = buf_fmt(cond, "%s(%s - %ld) mod %ld = 0", b > 1 ? " and " : "", pos_expr, b, a);
    return rc;
}

/* ---- simple selectors ----------------------------------------------------- */

static int parse_pseudo(css_parser_t *p, css_compound_t *c)
{
    size_t at = p->pos++; /* ':' */
    if (peek(p) == ':')
        return unsupported(p, at, token_length(p, at));
    size_t n = span(p, is_ident);
    static const char *const positional[] = {"first-child", "last-child", "only-child"};
    static const char *const tests[] = {"position() = 1", "position() = last()",
                                        "position() = 1 and last() = 1"};
    for (size_t i = 0; i < sizeof(positional) / sizeof(positional[0]); i++) {
        if (word_is(p, n, positional[i])) {
            p->pos += n;
            int rc = c->position.len > 0 ? buf_str(&c->position, " and ") : 0;
            return rc != 0 ? rc : buf_str(&c->position, tests[i]);
        }
    }
    const char *pos_expr = NULL;
    if (word_is(p, n, "nth-child"))
        pos_expr = "position()";
    else if (word_is(p, n, "nth-last-child"))
        pos_expr = "(last() - position() + 1)";
    if (pos_expr == NULL || peek_at(p, n) != '(')
        return unsupported(p, at, token_length(p, at));
    p->pos += n + 1;
    long a = 0, b = 0;
    int rc = parse_nth(p, &a, &b);
    return rc != 0 ? rc : nth_condition(&c->position, pos_expr, a, b);
}

/* An attribute value: quoted (no escapes) or a bare identifier. */
static int parse_attr_value(css_parser_t *p, const char **value, size_t *value_len)
{
    int quote = peek(p);
    if (quote == '"' || quote == '\'') {
        size_t start = ++p->pos;
        while (p->pos < p->len && p->src[p->pos] != quote) {
            if (p->src[p->pos] == '\\')
                return unsupported(p, p->pos, 1);
            p->pos++;
        }
        if (p->pos >= p->len)
            return invalid(p, start - 1, "unterminated string");
        *value = p->src + start;
        *value_len = p->pos - start;
        p->pos++;
        return 0;
    }
    size_t n = span(p, is_ident);
    if (n == 0) {
        if (peek(p) == '\\')
            return unsupported(p, p->pos, 1);
        return invalid(p, p->pos, "expected a value after the operator");
    }
    *value = p->src + p->pos;
    *value_len = n;
    p->pos += n;
    return 0;
}

/* Writes the predicate of [name OP value]. */
static int attr_predicate(css_buf_t *out, const char *name, char op, const char *value, size_t n)
{
    int rc = 0;
    int contains_space = 0;
    for (size_t i = 0; i < n; i++)
        contains_space |= is_space((unsigned char)value[i]);
    if (op != '=' && op != '|' && (n == 0 || (op == '~' && contains_space)))
        return buf_str(out, "[false()]"); /* as CSS says: these never match */
    switch (op) {
    case '=':
        rc = buf_fmt(out, "[@%s = ", name);
        break;
    case '~':
        rc = buf_fmt(out, "[contains(concat(' ', normalize-space(@%s), ' '), concat(' ', ", name);
        break;
    case '|':
        rc = buf_fmt(out, "[@%s = ", name);
        rc = rc != 0 ? rc : buf_literal(out, value, n);
        rc = rc != 0 ? rc : buf_fmt(out, " or starts-with(@%s, concat(", name);
        break;
    case '^':
        rc = buf_fmt(out, "[starts-with(@%s, ", name);
        break;
    case '$':
        rc = buf_fmt(out, "[substring(@%s, string-length(@%s) - string-length(", name, name);
        rc = rc != 0 ? rc : buf_literal(out, value, n);
        rc = rc != 0 ? rc : buf_str(out, ") + 1) = ");
        break;
    default: /* '*' */
        rc = buf_fmt(out, "[contains(@%s, ", name);
        break;
    }
    rc = rc != 0 ? rc : buf_literal(out, value, n);
    if (rc != 0)
        return rc;
    switch (op) {
    case '~':
        return buf_str(out, ", ' '))]");
    case '|':
        return buf_str(out, ", '-'))]");
    case '^':
    case '*':
        return buf_str(out, ")]");
    default:
        return buf_str(out, "]");
    }
}

static int parse_attr(css_parser_t *p, css_compound_t *c)
{
    size_t open = p->pos++; /* '[' */
    skip_space(p);
    size_t n = span(p, is_name);
    if (n == 0 || !is_name_start(peek(p))) {
        if (peek(p) == '|' || peek(p) == '*' || peek(p) == '\\')
            return unsupported(p, p->pos, 1);
        return invalid(p, p->pos, "expected an attribute name after '['");
    }
    char name[128];
    if (n >= sizeof(name))
        return invalid(p, p->pos, "attribute name too long");
    for (size_t i = 0; i < n; i++)
        name[i] = (char)tolower_ascii(p->src[p->pos + i]);
    name[n] = '\0';
    p->pos += n;
    skip_space(p);
    if (peek(p) == ']') {
        p->pos++;
        return buf_fmt(&c->preds, "[@%s]", name);
    }
    char op = (char)peek(p);
    if (op == '=') {
        p->pos++;
    } else if (op != '\0' && strchr("~|^$*", op) != NULL && peek_at(p, 1) == '=') {
        p->pos += 2;
    } else if (p->pos >= p->len) {
        return invalid(p, open, "unterminated '['");
    } else {
        return invalid(p, p->pos, "expected ']' or an operator (=, ~=, |=, ^=, $=, *=)");
    }
    skip_space(p);
    const char *value = NULL;
    size_t value_len = 0;
    int rc = parse_attr_value(p, &value, &value_len);
    if (rc != 0)
        return rc;
    skip_space(p);
    if (is_alpha(peek(p)))
        return unsupported(p, p->pos, span(p, is_ident)); /* [a=b i] */
    if (peek(p) != ']')
        return p->pos >= p->len ? invalid(p, open, "unterminated '['")
                                : invalid(p, p->pos, "expected ']'");
    p->pos++;
    return attr_predicate(&c->preds, name, op, value, value_len);
}

/* #id or .class */
static int parse_id_or_class(css_parser_t *p, css_compound_t *c)
{
    int hash = peek(p) == '#';
    p->pos++;
    size_t n = span(p, is_ident);
    if (n == 0) {
        if (peek(p) == '\\')
            return unsupported(p, p->pos, 1);
        return invalid(p, p->pos, hash ? "expected a name after '#'" : "expected a name after '.'");
    }
    int rc = buf_str(&c->preds,
                     hash ? "[@id = " : "[contains(concat(' ', normalize-space(@class), ' '), ' ");
    if (hash)
        rc = rc != 0 ? rc : buf_literal(&c->preds, p->src + p->pos, n);
    else
        rc = rc != 0 ? rc : buf_add(&c->preds, p->src + p->pos, n);
    rc = rc != 0 ? rc : buf_str(&c->preds, hash ? "]" : " ')]");
    p->pos += n;
    return rc;
}

/* ---- compounds, selectors, groups ----------------------------------------- */

/* Writes the step of a parsed compound: `type[…]` or `*[positional][self::type][…]`. */
static int emit_compound(css_parser_t *p, const css_compound_t *c)
{
    const char *type = c->type[0] != '\0' ? c->type : "*";
    int rc;
    if (c->position.len > 0) {
        rc = buf_str(&p->xpath, "*[");
        rc = rc != 0 ? rc : buf_add(&p->xpath, c->position.data, c->position.len);
        rc = rc != 0 ? rc : buf_str(&p->xpath, "]");
        if (rc == 0 && c->type[0] != '\0')
            rc = buf_fmt(&p->xpath, "[self::%s]", c->type);
    } else {
        rc = buf_str(&p->xpath, type);
    }
    if (rc == 0 && c->preds.len > 0)
        rc = buf_add(&p->xpath, c->preds.data, c->preds.len);
    return rc;
}

static int parse_simple_selectors(css_parser_t *p, css_compound_t *c)
{
    for (;;) {
        int ch = peek(p), rc;
        if (ch == '#' || ch == '.')
            rc = parse_id_or_class(p, c);
        else if (ch == '[')
            rc = parse_attr(p, c);
        else if (ch == ':')
            rc = parse_pseudo(p, c);
        else
            return 0;
        if (rc != 0)
            return rc;
    }
}

static int parse_compound(css_parser_t *p)
{
    css_compound_t c = {.type = ""};
    size_t start = p->pos;
    int rc = 0;
    if (peek(p) == '*') {
        p->pos++;
        if (peek(p) == '|')
            rc = unsupported(p, p->pos, 1); /* *|name */
    } else if (is_name_start(peek(p))) {
        size_t n = span(p, is_name);
        if (n >= sizeof(c.type))
            return invalid(p, p->pos, "element name too long");
        for (size_t i = 0; i < n; i++)
            c.type[i] = (char)tolower_ascii(p->src[p->pos + i]);
        c.type[n] = '\0';
        p->pos += n;
        if (peek(p) == '|' || peek(p) == '\\')
            rc = unsupported(p, p->pos, 1);
    }
    if (rc == 0)
        rc = parse_simple_selectors(p, &c);
    if (rc == 0 && p->pos == start) {
        int ch = peek(p);
        if (ch < 0 || ch == ',' || ch == '>')
            rc = invalid(p, p->pos,
                         ch < 0 && p->pos > 0 ? "expected a selector at the end"
                                              : "expected a selector");
        else if (is_space(ch))
            rc = invalid(p, p->pos, "expected a selector");
        else
            rc = unsupported(p, p->pos, token_length(p, p->pos));
    }
    if (rc == 0)
        rc = emit_compound(p, &c);
    free(c.position.data);
    free(c.preds.data);
    return rc;
}

/* Whether the character can begin a compound selector. */
static int starts_compound(int ch)
{
    return ch == '*' || ch == '#' || ch == '.' || ch == '[' || ch == ':' || is_name_start(ch);
}

static int parse_selector(css_parser_t *p)
{
    int rc = buf_str(&p->xpath, "//");
    rc = rc != 0 ? rc : parse_compound(p);
    while (rc == 0) {
        int spaced = skip_space(p);
        int ch = peek(p);
        if (ch < 0 || ch == ',')
            return 0;
        if (ch == '>') {
            p->pos++;
            skip_space(p);
            rc = buf_str(&p->xpath, "/");
        } else if (spaced && starts_compound(ch)) {
            rc = buf_str(&p->xpath, "//");
        } else {
            return unsupported(p, p->pos, token_length(p, p->pos));
        }
        rc = rc != 0 ? rc : parse_compound(p);
    }
    return rc;
}

int html_css_to_xpath(const char *css, size_t len, char **out, char *err, size_t err_size)
{
    css_parser_t p = {.src = css, .len = len, .err = err, .err_size = err_size};
    *out = NULL;
    if (err_size > 0)
        err[0] = '\0';
    if (len > CSS_SELECTOR_MAX_BYTES) {
        snprintf(err, err_size, "CSS selector longer than %d bytes", CSS_SELECTOR_MAX_BYTES);
        return SL_ELIMIT;
    }
    if (memchr(css, '\0', len) != NULL) {
        snprintf(err, err_size, "CSS selector contains a NUL byte");
        return SL_EINVAL;
    }
    int rc = 0;
    for (;;) {
        skip_space(&p);
        rc = parse_selector(&p);
        if (rc != 0 || p.pos >= p.len)
            break;
        p.pos++; /* ',' */
        rc = buf_str(&p.xpath, " | ");
        if (rc != 0)
            break;
    }
    if (rc == SL_ENOMEM || rc == SL_ELIMIT || rc == SL_EINTERNAL) {
        snprintf(err, err_size, "%s while translating CSS '%.*s'",
                 rc == SL_ENOMEM ? "out of memory" : "selector too complex", (int)len, css);
    }
    if (rc != 0) {
        free(p.xpath.data);
        return rc;
    }
    *out = p.xpath.data;
    return 0;
}
