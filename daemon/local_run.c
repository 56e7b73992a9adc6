/* local_run.c: local model calls on one engine thread (a workq of one).
 *
 *   loop: local_run_start ──workq_submit──▶ engine thread: load (once),
 *   render + tokenize, reuse the cached prefix, engine_generate
 *        │ text ──▶ r->fresh + ready list ──eventfd──▶ loop: on_text
 *        └ end ──▶ workq done() on the loop: last text, on_done, free
 *
 * Ownership: the request part of a run is immutable once queued; fresh,
 * in_ready and the ready list are shared under le->mu; res/err/stats are
 * written by the engine thread before the job ends and read by done()
 * after (workq's own lock orders them). The resident models belong to the
 * engine thread alone. One engine thread because a sequence already uses
 * every core; batching across sequences is the scheduler's job. */
#include "local_run.h"

#include "engine.h"
#include "toolcall.h"
#include "workq.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCAL_MAX_PROMPT_TOKENS (1u << 20)
#define LOCAL_PUBLISHED_MAX     CONFIG_MODELS_MAX

/* A model the engine thread has loaded, with its one sequence. */
struct resident {
    char *path;
    char name[72];  /* the configured name that last used it (for logs) */
    uint32_t n_ctx; /* as configured (0: the model's own) */
    uint64_t bytes; /* weights plus K/V cache, what the memory budget counts */
    uint64_t last_used_ms, keep_alive_ms;
    struct engine_model *model;
    struct engine_llm *llm;
    struct engine_template *tmpl;
    struct engine_seq *seq;
    int32_t *cached; /* the tokens in seq's K/V cache, in order */
    size_t n_cached, cap_cached;
    struct resident *next;
};

struct local_engine {
    struct workq *q;
    unsigned threads, queue;
    pthread_mutex_t mu;
    struct local_run *ready; /* runs with fresh text (mu) */
    int efd;
    struct event *ev;
    struct local_run *live; /* every run not yet done (loop) */
    struct resident *models; /* engine thread */
    uint64_t memory_budget;  /* 0: none */
    /* What is loaded, published by the engine thread for /v1/models and
     * for the loop's unload timer (mu). */
    struct {
        char path[4096];
        uint32_t n_ctx;
        uint64_t bytes;
    } published[LOCAL_PUBLISHED_MAX];
    size_t n_published;
    uint64_t next_expiry_ms; /* the earliest keep_alive end; 0: none (mu) */
    /* Unloading idle models: a one-shot timer on the loop submits a sweep
     * job to the engine thread (loop). */
    struct event *sweep_timer;
    struct workq_job sweep;
    bool sweep_queued;
    bool stopping;
};

struct local_run {
    struct workq_job job;
    struct local_engine *le;
    /* The request, immutable once queued. */
    char *name, *path;
    uint32_t n_ctx;
    uint64_t keep_alive_ms;
    cJSON *messages, *tools, *kwargs;
    struct remote_request *req;
    bool stream;
    bool hold_text; /* stream, but tools were offered: text waits for the end
                       so tool-call markup never reaches the client */
    struct provider_cb cb;
    uint64_t start_ms;
    _Atomic bool cancel;
    /* Shared under le->mu. */
    struct shoal_buf fresh;
    bool in_ready;
    struct local_run *ready_next;
    /* Engine thread until the job ends, then done(). */
    struct shoal_buf text;
    struct remote_result res;
    struct remote_error err;
    uint64_t first_text_ms, queue_ms;
    /* Loop only. */
    bool detached;
    struct local_run *prev, *next;
};

static void fail(struct local_run *r, enum remote_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct local_run *r, enum remote_error_kind kind, const char *fmt, ...)
{
    r->err.kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err.message, sizeof(r->err.message), fmt, ap);
    va_end(ap);
}

/* ---- Resident models (engine thread) ---- */

static void resident_free(struct resident *m)
{
    engine_seq_free(m->seq);
    engine_template_free(m->tmpl);
    engine_llm_free(m->llm);
    engine_model_close(m->model);
    free(m->cached);
    free(m->path);
    free(m);
}

static void resident_unload(struct local_engine *le, struct resident *m, const char *why)
{
    struct resident **pp = &le->models;
    while (*pp != m)
        pp = &(*pp)->next;
    *pp = m->next;
    struct shoal_logline l;
    if (shoal_log_begin(&l, SHOAL_LOG_INFO, "model_unloaded")) {
        shoal_log_kv(&l, "model", "%s", m->name);
        shoal_log_kv(&l, "mib", "%.1f", (double)m->bytes / (1u << 20));
        shoal_log_kv(&l, "why", "%s", why);
        shoal_log_end(&l);
    }
    resident_free(m);
}

/* Tell the loop what is loaded and when the next one expires. */
static void publish(struct local_engine *le)
{
    pthread_mutex_lock(&le->mu);
    le->n_published = 0;
    le->next_expiry_ms = 0;
    for (struct resident *m = le->models; m; m = m->next) {
        uint64_t end = m->last_used_ms + m->keep_alive_ms;
        if (!le->next_expiry_ms || end < le->next_expiry_ms)
            le->next_expiry_ms = end;
        if (le->n_published == LOCAL_PUBLISHED_MAX)
            continue;
        shoal_strlcpy(le->published[le->n_published].path, m->path,
                      sizeof(le->published[0].path));
        le->published[le->n_published].n_ctx = m->n_ctx;
        le->published[le->n_published].bytes = m->bytes;
        le->n_published++;
    }
    pthread_mutex_unlock(&le->mu);
}

/* Unload the models whose keep_alive has run out, but keep (not counting
 * it) one that is about to be used. */
static void unload_idle(struct local_engine *le, const struct resident *keep, uint64_t now)
{
    for (struct resident *m = le->models, *next; m; m = next) {
        next = m->next;
        if (m != keep && m->last_used_ms + m->keep_alive_ms <= now)
            resident_unload(le, m, "keep_alive");
    }
}

/* Weights (the file) plus an F16 K/V cache of n_ctx positions. */
static uint64_t estimate_bytes(const char *path, const struct engine_hparams *hp, uint32_t n_ctx)
{
    struct stat st;
    uint64_t file = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t per_pos = (uint64_t)hp->n_layer * hp->n_head_kv * (hp->head_dim_k + hp->head_dim_v);
    return file + per_pos * n_ctx * 2u;
}

/* Unload the least recently used models (never keep) until need more
 * bytes fit the budget. false: they cannot, even with nothing else
 * loaded. */
static bool make_room(struct local_engine *le, const struct resident *keep, uint64_t need)
{
    if (!le->memory_budget)
        return true;
    if (need > le->memory_budget)
        return false;
    for (;;) {
        uint64_t used = 0;
        struct resident *lru = NULL;
        for (struct resident *m = le->models; m; m = m->next) {
            used += m->bytes;
            if (m != keep && (!lru || m->last_used_ms < lru->last_used_ms))
                lru = m;
        }
        if (used + need <= le->memory_budget || !lru)
            return used + need <= le->memory_budget;
        resident_unload(le, lru, "memory_budget");
    }
}

static struct resident *resident_get(struct local_engine *le, struct local_run *r)
{
    uint64_t now = shoal_now_ms();
    for (struct resident *m = le->models; m; m = m->next)
        if (!strcmp(m->path, r->path) && m->n_ctx == r->n_ctx) {
            unload_idle(le, m, now);
            m->last_used_ms = now;
            m->keep_alive_ms = r->keep_alive_ms;
            shoal_strlcpy(m->name, r->name, sizeof(m->name));
            return m;
        }
    unload_idle(le, NULL, now);
    struct shoal_diag d;
    shoal_diag_clear(&d);
    struct resident *m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(r->path))) {
        free(m);
        fail(r, REMOTE_ERR_INTERNAL, "out of memory loading model %s", r->name);
        return NULL;
    }
    m->n_ctx = r->n_ctx;
    m->last_used_ms = now;
    m->keep_alive_ms = r->keep_alive_ms;
    shoal_strlcpy(m->name, r->name, sizeof(m->name));
    bool fallback = false;
    uint32_t n_ctx = 0;
    enum shoal_err e = engine_model_open(r->path, &m->model, &d);
    if (!e && !engine_model_vocab(m->model))
        e = shoal_diag_set(&d, SHOAL_ERR_INVALID, "the file has no tokenizer");
    if (!e) {
        const struct engine_hparams *hp = engine_model_hparams(m->model);
        n_ctx = r->n_ctx ? r->n_ctx
                : hp->context_length && hp->context_length < LOCAL_DEFAULT_CONTEXT
                    ? hp->context_length
                    : LOCAL_DEFAULT_CONTEXT;
        m->bytes = estimate_bytes(r->path, hp, n_ctx);
        /* Room first: what is unloaded to make it gives its memory back
         * before this model's cache is allocated. */
        if (!make_room(le, NULL, m->bytes)) {
            engine_model_close(m->model);
            m->model = NULL;
            fail(r, REMOTE_ERR_UNAVAILABLE,
                 "model %s needs about %.0f MiB (weights and K/V cache), more than "
                 "engine.memory_budget (%.0f MiB)",
                 r->name, (double)m->bytes / (1u << 20), (double)le->memory_budget / (1u << 20));
            resident_free(m);
            return NULL;
        }
    }
    if (!e)
        e = engine_llm_new(m->model, &m->llm, &d);
    if (!e)
        e = engine_model_template(m->model, &m->tmpl, &fallback, &d);
    if (!e) {
        struct engine_seq_options so = {.n_ctx = n_ctx, .n_threads = le->threads};
        e = engine_seq_new(m->llm, &so, &m->seq, &d);
    }
    if (e) {
        char msg[400];
        shoal_diag_format(&d, msg, sizeof(msg));
        fail(r, REMOTE_ERR_UNAVAILABLE, "model %s: cannot load %s: %s", r->name, r->path, msg);
        resident_free(m);
        return NULL;
    }
    struct shoal_logline l;
    if (r->n_ctx && engine_seq_n_ctx(m->seq) != r->n_ctx &&
        shoal_log_begin(&l, SHOAL_LOG_WARN, "model_context")) {
        shoal_log_kv(&l, "model", "%s", r->name);
        shoal_log_kv(&l, "msg", "context: %u is past what the model was trained for; using %u",
                     r->n_ctx, engine_seq_n_ctx(m->seq));
        shoal_log_end(&l);
    }
    if (shoal_log_begin(&l, SHOAL_LOG_INFO, "model_loaded")) {
        shoal_log_kv(&l, "model", "%s", r->name);
        shoal_log_kv(&l, "path", "%s", r->path);
        shoal_log_kv(&l, "ctx", "%u", engine_seq_n_ctx(m->seq));
        shoal_log_kv(&l, "mib", "%.1f", (double)m->bytes / (1u << 20));
        shoal_log_end(&l);
    }
    m->next = le->models;
    le->models = m;
    return m;
}

/* ---- Generation (engine thread) ---- */

/* s[0..n) as valid UTF-8 (a token may hold part of a character), each bad
 * byte as U+FFFD; NULL when out of memory. */
static char *utf8_clean(const char *s, size_t n)
{
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t len = shoal_utf8_len(s + i, n - i);
        if (len) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    return out;
}

struct gen_ctx {
    struct local_run *r;
    const struct engine_vocab *v;
    int32_t *ids; /* generated tokens, for the cache's record */
    size_t n_ids, cap_ids;
    bool oom;
};

static bool gen_on_text(void *arg, const char *text, size_t n)
{
    struct gen_ctx *g = arg;
    struct local_run *r = g->r;
    if (!r->first_text_ms)
        r->first_text_ms = shoal_now_ms();
    if (shoal_buf_append(&r->text, text, n) != SHOAL_OK) {
        g->oom = true;
        return false;
    }
    if (!r->stream || r->hold_text)
        return true;
    struct local_engine *le = r->le;
    pthread_mutex_lock(&le->mu);
    bool ok = shoal_buf_append(&r->fresh, text, n) == SHOAL_OK;
    bool wake = false;
    if (ok && !r->in_ready) {
        wake = le->ready == NULL;
        r->in_ready = true;
        r->ready_next = le->ready;
        le->ready = r;
    }
    pthread_mutex_unlock(&le->mu);
    if (wake) {
        uint64_t one = 1;
        while (write(le->efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
    if (!ok)
        g->oom = true;
    return ok;
}

static char *piece_text(const struct engine_vocab *v, int32_t id)
{
    size_t n = 0;
    const char *p = engine_vocab_piece(v, id, &n);
    return utf8_clean(p ? p : "", p ? n : 0);
}

static bool gen_on_token(void *arg, int32_t id, const struct engine_token_info *info)
{
    struct gen_ctx *g = arg;
    struct local_run *r = g->r;
    if (g->n_ids == g->cap_ids) {
        size_t cap = g->cap_ids ? g->cap_ids * 2 : 256;
        int32_t *p = realloc(g->ids, cap * sizeof(*p));
        if (!p) {
            g->oom = true;
            return false;
        }
        g->ids = p;
        g->cap_ids = cap;
    }
    g->ids[g->n_ids++] = id;
    if (!r->req->logprobs || r->res.n_logprobs >= REMOTE_CAP_LOGPROBS)
        return true;
    if (r->res.n_logprobs % 256 == 0) {
        struct remote_logprob *p =
            realloc(r->res.logprobs, (r->res.n_logprobs + 256) * sizeof(*p));
        if (!p) {
            g->oom = true;
            return false;
        }
        r->res.logprobs = p;
    }
    struct remote_logprob *lp = &r->res.logprobs[r->res.n_logprobs];
    memset(lp, 0, sizeof(*lp));
    r->res.n_logprobs++;
    lp->logprob = info->logprob;
    if (!(lp->token = piece_text(g->v, id)))
        return g->oom = true, false;
    if (info->n_top) {
        if (!(lp->top = calloc(info->n_top, sizeof(*lp->top))))
            return g->oom = true, false;
        for (uint32_t k = 0; k < info->n_top; k++, lp->n_top++) {
            lp->top[k].logprob = info->top[k].logprob;
            if (!(lp->top[k].token = piece_text(g->v, info->top[k].id)))
                return g->oom = true, false;
        }
    }
    return true;
}

static void sampler_params(const struct remote_request *q, uint64_t seed,
                           struct engine_sampler_params *sp)
{
    engine_sampler_params_default(sp);
    if (q->has_temperature)
        sp->temperature = (float)q->temperature;
    if (q->has_top_p)
        sp->top_p = (float)q->top_p;
    if (q->has_presence_penalty)
        sp->presence_penalty = (float)q->presence_penalty;
    if (q->has_frequency_penalty)
        sp->frequency_penalty = (float)q->frequency_penalty;
    sp->seed = q->has_seed ? (uint64_t)q->seed : seed;
    sp->n_logprobs = q->logprobs ? q->top_logprobs : 0;
}

/* Keep what the cache holds of the prompt (all but its last token, whose
 * logits the sampler needs); returns how many prompt tokens that is. */
static size_t reuse_prefix(struct resident *m, const struct engine_tokens *t)
{
    size_t k = 0, lim = m->n_cached < t->n - 1 ? m->n_cached : t->n - 1;
    while (k < lim && m->cached[k] == t->ids[k])
        k++;
    engine_seq_rewind(m->seq, (uint32_t)k);
    m->n_cached = k;
    return k;
}

/* Record what the cache now holds: the prompt, then the generated tokens
 * that were fed. false when out of memory (the cache is then forgotten). */
static void remember(struct resident *m, const struct engine_tokens *t, const struct gen_ctx *g)
{
    size_t pos = engine_seq_pos(m->seq), want = t->n + g->n_ids;
    if (pos > want)
        pos = want;
    if (pos > m->cap_cached) {
        int32_t *p = realloc(m->cached, pos * sizeof(*p));
        if (!p) {
            engine_seq_rewind(m->seq, 0);
            m->n_cached = 0;
            return;
        }
        m->cached = p;
        m->cap_cached = pos;
    }
    size_t from_prompt = pos < t->n ? pos : t->n;
    memcpy(m->cached, t->ids, from_prompt * sizeof(*t->ids));
    if (pos > t->n)
        memcpy(m->cached + t->n, g->ids, (pos - t->n) * sizeof(*g->ids));
    m->n_cached = pos;
}

/* Tool calls the model wrote become the result's; the text keeps the rest.
 * A held stream gets that text now, in one piece. */
static void take_tool_calls(struct local_run *r)
{
    char *rest = NULL;
    int k = toolcall_parse(r->req, shoal_buf_cstr(&r->text), r->text.len, &r->res, &rest);
    if (k < 0) {
        fail(r, REMOTE_ERR_INTERNAL, "model %s: out of memory reading tool calls", r->name);
        return;
    }
    if (k > 0) {
        r->res.finish = REMOTE_FINISH_TOOL_CALLS;
        /* rest is a part of text: it fits where text was. */
        shoal_buf_reset(&r->text);
        enum shoal_err e = shoal_buf_puts(&r->text, rest);
        free(rest);
        if (e) {
            fail(r, REMOTE_ERR_INTERNAL, "model %s: out of memory", r->name);
            return;
        }
    }
    if (r->hold_text) {
        pthread_mutex_lock(&r->le->mu);
        if (shoal_buf_append(&r->fresh, r->text.data, r->text.len) != SHOAL_OK)
            r->err.kind = REMOTE_ERR_INTERNAL;
        pthread_mutex_unlock(&r->le->mu);
        if (r->err.kind)
            shoal_strlcpy(r->err.message, "out of memory", sizeof(r->err.message));
    }
}

static void run_generate(struct local_run *r)
{
    struct local_engine *le = r->le;
    struct resident *m = resident_get(le, r);
    if (!m)
        return;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    struct engine_tokens toks;
    engine_tokens_init(&toks, LOCAL_MAX_PROMPT_TOKENS);
    struct engine_sampler *smp = NULL;
    struct gen_ctx g = {.r = r, .v = engine_model_vocab(m->model)};
    struct engine_chat chat = {.messages = r->messages, .tools = r->tools, .extra = r->kwargs,
                               .add_generation_prompt = true};
    enum shoal_err e = engine_chat_tokenize(m->model, m->tmpl, &chat, NULL, &toks, &d);
    char msg[400];
    if (e) {
        shoal_diag_format(&d, msg, sizeof(msg));
        fail(r, e == SHOAL_ERR_TOO_BIG ? REMOTE_ERR_CONTEXT_OVERFLOW : REMOTE_ERR_INVALID_REQUEST,
             "model %s: chat template: %s", r->name, msg);
        goto out;
    }
    uint32_t n_ctx = engine_seq_n_ctx(m->seq);
    r->res.usage.present = true;
    r->res.usage.input_tokens = (int64_t)toks.n;
    if (toks.n == 0 || toks.n >= n_ctx) {
        fail(r, toks.n ? REMOTE_ERR_CONTEXT_OVERFLOW : REMOTE_ERR_INVALID_REQUEST,
             "model %s: the prompt is %zu tokens; its context holds %u", r->name, toks.n,
             n_ctx);
        goto out;
    }
    struct engine_sampler_params sp;
    sampler_params(r->req, (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r, &sp);
    if ((e = engine_sampler_new(&sp, engine_llm_hparams(m->llm)->n_vocab, &smp, &d))) {
        shoal_diag_format(&d, msg, sizeof(msg));
        fail(r, REMOTE_ERR_INVALID_REQUEST, "model %s: sampling: %s", r->name, msg);
        goto out;
    }
    size_t reused = reuse_prefix(m, &toks);
    /* The sampler's penalty window must see the whole prompt, reused or
     * not. */
    for (size_t i = 0; i < reused; i++)
        engine_sampler_accept(smp, toks.ids[i]);
    r->res.usage.cached_input_tokens = (int64_t)reused;
    struct engine_gen_params gp = {
        .max_tokens = r->req->max_tokens,
        .stops = (const char *const *)r->req->stop,
        .n_stops = r->req->n_stop,
        .on_text = gen_on_text,
        .on_token = gen_on_token,
        .arg = &g,
        .cancel = &r->cancel,
    };
    struct engine_gen_stats st;
    e = engine_generate(m->seq, smp, g.v, toks.ids + reused, toks.n - reused, &gp, &st, &d);
    if (e) {
        engine_seq_rewind(m->seq, 0); /* an error leaves the cache in doubt */
        m->n_cached = 0;
    } else {
        remember(m, &toks, &g);
    }
    r->res.usage.output_tokens = st.n_gen;
    if (g.oom) {
        fail(r, REMOTE_ERR_INTERNAL, "model %s: out of memory (or the answer is over %u bytes)",
             r->name, SHOAL_CAP_GEN_TEXT);
    } else if (e) {
        shoal_diag_format(&d, msg, sizeof(msg));
        fail(r, e == SHOAL_ERR_TOO_BIG ? REMOTE_ERR_CONTEXT_OVERFLOW : REMOTE_ERR_INTERNAL,
             "model %s: %s", r->name, msg);
    } else if (st.finish == ENGINE_FINISH_CANCELLED) {
        fail(r, REMOTE_ERR_CANCELLED, "model %s: cancelled", r->name);
    } else {
        bool end = st.finish == ENGINE_FINISH_EOS || st.finish == ENGINE_FINISH_STOP;
        r->res.finish = end ? REMOTE_FINISH_STOP : REMOTE_FINISH_LENGTH;
        shoal_strlcpy(r->res.finish_raw, engine_finish_name(st.finish),
                      sizeof(r->res.finish_raw));
        take_tool_calls(r);
    }
out:
    free(g.ids);
    engine_sampler_free(smp);
    engine_tokens_fini(&toks);
    /* keep_alive counts from the end of the last call: a long generation
     * must not leave its model already expired. */
    m->last_used_ms = shoal_now_ms();
    if (m->keep_alive_ms == 0)
        resident_unload(le, m, "keep_alive 0");
}

static void job_run(struct workq_job *job, unsigned worker)
{
    (void)worker;
    struct local_run *r = (struct local_run *)job;
    r->queue_ms = shoal_now_ms() - r->start_ms;
    if (atomic_load(&r->cancel))
        fail(r, REMOTE_ERR_CANCELLED, "model %s: cancelled", r->name);
    else
        run_generate(r);
    publish(r->le);
}

/* ---- Unloading idle models ---- */

static void sweep_run(struct workq_job *job, unsigned worker)
{
    (void)worker;
    struct local_engine *le = (struct local_engine *)((char *)job - offsetof(struct local_engine, sweep));
    unload_idle(le, NULL, shoal_now_ms());
    publish(le);
}

static void arm_sweep(struct local_engine *le);

static void sweep_done(struct workq_job *job, bool cancelled)
{
    (void)cancelled;
    struct local_engine *le = (struct local_engine *)((char *)job - offsetof(struct local_engine, sweep));
    le->sweep_queued = false;
    arm_sweep(le);
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct local_engine *le = arg;
    if (le->sweep_queued || le->stopping)
        return;
    le->sweep.run = sweep_run;
    le->sweep.done = sweep_done;
    /* A full queue is full of calls: each sweeps as it starts, and the
     * timer is armed again when one ends. */
    if (workq_submit(le->q, &le->sweep) == SHOAL_OK)
        le->sweep_queued = true;
}

/* Wake up when the next loaded model's keep_alive runs out. Loop. */
static void arm_sweep(struct local_engine *le)
{
    if (le->stopping || !le->sweep_timer)
        return;
    pthread_mutex_lock(&le->mu);
    uint64_t at = le->next_expiry_ms;
    pthread_mutex_unlock(&le->mu);
    if (!at) {
        evtimer_del(le->sweep_timer);
        return;
    }
    uint64_t now = shoal_now_ms(), wait = at > now ? at - now : 0;
    if (wait < 1000u)
        wait = wait + 5u; /* past the end, not just before it */
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000),
                         .tv_usec = (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(le->sweep_timer, &tv);
}

/* ---- Back on the loop ---- */

static void run_free(struct local_run *r)
{
    remote_result_fini(&r->res);
    remote_request_free(r->req);
    cJSON_Delete(r->messages);
    cJSON_Delete(r->tools);
    cJSON_Delete(r->kwargs);
    shoal_buf_fini(&r->fresh);
    shoal_buf_fini(&r->text);
    free(r->name);
    free(r->path);
    free(r);
}

static void unlink_live(struct local_run *r)
{
    struct local_engine *le = r->le;
    if (r->prev)
        r->prev->next = r->next;
    else
        le->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Hand the text that arrived since the last call to on_text. */
static void deliver_fresh(struct local_run *r)
{
    struct local_engine *le = r->le;
    struct shoal_buf b;
    pthread_mutex_lock(&le->mu);
    b = r->fresh;
    shoal_buf_init(&r->fresh, REMOTE_CAP_TEXT);
    pthread_mutex_unlock(&le->mu);
    if (b.len && !r->detached && r->cb.on_text)
        r->cb.on_text(r->cb.arg, b.data, b.len);
    shoal_buf_fini(&b);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct local_engine *le = arg;
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    for (;;) {
        pthread_mutex_lock(&le->mu);
        struct local_run *r = le->ready;
        if (r) {
            le->ready = r->ready_next;
            r->in_ready = false;
        }
        pthread_mutex_unlock(&le->mu);
        if (!r)
            break;
        deliver_fresh(r);
    }
}

static void job_done(struct workq_job *job, bool cancelled)
{
    struct local_run *r = (struct local_run *)job;
    struct local_engine *le = r->le;
    /* Off the ready list before it is freed, text first. */
    pthread_mutex_lock(&le->mu);
    if (r->in_ready) {
        struct local_run **pp = &le->ready;
        while (*pp != r)
            pp = &(*pp)->ready_next;
        *pp = r->ready_next;
        r->in_ready = false;
    }
    pthread_mutex_unlock(&le->mu);
    deliver_fresh(r);
    unlink_live(r);
    if (cancelled)
        fail(r, REMOTE_ERR_CANCELLED, "model %s: the engine stopped", r->name);
    if (!r->detached) {
        r->res.text = r->text.data; /* non-NULL: reserved at start */
        r->res.text_len = r->text.len;
        r->text.data = NULL; /* now the result's */
        shoal_buf_init(&r->text, 1);
        r->res.partial = r->err.kind != REMOTE_ERR_NONE && r->res.text_len > 0;
        r->err.partial = r->res.partial;
        if (r->err.kind != REMOTE_ERR_NONE)
            r->res.finish = REMOTE_FINISH_ERROR;
        shoal_strlcpy(r->res.model, r->name, sizeof(r->res.model));
        uint64_t now = shoal_now_ms();
        struct provider_stats st = {
            .first_token_ms = r->first_text_ms ? r->first_text_ms - r->start_ms : 0,
            .total_ms = now - r->start_ms,
            .attempts = 1,
            .queue_ms = r->queue_ms,
        };
        r->cb.on_done(r->cb.arg, &r->res, r->err.kind ? &r->err : NULL, &st);
    }
    run_free(r);
    arm_sweep(le);
}

/* ---- Public ---- */

enum shoal_err local_engine_new(struct event_base *base, unsigned threads, unsigned queue,
                                uint64_t memory_budget, struct local_engine **out,
                                struct shoal_diag *d)
{
    struct local_engine *le = calloc(1, sizeof(*le));
    if (!le)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "local engine: out of memory");
    le->threads = threads;
    le->memory_budget = memory_budget;
    le->queue = queue ? queue : 1;
    le->efd = -1;
    pthread_mutex_init(&le->mu, NULL);
    enum shoal_err e = workq_new(base, 1, le->queue, &le->q, d);
    if (e)
        goto fail;
    le->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (le->efd < 0) {
        e = shoal_diag_set(d, SHOAL_ERR_IO, "local engine: eventfd: %s", strerror(errno));
        goto fail;
    }
    le->ev = event_new(base, le->efd, EV_READ | EV_PERSIST, on_ready, le);
    le->sweep_timer = evtimer_new(base, on_sweep_timer, le);
    if (!le->ev || !le->sweep_timer || event_add(le->ev, NULL) != 0) {
        e = shoal_diag_set(d, SHOAL_ERR_NOMEM, "local engine: out of memory");
        goto fail;
    }
    *out = le;
    return SHOAL_OK;
fail:
    local_engine_free(le);
    return e;
}

void local_engine_free(struct local_engine *le)
{
    if (!le)
        return;
    le->stopping = true;
    for (struct local_run *r = le->live; r; r = r->next) {
        r->detached = true;
        atomic_store(&r->cancel, true);
    }
    workq_free(le->q); /* every job's done(): the runs are freed there */
    if (le->sweep_timer)
        event_free(le->sweep_timer);
    if (le->ev)
        event_free(le->ev);
    if (le->efd >= 0)
        close(le->efd);
    while (le->models) {
        struct resident *m = le->models;
        le->models = m->next;
        resident_free(m);
    }
    pthread_mutex_destroy(&le->mu);
    free(le);
}

static cJSON *dup_member(const cJSON *obj, const char *name, bool *oom)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v || cJSON_IsNull(v))
        return NULL;
    cJSON *c = cJSON_Duplicate(v, true);
    if (!c)
        *oom = true;
    return c;
}

enum shoal_err local_run_start(struct local_engine *le, const struct config_model *m,
                               const struct cJSON *chat_request, bool stream,
                               const struct provider_cb *cb, struct local_run **out,
                               struct shoal_diag *d)
{
    if (m->provider != CONFIG_PROVIDER_LOCAL || !m->path)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "model %s is not a local model", m->name);
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(chat_request, "chat_template_kwargs");
    if (kw && !cJSON_IsNull(kw) && !cJSON_IsObject(kw))
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "$.chat_template_kwargs: expected an object");
    struct local_run *r = calloc(1, sizeof(*r));
    if (!r)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    r->le = le;
    r->stream = stream;
    r->cb = *cb;
    r->n_ctx = m->context;
    r->keep_alive_ms = m->keep_alive_ms;
    r->start_ms = shoal_now_ms();
    atomic_init(&r->cancel, false);
    shoal_buf_init(&r->fresh, REMOTE_CAP_TEXT);
    shoal_buf_init(&r->text, SHOAL_CAP_GEN_TEXT);
    remote_result_init(&r->res);
    remote_error_clear(&r->err);
    enum shoal_err e = shoal_buf_reserve(&r->text, 1);
    if (e) {
        shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    r->text.data[0] = '\0';
    if ((e = remote_request_from_chat(chat_request, &r->req, d)))
        goto fail;
    if (r->req->format != REMOTE_FORMAT_TEXT) {
        /* Honest rather than ignored: without constrained decoding nothing
         * makes a small model keep to the format. */
        e = shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                           "$.response_format: model %s is local, and local models cannot "
                           "be held to a JSON format yet (no constrained decoding); leave "
                           "it out or use a remote model",
                           m->name);
        goto fail;
    }
    r->hold_text = stream && r->req->n_tools && r->req->tool_choice != REMOTE_TOOL_CHOICE_NONE;
    bool oom = false;
    r->messages = dup_member(chat_request, "messages", &oom);
    r->tools = dup_member(chat_request, "tools", &oom);
    r->kwargs = dup_member(chat_request, "chat_template_kwargs", &oom);
    r->name = strdup(m->name);
    r->path = strdup(m->path);
    if (oom || !r->name || !r->path) {
        e = shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    r->job.run = job_run;
    r->job.done = job_done;
    if ((e = workq_submit(le->q, &r->job))) {
        shoal_diag_set(d, e, "the engine's queue is full; retry later");
        goto fail;
    }
    r->next = le->live;
    if (le->live)
        le->live->prev = r;
    le->live = r;
    if (out)
        *out = r;
    return SHOAL_OK;
fail:
    run_free(r);
    return e;
}

void local_run_cancel(struct local_run *r)
{
    if (!r)
        return;
    r->detached = true;
    atomic_store(&r->cancel, true);
}

bool local_engine_loaded(struct local_engine *le, const char *path, uint32_t n_ctx,
                         uint64_t *bytes)
{
    bool found = false;
    pthread_mutex_lock(&le->mu);
    for (size_t i = 0; i < le->n_published && !found; i++)
        if (le->published[i].n_ctx == n_ctx && !strcmp(le->published[i].path, path)) {
            found = true;
            if (bytes)
                *bytes = le->published[i].bytes;
        }
    pthread_mutex_unlock(&le->mu);
    return found;
}
