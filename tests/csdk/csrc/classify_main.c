/* Test driver for the classifier API: classifies windows streamed from a file of float32
 * samples through signal_t.get_data (fseek + fread, nothing buffered here).
 * usage: classify RECORDS_FILE N_WINDOWS          one-shot: prints "X <features hex>" and
 *                                                 "S <scores hex>" per window
 *        classify RECORDS_FILE N_SLICES c         continuous: "S <hex> <ready>" per slice */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tf_classifier.h"

static FILE *f;
static long base; /* byte offset of the current window/slice in the file */

static int file_get_data(size_t offset, size_t length, float *out_ptr)
{
    if (fseek(f, base + (long)(offset * sizeof(float)), SEEK_SET) != 0) {
        return -1;
    }
    return fread(out_ptr, sizeof(float), length, f) == length ? 0 : -1;
}

static void print_hex(const char *tag, const float *v, int n, const char *tail)
{
    const unsigned char *b = (const unsigned char *)v;
    int j;
    printf("%s ", tag);
    for (j = 0; j < 4 * n; ++j) {
        printf("%02x", b[j]);
    }
    printf("%s\n", tail);
}

int main(int argc, char **argv)
{
    const int continuous = argc > 3 && strcmp(argv[3], "c") == 0;
    const size_t len = continuous ? TF_CLASSIFIER_SLICE_SIZE : TF_CLASSIFIER_RAW_SAMPLE_COUNT;
    signal_t sig;
    classifier_result_t r;
    float scores[TF_CLASSIFIER_LABEL_COUNT];
    int n, i, k;
    if (argc < 3 || (f = fopen(argv[1], "rb")) == NULL) {
        return 2;
    }
    n = atoi(argv[2]);
    sig.total_length = len;
    sig.get_data = file_get_data;
    run_classifier_init();
    for (k = 0; k < n; ++k) {
        int rc;
        base = (long)(k * len * sizeof(float));
        rc = continuous ? run_classifier_continuous(&sig, &r) : run_classifier(&sig, &r);
        if (rc != TF_CLASSIFIER_OK) {
            printf("E %d\n", rc);
            return 3;
        }
        for (i = 0; i < TF_CLASSIFIER_LABEL_COUNT; ++i) {
            scores[i] = r.classification[i].value;
        }
        if (!continuous) {
            print_hex("X", tf_classifier_features(), TF_CLASSIFIER_FEATURE_COUNT, "");
        }
        print_hex("S", scores, TF_CLASSIFIER_LABEL_COUNT, r.ready ? " 1" : " 0");
    }
    /* the API rejects a signal of the wrong length */
    sig.total_length = len + 1;
    printf("BADLEN %d\n", continuous ? run_classifier_continuous(&sig, &r)
                                     : run_classifier(&sig, &r));
    return 0;
}
