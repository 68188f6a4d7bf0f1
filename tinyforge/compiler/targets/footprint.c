/* Footprint build: the model plus the smallest application that calls it once, writing
 * its input straight into the arena (tf_model_input()) instead of keeping its own input
 * buffer. `size` on this image gives the deployment's flash (text + rodata + data) and
 * static RAM. */
#include "model.h"

static tf_model_output_t out_buf[TF_MODEL_OUTPUT_SIZE];

int main(void)
{
    tf_model_input()[0] = (tf_model_input_t)1; /* stands for the application's sensor code */
    return tf_model_invoke(tf_model_input(), out_buf) + (int)out_buf[0];
}
