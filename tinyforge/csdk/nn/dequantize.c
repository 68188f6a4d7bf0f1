/* DEQUANTIZE: int8 -> float32, computed in double then narrowed, as TFLite's reference. */
#include "tf_nn.h"

void tf_dequantize_s8_f32(int32_t n, double scale, int32_t zp, const int8_t *in, float *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (float)(scale * (double)((int32_t)in[i] - zp));
    }
}
