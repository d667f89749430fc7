/* Gemini API wire format for the fake provider server:
 *   POST /v1beta/models/{m}:generateContent        one response
 *   POST /v1beta/models/{m}:streamGenerateContent  SSE (alt=sse), each
 *        event a GenerateContentResponse, the last with finishReason and
 *        the final usageMetadata
 *   POST /v1beta/models/{m}:embedContent / :batchEmbedContents
 * Without x-goog-api-key: 403 PERMISSION_DENIED, with key "bad": 400
 * INVALID_ARGUMENT "API key not valid", as Google answers. With
 * functionDeclarations the model calls the first function. */
#include "fake_provider.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define GEM_DIMS 8

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return (o && json_object_object_get_ex(o, k, &v)) ? v : NULL;
}

static int check_key(fp_conn *c, const fp_request *req)
{
    const char *key = fp_header_get(req, "x-goog-api-key");
    if (!key) {
        fp_reply_json(c, 403, "{\"error\":{\"code\":403,\"message\":\"Method doesn't allow "
                              "unregistered callers.\",\"status\":\"PERMISSION_DENIED\"}}");
        return 0;
    }
    if (strcmp(key, "bad") == 0) {
        fp_reply_json(c, 400, "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass "
                              "a valid API key.\",\"status\":\"INVALID_ARGUMENT\"}}");
        return 0;
    }
    return 1;
}

/* The model name between "/models/" and ':'. */
static void model_of(const fp_request *req, char *out, size_t cap)
{
    const char *p = strstr(req->path, "/models/"), *colon;
    out[0] = '\0';
    if (!p)
        return;
    p += 8;
    colon = strchr(p, ':');
    snprintf(out, cap, "%.*s", (int)(colon ? (size_t)(colon - p) : strlen(p)), p);
}

static void last_user_text(json_object *body, char *out, size_t cap)
{
    json_object *contents = get(body, "contents");
    size_t n = contents ? json_object_array_length(contents) : 0;
    out[0] = '\0';
    while (n-- > 0) {
        json_object *m = json_object_array_get_idx(contents, n), *parts = get(m, "parts");
        size_t i;
        if (!get(m, "role") || strcmp(json_object_get_string(get(m, "role")), "user") != 0)
            continue;
        for (i = 0; parts && i < json_object_array_length(parts); i++) {
            json_object *p = json_object_array_get_idx(parts, i);
            if (get(p, "text"))
                snprintf(out, cap, "%s", json_object_get_string(get(p, "text")));
            else if (get(p, "functionResponse"))
                snprintf(out, cap, "function said %s",
                         json_object_to_json_string_ext(get(get(p, "functionResponse"), "response"),
                                                        JSON_C_TO_STRING_PLAIN));
        }
        return;
    }
}

static const char *first_function(json_object *body)
{
    json_object *tools = get(body, "tools"), *decls;
    if (!tools || json_object_array_length(tools) == 0)
        return NULL;
    decls = get(json_object_array_get_idx(tools, 0), "functionDeclarations");
    if (!decls || json_object_array_length(decls) == 0)
        return NULL;
    return json_object_get_string(get(json_object_array_get_idx(decls, 0), "name"));
}

static json_object *candidate(const char *text, const char *fn, const char *arg, const char *finish)
{
    json_object *cand = json_object_new_object(), *content = json_object_new_object();
    json_object *parts = json_object_new_array(), *p;
    if (text) {
        p = json_object_new_object();
        json_object_object_add(p, "text", json_object_new_string(text));
        json_object_array_add(parts, p);
    }
    if (fn) {
        json_object *fc = json_object_new_object(), *args = json_object_new_object();
        json_object_object_add(args, "q", json_object_new_string(arg));
        json_object_object_add(fc, "name", json_object_new_string(fn));
        json_object_object_add(fc, "args", args);
        p = json_object_new_object();
        json_object_object_add(p, "functionCall", fc);
        json_object_array_add(parts, p);
    }
    json_object_object_add(content, "parts", parts);
    json_object_object_add(content, "role", json_object_new_string("model"));
    json_object_object_add(cand, "content", content);
    if (finish)
        json_object_object_add(cand, "finishReason", json_object_new_string(finish));
    json_object_object_add(cand, "index", json_object_new_int(0));
    return cand;
}

static json_object *usage(int p, int c)
{
    json_object *u = json_object_new_object();
    json_object_object_add(u, "promptTokenCount", json_object_new_int(p));
    json_object_object_add(u, "candidatesTokenCount", json_object_new_int(c));
    json_object_object_add(u, "totalTokenCount", json_object_new_int(p + c));
    return u;
}

static json_object *response(json_object *cand, json_object *u, const char *model)
{
    json_object *o = json_object_new_object(), *cands = json_object_new_array();
    json_object_array_add(cands, cand);
    json_object_object_add(o, "candidates", cands);
    if (u)
        json_object_object_add(o, "usageMetadata", u);
    json_object_object_add(o, "modelVersion", json_object_new_string(model));
    json_object_object_add(o, "responseId", json_object_new_string("gem-resp-01"));
    return o;
}

void fp_gemini_generate(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *o;
    char text[1024], echo[1100], model[256];
    const char *fn;
    (void)ud;
    if (!check_key(c, req))
        goto out;
    if (!body || !get(body, "contents")) {
        fp_reply_json(c, 400, "{\"error\":{\"code\":400,\"message\":\"contents is not specified\","
                              "\"status\":\"INVALID_ARGUMENT\"}}");
        goto out;
    }
    model_of(req, model, sizeof model);
    last_user_text(body, text, sizeof text);
    snprintf(echo, sizeof echo, "echo: %s", text);
    fn = strncmp(text, "function said", 13) == 0 ? NULL : first_function(body);
    o = response(candidate(echo, fn, text, "STOP"), usage((int)strlen(text), (int)strlen(echo)), model);
    fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
out:
    json_object_put(body);
}

void fp_gemini_stream(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *o;
    char text[1024], echo[1100], model[256], first[600];
    const char *fn;
    size_t half;
    (void)ud;
    if (!check_key(c, req))
        goto out;
    model_of(req, model, sizeof model);
    last_user_text(body, text, sizeof text);
    snprintf(echo, sizeof echo, "echo: %s", text);
    fn = strncmp(text, "function said", 13) == 0 ? NULL : first_function(body);
    half = strlen(echo) / 2;
    snprintf(first, sizeof first, "%.*s", (int)half, echo);
    fp_stream_begin(c, "text/event-stream");
    /* Gemini's intermediate events carry a growing usageMetadata too. */
    o = response(candidate(first, NULL, NULL, NULL), usage((int)strlen(text), 1), model);
    if (fp_sse_event(c, NULL, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0) {
        json_object_put(o);
        goto out;
    }
    json_object_put(o);
    o = response(candidate(echo + half, fn, text, "STOP"), usage((int)strlen(text), (int)strlen(echo)),
                 model);
    if (fp_sse_event(c, NULL, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0) {
        json_object_put(o);
        goto out;
    }
    json_object_put(o);
    fp_stream_end(c);
out:
    json_object_put(body);
}

static json_object *embedding_of(json_object *content)
{
    json_object *parts = get(content, "parts"), *e = json_object_new_object(), *vals;
    const char *t = "";
    double v[GEM_DIMS];
    int i;
    if (parts && json_object_array_length(parts) > 0)
        t = json_object_get_string(get(json_object_array_get_idx(parts, 0), "text"));
    fp_fake_vector(t, strlen(t), v, GEM_DIMS);
    vals = json_object_new_array();
    for (i = 0; i < GEM_DIMS; i++)
        json_object_array_add(vals, json_object_new_double(v[i]));
    json_object_object_add(e, "values", vals);
    return e;
}

void fp_gemini_embed(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *o;
    (void)ud;
    if (!check_key(c, req))
        goto out;
    o = json_object_new_object();
    json_object_object_add(o, "embedding", embedding_of(get(body, "content")));
    fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
out:
    json_object_put(body);
}

void fp_gemini_batch_embed(fp_conn *c, const fp_request *req, void *ud)
{
    json_object *body = json_tokener_parse(req->body), *o, *list, *reqs;
    size_t i;
    (void)ud;
    if (!check_key(c, req))
        goto out;
    reqs = get(body, "requests");
    list = json_object_new_array();
    for (i = 0; reqs && i < json_object_array_length(reqs); i++)
        json_object_array_add(list, embedding_of(get(json_object_array_get_idx(reqs, i), "content")));
    o = json_object_new_object();
    json_object_object_add(o, "embeddings", list);
    fp_reply_json(c, 200, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
out:
    json_object_put(body);
}
