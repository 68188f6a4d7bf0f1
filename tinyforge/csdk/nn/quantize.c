/* QUANTIZE: float32 -> int8 (AffineQuantize) and int8 -> int8 requantization (Requantize). */
#include "tf_nn.h"

void tf_quantize_f32_s8(int32_t n, float scale, int32_t zp, const float *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float q = in[i] / scale;
        int32_t v;
        /* Saturate before the integer conversion (out-of-range float->int is undefined). */
        if (q >= 2147483520.0f) {
            v = 127;
        } else if (q <= -2147483520.0f) {
            v = -128;
        } else {
            v = tf_roundf(q) + zp;
        }
        out[i] = (int8_t)tf_clamp(v, -128, 127);
    }
}

void tf_requantize_s8(int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult, int32_t shift,
                      const int8_t *in, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = tf_requant((int32_t)in[i] - in_zp, mult, shift) + out_zp;
        out[i] = (int8_t)tf_clamp(v, -128, 127);
    }
}
