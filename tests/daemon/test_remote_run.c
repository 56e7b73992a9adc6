/* test_remote_run.c: remote model runs (daemon/remote_run.h) on one event
 * loop against the real mock provider (tests/remote/mock_llm.py):
 * 200 concurrent overlapping streams that each end once with the whole
 * text, stop and usage; 2000 failing runs (HTTP 500 with one attempt, for
 * both providers, streamed and whole, and a refused port) that each end
 * with the typed error; runs cancelled before and during their stream that
 * never call on_done. Under ASan (detect_leaks=1) it must exit clean. */
#include "remote_run.h"
#include "fetch.h"
#include "peer.h"
#include "test.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHOAL_MOCK_LLM
#define SHOAL_MOCK_LLM "tests/remote/mock_llm.py"
#endif

static struct event_base *base;
static struct fetch *f;
static int port;

static struct test_peer peer;

static void start_mock(void)
{
    port = test_peer_start(&peer, "MOCK_LLM", SHOAL_MOCK_LLM);
    CHECK(port > 0);
}

static void stop_mock(void)
{
    test_peer_stop(&peer);
}

/* ---- The loop: run until pending reaches 0 (or a safety deadline) ---- */

static int pending;
static bool timed_out;

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    timed_out = true;
    event_base_loopbreak(base);
}

static void run_loop(int seconds)
{
    timed_out = false;
    struct event *t = evtimer_new(base, on_deadline, NULL);
    struct timeval tv = {seconds, 0};
    evtimer_add(t, &tv);
    if (pending > 0)
        event_base_dispatch(base);
    event_free(t);
}

static void one_done(void)
{
    if (--pending == 0)
        event_base_loopbreak(base);
}

/* ---- Control requests to the mock, through fetch ---- */

struct ctl {
    long status;
    size_t body_len;
    char body[256];
};

static void ctl_done(void *arg, const struct fetch_response *r)
{
    struct ctl *c = arg;
    c->status = r->status;
    c->body_len = r->body_len;
    snprintf(c->body, sizeof(c->body), "%.*s", (int)(r->body_len < 200 ? r->body_len : 200),
             r->body);
    one_done();
}

static long control(const char *method, const char *path, const char *json, struct ctl *out)
{
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", port, path);
    const char *h[] = {"Content-Type: application/json", NULL};
    struct fetch_request rq = {.method = method, .url = u, .headers = h, .body = json,
                               .body_len = json ? strlen(json) : 0};
    struct ctl local;
    struct ctl *c = out ? out : &local;
    memset(c, 0, sizeof(*c));
    struct shoal_diag d;
    shoal_diag_clear(&d);
    pending = 1;
    CHECK_EQ_INT(fetch_start(f, &rq, ctl_done, c, NULL, &d), SHOAL_OK);
    run_loop(10);
    CHECK_EQ_INT(c->status, 200);
    return c->status;
}

/* ---- Models ---- */

static void model_init(struct config_model *m, const char *name, enum config_provider prov,
                       int p, const char *key)
{
    memset(m, 0, sizeof(*m));
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1", p);
    m->name = strdup(name);
    m->provider = prov;
    m->base_url = strdup(u);
    m->model = strdup(prov == CONFIG_PROVIDER_ANTHROPIC ? "claude-mock" : "gpt-mock");
    if (key)
        CHECK_EQ_INT(shoal_secret_new(key, strlen(key), "test", &m->api_key), SHOAL_OK);
    m->connect_timeout_ms = 5000;
    m->first_byte_timeout_ms = 30000;
    m->total_timeout_ms = 60000;
    m->retry_attempts = 1;
    m->retry_backoff_ms = 10;
    m->price_input_per_mtok = 1.0;
    m->price_output_per_mtok = 2.0;
    m->price_cached_per_mtok = -1;
}

static void model_fini(struct config_model *m)
{
    free(m->name);
    free(m->base_url);
    free(m->model);
    shoal_secret_free(m->api_key);
}

static cJSON *chat_request(void)
{
    return cJSON_Parse("{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}

/* ---- One run's record ---- */

struct rec {
    int done_calls;
    bool text_started;
    struct shoal_buf deltas;
    char *final_text;
    enum remote_error_kind kind;
    long status;
    char message[512];
    enum remote_finish finish;
    bool usage;
    int64_t in_tok, out_tok;
    double cost;
    uint32_t attempts;
    struct remote_run *run;
};

static int streaming_now, streaming_max;

static void rec_text(void *arg, const char *t, size_t n)
{
    struct rec *r = arg;
    if (!r->text_started) {
        r->text_started = true;
        if (++streaming_now > streaming_max)
            streaming_max = streaming_now;
    }
    CHECK_EQ_INT(shoal_buf_append(&r->deltas, t, n), SHOAL_OK);
}

static void rec_done(void *arg, const struct remote_result *res, const struct remote_error *err,
                     const struct provider_stats *st)
{
    struct rec *r = arg;
    r->done_calls++;
    r->run = NULL;
    if (r->text_started)
        streaming_now--;
    free(r->final_text);
    r->final_text = strdup(res->text ? res->text : "");
    r->kind = err ? err->kind : REMOTE_ERR_NONE;
    r->status = err ? err->status : 0;
    snprintf(r->message, sizeof(r->message), "%s", err ? err->message : "");
    r->finish = res->finish;
    r->usage = res->usage.present;
    r->in_tok = res->usage.input_tokens;
    r->out_tok = res->usage.output_tokens;
    r->cost = st->cost_usd;
    r->attempts = st->attempts;
    one_done();
}

static struct rec *recs_new(size_t n)
{
    struct rec *v = calloc(n, sizeof(*v));
    CHECK(v != NULL);
    for (size_t i = 0; i < n; i++)
        shoal_buf_init(&v[i].deltas, 1u << 20);
    return v;
}

static void recs_free(struct rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        shoal_buf_fini(&v[i].deltas);
        free(v[i].final_text);
    }
    free(v);
}

static void start_run(const struct config_model *m, const cJSON *req, bool stream, struct rec *r)
{
    struct provider_cb cb = {.on_text = rec_text, .on_done = rec_done, .arg = r};
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err rc = remote_run_start(base, f, m, req, stream, &cb, &r->run, &d);
    CHECK_EQ_INT(rc, SHOAL_OK);
    if (rc == SHOAL_OK)
        pending++;
    else
        fprintf(stderr, "remote_run_start: %s\n", d.msg);
}

/* ---- a. 200 concurrent streams ---- */

#define N_STREAMS 200
static const char TEXT[] =
    "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. "
    "Sphinx of black quartz, judge my vow! How vexingly quick daft zebras jump.";

static void test_streams(void)
{
    char step[1024];
    snprintf(step, sizeof(step),
             "{\"text\":\"%s\",\"usage\":{\"input\":12,\"output\":34},"
             "\"drip\":{\"bytes\":200,\"delay_ms\":15}}",
             TEXT);
    control("POST", "/_default", step, NULL);

    struct config_model mo, ma;
    model_init(&mo, "stream-openai", CONFIG_PROVIDER_OPENAI, port, "sk-test-openai");
    model_init(&ma, "stream-anthropic", CONFIG_PROVIDER_ANTHROPIC, port, NULL);
    cJSON *req = chat_request();
    struct rec *v = recs_new(N_STREAMS);
    streaming_now = streaming_max = 0;
    pending = 0;
    for (size_t i = 0; i < N_STREAMS; i++)
        start_run(i % 2 ? &ma : &mo, req, true, &v[i]);
    /* on_done is never called from inside remote_run_start. */
    for (size_t i = 0; i < N_STREAMS; i++)
        CHECK_EQ_INT(v[i].done_calls, 0);
    run_loop(90);
    CHECK(!timed_out);
    int ok = 0;
    for (size_t i = 0; i < N_STREAMS; i++) {
        struct rec *r = &v[i];
        CHECK_EQ_INT(r->done_calls, 1);
        CHECK_EQ_INT(r->kind, REMOTE_ERR_NONE);
        if (r->kind != REMOTE_ERR_NONE)
            fprintf(stderr, "stream %zu: %s\n", i, r->message);
        CHECK_STR(r->final_text, TEXT);
        CHECK_STR(shoal_buf_cstr(&r->deltas), TEXT);
        CHECK_EQ_INT(r->finish, REMOTE_FINISH_STOP);
        CHECK(r->usage);
        CHECK_EQ_INT(r->in_tok, 12);
        CHECK_EQ_INT(r->out_tok, 34);
        CHECK(r->cost > 0);
        CHECK_EQ_INT(r->attempts, 1);
        ok += r->done_calls == 1 && r->kind == REMOTE_ERR_NONE && r->final_text &&
              !strcmp(r->final_text, TEXT);
    }
    /* The streams overlapped on the one loop thread. */
    CHECK(streaming_max > N_STREAMS / 4);
    fprintf(stderr, "streams: %d/%d ok, at most %d streaming at once\n", ok, N_STREAMS,
            streaming_max);
    recs_free(v, N_STREAMS);
    cJSON_Delete(req);
    model_fini(&mo);
    model_fini(&ma);
}

/* ---- b. 2000 failing runs ---- */

#define N_FAIL_500    1500
#define N_FAIL_CLOSED 500
#define BATCH         250

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(s, (struct sockaddr *)&a, &l) == 0);
    close(s);
    return ntohs(a.sin_port);
}

/* Every run failed UNAVAILABLE: with want_status from the provider, or
 * stopped by the model's circuit breaker before it was sent. */
static void check_failures(struct rec *v, size_t n, long want_status, int *by_status,
                           int *by_breaker)
{
    for (size_t i = 0; i < n; i++) {
        struct rec *r = &v[i];
        CHECK_EQ_INT(r->done_calls, 1);
        CHECK_EQ_INT(r->kind, REMOTE_ERR_UNAVAILABLE);
        bool breaker = r->status == 0 && strstr(r->message, "circuit breaker");
        if (r->status == want_status && !breaker)
            (*by_status)++;
        else if (breaker)
            (*by_breaker)++;
        else {
            CHECK(!"unexpected failure");
            fprintf(stderr, "run %zu: status %ld: %s\n", i, r->status, r->message);
        }
        CHECK(r->attempts <= 1);
        CHECK_EQ_INT(r->usage, false);
    }
}

static void test_failing_runs(void)
{
    control("POST", "/_default", "{\"error\":\"server\"}", NULL);
    cJSON *req = chat_request();
    int cp = closed_port();
    char name[64];

    /* Each batch has a model of its own, so its circuit breaker is closed
     * and every run reaches the provider. */
    int by_status = 0, by_breaker = 0;
    for (size_t off = 0; off < N_FAIL_500; off += BATCH) {
        struct config_model mo, ma;
        snprintf(name, sizeof(name), "fail-openai-%zu", off);
        model_init(&mo, name, CONFIG_PROVIDER_OPENAI, port, "sk-test-openai");
        snprintf(name, sizeof(name), "fail-anthropic-%zu", off);
        model_init(&ma, name, CONFIG_PROVIDER_ANTHROPIC, port, "sk-ant-test");
        struct rec *v = recs_new(BATCH);
        pending = 0;
        for (size_t i = 0; i < BATCH; i++)
            start_run(i % 2 ? &ma : &mo, req, i % 3 == 0, &v[i]);
        run_loop(60);
        CHECK(!timed_out);
        check_failures(v, BATCH, 500, &by_status, &by_breaker);
        recs_free(v, BATCH);
        model_fini(&mo);
        model_fini(&ma);
    }
    CHECK_EQ_INT(by_status, N_FAIL_500);
    CHECK_EQ_INT(by_breaker, 0);
    struct ctl c;
    control("GET", "/_requests?clear=1", NULL, &c);
    fprintf(stderr, "HTTP 500: %d runs failed with the status\n", by_status);

    int cs = 0, cb = 0;
    for (size_t off = 0; off < N_FAIL_CLOSED; off += BATCH) {
        struct config_model mc;
        snprintf(name, sizeof(name), "fail-closed-%zu", off);
        model_init(&mc, name, CONFIG_PROVIDER_OPENAI, cp, NULL);
        struct rec *v = recs_new(BATCH);
        pending = 0;
        for (size_t i = 0; i < BATCH; i++)
            start_run(&mc, req, i % 2 == 0, &v[i]);
        run_loop(60);
        CHECK(!timed_out);
        check_failures(v, BATCH, 0, &cs, &cb);
        recs_free(v, BATCH);
        model_fini(&mc);
    }
    CHECK_EQ_INT(cs, N_FAIL_CLOSED);
    CHECK_EQ_INT(cb, 0);
    fprintf(stderr, "closed port: %d runs failed to connect\n", cs);

    /* A model that has just failed 250 times: its breaker is open, and the
     * next runs fail UNAVAILABLE without being sent. */
    {
        struct config_model mo;
        model_init(&mo, "fail-openai-0", CONFIG_PROVIDER_OPENAI, port, NULL);
        struct rec *v = recs_new(BATCH);
        pending = 0;
        for (size_t i = 0; i < BATCH; i++)
            start_run(&mo, req, i % 2 == 0, &v[i]);
        run_loop(60);
        CHECK(!timed_out);
        int s = 0, b = 0;
        check_failures(v, BATCH, 500, &s, &b);
        CHECK_EQ_INT(b, BATCH);
        for (size_t i = 0; i < BATCH; i++)
            CHECK_EQ_INT(v[i].attempts, 0);
        fprintf(stderr, "breaker: %d runs stopped before sending\n", b);
        recs_free(v, BATCH);
        model_fini(&mo);
    }
    cJSON_Delete(req);
}

/* ---- c. cancel ---- */

#define N_CANCEL 100
static struct rec *cancel_recs;
static int cancelled_mid;

static void on_cancel_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    for (size_t i = 0; i < N_CANCEL; i++) {
        struct rec *r = &cancel_recs[i];
        if (r->run && r->done_calls == 0) {
            if (r->text_started)
                cancelled_mid++, streaming_now--;
            remote_run_cancel(r->run);
            r->run = NULL;
        }
    }
}

static void test_cancel(void)
{
    /* A slow, long answer (TEXT 8 times) in 64-byte pieces 40 ms apart: a
     * stream's first text comes within ~250 ms, a whole answer takes over
     * a second, a stream several. */
    char step[4096];
    size_t n = (size_t)snprintf(step, sizeof(step), "{\"text\":\"");
    for (int k = 0; k < 8; k++)
        n += (size_t)snprintf(step + n, sizeof(step) - n, "%s", TEXT);
    snprintf(step + n, sizeof(step) - n, "\",\"drip\":{\"bytes\":64,\"delay_ms\":40}}");
    control("POST", "/_default", step, NULL);
    struct config_model mo, ma;
    model_init(&mo, "cancel-openai", CONFIG_PROVIDER_OPENAI, port, "sk-test-openai");
    model_init(&ma, "cancel-anthropic", CONFIG_PROVIDER_ANTHROPIC, port, NULL);
    cJSON *req = chat_request();
    cancel_recs = recs_new(N_CANCEL);
    streaming_now = streaming_max = 0;
    cancelled_mid = 0;
    pending = 0;
    for (size_t i = 0; i < N_CANCEL; i++) {
        start_run(i % 2 ? &ma : &mo, req, i % 5 != 4, &cancel_recs[i]);
        /* Every tenth: cancelled before its request was even sent. */
        if (i % 10 == 0) {
            remote_run_cancel(cancel_recs[i].run);
            cancel_recs[i].run = NULL;
        }
    }
    remote_run_cancel(NULL);
    /* Cancel the rest once the streams are under way; then wait well past
     * when they would have ended. */
    struct event *t = evtimer_new(base, on_cancel_timer, NULL);
    struct timeval tv = {0, 600 * 1000};
    evtimer_add(t, &tv);
    pending = 1 << 30; /* never reaches 0: the loop runs to the deadline */
    run_loop(3);
    CHECK(timed_out);
    event_free(t);
    int done = 0;
    for (size_t i = 0; i < N_CANCEL; i++)
        done += cancel_recs[i].done_calls;
    CHECK_EQ_INT(done, 0);
    for (size_t i = 0; i < N_CANCEL; i++)
        if (cancel_recs[i].done_calls)
            fprintf(stderr, "cancel run %zu ended: kind %d status %ld: %s\n", i,
                    (int)cancel_recs[i].kind, cancel_recs[i].status, cancel_recs[i].message);
    CHECK(cancelled_mid > N_CANCEL / 2);
    CHECK_EQ_INT(fetch_active(f), 0);
    fprintf(stderr, "cancel: %d cancelled mid-stream, %d on_done calls\n", cancelled_mid, done);
    recs_free(cancel_recs, N_CANCEL);
    cJSON_Delete(req);
    model_fini(&mo);
    model_fini(&ma);

    /* The mock still serves after the broken streams. */
    control("POST", "/_default", "{}", NULL);
    struct config_model m2;
    model_init(&m2, "after-cancel", CONFIG_PROVIDER_OPENAI, port, NULL);
    req = chat_request();
    struct rec *v = recs_new(1);
    pending = 0;
    start_run(&m2, req, false, v);
    run_loop(10);
    CHECK_EQ_INT(v->done_calls, 1);
    CHECK_STR(v->final_text, "Hello from mock.");
    recs_free(v, 1);
    cJSON_Delete(req);
    model_fini(&m2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    start_mock();
    base = event_base_new();
    struct shoal_diag d;
    CHECK_EQ_INT(fetch_new(base, &f, &d), SHOAL_OK);
    test_streams();
    test_failing_runs();
    test_cancel();
    fetch_free(f);
    event_base_free(base);
    stop_mock();
    return test_report("test_remote_run");
}
