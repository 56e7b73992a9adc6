/* api.c: shoald's HTTP routes. A route is a path plus one handler per
 * method; the table is the single place that says what the API serves, so
 * 404 (no such path) and 405 (path exists, wrong method, with Allow) fall out
 * of it. Handlers write JSON into the server's scratch buffer and never
 * block: they run on the loop thread. */
#include "server.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef void (*api_fn)(const struct api_info *info, const struct api_request *req,
                       struct shoal_buf *body, struct api_reply *rep);

struct route {
    const char *path; /* exact, or a prefix when it ends in '/' */
    api_fn get;       /* also serves HEAD */
    api_fn post;
    const char *allow;
};

const char *api_error_type(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "timeout";
    case 413: return "too_large";
    case 417: return "expectation_failed";
    case 422: return "invalid_request";
    case 429: return "rate_limited";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 503: return "unavailable";
    case 505: return "http_version_not_supported";
    default: return status >= 500 ? "internal" : "bad_request";
    }
}

/* JSON string escaping for error messages; control bytes become \u00XX. */
static void put_json_string(struct shoal_buf *b, const char *s)
{
    enum shoal_err err = shoal_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; !err && *p; p++) {
        if (*p == '"' || *p == '\\')
            err = shoal_buf_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            err = shoal_buf_printf(b, "\\u%04x", *p);
        else
            err = shoal_buf_append(b, p, 1);
    }
    if (!err)
        err = shoal_buf_puts(b, "\"");
    (void)err; /* a cut-off error body still carries its status code */
}

void api_error_body(struct shoal_buf *body, const char *type, const char *message)
{
    shoal_buf_reset(body);
    if (shoal_buf_printf(body, "{\"error\":{\"type\":\"%s\",\"message\":", type) != SHOAL_OK)
        return;
    put_json_string(body, message);
    if (shoal_buf_puts(body, "}}") != SHOAL_OK)
        shoal_buf_reset(body);
}

static void reply_error(struct shoal_buf *body, struct api_reply *rep, int status,
                        const char *message)
{
    rep->status = status;
    api_error_body(body, api_error_type(status), message);
}

/* Render a cJSON tree as the reply; 500 when we cannot. */
static void reply_json(struct shoal_buf *body, struct api_reply *rep, cJSON *root)
{
    if (!root || shoal_json_render(root, body) != SHOAL_OK) {
        reply_error(body, rep, 500, "out of memory rendering the response");
    } else {
        rep->status = 200;
    }
    cJSON_Delete(root);
}

/* 200 whenever the daemon serves; "status" says "degraded" when a part of
 * it (the trace store) is not working, and that part says why. */
static void get_healthz(const struct api_info *info, const struct api_request *req,
                        struct shoal_buf *body, struct api_reply *rep)
{
    (void)req;
    cJSON *root = cJSON_CreateObject();
    cJSON *st = root ? cJSON_AddStringToObject(root, "status", "ok") : NULL;
    if (!st) {
        cJSON_Delete(root);
        return reply_error(body, rep, 500, "out of memory");
    }
    if (!traces_service_health(info->traces, root))
        cJSON_SetValuestring(st, "degraded");
    reply_json(body, rep, root);
}

int api_query_param(const struct api_request *req, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *q = req->query, *end = req->query + req->query_len;
    if (q && q < end && *q == '?')
        q++;
    while (q && q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(stop - q));
        const char *key_end = eq ? eq : stop;
        if ((size_t)(key_end - q) == nl && !memcmp(q, name, nl)) {
            size_t o = 0;
            for (const char *p = eq ? eq + 1 : stop; p < stop; p++) {
                char ch = *p;
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    if (stop - p < 3)
                        return -1;
                    int hi = shoal_hex_digit(p[1]), lo = shoal_hex_digit(p[2]);
                    if (hi < 0 || lo < 0)
                        return -1;
                    ch = (char)(hi * 16 + lo);
                    p += 2;
                }
                if (ch == '\0' || o + 1 >= n)
                    return -1;
                out[o++] = ch;
            }
            if (n)
                out[o] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : end;
    }
    return 0;
}

static void get_version(const struct api_info *info, const struct api_request *req,
                        struct shoal_buf *body, struct api_reply *rep)
{
    (void)req;
    const struct config *cfg = info->cfg;
    char started[32], tcp[80];
    time_t t = (time_t)info->started_unix;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);

    cJSON *root = cJSON_CreateObject();
    cJSON *listen = cJSON_CreateObject();
    if (!root || !listen) {
        cJSON_Delete(root);
        cJSON_Delete(listen);
        reply_error(body, rep, 500, "out of memory");
        return;
    }
    cJSON_AddStringToObject(root, "name", "shoald");
    cJSON_AddStringToObject(root, "version", SHOAL_VERSION);
    cJSON_AddStringToObject(root, "api", "v1");
    cJSON_AddNumberToObject(root, "pid", (double)getpid());
    cJSON_AddNumberToObject(root, "uptime_ms", (double)(shoal_now_ms() - info->started_ms));
    cJSON_AddStringToObject(root, "started", started);
    cJSON_AddStringToObject(root, "config", cfg->source);
    cJSON_AddStringToObject(listen, "socket", cfg->listen.socket);
    if (cfg->listen.tcp) {
        bool v6 = strchr(cfg->listen.tcp_host, ':') != NULL;
        snprintf(tcp, sizeof(tcp), v6 ? "[%s]:%u" : "%s:%u", cfg->listen.tcp_host,
                 (unsigned)cfg->listen.tcp_port);
        cJSON_AddStringToObject(listen, "tcp", tcp);
    } else {
        cJSON_AddNullToObject(listen, "tcp");
    }
    cJSON_AddItemToObject(root, "listen", listen);
    reply_json(body, rep, root);
}

static const struct route routes[] = {
    {"/healthz", get_healthz, NULL, "GET, HEAD"},
    {"/v1/version", get_version, NULL, "GET, HEAD"},
    {"/v1/runs", api_traces_list, api_traces_ingest, "GET, HEAD, POST"},
    {"/v1/runs/", api_traces_show, NULL, "GET, HEAD"},
    {"/v1/traces/savings", api_traces_savings, NULL, "GET, HEAD"},
    {"/v1/tools", api_tools_list, NULL, "GET, HEAD"},
    {"/v1/tools/", NULL, api_tools_call, "POST"},
    {"/v1/chat/completions", NULL, api_chat_completions, "POST"},
    {"/v1/models", api_models, NULL, "GET, HEAD"},
};

void api_handle(const struct api_info *info, const struct api_request *req, struct shoal_buf *body,
                struct api_reply *rep)
{
    rep->allow = NULL;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(routes); i++) {
        const struct route *r = &routes[i];
        size_t n = strlen(r->path);
        bool prefix = r->path[n - 1] == '/';
        if (prefix ? req->path_len <= n || memcmp(r->path, req->path, n) != 0
                   : n != req->path_len || memcmp(r->path, req->path, n) != 0)
            continue;
        api_fn fn = NULL;
        if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD)
            fn = r->get;
        else if (req->method == HTTP_METHOD_POST)
            fn = r->post;
        if (!fn) {
            rep->allow = r->allow;
            char msg[160];
            snprintf(msg, sizeof(msg), "%.*s is not allowed on %s (allowed: %s)",
                     (int)(req->method_len > 16 ? 16 : req->method_len), req->method_name,
                     r->path, r->allow);
            reply_error(body, rep, 405, msg);
            return;
        }
        fn(info, req, body, rep);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "no such endpoint: %.*s",
             (int)(req->path_len > 100 ? 100 : req->path_len), req->path);
    reply_error(body, rep, 404, msg);
}
