/* bench_tokenize.c: tokenizer throughput on a deterministic corpus of mixed
 * English, code and multilingual text (paragraphs drawn with a fixed seed
 * from the files given plus built-in sentences), in ~16 KiB documents: per
 * model, median encode and decode MB/s. Invariant: the corpus depends only
 * on the input files and --size. */
#include "common.h"
#include "engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: shoal-bench-tokenize [--size BYTES] [--reps N] [--english FILE]... [--code FILE]...\n"
    "                            [--multi FILE]... [--dump FILE] MODEL.gguf...\n";

/* Sentences in scripts the English and code files lack. */
static const char *const builtin_multi[] = {
    "Le tokeniseur d\xC3\xA9" "coupe le texte en morceaux avant que le mod\xC3\xA8le ne le lise ; "
    "les accents, les apostrophes et les guillemets \xC2\xAB fran\xC3\xA7" "ais \xC2\xBB comptent aussi.",
    "Die Stra\xC3\x9F" "e war nass, und die B\xC3\xA4ume rauschten im Wind; gr\xC3\xB6\xC3\x9F" "ere "
    "\xC3\x84ste lagen \xC3\xBC" "ber dem Weg.",
    "\xC2\xBF" "D\xC3\xB3nde est\xC3\xA1 la biblioteca? El ni\xC3\xB1o comi\xC3\xB3 una manzana y "
    "despu\xC3\xA9s durmi\xC3\xB3 la siesta.",
    "\xD0\xA2\xD0\xBE\xD0\xBA\xD0\xB5\xD0\xBD\xD0\xB8\xD0\xB7\xD0\xB0\xD1\x82\xD0\xBE\xD1\x80 "
    "\xD1\x80\xD0\xB0\xD0\xB7\xD0\xB1\xD0\xB8\xD0\xB2\xD0\xB0\xD0\xB5\xD1\x82 \xD1\x82\xD0\xB5\xD0"
    "\xBA\xD1\x81\xD1\x82 \xD0\xBD\xD0\xB0 \xD1\x87\xD0\xB0\xD1\x81\xD1\x82\xD0\xB8, \xD0\xBF\xD1"
    "\x80\xD0\xB5\xD0\xB6\xD0\xB4\xD0\xB5 \xD1\x87\xD0\xB5\xD0\xBC \xD0\xBC\xD0\xBE\xD0\xB4\xD0\xB5"
    "\xD0\xBB\xD1\x8C \xD0\xB5\xD0\xB3\xD0\xBE \xD0\xBF\xD1\x80\xD0\xBE\xD1\x87\xD0\xB8\xD1\x82\xD0"
    "\xB0\xD0\xB5\xD1\x82.",
    "\xCE\x97 \xCE\xB3\xCF\x81\xCE\xAE\xCE\xB3\xCE\xBF\xCF\x81\xCE\xB7 \xCE\xBA\xCE\xB1\xCF\x86\xCE"
    "\xAD \xCE\xB1\xCE\xBB\xCE\xB5\xCF\x80\xCE\xBF\xCF\x8D \xCF\x80\xCE\xB7\xCE\xB4\xCE\xAC \xCF\x80"
    "\xCE\xAC\xCE\xBD\xCF\x89 \xCE\xB1\xCF\x80\xCF\x8C \xCF\x84\xCE\xBF\xCE\xBD \xCF\x83\xCE\xBA\xCF"
    "\x8D\xCE\xBB\xCE\xBF.",
    "\xE5\x88\x86\xE8\xAF\x8D\xE5\x99\xA8\xE5\x9C\xA8\xE6\xA8\xA1\xE5\x9E\x8B\xE8\xAF\xBB\xE5\x8F\x96"
    "\xE6\x96\x87\xE6\x9C\xAC\xE4\xB9\x8B\xE5\x89\x8D\xE6\x8A\x8A\xE6\x96\x87\xE6\x9C\xAC\xE5\x88\x87"
    "\xE6\x88\x90\xE5\xB0\x8F\xE5\x9D\x97\xE3\x80\x82\xE4\xBB\x8A\xE5\xA4\xA9\xE5\xA4\xA9\xE6\xB0\x94"
    "\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x8C\xE6\x88\x91\xE4\xBB\xAC\xE5\x8E\xBB\xE5\x85\xAC\xE5\x9B\xAD"
    "\xE6\x95\xA3\xE6\xAD\xA5\xE5\x90\xA7\xE3\x80\x82",
    "\xE3\x83\x88\xE3\x83\xBC\xE3\x82\xAF\xE3\x83\x8A\xE3\x82\xA4\xE3\x82\xB6\xE3\x83\xBC\xE3\x81\xAF"
    "\xE6\x96\x87\xE7\xAB\xA0\xE3\x82\x92\xE5\xB0\x8F\xE3\x81\x95\xE3\x81\xAA\xE6\x96\xAD\xE7\x89\x87"
    "\xE3\x81\xAB\xE5\x88\x86\xE3\x81\x91\xE3\x81\xBE\xE3\x81\x99\xE3\x80\x82\xE6\x9D\xB1\xE4\xBA\xAC"
    "\xE3\x81\xAF\xE9\x9B\xA8\xE3\x81\xA7\xE3\x81\x97\xE3\x81\x9F\xE3\x80\x82",
    "\xED\x86\xA0\xED\x81\xAC\xEB\x82\x98\xEC\x9D\xB4\xEC\xA0\x80\xEB\x8A\x94 \xED\x85\x8D\xEC\x8A\xA4"
    "\xED\x8A\xB8\xEB\xA5\xBC \xEC\x9E\x91\xEC\x9D\x80 \xEC\xA1\xB0\xEA\xB0\x81\xEC\x9C\xBC\xEB\xA1"
    "\x9C \xEB\x82\x98\xEB\x88\x95\xEB\x8B\x88\xEB\x8B\xA4.",
    "\xD9\x8A\xD9\x82\xD8\xB3\xD9\x85 \xD8\xA7\xD9\x84\xD9\x85\xD8\xAD\xD9\x84\xD9\x84 \xD8\xA7\xD9"
    "\x84\xD9\x86\xD8\xB5 \xD8\xA5\xD9\x84\xD9\x89 \xD8\xA3\xD8\xAC\xD8\xB2\xD8\xA7\xD8\xA1 \xD8\xB5"
    "\xD8\xBA\xD9\x8A\xD8\xB1\xD8\xA9.",
    "\xE0\xA4\x9F\xE0\xA5\x8B\xE0\xA4\x95\xE0\xA4\xA8\xE0\xA4\xBE\xE0\xA4\x87\xE0\xA4\x9C\xE0\xA4\xBC"
    "\xE0\xA4\xB0 \xE0\xA4\xAA\xE0\xA4\xBE\xE0\xA4\xA0 \xE0\xA4\x95\xE0\xA5\x8B \xE0\xA4\x9B\xE0\xA5"
    "\x8B\xE0\xA4\x9F\xE0\xA5\x87 \xE0\xA4\x9F\xE0\xA5\x81\xE0\xA4\x95\xE0\xA4\xA1\xE0\xA4\xBC\xE0"
    "\xA5\x8B\xE0\xA4\x82 \xE0\xA4\xAE\xE0\xA5\x87\xE0\xA4\x82 \xE0\xA4\xAC\xE0\xA4\xBE\xE0\xA4\x81"
    "\xE0\xA4\x9F\xE0\xA4\xA4\xE0\xA4\xBE \xE0\xA4\xB9\xE0\xA5\x88\xE0\xA5\xA4",
    "Shipping \xF0\x9F\x9A\x80 today \xE2\x9C\x85 \xE2\x80\x94 coffee \xE2\x98\x95 and \xF0\x9F\xA6"
    "\x99 llamas; 23.5\xC2\xB0" "C \xE2\x86\x92 31 \xC2\xB0" "C.",
};

/* A pool of paragraphs (pointers into owned file contents). */
struct pool {
    const char **p;
    size_t *n;
    size_t len, cap;
};

static void pool_add(struct pool *pl, const char *s, size_t n)
{
    if (n == 0)
        return;
    if (pl->len == pl->cap) {
        pl->cap = pl->cap ? pl->cap * 2 : 256;
        pl->p = realloc(pl->p, pl->cap * sizeof(*pl->p));
        pl->n = realloc(pl->n, pl->cap * sizeof(*pl->n));
        if (!pl->p || !pl->n) {
            fputs("out of memory\n", stderr);
            exit(1);
        }
    }
    pl->p[pl->len] = s;
    pl->n[pl->len++] = n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    struct shoal_buf b;
    shoal_buf_init(&b, 1u << 30);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        if (shoal_buf_append(&b, tmp, n) != SHOAL_OK) {
            fprintf(stderr, "%s: too big\n", path);
            exit(2);
        }
    }
    fclose(f);
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

/* Paragraphs are separated by blank lines; the test-vector separator of
 * the .inp files counts as one too. */
static void pool_file(struct pool *pl, const char *path)
{
    size_t n;
    char *s = slurp(path, &n); /* kept until exit: the pool points into it */
    size_t start = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        bool blank = s[i] == '\n' && s[i + 1] == '\n';
        bool sep = s[i] == '\n' && n - i >= 21 && memcmp(s + i, "\n__ggml_vocab_test__\n", 21) == 0;
        if (!blank && !sep)
            continue;
        pool_add(pl, s + start, i - start);
        start = i + (sep ? 21 : 2);
        i = start - 1;
    }
    if (start < n)
        pool_add(pl, s + start, n - start);
}

static uint64_t rng = 0x5DEECE66Dull;
static uint64_t next_rand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return rng >> 33;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *kind_name(enum engine_vocab_kind k)
{
    switch (k) {
    case ENGINE_VOCAB_SPM: return "SPM";
    case ENGINE_VOCAB_BPE: return "BPE";
    case ENGINE_VOCAB_WPM: return "WPM";
    default: return "none";
    }
}

int main(int argc, char **argv)
{
    size_t target = 4u << 20;
    int reps = 5;
    struct pool pools[3] = {{0}}; /* English, code, multilingual */
    const char *models[64], *dump = NULL;
    int n_models = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t v;
        if (!strcmp(a, "--size") && i + 1 < argc &&
            shoal_parse_i64(argv[i + 1], strlen(argv[i + 1]), 1024, 1ll << 30, &v) == SHOAL_OK) {
            target = (size_t)v;
            i++;
        } else if (!strcmp(a, "--reps") && i + 1 < argc &&
                   shoal_parse_i64(argv[i + 1], strlen(argv[i + 1]), 1, 1000, &v) == SHOAL_OK) {
            reps = (int)v;
            i++;
        } else if (!strcmp(a, "--english") && i + 1 < argc) {
            pool_file(&pools[0], argv[++i]);
        } else if (!strcmp(a, "--code") && i + 1 < argc) {
            pool_file(&pools[1], argv[++i]);
        } else if (!strcmp(a, "--multi") && i + 1 < argc) {
            pool_file(&pools[2], argv[++i]);
        } else if (!strcmp(a, "--dump") && i + 1 < argc) {
            dump = argv[++i];
        } else if (a[0] == '-' || n_models == 64) {
            fputs(usage, stderr);
            return 2;
        } else {
            models[n_models++] = a;
        }
    }
    for (size_t i = 0; i < SHOAL_ARRAY_LEN(builtin_multi); i++)
        pool_add(&pools[2], builtin_multi[i], strlen(builtin_multi[i]));
    if (!n_models || !pools[0].len || !pools[1].len) {
        fputs(usage, stderr);
        return 2;
    }

    /* The corpus: 40% English, 40% code, 20% multilingual, paragraph by
     * paragraph; documents end at the first paragraph past 16 KiB. */
    static const double share[3] = {0.4, 0.4, 0.2};
    size_t filled[3] = {0, 0, 0};
    struct shoal_buf corpus;
    shoal_buf_init(&corpus, target + (1u << 20));
    size_t *doc_end = NULL, n_docs = 0, doc_cap = 0, doc_start = 0;
    while (corpus.len < target) {
        int k = 0;
        double best = 2;
        for (int c = 0; c < 3; c++) {
            double r = (double)filled[c] / ((double)target * share[c]);
            if (r < best) {
                best = r;
                k = c;
            }
        }
        size_t j = (size_t)(next_rand() % pools[k].len);
        if (shoal_buf_append(&corpus, pools[k].p[j], pools[k].n[j]) != SHOAL_OK ||
            shoal_buf_append(&corpus, "\n\n", 2) != SHOAL_OK)
            break;
        filled[k] += pools[k].n[j] + 2;
        if (corpus.len - doc_start >= 16384 || corpus.len >= target) {
            if (n_docs == doc_cap) {
                doc_cap = doc_cap ? doc_cap * 2 : 256;
                doc_end = realloc(doc_end, doc_cap * sizeof(*doc_end));
                if (!doc_end)
                    return 1;
            }
            doc_end[n_docs++] = corpus.len;
            doc_start = corpus.len;
        }
    }
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(corpus.data, 1, corpus.len, f) != corpus.len || fclose(f) != 0) {
            perror(dump);
            return 1;
        }
    }
    printf("corpus: %zu bytes in %zu documents (English %zu, code %zu, multilingual %zu)\n\n",
           corpus.len, n_docs, filled[0], filled[1], filled[2]);
    printf("| model | kind | pre | encode MB/s | encode Mtok/s | bytes/token | decode MB/s | "
           "encode MB/s of each run |\n");
    printf("|---|---|---|---:|---:|---:|---:|---|\n");

    for (int mi = 0; mi < n_models; mi++) {
        struct engine_model *m = NULL;
        struct shoal_diag d;
        if (engine_model_open(models[mi], &m, &d) != SHOAL_OK || !engine_model_vocab(m)) {
            char msg[1024];
            shoal_diag_format(&d, msg, sizeof(msg));
            fprintf(stderr, "%s: %s\n", models[mi], m ? "no tokenizer" : msg);
            engine_model_close(m);
            return 1;
        }
        const struct engine_vocab *v = engine_model_vocab(m);
        struct engine_tokens t;
        engine_tokens_init(&t, SIZE_MAX);
        struct shoal_buf text;
        shoal_buf_init(&text, SIZE_MAX / 2);
        double enc[1001], dec[1001];
        size_t n_tok = 0;
        for (int r = -1; r < reps; r++) { /* run -1 warms up */
            n_tok = 0;
            double t0 = now_s(), te = 0;
            size_t s0 = 0;
            for (size_t k = 0; k < n_docs; k++) {
                t.n = 0;
                double a = now_s();
                if (engine_tokenize(v, corpus.data + s0, doc_end[k] - s0, true, false, &t) !=
                    SHOAL_OK) {
                    fprintf(stderr, "%s: tokenize failed\n", models[mi]);
                    return 1;
                }
                te += now_s() - a;
                n_tok += t.n;
                shoal_buf_reset(&text);
                if (engine_detokenize(v, t.ids, t.n, false, &text) != SHOAL_OK) {
                    fprintf(stderr, "%s: detokenize failed\n", models[mi]);
                    return 1;
                }
                s0 = doc_end[k];
            }
            double total = now_s() - t0;
            if (r >= 0) {
                enc[r] = te;
                dec[r] = total - te;
            }
        }
        double mb = (double)corpus.len / 1e6;
        double runs_mbs[1001];
        for (int r = 0; r < reps; r++)
            runs_mbs[r] = mb / enc[r];
        qsort(enc, (size_t)reps, sizeof(double), dbl_cmp);
        qsort(dec, (size_t)reps, sizeof(double), dbl_cmp);
        double me = enc[reps / 2], md = dec[reps / 2];
        /* The pre-tokenizer's name, from the model's description. */
        char pre[64] = "-";
        cJSON *j = NULL;
        if (engine_model_describe(m, &j) == SHOAL_OK) {
            const cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "tokenizer");
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(tk, "pre");
            if (cJSON_IsString(p) && p->valuestring[0])
                snprintf(pre, sizeof(pre), "%s", p->valuestring);
            cJSON_Delete(j);
        }
        const char *name = strrchr(models[mi], '/');
        name = name ? name + 1 : models[mi];
        printf("| %s | %s | %s | %.1f | %.2f | %.2f | %.0f | ", name,
               kind_name(engine_vocab_kind(v)), pre,
               mb / me, (double)n_tok / me / 1e6, (double)corpus.len / (double)n_tok, mb / md);
        for (int r = 0; r < reps; r++)
            printf("%s%.1f", r ? " / " : "", runs_mbs[r]);
        printf(" |\n");
        fflush(stdout);
        shoal_buf_fini(&text);
        engine_tokens_fini(&t);
        engine_model_close(m);
    }
    shoal_buf_fini(&corpus);
    return 0;
}
