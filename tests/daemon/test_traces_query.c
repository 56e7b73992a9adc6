/* test_traces_query.c: the trace store's read side (daemon/traces_query.c).
 * Data goes in through the real writer (traces_open ... traces_flush), comes
 * back through a reader, and the JSON is checked: filters, order, limits,
 * tree shape with orphans and loops, savings math, JSONL export, refusals,
 * caps, hostile rows, index use, and reading while a writer commits. */
#include "test.h"
#include "traces.h"
#include "traces_query.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

#define T0 1700000000000000LL /* 2023-11-14T22:13:20Z in µs */

static void db_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

#define CHECK_NEAR(a, b)                                                                           \
    do {                                                                                           \
        double na_ = (a), nb_ = (b);                                                               \
        test_checks++;                                                                             \
        if (!(fabs(na_ - nb_) < 1e-9)) {                                                           \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s ~ %s (%.12g vs %.12g)\n", __FILE__, __LINE__, \
                    #a, #b, na_, nb_);                                                             \
        }                                                                                          \
    } while (0)

static struct traces_store *open_store(const char *path)
{
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    struct traces_store *s = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err e = traces_open(&o, &s, &d);
    if (e != SHOAL_OK)
        fprintf(stderr, "traces_open: %s: %s\n", shoal_err_name(e), d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    return s;
}

static struct traces_reader *open_reader(const char *path)
{
    struct traces_reader *r = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err e = traces_reader_open(path, &r, &d);
    if (e != SHOAL_OK)
        fprintf(stderr, "traces_reader_open: %s: %s\n", shoal_err_name(e), d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    return r;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw open %s failed\n", path);
        exit(1);
    }
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "raw exec %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        exit(1);
    }
    sqlite3_close(db);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool is_null(const cJSON *o, const char *k)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, k));
}

static bool is_true(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static const cJSON *at(const cJSON *o, const char *k, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, k), i);
}

static int count_tree(const cJSON *arr)
{
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        n += 1 + count_tree(cJSON_GetObjectItemCaseSensitive(it, "children"));
    }
    return n;
}

#define S(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_STRING, .v.s = val                                           \
    }
#define D(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_DOUBLE, .v.d = val                                           \
    }
#define I(k, val)                                                                                  \
    {                                                                                              \
        .key = k, .type = TRACES_ATTR_INT, .v.i = val                                              \
    }

/* The fixture (costs in $):
 * run 1 coder ok      step plan
 *                       llm local  qwen-local  cost 0    base 0.30 (plan)
 *                       tool grep
 *                       llm openai gpt-4o      cost 0.20 base 0.20 (plan, escalated)
 * run 2 writer error    llm local  qwen-local  cost 0.01 base 0.50 (draft)
 *                       llm anthropic claude   cost 0.40 base 0.40 (draft)
 *                       step with a missing parent (orphan)
 * run 3 coder running   llm (no provider) qwen-local, no cost (review) */
struct fixture {
    int64_t run[3];
    int64_t plan, llm1, tool, llm2, orphan;
};

static void build_fixture(struct traces_store *s, struct fixture *fx)
{
    int64_t id = 0;
    CHECK_EQ_INT(traces_run_start(s, "coder", "task one", T0 + 100, &fx->run[0], NULL), SHOAL_OK);
    CHECK_EQ_INT(traces_run_start(s, "writer", "task two", T0 + 200, &fx->run[1], NULL), SHOAL_OK);
    CHECK_EQ_INT(traces_run_start(s, "coder", "task three", T0 + 300, &fx->run[2], NULL), SHOAL_OK);

    CHECK_EQ_INT(traces_span_start(s, fx->run[0], 0, TRACES_SPAN_STEP, "plan", T0 + 200, NULL, 0,
                                   &fx->plan, NULL),
                 SHOAL_OK);
    struct traces_attr a1[] = {
        S("gen_ai.request.model", "qwen-local"),
        S("shoal.route.provider", "local"),
        D("shoal.cost.usd", 0.0),
        D("shoal.cost.baseline_usd", 0.30),
        S("shoal.step.kind", "plan"),
        I("gen_ai.usage.input_tokens", 100),
        I("gen_ai.usage.output_tokens", 50),
        S("shoal.route.reason", "confident"),
    };
    CHECK_EQ_INT(traces_span_start(s, fx->run[0], fx->plan, TRACES_SPAN_LLM, "call-1", T0 + 300, a1,
                                   SHOAL_ARRAY_LEN(a1), &fx->llm1, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_end(s, fx->llm1, TRACES_STATUS_OK, NULL, T0 + 1300, NULL, 0, NULL),
                 SHOAL_OK);
    /* Started after llm2 is written but earlier in time: children are
     * ordered by start, not by id. */
    struct traces_attr a2[] = {
        S("gen_ai.request.model", "gpt-4o"),
        S("shoal.route.provider", "openai"),
        S("shoal.route.escalated_from", "qwen-local"),
        D("shoal.cost.usd", 0.20),
        D("shoal.cost.baseline_usd", 0.20),
        S("shoal.step.kind", "plan"),
    };
    CHECK_EQ_INT(traces_span_start(s, fx->run[0], fx->plan, TRACES_SPAN_LLM, "call-2", T0 + 1400,
                                   a2, SHOAL_ARRAY_LEN(a2), &fx->llm2, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, fx->run[0], fx->plan, TRACES_SPAN_TOOL, "grep", T0 + 1350,
                                   NULL, 0, &fx->tool, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_end(s, fx->plan, TRACES_STATUS_OK, NULL, T0 + 5000, NULL, 0, NULL),
                 SHOAL_OK);
    struct traces_run_totals tot = {100, 200, 0.20, 0.50};
    CHECK_EQ_INT(traces_run_end(s, fx->run[0], "done", TRACES_STATUS_OK, &tot, T0 + 5100, NULL),
                 SHOAL_OK);

    struct traces_attr a5[] = {
        S("gen_ai.request.model", "qwen-local"),
        S("shoal.route.provider", "local"),
        D("shoal.cost.usd", 0.01),
        D("shoal.cost.baseline_usd", 0.50),
        S("shoal.step.kind", "draft"),
    };
    CHECK_EQ_INT(traces_span_start(s, fx->run[1], 0, TRACES_SPAN_LLM, "draft-1", T0 + 400, a5,
                                   SHOAL_ARRAY_LEN(a5), &id, NULL),
                 SHOAL_OK);
    struct traces_attr a6[] = {
        S("gen_ai.request.model", "claude"), S("shoal.route.provider", "anthropic"),
        D("shoal.cost.usd", 0.40),           D("shoal.cost.baseline_usd", 0.40),
        S("shoal.step.kind", "draft"),
    };
    CHECK_EQ_INT(traces_span_start(s, fx->run[1], 0, TRACES_SPAN_LLM, "draft-2", T0 + 500, a6,
                                   SHOAL_ARRAY_LEN(a6), &id, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, fx->run[1], 999999, TRACES_SPAN_STEP, "lost", T0 + 600, NULL,
                                   0, &fx->orphan, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_run_end(s, fx->run[1], NULL, TRACES_STATUS_ERROR, NULL, T0 + 900, NULL),
                 SHOAL_OK);

    struct traces_attr a8[] = {
        S("gen_ai.request.model", "qwen-local"),
        S("shoal.step.kind", "review"),
    };
    CHECK_EQ_INT(traces_span_start(s, fx->run[2], 0, TRACES_SPAN_LLM, "review", T0 + 700, a8,
                                   SHOAL_ARRAY_LEN(a8), &id, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
}

static void test_list(struct traces_reader *r, const struct fixture *fx)
{
    cJSON *j = NULL;
    CHECK_EQ_INT(traces_list_runs(r, NULL, &j, NULL), SHOAL_OK);
    if (!j)
        return;
    CHECK_EQ_INT(num(j, "count"), 3);
    CHECK_EQ_INT(num(j, "limit"), TRACES_QUERY_LIST_DEFAULT);
    /* Newest first. */
    CHECK_EQ_INT(num(at(j, "runs", 0), "id"), fx->run[2]);
    CHECK_EQ_INT(num(at(j, "runs", 2), "id"), fx->run[0]);
    const cJSON *r0 = at(j, "runs", 2);
    CHECK_STR(str(r0, "agent"), "coder");
    CHECK_STR(str(r0, "status"), "ok");
    CHECK_STR(str(r0, "started"), "2023-11-14T22:13:20.000100Z");
    CHECK_STR(str(r0, "ended"), "2023-11-14T22:13:20.005100Z");
    CHECK_NEAR(num(r0, "duration_ms"), 5.0);
    CHECK_EQ_INT(num(r0, "input_tokens"), 100);
    CHECK_EQ_INT(num(r0, "output_tokens"), 200);
    CHECK_NEAR(num(r0, "cost_usd"), 0.20);
    CHECK_NEAR(num(r0, "baseline_cost_usd"), 0.50);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r0, "truncated")));
    const cJSON *r2 = at(j, "runs", 0);
    CHECK_STR(str(r2, "status"), "running");
    CHECK(is_null(r2, "ended") && is_null(r2, "ended_us") && is_null(r2, "duration_ms"));
    cJSON_Delete(j);

    struct traces_run_filter f = {.agent = "coder"};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "count"), 2);
    CHECK_EQ_INT(num(at(j, "runs", 0), "id"), fx->run[2]);
    cJSON_Delete(j);

    f = (struct traces_run_filter){.status = "error"};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "count"), 1);
    CHECK_STR(str(at(j, "runs", 0), "agent"), "writer");
    cJSON_Delete(j);

    f = (struct traces_run_filter){.since_us = T0 + 200};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "count"), 2);
    cJSON_Delete(j);

    f = (struct traces_run_filter){.agent = "coder", .status = "ok", .since_us = T0};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "count"), 1);
    CHECK_EQ_INT(num(at(j, "runs", 0), "id"), fx->run[0]);
    cJSON_Delete(j);

    f = (struct traces_run_filter){.agent = "nobody"};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "count"), 0);
    cJSON_Delete(j);

    f = (struct traces_run_filter){.limit = 2};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "count"), 2);
    CHECK_EQ_INT(num(at(j, "runs", 1), "id"), fx->run[1]);
    cJSON_Delete(j);

    f = (struct traces_run_filter){.limit = 1000000};
    CHECK_EQ_INT(traces_list_runs(r, &f, &j, NULL), SHOAL_OK);
    CHECK_EQ_INT(num(j, "limit"), TRACES_QUERY_LIST_MAX);
    cJSON_Delete(j);
}

static void test_show(struct traces_reader *r, const struct fixture *fx)
{
    cJSON *j = NULL;
    CHECK_EQ_INT(traces_show_run(r, fx->run[0], &j, NULL), SHOAL_OK);
    if (!j)
        return;
    CHECK_EQ_INT(num(cJSON_GetObjectItemCaseSensitive(j, "run"), "id"), fx->run[0]);
    CHECK_EQ_INT(num(j, "span_count"), 4);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "spans")), 1);
    const cJSON *plan = at(j, "spans", 0);
    CHECK_STR(str(plan, "kind"), "step");
    CHECK_STR(str(plan, "name"), "plan");
    CHECK(is_null(plan, "parent_id"));
    CHECK_NEAR(num(plan, "duration_ms"), 4.8);
    const cJSON *kids = cJSON_GetObjectItemCaseSensitive(plan, "children");
    CHECK_EQ_INT(cJSON_GetArraySize(kids), 3);
    const cJSON *c0 = cJSON_GetArrayItem(kids, 0), *c1 = cJSON_GetArrayItem(kids, 1),
                *c2 = cJSON_GetArrayItem(kids, 2);
    CHECK_STR(str(c0, "name"), "call-1");
    CHECK_STR(str(c1, "name"), "grep"); /* by start, not by id */
    CHECK_STR(str(c2, "name"), "call-2");
    CHECK_EQ_INT(num(c0, "parent_id"), fx->plan);
    CHECK_STR(str(c0, "model"), "qwen-local");
    CHECK_EQ_INT(num(c0, "input_tokens"), 100);
    CHECK_EQ_INT(num(c0, "output_tokens"), 50);
    CHECK_NEAR(num(c0, "cost_usd"), 0.0);
    CHECK_STR(str(c0, "route_reason"), "confident");
    CHECK_STR(str(c0, "route_provider"), "local");
    CHECK_STR(str(c0, "status"), "ok");
    CHECK_NEAR(num(c0, "duration_ms"), 1.0);
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c0, "attributes")));
    CHECK_STR(str(cJSON_GetObjectItemCaseSensitive(c0, "attributes"), "shoal.step.kind"), "plan");
    CHECK(cJSON_GetObjectItemCaseSensitive(c1, "model") == NULL);
    CHECK(is_null(c2, "end") && is_null(c2, "duration_ms"));
    CHECK(!is_true(c0, "orphan"));
    cJSON_Delete(j);

    /* The span with a missing parent is kept, at the top, marked. */
    CHECK_EQ_INT(traces_show_run(r, fx->run[1], &j, NULL), SHOAL_OK);
    if (j) {
        CHECK_EQ_INT(num(j, "span_count"), 3);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "spans")), 3);
        const cJSON *lost = at(j, "spans", 2);
        CHECK_STR(str(lost, "name"), "lost");
        CHECK(is_true(lost, "orphan"));
        CHECK_EQ_INT(num(lost, "parent_id"), 999999);
        CHECK_STR(str(cJSON_GetObjectItemCaseSensitive(j, "run"), "status"), "error");
        cJSON_Delete(j);
    }

    struct shoal_diag d;
    shoal_diag_clear(&d);
    j = NULL;
    CHECK_EQ_INT(traces_show_run(r, 424242, &j, &d), SHOAL_ERR_NOT_FOUND);
    CHECK(j == NULL);
    CHECK_CONTAINS(d.msg, "424242");
}

static const cJSON *group(const cJSON *j, const char *key)
{
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(j, "groups"))
    {
        const char *k = str(g, "key");
        if ((key && k && strcmp(k, key) == 0) || (!key && is_null(g, "key")))
            return g;
    }
    return NULL;
}

static void check_stats(const cJSON *g, int steps, int local, int remote, int esc, double cost,
                        double base)
{
    CHECK(g != NULL);
    if (!g)
        return;
    CHECK_EQ_INT(num(g, "steps"), steps);
    CHECK_EQ_INT(num(g, "local"), local);
    CHECK_EQ_INT(num(g, "remote"), remote);
    CHECK_EQ_INT(num(g, "unknown"), steps - local - remote);
    CHECK_EQ_INT(num(g, "escalations"), esc);
    if (steps)
        CHECK_NEAR(num(g, "escalation_rate"), (double)esc / steps);
    else
        CHECK(is_null(g, "escalation_rate"));
    CHECK_NEAR(num(g, "cost_usd"), cost);
    CHECK_NEAR(num(g, "baseline_cost_usd"), base);
    CHECK_NEAR(num(g, "savings_usd"), base - cost);
    if (base != 0)
        CHECK_NEAR(num(g, "savings_pct"), 100.0 * (base - cost) / base);
    else
        CHECK(is_null(g, "savings_pct"));
}

static void test_savings(struct traces_reader *r)
{
    cJSON *j = NULL;
    CHECK_EQ_INT(traces_savings(r, 0, TRACES_GROUP_NONE, &j, NULL), SHOAL_OK);
    if (j) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "total");
        /* Hand-computed: 5 llm steps, 2 local, 2 remote, 1 unknown, 1
         * escalation; cost 0.61 vs baseline 1.40: $0.79 saved, 56.43%. */
        check_stats(t, 5, 2, 2, 1, 0.61, 1.40);
        CHECK_NEAR(num(t, "escalation_rate"), 0.2);
        CHECK_NEAR(num(t, "savings_usd"), 0.79);
        CHECK_NEAR(num(t, "savings_pct"), 56.428571428571428);
        CHECK_EQ_INT(num(t, "invalid_attrs"), 0);
        CHECK_STR(str(j, "by"), "none");
        CHECK(cJSON_GetObjectItemCaseSensitive(j, "groups") == NULL);
        cJSON_Delete(j);
    }
    CHECK_EQ_INT(traces_savings(r, 0, TRACES_GROUP_AGENT, &j, NULL), SHOAL_OK);
    if (j) {
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "groups")), 2);
        check_stats(group(j, "coder"), 3, 1, 1, 1, 0.20, 0.50); /* 60% */
        CHECK_NEAR(num(group(j, "coder"), "savings_pct"), 60.0);
        check_stats(group(j, "writer"), 2, 1, 1, 0, 0.41, 0.90);
        check_stats(cJSON_GetObjectItemCaseSensitive(j, "total"), 5, 2, 2, 1, 0.61, 1.40);
        cJSON_Delete(j);
    }
    CHECK_EQ_INT(traces_savings(r, 0, TRACES_GROUP_MODEL, &j, NULL), SHOAL_OK);
    if (j) {
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "groups")), 3);
        CHECK_STR(str(at(j, "groups", 0), "key"), "claude"); /* ordered by key */
        check_stats(group(j, "claude"), 1, 0, 1, 0, 0.40, 0.40);
        CHECK_NEAR(num(group(j, "claude"), "savings_pct"), 0.0);
        check_stats(group(j, "gpt-4o"), 1, 0, 1, 1, 0.20, 0.20);
        check_stats(group(j, "qwen-local"), 3, 2, 0, 0, 0.01, 0.80); /* 98.75% */
        CHECK_NEAR(num(group(j, "qwen-local"), "savings_pct"), 98.75);
        cJSON_Delete(j);
    }
    CHECK_EQ_INT(traces_savings(r, 0, TRACES_GROUP_STEP, &j, NULL), SHOAL_OK);
    if (j) {
        check_stats(group(j, "plan"), 2, 1, 1, 1, 0.20, 0.50);
        check_stats(group(j, "draft"), 2, 1, 1, 0, 0.41, 0.90);
        check_stats(group(j, "review"), 1, 0, 0, 0, 0.0, 0.0); /* percent null */
        cJSON_Delete(j);
    }
    /* A window that holds nothing: zeros, null rates. */
    CHECK_EQ_INT(traces_savings(r, T0 + 1000000, TRACES_GROUP_AGENT, &j, NULL), SHOAL_OK);
    if (j) {
        check_stats(cJSON_GetObjectItemCaseSensitive(j, "total"), 0, 0, 0, 0, 0, 0);
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "groups")), 0);
        cJSON_Delete(j);
    }
    /* The window starts at the span's start: only call-2 (T0+1400). */
    CHECK_EQ_INT(traces_savings(r, T0 + 1400, TRACES_GROUP_NONE, &j, NULL), SHOAL_OK);
    if (j) {
        check_stats(cJSON_GetObjectItemCaseSensitive(j, "total"), 1, 0, 1, 1, 0.20, 0.20);
        cJSON_Delete(j);
    }
    CHECK_EQ_INT(traces_savings(r, 0, (enum traces_group)42, &j, NULL), SHOAL_ERR_INVALID);
}

static void test_export(struct traces_reader *r, const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/export.jsonl", dir);
    FILE *f = fopen(path, "w+");
    CHECK(f != NULL);
    if (!f)
        return;
    size_t n = 0;
    CHECK_EQ_INT(traces_export_jsonl(r, 0, f, &n, NULL), SHOAL_OK);
    CHECK_EQ_INT(n, 8);
    rewind(f);
    char line[8192];
    size_t lines = 0, parsed = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        cJSON *o = cJSON_Parse(line);
        if (o && num(o, "run_id") > 0 && str(o, "kind") && num(o, "id") > 0 &&
            cJSON_GetObjectItemCaseSensitive(o, "attributes") &&
            !cJSON_GetObjectItemCaseSensitive(o, "children"))
            parsed++;
        if (lines == 1) {
            CHECK_STR(str(o, "name"), "plan"); /* first run, first span */
            CHECK_STR(str(o, "agent"), "coder");
        }
        cJSON_Delete(o);
    }
    CHECK_EQ_INT(lines, 8);
    CHECK_EQ_INT(parsed, 8);
    fclose(f);

    /* Only runs started at or after since. */
    f = fopen(path, "w");
    if (f) {
        CHECK_EQ_INT(traces_export_jsonl(r, T0 + 300, f, &n, NULL), SHOAL_OK);
        CHECK_EQ_INT(n, 1);
        fclose(f);
    }
}

static void test_plans(struct traces_reader *r)
{
    char plan[1024];
    struct traces_run_filter f = {.agent = "coder"};
    CHECK_EQ_INT(traces_list_runs_plan(r, &f, plan, sizeof plan, NULL), SHOAL_OK);
    CHECK_CONTAINS(plan, "INDEX runs_agent");
    CHECK(!strstr(plan, "TEMP B-TREE"));
    f = (struct traces_run_filter){.status = "error"};
    CHECK_EQ_INT(traces_list_runs_plan(r, &f, plan, sizeof plan, NULL), SHOAL_OK);
    CHECK_CONTAINS(plan, "INDEX runs_status");
    CHECK(!strstr(plan, "TEMP B-TREE"));
    f = (struct traces_run_filter){.since_us = T0};
    CHECK_EQ_INT(traces_list_runs_plan(r, &f, plan, sizeof plan, NULL), SHOAL_OK);
    CHECK_CONTAINS(plan, "INDEX runs_started");
    CHECK(!strstr(plan, "TEMP B-TREE"));
    CHECK_EQ_INT(traces_list_runs_plan(r, NULL, plan, sizeof plan, NULL), SHOAL_OK);
    CHECK_CONTAINS(plan, "INDEX runs_started");
    for (int by = TRACES_GROUP_NONE; by <= TRACES_GROUP_MODEL; by++) {
        CHECK_EQ_INT(traces_savings_plan(r, (enum traces_group)by, plan, sizeof plan, NULL),
                     SHOAL_OK);
        CHECK_CONTAINS(plan, "INDEX spans_kind");
    }
}

static void test_fixture(void)
{
    char path[128];
    db_path(path, sizeof path, "q.db");
    struct traces_store *s = open_store(path);
    if (!s)
        return;
    struct fixture fx;
    build_fixture(s, &fx);
    /* Read while the store is still open: the usual shoald situation. */
    struct traces_reader *r = open_reader(path);
    if (r) {
        test_list(r, &fx);
        test_show(r, &fx);
        test_savings(r);
        test_export(r, tmpdir);
        test_plans(r);
    }
    traces_reader_close(r);
    traces_close(s);
    /* And after the writer closed (no -wal / -shm left). */
    r = open_reader(path);
    if (r) {
        cJSON *j = NULL;
        CHECK_EQ_INT(traces_list_runs(r, NULL, &j, NULL), SHOAL_OK);
        CHECK_EQ_INT(num(j, "count"), 3);
        cJSON_Delete(j);
    }
    traces_reader_close(r);
}

static void test_refusals(void)
{
    char path[128];
    struct shoal_diag d;
    struct traces_reader *r = NULL;
    db_path(path, sizeof path, "absent.db");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(traces_reader_open(path, &r, &d), SHOAL_ERR_NOT_FOUND);
    CHECK(r == NULL);

    db_path(path, sizeof path, "newer.db");
    traces_close(open_store(path));
    raw_exec(path, "PRAGMA user_version=99");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(traces_reader_open(path, &r, &d), SHOAL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(d.msg, "99");
    CHECK(r == NULL);

    db_path(path, sizeof path, "older.db");
    raw_exec(path, "CREATE TABLE t(x); PRAGMA user_version=1");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(traces_reader_open(path, &r, &d), SHOAL_ERR_UNSUPPORTED);
    CHECK_CONTAINS(d.msg, "shoald");
    CHECK(r == NULL);

    db_path(path, sizeof path, "empty.db");
    raw_exec(path, "CREATE TABLE t(x)");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(traces_reader_open(path, &r, &d), SHOAL_ERR_NOT_FOUND);
    CHECK_CONTAINS(d.msg, "not a traces database");

    db_path(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("this is not a database, just text long enough to have a header.........", f);
        fclose(f);
    }
    shoal_diag_clear(&d);
    CHECK_EQ_INT(traces_reader_open(path, &r, &d), SHOAL_ERR_IO);
    CHECK(r == NULL);
}

/* Rows the writer would never produce: bad attrs JSON, a huge name, a
 * parent loop, a span with a non-object attrs. */
static void test_hostile(void)
{
    char path[128];
    db_path(path, sizeof path, "hostile.db");
    struct traces_store *s = open_store(path);
    if (!s)
        return;
    int64_t run = 0, a = 0, b = 0, c = 0;
    struct traces_attr at1[] = {S("shoal.route.provider", "local"),
                                D("shoal.cost.baseline_usd", 1)};
    CHECK_EQ_INT(traces_run_start(s, "x", NULL, T0, &run, NULL), SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_LLM, "a", T0 + 1, at1, 2, &a, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, run, a, TRACES_SPAN_LLM, "b", T0 + 2, at1, 2, &b, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_LLM, "c", T0 + 3, at1, 2, &c, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    traces_close(s);
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE spans SET parent_id=%lld WHERE id=%lld;"
             "UPDATE spans SET attrs='{not json', name=printf('%%.200000c', 'n'),"
             " error=printf('%%.100000c', 'e') WHERE id=%lld;"
             "UPDATE spans SET attrs='[1,2]' WHERE id=%lld;",
             (long long)b, (long long)a, (long long)b, (long long)c);
    raw_exec(path, sql);

    struct traces_reader *r = open_reader(path);
    if (!r)
        return;
    cJSON *j = NULL;
    CHECK_EQ_INT(traces_show_run(r, run, &j, NULL), SHOAL_OK);
    if (j) {
        /* a <-> b loop: both kept, one re-rooted. */
        CHECK_EQ_INT(num(j, "span_count"), 3);
        CHECK_EQ_INT(count_tree(cJSON_GetObjectItemCaseSensitive(j, "spans")), 3);
        const cJSON *sp;
        int invalid = 0, orphans = 0;
        cJSON_ArrayForEach(sp, cJSON_GetObjectItemCaseSensitive(j, "spans"))
        {
            orphans += is_true(sp, "orphan");
            const cJSON *kids = cJSON_GetObjectItemCaseSensitive(sp, "children");
            const cJSON *k;
            cJSON_ArrayForEach(k, kids)
            {
                if (is_true(k, "attributes_invalid")) {
                    invalid++;
                    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(k, "attributes")));
                    CHECK_EQ_INT(strlen(str(k, "name")), TRACES_QUERY_STR_MAX);
                    CHECK(is_true(k, "clipped"));
                    /* One flag however many strings were cut: no duplicate keys. */
                    char *txt = cJSON_PrintUnformatted(k);
                    const char *first = txt ? strstr(txt, "\"clipped\"") : NULL;
                    CHECK(first && !strstr(first + 1, "\"clipped\""));
                    free(txt);
                }
            }
            if (is_true(sp, "attributes_invalid"))
                invalid++;
        }
        CHECK_EQ_INT(invalid, 2);
        CHECK_EQ_INT(orphans, 1);
        cJSON_Delete(j);
    }
    /* Bad rows count as steps without attributes, never fail the query. */
    CHECK_EQ_INT(traces_savings(r, 0, TRACES_GROUP_MODEL, &j, NULL), SHOAL_OK);
    if (j) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "total");
        CHECK_EQ_INT(num(t, "steps"), 3);
        CHECK_EQ_INT(num(t, "invalid_attrs"), 1);
        CHECK_EQ_INT(num(t, "local"), 1);
        CHECK_NEAR(num(t, "baseline_cost_usd"), 1.0);
        cJSON_Delete(j);
    }
    FILE *f = tmpfile();
    size_t n = 0;
    CHECK_EQ_INT(traces_export_jsonl(r, 0, f, &n, NULL), SHOAL_OK);
    CHECK_EQ_INT(n, 3);
    if (f)
        fclose(f);
    traces_reader_close(r);
}

static int max_depth(const cJSON *arr)
{
    int m = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        int dd = 1 + max_depth(cJSON_GetObjectItemCaseSensitive(it, "children"));
        if (dd > m)
            m = dd;
    }
    return m;
}

/* A chain deeper than the depth cap, and a run with more spans than the
 * span cap: both bounded, nothing silently lost below the caps. */
static void test_caps(void)
{
    char path[128];
    db_path(path, sizeof path, "caps.db");
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    o.enqueue_wait_ms = 5000; /* a burst bigger than the ring waits, not BUSY */
    struct traces_store *s = NULL;
    CHECK_EQ_INT(traces_open(&o, &s, NULL), SHOAL_OK);
    if (!s)
        return;
    int64_t deep = 0, wide = 0, parent = 0, id = 0;
    CHECK_EQ_INT(traces_run_start(s, "deep", NULL, T0, &deep, NULL), SHOAL_OK);
    for (int i = 0; i < 300; i++) {
        CHECK_EQ_INT(
            traces_span_start(s, deep, parent, TRACES_SPAN_STEP, "d", T0 + i, NULL, 0, &id, NULL),
            SHOAL_OK);
        parent = id;
    }
    CHECK_EQ_INT(traces_run_start(s, "wide", NULL, T0 + 1, &wide, NULL), SHOAL_OK);
    for (unsigned i = 0; i < TRACES_QUERY_SPANS_MAX + 5; i++)
        if (traces_span_start(s, wide, 0, TRACES_SPAN_TOOL, "w", T0 + i, NULL, 0, &id, NULL) !=
            SHOAL_OK)
            CHECK(!"span_start");
    CHECK_EQ_INT(traces_flush(s, 10000), SHOAL_OK);
    traces_close(s);
    struct traces_reader *r = open_reader(path);
    if (!r)
        return;
    cJSON *j = NULL;
    CHECK_EQ_INT(traces_show_run(r, deep, &j, NULL), SHOAL_OK);
    if (j) {
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(j, "spans");
        CHECK_EQ_INT(count_tree(top), 300);
        CHECK(max_depth(top) <= (int)TRACES_QUERY_DEPTH_MAX + 1);
        CHECK(cJSON_GetArraySize(top) >= 2);
        CHECK(is_true(cJSON_GetArrayItem(top, 1), "orphan"));
        cJSON_Delete(j);
    }
    CHECK_EQ_INT(traces_show_run(r, wide, &j, NULL), SHOAL_OK);
    if (j) {
        CHECK_EQ_INT(num(j, "span_count"), TRACES_QUERY_SPANS_MAX);
        CHECK(is_true(j, "spans_truncated"));
        cJSON_Delete(j);
    }
    traces_reader_close(r);
}

struct writer_arg {
    struct traces_store *s;
    atomic_bool stop;
    int runs;
    int errors;
};

static void *writer_thread(void *p)
{
    struct writer_arg *w = p;
    struct traces_attr at1[] = {S("shoal.route.provider", "local"), D("shoal.cost.usd", 0.001)};
    while (!atomic_load(&w->stop) && w->runs < 5000) {
        int64_t run = 0, span = 0;
        if (traces_run_start(w->s, "bg", "x", 0, &run, NULL) != SHOAL_OK ||
            traces_span_start(w->s, run, 0, TRACES_SPAN_LLM, "bg", 0, at1, 2, &span, NULL) !=
                SHOAL_OK ||
            traces_span_end(w->s, span, TRACES_STATUS_OK, NULL, 0, NULL, 0, NULL) != SHOAL_OK ||
            traces_run_end(w->s, run, "y", TRACES_STATUS_OK, NULL, 0, NULL) != SHOAL_OK)
            w->errors++;
        w->runs++;
    }
    return NULL;
}

static void test_concurrent(void)
{
    char path[128];
    db_path(path, sizeof path, "busy.db");
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    o.batch_max = 16; /* many small commits: the reader races them all */
    o.enqueue_wait_ms = 1000;
    struct traces_store *s = NULL;
    CHECK_EQ_INT(traces_open(&o, &s, NULL), SHOAL_OK);
    if (!s)
        return;
    struct traces_reader *r = open_reader(path);
    struct writer_arg w = {.s = s};
    atomic_init(&w.stop, false);
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, writer_thread, &w), 0);
    int fails = 0, seen = 0;
    for (int i = 0; r && i < 200; i++) {
        struct shoal_diag d;
        shoal_diag_clear(&d);
        cJSON *j = NULL;
        struct traces_run_filter f = {.agent = "bg", .limit = 20};
        if (traces_list_runs(r, &f, &j, &d) != SHOAL_OK) {
            fprintf(stderr, "list during writes: %s\n", d.msg);
            fails++;
        } else {
            seen = (int)num(j, "count");
            cJSON_Delete(j);
        }
        j = NULL;
        if (traces_savings(r, 0, TRACES_GROUP_AGENT, &j, &d) != SHOAL_OK) {
            fprintf(stderr, "savings during writes: %s\n", d.msg);
            fails++;
        }
        cJSON_Delete(j);
    }
    atomic_store(&w.stop, true);
    pthread_join(th, NULL);
    CHECK_EQ_INT(fails, 0);
    CHECK_EQ_INT(w.errors, 0);
    CHECK(w.runs > 0);
    CHECK(seen > 0);
    traces_reader_close(r);
    traces_close(s);
}

int main(void)
{
    shoal_strlcpy(tmpdir, "/tmp/shoal-tq-XXXXXX", sizeof tmpdir);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_fixture();
    test_refusals();
    test_hostile();
    test_caps();
    test_concurrent();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_report("test_traces_query");
}
