/* Routing: which provider answers a request, at which endpoint, with
 * which credentials. Reads the request through the value view, so the
 * fast path and the json-c path resolve a model the same way. */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int rv_has(llmc__reqview *rv, const char *name)
{
    llmc__jv v = llmc__jv_member(&rv->root, name);
    return llmc__jv_kind(&v) != JV_ABSENT;
}

/* A string member: NULL when absent or not a string. */
static const char *rv_str(llmc__reqview *rv, const char *name)
{
    llmc__jv v = llmc__jv_member(&rv->root, name);
    if (llmc__jv_kind(&v) != JV_STRING)
        return NULL;
    if (!v.d)
        return json_object_get_string(v.o);
    if (rv->nstr >= LLMC__VIEW_STRS) {
        rv->declined = 1;
        return NULL;
    }
    const char *s = llmc__jv_string(&v, &rv->strs[rv->nstr++], NULL);
    if (!s)
        rv->declined = 1;
    return s;
}

static llmc_status unknown_provider(const char *model, const char *prefix, llmc_err *err)
{
    char *names = llmc_registry_names(LLMC_KIND_PROVIDER);
    llmc_status st;
    if (prefix)
        st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                          "model \"%s\": \"%s\" is not a known provider (known providers: %s)",
                          model, prefix, names ? names : "");
    else
        st = llmc_err_set(err, LLMC_ENOTFOUND, 0,
                          "cannot tell the provider of model \"%s\": write it as "
                          "\"<provider>/%s\" or set the provider option (known providers: %s)",
                          model, model, names ? names : "");
    llmc_free(names);
    return st;
}

static llmc_status set_model(llmc__route *rt, const char *m, llmc_err *err)
{
    size_t n = strlen(m);
    if (n == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" names no model");
    if (n >= sizeof rt->model)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" is too long");
    memcpy(rt->model, m, n + 1);
    return LLMC_OK;
}

static llmc_status resolve_provider(llmc_client *c, llmc__reqview *req, llmc__route *rt,
                                    llmc_err *err)
{
    if (!rv_has(req, "model"))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" is missing");
    const char *model = rt->alias ? rt->alias->target : rv_str(req, "model");
    if (!model)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" must be a string");
    const llmc_provider_ops *forced = c->forced;
    const char *clp = rv_str(req, "custom_llm_provider");
    if (clp) {
        forced = llmc_find_provider(clp);
        if (!forced)
            return unknown_provider(model, clp, err);
    }
    const char *slash = strchr(model, '/');
    if (forced) {
        rt->ops = forced;
        size_t pl = strlen(forced->hdr.name);
        if (slash && (size_t)(slash - model) == pl && strncasecmp(model, forced->hdr.name, pl) == 0)
            model = slash + 1;
        return set_model(rt, model, err);
    }
    if (slash) {
        char prefix[64];
        size_t pl = (size_t)(slash - model);
        if (pl > 0 && pl < sizeof prefix) {
            memcpy(prefix, model, pl);
            prefix[pl] = '\0';
            rt->ops = llmc_find_provider(prefix);
            if (rt->ops)
                return set_model(rt, slash + 1, err);
            return unknown_provider(model, prefix, err);
        }
        return unknown_provider(model, NULL, err);
    }
    rt->ops = llmc_infer_provider(model);
    if (!rt->ops)
        return unknown_provider(model, NULL, err);
    return set_model(rt, model, err);
}

/* listed model's > request field (unless the client ignores them) >
 * "<provider>.<name>" option > "<name>" option > env. */
static const char *setting(llmc_client *c, llmc__reqview *req, const char *listed,
                           const char *field, const char *field2,
                           const llmc_provider_ops *ops, const char *name,
                           const char *const *env)
{
    const char *v = listed;
    if (!v && c->request_credentials) {
        v = rv_str(req, field);
        if (!v && field2)
            v = rv_str(req, field2);
    }
    if (v && *v)
        return v;
    char on[96];
    snprintf(on, sizeof on, "%s.%s", ops->hdr.name, name);
    v = llmc_options_get(c->opts, on);
    if (v && *v)
        return v;
    v = llmc_options_get(c->opts, name);
    if (v && *v)
        return v;
    for (int i = 0; env && env[i]; i++) {
        v = getenv(env[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

/* Base URLs: "host:port" becomes "http://host:port" (OLLAMA_HOST style),
 * trailing slashes go. */
static int normalise_base(const char *in, char *out, size_t outsz)
{
    const char *scheme = strstr(in, "://") ? "" : "http://";
    int n = snprintf(out, outsz, "%s%s", scheme, in);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
    return 0;
}

static llmc_status resolve_endpoint(llmc_client *c, llmc__reqview *req, llmc__route *rt,
                                    llmc_err *err)
{
    const llmc_provider_ops *ops = rt->ops;
    const llmc__model *al = rt->alias;
    const char *b = setting(c, req, al ? al->api_base : NULL, "api_base", "base_url", ops,
                            "api_base", ops->env_api_base);
    if (b) {
        if (normalise_base(b, rt->base, sizeof rt->base) != 0)
            return llmc_err_set(err, LLMC_EINVAL, 0, "%s: api_base is too long",
                                ops->hdr.name);
        rt->api_base = rt->base;
        char def[512];
        if (!ops->default_api_base ||
            normalise_base(ops->default_api_base, def, sizeof def) != 0 ||
            strcmp(def, rt->base) != 0)
            rt->api_base_for_key = rt->base;
    } else if (ops->default_api_base) {
        if (normalise_base(ops->default_api_base, rt->base, sizeof rt->base) != 0)
            return llmc_err_set(err, LLMC_EINVAL, 0, "%s: default api_base too long",
                                ops->hdr.name);
        rt->api_base = rt->base;
    } else if (ops->flags & LLMC_PROVIDER_NEEDS_BASE) {
        const char *ev = ops->env_api_base && ops->env_api_base[0] ? ops->env_api_base[0]
                                                                   : NULL;
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "%s: no api_base configured: set %s%s%s the %s.api_base / "
                            "api_base option or the request's api_base",
                            ops->hdr.name, ev ? "$" : "", ev ? ev : "", ev ? "," : "",
                            ops->hdr.name);
    }
    rt->api_key = setting(c, req, al ? al->api_key : NULL, "api_key", NULL, ops, "api_key",
                          ops->env_api_key);
    rt->api_version = setting(c, req, al ? al->api_version : NULL, "api_version", NULL, ops,
                              "api_version", ops->env_api_version);
    if (!rt->api_version)
        rt->api_version = ops->default_api_version;
    if ((ops->flags & LLMC_PROVIDER_NEEDS_VERSION) && !rt->api_version)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s: no api_version configured",
                            ops->hdr.name);
    return LLMC_OK;
}

/* The provider that claims this request by a member it holds (through
 * the provider table's `claims`, no provider named here), or NULL. */
typedef struct claim_ctx {
    llmc__reqview *req;
    const llmc_provider_ops *found;
} claim_ctx;

static int claim_cb(void *ud, llmc_kind kind, const llmc_component *t, const char *origin)
{
    LLMC_UNUSED(kind);
    LLMC_UNUSED(origin);
    claim_ctx *cc = ud;
    const llmc_provider_ops *ops = (const llmc_provider_ops *)t;
    if (!llmc__provider_has(ops, claims) || !ops->claims)
        return 0;
    for (const char *const *m = ops->claims; *m; m++) {
        if (rv_has(cc->req, *m)) {
            cc->found = ops;
            return 1;
        }
    }
    return 0;
}

static const llmc_provider_ops *claiming_provider(llmc__reqview *req)
{
    claim_ctx cc = {req, NULL};
    llmc_registry_foreach(LLMC_KIND_PROVIDER, claim_cb, &cc);
    return cc.found;
}

llmc_status llmc__resolve_route(llmc_client *c, const llmc__calltype *ct, llmc__reqview *req,
                        llmc__route *rt, llmc_err *err)
{
    memset(rt, 0, sizeof *rt);
    const llmc_provider_ops *claim = claiming_provider(req);
    int mock = claim != NULL;
    if (c->n_models || c->models_only) {
        const char *name = rv_str(req, "model");
        rt->alias = name ? llmc__client_model(c, name) : NULL;
        if (name && !rt->alias && c->models_only && !mock)
            return llmc_err_set(err, LLMC_ENOTFOUND, 0,
                                "The model `%s` does not exist or is not served here", name);
    }
    llmc_status st = resolve_provider(c, req, rt, err);
    if (st != LLMC_OK) {
        /* A claiming provider answers for any model name (LiteLLM's
         * mock_response); the key is then its own. */
        if (!claim || st != LLMC_ENOTFOUND)
            return st;
        rt->ops = claim;
        const char *m = rv_str(req, "model");
        if ((st = set_model(rt, m ? m : claim->hdr.name, err)) != LLMC_OK)
            return st;
    }
    if ((st = resolve_endpoint(c, req, rt, err)) != LLMC_OK)
        return st;
    rt->exec = claim ? claim : rt->ops;
    if (!(rt->exec->flags & ct->provider_flag))
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "%s does not support %s calls",
                            rt->exec->hdr.name, ct->what);
    return LLMC_OK;
}
