/* fuzz_sse.c: libFuzzer target for the remote/ parsers. The input is fed
 * to the SSE decoder (small caps) whole, split at a point the data picks,
 * and byte by byte, and the events and verdict must be the same each time;
 * then to both providers' stream parsers the same three ways (same result),
 * to the whole-answer parsers and the error classifier under a few statuses,
 * to Retry-After parsing, and, when it is a JSON object, to the request
 * reader and both body builders. Invariants on every result; any violation
 * abort()s so the fuzzer and the corpus replay both see it. */
#include "remote.h"
#include "fuzz.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- SSE: the events as one transcript ---- */

static enum shoal_err record(void *arg, const struct remote_sse_event *ev)
{
    struct shoal_buf *t = arg;
    ASSERT(ev->event && ev->data && ev->id);
    /* A NUL byte may sit in a name ("event: \0x"); consumers read names as
     * C strings, so only the pointer is promised. */
    ASSERT(ev->data[ev->data_len] == '\0');
    ASSERT(!strchr(ev->event, '\n') && !strchr(ev->event, '\r'));
    ASSERT(!memchr(ev->data, '\r', ev->data_len));
    enum shoal_err err = shoal_buf_printf(t, "%s|%zu|%s|", ev->event, ev->data_len, ev->id);
    if (!err)
        err = shoal_buf_append(t, ev->data, ev->data_len);
    ASSERT(err == SHOAL_OK || err == SHOAL_ERR_TOO_BIG);
    /* An event whose data says "stop" stops the decoder: error paths too. */
    return ev->data_len == 4 && !memcmp(ev->data, "stop", 4) ? SHOAL_ERR_INVALID : SHOAL_OK;
}

static enum shoal_err sse_run(const char *in, size_t n, size_t step, size_t cut,
                              struct shoal_buf *t)
{
    struct remote_sse *s;
    ASSERT(remote_sse_new(256, 1024, record, t, &s) == SHOAL_OK);
    enum shoal_err err = SHOAL_OK;
    size_t at = 0;
    while (!err && at < n) {
        size_t len = step ? step : (cut && at == 0 ? cut : n - at);
        if (len > n - at)
            len = n - at;
        err = remote_sse_feed(s, in + at, len, NULL);
        at += len;
    }
    if (!err)
        err = remote_sse_finish(s, NULL);
    /* Failure sticks. */
    if (err)
        ASSERT(remote_sse_feed(s, "data: x\n\n", 9, NULL) == err);
    remote_sse_free(s);
    return err;
}

static void fuzz_sse(const char *in, size_t n, size_t cut)
{
    struct shoal_buf a, b, c;
    shoal_buf_init(&a, 1 << 20);
    shoal_buf_init(&b, 1 << 20);
    shoal_buf_init(&c, 1 << 20);
    enum shoal_err ea = sse_run(in, n, 0, 0, &a);
    enum shoal_err eb = sse_run(in, n, 0, cut, &b);
    enum shoal_err ec = sse_run(in, n, n <= 4096 ? 1 : 0, cut, &c);
    ASSERT(ea == eb && eb == ec);
    ASSERT(ea == SHOAL_OK || ea == SHOAL_ERR_TOO_BIG || ea == SHOAL_ERR_INVALID);
    ASSERT(a.len == b.len && b.len == c.len);
    ASSERT(!a.len || (!memcmp(a.data, b.data, a.len) && !memcmp(b.data, c.data, a.len)));
    shoal_buf_fini(&a);
    shoal_buf_fini(&b);
    shoal_buf_fini(&c);
}

/* ---- Results ---- */

static void check_result(const struct remote_result *r, enum remote_error_kind k,
                         const struct remote_error *e)
{
    ASSERT(r->text != NULL && strlen(r->text) == r->text_len);
    ASSERT(r->text_len <= REMOTE_CAP_TEXT);
    ASSERT(r->n_tool_calls <= REMOTE_CAP_TOOL_CALLS);
    for (size_t i = 0; i < r->n_tool_calls; i++) {
        const struct remote_tool_call *c = &r->tool_calls[i];
        ASSERT(c->id && c->name && c->arguments);
        ASSERT((c->args == NULL) == (c->args_error[0] != '\0'));
    }
    ASSERT(r->n_logprobs <= REMOTE_CAP_LOGPROBS);
    for (size_t i = 0; i < r->n_logprobs; i++)
        ASSERT(r->logprobs[i].token && r->logprobs[i].n_top <= 20);
    ASSERT(memchr(r->finish_raw, '\0', sizeof(r->finish_raw)));
    ASSERT(memchr(r->id, '\0', sizeof(r->id)) && memchr(r->model, '\0', sizeof(r->model)));
    ASSERT(k == e->kind);
    ASSERT(r->partial == (k != REMOTE_ERR_NONE));
    ASSERT(k == REMOTE_ERR_NONE || r->finish == REMOTE_FINISH_ERROR);
    ASSERT(memchr(e->message, '\0', sizeof(e->message)) && memchr(e->code, '\0', sizeof(e->code)));
    ASSERT(k == REMOTE_ERR_NONE || e->message[0] != '\0');
    ASSERT(k != REMOTE_ERR_NONE || (!e->message[0] && !e->partial));
    ASSERT(!strstr(e->message, "sk-fuzzcanary"));
}

static bool count_text(void *arg, const char *t, size_t n)
{
    size_t *len = arg;
    ASSERT(n > 0 && t[n] == '\0');
    *len += n;
    return true;
}

struct stream_out {
    enum remote_error_kind k;
    struct remote_result res;
    struct remote_error err;
    size_t streamed;
};

static void stream_run(enum remote_provider p, const struct remote_request *rq, const char *in,
                       size_t n, size_t step, size_t cut, const struct remote_reply *rep,
                       struct stream_out *o)
{
    struct remote_stream *s;
    o->streamed = 0;
    struct remote_stream_cb cb = {count_text, &o->streamed};
    ASSERT(remote_stream_new(p, rq, &cb, &s) == SHOAL_OK);
    size_t at = 0;
    while (at < n) {
        size_t len = step ? step : (cut && at == 0 ? cut : n - at);
        if (len > n - at)
            len = n - at;
        if (!remote_stream_feed(s, in + at, len))
            break;
        at += len;
    }
    remote_result_init(&o->res);
    o->k = remote_stream_finish(s, rep, &o->res, &o->err);
    check_result(&o->res, o->k, &o->err);
    /* What was streamed is exactly the text, unless a JSON body was read whole. */
    ASSERT(o->streamed <= o->res.text_len);
    remote_stream_free(s);
}

static void fuzz_streams(const char *in, size_t n, size_t cut, const struct remote_reply *rep,
                         const struct remote_request *json_req)
{
    for (int p = 0; p < 2; p++) {
        const struct remote_request *rq = p == REMOTE_PROVIDER_ANTHROPIC ? json_req : NULL;
        struct stream_out a, b, c;
        stream_run((enum remote_provider)p, rq, in, n, 0, 0, rep, &a);
        stream_run((enum remote_provider)p, rq, in, n, 0, cut, rep, &b);
        stream_run((enum remote_provider)p, rq, in, n, n <= 4096 ? 1 : 0, cut, rep, &c);
        const struct stream_out *o[2] = {&b, &c};
        for (int i = 0; i < 2; i++) {
            ASSERT(o[i]->k == a.k);
            ASSERT(o[i]->res.text_len == a.res.text_len &&
                   !memcmp(o[i]->res.text, a.res.text, a.res.text_len));
            ASSERT(o[i]->res.n_tool_calls == a.res.n_tool_calls);
            ASSERT(o[i]->res.finish == a.res.finish);
            ASSERT(o[i]->res.usage.input_tokens == a.res.usage.input_tokens);
            ASSERT(o[i]->streamed == a.streamed);
            ASSERT(!strcmp(o[i]->err.message, a.err.message));
        }
        remote_result_fini(&a.res);
        remote_result_fini(&b.res);
        remote_result_fini(&c.res);
    }
}

static void fuzz_whole(const char *in, size_t n, const struct remote_request *json_req,
                       const struct shoal_secret *key)
{
    static const long statuses[] = {200, 400, 429, 529};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(statuses); i++) {
        struct remote_reply rep = {
            REMOTE_TRANSPORT_OK, statuses[i], "Sun, 06 Nov 1994 08:49:37 GMT", "req_f", NULL,
            784111777000LL,      key};
        for (int p = 0; p < 2; p++) {
            struct remote_result res;
            struct remote_error err;
            remote_result_init(&res);
            enum remote_error_kind k = remote_response_parse(
                (enum remote_provider)p, p ? json_req : NULL, &rep, in, n, &res, &err);
            check_result(&res, k, &err);
            ASSERT(statuses[i] == 200 || k != REMOTE_ERR_NONE);
            ASSERT(!strcmp(res.request_id, "req_f"));
            remote_result_fini(&res);
            struct remote_error e2;
            enum remote_error_kind k2 =
                remote_error_classify((enum remote_provider)p, &rep, in, n, &e2);
            ASSERT(k2 == e2.kind && memchr(e2.message, '\0', sizeof(e2.message)));
            ASSERT(!strstr(e2.message, "sk-fuzzcanary"));
            ASSERT(e2.retry_after_ms == 0);
        }
    }
}

static void fuzz_request(const char *in, size_t n)
{
    cJSON *j = cJSON_ParseWithLength(in, n);
    if (!j)
        return;
    struct remote_request *r = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err err = remote_request_from_chat(j, &r, &d);
    cJSON_Delete(j);
    if (err) {
        ASSERT(r == NULL && d.msg[0] && d.path[0] == '$');
        return;
    }
    struct remote_build_opts o = {.model = "m"};
    for (int p = 0; p < 2; p++) {
        struct shoal_buf b;
        shoal_buf_init(&b, 1 << 22);
        err = remote_build_body((enum remote_provider)p, r, &o, &b, &d);
        ASSERT(err == SHOAL_OK || err == SHOAL_ERR_INVALID || err == SHOAL_ERR_UNSUPPORTED ||
               err == SHOAL_ERR_TOO_BIG);
        if (!err) {
            cJSON *back = cJSON_ParseWithLength(b.data, b.len);
            ASSERT(cJSON_IsObject(back));
            ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(back, "messages")));
            cJSON_Delete(back);
        } else {
            ASSERT(b.len == 0);
        }
        shoal_buf_fini(&b);
    }
    remote_request_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t cut = size ? (size_t)(data[0] * 131u + data[size - 1]) % size : 0;

    fuzz_sse(in, size, cut);

    static struct remote_request *json_req;
    static struct shoal_secret *key;
    if (!json_req) {
        cJSON *j = cJSON_Parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"x\"}],\"response_format\":{\"type\":\"json_object\"}}");
        ASSERT(j && remote_request_from_chat(j, &json_req, NULL) == SHOAL_OK);
        cJSON_Delete(j);
        ASSERT(shoal_secret_new("sk-fuzzcanary-0123456789", 24, "fuzz", &key) == SHOAL_OK);
    }
    static const struct remote_reply reps[] = {
        {REMOTE_TRANSPORT_OK, 200, NULL, NULL, NULL, 0, NULL},
        {REMOTE_TRANSPORT_RESET, 200, NULL, NULL, NULL, 0, NULL},
        {REMOTE_TRANSPORT_OK, 400, "7", NULL, NULL, 0, NULL},
    };
    const struct remote_reply *rep = &reps[size ? data[size / 2] % 3 : 0];
    struct remote_reply with_key = *rep;
    with_key.key = key;
    fuzz_streams(in, size, cut, &with_key, json_req);
    fuzz_whole(in, size, json_req, key);

    char *z = malloc(size + 1);
    ASSERT(z);
    memcpy(z, in, size);
    z[size] = '\0';
    int64_t ms = -1;
    if (remote_retry_after_parse(z, 0, &ms) == SHOAL_OK)
        ASSERT(ms >= 0 && ms <= 86400000);
    free(z);

    fuzz_request(in, size);
    return 0;
}
