/* log.c: structured logging, one key=value line per event, written with a
 * single write(2) so concurrent threads never interleave. The level is an
 * atomic so any thread may change it (SIGHUP reload) while others log. */
#include "common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = SHOAL_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void shoal_log_set_level(enum shoal_log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum shoal_log_level shoal_log_get_level(void)
{
    return (enum shoal_log_level)atomic_load(&log_level);
}

const char *shoal_log_level_name(enum shoal_log_level level)
{
    return (unsigned)level < SHOAL_ARRAY_LEN(level_names) ? level_names[level] : "unknown";
}

enum shoal_err shoal_log_level_parse(const char *s, enum shoal_log_level *out)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum shoal_log_level)i;
            return SHOAL_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = SHOAL_LOG_WARN;
        return SHOAL_OK;
    }
    return SHOAL_ERR_INVALID;
}

enum shoal_err shoal_log_level_from_env(void)
{
    const char *v = getenv("SHOAL_LOG");
    enum shoal_log_level lvl;
    if (!v || !*v)
        return SHOAL_OK;
    if (shoal_log_level_parse(v, &lvl) != SHOAL_OK)
        return SHOAL_ERR_INVALID;
    shoal_log_set_level(lvl);
    return SHOAL_OK;
}

void shoal_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

static void put(struct shoal_logline *l, const char *s, size_t n)
{
    /* Keep room for " truncated=1\n". */
    size_t room = sizeof(l->buf) - 16;
    if (l->len >= room || n > room - l->len) {
        if (l->len < room) {
            memcpy(l->buf + l->len, s, room - l->len);
            l->len = room;
        }
        l->truncated = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

static void put_value(struct shoal_logline *l, const char *s, size_t n)
{
    if (!needs_quotes(s, n)) {
        put(l, s, n);
        return;
    }
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c == '\t') {
            put(l, "\\t", 2);
        } else if (c < ' ' || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
            put(l, esc, 4);
        } else {
            put(l, (const char *)&s[i], 1);
        }
    }
    put(l, "\"", 1);
}

bool shoal_log_begin(struct shoal_logline *l, enum shoal_log_level level, const char *event)
{
    if ((int)level < atomic_load(&log_level) || level >= SHOAL_LOG_OFF)
        return false;
    l->len = 0;
    l->truncated = false;

    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char ts[48];
    int n = snprintf(ts, sizeof(ts), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(tv.tv_usec / 1000));
    put(l, ts, (size_t)n);
    put(l, level_names[level], strlen(level_names[level]));
    put(l, " event=", 7);
    put_value(l, event, strlen(event));
    return true;
}

void shoal_log_kv(struct shoal_logline *l, const char *key, const char *fmt, ...)
{
    char val[SHOAL_CAP_LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(val)) {
        n = (int)sizeof(val) - 1;
        l->truncated = true;
    }
    put(l, " ", 1);
    put(l, key, strlen(key));
    put(l, "=", 1);
    put_value(l, val, (size_t)n);
}

void shoal_log_end(struct shoal_logline *l)
{
    if (l->truncated) {
        memcpy(l->buf + l->len, " truncated=1", 12);
        l->len += 12;
    }
    l->buf[l->len++] = '\n';
    int fd = atomic_load(&log_fd);
    const char *p = l->buf;
    size_t left = l->len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere else to report a failing log */
        p += w;
        left -= (size_t)w;
    }
}

void shoal_log(enum shoal_log_level level, const char *event, const char *fmt, ...)
{
    struct shoal_logline l;
    if (!shoal_log_begin(&l, level, event))
        return;
    char msg[SHOAL_CAP_LOG_LINE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    shoal_log_kv(&l, "msg", "%s", msg);
    shoal_log_end(&l);
}

void shoal_log_diag(enum shoal_log_level level, const char *event, const struct shoal_diag *d)
{
    struct shoal_logline l;
    if (!shoal_log_begin(&l, level, event))
        return;
    if (d->file[0])
        shoal_log_kv(&l, "file", "%s", d->file);
    if (d->line) {
        shoal_log_kv(&l, "line", "%u", d->line);
        shoal_log_kv(&l, "col", "%u", d->col);
    }
    if (d->offset >= 0)
        shoal_log_kv(&l, "offset", "%lld", (long long)d->offset);
    if (d->path[0])
        shoal_log_kv(&l, "path", "%s", d->path);
    shoal_log_kv(&l, "err", "%s", shoal_err_name(d->err));
    shoal_log_kv(&l, "msg", "%s", d->msg);
    shoal_log_end(&l);
}
