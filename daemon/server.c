/* server.c: shoald's HTTP/1.1 connections on the libevent loop. Each
 * connection owns an input and an output buffer and runs the state machine
 * below; requests on one connection are answered strictly in order, so
 * pipelining needs no extra bookkeeping. Invariant: nothing here blocks —
 * sockets are non-blocking and every wait is an event or a deadline. */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bytes one read(2) asks for, and the output backlog past which a
 * connection stops reading until the client drains its responses (a client
 * that pipelines without reading cannot make us buffer without bound). */
#define READ_CHUNK     16384u
#define OUT_HIGH_WATER (1u << 20)
/* Largest JSON body a route may produce. */
#define REPLY_MAX (16u << 20)

/* Connection states:
 *
 *   IDLE ──first byte──▶ HEAD ──head parsed──▶ BODY ──body complete──▶ dispatch
 *    ▲                    │                     │                        │
 *    └──── keep-alive ◀───┴──── (no body) ──────┴───────── response ◀────┘
 *   any parse error, timeout, auth failure or "Connection: close"
 *     ──▶ CLOSING: flush what is queued, then close.
 *
 * A handler that promises its reply (api_reply_later) leaves dispatch in
 * WAIT, or in STREAM when it already began a stream inside the call:
 *
 *   dispatch ──promise──▶ WAIT ──api_later_done──▶ response (as above)
 *      │                   │
 *      │          api_later_stream_begin
 *      │                   ▼
 *      └─stream begun───▶ STREAM ──api_later_stream_end──▶ IDLE (keep-alive)
 *                                                          or CLOSING
 *
 * Neither WAIT nor STREAM reads (pipelined requests wait in the kernel) or
 * has a deadline: the work behind the promise is bounded itself, and the
 * stream's backlog is capped (SHOAL_CAP_HTTP_STREAM_BACKLOG).
 *
 * Deadlines: IDLE has the keep-alive timeout; HEAD has header_timeout
 * counted from the request's first byte (total, so a slow-drip client is cut
 * however steadily it drips); BODY has body_timeout from the end of the head.
 */
enum conn_state {
    CONN_IDLE,
    CONN_HEAD,
    CONN_BODY,
    CONN_WAIT,   /* the handler answers later (api_reply_later); not reading */
    CONN_STREAM, /* a promised reply is being streamed; not reading */
    CONN_CLOSING,
};

/* A reply promised by a handler. c is NULL once the connection is gone, so
 * a late answer only frees it. The gone notice is an event of the promise's
 * own, not the connection's, because it fires after the connection is
 * closed and must never run inside a server call (its fn may end p). */
struct api_later {
    struct conn *c;
    struct event_base *base;
    void (*gone_fn)(void *arg);
    void *gone_arg;
    struct event gone_ev;
    bool gone_pending; /* gone_ev is active */
    bool gone_fired;
};

struct conn {
    struct server *srv;
    struct conn *prev, *next;
    int fd;
    bool tcp; /* arrived on the TCP listener: needs the bearer token */
    enum conn_state state;
    struct event rev, wev, tev;
    bool reading, writing, timer_armed;
    uint64_t deadline_ms; /* 0: none */
    uint64_t timer_at_ms; /* when the armed timer fires */

    struct config_limits lim; /* snapshot for the request in progress */
    struct shoal_buf in, out;
    struct http_parser parser;
    struct http_request req;
    struct http_header *headers;
    uint32_t headers_cap;
    size_t head_len;
    struct shoal_buf chunked; /* decoded chunked body */
    bool continue_sent;
    struct api_later *later; /* CONN_WAIT, CONN_STREAM: the promised reply */
    int early_status;        /* a promise kept inside the handler: dispatch answers */
    size_t wait_used;        /* CONN_WAIT, CONN_STREAM: input bytes of the request */
    bool wait_head_only;
    /* Inside api_handle the request's views point into in, so nothing may
     * close the connection: a stream that must be cut there is only marked
     * doomed, and dispatch closes it when the handler returns. */
    bool in_handler;
    bool doomed;
    bool streaming;        /* api_later_stream_begin was called for this request */
    bool stream_chunked;   /* HTTP/1.1: chunked; HTTP/1.0: ends with the connection */
    bool stream_head_only; /* HEAD: headers only, writes dropped */
    bool stream_closing;   /* close once the stream ends */
};

struct listener {
    struct server *srv;
    int fd;
    bool tcp;
    struct event ev;
    bool active;
};

struct server {
    struct event_base *base;
    const struct api_info *info;
    struct listen_unix unix_sock;
    struct listener lunix, ltcp;
    struct event *accept_pause; /* re-enables accepting after EMFILE */
    struct conn *conns;         /* doubly linked list of open connections */
    struct conn *graveyard;     /* closed, freed by the reaper (see conn_close) */
    struct event *reaper;
    struct shoal_buf reply;     /* scratch for response bodies */
    struct server_stats stats;
    struct rejected *rejected; /* rejected connections still open (see reject_full) */
    unsigned n_rejected;
    bool draining;
    struct event *drain_timer;
    void (*drain_done)(void *);
    void *drain_arg;
    char date[40]; /* cached "Date: ...\r\n", refreshed once a second */
    time_t date_at;
};

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);
static void conn_flush(struct conn *c);
static void request_end(struct conn *c, size_t used);

/* ---- timers ---- */

/* Timers are lazy: when a deadline moves later (the common case: another
 * request on a keep-alive connection) the armed timer stays, and when it
 * fires early it re-arms itself. That keeps the timer heap out of the
 * per-request path. */
static void conn_set_deadline(struct conn *c, uint64_t ms_from_now)
{
    uint64_t now = shoal_now_ms();
    c->deadline_ms = now + ms_from_now;
    if (c->timer_armed && c->timer_at_ms <= c->deadline_ms)
        return;
    struct timeval tv = {.tv_sec = (time_t)(ms_from_now / 1000),
                         .tv_usec = (suseconds_t)((ms_from_now % 1000) * 1000)};
    evtimer_add(&c->tev, &tv);
    c->timer_armed = true;
    c->timer_at_ms = c->deadline_ms;
}

static void conn_clear_deadline(struct conn *c)
{
    c->deadline_ms = 0;
}

/* ---- output ---- */

static void refresh_date(struct server *s)
{
    time_t now = time(NULL);
    if (now == s->date_at)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof(s->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    s->date_at = now;
}

/* Queue a whole response. body may be NULL (no body). For HEAD the headers
 * describe the body that is not sent. Returns false when the output buffer
 * cannot take it (the connection is then closed by the caller). */
static bool queue_response(struct conn *c, int status, const struct api_reply *rep,
                           const char *body, size_t body_len, bool head_only, bool closing)
{
    struct server *s = c->srv;
    refresh_date(s);
    enum shoal_err err = shoal_buf_printf(
        &c->out,
        "HTTP/1.1 %d %s\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n"
        "Connection: %s\r\n%s%s%s%s\r\n",
        status, http_status_reason(status), s->date, body_len, closing ? "close" : "keep-alive",
        rep && rep->allow ? "Allow: " : "", rep && rep->allow ? rep->allow : "",
        rep && rep->allow ? "\r\n" : "",
        status == 401 ? "WWW-Authenticate: Bearer realm=\"shoal\"\r\n" : "");
    if (!err && body_len && !head_only)
        err = shoal_buf_append(&c->out, body, body_len);
    if (status >= 500)
        s->stats.errors_5xx++;
    else if (status >= 400)
        s->stats.errors_4xx++;
    return err == SHOAL_OK;
}

/* Answer with an error and close after it is sent. */
static void conn_fail(struct conn *c, int status, const char *message)
{
    struct server *s = c->srv;
    shoal_buf_reset(&s->reply);
    api_error_body(&s->reply, api_error_type(status), message);
    struct shoal_logline l;
    if (shoal_log_begin(&l, SHOAL_LOG_DEBUG, "http_reject")) {
        shoal_log_kv(&l, "status", "%d", status);
        shoal_log_kv(&l, "msg", "%s", message);
        shoal_log_end(&l);
    }
    if (!queue_response(c, status, NULL, s->reply.data, s->reply.len, false, true)) {
        conn_close(c);
        return;
    }
    c->state = CONN_CLOSING;
    conn_clear_deadline(c);
    /* Give the client a bounded time to take the error before we cut it. */
    conn_set_deadline(c, 2000);
    conn_flush(c);
}

/* Write what is queued; arm the write event while the socket is full. */
static void conn_flush(struct conn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            shoal_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->writing) {
                event_add(&c->wev, NULL);
                c->writing = true;
            }
            /* Backpressure: stop reading while the client is not reading. */
            if (c->out.len > OUT_HIGH_WATER && c->reading) {
                event_del(&c->rev);
                c->reading = false;
            }
            return;
        }
        conn_close(c); /* peer gone */
        return;
    }
    if (c->writing) {
        event_del(&c->wev);
        c->writing = false;
    }
    if (c->state == CONN_CLOSING) {
        /* Half-close, then drain what the client still sends until it
         * closes, so the kernel does not reset the connection and destroy
         * the error response before the client reads it. */
        shutdown(c->fd, SHUT_WR);
        if (!c->reading) {
            event_add(&c->rev, NULL);
            c->reading = true;
        }
        return;
    }
    if (!c->reading && c->state != CONN_WAIT && c->state != CONN_STREAM) {
        event_add(&c->rev, NULL);
        c->reading = true;
    }
}

/* ---- request handling ---- */

static bool bearer_ok(struct conn *c, const char *base)
{
    const struct shoal_secret *tok = c->srv->info->cfg->auth_token;
    if (!tok)
        return false; /* config forbids TCP without a token; be safe anyway */
    const struct http_header *h = http_request_header(&c->req, base, "authorization");
    if (!h || h->value.len < 7)
        return false;
    const char *v = base + h->value.off;
    if (strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    return shoal_secret_equals(tok, v + 7, h->value.len - 7);
}

/* Entering WAIT or STREAM: stop reading (pipelined bytes wait in the kernel
 * and a half-closing client still gets its answer) and hold no deadline;
 * the work behind the promise is bounded itself. */
static void conn_hold(struct conn *c)
{
    conn_clear_deadline(c);
    if (c->reading) {
        event_del(&c->rev);
        c->reading = false;
    }
}

static void dispatch(struct conn *c, const char *body, size_t body_len)
{
    struct server *s = c->srv;
    const char *base = c->in.data;
    struct api_request ar = {
        .method = c->req.method,
        .method_name = base + c->req.method_name.off,
        .method_len = c->req.method_name.len,
        .path = base + c->req.path.off,
        .path_len = c->req.path.len,
        .query = base + c->req.query.off,
        .query_len = c->req.query.len,
        .body = body,
        .body_len = body_len,
        .conn = c,
    };
    struct api_reply rep = {.status = 500, .allow = NULL};
    shoal_buf_reset(&s->reply);
    c->in_handler = true;
    api_handle(s->info, &ar, &s->reply, &rep);
    c->in_handler = false;
    s->stats.requests++;
    if (c->doomed) {
        conn_close(c); /* a stream cut or aborted inside the handler */
        return;
    }
    if (c->streaming) {
        /* The handler began a stream; its head (and maybe more) is queued. */
        if (c->later) {
            c->state = CONN_STREAM;
            conn_hold(c);
            return;
        }
        c->streaming = false; /* and ended it: the whole reply is queued */
        if (c->stream_closing || s->draining)
            c->state = CONN_CLOSING;
        return;
    }
    if (c->early_status) {
        /* The handler promised a reply and gave it before returning (a
         * tool that finished without waiting): it is in s->reply. */
        rep.status = c->early_status;
        rep.allow = NULL;
        c->early_status = 0;
    } else if (c->later) {
        c->state = CONN_WAIT;
        c->wait_head_only = c->req.method == HTTP_METHOD_HEAD;
        conn_hold(c);
        return;
    }

    bool closing = !c->req.keep_alive || s->draining;
    bool head_only = c->req.method == HTTP_METHOD_HEAD;
    if (!queue_response(c, rep.status, &rep, s->reply.data, s->reply.len, head_only, closing)) {
        conn_close(c);
        return;
    }
    if (closing)
        c->state = CONN_CLOSING;
}

struct api_later *api_reply_later(const struct api_request *req)
{
    struct conn *c = req->conn;
    if (!c || c->later)
        return NULL;
    struct api_later *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->c = c;
    p->base = c->srv->base;
    c->later = p;
    return p;
}

static void later_free(struct api_later *p)
{
    if (p->gone_pending)
        event_del(&p->gone_ev);
    free(p);
}

static void on_later_gone(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct api_later *p = arg;
    p->gone_pending = false;
    p->gone_fired = true;
    /* fn may end (free) p: nothing touches p after the call. */
    p->gone_fn(p->gone_arg);
}

/* The connection behind p is gone: tell the owner from an event, so that
 * fn never runs inside the server call that noticed (a write that failed,
 * conn_close walking the connections at shutdown). */
static void later_gone_schedule(struct api_later *p)
{
    if (!p->gone_fn || p->gone_pending || p->gone_fired)
        return;
    event_assign(&p->gone_ev, p->base, -1, 0, on_later_gone, p);
    event_active(&p->gone_ev, EV_TIMEOUT, 1);
    p->gone_pending = true;
}

void api_later_on_gone(struct api_later *p, void (*fn)(void *arg), void *arg)
{
    p->gone_fn = fn;
    p->gone_arg = arg;
    if (!fn) {
        if (p->gone_pending)
            event_del(&p->gone_ev);
        p->gone_pending = false;
        return;
    }
    if (!p->c)
        later_gone_schedule(p);
}

/* A promised reply is fully queued: go on like after any reply. */
static void later_finish(struct conn *c, bool closing)
{
    c->state = closing ? CONN_CLOSING : CONN_BODY;
    request_end(c, c->wait_used);
    if (c->state == CONN_CLOSING)
        conn_set_deadline(c, 2000);
    else
        conn_process(c); /* pipelined requests that arrived meanwhile */
    if (c->fd >= 0)
        conn_flush(c);
}

/* Cut a stream (slow reader, out of memory, aborted). Inside the handler
 * only mark it: dispatch closes once the handler's views are dead. */
static void stream_cut(struct conn *c, const char *why)
{
    shoal_log(SHOAL_LOG_WARN, "http_stream_cut", "%s", why);
    if (c->in_handler)
        c->doomed = true;
    else
        conn_close(c);
}

void api_later_done(struct api_later *p, int status, const char *body, size_t body_len)
{
    struct conn *c = p->c;
    later_free(p);
    if (!c)
        return;
    c->later = NULL;
    struct server *s = c->srv;
    if (c->doomed)
        return;
    if (c->streaming) {
        /* The status line is long gone: the only way left to say "failed"
         * is to end the reply short. */
        stream_cut(c, "stream aborted by its producer");
        return;
    }
    if (c->in_handler) {
        /* Still inside the handler (dispatch has not seen the promise):
         * leave the answer where dispatch sends handler replies from. */
        shoal_buf_reset(&s->reply);
        if (shoal_buf_append(&s->reply, body, body_len) != SHOAL_OK) {
            shoal_buf_reset(&s->reply);
            api_error_body(&s->reply, "internal", "reply too large");
            status = 500;
        }
        c->early_status = status;
        return;
    }
    bool closing = !c->req.keep_alive || s->draining;
    if (!queue_response(c, status, NULL, body, body_len, c->wait_head_only, closing)) {
        conn_close(c);
        return;
    }
    later_finish(c, closing);
}

bool api_later_stream_begin(struct api_later *p, int status, const char *content_type)
{
    struct conn *c = p->c;
    if (!c || c->doomed)
        return false;
    /* Programmer errors; without assertions they cut the reply rather than
     * send a second head or a header split by the caller's CR/LF. */
    bool misuse = c->streaming || status < 200 || status > 599 || status == 204 || status == 304 ||
                  !content_type || strpbrk(content_type, "\r\n");
    assert(!misuse && "api_later_stream_begin: twice, bad status or content type");
    if (misuse) {
        stream_cut(c, "api_later_stream_begin misused");
        return false;
    }
    struct server *s = c->srv;
    c->stream_chunked = c->req.version_minor >= 1;
    c->stream_head_only = c->req.method == HTTP_METHOD_HEAD;
    /* Without chunked framing only the end of the connection ends the body. */
    c->stream_closing = !c->stream_chunked || !c->req.keep_alive || s->draining;
    refresh_date(s);
    enum shoal_err err =
        shoal_buf_printf(&c->out,
                         "HTTP/1.1 %d %s\r\n%sContent-Type: %s\r\nCache-Control: no-cache\r\n%s"
                         "Connection: %s\r\n\r\n",
                         status, http_status_reason(status), s->date, content_type,
                         c->stream_chunked ? "Transfer-Encoding: chunked\r\n" : "",
                         c->stream_closing ? "close" : "keep-alive");
    if (err) {
        stream_cut(c, "out of memory for the stream's head");
        return false;
    }
    c->streaming = true;
    if (status >= 500)
        s->stats.errors_5xx++;
    else if (status >= 400)
        s->stats.errors_4xx++;
    if (c->in_handler)
        return true; /* dispatch sends it when the handler returns */
    c->state = CONN_STREAM;
    conn_flush(c);
    return c->fd >= 0;
}

bool api_later_stream_write(struct api_later *p, const char *data, size_t n)
{
    struct conn *c = p->c;
    if (!c || c->doomed)
        return false;
    assert(c->streaming && "api_later_stream_write before api_later_stream_begin");
    if (!c->streaming) {
        stream_cut(c, "stream written before it began");
        return false;
    }
    if (n == 0 || c->stream_head_only)
        return true;
    /* Chunk framing: at most 16 hex digits and two CRLFs. */
    size_t frame = c->stream_chunked ? 20 : 0;
    if (n > SHOAL_CAP_HTTP_STREAM_BACKLOG - frame ||
        c->out.len > SHOAL_CAP_HTTP_STREAM_BACKLOG - frame - n) {
        stream_cut(c, "client fell too far behind the stream");
        return false;
    }
    if (shoal_buf_reserve(&c->out, n + frame) != SHOAL_OK) {
        stream_cut(c, "out of memory for the stream");
        return false;
    }
    /* With room reserved the appends below cannot fail. */
    enum shoal_err err = SHOAL_OK;
    if (c->stream_chunked)
        err = shoal_buf_printf(&c->out, "%zx\r\n", n);
    if (!err)
        err = shoal_buf_append(&c->out, data, n);
    if (!err && c->stream_chunked)
        err = shoal_buf_append(&c->out, "\r\n", 2);
    if (err) {
        stream_cut(c, "out of memory for the stream");
        return false;
    }
    if (c->in_handler)
        return true;
    conn_flush(c);
    return c->fd >= 0;
}

void api_later_stream_end(struct api_later *p)
{
    struct conn *c = p->c;
    later_free(p);
    if (!c)
        return;
    c->later = NULL;
    if (c->doomed)
        return;
    assert(c->streaming && "api_later_stream_end before api_later_stream_begin");
    if (!c->streaming) {
        stream_cut(c, "stream ended before it began");
        return;
    }
    if (c->stream_chunked && !c->stream_head_only &&
        shoal_buf_append(&c->out, "0\r\n\r\n", 5) != SHOAL_OK) {
        stream_cut(c, "out of memory for the stream's end");
        return;
    }
    if (c->in_handler)
        return; /* dispatch finishes the request */
    c->streaming = false;
    later_finish(c, c->stream_closing || c->srv->draining);
}

/* Start parsing a new request: snapshot the limits in force. */
static bool request_begin(struct conn *c)
{
    c->lim = c->srv->info->cfg->limits;
    if (c->headers_cap < c->lim.header_count) {
        struct http_header *h = realloc(c->headers, c->lim.header_count * sizeof(*h));
        if (!h)
            return false;
        c->headers = h;
        c->headers_cap = c->lim.header_count;
    }
    struct http_limits hl = {.header_bytes = c->lim.header_bytes,
                             .header_count = c->lim.header_count,
                             .body_bytes = c->lim.body_bytes};
    http_parser_init(&c->parser, &hl);
    c->in.max = (size_t)c->lim.header_bytes + (size_t)c->lim.body_bytes + READ_CHUNK;
    shoal_buf_reset(&c->chunked);
    c->chunked.max = c->lim.body_bytes;
    c->continue_sent = false;
    c->head_len = 0;
    c->state = CONN_HEAD;
    conn_set_deadline(c, c->lim.header_timeout_ms);
    return true;
}

/* Drop a finished request's bytes from the input and go back to IDLE,
 * unless the answer closes the connection (then it stays CLOSING and any
 * pipelined bytes behind it are never served). */
static void request_end(struct conn *c, size_t used)
{
    shoal_buf_consume(&c->in, used);
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_IDLE;
    conn_set_deadline(c, c->srv->info->cfg->limits.keepalive_ms);
}

/* Run the state machine over the bytes in c->in. */
static void conn_process(struct conn *c)
{
    struct http_error herr;
    for (;;) {
        if (c->state == CONN_CLOSING || c->state == CONN_WAIT || c->state == CONN_STREAM)
            return;
        if (c->state == CONN_IDLE) {
            if (c->in.len == 0)
                return;
            if (!request_begin(c)) {
                conn_close(c);
                return;
            }
        }
        if (c->state == CONN_HEAD) {
            size_t used = 0;
            enum http_result r = http_parse_head(&c->parser, c->in.data, c->in.len, c->headers,
                                                 &c->req, &used, &herr);
            if (r == HTTP_AGAIN)
                return;
            if (r == HTTP_ERROR) {
                conn_fail(c, herr.status, herr.msg);
                return;
            }
            c->head_len = used;
            if (c->tcp && !bearer_ok(c, c->in.data)) {
                conn_fail(c, 401, "missing or wrong bearer token (Authorization: Bearer ...)");
                return;
            }
            c->state = CONN_BODY;
            conn_set_deadline(c, c->lim.body_timeout_ms);
        }
        /* CONN_BODY */
        bool has_body = c->req.chunked || c->req.content_length > 0;
        if (has_body && c->req.expect_continue && !c->continue_sent &&
            c->in.len == c->head_len) {
            c->continue_sent = true;
            if (shoal_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") != SHOAL_OK) {
                conn_close(c);
                return;
            }
            conn_flush(c);
            return;
        }
        if (c->req.chunked) {
            size_t used = 0;
            enum http_result r = http_parse_chunked(&c->parser, c->in.data + c->head_len,
                                                    c->in.len - c->head_len, &c->chunked, &used,
                                                    &herr);
            if (r == HTTP_ERROR) {
                conn_fail(c, herr.status, herr.msg);
                return;
            }
            /* Drop the framing bytes already decoded so the input holds only
             * the head plus undecoded bytes. */
            memmove(c->in.data + c->head_len, c->in.data + c->head_len + used,
                    c->in.len - c->head_len - used);
            c->in.len -= used;
            c->in.data[c->in.len] = '\0';
            if (r == HTTP_AGAIN)
                return;
            dispatch(c, c->chunked.data, c->chunked.len);
            if (c->fd < 0)
                return;
            if (c->state == CONN_WAIT || c->state == CONN_STREAM) {
                c->wait_used = c->head_len;
                return;
            }
            request_end(c, c->head_len);
        } else {
            size_t cl = c->req.content_length > 0 ? (size_t)c->req.content_length : 0;
            if (c->in.len - c->head_len < cl)
                return;
            dispatch(c, c->in.data + c->head_len, cl);
            if (c->fd < 0)
                return;
            if (c->state == CONN_WAIT || c->state == CONN_STREAM) {
                c->wait_used = c->head_len + cl;
                return;
            }
            request_end(c, c->head_len + cl);
        }
        if (c->state == CONN_CLOSING) {
            conn_set_deadline(c, 2000);
            return;
        }
        /* Stop parsing pipelined requests while the client is not reading
         * our answers; reading resumes when the output drains. */
        if (c->out.len > OUT_HIGH_WATER)
            return;
    }
}

/* ---- events ---- */

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    for (int rounds = 0; rounds < 4; rounds++) {
        if (c->state == CONN_CLOSING) {
            /* Discard: we only wait for the client to close. */
            char sink[4096];
            ssize_t n = recv(fd, sink, sizeof(sink), 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                conn_close(c);
            return;
        }
        /* A full input holds a whole request plus READ_CHUNK pipelined
         * bytes: stop reading until the parser consumes some. */
        size_t room = c->in.len < c->in.max ? c->in.max - c->in.len : 0;
        if (room > READ_CHUNK)
            room = READ_CHUNK;
        if (room == 0) {
            event_del(&c->rev);
            c->reading = false;
            return;
        }
        if (shoal_buf_reserve(&c->in, room) != SHOAL_OK) {
            conn_close(c);
            return;
        }
        ssize_t n = recv(fd, c->in.data + c->in.len, room, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            c->in.data[c->in.len] = '\0';
            bool full = (size_t)n == room;
            conn_process(c);
            if (c->fd < 0)
                return;
            if (!full)
                break;
            continue;
        }
        if (n == 0) {
            /* Client closed. A half-received request cannot be answered. */
            conn_close(c);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(c);
            return;
        }
        break;
    }
    conn_flush(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    bool was_blocked = c->out.len > OUT_HIGH_WATER;
    conn_flush(c);
    if (c->fd < 0)
        return;
    if (was_blocked && c->out.len <= OUT_HIGH_WATER) {
        conn_process(c); /* pipelined requests waiting on us */
        if (c->fd >= 0)
            conn_flush(c);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->timer_armed = false;
    if (!c->deadline_ms)
        return;
    uint64_t now = shoal_now_ms();
    if (now < c->deadline_ms) {
        uint64_t left = c->deadline_ms - now;
        c->deadline_ms = 0;
        conn_set_deadline(c, left);
        return;
    }
    switch (c->state) {
    case CONN_HEAD:
    case CONN_BODY:
        c->srv->stats.closed_timeout++;
        conn_fail(c, 408,
                  c->state == CONN_HEAD ? "request headers not received in time"
                                        : "request body not received in time");
        break;
    case CONN_IDLE:
    case CONN_CLOSING:
        conn_close(c);
        break;
    case CONN_WAIT:
    case CONN_STREAM:
        break; /* no deadline while a reply is promised */
    }
}

static void maybe_drained(struct server *s)
{
    if (s->draining && !s->conns && s->drain_done) {
        void (*done)(void *) = s->drain_done;
        s->drain_done = NULL;
        done(s->drain_arg);
    }
}

static void conn_close(struct conn *c)
{
    struct server *s = c->srv;
    event_del(&c->rev);
    event_del(&c->wev);
    event_del(&c->tev);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->stats.open--;
    shoal_buf_fini(&c->in);
    shoal_buf_fini(&c->out);
    shoal_buf_fini(&c->chunked);
    free(c->headers);
    c->headers = NULL;
    if (c->later) {
        struct api_later *p = c->later;
        p->c = NULL; /* the answer, when it comes, has nowhere to go */
        c->later = NULL;
        later_gone_schedule(p);
    }
    /* Callers check c->fd < 0 after any call that may close, so the struct
     * must outlive this call: it is freed by the reaper on the next loop
     * iteration (or by server_free). */
    c->next = s->graveyard;
    s->graveyard = c;
    if (s->reaper) {
        struct timeval now = {0, 0};
        event_add(s->reaper, &now);
    }
    maybe_drained(s);
}

static void reap(struct server *s)
{
    while (s->graveyard) {
        struct conn *c = s->graveyard;
        s->graveyard = c->next;
        free(c);
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reap(arg);
}

/* Rejected connections linger briefly after their 503: closing at once
 * would make the client's write of its request fail (EPIPE / reset) before
 * it reads why. At most LINGER_MAX of them, each for LINGER_MS; past that
 * a rejected connection is closed at once. */
#define LINGER_MAX 256u
#define LINGER_MS  1000u

struct rejected {
    struct server *srv;
    struct rejected *prev, *next;
    int fd;
    struct event *ev;
    uint64_t deadline_ms; /* total, however the client keeps sending */
};

static void rejected_end(struct rejected *l)
{
    struct server *s = l->srv;
    if (l->prev)
        l->prev->next = l->next;
    else
        s->rejected = l->next;
    if (l->next)
        l->next->prev = l->prev;
    s->n_rejected--;
    event_free(l->ev);
    close(l->fd);
    free(l);
}

static void on_rejected(evutil_socket_t fd, short what, void *arg)
{
    struct rejected *l = arg;
    if ((what & EV_READ) && shoal_now_ms() < l->deadline_ms) {
        char sink[4096];
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
            return; /* keep discarding until EOF or the timeout */
    }
    rejected_end(l);
}

/* Best-effort 503 to a connection we cannot take. */
static void reject_full(struct server *s, int fd)
{
#define FULL_BODY "{\"error\":{\"type\":\"unavailable\",\"message\":\"too many connections; retry later\"}}"
    static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                               "Content-Length: 78\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" FULL_BODY;
    _Static_assert(sizeof(FULL_BODY) - 1 == 78, "Content-Length of the 503 body");
#undef FULL_BODY
    ssize_t n = send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
    struct rejected *l = s->n_rejected < LINGER_MAX ? malloc(sizeof(*l)) : NULL;
    if (l) {
        l->srv = s;
        l->fd = fd;
        l->deadline_ms = shoal_now_ms() + LINGER_MS;
        l->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, on_rejected, l);
        struct timeval tv = {.tv_sec = LINGER_MS / 1000, .tv_usec = (LINGER_MS % 1000) * 1000};
        if (l->ev && event_add(l->ev, &tv) == 0) {
            l->prev = NULL;
            l->next = s->rejected;
            if (s->rejected)
                s->rejected->prev = l;
            s->rejected = l;
            s->n_rejected++;
            return;
        }
        if (l->ev)
            event_free(l->ev);
        free(l);
    }
    close(fd);
}

/* Make fd (connected, non-blocking) a connection in the IDLE state. */
static bool conn_open(struct server *s, int fd, bool tcp)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    c->srv = s;
    c->fd = fd;
    c->tcp = tcp;
    c->state = CONN_IDLE;
    shoal_buf_init(&c->in, (size_t)s->info->cfg->limits.header_bytes + READ_CHUNK);
    shoal_buf_init(&c->out, SIZE_MAX / 2);
    shoal_buf_init(&c->chunked, s->info->cfg->limits.body_bytes);
    event_assign(&c->rev, s->base, fd, EV_READ | EV_PERSIST, on_read, c);
    event_assign(&c->wev, s->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    evtimer_assign(&c->tev, s->base, on_timer, c);
    event_add(&c->rev, NULL);
    c->reading = true;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->stats.open++;
    /* A connection that never sends a byte is cut by the header timeout. */
    conn_set_deadline(c, s->info->cfg->limits.header_timeout_ms);
    return true;
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    if (s->draining)
        return;
    if (s->lunix.fd >= 0 && !s->lunix.active) {
        event_add(&s->lunix.ev, NULL);
        s->lunix.active = true;
    }
    if (s->ltcp.fd >= 0 && !s->ltcp.active) {
        event_add(&s->ltcp.ev, NULL);
        s->ltcp.active = true;
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    struct listener *l = arg;
    struct server *s = l->srv;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: pause accepting briefly instead of
                 * spinning on a listener that stays readable. */
                shoal_log(SHOAL_LOG_WARN, "accept_paused", "%s", strerror(errno));
                for (struct listener *x = &s->lunix; x; x = x == &s->lunix ? &s->ltcp : NULL) {
                    if (x->active) {
                        event_del(&x->ev);
                        x->active = false;
                    }
                }
                struct timeval tv = {0, 100000};
                evtimer_add(s->accept_pause, &tv);
            }
            return;
        }
        s->stats.accepted++;
        if (s->stats.open >= s->info->cfg->limits.max_connections) {
            s->stats.rejected_full++;
            reject_full(s, fd);
            continue;
        }
        if (!conn_open(s, fd, l->tcp))
            reject_full(s, fd);
    }
}

/* ---- lifecycle ---- */

static void listener_start(struct server *s, struct listener *l, int fd, bool tcp)
{
    l->srv = s;
    l->fd = fd;
    l->tcp = tcp;
    event_assign(&l->ev, s->base, fd, EV_READ | EV_PERSIST, on_accept, l);
    event_add(&l->ev, NULL);
    l->active = true;
}

enum shoal_err server_new(struct event_base *base, const struct api_info *info,
                          struct server **out, struct shoal_diag *d)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    s->base = base;
    s->info = info;
    s->unix_sock.fd = s->unix_sock.lock_fd = -1;
    s->lunix.fd = s->ltcp.fd = -1;
    shoal_buf_init(&s->reply, REPLY_MAX);
    s->accept_pause = evtimer_new(base, on_accept_resume, s);
    s->reaper = evtimer_new(base, on_reap, s);
    if (!s->accept_pause || !s->reaper) {
        server_free(s);
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return SHOAL_OK;
}

enum shoal_err server_listen(struct server *s, struct shoal_diag *d)
{
    const struct config *cfg = s->info->cfg;
    enum shoal_err err = listen_unix_open(cfg->listen.socket, &s->unix_sock, d);
    if (err)
        return err;
    listener_start(s, &s->lunix, s->unix_sock.fd, false);
    if (cfg->listen.tcp) {
        int fd;
        err = listen_tcp_open(cfg->listen.tcp_host, cfg->listen.tcp_port, &fd, d);
        if (err)
            return err; /* server_free closes the Unix listener */
        listener_start(s, &s->ltcp, fd, true);
    }
    return SHOAL_OK;
}

enum shoal_err server_adopt(struct server *s, int fd, bool tcp)
{
    return conn_open(s, fd, tcp) ? SHOAL_OK : SHOAL_ERR_NOMEM;
}

void server_config_changed(struct server *s)
{
    /* Limits and the token are read from info->cfg at each request start;
     * nothing is cached that needs refreshing. Kept as the hook where
     * future caches (route tables, rate limiters) are rebuilt. */
    (void)s;
}

static void close_listeners(struct server *s)
{
    if (s->lunix.active)
        event_del(&s->lunix.ev);
    s->lunix.active = false;
    s->lunix.fd = -1;
    listen_unix_close(&s->unix_sock);
    if (s->ltcp.active)
        event_del(&s->ltcp.ev);
    s->ltcp.active = false;
    if (s->ltcp.fd >= 0)
        close(s->ltcp.fd);
    s->ltcp.fd = -1;
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    unsigned cut = 0;
    while (s->conns) {
        conn_close(s->conns);
        cut++;
    }
    if (cut)
        shoal_log(SHOAL_LOG_WARN, "shutdown_cut", "%u connections did not finish in time", cut);
    maybe_drained(s);
}

void server_shutdown(struct server *s, void (*done)(void *arg), void *arg)
{
    if (s->draining)
        return;
    s->draining = true;
    s->drain_done = done;
    s->drain_arg = arg;
    close_listeners(s);
    evtimer_del(s->accept_pause);
    /* Idle connections go now; the others finish their request first and
     * are answered with Connection: close. */
    struct conn *next;
    for (struct conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_IDLE && c->in.len == 0 && c->out.len == 0)
            conn_close(c);
    }
    if (!s->conns) {
        maybe_drained(s);
        return;
    }
    uint32_t ms = s->info->cfg->limits.shutdown_ms;
    s->drain_timer = evtimer_new(s->base, on_drain_deadline, s);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    if (s->drain_timer)
        evtimer_add(s->drain_timer, &tv);
    else
        on_drain_deadline(-1, 0, s);
}

void server_free(struct server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_close(s->conns);
    while (s->rejected)
        rejected_end(s->rejected);
    close_listeners(s);
    reap(s);
    if (s->reaper)
        event_free(s->reaper);
    if (s->accept_pause)
        event_free(s->accept_pause);
    if (s->drain_timer)
        event_free(s->drain_timer);
    shoal_buf_fini(&s->reply);
    free(s);
}

void server_stats_get(const struct server *s, struct server_stats *out)
{
    *out = s->stats;
}
