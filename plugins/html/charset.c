/*
 * Decoding a page to UTF-8 (see charset.h): find the declared encoding the way
 * an HTML5 browser's prescan does (simplified), convert with iconv, and repair
 * invalid UTF-8, so that libxml2 only ever parses valid UTF-8.
 */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin.h"

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

static int lower_ascii(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* First case-insensitive occurrence of `needle` (lowercase ASCII) in s[0..len), or NULL. */
static const char *find_nocase(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && lower_ascii((unsigned char)s[i + k]) == needle[k])
            k++;
        if (k == n)
            return s + i;
    }
    return NULL;
}

/* Reads the value after "charset" at `p` (…= "name"…) into `name`; 0 if there is none. */
static int charset_value(const char *p, const char *end, char *name, size_t name_size)
{
    p += strlen("charset");
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p != '=')
        return 0;
    p++;
    while (p < end &&
           (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '"' || *p == '\''))
        p++;
    size_t n = 0;
    while (p + n < end && n + 1 < name_size &&
           (p[n] == '-' || p[n] == '_' || p[n] == ':' || p[n] == '.' ||
            (p[n] >= '0' && p[n] <= '9') ||
            (lower_ascii((unsigned char)p[n]) >= 'a' && lower_ascii((unsigned char)p[n]) <= 'z')))
        n++;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)lower_ascii((unsigned char)p[i]);
    name[n] = '\0';
    return n > 0;
}

/* The charset a <meta> tag in the first CHARSET_SCAN_BYTES declares, lowercased; 0 if none. */
static int declared_charset(const char *html, size_t len, char *name, size_t name_size)
{
    const char *end = html + (len < CHARSET_SCAN_BYTES ? len : CHARSET_SCAN_BYTES);
    const char *meta = html;
    while ((meta = find_nocase(meta, (size_t)(end - meta), "<meta")) != NULL) {
        const char *close = memchr(meta, '>', (size_t)(end - meta));
        const char *tag_end = close != NULL ? close : end;
        const char *at = find_nocase(meta, (size_t)(tag_end - meta), "charset");
        if (at != NULL && charset_value(at, tag_end, name, name_size))
            return 1;
        meta += 5;
    }
    return 0;
}

/* Maps a declared name to what to convert from; NULL for UTF-8 (no conversion). */
static const char *source_encoding(const char *name)
{
    static const char *const utf8[] = {"utf-8", "utf8", "unicode-1-1-utf-8",
                                       /* a <meta> read as ASCII cannot be UTF-16 (HTML5) */
                                       "utf-16", "utf-16le", "utf-16be"};
    static const char *const latin1[] = {"iso-8859-1", "iso8859-1",  "latin1",     "l1",
                                         "us-ascii",   "ascii",      "iso_8859-1", "cp819",
                                         "ibm819",     "iso-ir-100", "csisolatin1"};
    for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++)
        if (strcmp(name, utf8[i]) == 0)
            return NULL;
    for (size_t i = 0; i < sizeof(latin1) / sizeof(latin1[0]); i++)
        if (strcmp(name, latin1[i]) == 0)
            return "WINDOWS-1252";
    return name;
}

/* A growable output buffer with a maximum. */
typedef struct out_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
} out_buf_t;

static int out_reserve(out_buf_t *out, size_t extra)
{
    if (extra <= out->cap - out->len)
        return 0;
    if (extra > out->max - out->len)
        return SL_ELIMIT;
    size_t cap = out->cap != 0 ? out->cap : 4096;
    while (cap - out->len < extra)
        cap = cap <= out->max / 2 ? cap * 2 : out->max;
    char *data = realloc(out->data, cap);
    if (data == NULL)
        return SL_ENOMEM;
    out->data = data;
    out->cap = cap;
    return 0;
}

/* Converts with iconv; invalid or truncated input becomes U+FFFD. */
static int convert(iconv_t cd, const char *in, size_t len, out_buf_t *out)
{
    char *src = (char *)in;
    size_t left = len;
    int rc = out_reserve(out, len + len / 2 + 16);
    while (rc == 0 && left > 0) {
        char *dst = out->data + out->len;
        size_t room = out->cap - out->len;
        size_t done = iconv(cd, &src, &left, &dst, &room);
        out->len = (size_t)(dst - out->data);
        if (done != (size_t)-1) {
            /* the end of input: a stateful encoding may still have bytes to write */
            dst = out->data + out->len;
            room = out->cap - out->len;
            if (iconv(cd, NULL, NULL, &dst, &room) != (size_t)-1)
                out->len = (size_t)(dst - out->data);
            break;
        }
        if (errno == E2BIG) {
            rc = out_reserve(out, out->cap - out->len + left + 16);
        } else { /* EILSEQ, EINVAL: skip one byte */
            rc = out_reserve(out, sizeof(replacement));
            if (rc == 0) {
                memcpy(out->data + out->len, replacement, sizeof(replacement) - 1);
                out->len += sizeof(replacement) - 1;
                src++;
                left--;
            }
        }
    }
    return rc;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (len == 0 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    uint32_t c = s[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++)
        c = (c << 6) | (s[i] & 0x3f);
    if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (len == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    return len;
}

/* Copies UTF-8 text replacing each invalid byte with U+FFFD. */
static int repair_utf8(const char *in, size_t len, size_t first_bad, out_buf_t *out)
{
    int rc = out_reserve(out, len + 64);
    if (rc == 0) {
        memcpy(out->data, in, first_bad);
        out->len = first_bad;
    }
    for (size_t i = first_bad; rc == 0 && i < len;) {
        size_t n = utf8_sequence((const unsigned char *)in + i, len - i);
        const char *piece = n > 0 ? in + i : replacement;
        size_t piece_len = n > 0 ? n : sizeof(replacement) - 1;
        rc = out_reserve(out, piece_len);
        if (rc == 0) {
            memcpy(out->data + out->len, piece, piece_len);
            out->len += piece_len;
        }
        i += n > 0 ? n : 1;
    }
    return rc;
}

/* Offset of the first invalid UTF-8 byte, or len. */
static size_t first_invalid_utf8(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

int html_charset_decode(const char *html, size_t len, size_t max_bytes, charset_page_t *out)
{
    const unsigned char *u = (const unsigned char *)html;
    const char *from = NULL;
    size_t skip = 0;
    char name[sizeof(out->encoding)] = "utf-8";
    *out = (charset_page_t){.data = html, .len = len};
    if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
        skip = 3;
    } else if (len >= 2 && u[0] == 0xff && u[1] == 0xfe) {
        from = "UTF-16LE", skip = 2;
        snprintf(name, sizeof(name), "utf-16le");
    } else if (len >= 2 && u[0] == 0xfe && u[1] == 0xff) {
        from = "UTF-16BE", skip = 2;
        snprintf(name, sizeof(name), "utf-16be");
    } else if (declared_charset(html, len, name, sizeof(name))) {
        from = source_encoding(name);
    }
    snprintf(out->encoding, sizeof(out->encoding), "%s", name);
    html += skip;
    len -= skip;
    out_buf_t buf = {.max = max_bytes};
    int rc = 0;
    iconv_t cd = from != NULL ? iconv_open("UTF-8", from) : (iconv_t)-1;
    if (cd == (iconv_t)-1 && from != NULL && errno == ENOMEM)
        return SL_ENOMEM;
    if (cd != (iconv_t)-1) {
        rc = convert(cd, html, len, &buf);
        iconv_close(cd);
    } else {
        size_t bad = first_invalid_utf8(html, len);
        if (bad == len) {
            out->data = html;
            out->len = len;
            return 0;
        }
        rc = repair_utf8(html, len, bad, &buf);
    }
    if (rc != 0) {
        free(buf.data);
        return rc;
    }
    out->owned = buf.data;
    out->data = buf.data != NULL ? buf.data : "";
    out->len = buf.len;
    return 0;
}
