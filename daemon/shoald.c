/* shoald.c: the daemon's main: options, configuration, signals, and the
 * libevent loop that owns all I/O. The configuration snapshot in force is
 * replaced whole on SIGHUP, only by a new one that loaded without errors;
 * SIGTERM/SIGINT drain in-flight requests and exit 0. */
#include "config.h"
#include "fetch.h"
#include "provider.h"
#include "server.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: shoald [OPTIONS]\n"
    "\n"
    "Run the shoal daemon in the foreground: an HTTP+JSON API on a Unix socket\n"
    "(and optionally loopback TCP) for local models, agents, tools and traces.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE        load FILE instead of searching for shoal.yaml\n"
    "      --socket PATH        listen on PATH (overrides listen.socket)\n"
    "      --check-config [FILE]\n"
    "                           validate the configuration (FILE, or the one the\n"
    "                           search finds), print the effective configuration\n"
    "                           with secrets redacted, and exit\n"
    "  -h, --help               show this help\n"
    "  -V, --version            show the version\n"
    "\n"
    "configuration search order: --config, $SHOAL_CONFIG,\n"
    "  $XDG_CONFIG_HOME/shoal/shoal.yaml (~/.config/shoal/shoal.yaml),\n"
    "  /etc/shoal/shoal.yaml; with none, built-in defaults.\n"
    "\n"
    "signals: SIGHUP reloads the configuration (an invalid file is rejected and\n"
    "  the old one stays); SIGTERM or SIGINT stop accepting, finish in-flight\n"
    "  requests within limits.shutdown_timeout, and exit 0.\n"
    "\n"
    "environment: SHOAL_LOG=debug|info|warn|error|off overrides log.level.\n"
    "\n"
    "exit status: 0 clean stop or valid configuration, 1 configuration or\n"
    "  startup error, 2 usage error.\n";

struct daemon_state {
    struct event_base *base;
    struct server *srv;
    struct fetch *fetch; /* outgoing HTTP on the loop (tools' ctx.http) */
    struct api_info info;
    const char *config_arg; /* --config, kept for SIGHUP */
    const char *socket_arg; /* --socket, re-applied on SIGHUP */
    bool stopping;
};

/* Load the configuration the way the search order says; print every problem
 * to stderr (startup) or the log (reload). NULL on failure. */
static struct config *load_config(const char *explicit_path, bool to_log)
{
    char path[4096];
    bool found = false;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    struct config_report rep;
    config_report_init(&rep);
    struct config *cfg = NULL;
    enum shoal_err err = config_find(explicit_path, path, sizeof(path), &found, &d);
    if (err) {
        if (to_log) {
            shoal_log_diag(SHOAL_LOG_ERROR, "config_error", &d);
        } else {
            char line[1024];
            shoal_diag_format(&d, line, sizeof(line));
            fprintf(stderr, "shoald: %s\n", line);
        }
        config_report_fini(&rep);
        return NULL;
    }
    err = found ? config_load_file(path, &cfg, &rep) : config_defaults(&cfg, &rep);
    if (err) {
        if (to_log) {
            for (size_t i = 0; i < rep.n; i++)
                shoal_log_diag(SHOAL_LOG_ERROR, "config_error", &rep.items[i]);
            if (rep.dropped)
                shoal_log(SHOAL_LOG_ERROR, "config_error", "%zu more problems not shown",
                          rep.dropped);
        } else {
            config_report_print(&rep, 2);
            fprintf(stderr, "shoald: %s: configuration rejected\n", found ? path : "defaults");
        }
        cfg = NULL;
    }
    config_report_fini(&rep);
    return cfg;
}

static bool apply_socket_override(struct config *cfg, const char *socket_path)
{
    if (!socket_path)
        return true;
    char *p = strdup(socket_path);
    if (!p)
        return false;
    free(cfg->listen.socket);
    cfg->listen.socket = p;
    return true;
}

static void apply_log_level(const struct config *cfg)
{
    shoal_log_set_level(cfg->log_level);
    if (shoal_log_level_from_env() != SHOAL_OK)
        shoal_log(SHOAL_LOG_WARN, "bad_env", "SHOAL_LOG must be debug, info, warn, error or off");
}

static void log_config(const char *event, const struct config *cfg)
{
    struct shoal_logline l;
    if (shoal_log_begin(&l, SHOAL_LOG_INFO, event)) {
        shoal_log_kv(&l, "source", "%s", cfg->source);
        shoal_log_kv(&l, "log_level", "%s", shoal_log_level_name(cfg->log_level));
        shoal_log_end(&l);
    }
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct daemon_state *st = arg;
    if (st->stopping)
        return;
    struct config *next = load_config(st->config_arg, true);
    if (!next || !apply_socket_override(next, st->socket_arg)) {
        config_free(next);
        shoal_log(SHOAL_LOG_ERROR, "config_reload_rejected",
                  "the configuration in force is unchanged");
        return;
    }
    struct config *cur = (struct config *)st->info.cfg;
    bool listen_changed =
        strcmp(next->listen.socket, cur->listen.socket) != 0 ||
        next->listen.tcp != cur->listen.tcp ||
        (next->listen.tcp && (strcmp(next->listen.tcp_host, cur->listen.tcp_host) != 0 ||
                              next->listen.tcp_port != cur->listen.tcp_port));
    if (listen_changed) {
        /* Listeners are bound once; keep describing the ones we have. */
        shoal_log(SHOAL_LOG_WARN, "config_listen_unchanged",
                  "listen addresses changed; restart shoald to apply them");
        char *t = next->listen.socket;
        next->listen.socket = cur->listen.socket;
        cur->listen.socket = t;
        t = next->listen.tcp_host;
        next->listen.tcp_host = cur->listen.tcp_host;
        cur->listen.tcp_host = t;
        bool b = next->listen.tcp;
        next->listen.tcp = cur->listen.tcp;
        cur->listen.tcp = b;
        uint16_t port = next->listen.tcp_port;
        next->listen.tcp_port = cur->listen.tcp_port;
        cur->listen.tcp_port = port;
    }
    if (cur->listen.tcp && !next->auth_token) {
        shoal_log(SHOAL_LOG_ERROR, "config_reload_rejected",
                  "the TCP listener stays open, so auth.token cannot be removed");
        config_free(next);
        return;
    }
    if (!traces_service_same(st->info.traces, &next->traces))
        shoal_log(SHOAL_LOG_WARN, "config_traces_unchanged",
                  "traces.enabled or traces.path changed; restart shoald to apply them");
    if (next->engine.threads != cur->engine.threads || next->engine.queue != cur->engine.queue)
        shoal_log(SHOAL_LOG_WARN, "config_engine_unchanged",
                  "engine.threads or engine.queue changed; restart shoald to apply them");
    st->info.cfg = next;
    config_free(cur);
    server_config_changed(st->srv);
    tools_service_reload(st->info.tools);
    apply_log_level(next);
    log_config("config_reloaded", next);
}

static void on_drained(void *arg)
{
    struct daemon_state *st = arg;
    event_base_loopexit(st->base, NULL);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon_state *st = arg;
    if (st->stopping) {
        shoal_log(SHOAL_LOG_WARN, "stop_forced", "second signal: exiting without waiting");
        event_base_loopbreak(st->base);
        return;
    }
    st->stopping = true;
    shoal_log(SHOAL_LOG_INFO, "stopping", "signal %d: finishing in-flight requests", (int)sig);
    server_shutdown(st->srv, on_drained, st);
}

static int check_config(const char *file)
{
    struct config *cfg = load_config(file, false);
    if (!cfg)
        return 1;
    struct shoal_buf b;
    shoal_buf_init(&b, 1u << 20);
    int rc = 0;
    if (config_print(cfg, &b) != SHOAL_OK) {
        fprintf(stderr, "shoald: cannot print the configuration\n");
        rc = 1;
    } else {
        printf("# effective configuration from %s\n%s", cfg->source, shoal_buf_cstr(&b));
    }
    shoal_buf_fini(&b);
    config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct daemon_state st;
    memset(&st, 0, sizeof(st));
    bool check = false;
    const char *check_file = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("shoald %s\n", SHOAL_VERSION);
            return 0;
        } else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
            st.config_arg = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            st.config_arg = a + 9;
        } else if (strcmp(a, "--socket") == 0 && i + 1 < argc) {
            st.socket_arg = argv[++i];
        } else if (strncmp(a, "--socket=", 9) == 0) {
            st.socket_arg = a + 9;
        } else if (strcmp(a, "--check-config") == 0) {
            check = true;
            if (i + 1 < argc && argv[i + 1][0] != '-')
                check_file = argv[++i];
        } else if (strncmp(a, "--check-config=", 15) == 0) {
            check = true;
            check_file = a + 15;
        } else {
            fprintf(stderr, "shoald: unknown or incomplete option '%s'\n\n%s", a, usage_text);
            return 2;
        }
    }
    if (shoal_log_level_from_env() != SHOAL_OK)
        fprintf(stderr, "shoald: SHOAL_LOG must be debug, info, warn, error or off; ignored\n");
    if (check)
        return check_config(check_file ? check_file : st.config_arg);

    struct config *cfg = load_config(st.config_arg, false);
    if (!cfg)
        return 1;
    if (!apply_socket_override(cfg, st.socket_arg)) {
        config_free(cfg);
        return 1;
    }
    apply_log_level(cfg);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit must fail the write (EFBIG: the trace store then
     * reports itself degraded), not kill the daemon. */
    signal(SIGXFSZ, SIG_IGN);

    st.info.cfg = cfg;
    st.info.started_ms = shoal_now_ms();
    st.info.started_unix = (int64_t)time(NULL);
    st.base = event_base_new();
    if (!st.base) {
        fprintf(stderr, "shoald: cannot create the event loop\n");
        config_free(cfg);
        return 1;
    }
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (traces_service_open(st.base, &cfg->traces, &st.info.traces, &d) != SHOAL_OK) {
        char line[1024];
        shoal_diag_format(&d, line, sizeof(line));
        fprintf(stderr, "shoald: %s\n", line);
        event_base_free(st.base);
        config_free(cfg);
        return 1;
    }
    if (fetch_new(st.base, &st.fetch, &d) != SHOAL_OK ||
        tools_service_open(&st.info, st.fetch, &st.info.tools, &d) != SHOAL_OK ||
        providers_new(st.base, st.fetch, &cfg->engine, &st.info.providers, &d) != SHOAL_OK) {
        char line[1024];
        shoal_diag_format(&d, line, sizeof(line));
        fprintf(stderr, "shoald: %s\n", line);
        tools_service_close(st.info.tools);
        fetch_free(st.fetch);
        traces_service_close(st.info.traces);
        event_base_free(st.base);
        config_free(cfg);
        return 1;
    }
    if (server_new(st.base, &st.info, &st.srv, &d) != SHOAL_OK ||
        server_listen(st.srv, &d) != SHOAL_OK) {
        server_free(st.srv);
        char line[1024];
        shoal_diag_format(&d, line, sizeof(line));
        fprintf(stderr, "shoald: cannot listen: %s\n", line);
        providers_free(st.info.providers);
        tools_service_close(st.info.tools);
        fetch_free(st.fetch);
        traces_service_close(st.info.traces);
        event_base_free(st.base);
        config_free(cfg);
        return 1;
    }
    struct event *ev_term = evsignal_new(st.base, SIGTERM, on_stop, &st);
    struct event *ev_int = evsignal_new(st.base, SIGINT, on_stop, &st);
    struct event *ev_hup = evsignal_new(st.base, SIGHUP, on_reload, &st);
    if (!ev_term || !ev_int || !ev_hup || event_add(ev_term, NULL) || event_add(ev_int, NULL) ||
        event_add(ev_hup, NULL)) {
        fprintf(stderr, "shoald: cannot install signal handlers\n");
        return 1;
    }

    log_config("config_loaded", cfg);
    struct shoal_logline l;
    if (shoal_log_begin(&l, SHOAL_LOG_INFO, "listening")) {
        shoal_log_kv(&l, "socket", "%s", cfg->listen.socket);
        if (cfg->listen.tcp)
            shoal_log_kv(&l, "tcp", cfg->listen.tcp_host[0] && strchr(cfg->listen.tcp_host, ':')
                                        ? "[%s]:%u"
                                        : "%s:%u",
                         cfg->listen.tcp_host, (unsigned)cfg->listen.tcp_port);
        shoal_log_kv(&l, "pid", "%ld", (long)getpid());
        shoal_log_kv(&l, "version", "%s", SHOAL_VERSION);
        shoal_log_end(&l);
    }

    event_base_dispatch(st.base);

    struct server_stats ss;
    server_stats_get(st.srv, &ss);
    server_free(st.srv);
    /* After the server: pending replies have no connection left. Tool calls
     * and model calls go before fetch; every accepted trace record (tool
     * and model calls record theirs) is committed before we exit. */
    providers_free(st.info.providers); /* model calls still running end cancelled */
    tools_service_close(st.info.tools);
    fetch_free(st.fetch);
    traces_service_close(st.info.traces);
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    event_base_free(st.base);
    if (shoal_log_begin(&l, SHOAL_LOG_INFO, "stopped")) {
        shoal_log_kv(&l, "requests", "%llu", (unsigned long long)ss.requests);
        shoal_log_kv(&l, "connections", "%llu", (unsigned long long)ss.accepted);
        shoal_log_end(&l);
    }
    config_free((struct config *)st.info.cfg);
    return 0;
}
