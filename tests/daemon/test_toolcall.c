/* test_toolcall.c: tool calls read back from a local model's text. Each
 * case is a text written the way a chat format writes calls, with the
 * calls and the remaining content it must give worked out by hand. */
#include "test.h"
#include "toolcall.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static struct remote_request *request(const char *tools_json, const char *choice)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
             "\"tools\":%s%s%s%s}",
             tools_json, choice ? ",\"tool_choice\":\"" : "", choice ? choice : "",
             choice ? "\"" : "");
    cJSON *j = cJSON_Parse(buf);
    struct remote_request *r = NULL;
    struct shoal_diag d;
    shoal_diag_clear(&d);
    CHECK(j && remote_request_from_chat(j, &r, &d) == SHOAL_OK);
    cJSON_Delete(j);
    return r;
}

#define TOOLS                                                                                      \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"            \
    "{\"type\":\"object\"}}},{\"type\":\"function\",\"function\":{\"name\":\"add\"}}]"

/* One expected call: name and arguments as compact JSON. */
struct want {
    const char *name, *args;
};

static void expect(const struct remote_request *req, const char *text, int n,
                   const struct want *w, const char *content)
{
    struct remote_result res;
    remote_result_init(&res);
    char *rest = NULL;
    int k = toolcall_parse(req, text, strlen(text), &res, &rest);
    CHECK_EQ_INT(k, n);
    if (k != n) {
        fprintf(stderr, "  text: %s\n", text);
    } else if (n > 0) {
        CHECK_STR(rest, content);
        for (int i = 0; i < n; i++) {
            char id[16];
            snprintf(id, sizeof(id), "call_%d", i);
            CHECK_STR(res.tool_calls[i].id, id);
            CHECK_STR(res.tool_calls[i].name, w[i].name);
            /* Compare as JSON values, not spellings. */
            cJSON *want = cJSON_Parse(w[i].args);
            CHECK(want && res.tool_calls[i].args &&
                  cJSON_Compare(want, res.tool_calls[i].args, true));
            cJSON *again = cJSON_Parse(res.tool_calls[i].arguments);
            CHECK(again && cJSON_Compare(want, again, true));
            cJSON_Delete(want);
            cJSON_Delete(again);
        }
    } else {
        CHECK(res.tool_calls == NULL && rest == NULL);
    }
    free(rest);
    remote_result_fini(&res);
}

static void test_formats(void)
{
    struct remote_request *r = request(TOOLS, NULL);
    struct want paris = {"get_weather", "{\"city\":\"Paris\"}"};
    struct want sum = {"add", "{\"a\":1,\"b\":2}"};

    /* Hermes / Qwen: one block after some words. */
    expect(r,
           "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
           "{\"city\": \"Paris\"}}\n</tool_call>",
           1, &paris, "Let me check.");
    /* Two blocks, text between and after. */
    struct want two[2] = {paris, sum};
    expect(r,
           "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}</tool_call>"
           " and <tool_call>{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2}}</tool_call> done",
           2, two, "and  done");
    /* SmolLM: an array inside one block. */
    expect(r,
           "<tool_call>[{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}},"
           "{\"name\":\"add\",\"arguments\":{\"a\":1,\"b\":2}}]</tool_call>",
           2, two, "");
    /* The model stopped before the closing tag. */
    expect(r, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n", 1,
           &sum, "");
    /* Mistral. */
    expect(r,
           "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}, "
           "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
           2, (struct want[]){sum, paris}, "");
    /* Llama 3.1 python tag, "parameters". */
    expect(r, "<|python_tag|>{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}", 1, &sum,
           "");
    /* Llama 3.2: the whole answer is the call. */
    expect(r, "  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}\n", 1, &paris,
           "");
    /* Arguments written as a JSON string, as OpenAI sends them. */
    expect(r,
           "<tool_call>{\"name\":\"add\",\"arguments\":\"{\\\"a\\\":1,\\\"b\\\":2}\"}</tool_call>",
           1, &sum, "");
    /* No arguments at all: an empty object. */
    struct want empty = {"add", "{}"};
    expect(r, "<tool_call>{\"name\":\"add\"}</tool_call>", 1, &empty, "");
    remote_request_free(r);
}

static void test_not_calls(void)
{
    struct remote_request *r = request(TOOLS, NULL);
    /* Plain text, JSON about something else, unknown tools, broken JSON. */
    expect(r, "The weather in Paris is mild.", 0, NULL, NULL);
    expect(r, "{\"city\": \"Paris\"}", 0, NULL, NULL);
    expect(r, "<tool_call>{\"name\":\"rm_rf\",\"arguments\":{}}</tool_call>", 0, NULL, NULL);
    expect(r, "<tool_call>{\"name\":\"add\",\"arguments\":{\"a\":1</tool_call>", 0, NULL, NULL);
    expect(r, "<tool_call>{\"name\":\"add\"} trailing words</tool_call>", 0, NULL, NULL);
    /* One unknown call spoils its whole block (all or nothing). */
    expect(r,
           "<tool_call>[{\"name\":\"add\"},{\"name\":\"nope\"}]</tool_call>", 0, NULL, NULL);
    /* A whole-answer call must be the whole answer. */
    expect(r, "Sure: {\"name\": \"add\", \"parameters\": {}}", 0, NULL, NULL);
    /* Arguments that are neither an object nor a string. */
    expect(r, "<tool_call>{\"name\":\"add\",\"arguments\":[1,2]}</tool_call>", 0, NULL, NULL);
    /* Hostile: deep nesting, a bare marker, empty text. */
    char deep[20001];
    memset(deep, '[', 20000);
    deep[20000] = '\0';
    expect(r, deep, 0, NULL, NULL);
    expect(r, "<tool_call>", 0, NULL, NULL);
    expect(r, "[TOOL_CALLS]", 0, NULL, NULL);
    expect(r, "", 0, NULL, NULL);
    remote_request_free(r);

    /* tool_choice none, or no tools offered: never calls. */
    r = request(TOOLS, "none");
    expect(r, "<tool_call>{\"name\":\"add\"}</tool_call>", 0, NULL, NULL);
    remote_request_free(r);
    r = request("[]", NULL);
    expect(r, "<tool_call>{\"name\":\"add\"}</tool_call>", 0, NULL, NULL);
    remote_request_free(r);
}

static void test_arguments_not_object(void)
{
    /* A string that is not JSON is kept as the model wrote it, and said so. */
    struct remote_request *r = request(TOOLS, NULL);
    const char *text = "<tool_call>{\"name\":\"add\",\"arguments\":\"a=1\"}</tool_call>";
    struct remote_result res;
    remote_result_init(&res);
    char *rest = NULL;
    CHECK_EQ_INT(toolcall_parse(r, text, strlen(text), &res, &rest), 1);
    if (res.n_tool_calls == 1) {
        CHECK_STR(res.tool_calls[0].arguments, "a=1");
        CHECK(res.tool_calls[0].args == NULL);
        CHECK(strstr(res.tool_calls[0].args_error, "not valid JSON") != NULL);
    }
    free(rest);
    remote_result_fini(&res);
    remote_request_free(r);
}

int main(void)
{
    test_formats();
    test_not_calls();
    test_arguments_not_object();
    return test_report("test_toolcall");
}
