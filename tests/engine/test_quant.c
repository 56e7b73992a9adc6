/* test_quant.c: tests for the tensor kernels (engine/quant_ref.c,
 * quant_avx2.c, quant_avx512.c, cpu.c). Unit part: every type at every
 * level this machine runs against the scalar reference (dot products and
 * tiles within a per-type bound, conversions bit-exact); the reference
 * against a double-precision oracle built from dequantized values; the
 * activation quantizers against llama.cpp's rules written out here again;
 * the SHOAL_CPU override. Built with SHOAL_REF_DIR (test_quant_ref), it
 * instead dequantizes every tensor of the llama-tiny reference files and
 * compares it with the F32 file, an independent check of the layouts.
 * `test_quant --expect-level ref|cpu` checks
 * quant_level_best() under the SHOAL_CPU value ctest sets. */
#include "gguf.h"
#include "quant.h"
#include "test.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Random numbers (fixed seed: failures reproduce) ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double unif(void) /* [0, 1) */
{
    return (double)(rnd() >> 11) * 0x1p-53;
}

static float gauss(void)
{
    double s = 0;
    for (int i = 0; i < 4; i++)
        s += unif();
    return (float)((s - 2.0) * 1.7320508);
}

static float f_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t bits_f(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("out of memory\n", stderr);
        exit(2);
    }
    return p;
}

/* ---- The types under test ---- */

static const enum engine_type weight_types[] = {
    ENGINE_TYPE_F32,  ENGINE_TYPE_F16,  ENGINE_TYPE_BF16, ENGINE_TYPE_Q8_0,   ENGINE_TYPE_Q4_0,
    ENGINE_TYPE_Q4_1, ENGINE_TYPE_Q5_0, ENGINE_TYPE_Q5_1, ENGINE_TYPE_Q2_K,   ENGINE_TYPE_Q3_K,
    ENGINE_TYPE_Q4_K, ENGINE_TYPE_Q5_K, ENGINE_TYPE_Q6_K, ENGINE_TYPE_IQ4_NL,
};
static const enum engine_type activation_types[] = {
    ENGINE_TYPE_F32,  ENGINE_TYPE_F16,  ENGINE_TYPE_BF16,
    ENGINE_TYPE_Q8_0, ENGINE_TYPE_Q8_1, ENGINE_TYPE_Q8_K,
};

static const struct quant_type *ref_of(enum engine_type t)
{
    return quant_type_get(t, QUANT_LEVEL_REF);
}

static bool is_float(enum engine_type t)
{
    return t == ENGINE_TYPE_F32 || t == ENGINE_TYPE_F16 || t == ENGINE_TYPE_BF16;
}

static uint16_t f16_bits_of(float f)
{
    return quant_f32_to_f16(f);
}

/* A random F16 scale of magnitude in [lo, hi), random sign when sign. */
static uint16_t rand_scale(double lo, double hi, bool sign)
{
    double v = lo + (hi - lo) * unif();
    if (sign && (rnd() & 1))
        v = -v;
    return f16_bits_of((float)v);
}

/* Random weights for n elements of type t: random quant bits, scales
 * finite and moderate (what a quantizer could have written). */
static void make_weights(enum engine_type t, void *dst, size_t n)
{
    const struct quant_type *q = ref_of(t);
    size_t nb = n / q->block_elems, bytes = nb * q->block_bytes;
    uint8_t *p = dst;
    for (size_t i = 0; i < bytes; i++)
        p[i] = (uint8_t)rnd();
    for (size_t i = 0; i < nb; i++) {
        uint8_t *b = p + i * q->block_bytes;
        switch (t) {
        case ENGINE_TYPE_F32: {
            float v = gauss() * 0.5f;
            memcpy(b, &v, 4);
            break;
        }
        case ENGINE_TYPE_F16: {
            uint16_t h = f16_bits_of(gauss() * 0.5f);
            memcpy(b, &h, 2);
            break;
        }
        case ENGINE_TYPE_BF16: {
            uint16_t h = quant_f32_to_bf16(gauss() * 0.5f);
            memcpy(b, &h, 2);
            break;
        }
        case ENGINE_TYPE_Q8_0:
            ((struct quant_block_q8_0 *)b)->d = rand_scale(1e-3, 2e-2, true);
            break;
        case ENGINE_TYPE_Q4_0:
            ((struct quant_block_q4_0 *)b)->d = rand_scale(1e-2, 2e-1, true);
            break;
        case ENGINE_TYPE_Q5_0:
            ((struct quant_block_q5_0 *)b)->d = rand_scale(1e-2, 1e-1, true);
            break;
        case ENGINE_TYPE_IQ4_NL:
            ((struct quant_block_iq4_nl *)b)->d = rand_scale(1e-3, 2e-2, true);
            break;
        case ENGINE_TYPE_Q4_1: {
            struct quant_block_q4_1 *x = (void *)b;
            x->d = rand_scale(1e-2, 1e-1, false);
            x->m = rand_scale(0, 1.0, true);
            break;
        }
        case ENGINE_TYPE_Q5_1: {
            struct quant_block_q5_1 *x = (void *)b;
            x->d = rand_scale(1e-2, 5e-2, false);
            x->m = rand_scale(0, 1.0, true);
            break;
        }
        case ENGINE_TYPE_Q2_K: {
            struct quant_block_q2_k *x = (void *)b;
            x->d = rand_scale(1e-2, 5e-2, false);
            x->dmin = rand_scale(1e-3, 2e-2, false);
            break;
        }
        case ENGINE_TYPE_Q3_K:
            ((struct quant_block_q3_k *)b)->d = rand_scale(1e-3, 1e-2, true);
            break;
        case ENGINE_TYPE_Q4_K: {
            struct quant_block_q4_k *x = (void *)b;
            x->d = rand_scale(1e-3, 5e-3, false);
            x->dmin = rand_scale(1e-3, 5e-3, false);
            break;
        }
        case ENGINE_TYPE_Q5_K: {
            struct quant_block_q5_k *x = (void *)b;
            x->d = rand_scale(5e-4, 3e-3, false);
            x->dmin = rand_scale(1e-3, 5e-3, false);
            break;
        }
        case ENGINE_TYPE_Q6_K:
            ((struct quant_block_q6_k *)b)->d = rand_scale(1e-4, 1e-3, true);
            break;
        default:
            break;
        }
    }
}

/* n random activations, mostly N(0, 1), a few outliers and an all-zero
 * stretch now and then. */
static void make_activations(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = gauss();
    if (n > 40 && (rnd() & 1)) {
        x[rnd() % n] = 30.0f;
        x[rnd() % n] = -25.0f;
    }
    if (n >= 512 && (rnd() % 3) == 0)
        memset(x + 256, 0, 256 * sizeof(float));
}

/* ---- 1 and 2: kernels against the reference and the oracle ---- */

/* Worst error / bound-scale seen per type, for the report. */
static double worst_simd[ENGINE_TYPE_COUNT], worst_oracle[ENGINE_TYPE_COUNT];

/* Sum of |w_i a_i| and the double-precision dot of dequantized rows. */
static void oracle(const float *w, const float *a, size_t n, double *dot, double *mag)
{
    double s = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double p = (double)w[i] * a[i];
        s += p;
        m += fabs(p);
    }
    *dot = s;
    *mag = m;
}

/* Q4_1 and Q5_1 dot products use the activation block's stored sum
 * s = F16(d * sum(q)) for the offset term m * sum(a) (llama.cpp does);
 * the F16 rounding of s is part of the type, so the oracle adds it. */
static double q8_1_sum_rounding(const uint8_t *w, size_t wbytes, const uint8_t *a, size_t nb)
{
    double c = 0;
    for (size_t i = 0; i < nb; i++) {
        const struct quant_block_q8_1 *y = (const struct quant_block_q8_1 *)a + i;
        uint16_t m;
        memcpy(&m, w + i * wbytes + 2, 2); /* Q4_1 and Q5_1: d, then m */
        int sum = 0;
        for (int j = 0; j < 32; j++)
            sum += y->qs[j];
        c += (double)quant_f16_to_f32(m) *
             ((double)quant_f16_to_f32(y->s) - (double)quant_f16_to_f32(y->d) * sum);
    }
    return c;
}

/* Bound on |vec_dot - exact| as a multiple of sum |w a|: f32 rounding per
 * accumulated term, a few ulps per block for its scale products. */
static double dot_tol(enum engine_type t, size_t n)
{
    const struct quant_type *q = ref_of(t);
    size_t terms = is_float(t) ? n : n / q->block_elems;
    return 0x1p-23 * (double)(terms + 16);
}

static void test_type_kernels(enum engine_type t, enum quant_level cpu)
{
    const struct quant_type *r = ref_of(t);
    const struct quant_type *ra = ref_of(r->dot_type);
    CHECK(r && ra && ra->from_f32);
    if (!r || !ra || !ra->from_f32)
        return;
    /* 2100 blocks: rows too long for the SIMD tiles' table of activation
     * scales (PREP_FLOATS), which then convert them at each use; Q8_0 and
     * Q4_1 stand for the Q8_0 and Q8_1 activations. */
    static const size_t blocks_q[] = {1, 2, 3, 5, 8, 17, 2100};
    static const size_t elems_f[] = {1, 3, 8, 15, 16, 17, 33, 100, 257, 1000};
    const size_t *sizes = is_float(t) ? elems_f : blocks_q;
    size_t nsizes = is_float(t) ? SHOAL_ARRAY_LEN(elems_f) : SHOAL_ARRAY_LEN(blocks_q);
    if (!is_float(t) && t != ENGINE_TYPE_Q8_0 && t != ENGINE_TYPE_Q4_1)
        nsizes--;
    enum { ROWS = 11, R0 = 2, TOKENS = 9 };

    for (size_t si = 0; si < nsizes; si++) {
        size_t n = is_float(t) ? sizes[si] : sizes[si] * r->block_elems;
        size_t wrb = n / r->block_elems * r->block_bytes;
        size_t arb = n / ra->block_elems * ra->block_bytes;
        uint8_t *w = xmalloc(ROWS * wrb), *a = xmalloc(TOKENS * arb);
        float *wf = xmalloc(ROWS * n * sizeof(float)), *af = xmalloc(TOKENS * n * sizeof(float));
        float *x = xmalloc(n * sizeof(float));
        for (int row = 0; row < ROWS; row++) {
            make_weights(t, w + row * wrb, n);
            r->to_f32(w + row * wrb, wf + row * n, n);
        }
        for (int tok = 0; tok < TOKENS; tok++) {
            make_activations(x, n);
            ra->from_f32(x, a + tok * arb, n);
            ra->to_f32(a + tok * arb, af + tok * n, n);
        }
        /* The reference against the oracle; gemm against vec_dot. */
        float ref[TOKENS][ROWS];
        for (int tok = 0; tok < TOKENS; tok++)
            for (int row = 0; row < ROWS; row++) {
                double dot, mag;
                ref[tok][row] = r->vec_dot(n, w + row * wrb, a + tok * arb);
                oracle(wf + row * n, af + tok * n, n, &dot, &mag);
                if (r->dot_type == ENGINE_TYPE_Q8_1)
                    dot += q8_1_sum_rounding(w + row * wrb, r->block_bytes, a + tok * arb,
                                             n / r->block_elems);
                double err = fabs(ref[tok][row] - dot), tol = dot_tol(t, n) * mag;
                if (mag > 0 && err / mag > worst_oracle[t])
                    worst_oracle[t] = err / mag;
                CHECK(err <= tol);
                if (err > tol)
                    fprintf(stderr, "  %s ref n=%zu: %.9g vs oracle %.9g (mag %g)\n",
                            engine_type_name(t), n, ref[tok][row], dot, mag);
            }
        for (int level = 0; level <= (int)cpu; level++) {
            const struct quant_type *q = quant_type_get(t, (enum quant_level)level);
            CHECK(q && q->vec_dot && q->gemm && q->dot_type == r->dot_type);
            if (!q || !q->vec_dot || !q->gemm)
                continue;
            /* Tiles for every token count 1..TOKENS over rows [R0, ROWS),
             * other rows and a spare column untouched. */
            for (int m = 1; m <= TOKENS; m++) {
                const size_t os = ROWS + 1;
                float out[TOKENS * (ROWS + 1)];
                for (size_t k = 0; k < SHOAL_ARRAY_LEN(out); k++)
                    out[k] = -1234.5f;
                q->gemm(n, w, wrb, R0, ROWS, a, arb, (size_t)m, out, os);
                for (int tok = 0; tok < m; tok++)
                    for (int row = 0; row < (int)os; row++) {
                        float v = out[tok * os + row];
                        if (row < R0 || row == ROWS) {
                            CHECK(v == -1234.5f);
                            continue;
                        }
                        float vd = q->vec_dot(n, w + row * wrb, a + tok * arb);
                        CHECK(bits_f(v) == bits_f(vd));
                        double mag, dot;
                        oracle(wf + row * n, af + tok * n, n, &dot, &mag);
                        double err = fabs((double)v - ref[tok][row]);
                        double tol = 2 * dot_tol(t, n) * mag;
                        if (mag > 0 && err / mag > worst_simd[t])
                            worst_simd[t] = err / mag;
                        CHECK(err <= tol);
                        if (err > tol || bits_f(v) != bits_f(vd))
                            fprintf(stderr,
                                    "  %s %s n=%zu m=%d row %d tok %d: gemm %.9g "
                                    "vec_dot %.9g ref %.9g (mag %g)\n",
                                    engine_type_name(t), quant_level_name(q->level), n, m, row, tok,
                                    v, vd, ref[tok][row], mag);
                    }
                for (int tok = m; tok < TOKENS; tok++)
                    for (int row = 0; row < (int)os; row++)
                        CHECK(out[tok * os + row] == -1234.5f);
            }
            /* Dequantization: bit-exact with the reference. */
            float *y = xmalloc(ROWS * n * sizeof(float));
            q->to_f32(w, y, ROWS * n);
            CHECK(memcmp(y, wf, ROWS * n * sizeof(float)) == 0);
            free(y);
        }
        free(w);
        free(a);
        free(wf);
        free(af);
        free(x);
    }
}

/* ---- One token through gemm (generation) ----
 *
 * With m == 1 the SIMD gemm walks several rows side by side, each in its
 * own accumulators, with the activation blocks shared. Every row must
 * still be vec_dot's bits: for every range [r0, r1) of a few rows (group
 * tails of every length, groups starting at odd rows), row lengths with
 * every tail of the kernels' block loops, and rows padded apart (row r at
 * r * wrb, wrb larger than the row; rows stay aligned to their scalars).
 * Rows outside the range and the other tokens' outputs stay untouched. */
static void test_gen_rows(enum engine_type t, enum quant_level cpu)
{
    const struct quant_type *r = ref_of(t);
    const struct quant_type *ra = ref_of(r->dot_type);
    static const size_t blocks_q[] = {1, 2, 3, 4, 5, 6, 7, 9, 18, 28};
    static const size_t elems_f[] = {1, 7, 16, 33, 100};
    const size_t *sizes = is_float(t) ? elems_f : blocks_q;
    size_t nsizes = is_float(t) ? SHOAL_ARRAY_LEN(elems_f) : SHOAL_ARRAY_LEN(blocks_q);
    enum { ROWS = 13 };
    const float unset = -1234.5f;
    for (size_t si = 0; si < nsizes; si++) {
        size_t n = is_float(t) ? sizes[si] : sizes[si] * r->block_elems;
        size_t row = n / r->block_elems * r->block_bytes;
        size_t arb = n / ra->block_elems * ra->block_bytes;
        for (int padded = 0; padded <= 1; padded++) {
            size_t wrb = row + (padded ? (t == ENGINE_TYPE_F32 ? 4 : 2) : 0);
            uint8_t *w = xmalloc(ROWS * wrb), *a = xmalloc(arb);
            float *x = xmalloc(n * sizeof(float));
            memset(w, 0x5a, ROWS * wrb);
            for (int i = 0; i < ROWS; i++)
                make_weights(t, w + i * wrb, n);
            make_activations(x, n);
            ra->from_f32(x, a, n);
            for (int level = 1; level <= (int)cpu; level++) {
                const struct quant_type *q = quant_type_get(t, (enum quant_level)level);
                if (!q || !q->vec_dot || !q->gemm)
                    continue;
                uint32_t want[ROWS];
                for (int i = 0; i < ROWS; i++)
                    want[i] = bits_f(q->vec_dot(n, w + i * wrb, a));
                int bad = 0;
                for (size_t r0 = 0; r0 < ROWS; r0++)
                    for (size_t r1 = r0 + 1; r1 <= ROWS; r1++) {
                        float out[2 * ROWS];
                        for (size_t k = 0; k < SHOAL_ARRAY_LEN(out); k++)
                            out[k] = unset;
                        q->gemm(n, w, wrb, r0, r1, a, arb, 1, out, ROWS);
                        for (size_t i = 0; i < 2 * ROWS; i++) {
                            bool in = i >= r0 && i < r1;
                            bool ok = in ? bits_f(out[i]) == want[i] : out[i] == unset;
                            if (!ok && bad++ == 0)
                                fprintf(stderr,
                                        "  %s %s n=%zu wrb=%zu rows [%zu, %zu): out[%zu] %.9g, "
                                        "vec_dot %.9g\n",
                                        engine_type_name(t), quant_level_name(q->level), n, wrb, r0,
                                        r1, i, out[i], in ? f_bits(want[i]) : unset);
                        }
                    }
                CHECK(bad == 0);
            }
            free(w);
            free(a);
            free(x);
        }
    }
}

/* ---- Signed 32-element types at their extremes ----
 *
 * The AVX-512 gemm of Q8_0, Q4_0, Q5_0 and IQ4_NL feeds vpdpbusd a + 128
 * and starts each sum at -128 * sum(w); vec_dot keeps the sign trick. Here
 * every scale is 1 and the quants sit at the ends of their ranges (w =
 * -128 and 127, a = -127 and 127), sparse enough that no partial sum
 * reaches 2^24: every level's gemm and vec_dot must give the exact integer
 * dot product, for row counts across the weight chunks, token counts
 * across the groups and their tails, and rows long enough for the
 * smaller token groups and for the fallback without a tile. */

/* Quant j of a signed weight block: code 0 is the type's lowest level,
 * 1 its highest, 2 the level nearest zero. */
static void put_signed_weight(enum engine_type t, uint8_t *b, int j, int code)
{
    switch (t) {
    case ENGINE_TYPE_Q8_0: {
        static const int8_t v[3] = {-128, 127, 0};
        ((struct quant_block_q8_0 *)b)->qs[j] = v[code];
        break;
    }
    case ENGINE_TYPE_Q5_0: {
        static const uint8_t v[3] = {0, 31, 16};
        struct quant_block_q5_0 *x = (void *)b;
        uint8_t *nib = &x->qs[j % 16];
        *nib = j < 16 ? (uint8_t)((*nib & 0xf0) | (v[code] & 15))
                      : (uint8_t)((*nib & 0x0f) | (v[code] & 15) << 4);
        x->qh[j / 8] = (uint8_t)((x->qh[j / 8] & ~(1u << (j % 8))) | (v[code] >> 4) << (j % 8));
        break;
    }
    default: { /* Q4_0 (-8, 7, 0) and IQ4_NL (-127, 113, 1): nibbles alike */
        static const uint8_t v[3] = {0, 15, 8};
        uint8_t *nib = b + 2 + j % 16;
        *nib =
            j < 16 ? (uint8_t)((*nib & 0xf0) | v[code]) : (uint8_t)((*nib & 0x0f) | v[code] << 4);
        break;
    }
    }
}

static void test_signed_extremes(enum quant_level cpu)
{
    static const enum engine_type types[] = {ENGINE_TYPE_Q8_0, ENGINE_TYPE_Q4_0, ENGINE_TYPE_Q5_0,
                                             ENGINE_TYPE_IQ4_NL};
    /* 140 and 230 blocks: AVX-512 tiles of 7 and 4 tokens; 300: no tile. */
    static const size_t blocks[] = {1, 2, 3, 5, 17, 140, 230, 300};
    static const int counts[] = {1, 2, 3, 8, 9, 12, 17};
    enum { ROWS = 72, R0 = 1, TOKENS = 17 };
    const uint16_t one = 0x3c00; /* F16 1.0 */
    for (size_t ti = 0; ti < SHOAL_ARRAY_LEN(types); ti++) {
        enum engine_type t = types[ti];
        const struct quant_type *r = ref_of(t);
        for (size_t bi = 0; bi < SHOAL_ARRAY_LEN(blocks); bi++) {
            size_t nb = blocks[bi], n = nb * QUANT_QK, wrb = nb * r->block_bytes;
            size_t arb = nb * sizeof(struct quant_block_q8_0);
            uint8_t *w = xmalloc(ROWS * wrb);
            struct quant_block_q8_0 *a = xmalloc(TOKENS * arb);
            float *wf = xmalloc(n * sizeof(float));
            double *exact = xmalloc(ROWS * TOKENS * sizeof(double));
            memset(w, 0, ROWS * wrb);
            for (size_t i = 0; i < ROWS * nb; i++) {
                uint8_t *b = w + i * r->block_bytes;
                memcpy(b, &one, sizeof(one));
                for (int j = 0; j < QUANT_QK; j++) {
                    int code = (int)(rnd() % 8); /* mostly the lowest level: w = -128 */
                    put_signed_weight(t, b, j, code < 5 ? 0 : code < 7 ? 1 : 2);
                }
            }
            /* Nonzero activations with probability p keep sum |w a| under
             * 10.5M of the 16.8M allowed (all of them up to 17 blocks). */
            double p = 0x1.4p23 / ((double)n * 128 * 127);
            for (size_t i = 0; i < TOKENS * nb; i++) {
                a[i].d = one;
                for (int j = 0; j < QUANT_QK; j++)
                    a[i].qs[j] = (int8_t)(unif() >= p ? 0 : rnd() & 1 ? 127 : -127);
            }
            for (int row = 0; row < ROWS; row++) {
                r->to_f32(w + row * wrb, wf, n);
                for (int tok = 0; tok < TOKENS; tok++) {
                    const struct quant_block_q8_0 *y = a + tok * nb;
                    int64_t sum = 0, mag = 0;
                    for (size_t e = 0; e < n; e++) {
                        int64_t v = (int64_t)wf[e] * y[e / QUANT_QK].qs[e % QUANT_QK];
                        sum += v;
                        mag += v < 0 ? -v : v;
                    }
                    CHECK(mag < (int64_t)1 << 24); /* the construction, not the kernels */
                    exact[row * TOKENS + tok] = (double)sum;
                }
            }
            for (int level = 0; level <= (int)cpu; level++) {
                const struct quant_type *q = quant_type_get(t, (enum quant_level)level);
                if (!q || !q->vec_dot || !q->gemm)
                    continue;
                for (int row = R0; row < ROWS; row++)
                    for (int tok = 0; tok < TOKENS; tok++) {
                        float vd = q->vec_dot(n, w + row * wrb, (const uint8_t *)a + tok * arb);
                        CHECK(vd == exact[row * TOKENS + tok]);
                    }
                for (size_t ci = 0; ci < SHOAL_ARRAY_LEN(counts); ci++) {
                    int m = counts[ci];
                    float out[TOKENS * ROWS];
                    q->gemm(n, w, wrb, R0, ROWS, a, arb, (size_t)m, out, ROWS);
                    int bad = 0;
                    for (int tok = 0; tok < m; tok++)
                        for (int row = R0; row < ROWS; row++)
                            if ((double)out[tok * ROWS + row] != exact[row * TOKENS + tok] &&
                                bad++ == 0)
                                fprintf(stderr,
                                        "  %s %s blocks=%zu m=%d row %d tok %d: gemm %.9g, "
                                        "exact %.9g\n",
                                        engine_type_name(t), quant_level_name(q->level), nb, m, row,
                                        tok, out[tok * ROWS + row], exact[row * TOKENS + tok]);
                    CHECK(bad == 0);
                }
            }
            free(w);
            free(a);
            free(wf);
            free(exact);
        }
    }
}

/* ---- Conversions bit-exact between levels ---- */

static void test_f16_bf16(enum quant_level cpu)
{
    /* Every F16 and BF16 value to F32, at every level. */
    uint16_t *h = xmalloc(65536 * 2);
    float *ref = xmalloc(65536 * sizeof(float)), *y = xmalloc(65536 * sizeof(float));
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    for (int kind = 0; kind < 2; kind++) {
        enum engine_type t = kind ? ENGINE_TYPE_BF16 : ENGINE_TYPE_F16;
        ref_of(t)->to_f32(h, ref, 65536);
        for (int level = 1; level <= (int)cpu; level++) {
            quant_type_get(t, (enum quant_level)level)->to_f32(h, y, 65536);
            CHECK(memcmp(y, ref, 65536 * sizeof(float)) == 0);
        }
    }
    /* Independent properties: F16 -> F32 -> F16 is the identity except
     * that NaNs come back quiet; values match the format's definition. */
    for (uint32_t i = 0; i < 65536; i++) {
        float f = quant_f16_to_f32((uint16_t)i);
        uint32_t e = (i >> 10) & 31, m = i & 1023;
        if (e == 31 && m) {
            CHECK(isnan(f));
            CHECK(quant_f32_to_f16(f) == (uint16_t)(i | 0x200));
            continue;
        }
        double v = e == 31 ? INFINITY : e ? ldexp(1024 + m, (int)e - 25) : ldexp(m, -24);
        if (i & 0x8000)
            v = -v;
        CHECK((double)f == v);
        CHECK(quant_f32_to_f16(f) == (uint16_t)i);
        CHECK(quant_f32_to_bf16(quant_bf16_to_f32((uint16_t)i)) ==
              (isnan(quant_bf16_to_f32((uint16_t)i)) ? (uint16_t)(i | 0x40) : (uint16_t)i));
    }
    /* Ties between neighbouring F16 values go to the even one; values at
     * or past 65520 overflow. */
    for (uint32_t i = 0; i < 0x7bff; i++) {
        float lo = quant_f16_to_f32((uint16_t)i), hi = quant_f16_to_f32((uint16_t)(i + 1));
        float mid = (float)(((double)lo + hi) / 2);
        CHECK(quant_f32_to_f16(mid) == (i & 1 ? i + 1 : i));
        CHECK(quant_f32_to_f16(-mid) == (0x8000 | (i & 1 ? i + 1 : i)));
        CHECK(quant_f32_to_f16(nextafterf(mid, 0)) == i);
        CHECK(quant_f32_to_f16(nextafterf(mid, INFINITY)) == i + 1);
    }
    CHECK(quant_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(quant_f32_to_f16(nextafterf(65520.0f, 0)) == 0x7bff);
    CHECK(quant_f32_to_f16(-1e10f) == 0xfc00);
    CHECK(quant_f32_to_f16(0x1p-25f) == 0);
    CHECK(quant_f32_to_f16(nextafterf(0x1p-25f, 1)) == 1);
    /* BF16 ties. */
    for (uint32_t i = 0x0001; i < 0x7f7f; i += 7) {
        float lo = quant_bf16_to_f32((uint16_t)i), hi = quant_bf16_to_f32((uint16_t)(i + 1));
        float mid = (float)(((double)lo + hi) / 2);
        CHECK(quant_f32_to_bf16(mid) == (i & 1 ? i + 1 : i));
        CHECK(quant_f32_to_bf16(nextafterf(mid, 0)) == i);
    }
    CHECK(isnan(quant_bf16_to_f32(quant_f32_to_bf16(NAN))));
    /* F32 -> F16 / BF16 at every level on random bit patterns (NaNs,
     * infinities and subnormals included) and on the ties above. */
    enum { N = 1 << 16 };
    float *x = xmalloc(N * sizeof(float));
    uint16_t *r16 = xmalloc(N * 2), *y16 = xmalloc(N * 2);
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < N; i++) {
            if (round < 2)
                x[i] = f_bits((uint32_t)rnd());
            else if (round == 2)
                x[i] = (float)(((double)quant_f16_to_f32((uint16_t)i) +
                                quant_f16_to_f32((uint16_t)(i + 1))) /
                               2);
            else
                x[i] = gauss() * (float)ldexp(1, (int)(rnd() % 40) - 30);
        }
        for (int kind = 0; kind < 2; kind++) {
            enum engine_type t = kind ? ENGINE_TYPE_BF16 : ENGINE_TYPE_F16;
            ref_of(t)->from_f32(x, r16, N - 3); /* an odd count exercises the tails */
            for (int level = 1; level <= (int)cpu; level++) {
                memset(y16, 0, N * 2);
                quant_type_get(t, (enum quant_level)level)->from_f32(x, y16, N - 3);
                CHECK(memcmp(y16, r16, (N - 3) * 2) == 0);
            }
        }
    }
    free(x);
    free(r16);
    free(y16);
    free(h);
    free(ref);
    free(y);
}

/* ---- 3: activation quantizers against the rules, independently ---- */

/* llama.cpp's rules (shared/ref/README.md), written out again. */
static float rule_f16(float v) /* RNE to F16, as a value; |v| < 65504 */
{
    if (v == 0)
        return 0;
    int e;
    frexp(v, &e); /* v = f * 2^e, 0.5 <= |f| < 1 */
    if (e < -13)
        e = -13; /* subnormals: fixed ulp 2^-24 */
    double ulp = ldexp(1, e - 11);
    return (float)(nearbyint(v / ulp) * ulp);
}

static void rule_q8_0(const float *x, float *d, int8_t *q, int *sum)
{
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    *d = amax / 127.0f;
    float id = amax != 0 ? 127.0f / amax : 0.0f;
    *sum = 0;
    for (int j = 0; j < 32; j++) {
        float p = x[j] * id;
        q[j] = (int8_t)lrintf(p);
        *sum += q[j];
    }
}

static void rule_q8_k(const float *x, float *d, int8_t *q, int16_t *bsums)
{
    float max = 0, amax = 0;
    for (int j = 0; j < 256; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    if (amax == 0) {
        *d = 0;
        memset(q, 0, 256);
        memset(bsums, 0, 32);
        return;
    }
    float iscale = -127.0f / max;
    for (int j = 0; j < 256; j++) {
        float p = iscale * x[j];
        long v = lrintf(p);
        q[j] = (int8_t)(v < 127 ? v : 127);
    }
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += q[16 * g + j];
        bsums[g] = (int16_t)s;
    }
    *d = 1.0f / iscale;
}

static void check_q8_rules(const struct quant_type *q8_0, const struct quant_type *q8_1,
                           const struct quant_type *q8_k, const float *x, size_t n)
{
    struct quant_block_q8_0 *b0 = xmalloc(n / 32 * sizeof(*b0));
    struct quant_block_q8_1 *b1 = xmalloc(n / 32 * sizeof(*b1));
    struct quant_block_q8_k *bk = xmalloc(n / 256 * sizeof(*bk));
    q8_0->from_f32(x, b0, n);
    q8_1->from_f32(x, b1, n);
    for (size_t i = 0; i < n / 32; i++) {
        float d;
        int8_t q[32];
        int sum;
        rule_q8_0(x + 32 * i, &d, q, &sum);
        CHECK(quant_f16_to_f32(b0[i].d) == rule_f16(d));
        CHECK(memcmp(b0[i].qs, q, 32) == 0);
        CHECK(quant_f16_to_f32(b1[i].d) == rule_f16(d));
        CHECK(memcmp(b1[i].qs, q, 32) == 0);
        CHECK(quant_f16_to_f32(b1[i].s) == rule_f16(d * (float)sum));
    }
    if (n % 256 == 0) {
        q8_k->from_f32(x, bk, n);
        for (size_t i = 0; i < n / 256; i++) {
            float d;
            int8_t q[256];
            int16_t bs[16];
            rule_q8_k(x + 256 * i, &d, q, bs);
            CHECK(bits_f(bk[i].d) == bits_f(d));
            CHECK(memcmp(bk[i].qs, q, 256) == 0);
            CHECK(memcmp(bk[i].bsums, bs, sizeof(bs)) == 0);
        }
    }
    free(b0);
    free(b1);
    free(bk);
}

static void test_quantizers(enum quant_level cpu)
{
    enum { N = 256 * 24 };
    float *x = xmalloc(N * sizeof(float));
    for (int level = 0; level <= (int)cpu; level++) {
        enum quant_level l = (enum quant_level)level;
        const struct quant_type *q8_0 = quant_type_get(ENGINE_TYPE_Q8_0, l);
        const struct quant_type *q8_1 = quant_type_get(ENGINE_TYPE_Q8_1, l);
        const struct quant_type *q8_k = quant_type_get(ENGINE_TYPE_Q8_K, l);
        CHECK(q8_0->from_f32 && q8_1->from_f32 && q8_k->from_f32);

        /* Random blocks of many magnitudes, some all zero, some with
         * equal-magnitude extremes of both signs. */
        for (size_t i = 0; i < N; i++)
            x[i] = gauss() * (float)ldexp(1, (int)((i / 256) % 12) - 6);
        memset(x + 256, 0, 256 * sizeof(float));
        memset(x + 32 * 20, 0, 32 * sizeof(float));
        x[512 + 10] = 9.0f;
        x[512 + 200] = -9.0f;
        x[768 + 5] = -9.0f;
        x[768 + 250] = 9.0f;
        check_q8_rules(q8_0, q8_1, q8_k, x, N);

        /* Ties: amax = 127 makes the multiplier exactly 1 (Q8_0) and
         * max = -127 makes iscale exactly 1 (Q8_K): x.5 must round to even. */
        static const float tie_x[] = {2.5f, -2.5f, 3.5f, -3.5f, 0.5f, -0.5f, 1.5f, 126.5f};
        static const int tie_q[] = {2, -2, 4, -4, 0, 0, 2, 126};
        float blk[256];
        for (int j = 0; j < 256; j++)
            blk[j] = (float)((j * 7) % 50) - 25.0f;
        blk[0] = -127.0f;
        for (size_t j = 0; j < SHOAL_ARRAY_LEN(tie_x); j++)
            blk[1 + j] = tie_x[j];
        struct quant_block_q8_0 b0[8];
        struct quant_block_q8_k bk;
        q8_0->from_f32(blk, b0, 256);
        q8_k->from_f32(blk, &bk, 256);
        for (size_t j = 0; j < SHOAL_ARRAY_LEN(tie_x); j++) {
            CHECK_EQ_INT(b0[0].qs[1 + j], tie_q[j]);
            CHECK_EQ_INT(bk.qs[1 + j], tie_q[j]);
        }
        CHECK_EQ_INT(b0[0].qs[0], -127);
        CHECK_EQ_INT(bk.qs[0], -127);
        CHECK(bk.d == 1.0f);
        /* With max = +127, iscale = -1: the signs flip, d is -1. */
        blk[0] = 127.0f;
        q8_k->from_f32(blk, &bk, 256);
        CHECK(bk.d == -1.0f);
        CHECK_EQ_INT(bk.qs[0], -127);
        for (size_t j = 0; j < SHOAL_ARRAY_LEN(tie_x); j++)
            CHECK_EQ_INT(bk.qs[1 + j], -tie_q[j]);
        /* The first of two equal magnitudes sets the sign. */
        memset(blk, 0, sizeof(blk));
        blk[3] = 5.0f;
        blk[7] = -5.0f;
        q8_k->from_f32(blk, &bk, 256);
        CHECK(bk.d < 0);
        CHECK_EQ_INT(bk.qs[3], -127);
        CHECK_EQ_INT(bk.qs[7], 127);
        CHECK_EQ_INT(bk.bsums[0], 0);
        blk[3] = -5.0f;
        blk[7] = 5.0f;
        q8_k->from_f32(blk, &bk, 256);
        CHECK(bk.d > 0);
        CHECK_EQ_INT(bk.qs[3], -127);
        /* All zero: zero scale, quants and sums. */
        memset(blk, 0, sizeof(blk));
        memset(&bk, 0x55, sizeof(bk));
        memset(b0, 0x55, sizeof(b0));
        q8_k->from_f32(blk, &bk, 256);
        q8_0->from_f32(blk, b0, 256);
        struct quant_block_q8_k zk;
        memset(&zk, 0, sizeof(zk));
        CHECK(memcmp(&bk, &zk, sizeof(bk)) == 0);
        for (int i = 0; i < 8; i++) {
            CHECK(b0[i].d == 0);
            for (int j = 0; j < 32; j++)
                CHECK(b0[i].qs[j] == 0);
        }
        struct quant_block_q8_1 b1;
        memset(&b1, 0x55, sizeof(b1));
        q8_1->from_f32(blk, &b1, 32);
        CHECK(b1.d == 0 && b1.s == 0);
    }
    /* The same bits at every level, on the random input. */
    for (size_t i = 0; i < N; i++)
        x[i] = gauss() * (float)ldexp(1, (int)(rnd() % 20) - 10);
    static const enum engine_type qt[] = {ENGINE_TYPE_Q8_0, ENGINE_TYPE_Q8_1, ENGINE_TYPE_Q8_K,
                                          ENGINE_TYPE_F32};
    uint8_t *r = xmalloc(N * 4), *y = xmalloc(N * 4);
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(qt); k++) {
        const struct quant_type *rq = ref_of(qt[k]);
        size_t bytes = N / rq->block_elems * rq->block_bytes;
        rq->from_f32(x, r, N);
        for (int level = 1; level <= (int)cpu; level++) {
            const struct quant_type *q = quant_type_get(qt[k], (enum quant_level)level);
            memset(y, 0xaa, bytes);
            q->from_f32(x, y, N);
            CHECK(memcmp(r, y, bytes) == 0);
            /* and dequantization of what they wrote */
            float *f1 = xmalloc(N * sizeof(float)), *f2 = xmalloc(N * sizeof(float));
            rq->to_f32(r, f1, N);
            q->to_f32(r, f2, N);
            CHECK(memcmp(f1, f2, N * sizeof(float)) == 0);
            free(f1);
            free(f2);
        }
    }
    free(r);
    free(y);
    free(x);
}

/* ---- Dispatch ---- */

static void test_dispatch(enum quant_level cpu)
{
    bool warned;
    CHECK(quant_level_choose(NULL, QUANT_LEVEL_AVX2, &warned) == QUANT_LEVEL_AVX2 && !warned);
    CHECK(quant_level_choose("", QUANT_LEVEL_AVX2, &warned) == QUANT_LEVEL_AVX2 && !warned);
    CHECK(quant_level_choose("ref", QUANT_LEVEL_AVX512, &warned) == QUANT_LEVEL_REF && !warned);
    CHECK(quant_level_choose("avx2", QUANT_LEVEL_AVX512, &warned) == QUANT_LEVEL_AVX2 && !warned);
    CHECK(quant_level_choose("avx512", QUANT_LEVEL_AVX2, &warned) == QUANT_LEVEL_AVX2 && warned);
    CHECK(quant_level_choose("avx512", QUANT_LEVEL_REF, &warned) == QUANT_LEVEL_REF && warned);
    CHECK(quant_level_choose("AVX2", QUANT_LEVEL_AVX2, &warned) == QUANT_LEVEL_AVX2 && warned);
    CHECK(quant_level_choose("sse", QUANT_LEVEL_AVX512, &warned) == QUANT_LEVEL_AVX512 && warned);
    enum quant_level l;
    CHECK(quant_level_parse("avx512", &l) == SHOAL_OK && l == QUANT_LEVEL_AVX512);
    CHECK(quant_level_parse("avx", &l) == SHOAL_ERR_INVALID);
    CHECK_STR(quant_level_name(QUANT_LEVEL_AVX2), "avx2");
    CHECK(quant_level_best() <= cpu);

    for (int t = 0; t < ENGINE_TYPE_COUNT; t++)
        for (int level = 0; level < QUANT_LEVEL_COUNT; level++) {
            const struct quant_type *q =
                quant_type_get((enum engine_type)t, (enum quant_level)level);
            if (!q)
                continue;
            uint32_t be, bb;
            CHECK(q->type == (enum engine_type)t);
            CHECK(q->level <= (enum quant_level)level && q->level <= cpu);
            CHECK(engine_type_layout(q->type, &be, &bb) && be == q->block_elems &&
                  bb == q->block_bytes);
            CHECK(q->to_f32 != NULL);
            CHECK((q->vec_dot == NULL) == (q->gemm == NULL));
        }
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(weight_types); i++)
        CHECK(ref_of(weight_types[i]) && ref_of(weight_types[i])->vec_dot);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(activation_types); i++)
        CHECK(ref_of(activation_types[i]) && ref_of(activation_types[i])->from_f32);
    CHECK(ref_of(ENGINE_TYPE_Q4_K)->from_f32 == NULL);
    CHECK(ref_of(ENGINE_TYPE_Q8_K)->vec_dot == NULL);
    CHECK(quant_type_get(ENGINE_TYPE_IQ2_XXS, QUANT_LEVEL_AVX512) == NULL);
    CHECK(quant_type_get(ENGINE_TYPE_COUNT, QUANT_LEVEL_REF) == NULL);
    CHECK(quant_type_get(ENGINE_TYPE_Q4_K, QUANT_LEVEL_COUNT) == NULL);
    /* A level above the CPU is clamped; a level without a kernel falls back. */
    CHECK(quant_type_get(ENGINE_TYPE_Q4_K, QUANT_LEVEL_AVX512)->level == cpu);
    CHECK(quant_type_get(ENGINE_TYPE_Q4_K, QUANT_LEVEL_REF)->level == QUANT_LEVEL_REF);
    if (cpu >= QUANT_LEVEL_AVX2)
        CHECK(quant_type_get(ENGINE_TYPE_Q2_K, QUANT_LEVEL_AVX512)->level == QUANT_LEVEL_AVX2);
    fprintf(stderr, "test_quant: cpu level %s, best %s\n", quant_level_name(cpu),
            quant_level_name(quant_level_best()));
}

/* `--expect-level ref`: SHOAL_CPU=ref forces the reference. `--expect-level
 * cpu`: SHOAL_CPU is unknown, ignored with one warning naming it. */
static int expect_level(const char *what)
{
    char path[] = "/tmp/test_quant_log_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return test_report("test_quant");
    unlink(path);
    shoal_log_set_fd(fd);
    enum quant_level best = quant_level_best();
    CHECK(quant_level_best() == best); /* cached, no second warning */
    shoal_log_set_fd(2);
    char log[4096] = "";
    ssize_t n = pread(fd, log, sizeof(log) - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(fd);
    const char *env = getenv("SHOAL_CPU");
    if (strcmp(what, "ref") == 0) {
        CHECK(best == QUANT_LEVEL_REF);
        CHECK(quant_type_get(ENGINE_TYPE_Q4_K, best)->level == QUANT_LEVEL_REF);
        CHECK(log[0] == '\0');
    } else {
        CHECK(best == quant_level_cpu());
        CHECK(env && strstr(log, "SHOAL_CPU=") && strstr(log, env));
        CHECK(strstr(log, "level=warn") != NULL);
        const char *second = strstr(log, "\n");
        CHECK(second && second[1] == '\0'); /* exactly one line */
    }
    fprintf(stderr, "%s", log);
    return test_report("test_quant --expect-level");
}

/* ---- 4: dequantization of the reference models against the F32 file ---- */

#ifdef SHOAL_REF_DIR

/* How a type quantizes: the block its scales cover, how many levels, and
 * whether the grid is symmetric around zero (step 2 amax / (levels - 1))
 * or spans [min(0, lo), hi] (step (hi - lo) / (levels - 1)). bound is the
 * largest error allowed, in steps: half a step for rounding, plus what the
 * F16 scale's own rounding adds (up to 127 * 2^-11 = 0.06 step for Q8_0);
 * Q4_0 / Q5_0 map -amax onto the last level, 0.94 / 0.97 steps off; the
 * K-quants' coarse sub-block scales (4 or 6 bits, relative to the
 * super-block) and llama.cpp's error-minimising search move single
 * elements by up to about 1.25 steps on these weights. */
struct grid {
    enum engine_type type;
    int sub, levels;
    bool symmetric;
    double bound;
};

static const struct grid grids[] = {
    {ENGINE_TYPE_Q8_0, 32, 255, true, 0.57}, {ENGINE_TYPE_Q4_0, 32, 16, true, 1.0},
    {ENGINE_TYPE_Q5_0, 32, 32, true, 1.0},   {ENGINE_TYPE_Q4_1, 32, 16, false, 0.55},
    {ENGINE_TYPE_Q5_1, 32, 32, false, 0.55}, {ENGINE_TYPE_Q2_K, 16, 4, false, 1.5},
    {ENGINE_TYPE_Q3_K, 16, 8, true, 1.5},    {ENGINE_TYPE_Q4_K, 32, 16, false, 1.5},
    {ENGINE_TYPE_Q5_K, 32, 32, false, 1.5},  {ENGINE_TYPE_Q6_K, 16, 64, true, 1.5},
};

static struct {
    double worst_steps, worst_rel;
    uint64_t elems;
} seen[ENGINE_TYPE_COUNT];

static void compare_tensor(const char *file, const struct gguf_tensor *tq,
                           const struct gguf_tensor *tf)
{
    uint64_t n = tq->ne[0] * tq->ne[1] * tq->ne[2] * tq->ne[3];
    const float *w = tf->data;
    float *y = xmalloc(n * sizeof(float));
    const struct quant_type *q = quant_type_get(tq->type, quant_level_best());
    const struct quant_type *r = ref_of(tq->type);
    CHECK(q && r);
    if (!q || !r) {
        fprintf(stderr, "  %s: no kernels for %s\n", file, engine_type_name(tq->type));
        free(y);
        return;
    }
    q->to_f32(tq->data, y, n);
    if (q != r) {
        float *yr = xmalloc(n * sizeof(float));
        r->to_f32(tq->data, yr, n);
        CHECK(memcmp(y, yr, n * sizeof(float)) == 0);
        free(yr);
    }
    seen[tq->type].elems += n;
    if (tq->type == ENGINE_TYPE_F32 || tq->type == ENGINE_TYPE_F16 ||
        tq->type == ENGINE_TYPE_BF16) {
        /* Bit-exact with the F32 weight rounded to nearest even. */
        const uint16_t *h = tq->data;
        uint64_t bad = 0;
        for (uint64_t i = 0; i < n; i++) {
            float want = w[i];
            if (tq->type == ENGINE_TYPE_F16) {
                want = rule_f16(w[i]);
                bad += h[i] != quant_f32_to_f16(w[i]);
            } else if (tq->type == ENGINE_TYPE_BF16) {
                uint32_t u = bits_f(w[i]), lo = u & 0xffff, keep = u & 0xffff0000u;
                if (lo > 0x8000 || (lo == 0x8000 && (u & 0x10000)))
                    keep += 0x10000;
                want = f_bits(keep);
            }
            bad += bits_f(y[i]) != bits_f(want);
        }
        CHECK(bad == 0);
        if (bad)
            fprintf(stderr, "  %s %.*s: %" PRIu64 " elements differ\n", file, (int)tq->name.n,
                    tq->name.p, bad);
        free(y);
        return;
    }
    const struct grid *g = NULL;
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(grids); k++)
        if (grids[k].type == tq->type)
            g = &grids[k];
    CHECK(g != NULL);
    if (!g) {
        free(y);
        return;
    }
    double worst = 0, worst_rel = 0;
    for (uint64_t b = 0; b < n; b += (uint64_t)g->sub) {
        float lo = FLT_MAX, hi = -FLT_MAX, amax = 0;
        for (int j = 0; j < g->sub; j++) {
            lo = fminf(lo, w[b + j]);
            hi = fmaxf(hi, w[b + j]);
            amax = fmaxf(amax, fabsf(w[b + j]));
        }
        double step = g->symmetric ? 2.0 * amax / (g->levels - 1)
                                   : ((double)hi - fmin(lo, 0)) / (g->levels - 1);
        for (int j = 0; j < g->sub; j++) {
            double err = fabs((double)y[b + j] - w[b + j]);
            double steps = step > 0 ? err / step : (err > 0 ? INFINITY : 0);
            if (steps > worst)
                worst = steps;
            if (amax > 0 && err / amax > worst_rel)
                worst_rel = err / amax;
        }
    }
    CHECK(worst <= g->bound);
    if (worst > g->bound)
        fprintf(stderr, "  %s %.*s (%s): error %.3f steps > %.2f\n", file, (int)tq->name.n,
                tq->name.p, engine_type_name(tq->type), worst, g->bound);
    if (worst > seen[tq->type].worst_steps)
        seen[tq->type].worst_steps = worst;
    if (worst_rel > seen[tq->type].worst_rel)
        seen[tq->type].worst_rel = worst_rel;
    free(y);
}

static int test_models(void)
{
    static const char *const files[] = {
        "llama-tiny-F16.gguf",    "llama-tiny-BF16.gguf",   "llama-tiny-Q8_0.gguf",
        "llama-tiny-Q4_0.gguf",   "llama-tiny-Q4_1.gguf",   "llama-tiny-Q5_0.gguf",
        "llama-tiny-Q5_1.gguf",   "llama-tiny-Q2_K.gguf",   "llama-tiny-Q3_K_M.gguf",
        "llama-tiny-Q4_K_M.gguf", "llama-tiny-Q5_K_M.gguf", "llama-tiny-Q6_K.gguf",
    };
    char path[4096];
    struct shoal_diag d;
    struct gguf *f32 = NULL;
    snprintf(path, sizeof(path), "%s/models/llama-tiny-F32.gguf", SHOAL_REF_DIR);
    CHECK(gguf_open(path, &f32, &d) == SHOAL_OK);
    if (!f32) {
        fprintf(stderr, "%s: %s\n", path, d.msg);
        return test_report("test_quant_ref");
    }
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(files); k++) {
        struct gguf *g = NULL;
        snprintf(path, sizeof(path), "%s/models/%s", SHOAL_REF_DIR, files[k]);
        CHECK(gguf_open(path, &g, &d) == SHOAL_OK);
        if (!g) {
            fprintf(stderr, "%s: %s\n", path, d.msg);
            continue;
        }
        CHECK(gguf_n_tensors(g) == gguf_n_tensors(f32));
        for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
            const struct gguf_tensor *tq = gguf_tensor_at(g, i);
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)tq->name.n, tq->name.p);
            const struct gguf_tensor *tf = gguf_find_tensor(f32, name);
            CHECK(tf && tf->type == ENGINE_TYPE_F32);
            if (!tf)
                continue;
            CHECK(memcmp(tq->ne, tf->ne, sizeof(tq->ne)) == 0);
            compare_tensor(files[k], tq, tf);
        }
        gguf_close(g);
    }
    gguf_close(f32);
    fprintf(stderr,
            "dequantized vs llama-tiny-F32, max error per element (in steps of "
            "range/(levels-1) of its sub-block; as a fraction of the sub-block's max |w|):\n");
    for (int t = 0; t < ENGINE_TYPE_COUNT; t++) {
        if (!seen[t].elems || t == ENGINE_TYPE_F32)
            continue;
        if (is_float((enum engine_type)t))
            fprintf(stderr, "  %-5s %8" PRIu64 " elements: bit-exact with RNE of the F32 weight\n",
                    engine_type_name((enum engine_type)t), seen[t].elems);
        else
            fprintf(stderr, "  %-5s %8" PRIu64 " elements: %.3f steps, %.4f of max |w|\n",
                    engine_type_name((enum engine_type)t), seen[t].elems, seen[t].worst_steps,
                    seen[t].worst_rel);
    }
    return test_report("test_quant_ref");
}

#endif

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--expect-level") == 0)
        return expect_level(argv[2]);
#ifdef SHOAL_REF_DIR
    if (argc == 1)
        return test_models();
#endif
    if (argc != 1) {
        fputs("usage: test_quant [--expect-level ref|cpu]\n", stderr);
        return 2;
    }
    enum quant_level cpu = quant_level_cpu();
    test_dispatch(cpu);
    test_f16_bf16(cpu);
    test_quantizers(cpu);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(weight_types); i++)
        test_type_kernels(weight_types[i], cpu);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(weight_types); i++)
        test_gen_rows(weight_types[i], cpu);
    test_signed_extremes(cpu);
    fprintf(stderr, "worst |error| / sum|w a|: ref vs oracle, levels vs ref\n");
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(weight_types); i++) {
        enum engine_type t = weight_types[i];
        fprintf(stderr, "  %-6s %.2e  %.2e\n", engine_type_name(t), worst_oracle[t], worst_simd[t]);
    }
    return test_report("test_quant");
}
