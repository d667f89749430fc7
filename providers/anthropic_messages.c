/* The "anthropic" provider for Messages API calls (LLMC_CALL_MESSAGES):
 * no translation. The request goes to {base}/v1/messages as the client
 * sent it (the client-side members already removed by the core), with
 * the client's anthropic-version and anthropic-beta headers; the answer
 * and every stream event come back in the API's own shapes. */
#include "adapters.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *hdr(const llmc_provider_call *call, const char *name)
{
    if (call->struct_size < offsetof(llmc_provider_call, api_headers) + sizeof call->api_headers)
        return NULL;
    for (const char *const *h = call->api_headers; h && h[0] && h[1]; h += 2)
        if (strcasecmp(h[0], name) == 0)
            return h[1];
    return NULL;
}

llmc_status llmc__anth_msg_build(const llmc_provider_call *call, json_object *request,
                                 llmc_http_request *out, llmc_err *err)
{
    json_object *body = json_object_new_object();
    if (!body)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "anthropic: out of memory");
    json_object_object_foreach(request, k, v)
    {
        if (strcmp(k, "model") != 0)
            json_object_object_add(body, k, json_object_get(v));
    }
    json_object_object_add(body, "model", json_object_new_string(call->model));
    if (call->stream)
        json_object_object_add(body, "stream", json_object_new_boolean(1));
    const char *ver = hdr(call, "anthropic-version");
    const char *beta = hdr(call, "anthropic-beta");
    llmc_status st;
    out->method = "POST";
    llmc_buf_clear(&out->url);
    if ((st = llmc_buf_puts(&out->url, call->api_base)) != LLMC_OK ||
        (st = llmc_buf_puts(&out->url, "/v1/messages")) != LLMC_OK ||
        (st = llmc_http_request_set_json(out, body)) != LLMC_OK ||
        (st = llmc_http_request_add_header(
             out, "anthropic-version",
             ver ? ver : call->api_version ? call->api_version : "2023-06-01")) != LLMC_OK ||
        (beta && (st = llmc_http_request_add_header(out, "anthropic-beta", beta)) != LLMC_OK) ||
        (call->api_key &&
         (st = llmc_http_request_add_secret(out, "x-api-key", call->api_key)) != LLMC_OK) ||
        (call->stream &&
         (st = llmc_http_request_add_header(out, "Accept", "text/event-stream")) != LLMC_OK)) {
        json_object_put(body);
        return llmc_err_set(err, st, 0, "anthropic: cannot build the request");
    }
    json_object_put(body);
    out->stream_format = call->stream ? LLMC_STREAM_SSE : LLMC_STREAM_NONE;
    return LLMC_OK;
}

llmc_status llmc__anth_msg_parse(const llmc_provider_call *call, const llmc_http_response *resp,
                                 json_object **out, llmc_err *err)
{
    json_object *o = NULL, *t;
    llmc_status st;
    *out = NULL;
    if ((st = llmc_json_parse(resp->body, resp->body_len, "anthropic response", &o, err)) !=
        LLMC_OK)
        return st;
    const char *type = o && json_object_object_get_ex(o, "type", &t) &&
                               json_object_is_type(t, json_type_string)
                           ? json_object_get_string(t)
                           : NULL;
    if (type && strcmp(type, "error") == 0) {
        st = call ? llmc__provider_anthropic.map_error(call, resp, err) : LLMC_EUPSTREAM;
        json_object_put(o);
        return st == LLMC_EPROVIDER ? LLMC_EUPSTREAM : st;
    }
    if (!type || strcmp(type, "message") != 0) {
        /* type points into o: the message is written first. */
        st = llmc_err_set(err, LLMC_EPROTO, 0,
                          "anthropic: the answer is not a message (\"type\": %s%.64s%s)",
                          type ? "\"" : "", type ? type : "missing", type ? "\"" : "");
        json_object_put(o);
        return st;
    }
    *out = o;
    return LLMC_OK;
}

llmc_status llmc__anth_msg_event(const char *event, const char *data, size_t len,
                                 llmc_chunk_sink sink, void *sink_ud, int *done, llmc_err *err)
{
    json_object *ev = NULL, *t;
    llmc_status st;
    (void)event; /* the data's "type" names the event */
    if ((st = llmc_json_parse(data, len, "anthropic stream event", &ev, err)) != LLMC_OK)
        return st;
    const char *type = ev && json_object_is_type(ev, json_type_object) &&
                               json_object_object_get_ex(ev, "type", &t) &&
                               json_object_is_type(t, json_type_string)
                           ? json_object_get_string(t)
                           : NULL;
    if (!type) {
        json_object_put(ev);
        return llmc_err_set(err, LLMC_EPROTO, 0, "anthropic stream event without \"type\"");
    }
    if (strcmp(type, "error") == 0) {
        json_object *e = NULL, *v;
        json_object_object_get_ex(ev, "error", &e);
        const char *et = e && json_object_object_get_ex(e, "type", &v) ? json_object_get_string(v)
                                                                      : NULL;
        const char *msg =
            e && json_object_object_get_ex(e, "message", &v) ? json_object_get_string(v) : NULL;
        st = et && strcmp(et, "rate_limit_error") == 0       ? LLMC_ERATELIMIT
             : et && strcmp(et, "invalid_request_error") == 0 ? LLMC_EBADREQUEST
                                                              : LLMC_EUPSTREAM;
        long http = et && strcmp(et, "overloaded_error") == 0 ? 529
                    : st == LLMC_ERATELIMIT                   ? 429
                    : st == LLMC_EBADREQUEST                  ? 400
                                                              : 500;
        llmc_err_set(err, st, http, "anthropic stream error %s: %.300s", et ? et : "(untyped)",
                     msg ? msg : "(no message)");
        json_object_put(ev);
        return st;
    }
    if (strcmp(type, "message_stop") == 0)
        *done = 1;
    st = sink(sink_ud, ev);
    json_object_put(ev);
    return st;
}
