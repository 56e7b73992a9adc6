/* tok_wpm.c: WordPiece (model "bert") as llama.cpp runs it on converted
 * BERT vocabularies (word-initial pieces start with U+2581): normalise,
 * split at whitespace, punctuation and CJK, then cut each word greedily into
 * the longest pieces; an uncuttable word is [UNK]. Invariant: one word at a
 * time in the call's scratch; the vocabulary is only read. */
#include "tokenizer_internal.h"

#include <string.h>

/* BERT's "Chinese character" blocks, with HF's 0x2B920 lower bound. */
static bool is_chinese_char(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

#define PHANTOM_SPACE "\xE2\x96\x81"

/* Cut buf[0..n) (U+2581 + word) into pieces. */
static enum shoal_err cut_word(const struct engine_vocab *v, const char *buf, size_t n,
                               struct engine_tokens *out)
{
    enum shoal_err e;
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = i + v->max_token_len + 1;
        if (j > n)
            j = n;
        int32_t id = -1;
        for (; j > i; j--) {
            id = vocab_find(v, buf + i, j - i);
            if (id >= 0)
                break;
        }
        if (id < 0) {
            out->n = start; /* no cut for the rest: the whole word is unknown */
            break;
        }
        if ((e = tok_push(out, id)))
            return e;
        i = j;
    }
    if (out->n == start && v->unk >= 0)
        return tok_push(out, v->unk);
    return SHOAL_OK;
}

enum shoal_err wpm_encode(const struct engine_vocab *v, const char *text, size_t n,
                          struct tok_scratch *s, struct engine_tokens *out)
{
    if (tok_grow((void **)&s->buf, &s->buf_cap, 3 + 4 * n + 8, 1) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    char *buf = s->buf;
    memcpy(buf, PHANTOM_SPACE, 3);
    size_t w = 3; /* buf[0..w): the word being collected, after its U+2581 */
    enum shoal_err e;
    const unsigned char *t = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_decode(t + i, n - i, &cp);
        if (v->wpm_strip_accents)
            cp = unicode_nfd_first(cp);
        unsigned f = unicode_flags(cp);
        if (f & UCF_WHITESPACE) {
            if (w > 3 && (e = cut_word(v, buf, w, out)))
                return e;
            w = 3;
            continue;
        }
        if (cp == 0 || cp == 0xFFFD || (f & UCF_CONTROL))
            continue;
        if (v->wpm_strip_accents && (f & UCF_MARK))
            continue;
        uint32_t lc = v->wpm_lowercase ? unicode_tolower(cp) : cp;
        if ((f & UCF_PUNCT) || (cp < 0x7F && (f & UCF_SYMBOL)) || is_chinese_char(cp)) {
            /* A word of its own. */
            if (w > 3 && (e = cut_word(v, buf, w, out)))
                return e;
            w = 3 + shoal_utf8_encode(lc, buf + 3);
            if ((e = cut_word(v, buf, w, out)))
                return e;
            w = 3;
            continue;
        }
        w += shoal_utf8_encode(lc, buf + w);
    }
    if (w > 3)
        return cut_word(v, buf, w, out);
    return SHOAL_OK;
}
