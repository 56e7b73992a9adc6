/* test_tokenizer.c: unit tests of the tokenizers on small vocabularies built
 * in memory (no reference files): SPM scores, byte fallback and the prefix
 * space; BPE ranks and the byte map; WordPiece; specials; streaming;
 * invalid UTF-8; validation (also through an in-memory GGUF); threads. */
#include "test.h"

#include "common.h"
#include "engine.h"
#include "gguf.h"
#include "tokenizer_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Building vocabularies ---- */

struct vb {
    struct vocab_str tok[1024];
    float score[1024];
    int32_t type[1024];
    struct vocab_str merge[256];
    char store[32768];
    size_t used;
    uint32_t n, n_merges;
};

static const char *keep(struct vb *b, const char *s, size_t n)
{
    char *p = b->store + b->used;
    memcpy(p, s, n);
    p[n] = '\0';
    b->used += n + 1;
    return p;
}

static int32_t add_tok(struct vb *b, const char *s, float score, int32_t type)
{
    size_t n = strlen(s);
    b->tok[b->n] = (struct vocab_str){keep(b, s, n), n};
    b->score[b->n] = score;
    b->type[b->n] = type;
    return (int32_t)b->n++;
}

static void add_merge(struct vb *b, const char *s)
{
    size_t n = strlen(s);
    b->merge[b->n_merges++] = (struct vocab_str){keep(b, s, n), n};
}

static struct vocab_spec spec_of(struct vb *b, enum engine_vocab_kind kind, const char *pre)
{
    struct vocab_spec s = {0};
    s.kind = kind;
    s.pre = pre;
    s.n_tokens = b->n;
    s.tokens = b->tok;
    s.scores = b->score;
    s.types = b->type;
    s.n_merges = b->n_merges;
    s.merges = b->n_merges ? b->merge : NULL;
    s.bos = s.eos = s.unk = s.sep = s.pad = VOCAB_ID_UNSET;
    s.add_bos = s.add_eos = s.add_sep = s.add_space_prefix = -1;
    return s;
}

#define U2581 "\xE2\x96\x81"

/* SPM: <unk> <s> </s>, 256 byte tokens, then pieces. */
static struct engine_vocab *spm_vocab(float ab, float bc, bool bytes)
{
    static struct vb b;
    memset(&b, 0, sizeof(b));
    add_tok(&b, "<unk>", 0, VOCAB_TYPE_UNKNOWN);
    add_tok(&b, "<s>", 0, VOCAB_TYPE_CONTROL);
    add_tok(&b, "</s>", 0, VOCAB_TYPE_CONTROL);
    for (int i = 0; bytes && i < 256; i++) {
        char hex[8];
        snprintf(hex, sizeof(hex), "<0x%02X>", i);
        add_tok(&b, hex, 0, VOCAB_TYPE_BYTE);
    }
    add_tok(&b, U2581, -1, VOCAB_TYPE_NORMAL);
    add_tok(&b, "a", -2, VOCAB_TYPE_NORMAL);
    add_tok(&b, "b", -2, VOCAB_TYPE_NORMAL);
    add_tok(&b, "c", -2, VOCAB_TYPE_NORMAL);
    add_tok(&b, "ab", ab, VOCAB_TYPE_NORMAL);
    add_tok(&b, "bc", bc, VOCAB_TYPE_NORMAL);
    add_tok(&b, U2581 "a", -0.5f, VOCAB_TYPE_NORMAL);
    add_tok(&b, U2581 U2581, -3, VOCAB_TYPE_NORMAL);
    add_tok(&b, "<|user|>", 0, VOCAB_TYPE_CONTROL);
    struct vocab_spec s = spec_of(&b, ENGINE_VOCAB_SPM, NULL);
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_OK);
    return v;
}

static int32_t id_of(const struct engine_vocab *v, const char *s)
{
    return vocab_find(v, s, strlen(s));
}

static size_t enc(const struct engine_vocab *v, const char *s, size_t n, bool add, bool parse,
                  int32_t *ids, size_t cap)
{
    struct engine_tokens t;
    engine_tokens_init(&t, 1u << 20);
    enum shoal_err e = engine_tokenize(v, s, n, add, parse, &t);
    CHECK_EQ_INT(e, SHOAL_OK);
    size_t got = e == SHOAL_OK ? t.n : 0;
    size_t k = got < cap ? got : cap;
    if (k)
        memcpy(ids, t.ids, k * sizeof(int32_t));
    engine_tokens_fini(&t);
    return got;
}

static bool roundtrip(const struct engine_vocab *v, const char *s, size_t n, bool add, bool parse)
{
    struct engine_tokens t;
    engine_tokens_init(&t, 1u << 20);
    struct shoal_buf b;
    shoal_buf_init(&b, 1u << 20);
    bool ok = engine_tokenize(v, s, n, add, parse, &t) == SHOAL_OK &&
              engine_detokenize(v, t.ids, t.n, parse, &b) == SHOAL_OK && b.len == n &&
              (n == 0 || memcmp(b.data, s, n) == 0);
    if (!ok)
        fprintf(stderr, "  round trip of \"%.*s\" gave \"%s\"\n", (int)n, s, shoal_buf_cstr(&b));
    shoal_buf_fini(&b);
    engine_tokens_fini(&t);
    return ok;
}

static void test_spm(void)
{
    int32_t ids[64];
    /* "▁abc": ▁a and bc tie at -0.5 and beat ab (-1): ▁a | bc. */
    struct engine_vocab *v = spm_vocab(-1.0f, -0.5f, true);
    size_t n = enc(v, "abc", 3, false, false, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, U2581 "a"));
    CHECK_EQ_INT(ids[1], id_of(v, "bc"));
    /* The prefix space merges with the 'a' when it can: ▁a b c... */
    n = enc(v, "ab", 2, true, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[0], 1); /* BOS */
    CHECK_EQ_INT(ids[1], id_of(v, U2581 "a"));
    CHECK_EQ_INT(ids[2], id_of(v, "b"));
    CHECK(roundtrip(v, "abc", 3, false, false));
    CHECK(roundtrip(v, " a  b", 5, false, false));
    vocab_free(v);

    /* "ab" scores highest: ▁ | ab | c. */
    v = spm_vocab(-0.1f, -0.5f, true);
    n = enc(v, "abc", 3, false, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[0], id_of(v, U2581));
    CHECK_EQ_INT(ids[1], id_of(v, "ab"));
    CHECK_EQ_INT(ids[2], id_of(v, "c"));
    n = enc(v, "bcab", 4, false, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[0], id_of(v, U2581));
    CHECK_EQ_INT(ids[1], id_of(v, "bc"));
    CHECK_EQ_INT(ids[2], id_of(v, "ab"));
    /* Byte fallback for what is no token: é is C3 A9. */
    n = enc(v, "a\xC3\xA9", 3, false, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[0], id_of(v, U2581 "a"));
    CHECK_EQ_INT(ids[1], id_of(v, "<0xC3>"));
    CHECK_EQ_INT(ids[2], id_of(v, "<0xA9>"));
    CHECK(roundtrip(v, "a\xC3\xA9", 3, false, false));
    /* Invalid UTF-8 goes through byte tokens and comes back exactly. */
    CHECK(roundtrip(v, "\xFF\xC3(a\x80", 5, false, false));
    CHECK(roundtrip(v, "\xF0\x9F", 2, false, false));
    /* Empty text: nothing, or just BOS. */
    CHECK_EQ_INT(enc(v, "", 0, false, false, ids, 64), 0);
    CHECK_EQ_INT(enc(v, "", 0, true, false, ids, 64), 1);
    /* Special text: plain text unless parsed; a fragment after a special
     * gets the prefix space again. */
    n = enc(v, "<|user|>a", 9, false, true, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, "<|user|>"));
    CHECK_EQ_INT(ids[1], id_of(v, U2581 "a"));
    n = enc(v, "<|user|>", 8, false, false, ids, 64);
    CHECK(n > 1);
    CHECK(roundtrip(v, "<|user|>", 8, false, false));
    vocab_free(v);

    /* Without byte tokens an unknown character becomes <unk>. */
    v = spm_vocab(-1.0f, -0.5f, false);
    n = enc(v, "\xC3\xA9", 2, false, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[1], 0);
    CHECK_EQ_INT(ids[2], 0);
    vocab_free(v);
}

/* BPE: the 256 byte symbols in GPT-2 order, then merge results. */
static struct engine_vocab *bpe_vocab(bool bc_first, const char *pre)
{
    static struct vb b;
    memset(&b, 0, sizeof(b));
    /* GPT-2's order: the bytes that map to themselves, then the rest. */
    for (int pass = 0; pass < 2; pass++) {
        for (int c = 0; c < 256; c++) {
            bool self = unicode_byte_cp((uint8_t)c) == (uint32_t)c;
            if (self != (pass == 0))
                continue;
            char u[5] = {0};
            shoal_utf8_encode(unicode_byte_cp((uint8_t)c), u);
            add_tok(&b, u, 0, VOCAB_TYPE_NORMAL);
        }
    }
    add_merge(&b, bc_first ? "b c" : "a b");
    add_merge(&b, bc_first ? "a b" : "b c");
    add_merge(&b, "h e");
    add_merge(&b, "l l");
    add_merge(&b, "he ll");
    add_merge(&b, "hell o");
    add_merge(&b, "\xC4\xA0 hello"); /* Ġ hello */
    add_tok(&b, "bc", 0, VOCAB_TYPE_NORMAL);
    add_tok(&b, "ab", 0, VOCAB_TYPE_NORMAL);
    add_tok(&b, "he", 0, VOCAB_TYPE_NORMAL);
    add_tok(&b, "ll", 0, VOCAB_TYPE_NORMAL);
    add_tok(&b, "hell", 0, VOCAB_TYPE_NORMAL);
    add_tok(&b, "hello", 0, VOCAB_TYPE_NORMAL);
    add_tok(&b, "\xC4\xA0hello", 0, VOCAB_TYPE_NORMAL);
    int32_t end = add_tok(&b, "<|end|>", 0, VOCAB_TYPE_CONTROL);
    add_tok(&b, "<ud>", 0, VOCAB_TYPE_USER_DEFINED);
    add_tok(&b, "xyz", 0, VOCAB_TYPE_USER_DEFINED);
    add_tok(&b, "wx", 0, VOCAB_TYPE_USER_DEFINED);
    add_tok(&b, "aa", 0, VOCAB_TYPE_USER_DEFINED);
    add_tok(&b, "<|im_end|>", 0, VOCAB_TYPE_USER_DEFINED); /* an EOG text: made CONTROL */
    struct vocab_spec s = spec_of(&b, ENGINE_VOCAB_BPE, pre);
    s.eos = end;
    s.bos = end;
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    enum shoal_err e = vocab_build(&s, &v, &d);
    CHECK_EQ_INT(e, SHOAL_OK);
    if (e != SHOAL_OK)
        fprintf(stderr, "  %s\n", d.msg);
    return v;
}

static void test_byte_map(void)
{
    /* A bijection between the 256 bytes and 256 code points. */
    bool seen[512] = {false};
    for (int c = 0; c < 256; c++) {
        uint32_t cp = unicode_byte_cp((uint8_t)c);
        CHECK(cp < 512);
        if (cp < 512) {
            CHECK(!seen[cp]);
            seen[cp] = true;
        }
        CHECK_EQ_INT(unicode_cp_byte(cp), c);
    }
    CHECK_EQ_INT(unicode_byte_cp(' '), 0x120); /* Ġ */
    CHECK_EQ_INT(unicode_byte_cp('\n'), 0x10A); /* Ċ */
    CHECK_EQ_INT(unicode_byte_cp('!'), '!');
    CHECK_EQ_INT(unicode_cp_byte(0x100 + 68), -1);
    /* Every byte alone encodes to its symbol and decodes back. */
    struct engine_vocab *v = bpe_vocab(true, "gpt-2");
    for (int c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        int32_t ids[4];
        size_t n = enc(v, s, 1, false, false, ids, 4);
        CHECK_EQ_INT(n, 1);
        CHECK(roundtrip(v, s, 1, false, false));
    }
    vocab_free(v);
}

static void test_bpe(void)
{
    int32_t ids[64];
    /* Lower rank first: "b c" before "a b" gives a | bc. */
    struct engine_vocab *v = bpe_vocab(true, "gpt-2");
    size_t n = enc(v, "abc", 3, false, false, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, "a"));
    CHECK_EQ_INT(ids[1], id_of(v, "bc"));
    n = enc(v, "hello hello", 11, false, false, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, "hello"));
    CHECK_EQ_INT(ids[1], id_of(v, "\xC4\xA0hello"));
    CHECK(roundtrip(v, "hello hello", 11, false, false));
    vocab_free(v);
    v = bpe_vocab(false, "gpt-2");
    n = enc(v, "abc", 3, false, false, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, "ab"));
    CHECK_EQ_INT(ids[1], id_of(v, "c"));
    vocab_free(v);

    /* The pre-tokenizer splits before merging: no merge across words. */
    v = bpe_vocab(true, "qwen2");
    n = enc(v, "bc1bc", 5, false, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[0], id_of(v, "bc"));
    CHECK_EQ_INT(ids[1], id_of(v, "1"));
    CHECK_EQ_INT(ids[2], id_of(v, "bc"));
    n = enc(v, "a bc", 4, false, false, ids, 64);
    CHECK_EQ_INT(n, 3); /* a | Ġ b c: "Ġb" is no merge, so Ġ | bc */
    /* Invalid UTF-8 and odd text survive byte-level BPE exactly. */
    static const char *const odd[] = {"\xFF\xFE", "a\xC3", "\xE2\x82 x", "\xED\xA0\x80",
                                      "\xF4\x90\x80\x80", "caf\xC3\xA9 \xF0\x9F\xA6\x99!",
                                      "  \t\n\n  x  ", "\xC0\xAF"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(odd); i++)
        CHECK(roundtrip(v, odd[i], strlen(odd[i]), false, false));
    char nul[3] = {'a', 0, 'b'};
    CHECK(roundtrip(v, nul, 3, false, false));
    vocab_free(v);
}

static void test_specials(void)
{
    int32_t ids[64];
    struct engine_vocab *v = bpe_vocab(true, "gpt-2");
    int32_t end = id_of(v, "<|end|>");
    /* Control text is text unless parse_special. */
    size_t n = enc(v, "a<|end|>b", 9, false, true, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[1], end);
    n = enc(v, "a<|end|>b", 9, false, false, ids, 64);
    CHECK(n > 3);
    for (size_t i = 0; i < n; i++)
        CHECK(ids[i] != end);
    CHECK(roundtrip(v, "a<|end|>b", 9, false, false));
    CHECK(roundtrip(v, "a<|end|>b", 9, false, true));
    /* Detokenizing skips control tokens unless asked. */
    struct shoal_buf b;
    shoal_buf_init(&b, 1024);
    int32_t seq[3] = {id_of(v, "a"), end, id_of(v, "b")};
    CHECK_EQ_INT(engine_detokenize(v, seq, 3, false, &b), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&b), "ab");
    shoal_buf_reset(&b);
    CHECK_EQ_INT(engine_detokenize(v, seq, 3, true, &b), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&b), "a<|end|>b");
    /* An id out of range is rejected and nothing is written. */
    int32_t bad[2] = {id_of(v, "a"), 100000};
    shoal_buf_reset(&b);
    CHECK_EQ_INT(engine_detokenize(v, bad, 2, true, &b), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(b.len, 0);
    shoal_buf_fini(&b);
    /* User-defined tokens are split out even without parse_special. */
    n = enc(v, "a<ud>b", 6, false, false, ids, 64);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(ids[1], id_of(v, "<ud>"));
    /* Longer specials win, whatever their position: w|xyz, not wx|yz. */
    n = enc(v, "wxyz", 4, false, false, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, "w"));
    CHECK_EQ_INT(ids[1], id_of(v, "xyz"));
    /* Occurrences of one special do not overlap: aa|a. */
    n = enc(v, "aaa", 3, false, false, ids, 64);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], id_of(v, "aa"));
    CHECK_EQ_INT(ids[1], id_of(v, "a"));
    /* A user-defined end-of-turn text counts as control: parsed only when
     * asked, hidden when detokenizing. */
    int32_t im_end = id_of(v, "<|im_end|>");
    CHECK(engine_vocab_is_control(v, im_end));
    n = enc(v, "<|im_end|>", 10, false, false, ids, 64);
    CHECK(n > 1);
    n = enc(v, "<|im_end|>", 10, false, true, ids, 64);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(ids[0], im_end);
    /* BOS/EOS as the metadata says. */
    n = enc(v, "a", 1, true, false, ids, 64);
    CHECK_EQ_INT(n, 1); /* BPE adds nothing by default */
    vocab_free(v);
}

static void test_rstrip(void)
{
    /* phi-3 style: specials eat the whitespace after them. */
    struct vb *b = calloc(1, sizeof(*b));
    add_tok(b, "<unk>", 0, VOCAB_TYPE_UNKNOWN);
    add_tok(b, "<s>", 0, VOCAB_TYPE_CONTROL);
    add_tok(b, "</s>", 0, VOCAB_TYPE_USER_DEFINED);
    for (int i = 0; i < 256; i++) {
        char hex[8];
        snprintf(hex, sizeof(hex), "<0x%02X>", i);
        add_tok(b, hex, 0, VOCAB_TYPE_BYTE);
    }
    add_tok(b, U2581 "x", -1, VOCAB_TYPE_NORMAL);
    add_tok(b, "x", -2, VOCAB_TYPE_NORMAL);
    add_tok(b, U2581, -2, VOCAB_TYPE_NORMAL);
    struct vocab_spec s = spec_of(b, ENGINE_VOCAB_SPM, "default");
    s.model_name = "Phi3";
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_OK);
    int32_t ids[16];
    size_t n = enc(v, "</s>  x", 7, false, false, ids, 16);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(ids[0], 2);
    CHECK_EQ_INT(ids[1], id_of(v, U2581 "x"));
    vocab_free(v);
    s.model_name = "other";
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_OK);
    n = enc(v, "</s>  x", 7, false, false, ids, 16);
    CHECK_EQ_INT(n, 4); /* </s> ▁ ▁ ▁x: the spaces stay */
    vocab_free(v);
    free(b);
}

static void test_wpm(void)
{
    struct vb *b = calloc(1, sizeof(*b));
    add_tok(b, "[PAD]", 0, VOCAB_TYPE_CONTROL);
    add_tok(b, "[UNK]", 0, VOCAB_TYPE_CONTROL);
    add_tok(b, "[CLS]", 0, VOCAB_TYPE_CONTROL);
    add_tok(b, "[SEP]", 0, VOCAB_TYPE_CONTROL);
    add_tok(b, U2581 "hello", 0, VOCAB_TYPE_NORMAL);
    add_tok(b, U2581 "wor", 0, VOCAB_TYPE_NORMAL);
    add_tok(b, "ld", 0, VOCAB_TYPE_NORMAL);
    add_tok(b, U2581 ",", 0, VOCAB_TYPE_NORMAL);
    add_tok(b, U2581 "\xE4\xB8\xAD", 0, VOCAB_TYPE_NORMAL); /* 中 */
    struct vocab_spec s = spec_of(b, ENGINE_VOCAB_WPM, "bert-bge");
    s.bos = 2;
    s.sep = 3;
    s.unk = 1;
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_OK);
    int32_t ids[32];
    /* Lower-cased, accents stripped, punctuation and CJK split off. */
    const char *text = "H\xC3\xA9LLO,World \xE4\xB8\xAD" "hello xyz";
    size_t n = enc(v, text, strlen(text), true, false, ids, 32);
    CHECK_EQ_INT(n, 9);
    int32_t want[9] = {2, 4, 7, 5, 6, 8, 4, 1, 3};
    for (size_t i = 0; i < 9 && i < n; i++)
        CHECK_EQ_INT(ids[i], want[i]);
    struct shoal_buf out;
    shoal_buf_init(&out, 1024);
    CHECK_EQ_INT(engine_detokenize(v, ids, n, false, &out), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "hello , world \xE4\xB8\xAD hello");
    shoal_buf_fini(&out);
    /* Invalid UTF-8 and control characters are dropped, never an error. */
    n = enc(v, "\xFF hello\x01\xC3", 9, false, false, ids, 32);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(ids[0], 4);
    vocab_free(v);
    free(b);
}

/* Replace each maximal invalid subpart with U+FFFD (what streaming gives). */
static void sanitize(const char *s, size_t n, struct shoal_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_decode(p + i, n - i, &cp);
        if (!(cp == 0xFFFD && l == 1)) {
            CHECK_EQ_INT(shoal_buf_append(out, p + i, l), SHOAL_OK);
            i += l;
            continue;
        }
        /* How far does a valid prefix of a sequence go? */
        size_t k = 1;
        unsigned char c = p[i];
        size_t need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;
        while (k < need && i + k < n) {
            unsigned char lo = 0x80, hi = 0xBF;
            if (k == 1 && c == 0xE0) lo = 0xA0;
            if (k == 1 && c == 0xED) hi = 0x9F;
            if (k == 1 && c == 0xF0) lo = 0x90;
            if (k == 1 && c == 0xF4) hi = 0x8F;
            if (p[i + k] < lo || p[i + k] > hi)
                break;
            k++;
        }
        CHECK_EQ_INT(shoal_buf_append(out, "\xEF\xBF\xBD", 3), SHOAL_OK);
        i += k;
    }
}

static void test_streaming(void)
{
    struct engine_vocab *v = spm_vocab(-1.0f, -0.5f, true);
    /* 🦙 (F0 9F A6 99) as four byte tokens: nothing until the last. */
    int32_t ids[4] = {id_of(v, "<0xF0>"), id_of(v, "<0x9F>"), id_of(v, "<0xA6>"),
                      id_of(v, "<0x99>")};
    struct engine_detok s;
    struct shoal_buf out;
    shoal_buf_init(&out, 1024);
    engine_detok_init(&s, v, false);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(engine_detok_push(&s, ids[i], &out), SHOAL_OK);
        CHECK_EQ_INT(out.len, 0);
    }
    CHECK_EQ_INT(engine_detok_push(&s, ids[3], &out), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "\xF0\x9F\xA6\x99");
    CHECK_EQ_INT(engine_detok_flush(&s, &out), SHOAL_OK);
    CHECK_EQ_INT(out.len, 4);
    /* A broken sequence: one U+FFFD, then the byte that broke it. */
    shoal_buf_reset(&out);
    engine_detok_init(&s, v, false);
    CHECK_EQ_INT(engine_detok_push(&s, id_of(v, "<0xE2>"), &out), SHOAL_OK);
    CHECK_EQ_INT(engine_detok_push(&s, id_of(v, "<0x82>"), &out), SHOAL_OK);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(engine_detok_push(&s, id_of(v, "a"), &out), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "\xEF\xBF\xBD" "a");
    /* Flush turns an unfinished character into U+FFFD. */
    CHECK_EQ_INT(engine_detok_push(&s, id_of(v, "<0xC3>"), &out), SHOAL_OK);
    CHECK_EQ_INT(engine_detok_flush(&s, &out), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "\xEF\xBF\xBD" "a\xEF\xBF\xBD");
    /* The leading space of the first piece goes, as in batch decoding. */
    shoal_buf_reset(&out);
    engine_detok_init(&s, v, false);
    CHECK_EQ_INT(engine_detok_push(&s, 1, &out), SHOAL_OK); /* <s>, hidden */
    CHECK_EQ_INT(engine_detok_push(&s, id_of(v, U2581 "a"), &out), SHOAL_OK);
    CHECK_EQ_INT(engine_detok_push(&s, id_of(v, U2581 "a"), &out), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&out), "a a");
    CHECK_EQ_INT(engine_detok_push(&s, 99999, &out), SHOAL_ERR_INVALID);

    /* Streaming equals batch, sanitized, on random byte-token sequences. */
    uint32_t seed = 12345;
    for (int round = 0; round < 300; round++) {
        int32_t seq[24];
        size_t n = 1 + round % 24;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            uint32_t r = seed >> 8;
            /* Mostly byte tokens near UTF-8 boundaries, some text. */
            static const uint8_t picks[] = {0xF0, 0x9F, 0xA6, 0x99, 0xE2, 0x82, 0xAC, 0xC3,
                                            0xA9, 0xED, 0xA0, 0x80, 0xBF, 0xF4, 0x90, 0x41};
            seq[i] = r % 5 == 0 ? id_of(v, "ab") : id_of(v, "<0x00>") + picks[r % 16];
        }
        struct shoal_buf batch, want, got;
        shoal_buf_init(&batch, 4096);
        shoal_buf_init(&want, 4096);
        shoal_buf_init(&got, 4096);
        CHECK_EQ_INT(engine_detokenize(v, seq, n, false, &batch), SHOAL_OK);
        sanitize(batch.data ? batch.data : "", batch.len, &want);
        engine_detok_init(&s, v, false);
        for (size_t i = 0; i < n; i++)
            CHECK_EQ_INT(engine_detok_push(&s, seq[i], &got), SHOAL_OK);
        CHECK_EQ_INT(engine_detok_flush(&s, &got), SHOAL_OK);
        CHECK_STR(shoal_buf_cstr(&got), shoal_buf_cstr(&want));
        shoal_buf_fini(&batch);
        shoal_buf_fini(&want);
        shoal_buf_fini(&got);
    }
    shoal_buf_fini(&out);
    vocab_free(v);
}

static void test_caps(void)
{
    struct engine_vocab *v = bpe_vocab(true, "gpt-2");
    struct engine_tokens t;
    engine_tokens_init(&t, 3);
    CHECK_EQ_INT(engine_tokenize(v, "a b c d e", 9, false, false, &t), SHOAL_ERR_TOO_BIG);
    CHECK_EQ_INT(t.n, 0);
    CHECK_EQ_INT(engine_tokenize(v, "a b", 3, false, false, &t), SHOAL_OK);
    CHECK_EQ_INT(t.n, 3);
    /* A failed call leaves what was there. */
    CHECK_EQ_INT(engine_tokenize(v, "c", 1, false, false, &t), SHOAL_ERR_TOO_BIG);
    CHECK_EQ_INT(t.n, 3);
    engine_tokens_fini(&t);
    CHECK_EQ_INT(engine_tokenize(NULL, "a", 1, false, false, &t), SHOAL_ERR_INVALID);
    vocab_free(v);
}

static void test_validation(void)
{
    struct vb *b = calloc(1, sizeof(*b));
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    add_tok(b, "a", 0, VOCAB_TYPE_NORMAL);
    add_tok(b, "b", 0, VOCAB_TYPE_NORMAL);
    add_tok(b, "ab", 0, VOCAB_TYPE_NORMAL);
    add_merge(b, "a b");
    add_merge(b, "a c");
    struct vocab_spec s = spec_of(b, ENGINE_VOCAB_BPE, "gpt-2");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.merges[1]");
    CHECK_CONTAINS(d.msg, "'c' is not in the vocabulary");
    s.n_merges = 1;
    s.pre = "no-such-pre";
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_UNSUPPORTED);
    CHECK_STR(d.path, "tokenizer.ggml.pre");
    s.pre = "gpt-2";
    s.n_merges = 0;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.merges");
    s.n_merges = 1;
    s.bos = 3;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.bos_token_id");
    s.bos = VOCAB_ID_UNSET;
    s.add_bos = 1;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.add_bos_token");
    s.add_bos = -1;
    b->type[1] = 9;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.token_type[1]");
    b->type[1] = VOCAB_TYPE_BYTE;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.tokens[1]");
    b->type[1] = VOCAB_TYPE_NORMAL;
    b->tok[2] = b->tok[0];
    shoal_diag_clear(&d);
    CHECK_EQ_INT(vocab_build(&s, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.tokens[2]");
    CHECK_CONTAINS(d.msg, "duplicate");
    free(b);
}

static void test_pretok_families(void)
{
    /* Every family this build names compiles, and splits losslessly. */
    size_t names = 0;
    for (size_t i = 0; i < pretok_n_families(); i++) {
        char list[512];
        shoal_strlcpy(list, pretok_family_names(i), sizeof(list));
        char *save = NULL;
        for (char *nm = strtok_r(list, " ", &save); nm; nm = strtok_r(NULL, " ", &save)) {
            struct pretok *p = NULL;
            struct shoal_diag d;
            enum shoal_err e = pretok_new(nm, &p, NULL, &d);
            CHECK_EQ_INT(e, SHOAL_OK);
            if (e != SHOAL_OK) {
                fprintf(stderr, "  %s: %s\n", nm, d.msg);
                continue;
            }
            static const char text[] = "Hello, y'all! 3333 \xE6\x88\x91\xE6\x83\xB3 caf\xC3\xA9\n\n"
                                       "  \t x \xFF<sentinel:3> IMGIMGABZ";
            struct tok_scratch s = {0};
            size_t n = 0;
            const uint32_t *sp = NULL;
            CHECK_EQ_INT(pretok_split(p, text, sizeof(text) - 1, &s, &n, &sp), SHOAL_OK);
            /* The words tile the text. */
            uint32_t at = 0;
            for (size_t k = 0; k < n; k++) {
                CHECK_EQ_INT(sp[2 * k], at);
                CHECK(sp[2 * k + 1] > 0);
                at = sp[2 * k] + sp[2 * k + 1];
            }
            CHECK_EQ_INT(at, sizeof(text) - 1);
            tok_scratch_fini(&s);
            pretok_free(p);
            names++;
        }
    }
    CHECK(names > 40);
}

/* A GGUF file in memory, for vocab_load. */
struct gw {
    unsigned char *p;
    size_t n, cap;
};

static void put(struct gw *w, const void *s, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2;
        w->p = realloc(w->p, w->cap);
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}
static void put_u32(struct gw *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(struct gw *w, uint64_t v) { put(w, &v, 8); }
static void put_str(struct gw *w, const char *s)
{
    put_u64(w, strlen(s));
    put(w, s, strlen(s));
}
static void kv_str(struct gw *w, const char *k, const char *v)
{
    put_str(w, k);
    put_u32(w, GGUF_TYPE_STRING);
    put_str(w, v);
}
static void kv_strs(struct gw *w, const char *k, const char *const *v, size_t n)
{
    put_str(w, k);
    put_u32(w, GGUF_TYPE_ARRAY);
    put_u32(w, GGUF_TYPE_STRING);
    put_u64(w, n);
    for (size_t i = 0; i < n; i++)
        put_str(w, v[i]);
}
static void kv_f32s(struct gw *w, const char *k, const float *v, size_t n)
{
    put_str(w, k);
    put_u32(w, GGUF_TYPE_ARRAY);
    put_u32(w, GGUF_TYPE_FLOAT32);
    put_u64(w, n);
    put(w, v, n * 4);
}
static void kv_i32s(struct gw *w, const char *k, const int32_t *v, size_t n)
{
    put_str(w, k);
    put_u32(w, GGUF_TYPE_ARRAY);
    put_u32(w, GGUF_TYPE_INT32);
    put_u64(w, n);
    put(w, v, n * 4);
}
static void kv_u32(struct gw *w, const char *k, uint32_t v)
{
    put_str(w, k);
    put_u32(w, GGUF_TYPE_UINT32);
    put_u32(w, v);
}

static enum shoal_err load_gguf(int variant, struct engine_vocab **v, struct shoal_diag *d)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", U2581 "a", "a", U2581};
    static const float scores[] = {0, 0, 0, -1, -2, -3};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1};
    struct gw w = {0};
    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, 0);
    uint64_t nkv = variant == 0 ? 0 : 5;
    put_u64(&w, nkv);
    if (variant > 0) {
        kv_str(&w, "tokenizer.ggml.model", variant == 2 ? "t5" : "llama");
        kv_strs(&w, "tokenizer.ggml.tokens", toks, 6);
        kv_f32s(&w, "tokenizer.ggml.scores", scores, variant == 3 ? 5 : 6);
        kv_u32(&w, "tokenizer.ggml.seperator_token_id", variant == 4 ? 7 : UINT32_MAX);
        kv_i32s(&w, "tokenizer.ggml.token_type", types, 6);
    }
    struct gguf *g = NULL;
    enum shoal_err e = gguf_open_memory(w.p, w.n, "mem.gguf", &g, d);
    if (e == SHOAL_OK)
        e = vocab_load(g, v, d);
    gguf_close(g);
    free(w.p);
    return e;
}

static void test_gguf(void)
{
    struct engine_vocab *v = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(load_gguf(0, &v, &d), SHOAL_ERR_NOT_FOUND);
    CHECK_EQ_INT(load_gguf(1, &v, &d), SHOAL_OK);
    if (v) {
        CHECK_EQ_INT(engine_vocab_kind(v), ENGINE_VOCAB_SPM);
        CHECK_EQ_INT(engine_vocab_size(v), 6);
        CHECK_EQ_INT(engine_vocab_bos(v), 1);
        CHECK_EQ_INT(engine_vocab_eos(v), 2);
        size_t n = 0;
        CHECK_STR(engine_vocab_text(v, 3, &n), U2581 "a");
        CHECK_EQ_INT(n, 4);
        CHECK(engine_vocab_text(v, 6, &n) == NULL);
        CHECK(engine_vocab_is_control(v, 1));
        CHECK(!engine_vocab_is_control(v, 3));
        int32_t ids[4];
        CHECK_EQ_INT(enc(v, "a", 1, true, false, ids, 4), 2);
        CHECK_EQ_INT(ids[1], 3);
        vocab_free(v);
        v = NULL;
    }
    shoal_diag_clear(&d);
    CHECK_EQ_INT(load_gguf(2, &v, &d), SHOAL_ERR_UNSUPPORTED);
    CHECK_STR(d.path, "tokenizer.ggml.model");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(load_gguf(3, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.scores");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(load_gguf(4, &v, &d), SHOAL_ERR_INVALID);
    CHECK_STR(d.path, "tokenizer.ggml.seperator_token_id");
}

struct thread_arg {
    const struct engine_vocab *v;
    const char *text;
    size_t n;
    int32_t *want;
    size_t n_want;
    int bad;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    for (int r = 0; r < 50; r++) {
        struct engine_tokens t;
        engine_tokens_init(&t, 1u << 16);
        if (engine_tokenize(a->v, a->text, a->n, true, true, &t) != SHOAL_OK || t.n != a->n_want ||
            memcmp(t.ids, a->want, t.n * sizeof(int32_t)) != 0)
            a->bad++;
        engine_tokens_fini(&t);
    }
    return NULL;
}

static void test_threads(void)
{
    struct engine_vocab *v = bpe_vocab(true, "llama3");
    static const char text[] = "hello hello <|end|> abc abc wxyz \xC3\xA9\xF0\x9F\xA6\x99 123456";
    int32_t want[128];
    size_t nw = enc(v, text, sizeof(text) - 1, true, true, want, 128);
    pthread_t th[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){v, text, sizeof(text) - 1, want, nw, 0};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].bad, 0);
    }
    vocab_free(v);
}

int main(void)
{
    test_spm();
    test_byte_map();
    test_bpe();
    test_specials();
    test_rstrip();
    test_wpm();
    test_streaming();
    test_caps();
    test_validation();
    test_pretok_families();
    test_gguf();
    test_threads();
    return test_report("test_tokenizer");
}
