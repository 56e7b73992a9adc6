/* common.h: the one public header of shoal's base module: error values,
 * diagnostics, bounded buffers, logging, JSON helpers over cJSON, secrets,
 * and the default caps. common/ depends on nothing of ours; every other
 * module may include this header. All functions are safe on any thread
 * unless a comment says otherwise. */
#ifndef SHOAL_COMMON_H
#define SHOAL_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SHOAL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SHOAL_NODISCARD    __attribute__((warn_unused_result))
#else
#define SHOAL_PRINTF(f, a)
#define SHOAL_NODISCARD
#endif

#define SHOAL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Caps: every limit that protects the daemon, with its default. The
 * daemon's configuration can override those marked (config: key). ---- */
#define SHOAL_CAP_HTTP_HEADER_BYTES  (16u * 1024u)       /* limits.header_bytes */
#define SHOAL_CAP_HTTP_HEADERS       100u                /* limits.header_count */
#define SHOAL_CAP_HTTP_BODY_BYTES    (8u * 1024u * 1024u) /* limits.body_bytes */
#define SHOAL_CAP_HTTP_HEADER_MS     10000u              /* limits.header_timeout */
#define SHOAL_CAP_HTTP_BODY_MS       30000u              /* limits.body_timeout */
#define SHOAL_CAP_HTTP_KEEPALIVE_MS  60000u              /* limits.keepalive_timeout */
#define SHOAL_CAP_HTTP_CONNECTIONS   1024u               /* limits.max_connections */
#define SHOAL_CAP_SHUTDOWN_MS        10000u              /* limits.shutdown_timeout */
#define SHOAL_CAP_HTTP_STREAM_BACKLOG (8u * 1024u * 1024u) /* a streamed reply's unsent bytes */
#define SHOAL_CAP_CONFIG_BYTES       (1u * 1024u * 1024u) /* config file size */
#define SHOAL_CAP_CONFIG_NODES       100000u             /* YAML nodes incl. alias expansion */
#define SHOAL_CAP_CONFIG_DEPTH       64u                 /* YAML nesting depth */
#define SHOAL_CAP_SECRET_FILE_BYTES  (64u * 1024u)       /* { file: ... } secrets */
#define SHOAL_CAP_LOG_LINE           2048u               /* one log line, bytes */
#define SHOAL_CAP_TRACE_QUEUE        8192u               /* traces.queue: records waiting for the writer */
#define SHOAL_CAP_TRACE_WAIT_MS      5u                  /* traces.enqueue_wait: full-queue wait before BUSY */
#define SHOAL_CAP_TRACE_BATCH        1024u               /* records per writer transaction */
#define SHOAL_CAP_TRACE_PAYLOAD      (256u * 1024u)      /* traces.payload_bytes: per stored string */
#define SHOAL_CAP_TRACE_ATTRS        64u                 /* attributes per record */
#define SHOAL_CAP_SCHEMA_DEPTH       64u                 /* JSON Schema: subschema nesting */
#define SHOAL_CAP_SCHEMA_NODES       10000u              /* JSON Schema: subschemas per schema */
#define SHOAL_CAP_SCHEMA_PATTERN     4096u               /* JSON Schema: bytes per pattern */
#define SHOAL_CAP_SCHEMA_EVAL_DEPTH  256u                /* nested subschema applications ($ref) */
#define SHOAL_CAP_SCHEMA_STEPS       10000000u           /* work per validation, see json_schema.c */
#define SHOAL_CAP_SCHEMA_MATCH_LIMIT 100000u             /* PCRE2 match/depth limit per match */
#define SHOAL_CAP_PROMPT_BYTES       (16u * 1024u * 1024u) /* a rendered chat prompt */
#define SHOAL_CAP_GEN_TEXT           (8u * 1024u * 1024u) /* the text of one generated answer */

/* ---- Errors ---- */

/* Errors are values. Functions that can fail return one of these and write
 * their outputs only on success; the human-readable why goes to a
 * struct shoal_diag. */
enum shoal_err {
    SHOAL_OK = 0,
    SHOAL_ERR_NOMEM,       /* allocation failed */
    SHOAL_ERR_INVALID,     /* malformed or out-of-range input */
    SHOAL_ERR_NOT_FOUND,   /* a named thing does not exist */
    SHOAL_ERR_IO,          /* an OS call failed (errno in the diagnostic) */
    SHOAL_ERR_TOO_BIG,     /* a cap was hit */
    SHOAL_ERR_PERM,        /* permission or ownership refused */
    SHOAL_ERR_BUSY,        /* resource in use (e.g. a live daemon on the socket) */
    SHOAL_ERR_TIMEOUT,     /* a deadline passed */
    SHOAL_ERR_UNSUPPORTED, /* valid, but not something this build does */
    SHOAL_ERR_INTERNAL,    /* a bug: an invariant did not hold */
};

/* Stable lower-case name of an error ("invalid", "too_big", ...). */
const char *shoal_err_name(enum shoal_err err);

/* ---- Diagnostics ---- */

/* The why of an error: what went wrong, and where. Fixed size so it can live
 * on the stack and be filled on paths that are out of memory. Fields that do
 * not apply stay empty / zero / -1. */
struct shoal_diag {
    enum shoal_err err;
    char file[256];   /* file or source name, "" when none */
    unsigned line;    /* 1-based, 0 when unknown */
    unsigned col;     /* 1-based, 0 when unknown */
    int64_t offset;   /* byte offset into the input, -1 when unknown */
    char path[192];   /* key path such as "listen.tcp" or "$.messages[0]" */
    char msg[512];
};

/* Reset to "no error". d may be NULL. */
void shoal_diag_clear(struct shoal_diag *d);

/* Record err and a formatted message; returns err so callers can write
 * `return shoal_diag_set(d, SHOAL_ERR_INVALID, "...")`. d may be NULL. Location
 * fields already set are kept. */
enum shoal_err shoal_diag_set(struct shoal_diag *d, enum shoal_err err, const char *fmt, ...)
    SHOAL_PRINTF(3, 4);
enum shoal_err shoal_diag_setv(struct shoal_diag *d, enum shoal_err err, const char *fmt,
                               va_list ap) SHOAL_PRINTF(3, 0);

/* Set the location fields. file/path may be NULL to leave them unchanged. */
void shoal_diag_at(struct shoal_diag *d, const char *file, unsigned line, unsigned col);
void shoal_diag_at_offset(struct shoal_diag *d, const char *file, int64_t offset);
void shoal_diag_path(struct shoal_diag *d, const char *path);

/* Render "file:line:col: path: msg" (parts that are unknown are left out;
 * a byte offset renders as "file: byte N:"). Always NUL-terminates when
 * n > 0; returns the length it wanted, like snprintf. */
size_t shoal_diag_format(const struct shoal_diag *d, char *out, size_t n);

/* ---- Bounded buffers ---- */

/* A growable byte buffer with a hard cap (max). data is always
 * NUL-terminated after len bytes once anything was appended, so text can be
 * used as a C string. Storage is owned by the buffer. */
struct shoal_buf {
    char *data;
    size_t len;
    size_t cap; /* allocated bytes, including the spare NUL */
    size_t max; /* most bytes len may reach; appends past it fail TOO_BIG */
};

void shoal_buf_init(struct shoal_buf *b, size_t max);
void shoal_buf_fini(struct shoal_buf *b);
/* Forget the contents, keep the storage. */
void shoal_buf_reset(struct shoal_buf *b);
/* Make room for extra more bytes. NOMEM or TOO_BIG; on failure b is unchanged. */
enum shoal_err shoal_buf_reserve(struct shoal_buf *b, size_t extra) SHOAL_NODISCARD;
enum shoal_err shoal_buf_append(struct shoal_buf *b, const void *p, size_t n) SHOAL_NODISCARD;
enum shoal_err shoal_buf_puts(struct shoal_buf *b, const char *s) SHOAL_NODISCARD;
/* Append formatted text; on failure nothing is appended. */
enum shoal_err shoal_buf_printf(struct shoal_buf *b, const char *fmt, ...) SHOAL_PRINTF(2, 3)
    SHOAL_NODISCARD;
/* Drop the first n bytes (n <= len). */
void shoal_buf_consume(struct shoal_buf *b, size_t n);
/* The contents as a C string; "" for an empty buffer. Valid until the next
 * change to b. */
const char *shoal_buf_cstr(const struct shoal_buf *b);

/* Copy src into dst of size n, always NUL-terminating when n > 0.
 * Returns true when nothing was cut. The project's strcpy. */
bool shoal_strlcpy(char *dst, const char *src, size_t n);

/* Parse a whole decimal integer in [min, max]; no sign games, no trailing
 * junk, no empty string. The project's atoi. */
enum shoal_err shoal_parse_i64(const char *s, size_t n, int64_t min, int64_t max, int64_t *out);

/* Seconds with at most three decimals ("10", "0.5", "2.25") as
 * milliseconds in [min_ms, max_ms]; no sign, no exponent. For command-line
 * options such as --timeout. */
enum shoal_err shoal_parse_seconds_ms(const char *s, uint32_t min_ms, uint32_t max_ms,
                                      uint32_t *out);

/* A point in time given as an age or a date, for --since and ?since=:
 * "90s", "30m", "1h", "7d", "2w" (now_us minus that), "all" (0), or a UTC
 * date "2026-11-20" / "2026-11-20T10:00:00Z" (seconds optional). *out gets
 * microseconds since the epoch. INVALID for anything else. */
enum shoal_err shoal_parse_since(const char *s, int64_t now_us, int64_t *out);

/* Encode code point cp (<= 0x10FFFF) as UTF-8 into out; returns 1..4. */
size_t shoal_utf8_encode(uint32_t cp, char out[4]);

/* The length (1..4) of the well-formed UTF-8 sequence at s[0..n) (RFC
 * 3629: no overlongs, surrogates or code points past U+10FFFF), 0 when
 * s starts with none. n >= 1. */
size_t shoal_utf8_len(const char *s, size_t n);

/* How many of the n bytes of s to keep so that at most cap remain without
 * splitting a UTF-8 sequence (a cut string stays valid text). */
size_t shoal_utf8_cut(const char *s, size_t n, size_t cap);

/* The value of one hex digit, or -1. */
int shoal_hex_digit(char c);

/* Edit distance (insert/delete/substitute), capped at cap+1 for speed.
 * Used for "did you mean" suggestions. */
unsigned shoal_edit_distance(const char *a, const char *b, unsigned cap);

/* Milliseconds on the monotonic clock. */
uint64_t shoal_now_ms(void);

/* ---- Logging ---- */

/* One line per event on stderr:
 *   ts=2026-11-22T03:04:05.678Z level=info event=listen socket=/run/x.sock
 * Values with spaces, quotes, '=' or control bytes are double-quoted and
 * escaped. Secrets cannot reach a log line: struct shoal_secret has no
 * formatter (see below). */
enum shoal_log_level {
    SHOAL_LOG_DEBUG = 0,
    SHOAL_LOG_INFO,
    SHOAL_LOG_WARN,
    SHOAL_LOG_ERROR,
    SHOAL_LOG_OFF,
};

/* The level below which events are dropped. Default info; any thread. */
void shoal_log_set_level(enum shoal_log_level level);
enum shoal_log_level shoal_log_get_level(void);
/* "debug", "info", "warn" (or "warning"), "error", "off". INVALID otherwise. */
enum shoal_err shoal_log_level_parse(const char *s, enum shoal_log_level *out);
const char *shoal_log_level_name(enum shoal_log_level level);
/* Apply $SHOAL_LOG when set and valid; returns INVALID (and leaves the level)
 * when it is set to something else. */
enum shoal_err shoal_log_level_from_env(void);
/* Send log lines to fd instead of stderr (tests). */
void shoal_log_set_fd(int fd);

/* Build a line on the stack, then emit it with one write(2) so lines from
 * several threads never interleave:
 *     struct shoal_logline l;
 *     if (shoal_log_begin(&l, SHOAL_LOG_INFO, "listen")) {
 *         shoal_log_kv(&l, "socket", "%s", path);
 *         shoal_log_end(&l);
 *     }
 * begin returns false when the level is filtered out (then skip the rest).
 * An over-long line is cut and ends with "truncated=1". */
struct shoal_logline {
    char buf[SHOAL_CAP_LOG_LINE];
    size_t len;
    bool truncated;
};
bool shoal_log_begin(struct shoal_logline *l, enum shoal_log_level level, const char *event);
void shoal_log_kv(struct shoal_logline *l, const char *key, const char *fmt, ...)
    SHOAL_PRINTF(3, 4);
void shoal_log_end(struct shoal_logline *l);
/* Shorthand for an event with one quoted msg=... */
void shoal_log(enum shoal_log_level level, const char *event, const char *fmt, ...)
    SHOAL_PRINTF(3, 4);
/* An event carrying a diagnostic as file=, line=, col=, path=, msg=. */
void shoal_log_diag(enum shoal_log_level level, const char *event, const struct shoal_diag *d);

/* ---- Secrets ---- */

/* A secret (API key, bearer token) is opaque: it cannot be passed to a
 * printf-style function by accident (the compiler rejects a struct pointer
 * for %s), and its bytes are wiped when freed. Reveal it only where it is
 * sent, with shoal_secret_reveal. */
struct shoal_secret;

/* Copy n bytes of value; source names where it came from for display
 * ("env:OPENAI_API_KEY", "file:/etc/shoal/key"), never the value. */
enum shoal_err shoal_secret_new(const void *value, size_t n, const char *source,
                                struct shoal_secret **out) SHOAL_NODISCARD;
void shoal_secret_free(struct shoal_secret *s);
/* The raw bytes (not NUL-terminated in general; a NUL follows them). Valid
 * until shoal_secret_free. */
const char *shoal_secret_reveal(const struct shoal_secret *s, size_t *len);
/* Where the secret came from, safe to print. */
const char *shoal_secret_source(const struct shoal_secret *s);
/* Constant-time comparison with a candidate of n bytes. */
bool shoal_secret_equals(const struct shoal_secret *s, const void *candidate, size_t n);

/* ---- JSON helpers over cJSON ---- */

/* These take a cJSON object and the JSON path of that object ("$" for the
 * root) so a failure names the member: "$.listen.port: expected integer".
 * A missing member gives NOT_FOUND when required is false (and *out keeps
 * its default), INVALID when it is true. */
struct cJSON;

/* Parse n bytes of JSON. On a syntax error d gets the byte offset. */
enum shoal_err shoal_json_parse(const char *text, size_t n, struct cJSON **out,
                                struct shoal_diag *d) SHOAL_NODISCARD;
enum shoal_err shoal_json_get_str(const struct cJSON *obj, const char *obj_path, const char *key,
                                  bool required, const char **out, struct shoal_diag *d);
enum shoal_err shoal_json_get_int(const struct cJSON *obj, const char *obj_path, const char *key,
                                  bool required, int64_t min, int64_t max, int64_t *out,
                                  struct shoal_diag *d);
enum shoal_err shoal_json_get_num(const struct cJSON *obj, const char *obj_path, const char *key,
                                  bool required, double *out, struct shoal_diag *d);
enum shoal_err shoal_json_get_bool(const struct cJSON *obj, const char *obj_path, const char *key,
                                   bool required, bool *out, struct shoal_diag *d);
/* Render without whitespace into b (appending). Unlike cJSON's printer,
 * an integral number up to 2^53 is always written as digits (1763790568123450,
 * never 1.76379056812345e+15), so microsecond timestamps and ids read back
 * as integers everywhere; other numbers use the shortest of %.15g/%.16g/
 * %.17g that reads back exactly; NaN and infinities become null. TOO_BIG
 * past b's cap, NOMEM. */
enum shoal_err shoal_json_render(const struct cJSON *item, struct shoal_buf *b) SHOAL_NODISCARD;
/* The same with two-space indentation and one member per line. */
enum shoal_err shoal_json_render_pretty(const struct cJSON *item,
                                        struct shoal_buf *b) SHOAL_NODISCARD;

/* ---- JSON Schema ----
 *
 * A validator for a subset of JSON Schema (draft 2020-12, with the draft-07
 * spellings "definitions" and array-form "items"), for tool arguments and
 * results and for structured model output. Supported keywords: type, enum,
 * const, properties, required, additionalProperties, patternProperties,
 * minProperties, maxProperties, items, prefixItems, additionalItems,
 * minItems, maxItems, uniqueItems, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, multipleOf, minLength, maxLength (code points), pattern
 * (PCRE2, UTF mode, unanchored), allOf, anyOf, oneOf, not, local $ref
 * ("#", "#/$defs/name", any JSON pointer to a subschema), $defs,
 * definitions, and the boolean schemas true and false. Annotations that
 * are accepted and ignored: title, description, default, examples,
 * $schema, $id (root only), $comment, format (not asserted), deprecated,
 * readOnly, writeOnly, contentEncoding, contentMediaType, contentSchema,
 * $vocabulary, discriminator and any "x-..." key. Numbers are doubles:
 * integers beyond 2^53 are out of scope. */
struct shoal_schema; /* compiled and immutable: share it across threads */

/* Compile schema (borrowed; nothing of it is kept) into *out, to be freed
 * with shoal_schema_free. Fails with INVALID for a malformed schema, an
 * unknown keyword ("unknown keyword 'requried'; did you mean 'required'?")
 * or a pattern that does not compile; UNSUPPORTED for a keyword outside the
 * subset that would change validation (if/then/else, contains,
 * propertyNames, unevaluated*, dependent*, a remote or anchor $ref, $id in a
 * subschema, ...); TOO_BIG past SHOAL_CAP_SCHEMA_DEPTH, _NODES or _PATTERN;
 * NOMEM. d->path names the schema location: "schema $.properties.city.type".
 * Any thread. */
enum shoal_err shoal_schema_compile(const struct cJSON *schema, struct shoal_schema **out,
                                    struct shoal_diag *d) SHOAL_NODISCARD;
void shoal_schema_free(struct shoal_schema *s);

/* Check instance (borrowed) against s. OK, or INVALID with d->path naming
 * the instance location ("$.a.b[3].c", "$" for the root) and d->msg the
 * rule ("expected string, got number"; "missing required property 'city'";
 * "matches none of anyOf (first branch: $.x: expected integer)"). The
 * failure reported is the first in a fixed order: within a schema, type,
 * enum/const, the value's own keywords, then members or items in document
 * order, then $ref, allOf, anyOf, oneOf, not. Limits also give INVALID:
 * "pattern too complex" past SHOAL_CAP_SCHEMA_MATCH_LIMIT, a string that is
 * not UTF-8 under a pattern, recursion past SHOAL_CAP_SCHEMA_EVAL_DEPTH, work
 * past SHOAL_CAP_SCHEMA_STEPS. NOMEM. d is left alone on success. Any
 * thread, concurrently on one schema. */
enum shoal_err shoal_schema_validate(const struct shoal_schema *s, const struct cJSON *instance,
                                     struct shoal_diag *d);

#endif
