/* fuzz_server.c: libFuzzer target for shoald's connection state machine
 * (daemon/server.c) with the real parser and routes behind it. The input is
 * written into one end of a socketpair served by server_adopt, in chunks
 * whose size the input chooses, with event-loop turns in between; then the
 * client half-closes. Whatever the bytes, the server must not crash or
 * leak, and everything it sends must be a sequence of well-formed HTTP/1.1
 * responses with a status we document. abort() on any violation. */
#include "config.h"
#include "fuzz.h"
#include "server.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Small limits so the fuzzer reaches them; timeouts long enough never to
 * fire during one input. */
static const char config_yaml[] = "listen:\n  socket: /nonexistent/fuzz.sock\n"
                                  "limits:\n  header_bytes: 1KiB\n  header_count: 8\n"
                                  "  body_bytes: 200\n  header_timeout: 1h\n  body_timeout: 1h\n"
                                  "  keepalive_timeout: 1h\n  max_connections: 4\n"
                                  "log:\n  level: off\n";

static struct event_base *base;
static struct config *cfg;
static struct api_info info;

static void setup(void)
{
    if (base)
        return;
    shoal_log_set_level(SHOAL_LOG_OFF);
    base = event_base_new();
    ASSERT(base);
    ASSERT(config_load_string("fuzz.yaml", config_yaml, sizeof(config_yaml) - 1, &cfg, NULL) ==
           SHOAL_OK);
    info.cfg = cfg;
    info.started_ms = shoal_now_ms();
}

static void turn(int times)
{
    for (int i = 0; i < times; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

static void drain(int fd, struct shoal_buf *got)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);
        if (n <= 0)
            return;
        ASSERT(shoal_buf_append(got, tmp, (size_t)n) == SHOAL_OK);
    }
}

static bool known_status(int s)
{
    static const int ok[] = {100, 200, 400, 401, 404, 405, 408, 413, 417, 431, 500, 501, 503, 505};
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(ok); i++)
        if (ok[i] == s)
            return true;
    return false;
}

/* Walk the response stream. HEAD answers carry a Content-Length but no
 * body, so when the input may contain HEAD requests only the first
 * response is checked in full. */
static void check_responses(const char *p, size_t n, bool may_have_head)
{
    size_t off = 0;
    bool closed = false;
    while (off < n) {
        ASSERT(!closed); /* nothing may follow "Connection: close" */
        ASSERT(n - off >= 12 && memcmp(p + off, "HTTP/1.1 ", 9) == 0);
        int status = (p[off + 9] - '0') * 100 + (p[off + 10] - '0') * 10 + (p[off + 11] - '0');
        ASSERT(known_status(status));
        const char *end = memmem(p + off, n - off, "\r\n\r\n", 4);
        ASSERT(end);
        size_t head_end = (size_t)(end - p) + 4;
        if (status == 100) {
            off = head_end;
            continue;
        }
        const char *cl = memmem(p + off, head_end - off, "\r\nContent-Length: ", 18);
        ASSERT(cl);
        int64_t len = 0;
        const char *num = cl + 18;
        size_t k = strcspn(num, "\r");
        ASSERT(shoal_parse_i64(num, k, 0, 1 << 20, &len) == SHOAL_OK);
        closed = memmem(p + off, head_end - off, "\r\nConnection: close\r\n", 21) != NULL;
        if (may_have_head)
            return;
        ASSERT(n - head_end >= (size_t)len);
        if (len > 0)
            ASSERT(p[head_end] == '{' && p[head_end + (size_t)len - 1] == '}');
        off = head_end + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    /* First byte: the chunk size the client writes between loop turns. */
    size_t chunk = (size_t)(data[0] & 0x3f) + 1;
    data++;
    size--;

    struct server *srv = NULL;
    ASSERT(server_new(base, &info, &srv, NULL) == SHOAL_OK);
    int sv[2];
    ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    ASSERT(server_adopt(srv, sv[0], false) == SHOAL_OK);

    struct shoal_buf got;
    shoal_buf_init(&got, 1u << 22);
    for (size_t off = 0; off < size; off += chunk) {
        size_t k = size - off < chunk ? size - off : chunk;
        ssize_t w = send(sv[1], data + off, k, MSG_NOSIGNAL | MSG_DONTWAIT);
        turn(2);
        drain(sv[1], &got);
        if (w < 0)
            break; /* the server closed its end */
    }
    shutdown(sv[1], SHUT_WR);
    turn(4);
    drain(sv[1], &got);
    close(sv[1]);
    turn(2);
    server_free(srv);
    turn(1);

    check_responses(got.data ? got.data : "", got.len,
                    memmem(data, size, "HEAD", 4) != NULL);
    shoal_buf_fini(&got);
    return 0;
}
