/* test_gguf_ref.c: conformance of the GGUF loader against ../shared/ref:
 * every reference model and vocabulary opens, and what it says matches
 * facts written down independently (shared/ref/README.md's tables, and
 * llama.cpp's n_params / n_vocab in each MODEL.gguf.ref.json). Also: the
 * tensors of every file tile its data section exactly, which pins each
 * type's block size. Times each open (the loader must not read tensor data). */
#include "engine_internal.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef SHOAL_REF_DIR
#error "SHOAL_REF_DIR must name ../shared/ref"
#endif

/* shared/ref/README.md, "models/" table. */
static const struct {
    const char *file;
    uint64_t bytes;
    const char *arch;
    uint32_t n_vocab;
    const char *mix;
} models[] = {
    {"llama-tiny-F32.gguf", 7357888, "llama", 512, "F32×21"},
    {"llama-tiny-F16.gguf", 3687872, "llama", 512, "F16×16, F32×5"},
    {"llama-tiny-BF16.gguf", 3687872, "llama", 512, "BF16×16, F32×5"},
    {"llama-tiny-Q8_0.gguf", 1967552, "llama", 512, "Q8_0×16, F32×5"},
    {"llama-tiny-Q6_K.gguf", 1523136, "llama", 512, "Q6_K×16, F32×5"},
    {"llama-tiny-Q5_K_M.gguf", 1327296, "llama", 512, "Q5_K×13, Q6_K×3, F32×5"},
    {"llama-tiny-Q5_1.gguf", 1403328, "llama", 512, "Q5_1×15, Q6_K×1, F32×5"},
    {"llama-tiny-Q5_0.gguf", 1296832, "llama", 512, "Q5_0×15, Q6_K×1, F32×5"},
    {"llama-tiny-Q4_K_M.gguf", 1142976, "llama", 512, "Q4_K×13, Q6_K×3, F32×5"},
    {"llama-tiny-Q4_1.gguf", 1190336, "llama", 512, "Q4_1×15, Q6_K×1, F32×5"},
    {"llama-tiny-Q4_0.gguf", 1083840, "llama", 512, "Q4_0×15, Q6_K×1, F32×5"},
    {"llama-tiny-Q3_K_M.gguf", 944064, "llama", 512, "Q3_K×9, Q4_K×4, Q5_K×2, Q6_K×1, F32×5"},
    {"llama-tiny-Q2_K.gguf", 744384, "llama", 512, "Q2_K×9, Q3_K×6, Q6_K×1, F32×5"},
    {"qwen2-tiny-F16.gguf", 3708640, "qwen2", 1024, "F16×15, F32×11"},
    {"qwen2-tiny-Q8_0.gguf", 1988320, "qwen2", 1024, "Q8_0×15, F32×11"},
    {"qwen2-tiny-Q4_K_M.gguf", 1197536, "qwen2", 1024, "Q4_K×12, Q6_K×3, F32×11"},
    {"qwen3-tiny-F16.gguf", 4493056, "qwen3", 1024, "F16×15, F32×9"},
    {"qwen3-tiny-Q8_0.gguf", 2404096, "qwen3", 1024, "Q8_0×15, F32×9"},
    {"qwen3-tiny-Q4_K_M.gguf", 1425152, "qwen3", 1024, "Q4_K×12, Q6_K×3, F32×9"},
    {"stories260K.gguf", 1185376, "llama", 512, "F32×48"},
    {"llama-2-tiny-random.gguf", 1750560, "llama", 32000, "F16×9, F32×3"},
};

/* shared/ref/README.md, "vocab/" table. */
static const struct {
    const char *file;
    const char *model, *pre; /* tokenizer.ggml.model / pre */
    uint32_t n_vocab;
    uint64_t bytes;
} vocabs[] = {
    {"ggml-vocab-llama-spm.gguf", "llama", "default", 32000, 723869},
    {"ggml-vocab-phi-3.gguf", "llama", "default", 32064, 726019},
    {"ggml-vocab-gpt-2.gguf", "gpt2", "gpt-2", 50257, 1766807},
    {"ggml-vocab-starcoder.gguf", "gpt2", "starcoder", 49152, 1719346},
    {"ggml-vocab-refact.gguf", "gpt2", "refact", 49216, 1720710},
    {"ggml-vocab-mpt.gguf", "gpt2", "mpt", 50432, 1771393},
    {"ggml-vocab-falcon.gguf", "gpt2", "falcon", 65024, 2287728},
    {"ggml-vocab-deepseek-coder.gguf", "gpt2", "deepseek-coder", 32256, 1156067},
    {"ggml-vocab-deepseek-llm.gguf", "gpt2", "deepseek-llm", 102400, 3970167},
    {"ggml-vocab-bert-bge.gguf", "bert", "bert-bge", 30522, 627549},
    {"ggml-vocab-tiny-bpe.gguf", "gpt2", "qwen2", 1024, 27488},
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Open path, reporting the diagnostic and the time taken. */
static struct engine_model *open_ref(const char *path, double *ms)
{
    struct engine_model *m = NULL;
    struct shoal_diag d;
    double t0 = now_ms();
    enum shoal_err rc = engine_model_open(path, &m, &d);
    *ms = now_ms() - t0;
    if (rc != SHOAL_OK) {
        char msg[1024];
        shoal_diag_format(&d, msg, sizeof(msg));
        fprintf(stderr, "open failed: %s\n", msg);
    }
    CHECK_EQ_INT(rc, SHOAL_OK);
    return m;
}

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct shoal_buf b;
    shoal_buf_init(&b, 64u << 20);
    char chunk[65536];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ok = ok && shoal_buf_append(&b, chunk, n) == SHOAL_OK;
    fclose(f);
    cJSON *j = ok ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    shoal_buf_fini(&b);
    return j;
}

/* "Q4_K×13, Q6_K×3, F32×5" from the description's tensor_types. */
static void mix_string(const cJSON *desc, char *out, size_t n)
{
    const cJSON *t;
    size_t o = 0;
    out[0] = '\0';
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(desc, "tensor_types"))
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "count");
        o += (size_t)snprintf(out + o, n - o, "%s%s×%d", o ? ", " : "", t->string,
                              cJSON_IsNumber(c) ? c->valueint : -1);
        if (o >= n)
            break;
    }
}

static int cmp_offset(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Tensors sorted by offset follow each other at aligned offsets with no
 * gap, from 0 to the end of the file: a wrong block size would show. */
static void check_tiling(const struct gguf *g, const char *file)
{
    uint64_t n = gguf_n_tensors(g), align = gguf_alignment(g), expect = 0;
    const struct gguf_tensor **v = calloc(n, sizeof(*v));
    for (uint64_t i = 0; i < n; i++)
        v[i] = gguf_tensor_at(g, i);
    qsort(v, n, sizeof(*v), cmp_offset);
    int bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (v[i]->offset != expect && bad++ == 0)
            fprintf(stderr, "%s: tensor at %" PRIu64 ", expected %" PRIu64 "\n", file, v[i]->offset,
                    expect);
        expect = (v[i]->offset + v[i]->size + align - 1) / align * align;
    }
    uint64_t end = n ? v[n - 1]->offset + v[n - 1]->size : 0;
    CHECK_EQ_INT(bad, 0);
    if (n)
        CHECK(gguf_data_offset(g) + end <= gguf_file_size(g) &&
              gguf_file_size(g) - (gguf_data_offset(g) + end) < align);
    free(v);
}

static void test_models(void)
{
    char path[1024], mix[256];
    double worst = 0;
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(models); k++) {
        snprintf(path, sizeof(path), "%s/models/%s", SHOAL_REF_DIR, models[k].file);
        double ms;
        struct engine_model *m = open_ref(path, &ms);
        if (!m)
            continue;
        fprintf(stderr, "  %-28s opened in %.3f ms\n", models[k].file, ms);
        worst = ms > worst ? ms : worst;
        const struct engine_hparams *hp = engine_model_hparams(m);
        CHECK_STR(hp->arch, models[k].arch);
        CHECK_EQ_INT(hp->n_vocab, models[k].n_vocab);
        CHECK_EQ_INT(gguf_file_size(m->gguf), models[k].bytes);
        CHECK_EQ_INT(gguf_version(m->gguf), 3);
        check_tiling(m->gguf, models[k].file);

        cJSON *desc = NULL;
        CHECK_EQ_INT(engine_model_describe(m, &desc), SHOAL_OK);
        mix_string(desc, mix, sizeof(mix));
        CHECK_STR(mix, models[k].mix);

        /* llama.cpp's own counts. */
        snprintf(path, sizeof(path), "%s/models/%s.ref.json", SHOAL_REF_DIR, models[k].file);
        cJSON *ref = read_json(path);
        CHECK(ref != NULL);
        if (ref && desc) {
            const cJSON *np = cJSON_GetObjectItemCaseSensitive(ref, "n_params");
            const cJSON *nv = cJSON_GetObjectItemCaseSensitive(ref, "n_vocab");
            const cJSON *mine = cJSON_GetObjectItemCaseSensitive(desc, "n_params");
            CHECK(cJSON_IsNumber(np) && cJSON_IsNumber(mine) &&
                  np->valuedouble == mine->valuedouble);
            CHECK(cJSON_IsNumber(nv) && nv->valuedouble == hp->n_vocab);
            const cJSON *ra = cJSON_GetObjectItemCaseSensitive(ref, "arch");
            CHECK(cJSON_IsString(ra) && strcmp(ra->valuestring, hp->arch) == 0);
        }
        cJSON_Delete(ref);

        /* The synthetic families (README "The synthetic models"). */
        bool llama = strncmp(models[k].file, "llama-tiny-", 11) == 0;
        bool qwen2 = strncmp(models[k].file, "qwen2-tiny-", 11) == 0;
        bool qwen3 = strncmp(models[k].file, "qwen3-tiny-", 11) == 0;
        if (llama || qwen2 || qwen3) {
            CHECK_EQ_INT(hp->n_embd, 256);
            CHECK_EQ_INT(hp->n_layer, 2);
            CHECK_EQ_INT(hp->n_ff, 768);
            CHECK_EQ_INT(hp->n_head, 4);
            CHECK_EQ_INT(hp->n_head_kv, 2);
            CHECK_EQ_INT(hp->context_length, 2048);
            CHECK_EQ_INT(hp->head_dim_k, qwen3 ? 128 : 64);
            CHECK_EQ_INT(hp->head_dim_v, qwen3 ? 128 : 64);
            CHECK_EQ_INT(hp->rope, llama ? ENGINE_ROPE_NORM : ENGINE_ROPE_NEOX);
            CHECK(hp->rope_freq_base == (llama ? 10000.0f : 1e6f));
            CHECK(hp->norm_eps == (llama ? 1e-5f : 1e-6f));
            CHECK(hp->tied_embeddings == !llama);
            CHECK_EQ_INT(hp->rope_dims, qwen3 ? 128 : 64);
            CHECK_EQ_INT(hp->n_expert, 0);
        }
        if (strcmp(models[k].file, "stories260K.gguf") == 0) {
            CHECK(hp->n_embd == 64 && hp->n_layer == 5 && hp->n_head == 8 && hp->n_head_kv == 4 &&
                  hp->head_dim_k == 8 && hp->n_ff == 172 && !hp->tied_embeddings);
        }
        if (strcmp(models[k].file, "llama-2-tiny-random.gguf") == 0) {
            CHECK(hp->n_embd == 8 && hp->n_layer == 1 && hp->n_head == 2 && hp->head_dim_k == 4);
        }
        cJSON_Delete(desc);
        engine_model_close(m);
    }
    fprintf(stderr, "  slowest model open: %.3f ms\n", worst);
}

static void test_vocabs(void)
{
    char path[1024];
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(vocabs); k++) {
        snprintf(path, sizeof(path), "%s/vocab/%s", SHOAL_REF_DIR, vocabs[k].file);
        double ms;
        struct engine_model *m = open_ref(path, &ms);
        if (!m)
            continue;
        fprintf(stderr, "  %-32s opened in %.3f ms\n", vocabs[k].file, ms);
        const struct gguf *g = m->gguf;
        CHECK_EQ_INT(gguf_n_tensors(g), 0);
        CHECK_EQ_INT(gguf_file_size(g), vocabs[k].bytes);
        CHECK_EQ_INT(engine_model_hparams(m)->n_vocab, vocabs[k].n_vocab);
        struct gguf_str s;
        CHECK_EQ_INT(gguf_get_str(g, "tokenizer.ggml.model", &s, NULL), SHOAL_OK);
        CHECK(gguf_str_eq(s, vocabs[k].model));
        CHECK_EQ_INT(gguf_get_str(g, "tokenizer.ggml.pre", &s, NULL), SHOAL_OK);
        CHECK(gguf_str_eq(s, vocabs[k].pre));
        const struct gguf_kv *toks = NULL;
        CHECK_EQ_INT(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, NULL),
                     SHOAL_OK);
        cJSON *desc = NULL;
        CHECK_EQ_INT(engine_model_describe(m, &desc), SHOAL_OK);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(desc, "chat_template");
        bool has = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ct, "present"));
        /* Only phi-3 carries a template; the rest fall back to ChatML. */
        CHECK(has == (strcmp(vocabs[k].file, "ggml-vocab-phi-3.gguf") == 0));
        if (!has) {
            const cJSON *fb = cJSON_GetObjectItemCaseSensitive(ct, "fallback");
            CHECK(cJSON_IsString(fb) && strcmp(fb->valuestring, "chatml") == 0);
        }
        cJSON_Delete(desc);
        engine_model_close(m);
    }
    /* tiny-bpe's special tokens (README): 1021 BOS, 1023 EOS. */
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-tiny-bpe.gguf", SHOAL_REF_DIR);
    double ms;
    struct engine_model *m = open_ref(path, &ms);
    if (m) {
        cJSON *desc = NULL;
        CHECK_EQ_INT(engine_model_describe(m, &desc), SHOAL_OK);
        char *s = cJSON_PrintUnformatted(desc);
        CHECK_CONTAINS(s, "\"bos\":{\"id\":1021,\"text\":\"<|endoftext|>\"}");
        CHECK_CONTAINS(s, "\"eos\":{\"id\":1023,\"text\":\"<|im_end|>\"}");
        cJSON_free(s);
        cJSON_Delete(desc);
        engine_model_close(m);
    }
}

int main(void)
{
    test_models();
    test_vocabs();
    return test_report("test_gguf_ref");
}
