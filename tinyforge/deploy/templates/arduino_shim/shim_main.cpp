/* Runs the sketch once: setup() then one loop() (Arduino core stand-in). Not shipped. */
#include "Arduino.h"

TfShimSerial Serial;
static unsigned long ticks;

unsigned long micros(void) { return ticks += 1000u; }
unsigned long millis(void) { return ticks / 1000u; }
void delay(unsigned long ms) { ticks += ms * 1000u; }

int main(void)
{
    setup();
    loop();
    printf("sketch: done\n");
    return 0;
}
