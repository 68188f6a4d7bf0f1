/* Real FFT (float32): an n-point real transform computed as an n/2-point complex radix-2 FFT
 * of the even/odd samples packed as complex values, followed by the usual split step.
 * Twiddles come from generated constant tables (tf_rfft_t), so nothing is computed with
 * sin/cos at run time. */
#include "tf_dsp.h"

/* In-place complex FFT of m points (m a power of two) held as interleaved re/im floats.
 * tw: the n = 2m point table; W_m^j = W_n^(2j). */
static void complex_fft(float *z, int m, const float *tw)
{
    int i, j, len;
    /* bit-reversal permutation */
    for (i = 1, j = 0; i < m; ++i) {
        int bit = m >> 1;
        for (; j & bit; bit >>= 1) {
            j ^= bit;
        }
        j |= bit;
        if (i < j) {
            float t = z[2 * i];
            z[2 * i] = z[2 * j];
            z[2 * j] = t;
            t = z[2 * i + 1];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j + 1] = t;
        }
    }
    for (len = 2; len <= m; len <<= 1) {
        const int half = len >> 1;
        const int step = 2 * m / len; /* twiddle index step in the n-point table */
        int start, k;
        for (start = 0; start < m; start += len) {
            for (k = 0; k < half; ++k) {
                const float c = tw[2 * k * step];
                const float s = tw[2 * k * step + 1];
                float *a = z + 2 * (start + k);
                float *b = z + 2 * (start + k + half);
                /* b * W, W = c - i s */
                const float br = b[0] * c + b[1] * s;
                const float bi = b[1] * c - b[0] * s;
                b[0] = a[0] - br;
                b[1] = a[1] - bi;
                a[0] = a[0] + br;
                a[1] = a[1] + bi;
            }
        }
    }
}

void tf_power_spectrum(const tf_rfft_t *fft, const float *frame, int len, float *work,
                       float *power)
{
    const int n = fft->n;
    const int m = n / 2;
    const float inv_n = 1.0f / (float)n;
    const float *tw = fft->twiddle;
    int k;
    if (len > n) {
        len = n;
    }
    for (k = 0; k < len; ++k) {
        work[k] = frame[k];
    }
    for (; k < n; ++k) {
        work[k] = 0.0f;
    }
    complex_fft(work, m, tw);
    {
        const float r0 = work[0] + work[1];
        const float rm = work[0] - work[1];
        power[0] = (r0 * r0) * inv_n;
        power[m] = (rm * rm) * inv_n;
    }
    for (k = 1; k < m; ++k) {
        const float ar = work[2 * k], ai = work[2 * k + 1];
        const float br = work[2 * (m - k)], bi = -work[2 * (m - k) + 1]; /* conj(Z[m-k]) */
        const float er = 0.5f * (ar + br), ei = 0.5f * (ai + bi);
        const float or_ = 0.5f * (ai - bi), oi = -0.5f * (ar - br);
        const float c = tw[2 * k], s = tw[2 * k + 1];
        const float xr = er + (c * or_ + s * oi);
        const float xi = ei + (c * oi - s * or_);
        power[k] = (xr * xr + xi * xi) * inv_n;
    }
}
