/* traces_otlp.c: the trace store as OTLP/HTTP JSON (protobuf JSON mapping)
 * for an OpenTelemetry collector. Spans come from traces_each_span one row
 * at a time and are rendered straight into the batch buffer, which is the
 * only thing that grows. Invariant: every byte sent is valid JSON and valid
 * UTF-8 whatever the database holds, and a batch leaves the buffer (sent,
 * or the export stops) before the next span is rendered into a full one. */
#include "traces_otlp.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* OTLP SpanKind and StatusCode values (the JSON mapping uses integers). */
enum { KIND_INTERNAL = 1, KIND_CLIENT = 3 };
enum { STATUS_UNSET = 0, STATUS_OK = 1, STATUS_ERROR = 2 };

void traces_otlp_options_default(struct traces_otlp_options *o)
{
    *o = (struct traces_otlp_options){
        .url = NULL,
        .service_name = "shoald",
        .batch_spans = 512,
        .max_attempts = 5,
        .backoff_ms = 200,
        .timeout_ms = 10000,
        .headers = NULL,
    };
}

struct exporter {
    const struct traces_otlp_options *o;
    CURL *h;
    struct curl_slist *headers;
    char *url;       /* what is requested (libcurl's copy, curl_free) */
    char where[512]; /* what messages show: no user info, no query */
    char errbuf[CURL_ERROR_SIZE];
    struct shoal_buf batch;   /* envelope head, then the spans so far */
    size_t head_len;          /* bytes of the envelope head */
    uint32_t n;               /* spans in the batch */
    struct shoal_buf scratch; /* one decoded attribute string or key */
    struct shoal_buf body;    /* the response body, at most TRACES_OTLP_RESPONSE_MAX */
    long retry_after_ms;      /* from the response headers; -1 when absent */
    bool clipped;             /* a string of the current span was cut */
    uint64_t rng;
    struct traces_otlp_stats st;
};

/* ---- JSON text ---- */

/* Append s[0..n) as a JSON string: at most TRACES_QUERY_STR_MAX bytes of
 * it (a cut sets x->clipped), control bytes escaped, each byte that is not
 * part of valid UTF-8 replaced by U+FFFD. NULL gives "". */
static enum shoal_err put_str(struct exporter *x, struct shoal_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        n = 0;
    size_t keep = n ? shoal_utf8_cut(s, n, TRACES_QUERY_STR_MAX) : 0;
    if (keep < n)
        x->clipped = true;
    enum shoal_err err = shoal_buf_reserve(b, keep + 2);
    if (err == SHOAL_OK)
        err = shoal_buf_append(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0, i = 0;
    while (i < keep && err == SHOAL_OK) {
        unsigned char c = p[i];
        size_t len = shoal_utf8_len(s + i, keep - i);
        if (len && c >= 0x20 && c != '"' && c != '\\') {
            i += len;
            continue;
        }
        err = shoal_buf_append(b, s + run, i - run);
        char esc[7] = {'\\', (char)c, 0};
        size_t en = 2;
        if (!len) {
            memcpy(esc, "\\ufffd", 6);
            en = 6;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            en = 6;
        }
        if (err == SHOAL_OK)
            err = shoal_buf_append(b, esc, en);
        i++;
        run = i;
    }
    if (err == SHOAL_OK)
        err = shoal_buf_append(b, s + run, keep - run);
    if (err == SHOAL_OK)
        err = shoal_buf_append(b, "\"", 1);
    return err;
}

static enum shoal_err put_text(struct exporter *x, struct shoal_buf *b, struct traces_text t)
{
    return put_str(x, b, t.p, t.n);
}

/* The shortest %.Ng that reads back as v (v finite). */
static void fmt_double(char *out, size_t n, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* Nanoseconds since the epoch as the decimal string proto3 JSON wants for
 * a fixed64: never an exponent. Times before the epoch give 0, times past
 * what fixed64 holds give its largest multiple of 1000. */
static void fmt_nanos(char out[32], int64_t us)
{
    uint64_t u = us <= 0 ? 0 : (uint64_t)us;
    if (u > UINT64_MAX / 1000)
        u = UINT64_MAX / 1000;
    snprintf(out, 32, "%llu", (unsigned long long)(u * 1000));
}

/* ---- ids ---- */

/* splitmix64's finalizer: a bijection on 64 bits with mix64(0) == 0. */
static uint64_t mix64(uint64_t v)
{
    v ^= v >> 30;
    v *= 0xbf58476d1ce4e5b9ULL;
    v ^= v >> 27;
    v *= 0x94d049bb133111ebULL;
    v ^= v >> 31;
    return v;
}

/* The trace id of a run: the high half is a bijection of run_id (ids are
 * positive, so it is never zero and runs of one database never collide);
 * the low half mixes in the start time, so a run id reused by another
 * database (or after retention emptied one) still gets a new trace. */
struct trace_id {
    uint64_t hi, lo;
};

static struct trace_id trace_id_of(int64_t run_id, int64_t started_us)
{
    struct trace_id t;
    t.hi = mix64((uint64_t)run_id);
    t.lo = mix64((uint64_t)started_us ^ mix64((uint64_t)run_id + 0x9e3779b97f4a7c15ULL));
    if (!t.hi && !t.lo)
        t.lo = 1;
    return t;
}

/* A span id: a bijection of the span id salted with its trace, so spans of
 * a trace never collide; the one zero it can give is moved. */
static uint64_t span_id_of(const struct trace_id *t, int64_t span_id)
{
    uint64_t v = mix64((uint64_t)span_id ^ t->lo);
    return v ? v : 0x5ba1ULL;
}

/* ---- attributes ---- */

static enum shoal_err put_key(struct exporter *x, struct shoal_buf *b, bool *first, const char *key,
                              size_t n)
{
    enum shoal_err err = shoal_buf_puts(b, *first ? "{\"key\":" : ",{\"key\":");
    if (err == SHOAL_OK)
        err = put_str(x, b, key, n);
    if (err == SHOAL_OK)
        err = shoal_buf_puts(b, ",\"value\":");
    *first = false;
    return err;
}

static enum shoal_err attr_str(struct exporter *x, struct shoal_buf *b, bool *first,
                               const char *key, struct traces_text v)
{
    enum shoal_err err = put_key(x, b, first, key, strlen(key));
    if (err == SHOAL_OK)
        err = shoal_buf_puts(b, "{\"stringValue\":");
    if (err == SHOAL_OK)
        err = put_text(x, b, v);
    if (err == SHOAL_OK)
        err = shoal_buf_puts(b, "}}");
    return err;
}

static enum shoal_err attr_int(struct exporter *x, struct shoal_buf *b, bool *first,
                               const char *key, int64_t v)
{
    enum shoal_err err = put_key(x, b, first, key, strlen(key));
    if (err == SHOAL_OK)
        err = shoal_buf_printf(b, "{\"intValue\":\"%lld\"}}", (long long)v);
    return err;
}

static enum shoal_err attr_true(struct exporter *x, struct shoal_buf *b, bool *first,
                                const char *key)
{
    enum shoal_err err = put_key(x, b, first, key, strlen(key));
    if (err == SHOAL_OK)
        err = shoal_buf_puts(b, "{\"boolValue\":true}}");
    return err;
}

/* Attribute names the exporter sets itself; stored ones of these names
 * are dropped so no key appears twice. */
static const char *const reserved[] = {
    "shoal.span.kind",     "shoal.run.agent",          "shoal.run.id",
    "shoal.span.id",       "shoal.span.open",          "shoal.span.truncated",
    "shoal.span.redacted", "shoal.span.clipped",       "shoal.span.parent_missing",
    "shoal.span.status",   "shoal.attributes.dropped",
};

static bool is_reserved(const char *k, size_t n)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(reserved); i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], k, n) == 0)
            return true;
    return false;
}

/* A recursive-descent reader of the stored attributes JSON that writes
 * OTLP AnyValues as it goes. INVALID means the text is not JSON (or nests
 * deeper than TRACES_OTLP_ATTR_DEPTH); the caller then rolls back. */
struct scan {
    const char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(struct scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static bool eat_word(struct scan *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = shoal_hex_digit(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Decode the JSON string at s->p into out (reset first). A lone surrogate
 * becomes U+FFFD; other bytes are kept as they are (put_str checks them). */
static enum shoal_err scan_str(struct scan *s, struct shoal_buf *out)
{
    shoal_buf_reset(out);
    if (!eat(s, '"'))
        return SHOAL_ERR_INVALID;
    for (;;) {
        const char *q = s->p;
        while (q < s->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
            q++;
        enum shoal_err err = shoal_buf_append(out, s->p, (size_t)(q - s->p));
        if (err != SHOAL_OK)
            return err;
        s->p = q;
        if (q == s->end || (unsigned char)*q < 0x20)
            return SHOAL_ERR_INVALID;
        s->p++;
        if (*q == '"')
            return SHOAL_OK;
        if (s->p == s->end)
            return SHOAL_ERR_INVALID;
        char e = *s->p++, c;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            c = e;
            break;
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        case 'u': {
            if (s->end - s->p < 4)
                return SHOAL_ERR_INVALID;
            int cp = hex4(s->p);
            if (cp < 0)
                return SHOAL_ERR_INVALID;
            s->p += 4;
            uint32_t u = (uint32_t)cp;
            if (u >= 0xD800 && u <= 0xDBFF && s->end - s->p >= 6 && s->p[0] == '\\' &&
                s->p[1] == 'u') {
                int lo = hex4(s->p + 2);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    u = 0x10000 + ((u - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    s->p += 6;
                }
            }
            if (u >= 0xD800 && u <= 0xDFFF)
                u = 0xFFFD;
            char enc[4];
            size_t k = shoal_utf8_encode(u, enc);
            if ((err = shoal_buf_append(out, enc, k)) != SHOAL_OK)
                return err;
            continue;
        }
        default:
            return SHOAL_ERR_INVALID;
        }
        if ((err = shoal_buf_append(out, &c, 1)) != SHOAL_OK)
            return err;
    }
}

static size_t digits(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && p[n] >= '0' && p[n] <= '9')
        n++;
    return n;
}

/* A JSON number as intValue (no fraction or exponent, fits int64) or
 * doubleValue; a number too large for a double is kept as its text. */
static enum shoal_err scan_number(struct exporter *x, struct scan *s, struct shoal_buf *b)
{
    const char *start = s->p, *q = s->p;
    bool integral = true;
    if (q < s->end && *q == '-')
        q++;
    size_t k = digits(q, s->end);
    if (k == 0 || (k > 1 && *q == '0'))
        return SHOAL_ERR_INVALID;
    q += k;
    if (q < s->end && *q == '.') {
        integral = false;
        k = digits(++q, s->end);
        if (k == 0)
            return SHOAL_ERR_INVALID;
        q += k;
    }
    if (q < s->end && (*q == 'e' || *q == 'E')) {
        integral = false;
        q++;
        if (q < s->end && (*q == '+' || *q == '-'))
            q++;
        k = digits(q, s->end);
        if (k == 0)
            return SHOAL_ERR_INVALID;
        q += k;
    }
    s->p = q;
    size_t len = (size_t)(q - start);
    char tok[512];
    if (len >= sizeof tok)
        return SHOAL_ERR_INVALID;
    memcpy(tok, start, len);
    tok[len] = '\0';
    if (integral) {
        int64_t v;
        if (shoal_parse_i64(tok, len, INT64_MIN, INT64_MAX, &v) == SHOAL_OK)
            return shoal_buf_printf(b, "{\"intValue\":\"%lld\"}", (long long)v);
        /* Beyond int64: a double, as JSON readers would take it. */
    }
    errno = 0;
    double v = strtod(tok, NULL);
    if (!isfinite(v)) {
        enum shoal_err err = shoal_buf_puts(b, "{\"stringValue\":");
        if (err == SHOAL_OK)
            err = put_str(x, b, tok, len);
        return err == SHOAL_OK ? shoal_buf_puts(b, "}") : err;
    }
    char num[40];
    fmt_double(num, sizeof num, v);
    return shoal_buf_printf(b, "{\"doubleValue\":%s}", num);
}

static enum shoal_err scan_value(struct exporter *x, struct scan *s, struct shoal_buf *b,
                                 unsigned depth, bool *skipped);

/* An object's members as {"key":..,"value":..} items into b. At the top
 * (top true) reserved keys are dropped. */
static enum shoal_err scan_members(struct exporter *x, struct scan *s, struct shoal_buf *b,
                                   unsigned depth, bool top, bool *first)
{
    if (!eat(s, '{'))
        return SHOAL_ERR_INVALID;
    if (eat(s, '}'))
        return SHOAL_OK;
    for (;;) {
        skip_ws(s);
        enum shoal_err err = scan_str(s, &x->scratch);
        if (err != SHOAL_OK)
            return err;
        if (!eat(s, ':'))
            return SHOAL_ERR_INVALID;
        size_t mark = b->len;
        bool was_first = *first, skipped = false;
        bool drop = top && is_reserved(x->scratch.data ? x->scratch.data : "", x->scratch.len);
        err = put_key(x, b, first, x->scratch.data, x->scratch.len);
        if (err == SHOAL_OK)
            err = scan_value(x, s, b, depth, &skipped);
        if (err == SHOAL_OK)
            err = shoal_buf_puts(b, "}");
        if (err != SHOAL_OK)
            return err;
        if (drop || skipped) {
            b->len = mark;
            b->data[mark] = '\0';
            *first = was_first;
        }
        if (eat(s, '}'))
            return SHOAL_OK;
        if (!eat(s, ','))
            return SHOAL_ERR_INVALID;
    }
}

/* One JSON value as an AnyValue: string, intValue (a string), doubleValue,
 * boolValue, arrayValue, kvlistValue. null has no AnyValue: *skipped says
 * so and nothing is written (an array drops it). */
static enum shoal_err scan_value(struct exporter *x, struct scan *s, struct shoal_buf *b,
                                 unsigned depth, bool *skipped)
{
    *skipped = false;
    skip_ws(s);
    if (s->p == s->end)
        return SHOAL_ERR_INVALID;
    enum shoal_err err;
    switch (*s->p) {
    case '"':
        if ((err = scan_str(s, &x->scratch)) != SHOAL_OK)
            return err;
        if ((err = shoal_buf_puts(b, "{\"stringValue\":")) != SHOAL_OK ||
            (err = put_str(x, b, x->scratch.data, x->scratch.len)) != SHOAL_OK)
            return err;
        return shoal_buf_puts(b, "}");
    case 't':
        if (!eat_word(s, "true"))
            return SHOAL_ERR_INVALID;
        return shoal_buf_puts(b, "{\"boolValue\":true}");
    case 'f':
        if (!eat_word(s, "false"))
            return SHOAL_ERR_INVALID;
        return shoal_buf_puts(b, "{\"boolValue\":false}");
    case 'n':
        if (!eat_word(s, "null"))
            return SHOAL_ERR_INVALID;
        *skipped = true;
        return SHOAL_OK;
    case '{': {
        if (depth >= TRACES_OTLP_ATTR_DEPTH)
            return SHOAL_ERR_INVALID;
        bool first = true;
        if ((err = shoal_buf_puts(b, "{\"kvlistValue\":{\"values\":[")) != SHOAL_OK ||
            (err = scan_members(x, s, b, depth + 1, false, &first)) != SHOAL_OK)
            return err;
        return shoal_buf_puts(b, "]}}");
    }
    case '[': {
        if (depth >= TRACES_OTLP_ATTR_DEPTH)
            return SHOAL_ERR_INVALID;
        s->p++;
        if ((err = shoal_buf_puts(b, "{\"arrayValue\":{\"values\":[")) != SHOAL_OK)
            return err;
        bool first = true;
        if (!eat(s, ']')) {
            for (;;) {
                size_t mark = b->len;
                bool skip;
                if (!first && (err = shoal_buf_puts(b, ",")) != SHOAL_OK)
                    return err;
                if ((err = scan_value(x, s, b, depth + 1, &skip)) != SHOAL_OK)
                    return err;
                if (skip) {
                    b->len = mark;
                    b->data[mark] = '\0';
                } else {
                    first = false;
                }
                if (eat(s, ']'))
                    break;
                if (!eat(s, ','))
                    return SHOAL_ERR_INVALID;
            }
        }
        return shoal_buf_puts(b, "]}}");
    }
    default:
        return scan_number(x, s, b);
    }
}

/* The stored attributes after the exporter's own. Text that is not a JSON
 * object, too large, or too deep is left out and named in
 * shoal.attributes.dropped instead. */
static enum shoal_err put_stored_attrs(struct exporter *x, struct shoal_buf *b, bool *first,
                                       struct traces_text t)
{
    const char *why = NULL;
    if (!t.p)
        return SHOAL_OK;
    if (t.n > TRACES_QUERY_ATTRS_MAX) {
        why = "too large";
    } else {
        size_t mark = b->len;
        bool was_first = *first;
        struct scan s = {t.p, t.p + t.n};
        enum shoal_err err = scan_members(x, &s, b, 0, true, first);
        if (err == SHOAL_OK) {
            skip_ws(&s);
            if (s.p != s.end)
                err = SHOAL_ERR_INVALID;
        }
        if (err == SHOAL_OK)
            return SHOAL_OK;
        if (err != SHOAL_ERR_INVALID)
            return err;
        b->len = mark;
        b->data[mark] = '\0';
        *first = was_first;
        why = "not a JSON object, or nested too deep";
    }
    return attr_str(x, b, first, "shoal.attributes.dropped",
                    (struct traces_text){why, strlen(why)});
}

/* ---- spans ---- */

static bool text_is(struct traces_text t, const char *s)
{
    return t.p && t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}

/* One span object, appended to x->batch (comma first unless it is the
 * batch's first). */
static enum shoal_err put_span(struct exporter *x, const struct traces_span_row *w)
{
    struct shoal_buf *b = &x->batch;
    struct trace_id t = trace_id_of(w->run_id, w->run_started_us);
    char start[32], end[32];
    int64_t end_us = w->ended && w->end_us > w->start_us ? w->end_us : w->start_us;
    fmt_nanos(start, w->start_us);
    fmt_nanos(end, end_us);
    x->clipped = false;

    enum shoal_err err =
        shoal_buf_printf(b, "%s{\"traceId\":\"%016llx%016llx\",\"spanId\":\"%016llx\"",
                         x->n ? "," : "", (unsigned long long)t.hi, (unsigned long long)t.lo,
                         (unsigned long long)span_id_of(&t, w->id));
    if (err == SHOAL_OK && w->parent_in_run)
        err = shoal_buf_printf(b, ",\"parentSpanId\":\"%016llx\"",
                               (unsigned long long)span_id_of(&t, w->parent_id));
    if (err == SHOAL_OK)
        err = shoal_buf_puts(b, ",\"name\":");
    if (err == SHOAL_OK)
        err = put_text(x, b, w->name);
    if (err == SHOAL_OK)
        err =
            shoal_buf_printf(b,
                             ",\"kind\":%d,\"startTimeUnixNano\":\"%s\",\"endTimeUnixNano\":\"%s\""
                             ",\"attributes\":[",
                             text_is(w->kind, "llm") ? KIND_CLIENT : KIND_INTERNAL, start, end);

    bool first = true;
    if (err == SHOAL_OK)
        err = attr_str(x, b, &first, "shoal.span.kind", w->kind);
    if (err == SHOAL_OK && w->agent.p)
        err = attr_str(x, b, &first, "shoal.run.agent", w->agent);
    if (err == SHOAL_OK)
        err = attr_int(x, b, &first, "shoal.run.id", w->run_id);
    if (err == SHOAL_OK)
        err = attr_int(x, b, &first, "shoal.span.id", w->id);
    if (err == SHOAL_OK && !w->ended)
        err = attr_true(x, b, &first, "shoal.span.open");
    if (err == SHOAL_OK && w->parent_id && !w->parent_in_run)
        err = attr_int(x, b, &first, "shoal.span.parent_missing", w->parent_id);
    if (err == SHOAL_OK && w->truncated)
        err = attr_true(x, b, &first, "shoal.span.truncated");
    if (err == SHOAL_OK && w->redacted)
        err = attr_true(x, b, &first, "shoal.span.redacted");
    bool cancelled = text_is(w->status, "cancelled");
    if (err == SHOAL_OK && cancelled)
        err = attr_str(x, b, &first, "shoal.span.status", w->status);
    if (err == SHOAL_OK)
        err = put_stored_attrs(x, b, &first, w->attrs);
    /* The status message is rendered below; count its cut here. */
    if (w->error.n > shoal_utf8_cut(w->error.p ? w->error.p : "", w->error.n, TRACES_QUERY_STR_MAX))
        x->clipped = true;
    if (err == SHOAL_OK && x->clipped)
        err = attr_true(x, b, &first, "shoal.span.clipped");

    int code = STATUS_UNSET;
    if (text_is(w->status, "ok"))
        code = STATUS_OK;
    else if (text_is(w->status, "error") || cancelled)
        code = STATUS_ERROR;
    if (err == SHOAL_OK)
        err = shoal_buf_printf(b, "],\"status\":{\"code\":%d", code);
    if (err == SHOAL_OK && code == STATUS_ERROR) {
        struct traces_text msg = w->error;
        if ((!msg.p || !msg.n) && cancelled)
            msg = (struct traces_text){"cancelled", 9};
        if (msg.p && msg.n) {
            err = shoal_buf_puts(b, ",\"message\":");
            if (err == SHOAL_OK)
                err = put_text(x, b, msg);
        }
    }
    if (err == SHOAL_OK)
        err = shoal_buf_puts(b, "}}");
    return err;
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    struct exporter *x = arg;
    size_t n = size * nmemb;
    size_t room = TRACES_OTLP_RESPONSE_MAX - x->body.len;
    /* Past the cap the rest is read and dropped, so the status and the
     * connection stay usable. */
    if (room && shoal_buf_append(&x->body, p, n < room ? n : room) != SHOAL_OK)
        return 0;
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct exporter *x = arg;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1, *e = p + n;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        int64_t sec;
        /* Seconds only; an HTTP-date leaves the backoff in charge. */
        if (shoal_parse_i64(v, (size_t)(e - v), 0, INT64_MAX, &sec) == SHOAL_OK)
            x->retry_after_ms =
                sec > TRACES_OTLP_DELAY_MAX_MS / 1000 ? TRACES_OTLP_DELAY_MAX_MS : (long)sec * 1000;
    }
    return n;
}

/* The first TRACES_OTLP_EXCERPT bytes of the response body, printable. */
static void excerpt(const struct shoal_buf *body, char *out, size_t n)
{
    if (!body->len) {
        shoal_strlcpy(out, "(empty body)", n);
        return;
    }
    size_t keep = shoal_utf8_cut(body->data, body->len, TRACES_OTLP_EXCERPT);
    if (keep >= n)
        keep = shoal_utf8_cut(body->data, keep, n - 1);
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)body->data[i];
        out[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    out[keep] = '\0';
    /* Trailing newlines read badly at the end of a message. */
    while (keep && out[keep - 1] == ' ')
        out[--keep] = '\0';
}

static uint64_t next_rand(struct exporter *x)
{
    /* xorshift64*: jitter only, not security. */
    x->rng ^= x->rng >> 12;
    x->rng ^= x->rng << 25;
    x->rng ^= x->rng >> 27;
    return x->rng * 2685821657736338717ULL;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The wait before attempt+1: Retry-After when the answer had one on a
 * 429/503, else backoff * 2^(attempt-1) capped, minus a random part of up
 * to half of it. */
static uint64_t retry_delay(struct exporter *x, unsigned attempt, long status)
{
    if ((status == 429 || status == 503) && x->retry_after_ms >= 0)
        return (uint64_t)x->retry_after_ms;
    uint64_t d = x->o->backoff_ms;
    for (unsigned i = 1; i < attempt && d < TRACES_OTLP_DELAY_MAX_MS; i++)
        d *= 2;
    if (d > TRACES_OTLP_DELAY_MAX_MS)
        d = TRACES_OTLP_DELAY_MAX_MS;
    return d - (d / 2 ? next_rand(x) % (d / 2 + 1) : 0);
}

/* Count and log a partialSuccess from a 2xx body. Anything unreadable is
 * ignored: the batch was accepted. */
static void partial_success(struct exporter *x)
{
    if (!x->body.len)
        return;
    cJSON *j = cJSON_ParseWithLength(x->body.data, x->body.len);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "partialSuccess");
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(ps, "rejectedSpans");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ps, "errorMessage");
    int64_t n = 0;
    /* int64 is a string in proto3 JSON; accept a number too. */
    if (cJSON_IsString(rej))
        shoal_parse_i64(rej->valuestring, strlen(rej->valuestring), 0, INT64_MAX, &n);
    else if (cJSON_IsNumber(rej) && rej->valuedouble > 0 && rej->valuedouble < 9e15)
        n = (int64_t)rej->valuedouble;
    if (n > (int64_t)x->n)
        n = x->n;
    const char *m = cJSON_IsString(msg) ? msg->valuestring : "";
    if (n > 0 || *m) {
        x->st.spans_rejected += (uint64_t)n;
        struct shoal_logline l;
        if (shoal_log_begin(&l, SHOAL_LOG_WARN, "otlp_partial_success")) {
            shoal_log_kv(&l, "url", "%s", x->where);
            shoal_log_kv(&l, "rejected_spans", "%lld", (long long)n);
            shoal_log_kv(&l, "batch_spans", "%u", x->n);
            shoal_log_kv(&l, "msg", "%.*s", (int)TRACES_OTLP_EXCERPT, m);
            shoal_log_end(&l);
        }
    }
    cJSON_Delete(j);
}

/* Transport errors that another attempt cannot fix. */
static bool curl_is_final(CURLcode cc)
{
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_WRITE_ERROR:
        return true;
    default:
        return false;
    }
}

/* POST the batch (closing its envelope), retrying as the header says;
 * on success the buffer is back to the envelope head. */
static enum shoal_err post_batch(struct exporter *x, struct shoal_diag *d)
{
    static const char tail[] = "]}]}]}";
    if (shoal_buf_append(&x->batch, tail, sizeof tail - 1) != SHOAL_OK)
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG,
                              "OTLP: batch of %u spans is too large for one request", x->n);
    char last[TRACES_OTLP_EXCERPT + 640];
    for (unsigned attempt = 1;; attempt++) {
        shoal_buf_reset(&x->body);
        x->retry_after_ms = -1;
        x->errbuf[0] = '\0';
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->batch.data);
        curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->batch.len);
        CURLcode cc = curl_easy_perform(x->h);
        long status = 0;
        if (cc == CURLE_OK) {
            curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
            if (status >= 200 && status <= 299)
                break;
            char ex[TRACES_OTLP_EXCERPT + 1];
            excerpt(&x->body, ex, sizeof ex);
            snprintf(last, sizeof last, "POST %s: HTTP %ld%s: %s", x->where, status,
                     status >= 300 && status <= 399 ? " (redirects are not followed)" : "", ex);
            if (status != 408 && status != 429 && (status < 500 || status > 599))
                return shoal_diag_set(d, SHOAL_ERR_PERM, "%s", last);
        } else {
            const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc);
            long os = 0;
            if (cc == CURLE_COULDNT_CONNECT)
                curl_easy_getinfo(x->h, CURLINFO_OS_ERRNO, &os);
            if (os)
                snprintf(last, sizeof last, "connect to %s: %s", x->where, strerror((int)os));
            else
                snprintf(last, sizeof last, "POST %s: %s", x->where, why);
            if (curl_is_final(cc))
                return shoal_diag_set(d, cc == CURLE_OUT_OF_MEMORY ? SHOAL_ERR_NOMEM : SHOAL_ERR_IO,
                                      "%s", last);
        }
        if (attempt >= x->o->max_attempts)
            return shoal_diag_set(d, SHOAL_ERR_IO, "%s (after %u attempt%s)", last, attempt,
                                  attempt == 1 ? "" : "s");
        sleep_ms(retry_delay(x, attempt, status));
        x->st.retries++;
    }
    x->st.spans_sent += x->n;
    x->st.batches_sent++;
    partial_success(x);
    x->batch.len = x->head_len;
    x->batch.data[x->head_len] = '\0';
    x->n = 0;
    return SHOAL_OK;
}

/* traces_each_span's callback: render, and send when the batch is full. */
static enum shoal_err on_span(const struct traces_span_row *w, void *arg, struct shoal_diag *d)
{
    struct exporter *x = arg;
    size_t mark = x->batch.len;
    enum shoal_err err = put_span(x, w);
    if (err == SHOAL_ERR_TOO_BIG && x->n) {
        /* Send what is there and start a batch with this span alone. */
        x->batch.len = mark;
        x->batch.data[mark] = '\0';
        if ((err = post_batch(x, d)) != SHOAL_OK)
            return err;
        err = put_span(x, w);
    }
    if (err == SHOAL_ERR_TOO_BIG)
        return shoal_diag_set(d, err,
                              "OTLP: span %lld of run %lld does not fit one request (%u bytes)",
                              (long long)w->id, (long long)w->run_id, TRACES_OTLP_REQUEST_MAX);
    if (err != SHOAL_OK)
        return shoal_diag_set(d, err, "OTLP: out of memory rendering span %lld", (long long)w->id);
    x->n++;
    if (x->n >= x->o->batch_spans || x->batch.len >= TRACES_OTLP_BATCH_BYTES)
        return post_batch(x, d);
    return SHOAL_OK;
}

/* ---- setup ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    /* Never cleaned up: other threads may still use libcurl. */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Check the URL, add /v1/traces when it has no path, and make the
 * printable form (scheme://host[:port]/path). */
static enum shoal_err resolve_url(struct exporter *x, struct shoal_diag *d)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    enum shoal_err err = SHOAL_ERR_INVALID;
    if (!u)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "OTLP: out of memory");
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, x->o->url, 0);
    if (uc != CURLUE_OK) {
        shoal_diag_set(d, err, "OTLP URL \"%.200s\": %s", x->o->url, curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        shoal_diag_set(d, err, "OTLP URL: expected http:// or https://, got %s://",
                       scheme ? scheme : "?");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || !path || !strcmp(path, "/") ||
        !*path) {
        curl_free(path);
        path = NULL;
        if (curl_url_set(u, CURLUPART_PATH, "/v1/traces", 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
            shoal_diag_set(d, err, "OTLP URL: cannot set the path");
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        shoal_diag_set(d, err, "OTLP URL: no host");
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* absent: the scheme's */
    if (curl_url_get(u, CURLUPART_URL, &x->url, 0) != CURLUE_OK) {
        shoal_diag_set(d, err, "OTLP URL: cannot render it");
        goto out;
    }
    snprintf(x->where, sizeof x->where, "%s://%s%s%s%s", scheme, host, port ? ":" : "",
             port ? port : "", path);
    err = SHOAL_OK;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return err;
}

static enum shoal_err check_options(const struct traces_otlp_options *o, struct shoal_diag *d)
{
    if (!o || !o->url || !*o->url)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "OTLP: no collector URL");
    if (o->batch_spans < 1 || o->batch_spans > TRACES_OTLP_BATCH_MAX)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "OTLP: batch of %u spans: expected 1..%u",
                              o->batch_spans, TRACES_OTLP_BATCH_MAX);
    if (o->max_attempts < 1 || o->max_attempts > TRACES_OTLP_ATTEMPTS_MAX)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "OTLP: %u attempts: expected 1..%u",
                              o->max_attempts, TRACES_OTLP_ATTEMPTS_MAX);
    if (o->backoff_ms > TRACES_OTLP_DELAY_MAX_MS)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "OTLP: backoff of %u ms: at most %u",
                              o->backoff_ms, TRACES_OTLP_DELAY_MAX_MS);
    if (o->timeout_ms < 1 || o->timeout_ms > TRACES_OTLP_TIMEOUT_MAX_MS)
        return shoal_diag_set(d, SHOAL_ERR_INVALID, "OTLP: timeout of %u ms: expected 1..%u",
                              o->timeout_ms, TRACES_OTLP_TIMEOUT_MAX_MS);
    for (size_t i = 0; o->headers && o->headers[i]; i++) {
        const char *h = o->headers[i], *colon = strchr(h, ':');
        bool ok = colon && colon > h && !strpbrk(h, "\r\n");
        for (const char *p = h; ok && p < colon; p++)
            ok = *p > 0x20 && *p < 0x7f;
        /* The value may be a secret: name the header by position only. */
        if (!ok)
            return shoal_diag_set(d, SHOAL_ERR_INVALID,
                                  "OTLP header %zu: expected \"Name: value\" on one line", i + 1);
    }
    return SHOAL_OK;
}

static enum shoal_err setup(struct exporter *x, struct shoal_diag *d)
{
    const struct traces_otlp_options *o = x->o;
    enum shoal_err err = resolve_url(x, d);
    if (err != SHOAL_OK)
        return err;
    /* "Expect:" spares large batches a 100-continue round trip. */
    static const char *const fixed[] = {"Content-Type: application/json", "Expect:", NULL};
    const char *const *lists[] = {fixed, o->headers};
    for (size_t k = 0; k < SHOAL_ARRAY_LEN(lists); k++) {
        for (size_t i = 0; lists[k] && lists[k][i]; i++) {
            struct curl_slist *n = curl_slist_append(x->headers, lists[k][i]);
            if (!n)
                return shoal_diag_set(d, SHOAL_ERR_NOMEM, "OTLP: out of memory");
            x->headers = n;
        }
    }
    if (!(x->h = curl_easy_init()))
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "OTLP: out of memory starting libcurl");
    CURL *h = x->h;
    curl_easy_setopt(h, CURLOPT_URL, x->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "shoal/" SHOAL_VERSION);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);

    err = shoal_buf_puts(&x->batch, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                                    "\"service.name\",\"value\":{\"stringValue\":");
    if (err == SHOAL_OK)
        err = put_str(x, &x->batch, o->service_name ? o->service_name : "shoald",
                      o->service_name ? strlen(o->service_name) : 6);
    if (err == SHOAL_OK)
        err = shoal_buf_puts(&x->batch, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"shoal\","
                                        "\"version\":\"" SHOAL_VERSION "\"},\"spans\":[");
    if (err != SHOAL_OK)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "OTLP: out of memory");
    x->head_len = x->batch.len;
    return SHOAL_OK;
}

enum shoal_err traces_otlp_export(struct traces_reader *r, int64_t since_us,
                                  const struct traces_otlp_options *o,
                                  struct traces_otlp_stats *stats, struct shoal_diag *d)
{
    struct exporter x = {.o = o, .retry_after_ms = -1};
    shoal_buf_init(&x.batch, TRACES_OTLP_REQUEST_MAX);
    shoal_buf_init(&x.scratch, TRACES_QUERY_ATTRS_MAX);
    shoal_buf_init(&x.body, TRACES_OTLP_RESPONSE_MAX);
    x.rng = (shoal_now_ms() << 20) ^ (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15ULL;
    enum shoal_err err;
    if (!r) {
        err = shoal_diag_set(d, SHOAL_ERR_INVALID, "OTLP: no trace reader");
        goto out;
    }
    if ((err = check_options(o, d)) != SHOAL_OK)
        goto out;
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        err =
            shoal_diag_set(d, SHOAL_ERR_IO, "OTLP: libcurl: %s", curl_easy_strerror(curl_init_rc));
        goto out;
    }
    if ((err = setup(&x, d)) != SHOAL_OK)
        goto out;
    if ((err = traces_each_span(r, since_us, on_span, &x, d)) != SHOAL_OK)
        goto out;
    if (x.n)
        err = post_batch(&x, d);
out:
    if (stats)
        *stats = x.st;
    if (x.h)
        curl_easy_cleanup(x.h);
    curl_slist_free_all(x.headers);
    curl_free(x.url);
    shoal_buf_fini(&x.batch);
    shoal_buf_fini(&x.scratch);
    shoal_buf_fini(&x.body);
    return err;
}
