/* traces.h: the trace store of shoald (daemon internal): runs and spans in
 * SQLite (WAL), written by one writer thread that owns the write connection.
 * Callers copy small records into a bounded ring and never run SQL; the
 * invariant is that a record is either committed, or its caller got an error:
 * nothing is dropped silently, and every outcome is counted. */
#ifndef SHOAL_DAEMON_TRACES_H
#define SHOAL_DAEMON_TRACES_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct traces_store;

/* The schema version this build writes (PRAGMA user_version). Older
 * databases are migrated at open; newer ones are refused (UNSUPPORTED). */
#define TRACES_SCHEMA_VERSION 2

/* What happens to message contents (run input/output, content attributes). */
enum traces_redact {
    TRACES_REDACT_NONE = 0, /* store up to payload_cap bytes, mark the rest truncated */
    TRACES_REDACT_CONTENT,  /* drop contents entirely; the row says redacted */
};

/* PRAGMA synchronous for the write connection. NORMAL (the default) makes
 * every commit survive a process crash (kill -9); FULL also survives power
 * loss at the price of one fsync per batch. See traces.c for figures. */
enum traces_sync {
    TRACES_SYNC_NORMAL = 0,
    TRACES_SYNC_FULL,
};

struct traces_options {
    const char *path;         /* database file; borrowed for traces_open only */
    uint32_t queue_cap;       /* ring capacity in records (>= 2) */
    uint32_t enqueue_wait_ms; /* how long a caller waits on a full ring before BUSY */
    uint32_t batch_max;       /* records per transaction */
    uint32_t payload_cap;     /* bytes kept of any stored string; longer ones are cut */
    enum traces_redact redact;
    enum traces_sync sync;
    uint32_t busy_timeout_ms; /* SQLite busy_timeout so readers never break the writer */
    /* Retention; 0 disables each limit. Checked every prune_interval_ms by the
     * writer, deleting at most prune_batch of the oldest runs per check. */
    uint64_t max_age_ms;
    uint64_t max_bytes;
    uint32_t prune_batch;
    uint32_t prune_interval_ms;
};

/* Defaults from the SHOAL_CAP_TRACE_* caps; path stays NULL. */
void traces_options_default(struct traces_options *o);

/* Open (create, migrate) the database and start the writer thread. INVALID
 * for bad options, IO for SQLite errors (message in d), UNSUPPORTED for a
 * schema newer than this build. Thread: any (the loop, once, at start). */
enum shoal_err traces_open(const struct traces_options *o, struct traces_store **out,
                           struct shoal_diag *d) SHOAL_NODISCARD;

/* Drain the ring (every accepted record is committed or counted as a
 * write error), stop the writer, close the database. NULL is a no-op.
 * Thread: the one that opened it; no other call may be in flight. */
void traces_close(struct traces_store *s);

/* ---- records (all: thread any; cheap, no SQL, at most enqueue_wait_ms of
 * waiting when the ring is full). Each returns OK and, when seq is not NULL,
 * the record's sequence number, which is acknowledged once
 * traces_committed_seq() >= seq. Errors: BUSY (ring full after the wait;
 * counted in rejected_full, nothing stored), INVALID (bad argument, e.g. a
 * non-finite double or too many attributes), NOMEM. Strings are borrowed for
 * the call and may be NULL where the column is nullable. ---- */

enum traces_attr_type {
    TRACES_ATTR_STRING = 0,
    TRACES_ATTR_INT,
    TRACES_ATTR_DOUBLE,
    TRACES_ATTR_BOOL,
};

/* One typed attribute. Keys use OpenTelemetry GenAI names where they exist
 * ("gen_ai.request.model", "gen_ai.usage.input_tokens") and "shoal.*"
 * otherwise. content marks a string as message content (a prompt, a
 * completion): it is subject to redaction. All strings are capped. */
#define TRACES_ATTR_KEY_MAX 256 /* longer keys are INVALID */
struct traces_attr {
    const char *key;
    enum traces_attr_type type;
    bool content;
    union {
        const char *s;
        int64_t i;
        double d; /* must be finite */
        bool b;
    } v;
};

/* Attribute keys: OpenTelemetry GenAI semantic conventions where a name
 * exists, shoal.* otherwise. Producers use these names, never literals, so
 * the read side (savings, show) and exporters agree with them. */
#define TRACES_KEY_OPERATION       "gen_ai.operation.name"
#define TRACES_KEY_SYSTEM          "gen_ai.system"
#define TRACES_KEY_REQUEST_MODEL   "gen_ai.request.model"
#define TRACES_KEY_RESPONSE_MODEL  "gen_ai.response.model"
#define TRACES_KEY_RESPONSE_ID     "gen_ai.response.id"
#define TRACES_KEY_INPUT_TOKENS    "gen_ai.usage.input_tokens"
#define TRACES_KEY_OUTPUT_TOKENS   "gen_ai.usage.output_tokens"
#define TRACES_KEY_FINISH_REASONS  "gen_ai.response.finish_reasons"
#define TRACES_KEY_TOOL_NAME       "gen_ai.tool.name"
#define TRACES_KEY_TOOL_CALL_ID    "gen_ai.tool.call.id"
#define TRACES_KEY_PROMPT          "gen_ai.prompt"             /* content */
#define TRACES_KEY_COMPLETION      "gen_ai.completion"         /* content */
#define TRACES_KEY_TOOL_ARGUMENTS  "gen_ai.tool.call.arguments" /* content */
#define TRACES_KEY_TOOL_RESULT     "gen_ai.tool.call.result"   /* content */
#define TRACES_KEY_STEP_KIND       "shoal.step.kind"
#define TRACES_KEY_ROUTE_MODEL     "shoal.route.model"
#define TRACES_KEY_ROUTE_PROVIDER  "shoal.route.provider"
#define TRACES_KEY_ROUTE_REASON    "shoal.route.reason"
#define TRACES_KEY_ESCALATED_FROM  "shoal.route.escalated_from"
#define TRACES_KEY_COST_USD        "shoal.cost.usd"
#define TRACES_KEY_BASELINE_USD    "shoal.cost.baseline_usd"
#define TRACES_KEY_LATENCY_TTFT_MS "shoal.latency.ttft_ms"
#define TRACES_KEY_QUEUE_MS        "shoal.latency.queue_ms"
#define TRACES_KEY_ATTEMPTS        "shoal.attempts"
#define TRACES_KEY_REQUEST_ID      "shoal.upstream.request_id"

/* True for the keys above marked content (message text a privacy setting
 * must be able to drop). Thread: any. */
bool traces_key_is_content(const char *key);

enum traces_span_kind {
    TRACES_SPAN_RUN = 0,
    TRACES_SPAN_STEP,
    TRACES_SPAN_LLM,
    TRACES_SPAN_TOOL,
    TRACES_SPAN_ROUTE,
};

/* Stored as text: "unset", "ok", "error", "cancelled"; a run is "running"
 * until traces_run_end. */
enum traces_status {
    TRACES_STATUS_UNSET = 0,
    TRACES_STATUS_OK,
    TRACES_STATUS_ERROR,
    TRACES_STATUS_CANCELLED,
};

/* Wall-clock microseconds since the Unix epoch (what t_us == 0 means). */
int64_t traces_now_us(void);

/* Start a run; *run_id gets its id (ids are assigned here, not by SQL).
 * input is content. t_us 0 means now. */
enum shoal_err traces_run_start(struct traces_store *s, const char *agent, const char *input,
                                int64_t t_us, int64_t *run_id, uint64_t *seq) SHOAL_NODISCARD;

struct traces_run_totals {
    int64_t input_tokens;
    int64_t output_tokens;
    double cost_usd;          /* what the run cost */
    double baseline_cost_usd; /* what it would have cost on the baseline (large) model */
};

/* End a run with its output (content), status and totals (may be NULL). */
enum shoal_err traces_run_end(struct traces_store *s, int64_t run_id, const char *output,
                              enum traces_status status, const struct traces_run_totals *totals,
                              int64_t t_us, uint64_t *seq) SHOAL_NODISCARD;

/* Start a span in a run; parent_id 0 means none. */
enum shoal_err traces_span_start(struct traces_store *s, int64_t run_id, int64_t parent_id,
                                 enum traces_span_kind kind, const char *name, int64_t t_us,
                                 const struct traces_attr *attrs, size_t n_attrs, int64_t *span_id,
                                 uint64_t *seq) SHOAL_NODISCARD;

/* End a span; error may be NULL; attrs are merged into the span's. */
enum shoal_err traces_span_end(struct traces_store *s, int64_t span_id, enum traces_status status,
                               const char *error, int64_t t_us, const struct traces_attr *attrs,
                               size_t n_attrs, uint64_t *seq) SHOAL_NODISCARD;

/* Merge attributes into a span (a later value for a key wins). */
enum shoal_err traces_span_set_attrs(struct traces_store *s, int64_t span_id,
                                     const struct traces_attr *attrs, size_t n_attrs,
                                     uint64_t *seq) SHOAL_NODISCARD;

/* ---- acknowledgement and counters (thread any) ---- */

/* Highest sequence number such that it and every record before it is
 * durably committed (or counted as a write error). */
uint64_t traces_committed_seq(struct traces_store *s);

/* Wait until every record accepted before the call is committed. TIMEOUT
 * after timeout_ms. Blocks: never on the loop thread. */
enum shoal_err traces_flush(struct traces_store *s, uint32_t timeout_ms);

struct traces_stats {
    uint64_t enqueued;      /* records accepted into the ring */
    uint64_t committed;     /* records written in a committed transaction */
    uint64_t rejected_full; /* calls refused with BUSY */
    uint64_t write_errors;  /* records SQLite refused (logged; never silent) */
    uint64_t batches;       /* committed transactions */
    uint64_t pruned_runs;   /* runs (with their spans) deleted by retention */
    uint64_t pruned_spans;
    uint32_t queue_depth; /* records waiting now */
    uint32_t queue_peak;
    uint64_t commit_failures; /* transactions that could not commit (retried) */
    bool failing;             /* the last commit attempt failed: storage is degraded */
    char last_error[160];     /* SQLite's message for the last failure ("" if none) */
};
void traces_stats_get(struct traces_store *s, struct traces_stats *out);

/* Delete up to batch of the oldest runs (and their spans) that started
 * before now_ms - max_age_ms, or while the database holds more than
 * max_bytes (0 disables either). Runs on the writer thread, after every
 * record enqueued before the call; the caller waits. *deleted (may be
 * NULL) gets the number of runs deleted. Thread: any but the loop. */
enum shoal_err traces_prune(struct traces_store *s, int64_t now_ms, uint64_t max_age_ms,
                            uint64_t max_bytes, uint32_t batch, uint32_t *deleted);

/* Test hook: while paused the writer commits nothing (queue backpressure
 * tests). Thread: any. */
void traces_test_pause(struct traces_store *s, bool paused);

/* ---- schema (traces_schema.c; writer thread or before it starts) ---- */

struct sqlite3;
/* Bring the database to TRACES_SCHEMA_VERSION in one transaction per step. */
enum shoal_err traces_schema_migrate(struct sqlite3 *db, struct shoal_diag *d);

#endif
