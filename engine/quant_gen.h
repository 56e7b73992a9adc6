/* quant_gen.h: the single-token (generation) driver the SIMD kernel files
 * share (engine internal; include after <immintrin.h> on x86 only). gemm
 * with one token goes to NAME_gen, which walks the rows GEN at a time
 * through NAME_rows(nr, nb, w, wrb, a, out): rows w + r * wrb for r < nr
 * (a constant at each call) against the one activation row a, out[r].
 * Each row keeps its own accumulators, in the order and with the final sum
 * of the single-token path of NAME_row, so the results are vec_dot's bit
 * for bit; what the rows share is the activation loads, and their
 * independent chains and weight streams overlap. */
#ifndef SHOAL_ENGINE_QUANT_GEN_H
#define SHOAL_ENGINE_QUANT_GEN_H

#include <stddef.h>
#include <stdint.h>

enum {
    GEN = 4,          /* rows per step of NAME_gen; NAME_gen's tail assumes 4 */
    GEN_AHEAD = 8192, /* bytes NAME_rows prefetches ahead of each row it reads */
};

/* The weights stream from memory once per token, in rows too short for
 * the hardware prefetcher to keep up with: NAME_rows asks for the bytes
 * GEN_AHEAD past the ones it is about to read, into L2, a step of each
 * row at a time. Bursts (a group of rows at once, from the caller) or
 * prefetches into L1 fill the core's miss buffers and get less: Q5_0 rows
 * from DRAM, one core, 9.7 GB/s this way, 7.4 with bursts, 8.6 into L1,
 * 7.3 for vec_dot with the row after next prefetched (llm.c's old way). */
static inline __attribute__((always_inline)) void gen_prefetch(const uint8_t *p, size_t bytes)
{
    uintptr_t at = (uintptr_t)p + GEN_AHEAD; /* may be past the matrix: a prefetch never faults */
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch((const char *)(at + o), _MM_HINT_T1);
}

#define DEFINE_GEN(name)                                                                           \
    static __attribute__((noinline)) void name##_gen(size_t nb, const uint8_t *w, size_t wrb,      \
                                                     size_t r0, size_t r1, const uint8_t *a,       \
                                                     float *out)                                   \
    {                                                                                              \
        size_t r = r0;                                                                             \
        for (; r + GEN <= r1; r += GEN) /* hot */                                                  \
            name##_rows(GEN, nb, w + r * wrb, wrb, a, out + r);                                    \
        switch (r1 - r) {                                                                          \
        case 3:                                                                                    \
            name##_rows(3, nb, w + r * wrb, wrb, a, out + r);                                      \
            break;                                                                                 \
        case 2:                                                                                    \
            name##_rows(2, nb, w + r * wrb, wrb, a, out + r);                                      \
            break;                                                                                 \
        case 1:                                                                                    \
            name##_rows(1, nb, w + r * wrb, wrb, a, out + r);                                      \
            break;                                                                                 \
        default:                                                                                   \
            break;                                                                                 \
        }                                                                                          \
    }

#endif
