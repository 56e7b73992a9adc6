/* peer.h: start and stop a loopback test peer written in Python (an HTTP
 * server, a mock LLM, an OTLP collector) that prints its port on its first
 * stdout line and exits when its stdin closes. Shared by C tests and
 * benchmarks. The read end of the peer's stdout stays open until the peer
 * is stopped: closing it early can break the peer's own write of the rest
 * of its first line. */
#ifndef SHOAL_TESTS_PEER_H
#define SHOAL_TESTS_PEER_H

#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct test_peer {
    pid_t pid;
    int in, out; /* its stdin (write end) and stdout (read end) */
    int port;
};

/* Run $PYTHON3 (default python3) on the script named by the environment
 * variable env (default: fallback), followed by args (NULL-terminated, or
 * NULL for none). The port, or 0 when it did not start (said on stderr).
 * Our ends of its pipes are close-on-exec, so that a second peer or a
 * daemon started later does not hold this one's stdin open. */
static inline int test_peer_start_args(struct test_peer *p, const char *env,
                                       const char *fallback, const char *const *args)
{
    const char *py = getenv("PYTHON3") ? getenv("PYTHON3") : "python3";
    const char *script = getenv(env) ? getenv(env) : fallback;
    const char *argv[32] = {py, script};
    size_t argc = 2;
    for (size_t i = 0; args && args[i] && argc < SHOAL_ARRAY_LEN(argv) - 1; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    int in[2], out[2];
    p->pid = -1;
    p->in = p->out = -1;
    p->port = 0;
    if (pipe(in) != 0 || pipe(out) != 0)
        return 0;
    p->pid = fork();
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execvp(py, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    p->in = in[1];
    p->out = out[0];
    char buf[32] = "";
    ssize_t n = read(p->out, buf, sizeof(buf) - 1);
    int64_t v = 0;
    size_t len = n > 0 ? strcspn(buf, "\r\n") : 0;
    if (shoal_parse_i64(buf, len, 1, 65535, &v) == SHOAL_OK)
        p->port = (int)v;
    else
        fprintf(stderr, "peer did not start: %s %s\n", py, script);
    return p->port;
}

static inline int test_peer_start(struct test_peer *p, const char *env, const char *fallback)
{
    return test_peer_start_args(p, env, fallback, NULL);
}

/* Close the peer's stdin and wait for it to exit. With rest, first read
 * what it printed after its port line until it closes its stdout (at most
 * n - 1 bytes kept, NUL-terminated). Its wait status, or -1 when it was
 * not running. */
static inline int test_peer_finish(struct test_peer *p, char *rest, size_t n)
{
    int st = -1;
    if (p->in >= 0)
        close(p->in);
    if (rest && n > 0) {
        char sink[256]; /* what does not fit in rest is read and dropped */
        size_t len = 0;
        while (p->out >= 0) {
            bool room = len + 1 < n;
            ssize_t k = read(p->out, room ? rest + len : sink, room ? n - 1 - len : sizeof(sink));
            if (k <= 0)
                break;
            if (room)
                len += (size_t)k;
        }
        rest[len] = '\0';
    }
    if (p->out >= 0)
        close(p->out);
    if (p->pid > 0 && waitpid(p->pid, &st, 0) != p->pid)
        st = -1;
    p->in = p->out = -1;
    p->pid = -1;
    return st;
}

static inline void test_peer_stop(struct test_peer *p)
{
    (void)test_peer_finish(p, NULL, 0);
}

#endif
