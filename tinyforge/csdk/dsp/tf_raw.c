/* Raw block (tinyforge/dsp/raw.py): the window times scale_axes, sample-major. */
#include "tf_dsp.h"

int tf_dsp_raw(const tf_raw_config_t *cfg, const float *x, float *out, float *scratch)
{
    const int n = cfg->n_samples * cfg->n_axes;
    int i;
    (void)scratch;
    for (i = 0; i < n; ++i) {
        out[i] = x[i] * cfg->scale;
    }
    return TF_DSP_OK;
}
