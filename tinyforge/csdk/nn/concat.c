/* CONCATENATION, int8 (all inputs share the output's scale and zero point, as TFLite requires):
 * for each outer index, copy each input's contiguous slice in turn. */
#include "tf_nn.h"

void tf_concat_s8(int32_t outer, int32_t num_inputs, const int8_t *const *inputs,
                  const int32_t *copy_sizes, int8_t *out)
{
    int32_t o, k;
    for (o = 0; o < outer; ++o) {
        for (k = 0; k < num_inputs; ++k) {
            memcpy(out, inputs[k] + o * copy_sizes[k], (size_t)copy_sizes[k]);
            out += copy_sizes[k];
        }
    }
}
