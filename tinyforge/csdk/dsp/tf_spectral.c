/* Spectral analysis block (tinyforge/dsp/spectral_analysis.py), FFT and wavelet variants.
 * Per axis: scale, optional decimation, optional Butterworth filter (zero state), mean removal,
 * then either [rms, skewness, kurtosis, skewness(S), kurtosis(S), S[start:stop]] of the Welch
 * max-hold spectrum S (log10 if do_log), or the wavelet statistics.
 * scratch layout: signal [n_samples], then FFT work [n], power [n/2 + 1], max-hold S
 * [n/2 + 1] (wavelet: the tf_wavelet_features scratch). */
#include <math.h>
#include "tf_dsp.h"

int tf_wavelet_features(const float *x, int n, int level, int taps, const float *lo,
                        const float *hi, float *out, float *scratch);

static void remove_mean(float *x, int n)
{
    const float mean = tf_sum(x, n, 1) / (float)n;
    int i;
    for (i = 0; i < n; ++i) {
        x[i] = x[i] - mean;
    }
}

static int fft_features(const tf_spectral_config_t *cfg, const float *x, int n, int bin_start,
                        int bin_stop, float *work, float *out)
{
    const int fft_n = cfg->fft.n;
    const int bins = fft_n / 2 + 1;
    const int hop = fft_n - (cfg->overlap ? fft_n / 2 : 0);
    float *power = work + fft_n;
    float *s = power + bins;
    tf_moments_t m, sm;
    int start, k, first = 1;
    tf_moments(x, n, 1, &m);
    /* Welch max-hold: segments start at 0, hop, 2 hop, ... while start <= n (zero-padded) */
    for (start = 0; start <= n; start += hop) {
        const int len = n - start < fft_n ? n - start : fft_n;
        tf_power_spectrum(&cfg->fft, x + start, len, work, power);
        for (k = 0; k < bins; ++k) {
            if (first || power[k] > s[k]) {
                s[k] = power[k];
            }
        }
        first = 0;
    }
    tf_moments(s, bins, 1, &sm);
    out[0] = m.rms;
    out[1] = m.skewness;
    out[2] = m.kurtosis;
    out[3] = sm.skewness;
    out[4] = sm.kurtosis;
    for (k = bin_start; k < bin_stop; ++k) {
        const float v = s[k];
        out[5 + k - bin_start] = cfg->do_log ? log10f(v == 0.0f ? 1e-10f : v) : v;
    }
    return 5 + bin_stop - bin_start;
}

int tf_dsp_spectral_analysis(const tf_spectral_config_t *cfg, const float *x, float *out,
                             float *scratch)
{
    const int t = cfg->n_samples, axes = cfg->n_axes;
    float *sig = scratch;
    float *work = sig + t;
    int a, i, n = t, per_axis = 0, lf_per_axis;
    if (scratch == 0 || t < 1) {
        return TF_DSP_EINVAL;
    }
    for (a = 0; a < axes; ++a) {
        for (i = 0; i < t; ++i) {
            sig[i] = x[i * axes + a] * cfg->scale;
        }
        n = tf_decimate(cfg->decimation, cfg->n_decimation, sig, t);
        if (cfg->filter) {
            tf_sos_filter(cfg->filter, sig, n);
        }
        remove_mean(sig, n);
        if (cfg->analysis == TF_SPECTRAL_WAVELET) {
            per_axis = tf_wavelet_features(sig, n, cfg->wavelet_level, cfg->wavelet_taps,
                                           cfg->wavelet_lo, cfg->wavelet_hi, out + a * per_axis,
                                           work);
            if (per_axis < 0) {
                return per_axis;
            }
            continue;
        }
        per_axis = fft_features(cfg, sig, n, cfg->bin_start, cfg->bin_stop, work,
                                out + a * per_axis);
        if (cfg->low_freq) {
            /* the main features are done: decimate the filtered signal in place */
            const int m = tf_decimate(cfg->low_freq, 1, sig, n);
            lf_per_axis = 5 + cfg->lf_bin_stop - cfg->lf_bin_start;
            remove_mean(sig, m);
            fft_features(cfg, sig, m, cfg->lf_bin_start, cfg->lf_bin_stop, work,
                         out + axes * per_axis + a * lf_per_axis);
        }
    }
    return TF_DSP_OK;
}
