/* test_mock_llm.c: starts mock_llm.py and talks to both of its provider
 * endpoints with a tiny blocking HTTP/1.1 client, through this module's
 * bodies, headers and parsers: whole and streamed answers, tool calls,
 * scripted errors (context length, 429 + Retry-After, an error in a 200, a
 * mid-stream error, garbage, a reset, a wrong key). Then reads /_requests
 * back to check that the key went only into its header and that a tool's
 * schema reached the provider intact. Smoke test for the peer the daemon's
 * integration tests will use. */
#include "peer.h"
#include "remote.h"
#include "test.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SHOAL_MOCK_LLM
#define SHOAL_MOCK_LLM "tests/remote/mock_llm.py"
#endif

#define KEY "sk-mock-canary-0a1b2c3d4e"

static struct test_peer mock;
static int port;

static void start_mock(void)
{
    static const char *const args[] = {"--key", KEY, NULL};
    port = test_peer_start_args(&mock, "MOCK_LLM", SHOAL_MOCK_LLM, args);
    CHECK(port > 0);
}

static void stop_mock(void)
{
    test_peer_stop(&mock);
}

/* ---- A tiny blocking HTTP/1.1 client ---- */

struct http_res {
    enum remote_transport transport;
    long status;
    char retry_after[64];
    char request_id[64];
    struct shoal_buf body; /* de-chunked */
};

static bool header_value(const char *head, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (!strncasecmp(h, name, nl) && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            size_t m = strcspn(h, "\r\n");
            if (m >= n)
                m = n - 1;
            memcpy(out, h, m);
            out[m] = '\0';
            return true;
        }
    }
    return false;
}

/* Decode a chunked body in place; false if it is cut short. */
static bool dechunk(struct shoal_buf *b)
{
    struct shoal_buf out;
    shoal_buf_init(&out, b->max);
    size_t i = 0;
    bool done = false;
    while (i < b->len) {
        char *end;
        unsigned long sz = strtoul(b->data + i, &end, 16);
        char *crlf = strstr(b->data + i, "\r\n");
        if (!crlf || end > crlf)
            break;
        i = (size_t)(crlf - b->data) + 2;
        if (sz == 0) {
            done = true;
            break;
        }
        if (i + sz > b->len) {
            CHECK(shoal_buf_append(&out, b->data + i, b->len - i) == SHOAL_OK);
            break;
        }
        CHECK(shoal_buf_append(&out, b->data + i, sz) == SHOAL_OK);
        i += sz + 2;
    }
    shoal_buf_fini(b);
    *b = out;
    return done;
}

static void http_post(const char *path, const char *const *headers, const char *body,
                      struct http_res *r)
{
    memset(r, 0, sizeof(*r));
    shoal_buf_init(&r->body, 1 << 22);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        r->transport = REMOTE_TRANSPORT_CONNECT;
        close(fd);
        return;
    }
    struct shoal_buf req;
    shoal_buf_init(&req, 1 << 22);
    CHECK(shoal_buf_printf(&req,
                           "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                           "Content-Length: %zu\r\n",
                           path, strlen(body)) == SHOAL_OK);
    for (size_t i = 0; headers && headers[i]; i++)
        CHECK(shoal_buf_printf(&req, "%s\r\n", headers[i]) == SHOAL_OK);
    CHECK(shoal_buf_printf(&req, "\r\n%s", body) == SHOAL_OK);
    CHECK(write(fd, req.data, req.len) == (ssize_t)req.len);
    shoal_buf_fini(&req);

    struct shoal_buf all;
    shoal_buf_init(&all, 1 << 22);
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r->transport = REMOTE_TRANSPORT_RESET;
            break;
        }
        if (n == 0)
            break;
        CHECK(shoal_buf_append(&all, buf, (size_t)n) == SHOAL_OK);
    }
    close(fd);
    const char *text = shoal_buf_cstr(&all);
    const char *end = strstr(text, "\r\n\r\n");
    if (!end) {
        if (r->transport == REMOTE_TRANSPORT_OK)
            r->transport = REMOTE_TRANSPORT_RESET;
        shoal_buf_fini(&all);
        return;
    }
    r->status = strtol(text + 9, NULL, 10);
    size_t head_len = (size_t)(end - text) + 4;
    char *head = strndup(text, head_len);
    header_value(head, "Retry-After", r->retry_after, sizeof(r->retry_after));
    if (!header_value(head, "x-request-id", r->request_id, sizeof(r->request_id)))
        header_value(head, "request-id", r->request_id, sizeof(r->request_id));
    char te[32] = "", cl[32] = "";
    bool chunked = header_value(head, "Transfer-Encoding", te, sizeof(te));
    bool has_cl = header_value(head, "Content-Length", cl, sizeof(cl));
    free(head);
    CHECK(shoal_buf_append(&r->body, text + head_len, all.len - head_len) == SHOAL_OK);
    shoal_buf_fini(&all);
    if (chunked) {
        if (!dechunk(&r->body) && r->transport == REMOTE_TRANSPORT_OK)
            r->transport = REMOTE_TRANSPORT_RESET;
    } else if (has_cl && strtoul(cl, NULL, 10) != r->body.len &&
               r->transport == REMOTE_TRANSPORT_OK) {
        r->transport = REMOTE_TRANSPORT_RESET;
    }
}

static void control(const char *path, const char *body)
{
    struct http_res r;
    http_post(path, NULL, body, &r);
    CHECK_EQ_INT(r.status, 200);
    shoal_buf_fini(&r.body);
}

/* ---- One exchange through the module ---- */

struct sink {
    char text[4096];
    size_t len;
};

static bool on_text(void *arg, const char *t, size_t n)
{
    struct sink *s = arg;
    if (s->len + n < sizeof(s->text)) {
        memcpy(s->text + s->len, t, n);
        s->len += n;
        s->text[s->len] = '\0';
    }
    return true;
}

/* Build, send, parse (streamed answers fed in 7-byte pieces). */
static enum remote_error_kind call(enum remote_provider p, const char *chat, const char *key,
                                   struct remote_result *res, struct remote_error *err,
                                   struct sink *sink)
{
    cJSON *j = cJSON_Parse(chat);
    struct remote_request *rq = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    CHECK(j && remote_request_from_chat(j, &rq, &d) == SHOAL_OK);
    cJSON_Delete(j);
    struct shoal_buf body;
    shoal_buf_init(&body, 1 << 20);
    struct remote_build_opts o = {.model =
                                      p == REMOTE_PROVIDER_OPENAI ? "gpt-mock" : "claude-mock"};
    CHECK_EQ_INT(remote_build_body(p, rq, &o, &body, &d), SHOAL_OK);
    struct shoal_secret *secret;
    CHECK(shoal_secret_new(key, strlen(key), "test", &secret) == SHOAL_OK);
    struct remote_headers h;
    CHECK_EQ_INT(remote_headers_init(&h, p, secret, rq->stream, &d), SHOAL_OK);
    struct http_res r;
    http_post(p == REMOTE_PROVIDER_OPENAI ? "/v1/chat/completions" : "/v1/messages", h.list,
              shoal_buf_cstr(&body), &r);
    remote_headers_fini(&h);
    struct remote_reply rep = {r.transport,
                               r.status,
                               r.retry_after[0] ? r.retry_after : NULL,
                               r.request_id[0] ? r.request_id : NULL,
                               NULL,
                               0,
                               secret};
    remote_result_init(res);
    memset(sink, 0, sizeof(*sink));
    enum remote_error_kind k;
    if (rq->stream) {
        struct remote_stream *s;
        struct remote_stream_cb cb = {on_text, sink};
        CHECK(remote_stream_new(p, rq, &cb, &s) == SHOAL_OK);
        for (size_t i = 0; i < r.body.len; i += 7)
            if (!remote_stream_feed(s, r.body.data + i, r.body.len - i < 7 ? r.body.len - i : 7))
                break;
        k = remote_stream_finish(s, &rep, res, err);
        remote_stream_free(s);
    } else {
        k = remote_response_parse(p, rq, &rep, r.body.data, r.body.len, res, err);
    }
    CHECK(strstr(err->message, key) == NULL);
    shoal_buf_fini(&r.body);
    shoal_buf_fini(&body);
    shoal_secret_free(secret);
    remote_request_free(rq);
    return k;
}

static const char chat_plain[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Say hello\"}],\"max_tokens\":64%s}";

static const char chat_tools[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
    "\"pattern\":\"^[A-Z]\"}},\"required\":[\"city\"],\"$defs\":{\"u\":{\"enum\":[\"c\","
    "\"f\"]}}}}}]%s}";

static void test_plain(void)
{
    static const enum remote_provider ps[] = {REMOTE_PROVIDER_OPENAI, REMOTE_PROVIDER_ANTHROPIC};
    char chat[512];
    for (size_t i = 0; i < 2; i++) {
        for (int stream = 0; stream < 2; stream++) {
            snprintf(chat, sizeof(chat), chat_plain, stream ? ",\"stream\":true" : "");
            struct remote_result res;
            struct remote_error err;
            struct sink sink;
            control("/_script", "{\"usage\":{\"input\":30,\"output\":4,\"cached\":16}}");
            enum remote_error_kind k = call(ps[i], chat, KEY, &res, &err, &sink);
            if (k)
                fprintf(stderr, "%s stream=%d: %s\n", remote_provider_name(ps[i]), stream,
                        err.message);
            CHECK_EQ_INT(k, REMOTE_ERR_NONE);
            CHECK_STR(res.text, "Hello from mock.");
            if (stream)
                CHECK_STR(sink.text, "Hello from mock.");
            CHECK_EQ_INT(res.finish, REMOTE_FINISH_STOP);
            CHECK_EQ_INT(res.usage.input_tokens, 30);
            CHECK_EQ_INT(res.usage.cached_input_tokens, 16);
            CHECK_EQ_INT(res.usage.output_tokens, 4);
            CHECK(res.request_id[0] != '\0');
            remote_result_fini(&res);
        }
    }
}

static void test_tools(void)
{
    static const enum remote_provider ps[] = {REMOTE_PROVIDER_OPENAI, REMOTE_PROVIDER_ANTHROPIC};
    char chat[1024];
    for (size_t i = 0; i < 2; i++) {
        for (int stream = 0; stream < 2; stream++) {
            snprintf(chat, sizeof(chat), chat_tools, stream ? ",\"stream\":true" : "");
            control("/_script", "{\"tool_calls\":[{\"id\":\"c1\",\"name\":\"get_weather\","
                                "\"arguments\":{\"city\":\"Paris\"}},{\"id\":\"c2\",\"name\":"
                                "\"get_weather\",\"arguments\":{\"city\":\"Oslo\"}}]}");
            struct remote_result res;
            struct remote_error err;
            struct sink sink;
            CHECK_EQ_INT(call(ps[i], chat, KEY, &res, &err, &sink), REMOTE_ERR_NONE);
            CHECK_EQ_INT(res.n_tool_calls, 2);
            if (res.n_tool_calls == 2) {
                CHECK_STR(res.tool_calls[0].id, "c1");
                CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(res.tool_calls[1].args, "city")),
                          "Oslo");
            }
            CHECK_EQ_INT(res.finish, REMOTE_FINISH_TOOL_CALLS);
            remote_result_fini(&res);
        }
    }
}

static void test_errors(void)
{
    static const struct {
        enum remote_provider p;
        bool stream;
        const char *step;
        enum remote_error_kind kind;
        int64_t retry_ms;
        bool partial;
    } cases[] = {
        {REMOTE_PROVIDER_OPENAI, false, "{\"error\":\"context_length\"}",
         REMOTE_ERR_CONTEXT_OVERFLOW, -1, false},
        {REMOTE_PROVIDER_ANTHROPIC, true, "{\"error\":\"context_length\"}",
         REMOTE_ERR_CONTEXT_OVERFLOW, -1, false},
        {REMOTE_PROVIDER_OPENAI, true, "{\"status\":429,\"retry_after\":\"2\"}",
         REMOTE_ERR_RATE_LIMITED, 2000, false},
        {REMOTE_PROVIDER_ANTHROPIC, false, "{\"error\":\"overloaded\"}", REMOTE_ERR_UNAVAILABLE, -1,
         false},
        {REMOTE_PROVIDER_ANTHROPIC, false, "{\"error_in_200\":\"overloaded\"}",
         REMOTE_ERR_UNAVAILABLE, -1, false},
        {REMOTE_PROVIDER_OPENAI, false, "{\"error\":\"quota\"}", REMOTE_ERR_QUOTA, -1, false},
        {REMOTE_PROVIDER_OPENAI, true, "{\"stream_error\":\"server\"}", REMOTE_ERR_UNAVAILABLE, -1,
         true},
        {REMOTE_PROVIDER_ANTHROPIC, true, "{\"stream_error\":\"overloaded\"}",
         REMOTE_ERR_UNAVAILABLE, -1, true},
        {REMOTE_PROVIDER_OPENAI, true, "{\"garbage\":true}", REMOTE_ERR_BAD_RESPONSE, -1, false},
        {REMOTE_PROVIDER_ANTHROPIC, true, "{\"reset_after_bytes\":700}", REMOTE_ERR_UNAVAILABLE, -1,
         true},
        {REMOTE_PROVIDER_OPENAI, false, "{\"reset_after_bytes\":20}", REMOTE_ERR_UNAVAILABLE, -1,
         false},
        {REMOTE_PROVIDER_OPENAI, true, "{\"no_done\":true,\"drip\":{\"bytes\":13,\"delay_ms\":1}}",
         REMOTE_ERR_NONE, -1, false},
        {REMOTE_PROVIDER_ANTHROPIC, true,
         "{\"no_done\":true,\"finish\":\"max_tokens\","
         "\"chunks\":[\"Hel\"],\"stream_error\":null}",
         REMOTE_ERR_NONE, -1, false},
    };
    char chat[512];
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(cases); i++) {
        snprintf(chat, sizeof(chat), chat_plain, cases[i].stream ? ",\"stream\":true" : "");
        control("/_script", cases[i].step);
        struct remote_result res;
        struct remote_error err;
        struct sink sink;
        enum remote_error_kind k = call(cases[i].p, chat, KEY, &res, &err, &sink);
        if (k != cases[i].kind || err.partial != cases[i].partial)
            fprintf(stderr, "case %zu: %s partial=%d: %s\n", i, remote_error_kind_name(k),
                    err.partial, err.message);
        CHECK_EQ_INT(k, cases[i].kind);
        CHECK_EQ_INT(err.retry_after_ms, cases[i].retry_ms);
        CHECK(err.partial == cases[i].partial);
        CHECK(res.partial == (k != REMOTE_ERR_NONE));
        remote_result_fini(&res);
    }

    /* The wrong key. */
    struct remote_result res;
    struct remote_error err;
    struct sink sink;
    snprintf(chat, sizeof(chat), chat_plain, "");
    CHECK_EQ_INT(call(REMOTE_PROVIDER_OPENAI, chat, "sk-wrong-key-123456", &res, &err, &sink),
                 REMOTE_ERR_AUTH);
    remote_result_fini(&res);
    CHECK_EQ_INT(call(REMOTE_PROVIDER_ANTHROPIC, chat, "sk-wrong-key-123456", &res, &err, &sink),
                 REMOTE_ERR_AUTH);
    remote_result_fini(&res);
}

/* What the provider saw: the key only in its header, the schema intact. */
static void test_recorded(void)
{
    control("/_reset", "{}");
    char chat[1024];
    snprintf(chat, sizeof(chat), chat_tools, "");
    struct remote_result res;
    struct remote_error err;
    struct sink sink;
    CHECK_EQ_INT(call(REMOTE_PROVIDER_OPENAI, chat, KEY, &res, &err, &sink), REMOTE_ERR_NONE);
    remote_result_fini(&res);
    CHECK_EQ_INT(call(REMOTE_PROVIDER_ANTHROPIC, chat, KEY, &res, &err, &sink), REMOTE_ERR_NONE);
    remote_result_fini(&res);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    static const char get[] = "GET /_requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(write(fd, get, sizeof(get) - 1) == (ssize_t)sizeof(get) - 1);
    struct shoal_buf all;
    shoal_buf_init(&all, 1 << 22);
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        CHECK(shoal_buf_append(&all, buf, (size_t)n) == SHOAL_OK);
    close(fd);
    const char *body = strstr(shoal_buf_cstr(&all), "\r\n\r\n");
    cJSON *reqs = body ? cJSON_Parse(body + 4) : NULL;
    CHECK_EQ_INT(cJSON_GetArraySize(reqs), 2);
    cJSON *schema =
        cJSON_Parse("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
                    "\"pattern\":\"^[A-Z]\"}},\"required\":[\"city\"],\"$defs\":{\"u\":"
                    "{\"enum\":[\"c\",\"f\"]}}}");
    for (int i = 0; i < cJSON_GetArraySize(reqs); i++) {
        cJSON *r = cJSON_GetArrayItem(reqs, i);
        const char *auth_name = i == 0 ? "Authorization" : "x-api-key";
        const char *auth_want = i == 0 ? "Bearer " KEY : KEY;
        int seen = 0;
        cJSON *h;
        cJSON_ArrayForEach(h, cJSON_GetObjectItem(r, "headers"))
        {
            const char *name = cJSON_GetStringValue(cJSON_GetArrayItem(h, 0));
            const char *value = cJSON_GetStringValue(cJSON_GetArrayItem(h, 1));
            if (strstr(value, KEY)) {
                seen++;
                CHECK_STR(name, auth_name);
                CHECK_STR(value, auth_want);
            }
        }
        CHECK_EQ_INT(seen, 1);
        CHECK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(r, "body")), KEY) == NULL);
        cJSON *json = cJSON_GetObjectItem(r, "json");
        cJSON *tool = cJSON_GetArrayItem(cJSON_GetObjectItem(json, "tools"), 0);
        cJSON *params =
            i == 0 ? cJSON_GetObjectItem(cJSON_GetObjectItem(tool, "function"), "parameters")
                   : cJSON_GetObjectItem(tool, "input_schema");
        CHECK(cJSON_Compare(params, schema, true));
    }
    cJSON_Delete(schema);
    cJSON_Delete(reqs);
    shoal_buf_fini(&all);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    start_mock();
    test_plain();
    test_tools();
    test_errors();
    test_recorded();
    stop_mock();
    return test_report("test_mock_llm");
}
