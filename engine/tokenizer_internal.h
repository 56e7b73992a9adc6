/* tokenizer_internal.h: declarations shared by the vocabulary and tokenizer
 * files (vocab.c, tokenize.c, tok_spm.c, tok_bpe.c, tok_wpm.c, pretok.c,
 * detok.c, unicode.c). A struct engine_vocab is immutable after
 * vocab_build and may be read from any thread; everything a call needs to
 * write lives in that call's own scratch, never in the vocabulary. */
#ifndef SHOAL_ENGINE_TOKENIZER_INTERNAL_H
#define SHOAL_ENGINE_TOKENIZER_INTERNAL_H

#include "engine_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- Caps ---- */

#define VOCAB_MAX_TOKENS     (1u << 24) /* tokens in one vocabulary */
#define VOCAB_MAX_TOKEN_LEN  4096u      /* bytes in one token's text */
#define VOCAB_MAX_TEXT_BYTES (64u * 1024u * 1024u) /* all token texts together */

/* ---- Token types (tokenizer.ggml.token_type) and attributes ---- */

enum vocab_token_type {
    VOCAB_TYPE_UNDEFINED = 0,
    VOCAB_TYPE_NORMAL = 1,
    VOCAB_TYPE_UNKNOWN = 2,
    VOCAB_TYPE_CONTROL = 3,
    VOCAB_TYPE_USER_DEFINED = 4,
    VOCAB_TYPE_UNUSED = 5,
    VOCAB_TYPE_BYTE = 6,
};

/* Per-token attribute bits, as llama.cpp derives them from the types plus
 * a few by-name rules (EOG texts become CONTROL; phi-3's specials strip
 * whitespace on their right). */
enum {
    TOK_NORMAL = 1u << 0,
    TOK_UNKNOWN = 1u << 1,
    TOK_CONTROL = 1u << 2,
    TOK_USER_DEFINED = 1u << 3,
    TOK_UNUSED = 1u << 4,
    TOK_BYTE = 1u << 5,
    TOK_LSTRIP = 1u << 6, /* when split out as special: eat whitespace before */
    TOK_RSTRIP = 1u << 7, /* ... and after */
};
/* Tokens that are matched in raw text before tokenization (the "special
 * tokens cache"); CONTROL and UNKNOWN only when parse_special is set. */
#define TOK_SPECIAL_ANY (TOK_CONTROL | TOK_USER_DEFINED | TOK_UNKNOWN)
/* Tokens detokenized only when specials are asked for. */
#define TOK_HIDDEN (TOK_CONTROL | TOK_UNKNOWN)
/* Split out even without parse_special: user-defined and nothing hidden
 * (a user-defined EOG text made CONTROL waits for parse_special). */
static inline bool tok_always_special(uint8_t attr)
{
    return (attr & TOK_USER_DEFINED) && !(attr & TOK_HIDDEN);
}

/* ---- What vocab_build consumes: borrowed views, filled from GGUF by
 * vocab_load or by hand in tests and fuzz targets. ---- */

struct vocab_str {
    const char *p;
    size_t n;
};

#define VOCAB_ID_UNSET (-2) /* "the file does not say": use the kind's default */

struct vocab_spec {
    enum engine_vocab_kind kind;
    const char *pre;          /* tokenizer.ggml.pre; NULL when absent */
    const char *model_name;   /* general.name (lower-cased match rules); may be NULL */
    uint32_t n_tokens;
    const struct vocab_str *tokens;
    const float *scores;      /* NULL: all 0 */
    const int32_t *types;     /* NULL: all NORMAL */
    uint32_t n_merges;
    const struct vocab_str *merges; /* "left right", BPE only */
    int32_t bos, eos, unk, sep, pad; /* VOCAB_ID_UNSET, -1 (none) or an id (checked) */
    int add_bos, add_eos, add_sep, add_space_prefix; /* -1 unset, else 0/1 */
};

/* Check spec and build an immutable vocabulary. INVALID (d names the key,
 * e.g. "tokenizer.ggml.merges[12]") for inconsistent input, UNSUPPORTED for
 * an unknown pre-tokenizer, NOMEM. Copies everything it keeps. */
enum shoal_err vocab_build(const struct vocab_spec *spec, struct engine_vocab **out,
                           struct shoal_diag *d);

/* ---- The vocabulary ---- */

/* Token text -> id: open addressing over (hash32 << 32 | id + 1). */
struct tok_map {
    uint64_t *slots;
    uint32_t mask;
};

/* (left id, right id) -> merge rank and result id. */
struct merge_slot {
    uint64_t key; /* left << 32 | right; UINT64_MAX when empty */
    int32_t rank;
    int32_t id;
};
struct merge_map {
    struct merge_slot *slots;
    uint32_t mask;
};

/* A trie over the special tokens' texts, for splitting them out of raw
 * text. Node 0 is the root; children are a sibling list except at the root,
 * which has a direct table. */
struct special_node {
    uint32_t first_child; /* 0: none (the root is never a child) */
    uint32_t next_sibling;
    int32_t token;        /* -1 when no special ends here */
    uint8_t byte;
};
struct special_trie {
    struct special_node *nodes;
    uint32_t n_nodes;
    uint32_t root[256];              /* child node of the root per byte, 0 none */
    uint8_t first_all[32];           /* bitmap: first bytes of any special */
    uint8_t first_user[32];          /* ... of those split without parse_special */
    bool any_user;                   /* some USER_DEFINED special exists */
};

struct pretok; /* pretok.c: compiled pre-tokenizer regexes */

struct engine_vocab {
    enum engine_vocab_kind kind;
    char pre[64];
    uint32_t n;

    char *text;          /* all token texts, each NUL-terminated */
    uint32_t *text_off;  /* n + 1 entries; text i is [off[i], off[i+1] - 1) */
    float *scores;
    uint8_t *attr;
    char *piece;         /* decoded bytes of each token (what detokenize emits) */
    uint32_t *piece_off; /* n + 1 entries */

    struct tok_map map;
    struct merge_map merges; /* BPE: the file's merges; SPM: every split of
                              * a token into two tokens (rank unused) */
    int32_t char_tok[256];   /* SPM: the token whose text is this one byte */
    uint32_t n_merges;
    struct special_trie specials;
    struct pretok *pretok; /* BPE only */

    int32_t byte_tok[256]; /* SPM: <0xNN> fallback; BPE: the byte's symbol */
    int32_t bos, eos, unk, sep, pad;
    bool add_bos, add_eos, add_sep, add_space_prefix;
    bool ignore_merges;    /* BPE: a word that is a token is taken whole */
    bool spm_split;        /* SPM: safe to merge word by word (no token has
                            * "x▁" inside), which bounds scratch memory */
    bool wpm_lowercase, wpm_strip_accents;
    uint32_t max_token_len;
};

/* The byte hash of token texts and words: a multiply-xorshift over 8-byte
 * words (tokens are short, and this runs on every lookup). */
static inline uint64_t tok_hash(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ (k * 0xC4CEB9FE1A85EC53ull)) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h = (h ^ (k * 0xC4CEB9FE1A85EC53ull)) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
    return h;
}

static inline const char *vocab_tok_text(const struct engine_vocab *v, int32_t id, size_t *n)
{
    *n = v->text_off[id + 1] - v->text_off[id] - 1;
    return v->text + v->text_off[id];
}

/* Look a text up; -1 when it is no token. */
int32_t vocab_find(const struct engine_vocab *v, const char *s, size_t n);
/* Merge rank of (left, right) and its result; false when none. Inline:
 * it is the innermost call of BPE. */
static inline uint32_t merge_hash(uint64_t key, uint32_t mask)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static inline bool vocab_merge_find(const struct engine_vocab *v, int32_t left, int32_t right,
                                    int32_t *rank, int32_t *result)
{
    if (left < 0 || right < 0)
        return false;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    for (uint32_t i = merge_hash(key, v->merges.mask);; i = (i + 1) & v->merges.mask) {
        const struct merge_slot *s = &v->merges.slots[i];
        if (s->key == key) {
            *rank = s->rank;
            *result = s->id;
            return true;
        }
        if (s->key == UINT64_MAX)
            return false;
    }
}

/* ---- Per-call scratch and output ---- */

/* Growable arrays a call owns; freed by tok_scratch_fini. */
struct tok_scratch {
    void *sym;  size_t sym_cap;   /* symbols of the word being merged */
    void *heap; size_t heap_cap;  /* merge queue */
    char *buf;  size_t buf_cap;   /* escaped / normalised text */
    void *span; size_t span_cap;  /* pre-tokenizer word spans */
    void *span2; size_t span2_cap;
    struct wcache_slot *cache; size_t cache_cap; /* word -> tokens (wcache_*) */
    size_t cache_used, cache_n_ids;
    int32_t *cache_ids; size_t cache_ids_cap;
};
void tok_scratch_fini(struct tok_scratch *s);
/* Make *p hold at least need elements of size elem (geometric growth). */
enum shoal_err tok_grow_slow(void **p, size_t *cap, size_t need, size_t elem);
static inline enum shoal_err tok_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    return need <= *cap ? SHOAL_OK : tok_grow_slow(p, cap, need, elem);
}

/* A word cache for one piece of text: words repeat (the, {, return), so a
 * word's tokens are remembered by its bytes, which stay at base + off for
 * the cache's life. Only words up to WCACHE_MAX_WORD bytes are kept. */
#define WCACHE_MAX_WORD 64u
struct wcache_slot {
    uint32_t off, len; /* len 0: empty */
    uint32_t ids, n_ids;
};
/* Empty the cache, sized for about n words. */
enum shoal_err wcache_reset(struct tok_scratch *s, size_t n);
/* The slot of base[off..off+len): a hit when ->len is set, else where to
 * put it; NULL when the word is too long or the cache is full. */
struct wcache_slot *wcache_find(struct tok_scratch *s, const char *base, uint32_t off,
                                uint32_t len);
enum shoal_err wcache_emit(const struct tok_scratch *s, const struct wcache_slot *slot,
                           struct engine_tokens *out);
/* Remember ids (best effort: nothing happens when out of memory). */
void wcache_put(struct tok_scratch *s, struct wcache_slot *slot, uint32_t off, uint32_t len,
                const int32_t *ids, size_t n);

/* Append one id, honouring out->max. */
enum shoal_err tok_push(struct engine_tokens *out, int32_t id);

/* The tokenizers proper: encode one raw-text fragment (no special tokens
 * inside), appending to out. */
enum shoal_err spm_encode(const struct engine_vocab *v, const char *text, size_t n,
                          bool space_prefix, struct tok_scratch *s, struct engine_tokens *out);
enum shoal_err bpe_encode(const struct engine_vocab *v, const char *text, size_t n,
                          struct tok_scratch *s, struct engine_tokens *out);
enum shoal_err wpm_encode(const struct engine_vocab *v, const char *text, size_t n,
                          struct tok_scratch *s, struct engine_tokens *out);
/* BPE merges over one word of raw bytes, each byte its own first symbol. */
enum shoal_err bpe_merge_word(const struct engine_vocab *v, const unsigned char *w, size_t n,
                              struct tok_scratch *s, struct engine_tokens *out);

/* ---- Pre-tokenizers (pretok.c) ---- */

/* Per-name behaviour besides the regexes. */
struct pretok_info {
    bool known;
    bool ignore_merges;
    int add_bos;     /* -1: kind default; 0/1: the family's default */
    bool no_bos;     /* the family has no BOS (chatglm) */
};
/* Compile the regexes of pre-tokenizer name (once per vocabulary, JIT when
 * available). UNSUPPORTED with d naming tokenizer.ggml.pre when the name is
 * unknown; INTERNAL if a built-in regex fails to compile. */
enum shoal_err pretok_new(const char *name, struct pretok **out, struct pretok_info *info,
                          struct shoal_diag *d);
void pretok_free(struct pretok *p);
/* Split text into words; each word is appended to *spans as (offset, length)
 * pairs of uint32 (offsets into text). */
enum shoal_err pretok_split(const struct pretok *p, const char *text, size_t n,
                            struct tok_scratch *s, size_t *n_spans, const uint32_t **spans);
/* The families this build knows: family i answers to the space-separated
 * names pretok_family_names(i) (for tests and messages). */
size_t pretok_n_families(void);
const char *pretok_family_names(size_t i);

/* ---- Unicode (unicode.c, unicode_data.c) ---- */

enum {
    UCF_WHITESPACE = 1u << 0, /* White_Space property */
    UCF_LETTER = 1u << 1,     /* \p{L} */
    UCF_NUMBER = 1u << 2,     /* \p{N} */
    UCF_PUNCT = 1u << 3,      /* \p{P} */
    UCF_SYMBOL = 1u << 4,     /* \p{S} */
    UCF_MARK = 1u << 5,       /* \p{M} */
    UCF_CONTROL = 1u << 6,    /* \p{C}, unassigned included */
    UCF_SEPARATOR = 1u << 7,  /* \p{Z} */
};

extern const char unicode_data_version[];
extern const uint16_t unicode_flags_stage1[0x110000 / 256];
extern const uint8_t unicode_flags_stage2[][256];
extern const uint32_t unicode_lower_map[][2];
extern const size_t unicode_lower_map_len;
extern const uint32_t unicode_nfd_map[][3];
extern const size_t unicode_nfd_map_len;

static inline unsigned unicode_flags(uint32_t cp)
{
    if (cp >= 0x110000)
        return 0;
    return unicode_flags_stage2[unicode_flags_stage1[cp >> 8]][cp & 0xFF];
}

/* Simple lower-case mapping (one code point to one). */
uint32_t unicode_tolower(uint32_t cp);
/* First code point of cp's canonical decomposition (cp itself if none). */
uint32_t unicode_nfd_first(uint32_t cp);

/* Decode one UTF-8 character at s[0..n), n > 0. Returns its length (1..4)
 * and *cp; an invalid or truncated sequence gives length 1 and
 * *cp = 0xFFFD. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* GPT-2's byte-to-unicode map: byte b is the code point unicode_byte_cp(b);
 * the inverse returns -1 for a code point that is no byte's. */
uint32_t unicode_byte_cp(uint8_t b);
int unicode_cp_byte(uint32_t cp);

#endif
