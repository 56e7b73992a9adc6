/* test_tokenizer_ref.c: conformance with llama.cpp: every REF/vocab .inp/.out
 * pair encodes (no BOS, specials as text) to exactly the listed ids and
 * decodes back where lossless; every REF/models file tokenizes its "sentence"
 * case as llama.cpp did. REF: argv[1], else $SHOAL_REF_DIR, else CMake's. */
#include "test.h"

#include "common.h"
#include "engine.h"
#include "engine_internal.h" /* vocab_pre_name, for the table */

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SHOAL_REF_DIR_DEFAULT
#define SHOAL_REF_DIR_DEFAULT ""
#endif

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct shoal_buf b;
    shoal_buf_init(&b, 256u << 20);
    char tmp[65536];
    size_t n;
    bool ok = true;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        ok = ok && shoal_buf_append(&b, tmp, n) == SHOAL_OK;
    fclose(f);
    if (!ok) {
        shoal_buf_fini(&b);
        return NULL;
    }
    *len = b.len;
    if (!b.data)
        return calloc(1, 1);
    return b.data;
}

static void show_ids(const char *what, const int32_t *ids, size_t n)
{
    fprintf(stderr, "    %s:", what);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "%s\n", n > 64 ? " ..." : "");
}

static const char *kind_name(enum engine_vocab_kind k)
{
    return k == ENGINE_VOCAB_SPM ? "SPM" : k == ENGINE_VOCAB_BPE ? "BPE" : k == ENGINE_VOCAB_WPM ? "WPM" : "?";
}

static int check_vocab(const char *dir, const char *name)
{
    char path[4096], inp[4200], outp[4200];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return 0;
    snprintf(inp, sizeof(inp), "%s.inp", path);
    snprintf(outp, sizeof(outp), "%s.out", path);
    size_t ni, no;
    char *in = slurp(inp, &ni), *out = slurp(outp, &no);
    if (!in || !out) {
        free(in);
        free(out);
        return 0; /* no vectors for this vocabulary */
    }
    struct shoal_diag d;
    shoal_diag_clear(&d);
    /* Through the public door, as the daemon and the CLI open models. */
    struct engine_model *m = NULL;
    enum shoal_err e = engine_model_open(path, &m, &d);
    const struct engine_vocab *v = e == SHOAL_OK ? engine_model_vocab(m) : NULL;
    CHECK_EQ_INT(e, SHOAL_OK);
    CHECK(v != NULL);
    if (!v) {
        char msg[1024];
        shoal_diag_format(&d, msg, sizeof(msg));
        fprintf(stderr, "%s: %s\n", name, msg);
        engine_model_close(m);
        free(in);
        free(out);
        return 1;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t total = 0, matched = 0, lossless = 0;
    char *ip = in, *op = out;
    struct engine_tokens t;
    engine_tokens_init(&t, 1u << 20);
    struct shoal_buf txt;
    shoal_buf_init(&txt, 1u << 24);
    for (;;) {
        char *end = strstr(ip, sep);
        if (!end)
            break;
        size_t len = (size_t)(end - ip);
        char *nl = strchr(op, '\n');
        if (!nl)
            break;
        *nl = '\0';
        /* expected ids */
        int32_t want[4096];
        size_t nw = 0;
        for (char *q = op; *q;) {
            while (*q == ' ')
                q++;
            if (!*q)
                break;
            char *qe;
            long val = strtol(q, &qe, 10);
            if (nw < 4096)
                want[nw++] = (int32_t)val;
            q = qe;
        }
        t.n = 0;
        e = engine_tokenize(v, ip, len, false, false, &t);
        total++;
        bool ok = e == SHOAL_OK && t.n == nw && memcmp(t.ids, want, nw * sizeof(int32_t)) == 0;
        if (ok) {
            matched++;
        } else {
            fprintf(stderr, "  %s: input %zu \"%.*s\" differs\n", name, total, (int)(len > 80 ? 80 : len), ip);
            show_ids("want", want, nw);
            show_ids("got ", t.ids, t.n);
        }
        shoal_buf_reset(&txt);
        if (engine_detokenize(v, t.ids, t.n, false, &txt) == SHOAL_OK && txt.len == len &&
            (len == 0 || memcmp(txt.data, ip, len) == 0))
            lossless++;
        else if (engine_vocab_kind(v) != ENGINE_VOCAB_WPM)
            fprintf(stderr, "  %s: input %zu does not round-trip: \"%s\"\n", name, total, shoal_buf_cstr(&txt));
        ip = end + sizeof(sep) - 1;
        op = nl + 1;
    }
    printf("| %s | %s | %s | %zu/%zu | %zu/%zu |\n", name, kind_name(engine_vocab_kind(v)), vocab_pre_name(v), matched, total, lossless, total);
    CHECK_EQ_INT(matched, total);
    if (engine_vocab_kind(v) != ENGINE_VOCAB_WPM)
        CHECK_EQ_INT(lossless, total);
    /* engine_vocab_piece is what decoding appends for a token that is not
     * first in a text: decoding [id, id] must end with piece(id) and be
     * exactly the single decode plus the piece. */
    size_t piece_ok = 0, nv = engine_vocab_size(v);
    for (uint32_t id = 0; id < nv; id++) {
        int32_t one[1] = {(int32_t)id}, two[2] = {(int32_t)id, (int32_t)id};
        size_t pn = 0, single;
        const char *pp = engine_vocab_piece(v, (int32_t)id, &pn);
        shoal_buf_reset(&txt);
        if (!pp || engine_detokenize(v, one, 1, true, &txt) != SHOAL_OK)
            continue;
        single = txt.len;
        shoal_buf_reset(&txt);
        if (engine_detokenize(v, two, 2, true, &txt) != SHOAL_OK)
            continue;
        piece_ok += txt.len == single + pn && memcmp(txt.data + single, pp, pn) == 0;
    }
    CHECK_EQ_INT(piece_ok, nv);
    CHECK(engine_vocab_piece(v, (int32_t)nv, &piece_ok) == NULL);
    CHECK(engine_vocab_piece(v, -1, &piece_ok) == NULL);
    shoal_buf_fini(&txt);
    engine_tokens_fini(&t);
    engine_model_close(m);
    free(in);
    free(out);
    return 1;
}

/* The "sentence" case of MODEL.gguf.ref.json: llama.cpp's tokens for its
 * text with add_special=true, parse_special=false. */
static int check_model(const char *dir, const char *name)
{
    char path[4096], jpath[4200];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return 0;
    snprintf(jpath, sizeof(jpath), "%s.ref.json", path);
    size_t jn;
    char *js = slurp(jpath, &jn);
    if (!js)
        return 0;
    cJSON *root = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    CHECK_EQ_INT(shoal_json_parse(js, jn, &root, &d), SHOAL_OK);
    free(js);
    struct engine_model *m = NULL;
    enum shoal_err e = engine_model_open(path, &m, &d);
    const struct engine_vocab *v = e == SHOAL_OK ? engine_model_vocab(m) : NULL;
    CHECK_EQ_INT(e, SHOAL_OK);
    int cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(root, "cases"))
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "prompt_tokens");
        if (!v || !cJSON_IsString(nm) || strcmp(nm->valuestring, "sentence") != 0 ||
            !cJSON_IsString(text) || !cJSON_IsArray(want))
            continue;
        struct engine_tokens t;
        engine_tokens_init(&t, 4096);
        CHECK_EQ_INT(engine_tokenize(v, text->valuestring, strlen(text->valuestring), true, false,
                                     &t),
                     SHOAL_OK);
        bool same = (size_t)cJSON_GetArraySize(want) == t.n;
        for (size_t i = 0; same && i < t.n; i++)
            same = cJSON_GetArrayItem(want, (int)i)->valueint == t.ids[i];
        CHECK(same);
        if (!same) {
            fprintf(stderr, "  %s: sentence tokens differ\n", name);
            show_ids("got ", t.ids, t.n);
        }
        printf("| %s | sentence | %s |\n", name, same ? "match" : "DIFFERENT");
        cases++;
        engine_tokens_fini(&t);
    }
    CHECK_EQ_INT(cases, 1);
    cJSON_Delete(root);
    engine_model_close(m);
    return 1;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t list_gguf(const char *dir, char **names, size_t cap)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(dp)) && nn < cap) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".gguf") == 0)
            names[nn++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, nn, sizeof(*names), name_cmp);
    return nn;
}

int main(int argc, char **argv)
{
    const char *ref = argc > 1 ? argv[1] : getenv("SHOAL_REF_DIR");
    if (!ref || !*ref)
        ref = SHOAL_REF_DIR_DEFAULT;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/vocab", ref);
    char *names[256];
    size_t nn = list_gguf(dir, names, 256);
    if (nn == 0) {
        fprintf(stderr, "no reference vocabularies at %s\n", dir);
        return 1;
    }
    printf("| vocabulary | kind | pre | ids match | round trip |\n|---|---|---|---|---|\n");
    int checked = 0;
    for (size_t i = 0; i < nn; i++) {
        checked += check_vocab(dir, names[i]);
        free(names[i]);
    }
    CHECK(checked > 0);
    snprintf(dir, sizeof(dir), "%s/models", ref);
    nn = list_gguf(dir, names, 256);
    int models = 0;
    for (size_t i = 0; i < nn; i++) {
        models += check_model(dir, names[i]);
        free(names[i]);
    }
    CHECK(models > 0);
    return test_report("test_tokenizer_ref");
}
