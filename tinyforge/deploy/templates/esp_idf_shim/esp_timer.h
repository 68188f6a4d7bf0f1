/* Stand-in for ESP-IDF's esp_timer.h (compile check of the example only; not shipped). */
#ifndef TF_SHIM_ESP_TIMER_H
#define TF_SHIM_ESP_TIMER_H
#include <stdint.h>
int64_t esp_timer_get_time(void);
#endif
