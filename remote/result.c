/* result.c: the result shape both providers produce, the accumulator that
 * whole and streamed answers are put together in, cost, and rendering a
 * result back as an OpenAI chat.completion. Invariant: a result's text is
 * never NULL after acc_take, and a tool call's args is the parse of its
 * arguments text or NULL with args_error saying why. */
#include "remote_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cJSON getters ---- */

const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const cJSON *jobj(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsObject(v) ? v : NULL;
}

const cJSON *jarr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsArray(v) ? v : NULL;
}

bool jint(const cJSON *o, const char *k, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        return false;
    double x = v->valuedouble;
    if (!(x >= -4.0e18 && x <= 4.0e18) || floor(x) != x)
        return false;
    *out = (int64_t)x;
    return true;
}

/* ---- Names ---- */

const char *remote_finish_name(enum remote_finish f)
{
    switch (f) {
    case REMOTE_FINISH_STOP:
        return "stop";
    case REMOTE_FINISH_LENGTH:
        return "length";
    case REMOTE_FINISH_TOOL_CALLS:
        return "tool_calls";
    case REMOTE_FINISH_CONTENT_FILTER:
        return "content_filter";
    case REMOTE_FINISH_ERROR:
        return "error";
    case REMOTE_FINISH_UNKNOWN:
        break;
    }
    return "unknown";
}

/* Both providers' words in one table: they do not collide. */
static const struct {
    const char *word;
    enum remote_finish finish;
} finish_words[] = {
    {"stop", REMOTE_FINISH_STOP},
    {"end_turn", REMOTE_FINISH_STOP},
    {"stop_sequence", REMOTE_FINISH_STOP},
    {"length", REMOTE_FINISH_LENGTH},
    {"max_tokens", REMOTE_FINISH_LENGTH},
    {"model_context_window_exceeded", REMOTE_FINISH_LENGTH},
    {"tool_calls", REMOTE_FINISH_TOOL_CALLS},
    {"function_call", REMOTE_FINISH_TOOL_CALLS},
    {"tool_use", REMOTE_FINISH_TOOL_CALLS},
    {"content_filter", REMOTE_FINISH_CONTENT_FILTER},
    {"refusal", REMOTE_FINISH_CONTENT_FILTER},
    {"error", REMOTE_FINISH_ERROR},
};

/* ---- Results ---- */

void remote_result_init(struct remote_result *r)
{
    memset(r, 0, sizeof(*r));
}

static void tool_call_fini(struct remote_tool_call *c)
{
    free(c->id);
    free(c->name);
    free(c->arguments);
    cJSON_Delete(c->args);
}

void remote_result_fini(struct remote_result *r)
{
    free(r->text);
    free(r->refusal);
    for (size_t i = 0; i < r->n_tool_calls; i++)
        tool_call_fini(&r->tool_calls[i]);
    free(r->tool_calls);
    for (size_t i = 0; i < r->n_logprobs; i++) {
        free(r->logprobs[i].token);
        for (size_t k = 0; k < r->logprobs[i].n_top; k++)
            free(r->logprobs[i].top[k].token);
        free(r->logprobs[i].top);
    }
    free(r->logprobs);
    remote_result_init(r);
}

/* ---- The accumulator ---- */

void acc_init(struct acc *a, const struct remote_request *req)
{
    memset(a, 0, sizeof(*a));
    shoal_buf_init(&a->text, REMOTE_CAP_TEXT);
    shoal_buf_init(&a->refusal, REMOTE_CAP_TEXT);
    anthropic_json_tool_name(req, a->json_tool, sizeof(a->json_tool));
}

static void call_fini(struct acc_call *c)
{
    shoal_buf_fini(&c->id);
    shoal_buf_fini(&c->name);
    shoal_buf_fini(&c->args);
}

static void lps_free(struct remote_logprob *lps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(lps[i].token);
        for (size_t k = 0; k < lps[i].n_top; k++)
            free(lps[i].top[k].token);
        free(lps[i].top);
    }
    free(lps);
}

void acc_fini(struct acc *a)
{
    shoal_buf_fini(&a->text);
    shoal_buf_fini(&a->refusal);
    for (size_t i = 0; i < a->n_calls; i++)
        call_fini(&a->calls[i]);
    free(a->calls);
    lps_free(a->lps, a->n_lps);
    a->calls = NULL;
    a->lps = NULL;
    a->n_calls = a->cap_calls = a->n_lps = a->cap_lps = 0;
}

bool acc_has_output(const struct acc *a)
{
    return a->text.len > 0 || a->refusal.len > 0 || a->n_calls > 0;
}

enum shoal_err acc_text(struct acc *a, const char *p, size_t n)
{
    return shoal_buf_append(&a->text, p, n);
}

enum shoal_err acc_call_new(struct acc *a, long index, struct acc_call **out)
{
    if (a->n_calls >= REMOTE_CAP_TOOL_CALLS)
        return SHOAL_ERR_TOO_BIG;
    if (a->n_calls == a->cap_calls) {
        size_t cap = a->cap_calls ? a->cap_calls * 2 : 4;
        struct acc_call *c = realloc(a->calls, cap * sizeof(*c));
        if (!c)
            return SHOAL_ERR_NOMEM;
        a->calls = c;
        a->cap_calls = cap;
    }
    struct acc_call *c = &a->calls[a->n_calls++];
    shoal_buf_init(&c->id, 256);
    shoal_buf_init(&c->name, 256);
    shoal_buf_init(&c->args, REMOTE_CAP_TOOL_ARGS);
    c->index = index;
    *out = c;
    return SHOAL_OK;
}

struct acc_call *acc_call_find(struct acc *a, long index)
{
    for (size_t i = 0; i < a->n_calls; i++)
        if (a->calls[i].index == index)
            return &a->calls[i];
    return NULL;
}

static enum shoal_err dup_str(const char *s, char **out)
{
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (!p)
        return SHOAL_ERR_NOMEM;
    memcpy(p, s, n + 1);
    *out = p;
    return SHOAL_OK;
}

static double num_or(const cJSON *o, const char *k, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

enum shoal_err acc_logprobs(struct acc *a, const cJSON *content)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, content)
    {
        const char *tok = jstr(it, "token");
        if (!tok || a->n_lps >= REMOTE_CAP_LOGPROBS)
            continue;
        if (a->n_lps == a->cap_lps) {
            size_t cap = a->cap_lps ? a->cap_lps * 2 : 16;
            struct remote_logprob *p = realloc(a->lps, cap * sizeof(*p));
            if (!p)
                return SHOAL_ERR_NOMEM;
            a->lps = p;
            a->cap_lps = cap;
        }
        struct remote_logprob *lp = &a->lps[a->n_lps];
        memset(lp, 0, sizeof(*lp));
        if (dup_str(tok, &lp->token))
            return SHOAL_ERR_NOMEM;
        a->n_lps++;
        lp->logprob = num_or(it, "logprob", 0.0);
        const cJSON *top = jarr(it, "top_logprobs");
        size_t n = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, top) n += jstr(t, "token") != NULL;
        if (n > 20)
            n = 20;
        if (!n)
            continue;
        lp->top = calloc(n, sizeof(*lp->top));
        if (!lp->top)
            return SHOAL_ERR_NOMEM;
        cJSON_ArrayForEach(t, top)
        {
            const char *tt = jstr(t, "token");
            if (!tt || lp->n_top == n)
                continue;
            if (dup_str(tt, &lp->top[lp->n_top].token))
                return SHOAL_ERR_NOMEM;
            lp->top[lp->n_top++].logprob = num_or(t, "logprob", 0.0);
        }
    }
    return SHOAL_OK;
}

void acc_finish(struct acc *a, const char *word)
{
    shoal_strlcpy(a->finish_raw, word, sizeof(a->finish_raw));
    a->finish = REMOTE_FINISH_UNKNOWN;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(finish_words); i++)
        if (!strcmp(word, finish_words[i].word))
            a->finish = finish_words[i].finish;
}

enum remote_error_kind acc_fail(enum shoal_err err, enum remote_provider p, const char *what,
                                struct remote_error *e)
{
    if (err == SHOAL_ERR_NOMEM)
        err_set(e, REMOTE_ERR_INTERNAL, 0, "%s: out of memory", remote_provider_name(p));
    else
        err_set(e, REMOTE_ERR_BAD_RESPONSE, 0, "%s: %s over its cap", remote_provider_name(p),
                what);
    return e->kind;
}

/* A buffer's bytes as a heap string ("" for an empty one); the buffer is
 * left empty. */
static enum shoal_err buf_take(struct shoal_buf *b, char **out, size_t *len)
{
    if (!b->data) {
        char *p = malloc(1);
        if (!p)
            return SHOAL_ERR_NOMEM;
        p[0] = '\0';
        *out = p;
        if (len)
            *len = 0;
        return SHOAL_OK;
    }
    *out = b->data;
    if (len)
        *len = b->len;
    shoal_buf_init(b, b->max);
    return SHOAL_OK;
}

static enum shoal_err call_take(struct acc_call *c, struct remote_tool_call *t)
{
    memset(t, 0, sizeof(*t));
    if (c->args.len == 0 && shoal_buf_puts(&c->args, "{}"))
        return SHOAL_ERR_NOMEM;
    if (buf_take(&c->id, &t->id, NULL) || buf_take(&c->name, &t->name, NULL) ||
        buf_take(&c->args, &t->arguments, NULL))
        return SHOAL_ERR_NOMEM;
    const char *end = NULL;
    size_t n = strlen(t->arguments);
    t->args = cJSON_ParseWithLengthOpts(t->arguments, n, &end, false);
    size_t used = t->args && end ? (size_t)(end - t->arguments) : 0;
    while (t->args && used < n && strchr(" \t\r\n", t->arguments[used]))
        used++;
    if (t->args && used != n) {
        cJSON_Delete(t->args);
        t->args = NULL;
        snprintf(t->args_error, sizeof(t->args_error), "unexpected data after JSON at byte %zu",
                 used);
    } else if (!t->args) {
        size_t at = end && end >= t->arguments ? (size_t)(end - t->arguments) : 0;
        snprintf(t->args_error, sizeof(t->args_error), "arguments are not valid JSON (byte %zu)",
                 at);
    }
    return SHOAL_OK;
}

enum shoal_err acc_take(struct acc *a, struct remote_result *res)
{
    remote_result_fini(res);
    enum shoal_err err = buf_take(&a->text, &res->text, &res->text_len);
    if (!err && a->has_refusal)
        err = buf_take(&a->refusal, &res->refusal, NULL);
    if (!err && a->n_calls) {
        res->tool_calls = calloc(a->n_calls, sizeof(*res->tool_calls));
        if (!res->tool_calls)
            err = SHOAL_ERR_NOMEM;
        for (size_t i = 0; !err && i < a->n_calls; i++) {
            err = call_take(&a->calls[i], &res->tool_calls[i]);
            res->n_tool_calls = i + 1;
        }
    }
    res->logprobs = a->lps;
    res->n_logprobs = a->n_lps;
    a->lps = NULL;
    a->n_lps = a->cap_lps = 0;
    res->finish = a->finish;
    memcpy(res->finish_raw, a->finish_raw, sizeof(res->finish_raw));
    res->usage = a->usage;
    memcpy(res->id, a->id, sizeof(res->id));
    memcpy(res->model, a->model, sizeof(res->model));
    memcpy(res->request_id, a->request_id, sizeof(res->request_id));
    if (err && !res->text && (res->text = malloc(1))) {
        /* Keep the promise that text is never NULL when we can. */
        res->text[0] = '\0';
        res->text_len = 0;
    }
    return err;
}

/* ---- Cost ---- */

double remote_cost_usd(const struct remote_price *p, const struct remote_usage *u)
{
    if (!u->present)
        return 0.0;
    int64_t cached = u->cached_input_tokens > 0 ? u->cached_input_tokens : 0;
    int64_t written = u->cache_write_tokens > 0 ? u->cache_write_tokens : 0;
    int64_t plain = u->input_tokens - cached - written;
    if (plain < 0)
        plain = 0;
    int64_t out = u->output_tokens > 0 ? u->output_tokens : 0;
    double cached_price =
        p->cached_input_per_mtok < 0 ? p->input_per_mtok : p->cached_input_per_mtok;
    double write_price = p->cache_write_per_mtok < 0 ? p->input_per_mtok : p->cache_write_per_mtok;
    /* Sum per-token products before the one division: exact for whole-cent
     * prices and token counts below 2^53. */
    double micro = (double)plain * p->input_per_mtok + (double)cached * cached_price +
                   (double)written * write_price + (double)out * p->output_per_mtok;
    return micro / 1e6;
}

/* ---- Tree builders ---- */

static cJSON *jb_add(struct jb *b, cJSON *parent, const char *key, cJSON *item)
{
    if (!item) {
        b->oom = true;
        return NULL;
    }
    if (!parent) {
        if (key || b->oom) {
            cJSON_Delete(item);
            b->oom = true;
            return NULL;
        }
        return item; /* a new root */
    }
    bool ok = cJSON_IsArray(parent) ? cJSON_AddItemToArray(parent, item)
                                    : cJSON_AddItemToObject(parent, key, item);
    if (!ok) {
        cJSON_Delete(item);
        b->oom = true;
        return NULL;
    }
    return item;
}

cJSON *jb_obj(struct jb *b, cJSON *parent, const char *key)
{
    return jb_add(b, parent, key, cJSON_CreateObject());
}

cJSON *jb_arr(struct jb *b, cJSON *parent, const char *key)
{
    return jb_add(b, parent, key, cJSON_CreateArray());
}

void jb_str(struct jb *b, cJSON *parent, const char *key, const char *v)
{
    jb_add(b, parent, key, cJSON_CreateString(v ? v : ""));
}

void jb_strn(struct jb *b, cJSON *parent, const char *key, const char *v, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) {
        b->oom = true;
        return;
    }
    memcpy(p, v, n);
    p[n] = '\0';
    jb_add(b, parent, key, cJSON_CreateString(p));
    free(p);
}

void jb_num(struct jb *b, cJSON *parent, const char *key, double v)
{
    jb_add(b, parent, key, cJSON_CreateNumber(v));
}

void jb_bool(struct jb *b, cJSON *parent, const char *key, bool v)
{
    jb_add(b, parent, key, cJSON_CreateBool(v));
}

void jb_null(struct jb *b, cJSON *parent, const char *key)
{
    jb_add(b, parent, key, cJSON_CreateNull());
}

void jb_dup(struct jb *b, cJSON *parent, const char *key, const cJSON *v)
{
    jb_add(b, parent, key, cJSON_Duplicate(v, true));
}

enum shoal_err jb_render(struct jb *b, cJSON *root, struct shoal_buf *out)
{
    enum shoal_err err = SHOAL_ERR_NOMEM;
    if (root && !b->oom) {
        size_t before = out->len;
        err = shoal_json_render(root, out);
        if (err) {
            out->len = before;
            if (out->data)
                out->data[before] = '\0';
        }
    }
    cJSON_Delete(root);
    return err;
}

/* ---- Rendering as an OpenAI chat.completion ---- */

static void usage_json(struct jb *b, cJSON *root, const struct remote_usage *u)
{
    cJSON *o = jb_obj(b, root, "usage");
    jb_num(b, o, "prompt_tokens", (double)u->input_tokens);
    jb_num(b, o, "completion_tokens", (double)u->output_tokens);
    jb_num(b, o, "total_tokens", (double)(u->input_tokens + u->output_tokens));
    cJSON *pd = jb_obj(b, o, "prompt_tokens_details");
    jb_num(b, pd, "cached_tokens", (double)u->cached_input_tokens);
    if (u->reasoning_tokens) {
        cJSON *cd = jb_obj(b, o, "completion_tokens_details");
        jb_num(b, cd, "reasoning_tokens", (double)u->reasoning_tokens);
    }
}

static void logprobs_json(struct jb *b, cJSON *choice, const struct remote_result *r)
{
    cJSON *content = jb_arr(b, jb_obj(b, choice, "logprobs"), "content");
    for (size_t i = 0; i < r->n_logprobs && !b->oom; i++) {
        const struct remote_logprob *lp = &r->logprobs[i];
        cJSON *e = jb_obj(b, content, NULL);
        jb_str(b, e, "token", lp->token);
        jb_num(b, e, "logprob", lp->logprob);
        cJSON *top = jb_arr(b, e, "top_logprobs");
        for (size_t k = 0; k < lp->n_top; k++) {
            cJSON *t = jb_obj(b, top, NULL);
            jb_str(b, t, "token", lp->top[k].token);
            jb_num(b, t, "logprob", lp->top[k].logprob);
        }
    }
}

static void tool_calls_json(struct jb *b, cJSON *parent, const struct remote_result *r, bool index)
{
    cJSON *calls = jb_arr(b, parent, "tool_calls");
    for (size_t i = 0; i < r->n_tool_calls; i++) {
        cJSON *c = jb_obj(b, calls, NULL);
        if (index)
            jb_num(b, c, "index", (double)i);
        jb_str(b, c, "id", r->tool_calls[i].id);
        jb_str(b, c, "type", "function");
        cJSON *f = jb_obj(b, c, "function");
        jb_str(b, f, "name", r->tool_calls[i].name);
        jb_str(b, f, "arguments", r->tool_calls[i].arguments);
    }
}

enum shoal_err remote_result_render_openai(const struct remote_result *r, const char *model,
                                           int64_t created, struct shoal_buf *out)
{
    struct jb b = {false};
    cJSON *root = jb_obj(&b, NULL, NULL);
    jb_str(&b, root, "id", r->id[0] ? r->id : "chatcmpl-shoal");
    jb_str(&b, root, "object", "chat.completion");
    jb_num(&b, root, "created", (double)created);
    jb_str(&b, root, "model", model ? model : r->model);
    cJSON *choice = jb_obj(&b, jb_arr(&b, root, "choices"), NULL);
    jb_num(&b, choice, "index", 0);
    cJSON *msg = jb_obj(&b, choice, "message");
    jb_str(&b, msg, "role", "assistant");
    if (r->n_tool_calls && (!r->text || !r->text[0]))
        jb_null(&b, msg, "content");
    else
        jb_str(&b, msg, "content", r->text);
    if (r->refusal)
        jb_str(&b, msg, "refusal", r->refusal);
    if (r->n_tool_calls)
        tool_calls_json(&b, msg, r, false);
    if (r->n_logprobs)
        logprobs_json(&b, choice, r);
    else
        jb_null(&b, choice, "logprobs");
    if (r->finish == REMOTE_FINISH_UNKNOWN)
        jb_null(&b, choice, "finish_reason");
    else
        jb_str(&b, choice, "finish_reason", remote_finish_name(r->finish));
    if (r->usage.present)
        usage_json(&b, root, &r->usage);
    return jb_render(&b, root, out);
}

enum shoal_err remote_chunk_render_openai(const struct remote_chunk *c, struct shoal_buf *out)
{
    struct jb b = {false};
    cJSON *root = jb_obj(&b, NULL, NULL);
    jb_str(&b, root, "id", c->id);
    jb_str(&b, root, "object", "chat.completion.chunk");
    jb_num(&b, root, "created", (double)c->created);
    jb_str(&b, root, "model", c->model);
    cJSON *choices = jb_arr(&b, root, "choices");
    if (c->usage) {
        usage_json(&b, root, c->usage);
        return jb_render(&b, root, out);
    }
    cJSON *choice = jb_obj(&b, choices, NULL);
    jb_num(&b, choice, "index", 0);
    cJSON *delta = jb_obj(&b, choice, "delta");
    if (c->role)
        jb_str(&b, delta, "role", "assistant");
    if (c->text)
        jb_strn(&b, delta, "content", c->text, c->text_len);
    const struct remote_result *r = c->end;
    if (r && r->n_tool_calls)
        tool_calls_json(&b, delta, r, true);
    if (r && r->n_logprobs)
        logprobs_json(&b, choice, r);
    else
        jb_null(&b, choice, "logprobs");
    if (!r || r->finish == REMOTE_FINISH_UNKNOWN)
        jb_null(&b, choice, "finish_reason");
    else
        jb_str(&b, choice, "finish_reason", remote_finish_name(r->finish));
    return jb_render(&b, root, out);
}
