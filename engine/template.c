/* template.c: the engine's chat-template API (engine.h): parse a Jinja
 * chat template, find a model's template (or the ChatML fallback), and
 * render OpenAI-style messages with it. The interpreter itself lives in
 * jinja_*.c; this file only adapts it. Invariant: a struct
 * engine_template is immutable after parsing, so renders may share it. */
#include "engine_internal.h"
#include "jinja.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The template used when a model carries none: ChatML, as the SmolLM /
 * Qwen / Hermes families write it. Every message becomes
 * "<|im_start|>ROLE\nCONTENT<|im_end|>\n"; with add_generation_prompt an
 * "<|im_start|>assistant\n" follows. bos/eos tokens are not added, tools
 * are ignored, and a message whose content is not a string fails to render
 * (as it would in transformers). */
const char engine_chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct engine_template {
    struct jtmpl *t;
};

enum shoal_err engine_template_parse(const char *src, size_t n, struct engine_template **out,
                                     struct shoal_diag *d)
{
    struct engine_template *et = calloc(1, sizeof(*et));
    if (!et)
        return shoal_diag_set(d, SHOAL_ERR_NOMEM, "out of memory");
    enum shoal_err rc = jinja_parse(src, n, &et->t, d);
    if (rc != SHOAL_OK) {
        free(et);
        return rc;
    }
    *out = et;
    return SHOAL_OK;
}

void engine_template_free(struct engine_template *t)
{
    if (!t)
        return;
    jinja_free(t->t);
    free(t);
}

enum shoal_err engine_model_template(const struct engine_model *m, struct engine_template **out,
                                     bool *fallback, struct shoal_diag *d)
{
    /* model.c checked tokenizer.chat_template when the model opened */
    if (!m || !m->chat_template.p) {
        enum shoal_err rc = engine_template_parse(engine_chatml_template,
                                                  strlen(engine_chatml_template), out, d);
        if (rc == SHOAL_OK && fallback)
            *fallback = true;
        return rc;
    }
    if (m->chat_template.n > JINJA_MAX_SOURCE)
        return shoal_diag_set(d, SHOAL_ERR_TOO_BIG,
                              "tokenizer.chat_template is %llu bytes, more than %u",
                              (unsigned long long)m->chat_template.n, JINJA_MAX_SOURCE);
    enum shoal_err rc = engine_template_parse(m->chat_template.p, (size_t)m->chat_template.n,
                                              out, d);
    if (rc != SHOAL_OK) {
        shoal_diag_path(d, "tokenizer.chat_template");
        return rc;
    }
    if (fallback)
        *fallback = false;
    return SHOAL_OK;
}

enum shoal_err engine_template_render_at(const struct engine_template *t,
                                         const struct engine_chat *chat, int64_t now, bool utc,
                                         struct shoal_buf *out, struct shoal_diag *d)
{
    struct jinja_opts o;
    jinja_limits_default(&o.lim);
    o.now = (time_t)now;
    o.utc = utc;
    return jinja_render(t->t, chat, &o, out, d);
}

enum shoal_err engine_template_render(const struct engine_template *t,
                                      const struct engine_chat *chat, struct shoal_buf *out,
                                      struct shoal_diag *d)
{
    return engine_template_render_at(t, chat, (int64_t)time(NULL), false, out, d);
}

enum shoal_err engine_template_render_opts(const struct engine_template *t,
                                           const struct engine_chat *chat,
                                           const struct jinja_opts *o, struct shoal_buf *out,
                                           struct shoal_diag *d)
{
    return jinja_render(t->t, chat, o, out, d);
}
