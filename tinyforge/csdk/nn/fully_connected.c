/* FULLY_CONNECTED, int8 (TFLite reference_integer_ops::FullyConnected). */
#include "tf_nn.h"

void tf_fully_connected_s8_portable(const tf_fc_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, o, i;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * p->in_features;
        for (o = 0; o < p->out_features; ++o) {
            const int8_t *w = p->weights + o * p->in_features;
            /* folded bias (kbias = bias + in_offset * sum(w), only with weight_offset 0) */
            const int32_t io = p->kbias ? 0 : p->in_offset;
            int32_t acc = p->kbias ? p->kbias[o] : (p->bias ? p->bias[o] : 0);
            for (i = 0; i < p->in_features; ++i) {
                acc += ((int32_t)w[i] + p->weight_offset) * ((int32_t)x[i] + io);
            }
            acc = tf_requant_single(acc, p->mult[TF_QCH(p, o)], p->shift[TF_QCH(p, o)]) + p->out_offset;
            out[b * p->out_features + o] = (int8_t)tf_clamp(acc, p->act_min, p->act_max);
        }
    }
}

#if !defined(__ARM_FEATURE_DSP) || defined(TF_NN_PORTABLE)
void tf_fully_connected_s8(const tf_fc_params *p, const int8_t *in, int8_t *out)
{
    tf_fully_connected_s8_portable(p, in, out);
}
#endif
