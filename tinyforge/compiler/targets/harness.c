/* TinyForge verification harness: runs every embedded stimulus through the generated model,
 * prints each output as one hex line ("O <hex>"), then the stack high-water mark of one
 * inference ("STACK <bytes>") and, on emulated cores, the instruction count of one inference
 * ("INSN <count>"). Built by tinyforge.compiler.verify; not part of a deployment. */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "model.h"

extern const unsigned char tf_stim[];
extern const unsigned int tf_stim_count;

#define IN_BYTES ((unsigned)(sizeof(tf_model_input_t) * TF_MODEL_INPUT_SIZE))
#define OUT_BYTES ((unsigned)(sizeof(tf_model_output_t) * TF_MODEL_OUTPUT_SIZE))
#define PAINT_BYTES 16384u
#define PAINT_WORD 0xA5C3E1F7u

static tf_model_input_t in_buf[TF_MODEL_INPUT_SIZE];
static tf_model_output_t out_buf[TF_MODEL_OUTPUT_SIZE];
static char line[2 * OUT_BYTES + 4];

#if defined(TF_TARGET_M4F)
extern volatile uint32_t tf_systick_wraps;
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static void counter_start(void)
{
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    tf_systick_wraps = 0;
    SYST_CSR = 7u; /* enable, tick interrupt, processor clock */
}
static uint64_t counter_stop(void)
{
    uint32_t v = SYST_CVR;
    SYST_CSR = 0;
    /* QEMU -icount shift=0: 1 instruction = 1 ns; SysTick runs at 25 MHz = 40 ns per tick. */
    return ((uint64_t)tf_systick_wraps * 0x1000000u + (0xFFFFFFu - v)) * 40u;
}
#elif defined(TF_TARGET_RV32)
static uint64_t rd_instret(void)
{
    uint32_t hi, lo, hi2;
    do {
        __asm volatile("rdinstreth %0" : "=r"(hi));
        __asm volatile("rdinstret %0" : "=r"(lo));
        __asm volatile("rdinstreth %0" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
}
static uint64_t t0;
static void counter_start(void) { t0 = rd_instret(); }
static uint64_t counter_stop(void) { return rd_instret() - t0; }
#else
static void counter_start(void) {}
static uint64_t counter_stop(void) { return 0; }
#endif

#if defined(TF_TARGET_M4F) || defined(TF_TARGET_RV32)
#define TF_STACK_PAINT 1
#endif

#ifdef TF_STACK_PAINT
static inline uintptr_t read_sp(void)
{
    uintptr_t sp;
#if defined(TF_TARGET_M4F)
    __asm volatile("mov %0, sp" : "=r"(sp));
#else
    __asm volatile("mv %0, sp" : "=r"(sp));
#endif
    return sp;
}

/* Paint the free stack below the current stack pointer, run one inference, and find the
 * deepest overwritten word: that is the inference's stack high-water mark. */
static __attribute__((noinline)) unsigned measure_stack(void)
{
    const uintptr_t sp = read_sp() & ~(uintptr_t)3;
    volatile uint32_t *const top = (volatile uint32_t *)sp;
    volatile uint32_t *const bottom = top - PAINT_BYTES / 4u;
    volatile uint32_t *w;
    for (w = bottom; w < top; ++w) {
        *w = PAINT_WORD;
    }
    tf_model_invoke(in_buf, out_buf);
    for (w = bottom; w < top && *w == PAINT_WORD; ++w) {
    }
    return (unsigned)((uintptr_t)top - (uintptr_t)w);
}
#endif

int main(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned i, j;
    uint64_t insn = 0;
    for (i = 0; i < tf_stim_count; ++i) {
        const unsigned char *o = (const unsigned char *)out_buf;
        /* odd stimuli go through the caller's buffer (copied by invoke), even ones are
         * written straight into the arena's input tensor: both APIs are compared */
        tf_model_input_t *const dst = (i & 1u) ? in_buf : tf_model_input();
        memcpy(dst, tf_stim + (size_t)i * IN_BYTES, IN_BYTES);
        counter_start();
        tf_model_invoke(dst, out_buf);
        if (i == 0) {
            insn = counter_stop();
        }
        line[0] = 'O';
        line[1] = ' ';
        for (j = 0; j < OUT_BYTES; ++j) {
            line[2 + 2 * j] = hex[o[j] >> 4];
            line[3 + 2 * j] = hex[o[j] & 15];
        }
        line[2 + 2 * OUT_BYTES] = '\0';
        puts(line);
    }
#ifdef TF_STACK_PAINT
    printf("STACK %u\n", measure_stack());
#endif
    printf("INSN %lu\n", (unsigned long)insn);
    return 0;
}
