/* The provider call: the request as the adapter wants it (controls,
 * credentials and transport members removed), over the core's HTTP, and
 * for streams: bytes -> framing (SSE / NDJSON) -> adapter -> chunk sink
 * -> caller, with the chunks assembled into the response that is stored
 * once the stream completed. */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Members that never go upstream: cache controls, credentials and
 * transport (applied by the client), LiteLLM-only fields. */
static int stripped_member(const char *k, int keep_mock, llmc_call_type call)
{
    /* The Messages API's own metadata (user_id) is a request field. */
    if (call == LLMC_CALL_MESSAGES && strcmp(k, "metadata") == 0)
        return 0;
    static const char *const names[] = {
        "cache", "caching", "api_key", "api_base", "base_url", "api_version", "timeout",
        "request_timeout", "max_retries", "num_retries", "metadata", "extra_headers",
        "headers", "custom_llm_provider", "stream", NULL,
    };
    for (int i = 0; names[i]; i++)
        if (strcmp(k, names[i]) == 0)
            return 1;
    if (!keep_mock && (strcmp(k, "mock_response") == 0 || strcmp(k, "mock_tool_calls") == 0))
        return 1;
    return 0;
}

static json_object *upstream_request(json_object *req, int keep_mock, json_object *input,
                                     llmc_call_type call)
{
    json_object *u = json_object_new_object();
    if (!u)
        return NULL;
    json_object_object_foreach(req, k, v)
    {
        if (stripped_member(k, keep_mock, call))
            continue;
        if (input && strcmp(k, "input") == 0)
            continue;
        json_object_object_add(u, k, json_object_get(v));
    }
    if (input)
        json_object_object_add(u, "input", json_object_get(input));
    return u;
}

static llmc_status add_extra_headers(json_object *req, llmc_http_request *hr, llmc_err *err)
{
    static const char *const fields[] = {"headers", "extra_headers", NULL};
    for (int f = 0; fields[f]; f++) {
        json_object *h;
        if (!json_object_object_get_ex(req, fields[f], &h) || !h)
            continue;
        if (!json_object_is_type(h, json_type_object))
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "request field \"%s\" must be an object of header values",
                                fields[f]);
        json_object_object_foreach(h, k, v)
        {
            if (!json_object_is_type(v, json_type_string))
                return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s.%s\" must be a string",
                                    fields[f], k);
            int secret = strcasecmp(k, "authorization") == 0 || strcasecmp(k, "api-key") == 0 ||
                         strcasecmp(k, "x-api-key") == 0 || strcasecmp(k, "x-goog-api-key") == 0;
            llmc_status st = secret ? llmc_http_request_add_secret(hr, k, json_object_get_string(v))
                                    : llmc_http_request_add_header(hr, k, json_object_get_string(v));
            if (st != LLMC_OK)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "request field \"%s\": header \"%s\" is not valid",
                                    fields[f], k);
        }
    }
    return LLMC_OK;
}

/* Per-call HTTP settings: the request's timeout / retries win. */
static void call_http_config(llmc_client *c, json_object *req, llmc__http_config *hc)
{
    *hc = c->http_cfg;
    static const char *const tfields[] = {"timeout", "request_timeout", NULL};
    for (int i = 0; tfields[i]; i++) {
        json_object *v;
        if (json_object_object_get_ex(req, tfields[i], &v) &&
            (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double))) {
            double s = json_object_get_double(v);
            if (s > 0 && s < 1e7)
                hc->timeout_ms = (int64_t)(s * 1000.0);
            break;
        }
    }
    static const char *const rfields[] = {"max_retries", "num_retries", NULL};
    for (int i = 0; rfields[i]; i++) {
        json_object *v;
        if (json_object_object_get_ex(req, rfields[i], &v) &&
            json_object_is_type(v, json_type_int)) {
            int64_t n = json_object_get_int64(v);
            if (n >= 0 && n <= 20)
                hc->max_retries = (int)n;
            break;
        }
    }
}

static void fill_call(const llmc__route *rt, llmc_call_type call, int stream, llmc_client *c,
                      llmc_provider_call *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->struct_size = sizeof *pc;
    pc->call = call;
    pc->provider = rt->exec->hdr.name;
    pc->model = rt->model;
    pc->api_base = rt->api_base ? rt->api_base : "";
    pc->api_key = rt->api_key;
    pc->api_version = rt->api_version;
    pc->stream = stream;
    pc->options = c->opts;
    pc->api_headers = rt->api_headers;
}

static llmc_status map_http_error(const llmc_provider_ops *ops, const llmc_provider_call *pc,
                                  const llmc__http_result *res, llmc_err *err)
{
    llmc_http_response hr;
    memset(&hr, 0, sizeof hr);
    hr.struct_size = sizeof hr;
    hr.status = res->status;
    hr.headers = res->headers.data ? res->headers.data : "";
    hr.headers_len = res->headers.len;
    hr.body = res->body.data ? res->body.data : "";
    hr.body_len = res->body.len;
    hr.retry_after_ms = res->retry_after_ms;
    llmc_status st;
    if (llmc__provider_has(ops, map_error) && ops->map_error)
        st = ops->map_error(pc, &hr, err);
    else
        st = llmc_provider_map_error_default(pc, &hr, err);
    if (st == LLMC_OK)
        st = llmc_err_set(err, LLMC_EPROVIDER, res->status, "%s: HTTP %ld", pc->provider,
                          res->status);
    if (err && err->native == 0)
        err->native = res->status;
    return st;
}

/* Stream plumbing: bytes -> framing -> adapter -> chunk sink -> caller. */
typedef struct stream_ctx {
    llmc_client *client;
    const llmc_provider_ops *ops;
    const llmc_provider_call *pc;
    void *state;
    llmc__sse sse;
    llmc__ndjson nd;
    llmc_stream_format fmt;
    int done;
    void *asmb;
    const llmc__calltype *ct; /* its assembler hooks, or NULL: chat's */
    llmc_chunk_cb cb;
    void *ud;
    llmc_err *err;
    size_t chunks;
} stream_ctx;

static llmc_status chunk_sink(void *ud, struct json_object *chunk)
{
    stream_ctx *sc = ud;
    if (sc->asmb && (sc->ct ? sc->ct->asm_add(sc->asmb, chunk)
                             : llmc__assembler_add(sc->asmb, chunk)) == LLMC_ENOMEM)
        return llmc_err_set(sc->err, LLMC_ENOMEM, 0, "out of memory assembling the stream");
    sc->chunks++;
    if (sc->cb && sc->cb(sc->ud, chunk) != 0)
        return llmc_err_set(sc->err, LLMC_ECANCELED, 0, "stream stopped by the callback");
    return LLMC_OK;
}

static llmc_status on_event(void *ud, const char *event, const char *data, size_t len)
{
    stream_ctx *sc = ud;
    llmc_status st = sc->ops->parse_stream_event(sc->state, sc->pc, event, data, len,
                                                 chunk_sink, sc, &sc->done, sc->err);
    if (st != LLMC_OK && sc->err && sc->err->status == LLMC_OK)
        llmc_err_set(sc->err, st, 0, "%s: stream event rejected: %s", sc->pc->provider,
                     llmc_strerror(st));
    return st;
}

static llmc_status on_data(void *ud, const char *data, size_t len)
{
    stream_ctx *sc = ud;
    llmc_status st = sc->fmt == LLMC_STREAM_NDJSON
                         ? llmc__ndjson_feed(&sc->nd, data, len, on_event, sc)
                         : llmc__sse_feed(&sc->sse, data, len, on_event, sc);
    if (st == LLMC_ETOOBIG && sc->err && sc->err->status == LLMC_OK)
        llmc_err_set(sc->err, st, 0, "%s: stream event too large", sc->pc->provider);
    return st;
}

/* How a call type's stored answers are replayed as events. */
typedef llmc_status (*replay_fn_t)(json_object *resp, llmc_chunk_sink sink, void *ud);

static replay_fn_t replay_fn(llmc_call_type call)
{
    const llmc__calltype *ct = llmc__calltype_of(call);
    return ct && ct->replay ? ct->replay : llmc__replay;
}

/* Call the provider. Non-streamed: *out = normalised response. Streamed:
 * chunks go to cb as they arrive and *out = the assembled response (only
 * when the stream completed). */
llmc_status llmc__call_upstream(llmc_client *c, llmc_call_type call, json_object *req,
                                json_object *input, const llmc__route *rt, llmc_chunk_cb cb,
                                void *ud, json_object **out, int *attempts, llmc_err *err)
{
    *out = NULL;
    const llmc_provider_ops *ops = rt->exec;
    llmc_provider_call pc;
    int stream = cb != NULL;
    fill_call(rt, call, stream, c, &pc);

    if ((ops->flags & LLMC_PROVIDER_LOCAL) && llmc__provider_has(ops, respond_local) &&
        ops->respond_local) {
        json_object *u = upstream_request(req, 1, input, call);
        if (!u)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        llmc_status st = ops->respond_local(&pc, u, out, err);
        json_object_put(u);
        if (st != LLMC_OK)
            return st;
        if (stream) {
            stream_ctx sc;
            memset(&sc, 0, sizeof sc);
            sc.cb = cb;
            sc.ud = ud;
            sc.err = err;
            st = replay_fn(call)(*out, chunk_sink, &sc);
            if (st != LLMC_OK) {
                json_object_put(*out);
                *out = NULL;
            }
        }
        return st;
    }

    if (!c->http) {
        if (err)
            *err = c->http_err;
        return c->http_err.status ? c->http_err.status : LLMC_ENOTBUILT;
    }
    if ((ops->flags & LLMC_PROVIDER_NEEDS_KEY) && !rt->api_key) {
        const char *ev = ops->env_api_key && ops->env_api_key[0] ? ops->env_api_key[0] : NULL;
        return llmc_err_set(err, LLMC_EAUTH, 0,
                            "%s: no API key: set %s%s%s the %s.api_key / api_key option or "
                            "the request's api_key",
                            ops->hdr.name, ev ? "$" : "", ev ? ev : "", ev ? "," : "",
                            ops->hdr.name);
    }
    if (stream && !(ops->flags & LLMC_PROVIDER_STREAM))
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "%s does not support streaming",
                            ops->hdr.name);

    json_object *u = upstream_request(req, 0, input, call);
    if (!u)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_http_request hr;
    llmc_http_request_init(&hr);
    llmc_status st = ops->build_request(&pc, u, &hr, err);
    json_object_put(u);
    if (st == LLMC_OK && c->request_credentials)
        st = add_extra_headers(req, &hr, err);
    if (st != LLMC_OK) {
        llmc_http_request_free(&hr);
        return st;
    }
    llmc__http_config hc;
    call_http_config(c, req, &hc);
    llmc__http_result res;
    llmc__http_result_init(&res);

    if (!stream || hr.stream_format == LLMC_STREAM_NONE) {
        st = llmc__http_perform(c->http, &hc, &hr, NULL, NULL, &res, err);
        *attempts = res.attempts;
        if (st == LLMC_OK) {
            if (res.status < 200 || res.status > 299) {
                st = map_http_error(ops, &pc, &res, err);
            } else {
                llmc_http_response resp;
                memset(&resp, 0, sizeof resp);
                resp.struct_size = sizeof resp;
                resp.status = res.status;
                resp.headers = res.headers.data ? res.headers.data : "";
                resp.headers_len = res.headers.len;
                resp.body = res.body.data ? res.body.data : "";
                resp.body_len = res.body.len;
                resp.retry_after_ms = res.retry_after_ms;
                st = ops->parse_response(&pc, &resp, out, err);
                if (st == LLMC_OK && stream) {
                    /* The adapter could not stream this call: replay. */
                    stream_ctx sc;
                    memset(&sc, 0, sizeof sc);
                    sc.cb = cb;
                    sc.ud = ud;
                    sc.err = err;
                    st = replay_fn(call)(*out, chunk_sink, &sc);
                }
                if (st != LLMC_OK && *out) {
                    json_object_put(*out);
                    *out = NULL;
                }
            }
        }
        llmc__http_result_free(&res);
        llmc_http_request_free(&hr);
        return st;
    }

    stream_ctx sc;
    memset(&sc, 0, sizeof sc);
    sc.client = c;
    sc.ops = ops;
    sc.pc = &pc;
    sc.fmt = hr.stream_format;
    sc.cb = cb;
    sc.ud = ud;
    sc.err = err;
    llmc__sse_init(&sc.sse);
    llmc__ndjson_init(&sc.nd);
    const llmc__calltype *ct = llmc__calltype_of(call);
    sc.ct = ct && ct->asm_new ? ct : NULL;
    sc.asmb = sc.ct ? sc.ct->asm_new() : (void *)llmc__assembler_new();
    if (!sc.asmb) {
        llmc_http_request_free(&hr);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    if (err)
        llmc_err_clear(err);
    st = LLMC_OK;
    if (ops->stream_new)
        st = ops->stream_new(&pc, &sc.state, err);
    if (st == LLMC_OK) {
        st = llmc__http_perform(c->http, &hc, &hr, on_data, &sc, &res, err);
        *attempts = res.attempts;
    }
    if (st == LLMC_OK) {
        if (res.status < 200 || res.status > 299) {
            st = map_http_error(ops, &pc, &res, err);
        } else {
            st = sc.fmt == LLMC_STREAM_NDJSON ? llmc__ndjson_finish(&sc.nd, on_event, &sc)
                                              : llmc__sse_finish(&sc.sse, on_event, &sc);
            if (st == LLMC_OK && !sc.done)
                st = llmc_err_set(err, LLMC_ESTREAM, res.status,
                                  "%s: the stream ended before the provider's end marker "
                                  "(%zu chunks received); not cached",
                                  pc.provider, sc.chunks);
            if (st == LLMC_OK) {
                *out = sc.ct ? sc.ct->asm_result(sc.asmb) : llmc__assembler_result(sc.asmb);
                if (!*out)
                    st = llmc_err_set(err, LLMC_EPROTO, 0, "%s: the stream carried no chunks",
                                      pc.provider);
            }
        }
    }
    if (ops->stream_free && sc.state)
        ops->stream_free(sc.state);
    if (sc.ct)
        sc.ct->asm_free(sc.asmb);
    else
        llmc__assembler_free(sc.asmb);
    llmc__sse_free(&sc.sse);
    llmc__ndjson_free(&sc.nd);
    llmc__http_result_free(&res);
    llmc_http_request_free(&hr);
    return st;
}


typedef struct replay_ctx {
    llmc_chunk_cb cb;
    void *ud;
    llmc_err *err;
} replay_ctx;

static llmc_status replay_sink(void *ud, struct json_object *chunk)
{
    replay_ctx *rc = ud;
    if (rc->cb(rc->ud, chunk) != 0)
        return llmc_err_set(rc->err, LLMC_ECANCELED, 0, "stream stopped by the callback");
    return LLMC_OK;
}

llmc_status llmc__replay_to(json_object *resp, llmc_chunk_cb cb, void *ud, llmc_err *err)
{
    return llmc__replay_as(LLMC_CALL_CHAT, resp, cb, ud, err);
}

llmc_status llmc__replay_as(llmc_call_type call, json_object *resp, llmc_chunk_cb cb, void *ud,
                            llmc_err *err)
{
    replay_ctx rc = {cb, ud, err};
    llmc_status st = replay_fn(call)(resp, replay_sink, &rc);
    /* The sink only fails with LLMC_ECANCELED: these are the replay's. */
    if (st == LLMC_ENOMEM)
        return llmc_err_set(err, st, 0, "out of memory replaying the response");
    if (st == LLMC_EINVAL)
        return llmc_err_set(err, LLMC_ECORRUPT, 0, "the stored response is not an object");
    return st;
}

/* The pieces of the provider call other call types' upstream hooks reuse
 * (calltype_responses.c). */
json_object *llmc__upstream_body(json_object *req, int keep_mock, json_object *input)
{
    return upstream_request(req, keep_mock, input, LLMC_CALL_RESPONSES);
}

llmc_status llmc__add_extra_headers(json_object *req, llmc_http_request *hr, llmc_err *err)
{
    return add_extra_headers(req, hr, err);
}

void llmc__call_http_config(llmc_client *c, json_object *req, llmc__http_config *hc)
{
    call_http_config(c, req, hc);
}
