/*
 * A small Lua lexer, just enough to find where an expression ends, which
 * steps it references and whether it mentions `item` or `index`, without
 * being fooled by string literals or comments. Lua itself checks the syntax.
 */
#include <string.h>

#include "expr/tmpl.h"

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || is_digit(c);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* At `[`: the level of a long bracket `[==[` (number of `=`), or -1. */
static int long_bracket_level(const lex_state_t *lx, size_t at)
{
    size_t p = at + 1;
    while (p < lx->len && lx->src[p] == '=')
        p++;
    if (p < lx->len && lx->src[p] == '[')
        return (int)(p - at - 1);
    return -1;
}

/* Skips a long bracket of `level` starting at lx->pos; false when unterminated. */
static bool skip_long(lex_state_t *lx, int level, size_t *body, size_t *body_len)
{
    size_t p = lx->pos + (size_t)level + 2;
    *body = p;
    for (; p < lx->len; p++) {
        if (lx->src[p] != ']')
            continue;
        size_t q = p + 1;
        while (q < lx->len && lx->src[q] == '=')
            q++;
        if (q < lx->len && lx->src[q] == ']' && (int)(q - p - 1) == level) {
            *body_len = p - *body;
            lx->pos = q + 1;
            return true;
        }
    }
    lx->pos = lx->len;
    return false;
}

static void skip_space_and_comments(lex_state_t *lx)
{
    for (;;) {
        while (lx->pos < lx->len && is_space(lx->src[lx->pos]))
            lx->pos++;
        if (!lx->comments || lx->pos + 1 >= lx->len || lx->src[lx->pos] != '-' ||
            lx->src[lx->pos + 1] != '-')
            return;
        lx->pos += 2;
        int level = lx->pos < lx->len && lx->src[lx->pos] == '[' ? long_bracket_level(lx, lx->pos)
                                                                 : -1;
        if (level >= 0) {
            size_t body, body_len;
            skip_long(lx, level, &body, &body_len);
            continue;
        }
        while (lx->pos < lx->len && lx->src[lx->pos] != '\n')
            lx->pos++;
    }
}

static void lex_short_string(lex_state_t *lx, lex_token_t *tok)
{
    char quote = lx->src[lx->pos];
    size_t p = lx->pos + 1;
    tok->escaped = false;
    while (p < lx->len && lx->src[p] != quote && lx->src[p] != '\n') {
        if (lx->src[p] == '\\') {
            tok->escaped = true;
            p++;
        }
        p++;
    }
    if (p >= lx->len || lx->src[p] != quote) {
        tok->type = LEX_ERROR;
        lx->pos = lx->len;
        return;
    }
    tok->type = LEX_STRING;
    tok->text = lx->src + lx->pos + 1;
    tok->len = p - lx->pos - 1;
    lx->pos = p + 1;
}

static void lex_number(lex_state_t *lx, lex_token_t *tok)
{
    size_t p = lx->pos;
    bool hex = lx->pos + 1 < lx->len && lx->src[p] == '0' && (lx->src[p + 1] | 0x20) == 'x';
    while (p < lx->len) {
        char c = lx->src[p];
        char prev_low = p > lx->pos ? (char)(lx->src[p - 1] | 0x20) : 0;
        bool sign = (c == '+' || c == '-') && prev_low == (hex ? 'p' : 'e');
        if (!sign && !is_name_char(c) && c != '.')
            break;
        p++;
    }
    tok->type = LEX_NUMBER;
    tok->text = lx->src + lx->pos;
    tok->len = p - lx->pos;
    lx->pos = p;
}

void sl__expr_lex(lex_state_t *lx, lex_token_t *tok)
{
    memset(tok, 0, sizeof(*tok));
    skip_space_and_comments(lx);
    if (lx->pos >= lx->len) {
        tok->type = LEX_EOF;
        return;
    }
    const char *s = lx->src + lx->pos;
    if (is_name_start(*s)) {
        size_t p = lx->pos;
        while (p < lx->len && is_name_char(lx->src[p]))
            p++;
        tok->type = LEX_NAME;
        tok->text = s;
        tok->len = p - lx->pos;
        lx->pos = p;
    } else if (is_digit(*s) || (*s == '.' && lx->pos + 1 < lx->len && is_digit(s[1]))) {
        lex_number(lx, tok);
    } else if (*s == '"' || *s == '\'') {
        lex_short_string(lx, tok);
    } else if (*s == '[' && long_bracket_level(lx, lx->pos) >= 0) {
        size_t body = 0, body_len = 0;
        bool ok = skip_long(lx, long_bracket_level(lx, lx->pos), &body, &body_len);
        tok->type = ok ? LEX_STRING : LEX_ERROR;
        tok->text = lx->src + body;
        tok->len = body_len;
    } else {
        size_t n = 1; /* `..` and `...` are one token, so `a .. item` is not a field */
        while (*s == '.' && n < 3 && lx->pos + n < lx->len && s[n] == '.')
            n++;
        tok->type = LEX_PUNCT;
        tok->punct = *s;
        tok->text = s;
        tok->len = n;
        lx->pos += n;
    }
}

size_t sl__expr_find_end(const char *src, size_t len)
{
    lex_state_t lx = {src, len, 0, false};
    lex_token_t tok;
    int depth = 0;
    for (;;) {
        sl__expr_lex(&lx, &tok);
        if (tok.type == LEX_EOF)
            return len;
        if (tok.type == LEX_ERROR)
            break;
        if (tok.type != LEX_PUNCT)
            continue;
        size_t start = (size_t)(tok.text - src);
        if (tok.punct == '{') {
            depth++;
        } else if (tok.punct == '}') {
            if (depth == 0 && start + 1 < len && src[start + 1] == '}')
                return start;
            if (depth > 0)
                depth--;
        }
    }
    /* An unterminated string: take the first `}}` and let Lua report the string. */
    const char *end = NULL;
    for (size_t i = 0; i + 1 < len && end == NULL; i++)
        if (src[i] == '}' && src[i + 1] == '}')
            end = src + i;
    return end ? (size_t)(end - src) : len;
}

/* A name token that is a variable, not a field (`x.item`) or method (`x:item`). */
static bool is_variable(const lex_token_t *tok, const lex_token_t *prev, const char *name)
{
    size_t n = strlen(name);
    if (tok->type != LEX_NAME || tok->len != n || memcmp(tok->text, name, n) != 0)
        return false;
    return !(prev->type == LEX_PUNCT && prev->len == 1 &&
             (prev->punct == '.' || prev->punct == ':'));
}

/* After `steps`, reads `.ID` or `[ "ID" ]`; true and the id when it is one. */
static bool read_ref(lex_state_t *lx, const char **id, size_t *id_len)
{
    lex_token_t tok;
    sl__expr_lex(lx, &tok);
    if (tok.type == LEX_PUNCT && tok.punct == '.') {
        sl__expr_lex(lx, &tok);
        if (tok.type != LEX_NAME)
            return false;
        *id = tok.text;
        *id_len = tok.len;
        return true;
    }
    if (tok.type != LEX_PUNCT || tok.punct != '[')
        return false;
    sl__expr_lex(lx, &tok);
    if (tok.type != LEX_STRING || tok.escaped)
        return false;
    *id = tok.text;
    *id_len = tok.len;
    sl__expr_lex(lx, &tok);
    return tok.type == LEX_PUNCT && tok.punct == ']';
}

int sl__expr_scan_refs(const char *src, size_t len,
                       int (*fn)(void *ud, const char *id, size_t id_len), void *ud)
{
    return sl__expr_scan_fields(src, len, "steps", fn, ud);
}

int sl__expr_scan_fields(const char *src, size_t len, const char *root,
                         int (*fn)(void *ud, const char *id, size_t id_len), void *ud)
{
    lex_state_t lx = {src, len, 0, true};
    lex_token_t tok, prev = {.type = LEX_EOF};
    for (;;) {
        sl__expr_lex(&lx, &tok);
        if (tok.type == LEX_EOF || tok.type == LEX_ERROR)
            return 0;
        if (is_variable(&tok, &prev, root)) {
            size_t save = lx.pos;
            const char *id;
            size_t id_len;
            if (read_ref(&lx, &id, &id_len) && id_len > 0) {
                int rc = fn(ud, id, id_len);
                if (rc < 0)
                    return rc;
            } else {
                lx.pos = save;
            }
        }
        prev = tok;
    }
}

bool sl__expr_uses_item(const char *src, size_t len)
{
    lex_state_t lx = {src, len, 0, true};
    lex_token_t tok, prev = {.type = LEX_EOF};
    for (;;) {
        sl__expr_lex(&lx, &tok);
        if (tok.type == LEX_EOF || tok.type == LEX_ERROR)
            return false;
        if (is_variable(&tok, &prev, "item") || is_variable(&tok, &prev, "index"))
            return true;
        prev = tok;
    }
}

bool sl__expr_single_ref(const char *src, size_t len, const char **id, size_t *id_len)
{
    lex_state_t lx = {src, len, 0, true};
    lex_token_t tok, prev = {.type = LEX_EOF};
    sl__expr_lex(&lx, &tok);
    if (!is_variable(&tok, &prev, "steps") || !read_ref(&lx, id, id_len) || *id_len == 0)
        return false;
    sl__expr_lex(&lx, &tok);
    return tok.type == LEX_EOF;
}
