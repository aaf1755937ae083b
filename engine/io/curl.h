/*
 * libcurl, loaded on first use.
 *
 * libcurl brings about thirty libraries (TLS, Kerberos, LDAP, SSH, ...) whose dynamic
 * linking costs 6 ms at every process start. Most starts need none of it: `sluice
 * validate`, runs without HTTP, and every worker process. So the engine does not link
 * libcurl: the first HTTP client opens it with dlopen and fills a table of the functions
 * io/ calls, and the macros below send each call through the table. The code reads as
 * plain libcurl; only this header and curl.c know the difference.
 *
 * Include this header instead of <curl/curl.h>, and call sl__curl_open (it is cheap after
 * the first time) before any libcurl function.
 */
#ifndef SL_IO_CURL_H
#define SL_IO_CURL_H

#include <stddef.h>

/* The type-checking wrappers are macros named like the functions: they would hide ours. */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>

/* X(name): every libcurl function io/ uses, without its curl_ prefix. */
#define SL_CURL_FUNCTIONS(X)                                                                   \
    X(global_init)                                                                             \
    X(easy_init)                                                                               \
    X(easy_setopt)                                                                             \
    X(easy_getinfo)                                                                            \
    X(easy_pause)                                                                              \
    X(easy_strerror)                                                                           \
    X(easy_cleanup)                                                                            \
    X(multi_init)                                                                              \
    X(multi_setopt)                                                                            \
    X(multi_add_handle)                                                                        \
    X(multi_remove_handle)                                                                     \
    X(multi_socket_action)                                                                     \
    X(multi_assign)                                                                            \
    X(multi_info_read)                                                                         \
    X(multi_cleanup)                                                                           \
    X(share_init)                                                                              \
    X(share_setopt)                                                                            \
    X(share_cleanup)                                                                           \
    X(slist_append)                                                                            \
    X(slist_free_all)                                                                          \
    X(url)                                                                                     \
    X(url_get)                                                                                 \
    X(url_set)                                                                                 \
    X(url_cleanup)                                                                             \
    X(url_strerror)                                                                            \
    X(version_info)                                                                            \
    X(free)

typedef struct sl_curl_api {
#define SL_CURL_MEMBER(name) __typeof__(curl_##name) *name;
    SL_CURL_FUNCTIONS(SL_CURL_MEMBER)
#undef SL_CURL_MEMBER
} sl_curl_api_t;

extern sl_curl_api_t sl__curl;

/**
 * Loads libcurl and runs curl_global_init, once per process; 0 once done. On failure
 * returns SL_ENOTFOUND and writes why to `err` ("libcurl.so.4: cannot open shared object
 * file: ..."); a later call tries again.
 */
int sl__curl_open(char *err, size_t err_size);

/* curl.h makes these four macros that check for exactly three arguments: so do ours. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#undef curl_share_setopt

#define curl_global_init(...) sl__curl.global_init(__VA_ARGS__)
#define curl_easy_init(...) sl__curl.easy_init(__VA_ARGS__)
#define curl_easy_setopt(handle, option, param) sl__curl.easy_setopt(handle, option, param)
#define curl_easy_getinfo(handle, info, arg) sl__curl.easy_getinfo(handle, info, arg)
#define curl_easy_pause(...) sl__curl.easy_pause(__VA_ARGS__)
#define curl_easy_strerror(...) sl__curl.easy_strerror(__VA_ARGS__)
#define curl_easy_cleanup(...) sl__curl.easy_cleanup(__VA_ARGS__)
#define curl_multi_init(...) sl__curl.multi_init(__VA_ARGS__)
#define curl_multi_setopt(handle, option, param) sl__curl.multi_setopt(handle, option, param)
#define curl_multi_add_handle(...) sl__curl.multi_add_handle(__VA_ARGS__)
#define curl_multi_remove_handle(...) sl__curl.multi_remove_handle(__VA_ARGS__)
#define curl_multi_socket_action(...) sl__curl.multi_socket_action(__VA_ARGS__)
#define curl_multi_assign(...) sl__curl.multi_assign(__VA_ARGS__)
#define curl_multi_info_read(...) sl__curl.multi_info_read(__VA_ARGS__)
#define curl_multi_cleanup(...) sl__curl.multi_cleanup(__VA_ARGS__)
#define curl_share_init(...) sl__curl.share_init(__VA_ARGS__)
#define curl_share_setopt(share, option, param) sl__curl.share_setopt(share, option, param)
#define curl_share_cleanup(...) sl__curl.share_cleanup(__VA_ARGS__)
#define curl_slist_append(...) sl__curl.slist_append(__VA_ARGS__)
#define curl_slist_free_all(...) sl__curl.slist_free_all(__VA_ARGS__)
#define curl_url(...) sl__curl.url(__VA_ARGS__)
#define curl_url_get(...) sl__curl.url_get(__VA_ARGS__)
#define curl_url_set(...) sl__curl.url_set(__VA_ARGS__)
#define curl_url_cleanup(...) sl__curl.url_cleanup(__VA_ARGS__)
#define curl_url_strerror(...) sl__curl.url_strerror(__VA_ARGS__)
#define curl_version_info(...) sl__curl.version_info(__VA_ARGS__)
#define curl_free(...) sl__curl.free(__VA_ARGS__)

#endif
