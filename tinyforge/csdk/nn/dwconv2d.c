/* DEPTHWISE_CONV_2D, int8 (TFLite DepthwiseConvPerChannel). out_c = in_c * depth_mult. */
#include "tf_nn.h"

void tf_dwconv2d_s8_portable(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    int b, oy, ox, ic, m, ky, kx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_mult; ++m) {
                        const int oc = ic * p->depth_mult + m;
                        /* folded bias (kbias): see tf_conv2d_s8_portable */
                        const int32_t io = p->kbias ? 0 : p->in_offset;
                        const int32_t pad_off = p->kbias ? -p->in_offset : 0;
                        int32_t acc = p->kbias ? p->kbias[oc] : (p->bias ? p->bias[oc] : 0);
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int iy = iy0 + ky * p->dil_h;
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int ix = ix0 + kx * p->dil_w;
                                const int32_t wv =
                                    p->weights[((int32_t)ky * p->k_w + kx) * p->out_c + oc];
                                if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                                    acc += wv * pad_off;
                                    continue;
                                }
                                acc += wv * ((int32_t)inb[((int32_t)iy * p->in_w + ix) * p->in_c
                                                          + ic] + io);
                            }
                        }
                        acc = tf_requant(acc, p->mult[TF_QCH(p, oc)], p->shift[TF_QCH(p, oc)]) + p->out_offset;
                        out[((int32_t)oy * p->out_w + ox) * p->out_c + oc] =
                            (int8_t)tf_clamp(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
        out += (int32_t)p->out_h * p->out_w * p->out_c;
    }
}

#if !defined(__ARM_FEATURE_DSP) || defined(TF_NN_PORTABLE)
void tf_dwconv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    tf_dwconv2d_s8_portable(p, in, out);
}
#endif
