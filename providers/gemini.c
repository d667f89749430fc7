/* The "gemini" provider: OpenAI chat and embedding requests over the
 * Gemini API (generativelanguage.googleapis.com):
 *   POST {base}/{version}/models/{model}:generateContent
 *   POST {base}/{version}/models/{model}:streamGenerateContent?alt=sse
 *   POST {base}/{version}/models/{model}:embedContent        (one item)
 *   POST {base}/{version}/models/{model}:batchEmbedContents  (several)
 * The key travels in the x-goog-api-key header, never in the URL, so it
 * cannot leak through logged URLs. {version} is the api_version
 * ("v1beta" by default).
 *
 * One file past 800 lines on purpose: the request side (contents, tools,
 * schemas, generation config), the answer side (parts, usage, finish
 * reasons, errors), streams and embeddings all share the parts and
 * error mappings; split, each half would need the other's helpers.
 *
 * Translation only; docs/providers.md lists what is and is not
 * translated. */
#include "adapters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "xjson.h"

/* OpenAI parameters Gemini has no equivalent for: refused, naming them. */
static const char *const gem_unsupported[] = {
    "logit_bias", "logprobs", "top_logprobs", "functions", "function_call", "audio",
    "modalities", "prediction", "parallel_tool_calls", "service_tier", NULL};

/* Consumed by the translation (or transport members that never go
 * upstream); anything else is a Gemini-specific member passed through
 * (safetySettings, cachedContent, labels ...). */
static const char *const gem_handled[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature",
    "top_p", "top_k", "n", "presence_penalty", "frequency_penalty", "seed",
    "response_format", "tools", "tool_choice", "stream", "stream_options", "user",
    "reasoning_effort", "metadata", "cache", "caching", "mock_response", "api_key",
    "api_base", "base_url", "api_version", "timeout", "max_retries", "extra_headers",
    "provider", "custom_llm_provider", "input", "encoding_format", "dimensions",
    "task_type", NULL};

/* JSON-schema keywords the Gemini Schema object rejects. */
static const char *const gem_schema_drop[] = {"additionalProperties", "$schema", "strict",
                                              "$id", "$comment", NULL};

/* Copy of a JSON schema without the keywords Gemini refuses (recursive:
 * properties, items, anyOf ... are schemas too). */
static json_object *gem_clean_schema(const json_object *s)
{
    if (json_object_is_type((json_object *)s, json_type_object)) {
        json_object *o = json_object_new_object();
        json_object_object_foreach((json_object *)s, k, v) {
            if (!llmc__xj_in(gem_schema_drop, k))
                json_object_object_add(o, k, gem_clean_schema(v));
        }
        return o;
    }
    if (json_object_is_type((json_object *)s, json_type_array)) {
        json_object *a = json_object_new_array();
        size_t i;
        for (i = 0; i < json_object_array_length((json_object *)s); i++)
            json_object_array_add(a, gem_clean_schema(json_object_array_get_idx((json_object *)s, i)));
        return a;
    }
    return json_object_get((json_object *)s);
}

/* The media type a fileData part needs, guessed from a URL's extension. */
static const char *gem_mime_from_url(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } map[] = {{".png", "image/png"},   {".jpg", "image/jpeg"},       {".jpeg", "image/jpeg"},
               {".webp", "image/webp"}, {".gif", "image/gif"},        {".heic", "image/heic"},
               {".pdf", "application/pdf"}, {".mp3", "audio/mp3"},    {".wav", "audio/wav"},
               {".mp4", "video/mp4"}};
    size_t n = strlen(url), i;
    const char *q = strchr(url, '?');
    if (q)
        n = (size_t)(q - url);
    for (i = 0; i < LLMC_ARRAY_LEN(map); i++) {
        size_t e = strlen(map[i].ext);
        if (n >= e && strncasecmp(url + n - e, map[i].ext, e) == 0)
            return map[i].mime;
    }
    return NULL;
}

/* Append the parts of an OpenAI content value to `parts`. */
static llmc_status gem_content_parts(const json_object *content, json_object *parts, int mi,
                                     llmc_err *err)
{
    size_t i, n;
    if (!content)
        return LLMC_OK;
    if (json_object_is_type((json_object *)content, json_type_string)) {
        json_object *p;
        if (json_object_get_string_len((json_object *)content) == 0)
            return LLMC_OK;
        p = json_object_new_object();
        llmc__xj_put_ref(p, "text", (json_object *)content);
        json_object_array_add(parts, p);
        return LLMC_OK;
    }
    if (!json_object_is_type((json_object *)content, json_type_array))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "messages[%d].content: expected a string or an array of parts", mi);
    n = json_object_array_length((json_object *)content);
    for (i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx((json_object *)content, i);
        const char *type = llmc__xj_str(part, "type");
        json_object *p;
        if (type && strcmp(type, "text") == 0 && llmc__xj_str(part, "text")) {
            p = json_object_new_object();
            llmc__xj_put_ref(p, "text", llmc__xj_get(part, "text"));
        } else if (type && strcmp(type, "image_url") == 0 && llmc__xj_image_url(part)) {
            const char *url = llmc__xj_image_url(part), *data;
            char mime[64];
            json_object *d = json_object_new_object();
            p = json_object_new_object();
            if (llmc__xj_data_url(url, mime, sizeof mime, &data)) {
                llmc__xj_put_str(d, "mimeType", mime);
                llmc__xj_put_str(d, "data", data);
                json_object_object_add(p, "inlineData", d);
            } else {
                const char *m = gem_mime_from_url(url);
                if (!m) {
                    json_object_put(d);
                    json_object_put(p);
                    return llmc_err_set(err, LLMC_EINVAL, 0,
                                        "messages[%d].content[%zu]: cannot tell the media type of "
                                        "the image URL; use a data: URL",
                                        mi, i);
                }
                llmc__xj_put_str(d, "mimeType", m);
                llmc__xj_put_str(d, "fileUri", url);
                json_object_object_add(p, "fileData", d);
            }
        } else {
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "messages[%d].content[%zu]: content part type \"%s\" is not "
                                "supported by the gemini adapter",
                                mi, i, type ? type : "(none)");
        }
        json_object_array_add(parts, p);
    }
    return LLMC_OK;
}

/* The function name of an earlier assistant tool call with this id:
 * Gemini's functionResponse is matched by name, OpenAI's tool message by
 * id. */
static const char *gem_tool_name(const json_object *msgs, size_t upto, const char *id)
{
    size_t i, k;
    for (i = upto; i-- > 0;) {
        json_object *tcs = llmc__xj_get(json_object_array_get_idx((json_object *)msgs, i), "tool_calls");
        if (!tcs || !json_object_is_type(tcs, json_type_array))
            continue;
        for (k = 0; k < json_object_array_length(tcs); k++) {
            json_object *tc = json_object_array_get_idx(tcs, k);
            const char *tid = llmc__xj_str(tc, "id");
            if (tid && strcmp(tid, id) == 0)
                return llmc__xj_str(llmc__xj_get(tc, "function"), "name");
        }
    }
    return NULL;
}

static llmc_status gem_contents(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *in = llmc__xj_get(req, "messages");
    json_object *contents, *sys = NULL;
    size_t i, n;
    llmc_status st = LLMC_OK;

    if (!in || !json_object_is_type(in, json_type_array) || json_object_array_length(in) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "\"messages\" must be a non-empty array");
    contents = json_object_new_array();
    n = json_object_array_length(in);
    for (i = 0; i < n && st == LLMC_OK; i++) {
        json_object *m = json_object_array_get_idx(in, i);
        const char *role = llmc__xj_str(m, "role");
        json_object *content = llmc__xj_get(m, "content");
        int mi = (int)i;
        json_object *parts;
        if (!role) {
            st = llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d]: missing \"role\"", mi);
            break;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (!sys)
                sys = json_object_new_array();
            st = gem_content_parts(content, sys, mi, err);
            continue;
        }
        parts = json_object_new_array();
        if (strcmp(role, "user") == 0) {
            st = gem_content_parts(content, parts, mi, err);
            if (st == LLMC_OK)
                llmc__xj_push_turn(contents, "user", "parts", json_object_get(parts));
        } else if (strcmp(role, "assistant") == 0) {
            json_object *tcs = llmc__xj_get(m, "tool_calls");
            size_t k;
            st = gem_content_parts(content, parts, mi, err);
            for (k = 0; st == LLMC_OK && tcs && json_object_is_type(tcs, json_type_array) &&
                        k < json_object_array_length(tcs);
                 k++) {
                json_object *fn = llmc__xj_get(json_object_array_get_idx(tcs, k), "function");
                const char *name = llmc__xj_str(fn, "name"), *args = llmc__xj_str(fn, "arguments");
                json_object *a, *p, *fc;
                a = (args && *args) ? llmc__xj_parse(args, strlen(args)) : json_object_new_object();
                if (!name || !a || !json_object_is_type(a, json_type_object)) {
                    json_object_put(a);
                    st = llmc_err_set(err, LLMC_EINVAL, 0,
                                      "messages[%d].tool_calls[%zu]: needs function.name and "
                                      "function.arguments holding a JSON object",
                                      mi, k);
                    break;
                }
                fc = json_object_new_object();
                llmc__xj_put_str(fc, "name", name);
                json_object_object_add(fc, "args", a);
                p = json_object_new_object();
                json_object_object_add(p, "functionCall", fc);
                json_object_array_add(parts, p);
            }
            if (st == LLMC_OK)
                llmc__xj_push_turn(contents, "model", "parts", json_object_get(parts));
        } else if (strcmp(role, "tool") == 0) {
            const char *id = llmc__xj_str(m, "tool_call_id");
            const char *name = id ? gem_tool_name(in, i, id) : NULL;
            llmc_buf text = LLMC_BUF_INIT;
            json_object *resp = NULL, *fr, *p;
            if (!name)
                name = llmc__xj_str(m, "name");
            if (!name) {
                st = llmc_err_set(err, LLMC_EINVAL, 0,
                                  "messages[%d]: tool message whose tool_call_id matches no earlier "
                                  "tool call (gemini needs the function name)",
                                  mi);
            } else if (llmc__xj_content_text(content, &text, 1) != 0) {
                st = llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d]: tool message content must be text",
                                  mi);
            } else {
                /* A JSON object result is passed as the response itself;
                 * anything else is wrapped as {"content": text}. */
                if (text.len)
                    resp = llmc__xj_parse(text.data, text.len);
                if (!resp || !json_object_is_type(resp, json_type_object)) {
                    json_object_put(resp);
                    resp = json_object_new_object();
                    llmc__xj_put_str(resp, "content", text.data ? text.data : "");
                }
                fr = json_object_new_object();
                llmc__xj_put_str(fr, "name", name);
                json_object_object_add(fr, "response", resp);
                p = json_object_new_object();
                json_object_object_add(p, "functionResponse", fr);
                json_object_array_add(parts, p);
                llmc__xj_push_turn(contents, "user", "parts", json_object_get(parts));
            }
            llmc_buf_free(&text);
        } else {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "messages[%d]: role \"%s\" is not supported by the gemini adapter", mi,
                              role);
        }
        json_object_put(parts);
    }
    if (st == LLMC_OK && json_object_array_length(contents) == 0)
        st = llmc_err_set(err, LLMC_EINVAL, 0,
                          "\"messages\" holds no user or assistant message (gemini needs one)");
    if (st != LLMC_OK) {
        json_object_put(contents);
        json_object_put(sys);
        return st;
    }
    if (sys && json_object_array_length(sys) > 0) {
        json_object *si = json_object_new_object();
        json_object_object_add(si, "parts", sys);
        json_object_object_add(body, "systemInstruction", si);
    } else {
        json_object_put(sys);
    }
    json_object_object_add(body, "contents", contents);
    return LLMC_OK;
}

static llmc_status gem_tools(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *tools = llmc__xj_get(req, "tools"), *tc = llmc__xj_get(req, "tool_choice");
    if (tools) {
        json_object *decls, *t0, *arr;
        size_t i;
        if (!json_object_is_type(tools, json_type_array))
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"tools\" must be an array");
        decls = json_object_new_array();
        for (i = 0; i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            json_object *fn = llmc__xj_get(t, "function"), *params, *props, *d;
            const char *type = llmc__xj_str(t, "type"), *name = llmc__xj_str(fn, "name");
            if (!type || strcmp(type, "function") != 0 || !name) {
                json_object_put(decls);
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "tools[%zu]: only {\"type\":\"function\",\"function\":{\"name\":...}} "
                                    "tools are supported by the gemini adapter",
                                    i);
            }
            d = json_object_new_object();
            llmc__xj_put_str(d, "name", name);
            if (llmc__xj_str(fn, "description"))
                llmc__xj_put_ref(d, "description", llmc__xj_get(fn, "description"));
            params = llmc__xj_get(fn, "parameters");
            /* Gemini refuses an OBJECT schema without properties; a
             * function without parameters simply has none. */
            props = llmc__xj_get(params, "properties");
            if (props && json_object_is_type(props, json_type_object) &&
                json_object_object_length(props) > 0)
                json_object_object_add(d, "parameters", gem_clean_schema(params));
            json_object_array_add(decls, d);
        }
        t0 = json_object_new_object();
        json_object_object_add(t0, "functionDeclarations", decls);
        arr = json_object_new_array();
        json_object_array_add(arr, t0);
        json_object_object_add(body, "tools", arr);
    }
    if (tc) {
        json_object *fcc = json_object_new_object(), *cfg;
        if (json_object_is_type(tc, json_type_string)) {
            const char *s = json_object_get_string(tc);
            const char *mode = strcmp(s, "auto") == 0       ? "AUTO"
                               : strcmp(s, "none") == 0     ? "NONE"
                               : strcmp(s, "required") == 0 ? "ANY"
                                                            : NULL;
            if (!mode) {
                json_object_put(fcc);
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "tool_choice \"%s\": expected auto, none, required or an object", s);
            }
            llmc__xj_put_str(fcc, "mode", mode);
        } else {
            const char *name = llmc__xj_str(llmc__xj_get(tc, "function"), "name");
            json_object *names;
            if (!name) {
                json_object_put(fcc);
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "tool_choice: expected {\"type\":\"function\",\"function\":{\"name\":...}}");
            }
            llmc__xj_put_str(fcc, "mode", "ANY");
            names = json_object_new_array();
            json_object_array_add(names, json_object_new_string(name));
            json_object_object_add(fcc, "allowedFunctionNames", names);
        }
        cfg = json_object_new_object();
        json_object_object_add(cfg, "functionCallingConfig", fcc);
        json_object_object_add(body, "toolConfig", cfg);
    }
    return LLMC_OK;
}

static llmc_status gem_generation_config(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *gc = json_object_new_object(), *v;
    if ((v = llmc__xj_get(req, "temperature")))
        llmc__xj_put_ref(gc, "temperature", v);
    if ((v = llmc__xj_get(req, "top_p")))
        llmc__xj_put_ref(gc, "topP", v);
    if ((v = llmc__xj_get(req, "top_k")))
        llmc__xj_put_ref(gc, "topK", v);
    if ((v = llmc__xj_get(req, "max_tokens")) || (v = llmc__xj_get(req, "max_completion_tokens")))
        llmc__xj_put_ref(gc, "maxOutputTokens", v);
    if ((v = llmc__xj_get(req, "stop"))) {
        if (json_object_is_type(v, json_type_string)) {
            json_object *a = json_object_new_array();
            json_object_array_add(a, json_object_get(v));
            json_object_object_add(gc, "stopSequences", a);
        } else if (json_object_is_type(v, json_type_array)) {
            llmc__xj_put_ref(gc, "stopSequences", v);
        } else {
            json_object_put(gc);
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"stop\" must be a string or an array of strings");
        }
    }
    if ((v = llmc__xj_get(req, "n")))
        llmc__xj_put_ref(gc, "candidateCount", v);
    if ((v = llmc__xj_get(req, "presence_penalty")))
        llmc__xj_put_ref(gc, "presencePenalty", v);
    if ((v = llmc__xj_get(req, "frequency_penalty")))
        llmc__xj_put_ref(gc, "frequencyPenalty", v);
    if ((v = llmc__xj_get(req, "seed")))
        llmc__xj_put_ref(gc, "seed", v);
    if ((v = llmc__xj_get(req, "response_format"))) {
        const char *type = llmc__xj_str(v, "type");
        if (type && strcmp(type, "json_object") == 0) {
            llmc__xj_put_str(gc, "responseMimeType", "application/json");
        } else if (type && strcmp(type, "json_schema") == 0 &&
                   llmc__xj_get(llmc__xj_get(v, "json_schema"), "schema")) {
            llmc__xj_put_str(gc, "responseMimeType", "application/json");
            json_object_object_add(gc, "responseSchema",
                                   gem_clean_schema(llmc__xj_get(llmc__xj_get(v, "json_schema"), "schema")));
        } else if (!type || strcmp(type, "text") != 0) {
            json_object_put(gc);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "response_format: expected type text, json_object or json_schema "
                                "with a schema");
        }
    }
    if (llmc__xj_str(req, "reasoning_effort")) {
        const char *e = llmc__xj_str(req, "reasoning_effort");
        int64_t budget = strcmp(e, "none") == 0 ? 0 : strcmp(e, "low") == 0 ? 1024
                                                  : strcmp(e, "medium") == 0 ? 2048 : 4096;
        json_object *tc = json_object_new_object();
        llmc__xj_put_int(tc, "thinkingBudget", budget);
        json_object_object_add(gc, "thinkingConfig", tc);
    }
    if (json_object_object_length(gc) > 0)
        json_object_object_add(body, "generationConfig", gc);
    else
        json_object_put(gc);
    return LLMC_OK;
}

/* {base}/{version}/models/{model}:{method}; the model may be given as
 * "models/x" as Google's own clients do. */
static llmc_status gem_url(const llmc_provider_call *call, const char *method, llmc_buf *url)
{
    const char *model = call->model;
    llmc_status st;
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    llmc_buf_clear(url);
    if ((st = llmc_buf_printf(url, "%s/%s/models/", call->api_base,
                              call->api_version ? call->api_version : "v1beta")) != LLMC_OK ||
        (st = llmc_http_url_append_escaped(url, model)) != LLMC_OK ||
        (st = llmc_buf_printf(url, ":%s", method)) != LLMC_OK)
        return st;
    return LLMC_OK;
}

static llmc_status gem_embed_body(const llmc_provider_call *call, const json_object *req,
                                  json_object **out, const char **method, llmc_err *err)
{
    json_object *input = llmc__xj_get(req, "input"), *dims = llmc__xj_get(req, "dimensions");
    const char *task = llmc__xj_str(req, "task_type");
    const char *fmt = llmc__xj_str(req, "encoding_format");
    json_object *reqs, *body;
    size_t i, n;
    const char *model = strncmp(call->model, "models/", 7) == 0 ? call->model + 7 : call->model;
    char mname[512];

    *out = NULL;
    if (fmt && strcmp(fmt, "float") != 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "encoding_format \"%s\" is not supported by the gemini adapter (float only)",
                            fmt);
    if (!input || !json_object_is_type(input, json_type_array) || json_object_array_length(input) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "\"input\" must be a non-empty array of strings");
    n = json_object_array_length(input);
    snprintf(mname, sizeof mname, "models/%s", model);
    reqs = json_object_new_array();
    for (i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(input, i), *r, *content, *parts, *p;
        if (!json_object_is_type(it, json_type_string)) {
            json_object_put(reqs);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "input[%zu]: gemini embeds text only (token arrays are not supported)", i);
        }
        p = json_object_new_object();
        llmc__xj_put_ref(p, "text", it);
        parts = json_object_new_array();
        json_object_array_add(parts, p);
        content = json_object_new_object();
        json_object_object_add(content, "parts", parts);
        r = json_object_new_object();
        llmc__xj_put_str(r, "model", mname);
        json_object_object_add(r, "content", content);
        if (task)
            llmc__xj_put_str(r, "taskType", task);
        if (dims)
            llmc__xj_put_ref(r, "outputDimensionality", dims);
        json_object_array_add(reqs, r);
    }
    if (n == 1) {
        body = json_object_get(json_object_array_get_idx(reqs, 0));
        json_object_put(reqs);
        *method = "embedContent";
    } else {
        body = json_object_new_object();
        json_object_object_add(body, "requests", reqs);
        *method = "batchEmbedContents";
    }
    *out = body;
    return LLMC_OK;
}

static llmc_status gem_build_request(const llmc_provider_call *call, json_object *request,
                                     llmc_http_request *out, llmc_err *err)
{
    json_object *body = NULL;
    const char *method;
    llmc_status st;

    if (!request || !json_object_is_type(request, json_type_object))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request must be a JSON object");
    if (call->call == LLMC_CALL_EMBEDDING) {
        if ((st = gem_embed_body(call, request, &body, &method, err)) != LLMC_OK)
            return st;
    } else if (call->call == LLMC_CALL_CHAT) {
        if ((st = llmc__xj_refuse(request, gem_unsupported, "gemini", err)) != LLMC_OK)
            return st;
        body = json_object_new_object();
        if ((st = gem_contents(request, body, err)) != LLMC_OK ||
            (st = gem_generation_config(request, body, err)) != LLMC_OK ||
            (st = gem_tools(request, body, err)) != LLMC_OK) {
            json_object_put(body);
            return st;
        }
        llmc__xj_passthrough(request, gem_handled, gem_unsupported, body);
        method = call->stream ? "streamGenerateContent" : "generateContent";
    } else {
        return llmc_err_set(err, LLMC_ENOTSUP, 0,
                            "gemini: text completions are not supported (use chat)");
    }
    out->method = "POST";
    if ((st = gem_url(call, method, &out->url)) != LLMC_OK ||
        (call->call == LLMC_CALL_CHAT && call->stream &&
         (st = llmc_buf_puts(&out->url, "?alt=sse")) != LLMC_OK) ||
        (st = llmc_http_request_set_json(out, body)) != LLMC_OK ||
        (call->api_key && (st = llmc_http_request_add_secret(out, "x-goog-api-key", call->api_key)) != LLMC_OK)) {
        json_object_put(body);
        return llmc_err_set(err, st, 0, "gemini: cannot build the request");
    }
    json_object_put(body);
    out->stream_format = (call->call == LLMC_CALL_CHAT && call->stream) ? LLMC_STREAM_SSE : LLMC_STREAM_NONE;
    return LLMC_OK;
}

/* ---- responses ---- */

static const char *gem_finish(const char *fr, int has_tools)
{
    if (!fr)
        return NULL;
    if (strcmp(fr, "STOP") == 0)
        return has_tools ? "tool_calls" : "stop";
    if (strcmp(fr, "MAX_TOKENS") == 0)
        return "length";
    if (strcmp(fr, "SAFETY") == 0 || strcmp(fr, "RECITATION") == 0 || strcmp(fr, "BLOCKLIST") == 0 ||
        strcmp(fr, "PROHIBITED_CONTENT") == 0 || strcmp(fr, "SPII") == 0 ||
        strcmp(fr, "IMAGE_SAFETY") == 0 || strcmp(fr, "LANGUAGE") == 0)
        return "content_filter";
    return has_tools ? "tool_calls" : "stop";
}

static json_object *gem_usage(const json_object *um)
{
    int64_t p = 0, c = 0, t = -1, cached = 0, thoughts = 0;
    json_object *u = json_object_new_object(), *d;
    llmc__xj_int(um, "promptTokenCount", &p);
    llmc__xj_int(um, "candidatesTokenCount", &c);
    llmc__xj_int(um, "totalTokenCount", &t);
    llmc__xj_int(um, "cachedContentTokenCount", &cached);
    llmc__xj_int(um, "thoughtsTokenCount", &thoughts);
    llmc__xj_put_int(u, "prompt_tokens", p);
    /* Thinking tokens are billed as output; OpenAI counts reasoning
     * tokens inside completion_tokens. */
    int64_t completion = llmc__sat_add(c, thoughts);
    llmc__xj_put_int(u, "completion_tokens", completion);
    llmc__xj_put_int(u, "total_tokens", t >= 0 ? t : llmc__sat_add(p, completion));
    d = json_object_new_object();
    llmc__xj_put_int(d, "cached_tokens", cached);
    json_object_object_add(u, "prompt_tokens_details", d);
    if (thoughts) {
        d = json_object_new_object();
        llmc__xj_put_int(d, "reasoning_tokens", thoughts);
        json_object_object_add(u, "completion_tokens_details", d);
    }
    return u;
}

/* Turn a candidate's parts into text, reasoning and tool calls. With
 * `delta` the tool calls carry "index" (stream form) numbered from
 * *tool_base, which is advanced. */
static void gem_parts(const json_object *cand, llmc_buf *text, llmc_buf *thought, int *has_text,
                      int *has_thought, json_object **tool_calls, int *tool_base)
{
    json_object *parts = llmc__xj_get(llmc__xj_get(cand, "content"), "parts");
    size_t i;
    for (i = 0; parts && json_object_is_type(parts, json_type_array) &&
                i < json_object_array_length(parts);
         i++) {
        json_object *p = json_object_array_get_idx(parts, i), *fc;
        json_object *th = llmc__xj_get(p, "thought");
        const char *t = llmc__xj_str(p, "text");
        if (t && th && json_object_get_boolean(th)) {
            llmc_buf_puts(thought, t);
            *has_thought = 1;
        } else if (t) {
            llmc_buf_puts(text, t);
            *has_text = 1;
        } else if ((fc = llmc__xj_get(p, "functionCall"))) {
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object *args = llmc__xj_get(fc, "args");
            char id[64];
            if (llmc__xj_str(fc, "id"))
                snprintf(id, sizeof id, "%s", llmc__xj_str(fc, "id"));
            else
                llmc_provider_new_id("call_", id, sizeof id);
            if (!*tool_calls)
                *tool_calls = json_object_new_array();
            llmc__xj_put_int(tc, "index", (*tool_base)++);
            llmc__xj_put_str(tc, "id", id);
            llmc__xj_put_str(tc, "type", "function");
            llmc__xj_put_str(fn, "name", llmc__xj_str(fc, "name"));
            llmc__xj_put_str(fn, "arguments", args ? llmc__xj_dump(args) : "{}");
            json_object_object_add(tc, "function", fn);
            json_object_array_add(*tool_calls, tc);
        }
    }
}

static llmc_status gem_map_error(const llmc_provider_call *call, const llmc_http_response *resp,
                                 llmc_err *err);

static llmc_status gem_error_object(long http, const json_object *e, int64_t retry_ms, llmc_err *err)
{
    const char *status = llmc__xj_str(e, "status"), *msg = llmc__xj_str(e, "message");
    json_object *details = llmc__xj_get(e, "details");
    char retry[64] = "";
    llmc_status st;
    size_t i;

    if (http == 401 || http == 403 || (status && (strcmp(status, "UNAUTHENTICATED") == 0 ||
                                                  strcmp(status, "PERMISSION_DENIED") == 0)) ||
        (msg && llmc__xj_ci_contains(msg, "API key not valid")))
        st = LLMC_EAUTH;
    else if (http == 429 || (status && strcmp(status, "RESOURCE_EXHAUSTED") == 0))
        st = LLMC_ERATELIMIT;
    else if (http >= 500 || (status && (strcmp(status, "INTERNAL") == 0 ||
                                        strcmp(status, "UNAVAILABLE") == 0 ||
                                        strcmp(status, "DEADLINE_EXCEEDED") == 0)))
        st = LLMC_EUPSTREAM;
    else if (msg && (llmc_provider_is_context_error(msg) ||
                     llmc__xj_ci_contains(msg, "exceeds the maximum number of tokens") ||
                     llmc__xj_ci_contains(msg, "input token count")))
        st = LLMC_ECONTEXT;
    else if (http >= 400 || status)
        st = LLMC_EBADREQUEST;
    else
        st = LLMC_EPROVIDER;
    if (st == LLMC_ERATELIMIT) {
        /* RetryInfo.retryDelay ("37s") says when to come back when the
         * Retry-After header is absent. */
        const char *delay = NULL;
        for (i = 0; details && json_object_is_type(details, json_type_array) &&
                    i < json_object_array_length(details);
             i++) {
            json_object *d = json_object_array_get_idx(details, i);
            if (llmc__xj_str(d, "retryDelay"))
                delay = llmc__xj_str(d, "retryDelay");
        }
        if (retry_ms >= 0)
            snprintf(retry, sizeof retry, " (retry after %lld ms)", (long long)retry_ms);
        else if (delay)
            snprintf(retry, sizeof retry, " (retry after %.20s)", delay);
    }
    return llmc_err_set(err, st, http, "gemini: HTTP %ld %s: %.300s%s", http,
                        status ? status : "error", msg ? msg : "(no message)", retry);
}

static llmc_status gem_parse_chat(const llmc_provider_call *call, const json_object *r,
                                  json_object **out, llmc_err *err)
{
    json_object *cands = llmc__xj_get(r, "candidates"), *resp, *choices;
    const char *model = llmc__xj_str(r, "modelVersion");
    char id[64];
    size_t i, n = cands && json_object_is_type(cands, json_type_array) ? json_object_array_length(cands) : 0;

    if (!cands && !llmc__xj_get(r, "promptFeedback"))
        return llmc_err_set(err, LLMC_EPROTO, 0, "gemini response has no \"candidates\"");
    choices = json_object_new_array();
    for (i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cands, i), *msg, *ch, *tcs = NULL;
        llmc_buf text = LLMC_BUF_INIT, thought = LLMC_BUF_INIT;
        int has_text = 0, has_thought = 0, base = 0;
        int64_t idx = (int64_t)i;
        gem_parts(c, &text, &thought, &has_text, &has_thought, &tcs, &base);
        msg = json_object_new_object();
        llmc__xj_put_str(msg, "role", "assistant");
        json_object_object_add(msg, "content", has_text ? json_object_new_string(text.data) : NULL);
        if (has_thought)
            llmc__xj_put_str(msg, "reasoning_content", thought.data);
        if (tcs)
            json_object_object_add(msg, "tool_calls", tcs);
        llmc_buf_free(&text);
        llmc_buf_free(&thought);
        llmc__xj_int(c, "index", &idx);
        ch = json_object_new_object();
        llmc__xj_put_int(ch, "index", idx);
        json_object_object_add(ch, "message", msg);
        {
            const char *fr = gem_finish(llmc__xj_str(c, "finishReason"), tcs != NULL);
            json_object_object_add(ch, "finish_reason", json_object_new_string(fr ? fr : "stop"));
        }
        json_object_array_add(choices, ch);
    }
    if (n == 0) {
        /* The prompt itself was blocked: one empty, filtered choice (the
         * client does not store empty answers). */
        json_object *ch = json_object_new_object(), *msg = json_object_new_object();
        llmc__xj_put_str(msg, "role", "assistant");
        json_object_object_add(msg, "content", NULL);
        llmc__xj_put_int(ch, "index", 0);
        json_object_object_add(ch, "message", msg);
        llmc__xj_put_str(ch, "finish_reason", "content_filter");
        json_object_array_add(choices, ch);
    }
    if (llmc__xj_str(r, "responseId"))
        snprintf(id, sizeof id, "%s", llmc__xj_str(r, "responseId"));
    else
        llmc_provider_new_id("chatcmpl-", id, sizeof id);
    resp = json_object_new_object();
    llmc__xj_put_str(resp, "id", id);
    llmc__xj_put_str(resp, "object", "chat.completion");
    llmc__xj_put_int(resp, "created", (int64_t)time(NULL));
    llmc__xj_put_str(resp, "model", model ? model : call->model);
    json_object_object_add(resp, "choices", choices);
    json_object_object_add(resp, "usage", gem_usage(llmc__xj_get(r, "usageMetadata")));
    *out = resp;
    return LLMC_OK;
}

static json_object *gem_vector(const json_object *e)
{
    json_object *v = llmc__xj_get(e, "values");
    return v && json_object_is_type(v, json_type_array) ? v : NULL;
}

static llmc_status gem_parse_embed(const llmc_provider_call *call, const json_object *r,
                                   json_object **out, llmc_err *err)
{
    json_object *list = llmc__xj_get(r, "embeddings"), *one = llmc__xj_get(r, "embedding");
    json_object *data = json_object_new_array(), *resp, *usage;
    size_t i, n;

    if (one) {
        list = NULL;
        n = 1;
    } else if (list && json_object_is_type(list, json_type_array)) {
        n = json_object_array_length(list);
    } else {
        json_object_put(data);
        return llmc_err_set(err, LLMC_EPROTO, 0,
                            "gemini embedding response has neither \"embedding\" nor \"embeddings\"");
    }
    for (i = 0; i < n; i++) {
        json_object *vec = gem_vector(one ? one : json_object_array_get_idx(list, i)), *d;
        if (!vec) {
            json_object_put(data);
            return llmc_err_set(err, LLMC_EPROTO, 0, "gemini embedding %zu has no \"values\" array", i);
        }
        d = json_object_new_object();
        llmc__xj_put_str(d, "object", "embedding");
        llmc__xj_put_int(d, "index", (int64_t)i);
        llmc__xj_put_ref(d, "embedding", vec);
        json_object_array_add(data, d);
    }
    resp = json_object_new_object();
    llmc__xj_put_str(resp, "object", "list");
    json_object_object_add(resp, "data", data);
    llmc__xj_put_str(resp, "model", call->model);
    /* The embedding endpoints report no token counts. */
    usage = json_object_new_object();
    llmc__xj_put_int(usage, "prompt_tokens", 0);
    llmc__xj_put_int(usage, "total_tokens", 0);
    json_object_object_add(resp, "usage", usage);
    *out = resp;
    return LLMC_OK;
}

static llmc_status gem_parse_response(const llmc_provider_call *call, const llmc_http_response *resp,
                                      json_object **out, llmc_err *err)
{
    json_object *o = NULL;
    llmc_status st;

    *out = NULL;
    if ((st = llmc_json_parse(resp->body, resp->body_len, "gemini response", &o, err)) != LLMC_OK)
        return st;
    if (llmc__xj_get(o, "error")) {
        st = gem_error_object(resp->status, llmc__xj_get(o, "error"), resp->retry_after_ms, err);
        json_object_put(o);
        return st;
    }
    st = call->call == LLMC_CALL_EMBEDDING ? gem_parse_embed(call, o, out, err)
                                           : gem_parse_chat(call, o, out, err);
    json_object_put(o);
    return st;
}

/* ---- streams ---- */

#define GEM_MAX_CANDS 8

typedef struct gem_stream {
    char id[64];
    int have_response_id;
    int64_t created;
    int role_sent[GEM_MAX_CANDS];
    int n_tools[GEM_MAX_CANDS];
    int finished[GEM_MAX_CANDS];
    int seen[GEM_MAX_CANDS];
} gem_stream;

static llmc_status gem_stream_new(const llmc_provider_call *call, void **state, llmc_err *err)
{
    gem_stream *s = calloc(1, sizeof *s);
    LLMC_UNUSED(call);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "gemini: out of memory");
    llmc_provider_new_id("chatcmpl-", s->id, sizeof s->id);
    s->created = (int64_t)time(NULL);
    *state = s;
    return LLMC_OK;
}

static void gem_stream_free(void *state)
{
    free(state);
}

static llmc_status gem_parse_stream_event(void *state, const llmc_provider_call *call,
                                          const char *event, const char *data, size_t data_len,
                                          llmc_chunk_sink sink, void *sink_ud, int *done,
                                          llmc_err *err)
{
    gem_stream *s = state;
    json_object *o = NULL, *cands, *chunk, *um;
    const char *model;
    llmc_status st;
    size_t i, n;
    int all_done = 1, any = 0;

    LLMC_UNUSED(event);
    if ((st = llmc_json_parse(data, data_len, "gemini stream event", &o, err)) != LLMC_OK)
        return st;
    if (llmc__xj_get(o, "error")) {
        st = gem_error_object(0, llmc__xj_get(o, "error"), -1, err);
        json_object_put(o);
        return st;
    }
    if (llmc__xj_str(o, "responseId") && !s->have_response_id) {
        snprintf(s->id, sizeof s->id, "%s", llmc__xj_str(o, "responseId"));
        s->have_response_id = 1;
    }
    model = llmc__xj_str(o, "modelVersion");
    chunk = llmc_chunk_new(s->id, s->created, model ? model : call->model);
    cands = llmc__xj_get(o, "candidates");
    n = cands && json_object_is_type(cands, json_type_array) ? json_object_array_length(cands) : 0;
    for (i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cands, i), *delta, *tcs = NULL;
        llmc_buf text = LLMC_BUF_INIT, thought = LLMC_BUF_INIT;
        int has_text = 0, has_thought = 0;
        int64_t idx = (int64_t)i;
        const char *fr;
        llmc__xj_int(c, "index", &idx);
        if (idx < 0 || idx >= GEM_MAX_CANDS) {
            json_object_put(chunk);
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "gemini stream: candidate index %lld out of range",
                                (long long)idx);
        }
        s->seen[idx] = 1;
        delta = llmc_chunk_add_choice(chunk, (int)idx);
        if (!s->role_sent[idx]) {
            llmc__xj_put_str(delta, "role", "assistant");
            s->role_sent[idx] = 1;
        }
        gem_parts(c, &text, &thought, &has_text, &has_thought, &tcs, &s->n_tools[idx]);
        if (has_text)
            llmc__xj_put_str(delta, "content", text.data);
        if (has_thought)
            llmc__xj_put_str(delta, "reasoning_content", thought.data);
        if (tcs)
            json_object_object_add(delta, "tool_calls", tcs);
        llmc_buf_free(&text);
        llmc_buf_free(&thought);
        fr = gem_finish(llmc__xj_str(c, "finishReason"), s->n_tools[idx] > 0);
        if (fr) {
            llmc_chunk_set_finish(chunk, (int)(json_object_array_length(llmc__xj_get(chunk, "choices")) - 1), fr);
            s->finished[idx] = 1;
        }
        any = 1;
    }
    if (!any && llmc__xj_str(llmc__xj_get(o, "promptFeedback"), "blockReason")) {
        json_object *delta = llmc_chunk_add_choice(chunk, 0);
        llmc__xj_put_str(delta, "role", "assistant");
        llmc_chunk_set_finish(chunk, 0, "content_filter");
        s->seen[0] = s->finished[0] = 1;
    }
    for (i = 0; i < GEM_MAX_CANDS; i++)
        if (s->seen[i] && !s->finished[i])
            all_done = 0;
    /* usageMetadata comes with every event, growing; only the final one
     * (every candidate finished) is the call's usage. */
    um = llmc__xj_get(o, "usageMetadata");
    if (all_done && um)
        json_object_object_add(chunk, "usage", gem_usage(um));
    if (all_done && (s->seen[0] || any))
        *done = 1;
    st = sink(sink_ud, chunk);
    json_object_put(chunk);
    json_object_put(o);
    return st;
}

static llmc_status gem_map_error(const llmc_provider_call *call, const llmc_http_response *resp,
                                 llmc_err *err)
{
    json_object *o = llmc__xj_parse(resp->body, resp->body_len);
    json_object *e;
    llmc_status st;
    /* Gemini sometimes answers with a one-element array of the error. */
    if (o && json_object_is_type(o, json_type_array) && json_object_array_length(o) > 0)
        e = llmc__xj_get(json_object_array_get_idx(o, 0), "error");
    else
        e = llmc__xj_get(o, "error");
    if (!e) {
        json_object_put(o);
        return llmc_provider_map_error_default(call, resp, err);
    }
    st = gem_error_object(resp->status, e, resp->retry_after_ms, err);
    json_object_put(o);
    return st;
}

static int gem_match_model(const char *model)
{
    return strncmp(model, "gemini-", 7) == 0 || strncmp(model, "models/gemini-", 14) == 0;
}

static const char *const gem_env_key[] = {"GEMINI_API_KEY", "GOOGLE_API_KEY", NULL};
static const char *const gem_env_base[] = {"GEMINI_API_BASE", NULL};

const llmc_provider_ops llmc__provider_gemini = {
    LLMC_COMPONENT_INIT(llmc_provider_ops, "gemini", "Google Gemini API (gemini-*)"),
    LLMC_PROVIDER_CHAT | LLMC_PROVIDER_EMBEDDING | LLMC_PROVIDER_STREAM | LLMC_PROVIDER_NEEDS_KEY,
    "https://generativelanguage.googleapis.com",
    "v1beta",
    gem_env_key,
    gem_env_base,
    NULL,
    gem_match_model,
    gem_build_request,
    gem_parse_response,
    gem_stream_new,
    gem_stream_free,
    gem_parse_stream_event,
    gem_map_error,
    NULL,
};
