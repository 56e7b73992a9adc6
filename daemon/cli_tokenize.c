/* cli_tokenize.c: `shoal tokenize`: encode text with a model's tokenizer
 * and list each token id with the bytes it stands for, or (--decode) turn
 * ids back into text, for people debugging prompts. It uses only the
 * engine's public API, so it runs exactly what the daemon runs. Exit codes
 * as in cli.h: 0 ok, 1 the model or the input was rejected, 2 usage. */
#include "cli.h"
#include "common.h"
#include "engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZE_MAX_INPUT  (64u * 1024u * 1024u) /* bytes read from stdin */
#define TOKENIZE_MAX_TOKENS (64u * 1024u * 1024u)

static const char usage[] =
    "usage: shoal tokenize --model FILE [--special] [--no-add-special] [--json] [--decode] "
    "TEXT|-\n";

static int read_stdin(struct shoal_buf *b)
{
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), stdin)) > 0) {
        if (shoal_buf_append(b, tmp, n) != SHOAL_OK) {
            fprintf(stderr, "shoal: tokenize: standard input is larger than %u bytes\n",
                    TOKENIZE_MAX_INPUT);
            return 1;
        }
    }
    if (ferror(stdin)) {
        fputs("shoal: tokenize: cannot read standard input\n", stderr);
        return 1;
    }
    return 0;
}

/* The bytes token id stands for, specials rendered, without the
 * leading-space rule that applies to the first token of a text. */
static enum shoal_err token_piece(const struct engine_vocab *v, int32_t id, const char **p,
                                  size_t *n)
{
    *p = engine_vocab_piece(v, id, n);
    return *p ? SHOAL_OK : SHOAL_ERR_INVALID;
}

/* Escape a piece for one line: \n \t \r \\ and \xNN for other control and
 * invalid bytes; valid UTF-8 as is. */
static void print_escaped(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t l = shoal_utf8_len((const char *)s + i, n - i);
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (l == 0 || c < 0x20 || c == 0x7F) {
            printf("\\x%02x", c);
            l = 1;
        } else {
            fwrite(s + i, 1, l, stdout);
        }
        i += l ? l : 1;
    }
}

/* JSON strings must be valid UTF-8: invalid bytes become U+FFFD there, and
 * the exact bytes go to "bytes" as hex. */
static cJSON *json_piece(const char *p, size_t n)
{
    struct shoal_buf b;
    shoal_buf_init(&b, n * 3 + 16);
    bool valid = true;
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t l = shoal_utf8_len((const char *)s + i, n - i);
        enum shoal_err e;
        if (l == 0 || s[i] == 0) {
            /* NUL too: it would end the C string cJSON copies. */
            e = shoal_buf_append(&b, "\xEF\xBF\xBD", 3);
            valid = false;
            l = 1;
        } else {
            e = shoal_buf_append(&b, s + i, l);
        }
        if (e != SHOAL_OK) {
            shoal_buf_fini(&b);
            return NULL;
        }
        i += l;
    }
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddStringToObject(o, "piece", shoal_buf_cstr(&b))) {
        cJSON_Delete(o);
        o = NULL;
    }
    if (o && !valid) {
        char *hex = malloc(n * 2 + 1);
        for (size_t i = 0; hex && i < n; i++)
            snprintf(hex + 2 * i, 3, "%02x", s[i]);
        if (!hex || !cJSON_AddStringToObject(o, "bytes", hex)) {
            cJSON_Delete(o);
            o = NULL;
        }
        free(hex);
    }
    shoal_buf_fini(&b);
    return o;
}

static int encode(const struct engine_vocab *v, const char *text, size_t n, bool special,
                  bool add_special, bool json)
{
    struct engine_tokens t;
    engine_tokens_init(&t, TOKENIZE_MAX_TOKENS);
    enum shoal_err e = engine_tokenize(v, text, n, add_special, special, &t);
    if (e != SHOAL_OK) {
        fprintf(stderr, "shoal: tokenize: %s\n", shoal_err_name(e));
        engine_tokens_fini(&t);
        return 1;
    }
    cJSON *root = json ? cJSON_CreateObject() : NULL;
    cJSON *arr = root ? cJSON_AddArrayToObject(root, "tokens") : NULL;
    int rc = json && !arr ? 1 : 0;
    for (size_t i = 0; i < t.n && rc == 0; i++) {
        const char *p;
        size_t pn;
        if (token_piece(v, t.ids[i], &p, &pn) != SHOAL_OK) {
            rc = 1;
            break;
        }
        if (json) {
            cJSON *o = json_piece(p, pn);
            if (!o || !cJSON_AddNumberToObject(o, "id", t.ids[i])) {
                cJSON_Delete(o);
                rc = 1;
                break;
            }
            /* id first reads better: move "piece" (and "bytes") after it. */
            cJSON *piece = cJSON_DetachItemFromObjectCaseSensitive(o, "piece");
            cJSON *bytes = cJSON_DetachItemFromObjectCaseSensitive(o, "bytes");
            cJSON_AddItemToObject(o, "piece", piece);
            if (bytes)
                cJSON_AddItemToObject(o, "bytes", bytes);
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("%d\t", t.ids[i]);
            print_escaped(p, pn);
            putchar('\n');
        }
    }
    if (json && rc == 0) {
        char *s = NULL;
        if (cJSON_AddNumberToObject(root, "count", (double)t.n))
            s = cJSON_PrintUnformatted(root);
        if (s) {
            puts(s);
            cJSON_free(s);
        } else {
            rc = 1;
        }
    }
    if (rc)
        fputs("shoal: tokenize: out of memory\n", stderr);
    cJSON_Delete(root);
    engine_tokens_fini(&t);
    return rc;
}

/* Ids separated by spaces, commas, tabs or newlines. */
static int decode(const struct engine_vocab *v, const char *text, size_t n, bool special)
{
    struct engine_tokens t;
    engine_tokens_init(&t, TOKENIZE_MAX_TOKENS);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        while (i < n && (text[i] == ' ' || text[i] == ',' || text[i] == '\t' || text[i] == '\n' ||
                         text[i] == '\r'))
            i++;
        size_t s = i;
        while (i < n && !(text[i] == ' ' || text[i] == ',' || text[i] == '\t' || text[i] == '\n' ||
                          text[i] == '\r'))
            i++;
        if (i == s)
            break;
        int64_t id;
        if (shoal_parse_i64(text + s, i - s, 0, (int64_t)engine_vocab_size(v) - 1, &id) !=
            SHOAL_OK) {
            fprintf(stderr, "shoal: tokenize --decode: '%.*s' is not a token id (0..%u)\n",
                    (int)(i - s > 40 ? 40 : i - s), text + s, engine_vocab_size(v) - 1);
            rc = 1;
        }
        if (rc == 0) {
            if (t.n == t.cap) {
                size_t nc = t.cap ? t.cap * 2 : 256;
                int32_t *p = realloc(t.ids, nc * sizeof(*p));
                if (!p) {
                    fputs("shoal: tokenize: out of memory\n", stderr);
                    rc = 1;
                    break;
                }
                t.ids = p;
                t.cap = nc;
            }
            t.ids[t.n++] = (int32_t)id;
        }
    }
    if (rc == 0) {
        struct shoal_buf out;
        shoal_buf_init(&out, SIZE_MAX / 2);
        if (engine_detokenize(v, t.ids, t.n, special, &out) != SHOAL_OK) {
            fputs("shoal: tokenize --decode: cannot decode\n", stderr);
            rc = 1;
        } else if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
            rc = 1;
        }
        shoal_buf_fini(&out);
    }
    engine_tokens_fini(&t);
    return rc;
}

int cli_tokenize_main(int argc, char **argv)
{
    bool special = false, no_add = false, json = false, dec = false, dashdash = false;
    const char *model = NULL, *text = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0)
            dashdash = true;
        else if (!dashdash && strcmp(a, "--model") == 0) {
            if (++i >= argc)
                return cli_usage_error(usage, "%s", "tokenize: --model needs a FILE");
            model = argv[i];
        } else if (!dashdash && strncmp(a, "--model=", 8) == 0)
            model = a + 8;
        else if (!dashdash && strcmp(a, "--special") == 0)
            special = true;
        else if (!dashdash && strcmp(a, "--no-add-special") == 0)
            no_add = true;
        else if (!dashdash && strcmp(a, "--json") == 0)
            json = true;
        else if (!dashdash && strcmp(a, "--decode") == 0)
            dec = true;
        else if (!dashdash && a[0] == '-' && a[1] != '\0')
            return cli_usage_error(usage, "tokenize: unknown option '%s'", a);
        else if (text)
            return cli_usage_error(usage, "tokenize: more than one TEXT ('%s'); quote it", a);
        else
            text = a;
    }
    if (!model)
        return cli_usage_error(usage, "%s", "tokenize: no --model FILE given");
    if (!text)
        return cli_usage_error(usage, "%s",
                               "tokenize: no TEXT given (use - to read standard input)");
    if (dec && json)
        return cli_usage_error(usage, "%s",
                               "tokenize: --decode prints text; --json is for encoding");

    struct shoal_buf in;
    shoal_buf_init(&in, TOKENIZE_MAX_INPUT);
    const char *src = text;
    size_t n = strlen(text);
    if (strcmp(text, "-") == 0) {
        if (read_stdin(&in)) {
            shoal_buf_fini(&in);
            return 1;
        }
        src = in.data ? in.data : "";
        n = in.len;
    }

    struct shoal_diag d;
    struct engine_model *m = NULL;
    int rc = 1;
    if (engine_model_open(model, &m, &d) != SHOAL_OK) {
        char msg[1024];
        shoal_diag_format(&d, msg, sizeof(msg));
        fprintf(stderr, "shoal: %s\n", msg);
    } else if (!engine_model_vocab(m)) {
        fprintf(stderr, "shoal: %s has no tokenizer\n", model);
    } else if (dec) {
        rc = decode(engine_model_vocab(m), src, n, special);
    } else {
        rc = encode(engine_model_vocab(m), src, n, special, !no_add, json);
    }
    engine_model_close(m);
    shoal_buf_fini(&in);
    return rc;
}
