/* provider.h: one interface to every model shoald serves (daemon internal).
 * A call takes an OpenAI Chat Completions request and a model from the
 * configuration, and ends with the one result shape of remote/remote.h
 * (text, tool calls, finish reason, usage, logprobs) or a typed error,
 * whatever runs the model: the engine on its own thread for a local GGUF
 * file (local_run.h), or libcurl on the loop for an OpenAI-compatible or
 * Anthropic endpoint (remote_run.h). The router, the agents and the
 * /v1/chat/completions route see only this. Invariant: every started call
 * gets exactly one on_done, on the loop thread and never from inside
 * provider_call_start, unless provider_call_cancel came first (then none);
 * providers_free ends the calls still running with CANCELLED. Thread: loop,
 * every function. */
#ifndef SHOAL_DAEMON_PROVIDER_H
#define SHOAL_DAEMON_PROVIDER_H

#include "common.h"
#include "config.h"
#include "remote.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;
struct event_base;
struct fetch;

/* What a finished call cost and took, besides the result. */
struct provider_stats {
    double cost_usd;         /* at the model's price; 0 when no usage was reported */
    uint64_t first_token_ms; /* call start → first text (0 when none) */
    uint64_t total_ms;       /* call start → on_done */
    uint32_t attempts;       /* requests sent (remote), 1 for a local model */
    uint64_t queue_ms;       /* local: waiting for the engine, model loading included */
};

struct provider_cb {
    /* Each piece of answer text as it arrives (stream only); may be NULL. */
    void (*on_text)(void *arg, const char *text, size_t n);
    /* The end. err NULL: success. res always points at what arrived
     * (partial on error); res, err and st live for the call. */
    void (*on_done)(void *arg, const struct remote_result *res, const struct remote_error *err,
                    const struct provider_stats *st);
    void *arg;
};

struct providers;
struct provider_call;

/* The service behind every call: remote calls go through f on base, local
 * ones to an engine thread (threads and queue from eng, copied) that keeps
 * the models it has loaded resident. NOMEM, IO (a thread or an eventfd). */
enum shoal_err providers_new(struct event_base *base, struct fetch *f,
                             const struct config_engine *eng, struct providers **out,
                             struct shoal_diag *d) SHOAL_NODISCARD;
/* End every call still running (on_done with CANCELLED), stop the engine
 * thread and unload the models. NULL: no-op. Before fetch_free. */
void providers_free(struct providers *p);

/* Start a call of model m (borrowed: what the call needs is copied) with
 * chat_request (borrowed). stream: on_text as text arrives. INVALID (d
 * says why, with the request member: $.messages[1].role ...), UNSUPPORTED
 * (a feature this model kind cannot carry), BUSY (the engine's queue is
 * full), NOMEM; on_done is then never called. *out (may be NULL)
 * identifies the call for provider_call_cancel until on_done. */
enum shoal_err provider_call_start(struct providers *p, const struct config_model *m,
                                   const struct cJSON *chat_request, bool stream,
                                   const struct provider_cb *cb, struct provider_call **out,
                                   struct shoal_diag *d) SHOAL_NODISCARD;

/* Whether local model m is loaded now, and the bytes (weights and K/V
 * cache) it is counted for (bytes may be NULL). false for remote models. */
bool provider_model_loaded(struct providers *p, const struct config_model *m, uint64_t *bytes);

/* Stop a call that has not ended; on_done will not be called. Allowed
 * inside on_text (a client that went away mid-stream). NULL: no-op. */
void provider_call_cancel(struct provider_call *c);

#endif
