/* test_http.c: tests daemon/http.c. Tables of raw requests and chunked
 * bodies with the result, status and fields each must give; every case is
 * also fed byte by byte and in random splits, and must give exactly what the
 * one-shot parse gave (the parser keeps offsets, never rescans). */
#include "http.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 64

static const struct http_limits default_lim = {1024, 16, 4096};

/* ---- helpers ---- */

static uint64_t rng_state = 0x5eed0f5eed0a1ull;

static uint32_t rng(void)
{
    /* xorshift64*: fixed seed, so a failing split is reproducible. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Du) >> 32);
}

/* The span as a C string (static storage, rotated so a few can be live). */
static const char *sp(const char *base, struct http_span s)
{
    static char bufs[4][1024];
    static unsigned k;
    char *b = bufs[k++ % 4];
    size_t n = s.len < sizeof(bufs[0]) - 1 ? s.len : sizeof(bufs[0]) - 1;
    memcpy(b, base + s.off, n);
    b[n] = '\0';
    return b;
}

/* Everything one parse says, so two ways of feeding can be compared. */
struct outcome {
    enum http_result res;
    int status;
    char msg[160];
    size_t consumed;
    struct http_request req;
    struct http_header headers[MAX_HEADERS];
};

static bool span_same(struct http_span a, struct http_span b)
{
    return a.off == b.off && a.len == b.len;
}

static bool outcome_same(const struct outcome *a, const struct outcome *b)
{
    if (a->res != b->res)
        return false;
    if (a->res == HTTP_ERROR)
        return a->status == b->status && strcmp(a->msg, b->msg) == 0;
    if (a->res == HTTP_AGAIN)
        return true;
    const struct http_request *x = &a->req, *y = &b->req;
    if (a->consumed != b->consumed || x->method != y->method ||
        !span_same(x->method_name, y->method_name) || !span_same(x->target, y->target) ||
        !span_same(x->path, y->path) || !span_same(x->query, y->query) ||
        x->version_minor != y->version_minor || x->n_headers != y->n_headers ||
        x->keep_alive != y->keep_alive || x->chunked != y->chunked ||
        x->expect_continue != y->expect_continue || x->content_length != y->content_length)
        return false;
    for (uint32_t i = 0; i < x->n_headers; i++)
        if (!span_same(a->headers[i].name, b->headers[i].name) ||
            !span_same(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
}

/* One call on an exact-size copy of raw[0, n), so ASan sees any read past
 * len, and offsets must survive the buffer moving between calls. */
static void call_head(struct http_parser *p, const char *raw, size_t n, struct outcome *o)
{
    char *copy = malloc(n ? n : 1);
    memcpy(copy, raw, n);
    struct http_error err = {0, ""};
    o->consumed = (size_t)-1;
    o->res = http_parse_head(p, copy, n, o->headers, &o->req, &o->consumed, &err);
    if (o->res != HTTP_DONE)
        CHECK(o->consumed == (size_t)-1); /* outputs only on success */
    o->status = err.status;
    memcpy(o->msg, err.msg, sizeof(o->msg));
    free(copy);
}

static void parse_oneshot(const struct http_limits *lim, const char *raw, size_t len,
                          struct outcome *o)
{
    struct http_parser p;
    memset(o, 0, sizeof(*o));
    http_parser_init(&p, lim);
    call_head(&p, raw, len, o);
}

/* Feed raw in pieces: cuts[] are increasing lengths, the last equal to len.
 * Stops at the first answer that is not AGAIN, as the server does. */
static void parse_pieces(const struct http_limits *lim, const char *raw, const size_t *cuts,
                         size_t n_cuts, struct outcome *o)
{
    struct http_parser p;
    memset(o, 0, sizeof(*o));
    http_parser_init(&p, lim);
    for (size_t i = 0; i < n_cuts; i++) {
        call_head(&p, raw, cuts[i], o);
        if (o->res != HTTP_AGAIN)
            return;
        /* No rescans: the next call starts where this one stopped. */
        size_t want = cuts[i] < lim->header_bytes ? cuts[i] : lim->header_bytes;
        CHECK_EQ_INT(p.scanned, want);
    }
}

static size_t random_cuts(size_t len, size_t *cuts, size_t max)
{
    size_t n = 0, at = 0;
    while (at < len && n + 1 < max) {
        at += 1 + rng() % (len < 8 ? 2 : len / 4);
        if (at > len)
            at = len;
        cuts[n++] = at;
    }
    if (n == 0 || cuts[n - 1] != len)
        cuts[n++] = len;
    return n;
}

/* One-shot, byte by byte and five random splittings must agree. */
static void parse_all_ways(const struct http_limits *lim, const char *raw, size_t len,
                           struct outcome *o, const char *name)
{
    parse_oneshot(lim, raw, len, o);
    if (len == 0)
        return;
    size_t *cuts = malloc(len * sizeof(*cuts));
    struct outcome *other = malloc(sizeof(*other));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    parse_pieces(lim, raw, cuts, len, other);
    if (!outcome_same(o, other))
        fprintf(stderr, "byte-by-byte differs from one-shot: %s (%d/%d \"%s\" vs \"%s\")\n",
                name, o->status, other->status, o->msg, other->msg);
    CHECK(outcome_same(o, other));
    for (int round = 0; round < 5; round++) {
        size_t n = random_cuts(len, cuts, len);
        parse_pieces(lim, raw, cuts, n, other);
        if (!outcome_same(o, other))
            fprintf(stderr, "random split differs from one-shot: %s\n", name);
        CHECK(outcome_same(o, other));
    }
    free(other);
    free(cuts);
}

/* ---- the head table ---- */

/* Expected fields use 0 for "not checked", so the table needs no defaults:
 * M(GET) for a method, Y/N for flags, '0'/'1' for the minor version, CL(n)
 * for content_length (CL(-1): absent), NH(n) for the header count. */
#define M(x)  (HTTP_METHOD_##x + 1)
#define Y     'y'
#define N     'n'
#define CL(n) ((n) + 2)
#define NH(n) ((n) + 1)

struct head_case {
    const char *raw;
    size_t len; /* 0: strlen(raw) */
    enum http_result res;
    int status;
    const char *msg; /* substring of err.msg */
    /* fields checked on DONE (UNSET / NULL: not checked) */
    int method;
    const char *target, *path, *query;
    int minor, keep_alive, chunked, expect;
    long long cl;
    int n_headers;
    size_t tail;      /* bytes after the head (body, next request) */
    const char *hname, *hvalue; /* http_request_header(hname) must be hvalue */
};

#define H11 "HTTP/1.1\r\nHost: a\r\n"
#define DONE_(...) {.res = HTTP_DONE, __VA_ARGS__}
#define BAD(raw_, status_, msg_)                                                                 \
    {.raw = raw_, .res = HTTP_ERROR, .status = status_, .msg = msg_}
#define AGAIN(raw_) {.raw = raw_, .res = HTTP_AGAIN}

static const struct head_case head_cases[] = {
    /* request line and target forms */
    DONE_(.raw = "GET / " H11 "\r\n", .method = M(GET), .target = "/", .path = "/",
          .query = "", .minor = '1', .keep_alive = Y, .chunked = N, .expect = N, .cl = CL(-1),
          .n_headers = NH(1), .hname = "HOST", .hvalue = "a"),
    DONE_(.raw = "GET /p/a?x=1&y=2 " H11 "\r\n", .target = "/p/a?x=1&y=2", .path = "/p/a",
          .query = "x=1&y=2"),
    DONE_(.raw = "GET /a?b?c " H11 "\r\n", .path = "/a", .query = "b?c"),
    DONE_(.raw = "GET /a? " H11 "\r\n", .path = "/a", .query = ""),
    DONE_(.raw = "GET /%7e/~!$&'()*+,;=:@ " H11 "\r\n", .path = "/%7e/~!$&'()*+,;=:@"),
    DONE_(.raw = "HEAD /h " H11 "\r\n", .method = M(HEAD)),
    DONE_(.raw = "POST /v1/chat " H11 "Content-Length: 5\r\n\r\nhello",
          .method = M(POST), .cl = CL(5), .tail = 5, .n_headers = NH(2)),
    DONE_(.raw = "PUT /x " H11 "Content-Length: 0\r\n\r\n", .method = M(PUT), .cl = CL(0)),
    DONE_(.raw = "DELETE /x " H11 "\r\n", .method = M(DELETE)),
    DONE_(.raw = "PATCH /x " H11 "\r\n", .method = M(PATCH)),
    DONE_(.raw = "OPTIONS * " H11 "\r\n", .method = M(OPTIONS), .target = "*",
          .path = "*", .query = ""),
    DONE_(.raw = "OPTIONS /x " H11 "\r\n", .method = M(OPTIONS), .path = "/x"),
    DONE_(.raw = "BREW /pot " H11 "\r\n", .method = M(OTHER)),
    DONE_(.raw = "get / " H11 "\r\n", .method = M(OTHER)), /* methods are case-sensitive */
    DONE_(.raw = "GETS / " H11 "\r\n", .method = M(OTHER)),
    DONE_(.raw = "X-!#$%&'*+-.^_`|~ / " H11 "\r\n", .method = M(OTHER)),
    /* leading empty lines are skipped but consumed */
    DONE_(.raw = "\r\nGET /l " H11 "\r\n", .target = "/l"),
    DONE_(.raw = "\r\n\r\n\r\nGET /l " H11 "\r\n", .target = "/l", .n_headers = NH(1)),
    /* versions and keep-alive */
    DONE_(.raw = "GET / HTTP/1.0\r\n\r\n", .minor = '0', .keep_alive = N, .n_headers = NH(0)),
    DONE_(.raw = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", .minor = '0',
          .keep_alive = Y),
    DONE_(.raw = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", .keep_alive = Y),
    DONE_(.raw = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", .keep_alive = N),
    DONE_(.raw = "GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", .keep_alive = N),
    DONE_(.raw = "GET / " H11 "Connection: close\r\n\r\n", .keep_alive = N),
    DONE_(.raw = "GET / " H11 "Connection: Upgrade, CLOSE\r\n\r\n", .keep_alive = N),
    DONE_(.raw = "GET / " H11 "Connection: ,, close ,\r\n\r\n", .keep_alive = N),
    DONE_(.raw = "GET / " H11 "Connection: upgrade\r\nConnection: close\r\n\r\n",
          .keep_alive = N),
    DONE_(.raw = "GET / " H11 "Connection: closed\r\n\r\n", .keep_alive = Y),
    DONE_(.raw = "GET / " H11 "Connection: keep-alive\r\n\r\n", .keep_alive = Y),
    /* field values: trimmed, HTAB and obs-text allowed, empty allowed */
    DONE_(.raw = "GET / " H11 "X-Foo: \t value with  spaces \t\r\n\r\n", .hname = "x-foo",
          .hvalue = "value with  spaces"),
    DONE_(.raw = "GET / " H11 "X-Empty:\r\n\r\n", .hname = "X-Empty", .hvalue = ""),
    DONE_(.raw = "GET / " H11 "X-Empty: \t \r\n\r\n", .hname = "X-Empty", .hvalue = ""),
    DONE_(.raw = "GET / " H11 "X-Tab: a\tb\r\n\r\n", .hname = "x-tab", .hvalue = "a\tb"),
    DONE_(.raw = "GET / " H11 "X-Latin: caf\xc3\xa9\x80\xff\r\n\r\n", .hname = "x-latin",
          .hvalue = "caf\xc3\xa9\x80\xff"),
    DONE_(.raw = "GET / " H11 "X-!#$%&'*+-.^_`|~: v\r\n\r\n", .hname = "x-!#$%&'*+-.^_`|~",
          .hvalue = "v"),
    DONE_(.raw = "GET / " H11 "X-Colon: a:b: c\r\n\r\n", .hname = "x-colon", .hvalue = "a:b: c"),
    DONE_(.raw = "GET / HTTP/1.1\r\nhOsT: a.example:8080\r\n\r\n", .hname = "host",
          .hvalue = "a.example:8080"),
    DONE_(.raw = "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", .hvalue = "[::1]:80",
          .hname = "Host"),
    DONE_(.raw = "GET / HTTP/1.1\r\nHost:\r\n\r\n", .hname = "Host", .hvalue = ""),
    /* bodies */
    DONE_(.raw = "POST / " H11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
          .chunked = Y, .cl = CL(-1), .tail = 15),
    DONE_(.raw = "POST / " H11 "Transfer-Encoding: CHUNKED\r\n\r\n", .chunked = Y),
    DONE_(.raw = "POST / " H11 "Transfer-Encoding: , chunked ,\r\n\r\n", .chunked = Y),
    DONE_(.raw = "POST / " H11 "Content-Length: 007\r\n\r\n", .cl = CL(7)),
    DONE_(.raw = "POST / " H11 "Content-Length:  12 \r\n\r\n", .cl = CL(12)),
    DONE_(.raw = "POST / " H11 "Content-Length: 4096\r\n\r\n", .cl = CL(4096)),
    DONE_(.raw = "POST / " H11 "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n", .expect = Y,
          .cl = CL(3)),
    DONE_(.raw = "POST / " H11 "Expect: 100-Continue\r\n\r\n", .expect = Y),
    DONE_(.raw = "POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", .expect = N),
    /* pipelining: the head ends at the first blank line */
    DONE_(.raw = "GET /1 " H11 "\r\nGET /2 " H11 "\r\n", .target = "/1",
          .tail = sizeof("GET /2 " H11 "\r\n") - 1),
    DONE_(.raw = "GET /1 " H11 "\r\nGARBAGE\n\n", .target = "/1", .tail = 9),
    /* 16 fields is the limit */
    DONE_(.raw = "GET / " H11 "2: x\r\n3: x\r\n4: x\r\n5: x\r\n6: x\r\n7: x\r\n8: x\r\n9: x\r\n"
                 "10: x\r\n11: x\r\n12: x\r\n13: x\r\n14: x\r\n15: x\r\n16: x\r\n\r\n",
          .n_headers = NH(16)),

    /* incomplete */
    AGAIN("G"),
    AGAIN("\r\n"),
    AGAIN("\r\n\r\n"),
    AGAIN("GET / HTTP/1.1"),
    AGAIN("GET / HTTP/1.1\r"),
    AGAIN("GET / " H11),
    AGAIN("GET / " H11 "\r"),

    /* line endings */
    BAD("\n", 400, "bare LF"),
    BAD("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF"),
    BAD("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF"),
    BAD("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"),
    BAD("GET / HTTP/1.1\r\nHost: a\n\n", 400, "bare LF"),
    BAD("\r\n\nGET / " H11 "\r\n", 400, "bare LF"),
    BAD("GET / " H11 "X: a\rb\r\n\r\n", 400, "bare CR"),
    BAD("GET / " H11 "X: a\r\r\n\r\n", 400, "bare CR"),
    BAD("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid character in request-target"),
    BAD("\r\rGET / " H11 "\r\n", 400, "invalid request method"),
    BAD("\rGET / " H11 "\r\n", 400, "invalid request method"),
    /* request line */
    BAD("GET  / " H11 "\r\n", 400, "exactly one space"),
    BAD("GET /  " H11 "\r\n", 400, "invalid HTTP version"),
    BAD("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD(" GET / " H11 "\r\n", 400, "invalid request method"),
    BAD("GET\t/ " H11 "\r\n", 400, "invalid request method"),
    BAD("G(T / " H11 "\r\n", 400, "invalid request method"),
    BAD("GET /a b " H11 "\r\n", 400, "invalid HTTP version"),
    BAD("GET /\x7f " H11 "\r\n", 400, "invalid character in request-target"),
    BAD("GET /caf\xc3\xa9 " H11 "\r\n", 400, "invalid character in request-target"),
    BAD("GET /a\tb " H11 "\r\n", 400, "invalid character in request-target"),
    BAD("GET http://a/ " H11 "\r\n", 400, "origin-form"),
    BAD("CONNECT a:443 " H11 "\r\n", 400, "origin-form"),
    BAD("GET * " H11 "\r\n", 400, "only allowed with OPTIONS"),
    BAD("OPTIONS *x " H11 "\r\n", 400, "origin-form"),
    BAD("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "not supported"),
    BAD("GET / HTTP/0.9\r\n\r\n", 505, "not supported"),
    BAD("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "not supported"),
    BAD("GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505, "not supported"),
    BAD("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET / HTTP/11\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET / HTTP/2\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET / HTTP/1\r\nHost: a\r\n\r\n", 400, "invalid HTTP version"),
    BAD("GET /\r\n\r\n", 400, "missing HTTP version"),
    BAD("GET\r\n\r\n", 400, "malformed request line"),
    BAD("GET \r\n\r\n", 400, "missing request-target"),
    BAD("\x16\x03\x01\x02\x01\x01\xfc\x03\x03\r\n\r\n", 400, "invalid request method"),
    /* header field syntax */
    BAD("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obs-fold"),
    BAD("GET / " H11 "X: a\r\n b\r\n\r\n", 400, "obs-fold"),
    BAD("GET / " H11 "X: a\r\n\tb\r\n\r\n", 400, "obs-fold"),
    BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace between header field name"),
    BAD("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400, "whitespace between header field name"),
    BAD("GET / " H11 "NoColon\r\n\r\n", 400, "without colon"),
    BAD("GET / " H11 ": v\r\n\r\n", 400, "empty header field name"),
    BAD("GET / " H11 "X(y): z\r\n\r\n", 400, "invalid character in header field name"),
    BAD("GET / " H11 "X\x80: z\r\n\r\n", 400, "invalid character in header field name"),
    BAD("GET / " H11 "X: a\x01z\r\n\r\n", 400, "control character"),
    BAD("GET / " H11 "X: a\x7fz\r\n\r\n", 400, "control character"),
    {.raw = "GET / " H11 "X: a\0z\r\n\r\n", .len = sizeof("GET / " H11 "X: a\0z\r\n\r\n") - 1,
     .res = HTTP_ERROR, .status = 400, .msg = "control character"},
    {.raw = "GET /\0 " H11 "\r\n", .len = sizeof("GET /\0 " H11 "\r\n") - 1, .res = HTTP_ERROR,
     .status = 400, .msg = "invalid character in request-target"},
    BAD("GET / " H11 "2: x\r\n3: x\r\n4: x\r\n5: x\r\n6: x\r\n7: x\r\n8: x\r\n9: x\r\n"
        "10: x\r\n11: x\r\n12: x\r\n13: x\r\n14: x\r\n15: x\r\n16: x\r\n17: x\r\n\r\n",
        431, "too many header fields"),
    /* Host */
    BAD("GET / HTTP/1.1\r\n\r\n", 400, "missing Host"),
    BAD("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400, "missing Host"),
    BAD("GET / " H11 "Host: a\r\n\r\n", 400, "more than one Host"),
    BAD("GET / " H11 "host: b\r\n\r\n", 400, "more than one Host"),
    BAD("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
    BAD("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host"),
    BAD("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host"),
    BAD("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "invalid Host"),
    /* Content-Length */
    BAD("POST / " H11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
        "duplicate Content-Length"),
    BAD("POST / " H11 "content-length: 5\r\nCONTENT-LENGTH: 6\r\n\r\n", 400,
        "duplicate Content-Length"),
    BAD("POST / " H11 "Content-Length: +5\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 5 5\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 5,5\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 5, 5\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 0x10\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 1.0\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 1e3\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length:\r\n\r\n", 400, "invalid Content-Length"),
    BAD("POST / " H11 "Content-Length: 99999999999999999999\r\n\r\n", 400,
        "invalid Content-Length (overflow)"),
    BAD("POST / " H11 "Content-Length: 9223372036854775808\r\n\r\n", 400,
        "invalid Content-Length (overflow)"),
    BAD("POST / " H11 "Content-Length: 9223372036854775807\r\n\r\n", 413, "too large"),
    BAD("POST / " H11 "Content-Length: 4097\r\n\r\n", 413, "request body too large"),
    /* Transfer-Encoding */
    BAD("POST / " H11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
        "Content-Length with Transfer-Encoding"),
    BAD("POST / " H11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400,
        "Content-Length with Transfer-Encoding"),
    BAD("POST / " H11 "Transfer-Encoding: chunked\r\nContent-Length: 99999\r\n\r\n", 400,
        "Content-Length with Transfer-Encoding"),
    BAD("POST / " H11 "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported"),
    BAD("POST / " H11 "Transfer-Encoding: identity\r\n\r\n", 501, "unsupported"),
    BAD("POST / " H11 "Transfer-Encoding: gzip\r\n\r\n", 501, "unsupported"),
    BAD("POST / " H11 "Transfer-Encoding: chunked;q=1\r\n\r\n", 501, "unsupported"),
    BAD("POST / " H11 "Transfer-Encoding: xchunked\r\n\r\n", 501, "unsupported"),
    BAD("POST / " H11 "Transfer-Encoding: chunked, gzip\r\n\r\n", 400, "final coding"),
    BAD("POST / " H11 "Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "more than once"),
    BAD("POST / " H11 "Transfer-Encoding:\r\n\r\n", 400, "empty Transfer-Encoding"),
    BAD("POST / " H11 "Transfer-Encoding: ,\r\n\r\n", 400, "empty Transfer-Encoding"),
    BAD("POST / " H11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
        "duplicate Transfer-Encoding"),
    BAD("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0"),
    BAD("POST / " H11 "Transfer-Encoding : chunked\r\n\r\n", 400, "whitespace between"),
    BAD("POST / " H11 "Transfer-Encoding: chunked\r\n chunked\r\n\r\n", 400, "obs-fold"),
    /* Expect */
    BAD("POST / " H11 "Expect: 200-ok\r\n\r\n", 417, "Expect"),
    BAD("POST / " H11 "Expect: 100-continue, x\r\n\r\n", 417, "Expect"),
    BAD("POST / " H11 "Expect:\r\n\r\n", 417, "Expect"),
    BAD("POST / HTTP/1.0\r\nExpect: foo\r\n\r\n", 417, "Expect"),
};

static void check_head_case(const struct head_case *c, size_t idx)
{
    size_t len = c->len ? c->len : strlen(c->raw);
    struct outcome *o = malloc(sizeof(*o));
    char name[64];
    snprintf(name, sizeof(name), "head case %zu", idx);
    parse_all_ways(&default_lim, c->raw, len, o, name);

    if (o->res != c->res)
        fprintf(stderr, "%s: result %d, want %d (%d %s)\n", name, o->res, c->res, o->status,
                o->msg);
    CHECK_EQ_INT(o->res, c->res);
    if (c->res == HTTP_ERROR && o->res == HTTP_ERROR) {
        if (o->status != c->status)
            fprintf(stderr, "%s: status %d \"%s\", want %d\n", name, o->status, o->msg,
                    c->status);
        CHECK_EQ_INT(o->status, c->status);
        CHECK_CONTAINS(o->msg, c->msg);
    }
    if (c->res != HTTP_DONE || o->res != HTTP_DONE) {
        free(o);
        return;
    }
    const struct http_request *r = &o->req;
    CHECK_EQ_INT(o->consumed, len - c->tail);
    CHECK(r->headers == o->headers);
    if (c->method)
        CHECK_EQ_INT(r->method + 1, c->method);
    if (c->target)
        CHECK_STR(sp(c->raw, r->target), c->target);
    if (c->path)
        CHECK_STR(sp(c->raw, r->path), c->path);
    if (c->query)
        CHECK_STR(sp(c->raw, r->query), c->query);
    if (c->minor)
        CHECK_EQ_INT(r->version_minor, c->minor - '0');
    if (c->keep_alive)
        CHECK_EQ_INT(r->keep_alive, c->keep_alive == Y);
    if (c->chunked)
        CHECK_EQ_INT(r->chunked, c->chunked == Y);
    if (c->expect)
        CHECK_EQ_INT(r->expect_continue, c->expect == Y);
    if (c->cl)
        CHECK_EQ_INT(r->content_length, c->cl - 2);
    if (c->n_headers)
        CHECK_EQ_INT(r->n_headers, c->n_headers - 1);
    if (c->hname) {
        const struct http_header *h = http_request_header(r, c->raw, c->hname);
        CHECK(h != NULL);
        if (h)
            CHECK_STR(sp(c->raw, h->value), c->hvalue);
    }
    /* Spans stay inside the head; the method span names the method. */
    CHECK(r->target.off + r->target.len <= o->consumed);
    CHECK(r->path.off >= r->target.off && r->path.off + r->path.len <= o->consumed);
    CHECK(r->query.off + r->query.len <= r->target.off + r->target.len);
    CHECK(r->method_name.len > 0 && r->method_name.off < r->target.off);
    free(o);
}

static void test_head_table(void)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(head_cases); i++)
        check_head_case(&head_cases[i], i);
}

/* ---- size limits on the head ---- */

/* "GET / HTTP/1.1\r\nHost: a\r\nX: xxx...\r\n\r\n" of exactly total bytes. */
static char *head_of_size(size_t total)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    char *b = malloc(total + 1);
    size_t n = sizeof(pre) - 1;
    memcpy(b, pre, n);
    memset(b + n, 'x', total - n - 4);
    memcpy(b + total - 4, "\r\n\r\n", 4);
    b[total] = '\0';
    return b;
}

static void test_head_limits(void)
{
    struct outcome *o = malloc(sizeof(*o));
    size_t hb = default_lim.header_bytes;

    char *b = head_of_size(hb);
    parse_all_ways(&default_lim, b, hb, o, "head of exactly header_bytes");
    CHECK_EQ_INT(o->res, HTTP_DONE);
    CHECK_EQ_INT(o->consumed, hb);
    free(b);

    b = head_of_size(hb + 1);
    parse_all_ways(&default_lim, b, hb + 1, o, "head one over header_bytes");
    CHECK_EQ_INT(o->res, HTTP_ERROR);
    CHECK_EQ_INT(o->status, 431);
    CHECK_CONTAINS(o->msg, "request head too large");
    free(b);

    /* A head within the limit is fine even when the buffer holds more. */
    b = malloc(2 * hb);
    char *h = head_of_size(hb - 10);
    memcpy(b, h, hb - 10);
    memset(b + hb - 10, 'B', hb + 10);
    parse_oneshot(&default_lim, b, 2 * hb, o);
    CHECK_EQ_INT(o->res, HTTP_DONE);
    CHECK_EQ_INT(o->consumed, hb - 10);
    free(h);

    /* An endless request line: 431 once header_bytes arrived, not before. */
    memset(b, 'A', 2 * hb);
    memcpy(b, "GET /", 5);
    parse_oneshot(&default_lim, b, hb - 1, o);
    CHECK_EQ_INT(o->res, HTTP_AGAIN);
    parse_oneshot(&default_lim, b, hb, o);
    CHECK_EQ_INT(o->res, HTTP_ERROR);
    CHECK_EQ_INT(o->status, 431);
    CHECK_CONTAINS(o->msg, "request line too long");
    parse_all_ways(&default_lim, b, 2 * hb, o, "endless request line");
    CHECK_EQ_INT(o->status, 431);

    /* Leading empty lines count toward header_bytes. */
    for (size_t i = 0; i + 1 < 2 * hb; i += 2)
        memcpy(b + i, "\r\n", 2);
    parse_all_ways(&default_lim, b, 2 * hb, o, "endless empty lines");
    CHECK_EQ_INT(o->res, HTTP_ERROR);
    CHECK_EQ_INT(o->status, 431);
    free(b);

    /* Many header lines: 431 as soon as one too many is complete. */
    struct http_limits lim = default_lim;
    lim.header_count = 2;
    const char *three = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n";
    parse_all_ways(&lim, three, strlen(three), o, "three fields, limit two");
    CHECK_EQ_INT(o->res, HTTP_ERROR);
    CHECK_EQ_INT(o->status, 431);
    CHECK_CONTAINS(o->msg, "too many header fields");
    const char *two = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n";
    parse_all_ways(&lim, two, strlen(two), o, "two fields, limit two");
    CHECK_EQ_INT(o->res, HTTP_DONE);
    CHECK_EQ_INT(o->req.n_headers, 2);

    lim.body_bytes = 0;
    const char *cl1 = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n";
    parse_oneshot(&lim, cl1, strlen(cl1), o);
    CHECK_EQ_INT(o->status, 413);
    free(o);
}

/* A slow-drip client: a large head one byte per call must take linear time
 * (scanned advances with len; a rescan would make this quadratic). */
static void test_head_drip(void)
{
    const size_t total = 512 * 1024;
    struct http_limits lim = {(uint32_t)total, 16, 0};
    char *b = head_of_size(total);
    struct http_header hs[16];
    struct http_request req;
    struct http_parser p;
    struct http_error err;
    size_t consumed = 0;
    enum http_result res = HTTP_AGAIN;
    size_t n = 0;
    bool scanned_ok = true;
    http_parser_init(&p, &lim);
    while (res == HTTP_AGAIN && n < total) {
        n++;
        res = http_parse_head(&p, b, n, hs, &req, &consumed, &err);
        if (res == HTTP_AGAIN && p.scanned != n)
            scanned_ok = false;
    }
    CHECK(scanned_ok);
    CHECK_EQ_INT(res, HTTP_DONE);
    CHECK_EQ_INT(n, total);
    CHECK_EQ_INT(consumed, total);
    CHECK_EQ_INT(req.n_headers, 2);
    free(b);
}

/* Two and three requests back to back: each head is consumed exactly. */
static void test_pipeline(void)
{
    static const char raw[] = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                              "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3;x=y\r\ndef\r\n0\r\nT: v\r\n\r\n"
                              "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    static const char *const targets[] = {"/a", "/b", "/c"};
    size_t len = sizeof(raw) - 1, off = 0;
    struct http_header hs[16];
    struct http_request req;
    struct http_parser p;
    struct http_error err;
    struct shoal_buf body;
    shoal_buf_init(&body, 1 << 20);
    for (int i = 0; i < 3; i++) {
        size_t consumed = 0;
        http_parser_init(&p, &default_lim);
        CHECK_EQ_INT(http_parse_head(&p, raw + off, len - off, hs, &req, &consumed, &err),
                     HTTP_DONE);
        CHECK_STR(sp(raw + off, req.target), targets[i]);
        off += consumed;
        shoal_buf_reset(&body);
        if (req.chunked) {
            CHECK_EQ_INT(http_parse_chunked(&p, raw + off, len - off, &body, &consumed, &err),
                         HTTP_DONE);
            CHECK_STR(shoal_buf_cstr(&body), "def");
            off += consumed;
        } else if (req.content_length > 0) {
            CHECK_EQ_INT(memcmp(raw + off, "abc", 3), 0);
            off += (size_t)req.content_length;
        }
        CHECK_EQ_INT(req.keep_alive, i != 2);
    }
    CHECK_EQ_INT(off, len);
    shoal_buf_fini(&body);
}

/* ---- chunked bodies ---- */

struct chunk_outcome {
    enum http_result res;
    int status;
    char msg[160];
    size_t consumed; /* total over all calls */
    char payload[8192];
    size_t payload_len;
};

/* Feed raw in pieces ending at cuts[] as the server does: keep the bytes
 * not yet consumed, add the new ones, call again. Each call sees an
 * exact-size copy so ASan catches reads past len. */
static void chunk_pieces(const struct http_limits *lim, const char *raw, const size_t *cuts,
                         size_t n_cuts, struct chunk_outcome *o)
{
    struct http_parser p;
    struct shoal_buf body;
    size_t done = 0; /* bytes of raw consumed */
    memset(o, 0, sizeof(*o));
    http_parser_init(&p, lim);
    shoal_buf_init(&body, 1 << 20);
    o->res = HTTP_AGAIN;
    for (size_t i = 0; i < n_cuts && o->res == HTTP_AGAIN; i++) {
        size_t n = cuts[i] - done;
        char *copy = malloc(n ? n : 1);
        memcpy(copy, raw + done, n);
        struct http_error err = {0, ""};
        size_t consumed = (size_t)-1;
        o->res = http_parse_chunked(&p, copy, n, &body, &consumed, &err);
        free(copy);
        if (o->res == HTTP_ERROR) {
            o->status = err.status;
            memcpy(o->msg, err.msg, sizeof(o->msg));
            break;
        }
        CHECK(consumed <= n);
        done += consumed;
    }
    o->consumed = done;
    o->payload_len = body.len < sizeof(o->payload) ? body.len : sizeof(o->payload);
    if (body.len)
        memcpy(o->payload, body.data, o->payload_len);
    shoal_buf_fini(&body);
}

static bool chunk_same(const struct chunk_outcome *a, const struct chunk_outcome *b)
{
    if (a->res != b->res)
        return false;
    if (a->res == HTTP_ERROR)
        return a->status == b->status && strcmp(a->msg, b->msg) == 0;
    return a->consumed == b->consumed && a->payload_len == b->payload_len &&
           memcmp(a->payload, b->payload, a->payload_len) == 0;
}

static void chunk_all_ways(const struct http_limits *lim, const char *raw, size_t len,
                           struct chunk_outcome *o, const char *name)
{
    size_t one = len;
    chunk_pieces(lim, raw, &one, 1, o);
    if (len == 0)
        return;
    size_t *cuts = malloc(len * sizeof(*cuts));
    struct chunk_outcome *other = malloc(sizeof(*other));
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    chunk_pieces(lim, raw, cuts, len, other);
    if (!chunk_same(o, other))
        fprintf(stderr, "chunked byte-by-byte differs from one-shot: %s\n", name);
    CHECK(chunk_same(o, other));
    for (int round = 0; round < 5; round++) {
        size_t n = random_cuts(len, cuts, len);
        chunk_pieces(lim, raw, cuts, n, other);
        if (!chunk_same(o, other))
            fprintf(stderr, "chunked random split differs from one-shot: %s\n", name);
        CHECK(chunk_same(o, other));
    }
    free(other);
    free(cuts);
}

struct chunk_case {
    const char *raw;
    enum http_result res;
    int status;
    const char *msg;
    const char *payload; /* on DONE and AGAIN */
    size_t tail;         /* bytes after the body (next request) */
    uint64_t body_bytes; /* 0: default */
};

static const struct chunk_case chunk_cases[] = {
    {"5\r\nhello\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "hello", 0, 0},
    {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "hello world", 0, 0},
    {"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "abc", 0, 0},
    {"A\r\n0123456789\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "0123456789", 0, 0},
    {"a\r\n0123456789\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "0123456789", 0, 0},
    {"00005\r\nhello\r\n000\r\n\r\n", HTTP_DONE, 0, NULL, "hello", 0, 0},
    {"000000000000005\r\nhello\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "hello", 0, 0},
    {"0\r\n\r\n", HTTP_DONE, 0, NULL, "", 0, 0},
    {"2\r\n\r\n\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "\r\n", 0, 0},
    /* extensions */
    {"5;name=value\r\nhello\r\n0;last\r\n\r\n", HTTP_DONE, 0, NULL, "hello", 0, 0},
    {"5 ;a=\"q s\"\r\nhello\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "hello", 0, 0},
    {"5\t; a ; b=c\r\nhello\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "hello", 0, 0},
    /* trailers are parsed and dropped */
    {"3\r\nabc\r\n0\r\nX-Trailer: v\r\nY:w\r\n\r\n", HTTP_DONE, 0, NULL, "abc", 0, 0},
    {"0\r\nX-Empty:\r\n\r\n", HTTP_DONE, 0, NULL, "", 0, 0},
    /* the next request is not consumed */
    {"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n", HTTP_DONE, 0, NULL, "abc", 16, 0},
    {"0\r\n\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "", 5, 0},
    /* body limit: exactly at the cap is fine */
    {"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", HTTP_DONE, 0, NULL, "helloabc", 0, 8},
    /* incomplete */
    {"5\r\nhel", HTTP_AGAIN, 0, NULL, "hel", 0, 0},
    {"5\r\nhello\r", HTTP_AGAIN, 0, NULL, "hello", 0, 0},
    {"5\r\nhello\r\n0\r\n\r", HTTP_AGAIN, 0, NULL, "hello", 0, 0},
    {"5\r\nhello\r\n0\r\nX: y\r\n", HTTP_AGAIN, 0, NULL, "hello", 0, 0},
    {"ff", HTTP_AGAIN, 0, NULL, "", 0, 0},
    /* malformed sizes */
    {"\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"x\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"-1\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"+1\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"0x5\r\nhello\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {" 5\r\nhello\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"5 \r\nhello\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"5 5\r\nhello\r\n", HTTP_ERROR, 400, "invalid chunk size", NULL, 0, 0},
    {"5\nhello\r\n", HTTP_ERROR, 400, "bare LF", NULL, 0, 0},
    {"5\rhello\r\n", HTTP_ERROR, 400, "bare CR", NULL, 0, 0},
    {"5;a\nhello\r\n", HTTP_ERROR, 400, "bare LF", NULL, 0, 0},
    {"5;a\x01\r\nhello\r\n", HTTP_ERROR, 400, "chunk extension", NULL, 0, 0},
    {"0000000000000005\r\nhello\r\n", HTTP_ERROR, 400, "chunk size too large", NULL, 0, 0},
    {"ffffffffffffffffff\r\n", HTTP_ERROR, 400, "chunk size too large", NULL, 0, 0},
    {"fffffffffffffff\r\n", HTTP_ERROR, 413, "too large", NULL, 0, 0},
    /* data not followed by CRLF */
    {"5\r\nhelloX\r\n0\r\n\r\n", HTTP_ERROR, 400, "missing CRLF after chunk data", NULL, 0, 0},
    {"5\r\nhello\rX0\r\n\r\n", HTTP_ERROR, 400, "missing CRLF after chunk data", NULL, 0, 0},
    {"5\r\nhello\n0\r\n\r\n", HTTP_ERROR, 400, "missing CRLF after chunk data", NULL, 0, 0},
    {"3\r\nhello\r\n0\r\n\r\n", HTTP_ERROR, 400, "missing CRLF after chunk data", NULL, 0, 0},
    /* too much payload */
    {"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", HTTP_ERROR, 413, "too large", NULL, 0, 8},
    {"9\r\n", HTTP_ERROR, 413, "too large", NULL, 0, 8},
    /* trailers */
    {"0\r\nX: a\r\n b\r\n\r\n", HTTP_ERROR, 400, "obs-fold", NULL, 0, 0},
    {"0\r\n X: a\r\n\r\n", HTTP_ERROR, 400, "obs-fold", NULL, 0, 0},
    {"0\r\nbad\r\n\r\n", HTTP_ERROR, 400, "invalid chunked trailer", NULL, 0, 0},
    {"0\r\nX : a\r\n\r\n", HTTP_ERROR, 400, "invalid chunked trailer", NULL, 0, 0},
    {"0\r\n: a\r\n\r\n", HTTP_ERROR, 400, "invalid chunked trailer", NULL, 0, 0},
    {"0\r\nX: a\x01\r\n\r\n", HTTP_ERROR, 400, "control character", NULL, 0, 0},
    {"0\r\nX: a\rb\r\n\r\n", HTTP_ERROR, 400, "bare CR", NULL, 0, 0},
    {"0\r\nX: a\n\r\n", HTTP_ERROR, 400, "bare LF", NULL, 0, 0},
    {"0\r\n\n", HTTP_ERROR, 400, "bare LF", NULL, 0, 0},
    {"0\r\n\rX", HTTP_ERROR, 400, "bare CR", NULL, 0, 0},
};

static void test_chunk_table(void)
{
    struct chunk_outcome *o = malloc(sizeof(*o));
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(chunk_cases); i++) {
        const struct chunk_case *c = &chunk_cases[i];
        struct http_limits lim = default_lim;
        if (c->body_bytes)
            lim.body_bytes = c->body_bytes;
        size_t len = strlen(c->raw);
        char name[64];
        snprintf(name, sizeof(name), "chunk case %zu", i);
        chunk_all_ways(&lim, c->raw, len, o, name);
        if (o->res != c->res)
            fprintf(stderr, "%s: result %d, want %d (%d %s)\n", name, o->res, c->res, o->status,
                    o->msg);
        CHECK_EQ_INT(o->res, c->res);
        if (c->res == HTTP_ERROR) {
            CHECK_EQ_INT(o->status, c->status);
            CHECK_CONTAINS(o->msg, c->msg);
            continue;
        }
        CHECK_EQ_INT(o->payload_len, strlen(c->payload));
        CHECK(memcmp(o->payload, c->payload, o->payload_len) == 0);
        CHECK_EQ_INT(o->consumed, len - c->tail);
    }
    free(o);
}

static void test_chunk_limits(void)
{
    struct chunk_outcome *o = malloc(sizeof(*o));
    size_t hb = default_lim.header_bytes;
    char *b = malloc(4 * hb);

    /* A size line may be header_bytes long, extension included. */
    memset(b, 'e', 4 * hb);
    memcpy(b, "1;", 2);
    memcpy(b + hb - 2, "\r\nZ\r\n0\r\n\r\n", 10);
    chunk_all_ways(&default_lim, b, hb + 8, o, "long extension");
    CHECK_EQ_INT(o->res, HTTP_DONE);
    CHECK_EQ_INT(o->payload_len, 1);
    memcpy(b + hb - 2, "e\r\nZ\r\n0\r\n\r\n", 11);
    chunk_all_ways(&default_lim, b, hb + 9, o, "extension one too long");
    CHECK_EQ_INT(o->res, HTTP_ERROR);
    CHECK_EQ_INT(o->status, 400);
    CHECK_CONTAINS(o->msg, "chunk-size line too long");

    /* Trailers: at most header_bytes, final CRLF included. */
    memcpy(b, "0\r\nX: ", 6);
    memset(b + 6, 'v', 4 * hb - 6);
    memcpy(b + 3 + hb - 4, "\r\n\r\n", 4);
    chunk_all_ways(&default_lim, b, 3 + hb, o, "trailers of header_bytes");
    CHECK_EQ_INT(o->res, HTTP_DONE);
    CHECK_EQ_INT(o->consumed, 3 + hb);
    memset(b + 6, 'v', 4 * hb - 6);
    memcpy(b + 3 + hb - 3, "\r\n\r\n", 4);
    chunk_all_ways(&default_lim, b, 4 + hb, o, "trailers one over");
    CHECK_EQ_INT(o->res, HTTP_ERROR);
    CHECK_EQ_INT(o->status, 431);
    CHECK_CONTAINS(o->msg, "trailer");
    /* Many small trailer lines add up too. */
    for (size_t i = 3; i + 5 <= 4 * hb; i += 5)
        memcpy(b + i, "a:b\r\n", 5);
    chunk_all_ways(&default_lim, b, 4 * hb, o, "many trailers");
    CHECK_EQ_INT(o->status, 431);

    /* The body cap also holds when the caller's buffer is the smaller cap. */
    struct http_parser p;
    struct shoal_buf body;
    struct http_error err;
    size_t consumed;
    http_parser_init(&p, &default_lim);
    shoal_buf_init(&body, 3);
    CHECK_EQ_INT(http_parse_chunked(&p, "5\r\nhello\r\n", 10, &body, &consumed, &err),
                 HTTP_ERROR);
    CHECK_EQ_INT(err.status, 413);
    shoal_buf_fini(&body);

    /* A large body in one call goes through in one append. */
    size_t big = 3000;
    char *raw = malloc(big + 16);
    int n = snprintf(raw, 16, "%zx\r\n", big);
    memset(raw + n, 'q', big);
    memcpy(raw + n + big, "\r\n0\r\n\r\n", 7);
    chunk_all_ways(&default_lim, raw, (size_t)n + big + 7, o, "large chunk");
    CHECK_EQ_INT(o->res, HTTP_DONE);
    CHECK_EQ_INT(o->payload_len, big);
    free(raw);

    /* After DONE, more calls stay DONE and consume nothing. */
    http_parser_init(&p, &default_lim);
    shoal_buf_init(&body, 100);
    CHECK_EQ_INT(http_parse_chunked(&p, "0\r\n\r\n", 5, &body, &consumed, &err), HTTP_DONE);
    CHECK_EQ_INT(consumed, 5);
    CHECK_EQ_INT(http_parse_chunked(&p, "GET", 3, &body, &consumed, &err), HTTP_DONE);
    CHECK_EQ_INT(consumed, 0);
    shoal_buf_fini(&body);

    free(b);
    free(o);
}

/* ---- small functions ---- */

static void test_helpers(void)
{
    static const int codes[] = {100, 200, 201, 202, 204, 301, 304, 400, 401, 403, 404, 405, 408,
                                409, 413, 415, 417, 422, 429, 431, 500, 501, 502, 503, 504, 505};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(codes); i++)
        CHECK(strcmp(http_status_reason(codes[i]), "Unknown") != 0);
    CHECK_STR(http_status_reason(404), "Not Found");
    CHECK_STR(http_status_reason(431), "Request Header Fields Too Large");
    CHECK_STR(http_status_reason(505), "HTTP Version Not Supported");
    CHECK_STR(http_status_reason(418), "Unknown");
    CHECK_STR(http_status_reason(0), "Unknown");

    const char *base = "xContent-Typey";
    struct http_span s = {1, 12};
    CHECK(http_span_eq(base, s, "Content-Type"));
    CHECK(!http_span_eq(base, s, "content-type"));
    CHECK(http_span_eq_nocase(base, s, "content-TYPE"));
    CHECK(!http_span_eq_nocase(base, s, "content-typ"));
    CHECK(!http_span_eq_nocase(base, s, "content-types"));
    struct http_span empty = {3, 0};
    CHECK(http_span_eq(base, empty, ""));

    const char *raw = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
    struct outcome *o = malloc(sizeof(*o));
    parse_oneshot(&default_lim, raw, strlen(raw), o);
    CHECK_EQ_INT(o->res, HTTP_DONE);
    const struct http_header *h = http_request_header(&o->req, raw, "X-a");
    CHECK(h != NULL);
    if (h)
        CHECK_STR(sp(raw, h->value), "1");
    CHECK(http_request_header(&o->req, raw, "X-B") == NULL);
    CHECK(http_request_header(&o->req, raw, "X-") == NULL);
    free(o);
}

int main(void)
{
    test_head_table();
    test_head_limits();
    test_head_drip();
    test_pipeline();
    test_chunk_table();
    test_chunk_limits();
    test_helpers();
    return test_report("test_http");
}
