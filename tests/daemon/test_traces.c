/* test_traces.c: the trace store (daemon/traces.c) read back with plain SQL:
 * attribute and field round trips, truncation and redaction, queue
 * backpressure, migration from schema 1, retention, and a kill -9 crash
 * loop proving every acknowledged span survives. */
#include "test.h"
#include "traces.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static void db_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw_open %s: %s\n", path, sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = INT64_MIN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "q_int: %s: %s\n", sql, sqlite3_errmsg(db));
        return v;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static double q_dbl(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    double v = NAN;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return v;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Text result copied into out; "(null)" for NULL, "(error)" on failure. */
static const char *q_txt(sqlite3 *db, const char *sql, char *out, size_t n)
{
    sqlite3_stmt *st;
    shoal_strlcpy(out, "(error)", n);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "q_txt: %s: %s\n", sql, sqlite3_errmsg(db));
        return out;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        shoal_strlcpy(out, t ? (const char *)t : "(null)", n);
    }
    sqlite3_finalize(st);
    return out;
}

static struct traces_store *open_store(const char *path, struct traces_options *o)
{
    struct traces_options def;
    if (!o) {
        traces_options_default(&def);
        o = &def;
    }
    o->path = path;
    struct traces_store *s = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err e = traces_open(o, &s, &d);
    if (e != SHOAL_OK)
        fprintf(stderr, "traces_open: %s: %s\n", shoal_err_name(e), d.msg);
    CHECK_EQ_INT(e, SHOAL_OK);
    return s;
}

static void test_round_trip(void)
{
    char path[128], buf[512], sql[256];
    db_path(path, sizeof path, "rt.db");
    struct traces_store *s = open_store(path, NULL);
    if (!s)
        return;
    int64_t run = 0, span = 0, child = 0;
    uint64_t seq = 0;
    CHECK_EQ_INT(traces_run_start(s, "coder", "fix the bug", 1000, &run, &seq), SHOAL_OK);
    CHECK_EQ_INT(seq, 1);
    struct traces_attr a[] = {
        {.key = "gen_ai.request.model", .type = TRACES_ATTR_STRING, .v.s = "qwen2.5-0.5b"},
        {.key = "gen_ai.usage.input_tokens", .type = TRACES_ATTR_INT, .v.i = INT64_MAX},
        {.key = "shoal.neg", .type = TRACES_ATTR_INT, .v.i = INT64_MIN},
        {.key = "shoal.cost.usd", .type = TRACES_ATTR_DOUBLE, .v.d = 0.1},
        {.key = "shoal.big", .type = TRACES_ATTR_DOUBLE, .v.d = -1.5e300},
        {.key = "shoal.whole", .type = TRACES_ATTR_DOUBLE, .v.d = 3.0},
        {.key = "shoal.flag", .type = TRACES_ATTR_BOOL, .v.b = true},
        {.key = "shoal.off", .type = TRACES_ATTR_BOOL, .v.b = false},
        {.key = "shoal.text", .type = TRACES_ATTR_STRING, .v.s = "q\"b\\n\n\t\x01 \xc3\xa9"},
    };
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_LLM, "call", 2000, a, SHOAL_ARRAY_LEN(a),
                                   &span, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(
        traces_span_start(s, run, span, TRACES_SPAN_TOOL, "grep", 2100, NULL, 0, &child, NULL),
        SHOAL_OK);
    struct traces_attr more[] = {
        {.key = "shoal.flag", .type = TRACES_ATTR_BOOL, .v.b = false},
        {.key = "shoal.route.reason", .type = TRACES_ATTR_STRING, .v.s = "confident"},
    };
    CHECK_EQ_INT(traces_span_set_attrs(s, span, more, 2, NULL), SHOAL_OK);
    struct traces_attr fin[] = {
        {.key = "gen_ai.usage.output_tokens", .type = TRACES_ATTR_INT, .v.i = 42},
    };
    CHECK_EQ_INT(traces_span_end(s, span, TRACES_STATUS_ERROR, "boom", 3000, fin, 1, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_end(s, child, TRACES_STATUS_OK, NULL, 2500, NULL, 0, NULL), SHOAL_OK);
    struct traces_run_totals tot = {10, 20, 0.25, 1.75};
    CHECK_EQ_INT(traces_run_end(s, run, "done", TRACES_STATUS_OK, &tot, 4000, &seq), SHOAL_OK);
    CHECK_EQ_INT(seq, 7);
    /* Invalid input is refused on the caller, before the queue. */
    struct traces_attr bad = {.key = "x", .type = TRACES_ATTR_DOUBLE, .v.d = NAN};
    CHECK_EQ_INT(traces_span_set_attrs(s, span, &bad, 1, NULL), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    CHECK(traces_committed_seq(s) >= 7);
    struct traces_stats st;
    traces_stats_get(s, &st);
    CHECK_EQ_INT(st.enqueued, 7);
    CHECK_EQ_INT(st.committed, 7);
    CHECK_EQ_INT(st.write_errors, 0);
    CHECK_EQ_INT(st.rejected_full, 0);
    traces_close(s);

    sqlite3 *db = raw_open(path);
    CHECK_STR(q_txt(db, "PRAGMA journal_mode", buf, sizeof buf), "wal");
    CHECK_EQ_INT(q_int(db, "PRAGMA user_version"), TRACES_SCHEMA_VERSION);
    snprintf(sql, sizeof sql,
             "SELECT agent||'|'||input||'|'||output||'|'||status||'|'||started_us||'|'||ended_us"
             "||'|'||input_tokens||'|'||output_tokens FROM runs WHERE id=%lld",
             (long long)run);
    CHECK_STR(q_txt(db, sql, buf, sizeof buf), "coder|fix the bug|done|ok|1000|4000|10|20");
    CHECK(q_dbl(db, "SELECT cost_usd FROM runs") == 0.25);
    CHECK(q_dbl(db, "SELECT baseline_cost_usd FROM runs") == 1.75);
    snprintf(sql, sizeof sql,
             "SELECT run_id||'|'||coalesce(parent_id,'-')||'|'||kind||'|'||name||'|'||start_us"
             "||'|'||end_us||'|'||status||'|'||error FROM spans WHERE id=%lld",
             (long long)span);
    char want[128];
    snprintf(want, sizeof want, "%lld|-|llm|call|2000|3000|error|boom", (long long)run);
    CHECK_STR(q_txt(db, sql, buf, sizeof buf), want);
    snprintf(sql, sizeof sql,
             "SELECT parent_id||'|'||kind||'|'||status||'|'||coalesce(error,'-')"
             " FROM spans WHERE id=%lld",
             (long long)child);
    snprintf(want, sizeof want, "%lld|tool|ok|-", (long long)span);
    CHECK_STR(q_txt(db, sql, buf, sizeof buf), want);
    /* Every attribute type, with its JSON type, read back exactly. */
#define ATTR(k)  "SELECT json_extract(attrs, '$.\"" k "\"') FROM spans WHERE kind='llm'"
#define ATYPE(k) "SELECT json_type(attrs, '$.\"" k "\"') FROM spans WHERE kind='llm'"
    CHECK_STR(q_txt(db, ATTR("gen_ai.request.model"), buf, sizeof buf), "qwen2.5-0.5b");
    CHECK_EQ_INT(q_int(db, ATTR("gen_ai.usage.input_tokens")), INT64_MAX);
    CHECK_EQ_INT(q_int(db, ATTR("shoal.neg")), INT64_MIN);
    CHECK_STR(q_txt(db, ATYPE("shoal.neg"), buf, sizeof buf), "integer");
    CHECK(q_dbl(db, ATTR("shoal.cost.usd")) == 0.1);
    CHECK(q_dbl(db, ATTR("shoal.big")) == -1.5e300);
    CHECK(q_dbl(db, ATTR("shoal.whole")) == 3.0);
    CHECK_STR(q_txt(db, ATYPE("shoal.whole"), buf, sizeof buf), "real");
    CHECK_STR(q_txt(db, ATYPE("shoal.flag"), buf, sizeof buf), "false"); /* set_attrs won */
    CHECK_STR(q_txt(db, ATYPE("shoal.off"), buf, sizeof buf), "false");
    CHECK_STR(q_txt(db, ATTR("shoal.text"), buf, sizeof buf), "q\"b\\n\n\t\x01 \xc3\xa9");
    CHECK_STR(q_txt(db, ATTR("shoal.route.reason"), buf, sizeof buf), "confident");
    CHECK_EQ_INT(q_int(db, ATTR("gen_ai.usage.output_tokens")), 42);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM spans WHERE json_valid(attrs)"), 2);
    sqlite3_close(db);

    /* Reopening continues the ids rather than reusing them. */
    s = open_store(path, NULL);
    if (s) {
        int64_t run2 = 0;
        CHECK_EQ_INT(traces_run_start(s, NULL, NULL, 0, &run2, NULL), SHOAL_OK);
        CHECK(run2 > run);
        traces_close(s); /* close drains without a flush */
        db = raw_open(path);
        CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM runs WHERE status='running'"), 1);
        sqlite3_close(db);
    }
}

static void test_truncate_redact(void)
{
    char path[128], buf[512];
    struct traces_options o;
    traces_options_default(&o);
    o.payload_cap = 9;
    db_path(path, sizeof path, "trunc.db");
    struct traces_store *s = open_store(path, &o);
    if (!s)
        return;
    int64_t run = 0, span = 0;
    /* "é" is two bytes: a cut at 9 must back off to 8, not split one. */
    CHECK_EQ_INT(
        traces_run_start(s, "a", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 0, &run, NULL),
        SHOAL_OK);
    struct traces_attr a[] = {
        {.key = "gen_ai.prompt",
         .type = TRACES_ATTR_STRING,
         .content = true,
         .v.s = "0123456789abcdef"},
    };
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_LLM, "x", 0, a, 1, &span, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_run_end(s, run, "short", TRACES_STATUS_OK, NULL, 0, NULL), SHOAL_OK);
    traces_close(s);
    sqlite3 *db = raw_open(path);
    CHECK_STR(q_txt(db, "SELECT input FROM runs", buf, sizeof buf),
              "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    CHECK_EQ_INT(q_int(db, "SELECT truncated FROM runs"), 1); /* input cut, output not */
    CHECK_EQ_INT(q_int(db, "SELECT redacted FROM runs"), 0);
    CHECK_STR(
        q_txt(db, "SELECT json_extract(attrs,'$.\"gen_ai.prompt\"') FROM spans", buf, sizeof buf),
        "012345678");
    CHECK_EQ_INT(q_int(db, "SELECT truncated FROM spans"), 1);
    sqlite3_close(db);

    traces_options_default(&o);
    o.redact = TRACES_REDACT_CONTENT;
    db_path(path, sizeof path, "redact.db");
    s = open_store(path, &o);
    if (!s)
        return;
    struct traces_attr b[] = {
        {.key = "gen_ai.prompt", .type = TRACES_ATTR_STRING, .content = true, .v.s = "secret"},
        {.key = "gen_ai.request.model", .type = TRACES_ATTR_STRING, .v.s = "m"},
    };
    CHECK_EQ_INT(traces_run_start(s, "a", "my private question", 0, &run, NULL), SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_LLM, "x", 0, b, 2, &span, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_run_end(s, run, "private answer", TRACES_STATUS_OK, NULL, 0, NULL),
                 SHOAL_OK);
    traces_close(s);
    db = raw_open(path);
    CHECK_STR(q_txt(db, "SELECT coalesce(input,'-')||coalesce(output,'-')||agent FROM runs", buf,
                    sizeof buf),
              "--a");
    CHECK_EQ_INT(q_int(db, "SELECT redacted FROM runs"), 1);
    CHECK_STR(q_txt(db, "SELECT attrs FROM spans", buf, sizeof buf),
              "{\"gen_ai.request.model\":\"m\"}");
    CHECK_EQ_INT(q_int(db, "SELECT redacted FROM spans"), 1);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM spans WHERE instr(attrs,'secret')"), 0);
    sqlite3_close(db);
}

static void test_backpressure(void)
{
    char path[128];
    struct traces_options o;
    traces_options_default(&o);
    o.queue_cap = 4;
    o.enqueue_wait_ms = 30;
    db_path(path, sizeof path, "bp.db");
    struct traces_store *s = open_store(path, &o);
    if (!s)
        return;
    traces_test_pause(s, true);
    int64_t run = 0, span = 0;
    CHECK_EQ_INT(traces_run_start(s, "a", NULL, 0, &run, NULL), SHOAL_OK);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, "s", 0, NULL, 0, &span, NULL),
                     SHOAL_OK);
    uint64_t t0 = shoal_now_ms();
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, "s", 0, NULL, 0, &span, NULL),
                 SHOAL_ERR_BUSY);
    uint64_t waited = shoal_now_ms() - t0;
    CHECK(waited >= 25 && waited < 2000);
    CHECK_EQ_INT(traces_run_end(s, run, NULL, TRACES_STATUS_OK, NULL, 0, NULL), SHOAL_ERR_BUSY);
    CHECK_EQ_INT(traces_flush(s, 50), SHOAL_ERR_TIMEOUT);
    struct traces_stats st;
    traces_stats_get(s, &st);
    CHECK_EQ_INT(st.enqueued, 4);
    CHECK_EQ_INT(st.committed, 0);
    CHECK_EQ_INT(st.rejected_full, 2);
    CHECK_EQ_INT(st.queue_depth, 4);
    CHECK_EQ_INT(st.queue_peak, 4);
    traces_test_pause(s, false);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    CHECK_EQ_INT(traces_run_end(s, run, NULL, TRACES_STATUS_OK, NULL, 0, NULL), SHOAL_OK);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    traces_stats_get(s, &st);
    CHECK_EQ_INT(st.enqueued, 5);
    CHECK_EQ_INT(st.committed, 5);
    CHECK_EQ_INT(st.queue_depth, 0);
    /* Accepted + rejected accounts for every call. */
    CHECK_EQ_INT(st.enqueued + st.rejected_full, 7);
    traces_close(s);
    sqlite3 *db = raw_open(path);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM spans"), 3);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM runs WHERE status='ok'"), 1);
    sqlite3_close(db);
}

/* A record SQLite refuses (here: a span id another writer took) is counted
 * and logged, the rest of its batch commits, and the ack moves past it. */
static void test_write_error(void)
{
    char path[128];
    db_path(path, sizeof path, "werr.db");
    struct traces_store *s = open_store(path, NULL);
    if (!s)
        return;
    int64_t run = 0, a = 0, b = 0, c = 0;
    CHECK_EQ_INT(traces_run_start(s, "a", NULL, 0, &run, NULL), SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, "a", 0, NULL, 0, &a, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    sqlite3 *db = raw_open(path);
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO spans(id, run_id, kind, start_us) VALUES(%lld, 1, 'step', 0)",
             (long long)a + 1);
    CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    traces_test_pause(s, true); /* both records in one batch */
    uint64_t seq_c = 0;
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, "b", 0, NULL, 0, &b, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, "c", 0, NULL, 0, &c, &seq_c),
                 SHOAL_OK);
    CHECK_EQ_INT(b, a + 1);
    traces_test_pause(s, false);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    CHECK(traces_committed_seq(s) >= seq_c);
    struct traces_stats st;
    traces_stats_get(s, &st);
    CHECK_EQ_INT(st.write_errors, 1);
    CHECK_EQ_INT(st.committed, 3);
    CHECK_EQ_INT(st.enqueued, 4);
    traces_close(s);
    db = raw_open(path);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM spans WHERE id=%lld AND name='c'",
             (long long)c);
    CHECK_EQ_INT(q_int(db, sql), 1);
    sqlite3_close(db);
}

static void test_migration(void)
{
    char path[128], buf[256];
    db_path(path, sizeof path, "v1.db");
    sqlite3 *db = raw_open(path);
    /* Schema version 1 as it was released, by hand. */
    CHECK_EQ_INT(
        sqlite3_exec(db,
                     "CREATE TABLE runs (id INTEGER PRIMARY KEY, agent TEXT, input TEXT,"
                     " output TEXT, status TEXT NOT NULL, started_us INTEGER NOT NULL,"
                     " ended_us INTEGER, input_tokens INTEGER NOT NULL DEFAULT 0,"
                     " output_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0,"
                     " baseline_cost_usd REAL NOT NULL DEFAULT 0);"
                     "CREATE INDEX runs_started ON runs(started_us);"
                     "CREATE TABLE spans (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL,"
                     " parent_id INTEGER, kind TEXT NOT NULL, name TEXT,"
                     " start_us INTEGER NOT NULL, end_us INTEGER,"
                     " status TEXT NOT NULL DEFAULT 'unset', error TEXT,"
                     " attrs TEXT NOT NULL DEFAULT '{}');"
                     "CREATE INDEX spans_run ON spans(run_id, start_us);"
                     "INSERT INTO runs(id, agent, status, started_us) VALUES(7, 'old', 'ok', 5);"
                     "INSERT INTO spans(id, run_id, kind, name, start_us, attrs)"
                     " VALUES(70, 7, 'llm', 'old span', 6, '{\"gen_ai.request.model\":\"m\"}');"
                     "PRAGMA user_version=1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct traces_store *s = open_store(path, NULL);
    if (!s)
        return;
    int64_t run = 0, span = 0;
    CHECK_EQ_INT(traces_run_start(s, "new", NULL, 0, &run, NULL), SHOAL_OK);
    CHECK_EQ_INT(run, 8);
    CHECK_EQ_INT(traces_span_start(s, run, 0, TRACES_SPAN_STEP, "n", 0, NULL, 0, &span, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(span, 71);
    struct traces_attr a = {.key = "shoal.step.kind", .type = TRACES_ATTR_STRING, .v.s = "plan"};
    CHECK_EQ_INT(traces_span_set_attrs(s, 70, &a, 1, NULL), SHOAL_OK);
    traces_close(s);
    db = raw_open(path);
    CHECK_EQ_INT(q_int(db, "PRAGMA user_version"), 2);
    CHECK_STR(q_txt(db,
                    "SELECT agent||name||runs.truncated||spans.redacted FROM runs JOIN spans"
                    " ON spans.run_id=runs.id WHERE runs.id=7",
                    buf, sizeof buf),
              "oldold span00");
    CHECK_STR(q_txt(db, "SELECT attrs FROM spans WHERE id=70", buf, sizeof buf),
              "{\"gen_ai.request.model\":\"m\",\"shoal.step.kind\":\"plan\"}");
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name IN"
                           " ('runs_agent','runs_status','spans_kind')"),
                 3);
    CHECK_STR(q_txt(db, "PRAGMA integrity_check", buf, sizeof buf), "ok");
    /* A database from the future is refused, not damaged. */
    CHECK_EQ_INT(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    s = NULL;
    CHECK_EQ_INT(traces_open(&o, &s, &d), SHOAL_ERR_UNSUPPORTED);
    CHECK(s == NULL);
    CHECK_CONTAINS(d.msg, "99");
}

static void test_retention(void)
{
    char path[128];
    db_path(path, sizeof path, "ret.db");
    struct traces_store *s = open_store(path, NULL);
    if (!s)
        return;
    const int64_t day_ms = 86400000;
    int64_t now_ms = traces_now_us() / 1000;
    int64_t runs[3], span;
    for (int i = 0; i < 3; i++) {
        int64_t t = (now_ms - (10 - 5 * i) * day_ms) * 1000; /* 10, 5, 0 days ago */
        CHECK_EQ_INT(traces_run_start(s, "a", NULL, t, &runs[i], NULL), SHOAL_OK);
        for (int k = 0; k < 3; k++)
            CHECK_EQ_INT(
                traces_span_start(s, runs[i], 0, TRACES_SPAN_STEP, "s", t, NULL, 0, &span, NULL),
                SHOAL_OK);
    }
    uint32_t del = 99;
    CHECK_EQ_INT(traces_prune(s, now_ms, 7 * day_ms, 0, 10, &del), SHOAL_OK);
    CHECK_EQ_INT(del, 1);
    CHECK_EQ_INT(traces_prune(s, now_ms, 7 * day_ms, 0, 10, &del), SHOAL_OK);
    CHECK_EQ_INT(del, 0);
    /* By size: a tiny budget deletes oldest first, batch by batch. */
    CHECK_EQ_INT(traces_prune(s, now_ms, 0, 1, 1, &del), SHOAL_OK);
    CHECK_EQ_INT(del, 1);
    struct traces_stats st;
    traces_stats_get(s, &st);
    CHECK_EQ_INT(st.pruned_runs, 2);
    CHECK_EQ_INT(st.pruned_spans, 6);
    traces_close(s);
    sqlite3 *db = raw_open(path);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE id=%lld", (long long)runs[2]);
    CHECK_EQ_INT(q_int(db, sql), 1);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM runs"), 1);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM spans"), 3);
    sqlite3_close(db);

    /* The periodic trigger on the writer does the same on its own. */
    struct traces_options o;
    traces_options_default(&o);
    o.max_age_ms = 7 * (uint64_t)day_ms;
    o.prune_interval_ms = 20;
    s = open_store(path, &o);
    if (!s)
        return;
    int64_t old = 0;
    CHECK_EQ_INT(traces_run_start(s, "a", NULL, (now_ms - 30 * day_ms) * 1000, &old, NULL),
                 SHOAL_OK);
    CHECK_EQ_INT(traces_flush(s, 5000), SHOAL_OK);
    for (int i = 0; i < 200; i++) {
        traces_stats_get(s, &st);
        if (st.pruned_runs == 1)
            break;
        usleep(10000);
    }
    CHECK_EQ_INT(st.pruned_runs, 1);
    traces_close(s);
    db = raw_open(path);
    CHECK_EQ_INT(q_int(db, "SELECT count(*) FROM runs"), 1);
    sqlite3_close(db);
}

/* Child of the crash test: write runs of 8 spans forever; after each run is
 * flushed, report its span id range on fd. Never returns. */
static void crash_child(const char *path, int fd)
{
    struct traces_options o;
    traces_options_default(&o);
    o.path = path;
    o.batch_max = 64;
    struct traces_store *s = NULL;
    if (traces_open(&o, &s, NULL) != SHOAL_OK)
        _exit(3);
    struct traces_attr a[] = {
        {.key = "gen_ai.request.model", .type = TRACES_ATTR_STRING, .v.s = "small"},
        {.key = "gen_ai.usage.input_tokens", .type = TRACES_ATTR_INT, .v.i = 12},
    };
    for (;;) {
        int64_t run = 0, ids[2] = {0, 0};
        if (traces_run_start(s, "crash", "in", 0, &run, NULL) != SHOAL_OK)
            continue;
        for (int i = 0; i < 8; i++) {
            int64_t sp = 0;
            while (traces_span_start(s, run, 0, TRACES_SPAN_LLM, "c", 0, a, 2, &sp, NULL) !=
                   SHOAL_OK)
                ;
            while (traces_span_end(s, sp, TRACES_STATUS_OK, NULL, 0, a + 1, 1, NULL) != SHOAL_OK)
                ;
            if (i == 0)
                ids[0] = sp;
            ids[1] = sp;
        }
        if (traces_flush(s, 10000) != SHOAL_OK)
            _exit(4);
        /* 16 bytes < PIPE_BUF: the write is atomic. */
        if (write(fd, ids, sizeof ids) != (ssize_t)sizeof ids)
            _exit(5);
    }
}

static void test_crash(void)
{
    char path[128], buf[64];
    db_path(path, sizeof path, "crash.db");
    srand(42);
    int64_t acked_total = 0;
    for (int iter = 0; iter < 20; iter++) {
        int pfd[2];
        if (pipe(pfd) != 0) {
            CHECK(0);
            return;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            crash_child(path, pfd[1]);
        }
        close(pfd[1]);
        CHECK(pid > 0);
        if (pid < 0)
            return;
        struct timespec ts = {0, (long)(20 + rand() % 280) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        sqlite3 *db = raw_open(path);
        CHECK_STR(q_txt(db, "PRAGMA integrity_check", buf, sizeof buf), "ok");
        int64_t ids[2];
        ssize_t r;
        int ranges = 0;
        while ((r = read(pfd[0], ids, sizeof ids)) == (ssize_t)sizeof ids) {
            char sql[160];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM spans WHERE id BETWEEN %lld AND %lld"
                     " AND end_us IS NOT NULL AND status='ok'",
                     (long long)ids[0], (long long)ids[1]);
            CHECK_EQ_INT(q_int(db, sql), ids[1] - ids[0] + 1);
            acked_total += ids[1] - ids[0] + 1;
            ranges++;
        }
        close(pfd[0]);
        sqlite3_close(db);
        (void)ranges;
    }
    fprintf(stderr, "crash test: %lld acknowledged spans checked over 20 kills\n",
            (long long)acked_total);
    CHECK(acked_total > 0);
    /* The store opens the crashed file cleanly too. */
    struct traces_store *s = open_store(path, NULL);
    traces_close(s);
}

int main(void)
{
    shoal_strlcpy(tmpdir, "/tmp/shoal-traces-XXXXXX", sizeof tmpdir);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_truncate_redact();
    test_backpressure();
    test_write_error();
    test_migration();
    test_retention();
    test_crash();
    int rc = test_report("test_traces");
    if (rc == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return rc;
}
