/* quant_avx2.c: AVX2 + FMA + F16C kernels: dot product and matrix tile of
 * every weight type, the activation quantizers, and the conversions worth
 * vectorising. Only this file is compiled with -mavx2 -mfma -mf16c, and
 * nothing in it may run before cpu.c has seen the CPU support them:
 * callers reach it through quant_type_get, never directly. Block sums are
 * exact integers (maddubs pairs cannot saturate while activations stay in
 * [-127, 127]); only the order of f32 accumulation differs from
 * quant_ref.c, and the conversions are bit-exact with it. */
#include "quant.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

#include "quant_gen.h"

#define INLINE static inline __attribute__((always_inline))

enum {
    TOKENS = 4, /* activation rows per group: each weight block is decoded once per group */
    ROWS = 16,  /* weight rows kept in L1 while the token groups walk them */
};

/* ---- Helpers ---- */

INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

INLINE __m256i loadu(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

/* Sum of the int16 pairs of p, as 8 int32. */
INLINE __m256i pairs(__m256i p)
{
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* The 32 nibbles of a legacy block as bytes: low nibbles (elements 0..15)
 * in the low lane, high nibbles (16..31) in the high lane. */
INLINE __m256i nibbles32(const uint8_t *qs)
{
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
}

/* Bit j of the little-endian 32-bit qh as byte j: 0x10 when set, else 0. */
INLINE __m256i fifth_bits32(const uint8_t *qh)
{
    uint32_t v;
    memcpy(&v, qh, sizeof(v));
    const __m256i spread =
        _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), spread);
    b = _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x10));
}

/* Shuffle control spreading int16 number k of each 128-bit lane over it. */
INLINE __m256i bcast16(int k)
{
    return _mm256_set1_epi16((short)((2 * k + 1) << 8 | 2 * k));
}

/* From 16 int8 scales broadcast to both lanes (sc), the int16 scales of a
 * 32-element chunk covering groups g and g + 1 of 16: sc[g] in the low
 * lane (elements 0..15), sc[g + 1] in the high lane. Sign-extended. */
INLINE __m256i scale_pair(__m256i sc, int g)
{
    __m256i ctrl =
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)(g << 8 | 0x80))),
                                _mm_set1_epi16((short)((g + 1) << 8 | 0x80)), 1);
    return _mm256_srai_epi16(_mm256_shuffle_epi8(sc, ctrl), 8);
}

/* ---- Drivers ----
 * A type provides NAME_row(nb, w, a, arb, das, nt, out, os): one weight
 * row of nb blocks against nt (1..TOKENS) activation rows a + t * arb,
 * writing out[t * os]. nt is a constant at every call, so the per-token
 * loops unroll and the accumulators stay in registers. PREP(a, arb, nt,
 * nb, das, cap) may convert the activation rows' F16 block scales to
 * floats once for all the rows of a tile (false when they need more than
 * cap floats); a row then reads das instead of converting at each use,
 * with the same products bit for bit. */

#define DEFINE_KERNELS(name, QK, PREP, NPREP)                                                      \
    static float name##_vec_dot(size_t n, const void *w, const void *a)                            \
    {                                                                                              \
        float r;                                                                                   \
        name##_row(n / (QK), w, a, 0, NULL, 1, &r, 0);                                             \
        return r;                                                                                  \
    }                                                                                              \
    static void name##_gemm(size_t k, const void *w, size_t wrb, size_t r0, size_t r1,             \
                            const void *a, size_t arb, size_t m, float *out, size_t os)            \
    {                                                                                              \
        const uint8_t *wb = w, *ab = a;                                                            \
        size_t nb = k / (QK);                                                                      \
        if (m == 1) {                                                                              \
            name##_gen(nb, wb, wrb, r0, r1, ab, out);                                              \
            return;                                                                                \
        }                                                                                          \
        float das[NPREP];                                                                          \
        for (size_t rc = r0; rc < r1; rc += ROWS) {                                                \
            size_t re = rc + ROWS < r1 ? rc + ROWS : r1, t = 0;                                    \
            for (; t + TOKENS <= m; t += TOKENS) {                                                 \
                const uint8_t *at = ab + t * arb;                                                  \
                const float *pd = PREP(at, arb, TOKENS, nb, das, NPREP) ? das : NULL;              \
                for (size_t r = rc; r < re; r++)                                                   \
                    name##_row(nb, wb + r * wrb, at, arb, pd, TOKENS, out + t * os + r, os);       \
            }                                                                                      \
            if (t == m)                                                                            \
                continue;                                                                          \
            const uint8_t *at = ab + t * arb;                                                      \
            const float *pd = PREP(at, arb, (int)(m - t), nb, das, NPREP) ? das : NULL;            \
            for (size_t r = rc; r < re; r++) {                                                     \
                const uint8_t *wr = wb + r * wrb;                                                  \
                float *o = out + t * os + r;                                                       \
                switch (m - t) {                                                                   \
                case 3:                                                                            \
                    name##_row(nb, wr, at, arb, pd, 3, o, os);                                     \
                    break;                                                                         \
                case 2:                                                                            \
                    name##_row(nb, wr, at, arb, pd, 2, o, os);                                     \
                    break;                                                                         \
                default:                                                                           \
                    name##_row(nb, wr, at, arb, pd, 1, o, os);                                     \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

INLINE bool no_prep(const uint8_t *a, size_t arb, int nt, size_t nb, float *das, size_t cap)
{
    (void)a, (void)arb, (void)nt, (void)nb, (void)das, (void)cap;
    return false;
}

/* Q8_0 rows: das[t * nb + i] = d of block i of row t. */
INLINE bool prep_q8_0(const uint8_t *a, size_t arb, int nt, size_t nb, float *das, size_t cap)
{
    if ((size_t)nt * nb > cap)
        return false;
    for (int t = 0; t < nt; t++) {
        const struct quant_block_q8_0 *y = (const struct quant_block_q8_0 *)(a + t * arb);
        for (size_t i = 0; i < nb; i++)
            das[t * nb + i] = f16(y[i].d);
    }
    return true;
}

/* Q8_1 rows: d of block i of row t at das[2 t nb + i], s at das[2 t nb + nb + i]. */
INLINE bool prep_q8_1(const uint8_t *a, size_t arb, int nt, size_t nb, float *das, size_t cap)
{
    if (2 * (size_t)nt * nb > cap)
        return false;
    for (int t = 0; t < nt; t++) {
        const struct quant_block_q8_1 *y = (const struct quant_block_q8_1 *)(a + t * arb);
        for (size_t i = 0; i < nb; i++) {
            das[2 * t * nb + i] = f16(y[i].d);
            das[2 * t * nb + nb + i] = f16(y[i].s);
        }
    }
    return true;
}

/* Floats for PREP (32 KiB of stack): 1 per block for Q8_0 rows, 2 for
 * Q8_1, TOKENS rows; longer rows convert at each use instead. */
#define PREP_FLOATS 8192

/* Row over BLOCK(w, a, arb, das, nb, i, nt, acc, ex), which adds block
 * i's products to acc[t] (vector) and ex[t] (scalar); blocks are WB
 * bytes. Even and odd blocks go to two accumulator sets so that
 * consecutive blocks do not wait on each other. */
#define DEFINE_BLOCK_ROW(name, BLOCK, WB)                                                          \
    INLINE void name##_row(size_t nb, const uint8_t *w, const uint8_t *a, size_t arb,              \
                           const float *das, int nt, float *out, size_t os)                        \
    {                                                                                              \
        __m256 acc0[TOKENS], acc1[TOKENS];                                                         \
        float ex[TOKENS];                                                                          \
        for (int t = 0; t < nt; t++) {                                                             \
            acc0[t] = acc1[t] = _mm256_setzero_ps();                                               \
            ex[t] = 0;                                                                             \
        }                                                                                          \
        size_t i = 0;                                                                              \
        for (; i + 2 <= nb; i += 2) { /* hot */                                                    \
            BLOCK(w, a, arb, das, nb, i, nt, acc0, ex);                                            \
            BLOCK(w, a, arb, das, nb, i + 1, nt, acc1, ex);                                        \
        }                                                                                          \
        if (i < nb)                                                                                \
            BLOCK(w, a, arb, das, nb, i, nt, acc0, ex);                                            \
        for (int t = 0; t < nt; t++)                                                               \
            out[t * os] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + ex[t];                           \
    }                                                                                              \
    /* NAME_row's loop for one token over nr rows of WB-byte blocks. */                            \
    INLINE void name##_rows(int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a,     \
                            float *out)                                                            \
    {                                                                                              \
        __m256 acc0[GEN], acc1[GEN];                                                               \
        float ex[GEN];                                                                             \
        for (int r = 0; r < nr; r++) {                                                             \
            acc0[r] = acc1[r] = _mm256_setzero_ps();                                               \
            ex[r] = 0;                                                                             \
        }                                                                                          \
        size_t i = 0;                                                                              \
        for (; i + 2 <= nb; i += 2) { /* hot */                                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++)                                   \
                gen_prefetch(w + r * wrb + i * (WB), 2 * (WB));                                    \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++)                                   \
                BLOCK(w + r * wrb, a, 0, NULL, nb, i, 1, &acc0[r], &ex[r]);                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++)                                   \
                BLOCK(w + r * wrb, a, 0, NULL, nb, i + 1, 1, &acc1[r], &ex[r]);                    \
        }                                                                                          \
        if (i < nb) {                                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++)                                   \
                gen_prefetch(w + r * wrb + i * (WB), (WB));                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < nr; r++)                                   \
                BLOCK(w + r * wrb, a, 0, NULL, nb, i, 1, &acc0[r], &ex[r]);                        \
        }                                                                                          \
        for (int r = 0; r < nr; r++)                                                               \
            out[r] = hsum(_mm256_add_ps(acc0[r], acc1[r])) + ex[r];                                \
    }                                                                                              \
    DEFINE_GEN(name)

/* ---- Float types ---- */

INLINE __m256 load_f16x8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

INLINE __m256 load_bf16x8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* ELEM(p, i) loads 8 elements of type T at p + i; SCALAR(v) converts one. */
#define DEFINE_FLOAT_ROW(name, T, LOAD8, SCALAR)                                                   \
    INLINE void name##_row(size_t k, const uint8_t *w, const uint8_t *a, size_t arb,               \
                           const float *das, int nt, float *out, size_t os)                        \
    {                                                                                              \
        const T *x = (const T *)w;                                                                 \
        (void)das;                                                                                 \
        __m256 acc0[TOKENS], acc1[TOKENS];                                                         \
        for (int t = 0; t < nt; t++)                                                               \
            acc0[t] = acc1[t] = _mm256_setzero_ps();                                               \
        size_t i = 0;                                                                              \
        for (; i + 16 <= k; i += 16) { /* hot */                                                   \
            __m256 w0 = LOAD8(x + i), w1 = LOAD8(x + i + 8);                                       \
            for (int t = 0; t < nt; t++) {                                                         \
                const T *y = (const T *)(a + t * arb);                                             \
                acc0[t] = _mm256_fmadd_ps(w0, LOAD8(y + i), acc0[t]);                              \
                acc1[t] = _mm256_fmadd_ps(w1, LOAD8(y + i + 8), acc1[t]);                          \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < nt; t++) {                                                             \
            const T *y = (const T *)(a + t * arb);                                                 \
            float tail = 0;                                                                        \
            for (size_t j = i; j < k; j++)                                                         \
                tail += SCALAR(x[j]) * SCALAR(y[j]);                                               \
            out[t * os] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + tail;                            \
        }                                                                                          \
    }

/* One token over rows of k floats-or-halves: row by row, prefetching. */
#define DEFINE_FLOAT_GEN(name, T)                                                                  \
    INLINE void name##_rows(int nr, size_t k, const uint8_t *w, size_t wrb, const uint8_t *a,      \
                            float *out)                                                            \
    {                                                                                              \
        for (int r = 0; r < nr; r++) {                                                             \
            gen_prefetch(w + r * wrb, k * sizeof(T));                                              \
            name##_row(k, w + r * wrb, a, 0, NULL, 1, out + r, 0);                                 \
        }                                                                                          \
    }                                                                                              \
    DEFINE_GEN(name)

#define F32_LOAD8(p)  _mm256_loadu_ps(p)
#define F32_SCALAR(v) (v)
DEFINE_FLOAT_ROW(f32, float, F32_LOAD8, F32_SCALAR)
DEFINE_FLOAT_ROW(f16, uint16_t, load_f16x8, f16)
DEFINE_FLOAT_ROW(bf16, uint16_t, load_bf16x8, quant_bf16_to_f32)
DEFINE_FLOAT_GEN(f32, float)
DEFINE_FLOAT_GEN(f16, uint16_t)
DEFINE_FLOAT_GEN(bf16, uint16_t)
DEFINE_KERNELS(f32, 1, no_prep, 1)
DEFINE_KERNELS(f16, 1, no_prep, 1)
DEFINE_KERNELS(bf16, 1, no_prep, 1)

void quant_f16_to_f32_avx2(const void *src, float *dst, size_t n)
{
    const uint16_t *x = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load_f16x8(x + i));
    for (; i < n; i++)
        dst[i] = f16(x[i]);
}

void quant_f16_from_f32_avx2(const float *src, void *dst, size_t n)
{
    uint16_t *y = dst;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = quant_f32_to_f16(src[i]);
}

void quant_bf16_to_f32_avx2(const void *src, float *dst, size_t n)
{
    const uint16_t *x = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, load_bf16x8(x + i));
    for (; i < n; i++)
        dst[i] = quant_bf16_to_f32(x[i]);
}

/* ---- 32-element types ---- */

enum legacy_kind { K_Q8_0, K_Q4_0, K_Q5_0, K_IQ4_NL, K_Q4_1, K_Q5_1 };

/* Signed kinds pair with Q8_0 activations, the others (x = d q + m) with Q8_1. */
#define KIND_SIGNED(kind) ((kind) <= K_IQ4_NL)

INLINE size_t kind_bytes(int kind)
{
    switch (kind) {
    case K_Q8_0:
        return sizeof(struct quant_block_q8_0);
    case K_Q4_0:
        return sizeof(struct quant_block_q4_0);
    case K_Q5_0:
        return sizeof(struct quant_block_q5_0);
    case K_IQ4_NL:
        return sizeof(struct quant_block_iq4_nl);
    case K_Q4_1:
        return sizeof(struct quant_block_q4_1);
    default:
        return sizeof(struct quant_block_q5_1);
    }
}

/* Block b's 32 weights as bytes (int8 for the signed kinds, 0..31 for the
 * others), its scale d and offset m. */
INLINE __m256i legacy_decode(int kind, const uint8_t *b, float *d, float *m)
{
    switch (kind) {
    case K_Q8_0: {
        const struct quant_block_q8_0 *x = (const void *)b;
        *d = f16(x->d);
        return loadu(x->qs);
    }
    case K_Q4_0: {
        const struct quant_block_q4_0 *x = (const void *)b;
        *d = f16(x->d);
        return _mm256_sub_epi8(nibbles32(x->qs), _mm256_set1_epi8(8));
    }
    case K_Q5_0: {
        const struct quant_block_q5_0 *x = (const void *)b;
        *d = f16(x->d);
        __m256i q = _mm256_or_si256(nibbles32(x->qs), fifth_bits32(x->qh));
        return _mm256_sub_epi8(q, _mm256_set1_epi8(16));
    }
    case K_IQ4_NL: {
        const struct quant_block_iq4_nl *x = (const void *)b;
        *d = f16(x->d);
        __m256i values =
            _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)quant_iq4nl_values));
        return _mm256_shuffle_epi8(values, nibbles32(x->qs));
    }
    case K_Q4_1: {
        const struct quant_block_q4_1 *x = (const void *)b;
        *d = f16(x->d);
        *m = f16(x->m);
        return nibbles32(x->qs);
    }
    default: {
        const struct quant_block_q5_1 *x = (const void *)b;
        *d = f16(x->d);
        *m = f16(x->m);
        return _mm256_or_si256(nibbles32(x->qs), fifth_bits32(x->qh));
    }
    }
}

/* Signed weights use |w| . (a with w's sign) so that maddubs (unsigned x
 * signed) applies; the weights' side is computed once for all tokens. */
INLINE void legacy_block(int kind, const uint8_t *w, const uint8_t *a, size_t arb, const float *das,
                         size_t nb, size_t i, int nt, __m256 *acc, float *ex)
{
    float dw, mw = 0;
    __m256i q = legacy_decode(kind, w + i * kind_bytes(kind), &dw, &mw);
    __m256i uq = KIND_SIGNED(kind) ? _mm256_sign_epi8(q, q) : q;
    __m256 dwv = _mm256_set1_ps(dw);
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        if (KIND_SIGNED(kind)) {
            const struct quant_block_q8_0 *y = (const struct quant_block_q8_0 *)(a + t * arb) + i;
            __m256 da = das ? _mm256_broadcast_ss(das + t * nb + i) : _mm256_set1_ps(f16(y->d));
            __m256i p = pairs(_mm256_maddubs_epi16(uq, _mm256_sign_epi8(loadu(y->qs), q)));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dwv, da), acc[t]);
        } else {
            const struct quant_block_q8_1 *y = (const struct quant_block_q8_1 *)(a + t * arb) + i;
            float da = das ? das[2 * t * nb + i] : f16(y->d);
            float sa = das ? das[2 * t * nb + nb + i] : f16(y->s);
            __m256i p = pairs(_mm256_maddubs_epi16(uq, loadu(y->qs)));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dwv, _mm256_set1_ps(da)),
                                     acc[t]);
            ex[t] += mw * sa;
        }
    }
}

#define LEGACY(name, KIND, PREP)                                                                   \
    INLINE void name##_block(const uint8_t *w, const uint8_t *a, size_t arb, const float *das,     \
                             size_t nb, size_t i, int nt, __m256 *acc, float *ex)                  \
    {                                                                                              \
        legacy_block(KIND, w, a, arb, das, nb, i, nt, acc, ex);                                    \
    }                                                                                              \
    DEFINE_BLOCK_ROW(name, name##_block, kind_bytes(KIND))                                         \
    DEFINE_KERNELS(name, QUANT_QK, PREP, PREP_FLOATS)

LEGACY(q8_0, K_Q8_0, prep_q8_0)
LEGACY(q4_0, K_Q4_0, prep_q8_0)
LEGACY(q5_0, K_Q5_0, prep_q8_0)
LEGACY(iq4_nl, K_IQ4_NL, prep_q8_0)
LEGACY(q4_1, K_Q4_1, prep_q8_1)
LEGACY(q5_1, K_Q5_1, prep_q8_1)

void quant_q8_0_to_f32_avx2(const void *src, float *dst, size_t n)
{
    const struct quant_block_q8_0 *x = src;
    for (size_t i = 0; i < n / QUANT_QK; i++, dst += QUANT_QK) {
        __m256 d = _mm256_set1_ps(f16(x[i].d));
        for (int j = 0; j < QUANT_QK; j += 8) {
            __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].qs + j)));
            _mm256_storeu_ps(dst + j, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
    }
}

void quant_q4_0_to_f32_avx2(const void *src, float *dst, size_t n)
{
    const struct quant_block_q4_0 *x = src;
    for (size_t i = 0; i < n / QUANT_QK; i++, dst += QUANT_QK) {
        __m256 d = _mm256_set1_ps(f16(x[i].d));
        __m256i q = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        __m256i v[4] = {_mm256_cvtepi8_epi32(lo), _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)),
                        _mm256_cvtepi8_epi32(hi), _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))};
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(dst + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(v[j]), d));
    }
}

/* ---- Activation quantizers (bit-exact with quant_ref.c) ---- */

/* max |x| over 32 floats. */
INLINE float amax32(const __m256 v[4])
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1]));
    m = _mm256_max_ps(m, _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* round-half-even(v[j] * id) for 32 floats, packed to int8 in order;
 * *sum gets the sum of the quants. */
INLINE __m256i quantize32(const __m256 v[4], float id, int *sum)
{
    const __m256 mul = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; j++)
        q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], mul),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
    *sum = _mm_cvtsi128_si32(s4);
    /* packs works per 128-bit lane; the permute puts the 4-byte groups back in order. */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void quant_q8_0_from_f32_avx2(const float *src, void *dst, size_t n)
{
    struct quant_block_q8_0 *y = dst;
    for (size_t i = 0; i < n / QUANT_QK; i++, src += QUANT_QK) {
        __m256 v[4];
        for (int j = 0; j < 4; j++)
            v[j] = _mm256_loadu_ps(src + 8 * j);
        float amax = amax32(v);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum;
        y[i].d = _cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT);
        _mm256_storeu_si256((__m256i *)y[i].qs, quantize32(v, id, &sum));
    }
}

void quant_q8_1_from_f32_avx2(const float *src, void *dst, size_t n)
{
    struct quant_block_q8_1 *y = dst;
    for (size_t i = 0; i < n / QUANT_QK; i++, src += QUANT_QK) {
        __m256 v[4];
        for (int j = 0; j < 4; j++)
            v[j] = _mm256_loadu_ps(src + 8 * j);
        float amax = amax32(v), d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum;
        _mm256_storeu_si256((__m256i *)y[i].qs, quantize32(v, id, &sum));
        y[i].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        y[i].s = _cvtss_sh(d * (float)sum, _MM_FROUND_TO_NEAREST_INT);
    }
}

void quant_q8_k_from_f32_avx2(const float *src, void *dst, size_t n)
{
    struct quant_block_q8_k *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (size_t i = 0; i < n / QUANT_QK_K; i++, src += QUANT_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QUANT_QK_K; j += 8)
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(src + j)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        /* The first element of largest magnitude gives the sign. */
        __m256 am = _mm256_set1_ps(amax);
        float max = 0;
        for (int j = 0; j < QUANT_QK_K; j += 8) {
            __m256 x = _mm256_loadu_ps(src + j);
            int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, x), am, _CMP_EQ_OQ));
            if (hit) {
                max = src[j + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        float iscale = -127.0f / max;
        __m256 mul = _mm256_set1_ps(iscale);
        for (int j = 0; j < QUANT_QK_K; j += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 x = _mm256_mul_ps(_mm256_loadu_ps(src + j + 8 * k), mul);
                x = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(x), _mm256_set1_epi32(127));
            }
            for (int g = 0; g < 2; g++) {
                __m256i s = _mm256_add_epi32(q[2 * g], q[2 * g + 1]);
                __m128i s4 =
                    _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
                s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
                s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
                y[i].bsums[j / 16 + g] = (int16_t)_mm_cvtsi128_si32(s4);
            }
            __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), p);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- K-quants ---- */

/* Q4_K / Q5_K scales and mins as 16 bytes: 8 scales, then 8 mins. */
INLINE __m128i k4_unpack(const uint8_t *s)
{
    uint32_t a0, a1, a2;
    memcpy(&a0, s, 4);
    memcpy(&a1, s + 4, 4);
    memcpy(&a2, s + 8, 4);
    uint32_t sc_lo = a0 & 0x3f3f3f3f;
    uint32_t sc_hi = (a2 & 0x0f0f0f0f) | ((a0 >> 6) & 0x03030303) << 4;
    uint32_t mn_lo = a1 & 0x3f3f3f3f;
    uint32_t mn_hi = ((a2 >> 4) & 0x0f0f0f0f) | ((a1 >> 6) & 0x03030303) << 4;
    return _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)mn_lo, (int)mn_hi);
}

/* Q3_K's 16 scales as int8 in [-32, 31]. */
INLINE __m128i q3_unpack(const uint8_t *s)
{
    uint32_t a0, a1, a2;
    memcpy(&a0, s, 4);
    memcpy(&a1, s + 4, 4);
    memcpy(&a2, s + 8, 4);
    __m128i v = _mm_setr_epi32((int)((a0 & 0x0f0f0f0f) | (a2 & 0x03030303) << 4),
                               (int)((a1 & 0x0f0f0f0f) | ((a2 >> 2) & 0x03030303) << 4),
                               (int)(((a0 >> 4) & 0x0f0f0f0f) | ((a2 >> 4) & 0x03030303) << 4),
                               (int)(((a1 >> 4) & 0x0f0f0f0f) | ((a2 >> 6) & 0x03030303) << 4));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

INLINE const struct quant_block_q8_k *q8k(const uint8_t *a, size_t arb, int t, size_t i)
{
    return (const struct quant_block_q8_k *)(a + t * arb) + i;
}

/* acc[t] += d * da * isum[t] - dmin * da * imin[t], the sums as 8 int32 lanes. */
INLINE void k_finish(const uint8_t *a, size_t arb, size_t i, int nt, __m256 *acc, float d,
                     float dmin, const __m256i *isum, const __m256i *imin)
{
#pragma GCC unroll 4
    for (int t = 0; t < nt; t++) {
        float da = q8k(a, arb, t, i)->d;
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_set1_ps(d * da), acc[t]);
        if (imin)
            acc[t] =
                _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin[t]), _mm256_set1_ps(dmin * da), acc[t]);
    }
}

INLINE void q2_k_block(const uint8_t *w, const uint8_t *a, size_t arb, const float *das, size_t nb,
                       size_t i, int nt, __m256 *acc, float *ex)
{
    (void)das, (void)nb, (void)ex;
    const struct quant_block_q2_k *x = (const struct quant_block_q2_k *)w + i;
    __m128i s = _mm_loadu_si128((const __m128i *)x->scales);
    __m256i sc = _mm256_broadcastsi128_si256(_mm_and_si128(s, _mm_set1_epi8(0x0f)));
    __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0f)));
    __m256i isum[TOKENS], imin[TOKENS];
    for (int t = 0; t < nt; t++) {
        isum[t] = _mm256_setzero_si256();
        imin[t] = _mm256_madd_epi16(loadu(q8k(a, arb, t, i)->bsums), mins);
    }
    for (int h = 0; h < 2; h++) {
        __m256i q2 = loadu(x->qs + 32 * h);
        for (int s2 = 0; s2 < 4; s2++) {
            int c = 4 * h + s2;
            __m256i q = _mm256_and_si256(q2, _mm256_set1_epi8(3));
            __m256i scp = scale_pair(sc, 2 * c);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                __m256i p = _mm256_maddubs_epi16(q, loadu(q8k(a, arb, t, i)->qs + 32 * c));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, scp));
            }
            q2 = _mm256_srli_epi16(q2, 2);
        }
    }
    k_finish(a, arb, i, nt, acc, f16(x->d), f16(x->dmin), isum, imin);
}

/* Q3_K: the weights as u = q + 4 in 0..7 (unsigned for maddubs), and the
 * 4 * sum(sc * bsum) this adds taken off again. */
INLINE void q3_k_block(const uint8_t *w, const uint8_t *a, size_t arb, const float *das, size_t nb,
                       size_t i, int nt, __m256 *acc, float *ex)
{
    (void)das, (void)nb, (void)ex;
    const struct quant_block_q3_k *x = (const struct quant_block_q3_k *)w + i;
    __m128i s8 = q3_unpack(x->scales);
    __m256i sc = _mm256_broadcastsi128_si256(s8), sc16 = _mm256_cvtepi8_epi16(s8);
    __m256i isum[TOKENS];
    for (int t = 0; t < nt; t++) {
        __m256i corr = _mm256_madd_epi16(loadu(q8k(a, arb, t, i)->bsums), sc16);
        isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 2));
    }
    __m256i hm = loadu(x->hmask);
    for (int h = 0; h < 2; h++) {
        __m256i q2 = loadu(x->qs + 32 * h);
        for (int s2 = 0; s2 < 4; s2++) {
            int c = 4 * h + s2;
            __m256i hb = _mm256_slli_epi16(_mm256_and_si256(hm, _mm256_set1_epi8(1)), 2);
            __m256i q = _mm256_or_si256(_mm256_and_si256(q2, _mm256_set1_epi8(3)), hb);
            __m256i scp = scale_pair(sc, 2 * c);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                __m256i p = _mm256_maddubs_epi16(q, loadu(q8k(a, arb, t, i)->qs + 32 * c));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, scp));
            }
            q2 = _mm256_srli_epi16(q2, 2);
            hm = _mm256_srli_epi16(hm, 1);
        }
    }
    k_finish(a, arb, i, nt, acc, f16(x->d), 0, isum, NULL);
}

/* Q4_K and Q5_K share everything but the fifth bit (qh NULL for Q4_K). */
INLINE void k4_block(const uint16_t *dd, const uint8_t *scales, const uint8_t *qs,
                     const uint8_t *qh, const uint8_t *a, size_t arb, size_t i, int nt, __m256 *acc)
{
    __m128i sm = k4_unpack(scales);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    __m128i mn = _mm_unpackhi_epi64(sm, sm);
    __m256i mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn, mn)); /* m0 m0 m1 m1 ... */
    __m256i isum[TOKENS], imin[TOKENS];
    for (int t = 0; t < nt; t++) {
        isum[t] = _mm256_setzero_si256();
        imin[t] = _mm256_madd_epi16(loadu(q8k(a, arb, t, i)->bsums), mins);
    }
    __m256i hb = qh ? loadu(qh) : _mm256_setzero_si256();
    const __m256i low4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; j++) {
        __m256i q = loadu(qs + 32 * j);
        __m256i lo = _mm256_and_si256(q, low4),
                hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
            hi = _mm256_or_si256(
                hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
            hb = _mm256_srli_epi16(hb, 2);
        }
        __m256i s_lo = _mm256_shuffle_epi8(sc16, bcast16(2 * j));
        __m256i s_hi = _mm256_shuffle_epi8(sc16, bcast16(2 * j + 1));
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            const int8_t *y = q8k(a, arb, t, i)->qs + 64 * j;
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu(y)), s_lo);
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu(y + 32)), s_hi);
            isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(p0, p1));
        }
    }
    k_finish(a, arb, i, nt, acc, f16(dd[0]), f16(dd[1]), isum, imin);
}

INLINE void q4_k_block(const uint8_t *w, const uint8_t *a, size_t arb, const float *das, size_t nb,
                       size_t i, int nt, __m256 *acc, float *ex)
{
    (void)das, (void)nb, (void)ex;
    const struct quant_block_q4_k *x = (const struct quant_block_q4_k *)w + i;
    const uint16_t dd[2] = {x->d, x->dmin};
    k4_block(dd, x->scales, x->qs, NULL, a, arb, i, nt, acc);
}

INLINE void q5_k_block(const uint8_t *w, const uint8_t *a, size_t arb, const float *das, size_t nb,
                       size_t i, int nt, __m256 *acc, float *ex)
{
    (void)das, (void)nb, (void)ex;
    const struct quant_block_q5_k *x = (const struct quant_block_q5_k *)w + i;
    const uint16_t dd[2] = {x->d, x->dmin};
    k4_block(dd, x->scales, x->qs, x->qh, a, arb, i, nt, acc);
}

/* Q6_K: the weights as u = q + 32 in 0..63, and 32 * sum(sc * bsum) off. */
INLINE void q6_k_block(const uint8_t *w, const uint8_t *a, size_t arb, const float *das, size_t nb,
                       size_t i, int nt, __m256 *acc, float *ex)
{
    (void)das, (void)nb, (void)ex;
    const struct quant_block_q6_k *x = (const struct quant_block_q6_k *)w + i;
    __m128i s8 = _mm_loadu_si128((const __m128i *)x->scales);
    __m256i sc = _mm256_broadcastsi128_si256(s8), sc16 = _mm256_cvtepi8_epi16(s8);
    __m256i isum[TOKENS];
    for (int t = 0; t < nt; t++) {
        __m256i corr = _mm256_madd_epi16(loadu(q8k(a, arb, t, i)->bsums), sc16);
        isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
    }
    const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; h++) {
        __m256i qa = loadu(x->ql + 64 * h), qb = loadu(x->ql + 64 * h + 32);
        __m256i qh = loadu(x->qh + 32 * h);
        for (int c = 0; c < 4; c++) {
            __m256i lo4 = c & 1 ? qb : qa;
            lo4 = c < 2 ? _mm256_and_si256(lo4, low4)
                        : _mm256_and_si256(_mm256_srli_epi16(lo4, 4), low4);
            __m256i hi2;
            switch (c) { /* bits 2c, 2c + 1 of qh to bits 4, 5 */
            case 0:
                hi2 = _mm256_slli_epi16(qh, 4);
                break;
            case 1:
                hi2 = _mm256_slli_epi16(qh, 2);
                break;
            case 2:
                hi2 = qh;
                break;
            default:
                hi2 = _mm256_srli_epi16(qh, 2);
                break;
            }
            __m256i q = _mm256_or_si256(lo4, _mm256_and_si256(hi2, bits45));
            __m256i scp = scale_pair(sc, 8 * h + 2 * c);
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                const int8_t *y = q8k(a, arb, t, i)->qs + 128 * h + 32 * c;
                __m256i p = _mm256_maddubs_epi16(q, loadu(y));
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, scp));
            }
        }
    }
    k_finish(a, arb, i, nt, acc, f16(x->d), 0, isum, NULL);
}

DEFINE_BLOCK_ROW(q2_k, q2_k_block, sizeof(struct quant_block_q2_k))
DEFINE_BLOCK_ROW(q3_k, q3_k_block, sizeof(struct quant_block_q3_k))
DEFINE_BLOCK_ROW(q4_k, q4_k_block, sizeof(struct quant_block_q4_k))
DEFINE_BLOCK_ROW(q5_k, q5_k_block, sizeof(struct quant_block_q5_k))
DEFINE_BLOCK_ROW(q6_k, q6_k_block, sizeof(struct quant_block_q6_k))
DEFINE_KERNELS(q2_k, QUANT_QK_K, no_prep, 1)
DEFINE_KERNELS(q3_k, QUANT_QK_K, no_prep, 1)
DEFINE_KERNELS(q4_k, QUANT_QK_K, no_prep, 1)
DEFINE_KERNELS(q5_k, QUANT_QK_K, no_prep, 1)
DEFINE_KERNELS(q6_k, QUANT_QK_K, no_prep, 1)

/* Dequantization, the same f32 operations as quant_ref.c in the same
 * order (this file is built with -ffp-contract=off: no fused multiply-add
 * may change a rounding). */
void quant_q4_k_to_f32_avx2(const void *src, float *dst, size_t n)
{
    const struct quant_block_q4_k *x = src;
    for (size_t i = 0; i < n / QUANT_QK_K; i++, dst += QUANT_QK_K) {
        uint8_t sm[16];
        _mm_storeu_si128((__m128i *)sm, k4_unpack(x[i].scales));
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int j = 0; j < 4; j++) {
            __m256i q = loadu(x[i].qs + 32 * j);
            for (int half = 0; half < 2; half++) {
                int sub = 2 * j + half;
                __m256 d1 = _mm256_set1_ps(d * (float)sm[sub]);
                __m256 m1 = _mm256_set1_ps(dmin * (float)sm[8 + sub]);
                __m256i b = half ? _mm256_srli_epi16(q, 4) : q;
                b = _mm256_and_si256(b, _mm256_set1_epi8(0x0f));
                __m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
                __m256i v[4] = {
                    _mm256_cvtepu8_epi32(lo), _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)),
                    _mm256_cvtepu8_epi32(hi), _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))};
                for (int k = 0; k < 4; k++)
                    _mm256_storeu_ps(
                        dst + 32 * sub + 8 * k,
                        _mm256_sub_ps(_mm256_mul_ps(d1, _mm256_cvtepi32_ps(v[k])), m1));
            }
        }
    }
}

void quant_q6_k_to_f32_avx2(const void *src, float *dst, size_t n)
{
    const struct quant_block_q6_k *x = src;
    for (size_t i = 0; i < n / QUANT_QK_K; i++, dst += QUANT_QK_K) {
        float d = f16(x[i].d);
        for (int h = 0; h < 2; h++) {
            __m256i qa = loadu(x[i].ql + 64 * h), qb = loadu(x[i].ql + 64 * h + 32);
            __m256i qh = loadu(x[i].qh + 32 * h);
            for (int c = 0; c < 4; c++) {
                __m256i lo4 = c & 1 ? qb : qa;
                if (c >= 2)
                    lo4 = _mm256_srli_epi16(lo4, 4);
                lo4 = _mm256_and_si256(lo4, _mm256_set1_epi8(0x0f));
                __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), _mm256_set1_epi8(3));
                __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo4, _mm256_slli_epi16(hi2, 4)),
                                            _mm256_set1_epi8(32));
                __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
                __m256i v[4] = {
                    _mm256_cvtepi8_epi32(lo), _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)),
                    _mm256_cvtepi8_epi32(hi), _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))};
                int e0 = 128 * h + 32 * c;
                for (int k = 0; k < 4; k++) {
                    __m256 dl = _mm256_set1_ps(d * (float)x[i].scales[(e0 + 8 * k) / 16]);
                    _mm256_storeu_ps(dst + e0 + 8 * k, _mm256_mul_ps(dl, _mm256_cvtepi32_ps(v[k])));
                }
            }
        }
    }
}

/* ---- The table ---- */

#define WEIGHT(T, t, DOT, blk, bytes, to, from)                                                    \
    [ENGINE_TYPE_##                                                                                \
        T] = {ENGINE_TYPE_##T, ENGINE_TYPE_##DOT, blk, bytes, QUANT_LEVEL_AVX2, to, from,          \
              t##_vec_dot,     t##_gemm}

const struct quant_type quant_table_avx2[ENGINE_TYPE_COUNT] = {
    WEIGHT(F32, f32, F32, 1, 4, quant_f32_to_f32_ref, quant_f32_from_f32_ref),
    WEIGHT(F16, f16, F16, 1, 2, quant_f16_to_f32_avx2, quant_f16_from_f32_avx2),
    WEIGHT(BF16, bf16, BF16, 1, 2, quant_bf16_to_f32_avx2, quant_bf16_from_f32_ref),
    WEIGHT(Q8_0, q8_0, Q8_0, 32, 34, quant_q8_0_to_f32_avx2, quant_q8_0_from_f32_avx2),
    WEIGHT(Q4_0, q4_0, Q8_0, 32, 18, quant_q4_0_to_f32_avx2, NULL),
    WEIGHT(Q4_1, q4_1, Q8_1, 32, 20, quant_q4_1_to_f32_ref, NULL),
    WEIGHT(Q5_0, q5_0, Q8_0, 32, 22, quant_q5_0_to_f32_ref, NULL),
    WEIGHT(Q5_1, q5_1, Q8_1, 32, 24, quant_q5_1_to_f32_ref, NULL),
    WEIGHT(IQ4_NL, iq4_nl, Q8_0, 32, 18, quant_iq4_nl_to_f32_ref, NULL),
    WEIGHT(Q2_K, q2_k, Q8_K, 256, 84, quant_q2_k_to_f32_ref, NULL),
    WEIGHT(Q3_K, q3_k, Q8_K, 256, 110, quant_q3_k_to_f32_ref, NULL),
    WEIGHT(Q4_K, q4_k, Q8_K, 256, 144, quant_q4_k_to_f32_avx2, NULL),
    WEIGHT(Q5_K, q5_k, Q8_K, 256, 176, quant_q5_k_to_f32_ref, NULL),
    WEIGHT(Q6_K, q6_k, Q8_K, 256, 210, quant_q6_k_to_f32_avx2, NULL),
    [ENGINE_TYPE_Q8_1] = {ENGINE_TYPE_Q8_1, ENGINE_TYPE_Q8_1, 32, 36, QUANT_LEVEL_AVX2,
                          quant_q8_1_to_f32_ref, quant_q8_1_from_f32_avx2, NULL, NULL},
    [ENGINE_TYPE_Q8_K] = {ENGINE_TYPE_Q8_K, ENGINE_TYPE_Q8_K, 256, 292, QUANT_LEVEL_AVX2,
                          quant_q8_k_to_f32_ref, quant_q8_k_from_f32_avx2, NULL, NULL},
};

#else /* not x86: no AVX2 kernels, the reference is used */

const struct quant_type quant_table_avx2[ENGINE_TYPE_COUNT];

#endif
