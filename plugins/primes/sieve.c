/*
 * Segmented, bit-packed, odd-only sieve of Eratosthenes (see sieve.h).
 *
 * Bit i of the sieve stands for the odd number 2i + 1; a set bit means
 * composite. The odd numbers up to the limit are sieved one segment of
 * SEGMENT_BITS at a time (32 KiB, on the stack, so a segment stays in cache).
 *
 * Pre-sieve: a segment does not start blank but as a copy of patterns in which
 * the multiples of the odd primes below 64 are already crossed off. A pattern
 * holds a few primes and repeats every product of them; one period, read at
 * the segment's offset, serves any segment. The patterns, and the first
 * segment made of them, are built once per process and never change; they do
 * not depend on any limit. Only the primes from 67 on are crossed off one
 * multiple at a time, from p*p on, in steps of 2p (p in index space).
 *
 * A limit that fits one segment (up to 2^19) needs no other memory: the segment
 * is sieved in place, finding its own base primes as it goes. A larger limit
 * gets its base primes (up to 2^16) from such a first segment, in a malloc'd
 * array. Primes are counted with popcount on the complement of each word.
 */
#include "sieve.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WORD_BITS 64
#define SEGMENT_BITS ((uint64_t)1 << 18)
#define SEGMENT_WORDS (SEGMENT_BITS / WORD_BITS)

/* Index of 67, the first prime the patterns leave to the sieve (all of their primes
 * are below 64, so their bits all lie in word 0). */
#define FIRST_SIEVED_INDEX 33u

/* One period of a pattern and the 63 bits a word read at its last phase runs past it. */
#define PATTERN_WORDS(period) (((period) + WORD_BITS - 2) / WORD_BITS + 1)
#define PATTERN_PRIMES_MAX 5

typedef struct pattern {
    unsigned char primes[PATTERN_PRIMES_MAX]; /* 0-terminated when fewer */
    uint32_t period_bits;                     /* their product */
    uint64_t *words;                          /* PATTERN_WORDS(period_bits) */
} pattern_t;

/* Sizes: 236 + 117 + 521 + 1296 + 2981 words, 40 KiB in all. */
static uint64_t pattern_3_13[PATTERN_WORDS(15015)];
static uint64_t pattern_17_23[PATTERN_WORDS(7429)];
static uint64_t pattern_29_37[PATTERN_WORDS(33263)];
static uint64_t pattern_41_47[PATTERN_WORDS(82861)];
static uint64_t pattern_53_61[PATTERN_WORDS(190747)];

static const pattern_t patterns[] = {
    {{3, 5, 7, 11, 13}, 15015, pattern_3_13}, {{17, 19, 23}, 7429, pattern_17_23},
    {{29, 31, 37}, 33263, pattern_29_37},     {{41, 43, 47}, 82861, pattern_41_47},
    {{53, 59, 61}, 190747, pattern_53_61},
};
#define PATTERN_COUNT (sizeof(patterns) / sizeof(patterns[0]))

/* All the patterns from bit 0 on, with 1 marked and the patterns' own primes clear. */
static uint64_t first_segment[SEGMENT_WORDS];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* ORs into seg[0..words) the pattern as it stands from bit `lo` of the sieve on. */
static void pattern_or(uint64_t *seg, size_t words, uint64_t lo, const pattern_t *pattern)
{
    uint32_t period = pattern->period_bits, phase = (uint32_t)(lo % period);
    size_t w = 0;
    while (w < words) {
        /* The words whose first bit lies in this period: consecutive pattern words, one shift. */
        size_t run = (period - phase + WORD_BITS - 1) / WORD_BITS;
        if (run > words - w)
            run = words - w;
        const uint64_t *src = pattern->words + phase / WORD_BITS;
        unsigned shift = phase % WORD_BITS;
        for (size_t i = 0; i < run; i++) /* the high part in two shifts: none by 64 */
            seg[w + i] |= src[i] >> shift | (src[i + 1] << 1) << (WORD_BITS - 1 - shift);
        w += run;
        phase = phase + (uint32_t)(run * WORD_BITS) - period;
    }
}

/* Builds the patterns (bit i set when 2i + 1 is an odd multiple of one of their
 * primes), then the first segment from them. */
static void tables_init(void)
{
    uint64_t own_primes = 0;
    for (size_t k = 0; k < PATTERN_COUNT; k++) {
        const pattern_t *pattern = &patterns[k];
        uint32_t bits = PATTERN_WORDS(pattern->period_bits) * WORD_BITS;
        for (size_t m = 0; m < PATTERN_PRIMES_MAX && pattern->primes[m] != 0; m++) {
            uint32_t p = pattern->primes[m];
            own_primes |= (uint64_t)1 << (p / 2);
            for (uint32_t i = p / 2; i < bits; i += p)
                pattern->words[i / WORD_BITS] |= (uint64_t)1 << (i % WORD_BITS);
        }
        pattern_or(first_segment, SEGMENT_WORDS, 0, pattern);
    }
    first_segment[0] = (first_segment[0] | 1) & ~own_primes; /* 1 is not prime */
}

/* Starts seg[0..words), bit 0 standing for 2 lo + 1, with the patterns' multiples marked. */
static void presieve(uint64_t *seg, size_t words, uint64_t lo)
{
    if (lo == 0) {
        memcpy(seg, first_segment, words * sizeof(*seg));
        return;
    }
    memset(seg, 0, words * sizeof(*seg));
    for (size_t k = 0; k < PATTERN_COUNT; k++)
        pattern_or(seg, words, lo, &patterns[k]);
}

/* floor(sqrt(n)), by Newton's method on integers. */
static uint32_t isqrt(uint64_t n)
{
    if (n < 2)
        return (uint32_t)n;
    uint64_t x = n, y = (x + 1) / 2;
    while (y < x) {
        x = y;
        y = (x + n / x) / 2;
    }
    return (uint32_t)x;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/*
 * cross_off's bulk, eight multiples a round: bits j + k step (k < 8) fall on
 * fixed bits of bytes at fixed distances, and the next eight on the same bits
 * `step` bytes further on. On a little-endian machine bit j of the words is bit
 * j % 8 of byte j / 8. Returns the j where it stopped, fewer than eight
 * multiples before len: cross_off does those one by one.
 */
static uint32_t cross_off_rounds(uint64_t *seg, uint32_t j, uint32_t step, uint32_t len)
{
    if (j + 7 * step >= len)
        return j;
    uint32_t rounds = (len - j - 7 * step - 1) / (8 * step) + 1;
    /* Multiple k: bit j % 8 + k step from j's byte, so byte at_k and mask_k. */
    uint32_t bit = j % 8;
    uint32_t at1 = (bit + step) / 8, at2 = (bit + 2 * step) / 8, at3 = (bit + 3 * step) / 8,
             at4 = (bit + 4 * step) / 8, at5 = (bit + 5 * step) / 8, at6 = (bit + 6 * step) / 8,
             at7 = (bit + 7 * step) / 8;
    unsigned char mask0 = (unsigned char)(1u << bit),
                  mask1 = (unsigned char)(1u << (bit + step) % 8),
                  mask2 = (unsigned char)(1u << (bit + 2 * step) % 8),
                  mask3 = (unsigned char)(1u << (bit + 3 * step) % 8),
                  mask4 = (unsigned char)(1u << (bit + 4 * step) % 8),
                  mask5 = (unsigned char)(1u << (bit + 5 * step) % 8),
                  mask6 = (unsigned char)(1u << (bit + 6 * step) % 8),
                  mask7 = (unsigned char)(1u << (bit + 7 * step) % 8);
    unsigned char *bytes = (unsigned char *)seg + j / 8;
    for (uint32_t r = 0; r < rounds; r++, bytes += step) {
        bytes[0] |= mask0;
        bytes[at1] |= mask1;
        bytes[at2] |= mask2;
        bytes[at3] |= mask3;
        bytes[at4] |= mask4;
        bytes[at5] |= mask5;
        bytes[at6] |= mask6;
        bytes[at7] |= mask7;
    }
    return j + rounds * 8 * step;
}
#else
static uint32_t cross_off_rounds(uint64_t *seg, uint32_t j, uint32_t step, uint32_t len)
{
    (void)seg, (void)step, (void)len;
    return j;
}
#endif

/* Crosses off bits j, j + step, ... below len of seg; returns the first j >= len. */
static uint32_t cross_off(uint64_t *seg, uint32_t j, uint32_t step, uint32_t len)
{
    for (j = cross_off_rounds(seg, j, step, len); j < len; j += step)
        seg[j / WORD_BITS] |= (uint64_t)1 << (j % WORD_BITS);
    return j;
}

/* Marks the bits from `len` to the end of the last word: numbers past the limit. */
static void mark_tail(uint64_t *seg, uint32_t len)
{
    if (len % WORD_BITS != 0)
        seg[len / WORD_BITS] |= ~(uint64_t)0 << (len % WORD_BITS);
}

static uint64_t count_clear_portable(const uint64_t *seg, size_t words)
{
    uint64_t total = 0;
    for (size_t w = 0; w < words; w++)
        total += (uint64_t)__builtin_popcountll(~seg[w]);
    return total;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same with the POPCNT instruction: x86-64's baseline lacks it, and the
 * portable loop then calls libgcc once a word. */
__attribute__((target("popcnt"))) static uint64_t count_clear_popcnt(const uint64_t *seg,
                                                                     size_t words)
{
    uint64_t total = 0;
    for (size_t w = 0; w < words; w++)
        total += (uint64_t)__builtin_popcountll(~seg[w]);
    return total;
}
#endif

/* Clear bits (primes) of seg[0..words). */
static uint64_t count_clear(const uint64_t *seg, size_t words)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("popcnt"))
        return count_clear_popcnt(seg, words);
#endif
    return count_clear_portable(seg, words);
}

/*
 * Sieves the first segment, indexes 0..bits (bits <= SEGMENT_BITS), in place:
 * every base prime p with p * p <= 2 * bits - 1 lies in it, found before its
 * multiples are needed. Bits past `bits` up to a whole word are marked.
 */
static void sieve_first_segment(uint64_t *seg, uint32_t bits)
{
    presieve(seg, (bits + WORD_BITS - 1) / WORD_BITS, 0);
    for (uint32_t i = FIRST_SIEVED_INDEX;; i++) {
        uint32_t p = 2 * i + 1, start = (uint32_t)(((uint64_t)p * p) / 2);
        if (start >= bits)
            break;
        if (!(seg[i / WORD_BITS] >> (i % WORD_BITS) & 1))
            cross_off(seg, start, p, bits);
    }
    mark_tail(seg, bits);
}

/* Calls visit for every clear bit of seg[0..words), bit i standing for 2(lo + i) + 1. */
static int visit_segment(const uint64_t *seg, size_t words, uint64_t lo, sieve_visit_fn visit,
                         void *ud)
{
    for (size_t w = 0; w < words; w++) {
        uint64_t clear = ~seg[w];
        while (clear != 0) {
            uint64_t index = lo + (uint64_t)w * WORD_BITS + (uint64_t)__builtin_ctzll(clear);
            int rc = visit(ud, 2 * index + 1);
            if (rc != 0)
                return rc;
            clear &= clear - 1;
        }
    }
    return 0;
}

/*
 * The base primes from 67 to root (67 <= root <= 2^16) into *pairs_out,
 * malloc'd (the caller frees it): pairs {p, index of p * p}, the second the
 * next multiple to cross off. seg is scratch. Returns 0, or -1 when out of memory.
 */
static int base_primes(uint64_t *seg, uint32_t root, uint32_t **pairs_out, size_t *count_out)
{
    uint32_t bits = (root - 1) / 2 + 1;
    size_t words = (bits + WORD_BITS - 1) / WORD_BITS;
    sieve_first_segment(seg, bits);
    seg[0] |= ((uint64_t)1 << FIRST_SIEVED_INDEX) - 1; /* 1 .. 65: the patterns' business */
    size_t count = (size_t)count_clear(seg, words);
    uint32_t *pairs = malloc((count > 0 ? count : 1) * 2 * sizeof(*pairs));
    if (pairs == NULL)
        return -1;
    size_t n = 0;
    for (size_t w = 0; w < words; w++)
        for (uint64_t clear = ~seg[w]; clear != 0; clear &= clear - 1) {
            uint32_t p = 2 * (uint32_t)(w * WORD_BITS + (size_t)__builtin_ctzll(clear)) + 1;
            pairs[2 * n] = p;
            pairs[2 * n + 1] = (uint32_t)(((uint64_t)p * p) / 2);
            n++;
        }
    *pairs_out = pairs;
    *count_out = n;
    return 0;
}

/* Limits past one segment: segment after segment, the base primes malloc'd. */
static int sieve_segments(uint64_t *seg, uint64_t bits, uint64_t limit, uint64_t *count,
                          sieve_visit_fn visit, void *ud)
{
    uint32_t *pairs = NULL;
    size_t prime_count = 0;
    if (base_primes(seg, isqrt(limit), &pairs, &prime_count) != 0)
        return -1;
    int rc = 0;
    uint64_t total = 1; /* 2 */
    size_t active = 0;  /* base primes whose p*p lies below the current segment's end */
    for (uint64_t lo = 0; lo < bits; lo += SEGMENT_BITS) {
        uint32_t len = (uint32_t)(bits - lo < SEGMENT_BITS ? bits - lo : SEGMENT_BITS);
        size_t words = (len + WORD_BITS - 1) / WORD_BITS;
        presieve(seg, words, lo);
        while (active < prime_count && pairs[2 * active + 1] < lo + len)
            active++;
        for (size_t k = 0; k < active; k++) {
            uint32_t *pair = pairs + 2 * k; /* indexes < 2^31 + 2^16: uint32_t holds them */
            pair[1] = (uint32_t)(cross_off(seg, (uint32_t)(pair[1] - lo), pair[0], len) + lo);
        }
        mark_tail(seg, len);
        total += count_clear(seg, words);
        if (visit != NULL && (rc = visit_segment(seg, words, lo, visit, ud)) != 0)
            goto out;
    }
    *count = total;
out:
    free(pairs);
    return rc;
}

int sieve_primes(uint64_t limit, uint64_t *count, sieve_visit_fn visit, void *ud)
{
    if (limit > SIEVE_LIMIT_MAX)
        limit = SIEVE_LIMIT_MAX;
    if (limit < 2) {
        *count = 0;
        return 0;
    }
    int rc = visit != NULL ? visit(ud, 2) : 0;
    if (rc != 0 || limit < 3) {
        *count = 1;
        return rc;
    }
    pthread_once(&tables_once, tables_init);
    uint64_t seg[SEGMENT_WORDS];
    uint64_t bits = (limit - 1) / 2 + 1; /* indexes 0 .. (limit-1)/2 */
    if (bits > SEGMENT_BITS)
        return sieve_segments(seg, bits, limit, count, visit, ud);
    size_t words = (size_t)(bits + WORD_BITS - 1) / WORD_BITS;
    sieve_first_segment(seg, (uint32_t)bits);
    if (visit != NULL && (rc = visit_segment(seg, words, 0, visit, ud)) != 0)
        return rc;
    *count = 1 + count_clear(seg, words);
    return 0;
}
