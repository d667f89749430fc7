/* The "anthropic" provider: OpenAI chat requests over Anthropic's
 * Messages API (POST {base}/v1/messages, x-api-key, anthropic-version).
 *
 * Translation only; see docs/providers.md for what is and is not
 * translated. The core does the HTTP, the SSE framing and the caching. */
#include "adapters.h"

#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xjson.h"

#define ANTH_DEFAULT_MAX_TOKENS 4096

/* OpenAI request members that the Messages API has no equivalent for.
 * Sending them on would be a 400 from Anthropic; dropping them silently
 * would return an answer the caller did not ask for, so they are refused
 * with a message naming the parameter (LiteLLM's UnsupportedParamsError). */
static const char *const anth_unsupported[] = {
    "frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
    "top_logprobs", "seed", "functions", "function_call", "audio",
    "modalities", "prediction", "response_format", NULL};

/* Members consumed by the translation, or transport/cache controls that
 * never go upstream. Everything else is passed through verbatim: it is a
 * provider-specific parameter (thinking, service_tier, ...). */
static const char *const anth_handled[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stop",
    "temperature", "top_p", "top_k", "tools", "tool_choice",
    "parallel_tool_calls", "stream", "stream_options", "user", "n",
    "reasoning_effort", "metadata", "cache", "caching", "mock_response",
    "api_key", "api_base", "base_url", "api_version", "timeout",
    "max_retries", "extra_headers", "provider", NULL};

/* One OpenAI content part -> one Anthropic block (new object), or NULL
 * with err set. */
static json_object *anth_part(const json_object *part, int mi, size_t pi, llmc_err *err)
{
    const char *type = llmc__xj_str(part, "type");
    json_object *blk, *cc;
    if (!type) {
        llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d].content[%zu]: missing \"type\"", mi, pi);
        return NULL;
    }
    if (strcmp(type, "text") == 0) {
        const char *text = llmc__xj_str(part, "text");
        if (!text) {
            llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d].content[%zu]: text part without \"text\"",
                         mi, pi);
            return NULL;
        }
        blk = json_object_new_object();
        llmc__xj_put_str(blk, "type", "text");
        llmc__xj_put_str(blk, "text", text);
    } else if (strcmp(type, "image_url") == 0) {
        const char *url = llmc__xj_image_url(part);
        char mime[64];
        const char *data;
        json_object *src = json_object_new_object();
        if (!url) {
            json_object_put(src);
            llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d].content[%zu]: image_url without url",
                         mi, pi);
            return NULL;
        }
        if (llmc__xj_data_url(url, mime, sizeof mime, &data)) {
            llmc__xj_put_str(src, "type", "base64");
            llmc__xj_put_str(src, "media_type", mime);
            llmc__xj_put_str(src, "data", data);
        } else {
            llmc__xj_put_str(src, "type", "url");
            llmc__xj_put_str(src, "url", url);
        }
        blk = json_object_new_object();
        llmc__xj_put_str(blk, "type", "image");
        json_object_object_add(blk, "source", src);
    } else {
        llmc_err_set(err, LLMC_EINVAL, 0,
                     "messages[%d].content[%zu]: content part type \"%s\" is not supported by "
                     "the anthropic adapter",
                     mi, pi, type);
        return NULL;
    }
    /* Prompt caching markers are Anthropic's own; keep them. */
    if ((cc = llmc__xj_get(part, "cache_control")))
        llmc__xj_put_ref(blk, "cache_control", cc);
    return blk;
}

/* Append the blocks of an OpenAI content value to `blocks`. */
static llmc_status anth_content_blocks(const json_object *content, json_object *blocks, int mi,
                                       llmc_err *err)
{
    size_t i, n;
    if (!content || json_object_is_type((json_object *)content, json_type_null))
        return LLMC_OK;
    if (json_object_is_type((json_object *)content, json_type_string)) {
        json_object *blk;
        if (json_object_get_string_len((json_object *)content) == 0)
            return LLMC_OK; /* Anthropic rejects empty text blocks */
        blk = json_object_new_object();
        llmc__xj_put_str(blk, "type", "text");
        llmc__xj_put_ref(blk, "text", (json_object *)content);
        json_object_array_add(blocks, blk);
        return LLMC_OK;
    }
    if (!json_object_is_type((json_object *)content, json_type_array))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "messages[%d].content: expected a string or an array of parts", mi);
    n = json_object_array_length((json_object *)content);
    for (i = 0; i < n; i++) {
        json_object *blk = anth_part(json_object_array_get_idx((json_object *)content, i), mi, i, err);
        if (!blk)
            return err ? err->status : LLMC_EINVAL;
        json_object_array_add(blocks, blk);
    }
    return LLMC_OK;
}

static llmc_status anth_messages(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *in = llmc__xj_get(req, "messages");
    json_object *msgs, *system = NULL;
    size_t i, n;
    llmc_status st = LLMC_OK;

    if (!in || !json_object_is_type(in, json_type_array) || json_object_array_length(in) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "\"messages\" must be a non-empty array");
    msgs = json_object_new_array();
    n = json_object_array_length(in);
    for (i = 0; i < n && st == LLMC_OK; i++) {
        json_object *m = json_object_array_get_idx(in, i);
        const char *role = llmc__xj_str(m, "role");
        json_object *content = llmc__xj_get(m, "content");
        int mi = (int)i;
        if (!role) {
            st = llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d]: missing \"role\"", mi);
            break;
        }
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            /* Lifted to the top-level "system" (a list of text blocks so
             * several system messages and cache_control survive). */
            if (!system)
                system = json_object_new_array();
            st = anth_content_blocks(content, system, mi, err);
        } else if (strcmp(role, "user") == 0) {
            json_object *blocks = json_object_new_array();
            st = anth_content_blocks(content, blocks, mi, err);
            if (st == LLMC_OK && json_object_array_length(blocks) == 0)
                st = llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d]: empty user message", mi);
            if (st == LLMC_OK)
                llmc__xj_push_turn(msgs, "user", "content", blocks);
            else
                json_object_put(blocks);
        } else if (strcmp(role, "assistant") == 0) {
            json_object *blocks = json_object_new_array();
            json_object *tcs = llmc__xj_get(m, "tool_calls");
            st = anth_content_blocks(content, blocks, mi, err);
            if (st == LLMC_OK && tcs && json_object_is_type(tcs, json_type_array)) {
                size_t k;
                for (k = 0; k < json_object_array_length(tcs) && st == LLMC_OK; k++) {
                    json_object *tc = json_object_array_get_idx(tcs, k);
                    json_object *fn = llmc__xj_get(tc, "function");
                    const char *name = llmc__xj_str(fn, "name");
                    const char *args = llmc__xj_str(fn, "arguments");
                    const char *id = llmc__xj_str(tc, "id");
                    json_object *input, *blk;
                    if (!name || !id) {
                        st = llmc_err_set(err, LLMC_EINVAL, 0,
                                          "messages[%d].tool_calls[%zu]: needs id and function.name",
                                          mi, k);
                        break;
                    }
                    input = (args && *args) ? llmc__xj_parse(args, strlen(args))
                                            : json_object_new_object();
                    if (!input || !json_object_is_type(input, json_type_object)) {
                        json_object_put(input);
                        st = llmc_err_set(err, LLMC_EINVAL, 0,
                                          "messages[%d].tool_calls[%zu].function.arguments is not "
                                          "a JSON object",
                                          mi, k);
                        break;
                    }
                    blk = json_object_new_object();
                    llmc__xj_put_str(blk, "type", "tool_use");
                    llmc__xj_put_str(blk, "id", id);
                    llmc__xj_put_str(blk, "name", name);
                    json_object_object_add(blk, "input", input);
                    json_object_array_add(blocks, blk);
                }
            }
            if (st == LLMC_OK)
                llmc__xj_push_turn(msgs, "assistant", "content", blocks);
            else
                json_object_put(blocks);
        } else if (strcmp(role, "tool") == 0) {
            const char *id = llmc__xj_str(m, "tool_call_id");
            json_object *blocks, *blk;
            llmc_buf text = LLMC_BUF_INIT;
            if (!id) {
                st = llmc_err_set(err, LLMC_EINVAL, 0, "messages[%d]: tool message without tool_call_id",
                                  mi);
                break;
            }
            if (llmc__xj_content_text(content, &text, 1) != 0) {
                llmc_buf_free(&text);
                st = llmc_err_set(err, LLMC_EINVAL, 0,
                                  "messages[%d]: tool message content must be text", mi);
                break;
            }
            blk = json_object_new_object();
            llmc__xj_put_str(blk, "type", "tool_result");
            llmc__xj_put_str(blk, "tool_use_id", id);
            llmc__xj_put_str(blk, "content", text.data ? text.data : "");
            llmc_buf_free(&text);
            blocks = json_object_new_array();
            json_object_array_add(blocks, blk);
            llmc__xj_push_turn(msgs, "user", "content", blocks);
        } else {
            st = llmc_err_set(err, LLMC_EINVAL, 0,
                              "messages[%d]: role \"%s\" is not supported by the anthropic adapter",
                              mi, role);
        }
    }
    if (st != LLMC_OK) {
        json_object_put(msgs);
        json_object_put(system);
        return st;
    }
    if (json_object_array_length(msgs) == 0) {
        json_object_put(msgs);
        json_object_put(system);
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "\"messages\" holds no user or assistant message (anthropic needs one)");
    }
    if (system && json_object_array_length(system) > 0) {
        /* A single plain block is sent as a string, as clients usually do. */
        json_object *b0 = json_object_array_get_idx(system, 0);
        if (json_object_array_length(system) == 1 && !llmc__xj_has(b0, "cache_control")) {
            llmc__xj_put_ref(body, "system", llmc__xj_get(b0, "text"));
            json_object_put(system);
        } else {
            json_object_object_add(body, "system", system);
        }
    } else {
        json_object_put(system);
    }
    json_object_object_add(body, "messages", msgs);
    return LLMC_OK;
}

static llmc_status anth_tools(const json_object *req, json_object *body, llmc_err *err)
{
    json_object *tools = llmc__xj_get(req, "tools");
    json_object *tc = llmc__xj_get(req, "tool_choice");
    json_object *ptc = llmc__xj_get(req, "parallel_tool_calls");
    json_object *choice = NULL;

    if (tools) {
        json_object *out;
        size_t i;
        if (!json_object_is_type(tools, json_type_array))
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"tools\" must be an array");
        out = json_object_new_array();
        for (i = 0; i < json_object_array_length(tools); i++) {
            json_object *t = json_object_array_get_idx(tools, i);
            const char *type = llmc__xj_str(t, "type");
            json_object *fn = llmc__xj_get(t, "function");
            const char *name = llmc__xj_str(fn, "name");
            json_object *params = llmc__xj_get(fn, "parameters");
            json_object *o, *cc;
            if (!type || strcmp(type, "function") != 0 || !name) {
                json_object_put(out);
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "tools[%zu]: only {\"type\":\"function\",\"function\":{\"name\":...}} "
                                    "tools are supported by the anthropic adapter",
                                    i);
            }
            o = json_object_new_object();
            llmc__xj_put_str(o, "name", name);
            if (llmc__xj_str(fn, "description"))
                llmc__xj_put_ref(o, "description", llmc__xj_get(fn, "description"));
            if (params) {
                llmc__xj_put_ref(o, "input_schema", params);
            } else {
                json_object *s = json_object_new_object();
                llmc__xj_put_str(s, "type", "object");
                json_object_object_add(s, "properties", json_object_new_object());
                json_object_object_add(o, "input_schema", s);
            }
            if ((cc = llmc__xj_get(t, "cache_control")))
                llmc__xj_put_ref(o, "cache_control", cc);
            json_object_array_add(out, o);
        }
        json_object_object_add(body, "tools", out);
    }

    if (tc) {
        if (json_object_is_type(tc, json_type_string)) {
            const char *s = json_object_get_string(tc);
            const char *type = strcmp(s, "auto") == 0       ? "auto"
                               : strcmp(s, "none") == 0     ? "none"
                               : strcmp(s, "required") == 0 ? "any"
                                                            : NULL;
            if (!type)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "tool_choice \"%s\": expected auto, none, required or an object", s);
            choice = json_object_new_object();
            llmc__xj_put_str(choice, "type", type);
        } else {
            const char *name = llmc__xj_str(llmc__xj_get(tc, "function"), "name");
            if (!name)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "tool_choice: expected {\"type\":\"function\",\"function\":{\"name\":...}}");
            choice = json_object_new_object();
            llmc__xj_put_str(choice, "type", "tool");
            llmc__xj_put_str(choice, "name", name);
        }
    }
    if (ptc && json_object_is_type(ptc, json_type_boolean) && !json_object_get_boolean(ptc) && tools) {
        if (!choice) {
            choice = json_object_new_object();
            llmc__xj_put_str(choice, "type", "auto");
        }
        json_object_object_add(choice, "disable_parallel_tool_use", json_object_new_boolean(1));
    }
    if (choice)
        json_object_object_add(body, "tool_choice", choice);
    return LLMC_OK;
}

/* OpenAI chat request -> Messages API body. `model` is the bare model
 * name (prefix removed). */
static llmc_status anth_build_body(const json_object *req, const char *model,
                                   int64_t default_max_tokens, int stream, json_object **out,
                                   llmc_err *err)
{
    json_object *body, *v;
    int64_t max_tokens = default_max_tokens > 0 ? default_max_tokens : ANTH_DEFAULT_MAX_TOKENS;
    llmc_status st;

    *out = NULL;
    if (!req || !json_object_is_type((json_object *)req, json_type_object))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request must be a JSON object");
    if ((st = llmc__xj_refuse(req, anth_unsupported, "anthropic", err)) != LLMC_OK)
        return st;
    if ((v = llmc__xj_get(req, "n"))) {
        if (json_object_get_int64(v) != 1)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "parameter \"n\" must be 1: anthropic returns one choice");
    }
    body = json_object_new_object();
    llmc__xj_put_str(body, "model", model);

    if ((v = llmc__xj_get(req, "max_tokens")) || (v = llmc__xj_get(req, "max_completion_tokens"))) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_EINVAL, 0, "max_tokens must be a positive integer");
        }
        max_tokens = json_object_get_int64(v);
    }
    llmc__xj_put_int(body, "max_tokens", max_tokens);

    if ((st = anth_messages(req, body, err)) != LLMC_OK) {
        json_object_put(body);
        return st;
    }
    if ((v = llmc__xj_get(req, "stop"))) {
        if (json_object_is_type(v, json_type_string)) {
            json_object *a = json_object_new_array();
            json_object_array_add(a, json_object_get(v));
            json_object_object_add(body, "stop_sequences", a);
        } else if (json_object_is_type(v, json_type_array)) {
            llmc__xj_put_ref(body, "stop_sequences", v);
        } else {
            json_object_put(body);
            return llmc_err_set(err, LLMC_EINVAL, 0, "\"stop\" must be a string or an array of strings");
        }
    }
    if ((v = llmc__xj_get(req, "temperature")))
        llmc__xj_put_ref(body, "temperature", v);
    if ((v = llmc__xj_get(req, "top_p")))
        llmc__xj_put_ref(body, "top_p", v);
    if ((v = llmc__xj_get(req, "top_k")))
        llmc__xj_put_ref(body, "top_k", v);
    if ((st = anth_tools(req, body, err)) != LLMC_OK) {
        json_object_put(body);
        return st;
    }
    if (llmc__xj_str(req, "user")) {
        json_object *md = json_object_new_object();
        llmc__xj_put_ref(md, "user_id", llmc__xj_get(req, "user"));
        json_object_object_add(body, "metadata", md);
    }
    if (llmc__xj_str(req, "reasoning_effort") && !llmc__xj_has(req, "thinking")) {
        /* LiteLLM's mapping of OpenAI reasoning effort to a thinking budget. */
        const char *e = llmc__xj_str(req, "reasoning_effort");
        int64_t budget = strcmp(e, "low") == 0 ? 1024 : strcmp(e, "medium") == 0 ? 2048 : 4096;
        json_object *th = json_object_new_object();
        llmc__xj_put_str(th, "type", "enabled");
        llmc__xj_put_int(th, "budget_tokens", budget);
        json_object_object_add(body, "thinking", th);
    }
    /* Provider-specific members go through as they are. */
    llmc__xj_passthrough(req, anth_handled, anth_unsupported, body);
    if (stream)
        json_object_object_add(body, "stream", json_object_new_boolean(1));
    *out = body;
    return LLMC_OK;
}

/* ---- responses ---- */

static const char *anth_finish(const char *stop_reason)
{
    if (!stop_reason)
        return NULL;
    if (strcmp(stop_reason, "end_turn") == 0 || strcmp(stop_reason, "stop_sequence") == 0 ||
        strcmp(stop_reason, "pause_turn") == 0)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop";
}

/* Anthropic usage -> OpenAI usage. prompt_tokens counts every input
 * token, cached or not (OpenAI's meaning: cached tokens are a subset of
 * the prompt), and the cache counters are also kept under Anthropic's
 * names, as LiteLLM does. */
static json_object *anth_usage(const json_object *u)
{
    int64_t in = 0, outt = 0, cr = 0, cw = 0;
    json_object *o = json_object_new_object(), *d;
    llmc__xj_int(u, "input_tokens", &in);
    llmc__xj_int(u, "output_tokens", &outt);
    llmc__xj_int(u, "cache_read_input_tokens", &cr);
    llmc__xj_int(u, "cache_creation_input_tokens", &cw);
    int64_t prompt = llmc__sat_add(llmc__sat_add(in, cr), cw);
    llmc__xj_put_int(o, "prompt_tokens", prompt);
    llmc__xj_put_int(o, "completion_tokens", outt);
    llmc__xj_put_int(o, "total_tokens", llmc__sat_add(prompt, outt));
    d = json_object_new_object();
    llmc__xj_put_int(d, "cached_tokens", cr);
    json_object_object_add(o, "prompt_tokens_details", d);
    llmc__xj_put_int(o, "cache_read_input_tokens", cr);
    llmc__xj_put_int(o, "cache_creation_input_tokens", cw);
    return o;
}

static llmc_status anth_parse_body(const json_object *r, int64_t created, json_object **out,
                                   llmc_err *err)
{
    json_object *content = llmc__xj_get(r, "content");
    json_object *resp, *choices, *choice, *msg, *tool_calls = NULL;
    llmc_buf text = LLMC_BUF_INIT, thinking = LLMC_BUF_INIT;
    int have_text = 0, have_thinking = 0;
    size_t i;
    const char *fr;

    *out = NULL;
    if (!content || !json_object_is_type(content, json_type_array))
        return llmc_err_set(err, LLMC_EPROTO, 0, "anthropic response has no \"content\" array");
    for (i = 0; i < json_object_array_length(content); i++) {
        json_object *b = json_object_array_get_idx(content, i);
        const char *type = llmc__xj_str(b, "type");
        if (!type)
            continue;
        if (strcmp(type, "text") == 0 && llmc__xj_str(b, "text")) {
            llmc_buf_puts(&text, llmc__xj_str(b, "text"));
            have_text = 1;
        } else if (strcmp(type, "thinking") == 0 && llmc__xj_str(b, "thinking")) {
            llmc_buf_puts(&thinking, llmc__xj_str(b, "thinking"));
            have_thinking = 1;
        } else if (strcmp(type, "tool_use") == 0) {
            json_object *tc = json_object_new_object(), *fn = json_object_new_object();
            json_object *input = llmc__xj_get(b, "input");
            llmc__xj_put_str(tc, "id", llmc__xj_str(b, "id"));
            llmc__xj_put_str(tc, "type", "function");
            llmc__xj_put_str(fn, "name", llmc__xj_str(b, "name"));
            llmc__xj_put_str(fn, "arguments", input ? llmc__xj_dump(input) : "{}");
            json_object_object_add(tc, "function", fn);
            if (!tool_calls)
                tool_calls = json_object_new_array();
            llmc__xj_put_int(tc, "index", (int64_t)json_object_array_length(tool_calls));
            json_object_array_add(tool_calls, tc);
        }
    }
    msg = json_object_new_object();
    llmc__xj_put_str(msg, "role", "assistant");
    json_object_object_add(msg, "content", have_text ? json_object_new_string(text.data) : NULL);
    if (tool_calls)
        json_object_object_add(msg, "tool_calls", tool_calls);
    if (have_thinking)
        llmc__xj_put_str(msg, "reasoning_content", thinking.data);
    llmc_buf_free(&text);
    llmc_buf_free(&thinking);

    choice = json_object_new_object();
    llmc__xj_put_int(choice, "index", 0);
    json_object_object_add(choice, "message", msg);
    fr = anth_finish(llmc__xj_str(r, "stop_reason"));
    json_object_object_add(choice, "finish_reason", fr ? json_object_new_string(fr) : NULL);
    choices = json_object_new_array();
    json_object_array_add(choices, choice);

    resp = json_object_new_object();
    llmc__xj_put_str(resp, "id", llmc__xj_str(r, "id") ? llmc__xj_str(r, "id") : "msg_unknown");
    llmc__xj_put_str(resp, "object", "chat.completion");
    llmc__xj_put_int(resp, "created", created);
    llmc__xj_put_str(resp, "model", llmc__xj_str(r, "model"));
    json_object_object_add(resp, "choices", choices);
    json_object_object_add(resp, "usage", anth_usage(llmc__xj_get(r, "usage")));
    *out = resp;
    return LLMC_OK;
}

/* ---- streams ---- */

#define ANTH_MAX_BLOCKS 128

typedef struct anth_stream {
    char id[128];
    char model[128];
    int64_t created;
    json_object *usage_in; /* message_start usage (input side) */
    int tool_index[ANTH_MAX_BLOCKS]; /* content block -> tool_calls index, -1 */
    int n_tools;
    int done; /* message_stop seen */
} anth_stream;

static void anth_stream_init(anth_stream *s, int64_t created)
{
    int i;
    memset(s, 0, sizeof *s);
    s->created = created;
    for (i = 0; i < ANTH_MAX_BLOCKS; i++)
        s->tool_index[i] = -1;
}

static void anth_stream_fini(anth_stream *s)
{
    json_object_put(s->usage_in);
    s->usage_in = NULL;
}

/* A chat.completion.chunk skeleton with one choice whose delta is
 * returned through *delta. */
static json_object *anth_chunk(const anth_stream *s, json_object **delta, json_object **choice)
{
    json_object *c = json_object_new_object(), *choices = json_object_new_array();
    json_object *ch = json_object_new_object(), *d = json_object_new_object();
    llmc__xj_put_str(c, "id", s->id);
    llmc__xj_put_str(c, "object", "chat.completion.chunk");
    llmc__xj_put_int(c, "created", s->created);
    llmc__xj_put_str(c, "model", s->model);
    llmc__xj_put_int(ch, "index", 0);
    json_object_object_add(ch, "delta", d);
    json_object_object_add(ch, "finish_reason", NULL);
    json_object_array_add(choices, ch);
    json_object_object_add(c, "choices", choices);
    *delta = d;
    if (choice)
        *choice = ch;
    return c;
}

/* One SSE event's JSON -> zero or more chunks appended to `chunks`. */
static llmc_status anth_stream_event(anth_stream *s, const json_object *ev, json_object *chunks,
                                     llmc_err *err)
{
    const char *type = llmc__xj_str(ev, "type");
    json_object *delta, *choice, *c;

    if (!type)
        return llmc_err_set(err, LLMC_EPROTO, 0, "anthropic stream event without \"type\"");
    if (strcmp(type, "message_start") == 0) {
        json_object *m = llmc__xj_get(ev, "message");
        const char *id = llmc__xj_str(m, "id"), *model = llmc__xj_str(m, "model");
        snprintf(s->id, sizeof s->id, "%s", id ? id : "msg_unknown");
        snprintf(s->model, sizeof s->model, "%s", model ? model : "");
        json_object_put(s->usage_in);
        s->usage_in = llmc__xj_copy(llmc__xj_get(m, "usage"));
        c = anth_chunk(s, &delta, NULL);
        /* Role only: an answer that is only a tool call keeps
         * "content": null when the chunks are assembled, as the
         * non-streamed parse gives. */
        llmc__xj_put_str(delta, "role", "assistant");
        json_object_array_add(chunks, c);
    } else if (strcmp(type, "content_block_start") == 0) {
        json_object *b = llmc__xj_get(ev, "content_block");
        const char *bt = llmc__xj_str(b, "type");
        int64_t idx = -1;
        llmc__xj_int(ev, "index", &idx);
        if (bt && strcmp(bt, "tool_use") == 0) {
            json_object *tcs, *tc, *fn;
            if (idx < 0 || idx >= ANTH_MAX_BLOCKS)
                return llmc_err_set(err, LLMC_EPROTO, 0, "anthropic stream: content block index %lld out of range",
                                    (long long)idx);
            s->tool_index[idx] = s->n_tools++;
            c = anth_chunk(s, &delta, NULL);
            tcs = json_object_new_array();
            tc = json_object_new_object();
            fn = json_object_new_object();
            llmc__xj_put_int(tc, "index", s->tool_index[idx]);
            llmc__xj_put_str(tc, "id", llmc__xj_str(b, "id"));
            llmc__xj_put_str(tc, "type", "function");
            llmc__xj_put_str(fn, "name", llmc__xj_str(b, "name"));
            llmc__xj_put_str(fn, "arguments", "");
            json_object_object_add(tc, "function", fn);
            json_object_array_add(tcs, tc);
            json_object_object_add(delta, "tool_calls", tcs);
            json_object_array_add(chunks, c);
        } else if (bt && strcmp(bt, "text") == 0 && llmc__xj_str(b, "text") &&
                   *llmc__xj_str(b, "text")) {
            c = anth_chunk(s, &delta, NULL);
            llmc__xj_put_ref(delta, "content", llmc__xj_get(b, "text"));
            json_object_array_add(chunks, c);
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_object *d = llmc__xj_get(ev, "delta");
        const char *dt = llmc__xj_str(d, "type");
        int64_t idx = -1;
        llmc__xj_int(ev, "index", &idx);
        if (!dt)
            return llmc_err_set(err, LLMC_EPROTO, 0, "anthropic stream: delta without \"type\"");
        if (strcmp(dt, "text_delta") == 0) {
            c = anth_chunk(s, &delta, NULL);
            llmc__xj_put_str(delta, "content", llmc__xj_str(d, "text"));
            json_object_array_add(chunks, c);
        } else if (strcmp(dt, "thinking_delta") == 0) {
            c = anth_chunk(s, &delta, NULL);
            llmc__xj_put_str(delta, "reasoning_content", llmc__xj_str(d, "thinking"));
            json_object_array_add(chunks, c);
        } else if (strcmp(dt, "input_json_delta") == 0) {
            json_object *tcs, *tc, *fn;
            if (idx < 0 || idx >= ANTH_MAX_BLOCKS || s->tool_index[idx] < 0)
                return llmc_err_set(err, LLMC_EPROTO, 0,
                                    "anthropic stream: input_json_delta for block %lld that is not a tool_use",
                                    (long long)idx);
            c = anth_chunk(s, &delta, NULL);
            tcs = json_object_new_array();
            tc = json_object_new_object();
            fn = json_object_new_object();
            llmc__xj_put_int(tc, "index", s->tool_index[idx]);
            llmc__xj_put_str(fn, "arguments", llmc__xj_str(d, "partial_json"));
            json_object_object_add(tc, "function", fn);
            json_object_array_add(tcs, tc);
            json_object_object_add(delta, "tool_calls", tcs);
            json_object_array_add(chunks, c);
        }
        /* signature_delta and citations carry nothing OpenAI can show. */
    } else if (strcmp(type, "message_delta") == 0) {
        json_object *d = llmc__xj_get(ev, "delta");
        json_object *u = llmc__xj_get(ev, "usage");
        const char *fr = anth_finish(llmc__xj_str(d, "stop_reason"));
        /* A message_start usage that is not an object counts as none (as
         * in a whole body); merging into it would break json-c's contract. */
        json_object *merged = s->usage_in && json_object_is_type(s->usage_in, json_type_object)
                                  ? llmc__xj_copy(s->usage_in)
                                  : json_object_new_object();
        /* message_delta's usage is cumulative; it overrides the start's. */
        if (u && json_object_is_type(u, json_type_object)) {
            json_object_object_foreach(u, k, v) { llmc__xj_put_ref(merged, k, v); }
        }
        c = anth_chunk(s, &delta, &choice);
        json_object_object_add(choice, "finish_reason", fr ? json_object_new_string(fr) : NULL);
        json_object_object_add(c, "usage", anth_usage(merged));
        json_object_put(merged);
        json_object_array_add(chunks, c);
    } else if (strcmp(type, "message_stop") == 0) {
        s->done = 1;
    } else if (strcmp(type, "error") == 0) {
        json_object *e = llmc__xj_get(ev, "error");
        const char *et = llmc__xj_str(e, "type"), *msg = llmc__xj_str(e, "message");
        llmc_status st = (et && strcmp(et, "rate_limit_error") == 0) ? LLMC_ERATELIMIT
                         : (et && strcmp(et, "invalid_request_error") == 0) ? LLMC_EBADREQUEST
                                                                          : LLMC_EUPSTREAM;
        return llmc_err_set(err, st, 0, "anthropic stream error %s: %s", et ? et : "(untyped)",
                            msg ? msg : "(no message)");
    }
    /* ping, content_block_stop and unknown event types: nothing to emit
     * (Anthropic may add event types; the API docs ask clients to ignore
     * them). */
    return LLMC_OK;
}

/* ---- errors ---- */

/* Map an HTTP error answer to a status; the message names Anthropic's
 * error type and message (Anthropic never echoes the key). */
static llmc_status anth_map_error(const llmc_provider_call *call, const llmc_http_response *resp,
                                  llmc_err *err)
{
    long http = resp->status;
    json_object *o = llmc__xj_parse(resp->body, resp->body_len);
    json_object *e = llmc__xj_get(o, "error");
    const char *type = llmc__xj_str(e, "type"), *msg = llmc__xj_str(e, "message");
    llmc_status st;
    char retry[48] = "";

    LLMC_UNUSED(call);
    if (http == 401 || (type && strcmp(type, "authentication_error") == 0))
        st = LLMC_EAUTH;
    else if (http == 403 || (type && strcmp(type, "permission_error") == 0))
        st = LLMC_EAUTH;
    else if (http == 429 || (type && strcmp(type, "rate_limit_error") == 0))
        st = LLMC_ERATELIMIT;
    else if (http >= 500 || (type && (strcmp(type, "overloaded_error") == 0 ||
                                      strcmp(type, "api_error") == 0)))
        st = LLMC_EUPSTREAM;
    else if (msg && (llmc__xj_ci_contains(msg, "prompt is too long") ||
                     llmc__xj_ci_contains(msg, "context window") ||
                     llmc__xj_ci_contains(msg, "context length") ||
                     llmc_provider_is_context_error(msg)))
        st = LLMC_ECONTEXT;
    else if (http >= 400)
        st = LLMC_EBADREQUEST;
    else
        st = LLMC_EPROVIDER;
    if (st == LLMC_ERATELIMIT && resp->retry_after_ms >= 0)
        snprintf(retry, sizeof retry, " (retry after %lld ms)", (long long)resp->retry_after_ms);
    llmc_err_set(err, st, http, "anthropic: HTTP %ld %s: %.300s%s", http, type ? type : "error",
                 msg ? msg : (o ? "(no message)" : "(body is not JSON)"), retry);
    json_object_put(o);
    return st;
}

/* ---- the adapter ---- */

static int anth_match_model(const char *model)
{
    return strncmp(model, "claude", 6) == 0;
}

static llmc_status anth_build_request(const llmc_provider_call *call, json_object *request,
                                      llmc_http_request *out, llmc_err *err)
{
    json_object *body = NULL;
    llmc_status st;

    if (call->call == LLMC_CALL_MESSAGES)
        return llmc__anth_msg_build(call, request, out, err);
    if (call->call != LLMC_CALL_CHAT)
        return llmc_err_set(err, LLMC_ENOTSUP, 0,
                            "anthropic: only chat completions are supported (no %s calls)",
                            call->call == LLMC_CALL_EMBEDDING ? "embedding" : "text completion");
    st = anth_build_body(request, call->model, ANTH_DEFAULT_MAX_TOKENS, call->stream, &body, err);
    if (st != LLMC_OK)
        return st;
    out->method = "POST";
    llmc_buf_clear(&out->url);
    if ((st = llmc_buf_puts(&out->url, call->api_base)) != LLMC_OK ||
        (st = llmc_buf_puts(&out->url, "/v1/messages")) != LLMC_OK ||
        (st = llmc_http_request_set_json(out, body)) != LLMC_OK ||
        (st = llmc_http_request_add_header(out, "anthropic-version",
                                           call->api_version ? call->api_version : "2023-06-01")) != LLMC_OK) {
        json_object_put(body);
        return llmc_err_set(err, st, 0, "anthropic: cannot build the request");
    }
    json_object_put(body);
    if (call->api_key && (st = llmc_http_request_add_secret(out, "x-api-key", call->api_key)) != LLMC_OK)
        return llmc_err_set(err, st, 0, "anthropic: cannot build the request");
    if (call->stream && (st = llmc_http_request_add_header(out, "Accept", "text/event-stream")) != LLMC_OK)
        return llmc_err_set(err, st, 0, "anthropic: cannot build the request");
    out->stream_format = call->stream ? LLMC_STREAM_SSE : LLMC_STREAM_NONE;
    return LLMC_OK;
}

static llmc_status anth_parse_response(const llmc_provider_call *call, const llmc_http_response *resp,
                                       json_object **out, llmc_err *err)
{
    json_object *o = NULL;
    const char *type;
    llmc_status st;

    *out = NULL;
    if (call->call == LLMC_CALL_MESSAGES)
        return llmc__anth_msg_parse(call, resp, out, err);
    if ((st = llmc_json_parse(resp->body, resp->body_len, "anthropic response", &o, err)) != LLMC_OK)
        return st;
    type = llmc__xj_str(o, "type");
    if (type && strcmp(type, "error") == 0) {
        st = anth_map_error(call, resp, err);
        json_object_put(o);
        return st == LLMC_EPROVIDER ? LLMC_EUPSTREAM : st;
    }
    st = anth_parse_body(o, (int64_t)time(NULL), out, err);
    json_object_put(o);
    return st;
}

static llmc_status anth_stream_new(const llmc_provider_call *call, void **state, llmc_err *err)
{
    anth_stream *s = malloc(sizeof *s);
    LLMC_UNUSED(call);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "anthropic: out of memory");
    anth_stream_init(s, (int64_t)time(NULL));
    *state = s;
    return LLMC_OK;
}

static void anth_stream_free(void *state)
{
    if (state) {
        anth_stream_fini(state);
        free(state);
    }
}

static llmc_status anth_parse_stream_event(void *state, const llmc_provider_call *call,
                                           const char *event, const char *data, size_t data_len,
                                           llmc_chunk_sink sink, void *sink_ud, int *done,
                                           llmc_err *err)
{
    anth_stream *s = state;
    json_object *ev = NULL, *chunks;
    llmc_status st;
    size_t i;

    if (call->call == LLMC_CALL_MESSAGES)
        return llmc__anth_msg_event(event, data, data_len, sink, sink_ud, done, err);
    if (event && strcmp(event, "ping") == 0)
        return LLMC_OK;
    if ((st = llmc_json_parse(data, data_len, "anthropic stream event", &ev, err)) != LLMC_OK)
        return st;
    chunks = json_object_new_array();
    st = anth_stream_event(s, ev, chunks, err);
    json_object_put(ev);
    for (i = 0; st == LLMC_OK && i < json_object_array_length(chunks); i++)
        st = sink(sink_ud, json_object_array_get_idx(chunks, i));
    json_object_put(chunks);
    if (s->done)
        *done = 1;
    return st;
}

static const char *const anth_env_key[] = {"ANTHROPIC_API_KEY", NULL};
static const char *const anth_env_base[] = {"ANTHROPIC_BASE_URL", "ANTHROPIC_API_BASE", NULL};

const llmc_provider_ops llmc__provider_anthropic = {
    LLMC_COMPONENT_INIT(llmc_provider_ops, "anthropic", "Anthropic Messages API (claude-*)"),
    LLMC_PROVIDER_CHAT | LLMC_PROVIDER_STREAM | LLMC_PROVIDER_NEEDS_KEY | LLMC_PROVIDER_MESSAGES,
    "https://api.anthropic.com",
    "2023-06-01",
    anth_env_key,
    anth_env_base,
    NULL,
    anth_match_model,
    anth_build_request,
    anth_parse_response,
    anth_stream_new,
    anth_stream_free,
    anth_parse_stream_event,
    anth_map_error,
    NULL,
};
