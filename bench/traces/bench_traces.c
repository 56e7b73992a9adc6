/* bench_traces.c: the trace store's two figures of merit: spans per second
 * sustained through the writer (a producer that retries on BUSY, timed to
 * the final flush), and nanoseconds per span on the calling thread (a queue
 * big enough that the caller never waits). Medians of REPS runs.
 * Usage: shoal-bench-traces [SPANS [REPS [normal|full]]] */
#include "traces.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One span as the daemon will write it: start with model and step kind,
 * end with usage and cost. */
static int one_span(struct traces_store *s, int64_t run, uint64_t *busy)
{
    struct traces_attr a[] = {
        {.key = "gen_ai.request.model", .type = TRACES_ATTR_STRING, .v.s = "qwen2.5-0.5b-instruct"},
        {.key = "shoal.step.kind", .type = TRACES_ATTR_STRING, .v.s = "plan"},
    };
    struct traces_attr e[] = {
        {.key = "gen_ai.usage.input_tokens", .type = TRACES_ATTR_INT, .v.i = 812},
        {.key = "gen_ai.usage.output_tokens", .type = TRACES_ATTR_INT, .v.i = 64},
        {.key = "shoal.cost.usd", .type = TRACES_ATTR_DOUBLE, .v.d = 0.000123},
    };
    int64_t id = 0;
    enum shoal_err err;
    while ((err = traces_span_start(s, run, 0, TRACES_SPAN_LLM, "chat", 0, a, 2, &id, NULL)) ==
           SHOAL_ERR_BUSY)
        (*busy)++;
    if (err != SHOAL_OK)
        return -1;
    while ((err = traces_span_end(s, id, TRACES_STATUS_OK, NULL, 0, e, 3, NULL)) == SHOAL_ERR_BUSY)
        (*busy)++;
    return err == SHOAL_OK ? 0 : -1;
}

static int run_once(const char *dir, int rep, long spans, enum traces_sync sync, bool big_queue,
                    double *caller_ns, double *sustained)
{
    char path[300];
    snprintf(path, sizeof path, "%s/bench-%d-%d.db", dir, rep, big_queue);
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    o.sync = sync;
    if (big_queue)
        o.queue_cap = (uint32_t)(2 * spans + 16);
    struct traces_store *s = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (traces_open(&o, &s, &d) != SHOAL_OK) {
        fprintf(stderr, "open: %s\n", d.msg);
        return -1;
    }
    int64_t run = 0;
    if (traces_run_start(s, "bench", "x", 0, &run, NULL) != SHOAL_OK)
        return -1;
    if (big_queue)
        traces_test_pause(s, true); /* the caller's cost alone, no writer contention */
    uint64_t busy = 0;
    double t0 = now_s();
    for (long i = 0; i < spans; i++)
        if (one_span(s, run, &busy) != 0)
            return -1;
    double t1 = now_s();
    if (big_queue)
        traces_test_pause(s, false);
    if (traces_flush(s, 600000) != SHOAL_OK)
        return -1;
    double t2 = now_s();
    if (caller_ns)
        *caller_ns = (t1 - t0) * 1e9 / (double)spans;
    if (sustained)
        *sustained = (double)spans / (t2 - t0);
    struct traces_stats st;
    traces_stats_get(s, &st);
    if (st.committed != st.enqueued || st.write_errors)
        fprintf(stderr, "mismatch: enqueued %llu committed %llu errors %llu\n",
                (unsigned long long)st.enqueued, (unsigned long long)st.committed,
                (unsigned long long)st.write_errors);
    traces_close(s);
    unlink(path);
    char aux[320];
    snprintf(aux, sizeof aux, "%s-wal", path);
    unlink(aux);
    snprintf(aux, sizeof aux, "%s-shm", path);
    unlink(aux);
    (void)busy;
    return 0;
}

/* Light load: one span, then wait for its acknowledgement, so every commit
 * holds one span. This is where synchronous=FULL pays its fsync. */
static int ack_latency(const char *dir, enum traces_sync sync, long n, double *us)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ack.db", dir);
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    o.sync = sync;
    struct traces_store *s = NULL;
    if (traces_open(&o, &s, NULL) != SHOAL_OK)
        return -1;
    int64_t run = 0;
    uint64_t busy = 0;
    if (traces_run_start(s, "bench", "x", 0, &run, NULL) != SHOAL_OK)
        return -1;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (one_span(s, run, &busy) != 0 || traces_flush(s, 60000) != SHOAL_OK)
            return -1;
    *us = (now_s() - t0) * 1e6 / (double)n;
    traces_close(s);
    unlink(path);
    char aux[320];
    snprintf(aux, sizeof aux, "%s-wal", path);
    unlink(aux);
    snprintf(aux, sizeof aux, "%s-shm", path);
    unlink(aux);
    return 0;
}

int main(int argc, char **argv)
{
    long spans = 200000;
    int reps = 5;
    enum traces_sync sync = TRACES_SYNC_NORMAL;
    int64_t v;
    if (argc > 1 && shoal_parse_i64(argv[1], strlen(argv[1]), 1, 100000000, &v) == SHOAL_OK)
        spans = (long)v;
    if (argc > 2 && shoal_parse_i64(argv[2], strlen(argv[2]), 1, 101, &v) == SHOAL_OK)
        reps = (int)v;
    if (argc > 3 && strcmp(argv[3], "full") == 0)
        sync = TRACES_SYNC_FULL;
    const char *tmp = getenv("TMPDIR");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/shoal-bench-traces-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    double *cn = calloc((size_t)reps, sizeof *cn), *sus = calloc((size_t)reps, sizeof *sus);
    if (!cn || !sus)
        return 1;
    for (int r = 0; r < reps; r++) {
        if (run_once(dir, r, spans, sync, true, &cn[r], NULL) != 0 ||
            run_once(dir, r, spans, sync, false, NULL, &sus[r]) != 0) {
            fprintf(stderr, "run %d failed\n", r);
            return 1;
        }
    }
    qsort(cn, (size_t)reps, sizeof *cn, cmp_dbl);
    qsort(sus, (size_t)reps, sizeof *sus, cmp_dbl);
    printf("synchronous=%s spans=%ld reps=%d\n", sync == TRACES_SYNC_FULL ? "FULL" : "NORMAL",
           spans, reps);
    printf("sustained spans/s (start+end, 5 attrs): median %.0f  min %.0f  max %.0f\n",
           sus[reps / 2], sus[0], sus[reps - 1]);
    printf("caller ns/span (start+end): median %.0f  min %.0f  max %.0f\n", cn[reps / 2], cn[0],
           cn[reps - 1]);
    double ack_us = 0;
    if (ack_latency(dir, sync, 2000, &ack_us) != 0)
        return 1;
    printf("acknowledged one-span commit (flush after each span): %.1f us\n", ack_us);
    rmdir(dir);
    free(cn);
    free(sus);
    return 0;
}
