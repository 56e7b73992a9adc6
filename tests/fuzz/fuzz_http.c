/* fuzz_http.c: libFuzzer target for request handling: daemon/http.c and
 * the routes in daemon/api.c. Parses the input as a stream of pipelined
 * requests (heads, then Content-Length or chunked bodies) under small
 * limits, checks the parser's invariants, requires that feeding each piece
 * split in two gives exactly the one-shot answer, and routes every parsed
 * request, requiring a known status and a JSON body. Any violation
 * abort()s so the fuzzer and the corpus replay both see it. */
#include "http.h"
#include "fuzz.h"
#include "server.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 8
#define MAX_REQUESTS 8

static const struct http_limits lim = {512, MAX_HEADERS, 256};

struct head_out {
    enum http_result res;
    int status;
    char msg[160];
    size_t consumed;
    struct http_request req;
    struct http_header headers[MAX_HEADERS];
};

static bool span_in(struct http_span s, size_t end)
{
    return (size_t)s.off + s.len <= end;
}

/* Parse buf[0, len) as one head, fed as buf[0, cut) then buf[0, len) when
 * 0 < cut < len. Each call gets an exact-size copy: reads past len and
 * offsets that do not survive a moved buffer both show up. */
static void head(const char *buf, size_t len, size_t cut, struct head_out *o)
{
    struct http_parser p;
    struct http_error err = {0, ""};
    memset(o, 0, sizeof(*o));
    http_parser_init(&p, &lim);
    size_t steps[2] = {cut, len};
    for (int i = (cut > 0 && cut < len) ? 0 : 1; i < 2; i++) {
        char *copy = malloc(steps[i] ? steps[i] : 1);
        ASSERT(copy);
        memcpy(copy, buf, steps[i]);
        o->consumed = (size_t)-1;
        o->res = http_parse_head(&p, copy, steps[i], o->headers, &o->req, &o->consumed, &err);
        free(copy);
        if (o->res != HTTP_AGAIN)
            break;
        ASSERT(o->consumed == (size_t)-1);
        ASSERT(p.scanned == (steps[i] < lim.header_bytes ? steps[i] : lim.header_bytes));
    }
    o->status = err.status;
    memcpy(o->msg, err.msg, sizeof(o->msg));
}

static void check_head(const char *buf, size_t len, const struct head_out *o)
{
    if (o->res == HTTP_AGAIN) {
        ASSERT(len < lim.header_bytes);
        return;
    }
    if (o->res == HTTP_ERROR) {
        ASSERT(o->status == 400 || o->status == 413 || o->status == 417 || o->status == 431 ||
               o->status == 501 || o->status == 505);
        ASSERT(o->msg[0] != '\0' && memchr(o->msg, '\0', sizeof(o->msg)) != NULL);
        ASSERT(strcmp(http_status_reason(o->status), "Unknown") != 0);
        return;
    }
    ASSERT(o->res == HTTP_DONE);
    const struct http_request *r = &o->req;
    size_t n = o->consumed;
    ASSERT(n >= 4 && n <= len && n <= lim.header_bytes);
    ASSERT(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    /* Strict line ends: every CR is followed by LF and every LF follows a CR. */
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\r')
            ASSERT(i + 1 < n && buf[i + 1] == '\n');
        if (buf[i] == '\n')
            ASSERT(i > 0 && buf[i - 1] == '\r');
    }
    ASSERT(r->headers == o->headers && r->n_headers <= MAX_HEADERS);
    ASSERT(r->method <= HTTP_METHOD_OTHER && r->method_name.len > 0);
    ASSERT(span_in(r->method_name, n) && span_in(r->target, n));
    ASSERT(r->method_name.off + r->method_name.len + 1 == r->target.off);
    ASSERT(r->target.len > 0 && (buf[r->target.off] == '/' || buf[r->target.off] == '*'));
    ASSERT(r->path.off == r->target.off && r->path.len <= r->target.len);
    ASSERT(r->query.off >= r->path.off + r->path.len && span_in(r->query, n) &&
           r->query.off + r->query.len <= r->target.off + r->target.len);
    for (uint32_t i = 0; i < r->target.len; i++)
        ASSERT(buf[r->target.off + i] > ' ' && buf[r->target.off + i] < 0x7f);
    ASSERT(r->version_minor <= 1);
    ASSERT(!(r->chunked && r->content_length >= 0));
    ASSERT(r->content_length >= -1 && r->content_length <= (int64_t)lim.body_bytes);
    ASSERT(!r->chunked || r->version_minor == 1);
    unsigned hosts = 0;
    for (uint32_t i = 0; i < r->n_headers; i++) {
        const struct http_header *h = &r->headers[i];
        ASSERT(h->name.len > 0 && span_in(h->name, n) && span_in(h->value, n));
        ASSERT(h->value.off >= h->name.off + h->name.len + 1);
        ASSERT(buf[h->name.off + h->name.len] == ':');
        for (uint32_t k = 0; k < h->value.len; k++) {
            unsigned char c = (unsigned char)buf[h->value.off + k];
            ASSERT((c >= 0x20 && c != 0x7f) || c == '\t');
        }
        if (h->value.len) {
            ASSERT(buf[h->value.off] != ' ' && buf[h->value.off] != '\t');
            char last = buf[h->value.off + h->value.len - 1];
            ASSERT(last != ' ' && last != '\t');
        }
        hosts += http_span_eq_nocase(buf, h->name, "host");
    }
    ASSERT(hosts <= 1 && (hosts == 1 || r->version_minor == 0));
    const struct http_header *h = http_request_header(r, buf, "host");
    ASSERT((h != NULL) == (hosts == 1));
}

static bool head_same(const struct head_out *a, const struct head_out *b)
{
    if (a->res != b->res)
        return false;
    if (a->res == HTTP_ERROR)
        return a->status == b->status && strcmp(a->msg, b->msg) == 0;
    if (a->res == HTTP_AGAIN)
        return true;
    if (a->consumed != b->consumed ||
        memcmp(&a->req.target, &b->req.target, sizeof(a->req.target)) != 0 ||
        a->req.n_headers != b->req.n_headers || a->req.method != b->req.method ||
        a->req.keep_alive != b->req.keep_alive || a->req.chunked != b->req.chunked ||
        a->req.content_length != b->req.content_length ||
        a->req.expect_continue != b->req.expect_continue)
        return false;
    return memcmp(a->headers, b->headers, a->req.n_headers * sizeof(a->headers[0])) == 0;
}

struct body_out {
    enum http_result res;
    int status;
    size_t consumed;
    struct shoal_buf body;
};

/* Decode a chunked body from buf[0, len), fed as [0, cut) then the rest
 * the way the server does it (unconsumed bytes carried over). */
static void chunked(const char *buf, size_t len, size_t cut, struct body_out *o)
{
    struct http_parser p;
    struct http_error err = {0, ""};
    http_parser_init(&p, &lim);
    shoal_buf_init(&o->body, 1 << 16);
    o->consumed = 0;
    o->res = HTTP_AGAIN;
    size_t steps[2] = {cut, len};
    for (int i = (cut > 0 && cut < len) ? 0 : 1; i < 2 && o->res == HTTP_AGAIN; i++) {
        size_t n = steps[i] - o->consumed;
        char *copy = malloc(n ? n : 1);
        ASSERT(copy);
        memcpy(copy, buf + o->consumed, n);
        size_t used = (size_t)-1;
        o->res = http_parse_chunked(&p, copy, n, &o->body, &used, &err);
        free(copy);
        if (o->res == HTTP_ERROR)
            break;
        ASSERT(used <= n);
        o->consumed += used;
        ASSERT(p.body_len <= lim.body_bytes);
    }
    o->status = o->res == HTTP_ERROR ? err.status : 0;
    if (o->res == HTTP_ERROR)
        ASSERT(o->status == 400 || o->status == 413 || o->status == 431);
    ASSERT(o->body.len <= lim.body_bytes && o->body.len <= p.body_len);
    if (o->res == HTTP_AGAIN)
        ASSERT(o->consumed == len);
    if (o->res == HTTP_DONE)
        ASSERT(o->consumed >= 5 && memcmp(buf + o->consumed - 2, "\r\n", 2) == 0);
}

/* Route a parsed request as the server would; the answer must be a status
 * we document and a body that is JSON. */
static void route(const char *buf, const struct http_request *req, const char *body,
                  size_t body_len)
{
    static struct config *cfg;
    static struct api_info info;
    if (!cfg) {
        ASSERT(config_defaults(&cfg, NULL) == SHOAL_OK);
        info.cfg = cfg;
        info.started_ms = shoal_now_ms();
    }
    struct api_request ar = {
        .method = req->method,
        .method_name = buf + req->method_name.off,
        .method_len = req->method_name.len,
        .path = buf + req->path.off,
        .path_len = req->path.len,
        .query = buf + req->query.off,
        .query_len = req->query.len,
        .body = body,
        .body_len = body_len,
    };
    struct shoal_buf out;
    shoal_buf_init(&out, 1u << 20);
    struct api_reply rep = {0, NULL};
    api_handle(&info, &ar, &out, &rep);
    /* 400 and 503: a POST body a route refuses (a chat request naming no
     * configured model, with no providers behind this harness). */
    ASSERT(rep.status == 200 || rep.status == 404 || rep.status == 405 ||
           ((rep.status == 400 || rep.status == 503) && ar.method == HTTP_METHOD_POST));
    ASSERT((rep.status == 405) == (rep.allow != NULL));
    cJSON *j = cJSON_ParseWithLength(shoal_buf_cstr(&out), out.len);
    ASSERT(j != NULL);
    cJSON_Delete(j);
    shoal_buf_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t off = 0;
    struct head_out *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    ASSERT(a && b);
    for (int n = 0; n < MAX_REQUESTS && off < size; n++) {
        const char *buf = in + off;
        size_t len = size - off;
        /* A split point derived from the data, so the fuzzer can steer it. */
        size_t cut = len ? (size_t)(data[off] * 31u + data[size - 1]) % len : 0;
        head(buf, len, 0, a);
        check_head(buf, len, a);
        head(buf, len, cut, b);
        ASSERT(head_same(a, b));
        if (a->res != HTTP_DONE)
            break;
        off += a->consumed;
        if (a->req.chunked) {
            struct body_out x, y;
            buf = in + off;
            len = size - off;
            cut = len ? (size_t)(data[size - 1] * 7u + n) % len : 0;
            chunked(buf, len, 0, &x);
            chunked(buf, len, cut, &y);
            ASSERT(x.res == y.res && x.status == y.status);
            if (x.res != HTTP_ERROR)
                ASSERT(x.consumed == y.consumed && x.body.len == y.body.len &&
                       (x.body.len == 0 || memcmp(x.body.data, y.body.data, x.body.len) == 0));
            enum http_result res = x.res;
            size_t used = x.consumed;
            if (res == HTTP_DONE)
                route(in + off - a->consumed, &a->req, x.body.data, x.body.len);
            shoal_buf_fini(&x.body);
            shoal_buf_fini(&y.body);
            if (res != HTTP_DONE)
                break;
            off += used;
        } else {
            size_t cl = a->req.content_length > 0 ? (size_t)a->req.content_length : 0;
            if (cl > size - off)
                break;
            route(in + off - a->consumed, &a->req, in + off, cl);
            off += cl;
        }
    }
    free(a);
    free(b);
    return 0;
}
