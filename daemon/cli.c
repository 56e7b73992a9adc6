/* cli.c: `shoal`, the command-line client of shoald. It finds the daemon
 * (flags, environment, then the config file shoald itself would load), sends
 * one HTTP request per command over the Unix socket or loopback TCP with
 * libcurl, and renders the answer. Invariants: an exit code means the same
 * for every command (see enum cli_exit), and the bearer token is never printed. */
#include "common.h"
#include "cli.h"
#include "tools.h"
#include "config.h"
#include "remote.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* Every command exits with one of these, so scripts can tell "the daemon said
 * no" from "I typed it wrong" from "nothing is running". */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ANSWER = 1,      /* the daemon answered with an error or nonsense */
    CLI_EXIT_USAGE = 2,       /* bad command line or configuration */
    CLI_EXIT_UNREACHABLE = 3, /* not running, refused, or timed out */
};

/* A response is held whole before it is parsed; this keeps a confused or
 * hostile peer from growing it without bound. */
#define CLI_MAX_RESPONSE     (16u * 1024u * 1024u)
#define CLI_DEFAULT_TIMEOUT  10000u /* ms */
#define CLI_MAX_TIMEOUT      86400000u
#define CLI_SOCKET_PATH_MAX  sizeof(((struct sockaddr_un *)0)->sun_path)

struct cli {
    /* Global options; borrowed from argv. */
    const char *opt_socket;
    const char *opt_url;
    const char *opt_config;
    uint32_t timeout_ms;
    bool timeout_given;
    bool json;

    /* Where to connect, filled once by cli_resolve. */
    bool resolved;
    bool tcp;
    char socket[CLI_SOCKET_PATH_MAX]; /* when !tcp */
    char base_url[512];               /* when tcp, without a trailing '/' */
    struct shoal_secret *token;       /* when tcp and $SHOAL_TOKEN is set */

    CURL *curl; /* created on first use, reset between requests */
};

/* Why a request produced nothing usable: the line to print after "shoal: ",
 * an optional hint for the next line, and the exit code. */
struct cli_error {
    int exit;
    char msg[1024];
    char hint[256];
};

struct cli_response {
    long status;
    struct shoal_buf body;
    enum shoal_err body_err; /* why the write callback stopped, SHOAL_OK if it did not */
    cJSON *json;             /* the parsed body of a 2xx answer */
    /* A streamed answer: a 2xx body goes here as it arrives (nothing is
     * held or parsed); false stops the transfer. NULL: whole answers. */
    bool (*on_stream)(void *arg, const char *p, size_t n);
    void *stream_arg;
    CURL *curl;
};

/* ---- Commands: one row per command; `help` and the usage text are built
 * from this table, so a new command is a function plus a row. ---- */

struct cli_command {
    const char *name;
    const char *args;    /* synopsis after the name, "" when none */
    const char *summary; /* one line for the command list */
    const char *details; /* paragraphs for `shoal help NAME` */
    int max_args;        /* positional arguments it takes */
    /* Set for commands that parse their own options (local file tools):
     * they get the raw arguments after their name. */
    int (*main)(int argc, char **argv);
    /* Runs with the command's options (--json) applied and its positional
     * arguments in args[0..nargs). */
    int (*run)(struct cli *c, int nargs, char **args);
    /* run gets every argument after the name and parses its options
     * itself (commands with sampling flags). */
    bool own_options;
};

static int cmd_status(struct cli *c, int nargs, char **args);
static int cmd_health(struct cli *c, int nargs, char **args);
static int cmd_version(struct cli *c, int nargs, char **args);
static int cmd_tool(struct cli *c, int nargs, char **args);
static int cmd_help(struct cli *c, int nargs, char **args);
static int cmd_chat(struct cli *c, int nargs, char **args);

static const struct cli_command commands[] = {
    {"status", "[--json]", "show whether shoald is running, and where",
     "Ask shoald for its version, pid, uptime, the socket and TCP address it\n"
     "listens on, and the config file it loaded (GET /v1/version).\n"
     "With --json, print the daemon's answer as it came.\n",
     0, NULL, cmd_status, false},
    {"health", "[--json]", "check that shoald answers; prints \"ok\"",
     "Ask shoald whether it is healthy (GET /healthz). Prints \"ok\" and exits 0\n"
     "when it is. With --json, print the daemon's answer as it came.\n",
     0, NULL, cmd_health, false},
    {"version", "[--json]", "print the versions of shoal and of the running shoald",
     "Print this client's version, and the running daemon's when one is\n"
     "reachable. A daemon that is not running is not an error here.\n",
     0, NULL, cmd_version, false},
    {"model", "inspect FILE [--json] [--template] | synth --shape NAME --type TYPE -o FILE",
     "describe a GGUF model file, or write a synthetic one (no daemon needed)",
     "Read FILE and print its architecture, parameter count, size, tensor types,\n"
     "context length, tokenizer kind and vocabulary size, special tokens and\n"
     "whether it carries a chat template (and which fallback is used if not).\n"
     "--json prints the same as one JSON object; --template prints the chat\n"
     "template itself.\n"
     "synth writes a random-weight model at a real model's shape (tiny,\n"
     "smollm2-135m, qwen2.5-0.5b, llama3.2-1b, qwen3-0.6b) in TYPE (F32, F16, BF16,\n"
     "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K),\n"
     "mixing tensor types as llama-quantize does; [--seed S] [--layers N].\n",
     0, cli_model_main, NULL, false},
    {"tokenize", "--model FILE [--special] [--no-add-special] [--json] [--decode] TEXT|-",
     "turn text into token ids, or ids into text (no daemon needed)",
     "Encode TEXT (or standard input with -) with FILE's tokenizer and print\n"
     "each token id with its piece. --special parses special-token text such as\n"
     "<|im_start|>; --no-add-special leaves out BOS/EOS. --decode reads token\n"
     "ids (space or comma separated) and prints the text. --json prints JSON.\n",
     0, cli_tokenize_main, NULL, false},
    {"template", "render (--model FILE | --template FILE.jinja) --messages FILE.json [...]",
     "render a chat template exactly as the model will see it (no daemon needed)",
     "Render the chat template of --model FILE (its tokenizer.chat_template, or\n"
     "the ChatML fallback when it has none; bos/eos are the model's tokens) or of\n"
     "the Jinja file --template, for the conversation in --messages FILE.json: a\n"
     "JSON array of OpenAI-style messages, or an object {\"messages\": [...],\n"
     "\"tools\": [...], \"extra_context\": {...}, \"add_generation_prompt\": bool}.\n"
     "  --tools FILE.json    an array of tools, or null\n"
     "  --vars FILE.json     an object of extra variables (enable_thinking, ...)\n"
     "  --generation-prompt  end with the assistant header\n"
     "  --bos S, --eos S     the token strings (default: the model's, or \"\")\n"
     "  --json               print {\"prompt\": ..., \"fallback_template\": bool}\n"
     "  --now SECONDS        strftime_now() sees this time (seconds since 1970,\n"
     "                       UTC) instead of the clock, for reproducible prompts\n"
     "Any FILE may be - for standard input. Prints the prompt exactly, with no\n"
     "added newline; a template error prints \"shoal: template error at\n"
     "LINE:COL: MESSAGE\" and exits 1.\n",
     0, cli_template_main, NULL, false},
    {"generate", "--model FILE (-p PROMPT | --chat MESSAGES.json) [-n N] [--temp T] [...]",
     "run a local model and stream its continuation (no daemon needed)",
     "Load FILE, feed the prompt (or the conversation in --chat, rendered with the\n"
     "model's chat template and an assistant header) and stream the generated text\n"
     "to stdout; prompt and generation speed go to stderr. Sampling: --temp T (0 is\n"
     "greedy), --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S; --stop S\n"
     "ends before S; -n N caps the tokens; --threads N, --ctx N, --kv-f32;\n"
     "--logprobs N prints each token's log-probability and N alternatives to stderr.\n"
     "See shoal generate --help.\n",
     0, cli_generate_main, NULL, false},
    {"logits", "--model FILE --tokens ID,ID,... [--top K] [--json]",
     "print the top-K next-token logits at every position (no daemon needed)",
     "Feed the token ids in one batch (no BOS added) and print, for every position,\n"
     "the K most likely next tokens and their logits (default 10). For comparing the\n"
     "engine with another implementation, and for debugging a model.\n",
     0, cli_logits_main, NULL, false},
    {"traces", "list|show|savings|export [OPTIONS]",
     "list runs, show one as a span tree, savings, export (no daemon needed)",
     "Read the trace store's SQLite file directly (read-only; shoald need not run,\n"
     "and may be writing). The file is --db FILE, else traces.path of --config FILE,\n"
     "else of the config file shoald would load, else the default path.\n"
     "  list [--agent NAME] [--status running|ok|error|cancelled|unset] [--since T]\n"
     "       [--limit N]     runs, newest first (50 unless --limit, at most 1000)\n"
     "  show RUN_ID          one run's totals and its span tree\n"
     "  savings [--since T] [--by agent|step|model]\n"
     "                       local vs remote llm steps, escalations, cost against\n"
     "                       the baseline model, and the savings\n"
     "  export --jsonl FILE|- [--force] [--since T]\n"
     "                       one JSON object per span; FILE is created mode 0600\n"
     "                       and never overwritten without --force\n"
     "  export --otlp URL [--header 'Name: value']... [--since T]\n"
     "                       send the spans to an OpenTelemetry collector\n"
     "                       (OTLP/HTTP JSON, e.g. http://127.0.0.1:4318/v1/traces)\n"
     "T is an age (90s, 30m, 1h, 7d, 2w), a UTC date (2026-11-20, 2026-11-20T10:00Z)\n"
     "or all (the default). Times print in local time, or UTC with --utc. --json\n"
     "prints the query's JSON on one line instead of text. Exit status: 0 ok,\n"
     "1 no database, no such run, or a failed export, 2 usage error.\n",
     0, cli_traces_main, NULL, false},
    {"tool", "list | call NAME [ARGS_JSON|-] | check FILE [--json]",
     "list the daemon's tools, call one, or check a tool file",
     "list     the tools shoald offers (GET /v1/tools): name and description\n"
     "call     call NAME with ARGS_JSON (an object; - reads standard input; default\n"
     "         {}) through shoald (POST /v1/tools/NAME/call) and print the result;\n"
     "         a tool error prints its type and message and exits 1\n"
     "check    load FILE as shoald would (sandboxed, under the default limits) and\n"
     "         report every problem as file:line: message; needs no daemon\n"
     "--json prints the daemon's answer as it came.\n",
     3, NULL, cmd_tool, false},
    {"chat", "MODEL [PROMPT|-] [--system TEXT] [-n N] [--temp T] [--seed S] [...]",
     "ask a model served by shoald and stream its answer",
     "Send PROMPT (or standard input with - or no PROMPT) as the user message to\n"
     "MODEL, a name under models: in shoald's configuration, local or remote\n"
     "(POST /v1/chat/completions), and stream the answer to stdout. At the end,\n"
     "stderr gets the tokens (prompt, reused from the cache, generated), the time\n"
     "to the first token and in all, the finish reason and the run id for\n"
     "shoal traces show.\n"
     "  --system TEXT    a system message first\n"
     "  -n, --max-tokens N   cap the answer (default: the model's own limit)\n"
     "  --temp T         temperature (0 is greedy); --top-p P; --seed S\n"
     "  --stop S         end before S (repeatable, up to 16)\n"
     "  --no-stream      wait for the whole answer\n"
     "  --json           print the daemon's chat.completion JSON (implies\n"
     "                   --no-stream)\n"
     "Without --timeout the request may take up to 10 minutes.\n",
     2, NULL, cmd_chat, true},
    {"help", "[COMMAND]", "show help for shoal or for one command",
     "Without COMMAND, show the overall help; with it, that command's usage.\n", 1,
     NULL, cmd_help, false},
};

static const char usage_head[] = "usage: shoal [OPTIONS] COMMAND [ARGS]\n";

static const char usage_options[] =
    "\n"
    "Options (before COMMAND):\n"
    "  --socket PATH      connect to shoald's Unix socket at PATH\n"
    "  --url URL          connect over TCP, e.g. http://127.0.0.1:7878; the bearer\n"
    "                     token comes from $SHOAL_TOKEN\n"
    "  --config FILE      read listen.socket from FILE\n"
    "  --timeout SECONDS  give up after SECONDS (default 10; fractions allowed)\n"
    "  --json             print JSON instead of text\n"
    "  -h, --help         show this help\n"
    "  --version          print shoal's version and exit\n"
    "\n"
    "Where to connect, first match wins: --socket, --url, --config, $SHOAL_SOCKET,\n"
    "$SHOAL_URL, the config file shoald would load ($SHOAL_CONFIG,\n"
    "$XDG_CONFIG_HOME/shoal/shoal.yaml, /etc/shoal/shoal.yaml), and finally the\n"
    "default socket ($XDG_RUNTIME_DIR/shoal/shoal.sock).\n"
    "\n"
    "Environment:\n"
    "  SHOAL_SOCKET       Unix socket path, as --socket\n"
    "  SHOAL_URL          TCP address, as --url\n"
    "  SHOAL_TOKEN        bearer token sent over TCP (never printed)\n"
    "  SHOAL_CONFIG       config file, as shoald uses it\n"
    "\n"
    "Exit status:\n"
    "  0  success\n"
    "  1  the daemon answered with an error or a malformed response\n"
    "  2  usage or configuration error\n"
    "  3  the daemon is not reachable (not running, refused, or timed out)\n"
    "\n"
    "Run 'shoal help COMMAND' for one command's usage.\n";

static const struct cli_command *command_find(const char *name)
{
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* The closest command name, for "did you mean", or NULL when none is close. */
static const char *command_suggest(const char *name)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(commands); i++) {
        unsigned d = shoal_edit_distance(name, commands[i].name, 2);
        if (d < best_d) {
            best_d = d;
            best = commands[i].name;
        }
    }
    return best;
}

static void print_usage(FILE *f)
{
    fputs(usage_head, f);
    fputs("\nTalk to a running shoald over its Unix socket or loopback TCP, and look\n"
          "inside model files (model, tokenize, template) without one.\n\nCommands:\n", f);
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs(usage_options, f);
}

static void print_command_usage(FILE *f, const struct cli_command *cmd, bool details)
{
    fprintf(f, "usage: shoal %s%s%s\n", cmd->name, cmd->args[0] ? " " : "", cmd->args);
    if (details)
        fprintf(f, "\n%s\nRun 'shoal --help' for global options and exit codes.\n", cmd->details);
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("shoal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fputs(usage, stderr);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

/* Report a command-line mistake the way every usage error looks. */
static int usage_error(const struct cli_command *cmd, const char *fmt, ...) SHOAL_PRINTF(2, 3);

static int usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs(cmd ? "shoal " : "shoal: ", stderr);
    if (cmd)
        fprintf(stderr, "%s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd) {
        print_command_usage(stderr, cmd, false);
        fprintf(stderr, "Run 'shoal help %s' for more.\n", cmd->name);
    } else {
        fputs(usage_head, stderr);
        fputs("Run 'shoal --help' for more.\n", stderr);
    }
    return CLI_EXIT_USAGE;
}

/* Copy text that came from the daemon for a terminal, replacing control
 * bytes so a peer cannot move the cursor or rewrite the screen. */
static const char *clean(const char *s, char *out, size_t n)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    out[i] = '\0'; /* callers pass n > 0 */
    return out;
}


/* "5s", "5m12s", "3h07m", "2d04h": two units are enough to read at a glance. */
static void format_uptime(int64_t ms, char *out, size_t n)
{
    int64_t s = ms / 1000;
    if (s < 60)
        snprintf(out, n, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(out, n, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, n, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(out, n, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
}

/* ---- Finding the daemon ---- */

static int use_socket(struct cli *c, const char *path, const char *from)
{
    if (path[0] == '\0') {
        fprintf(stderr, "shoal: %s is empty; give the path of shoald's socket\n", from);
        return CLI_EXIT_USAGE;
    }
    if (!shoal_strlcpy(c->socket, path, sizeof(c->socket))) {
        fprintf(stderr, "shoal: %s: socket path is longer than %zu bytes\n", from,
                sizeof(c->socket) - 1);
        return CLI_EXIT_USAGE;
    }
    c->tcp = false;
    return CLI_EXIT_OK;
}

static int use_url(struct cli *c, const char *url, const char *from)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "shoal: %s: expected a URL such as http://127.0.0.1:7878\n", from);
        return CLI_EXIT_USAGE;
    }
    if (strncmp(url, "https://", 8) == 0 &&
        !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_SSL)) {
        fprintf(stderr, "shoal: %s: this libcurl was built without TLS; use http://\n", from);
        return CLI_EXIT_USAGE;
    }
    if (!shoal_strlcpy(c->base_url, url, sizeof(c->base_url))) {
        fprintf(stderr, "shoal: %s: URL is too long\n", from);
        return CLI_EXIT_USAGE;
    }
    size_t n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    c->tcp = true;

    const char *tok = getenv("SHOAL_TOKEN");
    if (tok && tok[0]) {
        /* CR or LF in a header value would let the token write headers. */
        for (const char *p = tok; *p; p++) {
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                fputs("shoal: $SHOAL_TOKEN contains control characters\n", stderr);
                return CLI_EXIT_USAGE;
            }
        }
        if (shoal_secret_new(tok, strlen(tok), "env:SHOAL_TOKEN", &c->token) != SHOAL_OK) {
            fputs("shoal: $SHOAL_TOKEN is too long\n", stderr);
            return CLI_EXIT_USAGE;
        }
    }
    return CLI_EXIT_OK;
}

/* The socket shoald would listen on: the same config search it does, or the
 * built-in default when no file exists. */
static int use_config(struct cli *c, const char *explicit_path)
{
    char path[4096];
    bool found = false;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (config_find(explicit_path, path, sizeof(path), &found, &d) != SHOAL_OK) {
        char line[1024];
        shoal_diag_format(&d, line, sizeof(line));
        fprintf(stderr, "shoal: %s\n", line);
        return CLI_EXIT_USAGE;
    }
    if (!found) {
        char def[CLI_SOCKET_PATH_MAX];
        if (config_default_socket(def, sizeof(def)) != SHOAL_OK) {
            fputs("shoal: cannot work out the default socket path; use --socket\n", stderr);
            return CLI_EXIT_USAGE;
        }
        return use_socket(c, def, "the default socket");
    }

    struct config *cfg = NULL;
    struct config_report report;
    config_report_init(&report);
    if (config_load_file_client(path, &cfg, &report) != SHOAL_OK) {
        fflush(stderr);
        config_report_print(&report, 2);
        config_report_fini(&report);
        fprintf(stderr, "shoal: %s is not a valid configuration\n", path);
        return CLI_EXIT_USAGE;
    }
    config_report_fini(&report);
    char from[4200];
    snprintf(from, sizeof(from), "%s: listen.socket", path);
    int rc = use_socket(c, cfg->listen.socket ? cfg->listen.socket : "", from);
    config_free(cfg);
    return rc;
}

static int cli_resolve(struct cli *c)
{
    if (c->resolved)
        return CLI_EXIT_OK;
    const char *env;
    int rc;
    /* An explicit flag beats the environment, even --config over $SHOAL_SOCKET:
     * what was typed on this command line is what the user means. */
    if (c->opt_socket)
        rc = use_socket(c, c->opt_socket, "--socket");
    else if (c->opt_url)
        rc = use_url(c, c->opt_url, "--url");
    else if (c->opt_config)
        rc = use_config(c, c->opt_config);
    else if ((env = getenv("SHOAL_SOCKET")) && env[0])
        rc = use_socket(c, env, "$SHOAL_SOCKET");
    else if ((env = getenv("SHOAL_URL")) && env[0])
        rc = use_url(c, env, "$SHOAL_URL");
    else
        rc = use_config(c, NULL);
    c->resolved = rc == CLI_EXIT_OK;
    return rc;
}

static const char *cli_where(const struct cli *c)
{
    return c->tcp ? c->base_url : c->socket;
}

/* ---- One request ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct cli_response *r = ud;
    if (r->on_stream) {
        long status = 0;
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status <= 299)
            return r->on_stream(r->stream_arg, p, size * n) ? size * n : 0;
    }
    enum shoal_err err = shoal_buf_append(&r->body, p, size * n);
    if (err) {
        r->body_err = err;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    return size * n;
}

static void response_init(struct cli_response *r)
{
    r->status = 0;
    shoal_buf_init(&r->body, CLI_MAX_RESPONSE);
    r->body_err = SHOAL_OK;
    r->json = NULL;
    r->on_stream = NULL;
    r->stream_arg = NULL;
    r->curl = NULL;
}

static void response_fini(struct cli_response *r)
{
    shoal_buf_fini(&r->body);
    cJSON_Delete(r->json);
    r->json = NULL;
}

static int fail(struct cli_error *e, int code, const char *fmt, ...) SHOAL_PRINTF(3, 4);

static int fail(struct cli_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->exit = code;
    return code;
}

static void error_print(const struct cli_error *e)
{
    fprintf(stderr, "shoal: %s\n", e->msg);
    if (e->hint[0])
        fprintf(stderr, "%s\n", e->hint);
}

/* Turn a transport failure into words a user can act on. */
static int transport_error(struct cli *c, CURLcode rc, const char *errbuf,
                           const struct cli_response *r, struct cli_error *e)
{
    const char *where = cli_where(c);
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        if (os_errno == EACCES || os_errno == EPERM)
            return fail(e, CLI_EXIT_UNREACHABLE, "cannot connect to %s: permission denied", where);
        snprintf(e->hint, sizeof(e->hint), "start it with: shoald  (or: shoald --config FILE)");
        if (os_errno == ENOENT)
            return fail(e, CLI_EXIT_UNREACHABLE,
                        "no daemon is listening on %s (the socket does not exist)", where);
        return fail(e, CLI_EXIT_UNREACHABLE, "no daemon is listening on %s (%s)", where,
                    os_errno && os_errno != ECONNREFUSED ? strerror((int)os_errno)
                                                         : "connection refused");
    case CURLE_OPERATION_TIMEDOUT:
        return fail(e, CLI_EXIT_UNREACHABLE, "shoald at %s did not answer within %u.%03u s",
                    where, c->timeout_ms / 1000u, c->timeout_ms % 1000u);
    case CURLE_COULDNT_RESOLVE_HOST:
        return fail(e, CLI_EXIT_UNREACHABLE, "cannot resolve the host in %s", where);
    case CURLE_URL_MALFORMAT:
        return fail(e, CLI_EXIT_USAGE, "%s is not a URL shoal can use: %s", where,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
    case CURLE_FILESIZE_EXCEEDED:
        return fail(e, CLI_EXIT_ANSWER, "the answer from %s is larger than %u MiB", where,
                    CLI_MAX_RESPONSE >> 20);
    case CURLE_WRITE_ERROR:
        if (r->body_err == SHOAL_ERR_TOO_BIG)
            return fail(e, CLI_EXIT_ANSWER, "the answer from %s is larger than %u MiB", where,
                        CLI_MAX_RESPONSE >> 20);
        if (r->body_err == SHOAL_ERR_NOMEM)
            return fail(e, CLI_EXIT_ANSWER, "out of memory reading the answer from %s", where);
        break;
    case CURLE_GOT_NOTHING:
        return fail(e, CLI_EXIT_ANSWER, "%s closed the connection without answering", where);
    case CURLE_UNSUPPORTED_PROTOCOL: /* also an HTTP/0.9 answer; the scheme was checked */
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_BAD_CONTENT_ENCODING:
        return fail(e, CLI_EXIT_ANSWER, "malformed answer from %s: %s", where,
                    errbuf[0] ? errbuf : curl_easy_strerror(rc));
    default:
        break;
    }
    return fail(e, CLI_EXIT_ANSWER, "request to %s failed: %s", where,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* A non-2xx answer: the daemon's {"error":{"type","message"}} when it sent
 * one, else the bare status. */
static int http_error(struct cli *c, const struct cli_response *r, struct cli_error *e)
{
    cJSON *root = NULL;
    const char *type = NULL, *message = NULL;
    if (shoal_json_parse(r->body.data ? r->body.data : "", r->body.len, &root, NULL) == SHOAL_OK) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        shoal_json_get_str(err, "$.error", "type", true, &type, NULL);
        shoal_json_get_str(err, "$.error", "message", true, &message, NULL);
    }
    if (r->status == 401 && c->tcp)
        snprintf(e->hint, sizeof(e->hint), "%s",
                 c->token ? "check that $SHOAL_TOKEN matches the daemon's auth.token"
                          : "set $SHOAL_TOKEN to the daemon's auth.token");
    if (type && message) {
        char t[128], m[sizeof(e->msg) - 160];
        fail(e, CLI_EXIT_ANSWER, "%s: %s", clean(type, t, sizeof(t)),
             clean(message, m, sizeof(m)));
    } else {
        fail(e, CLI_EXIT_ANSWER, "shoald answered HTTP %ld without a JSON error body",
             r->status);
    }
    cJSON_Delete(root);
    return e->exit;
}

static struct curl_slist *build_headers(const struct cli *c, char *auth, size_t auth_n)
{
    struct curl_slist *h = NULL, *t;
    if (!(t = curl_slist_append(h, "Accept: application/json")))
        goto fail;
    h = t;
    if (c->tcp && c->token) {
        size_t len;
        const char *tok = shoal_secret_reveal(c->token, &len);
        if (len + 32 > auth_n)
            goto fail;
        snprintf(auth, auth_n, "Authorization: Bearer %s", tok);
        t = curl_slist_append(h, auth);
        if (!t)
            goto fail;
        h = t;
    }
    return h;
fail:
    curl_slist_free_all(h);
    return NULL;
}

/* GET path from the daemon. On success (a 2xx answer whose body is JSON)
 * fills r and returns 0; otherwise fills e and returns its exit code. The
 * caller owns r either way (response_fini). Prints nothing. */
static int cli_request(struct cli *c, const char *method, const char *path, const char *body,
                       size_t body_len, struct cli_response *r, struct cli_error *e)
{
    char url[1024];
    char auth[SHOAL_CAP_SECRET_FILE_BYTES + 64];
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    int rc;

    e->hint[0] = '\0';
    if ((rc = cli_resolve(c)) != CLI_EXIT_OK) {
        /* cli_resolve printed the why; keep the exit code. */
        e->msg[0] = '\0';
        e->exit = rc;
        return rc;
    }
    if (!c->curl && !(c->curl = curl_easy_init()))
        return fail(e, CLI_EXIT_ANSWER, "out of memory starting libcurl");
    curl_easy_reset(c->curl);

    /* With a Unix socket the host is never looked up; "localhost" only
     * fills the Host header. */
    snprintf(url, sizeof(url), "%s%s", c->tcp ? c->base_url : "http://localhost", path);
    if (!(headers = build_headers(c, auth, sizeof(auth))))
        return fail(e, CLI_EXIT_ANSWER, "out of memory building the request");

    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (!c->tcp)
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
    /* A proxy from the environment must never see a loopback request or
     * the token. */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "shoal/" SHOAL_VERSION);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)CLI_MAX_RESPONSE);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    r->curl = h;
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    CURLcode cc = curl_easy_perform(h);
    explicit_bzero(auth, sizeof(auth));
    curl_slist_free_all(headers);
    /* errbuf lives on this stack frame; libcurl must not keep pointing at it. */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (cc != CURLE_OK)
        return transport_error(c, cc, errbuf, r, e);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->status < 200 || r->status > 299)
        return http_error(c, r, e);
    if (r->on_stream)
        return CLI_EXIT_OK; /* the stream's reader judges what it got */

    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (shoal_json_parse(r->body.data ? r->body.data : "", r->body.len, &r->json, &d) !=
        SHOAL_OK) {
        char line[600];
        shoal_diag_format(&d, line, sizeof(line));
        return fail(e, CLI_EXIT_ANSWER, "malformed answer from %s (%s %s): %s", cli_where(c),
                    method, path, line);
    }
    return CLI_EXIT_OK;
}

static int cli_get(struct cli *c, const char *path, struct cli_response *r, struct cli_error *e)
{
    return cli_request(c, "GET", path, NULL, 0, r, e);
}

/* A 2xx answer whose JSON does not have the shape we need. */
static int bad_shape(struct cli *c, const char *path, const struct shoal_diag *d,
                     struct cli_error *e)
{
    char line[600];
    shoal_diag_format(d, line, sizeof(line));
    return fail(e, CLI_EXIT_ANSWER, "malformed answer from %s (GET %s): %s", cli_where(c), path,
                line);
}

/* Print a body as the daemon sent it, ending with exactly one newline. */
static void print_verbatim(const struct cli_response *r)
{
    fwrite(r->body.data, 1, r->body.len, stdout);
    if (r->body.len == 0 || r->body.data[r->body.len - 1] != '\n')
        fputc('\n', stdout);
}

/* ---- Command helpers ---- */

/* Accept the options every command takes (--json; --help is handled before
 * a command runs) and up to max_pos positional arguments, stored in pos. */
static int parse_command_args(struct cli *c, const struct cli_command *cmd, int argc, char **argv,
                              int max_pos, char **pos, int *n_pos)
{
    bool opts = true;
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (opts && strcmp(a, "--") == 0) {
            opts = false;
        } else if (opts && strcmp(a, "--json") == 0) {
            c->json = true;
        } else if (opts && a[0] == '-' && a[1] != '\0') {
            return usage_error(cmd, "unknown option '%s'", a);
        } else {
            if (*n_pos >= max_pos)
                return usage_error(cmd, "unexpected argument '%s'", a);
            pos[(*n_pos)++] = argv[i];
        }
    }
    return CLI_EXIT_OK;
}

/* What /v1/version tells us, checked. Strings point into r->json. */
struct daemon_version {
    const char *name, *version, *api, *socket, *tcp, *config;
    int64_t pid, uptime_ms;
};

static int read_version(struct cli *c, const struct cli_response *r, struct daemon_version *v,
                        struct cli_error *e)
{
    const char *path = "/v1/version";
    struct shoal_diag d;
    shoal_diag_clear(&d);
    const cJSON *root = r->json;
    const cJSON *listen = cJSON_GetObjectItemCaseSensitive(root, "listen");
    v->api = v->tcp = v->config = NULL;
    if (shoal_json_get_str(root, "$", "name", true, &v->name, &d) ||
        shoal_json_get_str(root, "$", "version", true, &v->version, &d) ||
        shoal_json_get_int(root, "$", "pid", true, 1, INT32_MAX, &v->pid, &d) ||
        shoal_json_get_int(root, "$", "uptime_ms", true, 0, INT64_MAX / 2, &v->uptime_ms, &d) ||
        shoal_json_get_str(listen, "$.listen", "socket", true, &v->socket, &d))
        return bad_shape(c, path, &d, e);
    /* Optional members: absent or null is fine, the wrong type is not. */
    if (shoal_json_get_str(root, "$", "api", false, &v->api, &d) == SHOAL_ERR_INVALID ||
        shoal_json_get_str(root, "$", "config", false, &v->config, &d) == SHOAL_ERR_INVALID ||
        shoal_json_get_str(listen, "$.listen", "tcp", false, &v->tcp, &d) == SHOAL_ERR_INVALID)
        return bad_shape(c, path, &d, e);
    return CLI_EXIT_OK;
}

/* ---- Commands ---- */

static int cmd_status(struct cli *c, int nargs, char **args)
{
    (void)nargs;
    (void)args;
    int rc;
    struct cli_response r;
    struct cli_error e;
    struct daemon_version v;
    response_init(&r);
    if ((rc = cli_get(c, "/v1/version", &r, &e)) || (rc = read_version(c, &r, &v, &e))) {
        if (e.msg[0])
            error_print(&e);
        response_fini(&r);
        return rc;
    }
    if (c->json) {
        print_verbatim(&r);
    } else {
        char a[256], b[256], up[32];
        format_uptime(v.uptime_ms, up, sizeof(up));
        printf("%s ", clean(v.name, a, sizeof(a)));
        printf("%s is running\n", clean(v.version, b, sizeof(b)));
        printf("  %-8s %" PRId64 "\n", "pid", v.pid);
        printf("  %-8s %s\n", "uptime", up);
        printf("  %-8s %s\n", "socket", clean(v.socket, a, sizeof(a)));
        printf("  %-8s %s\n", "tcp", v.tcp ? clean(v.tcp, a, sizeof(a)) : "off");
        printf("  %-8s %s\n", "config",
               v.config ? clean(v.config, a, sizeof(a)) : "(built-in defaults)");
    }
    response_fini(&r);
    return CLI_EXIT_OK;
}

static int cmd_health(struct cli *c, int nargs, char **args)
{
    (void)nargs;
    (void)args;
    int rc;
    struct cli_response r;
    struct cli_error e;
    response_init(&r);
    if ((rc = cli_get(c, "/healthz", &r, &e))) {
        if (e.msg[0])
            error_print(&e);
        response_fini(&r);
        return rc;
    }
    const char *status = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (shoal_json_get_str(r.json, "$", "status", true, &status, &d)) {
        bad_shape(c, "/healthz", &d, &e);
        error_print(&e);
        response_fini(&r);
        return CLI_EXIT_ANSWER;
    }
    if (c->json) {
        print_verbatim(&r);
        rc = strcmp(status, "ok") == 0 ? CLI_EXIT_OK : CLI_EXIT_ANSWER;
    } else if (strcmp(status, "ok") == 0) {
        puts("ok");
    } else {
        char s[256], why[256];
        fprintf(stderr, "shoal: shoald reports status '%s'\n", clean(status, s, sizeof(s)));
        /* Name the part that is not well, and why. */
        const struct cJSON *t = cJSON_GetObjectItemCaseSensitive(r.json, "traces");
        const char *ts = NULL, *te = NULL;
        if (t && shoal_json_get_str(t, "$.traces", "status", false, &ts, NULL) == SHOAL_OK &&
            strcmp(ts, "ok") != 0 && strcmp(ts, "disabled") != 0) {
            shoal_json_get_str(t, "$.traces", "error", false, &te, NULL);
            fprintf(stderr, "shoal: trace store: %s%s%s\n", clean(ts, s, sizeof(s)),
                    te ? ": " : "", te ? clean(te, why, sizeof(why)) : "");
        }
        rc = CLI_EXIT_ANSWER;
    }
    response_fini(&r);
    return rc;
}

static int tool_list(struct cli *c)
{
    struct cli_response r;
    struct cli_error e;
    response_init(&r);
    int rc = cli_get(c, "/v1/tools", &r, &e);
    if (rc) {
        if (e.msg[0])
            error_print(&e);
        response_fini(&r);
        return rc;
    }
    if (c->json) {
        print_verbatim(&r);
    } else {
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(r.json, "tools");
        const cJSON *t;
        cJSON_ArrayForEach(t, tools)
        {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(t, "function");
            const char *name = NULL, *desc = "";
            shoal_json_get_str(f, "$.function", "name", true, &name, NULL);
            shoal_json_get_str(f, "$.function", "description", false, &desc, NULL);
            char n[80], dsc[100];
            clean(name ? name : "?", n, sizeof(n));
            clean(desc, dsc, sizeof(dsc));
            printf("%-20s %s\n", n, dsc);
        }
    }
    response_fini(&r);
    return CLI_EXIT_OK;
}

static int tool_call(struct cli *c, const char *name, const char *json_arg)
{
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_') ||
            p - name >= 64)
            return usage_error(command_find("tool"), "'%s' is not a tool name", name);
    struct shoal_buf in;
    shoal_buf_init(&in, 16u << 20);
    const char *text = json_arg ? json_arg : "{}";
    size_t len = strlen(text);
    if (json_arg && !strcmp(json_arg, "-")) {
        char tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0)
            if (shoal_buf_append(&in, tmp, n) != SHOAL_OK)
                break;
        text = in.data ? in.data : "";
        len = in.len;
    }
    cJSON *args = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (shoal_json_parse(text, len, &args, &d) != SHOAL_OK || !cJSON_IsObject(args)) {
        char line[600];
        if (args)
            snprintf(line, sizeof(line), "expected a JSON object");
        else
            shoal_diag_format(&d, line, sizeof(line));
        cJSON_Delete(args);
        shoal_buf_fini(&in);
        return usage_error(command_find("tool"), "arguments: %s", line);
    }
    cJSON *body = cJSON_CreateObject();
    struct shoal_buf b;
    shoal_buf_init(&b, 32u << 20);
    int rc = CLI_EXIT_ANSWER;
    if (!body || !cJSON_AddItemToObject(body, "arguments", args) ||
        shoal_json_render(body, &b) != SHOAL_OK) {
        fputs("shoal: out of memory\n", stderr);
        goto out;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/tools/%s/call", name);
    struct cli_response r;
    struct cli_error e;
    response_init(&r);
    rc = cli_request(c, "POST", path, b.data, b.len, &r, &e);
    if (rc) {
        if (e.msg[0])
            error_print(&e);
    } else if (c->json) {
        print_verbatim(&r);
    } else {
        const cJSON *log = cJSON_GetObjectItemCaseSensitive(r.json, "log");
        const cJSON *ln;
        cJSON_ArrayForEach(ln, log)
        {
            char t[512];
            if (cJSON_IsString(ln))
                fprintf(stderr, "log: %s\n", clean(ln->valuestring, t, sizeof(t)));
        }
        struct shoal_buf out;
        shoal_buf_init(&out, 64u << 20);
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(r.json, "result");
        if (res && shoal_json_render_pretty(res, &out) == SHOAL_OK)
            printf("%s\n", shoal_buf_cstr(&out));
        shoal_buf_fini(&out);
    }
    response_fini(&r);
out:
    cJSON_Delete(body); /* owns args once added */
    if (!body)
        cJSON_Delete(args);
    shoal_buf_fini(&b);
    shoal_buf_fini(&in);
    return rc;
}

static int tool_check(const char *file)
{
    struct tools_report rep;
    tools_report_init(&rep);
    enum shoal_err err = tools_check_file(file, NULL, &rep);
    if (rep.text.len)
        fwrite(rep.text.data, 1, rep.text.len, stderr);
    if (err == SHOAL_OK)
        printf("%s: ok\n", file);
    tools_report_fini(&rep);
    return err == SHOAL_OK ? CLI_EXIT_OK : CLI_EXIT_ANSWER;
}

static int cmd_tool(struct cli *c, int nargs, char **args)
{
    const struct cli_command *cmd = command_find("tool");
    if (nargs == 0)
        return usage_error(cmd, "tool: say list, call NAME [ARGS_JSON] or check FILE");
    if (!strcmp(args[0], "list") && nargs == 1)
        return tool_list(c);
    if (!strcmp(args[0], "call") && (nargs == 2 || nargs == 3))
        return tool_call(c, args[1], nargs == 3 ? args[2] : NULL);
    if (!strcmp(args[0], "check") && nargs == 2)
        return tool_check(args[1]);
    return usage_error(cmd, "tool: unknown subcommand or wrong arguments '%s'", args[0]);
}

static int cmd_version(struct cli *c, int nargs, char **args)
{
    (void)nargs;
    (void)args;
    int rc;
    struct cli_response r;
    struct cli_error e;
    struct daemon_version v;
    response_init(&r);
    if (!c->json)
        printf("shoal  %s\n", SHOAL_VERSION);
    fflush(stdout); /* before any config report on stderr */
    rc = cli_get(c, "/v1/version", &r, &e);
    if (rc == CLI_EXIT_USAGE) {
        /* A broken config is worth stopping for even here: it is the
         * one shoald would refuse to start with. */
        if (e.msg[0])
            error_print(&e);
        response_fini(&r);
        return rc;
    }
    if (rc == CLI_EXIT_OK)
        rc = read_version(c, &r, &v, &e);

    if (c->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON *cli = cJSON_AddObjectToObject(out, "cli");
        cJSON_AddStringToObject(cli, "name", "shoal");
        cJSON_AddStringToObject(cli, "version", SHOAL_VERSION);
        if (rc == CLI_EXIT_OK) {
            cJSON_AddItemToObject(out, "daemon", r.json);
            r.json = NULL; /* now owned by out */
        } else {
            cJSON_AddNullToObject(out, "daemon");
            cJSON_AddStringToObject(out, "daemon_error", e.msg);
        }
        char *s = cJSON_PrintUnformatted(out);
        if (s) {
            puts(s);
            cJSON_free(s);
        }
        cJSON_Delete(out);
        if (!s) {
            fputs("shoal: out of memory\n", stderr);
            response_fini(&r);
            return CLI_EXIT_ANSWER;
        }
    } else {
        if (rc == CLI_EXIT_OK) {
            char a[256], b[64];
            printf("%-6s %s", clean(v.name, a, sizeof(a)), clean(v.version, b, sizeof(b)));
            if (v.api)
                printf(" (api %s)", clean(v.api, a, sizeof(a)));
            putchar('\n');
        } else {
            printf("shoald not reachable: %s\n", e.msg);
        }
    }
    response_fini(&r);
    return CLI_EXIT_OK;
}

static int unknown_command(const char *name)
{
    const char *near = command_suggest(name);
    if (near)
        return usage_error(NULL, "unknown command '%s' (did you mean '%s'?)", name, near);
    return usage_error(NULL, "unknown command '%s'", name);
}

/* ---- shoal chat ---- */

#define CHAT_MAX_STOPS    16
#define CHAT_TIMEOUT_MS   600000u /* a generation may take minutes */
#define CHAT_MAX_PROMPT   (8u << 20)

struct chat_opts {
    const char *model, *prompt, *system;
    const char *stops[CHAT_MAX_STOPS];
    size_t n_stops;
    const char *max_tokens, *temp, *top_p, *seed; /* as given, checked as numbers */
    bool stream;
};

struct chat_stream {
    struct remote_stream *s;
    uint64_t start_ms, first_ms;
    bool printed; /* text reached stdout */
};

static bool chat_on_text(void *arg, const char *text, size_t n)
{
    struct chat_stream *cs = arg;
    if (!cs->first_ms)
        cs->first_ms = shoal_now_ms();
    cs->printed = n > 0 || cs->printed;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    return true;
}

static bool chat_on_data(void *arg, const char *p, size_t n)
{
    struct chat_stream *cs = arg;
    return remote_stream_feed(cs->s, p, n);
}

/* A number option, added to the request as a JSON number. */
static bool chat_number(cJSON *req, const char *key, const char *text, double min, double max,
                        bool integer)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || v < min || v > max || (integer && v != (double)(int64_t)v))
        return false;
    return cJSON_AddNumberToObject(req, key, v) != NULL;
}

static int chat_parse(int argc, char **argv, struct chat_opts *o, bool *json)
{
    const struct cli_command *cmd = command_find("chat");
    bool opts = true;
    int npos = 0;
    o->stream = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (opts && !strcmp(a, "--")) {
            opts = false;
            continue;
        }
        if (opts && a[0] == '-' && a[1]) {
            if (!strcmp(a, "--json")) {
                *json = true;
                continue;
            }
            if (!strcmp(a, "--no-stream")) {
                o->stream = false;
                continue;
            }
            if (!strcmp(a, "--system"))
                slot = &o->system;
            else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens"))
                slot = &o->max_tokens;
            else if (!strcmp(a, "--temp"))
                slot = &o->temp;
            else if (!strcmp(a, "--top-p"))
                slot = &o->top_p;
            else if (!strcmp(a, "--seed"))
                slot = &o->seed;
            else if (!strcmp(a, "--stop")) {
                if (o->n_stops == CHAT_MAX_STOPS)
                    return usage_error(cmd, "at most %d --stop strings", CHAT_MAX_STOPS);
                slot = &o->stops[o->n_stops++];
            } else if (strcmp(a, "-") != 0) {
                return usage_error(cmd, "unknown option '%s'", a);
            }
            if (slot) {
                if (i + 1 >= argc)
                    return usage_error(cmd, "%s needs a value", a);
                *slot = argv[++i];
                continue;
            }
        }
        if (npos == 2)
            return usage_error(cmd, "unexpected argument '%s'", a);
        if (npos++ == 0)
            o->model = a;
        else
            o->prompt = a;
    }
    if (!o->model)
        return usage_error(cmd, "which model? (a name under models: in shoald's config)");
    return CLI_EXIT_OK;
}

/* The request body for o, with the prompt read from stdin when asked. */
static int chat_request(const struct chat_opts *o, bool stream, struct shoal_buf *body)
{
    const struct cli_command *cmd = command_find("chat");
    struct shoal_buf in;
    shoal_buf_init(&in, CHAT_MAX_PROMPT);
    const char *prompt = o->prompt;
    if (!prompt || !strcmp(prompt, "-")) {
        char tmp[65536];
        size_t n;
        while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0)
            if (shoal_buf_append(&in, tmp, n) != SHOAL_OK) {
                shoal_buf_fini(&in);
                return usage_error(cmd, "the prompt is over %u bytes", CHAT_MAX_PROMPT);
            }
        prompt = shoal_buf_cstr(&in);
    }
    int rc = CLI_EXIT_USAGE;
    cJSON *req = cJSON_CreateObject(), *msgs = NULL, *m = NULL;
    if (!req || !cJSON_AddStringToObject(req, "model", o->model) ||
        !(msgs = cJSON_AddArrayToObject(req, "messages")))
        goto oom;
    if (o->system) {
        if (!(m = cJSON_CreateObject()) || !cJSON_AddItemToArray(msgs, m) ||
            !cJSON_AddStringToObject(m, "role", "system") ||
            !cJSON_AddStringToObject(m, "content", o->system))
            goto oom;
    }
    if (!(m = cJSON_CreateObject()) || !cJSON_AddItemToArray(msgs, m) ||
        !cJSON_AddStringToObject(m, "role", "user") ||
        !cJSON_AddStringToObject(m, "content", prompt))
        goto oom;
    if (o->max_tokens && !chat_number(req, "max_tokens", o->max_tokens, 1, 1 << 24, true)) {
        usage_error(cmd, "-n: expected a count of tokens, got '%s'", o->max_tokens);
        goto out;
    }
    if (o->temp && !chat_number(req, "temperature", o->temp, 0, 2, false)) {
        usage_error(cmd, "--temp: expected 0..2, got '%s'", o->temp);
        goto out;
    }
    if (o->top_p && !chat_number(req, "top_p", o->top_p, 0, 1, false)) {
        usage_error(cmd, "--top-p: expected 0..1, got '%s'", o->top_p);
        goto out;
    }
    if (o->seed && !chat_number(req, "seed", o->seed, 0, 9007199254740991.0, true)) {
        usage_error(cmd, "--seed: expected a non-negative integer, got '%s'", o->seed);
        goto out;
    }
    if (o->n_stops) {
        cJSON *st = cJSON_AddArrayToObject(req, "stop");
        for (size_t i = 0; st && i < o->n_stops; i++)
            if (!cJSON_AddItemToArray(st, cJSON_CreateString(o->stops[i])))
                st = NULL;
        if (!st)
            goto oom;
    }
    if (stream) {
        cJSON *so = cJSON_AddObjectToObject(req, "stream_options");
        if (!cJSON_AddTrueToObject(req, "stream") || !so ||
            !cJSON_AddTrueToObject(so, "include_usage"))
            goto oom;
    }
    rc = shoal_json_render(req, body) == SHOAL_OK ? CLI_EXIT_OK : CLI_EXIT_ANSWER;
    if (rc)
        fputs("shoal: chat: the request is too large\n", stderr);
    goto out;
oom:
    fputs("shoal: out of memory\n", stderr);
    rc = CLI_EXIT_ANSWER;
out:
    cJSON_Delete(req);
    shoal_buf_fini(&in);
    return rc;
}

/* The last line on stderr: what the answer cost in tokens and time. */
static void chat_summary(const struct remote_result *res, uint64_t first_ms, uint64_t total_ms)
{
    char id[160];
    clean(res->id, id, sizeof(id));
    const char *run = !strncmp(id, "chatcmpl-", 9) ? id + 9 : id;
    fprintf(stderr, "%s: %lld prompt tokens (%lld reused), %lld generated; ",
            res->model[0] ? res->model : "?", (long long)res->usage.input_tokens,
            (long long)res->usage.cached_input_tokens, (long long)res->usage.output_tokens);
    if (first_ms)
        fprintf(stderr, "first token %llu ms, ", (unsigned long long)first_ms);
    fprintf(stderr, "%llu ms in all; finish: %s; run %s\n", (unsigned long long)total_ms,
            remote_finish_name(res->finish), run[0] ? run : "?");
}

static int cmd_chat(struct cli *c, int argc, char **argv)
{
    struct chat_opts o = {0};
    bool json = c->json;
    int rc = chat_parse(argc, argv, &o, &json);
    if (rc)
        return rc;
    bool stream = o.stream && !json;
    struct shoal_buf body;
    shoal_buf_init(&body, CHAT_MAX_PROMPT * 2 + 65536);
    if ((rc = chat_request(&o, stream, &body))) {
        shoal_buf_fini(&body);
        return rc;
    }
    if (!c->timeout_given)
        c->timeout_ms = CHAT_TIMEOUT_MS;
    struct chat_stream cs = {.start_ms = shoal_now_ms()};
    struct remote_stream_cb scb = {.on_text = chat_on_text, .arg = &cs};
    struct cli_response r;
    struct cli_error e;
    response_init(&r);
    if (stream) {
        if (remote_stream_new(REMOTE_PROVIDER_OPENAI, NULL, &scb, &cs.s) != SHOAL_OK) {
            fputs("shoal: out of memory\n", stderr);
            rc = CLI_EXIT_ANSWER;
            goto out;
        }
        r.on_stream = chat_on_data;
        r.stream_arg = &cs;
    }
    rc = cli_request(c, "POST", "/v1/chat/completions", body.data, body.len, &r, &e);
    if (rc) {
        if (cs.printed)
            fputc('\n', stdout);
        if (e.msg[0])
            error_print(&e);
        goto out;
    }
    if (json) {
        print_verbatim(&r);
        goto out;
    }
    struct remote_result res;
    struct remote_error err;
    remote_result_init(&res);
    remote_error_clear(&err);
    struct remote_reply rep = {.transport = REMOTE_TRANSPORT_OK, .status = r.status};
    if (stream)
        remote_stream_finish(cs.s, &rep, &res, &err);
    else
        remote_response_parse(REMOTE_PROVIDER_OPENAI, NULL, &rep, shoal_buf_cstr(&r.body),
                              r.body.len, &res, &err);
    if (!stream && res.text)
        fputs(res.text, stdout);
    if (cs.printed || (!stream && res.text && res.text[0]))
        fputc('\n', stdout);
    fflush(stdout);
    uint64_t total = shoal_now_ms() - cs.start_ms;
    if (err.kind != REMOTE_ERR_NONE) {
        char msg[600];
        fprintf(stderr, "shoal: chat: %s: %s\n", remote_error_kind_name(err.kind),
                clean(err.message, msg, sizeof(msg)));
        rc = CLI_EXIT_ANSWER;
    } else {
        chat_summary(&res, cs.first_ms ? cs.first_ms - cs.start_ms : 0, total);
    }
    remote_result_fini(&res);
out:
    remote_stream_free(cs.s);
    response_fini(&r);
    shoal_buf_fini(&body);
    return rc;
}

static int cmd_help(struct cli *c, int nargs, char **args)
{
    (void)c;
    if (nargs == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *target = command_find(args[0]);
    if (!target)
        return unknown_command(args[0]);
    print_command_usage(stdout, target, true);
    return CLI_EXIT_OK;
}

/* ---- main ---- */

/* Match "--name VALUE" or "--name=VALUE"; advances *i past a separate value. */
static bool take_value(int argc, char **argv, int *i, const char *name, const char **out,
                       int *rc)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        *out = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        *rc = usage_error(NULL, "option %s needs a value", name);
        return true;
    }
    *out = argv[++*i];
    return true;
}

static int run(struct cli *c, int argc, char **argv)
{
    int i = 1, rc = CLI_EXIT_OK;
    const char *timeout = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("shoal %s\n", SHOAL_VERSION);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (take_value(argc, argv, &i, "--socket", &c->opt_socket, &rc) ||
            take_value(argc, argv, &i, "--url", &c->opt_url, &rc) ||
            take_value(argc, argv, &i, "--config", &c->opt_config, &rc) ||
            take_value(argc, argv, &i, "--timeout", &timeout, &rc)) {
            if (rc)
                return rc;
            continue;
        }
        return usage_error(NULL, "unknown option '%s'", a);
    }
    if (timeout && shoal_parse_seconds_ms(timeout, 1, CLI_MAX_TIMEOUT, &c->timeout_ms) != SHOAL_OK)
        return usage_error(NULL, "--timeout: expected seconds such as 10 or 0.5, got '%s'",
                           timeout);
    c->timeout_given = timeout != NULL;
    if (c->opt_config && c->opt_config[0] == '\0')
        return usage_error(NULL, "--config needs a file name");
    if (i >= argc)
        return usage_error(NULL, "no command given");

    const char *name = argv[i];
    const struct cli_command *cmd = command_find(name);
    if (!cmd)
        return unknown_command(name);
    int cargc = argc - i - 1;
    char **cargv = argv + i + 1;
    for (int k = 0; k < cargc && strcmp(cargv[k], "--") != 0; k++) {
        if (strcmp(cargv[k], "--help") == 0 || strcmp(cargv[k], "-h") == 0) {
            print_command_usage(stdout, cmd, true);
            return CLI_EXIT_OK;
        }
    }
    if (cmd->main) {
        /* A global --json (shoal --json model inspect X) means the same as
         * the command's own --json, which these commands parse themselves. */
        if (!c->json)
            return cmd->main(cargc, cargv);
        char **with_json = calloc((size_t)cargc + 2, sizeof(*with_json));
        if (!with_json) {
            fputs("shoal: out of memory\n", stderr);
            return CLI_EXIT_ANSWER;
        }
        /* Before a "--", after which everything is operands. */
        int at = 0;
        while (at < cargc && strcmp(cargv[at], "--") != 0)
            at++;
        memcpy(with_json, cargv, (size_t)at * sizeof(*cargv));
        with_json[at] = "--json";
        memcpy(with_json + at + 1, cargv + at, (size_t)(cargc - at) * sizeof(*cargv));
        rc = cmd->main(cargc + 1, with_json);
        free(with_json);
        return rc;
    }
    if (cmd->own_options)
        return cmd->run(c, cargc, cargv);
    char *args[8];
    int nargs, max = cmd->max_args < (int)SHOAL_ARRAY_LEN(args) ? cmd->max_args
                                                                 : (int)SHOAL_ARRAY_LEN(args);
    if ((rc = parse_command_args(c, cmd, cargc, cargv, max, args, &nargs)))
        return rc;
    return cmd->run(c, nargs, args);
}

int main(int argc, char **argv)
{
    struct cli c = {.timeout_ms = CLI_DEFAULT_TIMEOUT};
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("shoal: cannot initialise libcurl\n", stderr);
        return CLI_EXIT_ANSWER;
    }
    int rc = run(&c, argc, argv);
    if (c.curl)
        curl_easy_cleanup(c.curl);
    shoal_secret_free(c.token);
    curl_global_cleanup();
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
        rc = CLI_EXIT_ANSWER;
    return rc;
}
