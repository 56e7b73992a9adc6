/* util.c: small string and time helpers that replace the calls STYLE.md
 * bans (strcpy, atoi): each one bounds its output and rejects bad input. */
#include "common.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool shoal_strlcpy(char *dst, const char *src, size_t n)
{
    if (n == 0)
        return src[0] == '\0';
    size_t len = strlen(src);
    size_t k = len < n - 1 ? len : n - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
    return k == len;
}

enum shoal_err shoal_parse_i64(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n == 0)
        return SHOAL_ERR_INVALID;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return SHOAL_ERR_INVALID;
    /* Accumulate negatively so INT64_MIN parses too. */
    int64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SHOAL_ERR_INVALID;
        int d = s[i] - '0';
        if (v < (INT64_MIN + d) / 10)
            return SHOAL_ERR_TOO_BIG;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == INT64_MIN)
            return SHOAL_ERR_TOO_BIG;
        v = -v;
    }
    if (v < min || v > max)
        return SHOAL_ERR_TOO_BIG;
    *out = v;
    return SHOAL_OK;
}

enum shoal_err shoal_parse_seconds_ms(const char *s, uint32_t min_ms, uint32_t max_ms,
                                      uint32_t *out)
{
    const char *dot = strchr(s, '.');
    size_t int_len = dot ? (size_t)(dot - s) : strlen(s);
    int64_t secs = 0, frac = 0;
    /* shoal_parse_i64 takes a sign; a duration does not. */
    if (s[0] == '+' || s[0] == '-' || (dot && (dot[1] == '+' || dot[1] == '-')))
        return SHOAL_ERR_INVALID;
    if (int_len == 0 && !dot)
        return SHOAL_ERR_INVALID;
    if (int_len > 0 && shoal_parse_i64(s, int_len, 0, max_ms / 1000u, &secs) != SHOAL_OK)
        return SHOAL_ERR_INVALID;
    if (dot) {
        size_t n = strlen(dot + 1);
        if (n == 0 || n > 3 || shoal_parse_i64(dot + 1, n, 0, 999, &frac) != SHOAL_OK)
            return SHOAL_ERR_INVALID;
        for (size_t k = n; k < 3; k++)
            frac *= 10;
    }
    uint64_t ms = (uint64_t)secs * 1000u + (uint64_t)frac;
    if (ms < min_ms || ms > max_ms)
        return SHOAL_ERR_INVALID;
    *out = (uint32_t)ms;
    return SHOAL_OK;
}

/* Two to four digits at s, exactly n of them. */
static bool digits(const char *s, size_t n, int64_t max, int *out)
{
    int64_t v;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    if (shoal_parse_i64(s, n, 0, max, &v) != SHOAL_OK)
        return false;
    *out = (int)v;
    return true;
}

enum shoal_err shoal_parse_since(const char *s, int64_t now_us, int64_t *out)
{
    if (!strcmp(s, "all")) {
        *out = 0;
        return SHOAL_OK;
    }
    size_t n = strlen(s);
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (n >= 10 && s[4] == '-' && s[7] == '-' && digits(s, 4, 9999, &y) &&
        digits(s + 5, 2, 12, &mo) && digits(s + 8, 2, 31, &d) && y >= 1970 && mo >= 1 && d >= 1) {
        if (n != 10) {
            bool with_sec = n == 20 && s[16] == ':';
            if (!(n == 17 || with_sec) || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' ||
                s[n - 1] != 'Z' || !digits(s + 11, 2, 23, &h) || !digits(s + 14, 2, 59, &mi) ||
                (with_sec && !digits(s + 17, 2, 60, &sec)))
                return SHOAL_ERR_INVALID;
        }
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                        .tm_hour = h, .tm_min = mi, .tm_sec = sec};
        time_t t = timegm(&tm);
        if (t == (time_t)-1 || tm.tm_mday != d) /* timegm normalises 02-31 to 03-03 */
            return SHOAL_ERR_INVALID;
        *out = (int64_t)t * 1000000;
        return SHOAL_OK;
    }
    static const struct {
        char suffix;
        int64_t us;
    } units[] = {{'s', 1000000}, {'m', 60000000}, {'h', 3600000000}, {'d', 86400000000},
                 {'w', 604800000000}};
    if (n < 2)
        return SHOAL_ERR_INVALID;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(units); i++) {
        if (s[n - 1] != units[i].suffix)
            continue;
        int64_t v;
        if (s[0] < '0' || s[0] > '9' ||
            shoal_parse_i64(s, n - 1, 0, INT64_MAX / units[i].us, &v) != SHOAL_OK)
            return SHOAL_ERR_INVALID;
        int64_t age = v * units[i].us;
        *out = age >= now_us ? 0 : now_us - age;
        return SHOAL_OK;
    }
    return SHOAL_ERR_INVALID;
}

size_t shoal_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t shoal_utf8_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

size_t shoal_utf8_cut(const char *s, size_t n, size_t cap)
{
    if (n <= cap)
        return n;
    size_t k = cap;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

int shoal_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

unsigned shoal_edit_distance(const char *a, const char *b, unsigned cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return cap + 1;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned prev = row[0], best = row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cur = row[j];
            unsigned sub = prev + (a[i - 1] != b[j - 1]);
            unsigned del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
            if (row[j] < best)
                best = row[j];
        }
        if (best > cap)
            return cap + 1;
    }
    return row[lb] > cap ? cap + 1 : row[lb];
}

uint64_t shoal_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
