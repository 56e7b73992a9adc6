/* bench_template.c: chat-template render latency: parse a template once,
 * render one conversation REPS times, and print a markdown row with the
 * parse time, median and p99 render time (µs) and the prompt size. The
 * conversation file is what `shoal template render --messages` takes.
 * Invariant: nothing is timed but engine_template_parse/render. */
#include "common.h"
#include "engine.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: shoal-bench-template [--reps N] [--gen] [--bos S] [--eos S] TEMPLATE.jinja "
    "CONVERSATION.json\n";

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct shoal_buf b;
    shoal_buf_init(&b, 256u << 20);
    char tmp[65536];
    size_t got;
    while ((got = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (shoal_buf_append(&b, tmp, got) != SHOAL_OK)
            break;
    fclose(f);
    *n = b.len;
    if (!b.data)
        return calloc(1, 1);
    return b.data; /* the buffer's storage, now the caller's */
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int64_t reps = 2000;
    bool gen = false;
    const char *bos = "", *eos = "", *files[2] = {NULL, NULL};
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
            if (shoal_parse_i64(argv[i + 1], strlen(argv[i + 1]), 1, 10000000, &reps) != SHOAL_OK) {
                fputs(usage, stderr);
                return 2;
            }
            i++;
        } else if (!strcmp(argv[i], "--gen")) {
            gen = true;
        } else if (!strcmp(argv[i], "--bos") && i + 1 < argc) {
            bos = argv[++i];
        } else if (!strcmp(argv[i], "--eos") && i + 1 < argc) {
            eos = argv[++i];
        } else if (nfiles < 2 && argv[i][0] != '-') {
            files[nfiles++] = argv[i];
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (nfiles != 2) {
        fputs(usage, stderr);
        return 2;
    }
    size_t srclen, convlen;
    char *src = slurp(files[0], &srclen), *conv_text = slurp(files[1], &convlen);
    cJSON *conv = conv_text ? cJSON_ParseWithLength(conv_text, convlen) : NULL;
    if (!src || !conv) {
        fprintf(stderr, "shoal-bench-template: cannot read %s or %s\n", files[0], files[1]);
        return 1;
    }
    const cJSON *messages = conv, *tools = NULL, *extra = NULL;
    if (cJSON_IsObject(conv)) {
        messages = cJSON_GetObjectItemCaseSensitive(conv, "messages");
        tools = cJSON_GetObjectItemCaseSensitive(conv, "tools");
        extra = cJSON_GetObjectItemCaseSensitive(conv, "extra_context");
    }
    struct shoal_diag d;
    struct engine_template *t = NULL;
    double t0 = now_us();
    if (engine_template_parse(src, srclen, &t, &d) != SHOAL_OK) {
        fprintf(stderr, "shoal-bench-template: %u:%u: %s\n", d.line, d.col, d.msg);
        return 1;
    }
    double parse_us = now_us() - t0;
    struct engine_chat chat = {messages, tools, extra, gen, bos, eos};
    double *us = malloc((size_t)reps * sizeof(*us));
    struct shoal_buf out;
    shoal_buf_init(&out, 64u << 20);
    size_t bytes = 0;
    for (int64_t r = 0; us && r < reps; r++) {
        shoal_buf_reset(&out);
        double a = now_us();
        if (engine_template_render(t, &chat, &out, &d) != SHOAL_OK) {
            fprintf(stderr, "shoal-bench-template: %u:%u: %s\n", d.line, d.col, d.msg);
            return 1;
        }
        us[r] = now_us() - a;
        bytes = out.len;
    }
    if (!us)
        return 1;
    qsort(us, (size_t)reps, sizeof(*us), cmp_double);
    const char *name = strrchr(files[0], '/');
    printf("| template | parse µs | render µs (median) | render µs (p99) | prompt bytes |\n");
    printf("|---|---:|---:|---:|---:|\n");
    printf("| %s | %.1f | %.1f | %.1f | %zu |\n", name ? name + 1 : files[0], parse_us,
           us[reps / 2], us[(reps * 99) / 100], bytes);
    free(us);
    shoal_buf_fini(&out);
    engine_template_free(t);
    cJSON_Delete(conv);
    free(conv_text);
    free(src);
    return 0;
}
