/* Mel filterbank application (tinyforge/dsp/mel.py): sparse triangles generated in Python. */
#include "tf_dsp.h"

void tf_apply_filterbank(const tf_filterbank_t *fb, const float *power, float *out)
{
    int m, k;
    for (m = 0; m < fb->n_filters; ++m) {
        const float *w = fb->weights + fb->offset[m];
        const float *p = power + fb->first[m];
        float acc = 0.0f;
        for (k = 0; k < fb->count[m]; ++k) {
            acc += p[k] * w[k];
        }
        out[m] = acc;
    }
}
