/* FULLY_CONNECTED fast path for Cortex-M DSP: folded bias, two rows per pass with SMLAD.
 * Identical output bytes to tf_fully_connected_s8_portable. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

static int8_t fc_out(const tf_fc_params *p, int32_t acc, int32_t o)
{
    acc = tf_requant_single(acc, p->mult[TF_QCH(p, o)], p->shift[TF_QCH(p, o)]) + p->out_offset;
    return (int8_t)tf_clamp(acc, p->act_min, p->act_max);
}

void tf_fully_connected_s8(const tf_fc_params *p, const int8_t *in, int8_t *out)
{
    int32_t b, o;
    if (p->kbias == 0 || p->weight_offset != 0) {
        tf_fully_connected_s8_portable(p, in, out);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * p->in_features;
        int8_t *y = out + b * p->out_features;
        for (o = 0; o + 2 <= p->out_features; o += 2) {
            const int8_t *w0 = p->weights + o * p->in_features;
            int32_t a0 = p->kbias[o], a1 = p->kbias[o + 1];
            tf_dot2_s8(x, w0, w0 + p->in_features, p->in_features, &a0, &a1);
            y[o] = fc_out(p, a0, o);
            y[o + 1] = fc_out(p, a1, o + 1);
        }
        for (; o < p->out_features; ++o) {
            y[o] = fc_out(p, tf_dot_s8(x, p->weights + o * p->in_features, p->in_features,
                                       p->kbias[o]), o);
        }
    }
}
#endif
