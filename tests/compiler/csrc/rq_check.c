/* Checks the DSP kernels' single-SMLAL requantization (tf_rq, tf_rq_t and the saturating
 * tf_rq_ssat8 of tf_nn_dsp.h) against the
 * TFLite two-rounding form (tf_requant, tf_nn.h), for every shift the compiler lets
 * through (e = 2..31), multipliers 0, at both ends of [2^30, 2^31) and random ones, and
 * accumulators at the int32 limits, around powers of two, in a dense small range (where
 * m = 2^30 makes both roundings hit exact ties) and at random. Prints "CHECKED n BAD k". */
#include <stdio.h>
#include "tf_nn_dsp.h"

static uint32_t state = 0x9E3779B9u;

static uint32_t next(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

static unsigned checked, bad;

static void one(int32_t acc, int32_t m, int32_t e, int32_t z)
{
    const int32_t ref = tf_requant(acc, m, -e) + z;
    const int32_t got = tf_rq(acc, m, -e) + z;
    const int32_t t = tf_rq_t(acc, m, e - 2);
    const int32_t sat = tf_rq_ssat8(t, 1 + 2 * z);
    const int32_t refsat = ref < -128 ? -128 : (ref > 127 ? 127 : ref);
    ++checked;
    if (ref != got || ((t + 1 + 2 * z) >> 1) != ref || sat != refsat) {
        if (bad < 10) {
            printf("MISMATCH acc=%ld m=%ld e=%ld z=%ld ref=%ld got=%ld\n", (long)acc, (long)m,
                   (long)e, (long)z, (long)ref, (long)got);
        }
        ++bad;
    }
}

int main(void)
{
    static const int32_t zs[] = {-128, 0, 127};
    int32_t e, mi, zi, i, k;
    for (e = 2; e <= 31; ++e) {
        for (mi = 0; mi < 6; ++mi) {
            const int32_t m = mi == 0 ? 0x40000000 : mi == 1 ? 0x7FFFFFFF
                              : mi == 2 ? 0 : (int32_t)(0x40000000u | (next() >> 2));
            for (zi = 0; zi < (int32_t)(sizeof zs / sizeof zs[0]); ++zi) {
                const int32_t z = zs[zi];
                one(INT32_MIN, m, e, z);
                one(INT32_MAX, m, e, z);
                one(INT32_MIN + 1, m, e, z);
                for (k = 0; k < 31; ++k) {
                    const int32_t v = (int32_t)1 << k;
                    one(v, m, e, z);
                    one(-v, m, e, z);
                    one(v + 1, m, e, z);
                    one(-v - 1, m, e, z);
                    one(v - 1, m, e, z);
                    one(1 - v, m, e, z);
                }
                for (i = -600; i <= 600; ++i) {
                    one(i << (e > 2 ? e - 2 : 0), m, e, z);
                    one(i, m, e, z);
                }
                for (i = 0; i < 400; ++i) {
                    one((int32_t)next(), m, e, z);
                    one((int32_t)next() >> (next() & 31), m, e, z);
                }
            }
        }
    }
    printf("CHECKED %u BAD %u\n", checked, bad);
    return bad != 0;
}
