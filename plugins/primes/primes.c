/*
 * primes.so: the `primes.sieve` step kind. A CPU kind: start() sieves and
 * completes the task before returning.
 *
 *   with:   limit  integer, 0 <= limit <= 2^32 (required)
 *           list   boolean, default false: also return the primes themselves
 *                  (then limit <= PRIMES_LIST_LIMIT_MAX)
 *   output: map { limit, count, primes (list: true only) }: the number of
 *           primes <= limit, and the list of them in increasing order.
 *
 * The sieve (sieve.c) is a segmented, bit-packed, odd-only sieve of
 * Eratosthenes using at most ~250 KiB per call, all of it freed before the
 * task completes; nothing survives between tasks.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include "sieve.h"
#include "sluice/plugin.h"

/* Largest limit with `list: true`: 664,579 primes, a list of a few tens of MiB. */
#define PRIMES_LIST_LIMIT_MAX ((uint64_t)10000000)

static const sl_host_t *host;

/* Reads `limit`: an integer, or a number with an integral value, 0 <= limit <= 2^32, with
 * the host's standard messages ("'limit' must be >= 0, got -5"). Fails the task when not. */
static int read_limit(sl_task_t *task, const sl_value_t *args, uint64_t *out)
{
    char err[SL_ERR_SIZE];
    int64_t limit = 0;
    int rc = host->arg_int(args, "limit", SL_ARG_REQUIRED, 0, (int64_t)SIEVE_LIMIT_MAX, NULL,
                           &limit, err, sizeof(err));
    if (rc != 0) {
        host->task_failf(task, rc, "primes.sieve: %s", err);
        return rc;
    }
    *out = (uint64_t)limit;
    return 0;
}

/* sieve_visit_fn: appends each prime to the list in `ud`. */
static int push_prime(void *ud, uint64_t prime)
{
    sl_value_t *list = ud;
    sl_value_t *item = host->value_int((int64_t)prime);
    return item == NULL || host->value_push(list, item) != 0 ? 1 : 0;
}

static int set_int(sl_value_t *map, const char *key, uint64_t n)
{
    sl_value_t *v = host->value_int((int64_t)n);
    return v != NULL ? host->value_set(map, key, v) : SL_ENOMEM;
}

static int sieve_start(sl_task_t *task, const sl_value_t *args)
{
    uint64_t limit = 0, count = 0;
    if (read_limit(task, args, &limit) != 0)
        return 0;
    const sl_value_t *list_arg = host->value_get(args, "list");
    bool want_list = list_arg != NULL && host->value_truthy(list_arg);
    if (want_list && limit > PRIMES_LIST_LIMIT_MAX) {
        host->task_failf(task, SL_ELIMIT,
                         "primes.sieve: 'list: true' allows a limit up to %" PRIu64 ", got %" PRIu64
                         " (leave 'list' out to count only)",
                         PRIMES_LIST_LIMIT_MAX, limit);
        return 0;
    }
    sl_value_t *map = host->value_map();
    sl_value_t *primes = want_list ? host->value_list() : NULL;
    int rc = map != NULL && (!want_list || primes != NULL) ? 0 : SL_ENOMEM;
    if (rc == 0 && sieve_primes(limit, &count, want_list ? push_prime : NULL, primes) != 0)
        rc = SL_ENOMEM;
    if (rc == 0)
        rc = set_int(map, "limit", limit);
    if (rc == 0)
        rc = set_int(map, "count", count);
    if (rc == 0 && want_list) {
        rc = host->value_set(map, "primes", primes);
        primes = NULL; /* taken, even on failure */
    }
    host->value_free(primes);
    if (rc != 0) {
        host->value_free(map);
        host->task_failf(task, SL_ENOMEM, "primes.sieve: out of memory sieving up to %" PRIu64,
                         limit);
        return 0;
    }
    host->task_done(task, map);
    return 0;
}

static const sl_param_t sieve_params[] = {
    {"limit", SL_PT_INT | SL_PT_NUMBER, SL_PARAM_REQUIRED, "count the primes <= limit (0..2^32)"},
    {"list", SL_PT_BOOL | SL_PT_NIL, 0, "also return the list of primes (default false)"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t primes_kinds[] = {
    {"primes.sieve", SL_EXEC_CPU, 0,
     "Sieve of Eratosthenes: the number of primes <= limit, and optionally the primes.",
     sieve_params, sieve_start, NULL},
};

static const sl_plugin_t primes_plugin = SL_PLUGIN_INIT("primes", "1.0.0", primes_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR)
        return NULL;
    if (!SL_HOST_HAS(h, arg_int)) { /* the only function newer than ABI 1.0 it calls */
        h->log(NULL, SL_LOG_ERROR,
               "primes.so needs sluice's plugin ABI 1.2 (host function 'arg_int'); this sluice "
               "has ABI %u.%u: not loaded", (unsigned)h->abi_major, (unsigned)h->abi_minor);
        return NULL;
    }
    host = h;
    return &primes_plugin;
}
