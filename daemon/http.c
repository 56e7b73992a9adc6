/* http.c: the HTTP/1.1 request parser behind http.h. An incremental memchr
 * scan finds the end of the head, then the head is parsed once; chunked
 * bodies go through a state machine that resumes at any byte.
 * Invariant: across all calls for one request each byte is scanned a bounded
 * number of times (never rescanned from 0), and nothing here allocates except
 * the appends to the caller's body buffer. */
#include "http.h"

#include <string.h>

/* tchar from RFC 9110 §5.6.2: "!#$%&'*+-.^_`|~", DIGIT, ALPHA. */
static const unsigned char tchar[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    /* 0x40 */ 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
    /* 0x80-0xff: 0 */
};

static bool is_tchar(char c)
{
    return tchar[(unsigned char)c] != 0;
}

/* field-vchar, SP, HTAB and obs-text: everything but CTLs other than HTAB. */
static bool is_field_char(char c)
{
    unsigned char u = (unsigned char)c;
    return (u >= 0x20 && u != 0x7f) || u == '\t';
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static bool mem_eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

static enum http_result fail(struct http_error *err, int status, const char *msg)
{
    if (err) {
        err->status = status;
        shoal_strlcpy(err->msg, msg, sizeof(err->msg));
    }
    return HTTP_ERROR;
}

static struct http_span span(size_t off, size_t len)
{
    struct http_span s = {(uint32_t)off, (uint32_t)len};
    return s;
}

void http_parser_init(struct http_parser *p, const struct http_limits *lim)
{
    memset(p, 0, sizeof(*p));
    p->lim = *lim;
}

/* ---- request head ---- */

/* What the header loop remembers for the checks that need the whole head. */
struct head_seen {
    unsigned host;
    bool cl, te, conn_close, conn_keep_alive, expect_other, expect_continue;
    uint64_t cl_value;
    struct http_span te_value;
};

static enum http_method method_of(const char *b, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
        enum http_method m;
    } known[] = {
        {"GET", 3, HTTP_METHOD_GET},         {"HEAD", 4, HTTP_METHOD_HEAD},
        {"POST", 4, HTTP_METHOD_POST},       {"PUT", 3, HTTP_METHOD_PUT},
        {"DELETE", 6, HTTP_METHOD_DELETE},   {"PATCH", 5, HTTP_METHOD_PATCH},
        {"OPTIONS", 7, HTTP_METHOD_OPTIONS},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(known); i++)
        if (known[i].len == len && memcmp(known[i].name, b, len) == 0)
            return known[i].m;
    return HTTP_METHOD_OTHER;
}

/* METHOD SP request-target SP HTTP/1.x over buf[start, stop), CRLF excluded. */
static enum http_result parse_request_line(const char *buf, size_t start, size_t stop,
                                           struct http_request *r, struct http_error *err)
{
    size_t i = start;
    while (i < stop && is_tchar(buf[i]))
        i++;
    if (i == start || i == stop || buf[i] != ' ')
        return fail(err, 400, i == stop ? "malformed request line" : "invalid request method");
    r->method_name = span(start, i - start);
    r->method = method_of(buf + start, i - start);

    size_t t0 = ++i;
    while (i < stop && (unsigned char)buf[i] > ' ' && (unsigned char)buf[i] < 0x7f)
        i++;
    if (i == t0)
        return fail(err, 400,
                    i < stop && buf[i] == ' '
                        ? "request line parts must be separated by exactly one space"
                        : "missing request-target");
    if (i == stop)
        return fail(err, 400, "missing HTTP version in request line");
    if (buf[i] != ' ')
        return fail(err, 400, "invalid character in request-target");
    r->target = span(t0, i - t0);

    const char *v = buf + i + 1;
    size_t vlen = stop - (i + 1);
    if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return fail(err, 400, "invalid HTTP version in request line");
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return fail(err, 505, "HTTP version not supported (use HTTP/1.1 or HTTP/1.0)");
    r->version_minor = (unsigned)(v[7] - '0');

    if (buf[t0] == '*' && r->target.len == 1) {
        if (r->method != HTTP_METHOD_OPTIONS)
            return fail(err, 400, "request-target \"*\" is only allowed with OPTIONS");
        r->path = r->target;
        r->query = span(t0 + 1, 0);
        return HTTP_DONE;
    }
    if (buf[t0] != '/')
        return fail(err, 400, "request-target must be an absolute path (origin-form)");
    const char *q = memchr(buf + t0, '?', r->target.len);
    size_t plen = q ? (size_t)(q - (buf + t0)) : r->target.len;
    r->path = span(t0, plen);
    r->query = q ? span(t0 + plen + 1, r->target.len - plen - 1) : span(t0 + plen, 0);
    return HTTP_DONE;
}

/* One header field line buf[start, stop) (CRLF excluded) into h. */
static enum http_result parse_field(const char *buf, size_t start, size_t stop,
                                    struct http_header *h, struct http_error *err)
{
    if (is_ows(buf[start]))
        return fail(err, 400, "obs-fold (header line starting with whitespace) is not allowed");
    size_t i = start;
    while (i < stop && is_tchar(buf[i]))
        i++;
    if (i == stop)
        return fail(err, 400, "header field without colon");
    if (buf[i] != ':') {
        if (is_ows(buf[i]))
            return fail(err, 400, "whitespace between header field name and colon");
        return fail(err, 400, "invalid character in header field name");
    }
    if (i == start)
        return fail(err, 400, "empty header field name");
    h->name = span(start, i - start);
    i++;
    while (i < stop && is_ows(buf[i]))
        i++;
    size_t v0 = i;
    /* Hot: every value byte of every request passes here once. */
    for (; i < stop; i++) {
        if (!is_field_char(buf[i]))
            return fail(err, 400,
                        buf[i] == '\r' ? "bare CR in header field"
                                       : "control character in header field value");
    }
    while (i > v0 && is_ows(buf[i - 1]))
        i--;
    h->value = span(v0, i - v0);
    return HTTP_DONE;
}

/* Walks a comma list (RFC 9110 §5.6.1) from *pos: the next non-empty element,
 * OWS trimmed, as buf[*e0, *e1); false at the end. Empty elements are skipped
 * as the RFC asks of recipients. */
static bool list_next(const char *buf, struct http_span s, size_t *pos, size_t *e0, size_t *e1)
{
    size_t end = (size_t)s.off + s.len;
    while (*pos < end) {
        size_t a = *pos;
        const char *c = memchr(buf + a, ',', end - a);
        size_t b = c ? (size_t)(c - buf) : end;
        *pos = c ? b + 1 : end;
        while (a < b && is_ows(buf[a]))
            a++;
        while (b > a && is_ows(buf[b - 1]))
            b--;
        if (a < b) {
            *e0 = a;
            *e1 = b;
            return true;
        }
    }
    return false;
}

static bool elem_is(const char *buf, size_t e0, size_t e1, const char *word)
{
    size_t n = strlen(word);
    return e1 - e0 == n && mem_eq_nocase(buf + e0, word, n);
}

/* uri-host [":" port] by character class: reg-name, IP literal, port. */
static bool host_valid(const char *b, struct http_span s)
{
    static const char extra[] = "-._~%!$&'()*+,;=:[]";
    for (uint32_t i = 0; i < s.len; i++) {
        char c = b[s.off + i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr(extra, c) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

/* 1*DIGIT and nothing else: a sign, inner space or "5, 5" list is how two
 * parsers come to disagree on where a body ends. */
static enum http_result parse_content_length(const char *buf, struct http_span s, uint64_t *out,
                                             struct http_error *err)
{
    if (s.len == 0)
        return fail(err, 400, "invalid Content-Length (empty)");
    uint64_t v = 0;
    for (uint32_t i = 0; i < s.len; i++) {
        char c = buf[s.off + i];
        if (c < '0' || c > '9')
            return fail(err, 400, "invalid Content-Length (digits only)");
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10)
            return fail(err, 400, "invalid Content-Length (overflow)");
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return HTTP_DONE;
}

static enum http_result note_field(const char *buf, const struct http_header *h,
                                   struct head_seen *seen, struct http_error *err)
{
    const char *n = buf + h->name.off;
    size_t e0, e1, pos;
    switch (h->name.len) {
    case 4:
        if (!mem_eq_nocase(n, "host", 4))
            break;
        if (++seen->host > 1)
            return fail(err, 400, "more than one Host header");
        if (!host_valid(buf, h->value))
            return fail(err, 400, "invalid Host header");
        break;
    case 6:
        if (!mem_eq_nocase(n, "expect", 6))
            break;
        if (h->value.len == 12 && mem_eq_nocase(buf + h->value.off, "100-continue", 12))
            seen->expect_continue = true;
        else
            seen->expect_other = true;
        break;
    case 10:
        if (!mem_eq_nocase(n, "connection", 10))
            break;
        pos = h->value.off;
        while (list_next(buf, h->value, &pos, &e0, &e1)) {
            if (elem_is(buf, e0, e1, "close"))
                seen->conn_close = true;
            else if (elem_is(buf, e0, e1, "keep-alive"))
                seen->conn_keep_alive = true;
        }
        break;
    case 14:
        if (!mem_eq_nocase(n, "content-length", 14))
            break;
        if (seen->cl)
            return fail(err, 400, "duplicate Content-Length");
        seen->cl = true;
        return parse_content_length(buf, h->value, &seen->cl_value, err);
    case 17:
        if (!mem_eq_nocase(n, "transfer-encoding", 17))
            break;
        if (seen->te)
            return fail(err, 400, "duplicate Transfer-Encoding");
        seen->te = true;
        seen->te_value = h->value;
        break;
    default:
        break;
    }
    return HTTP_DONE;
}

/* Only "chunked" alone is supported. chunked anywhere but last, or twice,
 * makes the body length unknowable (RFC 9112 §6.3): 400, not 501. */
static enum http_result check_te(const char *buf, struct http_span v, struct http_error *err)
{
    size_t pos = v.off, e0, e1;
    unsigned n = 0, n_chunked = 0;
    bool last_chunked = false;
    while (list_next(buf, v, &pos, &e0, &e1)) {
        n++;
        last_chunked = elem_is(buf, e0, e1, "chunked");
        n_chunked += last_chunked;
    }
    if (n == 0)
        return fail(err, 400, "empty Transfer-Encoding");
    if (n_chunked > 1)
        return fail(err, 400, "Transfer-Encoding applies chunked more than once");
    if (n_chunked == 1 && !last_chunked)
        return fail(err, 400, "Transfer-Encoding: chunked must be the final coding");
    if (n != 1 || n_chunked != 1)
        return fail(err, 501, "unsupported Transfer-Encoding (only chunked is)");
    return HTTP_DONE;
}

/* The whole head buf[0, head_len) is known to end in CRLF CRLF and to have
 * only CRLF line ends; parse it once. Outputs are written only on DONE. */
static enum http_result parse_head(const struct http_parser *p, const char *buf, size_t head_len,
                                   struct http_header *headers, struct http_request *req,
                                   size_t *consumed, struct http_error *err)
{
    struct http_request r;
    memset(&r, 0, sizeof(r));
    size_t pos = 0;
    while (buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    const char *nl = memchr(buf + pos, '\n', head_len - pos);
    size_t le = (size_t)(nl - buf) - 1;
    enum http_result res = parse_request_line(buf, pos, le, &r, err);
    if (res != HTTP_DONE)
        return res;

    struct head_seen seen;
    memset(&seen, 0, sizeof(seen));
    const size_t blank = head_len - 2; /* the empty line that ends the head */
    for (pos = le + 2; pos < blank; pos = le + 2) {
        nl = memchr(buf + pos, '\n', blank - pos);
        le = (size_t)(nl - buf) - 1;
        /* The scan already counted the lines; this keeps the array write
         * safe on its own. */
        if (r.n_headers >= p->lim.header_count)
            return fail(err, 431, "too many header fields");
        struct http_header *h = &headers[r.n_headers];
        res = parse_field(buf, pos, le, h, err);
        if (res != HTTP_DONE)
            return res;
        r.n_headers++;
        res = note_field(buf, h, &seen, err);
        if (res != HTTP_DONE)
            return res;
    }

    if (r.version_minor == 1 && seen.host == 0)
        return fail(err, 400, "missing Host header");
    if (seen.te) {
        if (r.version_minor == 0)
            return fail(err, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (seen.cl)
            return fail(err, 400, "Content-Length with Transfer-Encoding");
        res = check_te(buf, seen.te_value, err);
        if (res != HTTP_DONE)
            return res;
    }
    if (seen.cl && seen.cl_value > p->lim.body_bytes)
        return fail(err, 413, "request body too large");
    if (seen.expect_other)
        return fail(err, 417, "unsupported Expect (only 100-continue is)");

    r.headers = headers;
    r.chunked = seen.te;
    r.content_length = seen.cl ? (int64_t)seen.cl_value : -1;
    /* HTTP/1.0 clients do not wait for 100 (RFC 9110 §10.1.1). */
    r.expect_continue = seen.expect_continue && r.version_minor == 1;
    if (r.version_minor == 1)
        r.keep_alive = !seen.conn_close;
    else
        r.keep_alive = seen.conn_keep_alive && !seen.conn_close;
    *req = r;
    *consumed = head_len;
    return HTTP_DONE;
}

enum http_result http_parse_head(struct http_parser *p, const char *buf, size_t len,
                                 struct http_header *headers, struct http_request *req,
                                 size_t *consumed, struct http_error *err)
{
    size_t end = len < p->lim.header_bytes ? len : p->lim.header_bytes;
    size_t pos = p->scanned;
    /* Hot: a slow-drip client calls this per byte, so only new bytes are
     * searched, and each line end is checked for its CR once. */
    while (pos < end) {
        const char *nl = memchr(buf + pos, '\n', end - pos);
        if (!nl) {
            pos = end;
            break;
        }
        size_t i = (size_t)(nl - buf);
        if (i == p->line_start || buf[i - 1] != '\r')
            return fail(err, 400, "bare LF in request head (lines must end in CRLF)");
        pos = i + 1;
        if (i - 1 == p->line_start) {
            if (p->n_lines > 0)
                return parse_head(p, buf, pos, headers, req, consumed, err);
            /* An empty line before the request line (RFC 9112 §2.2). */
        } else if (++p->n_lines - 1 > p->lim.header_count) {
            return fail(err, 431, "too many header fields");
        }
        p->line_start = (uint32_t)pos;
    }
    p->scanned = (uint32_t)pos;
    if (len >= p->lim.header_bytes)
        return fail(err, 431, p->n_lines == 0 ? "request line too long" : "request head too large");
    return HTTP_AGAIN;
}

/* ---- chunked body ----
 *
 *   SIZE --hex--> SIZE --';'--> EXT --CR--> SIZE_LF
 *   SIZE --SP/HT--> SIZE_WS --';'--> EXT         (BWS before an extension)
 *   SIZE --CR--> SIZE_LF --LF--> DATA (size > 0) | TRAILER (size 0)
 *   DATA --size bytes--> DATA_CR --CR--> DATA_LF --LF--> SIZE
 *   TRAILER --tchar--> TR_NAME --':'--> TR_VALUE --CR--> TR_LF --LF--> TRAILER
 *   TRAILER --CR--> FINAL_LF --LF--> DONE
 *
 * Any other byte is a 400. Every state consumes one byte except DATA, which
 * takes as much of the chunk as has arrived, so any split point resumes. */
enum chunk_state {
    CS_SIZE = 0, /* http_parser_init's zero */
    CS_SIZE_WS,
    CS_EXT,
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER,
    CS_TR_NAME,
    CS_TR_VALUE,
    CS_TR_LF,
    CS_FINAL_LF,
    CS_DONE,
};


/* 15 hex digits stay below 2^60, so the size never overflows. */
#define CHUNK_SIZE_DIGITS 15u

enum http_result http_parse_chunked(struct http_parser *p, const char *buf, size_t len,
                                    struct shoal_buf *body, size_t *consumed,
                                    struct http_error *err)
{
    size_t pos = 0;
    while (pos < len) {
        char c = buf[pos];
        if (p->cstate == CS_DATA) {
            /* Hot: the payload is copied in one piece per call. */
            size_t n = len - pos;
            if (n > p->chunk_left)
                n = (size_t)p->chunk_left;
            enum shoal_err e = shoal_buf_append(body, buf + pos, n);
            if (e == SHOAL_ERR_TOO_BIG)
                return fail(err, 413, "request body too large");
            if (e != SHOAL_OK)
                return fail(err, 500, "out of memory reading the request body");
            pos += n;
            p->chunk_left -= n;
            if (p->chunk_left == 0)
                p->cstate = CS_DATA_CR;
            continue;
        }
        if (p->cstate == CS_DONE)
            break;
        bool in_line = p->cstate <= CS_EXT || (p->cstate >= CS_TRAILER && p->cstate <= CS_TR_VALUE);
        if (c == '\n' && in_line)
            return fail(err, 400, "bare LF in chunked body (lines must end in CRLF)");
        if (p->cstate <= CS_SIZE_LF && ++p->line_len > p->lim.header_bytes)
            return fail(err, 400, "chunk-size line too long");
        if (p->cstate >= CS_TRAILER && ++p->trailer_len > p->lim.header_bytes)
            return fail(err, 431, "chunked trailer section too large");
        switch (p->cstate) {
        case CS_SIZE: {
            int d = shoal_hex_digit(c);
            if (d >= 0) {
                if (++p->size_digits > CHUNK_SIZE_DIGITS)
                    return fail(err, 400, "chunk size too large");
                p->chunk_left = p->chunk_left * 16 + (uint64_t)d;
            } else if (p->size_digits == 0) {
                return fail(err, 400, "invalid chunk size");
            } else if (c == '\r') {
                p->cstate = CS_SIZE_LF;
            } else if (c == ';') {
                p->cstate = CS_EXT;
            } else if (is_ows(c)) {
                p->cstate = CS_SIZE_WS;
            } else {
                return fail(err, 400, "invalid chunk size");
            }
            break;
        }
        case CS_SIZE_WS:
            if (c == ';')
                p->cstate = CS_EXT;
            else if (!is_ows(c))
                return fail(err, 400, "invalid chunk size");
            break;
        case CS_EXT:
            if (c == '\r')
                p->cstate = CS_SIZE_LF;
            else if (!is_field_char(c))
                return fail(err, 400, "invalid character in chunk extension");
            break;
        case CS_SIZE_LF:
            if (c != '\n')
                return fail(err, 400, "bare CR in chunk-size line");
            if (p->chunk_left > p->lim.body_bytes - p->body_len)
                return fail(err, 413, "request body too large");
            p->body_len += p->chunk_left;
            p->cstate = p->chunk_left ? CS_DATA : CS_TRAILER;
            p->line_len = 0;
            p->size_digits = 0;
            break;
        case CS_DATA_CR:
            if (c != '\r')
                return fail(err, 400, "missing CRLF after chunk data");
            p->cstate = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (c != '\n')
                return fail(err, 400, "missing CRLF after chunk data");
            p->cstate = CS_SIZE;
            break;
        case CS_TRAILER:
            if (c == '\r')
                p->cstate = CS_FINAL_LF;
            else if (is_tchar(c))
                p->cstate = CS_TR_NAME;
            else if (is_ows(c))
                return fail(err, 400, "obs-fold in chunked trailer is not allowed");
            else
                return fail(err, 400, "invalid chunked trailer field");
            break;
        case CS_TR_NAME:
            if (c == ':')
                p->cstate = CS_TR_VALUE;
            else if (!is_tchar(c))
                return fail(err, 400, "invalid chunked trailer field");
            break;
        case CS_TR_VALUE:
            if (c == '\r')
                p->cstate = CS_TR_LF;
            else if (!is_field_char(c))
                return fail(err, 400, "control character in chunked trailer field");
            break;
        case CS_TR_LF:
            if (c != '\n')
                return fail(err, 400, "bare CR in chunked trailer field");
            p->cstate = CS_TRAILER;
            break;
        case CS_FINAL_LF:
            if (c != '\n')
                return fail(err, 400, "bare CR after chunked trailers");
            p->cstate = CS_DONE;
            *consumed = pos + 1;
            return HTTP_DONE;
        default:
            return fail(err, 500, "chunked decoder in an impossible state");
        }
        pos++;
    }
    *consumed = pos;
    return p->cstate == CS_DONE ? HTTP_DONE : HTTP_AGAIN;
}

/* ---- lookups ---- */

const struct http_header *http_request_header(const struct http_request *req, const char *base,
                                              const char *name)
{
    for (uint32_t i = 0; i < req->n_headers; i++)
        if (http_span_eq_nocase(base, req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

bool http_span_eq(const char *base, struct http_span s, const char *str)
{
    return strlen(str) == s.len && memcmp(base + s.off, str, s.len) == 0;
}

bool http_span_eq_nocase(const char *base, struct http_span s, const char *str)
{
    return strlen(str) == s.len && mem_eq_nocase(base + s.off, str, s.len);
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
