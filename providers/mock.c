/* The mock provider, as LiteLLM's mock_response: answers without any
 * network. A request with "mock_response" (a string: the assistant's
 * text; or an object: the whole response) or "mock_tool_calls" (an array
 * of OpenAI tool calls) is answered by this adapter whatever its model
 * names; "mock/<anything>" without them answers a fixed text. Embeddings
 * get deterministic vectors derived from each input's SHA-256, so the
 * same text always gets the same vector. */
#include "adapters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOCK_DIMS 8

static int64_t approx_tokens(const char *s, size_t len)
{
    LLMC_UNUSED(s);
    return (int64_t)((len + 3) / 4);
}

static int64_t count_words(const char *s)
{
    int64_t n = 0;
    int in = 0;
    for (; s && *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t';
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static int64_t prompt_tokens(json_object *request)
{
    json_object *v;
    int64_t n = 0;
    if (json_object_object_get_ex(request, "messages", &v)) {
        size_t len = 0;
        json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &len);
        n += approx_tokens(NULL, len);
    }
    if (json_object_object_get_ex(request, "prompt", &v)) {
        size_t len = 0;
        json_object_to_json_string_length(v, JSON_C_TO_STRING_PLAIN, &len);
        n += approx_tokens(NULL, len);
    }
    return n;
}

static json_object *usage_obj(int64_t p, int64_t c)
{
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(p));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(c));
    json_object_object_add(u, "total_tokens", json_object_new_int64(p + c));
    return u;
}

static llmc_status mock_embeddings(const llmc_provider_call *call, json_object *request,
                                   json_object **out, llmc_err *err)
{
    json_object *input;
    if (!json_object_object_get_ex(request, "input", &input))
        return llmc_err_set(err, LLMC_EINVAL, 0, "mock: embedding request without \"input\"");
    json_object *items = input;
    int single = !json_object_is_type(input, json_type_array);
    size_t n = single ? 1 : json_object_array_length(input);
    json_object *data = json_object_new_array();
    int64_t tokens = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *it = single ? items : json_object_array_get_idx(items, i);
        size_t len = 0;
        const char *txt = json_object_to_json_string_length(it, JSON_C_TO_STRING_PLAIN, &len);
        uint8_t h[32];
        llmc_sha256(txt, len, h);
        json_object *vec = json_object_new_array();
        for (int d = 0; d < MOCK_DIMS; d++) {
            int16_t x = (int16_t)((h[2 * d] << 8) | h[2 * d + 1]);
            json_object_array_add(vec, json_object_new_double((double)x / 32768.0));
        }
        json_object *e = json_object_new_object();
        json_object_object_add(e, "object", json_object_new_string("embedding"));
        json_object_object_add(e, "index", json_object_new_int((int)i));
        json_object_object_add(e, "embedding", vec);
        json_object_array_add(data, e);
        tokens += approx_tokens(txt, len);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "object", json_object_new_string("list"));
    json_object_object_add(r, "data", data);
    json_object_object_add(r, "model", json_object_new_string(call->model));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(tokens));
    json_object_object_add(u, "total_tokens", json_object_new_int64(tokens));
    json_object_object_add(r, "usage", u);
    *out = r;
    return LLMC_OK;
}

static llmc_status mock_respond(const llmc_provider_call *call, struct json_object *request,
                                struct json_object **out, llmc_err *err)
{
    *out = NULL;
    if (call->call == LLMC_CALL_EMBEDDING)
        return mock_embeddings(call, request, out, err);
    json_object *mr = NULL, *mtc = NULL;
    json_object_object_get_ex(request, "mock_response", &mr);
    json_object_object_get_ex(request, "mock_tool_calls", &mtc);
    if (mr && json_object_is_type(mr, json_type_object)) {
        /* A whole response given by the caller. */
        json_object *v;
        if (!json_object_object_get_ex(mr, "choices", &v))
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "mock: mock_response object has no \"choices\"");
        *out = json_object_get(mr);
        return LLMC_OK;
    }
    if (mr && !json_object_is_type(mr, json_type_string) && !json_object_is_type(mr, json_type_null))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "mock: mock_response must be a string or a response object");
    if (mtc && !json_object_is_type(mtc, json_type_array))
        return llmc_err_set(err, LLMC_EINVAL, 0, "mock: mock_tool_calls must be an array");
    const char *text = mr && json_object_is_type(mr, json_type_string)
                           ? json_object_get_string(mr)
                           : (mtc ? NULL : "This is a mock response.");
    char id[64];
    llmc_provider_new_id(call->call == LLMC_CALL_TEXT ? "cmpl-mock-" : "chatcmpl-mock-", id,
                         sizeof id);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "id", json_object_new_string(id));
    json_object_object_add(r, "object",
                           json_object_new_string(call->call == LLMC_CALL_TEXT
                                                      ? "text_completion"
                                                      : "chat.completion"));
    json_object_object_add(r, "created", json_object_new_int64(llmc_now_ms() / 1000));
    json_object_object_add(r, "model", json_object_new_string(call->model));
    json_object *choices = json_object_new_array();
    json_object *ch = json_object_new_object();
    json_object_object_add(ch, "index", json_object_new_int(0));
    if (call->call == LLMC_CALL_TEXT) {
        json_object_object_add(ch, "text", json_object_new_string(text ? text : ""));
    } else {
        json_object *msg = json_object_new_object();
        json_object_object_add(msg, "role", json_object_new_string("assistant"));
        json_object_object_add(msg, "content", text ? json_object_new_string(text) : NULL);
        if (mtc) {
            /* Normalise: ids, type and string arguments as OpenAI sends. */
            json_object *tcs = json_object_new_array();
            size_t n = json_object_array_length(mtc);
            for (size_t i = 0; i < n; i++) {
                json_object *t = json_object_array_get_idx(mtc, i), *fn, *v;
                if (!json_object_is_type(t, json_type_object) ||
                    !json_object_object_get_ex(t, "function", &fn) ||
                    !json_object_is_type(fn, json_type_object)) {
                    json_object_put(tcs);
                    json_object_put(msg);
                    json_object_put(ch);
                    json_object_put(choices);
                    json_object_put(r);
                    return llmc_err_set(err, LLMC_EINVAL, 0,
                                        "mock: mock_tool_calls[%zu] needs a \"function\" object",
                                        i);
                }
                json_object *nt = json_object_new_object();
                char tid[48];
                if (json_object_object_get_ex(t, "id", &v))
                    json_object_object_add(nt, "id", json_object_get(v));
                else {
                    llmc_provider_new_id("call_", tid, sizeof tid);
                    json_object_object_add(nt, "id", json_object_new_string(tid));
                }
                json_object_object_add(nt, "type", json_object_new_string("function"));
                json_object *nf = json_object_new_object();
                json_object_object_add(nf, "name",
                                       json_object_object_get_ex(fn, "name", &v)
                                           ? json_object_get(v)
                                           : json_object_new_string(""));
                if (json_object_object_get_ex(fn, "arguments", &v) &&
                    json_object_is_type(v, json_type_string))
                    json_object_object_add(nf, "arguments", json_object_get(v));
                else
                    json_object_object_add(
                        nf, "arguments",
                        json_object_new_string(v ? json_object_to_json_string_ext(
                                                       v, JSON_C_TO_STRING_PLAIN)
                                                 : "{}"));
                json_object_object_add(nt, "function", nf);
                json_object_array_add(tcs, nt);
            }
            json_object_object_add(msg, "tool_calls", tcs);
        }
        json_object_object_add(ch, "message", msg);
    }
    json_object_object_add(ch, "finish_reason",
                           json_object_new_string(mtc ? "tool_calls" : "stop"));
    json_object_array_add(choices, ch);
    json_object_object_add(r, "choices", choices);
    json_object_object_add(r, "usage", usage_obj(prompt_tokens(request), count_words(text)));
    *out = r;
    return LLMC_OK;
}

static const char *const mock_claims[] = {"mock_response", "mock_tool_calls", NULL};

const llmc_provider_ops llmc__provider_mock = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "mock",
                               "answers with the request's mock_response, no network"),
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_TEXT | LLMC_PROVIDER_EMBEDDING |
             LLMC_PROVIDER_STREAM | LLMC_PROVIDER_LOCAL,
    .default_api_base = "mock://",
    .respond_local = mock_respond,
    .claims = mock_claims,
};
