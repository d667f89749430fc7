/* Ollama native API wire format for the fake provider server:
 *   POST /api/chat      message, or NDJSON lines when "stream" is true or
 *                       absent (Ollama streams by default), the last with
 *                       done:true, done_reason and the counters
 *   POST /api/generate  {"response": ...} (stream false only)
 *   POST /api/embed     {"embeddings": [[...]], "prompt_eval_count"}
 * An unknown model ("missing") gets 404 {"error":"model ... not found"}. */
#include "fake_provider.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define OLL_DIMS 8

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return (o && json_object_object_get_ex(o, k, &v)) ? v : NULL;
}

static int known_model(fp_conn *c, json_object *body)
{
    const char *m = body && get(body, "model") ? json_object_get_string(get(body, "model")) : NULL;
    char buf[512];
    if (!m || strcmp(m, "missing") == 0) {
        snprintf(buf, sizeof buf, "{\"error\":\"model \\\"%s\\\" not found, try pulling it first\"}",
                 m ? m : "");
        fp_reply_json(c, 404, buf);
        return 0;
    }
    return 1;
}

static int streaming(json_object *body)
{
    json_object *s = get(body, "stream");
    return !s || json_object_get_boolean(s);
}

static void final_fields(json_object *o, const char *reason, int p, int e)
{
    json_object_object_add(o, "done", json_object_new_boolean(1));
    json_object_object_add(o, "done_reason", json_object_new_string(reason));
    json_object_object_add(o, "total_duration", json_object_new_int64(123456));
    json_object_object_add(o, "prompt_eval_count", json_object_new_int(p));
    json_object_object_add(o, "eval_count", json_object_new_int(e));
}

static json_object *line(const char *model, const char *content, const char *tool, const char *arg)
{
    json_object *o = json_object_new_object(), *m = json_object_new_object();
    json_object_object_add(o, "model", json_object_new_string(model));
    json_object_object_add(o, "created_at", json_object_new_string("2024-07-22T20:33:28.123648Z"));
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", json_object_new_string(content));
    if (tool) {
        json_object *tcs = json_object_new_array(), *tc = json_object_new_object();
        json_object *fn = json_object_new_object(), *args = json_object_new_object();
        json_object_object_add(args, "q", json_object_new_string(arg));
        json_object_object_add(fn, "name", json_object_new_string(tool));
        json_object_object_add(fn, "arguments", args);
        json_object_object_add(tc, "function", fn);
        json_object_array_add(tcs, tc);
        json_object_object_add(m, "tool_calls", tcs);
    }
    json_object_object_add(o, "message", m);
    json_object_object_add(o, "done", json_object_new_boolean(0));
    return o;
}

void fp_ollama_chat(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *msgs, *tools, *o;
    const char *model, *text = "", *tool = NULL;
    char echo[1100], first[600];
    size_t n, half;
    (void)ud;
    if (!known_model(c, body))
        goto out;
    model = json_object_get_string(get(body, "model"));
    msgs = get(body, "messages");
    n = msgs ? json_object_array_length(msgs) : 0;
    while (n-- > 0) {
        json_object *m = json_object_array_get_idx(msgs, n);
        const char *role = json_object_get_string(get(m, "role"));
        if (strcmp(role, "user") == 0 || strcmp(role, "tool") == 0) {
            text = json_object_get_string(get(m, "content"));
            if (strcmp(role, "tool") == 0)
                n = 0; /* answer the tool result with text */
            else if ((tools = get(body, "tools")) && json_object_array_length(tools) > 0)
                tool = json_object_get_string(
                    get(get(json_object_array_get_idx(tools, 0), "function"), "name"));
            break;
        }
    }
    snprintf(echo, sizeof echo, "echo: %s", text);
    if (!streaming(body)) {
        o = line(model, tool ? "" : echo, tool, text);
        final_fields(o, "stop", (int)strlen(text), (int)strlen(echo));
        fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        goto out;
    }
    fp_stream_begin(c, "application/x-ndjson");
    half = strlen(echo) / 2;
    snprintf(first, sizeof first, "%.*s", (int)half, echo);
    o = line(model, first, NULL, NULL);
    if (fp_ndjson_line(c, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0) {
        json_object_put(o);
        goto out;
    }
    json_object_put(o);
    o = line(model, echo + half, tool, text);
    if (fp_ndjson_line(c, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0) {
        json_object_put(o);
        goto out;
    }
    json_object_put(o);
    o = line(model, "", NULL, NULL);
    final_fields(o, "stop", (int)strlen(text), (int)strlen(echo));
    if (fp_ndjson_line(c, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0) {
        json_object_put(o);
        goto out;
    }
    json_object_put(o);
    fp_stream_end(c);
out:
    json_object_put(body);
}

void fp_ollama_generate(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *o;
    const char *prompt;
    char echo[1100];
    (void)ud;
    if (!known_model(c, body))
        goto out;
    prompt = get(body, "prompt") ? json_object_get_string(get(body, "prompt")) : "";
    snprintf(echo, sizeof echo, "echo: %s", prompt);
    o = json_object_new_object();
    json_object_object_add(o, "model", json_object_get(get(body, "model")));
    json_object_object_add(o, "response", json_object_new_string(echo));
    final_fields(o, "stop", (int)strlen(prompt), (int)strlen(echo));
    fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
out:
    json_object_put(body);
}

void fp_ollama_embed(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *input, *o, *embs;
    size_t i, n;
    int tokens = 0;
    (void)ud;
    if (!known_model(c, body))
        goto out;
    input = get(body, "input");
    embs = json_object_new_array();
    n = json_object_is_type(input, json_type_array) ? json_object_array_length(input) : 1;
    for (i = 0; i < n; i++) {
        const char *t = json_object_is_type(input, json_type_array)
                            ? json_object_get_string(json_object_array_get_idx(input, i))
                            : json_object_get_string(input);
        double v[OLL_DIMS];
        json_object *vec = json_object_new_array();
        int k;
        fp_fake_vector(t, strlen(t), v, OLL_DIMS);
        for (k = 0; k < OLL_DIMS; k++)
            json_object_array_add(vec, json_object_new_double(v[k]));
        json_object_array_add(embs, vec);
        tokens += (int)strlen(t);
    }
    o = json_object_new_object();
    json_object_object_add(o, "model", json_object_get(get(body, "model")));
    json_object_object_add(o, "embeddings", embs);
    json_object_object_add(o, "prompt_eval_count", json_object_new_int(tokens));
    fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
out:
    json_object_put(body);
}
