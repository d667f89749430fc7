/* The "ollama" provider: OpenAI requests over Ollama's native API:
 *   chat        POST {host}/api/chat      (NDJSON stream when streaming)
 *   text        POST {host}/api/generate  (not streamed)
 *   embeddings  POST {host}/api/embed
 * {host} is api_base, OLLAMA_HOST or http://localhost:11434; OLLAMA_HOST
 * may be a bare "host:port" as the ollama command accepts it.
 *
 * Translation only; docs/providers.md lists what is and is not
 * translated. */
#include "adapters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xjson.h"

static const char *const oll_unsupported[] = {
    "logit_bias", "logprobs", "top_logprobs", "functions", "function_call", "audio",
    "modalities", "prediction", "parallel_tool_calls", "service_tier", "suffix", "echo",
    "best_of", NULL};

/* Consumed by the translation; everything else (keep_alive, think,
 * template, raw, ...) is an Ollama-specific member passed through. */
static const char *const oll_handled[] = {
    "model", "messages", "prompt", "max_tokens", "max_completion_tokens", "stop",
    "temperature", "top_p", "top_k", "n", "presence_penalty", "frequency_penalty", "seed",
    "response_format", "tools", "tool_choice", "stream", "stream_options", "user", "options",
    "metadata", "cache", "caching", "mock_response", "api_key", "api_base", "base_url",
    "api_version", "timeout", "max_retries", "extra_headers", "provider",
    "custom_llm_provider", "input", "encoding_format", "dimensions", "reasoning_effort", NULL};

/* {host}{path}. OLLAMA_HOST is read the way the ollama command reads
 * it: without a scheme it is http, and then without a port it is 11434
 * ("0.0.0.0", "127.0.0.1:11434", "myhost"). With a scheme the URL is
 * taken as written. */
static llmc_status oll_url(const llmc_provider_call *call, const char *path, llmc_buf *url)
{
    const char *base = call->api_base, *end, *colon;
    int has_port = 0;
    llmc_buf_clear(url);
    if (strstr(base, "://"))
        return llmc_buf_printf(url, "%s%s", base, path);
    end = strchr(base, '/');
    if (!end)
        end = base + strlen(base);
    if (*base == '[') { /* [v6]:port */
        const char *rb = memchr(base, ']', (size_t)(end - base));
        has_port = rb && rb + 1 < end && rb[1] == ':';
    } else {
        colon = memchr(base, ':', (size_t)(end - base));
        has_port = colon != NULL;
    }
    return llmc_buf_printf(url, "http://%.*s%s%s%s", (int)(end - base), base,
                           has_port ? "" : ":11434", end, path);
}

/* Sampling parameters -> "options" (the request's own "options" object
 * is merged in first, so num_ctx and friends reach Ollama). */
static llmc_status oll_options(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *opts = json_object_new_object(), *v, *given = llmc__xj_get(req, "options");
    static const struct {
        const char *from, *to;
    } map[] = {{"temperature", "temperature"}, {"top_p", "top_p"},     {"top_k", "top_k"},
               {"max_tokens", "num_predict"},  {"seed", "seed"},       {"presence_penalty", "presence_penalty"},
               {"frequency_penalty", "frequency_penalty"}, {"max_completion_tokens", "num_predict"}};
    size_t i;

    if (given) {
        if (!json_object_is_type(given, json_type_object)) {
            json_object_put(opts);
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"options\" must be an object");
        }
        json_object_object_foreach(given, k, gv) { llmc__xj_put_ref(opts, k, gv); }
    }
    for (i = 0; i < LLMC_ARRAY_LEN(map); i++)
        if ((v = llmc__xj_get(req, map[i].from)))
            llmc__xj_put_ref(opts, map[i].to, v);
    if ((v = llmc__xj_get(req, "stop"))) {
        if (json_object_is_type(v, json_type_string)) {
            json_object *a = json_object_new_array();
            json_object_array_add(a, json_object_get(v));
            json_object_object_add(opts, "stop", a);
        } else if (json_object_is_type(v, json_type_array)) {
            llmc__xj_put_ref(opts, "stop", v);
        } else {
            json_object_put(opts);
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"stop\" must be a string or an array of strings");
        }
    }
    if (json_object_object_length(opts) > 0)
        json_object_object_add(body, "options", opts);
    else
        json_object_put(opts);
    return LLMC_OK;
}

static llmc_status oll_format(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *rf = llmc__xj_get(req, "response_format");
    const char *type = llmc__xj_str(rf, "type");
    if (!rf)
        return LLMC_OK;
    if (type && strcmp(type, "json_object") == 0)
        llmc__xj_put_str(body, "format", "json");
    else if (type && strcmp(type, "json_schema") == 0 &&
             llmc__xj_get(llmc__xj_get(rf, "json_schema"), "schema"))
        llmc__xj_put_ref(body, "format", llmc__xj_get(llmc__xj_get(rf, "json_schema"), "schema"));
    else if (!type || strcmp(type, "text") != 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "response_format: expected type text, json_object or json_schema with a schema");
    return LLMC_OK;
}

/* The function name of the earlier tool call with this id (Ollama's tool
 * messages carry the tool's name, not an id). */
static const char *oll_tool_name(const json_object *msgs, size_t upto, const char *id)
{
    size_t i, k;
    for (i = upto; i-- > 0;) {
        json_object *tcs = llmc__xj_get(json_object_array_get_idx((json_object *)msgs, i), "tool_calls");
        for (k = 0; tcs && json_object_is_type(tcs, json_type_array) && k < json_object_array_length(tcs);
             k++) {
            json_object *tc = json_object_array_get_idx(tcs, k);
            const char *tid = llmc__xj_str(tc, "id");
            if (tid && strcmp(tid, id) == 0)
                return llmc__xj_str(llmc__xj_get(tc, "function"), "name");
        }
    }
    return NULL;
}

static llmc_status oll_messages(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *in = llmc__xj_get(req, "messages"), *msgs;
    size_t i, n;

    if (!in || !json_object_is_type(in, json_type_array) || json_object_array_length(in) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "\"messages\" must be a non-empty array");
    msgs = json_object_new_array();
    n = json_object_array_length(in);
    for (i = 0; i < n; i++) {
        json_object *m = json_object_array_get_idx(in, i), *out, *content, *tcs, *images = NULL;
        const char *role = llmc__xj_str(m, "role");
        llmc_buf text = LLMC_BUF_INIT;
        int mi = (int)i;
        if (!role || !(strcmp(role, "system") == 0 || strcmp(role, "developer") == 0 ||
                       strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0 ||
                       strcmp(role, "tool") == 0)) {
            json_object_put(msgs);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "messages[%d]: role \"%s\" is not supported by the ollama adapter", mi,
                                role ? role : "(missing)");
        }
        content = llmc__xj_get(m, "content");
        if (content && json_object_is_type(content, json_type_array)) {
            size_t k;
            for (k = 0; k < json_object_array_length(content); k++) {
                json_object *part = json_object_array_get_idx(content, k);
                const char *type = llmc__xj_str(part, "type");
                if (type && strcmp(type, "text") == 0 && llmc__xj_str(part, "text")) {
                    llmc_buf_puts(&text, llmc__xj_str(part, "text"));
                } else if (type && strcmp(type, "image_url") == 0) {
                    char mime[64];
                    const char *data;
                    if (!llmc__xj_data_url(llmc__xj_image_url(part), mime, sizeof mime, &data)) {
                        llmc_buf_free(&text);
                        json_object_put(images);
                        json_object_put(msgs);
                        return llmc_err_set(err, LLMC_EINVAL, 0,
                                            "messages[%d].content[%zu]: ollama takes images as "
                                            "base64 data: URLs only",
                                            mi, k);
                    }
                    if (!images)
                        images = json_object_new_array();
                    json_object_array_add(images, json_object_new_string(data));
                } else {
                    llmc_buf_free(&text);
                    json_object_put(images);
                    json_object_put(msgs);
                    return llmc_err_set(err, LLMC_EINVAL, 0,
                                        "messages[%d].content[%zu]: content part type \"%s\" is not "
                                        "supported by the ollama adapter",
                                        mi, k, type ? type : "(none)");
                }
            }
        } else if (content && json_object_is_type(content, json_type_string)) {
            llmc_buf_puts(&text, json_object_get_string(content));
        } else if (content && !json_object_is_type(content, json_type_null)) {
            json_object_put(msgs);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "messages[%d].content: expected a string or an array of parts", mi);
        }
        out = json_object_new_object();
        llmc__xj_put_str(out, "role", strcmp(role, "developer") == 0 ? "system" : role);
        llmc__xj_put_str(out, "content", text.data ? text.data : "");
        llmc_buf_free(&text);
        if (images)
            json_object_object_add(out, "images", images);
        tcs = llmc__xj_get(m, "tool_calls");
        if (strcmp(role, "assistant") == 0 && tcs && json_object_is_type(tcs, json_type_array)) {
            json_object *otcs = json_object_new_array();
            size_t k;
            json_object_object_add(out, "tool_calls", otcs);
            for (k = 0; k < json_object_array_length(tcs); k++) {
                json_object *fn = llmc__xj_get(json_object_array_get_idx(tcs, k), "function");
                const char *name = llmc__xj_str(fn, "name"), *args = llmc__xj_str(fn, "arguments");
                json_object *a = (args && *args) ? llmc__xj_parse(args, strlen(args))
                                                 : json_object_new_object();
                json_object *tc, *ofn;
                if (!name || !a || !json_object_is_type(a, json_type_object)) {
                    json_object_put(a);
                    json_object_put(out);
                    json_object_put(msgs);
                    return llmc_err_set(err, LLMC_EINVAL, 0,
                                        "messages[%d].tool_calls[%zu]: needs function.name and "
                                        "function.arguments holding a JSON object",
                                        mi, k);
                }
                ofn = json_object_new_object();
                llmc__xj_put_str(ofn, "name", name);
                json_object_object_add(ofn, "arguments", a);
                tc = json_object_new_object();
                json_object_object_add(tc, "function", ofn);
                json_object_array_add(otcs, tc);
            }
        }
        if (strcmp(role, "tool") == 0) {
            const char *id = llmc__xj_str(m, "tool_call_id");
            const char *name = id ? oll_tool_name(in, i, id) : NULL;
            if (!name)
                name = llmc__xj_str(m, "name");
            if (name)
                llmc__xj_put_str(out, "tool_name", name);
        }
        json_object_array_add(msgs, out);
    }
    json_object_object_add(body, "messages", msgs);
    return LLMC_OK;
}

static llmc_status oll_build_request(const llmc_provider_call *call, json_object *request,
                                     llmc_http_request *out, llmc_err *err)
{
    json_object *body, *v;
    const char *path;
    llmc_status st;

    if (!request || !json_object_is_type(request, json_type_object))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request must be a JSON object");
    body = json_object_new_object();
    llmc__xj_put_str(body, "model", call->model);
    if (call->call == LLMC_CALL_EMBEDDING) {
        json_object *input = llmc__xj_get(request, "input");
        const char *fmt = llmc__xj_str(request, "encoding_format");
        size_t i;
        if (fmt && strcmp(fmt, "float") != 0) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "encoding_format \"%s\" is not supported by the ollama adapter (float only)",
                                fmt);
        }
        if (!input || !json_object_is_type(input, json_type_array) || json_object_array_length(input) == 0) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"input\" must be a non-empty array of strings");
        }
        for (i = 0; i < json_object_array_length(input); i++)
            if (!json_object_is_type(json_object_array_get_idx(input, i), json_type_string)) {
                json_object_put(body);
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "input[%zu]: ollama embeds text only (token arrays are not supported)",
                                    i);
            }
        llmc__xj_put_ref(body, "input", input);
        if ((v = llmc__xj_get(request, "dimensions")))
            llmc__xj_put_ref(body, "dimensions", v);
        if ((v = llmc__xj_get(request, "options")))
            llmc__xj_put_ref(body, "options", v);
        if ((v = llmc__xj_get(request, "truncate")))
            llmc__xj_put_ref(body, "truncate", v);
        if ((v = llmc__xj_get(request, "keep_alive")))
            llmc__xj_put_ref(body, "keep_alive", v);
        path = "/api/embed";
    } else {
        if ((st = llmc__xj_refuse(request, oll_unsupported, "ollama", err)) != LLMC_OK) {
            json_object_put(body);
            return st;
        }
        if ((v = llmc__xj_get(request, "n")) && json_object_get_int64(v) != 1) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_EINVAL, 0, "parameter \"n\" must be 1: ollama returns one choice");
        }
        if ((v = llmc__xj_get(request, "tool_choice")) &&
            !(json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "auto") == 0)) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "tool_choice other than \"auto\" is not supported by the ollama adapter");
        }
        if (call->call == LLMC_CALL_CHAT) {
            st = oll_messages(request, body, err);
            if (st == LLMC_OK && (v = llmc__xj_get(request, "tools")))
                llmc__xj_put_ref(body, "tools", v);
            path = "/api/chat";
        } else {
            json_object *prompt = llmc__xj_get(request, "prompt");
            if (!prompt || !json_object_is_type(prompt, json_type_string))
                st = llmc_err_set(err, LLMC_EINVAL, 0,
                                  "\"prompt\" must be a string (ollama takes one prompt per call)");
            else {
                llmc__xj_put_ref(body, "prompt", prompt);
                st = LLMC_OK;
            }
            path = "/api/generate";
            if (call->stream && st == LLMC_OK)
                st = llmc_err_set(err, LLMC_ENOTSUP, 0, "ollama: streamed text completions are not supported");
        }
        if (st == LLMC_OK)
            st = oll_options(request, body, err);
        if (st == LLMC_OK)
            st = oll_format(request, body, err);
        if (st != LLMC_OK) {
            json_object_put(body);
            return st;
        }
        llmc__xj_passthrough(request, oll_handled, oll_unsupported, body);
        /* Ollama streams unless told otherwise: always say which. */
        json_object_object_add(body, "stream",
                               json_object_new_boolean(call->call == LLMC_CALL_CHAT && call->stream));
    }
    out->method = "POST";
    if ((st = oll_url(call, path, &out->url)) != LLMC_OK ||
        (st = llmc_http_request_set_json(out, body)) != LLMC_OK) {
        json_object_put(body);
        return llmc_err_set(err, st, 0, "ollama: cannot build the request");
    }
    json_object_put(body);
    /* A local Ollama needs no key; one given (ollama.com, a proxy in
     * front) is sent as a bearer token. */
    if (call->api_key) {
        llmc_buf h = LLMC_BUF_INIT;
        llmc_buf_printf(&h, "Bearer %s", call->api_key);
        st = llmc_http_request_add_secret(out, "Authorization", h.data);
        llmc_buf_free(&h);
        if (st != LLMC_OK)
            return llmc_err_set(err, st, 0, "ollama: cannot build the request");
    }
    out->stream_format = (call->call == LLMC_CALL_CHAT && call->stream) ? LLMC_STREAM_NDJSON : LLMC_STREAM_NONE;
    return LLMC_OK;
}

/* ---- responses ---- */

static const char *oll_finish(const char *done_reason, int has_tools)
{
    if (has_tools)
        return "tool_calls";
    if (done_reason && strcmp(done_reason, "length") == 0)
        return "length";
    return "stop";
}

static json_object *oll_usage(const json_object *r)
{
    int64_t p = 0, c = 0;
    json_object *u = json_object_new_object();
    llmc__xj_int(r, "prompt_eval_count", &p);
    llmc__xj_int(r, "eval_count", &c);
    llmc__xj_put_int(u, "prompt_tokens", p);
    llmc__xj_put_int(u, "completion_tokens", c);
    llmc__xj_put_int(u, "total_tokens", llmc__sat_add(p, c));
    return u;
}

/* Ollama tool calls carry arguments as an object and no id. */
static json_object *oll_tool_calls(const json_object *msg, int *base, int with_index)
{
    json_object *tcs = llmc__xj_get(msg, "tool_calls"), *out;
    size_t i;
    if (!tcs || !json_object_is_type(tcs, json_type_array) || json_object_array_length(tcs) == 0)
        return NULL;
    out = json_object_new_array();
    for (i = 0; i < json_object_array_length(tcs); i++) {
        json_object *fn = llmc__xj_get(json_object_array_get_idx(tcs, i), "function");
        json_object *args = llmc__xj_get(fn, "arguments");
        json_object *tc = json_object_new_object(), *ofn = json_object_new_object();
        char id[64];
        llmc_provider_new_id("call_", id, sizeof id);
        if (with_index)
            llmc__xj_put_int(tc, "index", *base);
        (*base)++;
        llmc__xj_put_str(tc, "id", id);
        llmc__xj_put_str(tc, "type", "function");
        llmc__xj_put_str(ofn, "name", llmc__xj_str(fn, "name"));
        if (args && json_object_is_type(args, json_type_string))
            llmc__xj_put_ref(ofn, "arguments", args);
        else
            llmc__xj_put_str(ofn, "arguments", args ? llmc__xj_dump(args) : "{}");
        json_object_object_add(tc, "function", ofn);
        json_object_array_add(out, tc);
    }
    return out;
}

static llmc_status oll_in_band_error(const json_object *o, llmc_err *err)
{
    const char *msg = llmc__xj_str(o, "error");
    llmc_status st = msg && llmc_provider_is_context_error(msg) ? LLMC_ECONTEXT : LLMC_EUPSTREAM;
    return llmc_err_set(err, st, 0, "ollama: %.300s", msg ? msg : "(no message)");
}

static llmc_status oll_parse_response(const llmc_provider_call *call, const llmc_http_response *resp,
                                      json_object **out, llmc_err *err)
{
    json_object *o = NULL, *r;
    char id[64];
    llmc_status st;

    *out = NULL;
    if ((st = llmc_json_parse(resp->body, resp->body_len, "ollama response", &o, err)) != LLMC_OK)
        return st;
    if (llmc__xj_str(o, "error")) {
        st = oll_in_band_error(o, err);
        json_object_put(o);
        return st;
    }
    r = json_object_new_object();
    if (call->call == LLMC_CALL_EMBEDDING) {
        json_object *embs = llmc__xj_get(o, "embeddings"), *data, *usage;
        int64_t p = 0;
        size_t i;
        if (!embs || !json_object_is_type(embs, json_type_array)) {
            json_object_put(r);
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "ollama embed response has no \"embeddings\" array");
        }
        data = json_object_new_array();
        for (i = 0; i < json_object_array_length(embs); i++) {
            json_object *d = json_object_new_object();
            llmc__xj_put_str(d, "object", "embedding");
            llmc__xj_put_int(d, "index", (int64_t)i);
            llmc__xj_put_ref(d, "embedding", json_object_array_get_idx(embs, i));
            json_object_array_add(data, d);
        }
        llmc__xj_put_str(r, "object", "list");
        json_object_object_add(r, "data", data);
        llmc__xj_put_str(r, "model", llmc__xj_str(o, "model") ? llmc__xj_str(o, "model") : call->model);
        llmc__xj_int(o, "prompt_eval_count", &p);
        usage = json_object_new_object();
        llmc__xj_put_int(usage, "prompt_tokens", p);
        llmc__xj_put_int(usage, "total_tokens", p);
        json_object_object_add(r, "usage", usage);
    } else if (call->call == LLMC_CALL_CHAT) {
        json_object *m = llmc__xj_get(o, "message"), *msg, *ch, *choices, *tcs;
        int base = 0;
        if (!m) {
            json_object_put(r);
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "ollama chat response has no \"message\"");
        }
        tcs = oll_tool_calls(m, &base, 1);
        msg = json_object_new_object();
        llmc__xj_put_str(msg, "role", "assistant");
        if (llmc__xj_str(m, "content") && (*llmc__xj_str(m, "content") || !tcs))
            llmc__xj_put_ref(msg, "content", llmc__xj_get(m, "content"));
        else
            json_object_object_add(msg, "content", NULL);
        if (llmc__xj_str(m, "thinking") && *llmc__xj_str(m, "thinking"))
            llmc__xj_put_ref(msg, "reasoning_content", llmc__xj_get(m, "thinking"));
        if (tcs)
            json_object_object_add(msg, "tool_calls", tcs);
        ch = json_object_new_object();
        llmc__xj_put_int(ch, "index", 0);
        json_object_object_add(ch, "message", msg);
        llmc__xj_put_str(ch, "finish_reason", oll_finish(llmc__xj_str(o, "done_reason"), tcs != NULL));
        choices = json_object_new_array();
        json_object_array_add(choices, ch);
        llmc_provider_new_id("chatcmpl-", id, sizeof id);
        llmc__xj_put_str(r, "id", id);
        llmc__xj_put_str(r, "object", "chat.completion");
        llmc__xj_put_int(r, "created", (int64_t)time(NULL));
        llmc__xj_put_str(r, "model", llmc__xj_str(o, "model") ? llmc__xj_str(o, "model") : call->model);
        json_object_object_add(r, "choices", choices);
        json_object_object_add(r, "usage", oll_usage(o));
    } else {
        json_object *ch = json_object_new_object(), *choices = json_object_new_array();
        if (!llmc__xj_str(o, "response")) {
            json_object_put(ch);
            json_object_put(choices);
            json_object_put(r);
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "ollama generate response has no \"response\"");
        }
        llmc__xj_put_int(ch, "index", 0);
        llmc__xj_put_ref(ch, "text", llmc__xj_get(o, "response"));
        json_object_object_add(ch, "logprobs", NULL);
        llmc__xj_put_str(ch, "finish_reason", oll_finish(llmc__xj_str(o, "done_reason"), 0));
        json_object_array_add(choices, ch);
        llmc_provider_new_id("cmpl-", id, sizeof id);
        llmc__xj_put_str(r, "id", id);
        llmc__xj_put_str(r, "object", "text_completion");
        llmc__xj_put_int(r, "created", (int64_t)time(NULL));
        llmc__xj_put_str(r, "model", llmc__xj_str(o, "model") ? llmc__xj_str(o, "model") : call->model);
        json_object_object_add(r, "choices", choices);
        json_object_object_add(r, "usage", oll_usage(o));
    }
    json_object_put(o);
    *out = r;
    return LLMC_OK;
}

/* ---- streams (NDJSON) ---- */

typedef struct oll_stream {
    char id[64];
    int64_t created;
    int role_sent;
    int n_tools;
} oll_stream;

static llmc_status oll_stream_new(const llmc_provider_call *call, void **state, llmc_err *err)
{
    oll_stream *s = calloc(1, sizeof *s);
    LLMC_UNUSED(call);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "ollama: out of memory");
    llmc_provider_new_id("chatcmpl-", s->id, sizeof s->id);
    s->created = (int64_t)time(NULL);
    *state = s;
    return LLMC_OK;
}

static void oll_stream_free(void *state)
{
    free(state);
}

static llmc_status oll_parse_stream_event(void *state, const llmc_provider_call *call,
                                          const char *event, const char *data, size_t data_len,
                                          llmc_chunk_sink sink, void *sink_ud, int *done,
                                          llmc_err *err)
{
    oll_stream *s = state;
    json_object *o = NULL, *chunk, *delta, *m, *tcs, *d;
    const char *model, *content, *thinking;
    llmc_status st;

    LLMC_UNUSED(event);
    if ((st = llmc_json_parse(data, data_len, "ollama stream line", &o, err)) != LLMC_OK)
        return st;
    if (llmc__xj_str(o, "error")) {
        st = oll_in_band_error(o, err);
        json_object_put(o);
        return st;
    }
    model = llmc__xj_str(o, "model");
    chunk = llmc_chunk_new(s->id, s->created, model ? model : call->model);
    delta = llmc_chunk_add_choice(chunk, 0);
    if (!s->role_sent) {
        llmc__xj_put_str(delta, "role", "assistant");
        s->role_sent = 1;
    }
    m = llmc__xj_get(o, "message");
    content = llmc__xj_str(m, "content");
    thinking = llmc__xj_str(m, "thinking");
    if (content && *content)
        llmc__xj_put_str(delta, "content", content);
    if (thinking && *thinking)
        llmc__xj_put_str(delta, "reasoning_content", thinking);
    if ((tcs = oll_tool_calls(m, &s->n_tools, 1)))
        json_object_object_add(delta, "tool_calls", tcs);
    d = llmc__xj_get(o, "done");
    if (d && json_object_get_boolean(d)) {
        llmc_chunk_set_finish(chunk, 0, oll_finish(llmc__xj_str(o, "done_reason"), s->n_tools > 0));
        json_object_object_add(chunk, "usage", oll_usage(o));
        *done = 1;
    }
    st = sink(sink_ud, chunk);
    json_object_put(chunk);
    json_object_put(o);
    return st;
}

static llmc_status oll_map_error(const llmc_provider_call *call, const llmc_http_response *resp,
                                 llmc_err *err)
{
    /* Ollama answers {"error":"..."}; a missing model is a 404, which
     * the default maps to LLMC_EBADREQUEST with Ollama's message. */
    return llmc_provider_map_error_default(call, resp, err);
}

static const char *const oll_env_base[] = {"OLLAMA_HOST", "OLLAMA_API_BASE", NULL};
static const char *const oll_env_key[] = {"OLLAMA_API_KEY", NULL};

const llmc_provider_ops llmc__provider_ollama = {
    LLMC_COMPONENT_INIT(llmc_provider_ops, "ollama", "Ollama native API (/api/chat, /api/embed)"),
    LLMC_PROVIDER_CHAT | LLMC_PROVIDER_TEXT | LLMC_PROVIDER_EMBEDDING | LLMC_PROVIDER_STREAM,
    "http://localhost:11434",
    NULL,
    oll_env_key,
    oll_env_base,
    NULL,
    NULL, /* no bare-name inference: Ollama serves any model name */
    oll_build_request,
    oll_parse_response,
    oll_stream_new,
    oll_stream_free,
    oll_parse_stream_event,
    oll_map_error,
    NULL,
};
