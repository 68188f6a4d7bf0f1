/* Minimal stand-in for the Arduino core, used only to compile and run the example sketch
 * here (Serial over printf, micros/millis from a counter). Not shipped. */
#ifndef TF_ARDUINO_SHIM_H
#define TF_ARDUINO_SHIM_H
#include <stdint.h>
#include <stdio.h>

unsigned long micros(void);
unsigned long millis(void);
void delay(unsigned long ms);

struct TfShimSerial {
    void begin(unsigned long) {}
    void print(const char *s) { printf("%s", s); }
    void print(int v) { printf("%d", v); }
    void print(unsigned long v) { printf("%lu", v); }
    void print(float v, int digits = 2) { printf("%.*f", digits, (double)v); }
    void println(const char *s) { printf("%s\n", s); }
    void println(int v) { printf("%d\n", v); }
    void println(unsigned long v) { printf("%lu\n", v); }
    void println(float v, int digits = 2) { printf("%.*f\n", digits, (double)v); }
};
extern TfShimSerial Serial;

void setup(void);
void loop(void);
#endif
