/* tok_spm.c: the SentencePiece-style tokenizer (model "llama") as llama.cpp
 * runs it: spaces become U+2581, the text splits into characters, and the
 * adjacent pair joining into the best-scoring token merges first (ties:
 * leftmost); leftovers fall back to <0xNN> byte tokens. Invariant: symbols
 * are slices of the escaped text, so no string is built per lookup. */
#include "tokenizer_internal.h"

#include <string.h>

struct spm_sym {
    int32_t prev, next;
    uint32_t off, n;
    int32_t id; /* -1: the text is no token */
};

struct spm_pair {
    int32_t left, right;
    float score;
    uint32_t size;
    int32_t id;
};

static bool pair_before(const struct spm_pair *a, const struct spm_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void pq_push(struct spm_pair *h, size_t *n, struct spm_pair x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pair_before(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static struct spm_pair pq_pop(struct spm_pair *h, size_t *n)
{
    struct spm_pair top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        const struct spm_pair *bp = &last;
        if (l < *n && pair_before(&h[l], bp)) {
            b = l;
            bp = &h[l];
        }
        if (r < *n && pair_before(&h[r], bp))
            b = r;
        if (b == i)
            break;
        h[i] = h[b];
        i = b;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

/* The token that symbols a (at off, ids, n bytes) and the one after it
 * join into, or -1. */
static int32_t join(const struct engine_vocab *v, const char *buf, int32_t a_id, uint32_t a_off,
                    int32_t b_id, uint32_t size)
{
    int32_t id, unused;
    if (a_id >= 0 && b_id >= 0) {
        /* Both sides are tokens: their join is in the pair table or is no
         * token at all. */
        return vocab_merge_find(v, a_id, b_id, &unused, &id) ? id : -1;
    }
    /* A character that is no token (it needs byte fallback) may still
     * start or end one in a strange vocabulary: look the text up. */
    return size <= v->max_token_len ? vocab_find(v, buf + a_off, size) : -1;
}

static void try_pair(const struct engine_vocab *v, const char *buf, struct spm_sym *sym,
                     int32_t left, int32_t right, struct spm_pair *heap, size_t *n_heap)
{
    if (left < 0 || right < 0)
        return;
    uint32_t size = sym[left].n + sym[right].n;
    int32_t id = join(v, buf, sym[left].id, sym[left].off, sym[right].id, size);
    if (id < 0)
        return;
    pq_push(heap, n_heap, (struct spm_pair){left, right, v->scores[id], size, id});
}

static enum shoal_err emit_symbol(const struct engine_vocab *v, const char *buf, int32_t id,
                                  uint32_t off, uint32_t n, struct engine_tokens *out)
{
    if (id >= 0)
        return tok_push(out, id);
    /* Not a token: its bytes as byte tokens (skipped when the vocabulary
     * has neither <0xNN> nor a single-byte token). */
    enum shoal_err e;
    for (uint32_t k = 0; k < n; k++) {
        int32_t b = v->byte_tok[(unsigned char)buf[off + k]];
        if (b >= 0 && (e = tok_push(out, b)))
            return e;
    }
    return SHOAL_OK;
}

#define SHORT_WORD 32

/* Words of up to SHORT_WORD symbols, most of them: the same merges as the
 * heap in merge_range (best score, then leftmost), found by scanning a
 * compacted array, which beats heap upkeep at this size. */
static enum shoal_err merge_short(const struct engine_vocab *v, const char *buf,
                                  const struct spm_sym *in, int32_t first, int32_t last,
                                  struct engine_tokens *out)
{
    struct {
        int32_t id, res; /* res: the join with the next symbol, -1 none */
        uint32_t off, n;
        float score;
    } w[SHORT_WORD];
    size_t m = (size_t)(last - first);
    for (size_t i = 0; i < m; i++) {
        w[i].id = in[first + (int32_t)i].id;
        w[i].off = in[first + (int32_t)i].off;
        w[i].n = in[first + (int32_t)i].n;
    }
    for (size_t i = 0; i + 1 < m; i++) {
        w[i].res = join(v, buf, w[i].id, w[i].off, w[i + 1].id, w[i].n + w[i + 1].n);
        w[i].score = w[i].res >= 0 ? v->scores[w[i].res] : 0;
    }
    while (m > 1) {
        size_t best = m;
        for (size_t i = 0; i + 1 < m; i++) {
            if (w[i].res >= 0 && (best == m || w[i].score > w[best].score))
                best = i;
        }
        if (best == m)
            break;
        w[best].id = w[best].res;
        w[best].n += w[best + 1].n;
        for (size_t i = best + 1; i + 1 < m; i++)
            w[i] = w[i + 1];
        m--;
        for (size_t i = best > 0 ? best - 1 : 0; i <= best && i + 1 < m; i++) {
            w[i].res = join(v, buf, w[i].id, w[i].off, w[i + 1].id, w[i].n + w[i + 1].n);
            w[i].score = w[i].res >= 0 ? v->scores[w[i].res] : 0;
        }
        if (best + 1 >= m)
            w[best].res = -1; /* the last symbol starts no pair */
    }
    enum shoal_err e;
    for (size_t i = 0; i < m; i++) {
        if ((e = emit_symbol(v, buf, w[i].id, w[i].off, w[i].n, out)))
            return e;
    }
    return SHOAL_OK;
}

/* Merge symbols [first, last) and append their tokens. Hot: runs once per
 * word of every SPM prompt. */
static enum shoal_err merge_range(const struct engine_vocab *v, const char *buf,
                                  struct spm_sym *sym, int32_t first, int32_t last,
                                  struct spm_pair *heap, struct engine_tokens *out)
{
    if (last - first <= SHORT_WORD)
        return merge_short(v, buf, sym, first, last, out);
    size_t n_heap = 0;
    sym[first].prev = -1;
    sym[last - 1].next = -1;
    for (int32_t i = first + 1; i < last; i++)
        try_pair(v, buf, sym, i - 1, i, heap, &n_heap);
    while (n_heap > 0) {
        struct spm_pair p = pq_pop(heap, &n_heap);
        struct spm_sym *l = &sym[p.left], *r = &sym[p.right];
        /* Stale: one side was merged away, or grew. */
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue;
        l->n += r->n;
        l->id = p.id;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = p.left;
        try_pair(v, buf, sym, l->prev, p.left, heap, &n_heap);
        try_pair(v, buf, sym, p.left, l->next, heap, &n_heap);
    }
    enum shoal_err e;
    for (int32_t i = first; i != -1; i = sym[i].next) {
        if ((e = emit_symbol(v, buf, sym[i].id, sym[i].off, sym[i].n, out)))
            return e;
    }
    return SHOAL_OK;
}

static bool is_escaped_space(const char *buf, uint32_t off, uint32_t n)
{
    return n == 3 && memcmp(buf + off, "\xE2\x96\x81", 3) == 0;
}

enum shoal_err spm_encode(const struct engine_vocab *v, const char *text, size_t n,
                          bool space_prefix, struct tok_scratch *s, struct engine_tokens *out)
{
    /* Escape: ' ' -> U+2581, with the prefix space first. */
    size_t cap = (n + 1) * 3;
    if (tok_grow((void **)&s->buf, &s->buf_cap, cap, 1) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    char *buf = s->buf;
    size_t len = 0;
    if (space_prefix) {
        memcpy(buf, "\xE2\x96\x81", 3);
        len = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') {
            memcpy(buf + len, "\xE2\x96\x81", 3);
            len += 3;
        } else {
            buf[len++] = text[i];
        }
    }
    if (len == 0)
        return SHOAL_OK;

    /* Symbols: one per character; each byte of invalid UTF-8 is a symbol
     * of its own. (llama.cpp takes the length from the lead byte alone, so
     * a broken sequence swallows what follows, an escaped space included,
     * and the text does not come back; valid text splits the same.) */
    if (tok_grow(&s->sym, &s->sym_cap, len, sizeof(struct spm_sym)) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    struct spm_sym *sym = s->sym;
    int32_t n_sym = 0;
    for (size_t off = 0; off < len;) {
        uint32_t cp;
        size_t l = utf8_decode((const unsigned char *)buf + off, len - off, &cp);
        int32_t id = l == 1 ? v->char_tok[(unsigned char)buf[off]] : vocab_find(v, buf + off, l);
        sym[n_sym] = (struct spm_sym){n_sym - 1, n_sym + 1, (uint32_t)off, (uint32_t)l, id};
        n_sym++;
        off += l;
    }
    /* Each merge adds at most two pairs to the initial n - 1. */
    if (tok_grow(&s->heap, &s->heap_cap, (size_t)n_sym * 3 + 1, sizeof(struct spm_pair)) !=
        SHOAL_OK)
        return SHOAL_ERR_NOMEM;

    if (!v->spm_split)
        return merge_range(v, buf, sym, 0, n_sym, s->heap, out);
    /* Word by word: cut before each U+2581 that follows another character,
     * which no merge can cross in this vocabulary (see spm_split_safe);
     * repeated words come from the cache. */
    enum shoal_err e = wcache_reset(s, len / 6);
    if (e)
        return e;
    int32_t start = 0;
    for (int32_t i = 1; i <= n_sym; i++) {
        if (i < n_sym && !(is_escaped_space(buf, sym[i].off, sym[i].n) &&
                           !is_escaped_space(buf, sym[i - 1].off, sym[i - 1].n)))
            continue;
        uint32_t off = sym[start].off, wlen = sym[i - 1].off + sym[i - 1].n - off;
        struct wcache_slot *slot = wcache_find(s, buf, off, wlen);
        if (slot && slot->len) {
            e = wcache_emit(s, slot, out);
        } else {
            size_t before = out->n;
            e = merge_range(v, buf, sym, start, i, s->heap, out);
            if (e == SHOAL_OK && slot)
                wcache_put(s, slot, off, wlen, out->ids + before, out->n - before);
        }
        if (e)
            return e;
        start = i;
    }
    return SHOAL_OK;
}
