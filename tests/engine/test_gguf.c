/* test_gguf.c: unit tests for engine/gguf.c and the model-level checks of
 * engine/model.c, on small GGUF files built in memory by a tiny writer.
 * Every rejection is checked for its error value, the byte offset it
 * names and the field in its message. With SHOAL_GGUF_CORPUS_OUT=DIR set,
 * the files built here are also written to DIR (fuzz seed corpus). */
#include "engine_internal.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- A small GGUF writer ---- */

struct w {
    uint8_t *p;
    size_t n, cap;
};

static void w_bytes(struct w *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q)
            abort();
        w->p = q;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void w_free(struct w *w)
{
    free(w->p);
    memset(w, 0, sizeof(*w));
}

static void w_u8(struct w *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_u32(struct w *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_bytes(w, b, 4);
}

static void w_u64(struct w *w, uint64_t v)
{
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_f32(struct w *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    w_u32(w, u);
}

static void w_str(struct w *w, const char *s)
{
    w_u64(w, strlen(s));
    w_bytes(w, s, strlen(s));
}

static void w_put64(struct w *w, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void w_put32(struct w *w, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void w_pad(struct w *w, size_t align)
{
    while (w->n % align)
        w_u8(w, 0);
}

static void w_header(struct w *w, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    w_bytes(w, "GGUF", 4);
    w_u32(w, version);
    w_u64(w, n_tensors);
    w_u64(w, n_kv);
}

static void kv_str(struct w *w, const char *k, const char *v)
{
    w_str(w, k);
    w_u32(w, GGUF_TYPE_STRING);
    w_str(w, v);
}

static void kv_u32(struct w *w, const char *k, uint32_t v)
{
    w_str(w, k);
    w_u32(w, GGUF_TYPE_UINT32);
    w_u32(w, v);
}

static void kv_f32(struct w *w, const char *k, float v)
{
    w_str(w, k);
    w_u32(w, GGUF_TYPE_FLOAT32);
    w_f32(w, v);
}

static void kv_strs(struct w *w, const char *k, const char *const *v, size_t n)
{
    w_str(w, k);
    w_u32(w, GGUF_TYPE_ARRAY);
    w_u32(w, GGUF_TYPE_STRING);
    w_u64(w, n);
    for (size_t i = 0; i < n; i++)
        w_str(w, v[i]);
}

/* An array nested `levels` deep (1 = a flat array): two branches per level,
 * leaves alternate between u8 and string arrays. */
static void w_nested(struct w *w, unsigned levels, unsigned branch)
{
    if (levels == 1) {
        if (branch % 2 == 0) {
            w_u32(w, GGUF_TYPE_UINT8);
            w_u64(w, 2);
            w_u8(w, 1);
            w_u8(w, 2);
        } else {
            w_u32(w, GGUF_TYPE_STRING);
            w_u64(w, 1);
            w_str(w, "x");
        }
        return;
    }
    w_u32(w, GGUF_TYPE_ARRAY);
    w_u64(w, 2);
    w_nested(w, levels - 1, 0);
    w_nested(w, levels - 1, 1);
}

struct tdef {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[5];
    uint32_t type;
};

/* Tensor infos with offsets packed at the alignment, then the padded data
 * section filled with a byte pattern. */
static void w_tensors(struct w *w, const struct tdef *t, size_t n, uint32_t align)
{
    uint64_t off = 0, sizes[16];
    for (size_t i = 0; i < n; i++) {
        uint32_t blk = 1, bytes = 4;
        engine_type_layout((enum engine_type)t[i].type, &blk, &bytes);
        uint64_t nel = 1;
        for (uint32_t j = 0; j < t[i].n_dims; j++)
            nel *= t[i].ne[j];
        sizes[i] = nel / blk * bytes;
        w_str(w, t[i].name);
        w_u32(w, t[i].n_dims);
        for (uint32_t j = 0; j < t[i].n_dims; j++)
            w_u64(w, t[i].ne[j]);
        w_u32(w, t[i].type);
        w_u64(w, off);
        off += (sizes[i] + align - 1) / align * align;
    }
    w_pad(w, align);
    for (size_t i = 0; i < n; i++) {
        for (uint64_t k = 0; k < sizes[i]; k++)
            w_u8(w, (uint8_t)(i * 16 + k));
        if (i + 1 < n)
            w_pad(w, align);
    }
}

/* ---- Corpus output ---- */

static const char *corpus_dir;

static void save(const char *name, const struct w *w)
{
    if (!corpus_dir)
        return;
    char path[1024];
    snprintf(path, sizeof(path), "%s/unit-%s.gguf", corpus_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(w->p, 1, w->n, f);
    fclose(f);
}

/* ---- The standard small file, and where its fields are ---- */

struct opts {
    uint32_t version;
    const char *key2;    /* name of key 2 (default llama.context_length) */
    uint32_t align_type; /* type of general.alignment */
    uint32_t align;      /* its value */
    unsigned nested;     /* depth of test.nested */
    uint32_t t0_ndims;
    uint64_t t0_ne[5];
    uint32_t t0_type;
    const char *t1_name;
    uint64_t t1_off; /* UINT64_MAX: packed */
};

struct marks {
    size_t kv[5], kv_type[5], kv_val[5];
    size_t t[2], t_ndims[2], t_ne[2], t_type[2], t_off[2];
    size_t data;
};

static struct opts std_opts(void)
{
    return (struct opts){.version = 3,
                         .key2 = "llama.context_length",
                         .align_type = GGUF_TYPE_UINT32,
                         .align = 32,
                         .nested = 2,
                         .t0_ndims = 2,
                         .t0_ne = {32, 2},
                         .t0_type = ENGINE_TYPE_Q8_0,
                         .t1_name = "norm.weight",
                         .t1_off = UINT64_MAX};
}

/* header; kv0 general.architecture = "llama"; kv1 general.alignment;
 * kv2 (key2) = 128; kv3 tokenizer.ggml.tokens = [a, bb, <s>];
 * kv4 test.nested; tensor 0 tok.weight (Q8_0 32x2 = 68 bytes at 0);
 * tensor 1 norm.weight (F32 [8] = 32 bytes at the next aligned offset). */
static void build_std(struct w *w, struct marks *m, const struct opts *o)
{
    w_free(w);
    memset(m, 0, sizeof(*m));
    w_header(w, o->version, 2, 5);

    m->kv[0] = w->n;
    w_str(w, "general.architecture");
    m->kv_type[0] = w->n;
    w_u32(w, GGUF_TYPE_STRING);
    m->kv_val[0] = w->n;
    w_str(w, "llama");

    m->kv[1] = w->n;
    w_str(w, "general.alignment");
    m->kv_type[1] = w->n;
    w_u32(w, o->align_type);
    m->kv_val[1] = w->n;
    if (o->align_type == GGUF_TYPE_STRING)
        w_str(w, "32");
    else
        w_u32(w, o->align);

    m->kv[2] = w->n;
    w_str(w, o->key2);
    m->kv_type[2] = w->n;
    w_u32(w, GGUF_TYPE_UINT32);
    m->kv_val[2] = w->n;
    w_u32(w, 128);

    static const char *const toks[] = {"a", "bb", "<s>"};
    m->kv[3] = w->n;
    w_str(w, "tokenizer.ggml.tokens");
    m->kv_type[3] = w->n;
    w_u32(w, GGUF_TYPE_ARRAY);
    m->kv_val[3] = w->n;
    w_u32(w, GGUF_TYPE_STRING);
    w_u64(w, 3);
    for (int i = 0; i < 3; i++)
        w_str(w, toks[i]);

    m->kv[4] = w->n;
    w_str(w, "test.nested");
    m->kv_type[4] = w->n;
    w_u32(w, GGUF_TYPE_ARRAY);
    m->kv_val[4] = w->n;
    w_nested(w, o->nested, 0);

    uint32_t align = o->align_type == GGUF_TYPE_UINT32 && o->align && !(o->align & (o->align - 1))
                         ? o->align
                         : 32;
    uint32_t blk = 1, bytes = 4;
    engine_type_layout((enum engine_type)o->t0_type, &blk, &bytes);
    uint64_t nel0 = 1;
    for (uint32_t j = 0; j < o->t0_ndims && j < 5; j++)
        nel0 *= o->t0_ne[j];
    uint64_t size0 = blk ? nel0 / blk * bytes : 0;
    if (size0 > 4096)
        size0 = 4096;
    uint64_t off1 = o->t1_off != UINT64_MAX ? o->t1_off : (size0 + align - 1) / align * align;

    m->t[0] = w->n;
    w_str(w, "tok.weight");
    m->t_ndims[0] = w->n;
    w_u32(w, o->t0_ndims);
    m->t_ne[0] = w->n;
    for (uint32_t j = 0; j < o->t0_ndims && j < 5; j++)
        w_u64(w, o->t0_ne[j]);
    m->t_type[0] = w->n;
    w_u32(w, o->t0_type);
    m->t_off[0] = w->n;
    w_u64(w, 0);

    m->t[1] = w->n;
    w_str(w, o->t1_name);
    m->t_ndims[1] = w->n;
    w_u32(w, 1);
    m->t_ne[1] = w->n;
    w_u64(w, 8);
    m->t_type[1] = w->n;
    w_u32(w, ENGINE_TYPE_F32);
    m->t_off[1] = w->n;
    w_u64(w, off1);

    w_pad(w, align);
    m->data = w->n;
    for (uint64_t k = 0; k < size0; k++)
        w_u8(w, (uint8_t)(0x40 + k));
    if (off1 > 4096)
        return; /* tensor 1 points far past the end of the file */
    while (w->n < m->data + off1)
        w_u8(w, 0);
    w->n = m->data + off1; /* an overlapping tensor 1 rewrites tensor 0's tail */
    for (int k = 0; k < 32; k++)
        w_u8(w, (uint8_t)(0x80 + k));
    while (w->n < m->data + size0)
        w_u8(w, 0);
}

/* Open n bytes from an exact-size heap copy, so ASan sees any over-read,
 * touch every tensor's last byte, and close again. */
static enum shoal_err open_copy(const uint8_t *p, size_t n, struct shoal_diag *d)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    if (n)
        memcpy(copy, p, n);
    shoal_diag_clear(d);
    struct gguf *g = NULL;
    enum shoal_err rc = gguf_open_memory(n ? copy : NULL, n, "t.gguf", &g, d);
    if (rc == SHOAL_OK) {
        for (uint64_t i = 0; i < gguf_n_tensors(g); i++) {
            const struct gguf_tensor *t = gguf_tensor_at(g, i);
            volatile uint8_t b = ((const uint8_t *)t->data)[t->size - 1];
            (void)b;
        }
        gguf_close(g);
    }
    free(copy);
    return rc;
}

/* Expect a rejection: err, offset and a message fragment. */
#define EXPECT_FAIL(wr, err_, off_, frag)                                                          \
    do {                                                                                           \
        struct shoal_diag d_;                                                                      \
        enum shoal_err rc_ = open_copy((wr)->p, (wr)->n, &d_);                                     \
        CHECK_EQ_INT(rc_, err_);                                                                   \
        CHECK_EQ_INT(d_.offset, (int64_t)(off_));                                                  \
        CHECK_CONTAINS(d_.msg, frag);                                                              \
        CHECK_STR(d_.file, "t.gguf");                                                              \
    } while (0)

/* ---- Tests ---- */

static void test_valid(void)
{
    struct w w = {0};
    struct marks m;
    struct opts o = std_opts();
    build_std(&w, &m, &o);
    save("std", &w);

    uint8_t *copy = malloc(w.n);
    memcpy(copy, w.p, w.n);
    struct gguf *g = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(gguf_open_memory(copy, w.n, "t.gguf", &g, &d), SHOAL_OK);
    if (!g) {
        free(copy);
        w_free(&w);
        return;
    }
    CHECK_EQ_INT(gguf_version(g), 3);
    CHECK_EQ_INT(gguf_alignment(g), 32);
    CHECK_EQ_INT(gguf_file_size(g), w.n);
    CHECK_EQ_INT(gguf_data_offset(g), m.data);
    CHECK_EQ_INT(gguf_n_kv(g), 5);
    CHECK_EQ_INT(gguf_n_tensors(g), 2);

    struct gguf_str s;
    CHECK_EQ_INT(gguf_get_str(g, "general.architecture", &s, &d), SHOAL_OK);
    CHECK(gguf_str_eq(s, "llama"));
    CHECK(!gguf_str_eq(s, "llam"));
    uint32_t u = 0;
    CHECK_EQ_INT(gguf_get_u32(g, "llama.context_length", &u, &d), SHOAL_OK);
    CHECK_EQ_INT(u, 128);
    const struct gguf_kv *kv = gguf_find(g, "llama.context_length");
    CHECK(kv && kv->offset == m.kv_val[2] && kv->type == GGUF_TYPE_UINT32 && kv->n == 1);
    CHECK(gguf_find(g, "nope") == NULL);
    CHECK(gguf_kv_at(g, 5) == NULL);

    const struct gguf_kv *toks = NULL;
    CHECK_EQ_INT(gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &toks, &d), SHOAL_OK);
    if (toks) {
        CHECK_EQ_INT(toks->n, 3);
        CHECK(gguf_str_eq(gguf_arr_str(toks, 0), "a"));
        CHECK(gguf_str_eq(gguf_arr_str(toks, 1), "bb"));
        CHECK(gguf_str_eq(gguf_arr_str(toks, 2), "<s>"));
    }
    kv = gguf_find(g, "test.nested");
    CHECK(kv && kv->type == GGUF_TYPE_ARRAY && kv->elem_type == GGUF_TYPE_ARRAY && kv->n == 2 &&
          kv->str_offsets == NULL);

    const struct gguf_tensor *t0 = gguf_find_tensor(g, "tok.weight");
    const struct gguf_tensor *t1 = gguf_find_tensor(g, "norm.weight");
    CHECK(t0 && t1 && gguf_tensor_at(g, 0) == t0 && gguf_tensor_at(g, 1) == t1);
    CHECK(gguf_find_tensor(g, "tok") == NULL);
    if (t0 && t1) {
        CHECK_EQ_INT(t0->type, ENGINE_TYPE_Q8_0);
        CHECK_EQ_INT(t0->n_dims, 2);
        CHECK(t0->ne[0] == 32 && t0->ne[1] == 2 && t0->ne[2] == 1 && t0->ne[3] == 1);
        CHECK_EQ_INT(t0->size, 68);
        CHECK_EQ_INT(t0->info_offset, m.t[0]);
        CHECK(t0->data == copy + m.data);
        CHECK_EQ_INT(((const uint8_t *)t0->data)[0], 0x40);
        CHECK_EQ_INT(t1->offset, 96);
        CHECK_EQ_INT(t1->size, 32);
        CHECK(t1->data == copy + m.data + 96);
        CHECK_EQ_INT(((const uint8_t *)t1->data)[31], 0x80 + 31);
    }
    gguf_close(g);
    free(copy);

    /* v2 has the same layout. */
    o.version = 2;
    build_std(&w, &m, &o);
    struct gguf *g2 = NULL;
    CHECK_EQ_INT(gguf_open_memory(w.p, w.n, "t.gguf", &g2, &d), SHOAL_OK);
    CHECK(g2 && gguf_version(g2) == 2);
    gguf_close(g2);
    save("v2", &w);

    /* A larger alignment moves the data section and every offset. */
    o = std_opts();
    o.align = 64;
    build_std(&w, &m, &o);
    CHECK_EQ_INT(m.data % 64, 0);
    CHECK_EQ_INT(gguf_open_memory(w.p, w.n, "t.gguf", &g2, &d), SHOAL_OK);
    CHECK(g2 && gguf_alignment(g2) == 64 && gguf_data_offset(g2) == m.data &&
          gguf_tensor_at(g2, 1)->offset == 128);
    gguf_close(g2);
    save("align64", &w);

    /* Deep but allowed nesting. */
    o = std_opts();
    o.nested = GGUF_CAP_ARRAY_DEPTH;
    build_std(&w, &m, &o);
    CHECK_EQ_INT(gguf_open_memory(w.p, w.n, "t.gguf", &g2, &d), SHOAL_OK);
    gguf_close(g2);
    save("nested8", &w);
    w_free(&w);
}

/* Every prefix of a valid file is refused cleanly, at an offset inside it. */
static void test_truncated_everywhere(void)
{
    struct w w = {0};
    struct marks m;
    struct opts o = std_opts();
    build_std(&w, &m, &o);
    int bad = 0;
    for (size_t n = 0; n < w.n; n++) {
        struct shoal_diag d;
        enum shoal_err rc = open_copy(w.p, n, &d);
        if (rc != SHOAL_ERR_INVALID || d.offset < 0 || (size_t)d.offset > n || !d.msg[0] ||
            strcmp(d.file, "t.gguf") != 0) {
            if (bad++ < 5)
                fprintf(stderr, "truncated at %zu: rc %d offset %lld: %s\n", n, (int)rc,
                        (long long)d.offset, d.msg);
        }
        if (n < m.kv[0] && n < 24)
            CHECK_CONTAINS(d.msg, "truncated header");
    }
    CHECK_EQ_INT(bad, 0);

    /* Some field-specific messages. */
    struct shoal_diag d;
    open_copy(w.p, m.kv_val[2] + 2, &d);
    CHECK_EQ_INT(d.offset, m.kv_val[2]);
    CHECK_CONTAINS(d.msg, "key 2 ('llama.context_length'): truncated uint32 value");
    open_copy(w.p, m.t_off[1] + 3, &d);
    CHECK_EQ_INT(d.offset, m.t_off[1]);
    CHECK_CONTAINS(d.msg, "tensor 1 ('norm.weight'): truncated data offset");
    open_copy(w.p, w.n - 1, &d);
    CHECK_EQ_INT(d.offset, m.t_off[1]);
    CHECK_CONTAINS(d.msg, "runs past the end of the file");
    open_copy(w.p, 0, &d);
    CHECK_CONTAINS(d.msg, "truncated header: the file has 0 bytes");
    CHECK_EQ_INT(d.offset, 0);
    w_free(&w);
}

static void test_header(void)
{
    struct w w = {0};
    struct marks m;
    struct opts o = std_opts();
    build_std(&w, &m, &o);

    w.p[0] = 'X';
    EXPECT_FAIL(&w, SHOAL_ERR_INVALID, 0, "not a GGUF file: magic is 'XGUF'");
    save("badmagic", &w);
    w.p[0] = 'G';

    w_put32(&w, 4, 1);
    EXPECT_FAIL(&w, SHOAL_ERR_UNSUPPORTED, 4, "GGUF version 1 is not supported");
    save("v1", &w);
    w_put32(&w, 4, 4);
    EXPECT_FAIL(&w, SHOAL_ERR_UNSUPPORTED, 4, "GGUF version 4 is not supported");
    w_put32(&w, 4, 0);
    EXPECT_FAIL(&w, SHOAL_ERR_INVALID, 4, "GGUF version 0 is not supported");
    w.p[4] = 0, w.p[5] = 0, w.p[6] = 0, w.p[7] = 3;
    EXPECT_FAIL(&w, SHOAL_ERR_UNSUPPORTED, 4, "big-endian GGUF");
    save("bigendian", &w);
    w_put32(&w, 4, 3);

    w_put64(&w, 16, (uint64_t)1 << 60);
    EXPECT_FAIL(&w, SHOAL_ERR_INVALID, 16, "key/value count 1152921504606846976 is impossible");
    save("nkv-absurd", &w);
    w_put64(&w, 16, 5);
    w_put64(&w, 8, (uint64_t)1 << 60);
    EXPECT_FAIL(&w, SHOAL_ERR_INVALID, 8, "tensor count 1152921504606846976 is impossible");
    w_put64(&w, 8, 2);

    /* A version-1 file is refused by its version even when short. */
    struct w s = {0};
    w_bytes(&s, "GGUF\x01\x00\x00\x00\x05", 9);
    EXPECT_FAIL(&s, SHOAL_ERR_UNSUPPORTED, 4, "version 1");
    w_free(&s);

    /* Counts past the reader's caps in a file that could hold them. */
    struct w big = {0};
    w_header(&big, 3, 0, GGUF_CAP_KV + 1);
    size_t want = 24 + (size_t)(GGUF_CAP_KV + 1) * 13;
    uint8_t *z = calloc(1, want);
    w_bytes(&big, z, want - 24);
    EXPECT_FAIL(&big, SHOAL_ERR_TOO_BIG, 16, "more than this reader accepts");
    free(z);
    w_free(&big);
    w_free(&w);
}

static void test_metadata_errors(void)
{
    struct w w = {0};
    struct marks m;
    struct opts o = std_opts();
    build_std(&w, &m, &o);

    struct w c = {0};
#define FRESH()                                                                                    \
    do {                                                                                           \
        c.n = 0;                                                                                   \
        w_bytes(&c, w.p, w.n);                                                                     \
    } while (0)

    FRESH();
    w_put64(&c, m.kv[2], UINT64_MAX);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv[2],
                "key 2: key name length 18446744073709551615 runs past the end of the file");
    save("keylen-overflow", &c);

    FRESH();
    w_put64(&c, m.kv_val[0], (uint64_t)1 << 63);
    EXPECT_FAIL(
        &c, SHOAL_ERR_INVALID, m.kv_val[0],
        "key 0 ('general.architecture'): string value length 9223372036854775808 runs past");

    FRESH();
    w_put32(&c, m.kv_type[2], 13);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv_type[2],
                "key 2 ('llama.context_length'): value type 13 is not a GGUF value type");
    save("kvtype13", &c);

    FRESH();
    w_put32(&c, m.kv_val[3], 77);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv_val[3],
                "array element type 77 is not a GGUF value type");

    FRESH();
    w_put64(&c, m.kv_val[3] + 4, (uint64_t)1 << 61);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv_val[3] + 4,
                "key 3 ('tokenizer.ggml.tokens'): array length 2305843009213693952 is impossible");
    save("arrlen-absurd", &c);

    /* String element 1's length runs past the end. */
    FRESH();
    size_t el1 = m.kv_val[3] + 4 + 8 + 8 + 1;
    w_put64(&c, el1, 1u << 30);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, el1, "string element 1 length 1073741824 runs past");

    /* Duplicate key: key 2 renamed to key 0's name. */
    o.key2 = "general.architecture";
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv[2],
                "key 2 ('general.architecture'): duplicate key: key 0 has the same name");
    save("dupkey", &c);
    w_free(&c);

    /* Empty key name. */
    o = std_opts();
    o.key2 = "";
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv[2], "key 2 (''): empty key name");
    w_free(&c);

    /* Nesting past the cap. */
    o = std_opts();
    o.nested = GGUF_CAP_ARRAY_DEPTH + 1;
    build_std(&c, &m, &o);
    size_t deep = m.kv_val[4];
    for (unsigned i = 1; i < GGUF_CAP_ARRAY_DEPTH; i++)
        deep += 12; /* each level's header, first branch first */
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, deep, "arrays are nested more than 8 levels deep");
    save("nested9", &c);
    w_free(&c);

    /* Alignment: zero, not a power of two, wrong type. */
    o = std_opts();
    o.align = 0;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv_val[1],
                "general.alignment: 0 is not a nonzero power of two");
    w_free(&c);
    o.align = 48;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv_val[1],
                "general.alignment: 48 is not a nonzero power of two");
    save("align48", &c);
    w_free(&c);
    o = std_opts();
    o.align_type = GGUF_TYPE_STRING;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.kv_val[1],
                "general.alignment: must be a uint32, not string");
    w_free(&c);

    /* A bool that is neither 0 nor 1. */
    struct w b = {0};
    w_header(&b, 3, 0, 1);
    w_str(&b, "flag");
    w_u32(&b, GGUF_TYPE_BOOL);
    size_t at = b.n;
    w_u8(&b, 2);
    EXPECT_FAIL(&b, SHOAL_ERR_INVALID, at, "key 0 ('flag'): bool value 2 is neither 0 nor 1");
    w_free(&b);

    /* Non-printable key bytes are escaped in messages. */
    memset(&b, 0, sizeof(b));
    w_header(&b, 3, 0, 1);
    w_str(&b, "a\x01'b");
    at = b.n;
    w_u32(&b, 99);
    EXPECT_FAIL(&b, SHOAL_ERR_INVALID, at, "key 0 ('a\\x01\\x27b'): value type 99");
    w_free(&b);
    w_free(&w);
#undef FRESH
}

static void test_tensor_errors(void)
{
    struct w c = {0};
    struct marks m;
    struct opts o;

    o = std_opts();
    o.t0_type = 99;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_type[0],
                "tensor 0 ('tok.weight'): type 99 is not a known tensor type");
    save("ttype99", &c);
    w_free(&c);
    o.t0_type = 31;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_UNSUPPORTED, m.t_type[0], "type 31 (Q4_0_4_4) is not supported");
    w_free(&c);

    o = std_opts();
    o.t0_ndims = 0;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ndims[0],
                "tensor 0 ('tok.weight'): n_dims 0 is not in 1..4");
    w_free(&c);
    o.t0_ndims = 5;
    o.t0_ne[2] = o.t0_ne[3] = o.t0_ne[4] = 1;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ndims[0], "n_dims 5 is not in 1..4");
    w_free(&c);

    o = std_opts();
    o.t0_ne[1] = 0;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ne[0] + 8, "tensor 0 ('tok.weight'): ne[1] is 0");
    w_free(&c);
    o.t0_ne[1] = (uint64_t)1 << 63;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ne[0] + 8, "ne[1] = 9223372036854775808 is larger than");
    w_free(&c);

    o = std_opts();
    o.t0_ndims = 3;
    o.t0_ne[1] = (uint64_t)1 << 40;
    o.t0_ne[2] = (uint64_t)1 << 40;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ne[0] + 16, "element count overflows");
    save("ne-overflow", &c);
    w_free(&c);

    /* Elements that fit 2^63 but need more bytes than the file has. */
    o = std_opts();
    o.t0_ne[1] = (uint64_t)1 << 40;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ne[0], "take more bytes than the whole file");
    w_free(&c);

    o = std_opts();
    o.t0_ne[0] = 33;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_ne[0],
                "tensor 0 ('tok.weight'): ne[0] = 33 is not a multiple of Q8_0's block size 32");
    w_free(&c);

    o = std_opts();
    o.t1_off = 100;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_off[1],
                "tensor 1 ('norm.weight'): data offset 100 is not a multiple of the alignment 32");
    w_free(&c);

    o = std_opts();
    o.t1_off = 32;
    build_std(&c, &m, &o);
    char want[200];
    snprintf(want, sizeof(want),
             "tensor 1 ('norm.weight'): data [%zu, %zu) overlaps tensor 0 ('tok.weight') at [%zu, "
             "%zu)",
             m.data + 32, m.data + 64, m.data, m.data + 68);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_off[1], want);
    save("overlap", &c);
    w_free(&c);

    /* Tensor 1 past the end of the file, and so far that start + size wraps. */
    o = std_opts();
    o.t1_off = 0x100000;
    build_std(&c, &m, &o);
    snprintf(want, sizeof(want),
             "tensor 1 ('norm.weight'): data [%zu, %zu) runs past the end of the file (%zu bytes)",
             m.data + 0x100000, m.data + 0x100000 + 32, c.n);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_off[1], want);
    save("past-eof", &c);
    w_free(&c);
    o.t1_off = UINT64_MAX - 31;
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t_off[1], "runs past the end of the file");
    w_free(&c);

    o = std_opts();
    o.t1_name = "tok.weight";
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t[1],
                "tensor 1 ('tok.weight'): duplicate tensor name: tensor 0 has the same name");
    save("duptensor", &c);
    w_free(&c);

    o = std_opts();
    o.t1_name = "";
    build_std(&c, &m, &o);
    EXPECT_FAIL(&c, SHOAL_ERR_INVALID, m.t[1], "tensor 1 (''): empty tensor name");
    w_free(&c);
}

/* Typed getters over one key of every type. */
static void test_getters(void)
{
    struct w w = {0};
    w_header(&w, 3, 0, 18);
#define KV(name, type)                                                                             \
    do {                                                                                           \
        w_str(&w, name);                                                                           \
        w_u32(&w, type);                                                                           \
    } while (0)
    KV("u8", GGUF_TYPE_UINT8);
    w_u8(&w, 200);
    KV("i8", GGUF_TYPE_INT8);
    w_u8(&w, (uint8_t)-5);
    KV("u16", GGUF_TYPE_UINT16);
    w_u8(&w, 0x34), w_u8(&w, 0x12);
    KV("i16", GGUF_TYPE_INT16);
    w_u8(&w, 0xfe), w_u8(&w, 0xff);
    KV("u32", GGUF_TYPE_UINT32);
    w_u32(&w, 4000000000u);
    KV("i32", GGUF_TYPE_INT32);
    w_u32(&w, (uint32_t)-7);
    KV("f32", GGUF_TYPE_FLOAT32);
    w_f32(&w, 1.5f);
    KV("bool", GGUF_TYPE_BOOL);
    w_u8(&w, 1);
    KV("str", GGUF_TYPE_STRING);
    w_str(&w, "hi");
    KV("u64", GGUF_TYPE_UINT64);
    w_u64(&w, (uint64_t)1 << 40);
    KV("i64", GGUF_TYPE_INT64);
    w_u64(&w, (uint64_t) - ((int64_t)1 << 40));
    KV("f64", GGUF_TYPE_FLOAT64);
    {
        double v = 2.5e-7;
        uint64_t u;
        memcpy(&u, &v, 8);
        w_u64(&w, u);
    }
    KV("f64big", GGUF_TYPE_FLOAT64);
    size_t big_at = w.n;
    {
        double v = 1e300;
        uint64_t u;
        memcpy(&u, &v, 8);
        w_u64(&w, u);
    }
    KV("af32", GGUF_TYPE_ARRAY);
    w_u32(&w, GGUF_TYPE_FLOAT32);
    w_u64(&w, 2);
    w_f32(&w, 0.25f);
    w_f32(&w, -2.0f);
    KV("ai32", GGUF_TYPE_ARRAY);
    w_u32(&w, GGUF_TYPE_INT32);
    w_u64(&w, 2);
    w_u32(&w, (uint32_t)-3);
    w_u32(&w, 9);
    KV("au32", GGUF_TYPE_ARRAY);
    w_u32(&w, GGUF_TYPE_UINT32);
    w_u64(&w, 1);
    w_u32(&w, 0xdeadbeef);
    KV("i64small", GGUF_TYPE_INT64);
    w_u64(&w, 77);
    KV("aempty", GGUF_TYPE_ARRAY);
    w_u32(&w, GGUF_TYPE_STRING);
    w_u64(&w, 0);
#undef KV
    save("getters", &w);

    struct gguf *g = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(gguf_open_memory(w.p, w.n, "t.gguf", &g, &d), SHOAL_OK);
    if (!g) {
        fprintf(stderr, "%s\n", d.msg);
        w_free(&w);
        return;
    }
    uint32_t u = 12345;
    int32_t i = 0;
    uint64_t u64 = 0;
    float f = 0;
    bool b = false;
    struct gguf_str s;
    const struct gguf_kv *a;

    CHECK_EQ_INT(gguf_get_u32(g, "missing", &u, &d), SHOAL_ERR_NOT_FOUND);
    CHECK_EQ_INT(u, 12345);
    CHECK_EQ_INT(gguf_get_u32(g, "u8", &u, &d), SHOAL_OK);
    CHECK_EQ_INT(u, 200);
    CHECK_EQ_INT(gguf_get_u32(g, "u16", &u, &d), SHOAL_OK);
    CHECK_EQ_INT(u, 0x1234);
    CHECK_EQ_INT(gguf_get_u32(g, "u32", &u, &d), SHOAL_OK);
    CHECK_EQ_INT(u, 4000000000u);
    CHECK_EQ_INT(gguf_get_u32(g, "i64small", &u, &d), SHOAL_OK);
    CHECK_EQ_INT(u, 77);
    shoal_diag_clear(&d);
    CHECK_EQ_INT(gguf_get_u32(g, "i8", &u, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "i8");
    CHECK_CONTAINS(d.msg, "value -5 is out of range for a uint32");
    CHECK_EQ_INT(gguf_get_u32(g, "u64", &u, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(gguf_get_u32(g, "str", &u, &d), SHOAL_ERR_INVALID);
    CHECK_CONTAINS(d.msg, "expected an integer, got string");
    CHECK_EQ_INT(gguf_get_u32(g, "af32", &u, &d), SHOAL_ERR_INVALID);
    CHECK_CONTAINS(d.msg, "got array");

    CHECK_EQ_INT(gguf_get_i32(g, "i8", &i, &d), SHOAL_OK);
    CHECK_EQ_INT(i, -5);
    CHECK_EQ_INT(gguf_get_i32(g, "i16", &i, &d), SHOAL_OK);
    CHECK_EQ_INT(i, -2);
    CHECK_EQ_INT(gguf_get_i32(g, "i32", &i, &d), SHOAL_OK);
    CHECK_EQ_INT(i, -7);
    CHECK_EQ_INT(gguf_get_i32(g, "u32", &i, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(gguf_get_i32(g, "i64", &i, &d), SHOAL_ERR_INVALID);
    CHECK_CONTAINS(d.msg, "out of range for an int32");

    CHECK_EQ_INT(gguf_get_u64(g, "u64", &u64, &d), SHOAL_OK);
    CHECK(u64 == (uint64_t)1 << 40);
    CHECK_EQ_INT(gguf_get_u64(g, "i64", &u64, &d), SHOAL_ERR_INVALID);

    CHECK_EQ_INT(gguf_get_f32(g, "f32", &f, &d), SHOAL_OK);
    CHECK(f == 1.5f);
    CHECK_EQ_INT(gguf_get_f32(g, "f64", &f, &d), SHOAL_OK);
    CHECK(f == 2.5e-7f);
    CHECK_EQ_INT(gguf_get_f32(g, "u32", &f, &d), SHOAL_OK);
    CHECK(f == 4e9f);
    CHECK_EQ_INT(gguf_get_f32(g, "i8", &f, &d), SHOAL_OK);
    CHECK(f == -5.0f);
    shoal_diag_clear(&d);
    CHECK_EQ_INT(gguf_get_f32(g, "f64big", &f, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(d.offset, big_at);
    CHECK_CONTAINS(d.msg, "does not fit in a float32");
    CHECK_EQ_INT(gguf_get_f32(g, "str", &f, &d), SHOAL_ERR_INVALID);

    CHECK_EQ_INT(gguf_get_bool(g, "bool", &b, &d), SHOAL_OK);
    CHECK(b);
    CHECK_EQ_INT(gguf_get_bool(g, "u8", &b, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(gguf_get_str(g, "str", &s, &d), SHOAL_OK);
    CHECK(gguf_str_eq(s, "hi"));
    CHECK_EQ_INT(gguf_get_str(g, "u8", &s, &d), SHOAL_ERR_INVALID);

    CHECK_EQ_INT(gguf_get_arr(g, "af32", GGUF_TYPE_FLOAT32, &a, &d), SHOAL_OK);
    CHECK(a->n == 2 && gguf_arr_f32(a, 0) == 0.25f && gguf_arr_f32(a, 1) == -2.0f);
    CHECK_EQ_INT(gguf_get_arr(g, "ai32", GGUF_TYPE_INT32, &a, &d), SHOAL_OK);
    CHECK(gguf_arr_i32(a, 0) == -3 && gguf_arr_i32(a, 1) == 9);
    CHECK_EQ_INT(gguf_get_arr(g, "au32", GGUF_TYPE_UINT32, &a, &d), SHOAL_OK);
    CHECK(gguf_arr_u32(a, 0) == 0xdeadbeef);
    CHECK_EQ_INT(gguf_get_arr(g, "aempty", GGUF_TYPE_STRING, &a, &d), SHOAL_OK);
    CHECK(a->n == 0);
    CHECK_EQ_INT(gguf_get_arr(g, "ai32", GGUF_TYPE_UINT32, &a, &d), SHOAL_ERR_INVALID);
    CHECK_CONTAINS(d.msg, "expected an array of uint32, got an array of int32");
    CHECK_EQ_INT(gguf_get_arr(g, "u8", GGUF_TYPE_UINT32, &a, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(gguf_get_arr(g, "nope", GGUF_TYPE_UINT32, &a, &d), SHOAL_ERR_NOT_FOUND);
    gguf_close(g);
    w_free(&w);
}

static void test_type_layouts(void)
{
    static const struct {
        enum engine_type t;
        const char *name;
        uint32_t blk, bytes;
    } want[] = {
        {ENGINE_TYPE_F32, "F32", 1, 4},           {ENGINE_TYPE_F16, "F16", 1, 2},
        {ENGINE_TYPE_BF16, "BF16", 1, 2},         {ENGINE_TYPE_Q4_0, "Q4_0", 32, 18},
        {ENGINE_TYPE_Q4_1, "Q4_1", 32, 20},       {ENGINE_TYPE_Q5_0, "Q5_0", 32, 22},
        {ENGINE_TYPE_Q5_1, "Q5_1", 32, 24},       {ENGINE_TYPE_Q8_0, "Q8_0", 32, 34},
        {ENGINE_TYPE_Q8_1, "Q8_1", 32, 36},       {ENGINE_TYPE_Q2_K, "Q2_K", 256, 84},
        {ENGINE_TYPE_Q3_K, "Q3_K", 256, 110},     {ENGINE_TYPE_Q4_K, "Q4_K", 256, 144},
        {ENGINE_TYPE_Q5_K, "Q5_K", 256, 176},     {ENGINE_TYPE_Q6_K, "Q6_K", 256, 210},
        {ENGINE_TYPE_Q8_K, "Q8_K", 256, 292},     {ENGINE_TYPE_IQ2_XXS, "IQ2_XXS", 256, 66},
        {ENGINE_TYPE_IQ2_XS, "IQ2_XS", 256, 74},  {ENGINE_TYPE_IQ3_XXS, "IQ3_XXS", 256, 98},
        {ENGINE_TYPE_IQ1_S, "IQ1_S", 256, 50},    {ENGINE_TYPE_IQ4_NL, "IQ4_NL", 32, 18},
        {ENGINE_TYPE_IQ3_S, "IQ3_S", 256, 110},   {ENGINE_TYPE_IQ2_S, "IQ2_S", 256, 82},
        {ENGINE_TYPE_IQ4_XS, "IQ4_XS", 256, 136}, {ENGINE_TYPE_I8, "I8", 1, 1},
        {ENGINE_TYPE_I16, "I16", 1, 2},           {ENGINE_TYPE_I32, "I32", 1, 4},
        {ENGINE_TYPE_I64, "I64", 1, 8},           {ENGINE_TYPE_F64, "F64", 1, 8},
        {ENGINE_TYPE_IQ1_M, "IQ1_M", 256, 56},    {ENGINE_TYPE_TQ1_0, "TQ1_0", 256, 54},
        {ENGINE_TYPE_TQ2_0, "TQ2_0", 256, 66},
    };
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(want); k++) {
        uint32_t blk = 0, bytes = 0;
        CHECK(engine_type_layout(want[k].t, &blk, &bytes));
        CHECK_EQ_INT(blk, want[k].blk);
        CHECK_EQ_INT(bytes, want[k].bytes);
        CHECK_STR(engine_type_name(want[k].t), want[k].name);
    }
    static const int unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 39, 40, 1000, -1};
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(unknown); k++) {
        uint32_t blk, bytes;
        CHECK(!engine_type_layout((enum engine_type)unknown[k], &blk, &bytes));
        CHECK(engine_type_name((enum engine_type)unknown[k]) == NULL);
    }
}

/* ---- Model level ---- */

struct model_opts {
    const char *arch;
    bool with_ctx; /* <arch>.context_length present */
    uint32_t head_kv;
    const char *scaling; /* rope.scaling.type or NULL */
    const char *tmpl;    /* chat template or NULL */
    bool output;         /* an output.weight tensor */
    bool tensors;
};

static struct model_opts std_model(void)
{
    return (struct model_opts){
        .arch = "llama", .with_ctx = true, .head_kv = 2, .output = false, .tensors = true};
}

static void build_model(struct w *w, const struct model_opts *o)
{
    w_free(w);
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81hi"};
    struct tdef t[3] = {
        {"token_embd.weight", 2, {64, 4}, ENGINE_TYPE_F16},
        {"output_norm.weight", 1, {64}, ENGINE_TYPE_F32},
        {"output.weight", 2, {64, 4}, ENGINE_TYPE_Q8_0},
    };
    size_t nt = o->tensors ? (o->output ? 3 : 2) : 0;
    uint64_t nkv = 13 + (o->with_ctx ? 1 : 0) + (o->scaling ? 1 : 0) + (o->tmpl ? 1 : 0);
    w_header(w, 3, nt, nkv);
    char key[96];
#define AK(suffix) (snprintf(key, sizeof(key), "%s.%s", o->arch, suffix), key)
    kv_str(w, "general.architecture", o->arch);
    kv_str(w, "general.name", "unit \"model\"");
    if (o->with_ctx)
        kv_u32(w, AK("context_length"), 2048);
    kv_u32(w, AK("embedding_length"), 64);
    kv_u32(w, AK("block_count"), 1);
    kv_u32(w, AK("feed_forward_length"), 128);
    kv_u32(w, AK("attention.head_count"), 4);
    kv_u32(w, AK("attention.head_count_kv"), o->head_kv);
    kv_f32(w, AK("attention.layer_norm_rms_epsilon"), 1e-5f);
    kv_f32(w, AK("rope.freq_base"), 500000.0f);
    if (o->scaling)
        kv_str(w, AK("rope.scaling.type"), o->scaling);
#undef AK
    kv_str(w, "tokenizer.ggml.model", "llama");
    kv_strs(w, "tokenizer.ggml.tokens", toks, 4);
    kv_u32(w, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (o->tmpl)
        kv_str(w, "tokenizer.chat_template", o->tmpl);
    w_tensors(w, t, nt, 32);
}

static enum shoal_err open_model(const struct w *w, struct engine_model **m, struct shoal_diag *d)
{
    return engine_model_open_memory(w->p, w->n, "m.gguf", m, d);
}

static void test_model(void)
{
    struct w w = {0};
    struct model_opts o = std_model();
    o.tmpl = "{% for m in messages %}{{ m.content }}{% endfor %}";
    build_model(&w, &o);
    save("model", &w);
    struct engine_model *m = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_OK);
    if (!m) {
        fprintf(stderr, "%s\n", d.msg);
        w_free(&w);
        return;
    }
    const struct engine_hparams *hp = engine_model_hparams(m);
    CHECK_STR(hp->arch, "llama");
    CHECK_EQ_INT(hp->context_length, 2048);
    CHECK_EQ_INT(hp->n_embd, 64);
    CHECK_EQ_INT(hp->n_layer, 1);
    CHECK_EQ_INT(hp->n_ff, 128);
    CHECK_EQ_INT(hp->n_head, 4);
    CHECK_EQ_INT(hp->n_head_kv, 2);
    CHECK_EQ_INT(hp->head_dim_k, 16);
    CHECK_EQ_INT(hp->head_dim_v, 16);
    CHECK_EQ_INT(hp->rope_dims, 16);
    CHECK_EQ_INT(hp->n_vocab, 4);
    CHECK_EQ_INT(hp->rope, ENGINE_ROPE_NORM);
    CHECK(hp->rope_freq_base == 500000.0f);
    CHECK(hp->norm_eps == 1e-5f);
    CHECK(hp->tied_embeddings);
    CHECK_EQ_INT(hp->rope_scaling, ENGINE_ROPE_SCALING_NONE);

    cJSON *j = NULL;
    CHECK_EQ_INT(engine_model_describe(m, &j), SHOAL_OK);
    if (j) {
        char *s = cJSON_PrintUnformatted(j);
        CHECK_CONTAINS(s, "\"path\":\"m.gguf\"");
        CHECK_CONTAINS(s, "\"name\":\"unit \\\"model\\\"\"");
        CHECK_CONTAINS(s, "\"tensor_types\":{\"F16\":{\"count\":1,\"bytes\":512},"
                          "\"F32\":{\"count\":1,\"bytes\":256}}");
        CHECK_CONTAINS(s, "\"n_params\":320");
        CHECK_CONTAINS(s, "\"norm_eps\":1e-05");
        CHECK_CONTAINS(s, "\"tied_embeddings\":true");
        CHECK_CONTAINS(s, "\"kind\":\"spm\"");
        CHECK_CONTAINS(s, "\"bos\":{\"id\":1,\"text\":\"<s>\"}");
        CHECK_CONTAINS(s, "\"present\":true,\"bytes\":50,\"fallback\":null");
        CHECK_CONTAINS(s, "\"text\":\"{% for m in messages %}");
        cJSON_free(s);
        cJSON_Delete(j);
    }
    engine_model_close(m);
    w_free(&w);

    /* Untied, no template: the ChatML fallback is named. */
    o = std_model();
    o.output = true;
    build_model(&w, &o);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_OK);
    if (m) {
        CHECK(!engine_model_hparams(m)->tied_embeddings);
        CHECK_EQ_INT(engine_model_describe(m, &j), SHOAL_OK);
        char *s = cJSON_PrintUnformatted(j);
        CHECK_CONTAINS(s, "\"present\":false,\"bytes\":0,\"fallback\":\"chatml\"");
        CHECK_CONTAINS(s, "\"F32\":{\"count\":1,\"bytes\":256}}");
        cJSON_free(s);
        cJSON_Delete(j);
        engine_model_close(m);
    }
    w_free(&w);

    /* qwen2 gets NEOX; yarn scaling is read. */
    o = std_model();
    o.arch = "qwen2";
    o.scaling = "yarn";
    build_model(&w, &o);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_OK);
    if (m) {
        CHECK_EQ_INT(engine_model_hparams(m)->rope, ENGINE_ROPE_NEOX);
        CHECK_EQ_INT(engine_model_hparams(m)->rope_scaling, ENGINE_ROPE_SCALING_YARN);
        engine_model_close(m);
    }
    w_free(&w);

    /* A vocabulary-only file needs no hyper-parameters. */
    o = std_model();
    o.tensors = false;
    o.with_ctx = false;
    build_model(&w, &o);
    save("vocab-only", &w);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_OK);
    if (m) {
        CHECK(!engine_model_hparams(m)->tied_embeddings);
        engine_model_close(m);
    }
    w_free(&w);
}

static void test_model_errors(void)
{
    struct w w = {0};
    struct model_opts o;
    struct engine_model *m = NULL;
    struct shoal_diag d;
    char msg[1024];

    o = std_model();
    o.with_ctx = false;
    build_model(&w, &o);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_ERR_INVALID);
    shoal_diag_format(&d, msg, sizeof(msg));
    CHECK_STR(msg, "m.gguf: llama.context_length: missing (a llama model needs it)");
    w_free(&w);

    o = std_model();
    o.head_kv = 3;
    build_model(&w, &o);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "llama.attention.head_count_kv");
    CHECK_CONTAINS(d.msg, "3 does not divide the head count 4");
    CHECK(d.offset > 0);
    w_free(&w);

    o = std_model();
    o.scaling = "sideways";
    build_model(&w, &o);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "llama.rope.scaling.type");
    CHECK_CONTAINS(d.msg, "unknown RoPE scaling type");
    w_free(&w);

    o = std_model();
    o.tmpl = "ok \xff bad";
    build_model(&w, &o);
    save("template-bad-utf8", &w);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.chat_template");
    CHECK_CONTAINS(d.msg, "invalid UTF-8 at byte 3 of the template");
    w_free(&w);

    o = std_model();
    o.arch = "ll.ama";
    build_model(&w, &o);
    CHECK_EQ_INT(open_model(&w, &m, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "general.architecture");
    w_free(&w);

    /* A broken GGUF is reported by the model open too, with the file name. */
    struct w bad = {0};
    w_bytes(&bad, "GGUF\x01\0\0\0", 8);
    CHECK_EQ_INT(engine_model_open_memory(bad.p, bad.n, "m.gguf", &m, &d), SHOAL_ERR_UNSUPPORTED);
    shoal_diag_format(&d, msg, sizeof(msg));
    CHECK_CONTAINS(msg, "m.gguf: byte 4: header: GGUF version 1 is not supported");
    w_free(&bad);
}

/* The file path: mmap, and the OS errors. */
static void test_files(void)
{
    char dir[] = "/tmp/shoal-test-gguf-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp");
        return;
    }
    char path[256], empty[256];
    snprintf(path, sizeof(path), "%s/m.gguf", dir);
    snprintf(empty, sizeof(empty), "%s/empty.gguf", dir);

    struct w w = {0};
    struct model_opts o = std_model();
    build_model(&w, &o);
    FILE *f = fopen(path, "wb");
    fwrite(w.p, 1, w.n, f);
    fclose(f);
    f = fopen(empty, "wb");
    fclose(f);

    struct engine_model *m = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(engine_model_open(path, &m, &d), SHOAL_OK);
    if (m) {
        CHECK_EQ_INT(gguf_file_size(m->gguf), w.n);
        CHECK_EQ_INT(engine_model_hparams(m)->n_embd, 64);
        engine_model_close(m);
    }
    char msg[1024];
    CHECK_EQ_INT(engine_model_open(empty, &m, &d), SHOAL_ERR_INVALID);
    shoal_diag_format(&d, msg, sizeof(msg));
    CHECK_CONTAINS(msg, "empty.gguf: byte 0: header: truncated header: the file has 0 bytes");
    CHECK_EQ_INT(engine_model_open(dir, &m, &d), SHOAL_ERR_IO);
    CHECK_CONTAINS(d.msg, "not a regular file");
    snprintf(msg, sizeof(msg), "%s/none.gguf", dir);
    CHECK_EQ_INT(engine_model_open(msg, &m, &d), SHOAL_ERR_IO);
    CHECK_CONTAINS(d.msg, "cannot open: No such file or directory");
    CHECK_STR(d.file, msg);

    unlink(path);
    unlink(empty);
    rmdir(dir);
    w_free(&w);
}

int main(void)
{
    corpus_dir = getenv("SHOAL_GGUF_CORPUS_OUT");
    test_type_layouts();
    test_valid();
    test_truncated_everywhere();
    test_header();
    test_metadata_errors();
    test_tensor_errors();
    test_getters();
    test_model();
    test_model_errors();
    test_files();
    return test_report("test_gguf");
}
