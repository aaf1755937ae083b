/*
 * Segmented, bit-packed, odd-only sieve of Eratosthenes (see sieve.h).
 *
 * Bit i of the sieve stands for the odd number 2i + 1; a set bit means
 * composite. The odd numbers up to the limit are sieved one segment of
 * SEGMENT_BITS at a time (32 KiB, so a segment stays in cache), crossing off
 * the multiples of each odd base prime p <= sqrt(limit) from p*p on, in steps
 * of 2p (p in index space). Primes are counted with popcount on the
 * complement of each 64-bit word.
 */
#include "sieve.h"

#include <stdlib.h>
#include <string.h>

#define SEGMENT_BITS ((uint64_t)1 << 18)
#define WORD_BITS 64

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

/* Odd primes <= root, by a plain odd-only sieve; *out malloc'd, *count of them. */
static int base_primes(uint32_t root, uint32_t **out, size_t *count)
{
    size_t half = (size_t)root / 2 + 1; /* index i: 2i + 1 <= root */
    unsigned char *composite = calloc(half, 1);
    uint32_t *primes = malloc(half * sizeof(*primes));
    if (composite == NULL || primes == NULL) {
        free(composite);
        free(primes);
        return -1;
    }
    size_t n = 0;
    for (size_t i = 1; i < half; i++) {
        if (composite[i])
            continue;
        uint64_t p = 2 * i + 1;
        primes[n++] = (uint32_t)p;
        for (uint64_t j = (p * p - 1) / 2; j < half; j += p)
            composite[j] = 1;
    }
    free(composite);
    *out = primes;
    *count = n;
    return 0;
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
    uint64_t bits = (limit - 1) / 2 + 1; /* indexes 0 .. (limit-1)/2 */
    uint32_t *primes = NULL;
    size_t prime_count = 0;
    if (base_primes(isqrt(limit), &primes, &prime_count) != 0)
        return -1;
    uint64_t seg_bits =
        bits < SEGMENT_BITS ? (bits + WORD_BITS - 1) / WORD_BITS * WORD_BITS : SEGMENT_BITS;
    uint64_t *seg = malloc(seg_bits / 8);
    uint64_t *next = malloc((prime_count + 1) * sizeof(*next));
    if (seg == NULL || next == NULL) {
        rc = -1;
        goto out;
    }
    for (size_t k = 0; k < prime_count; k++)
        next[k] = ((uint64_t)primes[k] * primes[k] - 1) / 2;
    uint64_t total = 1; /* 2 */
    size_t active = 0;  /* base primes whose p*p lies below the current segment's end */
    for (uint64_t lo = 0; lo < bits; lo += seg_bits) {
        uint64_t hi = lo + seg_bits < bits ? lo + seg_bits : bits;
        size_t words = (size_t)((hi - lo + WORD_BITS - 1) / WORD_BITS);
        memset(seg, 0, words * sizeof(*seg));
        while (active < prime_count && next[active] < hi)
            active++;
        for (size_t k = 0; k < active; k++) {
            uint64_t p = primes[k], j = next[k];
            for (; j < hi; j += p)
                seg[(j - lo) / WORD_BITS] |= (uint64_t)1 << ((j - lo) % WORD_BITS);
            next[k] = j;
        }
        if (lo == 0)
            seg[0] |= 1; /* 1 is not prime */
        uint64_t tail = (hi - lo) % WORD_BITS;
        if (tail != 0)
            seg[words - 1] |= ~(uint64_t)0 << tail; /* past the limit */
        for (size_t w = 0; w < words; w++)
            total += (uint64_t)__builtin_popcountll(~seg[w]);
        if (visit != NULL && (rc = visit_segment(seg, words, lo, visit, ud)) != 0)
            goto out;
    }
    *count = total;
out:
    free(seg);
    free(next);
    free(primes);
    return rc;
}
