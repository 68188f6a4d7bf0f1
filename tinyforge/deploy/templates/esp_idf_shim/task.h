/* Stand-in for freertos/task.h (compile check of the example only; not shipped). */
#ifndef TF_SHIM_TASK_H
#define TF_SHIM_TASK_H
#include "FreeRTOS.h"
void vTaskDelay(TickType_t ticks);
#endif
