/* gguf.h: the GGUF file reader (engine internal). A file is treated as
 * hostile: every count, length, offset and size is checked against the
 * file's size and against overflow before use, and parsing allocates at
 * most a small multiple of what the file itself justifies. After a
 * successful open everything returned here is a view into the read-only
 * mapping, valid until gguf_close. Any thread; a struct gguf is immutable
 * after open, so it may be shared between threads. */
#ifndef SHOAL_ENGINE_GGUF_H
#define SHOAL_ENGINE_GGUF_H

#include "common.h"
#include "engine.h"

#include <stdbool.h>
#include <stdint.h>

/* Caps on what a file may declare, beyond the checks against its size.
 * Real models have a few dozen keys and at most a few thousand tensors;
 * these keep a hostile header from making the reader allocate much more
 * than the file itself justifies. */
#define GGUF_CAP_KV          65536u   /* key/value pairs */
#define GGUF_CAP_TENSORS     1048576u /* tensor infos */
#define GGUF_CAP_ARRAY_DEPTH 8u       /* arrays of arrays of ... */

/* Metadata value types, as numbered in the GGUF format. */
enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
};

/* A string inside the file: not NUL-terminated. */
struct gguf_str {
    const char *p;
    uint64_t n;
};

/* One metadata key/value. For arrays, type is GGUF_TYPE_ARRAY, elem_type
 * the element type and n the element count; data points at the first
 * element's bytes in the mapping (little-endian, possibly unaligned: read
 * through the accessors below). For scalars n is 1 and data points at the
 * value. A string (scalar or element) is stored as its u64 length followed
 * by its bytes; data / str_offsets point at the length. Arrays of arrays
 * are checked and skipped: n and data describe them, nothing reads into
 * them. */
struct gguf_kv {
    struct gguf_str key;
    enum gguf_type type;
    enum gguf_type elem_type;
    uint64_t n;
    const uint8_t *data;
    uint64_t offset; /* byte offset of the value in the file, for diagnostics */
    const uint64_t *str_offsets; /* arrays of strings: offset of element i from data */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];  /* elements per dimension; unused dimensions are 1 */
    enum engine_type type;
    uint64_t offset; /* from the start of the tensor data section */
    uint64_t size;   /* bytes */
    const void *data;
    uint64_t info_offset; /* byte offset of this tensor's info record, for diagnostics */
};

struct gguf;

/* What a file must satisfy, all checked before it is returned: magic
 * "GGUF"; version 2 or 3 (1, later ones and big-endian files are
 * UNSUPPORTED); counts possible for the file's size and within the caps
 * above; every string inside the file; value types 0..12; arrays nested at
 * most GGUF_CAP_ARRAY_DEPTH deep; bools 0 or 1; keys and tensor names
 * non-empty and unique; general.alignment, when present, a uint32 power of
 * two; n_dims 1..4; each ne in 1..2^63-1 (zero-sized tensors are refused)
 * and their product too; a known tensor type; ne[0] a multiple of its
 * block size; data offsets multiples of the alignment; every tensor's data
 * inside the file and overlapping no other (any order, gaps allowed). */

/* Map and parse path (read-only, MAP_PRIVATE; only the header, metadata
 * and tensor infos are read, never the tensor data). INVALID / TOO_BIG /
 * UNSUPPORTED / IO with d naming the field and its byte offset ("tensor
 * 'blk.0.attn_q.weight': data [x, y) runs past the end of the file (z
 * bytes)"). */
enum shoal_err gguf_open(const char *path, struct gguf **out, struct shoal_diag *d);
/* Parse n bytes in memory (fuzzing, tests); data must outlive the result. */
enum shoal_err gguf_open_memory(const void *data, size_t n, const char *name, struct gguf **out,
                                struct shoal_diag *d);
void gguf_close(struct gguf *g);

uint32_t gguf_version(const struct gguf *g);
uint64_t gguf_file_size(const struct gguf *g);
uint32_t gguf_alignment(const struct gguf *g);
/* Byte offset of the tensor data section (aligned end of the tensor infos). */
uint64_t gguf_data_offset(const struct gguf *g);

uint64_t gguf_n_kv(const struct gguf *g);
const struct gguf_kv *gguf_kv_at(const struct gguf *g, uint64_t i);
/* The entry whose key equals key, or NULL. */
const struct gguf_kv *gguf_find(const struct gguf *g, const char *key);

/* Typed getters. NOT_FOUND when the key is absent (out untouched), INVALID
 * when it has another type or does not fit (d names the key). Integer
 * getters accept any integer type whose value fits. */
enum shoal_err gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out,
                            struct shoal_diag *d);
enum shoal_err gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out,
                            struct shoal_diag *d);
enum shoal_err gguf_get_i32(const struct gguf *g, const char *key, int32_t *out,
                            struct shoal_diag *d);
enum shoal_err gguf_get_f32(const struct gguf *g, const char *key, float *out,
                            struct shoal_diag *d);
enum shoal_err gguf_get_bool(const struct gguf *g, const char *key, bool *out,
                             struct shoal_diag *d);
enum shoal_err gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out,
                            struct shoal_diag *d);
/* An array whose elements have type elem (INVALID otherwise). */
enum shoal_err gguf_get_arr(const struct gguf *g, const char *key, enum gguf_type elem,
                            const struct gguf_kv **out, struct shoal_diag *d);

/* Element i (< kv->n) of an array of the matching type. */
struct gguf_str gguf_arr_str(const struct gguf_kv *kv, uint64_t i);
float gguf_arr_f32(const struct gguf_kv *kv, uint64_t i);
int32_t gguf_arr_i32(const struct gguf_kv *kv, uint64_t i);
uint32_t gguf_arr_u32(const struct gguf_kv *kv, uint64_t i);

uint64_t gguf_n_tensors(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, uint64_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* Compare a file string with a C string. */
bool gguf_str_eq(struct gguf_str s, const char *c);

#endif
