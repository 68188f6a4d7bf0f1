/* Footprint build: the model plus the smallest application that calls it once. `size` on
 * this image gives the deployment's flash (text + rodata + data) and static RAM. */
#include "model.h"

static tf_model_input_t in_buf[TF_MODEL_INPUT_SIZE];
static tf_model_output_t out_buf[TF_MODEL_OUTPUT_SIZE];

int main(void)
{
    return tf_model_invoke(in_buf, out_buf) + (int)out_buf[0];
}
