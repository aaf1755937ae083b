/*
 * Response header lines, as a server sends them (curl hands them over one line at a
 * time, status lines of a redirect chain included): any bytes must give a bounded
 * header map, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_http_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return 0;
    char *copy = malloc(size + 1);
    if (copy == NULL) {
        free(req);
        return 0;
    }
    memcpy(copy, data, size);
    copy[size] = '\0';
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || copy[i] == '\n') {
            size_t len = i - start + (i < size);
            if (len && sl__io_request_header(copy + start, 1, len, req) != len)
                break; /* curl would abort the transfer here */
            start = i + 1;
        }
    }
    sl_value_free(req->resp_headers);
    free(copy);
    free(req);
    return 0;
}
