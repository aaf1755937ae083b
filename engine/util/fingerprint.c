/*
 * A 128-bit fingerprint from two 64-bit lanes that see every byte: an FNV-1a lane and a
 * rotate-multiply lane with an odd constant of the golden ratio, each finished by a
 * 64-bit avalanche (xor-shift and multiply, three rounds), so that one changed byte flips
 * about half of the output bits. A few instructions per byte, no block buffering.
 */
#include "util/fingerprint.h"

#include <stdio.h>

static uint64_t rotl(uint64_t x, unsigned n)
{
    return (x << n) | (x >> (64 - n));
}

static uint64_t avalanche(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return x;
}

void sl__fingerprint_init(sl_fingerprint_t *fp)
{
    fp->lane[0] = 0xcbf29ce484222325u; /* FNV-1a's 64-bit offset basis */
    fp->lane[1] = 0x6a09e667f3bcc908u; /* the first 64 bits of frac(sqrt(2)) */
}

void sl__fingerprint_add(sl_fingerprint_t *fp, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t a = fp->lane[0], b = fp->lane[1];
    for (size_t i = 0; i < len; i++) {
        a = (a ^ p[i]) * 0x100000001b3u;               /* FNV-1a's 64-bit prime */
        b = rotl(b ^ p[i], 23) * 0x9e3779b97f4a7c15u;  /* 2^64 / golden ratio, odd */
    }
    fp->lane[0] = a;
    fp->lane[1] = b;
}

void sl__fingerprint_hex(const sl_fingerprint_t *fp, char hex[SL_FINGERPRINT_HEX_SIZE])
{
    uint64_t a = avalanche(fp->lane[0] ^ rotl(fp->lane[1], 32));
    uint64_t b = avalanche(fp->lane[1] ^ a);
    snprintf(hex, SL_FINGERPRINT_HEX_SIZE, "%016llx%016llx", (unsigned long long)a,
             (unsigned long long)b);
}
