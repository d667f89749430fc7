/* Example plugin: a provider adapter for a real HTTP API, Cohere's Chat
 * API v2 (POST {api_base}/v2/chat), out of tree.
 *
 *   model "cohere/command-r-plus"   key: option cohere.api_key or
 *   env CO_API_KEY / COHERE_API_KEY  base: option cohere.api_base or env
 *   CO_API_URL (default https://api.cohere.com)
 *
 * Translation (OpenAI format <-> Cohere v2):
 *   messages[{role system|user|assistant, content}] -> messages (content
 *     parts joined into one string); tool messages, tools: LLMC_ENOTSUP
 *   max_tokens / max_completion_tokens -> max_tokens, stop -> stop_sequences,
 *   top_p -> p, temperature, seed, frequency_penalty, presence_penalty as is
 *   response: message.content[type=text].text -> choices[0].message.content,
 *   finish_reason COMPLETE|STOP_SEQUENCE -> stop, MAX_TOKENS -> length,
 *   TOOL_CALL -> tool_calls, usage.tokens -> usage
 *   stream: SSE events message-start, content-delta, message-end
 * Any other request field is refused with a message naming it (an adapter
 * never drops a parameter silently: it would change the answer).
 *
 * Like every adapter it does no I/O: the core sends the request (libcurl,
 * retries), frames the SSE stream and caches the normalised answer. */
#include <llmcache/llmcache.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_key[] = {"CO_API_KEY", "COHERE_API_KEY", NULL};
static const char *const env_base[] = {"CO_API_URL", NULL};

/* Join a message's content into one string (string, or text parts). */
static json_object *content_string(json_object *content, const char *role, size_t i,
                                   llmc_err *err, llmc_status *st)
{
    *st = LLMC_OK;
    if (!content || json_object_is_type(content, json_type_null))
        return json_object_new_string("");
    if (json_object_is_type(content, json_type_string))
        return json_object_get(content);
    if (!json_object_is_type(content, json_type_array)) {
        *st = llmc_err_set(err, LLMC_EINVAL, 0,
                           "cohere: messages[%zu].content must be a string or an array", i);
        return NULL;
    }
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_puts(&b, "");
    for (size_t j = 0; j < json_object_array_length(content); j++) {
        json_object *part = json_object_array_get_idx(content, j), *type, *text;
        if (!json_object_object_get_ex(part, "type", &type) ||
            strcmp(json_object_get_string(type), "text") != 0 ||
            !json_object_object_get_ex(part, "text", &text)) {
            llmc_buf_free(&b);
            *st = llmc_err_set(err, LLMC_ENOTSUP, 0,
                               "cohere: messages[%zu] (%s): only text content parts are "
                               "supported by this adapter", i, role);
            return NULL;
        }
        llmc_buf_puts(&b, json_object_get_string(text));
    }
    json_object *s = json_object_new_string_len(b.data, (int)b.len);
    llmc_buf_free(&b);
    return s;
}

static llmc_status build_request(const llmc_provider_call *call, json_object *request,
                                 llmc_http_request *out, llmc_err *err)
{
    if (call->call != LLMC_CALL_CHAT)
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "cohere: only chat completions are supported");
    json_object *body = json_object_new_object();
    json_object_object_add(body, "model", json_object_new_string(call->model));
    llmc_status st = LLMC_OK;
    json_object_object_foreach(request, name, val)
    {
        if (st != LLMC_OK)
            break;
        if (strcmp(name, "model") == 0 || strcmp(name, "stream_options") == 0 ||
            strcmp(name, "user") == 0 || strcmp(name, "stream") == 0)
            continue;
        if (strcmp(name, "messages") == 0) {
            if (!json_object_is_type(val, json_type_array)) {
                st = llmc_err_set(err, LLMC_EINVAL, 0, "cohere: \"messages\" must be an array");
                break;
            }
            json_object *msgs = json_object_new_array();
            json_object_object_add(body, "messages", msgs);
            for (size_t i = 0; i < json_object_array_length(val) && st == LLMC_OK; i++) {
                json_object *m = json_object_array_get_idx(val, i), *role, *content = NULL;
                if (!json_object_object_get_ex(m, "role", &role) ||
                    !json_object_is_type(role, json_type_string)) {
                    st = llmc_err_set(err, LLMC_EINVAL, 0, "cohere: messages[%zu].role missing",
                                      i);
                    break;
                }
                const char *r = json_object_get_string(role);
                if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 &&
                    strcmp(r, "assistant") != 0) {
                    st = llmc_err_set(err, LLMC_ENOTSUP, 0,
                                      "cohere: messages[%zu]: role \"%.32s\" is not supported "
                                      "by this adapter", i, r);
                    break;
                }
                json_object_object_get_ex(m, "content", &content);
                json_object *text = content_string(content, r, i, err, &st);
                if (!text)
                    break;
                json_object *cm = json_object_new_object();
                json_object_object_add(cm, "role", json_object_new_string(r));
                json_object_object_add(cm, "content", text);
                json_object_array_add(msgs, cm);
            }
        } else if (strcmp(name, "max_tokens") == 0 || strcmp(name, "max_completion_tokens") == 0) {
            json_object_object_add(body, "max_tokens", json_object_get(val));
        } else if (strcmp(name, "top_p") == 0) {
            json_object_object_add(body, "p", json_object_get(val));
        } else if (strcmp(name, "stop") == 0) {
            json_object *seq = val;
            if (json_object_is_type(val, json_type_string)) {
                seq = json_object_new_array();
                json_object_array_add(seq, json_object_get(val));
            } else {
                json_object_get(seq);
            }
            json_object_object_add(body, "stop_sequences", seq);
        } else if (strcmp(name, "temperature") == 0 || strcmp(name, "seed") == 0 ||
                   strcmp(name, "frequency_penalty") == 0 ||
                   strcmp(name, "presence_penalty") == 0) {
            json_object_object_add(body, name, json_object_get(val));
        } else {
            st = llmc_err_set(err, LLMC_ENOTSUP, 0,
                              "cohere: request field \"%.64s\" is not supported by this "
                              "adapter", name);
        }
    }
    if (st == LLMC_OK && !json_object_object_get_ex(body, "messages", NULL))
        st = llmc_err_set(err, LLMC_EINVAL, 0, "cohere: request field \"messages\" is missing");
    if (st == LLMC_OK) {
        if (call->stream) {
            json_object_object_add(body, "stream", json_object_new_boolean(1));
            out->stream_format = LLMC_STREAM_SSE;
        }
        st = llmc_buf_printf(&out->url, "%s/v2/chat", call->api_base);
    }
    if (st == LLMC_OK && call->api_key) {
        llmc_buf auth = LLMC_BUF_INIT;
        st = llmc_buf_printf(&auth, "Bearer %s", call->api_key);
        if (st == LLMC_OK)
            st = llmc_http_request_add_secret(out, "Authorization", auth.data);
        llmc_buf_free(&auth);
    }
    if (st == LLMC_OK)
        st = llmc_http_request_add_header(out, "Accept", "application/json");
    if (st == LLMC_OK)
        st = llmc_http_request_set_json(out, body);
    json_object_put(body);
    return st;
}

static const char *finish_reason(const char *cohere)
{
    if (!cohere)
        return NULL;
    if (strcmp(cohere, "COMPLETE") == 0 || strcmp(cohere, "STOP_SEQUENCE") == 0)
        return "stop";
    if (strcmp(cohere, "MAX_TOKENS") == 0)
        return "length";
    if (strcmp(cohere, "TOOL_CALL") == 0)
        return "tool_calls";
    return "stop";
}

/* usage.tokens {input_tokens, output_tokens} -> OpenAI usage (new ref). */
static json_object *usage_of(json_object *usage)
{
    int64_t in = 0, outt = 0;
    json_object *tokens, *v;
    if (usage && json_object_object_get_ex(usage, "tokens", &tokens)) {
        if (json_object_object_get_ex(tokens, "input_tokens", &v))
            in = json_object_get_int64(v);
        if (json_object_object_get_ex(tokens, "output_tokens", &v))
            outt = json_object_get_int64(v);
    }
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens", json_object_new_int64(in));
    json_object_object_add(u, "completion_tokens", json_object_new_int64(outt));
    json_object_object_add(u, "total_tokens", json_object_new_int64(in + outt));
    return u;
}

static llmc_status parse_response(const llmc_provider_call *call,
                                  const llmc_http_response *resp, json_object **out,
                                  llmc_err *err)
{
    json_object *r = NULL, *id, *msg, *content, *fr, *usage = NULL;
    llmc_status st = llmc_json_parse(resp->body, resp->body_len, "cohere response", &r, err);
    if (st != LLMC_OK)
        return st;
    if (!json_object_object_get_ex(r, "message", &msg) ||
        !json_object_object_get_ex(msg, "content", &content) ||
        !json_object_is_type(content, json_type_array)) {
        json_object_put(r);
        return llmc_err_set(err, LLMC_EPROTO, 0, "cohere response has no message.content array");
    }
    llmc_buf text = LLMC_BUF_INIT;
    llmc_buf_puts(&text, "");
    for (size_t i = 0; i < json_object_array_length(content); i++) {
        json_object *part = json_object_array_get_idx(content, i), *t;
        if (json_object_object_get_ex(part, "text", &t))
            llmc_buf_puts(&text, json_object_get_string(t));
    }
    json_object_object_get_ex(r, "usage", &usage);
    char idbuf[64];
    if (!json_object_object_get_ex(r, "id", &id))
        llmc_provider_new_id("chatcmpl-", idbuf, sizeof idbuf);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", id ? json_object_get(id) : json_object_new_string(idbuf));
    json_object_object_add(o, "object", json_object_new_string("chat.completion"));
    json_object_object_add(o, "created", json_object_new_int64(llmc_now_ms() / 1000));
    json_object_object_add(o, "model", json_object_new_string(call->model));
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string("assistant"));
    json_object_object_add(m, "content", json_object_new_string_len(text.data, (int)text.len));
    json_object *choice = json_object_new_object();
    json_object_object_add(choice, "index", json_object_new_int(0));
    json_object_object_add(choice, "message", m);
    const char *f = json_object_object_get_ex(r, "finish_reason", &fr)
                        ? finish_reason(json_object_get_string(fr))
                        : "stop";
    json_object_object_add(choice, "finish_reason", json_object_new_string(f));
    json_object *choices = json_object_new_array();
    json_object_array_add(choices, choice);
    json_object_object_add(o, "choices", choices);
    json_object_object_add(o, "usage", usage_of(usage));
    llmc_buf_free(&text);
    json_object_put(r);
    *out = o;
    return LLMC_OK;
}

/* Stream state: the message id and whether the role was sent. */
typedef struct cstream {
    char id[96];
    int64_t created;
} cstream;

static llmc_status stream_new(const llmc_provider_call *call, void **state, llmc_err *err)
{
    (void)call;
    cstream *s = calloc(1, sizeof *s);
    if (!s)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_provider_new_id("chatcmpl-", s->id, sizeof s->id);
    s->created = llmc_now_ms() / 1000;
    *state = s;
    return LLMC_OK;
}

static void stream_free(void *state) { free(state); }

static llmc_status emit(json_object *chunk, llmc_chunk_sink sink, void *ud)
{
    llmc_status st = sink(ud, chunk);
    json_object_put(chunk);
    return st;
}

static llmc_status parse_stream_event(void *state, const llmc_provider_call *call,
                                      const char *event, const char *data, size_t data_len,
                                      llmc_chunk_sink sink, void *sink_ud, int *done,
                                      llmc_err *err)
{
    cstream *s = state;
    json_object *ev = NULL, *type, *delta, *v;
    llmc_status st = llmc_json_parse(data, data_len, "cohere stream event", &ev, err);
    if (st != LLMC_OK)
        return st;
    const char *t = json_object_object_get_ex(ev, "type", &type) ? json_object_get_string(type)
                                                                   : event;
    json_object_object_get_ex(ev, "delta", &delta);
    if (!t) {
        st = LLMC_OK;
    } else if (strcmp(t, "message-start") == 0) {
        if (json_object_object_get_ex(ev, "id", &v))
            snprintf(s->id, sizeof s->id, "%s", json_object_get_string(v));
        json_object *c = llmc_chunk_new(s->id, s->created, call->model);
        json_object_object_add(llmc_chunk_add_choice(c, 0), "role",
                               json_object_new_string("assistant"));
        st = emit(c, sink, sink_ud);
    } else if (strcmp(t, "content-delta") == 0) {
        json_object *msg, *content, *text;
        if (delta && json_object_object_get_ex(delta, "message", &msg) &&
            json_object_object_get_ex(msg, "content", &content) &&
            json_object_object_get_ex(content, "text", &text)) {
            json_object *c = llmc_chunk_new(s->id, s->created, call->model);
            json_object_object_add(llmc_chunk_add_choice(c, 0), "content",
                                   json_object_get(text));
            st = emit(c, sink, sink_ud);
        }
    } else if (strcmp(t, "message-end") == 0) {
        json_object *fr = NULL, *usage = NULL;
        if (delta) {
            json_object_object_get_ex(delta, "finish_reason", &fr);
            json_object_object_get_ex(delta, "usage", &usage);
        }
        json_object *c = llmc_chunk_new(s->id, s->created, call->model);
        llmc_chunk_add_choice(c, 0);
        llmc_chunk_set_finish(c, 0, finish_reason(fr ? json_object_get_string(fr) : "COMPLETE"));
        json_object_object_add(c, "usage", usage_of(usage));
        st = emit(c, sink, sink_ud);
        *done = 1;
    }
    json_object_put(ev);
    return st;
}

static const llmc_provider_ops cohere_provider = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "cohere", "Cohere Chat API v2 (example plugin)"),
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_STREAM | LLMC_PROVIDER_NEEDS_KEY,
    .default_api_base = "https://api.cohere.com",
    .env_api_key = env_key,
    .env_api_base = env_base,
    .build_request = build_request,
    .parse_response = parse_response,
    .stream_new = stream_new,
    .stream_free = stream_free,
    .parse_stream_event = parse_stream_event,
    .map_error = NULL, /* {"message": ...} bodies: the default mapping reads them */
};

static const llmc_provider_ops *const providers[] = {&cohere_provider, NULL};

LLMC_PLUGIN("cohere", "1.0.0", NULL, providers, NULL, NULL)
