/* test_server_stream.c: streamed replies of daemon/server.c (api_later_stream_*
 * and api_later_on_gone) over real sockets. The routes are this file's own
 * api_handle; the client side reads raw bytes from a socketpair and decodes
 * the chunked framing itself, strictly, so the server is checked against an
 * independent reading of HTTP/1.1, not against its own code. */
#include "config.h"
#include "server.h"
#include "test.h"

#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Long timeouts so that only the deadlines a test is about can fire. */
#define CONFIG_HEAD                                                                                \
    "listen:\n  socket: /nonexistent/stream.sock\n"                                                \
    "limits:\n  header_timeout: 1h\n  body_timeout: 1h\n"                                          \
    "  keepalive_timeout: 1h\n"
static const char config_long[] = CONFIG_HEAD "  shutdown_timeout: 5s\nlog:\n  level: off\n";
static const char config_short[] = CONFIG_HEAD "  shutdown_timeout: 150ms\nlog:\n  level: off\n";

static struct event_base *base;
static struct config *cfg_long, *cfg_short;
static struct api_info info;

/* ---- the routes ---- */

enum job_mode {
    MODE_TIMER,        /* begin on the first tick, one chunk per tick, end after n */
    MODE_INSIDE_OPEN,  /* begin and one chunk inside the handler, the rest on ticks */
    MODE_FOREVER,      /* one chunk per tick until a write fails; gone ends p */
    MODE_FOREVER_END,  /* the same, but the producer ends p itself on false */
    MODE_FOREVER_LATE, /* on false, register on_gone only then */
    MODE_HANG,         /* promise only, never begun; gone ends p */
    MODE_FLOOD,        /* one tick writing 64 KiB chunks until false */
    MODE_ABORT,        /* begin, one chunk, then api_later_done */
};

struct job {
    struct api_later *p;
    struct event *tick;
    enum job_mode mode;
    int n, sent, status;
    unsigned interval_ms;
    int gone;         /* on_gone calls */
    int writes_false; /* writes that returned false */
    int writes_after_false;
    bool begun, ended;
    size_t accepted; /* bytes of successful writes */
};

#define JOBS_MAX 8
static struct job jobs[JOBS_MAX];
static int n_jobs;

static void jobs_reset(void)
{
    for (int i = 0; i < n_jobs; i++)
        if (jobs[i].tick)
            event_free(jobs[i].tick);
    memset(jobs, 0, sizeof(jobs));
    n_jobs = 0;
}

static void job_end(struct job *j)
{
    CHECK(!j->ended);
    j->ended = true;
    if (j->tick)
        evtimer_del(j->tick);
    if (j->begun)
        api_later_stream_end(j->p);
    else
        api_later_done(j->p, 503, "{}", 2);
}

static void on_gone(void *arg)
{
    struct job *j = arg;
    j->gone++;
    CHECK(!j->ended); /* never after p is ended */
    if (!j->ended)
        job_end(j); /* ending p from inside the notice is allowed */
}

static void job_arm(struct job *j)
{
    struct timeval tv = {0, (suseconds_t)j->interval_ms * 1000};
    evtimer_add(j->tick, &tv);
}

static bool job_write(struct job *j, const char *data, size_t n)
{
    if (j->writes_false)
        j->writes_after_false++;
    bool ok = api_later_stream_write(j->p, data, n);
    if (ok)
        j->accepted += n;
    else
        j->writes_false++;
    return ok;
}

static bool job_chunk(struct job *j)
{
    char line[32];
    int k = snprintf(line, sizeof(line), "data: %d\n\n", j->sent);
    j->sent++;
    return job_write(j, line, (size_t)k);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct job *j = arg;
    CHECK(!j->ended);
    if (j->ended)
        return;
    if (!j->begun) {
        j->begun = true;
        if (!api_later_stream_begin(j->p, j->status, "text/event-stream")) {
            job_end(j);
            return;
        }
    }
    switch (j->mode) {
    case MODE_TIMER:
    case MODE_INSIDE_OPEN:
        if (j->sent < j->n) {
            CHECK(job_chunk(j));
            /* An empty write is a no-op: it must not end the chunked body. */
            CHECK(job_write(j, "", 0));
        }
        if (j->sent >= j->n) {
            job_end(j);
            return;
        }
        break;
    case MODE_FOREVER:
    case MODE_FOREVER_END:
    case MODE_FOREVER_LATE:
        if (!job_chunk(j)) {
            if (j->mode == MODE_FOREVER_END)
                job_end(j);
            else if (j->mode == MODE_FOREVER_LATE)
                api_later_on_gone(j->p, on_gone, j);
            return; /* stop producing */
        }
        break;
    case MODE_FLOOD: {
        static char blob[64 * 1024];
        memset(blob, 'x', sizeof(blob));
        for (int i = 0; i < 1000 && job_write(j, blob, sizeof(blob)); i++) {
        }
        return; /* gone ends p */
    }
    case MODE_ABORT:
        CHECK(job_write(j, "partial", 7));
        j->ended = true;
        api_later_done(j->p, 500, "{}", 2);
        return;
    case MODE_HANG:
        return;
    }
    job_arm(j);
}

/* The value of query parameter name (digits only), or def. */
static int query_int(const struct api_request *req, const char *name, int def)
{
    size_t nl = strlen(name);
    const char *q = req->query, *end = req->query + req->query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            int64_t v = def;
            if (shoal_parse_i64(q + nl + 1, (size_t)(stop - q) - nl - 1, 0, 1000000, &v) ==
                SHOAL_OK)
                return (int)v;
            return def;
        }
        q = stop + 1;
    }
    return def;
}

static bool path_is(const struct api_request *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static struct job *job_new(const struct api_request *req, enum job_mode mode)
{
    CHECK(n_jobs < JOBS_MAX);
    if (n_jobs >= JOBS_MAX)
        return NULL;
    struct job *j = &jobs[n_jobs++];
    j->mode = mode;
    j->n = query_int(req, "n", 3);
    j->status = query_int(req, "status", 200);
    j->interval_ms = (unsigned)query_int(req, "ms", 1);
    j->p = api_reply_later(req);
    CHECK(j->p != NULL);
    j->tick = evtimer_new(base, on_tick, j);
    CHECK(j->tick != NULL);
    if (mode != MODE_FOREVER_LATE)
        api_later_on_gone(j->p, on_gone, j);
    return j;
}

void api_handle(const struct api_info *inf, const struct api_request *req, struct shoal_buf *body,
                struct api_reply *rep)
{
    (void)inf;
    static const struct {
        const char *path;
        enum job_mode mode;
    } ticked[] = {
        {"/timer", MODE_TIMER},
        {"/forever", MODE_FOREVER},
        {"/forever-end", MODE_FOREVER_END},
        {"/forever-late", MODE_FOREVER_LATE},
        {"/hang", MODE_HANG},
        {"/flood", MODE_FLOOD},
        {"/abort", MODE_ABORT},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(ticked); i++) {
        if (!path_is(req, ticked[i].path))
            continue;
        struct job *j = job_new(req, ticked[i].mode);
        if (j && j->mode != MODE_HANG)
            job_arm(j);
        /* Whatever the handler leaves here is ignored once it promised. */
        rep->status = 418;
        CHECK(shoal_buf_puts(body, "{\"ignored\":true}") == SHOAL_OK);
        return;
    }
    if (path_is(req, "/inside")) {
        /* The whole stream inside the handler; a second promise is refused. */
        struct api_later *p = api_reply_later(req);
        CHECK(p != NULL);
        CHECK(api_reply_later(req) == NULL);
        CHECK(api_later_stream_begin(p, query_int(req, "status", 200), "text/plain"));
        CHECK(api_later_stream_write(p, "one", 3));
        CHECK(api_later_stream_write(p, "", 0));
        CHECK(api_later_stream_write(p, "two!", 4));
        CHECK(api_later_stream_write(p, "three", 5));
        api_later_stream_end(p);
        rep->status = 418;
        return;
    }
    if (path_is(req, "/inside-open")) {
        struct job *j = job_new(req, MODE_INSIDE_OPEN);
        if (!j)
            return;
        j->begun = true;
        CHECK(api_later_stream_begin(j->p, 200, "text/event-stream"));
        CHECK(job_chunk(j));
        job_arm(j);
        return;
    }
    if (path_is(req, "/flood-inside")) {
        /* Nothing is sent before the handler returns, so the cap is hit
         * here; the connection may not close under the handler's feet. */
        struct job *j = job_new(req, MODE_FLOOD);
        if (!j)
            return;
        j->begun = true;
        CHECK(api_later_stream_begin(j->p, 200, "application/octet-stream"));
        static char blob[64 * 1024];
        memset(blob, 'y', sizeof(blob));
        for (int i = 0; i < 1000 && job_write(j, blob, sizeof(blob)); i++) {
        }
        CHECK_EQ_INT(j->writes_false, 1);
        /* The request's views are still readable after the cut. */
        CHECK(path_is(req, "/flood-inside"));
        return;
    }
    if (path_is(req, "/plain")) {
        rep->status = 200;
        CHECK(shoal_buf_puts(body, "{\"plain\":true}") == SHOAL_OK);
        return;
    }
    rep->status = 404;
    api_error_body(body, "not_found", "no such route");
}

/* server.c reports errors through these (api.c in the daemon). */
void api_error_body(struct shoal_buf *body, const char *type, const char *message)
{
    enum shoal_err err =
        shoal_buf_printf(body, "{\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}", type, message);
    (void)err;
}

const char *api_error_type(int status)
{
    return status >= 500 ? "internal" : "bad_request";
}

/* ---- the client side ---- */

struct client {
    int fd;
    struct shoal_buf in;
    bool eof;     /* read returned 0 or a reset */
    bool no_read; /* a slow reader: leave the bytes in the kernel */
};

#define CLIENTS_MAX 4
static struct client *clients[CLIENTS_MAX];

static void client_open(struct client *cl, struct server *srv)
{
    memset(cl, 0, sizeof(*cl));
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(server_adopt(srv, sv[0], false) == SHOAL_OK);
    cl->fd = sv[1];
    shoal_buf_init(&cl->in, 64u << 20);
    for (int i = 0; i < CLIENTS_MAX; i++) {
        if (!clients[i]) {
            clients[i] = cl;
            break;
        }
    }
}

static void client_close(struct client *cl)
{
    for (int i = 0; i < CLIENTS_MAX; i++)
        if (clients[i] == cl)
            clients[i] = NULL;
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    shoal_buf_fini(&cl->in);
}

static void client_send(struct client *cl, const char *s)
{
    size_t n = strlen(s);
    CHECK_EQ_INT(send(cl->fd, s, n, MSG_NOSIGNAL), (long long)n);
}

static void client_read(struct client *cl)
{
    if (cl->eof || cl->no_read || cl->fd < 0)
        return;
    char tmp[65536];
    for (;;) {
        ssize_t n = recv(cl->fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            CHECK(shoal_buf_append(&cl->in, tmp, (size_t)n) == SHOAL_OK);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            cl->eof = true;
        return;
    }
}

/* One loop turn, then read what the clients were sent. */
static void turn(void)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < CLIENTS_MAX; i++)
        if (clients[i])
            client_read(clients[i]);
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL);
}

/* cond is evaluated once per turn (it may consume a response). */
#define PUMP_UNTIL(cond, ms)                                                                       \
    do {                                                                                           \
        uint64_t until_ = shoal_now_ms() + (ms);                                                   \
        bool ok_;                                                                                  \
        while (!(ok_ = (cond)) && shoal_now_ms() < until_)                                         \
            turn();                                                                                \
        test_checks++;                                                                             \
        if (!ok_) {                                                                                \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);       \
        }                                                                                          \
    } while (0)

static void pump_for(unsigned ms)
{
    uint64_t until = shoal_now_ms() + ms;
    while (shoal_now_ms() < until)
        turn();
}

/* ---- the oracle: one HTTP/1.1 response, decoded strictly ---- */

struct resp {
    int status;
    char head[1024]; /* status line and header fields, NUL-terminated */
    bool chunked, has_length;
    char body[1024]; /* decoded, NUL-terminated (truncated past its size) */
    size_t body_len;
    size_t chunk_len[64];
    unsigned n_chunks;
    bool complete;
    size_t used; /* bytes of the response, framing included */
};

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void body_add(struct resp *r, const char *p, size_t n)
{
    size_t cap = sizeof(r->body) - 1;
    size_t have = r->body_len < cap ? r->body_len : cap;
    size_t k = n < cap - have ? n : cap - have;
    memcpy(r->body + have, p, k);
    r->body_len += n;
    r->body[have + k] = '\0';
}

/* Decode the response at buf[0..n). eof: the peer closed (ends a body that
 * has neither length nor chunks). head_only: it answers a HEAD. false when
 * the bytes are not a valid response; r->complete false when it is cut
 * short or still arriving. */
static bool resp_parse(const char *buf, size_t n, bool eof, bool head_only, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    const char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (!end)
        return true;
    size_t hl = (size_t)(end - buf) + 4;
    if (hl >= sizeof(r->head) || hl < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0)
        return false;
    memcpy(r->head, buf, hl);
    r->head[hl] = '\0';
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    r->chunked = strstr(r->head, "\r\nTransfer-Encoding: chunked\r\n") != NULL;
    const char *cl = strstr(r->head, "\r\nContent-Length: ");
    size_t off = hl;
    if (head_only) {
        r->complete = true;
        r->used = hl;
        return true;
    }
    if (cl) {
        r->has_length = true;
        int64_t len = 0;
        const char *num = cl + 18;
        if (shoal_parse_i64(num, strcspn(num, "\r"), 0, 1 << 30, &len) != SHOAL_OK)
            return false;
        if (n - off < (size_t)len)
            return true;
        body_add(r, buf + off, (size_t)len);
        r->complete = true;
        r->used = off + (size_t)len;
        return true;
    }
    if (!r->chunked) {
        body_add(r, buf + off, n - off);
        r->complete = eof;
        r->used = n;
        return true;
    }
    for (;;) {
        /* chunk-size CRLF: lowercase or uppercase hex only, no extensions */
        size_t size = 0, i = off;
        while (i < n && hexval(buf[i]) >= 0) {
            size = size * 16 + (size_t)hexval(buf[i]);
            i++;
            if (i - off > 16)
                return false;
        }
        if (i + 2 > n)
            return true;
        if (i == off || buf[i] != '\r' || buf[i + 1] != '\n')
            return false;
        i += 2;
        if (size == 0) {
            /* no trailers: the final CRLF follows at once */
            if (i + 2 > n)
                return true;
            if (buf[i] != '\r' || buf[i + 1] != '\n')
                return false;
            r->complete = true;
            r->used = i + 2;
            return true;
        }
        if (n - i < size + 2)
            return true;
        if (buf[i + size] != '\r' || buf[i + size + 1] != '\n')
            return false;
        if (r->n_chunks < SHOAL_ARRAY_LEN(r->chunk_len))
            r->chunk_len[r->n_chunks] = size;
        r->n_chunks++;
        body_add(r, buf + i, size);
        off = i + size + 2;
    }
}

/* Parse the response at offset *at of cl's input; advance *at past it. */
static bool client_resp(struct client *cl, size_t *at, bool head_only, struct resp *r)
{
    if (*at > cl->in.len)
        return false;
    bool ok =
        resp_parse(cl->in.data ? cl->in.data + *at : "", cl->in.len - *at, cl->eof, head_only, r);
    if (ok && r->complete)
        *at += r->used;
    return ok && r->complete;
}

static struct server *server_start(struct config *cfg)
{
    info.cfg = cfg;
    struct server *srv = NULL;
    CHECK(server_new(base, &info, &srv, NULL) == SHOAL_OK);
    jobs_reset();
    return srv;
}

static void server_stop(struct server *srv)
{
    server_free(srv);
    pump_for(5); /* gone notices of promises cut by server_free; the reaper */
    for (int i = 0; i < n_jobs; i++)
        CHECK(jobs[i].ended); /* every promise was kept: no leaks */
    jobs_reset();
}

static void check_sse_head(const struct resp *r, const char *connection)
{
    CHECK_EQ_INT(r->status, 200);
    CHECK_CONTAINS(r->head, "\r\nContent-Type: text/event-stream\r\n");
    CHECK_CONTAINS(r->head, "\r\nCache-Control: no-cache\r\n");
    CHECK_CONTAINS(r->head, connection);
    CHECK(strstr(r->head, "Content-Length") == NULL);
}

/* ---- tests ---- */

/* A stream written from timer callbacks: exact chunk framing, one chunk per
 * write, then a pipelined and a later request on the same connection. */
static void test_timer_stream_keepalive(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(&cl,
                "GET /timer?n=5 HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resp r1, r2, r3;
    size_t at = 0;
    PUMP_UNTIL(n_jobs == 1 && jobs[0].ended && client_resp(&cl, &at, false, &r1), 5000);
    static const char framed[] = "9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n"
                                 "9\r\ndata: 3\n\n\r\n9\r\ndata: 4\n\n\r\n0\r\n\r\n";
    check_sse_head(&r1, "\r\nConnection: keep-alive\r\n");
    CHECK(r1.chunked);
    CHECK_EQ_INT(r1.n_chunks, 5);
    CHECK_STR(r1.body, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
    size_t hl = strlen(r1.head);
    CHECK_EQ_INT(r1.used - hl, sizeof(framed) - 1);
    CHECK(cl.in.len >= r1.used && memcmp(cl.in.data + hl, framed, sizeof(framed) - 1) == 0);

    PUMP_UNTIL(client_resp(&cl, &at, false, &r2), 5000);
    CHECK_EQ_INT(r2.status, 200);
    CHECK_STR(r2.body, "{\"plain\":true}");
    CHECK_CONTAINS(r2.head, "\r\nConnection: keep-alive\r\n");

    client_send(&cl, "GET /timer?n=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(client_resp(&cl, &at, false, &r3), 5000);
    CHECK_STR(r3.body, "data: 0\n\n");
    CHECK_EQ_INT(at, cl.in.len); /* nothing stray after the terminator */

    pump_for(5);
    for (int i = 0; i < n_jobs; i++) {
        CHECK_EQ_INT(jobs[i].gone, 0); /* ended normally: no notice */
        CHECK_EQ_INT(jobs[i].writes_false, 0);
    }
    struct server_stats st;
    server_stats_get(srv, &st);
    CHECK_EQ_INT(st.requests, 3);
    CHECK_EQ_INT(st.errors_4xx + st.errors_5xx, 0);
    CHECK_EQ_INT(st.open, 1);
    client_close(&cl);
    server_stop(srv);
}

/* Begun, written and ended inside the handler; begun inside and ended from a
 * timer; both followed by a request on the same connection. */
static void test_inside_handler(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(&cl, "POST /inside HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}GET /plain "
                     "HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resp r;
    size_t at = 0;
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_EQ_INT(r.status, 200);
    CHECK_CONTAINS(r.head, "\r\nContent-Type: text/plain\r\n");
    CHECK_CONTAINS(r.head, "\r\nTransfer-Encoding: chunked\r\n");
    CHECK_EQ_INT(r.n_chunks, 3);
    CHECK_EQ_INT(r.chunk_len[0], 3);
    CHECK_EQ_INT(r.chunk_len[1], 4);
    CHECK_EQ_INT(r.chunk_len[2], 5);
    CHECK_STR(r.body, "onetwo!three");
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_STR(r.body, "{\"plain\":true}");

    client_send(
        &cl,
        "GET /inside-open?n=3 HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    check_sse_head(&r, "\r\nConnection: keep-alive\r\n");
    CHECK_EQ_INT(r.n_chunks, 3);
    CHECK_STR(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_STR(r.body, "{\"plain\":true}");
    CHECK_EQ_INT(at, cl.in.len);
    CHECK(n_jobs == 1 && jobs[0].ended && jobs[0].gone == 0);

    struct server_stats st;
    server_stats_get(srv, &st);
    CHECK_EQ_INT(st.requests, 4);
    CHECK_EQ_INT(st.open, 1);
    client_close(&cl);
    server_stop(srv);
}

/* HTTP/1.0 has no chunked encoding: the body is the bytes up to the close. */
static void test_http10(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(&cl, "GET /timer?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    struct resp r;
    size_t at = 0;
    PUMP_UNTIL(cl.eof, 5000);
    CHECK(client_resp(&cl, &at, false, &r));
    check_sse_head(&r, "\r\nConnection: close\r\n");
    CHECK(!r.chunked);
    CHECK_STR(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    client_close(&cl);

    client_open(&cl, srv);
    client_send(&cl, "POST /inside HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
    at = 0;
    PUMP_UNTIL(cl.eof, 5000);
    CHECK(client_resp(&cl, &at, false, &r));
    CHECK_CONTAINS(r.head, "\r\nConnection: close\r\n");
    CHECK(!r.chunked);
    CHECK_STR(r.body, "onetwo!three");
    client_close(&cl);
    PUMP_UNTIL(n_jobs == 1 && jobs[0].ended, 1000);
    struct server_stats st;
    server_stats_get(srv, &st);
    PUMP_UNTIL((server_stats_get(srv, &st), st.open == 0), 3000);
    server_stop(srv);
}

/* HEAD: the head a GET would get, no body bytes at all, not even the
 * terminating chunk; writes succeed and are dropped; keep-alive goes on. */
static void test_head(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(
        &cl, "HEAD /timer?n=3 HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resp r;
    size_t at = 0;
    PUMP_UNTIL(n_jobs == 1 && jobs[0].ended && client_resp(&cl, &at, true, &r), 5000);
    check_sse_head(&r, "\r\nConnection: keep-alive\r\n");
    CHECK(r.chunked);
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "{\"plain\":true}");
    CHECK_EQ_INT(at, cl.in.len);
    CHECK_EQ_INT(jobs[0].sent, 3);
    CHECK_EQ_INT(jobs[0].writes_false, 0);

    client_send(&cl,
                "HEAD /inside HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(client_resp(&cl, &at, true, &r), 5000);
    CHECK_CONTAINS(r.head, "\r\nContent-Type: text/plain\r\n");
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_STR(r.body, "{\"plain\":true}");
    CHECK_EQ_INT(at, cl.in.len);
    client_close(&cl);
    server_stop(srv);
}

/* The client goes away mid-stream: the next write says false, the producer
 * stops, and the notice comes exactly once, after the write returned;
 * ending p on false instead cancels the notice; registering after the
 * connection is gone still tells. */
static void test_client_gone(void)
{
    static const char *const paths[] = {"/forever", "/forever-end", "/forever-late"};
    for (int m = 0; m < 3; m++) {
        struct server *srv = server_start(cfg_long);
        struct client cl;
        client_open(&cl, srv);
        char req[64];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[m]);
        client_send(&cl, req);
        struct job *j = &jobs[0];
        PUMP_UNTIL(n_jobs == 1 && j->sent >= 3, 5000);
        CHECK(memmem(cl.in.data, cl.in.len, "data: 0\n\n", 9) != NULL);
        client_close(&cl);
        PUMP_UNTIL(j->ended, 5000);
        pump_for(10);
        CHECK_EQ_INT(j->writes_false, 1);
        CHECK_EQ_INT(j->writes_after_false, 0);
        CHECK_EQ_INT(j->gone, m == 1 ? 0 : 1);
        struct server_stats st;
        server_stats_get(srv, &st);
        CHECK_EQ_INT(st.open, 0);
        CHECK_EQ_INT(st.requests, 1);
        server_stop(srv);
    }
}

/* A client that does not read: the producer is told false once the
 * backlog would pass the cap, and the connection is cut. */
static void test_slow_reader_cut(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    cl.no_read = true;
    client_send(&cl, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n");
    struct job *j = &jobs[0];
    PUMP_UNTIL(n_jobs == 1 && j->ended, 10000);
    CHECK_EQ_INT(j->writes_false, 1);
    CHECK_EQ_INT(j->gone, 1);
    /* Whatever the kernel took, plus at most the cap, was accepted. */
    CHECK(j->accepted >= SHOAL_CAP_HTTP_STREAM_BACKLOG - 2 * 65536);
    CHECK(j->accepted <= SHOAL_CAP_HTTP_STREAM_BACKLOG + (4u << 20));
    struct server_stats st;
    server_stats_get(srv, &st);
    CHECK_EQ_INT(st.open, 0);
    /* The client reads what reached it, then the end: no terminator. */
    cl.no_read = false;
    PUMP_UNTIL(cl.eof, 5000);
    struct resp r;
    CHECK(resp_parse(cl.in.data, cl.in.len, true, false, &r) && !r.complete);
    client_close(&cl);

    /* The same inside the handler: the cap is met before anything is sent. */
    client_open(&cl, srv);
    client_send(&cl, "GET /flood-inside HTTP/1.1\r\nHost: x\r\n\r\n");
    j = &jobs[1];
    PUMP_UNTIL(n_jobs == 2 && j->ended, 10000);
    CHECK_EQ_INT(j->gone, 1);
    CHECK(j->accepted <= SHOAL_CAP_HTTP_STREAM_BACKLOG);
    CHECK(j->accepted >= SHOAL_CAP_HTTP_STREAM_BACKLOG - 65536 - 1024);
    PUMP_UNTIL(cl.eof, 5000);
    client_close(&cl);
    server_stop(srv);
}

/* Ending a begun stream with api_later_done cuts it short. */
static void test_abort(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(&cl, "GET /abort HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(cl.eof, 5000);
    struct resp r;
    CHECK(resp_parse(cl.in.data, cl.in.len, true, false, &r));
    CHECK(!r.complete);
    CHECK_EQ_INT(r.n_chunks, 1);
    CHECK_STR(r.body, "partial");
    CHECK_EQ_INT(jobs[0].gone, 0);
    struct server_stats st;
    server_stats_get(srv, &st);
    CHECK_EQ_INT(st.errors_5xx, 0); /* the reply counted as its 200 */
    CHECK_EQ_INT(st.open, 0);
    client_close(&cl);
    server_stop(srv);
}

/* The status given to begin is counted once, from a timer or the handler. */
static void test_error_counts(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(
        &cl,
        "GET /timer?n=1&status=503 HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /inside?status=429 HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n");
    struct resp r;
    size_t at = 0;
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_EQ_INT(r.status, 503);
    CHECK_STR(r.body, "data: 0\n\n");
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_EQ_INT(r.status, 429);
    PUMP_UNTIL(client_resp(&cl, &at, false, &r), 5000);
    CHECK_EQ_INT(r.status, 200);
    struct server_stats st;
    server_stats_get(srv, &st);
    CHECK_EQ_INT(st.requests, 3);
    CHECK_EQ_INT(st.errors_5xx, 1);
    CHECK_EQ_INT(st.errors_4xx, 1);
    client_close(&cl);
    server_stop(srv);
}

static int drained;
static void on_drained(void *arg)
{
    (void)arg;
    drained++;
}

/* server_shutdown: a stream that finishes within shutdown_timeout is sent
 * whole and the connection then closes; one that does not is cut at the
 * deadline, as is a promise never begun, and both owners are told. */
static void test_drain(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(&cl, "GET /timer?n=10&ms=10 HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(n_jobs == 1 && jobs[0].sent >= 1, 5000);
    drained = 0;
    server_shutdown(srv, on_drained, NULL);
    PUMP_UNTIL(cl.eof, 5000);
    struct resp r;
    size_t at = 0;
    CHECK(client_resp(&cl, &at, false, &r));
    check_sse_head(&r, "\r\nConnection: keep-alive\r\n"); /* begun before the shutdown */
    CHECK_EQ_INT(r.n_chunks, 10);
    CHECK_EQ_INT(at, cl.in.len); /* closed after the terminator */
    CHECK(jobs[0].ended && jobs[0].gone == 0);
    CHECK_EQ_INT(drained, 0); /* the server waits for the client to take it all */
    client_close(&cl);
    PUMP_UNTIL(drained == 1, 5000);
    server_stop(srv);

    srv = server_start(cfg_short);
    struct client c2;
    client_open(&cl, srv);
    client_open(&c2, srv);
    client_send(&cl, "GET /forever?ms=5 HTTP/1.1\r\nHost: x\r\n\r\n");
    client_send(&c2, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(n_jobs == 2 && (jobs[0].sent >= 1 || jobs[1].sent >= 1), 5000);
    drained = 0;
    uint64_t t0 = shoal_now_ms();
    server_shutdown(srv, on_drained, NULL);
    pump_for(50);
    CHECK_EQ_INT(drained, 0); /* the stream goes on meanwhile */
    PUMP_UNTIL(drained == 1 && jobs[0].ended && jobs[1].ended, 5000);
    CHECK(shoal_now_ms() - t0 >= 140);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(jobs[i].gone, 1);
        /* a tick may race the notice once, then the producer stops */
        CHECK(jobs[i].writes_false <= 1);
        CHECK_EQ_INT(jobs[i].writes_after_false, 0);
    }
    PUMP_UNTIL(cl.eof && c2.eof, 5000);
    struct job *fj = jobs[0].mode == MODE_FOREVER ? &jobs[0] : &jobs[1];
    CHECK(fj->sent >= 5); /* it was still streaming after shutdown began */
    at = 0;
    CHECK(resp_parse(cl.in.data, cl.in.len, true, false, &r) && !r.complete && r.n_chunks >= 5);
    CHECK_EQ_INT(c2.in.len, 0);
    client_close(&cl);
    client_close(&c2);
    server_stop(srv);
}

/* server_free with a stream open: the owner is told on the next loop turn
 * (server_stop checks that every promise was then ended). */
static void test_server_free_open_stream(void)
{
    struct server *srv = server_start(cfg_long);
    struct client cl;
    client_open(&cl, srv);
    client_send(&cl, "GET /forever?ms=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    PUMP_UNTIL(n_jobs == 1 && jobs[0].sent >= 2, 5000);
    struct job *j = &jobs[0];
    server_free(srv);
    CHECK_EQ_INT(j->gone, 0); /* not from inside server_free */
    pump_for(5);
    CHECK_EQ_INT(j->gone, 1);
    CHECK(j->ended);
    client_close(&cl);
    jobs_reset();
}

int main(void)
{
    shoal_log_set_level(SHOAL_LOG_OFF);
    base = event_base_new();
    CHECK(base != NULL);
    CHECK(config_load_string("long.yaml", config_long, sizeof(config_long) - 1, &cfg_long, NULL) ==
          SHOAL_OK);
    CHECK(config_load_string("short.yaml", config_short, sizeof(config_short) - 1, &cfg_short,
                             NULL) == SHOAL_OK);
    if (!base || !cfg_long || !cfg_short)
        return test_report("test_server_stream");
    info.started_ms = shoal_now_ms();

    test_timer_stream_keepalive();
    test_inside_handler();
    test_http10();
    test_head();
    test_client_gone();
    test_slow_reader_cut();
    test_abort();
    test_error_counts();
    test_drain();
    test_server_free_open_stream();

    config_free(cfg_long);
    config_free(cfg_short);
    event_base_free(base);
    return test_report("test_server_stream");
}
