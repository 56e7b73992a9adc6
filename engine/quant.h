/* quant.h: the engine's tensor kernels (engine internal): per tensor type,
 * dequantization, activation quantization, and the dot product and matrix
 * tile the forward pass runs on. quant_ref.c is the portable scalar
 * reference for every type and the oracle the SIMD files (quant_avx2.c,
 * quant_avx512.c) are tested against; cpu.c picks a level from CPUID at run
 * time. Invariant: no function of a SIMD file runs before cpu.c has seen
 * that the CPU and the OS support its instructions; everything else is
 * built for baseline x86-64. Block layouts are byte-exact with GGML's. */
#ifndef SHOAL_ENGINE_QUANT_H
#define SHOAL_ENGINE_QUANT_H

#include "common.h"
#include "engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Block layouts (GGML's, little-endian; F16 fields as raw bits) ---- */

#define QUANT_QK   32  /* elements per block of Q4_0 ... Q8_1, IQ4_NL */
#define QUANT_QK_K 256 /* elements per K-quant super-block */

struct quant_block_q4_0 { /* x = d * (q - 8) */
    uint16_t d;
    uint8_t qs[16]; /* element j in the low nibble of qs[j], j + 16 in the high one */
};
struct quant_block_q4_1 { /* x = d * q + m */
    uint16_t d, m;
    uint8_t qs[16];
};
struct quant_block_q5_0 { /* x = d * (q - 16); bit 4 of element j is bit j of qh */
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct quant_block_q5_1 { /* x = d * q + m */
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
};
struct quant_block_q8_0 { /* x = d * q */
    uint16_t d;
    int8_t qs[32];
};
struct quant_block_q8_1 { /* x = d * q; s = d * sum(q), as F16 */
    uint16_t d, s;
    int8_t qs[32];
};
struct quant_block_iq4_nl { /* x = d * quant_iq4nl_values[q], nibbles as Q4_0 */
    uint16_t d;
    uint8_t qs[16];
};
/* K-quants: 256 elements in sub-blocks of 16 or 32 with their own scales.
 * Q2_K: x = d * (sc & 15) * q - dmin * (sc >> 4), q 2 bits, per 16. */
struct quant_block_q2_k {
    uint8_t scales[16];
    uint8_t qs[64];
    uint16_t d, dmin;
};
/* Q3_K: x = d * (sc - 32) * (q - (hbit ? 0 : 4)), 6-bit sc per 16. */
struct quant_block_q3_k {
    uint8_t hmask[32];
    uint8_t qs[64];
    uint8_t scales[12];
    uint16_t d;
};
/* Q4_K: x = d * sc * q - dmin * m, 6-bit sc and m per 32. */
struct quant_block_q4_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
};
/* Q5_K: as Q4_K with a fifth bit per element in qh. */
struct quant_block_q5_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
};
/* Q6_K: x = d * sc * (q - 32), int8 sc per 16. */
struct quant_block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
};
/* Q8_K (activations only): x = d * q, f32 d; bsums[i] = sum of q[16i..16i+15]. */
struct quant_block_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
};

_Static_assert(sizeof(struct quant_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(struct quant_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(struct quant_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(struct quant_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(struct quant_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(struct quant_block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(struct quant_block_iq4_nl) == 18, "iq4_nl layout");
_Static_assert(sizeof(struct quant_block_q2_k) == 84, "q2_k layout");
_Static_assert(sizeof(struct quant_block_q3_k) == 110, "q3_k layout");
_Static_assert(sizeof(struct quant_block_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(struct quant_block_q5_k) == 176, "q5_k layout");
_Static_assert(sizeof(struct quant_block_q6_k) == 210, "q6_k layout");
_Static_assert(sizeof(struct quant_block_q8_k) == 292, "q8_k layout");

/* IQ4_NL's 16 non-linear levels. */
extern const int8_t quant_iq4nl_values[16];

/* ---- Scalar conversions (quant_ref.c; bit-exact, any thread) ---- */

/* F16 and BF16 to F32 are exact; a NaN stays a NaN (F16 NaNs come back
 * quiet, as F16C's vcvtph2ps returns them). F32 to F16 and to BF16 round
 * to nearest, ties to even; overflow gives infinity; NaNs stay NaNs and
 * come back quiet (F16: like vcvtps2ph; BF16: like llama.cpp). */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

/* ---- Kernels ---- */

/* Dequantize n elements (a multiple of block_elems). */
typedef void (*quant_to_f32_fn)(const void *src, float *dst, size_t n);
/* Quantize n f32 activations (a multiple of block_elems) to this type. */
typedef void (*quant_from_f32_fn)(const float *src, void *dst, size_t n);
/* One weight row of n elements (a multiple of block_elems) against one
 * activation row already converted to dot_type. */
typedef float (*quant_vec_dot_fn)(size_t n, const void *w, const void *a);
/* Matrix tile: out[t * out_stride + r] = (row r of W) . (activation row t)
 * for r in [r0, r1) and t in [0, m). Row r of W starts at w + r *
 * w_row_bytes, activation row t at a + t * a_row_bytes; both hold k
 * elements (a multiple of block_elems). Hot: the SIMD versions decode each
 * weight block once per group of tokens and keep a tile of rows in L1
 * while they walk the tokens. With m == 1 (generation) they instead walk
 * a few rows side by side, each in its own accumulators, and prefetch the
 * weights ahead of them: call it once over a thread's whole row range. */
typedef void (*quant_gemm_fn)(size_t k, const void *w, size_t w_row_bytes, size_t r0, size_t r1,
                              const void *a, size_t a_row_bytes, size_t m, float *out,
                              size_t out_stride);

enum quant_level {
    QUANT_LEVEL_REF,    /* portable C, the oracle */
    QUANT_LEVEL_AVX2,   /* x86-64 AVX2 + FMA + F16C */
    QUANT_LEVEL_AVX512, /* AVX-512 F, BW, VL and VNNI (plus the AVX2 set) */
    QUANT_LEVEL_COUNT,
};

/* One type's kernels at one level. Immutable, static storage: any thread.
 * Weight types (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K ...
 * Q6_K, IQ4_NL) have to_f32, vec_dot and gemm. Types used as activations
 * (F32, F16, BF16, Q8_0, Q8_1, Q8_K) also have from_f32; Q8_1 and Q8_K are
 * activations only (vec_dot and gemm NULL). Every activation block a
 * from_f32 writes keeps its quants in [-127, 127], and the SIMD kernels
 * rely on it (their int16 pair sums cannot saturate then). Integer sums
 * inside a block are exact at every level; levels differ only in the
 * order of f32 accumulation. Within one entry, gemm gives bit for bit what
 * vec_dot gives for each (row, token): a token's result does not depend
 * on how many tokens share the tile, nor a row's on which rows share its
 * pass (m == 1 included). The functions are pure (no state; gemm's
 * prefetches are hints): any thread. */
struct quant_type {
    enum engine_type type;
    enum engine_type dot_type; /* what activations must be converted to for vec_dot/gemm */
    uint32_t block_elems, block_bytes;
    enum quant_level level; /* whose vec_dot/gemm these are (after fallback) */
    quant_to_f32_fn to_f32;
    quant_from_f32_fn from_f32;
    quant_vec_dot_fn vec_dot;
    quant_gemm_fn gemm;
};

/* The kernels of type t at level (clamped to quant_level_cpu(); a level
 * without a kernel for t falls back to the next lower one). NULL when t is
 * not supported. Any thread. */
const struct quant_type *quant_type_get(enum engine_type t, enum quant_level level);

/* What this CPU and OS can run: CPUID feature bits, and XGETBV for the
 * register state the OS saves (AVX: XMM+YMM; AVX-512: also opmask and
 * ZMM). QUANT_LEVEL_REF on other architectures. Cached; any thread. */
enum quant_level quant_level_cpu(void);

/* The level the engine uses: quant_level_cpu(), lowered by the
 * environment variable SHOAL_CPU=ref|avx2|avx512 when set. A value above
 * what the CPU has is clamped to it, and an unknown value is ignored; both
 * log one warning (event "cpu_level"). Read once, then cached; any thread. */
enum quant_level quant_level_best(void);

/* "ref", "avx2", "avx512". */
const char *quant_level_name(enum quant_level level);
/* The inverse of quant_level_name; INVALID for anything else. */
enum shoal_err quant_level_parse(const char *s, enum quant_level *out);
/* quant_level_best's rule without the environment: env is SHOAL_CPU's
 * value (NULL when unset), cpu what the CPU has. *warned says whether the
 * value was unknown or clamped. Pure; any thread. */
enum quant_level quant_level_choose(const char *env, enum quant_level cpu, bool *warned);

/* ---- Per-level tables (data only: reading them runs no SIMD code) ---- */

/* Indexed by type; an entry with to_f32 == NULL is absent. The SIMD
 * tables are empty on other architectures. */
extern const struct quant_type quant_table_ref[ENGINE_TYPE_COUNT];
extern const struct quant_type quant_table_avx2[ENGINE_TYPE_COUNT];
extern const struct quant_type quant_table_avx512[ENGINE_TYPE_COUNT];

/* The reference conversions, shared by the SIMD tables for the entries
 * they do not speed up. */
void quant_f32_to_f32_ref(const void *src, float *dst, size_t n);
void quant_f16_to_f32_ref(const void *src, float *dst, size_t n);
void quant_bf16_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q4_0_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q4_1_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q5_0_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q5_1_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q8_0_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q8_1_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q2_k_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q3_k_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q4_k_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q5_k_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q6_k_to_f32_ref(const void *src, float *dst, size_t n);
void quant_q8_k_to_f32_ref(const void *src, float *dst, size_t n);
void quant_iq4_nl_to_f32_ref(const void *src, float *dst, size_t n);

void quant_f32_from_f32_ref(const float *src, void *dst, size_t n);
void quant_f16_from_f32_ref(const float *src, void *dst, size_t n);
void quant_bf16_from_f32_ref(const float *src, void *dst, size_t n);
void quant_q8_0_from_f32_ref(const float *src, void *dst, size_t n);
void quant_q8_1_from_f32_ref(const float *src, void *dst, size_t n);
void quant_q8_k_from_f32_ref(const float *src, void *dst, size_t n);

/* AVX2 conversions the AVX-512 table reuses (call only at level >= AVX2). */
void quant_f16_to_f32_avx2(const void *src, float *dst, size_t n);
void quant_f16_from_f32_avx2(const float *src, void *dst, size_t n);
void quant_bf16_to_f32_avx2(const void *src, float *dst, size_t n);
void quant_q8_0_to_f32_avx2(const void *src, float *dst, size_t n);
void quant_q8_0_from_f32_avx2(const float *src, void *dst, size_t n);
void quant_q8_1_from_f32_avx2(const float *src, void *dst, size_t n);
void quant_q8_k_from_f32_avx2(const float *src, void *dst, size_t n);
void quant_q4_0_to_f32_avx2(const void *src, float *dst, size_t n);
void quant_q4_k_to_f32_avx2(const void *src, float *dst, size_t n);
void quant_q6_k_to_f32_avx2(const void *src, float *dst, size_t n);

#endif
