/* tok_bpe.c: byte-level BPE (model "gpt2"): the pre-tokenizer cuts words,
 * each byte starts as its GPT-2 symbol, and the adjacent pair with the
 * lowest merge rank merges first (ties: leftmost), as llama.cpp and HF do.
 * Invariant: symbols carry token ids, so a merge lookup is one hash probe
 * on an id pair; no string is built per word. */
#include "tokenizer_internal.h"

#include <string.h>

struct bpe_sym {
    int32_t prev, next;
    int32_t id;  /* -1: a byte the vocabulary has no symbol for */
    uint32_t n;  /* bytes covered; 0 once merged into the left neighbour */
};

struct bpe_pair {
    int32_t left, right;
    int32_t rank, id;
    uint32_t size;
};

static bool pair_before(const struct bpe_pair *a, const struct bpe_pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void pq_push(struct bpe_pair *h, size_t *n, struct bpe_pair x)
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

static struct bpe_pair pq_pop(struct bpe_pair *h, size_t *n)
{
    struct bpe_pair top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        const struct bpe_pair *bp = &last;
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

static void try_pair(const struct engine_vocab *v, const struct bpe_sym *sym, int32_t left,
                     int32_t right, struct bpe_pair *heap, size_t *n_heap)
{
    if (left < 0 || right < 0)
        return;
    int32_t rank, id;
    if (!vocab_merge_find(v, sym[left].id, sym[right].id, &rank, &id))
        return;
    pq_push(heap, n_heap, (struct bpe_pair){left, right, rank, id, sym[left].n + sym[right].n});
}

#define SHORT_WORD 32

/* Words of up to SHORT_WORD bytes, most of them: the same merges as the
 * heap below (lowest rank, then leftmost), found by scanning a compacted
 * array of pairs, which beats heap upkeep at this size. */
static enum shoal_err merge_short(const struct engine_vocab *v, const unsigned char *w, size_t n,
                                  struct engine_tokens *out)
{
    /* sym[i]: the symbol's id, and the rank and result of merging it with
     * sym[i + 1] (INT32_MAX: no merge). */
    struct {
        int32_t id, rank, res;
    } sym[SHORT_WORD];
    size_t m = n;
    for (size_t i = 0; i < m; i++)
        sym[i].id = v->byte_tok[w[i]];
    for (size_t i = 0; i + 1 < m; i++) {
        if (!vocab_merge_find(v, sym[i].id, sym[i + 1].id, &sym[i].rank, &sym[i].res))
            sym[i].rank = INT32_MAX;
    }
    while (m > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < m; i++) {
            if (sym[i].rank < sym[best].rank)
                best = i;
        }
        if (sym[best].rank == INT32_MAX)
            break;
        sym[best].id = sym[best].res;
        for (size_t i = best + 1; i + 1 < m; i++)
            sym[i] = sym[i + 1];
        m--;
        if (best > 0 && !vocab_merge_find(v, sym[best - 1].id, sym[best].id, &sym[best - 1].rank,
                                          &sym[best - 1].res))
            sym[best - 1].rank = INT32_MAX;
        if (best + 1 < m &&
            !vocab_merge_find(v, sym[best].id, sym[best + 1].id, &sym[best].rank, &sym[best].res))
            sym[best].rank = INT32_MAX;
    }
    enum shoal_err e;
    for (size_t i = 0; i < m; i++) {
        /* A byte without a symbol is dropped, as llama.cpp does. */
        if (sym[i].id >= 0 && (e = tok_push(out, sym[i].id)))
            return e;
    }
    return SHOAL_OK;
}

/* Hot: every word of every BPE prompt. */
enum shoal_err bpe_merge_word(const struct engine_vocab *v, const unsigned char *w, size_t n,
                              struct tok_scratch *s, struct engine_tokens *out)
{
    enum shoal_err e;
    if (n == 1) {
        /* The common single-byte word needs no merging. */
        return v->byte_tok[w[0]] >= 0 ? tok_push(out, v->byte_tok[w[0]]) : SHOAL_OK;
    }
    if (n <= SHORT_WORD)
        return merge_short(v, w, n, out);
    if (tok_grow(&s->sym, &s->sym_cap, n, sizeof(struct bpe_sym)) != SHOAL_OK ||
        tok_grow(&s->heap, &s->heap_cap, n * 3, sizeof(struct bpe_pair)) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    struct bpe_sym *sym = s->sym;
    struct bpe_pair *heap = s->heap;
    size_t n_heap = 0;
    for (size_t i = 0; i < n; i++)
        sym[i] = (struct bpe_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, v->byte_tok[w[i]],
                                  1};
    for (size_t i = 1; i < n; i++)
        try_pair(v, sym, (int32_t)i - 1, (int32_t)i, heap, &n_heap);
    while (n_heap > 0) {
        struct bpe_pair p = pq_pop(heap, &n_heap);
        struct bpe_sym *l = &sym[p.left], *r = &sym[p.right];
        /* Stale: a side was merged away or has grown since the push. */
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue;
        l->id = p.id;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = p.left;
        try_pair(v, sym, l->prev, p.left, heap, &n_heap);
        try_pair(v, sym, p.left, l->next, heap, &n_heap);
    }
    for (int32_t i = 0; i != -1; i = sym[i].next) {
        /* A byte without a symbol is dropped, as llama.cpp does. */
        if (sym[i].id >= 0 && (e = tok_push(out, sym[i].id)))
            return e;
    }
    return SHOAL_OK;
}

enum shoal_err bpe_encode(const struct engine_vocab *v, const char *text, size_t n,
                          struct tok_scratch *s, struct engine_tokens *out)
{
    size_t n_spans;
    const uint32_t *spans;
    enum shoal_err e = pretok_split(v->pretok, text, n, s, &n_spans, &spans);
    if (e || (e = wcache_reset(s, n_spans)))
        return e;
    for (size_t i = 0; i < n_spans; i++) {
        uint32_t off = spans[2 * i], len = spans[2 * i + 1];
        const unsigned char *w = (const unsigned char *)text + off;
        if (len == 1) {
            if (v->byte_tok[w[0]] >= 0 && (e = tok_push(out, v->byte_tok[w[0]])))
                return e;
            continue;
        }
        struct wcache_slot *slot = wcache_find(s, text, off, len);
        if (slot && slot->len) {
            if ((e = wcache_emit(s, slot, out)))
                return e;
            continue;
        }
        size_t before = out->n;
        int32_t id = -1;
        if (v->ignore_merges && len <= v->max_token_len) {
            /* Llama-3 style: a word that is a token is taken whole. */
            char enc[2 * VOCAB_MAX_TOKEN_LEN];
            size_t k = 0;
            for (size_t j = 0; j < len; j++)
                k += shoal_utf8_encode(unicode_byte_cp(w[j]), enc + k);
            id = vocab_find(v, enc, k);
        }
        e = id >= 0 ? tok_push(out, id) : bpe_merge_word(v, w, len, s, out);
        if (e)
            return e;
        if (slot)
            wcache_put(s, slot, off, len, out->ids + before, out->n - before);
    }
    return SHOAL_OK;
}
