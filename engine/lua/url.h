/*
 * lua/url.h: URL resolution, parsing and normalisation over libcurl's URL API (url.c), for
 * the `sluice.url` table of Lua steps (loop and worker) and the expressions' url_join.
 * Loop thread or a worker's main thread (libcurl is opened on first use, io/curl.h).
 */
#ifndef SL_LUA_URL_H
#define SL_LUA_URL_H

#include <stddef.h>

#include "vm/vm.h"

/**
 * Resolves reference `ref` against absolute URL `base` (RFC 3986 §5.2). Returns 0 and *out
 * (sl__malloc'd, the caller frees it), or SL_EINVAL with `err` = "bad base URL 'B': CAUSE"
 * or "bad reference 'R': CAUSE" (curl's reason), SL_ENOTFOUND when libcurl cannot be
 * loaded, SL_ENOMEM.
 */
int sl__url_join(const char *base, const char *ref, char **out, char *err, size_t err_size);

/**
 * `url` normalised for comparison: scheme and host lower-cased, the scheme's default port
 * dropped, dot segments removed, the fragment dropped. Returns and fails as sl__url_join
 * ("bad URL 'U': CAUSE").
 */
int sl__url_normalize(const char *url, char **out, char *err, size_t err_size);

/** Sets `url` (join, parse, normalize) in the module table at `module`. Raises. */
void sl__url_open(lua_State *L, int module);

/** The C function of the expressions' url_join(base, ref), for sl__vm_set_url_join. */
lua_CFunction sl__url_helper(void);

#endif
