/* CONV_2D fast path for Cortex-M with the DSP extension. Integer sums are exact in any order,
 * so with the folded bias (bias + in_offset * sum(w)) each output is a plain int8 dot product
 * per kernel row (k_w * in_c contiguous bytes in both input and weights when dil_w == 1).
 * Border pixels, whose window leaves the input, use the portable computation. Output bytes
 * are identical to tf_conv2d_s8_portable. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

static int8_t requant_out(const tf_conv_params *p, int32_t acc, int oc)
{
    acc = tf_requant(acc, p->mult[TF_QCH(p, oc)], p->shift[TF_QCH(p, oc)]) + p->out_offset;
    return (int8_t)tf_clamp(acc, p->act_min, p->act_max);
}

static void border_pixel(const tf_conv_params *p, const int8_t *inb, int iy0, int ix0,
                         int8_t *out)
{
    int oc, ky, kx, ic;
    for (oc = 0; oc < p->out_c; ++oc) {
        const int8_t *w = p->weights + (int32_t)oc * p->k_h * p->k_w * p->in_c;
        int32_t acc = p->bias ? p->bias[oc] : 0;
        for (ky = 0; ky < p->k_h; ++ky) {
            const int iy = iy0 + ky * p->dil_h;
            if (iy < 0 || iy >= p->in_h) {
                continue;
            }
            for (kx = 0; kx < p->k_w; ++kx) {
                const int ix = ix0 + kx * p->dil_w;
                const int8_t *src = inb + ((int32_t)iy * p->in_w + ix) * p->in_c;
                const int8_t *wk = w + ((int32_t)ky * p->k_w + kx) * p->in_c;
                if (ix < 0 || ix >= p->in_w) {
                    continue;
                }
                for (ic = 0; ic < p->in_c; ++ic) {
                    acc += (int32_t)wk[ic] * ((int32_t)src[ic] + p->in_offset);
                }
            }
        }
        out[oc] = requant_out(p, acc, oc);
    }
}

void tf_conv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    const int32_t row = (int32_t)p->k_w * p->in_c;      /* contiguous run per kernel row */
    const int32_t wsize = (int32_t)p->k_h * row;
    const int span_h = (p->k_h - 1) * p->dil_h + 1, span_w = (p->k_w - 1) * p->dil_w + 1;
    int b, oy, ox, oc, ky;
    if (p->kbias == 0 || p->dil_w != 1) {
        tf_conv2d_s8_portable(p, in, out);
        return;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                if (iy0 < 0 || ix0 < 0 || iy0 + span_h > p->in_h || ix0 + span_w > p->in_w) {
                    border_pixel(p, inb, iy0, ix0, out);
                    out += p->out_c;
                    continue;
                }
                for (oc = 0; oc + 2 <= p->out_c; oc += 2) {
                    const int8_t *w0 = p->weights + (int32_t)oc * wsize;
                    int32_t a0 = p->kbias[oc], a1 = p->kbias[oc + 1];
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int8_t *src =
                            inb + ((int32_t)(iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c;
                        tf_dot2_s8(src, w0 + ky * row, w0 + wsize + ky * row, row, &a0, &a1);
                    }
                    out[oc] = requant_out(p, a0, oc);
                    out[oc + 1] = requant_out(p, a1, oc + 1);
                }
                for (; oc < p->out_c; ++oc) {
                    const int8_t *w0 = p->weights + (int32_t)oc * wsize;
                    int32_t a0 = p->kbias[oc];
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int8_t *src =
                            inb + ((int32_t)(iy0 + ky * p->dil_h) * p->in_w + ix0) * p->in_c;
                        a0 = tf_dot_s8(src, w0 + ky * row, row, a0);
                    }
                    out[oc] = requant_out(p, a0, oc);
                }
                out += p->out_c;
            }
        }
    }
}
#endif
