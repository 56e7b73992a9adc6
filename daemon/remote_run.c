/* remote_run.c: a remote model call on the event loop: build with remote.h,
 * send with fetch, parse (streamed or whole), retry with a libevent timer,
 * keep a circuit breaker per model name, price the usage. Invariant: one
 * on_done per run unless cancelled, never from inside remote_run_start; the
 * key lives only in the header block (wiped on free) and the scrub copy.
 *
 *   start ──timer(0)──▶ ATTEMPT ──fetch done / first-byte timeout──▶ judged
 *   judged ──ok, or not retryable / out of attempts / deadline──▶ on_done, freed
 *   judged ──retryable──▶ WAIT ──timer(backoff)──▶ ATTEMPT
 */
#include "remote_run.h"

#include "fetch.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUN_MAX_RESPONSE (8u << 20) /* a whole (non-streamed) answer */

struct remote_run {
    struct event_base *base;
    struct fetch *f;
    enum remote_provider prov;
    struct remote_request *req;
    char *url;
    struct shoal_buf body;     /* the request body */
    struct remote_headers rh;  /* provider headers, with the key */
    const char **hdrs;         /* rh's lines and the extra ones, NULL-terminated */
    char *extra;               /* the extra lines' storage */
    struct shoal_secret *key;  /* a copy, to scrub messages with; may be NULL */
    uint32_t connect_ms, first_byte_ms, total_ms;
    struct remote_price price;
    struct remote_retry retry;
    struct remote_breaker *breaker; /* may be NULL (table full) */
    bool want_stream;
    struct provider_cb cb;
    /* The attempt in flight. */
    struct fetch_op *op;
    struct remote_stream *stream;
    struct shoal_buf answer; /* a whole answer's bytes */
    bool got_byte;
    struct event *kick;       /* the next attempt (now, or after a backoff) */
    struct event *first_byte; /* the current attempt's first-byte deadline */
    uint64_t start_ms, first_text_ms;
    uint32_t attempts;
    bool in_text;   /* inside cb.on_text: a cancel there must not free r */
    bool cancelled; /* cancelled from inside on_text; freed on the way out */
};

/* ---- Clocks ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ---- Circuit breakers: one per model name, for the process's life ---- */

static struct {
    char name[72];
    struct remote_breaker b;
} breakers[CONFIG_MODELS_MAX * 2];
static size_t n_breakers;

static struct remote_breaker *breaker_for(const char *name)
{
    for (size_t i = 0; i < n_breakers; i++)
        if (!strcmp(breakers[i].name, name))
            return &breakers[i].b;
    if (n_breakers == SHOAL_ARRAY_LEN(breakers) || strlen(name) >= sizeof(breakers[0].name))
        return NULL;
    shoal_strlcpy(breakers[n_breakers].name, name, sizeof(breakers[0].name));
    remote_breaker_init(&breakers[n_breakers].b, NULL);
    return &breakers[n_breakers++].b;
}

/* ---- Lifetime ---- */

static void attempt_clear(struct remote_run *r)
{
    if (r->op)
        fetch_cancel(r->op);
    r->op = NULL;
    if (r->first_byte)
        evtimer_del(r->first_byte);
    remote_stream_free(r->stream);
    r->stream = NULL;
    shoal_buf_reset(&r->answer);
    r->got_byte = false;
}

static void run_free(struct remote_run *r)
{
    attempt_clear(r);
    if (r->kick)
        event_free(r->kick);
    if (r->first_byte)
        event_free(r->first_byte);
    remote_request_free(r->req);
    free(r->url);
    shoal_buf_fini(&r->body);
    shoal_buf_fini(&r->answer);
    remote_headers_fini(&r->rh);
    free(r->hdrs);
    free(r->extra);
    shoal_secret_free(r->key);
    free(r);
}

/* The end: report once, then free. */
static void finish(struct remote_run *r, const struct remote_result *res,
                   const struct remote_error *err)
{
    struct provider_stats st = {
        .cost_usd = remote_cost_usd(&r->price, &res->usage),
        .first_token_ms = r->first_text_ms ? r->first_text_ms - r->start_ms : 0,
        .total_ms = shoal_now_ms() - r->start_ms,
        .attempts = r->attempts,
    };
    attempt_clear(r);
    r->cb.on_done(r->cb.arg, res, err && err->kind != REMOTE_ERR_NONE ? err : NULL, &st);
    run_free(r);
}

static void fail_now(struct remote_run *r, enum remote_error_kind kind, const char *msg)
{
    struct remote_result res;
    struct remote_error err;
    remote_result_init(&res);
    remote_error_clear(&err);
    err.kind = kind;
    shoal_strlcpy(err.message, msg, sizeof(err.message));
    finish(r, &res, &err);
    remote_result_fini(&res);
}

/* ---- One attempt ---- */

static void attempt_end(struct remote_run *r, struct remote_result *res, struct remote_error *err)
{
    uint64_t now = shoal_now_ms();
    if (r->breaker)
        remote_breaker_record(r->breaker, err, now);
    uint64_t wait = 0;
    const char *why = NULL;
    if (err->kind == REMOTE_ERR_NONE || !remote_retry_next(&r->retry, err, now, &wait, &why)) {
        if (err->kind != REMOTE_ERR_NONE && r->attempts > 1) {
            size_t l = strlen(err->message);
            snprintf(err->message + l, sizeof(err->message) - l, " (gave up after %u attempts: %s)",
                     (unsigned)r->attempts, why ? why : "");
        }
        finish(r, res, err);
        return;
    }
    attempt_clear(r);
    arm(r->kick, wait);
}

static enum remote_transport transport_of(enum fetch_result_kind k)
{
    switch (k) {
    case FETCH_OK:
        return REMOTE_TRANSPORT_OK;
    case FETCH_CONNECT:
        return REMOTE_TRANSPORT_CONNECT;
    case FETCH_TIMEOUT:
        return REMOTE_TRANSPORT_TIMEOUT;
    case FETCH_RESET:
        return REMOTE_TRANSPORT_RESET;
    case FETCH_TOO_BIG:
        return REMOTE_TRANSPORT_TOO_BIG;
    case FETCH_CANCELLED:
        return REMOTE_TRANSPORT_CANCELLED;
    case FETCH_REFUSED:
        return REMOTE_TRANSPORT_REFUSED;
    default:
        return REMOTE_TRANSPORT_INTERNAL;
    }
}

static void on_fetch_done(void *arg, const struct fetch_response *fr)
{
    struct remote_run *r = arg;
    r->op = NULL;
    if (r->cancelled) {
        run_free(r);
        return;
    }
    evtimer_del(r->first_byte);
    struct remote_reply rep = {
        .transport = transport_of(fr->kind),
        .status = fr->status,
        .retry_after = fr->retry_after,
        .request_id = fr->request_id,
        .transport_error = fr->kind != FETCH_OK ? fr->error : NULL,
        .now_unix_ms = wall_ms(),
        .key = r->key,
    };
    struct remote_result res;
    struct remote_error err;
    remote_result_init(&res);
    remote_error_clear(&err);
    if (r->stream) {
        remote_stream_finish(r->stream, &rep, &res, &err);
    } else {
        /* A whole answer cut at our cap is too big, not cancelled. */
        if (rep.transport == REMOTE_TRANSPORT_CANCELLED)
            rep.transport = REMOTE_TRANSPORT_TOO_BIG;
        remote_response_parse(r->prov, r->req, &rep, r->answer.data ? r->answer.data : "",
                              r->answer.len, &res, &err);
    }
    attempt_end(r, &res, &err);
    remote_result_fini(&res);
}

static bool on_stream_text(void *arg, const char *text, size_t n)
{
    struct remote_run *r = arg;
    if (!r->first_text_ms)
        r->first_text_ms = shoal_now_ms();
    if (r->cb.on_text) {
        r->in_text = true;
        r->cb.on_text(r->cb.arg, text, n);
        r->in_text = false;
    }
    return !r->cancelled; /* false stops the stream, then the transfer */
}

static bool on_data(void *arg, const char *p, size_t n)
{
    struct remote_run *r = arg;
    if (!r->got_byte) {
        r->got_byte = true;
        evtimer_del(r->first_byte);
    }
    if (r->stream)
        return remote_stream_feed(r->stream, p, n);
    return shoal_buf_append(&r->answer, p, n) == SHOAL_OK;
}

static void on_first_byte_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct remote_run *r = arg;
    fetch_cancel(r->op);
    r->op = NULL;
    struct remote_result res;
    struct remote_error err;
    remote_result_init(&res);
    remote_error_clear(&err);
    err.kind = REMOTE_ERR_TIMEOUT;
    snprintf(err.message, sizeof(err.message), "no answer within %u ms (timeouts.first_byte)",
             (unsigned)r->first_byte_ms);
    attempt_end(r, &res, &err);
    remote_result_fini(&res);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct remote_run *r = arg;
    if (r->cancelled) {
        run_free(r);
        return;
    }
    uint64_t now = shoal_now_ms(), retry_in = 0;
    char msg[400];
    if (r->breaker && !remote_breaker_allow(r->breaker, now)) {
        remote_breaker_is_cooling(r->breaker, now, &retry_in);
        snprintf(msg, sizeof(msg),
                 "circuit breaker open for this model after repeated failures; next try in "
                 "%llu ms",
                 (unsigned long long)retry_in);
        fail_now(r, REMOTE_ERR_UNAVAILABLE, msg);
        return;
    }
    uint64_t left = remote_retry_remaining_ms(&r->retry, now);
    if (left == 0) {
        if (r->breaker)
            remote_breaker_record(r->breaker, &(struct remote_error){.kind = REMOTE_ERR_CANCELLED},
                                  now);
        snprintf(msg, sizeof(msg), "no time left within timeouts.total (%u ms)",
                 (unsigned)r->total_ms);
        fail_now(r, REMOTE_ERR_TIMEOUT, msg);
        return;
    }
    if (r->want_stream) {
        struct remote_stream_cb scb = {.on_text = on_stream_text, .arg = r};
        if (remote_stream_new(r->prov, r->req, &scb, &r->stream) != SHOAL_OK) {
            fail_now(r, REMOTE_ERR_INTERNAL, "out of memory");
            return;
        }
    }
    struct fetch_request rq = {
        .method = "POST",
        .url = r->url,
        .headers = r->hdrs,
        .body = r->body.data,
        .body_len = r->body.len,
        .connect_timeout_ms = r->connect_ms,
        .total_timeout_ms = (uint32_t)(left > UINT32_MAX ? UINT32_MAX : left),
        .max_response = RUN_MAX_RESPONSE,
        .https_only = true,
        .allow_loopback = true,
        .on_data = on_data,
    };
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (fetch_start(r->f, &rq, on_fetch_done, r, &r->op, &d) != SHOAL_OK) {
        if (r->breaker)
            remote_breaker_record(r->breaker, &(struct remote_error){.kind = REMOTE_ERR_CANCELLED},
                                  now);
        snprintf(msg, sizeof(msg), "cannot send the request: %.300s", d.msg);
        fail_now(r, REMOTE_ERR_INVALID_REQUEST, msg);
        return;
    }
    r->attempts++;
    arm(r->first_byte, r->first_byte_ms);
}

/* ---- Start and cancel ---- */

/* The provider headers and the model's extra ones, in one list. */
static enum shoal_err build_headers(struct remote_run *r, const struct config_model *m,
                                    struct shoal_diag *d)
{
    enum shoal_err rc = remote_headers_init(&r->rh, r->prov, m->api_key, r->want_stream, d);
    if (rc != SHOAL_OK)
        return rc;
    size_t n = 0, bytes = 1;
    while (r->rh.list[n])
        n++;
    for (size_t i = 0; i < m->n_headers; i++)
        bytes += strlen(m->headers[i].name) + strlen(m->headers[i].value) + 3;
    r->hdrs = calloc(n + m->n_headers + 1, sizeof(*r->hdrs));
    r->extra = malloc(bytes);
    if (!r->hdrs || !r->extra)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    memcpy(r->hdrs, r->rh.list, n * sizeof(*r->hdrs));
    char *p = r->extra, *end = r->extra + bytes;
    for (size_t i = 0; i < m->n_headers; i++) {
        int k = snprintf(p, (size_t)(end - p), "%s: %s", m->headers[i].name, m->headers[i].value);
        if (k < 0 || k >= end - p)
            return shoal_diag_set(d, SHOAL_ERR_INTERNAL, "header sizes changed");
        r->hdrs[n + i] = p;
        p += k + 1;
    }
    return SHOAL_OK;
}

enum shoal_err remote_run_start(struct event_base *base, struct fetch *f,
                                const struct config_model *m, const struct cJSON *chat_request,
                                bool stream, const struct provider_cb *cb,
                                struct remote_run **out, struct shoal_diag *d)
{
    if (m->provider == CONFIG_PROVIDER_LOCAL || !m->base_url || !m->model)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "model '%s' is not a remote model", m->name);
    struct remote_run *r = calloc(1, sizeof(*r));
    if (!r)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    enum shoal_err rc;
    r->base = base;
    r->f = f;
    r->cb = *cb;
    r->want_stream = stream;
    r->prov = m->provider == CONFIG_PROVIDER_ANTHROPIC ? REMOTE_PROVIDER_ANTHROPIC
                                                       : REMOTE_PROVIDER_OPENAI;
    r->connect_ms = m->connect_timeout_ms;
    r->first_byte_ms = m->first_byte_timeout_ms ? m->first_byte_timeout_ms : 60000;
    r->total_ms = m->total_timeout_ms ? m->total_timeout_ms : 120000;
    r->price = (struct remote_price){
        .input_per_mtok = m->price_input_per_mtok,
        .output_per_mtok = m->price_output_per_mtok,
        .cached_input_per_mtok = m->price_cached_per_mtok,
        .cache_write_per_mtok = -1,
    };
    shoal_buf_init(&r->body, 64u << 20);
    shoal_buf_init(&r->answer, RUN_MAX_RESPONSE);
    rc = remote_request_from_chat(chat_request, &r->req, d);
    if (rc != SHOAL_OK)
        goto fail;
    r->req->stream = stream;
    struct remote_build_opts bo = {.model = m->model};
    rc = remote_build_body(r->prov, r->req, &bo, &r->body, d);
    if (rc != SHOAL_OK)
        goto fail;
    struct shoal_buf url;
    shoal_buf_init(&url, 8192);
    rc = remote_url(r->prov, m->base_url, &url, d);
    r->url = rc == SHOAL_OK ? strdup(shoal_buf_cstr(&url)) : NULL;
    shoal_buf_fini(&url);
    if (rc != SHOAL_OK)
        goto fail;
    rc = SHOAL_ERR_NOMEM;
    if (!r->url)
        goto fail;
    rc = build_headers(r, m, d);
    if (rc != SHOAL_OK)
        goto fail;
    if (m->api_key) {
        size_t kl = 0;
        const char *kv = shoal_secret_reveal(m->api_key, &kl);
        rc = shoal_secret_new(kv, kl, shoal_secret_source(m->api_key), &r->key);
        if (rc != SHOAL_OK)
            goto fail;
    }
    r->kick = evtimer_new(base, on_kick, r);
    r->first_byte = evtimer_new(base, on_first_byte_timeout, r);
    rc = SHOAL_ERR_NOMEM;
    if (!r->kick || !r->first_byte)
        goto fail;
    r->breaker = breaker_for(m->name);
    r->start_ms = shoal_now_ms();
    struct remote_retry_policy rp = {
        .max_attempts = m->retry_attempts ? m->retry_attempts : 1,
        .base_ms = m->retry_backoff_ms,
        .deadline_ms = r->total_ms,
        .seed = r->start_ms ^ (uint64_t)(uintptr_t)r,
    };
    remote_retry_init(&r->retry, &rp, r->start_ms);
    arm(r->kick, 0);
    if (out)
        *out = r;
    return SHOAL_OK;
fail:
    if (rc == SHOAL_ERR_NOMEM && d && !d->msg[0])
        shoal_diag_set(d, rc, "out of memory");
    run_free(r);
    return rc;
}

void remote_run_cancel(struct remote_run *r)
{
    if (!r)
        return;
    if (r->op && r->breaker)
        remote_breaker_record(r->breaker, &(struct remote_error){.kind = REMOTE_ERR_CANCELLED},
                              shoal_now_ms());
    if (r->in_text) {
        /* We are under r's own stream parser and transfer: free it once
         * they have unwound (the transfer's end, or the kick, whichever
         * comes first). */
        r->cancelled = true;
        arm(r->kick, 0);
        return;
    }
    run_free(r);
}
