/* MEAN, int8: sum of (x - input zero point) over the reduced axes in int32, then one
 * requantization by input_scale / (count * output_scale) (computed by the compiler in float32
 * as TFLite does), plus the output zero point. ``acc`` is n_out int32 of scratch. */
#include "tf_nn.h"

void tf_mean_s8(const tf_mean_params *p, const int8_t *in, int8_t *out, int32_t *acc)
{
    int32_t idx[6] = {0, 0, 0, 0, 0, 0};
    int32_t total = 1, i, o = 0;
    int d;
    for (d = 0; d < p->num_dims; ++d) {
        total *= p->in_dims[d];
    }
    for (i = 0; i < p->n_out; ++i) {
        acc[i] = 0;
    }
    for (i = 0; i < total; ++i) {
        acc[o] += (int32_t)in[i] - p->in_zp;
        /* advance the multi-index and the output offset */
        for (d = p->num_dims - 1; d >= 0; --d) {
            idx[d]++;
            o += p->out_strides[d];
            if (idx[d] < p->in_dims[d]) {
                break;
            }
            o -= p->out_strides[d] * p->in_dims[d];
            idx[d] = 0;
        }
    }
    for (i = 0; i < p->n_out; ++i) {
        const int32_t v = tf_requant(acc[i], p->mult, p->shift) + p->out_zp;
        out[i] = (int8_t)tf_clamp(v, -128, 127);
    }
}
