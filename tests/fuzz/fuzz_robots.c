/*
 * robots.txt, as a server sends it: parse any bytes, then match paths against the
 * rules (including patterns full of `*`). Must not crash, leak or run away.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first line is a path to test; the rest is the file. */
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t path_len = nl ? (size_t)(nl - text) : size;
    char path[256];
    if (path_len >= sizeof(path))
        path_len = sizeof(path) - 1;
    memcpy(path, text, path_len);
    path[path_len] = '\0';
    size_t rest = nl ? size - (size_t)(nl + 1 - text) : 0;
    robots_t *robots = NULL;
    if (sl__io_robots_parse(nl ? nl + 1 : "", rest, &robots) == 0) {
        const char *rule = NULL;
        sl__io_robots_allows(robots, path, &rule);
        sl__io_robots_allows(robots, "/", &rule);
        sl__io_robots_free(robots);
    }
    return 0;
}
