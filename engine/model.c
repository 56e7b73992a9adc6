/* model.c: tensor-type layouts, and opening a model file: the GGUF reader's
 * checks, the architecture's hyper-parameters, the chat template's
 * encoding and the vocabulary, then a JSON description for `shoal model
 * inspect`. Invariant: a model that opened is consistent; nothing later
 * re-validates the metadata read here. */
#include "engine_internal.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Tensor types ---- */

/* ggml's block layouts: elements per block and bytes per block. */
static const struct {
    const char *name;
    uint16_t blk;
    uint16_t bytes;
} type_info[ENGINE_TYPE_COUNT] = {
    [ENGINE_TYPE_F32] = {"F32", 1, 4},
    [ENGINE_TYPE_F16] = {"F16", 1, 2},
    [ENGINE_TYPE_Q4_0] = {"Q4_0", 32, 18},
    [ENGINE_TYPE_Q4_1] = {"Q4_1", 32, 20},
    [ENGINE_TYPE_Q5_0] = {"Q5_0", 32, 22},
    [ENGINE_TYPE_Q5_1] = {"Q5_1", 32, 24},
    [ENGINE_TYPE_Q8_0] = {"Q8_0", 32, 34},
    [ENGINE_TYPE_Q8_1] = {"Q8_1", 32, 36},
    [ENGINE_TYPE_Q2_K] = {"Q2_K", 256, 84},
    [ENGINE_TYPE_Q3_K] = {"Q3_K", 256, 110},
    [ENGINE_TYPE_Q4_K] = {"Q4_K", 256, 144},
    [ENGINE_TYPE_Q5_K] = {"Q5_K", 256, 176},
    [ENGINE_TYPE_Q6_K] = {"Q6_K", 256, 210},
    [ENGINE_TYPE_Q8_K] = {"Q8_K", 256, 292},
    [ENGINE_TYPE_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [ENGINE_TYPE_IQ2_XS] = {"IQ2_XS", 256, 74},
    [ENGINE_TYPE_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [ENGINE_TYPE_IQ1_S] = {"IQ1_S", 256, 50},
    [ENGINE_TYPE_IQ4_NL] = {"IQ4_NL", 32, 18},
    [ENGINE_TYPE_IQ3_S] = {"IQ3_S", 256, 110},
    [ENGINE_TYPE_IQ2_S] = {"IQ2_S", 256, 82},
    [ENGINE_TYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
    [ENGINE_TYPE_I8] = {"I8", 1, 1},
    [ENGINE_TYPE_I16] = {"I16", 1, 2},
    [ENGINE_TYPE_I32] = {"I32", 1, 4},
    [ENGINE_TYPE_I64] = {"I64", 1, 8},
    [ENGINE_TYPE_F64] = {"F64", 1, 8},
    [ENGINE_TYPE_IQ1_M] = {"IQ1_M", 256, 56},
    [ENGINE_TYPE_BF16] = {"BF16", 1, 2},
    [ENGINE_TYPE_TQ1_0] = {"TQ1_0", 256, 54},
    [ENGINE_TYPE_TQ2_0] = {"TQ2_0", 256, 66},
};

const char *engine_type_name(enum engine_type t)
{
    return (unsigned)t < ENGINE_TYPE_COUNT ? type_info[t].name : NULL;
}

bool engine_type_layout(enum engine_type t, uint32_t *block_elems, uint32_t *block_bytes)
{
    if ((unsigned)t >= ENGINE_TYPE_COUNT || !type_info[t].name)
        return false;
    *block_elems = type_info[t].blk;
    *block_bytes = type_info[t].bytes;
    return true;
}

/* ---- Hyper-parameters ---- */

/* RoPE flavour per architecture, as llama.cpp assigns it; an architecture
 * not listed has no RoPE as far as this reader knows. */
static enum engine_rope rope_for(const char *arch)
{
    static const char *const norm[] = {
        "llama",     "llama4",    "deci",    "baichuan", "internlm2",  "minicpm",
        "xverse",    "command-r", "cohere2", "olmo",     "arctic",     "deepseek",
        "deepseek2", "chatglm",   "glm4",    "granite",  "granitemoe", "chameleon"};
    static const char *const neox[] = {
        "qwen",     "qwen2",     "qwen2moe", "qwen3",    "qwen3moe", "phi2",       "phi3",
        "phimoe",   "gemma",     "gemma2",   "gemma3",   "falcon",   "grok",       "dbrx",
        "stablelm", "bitnet",    "olmo2",    "olmoe",    "plamo",    "starcoder2", "openelm",
        "gptneox",  "codeshell", "orion",    "nemotron", "exaone",   "minicpm3"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(norm); i++)
        if (strcmp(arch, norm[i]) == 0)
            return ENGINE_ROPE_NORM;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(neox); i++)
        if (strcmp(arch, neox[i]) == 0)
            return ENGINE_ROPE_NEOX;
    return ENGINE_ROPE_NONE;
}

/* The architectures shoal runs; their files must carry the basic shape. */
static bool arch_is_runnable(const char *arch)
{
    static const char *const known[] = {"llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(known); i++)
        if (strcmp(arch, known[i]) == 0)
            return true;
    return false;
}

/* "<arch>.<suffix>" as a u32. Some architectures store per-layer values
 * (head counts) as an integer array; the largest element stands for them
 * here. */
static enum shoal_err arch_u32(const struct gguf *g, const char *arch, const char *suffix,
                               uint32_t *out, struct shoal_diag *d)
{
    char key[96];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    const struct gguf_kv *kv = gguf_find(g, key);
    if (kv && kv->type == GGUF_TYPE_ARRAY &&
        (kv->elem_type == GGUF_TYPE_UINT32 || kv->elem_type == GGUF_TYPE_INT32) && kv->n > 0) {
        uint32_t best = 0;
        for (uint64_t i = 0; i < kv->n; i++) {
            if (kv->elem_type == GGUF_TYPE_INT32 && gguf_arr_i32(kv, i) < 0) {
                shoal_diag_at_offset(d, NULL, (int64_t)kv->offset);
                shoal_diag_path(d, key);
                return shoal_diag_set(d, SHOAL_ERR_INVALID, "element %" PRIu64 " is negative", i);
            }
            uint32_t v = gguf_arr_u32(kv, i);
            best = v > best ? v : best;
        }
        *out = best;
        return SHOAL_OK;
    }
    return gguf_get_u32(g, key, out, d);
}

static enum shoal_err arch_f32(const struct gguf *g, const char *arch, const char *suffix,
                               float *out, struct shoal_diag *d)
{
    char key[96];
    snprintf(key, sizeof(key), "%s.%s", arch, suffix);
    return gguf_get_f32(g, key, out, d);
}

/* OK and NOT_FOUND are both fine for an optional key. */
#define OPTIONAL(call)                                                                             \
    do {                                                                                           \
        enum shoal_err rc_ = (call);                                                               \
        if (rc_ != SHOAL_OK && rc_ != SHOAL_ERR_NOT_FOUND)                                         \
            return rc_;                                                                            \
    } while (0)

static enum shoal_err model_fail(struct shoal_diag *d, const char *key, int64_t offset,
                                 const char *fmt, ...) SHOAL_PRINTF(4, 5);
static enum shoal_err model_fail(struct shoal_diag *d, const char *key, int64_t offset,
                                 const char *fmt, ...)
{
    va_list ap;
    shoal_diag_at_offset(d, NULL, offset);
    shoal_diag_path(d, key);
    va_start(ap, fmt);
    shoal_diag_setv(d, SHOAL_ERR_INVALID, fmt, ap);
    va_end(ap);
    return SHOAL_ERR_INVALID;
}

static int64_t kv_offset(const struct gguf *g, const char *key)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    return kv ? (int64_t)kv->offset : -1;
}

static enum shoal_err read_arch(const struct gguf *g, struct engine_hparams *hp,
                                struct shoal_diag *d)
{
    struct gguf_str a;
    enum shoal_err rc = gguf_get_str(g, "general.architecture", &a, d);
    if (rc == SHOAL_ERR_NOT_FOUND) {
        if (gguf_n_tensors(g) > 0)
            return model_fail(d, "general.architecture", -1,
                              "missing: a file with tensors must name its architecture");
        return SHOAL_OK; /* a bare vocabulary or metadata file */
    }
    if (rc)
        return rc;
    int64_t off = kv_offset(g, "general.architecture");
    if (a.n == 0 || a.n >= sizeof(hp->arch))
        return model_fail(d, "general.architecture", off, "length %" PRIu64 " is not in 1..%zu",
                          a.n, sizeof(hp->arch) - 1);
    for (uint64_t i = 0; i < a.n; i++) {
        unsigned char c = (unsigned char)a.p[i];
        /* It becomes part of every key name, so keep it to key characters. */
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return model_fail(d, "general.architecture", off,
                              "byte %" PRIu64 " (0x%02x) is not a letter, digit, '_' or '-'", i, c);
    }
    memcpy(hp->arch, a.p, a.n);
    hp->arch[a.n] = '\0';
    return SHOAL_OK;
}

static enum shoal_err read_rope_scaling(const struct gguf *g, struct engine_hparams *hp,
                                        struct shoal_diag *d)
{
    char key[96];
    struct gguf_str s;
    float f;
    snprintf(key, sizeof(key), "%s.rope.scaling.type", hp->arch);
    enum shoal_err rc = gguf_get_str(g, key, &s, d);
    if (rc == SHOAL_OK) {
        if (gguf_str_eq(s, "none"))
            hp->rope_scaling = ENGINE_ROPE_SCALING_NONE;
        else if (gguf_str_eq(s, "linear"))
            hp->rope_scaling = ENGINE_ROPE_SCALING_LINEAR;
        else if (gguf_str_eq(s, "yarn"))
            hp->rope_scaling = ENGINE_ROPE_SCALING_YARN;
        else if (gguf_str_eq(s, "longrope"))
            hp->rope_scaling = ENGINE_ROPE_SCALING_LONGROPE;
        else
            return model_fail(d, key, kv_offset(g, key),
                              "unknown RoPE scaling type (none, linear, yarn or longrope)");
    } else if (rc != SHOAL_ERR_NOT_FOUND) {
        return rc;
    }
    OPTIONAL(arch_f32(g, hp->arch, "rope.scaling.factor", &hp->rope_scale_factor, d));
    /* Older files say only rope.scale_linear. */
    f = 0;
    rc = arch_f32(g, hp->arch, "rope.scale_linear", &f, d);
    if (rc != SHOAL_OK && rc != SHOAL_ERR_NOT_FOUND)
        return rc;
    if (rc == SHOAL_OK && hp->rope_scale_factor == 0 && f != 1.0f) {
        hp->rope_scale_factor = f;
        if (hp->rope_scaling == ENGINE_ROPE_SCALING_NONE)
            hp->rope_scaling = ENGINE_ROPE_SCALING_LINEAR;
    }
    OPTIONAL(
        arch_u32(g, hp->arch, "rope.scaling.original_context_length", &hp->rope_orig_context, d));
    snprintf(key, sizeof(key), "%s.rope.scaling.factor", hp->arch);
    if (hp->rope_scale_factor < 0 || isnan(hp->rope_scale_factor))
        return model_fail(d, key, kv_offset(g, key), "must not be negative");
    return SHOAL_OK;
}

/* The token count, from the token list, else <arch>.vocab_size, else the
 * embedding matrix's rows. */
static enum shoal_err read_n_vocab(const struct gguf *g, struct engine_hparams *hp,
                                   struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, "tokenizer.ggml.tokens");
    if (kv) {
        if (kv->type != GGUF_TYPE_ARRAY || kv->elem_type != GGUF_TYPE_STRING)
            return model_fail(d, "tokenizer.ggml.tokens", (int64_t)kv->offset,
                              "expected an array of strings");
        if (kv->n > INT32_MAX)
            return model_fail(d, "tokenizer.ggml.tokens", (int64_t)kv->offset,
                              "%" PRIu64 " tokens is more than token ids can number", kv->n);
        hp->n_vocab = (uint32_t)kv->n;
        return SHOAL_OK;
    }
    if (hp->arch[0]) {
        enum shoal_err rc = arch_u32(g, hp->arch, "vocab_size", &hp->n_vocab, d);
        if (rc != SHOAL_ERR_NOT_FOUND)
            return rc;
    }
    const struct gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    if (t && t->n_dims >= 2 && t->ne[1] <= INT32_MAX)
        hp->n_vocab = (uint32_t)t->ne[1];
    return SHOAL_OK;
}

static enum shoal_err read_hparams(const struct gguf *g, struct engine_hparams *hp,
                                   struct shoal_diag *d)
{
    enum shoal_err rc;
    memset(hp, 0, sizeof(*hp));
    hp->rope_freq_base = 10000.0f;
    if ((rc = read_arch(g, hp, d)))
        return rc;
    if (!hp->arch[0])
        return read_n_vocab(g, hp, d);

    const char *a = hp->arch;
    bool runnable = arch_is_runnable(a) && gguf_n_tensors(g) > 0;
    static const struct {
        const char *suffix;
        size_t field;
        bool required; /* for the architectures shoal runs, when the file has tensors */
    } u32s[] = {
        {"context_length", offsetof(struct engine_hparams, context_length), true},
        {"embedding_length", offsetof(struct engine_hparams, n_embd), true},
        {"block_count", offsetof(struct engine_hparams, n_layer), true},
        {"feed_forward_length", offsetof(struct engine_hparams, n_ff), true},
        {"attention.head_count", offsetof(struct engine_hparams, n_head), true},
        {"attention.head_count_kv", offsetof(struct engine_hparams, n_head_kv), false},
        {"attention.key_length", offsetof(struct engine_hparams, head_dim_k), false},
        {"attention.value_length", offsetof(struct engine_hparams, head_dim_v), false},
        {"rope.dimension_count", offsetof(struct engine_hparams, rope_dims), false},
        {"expert_count", offsetof(struct engine_hparams, n_expert), false},
        {"expert_used_count", offsetof(struct engine_hparams, n_expert_used), false},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(u32s); i++) {
        uint32_t *field = (uint32_t *)((char *)hp + u32s[i].field);
        rc = arch_u32(g, a, u32s[i].suffix, field, d);
        if (rc == SHOAL_ERR_NOT_FOUND && u32s[i].required && runnable) {
            char key[96];
            snprintf(key, sizeof(key), "%s.%s", a, u32s[i].suffix);
            return model_fail(d, key, -1, "missing (a %s model needs it)", a);
        }
        if (rc != SHOAL_OK && rc != SHOAL_ERR_NOT_FOUND)
            return rc;
        if (rc == SHOAL_OK && *field == 0 && u32s[i].required && runnable) {
            char key[96];
            snprintf(key, sizeof(key), "%s.%s", a, u32s[i].suffix);
            return model_fail(d, key, kv_offset(g, key), "must not be 0");
        }
    }
    OPTIONAL(arch_f32(g, a, "rope.freq_base", &hp->rope_freq_base, d));
    rc = arch_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps, d);
    if (rc == SHOAL_ERR_NOT_FOUND)
        rc = arch_f32(g, a, "attention.layer_norm_epsilon", &hp->norm_eps, d);
    if (rc != SHOAL_OK && rc != SHOAL_ERR_NOT_FOUND)
        return rc;
    if ((rc = read_rope_scaling(g, hp, d)))
        return rc;

    /* Defaults as llama.cpp applies them. */
    if (hp->n_head_kv == 0)
        hp->n_head_kv = hp->n_head;
    if (hp->n_head > 0 && hp->head_dim_k == 0)
        hp->head_dim_k = hp->n_embd / hp->n_head;
    if (hp->n_head > 0 && hp->head_dim_v == 0)
        hp->head_dim_v = hp->n_embd / hp->n_head;
    if (hp->rope_dims == 0)
        hp->rope_dims = hp->head_dim_k;
    hp->rope = rope_for(a);
    hp->tied_embeddings = gguf_n_tensors(g) > 0 && !gguf_find_tensor(g, "output.weight");

    char key[96];
    if (hp->n_head > 0 && hp->n_head_kv > 0 && hp->n_head % hp->n_head_kv != 0) {
        snprintf(key, sizeof(key), "%s.attention.head_count_kv", a);
        return model_fail(d, key, kv_offset(g, key),
                          "%" PRIu32 " does not divide the head count %" PRIu32, hp->n_head_kv,
                          hp->n_head);
    }
    if (hp->n_expert_used > hp->n_expert) {
        snprintf(key, sizeof(key), "%s.expert_used_count", a);
        return model_fail(d, key, kv_offset(g, key),
                          "%" PRIu32 " is more than the expert count %" PRIu32, hp->n_expert_used,
                          hp->n_expert);
    }
    if (!(hp->norm_eps >= 0) || isinf(hp->norm_eps)) {
        snprintf(key, sizeof(key), "%s.attention.layer_norm_rms_epsilon", a);
        return model_fail(d, key, -1, "must be a finite number >= 0");
    }
    if (!(hp->rope_freq_base > 0) || isinf(hp->rope_freq_base)) {
        snprintf(key, sizeof(key), "%s.rope.freq_base", a);
        return model_fail(d, key, kv_offset(g, key), "must be a finite number > 0");
    }
    return read_n_vocab(g, hp, d);
}

/* ---- Chat template ---- */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

static enum shoal_err read_template(const struct gguf *g, struct gguf_str *out,
                                    struct shoal_diag *d)
{
    struct gguf_str s;
    enum shoal_err rc = gguf_get_str(g, "tokenizer.chat_template", &s, d);
    if (rc == SHOAL_ERR_NOT_FOUND) {
        out->p = NULL;
        out->n = 0;
        return SHOAL_OK;
    }
    if (rc)
        return rc;
    /* It is rendered into prompts and printed as is: it must be text. */
    int64_t off = kv_offset(g, "tokenizer.chat_template");
    const unsigned char *p = (const unsigned char *)s.p;
    for (uint64_t i = 0; i < s.n;) {
        size_t k = p[i] ? utf8_len(p + i, (size_t)(s.n - i)) : 0;
        if (k == 0)
            return model_fail(d, "tokenizer.chat_template", off,
                              p[i] ? "invalid UTF-8 at byte %" PRIu64 " of the template"
                                   : "NUL byte at byte %" PRIu64 " of the template",
                              i);
        i += k;
    }
    *out = s;
    return SHOAL_OK;
}

/* ---- Open and close ---- */

static enum shoal_err open_common(struct gguf *g, const char *path, struct engine_model **out,
                                  struct shoal_diag *d)
{
    enum shoal_err rc;
    struct engine_model *m = calloc(1, sizeof(*m));
    if (!m) {
        gguf_close(g);
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    }
    m->gguf = g;
    if (!(m->path = strdup(path))) {
        rc = shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* Diagnostics from here on name the file; their offsets are set where
     * a key is known. */
    shoal_diag_at_offset(d, path, -1);
    if ((rc = read_hparams(g, &m->hp, d)))
        goto fail;
    if ((rc = read_template(g, &m->chat_template, d)))
        goto fail;
    rc = vocab_load(g, &m->vocab, d);
    if (rc == SHOAL_ERR_NOT_FOUND) {
        m->vocab = NULL;
    } else if (rc) {
        if (d && !d->file[0])
            shoal_diag_at_offset(d, path, d->offset);
        goto fail;
    }
    shoal_diag_clear(d);
    *out = m;
    return SHOAL_OK;
fail:
    engine_model_close(m);
    return rc;
}

enum shoal_err engine_model_open(const char *path, struct engine_model **out, struct shoal_diag *d)
{
    struct gguf *g;
    shoal_diag_clear(d);
    enum shoal_err rc = gguf_open(path, &g, d);
    if (rc)
        return rc;
    return open_common(g, path, out, d);
}

enum shoal_err engine_model_open_memory(const void *data, size_t n, const char *name,
                                        struct engine_model **out, struct shoal_diag *d)
{
    struct gguf *g;
    shoal_diag_clear(d);
    enum shoal_err rc = gguf_open_memory(data, n, name, &g, d);
    if (rc)
        return rc;
    return open_common(g, name, out, d);
}

void engine_model_close(struct engine_model *m)
{
    if (!m)
        return;
    vocab_free(m->vocab);
    gguf_close(m->gguf);
    free(m->path);
    free(m);
}

const struct engine_hparams *engine_model_hparams(const struct engine_model *m)
{
    return &m->hp;
}

/* ---- Describe ---- */

/* A float32 as the shortest decimal that reads back as the same float,
 * so 1e-5 prints as 1e-05 rather than 9.99999974737875e-06. */
static double tidy_f32(float f)
{
    char buf[32];
    if (!isfinite(f))
        return 0;
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f)
            return strtod(buf, NULL);
    }
    return (double)f;
}

/* File bytes as a JSON string: invalid UTF-8 and NUL become U+FFFD, so the
 * output is always valid JSON. */
static cJSON *json_str(const char *p, uint64_t n)
{
    if (n > SIZE_MAX / 3 - 1)
        return NULL;
    char *s = malloc((size_t)n * 3 + 1);
    if (!s)
        return NULL;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)p;
    for (uint64_t i = 0; i < n;) {
        size_t k = u[i] ? utf8_len(u + i, (size_t)(n - i)) : 0;
        if (k == 0) {
            memcpy(s + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(s + o, u + i, k);
        o += k;
        i += k;
    }
    s[o] = '\0';
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

/* Add item under name; false (and item freed) when item is NULL or on
 * allocation failure. */
static bool add(cJSON *obj, const char *name, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static bool add_num(cJSON *obj, const char *name, double v)
{
    return add(obj, name, cJSON_CreateNumber(v));
}

static const char *rope_name(enum engine_rope r)
{
    return r == ENGINE_ROPE_NORM ? "norm" : r == ENGINE_ROPE_NEOX ? "neox" : "none";
}

static const char *scaling_name(enum engine_rope_scaling s)
{
    switch (s) {
    case ENGINE_ROPE_SCALING_LINEAR:
        return "linear";
    case ENGINE_ROPE_SCALING_YARN:
        return "yarn";
    case ENGINE_ROPE_SCALING_LONGROPE:
        return "longrope";
    default:
        return "none";
    }
}

static cJSON *describe_hparams(const struct engine_hparams *hp)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_num(o, "context_length", hp->context_length) &&
              add_num(o, "n_embd", hp->n_embd) && add_num(o, "n_layer", hp->n_layer) &&
              add_num(o, "n_ff", hp->n_ff) && add_num(o, "n_head", hp->n_head) &&
              add_num(o, "n_head_kv", hp->n_head_kv) && add_num(o, "head_dim_k", hp->head_dim_k) &&
              add_num(o, "head_dim_v", hp->head_dim_v) && add_num(o, "n_vocab", hp->n_vocab) &&
              add_num(o, "n_expert", hp->n_expert) &&
              add_num(o, "n_expert_used", hp->n_expert_used) &&
              add(o, "rope", cJSON_CreateString(rope_name(hp->rope))) &&
              add_num(o, "rope_dims", hp->rope_dims) &&
              add_num(o, "rope_freq_base", tidy_f32(hp->rope_freq_base)) &&
              add(o, "rope_scaling", cJSON_CreateString(scaling_name(hp->rope_scaling))) &&
              add_num(o, "rope_scale_factor", tidy_f32(hp->rope_scale_factor)) &&
              add_num(o, "rope_orig_context", hp->rope_orig_context) &&
              add_num(o, "norm_eps", tidy_f32(hp->norm_eps)) &&
              add(o, "tied_embeddings", cJSON_CreateBool(hp->tied_embeddings));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Order of the tensor-type mix: lightest bits per weight first, then by
 * type number, so "Q4_K×13, Q6_K×3, F32×5" reads from the quantized bulk
 * to the full-precision rest. */
static int by_bits(const void *a, const void *b)
{
    enum engine_type x = *(const enum engine_type *)a, y = *(const enum engine_type *)b;
    uint64_t bx = (uint64_t)type_info[x].bytes * type_info[y].blk;
    uint64_t by = (uint64_t)type_info[y].bytes * type_info[x].blk;
    if (bx != by)
        return bx < by ? -1 : 1;
    return (int)x - (int)y;
}

static cJSON *describe_tensors(const struct gguf *g, double *n_params, double *bytes)
{
    uint64_t count[ENGINE_TYPE_COUNT] = {0}, size[ENGINE_TYPE_COUNT] = {0};
    uint64_t params = 0, total = 0;
    /* Each tensor fits in the file, so neither sum can wrap. */
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        count[t->type]++;
        size[t->type] += t->size;
        params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        total += t->size;
    }
    enum engine_type order[ENGINE_TYPE_COUNT];
    size_t n = 0;
    for (unsigned t = 0; t < ENGINE_TYPE_COUNT; t++)
        if (count[t])
            order[n++] = (enum engine_type)t;
    qsort(order, n, sizeof(order[0]), by_bits);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        if (!e || !add(o, type_info[order[i]].name, e) ||
            !add_num(e, "count", (double)count[order[i]]) ||
            !add_num(e, "bytes", (double)size[order[i]])) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    *n_params = (double)params;
    *bytes = (double)total;
    return o;
}

/* One special token {"id": N, "text": "..."}; text is null when the id is
 * outside the token list. */
static cJSON *token_json(const struct engine_model *m, const struct gguf_kv *tokens, int64_t id)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !add_num(o, "id", (double)id))
        goto fail;
    cJSON *text;
    size_t len;
    const char *p = NULL;
    if (m->vocab && id <= INT32_MAX && (p = engine_vocab_text(m->vocab, (int32_t)id, &len)))
        text = json_str(p, len);
    else if (!m->vocab && tokens && (uint64_t)id < tokens->n) {
        struct gguf_str s = gguf_arr_str(tokens, (uint64_t)id);
        text = json_str(s.p, s.n);
    } else
        text = cJSON_CreateNull();
    if (!add(o, "text", text))
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static const char *kind_name(enum engine_vocab_kind k)
{
    switch (k) {
    case ENGINE_VOCAB_SPM:
        return "spm";
    case ENGINE_VOCAB_BPE:
        return "bpe";
    case ENGINE_VOCAB_WPM:
        return "wpm";
    default:
        return "none";
    }
}

/* The tokenizer as the loaded vocabulary sees it; while no vocabulary is
 * loaded (none in the file, or a kind the tokenizers do not handle), the
 * same facts straight from the tokenizer.ggml.* metadata. */
static cJSON *describe_tokenizer(const struct engine_model *m)
{
    const struct gguf *g = m->gguf;
    struct gguf_str model = {0}, pre = {0};
    bool has_model = gguf_get_str(g, "tokenizer.ggml.model", &model, NULL) == SHOAL_OK;
    bool has_pre = gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL) == SHOAL_OK;
    if (!m->vocab && !has_model)
        return cJSON_CreateNull();
    const struct gguf_kv *tokens = NULL;
    if (gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tokens, NULL) != SHOAL_OK)
        tokens = NULL;

    cJSON *o = cJSON_CreateObject(), *sp = NULL;
    if (!o)
        return NULL;
    const char *kind = "none";
    if (m->vocab)
        kind = kind_name(engine_vocab_kind(m->vocab));
    else if (gguf_str_eq(model, "llama"))
        kind = "spm";
    else if (gguf_str_eq(model, "gpt2"))
        kind = "bpe";
    else if (gguf_str_eq(model, "bert"))
        kind = "wpm";
    else if (model.n > 0)
        kind = "other";
    bool ok = add(o, "kind", cJSON_CreateString(kind)) &&
              add(o, "model", has_model ? json_str(model.p, model.n) : cJSON_CreateNull()) &&
              add(o, "loaded", cJSON_CreateBool(m->vocab != NULL));
    if (ok && m->vocab && vocab_pre_name(m->vocab)[0])
        ok = add(o, "pre", cJSON_CreateString(vocab_pre_name(m->vocab)));
    else if (ok && m->vocab)
        ok = add(o, "pre", cJSON_CreateNull());
    else if (ok)
        ok = add(o, "pre", has_pre ? json_str(pre.p, pre.n) : cJSON_CreateNull());
    ok = ok && add_num(o, "n_vocab", m->vocab ? engine_vocab_size(m->vocab) : m->hp.n_vocab) &&
         add(o, "special", sp = cJSON_CreateObject());
    static const struct {
        const char *name, *key;
    } specials[] = {
        {"bos", "tokenizer.ggml.bos_token_id"},       {"eos", "tokenizer.ggml.eos_token_id"},
        {"eot", "tokenizer.ggml.eot_token_id"},       {"eom", "tokenizer.ggml.eom_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"},   {"pad", "tokenizer.ggml.padding_token_id"},
        {"sep", "tokenizer.ggml.seperator_token_id"}, {"cls", "tokenizer.ggml.cls_token_id"},
        {"mask", "tokenizer.ggml.mask_token_id"},
    };
    for (size_t i = 0; ok && i < SHOAL_ARRAY_LEN(specials); i++) {
        int64_t id = -1;
        uint32_t u;
        if (m->vocab && i == 0)
            id = engine_vocab_bos(m->vocab);
        else if (m->vocab && i == 1)
            id = engine_vocab_eos(m->vocab);
        else if (gguf_get_u32(g, specials[i].key, &u, NULL) == SHOAL_OK && u != UINT32_MAX)
            id = u; /* UINT32_MAX is how writers say "none" */
        if (id >= 0)
            ok = add(sp, specials[i].name, token_json(m, tokens, id));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *describe_template(const struct engine_model *m)
{
    cJSON *o = cJSON_CreateObject(), *variants = NULL;
    bool present = m->chat_template.p != NULL;
    bool ok = o && add(o, "present", cJSON_CreateBool(present)) &&
              add_num(o, "bytes", (double)m->chat_template.n) &&
              add(o, "fallback", present ? cJSON_CreateNull() : cJSON_CreateString("chatml")) &&
              add(o, "variants", variants = cJSON_CreateArray());
    /* Named templates ("tokenizer.chat_template.tool_use") are listed by name. */
    static const char prefix[] = "tokenizer.chat_template.";
    for (uint64_t i = 0; ok && i < gguf_n_kv(m->gguf); i++) {
        const struct gguf_kv *kv = gguf_kv_at(m->gguf, i);
        if (kv->key.n > sizeof(prefix) - 1 && memcmp(kv->key.p, prefix, sizeof(prefix) - 1) == 0) {
            cJSON *name =
                json_str(kv->key.p + sizeof(prefix) - 1, kv->key.n - (sizeof(prefix) - 1));
            ok = name && cJSON_AddItemToArray(variants, name);
            if (name && !ok)
                cJSON_Delete(name);
        }
    }
    if (ok && present)
        ok = add(o, "text", json_str(m->chat_template.p, m->chat_template.n));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

enum shoal_err engine_model_describe(const struct engine_model *m, struct cJSON **out)
{
    const struct gguf *g = m->gguf;
    double n_params = 0, tensor_bytes = 0;
    struct gguf_str name;
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && add(o, "path", cJSON_CreateString(m->path)) &&
        add_num(o, "file_size", (double)gguf_file_size(g)) &&
        add_num(o, "gguf_version", gguf_version(g)) && add_num(o, "alignment", gguf_alignment(g)) &&
        add(o, "architecture",
            m->hp.arch[0] ? cJSON_CreateString(m->hp.arch) : cJSON_CreateNull()) &&
        add(o, "name",
            gguf_get_str(g, "general.name", &name, NULL) == SHOAL_OK ? json_str(name.p, name.n)
                                                                     : cJSON_CreateNull()) &&
        add(o, "tensor_types", describe_tensors(g, &n_params, &tensor_bytes)) &&
        add_num(o, "n_params", n_params) && add_num(o, "n_tensors", (double)gguf_n_tensors(g)) &&
        add_num(o, "tensor_bytes", tensor_bytes) && add_num(o, "n_kv", (double)gguf_n_kv(g)) &&
        add(o, "hparams", describe_hparams(&m->hp)) && add(o, "tokenizer", describe_tokenizer(m)) &&
        add(o, "chat_template", describe_template(m));
    if (!ok) {
        cJSON_Delete(o);
        return SHOAL_ERR_NOMEM;
    }
    *out = o;
    return SHOAL_OK;
}
