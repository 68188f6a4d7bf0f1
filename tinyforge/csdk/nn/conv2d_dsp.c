/* CONV_2D fast path for Cortex-M with the DSP extension.
 *
 * The convolution is a matrix product: each output pixel's receptive field (im2col column,
 * K = k_h * k_w * in_c values) times each output channel's K weights. With the folded bias
 * (kbias = bias + in_offset * sum(w)) the product needs no input offset, provided that
 * padding positions hold the input zero point (w * (zp + in_offset) == 0). Integer sums are
 * exact in any order, so the output bytes equal tf_conv2d_s8_portable's.
 *
 * Two output pixels are processed together: their columns are gathered (zero-point padded)
 * and widened once into int16 pairs in SXTB16 order ([x0,x2],[x1,x3] per group of four, the
 * order in which SXTB16 widens a weight word), then every pair of output channels runs a
 * 2x2 SMLAD micro-kernel: per four K, two weight loads + four SXTB16 feed eight dual MACs
 * (a lone last pixel fills both slots and its bytes are stored twice).
 * Requantization uses one SMLAL per output (tf_rq).
 *
 * 1x1 layers whose rows map onto whole input rows read the input pixel directly.
 *
 * Scratch (params->scratch, planned by the compiler): the gathered column (K bytes rounded
 * up to 4), then 2 pixels x K4 int16 groups (K4 = K rounded down to 4), then 16 bytes of
 * tails: round4(K) + 4 * K4 + 16 bytes. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

/* Gather one pixel's im2col column into col (K bytes), zero-point padded. */
static void gather(const tf_conv_params *p, const int8_t *inb, int iy0, int ix0, int8_t *col)
{
    const int8_t zp = (int8_t)(-p->in_offset);
    const int32_t ic = p->in_c;
    int ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(col, zp, (size_t)(p->k_w * ic));
            col += p->k_w * ic;
            continue;
        }
        if (p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
            memcpy(col, inb + ((int32_t)iy * p->in_w + ix0) * ic, (size_t)(p->k_w * ic));
            col += p->k_w * ic;
            continue;
        }
        for (kx = 0; kx < p->k_w; ++kx) {
            const int ix = ix0 + kx * p->dil_w;
            if (ix < 0 || ix >= p->in_w) {
                memset(col, zp, (size_t)ic);
            } else {
                memcpy(col, inb + ((int32_t)iy * p->in_w + ix) * ic, (size_t)ic);
            }
            col += ic;
        }
    }
}

/* Widen K int8 values into groups at dst (stride 4 words between groups: two pixels are
 * interleaved) and the K % 4 tail values into tail. */
static void widen(const int8_t *src, int32_t k, uint32_t *dst, int16_t *tail)
{
    int32_t i;
    for (i = 0; i + 4 <= k; i += 4) {
        const uint32_t v = tf_ld4(src + i);
        dst[0] = tf_sxtb16(v);
        dst[1] = tf_sxtb16_ror8(v);
        dst += 4;
    }
    for (; i < k; ++i) {
        *tail++ = src[i];
    }
}

/* Outputs of two pixels (o0, o1) for all channels from interleaved int16 groups x. */
static void gemm2(const tf_conv_params *p, int32_t k, const uint32_t *x, const int16_t *t0,
                  const int16_t *t1, int8_t *o0, int8_t *o1)
{
    const int32_t ng = k >> 2, nt = k & 3;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    int32_t oc, g, r;
    for (oc = 0; oc + 2 <= p->out_c; oc += 2) {
        const int8_t *w0 = p->weights + oc * k;
        const int8_t *w1 = w0 + k;
        const uint32_t *xp = x;
        int32_t s00 = p->kbias[oc], s01 = s00, s10 = p->kbias[oc + 1], s11 = s10;
        for (g = 0; g < ng; ++g) {
            const uint32_t a = tf_ld4(w0), b = tf_ld4(w1);
            const uint32_t ae = tf_sxtb16(a), ao = tf_sxtb16_ror8(a);
            const uint32_t be = tf_sxtb16(b), bo = tf_sxtb16_ror8(b);
            uint32_t xe = xp[0], xo = xp[1];
            s00 = tf_smlad(ae, xe, s00);
            s00 = tf_smlad(ao, xo, s00);
            s10 = tf_smlad(be, xe, s10);
            s10 = tf_smlad(bo, xo, s10);
            xe = xp[2];
            xo = xp[3];
            s01 = tf_smlad(ae, xe, s01);
            s01 = tf_smlad(ao, xo, s01);
            s11 = tf_smlad(be, xe, s11);
            s11 = tf_smlad(bo, xo, s11);
            w0 += 4;
            w1 += 4;
            xp += 4;
        }
        for (r = 0; r < nt; ++r) {
            s00 += w0[r] * t0[r];
            s01 += w0[r] * t1[r];
            s10 += w1[r] * t0[r];
            s11 += w1[r] * t1[r];
        }
        {
            const int32_t m0 = p->mult[TF_QCH(p, oc)], e0 = p->shift[TF_QCH(p, oc)];
            const int32_t m1 = p->mult[TF_QCH(p, oc + 1)], e1 = p->shift[TF_QCH(p, oc + 1)];
            const int32_t h0 = tf_rq_high(e0), h1 = tf_rq_high(e1);
            o0[oc] = tf_sat(tf_rq(s00, m0, h0, -e0 - 1) + oo, lo, hi);
            o1[oc] = tf_sat(tf_rq(s01, m0, h0, -e0 - 1) + oo, lo, hi);
            o0[oc + 1] = tf_sat(tf_rq(s10, m1, h1, -e1 - 1) + oo, lo, hi);
            o1[oc + 1] = tf_sat(tf_rq(s11, m1, h1, -e1 - 1) + oo, lo, hi);
        }
    }
    if (oc < p->out_c) {
        const int8_t *w0 = p->weights + oc * k;
        const uint32_t *xp = x;
        int32_t s00 = p->kbias[oc], s01 = s00;
        for (g = 0; g < ng; ++g) {
            const uint32_t a = tf_ld4(w0);
            const uint32_t ae = tf_sxtb16(a), ao = tf_sxtb16_ror8(a);
            s00 = tf_smlad(ao, xp[1], tf_smlad(ae, xp[0], s00));
            s01 = tf_smlad(ao, xp[3], tf_smlad(ae, xp[2], s01));
            w0 += 4;
            xp += 4;
        }
        for (r = 0; r < nt; ++r) {
            s00 += w0[r] * t0[r];
            s01 += w0[r] * t1[r];
        }
        {
            const int32_t m0 = p->mult[TF_QCH(p, oc)], e0 = p->shift[TF_QCH(p, oc)];
            const int32_t h0 = tf_rq_high(e0);
            o0[oc] = tf_sat(tf_rq(s00, m0, h0, -e0 - 1) + oo, lo, hi);
            o1[oc] = tf_sat(tf_rq(s01, m0, h0, -e0 - 1) + oo, lo, hi);
        }
    }
}

void tf_conv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    const int32_t k = (int32_t)p->k_h * p->k_w * p->in_c;
    const int32_t k4 = k & ~3;
    /* 1x1 kernels with whole input rows: a pixel's column is the input pixel itself */
    const int direct = p->k_h == 1 && p->k_w == 1 && p->pad_w == 0 && p->stride_w == 1
                       && p->in_w == p->out_w;
    const int32_t npix = (int32_t)p->out_h * p->out_w;
    int8_t *col;
    uint32_t *x;
    int16_t *t0, *t1;
    int b;
    int32_t n;
    if (p->kbias == 0 || p->scratch == 0) {
        tf_conv2d_s8_portable(p, in, out);
        return;
    }
    col = p->scratch;
    x = (uint32_t *)(void *)(p->scratch + ((k + 3) & ~3));
    t0 = (int16_t *)(void *)((int8_t *)x + 2 * 2 * k4);
    t1 = t0 + 4;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->in_c;
        int8_t *outb = out + (int32_t)b * npix * p->out_c;
        for (n = 0; n < npix; n += 2) {
            const int pair = n + 1 < npix;
            int j;
            for (j = 0; j <= 1; ++j) {
                const int32_t pix = pair ? n + j : n; /* a lone pixel fills both slots */
                const int oy = (int)(pix / p->out_w), ox = (int)(pix - (int32_t)oy * p->out_w);
                const int8_t *src;
                const int iy0 = oy * p->stride_h - p->pad_h;
                if (direct && iy0 >= 0 && iy0 < p->in_h) {
                    src = inb + ((int32_t)iy0 * p->in_w + ox) * p->in_c;
                } else {
                    gather(p, inb, iy0, ox * p->stride_w - p->pad_w, col);
                    src = col;
                }
                widen(src, k, x + 2 * j, j ? t1 : t0);
            }
            gemm2(p, k, x, t0, t1, outb + n * p->out_c, outb + (pair ? n + 1 : n) * p->out_c);
        }
    }
}
#endif
