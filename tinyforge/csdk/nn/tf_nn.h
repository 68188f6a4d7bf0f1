/* TinyForge NN kernels: shared types and TFLite-exact fixed-point helpers.
 *
 * Every kernel follows TFLite's int8 quantization spec and the rounding of its reference
 * kernels, so generated models are bit-exact with the TFLite interpreter
 * (OpResolverType.BUILTIN_REF). No heap, no libc beyond <stdint.h>/<string.h>.
 * Layout is NHWC throughout. Parameters live in const structs emitted by the compiler.
 */
#ifndef TF_NN_H
#define TF_NN_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* (a * b * 2) >> 32 with round-to-nearest, saturating the single overflow case. */
static inline int32_t tf_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C99 division truncates toward zero, as TFLite's reference expects. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent, rounding half away from zero (gemmlowp RoundingDivideByPOT). */
static inline int32_t tf_rdivpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier (gemmlowp form): x * m * 2^(shift - 31) with two
 * roundings (doubling high multiply, then rounding right shift). Used by CONV_2D,
 * DEPTHWISE_CONV_2D, ADD, MUL, QUANTIZE in TFLite's reference kernels. */
static inline int32_t tf_requant(int32_t x, int32_t m, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return tf_rdivpot(tf_srdhm((int32_t)((uint32_t)x << left), m), right);
}

/* Single-rounding form: one 64-bit product and one rounding shift. TFLite's reference
 * FULLY_CONNECTED (int8) rounds this way; measured against the interpreter, the two forms
 * differ by one LSB on ~1 % of outputs. */
static inline int32_t tf_requant_single(int32_t x, int32_t m, int32_t shift)
{
    const int total = 31 - shift;
    const int64_t round = (int64_t)1 << (total - 1);
    return (int32_t)(((int64_t)x * m + round) >> total);
}

/* Index of channel c's multiplier/shift. */
#define TF_QCH(p, c) ((p)->per_channel ? (c) : 0)

static inline int32_t tf_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* std::round for float (half away from zero) without <math.h>; |x| < 2^31. */
static inline int32_t tf_roundf(float x)
{
    int32_t t = (int32_t)x; /* truncates toward zero */
    float frac = x - (float)t;
    if (frac >= 0.5f) {
        t += 1;
    } else if (frac <= -0.5f) {
        t -= 1;
    }
    return t;
}

/* ---- operator parameter blocks (emitted as const data by the code generator) ---- */

typedef struct {
    int16_t in_h, in_w, in_c;
    int16_t out_h, out_w, out_c;
    int16_t k_h, k_w;
    int16_t stride_h, stride_w;
    int16_t dil_h, dil_w;
    int16_t pad_h, pad_w;
    int16_t depth_mult;      /* depthwise only */
    int16_t batches;
    int32_t in_offset;       /* -input zero point */
    int32_t out_offset;      /* output zero point */
    int32_t act_min, act_max;
    const int8_t *weights;   /* conv: [out_c][k_h][k_w][in_c]; depthwise: [k_h][k_w][out_c] */
    const int32_t *bias;     /* [out_c] or NULL */
    const int32_t *mult;     /* [out_c] Q31 multipliers ([1] if !per_channel) */
    const int8_t *shift;     /* [out_c] shifts ([1] if !per_channel) */
    /* Optional (NULL if absent): bias + in_offset * sum(weights of the channel). The DSP
     * fast paths use it so the inner loop is a plain int8 dot product. */
    const int32_t *kbias;
    int32_t per_channel;     /* 0: mult/shift hold one value for all channels */
    /* DSP fast paths only (NULL otherwise): arena scratch planned by the compiler, see
     * tf_conv_scratch_bytes / tf_dwconv_scratch_bytes in conv2d_dsp.c / dwconv2d_dsp.c. */
    int8_t *scratch;
} tf_conv_params;

typedef struct {
    int32_t batches, in_features, out_features;
    int32_t in_offset, weight_offset, out_offset;
    int32_t act_min, act_max;
    const int8_t *weights;   /* [out_features][in_features] */
    const int32_t *bias;
    const int32_t *mult;     /* [out_features], or [1] if !per_channel */
    const int8_t *shift;
    const int32_t *kbias;    /* optional: bias + in_offset * sum(row), see tf_conv_params */
    int32_t per_channel;
} tf_fc_params;

typedef struct {
    int16_t batches, in_h, in_w, ch, out_h, out_w;
    int16_t k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} tf_pool_params;

/* Broadcast element-wise binary op over up to 4 dims (NHWC); stride 0 = broadcast. */
typedef struct {
    int32_t out_dims[4];
    int32_t a_strides[4], b_strides[4];
    int32_t a_offset, b_offset, out_offset;
    int32_t left_shift;                    /* ADD only */
    int32_t a_mult, a_shift, b_mult, b_shift; /* ADD only */
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
} tf_binary_params;

typedef struct {
    int32_t num_dims;
    int32_t in_dims[6];
    int32_t out_strides[6];          /* output stride per input dim; 0 = reduced dim */
    int32_t n_out;                   /* number of outputs */
    int32_t in_zp, out_zp, mult, shift;
} tf_mean_params;

typedef struct {
    int32_t num_dims;
    int32_t in_dims[6], before[6], after[6];
    int8_t value;
} tf_pad_params;

typedef struct {
    int32_t outer, depth;
    const float *table;  /* 256 entries, table[255 - d] = expf(-scale * beta * d) */
    float out_scale;
    int32_t out_zp;
} tf_softmax_params;

/* ---- kernels (one per file) ---- */
void tf_conv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out);
void tf_conv2d_s8_portable(const tf_conv_params *p, const int8_t *in, int8_t *out);
void tf_dwconv2d_s8(const tf_conv_params *p, const int8_t *in, int8_t *out);
void tf_dwconv2d_s8_portable(const tf_conv_params *p, const int8_t *in, int8_t *out);
typedef void (*tf_conv_kernel)(const tf_conv_params *p, const int8_t *in, int8_t *out);
void tf_conv_rows_inplace_s8(tf_conv_kernel kern, const tf_conv_params *p, const int8_t *in,
                             int8_t *out, int8_t *ring, int32_t delay);
void tf_fully_connected_s8(const tf_fc_params *p, const int8_t *in, int8_t *out);
void tf_fully_connected_s8_portable(const tf_fc_params *p, const int8_t *in, int8_t *out);
void tf_avgpool_s8(const tf_pool_params *p, const int8_t *in, int8_t *out);
void tf_maxpool_s8(const tf_pool_params *p, const int8_t *in, int8_t *out);
void tf_add_s8(const tf_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out);
void tf_mul_s8(const tf_binary_params *p, const int8_t *a, const int8_t *b, int8_t *out);
void tf_mean_s8(const tf_mean_params *p, const int8_t *in, int8_t *out, int32_t *scratch);
void tf_pad_s8(const tf_pad_params *p, const int8_t *in, int8_t *out);
void tf_softmax_s8(const tf_softmax_params *p, const int8_t *in, int8_t *out);
/* LOGISTIC / TANH (and any int8->int8 pointwise op): 256-entry table from the compiler. */
void tf_logistic_s8(const int8_t *table, int32_t n, const int8_t *in, int8_t *out);
void tf_tanh_s8(const int8_t *table, int32_t n, const int8_t *in, int8_t *out);
void tf_concat_s8(int32_t outer, int32_t num_inputs, const int8_t *const *inputs,
                  const int32_t *copy_sizes, int8_t *out);
void tf_quantize_f32_s8(int32_t n, float scale, int32_t zp, const float *in, int8_t *out);
void tf_requantize_s8(int32_t n, int32_t in_zp, int32_t out_zp, int32_t mult, int32_t shift,
                      const int8_t *in, int8_t *out);
void tf_dequantize_s8_f32(int32_t n, double scale, int32_t zp, const int8_t *in, float *out);

#ifdef __cplusplus
}
#endif
#endif /* TF_NN_H */
