/* test_template_conformance.c: renders every entry of the reference suite
 * (SHOAL_REF_DIR/templates/index.json) through the public API and compares
 * byte for byte, or checks the render fails where the reference failed
 * (with the template's raise_exception message); the phi-3 GGUF's own
 * template too. Usage: test_template_conformance [REF_DIR [-v]]. */
#include "common.h"
#include "engine.h"
#include "jinja.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

static cJSON *read_json(const char *path)
{
    size_t n;
    char *text = read_file(path, &n);
    if (!text)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    return j;
}

static const cJSON *find_case(const cJSON *cases, const char *id)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cases, "cases");
    const cJSON *c;
    cJSON_ArrayForEach(c, arr)
    {
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(c, "id");
        if (cJSON_IsString(cid) && !strcmp(cid->valuestring, id))
            return c;
    }
    return NULL;
}

/* 2026-11-22T00:00:00, the reference's fixed "now", as UTC seconds. */
static int64_t fixed_now(void)
{
    struct tm tm = {0};
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 10;
    tm.tm_mday = 22;
    return (int64_t)timegm(&tm);
}

/* Render one index.json entry with template t and check it. bos/eos NULL:
 * the entry's own vars. Returns true when it matches the reference. */
static bool check_entry(const char *ref, const cJSON *cases, const cJSON *r,
                        const struct engine_template *t, const char *bos_tok, const char *eos_tok,
                        const char *label, bool verbose)
{
    const char *stem = cJSON_GetObjectItemCaseSensitive(r, "template")->valuestring;
    const char *case_id = cJSON_GetObjectItemCaseSensitive(r, "case")->valuestring;
    bool gen = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "add_generation_prompt"));
    bool want_error = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "error"));
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(r, "vars");
    const cJSON *cs = find_case(cases, case_id);
    if (!cs) {
        fprintf(stderr, "%s/%s: case not found\n", stem, case_id);
        return false;
    }
    /* extra = the render's vars, then the case's extra_context */
    cJSON *extra = cJSON_CreateObject();
    const cJSON *v;
    cJSON_ArrayForEach(v, vars)
    {
        cJSON_AddItemToObject(extra, v->string, cJSON_Duplicate(v, true));
    }
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(cs, "extra_context");
    cJSON_ArrayForEach(v, ec)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(extra, v->string);
        cJSON_AddItemToObject(extra, v->string, cJSON_Duplicate(v, true));
    }
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(vars, "bos_token");
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(vars, "eos_token");
    if (bos_tok) { /* the model's own tokens, not the entry's */
        cJSON_DeleteItemFromObjectCaseSensitive(extra, "bos_token");
        cJSON_DeleteItemFromObjectCaseSensitive(extra, "eos_token");
    }
    struct engine_chat chat = {
        .messages = cJSON_GetObjectItemCaseSensitive(cs, "messages"),
        .tools = cJSON_GetObjectItemCaseSensitive(cs, "tools"), /* NULL when absent */
        .extra = extra,
        .add_generation_prompt = gen,
        .bos_token = bos_tok ? bos_tok : cJSON_IsString(bos) ? bos->valuestring : "",
        .eos_token = eos_tok ? eos_tok : cJSON_IsString(eos) ? eos->valuestring : "",
    };
    struct shoal_buf out;
    shoal_buf_init(&out, 16u << 20);
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err rc = engine_template_render_at(t, &chat, fixed_now(), true, &out, &d);
    bool ok = false;
    char why[600] = "";
    if (want_error) {
        const char *kind = cJSON_GetObjectItemCaseSensitive(r, "error_kind")->valuestring;
        const char *msg = cJSON_GetObjectItemCaseSensitive(r, "error_message")->valuestring;
        if (rc == SHOAL_OK) {
            snprintf(why, sizeof(why), "rendered, reference failed with %s", msg);
        } else if (!strcmp(kind, "raise_exception") && !strstr(d.msg, msg)) {
            snprintf(why, sizeof(why), "message \"%s\" lacks \"%s\"", d.msg, msg);
        } else {
            ok = true;
            if (verbose)
                fprintf(stderr, "ok   %s%s/%s%s: failed as expected (%u:%u: %s)\n", label, stem,
                        case_id, gen ? ".gen" : "", d.line, d.col, d.msg);
        }
    } else if (rc != SHOAL_OK) {
        snprintf(why, sizeof(why), "error at %u:%u: %s", d.line, d.col, d.msg);
    } else {
        char exp_path[4096];
        snprintf(exp_path, sizeof(exp_path), "%s/templates/%s", ref,
                 cJSON_GetObjectItemCaseSensitive(r, "expected")->valuestring);
        size_t elen;
        char *exp = read_file(exp_path, &elen);
        if (!exp) {
            snprintf(why, sizeof(why), "cannot read %.400s", exp_path);
        } else if (elen != out.len || memcmp(exp, shoal_buf_cstr(&out), elen) != 0) {
            size_t k = 0;
            const char *got = shoal_buf_cstr(&out);
            while (k < elen && k < out.len && exp[k] == got[k])
                k++;
            snprintf(why, sizeof(why),
                     "differs at byte %zu (got %zu bytes, want %zu)\n  got:  \"%.60s\"\n"
                     "  want: \"%.60s\"",
                     k, out.len, elen, got + (k > 20 ? k - 20 : 0), exp + (k > 20 ? k - 20 : 0));
        } else {
            ok = true;
        }
        free(exp);
    }
    if (!ok)
        fprintf(stderr, "FAIL %s%s/%s%s: %s\n", label, stem, case_id, gen ? ".gen" : "", why);
    shoal_buf_fini(&out);
    cJSON_Delete(extra);
    return ok;
}

/* The phi-3 vocabulary GGUF carries the ggml-vocab-phi-3 template: loaded
 * through the model API, with the model's own bos/eos tokens, it must
 * render every ggml-vocab-phi-3 entry as the reference did. */
static void check_gguf_template(const char *ref, const cJSON *index, const cJSON *cases,
                                bool verbose)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-phi-3.gguf", ref);
    struct engine_model *m = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err rc = engine_model_open(path, &m, &d);
    if (rc != SHOAL_OK)
        fprintf(stderr, "%s: %s\n", path, d.msg);
    CHECK_EQ_INT(rc, SHOAL_OK);
    if (!m)
        return;
    struct engine_template *t = NULL;
    bool fallback = true;
    CHECK_EQ_INT(engine_model_template(m, &t, &fallback, &d), SHOAL_OK);
    CHECK(!fallback);
    const struct engine_vocab *v = engine_model_vocab(m);
    CHECK(v != NULL);
    char bos[64] = "", eos[64] = "";
    size_t n = 0;
    const char *p = v ? engine_vocab_text(v, engine_vocab_bos(v), &n) : NULL;
    if (p && n < sizeof(bos))
        memcpy(bos, p, n);
    p = v ? engine_vocab_text(v, engine_vocab_eos(v), &n) : NULL;
    if (p && n < sizeof(eos))
        memcpy(eos, p, n);
    CHECK_STR(bos, "<s>");
    CHECK_STR(eos, "<|endoftext|>");
    int total = 0, passed = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(index, "renders"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(r, "template")->valuestring,
                   "ggml-vocab-phi-3") != 0 || !t)
            continue;
        total++;
        bool ok = check_entry(ref, cases, r, t, bos, eos, "gguf:", verbose);
        passed += ok;
        CHECK(ok);
    }
    CHECK_EQ_INT(total, 30);
    fprintf(stderr, "template conformance: %d/%d renders of the phi-3 GGUF's own template match\n",
            passed, total);
    engine_template_free(t);
    engine_model_close(m);
}

int main(int argc, char **argv)
{
#ifdef SHOAL_REF_DIR_DEFAULT
    const char *ref = argc > 1 ? argv[1] : SHOAL_REF_DIR_DEFAULT;
#else
    const char *ref = argc > 1 ? argv[1] : getenv("SHOAL_REF_DIR");
#endif
    if (!ref) {
        fprintf(stderr, "usage: %s REF_DIR [-v] (or set SHOAL_REF_DIR)\n", argv[0]);
        return 2;
    }
    bool verbose = argc > 2 && !strcmp(argv[2], "-v");
    char path[4096];
    snprintf(path, sizeof(path), "%s/templates/index.json", ref);
    cJSON *index = read_json(path);
    snprintf(path, sizeof(path), "%s/templates/cases.json", ref);
    cJSON *cases = read_json(path);
    CHECK(index != NULL);
    CHECK(cases != NULL);
    if (!index || !cases)
        return test_report("test_template_conformance");
    int total = 0, passed = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(index, "renders"))
    {
        total++;
        const char *stem = cJSON_GetObjectItemCaseSensitive(r, "template")->valuestring;
        snprintf(path, sizeof(path), "%s/templates/%s.jinja", ref, stem);
        size_t srclen;
        char *src = read_file(path, &srclen);
        CHECK(src != NULL);
        if (!src)
            continue;
        struct shoal_diag d;
        struct engine_template *t = NULL;
        enum shoal_err rc = engine_template_parse(src, srclen, &t, &d);
        free(src);
        if (rc != SHOAL_OK)
            fprintf(stderr, "%s: parse error at %u:%u: %s\n", stem, d.line, d.col, d.msg);
        CHECK_EQ_INT(rc, SHOAL_OK);
        if (!t)
            continue;
        bool ok = check_entry(ref, cases, r, t, NULL, NULL, "", verbose);
        passed += ok;
        CHECK(ok);
        engine_template_free(t);
    }
    fprintf(stderr, "template conformance: %d/%d renders match the reference\n", passed, total);
    CHECK_EQ_INT(total, 510);
    check_gguf_template(ref, index, cases, verbose);
    cJSON_Delete(index);
    cJSON_Delete(cases);
    return test_report("test_template_conformance");
}
