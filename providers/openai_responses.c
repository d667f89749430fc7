/* The Responses API where it is native: OpenAI (POST <base>/responses,
 * Bearer key) and Azure OpenAI (POST <endpoint>/openai/responses?
 * api-version=..., api-key header, the deployment named as the model).
 * Requests pass through as sent (the pipeline has removed its own
 * members); answers are checked, not translated. Pure translation: no
 * I/O. */
#include "calltype_responses.h"

#include <stdio.h>
#include <string.h>

int llmc__responses_native(const char *provider)
{
    return provider && (strcmp(provider, "openai") == 0 || strcmp(provider, "azure") == 0);
}

llmc_status llmc__responses_build(const llmc_provider_call *pc, json_object *req,
                                  llmc_http_request *out, llmc_err *err)
{
    int azure = strcmp(pc->provider, "azure") == 0;
    llmc_status st;
    if (azure) {
        size_t bl = strlen(pc->api_base);
        int has_openai = bl >= 7 && strcmp(pc->api_base + bl - 7, "/openai") == 0;
        st = llmc_buf_printf(&out->url, "%s%s/responses?api-version=", pc->api_base,
                             has_openai ? "" : "/openai");
        if (st == LLMC_OK)
            st = llmc_http_url_append_escaped(&out->url, pc->api_version ? pc->api_version : "");
    } else {
        st = llmc_buf_printf(&out->url, "%s/responses", pc->api_base);
    }
    if (st != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    if (pc->api_key) {
        llmc_buf auth = LLMC_BUF_INIT;
        if (!azure && llmc_buf_printf(&auth, "Bearer %s", pc->api_key) != LLMC_OK) {
            llmc_buf_free(&auth);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        st = azure ? llmc_http_request_add_secret(out, "api-key", pc->api_key)
                   : llmc_http_request_add_secret(out, "Authorization", auth.data);
        llmc_buf_free(&auth);
        if (st != LLMC_OK)
            return llmc_err_set(err, LLMC_EINVAL, 0, "%s: the API key contains characters not "
                                "allowed in a header", pc->provider);
    }
    json_object *body = json_object_new_object();
    if (!body)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    /* The model without its routing prefix (Azure: the deployment). */
    json_object_object_add(body, "model", json_object_new_string(pc->model ? pc->model : ""));
    json_object_object_foreach(req, k, v)
    {
        if (strcmp(k, "model") == 0 || strcmp(k, "stream") == 0 ||
            (strcmp(k, "stream_options") == 0 && !pc->stream))
            continue;
        json_object_object_add(body, k, json_object_get(v));
    }
    if (pc->stream) {
        json_object_object_add(body, "stream", json_object_new_boolean(1));
        out->stream_format = LLMC_STREAM_SSE;
        if (llmc_http_request_add_header(out, "Accept", "text/event-stream") != LLMC_OK) {
            json_object_put(body);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
    }
    st = llmc_http_request_set_json(out, body);
    json_object_put(body);
    return st == LLMC_OK ? LLMC_OK : llmc_err_set(err, st, 0, "out of memory");
}

llmc_status llmc__responses_parse(const llmc_provider_call *pc, const llmc_http_response *resp,
                                  json_object **out, llmc_err *err)
{
    *out = NULL;
    char what[96];
    snprintf(what, sizeof what, "%s response", pc->provider);
    json_object *o = NULL;
    llmc_status st = llmc_json_parse(resp->body, resp->body_len, what, &o, err);
    if (st != LLMC_OK)
        return st;
    json_object *v;
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: not a JSON object", what);
    }
    if (json_object_object_get_ex(o, "error", &v) && v && !json_object_is_type(v, json_type_null) &&
        !json_object_object_get_ex(o, "output", NULL)) {
        /* An error object in a 2xx body: mapped as an HTTP error would be. */
        json_object_put(o);
        llmc_http_response r = *resp;
        r.status = 500;
        return llmc_provider_map_error_default(pc, &r, err);
    }
    if (!json_object_object_get_ex(o, "output", &v) || !json_object_is_type(v, json_type_array)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EPROTO, 0, "%s: no \"output\" array", what);
    }
    *out = o;
    return LLMC_OK;
}
