/* libFuzzer target: the syntax check of one `${{ }}` expression (see CMakeLists.txt). */
#include <stdlib.h>

#include "expr/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    sl__expr_check((const char *)data, size, err, sizeof(err));
    return 0;
}
