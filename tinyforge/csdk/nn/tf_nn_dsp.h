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

#endif
