/* toolcall.h: tool calls written in a local model's text (daemon internal).
 * A remote provider returns tool calls as structure; a local model writes
 * them as text in its chat format's convention. This reads the common ones
 * back into remote.h's result shape so a /v1/chat/completions client sees
 * the same tool_calls whichever kind of model answered:
 *
 *   <tool_call>{"name": N, "arguments": {...}}</tool_call>   Hermes, Qwen 2.5/3,
 *                                                           SmolLM (an array inside too)
 *   [TOOL_CALLS][{"name": N, "arguments": {...}}, ...]      Mistral
 *   <|python_tag|>{"name": N, "parameters": {...}}          Llama 3.1+
 *   {"name": N, "parameters"|"arguments": {...}}            Llama 3.2 (the whole answer)
 *
 * A call counts only when N is one of the request's tools; anything else
 * stays text. The model's text is hostile input: malformed JSON, unclosed
 * tags and huge inputs are text, never errors. Pure: no I/O, any thread. */
#ifndef SHOAL_DAEMON_TOOLCALL_H
#define SHOAL_DAEMON_TOOLCALL_H

#include "common.h"
#include "remote.h"

#include <stddef.h>

/* Find the tool calls in text[0..n) for the tools of req. When there are
 * any, res->tool_calls gets them (ids "call_0", "call_1", ...; arguments
 * as compact JSON text and parsed), *content (may be NULL) the text
 * outside the calls with surrounding whitespace trimmed (caller frees), and
 * the return is the number found; 0 leaves res and *content alone. At most
 * REMOTE_CAP_TOOL_CALLS calls. -1 when out of memory (res unchanged). */
int toolcall_parse(const struct remote_request *req, const char *text, size_t n,
                   struct remote_result *res, char **content);

#endif
