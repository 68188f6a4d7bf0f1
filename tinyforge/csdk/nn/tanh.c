/* TANH, int8: table lookup, table built by the compiler exactly as TFLite's prepare does. */
#include "tf_nn.h"

void tf_tanh_s8(const int8_t *table, int32_t n, const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = table[(uint8_t)in[i]];
    }
}
