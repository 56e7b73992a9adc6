/* http.h: an incremental, allocation-free HTTP/1.1 request parser (daemon
 * internal). It does no I/O: the server feeds it the bytes it has read and
 * it says "need more", "done, N bytes" or "reject with status S because ...".
 * It is strict where leniency enables request smuggling (CL+TE, duplicate
 * Content-Length, obs-fold, bare CR, space before colon). All positions are
 * offsets from the start of the request, so they survive the connection
 * buffer being reallocated. Any thread; a parser belongs to one connection. */
#ifndef SHOAL_DAEMON_HTTP_H
#define SHOAL_DAEMON_HTTP_H

#include "common.h"

#include <stdbool.h>
#include <stdint.h>

struct http_limits {
    uint32_t header_bytes; /* request line + header fields + final CRLF */
    uint32_t header_count; /* header fields; must not exceed the array given */
    uint64_t body_bytes;   /* decoded body */
};

enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_PUT,
    HTTP_METHOD_DELETE,
    HTTP_METHOD_PATCH,
    HTTP_METHOD_OPTIONS,
    HTTP_METHOD_OTHER, /* a valid token we do not know; routes answer 405/501 */
};

/* A byte range [off, off+len) measured from the start of the request. */
struct http_span {
    uint32_t off;
    uint32_t len;
};

struct http_header {
    struct http_span name;  /* as sent; compare case-insensitively */
    struct http_span value; /* leading/trailing spaces and tabs trimmed */
};

struct http_request {
    enum http_method method;
    struct http_span method_name;
    struct http_span target; /* request-target as sent (origin-form or "*") */
    struct http_span path;   /* target up to '?' */
    struct http_span query;  /* after '?', len 0 when none */
    unsigned version_minor;  /* HTTP/1.<minor>: 0 or 1 */
    struct http_header *headers; /* caller's array; n_headers are filled */
    uint32_t n_headers;
    bool keep_alive;      /* from the version and the Connection header */
    bool chunked;         /* Transfer-Encoding: chunked */
    bool expect_continue; /* Expect: 100-continue */
    int64_t content_length; /* -1 when absent; 0 for no body */
};

enum http_result {
    HTTP_DONE,  /* complete; *consumed says how many bytes */
    HTTP_AGAIN, /* valid so far; call again with more bytes */
    HTTP_ERROR, /* reject: err->status and err->msg */
};

struct http_error {
    int status;    /* 400, 408, 413, 417, 431, 500 (out of memory), 501, 505 */
    char msg[160]; /* for the JSON error body; no request bytes echoed raw */
};

/* Per-connection parser state; reset with http_parser_init for each request. */
struct http_parser {
    struct http_limits lim;
    uint32_t scanned;    /* head bytes already searched for the blank line */
    uint32_t line_start; /* first byte of the head line being scanned */
    uint32_t n_lines;    /* complete non-empty head lines (request line included) */
    /* chunked decoder */
    int cstate;
    uint64_t chunk_left;
    uint32_t line_len;    /* bytes of the current chunk-size line (capped by header_bytes) */
    uint32_t trailer_len; /* bytes of trailers so far (capped by header_bytes) */
    uint32_t size_digits;
    uint64_t body_len; /* chunked payload announced so far (capped by body_bytes) */
};

void http_parser_init(struct http_parser *p, const struct http_limits *lim);

/* Parse the request head at buf[0..len). headers must hold lim.header_count
 * entries. On HTTP_DONE *consumed is the head's length including the blank
 * line, and req is filled (its spans are relative to buf). Rescans nothing:
 * calling again with more bytes continues where the last call stopped. */
enum http_result http_parse_head(struct http_parser *p, const char *buf, size_t len,
                                 struct http_header *headers, struct http_request *req,
                                 size_t *consumed, struct http_error *err);

/* Decode chunked body bytes buf[0..len) (the bytes right after the head, or
 * after what an earlier call consumed), appending payload to body.
 * *consumed is set on DONE and AGAIN alike: drop that many bytes and call
 * again with the rest plus new data. DONE after the last chunk and its
 * trailers; 413 when body would pass lim.body_bytes. */
enum http_result http_parse_chunked(struct http_parser *p, const char *buf, size_t len,
                                    struct shoal_buf *body, size_t *consumed,
                                    struct http_error *err);

/* First header named name (case-insensitive), or NULL. */
const struct http_header *http_request_header(const struct http_request *req, const char *base,
                                              const char *name);

/* Compare a span with a NUL-terminated string, exactly / ignoring ASCII case. */
bool http_span_eq(const char *base, struct http_span s, const char *str);
bool http_span_eq_nocase(const char *base, struct http_span s, const char *str);

/* "Not Found" for 404, ...; "Unknown" for codes we never send. */
const char *http_status_reason(int status);

#endif
