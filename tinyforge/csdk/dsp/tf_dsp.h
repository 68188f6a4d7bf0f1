/* TinyForge C SDK: DSP blocks (C99 twins of the Python blocks in tinyforge/dsp/).
 *
 * Every block is a function `tf_dsp_<block>(cfg, x, out, scratch)`:
 *   cfg      a const configuration generated at build time by tinyforge.csdk.dspgen
 *            (block parameters, window geometry and precomputed tables: FFT twiddles, mel
 *            filterbank, DCT matrix, filter coefficients); nothing is parsed at run time;
 *   x        the window, float32, sample-major [T][axes] (images: [H][W][C] with 0..255);
 *   out      the features, float32, in the Python block's order;
 *   scratch  a float buffer of at least cfg->scratch_floats elements (a static buffer sized
 *            by the generator); blocks that need none accept NULL.
 * They return TF_DSP_OK (0) or a negative TF_DSP_E* code. No heap, no globals written.
 * The maths of each block is documented in the docstring of its Python module.
 */
#ifndef TF_DSP_H
#define TF_DSP_H

#ifdef __cplusplus
extern "C" {
#endif

#define TF_DSP_OK 0
#define TF_DSP_EINVAL (-1)

/* ---- shared maths ------------------------------------------------------------------------- */

/* Real FFT of n points (n a power of two, >= 4). twiddle[2k], twiddle[2k+1] =
 * cos(2 pi k / n), sin(2 pi k / n) for k = 0 .. n/2 - 1, generated as float32 constants. */
typedef struct {
    int n;
    const float *twiddle;
} tf_rfft_t;

/* Power spectrum |FFT_n(frame)|^2 / n, k = 0 .. n/2, of `len` samples (truncated or
 * zero-padded to n). work: n floats. power: n/2 + 1 floats. */
void tf_power_spectrum(const tf_rfft_t *fft, const float *frame, int len, float *work,
                       float *power);

/* Cascade of biquads, direct form II transposed, float32 (scipy.signal.sosfilt).
 * sos: [n_sections][6] = b0 b1 b2 a0(=1) a1 a2. zi: [n_sections][2] steady-state state for a
 * unit constant input (scaled by the first sample), or NULL for zero initial state. */
typedef struct {
    int n_sections;
    const float *sos;
    const float *zi;
} tf_sos_t;

/* Filter x[0..n-1] (element stride 1) in place. */
void tf_sos_filter(const tf_sos_t *f, float *x, int n);

/* Decimation stage: low-pass with `filter` (zi scaled by x[0]) then keep every ratio-th. */
typedef struct {
    int ratio;
    tf_sos_t filter;
} tf_decimator_t;

/* Decimate x[0..n-1] in place through `n_stages` stages; returns the new length. */
int tf_decimate(const tf_decimator_t *stages, int n_stages, float *x, int n);

/* Sum of x[0], x[stride], ... (n terms) by pairwise summation (numpy's blocking). */
float tf_sum(const float *x, int n, int stride);

/* Statistics over x[0], x[stride], ... (n terms); definitions in tinyforge/dsp/stats.py. */
typedef struct {
    float mean, min, max, rms, stdev, skewness, kurtosis;
} tf_moments_t;

void tf_moments(const float *x, int n, int stride, tf_moments_t *m);

/* Noise floor: (10 log10(max(p, 1e-30)) - nf) / (-nf + 12). */
float tf_noise_floor_db(float power, float noise_floor_db);

/* Clip to [0, 1] and round to 8 bits: min(floor(256 v + 0.5), 255) / 256. */
float tf_quantize_u8(float v);

/* Sliding-window cepstral mean and variance normalisation of a [rows][cols] matrix in place,
 * window `win` (odd), symmetric edge reflection. tmp: 2 * rows floats. */
void tf_cmvnw(float *x, int rows, int cols, int win, float *tmp);

/* Mel filterbank in sparse form: filter m covers bins first[m] .. first[m] + count[m] - 1
 * with weights weights[offset[m] ..]. */
typedef struct {
    int n_filters;
    const short *first;
    const short *count;
    const int *offset;
    const float *weights;
} tf_filterbank_t;

void tf_apply_filterbank(const tf_filterbank_t *fb, const float *power, float *out);

/* Audio framing shared by spectrogram / MFE / MFCC. */
typedef struct {
    int n_samples;  /* window length T */
    int frame_len;  /* samples per frame */
    int stride;     /* samples between frame starts */
    int n_frames;
    tf_rfft_t fft;
} tf_frames_t;

/* ---- blocks ------------------------------------------------------------------------------- */

typedef struct {
    int n_samples, n_axes;
    float scale;
} tf_raw_config_t;
int tf_dsp_raw(const tf_raw_config_t *cfg, const float *x, float *out, float *scratch);

/* stats_mask bits in order mean, min, max, rms, stdev, skewness, kurtosis (bit 0 = mean). */
typedef struct {
    int n_samples, n_axes;
    float scale;
    unsigned stats_mask;
} tf_flatten_config_t;
int tf_dsp_flatten(const tf_flatten_config_t *cfg, const float *x, float *out, float *scratch);

#define TF_SPECTRAL_FFT 0
#define TF_SPECTRAL_WAVELET 1

typedef struct {
    int n_samples, n_axes;
    float scale;
    int n_decimation;                    /* input decimation stages (0 = none) */
    const tf_decimator_t *decimation;
    const tf_sos_t *filter;              /* Butterworth low/high-pass, NULL = none */
    int analysis;                        /* TF_SPECTRAL_FFT or TF_SPECTRAL_WAVELET */
    /* FFT variant */
    tf_rfft_t fft;
    int do_log, overlap;
    int bin_start, bin_stop;             /* spectral bins kept, stop exclusive */
    const tf_decimator_t *low_freq;      /* extra low-frequency analysis (x10), NULL = off */
    int lf_bin_start, lf_bin_stop;
    /* wavelet variant */
    int wavelet_level, wavelet_taps;
    const float *wavelet_lo, *wavelet_hi; /* decomposition filters (dec_lo, dec_hi) */
    int scratch_floats;
} tf_spectral_config_t;
int tf_dsp_spectral_analysis(const tf_spectral_config_t *cfg, const float *x, float *out,
                             float *scratch);

typedef struct {
    tf_frames_t frames;
    float noise_floor_db;
    int scratch_floats;
} tf_spectrogram_config_t;
int tf_dsp_spectrogram(const tf_spectrogram_config_t *cfg, const float *x, float *out,
                       float *scratch);

typedef struct {
    tf_frames_t frames;
    tf_filterbank_t filterbank;
    float noise_floor_db;
    int scratch_floats;
} tf_mfe_config_t;
int tf_dsp_mfe(const tf_mfe_config_t *cfg, const float *x, float *out, float *scratch);

typedef struct {
    tf_frames_t frames;
    tf_filterbank_t filterbank;
    int num_cepstral;
    const float *dct;                    /* [num_cepstral][n_filters], orthonormal DCT-II */
    float pre_cof;
    int pre_shift;
    int win_size;                        /* CMVN window (odd), 0 = off */
    int scratch_floats;
} tf_mfcc_config_t;
int tf_dsp_mfcc(const tf_mfcc_config_t *cfg, const float *x, float *out, float *scratch);

typedef struct {
    int height, width, in_channels;
    int grayscale;
} tf_image_config_t;
int tf_dsp_image(const tf_image_config_t *cfg, const float *x, float *out, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
