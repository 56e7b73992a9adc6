/* detok.c: ids back to text by copying each token's piece, decoded once at
 * load. Batch decoding gives exact bytes; streaming holds back unfinished
 * UTF-8 and turns invalid sequences into U+FFFD, so it always emits valid
 * UTF-8. Invariant: SPM and WordPiece drop one space at the start of the
 * text (the prefix the encoder adds); control tokens only when asked. */
#include "tokenizer_internal.h"

#include <string.h>

static bool strips_first_space(const struct engine_vocab *v)
{
    return v->add_space_prefix || v->kind == ENGINE_VOCAB_WPM;
}

/* The bytes token id contributes, after the first-space rule. */
static const char *piece_of(const struct engine_vocab *v, int32_t id, bool specials, bool *first,
                            size_t *len)
{
    if ((v->attr[id] & TOK_HIDDEN) && !specials) {
        *len = 0;
        return NULL;
    }
    const char *p = v->piece + v->piece_off[id];
    size_t n = v->piece_off[id + 1] - v->piece_off[id];
    if (n && *first) {
        *first = false;
        if (p[0] == ' ' && strips_first_space(v)) {
            p++;
            n--;
        }
    }
    *len = n;
    return p;
}

const char *engine_vocab_piece(const struct engine_vocab *v, int32_t id, size_t *len)
{
    if (!v || id < 0 || (uint32_t)id >= v->n)
        return NULL;
    *len = v->piece_off[id + 1] - v->piece_off[id];
    return v->piece + v->piece_off[id];
}

enum shoal_err engine_detokenize(const struct engine_vocab *v, const int32_t *ids, size_t n,
                                 bool specials, struct shoal_buf *out)
{
    if (!v || !out || (!ids && n))
        return SHOAL_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= v->n)
            return SHOAL_ERR_INVALID;
    }
    size_t len0 = out->len;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = piece_of(v, ids[i], specials, &first, &k);
        enum shoal_err e = k ? shoal_buf_append(out, p, k) : SHOAL_OK;
        if (e != SHOAL_OK) {
            out->len = len0;
            if (out->data)
                out->data[len0] = '\0';
            return e;
        }
    }
    return SHOAL_OK;
}

/* ---- Streaming ---- */

void engine_detok_init(struct engine_detok *s, const struct engine_vocab *v, bool specials)
{
    memset(s, 0, sizeof(*s));
    s->v = v;
    s->specials = specials;
    s->first = true;
}

/* Bytes a sequence starting with lead c has in all; 0 for a byte that
 * cannot start one. */
static unsigned seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* May c follow the bytes in p[0..k) (k >= 1) of an unfinished sequence? */
static bool continues(const unsigned char *p, unsigned k, unsigned char c)
{
    if (k == 1) {
        switch (p[0]) {
        case 0xE0: return c >= 0xA0 && c <= 0xBF; /* no overlongs */
        case 0xED: return c >= 0x80 && c <= 0x9F; /* no surrogates */
        case 0xF0: return c >= 0x90 && c <= 0xBF;
        case 0xF4: return c >= 0x80 && c <= 0x8F; /* nothing past U+10FFFF */
        default: break;
        }
    }
    return c >= 0x80 && c <= 0xBF;
}

#define REPLACEMENT "\xEF\xBF\xBD"

/* Feed n bytes through the UTF-8 assembler, appending what is complete.
 * Each maximal invalid subpart (Unicode's recommended practice: a lead byte
 * with the continuation bytes that were valid so far) becomes one U+FFFD. */
static enum shoal_err feed(struct engine_detok *s, const unsigned char *p, size_t n,
                           struct shoal_buf *out)
{
    enum shoal_err e;
    size_t run = 0; /* start of the pending run of complete ASCII/valid bytes */
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (s->n_pending == 0) {
            unsigned l = seq_len(c);
            if (l == 1) {
                i++;
                continue;
            }
            /* Flush the plain run before a multi-byte or bad byte. */
            if (i > run && (e = shoal_buf_append(out, p + run, i - run)))
                return e;
            if (l == 0) {
                if ((e = shoal_buf_append(out, REPLACEMENT, 3)))
                    return e;
            } else {
                s->pending[0] = c;
                s->n_pending = 1;
            }
            run = ++i;
            continue;
        }
        if (continues(s->pending, s->n_pending, c)) {
            s->pending[s->n_pending++] = c;
            i++;
            run = i;
            if (s->n_pending == seq_len(s->pending[0])) {
                if ((e = shoal_buf_append(out, s->pending, s->n_pending)))
                    return e;
                s->n_pending = 0;
            }
            continue;
        }
        /* The unfinished sequence is broken: one U+FFFD for it, then c is
         * looked at afresh. */
        if ((e = shoal_buf_append(out, REPLACEMENT, 3)))
            return e;
        s->n_pending = 0;
        run = i;
    }
    if (n > run && s->n_pending == 0 && (e = shoal_buf_append(out, p + run, n - run)))
        return e;
    return SHOAL_OK;
}

enum shoal_err engine_detok_push(struct engine_detok *s, int32_t id, struct shoal_buf *out)
{
    const struct engine_vocab *v = s->v;
    if (!v || !out)
        return SHOAL_ERR_INVALID;
    if (id < 0 || (uint32_t)id >= v->n)
        return SHOAL_ERR_INVALID;
    struct engine_detok saved = *s;
    size_t len0 = out->len;
    size_t k;
    const char *p = piece_of(v, id, s->specials, &s->first, &k);
    enum shoal_err e = k ? feed(s, (const unsigned char *)p, k, out) : SHOAL_OK;
    if (e != SHOAL_OK) {
        *s = saved;
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    return e;
}

enum shoal_err engine_detok_flush(struct engine_detok *s, struct shoal_buf *out)
{
    if (!out)
        return SHOAL_ERR_INVALID;
    if (s->n_pending == 0)
        return SHOAL_OK;
    enum shoal_err e = shoal_buf_append(out, REPLACEMENT, 3);
    if (e == SHOAL_OK)
        s->n_pending = 0;
    return e;
}
