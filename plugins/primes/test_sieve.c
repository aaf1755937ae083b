/*
 * Unit test of the primes plugin's sieve (sieve.c) against an independent
 * reference, a plain byte-per-number sieve: the count for every limit up to
 * EVERY_MAX; counts and lists around word, segment and pre-sieve pattern
 * boundaries and at random limits up to NAIVE_MAX; known values of pi(n); a
 * visitor that stops the walk; threads racing through the first call.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve.h"

/* Up to here the naive sieve is the reference: past nine segments of 2^19 numbers. */
#define NAIVE_MAX 5000000
/* The count (no list) is checked for every limit up to here. */
#define EVERY_MAX 200000
#define RACE_THREADS 4

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

/* sieve_visit_fn: each prime must be a prime, above the last one, and none skipped
 * (checked by the count at the end). */
static int check_prime(void *ud, uint64_t p)
{
    walk_t *w = ud;
    if (p <= w->last || p > NAIVE_MAX || !w->is_prime[p])
        w->bad = 1;
    w->last = p;
    w->seen++;
    return w->stop_after != 0 && w->seen == w->stop_after ? 7 : 0;
}

static void check_count(const uint32_t *pi, uint64_t n)
{
    uint64_t count = UINT64_MAX;
    int rc = sieve_primes(n, &count, NULL, NULL);
    CHECK(rc == 0 && count == pi[n], "pi(%" PRIu64 ") = %" PRIu64 ", expected %u", n, count, pi[n]);
}

static void check_limit(const uint32_t *pi, const unsigned char *is_prime, uint64_t n)
{
    check_count(pi, n);
    uint64_t count = UINT64_MAX;
    walk_t w = {.is_prime = is_prime};
    int rc = sieve_primes(n, &count, check_prime, &w);
    CHECK(rc == 0 && !w.bad && w.seen == pi[n] && count == pi[n],
          "list up to %" PRIu64 ": %" PRIu64 " primes, bad %d", n, w.seen, w.bad);
}

/* n - 3 .. n + 3 */
static void check_around(const uint32_t *pi, const unsigned char *is_prime, uint64_t n)
{
    for (uint64_t k = n - 3; k <= n + 3; k++)
        check_limit(pi, is_prime, k);
}

static void check_boundaries(const uint32_t *pi, const unsigned char *is_prime)
{
    /* Word edges: a word holds 64 odd numbers, 128 integers. */
    check_around(pi, is_prime, 128);
    check_around(pi, is_prime, 256);
    /* Segment edges: a segment holds 2^18 odd numbers, 2^19 integers. */
    for (uint64_t s = 1; s <= 9; s++)
        check_around(pi, is_prime, s << 19);
    /* Pre-sieve pattern periods (in odd numbers: 2 period integers) and their multiples. */
    const uint64_t periods[] = {15015, 7429, 33263, 82861, 190747};
    for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
        for (uint64_t m = 1; 2 * periods[i] * m <= NAIVE_MAX - 3; m *= 3)
            check_around(pi, is_prime, 2 * periods[i] * m);
    /* The million range, past one segment. */
    const uint64_t millions[] = {1000003, 2718281, 3141592, 4999999, NAIVE_MAX};
    for (size_t i = 0; i < sizeof(millions) / sizeof(millions[0]); i++)
        check_limit(pi, is_prime, millions[i]);
    uint64_t seed = 12345;
    for (int i = 0; i < 40; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        check_limit(pi, is_prime, (seed >> 33) % (NAIVE_MAX + 1));
    }
}

static void check_known(void)
{
    const struct {
        uint64_t n, pi;
    } known[] = {
        /* pi(10^9) = 50,847,534 and pi(2^32) = 203,280,221 hold too, but take 3 and 14 s
         * each in the Debug ASan build. */
        {10000000, 664579},
        {100000000, 5761455},
        {99999989, 5761455},
        {99999988, 5761454},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        uint64_t count = 0;
        int rc = sieve_primes(known[i].n, &count, NULL, NULL);
        CHECK(rc == 0 && count == known[i].pi, "pi(%" PRIu64 ") = %" PRIu64, known[i].n, count);
    }
}

/* A visitor that stops: its code comes back, nothing after it is visited. */
static void check_stop(const uint32_t *pi, const unsigned char *is_prime)
{
    walk_t w = {.is_prime = is_prime, .stop_after = 10};
    uint64_t count = 0;
    int rc = sieve_primes(1000, &count, check_prime, &w);
    CHECK(rc == 7 && w.seen == 10 && w.last == 29, "stop: rc %d, seen %" PRIu64, rc, w.seen);
    w = (walk_t){.is_prime = is_prime, .stop_after = 1};
    rc = sieve_primes(1000, &count, check_prime, &w);
    CHECK(rc == 7 && w.seen == 1 && w.last == 2, "stop at 2: rc %d", rc);
    /* In the third segment: the 1000th prime above 2^20 is the last one visited. */
    w = (walk_t){.is_prime = is_prime, .stop_after = pi[1 << 20] + 1000};
    rc = sieve_primes(2000000, &count, check_prime, &w);
    CHECK(rc == 7 && !w.bad && w.seen == w.stop_after && pi[w.last] == w.stop_after,
          "stop in a later segment: rc %d, seen %" PRIu64, rc, w.seen);
}

/* Threads that all make the process's first calls at once: the first builds the
 * shared pre-sieve tables, the others must wait for them. */
static void *race_thread(void *arg)
{
    const uint32_t *pi = arg;
    for (uint64_t n = 0; n <= 3000; n += 7)
        check_count(pi, n);
    check_count(pi, 1100000);
    return NULL;
}

static void check_first_call_race(const uint32_t *pi)
{
    pthread_t threads[RACE_THREADS];
    int started = 0;
    while (started < RACE_THREADS &&
           pthread_create(&threads[started], NULL, race_thread, (void *)pi) == 0)
        started++;
    CHECK(started == RACE_THREADS, "started %d threads of %d", started, RACE_THREADS);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
}

int main(void)
{
    unsigned char *is_prime = NULL;
    uint32_t *pi = naive_pi(&is_prime);
    check_first_call_race(pi); /* first: no call before it */
    for (uint64_t n = 0; n <= EVERY_MAX; n++)
        check_count(pi, n);
    for (uint64_t n = 0; n <= 3000; n++)
        check_limit(pi, is_prime, n);
    check_boundaries(pi, is_prime);
    check_known();
    check_stop(pi, is_prime);
    free(pi);
    free(is_prime);
    if (failures > 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    fprintf(stderr, "test_sieve: all passed\n");
    return 0;
}
