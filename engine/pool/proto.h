/*
 * pool/proto: what the engine and its worker processes say to each other.
 *
 * One socket per worker carries frames both ways: a 5-byte header (payload length as
 * a little-endian u32, then a type byte) and the payload. A frame is at most
 * SL_POOL_FRAME_MAX bytes; a bigger one is an error on either side.
 *
 *   engine -> worker  BATCH:   u32 count, then per task: u64 seq, u8 kind length, kind
 *                              name, u16 plugin length, plugin (the file providing the
 *                              kind, loaded on first use; empty: search every plugin),
 *                              u32 attempt, the args (value wire encoding)
 *   worker -> engine  RESULTS: records back to back, each a type byte and:
 *                              DONE  u64 seq, u64 elapsed_ns, u64 length, the output
 *                                    (wire encoding; the length lets a reader skip it)
 *                              FAIL  u64 seq, u64 elapsed_ns, i32 code, i64 retry_after_ms,
 *                                    u32 length, message
 *                              LOG   u64 seq, u8 level, u32 length, message
 *
 * A worker runs its tasks in order and answers them in order, so results match the
 * engine's list of sent tasks one by one. Beside the socket a shared page (a memfd the
 * worker maps) says which task is running since when: the engine reads it to find the
 * task that crashed a worker and to enforce timeouts, without a message per task.
 */
#ifndef SL_POOL_PROTO_H
#define SL_POOL_PROTO_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define SL_POOL_HEADER_SIZE 5
#define SL_POOL_FRAME_MAX (1024u * 1024 * 1024)
#define SL_POOL_SHARED_SIZE 4096
#define SL_POOL_SOCKET_FD 3 /* the worker's end of its socket */
#define SL_POOL_SHARED_FD 4 /* the worker's shared page */

/* END: the last frame of a file-mode worker's output file (empty payload). */
enum { SL_POOL_MSG_BATCH = 1, SL_POOL_MSG_RESULTS = 2, SL_POOL_MSG_END = 3 };
enum { SL_POOL_REC_DONE = 1, SL_POOL_REC_FAIL = 2, SL_POOL_REC_LOG = 3 };

/** The shared page. The worker writes, the engine reads (it may read a stale pair). */
typedef struct sl_pool_shared {
    _Atomic uint64_t running_seq; /* the task being run; 0 = between tasks */
    _Atomic uint64_t started_ns;  /* when it started (CLOCK_MONOTONIC, as sl__clock_now_ns) */
    _Atomic uint32_t out_of_memory; /* the worker died near limits.cpu.memory */
} sl_pool_shared_t;

static inline void sl__pool_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void sl__pool_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t sl__pool_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t sl__pool_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/** A bounds-checked cursor over a received payload. */
typedef struct sl_pool_cursor {
    const uint8_t *data;
    size_t len, pos;
    int error; /* set once anything read past the end */
} sl_pool_cursor_t;

static inline const uint8_t *sl__pool_take(sl_pool_cursor_t *c, size_t n)
{
    if (c->error || n > c->len - c->pos) {
        c->error = 1;
        return NULL;
    }
    const uint8_t *p = c->data + c->pos;
    c->pos += n;
    return p;
}

static inline uint64_t sl__pool_take_u64(sl_pool_cursor_t *c)
{
    const uint8_t *p = sl__pool_take(c, 8);
    return p ? sl__pool_get_u64(p) : 0;
}

static inline uint32_t sl__pool_take_u32(sl_pool_cursor_t *c)
{
    const uint8_t *p = sl__pool_take(c, 4);
    return p ? sl__pool_get_u32(p) : 0;
}

static inline uint8_t sl__pool_take_u8(sl_pool_cursor_t *c)
{
    const uint8_t *p = sl__pool_take(c, 1);
    return p ? p[0] : 0;
}

static inline uint16_t sl__pool_take_u16(sl_pool_cursor_t *c)
{
    const uint8_t *p = sl__pool_take(c, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

#endif
