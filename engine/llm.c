/* llm.c: the forward pass of decoder-only transformers (llama, qwen2,
 * qwen3, phi3) over GGUF weights in any supported tensor type, on the
 * engine's kernels (quant.h) and compute pool (pool.h). The numerics follow
 * llama.cpp's CPU backend where it matters for agreement: activations are
 * converted to each weight type's dot type before a product, the K/V cache
 * is F16 by default with Q and the softmax weights rounded to F16 for the
 * attention products, RMSNorm sums in double, RoPE angles advance by
 * repeated multiplication. Invariant: an engine_llm is immutable after
 * engine_llm_new (sequences share it read-only); all mutable state is in
 * the engine_seq. */
#include "engine_internal.h"
#include "gguf.h"
#include "pool.h"
#include "quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLM_MAX_LAYERS 512

/* A weight matrix (or vector) bound from the file, with its kernels. */
struct llm_tensor {
    const void *data; /* NULL when absent */
    const struct quant_type *qt;
    uint64_t ne0, ne1; /* columns (input width) and rows */
    size_t row_bytes;
};

struct llm_layer {
    struct llm_tensor attn_norm, wq, wk, wv, wqkv, wo, bq, bk, bv, q_norm, k_norm;
    struct llm_tensor ffn_norm, gate, up, gate_up, down;
};

struct engine_llm {
    const struct engine_model *model;
    struct engine_hparams hp;
    enum quant_level level;
    struct llm_tensor tok_embd, output_norm, output;
    struct llm_layer *layers;
    /* derived sizes */
    uint32_t n_q, n_k, n_v; /* widths of the Q, K and V projections */
    float rope_theta_scale;  /* freq_base^(-2/rope_dims) */
    float rope_freq_scale;   /* 1/scaling factor (1 when none) */
    float yarn_ext_factor, yarn_attn_factor, yarn_corr[2];
};

/* ---- binding the weights ---- */

static enum shoal_err bind(const struct engine_llm *l, const char *name, uint64_t ne0, uint64_t ne1,
                           bool required, struct llm_tensor *out, struct shoal_diag *d)
{
    const struct gguf_tensor *t = gguf_find_tensor(l->model->gguf, name);
    memset(out, 0, sizeof(*out));
    if (!t) {
        if (!required)
            return SHOAL_OK;
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "%s: tensor '%s' is missing", l->hp.arch,
                              name);
    }
    uint64_t t1 = t->n_dims >= 2 ? t->ne[1] : 1;
    if (t->ne[0] != ne0 || t1 != ne1 || (t->n_dims > 2 && (t->ne[2] != 1 || t->ne[3] != 1)))
        return shoal_diag_set(d, SHOAL_ERR_INVALID,
                              "tensor '%s' has shape [%llu, %llu], expected [%llu, %llu]", name,
                              (unsigned long long)t->ne[0], (unsigned long long)t1,
                              (unsigned long long)ne0, (unsigned long long)ne1);
    const struct quant_type *qt = quant_type_get(t->type, l->level);
    if (!qt || !qt->to_f32 || !qt->vec_dot) {
        const char *tn = engine_type_name(t->type);
        return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                              "tensor '%s' has type %s, which the engine cannot compute with",
                              name, tn ? tn : "?");
    }
    out->data = t->data;
    out->qt = qt;
    out->ne0 = ne0;
    out->ne1 = ne1;
    out->row_bytes = (size_t)(ne0 / qt->block_elems) * qt->block_bytes;
    return SHOAL_OK;
}

enum arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_PHI3 };

static enum shoal_err bind_layers(struct engine_llm *l, enum arch a, struct shoal_diag *d)
{
    const struct engine_hparams *hp = &l->hp;
    char name[96];
    enum shoal_err err;
    uint64_t E = hp->n_embd, F = hp->n_ff;
    for (uint32_t i = 0; i < hp->n_layer; i++) {
        struct llm_layer *L = &l->layers[i];
        struct {
            const char *suffix;
            struct llm_tensor *t;
            uint64_t ne0, ne1;
            bool required;
        } want[] = {
            {"attn_norm.weight", &L->attn_norm, E, 1, true},
            {"attn_q.weight", &L->wq, E, l->n_q, a != ARCH_PHI3},
            {"attn_k.weight", &L->wk, E, l->n_k, a != ARCH_PHI3},
            {"attn_v.weight", &L->wv, E, l->n_v, a != ARCH_PHI3},
            {"attn_qkv.weight", &L->wqkv, E, (uint64_t)l->n_q + l->n_k + l->n_v, a == ARCH_PHI3},
            {"attn_output.weight", &L->wo, l->n_q / hp->head_dim_k * hp->head_dim_v, E, true},
            {"attn_q.bias", &L->bq, l->n_q, 1, a == ARCH_QWEN2},
            {"attn_k.bias", &L->bk, l->n_k, 1, a == ARCH_QWEN2},
            {"attn_v.bias", &L->bv, l->n_v, 1, a == ARCH_QWEN2},
            {"attn_q_norm.weight", &L->q_norm, hp->head_dim_k, 1, a == ARCH_QWEN3},
            {"attn_k_norm.weight", &L->k_norm, hp->head_dim_k, 1, a == ARCH_QWEN3},
            {"ffn_norm.weight", &L->ffn_norm, E, 1, true},
            {"ffn_gate.weight", &L->gate, E, F, a != ARCH_PHI3},
            {"ffn_up.weight", a == ARCH_PHI3 ? &L->gate_up : &L->up, E,
             a == ARCH_PHI3 ? 2 * F : F, true},
            {"ffn_down.weight", &L->down, F, E, true},
        };
        for (size_t k = 0; k < SHOAL_ARRAY_LEN(want); k++) {
            snprintf(name, sizeof(name), "blk.%u.%s", i, want[k].suffix);
            /* A phi3 file may also come with separate q/k/v. */
            bool req = want[k].required;
            if (a == ARCH_PHI3 && k >= 1 && k <= 3)
                req = false;
            if ((err = bind(l, name, want[k].ne0, want[k].ne1, req, want[k].t, d)) != SHOAL_OK)
                return err;
        }
        bool split = L->wq.data && L->wk.data && L->wv.data;
        if (!split && !L->wqkv.data)
            return shoal_diag_set(d, SHOAL_ERR_INVALID,
                                  "blk.%u: neither attn_qkv nor attn_q/attn_k/attn_v", i);
        /* Norm weights and biases are read as f32 vectors. */
        const struct llm_tensor *vecs[] = {&L->attn_norm, &L->ffn_norm, &L->bq,    &L->bk,
                                           &L->bv,        &L->q_norm,   &L->k_norm};
        for (size_t k = 0; k < SHOAL_ARRAY_LEN(vecs); k++)
            if (vecs[k]->data && vecs[k]->qt->type != ENGINE_TYPE_F32)
                return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                                      "blk.%u: norm weights and biases must be F32", i);
    }
    return SHOAL_OK;
}

/* YaRN's correction range (llama.cpp's ggml_rope_yarn_corr_dims with
 * beta_fast 32, beta_slow 1). */
static float corr_dim(uint32_t n_dims, uint32_t n_ctx_orig, float n_rot, float base)
{
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) /
           (2.0f * logf(base));
}

enum shoal_err engine_llm_new(const struct engine_model *m, struct engine_llm **out,
                              struct shoal_diag *d)
{
    const struct engine_hparams *hp = engine_model_hparams(m);
    enum arch a;
    if (!strcmp(hp->arch, "llama"))
        a = ARCH_LLAMA;
    else if (!strcmp(hp->arch, "qwen2"))
        a = ARCH_QWEN2;
    else if (!strcmp(hp->arch, "qwen3"))
        a = ARCH_QWEN3;
    else if (!strcmp(hp->arch, "phi3"))
        a = ARCH_PHI3;
    else
        return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                              "architecture '%s' cannot run yet (supported: llama, qwen2, qwen3, "
                              "phi3)",
                              hp->arch);
    if (hp->n_embd == 0 || hp->n_layer == 0 || hp->n_layer > LLM_MAX_LAYERS || hp->n_head == 0 ||
        hp->n_head_kv == 0 || hp->n_ff == 0 || hp->n_vocab == 0 || hp->head_dim_k == 0 ||
        hp->head_dim_v == 0 || hp->n_head % hp->n_head_kv != 0)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "%s: incomplete hyper-parameters", hp->arch);
    if (hp->rope_dims > hp->head_dim_k || hp->rope_dims % 2)
        return shoal_diag_set(d, SHOAL_ERR_INVALID,
                              "%s: rope.dimension_count %u does not fit head size %u", hp->arch,
                              hp->rope_dims, hp->head_dim_k);
    if (hp->rope_scaling == ENGINE_ROPE_SCALING_LONGROPE)
        return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                              "%s: LongRoPE scaling (rope factors) is not supported", hp->arch);
    if (hp->n_expert > 1)
        return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED, "%s: mixture-of-experts is not supported",
                              hp->arch);
    struct engine_llm *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    l->model = m;
    l->hp = *hp;
    l->level = quant_level_best();
    l->n_q = hp->n_head * hp->head_dim_k;
    l->n_k = hp->n_head_kv * hp->head_dim_k;
    l->n_v = hp->n_head_kv * hp->head_dim_v;
    l->rope_theta_scale = powf(hp->rope_freq_base, -2.0f / (float)hp->rope_dims);
    l->rope_freq_scale = 1.0f;
    l->yarn_attn_factor = 1.0f;
    if (hp->rope_scaling != ENGINE_ROPE_SCALING_NONE && hp->rope_scale_factor > 0)
        l->rope_freq_scale = 1.0f / hp->rope_scale_factor;
    if (hp->rope_scaling == ENGINE_ROPE_SCALING_YARN) {
        uint32_t orig = hp->rope_orig_context ? hp->rope_orig_context : hp->context_length;
        float lo = floorf(corr_dim(hp->rope_dims, orig, 32.0f, hp->rope_freq_base));
        float hi = ceilf(corr_dim(hp->rope_dims, orig, 1.0f, hp->rope_freq_base));
        l->yarn_corr[0] = lo > 0 ? lo : 0;
        l->yarn_corr[1] = hi < (float)(hp->rope_dims - 1) ? hi : (float)(hp->rope_dims - 1);
        l->yarn_ext_factor = 1.0f;
    }
    enum shoal_err err = SHOAL_ERR_NOMEM;
    l->layers = calloc(hp->n_layer, sizeof(*l->layers));
    if (!l->layers) {
        shoal_diag_set(d, err, "out of memory");
        goto fail;
    }
    if ((err = bind(l, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &l->tok_embd, d)) ||
        (err = bind(l, "output_norm.weight", hp->n_embd, 1, true, &l->output_norm, d)) ||
        (err = bind(l, "output.weight", hp->n_embd, hp->n_vocab, false, &l->output, d)) ||
        (err = bind_layers(l, a, d)))
        goto fail;
    if (!l->output.data)
        l->output = l->tok_embd; /* tied embeddings */
    if (l->output_norm.qt->type != ENGINE_TYPE_F32) {
        err = shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED, "output_norm.weight must be F32");
        goto fail;
    }
    *out = l;
    return SHOAL_OK;
fail:
    free(l->layers);
    free(l);
    return err;
}

void engine_llm_free(struct engine_llm *l)
{
    if (!l)
        return;
    free(l->layers);
    free(l);
}

const struct engine_hparams *engine_llm_hparams(const struct engine_llm *l)
{
    return &l->hp;
}

/* ---- sequences ---- */

struct engine_seq {
    const struct engine_llm *l;
    struct pool *pool;
    uint32_t n_ctx, n_batch, pos;
    bool kv_f32;
    const struct quant_type *kv_qt; /* F16 or F32: the cache's element type */
    size_t kv_elem;                 /* bytes per cached element */
    /* Per layer: K as rows [pos][n_k]; V transposed as [n_v][n_ctx] so the
     * weighted sum over positions is one dot product per output element. */
    uint8_t **k, **v;
    /* scratch, sized for n_batch rows */
    float *x, *h, *q, *kk, *vv, *att, *ff_g, *ff_u, *logits;
    uint8_t *qa;  /* activations converted to a dot type */
    size_t qa_cap;
    uint8_t *qk;  /* per-thread: Q row and softmax weights in the cache type */
    float *scores; /* per-thread: n_ctx scores */
    size_t n_logits; /* rows in logits from the last decode */
};

void engine_seq_free(struct engine_seq *s)
{
    if (!s)
        return;
    pool_free(s->pool);
    for (uint32_t i = 0; s->k && i < s->l->hp.n_layer; i++) {
        free(s->k[i]);
        free(s->v[i]);
    }
    free(s->k);
    free(s->v);
    free(s->x);
    free(s->h);
    free(s->q);
    free(s->kk);
    free(s->vv);
    free(s->att);
    free(s->ff_g);
    free(s->ff_u);
    free(s->logits);
    free(s->qa);
    free(s->qk);
    free(s->scores);
    free(s);
}

static void *alloc_floats(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

/* The largest buffer any activation conversion needs: rows of the widest
 * input, in the roomiest dot type (F32). */
static size_t act_bytes(const struct engine_llm *l, uint32_t rows)
{
    uint32_t w = l->hp.n_embd;
    if (l->hp.n_ff > w)
        w = l->hp.n_ff;
    if (l->n_q / l->hp.head_dim_k * l->hp.head_dim_v > w)
        w = l->n_q / l->hp.head_dim_k * l->hp.head_dim_v;
    return (size_t)rows * w * sizeof(float) + 4096;
}

enum shoal_err engine_seq_new(const struct engine_llm *l, const struct engine_seq_options *o,
                              struct engine_seq **out, struct shoal_diag *d)
{
    const struct engine_hparams *hp = &l->hp;
    uint32_t n_ctx = o && o->n_ctx ? o->n_ctx : (hp->context_length ? hp->context_length : 4096);
    if (hp->context_length && n_ctx > hp->context_length && hp->rope_scaling == 0)
        n_ctx = hp->context_length;
    if (n_ctx > (1u << 20))
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "context of %u tokens is too large", n_ctx);
    uint32_t n_batch = o && o->n_batch ? o->n_batch : 256;
    if (n_batch > n_ctx)
        n_batch = n_ctx;
    struct engine_seq *s = calloc(1, sizeof(*s));
    if (!s)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    s->l = l;
    s->n_ctx = n_ctx;
    s->n_batch = n_batch;
    s->kv_f32 = o && o->kv_f32;
    s->kv_qt = quant_type_get(s->kv_f32 ? ENGINE_TYPE_F32 : ENGINE_TYPE_F16, l->level);
    s->kv_elem = s->kv_f32 ? 4 : 2;
    if (pool_new(o ? o->n_threads : 0, &s->pool) != SHOAL_OK) {
        free(s);
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot start compute threads");
    }
    unsigned nth = pool_threads(s->pool);
    s->k = calloc(hp->n_layer, sizeof(*s->k));
    s->v = calloc(hp->n_layer, sizeof(*s->v));
    bool ok = s->k && s->v;
    for (uint32_t i = 0; ok && i < hp->n_layer; i++) {
        s->k[i] = calloc((size_t)n_ctx * l->n_k, s->kv_elem);
        s->v[i] = calloc((size_t)n_ctx * l->n_v, s->kv_elem);
        ok = s->k[i] && s->v[i];
    }
    uint32_t n_att = l->n_q / hp->head_dim_k * hp->head_dim_v;
    s->x = alloc_floats((size_t)n_batch * hp->n_embd);
    s->h = alloc_floats((size_t)n_batch * hp->n_embd);
    s->q = alloc_floats((size_t)n_batch * l->n_q);
    s->kk = alloc_floats((size_t)n_batch * l->n_k);
    s->vv = alloc_floats((size_t)n_batch * l->n_v);
    s->att = alloc_floats((size_t)n_batch * (n_att > hp->n_embd ? n_att : hp->n_embd));
    s->ff_g = alloc_floats((size_t)n_batch * hp->n_ff * 2);
    s->ff_u = alloc_floats((size_t)n_batch * hp->n_ff);
    s->logits = alloc_floats((size_t)n_batch * hp->n_vocab);
    s->qa_cap = act_bytes(l, n_batch);
    s->qa = malloc(s->qa_cap);
    size_t hd = hp->head_dim_k > hp->head_dim_v ? hp->head_dim_k : hp->head_dim_v;
    s->qk = malloc((size_t)nth * (hd + n_ctx) * 4 + 64);
    s->scores = alloc_floats((size_t)nth * n_ctx);
    ok = ok && s->x && s->h && s->q && s->kk && s->vv && s->att && s->ff_g && s->ff_u &&
         s->logits && s->qa && s->qk && s->scores;
    if (!ok) {
        engine_seq_free(s);
        return shoal_diag_set(d, SHOAL_ERR_NOMEM,
                              "out of memory for a %u-token context (K/V cache %zu MiB)", n_ctx,
                              (size_t)hp->n_layer * n_ctx * (l->n_k + l->n_v) * s->kv_elem >> 20);
    }
    *out = s;
    return SHOAL_OK;
}

uint32_t engine_seq_pos(const struct engine_seq *s)
{
    return s->pos;
}

uint32_t engine_seq_n_ctx(const struct engine_seq *s)
{
    return s->n_ctx;
}

void engine_seq_rewind(struct engine_seq *s, uint32_t pos)
{
    if (pos < s->pos)
        s->pos = pos;
}

const float *engine_seq_logits(const struct engine_seq *s, size_t i)
{
    if (i >= s->n_logits)
        return NULL;
    return s->logits + i * s->l->hp.n_vocab;
}

/* ---- the building blocks ---- */

/* y = x / sqrt(mean(x^2) + eps) * w, per row; the sum in double as ggml. */
static void rms_norm(const float *x, const float *w, float *y, size_t n, float eps)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * scale * w[i];
}

/* One matrix product job: out[t][r] = W[r] . act[t] (+ bias[r]). */
struct mm {
    const struct llm_tensor *w;
    const uint8_t *act; /* m rows in w's dot type */
    size_t act_row;
    size_t m;
    float *out;
    size_t out_stride;
    size_t r_off; /* rows of w start at this column of out */
    size_t r_end; /* rows [r_begin, r_end) of w; r_begin = 0 */
};

struct mm_batch {
    struct mm mm[4];
    unsigned n;
};

/* Rows of every matrix in the batch are split across threads in one go
 * (q, k and v, or gate and up, share one parallel step). */
static void mm_run(void *arg, unsigned ith, unsigned nth)
{
    const struct mm_batch *b = arg;
    size_t total = 0;
    for (unsigned i = 0; i < b->n; i++)
        total += b->mm[i].r_end;
    size_t r0, r1;
    pool_split(total, 16, ith, nth, &r0, &r1);
    size_t base = 0;
    for (unsigned i = 0; i < b->n && r0 < r1; i++) {
        const struct mm *m = &b->mm[i];
        size_t lo = r0 > base ? r0 - base : 0, hi = r1 - base;
        if (hi > m->r_end)
            hi = m->r_end;
        if (r0 < base + m->r_end && lo < hi) {
            const struct quant_type *qt = m->w->qt;
            if (m->m == 1 && qt->level == QUANT_LEVEL_REF) {
                /* One token (generation) on the reference: rows are short
                 * (a few hundred bytes) and each ends in a reduction, so
                 * the hardware prefetcher falls behind; ask for the row
                 * after next. The SIMD gemm streams its rows itself. */
                const uint8_t *w = (const uint8_t *)m->w->data;
                size_t rb = m->w->row_bytes;
                for (size_t r = lo; r < hi; r++) {
                    if (r + 2 < hi)
                        for (size_t o = 0; o < rb; o += 64)
                            __builtin_prefetch(w + (r + 2) * rb + o);
                    m->out[m->r_off + r] = qt->vec_dot((size_t)m->w->ne0, w + r * rb, m->act);
                }
            } else {
                qt->gemm((size_t)m->w->ne0, m->w->data, m->w->row_bytes, lo, hi, m->act,
                         m->act_row, m->m, m->out + m->r_off, m->out_stride);
            }
        }
        base += m->r_end;
    }
}

/* Convert m rows of x (width k, stride k) to the dot type of w into the
 * sequence's activation buffer; returns its row size. */
static size_t convert(struct engine_seq *s, const struct llm_tensor *w, const float *x, size_t m,
                      size_t k, uint8_t *dst)
{
    const struct quant_type *dt = quant_type_get(w->qt->dot_type, s->l->level);
    size_t row = k / dt->block_elems * dt->block_bytes;
    for (size_t t = 0; t < m; t++)
        dt->from_f32(x + t * k, dst + t * row, k);
    return row;
}

static void add_bias(float *y, const struct llm_tensor *b, size_t m, size_t n, size_t stride)
{
    if (!b->data)
        return;
    const float *bv = b->data;
    for (size_t t = 0; t < m; t++)
        for (size_t i = 0; i < n; i++)
            y[t * stride + i] += bv[i];
}

/* Several products with the same input x: convert once per dot type. */
static void matmuls(struct engine_seq *s, const float *x, size_t m, size_t k,
                    const struct llm_tensor *const *ws, float *const *outs, const size_t *strides,
                    const size_t *offs, unsigned n)
{
    struct mm_batch b = {.n = n};
    enum engine_type done_type = (enum engine_type)-1;
    size_t row = 0;
    uint8_t *act = s->qa;
    for (unsigned i = 0; i < n; i++) {
        if (ws[i]->qt->dot_type != done_type) {
            /* A second dot type goes after the first in the buffer. */
            if (done_type != (enum engine_type)-1)
                act += row * m;
            row = convert(s, ws[i], x, m, k, act);
            done_type = ws[i]->qt->dot_type;
        }
        b.mm[i] = (struct mm){.w = ws[i], .act = act, .act_row = row, .m = m, .out = outs[i],
                              .out_stride = strides[i], .r_off = offs[i],
                              .r_end = (size_t)ws[i]->ne1};
    }
    pool_run(s->pool, mm_run, &b);
}

/* RoPE over the first rope_dims of each head, in place, for token t at
 * position pos: llama.cpp's angle recurrence (theta *= theta_scale per
 * pair) and its YaRN mix. */
static void rope(const struct engine_llm *l, float *v, uint32_t n_heads, uint32_t hd, uint32_t pos)
{
    const struct engine_hparams *hp = &l->hp;
    uint32_t nd = hp->rope_dims;
    float cache[2 * 512];
    float cs[2];
    float theta = (float)pos;
    float mscale = l->yarn_attn_factor;
    if (l->yarn_ext_factor != 0)
        mscale *= 1.0f + 0.1f * logf(1.0f / l->rope_freq_scale);
    for (uint32_t i0 = 0; i0 < nd; i0 += 2) {
        float t_interp = l->rope_freq_scale * theta, t = t_interp;
        if (l->yarn_ext_factor != 0) {
            float y = ((float)(i0 / 2) - l->yarn_corr[0]) /
                      fmaxf(0.001f, l->yarn_corr[1] - l->yarn_corr[0]);
            float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * l->yarn_ext_factor;
            t = t_interp * (1 - ramp) + theta * ramp;
        }
        cs[0] = cosf(t) * mscale;
        cs[1] = sinf(t) * mscale;
        if (i0 < 2 * 512) {
            cache[i0] = cs[0];
            cache[i0 + 1] = cs[1];
        }
        theta *= l->rope_theta_scale;
    }
    for (uint32_t h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * hd;
        for (uint32_t i0 = 0; i0 < nd && i0 < 2 * 512; i0 += 2) {
            float c = cache[i0], sn = cache[i0 + 1];
            uint32_t a = hp->rope == ENGINE_ROPE_NEOX ? i0 / 2 : i0;
            uint32_t b = hp->rope == ENGINE_ROPE_NEOX ? i0 / 2 + nd / 2 : i0 + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * sn;
            x[b] = x0 * sn + x1 * c;
        }
    }
}

/* Attention for m query rows at positions pos0.., all heads: split over
 * (head, row) pairs. */
struct attn_job {
    struct engine_seq *s;
    uint32_t layer, pos0;
    size_t m;
};

static void attn_run(void *arg, unsigned ith, unsigned nth)
{
    const struct attn_job *j = arg;
    struct engine_seq *s = j->s;
    const struct engine_llm *l = s->l;
    const struct engine_hparams *hp = &l->hp;
    uint32_t hdk = hp->head_dim_k, hdv = hp->head_dim_v, gqa = hp->n_head / hp->n_head_kv;
    const struct quant_type *kv = s->kv_qt;
    size_t hd = hdk > hdv ? hdk : hdv;
    uint8_t *qrow = s->qk + (size_t)ith * (hd + s->n_ctx) * 4;
    uint8_t *wrow = qrow + hd * 4;
    float *sc = s->scores + (size_t)ith * s->n_ctx;
    float scale = 1.0f / sqrtf((float)hdk);
    size_t n_att = (size_t)hp->n_head * hdv;
    size_t r0, r1;
    pool_split((size_t)hp->n_head * j->m, 1, ith, nth, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        uint32_t h = (uint32_t)(r % hp->n_head);
        size_t t = r / hp->n_head;
        uint32_t kvh = h / gqa;
        size_t len = j->pos0 + t + 1; /* causal: positions 0..pos0+t */
        kv->from_f32(s->q + t * l->n_q + (size_t)h * hdk, qrow, hdk);
        const uint8_t *K = s->k[j->layer] + (size_t)kvh * hdk * s->kv_elem;
        size_t krow = (size_t)l->n_k * s->kv_elem;
        float mx = -INFINITY;
        for (size_t p = 0; p < len; p++) {
            sc[p] = kv->vec_dot(hdk, K + p * krow, qrow) * scale;
            if (sc[p] > mx)
                mx = sc[p];
        }
        double sum = 0;
        for (size_t p = 0; p < len; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += (double)sc[p];
        }
        float inv = (float)(1.0 / sum);
        for (size_t p = 0; p < len; p++)
            sc[p] *= inv;
        kv->from_f32(sc, wrow, len);
        const uint8_t *V = s->v[j->layer];
        float *o = s->att + t * n_att + (size_t)h * hdv;
        for (uint32_t dd = 0; dd < hdv; dd++) {
            size_t vrow = (size_t)(kvh * hdv + dd) * s->n_ctx * s->kv_elem;
            o[dd] = kv->vec_dot(len, V + vrow, wrow);
        }
    }
}

static float silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* Hot: one batch of at most n_batch tokens at positions s->pos... */
static void forward(struct engine_seq *s, const int32_t *tokens, size_t m, bool all_logits)
{
    const struct engine_llm *l = s->l;
    const struct engine_hparams *hp = &l->hp;
    size_t E = hp->n_embd, F = hp->n_ff;
    uint32_t hdk = hp->head_dim_k, hdv = hp->head_dim_v;
    size_t n_att = (size_t)hp->n_head * hdv;
    uint32_t pos0 = s->pos;

    for (size_t t = 0; t < m; t++) {
        const uint8_t *row = (const uint8_t *)l->tok_embd.data + (size_t)tokens[t] * l->tok_embd.row_bytes;
        l->tok_embd.qt->to_f32(row, s->x + t * E, E);
    }
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const struct llm_layer *L = &l->layers[il];
        for (size_t t = 0; t < m; t++)
            rms_norm(s->x + t * E, L->attn_norm.data, s->h + t * E, E, hp->norm_eps);
        if (L->wq.data) {
            const struct llm_tensor *ws[3] = {&L->wq, &L->wk, &L->wv};
            float *outs[3] = {s->q, s->kk, s->vv};
            size_t strides[3] = {l->n_q, l->n_k, l->n_v}, offs[3] = {0, 0, 0};
            matmuls(s, s->h, m, E, ws, outs, strides, offs, 3);
        } else {
            /* Fused: compute into ff_g (wide enough), then split. */
            const struct llm_tensor *ws[1] = {&L->wqkv};
            float *outs[1] = {s->ff_g};
            size_t w = (size_t)l->n_q + l->n_k + l->n_v;
            size_t strides[1] = {w}, offs[1] = {0};
            matmuls(s, s->h, m, E, ws, outs, strides, offs, 1);
            for (size_t t = 0; t < m; t++) {
                memcpy(s->q + t * l->n_q, s->ff_g + t * w, l->n_q * sizeof(float));
                memcpy(s->kk + t * l->n_k, s->ff_g + t * w + l->n_q, l->n_k * sizeof(float));
                memcpy(s->vv + t * l->n_v, s->ff_g + t * w + l->n_q + l->n_k,
                       l->n_v * sizeof(float));
            }
        }
        add_bias(s->q, &L->bq, m, l->n_q, l->n_q);
        add_bias(s->kk, &L->bk, m, l->n_k, l->n_k);
        add_bias(s->vv, &L->bv, m, l->n_v, l->n_v);
        for (size_t t = 0; t < m; t++) {
            float *q = s->q + t * l->n_q, *k = s->kk + t * l->n_k;
            if (L->q_norm.data) {
                for (uint32_t h = 0; h < hp->n_head; h++)
                    rms_norm(q + (size_t)h * hdk, L->q_norm.data, q + (size_t)h * hdk, hdk,
                             hp->norm_eps);
                for (uint32_t h = 0; h < hp->n_head_kv; h++)
                    rms_norm(k + (size_t)h * hdk, L->k_norm.data, k + (size_t)h * hdk, hdk,
                             hp->norm_eps);
            }
            if (hp->rope != ENGINE_ROPE_NONE) {
                rope(l, q, hp->n_head, hdk, pos0 + (uint32_t)t);
                rope(l, k, hp->n_head_kv, hdk, pos0 + (uint32_t)t);
            }
            /* Into the cache: K as a row, V scattered into its transposed rows. */
            uint32_t p = pos0 + (uint32_t)t;
            s->kv_qt->from_f32(k, s->k[il] + (size_t)p * l->n_k * s->kv_elem, l->n_k);
            const float *v = s->vv + t * l->n_v;
            uint8_t *V = s->v[il];
            for (uint32_t i = 0; i < l->n_v; i++) {
                uint8_t *dst = V + ((size_t)i * s->n_ctx + p) * s->kv_elem;
                if (s->kv_f32) {
                    memcpy(dst, &v[i], 4);
                } else {
                    uint16_t hbits = quant_f32_to_f16(v[i]);
                    memcpy(dst, &hbits, 2);
                }
            }
        }
        struct attn_job aj = {.s = s, .layer = il, .pos0 = pos0, .m = m};
        pool_run(s->pool, attn_run, &aj);
        {
            const struct llm_tensor *ws[1] = {&L->wo};
            float *outs[1] = {s->h};
            size_t strides[1] = {E}, offs[1] = {0};
            matmuls(s, s->att, m, n_att, ws, outs, strides, offs, 1);
        }
        for (size_t i = 0; i < m * E; i++)
            s->x[i] += s->h[i];

        for (size_t t = 0; t < m; t++)
            rms_norm(s->x + t * E, L->ffn_norm.data, s->h + t * E, E, hp->norm_eps);
        if (L->gate.data) {
            const struct llm_tensor *ws[2] = {&L->gate, &L->up};
            float *outs[2] = {s->ff_g, s->ff_u};
            size_t strides[2] = {F, F}, offs[2] = {0, 0};
            matmuls(s, s->h, m, E, ws, outs, strides, offs, 2);
            for (size_t i = 0; i < m * F; i++)
                s->ff_g[i] = silu(s->ff_g[i]) * s->ff_u[i];
        } else {
            /* phi3: one [gate | up] product; gate is the first half. */
            const struct llm_tensor *ws[1] = {&L->gate_up};
            float *outs[1] = {s->ff_g};
            size_t strides[1] = {2 * F}, offs[1] = {0};
            matmuls(s, s->h, m, E, ws, outs, strides, offs, 1);
            for (size_t t = 0; t < m; t++) {
                const float *g = s->ff_g + t * 2 * F;
                for (size_t i = 0; i < F; i++)
                    s->ff_u[t * F + i] = silu(g[i]) * g[F + i];
            }
            memcpy(s->ff_g, s->ff_u, m * F * sizeof(float));
        }
        {
            const struct llm_tensor *ws[1] = {&L->down};
            float *outs[1] = {s->h};
            size_t strides[1] = {E}, offs[1] = {0};
            matmuls(s, s->ff_g, m, F, ws, outs, strides, offs, 1);
        }
        for (size_t i = 0; i < m * E; i++)
            s->x[i] += s->h[i];
    }
    size_t first = all_logits ? 0 : m - 1, n_out = m - first;
    for (size_t t = first; t < m; t++)
        rms_norm(s->x + t * E, l->output_norm.data, s->h + (t - first) * E, E, hp->norm_eps);
    const struct llm_tensor *ws[1] = {&l->output};
    float *outs[1] = {s->logits};
    size_t strides[1] = {hp->n_vocab}, offs[1] = {0};
    matmuls(s, s->h, n_out, E, ws, outs, strides, offs, 1);
    s->n_logits = n_out;
    s->pos += (uint32_t)m;
}

enum shoal_err engine_seq_decode(struct engine_seq *s, const int32_t *tokens, size_t n,
                                 bool all_logits, struct shoal_diag *d)
{
    const struct engine_hparams *hp = &s->l->hp;
    if (n == 0)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "no tokens to decode");
    if (n > s->n_ctx - s->pos)
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG,
                              "context overflow: %zu tokens at position %u exceed the %u-token "
                              "context",
                              n, s->pos, s->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= hp->n_vocab)
            return shoal_diag_set(d, SHOAL_ERR_INVALID,
                                  "token %zu: id %d is outside the vocabulary (0..%u)", i,
                                  tokens[i], hp->n_vocab - 1);
    if (all_logits && n > s->n_batch)
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG,
                              "logits for every position need n <= n_batch (%u); got %zu",
                              s->n_batch, n);
    for (size_t done = 0; done < n;) {
        size_t m = n - done < s->n_batch ? n - done : s->n_batch;
        forward(s, tokens + done, m, all_logits || done + m < n ? all_logits : false);
        done += m;
    }
    return SHOAL_OK;
}
