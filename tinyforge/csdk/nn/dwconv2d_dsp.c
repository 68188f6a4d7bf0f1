/* DEPTHWISE_CONV_2D fast path for Cortex-M DSP builds (depth multiplier 1).
 *
 * With the folded bias (kbias = bias + in_offset * sum(w)), each output is kbias plus a
 * plain dot product over the taps, provided that taps outside the input read the input
 * zero point (w * (zp + in_offset) == 0). So every pixel, border or not, takes the same
 * path: a table of tap pointers (into the input, or into a zero-point row) is built once per
 * pixel, then four channels at a time accumulate in registers: per tap one input word and
 * one weight word, widened by SXTB16, feed four 16x16 MACs (SMLABB/SMLATT). Integer sums
 * are exact in any order: output bytes equal tf_dwconv2d_s8_portable's.
 *
 * Scratch (params->scratch, planned by the compiler): in_c bytes of zero point rounded up
 * to 4, then k_h * k_w tap pointers. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

void tf_dwconv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    const int32_t ch = p->in_c, ntap = (int32_t)p->k_h * p->k_w;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    int8_t *zrow;
    const int8_t **taps;
    int b, oy, ox;
    if (p->kbias == 0 || p->scratch == 0 || p->depth_mult != 1) {
        tf_dwconv2d_s8_portable(p, in, out);
        return;
    }
    zrow = p->scratch;
    taps = (const int8_t **)(void *)(p->scratch + ((ch + 3) & ~3));
    memset(zrow, (int8_t)(-p->in_offset), (size_t)ch);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * ch;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                int32_t c, t;
                int ky, kx;
                for (ky = 0, t = 0; ky < p->k_h; ++ky) {
                    const int iy = iy0 + ky * p->dil_h;
                    for (kx = 0; kx < p->k_w; ++kx, ++t) {
                        const int ix = ix0 + kx * p->dil_w;
                        taps[t] = (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w)
                                  ? zrow : inb + ((int32_t)iy * p->in_w + ix) * ch;
                    }
                }
                for (c = 0; c + 4 <= ch; c += 4) {
                    const int8_t *wp = p->weights + c;
                    int32_t s0 = p->kbias[c], s1 = p->kbias[c + 1];
                    int32_t s2 = p->kbias[c + 2], s3 = p->kbias[c + 3];
                    for (t = 0; t < ntap; ++t) {
                        const uint32_t xv = tf_ld4(taps[t] + c), wv = tf_ld4(wp);
                        const uint32_t xe = tf_sxtb16(xv), xo = tf_sxtb16_ror8(xv);
                        const uint32_t we = tf_sxtb16(wv), wo = tf_sxtb16_ror8(wv);
                        s0 = tf_smlabb(we, xe, s0);
                        s2 = tf_smlatt(we, xe, s2);
                        s1 = tf_smlabb(wo, xo, s1);
                        s3 = tf_smlatt(wo, xo, s3);
                        wp += ch;
                    }
                    {
                        const int8_t *sh = p->shift + TF_QCH(p, c);
                        const int32_t *mu = p->mult + TF_QCH(p, c);
                        const int32_t d = p->per_channel ? 1 : 0;
                        out[c] = tf_sat(tf_rq(s0, mu[0], tf_rq_high(sh[0]), -sh[0] - 1) + oo,
                                        lo, hi);
                        out[c + 1] = tf_sat(tf_rq(s1, mu[d], tf_rq_high(sh[d]),
                                                  -sh[d] - 1) + oo, lo, hi);
                        out[c + 2] = tf_sat(tf_rq(s2, mu[2 * d], tf_rq_high(sh[2 * d]),
                                                  -sh[2 * d] - 1) + oo, lo, hi);
                        out[c + 3] = tf_sat(tf_rq(s3, mu[3 * d], tf_rq_high(sh[3 * d]),
                                                  -sh[3 * d] - 1) + oo, lo, hi);
                    }
                }
                for (; c < ch; ++c) {
                    int32_t s0 = p->kbias[c];
                    for (t = 0; t < ntap; ++t) {
                        s0 += (int32_t)p->weights[t * ch + c] * taps[t][c];
                    }
                    {
                        const int32_t e0 = p->shift[TF_QCH(p, c)];
                        out[c] = tf_sat(tf_rq(s0, p->mult[TF_QCH(p, c)], tf_rq_high(e0),
                                              -e0 - 1) + oo, lo, hi);
                    }
                }
                out += ch;
            }
        }
    }
}
#endif
