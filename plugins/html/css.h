/*
 * The CSS selector subset of html.select, translated to XPath 1.0.
 * Internal to the html plugin (not part of sluice's API).
 */
#ifndef SLUICE_PLUGIN_HTML_CSS_H
#define SLUICE_PLUGIN_HTML_CSS_H

#include <stddef.h>

/* Longest selector accepted, in bytes. */
#define CSS_SELECTOR_MAX_BYTES 4096

/*
 * Translates the CSS selector `css` (`len` bytes) into an XPath 1.0 expression
 * that selects the matching elements, in document order, when evaluated with
 * the document node as context. Reentrant; keeps no state.
 *
 * Returns 0 and hands *out (malloc'd, NUL-terminated) to the caller. Returns
 * SL_EINVAL with a message in `err` (e.g. "unsupported CSS at 5 in 'div ~ p':
 * '~' (supported: …)") when the selector is outside the subset or malformed,
 * SL_ELIMIT when it is longer than CSS_SELECTOR_MAX_BYTES, SL_ENOMEM when out of
 * memory; *out is then NULL.
 */
int html_css_to_xpath(const char *css, size_t len, char **out, char *err, size_t err_size);

/* The subset, as listed in error messages. */
#define CSS_SUPPORTED                                                                              \
    "supported: type, *, #id, .class, [attr], [attr=v], [attr~=v], [attr|=v], "                    \
    "[attr^=v], [attr$=v], [attr*=v], :first-child, :last-child, :only-child, "                    \
    ":nth-child(an+b|odd|even), :nth-last-child(an+b), descendant ' ', child '>', "                \
    "groups ','"

#endif /* SLUICE_PLUGIN_HTML_CSS_H */
