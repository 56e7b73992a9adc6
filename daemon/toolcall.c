/* toolcall.c: read tool calls back out of a local model's text. Each
 * convention is a marker followed by JSON; a block becomes calls only when
 * every call in it names a tool the request offered, so a model that merely
 * talks about JSON keeps its text. */
#include "toolcall.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct span {
    size_t from, to; /* text removed from the content */
};

struct calls {
    struct remote_tool_call *v;
    size_t n;
    struct span spans[REMOTE_CAP_TOOL_CALLS];
    size_t n_spans;
    bool oom;
};

static bool tool_known(const struct remote_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_tools; i++)
        if (!strcmp(req->tools[i].name, name))
            return true;
    return false;
}

/* {"name": N, "arguments"|"parameters": {...} or "json text"} naming one of
 * req's tools. */
static bool is_call(const struct remote_request *req, const cJSON *o)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !tool_known(req, name->valuestring))
        return false;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!a)
        a = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    return !a || cJSON_IsObject(a) || cJSON_IsString(a);
}

static bool add_call(struct calls *cs, const cJSON *o)
{
    struct remote_tool_call *p = realloc(cs->v, (cs->n + 1) * sizeof(*p));
    if (!p)
        return false;
    cs->v = p;
    struct remote_tool_call *c = &cs->v[cs->n];
    memset(c, 0, sizeof(*c));
    char id[32];
    snprintf(id, sizeof(id), "call_%zu", cs->n);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "arguments");
    if (!a)
        a = cJSON_GetObjectItemCaseSensitive(o, "parameters");
    struct shoal_buf b;
    shoal_buf_init(&b, REMOTE_CAP_TOOL_ARGS);
    bool ok = true;
    if (!a) {
        ok = shoal_buf_puts(&b, "{}") == SHOAL_OK;
    } else if (cJSON_IsString(a)) {
        /* Some models write the arguments as a JSON string, as OpenAI does. */
        ok = shoal_buf_puts(&b, a->valuestring) == SHOAL_OK;
    } else {
        ok = shoal_json_render(a, &b) == SHOAL_OK;
    }
    c->id = strdup(id);
    c->name = strdup(cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring);
    c->arguments = ok ? strdup(shoal_buf_cstr(&b)) : NULL;
    shoal_buf_fini(&b);
    if (!c->id || !c->name || !c->arguments) {
        free(c->id);
        free(c->name);
        free(c->arguments);
        return false;
    }
    struct shoal_diag d;
    shoal_diag_clear(&d);
    if (shoal_json_parse(c->arguments, strlen(c->arguments), &c->args, &d) != SHOAL_OK) {
        c->args = NULL;
        snprintf(c->args_error, sizeof(c->args_error), "not valid JSON: %.70s", d.msg);
    } else if (!cJSON_IsObject(c->args)) {
        cJSON_Delete(c->args);
        c->args = NULL;
        snprintf(c->args_error, sizeof(c->args_error), "not a JSON object");
    }
    cs->n++;
    return true;
}

/* v (an object, or an array of them) as calls covering text[from..to):
 * all or nothing. */
static void take(const struct remote_request *req, const cJSON *v, size_t from, size_t to,
                 struct calls *cs)
{
    if (cs->n_spans == REMOTE_CAP_TOOL_CALLS)
        return;
    size_t k = 0;
    const cJSON *e;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(e, v)
        {
            if (!is_call(req, e))
                return;
            k++;
        }
    } else if (is_call(req, v)) {
        k = 1;
    }
    if (!k || cs->n + k > REMOTE_CAP_TOOL_CALLS)
        return;
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(e, v)
        {
            if (!add_call(cs, e)) {
                cs->oom = true;
                return;
            }
        }
    } else if (!add_call(cs, v)) {
        cs->oom = true;
        return;
    }
    cs->spans[cs->n_spans++] = (struct span){from, to};
}

static const char *find(const char *s, size_t n, const char *pat)
{
    size_t m = strlen(pat);
    for (size_t i = 0; i + m <= n; i++)
        if (s[i] == pat[0] && !memcmp(s + i, pat, m))
            return s + i;
    return NULL;
}

static bool space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Parse the JSON value at the start of p[0..n) (after blanks); *used gets
 * the bytes it took. NULL when there is none. */
static cJSON *json_prefix(const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n && space(p[i]))
        i++;
    if (i == n || (p[i] != '{' && p[i] != '['))
        return NULL;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(p + i, n - i, &end, false);
    if (!v)
        return NULL;
    *used = (size_t)(end - p);
    return v;
}

/* <tool_call> JSON </tool_call>, the closing tag optional at the end. */
static void scan_tags(const struct remote_request *req, const char *text, size_t n,
                      struct calls *cs)
{
    static const char open[] = "<tool_call>", close[] = "</tool_call>";
    size_t at = 0;
    const char *o;
    while (!cs->oom && (o = find(text + at, n - at, open))) {
        size_t from = (size_t)(o - text), body = from + sizeof(open) - 1;
        const char *c = find(text + body, n - body, close);
        size_t body_end = c ? (size_t)(c - text) : n;
        size_t to = c ? body_end + sizeof(close) - 1 : n;
        size_t used = 0;
        cJSON *v = json_prefix(text + body, body_end - body, &used);
        bool rest_blank = true;
        for (size_t i = body + used; v && i < body_end; i++)
            rest_blank = rest_blank && space(text[i]);
        if (v && rest_blank)
            take(req, v, from, to, cs);
        cJSON_Delete(v);
        at = to > from ? to : from + 1;
    }
}

/* A marker then JSON: [TOOL_CALLS] [...], <|python_tag|> {...}. */
static void scan_marker(const struct remote_request *req, const char *text, size_t n,
                        const char *marker, struct calls *cs)
{
    size_t at = 0, m = strlen(marker);
    const char *o;
    while (!cs->oom && (o = find(text + at, n - at, marker))) {
        size_t from = (size_t)(o - text), body = from + m, used = 0;
        cJSON *v = json_prefix(text + body, n - body, &used);
        if (v)
            take(req, v, from, body + used, cs);
        cJSON_Delete(v);
        at = body + (v ? used : 0);
    }
}

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->from < y->from ? -1 : x->from > y->from;
}

int toolcall_parse(const struct remote_request *req, const char *text, size_t n,
                   struct remote_result *res, char **content)
{
    if (!req->n_tools || req->tool_choice == REMOTE_TOOL_CHOICE_NONE || !n)
        return 0;
    struct calls cs = {0};
    scan_tags(req, text, n, &cs);
    if (!cs.n)
        scan_marker(req, text, n, "[TOOL_CALLS]", &cs);
    if (!cs.n)
        scan_marker(req, text, n, "<|python_tag|>", &cs);
    if (!cs.n && !cs.oom) {
        /* The whole answer one JSON call (Llama 3.2 without a marker). */
        size_t used = 0;
        cJSON *v = json_prefix(text, n, &used);
        bool rest_blank = true;
        for (size_t i = used; v && i < n; i++)
            rest_blank = rest_blank && space(text[i]);
        if (v && rest_blank)
            take(req, v, 0, n, &cs);
        cJSON_Delete(v);
    }
    char *rest = NULL;
    if (cs.n && !cs.oom && content) {
        qsort(cs.spans, cs.n_spans, sizeof(cs.spans[0]), cmp_span);
        rest = malloc(n + 1);
        if (!rest) {
            cs.oom = true;
        } else {
            size_t len = 0, at = 0;
            for (size_t i = 0; i < cs.n_spans; i++) {
                memcpy(rest + len, text + at, cs.spans[i].from - at);
                len += cs.spans[i].from - at;
                at = cs.spans[i].to;
            }
            memcpy(rest + len, text + at, n - at);
            len += n - at;
            size_t b = 0;
            while (b < len && space(rest[b]))
                b++;
            while (len > b && space(rest[len - 1]))
                len--;
            memmove(rest, rest + b, len - b);
            rest[len - b] = '\0';
        }
    }
    if (cs.oom) {
        for (size_t i = 0; i < cs.n; i++) {
            free(cs.v[i].id);
            free(cs.v[i].name);
            free(cs.v[i].arguments);
            cJSON_Delete(cs.v[i].args);
        }
        free(cs.v);
        free(rest);
        return -1;
    }
    if (!cs.n)
        return 0;
    res->tool_calls = cs.v;
    res->n_tool_calls = cs.n;
    if (content)
        *content = rest;
    return (int)cs.n;
}
