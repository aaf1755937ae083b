/* libFuzzer target: a cron expression (see tests/fuzz/CMakeLists.txt to run). */
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = sl__strndup((const char *)data, size);
    if (text == NULL)
        return 0;
    char err[256];
    size_t offset = 0;
    sl_cron_t *cron = NULL;
    if (sl__cron_parse(text, &cron, err, sizeof(err), &offset) == 0) {
        int64_t next = 0;
        sl__cron_next(cron, "UTC", 1767225600, &next); /* 2026-01-01 */
        sl__cron_free(cron);
    } else if (offset > strlen(text)) {
        abort(); /* the error offset points into the expression */
    }
    sl__free(text);
    return 0;
}
