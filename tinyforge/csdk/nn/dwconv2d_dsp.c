/* DEPTHWISE_CONV_2D fast path for Cortex-M DSP builds (depth multiplier 1).
 *
 * With the folded bias (kbias = bias + in_offset * sum(w)), each output is kbias plus a
 * plain dot product over the taps, provided that taps outside the input read the input
 * zero point (w * (zp + in_offset) == 0). So every pixel, border or not, takes the same
 * path: a table of tap pointers (into the input, or into a zero-point row) is built once per
 * pixel, then four channels at a time accumulate in registers: per tap one input word and
 * one weight word, widened by SXTB16, feed four 16x16 MACs (SMLABB/SMLATT); the tap loop
 * is unrolled by three. Requantization: one SMLAL per output, one SSAT for the full int8
 * activation range (tf_rq_t, tf_rq_ssat8). Integer sums are exact in any order: output
 * bytes equal tf_dwconv2d_s8_portable's.
 *
 * Scratch (params->scratch, planned by the compiler): in_c bytes of zero point rounded up
 * to 4, then k_h * k_w tap pointers. */
#include "tf_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TF_NN_PORTABLE)
#include "tf_nn_dsp.h"

/* One tap for four channels: tap pointer *tq++, input word at tap + c, weight word at wp
 * (wp += ch); widened by SXTB16 and accumulated with four 16x16 MACs (SMLABB/SMLATT).
 * Written as asm so that the compiler keeps the unrolled taps' loads next to their MACs
 * instead of hoisting and spilling them. */
#define TF_DW_TAP_ASM                                                               \
    "ldr %[x], [%[tq]], #4\n\t"                                                      \
    "ldr %[x], [%[x], %[c]]\n\t"                                                     \
    "ldr %[w], [%[wp]]\n\t"                                                          \
    "add %[wp], %[wp], %[ch]\n\t"                                                    \
    "sxtb16 %[xe], %[x]\n\t"                                                         \
    "sxtb16 %[we], %[w]\n\t"                                                         \
    "sxtb16 %[x], %[x], ror #8\n\t"                                                  \
    "sxtb16 %[w], %[w], ror #8\n\t"                                                  \
    "smlabb %[s0], %[we], %[xe], %[s0]\n\t"                                          \
    "smlatt %[s2], %[we], %[xe], %[s2]\n\t"                                          \
    "smlabb %[s1], %[w], %[x], %[s1]\n\t"                                            \
    "smlatt %[s3], %[w], %[x], %[s3]\n\t"
#define TF_DW_TAPS(CODE)                                                            \
    __asm(CODE                                                                      \
          : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3),               \
            [tq] "+r"(tq), [wp] "+r"(wp),                                           \
            [x] "=&r"(tx), [w] "=&r"(tw), [xe] "=&r"(txe), [we] "=&r"(twe)            \
          : [c] "r"(c), [ch] "r"(ch)                                                \
          : "memory")

/* Requantize accumulator S (multiplier at byte offset MO of mc, shift at byte offset SO of
 * sc, e = -shift in [2, 31]) to the full int8 range and store it at out + c + OO: tf_rq_t +
 * tf_rq_ssat8 in one asm block, the SMLAL addend built as (kc | sign << 31). */
#define TF_DW_RQ(S, MO, SO, OO)                                                     \
    do {                                                                            \
        uint32_t m_, e_, h_, l_;                                                    \
        __asm volatile("ldr %[m], [%[mp], #" #MO "]\n\t"                                      \
              "ldrsb %[e], [%[sp], #" #SO "]\n\t"                                    \
              "asr %[h], %[s], #31\n\t"                                              \
              "mvn %[e], %[e]\n\t"                                                   \
              "orr %[l], %[kc], %[h], lsl #31\n\t"                                   \
              "sub %[e], %[e], #1\n\t"                                               \
              "smlal %[l], %[h], %[s], %[m]\n\t"                                     \
              "asr %[h], %[h], %[e]\n\t"                                             \
              "add %[h], %[h], %[ko]\n\t"                                            \
              "ssat %[h], #8, %[h], asr #1\n\t"                                      \
              "strb %[h], [%[o], #" #OO "]"                                          \
              : [m] "=&r"(m_), [e] "=&r"(e_), [h] "=&r"(h_), [l] "=&r"(l_)              \
              : [s] "r"(S), [mp] "r"(mc), [sp] "r"(sc), [o] "r"(out + c),             \
                [ko] "r"(ko), [kc] "r"(kc)                                           \
              : "memory");                                                          \
    } while (0)

void tf_dwconv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out)
{
    const int32_t ch = p->in_c, ntap = (int32_t)p->k_h * p->k_w;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int full = lo == -128 && hi == 127;
    const int32_t ko = 1 + 2 * oo; /* output = (t + ko) >> 1, see tf_rq_t */
    const int32_t qmask = p->per_channel ? -1 : 0;
    const uint32_t kc = 0x40000000u;
    const int32_t *mu = p->mult;
    const int8_t *sh = p->shift;
    int8_t *zrow;
    const int8_t **taps;
    const int8_t *const *tq3, *const *tqe;
    int b, oy, ox;
    if (p->kbias == 0 || p->scratch == 0 || p->depth_mult != 1) {
        tf_dwconv2d_s8_portable(p, in, out);
        return;
    }
    zrow = p->scratch;
    taps = (const int8_t **)(void *)(p->scratch + ((ch + 3) & ~3));
    tq3 = taps + ntap / 3 * 3;
    tqe = taps + ntap;
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
                    const int8_t *const *tq = taps;
                    int32_t s0 = p->kbias[c], s1 = p->kbias[c + 1];
                    int32_t s2 = p->kbias[c + 2], s3 = p->kbias[c + 3];
                    uint32_t tx, tw, txe, twe;
                    while (tq != tq3) {
                        TF_DW_TAPS(TF_DW_TAP_ASM TF_DW_TAP_ASM TF_DW_TAP_ASM);
                    }
                    while (tq != tqe) {
                        TF_DW_TAPS(TF_DW_TAP_ASM);
                    }
                    if (full) {
                        const int32_t *mc = mu + (c & qmask);
                        const int8_t *sc = sh + (c & qmask);
                        if (qmask) {
                            TF_DW_RQ(s0, 0, 0, 0);
                            TF_DW_RQ(s1, 4, 1, 1);
                            TF_DW_RQ(s2, 8, 2, 2);
                            TF_DW_RQ(s3, 12, 3, 3);
                        } else {
                            TF_DW_RQ(s0, 0, 0, 0);
                            TF_DW_RQ(s1, 0, 0, 1);
                            TF_DW_RQ(s2, 0, 0, 2);
                            TF_DW_RQ(s3, 0, 0, 3);
                        }
                    } else {
                        const int32_t t0 = tf_rq_t_ch(s0, mu, sh, c & qmask);
                        const int32_t t1 = tf_rq_t_ch(s1, mu, sh, (c + 1) & qmask);
                        const int32_t t2 = tf_rq_t_ch(s2, mu, sh, (c + 2) & qmask);
                        const int32_t t3 = tf_rq_t_ch(s3, mu, sh, (c + 3) & qmask);
                        out[c] = (int8_t)tf_clamp((t0 + ko) >> 1, lo, hi);
                        out[c + 1] = (int8_t)tf_clamp((t1 + ko) >> 1, lo, hi);
                        out[c + 2] = (int8_t)tf_clamp((t2 + ko) >> 1, lo, hi);
                        out[c + 3] = (int8_t)tf_clamp((t3 + ko) >> 1, lo, hi);
                    }
                }
                for (; c < ch; ++c) {
                    int32_t s0 = p->kbias[c];
                    for (t = 0; t < ntap; ++t) {
                        s0 += (int32_t)p->weights[t * ch + c] * taps[t][c];
                    }
                    out[c] = tf_sat(tf_rq(s0, mu[c & qmask], sh[c & qmask]) + oo, lo, hi);
                }
                out += ch;
            }
        }
    }
}
#endif
