/* server.h: the HTTP/1.1 server of shoald (daemon internal): listeners on a
 * Unix socket and optionally loopback TCP, connections driven by the libevent
 * loop, limits from the configuration, graceful drain on shutdown. Every
 * function here runs on the loop thread only. */
#ifndef SHOAL_DAEMON_SERVER_H
#define SHOAL_DAEMON_SERVER_H

#include "common.h"
#include "config.h"
#include "http.h"

#include <stdint.h>

struct event_base;
struct server;

/* ---- listeners (listen.c) ---- */

/* A bound, listening Unix socket and the lock that proves we own it. */
struct listen_unix {
    int fd;      /* listening socket, -1 when closed */
    int lock_fd; /* flock(2)ed "<path>.lock", held for the daemon's life */
    char path[108];
    uint64_t ino; /* inode of the socket we bound, so we remove only ours */
};

/* Create the socket's directory (0700) if missing, take the lock, remove a
 * stale socket (only a socket, owned by us, that nobody answers on), bind
 * with mode 0600 and listen. BUSY when a live daemon answers or holds the
 * lock; PERM when the path is not a socket or not ours. */
enum shoal_err listen_unix_open(const char *path, struct listen_unix *out, struct shoal_diag *d);
/* Stop listening and unlink the socket if it is still the one we bound. */
void listen_unix_close(struct listen_unix *l);
/* Bind a listening TCP socket on a numeric loopback address. */
enum shoal_err listen_tcp_open(const char *host, uint16_t port, int *fd, struct shoal_diag *d);

/* ---- routes (api.c) ---- */

struct conn;

/* What a handler sees: views into the connection's buffer, valid for the
 * call only. */
struct api_request {
    enum http_method method;
    const char *method_name;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    const char *body;
    size_t body_len;
    struct conn *conn; /* for api_reply_later; NULL outside the server */
};

/* What a handler produces: a status and a JSON body in the server's scratch
 * buffer; allow is the Allow header for 405 (a static string). */
struct api_reply {
    int status;
    const char *allow;
};

struct traces_service;
struct tools_service;
struct providers;

/* Facts the routes report, owned by shoald. */
struct api_info {
    const struct config *cfg; /* the snapshot in force; replaced on SIGHUP */
    struct traces_service *traces; /* the trace store service; NULL in tests without one */
    struct tools_service *tools;   /* the tool runtime; NULL in tests without one */
    struct providers *providers;   /* model calls (provider.h); NULL in tests without one */
    uint64_t started_ms;      /* shoal_now_ms() at start */
    int64_t started_unix;     /* wall clock at start, seconds */
};

/* Answering later, for handlers whose work must leave the loop thread:
 * api_reply_later takes the request's reply (whatever the handler then puts
 * in rep or body is ignored), and api_later_done (or api_later_stream_end,
 * below) gives it, exactly once, on the loop thread; body is copied. Until
 * then the connection reads nothing more (pipelined requests wait, in
 * order). If the client goes away first, ending the promise only frees it
 * (api_later_on_gone tells when that happens). api_reply_later returns NULL
 * when out of memory or outside a server (the handler then answers now).
 * The request's views die with the handler call: copy what the work needs.
 * Thread: loop. */
struct api_later;
struct api_later *api_reply_later(const struct api_request *req);
/* Keep promise p with a whole reply and free p. On a stream already begun
 * (below) it aborts instead: the connection is closed without the end of the
 * stream, so the client sees the reply cut short; status and body are
 * ignored. */
void api_later_done(struct api_later *p, int status, const char *body, size_t body_len);

/* Streaming a promised reply (Server-Sent Events and the like): begin, write
 * any number of times, end. They may be called from inside the handler that
 * made the promise (the bytes are then queued and sent once it returns) or
 * later from loop callbacks. Writes are sent as they come; the client gets
 * no chance to make us hold more than SHOAL_CAP_HTTP_STREAM_BACKLOG unsent
 * bytes. A stream reply is counted like any reply (requests, 4xx/5xx once,
 * by the status given to begin). During server_shutdown a stream may run on
 * until limits.shutdown_ms, and is then cut. Thread: loop. */

/* Send the status line and headers of a streamed reply now: Content-Type:
 * content_type (a static or caller-owned string without CR/LF, copied),
 * Cache-Control: no-cache, and Transfer-Encoding: chunked for an HTTP/1.1
 * client; an HTTP/1.0 client gets no length and Connection: close, the end
 * of the reply being the end of the connection. status is 200..599, not
 * 204 or 304 (they have no body). Once per promise. For HEAD only the
 * headers are sent and writes are discarded. false when the connection is
 * already gone or cannot take the headers (out of memory; it is then
 * closed); either way p must still be ended. */
bool api_later_stream_begin(struct api_later *p, int status, const char *content_type);
/* Queue n bytes (one chunk for HTTP/1.1; n == 0 is a no-op) and start
 * sending them; data is copied. false when the connection is gone, or when
 * the client has fallen so far behind that more than
 * SHOAL_CAP_HTTP_STREAM_BACKLOG bytes would wait unsent (a single larger
 * write counts too): the connection is then closed. After false the caller
 * should stop producing; p must still be ended. Only after
 * api_later_stream_begin. */
bool api_later_stream_write(struct api_later *p, const char *data, size_t n);
/* End the stream and free p: the terminating zero-size chunk for HTTP/1.1
 * (the connection then goes on with the next, pipelined request, as after
 * api_later_done), the end of the connection for HTTP/1.0. When the
 * connection is gone this only frees p. Only after api_later_stream_begin
 * (even one that returned false). */
void api_later_stream_end(struct api_later *p);
/* Ask for fn(arg) when the connection closes before p is ended: a write
 * that finds the peer gone, a slow reader cut, the shutdown deadline, a
 * server_free. fn runs once at most, on the loop thread, from an event of
 * its own (never from inside a server call, so the caller of a failing
 * write has its false before fn runs), and never after p is ended: ending
 * p first cancels it. fn may end p (the connection is gone, so ending it
 * only frees it) and may call any server function. If the connection is
 * already gone, fn is scheduled now. A second call replaces fn and arg; fn
 * NULL turns the notice off. The server notices a client that went away
 * only when it writes to it: a producer that may be silent for long should
 * write something harmless now and then (an SSE comment, ": \n\n"). */
void api_later_on_gone(struct api_later *p, void (*fn)(void *arg), void *arg);

/* Route one request. Writes the JSON body to body (reset by the caller). */
void api_handle(const struct api_info *info, const struct api_request *req, struct shoal_buf *body,
                struct api_reply *rep);
/* The query parameter name of req, percent-decoded ('+' is a space) into
 * out: 1 when present, 0 when absent, -1 when malformed (bad escape, NUL)
 * or longer than n-1 bytes. The first occurrence wins. */
int api_query_param(const struct api_request *req, const char *name, char *out, size_t n);

/* ---- the trace store service and its routes (api_traces.c) ---- */

struct event_base;
struct cJSON;
struct config_traces;
struct traces_store;

/* Open the store named by cfg (creating its directory, 0700) and start the
 * query workers. A store that cannot be opened is logged and reported by
 * /healthz; the service still exists (reads may work, writes answer 503).
 * Errors only for NOMEM or when threads cannot start. Thread: loop. */
enum shoal_err traces_service_open(struct event_base *base, const struct config_traces *cfg,
                                   struct traces_service **out, struct shoal_diag *d);
/* Cancel queued queries (their replies say the daemon is stopping), then
 * drain every accepted record to disk and close. NULL is a no-op. */
void traces_service_close(struct traces_service *ts);
/* The store for producers; NULL when disabled or unavailable. */
struct traces_store *traces_service_store(const struct traces_service *ts);
/* True when cfg names the store already open (same enabled and path);
 * other traces settings apply at the next start. */
bool traces_service_same(const struct traces_service *ts, const struct config_traces *cfg);
/* Add "traces": {status, ...} to obj; false when storage is degraded. */
bool traces_service_health(const struct traces_service *ts, struct cJSON *obj);

/* GET /v1/runs, GET /v1/runs/{id}, GET /v1/traces/savings, POST /v1/runs. */
void api_traces_list(const struct api_info *info, const struct api_request *req,
                     struct shoal_buf *body, struct api_reply *rep);
void api_traces_show(const struct api_info *info, const struct api_request *req,
                     struct shoal_buf *body, struct api_reply *rep);
void api_traces_savings(const struct api_info *info, const struct api_request *req,
                        struct shoal_buf *body, struct api_reply *rep);
void api_traces_ingest(const struct api_info *info, const struct api_request *req,
                       struct shoal_buf *body, struct api_reply *rep);

/* ---- the tool runtime and its routes (api_tools.c) ---- */

struct fetch;
/* Load the built-in tools and those of tools.dirs from info->cfg (problems
 * are logged; the rest load). fetch performs the tools' ctx.http requests
 * on the loop. NOMEM. Thread: loop. */
enum shoal_err tools_service_open(const struct api_info *info, struct fetch *fetch,
                                  struct tools_service **out, struct shoal_diag *d);
/* SIGHUP: read the tool files again (a file that now fails keeps its
 * previous version) and take the limits in force. */
void tools_service_reload(struct tools_service *ts);
/* Cancel calls waiting on the network (503 to their clients) and free.
 * Call after server_free and before fetch_free. NULL: no-op. */
void tools_service_close(struct tools_service *ts);

/* GET /v1/tools, POST /v1/tools/{name}/call. */
void api_tools_list(const struct api_info *info, const struct api_request *req,
                    struct shoal_buf *body, struct api_reply *rep);
void api_tools_call(const struct api_info *info, const struct api_request *req,
                    struct shoal_buf *body, struct api_reply *rep);

/* ---- the OpenAI-compatible routes (api_chat.c) ---- */

/* POST /v1/chat/completions (a configured model by name; whole or
 * streamed), GET /v1/models. */
void api_chat_completions(const struct api_info *info, const struct api_request *req,
                          struct shoal_buf *body, struct api_reply *rep);
void api_models(const struct api_info *info, const struct api_request *req, struct shoal_buf *body,
                struct api_reply *rep);

/* Append {"error":{"type":T,"message":M}} to body (M is JSON-escaped). */
void api_error_body(struct shoal_buf *body, const char *type, const char *message);
/* The error type for an HTTP status ("bad_request", "not_found", ...). */
const char *api_error_type(int status);

/* ---- server (server.c) ---- */

/* A server on base with no listeners yet. info must outlive the server. */
enum shoal_err server_new(struct event_base *base, const struct api_info *info,
                          struct server **out, struct shoal_diag *d);
/* Bind and listen on info->cfg's addresses (see listen_unix_open). */
enum shoal_err server_listen(struct server *s, struct shoal_diag *d);
/* Serve an already-connected, non-blocking socket as if it had been
 * accepted (tcp: require the bearer token). The server owns fd after a
 * successful call. Used by tests and the fuzz target over socketpairs. */
enum shoal_err server_adopt(struct server *s, int fd, bool tcp);
/* A new configuration is in force: limits apply to requests that start
 * from now on, the token to the next TCP request. Listen addresses are fixed
 * at start; a change to them is reported by the caller as needing a restart. */
void server_config_changed(struct server *s);
/* Stop accepting and remove the socket; idle connections close now, the
 * others finish their current request (answered with Connection: close)
 * within limits.shutdown_ms, then are cut. done(arg) runs once every
 * connection is gone. */
void server_shutdown(struct server *s, void (*done)(void *arg), void *arg);
void server_free(struct server *s);

/* Counters for /metrics and logs. */
struct server_stats {
    uint64_t accepted, rejected_full, requests, closed_timeout, errors_4xx, errors_5xx;
    uint32_t open;
};
void server_stats_get(const struct server *s, struct server_stats *out);

#endif
