/* test_caps.c: the capabilities (tools/cap_*.c). ctx.fs stays inside the
 * tool's workspace (no absolute paths, no "..", no symbolic links, even
 * planted ones), with its size caps; ctx.kv is namespaced per tool with
 * JSON values; ctx.http suspends the call with a pending operation that
 * this test performs with libcurl against tests/http_peer.py on
 * 127.0.0.1 (redirects off, size capped), and the runtime checks grants,
 * hosts, schemes and every redirect's Location. Deny by default. */
#include "peer.h"
#include "tools_test.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>

#ifndef SHOAL_HTTP_PEER
#define SHOAL_HTTP_PEER "tests/http_peer.py"
#endif

static struct tools_registry *reg;
static char ws[256], kvdb[256], outside[256];

/* ---- the HTTP peer and a synchronous host ---- */

static struct test_peer peer;
static int peer_port;

static void peer_start(void)
{
    peer_port = test_peer_start(&peer, "HTTP_PEER", SHOAL_HTTP_PEER);
    if (peer_port <= 0) {
        fprintf(stderr, "http peer did not start\n");
        exit(2);
    }
}

struct fetched {
    char *body;
    size_t len, max;
    bool too_big;
    char *hdr[64];
    size_t nh;
    struct tools_http_response resp;
    char err[256];
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct fetched *f = ud;
    size_t k = sz * n;
    if (f->len + k > f->max) {
        f->too_big = true;
        return 0;
    }
    f->body = realloc(f->body, f->len + k + 1);
    memcpy(f->body + f->len, p, k);
    f->len += k;
    f->body[f->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct fetched *f = ud;
    size_t k = sz * n, l = k;
    while (l && (p[l - 1] == '\r' || p[l - 1] == '\n'))
        l--;
    if (l && memchr(p, ':', l) && f->nh < 63) {
        f->hdr[f->nh] = strndup(p, l);
        f->nh++;
        f->hdr[f->nh] = NULL;
    }
    return k;
}

/* Perform the pending request as the daemon would: no redirects followed,
 * the response capped at max_response_bytes. */
static void perform(const struct tools_op *op, struct fetched *f)
{
    memset(f, 0, sizeof(*f));
    f->max = op->http.max_response_bytes;
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    for (const char *const *x = op->http.headers; x && *x; x++)
        hl = curl_slist_append(hl, *x);
    curl_easy_setopt(h, CURLOPT_URL, op->http.url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)op->http.timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, f);
    if (strcmp(op->http.method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, op->http.method);
        if (op->http.body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, op->http.body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)op->http.body_len);
        }
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    f->resp.status = status;
    f->resp.headers = (const char *const *)f->hdr;
    f->resp.body = f->body ? f->body : "";
    f->resp.body_len = f->len;
    if (f->too_big) {
        snprintf(f->err, sizeof(f->err), "response larger than %zu bytes", f->max);
        f->resp.error = f->err;
    } else if (rc != CURLE_OK) {
        snprintf(f->err, sizeof(f->err), "%s", curl_easy_strerror(rc));
        f->resp.error = f->err;
    }
}

static void fetched_free(struct fetched *f)
{
    free(f->body);
    for (size_t i = 0; i < f->nh; i++)
        free(f->hdr[i]);
}

/* Drive a call to DONE, performing each pending request; the URLs asked
 * for are appended to urls (space-separated). */
static struct tt_out drive(const char *name, const char *args, const struct tools_grants *g,
                           const struct tools_limits *lim, char *urls, size_t urls_n)
{
    struct tools_call *c = NULL;
    enum tools_call_state st;
    struct tt_out o;
    cJSON *a = tt_json(args);
    if (urls)
        urls[0] = '\0';
    CHECK_EQ_INT(tools_call_start(reg, name, a, g, lim, NULL, &c, &st), SHOAL_OK);
    cJSON_Delete(a);
    int rounds = 0;
    while (st == TOOLS_CALL_WAITING && rounds++ < 20) {
        const struct tools_op *op = tools_call_pending(c);
        CHECK(op && op->kind == TOOLS_OP_HTTP);
        if (urls) {
            size_t l = strlen(urls);
            snprintf(urls + l, urls_n - l, "%s%s %s", l ? " " : "", op->http.method, op->http.url);
        }
        struct fetched f;
        perform(op, &f);
        CHECK_EQ_INT(tools_call_resume(c, &f.resp, &st), SHOAL_OK);
        fetched_free(&f);
    }
    tt_fill(c, &o);
    /* A finished call refuses resume. */
    struct tools_http_response none = {0};
    CHECK_EQ_INT(tools_call_resume(c, &none, &st), SHOAL_ERR_INVALID);
    tools_call_free(c);
    return o;
}

/* ---- tools ---- */

static void define_tools(const char *dir)
{
    tt_tool(dir, "fetch", "capabilities = { 'http' },",
            "local res, err = ctx.http.get(args.url, args.opts)\n"
            "if not res then return nil, err end\n"
            "return { status = res.status, body = res.body, url = res.url,\n"
            "  type = res.headers['content-type'], test = res.headers['x-test'] }");
    tt_tool(dir, "post", "capabilities = { 'http' },",
            "local res, err = ctx.http.post(args.url, args.body, {headers = args.headers})\n"
            "if not res then return nil, err end\n"
            "return { status = res.status, body = res.body, type = res.headers['x-got-type'],\n"
            "  auth = res.headers['x-got-auth'], method = res.headers['x-got-method'] }");
    tt_tool(dir, "undeclared", "", "return ctx.http.get(args.url)");
    tt_tool(dir, "slow", "capabilities = { 'http' }, timeout_ms = 200,",
            "return ctx.http.get(args.url).status");
    tt_tool(dir, "in_coroutine", "capabilities = { 'http' },",
            "local gen = coroutine.wrap(function()\n"
            "  coroutine.yield('first')\n"
            "  local res = assert(ctx.http.get(args.url))\n"
            "  coroutine.yield(res.body)\n"
            "end)\n"
            "local a = gen()\n"
            "local ok, b = pcall(gen)\n"
            "return { a, ok, b }");
    tt_tool(dir, "inject", "capabilities = { 'http' },",
            "return ctx.http.get(args.url, {headers = {['X-A'] = 'a\\r\\nInjected: 1'}})");
    tt_tool(dir, "fstool", "capabilities = { 'fs' },",
            "local fs = ctx.fs\n"
            "local op = args.op\n"
            "if op == 'roundtrip' then\n"
            "  assert(fs.write('notes/a.txt', 'one'))\n"
            "  assert(fs.append('notes/a.txt', ' two'))\n"
            "  assert(fs.mkdir('empty/deeper'))\n"
            "  local top = fs.list()\n"
            "  local sub = fs.list('notes')\n"
            "  local r = { fs.read('notes/a.txt'), fs.exists('notes/a.txt'), fs.exists('nope'),\n"
            "    top[1].name, top[1].type, top[2].name, sub[1].name, sub[1].size }\n"
            "  assert(fs.remove('notes/a.txt'))\n"
            "  r[#r + 1] = fs.exists('notes/a.txt')\n"
            "  local _, err = fs.read('notes/a.txt')\n"
            "  r[#r + 1] = err\n"
            "  return r\n"
            "elseif op == 'read' then\n"
            "  local data, err = fs.read(args.path)\n"
            "  return data or err\n"
            "elseif op == 'write' then\n"
            "  local ok, err = fs.write(args.path, args.data or 'x')\n"
            "  return ok or err\n"
            "elseif op == 'list' then\n"
            "  local l = fs.list(args.path)\n"
            "  local names = json.array()\n"
            "  for i, e in ipairs(l) do names[i] = e.name .. ':' .. e.type end\n"
            "  return names\n"
            "elseif op == 'remove' then\n"
            "  return fs.remove(args.path)\n"
            "elseif op == 'exists' then\n"
            "  return fs.exists(args.path)\n"
            "end");
    tt_tool(dir, "fsother", "capabilities = { 'fs' },",
            "local names = json.array()\n"
            "for i, e in ipairs(ctx.fs.list()) do names[i] = e.name end\n"
            "return names");
    tt_tool(dir, "kvtool", "capabilities = { 'kv' },",
            "local kv = ctx.kv\n"
            "if args.op == 'set' then return kv.set(args.key, args.value) end\n"
            "if args.op == 'get' then local v = kv.get(args.key) if v == nil then return 'nil' end "
            "return v end\n"
            "if args.op == 'delete' then return kv.delete(args.key) end\n"
            "if args.op == 'list' then return json.array(kv.list(args.prefix)) end\n"
            "if args.op == 'types' then\n"
            "  kv.set('t', {i = 1, f = 1.5, whole = 2.0, a = json.array(), n = json.null})\n"
            "  local v = kv.get('t')\n"
            "  return { math.type(v.i), math.type(v.f), math.type(v.whole), json.is_array(v.a),\n"
            "    v.n == json.null }\n"
            "end");
    tt_tool(dir, "kvother", "capabilities = { 'kv' },",
            "local v = ctx.kv.get(args.key)\n"
            "return { v == nil, #ctx.kv.list() }");
}

/* ---- http ---- */

static void check_http(void)
{
    char url[256], args[512], urls[1024];
    char allow[64];
    snprintf(allow, sizeof(allow), "127.0.0.1:%d", peer_port);
    const char *hosts[] = {allow};
    struct tools_grants g = {.caps = TOOLS_CAP_HTTP,
                             .http_allow_hosts = hosts,
                             .n_http_allow_hosts = 1,
                             .http_allow_plain = true};
    struct tt_out o;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", peer_port);

    /* Deny by default; declared and granted both needed. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/ok\"}", url);
    o = drive("fetch", args, NULL, NULL, NULL, 0);
    CHECK_ERR(o, "capability_denied", "capability not granted: http");
    o = drive("undeclared", args, &g, NULL, NULL, 0);
    CHECK_ERR(o, "capability_denied", "capability not granted: http (the tool does not declare");

    /* A plain GET: one pending operation, performed here. */
    o = drive("fetch", args, &g, NULL, urls, sizeof(urls));
    char want[600];
    snprintf(want, sizeof(want),
             "{\"body\":\"hello\",\"status\":200,\"test\":\"a, b\",\"type\":\"text/plain\","
             "\"url\":\"%s/ok\"}",
             url);
    CHECK_OK(o, want);
    snprintf(want, sizeof(want), "GET %s/ok", url);
    CHECK_STR(urls, want);

    /* https only unless the grant allows plain http. */
    struct tools_grants tls = g;
    tls.http_allow_plain = false;
    o = drive("fetch", args, &tls, NULL, NULL, 0);
    CHECK_ERR(o, "capability_denied", "plain http:// is not allowed for this tool");

    /* Hosts outside the list, user info, other schemes. */
    o = drive("fetch", "{\"url\": \"http://example.com/\"}", &g, NULL, NULL, 0);
    CHECK_ERR(o, "capability_denied", "http: host not allowed: example.com");
    snprintf(args, sizeof(args), "{\"url\": \"http://127.0.0.1:%d/ok\"}", peer_port + 1);
    o = drive("fetch", args, &g, NULL, NULL, 0);
    CHECK_ERR(o, "capability_denied", "host not allowed: 127.0.0.1:");
    snprintf(args, sizeof(args), "{\"url\": \"http://user:pw@127.0.0.1:%d/ok\"}", peer_port);
    o = drive("fetch", args, &g, NULL, NULL, 0);
    CHECK_ERR(o, "tool_error", "URLs with user information");
    o = drive("fetch", "{\"url\": \"file:///etc/passwd\"}", &g, NULL, NULL, 0);
    CHECK_ERR(o, "tool_error", "only http:// and https:// URLs are allowed");
    o = drive("fetch", "{\"url\": \"http://127.0.0.1 /x\"}", &g, NULL, NULL, 0);
    CHECK_ERR(o, "tool_error", "space, control byte or backslash");

    /* A redirect on the same host is followed, checked first. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/redirect?to=/ok\"}", url);
    o = drive("fetch", args, &g, NULL, urls, sizeof(urls));
    CHECK_CONTAINS(o.value, "\"body\":\"hello\"");
    snprintf(want, sizeof(want), "GET %s/redirect?to=/ok GET %s/ok", url, url);
    CHECK_STR(urls, want);

    /* A redirect to another host is refused before any request to it. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/redirect?to=http://evil.example/steal\"}", url);
    o = drive("fetch", args, &g, NULL, urls, sizeof(urls));
    CHECK_ERR(o, "capability_denied", "http: redirect: host not allowed: evil.example");
    snprintf(want, sizeof(want), "GET %s/redirect?to=http://evil.example/steal", url);
    CHECK_STR(urls, want); /* one request: none ever went to evil.example */
    snprintf(args, sizeof(args), "{\"url\": \"%s/redirect?to=http://localhost:%d/ok\"}", url,
             peer_port);
    o = drive("fetch", args, &g, NULL, urls, sizeof(urls));
    CHECK_ERR(o, "capability_denied", "http: redirect: host not allowed: localhost");
    snprintf(args, sizeof(args), "{\"url\": \"%s/redirect?to=file:///etc/passwd\"}", url);
    o = drive("fetch", args, &g, NULL, NULL, 0);
    CHECK_ERR(o, "tool_error", "only http:// and https:// URLs are allowed");
    /* Not followed when the tool says so. */
    snprintf(args, sizeof(args),
             "{\"url\": \"%s/redirect?to=http://evil.example/\", \"opts\": "
             "{\"follow_redirects\": false}}",
             url);
    o = drive("fetch", args, &g, NULL, NULL, 0);
    CHECK_CONTAINS(o.value, "\"status\":302");
    /* Redirect loops end. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/loop\"}", url);
    o = drive("fetch", args, &g, NULL, urls, sizeof(urls));
    CHECK_ERR(o, "tool_error", "http: more than 5 redirects");
    CHECK_EQ_INT(strlen(urls), 6 * (strlen(url) + strlen("GET /loop ")) - 1);

    /* POST: a table body goes as JSON; 303 turns into GET without body,
     * credentials stay with the first request. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/echo\", \"body\": {\"k\": [1, 2]}}", url);
    o = drive("post", args, &g, NULL, NULL, 0);
    CHECK_OK(o, "{\"auth\":\"none\",\"body\":\"{\\\"k\\\":[1,2]}\",\"method\":\"POST\","
                "\"status\":200,\"type\":\"application/json\"}");
    snprintf(args, sizeof(args),
             "{\"url\": \"%s/see-other\", \"body\": \"raw\", \"headers\": "
             "{\"Authorization\": \"Bearer t\", \"Content-Type\": \"text/plain\"}}",
             url);
    o = drive("post", args, &g, NULL, urls, sizeof(urls));
    CHECK_OK(o, "{\"auth\":\"none\",\"body\":\"\",\"method\":\"GET\",\"status\":200,"
                "\"type\":\"none\"}");
    snprintf(args, sizeof(args), "{\"url\": \"%s/redirect?to=/echo\", \"body\": \"kept\"}", url);
    o = drive("post", args, &g, NULL, NULL, 0);
    /* 307 keeps method and body (libcurl adds its default form type). */
    CHECK_OK(o, "{\"auth\":\"none\",\"body\":\"kept\",\"method\":\"POST\",\"status\":200,"
                "\"type\":\"application/x-www-form-urlencoded\"}");

    /* Header injection is refused. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/ok\"}", url);
    o = drive("inject", args, &g, NULL, NULL, 0);
    CHECK_ERR(o, "tool_error", "line break or NUL");

    /* Size caps: the host stops at max_response_bytes and says so. */
    struct tools_limits lim;
    tools_limits_default(&lim);
    lim.http_response_bytes = 1000;
    snprintf(args, sizeof(args), "{\"url\": \"%s/big?n=5000\"}", url);
    o = drive("fetch", args, &g, &lim, NULL, 0);
    CHECK_ERR(o, "tool_error", "http: response larger than 1000 bytes");
    snprintf(args, sizeof(args), "{\"url\": \"%s/big?n=1000\"}", url);
    o = drive("fetch", args, &g, &lim, NULL, 0);
    CHECK_STR(o.type, "ok");

    /* A suspension inside the tool's own coroutine passes through it. */
    snprintf(args, sizeof(args), "{\"url\": \"%s/ok\"}", url);
    o = drive("in_coroutine", args, &g, NULL, NULL, 0);
    CHECK_OK(o, "[\"first\",true,\"hello\"]");

    /* The built-in http_get, granted. */
    o = drive("http_get", args, &g, NULL, NULL, 0);
    snprintf(want, sizeof(want),
             "{\"body\":\"hello\",\"content_type\":\"text/plain\",\"status\":200,"
             "\"truncated\":false,\"url\":\"%s/ok\"}",
             url);
    CHECK_OK(o, want);

    /* Transport errors come back as nil, message. */
    struct tools_call *c = NULL;
    enum tools_call_state st;
    cJSON *a = tt_json(args);
    CHECK_EQ_INT(tools_call_start(reg, "fetch", a, &g, NULL, NULL, &c, &st), SHOAL_OK);
    CHECK_EQ_INT(st, TOOLS_CALL_WAITING);
    struct tools_http_response refused = {.error = "connection refused"};
    CHECK_EQ_INT(tools_call_resume(c, &refused, &st), SHOAL_OK);
    tt_fill(c, &o);
    CHECK_ERR(o, "tool_error", "http: connection refused");
    tools_call_free(c);

    /* A response over the cap is refused by the runtime too. */
    CHECK_EQ_INT(tools_call_start(reg, "fetch", a, &g, &lim, NULL, &c, &st), SHOAL_OK);
    char big[2000];
    memset(big, 'x', sizeof(big));
    struct tools_http_response huge = {.status = 200, .body = big, .body_len = sizeof(big)};
    CHECK_EQ_INT(tools_call_resume(c, &huge, &st), SHOAL_OK);
    tt_fill(c, &o);
    CHECK_ERR(o, "tool_error", "http: response larger than 1000 bytes");
    tools_call_free(c);

    /* The deadline keeps running while the call waits. */
    CHECK_EQ_INT(tools_call_start(reg, "slow", a, &g, NULL, NULL, &c, &st), SHOAL_OK);
    CHECK_EQ_INT(st, TOOLS_CALL_WAITING);
    const struct tools_op *op = tools_call_pending(c);
    CHECK(op && op->http.timeout_ms <= 200);
    usleep(300 * 1000);
    struct tools_http_response late = {.status = 200, .body = "", .body_len = 0};
    CHECK_EQ_INT(tools_call_resume(c, &late, &st), SHOAL_OK);
    CHECK_EQ_INT(st, TOOLS_CALL_DONE);
    tt_fill(c, &o);
    CHECK_ERR(o, "timeout", "deadline of 200 ms exceeded (stopped at a pending GET request)");
    tools_call_free(c);

    /* Abandoning a waiting call frees everything. */
    CHECK_EQ_INT(tools_call_start(reg, "fetch", a, &g, NULL, NULL, &c, &st), SHOAL_OK);
    CHECK(tools_call_outcome(c) == NULL);
    tools_call_free(c);
    cJSON_Delete(a);

    /* Allow-list entry forms. */
    const char *wild[] = {"*.example.com", "api.other.org:8443"};
    struct tools_grants gw = {
        .caps = TOOLS_CAP_HTTP, .http_allow_hosts = wild, .n_http_allow_hosts = 2};
    struct {
        const char *url;
        bool allowed;
    } forms[] = {
        {"https://api.example.com/x", true},     {"https://a.b.example.com/", true},
        {"https://example.com/", false},         {"https://evilexample.com/", false},
        {"https://api.example.com:444/", false}, {"https://api.other.org:8443/v1", true},
        {"https://api.other.org/", false},       {"https://API.EXAMPLE.COM./", true},
    };
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(forms); i++) {
        snprintf(args, sizeof(args), "{\"url\": \"%s\"}", forms[i].url);
        a = tt_json(args);
        CHECK_EQ_INT(tools_call_start(reg, "fetch", a, &gw, NULL, NULL, &c, &st), SHOAL_OK);
        cJSON_Delete(a);
        if ((st == TOOLS_CALL_WAITING) != forms[i].allowed)
            fprintf(stderr, "allow-list: %s\n", forms[i].url);
        CHECK_EQ_INT(st == TOOLS_CALL_WAITING, forms[i].allowed);
        tools_call_free(c);
    }
}

/* ---- fs ---- */

static struct tt_out fs(const char *args, const struct tools_grants *g,
                        const struct tools_limits *lim)
{
    struct tools_host host = {.workspace_dir = ws};
    return tt_call_full(reg, "fstool", args, g, lim, &host);
}

static void check_fs(void)
{
    struct tools_grants g = {.caps = TOOLS_CAP_FS};
    struct tt_out o;

    o = fs("{\"op\": \"roundtrip\"}", &g, NULL);
    CHECK_OK(o, "[\"one two\",true,false,\"empty\",\"dir\",\"notes\",\"a.txt\",7,false,"
                "\"fs: not found: notes/a.txt\"]");

    /* Out of the workspace by name: refused as a capability. */
    const char *escapes[] = {"../x", "notes/../../x", "/etc/passwd", "..", "", ".", "a/./../b"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(escapes); i++) {
        char args[256];
        snprintf(args, sizeof(args), "{\"op\": \"read\", \"path\": \"%s\"}", escapes[i]);
        o = fs(args, &g, NULL);
        CHECK_STR(o.type, "capability_denied");
        snprintf(args, sizeof(args), "{\"op\": \"write\", \"path\": \"%s\"}", escapes[i]);
        o = fs(args, &g, NULL);
        CHECK_STR(o.type, "capability_denied");
    }
    o = fs("{\"op\": \"read\", \"path\": \"../x\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "fs: '..' is not allowed in paths: ../x");
    o = fs("{\"op\": \"read\", \"path\": \"/etc/passwd\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "fs: absolute paths are not allowed: /etc/passwd");

    /* Symbolic links planted in the workspace are never followed. */
    char p[600], secret[600];
    snprintf(secret, sizeof(secret), "%s/secret.txt", outside);
    tt_write_file(secret, "top secret");
    snprintf(p, sizeof(p), "%s/fstool/dirlink", ws);
    CHECK_EQ_INT(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/fstool/filelink", ws);
    CHECK_EQ_INT(symlink(secret, p), 0);
    snprintf(p, sizeof(p), "%s/fstool/passwd", ws);
    CHECK_EQ_INT(symlink("/etc/passwd", p), 0);
    o = fs("{\"op\": \"read\", \"path\": \"dirlink/secret.txt\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "fs: symbolic links are not followed: dirlink");
    o = fs("{\"op\": \"read\", \"path\": \"filelink\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "fs: symbolic links are not followed: filelink");
    o = fs("{\"op\": \"read\", \"path\": \"passwd\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "symbolic links are not followed");
    o = fs("{\"op\": \"write\", \"path\": \"dirlink/new.txt\", \"data\": \"pwned\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "fs: symbolic links are not followed: dirlink");
    o = fs("{\"op\": \"write\", \"path\": \"filelink\", \"data\": \"pwned\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "symbolic links are not followed");
    o = fs("{\"op\": \"list\", \"path\": \"dirlink\"}", &g, NULL);
    CHECK_ERR(o, "capability_denied", "symbolic links are not followed");
    o = fs("{\"op\": \"list\"}", &g, NULL);
    CHECK_OK(o, "[\"dirlink:link\",\"empty:dir\",\"filelink:link\",\"notes:dir\",\"passwd:link\"]");
    /* Removing a link removes the link, not its target. */
    o = fs("{\"op\": \"remove\", \"path\": \"filelink\"}", &g, NULL);
    CHECK_OK(o, "true");
    CHECK_EQ_INT(access(secret, F_OK), 0);
    FILE *sf = fopen(secret, "r");
    char buf[32] = "";
    if (sf) {
        CHECK(fgets(buf, sizeof(buf), sf) != NULL);
        fclose(sf);
    }
    CHECK_STR(buf, "top secret");
    CHECK_EQ_INT(access("/etc/passwd", F_OK), 0);

    /* Caps: file size and bytes written per call. */
    struct tools_limits lim;
    tools_limits_default(&lim);
    lim.fs_file_bytes = 100;
    char args[600];
    char data[201];
    memset(data, 'd', 200);
    data[200] = '\0';
    snprintf(args, sizeof(args), "{\"op\": \"write\", \"path\": \"big\", \"data\": \"%s\"}", data);
    o = fs(args, &g, &lim);
    CHECK_OK(o, "\"fs: big would be larger than 100 bytes\"");
    tools_limits_default(&lim);
    lim.fs_write_bytes = 100;
    o = fs(args, &g, &lim);
    CHECK_ERR(o, "tool_error", "fs: more than 100 bytes written in one call");

    /* Each tool has its own workspace. */
    struct tools_host host = {.workspace_dir = ws};
    o = tt_call_full(reg, "fsother", NULL, &g, NULL, &host);
    CHECK_OK(o, "[]");

    /* Deny by default, and no workspace means no fs. */
    o = fs("{\"op\": \"exists\", \"path\": \"x\"}", NULL, NULL);
    CHECK_ERR(o, "capability_denied", "capability not granted: fs");
    o = tt_call_full(reg, "fstool", "{\"op\": \"exists\", \"path\": \"x\"}", &g, NULL, NULL);
    CHECK_ERR(o, "capability_denied", "capability not granted: fs (the host has no workspace");
}

/* ---- kv ---- */

static struct tt_out kv(const char *tool, const char *args, const struct tools_grants *g,
                        const struct tools_limits *lim)
{
    struct tools_host host = {.kv_path = kvdb};
    return tt_call_full(reg, tool, args, g, lim, &host);
}

static void check_kv(void)
{
    struct tools_grants g = {.caps = TOOLS_CAP_KV};
    struct tt_out o;
    o = kv("kvtool",
           "{\"op\": \"set\", \"key\": \"city\", \"value\": {\"name\": \"Oslo\", "
           "\"days\": [1, 2], \"temp\": -3.5}}",
           &g, NULL);
    CHECK_OK(o, "true");
    o = kv("kvtool", "{\"op\": \"get\", \"key\": \"city\"}", &g, NULL);
    CHECK_OK(o, "{\"days\":[1,2],\"name\":\"Oslo\",\"temp\":-3.5}");
    o = kv("kvtool", "{\"op\": \"set\", \"key\": \"city2\", \"value\": \"Bergen\"}", &g, NULL);
    CHECK_OK(o, "true");
    o = kv("kvtool", "{\"op\": \"set\", \"key\": \"other\", \"value\": 1}", &g, NULL);
    o = kv("kvtool", "{\"op\": \"list\", \"prefix\": \"city\"}", &g, NULL);
    CHECK_OK(o, "[\"city\",\"city2\"]");
    o = kv("kvtool", "{\"op\": \"types\"}", &g, NULL);
    CHECK_OK(o, "[\"integer\",\"float\",\"float\",true,true]");
    o = kv("kvtool", "{\"op\": \"delete\", \"key\": \"city2\"}", &g, NULL);
    CHECK_OK(o, "true");
    o = kv("kvtool", "{\"op\": \"delete\", \"key\": \"city2\"}", &g, NULL);
    CHECK_OK(o, "false");
    o = kv("kvtool", "{\"op\": \"get\", \"key\": \"city2\"}", &g, NULL);
    CHECK_OK(o, "\"nil\"");

    /* Another tool sees none of it. */
    o = kv("kvother", "{\"key\": \"city\"}", &g, NULL);
    CHECK_OK(o, "[true,0]");

    /* Caps. */
    struct tools_limits lim;
    tools_limits_default(&lim);
    lim.kv_value_bytes = 16;
    o = kv("kvtool", "{\"op\": \"set\", \"key\": \"k\", \"value\": \"0123456789abcdefXYZ\"}", &g,
           &lim);
    CHECK_ERR(o, "tool_error", "kv: value");
    tools_limits_default(&lim);
    lim.kv_keys = 3; /* city, other, t exist */
    o = kv("kvtool", "{\"op\": \"set\", \"key\": \"fourth\", \"value\": 4}", &g, &lim);
    CHECK_ERR(o, "tool_error", "kv: the tool already has 3 keys");
    o = kv("kvtool", "{\"op\": \"set\", \"key\": \"city\", \"value\": \"replaced\"}", &g, &lim);
    CHECK_OK(o, "true");

    o = kv("kvtool", "{\"op\": \"get\", \"key\": \"city\"}", NULL, NULL);
    CHECK_ERR(o, "capability_denied", "capability not granted: kv");
    o = tt_call_full(reg, "kvtool", "{\"op\": \"get\", \"key\": \"city\"}", &g, NULL, NULL);
    CHECK_ERR(o, "capability_denied", "capability not granted: kv (the host has no kv database)");
}

int main(void)
{
    const char *root = tt_tmpdir();
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/tools", root);
    snprintf(ws, sizeof(ws), "%s/workspace", root);
    snprintf(kvdb, sizeof(kvdb), "%s/kv.db", root);
    snprintf(outside, sizeof(outside), "%s/outside", root);
    tt_mkdir("%s", dir);
    tt_mkdir("%s", outside);
    define_tools(dir);

    struct tools_report r;
    const char *dirs[] = {dir};
    tools_report_init(&r);
    CHECK_EQ_INT(tools_registry_load(NULL, true, dirs, 1, &reg, &r), SHOAL_OK);
    if (r.errors)
        fprintf(stderr, "%s", shoal_buf_cstr(&r.text));
    CHECK_EQ_INT(r.errors, 0);
    tools_report_fini(&r);

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    peer_start();
    check_http();
    test_peer_stop(&peer);
    check_fs();
    check_kv();
    curl_global_cleanup();
    tools_registry_free(reg);
    return test_report("test_caps");
}
