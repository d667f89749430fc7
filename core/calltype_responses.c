/* The Responses call type's row: what a request must hold, what keeps it
 * out of the cache, what stays out of its key, when an answer may be
 * stored, and the upstream call: native to OpenAI and Azure OpenAI (typed
 * events passed through as they arrive), translated through the chat
 * adapter for every other provider. */
#include "calltype_responses.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const llmc__responses_paths[] = {"/v1/responses", "/responses", NULL};

/* They change what the provider does with the answer (keeps it, bills it,
 * logs it), not the answer. stream, stream_options, metadata and user are
 * left out for every call type (keys.c). */
const char *const llmc__responses_key_excluded[] = {"store", NULL};

llmc_status llmc__responses_validate(const llmc__jv *root, llmc_err *err)
{
    llmc__jv v = llmc__jv_member(root, "input");
    jv_kind k = llmc__jv_kind(&v);
    if (k == JV_ABSENT)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"input\" is missing");
    if (k != JV_STRING && k != JV_ARRAY)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"input\" must be a string or "
                            "an array of input items");
    static const char *const strings[] = {"instructions", NULL};
    for (int i = 0; strings[i]; i++) {
        llmc__jv m = llmc__jv_member(root, strings[i]);
        jv_kind mk = llmc__jv_kind(&m);
        if (mk != JV_ABSENT && mk != JV_NULL && mk != JV_STRING)
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"%s\" must be a string",
                                strings[i]);
    }
    return LLMC_OK;
}

/* The answer depends on a conversation the provider keeps: the same
 * request text means something else every time. */
const char *llmc__responses_never_cached(const llmc__jv *root)
{
    static const char *const stateful[] = {"previous_response_id", "conversation", NULL};
    for (int i = 0; stateful[i]; i++) {
        llmc__jv m = llmc__jv_member(root, stateful[i]);
        jv_kind k = llmc__jv_kind(&m);
        if (k != JV_ABSENT && k != JV_NULL)
            return stateful[i];
    }
    return NULL;
}

static const char *status_of(json_object *o)
{
    json_object *v;
    if (!json_object_object_get_ex(o, "status", &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A completed response with some output; a failed, incomplete, queued or
 * in-progress one (background mode) is not an answer to keep. */
int llmc__responses_storable(json_object *resp, int streamed)
{
    (void)streamed; /* a stream's response is only there when it completed */
    json_object *v;
    if (!resp || !json_object_is_type(resp, json_type_object))
        return 0;
    if (json_object_object_get_ex(resp, "error", &v) && v &&
        !json_object_is_type(v, json_type_null))
        return 0;
    const char *st = status_of(resp);
    if (!st || strcmp(st, "completed") != 0)
        return 0;
    return json_object_object_get_ex(resp, "output", &v) &&
           json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0;
}

/* ------------------------------------------------------------------ */
/* Upstream. */

static void fill_call(llmc_client *c, const llmc__route *rt, int stream, llmc_provider_call *pc)
{
    memset(pc, 0, sizeof *pc);
    pc->struct_size = sizeof *pc;
    pc->call = LLMC_CALL_RESPONSES;
    pc->provider = rt->exec->hdr.name;
    pc->model = rt->model;
    pc->api_base = rt->api_base ? rt->api_base : "";
    pc->api_key = rt->api_key;
    pc->api_version = rt->api_version;
    pc->stream = stream;
    pc->options = c->opts;
}

typedef struct rs_ctx {
    const char *provider;
    llmc__sse sse;
    llmc__rstream rs;
    llmc_chunk_cb cb;
    void *ud;
    llmc_err *err;
} rs_ctx;

static llmc_status rs_event(void *ud, const char *event, const char *data, size_t len)
{
    rs_ctx *x = ud;
    json_object *ev = NULL;
    llmc_status st = llmc__rstream_event(&x->rs, x->provider, event, data, len, &ev, x->err);
    if (st != LLMC_OK || !ev)
        return st;
    int stop = x->cb(x->ud, ev);
    json_object_put(ev);
    if (stop)
        return llmc_err_set(x->err, LLMC_ECANCELED, 0, "stream stopped by the callback");
    return LLMC_OK;
}

static llmc_status rs_data(void *ud, const char *data, size_t len)
{
    rs_ctx *x = ud;
    llmc_status st = llmc__sse_feed(&x->sse, data, len, rs_event, x);
    if (st == LLMC_ETOOBIG && x->err && x->err->status == LLMC_OK)
        llmc_err_set(x->err, st, 0, "%s: stream event too large", x->provider);
    return st;
}

static llmc_status http_error(const llmc_provider_call *pc, const llmc__http_result *res,
                              llmc_err *err)
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
    llmc_status st = llmc_provider_map_error_default(pc, &hr, err);
    if (st == LLMC_OK)
        st = llmc_err_set(err, LLMC_EPROVIDER, res->status, "%s: HTTP %ld", pc->provider,
                          res->status);
    if (err && err->native == 0)
        err->native = res->status;
    return st;
}

static llmc_status native_upstream(llmc_client *c, json_object *req, const llmc__route *rt,
                                   llmc_chunk_cb cb, void *ud, json_object **out,
                                   int *attempts, llmc_err *err)
{
    const llmc_provider_ops *ops = rt->exec;
    if (!c->http) {
        if (err)
            *err = c->http_err;
        return c->http_err.status ? c->http_err.status : LLMC_ENOTBUILT;
    }
    if ((ops->flags & LLMC_PROVIDER_NEEDS_KEY) && !rt->api_key) {
        const char *ev = ops->env_api_key && ops->env_api_key[0] ? ops->env_api_key[0] : NULL;
        return llmc_err_set(err, LLMC_EAUTH, 0, "%s: no API key: set %s%s or the %s.api_key / "
                            "api_key option", ops->hdr.name, ev ? "$" : "", ev ? ev : "",
                            ops->hdr.name);
    }
    llmc_provider_call pc;
    fill_call(c, rt, cb != NULL, &pc);
    json_object *u = llmc__upstream_body(req, 0, NULL), *md;
    if (!u)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    /* metadata is the Responses API's own (kept with the response at the
     * provider): passed on, though never part of the key. */
    if (json_object_object_get_ex(req, "metadata", &md))
        json_object_object_add(u, "metadata", json_object_get(md));
    llmc_http_request hr;
    llmc_http_request_init(&hr);
    llmc_status st = llmc__responses_build(&pc, u, &hr, err);
    json_object_put(u);
    if (st == LLMC_OK && c->request_credentials)
        st = llmc__add_extra_headers(req, &hr, err);
    if (st != LLMC_OK) {
        llmc_http_request_free(&hr);
        return st;
    }
    llmc__http_config hc;
    llmc__call_http_config(c, req, &hc);
    llmc__http_result res;
    llmc__http_result_init(&res);
    if (!cb) {
        st = llmc__http_perform(c->http, &hc, &hr, NULL, NULL, &res, err);
        *attempts = res.attempts;
        if (st == LLMC_OK) {
            if (res.status < 200 || res.status > 299) {
                st = http_error(&pc, &res, err);
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
                st = llmc__responses_parse(&pc, &resp, out, err);
            }
        }
        llmc__http_result_free(&res);
        llmc_http_request_free(&hr);
        return st;
    }
    rs_ctx x;
    memset(&x, 0, sizeof x);
    x.provider = pc.provider;
    x.cb = cb;
    x.ud = ud;
    x.err = err;
    llmc__sse_init(&x.sse);
    llmc__rstream_init(&x.rs);
    if (err)
        llmc_err_clear(err);
    st = llmc__http_perform(c->http, &hc, &hr, rs_data, &x, &res, err);
    *attempts = res.attempts;
    if (st == LLMC_OK) {
        if (res.status < 200 || res.status > 299) {
            st = http_error(&pc, &res, err);
        } else {
            st = llmc__sse_finish(&x.sse, rs_event, &x);
            if (st == LLMC_OK && !x.rs.done)
                st = llmc_err_set(err, LLMC_ESTREAM, res.status,
                                  "%s: the stream ended before response.completed (%zu events "
                                  "received); not cached", pc.provider, x.rs.events);
            if (st == LLMC_OK) {
                *out = x.rs.final;
                x.rs.final = NULL;
            }
        }
    }
    llmc__rstream_free(&x.rs);
    llmc__sse_free(&x.sse);
    llmc__http_result_free(&res);
    llmc_http_request_free(&hr);
    return st;
}

static int on_chat_chunk(void *ud, struct json_object *chunk)
{
    return llmc__rconv_chunk(ud, chunk);
}

/* Other providers: the request as chat through their adapter, the
 * answer back as a response object; a stream is the chat stream turned
 * into Responses events as it arrives (responses_conv.c). */
static llmc_status translated_upstream(llmc_client *c, json_object *req, const llmc__route *rt,
                                       llmc_chunk_cb cb, void *ud, json_object **out,
                                       int *attempts, llmc_err *err)
{
    json_object *chat = NULL;
    llmc_status st = llmc__responses_to_chat(req, &chat, err);
    if (st != LLMC_OK)
        return st;
    llmc__rconv *cv = NULL;
    if (cb && !(cv = llmc__rconv_new(req, cb, ud))) {
        json_object_put(chat);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    json_object *cr = NULL;
    st = llmc__call_upstream(c, LLMC_CALL_CHAT, chat, NULL, rt, cv ? on_chat_chunk : NULL, cv,
                             &cr, attempts, err);
    json_object_put(chat);
    /* The converter's own reason to stop says more than "stopped". */
    if (st != LLMC_OK && llmc__rconv_error(cv, NULL) != LLMC_OK)
        st = llmc__rconv_error(cv, err);
    if (st == LLMC_OK)
        st = llmc__responses_from_chat(cr, req, out, err);
    json_object_put(cr);
    if (st == LLMC_OK && cv && llmc__rconv_finish(cv, *out) != 0) {
        json_object_put(*out);
        *out = NULL;
        st = llmc__rconv_error(cv, NULL) != LLMC_OK
                 ? llmc__rconv_error(cv, err)
                 : llmc_err_set(err, LLMC_ECANCELED, 0, "stream stopped by the callback");
    }
    llmc__rconv_free(cv);
    return st;
}

llmc_status llmc__responses_upstream(llmc_client *c, json_object *req, const llmc__route *rt,
                                     llmc_chunk_cb cb, void *ud, json_object **out,
                                     int *attempts, llmc_err *err)
{
    *out = NULL;
    if (llmc__responses_native(rt->exec->hdr.name))
        return native_upstream(c, req, rt, cb, ud, out, attempts, err);
    return translated_upstream(c, req, rt, cb, ud, out, attempts, err);
}

const char *llmc__responses_output_text(json_object *resp)
{
    json_object *out, *content, *v;
    if (!json_object_object_get_ex(resp, "output", &out) || !json_object_is_type(out, json_type_array))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(out); i++) {
        json_object *it = json_object_array_get_idx(out, i);
        if (!json_object_object_get_ex(it, "type", &v) ||
            strcmp(json_object_get_string(v), "message") != 0 ||
            !json_object_object_get_ex(it, "content", &content) ||
            !json_object_is_type(content, json_type_array))
            continue;
        for (size_t j = 0; j < json_object_array_length(content); j++) {
            json_object *p = json_object_array_get_idx(content, j), *t;
            if (json_object_object_get_ex(p, "type", &v) &&
                strcmp(json_object_get_string(v), "output_text") == 0 &&
                json_object_object_get_ex(p, "text", &t) && json_object_is_type(t, json_type_string))
                return json_object_get_string(t);
        }
    }
    return NULL;
}
