/* Flatten block (tinyforge/dsp/flatten.py): per axis, the enabled statistics of
 * scale_axes * x in the order mean, min, max, rms, stdev, skewness, kurtosis.
 * scratch: n_samples floats (the scaled axis). */
#include "tf_dsp.h"

int tf_dsp_flatten(const tf_flatten_config_t *cfg, const float *x, float *out, float *scratch)
{
    const int t = cfg->n_samples, axes = cfg->n_axes;
    int a, i, k = 0;
    if (scratch == 0 || t < 1) {
        return TF_DSP_EINVAL;
    }
    for (a = 0; a < axes; ++a) {
        tf_moments_t m;
        float v[7];
        int s;
        for (i = 0; i < t; ++i) {
            scratch[i] = x[i * axes + a] * cfg->scale;
        }
        tf_moments(scratch, t, 1, &m);
        v[0] = m.mean;
        v[1] = m.min;
        v[2] = m.max;
        v[3] = m.rms;
        v[4] = m.stdev;
        v[5] = m.skewness;
        v[6] = m.kurtosis;
        for (s = 0; s < 7; ++s) {
            if (cfg->stats_mask & (1u << s)) {
                out[k++] = v[s];
            }
        }
    }
    return TF_DSP_OK;
}
