/* TinyForge classifier API (see tf_classifier.h). */
#include <string.h>
#include "tf_classifier.h"

#define TF_CHUNK 256 /* floats read per get_data call */

static float window_buf[TF_CLASSIFIER_RAW_SAMPLE_COUNT];
static float features_buf[TF_CLASSIFIER_FEATURE_COUNT];
static float scores_buf[TF_CLASSIFIER_LABEL_COUNT];
static float history[TF_CLASSIFIER_SLICES_PER_WINDOW][TF_CLASSIFIER_LABEL_COUNT];
static int history_count, history_next;
static size_t slices_seen;
static uint64_t (*timer_hook)(void);
static float (*anomaly_hook)(const float *, int);
static const float *buffer_data;

void tf_classifier_set_timer(uint64_t (*now)(void)) { timer_hook = now; }
void tf_classifier_set_anomaly(float (*score)(const float *, int)) { anomaly_hook = score; }
const float *tf_classifier_features(void) { return features_buf; }

static uint64_t now(void) { return timer_hook ? timer_hook() : 0u; }

static int buffer_get_data(size_t offset, size_t length, float *out_ptr)
{
    memcpy(out_ptr, buffer_data + offset, length * sizeof(float));
    return 0;
}

int signal_from_buffer(const float *data, size_t length, signal_t *signal)
{
    buffer_data = data;
    signal->total_length = length;
    signal->get_data = buffer_get_data;
    return 0;
}

/* read signal values [0, n) into dst through get_data, TF_CHUNK at a time */
static int read_signal(const signal_t *signal, float *dst, size_t n)
{
    size_t off;
    for (off = 0; off < n; off += TF_CHUNK) {
        const size_t len = n - off < TF_CHUNK ? n - off : TF_CHUNK;
        if (signal->get_data(off, len, dst + off) != 0) {
            return TF_CLASSIFIER_E_GET_DATA;
        }
    }
    return TF_CLASSIFIER_OK;
}

/* DSP + NN on window_buf; fills scores_buf and result timing/anomaly */
static int classify_window(classifier_result_t *result)
{
    uint64_t t0 = now();
    if (tf_impulse_dsp(window_buf, features_buf) != 0) {
        return TF_CLASSIFIER_E_DSP;
    }
    result->timing.dsp = now() - t0;
    t0 = now();
    if (tf_impulse_infer(features_buf, scores_buf) != 0) {
        return TF_CLASSIFIER_E_NN;
    }
    result->timing.classification = now() - t0;
    t0 = now();
    result->anomaly = anomaly_hook ? anomaly_hook(features_buf, TF_CLASSIFIER_FEATURE_COUNT)
                                   : 0.0f;
    result->timing.anomaly = now() - t0;
    return TF_CLASSIFIER_OK;
}

static void fill_result(classifier_result_t *result, const float *scores)
{
    int i;
    for (i = 0; i < TF_CLASSIFIER_LABEL_COUNT; ++i) {
        result->classification[i].label = tf_classifier_labels[i];
        result->classification[i].value = scores[i];
    }
}

int run_classifier(const signal_t *signal, classifier_result_t *result)
{
    int rc;
    memset(result, 0, sizeof *result);
    if (signal->total_length != TF_CLASSIFIER_RAW_SAMPLE_COUNT) {
        return TF_CLASSIFIER_E_SIGNAL_SIZE;
    }
    rc = read_signal(signal, window_buf, TF_CLASSIFIER_RAW_SAMPLE_COUNT);
    if (rc == TF_CLASSIFIER_OK) {
        rc = classify_window(result);
    }
    if (rc == TF_CLASSIFIER_OK) {
        fill_result(result, scores_buf);
        result->ready = 1;
    }
    return rc;
}

void run_classifier_init(void)
{
    memset(window_buf, 0, sizeof window_buf);
    memset(history, 0, sizeof history);
    history_count = history_next = 0;
    slices_seen = 0;
}

int run_classifier_continuous(const signal_t *signal, classifier_result_t *result)
{
    const size_t keep = TF_CLASSIFIER_RAW_SAMPLE_COUNT - TF_CLASSIFIER_SLICE_SIZE;
    float avg[TF_CLASSIFIER_LABEL_COUNT];
    int rc, i, j;
    memset(result, 0, sizeof *result);
    if (signal->total_length != TF_CLASSIFIER_SLICE_SIZE) {
        return TF_CLASSIFIER_E_SIGNAL_SIZE;
    }
    /* slide the window: drop the oldest slice, append the new one */
    memmove(window_buf, window_buf + TF_CLASSIFIER_SLICE_SIZE, keep * sizeof(float));
    rc = read_signal(signal, window_buf + keep, TF_CLASSIFIER_SLICE_SIZE);
    if (rc != TF_CLASSIFIER_OK) {
        return rc;
    }
    ++slices_seen;
    rc = classify_window(result);
    if (rc != TF_CLASSIFIER_OK) {
        return rc;
    }
    memcpy(history[history_next], scores_buf, sizeof scores_buf);
    history_next = (history_next + 1) % TF_CLASSIFIER_SLICES_PER_WINDOW;
    if (history_count < TF_CLASSIFIER_SLICES_PER_WINDOW) {
        ++history_count;
    }
    /* moving average, summed oldest first */
    for (i = 0; i < TF_CLASSIFIER_LABEL_COUNT; ++i) {
        float acc = 0.0f;
        for (j = 0; j < history_count; ++j) {
            const int h = (history_next - history_count + j + TF_CLASSIFIER_SLICES_PER_WINDOW) %
                          TF_CLASSIFIER_SLICES_PER_WINDOW;
            acc += history[h][i];
        }
        avg[i] = acc / (float)history_count;
    }
    fill_result(result, avg);
    result->ready = slices_seen >= TF_CLASSIFIER_SLICES_PER_WINDOW;
    return TF_CLASSIFIER_OK;
}
