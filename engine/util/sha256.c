/*
 * SHA-256 (FIPS 180-4), for content addresses: the store's object files and cache keys.
 * Written from the standard: eight 32-bit words of state, 64-byte blocks, 64 rounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/sha256.h"
#include "util/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
#define SL_SHA256_HARDWARE 1
#endif

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void compress(uint32_t state[8], const uint8_t block[64])
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(block + 4 * t);
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        uint32_t big1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t choose = (e & f) ^ (~e & g);
        uint32_t t1 = h + big1 + choose + round_constants[t] + w[t];
        uint32_t big0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = big0 + majority;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

#ifdef SL_SHA256_HARDWARE
/* The same rounds on the x86 SHA extensions (Intel's SHA-NI, AMD since Zen), which keep the
 * state as two registers, ABEF and CDGH, and do two rounds (sha256rnds2) and the message
 * schedule (sha256msg1/msg2) per instruction: about eight times fewer instructions. */
__attribute__((target("sha,sse4.1"))) static void compress_hw(uint32_t state[8], const uint8_t *p,
                                                              size_t blocks)
{
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)(const void *)&state[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(const void *)&state[4]);
    __m128i badc = _mm_shuffle_epi32(dcba, 0xb1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);
    __m128i abef = _mm_alignr_epi8(badc, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, badc, 0xf0);
    for (; blocks; blocks--, p += 64) {
        __m128i saved_abef = abef, saved_cdgh = cdgh, w[4];
        for (int i = 0; i < 4; i++)
            w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i)),
                                    swap);
        for (int t = 0; t < 16; t++) { /* four rounds each */
            __m128i *wt = &w[t & 3];
            if (t >= 4) { /* w[t] from w[t-4] (in place), w[t-3], w[t-2] and w[t-1] */
                __m128i m = _mm_sha256msg1_epu32(*wt, w[(t + 1) & 3]);
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(t + 3) & 3], w[(t + 2) & 3], 4));
                *wt = _mm_sha256msg2_epu32(m, w[(t + 3) & 3]);
            }
            __m128i k = _mm_loadu_si128((const __m128i *)(const void *)&round_constants[4 * t]);
            __m128i m = _mm_add_epi32(*wt, k);
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m, 0x0e));
        }
        abef = _mm_add_epi32(abef, saved_abef);
        cdgh = _mm_add_epi32(cdgh, saved_cdgh);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    _mm_storeu_si128((__m128i *)(void *)&state[0], _mm_blend_epi16(feba, dchg, 0xf0));
    _mm_storeu_si128((__m128i *)(void *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}
#endif

static bool portable_only; /* set by tests, before threads start, to check both paths */

bool sl__sha256_portable(bool on)
{
    bool was = portable_only;
    portable_only = on;
    return was;
}

#ifdef SL_SHA256_HARDWARE
/* Whether the CPU has the SHA extensions and SSE4.1 (CPUID leaf 7 EBX bit 29, leaf 1 ECX
 * bits 19 and 9), asked once; read from cpuid because not every compiler knows "sha" in
 * __builtin_cpu_supports. */
static bool cpu_has_sha(void)
{
    static atomic_int known; /* 0 not asked yet, 1 no, 2 yes */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        unsigned a, b, c, d;
        bool sse = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
        bool sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
        k = sse && sha ? 2 : 1;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 2;
}
#endif

/* `blocks` 64-byte blocks into the state, on the SHA extensions where the CPU has them. */
static void compress_blocks(uint32_t state[8], const uint8_t *p, size_t blocks)
{
#ifdef SL_SHA256_HARDWARE
    if (!portable_only && cpu_has_sha()) {
        compress_hw(state, p, blocks);
        return;
    }
#endif
    for (; blocks; blocks--, p += 64)
        compress(state, p);
}

void sl__sha256_init(sl_sha256_t *ctx)
{
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(ctx->state, initial, sizeof(initial));
    ctx->bytes = 0;
    ctx->fill = 0;
}

void sl__sha256_add(sl_sha256_t *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    ctx->bytes += len;
    if (ctx->fill) {
        size_t take = 64 - ctx->fill < len ? 64 - ctx->fill : len;
        memcpy(ctx->block + ctx->fill, p, take);
        ctx->fill += take;
        p += take;
        len -= take;
        if (ctx->fill < 64)
            return;
        compress_blocks(ctx->state, ctx->block, 1);
        ctx->fill = 0;
    }
    compress_blocks(ctx->state, p, len / 64);
    p += len / 64 * 64;
    len %= 64;
    memcpy(ctx->block, p, len);
    ctx->fill = len;
}

void sl__sha256_end(sl_sha256_t *ctx, uint8_t digest[SL_SHA256_BYTES])
{
    uint64_t bits = ctx->bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t pad_len = (ctx->fill < 56 ? 56 : 120) - ctx->fill;
    for (int i = 0; i < 8; i++)
        pad[pad_len + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    sl__sha256_add(ctx, pad, pad_len + 8);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)ctx->state[i];
    }
}

void sl__sha256_hex(const uint8_t digest[SL_SHA256_BYTES], char hex[SL_SHA256_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SL_SHA256_BYTES; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[2 * SL_SHA256_BYTES] = '\0';
}

void sl__sha256_hex_of(const void *data, size_t len, char hex[SL_SHA256_HEX_SIZE])
{
    sl_sha256_t ctx;
    uint8_t digest[SL_SHA256_BYTES];
    sl__sha256_init(&ctx);
    sl__sha256_add(&ctx, data, len);
    sl__sha256_end(&ctx, digest);
    sl__sha256_hex(digest, hex);
}

int sl__sha256_file(const char *path, char hex[SL_SHA256_HEX_SIZE])
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SL_ENOENT : SL_EIO;
    return sl__sha256_fd(fd, hex);
}

int sl__sha256_fd(int fd, char hex[SL_SHA256_HEX_SIZE])
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return SL_EIO; /* a FIFO or device is not content to hash */
    }
    sl_sha256_t ctx;
    sl__sha256_init(&ctx);
    uint8_t block[65536];
    ssize_t n;
    while ((n = read(fd, block, sizeof(block))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            sl__sha256_add(&ctx, block, (size_t)n);
    close(fd);
    if (n < 0)
        return SL_EIO;
    uint8_t digest[SL_SHA256_BYTES];
    sl__sha256_end(&ctx, digest);
    sl__sha256_hex(digest, hex);
    return 0;
}
