/* Audio blocks (tinyforge/dsp/spectrogram.py, mfe.py, mfcc.py): rectangular frames with Edge
 * Impulse's rounding (lengths precomputed by the generator), circular pre-emphasis, power
 * spectra, mel filterbank, log/DCT, noise floor and CMVN.
 * scratch layout: work [n], power [n/2 + 1], mel [n_filters], cmvn [2 * n_frames]. */
#include <math.h>
#include "tf_dsp.h"

/* Power spectrum of frame `f` of x * in_scale, pre-emphasised y[t] = x[t] - cof x[t - shift]
 * (circular over the window) when cof != 0. */
static void frame_power(const tf_frames_t *fr, const float *x, int f, float in_scale, float cof,
                        int shift, float *work, float *power)
{
    const int start = f * fr->stride;
    const int len = fr->frame_len < fr->fft.n ? fr->frame_len : fr->fft.n;
    const int t_len = fr->n_samples;
    int i;
    for (i = 0; i < len; ++i) {
        const int t = start + i;
        float v = x[t] * in_scale;
        if (cof != 0.0f) {
            int tp = t - shift;
            tp = tp < 0 ? tp + t_len : tp;
            v = v - cof * (x[tp] * in_scale);
        }
        work[i] = v;
    }
    tf_power_spectrum(&fr->fft, work, len, work, power);
}

int tf_dsp_spectrogram(const tf_spectrogram_config_t *cfg, const float *x, float *out,
                       float *scratch)
{
    const tf_frames_t *fr = &cfg->frames;
    const int bins = fr->fft.n / 2 + 1;
    float *work = scratch, *power = scratch + fr->fft.n;
    int f, k;
    if (scratch == 0) {
        return TF_DSP_EINVAL;
    }
    for (f = 0; f < fr->n_frames; ++f) {
        frame_power(fr, x, f, 1.0f, 0.0f, 0, work, power);
        for (k = 0; k < bins; ++k) {
            const float v = tf_noise_floor_db(power[k], cfg->noise_floor_db);
            out[f * bins + k] = v > 0.0f ? v : 0.0f;
        }
    }
    return TF_DSP_OK;
}

int tf_dsp_mfe(const tf_mfe_config_t *cfg, const float *x, float *out, float *scratch)
{
    const tf_frames_t *fr = &cfg->frames;
    const int nf = cfg->filterbank.n_filters;
    float *work = scratch, *power = scratch + fr->fft.n;
    float *mel = power + fr->fft.n / 2 + 1;
    int f, m;
    if (scratch == 0) {
        return TF_DSP_EINVAL;
    }
    for (f = 0; f < fr->n_frames; ++f) {
        /* int16 units -> [-1, 1), pre-emphasis 0.98 over 1 sample */
        frame_power(fr, x, f, 1.0f / 32768.0f, 0.98f, 1, work, power);
        tf_apply_filterbank(&cfg->filterbank, power, mel);
        for (m = 0; m < nf; ++m) {
            const float e = mel[m] == 0.0f ? 1e-10f : mel[m];
            out[f * nf + m] = tf_quantize_u8(tf_noise_floor_db(e, cfg->noise_floor_db));
        }
    }
    return TF_DSP_OK;
}

int tf_dsp_mfcc(const tf_mfcc_config_t *cfg, const float *x, float *out, float *scratch)
{
    const tf_frames_t *fr = &cfg->frames;
    const int nf = cfg->filterbank.n_filters;
    const int nc = cfg->num_cepstral;
    const int bins = fr->fft.n / 2 + 1;
    float *work = scratch, *power = scratch + fr->fft.n;
    float *mel = power + bins;
    float *tmp = mel + nf;
    int f, m, k;
    if (scratch == 0) {
        return TF_DSP_EINVAL;
    }
    for (f = 0; f < fr->n_frames; ++f) {
        float energy;
        float *c = out + f * nc;
        frame_power(fr, x, f, 1.0f, cfg->pre_cof, cfg->pre_shift, work, power);
        energy = tf_sum(power, bins, 1);
        energy = energy == 0.0f ? 1e-10f : energy;
        tf_apply_filterbank(&cfg->filterbank, power, mel);
        for (m = 0; m < nf; ++m) {
            mel[m] = logf(mel[m] == 0.0f ? 1e-10f : mel[m]);
        }
        for (k = 0; k < nc; ++k) {
            const float *d = cfg->dct + k * nf;
            float acc = 0.0f;
            for (m = 0; m < nf; ++m) {
                acc += mel[m] * d[m];
            }
            c[k] = acc;
        }
        c[0] = logf(energy);
    }
    if (cfg->win_size > 0) {
        tf_cmvnw(out, fr->n_frames, nc, cfg->win_size, tmp);
    }
    return TF_DSP_OK;
}
