/* remote.h: the I/O-free half of remote large-model providers: OpenAI-
 * compatible Chat Completions (OpenAI, vLLM, llama.cpp server, Ollama, ...)
 * and Anthropic Messages. Request bodies and headers, response and stream
 * (SSE) parsers, typed errors, a retry policy and a circuit breaker, cost.
 * No sockets, threads or clocks: the daemon moves the bytes (daemon/fetch.h)
 * and passes the time in, so everything here is unit-testable and fuzzable.
 * Invariant: an API key reaches only remote_headers_init's lines; no body,
 * result, error message or log line carries it. Threads: every function may
 * be called from any thread; an object belongs to one thread at a time. */
#ifndef SHOAL_REMOTE_H
#define SHOAL_REMOTE_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* ---- Caps (defaults; to move into common.h's table once wired to config) ---- */
#define REMOTE_CAP_SSE_LINE       (1u << 20)  /* one SSE line */
#define REMOTE_CAP_SSE_EVENT      (4u << 20)  /* the data of one SSE event */
#define REMOTE_CAP_TEXT           (8u << 20)  /* answer text of one result */
#define REMOTE_CAP_TOOL_CALLS     128u        /* tool calls in one result */
#define REMOTE_CAP_TOOL_ARGS      (1u << 20)  /* arguments text of one tool call */
#define REMOTE_CAP_LOGPROBS       65536u      /* tokens with logprobs kept per result */
#define REMOTE_CAP_ERROR_BODY     (64u << 10) /* non-SSE bytes a stream keeps (an error body) */
#define REMOTE_CAP_MESSAGES       10000u      /* messages in one request */
#define REMOTE_CAP_TOOLS          512u        /* tools in one request */
#define REMOTE_CAP_STOP           16u         /* stop strings in one request */
#define REMOTE_DEFAULT_MAX_TOKENS 4096u       /* Anthropic requires max_tokens */
#define REMOTE_ANTHROPIC_VERSION  "2023-06-01"

/* ---- Providers ---- */

enum remote_provider {
    REMOTE_PROVIDER_OPENAI = 0, /* POST {base}/chat/completions */
    REMOTE_PROVIDER_ANTHROPIC,  /* POST {base}/messages */
};

/* "openai" / "anthropic". */
const char *remote_provider_name(enum remote_provider p);
/* The inverse; INVALID for anything else. */
enum shoal_err remote_provider_parse(const char *s, enum remote_provider *out);

/* base_url ("https://api.openai.com/v1", a trailing '/' is fine) plus the
 * provider's path, appended to out. INVALID when base_url is not http(s);
 * TOO_BIG, NOMEM. */
enum shoal_err remote_url(enum remote_provider p, const char *base_url, struct shoal_buf *out,
                          struct shoal_diag *d) SHOAL_NODISCARD;

/* ---- Requests ----
 *
 * One request shape for both providers, read from an OpenAI Chat
 * Completions request (the format shoald's /v1/chat/completions receives).
 * Read-only for callers; every string and cJSON tree is owned by the
 * request. Unknown top-level members are ignored. */

enum remote_role {
    REMOTE_ROLE_SYSTEM = 0, /* "system" or "developer" */
    REMOTE_ROLE_USER,
    REMOTE_ROLE_ASSISTANT,
    REMOTE_ROLE_TOOL,
};

/* A tool call, in an assistant message of a request or in a result. */
struct remote_tool_call {
    char *id;
    char *name;
    char *arguments;     /* JSON text as the model wrote it ("" becomes "{}") */
    struct cJSON *args;  /* arguments parsed; NULL when they are not JSON */
    char args_error[96]; /* why args is NULL ("not valid JSON at byte 12"), else "" */
};

struct remote_message {
    enum remote_role role;
    char **parts; /* text content; n_parts 0 when content was null or absent */
    size_t n_parts;
    bool parts_array;                    /* content was an array of text parts (kept for OpenAI) */
    char *name;                          /* optional participant name, or NULL */
    char *tool_call_id;                  /* role tool: the call this answers */
    struct remote_tool_call *tool_calls; /* role assistant */
    size_t n_tool_calls;
};

struct remote_tool {
    char *name;
    char *description;        /* or NULL */
    struct cJSON *parameters; /* JSON Schema, passed through intact; NULL when absent */
    int strict;               /* -1 absent, 0, 1 (OpenAI only) */
};

enum remote_tool_choice {
    REMOTE_TOOL_CHOICE_UNSET = 0, /* provider default (auto when tools are given) */
    REMOTE_TOOL_CHOICE_AUTO,
    REMOTE_TOOL_CHOICE_NONE,
    REMOTE_TOOL_CHOICE_REQUIRED, /* some tool (Anthropic "any") */
    REMOTE_TOOL_CHOICE_NAMED,    /* tool_choice_name */
};

enum remote_format {
    REMOTE_FORMAT_TEXT = 0,
    REMOTE_FORMAT_JSON_OBJECT,
    REMOTE_FORMAT_JSON_SCHEMA, /* format_name, format_schema, format_strict */
};

struct remote_request {
    char *model; /* NULL when absent */
    struct remote_message *messages;
    size_t n_messages;
    struct remote_tool *tools;
    size_t n_tools;
    enum remote_tool_choice tool_choice;
    char *tool_choice_name;
    int parallel_tool_calls; /* -1 absent, 0, 1 */
    enum remote_format format;
    char *format_name;
    char *format_description;
    struct cJSON *format_schema;
    int format_strict;   /* -1 absent, 0, 1 */
    uint32_t max_tokens; /* max_completion_tokens or max_tokens; 0 absent */
    bool has_temperature, has_top_p, has_seed, has_frequency_penalty, has_presence_penalty;
    double temperature, top_p, frequency_penalty, presence_penalty;
    int64_t seed;
    char **stop;
    size_t n_stop;
    bool logprobs;
    uint32_t top_logprobs; /* 0..20 */
    bool stream;
    char *user; /* or NULL */
};

/* Read and check an OpenAI-format request (borrowed; nothing of it is
 * kept). INVALID with d->path naming the member ("$.messages[2].role:
 * expected one of system, developer, user, assistant, tool"); UNSUPPORTED
 * for valid input this module does not carry (non-text content parts, n >
 * 1, the legacy "function" role); TOO_BIG past the REMOTE_CAP_* limits;
 * NOMEM. Caller frees *out with remote_request_free. */
enum shoal_err remote_request_from_chat(const struct cJSON *chat, struct remote_request **out,
                                        struct shoal_diag *d) SHOAL_NODISCARD;
void remote_request_free(struct remote_request *r);

/* ---- Request bodies and headers ---- */

struct remote_build_opts {
    const char *model;           /* the provider's model name; NULL: the request's */
    uint32_t default_max_tokens; /* Anthropic, when the request has none; 0: 4096 */
    bool legacy_max_tokens;      /* OpenAI: send max_tokens, not max_completion_tokens */
    bool no_stream_usage;        /* OpenAI: leave out stream_options.include_usage */
};

/* The provider's JSON body for r, appended to out (o may be NULL). No
 * key is involved. OpenAI: messages, tools [{type:function, function}],
 * tool_choice, response_format, max_completion_tokens, sampling, stop,
 * seed, logprobs, stream + stream_options. Anthropic: system lifted to the
 * top level, content blocks, tool_use / tool_result blocks (consecutive
 * same-role messages merged, empty ones dropped), tools {name,
 * description, input_schema}, tool_choice (required -> any), max_tokens
 * (defaulted), stop_sequences, temperature clamped to [0, 1]; seed,
 * logprobs and penalties dropped; a JSON response format becomes one forced
 * tool whose input the parsers return as the text. INVALID when there is
 * no model, or (Anthropic) tool call arguments that are not a JSON object;
 * UNSUPPORTED for a JSON response format together with tools (Anthropic);
 * TOO_BIG past out's cap; NOMEM. Out is unchanged on failure. */
enum shoal_err remote_openai_build_body(const struct remote_request *r,
                                        const struct remote_build_opts *o, struct shoal_buf *out,
                                        struct shoal_diag *d) SHOAL_NODISCARD;
enum shoal_err remote_anthropic_build_body(const struct remote_request *r,
                                           const struct remote_build_opts *o, struct shoal_buf *out,
                                           struct shoal_diag *d) SHOAL_NODISCARD;
enum shoal_err remote_build_body(enum remote_provider p, const struct remote_request *r,
                                 const struct remote_build_opts *o, struct shoal_buf *out,
                                 struct shoal_diag *d) SHOAL_NODISCARD;

/* The request headers, as "Name: value" lines for fetch_request.headers.
 * OpenAI: Authorization: Bearer KEY; Anthropic: x-api-key: KEY and
 * anthropic-version; both: content-type and accept (text/event-stream when
 * stream). key may be NULL (no auth header: a local server). */
#define REMOTE_HEADERS_MAX 5
struct remote_headers {
    const char *list[REMOTE_HEADERS_MAX + 1]; /* NULL-terminated, valid until _fini */
    char *block;                              /* owns the lines; wiped by _fini */
    size_t block_len;
};
/* INVALID when the key holds a control byte (d names the key's source, never
 * its value); NOMEM. On failure h needs no _fini. */
enum shoal_err remote_headers_init(struct remote_headers *h, enum remote_provider p,
                                   const struct shoal_secret *key, bool stream,
                                   struct shoal_diag *d) SHOAL_NODISCARD;
/* Wipe and free the lines. Safe on a zeroed struct. */
void remote_headers_fini(struct remote_headers *h);

/* ---- Results ---- */

enum remote_finish {
    REMOTE_FINISH_UNKNOWN = 0,    /* none given, or a word we do not know */
    REMOTE_FINISH_STOP,           /* stop, end_turn, stop_sequence */
    REMOTE_FINISH_LENGTH,         /* length, max_tokens, model_context_window_exceeded */
    REMOTE_FINISH_TOOL_CALLS,     /* tool_calls, function_call, tool_use */
    REMOTE_FINISH_CONTENT_FILTER, /* content_filter, refusal */
    REMOTE_FINISH_ERROR,          /* the answer ended in an error */
};
/* "unknown", "stop", "length", "tool_calls", "content_filter", "error". */
const char *remote_finish_name(enum remote_finish f);

/* Token counts, the same meaning for both providers. */
struct remote_usage {
    bool present;
    int64_t input_tokens; /* every prompt token, cached ones included */
    int64_t output_tokens;
    int64_t cached_input_tokens; /* of input_tokens: read from the prompt cache */
    int64_t cache_write_tokens;  /* of input_tokens: written to the cache (Anthropic) */
    int64_t reasoning_tokens;    /* of output_tokens (OpenAI reasoning models) */
};

struct remote_top_logprob {
    char *token;
    double logprob;
};
struct remote_logprob {
    char *token;
    double logprob;
    struct remote_top_logprob *top;
    size_t n_top;
};

/* Caller-owned storage; _init before use, _fini after. Every pointer is
 * owned by the result. */
struct remote_result {
    char *text; /* the answer; NUL-terminated, "" when none, NULL only before a parse */
    size_t text_len;
    char *refusal; /* OpenAI message.refusal, or NULL */
    struct remote_tool_call *tool_calls;
    size_t n_tool_calls;
    enum remote_finish finish;
    char finish_raw[32]; /* the provider's word ("end_turn"), "" when none */
    struct remote_usage usage;
    char id[128];         /* the response's id ("chatcmpl-…", "msg_…"), "" when none */
    char request_id[128]; /* the provider's request id (header, else body), "" when none */
    char model[128];      /* the model that answered, "" when not said */
    struct remote_logprob *logprobs; /* per output token (OpenAI), n_logprobs 0 when none */
    size_t n_logprobs;
    bool partial; /* the answer ended early; what arrived is kept */
};
void remote_result_init(struct remote_result *r);
void remote_result_fini(struct remote_result *r);

/* The result as an OpenAI chat.completion object (the shape shoald's
 * /v1/chat/completions answers with), appended to out. model: the name to
 * report (NULL: the result's); created: seconds since the epoch. TOO_BIG,
 * NOMEM. */
enum shoal_err remote_result_render_openai(const struct remote_result *r, const char *model,
                                           int64_t created, struct shoal_buf *out) SHOAL_NODISCARD;

/* One chat.completion.chunk of an OpenAI stream (what shoald's
 * /v1/chat/completions sends with "stream": true), as JSON appended to out
 * (the caller frames it as an SSE "data:" line). A chunk carries any of: the
 * assistant role (the first chunk), a piece of text, the end (end's tool
 * calls whole, its logprobs, its finish reason), or only usage (choices
 * empty: the stream_options.include_usage chunk). TOO_BIG, NOMEM. */
struct remote_chunk {
    const char *id;
    const char *model;
    int64_t created;
    bool role;
    const char *text; /* delta.content, text_len bytes; NULL: none */
    size_t text_len;
    const struct remote_result *end;  /* the final chunk, or NULL */
    const struct remote_usage *usage; /* a usage-only chunk, or NULL */
};
enum shoal_err remote_chunk_render_openai(const struct remote_chunk *c,
                                          struct shoal_buf *out) SHOAL_NODISCARD;

/* ---- Cost ---- */

struct remote_price {
    double input_per_mtok; /* USD per million uncached input tokens */
    double output_per_mtok;
    double cached_input_per_mtok; /* < 0: as input */
    double cache_write_per_mtok;  /* < 0: as input */
};
/* USD for u at p. Pure; 0 when usage is absent. */
double remote_cost_usd(const struct remote_price *p, const struct remote_usage *u);

/* ---- Errors ---- */

enum remote_error_kind {
    REMOTE_ERR_NONE = 0,
    REMOTE_ERR_AUTH,             /* 401/403: key missing, wrong or not allowed */
    REMOTE_ERR_QUOTA,            /* billing or quota exhausted (402, insufficient_quota) */
    REMOTE_ERR_RATE_LIMITED,     /* 429: retryable after retry_after_ms */
    REMOTE_ERR_CONTEXT_OVERFLOW, /* prompt (+ max tokens) too long for the model; 413 */
    REMOTE_ERR_INVALID_REQUEST,  /* 400/404/422 and other 4xx: fix the request */
    REMOTE_ERR_TIMEOUT,          /* transport timeout, 408, 504 */
    REMOTE_ERR_UNAVAILABLE,      /* cannot connect, reset, 409, 5xx, overloaded */
    REMOTE_ERR_BAD_RESPONSE,     /* malformed JSON or SSE, truncated stream, too big */
    REMOTE_ERR_CANCELLED,        /* the caller stopped it */
    REMOTE_ERR_INTERNAL,         /* out of memory or a bug on our side */
};
/* "none", "auth", "quota", "rate_limited", "context_overflow",
 * "invalid_request", "timeout", "unavailable", "bad_response", "cancelled",
 * "internal". */
const char *remote_error_kind_name(enum remote_error_kind k);

struct remote_error {
    enum remote_error_kind kind;
    long status;            /* HTTP status, 0 when none */
    int64_t retry_after_ms; /* from Retry-After, -1 when none */
    bool partial;           /* output had begun (a retry would repeat it) */
    char code[64];          /* the provider's code or type ("rate_limit_error"), "" */
    char message[512];      /* for people and traces; never holds the key */
};
void remote_error_clear(struct remote_error *e);

/* Whether another attempt may succeed: unavailable, timeout and
 * rate_limited, unless output had begun. */
bool remote_error_is_retryable(const struct remote_error *e);

/* How the transport ended (daemon/fetch.h's fetch_result_kind, one to one). */
enum remote_transport {
    REMOTE_TRANSPORT_OK = 0,  /* an HTTP answer, any status */
    REMOTE_TRANSPORT_CONNECT, /* DNS, refused, TLS */
    REMOTE_TRANSPORT_TIMEOUT,
    REMOTE_TRANSPORT_RESET, /* broke mid-answer */
    REMOTE_TRANSPORT_TOO_BIG,
    REMOTE_TRANSPORT_CANCELLED,
    REMOTE_TRANSPORT_REFUSED, /* refused before sending (scheme, URL) */
    REMOTE_TRANSPORT_INTERNAL,
};

/* What came back, besides the body. Borrowed for the call. */
struct remote_reply {
    enum remote_transport transport;
    long status;                    /* 0 when none */
    const char *retry_after;        /* the Retry-After header, or NULL */
    const char *request_id;         /* request-id / x-request-id header, or NULL */
    const char *transport_error;    /* the transport's why, or NULL */
    int64_t now_unix_ms;            /* wall clock, for a Retry-After HTTP-date */
    const struct shoal_secret *key; /* scrubbed from messages; may be NULL */
};

/* Map a failed exchange to a typed error: transport kind, then context-
 * length recognition in the body, then status, then (for a 2xx carrying an
 * error) the provider's error type. body may be NULL. Provider secrets
 * ("sk-…" words and rep->key) are scrubbed from the message. Returns
 * out->kind; REMOTE_ERR_NONE only for a 2xx body that is no error. */
enum remote_error_kind remote_error_classify(enum remote_provider p, const struct remote_reply *rep,
                                             const char *body, size_t n, struct remote_error *out);

/* Whether a provider error (code or type, and message; either may be NULL)
 * says the prompt did not fit the model's context. Table-driven: OpenAI,
 * Anthropic, vLLM, llama.cpp, Ollama, TGI, Gemini, Mistral phrasings. */
bool remote_is_context_overflow(const char *code, const char *message);

/* Retry-After as milliseconds from now: delta-seconds ("120", "1.5") or an
 * HTTP-date (IMF-fixdate, RFC 850, asctime) against now_unix_ms (a past
 * date gives 0). INVALID otherwise; values past a day are capped there. */
enum shoal_err remote_retry_after_parse(const char *v, int64_t now_unix_ms, int64_t *out_ms);

/* ---- Parsing answers ---- */

/* A whole (non-streamed) answer: on a transport error, a non-2xx status or
 * a 2xx body that is an error, the typed error; else the result. req (may be
 * NULL) tells the Anthropic parser which tool carries a JSON response format.
 * Returns err->kind (REMOTE_ERR_NONE on success). res gets what could be
 * read either way. */
enum remote_error_kind remote_response_parse(enum remote_provider p,
                                             const struct remote_request *req,
                                             const struct remote_reply *rep, const char *body,
                                             size_t n, struct remote_result *res,
                                             struct remote_error *err);

/* ---- Server-sent events ----
 *
 * A decoder for text/event-stream (WHATWG HTML §9.2): bytes in any chunk
 * splits, lines ending in CRLF, LF or CR, comments (":"), multi-line data,
 * a UTF-8 BOM; one event per blank line. Lenient where providers are not:
 * a last line or event without its terminator is still delivered by
 * remote_sse_finish. Lines past max_line and event data past max_event stop
 * the decoder with TOO_BIG. */
struct remote_sse_event {
    const char *event; /* the event: field, "message" when none */
    const char *data;  /* data lines joined by '\n', NUL-terminated */
    size_t data_len;
    const char *id; /* the last id: field seen, "" when none */
};
/* Return SHOAL_OK to go on; anything else stops the decoder and is
 * returned from feed/finish. The event lives for the call. */
typedef enum shoal_err (*remote_sse_fn)(void *arg, const struct remote_sse_event *ev);

struct remote_sse;
/* max_line/max_event 0: REMOTE_CAP_SSE_LINE / _EVENT. NOMEM. */
enum shoal_err remote_sse_new(size_t max_line, size_t max_event, remote_sse_fn fn, void *arg,
                              struct remote_sse **out) SHOAL_NODISCARD;
void remote_sse_free(struct remote_sse *s);
/* Decode n more bytes, calling fn per complete event. Once it fails, every
 * later call returns the same error. d (may be NULL) gets the byte offset. */
enum shoal_err remote_sse_feed(struct remote_sse *s, const char *p, size_t n, struct shoal_diag *d);
/* The stream ended: deliver an unterminated last line and event. */
enum shoal_err remote_sse_finish(struct remote_sse *s, struct shoal_diag *d);

/* ---- Streaming answers ---- */

struct remote_stream_cb {
    /* Each piece of answer text as it arrives (for a terminal). Return false
     * to stop: the stream then ends CANCELLED. May be NULL. */
    bool (*on_text)(void *arg, const char *text, size_t n);
    void *arg;
};

/* A stream parser: SSE decoding plus the provider's event state machine
 * (OpenAI chat.completion.chunk deltas up to "data: [DONE]"; Anthropic
 * message_start … message_stop). req (may be NULL) is read only here, and
 * cb is copied. NOMEM. */
struct remote_stream;
enum shoal_err remote_stream_new(enum remote_provider p, const struct remote_request *req,
                                 const struct remote_stream_cb *cb,
                                 struct remote_stream **out) SHOAL_NODISCARD;
void remote_stream_free(struct remote_stream *s);

/* Feed n body bytes (fetch_request.on_data). false: the stream failed
 * (garbage, a cap, an error event), on_text said stop, or a body that is
 * not an event stream has given the REMOTE_CAP_ERROR_BODY bytes finish
 * needs; more bytes are pointless and the caller may abort the transfer
 * (finish still gives the right verdict). After the end marker: true,
 * and further bytes are ignored. */
bool remote_stream_feed(struct remote_stream *s, const char *p, size_t n);

/* Whether the end marker ([DONE] / message_stop) has been seen. */
bool remote_stream_is_complete(const struct remote_stream *s);

/* The transfer ended (rep says how). A non-2xx status is an error (its
 * body classified), unless the caller had already stopped the stream
 * (CANCELLED). Else a stream that saw its end marker succeeds whatever the
 * transport said afterwards. Else the first of: the stream's own error
 * (garbage, a cap, an error event, on_text said stop), the transport's
 * error, a whole JSON answer where a stream was expected (read as
 * remote_response_parse would), no events at all, a stream cut short
 * (BAD_RESPONSE; one that ended cleanly after a finish reason is accepted,
 * and an unterminated last line that does not parse counts as cut short).
 * res gets the output so far, partial when it ended early; err->partial
 * says on_text had already been called. Returns err->kind. Call once. */
enum remote_error_kind remote_stream_finish(struct remote_stream *s, const struct remote_reply *rep,
                                            struct remote_result *res, struct remote_error *err);

/* ---- Retry policy ----
 *
 * Exponential backoff with "equal jitter" (wait in [cap/2, cap], cap =
 * min(max_backoff_ms, base_ms * 2^(failures-1))) from a seeded generator,
 * at least the Retry-After the server asked for, within a total deadline
 * measured from remote_retry_init. Plain data: copy it, keep it anywhere. */
struct remote_retry_policy {
    uint32_t max_attempts;       /* attempts in all, the first included; 0: 4 */
    uint32_t base_ms;            /* 0: 500 */
    uint32_t max_backoff_ms;     /* one wait's cap before Retry-After; 0: 20000 */
    uint32_t deadline_ms;        /* attempts and waits together; 0: 120000 */
    uint32_t max_retry_after_ms; /* a longer Retry-After gives up at once; 0: 60000 */
    uint64_t seed;               /* same seed, same schedule */
};
struct remote_retry {
    struct remote_retry_policy p; /* defaults filled in */
    uint64_t start_ms;
    uint32_t failures;
    uint64_t rng;
};
void remote_retry_init(struct remote_retry *r, const struct remote_retry_policy *p,
                       uint64_t now_ms);
/* Time left before the deadline: the cap for the next attempt's timeout. */
uint64_t remote_retry_remaining_ms(const struct remote_retry *r, uint64_t now_ms);
/* An attempt failed with e at now_ms. true: try again after *wait_ms.
 * false: give up, *why says why ("not retryable", "output already
 * streamed", "attempts exhausted", "retry-after too long", "deadline"). */
bool remote_retry_next(struct remote_retry *r, const struct remote_error *e, uint64_t now_ms,
                       uint64_t *wait_ms, const char **why);

/* ---- Circuit breaker (one per endpoint) ----
 *
 *   CLOSED ──`failures` consecutive failures──▶ OPEN
 *   OPEN ──cooldown over, remote_breaker_allow()──▶ HALF_OPEN (one probe)
 *   HALF_OPEN ──success──▶ CLOSED (cooldown back to its base)
 *   HALF_OPEN ──failure──▶ OPEN (cooldown doubled, up to max_cooldown_ms)
 *   HALF_OPEN ──probe cancelled, or silent past probe_timeout_ms──▶ next probe may go
 *
 * Failures are unavailable, timeout, rate_limited and bad_response; any
 * other answer shows the endpoint alive and counts as success; cancelled
 * counts as neither. Opening on a Retry-After waits at least that long. */
enum remote_breaker_state {
    REMOTE_BREAKER_CLOSED = 0,
    REMOTE_BREAKER_OPEN,
    REMOTE_BREAKER_HALF_OPEN,
};
struct remote_breaker_policy {
    uint32_t failures;         /* 0: 5 */
    uint32_t cooldown_ms;      /* 0: 30000 */
    uint32_t max_cooldown_ms;  /* 0: 300000 */
    uint32_t probe_timeout_ms; /* 0: 120000 */
};
struct remote_breaker {
    struct remote_breaker_policy p; /* defaults filled in */
    enum remote_breaker_state state;
    uint32_t failures;    /* consecutive, while closed */
    uint32_t cooldown_ms; /* the current one */
    uint64_t open_until_ms;
    bool probing;
    uint64_t probe_ms; /* when the probe went */
};
void remote_breaker_init(struct remote_breaker *b, const struct remote_breaker_policy *p);
/* Whether the endpoint is cooling down now (no request would be allowed);
 * *retry_in_ms (may be NULL) gets the time until one would. No transition:
 * the router's immediate answer. */
bool remote_breaker_is_cooling(const struct remote_breaker *b, uint64_t now_ms,
                               uint64_t *retry_in_ms);
/* Ask before sending. true: go (in OPEN with the cooldown over this takes
 * the probe and moves to HALF_OPEN). false: cooling down. */
bool remote_breaker_allow(struct remote_breaker *b, uint64_t now_ms);
/* Report how a request that was allowed ended; e NULL or kind NONE: success. */
void remote_breaker_record(struct remote_breaker *b, const struct remote_error *e, uint64_t now_ms);
/* Whether e counts as a failure of the endpoint. */
bool remote_error_is_endpoint_failure(const struct remote_error *e);

#endif
