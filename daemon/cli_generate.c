/* cli_generate.c: `shoal generate`: run a local GGUF model in this process
 * and stream its continuation of a prompt (or, with --chat, of a
 * conversation rendered through the model's chat template) to stdout. It
 * uses only the engine's public API, the same code the daemon runs, and
 * reports prompt and generation speed on stderr. Exit codes as in cli.h. */
#include "cli.h"
#include "common.h"
#include "config.h"
#include "engine.h"
#include "fetch.h"
#include "remote_run.h"

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GEN_MAX_STOPS   8
#define GEN_MAX_PROMPT  (16u * 1024u * 1024u) /* bytes of prompt text */
#define GEN_MAX_TOKENS  (1u << 20)

static const char usage[] =
    "usage: shoal generate --model FILE|NAME (-p PROMPT | --chat MESSAGES.json) [-n N]\n"
    "                      [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
    "                      [--repeat-penalty R] [--seed S] [--stop S]... [--ctx N]\n"
    "                      [--threads N] [--kv-f32] [--logprobs N] [--config FILE]\n"
    "\n"
    "--model takes a GGUF file, or the NAME of a model under models: in the\n"
    "configuration (--config FILE, else the file shoald would load). A remote model\n"
    "(provider: openai or anthropic) is called over HTTP with the prompt as one user\n"
    "message (--chat: the messages as they are); usage, cost and timing go to stderr.\n"
    "Stream the model's continuation to stdout; timing goes to stderr.\n"
    "  -p, --prompt TEXT    plain text (BOS added as the model says; special-token\n"
    "                       text stays plain text); - reads standard input\n"
    "  --chat FILE          a JSON array of OpenAI-style messages (or - for stdin),\n"
    "                       rendered with the model's chat template and an\n"
    "                       assistant header\n"
    "  -n, --max-tokens N   stop after N generated tokens (default 256)\n"
    "  --temp T             0 is greedy (default 0.8); --top-k (40), --top-p (0.95),\n"
    "                       --min-p (0.05), --repeat-penalty (1.0, off)\n"
    "  --seed S             same seed, same output (default 0)\n"
    "  --stop S             stop before the first occurrence of S (up to 8)\n"
    "  --ctx N              context size in tokens (default: the model's, at most 4096)\n"
    "  --threads N          compute threads (default: physical cores)\n"
    "  --kv-f32             keep the K/V cache in F32 instead of F16\n"
    "  --logprobs N         after the text, print each token's log-probability and\n"
    "                       its N best alternatives to stderr\n";

struct opts {
    const char *model, *prompt, *chat, *config;
    uint32_t n_predict, n_ctx, n_threads, n_logprobs;
    bool kv_f32;
    bool has_n, has_temp, has_top_p, has_seed; /* given, for a remote request */
    struct engine_sampler_params sp;
    const char *stops[GEN_MAX_STOPS];
    size_t n_stops;
};

static bool num_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    int64_t v;
    if (shoal_parse_i64(s, strlen(s), min, max, &v) != SHOAL_OK)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool num_f(const char *s, float min, float max, float *out)
{
    char *end = NULL;
    float v = strtof(s, &end);
    if (!*s || *end || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    engine_sampler_params_default(&o->sp);
    o->n_predict = 256;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
        uint32_t u = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(a, "--kv-f32")) {
            o->kv_f32 = true;
            takes = false;
        } else if (!v) {
            return cli_usage_error(usage, "generate: unknown or incomplete option '%s'", a);
        } else if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            o->prompt = v;
        } else if (!strcmp(a, "--chat")) {
            o->chat = v;
        } else if (!strcmp(a, "--config")) {
            o->config = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) {
            ok = num_u32(v, 1, GEN_MAX_TOKENS, &o->n_predict);
            o->has_n = true;
        } else if (!strcmp(a, "--temp")) {
            ok = num_f(v, 0, 100, &o->sp.temperature);
            o->has_temp = true;
        } else if (!strcmp(a, "--top-k")) {
            ok = num_u32(v, 0, 1u << 20, &u);
            o->sp.top_k = (int32_t)u;
        } else if (!strcmp(a, "--top-p")) {
            ok = num_f(v, 1e-6f, 1, &o->sp.top_p);
            o->has_top_p = true;
        } else if (!strcmp(a, "--min-p")) {
            ok = num_f(v, 0, 1, &o->sp.min_p);
        } else if (!strcmp(a, "--repeat-penalty")) {
            ok = num_f(v, 1e-3f, 100, &o->sp.repeat_penalty);
        } else if (!strcmp(a, "--seed")) {
            int64_t sv;
            ok = shoal_parse_i64(v, strlen(v), 0, INT64_MAX, &sv) == SHOAL_OK;
            o->sp.seed = (uint64_t)sv;
            o->has_seed = true;
        } else if (!strcmp(a, "--stop")) {
            ok = o->n_stops < GEN_MAX_STOPS && *v;
            if (ok)
                o->stops[o->n_stops++] = v;
        } else if (!strcmp(a, "--ctx")) {
            ok = num_u32(v, 16, 1u << 20, &o->n_ctx);
        } else if (!strcmp(a, "--threads")) {
            ok = num_u32(v, 1, 256, &o->n_threads);
        } else if (!strcmp(a, "--logprobs")) {
            ok = num_u32(v, 0, 20, &o->n_logprobs);
            o->sp.n_logprobs = o->n_logprobs;
        } else {
            return cli_usage_error(usage, "generate: unknown option '%s'", a);
        }
        if (!ok)
            return cli_usage_error(usage, "generate: bad value for %s: '%s'", a, v);
        if (takes)
            i++;
    }
    if (!o->model)
        return cli_usage_error(usage, "generate: --model FILE is required");
    if (!o->prompt == !o->chat)
        return cli_usage_error(usage, "generate: give exactly one of -p PROMPT and --chat FILE");
    return 0;
}

static int read_all(const char *path, struct shoal_buf *b)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "shoal: generate: cannot open %s\n", path);
        return 1;
    }
    char tmp[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (shoal_buf_append(b, tmp, n) != SHOAL_OK) {
            fprintf(stderr, "shoal: generate: %s is larger than %u bytes\n", path,
                    GEN_MAX_PROMPT);
            rc = 1;
            break;
        }
    if (!rc && ferror(f)) {
        fprintf(stderr, "shoal: generate: cannot read %s\n", path);
        rc = 1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static void print_diag(const char *what, const struct shoal_diag *d)
{
    char msg[1024];
    shoal_diag_format(d, msg, sizeof(msg));
    fprintf(stderr, "shoal: generate: %s: %s\n", what, msg);
}

/* The chat prompt: the model's template over the messages in path, with
 * the assistant header, as tokens. */
static int chat_prompt(const struct engine_model *m, const char *path, struct engine_tokens *out)
{
    struct shoal_buf raw;
    shoal_buf_init(&raw, GEN_MAX_PROMPT);
    int rc = read_all(path, &raw);
    cJSON *msgs = NULL;
    struct engine_template *t = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (rc)
        goto out;
    rc = 1;
    if (shoal_json_parse(raw.data, raw.len, &msgs, &d) != SHOAL_OK) {
        print_diag(path, &d);
        goto out;
    }
    if (!cJSON_IsArray(msgs)) {
        fprintf(stderr, "shoal: generate: %s: expected a JSON array of messages\n", path);
        goto out;
    }
    bool fallback = false;
    if (engine_model_template(m, &t, &fallback, &d) != SHOAL_OK) {
        print_diag("chat template", &d);
        goto out;
    }
    struct engine_chat chat = {.messages = msgs, .add_generation_prompt = true};
    if (engine_chat_tokenize(m, t, &chat, NULL, out, &d) != SHOAL_OK) {
        print_diag("chat template", &d);
        goto out;
    }
    rc = 0;
out:
    engine_template_free(t);
    cJSON_Delete(msgs);
    shoal_buf_fini(&raw);
    return rc;
}

/* --model as a file when it looks like one (a slash, .gguf, or an existing
 * path), else a name under models: in the configuration. *ctx gets the
 * configured context (0 when none). A remote model leaves its loaded
 * configuration (with that model's key resolved) in *remote (the caller
 * frees it); else *remote stays NULL. Prints why on failure. */
static int resolve_model(const char *arg, const char *config_arg, char *out, size_t n,
                         uint32_t *ctx, struct config **remote)
{
    size_t len = strlen(arg);
    *ctx = 0;
    if (strchr(arg, '/') || (len > 5 && !strcmp(arg + len - 5, ".gguf")) ||
        access(arg, F_OK) == 0) {
        if (!shoal_strlcpy(out, arg, n)) {
            fputs("shoal: generate: model path too long\n", stderr);
            return 1;
        }
        return 0;
    }
    char path[4096];
    bool found = false;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (config_find(config_arg, path, sizeof(path), &found, &d) != SHOAL_OK) {
        print_diag("configuration", &d);
        return 2;
    }
    if (!found) {
        fprintf(stderr,
                "shoal: generate: '%s' is neither a file nor a model name (no configuration "
                "file found to look it up in)\n",
                arg);
        return 1;
    }
    struct config *cfg = NULL;
    struct config_report rep;
    config_report_init(&rep);
    if (config_load_file_model(path, arg, &cfg, &rep) != SHOAL_OK) {
        config_report_print(&rep, 2);
        config_report_fini(&rep);
        return 2;
    }
    config_report_fini(&rep);
    const struct config_model *m = config_model_find(cfg, arg);
    int rc = 0;
    if (!m) {
        fprintf(stderr, "shoal: generate: no model named '%s' in %s (models:", arg, path);
        for (size_t i = 0; i < cfg->n_models; i++)
            fprintf(stderr, " %s", cfg->models[i].name);
        fputs(cfg->n_models ? ")\n" : " none)\n", stderr);
        rc = 1;
    } else if (m->provider != CONFIG_PROVIDER_LOCAL) {
        *remote = cfg;
        return 0;
    } else if (!shoal_strlcpy(out, m->path, n)) {
        rc = 1;
    } else {
        *ctx = m->context;
    }
    config_free(cfg);
    return rc;
}

/* ---- Remote models ---- */

struct remote_gen {
    struct event_base *base;
    bool done, ok, wrote, ends_nl;
    struct remote_error err;
    struct provider_stats st;
    int64_t in, out, cached;
    char finish[32], request_id[128];
};

static void remote_on_text(void *arg, const char *text, size_t n)
{
    struct remote_gen *g = arg;
    if (n == 0)
        return;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    g->wrote = true;
    g->ends_nl = text[n - 1] == '\n';
}

static void remote_on_done(void *arg, const struct remote_result *res,
                           const struct remote_error *err, const struct provider_stats *st)
{
    struct remote_gen *g = arg;
    g->done = true;
    g->ok = err == NULL;
    if (err)
        g->err = *err;
    g->st = *st;
    g->in = res->usage.input_tokens;
    g->out = res->usage.output_tokens;
    g->cached = res->usage.cached_input_tokens;
    shoal_strlcpy(g->finish, remote_finish_name(res->finish), sizeof(g->finish));
    shoal_strlcpy(g->request_id, res->request_id[0] ? res->request_id : "-",
                  sizeof(g->request_id));
    event_base_loopbreak(g->base);
}

/* The OpenAI-format request: the prompt as one user message, or --chat's
 * messages, with the sampling options that were given. NULL on failure
 * (printed). */
static cJSON *remote_chat_request(const struct opts *o)
{
    cJSON *req = cJSON_CreateObject(), *msgs = NULL;
    struct shoal_buf raw;
    shoal_buf_init(&raw, GEN_MAX_PROMPT);
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (!req)
        goto nomem;
    if (o->chat) {
        if (read_all(o->chat, &raw))
            goto fail;
        if (shoal_json_parse(raw.data ? raw.data : "", raw.len, &msgs, &d) != SHOAL_OK) {
            print_diag(o->chat, &d);
            goto fail;
        }
        if (!cJSON_IsArray(msgs)) {
            fprintf(stderr, "shoal: generate: %s: expected a JSON array of messages\n", o->chat);
            goto fail;
        }
    } else {
        if (!strcmp(o->prompt, "-")) {
            if (read_all("-", &raw))
                goto fail;
        } else if (shoal_buf_puts(&raw, o->prompt) != SHOAL_OK) {
            fputs("shoal: generate: prompt too long\n", stderr);
            goto fail;
        }
        cJSON *m = cJSON_CreateObject();
        msgs = cJSON_CreateArray();
        if (!m || !msgs || !cJSON_AddItemToArray(msgs, m) ||
            !cJSON_AddStringToObject(m, "role", "user") ||
            !cJSON_AddStringToObject(m, "content", raw.data ? shoal_buf_cstr(&raw) : ""))
            goto nomem;
    }
    cJSON_AddItemToObject(req, "messages", msgs);
    msgs = NULL;
    if (o->has_n)
        cJSON_AddNumberToObject(req, "max_tokens", o->n_predict);
    if (o->has_temp)
        cJSON_AddNumberToObject(req, "temperature", (double)o->sp.temperature);
    if (o->has_top_p)
        cJSON_AddNumberToObject(req, "top_p", (double)o->sp.top_p);
    if (o->has_seed)
        cJSON_AddNumberToObject(req, "seed", (double)o->sp.seed);
    if (o->n_stops) {
        cJSON *st = cJSON_AddArrayToObject(req, "stop");
        for (size_t i = 0; st && i < o->n_stops; i++)
            cJSON_AddItemToArray(st, cJSON_CreateString(o->stops[i]));
    }
    shoal_buf_fini(&raw);
    return req;
nomem:
    fputs("shoal: generate: out of memory\n", stderr);
fail:
    cJSON_Delete(msgs);
    cJSON_Delete(req);
    shoal_buf_fini(&raw);
    return NULL;
}

/* Call remote model m, streaming its text to stdout; the usage, cost and
 * timing line (or the typed error) to stderr. */
static int generate_remote(const struct opts *o, const struct config_model *m)
{
    struct remote_gen g;
    memset(&g, 0, sizeof(g));
    struct shoal_diag d;
    shoal_diag_clear(&d);
    struct fetch *f = NULL;
    int rc = 1;
    cJSON *req = remote_chat_request(o);
    if (!req)
        return 1;
    g.base = event_base_new();
    if (!g.base) {
        fputs("shoal: generate: cannot create an event loop\n", stderr);
        goto out;
    }
    if (fetch_new(g.base, &f, &d) != SHOAL_OK) {
        print_diag("http", &d);
        goto out;
    }
    struct provider_cb cb = {.on_text = remote_on_text, .on_done = remote_on_done, .arg = &g};
    if (remote_run_start(g.base, f, m, req, true, &cb, NULL, &d) != SHOAL_OK) {
        print_diag(m->name, &d);
        goto out;
    }
    while (!g.done && event_base_dispatch(g.base) == 0)
        ;
    if (g.wrote && !g.ends_nl)
        fputc('\n', stdout);
    fflush(stdout);
    if (!g.done) {
        fputs("shoal: generate: the event loop ended before the answer\n", stderr);
        goto out;
    }
    if (!g.ok) {
        fprintf(stderr, "shoal: generate: %s: %s", remote_error_kind_name(g.err.kind),
                g.err.message);
        if (g.err.retry_after_ms >= 0 && g.err.kind == REMOTE_ERR_RATE_LIMITED)
            fprintf(stderr, " (retry after %lld s)",
                    (long long)((g.err.retry_after_ms + 999) / 1000));
        if (g.err.partial)
            fputs(" (the output above is partial)", stderr);
        fputc('\n', stderr);
        goto out;
    }
    fprintf(stderr,
            "usage: input %lld tokens, output %lld tokens, cached %lld tokens; cost: $%.8f; "
            "first token: %llu ms; total: %llu ms; attempts: %u; finish: %s; request id: %s\n",
            (long long)g.in, (long long)g.out, (long long)g.cached, g.st.cost_usd,
            (unsigned long long)g.st.first_token_ms, (unsigned long long)g.st.total_ms,
            (unsigned)g.st.attempts, g.finish, g.request_id);
    rc = 0;
out:
    fetch_free(f);
    if (g.base)
        event_base_free(g.base);
    cJSON_Delete(req);
    return rc;
}

/* What the local generation loop reports back to the terminal. */
struct local_gen {
    const struct engine_vocab *v;
    uint32_t n_logprobs;
    int32_t *ids; /* per token, for --logprobs */
    struct engine_token_info *infos;
    uint32_t n, cap;
};

static bool local_on_text(void *arg, const char *text, size_t n)
{
    (void)arg;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    return true;
}

static bool local_on_token(void *arg, int32_t id, const struct engine_token_info *info)
{
    struct local_gen *g = arg;
    if (g->n < g->cap) {
        g->ids[g->n] = id;
        g->infos[g->n] = *info;
        g->n++;
    }
    return true;
}

int cli_generate_main(int argc, char **argv)
{
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    struct engine_model *m = NULL;
    struct engine_llm *l = NULL;
    struct engine_seq *seq = NULL;
    struct engine_sampler *smp = NULL;
    struct engine_tokens toks;
    struct shoal_buf text;
    struct local_gen g = {.n_logprobs = o.n_logprobs};
    engine_tokens_init(&toks, GEN_MAX_TOKENS);
    shoal_buf_init(&text, GEN_MAX_PROMPT);
    char model_path[4096];
    uint32_t cfg_ctx = 0;
    struct config *remote = NULL;
    rc = resolve_model(o.model, o.config, model_path, sizeof(model_path), &cfg_ctx, &remote);
    if (rc)
        goto out;
    if (remote) {
        rc = generate_remote(&o, config_model_find(remote, o.model));
        config_free(remote);
        goto out;
    }
    rc = 1;
    if (engine_model_open(model_path, &m, &d) != SHOAL_OK) {
        print_diag(model_path, &d);
        goto out;
    }
    const struct engine_vocab *v = engine_model_vocab(m);
    if (!v) {
        fprintf(stderr, "shoal: generate: %s has no tokenizer\n", o.model);
        goto out;
    }
    g.v = v;
    if (engine_llm_new(m, &l, &d) != SHOAL_OK) {
        print_diag(o.model, &d);
        goto out;
    }
    if (o.chat) {
        if (chat_prompt(m, o.chat, &toks))
            goto out;
    } else {
        if (!strcmp(o.prompt, "-")) {
            if (read_all("-", &text))
                goto out;
        } else if (shoal_buf_puts(&text, o.prompt) != SHOAL_OK) {
            fputs("shoal: generate: prompt too long\n", stderr);
            goto out;
        }
        if (engine_tokenize(v, text.data ? text.data : "", text.len, true, false, &toks) !=
            SHOAL_OK) {
            fputs("shoal: generate: cannot tokenize the prompt (too long)\n", stderr);
            goto out;
        }
    }
    if (toks.n == 0) {
        fputs("shoal: generate: the prompt is empty\n", stderr);
        goto out;
    }
    const struct engine_hparams *hp = engine_llm_hparams(l);
    uint32_t n_ctx = o.n_ctx     ? o.n_ctx
                     : cfg_ctx   ? cfg_ctx
                                 : (hp->context_length && hp->context_length < 4096
                                              ? hp->context_length
                                              : 4096);
    struct engine_seq_options so = {.n_ctx = n_ctx, .n_threads = o.n_threads, .kv_f32 = o.kv_f32};
    if (engine_seq_new(l, &so, &seq, &d) != SHOAL_OK) {
        print_diag("context", &d);
        goto out;
    }
    if (engine_sampler_new(&o.sp, hp->n_vocab, &smp, &d) != SHOAL_OK) {
        print_diag("sampler", &d);
        goto out;
    }
    if (o.n_logprobs) {
        g.cap = o.n_predict;
        g.ids = calloc(g.cap, sizeof(*g.ids));
        g.infos = calloc(g.cap, sizeof(*g.infos));
        if (!g.ids || !g.infos) {
            fputs("shoal: generate: out of memory\n", stderr);
            goto out;
        }
    }
    struct engine_gen_params gp = {.max_tokens = o.n_predict, .stops = o.stops,
                                   .n_stops = o.n_stops, .on_text = local_on_text,
                                   .on_token = local_on_token, .arg = &g};
    struct engine_gen_stats st;
    enum shoal_err e = engine_generate(seq, smp, v, toks.ids, toks.n, &gp, &st, &d);
    fputc('\n', stdout);
    fflush(stdout);
    if (e) {
        print_diag(e == SHOAL_ERR_TOO_BIG ? "prompt (use --ctx)" : "generation", &d);
        goto out;
    }
    for (uint32_t i = 0; i < g.n; i++) {
        size_t pl = 0;
        const char *p = engine_vocab_piece(v, g.ids[i], &pl);
        fprintf(stderr, "%5d %-16.*s %8.4f |", g.ids[i], (int)(pl > 16 ? 16 : pl), p,
                (double)g.infos[i].logprob);
        for (uint32_t k = 0; k < g.infos[i].n_top; k++)
            fprintf(stderr, " %d:%.3f", g.infos[i].top[k].id, (double)g.infos[i].top[k].logprob);
        fputc('\n', stderr);
    }
    double pt = (double)st.prompt_us / 1e3, gt = (double)(st.total_us - st.prompt_us) / 1e3;
    fprintf(stderr,
            "prompt: %u tokens in %.1f ms (%.1f tok/s); generation: %u tokens in %.1f ms "
            "(%.1f tok/s); stop: %s\n",
            st.n_prompt, pt, pt > 0 ? st.n_prompt / (pt / 1e3) : 0.0, st.n_gen, gt,
            st.n_gen && gt > 0 ? st.n_gen / (gt / 1e3) : 0.0, engine_finish_name(st.finish));
    rc = 0;
out:
    free(g.ids);
    free(g.infos);
    engine_sampler_free(smp);
    engine_seq_free(seq);
    engine_llm_free(l);
    engine_model_close(m);
    engine_tokens_fini(&toks);
    shoal_buf_fini(&text);
    return rc;
}

/* ---- shoal logits ---- */

static const char logits_usage[] =
    "usage: shoal logits --model FILE --tokens ID,ID,... [--top K] [--json] [--threads N]\n"
    "                    [--kv-f32]\n"
    "\n"
    "Feed the token ids (comma or space separated; BOS is not added) in one batch and\n"
    "print, for every position, the K most likely next tokens with their logits\n"
    "(default 10), sorted by logit, ties by id. --json prints\n"
    "{\"tokens\": [...], \"positions\": [[[id, logit], ...], ...]}.\n";

struct idlogit {
    int32_t id;
    float logit;
};

static int idlogit_cmp(const void *a, const void *b)
{
    const struct idlogit *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int cli_logits_main(int argc, char **argv)
{
    const char *model = NULL, *tokens = NULL;
    uint32_t top = 10, threads = 0;
    bool json = false, kv_f32 = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(logits_usage, stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--kv-f32")) {
            kv_f32 = true;
        } else if (v && (!strcmp(a, "--model") || !strcmp(a, "-m"))) {
            model = argv[++i];
        } else if (v && !strcmp(a, "--tokens")) {
            tokens = argv[++i];
        } else if (v && !strcmp(a, "--top")) {
            if (!num_u32(argv[++i], 1, 1000, &top))
                return cli_usage_error(logits_usage, "logits: --top must be 1..1000");
        } else if (v && !strcmp(a, "--threads")) {
            if (!num_u32(argv[++i], 1, 256, &threads))
                return cli_usage_error(logits_usage, "logits: --threads must be 1..256");
        } else {
            return cli_usage_error(logits_usage, "logits: unknown or incomplete option '%s'", a);
        }
    }
    if (!model || !tokens)
        return cli_usage_error(logits_usage, "logits: --model FILE and --tokens IDS are required");
    size_t cap = strlen(tokens) / 2 + 2, n = 0;
    int32_t *ids = calloc(cap, sizeof(int32_t));
    if (!ids)
        return 1;
    for (const char *p = tokens; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        int64_t v;
        if (shoal_parse_i64(p, (size_t)(e - p), 0, INT32_MAX, &v) != SHOAL_OK || n == cap) {
            free(ids);
            return cli_usage_error(logits_usage, "logits: '%.*s' is not a token id",
                                   (int)(e - p > 20 ? 20 : e - p), p);
        }
        ids[n++] = (int32_t)v;
        p = e;
    }
    if (n == 0) {
        free(ids);
        return cli_usage_error(logits_usage, "logits: no token ids given");
    }
    struct shoal_diag d;
    shoal_diag_clear(&d);
    struct engine_model *m = NULL;
    struct engine_llm *l = NULL;
    struct engine_seq *seq = NULL;
    struct idlogit *row = NULL;
    int rc = 1;
    if (engine_model_open(model, &m, &d) != SHOAL_OK || engine_llm_new(m, &l, &d) != SHOAL_OK) {
        print_diag(model, &d);
        goto out;
    }
    const struct engine_hparams *hp = engine_llm_hparams(l);
    struct engine_seq_options so = {.n_ctx = (uint32_t)n, .n_batch = (uint32_t)n,
                                    .n_threads = threads, .kv_f32 = kv_f32};
    if (engine_seq_new(l, &so, &seq, &d) != SHOAL_OK ||
        engine_seq_decode(seq, ids, n, true, &d) != SHOAL_OK) {
        print_diag("decode", &d);
        goto out;
    }
    if (top > hp->n_vocab)
        top = hp->n_vocab;
    row = malloc(hp->n_vocab * sizeof(*row));
    if (!row)
        goto out;
    if (json) {
        printf("{\"tokens\":[");
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? "," : "", ids[i]);
        printf("],\"positions\":[");
    }
    for (size_t i = 0; i < n; i++) {
        const float *lg = engine_seq_logits(seq, i);
        for (uint32_t k = 0; k < hp->n_vocab; k++)
            row[k] = (struct idlogit){(int32_t)k, lg[k]};
        qsort(row, hp->n_vocab, sizeof(*row), idlogit_cmp);
        if (json) {
            printf("%s[", i ? "," : "");
            for (uint32_t k = 0; k < top; k++)
                printf("%s[%d,%.9g]", k ? "," : "", row[k].id, (double)row[k].logit);
            printf("]");
        } else {
            printf("%zu (token %d):", i, ids[i]);
            for (uint32_t k = 0; k < top; k++)
                printf(" %d:%.5f", row[k].id, (double)row[k].logit);
            printf("\n");
        }
    }
    if (json)
        printf("]}\n");
    rc = 0;
out:
    free(row);
    free(ids);
    engine_seq_free(seq);
    engine_llm_free(l);
    engine_model_close(m);
    return rc;
}
