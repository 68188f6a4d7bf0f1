/* CONV_2D, int8 activations, int8 per-channel weights, int32 bias (TFLite ConvPerChannel). */
#include "tf_nn.h"

void tf_conv2d_s8_portable(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    int b, oy, ox, oc, ky, kx, ic;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *w = p->weights + (int32_t)oc * p->k_h * p->k_w * p->in_c;
                    /* folded bias: kbias already holds in_offset * sum(w) of every tap, so
                     * in-bounds taps add w * x and padding taps take w * in_offset back */
                    const int32_t io = p->kbias ? 0 : p->in_offset;
                    const int32_t pad_off = p->kbias ? -p->in_offset : 0;
                    int32_t acc = p->kbias ? p->kbias[oc] : (p->bias ? p->bias[oc] : 0);
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int iy = iy0 + ky * p->dil_h;
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int ix = ix0 + kx * p->dil_w;
                            const int8_t *wk = w + ((int32_t)ky * p->k_w + kx) * p->in_c;
                            const int8_t *src;
                            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                                for (ic = 0; ic < p->in_c; ++ic) {
                                    acc += (int32_t)wk[ic] * pad_off;
                                }
                                continue;
                            }
                            src = inb + ((int32_t)iy * p->in_w + ix) * p->in_c;
                            for (ic = 0; ic < p->in_c; ++ic) {
                                acc += (int32_t)wk[ic] * ((int32_t)src[ic] + io);
                            }
                        }
                    }
                    acc = tf_requant(acc, p->mult[TF_QCH(p, oc)], p->shift[TF_QCH(p, oc)]) + p->out_offset;
                    *out++ = (int8_t)tf_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

#if !defined(__ARM_FEATURE_DSP) || defined(TF_NN_PORTABLE)
void tf_conv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    tf_conv2d_s8_portable(p, in, out);
}
#endif
