/*
 * The HTTP client's descriptor budget. Each request in flight holds a socket, and a
 * request being resolved or saved to a file holds one or two more; past RLIMIT_NOFILE
 * socket() fails with EMFILE, which curl reports as "Couldn't connect to server". The
 * client's concurrency is sized to the soft limit at its creation (the CLI raises the soft
 * limit to the hard one at start), with a warning when that lowers limits.http.concurrency.
 */
#include <inttypes.h>
#include <sys/resource.h>

#include "io/internal.h"

#define FDS_PER_REQUEST 2   /* a socket, and a resolver pair or a save_to file */
#define FDS_RESERVED_MIN 32 /* the loop, the state store, the worker pool, logs */

/* Requests in flight that `soft` descriptors allow (at least 1). */
static uint32_t fds_allowed(uint64_t soft)
{
    uint64_t reserved = FDS_RESERVED_MIN + soft / 16;
    if (soft <= reserved + FDS_PER_REQUEST)
        return 1;
    uint64_t n = (soft - reserved) / FDS_PER_REQUEST;
    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

uint32_t sl__io_fds_concurrency(uint32_t wanted)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
        return wanted;
    uint32_t allowed = fds_allowed((uint64_t)lim.rlim_cur);
    if (wanted <= allowed)
        return wanted;
    SL_LOG(SL_LOG_WARN, NULL, NULL,
           "limits.http.concurrency %" PRIu32 " lowered to %" PRIu32 ": the process may open "
           "only %" PRIu64 " files (raise ulimit -n)",
           wanted, allowed, (uint64_t)lim.rlim_cur);
    return allowed;
}
