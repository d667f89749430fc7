/* The OpenAI-format adapters: openai (api.openai.com: chat completions,
 * legacy completions, embeddings), azure (Azure OpenAI deployments:
 * /openai/deployments/<name>/..., api-version query, api-key header) and
 * openai-compatible (any server speaking the OpenAI API at a configured
 * api_base: vLLM, llama.cpp, LM Studio, Groq, Together, Mistral,
 * DeepSeek, OpenRouter). The normalised format is OpenAI's, so requests
 * pass through nearly verbatim and responses are checked rather than
 * translated. */
#include "adapters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Shared pieces. */

static const char *endpoint_path(llmc_call_type call)
{
    switch (call) {
    case LLMC_CALL_CHAT:
        return "/chat/completions";
    case LLMC_CALL_TEXT:
        return "/completions";
    case LLMC_CALL_EMBEDDING:
        return "/embeddings";
    default:
        return NULL;
    }
}

llmc_status llmc__openai_body(const llmc_provider_call *call, struct json_object *request,
                              const char *model, llmc_http_request *out, llmc_err *err)
{
    json_object *body = json_object_new_object();
    if (!body)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (model)
        json_object_object_add(body, "model", json_object_new_string(model));
    int has_stream_options = 0;
    json_object_object_foreach(request, k, v)
    {
        if (strcmp(k, "model") == 0 || strcmp(k, "stream") == 0)
            continue;
        if (strcmp(k, "stream_options") == 0) {
            /* Only meaningful (and only accepted) on streamed calls. */
            if (!call->stream)
                continue;
            has_stream_options = 1;
        }
        json_object_object_add(body, k, json_object_get(v));
    }
    if (call->stream) {
        json_object_object_add(body, "stream", json_object_new_boolean(1));
        /* Ask for the usage chunk so a streamed answer is cached with its
         * usage, like a plain one. */
        if (!has_stream_options) {
            json_object *so = json_object_new_object();
            json_object_object_add(so, "include_usage", json_object_new_boolean(1));
            json_object_object_add(body, "stream_options", so);
        }
        out->stream_format = LLMC_STREAM_SSE;
        if (llmc_http_request_add_header(out, "Accept", "text/event-stream") != LLMC_OK) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
    }
    llmc_status st = llmc_http_request_set_json(out, body);
    json_object_put(body);
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, "out of memory");
    return LLMC_OK;
}

/* An error object inside a 2xx body or a stream event. */
static llmc_status body_error(const llmc_provider_call *call, const char *data, size_t len,
                              long status, llmc_err *err)
{
    llmc_http_response r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    r.status = status;
    r.body = data;
    r.body_len = len;
    r.retry_after_ms = -1;
    llmc_status st = llmc_provider_map_error_default(call, &r, err);
    if (st == LLMC_EUPSTREAM && err && llmc_provider_is_context_error(err->msg)) {
        /* The same message under the more precise status. (Formatting
         * err->msg into itself would overlap: it came out empty.) */
        err->status = LLMC_ECONTEXT;
        err->native = status;
        return LLMC_ECONTEXT;
    }
    return st;
}

static int has_error_member(json_object *o)
{
    json_object *e;
    return json_object_object_get_ex(o, "error", &e) && e &&
           !json_object_is_type(e, json_type_null);
}

llmc_status llmc__openai_parse_response(const llmc_provider_call *call,
                                        const llmc_http_response *resp,
                                        struct json_object **out, llmc_err *err)
{
    *out = NULL;
    char what[96];
    snprintf(what, sizeof what, "%s response", call->provider);
    json_object *o = NULL;
    llmc_status st = llmc_json_parse(resp->body, resp->body_len, what, &o, err);
    if (st != LLMC_OK)
        return st;
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: not a JSON object", what);
    }
    if (has_error_member(o)) {
        json_object_put(o);
        return body_error(call, resp->body, resp->body_len, 500, err);
    }
    json_object *v;
    if (call->call == LLMC_CALL_EMBEDDING) {
        if (!json_object_object_get_ex(o, "data", &v) ||
            !json_object_is_type(v, json_type_array)) {
            json_object_put(o);
            return llmc_err_set(err, LLMC_EPROTO, 0, "%s: no \"data\" array", what);
        }
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            json_object *it = json_object_array_get_idx(v, i), *e;
            if (!json_object_is_type(it, json_type_object) ||
                !json_object_object_get_ex(it, "embedding", &e)) {
                json_object_put(o);
                return llmc_err_set(err, LLMC_EPROTO, 0, "%s: data[%zu] has no embedding",
                                    what, i);
            }
            /* Servers that omit the index answer in input order. */
            if (!json_object_object_get_ex(it, "index", &e))
                json_object_object_add(it, "index", json_object_new_int((int)i));
        }
        if (!json_object_object_get_ex(o, "object", &v))
            json_object_object_add(o, "object", json_object_new_string("list"));
        if (!json_object_object_get_ex(o, "model", &v))
            json_object_object_add(o, "model", json_object_new_string(call->model));
        *out = o;
        return LLMC_OK;
    }
    if (!json_object_object_get_ex(o, "choices", &v) || !json_object_is_type(v, json_type_array)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: no \"choices\" array", what);
    }
    /* Fill what some compatible servers leave out. */
    if (!json_object_object_get_ex(o, "id", &v)) {
        char id[64];
        llmc_provider_new_id(call->call == LLMC_CALL_TEXT ? "cmpl-" : "chatcmpl-", id,
                             sizeof id);
        json_object_object_add(o, "id", json_object_new_string(id));
    }
    if (!json_object_object_get_ex(o, "object", &v))
        json_object_object_add(o, "object",
                               json_object_new_string(call->call == LLMC_CALL_TEXT
                                                          ? "text_completion"
                                                          : "chat.completion"));
    if (!json_object_object_get_ex(o, "created", &v))
        json_object_object_add(o, "created", json_object_new_int64(llmc_now_ms() / 1000));
    if (!json_object_object_get_ex(o, "model", &v))
        json_object_object_add(o, "model", json_object_new_string(call->model));
    *out = o;
    return LLMC_OK;
}

llmc_status llmc__openai_parse_stream_event(void *state, const llmc_provider_call *call,
                                            const char *event, const char *data,
                                            size_t data_len, llmc_chunk_sink sink,
                                            void *sink_ud, int *done, llmc_err *err)
{
    LLMC_UNUSED(state);
    while (data_len && (*data == ' ' || *data == '\t')) {
        data++;
        data_len--;
    }
    if (data_len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        *done = 1;
        return LLMC_OK;
    }
    if (data_len == 0)
        return LLMC_OK;
    char what[96];
    snprintf(what, sizeof what, "%s stream event", call->provider);
    json_object *o = NULL;
    llmc_status st = llmc_json_parse(data, data_len, what, &o, err);
    if (st != LLMC_OK)
        return st;
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: not a JSON object", what);
    }
    if (has_error_member(o) || (event && strcmp(event, "error") == 0)) {
        json_object_put(o);
        return body_error(call, data, data_len, 500, err);
    }
    json_object *v;
    if (!json_object_object_get_ex(o, "object", &v))
        json_object_object_add(o, "object", json_object_new_string("chat.completion.chunk"));
    /* A compatible server that never sends [DONE] still ends each choice
     * with a finish_reason; treat that as the end so its streams can be
     * cached. OpenAI itself always sends [DONE] (after the usage chunk). */
    if (strcmp(call->provider, "openai-compatible") == 0 &&
        json_object_object_get_ex(o, "choices", &v) && json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            json_object *fr;
            if (json_object_object_get_ex(json_object_array_get_idx(v, i), "finish_reason",
                                          &fr) &&
                json_object_is_type(fr, json_type_string))
                *done = 1;
        }
    }
    st = sink(sink_ud, o);
    json_object_put(o);
    return st;
}

/* ------------------------------------------------------------------ */
/* openai */

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static int openai_match(const char *m)
{
    static const char *const prefixes[] = {
        "gpt-", "o1", "o3", "o4-", "chatgpt-", "text-embedding-", "ft:gpt-",
        "davinci-", "babbage-", "text-davinci-", "omni-", "codex-", NULL,
    };
    for (int i = 0; prefixes[i]; i++)
        if (starts(m, prefixes[i]))
            return 1;
    return 0;
}

static llmc_status add_bearer(llmc_http_request *out, const char *key)
{
    if (!key)
        return LLMC_OK;
    llmc_buf b = LLMC_BUF_INIT;
    llmc_buf_printf(&b, "Bearer %s", key);
    llmc_status st = b.data ? llmc_http_request_add_secret(out, "Authorization", b.data)
                            : LLMC_ENOMEM;
    /* Wipe the copy of the key before giving the memory back. */
    if (b.data)
        memset(b.data, 0, b.len);
    llmc_buf_free(&b);
    return st;
}

static llmc_status openai_build(const llmc_provider_call *call, struct json_object *request,
                                llmc_http_request *out, llmc_err *err)
{
    const char *path = endpoint_path(call->call);
    if (!path)
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "%s: unsupported call type",
                            call->provider);
    if (llmc_buf_printf(&out->url, "%s%s", call->api_base, path) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (add_bearer(out, call->api_key) != LLMC_OK)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s: the API key contains characters not allowed in a header",
                            call->provider);
    const char *org = llmc_options_get(call->options, "openai.organization");
    if (!org)
        org = getenv("OPENAI_ORGANIZATION");
    if (org && *org && strcmp(call->provider, "openai") == 0 &&
        llmc_http_request_add_header(out, "OpenAI-Organization", org) != LLMC_OK)
        return llmc_err_set(err, LLMC_EINVAL, 0, "openai: invalid organization header value");
    const char *project = llmc_options_get(call->options, "openai.project");
    if (project && *project && strcmp(call->provider, "openai") == 0 &&
        llmc_http_request_add_header(out, "OpenAI-Project", project) != LLMC_OK)
        return llmc_err_set(err, LLMC_EINVAL, 0, "openai: invalid project header value");
    return llmc__openai_body(call, request, call->model, out, err);
}

static const char *const openai_env_key[] = {"OPENAI_API_KEY", NULL};
static const char *const openai_env_base[] = {"OPENAI_BASE_URL", "OPENAI_API_BASE", NULL};

const llmc_provider_ops llmc__provider_openai = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "openai",
                               "OpenAI: chat completions, completions, embeddings"),
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_TEXT | LLMC_PROVIDER_EMBEDDING |
             LLMC_PROVIDER_STREAM | LLMC_PROVIDER_NEEDS_KEY,
    .default_api_base = "https://api.openai.com/v1",
    .env_api_key = openai_env_key,
    .env_api_base = openai_env_base,
    .match_model = openai_match,
    .build_request = openai_build,
    .parse_response = llmc__openai_parse_response,
    .parse_stream_event = llmc__openai_parse_stream_event,
};

/* ------------------------------------------------------------------ */
/* azure */

static llmc_status azure_build(const llmc_provider_call *call, struct json_object *request,
                               llmc_http_request *out, llmc_err *err)
{
    const char *path = endpoint_path(call->call);
    if (!path)
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "azure: unsupported call type");
    if (!call->model || !*call->model)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "azure: no deployment name (use model \"azure/<deployment>\")");
    /* The base may be the resource endpoint (https://x.openai.azure.com)
     * or already end in /openai. */
    size_t bl = strlen(call->api_base);
    int has_openai = bl >= 7 && strcmp(call->api_base + bl - 7, "/openai") == 0;
    llmc_status st = llmc_buf_printf(&out->url, "%s%s/deployments/", call->api_base,
                                     has_openai ? "" : "/openai");
    if (st == LLMC_OK)
        st = llmc_http_url_append_escaped(&out->url, call->model);
    if (st == LLMC_OK)
        st = llmc_buf_printf(&out->url, "%s?api-version=", path);
    if (st == LLMC_OK)
        st = llmc_http_url_append_escaped(&out->url, call->api_version ? call->api_version : "");
    if (st != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (call->api_key &&
        llmc_http_request_add_secret(out, "api-key", call->api_key) != LLMC_OK)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "azure: the API key contains characters not allowed in a header");
    /* The deployment in the URL selects the model; the body carries none. */
    return llmc__openai_body(call, request, NULL, out, err);
}

static const char *const azure_env_key[] = {"AZURE_API_KEY", "AZURE_OPENAI_API_KEY", NULL};
static const char *const azure_env_base[] = {"AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT", NULL};
static const char *const azure_env_version[] = {"AZURE_API_VERSION", "OPENAI_API_VERSION",
                                                NULL};

const llmc_provider_ops llmc__provider_azure = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "azure",
                               "Azure OpenAI: deployments, api-version, api-key"),
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_TEXT | LLMC_PROVIDER_EMBEDDING |
             LLMC_PROVIDER_STREAM | LLMC_PROVIDER_NEEDS_KEY | LLMC_PROVIDER_NEEDS_BASE |
             LLMC_PROVIDER_NEEDS_VERSION,
    .default_api_base = NULL,
    .default_api_version = "2024-10-21",
    .env_api_key = azure_env_key,
    .env_api_base = azure_env_base,
    .env_api_version = azure_env_version,
    .build_request = azure_build,
    .parse_response = llmc__openai_parse_response,
    .parse_stream_event = llmc__openai_parse_stream_event,
};

/* ------------------------------------------------------------------ */
/* openai-compatible */

static const char *const compat_env_key[] = {"OPENAI_COMPATIBLE_API_KEY", NULL};
static const char *const compat_env_base[] = {"OPENAI_COMPATIBLE_API_BASE", NULL};

const llmc_provider_ops llmc__provider_openai_compatible = {
    .hdr = LLMC_COMPONENT_INIT(llmc_provider_ops, "openai-compatible",
                               "any server speaking the OpenAI API at api_base"),
    .flags = LLMC_PROVIDER_CHAT | LLMC_PROVIDER_TEXT | LLMC_PROVIDER_EMBEDDING |
             LLMC_PROVIDER_STREAM | LLMC_PROVIDER_NEEDS_BASE,
    .default_api_base = NULL,
    .env_api_key = compat_env_key,
    .env_api_base = compat_env_base,
    .build_request = openai_build,
    .parse_response = llmc__openai_parse_response,
    .parse_stream_event = llmc__openai_parse_stream_event,
};
