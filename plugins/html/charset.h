/*
 * Decoding a page to UTF-8 before it is parsed. Internal to the html plugin.
 *
 * libxml2 can convert encodings itself, but its converting input path does not
 * recover from a failed allocation (the parser stops advancing and loops), so
 * html.select hands it UTF-8 only and converts here, with iconv, under its own
 * bounded buffers.
 */
#ifndef SLUICE_PLUGIN_HTML_CHARSET_H
#define SLUICE_PLUGIN_HTML_CHARSET_H

#include <stddef.h>

/* How far into the page a <meta> charset declaration is looked for. */
#define CHARSET_SCAN_BYTES ((size_t)64 * 1024)

/* A page as UTF-8: `data` is either the caller's bytes or `owned` (malloc'd). */
typedef struct charset_page {
    const char *data;
    size_t len;
    char *owned;
    char encoding[48]; /* what was found: "UTF-8" when nothing was declared */
} charset_page_t;

/*
 * Makes `html` UTF-8. The encoding comes from a byte-order mark, else from a
 * <meta charset> or <meta http-equiv=Content-Type content="…charset=…"> in the
 * first CHARSET_SCAN_BYTES, else is UTF-8. ISO-8859-1, US-ASCII and their aliases
 * are read as windows-1252, as browsers do; an encoding iconv does not know is
 * read as UTF-8. Bytes that are invalid in the encoding become U+FFFD.
 * A BOM is dropped. Reentrant.
 *
 * Returns 0 and fills *out (free out->owned with free()); SL_ENOMEM when out of
 * memory, SL_ELIMIT when the UTF-8 text would exceed `max_bytes`.
 */
int html_charset_decode(const char *html, size_t len, size_t max_bytes, charset_page_t *out);

#endif /* SLUICE_PLUGIN_HTML_CHARSET_H */
