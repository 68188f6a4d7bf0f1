/* TinyForge C SDK: classifier API.
 *
 *   signal_t sig;  signal_from_buffer(samples, TF_CLASSIFIER_RAW_SAMPLE_COUNT, &sig);
 *   classifier_result_t r;  run_classifier(&sig, &r);
 *
 * The signal is read through its get_data callback in float32 chunks (so it can stream from
 * flash, a file or a sensor driver) into one static window buffer; the generated impulse
 * (impulse.c, model_metadata.h) runs the DSP blocks and the compiled model. Audio impulses
 * can also run continuously: feed TF_CLASSIFIER_SLICE_SIZE new samples per call to
 * run_classifier_continuous; it slides the window and averages the scores of the last
 * TF_CLASSIFIER_SLICES_PER_WINDOW windows. No heap; not reentrant (static buffers).
 */
#ifndef TF_CLASSIFIER_H
#define TF_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>
#include "model_metadata.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TF_CLASSIFIER_OK 0
#define TF_CLASSIFIER_E_SIGNAL_SIZE (-1) /* signal length is not one window / one slice */
#define TF_CLASSIFIER_E_GET_DATA (-2)    /* get_data returned non-zero */
#define TF_CLASSIFIER_E_DSP (-3)         /* a DSP block failed */
#define TF_CLASSIFIER_E_NN (-4)          /* the model failed */

/* A signal of total_length float32 values (sample-major [T][axes]). get_data copies
 * values [offset, offset + length) into out_ptr and returns 0 on success. */
typedef struct signal_s {
    size_t total_length;
    int (*get_data)(size_t offset, size_t length, float *out_ptr);
} signal_t;

typedef struct {
    const char *label;
    float value;
} tf_classification_t;

typedef struct {
    tf_classification_t classification[TF_CLASSIFIER_LABEL_COUNT];
    float anomaly;               /* from the anomaly hook, 0 when none is set */
    int ready;                   /* continuous mode: 1 once a full window has been seen */
    struct {
        uint64_t dsp;            /* timer-hook units (0 without a timer hook) */
        uint64_t classification;
        uint64_t anomaly;
    } timing;
} classifier_result_t;

/* Classify one window: signal->total_length must be TF_CLASSIFIER_RAW_SAMPLE_COUNT. */
int run_classifier(const signal_t *signal, classifier_result_t *result);

/* Continuous mode: signal->total_length must be TF_CLASSIFIER_SLICE_SIZE (new samples).
 * Scores are the moving average over the last TF_CLASSIFIER_SLICES_PER_WINDOW windows. */
int run_classifier_continuous(const signal_t *signal, classifier_result_t *result);

/* Reset the continuous-mode window and score history. */
void run_classifier_init(void);

/* Hooks: a monotonic timer (e.g. microseconds) and an anomaly scorer on the features. */
void tf_classifier_set_timer(uint64_t (*now)(void));
void tf_classifier_set_anomaly(float (*score)(const float *features, int count));

/* A signal reading from a float array (kept by pointer; one such signal at a time). */
int signal_from_buffer(const float *data, size_t length, signal_t *signal);

/* The DSP features of the last window (TF_CLASSIFIER_FEATURE_COUNT floats). */
const float *tf_classifier_features(void);

/* Generated in impulse.c: all DSP blocks on a window -> features; features -> scores. */
int tf_impulse_dsp(const float *window, float *features);
int tf_impulse_infer(const float *features, float *scores);

#ifdef __cplusplus
}
#endif
#endif
