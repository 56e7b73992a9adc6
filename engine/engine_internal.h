/* engine_internal.h: declarations shared between the engine's own files
 * (model, vocabulary, template). Other modules include engine.h only. */
#ifndef SHOAL_ENGINE_INTERNAL_H
#define SHOAL_ENGINE_INTERNAL_H

#include "engine.h"
#include "gguf.h"

struct engine_model {
    char *path;
    struct gguf *gguf;
    struct engine_hparams hp;
    struct engine_vocab *vocab; /* NULL when the file has no tokenizer */
    /* tokenizer.chat_template, checked to be UTF-8 without NUL bytes; p is
     * NULL when the file has none. A view into the mapping. */
    struct gguf_str chat_template;
};

/* engine_model_open over n bytes in memory (fuzzing, tests): the same
 * checks, name standing for the path in diagnostics. data must outlive
 * the model. */
enum shoal_err engine_model_open_memory(const void *data, size_t n, const char *name,
                                        struct engine_model **out, struct shoal_diag *d);

/* ---- vocab.c and the tokenizers ---- */

/* Build the vocabulary from tokenizer.ggml.* keys. NOT_FOUND when the file
 * has no tokenizer.ggml.model; INVALID (d names the key) when it is
 * present but inconsistent; UNSUPPORTED for an unknown model or
 * pre-tokenizer kind. */
enum shoal_err vocab_load(const struct gguf *g, struct engine_vocab **out, struct shoal_diag *d);
void vocab_free(struct engine_vocab *v);
/* tokenizer.ggml.pre as loaded ("qwen2", "llama3", ...), "" when none. */
const char *vocab_pre_name(const struct engine_vocab *v);

/* ---- template.c ---- */

/* The template used when a model has none: ChatML, documented in README. */
extern const char engine_chatml_template[];

#endif
