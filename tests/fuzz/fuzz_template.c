/* fuzz_template.c: libFuzzer target for the chat-template engine. The input
 * is a template; it is parsed and, when it parses, rendered against a fixed
 * conversation (messages with tool calls, tools, extra variables) under
 * small caps. Any input must be accepted or refused without a crash, leak,
 * hang or sanitizer report, and a refusal must say where and why. */
#include "common.h"
#include "engine.h"
#include "jinja.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ctx_json[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
    "{\"role\":\"user\",\"content\":\"Hi <there> & 'you'\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_000000001\","
    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1,\"b\":[1,2.5,null,"
    "true]}}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_000000001\",\"content\":\"{\\\"r\\\": 1}\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>x</think>\\n\\nok\"},"
    "{\"role\":\"user\",\"content\":\" \\u00dcn\\u00efc\\u00f6d\\u00e9 \\u4f60\\u597d \"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{"
    "\"type\":\"array\",\"items\":{\"type\":\"number\"}}},\"required\":[\"a\"]}}}],"
    "\"extra\":{\"n\":null,\"s\":\"Hello\",\"i\":42,\"f\":2.5,\"l\":[3,1,2],\"d\":{\"b\":2,\"a\":1},"
    "\"t\":true,\"e\":\"\",\"enable_thinking\":false,\"documents\":[{\"text\":\"doc\"}]}}";

static void require(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cJSON *ctx;
    if (!ctx) {
        ctx = cJSON_Parse(ctx_json);
        require(ctx != NULL);
    }
    if (size > 64 * 1024) /* real templates are far smaller; keeps runs fast */
        return 0;
    struct engine_template *t = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    enum shoal_err rc = engine_template_parse((const char *)data, size, &t, &d);
    require((rc == SHOAL_OK) == (t != NULL));
    if (rc != SHOAL_OK) {
        require(d.msg[0] != 0);
        require(rc == SHOAL_ERR_NOMEM || d.line > 0);
        return 0;
    }
    struct jinja_opts o;
    jinja_limits_default(&o.lim);
    o.lim.max_output = 64 * 1024;
    o.lim.max_memory = 16u << 20;
    o.lim.max_steps = 200000;
    o.lim.max_loop_iters = 20000;
    o.lim.max_depth = 200;
    o.lim.max_macro_depth = 20;
    o.now = 1795305600; /* 2026-11-22T00:00:00Z */
    o.utc = true;
    for (int gen = 0; gen < 2; gen++) {
        struct engine_chat chat = {
            .messages = cJSON_GetObjectItemCaseSensitive(ctx, "messages"),
            .tools = gen ? cJSON_GetObjectItemCaseSensitive(ctx, "tools") : NULL,
            .extra = cJSON_GetObjectItemCaseSensitive(ctx, "extra"),
            .add_generation_prompt = gen != 0,
            .bos_token = "<s>",
            .eos_token = "</s>",
        };
        struct shoal_buf out;
        shoal_buf_init(&out, 1u << 20);
        shoal_diag_clear(&d);
        rc = engine_template_render_opts(t, &chat, &o, &out, &d);
        if (rc == SHOAL_OK)
            require(out.len <= o.lim.max_output);
        else
            require(d.msg[0] != 0 && out.len == 0);
        shoal_buf_fini(&out);
    }
    engine_template_free(t);
    return 0;
}
