/* Calls app_main once, as ESP-IDF's main task would (compile/run check only; not shipped). */
#include <stdio.h>
#include "esp_timer.h"
#include "freertos/task.h"

extern void app_main(void);
static int64_t us;

int64_t esp_timer_get_time(void) { return us += 1000; }
void vTaskDelay(TickType_t ticks) { us += (int64_t)ticks * 1000; }

int main(void)
{
    app_main();
    printf("app_main: done\n");
    return 0;
}
