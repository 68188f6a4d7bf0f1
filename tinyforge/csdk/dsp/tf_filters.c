/* IIR filtering as second-order sections (tinyforge/dsp/filters.py): Butterworth low/high-pass
 * and the Chebyshev decimation low-pass, with coefficients generated in Python as float32. */
#include "tf_dsp.h"

#define TF_MAX_SECTIONS 8

void tf_sos_filter(const tf_sos_t *f, float *x, int n)
{
    float z0[TF_MAX_SECTIONS], z1[TF_MAX_SECTIONS];
    const int ns = f->n_sections < TF_MAX_SECTIONS ? f->n_sections : TF_MAX_SECTIONS;
    int s, i;
    for (s = 0; s < ns; ++s) {
        /* zi is the steady state for a constant unit input: scale by the first sample */
        z0[s] = f->zi ? f->zi[2 * s] * x[0] : 0.0f;
        z1[s] = f->zi ? f->zi[2 * s + 1] * x[0] : 0.0f;
    }
    for (i = 0; i < n; ++i) {
        float cur = x[i];
        for (s = 0; s < ns; ++s) {
            const float *c = f->sos + 6 * s;
            const float y = c[0] * cur + z0[s];
            z0[s] = c[1] * cur - c[4] * y + z1[s];
            z1[s] = c[2] * cur - c[5] * y;
            cur = y;
        }
        x[i] = cur;
    }
}

int tf_decimate(const tf_decimator_t *stages, int n_stages, float *x, int n)
{
    int st, i, m;
    for (st = 0; st < n_stages; ++st) {
        const int r = stages[st].ratio;
        tf_sos_filter(&stages[st].filter, x, n);
        for (i = 0, m = 0; i < n; i += r, ++m) {
            x[m] = x[i];
        }
        n = m;
    }
    return n;
}
