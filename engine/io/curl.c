/* libcurl through dlopen (see io/curl.h). */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>

#include "io/curl.h"
#include "util/util.h"

/* The SONAME of libcurl 7 and 8, whichever TLS library it was built with. */
#define CURL_LIBRARY "libcurl.so.4"

sl_curl_api_t sl__curl;

int sl__curl_open(char *err, size_t err_size)
{
    static bool ready; /* only the loop thread opens HTTP clients */
    if (ready)
        return 0;
    void *lib = dlopen(CURL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(err, err_size, "cannot load libcurl: %s", dlerror());
        return SL_ENOTFOUND;
    }
    sl_curl_api_t api;
#define SL_CURL_LOAD(name)                                                                     \
    if ((*(void **)&api.name = dlsym(lib, "curl_" #name)) == NULL) {                            \
        snprintf(err, err_size, "cannot load libcurl: %s has no curl_%s (too old?)",            \
                 CURL_LIBRARY, #name);                                                          \
        dlclose(lib);                                                                           \
        return SL_ENOTFOUND;                                                                    \
    }
    SL_CURL_FUNCTIONS(SL_CURL_LOAD)
#undef SL_CURL_LOAD
    if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_size, "cannot load libcurl: curl_global_init failed");
        dlclose(lib);
        return SL_ENOTFOUND;
    }
    sl__curl = api;
    ready = true; /* the library stays loaded until exit, as a linked one would */
    return 0;
}
