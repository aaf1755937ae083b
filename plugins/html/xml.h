/*
 * libxml2, loaded on first use. Internal to the html plugin.
 *
 * libxml2 brings ICU, libstdc++, liblzma and libz, whose dynamic linking costs about
 * 2 ms at every process start, and every `sluice` start loads every plugin to learn its
 * kinds. Most starts never parse a page: `sluice validate`, runs without html.select,
 * workers running other kinds. So html.so does not link libxml2: the first html.select
 * task opens it with dlopen and fills a table of the functions the plugin calls, and the
 * macros below send each call through the table. The code reads as plain libxml2; only
 * this header and xml.c know the difference (the pattern of engine/io/curl.h).
 *
 * Include this header instead of the libxml2 headers, and call html_xml_open (it is cheap
 * after the first time) before any libxml2 function or global.
 */
#ifndef SLUICE_PLUGIN_HTML_XML_H
#define SLUICE_PLUGIN_HTML_XML_H

#include <stddef.h>

#include <libxml/HTMLparser.h>
#include <libxml/HTMLtree.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlmemory.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

/*
 * X(name): every libxml2 function the plugin calls. The last four return the address of
 * the calling thread's error handlers and their contexts, behind the globals
 * xmlGenericError etc. (they are exported whether or not libxml2 was built with threads).
 */
#define HTML_XML_FUNCTIONS(X)                                                                      \
    X(xmlInitParser)                                                                               \
    X(xmlMemSetup)                                                                                 \
    X(htmlCreateMemoryParserCtxt)                                                                  \
    X(htmlCtxtUseOptions)                                                                          \
    X(htmlParseDocument)                                                                           \
    X(htmlFreeParserCtxt)                                                                          \
    X(htmlNewDocNoDtD)                                                                             \
    X(xmlSwitchEncoding)                                                                           \
    X(xmlFreeDoc)                                                                                  \
    X(xmlHasProp)                                                                                  \
    X(xmlNodeGetContent)                                                                           \
    X(xmlXPathNewContext)                                                                          \
    X(xmlXPathFreeContext)                                                                         \
    X(xmlXPathCtxtCompile)                                                                         \
    X(xmlXPathFreeCompExpr)                                                                        \
    X(xmlXPathCompiledEval)                                                                        \
    X(xmlXPathFreeObject)                                                                          \
    X(xmlXPathCastToString)                                                                        \
    X(xmlSetGenericErrorFunc)                                                                      \
    X(xmlSetStructuredErrorFunc)                                                                   \
    X(__xmlGenericError)                                                                           \
    X(__xmlGenericErrorContext)                                                                    \
    X(__xmlStructuredError)                                                                        \
    X(__xmlStructuredErrorContext)

typedef struct html_xml_api {
#define HTML_XML_MEMBER(name) __typeof__(name) *name;
    HTML_XML_FUNCTIONS(HTML_XML_MEMBER)
#undef HTML_XML_MEMBER
    /* The global variable xmlFree (libxml2's free function): its address. */
    xmlFreeFunc *free_func;
} html_xml_api_t;

extern html_xml_api_t html_xml;

/* The allocator installed with xmlMemSetup, before the parser is initialized. */
typedef struct html_xml_alloc {
    xmlFreeFunc free_func;
    xmlMallocFunc malloc_func;
    xmlReallocFunc realloc_func;
    xmlStrdupFunc strdup_func;
} html_xml_alloc_t;

/*
 * Loads libxml2, installs `alloc` with xmlMemSetup and runs xmlInitParser, once per
 * process; 0 once done. Thread-safe; after the first success it is one atomic load.
 * `alloc` is borrowed for the call (the first successful call's is the one installed).
 *
 * On failure returns SL_ENOTFOUND and writes why to `err` ("cannot load libxml2:
 * libxml2.so.2: cannot open shared object file: ..."); a later call tries again.
 *
 * The library is "libxml2.so.2", or for tests the file named by the environment variable
 * SLUICE_TEST_LIBXML2 when it is set and not empty (tests point it at a missing file).
 */
int html_xml_open(const html_xml_alloc_t *alloc, char *err, size_t err_size);

/* ---- the calls, through the table ------------------------------------------------------ */

#define xmlInitParser(...) html_xml.xmlInitParser(__VA_ARGS__)
#define xmlMemSetup(...) html_xml.xmlMemSetup(__VA_ARGS__)
#define htmlCreateMemoryParserCtxt(...) html_xml.htmlCreateMemoryParserCtxt(__VA_ARGS__)
#define htmlCtxtUseOptions(...) html_xml.htmlCtxtUseOptions(__VA_ARGS__)
#define htmlParseDocument(...) html_xml.htmlParseDocument(__VA_ARGS__)
#define htmlFreeParserCtxt(...) html_xml.htmlFreeParserCtxt(__VA_ARGS__)
#define htmlNewDocNoDtD(...) html_xml.htmlNewDocNoDtD(__VA_ARGS__)
#define xmlSwitchEncoding(...) html_xml.xmlSwitchEncoding(__VA_ARGS__)
#define xmlFreeDoc(...) html_xml.xmlFreeDoc(__VA_ARGS__)
#define xmlHasProp(...) html_xml.xmlHasProp(__VA_ARGS__)
#define xmlNodeGetContent(...) html_xml.xmlNodeGetContent(__VA_ARGS__)
#define xmlXPathNewContext(...) html_xml.xmlXPathNewContext(__VA_ARGS__)
#define xmlXPathFreeContext(...) html_xml.xmlXPathFreeContext(__VA_ARGS__)
#define xmlXPathCtxtCompile(...) html_xml.xmlXPathCtxtCompile(__VA_ARGS__)
#define xmlXPathFreeCompExpr(...) html_xml.xmlXPathFreeCompExpr(__VA_ARGS__)
#define xmlXPathCompiledEval(...) html_xml.xmlXPathCompiledEval(__VA_ARGS__)
#define xmlXPathFreeObject(...) html_xml.xmlXPathFreeObject(__VA_ARGS__)
#define xmlXPathCastToString(...) html_xml.xmlXPathCastToString(__VA_ARGS__)
#define xmlSetGenericErrorFunc(...) html_xml.xmlSetGenericErrorFunc(__VA_ARGS__)
#define xmlSetStructuredErrorFunc(...) html_xml.xmlSetStructuredErrorFunc(__VA_ARGS__)

/*
 * The globals. libxml2's headers make the error handlers macros over the functions above
 * when it is built with threads, and plain variables otherwise: ours go through the
 * functions under either configuration. xmlFree is read from the global variable, which
 * html_xml_open set with xmlMemSetup.
 */
#undef xmlGenericError
#undef xmlGenericErrorContext
#undef xmlStructuredError
#undef xmlStructuredErrorContext
#undef xmlFree
#define xmlGenericError (*html_xml.__xmlGenericError())
#define xmlGenericErrorContext (*html_xml.__xmlGenericErrorContext())
#define xmlStructuredError (*html_xml.__xmlStructuredError())
#define xmlStructuredErrorContext (*html_xml.__xmlStructuredErrorContext())
#define xmlFree (*html_xml.free_func)

#endif /* SLUICE_PLUGIN_HTML_XML_H */
