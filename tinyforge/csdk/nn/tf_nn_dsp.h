/* Cortex-M DSP-extension helpers (SXTB16 + SMLAD: two 16x16 MACs per instruction).
 * Only included where __ARM_FEATURE_DSP is defined. */
#ifndef TF_NN_DSP_H
#define TF_NN_DSP_H

#include "tf_nn.h"

static inline uint32_t tf_ld4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4); /* Cortex-M4 LDR handles unaligned addresses */
    return v;
}

static inline uint32_t tf_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t tf_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t tf_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* Two dot products sharing x: *a0 += w0 . x, *a1 += w1 . x over n int8 values. */
static inline void tf_dot2_s8(const int8_t *x, const int8_t *w0, const int8_t *w1, int32_t n,
                              int32_t *a0, int32_t *a1)
{
    int32_t s0 = *a0, s1 = *a1, i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = tf_ld4(x + i);
        const uint32_t x02 = tf_sxtb16(xv), x13 = tf_sxtb16_ror8(xv);
        const uint32_t v0 = tf_ld4(w0 + i), v1 = tf_ld4(w1 + i);
        s0 = tf_smlad(tf_sxtb16(v0), x02, s0);
        s0 = tf_smlad(tf_sxtb16_ror8(v0), x13, s0);
        s1 = tf_smlad(tf_sxtb16(v1), x02, s1);
        s1 = tf_smlad(tf_sxtb16_ror8(v1), x13, s1);
    }
    for (; i < n; ++i) {
        s0 += (int32_t)w0[i] * x[i];
        s1 += (int32_t)w1[i] * x[i];
    }
    *a0 = s0;
    *a1 = s1;
}

/* One dot product: returns acc + w . x over n int8 values. */
static inline int32_t tf_dot_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t acc)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t xv = tf_ld4(x + i), wv = tf_ld4(w + i);
        acc = tf_smlad(tf_sxtb16(wv), tf_sxtb16(xv), acc);
        acc = tf_smlad(tf_sxtb16_ror8(wv), tf_sxtb16_ror8(xv), acc);
    }
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * x[i];
    }
    return acc;
}

static inline int32_t tf_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

static inline int32_t tf_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}

/* Requantization for the DSP conv kernels, bit-identical to tf_requant (proof below). The
 * compiler enables these kernels only for layers whose every channel has m >= 0 and
 * e = -shift in [2, 31] (it leaves params->scratch NULL otherwise).
 *
 * TFLite computes rdivpot(srdhm(acc, m), e) with two roundings:
 *   x = floor((acc*m + 2^30) / 2^31)        (equal to TFLite's sign-dependent nudge and
 *                                            truncating division, for every acc*m)
 *   r = floor((x + 2^(e-1) - [x < 0]) / 2^e) (round half away from zero)
 * Since floor((floor(T / 2^31) + c) / 2^e) == floor((T + c * 2^31) / 2^(31+e)) for every
 * integer c, r == floor((acc*m + 2^30 + 2^(30+e) - [x < 0] * 2^31) / 2^(31+e)). [x < 0] may
 * be replaced by [acc < 0]: they differ only when -2^30 <= acc*m < 0, where x == 0 and both
 * forms give 0 (e >= 1). Let H = floor((acc*m + 2^30 - [acc < 0] * 2^31) / 2^32): that is
 * the high word of one SMLAL of acc*m onto the 64-bit value (hi = acc >> 31,
 * lo = 0x40000000 | (acc & 0x80000000)), and |acc*m| < 2^62 so nothing overflows. For
 * e >= 2, 2^(30+e) = 2^(e-2) * 2^32 and the low word cannot change the quotient, so
 * r == floor((H + 2^(e-2)) / 2^(e-1)) == floor((floor(H / 2^(e-2)) + 1) / 2)
 * (floor((q * 2^(s-1) + rem + 2^(s-1)) / 2^s) == floor((q + 1) / 2) for 0 <= rem <
 * 2^(s-1)). So with t = H >> (e - 2) (tf_rq_t), the output value is
 * r + out_offset == (t + 1 + 2 * out_offset) >> 1, and for the full int8 activation range
 * one SSAT with its built-in ASR #1 does the shift and the saturation (tf_rq_ssat8). */
static inline int32_t tf_rq_t(int32_t acc, int32_t m, int32_t e2)
{
    uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
    int32_t hi = acc >> 31;
    __asm("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(acc), "r"(m));
    return hi >> e2;
}

/* tf_rq_t for channel ci with its multiplier and shift loaded from mult[ci] / shift[ci]:
 * one asm block (loads, shift conversion, SMLAL) so that the compiler neither spills the
 * temporaries nor vectorises the shift arithmetic. */
static inline int32_t tf_rq_t_ch(int32_t acc, const int32_t *mult, const int8_t *shift,
                                 int32_t ci)
{
    uint32_t m, e, lo;
    int32_t hi;
    __asm("ldr %[m], [%[mu], %[ci], lsl #2]\n\t"
          "ldrsb %[e], [%[sh], %[ci]]\n\t"
          "and %[lo], %[acc], #0x80000000\n\t"
          "orr %[lo], %[lo], #0x40000000\n\t"
          "asr %[hi], %[acc], #31\n\t"
          "smlal %[lo], %[hi], %[acc], %[m]\n\t"
          "mvn %[e], %[e]\n\t"
          "sub %[e], %[e], #1\n\t"
          "asr %[hi], %[hi], %[e]"
          : [m] "=&r"(m), [e] "=&r"(e), [lo] "=&r"(lo), [hi] "=&r"(hi)
          : [acc] "r"(acc), [mu] "r"(mult), [sh] "r"(shift), [ci] "r"(ci)
          : "memory");
    return hi;
}

/* Saturated int8 of (t + k) >> 1, k = 1 + 2 * out_offset: the output byte of a layer
 * whose activation range is the full int8 range. */
static inline int32_t tf_rq_ssat8(int32_t t, int32_t k)
{
    int32_t r;
    __asm("ssat %0, #8, %1, asr #1" : "=r"(r) : "r"(t + k));
    return r;
}

/* TFLite's requantized acc (without output offset) for shift = -e, e in [2, 31]. */
static inline int32_t tf_rq(int32_t acc, int32_t m, int32_t shift)
{
    return (tf_rq_t(acc, m, -shift - 2) + 1) >> 1;
}

/* Saturate to int8 in one instruction (SSAT). */
static inline int32_t tf_ssat8(int32_t v)
{
    int32_t r;
    __asm("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
}



static inline int8_t tf_sat(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    return (int8_t)(v > hi ? hi : v);
}

#endif
