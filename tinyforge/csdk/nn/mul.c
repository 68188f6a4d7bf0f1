/* MUL, int8 (TFLite reference_integer_ops::Mul, broadcast 4D). */
#include "tf_nn.h"

void tf_mul_s8(const tf_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < p->out_dims[0]; ++i0) {
        for (i1 = 0; i1 < p->out_dims[1]; ++i1) {
            for (i2 = 0; i2 < p->out_dims[2]; ++i2) {
                const int8_t *pa = a + i0 * p->a_strides[0] + i1 * p->a_strides[1]
                                   + i2 * p->a_strides[2];
                const int8_t *pb = b + i0 * p->b_strides[0] + i1 * p->b_strides[1]
                                   + i2 * p->b_strides[2];
                for (i3 = 0; i3 < p->out_dims[3]; ++i3) {
                    const int32_t va = (int32_t)pa[i3 * p->a_strides[3]] + p->a_offset;
                    const int32_t vb = (int32_t)pb[i3 * p->b_strides[3]] + p->b_offset;
                    const int32_t r = tf_requant(va * vb, p->out_mult, p->out_shift)
                                      + p->out_offset;
                    *out++ = (int8_t)tf_clamp(r, p->act_min, p->act_max);
                }
            }
        }
    }
}
