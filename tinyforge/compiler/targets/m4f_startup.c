/* Minimal Cortex-M4F start-up for QEMU mps2-an386 (TinyForge verification/footprint builds). */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
#ifdef TF_SEMIHOSTING
extern void _start(void); /* newlib rdimon: sets up semihosting I/O, calls main, then exit */
#endif

volatile uint32_t tf_systick_wraps;

void Reset_Handler(void)
{
    /* Enable CP10/CP11 (FPU) before any float code runs. */
    *(volatile uint32_t *)0xE000ED88 |= (0xFu << 20);
    __asm volatile("dsb\n isb");
    memcpy(&_sdata, &_sidata, (size_t)((char *)&_edata - (char *)&_sdata));
    memset(&_sbss, 0, (size_t)((char *)&_ebss - (char *)&_sbss));
#ifdef TF_SEMIHOSTING
    _start();
#else
    (void)main();
#endif
    for (;;) {
    }
}

static void Default_Handler(void)
{
    for (;;) {
    }
}

static void SysTick_Handler(void)
{
    tf_systick_wraps++;
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler,
    Default_Handler, 0, Default_Handler, SysTick_Handler,
};
