/* tokenize.c: engine_tokenize: adds BOS/EOS, splits special tokens out of
 * the raw text (always the user-defined ones, control ones only when
 * parse_special is set), and hands each remaining fragment to the
 * vocabulary's tokenizer. Invariant: all scratch belongs to the call; on
 * failure the caller's token list is left exactly as it was. */
#include "tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- Token lists and scratch ---- */

void engine_tokens_init(struct engine_tokens *t, size_t max)
{
    t->ids = NULL;
    t->n = 0;
    t->cap = 0;
    t->max = max;
}

void engine_tokens_fini(struct engine_tokens *t)
{
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

enum shoal_err tok_push(struct engine_tokens *out, int32_t id)
{
    if (out->n == out->cap) {
        if (out->cap >= out->max)
            return SHOAL_ERR_TOO_BIG;
        size_t nc = out->cap ? out->cap * 2 : 64;
        if (nc > out->max)
            nc = out->max;
        if (nc > SIZE_MAX / sizeof(int32_t))
            return SHOAL_ERR_NOMEM;
        int32_t *p = realloc(out->ids, nc * sizeof(*p));
        if (!p)
            return SHOAL_ERR_NOMEM;
        out->ids = p;
        out->cap = nc;
    }
    out->ids[out->n++] = id;
    return SHOAL_OK;
}

enum shoal_err tok_grow_slow(void **p, size_t *cap, size_t need, size_t elem)
{
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return SHOAL_ERR_NOMEM;
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q)
        return SHOAL_ERR_NOMEM;
    *p = q;
    *cap = nc;
    return SHOAL_OK;
}

void tok_scratch_fini(struct tok_scratch *s)
{
    free(s->sym);
    free(s->heap);
    free(s->buf);
    free(s->span);
    free(s->span2);
    free(s->cache);
    free(s->cache_ids);
    memset(s, 0, sizeof(*s));
}

/* ---- Word cache ---- */

enum shoal_err wcache_reset(struct tok_scratch *s, size_t n)
{
    size_t cap = 64;
    while (cap < n && cap < 16384)
        cap *= 2;
    cap *= 2; /* at most half full */
    if (tok_grow((void **)&s->cache, &s->cache_cap, cap, sizeof(*s->cache)) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    memset(s->cache, 0, cap * sizeof(*s->cache));
    s->cache_used = 0;
    s->cache_n_ids = 0;
    /* cache_cap may exceed cap; probing uses the power of two below it. */
    s->cache_cap = cap;
    return SHOAL_OK;
}

struct wcache_slot *wcache_find(struct tok_scratch *s, const char *base, uint32_t off,
                                uint32_t len)
{
    if (len > WCACHE_MAX_WORD || !s->cache_cap)
        return NULL;
    size_t mask = s->cache_cap - 1;
    for (size_t k = (size_t)tok_hash(base + off, len) & mask;; k = (k + 1) & mask) {
        struct wcache_slot *c = &s->cache[k];
        if (c->len == 0)
            return s->cache_used * 2 < s->cache_cap ? c : NULL;
        if (c->len == len && memcmp(base + c->off, base + off, len) == 0)
            return c;
    }
}

enum shoal_err wcache_emit(const struct tok_scratch *s, const struct wcache_slot *slot,
                           struct engine_tokens *out)
{
    enum shoal_err e;
    for (uint32_t j = 0; j < slot->n_ids; j++) {
        if ((e = tok_push(out, s->cache_ids[slot->ids + j])))
            return e;
    }
    return SHOAL_OK;
}

void wcache_put(struct tok_scratch *s, struct wcache_slot *slot, uint32_t off, uint32_t len,
                const int32_t *ids, size_t n)
{
    if (tok_grow((void **)&s->cache_ids, &s->cache_ids_cap, s->cache_n_ids + n,
                 sizeof(int32_t)) != SHOAL_OK)
        return;
    memcpy(s->cache_ids + s->cache_n_ids, ids, n * sizeof(int32_t));
    *slot = (struct wcache_slot){off, len, (uint32_t)s->cache_n_ids, (uint32_t)n};
    s->cache_n_ids += n;
    s->cache_used++;
}

/* ---- Splitting special tokens out of the text ----
 *
 * llama.cpp takes the specials longest first and, for each, cuts every
 * occurrence out of the raw fragments left so far, left to right. The same
 * result comes from one pass: find, at every position, the longest special
 * starting there; then claim candidates in order of (length desc, position
 * asc), each only if its bytes are all still free; a candidate that
 * overlaps a claim falls back to the next shorter special at its position.
 * (Specials of equal length are taken by position, where llama.cpp's order
 * is unspecified.) */

struct frag {
    uint32_t off, len;
    int32_t tok; /* >= 0: a special token; -1: raw text [off, off + len) */
};

struct cand {
    uint32_t pos, len;
    int32_t tok;
};

static bool cand_before(const struct cand *a, const struct cand *b)
{
    return a->len > b->len || (a->len == b->len && a->pos < b->pos);
}

static void heap_push(struct cand *h, size_t *n, struct cand c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_before(&c, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static struct cand heap_pop(struct cand *h, size_t *n)
{
    struct cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const struct cand *bc = &last;
        if (l < *n && cand_before(&h[l], bc)) {
            best = l;
            bc = &h[l];
        }
        if (r < *n && cand_before(&h[r], bc))
            best = r;
        if (best == i)
            break;
        h[i] = h[best];
        i = best;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

static bool special_active(const struct engine_vocab *v, int32_t tok, bool parse_special)
{
    return tok >= 0 && (parse_special || tok_always_special(v->attr[tok]));
}

/* The longest active special at text[pos..) shorter than below; len 0 if none. */
static struct cand longest_at(const struct engine_vocab *v, const unsigned char *t, size_t n,
                              size_t pos, size_t below, bool parse_special)
{
    const struct special_trie *tr = &v->specials;
    struct cand best = {(uint32_t)pos, 0, -1};
    uint32_t node = tr->root[t[pos]];
    size_t depth = 1;
    while (node && depth < below) {
        int32_t tok = tr->nodes[node].token;
        if (special_active(v, tok, parse_special)) {
            best.len = (uint32_t)depth;
            best.tok = tok;
        }
        if (pos + depth >= n)
            break;
        unsigned char c = t[pos + depth];
        uint32_t k = tr->nodes[node].first_child;
        while (k && tr->nodes[k].byte != c)
            k = tr->nodes[k].next_sibling;
        node = k;
        depth++;
    }
    return best;
}

static int claim_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static bool is_c_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static enum shoal_err add_frag(struct frag **f, size_t *n, size_t *cap, struct frag x)
{
    if (tok_grow((void **)f, cap, *n + 1, sizeof(**f)) != SHOAL_OK)
        return SHOAL_ERR_NOMEM;
    (*f)[(*n)++] = x;
    return SHOAL_OK;
}

static enum shoal_err partition(const struct engine_vocab *v, const char *text, size_t n,
                                bool parse_special, struct frag **frags, size_t *n_frags,
                                size_t *frag_cap)
{
    const unsigned char *t = (const unsigned char *)text;
    const struct special_trie *tr = &v->specials;
    const uint8_t *first = parse_special ? tr->first_all : tr->first_user;
    bool any = parse_special ? tr->n_nodes > 1 : tr->any_user;
    size_t p = 0;
    /* Fast path: most text contains no byte a special could start with. */
    if (any) {
        while (p < n && !(first[t[p] >> 3] & (1u << (t[p] & 7))))
            p++;
    }
    if (!any || p == n)
        return n ? add_frag(frags, n_frags, frag_cap, (struct frag){0, (uint32_t)n, -1})
                 : SHOAL_OK;

    enum shoal_err e = SHOAL_OK;
    struct cand *heap = NULL, *claims = NULL;
    size_t n_heap = 0, heap_cap = 0, n_claims = 0, claims_cap = 0;
    uint8_t *blocked = NULL; /* 0 free, 1 claimed, 2 stripped whitespace */
    for (; p < n; p++) {
        if (!(first[t[p] >> 3] & (1u << (t[p] & 7))))
            continue;
        struct cand c = longest_at(v, t, n, p, SIZE_MAX, parse_special);
        if (!c.len)
            continue;
        if (tok_grow((void **)&heap, &heap_cap, n_heap + 1, sizeof(*heap)) != SHOAL_OK) {
            e = SHOAL_ERR_NOMEM;
            goto done;
        }
        heap_push(heap, &n_heap, c);
    }
    if (n_heap == 0) {
        e = add_frag(frags, n_frags, frag_cap, (struct frag){0, (uint32_t)n, -1});
        goto done;
    }
    blocked = calloc(n, 1);
    if (!blocked) {
        e = SHOAL_ERR_NOMEM;
        goto done;
    }
    while (n_heap > 0) {
        struct cand c = heap_pop(heap, &n_heap);
        if (blocked[c.pos])
            continue; /* every shorter special here overlaps too */
        size_t i = 0;
        while (i < c.len && !blocked[c.pos + i])
            i++;
        if (i < c.len) {
            struct cand shorter = longest_at(v, t, n, c.pos, c.len, parse_special);
            if (shorter.len)
                heap_push(heap, &n_heap, shorter); /* reuses the slot just popped */
            continue;
        }
        memset(blocked + c.pos, 1, c.len);
        uint8_t a = v->attr[c.tok];
        if (a & TOK_RSTRIP) {
            for (size_t q = c.pos + c.len; q < n && !blocked[q] && is_c_space(t[q]); q++)
                blocked[q] = 2;
        }
        if (a & TOK_LSTRIP) {
            for (size_t q = c.pos; q > 0 && !blocked[q - 1] && is_c_space(t[q - 1]); q--)
                blocked[q - 1] = 2;
        }
        if (tok_grow((void **)&claims, &claims_cap, n_claims + 1, sizeof(*claims)) != SHOAL_OK) {
            e = SHOAL_ERR_NOMEM;
            goto done;
        }
        claims[n_claims++] = c;
    }
    qsort(claims, n_claims, sizeof(*claims), claim_cmp);
    size_t pos = 0;
    for (size_t k = 0; k <= n_claims && e == SHOAL_OK; k++) {
        size_t end = k < n_claims ? claims[k].pos : n;
        /* Raw text: the maximal free runs before the next claim. */
        while (pos < end) {
            while (pos < end && blocked[pos])
                pos++;
            size_t s = pos;
            while (pos < end && !blocked[pos])
                pos++;
            if (pos > s &&
                (e = add_frag(frags, n_frags, frag_cap,
                              (struct frag){(uint32_t)s, (uint32_t)(pos - s), -1})))
                break;
        }
        if (k < n_claims && e == SHOAL_OK) {
            e = add_frag(frags, n_frags, frag_cap,
                         (struct frag){claims[k].pos, claims[k].len, claims[k].tok});
            pos = claims[k].pos + claims[k].len;
        }
    }
done:
    free(heap);
    free(claims);
    free(blocked);
    return e;
}

enum shoal_err engine_tokenize(const struct engine_vocab *v, const char *text, size_t n,
                               bool add_special, bool parse_special, struct engine_tokens *out)
{
    if (!v || !out || (!text && n))
        return SHOAL_ERR_INVALID;
    if (n > UINT32_MAX / 4)
        return SHOAL_ERR_TOO_BIG; /* offsets are 32-bit; SPM text may triple */
    size_t n0 = out->n;
    struct tok_scratch s = {0};
    struct frag *frags = NULL;
    size_t n_frags = 0, frag_cap = 0;
    enum shoal_err e = SHOAL_OK;

    if (add_special && v->add_bos && (e = tok_push(out, v->bos)))
        goto done;
    if ((e = partition(v, text, n, parse_special, &frags, &n_frags, &frag_cap)))
        goto done;
    bool prev_special = true; /* SPM: a fragment after a special gets the prefix space */
    for (size_t i = 0; i < n_frags && e == SHOAL_OK; i++) {
        const struct frag *f = &frags[i];
        if (f->tok >= 0) {
            e = tok_push(out, f->tok);
            prev_special = true;
            continue;
        }
        switch (v->kind) {
        case ENGINE_VOCAB_SPM:
            e = spm_encode(v, text + f->off, f->len, v->add_space_prefix && prev_special, &s, out);
            break;
        case ENGINE_VOCAB_BPE:
            e = bpe_encode(v, text + f->off, f->len, &s, out);
            break;
        case ENGINE_VOCAB_WPM:
            e = wpm_encode(v, text + f->off, f->len, &s, out);
            break;
        default:
            e = SHOAL_ERR_INVALID;
            break;
        }
        prev_special = false;
    }
    if (e == SHOAL_OK && add_special) {
        if (v->kind == ENGINE_VOCAB_WPM) {
            if (v->add_sep)
                e = tok_push(out, v->sep);
        } else if (v->add_eos) {
            e = tok_push(out, v->eos);
        }
    }
done:
    free(frags);
    tok_scratch_fini(&s);
    if (e != SHOAL_OK)
        out->n = n0;
    return e;
}
