/*
 * util/fingerprint: a fast 128-bit fingerprint of bytes, incrementally, for telling whether
 * something changed (a step's definition between runs). Not a content address: nothing
 * trusts it against a chosen collision (those use util/sha256). Any thread.
 */
#ifndef SL_UTIL_FINGERPRINT_H
#define SL_UTIL_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#define SL_FINGERPRINT_HEX_SIZE 33 /* 32 hex digits and the NUL */

typedef struct sl_fingerprint {
    uint64_t lane[2];
} sl_fingerprint_t;

void sl__fingerprint_init(sl_fingerprint_t *fp);
void sl__fingerprint_add(sl_fingerprint_t *fp, const void *data, size_t len);
/** Finishes: writes the fingerprint as 32 lower-case hex digits. */
void sl__fingerprint_hex(const sl_fingerprint_t *fp, char hex[SL_FINGERPRINT_HEX_SIZE]);

#endif
