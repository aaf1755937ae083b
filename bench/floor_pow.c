/*
 * The single-threaded floor of the pow benchmark: i**i with GMP for every i in
 * FROM..TO, reading off the same three outputs as bigint.pow (bit length, value
 * mod 2^61-1, value mod 2^64) the same way, with no engine around it.
 *
 * Build: gcc -O2 bench/floor_pow.c -lgmp
 * Usage: floor_pow FROM TO OUT   writes "i\tbits\tmod61\tlow64\n" lines to OUT
 */
#include <gmp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: floor_pow FROM TO OUT\n");
        return 2;
    }
    unsigned long from = strtoul(argv[1], NULL, 10), to = strtoul(argv[2], NULL, 10);
    FILE *out = fopen(argv[3], "w");
    if (out == NULL)
        return 1;
    fprintf(out, "i\tbits\tmod61\tlow64\n");
    mpz_t base, x;
    mpz_init(base);
    mpz_init(x);
    for (unsigned long i = from; i <= to; i++) {
        mpz_set_ui(base, i); /* as the plugin: base as an mpz, then mpz_pow_ui */
        mpz_pow_ui(x, base, i);
        uint64_t bits = mpz_sgn(x) == 0 ? 0 : (uint64_t)mpz_sizeinbase(x, 2);
        uint64_t mod61 = mpz_fdiv_ui(x, 0x1fffffffffffffffUL);
        uint64_t low64 = (uint64_t)mpz_getlimbn(x, 0); /* 64-bit limbs (x86_64, arm64) */
        fprintf(out, "%lu\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", i, bits, mod61, low64);
    }
    mpz_clear(base);
    mpz_clear(x);
    return fclose(out) == 0 ? 0 : 1;
}
