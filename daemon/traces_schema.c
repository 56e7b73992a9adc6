/* traces_schema.c: the trace store's schema and its migrations, versioned by
 * PRAGMA user_version. Every database, new or old, walks the same steps, so
 * the path an old file takes is the path every test database takes.
 * Invariant: a step is never edited once released; changes are new steps. */
#include "traces.h"

#include <sqlite3.h>
#include <stdio.h>

/* Step N brings user_version N-1 to N. Column names follow the issue; the
 * JSON attrs use OpenTelemetry GenAI keys and shoal.* for ours. */
static const char *const steps[TRACES_SCHEMA_VERSION] = {
    /* 1: runs and spans. Times are wall-clock microseconds since the epoch. */
    "CREATE TABLE runs ("
    " id INTEGER PRIMARY KEY,"
    " agent TEXT,"
    " input TEXT,"
    " output TEXT,"
    " status TEXT NOT NULL,"
    " started_us INTEGER NOT NULL,"
    " ended_us INTEGER,"
    " input_tokens INTEGER NOT NULL DEFAULT 0,"
    " output_tokens INTEGER NOT NULL DEFAULT 0,"
    " cost_usd REAL NOT NULL DEFAULT 0,"
    " baseline_cost_usd REAL NOT NULL DEFAULT 0);"
    "CREATE INDEX runs_started ON runs(started_us);"
    "CREATE TABLE spans ("
    " id INTEGER PRIMARY KEY,"
    " run_id INTEGER NOT NULL,"
    " parent_id INTEGER,"
    " kind TEXT NOT NULL,"
    " name TEXT,"
    " start_us INTEGER NOT NULL,"
    " end_us INTEGER,"
    " status TEXT NOT NULL DEFAULT 'unset',"
    " error TEXT,"
    " attrs TEXT NOT NULL DEFAULT '{}');"
    "CREATE INDEX spans_run ON spans(run_id, start_us);",
    /* 2: truncation/redaction marks (bit 1 input, bit 2 output for runs; any
     * attribute for spans) and the indexes the list and savings queries use. */
    "ALTER TABLE runs ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE runs ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE spans ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE spans ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX runs_agent ON runs(agent, started_us);"
    "CREATE INDEX runs_status ON runs(status, started_us);"
    "CREATE INDEX spans_kind ON spans(kind, start_us);",
};

static enum shoal_err exec(sqlite3 *db, const char *sql, struct shoal_diag *d)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        shoal_diag_set(d, SHOAL_ERR_IO, "traces schema: %s", err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return SHOAL_ERR_IO;
    }
    return SHOAL_OK;
}

static enum shoal_err user_version(sqlite3 *db, int *out, struct shoal_diag *d)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        shoal_diag_set(d, SHOAL_ERR_IO, "traces schema: %s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return SHOAL_ERR_IO;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return SHOAL_OK;
}

enum shoal_err traces_schema_migrate(sqlite3 *db, struct shoal_diag *d)
{
    int v;
    enum shoal_err e = user_version(db, &v, d);
    if (e != SHOAL_OK)
        return e;
    if (v > TRACES_SCHEMA_VERSION)
        return shoal_diag_set(d, SHOAL_ERR_UNSUPPORTED,
                              "traces database has schema version %d; this build knows up to %d", v,
                              TRACES_SCHEMA_VERSION);
    if (v < 0)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "traces database has schema version %d", v);
    /* Incremental auto-vacuum lets retention give pages back to the file
     * system; it only takes effect before the first table exists. */
    if (v == 0 && (e = exec(db, "PRAGMA auto_vacuum=INCREMENTAL", d)) != SHOAL_OK)
        return e;
    for (; v < TRACES_SCHEMA_VERSION; v++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version=%d;", v + 1);
        if ((e = exec(db, "BEGIN IMMEDIATE", d)) != SHOAL_OK)
            return e;
        if ((e = exec(db, steps[v], d)) != SHOAL_OK || (e = exec(db, bump, d)) != SHOAL_OK ||
            (e = exec(db, "COMMIT", d)) != SHOAL_OK) {
            char why[256];
            shoal_strlcpy(why, d ? d->msg : "", sizeof why);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            shoal_diag_set(d, e, "migration to version %d failed: %s", v + 1, why);
            return e;
        }
    }
    return SHOAL_OK;
}
