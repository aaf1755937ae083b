/*
 * Unit test of the CSS → XPath translator of html.select (css.c):
 *   1. the exact XPath of each supported construct;
 *   2. what each selector matches in sample pages, through libxml2 (ids of the
 *      matched elements, in document order);
 *   3. the error message of unsupported or malformed selectors.
 * Exits 0 when every check passes; prints each failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>

#include "css.h"
#include "sluice/plugin.h"

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static char *translate(const char *css, int *rc, char *err, size_t err_size)
{
    char *xpath = NULL;
    *rc = html_css_to_xpath(css, strlen(css), &xpath, err, err_size);
    return xpath;
}

/* ---- 1. exact translations ---------------------------------------------- */

static const struct {
    const char *css;
    const char *xpath;
} translations[] = {
    {"h1", "//h1"},
    {"H1", "//h1"},
    {"*", "//*"},
    {"#main", "//*[@id = 'main']"},
    {".x", "//*[contains(concat(' ', normalize-space(@class), ' '), ' x ')]"},
    {"a[href]", "//a[@href]"},
    {"a[HREF=x]", "//a[@href = 'x']"},
    {"a[title=\"it's\"]", "//a[@title = \"it's\"]"},
    {"a[title='say \"hi\"']", "//a[@title = 'say \"hi\"']"},
    {"a[rel~=next]",
     "//a[contains(concat(' ', normalize-space(@rel), ' '), concat(' ', 'next', ' '))]"},
    {"a[lang|=en]", "//a[@lang = 'en' or starts-with(@lang, concat('en', '-'))]"},
    {"a[href^='http']", "//a[starts-with(@href, 'http')]"},
    {"a[href$=\".pdf\"]",
     "//a[substring(@href, string-length(@href) - string-length('.pdf') + 1) = '.pdf']"},
    {"a[href*=wiki]", "//a[contains(@href, 'wiki')]"},
    {"a[href^='']", "//a[false()]"},
    {"a[rel~='a b']", "//a[false()]"},
    {"div p", "//div//p"},
    {"div > p", "//div/p"},
    {"div>p", "//div/p"},
    {"div  \n >  p  span", "//div/p//span"},
    {"h1, h2", "//h1 | //h2"},
    {" h1 ,h2 ", "//h1 | //h2"},
    {"a.b#c[d]", "//a[contains(concat(' ', normalize-space(@class), ' '), ' b ')][@id = 'c'][@d]"},
    {"li:first-child", "//*[position() = 1][self::li]"},
    {"li:last-child", "//*[position() = last()][self::li]"},
    {"li:only-child", "//*[position() = 1 and last() = 1][self::li]"},
    {"li:nth-child(3)", "//*[position() = 3][self::li]"},
    {"li:nth-child(odd)", "//*[(position() - 1) mod 2 = 0][self::li]"},
    {"li:nth-child(EVEN)", "//*[position() >= 2 and (position() - 2) mod 2 = 0][self::li]"},
    {"li:nth-child(3n+1)", "//*[(position() - 1) mod 3 = 0][self::li]"},
    {"li:nth-child( -n + 3 )", "//*[position() <= 3][self::li]"},
    {"li:nth-child(-2n+5)", "//*[position() <= 5 and (5 - position()) mod 2 = 0][self::li]"},
    {"li:nth-child(2n-1)", "//*[(position() - 1) mod 2 = 0][self::li]"},
    {"li:nth-child(n)", "//*[true()][self::li]"},
    {"li:nth-child(0)", "//*[false()][self::li]"},
    {"li:nth-last-child(2)", "//*[(last() - position() + 1) = 2][self::li]"},
    {":first-child.x", "//*[position() = 1][contains(concat(' ', normalize-space(@class), ' "
                       "'), ' x ')]"},
    {"ul > li:first-child:last-child", "//ul/*[position() = 1 and position() = last()][self::li]"},
    {"a[x=\"it's \\\"\"]", NULL}, /* backslash escape: unsupported */
};

static void test_translations(void)
{
    char err[8192];
    for (size_t i = 0; i < sizeof(translations) / sizeof(translations[0]); i++) {
        int rc;
        char *xpath = translate(translations[i].css, &rc, err, sizeof(err));
        if (translations[i].xpath == NULL) {
            CHECK(rc == SL_EINVAL && xpath == NULL, "'%s' should fail, rc %d", translations[i].css,
                  rc);
        } else {
            CHECK(rc == 0 && xpath != NULL && strcmp(xpath, translations[i].xpath) == 0,
                  "'%s' → '%s' (rc %d, %s), expected '%s'", translations[i].css,
                  xpath != NULL ? xpath : "(null)", rc, err, translations[i].xpath);
        }
        free(xpath);
    }
}

/* ---- 2. matches on sample pages ------------------------------------------ */

static const char page[] =
    "<html><head><title id=t>T</title></head><body>\n"
    "<div id=d1 class='box  main'>\n"
    "  <p id=p1 class=intro>one</p>\n"
    "  <p id=p2 lang=en-GB>two <span id=s1>x</span></p>\n"
    "  <section id=sec><p id=p3 title=\"it's\">three</p></section>\n"
    "</div>\n"
    "<ul id=list>\n"
    "  <li id=l1 class=a>1<li id=l2>2<li id=l3 class='a b'>3<li id=l4>4<li id=l5>5\n"
    "</ul>\n"
    "<a id=a1 href='http://x.org/doc.pdf' rel='nofollow next'>pdf</a>\n"
    "<a id=a2 href='/wiki/Page'>wiki</a><a id=a3>none</a>\n"
    "<P id=upper>upper</P><div id=d2><span id=only>only</span></div>\n"
    "</body></html>";

static const struct {
    const char *css;
    const char *ids;
} matches[] = {
    {"p", "p1,p2,p3,upper"},
    {"P", "p1,p2,p3,upper"},
    {"div p", "p1,p2,p3"},
    {"div > p", "p1,p2"},
    {"div>section>p", "p3"},
    {"#d1 span, title", "t,s1"}, /* a union comes back in document order */
    {"title, #d1 span", "t,s1"},
    {".box", "d1"},
    {".main.box", "d1"},
    {".mai", ""},
    {"li.a", "l1,l3"},
    {".b", "l3"},
    {"a[href]", "a1,a2"},
    {"a:not-a-thing", NULL},
    {"[href$='.pdf']", "a1"},
    {"[href^=http]", "a1"},
    {"[href*=wiki]", "a2"},
    {"[rel~=next]", "a1"},
    {"[rel~=nex]", ""},
    {"[lang|=en]", "p2"},
    {"[title=\"it's\"]", "p3"},
    {"li:first-child", "l1"},
    {"li:last-child", "l5"},
    {"li:nth-child(2)", "l2"},
    {"li:nth-child(odd)", "l1,l3,l5"},
    {"li:nth-child(even)", "l2,l4"},
    {"li:nth-child(-n+2)", "l1,l2"},
    {"li:nth-child(2n+3)", "l3,l5"},
    {"li:nth-last-child(1)", "l5"},
    {"ul > :nth-child(4)", "l4"},
    {"p:first-child", "p1,p3"},
    {"span:only-child", "s1,only"},
    {"#d2 > *", "only"},
    {"body > *:last-child", "d2"},
    {"li:first-child.a", "l1"},
    {"li.a:nth-child(3)", "l3"},
    {"h6", ""},
};

/* Comma-separated ids of the nodes `xpath` selects in `doc`. */
static void ids_of(htmlDocPtr doc, const char *xpath, char *out, size_t out_size)
{
    out[0] = '\0';
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr res =
        ctx != NULL ? xmlXPathEvalExpression((const xmlChar *)xpath, ctx) : NULL;
    if (res == NULL || res->type != XPATH_NODESET) {
        snprintf(out, out_size, "(XPath failed)");
    } else {
        size_t len = 0;
        for (int i = 0; res->nodesetval != NULL && i < res->nodesetval->nodeNr; i++) {
            xmlChar *id = xmlGetProp(res->nodesetval->nodeTab[i], (const xmlChar *)"id");
            len += (size_t)snprintf(out + len, out_size - len, "%s%s", len > 0 ? "," : "",
                                    id != NULL ? (char *)id : "?");
            xmlFree(id);
            if (len >= out_size)
                break;
        }
    }
    xmlXPathFreeObject(res);
    xmlXPathFreeContext(ctx);
}

static void test_matches(void)
{
    htmlDocPtr doc = htmlReadMemory(page, (int)strlen(page), NULL, "UTF-8",
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_NONET);
    CHECK(doc != NULL, "sample page did not parse");
    if (doc == NULL)
        return;
    char err[8192], got[1024];
    for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
        int rc;
        char *xpath = translate(matches[i].css, &rc, err, sizeof(err));
        if (matches[i].ids == NULL) {
            CHECK(rc != 0, "'%s' should be refused", matches[i].css);
        } else if (rc != 0) {
            CHECK(0, "'%s' refused: %s", matches[i].css, err);
        } else {
            ids_of(doc, xpath, got, sizeof(got));
            CHECK(strcmp(got, matches[i].ids) == 0, "'%s' (%s) matched [%s], expected [%s]",
                  matches[i].css, xpath, got, matches[i].ids);
        }
        free(xpath);
    }
    xmlFreeDoc(doc);
}

/* A long list: the positional tests stay linear (no count(preceding-sibling::*)). */
static void test_many_siblings(void)
{
    enum { ITEMS = 200000 };
    size_t cap = (size_t)ITEMS * 32 + 64, len = 0;
    char *html = malloc(cap);
    CHECK(html != NULL, "out of memory");
    if (html == NULL)
        return;
    len += (size_t)snprintf(html + len, cap - len, "<ul>");
    for (int i = 1; i <= ITEMS; i++)
        len += (size_t)snprintf(html + len, cap - len, "<li id=i%d>%d</li>", i, i);
    len += (size_t)snprintf(html + len, cap - len, "</ul>");
    htmlDocPtr doc = htmlReadMemory(html, (int)len, NULL, "UTF-8",
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_COMPACT);
    char err[512], got[256];
    int rc;
    char *xpath = translate("li:nth-last-child(2), li:nth-child(199998)", &rc, err, sizeof(err));
    CHECK(rc == 0, "refused: %s", err);
    if (rc == 0 && doc != NULL) {
        ids_of(doc, xpath, got, sizeof(got));
        CHECK(strcmp(got, "i199998,i199999") == 0, "many siblings matched [%s]", got);
    }
    free(xpath);
    xmlFreeDoc(doc);
    free(html);
}

/* ---- 3. errors ------------------------------------------------------------- */

static const struct {
    const char *css;
    int rc;
    const char *message;
} errors[] = {
    {"div ~ p", SL_EINVAL, "unsupported CSS at 5 in 'div ~ p': '~' (" CSS_SUPPORTED ")"},
    {"div + p", SL_EINVAL, "unsupported CSS at 5 in 'div + p': '+' (" CSS_SUPPORTED ")"},
    {"a:hover", SL_EINVAL, "unsupported CSS at 2 in 'a:hover': ':hover' (" CSS_SUPPORTED ")"},
    {"p::before", SL_EINVAL, "unsupported CSS at 2 in 'p::before': '::before' (" CSS_SUPPORTED ")"},
    {"li:not(.a)", SL_EINVAL, "unsupported CSS at 3 in 'li:not(.a)': ':not(' (" CSS_SUPPORTED ")"},
    {"svg|a", SL_EINVAL, "unsupported CSS at 4 in 'svg|a': '|' (" CSS_SUPPORTED ")"},
    {"a[x=y i]", SL_EINVAL, "unsupported CSS at 7 in 'a[x=y i]': 'i' (" CSS_SUPPORTED ")"},
    {"> p", SL_EINVAL, "invalid CSS at 1 in '> p': expected a selector"},
    {"", SL_EINVAL, "invalid CSS at 1 in '': expected a selector"},
    {"div,", SL_EINVAL, "invalid CSS at 5 in 'div,': expected a selector at the end"},
    {"div >", SL_EINVAL, "invalid CSS at 6 in 'div >': expected a selector at the end"},
    {"a,,b", SL_EINVAL, "invalid CSS at 3 in 'a,,b': expected a selector"},
    {"a.", SL_EINVAL, "invalid CSS at 3 in 'a.': expected a name after '.'"},
    {"#", SL_EINVAL, "invalid CSS at 2 in '#': expected a name after '#'"},
    {"a[href", SL_EINVAL, "invalid CSS at 2 in 'a[href': unterminated '['"},
    {"a[=x]", SL_EINVAL, "invalid CSS at 3 in 'a[=x]': expected an attribute name after '['"},
    {"a[x!=y]", SL_EINVAL,
     "invalid CSS at 4 in 'a[x!=y]': expected ']' or an operator (=, ~=, |=, ^=, $=, *=)"},
    {"a[x='y]", SL_EINVAL, "invalid CSS at 5 in 'a[x='y]': unterminated string"},
    {"li:nth-child(x)", SL_EINVAL,
     "invalid CSS at 14 in 'li:nth-child(x)': expected odd, even or an+b in :nth-child()"},
    {"li:nth-child(2", SL_EINVAL,
     "invalid CSS at 15 in 'li:nth-child(2': expected ')' after the :nth-child() argument"},
    {"li:nth-child(9999999999)", SL_EINVAL,
     "invalid CSS at 14 in 'li:nth-child(9999999999)': number too large in :nth-child()"},
    {"li:nth-child", SL_EINVAL,
     "unsupported CSS at 3 in 'li:nth-child': ':nth-child' (" CSS_SUPPORTED ")"},
    {"p \xc3\xa9", SL_EINVAL,
     "unsupported CSS at 3 in 'p \xc3\xa9': '\xc3\xa9' (" CSS_SUPPORTED ")"},
};

static void test_errors(void)
{
    char err[8192];
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        int rc;
        char *xpath = translate(errors[i].css, &rc, err, sizeof(err));
        CHECK(rc == errors[i].rc && xpath == NULL && strcmp(err, errors[i].message) == 0,
              "'%s': rc %d, message\n  got      '%s'\n  expected '%s'", errors[i].css, rc, err,
              errors[i].message);
        free(xpath);
    }
    /* Too long, and a NUL byte inside. */
    char *long_css = malloc(CSS_SELECTOR_MAX_BYTES + 2);
    if (long_css != NULL) {
        memset(long_css, 'a', CSS_SELECTOR_MAX_BYTES + 1);
        long_css[CSS_SELECTOR_MAX_BYTES + 1] = '\0';
        int rc;
        char *xpath = translate(long_css, &rc, err, sizeof(err));
        CHECK(rc == SL_ELIMIT && xpath == NULL, "long selector: rc %d", rc);
        free(long_css);
    }
    char *xpath = NULL;
    int rc = html_css_to_xpath("a\0b", 3, &xpath, err, sizeof(err));
    CHECK(rc == SL_EINVAL && xpath == NULL, "NUL byte: rc %d", rc);
}

/* Selectors at the length limit of every construct translate to valid XPath. */
static void test_long_valid(void)
{
    char css[CSS_SELECTOR_MAX_BYTES + 1];
    size_t len = 0;
    while (len + 16 < CSS_SELECTOR_MAX_BYTES)
        len += (size_t)snprintf(css + len, sizeof(css) - len, ".c:nth-child(n) ");
    int rc;
    char err[8192];
    char *xpath = translate(css, &rc, err, sizeof(err));
    CHECK(rc == 0, "long valid selector refused: %s", err);
    xmlXPathCompExprPtr comp = xpath != NULL ? xmlXPathCompile((const xmlChar *)xpath) : NULL;
    CHECK(comp != NULL, "long valid selector gave invalid XPath");
    xmlXPathFreeCompExpr(comp);
    free(xpath);
}

int main(void)
{
    xmlInitParser();
    test_translations();
    test_matches();
    test_many_siblings();
    test_errors();
    test_long_valid();
    xmlCleanupParser();
    if (failures > 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    fprintf(stderr, "test_css: all passed\n");
    return 0;
}
