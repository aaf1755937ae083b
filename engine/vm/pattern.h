/*
 * vm/pattern.h: the sandbox's Lua 5.4 pattern matcher (Lua reference manual §6.4.1),
 * written for sluice. A pattern is compiled once into a short array of nodes, then run
 * with an explicit backtracking stack, charging every step to the running thread's
 * instruction budget. Used by strmatch.c (the string functions); internal to vm/.
 *
 * Malformed patterns are not refused at compile time: Lua reports a pattern error only
 * when the matcher reaches the faulty item, so the compiler ends the node array with an
 * error node there and the run raises it when it gets that far, with Lua's message.
 */
#ifndef SL_VM_PATTERN_H
#define SL_VM_PATTERN_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_PATTERN_CAPTURES_MAX 32   /* Lua's LUA_MAXCAPTURES */
#define SL_PATTERN_CAP_OPEN (-1)     /* capture length while unfinished */
#define SL_PATTERN_CAP_POSITION (-2) /* capture length of a position capture "()" */

/* One item of a compiled pattern (pattern.c defines the operations). */
typedef struct sl_pattern_node {
    uint8_t op;
    uint8_t quant;   /* single-character items: 0, '?', '*', '+' or '-' */
    uint8_t arg;     /* a character, a capture index, an error code */
    uint8_t nest;    /* capture items before this one (Lua nests a call for each) */
    uint32_t offset; /* literal runs: where in the pattern text */
    union {
        const uint8_t *set; /* a 256-bit membership bitmap */
        uint32_t length;    /* literal runs: how many bytes */
        uint8_t close;      /* %b: the closing character */
    } u;
} sl_pattern_node_t;

/** A compiled pattern. `text` is borrowed (the Lua string must stay alive). */
typedef struct sl_pattern {
    const char *text;
    size_t length;
    bool anchored; /* a leading '^' (find, match, gsub) */
    int captures;  /* capture items in the pattern (Lua's level after a match) */
    sl_pattern_node_t *nodes;
    uint8_t (*sets)[32];
    uint32_t node_count, set_count; /* used */
} sl_pattern_t;

/** The state of matching one subject: budget credit and the last match's captures. */
typedef struct sl_pattern_match {
    lua_State *L; /* budget and errors */
    const char *subject;
    size_t length;
    uint64_t credit; /* steps taken from the budget, not yet spent */
    int level;       /* captures of the last match */
    size_t cap_start[SL_PATTERN_CAPTURES_MAX];
    ptrdiff_t cap_len[SL_PATTERN_CAPTURES_MAX];
} sl_pattern_match_t;

/**
 * Compiles `text` (`length` bytes, borrowed) into `pat`, whose `nodes` and `sets` the
 * caller points at arrays of `node_room` and `set_room` entries. `anchors`: a leading '^'
 * anchors the match (not for gmatch, where it is a plain character). Returns false when
 * the arrays are too small, with `node_count` and `set_count` set to what is needed (call
 * again with bigger arrays). Never raises: pattern errors become error nodes.
 */
bool sl__pattern_compile(sl_pattern_t *pat, const char *text, size_t length, bool anchors,
                         uint32_t node_room, uint32_t set_room);

/**
 * Finds the first match starting at or after `from` (only at `from` when anchored) in
 * `m`'s subject; sets `*start` and `*end` and `m`'s captures. Raises on a pattern error
 * or when the budget runs out ("instruction budget exceeded (pattern matching)").
 */
bool sl__pattern_search(sl_pattern_match_t *m, const sl_pattern_t *pat, size_t from, size_t *start,
                        size_t *end);

/**
 * The first occurrence of `p` (`p_length` bytes) in `s` (`length` bytes): its index, or
 * SIZE_MAX. Charges `m`'s budget for the bytes scanned and each candidate compared.
 */
size_t sl__pattern_memfind(sl_pattern_match_t *m, const char *s, size_t length, const char *p,
                           size_t p_length);
/** Charges `steps` to `m`'s budget. Raises when it runs out. */
void sl__pattern_charge(sl_pattern_match_t *m, uint64_t steps);
/** Gives the unspent credit back to the budget: before calling Lua and when done. */
void sl__pattern_settle(sl_pattern_match_t *m);

#endif
