/*
 * Segmented, bit-packed, odd-only sieve of Eratosthenes, pre-sieved for the odd
 * primes below 64. Internal to the primes plugin; also compiled into
 * bench/floor_primes.c's comparison (same algorithm).
 */
#ifndef SLUICE_PLUGIN_PRIMES_SIEVE_H
#define SLUICE_PLUGIN_PRIMES_SIEVE_H

#include <stdint.h>

/* Largest limit the sieve accepts: 2^32. */
#define SIEVE_LIMIT_MAX ((uint64_t)1 << 32)

/* Called for each prime in increasing order; returns 0 to go on, non-zero to stop. */
typedef int (*sieve_visit_fn)(void *ud, uint64_t prime);

/*
 * Counts the primes <= limit (limit <= SIEVE_LIMIT_MAX) into *count and, when
 * `visit` is not NULL, calls it for each of them in increasing order.
 * Reentrant and thread-safe: a call's state is on the stack (a 32 KiB segment)
 * and, for a limit above 2^19 only, malloc'd for the call (at most ~52 KiB).
 * The first call in a process also builds the pre-sieve tables (72 KiB of
 * static memory, pthread_once): constants that depend on no limit and never
 * change after; nothing else survives a call.
 * Returns 0; -1 when out of memory (limits above 2^19 only); the non-zero value
 * `visit` returned when it stopped the walk (*count is then not set).
 */
int sieve_primes(uint64_t limit, uint64_t *count, sieve_visit_fn visit, void *ud);

#endif /* SLUICE_PLUGIN_PRIMES_SIEVE_H */
