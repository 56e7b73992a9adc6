/* api_chat.c: the OpenAI-compatible routes, so existing SDKs and tools
 * reach every configured model, local or remote, through the socket:
 * POST /v1/chat/completions (whole or streamed as server-sent events) and
 * GET /v1/models. A call goes to the provider interface (provider.h) and is
 * recorded in the trace store as a run with one model-call span: tokens,
 * latency, time to first token, cost and the route taken. */
#include "provider.h"
#include "server.h"
#include "traces.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct chat_call {
    struct api_later *later;
    struct provider_call *call;
    struct traces_store *traces; /* NULL: not recorded */
    int64_t run_id, span_id;
    char model[72];
    char provider[16];
    char id[64];
    int64_t created;
    bool stream, include_usage;
    bool began; /* stream: headers and the role chunk are out */
    bool gone;  /* the client left; the call is cancelled */
    struct shoal_buf scratch;
};

static const char *provider_name(enum config_provider p)
{
    switch (p) {
    case CONFIG_PROVIDER_LOCAL:
        return "local";
    case CONFIG_PROVIDER_OPENAI:
        return "openai";
    case CONFIG_PROVIDER_ANTHROPIC:
        return "anthropic";
    }
    return "unknown";
}

/* The HTTP status a typed provider error is answered with. */
static int status_of(enum remote_error_kind k)
{
    switch (k) {
    case REMOTE_ERR_INVALID_REQUEST:
    case REMOTE_ERR_CONTEXT_OVERFLOW:
        return 400;
    case REMOTE_ERR_RATE_LIMITED:
        return 429;
    case REMOTE_ERR_TIMEOUT:
        return 504;
    case REMOTE_ERR_UNAVAILABLE:
    case REMOTE_ERR_CANCELLED:
        return 503;
    case REMOTE_ERR_AUTH:
    case REMOTE_ERR_QUOTA:
    case REMOTE_ERR_BAD_RESPONSE:
        return 502;
    default:
        return 500;
    }
}

/* {"error":{"type":kind,"message":...,"code":...}}: OpenAI clients read
 * message and code ("context_length_exceeded" lets them trim and retry). */
static void error_json(struct shoal_buf *b, const struct remote_error *e)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *o = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    const char *code = e->kind == REMOTE_ERR_CONTEXT_OVERFLOW ? "context_length_exceeded"
                       : e->code[0]                            ? e->code
                                                               : NULL;
    if (!o || !cJSON_AddStringToObject(o, "type", remote_error_kind_name(e->kind)) ||
        !cJSON_AddStringToObject(o, "message", e->message) ||
        (code ? !cJSON_AddStringToObject(o, "code", code) : !cJSON_AddNullToObject(o, "code")) ||
        (e->status && !cJSON_AddNumberToObject(o, "upstream_status", (double)e->status)) ||
        shoal_json_render(root, b) != SHOAL_OK)
        api_error_body(b, "internal", e->message);
    cJSON_Delete(root);
}

/* An error of the route itself, in the same shape as a provider's
 * ("code" is always there, null when there is none, as OpenAI's are). */
static void chat_error(struct shoal_buf *body, const char *type, const char *message)
{
    shoal_buf_reset(body);
    cJSON *root = cJSON_CreateObject();
    cJSON *o = root ? cJSON_AddObjectToObject(root, "error") : NULL;
    if (!o || !cJSON_AddStringToObject(o, "type", type) ||
        !cJSON_AddStringToObject(o, "message", message) || !cJSON_AddNullToObject(o, "code") ||
        shoal_json_render(root, body) != SHOAL_OK)
        api_error_body(body, type, message);
    cJSON_Delete(root);
}

/* ---- Traces ---- */

static void trace_start(struct chat_call *cc, const struct config_model *m, const cJSON *req)
{
    if (!cc->traces)
        return;
    char *input = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(req, "messages"));
    struct traces_attr at[6] = {
        {.key = TRACES_KEY_OPERATION, .type = TRACES_ATTR_STRING, .v.s = "chat"},
        {.key = TRACES_KEY_SYSTEM, .type = TRACES_ATTR_STRING,
         .v.s = m->provider == CONFIG_PROVIDER_LOCAL ? "shoal" : cc->provider},
        {.key = TRACES_KEY_REQUEST_MODEL, .type = TRACES_ATTR_STRING, .v.s = cc->model},
        {.key = TRACES_KEY_ROUTE_MODEL, .type = TRACES_ATTR_STRING, .v.s = cc->model},
        {.key = TRACES_KEY_ROUTE_PROVIDER, .type = TRACES_ATTR_STRING, .v.s = cc->provider},
        {.key = TRACES_KEY_ROUTE_REASON, .type = TRACES_ATTR_STRING, .v.s = "requested"},
    };
    if (traces_run_start(cc->traces, "chat", input ? input : "", 0, &cc->run_id, NULL) !=
            SHOAL_OK ||
        traces_span_start(cc->traces, cc->run_id, 0, TRACES_SPAN_LLM, cc->model, 0, at,
                          SHOAL_ARRAY_LEN(at), &cc->span_id, NULL) != SHOAL_OK) {
        shoal_log(SHOAL_LOG_WARN, "trace_dropped", "chat %s: trace queue full", cc->model);
        cc->run_id = 0;
    }
    cJSON_free(input);
}

static void trace_end(struct chat_call *cc, const struct remote_result *res,
                      const struct remote_error *err, const struct provider_stats *st)
{
    if (!cc->traces || !cc->run_id)
        return;
    const char *text = res && res->text ? res->text : "";
    const char *finish = err ? "error" : remote_finish_name(res->finish);
    struct traces_attr at[11] = {
        {.key = TRACES_KEY_RESPONSE_ID, .type = TRACES_ATTR_STRING,
         .v.s = res && res->id[0] ? res->id : cc->id},
        {.key = TRACES_KEY_REQUEST_ID, .type = TRACES_ATTR_STRING,
         .v.s = res ? res->request_id : ""},
        {.key = TRACES_KEY_QUEUE_MS, .type = TRACES_ATTR_INT, .v.i = (int64_t)st->queue_ms},
        {.key = TRACES_KEY_ATTEMPTS, .type = TRACES_ATTR_INT, .v.i = st->attempts},
        {.key = TRACES_KEY_RESPONSE_MODEL, .type = TRACES_ATTR_STRING,
         .v.s = res && res->model[0] ? res->model : cc->model},
        {.key = TRACES_KEY_INPUT_TOKENS, .type = TRACES_ATTR_INT,
         .v.i = res ? res->usage.input_tokens : 0},
        {.key = TRACES_KEY_OUTPUT_TOKENS, .type = TRACES_ATTR_INT,
         .v.i = res ? res->usage.output_tokens : 0},
        {.key = TRACES_KEY_FINISH_REASONS, .type = TRACES_ATTR_STRING, .v.s = finish},
        {.key = TRACES_KEY_COST_USD, .type = TRACES_ATTR_DOUBLE, .v.d = st->cost_usd},
        {.key = TRACES_KEY_LATENCY_TTFT_MS, .type = TRACES_ATTR_INT,
         .v.i = (int64_t)st->first_token_ms},
        {.key = TRACES_KEY_COMPLETION, .type = TRACES_ATTR_STRING, .content = true, .v.s = text},
    };
    char why[700] = "";
    if (err)
        snprintf(why, sizeof(why), "%s: %s", remote_error_kind_name(err->kind), err->message);
    enum traces_status status = !err                               ? TRACES_STATUS_OK
                                : err->kind == REMOTE_ERR_CANCELLED ? TRACES_STATUS_CANCELLED
                                                                    : TRACES_STATUS_ERROR;
    /* No baseline yet: without a policy the cost on the baseline model is
     * the cost itself, so a direct call claims no savings. */
    struct traces_run_totals tot = {
        .input_tokens = res ? res->usage.input_tokens : 0,
        .output_tokens = res ? res->usage.output_tokens : 0,
        .cost_usd = st->cost_usd,
        .baseline_cost_usd = st->cost_usd,
    };
    if (traces_span_end(cc->traces, cc->span_id, status, err ? why : NULL, 0, at,
                        SHOAL_ARRAY_LEN(at), NULL) != SHOAL_OK ||
        traces_run_end(cc->traces, cc->run_id, text, status, &tot, 0, NULL) != SHOAL_OK)
        shoal_log(SHOAL_LOG_WARN, "trace_dropped", "chat %s: trace queue full", cc->model);
}

/* ---- The call ---- */

static void call_free(struct chat_call *cc)
{
    shoal_buf_fini(&cc->scratch);
    free(cc);
}

/* Send one SSE event with chunk c; false when the client is gone. */
static bool send_chunk(struct chat_call *cc, struct remote_chunk *c)
{
    c->id = cc->id;
    c->model = cc->model;
    c->created = cc->created;
    shoal_buf_reset(&cc->scratch);
    if (shoal_buf_puts(&cc->scratch, "data: ") != SHOAL_OK ||
        remote_chunk_render_openai(c, &cc->scratch) != SHOAL_OK ||
        shoal_buf_puts(&cc->scratch, "\n\n") != SHOAL_OK)
        return false;
    return api_later_stream_write(cc->later, cc->scratch.data, cc->scratch.len);
}

static bool stream_begin(struct chat_call *cc)
{
    if (cc->began)
        return true;
    cc->began = true;
    if (!api_later_stream_begin(cc->later, 200, "text/event-stream"))
        return false;
    struct remote_chunk c = {.role = true};
    return send_chunk(cc, &c);
}

/* The client left: stop the model and end the promise (which now only
 * frees it). The trace says cancelled. */
static void on_gone(void *arg)
{
    struct chat_call *cc = arg;
    if (cc->gone)
        return;
    cc->gone = true;
    provider_call_cancel(cc->call);
    cc->call = NULL;
    struct remote_error err;
    remote_error_clear(&err);
    err.kind = REMOTE_ERR_CANCELLED;
    shoal_strlcpy(err.message, "the client went away", sizeof(err.message));
    struct provider_stats st = {0};
    trace_end(cc, NULL, &err, &st);
    if (cc->began)
        api_later_stream_end(cc->later);
    else
        api_later_done(cc->later, 503, "", 0);
    call_free(cc);
}

static void on_text(void *arg, const char *text, size_t n)
{
    struct chat_call *cc = arg;
    struct remote_chunk c = {.text = text, .text_len = n};
    if (!stream_begin(cc) || !send_chunk(cc, &c))
        on_gone(cc);
}

/* The answer as a chat.completion under our id (the upstream's id stays in
 * the trace). */
static enum shoal_err render_whole(struct chat_call *cc, const struct remote_result *res)
{
    struct remote_result r = *res; /* shallow: only id differs */
    shoal_strlcpy(r.id, cc->id, sizeof(r.id));
    return remote_result_render_openai(&r, cc->model, cc->created, &cc->scratch);
}

static void on_done(void *arg, const struct remote_result *res, const struct remote_error *err,
                    const struct provider_stats *st)
{
    struct chat_call *cc = arg;
    cc->call = NULL;
    trace_end(cc, res, err, st);
    struct shoal_logline l;
    if (shoal_log_begin(&l, err ? SHOAL_LOG_WARN : SHOAL_LOG_INFO, "chat")) {
        shoal_log_kv(&l, "model", "%s", cc->model);
        shoal_log_kv(&l, "in", "%lld", (long long)res->usage.input_tokens);
        shoal_log_kv(&l, "out", "%lld", (long long)res->usage.output_tokens);
        shoal_log_kv(&l, "ms", "%llu", (unsigned long long)st->total_ms);
        if (err)
            shoal_log_kv(&l, "error", "%s: %s", remote_error_kind_name(err->kind), err->message);
        shoal_log_end(&l);
    }
    shoal_buf_reset(&cc->scratch);
    if (!cc->stream || (!cc->began && err)) {
        /* Nothing sent yet: a whole answer, or an error with its status. */
        int status = 200;
        if (err) {
            status = status_of(err->kind);
            error_json(&cc->scratch, err);
        } else if (render_whole(cc, res) != SHOAL_OK) {
            status = 500;
            chat_error(&cc->scratch, "internal", "the answer could not be rendered");
        }
        api_later_done(cc->later, status, cc->scratch.data, cc->scratch.len);
        call_free(cc);
        return;
    }
    bool ok = stream_begin(cc);
    if (ok && err) {
        /* Headers are out: the error travels as an event, as OpenAI's do. */
        shoal_buf_reset(&cc->scratch);
        if (shoal_buf_puts(&cc->scratch, "data: ") == SHOAL_OK) {
            error_json(&cc->scratch, err);
            ok = shoal_buf_puts(&cc->scratch, "\n\n") == SHOAL_OK &&
                 api_later_stream_write(cc->later, cc->scratch.data, cc->scratch.len);
        }
    } else if (ok) {
        struct remote_chunk end = {.end = res};
        ok = send_chunk(cc, &end);
        if (ok && cc->include_usage && res->usage.present) {
            struct remote_chunk u = {.usage = &res->usage};
            ok = send_chunk(cc, &u);
        }
    }
    if (ok)
        (void)api_later_stream_write(cc->later, "data: [DONE]\n\n", 14);
    api_later_stream_end(cc->later);
    call_free(cc);
}

static void reply_status(struct shoal_buf *body, struct api_reply *rep, int status,
                         const char *message)
{
    rep->status = status;
    chat_error(body, api_error_type(status), message);
}

void api_chat_completions(const struct api_info *info, const struct api_request *req,
                          struct shoal_buf *body, struct api_reply *rep)
{
    cJSON *root = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    char msg[600];
    if (shoal_json_parse(req->body, req->body_len, &root, &d) != SHOAL_OK) {
        shoal_diag_format(&d, msg, sizeof(msg));
        reply_status(body, rep, 400, msg);
        return;
    }
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(root, "model");
    const struct config_model *m = NULL;
    if (!cJSON_IsObject(root)) {
        reply_status(body, rep, 400, "expected a JSON object (an OpenAI chat completion request)");
        goto out;
    }
    if (!cJSON_IsString(jm) || !jm->valuestring[0]) {
        reply_status(body, rep, 400, "$.model: expected the name of a configured model");
        goto out;
    }
    if (!(m = config_model_find(info->cfg, jm->valuestring))) {
        struct shoal_buf names;
        shoal_buf_init(&names, 4096);
        for (size_t i = 0; i < info->cfg->n_models; i++)
            if (shoal_buf_printf(&names, "%s%s", i ? ", " : "", info->cfg->models[i].name) !=
                SHOAL_OK)
                break;
        snprintf(msg, sizeof(msg), "no model named \"%.64s\" (configured: %s)", jm->valuestring,
                 names.len ? names.data : "none; see models: in shoal.yaml");
        shoal_buf_fini(&names);
        rep->status = 404;
        chat_error(body, "model_not_found", msg);
        goto out;
    }
    if (!info->providers) {
        reply_status(body, rep, 503, "model calls are not available in this daemon");
        goto out;
    }
    struct chat_call *cc = calloc(1, sizeof(*cc));
    if (!cc) {
        reply_status(body, rep, 500, "out of memory");
        goto out;
    }
    shoal_buf_init(&cc->scratch, SHOAL_CAP_GEN_TEXT * 2 + 65536);
    shoal_strlcpy(cc->model, m->name, sizeof(cc->model));
    shoal_strlcpy(cc->provider, provider_name(m->provider), sizeof(cc->provider));
    cc->created = (int64_t)time(NULL);
    cc->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "stream"));
    cc->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "stream_options"), "include_usage"));
    cc->traces = info->traces ? traces_service_store(info->traces) : NULL;
    /* The id the client sees names the run in the trace store
     * (GET /v1/runs/{id}); untraced calls get a process-unique one. */
    trace_start(cc, m, root);
    static uint64_t untraced;
    if (cc->run_id)
        snprintf(cc->id, sizeof(cc->id), "chatcmpl-%lld", (long long)cc->run_id);
    else
        snprintf(cc->id, sizeof(cc->id), "chatcmpl-u%lld-%llu", (long long)cc->created,
                 (unsigned long long)++untraced);
    struct remote_error fail;
    remote_error_clear(&fail);
    fail.kind = REMOTE_ERR_INTERNAL;
    struct provider_stats none = {0};
    if (!(cc->later = api_reply_later(req))) {
        shoal_strlcpy(fail.message, "out of memory", sizeof(fail.message));
        trace_end(cc, NULL, &fail, &none);
        call_free(cc);
        reply_status(body, rep, 500, "out of memory");
        goto out;
    }
    /* Before the call starts: ending the promise, on any path, cancels it. */
    api_later_on_gone(cc->later, on_gone, cc);
    struct provider_cb cb = {.on_text = cc->stream ? on_text : NULL, .on_done = on_done,
                             .arg = cc};
    enum shoal_err e = provider_call_start(info->providers, m, root, cc->stream, &cb, &cc->call, &d);
    if (e) {
        shoal_diag_format(&d, msg, sizeof(msg));
        int status = e == SHOAL_ERR_BUSY ? 503 : e == SHOAL_ERR_NOMEM ? 500 : 400;
        chat_error(&cc->scratch,
                   e == SHOAL_ERR_UNSUPPORTED ? "unsupported" : api_error_type(status), msg);
        fail.kind = status == 400 ? REMOTE_ERR_INVALID_REQUEST
                    : status == 503 ? REMOTE_ERR_UNAVAILABLE
                                    : REMOTE_ERR_INTERNAL;
        shoal_strlcpy(fail.message, msg, sizeof(fail.message));
        trace_end(cc, NULL, &fail, &none);
        api_later_done(cc->later, status, cc->scratch.data, cc->scratch.len);
        call_free(cc);
        goto out;
    }
out:
    cJSON_Delete(root);
}

void api_models(const struct api_info *info, const struct api_request *req, struct shoal_buf *body,
                struct api_reply *rep)
{
    (void)req;
    cJSON *root = cJSON_CreateObject();
    cJSON *data = root ? cJSON_AddArrayToObject(root, "data") : NULL;
    bool ok = data && cJSON_AddStringToObject(root, "object", "list");
    for (size_t i = 0; ok && i < info->cfg->n_models; i++) {
        const struct config_model *m = &info->cfg->models[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(data, o) && cJSON_AddStringToObject(o, "id", m->name) &&
             cJSON_AddStringToObject(o, "object", "model") &&
             cJSON_AddNumberToObject(o, "created", (double)info->started_unix) &&
             cJSON_AddStringToObject(o, "owned_by", provider_name(m->provider)) &&
             cJSON_AddStringToObject(o, "provider", provider_name(m->provider));
        if (ok && m->provider != CONFIG_PROVIDER_LOCAL)
            ok = cJSON_AddStringToObject(o, "upstream_model", m->model ? m->model : "") != NULL;
        uint64_t bytes = 0;
        bool loaded = ok && m->provider == CONFIG_PROVIDER_LOCAL && info->providers &&
                      provider_model_loaded(info->providers, m, &bytes);
        if (ok && m->provider == CONFIG_PROVIDER_LOCAL)
            ok = cJSON_AddBoolToObject(o, "loaded", loaded) &&
                 (!loaded || cJSON_AddNumberToObject(o, "memory_bytes", (double)bytes));
        if (!o)
            ok = false;
    }
    if (!ok || shoal_json_render(root, body) != SHOAL_OK) {
        reply_status(body, rep, 500, "out of memory rendering the model list");
    } else {
        rep->status = 200;
    }
    cJSON_Delete(root);
}
