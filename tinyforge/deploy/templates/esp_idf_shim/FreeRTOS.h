/* Stand-in for FreeRTOS.h (compile check of the example only; not shipped). */
#ifndef TF_SHIM_FREERTOS_H
#define TF_SHIM_FREERTOS_H
#include <stdint.h>
typedef uint32_t TickType_t;
#define pdMS_TO_TICKS(ms) ((TickType_t)(ms))
#endif
