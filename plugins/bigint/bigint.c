/*
 * bigint.so: the `bigint.pow` step kind, with GMP. A CPU kind: start()
 * computes and completes the task before returning.
 *
 *   with:   base      integer >= 0, or a string of decimal digits (big bases)
 *           exponent  integer 0 .. 10^9, or a string of decimal digits
 *   output: map { bits, mod61, low64 }, each a string of decimal digits:
 *           the bit length of base^exponent (0 for the value 0), the value
 *           mod 2^61 - 1, and the value mod 2^64.
 *
 * base^exponent is computed once (mpz_pow_ui); the three outputs are read off
 * it without converting the whole number to decimal. 0^0 is 1.
 *
 * Memory: GMP cannot fail cleanly when an allocation fails (it aborts), so
 * oversized work is refused before it starts: the result may have at most
 * BIGINT_RESULT_BITS_MAX bits (checked against the bound exponent × bit
 * length of base), and before a large power the memory it will need is
 * reserved and released once (malloc), so that a worker under an
 * address-space limit fails the task with SL_ENOMEM instead of aborting.
 * GMP's allocator is left as it is (it is process-wide). Every mpz is
 * cleared before the task completes; nothing survives between tasks.
 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmp.h>

#include "sluice/plugin.h"

/* Largest exponent accepted. */
#define BIGINT_EXPONENT_MAX ((uint64_t)1000000000)
/* Largest result, in bits: 2^32 bits is 512 MiB. */
#define BIGINT_RESULT_BITS_MAX ((uint64_t)1 << 32)
/* Longest decimal string accepted for base or exponent. */
#define BIGINT_DIGITS_MAX ((size_t)10000000)
/* Results above this many bits get the memory probe. */
#define BIGINT_PROBE_BITS ((uint64_t)1 << 26)
/* The probe reserves this many times the result's size (result, square, FFT scratch). */
#define BIGINT_PROBE_FACTOR 4
/* 2^61 - 1, a Mersenne prime. */
#define MERSENNE61 ((uint64_t)0x1fffffffffffffff)

static const sl_host_t *host;

/* What the standard message says for a number that is not an integer of int64 range. */
#define BIGINT_HINT "use a string of digits for big values"

/* Reads a string of decimal digits into `out`. */
static int read_digits(sl_task_t *task, const char *name, const char *s, size_t len, mpz_t out)
{
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) {
            host->task_failf(task, SL_EINVAL,
                             "bigint.pow: '%s' must be a string of decimal digits, got '%.40s%s'",
                             name, s, len > 40 ? "…" : "");
            return SL_EINVAL;
        }
    }
    if (len == 0 || len > BIGINT_DIGITS_MAX) {
        host->task_failf(task, len == 0 ? SL_EINVAL : SL_ELIMIT,
                         "bigint.pow: '%s' must have 1 to %zu digits, got %zu", name,
                         BIGINT_DIGITS_MAX, len);
        return len == 0 ? SL_EINVAL : SL_ELIMIT;
    }
    if (mpz_set_str(out, s, 10) != 0) {
        host->task_failf(task, SL_EINVAL, "bigint.pow: '%s' is not a decimal number", name);
        return SL_EINVAL;
    }
    return 0;
}

/*
 * Reads a parameter into `out`: a string of decimal digits (any size), or else an integer
 * from 0 to `max` through the host's arg_int, whose standard messages name the string form
 * for a number without an integer value ("'exponent' must be a whole number (use a string
 * of digits for big values), got 1.5"). Fails the task when not.
 */
static int read_natural(sl_task_t *task, const sl_value_t *args, const char *name, int64_t max,
                        mpz_t out)
{
    const sl_value_t *v = host->value_get(args, name);
    size_t len = 0;
    const char *s = v != NULL ? host->value_str(v, &len) : NULL;
    if (s != NULL)
        return read_digits(task, name, s, len, out);
    char err[SL_ERR_SIZE];
    int64_t n = 0;
    int rc = host->arg_int(args, name, SL_ARG_REQUIRED, 0, max, BIGINT_HINT, &n, err,
                           sizeof(err));
    if (rc != 0) {
        host->task_failf(task, rc, "bigint.pow: %s", err);
        return rc;
    }
    mpz_set_ui(out, 0);
    mpz_import(out, 1, 1, sizeof(uint64_t), 0, 0, &(uint64_t){(uint64_t)n});
    return 0;
}

/*
 * Checks that base^exponent fits the limits and that the memory for it can be had.
 * Fails the task (and returns non-zero) when not.
 */
static int check_size(sl_task_t *task, const mpz_t base, const mpz_t exponent)
{
    if (mpz_cmp_ui(exponent, 0) > 0 && mpz_sizeinbase(exponent, 2) > 32) {
        host->task_failf(task, SL_ELIMIT, "bigint.pow: 'exponent' is above the maximum, %" PRIu64,
                         BIGINT_EXPONENT_MAX);
        return SL_ELIMIT;
    }
    uint64_t exp = (uint64_t)mpz_get_ui(exponent);
    if (exp > BIGINT_EXPONENT_MAX) {
        host->task_failf(task, SL_ELIMIT,
                         "bigint.pow: 'exponent' %" PRIu64 " is above the maximum, %" PRIu64, exp,
                         BIGINT_EXPONENT_MAX);
        return SL_ELIMIT;
    }
    if (mpz_cmp_ui(base, 1) <= 0 || exp <= 1)
        return 0; /* 0, 1 or the base itself: no bigger than the input */
    uint64_t base_bits = (uint64_t)mpz_sizeinbase(base, 2);
    if (base_bits > BIGINT_RESULT_BITS_MAX / exp) {
        host->task_failf(task, SL_ELIMIT,
                         "bigint.pow: the result would have up to %" PRIu64 " × %" PRIu64
                         " bits, more than the maximum, 2^32 bits",
                         base_bits, exp);
        return SL_ELIMIT;
    }
    uint64_t bound_bits = base_bits * exp;
    if (bound_bits > BIGINT_PROBE_BITS) {
        void *probe = malloc((size_t)(bound_bits / 8 + 64) * BIGINT_PROBE_FACTOR);
        if (probe == NULL) {
            host->task_failf(task, SL_ENOMEM,
                             "bigint.pow: out of memory for a result of up to %" PRIu64 " bits",
                             bound_bits);
            return SL_ENOMEM;
        }
        free(probe);
    }
    return 0;
}

/* The value mod 2^64, from its lowest limbs. */
static uint64_t low64_of(const mpz_t x)
{
    uint64_t low = 0;
    for (size_t i = 0; i * GMP_NUMB_BITS < 64; i++)
        low |= (uint64_t)mpz_getlimbn(x, (mp_size_t)i) << (i * GMP_NUMB_BITS);
    return low;
}

/* The value mod 2^61 - 1. */
static uint64_t mod61_of(const mpz_t x)
{
#if ULONG_MAX >= 0x1fffffffffffffff
    return (uint64_t)mpz_fdiv_ui(x, (unsigned long)MERSENNE61);
#else
    mpz_t modulus, rest;
    mpz_init(modulus);
    mpz_init(rest);
    mpz_setbit(modulus, 61);
    mpz_sub_ui(modulus, modulus, 1);
    mpz_fdiv_r(rest, x, modulus);
    uint64_t r = 0;
    mpz_export(&r, NULL, -1, sizeof(r), 0, 0, rest);
    mpz_clear(modulus);
    mpz_clear(rest);
    return r;
#endif
}

static int set_decimal(sl_value_t *map, const char *key, uint64_t n)
{
    char text[24];
    int len = snprintf(text, sizeof(text), "%" PRIu64, n);
    sl_value_t *v = host->value_string(text, (size_t)len);
    return v != NULL ? host->value_set(map, key, v) : SL_ENOMEM;
}

static int pow_start(sl_task_t *task, const sl_value_t *args)
{
    if (args == NULL) {
        host->task_fail(task, SL_EINVAL, "bigint.pow: 'base' and 'exponent' are required");
        return 0;
    }
    mpz_t base, exponent, result;
    mpz_init(base);
    mpz_init(exponent);
    mpz_init(result);
    if (read_natural(task, args, "base", INT64_MAX, base) != 0 ||
        read_natural(task, args, "exponent", (int64_t)BIGINT_EXPONENT_MAX, exponent) != 0 ||
        check_size(task, base, exponent) != 0)
        goto out;
    mpz_pow_ui(result, base, mpz_get_ui(exponent));
    uint64_t bits = mpz_sgn(result) == 0 ? 0 : (uint64_t)mpz_sizeinbase(result, 2);
    sl_value_t *map = host->value_map();
    int rc = map != NULL ? 0 : SL_ENOMEM;
    rc = rc != 0 ? rc : set_decimal(map, "bits", bits);
    rc = rc != 0 ? rc : set_decimal(map, "mod61", mod61_of(result));
    rc = rc != 0 ? rc : set_decimal(map, "low64", low64_of(result));
    if (rc != 0) {
        host->value_free(map);
        host->task_fail(task, SL_ENOMEM, "bigint.pow: out of memory building the result");
        goto out;
    }
    host->task_done(task, map);
out:
    mpz_clear(base);
    mpz_clear(exponent);
    mpz_clear(result);
    return 0;
}

static const sl_param_t pow_params[] = {
    {"base", SL_PT_INT | SL_PT_NUMBER | SL_PT_STRING, SL_PARAM_REQUIRED,
     "integer >= 0, or a string of decimal digits"},
    {"exponent", SL_PT_INT | SL_PT_NUMBER | SL_PT_STRING, SL_PARAM_REQUIRED,
     "integer from 0 to 10^9"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t bigint_kinds[] = {
    {"bigint.pow", SL_EXEC_CPU, 0,
     "base^exponent with GMP: its bit length, the value mod 2^61-1 and mod 2^64 (as strings).",
     pow_params, pow_start, NULL},
};

static const sl_plugin_t bigint_plugin = SL_PLUGIN_INIT("bigint", "1.0.0", bigint_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR)
        return NULL;
    if (!SL_HOST_HAS(h, arg_int)) { /* the only function newer than ABI 1.0 it calls */
        h->log(NULL, SL_LOG_ERROR,
               "bigint.so needs sluice's plugin ABI 1.2 (host function 'arg_int'); this sluice "
               "has ABI %u.%u: not loaded", (unsigned)h->abi_major, (unsigned)h->abi_minor);
        return NULL;
    }
    host = h;
    return &bigint_plugin;
}
