/* libxml2 through dlopen (see xml.h). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/plugin.h"
#include "xml.h"

/* The SONAME of libxml2 2.x. */
#define XML_LIBRARY "libxml2.so.2"
/* Tests only: a file to open instead (see xml.h). */
#define XML_LIBRARY_ENV "SLUICE_TEST_LIBXML2"

html_xml_api_t html_xml;

/* Serializes the first loads; `ready` is set (release) once html_xml is complete. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool ready;

/* Opens the library and fills html_xml; with open_lock held. */
static int load(const html_xml_alloc_t *alloc, char *err, size_t err_size)
{
    const char *library = getenv(XML_LIBRARY_ENV);
    if (library == NULL || library[0] == '\0')
        library = XML_LIBRARY;
    void *lib = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        snprintf(err, err_size, "cannot load libxml2: %s", dlerror());
        return SL_ENOTFOUND;
    }
    html_xml_api_t api;
    const char *missing = NULL;
#define HTML_XML_LOAD(name)                                                                        \
    if ((*(void **)&api.name = dlsym(lib, #name)) == NULL && missing == NULL)                      \
        missing = #name;
    HTML_XML_FUNCTIONS(HTML_XML_LOAD)
#undef HTML_XML_LOAD
    if ((api.free_func = dlsym(lib, "xmlFree")) == NULL && missing == NULL)
        missing = "xmlFree";
    if (missing != NULL) {
        snprintf(err, err_size, "cannot load libxml2: %s has no %s (too old?)", library, missing);
        dlclose(lib);
        return SL_ENOTFOUND;
    }
    html_xml = api; /* no one reads it before `ready` */
    /* Once, before the parser is initialized, as libxml2 asks. */
    xmlMemSetup(alloc->free_func, alloc->malloc_func, alloc->realloc_func, alloc->strdup_func);
    xmlInitParser();
    /* The library stays loaded until exit, as a linked one would. */
    atomic_store_explicit(&ready, true, memory_order_release);
    return 0;
}

int html_xml_open(const html_xml_alloc_t *alloc, char *err, size_t err_size)
{
    if (atomic_load_explicit(&ready, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&open_lock);
    int rc = atomic_load_explicit(&ready, memory_order_relaxed) ? 0 : load(alloc, err, err_size);
    pthread_mutex_unlock(&open_lock);
    return rc;
}
