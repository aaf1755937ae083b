/* libFuzzer target: the value wire encoding (see tests/fuzz/CMakeLists.txt to run).
 * Any bytes decode or fail cleanly; what decodes encodes, and that encoding decodes back to
 * a value with the same encoding (bytes compared: NaN is not equal to itself). */
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "value/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_value_t *v = NULL;
    size_t used = 0;
    if (sl__value_wire_decode(data, size, &used, &v) < 0) {
        if (v != NULL)
            abort(); /* a failed decode hands nothing out */
        return 0;
    }
    if (used > size)
        abort();
    size_t again = 0;
    if (sl__value_wire_size(v, &again) == 0) {
        uint8_t *out = sl__malloc(again ? again : 1);
        if (out != NULL) {
            size_t written = sl__value_wire_encode(v, out);
            sl_value_t *back = NULL;
            size_t back_size = 0;
            if (written != again || sl__value_wire_decode(out, written, NULL, &back) < 0 ||
                sl__value_wire_size(back, &back_size) < 0 || back_size != written)
                abort();
            uint8_t *twice = sl__malloc(back_size ? back_size : 1);
            if (twice != NULL && (sl__value_wire_encode(back, twice) != written ||
                                  memcmp(twice, out, written) != 0))
                abort();
            sl__free(twice);
            sl_value_free(back);
            sl__free(out);
        }
    }
    sl_value_free(v);
    return 0;
}
