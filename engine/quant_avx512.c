/* quant_avx512.c: AVX-512 (F, BW, VL) + VNNI kernels for the types that
 * dominate real models: the 32-element types two blocks per register with
 * vpdpbusd (the signed ones against a tile of activations prepared once
 * per group of tokens), and Q4_K, Q5_K, Q6_K with vpmaddubsw + vpdpwssd,
 * 8 tokens per tile. A single token (vec_dot) runs 256-bit VNNI code
 * that reproduces the 512-bit lanes, so gemm and vec_dot still agree bit
 * for bit. Only this file is compiled with those flags, and nothing in it
 * may run before cpu.c has seen the CPU and the OS (ZMM state) support
 * them. Types not here fall back to quant_avx2.c. Block sums are exact
 * integers, as in quant_ref.c; only the order of f32 accumulation differs. */
#include "quant.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

#include "quant_gen.h"

#define INLINE static inline __attribute__((always_inline))

enum {
    TOKENS = 8, /* activation rows per group: each weight block is decoded once per group */
    ROWS = 16,  /* weight rows kept in L1 while the token groups walk them */
};

/* ---- Helpers ---- */

INLINE float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

INLINE __m256i load256(const void *p)
{
    return _mm256_loadu_si256((const __m256i *)p);
}

INLINE __m512i load512(const void *p)
{
    return _mm512_loadu_si512(p);
}

INLINE __m512i join(__m256i lo, __m256i hi)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* s0 in lanes 0..7, s1 in lanes 8..15. */
INLINE __m512 two_scales(float s0, float s1)
{
    return _mm512_mask_mov_ps(_mm512_set1_ps(s0), 0xff00, _mm512_set1_ps(s1));
}

/* The 32 nibbles of a legacy block as bytes: elements 0..15 then 16..31. */
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
    return _mm256_maskz_mov_epi8((__mmask32)v, _mm256_set1_epi8(0x10));
}

/* ---- Drivers (as in quant_avx2.c; one token: quant_gen.h) ---- */

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
                case 7:                                                                            \
                    name##_row(nb, wr, at, arb, pd, 7, o, os);                                     \
                    break;                                                                         \
                case 6:                                                                            \
                    name##_row(nb, wr, at, arb, pd, 6, o, os);                                     \
                    break;                                                                         \
                case 5:                                                                            \
                    name##_row(nb, wr, at, arb, pd, 5, o, os);                                     \
                    break;                                                                         \
                case 4:                                                                            \
                    name##_row(nb, wr, at, arb, pd, 4, o, os);                                     \
                    break;                                                                         \
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

/* Sum of 8 lanes, in a fixed order. */
INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* hsum8 of v[0..3] into out[0..3], two rows per instruction: every lane
 * sees hsum8's additions with the same operands in the same order. */
INLINE void hsum8x4(const __m256 *v, float *out)
{
    __m256 s01 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20),
                               _mm256_permute2f128_ps(v[0], v[1], 0x31));
    __m256 s23 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[3], 0x20),
                               _mm256_permute2f128_ps(v[2], v[3], 0x31));
    /* 128-bit lane 0 folds rows 0 and 2 like movehl, lane 1 rows 1 and 3. */
    __m256 f = _mm256_add_ps(_mm256_shuffle_ps(s01, s23, 0x44), _mm256_shuffle_ps(s01, s23, 0xee));
    f = _mm256_add_ps(f, _mm256_movehdup_ps(f));
    _Alignas(32) float l[8];
    _mm256_store_ps(l, f);
    out[0] = l[0], out[1] = l[4], out[2] = l[2], out[3] = l[6];
}

/* Sum of 16 lanes: the two halves lane by lane, then hsum8. The
 * single-token paths below keep the halves in two __m256 and end the same
 * way, so their sums are bit-identical to the 512-bit ones. */
INLINE float hsum16(__m512 v)
{
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}

/* hsum16(v[t]) + ex[t] for 8 tokens at once: each step adds the same
 * lanes in the same order as hsum16 and hsum8, two to eight tokens per
 * instruction, so every sum is bit for bit the scalar one. */
INLINE void finish8(const __m512 *v, const float *ex, float *out, size_t os)
{
    __m512 x[4], s[2];
    for (int p = 0; p < 4; p++) /* halves of 256: [x_2p | x_2p+1], x_t = lo(v_t) + hi(v_t) */
        x[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xee));
    for (int h = 0; h < 2; h++) /* quarters: [s_4h | ... | s_4h+3], s_t = lo(x_t) + hi(x_t) */
        s[h] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * h], x[2 * h + 1], 0x88),
                             _mm512_shuffle_f32x4(x[2 * h], x[2 * h + 1], 0xdd));
    /* In 128-bit lane k: s_k and s_k+4 folded like movehl, then like movehdup. */
    __m512 f =
        _mm512_add_ps(_mm512_shuffle_ps(s[0], s[1], 0x44), _mm512_shuffle_ps(s[0], s[1], 0xee));
    __m512 r = _mm512_add_ps(f, _mm512_movehdup_ps(f));
    const __m512i at = _mm512_set_epi32(7, 7, 7, 3, 6, 6, 6, 2, 5, 5, 5, 1, 4, 4, 4, 0);
    r = _mm512_add_ps(r, _mm512_permutexvar_ps(at, _mm512_castps256_ps512(_mm256_loadu_ps(ex))));
    /* Token k in lane 4k, token k + 4 in lane 4k + 2. */
    __m128 q[4] = {_mm512_castps512_ps128(r), _mm512_extractf32x4_ps(r, 1),
                   _mm512_extractf32x4_ps(r, 2), _mm512_extractf32x4_ps(r, 3)};
    for (int k = 0; k < 4; k++) {
        _mm_store_ss(out + k * os, q[k]);
        _mm_store_ss(out + (k + 4) * os, _mm_movehl_ps(q[k], q[k]));
    }
}

INLINE void finish_row(int nt, const __m512 *acc0, const __m512 *acc1, const float *ex, float *out,
                       size_t os)
{
    if (nt == 8) {
        __m512 v[8];
        for (int t = 0; t < 8; t++)
            v[t] = _mm512_add_ps(acc0[t], acc1[t]);
        finish8(v, ex, out, os);
        return;
    }
    for (int t = 0; t < nt; t++)
        out[t * os] = hsum16(_mm512_add_ps(acc0[t], acc1[t])) + ex[t];
}

/* ---- 32-element types: two blocks per register ---- */

enum legacy_kind { K_Q8_0, K_Q4_0, K_Q5_0, K_IQ4_NL, K_Q4_1, K_Q5_1 };

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

INLINE __m256i legacy_decode(int kind, const uint8_t *b, float *d, float *m)
{
    switch (kind) {
    case K_Q8_0: {
        const struct quant_block_q8_0 *x = (const void *)b;
        *d = f16(x->d);
        return load256(x->qs);
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

/* das[0], das[1] in lanes 0..7 and 8..15. */
INLINE __m512 two_scales_at(const float *das)
{
    __m128 v = _mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)das));
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

/* Blocks i and i + 1 (only i when !two; the upper half then multiplies
 * zero weights by a zero scale and reads nothing). Signed weights: |w|
 * against a with w's sign, both prepared once for all tokens. */
INLINE void legacy_pair(int kind, bool two, const uint8_t *w, const uint8_t *a, size_t arb,
                        const float *das, size_t nb, size_t i, int nt, __m512 *acc, float *ex)
{
    const size_t wb = kind_bytes(kind);
    float d0, d1 = 0, m0 = 0, m1 = 0;
    __m256i q0 = legacy_decode(kind, w + i * wb, &d0, &m0);
    __m256i q1 = two ? legacy_decode(kind, w + (i + 1) * wb, &d1, &m1) : _mm256_setzero_si256();
    __m512i q = join(q0, q1);
    __m512i uq = KIND_SIGNED(kind) ? _mm512_abs_epi8(q) : q;
    __mmask64 neg = _mm512_movepi8_mask(q);
    __m512 wsc = two_scales(d0, d1);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        const uint8_t *at = a + t * arb;
        /* das: d of the row's blocks from das[t * nb] (Q8_0) or das[2 t nb] (Q8_1). */
        const float *dt = das ? das + (KIND_SIGNED(kind) ? 1 : 2) * t * nb + i : NULL;
        __m512 asc;
        __m512i y;
        if (KIND_SIGNED(kind)) {
            const struct quant_block_q8_0 *b = (const struct quant_block_q8_0 *)at + i;
            if (dt)
                asc = two ? two_scales_at(dt) : _mm512_set1_ps(dt[0]);
            else
                asc = two_scales(f16(b[0].d), two ? f16(b[1].d) : 0.0f);
            y = two ? join(load256(b[0].qs), load256(b[1].qs))
                    : _mm512_castsi256_si512(load256(b[0].qs));
            y = _mm512_mask_sub_epi8(y, neg, _mm512_setzero_si512(), y);
        } else {
            const struct quant_block_q8_1 *b = (const struct quant_block_q8_1 *)at + i;
            if (dt)
                asc = two ? two_scales_at(dt) : _mm512_set1_ps(dt[0]);
            else
                asc = two_scales(f16(b[0].d), two ? f16(b[1].d) : 0.0f);
            ex[t] += m0 * (dt ? dt[nb] : f16(b[0].s));
            if (two)
                ex[t] += m1 * (dt ? dt[nb + 1] : f16(b[1].s));
            y = two ? join(load256(b[0].qs), load256(b[1].qs))
                    : _mm512_castsi256_si512(load256(b[0].qs));
        }
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), uq, y);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(wsc, asc), acc[t]);
    }
}

/* One token, one block in a 256-bit register with VNNI: with 512-bit
 * registers Intel cores lose a vector port, which a single token cannot
 * make up for. acc is the half of a 512-bit accumulator the block would
 * occupy in legacy_pair, and the products are the same, so the sums are
 * bit for bit those of the 512-bit path. */
INLINE void legacy_one(int kind, const uint8_t *w, const uint8_t *a, size_t i, __m256 *acc,
                       float *ex)
{
    float dw, mw = 0;
    __m256i q = legacy_decode(kind, w + i * kind_bytes(kind), &dw, &mw);
    __m256i p;
    float da;
    if (KIND_SIGNED(kind)) {
        const struct quant_block_q8_0 *y = (const struct quant_block_q8_0 *)a + i;
        da = f16(y->d);
        p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(q, q),
                                _mm256_sign_epi8(load256(y->qs), q));
    } else {
        const struct quant_block_q8_1 *y = (const struct quant_block_q8_1 *)a + i;
        da = f16(y->d);
        p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, load256(y->qs));
        *ex += mw * f16(y->s);
    }
    __m256 sc = _mm256_mul_ps(_mm256_set1_ps(dw), _mm256_set1_ps(da));
    *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, *acc);
}

/* legacy_pair's loop for one token: pairs alternate between two 512-bit
 * accumulators, here four halves. */
INLINE float legacy_row1(int kind, size_t nb, const uint8_t *w, const uint8_t *a)
{
    __m256 lo0 = _mm256_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    float ex = 0;
    size_t i = 0;
    for (; i + 4 <= nb; i += 4) { /* hot */
        legacy_one(kind, w, a, i, &lo0, &ex);
        legacy_one(kind, w, a, i + 1, &hi0, &ex);
        legacy_one(kind, w, a, i + 2, &lo1, &ex);
        legacy_one(kind, w, a, i + 3, &hi1, &ex);
    }
    if (i + 2 <= nb) {
        legacy_one(kind, w, a, i, &lo0, &ex);
        legacy_one(kind, w, a, i + 1, &hi0, &ex);
        i += 2;
    }
    if (i < nb)
        legacy_one(kind, w, a, i, &lo1, &ex);
    return hsum8(_mm256_add_ps(_mm256_add_ps(lo0, lo1), _mm256_add_ps(hi0, hi1))) + ex;
}

/* nibbles32 with one load into both halves and one masked shift. */
INLINE __m256i nibbles32_bcast(const uint8_t *qs)
{
    __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_mask_srli_epi16(v, 0xff00, v, 4), _mm256_set1_epi8(0x0f));
}

/* Q4_0 and Q5_0 quants without their offset: q + off in 0..15 or 0..31. */
INLINE __m256i offset_quants(int kind, const uint8_t *b)
{
    if (kind == K_Q4_0)
        return nibbles32_bcast(((const struct quant_block_q4_0 *)b)->qs);
    const struct quant_block_q5_0 *x = (const void *)b;
    return _mm256_or_si256(nibbles32_bcast(x->qs), fifth_bits32(x->qh));
}

#define KIND_OFFSET(kind) ((kind) == K_Q4_0 || (kind) == K_Q5_0)

/* legacy_one for block i of nr rows wrb bytes apart, each into its own
 * accumulator acc[r][h], the activation block loaded once. The rows'
 * scales dw * da are one conversion and one product for all of them
 * (every 32-element block starts with its F16 d). Q4_0 and Q5_0 feed
 * vpdpbusd their unsigned q + off and start each lane at -off times the
 * sum of its four activations, once for all rows: the lane's exact
 * integer is legacy_one's, with one instruction per row instead of four. */
INLINE void legacy_rows_block(int kind, int nr, const uint8_t *w, size_t wrb, const uint8_t *a,
                              size_t i, __m256 (*acc)[4], int h, float *ex)
{
    const size_t wb = kind_bytes(kind);
    float da, sa = 0;
    __m256i y, base = _mm256_setzero_si256();
    if (KIND_SIGNED(kind)) {
        const struct quant_block_q8_0 *yb = (const struct quant_block_q8_0 *)a + i;
        da = f16(yb->d);
        y = load256(yb->qs);
        if (KIND_OFFSET(kind))
            base = _mm256_sub_epi32(
                base, _mm256_dpbusd_epi32(base, _mm256_set1_epi8(kind == K_Q4_0 ? 8 : 16), y));
    } else {
        const struct quant_block_q8_1 *yb = (const struct quant_block_q8_1 *)a + i;
        da = f16(yb->d);
        sa = f16(yb->s);
        y = load256(yb->qs);
    }
    uint64_t d4 = 0;
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        uint16_t d;
        memcpy(&d, w + r * wrb + i * wb, sizeof(d));
        d4 |= (uint64_t)d << 16 * r;
    }
    __m128i dh = _mm_cvtsi64_si128((long long)d4);
    __m128 sc4 = _mm_mul_ps(_mm_cvtph_ps(dh), _mm_set1_ps(da)); /* dw * da of row r in lane r */
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        const uint8_t *b = w + r * wrb + i * wb;
        __m256i p;
        if (KIND_OFFSET(kind)) {
            p = _mm256_dpbusd_epi32(base, offset_quants(kind, b), y);
        } else {
            float dw, mw = 0;
            __m256i q = legacy_decode(kind, b, &dw, &mw);
            if (KIND_SIGNED(kind))
                p = _mm256_dpbusd_epi32(base, _mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
            else
                p = _mm256_dpbusd_epi32(base, q, y);
            if (!KIND_SIGNED(kind))
                ex[r] += mw * sa;
        }
        __m256 sc = _mm256_permutexvar_ps(_mm256_set1_epi32(r), _mm256_castps128_ps256(sc4));
        acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), sc, acc[r][h]);
    }
}

/* legacy_row1 for nr rows wrb bytes apart: block by block, each row into
 * its own four halves (the same block to the same half). */
INLINE void legacy_rows(int kind, int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a,
                        float *out)
{
    __m256 acc[GEN][4]; /* lo0, hi0, lo1, hi1 of legacy_row1 */
    float ex[GEN];
    for (int r = 0; r < nr; r++) {
        for (int h = 0; h < 4; h++)
            acc[r][h] = _mm256_setzero_ps();
        ex[r] = 0;
    }
    size_t i = 0;
    for (; i + 4 <= nb; i += 4) { /* hot */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * kind_bytes(kind), 4 * kind_bytes(kind));
        legacy_rows_block(kind, nr, w, wrb, a, i, acc, 0, ex);
        legacy_rows_block(kind, nr, w, wrb, a, i + 1, acc, 1, ex);
        legacy_rows_block(kind, nr, w, wrb, a, i + 2, acc, 2, ex);
        legacy_rows_block(kind, nr, w, wrb, a, i + 3, acc, 3, ex);
    }
    if (i + 2 <= nb) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * kind_bytes(kind), 2 * kind_bytes(kind));
        legacy_rows_block(kind, nr, w, wrb, a, i, acc, 0, ex);
        legacy_rows_block(kind, nr, w, wrb, a, i + 1, acc, 1, ex);
        i += 2;
    }
    if (i < nb) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * kind_bytes(kind), kind_bytes(kind));
        legacy_rows_block(kind, nr, w, wrb, a, i, acc, 2, ex);
    }
    __m256 v[GEN];
    for (int r = 0; r < nr; r++)
        v[r] =
            _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][2]), _mm256_add_ps(acc[r][1], acc[r][3]));
    if (nr == 4) {
        float s[4];
        hsum8x4(v, s);
        for (int r = 0; r < 4; r++)
            out[r] = s[r] + ex[r];
        return;
    }
    for (int r = 0; r < nr; r++)
        out[r] = hsum8(v[r]) + ex[r];
}

#define LEGACY(name, KIND, PREP)                                                                   \
    INLINE void name##_rows(int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a,     \
                            float *out)                                                            \
    {                                                                                              \
        legacy_rows(KIND, nr, nb, w, wrb, a, out);                                                 \
    }                                                                                              \
    DEFINE_GEN(name)                                                                               \
    INLINE void name##_row(size_t nb, const uint8_t *w, const uint8_t *a, size_t arb,              \
                           const float *das, int nt, float *out, size_t os)                        \
    {                                                                                              \
        if (nt == 1) {                                                                             \
            out[0] = legacy_row1(KIND, nb, w, a);                                                  \
            return;                                                                                \
        }                                                                                          \
        __m512 acc0[TOKENS], acc1[TOKENS];                                                         \
        float ex[TOKENS];                                                                          \
        for (int t = 0; t < nt; t++) {                                                             \
            acc0[t] = acc1[t] = _mm512_setzero_ps();                                               \
            ex[t] = 0;                                                                             \
        }                                                                                          \
        size_t i = 0;                                                                              \
        for (; i + 4 <= nb; i += 4) { /* hot */                                                    \
            legacy_pair(KIND, true, w, a, arb, das, nb, i, nt, acc0, ex);                          \
            legacy_pair(KIND, true, w, a, arb, das, nb, i + 2, nt, acc1, ex);                      \
        }                                                                                          \
        if (i + 2 <= nb) {                                                                         \
            legacy_pair(KIND, true, w, a, arb, das, nb, i, nt, acc0, ex);                          \
            i += 2;                                                                                \
        }                                                                                          \
        if (i < nb)                                                                                \
            legacy_pair(KIND, false, w, a, arb, das, nb, i, nt, acc1, ex);                         \
        finish_row(nt, acc0, acc1, ex, out, os);                                                   \
    }                                                                                              \
    DEFINE_KERNELS(name, QUANT_QK, PREP, PREP_FLOATS)

LEGACY(q8_0, K_Q8_0, prep_q8_0)
LEGACY(q4_0, K_Q4_0, prep_q8_0)
LEGACY(q5_0, K_Q5_0, prep_q8_0)
LEGACY(iq4_nl, K_IQ4_NL, prep_q8_0)
LEGACY(q4_1, K_Q4_1, prep_q8_1)
LEGACY(q5_1, K_Q5_1, prep_q8_1)

/* ---- Signed 32-element types, gemm over an unsigned activation tile ----
 *
 * vpdpbusd multiplies unsigned by signed bytes, so legacy_pair feeds it |w|
 * and a with w's sign, one masked subtract per token. Here the tile holds
 * each activation as a + 128 (a is in [-127, 127], so in [1, 255]) and the
 * accumulator starts at -128 * (sum of the lane's four w), once per pair of
 * weight blocks: sum (a + 128) w - 128 sum w = sum a w, the same exact
 * integers (|any partial sum| < 2^18; w = -128 included). The tile also
 * holds each pair's activation scales as the 16 floats two_scales gives,
 * so the f32 steps are legacy_pair's, operand for operand. */

enum {
    PAIR_BYTES = 128,      /* per token and pair of blocks: 64 bytes of a + 128, 16 scales */
    TILE_BYTES = 65536,    /* the tile, on the stack: 8 tokens of 128 blocks, 4 of 256 */
    CHUNK_BYTES = 1 << 19, /* weight rows per tile preparation: about half of L2 */
};

/* nt activation rows of nb Q8_0 blocks into the tile, row t at t * np *
 * PAIR_BYTES (np pairs). An odd last block has zeros above it: bytes 128
 * (a = 0) and scales 0, as two_scales(d, 0). */
INLINE void tile_prep(const uint8_t *a, size_t arb, int nt, size_t nb, uint8_t *tile)
{
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    for (int t = 0; t < nt; t++) {
        const struct quant_block_q8_0 *y = (const struct quant_block_q8_0 *)(a + t * arb);
        uint8_t *dst = tile + (size_t)t * ((nb + 1) / 2) * PAIR_BYTES;
        for (size_t i = 0; i < nb; i += 2, dst += PAIR_BYTES) {
            bool two = i + 1 < nb;
            __m256i hi = two ? load256(y[i + 1].qs) : _mm256_setzero_si256();
            _mm512_store_si512(dst, _mm512_xor_si512(join(load256(y[i].qs), hi), bias));
            _mm512_store_ps(dst + 64, two_scales(f16(y[i].d), two ? f16(y[i + 1].d) : 0.0f));
        }
    }
}

/* two_scales of the F16 d that starts blocks b0 and b1 (0 without b1),
 * with one conversion and one permute. */
INLINE __m512 two_scales_f16(const uint8_t *b0, const uint8_t *b1)
{
    uint16_t h0, h1 = 0;
    memcpy(&h0, b0, sizeof(h0));
    if (b1)
        memcpy(&h1, b1, sizeof(h1));
    __m128 v = _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1));
    const __m512i idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

/* The nibbles of two legacy blocks as bytes, 16 per 128-bit lane: low
 * then high ones of qs0, then of qs1 (nibbles32 of each, joined). */
INLINE __m512i nibbles64(const uint8_t *qs0, const uint8_t *qs1)
{
    __m512i v = join(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs0)),
                     _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs1)));
    v = _mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4);
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
}

/* join(legacy_decode(b0), legacy_decode(b1)) for a signed kind, each step
 * on both blocks at once. */
INLINE __m512i signed_decode2(int kind, const uint8_t *b0, const uint8_t *b1)
{
    switch (kind) {
    case K_Q8_0:
        return join(load256(((const struct quant_block_q8_0 *)b0)->qs),
                    load256(((const struct quant_block_q8_0 *)b1)->qs));
    case K_Q4_0:
        return _mm512_sub_epi8(nibbles64(((const struct quant_block_q4_0 *)b0)->qs,
                                         ((const struct quant_block_q4_0 *)b1)->qs),
                               _mm512_set1_epi8(8));
    case K_Q5_0: {
        const struct quant_block_q5_0 *x0 = (const void *)b0, *x1 = (const void *)b1;
        uint32_t h0, h1;
        memcpy(&h0, x0->qh, sizeof(h0));
        memcpy(&h1, x1->qh, sizeof(h1));
        __m512i hb = _mm512_maskz_mov_epi8((__mmask64)h1 << 32 | h0, _mm512_set1_epi8(0x10));
        __m512i q = _mm512_or_si512(nibbles64(x0->qs, x1->qs), hb);
        return _mm512_sub_epi8(q, _mm512_set1_epi8(16));
    }
    default: {
        __m512i values =
            _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)quant_iq4nl_values));
        return _mm512_shuffle_epi8(values, nibbles64(((const struct quant_block_iq4_nl *)b0)->qs,
                                                     ((const struct quant_block_iq4_nl *)b1)->qs));
    }
    }
}

/* legacy_pair for a signed kind against the tile (pair of blocks i, i + 1
 * at p, tokens ts bytes apart). The blocks of these kinds start with d. */
INLINE void signed_pair(int kind, bool two, const uint8_t *w, const uint8_t *p, size_t ts, size_t i,
                        int nt, __m512 *acc)
{
    const uint8_t *b0 = w + i * kind_bytes(kind), *b1 = two ? b0 + kind_bytes(kind) : NULL;
    float unused;
    __m512i q = two ? signed_decode2(kind, b0, b1)
                    : _mm512_zextsi256_si512(legacy_decode(kind, b0, &unused, &unused));
    __m512i corr = _mm512_sub_epi32(
        _mm512_setzero_si512(),
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), q));
    __m512 wsc = two_scales_f16(b0, b1);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        const uint8_t *pt = p + t * ts;
        __m512i s = _mm512_dpbusd_epi32(corr, _mm512_load_si512(pt), q);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wsc, _mm512_load_ps(pt + 64)),
                                 acc[t]);
    }
}

/* The LEGACY row loop on the tile: the same pairs into the same
 * accumulators, and the same + 0 at the end (ex), as legacy_row1. */
INLINE void signed_row(int kind, size_t nb, const uint8_t *w, const uint8_t *tile, int nt,
                       float *out, size_t os)
{
    const size_t ts = (nb + 1) / 2 * PAIR_BYTES;
    __m512 acc0[TOKENS], acc1[TOKENS];
    float ex[TOKENS];
    for (int t = 0; t < nt; t++) {
        acc0[t] = acc1[t] = _mm512_setzero_ps();
        ex[t] = 0;
    }
    size_t i = 0;
    for (; i + 4 <= nb; i += 4) { /* hot */
        signed_pair(kind, true, w, tile + i / 2 * PAIR_BYTES, ts, i, nt, acc0);
        signed_pair(kind, true, w, tile + (i / 2 + 1) * PAIR_BYTES, ts, i + 2, nt, acc1);
    }
    if (i + 2 <= nb) {
        signed_pair(kind, true, w, tile + i / 2 * PAIR_BYTES, ts, i, nt, acc0);
        i += 2;
    }
    if (i < nb)
        signed_pair(kind, false, w, tile + i / 2 * PAIR_BYTES, ts, i, nt, acc1);
    finish_row(nt, acc0, acc1, ex, out, os);
}

#define SIGNED_ROWS(KIND, N)                                                                       \
    for (size_t r = rc; r < re; r++)                                                               \
        signed_row(KIND, nb, wb + r * wrb, tile, N, out + t * os + r, os);

/* Rows in chunks of about CHUNK_BYTES (they stay in L2), each chunk
 * against every group of tokens, prepared once per chunk: preparing per
 * ROWS rows cost 10 %. A group is TOKENS tokens, fewer when the rows are
 * too long for the tile; LEGACY's gemm takes rows too long for 4. A lone
 * token takes legacy_row1, as vec_dot does. */
#define SIGNED_GEMM(name, KIND)                                                                    \
    static void name##_gemm_tile(size_t k, const void *w, size_t wrb, size_t r0, size_t r1,        \
                                 const void *a, size_t arb, size_t m, float *out, size_t os)       \
    {                                                                                              \
        size_t nb = k / QUANT_QK, fit = TILE_BYTES / ((nb + 1) / 2 * PAIR_BYTES);                  \
        size_t group = fit < TOKENS ? fit : TOKENS;                                                \
        if (m == 1 || group < TOKENS / 2) {                                                        \
            name##_gemm(k, w, wrb, r0, r1, a, arb, m, out, os);                                    \
            return;                                                                                \
        }                                                                                          \
        const uint8_t *wb = w, *ab = a;                                                            \
        _Alignas(64) uint8_t tile[TILE_BYTES];                                                     \
        size_t chunk = CHUNK_BYTES / wrb > ROWS ? CHUNK_BYTES / wrb : ROWS;                        \
        for (size_t rc = r0; rc < r1; rc += chunk) {                                               \
            size_t re = r1 - rc > chunk ? rc + chunk : r1;                                         \
            for (size_t t = 0; t < m; t += group) {                                                \
                const uint8_t *at = ab + t * arb;                                                  \
                int nt = m - t < group ? (int)(m - t) : (int)group;                                \
                if (nt == 1) {                                                                     \
                    for (size_t r = rc; r < re; r++)                                               \
                        out[t * os + r] = legacy_row1(KIND, nb, wb + r * wrb, at);                 \
                    continue;                                                                      \
                }                                                                                  \
                tile_prep(at, arb, nt, nb, tile);                                                  \
                switch (nt) {                                                                      \
                case 8:                                                                            \
                    SIGNED_ROWS(KIND, 8)                                                           \
                    break;                                                                         \
                case 7:                                                                            \
                    SIGNED_ROWS(KIND, 7)                                                           \
                    break;                                                                         \
                case 6:                                                                            \
                    SIGNED_ROWS(KIND, 6)                                                           \
                    break;                                                                         \
                case 5:                                                                            \
                    SIGNED_ROWS(KIND, 5)                                                           \
                    break;                                                                         \
                case 4:                                                                            \
                    SIGNED_ROWS(KIND, 4)                                                           \
                    break;                                                                         \
                case 3:                                                                            \
                    SIGNED_ROWS(KIND, 3)                                                           \
                    break;                                                                         \
                default:                                                                           \
                    SIGNED_ROWS(KIND, 2)                                                           \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

SIGNED_GEMM(q8_0, K_Q8_0)
SIGNED_GEMM(q4_0, K_Q4_0)
SIGNED_GEMM(q5_0, K_Q5_0)
SIGNED_GEMM(iq4_nl, K_IQ4_NL)

/* ---- K-quants: one super-block at a time ---- */

INLINE const struct quant_block_q8_k *q8k(const uint8_t *a, size_t arb, int t, size_t i)
{
    return (const struct quant_block_q8_k *)(a + t * arb) + i;
}

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

/* 64 elements (int16 lanes 0..31 of a maddubs result) under scales g and
 * g + 1 of 32 each: permutation index g in lanes 0..15, g + 1 in 16..31. */
INLINE __m512i halves_index(int g)
{
    return _mm512_mask_mov_epi16(_mm512_set1_epi16((short)g), 0xffff0000u,
                                 _mm512_set1_epi16((short)(g + 1)));
}

/* 64 elements under scales g .. g + 3 of 16 each: g + k in 128-bit lane k. */
INLINE __m512i quarters_index(int g)
{
    const __m512i k =
        _mm512_set_epi64(0x0003000300030003, 0x0003000300030003, 0x0002000200020002,
                         0x0002000200020002, 0x0001000100010001, 0x0001000100010001, 0, 0);
    return _mm512_add_epi16(k, _mm512_set1_epi16((short)g));
}

INLINE void k4_block(const uint16_t *dd, const uint8_t *scales, const uint8_t *qs,
                     const uint8_t *qh, const uint8_t *a, size_t arb, size_t i, int nt, __m512 *acc)
{
    __m128i sm = k4_unpack(scales);
    __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sm)); /* scales in lanes 0..7 */
    __m128i mn = _mm_unpackhi_epi64(sm, sm);
    __m256i mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn, mn)); /* m0 m0 m1 m1 ... */
    __m512i isum[TOKENS];
    for (int t = 0; t < nt; t++)
        isum[t] = _mm512_setzero_si512();
    __m256i hb = qh ? load256(qh) : _mm256_setzero_si256();
    const __m256i low4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; j++) {
        __m256i q = load256(qs + 32 * j);
        __m256i lo = _mm256_and_si256(q, low4),
                hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
            hi = _mm256_or_si256(
                hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
            hb = _mm256_srli_epi16(hb, 2);
        }
        __m512i wq = join(lo, hi);
        __m512i scv = _mm512_permutexvar_epi16(halves_index(2 * j), sc16);
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            __m512i p = _mm512_maddubs_epi16(wq, load512(q8k(a, arb, t, i)->qs + 64 * j));
            isum[t] = _mm512_dpwssd_epi32(isum[t], p, scv);
        }
    }
    float d = f16(dd[0]), dmin = f16(dd[1]);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++) {
        const struct quant_block_q8_k *y = q8k(a, arb, t, i);
        __m256i imin = _mm256_madd_epi16(load256(y->bsums), mins);
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_set1_ps(d * y->d), acc[t]);
        acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(_mm512_zextsi256_si512(imin)),
                                  _mm512_set1_ps(dmin * y->d), acc[t]);
    }
}

/* k4_block for one token in 256-bit registers: ilo / ihi hold exactly
 * the integers of isum's lanes 0..7 / 8..15 there, and the f32 steps are
 * the same lane by lane (the min term only touches the low half). */
INLINE void k4_block1(const uint16_t *dd, const uint8_t *scales, const uint8_t *qs,
                      const uint8_t *qh, const struct quant_block_q8_k *y, __m256 *acc_lo,
                      __m256 *acc_hi)
{
    __m128i sm = k4_unpack(scales);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
    __m128i mn = _mm_unpackhi_epi64(sm, sm);
    __m256i mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn, mn));
    __m256i ilo = _mm256_setzero_si256(), ihi = ilo;
    __m256i hb = qh ? load256(qh) : _mm256_setzero_si256();
    const __m256i low4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; j++) {
        __m256i q = load256(qs + 32 * j);
        __m256i lo = _mm256_and_si256(q, low4),
                hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
        if (qh) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
            hi = _mm256_or_si256(
                hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
            hb = _mm256_srli_epi16(hb, 2);
        }
        __m256i s_lo =
            _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((4 * j + 1) << 8 | 4 * j)));
        __m256i s_hi =
            _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)((4 * j + 3) << 8 | (4 * j + 2))));
        ilo = _mm256_dpwssd_epi32(ilo, _mm256_maddubs_epi16(lo, load256(y->qs + 64 * j)), s_lo);
        ihi =
            _mm256_dpwssd_epi32(ihi, _mm256_maddubs_epi16(hi, load256(y->qs + 64 * j + 32)), s_hi);
    }
    float d = f16(dd[0]), dmin = f16(dd[1]);
    __m256i imin = _mm256_madd_epi16(load256(y->bsums), mins);
    __m256 sd = _mm256_set1_ps(d * y->d);
    *acc_lo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ilo), sd, *acc_lo);
    *acc_lo = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_set1_ps(dmin * y->d), *acc_lo);
    *acc_hi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ihi), sd, *acc_hi);
}

/* KQUANT's loop for one token (blocks alternate between two accumulators). */
INLINE float k4_row1(bool five, size_t nb, const uint8_t *w, const uint8_t *a)
{
    __m256 lo0 = _mm256_setzero_ps(), hi0 = lo0, lo1 = lo0, hi1 = lo0;
    const struct quant_block_q8_k *y = (const struct quant_block_q8_k *)a;
    for (size_t i = 0; i < nb; i++) { /* hot */
        __m256 *lo = i & 1 ? &lo1 : &lo0, *hi = i & 1 ? &hi1 : &hi0;
        if (five) {
            const struct quant_block_q5_k *x = (const struct quant_block_q5_k *)w + i;
            const uint16_t dd[2] = {x->d, x->dmin};
            k4_block1(dd, x->scales, x->qs, x->qh, y + i, lo, hi);
        } else {
            const struct quant_block_q4_k *x = (const struct quant_block_q4_k *)w + i;
            const uint16_t dd[2] = {x->d, x->dmin};
            k4_block1(dd, x->scales, x->qs, NULL, y + i, lo, hi);
        }
    }
    return hsum8(_mm256_add_ps(_mm256_add_ps(lo0, lo1), _mm256_add_ps(hi0, hi1)));
}

/* Super-block i of row w into (lo, hi), k4_block1's way. */
INLINE void k4_one(bool five, const uint8_t *w, const struct quant_block_q8_k *y, size_t i,
                   __m256 *lo, __m256 *hi)
{
    if (five) {
        const struct quant_block_q5_k *x = (const struct quant_block_q5_k *)w + i;
        const uint16_t dd[2] = {x->d, x->dmin};
        k4_block1(dd, x->scales, x->qs, x->qh, y + i, lo, hi);
    } else {
        const struct quant_block_q4_k *x = (const struct quant_block_q4_k *)w + i;
        const uint16_t dd[2] = {x->d, x->dmin};
        k4_block1(dd, x->scales, x->qs, NULL, y + i, lo, hi);
    }
}

/* k4_row1 for nr rows wrb bytes apart, super-block by super-block. */
INLINE void k4_rows(bool five, int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a,
                    float *out)
{
    __m256 acc[GEN][4]; /* lo0, hi0, lo1, hi1 of k4_row1 */
    const struct quant_block_q8_k *y = (const struct quant_block_q8_k *)a;
    for (int r = 0; r < nr; r++)
        for (int h = 0; h < 4; h++)
            acc[r][h] = _mm256_setzero_ps();
    size_t i = 0;
    const size_t wb = five ? sizeof(struct quant_block_q5_k) : sizeof(struct quant_block_q4_k);
    for (; i + 2 <= nb; i += 2) { /* hot */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * wb, 2 * wb);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            k4_one(five, w + r * wrb, y, i, &acc[r][0], &acc[r][1]);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            k4_one(five, w + r * wrb, y, i + 1, &acc[r][2], &acc[r][3]);
    }
    if (i < nb) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * wb, wb);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            k4_one(five, w + r * wrb, y, i, &acc[r][0], &acc[r][1]);
    }
    __m256 v[GEN];
    for (int r = 0; r < nr; r++)
        v[r] =
            _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][2]), _mm256_add_ps(acc[r][1], acc[r][3]));
    if (nr == 4) {
        hsum8x4(v, out);
        return;
    }
    for (int r = 0; r < nr; r++)
        out[r] = hsum8(v[r]);
}

INLINE void q4_k_block(const uint8_t *w, const uint8_t *a, size_t arb, size_t i, int nt,
                       __m512 *acc)
{
    const struct quant_block_q4_k *x = (const struct quant_block_q4_k *)w + i;
    const uint16_t dd[2] = {x->d, x->dmin};
    k4_block(dd, x->scales, x->qs, NULL, a, arb, i, nt, acc);
}

INLINE void q5_k_block(const uint8_t *w, const uint8_t *a, size_t arb, size_t i, int nt,
                       __m512 *acc)
{
    const struct quant_block_q5_k *x = (const struct quant_block_q5_k *)w + i;
    const uint16_t dd[2] = {x->d, x->dmin};
    k4_block(dd, x->scales, x->qs, x->qh, a, arb, i, nt, acc);
}

/* Q6_K: u = q + 32 in 0..63, and 32 * sum(sc * bsum) taken off. Each half
 * of 128 elements is two registers: [c0 | c1] from the low nibbles of
 * ql[0..63] and [c2 | c3] from the high ones, qh bits 2c, 2c + 1 on top. */
INLINE void q6_k_block(const uint8_t *w, const uint8_t *a, size_t arb, size_t i, int nt,
                       __m512 *acc)
{
    const struct quant_block_q6_k *x = (const struct quant_block_q6_k *)w + i;
    __m256i sc256 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    __m512i sc16 = _mm512_castsi256_si512(sc256);
    __m512i isum[TOKENS];
    for (int t = 0; t < nt; t++) {
        __m256i corr = _mm256_madd_epi16(load256(q8k(a, arb, t, i)->bsums), sc256);
        isum[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                   _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
    }
    const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    const __m512i shl42 =
        _mm512_mask_mov_epi16(_mm512_set1_epi16(4), 0xffff0000u, _mm512_set1_epi16(2));
    const __m512i shr02 =
        _mm512_mask_mov_epi16(_mm512_setzero_si512(), 0xffff0000u, _mm512_set1_epi16(2));
    for (int h = 0; h < 2; h++) {
        __m512i ql = load512(x->ql + 64 * h);
        __m256i qh256 = load256(x->qh + 32 * h);
        __m512i qh = join(qh256, qh256);
        __m512i wa = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                     _mm512_and_si512(_mm512_sllv_epi16(qh, shl42), bits45));
        __m512i wb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                     _mm512_and_si512(_mm512_srlv_epi16(qh, shr02), bits45));
        __m512i sa = _mm512_permutexvar_epi16(quarters_index(8 * h), sc16);
        __m512i sb = _mm512_permutexvar_epi16(quarters_index(8 * h + 4), sc16);
#pragma GCC unroll 8
        for (int t = 0; t < nt; t++) {
            const int8_t *y = q8k(a, arb, t, i)->qs + 128 * h;
            isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(wa, load512(y)), sa);
            isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_maddubs_epi16(wb, load512(y + 64)), sb);
        }
    }
    float d = f16(x->d);
#pragma GCC unroll 8
    for (int t = 0; t < nt; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]),
                                 _mm512_set1_ps(d * q8k(a, arb, t, i)->d), acc[t]);
}

INLINE void q4_k_rows(int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a, float *out)
{
    k4_rows(false, nr, nb, w, wrb, a, out);
}

INLINE void q5_k_rows(int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a, float *out)
{
    k4_rows(true, nr, nb, w, wrb, a, out);
}

/* KQUANT's 512-bit loop for one token over nr rows: the same blocks into
 * the same accumulators, and the same + 0 at the end, as q6_k_row. */
INLINE void q6_k_rows(int nr, size_t nb, const uint8_t *w, size_t wrb, const uint8_t *a, float *out)
{
    __m512 acc0[GEN], acc1[GEN];
    for (int r = 0; r < nr; r++)
        acc0[r] = acc1[r] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 2 <= nb; i += 2) { /* hot */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * sizeof(struct quant_block_q6_k),
                         2 * sizeof(struct quant_block_q6_k));
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            q6_k_block(w + r * wrb, a, 0, i, 1, &acc0[r]);
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            q6_k_block(w + r * wrb, a, 0, i + 1, 1, &acc1[r]);
    }
    if (i < nb) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            gen_prefetch(w + r * wrb + i * sizeof(struct quant_block_q6_k),
                         sizeof(struct quant_block_q6_k));
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            q6_k_block(w + r * wrb, a, 0, i, 1, &acc0[r]);
    }
    for (int r = 0; r < nr; r++)
        out[r] = hsum16(_mm512_add_ps(acc0[r], acc1[r])) + 0.0f;
}

/* With HAS1, ROW1(nb, w, a) is the single-token path. */
#define KQUANT(name, HAS1, ROW1)                                                                   \
    DEFINE_GEN(name)                                                                               \
    INLINE void name##_row(size_t nb, const uint8_t *w, const uint8_t *a, size_t arb,              \
                           const float *das, int nt, float *out, size_t os)                        \
    {                                                                                              \
        __m512 acc0[TOKENS], acc1[TOKENS];                                                         \
        float ex[TOKENS];                                                                          \
        (void)das;                                                                                 \
        if (nt == 1 && (HAS1)) {                                                                   \
            out[0] = ROW1(nb, w, a);                                                               \
            return;                                                                                \
        }                                                                                          \
        for (int t = 0; t < nt; t++) {                                                             \
            acc0[t] = acc1[t] = _mm512_setzero_ps();                                               \
            ex[t] = 0;                                                                             \
        }                                                                                          \
        size_t i = 0;                                                                              \
        for (; i + 2 <= nb; i += 2) { /* hot */                                                    \
            name##_block(w, a, arb, i, nt, acc0);                                                  \
            name##_block(w, a, arb, i + 1, nt, acc1);                                              \
        }                                                                                          \
        if (i < nb)                                                                                \
            name##_block(w, a, arb, i, nt, acc0);                                                  \
        finish_row(nt, acc0, acc1, ex, out, os);                                                   \
    }                                                                                              \
    DEFINE_KERNELS(name, QUANT_QK_K, no_prep, 1)

#define Q4_K_ROW1(nb, w, a) k4_row1(false, nb, w, a)
#define Q5_K_ROW1(nb, w, a) k4_row1(true, nb, w, a)
#define Q6_K_ROW1(nb, w, a) ((void)(nb), (void)(w), (void)(a), 0.0f)
KQUANT(q4_k, 1, Q4_K_ROW1)
KQUANT(q5_k, 1, Q5_K_ROW1)
KQUANT(q6_k, 0, Q6_K_ROW1)

/* ---- The table: conversions come from quant_avx2.c or quant_ref.c ---- */

#define WEIGHT_GEMM(T, t, DOT, blk, bytes, to, gemm)                                               \
    [ENGINE_TYPE_##T] = {ENGINE_TYPE_##T,                                                          \
                         ENGINE_TYPE_##DOT,                                                        \
                         blk,                                                                      \
                         bytes,                                                                    \
                         QUANT_LEVEL_AVX512,                                                       \
                         to,                                                                       \
                         NULL,                                                                     \
                         t##_vec_dot,                                                              \
                         gemm}
#define WEIGHT(T, t, DOT, blk, bytes, to) WEIGHT_GEMM(T, t, DOT, blk, bytes, to, t##_gemm)

const struct quant_type quant_table_avx512[ENGINE_TYPE_COUNT] = {
    [ENGINE_TYPE_Q8_0] = {ENGINE_TYPE_Q8_0, ENGINE_TYPE_Q8_0, 32, 34, QUANT_LEVEL_AVX512,
                          quant_q8_0_to_f32_avx2, quant_q8_0_from_f32_avx2, q8_0_vec_dot,
                          q8_0_gemm_tile},
    WEIGHT_GEMM(Q4_0, q4_0, Q8_0, 32, 18, quant_q4_0_to_f32_avx2, q4_0_gemm_tile),
    WEIGHT(Q4_1, q4_1, Q8_1, 32, 20, quant_q4_1_to_f32_ref),
    WEIGHT_GEMM(Q5_0, q5_0, Q8_0, 32, 22, quant_q5_0_to_f32_ref, q5_0_gemm_tile),
    WEIGHT(Q5_1, q5_1, Q8_1, 32, 24, quant_q5_1_to_f32_ref),
    WEIGHT_GEMM(IQ4_NL, iq4_nl, Q8_0, 32, 18, quant_iq4_nl_to_f32_ref, iq4_nl_gemm_tile),
    WEIGHT(Q4_K, q4_k, Q8_K, 256, 144, quant_q4_k_to_f32_avx2),
    WEIGHT(Q5_K, q5_k, Q8_K, 256, 176, quant_q5_k_to_f32_ref),
    WEIGHT(Q6_K, q6_k, Q8_K, 256, 210, quant_q6_k_to_f32_avx2),
};

#else /* not x86: no AVX-512 kernels, the reference is used */

const struct quant_type quant_table_avx512[ENGINE_TYPE_COUNT];

#endif
