/* config.h: shoal.yaml → an immutable configuration snapshot (daemon
 * internal). The loader checks everything in one pass and reports every
 * problem as file:line:col: key.path: message. A snapshot never changes after
 * load; SIGHUP builds a new one and swaps it in whole. Loop thread or any
 * thread: loading touches no global state except reading the environment. */
#ifndef SHOAL_DAEMON_CONFIG_H
#define SHOAL_DAEMON_CONFIG_H

#include "common.h"

#include <stdbool.h>
#include <stdint.h>

/* Every problem found in one load, in file order. */
struct config_report {
    struct shoal_diag *items;
    size_t n, cap;
    size_t dropped; /* problems past CONFIG_REPORT_MAX, counted but not kept */
};
#define CONFIG_REPORT_MAX 100

void config_report_init(struct config_report *r);
void config_report_fini(struct config_report *r);
/* Write each problem on its own line ("file:line:col: path: msg\n"). */
void config_report_print(const struct config_report *r, int fd);

struct config_limits {
    uint32_t header_bytes;      /* request line + headers, bytes (431) */
    uint32_t header_count;      /* header fields per request (431) */
    uint64_t body_bytes;        /* request body, bytes (413) */
    uint32_t header_timeout_ms; /* first byte → end of headers, total (408) */
    uint32_t body_timeout_ms;   /* end of headers → end of body, total (408) */
    uint32_t keepalive_ms;      /* idle keep-alive connection is closed after */
    uint32_t max_connections;   /* open client connections (503 past it) */
    uint32_t shutdown_ms;       /* SIGTERM: in-flight requests get this long */
};

/* traces: the trace store (see daemon/traces.h). */
struct config_traces {
    bool enabled;           /* false: no store is opened and nothing is recorded */
    char *path;             /* absolute path of the SQLite database */
    uint64_t retention_ms;  /* runs older than this are pruned; 0 keeps them */
    uint64_t max_bytes;     /* oldest runs are pruned past this size; 0: no limit */
    uint32_t payload_bytes; /* bytes kept of any stored string (prompts, outputs) */
    bool redact;            /* drop message contents entirely */
    bool sync_full;         /* synchronous=FULL (survives power loss) vs NORMAL */
    uint32_t queue;         /* records waiting for the writer before callers see BUSY */
};

/* models: NAME: { provider: local, path: FILE, context: N }, or a remote
 * provider: NAME: { provider: openai|anthropic, base_url: URL, model: ID,
 * api_key: SECRET, headers: {Name: value}, timeouts: {connect, first_byte,
 * total}, retry: {attempts, backoff}, price: {input_per_mtok,
 * output_per_mtok, cached_per_mtok} }. A name is [A-Za-z0-9._-]{1,64};
 * base_url is https unless its host is loopback. */
#define CONFIG_MODELS_MAX        64
#define CONFIG_KEEP_ALIVE_DEFAULT_MS (10u * 60u * 1000u)
#define CONFIG_KEEP_ALIVE_MAX_MS     (365ull * 86400000ull)
#define CONFIG_MODEL_HEADERS_MAX 32
enum config_provider {
    CONFIG_PROVIDER_LOCAL = 0,
    CONFIG_PROVIDER_OPENAI,
    CONFIG_PROVIDER_ANTHROPIC,
};
struct config_header {
    char *name;
    char *value;
};
struct config_model {
    char *name;
    enum config_provider provider;
    /* provider: local */
    char *path;       /* absolute path of the GGUF file */
    uint32_t context; /* tokens of context; 0: the model's own */
    uint64_t keep_alive_ms; /* unloaded after this long unused; 0: after each call */
    /* remote providers */
    char *base_url;                  /* "https://api.openai.com/v1" */
    char *model;                     /* the provider's model id */
    struct shoal_secret *api_key;    /* NULL: none (a local server), or not resolved */
    char *api_key_source;            /* "env:X" / "file:/p" (kept even when not resolved) */
    struct config_header *headers;   /* extra request headers, in file order */
    size_t n_headers;
    uint32_t connect_timeout_ms;     /* default 10s */
    uint32_t first_byte_timeout_ms;  /* request sent → first body byte; default 60s */
    uint32_t total_timeout_ms;       /* attempts and waits together; default 120s */
    uint32_t retry_attempts;         /* attempts in all, the first included; default 3 */
    uint32_t retry_backoff_ms;       /* first backoff; default 500ms */
    double price_input_per_mtok;     /* USD per million uncached input tokens; default 0 */
    double price_output_per_mtok;    /* default 0 */
    double price_cached_per_mtok;    /* < 0 (the default): as input */
};

/* tools: where tool scripts live, their sandbox limits, and what each tool
 * may do beyond computing (capabilities are denied unless granted here). */
#define CONFIG_TOOL_DIRS_MAX 16
#define CONFIG_GRANTS_MAX    256
#define CONFIG_HOSTS_MAX     64
struct config_grant {
    char *tool;          /* a tool name */
    bool http, fs, kv;   /* granted capabilities */
    char **allow_hosts;  /* http: host names it may reach (exact, or "*.example.com") */
    size_t n_hosts;
    bool allow_http;     /* http: plain http:// too (default https only) */
};
struct config_tools {
    char **dirs;          /* user tool directories, after the built-ins */
    size_t n_dirs;
    bool dirs_given;      /* dirs came from the file (a missing one is then an error) */
    char *workspace;      /* root of the per-tool ctx.fs directories */
    char *kv_path;        /* SQLite file behind ctx.kv */
    uint64_t instructions; /* per call: Lua VM instructions */
    uint64_t memory_bytes; /* per call: Lua heap */
    uint32_t timeout_ms;   /* per call: wall clock */
    uint32_t result_bytes; /* per call: JSON result */
    struct config_grant *grants;
    size_t n_grants;
};

/* engine: the local inference engine (read at start). */
#define CONFIG_ENGINE_THREADS_MAX 256
#define CONFIG_ENGINE_QUEUE_MAX   4096
struct config_engine {
    uint32_t threads; /* compute threads per generation; 0: the physical cores */
    uint32_t queue;   /* local calls waiting for the engine before 503; default 64 */
    uint64_t memory_budget; /* bytes the resident local models may take (weights plus
                               K/V cache); least recently used ones are unloaded to make
                               room; 0: no budget */
};

struct config {
    char *source; /* path the snapshot came from, or "(built-in defaults)" */
    struct {
        char *socket;   /* absolute path of the Unix socket */
        bool tcp;       /* also listen on loopback TCP */
        char *tcp_host; /* numeric loopback address, e.g. "127.0.0.1" or "::1" */
        uint16_t tcp_port;
    } listen;
    struct shoal_secret *auth_token; /* bearer token for TCP; NULL when unset */
    struct config_limits limits;
    struct config_traces traces;
    struct config_tools tools;
    struct config_engine engine;
    struct config_model *models; /* in file order */
    size_t n_models;
    enum shoal_log_level log_level;
};

/* The grant for tool name, or NULL (nothing granted). */
const struct config_grant *config_grant_find(const struct config *c, const char *name);

/* The model named name, or NULL. */
const struct config_model *config_model_find(const struct config *c, const char *name);

/* Resolve which file to load: explicit (--config) if non-NULL, else
 * $SHOAL_CONFIG, $XDG_CONFIG_HOME/shoal/shoal.yaml (or ~/.config/...),
 * /etc/shoal/shoal.yaml. *found is false when no file exists and built-in
 * defaults apply. An explicit path or $SHOAL_CONFIG that does not exist is
 * NOT_FOUND (the user asked for it). */
enum shoal_err config_find(const char *explicit_path, char *out, size_t n, bool *found,
                           struct shoal_diag *d);

/* Parse and validate a file / an in-memory document (name is used in
 * diagnostics). On failure every problem is in r (which may be NULL; the
 * problems are then only counted), in file order, and *out is untouched.
 * Returns INVALID for any problem in the document (including unreadable
 * secrets), NOT_FOUND / PERM / IO when the file cannot be opened or read,
 * TOO_BIG past SHOAL_CAP_CONFIG_BYTES, NOMEM. Caller owns *out
 * (config_free). Secrets and ${VAR}s are read from the environment and the
 * file system during the load. */
enum shoal_err config_load_file(const char *path, struct config **out, struct config_report *r);
enum shoal_err config_load_string(const char *name, const char *text, size_t n, struct config **out,
                                  struct config_report *r);
/* Like config_load_file, for clients (the CLI) that need listen.* only:
 * secrets are checked for shape but not resolved, so a variable that only
 * the daemon's environment holds is not an error; auth_token stays NULL. */
enum shoal_err config_load_file_client(const char *path, struct config **out,
                                       struct config_report *r);
/* Like config_load_file_client, but the api_key of the model named model
 * (if any) is resolved: what `shoal generate --model NAME` needs. */
enum shoal_err config_load_file_model(const char *path, const char *model, struct config **out,
                                      struct config_report *r);
/* The built-in defaults (no file). INVALID (with a problem at
 * listen.socket) when the default socket path does not fit a Unix socket. */
enum shoal_err config_defaults(struct config **out, struct config_report *r);
void config_free(struct config *c);

/* The default socket path: $XDG_RUNTIME_DIR/shoal/shoal.sock (when set and
 * absolute), or /run/shoal/shoal.sock as root, or /tmp/shoal-UID/shoal.sock.
 * TOO_BIG, with out untouched, when it does not fit in n bytes. */
enum shoal_err config_default_socket(char *out, size_t n);

/* The default trace database: $XDG_STATE_HOME/shoal/traces.db (when set
 * and absolute), /var/lib/shoal/traces.db as root, ~/.local/state/shoal/
 * traces.db, or /tmp/shoal-UID/traces.db without HOME. TOO_BIG, with out
 * untouched, when it does not fit in n bytes. */
enum shoal_err config_default_traces_path(char *out, size_t n);

/* Append the effective configuration as YAML to b, every key with its
 * unit; loading the output gives the same configuration. Secrets appear
 * only as where they come from, `token: { env: SHOAL_TOKEN }` or
 * `token: { file: "/path" }`, never their value. */
enum shoal_err config_print(const struct config *c, struct shoal_buf *b);

#endif
