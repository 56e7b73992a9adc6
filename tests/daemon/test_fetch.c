/* test_fetch.c: outgoing HTTP on the event loop against a real loopback
 * server (tests/http_peer.py): bodies and headers both ways, statuses with
 * Retry-After and request ids, timeouts, size caps, a connection reset,
 * a refused port, streaming chunks, no redirects followed, scheme rules,
 * cancellation, and 200 concurrent slow requests on one loop thread that
 * finish in about the time of one. */
#include "fetch.h"
#include "peer.h"
#include "test.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHOAL_HTTP_PEER
#define SHOAL_HTTP_PEER "tests/http_peer.py"
#endif

static struct event_base *base;
static struct fetch *f;
static int port;

static struct test_peer peer;

static void start_peer(void)
{
    port = test_peer_start(&peer, "HTTP_PEER", SHOAL_HTTP_PEER);
    CHECK(port > 0);
}

static void stop_peer(void)
{
    test_peer_stop(&peer);
}

struct result {
    int calls;
    enum fetch_result_kind kind;
    long status;
    char body[4096];
    size_t body_len;
    char retry_after[32], request_id[32], error[256], location[256];
    uint64_t first_byte_ms;
};

static int pending;

static void done(void *arg, const struct fetch_response *r)
{
    struct result *res = arg;
    res->calls++;
    res->kind = r->kind;
    res->status = r->status;
    res->body_len = r->body_len;
    snprintf(res->body, sizeof(res->body), "%.*s", (int)(r->body_len < 4000 ? r->body_len : 4000),
             r->body);
    snprintf(res->retry_after, sizeof(res->retry_after), "%s", r->retry_after ? r->retry_after : "");
    snprintf(res->request_id, sizeof(res->request_id), "%s", r->request_id ? r->request_id : "");
    snprintf(res->error, sizeof(res->error), "%s", r->error);
    res->first_byte_ms = r->first_byte_ms;
    res->location[0] = '\0';
    for (const char *const *h = r->headers; h && *h; h++)
        if (!strncasecmp(*h, "Location:", 9))
            snprintf(res->location, sizeof(res->location), "%s", *h + 10);
    if (--pending == 0)
        event_base_loopbreak(base);
}

static void url(char *out, size_t n, const char *path)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", port, path);
}

/* Run one request to completion. */
static void run1(struct fetch_request *rq, struct result *res)
{
    memset(res, 0, sizeof(*res));
    pending = 1;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(fetch_start(f, rq, done, res, NULL, &d), SHOAL_OK);
    event_base_dispatch(base);
    CHECK_EQ_INT(res->calls, 1);
}

static void test_basic(void)
{
    char u[128];
    struct result r;
    url(u, sizeof(u), "/ok");
    struct fetch_request rq = {.method = "GET", .url = u};
    run1(&rq, &r);
    CHECK_EQ_INT(r.kind, FETCH_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "hello");

    url(u, sizeof(u), "/echo");
    const char *hdrs[] = {"Authorization: Bearer secret-canary", "Content-Type: text/plain",
                          NULL};
    rq = (struct fetch_request){.method = "POST", .url = u, .headers = hdrs,
                                .body = "payload\0with nul", .body_len = 16};
    run1(&rq, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.body_len, 16);
    CHECK(memcmp(r.body, "payload", 7) == 0);

    url(u, sizeof(u), "/status/429");
    rq = (struct fetch_request){.url = u};
    run1(&rq, &r);
    CHECK_EQ_INT(r.kind, FETCH_OK);
    CHECK_EQ_INT(r.status, 429);
    CHECK_STR(r.retry_after, "2");
    CHECK_STR(r.request_id, "req-429");
    CHECK_CONTAINS(r.body, "status 429");

    /* Redirects are answers, never followed. */
    char to[128], red[256];
    url(to, sizeof(to), "/ok");
    snprintf(red, sizeof(red), "http://127.0.0.1:%d/redirect?to=%s", port, to);
    rq = (struct fetch_request){.url = red};
    run1(&rq, &r);
    CHECK_EQ_INT(r.status, 302);
    CHECK(strcmp(r.body, "hello") != 0);
    CHECK_STR(r.location, to); /* the caller sees where it pointed */
}

static void test_error_paths(void)
{
    char u[128];
    struct result r;
    url(u, sizeof(u), "/slow?ms=2000");
    struct fetch_request rq = {.url = u, .total_timeout_ms = 200};
    uint64_t t0 = shoal_now_ms();
    run1(&rq, &r);
    CHECK_EQ_INT(r.kind, FETCH_TIMEOUT);
    CHECK(shoal_now_ms() - t0 < 1500);

    url(u, sizeof(u), "/big?n=100000");
    rq = (struct fetch_request){.url = u, .max_response = 1000};
    run1(&rq, &r);
    CHECK_EQ_INT(r.kind, FETCH_TOO_BIG);
    CHECK_CONTAINS(r.error, "larger than 1000");

    url(u, sizeof(u), "/reset");
    rq = (struct fetch_request){.url = u};
    run1(&rq, &r);
    CHECK_EQ_INT(r.kind, FETCH_RESET);
    CHECK(r.body_len <= 10);

    rq = (struct fetch_request){.url = "http://127.0.0.1:9/"};
    run1(&rq, &r);
    CHECK_EQ_INT(r.kind, FETCH_CONNECT);
    CHECK(r.error[0] != '\0');

    /* Refused before anything goes out; done() is not called. */
    struct shoal_diag d;
    const char *bad[] = {"ftp://127.0.0.1/x", "file:///etc/passwd", "not a url",
                         "http://example.com/"};
    for (size_t i = 0; i < 4; i++) {
        shoal_diag_clear(&d);
        rq = (struct fetch_request){.url = bad[i], .https_only = true};
        CHECK_EQ_INT(fetch_start(f, &rq, done, &r, NULL, &d), SHOAL_ERR_INVALID);
        CHECK(d.msg[0] != '\0');
    }
    CHECK_CONTAINS(d.msg, "https only");
    /* Loopback may be allowed over plain http. */
    url(u, sizeof(u), "/ok");
    rq = (struct fetch_request){.url = u, .https_only = true, .allow_loopback = true};
    run1(&rq, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(fetch_active(f), 0);
}

struct stream {
    char got[512];
    size_t n;
    int chunks;
    int stop_after;
};

static bool on_data(void *arg, const char *p, size_t n)
{
    struct stream *s = arg;
    s->chunks++;
    if (s->n + n < sizeof(s->got)) {
        memcpy(s->got + s->n, p, n);
        s->n += n;
    }
    return s->stop_after == 0 || s->chunks < s->stop_after;
}

static struct result stream_res;

static void stream_done(void *arg, const struct fetch_response *r)
{
    (void)arg;
    stream_res.kind = r->kind;
    stream_res.status = r->status;
    stream_res.body_len = r->body_len;
    stream_res.first_byte_ms = r->first_byte_ms;
    stream_res.calls++;
    event_base_loopbreak(base);
}

static void test_stream(void)
{
    char u[128];
    url(u, sizeof(u), "/sse?n=5&ms=20");
    struct stream s;
    memset(&s, 0, sizeof(s));
    struct fetch_request rq = {.url = u, .on_data = on_data};
    memset(&stream_res, 0, sizeof(stream_res));
    struct shoal_diag d;
    CHECK_EQ_INT(fetch_start(f, &rq, stream_done, &s, NULL, &d), SHOAL_OK);
    event_base_dispatch(base);
    CHECK_EQ_INT(stream_res.kind, FETCH_OK);
    CHECK_EQ_INT(stream_res.body_len, 0); /* streamed, not accumulated */
    CHECK(s.chunks >= 2);                 /* it arrived in pieces, as sent */
    s.got[s.n] = '\0';
    CHECK_STR(s.got, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: [DONE]\n\n");

    /* The consumer may stop a stream. */
    memset(&s, 0, sizeof(s));
    s.stop_after = 2;
    memset(&stream_res, 0, sizeof(stream_res));
    url(u, sizeof(u), "/sse?n=50&ms=20");
    rq = (struct fetch_request){.url = u, .on_data = on_data};
    CHECK_EQ_INT(fetch_start(f, &rq, stream_done, &s, NULL, &d), SHOAL_OK);
    event_base_dispatch(base);
    CHECK_EQ_INT(stream_res.kind, FETCH_CANCELLED);
    CHECK_EQ_INT(s.chunks, 2);
}

static void test_cancel_and_concurrency(void)
{
    char u[128];
    url(u, sizeof(u), "/slow?ms=300");
    struct result r;
    memset(&r, 0, sizeof(r));
    struct fetch_op *op = NULL;
    struct fetch_request rq = {.url = u};
    struct shoal_diag d;
    CHECK_EQ_INT(fetch_start(f, &rq, done, &r, &op, &d), SHOAL_OK);
    fetch_cancel(op);
    CHECK_EQ_INT(fetch_active(f), 0);
    /* A short timer proves the loop runs and no done() arrives. */
    struct timeval tv = {0, 500000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    CHECK_EQ_INT(r.calls, 0);

    enum { N = 200 };
    struct result *rs = calloc(N, sizeof(*rs));
    pending = N;
    uint64_t t0 = shoal_now_ms();
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(fetch_start(f, &rq, done, &rs[i], NULL, &d), SHOAL_OK);
    CHECK_EQ_INT(fetch_active(f), N);
    event_base_dispatch(base);
    uint64_t ms = shoal_now_ms() - t0;
    int ok = 0;
    for (int i = 0; i < N; i++) {
        bool good = rs[i].calls == 1 && rs[i].status == 200 && !strcmp(rs[i].body, "slow");
        if (!good && ok == i) /* say why once */
            fprintf(stderr, "request %d: calls %d kind %d status %ld error '%s'\n", i,
                    rs[i].calls, (int)rs[i].kind, rs[i].status, rs[i].error);
        ok += good;
    }
    CHECK_EQ_INT(ok, N);
    /* 200 x 300 ms in sequence would be 60 s; concurrently a few seconds
     * even on a loaded machine (the peer has a thread per connection). */
    if (ms >= 15000)
        fprintf(stderr, "200 concurrent requests took %llu ms\n", (unsigned long long)ms);
    CHECK(ms < 15000);
    free(rs);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    start_peer();
    base = event_base_new();
    struct shoal_diag d;
    CHECK_EQ_INT(fetch_new(base, &f, &d), SHOAL_OK);
    test_basic();
    test_error_paths();
    test_stream();
    test_cancel_and_concurrency();
    fetch_free(f);
    event_base_free(base);
    stop_peer();
    return test_report("test_fetch");
}
