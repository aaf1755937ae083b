/*
 * The single-threaded floor of the primes benchmark: the plugin's own sieve
 * (plugins/primes/sieve.c, compiled in) called in a plain loop, for every
 * n in FROM..TO, with no engine around it.
 *
 * Build: gcc -O2 -I plugins/primes bench/floor_primes.c plugins/primes/sieve.c
 * Usage: floor_primes FROM TO OUT   writes "TASKS TOTAL_COUNT\n" to OUT
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "sieve.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: floor_primes FROM TO OUT\n");
        return 2;
    }
    uint64_t from = strtoull(argv[1], NULL, 10), to = strtoull(argv[2], NULL, 10);
    uint64_t total = 0, tasks = 0;
    for (uint64_t n = from; n <= to; n++, tasks++) {
        uint64_t count = 0;
        if (sieve_primes(n, &count, NULL, NULL) != 0) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        total += count;
    }
    FILE *out = fopen(argv[3], "w");
    if (out == NULL)
        return 1;
    fprintf(out, "%" PRIu64 " %" PRIu64 "\n", tasks, total);
    return fclose(out) == 0 ? 0 : 1;
}
