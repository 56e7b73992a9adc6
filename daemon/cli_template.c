/* cli_template.c: `shoal template render`: render a chat template (a
 * model's, or a Jinja file) for a conversation in a JSON file and print the
 * prompt byte for byte, for people debugging prompts. Only the engine's
 * public API is used, so it renders exactly what the daemon renders. Exit
 * codes as in cli.h: 0 ok, 1 model, template or input rejected, 2 usage. */
#include "cli.h"
#include "common.h"
#include "engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_MAX_FILE   (64u * 1024u * 1024u) /* --messages/--tools/--vars/--template */
#define TEMPLATE_MAX_OUTPUT (64u * 1024u * 1024u)

static const char usage[] =
    "usage: shoal template render (--model FILE | --template FILE.jinja) --messages FILE.json\n"
    "           [--tools FILE.json] [--vars FILE.json] [--generation-prompt] [--bos S] [--eos S]\n"
    "           [--now SECONDS] [--json]\n";

/* Read a whole file ("-" is standard input) into b. */
static int read_all(const char *path, struct shoal_buf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "shoal: %s: cannot open: ", path);
        perror(NULL);
        return 1;
    }
    char tmp[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        if (shoal_buf_append(b, tmp, n) != SHOAL_OK) {
            fprintf(stderr, "shoal: %s: larger than %u bytes\n", path, TEMPLATE_MAX_FILE);
            rc = 1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        fprintf(stderr, "shoal: %s: read error\n", path);
        rc = 1;
    }
    if (f != stdin)
        fclose(f);
    return rc;
}

static int read_json(const char *path, cJSON **out)
{
    struct shoal_buf b;
    shoal_buf_init(&b, TEMPLATE_MAX_FILE);
    int rc = read_all(path, &b);
    if (rc == 0) {
        struct shoal_diag d;
        shoal_diag_clear(&d);
        if (shoal_json_parse(shoal_buf_cstr(&b), b.len, out, &d) != SHOAL_OK) {
            fprintf(stderr, "shoal: %s: byte %lld: %s\n", path, (long long)d.offset, d.msg);
            rc = 1;
        }
    }
    shoal_buf_fini(&b);
    return rc;
}

static void print_error(const struct shoal_diag *d)
{
    if (d->line)
        fprintf(stderr, "shoal: template error at %u:%u: %s\n", d->line, d->col ? d->col : 1,
                d->msg);
    else
        fprintf(stderr, "shoal: template error: %s\n", d->msg);
}

/* The text of a special token, or "" when the vocabulary has none. */
static const char *token_text(const struct engine_vocab *v, int32_t id, char *buf, size_t n)
{
    size_t len = 0;
    const char *p = v && id >= 0 ? engine_vocab_text(v, id, &len) : NULL;
    if (!p || len >= n)
        return "";
    memcpy(buf, p, len);
    buf[len] = 0;
    return buf;
}

struct opts {
    const char *model, *tmpl, *messages, *tools, *vars, *bos, *eos;
    const char *now; /* --now: seconds since the epoch for strftime_now() */
    int64_t now_s;
    bool gen, json;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    if (argc < 1 || strcmp(argv[0], "render") != 0)
        return argc < 1
                   ? cli_usage_error(usage, "%s", "template: expected the subcommand 'render'")
                   : cli_usage_error(usage, "template: unknown subcommand '%s' (expected 'render')",
                                     argv[0]);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (!strcmp(a, "--generation-prompt")) {
            o->gen = true;
            continue;
        }
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        if (!strcmp(a, "--model"))
            slot = &o->model;
        else if (!strcmp(a, "--template"))
            slot = &o->tmpl;
        else if (!strcmp(a, "--messages"))
            slot = &o->messages;
        else if (!strcmp(a, "--tools"))
            slot = &o->tools;
        else if (!strcmp(a, "--vars"))
            slot = &o->vars;
        else if (!strcmp(a, "--bos"))
            slot = &o->bos;
        else if (!strcmp(a, "--eos"))
            slot = &o->eos;
        else if (!strcmp(a, "--now"))
            slot = &o->now;
        else
            return cli_usage_error(usage, "template: unknown option '%s'", a);
        if (i + 1 >= argc)
            return cli_usage_error(usage, "template: %s needs a value", a);
        if (*slot)
            return cli_usage_error(usage, "template: %s given twice", a);
        *slot = argv[++i];
    }
    if (!o->model == !o->tmpl)
        return cli_usage_error(usage, "template: %s",
                               "give exactly one of --model FILE and --template FILE.jinja");
    /* Up to the end of year 9999, which strftime still prints in 4 digits. */
    if (o->now && shoal_parse_i64(o->now, strlen(o->now), 0, 253402300799, &o->now_s) != SHOAL_OK)
        return cli_usage_error(
            usage, "template: --now: expected seconds since 1970-01-01 UTC, got '%s'", o->now);
    if (!o->messages)
        return cli_usage_error(usage, "template: %s", "--messages FILE.json is required");
    int stdin_users = !strcmp(o->messages, "-") + (o->tools && !strcmp(o->tools, "-")) +
                      (o->vars && !strcmp(o->vars, "-")) + (o->tmpl && !strcmp(o->tmpl, "-"));
    if (stdin_users > 1)
        return cli_usage_error(usage, "template: %s", "only one file may be standard input (-)");
    return 0;
}

/* Merge every member of src into dst (later ones win). */
static int merge_vars(cJSON *dst, const cJSON *src, const char *what)
{
    if (!cJSON_IsObject(src)) {
        fprintf(stderr, "shoal: %s must be a JSON object of variables\n", what);
        return 1;
    }
    const cJSON *v;
    cJSON_ArrayForEach(v, src)
    {
        cJSON *copy = cJSON_Duplicate(v, true);
        if (!copy)
            return 1;
        cJSON_DeleteItemFromObjectCaseSensitive(dst, v->string);
        cJSON_AddItemToObject(dst, v->string, copy);
    }
    return 0;
}

int cli_template_main(int argc, char **argv)
{
    struct opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;

    struct engine_model *model = NULL;
    struct engine_template *t = NULL;
    cJSON *conv = NULL, *tools_file = NULL, *vars_file = NULL, *extra = cJSON_CreateObject();
    struct shoal_buf out, src;
    shoal_buf_init(&out, TEMPLATE_MAX_OUTPUT);
    shoal_buf_init(&src, TEMPLATE_MAX_FILE);
    struct shoal_diag d;
    shoal_diag_clear(&d);
    char bos_buf[256], eos_buf[256];
    const char *bos = "", *eos = "";
    bool fallback = false;
    rc = 1;
    if (!extra)
        goto done;

    /* the conversation first: a bad file should not wait for a model to load */
    if (read_json(o.messages, &conv) != 0)
        goto done;
    const cJSON *messages = conv, *tools = NULL;
    bool gen = o.gen;
    if (cJSON_IsObject(conv)) {
        /* {"messages": [...], "tools": [...], "extra_context": {...},
         *  "add_generation_prompt": bool}, as a case of the conformance suite */
        messages = cJSON_GetObjectItemCaseSensitive(conv, "messages");
        tools = cJSON_GetObjectItemCaseSensitive(conv, "tools");
        const cJSON *ec = cJSON_GetObjectItemCaseSensitive(conv, "extra_context");
        if (ec && merge_vars(extra, ec, "extra_context") != 0)
            goto done;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(conv, "add_generation_prompt")))
            gen = true;
    }
    if (!cJSON_IsArray(messages)) {
        fprintf(stderr,
                "shoal: %s: expected a JSON array of messages, or an object with "
                "\"messages\"\n",
                o.messages);
        goto done;
    }
    if (o.tools) {
        if (read_json(o.tools, &tools_file) != 0)
            goto done;
        if (!cJSON_IsArray(tools_file) && !cJSON_IsNull(tools_file)) {
            fprintf(stderr, "shoal: %s: expected a JSON array of tools (or null)\n", o.tools);
            goto done;
        }
        tools = tools_file;
    }
    if (o.vars) {
        if (read_json(o.vars, &vars_file) != 0 || merge_vars(extra, vars_file, o.vars) != 0)
            goto done;
    }

    if (o.model) {
        if (engine_model_open(o.model, &model, &d) != SHOAL_OK) {
            char msg[1024];
            shoal_diag_format(&d, msg, sizeof(msg));
            fprintf(stderr, "shoal: %s: %s\n", o.model, msg);
            goto done;
        }
        shoal_diag_clear(&d);
        if (engine_model_template(model, &t, &fallback, &d) != SHOAL_OK) {
            print_error(&d);
            goto done;
        }
        if (fallback)
            fprintf(stderr, "shoal: %s has no chat template; using the ChatML fallback\n", o.model);
        const struct engine_vocab *v = engine_model_vocab(model);
        if (v) {
            bos = token_text(v, engine_vocab_bos(v), bos_buf, sizeof(bos_buf));
            eos = token_text(v, engine_vocab_eos(v), eos_buf, sizeof(eos_buf));
        }
    } else {
        if (read_all(o.tmpl, &src) != 0)
            goto done;
        if (engine_template_parse(shoal_buf_cstr(&src), src.len, &t, &d) != SHOAL_OK) {
            print_error(&d);
            goto done;
        }
    }
    if (o.bos)
        bos = o.bos;
    if (o.eos)
        eos = o.eos;

    struct engine_chat chat = {
        .messages = messages,
        .tools = tools,
        .extra = extra,
        .add_generation_prompt = gen,
        .bos_token = bos,
        .eos_token = eos,
    };
    shoal_diag_clear(&d);
    enum shoal_err err = o.now ? engine_template_render_at(t, &chat, o.now_s, true, &out, &d)
                               : engine_template_render(t, &chat, &out, &d);
    if (err != SHOAL_OK) {
        print_error(&d);
        goto done;
    }
    if (o.json) {
        cJSON *obj = cJSON_CreateObject();
        char *text = NULL;
        if (obj && cJSON_AddStringToObject(obj, "prompt", shoal_buf_cstr(&out)) &&
            cJSON_AddBoolToObject(obj, "fallback_template", fallback))
            text = cJSON_PrintUnformatted(obj);
        cJSON_Delete(obj);
        if (!text) {
            fputs("shoal: out of memory\n", stderr);
            goto done;
        }
        puts(text);
        cJSON_free(text);
    } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        fputs("shoal: cannot write the prompt\n", stderr);
        goto done;
    }
    if (fflush(stdout) != 0) {
        fputs("shoal: cannot write the prompt\n", stderr);
        goto done;
    }
    rc = 0;
done:
    engine_template_free(t);
    engine_model_close(model);
    cJSON_Delete(conv);
    cJSON_Delete(tools_file);
    cJSON_Delete(vars_file);
    cJSON_Delete(extra);
    shoal_buf_fini(&out);
    shoal_buf_fini(&src);
    return rc;
}
