/* remote_run.h: one call to a remote model (daemon internal): the request
 * built with remote/remote.h, sent with daemon/fetch.h, streamed or whole,
 * retried per the model's policy within its total deadline, behind a
 * per-model circuit breaker, and priced. Invariant: every started run ends
 * with exactly one on_done call, never from inside remote_run_start, unless
 * remote_run_cancel came first (then none). The API key reaches only the
 * request's auth header. All functions: loop thread. */
#ifndef SHOAL_DAEMON_REMOTE_RUN_H
#define SHOAL_DAEMON_REMOTE_RUN_H

#include "common.h"
#include "config.h"
#include "provider.h"
#include "remote.h"

#include <stdbool.h>
#include <stdint.h>

struct cJSON;
struct event_base;
struct fetch;
struct remote_run;

/* Start a run of chat_request (an OpenAI Chat Completions request; borrowed)
 * on remote model m (borrowed: what the run needs is copied) through f,
 * whose event loop is base. stream: ask for an event stream and call
 * on_text as text arrives. INVALID (d says why: not a remote model, a bad
 * request, a bad URL), UNSUPPORTED, NOMEM; on_done is then never called.
 * *out (may be NULL) identifies the run for remote_run_cancel until on_done. */
enum shoal_err remote_run_start(struct event_base *base, struct fetch *f,
                                const struct config_model *m, const struct cJSON *chat_request,
                                bool stream, const struct provider_cb *cb,
                                struct remote_run **out, struct shoal_diag *d) SHOAL_NODISCARD;

/* Stop a run that has not ended and free it; on_done will not be called.
 * Also from inside on_text (the run is then freed once its transfer has
 * unwound). NULL: no-op. */
void remote_run_cancel(struct remote_run *r);

#endif
