/*
 * expr/tmpl.h: the template's internals, shared by expr.c (building), lex.c
 * (the expression lexer) and eval.c (evaluation). Not for other modules.
 */
#ifndef SL_EXPR_TMPL_H
#define SL_EXPR_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "expr/expr.h"

typedef enum tmpl_kind {
    TMPL_VALUE, /* a literal value, no expression anywhere inside */
    TMPL_TEXT,  /* a scalar holding expressions: literal and expression parts */
    TMPL_LIST,
    TMPL_MAP
} tmpl_kind_t;

typedef struct tmpl_part {
    const char *text; /* literal text, or the expression's source; in sl_tmpl.text */
    size_t len;
    sl_mark_t mark;   /* expression parts: where `${{` is */
    bool expr;
} tmpl_part_t;

typedef struct tmpl_ref {
    char *step;
    sl_mark_t mark;
} tmpl_ref_t;

struct sl_tmpl {
    tmpl_kind_t kind;
    unsigned flags;
    sl_mark_t mark;
    sl_value_t *literal;    /* TMPL_VALUE */
    char *text;             /* TMPL_TEXT: own copy of the scalar */
    tmpl_part_t *parts;     /* TMPL_TEXT */
    size_t part_count;
    sl_tmpl_t **children;   /* TMPL_LIST, TMPL_MAP */
    sl_vstr_t **keys;       /* TMPL_MAP: shared by every map built from it */
    size_t child_count;
    tmpl_ref_t *refs;       /* step references made by this scalar's expressions */
    size_t ref_count;
    char *stream_ref;       /* set when the template is exactly `${{ steps.ID }}` */
};

/* ---- lexer (lex.c) ------------------------------------------------------ */

typedef enum lex_type {
    LEX_EOF,
    LEX_NAME,
    LEX_STRING, /* `text`/`len` are the raw contents between the quotes */
    LEX_NUMBER,
    LEX_PUNCT,  /* one character, in `punct` */
    LEX_ERROR   /* unterminated string or long bracket */
} lex_type_t;

typedef struct lex_token {
    lex_type_t type;
    const char *text;
    size_t len;
    char punct;
    bool escaped; /* a string holding backslash escapes */
} lex_token_t;

typedef struct lex_state {
    const char *src;
    size_t len;
    size_t pos;
    bool comments; /* skip `--` comments (off while looking for `}}`) */
} lex_state_t;

/** Reads the next token. */
void sl__expr_lex(lex_state_t *lx, lex_token_t *tok);

/**
 * Finds the `}}` closing an expression that starts at `src` (just past `${{`):
 * braces of table constructors nest, strings are skipped. Returns the offset
 * of the first `}`, or `len` when there is none.
 */
size_t sl__expr_find_end(const char *src, size_t len);

/** True when `src` mentions the identifier `item` or `index`. */
bool sl__expr_uses_item(const char *src, size_t len);
/** If `src` is exactly one step reference, its id (in `src`) and length. */
bool sl__expr_single_ref(const char *src, size_t len, const char **id, size_t *id_len);

#endif
