/* TinyForge DSP verification harness: runs DSP block cases (generated tf_cases.c) over input
 * records and prints every output as one hex line "F <case> <float32 little-endian hex>",
 * then, on emulated cores, "INSN <instructions>" for that record's block call.
 * Records: int32 case, int32 count, count float32 values; read from the file named by argv[1]
 * (host) or from the embedded array tf_records (TF_EMBEDDED_RECORDS, cross targets).
 * Built by tinyforge.csdk.dspverify; not part of a deployment. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "tf_cases.h"

static float in_buf[TF_CASES_MAX_IN];
static float out_buf[TF_CASES_MAX_OUT];
static char line[16 + 8 * TF_CASES_MAX_OUT];

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
    SYST_CSR = 7u;
}
static uint64_t counter_stop(void)
{
    uint32_t v = SYST_CVR;
    SYST_CSR = 0;
    /* QEMU -icount shift=0: 1 instruction = 1 ns; SysTick at 25 MHz = 40 ns per tick */
    return ((uint64_t)tf_systick_wraps * 0x1000000u + (0xFFFFFFu - v)) * 40u;
}
#define TF_COUNTS 1
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
#define TF_COUNTS 1
#else
static void counter_start(void) {}
static uint64_t counter_stop(void) { return 0; }
#endif

#ifdef TF_EMBEDDED_RECORDS
extern const unsigned char tf_records[];
extern const unsigned long tf_records_size;
static unsigned long pos;
static int read_bytes(void *dst, unsigned long n)
{
    if (pos + n > tf_records_size) {
        return 0;
    }
    memcpy(dst, tf_records + pos, n);
    pos += n;
    return 1;
}
#else
static FILE *records;
static int read_bytes(void *dst, unsigned long n)
{
    return fread(dst, 1, n, records) == n;
}
#endif

static void print_output(int k, int n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = (const unsigned char *)out_buf;
    int j, p = sprintf(line, "F %d ", k);
    for (j = 0; j < 4 * n; ++j) {
        line[p++] = hex[b[j] >> 4];
        line[p++] = hex[b[j] & 15];
    }
    line[p] = '\0';
    puts(line);
}

#ifdef TF_EMBEDDED_RECORDS
/* main(void): WASI start-up with no arguments fails allocating an empty argv (exit 71) */
int main(void)
{
    int32_t head[2];
#else
int main(int argc, char **argv)
{
    int32_t head[2];
    records = argc > 1 ? fopen(argv[1], "rb") : stdin;
    if (records == NULL) {
        puts("E cannot open records");
        return 2;
    }
#endif
    while (read_bytes(head, sizeof head)) {
        const int k = head[0], n = head[1];
        uint64_t insn;
        int rc;
        if (k < 0 || k >= TF_CASES_COUNT || n != tf_case_in[k] || n > TF_CASES_MAX_IN ||
            !read_bytes(in_buf, (unsigned long)n * 4u)) {
            printf("E bad record for case %d (%d values)\n", k, n);
            return 3;
        }
        counter_start();
        rc = tf_case_run(k, in_buf, out_buf);
        insn = counter_stop();
        if (rc != 0) {
            printf("E case %d returned %d\n", k, rc);
            return 4;
        }
        print_output(k, tf_case_out[k]);
#ifdef TF_COUNTS
        printf("INSN %lu\n", (unsigned long)insn);
#else
        (void)insn;
#endif
    }
    return 0;
}
