/*
 * util/sha256: SHA-256 (FIPS 180-4) of bytes, incrementally, for content addresses (the
 * store's object files, cache keys, workflow file hashes). Any thread; no state but the
 * caller's context.
 */
#ifndef SL_UTIL_SHA256_H
#define SL_UTIL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_SHA256_BYTES 32
#define SL_SHA256_HEX_SIZE 65 /* 64 hex digits and the NUL */

typedef struct sl_sha256 {
    uint32_t state[8];
    uint64_t bytes; /* added so far */
    uint8_t block[64];
    size_t fill;    /* bytes waiting in `block` */
} sl_sha256_t;

void sl__sha256_init(sl_sha256_t *ctx);
void sl__sha256_add(sl_sha256_t *ctx, const void *data, size_t len);
/** Finishes: writes the digest. The context must be initialised again before reuse. */
void sl__sha256_end(sl_sha256_t *ctx, uint8_t digest[SL_SHA256_BYTES]);
/** The digest as 64 lower-case hex digits. */
void sl__sha256_hex(const uint8_t digest[SL_SHA256_BYTES], char hex[SL_SHA256_HEX_SIZE]);
/** The hex digest of `data` in one call. */
void sl__sha256_hex_of(const void *data, size_t len, char hex[SL_SHA256_HEX_SIZE]);

/** Tests only (before any thread hashes): `true` makes every digest use the portable
 *  rounds even where the CPU has SHA instructions. Returns the previous setting. */
bool sl__sha256_portable(bool on);

/** The hex digest of the regular file `path`, read whole (blocking: not on the loop).
 *  Returns SL_ENOENT, or SL_EIO (unreadable, or not a regular file). */
int sl__sha256_file(const char *path, char hex[SL_SHA256_HEX_SIZE]);
/** The same for the open descriptor `fd`, which it closes (a data path opened beneath its
 *  roots, util/confine.h). */
int sl__sha256_fd(int fd, char hex[SL_SHA256_HEX_SIZE]);

#endif
