/* generate.c: the loop every caller of the engine needs once it has a
 * sequence and a sampler: chat prompt → tokens, prompt → tokens out, with
 * streaming text, stop strings across token boundaries, and cancellation.
 * One implementation for `shoal generate` and the daemon's local provider,
 * so both end a generation for the same reasons. */
#include "engine.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

/* ---- Chat prompts ---- */

/* The token's text as a NUL-terminated string in buf ("" when there is no
 * such token or it does not fit). */
static const char *token_string(const struct engine_vocab *v, int32_t id, char *buf, size_t n)
{
    size_t len = 0;
    const char *t = id >= 0 ? engine_vocab_text(v, id, &len) : NULL;
    if (!t || len >= n)
        len = 0;
    else
        memcpy(buf, t, len);
    buf[len] = '\0';
    return buf;
}

enum shoal_err engine_chat_tokenize(const struct engine_model *m, const struct engine_template *t,
                                    const struct engine_chat *chat, struct shoal_buf *text,
                                    struct engine_tokens *out, struct shoal_diag *d)
{
    const struct engine_vocab *v = engine_model_vocab(m);
    if (!v)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "the model has no tokenizer");
    char bos_s[256], eos_s[256];
    struct engine_chat c = *chat;
    if (!c.bos_token)
        c.bos_token = token_string(v, engine_vocab_bos(v), bos_s, sizeof(bos_s));
    if (!c.eos_token)
        c.eos_token = token_string(v, engine_vocab_eos(v), eos_s, sizeof(eos_s));
    struct shoal_buf scratch;
    shoal_buf_init(&scratch, SHOAL_CAP_PROMPT_BYTES);
    struct shoal_buf *b = text ? text : &scratch;
    size_t start = b->len;
    enum shoal_err e = engine_template_render(t, &c, b, d);
    if (!e) {
        const char *p = b->data ? b->data + start : "";
        size_t n = b->len - start, bl = strlen(c.bos_token);
        bool has_bos = bl && n >= bl && !memcmp(p, c.bos_token, bl);
        e = engine_tokenize(v, p, n, !has_bos, true, out);
        if (e == SHOAL_ERR_TOO_BIG)
            shoal_diag_set(d, e, "the prompt is over %zu tokens", out->max);
        else if (e)
            shoal_diag_set(d, e, "cannot tokenize the prompt");
    }
    shoal_buf_fini(&scratch);
    return e;
}

/* ---- Generation ---- */

const char *engine_finish_name(enum engine_finish f)
{
    switch (f) {
    case ENGINE_FINISH_EOS:
        return "eos";
    case ENGINE_FINISH_STOP:
        return "stop";
    case ENGINE_FINISH_LENGTH:
        return "length";
    case ENGINE_FINISH_CONTEXT:
        return "context";
    case ENGINE_FINISH_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static bool cancelled(const struct engine_gen_params *p)
{
    return p->cancel && atomic_load_explicit(p->cancel, memory_order_relaxed);
}

/* The prompt in batches, so a cancel does not wait for a whole long
 * prompt. */
#define GEN_PROMPT_SLICE 256u

/* Text that may still become part of a stop string waits in pending; the
 * rest goes to on_text. false: on_text said stop. */
static bool emit(const struct engine_gen_params *p, const char *s, size_t n)
{
    return !n || !p->on_text || p->on_text(p->arg, s, n);
}

enum shoal_err engine_generate(struct engine_seq *seq, struct engine_sampler *smp,
                               const struct engine_vocab *v, const int32_t *prompt, size_t n,
                               const struct engine_gen_params *p, struct engine_gen_stats *st,
                               struct shoal_diag *d)
{
    uint64_t t0 = now_us();
    memset(st, 0, sizeof(*st));
    st->finish = ENGINE_FINISH_CANCELLED;
    uint32_t room = engine_seq_n_ctx(seq) - engine_seq_pos(seq);
    if (n == 0)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "the prompt is empty");
    if (n >= room)
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG,
                              "the prompt is %zu tokens; the context holds %u (%u in use)",
                              n + engine_seq_pos(seq), engine_seq_n_ctx(seq),
                              engine_seq_pos(seq));
    for (size_t i = 0; i < n; i++)
        engine_sampler_accept(smp, prompt[i]);
    enum shoal_err e = SHOAL_OK;
    for (size_t at = 0; at < n; at += GEN_PROMPT_SLICE) {
        if (cancelled(p))
            goto done;
        size_t k = n - at < GEN_PROMPT_SLICE ? n - at : GEN_PROMPT_SLICE;
        if ((e = engine_seq_decode(seq, prompt + at, k, false, d)))
            goto done;
        st->n_prompt += (uint32_t)k;
    }
    st->prompt_us = now_us() - t0;

    struct shoal_buf piece, pending;
    shoal_buf_init(&piece, 1u << 16);
    shoal_buf_init(&pending, SHOAL_CAP_GEN_TEXT);
    struct engine_detok dt;
    engine_detok_init(&dt, v, false);
    int32_t eos = engine_vocab_eos(v);
    enum engine_finish fin = ENGINE_FINISH_LENGTH;
    for (;;) {
        if (p->max_tokens && st->n_gen >= p->max_tokens) {
            fin = ENGINE_FINISH_LENGTH;
            break;
        }
        if (cancelled(p)) {
            fin = ENGINE_FINISH_CANCELLED;
            break;
        }
        struct engine_token_info info;
        int32_t id = engine_sampler_sample(smp, engine_seq_logits(seq, 0), &info);
        if (!st->n_gen)
            st->first_token_us = now_us() - t0;
        if (id == eos || engine_vocab_is_control(v, id)) {
            fin = ENGINE_FINISH_EOS;
            break;
        }
        st->n_gen++;
        engine_sampler_accept(smp, id);
        if (p->on_token && !p->on_token(p->arg, id, &info)) {
            fin = ENGINE_FINISH_CANCELLED;
            break;
        }
        shoal_buf_reset(&piece);
        if ((e = engine_detok_push(&dt, id, &piece)) ||
            (e = shoal_buf_append(&pending, piece.data, piece.len))) {
            shoal_diag_set(d, e, "the answer is over %u bytes", SHOAL_CAP_GEN_TEXT);
            break;
        }
        size_t hold = 0;
        size_t cut = engine_stop_find(pending.data, pending.len, p->stops, p->n_stops, &hold);
        if (cut < pending.len) {
            pending.len = cut; /* the stop string and what follows are dropped */
            fin = ENGINE_FINISH_STOP;
            break;
        }
        if (!emit(p, pending.data, pending.len - hold)) {
            fin = ENGINE_FINISH_CANCELLED;
            shoal_buf_reset(&pending);
            break;
        }
        shoal_buf_consume(&pending, pending.len - hold);
        if (engine_seq_pos(seq) >= engine_seq_n_ctx(seq)) {
            fin = ENGINE_FINISH_CONTEXT;
            break;
        }
        if ((e = engine_seq_decode(seq, &id, 1, false, d)))
            break;
    }
    if (!e && fin != ENGINE_FINISH_STOP && fin != ENGINE_FINISH_CANCELLED) {
        /* The end decided every held tail: it is text after all. */
        shoal_buf_reset(&piece);
        if (engine_detok_flush(&dt, &piece) == SHOAL_OK &&
            (e = shoal_buf_append(&pending, piece.data, piece.len)))
            shoal_diag_set(d, e, "the answer is over %u bytes", SHOAL_CAP_GEN_TEXT);
    }
    if (!e && pending.len && !emit(p, pending.data, pending.len))
        fin = ENGINE_FINISH_CANCELLED;
    st->finish = fin;
    shoal_buf_fini(&piece);
    shoal_buf_fini(&pending);
done:
    st->total_us = now_us() - t0;
    if (!st->prompt_us)
        st->prompt_us = st->total_us;
    return e;
}
