/*
 * Unit test of the primes plugin's sieve (sieve.c): counts and lists against a
 * naive sieve, around segment and word boundaries, known values of pi(n), and a
 * visitor that stops the walk.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

/* Up to here the naive sieve is the reference: a little past two segments. */
#define NAIVE_MAX 1100000

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* pi[n] = number of primes <= n, for n <= NAIVE_MAX. */
static uint32_t *naive_pi(unsigned char **is_prime_out)
{
    unsigned char *is_prime = malloc(NAIVE_MAX + 1);
    uint32_t *pi = malloc((NAIVE_MAX + 1) * sizeof(*pi));
    if (is_prime == NULL || pi == NULL)
        exit(2);
    memset(is_prime, 1, NAIVE_MAX + 1);
    is_prime[0] = is_prime[1] = 0;
    for (uint64_t i = 2; i * i <= NAIVE_MAX; i++)
        if (is_prime[i])
            for (uint64_t j = i * i; j <= NAIVE_MAX; j += i)
                is_prime[j] = 0;
    uint32_t count = 0;
    for (size_t n = 0; n <= NAIVE_MAX; n++) {
        count += is_prime[n];
        pi[n] = count;
    }
    *is_prime_out = is_prime;
    return pi;
}

typedef struct walk {
    const unsigned char *is_prime;
    uint64_t last;
    uint64_t seen;
    uint64_t stop_after; /* 0: never */
    int bad;
} walk_t;

static int check_prime(void *ud, uint64_t p)
{
    walk_t *w = ud;
    if (p <= w->last || p > NAIVE_MAX || !w->is_prime[p])
        w->bad = 1;
    w->last = p;
    w->seen++;
    return w->stop_after != 0 && w->seen == w->stop_after ? 7 : 0;
}

static void check_limit(const uint32_t *pi, const unsigned char *is_prime, uint64_t n)
{
    uint64_t count = 0;
    int rc = sieve_primes(n, &count, NULL, NULL);
    CHECK(rc == 0 && count == pi[n], "pi(%" PRIu64 ") = %" PRIu64 ", expected %u", n, count, pi[n]);
    walk_t w = {.is_prime = is_prime};
    rc = sieve_primes(n, &count, check_prime, &w);
    CHECK(rc == 0 && !w.bad && w.seen == pi[n] && count == pi[n],
          "list up to %" PRIu64 ": %" PRIu64 " primes, bad %d", n, w.seen, w.bad);
}

int main(void)
{
    unsigned char *is_prime = NULL;
    uint32_t *pi = naive_pi(&is_prime);
    for (uint64_t n = 0; n <= 3000; n++)
        check_limit(pi, is_prime, n);
    /* Word and segment boundaries: a segment holds 2^18 odd numbers, 2^19 integers. */
    const uint64_t edges[] = {127,    128,    129,     130,     131,     524287,  524288,
                              524289, 524290, 1048575, 1048576, 1048577, 1048578, 1048579};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        check_limit(pi, is_prime, edges[i]);
    uint64_t seed = 12345;
    for (int i = 0; i < 40; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        check_limit(pi, is_prime, (seed >> 33) % (NAIVE_MAX + 1));
    }
    /* Known values of pi(n). */
    const struct {
        uint64_t n, pi;
    } known[] = {
        {10000000, 664579}, {100000000, 5761455}, {99999989, 5761455}, {99999988, 5761454}};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        uint64_t count = 0;
        int rc = sieve_primes(known[i].n, &count, NULL, NULL);
        CHECK(rc == 0 && count == known[i].pi, "pi(%" PRIu64 ") = %" PRIu64, known[i].n, count);
    }
    /* A visitor that stops: its code comes back. */
    walk_t w = {.is_prime = is_prime, .stop_after = 10};
    uint64_t count = 0;
    int rc = sieve_primes(1000, &count, check_prime, &w);
    CHECK(rc == 7 && w.seen == 10 && w.last == 29, "stop: rc %d, seen %" PRIu64, rc, w.seen);
    w = (walk_t){.is_prime = is_prime, .stop_after = 1};
    rc = sieve_primes(1000, &count, check_prime, &w);
    CHECK(rc == 7 && w.seen == 1 && w.last == 2, "stop at 2: rc %d", rc);
    free(pi);
    free(is_prime);
    if (failures > 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    fprintf(stderr, "test_sieve: all passed\n");
    return 0;
}
