/* PAD / PADV2, int8: constant padding with the output zero point (or the given value). */
#include "tf_nn.h"

static int8_t *pad_dim(const tf_pad_params *p, int d, const int8_t **in, int8_t *out,
                       int32_t inner_out)
{
    /* inner_out: output elements per index of dimension d. */
    int32_t i;
    const int32_t next_inner = d + 1 < p->num_dims
                                   ? inner_out / (p->before[d + 1] + p->in_dims[d + 1]
                                                  + p->after[d + 1])
                                   : 1;
    memset(out, p->value, (size_t)(p->before[d] * inner_out));
    out += p->before[d] * inner_out;
    if (d + 1 == p->num_dims) {
        memcpy(out, *in, (size_t)p->in_dims[d]);
        *in += p->in_dims[d];
        out += p->in_dims[d];
    } else {
        for (i = 0; i < p->in_dims[d]; ++i) {
            out = pad_dim(p, d + 1, in, out, next_inner);
        }
    }
    memset(out, p->value, (size_t)(p->after[d] * inner_out));
    return out + p->after[d] * inner_out;
}

void tf_pad_s8(const tf_pad_params *p, const int8_t *in, int8_t *out)
{
    int32_t inner = 1;
    int d;
    for (d = 1; d < p->num_dims; ++d) {
        inner *= p->before[d] + p->in_dims[d] + p->after[d];
    }
    pad_dim(p, 0, &in, out, inner);
}
