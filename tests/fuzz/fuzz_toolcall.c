/* fuzz_toolcall.c: libFuzzer target for reading tool calls out of a local
 * model's text (daemon/toolcall.c). The input is the model's text, read
 * against a fixed request offering two tools. Invariants: a found call
 * names an offered tool, has an id and arguments text, parsed arguments
 * are an object, and the content left is no longer than the text. */
#include "toolcall.h"
#include "fuzz.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct remote_request *req;

static void setup(void)
{
    const char *chat =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":["
        "{\"type\":\"function\",\"function\":{\"name\":\"add\"}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}]}";
    cJSON *j = cJSON_Parse(chat);
    struct shoal_diag d;
    shoal_diag_clear(&d);
    ASSERT(j && remote_request_from_chat(j, &req, &d) == SHOAL_OK);
    cJSON_Delete(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!req)
        setup();
    struct remote_result res;
    remote_result_init(&res);
    char *rest = NULL;
    int k = toolcall_parse(req, (const char *)data, size, &res, &rest);
    ASSERT(k >= -1 && k <= (int)REMOTE_CAP_TOOL_CALLS);
    if (k > 0) {
        ASSERT(res.n_tool_calls == (size_t)k && rest && strlen(rest) <= size);
        for (size_t i = 0; i < res.n_tool_calls; i++) {
            const struct remote_tool_call *c = &res.tool_calls[i];
            ASSERT(c->id && c->name && c->arguments);
            ASSERT(!strcmp(c->name, "add") || !strcmp(c->name, "get_weather"));
            ASSERT(!c->args || cJSON_IsObject(c->args));
            ASSERT(c->args || c->args_error[0]);
        }
    } else {
        ASSERT(!rest && !res.tool_calls);
    }
    free(rest);
    remote_result_fini(&res);
    return 0;
}
