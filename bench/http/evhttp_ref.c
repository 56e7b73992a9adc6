/* evhttp_ref.c: the reference server for bench/http. libevent's own HTTP
 * server (evhttp) answering GET /healthz with the same JSON body as shoald,
 * on a Unix socket, single-threaded. shoald writes its HTTP layer itself
 * instead of using evhttp (evhttp lacks total-time header deadlines, CL+TE
 * rejection and a connection cap); this measures what that choice costs or
 * gains, as a ratio in the same run. Not part of the product.
 * usage: evhttp_ref SOCKET_PATH   (stops on SIGTERM/SIGINT) */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void on_healthz(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(out, "{\"status\":\"ok\"}", 15);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: evhttp_ref SOCKET_PATH\n");
        return 2;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "evhttp_ref: socket path too long\n");
        return 2;
    }
    memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
    unlink(argv[1]);

    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    if (!http) {
        fprintf(stderr, "evhttp_ref: cannot create the server\n");
        return 1;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
        (struct sockaddr *)&sa, sizeof(sa));
    if (!l || !evhttp_bind_listener(http, l)) {
        perror("evhttp_ref: bind");
        return 1;
    }
    evhttp_set_cb(http, "/healthz", on_healthz, NULL);
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    unlink(argv[1]);
    return 0;
}
