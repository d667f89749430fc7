/* Key strategy "v1" (DESIGN.md): RFC 8785 canonical key material, SHA-256,
 * optional namespace prefix. */
#include "canon.h"
#include "client_internal.h"
#include "builtins.h"
#include "fastjson.h"
#include "hash.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

/* ---- v1 ---- */

static const char *const excluded_params[] = {
    /* credentials and transport */
    "api_key", "api_base", "base_url", "api_version", "headers", "extra_headers",
    "timeout", "request_timeout", "max_retries", "num_retries", "organization",
    "custom_llm_provider",
    /* streamed and plain calls share one entry */
    "stream", "stream_options",
    /* bookkeeping and cache controls */
    "metadata", "cache", "caching",
    /* the caller's identity, unless the cache scopes by user */
    "user",
    /* carried at the top level of the material */
    "model"};

int llmc_key_param_excluded(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < LLMC_ARRAY_LEN(excluded_params); i++)
        if (strcmp(name, excluded_params[i]) == 0)
            return 1;
    return 0;
}

typedef struct v1_filter {
    const llmc_key_input *in;
} v1_filter;

/* Excluded member names, checked by length first: this runs for every
 * top-level member of every request. Shared with the text fast path
 * (fastjson.c) so there is one list. */
int llmc__key_param_excluded_n(const char *k, size_t n)
{
    for (size_t i = 0; i < LLMC_ARRAY_LEN(excluded_params); i++) {
        const char *e = excluded_params[i];
        if (n > 0 && e[0] == k[0] && strlen(e) == n && memcmp(e, k, n) == 0)
            return 1;
    }
    return 0;
}

static int v1_param_filter(void *ud, const char *key, struct json_object **val)
{
    v1_filter *f = ud;
    if (llmc__key_param_excluded_n(key, strlen(key))) {
        if (f->in->scope_by_user && strcmp(key, "user") == 0)
            return 1;
        return 0;
    }
    if (llmc__calltype_key_excluded(f->in->call, key))
        return 0;
    if (f->in->input_item && strcmp(key, "input") == 0)
        *val = (struct json_object *)f->in->input_item;
    return 1;
}

static llmc_status v1_params_json(void *ud, llmc_buf *m)
{
    v1_filter *f = ud;
    return llmc__canon_object_filtered(m, f->in->request, v1_param_filter, f);
}

/* The v1 material around the params object, its digest and the final key.
 * Both the json-c path and the text fast path come through here, so the
 * layout exists once. */
llmc_status llmc__v1_key(llmc_call_type call, const char *provider, const char *model,
                         const char *api_base, const char *ns, llmc__v1_params_fn params,
                         void *ud, llmc_buf *key, llmc_buf *material, llmc_err *err)
{
    const char *call_name = llmc_call_type_name(call);
    /* Thread-local scratch keeps the hot path free of malloc. */
    llmc_buf *tl = llmc__tls_buf(LLMC_TLS_KEYMAT);
    llmc_buf *m = material ? material : tl;
    if (!m)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory computing the cache key");
    if (!material)
        llmc_buf_clear(tl);
    size_t start = m->len;
    llmc_status st = llmc_buf_reserve(m, 1024);
    /* Members in canonical order: api_base, call, model, params, provider, v */
    if (st == LLMC_OK)
        st = llmc_buf_puts(m, "{");
    if (st == LLMC_OK && api_base && *api_base) {
        st = llmc_buf_puts(m, "\"api_base\":");
        if (st == LLMC_OK)
            st = llmc__canon_string(m, api_base, strlen(api_base));
        if (st == LLMC_OK)
            st = llmc_buf_puts(m, ",");
    }
    if (st == LLMC_OK)
    {
        st = llmc_buf_puts(m, "\"call\":\"");
        if (st == LLMC_OK)
            st = llmc_buf_puts(m, call_name);
        if (st == LLMC_OK)
            st = llmc_buf_puts(m, "\",\"model\":");
    }
    if (st == LLMC_OK)
        st = llmc__canon_string(m, model, strlen(model));
    if (st == LLMC_OK)
        st = llmc_buf_puts(m, ",\"params\":");
    if (st == LLMC_OK)
        st = params(ud, m);
    if (st == LLMC_OK)
        st = llmc_buf_puts(m, ",\"provider\":");
    if (st == LLMC_OK)
        st = llmc__canon_string(m, provider, strlen(provider));
    if (st == LLMC_OK)
        st = llmc_buf_puts(m, ",\"v\":1}");
    if (st == LLMC_EINVAL)
        return llmc_err_set(err, st, 0, "request holds a number JSON cannot represent "
                            "(NaN or infinity)");
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, st == LLMC_ENOMEM ? "out of memory computing the "
                            "cache key" : "cannot compute the cache key");

    uint8_t digest[32];
    llmc__sha256(m->data + start, m->len - start, digest);
    char hex[65];
    llmc_hex(digest, 32, hex);
    llmc_buf_clear(key);
    if (ns && *ns) {
        llmc_buf_puts(key, ns);
        llmc_buf_append(key, ":", 1);
    }
    if (llmc_buf_append(key, hex, 64) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory computing the cache key");
    return LLMC_OK;
}

static llmc_status v1_compute(const llmc_key_input *in, llmc_buf *key, llmc_buf *material,
                              llmc_err *err)
{
    if (!in || in->struct_size < offsetof(llmc_key_input, scope_by_user) + sizeof(int))
        return llmc_err_set(err, LLMC_EINVAL, 0, "key input missing or too old");
    if (!in->request || !json_object_is_type((struct json_object *)in->request,
                                             json_type_object))
        return llmc_err_set(err, LLMC_EINVAL, 0, "key input: request must be a JSON object");
    if (!in->provider || !*in->provider || !in->model || !*in->model)
        return llmc_err_set(err, LLMC_EINVAL, 0, "key input: provider and model are required");
    const char *call = llmc_call_type_name(in->call);
    if (!call || in->call == LLMC_CALL_RAW)
        return llmc_err_set(err, LLMC_EINVAL, 0, "key input: call type must be chat, text, "
                            "embedding, responses or messages");
    if (in->call == LLMC_CALL_EMBEDDING && !in->input_item)
        return llmc_err_set(err, LLMC_EINVAL, 0, "key input: embeddings need the input item");
    v1_filter f = {in};
    return llmc__v1_key(in->call, in->provider, in->model, in->api_base, in->namespace_,
                        v1_params_json, &f, key, material, err);
}

/* The v1 key from the client's tokens (fastjson.c), byte-identical to
 * v1_compute over the parsed object. */
static llmc_status v1_compute_tokens(const llmc_key_input *in, const llmc_key_tokens *tokens,
                                     llmc_buf *key, llmc_buf *material, llmc_err *err)
{
    if (!in || !tokens || !in->provider || !in->model ||
        (in->call != LLMC_CALL_CHAT && in->call != LLMC_CALL_TEXT))
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "v1: tokens not keyed for this call");
    llmc__fj_keyin ki;
    memset(&ki, 0, sizeof ki);
    ki.call = in->call;
    ki.provider = in->provider;
    ki.model = in->model;
    ki.api_base = in->api_base;
    ki.namespace_ = in->namespace_;
    ki.scope_by_user = in->scope_by_user;
    ki.input_item = -1;
    /* The tokens are the client's llmc__fjdoc under a public name. */
    llmc_status st = llmc__fj_key_v1((llmc__fjdoc *)(uintptr_t)tokens, &ki, key, material);
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, "v1: tokens declined");
    return LLMC_OK;
}

const llmc_key_strategy_ops llmc__key_strategy_v1 = {
    .hdr = LLMC_COMPONENT_INIT(llmc_key_strategy_ops, "v1",
                               "RFC 8785 canonical request + SHA-256 (default)"),
    .compute = v1_compute,
    .compute_tokens = v1_compute_tokens,
};

llmc_status llmc_key_compute(const char *strategy, const llmc_key_input *in, llmc_buf *key,
                             llmc_buf *material, llmc_err *err)
{
    if (!key)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_key_compute: key buffer is NULL");
    const llmc_key_strategy_ops *ks = (!strategy || llmc__strcaseeq(strategy, "v1"))
                                          ? &llmc__key_strategy_v1
                                          : llmc_find_key_strategy(strategy);
    if (!ks) {
        char *names = llmc_registry_names(LLMC_KIND_KEY_STRATEGY);
        llmc_status st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                                      "unknown key strategy \"%.64s\" (known: %s)", strategy,
                                      names ? names : "");
        free(names);
        return st;
    }
    return ks->compute(in, key, material, err);
}
