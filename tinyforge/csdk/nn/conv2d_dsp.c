/* CONV_2D fast path for Cortex-M with the DSP extension.
 *
 * The convolution is a matrix product: each output pixel's receptive field (im2col column,
 * K = k_h * k_w * in_c values) times each output channel's K weights. With the folded bias
 * (kbias = bias + in_offset * sum(w)) the product needs no input offset, provided that
 * padding positions hold the input zero point (w * (zp + in_offset) == 0). Integer sums are
 * exact in any order, so the output bytes equal tf_conv2d_s8_portable's.
 *
 * Two output pixels are processed together (K loop unrolled by 16, asm blocks): their
 * columns are gathered (zero-point padded)
 * and widened once into int16 pairs in SXTB16 order ([x0,x2],[x1,x3] per group of four, the
 * order in which SXTB16 widens a weight word), then every pair of output channels runs a
 * 2x2 SMLAD micro-kernel: per four K, two weight loads + four SXTB16 feed eight dual MACs
 * (a lone last pixel fills both slots and its bytes are stored twice).
 * Requantization uses one SMLAL per output (tf_rq_t) and, for the full int8 activation
 * range, one SSAT (tf_rq_ssat8).
 *
 * 1x1 layers whose rows map onto whole input rows read the input pixel directly.
 *
 * Scratch (params->scratch, planned by the compiler): the gathered column (K bytes rounded
 * up to 4), then 2 pixels x K4 int16 groups (K4 = K rounded down to 4), then 16 bytes of
 * tails: round4(K) + 4 * K4 + 16 bytes. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

/* Copy n bytes word by word: the rows of a column are short (k_w * in_c bytes), where a
 * library memcpy call costs more than the copy. */
static inline void copy_row(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        memcpy(dst, src, 4); /* one unaligned LDR/STR pair */
    }
    for (; n > 0; --n) {
        *dst++ = *src++;
    }
}

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
            copy_row(col, inb + ((int32_t)iy * p->in_w + ix0) * ic, p->k_w * ic);
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

/* One group of four K for the 2x2 micro-kernel: weight words of both channels at byte
 * offset WOFF, the two pixels' widened words at byte offset XOFF (= 4 * WOFF; pixel 0 at
 * XOFF, pixel 1 at XOFF + 8). Written as one asm block so the compiler cannot hoist the
 * loads of an unrolled loop ahead of the MACs and spill (GCC does at -O2): per 16 MACs two
 * weight loads, three double-word pixel loads, four SXTB16 and eight SMLAD. */
#define TF_MAC2X2(WOFF, XOFF)                                                       \
    __asm("ldr %[a], [%[w0], #" #WOFF "]\n\t"                                        \
          "ldrd %[xe], %[xo], [%[xp], #" #XOFF "]\n\t"                               \
          "sxtb16 %[ae], %[a]\n\t"                                                   \
          "sxtb16 %[a], %[a], ror #8\n\t"                                            \
          "smlad %[s00], %[ae], %[xe], %[s00]\n\t"                                   \
          "smlad %[s00], %[a], %[xo], %[s00]\n\t"                                    \
          "ldrd %[xe], %[xo], [%[xp], #" #XOFF " + 8]\n\t"                           \
          "smlad %[s01], %[ae], %[xe], %[s01]\n\t"                                   \
          "smlad %[s01], %[a], %[xo], %[s01]\n\t"                                    \
          "ldr %[a], [%[w1], #" #WOFF "]\n\t"                                        \
          "sxtb16 %[ae], %[a]\n\t"                                                   \
          "sxtb16 %[a], %[a], ror #8\n\t"                                            \
          "smlad %[s11], %[ae], %[xe], %[s11]\n\t"                                   \
          "smlad %[s11], %[a], %[xo], %[s11]\n\t"                                    \
          "ldrd %[xe], %[xo], [%[xp], #" #XOFF "]\n\t"                               \
          "smlad %[s10], %[ae], %[xe], %[s10]\n\t"                                   \
          "smlad %[s10], %[a], %[xo], %[s10]"                                         \
          : [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11),       \
            [a] "=&r"(ta), [ae] "=&r"(tae), [xe] "=&r"(txe), [xo] "=&r"(txo)          \
          : [w0] "r"(w0), [w1] "r"(w1), [xp] "r"(xp)                                  \
          : "memory")

/* Outputs of two pixels (o0, o1) for all channels from interleaved int16 groups x. The K
 * loop is unrolled by 16 (four groups, immediate offsets) with a group-wise remainder. */
static void gemm2(const tf_conv_params *p, int32_t k, const uint32_t *x, const int16_t *t0,
                  const int16_t *t1, int8_t *o0, int8_t *o1)
{
    const int32_t n16 = k >> 4, ng = (k >> 2) & 3, nt = k & 3;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int full = lo == -128 && hi == 127;
    const int32_t ko = 1 + 2 * oo; /* output = (t + ko) >> 1, see tf_rq_t */
    const int32_t *kb = p->kbias, *mu = p->mult;
    const int8_t *sh = p->shift;
    const int32_t qmask = p->per_channel ? -1 : 0; /* channel index & qmask: mult/shift */
    int32_t oc, g, r;
    for (oc = 0; oc + 2 <= p->out_c; oc += 2) {
        const int8_t *w0 = p->weights + oc * k;
        const int8_t *w1 = w0 + k;
        const uint32_t *xp = x;
        int32_t s00 = kb[oc], s01 = s00, s10 = kb[oc + 1], s11 = s10;
        uint32_t ta, tae, txe, txo;
        for (g = n16; g > 0; --g) {
            TF_MAC2X2(0, 0);
            TF_MAC2X2(4, 16);
            TF_MAC2X2(8, 32);
            TF_MAC2X2(12, 48);
            w0 += 16;
            w1 += 16;
            xp += 16;
        }
        for (g = ng; g > 0; --g) {
            TF_MAC2X2(0, 0);
            w0 += 4;
            w1 += 4;
            xp += 4;
        }
        if (nt) {
            for (r = 0; r < nt; ++r) {
                s00 += w0[r] * t0[r];
                s01 += w0[r] * t1[r];
                s10 += w1[r] * t0[r];
                s11 += w1[r] * t1[r];
            }
        }
        {
            const int32_t c0 = oc & qmask, c1 = (oc + 1) & qmask;
            const int32_t f0 = -2 - sh[c0], f1 = -2 - sh[c1];
            const int32_t t00 = tf_rq_t(s00, mu[c0], f0), t01 = tf_rq_t(s01, mu[c0], f0);
            const int32_t t10 = tf_rq_t(s10, mu[c1], f1), t11 = tf_rq_t(s11, mu[c1], f1);
            int32_t v00, v01, v10, v11;
            if (full) {
                v00 = tf_rq_ssat8(t00, ko);
                v01 = tf_rq_ssat8(t01, ko);
                v10 = tf_rq_ssat8(t10, ko);
                v11 = tf_rq_ssat8(t11, ko);
            } else {
                v00 = tf_clamp((t00 + ko) >> 1, lo, hi);
                v01 = tf_clamp((t01 + ko) >> 1, lo, hi);
                v10 = tf_clamp((t10 + ko) >> 1, lo, hi);
                v11 = tf_clamp((t11 + ko) >> 1, lo, hi);
            }
            o0[oc] = (int8_t)v00;
            o1[oc] = (int8_t)v01;
            o0[oc + 1] = (int8_t)v10;
            o1[oc + 1] = (int8_t)v11;
        }
    }
    if (oc < p->out_c) {
        const int8_t *w0 = p->weights + oc * k;
        const uint32_t *xp = x;
        int32_t s00 = kb[oc], s01 = s00;
        for (g = 0; g < (k >> 2); ++g) {
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
            o0[oc] = tf_sat(tf_rq(s00, m0, e0) + oo, lo, hi);
            o1[oc] = tf_sat(tf_rq(s01, m0, e0) + oo, lo, hi);
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
