/* engine.h: the public header of shoal's inference engine. For now: open a
 * GGUF model file and describe it, tokenize and detokenize with its
 * vocabulary, and render its chat template. The engine knows nothing of
 * HTTP, Lua, YAML or SQLite. Thread rules are given per function; objects
 * that are immutable after creation say so and may be shared. */
#ifndef SHOAL_ENGINE_H
#define SHOAL_ENGINE_H

#include "common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* ---- Tensor types (the numbering GGUF files use) ---- */

enum engine_type {
    ENGINE_TYPE_F32 = 0,
    ENGINE_TYPE_F16 = 1,
    ENGINE_TYPE_Q4_0 = 2,
    ENGINE_TYPE_Q4_1 = 3,
    ENGINE_TYPE_Q5_0 = 6,
    ENGINE_TYPE_Q5_1 = 7,
    ENGINE_TYPE_Q8_0 = 8,
    ENGINE_TYPE_Q8_1 = 9,
    ENGINE_TYPE_Q2_K = 10,
    ENGINE_TYPE_Q3_K = 11,
    ENGINE_TYPE_Q4_K = 12,
    ENGINE_TYPE_Q5_K = 13,
    ENGINE_TYPE_Q6_K = 14,
    ENGINE_TYPE_Q8_K = 15,
    ENGINE_TYPE_IQ2_XXS = 16,
    ENGINE_TYPE_IQ2_XS = 17,
    ENGINE_TYPE_IQ3_XXS = 18,
    ENGINE_TYPE_IQ1_S = 19,
    ENGINE_TYPE_IQ4_NL = 20,
    ENGINE_TYPE_IQ3_S = 21,
    ENGINE_TYPE_IQ2_S = 22,
    ENGINE_TYPE_IQ4_XS = 23,
    ENGINE_TYPE_I8 = 24,
    ENGINE_TYPE_I16 = 25,
    ENGINE_TYPE_I32 = 26,
    ENGINE_TYPE_I64 = 27,
    ENGINE_TYPE_F64 = 28,
    ENGINE_TYPE_IQ1_M = 29,
    ENGINE_TYPE_BF16 = 30,
    ENGINE_TYPE_TQ1_0 = 34,
    ENGINE_TYPE_TQ2_0 = 35,
    ENGINE_TYPE_COUNT = 39, /* one past the largest value a file may hold */
};

/* "Q4_K", "F16", ...; NULL for a value that is no known type. */
const char *engine_type_name(enum engine_type t);
/* Elements per block and bytes per block; false for unknown types. */
bool engine_type_layout(enum engine_type t, uint32_t *block_elems, uint32_t *block_bytes);

/* ---- Models ---- */

enum engine_rope {
    ENGINE_ROPE_NONE,
    ENGINE_ROPE_NORM, /* rotate adjacent pairs (llama) */
    ENGINE_ROPE_NEOX, /* rotate halves (qwen2, qwen3, phi3, gemma) */
};

enum engine_rope_scaling {
    ENGINE_ROPE_SCALING_NONE,
    ENGINE_ROPE_SCALING_LINEAR,
    ENGINE_ROPE_SCALING_YARN,
    ENGINE_ROPE_SCALING_LONGROPE,
};

/* An architecture's hyper-parameters, read from "<arch>.*" keys. Zero
 * where the file does not say (a vocabulary-only file has none). */
struct engine_hparams {
    char arch[32];            /* general.architecture */
    uint32_t context_length;
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_ff;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim_k;      /* attention.key_length, else n_embd / n_head */
    uint32_t head_dim_v;      /* attention.value_length, else n_embd / n_head */
    uint32_t n_vocab;
    uint32_t n_expert;
    uint32_t n_expert_used;
    enum engine_rope rope;
    uint32_t rope_dims;       /* rope.dimension_count, else head_dim_k */
    float rope_freq_base;     /* rope.freq_base, else 10000 */
    enum engine_rope_scaling rope_scaling;
    float rope_scale_factor;
    uint32_t rope_orig_context;
    float norm_eps;           /* attention.layer_norm_rms_epsilon */
    bool tied_embeddings;     /* no output.weight: the head reuses token_embd */
};

/* An open model file: the mapping, its metadata and tensors, its vocabulary
 * and its chat template. Immutable after open; any thread may read it. */
struct engine_model;

/* Map and check path. The whole file is validated (see gguf.h); a
 * vocabulary that is present but broken is an error here, not later. The
 * chat template is only checked to be UTF-8 without NUL here: it is parsed
 * by engine_model_template, so a model whose template uses an unsupported
 * feature still opens and can be used with another template. d names the
 * problem and where. */
enum shoal_err engine_model_open(const char *path, struct engine_model **out,
                                 struct shoal_diag *d);
void engine_model_close(struct engine_model *m);

const struct engine_hparams *engine_model_hparams(const struct engine_model *m);

/* Everything `shoal model inspect` shows, as a JSON object the caller
 * owns: architecture, parameter count, file size, tensor-type mix, context
 * length, tokenizer kind and vocabulary size, special tokens, chat template
 * (present, or the fallback in use), hyper-parameters. */
enum shoal_err engine_model_describe(const struct engine_model *m, struct cJSON **out);

/* ---- Vocabulary and tokenizers ---- */

enum engine_vocab_kind {
    ENGINE_VOCAB_NONE,
    ENGINE_VOCAB_SPM,  /* tokenizer.ggml.model = llama: SentencePiece-style */
    ENGINE_VOCAB_BPE,  /* gpt2: byte-level BPE with a pre-tokenizer regex */
    ENGINE_VOCAB_WPM,  /* bert: WordPiece */
};

/* A model's vocabulary; owned by the model, immutable, shareable. NULL when
 * the file has none. */
struct engine_vocab;
const struct engine_vocab *engine_model_vocab(const struct engine_model *m);

enum engine_vocab_kind engine_vocab_kind(const struct engine_vocab *v);
uint32_t engine_vocab_size(const struct engine_vocab *v);
/* Special token ids; -1 when the vocabulary has none. */
int32_t engine_vocab_bos(const struct engine_vocab *v);
int32_t engine_vocab_eos(const struct engine_vocab *v);
/* The token's text as stored (e.g. "▁the", "Ġthe", "<0x0A>"); NULL out of range. */
const char *engine_vocab_text(const struct engine_vocab *v, int32_t id, size_t *len);
bool engine_vocab_is_control(const struct engine_vocab *v, int32_t id);
/* The bytes the token decodes to ("▁the" → " the", "<0x0A>" → "\n",
 * "Ġthe" → " the"; a control token → its text), without the rule that
 * drops the leading space of a whole text. Not NUL-terminated; NULL out
 * of range. Valid as long as the vocabulary. */
const char *engine_vocab_piece(const struct engine_vocab *v, int32_t id, size_t *len);

/* Token ids, growing as needed up to max. */
struct engine_tokens {
    int32_t *ids;
    size_t n, cap, max;
};
void engine_tokens_init(struct engine_tokens *t, size_t max);
void engine_tokens_fini(struct engine_tokens *t);

/* Encode n bytes of UTF-8 text, appending ids to out. add_special: add BOS
 * (and EOS) as the vocabulary's metadata says. parse_special: text such as
 * "<|im_start|>" becomes that special token; otherwise it is plain text.
 * Invalid UTF-8 is encoded the way the tokenizer kind does (byte fallback
 * or byte-level), never an error. TOO_BIG past out->max; NOMEM. Any
 * thread. */
enum shoal_err engine_tokenize(const struct engine_vocab *v, const char *text, size_t n,
                               bool add_special, bool parse_special, struct engine_tokens *out);

/* Decode ids to text, appending to out. specials: render control tokens
 * (BOS, <|im_end|>, ...) as their text; otherwise skip them. INVALID for
 * an id out of range. */
enum shoal_err engine_detokenize(const struct engine_vocab *v, const int32_t *ids, size_t n,
                                 bool specials, struct shoal_buf *out);

/* Streaming detokenization: push one id at a time; only whole UTF-8
 * characters are appended to out, the rest waits for the next id (or
 * flush). Invalid UTF-8 in the token bytes becomes U+FFFD, so the stream
 * is always valid UTF-8 (engine_detokenize returns the exact bytes).
 * Storage the caller owns; no allocation. */
struct engine_detok {
    const struct engine_vocab *v;
    bool specials;
    bool first;          /* no text emitted yet (SPM drops one leading space) */
    unsigned char pending[8];
    unsigned n_pending;
};
void engine_detok_init(struct engine_detok *s, const struct engine_vocab *v, bool specials);
enum shoal_err engine_detok_push(struct engine_detok *s, int32_t id, struct shoal_buf *out);
/* Emit what is pending (an incomplete character becomes U+FFFD). */
enum shoal_err engine_detok_flush(struct engine_detok *s, struct shoal_buf *out);

/* ---- Chat templates ---- */

/* A parsed Jinja chat template; immutable, shareable. */
struct engine_template;

/* Parse a template. INVALID with d at line:col for a syntax error or a
 * feature outside the supported subset. */
enum shoal_err engine_template_parse(const char *src, size_t n, struct engine_template **out,
                                     struct shoal_diag *d);
void engine_template_free(struct engine_template *t);

/* The model's tokenizer.chat_template, or the documented ChatML fallback
 * when the file has none (*fallback says which). Caller owns *out. */
enum shoal_err engine_model_template(const struct engine_model *m, struct engine_template **out,
                                     bool *fallback, struct shoal_diag *d);

/* What a chat template renders. messages: an array of OpenAI-style
 * messages (role, content, tool_calls, tool_call_id, name, ...). tools:
 * an array or NULL (absent) or a JSON null. extra: an object of further
 * variables (enable_thinking, date_string, ...) or NULL. bos/eos: the
 * token strings, "" when the model has none. All borrowed. */
struct engine_chat {
    const struct cJSON *messages;
    const struct cJSON *tools;
    const struct cJSON *extra;
    bool add_generation_prompt;
    const char *bos_token;
    const char *eos_token;
};

/* Render into out (appended). A template's raise_exception("...") is
 * INVALID with that message in d; runtime errors (undefined method, type
 * errors) are INVALID with the template's line:col; loop, recursion and
 * output caps give TOO_BIG. Never hangs, never crashes. Any thread. */
enum shoal_err engine_template_render(const struct engine_template *t,
                                      const struct engine_chat *chat, struct shoal_buf *out,
                                      struct shoal_diag *d);

/* engine_template_render with strftime_now() reading now (seconds since
 * the epoch; as UTC when utc, else local time) instead of the clock, so a
 * time-dependent template renders reproducibly. */
enum shoal_err engine_template_render_at(const struct engine_template *t,
                                         const struct engine_chat *chat, int64_t now, bool utc,
                                         struct shoal_buf *out, struct shoal_diag *d);

/* ---- Inference ---- */

/* A model bound for inference: its weights checked against the
 * architecture (llama, qwen2, qwen3, phi3; every tensor type of
 * engine_type_name except the IQ2/IQ3/IQ1/TQ families) and the kernels
 * chosen for this CPU. Immutable; shared by any number of sequences on any
 * threads. Borrows m, which must outlive it. UNSUPPORTED for another
 * architecture, LongRoPE or mixture-of-experts; INVALID for a missing or
 * misshapen tensor (d names it). */
struct engine_llm;
enum shoal_err engine_llm_new(const struct engine_model *m, struct engine_llm **out,
                              struct shoal_diag *d) SHOAL_NODISCARD;
void engine_llm_free(struct engine_llm *l);
const struct engine_hparams *engine_llm_hparams(const struct engine_llm *l);

/* One running sequence: its K/V cache, scratch and compute threads. */
struct engine_seq_options {
    uint32_t n_ctx;     /* tokens of context; 0: the model's (at most its trained length) */
    uint32_t n_batch;   /* tokens per forward step; 0: 256 */
    uint32_t n_threads; /* compute threads; 0: the physical core count */
    bool kv_f32;        /* K/V cache in F32 instead of F16 */
};
struct engine_seq;
enum shoal_err engine_seq_new(const struct engine_llm *l, const struct engine_seq_options *o,
                              struct engine_seq **out, struct shoal_diag *d) SHOAL_NODISCARD;
void engine_seq_free(struct engine_seq *s);

/* Feed n tokens at the next positions (prompt processing in batches of
 * n_batch, or one generated token). Logits for every fed position when
 * all_logits (n <= n_batch), else for the last one. TOO_BIG on context
 * overflow (nothing is fed), INVALID for an id outside the vocabulary.
 * Thread: the sequence's owner; blocks while the pool computes. */
enum shoal_err engine_seq_decode(struct engine_seq *s, const int32_t *tokens, size_t n,
                                 bool all_logits, struct shoal_diag *d) SHOAL_NODISCARD;
/* Logits row i (n_vocab floats) of the last decode; NULL past them. Valid
 * until the next decode. */
const float *engine_seq_logits(const struct engine_seq *s, size_t i);
/* Tokens in the cache, and the context size. */
uint32_t engine_seq_pos(const struct engine_seq *s);
uint32_t engine_seq_n_ctx(const struct engine_seq *s);
/* Forget the cache from position pos on (pos <= current). */
void engine_seq_rewind(struct engine_seq *s, uint32_t pos);

/* ---- Sampling ---- */

struct engine_sampler_params {
    float temperature;         /* 0: greedy (arg-max, ties to the lowest id) */
    int32_t top_k;             /* keep the k most likely; 0: all */
    float top_p;               /* keep the smallest set with this much mass; 1: off */
    float min_p;               /* drop tokens below min_p * p(best); 0: off */
    float repeat_penalty;      /* divide positive / multiply negative logits of recent tokens; 1: off */
    float presence_penalty;    /* subtract once from recent tokens' logits; 0: off */
    float frequency_penalty;   /* subtract per occurrence in the window; 0: off */
    uint32_t penalty_last_n;   /* the window of accepted tokens the penalties see */
    uint64_t seed;             /* same seed, same parameters, same logits: same tokens */
    uint32_t n_logprobs;       /* alternatives to report per token (<= 20) */
};
/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalties, window 64, seed 0. */
void engine_sampler_params_default(struct engine_sampler_params *p);

/* What the model thought of the chosen token: its log-probability under
 * the model's own distribution (log-softmax of the logits, before any
 * sampling transform), and the n_top most likely alternatives. */
struct engine_token_info {
    float logprob;
    uint32_t n_top;
    struct {
        int32_t id;
        float logprob;
    } top[20];
};

struct engine_sampler;
/* INVALID (with the rule broken) for parameters out of range; NOMEM. */
enum shoal_err engine_sampler_new(const struct engine_sampler_params *p, uint32_t n_vocab,
                                  struct engine_sampler **out,
                                  struct shoal_diag *d) SHOAL_NODISCARD;
void engine_sampler_free(struct engine_sampler *s);
/* Choose a token from n_vocab logits; info (may be NULL) gets the
 * confidence signals. Thread: the sampler's owner. */
int32_t engine_sampler_sample(struct engine_sampler *s, const float *logits,
                              struct engine_token_info *info);
/* Record a token the sequence took (prompt or generated) for the penalties. */
void engine_sampler_accept(struct engine_sampler *s, int32_t id);

/* Stop strings in streamed text: the offset of the earliest stop string
 * found in text[0..n) (n when none), and in *hold the length of the
 * longest tail of text that is a proper prefix of some stop string (0 when
 * one was found): the caller prints text up to n - hold and keeps the rest
 * until more text decides it. */
size_t engine_stop_find(const char *text, size_t n, const char *const *stops, size_t n_stops,
                        size_t *hold);

/* ---- Chat prompts and generation ---- */

/* Render chat with t and tokenize the text into out (appended), special
 * tokens written as text parsed as such. chat->bos_token / eos_token NULL:
 * the vocabulary's. BOS is added as the vocabulary's metadata says, unless
 * the rendered text already begins with it (templates that write
 * {{ bos_token }} would otherwise get two). text (may be NULL) receives the
 * rendered prompt. INVALID from the template (d at line:col), TOO_BIG past
 * out->max, NOMEM. Any thread. */
enum shoal_err engine_chat_tokenize(const struct engine_model *m, const struct engine_template *t,
                                    const struct engine_chat *chat, struct shoal_buf *text,
                                    struct engine_tokens *out, struct shoal_diag *d) SHOAL_NODISCARD;

/* Why a generation ended. */
enum engine_finish {
    ENGINE_FINISH_EOS = 0,   /* the model ended its turn (EOS or another control token) */
    ENGINE_FINISH_STOP,      /* a stop string (not part of the text) */
    ENGINE_FINISH_LENGTH,    /* max_tokens */
    ENGINE_FINISH_CONTEXT,   /* the context is full */
    ENGINE_FINISH_CANCELLED, /* a callback or *cancel said so */
};
/* "eos", "stop", "length", "context", "cancelled". */
const char *engine_finish_name(enum engine_finish f);

struct engine_gen_params {
    uint32_t max_tokens; /* 0: until EOS, a stop string or the context's end */
    const char *const *stops;
    size_t n_stops;
    /* Text as it becomes final: whole UTF-8 characters, and never a tail
     * that could still turn out to start a stop string. false: cancel. */
    bool (*on_text)(void *arg, const char *text, size_t n);
    /* Each generated token with its confidence, before its text. false:
     * cancel. */
    bool (*on_token)(void *arg, int32_t id, const struct engine_token_info *info);
    void *arg;
    /* Polled between prompt batches and between tokens; may be NULL. */
    const _Atomic bool *cancel;
};

struct engine_gen_stats {
    enum engine_finish finish;
    uint32_t n_prompt;       /* prompt tokens computed (after any reuse) */
    uint32_t n_gen;          /* tokens generated (the EOS that ended it excluded) */
    uint64_t prompt_us;      /* prompt processing */
    uint64_t first_token_us; /* start → first token sampled */
    uint64_t total_us;
};

/* Generate after prompt: feed prompt[0..n) at the sequence's next positions
 * (the caller rewinds, or keeps a shared prefix cached and passes only what
 * follows it; n >= 1), the prompt's tokens also to the sampler's penalty
 * window, then sample, feed and report tokens until a finish. Stop strings
 * are matched across token boundaries. TOO_BIG (nothing fed) when the
 * prompt does not fit in the context with room for one token; INVALID for
 * an id outside the vocabulary; errors of engine_seq_decode. st is filled
 * in on every return. Thread: the owner of seq and smp. */
enum shoal_err engine_generate(struct engine_seq *seq, struct engine_sampler *smp,
                               const struct engine_vocab *v, const int32_t *prompt, size_t n,
                               const struct engine_gen_params *p, struct engine_gen_stats *st,
                               struct shoal_diag *d) SHOAL_NODISCARD;

/* ---- Synthetic models ---- */

/* A random-weight model at a real model's shape, for benchmarks and
 * tests: shape "tiny", "smollm2-135m", "qwen2.5-0.5b", "llama3.2-1b" or
 * "qwen3-0.6b"; type F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL
 * or the mixes Q2_K, Q3_K_M, Q4_K_M, Q5_K_M, Q6_K (any case), with
 * llama-quantize's per-tensor choices (engine/synth.c has the table). */
struct engine_synth_options {
    const char *shape;
    const char *type;
    uint64_t seed;    /* same options, same seed: the same bytes */
    uint32_t n_layer; /* 0: the shape's own */
};
struct engine_synth_info {
    uint64_t file_bytes, n_params;
    uint32_t n_tensors;
};
/* Write the model to path: a temporary file beside it, renamed into place
 * when complete. INVALID for an unknown shape or type (d lists the known
 * ones) or n_layer over 512; IO naming the path; NOMEM. info may be NULL.
 * Streams row by row in a few MB of memory. Any thread. */
enum shoal_err engine_synth_write(const struct engine_synth_options *o, const char *path,
                                  struct engine_synth_info *info, struct shoal_diag *d);

#endif
