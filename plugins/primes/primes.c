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
#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "sieve.h"
#include "sluice/plugin.h"

/* Largest limit with `list: true`: 664,579 primes, a list of a few tens of MiB. */
#define PRIMES_LIST_LIMIT_MAX ((uint64_t)10000000)

static const sl_host_t *host;

/* Reads `limit`: an integer, or a number with an integral value, 0 <= limit <= 2^32. */
static int read_limit(sl_task_t *task, const sl_value_t *v, uint64_t *out)
{
    sl_type_t type = v != NULL ? host->value_type(v) : SL_TYPE_NIL;
    double number = 0;
    if (type == SL_TYPE_NUMBER) {
        number = host->value_number_of(v);
        if (!(number == floor(number)) || number < 0 || number > (double)SIEVE_LIMIT_MAX) {
            host->task_failf(task, SL_EINVAL,
                             "primes.sieve: 'limit' must be a whole number from 0 to %" PRIu64
                             ", got %g",
                             SIEVE_LIMIT_MAX, number);
            return SL_EINVAL;
        }
        *out = (uint64_t)number;
        return 0;
    }
    if (type != SL_TYPE_INT) {
        host->task_fail(task, SL_EINVAL, "primes.sieve: 'limit' must be an integer");
        return SL_EINVAL;
    }
    int64_t limit = host->value_int_of(v);
    if (limit < 0) {
        host->task_failf(task, SL_EINVAL, "primes.sieve: 'limit' must be >= 0, got %" PRId64,
                         limit);
        return SL_EINVAL;
    }
    if ((uint64_t)limit > SIEVE_LIMIT_MAX) {
        host->task_failf(task, SL_ELIMIT,
                         "primes.sieve: 'limit' %" PRId64 " is above the maximum, 2^32 = %" PRIu64,
                         limit, SIEVE_LIMIT_MAX);
        return SL_ELIMIT;
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
    if (read_limit(task, args != NULL ? host->value_get(args, "limit") : NULL, &limit) != 0)
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
    if (h == NULL || h->abi_major != SL_ABI_MAJOR || !SL_HOST_HAS(h, task_failf))
        return NULL;
    host = h;
    return &primes_plugin;
}
