/* vocab.c: builds a vocabulary from tokenizer.ggml.* metadata (texts,
 * scores, types, merges, special ids, flags) and the lookups the tokenizers
 * use. The file is hostile: every length, id and merge is checked and a
 * rejection names the key. Invariant: a built vocabulary is never written
 * again, so any thread may tokenize with it. */
#include "tokenizer_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Lookups ---- */

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t c = 16;
    while (c < n && c < (1u << 31))
        c <<= 1;
    return c;
}

int32_t vocab_find(const struct engine_vocab *v, const char *s, size_t n)
{
    uint64_t h = tok_hash(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & v->map.mask;; i = (i + 1) & v->map.mask) {
        uint64_t slot = v->map.slots[i];
        if (slot == 0)
            return -1;
        if ((uint32_t)(slot >> 32) != tag)
            continue;
        int32_t id = (int32_t)(uint32_t)slot - 1;
        size_t len;
        const char *t = vocab_tok_text(v, id, &len);
        if (len == n && memcmp(t, s, n) == 0)
            return id;
    }
}

/* Insert id; returns the id already holding the same text, or -1. */
static int32_t map_insert(struct engine_vocab *v, int32_t id)
{
    size_t n;
    const char *s = vocab_tok_text(v, id, &n);
    uint64_t h = tok_hash(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & v->map.mask;; i = (i + 1) & v->map.mask) {
        uint64_t slot = v->map.slots[i];
        if (slot == 0) {
            v->map.slots[i] = ((uint64_t)tag << 32) | (uint32_t)(id + 1);
            return -1;
        }
        if ((uint32_t)(slot >> 32) != tag)
            continue;
        int32_t other = (int32_t)(uint32_t)slot - 1;
        size_t len;
        const char *t = vocab_tok_text(v, other, &len);
        if (len == n && memcmp(t, s, n) == 0)
            return other;
    }
}

/* ---- Building ---- */

static enum shoal_err fail_at(struct shoal_diag *d, enum shoal_err err, const char *key,
                              const char *fmt, ...) SHOAL_PRINTF(4, 5);
static enum shoal_err fail_at(struct shoal_diag *d, enum shoal_err err, const char *key,
                              const char *fmt, ...)
{
    if (d) {
        shoal_diag_path(d, key);
        va_list ap;
        va_start(ap, fmt);
        shoal_diag_setv(d, err, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* Render a token text for a message: printable ASCII kept, the rest \xNN. */
static const char *show(const char *p, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", c);
    }
    buf[o] = '\0';
    return buf;
}

static bool text_eq(const struct engine_vocab *v, int32_t id, const char *s)
{
    size_t n;
    const char *t = vocab_tok_text(v, id, &n);
    return strlen(s) == n && memcmp(t, s, n) == 0;
}

/* Token texts that end a generation turn: llama.cpp makes them CONTROL even
 * when a converter typed them NORMAL, so they are hidden when detokenizing
 * and only parsed as specials when asked. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<|eom_id|>", "<end_of_utterance>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
    "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>", "\xE2\x96\x81<SUF>",
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
    "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>",
};

static bool contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == needle[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

static void apply_name_rules(struct engine_vocab *v, const struct vocab_spec *spec)
{
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(eog_texts); k++) {
        int32_t id = vocab_find(v, eog_texts[k], strlen(eog_texts[k]));
        if (id >= 0)
            v->attr[id] |= TOK_CONTROL;
    }
    /* Per-model whitespace stripping around specials (llama.cpp keys it on
     * the model's name or pre-tokenizer). */
    if (spec->model_name && (contains_ci(spec->model_name, "phi-3") ||
                             contains_ci(spec->model_name, "phi3"))) {
        for (uint32_t id = 0; id < v->n; id++) {
            if (v->attr[id] & TOK_SPECIAL_ANY)
                v->attr[id] |= TOK_RSTRIP;
            if (text_eq(v, (int32_t)id, "</s>"))
                v->attr[id] |= TOK_RSTRIP;
            if (text_eq(v, (int32_t)id, "<unk>") || text_eq(v, (int32_t)id, "<s>") ||
                text_eq(v, (int32_t)id, "<|endoftext|>"))
                v->attr[id] &= (uint8_t)~TOK_RSTRIP;
        }
    }
    if (spec->pre && (strstr(spec->pre, "jina-v2-de") || strstr(spec->pre, "jina-v2-es") ||
                      strstr(spec->pre, "jina-v2-code"))) {
        int32_t id = vocab_find(v, "<mask>", 6);
        if (id >= 0)
            v->attr[id] |= TOK_LSTRIP;
    }
}

static enum shoal_err build_merges(struct engine_vocab *v, const struct vocab_spec *spec,
                                   struct shoal_diag *d)
{
    v->n_merges = spec->n_merges;
    uint32_t cap = pow2_at_least((uint64_t)spec->n_merges * 2 + 1);
    v->merges.slots = malloc((size_t)cap * sizeof(*v->merges.slots));
    if (!v->merges.slots)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory for %u merges", spec->n_merges);
    v->merges.mask = cap - 1;
    for (uint32_t i = 0; i < cap; i++)
        v->merges.slots[i].key = UINT64_MAX;
    char key[64], buf[96], buf2[96];
    for (uint32_t r = 0; r < spec->n_merges; r++) {
        const char *m = spec->merges[r].p;
        size_t n = spec->merges[r].n;
#define MERGE_KEY (snprintf(key, sizeof(key), "tokenizer.ggml.merges[%u]", r), key)
        /* "left right": the separator is the first space after the first
         * byte, so a left part may itself be a space. */
        const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
        if (!sp || sp == m + n - 1)
            return fail_at(d, SHOAL_ERR_INVALID, MERGE_KEY, "merge '%s' is not 'left right'",
                           show(m, n, buf, sizeof(buf)));
        size_t ln = (size_t)(sp - m), rn = n - ln - 1;
        int32_t l = vocab_find(v, m, ln), rt = vocab_find(v, sp + 1, rn);
        if (l < 0 || rt < 0)
            return fail_at(d, SHOAL_ERR_INVALID, MERGE_KEY, "merge part '%s' is not in the vocabulary",
                           l < 0 ? show(m, ln, buf, sizeof(buf)) : show(sp + 1, rn, buf, sizeof(buf)));
        if (ln + rn > VOCAB_MAX_TOKEN_LEN)
            return fail_at(d, SHOAL_ERR_INVALID, MERGE_KEY, "merge result is too long");
        char joined[VOCAB_MAX_TOKEN_LEN];
        memcpy(joined, m, ln);
        memcpy(joined + ln, sp + 1, rn);
        int32_t res = vocab_find(v, joined, ln + rn);
        if (res < 0)
            return fail_at(d, SHOAL_ERR_INVALID, MERGE_KEY, "merge result '%s%s' is not in the vocabulary",
                           show(m, ln, buf, sizeof(buf)), show(sp + 1, rn, buf2, sizeof(buf2)));
        uint64_t k = ((uint64_t)(uint32_t)l << 32) | (uint32_t)rt;
        for (uint32_t i = merge_hash(k, v->merges.mask);; i = (i + 1) & v->merges.mask) {
            struct merge_slot *s = &v->merges.slots[i];
            if (s->key == k)
                break; /* a repeated merge keeps its first (best) rank */
            if (s->key == UINT64_MAX) {
                s->key = k;
                s->rank = (int32_t)r;
                s->id = res;
                break;
            }
        }
#undef MERGE_KEY
    }
    return SHOAL_OK;
}

/* Add text of special token id to the trie. */
static enum shoal_err trie_add(struct special_trie *t, uint32_t *cap, const char *s, size_t n,
                               int32_t id)
{
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        uint32_t child = 0;
        if (node == 0) {
            child = t->root[c];
        } else {
            for (uint32_t k = t->nodes[node].first_child; k; k = t->nodes[k].next_sibling) {
                if (t->nodes[k].byte == c) {
                    child = k;
                    break;
                }
            }
        }
        if (!child) {
            if (t->n_nodes == *cap) {
                uint32_t nc = *cap * 2;
                struct special_node *p = realloc(t->nodes, (size_t)nc * sizeof(*p));
                if (!p)
                    return SHOAL_ERR_NOMEM;
                t->nodes = p;
                *cap = nc;
            }
            child = t->n_nodes++;
            t->nodes[child] = (struct special_node){0, 0, -1, c};
            if (node == 0) {
                t->root[c] = child;
            } else {
                t->nodes[child].next_sibling = t->nodes[node].first_child;
                t->nodes[node].first_child = child;
            }
        }
        node = child;
    }
    /* Two specials never share a text (the map rejects duplicates). */
    t->nodes[node].token = id;
    return SHOAL_OK;
}

static enum shoal_err build_specials(struct engine_vocab *v)
{
    struct special_trie *t = &v->specials;
    uint32_t cap = 64;
    t->nodes = malloc(cap * sizeof(*t->nodes));
    if (!t->nodes)
        return SHOAL_ERR_NOMEM;
    t->nodes[0] = (struct special_node){0, 0, -1, 0};
    t->n_nodes = 1;
    for (uint32_t id = 0; id < v->n; id++) {
        uint8_t a = v->attr[id];
        size_t n;
        const char *s = vocab_tok_text(v, (int32_t)id, &n);
        if (!(a & TOK_SPECIAL_ANY) || n == 0)
            continue;
        if (trie_add(t, &cap, s, n, (int32_t)id) != SHOAL_OK)
            return SHOAL_ERR_NOMEM;
        unsigned char c = (unsigned char)s[0];
        t->first_all[c >> 3] |= (uint8_t)(1u << (c & 7));
        if (tok_always_special(a)) {
            t->first_user[c >> 3] |= (uint8_t)(1u << (c & 7));
            t->any_user = true;
        }
    }
    return SHOAL_OK;
}

static int hexval(char c)
{
    return shoal_hex_digit(c);
}

/* What detokenizing token id emits, appended to v->piece at *len. */
static enum shoal_err build_piece(struct engine_vocab *v, uint32_t id, size_t *len, size_t *cap,
                                  struct shoal_diag *d)
{
    size_t n;
    const char *s = vocab_tok_text(v, (int32_t)id, &n);
    uint8_t a = v->attr[id];
    /* A piece is never longer than its text: ▁ (3 bytes) becomes 1, a
     * byte-map character (1-2 bytes) becomes 1, anything else stays. */
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap + n + 1) * 2;
        char *p = realloc(v->piece, nc);
        if (!p)
            return SHOAL_ERR_NOMEM;
        v->piece = p;
        *cap = nc;
    }
    char *o = v->piece + *len;
    size_t k = 0;
    if (a & (TOK_HIDDEN | TOK_USER_DEFINED)) {
        memcpy(o, s, n);
        k = n;
    } else if (a & TOK_NORMAL) {
        if (v->kind == ENGINE_VOCAB_BPE) {
            for (size_t i = 0; i < n;) {
                uint32_t cp;
                size_t l = utf8_decode((const unsigned char *)s + i, n - i, &cp);
                int b = unicode_cp_byte(cp); /* U+FFFD (invalid input) is no byte's */
                if (b >= 0) {
                    o[k++] = (char)b;
                } else {
                    /* Not a byte symbol: keep the text as it is. */
                    memcpy(o + k, s + i, l);
                    k += l;
                }
                i += l;
            }
        } else {
            for (size_t i = 0; i < n;) {
                if (i + 3 <= n && memcmp(s + i, "\xE2\x96\x81", 3) == 0) {
                    o[k++] = ' ';
                    i += 3;
                } else {
                    o[k++] = s[i++];
                }
            }
        }
    } else if (a & TOK_BYTE) {
        if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || hexval(s[3]) < 0 ||
            hexval(s[4]) < 0) {
            char key[64], buf[64];
            snprintf(key, sizeof(key), "tokenizer.ggml.tokens[%u]", id);
            return fail_at(d, SHOAL_ERR_INVALID, key,
                           "byte token '%s' is not of the form <0xHH>", show(s, n, buf, sizeof(buf)));
        }
        o[k++] = (char)(hexval(s[3]) * 16 + hexval(s[4]));
    }
    /* UNUSED and UNDEFINED tokens detokenize to nothing, as in llama.cpp. */
    *len += k;
    return SHOAL_OK;
}

static void byte_tables(struct engine_vocab *v)
{
    for (unsigned b = 0; b < 256; b++) {
        int32_t id = -1;
        if (v->kind == ENGINE_VOCAB_BPE) {
            char u[4];
            size_t l = shoal_utf8_encode(unicode_byte_cp((uint8_t)b), u);
            id = vocab_find(v, u, l);
        } else if (v->kind == ENGINE_VOCAB_SPM) {
            char hex[7];
            snprintf(hex, sizeof(hex), "<0x%02X>", b);
            id = vocab_find(v, hex, 6);
            if (id < 0) {
                char c = (char)b;
                id = vocab_find(v, &c, 1);
            }
            if (id < 0)
                id = v->unk;
        }
        v->byte_tok[b] = id;
    }
}

/* SPM merges adjacent symbols whose texts join into a token. Listing, for
 * every token, each way it splits into two tokens turns that test into one
 * probe on an id pair, as for BPE. Bounded by the total text size. */
static enum shoal_err build_spm_pairs(struct engine_vocab *v)
{
    uint64_t n_pairs = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            uint32_t cap = pow2_at_least(n_pairs * 2 + 1);
            v->merges.slots = malloc((size_t)cap * sizeof(*v->merges.slots));
            if (!v->merges.slots)
                return SHOAL_ERR_NOMEM;
            v->merges.mask = cap - 1;
            for (uint32_t i = 0; i < cap; i++)
                v->merges.slots[i].key = UINT64_MAX;
        }
        for (uint32_t id = 0; id < v->n; id++) {
            size_t n;
            const char *t = vocab_tok_text(v, (int32_t)id, &n);
            for (size_t k = 1; k < n; k++) {
                int32_t a = vocab_find(v, t, k), b = a >= 0 ? vocab_find(v, t + k, n - k) : -1;
                if (b < 0)
                    continue;
                if (pass == 0) {
                    n_pairs++;
                    continue;
                }
                /* A pair has one text, so one result: no duplicates. */
                uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
                uint32_t i = merge_hash(key, v->merges.mask);
                while (v->merges.slots[i].key != UINT64_MAX)
                    i = (i + 1) & v->merges.mask;
                v->merges.slots[i] = (struct merge_slot){key, 0, (int32_t)id};
            }
        }
    }
    for (unsigned c = 0; c < 256; c++) {
        char b = (char)c;
        v->char_tok[c] = vocab_find(v, &b, 1);
    }
    return SHOAL_OK;
}

/* SPM may merge word by word when no token has "▁" after another
 * character: then no merge can cross the start of a ▁-run. */
static bool spm_split_safe(const struct engine_vocab *v)
{
    for (uint32_t id = 0; id < v->n; id++) {
        size_t n;
        const char *s = vocab_tok_text(v, (int32_t)id, &n);
        for (size_t i = 1; i + 3 <= n; i++) {
            if (memcmp(s + i, "\xE2\x96\x81", 3) != 0)
                continue;
            if (i < 3 || memcmp(s + i - 3, "\xE2\x96\x81", 3) != 0)
                return false;
        }
    }
    return true;
}

static enum shoal_err special_id(const struct engine_vocab *v, int32_t given, int32_t dflt,
                                 const char *key, int32_t *out, struct shoal_diag *d)
{
    if (given == VOCAB_ID_UNSET) {
        *out = dflt >= 0 && (uint32_t)dflt < v->n ? dflt : -1;
        return SHOAL_OK;
    }
    if (given == -1) {
        *out = -1; /* the file says there is none */
        return SHOAL_OK;
    }
    if (given < 0 || (uint32_t)given >= v->n)
        return fail_at(d, SHOAL_ERR_INVALID, key, "token id %d is outside the vocabulary (%u tokens)",
                       given, v->n);
    *out = given;
    return SHOAL_OK;
}

enum shoal_err vocab_build(const struct vocab_spec *spec, struct engine_vocab **out,
                           struct shoal_diag *d)
{
    enum shoal_err e;
    char key[64], buf[96];
    if (spec->kind != ENGINE_VOCAB_SPM && spec->kind != ENGINE_VOCAB_BPE &&
        spec->kind != ENGINE_VOCAB_WPM)
        return fail_at(d, SHOAL_ERR_UNSUPPORTED, "tokenizer.ggml.model", "unknown tokenizer kind");
    if (spec->n_tokens == 0)
        return fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.tokens", "the vocabulary is empty");
    if (spec->n_tokens > VOCAB_MAX_TOKENS)
        return fail_at(d, SHOAL_ERR_TOO_BIG, "tokenizer.ggml.tokens",
                       "%u tokens; at most %u are supported", spec->n_tokens, VOCAB_MAX_TOKENS);
    uint64_t total = 0;
    for (uint32_t i = 0; i < spec->n_tokens; i++) {
        if (spec->tokens[i].n > VOCAB_MAX_TOKEN_LEN) {
            snprintf(key, sizeof(key), "tokenizer.ggml.tokens[%u]", i);
            return fail_at(d, SHOAL_ERR_TOO_BIG, key, "token is %zu bytes long; at most %u",
                           spec->tokens[i].n, VOCAB_MAX_TOKEN_LEN);
        }
        total += spec->tokens[i].n + 1;
    }
    if (total > VOCAB_MAX_TEXT_BYTES)
        return fail_at(d, SHOAL_ERR_TOO_BIG, "tokenizer.ggml.tokens",
                       "token texts total %llu bytes; at most %u", (unsigned long long)total,
                       VOCAB_MAX_TEXT_BYTES);

    struct engine_vocab *v = calloc(1, sizeof(*v));
    if (!v)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    uint32_t n = spec->n_tokens;
    v->kind = spec->kind;
    v->n = n;
    v->text = malloc(total);
    v->text_off = malloc(((size_t)n + 1) * sizeof(uint32_t));
    v->scores = malloc((size_t)n * sizeof(float));
    v->attr = malloc(n);
    v->piece_off = malloc(((size_t)n + 1) * sizeof(uint32_t));
    uint32_t map_cap = pow2_at_least((uint64_t)n * 2);
    v->map.slots = calloc(map_cap, sizeof(uint64_t));
    v->map.mask = map_cap - 1;
    if (!v->text || !v->text_off || !v->scores || !v->attr || !v->piece_off || !v->map.slots) {
        e = shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory for %u tokens", n);
        goto fail;
    }
    shoal_strlcpy(v->pre, spec->pre ? spec->pre : "", sizeof(v->pre));

    /* Texts, scores, types. */
    uint32_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        v->text_off[i] = off;
        if (spec->tokens[i].n)
            memcpy(v->text + off, spec->tokens[i].p, spec->tokens[i].n);
        off += (uint32_t)spec->tokens[i].n;
        v->text[off++] = '\0';
        if (spec->tokens[i].n > v->max_token_len)
            v->max_token_len = (uint32_t)spec->tokens[i].n;
        float sc = spec->scores ? spec->scores[i] : 0.0f;
        if (isnan(sc)) {
            snprintf(key, sizeof(key), "tokenizer.ggml.scores[%u]", i);
            e = fail_at(d, SHOAL_ERR_INVALID, key, "score is not a number");
            goto fail;
        }
        v->scores[i] = sc;
        int32_t ty = spec->types ? spec->types[i] : VOCAB_TYPE_NORMAL;
        static const uint8_t attr_of[] = {0, TOK_NORMAL, TOK_UNKNOWN, TOK_CONTROL, TOK_USER_DEFINED,
                                          TOK_UNUSED, TOK_BYTE};
        if (ty < 0 || ty > VOCAB_TYPE_BYTE) {
            snprintf(key, sizeof(key), "tokenizer.ggml.token_type[%u]", i);
            e = fail_at(d, SHOAL_ERR_INVALID, key, "unknown token type %d (0..6)", ty);
            goto fail;
        }
        v->attr[i] = attr_of[ty];
    }
    v->text_off[n] = off;
    for (uint32_t i = 0; i < n; i++) {
        if (spec->tokens[i].n == 0)
            continue; /* an empty text can never be matched */
        int32_t other = map_insert(v, (int32_t)i);
        if (other >= 0) {
            snprintf(key, sizeof(key), "tokenizer.ggml.tokens[%u]", i);
            e = fail_at(d, SHOAL_ERR_INVALID, key, "duplicate token '%s' (also id %d)",
                        show(spec->tokens[i].p, spec->tokens[i].n, buf, sizeof(buf)), other);
            goto fail;
        }
    }

    /* Kind defaults, as llama.cpp has them, then the file's word. */
    struct pretok_info info = {0};
    int32_t d_bos = -1, d_eos = -1, d_unk = -1, d_sep = -1, d_pad = -1;
    bool add_bos = false, add_eos = false, add_sep = false, space_prefix = false;
    if (v->kind == ENGINE_VOCAB_SPM) {
        d_bos = 1, d_eos = 2, d_unk = 0;
        add_bos = true, space_prefix = true;
    } else if (v->kind == ENGINE_VOCAB_WPM) {
        d_bos = 101, d_unk = 100, d_sep = 102, d_pad = 0;
        add_bos = true, add_sep = true;
        v->wpm_lowercase = true;
        v->wpm_strip_accents = true;
    } else {
        const char *pre = spec->pre && spec->pre[0] ? spec->pre : "default";
        if (!spec->pre || !spec->pre[0])
            shoal_log(SHOAL_LOG_WARN, "vocab_pre_missing",
                      "BPE vocabulary without tokenizer.ggml.pre: using the 'default' "
                      "pre-tokenizer; output may differ from the model's own tokenizer");
        if ((e = pretok_new(pre, &v->pretok, &info, d)) != SHOAL_OK)
            goto fail;
        if (!spec->pre || !spec->pre[0])
            shoal_strlcpy(v->pre, "default", sizeof(v->pre));
        v->ignore_merges = info.ignore_merges;
        if (info.add_bos >= 0)
            add_bos = info.add_bos;
    }
    if ((e = special_id(v, spec->bos, d_bos, "tokenizer.ggml.bos_token_id", &v->bos, d)) ||
        (e = special_id(v, spec->eos, d_eos, "tokenizer.ggml.eos_token_id", &v->eos, d)) ||
        (e = special_id(v, spec->unk, d_unk, "tokenizer.ggml.unknown_token_id", &v->unk, d)) ||
        (e = special_id(v, spec->sep, d_sep, "tokenizer.ggml.seperator_token_id", &v->sep, d)) ||
        (e = special_id(v, spec->pad, d_pad, "tokenizer.ggml.padding_token_id", &v->pad, d)))
        goto fail;
    if (info.no_bos)
        v->bos = -1;
    v->add_bos = spec->add_bos >= 0 ? spec->add_bos : add_bos;
    v->add_eos = spec->add_eos >= 0 ? spec->add_eos : add_eos;
    v->add_sep = spec->add_sep >= 0 ? spec->add_sep : add_sep;
    v->add_space_prefix = spec->add_space_prefix >= 0 ? spec->add_space_prefix : space_prefix;
    if (v->add_bos && v->bos < 0) {
        e = fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.add_bos_token",
                    "is true, but there is no tokenizer.ggml.bos_token_id");
        goto fail;
    }
    if (v->add_eos && v->eos < 0) {
        e = fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.add_eos_token",
                    "is true, but there is no tokenizer.ggml.eos_token_id");
        goto fail;
    }
    if (v->add_sep && v->sep < 0) {
        e = fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.add_sep_token",
                    "is true, but there is no tokenizer.ggml.seperator_token_id");
        goto fail;
    }

    apply_name_rules(v, spec);
    if (v->kind == ENGINE_VOCAB_BPE) {
        if (spec->n_merges == 0 || !spec->merges) {
            e = fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.merges",
                        "missing: a BPE vocabulary needs its merges");
            goto fail;
        }
        if ((e = build_merges(v, spec, d)) != SHOAL_OK)
            goto fail;
    }
    byte_tables(v);
    if (v->kind == ENGINE_VOCAB_SPM)
        v->spm_split = spm_split_safe(v);
    if (v->kind == ENGINE_VOCAB_SPM && build_spm_pairs(v) != SHOAL_OK) {
        e = shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }

    size_t plen = 0, pcap = total;
    v->piece = malloc(pcap);
    if (!v->piece) {
        e = shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        v->piece_off[i] = (uint32_t)plen;
        if ((e = build_piece(v, i, &plen, &pcap, d)) != SHOAL_OK) {
            if (e == SHOAL_ERR_NOMEM)
                shoal_diag_set(d, e, "out of memory");
            goto fail;
        }
    }
    v->piece_off[n] = (uint32_t)plen;
    if ((e = build_specials(v)) != SHOAL_OK) {
        shoal_diag_set(d, e, "out of memory");
        goto fail;
    }
    *out = v;
    return SHOAL_OK;
fail:
    vocab_free(v);
    return e;
}

void vocab_free(struct engine_vocab *v)
{
    if (!v)
        return;
    free(v->text);
    free(v->text_off);
    free(v->scores);
    free(v->attr);
    free(v->piece);
    free(v->piece_off);
    free(v->map.slots);
    free(v->merges.slots);
    free(v->specials.nodes);
    pretok_free(v->pretok);
    free(v);
}

/* ---- Loading from GGUF ---- */

/* A string key as a C string in buf; NOT_FOUND when absent. */
static enum shoal_err get_cstr(const struct gguf *g, const char *key, char *buf, size_t cap,
                               struct shoal_diag *d)
{
    struct gguf_str s;
    enum shoal_err e = gguf_get_str(g, key, &s, d);
    if (e != SHOAL_OK)
        return e;
    size_t n = s.n < cap - 1 ? (size_t)s.n : cap - 1;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    if (memchr(buf, '\0', n))
        return fail_at(d, SHOAL_ERR_INVALID, key, "contains a NUL byte");
    return SHOAL_OK;
}

/* A token id key. Converters write UINT32_MAX (or -1) for "none". */
static enum shoal_err get_id(const struct gguf *g, const char *key, int32_t *out,
                             struct shoal_diag *d)
{
    uint32_t u;
    enum shoal_err e = gguf_get_u32(g, key, &u, d);
    if (e == SHOAL_ERR_NOT_FOUND)
        return SHOAL_OK;
    if (e == SHOAL_ERR_INVALID) {
        int32_t i;
        if (gguf_get_i32(g, key, &i, NULL) == SHOAL_OK && i == -1) {
            shoal_diag_clear(d);
            *out = -1;
            return SHOAL_OK;
        }
    }
    if (e != SHOAL_OK)
        return e;
    if (u == UINT32_MAX) {
        *out = -1;
        return SHOAL_OK;
    }
    if (u > INT32_MAX)
        return fail_at(d, SHOAL_ERR_INVALID, key, "token id %u is out of range", u);
    *out = (int32_t)u;
    return SHOAL_OK;
}

static enum shoal_err get_flag(const struct gguf *g, const char *key, int *out,
                               struct shoal_diag *d)
{
    bool b;
    enum shoal_err e = gguf_get_bool(g, key, &b, d);
    if (e == SHOAL_ERR_NOT_FOUND)
        return SHOAL_OK;
    if (e != SHOAL_OK)
        return e;
    *out = b;
    return SHOAL_OK;
}

enum shoal_err vocab_load(const struct gguf *g, struct engine_vocab **out, struct shoal_diag *d)
{
    char model[32], pre[64], name[128];
    enum shoal_err e = get_cstr(g, "tokenizer.ggml.model", model, sizeof(model), d);
    if (e == SHOAL_ERR_NOT_FOUND) {
        shoal_diag_clear(d);
        return SHOAL_ERR_NOT_FOUND;
    }
    if (e != SHOAL_OK)
        return e;
    struct vocab_spec spec = {0};
    if (!strcmp(model, "no") || !strcmp(model, "none") || !strcmp(model, "no_vocab"))
        return SHOAL_ERR_NOT_FOUND;
    if (!strcmp(model, "llama"))
        spec.kind = ENGINE_VOCAB_SPM;
    else if (!strcmp(model, "gpt2"))
        spec.kind = ENGINE_VOCAB_BPE;
    else if (!strcmp(model, "bert"))
        spec.kind = ENGINE_VOCAB_WPM;
    else
        return fail_at(d, SHOAL_ERR_UNSUPPORTED, "tokenizer.ggml.model",
                       "tokenizer '%s' is not supported (llama, gpt2 and bert are)", model);

    e = get_cstr(g, "tokenizer.ggml.pre", pre, sizeof(pre), d);
    if (e == SHOAL_OK)
        spec.pre = pre;
    else if (e != SHOAL_ERR_NOT_FOUND)
        return e;
    e = get_cstr(g, "general.name", name, sizeof(name), d);
    if (e == SHOAL_OK)
        spec.model_name = name;
    else if (e != SHOAL_ERR_NOT_FOUND)
        return e;
    shoal_diag_clear(d);

    const struct gguf_kv *tok = NULL, *sc = NULL, *ty = NULL, *mg = NULL;
    e = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &tok, d);
    if (e == SHOAL_ERR_NOT_FOUND)
        return fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.tokens",
                       "missing: tokenizer.ggml.model is set but there are no tokens");
    if (e != SHOAL_OK)
        return e;
    if (tok->n == 0 || tok->n > VOCAB_MAX_TOKENS)
        return fail_at(d, tok->n ? SHOAL_ERR_TOO_BIG : SHOAL_ERR_INVALID, "tokenizer.ggml.tokens",
                       "%llu tokens (1..%u supported)", (unsigned long long)tok->n,
                       VOCAB_MAX_TOKENS);
    uint32_t n = (uint32_t)tok->n;
    spec.n_tokens = n;

    const struct gguf_kv *skv = gguf_find(g, "tokenizer.ggml.scores");
    if (skv) {
        if (skv->type != GGUF_TYPE_ARRAY ||
            (skv->elem_type != GGUF_TYPE_FLOAT32 && skv->elem_type != GGUF_TYPE_INT32))
            return fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.scores",
                           "expected an array of float32 (or int32)");
        sc = skv;
        if (sc->n != n)
            return fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.scores",
                           "%llu scores for %u tokens", (unsigned long long)sc->n, n);
    }
    e = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, &ty, d);
    if (e == SHOAL_OK && ty->n != n)
        return fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.token_type",
                       "%llu token types for %u tokens", (unsigned long long)ty->n, n);
    if (e != SHOAL_OK && e != SHOAL_ERR_NOT_FOUND)
        return e;
    if (spec.kind == ENGINE_VOCAB_BPE) {
        e = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_TYPE_STRING, &mg, d);
        if (e == SHOAL_ERR_NOT_FOUND)
            return fail_at(d, SHOAL_ERR_INVALID, "tokenizer.ggml.merges",
                           "missing: a BPE vocabulary needs its merges");
        if (e != SHOAL_OK)
            return e;
        if (mg->n > VOCAB_MAX_TOKENS)
            return fail_at(d, SHOAL_ERR_TOO_BIG, "tokenizer.ggml.merges", "too many merges");
    }
    shoal_diag_clear(d);

    spec.bos = spec.eos = spec.unk = spec.sep = spec.pad = VOCAB_ID_UNSET;
    spec.add_bos = spec.add_eos = spec.add_sep = spec.add_space_prefix = -1;
    if ((e = get_id(g, "tokenizer.ggml.bos_token_id", &spec.bos, d)) ||
        (e = get_id(g, "tokenizer.ggml.eos_token_id", &spec.eos, d)) ||
        (e = get_id(g, "tokenizer.ggml.unknown_token_id", &spec.unk, d)) ||
        (e = get_id(g, "tokenizer.ggml.seperator_token_id", &spec.sep, d)) ||
        (e = get_id(g, "tokenizer.ggml.padding_token_id", &spec.pad, d)) ||
        (e = get_flag(g, "tokenizer.ggml.add_bos_token", &spec.add_bos, d)) ||
        (e = get_flag(g, "tokenizer.ggml.add_eos_token", &spec.add_eos, d)) ||
        (e = get_flag(g, "tokenizer.ggml.add_sep_token", &spec.add_sep, d)) ||
        (e = get_flag(g, "tokenizer.ggml.add_space_prefix", &spec.add_space_prefix, d)))
        return e;
    /* BERT converters write the classifier token, which is WordPiece's BOS. */
    if (spec.kind == ENGINE_VOCAB_WPM && spec.bos == VOCAB_ID_UNSET &&
        (e = get_id(g, "tokenizer.ggml.cls_token_id", &spec.bos, d)))
        return e;
    shoal_diag_clear(d);

    struct vocab_str *toks = malloc((size_t)n * sizeof(*toks));
    float *scores = sc ? malloc((size_t)n * sizeof(float)) : NULL;
    int32_t *types = ty ? malloc((size_t)n * sizeof(int32_t)) : NULL;
    struct vocab_str *merges = mg && mg->n ? malloc((size_t)mg->n * sizeof(*merges)) : NULL;
    if (!toks || (sc && !scores) || (ty && !types) || (mg && mg->n && !merges)) {
        e = shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory reading the vocabulary");
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct gguf_str s = gguf_arr_str(tok, i);
        toks[i] = (struct vocab_str){s.p, (size_t)s.n};
        if (scores)
            scores[i] = sc->elem_type == GGUF_TYPE_FLOAT32 ? gguf_arr_f32(sc, i)
                                                           : (float)gguf_arr_i32(sc, i);
        if (types)
            types[i] = gguf_arr_i32(ty, i);
    }
    if (merges) {
        for (uint64_t i = 0; i < mg->n; i++) {
            struct gguf_str s = gguf_arr_str(mg, i);
            merges[i] = (struct vocab_str){s.p, (size_t)s.n};
        }
        spec.n_merges = (uint32_t)mg->n;
        spec.merges = merges;
    }
    spec.tokens = toks;
    spec.scores = scores;
    spec.types = types;
    e = vocab_build(&spec, out, d);
done:
    free(toks);
    free(scores);
    free(types);
    free(merges);
    return e;
}

/* ---- Public getters ---- */

const struct engine_vocab *engine_model_vocab(const struct engine_model *m)
{
    return m ? m->vocab : NULL;
}

const char *vocab_pre_name(const struct engine_vocab *v)
{
    return v ? v->pre : "";
}

enum engine_vocab_kind engine_vocab_kind(const struct engine_vocab *v)
{
    return v ? v->kind : ENGINE_VOCAB_NONE;
}

uint32_t engine_vocab_size(const struct engine_vocab *v)
{
    return v ? v->n : 0;
}

int32_t engine_vocab_bos(const struct engine_vocab *v)
{
    return v ? v->bos : -1;
}

int32_t engine_vocab_eos(const struct engine_vocab *v)
{
    return v ? v->eos : -1;
}

const char *engine_vocab_text(const struct engine_vocab *v, int32_t id, size_t *len)
{
    if (!v || id < 0 || (uint32_t)id >= v->n)
        return NULL;
    size_t n;
    const char *s = vocab_tok_text(v, id, &n);
    if (len)
        *len = n;
    return s;
}

bool engine_vocab_is_control(const struct engine_vocab *v, int32_t id)
{
    return v && id >= 0 && (uint32_t)id < v->n && (v->attr[id] & TOK_CONTROL);
}
