/* AVERAGE_POOL_2D, int8 (TFLite reference_integer_ops::AveragePool). */
#include "tf_nn.h"

void tf_avgpool_s8(const tf_pool_params *p, const int8_t *in, int8_t *out)
{
    int b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *inb = in + (int32_t)b * p->in_h * p->in_w * p->ch;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const int fy0 = y0 < 0 ? -y0 : 0;
            const int fy1 = p->k_h < p->in_h - y0 ? p->k_h : p->in_h - y0;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int x0 = ox * p->stride_w - p->pad_w;
                const int fx0 = x0 < 0 ? -x0 : 0;
                const int fx1 = p->k_w < p->in_w - x0 ? p->k_w : p->in_w - x0;
                for (c = 0; c < p->ch; ++c) {
                    int32_t acc = 0;
                    int32_t count = 0;
                    for (fy = fy0; fy < fy1; ++fy) {
                        for (fx = fx0; fx < fx1; ++fx) {
                            acc += inb[((int32_t)(y0 + fy) * p->in_w + (x0 + fx)) * p->ch + c];
                            ++count;
                        }
                    }
                    if (count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    *out++ = (int8_t)tf_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}
