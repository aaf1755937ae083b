/*
 * The sandbox's pattern matcher (see pattern.h), from the Lua 5.4 reference manual §6.4.1.
 *
 * Compiling walks the pattern once and emits a node per item: a literal run, a single
 * character class with its quantifier, a capture opening or closing, %b, %f, a
 * back-reference, the final '$', and at the end either a success node or an error node
 * where Lua would stop with a pattern error. Every class and set becomes a 256-bit
 * bitmap, so testing a character is one lookup.
 *
 * Running keeps its choice points (quantified items still able to give or take a
 * character) on a fixed stack instead of recursing in C. Lua's own matcher recurses for
 * each capture item and each choice point and gives up with "pattern too complex" at a
 * depth of 200; the same depth is counted here (captures before a node are known when
 * compiling) so the same patterns fail. Every node visited and every backtrack is one
 * step of the budget; scans (runs of a class, %b, back-references, skipping to a
 * possible start) are charged per bytes scanned.
 */
#include "vm/pattern.h"

#include <ctype.h>
#include <lauxlib.h>
#include <pthread.h>
#include <string.h>

#include "vm/vm.h"

#define PATTERN_DEPTH_MAX 200          /* Lua's MAXCCALLS: nesting that is "too complex" */
#define PATTERN_CREDIT_CHUNK 4096      /* steps taken from the budget at a time */
#define PATTERN_SCAN_BYTES 32          /* bytes scanned that count as one step */
#define PATTERN_FIND_WINDOW (1u << 20) /* literal search: bytes scanned between charges */

enum {
    OP_END,      /* success */
    OP_EOS,      /* '$' at the end: only at the end of the subject */
    OP_LITERAL,  /* a run of plain characters */
    OP_CHAR,     /* one character, with a quantifier */
    OP_ANY,      /* '.' */
    OP_SET,      /* a class or set: bitmap */
    OP_OPEN,     /* '(' */
    OP_POSITION, /* '()' */
    OP_CLOSE,    /* ')' */
    OP_BALANCE,  /* %bxy */
    OP_FRONTIER, /* %f[set] */
    OP_BACKREF,  /* %1-%9 */
    OP_ERROR,    /* a malformed pattern, reported when reached */
};

enum {
    ERR_ENDS_WITH_ESCAPE,
    ERR_MISSING_BRACKET,
    ERR_BALANCE_ARGUMENTS,
    ERR_FRONTIER_BRACKET,
    ERR_CAPTURE_INDEX,
    ERR_PATTERN_CAPTURE,
    ERR_TOO_MANY_CAPTURES,
};

/* ---- character classes ----------------------------------------------------- */

/* Bitmaps of %a %c %d %g %l %p %s %u %w %x %z by letter, and of their complements by the
 * upper-case letter; letters that are no class stay empty. Built once, from <ctype.h>. */
static uint8_t class_bitmaps[128][32];
static bool class_known[128];
static pthread_once_t class_once = PTHREAD_ONCE_INIT;

static bool class_member(int letter, int c)
{
    switch (letter) {
    case 'a':
        return isalpha(c);
    case 'c':
        return iscntrl(c);
    case 'd':
        return isdigit(c);
    case 'g':
        return isgraph(c);
    case 'l':
        return islower(c);
    case 'p':
        return ispunct(c);
    case 's':
        return isspace(c);
    case 'u':
        return isupper(c);
    case 'w':
        return isalnum(c);
    case 'x':
        return isxdigit(c);
    default:
        return c == 0; /* 'z', deprecated but still in Lua 5.4 */
    }
}

static void class_build(void)
{
    static const char letters[] = "acdglpsuwxz";
    for (const char *l = letters; *l; l++) {
        int lower = *l, upper = toupper(lower);
        class_known[lower] = class_known[upper] = true;
        for (int c = 0; c < 256; c++) {
            bool in = class_member(lower, c);
            uint8_t bit = (uint8_t)(1u << (c & 7));
            if (in)
                class_bitmaps[lower][c >> 3] |= bit;
            else
                class_bitmaps[upper][c >> 3] |= bit;
        }
    }
}

/* The bitmap of class letter `letter`, or NULL when `%letter` is the letter itself. */
static const uint8_t *class_of(uint8_t letter)
{
    pthread_once(&class_once, class_build);
    return letter < 128 && class_known[letter] ? class_bitmaps[letter] : NULL;
}

static inline bool bit_test(const uint8_t *set, uint8_t c)
{
    return (set[c >> 3] >> (c & 7)) & 1;
}

static void bit_set(uint8_t *set, uint8_t c)
{
    set[c >> 3] |= (uint8_t)(1u << (c & 7));
}

/* ---- compiling --------------------------------------------------------------- */

typedef struct compiler {
    sl_pattern_t *pat;
    const uint8_t *p;
    size_t length, at;
    uint32_t node_room, set_room;
    int level;                          /* captures opened so far */
    bool open[SL_PATTERN_CAPTURES_MAX]; /* still unfinished */
    uint8_t nest;                       /* capture items so far */
    sl_pattern_node_t scratch;          /* where nodes past the room go (counting) */
    uint32_t literal_node;              /* the last literal run node ... */
    size_t literal_end;                 /* ... and where it ends in the pattern */
} compiler_t;

static sl_pattern_node_t *emit(compiler_t *c, uint8_t op)
{
    sl_pattern_t *pat = c->pat;
    sl_pattern_node_t *n =
        pat->node_count < c->node_room ? &pat->nodes[pat->node_count] : &c->scratch;
    pat->node_count++;
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->nest = c->nest;
    return n;
}

static void emit_error(compiler_t *c, uint8_t code, uint8_t index)
{
    sl_pattern_node_t *n = emit(c, OP_ERROR);
    n->arg = code;
    n->offset = index;
}

/* The end of the set starting with '[' at `open` (the index of its ']'), or 0 when it
 * has none. The first character after '[' or '[^' is always part of the set, and '%'
 * takes the next character with it. */
static size_t set_end(const compiler_t *c, size_t open)
{
    size_t q = open + 1;
    if (q < c->length && c->p[q] == '^')
        q++;
    do {
        if (q >= c->length)
            return 0;
        if (c->p[q++] == '%' && q < c->length)
            q++;
    } while (q >= c->length || c->p[q] != ']');
    return q;
}

/* Fills the bitmap of the set between '[' at `open` and ']' at `close`. */
static void set_fill(const compiler_t *c, size_t open, size_t close, uint8_t *set)
{
    const uint8_t *p = c->p;
    size_t q = open;
    bool negated = p[open + 1] == '^';
    if (negated)
        q++;
    memset(set, 0, 32);
    while (++q < close) {
        if (p[q] == '%') {
            q++;
            const uint8_t *cls = class_of(p[q]);
            if (cls)
                for (int i = 0; i < 32; i++)
                    set[i] |= cls[i];
            else
                bit_set(set, p[q]);
        } else if (p[q + 1] == '-' && q + 2 < close) {
            for (unsigned ch = p[q]; ch <= p[q + 2]; ch++)
                bit_set(set, (uint8_t)ch);
            q += 2;
        } else {
            bit_set(set, p[q]);
        }
    }
    if (negated)
        for (int i = 0; i < 32; i++)
            set[i] = (uint8_t)~set[i];
}

/* A set's bitmap in the pattern's storage (or nowhere, while counting). */
static const uint8_t *set_store(compiler_t *c, size_t open, size_t close)
{
    sl_pattern_t *pat = c->pat;
    uint32_t index = pat->set_count++;
    if (index >= c->set_room)
        return NULL;
    set_fill(c, open, close, pat->sets[index]);
    return pat->sets[index];
}

/* A single-character item at c->at, then its quantifier. False after an error node. */
static bool compile_single(compiler_t *c)
{
    const uint8_t *p = c->p;
    size_t at = c->at, next = at + 1;
    uint8_t op = OP_CHAR, arg = p[at];
    const uint8_t *set = NULL;
    if (p[at] == '%') {
        if (at + 1 >= c->length) {
            emit_error(c, ERR_ENDS_WITH_ESCAPE, 0);
            return false;
        }
        arg = p[at + 1];
        set = class_of(arg);
        op = set ? OP_SET : OP_CHAR;
        next = at + 2;
    } else if (p[at] == '[') {
        size_t close = set_end(c, at);
        if (close == 0) {
            emit_error(c, ERR_MISSING_BRACKET, 0);
            return false;
        }
        op = OP_SET;
        set = set_store(c, at, close);
        next = close + 1;
    } else if (p[at] == '.') {
        op = OP_ANY;
    }
    uint8_t quant = 0;
    if (next < c->length && strchr("?*+-", p[next]) && p[next] != '\0')
        quant = p[next++];
    sl_pattern_t *pat = c->pat;
    bool literal = op == OP_CHAR && quant == 0 && p[at] != '%';
    if (literal && c->literal_end == at && c->literal_node + 1 == pat->node_count) {
        /* a plain character right after a literal run: extend the run */
        if (c->literal_node < c->node_room)
            pat->nodes[c->literal_node].u.length++;
        c->literal_end = at + 1;
    } else if (literal) {
        c->literal_node = pat->node_count;
        c->literal_end = at + 1;
        sl_pattern_node_t *n = emit(c, OP_LITERAL);
        n->offset = (uint32_t)at;
        n->u.length = 1;
    } else {
        sl_pattern_node_t *n = emit(c, op);
        n->quant = quant;
        n->arg = arg;
        n->u.set = set;
    }
    c->at = next;
    return true;
}

/* '(' or '()' at c->at. False after an error node. */
static bool compile_open(compiler_t *c)
{
    if (c->level >= SL_PATTERN_CAPTURES_MAX) {
        emit_error(c, ERR_TOO_MANY_CAPTURES, 0);
        return false;
    }
    bool position = c->at + 1 < c->length && c->p[c->at + 1] == ')';
    sl_pattern_node_t *n = emit(c, position ? OP_POSITION : OP_OPEN);
    n->arg = (uint8_t)c->level;
    c->open[c->level++] = !position;
    c->nest++;
    c->at += position ? 2 : 1;
    return true;
}

/* ')' at c->at: closes the innermost unfinished capture. False after an error node. */
static bool compile_close(compiler_t *c)
{
    int l = c->level - 1;
    while (l >= 0 && !c->open[l])
        l--;
    if (l < 0) {
        emit_error(c, ERR_PATTERN_CAPTURE, 0);
        return false;
    }
    sl_pattern_node_t *n = emit(c, OP_CLOSE);
    n->arg = (uint8_t)l;
    c->open[l] = false;
    c->nest++;
    c->at++;
    return true;
}

/* %b, %f or %0-%9 at c->at (the caller checked). False after an error node. */
static bool compile_escape(compiler_t *c)
{
    const uint8_t *p = c->p;
    uint8_t what = p[c->at + 1];
    if (what == 'b') {
        if (c->at + 3 >= c->length) {
            emit_error(c, ERR_BALANCE_ARGUMENTS, 0);
            return false;
        }
        sl_pattern_node_t *n = emit(c, OP_BALANCE);
        n->arg = p[c->at + 2];
        n->u.close = p[c->at + 3];
        c->at += 4;
    } else if (what == 'f') {
        size_t open = c->at + 2, close = 0;
        if (open >= c->length || p[open] != '[') {
            emit_error(c, ERR_FRONTIER_BRACKET, 0);
            return false;
        }
        if ((close = set_end(c, open)) == 0) {
            emit_error(c, ERR_MISSING_BRACKET, 0);
            return false;
        }
        const uint8_t *set = set_store(c, open, close);
        emit(c, OP_FRONTIER)->u.set = set;
        c->at = close + 1;
    } else {
        int l = what - '1';
        if (l < 0 || l >= c->level || c->open[l]) {
            emit_error(c, ERR_CAPTURE_INDEX, (uint8_t)(l + 1));
            return false;
        }
        emit(c, OP_BACKREF)->arg = (uint8_t)l;
        c->at += 2;
    }
    return true;
}

bool sl__pattern_compile(sl_pattern_t *pat, const char *text, size_t length, bool anchors,
                         uint32_t node_room, uint32_t set_room)
{
    pat->anchored = anchors && length > 0 && text[0] == '^';
    if (pat->anchored) {
        text++;
        length--;
    }
    pat->text = text;
    pat->length = length;
    pat->node_count = pat->set_count = 0;
    compiler_t c = {.pat = pat,
                    .p = (const uint8_t *)text,
                    .length = length,
                    .node_room = node_room,
                    .set_room = set_room,
                    .literal_end = SIZE_MAX};
    bool going = true;
    while (going && c.at < length) {
        uint8_t ch = c.p[c.at];
        uint8_t next = c.at + 1 < length ? c.p[c.at + 1] : 0;
        bool has_next = c.at + 1 < length;
        if (ch == '(') {
            going = compile_open(&c);
        } else if (ch == ')') {
            going = compile_close(&c);
        } else if (ch == '$' && !has_next) {
            emit(&c, OP_EOS);
            c.at++;
        } else if (ch == '%' && has_next && (next == 'b' || next == 'f' || isdigit(next))) {
            going = compile_escape(&c);
        } else {
            going = compile_single(&c);
        }
    }
    if (going)
        emit(&c, OP_END);
    pat->captures = c.level;
    return pat->node_count <= node_room && pat->set_count <= set_room;
}

/* ---- the budget ------------------------------------------------------------- */

void sl__pattern_charge(sl_pattern_match_t *m, uint64_t steps)
{
    while (m->credit < steps) {
        steps -= m->credit;
        m->credit = sl__vm_budget_take(m->L, PATTERN_CREDIT_CHUNK);
    }
    m->credit -= steps;
}

void sl__pattern_settle(sl_pattern_match_t *m)
{
    sl__vm_budget_refund(m->L, m->credit);
    m->credit = 0;
}

static inline void spend(sl_pattern_match_t *m, uint64_t steps)
{
    if (m->credit >= steps)
        m->credit -= steps;
    else
        sl__pattern_charge(m, steps);
}

static inline void step(sl_pattern_match_t *m)
{
    spend(m, 1);
}

static inline void charge_scan(sl_pattern_match_t *m, size_t bytes)
{
    spend(m, bytes / PATTERN_SCAN_BYTES + 1);
}

size_t sl__pattern_memfind(sl_pattern_match_t *m, const char *s, size_t length, const char *p,
                           size_t p_length)
{
    if (p_length == 0)
        return 0;
    if (p_length > length)
        return SIZE_MAX;
    const char *at = s, *end = s + length - p_length + 1; /* candidates start before end */
    uint64_t per_candidate = 1 + p_length / PATTERN_SCAN_BYTES;
    while (at < end) {
        size_t window =
            (size_t)(end - at) < PATTERN_FIND_WINDOW ? (size_t)(end - at) : PATTERN_FIND_WINDOW;
        const char *hit = memchr(at, p[0], window);
        if (hit == NULL) {
            charge_scan(m, window);
            at += window;
            continue;
        }
        spend(m, (uint64_t)(hit - at) / PATTERN_SCAN_BYTES + per_candidate);
        if (memcmp(hit + 1, p + 1, p_length - 1) == 0)
            return (size_t)(hit - s);
        at = hit + 1;
    }
    return SIZE_MAX;
}

/* ---- running ----------------------------------------------------------------- */

/* A choice point: a quantified item that can still give back (greedy) or take (lazy) a
 * character, or an optional item that can still be skipped. */
typedef struct choice {
    uint32_t node;
    size_t at;    /* greedy: the first position the item covered; others: the position */
    size_t count; /* greedy: characters it covers now */
} choice_t;

typedef struct run {
    sl_pattern_match_t *m;
    const sl_pattern_t *pat;
    const uint8_t *s;
    size_t length;
    choice_t choices[PATTERN_DEPTH_MAX];
    int top;
} run_t;

static inline bool single(const sl_pattern_node_t *n, const uint8_t *s, size_t at, size_t len)
{
    if (at >= len)
        return false;
    switch (n->op) {
    case OP_ANY:
        return true;
    case OP_CHAR:
        return s[at] == n->arg;
    default:
        return bit_test(n->u.set, s[at]);
    }
}

/* How many characters from `at` on the single item `n` matches in a row. */
static size_t run_length(run_t *r, const sl_pattern_node_t *n, size_t at)
{
    size_t end = at;
    if (n->op == OP_ANY) {
        end = r->length > at ? r->length : at;
    } else if (n->op == OP_CHAR) {
        while (end < r->length && r->s[end] == n->arg)
            end++;
    } else {
        while (end < r->length && bit_test(n->u.set, r->s[end]))
            end++;
    }
    charge_scan(r->m, end - at);
    return end - at;
}

/* Lua nests one C call per capture item and per choice point, and refuses the 200th. */
static void nest_check(run_t *r, const sl_pattern_node_t *n)
{
    if ((int)n->nest + r->top + 1 >= PATTERN_DEPTH_MAX)
        luaL_error(r->m->L, "pattern too complex");
}

static void push_choice(run_t *r, uint32_t node, size_t at, size_t count)
{
    nest_check(r, &r->pat->nodes[node]);
    r->choices[r->top++] = (choice_t){.node = node, .at = at, .count = count};
}

/* A single-character item at `*at`: advances or pushes a choice point. False: no match. */
static bool run_single(run_t *r, uint32_t node, size_t *at)
{
    const sl_pattern_node_t *n = &r->pat->nodes[node];
    bool hit = single(n, r->s, *at, r->length);
    size_t count;
    switch (n->quant) {
    case 0:
        *at += hit;
        return hit;
    case '?':
        if (hit)
            push_choice(r, node, (*at)++, 0);
        return true;
    case '-':
        if (hit)
            push_choice(r, node, *at, 0);
        return true;
    case '*':
        if (!hit)
            return true;
        count = run_length(r, n, *at);
        push_choice(r, node, *at, count);
        *at += count;
        return true;
    default: /* '+' */
        if (!hit)
            return false;
        count = run_length(r, n, *at + 1);
        push_choice(r, node, *at + 1, count);
        *at += 1 + count;
        return true;
    }
}

/* Resumes at the latest choice point that has an alternative left. False: none. */
static bool backtrack(run_t *r, uint32_t *node, size_t *at)
{
    while (r->top > 0) {
        step(r->m);
        choice_t *ch = &r->choices[r->top - 1];
        const sl_pattern_node_t *n = &r->pat->nodes[ch->node];
        *node = ch->node + 1;
        if (n->quant == '?') {
            *at = ch->at;
            r->top--;
            return true;
        }
        if (n->quant == '-') {
            if (!single(n, r->s, ch->at, r->length)) {
                r->top--;
                continue;
            }
            *at = ++ch->at;
            return true;
        }
        if (ch->count == 0) {
            r->top--;
            continue;
        }
        *at = ch->at + --ch->count;
        return true;
    }
    return false;
}

static void raise_error(lua_State *L, const sl_pattern_node_t *n)
{
    switch (n->arg) {
    case ERR_ENDS_WITH_ESCAPE:
        luaL_error(L, "malformed pattern (ends with '%%')");
        break;
    case ERR_MISSING_BRACKET:
        luaL_error(L, "malformed pattern (missing ']')");
        break;
    case ERR_BALANCE_ARGUMENTS:
        luaL_error(L, "malformed pattern (missing arguments to '%%b')");
        break;
    case ERR_FRONTIER_BRACKET:
        luaL_error(L, "missing '[' after '%%f' in pattern");
        break;
    case ERR_CAPTURE_INDEX:
        luaL_error(L, "invalid capture index %%%d", (int)n->offset);
        break;
    case ERR_PATTERN_CAPTURE:
        luaL_error(L, "invalid pattern capture");
        break;
    default:
        luaL_error(L, "too many captures");
        break;
    }
}

/* %bxy at `*at`: past the balanced span, or false. */
static bool run_balance(run_t *r, const sl_pattern_node_t *n, size_t *at)
{
    if (*at >= r->length || r->s[*at] != n->arg)
        return false;
    size_t depth = 1, q = *at + 1;
    for (; q < r->length; q++) {
        if (r->s[q] == n->u.close) {
            if (--depth == 0)
                break;
        } else if (r->s[q] == n->arg) {
            depth++;
        }
    }
    charge_scan(r->m, q - *at);
    if (q >= r->length)
        return false;
    *at = q + 1;
    return true;
}

/* %1-%9 at `*at`: past a copy of the capture, or false (a position capture never
 * matches, as in Lua). */
static bool run_backref(run_t *r, const sl_pattern_node_t *n, size_t *at)
{
    sl_pattern_match_t *m = r->m;
    ptrdiff_t len = m->cap_len[n->arg];
    if (len < 0 || (size_t)len > r->length - *at)
        return false;
    charge_scan(m, (size_t)len);
    if (memcmp(r->s + m->cap_start[n->arg], r->s + *at, (size_t)len) != 0)
        return false;
    *at += (size_t)len;
    return true;
}

/* One node at `*at`; false when it does not match there. */
static bool run_node(run_t *r, uint32_t node, size_t *at)
{
    const sl_pattern_node_t *n = &r->pat->nodes[node];
    sl_pattern_match_t *m = r->m;
    switch (n->op) {
    case OP_EOS:
        return *at == r->length;
    case OP_LITERAL:
        if (n->u.length > r->length - *at ||
            memcmp(r->s + *at, r->pat->text + n->offset, n->u.length) != 0)
            return false;
        *at += n->u.length;
        return true;
    case OP_OPEN:
    case OP_POSITION:
        nest_check(r, n);
        m->cap_start[n->arg] = *at;
        m->cap_len[n->arg] = n->op == OP_OPEN ? SL_PATTERN_CAP_OPEN : SL_PATTERN_CAP_POSITION;
        return true;
    case OP_CLOSE:
        nest_check(r, n);
        m->cap_len[n->arg] = (ptrdiff_t)(*at - m->cap_start[n->arg]);
        return true;
    case OP_BALANCE:
        return run_balance(r, n, at);
    case OP_FRONTIER: {
        uint8_t before = *at == 0 ? 0 : r->s[*at - 1];
        uint8_t here = *at < r->length ? r->s[*at] : 0;
        return !bit_test(n->u.set, before) && bit_test(n->u.set, here);
    }
    case OP_BACKREF:
        return run_backref(r, n, at);
    case OP_ERROR:
        raise_error(m->L, n);
        return false;
    default:
        return run_single(r, node, at);
    }
}

/* One attempt at `start`: the end of the match, or -1. */
static ptrdiff_t run_at(run_t *r, size_t start)
{
    uint32_t node = 0;
    size_t at = start;
    r->top = 0;
    for (;;) {
        step(r->m);
        if (r->pat->nodes[node].op == OP_END) {
            r->m->level = r->pat->captures;
            return (ptrdiff_t)at;
        }
        if (run_node(r, node, &at))
            node++;
        else if (!backtrack(r, &node, &at))
            return -1;
    }
}

/* The first position at or after `from` < length where the frontier `n` holds, else the
 * subject's end (where it may hold too: the character there counts as '\0'). */
static size_t skip_to_frontier(run_t *r, const sl_pattern_node_t *n, size_t from)
{
    const uint8_t *set = n->u.set;
    bool before = from > 0 && bit_test(set, r->s[from - 1]);
    size_t q = from;
    for (; q < r->length; q++) {
        bool here = bit_test(set, r->s[q]);
        if (here && !before)
            break;
        before = here;
    }
    charge_scan(r->m, q - from);
    return q;
}

/* The first position at or after `from` where the first node could match (length + 1 for
 * none): literal runs are searched for, single items scanned for, other nodes may match
 * anywhere. */
static size_t skip(run_t *r, size_t from)
{
    const sl_pattern_node_t *n = &r->pat->nodes[0];
    const uint8_t *hit = NULL;
    size_t left = r->length - from;
    if (from >= r->length) {
        return n->op == OP_LITERAL || n->op == OP_BALANCE ||
                       ((n->op == OP_CHAR || n->op == OP_ANY || n->op == OP_SET) &&
                        (n->quant == 0 || n->quant == '+'))
                   ? r->length + 1
                   : from;
    }
    if (n->op == OP_LITERAL) {
        size_t found = sl__pattern_memfind(r->m, (const char *)r->s + from, left,
                                           r->pat->text + n->offset, n->u.length);
        return found == SIZE_MAX ? r->length + 1 : from + found; /* charged */
    } else if ((n->op == OP_CHAR && (n->quant == 0 || n->quant == '+')) || n->op == OP_BALANCE) {
        hit = memchr(r->s + from, n->arg, left);
    } else if (n->op == OP_SET && (n->quant == 0 || n->quant == '+')) {
        size_t q = from;
        while (q < r->length && !bit_test(n->u.set, r->s[q]))
            q++;
        hit = q < r->length ? r->s + q : NULL;
    } else if (n->op == OP_FRONTIER) {
        return skip_to_frontier(r, n, from);
    } else {
        return from;
    }
    size_t to = hit ? (size_t)(hit - r->s) : r->length;
    charge_scan(r->m, to - from);
    return hit ? to : r->length + 1;
}

bool sl__pattern_search(sl_pattern_match_t *m, const sl_pattern_t *pat, size_t from, size_t *start,
                        size_t *end)
{
    run_t r; /* not zeroed: the choice stack is written before it is read */
    r.m = m;
    r.pat = pat;
    r.s = (const uint8_t *)m->subject;
    r.length = m->length;
    r.top = 0;
    for (size_t at = from; at <= m->length; at++) {
        if (!pat->anchored && (at = skip(&r, at)) > m->length)
            break;
        ptrdiff_t e = run_at(&r, at);
        if (e >= 0) {
            *start = at;
            *end = (size_t)e;
            return true;
        }
        if (pat->anchored)
            break;
    }
    return false;
}
