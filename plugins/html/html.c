/*
 * html.so: the `html.select` step kind (SPEC §3). A CPU kind: start() parses,
 * selects and completes the task before returning.
 *
 * The page is parsed with libxml2's forgiving HTML parser (unclosed tags,
 * entities, the encoding from a BOM or <meta charset>/http-equiv, UTF-8 when
 * none is given) and queried with XPath 1.0; a `css` selector is first
 * translated to XPath by css.c. Results come in document order.
 *
 * Output, per matched node:
 *   - element: its text content with whitespace normalized (leading and
 *     trailing ASCII whitespace removed, inner runs collapsed to one space),
 *     or with `attr` the attribute's value verbatim (elements without the
 *     attribute are skipped);
 *   - text, CDATA, comment node: its text, normalized the same way;
 *   - attribute node: its value, verbatim;
 *   - an XPath giving a string, number or boolean: that value as a string.
 * Without `all` the first result or nil; with `all` the list of them.
 *
 * Reentrancy: no global state of its own. libxml2's error output is turned off
 * per call (the parser through its options, XPath through the context's error
 * callback, and the thread's generic/structured handlers are swapped for no-ops
 * during the call and restored afterwards), so nothing reaches stdout/stderr.
 *
 * libxml2 is not linked: the first task opens it (xml.h), so that loading the
 * plugin to learn its kinds stays cheap. A task fails when it cannot be opened.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "charset.h"
#include "css.h"
#include "sluice/plugin.h"
#include "xml.h"

/* Largest page accepted: libxml2 takes an int size. */
#define HTML_MAX_BYTES ((size_t)1 << 30)
/* Longest XPath expression accepted. */
#define XPATH_MAX_BYTES ((size_t)64 * 1024)
/* Longest `attr` name. */
#define HTML_ATTR_MAX 256
/* Largest page after decoding to UTF-8 (a UTF-16 or legacy page may grow). */
#define HTML_DECODED_MAX_BYTES ((size_t)INT_MAX)
/* Room for error messages (selectors are quoted in them). */
#define HTML_ERROR_MAX (CSS_SELECTOR_MAX_BYTES + 512)

#define HTML_PARSE_OPTIONS                                                                         \
    (HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |           \
     HTML_PARSE_COMPACT | HTML_PARSE_IGNORE_ENC | XML_PARSE_HUGE)

static const sl_host_t *host;

/* The arguments of one task, borrowed from `args`. */
typedef struct select_args {
    const char *html;
    size_t html_len;
    const char *selector; /* css or xpath */
    size_t selector_len;
    bool is_css;
    const char *attr;                  /* NULL: text content; else points to attr_name */
    char attr_name[HTML_ATTR_MAX + 1]; /* lowercased: the parser lowercases attribute names */
    bool all;
} select_args_t;

/* A growable byte buffer for the normalized text of a node. */
typedef struct text_buf {
    char *data;
    size_t len;
    size_t cap;
    bool pending_space; /* whitespace seen since the last byte kept */
} text_buf_t;

/* What libxml2 reported while compiling or evaluating an XPath expression. */
typedef struct xpath_error {
    char message[256];
    int position; /* 0-based offset in the expression, -1 unknown */
    bool no_memory;
} xpath_error_t;

/* ---- libxml2 error output ----------------------------------------------- */

static void silent_generic(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void silent_structured(void *ctx, xmlErrorPtr error)
{
    (void)ctx;
    (void)error;
}

/* The thread's libxml2 handlers while a task runs (they are thread-local in libxml2). */
typedef struct saved_handlers {
    xmlGenericErrorFunc generic;
    void *generic_ctx;
    xmlStructuredErrorFunc structured;
    void *structured_ctx;
} saved_handlers_t;

static void silence_libxml(saved_handlers_t *saved)
{
    saved->generic = xmlGenericError;
    saved->generic_ctx = xmlGenericErrorContext;
    saved->structured = xmlStructuredError;
    saved->structured_ctx = xmlStructuredErrorContext;
    xmlSetGenericErrorFunc(NULL, silent_generic);
    xmlSetStructuredErrorFunc(NULL, silent_structured);
}

static void restore_libxml(const saved_handlers_t *saved)
{
    xmlSetGenericErrorFunc(saved->generic_ctx, saved->generic);
    xmlSetStructuredErrorFunc(saved->structured_ctx, saved->structured);
}

/* libxml2's XPath error codes in words (its own table is not exported). */
static const char *xpath_error_text(int code)
{
    switch ((xmlXPathError)(code - XML_XPATH_EXPRESSION_OK)) {
    case XPATH_NUMBER_ERROR:
        return "bad number";
    case XPATH_UNFINISHED_LITERAL_ERROR:
        return "unfinished string literal";
    case XPATH_START_LITERAL_ERROR:
        return "expected a string literal";
    case XPATH_VARIABLE_REF_ERROR:
        return "expected $ for a variable reference";
    case XPATH_UNDEF_VARIABLE_ERROR:
        return "undefined variable";
    case XPATH_INVALID_PREDICATE_ERROR:
        return "invalid predicate";
    case XPATH_EXPR_ERROR:
        return "invalid expression";
    case XPATH_UNCLOSED_ERROR:
        return "missing closing bracket";
    case XPATH_UNKNOWN_FUNC_ERROR:
        return "unknown function";
    case XPATH_INVALID_OPERAND:
        return "invalid operand";
    case XPATH_INVALID_TYPE:
        return "invalid type";
    case XPATH_INVALID_ARITY:
        return "wrong number of arguments";
    case XPATH_INVALID_CTXT_SIZE:
        return "invalid context size";
    case XPATH_INVALID_CTXT_POSITION:
        return "invalid context position";
    case XPATH_MEMORY_ERROR:
        return "out of memory";
    case XPATH_UNDEF_PREFIX_ERROR:
        return "undefined namespace prefix";
    case XPATH_ENCODING_ERROR:
        return "encoding error";
    case XPATH_INVALID_CHAR_ERROR:
        return "invalid character";
    case XPATH_STACK_ERROR:
        return "expression too deeply nested";
    case XPATH_FORBID_VARIABLE_ERROR:
        return "variables are not allowed";
    case XPATH_OP_LIMIT_EXCEEDED:
        return "operation limit exceeded";
    case XPATH_RECURSION_LIMIT_EXCEEDED:
        return "expression too deeply nested";
    default:
        return "syntax error";
    }
}

/*
 * XPath context error callback: keeps the first error and where it was. Setting it
 * also keeps libxml2 from printing the error.
 */
static void record_xpath_error(void *ctx, xmlErrorPtr error)
{
    xpath_error_t *out = ctx;
    if (out == NULL || error == NULL || out->message[0] != '\0')
        return;
    if (error->code == XML_ERR_NO_MEMORY || error->code == XML_XPATH_MEMORY_ERROR)
        out->no_memory = true;
    snprintf(out->message, sizeof(out->message), "%s", xpath_error_text(error->code));
    out->position = error->str1 != NULL ? error->int1 : -1;
}

/* After a failed compile or evaluation: notes an out-of-memory error the callback missed. */
static void check_xpath_memory(xmlXPathContextPtr ctx, xpath_error_t *xerr)
{
    if (ctx->lastError.code == XML_ERR_NO_MEMORY || ctx->lastError.code == XML_XPATH_MEMORY_ERROR)
        xerr->no_memory = true;
}

/* ---- libxml2 allocation failures --------------------------------------- */

/*
 * libxml2 recovers badly from a failed allocation while parsing HTML: it marks the
 * parser stopped, after which its cursor no longer advances, and several loops that
 * wait for a '>' or the end of the input spin forever. So every libxml2 allocation
 * goes through these wrappers (installed with xmlMemSetup when libxml2 is loaded,
 * see libxml_alloc; they call the C library and are harmless to any other libxml2
 * user in the process). On a failure they note it for the running task and move
 * the running parser's cursor to the end of its input (a NUL byte, without freeing
 * anything), so that every loop ends; the task then fails with SL_ENOMEM instead of
 * returning a partial result.
 */
typedef struct alloc_watch {
    bool failed;              /* an allocation failed since the task started */
    htmlParserCtxtPtr parser; /* the parser running on this thread, if any */
} alloc_watch_t;

static _Thread_local alloc_watch_t alloc_watch;

static void note_failure(void)
{
    alloc_watch.failed = true;
    htmlParserCtxtPtr parser = alloc_watch.parser;
    if (parser != NULL) {
        parser->instate = XML_PARSER_EOF;
        parser->disableSAX = 1;
        if (parser->input != NULL && parser->input->end != NULL)
            parser->input->cur = parser->input->end;
    }
}

static void *watch_malloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL)
        note_failure();
    return p;
}

static void *watch_realloc(void *old, size_t size)
{
    void *p = realloc(old, size);
    if (p == NULL && size > 0)
        note_failure();
    return p;
}

static char *watch_strdup(const char *s)
{
    size_t size = strlen(s) + 1;
    char *p = watch_malloc(size);
    if (p != NULL)
        memcpy(p, s, size);
    return p;
}

/* What html_xml_open installs when it loads libxml2. */
static const html_xml_alloc_t libxml_alloc = {
    .free_func = free,
    .malloc_func = watch_malloc,
    .realloc_func = watch_realloc,
    .strdup_func = watch_strdup,
};

/* ---- text ------------------------------------------------------------------ */

static bool is_html_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int text_reserve(text_buf_t *buf, size_t extra)
{
    if (extra <= buf->cap - buf->len)
        return 0;
    if (extra > SIZE_MAX / 2 - buf->len)
        return SL_ENOMEM;
    size_t cap = buf->cap != 0 ? buf->cap : 64;
    while (cap - buf->len < extra)
        cap *= 2;
    char *data = realloc(buf->data, cap);
    if (data == NULL)
        return SL_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

/* Appends `s` with whitespace normalized: runs become one space, none at the ends. */
static int text_append(text_buf_t *buf, const char *s)
{
    size_t n = strlen(s);
    if (text_reserve(buf, n + 1) != 0)
        return SL_ENOMEM;
    char *out = buf->data + buf->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_html_space(c)) {
            buf->pending_space = true;
            continue;
        }
        if (buf->pending_space && out > buf->data)
            *out++ = ' ';
        buf->pending_space = false;
        *out++ = (char)c;
    }
    buf->len = (size_t)(out - buf->data);
    return 0;
}

/* The text of `root` and its descendants (text and CDATA nodes), iteratively. */
static int text_of_tree(text_buf_t *buf, xmlNodePtr root)
{
    xmlNodePtr node = root->children;
    while (node != NULL) {
        if ((node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) &&
            node->content != NULL && text_append(buf, (const char *)node->content) != 0)
            return SL_ENOMEM;
        if (node->type == XML_ELEMENT_NODE && node->children != NULL) {
            node = node->children;
            continue;
        }
        while (node != root && node->next == NULL)
            node = node->parent;
        node = node != root ? node->next : NULL;
    }
    return 0;
}

/* The normalized text of any node as a new string value; NULL when out of memory. */
static sl_value_t *node_text(xmlNodePtr node)
{
    text_buf_t buf = {0};
    int rc;
    if (node->type == XML_ELEMENT_NODE || node->type == XML_DOCUMENT_NODE ||
        node->type == XML_HTML_DOCUMENT_NODE)
        rc = text_of_tree(&buf, node);
    else
        rc = node->content != NULL ? text_append(&buf, (const char *)node->content) : 0;
    sl_value_t *value =
        rc == 0 ? host->value_string(buf.data != NULL ? buf.data : "", buf.len) : NULL;
    free(buf.data);
    return value;
}

/* An attribute's value, verbatim, as a new string value; NULL when out of memory. */
static sl_value_t *attr_value(xmlAttrPtr attr)
{
    xmlChar *content = xmlNodeGetContent((xmlNodePtr)attr);
    if (content == NULL)
        return NULL;
    sl_value_t *value = host->value_string((const char *)content, strlen((char *)content));
    xmlFree(content);
    return value;
}

/*
 * The result for one matched node: *out is the value, or stays NULL when the node
 * gives none (an element without `attr`, a non-element with `attr`).
 */
static int node_result(xmlNodePtr node, const char *attr, sl_value_t **out)
{
    *out = NULL;
    if (attr != NULL) {
        if (node->type != XML_ELEMENT_NODE)
            return 0;
        xmlAttrPtr found = xmlHasProp(node, (const xmlChar *)attr);
        if (found == NULL || found->type != XML_ATTRIBUTE_NODE)
            return 0;
        *out = attr_value(found);
    } else if (node->type == XML_ATTRIBUTE_NODE) {
        *out = attr_value((xmlAttrPtr)node);
    } else if (node->type == XML_NAMESPACE_DECL) {
        xmlNsPtr ns = (xmlNsPtr)node;
        const char *href = ns->href != NULL ? (const char *)ns->href : "";
        *out = host->value_string(href, strlen(href));
    } else {
        *out = node_text(node);
    }
    return *out != NULL ? 0 : SL_ENOMEM;
}

/* ---- encoding -------------------------------------------------------------- */

static int lower_ascii(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ---- arguments ------------------------------------------------------------- */

static int read_args(sl_task_t *task, const sl_value_t *args, select_args_t *out)
{
    const sl_value_t *html = args != NULL ? host->value_get(args, "html") : NULL;
    out->html = html != NULL ? host->value_str(html, &out->html_len) : NULL;
    if (out->html == NULL) {
        host->task_fail(task, SL_EINVAL, "html.select: 'html' must be a string");
        return SL_EINVAL;
    }
    if (out->html_len > HTML_MAX_BYTES) {
        host->task_failf(task, SL_ELIMIT, "html.select: 'html' is %zu bytes, more than %zu",
                         out->html_len, HTML_MAX_BYTES);
        return SL_ELIMIT;
    }
    const sl_value_t *css = host->value_get(args, "css");
    const sl_value_t *xpath = host->value_get(args, "xpath");
    if ((css == NULL) == (xpath == NULL)) {
        host->task_fail(task, SL_EINVAL, "html.select: give exactly one of 'css' and 'xpath'");
        return SL_EINVAL;
    }
    out->is_css = css != NULL;
    out->selector = host->value_str(out->is_css ? css : xpath, &out->selector_len);
    if (out->selector == NULL) {
        host->task_failf(task, SL_EINVAL, "html.select: '%s' must be a string",
                         out->is_css ? "css" : "xpath");
        return SL_EINVAL;
    }
    const sl_value_t *attr = host->value_get(args, "attr");
    out->attr = NULL;
    if (attr != NULL && host->value_type(attr) != SL_TYPE_NIL) {
        size_t attr_len = 0;
        const char *name = host->value_str(attr, &attr_len);
        if (name == NULL || attr_len == 0 || attr_len > HTML_ATTR_MAX || strlen(name) != attr_len) {
            host->task_failf(task, SL_EINVAL,
                             "html.select: 'attr' must be an attribute name of 1 to %d bytes",
                             HTML_ATTR_MAX);
            return SL_EINVAL;
        }
        for (size_t i = 0; i <= attr_len; i++)
            out->attr_name[i] = (char)lower_ascii((unsigned char)name[i]);
        out->attr = out->attr_name;
    }
    const sl_value_t *all = host->value_get(args, "all");
    out->all = all != NULL && host->value_truthy(all);
    return 0;
}

/* ---- selecting ------------------------------------------------------------- */

/* Compiles the selector (translating CSS first); fails the task on error. */
static xmlXPathCompExprPtr compile_selector(sl_task_t *task, const select_args_t *a,
                                            xmlXPathContextPtr ctx, xpath_error_t *xerr)
{
    char *translated = NULL;
    const char *expr = a->selector;
    if (a->is_css) {
        char err[HTML_ERROR_MAX];
        int rc = html_css_to_xpath(a->selector, a->selector_len, &translated, err, sizeof(err));
        if (rc != 0) {
            host->task_failf(task, rc, "html.select: %s", err);
            return NULL;
        }
        expr = translated;
    } else if (a->selector_len > XPATH_MAX_BYTES || strlen(a->selector) != a->selector_len) {
        host->task_failf(task, SL_EINVAL,
                         "html.select: XPath longer than %zu bytes or with a "
                         "NUL byte",
                         XPATH_MAX_BYTES);
        return NULL;
    }
    xmlXPathCompExprPtr comp = xmlXPathCtxtCompile(ctx, (const xmlChar *)expr);
    if (comp == NULL) {
        check_xpath_memory(ctx, xerr);
        if (xerr->no_memory || alloc_watch.failed)
            host->task_fail(task, SL_ENOMEM, "html.select: out of memory compiling the selector");
        else if (xerr->position >= 0)
            host->task_failf(task, SL_EINVAL, "html.select: invalid XPath at %d in '%s': %s%s",
                             xerr->position + 1, expr,
                             xerr->message[0] != '\0' ? xerr->message : "syntax error",
                             a->is_css ? " (translated from CSS)" : "");
        else
            host->task_failf(task, SL_EINVAL, "html.select: invalid XPath '%s': %s", expr,
                             xerr->message[0] != '\0' ? xerr->message : "syntax error");
    }
    free(translated);
    return comp;
}

/* Parses UTF-8 text into a document; NULL when out of memory. */
static htmlDocPtr parse_utf8(const char *text, size_t len)
{
    if (len == 0) /* an empty page is an empty document */
        return htmlNewDocNoDtD(NULL, NULL);
    htmlParserCtxtPtr parser = htmlCreateMemoryParserCtxt(text, (int)len);
    if (parser == NULL)
        return NULL;
    htmlCtxtUseOptions(parser, HTML_PARSE_OPTIONS);
    /* UTF-8 without a converter: the page was decoded before (charset.c) */
    xmlSwitchEncoding(parser, XML_CHAR_ENCODING_UTF8);
    alloc_watch.parser = parser;
    htmlParseDocument(parser);
    alloc_watch.parser = NULL;
    htmlDocPtr doc = parser->myDoc;
    parser->myDoc = NULL;
    htmlFreeParserCtxt(parser);
    if (doc == NULL && !alloc_watch.failed)
        doc = htmlNewDocNoDtD(NULL, NULL); /* nothing recoverable: an empty document */
    return doc;
}

/* Decodes the page to UTF-8; false (task failed) when out of memory or too big. */
static bool decode_page(sl_task_t *task, const select_args_t *a, charset_page_t *page)
{
    int rc = html_charset_decode(a->html, a->html_len, HTML_DECODED_MAX_BYTES, page);
    if (rc != 0) {
        host->task_failf(task, rc, "html.select: %s decoding the page (%zu bytes)",
                         rc == SL_ENOMEM ? "out of memory" : "page too large", a->html_len);
        return false;
    }
    return true;
}

/* Parses (a prefix of) the decoded page; NULL (task failed) when out of memory. */
static htmlDocPtr parse_text(sl_task_t *task, const select_args_t *a, const char *text,
                             size_t len)
{
    htmlDocPtr doc = parse_utf8(text, len);
    if (doc == NULL || alloc_watch.failed) {
        xmlFreeDoc(doc);
        host->task_failf(task, SL_ENOMEM, "html.select: out of memory parsing the page (%zu bytes)",
                         a->html_len);
        return NULL;
    }
    return doc;
}

/* Turns an XPath result into the task's output: a string or nil, or a list with `all`. */
static int build_output(const select_args_t *a, xmlXPathObjectPtr result, sl_value_t **out)
{
    sl_value_t *list = a->all ? host->value_list() : NULL;
    if (a->all && list == NULL)
        return SL_ENOMEM;
    *out = NULL;
    if (result->type != XPATH_NODESET) {
        xmlChar *s = xmlXPathCastToString(result);
        sl_value_t *v = s != NULL ? host->value_string((char *)s, strlen((char *)s)) : NULL;
        xmlFree(s);
        if (v == NULL || !a->all) {
            host->value_free(list);
            *out = v;
            return v != NULL ? 0 : SL_ENOMEM;
        }
        if (host->value_push(list, v) != 0) { /* v is freed by value_push */
            host->value_free(list);
            return SL_ENOMEM;
        }
        *out = list;
        return 0;
    }
    xmlNodeSetPtr nodes = result->nodesetval;
    int count = nodes != NULL ? nodes->nodeNr : 0;
    for (int i = 0; i < count; i++) {
        sl_value_t *v = NULL;
        if (node_result(nodes->nodeTab[i], a->attr, &v) != 0) {
            host->value_free(list);
            return SL_ENOMEM;
        }
        if (v == NULL)
            continue;
        if (!a->all) {
            *out = v;
            return 0;
        }
        if (host->value_push(list, v) != 0) {
            host->value_free(list);
            return SL_ENOMEM;
        }
    }
    *out = list; /* nil without `all`: no match */
    return 0;
}

/*
 * The first match of a CSS selector usually sits near the top of a page (a title, an
 * <h1>), so without `all` the page is first parsed in growing prefixes (16 KiB, then
 * four times more each time, so a page with no early match costs at most a third more):
 * the HTML parser reads left to right, so the tree of a prefix is the tree of
 * the whole page up to where the prefix ends, and a match that something was parsed
 * after (it, or an ancestor, has a next sibling) is complete and is the page's first
 * match. Selectors whose result depends on what follows an element (:last-child,
 * :nth-last-child, :only-child) and raw XPath always see the whole page.
 */
#define PREFIX_FIRST_BYTES (16u << 10)

static bool prefix_safe(const select_args_t *a)
{
    if (!a->is_css || a->all)
        return false;
    static const char *const unsafe[] = {"last-child", "only-child"};
    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        size_t n = strlen(unsafe[i]);
        for (size_t j = 0; j + n <= a->selector_len; j++)
            if (strncasecmp(a->selector + j, unsafe[i], n) == 0)
                return false;
    }
    return true;
}

static bool node_complete(xmlNodePtr node)
{
    for (; node != NULL && node->type != XML_DOCUMENT_NODE &&
           node->type != XML_HTML_DOCUMENT_NODE; node = node->parent)
        if (node->next != NULL)
            return true;
    return false;
}

/* A prefix length at a UTF-8 character boundary. */
static size_t prefix_cut(const char *text, size_t cut)
{
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/* Evaluates on the parsed document; NULL (task failed) on error. */
static xmlXPathObjectPtr evaluate(sl_task_t *task, const select_args_t *a,
                                  xmlXPathCompExprPtr comp, xmlXPathContextPtr ctx,
                                  htmlDocPtr doc, xpath_error_t *xerr)
{
    ctx->doc = doc;
    ctx->node = (xmlNodePtr)doc;
    xmlXPathObjectPtr result = xmlXPathCompiledEval(comp, ctx);
    if (result != NULL)
        return result;
    check_xpath_memory(ctx, xerr);
    if (xerr->no_memory || alloc_watch.failed)
        host->task_fail(task, SL_ENOMEM, "html.select: out of memory evaluating the selector");
    else
        host->task_failf(task, SL_EINVAL, "html.select: cannot evaluate XPath '%.*s': %s",
                         (int)a->selector_len, a->selector,
                         xerr->message[0] != '\0' ? xerr->message : "error");
    return NULL;
}

/* Completes the task from a result; the result is the caller's to free. */
static void finish_select(sl_task_t *task, const select_args_t *a, xmlXPathObjectPtr result)
{
    sl_value_t *output = NULL;
    if (build_output(a, result, &output) != 0 || alloc_watch.failed) {
        host->value_free(output);
        host->task_fail(task, SL_ENOMEM, "html.select: out of memory building the result");
        return;
    }
    host->task_done(task, output);
}

/* Tries growing prefixes; true when the task was completed (found, or failed). */
static bool select_in_prefix(sl_task_t *task, const select_args_t *a, const charset_page_t *page,
                             xmlXPathCompExprPtr comp, xmlXPathContextPtr ctx,
                             xpath_error_t *xerr)
{
    for (size_t cut = PREFIX_FIRST_BYTES; cut < page->len / 2; cut *= 4) {
        htmlDocPtr doc = parse_text(task, a, page->data, prefix_cut(page->data, cut));
        if (doc == NULL)
            return true;
        xmlXPathObjectPtr result = evaluate(task, a, comp, ctx, doc, xerr);
        if (result == NULL) {
            xmlFreeDoc(doc);
            return true;
        }
        xmlNodeSetPtr nodes = result->type == XPATH_NODESET ? result->nodesetval : NULL;
        bool found = nodes != NULL && nodes->nodeNr > 0 && node_complete(nodes->nodeTab[0]);
        if (found)
            finish_select(task, a, result);
        xmlXPathFreeObject(result);
        xmlFreeDoc(doc);
        if (found)
            return true;
    }
    return false;
}

static void run_select(sl_task_t *task, const select_args_t *a)
{
    xpath_error_t xerr = {.position = -1};
    htmlDocPtr doc = NULL;
    xmlXPathObjectPtr result = NULL;
    xmlXPathCompExprPtr comp = NULL;
    xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
    if (ctx == NULL) {
        host->task_fail(task, SL_ENOMEM, "html.select: out of memory");
        return;
    }
    ctx->error = record_xpath_error;
    ctx->userData = &xerr;
    charset_page_t page = {0};
    comp = compile_selector(task, a, ctx, &xerr);
    if (comp == NULL || !decode_page(task, a, &page))
        goto out;
    if (prefix_safe(a) && select_in_prefix(task, a, &page, comp, ctx, &xerr))
        goto out;
    doc = parse_text(task, a, page.data, page.len);
    if (doc == NULL)
        goto out;
    result = evaluate(task, a, comp, ctx, doc, &xerr);
    if (result != NULL)
        finish_select(task, a, result);
out:
    free(page.owned);
    xmlXPathFreeObject(result);
    xmlXPathFreeCompExpr(comp);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
}

static int select_start(sl_task_t *task, const sl_value_t *args)
{
    select_args_t a;
    if (read_args(task, args, &a) != 0)
        return 0;
    char err[256];
    int rc = html_xml_open(&libxml_alloc, err, sizeof(err));
    if (rc != 0) {
        host->task_failf(task, rc, "html.select: %s", err);
        return 0;
    }
    saved_handlers_t saved;
    silence_libxml(&saved);
    alloc_watch = (alloc_watch_t){0};
    run_select(task, &a);
    restore_libxml(&saved);
    return 0;
}

/* ---- descriptor ------------------------------------------------------------ */

static const sl_param_t select_params[] = {
    {"html", SL_PT_STRING, SL_PARAM_REQUIRED, "the HTML page"},
    {"css", SL_PT_STRING, SL_PARAM_ONE_OF(1), "CSS selector (the subset in docs/workflow.md)"},
    {"xpath", SL_PT_STRING, SL_PARAM_ONE_OF(1), "XPath 1.0 expression"},
    {"attr", SL_PT_STRING | SL_PT_NIL, 0, "attribute to return (default: the text content)"},
    {"all", SL_PT_BOOL | SL_PT_NIL, 0, "return the list of all matches (default false)"},
    {NULL, 0, 0, NULL},
};

static const sl_kind_t html_kinds[] = {
    {"html.select", SL_EXEC_CPU, 0,
     "Selects from an HTML page with CSS or XPath: the text or an attribute, first or all.",
     select_params, select_start, NULL},
};

static const sl_plugin_t html_plugin = SL_PLUGIN_INIT("html", "1.0.0", html_kinds);

SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h);
SL_API const sl_plugin_t *sl_plugin_entry_v1(const sl_host_t *h)
{
    if (h == NULL || h->abi_major != SL_ABI_MAJOR || !SL_HOST_HAS(h, task_failf))
        return NULL;
    host = h; /* libxml2 is opened by the first task, not here (xml.h) */
    return &html_plugin;
}
