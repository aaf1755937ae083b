/*
 * UTF-8: validation, and the escaping that keeps data from forging log lines (text) or
 * breaking a JSON line (invalid UTF-8).
 */
#include <string.h>

#include "util.h"

size_t sl__utf8_next(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (len == 0)
        return 0;
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t k = 1; k <= n; k++) {
        if (k >= len || (s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, or a surrogate */
    return n + 1;
}

size_t sl__utf8_check(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = sl__utf8_next(s + i, len - i);
        if (n == 0)
            return i;
        i += n;
    }
    return len;
}

/* The code point of a valid sequence of `n` bytes at `s`. */
static uint32_t utf8_code_point(const unsigned char *s, size_t n)
{
    static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    uint32_t cp = s[0] & lead_mask[n];
    for (size_t k = 1; k < n; k++)
        cp = (cp << 6) | (s[k] & 0x3f);
    return cp;
}

void sl__utf8_escape_text(sl_buf_t *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = sl__utf8_next(str + i, len - i);
        if (n == 0) { /* not UTF-8: the byte, visibly */
            sl__buf_addf(b, "\\x%02x", c);
            i++;
        } else if (n == 1 && (c < 0x20 || c == 0x7f)) {
            if (c == '\n')
                sl__buf_add(b, "\\n", 2);
            else if (c == '\r')
                sl__buf_add(b, "\\r", 2);
            else if (c == '\t')
                sl__buf_add(b, "\\t", 2);
            else
                sl__buf_addf(b, "\\x%02x", c);
            i++;
        } else if (n == 2 && utf8_code_point(s + i, 2) < 0xa0) { /* C1 controls (CSI...) */
            sl__buf_addf(b, "\\u%04x", (unsigned)utf8_code_point(s + i, 2));
            i += 2;
        } else {
            sl__buf_add(b, str + i, n);
            i += n;
        }
    }
}

void sl__utf8_escape_json(sl_buf_t *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    sl__buf_addc(b, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = sl__utf8_next(str + i, len - i);
        if (n == 0) {
            sl__buf_add(b, "\\ufffd", 6); /* U+FFFD for each byte that is not UTF-8 */
            i++;
            continue;
        }
        if (c == '"' || c == '\\')
            sl__buf_addf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            sl__buf_addf(b, "\\u%04x", c);
        else
            sl__buf_add(b, str + i, n);
        i += n;
    }
    sl__buf_addc(b, '"');
}
