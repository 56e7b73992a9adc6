/* test_common.c: unit tests for common/: buffers and their caps, integer
 * parsing, edit distance, diagnostics formatting, log line shape and
 * quoting, secrets, and the JSON getters' error paths. */
#include "common.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static void test_buf(void)
{
    struct shoal_buf b;
    shoal_buf_init(&b, 10);
    CHECK_STR(shoal_buf_cstr(&b), "");
    CHECK_EQ_INT(shoal_buf_puts(&b, "hello"), SHOAL_OK);
    CHECK_EQ_INT(shoal_buf_printf(&b, "%d", 12345), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&b), "hello12345");
    CHECK_EQ_INT(b.len, 10);
    /* At the cap: one more byte fails and leaves the contents alone. */
    CHECK_EQ_INT(shoal_buf_puts(&b, "x"), SHOAL_ERR_TOO_BIG);
    CHECK_EQ_INT(shoal_buf_printf(&b, "%s", "y"), SHOAL_ERR_TOO_BIG);
    CHECK_STR(shoal_buf_cstr(&b), "hello12345");
    shoal_buf_consume(&b, 5);
    CHECK_STR(shoal_buf_cstr(&b), "12345");
    shoal_buf_consume(&b, 99);
    CHECK_EQ_INT(b.len, 0);
    CHECK_STR(shoal_buf_cstr(&b), "");
    /* Overflowing sizes are refused, not wrapped. */
    CHECK_EQ_INT(shoal_buf_reserve(&b, SIZE_MAX), SHOAL_ERR_TOO_BIG);
    shoal_buf_fini(&b);

    /* Growth across many appends keeps every byte. */
    shoal_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++)
        CHECK_EQ_INT(shoal_buf_append(&b, "ab", 2), SHOAL_OK);
    CHECK_EQ_INT(b.len, 20000);
    int ok = 1;
    for (size_t i = 0; i < b.len; i++)
        ok &= b.data[i] == (i % 2 ? 'b' : 'a');
    CHECK(ok);
    CHECK_EQ_INT(b.data[b.len], '\0');
    shoal_buf_fini(&b);
}

static void test_parse_i64(void)
{
    int64_t v = 0;
    CHECK_EQ_INT(shoal_parse_i64("42", 2, 0, 100, &v), SHOAL_OK);
    CHECK_EQ_INT(v, 42);
    CHECK_EQ_INT(shoal_parse_i64("-7", 2, -10, 10, &v), SHOAL_OK);
    CHECK_EQ_INT(v, -7);
    CHECK_EQ_INT(shoal_parse_i64("9223372036854775807", 19, INT64_MIN, INT64_MAX, &v), SHOAL_OK);
    CHECK_EQ_INT(v, INT64_MAX);
    CHECK_EQ_INT(shoal_parse_i64("-9223372036854775808", 20, INT64_MIN, INT64_MAX, &v), SHOAL_OK);
    CHECK(v == INT64_MIN);
    CHECK_EQ_INT(shoal_parse_i64("9223372036854775808", 19, INT64_MIN, INT64_MAX, &v),
                 SHOAL_ERR_TOO_BIG);
    CHECK_EQ_INT(shoal_parse_i64("101", 3, 0, 100, &v), SHOAL_ERR_TOO_BIG);
    CHECK_EQ_INT(shoal_parse_i64("", 0, 0, 100, &v), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_i64("-", 1, -5, 100, &v), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_i64("1x", 2, 0, 100, &v), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_i64(" 1", 2, 0, 100, &v), SHOAL_ERR_INVALID);
    /* n bounds the input: "12" of "123" */
    CHECK_EQ_INT(shoal_parse_i64("123", 2, 0, 100, &v), SHOAL_OK);
    CHECK_EQ_INT(v, 12);
}

static void test_seconds_and_hex(void)
{
    uint32_t ms = 0;
    CHECK_EQ_INT(shoal_parse_seconds_ms("10", 1, 60000, &ms), SHOAL_OK);
    CHECK_EQ_INT(ms, 10000);
    CHECK_EQ_INT(shoal_parse_seconds_ms("0.5", 1, 60000, &ms), SHOAL_OK);
    CHECK_EQ_INT(ms, 500);
    CHECK_EQ_INT(shoal_parse_seconds_ms("2.25", 1, 60000, &ms), SHOAL_OK);
    CHECK_EQ_INT(ms, 2250);
    CHECK_EQ_INT(shoal_parse_seconds_ms(".125", 1, 60000, &ms), SHOAL_OK);
    CHECK_EQ_INT(ms, 125);
    CHECK_EQ_INT(shoal_parse_seconds_ms("0", 0, 60000, &ms), SHOAL_OK);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(shoal_parse_seconds_ms("0", 1, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("61", 1, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("1.0001", 1, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("-1", 0, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("1.-5", 0, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("", 0, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("1.", 0, 60000, &ms), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_parse_seconds_ms("1e3", 0, 60000, &ms), SHOAL_ERR_INVALID);

    const char *digits = "0123456789abcdefABCDEF";
    for (int i = 0; digits[i]; i++)
        CHECK_EQ_INT(shoal_hex_digit(digits[i]), i < 16 ? i : i - 6);
    CHECK_EQ_INT(shoal_hex_digit('g'), -1);
    CHECK_EQ_INT(shoal_hex_digit('/'), -1);
    CHECK_EQ_INT(shoal_hex_digit(':'), -1);
    CHECK_EQ_INT(shoal_hex_digit('\0'), -1);
}

static void test_utf8(void)
{
    char out[4];
    CHECK_EQ_INT(shoal_utf8_encode('A', out), 1);
    CHECK(out[0] == 'A');
    CHECK_EQ_INT(shoal_utf8_encode(0xE9, out), 2); /* é */
    CHECK(memcmp(out, "\xC3\xA9", 2) == 0);
    CHECK_EQ_INT(shoal_utf8_encode(0x20AC, out), 3); /* € */
    CHECK(memcmp(out, "\xE2\x82\xAC", 3) == 0);
    CHECK_EQ_INT(shoal_utf8_encode(0x1F600, out), 4); /* 😀 */
    CHECK(memcmp(out, "\xF0\x9F\x98\x80", 4) == 0);

    const char *s = "a\xE2\x82\xAC" "b"; /* a € b: 5 bytes */
    /* Well-formed sequences by RFC 3629's table; overlongs, surrogates,
     * past U+10FFFF, stray continuations and cut sequences are not. */
    CHECK_EQ_INT(shoal_utf8_len("a", 1), 1);
    CHECK_EQ_INT(shoal_utf8_len("\xC3\xA9", 2), 2);
    CHECK_EQ_INT(shoal_utf8_len("\xE2\x82\xAC", 3), 3);
    CHECK_EQ_INT(shoal_utf8_len("\xF0\x9F\x98\x80", 4), 4);
    CHECK_EQ_INT(shoal_utf8_len("\xF4\x8F\xBF\xBF", 4), 4);
    CHECK_EQ_INT(shoal_utf8_len("\xC0\x80", 2), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xC1\xBF", 2), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xE0\x80\x80", 3), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xED\xA0\x80", 3), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xF0\x80\x80\x80", 4), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xF4\x90\x80\x80", 4), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xF5\x80\x80\x80", 4), 0);
    CHECK_EQ_INT(shoal_utf8_len("\x80", 1), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xE2\x82", 2), 0);
    CHECK_EQ_INT(shoal_utf8_len("\xE2\x28\xA1", 3), 0);
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 10), 5);
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 5), 5);
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 4), 4); /* a€ */
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 3), 1); /* inside €: back to a */
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 2), 1);
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 1), 1);
    CHECK_EQ_INT(shoal_utf8_cut(s, 5, 0), 0);
}

static void test_strings(void)
{
    char small[4];
    CHECK(!shoal_strlcpy(small, "hello", sizeof(small)));
    CHECK_STR(small, "hel");
    CHECK(shoal_strlcpy(small, "hi", sizeof(small)));
    CHECK_STR(small, "hi");

    CHECK_EQ_INT(shoal_edit_distance("socket", "socket", 3), 0);
    CHECK_EQ_INT(shoal_edit_distance("sockte", "socket", 3), 2);
    CHECK_EQ_INT(shoal_edit_distance("limit", "limits", 3), 1);
    CHECK_EQ_INT(shoal_edit_distance("", "abc", 5), 3);
    CHECK_EQ_INT(shoal_edit_distance("kitten", "sitting", 5), 3);
    /* Capped: anything past the cap reports cap + 1. */
    CHECK_EQ_INT(shoal_edit_distance("abcdefgh", "zzzzzzzz", 2), 3);
}

static void test_diag(void)
{
    struct shoal_diag d;
    char out[1024];
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_diag_set(&d, SHOAL_ERR_INVALID, "expected %s", "integer"),
                 SHOAL_ERR_INVALID);
    shoal_diag_at(&d, "shoal.yaml", 3, 7);
    shoal_diag_path(&d, "limits.body_bytes");
    shoal_diag_format(&d, out, sizeof(out));
    CHECK_STR(out, "shoal.yaml:3:7: limits.body_bytes: expected integer");

    shoal_diag_clear(&d);
    shoal_diag_set(&d, SHOAL_ERR_INVALID, "bad magic");
    shoal_diag_at_offset(&d, "m.gguf", 4);
    shoal_diag_format(&d, out, sizeof(out));
    CHECK_STR(out, "m.gguf: byte 4: bad magic");

    shoal_diag_clear(&d);
    shoal_diag_set(&d, SHOAL_ERR_IO, "plain");
    shoal_diag_format(&d, out, sizeof(out));
    CHECK_STR(out, "plain");
    /* Truncation still terminates. */
    char tiny[6];
    size_t want = shoal_diag_format(&d, tiny, sizeof(tiny));
    CHECK_EQ_INT(want, 5);
    CHECK_STR(tiny, "plain");
    CHECK(shoal_diag_set(NULL, SHOAL_ERR_NOMEM, "x") == SHOAL_ERR_NOMEM);
    CHECK_STR(shoal_err_name(SHOAL_ERR_TOO_BIG), "too_big");
}

/* Capture log lines through a pipe. */
static size_t capture_log(char *out, size_t n, void (*emit)(void))
{
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    shoal_log_set_fd(fds[1]);
    emit();
    shoal_log_set_fd(2);
    close(fds[1]);
    ssize_t r = read(fds[0], out, n - 1);
    close(fds[0]);
    out[r > 0 ? r : 0] = '\0';
    return r > 0 ? (size_t)r : 0;
}

static void emit_quoted(void)
{
    struct shoal_logline l;
    if (shoal_log_begin(&l, SHOAL_LOG_WARN, "test_event")) {
        shoal_log_kv(&l, "plain", "%s", "abc");
        shoal_log_kv(&l, "spaced", "%s", "a b \"c\"\n");
        shoal_log_kv(&l, "empty", "%s", "");
        shoal_log_end(&l);
    }
}

static void emit_filtered(void)
{
    shoal_log(SHOAL_LOG_DEBUG, "hidden", "should not appear");
    shoal_log(SHOAL_LOG_ERROR, "shown", "x=%d", 1);
}

static void emit_long(void)
{
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    shoal_log(SHOAL_LOG_ERROR, "long", "%s", big);
}

static void test_log(void)
{
    char out[8192];
    enum shoal_log_level lvl;
    CHECK_EQ_INT(shoal_log_level_parse("WARNING", &lvl), SHOAL_OK);
    CHECK_EQ_INT(lvl, SHOAL_LOG_WARN);
    CHECK_EQ_INT(shoal_log_level_parse("verbose", &lvl), SHOAL_ERR_INVALID);

    shoal_log_set_level(SHOAL_LOG_INFO);
    capture_log(out, sizeof(out), emit_quoted);
    CHECK(strncmp(out, "ts=", 3) == 0);
    CHECK_CONTAINS(out, " level=warn event=test_event plain=abc ");
    CHECK_CONTAINS(out, " spaced=\"a b \\\"c\\\"\\n\" empty=\"\"\n");
    CHECK_EQ_INT(strchr(out, '\n') - out + 1, (long long)strlen(out)); /* one line */

    capture_log(out, sizeof(out), emit_filtered);
    CHECK(strstr(out, "hidden") == NULL);
    /* '=' inside a value forces quotes so the line stays parseable. */
    CHECK(strstr(out, "msg=\"x=1\"") != NULL);

    size_t n = capture_log(out, sizeof(out), emit_long);
    CHECK(n <= SHOAL_CAP_LOG_LINE);
    CHECK_CONTAINS(out, " truncated=1\n");

    setenv("SHOAL_LOG", "error", 1);
    CHECK_EQ_INT(shoal_log_level_from_env(), SHOAL_OK);
    CHECK_EQ_INT(shoal_log_get_level(), SHOAL_LOG_ERROR);
    setenv("SHOAL_LOG", "loud", 1);
    CHECK_EQ_INT(shoal_log_level_from_env(), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(shoal_log_get_level(), SHOAL_LOG_ERROR);
    unsetenv("SHOAL_LOG");
    shoal_log_set_level(SHOAL_LOG_INFO);
}

static void test_secret(void)
{
    struct shoal_secret *s = NULL;
    CHECK_EQ_INT(shoal_secret_new("sk-abc", 6, "env:KEY", &s), SHOAL_OK);
    size_t len = 0;
    CHECK_STR(shoal_secret_reveal(s, &len), "sk-abc");
    CHECK_EQ_INT(len, 6);
    CHECK_STR(shoal_secret_source(s), "env:KEY");
    CHECK(shoal_secret_equals(s, "sk-abc", 6));
    CHECK(!shoal_secret_equals(s, "sk-abd", 6));
    CHECK(!shoal_secret_equals(s, "sk-ab", 5));
    CHECK(!shoal_secret_equals(s, "sk-abcd", 7));
    CHECK(!shoal_secret_equals(s, "", 0));
    shoal_secret_free(s);
    shoal_secret_free(NULL);
}

static void render_is(const char *in, const char *want)
{
    cJSON *j = cJSON_Parse(in);
    CHECK(j != NULL);
    struct shoal_buf b;
    shoal_buf_init(&b, 1 << 16);
    CHECK_EQ_INT(shoal_json_render(j, &b), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&b), want);
    /* Whatever we print, cJSON reads back as an equal tree. */
    cJSON *again = cJSON_Parse(shoal_buf_cstr(&b));
    CHECK(again && cJSON_Compare(j, again, true));
    cJSON_Delete(again);
    cJSON_Delete(j);
    shoal_buf_fini(&b);
}

static void test_json_render(void)
{
    /* cJSON itself prints 1763790568123450 as 1.76379056812345e+15. */
    render_is("[1763790568123450,1763790568123456,-9007199254740992,0,-0]",
              "[1763790568123450,1763790568123456,-9007199254740992,0,0]");
    render_is("[0.1,1e300,-2.5,0.30000000000000004,9007199254740994]",
              "[0.1,1e+300,-2.5,0.30000000000000004,9007199254740994]");
    render_is("{\"a\":\"q\\\"b\\\\c\\n\\u0001\\u001f \\u00e9\",\"n\":null,\"t\":[true,false,{}],\"e\":[]}",
              "{\"a\":\"q\\\"b\\\\c\\n\\u0001\\u001f \xc3\xa9\",\"n\":null,\"t\":[true,false,{}],"
              "\"e\":[]}");
    cJSON *j = cJSON_Parse("{\"a\":[1,{\"b\":2}],\"c\":{}}");
    struct shoal_buf b;
    shoal_buf_init(&b, 1 << 10);
    CHECK_EQ_INT(shoal_json_render_pretty(j, &b), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&b), "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ],\n"
                                  "  \"c\": {}\n}");
    shoal_buf_fini(&b);
    /* The cap holds. */
    shoal_buf_init(&b, 8);
    CHECK_EQ_INT(shoal_json_render(j, &b), SHOAL_ERR_TOO_BIG);
    shoal_buf_fini(&b);
    cJSON_Delete(j);
    j = cJSON_CreateNumber(NAN);
    shoal_buf_init(&b, 64);
    CHECK_EQ_INT(shoal_json_render(j, &b), SHOAL_OK);
    CHECK_STR(shoal_buf_cstr(&b), "null");
    shoal_buf_fini(&b);
    cJSON_Delete(j);
}

static void test_json(void)
{
    test_json_render();
    struct shoal_diag d;
    cJSON *root = NULL;
    const char *text = "{\"name\":\"x\",\"n\":5,\"f\":1.5,\"b\":true,\"big\":1e300}";
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_parse(text, strlen(text), &root, &d), SHOAL_OK);

    const char *s = NULL;
    int64_t n = 0;
    double f = 0;
    bool b = false;
    CHECK_EQ_INT(shoal_json_get_str(root, "$", "name", true, &s, &d), SHOAL_OK);
    CHECK_STR(s, "x");
    CHECK_EQ_INT(shoal_json_get_int(root, "$", "n", true, 0, 10, &n, &d), SHOAL_OK);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(shoal_json_get_num(root, "$", "f", true, &f, &d), SHOAL_OK);
    CHECK(f == 1.5);
    CHECK_EQ_INT(shoal_json_get_bool(root, "$", "b", true, &b, &d), SHOAL_OK);
    CHECK(b);

    char out[512];
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_get_int(root, "$", "f", true, 0, 10, &n, &d), SHOAL_ERR_INVALID);
    shoal_diag_format(&d, out, sizeof(out));
    CHECK_STR(out, "$.f: expected integer");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_get_int(root, "$", "n", true, 0, 3, &n, &d), SHOAL_ERR_INVALID);
    shoal_diag_format(&d, out, sizeof(out));
    CHECK_STR(out, "$.n: 5 is out of range [0, 3]");
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_get_int(root, "$", "big", true, 0, 3, &n, &d), SHOAL_ERR_INVALID);
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_get_str(root, "$.req", "missing", true, &s, &d), SHOAL_ERR_INVALID);
    shoal_diag_format(&d, out, sizeof(out));
    CHECK_STR(out, "$.req.missing: required member is missing");
    CHECK_EQ_INT(shoal_json_get_str(root, "$", "missing", false, &s, &d), SHOAL_ERR_NOT_FOUND);
    CHECK_EQ_INT(shoal_json_get_str(root, "$", "n", true, &s, &d), SHOAL_ERR_INVALID);

    struct shoal_buf buf;
    shoal_buf_init(&buf, 1024);
    CHECK_EQ_INT(shoal_json_render(root, &buf), SHOAL_OK);
    CHECK_CONTAINS(shoal_buf_cstr(&buf), "\"name\":\"x\"");
    shoal_buf_fini(&buf);
    cJSON_Delete(root);

    /* Syntax errors carry a byte offset; trailing junk is an error. */
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_parse("{\"a\":1,}", 8, &root, &d), SHOAL_ERR_INVALID);
    CHECK(d.offset >= 6 && d.offset <= 8);
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_parse("{} x", 4, &root, &d), SHOAL_ERR_INVALID);
    CHECK_EQ_INT(d.offset, 3);
    CHECK_EQ_INT(shoal_json_parse("", 0, &root, &d), SHOAL_ERR_INVALID);
    /* Length-bounded: the bytes after n are not read. */
    CHECK_EQ_INT(shoal_json_parse("[1]garbage", 3, &root, &d), SHOAL_OK);
    cJSON_Delete(root);
}

static void test_since(void)
{
    const int64_t now = 1800000000LL * 1000000; /* 2027-01-15T08:00:00Z */
    int64_t v = -1;
    CHECK_EQ_INT(shoal_parse_since("90s", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, now - 90LL * 1000000);
    CHECK_EQ_INT(shoal_parse_since("1h", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, now - 3600LL * 1000000);
    CHECK_EQ_INT(shoal_parse_since("7d", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, now - 7LL * 86400 * 1000000);
    CHECK_EQ_INT(shoal_parse_since("2w", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, now - 14LL * 86400 * 1000000);
    CHECK_EQ_INT(shoal_parse_since("100000w", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, 0); /* before the epoch: everything */
    CHECK_EQ_INT(shoal_parse_since("all", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, 0);
    /* 2026-11-20 is 20777 days after 1970-01-01 (independently: 56 years
     * of which 14 leap (1972..2024) = 20454 days, plus Jan..Oct 2026 = 304,
     * plus 19 days). */
    CHECK_EQ_INT(shoal_parse_since("2026-11-20", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, 20777LL * 86400 * 1000000);
    CHECK_EQ_INT(shoal_parse_since("2026-11-20T10:30Z", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, (20777LL * 86400 + 10 * 3600 + 30 * 60) * 1000000);
    CHECK_EQ_INT(shoal_parse_since("2026-11-20T10:30:15Z", now, &v), SHOAL_OK);
    CHECK_EQ_INT(v, (20777LL * 86400 + 10 * 3600 + 30 * 60 + 15) * 1000000);
    static const char *const bad[] = {"",          "h",          "1",           "-1h",
                                      "+1h",       "1.5h",       "1y",          "1 h",
                                      "2026-02-30", "2026-13-01", "2026-11-20T10:30",
                                      "2026-11-20T25:00Z", "20261120", "1h ", "99999999999999999999s"};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(bad); i++) {
        v = 42;
        CHECK_EQ_INT(shoal_parse_since(bad[i], now, &v), SHOAL_ERR_INVALID);
        CHECK_EQ_INT(v, 42);
    }
}

int main(void)
{
    test_since();
    test_buf();
    test_parse_i64();
    test_strings();
    test_seconds_and_hex();
    test_utf8();
    test_diag();
    test_log();
    test_secret();
    test_json();
    return test_report("test_common");
}
