/* local_run.h: calls of local GGUF models (daemon internal): the engine
 * runs them one at a time on its own thread (so the loop never computes),
 * keeps each model it has loaded resident with one sequence whose K/V cache
 * is reused for the longest shared prompt prefix (agents resend the same
 * system prompt and tools every step), and streams text back to the loop
 * through one eventfd. Results use remote.h's shape, like remote_run.h.
 * Invariant: every started run gets exactly one on_done on the loop thread,
 * never inside local_run_start, unless local_run_cancel came first (then
 * none). Thread: loop, every function. */
#ifndef SHOAL_DAEMON_LOCAL_RUN_H
#define SHOAL_DAEMON_LOCAL_RUN_H

#include "common.h"
#include "config.h"
#include "provider.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;
struct event_base;
struct local_engine;
struct local_run;

/* Context of a model whose configuration gives none: the model's trained
 * length, at most this. */
#define LOCAL_DEFAULT_CONTEXT 4096u

/* threads: compute threads per sequence (0: the physical cores); queue:
 * runs that may wait for the engine before local_run_start answers BUSY;
 * memory_budget: bytes the loaded models may take (weights plus K/V
 * cache; 0: no budget): the least recently used are unloaded to make room,
 * and a model that alone is larger fails UNAVAILABLE. A model is also
 * unloaded once unused for its keep_alive (0: right after each call).
 * NOMEM, IO. */
enum shoal_err local_engine_new(struct event_base *base, unsigned threads, unsigned queue,
                                uint64_t memory_budget, struct local_engine **out,
                                struct shoal_diag *d) SHOAL_NODISCARD;
/* Stop the running generation at its next token, drop the queued runs,
 * join the thread, unload the models. Runs not cancelled before are freed
 * without on_done. NULL: no-op. */
void local_engine_free(struct local_engine *le);

/* Queue a call of local model m with chat_request (both borrowed). The
 * request is checked here (INVALID with the member's path); sampling reads
 * temperature, top_p, seed, presence/frequency_penalty, max_tokens, stop,
 * logprobs/top_logprobs; tools and chat_template_kwargs reach the model's
 * chat template. UNSUPPORTED for a JSON response_format (no constrained
 * decoding yet). BUSY past the engine's queue of waiting runs; NOMEM. */
enum shoal_err local_run_start(struct local_engine *le, const struct config_model *m,
                               const struct cJSON *chat_request, bool stream,
                               const struct provider_cb *cb, struct local_run **out,
                               struct shoal_diag *d) SHOAL_NODISCARD;

/* on_done will not be called; a running generation stops at its next
 * token. NULL: no-op. */
void local_run_cancel(struct local_run *r);

/* Whether the model at path with configured context n_ctx is loaded now,
 * and the bytes it is counted for (may be NULL). As of the engine's last
 * call or sweep. */
bool local_engine_loaded(struct local_engine *le, const char *path, uint32_t n_ctx,
                         uint64_t *bytes);

#endif
