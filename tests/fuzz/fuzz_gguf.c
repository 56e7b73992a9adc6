/* fuzz_gguf.c: libFuzzer target for the GGUF reader and the model open.
 * Any input must open or be refused with a diagnostic, never crash, leak
 * or read outside the input; whatever opens is walked completely: every
 * key through every getter, every array element, every tensor's data,
 * and the model's description. */
#include "engine_internal.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property is a crash, so libFuzzer keeps the input. */
static void require(int ok)
{
    if (!ok)
        abort();
}

static volatile uint64_t sink;

static void walk_kv(const struct gguf *g, const struct gguf_kv *kv)
{
    /* Keys with NUL bytes cannot be named by a C string; skip the getters. */
    if (memchr(kv->key.p, 0, kv->key.n) || kv->key.n > 4096)
        return;
    char key[4097];
    memcpy(key, kv->key.p, kv->key.n);
    key[kv->key.n] = '\0';
    require(gguf_find(g, key) == kv);

    struct shoal_diag d;
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    float f;
    bool b;
    struct gguf_str s;
    const struct gguf_kv *a;
    if (gguf_get_u32(g, key, &u32, &d) == SHOAL_OK)
        sink += u32;
    if (gguf_get_u64(g, key, &u64, &d) == SHOAL_OK)
        sink += u64;
    if (gguf_get_i32(g, key, &i32, &d) == SHOAL_OK)
        sink += (uint64_t)i32;
    if (gguf_get_f32(g, key, &f, &d) == SHOAL_OK)
        sink += (uint64_t)(f == f);
    if (gguf_get_bool(g, key, &b, &d) == SHOAL_OK)
        sink += b;
    if (gguf_get_str(g, key, &s, &d) == SHOAL_OK && s.n)
        sink += (unsigned char)s.p[s.n - 1];
    if (kv->type != GGUF_TYPE_ARRAY)
        return;
    require(gguf_get_arr(g, key, kv->elem_type, &a, &d) == SHOAL_OK && a == kv);
    for (uint64_t i = 0; i < kv->n; i++) {
        switch (kv->elem_type) {
        case GGUF_TYPE_STRING:
            s = gguf_arr_str(kv, i);
            if (s.n)
                sink += (unsigned char)s.p[0] + (unsigned char)s.p[s.n - 1];
            break;
        case GGUF_TYPE_FLOAT32:
            sink += (uint64_t)(gguf_arr_f32(kv, i) == 0);
            break;
        case GGUF_TYPE_INT32:
            sink += (uint64_t)gguf_arr_i32(kv, i);
            break;
        case GGUF_TYPE_UINT32:
            sink += gguf_arr_u32(kv, i);
            break;
        default:
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct shoal_diag d;
    struct gguf *g = NULL;
    enum shoal_err rc = gguf_open_memory(data, size, "fuzz", &g, &d);
    require((rc == SHOAL_OK) == (g != NULL));
    if (rc != SHOAL_OK) {
        require(d.msg[0] != '\0' && strcmp(d.file, "fuzz") == 0);
        require(d.offset >= 0 && (uint64_t)d.offset <= size);
        return 0;
    }
    for (uint64_t i = 0; i < gguf_n_kv(g); i++)
        walk_kv(g, gguf_kv_at(g, i));
    uint64_t total = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
        const struct gguf_tensor *t = gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        require(p >= data && t->size <= size && p + t->size <= data + size);
        sink += p[0] + p[t->size - 1];
        total += t->size;
        if (!memchr(t->name.p, 0, t->name.n) && t->name.n < 4096) {
            char name[4096];
            memcpy(name, t->name.p, t->name.n);
            name[t->name.n] = '\0';
            require(gguf_find_tensor(g, name) == t);
        }
    }
    require(total <= size); /* tensors never overlap */
    gguf_close(g);

    /* The model level on the same bytes: hyper-parameters, template,
     * vocabulary, description. */
    struct engine_model *m = NULL;
    rc = engine_model_open_memory(data, size, "fuzz", &m, &d);
    require((rc == SHOAL_OK) == (m != NULL));
    if (rc != SHOAL_OK) {
        require(d.msg[0] != '\0');
        return 0;
    }
    cJSON *j = NULL;
    if (engine_model_describe(m, &j) == SHOAL_OK) {
        char *s = cJSON_PrintUnformatted(j);
        require(s != NULL);
        cJSON *back = cJSON_Parse(s);
        require(back != NULL); /* the description is always valid JSON */
        cJSON_Delete(back);
        cJSON_free(s);
        cJSON_Delete(j);
    }
    engine_model_close(m);
    return 0;
}
