/* bench_remote: remote model runs (daemon/remote_run.h) on one libevent loop
 * thread against the mock provider (tests/remote/mock_llm.py) answering with
 * zero latency. Closed loop: requests/s and client-side latency (run start
 * to on_done) p50/p99, whole answers and streams, 1 and 100 in flight; the
 * same loop with bare fetch POSTs (no remote_run layer) as the mock's raw
 * capacity; and N slow-drip streams held open at once on the one thread.
 *
 *   bench_remote [requests_per_case (default 2000)] [held_streams (default 1000)]
 *   env PYTHON3, MOCK_LLM override the interpreter and the mock's path. */
#include "fetch.h"
#include "peer.h"
#include "remote_run.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SHOAL_MOCK_LLM
#define SHOAL_MOCK_LLM "tests/remote/mock_llm.py"
#endif

static struct event_base *base;
static struct fetch *f;
static int port;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct test_peer peer;

static void start_mock(void)
{
    port = test_peer_start(&peer, "MOCK_LLM", SHOAL_MOCK_LLM);
    if (port <= 0) {
        fprintf(stderr, "bench_remote: the mock did not start\n");
        exit(1);
    }
}

static void stop_mock(void)
{
    test_peer_stop(&peer);
}

/* ---- Closed loop driver ---- */

enum kind { RAW, WHOLE, STREAM };

struct bench {
    enum kind kind;
    size_t total, started, finished, failed, conc, inflight;
    double *lat; /* seconds, per finished request */
    const struct config_model *m;
    const cJSON *req;
    const char *url, *body;
};

struct slot {
    struct bench *b;
    double t0;
};

static void start_one(struct bench *b);

static void finish_one(struct slot *s, bool ok)
{
    struct bench *b = s->b;
    b->lat[b->finished++] = now_s() - s->t0;
    b->failed += !ok;
    b->inflight--;
    free(s);
    if (b->finished == b->total)
        event_base_loopbreak(base);
    else if (b->started < b->total)
        start_one(b);
}

static void raw_done(void *arg, const struct fetch_response *r)
{
    finish_one(arg, r->kind == FETCH_OK && r->status == 200);
}

static void run_done(void *arg, const struct remote_result *res, const struct remote_error *err,
                     const struct provider_stats *st)
{
    (void)st;
    finish_one(arg, !err && res->text_len > 0);
}

static void start_one(struct bench *b)
{
    struct slot *s = malloc(sizeof(*s));
    s->b = b;
    s->t0 = now_s();
    b->started++;
    b->inflight++;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err rc;
    if (b->kind == RAW) {
        const char *h[] = {"Content-Type: application/json", NULL};
        struct fetch_request rq = {.method = "POST", .url = b->url, .headers = h,
                                   .body = b->body, .body_len = strlen(b->body)};
        rc = fetch_start(f, &rq, raw_done, s, NULL, &d);
    } else {
        struct provider_cb cb = {.on_done = run_done, .arg = s};
        rc = remote_run_start(base, f, b->m, b->req, b->kind == STREAM, &cb, NULL, &d);
    }
    if (rc != SHOAL_OK) {
        fprintf(stderr, "bench_remote: start failed: %s\n", d.msg);
        exit(1);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void bench_case(const char *label, enum kind k, size_t total, size_t conc,
                       const struct config_model *m, const cJSON *req, const char *url,
                       const char *body)
{
    struct bench b = {.kind = k, .total = total, .conc = conc, .m = m, .req = req, .url = url,
                      .body = body};
    b.lat = calloc(total, sizeof(double));
    double t0 = now_s();
    for (size_t i = 0; i < conc && b.started < total; i++)
        start_one(&b);
    event_base_dispatch(base);
    double el = now_s() - t0;
    qsort(b.lat, b.finished, sizeof(double), cmp_d);
    printf("| %-34s | %5zu | %6zu | %9.0f | %8.2f | %8.2f | %8.2f | %4zu |\n", label, conc, total,
           (double)b.finished / el, pct(b.lat, b.finished, 0.5) * 1e3,
           pct(b.lat, b.finished, 0.99) * 1e3, b.lat[b.finished - 1] * 1e3, b.failed);
    fflush(stdout);
    free(b.lat);
}

/* ---- Control ---- */

static void ctl_done(void *arg, const struct fetch_response *r)
{
    *(long *)arg = r->status;
    event_base_loopbreak(base);
}

static void set_default(const char *step)
{
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/_default", port);
    struct fetch_request rq = {.method = "POST", .url = u, .body = step,
                               .body_len = strlen(step)};
    long st = 0;
    struct shoal_diag d;
    if (fetch_start(f, &rq, ctl_done, &st, NULL, &d) != SHOAL_OK)
        exit(1);
    event_base_dispatch(base);
    if (st != 200) {
        fprintf(stderr, "bench_remote: /_default answered %ld\n", st);
        exit(1);
    }
}

static void model_init(struct config_model *m, const char *name)
{
    memset(m, 0, sizeof(*m));
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/v1", port);
    m->name = strdup(name);
    m->provider = CONFIG_PROVIDER_OPENAI;
    m->base_url = strdup(u);
    m->model = strdup("gpt-mock");
    m->connect_timeout_ms = 10000;
    m->first_byte_timeout_ms = 60000;
    m->total_timeout_ms = 120000;
    m->retry_attempts = 1;
    m->retry_backoff_ms = 100;
    m->price_cached_per_mtok = -1;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
    size_t held = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    signal(SIGPIPE, SIG_IGN);
    start_mock();
    base = event_base_new();
    struct shoal_diag d;
    if (fetch_new(base, &f, &d) != SHOAL_OK)
        return 1;
    struct config_model m;
    model_init(&m, "bench");
    const char *body = "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    cJSON *req = cJSON_Parse(body);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);

    set_default("{}"); /* zero latency, "Hello from mock." */
    printf("| %-34s | %5s | %6s | %9s | %8s | %8s | %8s | %4s |\n", "case", "conc", "reqs",
           "req/s", "p50 ms", "p99 ms", "max ms", "fail");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", "------------------------------------", "-------",
           "--------", "-----------", "----------", "----------", "----------", "------");
    bench_case("raw fetch POST (mock capacity)", RAW, n, 1, NULL, NULL, url, body);
    bench_case("remote_run whole", WHOLE, n, 1, &m, req, NULL, NULL);
    bench_case("remote_run stream", STREAM, n, 1, &m, req, NULL, NULL);
    bench_case("raw fetch POST (mock capacity)", RAW, n, 100, NULL, NULL, url, body);
    bench_case("remote_run whole", WHOLE, n, 100, &m, req, NULL, NULL);
    bench_case("remote_run stream", STREAM, n, 100, &m, req, NULL, NULL);

    /* Held streams: every answer drips 16 bytes per 100 ms (~3-4 s each), all at once. */
    set_default("{\"text\":\"Hello from a slow mock, one drip at a time.\","
                "\"drip\":{\"bytes\":16,\"delay_ms\":100}}");
    char label[64];
    snprintf(label, sizeof(label), "held slow-drip streams (%zu)", held);
    bench_case(label, STREAM, held, held, &m, req, NULL, NULL);

    cJSON_Delete(req);
    free(m.name);
    free(m.base_url);
    free(m.model);
    fetch_free(f);
    event_base_free(base);
    stop_mock();
    return 0;
}
