/*
 * plugin/args: the argument helpers of the host table (ABI 1.2): host->arg_int,
 * arg_duration, arg_string and arg_strings are these functions, documented in
 * sluice/plugin.h with their standard messages. Any thread that owns `args`.
 */
#ifndef SL_PLUGIN_ARGS_H
#define SL_PLUGIN_ARGS_H

#include "sluice/plugin.h"

int sl__args_int(const sl_value_t *args, const char *name, uint32_t flags, int64_t min,
                 int64_t max, const char *hint, int64_t *out, char *err, size_t err_size);
int sl__args_duration(const sl_value_t *args, const char *name, uint32_t flags, int64_t *out_ms,
                      char *err, size_t err_size);
/** *out is a copy made with sl__malloc (host->free frees it). */
int sl__args_string(const sl_value_t *args, const char *name, uint32_t flags, char **out,
                    size_t *len, char *err, size_t err_size);
/** *out is one block made with sl__malloc: the pointers, a NULL, then the texts. */
int sl__args_strings(const sl_value_t *args, const char *name, uint32_t flags, char ***out,
                     size_t *count, char *err, size_t err_size);

#endif
