/* In-place (overlapping) execution of CONV_2D / DEPTHWISE_CONV_2D, one output row at a time.
 * The compiler places the output so that it overlaps the input (``out`` may start before
 * ``in``) and picks a ``delay``: output row r is copied to its place only after output row
 * r + delay has been computed, once no later row reads the input bytes it overwrites (the
 * compiler checks this by simulating the schedule). Rows wait in a ring of (delay + 1) rows
 * (``ring``, planned scratch). Each row comes from the ordinary kernel, so the bytes are
 * exactly those of an out-of-place call. */
#include "tf_nn.h"

void tf_conv_rows_inplace_s8(tf_conv_kernel kern, const tf_conv_params *p, const int8_t *in,
                             int8_t *out, int8_t *ring, int32_t delay)
{
    tf_conv_params q = *p;
    const int32_t slots = delay + 1;
    const int32_t row = (int32_t)p->out_w * p->out_c;
    int32_t y, r;
    q.out_h = 1;
    q.batches = 1;
    for (y = 0; y < p->out_h; ++y) {
        q.pad_h = (int16_t)(p->pad_h - y * p->stride_h); /* output row 0 of q is row y */
        kern(&q, in, ring + (y % slots) * row);
        r = y - delay;
        if (r >= 0) {
            memmove(out + r * row, ring + (r % slots) * row, (size_t)row);
        }
    }
    for (r = p->out_h - delay; r < p->out_h; ++r) {
        if (r >= 0) {
            memmove(out + r * row, ring + (r % slots) * row, (size_t)row);
        }
    }
}
