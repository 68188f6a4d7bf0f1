/* SOFTMAX, int8 -> int8, as TFLite's int8 kernel: float exp table indexed by (max - x),
 * float sum, reciprocal, round half away from zero. The table is built by the compiler. */
#include "tf_nn.h"

void tf_softmax_s8(const tf_softmax_params *p, const int8_t *in, int8_t *out)
{
    int32_t i, j;
    for (i = 0; i < p->outer; ++i) {
        int32_t max_val = -128;
        float sum = 0.0f;
        float inv;
        const float *t;
        for (j = 0; j < p->depth; ++j) {
            max_val = in[j] > max_val ? in[j] : max_val;
        }
        t = p->table + 255 - max_val;
        for (j = 0; j < p->depth; ++j) {
            sum += t[in[j]];
        }
        inv = 1.0f / (sum * p->out_scale);
        for (j = 0; j < p->depth; ++j) {
            const int32_t q = tf_roundf(t[in[j]] * inv) + p->out_zp;
            out[j] = (int8_t)tf_clamp(q, -128, 127);
        }
        in += p->depth;
        out += p->depth;
    }
}
