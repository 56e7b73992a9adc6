/* provider.c: the one door to local and remote models. A call wraps the
 * kind-specific run so that shutdown can end every call the same way and
 * callers hold one handle type. */
#include "provider.h"

#include "local_run.h"
#include "remote_run.h"

#include <stdlib.h>
#include <string.h>

struct providers {
    struct event_base *base;
    struct fetch *f;
    struct local_engine *le;
    struct provider_call *live;
};

struct provider_call {
    struct providers *p;
    bool local;
    struct local_run *lr;
    struct remote_run *rr;
    struct provider_cb cb;
    struct provider_call *prev, *next;
};

static void unlink_call(struct provider_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->p->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void call_on_text(void *arg, const char *text, size_t n)
{
    struct provider_call *c = arg;
    if (c->cb.on_text)
        c->cb.on_text(c->cb.arg, text, n);
}

static void call_on_done(void *arg, const struct remote_result *res, const struct remote_error *err,
                         const struct provider_stats *st)
{
    struct provider_call *c = arg;
    struct provider_cb cb = c->cb;
    unlink_call(c);
    free(c);
    cb.on_done(cb.arg, res, err, st);
}

enum shoal_err providers_new(struct event_base *base, struct fetch *f,
                             const struct config_engine *eng, struct providers **out,
                             struct shoal_diag *d)
{
    struct providers *p = calloc(1, sizeof(*p));
    if (!p)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "providers: out of memory");
    p->base = base;
    p->f = f;
    enum shoal_err e = local_engine_new(base, eng->threads, eng->queue, eng->memory_budget, &p->le, d);
    if (e) {
        free(p);
        return e;
    }
    *out = p;
    return SHOAL_OK;
}

void providers_free(struct providers *p)
{
    if (!p)
        return;
    while (p->live) {
        struct provider_call *c = p->live;
        if (c->local)
            local_run_cancel(c->lr);
        else
            remote_run_cancel(c->rr);
        struct remote_result res;
        struct remote_error err;
        remote_result_init(&res);
        remote_error_clear(&err);
        err.kind = REMOTE_ERR_CANCELLED;
        shoal_strlcpy(err.message, "the daemon is stopping", sizeof(err.message));
        res.text = calloc(1, 1);
        res.finish = REMOTE_FINISH_ERROR;
        struct provider_stats st = {0};
        call_on_done(c, &res, &err, &st);
        remote_result_fini(&res);
    }
    local_engine_free(p->le);
    free(p);
}

enum shoal_err provider_call_start(struct providers *p, const struct config_model *m,
                                   const struct cJSON *chat_request, bool stream,
                                   const struct provider_cb *cb, struct provider_call **out,
                                   struct shoal_diag *d)
{
    struct provider_call *c = calloc(1, sizeof(*c));
    if (!c)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    c->p = p;
    c->cb = *cb;
    c->local = m->provider == CONFIG_PROVIDER_LOCAL;
    struct provider_cb mine = {.on_text = call_on_text, .on_done = call_on_done, .arg = c};
    enum shoal_err e =
        c->local ? local_run_start(p->le, m, chat_request, stream, &mine, &c->lr, d)
                 : remote_run_start(p->base, p->f, m, chat_request, stream, &mine, &c->rr, d);
    if (e) {
        free(c);
        return e;
    }
    c->next = p->live;
    if (p->live)
        p->live->prev = c;
    p->live = c;
    if (out)
        *out = c;
    return SHOAL_OK;
}

void provider_call_cancel(struct provider_call *c)
{
    if (!c)
        return;
    if (c->local)
        local_run_cancel(c->lr);
    else
        remote_run_cancel(c->rr);
    unlink_call(c);
    free(c);
}

bool provider_model_loaded(struct providers *p, const struct config_model *m, uint64_t *bytes)
{
    return m->provider == CONFIG_PROVIDER_LOCAL && m->path &&
           local_engine_loaded(p->le, m->path, m->context, bytes);
}
