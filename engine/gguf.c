/* gguf.c: the GGUF reader: maps a file read-only and parses its header,
 * metadata and tensor infos (GGUF v2 and v3, little-endian) into views of
 * the mapping. Invariant: no byte is read before the reader has checked
 * that it lies inside the file, every size is computed with overflow
 * checks, and every rejection names the field and its byte offset. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC             0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_HEADER_BYTES      24u         /* magic, version, n_tensors, n_kv */
#define GGUF_DEFAULT_ALIGNMENT 32u
/* Lower bounds on what one entry occupies, used to reject counts the rest
 * of the file cannot possibly hold before anything is allocated for them. */
#define GGUF_MIN_KV_BYTES     13u /* key length, type, a 1-byte value */
#define GGUF_MIN_TENSOR_BYTES 32u /* name length, n_dims, one ne, type, offset */

/* An open-addressing index from names to entries (keys or tensors), so
 * uniqueness checks and lookups stay linear in hostile files with many
 * entries. Slots hold entry index + 1; 0 is empty. */
struct name_index {
    uint64_t *slots;
    uint64_t mask;
};

struct gguf {
    char *name; /* path or caller's name, for diagnostics */
    const uint8_t *base;
    uint64_t size;
    void *map; /* the mapping when opened from a file, else NULL */
    size_t map_len;
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv;
    struct gguf_kv *kvs;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint64_t data_offset;
    struct name_index kv_index;
    struct name_index tensor_index;
};

/* The parse cursor. ctx names the entry being parsed ("key 3
 * ('general.name')") and prefixes every message. */
struct rd {
    struct gguf *g;
    uint64_t pos;
    struct shoal_diag *d;
    char ctx[320];
};

/* ---- Little-endian loads (the mapping may be unaligned) ---- */

static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static float ldf32(const uint8_t *p)
{
    uint32_t u = ld32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static double ldf64(const uint8_t *p)
{
    uint64_t u = ld64(p);
    double f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* ---- Value types ---- */

static bool type_is_valid(uint32_t t)
{
    return t <= GGUF_TYPE_FLOAT64;
}

static const char *type_name(uint32_t t)
{
    static const char *const names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                        "int32",  "float32", "bool",   "string", "array",
                                        "uint64", "int64",   "float64"};
    return t < SHOAL_ARRAY_LEN(names) ? names[t] : "unknown";
}

/* Bytes of a fixed-size value; 0 for strings and arrays. */
static uint64_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* ---- Diagnostics ---- */

/* A file string made printable for a message: non-printable bytes become
 * \xNN and long names are cut with "...". */
static void show(char *out, size_t cap, const char *p, uint64_t n)
{
    size_t o = 0;
    const size_t limit = 64;
    for (uint64_t i = 0; i < n && o + 8 < cap; i++) {
        if (i == limit) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

static enum shoal_err failv(struct rd *r, uint64_t off, enum shoal_err err, const char *fmt,
                            va_list ap)
{
    char msg[400];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    shoal_diag_at_offset(r->d, r->g->name, (int64_t)off);
    if (r->ctx[0])
        return shoal_diag_set(r->d, err, "%s: %s", r->ctx, msg);
    return shoal_diag_set(r->d, err, "%s", msg);
}

static enum shoal_err fail(struct rd *r, uint64_t off, enum shoal_err err, const char *fmt, ...)
    SHOAL_PRINTF(4, 5);
static enum shoal_err fail(struct rd *r, uint64_t off, enum shoal_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum shoal_err rc = failv(r, off, err, fmt, ap);
    va_end(ap);
    return rc;
}

static uint64_t left(const struct rd *r)
{
    return r->g->size - r->pos;
}

/* Fail unless n more bytes are in the file at the cursor. */
static enum shoal_err need(struct rd *r, uint64_t n, const char *field)
{
    if (n <= left(r))
        return SHOAL_OK;
    return fail(r, r->pos, SHOAL_ERR_INVALID,
                "truncated %s: needs %" PRIu64 " bytes, the file ends %" PRIu64 " bytes later",
                field, n, left(r));
}

static enum shoal_err rd_u32(struct rd *r, const char *field, uint32_t *out)
{
    enum shoal_err rc = need(r, 4, field);
    if (rc)
        return rc;
    *out = ld32(r->g->base + r->pos);
    r->pos += 4;
    return SHOAL_OK;
}

static enum shoal_err rd_u64(struct rd *r, const char *field, uint64_t *out)
{
    enum shoal_err rc = need(r, 8, field);
    if (rc)
        return rc;
    *out = ld64(r->g->base + r->pos);
    r->pos += 8;
    return SHOAL_OK;
}

/* A length-prefixed string; field names it ("key name", "tensor name"). */
static enum shoal_err rd_str(struct rd *r, const char *field, struct gguf_str *out)
{
    char what[96];
    snprintf(what, sizeof(what), "%s length", field);
    uint64_t at = r->pos, n;
    enum shoal_err rc = rd_u64(r, what, &n);
    if (rc)
        return rc;
    if (n > left(r))
        return fail(r, at, SHOAL_ERR_INVALID,
                    "%s length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes left)",
                    field, n, left(r));
    out->p = (const char *)r->g->base + r->pos;
    out->n = n;
    r->pos += n;
    return SHOAL_OK;
}

/* ---- Name index ---- */

static uint64_t hash_bytes(const char *p, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static enum shoal_err index_init(struct name_index *ix, uint64_t n)
{
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ix->slots = calloc(cap, sizeof(*ix->slots));
    if (!ix->slots)
        return SHOAL_ERR_NOMEM;
    ix->mask = cap - 1;
    return SHOAL_OK;
}

/* Insert entry i named s; returns the index of an earlier entry with the
 * same name (and inserts nothing), or UINT64_MAX. */
static uint64_t index_insert(struct name_index *ix, struct gguf_str s, uint64_t i,
                             struct gguf_str (*name_of)(const struct gguf *, uint64_t),
                             const struct gguf *g)
{
    uint64_t h = hash_bytes(s.p, s.n) & ix->mask;
    for (;; h = (h + 1) & ix->mask) {
        uint64_t v = ix->slots[h];
        if (v == 0) {
            ix->slots[h] = i + 1;
            return UINT64_MAX;
        }
        struct gguf_str o = name_of(g, v - 1);
        if (o.n == s.n && memcmp(o.p, s.p, s.n) == 0)
            return v - 1;
    }
}

static uint64_t index_find(const struct name_index *ix, const char *key,
                           struct gguf_str (*name_of)(const struct gguf *, uint64_t),
                           const struct gguf *g)
{
    if (!ix->slots)
        return UINT64_MAX;
    size_t n = strlen(key);
    uint64_t h = hash_bytes(key, n) & ix->mask;
    for (;; h = (h + 1) & ix->mask) {
        uint64_t v = ix->slots[h];
        if (v == 0)
            return UINT64_MAX;
        struct gguf_str o = name_of(g, v - 1);
        if (o.n == n && memcmp(o.p, key, n) == 0)
            return v - 1;
    }
}

static struct gguf_str kv_name(const struct gguf *g, uint64_t i)
{
    return g->kvs[i].key;
}

static struct gguf_str tensor_name(const struct gguf *g, uint64_t i)
{
    return g->tensors[i].name;
}

/* ---- Metadata ---- */

/* An array value at the cursor: element type, count, elements. kv is the
 * top-level entry to describe (NULL inside nested arrays, which are only
 * checked and skipped). Work is linear in the bytes consumed: each element
 * takes at least one byte and the depth is capped. */
static enum shoal_err parse_array(struct rd *r, unsigned depth, struct gguf_kv *kv)
{
    uint64_t at = r->pos, n;
    uint32_t et;
    enum shoal_err rc;
    if ((rc = rd_u32(r, "array element type", &et)))
        return rc;
    if (!type_is_valid(et))
        return fail(r, at, SHOAL_ERR_INVALID,
                    "array element type %" PRIu32 " is not a GGUF value type (0..12)", et);
    uint64_t n_at = r->pos;
    if ((rc = rd_u64(r, "array length", &n)))
        return rc;
    uint64_t esz = scalar_size(et);
    uint64_t min = esz ? esz : et == GGUF_TYPE_STRING ? 8 : 12;
    if (n > left(r) / min)
        return fail(r, n_at, SHOAL_ERR_INVALID,
                    "array length %" PRIu64
                    " is impossible: each %s element takes at least %" PRIu64
                    " bytes and only %" PRIu64 " bytes are left",
                    n, type_name(et), min, left(r));
    const uint8_t *data = r->g->base + r->pos;
    if (kv) {
        kv->elem_type = (enum gguf_type)et;
        kv->n = n;
        kv->data = data;
    }
    if (esz) {
        r->pos += n * esz; /* n * esz <= left: checked above */
        return SHOAL_OK;
    }
    if (et == GGUF_TYPE_STRING) {
        uint64_t *offs = NULL;
        if (kv && n > 0) {
            /* n <= left / 8, so this is at most the file's own size. */
            offs = malloc(n * sizeof(*offs));
            if (!offs)
                return fail(r, n_at, SHOAL_ERR_NOMEM, "out of memory for %" PRIu64 " strings", n);
            kv->str_offsets = offs;
        }
        for (uint64_t i = 0; i < n; i++) {
            char what[64];
            snprintf(what, sizeof(what), "string element %" PRIu64, i);
            uint64_t start = r->pos;
            struct gguf_str s;
            if ((rc = rd_str(r, what, &s)))
                return rc;
            if (offs)
                offs[i] = start - (uint64_t)(data - r->g->base);
        }
        return SHOAL_OK;
    }
    /* An array of arrays. */
    if (depth >= GGUF_CAP_ARRAY_DEPTH)
        return fail(r, at, SHOAL_ERR_INVALID, "arrays are nested more than %u levels deep",
                    GGUF_CAP_ARRAY_DEPTH);
    for (uint64_t i = 0; i < n; i++)
        if ((rc = parse_array(r, depth + 1, NULL)))
            return rc;
    return SHOAL_OK;
}

static enum shoal_err parse_kv(struct rd *r, uint64_t i)
{
    struct gguf *g = r->g;
    struct gguf_kv *kv = &g->kvs[i];
    uint64_t at = r->pos;
    enum shoal_err rc;
    char shown[272];

    snprintf(r->ctx, sizeof(r->ctx), "key %" PRIu64, i);
    if ((rc = rd_str(r, "key name", &kv->key)))
        return rc;
    show(shown, sizeof(shown), kv->key.p, kv->key.n);
    snprintf(r->ctx, sizeof(r->ctx), "key %" PRIu64 " ('%s')", i, shown);
    if (kv->key.n == 0)
        return fail(r, at, SHOAL_ERR_INVALID, "empty key name");

    uint64_t t_at = r->pos;
    uint32_t t;
    if ((rc = rd_u32(r, "value type", &t)))
        return rc;
    if (!type_is_valid(t))
        return fail(r, t_at, SHOAL_ERR_INVALID,
                    "value type %" PRIu32 " is not a GGUF value type (0..12)", t);
    kv->type = (enum gguf_type)t;
    kv->elem_type = (enum gguf_type)t;
    kv->offset = r->pos;
    kv->n = 1;
    kv->data = g->base + r->pos;

    if (t == GGUF_TYPE_ARRAY) {
        if ((rc = parse_array(r, 1, kv)))
            return rc;
    } else if (t == GGUF_TYPE_STRING) {
        struct gguf_str s;
        if ((rc = rd_str(r, "string value", &s)))
            return rc;
    } else {
        char what[48];
        snprintf(what, sizeof(what), "%s value", type_name(t));
        if ((rc = need(r, scalar_size(t), what)))
            return rc;
        if (t == GGUF_TYPE_BOOL && kv->data[0] > 1)
            return fail(r, kv->offset, SHOAL_ERR_INVALID, "bool value %u is neither 0 nor 1",
                        kv->data[0]);
        r->pos += scalar_size(t);
    }

    uint64_t prev = index_insert(&g->kv_index, kv->key, i, kv_name, g);
    if (prev != UINT64_MAX)
        return fail(r, at, SHOAL_ERR_INVALID, "duplicate key: key %" PRIu64 " has the same name",
                    prev);
    return SHOAL_OK;
}

static enum shoal_err read_alignment(struct rd *r)
{
    struct gguf *g = r->g;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *kv = gguf_find(g, "general.alignment");
    if (!kv)
        return SHOAL_OK;
    snprintf(r->ctx, sizeof(r->ctx), "general.alignment");
    if (kv->type != GGUF_TYPE_UINT32)
        return fail(r, kv->offset, SHOAL_ERR_INVALID, "must be a uint32, not %s",
                    type_name(kv->type));
    uint32_t a = ld32(kv->data);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail(r, kv->offset, SHOAL_ERR_INVALID, "%" PRIu32 " is not a nonzero power of two",
                    a);
    g->alignment = a;
    return SHOAL_OK;
}

/* ---- Tensor infos ---- */

static enum shoal_err parse_tensor(struct rd *r, uint64_t i)
{
    struct gguf *g = r->g;
    struct gguf_tensor *t = &g->tensors[i];
    uint64_t at = r->pos;
    enum shoal_err rc;
    char shown[272];

    t->info_offset = at;
    snprintf(r->ctx, sizeof(r->ctx), "tensor %" PRIu64, i);
    if ((rc = rd_str(r, "tensor name", &t->name)))
        return rc;
    show(shown, sizeof(shown), t->name.p, t->name.n);
    snprintf(r->ctx, sizeof(r->ctx), "tensor %" PRIu64 " ('%s')", i, shown);
    if (t->name.n == 0)
        return fail(r, at, SHOAL_ERR_INVALID, "empty tensor name");

    uint64_t nd_at = r->pos;
    if ((rc = rd_u32(r, "n_dims", &t->n_dims)))
        return rc;
    if (t->n_dims < 1 || t->n_dims > 4)
        return fail(r, nd_at, SHOAL_ERR_INVALID, "n_dims %" PRIu32 " is not in 1..4", t->n_dims);

    uint64_t ne_at[4];
    uint64_t nel = 1;
    for (uint32_t j = 0; j < 4; j++)
        t->ne[j] = 1;
    for (uint32_t j = 0; j < t->n_dims; j++) {
        char what[16];
        snprintf(what, sizeof(what), "ne[%" PRIu32 "]", j);
        ne_at[j] = r->pos;
        if ((rc = rd_u64(r, what, &t->ne[j])))
            return rc;
        /* Zero-sized tensors are rejected: no model needs one, and an
         * empty data range would dodge the overlap check. */
        if (t->ne[j] == 0)
            return fail(r, ne_at[j], SHOAL_ERR_INVALID, "ne[%" PRIu32 "] is 0", j);
        if (t->ne[j] > (uint64_t)INT64_MAX)
            return fail(r, ne_at[j], SHOAL_ERR_INVALID,
                        "ne[%" PRIu32 "] = %" PRIu64 " is larger than 2^63-1", j, t->ne[j]);
        if (nel > (uint64_t)INT64_MAX / t->ne[j])
            return fail(r, ne_at[j], SHOAL_ERR_INVALID,
                        "element count overflows: ne[0..%" PRIu32 "] multiply past 2^63-1", j);
        nel *= t->ne[j];
    }

    uint64_t type_at = r->pos;
    uint32_t type;
    if ((rc = rd_u32(r, "type", &type)))
        return rc;
    uint32_t blk, bytes;
    if (!engine_type_layout((enum engine_type)type, &blk, &bytes)) {
        static const struct {
            uint32_t id;
            const char *name;
        } removed[] = {{4, "Q4_2"},        {5, "Q4_3"},        {31, "Q4_0_4_4"},
                       {32, "Q4_0_4_8"},   {33, "Q4_0_8_8"},   {36, "IQ4_NL_4_4"},
                       {37, "IQ4_NL_4_8"}, {38, "IQ4_NL_8_8"}, {39, "MXFP4"}};
        for (size_t k = 0; k < SHOAL_ARRAY_LEN(removed); k++)
            if (removed[k].id == type)
                return fail(r, type_at, SHOAL_ERR_UNSUPPORTED,
                            "type %" PRIu32 " (%s) is not supported; convert the model to another "
                            "type",
                            type, removed[k].name);
        return fail(r, type_at, SHOAL_ERR_INVALID, "type %" PRIu32 " is not a known tensor type",
                    type);
    }
    t->type = (enum engine_type)type;
    if (t->ne[0] % blk != 0)
        return fail(r, ne_at[0], SHOAL_ERR_INVALID,
                    "ne[0] = %" PRIu64 " is not a multiple of %s's block size %" PRIu32, t->ne[0],
                    engine_type_name(t->type), blk);
    uint64_t blocks = nel / blk;
    if (blocks > UINT64_MAX / bytes || blocks * bytes > g->size)
        return fail(r, ne_at[0], SHOAL_ERR_INVALID,
                    "%" PRIu64 " elements of %s take more bytes than the whole file (%" PRIu64 ")",
                    nel, engine_type_name(t->type), g->size);
    t->size = blocks * bytes;

    uint64_t off_at = r->pos;
    if ((rc = rd_u64(r, "data offset", &t->offset)))
        return rc;
    if (t->offset % g->alignment != 0)
        return fail(r, off_at, SHOAL_ERR_INVALID,
                    "data offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                    t->offset, g->alignment);

    uint64_t prev = index_insert(&g->tensor_index, t->name, i, tensor_name, g);
    if (prev != UINT64_MAX)
        return fail(r, at, SHOAL_ERR_INVALID,
                    "duplicate tensor name: tensor %" PRIu64 " has the same name", prev);
    return SHOAL_OK;
}

/* Byte offset of a tensor info's data-offset field, recomputed from what
 * was parsed (used by the checks that run after all infos are read). */
static uint64_t offset_field_at(const struct gguf_tensor *t)
{
    return t->info_offset + 8 + t->name.n + 4 + 8 * (uint64_t)t->n_dims + 4;
}

struct span {
    uint64_t start, end, idx;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Every tensor's data inside the file, no two overlapping. */
static enum shoal_err check_tensor_data(struct rd *r)
{
    struct gguf *g = r->g;
    char shown[272], other[272];
    uint64_t room = g->data_offset <= g->size ? g->size - g->data_offset : 0;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        if (t->offset > room || t->size > room - t->offset) {
            show(shown, sizeof(shown), t->name.p, t->name.n);
            snprintf(r->ctx, sizeof(r->ctx), "tensor %" PRIu64 " ('%s')", i, shown);
            uint64_t start =
                t->offset > UINT64_MAX - g->data_offset ? UINT64_MAX : g->data_offset + t->offset;
            uint64_t end = t->size > UINT64_MAX - start ? UINT64_MAX : start + t->size;
            return fail(r, offset_field_at(t), SHOAL_ERR_INVALID,
                        "data [%" PRIu64 ", %" PRIu64 ") runs past the end of the file (%" PRIu64
                        " bytes)",
                        start, end, g->size);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    if (g->n_tensors < 2)
        return SHOAL_OK;

    struct span *sp = malloc(g->n_tensors * sizeof(*sp));
    if (!sp)
        return fail(r, 0, SHOAL_ERR_NOMEM, "out of memory checking %" PRIu64 " tensors",
                    g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        sp[i] = (struct span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].size, i};
    qsort(sp, g->n_tensors, sizeof(*sp), span_cmp);
    enum shoal_err rc = SHOAL_OK;
    for (uint64_t k = 1; k < g->n_tensors; k++) {
        if (sp[k].start >= sp[k - 1].end)
            continue;
        const struct gguf_tensor *t = &g->tensors[sp[k].idx], *o = &g->tensors[sp[k - 1].idx];
        show(shown, sizeof(shown), t->name.p, t->name.n);
        show(other, sizeof(other), o->name.p, o->name.n);
        snprintf(r->ctx, sizeof(r->ctx), "tensor %" PRIu64 " ('%s')", sp[k].idx, shown);
        rc = fail(r, offset_field_at(t), SHOAL_ERR_INVALID,
                  "data [%" PRIu64 ", %" PRIu64 ") overlaps tensor %" PRIu64 " ('%s') at [%" PRIu64
                  ", %" PRIu64 ")",
                  g->data_offset + sp[k].start, g->data_offset + sp[k].end, sp[k - 1].idx, other,
                  g->data_offset + sp[k - 1].start, g->data_offset + sp[k - 1].end);
        break;
    }
    free(sp);
    return rc;
}

/* ---- Whole file ---- */

static enum shoal_err parse(struct gguf *g, struct shoal_diag *d)
{
    struct rd r = {.g = g, .pos = 0, .d = d, .ctx = "header"};
    enum shoal_err rc;

    if (g->size >= 4 && ld32(g->base) != GGUF_MAGIC) {
        char shown[40];
        show(shown, sizeof(shown), (const char *)g->base, 4);
        return fail(&r, 0, SHOAL_ERR_INVALID, "not a GGUF file: magic is '%s', expected 'GGUF'",
                    shown);
    }
    /* Too short for the fixed header: point at the first missing field. */
    if (g->size < GGUF_HEADER_BYTES &&
        (g->size < 8 || ld32(g->base + 4) == 2 || ld32(g->base + 4) == 3))
        return fail(&r,
                    g->size < 4    ? 0
                    : g->size < 8  ? 4
                    : g->size < 16 ? 8
                                   : 16,
                    SHOAL_ERR_INVALID,
                    "truncated header: the file has %" PRIu64 " bytes, a GGUF header needs %u",
                    g->size, GGUF_HEADER_BYTES);
    r.pos = 4;
    uint32_t v = ld32(g->base + 4);
    if (v == 1)
        return fail(&r, 4, SHOAL_ERR_UNSUPPORTED,
                    "GGUF version 1 is not supported (only 2 and 3); convert the model again "
                    "with a current llama.cpp");
    if (v != 0 && (v & 0xffffu) == 0 && __builtin_bswap32(v) <= 3)
        return fail(&r, 4, SHOAL_ERR_UNSUPPORTED,
                    "big-endian GGUF (version %" PRIu32
                    " byte-swapped) is not supported; use a little-endian file",
                    __builtin_bswap32(v));
    if (v != 2 && v != 3)
        return fail(&r, 4, v > 3 ? SHOAL_ERR_UNSUPPORTED : SHOAL_ERR_INVALID,
                    "GGUF version %" PRIu32 " is not supported (only 2 and 3)", v);
    g->version = v;
    uint64_t n_tensors = ld64(g->base + 8), n_kv = ld64(g->base + 16);
    r.pos = GGUF_HEADER_BYTES;
    /* Counts against what the file can hold, before anything is allocated
     * for them. The tensor count is checked again, against what is left,
     * once the metadata has been read: a file cut short in its metadata
     * then reports the field where it ends. */
    if (n_kv > left(&r) / GGUF_MIN_KV_BYTES)
        return fail(&r, 16, SHOAL_ERR_INVALID,
                    "key/value count %" PRIu64 " is impossible: each takes at least %u bytes and "
                    "the file has %" PRIu64 " bytes after the header",
                    n_kv, GGUF_MIN_KV_BYTES, left(&r));
    if (n_tensors > left(&r) / GGUF_MIN_TENSOR_BYTES)
        return fail(&r, 8, SHOAL_ERR_INVALID,
                    "tensor count %" PRIu64 " is impossible: each takes at least %u bytes and the "
                    "file has %" PRIu64 " bytes after the header",
                    n_tensors, GGUF_MIN_TENSOR_BYTES, left(&r));
    if (n_kv > GGUF_CAP_KV)
        return fail(&r, 16, SHOAL_ERR_TOO_BIG,
                    "key/value count %" PRIu64 " is more than this reader accepts (%u)", n_kv,
                    GGUF_CAP_KV);
    if (n_tensors > GGUF_CAP_TENSORS)
        return fail(&r, 8, SHOAL_ERR_TOO_BIG,
                    "tensor count %" PRIu64 " is more than this reader accepts (%u)", n_tensors,
                    GGUF_CAP_TENSORS);

    if (n_kv > 0 && !(g->kvs = calloc(n_kv, sizeof(*g->kvs))))
        return fail(&r, 16, SHOAL_ERR_NOMEM, "out of memory for %" PRIu64 " keys", n_kv);
    if (index_init(&g->kv_index, n_kv))
        return fail(&r, 16, SHOAL_ERR_NOMEM, "out of memory for the key index");

    /* n_kv counts entries as they parse, so gguf_close frees exactly the
     * string offsets that were allocated. */
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1;
        if ((rc = parse_kv(&r, i)))
            return rc;
    }
    if ((rc = read_alignment(&r)))
        return rc;
    r.ctx[0] = '\0';
    if (n_tensors > left(&r) / GGUF_MIN_TENSOR_BYTES)
        return fail(&r, r.pos, SHOAL_ERR_INVALID,
                    "truncated tensor infos: %" PRIu64 " tensors need at least %" PRIu64
                    " bytes, the file ends %" PRIu64 " bytes later",
                    n_tensors, n_tensors * GGUF_MIN_TENSOR_BYTES, left(&r));
    if (n_tensors > 0 && !(g->tensors = calloc(n_tensors, sizeof(*g->tensors))))
        return fail(&r, 8, SHOAL_ERR_NOMEM, "out of memory for %" PRIu64 " tensors", n_tensors);
    if (index_init(&g->tensor_index, n_tensors))
        return fail(&r, 8, SHOAL_ERR_NOMEM, "out of memory for the tensor index");
    for (uint64_t i = 0; i < n_tensors; i++) {
        g->n_tensors = i + 1;
        if ((rc = parse_tensor(&r, i)))
            return rc;
    }
    /* pos <= size, so this cannot overflow for any 32-bit alignment. */
    g->data_offset = (r.pos + g->alignment - 1) / g->alignment * g->alignment;
    return check_tensor_data(&r);
}

static enum shoal_err make(const char *name, struct gguf **out)
{
    struct gguf *g = calloc(1, sizeof(*g));
    if (!g)
        return SHOAL_ERR_NOMEM;
    g->name = strdup(name ? name : "");
    if (!g->name) {
        free(g);
        return SHOAL_ERR_NOMEM;
    }
    *out = g;
    return SHOAL_OK;
}

static enum shoal_err finish(struct gguf *g, struct gguf **out, struct shoal_diag *d)
{
    enum shoal_err rc = parse(g, d);
    if (rc) {
        gguf_close(g);
        return rc;
    }
    *out = g;
    return SHOAL_OK;
}

enum shoal_err gguf_open_memory(const void *data, size_t n, const char *name, struct gguf **out,
                                struct shoal_diag *d)
{
    struct gguf *g;
    shoal_diag_clear(d);
    if (make(name, &g))
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    static const uint8_t none[1];
    g->base = data ? data : none;
    g->size = n;
    return finish(g, out, d);
}

enum shoal_err gguf_open(const char *path, struct gguf **out, struct shoal_diag *d)
{
    struct gguf *g;
    shoal_diag_clear(d);
    if (make(path, &g))
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        gguf_close(g);
        shoal_diag_at_offset(d, path, -1);
        return shoal_diag_set(d, SHOAL_ERR_IO, "cannot open: %s", strerror(e));
    }
    struct stat st;
    enum shoal_err rc = SHOAL_OK;
    if (fstat(fd, &st) != 0) {
        rc = shoal_diag_set(d, SHOAL_ERR_IO, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = shoal_diag_set(d, SHOAL_ERR_IO, "not a regular file");
    } else if ((uint64_t)st.st_size > SIZE_MAX) {
        rc = shoal_diag_set(d, SHOAL_ERR_TOO_BIG, "the file is too big to map on this system");
    } else if (st.st_size > 0) {
        g->map_len = (size_t)st.st_size;
        g->map = mmap(NULL, g->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (g->map == MAP_FAILED) {
            g->map = NULL;
            rc = shoal_diag_set(d, SHOAL_ERR_IO, "cannot map: %s", strerror(errno));
        } else {
            g->base = g->map;
            g->size = (uint64_t)st.st_size;
        }
    }
    close(fd);
    if (rc) {
        shoal_diag_at_offset(d, path, -1);
        gguf_close(g);
        return rc;
    }
    if (!g->map) {
        static const uint8_t none[1];
        g->base = none; /* an empty file: parse reports the truncated header */
    }
    return finish(g, out, d);
}

void gguf_close(struct gguf *g)
{
    if (!g)
        return;
    for (uint64_t i = 0; i < g->n_kv; i++)
        free((void *)g->kvs[i].str_offsets);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    if (g->map)
        munmap(g->map, g->map_len);
    free(g->name);
    free(g);
}

/* ---- Accessors ---- */

uint32_t gguf_version(const struct gguf *g)
{
    return g->version;
}

uint64_t gguf_file_size(const struct gguf *g)
{
    return g->size;
}

uint32_t gguf_alignment(const struct gguf *g)
{
    return g->alignment;
}

uint64_t gguf_data_offset(const struct gguf *g)
{
    return g->data_offset;
}

uint64_t gguf_n_kv(const struct gguf *g)
{
    return g->n_kv;
}

const struct gguf_kv *gguf_kv_at(const struct gguf *g, uint64_t i)
{
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key)
{
    uint64_t i = index_find(&g->kv_index, key, kv_name, g);
    return i == UINT64_MAX ? NULL : &g->kvs[i];
}

uint64_t gguf_n_tensors(const struct gguf *g)
{
    return g->n_tensors;
}

const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, uint64_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
    uint64_t i = index_find(&g->tensor_index, name, tensor_name, g);
    return i == UINT64_MAX ? NULL : &g->tensors[i];
}

bool gguf_str_eq(struct gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.n == n && memcmp(s.p, c, n) == 0;
}

/* ---- Typed getters ---- */

static enum shoal_err get_fail(const struct gguf *g, const struct gguf_kv *kv, const char *key,
                               struct shoal_diag *d, const char *fmt, ...) SHOAL_PRINTF(5, 6);
static enum shoal_err get_fail(const struct gguf *g, const struct gguf_kv *kv, const char *key,
                               struct shoal_diag *d, const char *fmt, ...)
{
    va_list ap;
    shoal_diag_at_offset(d, g->name, (int64_t)kv->offset);
    shoal_diag_path(d, key);
    va_start(ap, fmt);
    shoal_diag_setv(d, SHOAL_ERR_INVALID, fmt, ap);
    va_end(ap);
    return SHOAL_ERR_INVALID;
}

/* An integer scalar as sign + magnitude; false for other types. */
static bool kv_int(const struct gguf_kv *kv, bool *neg, uint64_t *mag)
{
    int64_t s;
    const uint8_t *p = kv->data;
    *neg = false;
    switch (kv->type) {
    case GGUF_TYPE_UINT8:
        *mag = p[0];
        return true;
    case GGUF_TYPE_UINT16:
        *mag = ld16(p);
        return true;
    case GGUF_TYPE_UINT32:
        *mag = ld32(p);
        return true;
    case GGUF_TYPE_UINT64:
        *mag = ld64(p);
        return true;
    case GGUF_TYPE_INT8:
        s = (int8_t)p[0];
        break;
    case GGUF_TYPE_INT16:
        s = (int16_t)ld16(p);
        break;
    case GGUF_TYPE_INT32:
        s = (int32_t)ld32(p);
        break;
    case GGUF_TYPE_INT64:
        s = (int64_t)ld64(p);
        break;
    default:
        return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

static enum shoal_err get_int(const struct gguf *g, const char *key, bool want_signed, uint64_t max,
                              int64_t *out, struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return SHOAL_ERR_NOT_FOUND;
    bool neg;
    uint64_t mag;
    if (!kv_int(kv, &neg, &mag))
        return get_fail(g, kv, key, d, "expected an integer, got %s", type_name(kv->type));
    /* Signed results are bounded by max on both sides (max + 1 below). */
    if (neg ? !want_signed || mag > max + 1 : mag > max)
        return get_fail(g, kv, key, d, "value %s%" PRIu64 " is out of range for %s", neg ? "-" : "",
                        mag, want_signed ? "an int32" : "a uint32");
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return SHOAL_OK;
}

enum shoal_err gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out,
                            struct shoal_diag *d)
{
    int64_t v = 0;
    enum shoal_err rc = get_int(g, key, false, UINT32_MAX, &v, d);
    if (rc == SHOAL_OK)
        *out = (uint32_t)v;
    return rc;
}

enum shoal_err gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out,
                            struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return SHOAL_ERR_NOT_FOUND;
    bool neg;
    uint64_t mag;
    if (!kv_int(kv, &neg, &mag))
        return get_fail(g, kv, key, d, "expected an integer, got %s", type_name(kv->type));
    if (neg)
        return get_fail(g, kv, key, d, "value -%" PRIu64 " is out of range for a uint64", mag);
    *out = mag;
    return SHOAL_OK;
}

enum shoal_err gguf_get_i32(const struct gguf *g, const char *key, int32_t *out,
                            struct shoal_diag *d)
{
    int64_t v = 0;
    enum shoal_err rc = get_int(g, key, true, INT32_MAX, &v, d);
    if (rc == SHOAL_OK)
        *out = (int32_t)v;
    return rc;
}

enum shoal_err gguf_get_f32(const struct gguf *g, const char *key, float *out, struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return SHOAL_ERR_NOT_FOUND;
    double v;
    bool neg;
    uint64_t mag;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        *out = ldf32(kv->data);
        return SHOAL_OK;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        v = ldf64(kv->data);
        /* NaN and infinities pass through; finite values must fit. */
        if (isfinite(v) && fabs(v) > FLT_MAX)
            return get_fail(g, kv, key, d, "value %g does not fit in a float32", v);
    } else if (kv_int(kv, &neg, &mag)) {
        v = neg ? -(double)mag : (double)mag; /* every integer fits a float32's range */
    } else {
        return get_fail(g, kv, key, d, "expected a number, got %s", type_name(kv->type));
    }
    *out = (float)v;
    return SHOAL_OK;
}

enum shoal_err gguf_get_bool(const struct gguf *g, const char *key, bool *out, struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return SHOAL_ERR_NOT_FOUND;
    if (kv->type != GGUF_TYPE_BOOL)
        return get_fail(g, kv, key, d, "expected a bool, got %s", type_name(kv->type));
    *out = kv->data[0] != 0;
    return SHOAL_OK;
}

enum shoal_err gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out,
                            struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return SHOAL_ERR_NOT_FOUND;
    if (kv->type != GGUF_TYPE_STRING)
        return get_fail(g, kv, key, d, "expected a string, got %s", type_name(kv->type));
    out->n = ld64(kv->data);
    out->p = (const char *)kv->data + 8;
    return SHOAL_OK;
}

enum shoal_err gguf_get_arr(const struct gguf *g, const char *key, enum gguf_type elem,
                            const struct gguf_kv **out, struct shoal_diag *d)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv)
        return SHOAL_ERR_NOT_FOUND;
    if (kv->type != GGUF_TYPE_ARRAY)
        return get_fail(g, kv, key, d, "expected an array of %s, got %s", type_name(elem),
                        type_name(kv->type));
    if (kv->elem_type != elem)
        return get_fail(g, kv, key, d, "expected an array of %s, got an array of %s",
                        type_name(elem), type_name(kv->elem_type));
    *out = kv;
    return SHOAL_OK;
}

struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i)
{
    const uint8_t *p = kv->data + kv->str_offsets[i];
    return (struct gguf_str){(const char *)p + 8, ld64(p)};
}

float gguf_arr_f32(const struct gguf_kv *kv, uint64_t i)
{
    return ldf32(kv->data + 4 * i);
}

int32_t gguf_arr_i32(const struct gguf_kv *kv, uint64_t i)
{
    return (int32_t)ld32(kv->data + 4 * i);
}

uint32_t gguf_arr_u32(const struct gguf_kv *kv, uint64_t i)
{
    return ld32(kv->data + 4 * i);
}
