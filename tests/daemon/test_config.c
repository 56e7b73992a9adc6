/* test_config.c: tests daemon/config.c: good fixtures load to the expected
 * values, every bad fixture reports each problem at the exact
 * file:line:col: key.path, print → load round-trips, and config_find walks
 * the documented search order. The expectations were worked out by hand
 * from the fixture text; keep it that way when adding cases. */
#include "config.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX SHOAL_CONFIG_FIXTURES

static char tmpdir[256];

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    size_t n = strlen(text);
    CHECK(write(fd, text, n) == (ssize_t)n);
    close(fd);
    CHECK(chmod(path, mode) == 0);
}

static void tmp_path(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", tmpdir, rel);
}

/* Load a fixture that must load cleanly; print the report when it does not. */
static struct config *load_good(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/good/%s", FIX, rel);
    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    enum shoal_err rc = config_load_file(path, &c, &r);
    CHECK_EQ_INT(rc, SHOAL_OK);
    CHECK_EQ_INT(r.n, 0);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "unexpected problems in %s:\n", rel);
        config_report_print(&r, 2);
    }
    config_report_fini(&r);
    return c;
}

static void check_default_limits(const struct config_limits *l)
{
    CHECK_EQ_INT(l->header_bytes, SHOAL_CAP_HTTP_HEADER_BYTES);
    CHECK_EQ_INT(l->header_count, SHOAL_CAP_HTTP_HEADERS);
    CHECK_EQ_INT(l->body_bytes, SHOAL_CAP_HTTP_BODY_BYTES);
    CHECK_EQ_INT(l->header_timeout_ms, SHOAL_CAP_HTTP_HEADER_MS);
    CHECK_EQ_INT(l->body_timeout_ms, SHOAL_CAP_HTTP_BODY_MS);
    CHECK_EQ_INT(l->keepalive_ms, SHOAL_CAP_HTTP_KEEPALIVE_MS);
    CHECK_EQ_INT(l->max_connections, SHOAL_CAP_HTTP_CONNECTIONS);
    CHECK_EQ_INT(l->shutdown_ms, SHOAL_CAP_SHUTDOWN_MS);
}

static void check_secret(const struct config *c, const char *source, const char *value)
{
    CHECK(c->auth_token != NULL);
    if (!c->auth_token)
        return;
    size_t n;
    const char *v = shoal_secret_reveal(c->auth_token, &n);
    CHECK_STR(shoal_secret_source(c->auth_token), source);
    CHECK_EQ_INT(n, strlen(value));
    CHECK(memcmp(v, value, strlen(value)) == 0);
}

/* Two configurations hold the same values (source aside). */
static void check_same(const struct config *a, const struct config *b)
{
    CHECK_STR(a->listen.socket, b->listen.socket);
    CHECK_EQ_INT(a->listen.tcp, b->listen.tcp);
    if (a->listen.tcp && b->listen.tcp) {
        CHECK_STR(a->listen.tcp_host, b->listen.tcp_host);
        CHECK_EQ_INT(a->listen.tcp_port, b->listen.tcp_port);
    }
    CHECK(memcmp(&a->limits, &b->limits, sizeof(a->limits)) == 0);
    CHECK_EQ_INT(a->engine.threads, b->engine.threads);
    CHECK_EQ_INT(a->engine.queue, b->engine.queue);
    CHECK_EQ_INT(a->engine.memory_budget, b->engine.memory_budget);
    CHECK_EQ_INT(a->traces.enabled, b->traces.enabled);
    CHECK_STR(a->traces.path, b->traces.path);
    CHECK_EQ_INT(a->traces.retention_ms, b->traces.retention_ms);
    CHECK_EQ_INT(a->traces.max_bytes, b->traces.max_bytes);
    CHECK_EQ_INT(a->traces.payload_bytes, b->traces.payload_bytes);
    CHECK_EQ_INT(a->traces.redact, b->traces.redact);
    CHECK_EQ_INT(a->traces.sync_full, b->traces.sync_full);
    CHECK_EQ_INT(a->traces.queue, b->traces.queue);
    CHECK_EQ_INT(a->tools.n_dirs, b->tools.n_dirs);
    for (size_t i = 0; i < a->tools.n_dirs && i < b->tools.n_dirs; i++)
        CHECK_STR(a->tools.dirs[i], b->tools.dirs[i]);
    CHECK_STR(a->tools.workspace, b->tools.workspace);
    CHECK_STR(a->tools.kv_path, b->tools.kv_path);
    CHECK_EQ_INT(a->tools.instructions, b->tools.instructions);
    CHECK_EQ_INT(a->tools.memory_bytes, b->tools.memory_bytes);
    CHECK_EQ_INT(a->tools.timeout_ms, b->tools.timeout_ms);
    CHECK_EQ_INT(a->tools.result_bytes, b->tools.result_bytes);
    CHECK_EQ_INT(a->tools.n_grants, b->tools.n_grants);
    for (size_t i = 0; i < a->tools.n_grants && i < b->tools.n_grants; i++) {
        const struct config_grant *x = &a->tools.grants[i], *y = &b->tools.grants[i];
        CHECK_STR(x->tool, y->tool);
        CHECK(x->http == y->http && x->fs == y->fs && x->kv == y->kv);
        CHECK(x->allow_http == y->allow_http && x->n_hosts == y->n_hosts);
        for (size_t h = 0; h < x->n_hosts && h < y->n_hosts; h++)
            CHECK_STR(x->allow_hosts[h], y->allow_hosts[h]);
    }
    CHECK_EQ_INT(a->n_models, b->n_models);
    for (size_t i = 0; i < a->n_models && i < b->n_models; i++) {
        const struct config_model *x = &a->models[i], *y = &b->models[i];
        CHECK_STR(x->name, y->name);
        CHECK_EQ_INT(x->provider, y->provider);
        if (x->provider == CONFIG_PROVIDER_LOCAL) {
            CHECK_STR(x->path, y->path);
            CHECK_EQ_INT(x->context, y->context);
            CHECK_EQ_INT(x->keep_alive_ms, y->keep_alive_ms);
            continue;
        }
        CHECK_STR(x->base_url, y->base_url);
        CHECK_STR(x->model, y->model);
        CHECK_EQ_INT(x->api_key_source != NULL, y->api_key_source != NULL);
        if (x->api_key_source && y->api_key_source)
            CHECK_STR(x->api_key_source, y->api_key_source);
        CHECK_EQ_INT(x->n_headers, y->n_headers);
        for (size_t h = 0; h < x->n_headers && h < y->n_headers; h++) {
            CHECK_STR(x->headers[h].name, y->headers[h].name);
            CHECK_STR(x->headers[h].value, y->headers[h].value);
        }
        CHECK_EQ_INT(x->connect_timeout_ms, y->connect_timeout_ms);
        CHECK_EQ_INT(x->first_byte_timeout_ms, y->first_byte_timeout_ms);
        CHECK_EQ_INT(x->total_timeout_ms, y->total_timeout_ms);
        CHECK_EQ_INT(x->retry_attempts, y->retry_attempts);
        CHECK_EQ_INT(x->retry_backoff_ms, y->retry_backoff_ms);
        CHECK(x->price_input_per_mtok == y->price_input_per_mtok);
        CHECK(x->price_output_per_mtok == y->price_output_per_mtok);
        CHECK(x->price_cached_per_mtok == y->price_cached_per_mtok);
    }
    CHECK_EQ_INT(a->log_level, b->log_level);
    CHECK_EQ_INT(a->auth_token != NULL, b->auth_token != NULL);
    if (a->auth_token && b->auth_token) {
        size_t n;
        const char *v = shoal_secret_reveal(a->auth_token, &n);
        CHECK(shoal_secret_equals(b->auth_token, v, n));
        CHECK_STR(shoal_secret_source(a->auth_token), shoal_secret_source(b->auth_token));
    }
}

/* config_print → config_load_string gives the same configuration. */
static void check_round_trip(const struct config *c)
{
    struct shoal_buf b;
    shoal_buf_init(&b, 1 << 16);
    CHECK_EQ_INT(config_print(c, &b), SHOAL_OK);
    struct config_report r;
    config_report_init(&r);
    struct config *again = NULL;
    CHECK_EQ_INT(config_load_string("printed", b.data, b.len, &again, &r), SHOAL_OK);
    if (again) {
        check_same(c, again);
    } else {
        fprintf(stderr, "printed config did not load:\n%s\n", shoal_buf_cstr(&b));
        config_report_print(&r, 2);
    }
    config_free(again);
    config_report_fini(&r);
    shoal_buf_fini(&b);
}

static void test_good(void)
{
    char want[512];
    struct config *c;

    c = load_good("full.yaml");
    if (c) {
        snprintf(want, sizeof(want), "%s/run/shoal.sock", tmpdir);
        CHECK_STR(c->listen.socket, want);
        CHECK(c->listen.tcp);
        CHECK_STR(c->listen.tcp_host, "127.0.0.1");
        CHECK_EQ_INT(c->listen.tcp_port, 7878);
        check_secret(c, "env:SHOAL_TEST_TOKEN", "tok-123");
        CHECK_EQ_INT(c->limits.header_bytes, 32 * 1024);
        CHECK_EQ_INT(c->limits.header_count, 50);
        CHECK_EQ_INT(c->limits.body_bytes, 16 * 1024 * 1024);
        CHECK_EQ_INT(c->limits.header_timeout_ms, 5000);
        CHECK_EQ_INT(c->limits.body_timeout_ms, 60000);
        CHECK_EQ_INT(c->limits.keepalive_ms, 0);
        CHECK_EQ_INT(c->limits.max_connections, 64);
        CHECK_EQ_INT(c->limits.shutdown_ms, 2500);
        CHECK_EQ_INT(c->log_level, SHOAL_LOG_DEBUG);
        snprintf(want, sizeof(want), "%s/good/full.yaml", FIX);
        CHECK_STR(c->source, want);
        check_round_trip(c);

        struct shoal_buf b;
        shoal_buf_init(&b, 1 << 16);
        CHECK_EQ_INT(config_print(c, &b), SHOAL_OK);
        const char *p = shoal_buf_cstr(&b);
        CHECK_CONTAINS(p, "  tcp: \"127.0.0.1:7878\"\n");
        CHECK_CONTAINS(p, "  token: { env: SHOAL_TEST_TOKEN }\n");
        CHECK_CONTAINS(p, "  header_bytes: 32KiB\n");
        CHECK_CONTAINS(p, "  header_count: 50\n");
        CHECK_CONTAINS(p, "  body_bytes: 16MiB\n");
        CHECK_CONTAINS(p, "  body_timeout: 1m\n");
        CHECK_CONTAINS(p, "  keepalive_timeout: 0s\n");
        CHECK_CONTAINS(p, "  shutdown_timeout: 2500ms\n");
        CHECK_CONTAINS(p, "  level: debug\n");
        CHECK(strstr(p, "tok-123") == NULL); /* the value never prints */
        shoal_buf_fini(&b);
    }
    config_free(c);

    c = load_good("minimal.yaml");
    if (c) {
        char sock[108];
        CHECK_EQ_INT(config_default_socket(sock, sizeof(sock)), SHOAL_OK);
        CHECK_STR(c->listen.socket, sock);
        CHECK(!c->listen.tcp);
        CHECK(c->auth_token == NULL);
        check_default_limits(&c->limits);
        CHECK_EQ_INT(c->log_level, SHOAL_LOG_WARN);
        check_round_trip(c);
    }
    config_free(c);

    static const char *const defaults_only[] = {"empty.yaml", "comments_only.yaml", "nulls.yaml"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(defaults_only); i++) {
        c = load_good(defaults_only[i]);
        if (c) {
            CHECK(c->listen.socket && c->listen.socket[0] == '/');
            CHECK(!c->listen.tcp);
            CHECK(c->auth_token == NULL);
            check_default_limits(&c->limits);
            CHECK_EQ_INT(c->log_level, SHOAL_LOG_INFO);
        }
        config_free(c);
    }

    c = load_good("comments.yaml");
    if (c) {
        CHECK_STR(c->listen.socket, "/tmp/shoal test/shoal.sock");
        CHECK_EQ_INT(c->limits.header_count, 7);
        CHECK_EQ_INT(c->limits.body_bytes, 1000000000);
        CHECK_EQ_INT(c->log_level, SHOAL_LOG_ERROR);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("explicit_doc.yaml");
    if (c)
        CHECK_EQ_INT(c->log_level, SHOAL_LOG_OFF);
    config_free(c);

    c = load_good("anchors.yaml");
    if (c) {
        CHECK_EQ_INT(c->limits.header_timeout_ms, 20000);
        CHECK_EQ_INT(c->limits.body_timeout_ms, 20000);
        CHECK_EQ_INT(c->limits.keepalive_ms, 20000);
    }
    config_free(c);

    c = load_good("units_a.yaml");
    if (c) {
        CHECK_EQ_INT(c->limits.header_bytes, 1024);
        CHECK_EQ_INT(c->limits.body_bytes, 1024 * 1024 * 1024);
        CHECK_EQ_INT(c->limits.header_timeout_ms, 100);
        CHECK_EQ_INT(c->limits.body_timeout_ms, 3600000);
        CHECK_EQ_INT(c->limits.keepalive_ms, 90000);
        CHECK_EQ_INT(c->limits.shutdown_ms, 600000);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("units_b.yaml");
    if (c) {
        CHECK_EQ_INT(c->limits.header_bytes, 1024 * 1024);
        CHECK_EQ_INT(c->limits.body_bytes, 0);
        CHECK_EQ_INT(c->limits.header_timeout_ms, 150);
        CHECK_EQ_INT(c->limits.body_timeout_ms, 120000);
        CHECK_EQ_INT(c->limits.keepalive_ms, 0);
        CHECK_EQ_INT(c->limits.shutdown_ms, 0);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("units_c.yaml");
    if (c) {
        CHECK_EQ_INT(c->limits.header_bytes, 2000);
        CHECK_EQ_INT(c->limits.body_bytes, 3000000);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("secret_file.yaml");
    if (c) {
        snprintf(want, sizeof(want), "file:%s/token_private", tmpdir);
        check_secret(c, want, "s3cret"); /* one trailing \r\n stripped */
        CHECK(c->listen.tcp);
        CHECK_STR(c->listen.tcp_host, "::1");
        CHECK_EQ_INT(c->listen.tcp_port, 8080);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("tilde.yaml");
    if (c) {
        snprintf(want, sizeof(want), "%s/home/sock/shoal.sock", tmpdir);
        CHECK_STR(c->listen.socket, want);
        CHECK_STR(c->listen.tcp_host, "127.0.0.1"); /* localhost, without a resolver */
        CHECK_EQ_INT(c->listen.tcp_port, 9000);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("dollars.yaml");
    if (c) {
        CHECK_STR(c->listen.socket, "/tmp/$a/shoal$x.sock");
        check_round_trip(c);
    }
    config_free(c);

    /* Found by fuzz_config: NEL, LS and PS are YAML line breaks and C1
     * controls are refused raw, so config_print must escape them. */
    const char *odd = "listen: {socket: \"/tmp/a\\Nb\\x80c\\Ld\\Pe\\u00E9f\\uFFFEg\\th\"}";
    c = NULL;
    CHECK_EQ_INT(config_load_string("odd", odd, strlen(odd), &c, NULL), SHOAL_OK);
    if (c) {
        CHECK_STR(c->listen.socket, "/tmp/a\xC2\x85"
                                    "b\xC2\x80"
                                    "c\xE2\x80\xA8"
                                    "d\xE2\x80\xA9"
                                    "e\xC3\xA9"
                                    "f\xEF\xBF\xBE"
                                    "g\th");
        struct shoal_buf b;
        shoal_buf_init(&b, 1 << 16);
        CHECK_EQ_INT(config_print(c, &b), SHOAL_OK);
        CHECK_CONTAINS(shoal_buf_cstr(&b), "\"/tmp/a\\x85b\\x80c\\u2028d\\u2029e\xC3\xA9"
                                           "f\\uFFFEg\\x09h\"");
        shoal_buf_fini(&b);
        check_round_trip(c);
    }
    config_free(c);

    c = load_good("crlf.yaml");
    if (c)
        CHECK_EQ_INT(c->limits.max_connections, 100000);
    config_free(c);

    c = load_good("bom.yaml");
    if (c)
        CHECK_EQ_INT(c->log_level, SHOAL_LOG_WARN);
    config_free(c);
}

struct expect {
    unsigned line, col;
    const char *path;   /* "" when the problem is not under a key */
    const char *phrase; /* a part of the message that must be there */
};

struct bad_case {
    const char *file;
    size_t n;
    struct expect e[8];
};

/* Every location below was read off the fixture by hand (1-based; the key
 * for unknown/duplicate keys, the value for type and range errors). */
static const struct bad_case bad_cases[] = {
    {"unknown_top.yaml", 1, {{2, 1, "lisen", "unknown key 'lisen'; did you mean 'listen'?"}}},
    {"unknown_nested.yaml",
     1,
     {{2, 3, "limits.bdoy_bytes", "unknown key 'bdoy_bytes'; did you mean 'body_bytes'?"}}},
    {"unknown_nosuggest.yaml",
     1,
     {{3, 3, "log.colour", "unknown key 'colour'; expected one of: level"}}},
    {"unknown_case.yaml", 1, {{1, 1, "LIMITS", "did you mean 'limits'?"}}},
    {"duplicate.yaml",
     2,
     {{5, 3, "limits.header_count", "duplicate key 'header_count' (first set at line 4)"},
      {6, 1, "listen", "duplicate key 'listen' (first set at line 1)"}}},
    {"type_map_for_scalar.yaml", 1, {{3, 5, "listen.socket", "expected a path, got a mapping"}}},
    {"type_string_for_int.yaml",
     1,
     {{2, 17, "limits.header_count", "expected a whole number such as 100, got 'lots'"}}},
    {"type_scalar_for_map.yaml", 1, {{1, 9, "limits", "expected a mapping, got '100'"}}},
    {"type_list.yaml", 1, {{2, 10, "log.level", "expected a log level, got a list"}}},
    {"type_float.yaml",
     1,
     {{2, 20, "limits.max_connections", "expected a whole number such as 100, got '1.5'"}}},
    {"type_units.yaml",
     6,
     {{2, 17, "limits.header_bytes", "expected a size such as 16KiB"},
      {3, 15, "limits.body_bytes", "got '8 MiB'"},
      {4, 19, "limits.header_timeout", "got '1.5s' (no fractions: use a smaller unit)"},
      {5, 17, "limits.body_timeout", "expected a duration such as 10s"},
      {6, 17, "limits.header_count", "got '0x10'"},
      {7, 20, "limits.max_connections", "got '+5'"}}},
    {"range.yaml",
     8,
     {{2, 17, "limits.header_bytes", "must be between 1KiB and 1MiB (got '512')"},
      {3, 17, "limits.header_count", "must be between 1 and 1000 (got '1001')"},
      {4, 15, "limits.body_bytes", "must be between 0B and 1GiB (got '2GiB')"},
      {5, 19, "limits.header_timeout", "must be between 100ms and 1h (got '50ms')"},
      {6, 17, "limits.body_timeout", "must be between 100ms and 1h (got '2h')"},
      {7, 22, "limits.keepalive_timeout", "must be between 0s and 1h (got '61m')"},
      {8, 20, "limits.max_connections", "must be between 1 and 100000 (got '0')"},
      {9, 21, "limits.shutdown_timeout", "must be between 0s and 10m (got '11m')"}}},
    /* libyaml reports where it gave up; the message names where the
     * construct began. */
    {"syntax_indent.yaml",
     1,
     {{3, 2, "",
       "YAML syntax error: did not find expected key while parsing a block mapping (started "
       "at line 1, column 1)"}}},
    {"syntax_quote.yaml",
     1,
     {{3, 1, "",
       "found unexpected end of stream while scanning a quoted scalar (started at line 2, "
       "column 10)"}}},
    {"syntax_tab.yaml", 1, {{2, 1, "", "found character that cannot start any token"}}},
    {"non_utf8.yaml", 1, {{2, 13, "", "invalid leading UTF-8 octet (0xFF)"}}},
    {"alias_bomb.yaml",
     1,
     {{6, 8, "f[0]", "alias *e expands the document past 100000 nodes (alias bomb?)"}}},
    {"alias_undefined.yaml", 1, {{2, 10, "log.level", "alias *lvl has no anchor &lvl before it"}}},
    {"alias_recursive.yaml",
     1,
     {{2, 17, "limits.header_count", "alias *l refers to a node that contains it"}}},
    {"tag.yaml", 1, {{2, 10, "log.level", "YAML tags are not allowed (found !!python/object)"}}},
    {"secret_literal.yaml",
     1,
     {{2, 10, "auth.token",
       "secrets may not be written in the file; use { env: NAME } or { file: PATH }"}}},
    {"secret_env_unset.yaml",
     1,
     {{2, 17, "auth.token.env", "environment variable SHOAL_TEST_UNSET_TOKEN is not set"}}},
    {"secret_env_empty.yaml",
     1,
     {{2, 17, "auth.token.env", "environment variable SHOAL_TEST_EMPTY_TOKEN is empty"}}},
    {"secret_world_readable.yaml",
     1,
     {{3, 11, "auth.token.file", "is world-readable (mode 0644); run chmod o-r on it"}}},
    {"secret_both.yaml", 1, {{2, 10, "auth.token", "use one of env and file, not both"}}},
    {"secret_shape.yaml", 1, {{2, 12, "auth.token.evn", "unknown key 'evn'; did you mean 'env'?"}}},
    {"secret_missing_file.yaml", 1, {{2, 18, "auth.token.file", "No such file or directory"}}},
    {"tcp_not_loopback.yaml",
     1,
     {{2, 8, "listen.tcp",
       "tcp listener must be loopback (127.0.0.0/8, [::1] or localhost), got '0.0.0.0:7878'"}}},
    {"tcp_no_token.yaml", 1, {{2, 8, "listen.tcp", "a tcp listener requires auth.token"}}},
    {"tcp_bad_port.yaml",
     1,
     {{2, 8, "listen.tcp", "port must be a number from 1 to 65535 (got '[::1]:70000')"}}},
    {"not_mapping.yaml", 1, {{1, 1, "", "the top level must be a mapping"}}},
    {"scalar_top.yaml", 1, {{1, 1, "", "got 'hello'"}}},
    {"multi_doc.yaml", 1, {{3, 1, "", "a second YAML document starts here"}}},
    {"socket_too_long.yaml",
     1,
     {{2, 11, "listen.socket",
       "socket path is 126 bytes; a Unix socket path must be shorter than 108 bytes"}}},
    {"socket_relative.yaml",
     1,
     {{2, 11, "listen.socket",
       "socket path must be absolute after expanding ~ and ${VAR} (got 'run/shoal.sock')"}}},
    {"unset_var.yaml",
     1,
     {{2, 11, "listen.socket", "environment variable SHOAL_TEST_UNSET_DIR is not set"}}},
    {"many.yaml",
     8,
     {{2, 11, "listen.socket", "must be absolute"},
      {3, 8, "listen.tcp", "must be loopback"},
      {5, 10, "auth.token", "secrets may not be written in the file"},
      {7, 17, "limits.header_count", "must be between 1 and 1000"},
      {8, 17, "limits.body_timeout", "expected a duration"},
      {9, 3, "limits.shutdown_timout", "did you mean 'shutdown_timeout'?"},
      {11, 10, "log.level", "unknown log level 'loud'; expected one of: debug, info"},
      {12, 1, "extra", "unknown key 'extra'; expected one of: listen, auth, limits, log"}}},
    {"log_level.yaml",
     1,
     {{2, 10, "log.level", "unknown log level 'warnn'; did you mean 'warn'?"}}},
};

/* The report holds exactly the expected problems, each rendered as
 * "<file>:<line>:<col>: <path>: ..." with the phrase in its message. */
static void check_report(const char *file, const struct config_report *r, size_t n,
                         const struct expect *e)
{
    CHECK_EQ_INT(r->n, n);
    CHECK_EQ_INT(r->dropped, 0);
    for (size_t i = 0; i < n && i < r->n; i++) {
        char got[1280], prefix[600];
        shoal_diag_format(&r->items[i], got, sizeof(got));
        if (e[i].path[0])
            snprintf(prefix, sizeof(prefix), "%s:%u:%u: %s: ", file, e[i].line, e[i].col,
                     e[i].path);
        else
            snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", file, e[i].line, e[i].col);
        test_checks++;
        if (strncmp(got, prefix, strlen(prefix)) != 0 || strcmp(r->items[i].path, e[i].path)) {
            test_failures++;
            fprintf(stderr, "%s: problem %zu\n  got:      %s\n  expected: %s...\n", file, i, got,
                    prefix);
        }
        CHECK_CONTAINS(got, e[i].phrase);
    }
    if (r->n != n)
        config_report_print(r, 2);
}

static void test_bad(void)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        char path[512];
        snprintf(path, sizeof(path), "%s/bad/%s", FIX, bc->file);
        struct config_report r;
        config_report_init(&r);
        struct config *c = (struct config *)&r; /* must stay untouched */
        enum shoal_err rc = config_load_file(path, &c, &r);
        CHECK_EQ_INT(rc, SHOAL_ERR_INVALID);
        CHECK(c == (struct config *)&r);
        check_report(path, &r, bc->n, bc->e);
        config_report_fini(&r);
    }

    /* The tab hint is added to libyaml's message. */
    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    char path[512];
    snprintf(path, sizeof(path), "%s/bad/syntax_tab.yaml", FIX);
    CHECK_EQ_INT(config_load_file(path, &c, &r), SHOAL_ERR_INVALID);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "tabs cannot indent YAML"));
    config_report_fini(&r);
}

/* Inline documents for the corners a fixture per case would bury. */
struct inline_case {
    const char *yaml;
    unsigned line, col;
    const char *path, *phrase; /* phrase NULL: the document must load */
};

static const struct inline_case inline_cases[] = {
    {"engine: {threads: 4, queue: 8}", 0, 0, NULL, NULL},
    {"engine: {threads: 0}", 0, 0, NULL, NULL},
    {"engine: {memory_budget: 6GiB}", 0, 0, NULL, NULL},
    {"engine: {memory_budget: 2TB}", 1, 25, "engine.memory_budget", "expected a size"},
    {"models: {a: {provider: local, path: /m.gguf, keep_alive: 30s}}", 0, 0, NULL, NULL},
    {"models: {a: {provider: local, path: /m.gguf, keep_alive: -1}}", 1, 58, "models.a.keep_alive",
     "must be between"},
    {"models: {a: {provider: openai, base_url: 'https://x/v1', model: m, keep_alive: 1s}}", 1,
     80, "models.a.keep_alive", "only for provider: local"},
    {"engine: {threads: 257}", 1, 19, "engine.threads", "must be between"},
    {"engine: {threads: -1}", 1, 19, "engine.threads", "must be between"},
    {"engine: {queue: 0}", 1, 17, "engine.queue", "must be between"},
    {"engine: {thread: 2}", 1, 10, "engine.thread", "did you mean"},
    {"engine: 3", 1, 9, "engine", "mapping"},
    {"limits: {body_bytes: -1}", 1, 22, "limits.body_bytes", "must be between 0B and 1GiB"},
    {"limits: {body_bytes: -0}", 0, 0, NULL, NULL},
    {"limits: {body_bytes: 99999999999999999999999}", 1, 22, "limits.body_bytes",
     "must be between"},
    {"limits: {body_bytes: 17179869184GiB}", 1, 22, "limits.body_bytes", "must be between"},
    {"limits: {body_bytes: 1e6}", 1, 22, "limits.body_bytes", "expected a size"},
    {"limits: {body_bytes: 16kib}", 1, 22, "limits.body_bytes", "expected a size"},
    {"limits: {body_bytes: MiB}", 1, 22, "limits.body_bytes", "expected a size"},
    {"limits: {header_count: 010}", 1, 24, "limits.header_count", "expected a whole number"},
    {"limits: {header_count: 12ms}", 1, 24, "limits.header_count", "expected a whole number"},
    {"limits: {header_count: \"12\"}", 0, 0, NULL, NULL},
    {"limits: {header_timeout: 10 s}", 1, 26, "limits.header_timeout", "expected a duration"},
    {"limits: {header_timeout: 1d}", 1, 26, "limits.header_timeout", "between 100ms and 1h"},
    {"limits: {header_timeout: 1w}", 1, 26, "limits.header_timeout", "expected a duration"},
    {"traces: {enabled: yes}", 1, 19, "traces.enabled", "expected one of: false, true"},
    {"traces: {enabled: True}", 1, 19, "traces.enabled", "did you mean 'true'?"},
    {"traces: {redact: contents}", 1, 18, "traces.redact", "did you mean 'content'?"},
    {"traces: {sync: fsync}", 1, 16, "traces.sync", "expected one of: normal, full"},
    {"traces: {path: relative.db}", 1, 16, "traces.path", "must be absolute"},
    {"traces: {path: [a]}", 1, 16, "traces.path", "expected a path"},
    {"traces: {retention: 3651d}", 1, 21, "traces.retention", "must be between 0s and 3650d"},
    {"traces: {retention: 0}", 0, 0, NULL, NULL},
    {"traces: {max_size: 1000}", 1, 20, "traces.max_size", "0 (no limit) or at least 1MiB"},
    {"traces: {max_size: 0}", 0, 0, NULL, NULL},
    {"traces: {payload_bytes: 10}", 1, 25, "traces.payload_bytes", "between 64B and 64MiB"},
    {"traces: {queue: 4}", 1, 17, "traces.queue", "between 16 and 1048576"},
    {"traces: {rentention: 1d}", 1, 10, "traces.rentention", "did you mean 'retention'?"},
    {"tools: {dirs: [rel/dir]}", 1, 16, "tools.dirs[0]", "must be absolute"},
    {"tools: {dirs: {a: b}}", 1, 15, "tools.dirs", "expected a list of directories"},
    {"tools: {limits: {memory: 1KiB}}", 1, 26, "tools.limits.memory", "between 1MiB and 1GiB"},
    {"tools: {limits: {timeout: 1h}}", 1, 27, "tools.limits.timeout", "between 10ms and 10m"},
    {"tools: {limits: {instrs: 5}}", 1, 18, "tools.limits.instrs", "unknown key"},
    {"tools: {grants: {Bad-Name: {fs: true}}}", 1, 18, "tools.grants.Bad-Name",
     "not a tool name"},
    {"tools: {grants: {t: {http: {allow_http: true}}}}", 1, 28, "tools.grants.t.http.allow_hosts",
     "needs allow_hosts"},
    {"tools: {grants: {t: {http: {allow_hosts: [\"https://x.org\"]}}}}", 1, 42,
     "tools.grants.t.http.allow_hosts", "not a host name"},
    {"tools: {grants: {t: {fs: yes}}}", 1, 26, "tools.grants.t.fs", "expected one of: false, true"},
    {"tools: {grants: {t: {net: true}}}", 1, 22, "tools.grants.t.net", "unknown key 'net'"},
    {"models: [a]", 1, 9, "models", "expected a mapping of model names"},
    {"models: {\"bad name\": {path: /m.gguf}}", 1, 10, "models.bad name", "must be 1 to 64"},
    {"models: {a: {provider: openai, path: /m.gguf, base_url: \"https://x.org/v1\", model: m}}",
     1, 38, "models.a.path", "only for provider: local"},
    {"models: {a: {provider: gemini}}", 1, 24, "models.a.provider", "expected one of: local"},
    {"models: {a: {provider: openai, model: m}}", 1, 13, "models.a.base_url", "needs base_url"},
    {"models: {a: {provider: anthropic, base_url: \"https://x.org\"}}", 1, 13, "models.a.model",
     "needs model"},
    {"models: {a: {provider: openai, base_url: \"http://api.x.org/v1\", model: m}}", 1, 42,
     "models.a.base_url", "must be https://"},
    {"models: {a: {provider: openai, base_url: \"http://127.0.0.9:8/v1\", model: m}}", 0, 0, NULL,
     NULL},
    {"models: {a: {provider: openai, base_url: \"http://localhost/v1\", model: m}}", 0, 0, NULL,
     NULL},
    {"models: {a: {provider: openai, base_url: \"http://[::1]:9/v1\", model: m}}", 0, 0, NULL,
     NULL},
    {"models: {a: {provider: openai, base_url: \"http://127.0.0.1.x.org/v1\", model: m}}", 1, 42,
     "models.a.base_url", "must be https://"},
    {"models: {a: {provider: openai, base_url: \"ftp://x.org\", model: m}}", 1, 42,
     "models.a.base_url", "expected an http(s) URL"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, api_key: sk-1}}", 1,
     78, "models.a.api_key", "secrets may not be written in the file"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, price: "
     "{input_per_mtok: -0.1}}}",
     1, 93, "models.a.price.input_per_mtok", "non-negative"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, price: "
     "{output_per_mtok: .nan}}}",
     1, 94, "models.a.price.output_per_mtok", "expected a decimal number"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, price: "
     "{cached_per_mtok: 1e999}}}",
     1, 94, "models.a.price.cached_per_mtok", "non-negative finite"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, retry: "
     "{attempts: 0}}}",
     1, 87, "models.a.retry.attempts", "between 1 and 20"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, timeouts: "
     "{first_byte: 2h}}}",
     1, 92, "models.a.timeouts.first_byte", "between 100ms and 1h"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, headers: "
     "{Authorization: x}}}",
     1, 79, "models.a.headers.Authorization", "carries the key"},
    {"models: {a: {provider: openai, base_url: \"https://x.org\", model: m, headers: "
     "{\"bad name\": x}}}",
     1, 79, "models.a.headers.bad name", "not a header name"},
    {"models: {a: {path: /m.gguf, base_url: \"https://x.org\"}}", 1, 39, "models.a.base_url",
     "only for remote providers"},
    {"models: {a: {provider: local}}", 1, 13, "models.a.path", "needs path"},
    {"models: {a: {path: m.gguf}}", 1, 20, "models.a.path", "must be absolute"},
    {"models: {a: {path: /m.gguf, context: 8}}", 1, 38, "models.a.context", "between 16"},
    {"models: {a: {path: /m.gguf, ctx: 8}}", 1, 29, "models.a.ctx", "unknown key 'ctx'"},
    {"models: {a: {path: /m.gguf}, a: {path: /n.gguf}}", 1, 30, "models.a", "defined twice"},
    {"listen: {tcp: 127.0.0.1}", 1, 15, "listen.tcp", "expected HOST:PORT"},
    {"listen: {tcp: \"::1:80\"}", 1, 15, "listen.tcp", "in brackets"},
    {"listen: {tcp: \"[::2]:80\"}", 1, 15, "listen.tcp", "must be loopback"},
    {"listen: {tcp: example.com:80}", 1, 15, "listen.tcp", "must be loopback"},
    {"listen: {tcp: \"127.1:80\"}", 1, 15, "listen.tcp", "must be loopback"},
    {"listen: {tcp: \"127.0.0.1:0\"}", 1, 15, "listen.tcp", "port must be"},
    {"listen: {tcp: \"127.0.0.1:http\"}", 1, 15, "listen.tcp", "port must be"},
    {"listen: {tcp: [a]}", 1, 15, "listen.tcp", "expected HOST:PORT, got a list"},
    {"listen: {socket: \"~root/x\"}", 1, 18, "listen.socket", "~user paths are not supported"},
    {"listen: {socket: \"/x/${NOPE\"}", 1, 18, "listen.socket", "unterminated ${"},
    {"listen: {socket: \"/x/${1A}\"}", 1, 18, "listen.socket", "not a valid variable name"},
    {"listen: {socket: \"/x/${SHOAL_TEST_EMPTY_TOKEN}\"}", 1, 18, "listen.socket",
     "environment variable SHOAL_TEST_EMPTY_TOKEN is empty"},
    {"listen: {socket: \"/a\\0b\"}", 1, 18, "listen.socket", "may not contain NUL"},
    {"auth: {token: {}}", 1, 15, "auth.token", "expected { env: NAME } or { file: PATH }"},
    {"auth: {token: {env: ~}}", 1, 15, "auth.token", "expected { env: NAME } or { file: PATH }"},
    {"auth: {token: [x]}", 1, 15, "auth.token", "got a list"},
    {"auth: {token: {env: BAD-NAME}}", 1, 21, "auth.token.env", "not a valid environment"},
    {"auth: {token: {env: SHOAL_TEST_TOKEN, env: X}}", 1, 39, "auth.token.env",
     "duplicate key 'env' (first set at line 1)"},
    {"auth: {token: {file: relative/token}}", 1, 22, "auth.token.file", "must be absolute"},
    {"auth: {token: {file: /}}", 1, 22, "auth.token.file", "not a regular file"},
    {"auth: {token: {file: /dev/null}}", 1, 22, "auth.token.file", "not a regular file"},
    {"{[a]: 1}", 1, 2, "", "keys must be strings, got a list"},
    {"log: !!map {level: info}", 1, 6, "log", "YAML tags are not allowed (found !!map)"},
    {"log: {level: !local info}", 1, 14, "log.level", "YAML tags are not allowed (found !local)"},
    {"log: {level: &x info}\nlimits: {header_count: *x}", 2, 24, "limits.header_count",
     "got 'info'"},
    {"log: {level: 'off'}", 0, 0, NULL, NULL},
    {"log: {level: warning}", 0, 0, NULL, NULL},
    {"log: {level: \"\"}", 1, 14, "log.level", "unknown log level ''"},
    {"log: \"\"", 1, 6, "log", "expected a mapping, got ''"},
    {"---\n...\n", 0, 0, NULL, NULL},
    {"~", 0, 0, NULL, NULL},
    {"limits: {header_count: &n 5, max_connections: &n 7, body_bytes: *n}", 0, 0, NULL, NULL},
    {"limits: {header_count: *n, max_connections: &n 7}", 1, 24, "limits.header_count",
     "alias *n has no anchor &n before it"},
};

static void test_inline(void)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(inline_cases); i++) {
        const struct inline_case *ic = &inline_cases[i];
        struct config_report r;
        config_report_init(&r);
        struct config *c = NULL;
        enum shoal_err rc = config_load_string("inline", ic->yaml, strlen(ic->yaml), &c, &r);
        if (!ic->phrase) {
            CHECK_EQ_INT(rc, SHOAL_OK);
            if (rc != SHOAL_OK) {
                fprintf(stderr, "inline case %zu: %s\n", i, ic->yaml);
                config_report_print(&r, 2);
            }
        } else {
            CHECK_EQ_INT(rc, SHOAL_ERR_INVALID);
            struct expect e = {ic->line, ic->col, ic->path, ic->phrase};
            check_report("inline", &r, 1, &e);
        }
        config_free(c);
        config_report_fini(&r);
    }

    /* Every traces key, read and printed back. */
    const char *ty = "traces:\n  enabled: false\n  path: /var/tmp/x$$/t.db\n  retention: 36h\n"
                     "  max_size: 2GiB\n  payload_bytes: 1KiB\n  redact: content\n  sync: full\n"
                     "  queue: 64\n";
    struct config *tc = NULL;
    CHECK_EQ_INT(config_load_string("inline", ty, strlen(ty), &tc, NULL), SHOAL_OK);
    if (tc) {
        CHECK(!tc->traces.enabled);
        CHECK_STR(tc->traces.path, "/var/tmp/x$/t.db");
        CHECK_EQ_INT(tc->traces.retention_ms, 36ull * 3600 * 1000);
        CHECK_EQ_INT(tc->traces.max_bytes, 2ull << 30);
        CHECK_EQ_INT(tc->traces.payload_bytes, 1024);
        CHECK(tc->traces.redact);
        CHECK(tc->traces.sync_full);
        CHECK_EQ_INT(tc->traces.queue, 64);
        check_round_trip(tc);
    }
    config_free(tc);

    /* Tools: every key read and printed back. */
    const char *ty2 = "tools:\n  dirs: [/srv/tools, /opt/t]\n  workspace: /srv/ws\n  kv: /srv/kv.db\n"
                      "  limits: {instructions: 1000000, memory: 32MiB, timeout: 2s, "
                      "result_bytes: 64KiB}\n  grants:\n    http_get: {http: {allow_hosts: "
                      "[api.github.com, \"*.example.org\"], allow_http: true}}\n"
                      "    notes: {fs: true, kv: true}\n";
    struct config *tc2 = NULL;
    CHECK_EQ_INT(config_load_string("inline", ty2, strlen(ty2), &tc2, NULL), SHOAL_OK);
    if (tc2) {
        const struct config_tools *t = &tc2->tools;
        CHECK_EQ_INT(t->n_dirs, 2);
        CHECK(t->dirs_given);
        CHECK_STR(t->dirs[1], "/opt/t");
        CHECK_STR(t->workspace, "/srv/ws");
        CHECK_STR(t->kv_path, "/srv/kv.db");
        CHECK_EQ_INT(t->instructions, 1000000);
        CHECK_EQ_INT(t->memory_bytes, 32u << 20);
        CHECK_EQ_INT(t->timeout_ms, 2000);
        CHECK_EQ_INT(t->result_bytes, 65536);
        const struct config_grant *g = config_grant_find(tc2, "http_get");
        CHECK(g && g->http && !g->fs && g->n_hosts == 2 && g->allow_http);
        CHECK(g && !strcmp(g->allow_hosts[1], "*.example.org"));
        g = config_grant_find(tc2, "notes");
        CHECK(g && g->fs && g->kv && !g->http);
        CHECK(config_grant_find(tc2, "other") == NULL);
        check_round_trip(tc2);
    }
    config_free(tc2);

    /* Models: read, found by name, printed back. */
    const char *my = "models:\n  small:\n    provider: local\n    path: /srv/m/s.gguf\n"
                     "    context: 2048\n  big.v2:\n    path: /srv/m/b.gguf\n";
    struct config *mc = NULL;
    CHECK_EQ_INT(config_load_string("inline", my, strlen(my), &mc, NULL), SHOAL_OK);
    if (mc) {
        CHECK_EQ_INT(mc->n_models, 2);
        const struct config_model *cm = config_model_find(mc, "small");
        CHECK(cm && !strcmp(cm->path, "/srv/m/s.gguf") && cm->context == 2048);
        cm = config_model_find(mc, "big.v2");
        CHECK(cm && !strcmp(cm->path, "/srv/m/b.gguf") && cm->context == 0);
        CHECK(config_model_find(mc, "none") == NULL);
        check_round_trip(mc);
    }
    config_free(mc);

    /* Remote models: every key read, printed back (the key only as its
     * source), and a client load checks the key's shape without reading it
     * unless it is the named model's. */
    setenv("SHOAL_TEST_REMOTE_KEY", "sk-remote-secret", 1);
    const char *ry = "models:\n  oa:\n    provider: openai\n"
                     "    base_url: https://api.openai.com/v1\n    model: gpt-4o-mini\n"
                     "    api_key: { env: SHOAL_TEST_REMOTE_KEY }\n"
                     "    headers: { OpenAI-Organization: org-1, X-Title: \"a b\" }\n"
                     "    timeouts: { connect: 3s, first_byte: 30s, total: 90s }\n"
                     "    retry: { attempts: 5, backoff: 250ms }\n"
                     "    price: { input_per_mtok: 0.15, output_per_mtok: 0.6, "
                     "cached_per_mtok: 0.075 }\n"
                     "  an:\n    provider: anthropic\n    base_url: http://127.0.0.1:9/v1\n"
                     "    model: claude-x\n"
                     "    price: { input_per_mtok: 3, output_per_mtok: 1e-05 }\n"
                     "  loc:\n    path: /srv/m/s.gguf\n";
    struct config *rc2 = NULL;
    CHECK_EQ_INT(config_load_string("inline", ry, strlen(ry), &rc2, NULL), SHOAL_OK);
    if (rc2) {
        CHECK_EQ_INT(rc2->n_models, 3);
        const struct config_model *oa = config_model_find(rc2, "oa");
        const struct config_model *an = config_model_find(rc2, "an");
        const struct config_model *loc = config_model_find(rc2, "loc");
        CHECK(oa && an && loc);
        if (oa && an && loc) {
            CHECK_EQ_INT(oa->provider, CONFIG_PROVIDER_OPENAI);
            CHECK_STR(oa->base_url, "https://api.openai.com/v1");
            CHECK_STR(oa->model, "gpt-4o-mini");
            CHECK(oa->api_key && shoal_secret_equals(oa->api_key, "sk-remote-secret", 16));
            CHECK_STR(oa->api_key_source, "env:SHOAL_TEST_REMOTE_KEY");
            CHECK_EQ_INT(oa->n_headers, 2);
            if (oa->n_headers == 2) {
                CHECK_STR(oa->headers[0].name, "OpenAI-Organization");
                CHECK_STR(oa->headers[1].value, "a b");
            }
            CHECK_EQ_INT(oa->connect_timeout_ms, 3000);
            CHECK_EQ_INT(oa->first_byte_timeout_ms, 30000);
            CHECK_EQ_INT(oa->total_timeout_ms, 90000);
            CHECK_EQ_INT(oa->retry_attempts, 5);
            CHECK_EQ_INT(oa->retry_backoff_ms, 250);
            CHECK(oa->price_input_per_mtok == 0.15 && oa->price_output_per_mtok == 0.6 &&
                  oa->price_cached_per_mtok == 0.075);
            CHECK_EQ_INT(an->provider, CONFIG_PROVIDER_ANTHROPIC);
            CHECK(an->api_key == NULL && an->api_key_source == NULL);
            CHECK_EQ_INT(an->connect_timeout_ms, 10000);
            CHECK_EQ_INT(an->first_byte_timeout_ms, 60000);
            CHECK_EQ_INT(an->total_timeout_ms, 120000);
            CHECK_EQ_INT(an->retry_attempts, 3);
            CHECK_EQ_INT(an->retry_backoff_ms, 500);
            CHECK(an->price_output_per_mtok == 1e-05 && an->price_cached_per_mtok < 0);
            CHECK_EQ_INT(loc->provider, CONFIG_PROVIDER_LOCAL);
        }
        struct shoal_buf pb;
        shoal_buf_init(&pb, 1 << 16);
        CHECK_EQ_INT(config_print(rc2, &pb), SHOAL_OK);
        CHECK_CONTAINS(shoal_buf_cstr(&pb), "api_key: { env: SHOAL_TEST_REMOTE_KEY }");
        CHECK(strstr(shoal_buf_cstr(&pb), "sk-remote-secret") == NULL);
        shoal_buf_fini(&pb);
        check_round_trip(rc2);
    }
    config_free(rc2);
    char rpath[] = "/tmp/shoal-test-remote-XXXXXX";
    int rfd = mkstemp(rpath);
    CHECK(rfd >= 0);
    if (rfd >= 0) {
        const char *cy = "auth: { token: { env: SHOAL_TEST_UNSET_TOKEN_X } }\nmodels:\n"
                         "  a:\n    provider: openai\n    base_url: https://x.org\n    model: m\n"
                         "    api_key: { env: SHOAL_TEST_REMOTE_KEY }\n"
                         "  b:\n    provider: openai\n    base_url: https://x.org\n    model: m\n"
                         "    api_key: { env: SHOAL_TEST_UNSET_KEY_X }\n";
        CHECK(write(rfd, cy, strlen(cy)) == (ssize_t)strlen(cy));
        close(rfd);
        struct config *mc2 = NULL;
        CHECK_EQ_INT(config_load_file_model(rpath, "a", &mc2, NULL), SHOAL_OK);
        if (mc2) {
            const struct config_model *a = config_model_find(mc2, "a");
            const struct config_model *b = config_model_find(mc2, "b");
            CHECK(a && a->api_key && shoal_secret_equals(a->api_key, "sk-remote-secret", 16));
            CHECK(b && !b->api_key && !strcmp(b->api_key_source, "env:SHOAL_TEST_UNSET_KEY_X"));
            CHECK(mc2->auth_token == NULL);
        }
        config_free(mc2);
        mc2 = NULL;
        CHECK_EQ_INT(config_load_file_model(rpath, "b", &mc2, NULL), SHOAL_ERR_INVALID);
        unlink(rpath);
    }

    /* A later anchor of the same name wins, as YAML says. */
    const char *y = "limits: {header_count: &n 5, max_connections: &n 7, body_bytes: *n}";
    struct config *c = NULL;
    CHECK_EQ_INT(config_load_string("inline", y, strlen(y), &c, NULL), SHOAL_OK);
    if (c) {
        CHECK_EQ_INT(c->limits.header_count, 5);
        CHECK_EQ_INT(c->limits.max_connections, 7);
        CHECK_EQ_INT(c->limits.body_bytes, 7);
    }
    config_free(c);
}

/* Caps: file size, report size, nesting, node count; NULL report. */
static void test_caps(void)
{
    struct config_report r;
    struct config *c = NULL;

    /* One byte past the size cap, from a string and from a (sparse) file. */
    size_t big = SHOAL_CAP_CONFIG_BYTES + 1;
    char *text = malloc(big);
    CHECK(text != NULL);
    if (!text)
        return;
    memset(text, '#', big);
    config_report_init(&r);
    CHECK_EQ_INT(config_load_string("big", text, big, &c, &r), SHOAL_ERR_TOO_BIG);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "at most 1048576 bytes"));
    config_report_fini(&r);
    free(text);

    char path[512];
    tmp_path(path, sizeof(path), "big.yaml");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)big) == 0);
    close(fd);
    config_report_init(&r);
    CHECK_EQ_INT(config_load_file(path, &c, &r), SHOAL_ERR_TOO_BIG);
    CHECK_EQ_INT(r.n, 1);
    config_report_fini(&r);

    /* A directory and a missing file. */
    config_report_init(&r);
    CHECK_EQ_INT(config_load_file(tmpdir, &c, &r), SHOAL_ERR_INVALID);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "not a regular file"));
    config_report_fini(&r);
    tmp_path(path, sizeof(path), "missing.yaml");
    config_report_init(&r);
    CHECK_EQ_INT(config_load_file(path, &c, &r), SHOAL_ERR_NOT_FOUND);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "No such file"));
    CHECK_STR(r.items[0].file, path);
    config_report_fini(&r);

    /* 150 unknown keys: 100 kept in file order, 50 counted. */
    struct shoal_buf b;
    bool ok = true;
    shoal_buf_init(&b, 1 << 20);
    for (int i = 0; i < 150; i++)
        ok &= shoal_buf_printf(&b, "k%d: 1\n", i) == SHOAL_OK;
    config_report_init(&r);
    CHECK_EQ_INT(config_load_string("many", b.data, b.len, &c, &r), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(r.n, CONFIG_REPORT_MAX);
    CHECK_EQ_INT(r.dropped, 50);
    CHECK(r.n == CONFIG_REPORT_MAX && r.items[0].line == 1 && r.items[99].line == 100);
    config_report_fini(&r);
    /* Without a report the load still fails. */
    CHECK_EQ_INT(config_load_string("many", b.data, b.len, &c, NULL), SHOAL_ERR_INVALID);

    /* 70 nested lists: refused at the 65th. */
    shoal_buf_reset(&b);
    for (int i = 0; i < 70; i++)
        ok &= shoal_buf_puts(&b, "[") == SHOAL_OK;
    for (int i = 0; i < 70; i++)
        ok &= shoal_buf_puts(&b, "]") == SHOAL_OK;
    config_report_init(&r);
    CHECK_EQ_INT(config_load_string("deep", b.data, b.len, &c, &r), SHOAL_ERR_INVALID);
    CHECK(r.n == 1 && r.items[0].line == 1 && r.items[0].col == 65);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "nesting is deeper than 64 levels"));
    config_report_fini(&r);

    /* An alias may not make the expanded depth pass the cap either. */
    shoal_buf_reset(&b);
    ok &= shoal_buf_puts(&b, "a: &a ") == SHOAL_OK;
    for (int i = 0; i < 40; i++)
        ok &= shoal_buf_puts(&b, "[") == SHOAL_OK;
    for (int i = 0; i < 40; i++)
        ok &= shoal_buf_puts(&b, "]") == SHOAL_OK;
    ok &=
        shoal_buf_puts(&b, "\nb: [[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]\n") == SHOAL_OK;
    config_report_init(&r);
    CHECK_EQ_INT(config_load_string("deep", b.data, b.len, &c, &r), SHOAL_ERR_INVALID);
    CHECK(r.n == 1 && r.items[0].line == 2 && r.items[0].col == 28);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "alias *a nests deeper than 64 levels"));
    config_report_fini(&r);

    /* More real nodes than the cap, no aliases: a flow list of 100001 items. */
    shoal_buf_reset(&b);
    ok &= shoal_buf_puts(&b, "[") == SHOAL_OK;
    for (int i = 0; i < 100001; i++)
        ok &= shoal_buf_puts(&b, "1,") == SHOAL_OK;
    ok &= shoal_buf_puts(&b, "]") == SHOAL_OK;
    config_report_init(&r);
    CHECK_EQ_INT(config_load_string("wide", b.data, b.len, &c, &r), SHOAL_ERR_INVALID);
    /* Node 100001 is the 100000th item: "[" plus 99999 "1," before it. */
    CHECK(r.n == 1 && r.items[0].col == 2 + 2 * 99999);
    CHECK(r.n == 1 && strstr(r.items[0].msg, "more than 100000 nodes"));
    config_report_fini(&r);
    shoal_buf_fini(&b);
    CHECK(ok);
    CHECK(c == NULL);
}

static void test_report_print(void)
{
    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    const char *y = "lisen: 1\nlimits: {header_count: 0}\n";
    CHECK_EQ_INT(config_load_string("x.yaml", y, strlen(y), &c, &r), SHOAL_ERR_INVALID);
    int p[2];
    CHECK(pipe(p) == 0);
    config_report_print(&r, p[1]);
    close(p[1]);
    char out[2048] = "";
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    CHECK_STR(out, "x.yaml:1:1: lisen: unknown key 'lisen'; did you mean 'listen'?\n"
                   "x.yaml:2:24: limits.header_count: out of range: must be between 1 and 1000 "
                   "(got '0')\n");
    config_report_fini(&r);
}

static void test_defaults_and_socket(void)
{
    char sock[108], want[256];
    const char *old = getenv("XDG_RUNTIME_DIR");
    char saved[512] = "";
    if (old)
        snprintf(saved, sizeof(saved), "%s", old);

    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    CHECK_EQ_INT(config_default_socket(sock, sizeof(sock)), SHOAL_OK);
    CHECK_STR(sock, "/run/user/4242/shoal/shoal.sock");
    CHECK_EQ_INT(config_default_socket(sock, 10), SHOAL_ERR_TOO_BIG);

    setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
    CHECK_EQ_INT(config_default_socket(sock, sizeof(sock)), SHOAL_OK);
    if (geteuid() == 0)
        snprintf(want, sizeof(want), "/run/shoal/shoal.sock");
    else
        snprintf(want, sizeof(want), "/tmp/shoal-%u/shoal.sock", (unsigned)geteuid());
    CHECK_STR(sock, want);
    unsetenv("XDG_RUNTIME_DIR");
    CHECK_EQ_INT(config_default_socket(sock, sizeof(sock)), SHOAL_OK);
    CHECK_STR(sock, want);

    /* The trace database follows XDG_STATE_HOME, then HOME. */
    char tp[256], twant[300];
    const char *oldstate = getenv("XDG_STATE_HOME"), *oldhome = getenv("HOME");
    char savedstate[512] = "", savedhome[512] = "";
    if (oldstate)
        snprintf(savedstate, sizeof(savedstate), "%s", oldstate);
    if (oldhome)
        snprintf(savedhome, sizeof(savedhome), "%s", oldhome);
    setenv("XDG_STATE_HOME", "/srv/state", 1);
    CHECK_EQ_INT(config_default_traces_path(tp, sizeof(tp)), SHOAL_OK);
    CHECK_STR(tp, "/srv/state/shoal/traces.db");
    CHECK_EQ_INT(config_default_traces_path(tp, 8), SHOAL_ERR_TOO_BIG);
    setenv("XDG_STATE_HOME", "rel", 1);
    setenv("HOME", "/home/someone", 1);
    CHECK_EQ_INT(config_default_traces_path(tp, sizeof(tp)), SHOAL_OK);
    if (geteuid() == 0)
        snprintf(twant, sizeof(twant), "/var/lib/shoal/traces.db");
    else
        snprintf(twant, sizeof(twant), "/home/someone/.local/state/shoal/traces.db");
    CHECK_STR(tp, twant);
    if (oldhome)
        setenv("HOME", savedhome, 1);
    else
        unsetenv("HOME");
    unsetenv("XDG_STATE_HOME");
    CHECK_EQ_INT(config_default_traces_path(twant, sizeof(twant)), SHOAL_OK);

    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    CHECK_EQ_INT(config_defaults(&c, &r), SHOAL_OK);
    if (c) {
        CHECK_STR(c->source, "(built-in defaults)");
        CHECK(c->traces.enabled);
        CHECK_STR(c->traces.path, twant);
        CHECK_EQ_INT(c->traces.retention_ms, 30ull * 86400 * 1000);
        CHECK_EQ_INT(c->traces.max_bytes, 0);
        CHECK(!c->traces.redact && !c->traces.sync_full);
        CHECK_STR(c->listen.socket, want);
        CHECK(!c->listen.tcp);
        CHECK(c->auth_token == NULL);
        check_default_limits(&c->limits);
        CHECK_EQ_INT(c->log_level, SHOAL_LOG_INFO);
        struct shoal_buf b;
        shoal_buf_init(&b, 1 << 16);
        CHECK_EQ_INT(config_print(c, &b), SHOAL_OK);
        CHECK_CONTAINS(shoal_buf_cstr(&b), "  header_bytes: 16KiB\n");
        CHECK_CONTAINS(shoal_buf_cstr(&b), "  body_bytes: 8MiB\n");
        CHECK_CONTAINS(shoal_buf_cstr(&b), "  header_timeout: 10s\n");
        CHECK_CONTAINS(shoal_buf_cstr(&b), "  tcp: ~\n");
        CHECK_CONTAINS(shoal_buf_cstr(&b), "  token: ~\n");
        shoal_buf_fini(&b);
        check_round_trip(c);
    }
    config_free(c);
    c = NULL;

    /* A runtime dir so long that the default socket cannot fit sun_path. */
    char longdir[200];
    memset(longdir, 'r', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    setenv("XDG_RUNTIME_DIR", longdir, 1);
    CHECK_EQ_INT(config_defaults(&c, &r), SHOAL_ERR_INVALID);
    CHECK(c == NULL);
    CHECK(r.n == 1 && !strcmp(r.items[0].path, "listen.socket") && r.items[0].line == 0);
    config_report_fini(&r);

    if (saved[0])
        setenv("XDG_RUNTIME_DIR", saved, 1);
    else
        unsetenv("XDG_RUNTIME_DIR");
    if (savedstate[0])
        setenv("XDG_STATE_HOME", savedstate, 1);
    config_free(NULL);
}

static void test_find(void)
{
    char dir[300], home[320], xdg[320], a[320], out[512], want[512];
    struct shoal_diag d;
    bool found;
    struct stat st;
    bool etc = stat("/etc/shoal/shoal.yaml", &st) == 0;

    tmp_path(dir, sizeof(dir), "find");
    CHECK(mkdir(dir, 0700) == 0);
    snprintf(home, sizeof(home), "%s/home", dir);
    snprintf(xdg, sizeof(xdg), "%s/xdg", dir);
    CHECK(mkdir(home, 0700) == 0);
    CHECK(mkdir(xdg, 0700) == 0);
    snprintf(a, sizeof(a), "%s/a.yaml", dir);
    write_file(a, "log: {level: info}\n", 0600);
    setenv("HOME", home, 1);
    unsetenv("SHOAL_CONFIG");
    unsetenv("XDG_CONFIG_HOME");

    /* Explicit path: used when it exists, NOT_FOUND when it does not. */
    CHECK_EQ_INT(config_find(a, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK(found);
    CHECK_STR(out, a);
    snprintf(want, sizeof(want), "%s/nope.yaml", dir);
    CHECK_EQ_INT(config_find(want, out, sizeof(out), &found, &d), SHOAL_ERR_NOT_FOUND);
    CHECK(!found);
    CHECK_STR(d.file, want);
    CHECK_CONTAINS(d.msg, "config file (from --config) does not exist");
    CHECK_EQ_INT(config_find(a, out, 5, &found, &d), SHOAL_ERR_TOO_BIG);

    /* $SHOAL_CONFIG: after --config, before the search path; "" is unset. */
    setenv("SHOAL_CONFIG", want, 1);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_ERR_NOT_FOUND);
    CHECK_CONTAINS(d.msg, "$SHOAL_CONFIG");
    CHECK_EQ_INT(config_find(a, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK_STR(out, a);
    setenv("SHOAL_CONFIG", a, 1);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK(found);
    CHECK_STR(out, a);
    setenv("SHOAL_CONFIG", "", 1);

    /* Nothing anywhere (unless this machine has /etc/shoal/shoal.yaml). */
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK_EQ_INT(found, etc);
    CHECK_STR(out, etc ? "/etc/shoal/shoal.yaml" : "");

    /* ~/.config/shoal/shoal.yaml when XDG_CONFIG_HOME is unset or relative. */
    snprintf(want, sizeof(want), "%s/.config", home);
    CHECK(mkdir(want, 0700) == 0);
    snprintf(want, sizeof(want), "%s/.config/shoal", home);
    CHECK(mkdir(want, 0700) == 0);
    snprintf(want, sizeof(want), "%s/.config/shoal/shoal.yaml", home);
    write_file(want, "", 0600);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK(found);
    CHECK_STR(out, want);
    setenv("XDG_CONFIG_HOME", "relative", 1);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK_STR(out, want);

    /* $XDG_CONFIG_HOME replaces ~/.config, even when its file is missing. */
    setenv("XDG_CONFIG_HOME", xdg, 1);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK_EQ_INT(found, etc);
    snprintf(want, sizeof(want), "%s/shoal", xdg);
    CHECK(mkdir(want, 0700) == 0);
    snprintf(want, sizeof(want), "%s/shoal/shoal.yaml", xdg);
    write_file(want, "", 0600);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK(found);
    CHECK_STR(out, want);
    /* And $SHOAL_CONFIG still wins over it. */
    setenv("SHOAL_CONFIG", a, 1);
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    CHECK_STR(out, a);

    /* A found empty file loads to the defaults. */
    unsetenv("SHOAL_CONFIG");
    CHECK_EQ_INT(config_find(NULL, out, sizeof(out), &found, &d), SHOAL_OK);
    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    CHECK_EQ_INT(config_load_file(out, &c, &r), SHOAL_OK);
    if (c) {
        CHECK_STR(c->source, want);
        check_default_limits(&c->limits);
    }
    config_free(c);
    config_report_fini(&r);
    unsetenv("XDG_CONFIG_HOME");
}

/* The CLI's load: secret shapes are checked, values are not read. */
static void test_client_load(void)
{
    char path[512], text[1024];
    tmp_path(path, sizeof(path), "client.yaml");
    snprintf(text, sizeof(text),
             "listen:\n  socket: %s/c.sock\n  tcp: 127.0.0.1:7000\n"
             "auth:\n  token: { env: SHOAL_TEST_UNSET_TOKEN }\n",
             tmpdir);
    write_file(path, text, 0600);
    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    /* The daemon's load needs the variable... */
    CHECK_EQ_INT(config_load_file(path, &c, &r), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(r.n, 1);
    if (r.n == 1)
        CHECK_CONTAINS(r.items[0].msg, "SHOAL_TEST_UNSET_TOKEN is not set");
    config_report_fini(&r);
    /* ...the client's does not, and still finds the socket. */
    config_report_init(&r);
    CHECK_EQ_INT(config_load_file_client(path, &c, &r), SHOAL_OK);
    CHECK_EQ_INT(r.n, 0);
    if (c) {
        char want[512];
        snprintf(want, sizeof(want), "%s/c.sock", tmpdir);
        CHECK_STR(c->listen.socket, want);
        CHECK(c->auth_token == NULL);
        /* The snapshot records the absolute path of its file. */
        CHECK(c->source[0] == '/');
        config_free(c);
    }
    config_report_fini(&r);
    /* A literal secret is still an error for the client. */
    snprintf(text, sizeof(text), "listen:\n  socket: %s/c.sock\nauth:\n  token: abc\n", tmpdir);
    write_file(path, text, 0600);
    config_report_init(&r);
    c = NULL;
    CHECK_EQ_INT(config_load_file_client(path, &c, &r), SHOAL_ERR_INVALID);
    CHECK(c == NULL);
    config_report_fini(&r);
}

static void setup(void)
{
    char p[512];
    shoal_strlcpy(tmpdir, "/tmp/shoal-test-config-XXXXXX", sizeof(tmpdir));
    CHECK(mkdtemp(tmpdir) != NULL);
    setenv("SHOAL_TEST_DIR", tmpdir, 1);
    setenv("SHOAL_TEST_TOKEN", "tok-123", 1);
    setenv("SHOAL_TEST_EMPTY_TOKEN", "", 1);
    setenv("SHOAL_TEST_REL", "run", 1);
    setenv("SHOAL_TEST_NAME", "shoal$x", 1);
    unsetenv("SHOAL_TEST_UNSET_TOKEN");
    unsetenv("SHOAL_TEST_UNSET_DIR");
    tmp_path(p, sizeof(p), "home");
    CHECK(mkdir(p, 0700) == 0);
    setenv("HOME", p, 1);
    tmp_path(p, sizeof(p), "token_private");
    write_file(p, "s3cret\r\n", 0600);
    tmp_path(p, sizeof(p), "token_public");
    write_file(p, "s3cret\n", 0644);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    /* Depth first, not following symlinks: only our mkdtemp directory. */
    if (tmpdir[0])
        CHECK(nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
}

int main(void)
{
    setup();
    test_good();
    test_bad();
    test_inline();
    test_caps();
    test_report_print();
    test_defaults_and_socket();
    test_find();
    test_client_load();
    teardown();
    return test_report("test_config");
}
