/* Wavelet variant of the spectral analysis block (tinyforge/dsp/wavelet.py): multilevel DWT
 * with half-sample symmetric extension and 14 statistics per coefficient array, in the order
 * [cA_level, cD_level, ..., cD_1].
 * scratch: 4 * ((n + taps) / 2 + 1) + 100 floats. */
#include <math.h>
#include "tf_dsp.h"

#define TF_WAVELET_STATS 14
#define TF_HIST_BINS 100

static int reflect(int p, int n)
{
    int q = p % (2 * n);
    if (q < 0) {
        q += 2 * n;
    }
    return q < n ? q : 2 * n - 1 - q;
}

/* one DWT level: out[k] = sum_j h[j] x[2k + 1 - j] over the symmetric extension of x */
static int dwt(const float *x, int n, int taps, const float *lo, const float *hi, float *ca,
               float *cd)
{
    const int n_out = (n + taps - 1) / 2;
    int k, j;
    for (k = 0; k < n_out; ++k) {
        float a = 0.0f, d = 0.0f;
        for (j = 0; j < taps; ++j) {
            const float v = x[reflect(2 * k + 1 - (taps - 1) + j, n)];
            a += v * lo[taps - 1 - j];
            d += v * hi[taps - 1 - j];
        }
        ca[k] = a;
        cd[k] = d;
    }
    return n_out;
}

static void shell_sort(float *v, int n)
{
    int gap, i, j;
    for (gap = n / 2; gap > 0; gap /= 2) {
        for (i = gap; i < n; ++i) {
            const float t = v[i];
            for (j = i; j >= gap && v[j - gap] > t; j -= gap) {
                v[j] = v[j - gap];
            }
            v[j] = t;
        }
    }
}

static float crossings(const float *x, int n, float level)
{
    int i, c = 0;
    for (i = 1; i < n; ++i) {
        c += (x[i] > level) != (x[i - 1] > level);
    }
    return (float)c / (float)n;
}

static void coefficient_stats(const float *x, int n, float *out, float *sorted, float *hist)
{
    static const int pcts[5] = {5, 25, 75, 95, 50};
    const float fn = (float)n;
    tf_moments_t m;
    float scale, s;
    int i;
    tf_moments(x, n, 1, &m);
    /* entropy of a 100-bin histogram over [min, max] */
    scale = m.max == m.min ? 1.0f : 100.0f / (m.max - m.min);
    for (i = 0; i < TF_HIST_BINS; ++i) {
        hist[i] = 0.0f;
    }
    for (i = 0; i < n; ++i) {
        float b = floorf((x[i] - m.min) * scale);
        b = b < 0.0f ? 0.0f : (b > 99.0f ? 99.0f : b);
        hist[(int)b] += 1.0f;
    }
    for (i = 0; i < TF_HIST_BINS; ++i) {
        const float p = hist[i] / fn;
        hist[i] = p > 0.0f ? -p * logf(p) : 0.0f;
    }
    out[0] = tf_sum(hist, TF_HIST_BINS, 1);
    out[1] = crossings(x, n, 0.0f);
    out[2] = crossings(x, n, m.mean);
    for (i = 0; i < n; ++i) {
        sorted[i] = x[i];
    }
    shell_sort(sorted, n);
    for (i = 0; i < 5; ++i) {
        out[3 + i] = sorted[((n - 1) * pcts[i] + 50) / 100];
    }
    s = m.stdev;
    out[8] = m.mean;
    out[9] = s;
    out[10] = (s * s) * (float)((double)n / (double)(n > 1 ? n - 1 : 1));
    out[11] = m.rms;
    out[12] = m.rms == 0.0f ? 0.0f : m.skewness;
    out[13] = m.rms == 0.0f ? 0.0f : m.kurtosis;
}

int tf_wavelet_features(const float *x, int n, int level, int taps, const float *lo,
                        const float *hi, float *out, float *scratch)
{
    const int cap = (n + taps) / 2 + 1;
    float *a = scratch, *b = scratch + cap, *d = scratch + 2 * cap;
    float *sorted = scratch + 3 * cap, *hist = scratch + 4 * cap;
    const float *cur = x;
    int l, len = n;
    if (level < 0 || taps < 1) {
        return TF_DSP_EINVAL;
    }
    for (l = 1; l <= level; ++l) {
        float *next = (l % 2) ? a : b;
        len = dwt(cur, len, taps, lo, hi, next, d);
        /* cD_l sits after cA_level and cD_level .. cD_(l+1) */
        coefficient_stats(d, len, out + (level - l + 1) * TF_WAVELET_STATS, sorted, hist);
        cur = next;
    }
    coefficient_stats(cur, len, out, sorted, hist);
    return (level + 1) * TF_WAVELET_STATS;
}
