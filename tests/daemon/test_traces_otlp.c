/* test_traces_otlp.c: OTLP/HTTP JSON export of the trace store
 * (daemon/traces_otlp.c). A database is written through the real writer,
 * exported to tests/daemon/otlp_peer.py (a strict stand-in collector run as
 * a child), and the recorded payloads are checked against the test's own
 * table of what was written: ids and linkage, times, kinds, statuses, every
 * attribute type; then batching, retries, refusals and hostile rows. */
#include "peer.h"
#include "test.h"
#include "traces.h"
#include "traces_otlp.h"
#include "traces_query.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHOAL_OTLP_PEER
#define SHOAL_OTLP_PEER "otlp_peer.py"
#endif

static char tmpdir[64];
static char db_main[128];

#define T0 1700000000000000LL /* 2023-11-14T22:13:20Z in µs */

/* ---- the peer ---- */

struct peer {
    struct test_peer tp;
    char record[160];
    char url[96];
};

static int peer_seq;

/* Start otlp_peer.py with the extra arguments (NULL-terminated). */
static bool peer_start(struct peer *p, const char *const *extra)
{
    memset(p, 0, sizeof *p);
    snprintf(p->record, sizeof p->record, "%s/rec-%d.jsonl", tmpdir, ++peer_seq);
    const char *args[24] = {"--record", p->record};
    size_t n = 2;
    for (size_t i = 0; extra && extra[i] && n < SHOAL_ARRAY_LEN(args) - 1; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    int port = test_peer_start_args(&p->tp, "OTLP_PEER", SHOAL_OTLP_PEER, args);
    snprintf(p->url, sizeof p->url, "http://127.0.0.1:%d/v1/traces", port);
    return port > 0;
}

/* Stop the peer (EOF on its stdin) and return its summary. */
static cJSON *peer_stop(struct peer *p)
{
    char line[65536];
    bool started = p->tp.pid > 0;
    int st = test_peer_finish(&p->tp, line, sizeof line);
    cJSON *summary = cJSON_Parse(line);
    if (started)
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(summary != NULL);
    return summary;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The peer accepted everything it got and every parent resolved. */
static void check_summary_clean(const cJSON *s, int posts)
{
    CHECK_EQ_INT(num(s, "posts"), posts);
    CHECK_EQ_INT(num(s, "invalid"), 0);
    CHECK_EQ_INT(num(s, "duplicate_spans"), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(get(s, "unresolved_parents")), 0);
    if (num(s, "invalid") != 0)
        fprintf(stderr, "peer: %s\n", str(s, "last_invalid"));
}

/* Every span of every recorded payload, in order; *posts gets the number
 * of payloads and *max_batch the largest. Checks each envelope. */
static cJSON *load_records(const char *path, const char *service, int *posts, int *max_batch)
{
    cJSON *all = cJSON_CreateArray();
    *posts = 0;
    if (max_batch)
        *max_batch = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return all;
    static char line[1 << 20];
    while (fgets(line, sizeof line, f)) {
        cJSON *p = cJSON_Parse(line);
        CHECK(p != NULL);
        if (!p)
            continue;
        (*posts)++;
        const cJSON *rs = cJSON_GetArrayItem(get(p, "resourceSpans"), 0);
        const cJSON *attr = cJSON_GetArrayItem(get(get(rs, "resource"), "attributes"), 0);
        CHECK_STR(str(attr, "key"), "service.name");
        CHECK_STR(str(get(attr, "value"), "stringValue"), service);
        const cJSON *ss = cJSON_GetArrayItem(get(rs, "scopeSpans"), 0);
        CHECK_STR(str(get(ss, "scope"), "name"), "shoal");
        CHECK_STR(str(get(ss, "scope"), "version"), SHOAL_VERSION);
        const cJSON *sp;
        int n = 0;
        cJSON_ArrayForEach(sp, get(ss, "spans"))
        {
            cJSON_AddItemToArray(all, cJSON_Duplicate(sp, true));
            n++;
        }
        if (max_batch && n > *max_batch)
            *max_batch = n;
        cJSON_Delete(p);
    }
    fclose(f);
    return all;
}

static const cJSON *span_named(const cJSON *spans, const char *name)
{
    const cJSON *s, *hit = NULL;
    int n = 0;
    cJSON_ArrayForEach(s, spans)
    {
        const char *nm = str(s, "name");
        if (nm && strcmp(nm, name) == 0) {
            hit = s;
            n++;
        }
    }
    return n == 1 ? hit : NULL;
}

static const cJSON *attr_of(const cJSON *span, const char *key)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, get(span, "attributes"))
    {
        if (str(a, "key") && strcmp(str(a, "key"), key) == 0)
            return get(a, "value");
    }
    return NULL;
}

static bool is_hex(const char *s, size_t len)
{
    if (!s || strlen(s) != len)
        return false;
    bool nonzero = false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

/* ---- the database: the oracle is this table ---- */

#define S(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_STRING, .v.s = val                                           \
    }
#define C(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_STRING, .content = true, .v.s = val                          \
    }
#define D(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_DOUBLE, .v.d = val                                           \
    }
#define I(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_INT, .v.i = val                                              \
    }
#define B(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_BOOL, .v.b = val                                             \
    }

static const struct traces_attr a_llm[] = {
    S("gen_ai.request.model", "qwen-local"),
    S("shoal.route.provider", "local"),
    I("gen_ai.usage.input_tokens", 100),
    I("shoal.test.negative", -42),
    I("shoal.test.big", 9007199254740993LL), /* 2^53 + 1: a double would lose it */
    I("shoal.test.max", INT64_MAX),
    I("shoal.test.min", INT64_MIN),
    D("shoal.cost.usd", 0.1),
    D("shoal.test.whole", 3.0), /* an integral double stays a double */
    D("shoal.test.huge", 1e300),
    D("shoal.test.tiny", -2.5e-300),
    B("shoal.test.yes", true),
    B("shoal.test.no", false),
    C("gen_ai.prompt", "h\xc3\xa9llo \xe2\x9c\x93 \"quoted\"\n\ttab \\ back \x01 ctl"),
    S("shoal.test.empty", ""),
};
static const struct traces_attr a_llm_end[] = {
    I("gen_ai.usage.output_tokens", 50),
    S("shoal.route.reason", "confident"),
};
static const struct traces_attr a_llm2[] = {
    S("gen_ai.request.model", "gpt-4o"),
    S("shoal.route.escalated_from", "qwen-local"),
    D("shoal.cost.usd", 0.2),
};
static const struct traces_attr a_run[] = {C("shoal.run.input", "task one")};

struct run_def {
    const char *agent;
    int64_t start;
    int64_t id;
};

static struct run_def runs[] = {
    {"coder", T0 + 100, 0},
    {"writer", T0 + 200, 0},
    {"old", T0 - 5000, 0}, /* before since: never exported */
};

struct want {
    const char *name; /* unique */
    int run;
    const char *parent; /* a name; NULL for none; "?" for a missing span */
    enum traces_span_kind kind;
    int64_t start, end; /* end 0: still open */
    enum traces_status status;
    const char *error;
    const struct traces_attr *attrs;
    size_t n_attrs;
    const struct traces_attr *end_attrs;
    size_t n_end;
    int64_t id; /* assigned when written */
};

#define A(x)           x, SHOAL_ARRAY_LEN(x)
#define MISSING_PARENT 999999

static struct want spans[] = {
    {"agent", 0, NULL, TRACES_SPAN_RUN, T0 + 100, T0 + 9000, TRACES_STATUS_OK, NULL, A(a_run), NULL,
     0, 0},
    {"plan", 0, "agent", TRACES_SPAN_STEP, T0 + 200, T0 + 5000, TRACES_STATUS_OK, NULL, NULL, 0,
     NULL, 0, 0},
    {"call-1", 0, "plan", TRACES_SPAN_LLM, T0 + 300, T0 + 1300, TRACES_STATUS_OK, NULL, A(a_llm),
     A(a_llm_end), 0},
    {"grep", 0, "plan", TRACES_SPAN_TOOL, T0 + 1350, T0 + 1400, TRACES_STATUS_ERROR,
     "exit status 2: no such file", NULL, 0, NULL, 0, 0},
    {"pick", 0, "plan", TRACES_SPAN_ROUTE, T0 + 1310, T0 + 1320, TRACES_STATUS_OK, NULL, NULL, 0,
     NULL, 0, 0},
    {"call-2", 0, "plan", TRACES_SPAN_LLM, T0 + 1400, T0 + 4000, TRACES_STATUS_OK, NULL, A(a_llm2),
     NULL, 0, 0},
    {"review", 0, "agent", TRACES_SPAN_STEP, T0 + 5000, 0, TRACES_STATUS_UNSET, NULL, NULL, 0, NULL,
     0, 0},
    {"abort", 0, "review", TRACES_SPAN_TOOL, T0 + 5100, T0 + 5200, TRACES_STATUS_CANCELLED, NULL,
     NULL, 0, NULL, 0, 0},
    {"draft", 1, NULL, TRACES_SPAN_LLM, T0 + 250, T0 + 800, TRACES_STATUS_ERROR, "rate limited",
     NULL, 0, NULL, 0, 0},
    {"lost", 1, "?", TRACES_SPAN_STEP, T0 + 600, T0 + 700, TRACES_STATUS_OK, NULL, NULL, 0, NULL, 0,
     0},
    /* Starts before its parent: exported first, so its parent arrives
     * later (in a later batch when batches are small). */
    {"early-child", 1, "draft", TRACES_SPAN_STEP, T0 + 240, T0 + 260, TRACES_STATUS_OK, NULL, NULL,
     0, NULL, 0, 0},
    {"ancient", 2, NULL, TRACES_SPAN_STEP, T0 - 4900, T0 - 4800, TRACES_STATUS_OK, NULL, NULL, 0,
     NULL, 0, 0},
};
#define N_EXPORTED 11 /* all but "ancient" */

static const char *kind_name(enum traces_span_kind k)
{
    static const char *const names[] = {"run", "step", "llm", "tool", "route"};
    return names[k];
}

static struct want *want_named(const char *name)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(spans); i++)
        if (strcmp(spans[i].name, name) == 0)
            return &spans[i];
    return NULL;
}

static void build_db(const char *path)
{
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    struct traces_store *s = NULL;
    CHECK_EQ_INT(traces_open(&o, &s, NULL), SHOAL_OK);
    if (!s)
        exit(1);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(runs); i++)
        CHECK_EQ_INT(traces_run_start(s, runs[i].agent, "input", runs[i].start, &runs[i].id, NULL),
                     SHOAL_OK);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(spans); i++) {
        struct want *w = &spans[i];
        int64_t parent = 0;
        if (w->parent && strcmp(w->parent, "?") == 0)
            parent = MISSING_PARENT;
        else if (w->parent)
            parent = want_named(w->parent)->id;
        CHECK_EQ_INT(traces_span_start(s, runs[w->run].id, parent, w->kind, w->name, w->start,
                                       w->attrs, w->n_attrs, &w->id, NULL),
                     SHOAL_OK);
    }
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(spans); i++) {
        struct want *w = &spans[i];
        if (w->end)
            CHECK_EQ_INT(traces_span_end(s, w->id, w->status, w->error, w->end, w->end_attrs,
                                         w->n_end, NULL),
                         SHOAL_OK);
    }
    CHECK_EQ_INT(traces_run_end(s, runs[0].id, "done", TRACES_STATUS_OK, NULL, T0 + 9100, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    traces_close(s);
}

static int64_t db_count(const char *path, int64_t since)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM spans s JOIN runs r ON r.id = s.run_id"
                           " WHERE r.started_us >= ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, since);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void check_attr(const cJSON *span, const struct traces_attr *a)
{
    const cJSON *v = attr_of(span, a->key);
    char buf[32];
    if (!v) {
        fprintf(stderr, "span %s: no attribute %s\n", str(span, "name"), a->key);
        CHECK(v != NULL);
        return;
    }
    CHECK_EQ_INT(cJSON_GetArraySize(v), 1);
    switch (a->type) {
    case TRACES_ATTR_STRING:
        CHECK_STR(str(v, "stringValue"), a->v.s);
        break;
    case TRACES_ATTR_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)a->v.i);
        CHECK_STR(str(v, "intValue"), buf);
        break;
    case TRACES_ATTR_DOUBLE: {
        const cJSON *dv = get(v, "doubleValue");
        CHECK(cJSON_IsNumber(dv) && dv->valuedouble == a->v.d);
        break;
    }
    case TRACES_ATTR_BOOL:
        CHECK(cJSON_IsBool(get(v, "boolValue")) && cJSON_IsTrue(get(v, "boolValue")) == a->v.b);
        break;
    }
}

/* Ids from the first export, to show later ones derive the same. */
static char first_span_ids[SHOAL_ARRAY_LEN(spans)][17];
static char first_trace_ids[SHOAL_ARRAY_LEN(spans)][33];

/* Everything recorded matches the table. */
static void check_export(const cJSON *got)
{
    CHECK_EQ_INT(cJSON_GetArraySize(got), N_EXPORTED);
    CHECK(span_named(got, "ancient") == NULL);
    const char *trace_of_run[2] = {NULL, NULL};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(spans); i++) {
        const struct want *w = &spans[i];
        if (w->run == 2)
            continue;
        const cJSON *s = span_named(got, w->name);
        if (!s) {
            fprintf(stderr, "span %s missing or duplicated\n", w->name);
            CHECK(s != NULL);
            continue;
        }
        /* Ids: hex, non-zero, one trace per run, stable across exports. */
        const char *tid = str(s, "traceId"), *sid = str(s, "spanId");
        CHECK(is_hex(tid, 32));
        CHECK(is_hex(sid, 16));
        if (!trace_of_run[w->run])
            trace_of_run[w->run] = tid;
        CHECK_STR(tid, trace_of_run[w->run]);
        if (!first_span_ids[i][0] && sid && tid) {
            shoal_strlcpy(first_span_ids[i], sid, sizeof first_span_ids[i]);
            shoal_strlcpy(first_trace_ids[i], tid, sizeof first_trace_ids[i]);
        }
        CHECK_STR(sid, first_span_ids[i]);
        CHECK_STR(tid, first_trace_ids[i]);
        /* Linkage. */
        const char *pid = str(s, "parentSpanId");
        if (w->parent && strcmp(w->parent, "?") != 0) {
            const cJSON *p = span_named(got, w->parent);
            CHECK_STR(pid, p ? str(p, "spanId") : "(parent missing)");
        } else {
            CHECK(pid == NULL || *pid == '\0');
        }
        if (w->parent && strcmp(w->parent, "?") == 0) {
            char want_id[24];
            snprintf(want_id, sizeof want_id, "%d", MISSING_PARENT);
            CHECK_STR(str(attr_of(s, "shoal.span.parent_missing"), "intValue"), want_id);
        } else {
            CHECK(attr_of(s, "shoal.span.parent_missing") == NULL);
        }
        /* Kind, times (µs * 1000, as strings), status. */
        CHECK_EQ_INT(num(s, "kind"), w->kind == TRACES_SPAN_LLM ? 3 : 1);
        char t[32];
        snprintf(t, sizeof t, "%lld", (long long)(w->start * 1000));
        CHECK_STR(str(s, "startTimeUnixNano"), t);
        if (w->end) {
            snprintf(t, sizeof t, "%lld", (long long)(w->end * 1000));
            CHECK(attr_of(s, "shoal.span.open") == NULL);
        } else {
            CHECK(cJSON_IsTrue(get(attr_of(s, "shoal.span.open"), "boolValue")));
        }
        CHECK_STR(str(s, "endTimeUnixNano"), t);
        const cJSON *status = get(s, "status");
        int code = w->status == TRACES_STATUS_OK ? 1 : w->status == TRACES_STATUS_UNSET ? 0 : 2;
        CHECK_EQ_INT(num(status, "code"), code);
        if (w->error)
            CHECK_STR(str(status, "message"), w->error);
        else if (w->status == TRACES_STATUS_CANCELLED)
            CHECK_STR(str(status, "message"), "cancelled");
        else
            CHECK(get(status, "message") == NULL);
        /* Attributes: ours, then every one written, with its type. */
        CHECK_STR(str(attr_of(s, "shoal.span.kind"), "stringValue"), kind_name(w->kind));
        CHECK_STR(str(attr_of(s, "shoal.run.agent"), "stringValue"), runs[w->run].agent);
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)runs[w->run].id);
        CHECK_STR(str(attr_of(s, "shoal.run.id"), "intValue"), id);
        snprintf(id, sizeof id, "%lld", (long long)w->id);
        CHECK_STR(str(attr_of(s, "shoal.span.id"), "intValue"), id);
        size_t n_ours = 4 + (w->end == 0) + (w->parent && strcmp(w->parent, "?") == 0) +
                        (w->status == TRACES_STATUS_CANCELLED);
        CHECK_EQ_INT(cJSON_GetArraySize(get(s, "attributes")), n_ours + w->n_attrs + w->n_end);
        for (size_t k = 0; k < w->n_attrs; k++)
            check_attr(s, &w->attrs[k]);
        for (size_t k = 0; k < w->n_end; k++)
            check_attr(s, &w->end_attrs[k]);
    }
    CHECK(trace_of_run[0] && trace_of_run[1] && strcmp(trace_of_run[0], trace_of_run[1]) != 0);
    /* Span ids are unique over the export. */
    const cJSON *a, *b;
    int dup = 0;
    cJSON_ArrayForEach(a, got)
    {
        for (b = a->next; b; b = b->next)
            dup += str(a, "spanId") && str(b, "spanId") &&
                   strcmp(str(a, "spanId"), str(b, "spanId")) == 0;
    }
    CHECK_EQ_INT(dup, 0);
}

static struct traces_reader *open_reader(const char *path)
{
    struct traces_reader *r = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err e = traces_reader_open(path, &r, &d);
    if (e != SHOAL_OK)
        fprintf(stderr, "traces_reader_open: %s\n", d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    return r;
}

/* Export the main database since T0 to p with o (url filled from p). */
static enum shoal_err export_to(const char *db, struct traces_otlp_options *o,
                                struct traces_otlp_stats *st, struct shoal_diag *d)
{
    struct traces_reader *r = open_reader(db);
    if (!r)
        return SHOAL_ERR_IO;
    shoal_diag_clear(d);
    enum shoal_err e = traces_otlp_export(r, T0, o, st, d);
    traces_reader_close(r);
    return e;
}

static void fast_options(struct traces_otlp_options *o, const struct peer *p)
{
    traces_otlp_options_default(o);
    o->url = p->url;
    o->backoff_ms = 10;
    o->timeout_ms = 5000;
}

/* ---- tests ---- */

static void test_roundtrip(void)
{
    struct peer p;
    CHECK(peer_start(&p, NULL));
    struct traces_otlp_options o;
    fast_options(&o, &p);
    /* No path: /v1/traces is appended (the peer 404s anything else). */
    char bare[64];
    snprintf(bare, sizeof bare, "http://127.0.0.1:%d", p.tp.port);
    o.url = bare;
    o.service_name = "shoal-test";
    struct traces_otlp_stats st;
    struct shoal_diag d;
    enum shoal_err e = export_to(db_main, &o, &st, &d);
    if (e != SHOAL_OK)
        fprintf(stderr, "export: %s\n", d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    CHECK_EQ_INT(st.spans_sent, N_EXPORTED);
    CHECK_EQ_INT(st.spans_sent, db_count(db_main, T0));
    CHECK_EQ_INT(st.batches_sent, 1);
    CHECK_EQ_INT(st.retries, 0);
    CHECK_EQ_INT(st.spans_rejected, 0);
    cJSON *sum = peer_stop(&p);
    check_summary_clean(sum, 1);
    CHECK_EQ_INT(num(sum, "spans"), N_EXPORTED);
    cJSON_Delete(sum);
    int posts;
    cJSON *got = load_records(p.record, "shoal-test", &posts, NULL);
    CHECK_EQ_INT(posts, 1);
    check_export(got);
    cJSON_Delete(got);

    /* Nothing since a later time: no request at all. */
    CHECK(peer_start(&p, NULL));
    fast_options(&o, &p);
    struct traces_reader *r = open_reader(db_main);
    CHECK_EQ_INT(traces_otlp_export(r, T0 + 1000000, &o, &st, &d), SHOAL_OK);
    CHECK_EQ_INT(st.spans_sent, 0);
    CHECK_EQ_INT(st.batches_sent, 0);
    traces_reader_close(r);
    sum = peer_stop(&p);
    CHECK_EQ_INT(num(sum, "posts"), 0);
    cJSON_Delete(sum);
}

static void test_batching(uint32_t batch)
{
    struct peer p;
    CHECK(peer_start(&p, NULL));
    struct traces_otlp_options o;
    fast_options(&o, &p);
    o.batch_spans = batch;
    struct traces_otlp_stats st;
    struct shoal_diag d;
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_OK);
    int want_posts = (N_EXPORTED + (int)batch - 1) / (int)batch;
    CHECK_EQ_INT(st.batches_sent, want_posts);
    CHECK_EQ_INT(st.spans_sent, N_EXPORTED);
    cJSON *sum = peer_stop(&p);
    check_summary_clean(sum, want_posts);
    cJSON_Delete(sum);
    int posts, biggest;
    cJSON *got = load_records(p.record, "shoald", &posts, &biggest);
    CHECK_EQ_INT(posts, want_posts);
    CHECK_EQ_INT(biggest, batch);
    check_export(got);
    cJSON_Delete(got);
}

/* Resets and 503s are retried; nothing is lost or sent twice. */
static void test_retries(void)
{
    struct peer p;
    const char *resets[] = {"--reset-first", "2", NULL};
    CHECK(peer_start(&p, resets));
    struct traces_otlp_options o;
    fast_options(&o, &p);
    o.batch_spans = 4;
    struct traces_otlp_stats st;
    struct shoal_diag d;
    enum shoal_err e = export_to(db_main, &o, &st, &d);
    if (e != SHOAL_OK)
        fprintf(stderr, "export: %s\n", d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    CHECK_EQ_INT(st.retries, 2);
    CHECK_EQ_INT(st.batches_sent, 3);
    cJSON *sum = peer_stop(&p);
    check_summary_clean(sum, 3 + 2);
    cJSON_Delete(sum);
    int posts;
    cJSON *got = load_records(p.record, "shoald", &posts, NULL);
    CHECK_EQ_INT(posts, 3);
    check_export(got);
    cJSON_Delete(got);

    /* 503 with Retry-After: 0 is retried at once, however long the
     * backoff would have been. */
    const char *fails[] = {"--fail-first", "3", NULL};
    CHECK(peer_start(&p, fails));
    fast_options(&o, &p);
    o.backoff_ms = 4000;
    uint64_t t = shoal_now_ms();
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_OK);
    CHECK(shoal_now_ms() - t < 2000);
    CHECK_EQ_INT(st.retries, 3);
    CHECK_EQ_INT(st.spans_sent, N_EXPORTED);
    sum = peer_stop(&p);
    check_summary_clean(sum, 1 + 3);
    cJSON_Delete(sum);
    got = load_records(p.record, "shoald", &posts, NULL);
    check_export(got);
    cJSON_Delete(got);

    /* Retry-After: 1 is waited for. */
    const char *wait1[] = {"--fail-first", "1", "--retry-after", "1", NULL};
    CHECK(peer_start(&p, wait1));
    fast_options(&o, &p);
    t = shoal_now_ms();
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_OK);
    CHECK(shoal_now_ms() - t >= 950);
    CHECK_EQ_INT(st.retries, 1);
    cJSON_Delete(peer_stop(&p));

    /* Still failing after max_attempts: IO naming the status. */
    const char *always[] = {"--fail-first", "100", NULL};
    CHECK(peer_start(&p, always));
    fast_options(&o, &p);
    o.max_attempts = 3;
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_ERR_IO);
    char want[256];
    snprintf(want, sizeof want, "POST %s: HTTP 503: ", p.url);
    CHECK_CONTAINS(d.msg, want);
    CHECK_CONTAINS(d.msg, "unavailable (scripted)");
    CHECK_CONTAINS(d.msg, "(after 3 attempts)");
    CHECK_EQ_INT(st.retries, 2);
    CHECK_EQ_INT(st.spans_sent, 0);
    sum = peer_stop(&p);
    CHECK_EQ_INT(num(sum, "posts"), 3);
    cJSON_Delete(sum);
}

/* A 4xx other than 408/429 is final: one POST, PERM, status and body quoted. */
static void test_refused(void)
{
    struct peer p;
    const char *bad[] = {"--status", "400", NULL};
    CHECK(peer_start(&p, bad));
    struct traces_otlp_options o;
    fast_options(&o, &p);
    struct traces_otlp_stats st;
    struct shoal_diag d;
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_ERR_PERM);
    char want[256];
    snprintf(want, sizeof want, "POST %s: HTTP 400: collector says no: forced by --status 400",
             p.url);
    CHECK_STR(d.msg, want);
    CHECK_EQ_INT(st.retries, 0);
    CHECK_EQ_INT(st.batches_sent, 0);
    cJSON *sum = peer_stop(&p);
    CHECK_EQ_INT(num(sum, "posts"), 1);
    cJSON_Delete(sum);

    /* Extra headers reach the collector (and their absence is a 401). */
    const char *auth[] = {"--require-header", "Authorization: Bearer t0ken", NULL};
    CHECK(peer_start(&p, auth));
    fast_options(&o, &p);
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_ERR_PERM);
    CHECK_CONTAINS(d.msg, "HTTP 401: ");
    CHECK_CONTAINS(d.msg, "missing or wrong Authorization header");
    const char *headers[] = {"X-Scope: test", "Authorization: Bearer t0ken", NULL};
    o.headers = headers;
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_OK);
    CHECK_EQ_INT(st.spans_sent, N_EXPORTED);
    cJSON_Delete(peer_stop(&p));
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_unreachable(void)
{
    struct traces_otlp_options o;
    traces_otlp_options_default(&o);
    char url[96];
    int port = closed_port();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", port);
    o.url = url;
    o.max_attempts = 3;
    o.backoff_ms = 1;
    struct traces_otlp_stats st;
    struct shoal_diag d;
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_ERR_IO);
    char want[256];
    snprintf(want, sizeof want, "connect to %s: Connection refused (after 3 attempts)", url);
    CHECK_STR(d.msg, want);
    CHECK_EQ_INT(st.retries, 2);
    CHECK_EQ_INT(st.spans_sent, 0);
}

static void test_partial(void)
{
    struct peer p;
    const char *partial[] = {"--partial", "2", NULL};
    CHECK(peer_start(&p, partial));
    struct traces_otlp_options o;
    fast_options(&o, &p);
    o.batch_spans = 5;
    struct traces_otlp_stats st;
    struct shoal_diag d;
    FILE *log = tmpfile();
    if (log)
        shoal_log_set_fd(fileno(log));
    CHECK_EQ_INT(export_to(db_main, &o, &st, &d), SHOAL_OK);
    shoal_log_set_fd(2);
    CHECK_EQ_INT(st.batches_sent, 3);
    CHECK_EQ_INT(st.spans_sent, N_EXPORTED);
    /* 2 + 2 + 1: a claim above a batch's size is cut to it (5 + 5 + 1). */
    CHECK_EQ_INT(st.spans_rejected, 5);
    if (log) {
        char buf[4096] = "";
        rewind(log);
        size_t n = fread(buf, 1, sizeof buf - 1, log);
        buf[n] = '\0';
        CHECK_CONTAINS(buf, "level=warn event=otlp_partial_success");
        CHECK_CONTAINS(buf, "rejected_spans=2");
        CHECK_CONTAINS(buf, "scripted partial success");
        fclose(log);
    }
    cJSON *sum = peer_stop(&p);
    check_summary_clean(sum, 3);
    cJSON_Delete(sum);
}

static void test_options(void)
{
    struct traces_reader *r = open_reader(db_main);
    if (!r)
        return;
    struct traces_otlp_options o;
    struct shoal_diag d;
    struct traces_otlp_stats st;
    static const char *const bad_urls[] = {"ftp://127.0.0.1/v1/traces", "not a url", "http://",
                                           "file:///etc/passwd", ""};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(bad_urls); i++) {
        traces_otlp_options_default(&o);
        o.url = bad_urls[i];
        shoal_diag_clear(&d);
        CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
        CHECK(d.msg[0] != '\0');
    }
    traces_otlp_options_default(&o);
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID); /* no URL */
    CHECK_CONTAINS(d.msg, "no collector URL");
    CHECK_EQ_INT(traces_otlp_export(NULL, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(traces_otlp_export(r, 0, NULL, &st, &d), SHOAL_ERR_INVALID);
    o.url = "http://127.0.0.1:9/v1/traces";
    o.batch_spans = 0;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    o.batch_spans = TRACES_OTLP_BATCH_MAX + 1;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    traces_otlp_options_default(&o);
    o.url = "http://127.0.0.1:9/v1/traces";
    o.max_attempts = 0;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    traces_otlp_options_default(&o);
    o.url = "http://127.0.0.1:9/v1/traces";
    o.timeout_ms = 0;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    traces_otlp_options_default(&o);
    o.url = "http://127.0.0.1:9/v1/traces";
    const char *split[] = {"X-Ok: 1", "X-Bad: a\r\nInjected: b", NULL};
    o.headers = split;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    CHECK_CONTAINS(d.msg, "header 2");
    CHECK(!strstr(d.msg, "Injected")); /* a header value may be a secret */
    const char *nocolon[] = {"Authorization Bearer x", NULL};
    o.headers = nocolon;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_INVALID);
    CHECK(!strstr(d.msg, "Bearer"));
    /* User info and query never reach a message. */
    traces_otlp_options_default(&o);
    char url[128];
    snprintf(url, sizeof url, "http://user:s3cret@127.0.0.1:%d/v1/traces?key=s3cret",
             closed_port());
    o.url = url;
    o.max_attempts = 1;
    CHECK_EQ_INT(traces_otlp_export(r, 0, &o, &st, &d), SHOAL_ERR_IO);
    CHECK_CONTAINS(d.msg, "connect to http://127.0.0.1:");
    CHECK(!strstr(d.msg, "s3cret"));
    CHECK_CONTAINS(d.msg, "(after 1 attempt)");
    traces_reader_close(r);
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *err = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "raw exec %s: %s\n", sql, err ? err : "?");
        exit(1);
    }
    sqlite3_close(db);
}

/* Rows the writer never produces still give a payload a strict collector
 * accepts: bad UTF-8, bad or nested JSON, spoofed keys, time travel,
 * parent loops. */
static void test_hostile(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/hostile.db", tmpdir);
    struct traces_options to;
    traces_options_default(&to);
    to.path = path;
    struct traces_store *s = NULL;
    CHECK_EQ_INT(traces_open(&to, &s, NULL), SHOAL_OK);
    if (!s)
        return;
    int64_t run = 0, id[6];
    CHECK_EQ_INT(traces_run_start(s, NULL, NULL, T0, &run, NULL), SHOAL_OK);
    static const char *const names[] = {"utf8", "notjson", "nested", "deep", "loop-a", "loop-b"};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, names[i], T0 + 10 * (i + 1),
                                       NULL, 0, &id[i], NULL),
                     SHOAL_OK);
        CHECK_EQ_INT(
            traces_span_end(s, id[i], TRACES_STATUS_OK, NULL, T0 + 10 * (i + 1) + 5, NULL, 0, NULL),
            SHOAL_OK);
    }
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    traces_close(s);
    char deep[256] = "{\"d\":";
    for (int i = 0; i < 20; i++)
        strncat(deep, "[", sizeof deep - strlen(deep) - 1);
    for (int i = 0; i < 20; i++)
        strncat(deep, "]", sizeof deep - strlen(deep) - 1);
    strncat(deep, "}", sizeof deep - strlen(deep) - 1);
    char sql[2048];
    snprintf(sql, sizeof sql,
             "UPDATE spans SET name = CAST(X'41FF42C0AF' AS TEXT), error = 'bad \xff',"
             " status = 'error', end_us = start_us - 7 WHERE id = %lld;"
             "UPDATE spans SET attrs = '{not json' WHERE id = %lld;"
             "UPDATE spans SET attrs = '{\"obj\": {\"a\": [1, 2.5, \"x\", null, true], \"e\": {}},"
             " \"n\": null, \"shoal.span.kind\": \"spoof\", \"s\": \"\\ud83d\\ude00 \\ud800\","
             " \"huge\": 1e400, \"wide\": 123456789012345678901234}' WHERE id = %lld;"
             "UPDATE spans SET attrs = '%s' WHERE id = %lld;"
             "UPDATE spans SET parent_id = %lld WHERE id = %lld;"
             "UPDATE spans SET parent_id = %lld WHERE id = %lld;",
             (long long)id[0], (long long)id[1], (long long)id[2], deep, (long long)id[3],
             (long long)id[5], (long long)id[4], (long long)id[4], (long long)id[5]);
    raw_exec(path, sql);

    struct peer p;
    CHECK(peer_start(&p, NULL));
    struct traces_otlp_options o;
    fast_options(&o, &p);
    struct traces_reader *r = open_reader(path);
    struct traces_otlp_stats st;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err e = r ? traces_otlp_export(r, 0, &o, &st, &d) : SHOAL_ERR_IO;
    if (e != SHOAL_OK)
        fprintf(stderr, "export: %s\n", d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    CHECK_EQ_INT(st.spans_sent, 6);
    traces_reader_close(r);
    cJSON *sum = peer_stop(&p);
    check_summary_clean(sum, 1);
    cJSON_Delete(sum);
    int posts;
    cJSON *got = load_records(p.record, "shoald", &posts, NULL);
    CHECK_EQ_INT(cJSON_GetArraySize(got), 6);

    /* Bad UTF-8 became U+FFFD; the end before the start became the start. */
    const cJSON *u = span_named(got, "A\xef\xbf\xbd"
                                     "B\xef\xbf\xbd\xef\xbf\xbd");
    CHECK(u != NULL);
    CHECK_STR(str(u, "endTimeUnixNano"), str(u, "startTimeUnixNano"));
    CHECK_STR(str(get(u, "status"), "message"), "bad \xef\xbf\xbd");
    CHECK(attr_of(u, "shoal.run.agent") == NULL); /* the run has no agent */

    const cJSON *nj = span_named(got, "notjson");
    CHECK_STR(str(attr_of(nj, "shoal.attributes.dropped"), "stringValue"),
              "not a JSON object, or nested too deep");
    CHECK_STR(str(attr_of(span_named(got, "deep"), "shoal.attributes.dropped"), "stringValue"),
              "not a JSON object, or nested too deep");

    const cJSON *ne = span_named(got, "nested");
    CHECK_STR(str(attr_of(ne, "shoal.span.kind"), "stringValue"), "step"); /* not "spoof" */
    CHECK(attr_of(ne, "n") == NULL);
    CHECK_STR(str(attr_of(ne, "s"), "stringValue"), "\xf0\x9f\x98\x80 \xef\xbf\xbd");
    CHECK_STR(str(attr_of(ne, "huge"), "stringValue"), "1e400");
    CHECK(cJSON_IsNumber(get(attr_of(ne, "wide"), "doubleValue")));
    const cJSON *kv = get(get(attr_of(ne, "obj"), "kvlistValue"), "values");
    CHECK_EQ_INT(cJSON_GetArraySize(kv), 2);
    const cJSON *arr = get(get(get(cJSON_GetArrayItem(kv, 0), "value"), "arrayValue"), "values");
    CHECK_EQ_INT(cJSON_GetArraySize(arr), 4); /* null dropped */
    CHECK_STR(str(cJSON_GetArrayItem(arr, 0), "intValue"), "1");
    CHECK(num(cJSON_GetArrayItem(arr, 1), "doubleValue") == 2.5);
    CHECK_STR(str(cJSON_GetArrayItem(arr, 2), "stringValue"), "x");
    CHECK(cJSON_IsTrue(get(cJSON_GetArrayItem(arr, 3), "boolValue")));
    CHECK_STR(str(cJSON_GetArrayItem(kv, 1), "key"), "e");

    /* A parent loop still links each to the other (the peer resolved both). */
    const cJSON *la = span_named(got, "loop-a"), *lb = span_named(got, "loop-b");
    CHECK_STR(str(la, "parentSpanId"), str(lb, "spanId"));
    CHECK_STR(str(lb, "parentSpanId"), str(la, "spanId"));
    cJSON_Delete(got);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* The peer is on loopback: no proxy from the environment. */
    static const char *const proxies[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(proxies); i++)
        unsetenv(proxies[i]);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/shoal-otlp-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(db_main, sizeof db_main, "%s/main.db", tmpdir);
    build_db(db_main);
    CHECK_EQ_INT(db_count(db_main, T0), N_EXPORTED);

    test_roundtrip();
    test_batching(3);
    test_batching(1);
    test_retries();
    test_refused();
    test_unreachable();
    test_partial();
    test_options();
    test_hostile();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_report("test_traces_otlp");
}
