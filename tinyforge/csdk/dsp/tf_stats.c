/* Statistics, noise floor and normalisation maths shared by the DSP blocks
 * (tinyforge/dsp/stats.py, tinyforge/dsp/normalize.py). */
#include <math.h>
#include "tf_dsp.h"

enum { T_X, T_X2, T_D2, T_D3, T_D4 };

static float term(float v, float mean, int mode)
{
    float d, d2;
    switch (mode) {
    case T_X:
        return v;
    case T_X2:
        return v * v;
    default:
        break;
    }
    d = v - mean;
    d2 = d * d;
    if (mode == T_D2) {
        return d2;
    }
    return mode == T_D3 ? d2 * d : d2 * d2;
}

/* Pairwise summation of term(x[i]) with numpy's blocking (8 accumulators, blocks of 128):
 * error grows with log(n) instead of n. */
static float pairwise(const float *x, int n, int stride, float mean, int mode)
{
    int i;
    if (n < 8) {
        float res = 0.0f;
        for (i = 0; i < n; ++i) {
            res += term(x[i * stride], mean, mode);
        }
        return res;
    }
    if (n <= 128) {
        float r[8], res;
        int j;
        for (j = 0; j < 8; ++j) {
            r[j] = term(x[j * stride], mean, mode);
        }
        for (i = 8; i < n - (n % 8); i += 8) {
            for (j = 0; j < 8; ++j) {
                r[j] += term(x[(i + j) * stride], mean, mode);
            }
        }
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) {
            res += term(x[i * stride], mean, mode);
        }
        return res;
    }
    {
        int n2 = n / 2;
        n2 -= n2 % 8;
        return pairwise(x, n2, stride, mean, mode) +
               pairwise(x + n2 * stride, n - n2, stride, mean, mode);
    }
}

float tf_sum(const float *x, int n, int stride)
{
    return pairwise(x, n, stride, 0.0f, T_X);
}

void tf_moments(const float *x, int n, int stride, tf_moments_t *m)
{
    const float fn = (float)n;
    const float mean = pairwise(x, n, stride, 0.0f, T_X) / fn;
    const float m2 = pairwise(x, n, stride, mean, T_D2) / fn;
    const float m3 = pairwise(x, n, stride, mean, T_D3) / fn;
    const float m4 = pairwise(x, n, stride, mean, T_D4) / fn;
    const float noise = 1e-6f * fabsf(mean);
    float lo = x[0], hi = x[0];
    int i;
    for (i = 1; i < n; ++i) {
        const float v = x[i * stride];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    m->mean = mean;
    m->min = lo;
    m->max = hi;
    m->rms = sqrtf(pairwise(x, n, stride, 0.0f, T_X2) / fn);
    m->stdev = sqrtf(m2);
    /* a numerically constant signal: m2 at the float32 noise level of the mean */
    if (m2 <= noise * noise + 1e-30f) {
        m->skewness = 0.0f;
        m->kurtosis = 0.0f;
    } else {
        m->skewness = m3 / (m2 * sqrtf(m2));
        m->kurtosis = m4 / (m2 * m2) - 3.0f;
    }
}

float tf_noise_floor_db(float power, float noise_floor_db)
{
    const float p = power > 1e-30f ? power : 1e-30f;
    const float db = 10.0f * log10f(p);
    return (db - noise_floor_db) / (-noise_floor_db + 12.0f);
}

float tf_quantize_u8(float v)
{
    float q;
    v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    q = floorf(v * 256.0f + 0.5f);
    return (q > 255.0f ? 255.0f : q) / 256.0f;
}

/* index of extended row p (may be outside 0..n-1) under repeated half-sample reflection */
static int reflect(int p, int n)
{
    int q = p % (2 * n);
    if (q < 0) {
        q += 2 * n;
    }
    return q < n ? q : 2 * n - 1 - q;
}

/* window means of column c of x [rows][cols] (or of tmp when src_stride is 1) */
static void window_means(const float *col, int stride, int rows, int win, int squared,
                         float *out)
{
    const int pad = (win - 1) / 2;
    const float inv = 1.0f / (float)win;
    int i, t;
    for (i = 0; i < rows; ++i) {
        float acc = 0.0f;
        for (t = 0; t < win; ++t) {
            const float v = col[reflect(i + t - pad, rows) * stride];
            acc += squared ? v * v : v;
        }
        out[i] = acc * inv;
    }
}

void tf_cmvnw(float *x, int rows, int cols, int win, float *tmp)
{
    float *y = tmp;         /* mean-removed column */
    float *mean = tmp + rows;
    int c, i;
    for (c = 0; c < cols; ++c) {
        window_means(x + c, cols, rows, win, 0, mean);
        for (i = 0; i < rows; ++i) {
            y[i] = x[i * cols + c] - mean[i];
        }
        window_means(y, 1, rows, win, 0, mean);
        /* var = mean(y^2) - mean(y)^2, clipped at 0; written straight into the output */
        for (i = 0; i < rows; ++i) {
            x[i * cols + c] = mean[i];
        }
        window_means(y, 1, rows, win, 1, mean);
        for (i = 0; i < rows; ++i) {
            const float m = x[i * cols + c];
            float var = mean[i] - m * m;
            var = var > 0.0f ? var : 0.0f;
            x[i * cols + c] = y[i] / (sqrtf(var) + 1e-10f);
        }
    }
}
