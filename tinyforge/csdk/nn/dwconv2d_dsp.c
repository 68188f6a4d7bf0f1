/* DEPTHWISE_CONV_2D fast path for Cortex-M DSP builds (depth multiplier 1): folded bias and,
 * for interior pixels, a channel-contiguous inner loop with no bounds checks. Border pixels
 * and other depth multipliers use the portable path. Identical output bytes. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

/* 32-bit accumulators for a block of channels live on the stack. */
#define TF_DW_BLOCK 64

void tf_dwconv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    const int span_h = (p->k_h - 1) * p->dil_h + 1, span_w = (p->k_w - 1) * p->dil_w + 1;
    int32_t acc[TF_DW_BLOCK];
    int b, oy, ox, c0, c, ky, kx;
    if (p->kbias == 0 || p->depth_mult != 1) {
        tf_dwconv2d_s8_portable(p, in, out);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->in_c;
        int8_t *outb = out + (int32_t)b * p->out_h * p->out_w * p->out_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                int8_t *o = outb + ((int32_t)oy * p->out_w + ox) * p->out_c;
                if (iy0 < 0 || ix0 < 0 || iy0 + span_h > p->in_h || ix0 + span_w > p->in_w) {
                    continue; /* border: filled by the portable pass below */
                }
                for (c0 = 0; c0 < p->in_c; c0 += TF_DW_BLOCK) {
                    const int n = p->in_c - c0 < TF_DW_BLOCK ? p->in_c - c0 : TF_DW_BLOCK;
                    for (c = 0; c < n; ++c) {
                        acc[c] = p->kbias[c0 + c];
                    }
                    for (ky = 0; ky < p->k_h; ++ky) {
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int8_t *src = inb + ((int32_t)(iy0 + ky * p->dil_h) * p->in_w
                                                       + ix0 + kx * p->dil_w) * p->in_c + c0;
                            const int8_t *w = p->weights + ((int32_t)ky * p->k_w + kx) * p->out_c
                                              + c0;
                            for (c = 0; c < n; ++c) {
                                acc[c] += (int32_t)w[c] * src[c];
                            }
                        }
                    }
                    for (c = 0; c < n; ++c) {
                        const int32_t v = tf_requant(acc[c], p->mult[TF_QCH(p, c0 + c)], p->shift[TF_QCH(p, c0 + c)])
                                          + p->out_offset;
                        o[c0 + c] = (int8_t)tf_clamp(v, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
    /* Border pixels: portable arithmetic, one pixel at a time. */
    {
        for (b = 0; b < p->batches; ++b) {
            const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->in_c;
            int8_t *outb = out + (int32_t)b * p->out_h * p->out_w * p->out_c;
            for (oy = 0; oy < p->out_h; ++oy) {
                const int iy0 = oy * p->stride_h - p->pad_h;
                for (ox = 0; ox < p->out_w; ++ox) {
                    const int ix0 = ox * p->stride_w - p->pad_w;
                    int ky0, kx0;
                    if (!(iy0 < 0 || ix0 < 0 || iy0 + span_h > p->in_h
                          || ix0 + span_w > p->in_w)) {
                        continue;
                    }
                    /* One output pixel: a 1x1-output problem over the clipped window. */
                    for (c = 0; c < p->out_c; ++c) {
                        int32_t a = p->bias ? p->bias[c] : 0;
                        for (ky0 = 0; ky0 < p->k_h; ++ky0) {
                            const int iy = iy0 + ky0 * p->dil_h;
                            if (iy < 0 || iy >= p->in_h) {
                                continue;
                            }
                            for (kx0 = 0; kx0 < p->k_w; ++kx0) {
                                const int ix = ix0 + kx0 * p->dil_w;
                                if (ix < 0 || ix >= p->in_w) {
                                    continue;
                                }
                                a += (int32_t)p->weights[((int32_t)ky0 * p->k_w + kx0) * p->out_c
                                                         + c]
                                     * ((int32_t)inb[((int32_t)iy * p->in_w + ix) * p->in_c + c]
                                        + p->in_offset);
                            }
                        }
                        a = tf_requant(a, p->mult[TF_QCH(p, c)], p->shift[TF_QCH(p, c)]) + p->out_offset;
                        outb[((int32_t)oy * p->out_w + ox) * p->out_c + c] =
                            (int8_t)tf_clamp(a, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
#endif
