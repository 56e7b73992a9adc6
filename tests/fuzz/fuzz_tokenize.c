/* fuzz_tokenize.c: libFuzzer target for the tokenizers; byte 0 picks a
 * vocabulary built in code (BPE under every pre-tokenizer family, SPM, WPM)
 * and the flags, the rest is text. Properties: ids in range; BPE and SPM
 * decode to the exact input; streaming equals batch with invalid UTF-8
 * replaced; a token cap fails cleanly and leaves the output untouched. */
#include "common.h"
#include "engine.h"
#include "tokenizer_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property is a crash, so libFuzzer keeps the input; the line
 * says which one. */
static void require_at(int ok, int line)
{
    if (!ok) {
        fprintf(stderr, "fuzz_tokenize.c:%d: property failed\n", line);
        abort();
    }
}
#define require(ok) require_at((ok), __LINE__)

/* ---- Vocabularies, built once ---- */

struct builder {
    struct vocab_str tok[4096];
    float score[4096];
    int32_t type[4096];
    struct vocab_str merge[4096];
    char store[1 << 16];
    size_t used;
    uint32_t n, n_merges;
};

static const char *keep(struct builder *b, const char *s, size_t n)
{
    require(b->used + n + 1 <= sizeof(b->store));
    char *p = b->store + b->used;
    memcpy(p, s, n);
    p[n] = '\0';
    b->used += n + 1;
    return p;
}

static int32_t find(struct builder *b, const char *s, size_t n)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (b->tok[i].n == n && memcmp(b->tok[i].p, s, n) == 0)
            return (int32_t)i;
    return -1;
}

static int32_t add(struct builder *b, const char *s, size_t n, float score, int32_t type)
{
    int32_t id = find(b, s, n);
    if (id >= 0)
        return id;
    require(b->n < 4096);
    b->tok[b->n] = (struct vocab_str){keep(b, s, n), n};
    b->score[b->n] = score;
    b->type[b->n] = type;
    return (int32_t)b->n++;
}

/* Words whose merges (left to right) make the BPE and SPM pieces. */
static const char *const words[] = {
    "the", "and", "ing", "tion", "hello", "world", "Hello", "World", "token", "izer", "int",
    "return", "struct", "void", "main", "  ", "    ", "\n\n", "//", "==", "->", "12", "123",
    "caf\xC3\xA9", "\xC3\xA9t\xC3\xA9", "\xD0\xBD\xD0\xB5", "\xE6\x88\x91\xE6\x83\xB3",
    "\xF0\x9F\xA6\x99", "'s", "'ll", "er", "re", "on", "at", "en", "es", "is", "it",
};

/* Byte-encode w (GPT-2 map) into out. */
static size_t byte_encode(const char *w, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += shoal_utf8_encode(unicode_byte_cp((uint8_t)w[i]), out + k);
    return k;
}

static struct engine_vocab *build_bpe(const char *pre)
{
    static struct builder b;
    memset(&b, 0, sizeof(b));
    for (int c = 0; c < 256; c++) {
        char u[4];
        size_t l = shoal_utf8_encode(unicode_byte_cp((uint8_t)c), u);
        add(&b, u, l, 0, VOCAB_TYPE_NORMAL);
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < SHOAL_ARRAY_LEN(words); i++) {
            /* Pass 1 also learns the word with a leading space. */
            char w[64], enc[256], merged[256], m[512];
            size_t wn = 0;
            if (pass)
                w[wn++] = ' ';
            size_t l = strlen(words[i]);
            memcpy(w + wn, words[i], l);
            wn += l;
            size_t en = byte_encode(w, wn, enc);
            /* Symbols are the encoded characters; merge left to right. */
            uint32_t cp;
            size_t first = utf8_decode((const unsigned char *)enc, en, &cp);
            size_t mlen = first;
            memcpy(merged, enc, first);
            for (size_t at = first; at < en;) {
                size_t cl = utf8_decode((const unsigned char *)enc + at, en - at, &cp);
                int ml = snprintf(m, sizeof(m), "%.*s %.*s", (int)mlen, merged, (int)cl, enc + at);
                memcpy(merged + mlen, enc + at, cl);
                mlen += cl;
                at += cl;
                if (find(&b, merged, mlen) >= 0)
                    continue; /* this prefix was learnt already */
                add(&b, merged, mlen, 0, VOCAB_TYPE_NORMAL);
                b.merge[b.n_merges++] = (struct vocab_str){keep(&b, m, (size_t)ml), (size_t)ml};
            }
        }
    }
    int32_t end = add(&b, "<|im_end|>", 10, 0, VOCAB_TYPE_CONTROL);
    add(&b, "<|im_start|>", 12, 0, VOCAB_TYPE_CONTROL);
    add(&b, "<ud>", 4, 0, VOCAB_TYPE_USER_DEFINED);
    add(&b, "<ud><ud>", 8, 0, VOCAB_TYPE_USER_DEFINED);
    add(&b, "\t\t", 2, 0, VOCAB_TYPE_USER_DEFINED);
    struct vocab_spec s = {0};
    s.kind = ENGINE_VOCAB_BPE;
    s.pre = pre;
    s.n_tokens = b.n;
    s.tokens = b.tok;
    s.scores = b.score;
    s.types = b.type;
    s.n_merges = b.n_merges;
    s.merges = b.merge;
    s.bos = end;
    s.eos = end;
    s.unk = s.sep = s.pad = VOCAB_ID_UNSET;
    s.add_bos = 1;
    s.add_eos = s.add_sep = s.add_space_prefix = -1;
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    if (vocab_build(&s, &v, &d) != SHOAL_OK) {
        s.add_bos = -1; /* a family without BOS (chatglm) */
        if (vocab_build(&s, &v, &d) == SHOAL_OK)
            return v;
        fprintf(stderr, "fuzz_tokenize: %s: %s: %s\n", pre, d.path, d.msg);
        abort();
    }
    return v;
}

static struct engine_vocab *build_spm(void)
{
    static struct builder b;
    memset(&b, 0, sizeof(b));
    add(&b, "<unk>", 5, 0, VOCAB_TYPE_UNKNOWN);
    add(&b, "<s>", 3, 0, VOCAB_TYPE_CONTROL);
    add(&b, "</s>", 4, 0, VOCAB_TYPE_CONTROL);
    for (int c = 0; c < 256; c++) {
        char hex[8];
        snprintf(hex, sizeof(hex), "<0x%02X>", c);
        add(&b, hex, 6, 0, VOCAB_TYPE_BYTE);
    }
    float score = -1;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(words); i++) {
        char w[64];
        size_t wn = 0;
        memcpy(w, "\xE2\x96\x81", 3);
        size_t l = strlen(words[i]);
        for (size_t k = 0; k < l; k++) {
            if (words[i][k] == ' ') {
                memcpy(w + 3 + wn, "\xE2\x96\x81", 3);
                wn += 3;
            } else {
                w[3 + wn++] = words[i][k];
            }
        }
        /* Every prefix, with and without the word-start mark, is a piece. */
        for (size_t k = 1; k <= wn; k++) {
            add(&b, w + 3, k, score, VOCAB_TYPE_NORMAL);
            add(&b, w, k + 3, score - 0.5f, VOCAB_TYPE_NORMAL);
            score -= 0.25f;
        }
    }
    add(&b, "\xE2\x96\x81", 3, -100, VOCAB_TYPE_NORMAL);
    add(&b, "\xE2\x96\x81\xE2\x96\x81", 6, -101, VOCAB_TYPE_NORMAL);
    add(&b, "<|user|>", 8, 0, VOCAB_TYPE_CONTROL);
    struct vocab_spec s = {0};
    s.kind = ENGINE_VOCAB_SPM;
    s.n_tokens = b.n;
    s.tokens = b.tok;
    s.scores = b.score;
    s.types = b.type;
    s.bos = s.eos = s.unk = s.sep = s.pad = VOCAB_ID_UNSET;
    s.add_bos = s.add_eos = s.add_sep = s.add_space_prefix = -1;
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    require(vocab_build(&s, &v, &d) == SHOAL_OK);
    return v;
}

static struct engine_vocab *build_wpm(void)
{
    static struct builder b;
    memset(&b, 0, sizeof(b));
    add(&b, "[PAD]", 5, 0, VOCAB_TYPE_CONTROL);
    add(&b, "[UNK]", 5, 0, VOCAB_TYPE_CONTROL);
    add(&b, "[CLS]", 5, 0, VOCAB_TYPE_CONTROL);
    add(&b, "[SEP]", 5, 0, VOCAB_TYPE_CONTROL);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(words); i++) {
        char w[64];
        memcpy(w, "\xE2\x96\x81", 3);
        size_t l = strlen(words[i]);
        memcpy(w + 3, words[i], l);
        add(&b, w, l + 3, 0, VOCAB_TYPE_NORMAL);
        add(&b, w + 3, l, 0, VOCAB_TYPE_NORMAL);
        add(&b, w, 4, 0, VOCAB_TYPE_NORMAL);
        add(&b, w + 3, 1, 0, VOCAB_TYPE_NORMAL);
    }
    struct vocab_spec s = {0};
    s.kind = ENGINE_VOCAB_WPM;
    s.pre = "bert-bge";
    s.n_tokens = b.n;
    s.tokens = b.tok;
    s.scores = b.score;
    s.types = b.type;
    s.bos = 2;
    s.sep = 3;
    s.unk = 1;
    s.eos = s.pad = VOCAB_ID_UNSET;
    s.add_bos = s.add_eos = s.add_sep = s.add_space_prefix = -1;
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    require(vocab_build(&s, &v, &d) == SHOAL_OK);
    return v;
}

/* One BPE vocabulary per pre-tokenizer family, plus SPM and WPM. */
static struct engine_vocab *vocabs[64];
static size_t n_vocabs;

static void init(void)
{
    if (n_vocabs)
        return;
    for (size_t i = 0; i < pretok_n_families() && n_vocabs < 60; i++) {
        char name[128];
        shoal_strlcpy(name, pretok_family_names(i), sizeof(name));
        char *sp = strchr(name, ' ');
        if (sp)
            *sp = '\0';
        vocabs[n_vocabs++] = build_bpe(name);
    }
    vocabs[n_vocabs++] = build_spm();
    vocabs[n_vocabs++] = build_wpm();
}

/* ---- Properties ---- */

static void sanitize(const unsigned char *p, size_t n, struct shoal_buf *out)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_decode(p + i, n - i, &cp);
        if (!(cp == 0xFFFD && l == 1)) {
            require(shoal_buf_append(out, p + i, l) == SHOAL_OK);
            i += l;
            continue;
        }
        unsigned char c = p[i];
        size_t need = c >= 0xC2 && c <= 0xDF   ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 1;
        size_t k = 1;
        while (k < need && i + k < n) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (k == 1 && c == 0xE0)
                lo = 0xA0;
            if (k == 1 && c == 0xED)
                hi = 0x9F;
            if (k == 1 && c == 0xF0)
                lo = 0x90;
            if (k == 1 && c == 0xF4)
                hi = 0x8F;
            if (p[i + k] < lo || p[i + k] > hi)
                break;
            k++;
        }
        require(shoal_buf_append(out, "\xEF\xBF\xBD", 3) == SHOAL_OK);
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    init();
    const struct engine_vocab *v = vocabs[data[0] % n_vocabs];
    bool parse = data[0] & 0x40, add_special = data[0] & 0x80;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    enum engine_vocab_kind kind = engine_vocab_kind(v);

    struct engine_tokens t;
    engine_tokens_init(&t, 1u << 20);
    require(engine_tokenize(v, text, n, add_special, parse, &t) == SHOAL_OK);
    for (size_t i = 0; i < t.n; i++)
        require(t.ids[i] >= 0 && (uint32_t)t.ids[i] < engine_vocab_size(v));

    struct shoal_buf batch, stream, want;
    shoal_buf_init(&batch, 1u << 24);
    shoal_buf_init(&stream, 1u << 24);
    shoal_buf_init(&want, 1u << 24);
    /* Lossless where the tokenizer is: BPE always (specials render as
     * their text), SPM when no special split the text (a fragment after a
     * special gets a prefix space). */
    bool specials = parse;
    require(engine_detokenize(v, t.ids, t.n, specials, &batch) == SHOAL_OK);
    if (kind == ENGINE_VOCAB_BPE && !(add_special && specials))
        require(batch.len == n && (n == 0 || memcmp(batch.data, text, n) == 0));
    /* (A literal U+2581 in SPM input is a space once decoded.) */
    if (kind == ENGINE_VOCAB_SPM && !parse && !memmem(text, n, "\xE2\x96\x81", 3))
        require(batch.len == n && (n == 0 || memcmp(batch.data, text, n) == 0));

    struct engine_detok s;
    engine_detok_init(&s, v, specials);
    for (size_t i = 0; i < t.n; i++)
        require(engine_detok_push(&s, t.ids[i], &stream) == SHOAL_OK);
    require(engine_detok_flush(&s, &stream) == SHOAL_OK);
    sanitize((const unsigned char *)(batch.data ? batch.data : ""), batch.len, &want);
    require(stream.len == want.len && (want.len == 0 || memcmp(stream.data, want.data, want.len) == 0));

    /* A cap below the count fails and leaves the list as it was. */
    if (t.n > 1) {
        struct engine_tokens small;
        engine_tokens_init(&small, t.n - 1);
        require(tok_push(&small, 7) == SHOAL_OK);
        require(engine_tokenize(v, text, n, add_special, parse, &small) == SHOAL_ERR_TOO_BIG);
        require(small.n == 1 && small.ids[0] == 7);
        engine_tokens_fini(&small);
    }
    shoal_buf_fini(&batch);
    shoal_buf_fini(&stream);
    shoal_buf_fini(&want);
    engine_tokens_fini(&t);
    return 0;
}
