/* Image block (tinyforge/dsp/image.py): pixels 0..255 -> 0..1, RGB or ITU-R 601-2 luma. */
#include "tf_dsp.h"

int tf_dsp_image(const tf_image_config_t *cfg, const float *x, float *out, float *scratch)
{
    const int n = cfg->height * cfg->width;
    const float inv = (float)(1.0 / 255.0);
    int i;
    (void)scratch;
    if (cfg->grayscale && cfg->in_channels == 3) {
        for (i = 0; i < n; ++i) {
            const float *p = x + 3 * i;
            const float y = p[0] * 0.299f + p[1] * 0.587f + p[2] * 0.114f;
            out[i] = y * inv;
        }
        return TF_DSP_OK;
    }
    for (i = 0; i < n * cfg->in_channels; ++i) {
        out[i] = x[i] * inv;
    }
    return TF_DSP_OK;
}
