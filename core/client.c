/* The client (llmc_client: options, credentials, the attached cache) and
 * the convenience calls, each a thin wrapper over the prepared call
 * (call.c): prepare, execute (which looks up first), free. */
#include "client_internal.h"
#include "semantic.h"

#include <stdlib.h>
#include <string.h>

static int known_provider_prefix_option(const char *name)
{
    const char *dot = strchr(name, '.');
    if (!dot || dot == name || !dot[1])
        return 0;
    char p[64];
    size_t n = (size_t)(dot - name);
    if (n >= sizeof p)
        return 0;
    memcpy(p, name, n);
    p[n] = '\0';
    return llmc_find_provider(p) != NULL;
}

static const char *const client_options[] = {
    "provider", "api_key", "api_base", "api_version", "timeout_ms", "connect_timeout_ms",
    "max_retries", "retry_base_ms", "retry_max_ms", "key_strategy", "scope_by_user",
    "memo_entries", "request_credentials", "models_only", "prices", NULL,
};

/* ------------------------------------------------------------------ */
/* Client. */

llmc_status llmc_client_new(llmc_cache *cache, const llmc_options *opts, llmc_client **out,
                            llmc_err *err)
{
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_client_new: out is NULL");
    *out = NULL;
    llmc_status st = llmc_init();
    if (st != LLMC_OK)
        return llmc_err_set(err, st, 0, "llmcache initialisation failed");
    llmc_client *c = calloc(1, sizeof *c);
    if (!c)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    c->cache = cache;
    c->scope_by_user = -1;
    c->opts = opts ? llmc_options_dup(opts) : llmc_options_new();
    if (!c->opts) {
        free(c);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    /* An explicit price override is checked now; the default table is
     * read when a saving is first asked for. */
    const char *po = llmc_options_get(c->opts, "prices");
    if ((st = llmc__prices_slot_init(&c->prices, po, po != NULL, err)) != LLMC_OK) {
        llmc_client_free(c);
        return st;
    }
    /* Unknown options are errors, not silently ignored settings. */
    for (size_t i = 0; i < llmc_options_count(c->opts); i++) {
        const char *n = llmc_options_name_at(c->opts, i);
        int ok = 0;
        for (int k = 0; client_options[k]; k++)
            if (llmc__strcaseeq(n, client_options[k]))
                ok = 1;
        for (int k = 0; llmc__sem_option_names[k]; k++)
            if (llmc__strcaseeq(n, llmc__sem_option_names[k]))
                ok = 1;
        if (!ok && !known_provider_prefix_option(n)) {
            char *names = llmc_registry_names(LLMC_KIND_PROVIDER);
            llmc_err_set(err, LLMC_EINVAL, 0,
                         "client option '%s' is unknown (known: provider, api_key, api_base, "
                         "api_version, timeout_ms, connect_timeout_ms, max_retries, "
                         "retry_base_ms, retry_max_ms, key_strategy, scope_by_user, "
                         "memo_entries, request_credentials, models_only, prices, "
                         "semantic, semantic_*, and <provider>.<name> for providers %s)",
                         n, names ? names : "");
            llmc_free(names);
            llmc_client_free(c);
            return LLMC_EINVAL;
        }
    }
    if ((st = llmc__sem_new(cache, c->opts, &c->sem, err)) != LLMC_OK)
        goto fail;
    int64_t v;
    llmc__http_config *hc = &c->http_cfg;
    if ((st = llmc_options_get_i64(c->opts, "timeout_ms", 0, INT32_MAX, 600000, &v, err)) !=
        LLMC_OK)
        goto fail;
    hc->timeout_ms = v;
    if ((st = llmc_options_get_i64(c->opts, "connect_timeout_ms", 0, INT32_MAX, 10000, &v,
                                   err)) != LLMC_OK)
        goto fail;
    hc->connect_timeout_ms = v;
    if ((st = llmc_options_get_i64(c->opts, "max_retries", 0, 20, 2, &v, err)) != LLMC_OK)
        goto fail;
    hc->max_retries = (int)v;
    if ((st = llmc_options_get_i64(c->opts, "retry_base_ms", 0, 600000, 500, &v, err)) !=
        LLMC_OK)
        goto fail;
    hc->retry_base_ms = v;
    if ((st = llmc_options_get_i64(c->opts, "retry_max_ms", 0, 3600000, 30000, &v, err)) !=
        LLMC_OK)
        goto fail;
    hc->retry_max_ms = v;
    const char *p = llmc_options_get(c->opts, "provider");
    if (p) {
        c->forced = llmc_find_provider(p);
        if (!c->forced) {
            char *names = llmc_registry_names(LLMC_KIND_PROVIDER);
            st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                              "client option provider: '%s' is not a known provider "
                              "(known: %s)",
                              p, names ? names : "");
            llmc_free(names);
            goto fail;
        }
    }
    const char *ks = llmc_options_get(c->opts, "key_strategy");
    if (ks) {
        if (!llmc_find_key_strategy(ks)) {
            st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                              "client option key_strategy: '%s' is not a registered key "
                              "strategy",
                              ks);
            goto fail;
        }
        c->key_strategy = llmc__strdup(ks);
    }
    if (llmc_options_get(c->opts, "scope_by_user")) {
        int b;
        if ((st = llmc_options_get_bool(c->opts, "scope_by_user", 0, &b, err)) != LLMC_OK)
            goto fail;
        c->scope_by_user = b;
    }
    int bv;
    if ((st = llmc_options_get_bool(c->opts, "request_credentials", 1, &bv, err)) != LLMC_OK)
        goto fail;
    c->request_credentials = bv;
    if ((st = llmc_options_get_bool(c->opts, "models_only", 0, &bv, err)) != LLMC_OK)
        goto fail;
    c->models_only = bv;
    if ((st = llmc_options_get_i64(c->opts, "memo_entries", 0, 1 << 20, 1024, &v, err)) !=
        LLMC_OK)
        goto fail;
    if (v > 0 && cache && llmc__memo_new((size_t)v, &c->memo) != LLMC_OK) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto fail;
    }
    /* Without libcurl only local providers (mock) work; the reason is
     * kept for the error of the first network call. */
    llmc_err_clear(&c->http_err);
    if (llmc__http_new(&c->http, &c->http_err) != LLMC_OK)
        c->http = NULL;
    *out = c;
    return LLMC_OK;
fail:
    llmc_client_free(c);
    return st;
}

void llmc_client_free(llmc_client *c)
{
    if (!c)
        return;
    llmc__http_free(c->http);
    llmc__memo_free(c->memo);
    for (size_t i = 0; i < c->n_models; i++) {
        llmc__model *m = &c->models[i];
        free(m->name);
        free(m->target);
        free(m->api_base);
        free(m->api_key);
        free(m->api_version);
    }
    free(c->models);
    llmc_options_free(c->opts);
    free(c->key_strategy);
    llmc__prices_slot_free(&c->prices);
    llmc__sem_free(c->sem);
    free(c);
}

llmc_cache *llmc_client_cache(const llmc_client *c)
{
    return c ? c->cache : NULL;
}

void llmc_client_set_key_fn(llmc_client *c, llmc_key_fn fn, void *ud)
{
    if (!c)
        return;
    c->key_fn = fn;
    c->key_ud = ud;
}

llmc_status llmc_client_add_model(llmc_client *c, const char *name, const char *target,
                                  const char *api_base, const char *api_key,
                                  const char *api_version, llmc_err *err)
{
    if (!c || !name || !*name || !target || !*target)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "llmc_client_add_model: name and target are required");
    if (llmc__client_model(c, name))
        return llmc_err_set(err, LLMC_EEXIST, 0, "model \"%s\" is already listed", name);
    llmc__model *n = realloc(c->models, (c->n_models + 1) * sizeof *n);
    if (!n)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    c->models = n;
    llmc__model *m = &n[c->n_models];
    memset(m, 0, sizeof *m);
    m->name = llmc__strdup(name);
    m->target = llmc__strdup(target);
    m->api_base = api_base ? llmc__strdup(api_base) : NULL;
    m->api_key = api_key ? llmc__strdup(api_key) : NULL;
    m->api_version = api_version ? llmc__strdup(api_version) : NULL;
    c->n_models++;
    if (!m->name || !m->target || (api_base && !m->api_base) || (api_key && !m->api_key) ||
        (api_version && !m->api_version))
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    return LLMC_OK;
}

const llmc__model *llmc__client_model(const llmc_client *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    return NULL;
}

const llmc_key_strategy_ops *llmc__client_key_strategy(const llmc_client *c)
{
    const char *s = c->key_strategy ? c->key_strategy
                                    : (c->cache ? llmc_cache_key_strategy_name(c->cache) : NULL);
    /* Through the registry, as any strategy: what the client uses of it
     * (compute_tokens) is a capability of the table, not of a name. */
    return llmc_find_key_strategy(s ? s : "v1");
}

int llmc__client_scope_by_user(const llmc_client *c)
{
    return c->scope_by_user >= 0 ? c->scope_by_user : (c->cache ? c->cache->scope_by_user : 0);
}

int llmc_client_caching(const llmc_client *c, const llmc_request *r)
{
    return c && r && llmc__caching_on(c, &r->ctl);
}

/* ------------------------------------------------------------------ */
/* The convenience calls. */

static llmc_status call_req(llmc_client *c, llmc_call_type call, const llmc_request *req,
                            llmc_chunk_cb cb, void *ud, llmc_response **out, llmc_err *err)
{
    if (out)
        *out = NULL;
    if (!out && !cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "no place for the response");
    if (!c || !req)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client or request is NULL");
    llmc_call k;
    llmc_status st = llmc__call_prepare_req(&k, c, call, req, NULL, err);
    if (st != LLMC_OK)
        return st;
    st = llmc_call_execute(&k, cb, ud, out, err);
    llmc__call_release(&k);
    return st;
}

static llmc_status call_json(llmc_client *c, llmc_call_type call, const char *json,
                             size_t len, llmc_chunk_cb cb, void *ud, llmc_response **out,
                             llmc_err *err)
{
    if (out)
        *out = NULL;
    if (!out && !cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "no place for the response");
    llmc_call k;
    llmc_status st = llmc__call_prepare_text(&k, c, call, json, len, NULL, err);
    if (st != LLMC_OK)
        return st;
    st = llmc_call_execute(&k, cb, ud, out, err);
    llmc__call_release(&k);
    return st;
}

llmc_status llmc_client_call(llmc_client *c, llmc_call_type call, const llmc_request *req,
                             llmc_chunk_cb cb, void *ud, llmc_response **out, llmc_err *err)
{
    return call_req(c, call, req, cb, ud, out, err);
}

llmc_status llmc_completion(llmc_client *c, const llmc_request *req, llmc_response **out,
                            llmc_err *err)
{
    return call_req(c, LLMC_CALL_CHAT, req, NULL, NULL, out, err);
}

llmc_status llmc_completion_json(llmc_client *c, const char *json, size_t len,
                                 llmc_response **out, llmc_err *err)
{
    return call_json(c, LLMC_CALL_CHAT, json, len, NULL, NULL, out, err);
}

llmc_status llmc_text_completion(llmc_client *c, const llmc_request *req, llmc_response **out,
                                 llmc_err *err)
{
    return call_req(c, LLMC_CALL_TEXT, req, NULL, NULL, out, err);
}

llmc_status llmc_text_completion_json(llmc_client *c, const char *json, size_t len,
                                      llmc_response **out, llmc_err *err)
{
    return call_json(c, LLMC_CALL_TEXT, json, len, NULL, NULL, out, err);
}

llmc_status llmc_embedding(llmc_client *c, const llmc_request *req, llmc_response **out,
                           llmc_err *err)
{
    return call_req(c, LLMC_CALL_EMBEDDING, req, NULL, NULL, out, err);
}

llmc_status llmc_embedding_json(llmc_client *c, const char *json, size_t len,
                                llmc_response **out, llmc_err *err)
{
    return call_json(c, LLMC_CALL_EMBEDDING, json, len, NULL, NULL, out, err);
}

llmc_status llmc_completion_stream(llmc_client *c, const llmc_request *req, llmc_chunk_cb cb,
                                   void *ud, llmc_response **out, llmc_err *err)
{
    if (!cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "stream callback is NULL");
    return call_req(c, LLMC_CALL_CHAT, req, cb, ud, out, err);
}

llmc_status llmc_completion_stream_json(llmc_client *c, const char *json, size_t len,
                                        llmc_chunk_cb cb, void *ud, llmc_response **out,
                                        llmc_err *err)
{
    if (!cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "stream callback is NULL");
    return call_json(c, LLMC_CALL_CHAT, json, len, cb, ud, out, err);
}

llmc_status llmc_client_request_key(llmc_client *c, llmc_call_type call,
                                    const llmc_request *req, size_t item, llmc_buf *key,
                                    llmc_buf *material, llmc_err *err)
{
    return llmc_client_request_key_ex(c, call, req, NULL, item, key, material, err);
}

llmc_status llmc_client_request_key_ex(llmc_client *c, llmc_call_type call,
                                       const llmc_request *req, const llmc_call_opts *opts,
                                       size_t item, llmc_buf *key, llmc_buf *material,
                                       llmc_err *err)
{
    if (!c || !req || !req->obj || !key)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client, request or key buffer is NULL");
    const llmc__calltype *ct = llmc__calltype_of(call);
    if (!ct)
        return llmc_err_set(err, LLMC_EINVAL, 0, "unsupported call type %d", (int)call);
    /* The prepared call's validation and routing; the key is computed
     * here whether or not caching is on, with its material on request. */
    llmc_call *k = NULL;
    llmc_status st = llmc_call_prepare_request(c, call, req, opts, &k, err);
    if (st != LLMC_OK)
        return st;
    llmc__reqview rv;
    memset(&rv, 0, sizeof rv);
    rv.root.o = req->obj;
    llmc__route rt;
    st = llmc__resolve_route(c, ct, &rv, &rt, err);
    json_object *it = NULL;
    if (st == LLMC_OK && ct->per_item) {
        size_t n = llmc_call_item_count(k);
        if (item >= n)
            st = llmc_err_set(err, LLMC_EINVAL, 0, "input item %zu does not exist (%zu items)",
                              item, n);
        else
            it = llmc__embed_item(k, item);
    }
    if (st == LLMC_OK)
        st = llmc__compute_key(c, ct, req->obj, it, &rt, &k->ctl, key, material, err);
    llmc_call_free(k);
    return st;
}
