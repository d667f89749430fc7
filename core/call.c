/* The prepared call: prepare -> lookup -> execute -> free, for every
 * caller (the convenience functions, the command, the proxy).
 *
 * Prepare reads a request once: from the memo when the exact text was
 * prepared before, else from the fast path's tokens, else from a json-c
 * parse (when the tokens cannot be read exactly as json-c would read
 * them, or the key strategy cannot key tokens). Whichever form it read,
 * the same functions apply the same rules: llmc__read_controls, the
 * call-type row's validation, llmc__route, the key strategy. The key is
 * computed once, here; lookup uses it, execute stores under it. */
#include "client_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Per-thread scratch: a lookup whose buffers keep their capacity, the
 * strings routing decodes from tokens. Freed when the thread ends. */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *p)
{
    llmc__scratch *t = p;
    llmc_lookup_free(&t->lookup);
    for (int i = 0; i < LLMC__VIEW_STRS; i++)
        llmc_buf_free(&t->strs[i]);
    free(t);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_destroy);
}

llmc__scratch *llmc__scratch_get(void)
{
    pthread_once(&scratch_once, scratch_init);
    llmc__scratch *t = pthread_getspecific(scratch_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        llmc_lookup init = LLMC_LOOKUP_INIT;
        t->lookup = init;
        if (pthread_setspecific(scratch_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    return t;
}


llmc_lookup *llmc__thread_lookup(void)
{
    llmc__scratch *t = llmc__scratch_get();
    if (!t)
        return NULL;
    llmc_buf_clear(&t->lookup.raw);
    llmc_buf_clear(&t->lookup.scratch);
    memset(&t->lookup.entry, 0, sizeof t->lookup.entry);
    t->lookup.age_ms = 0;
    t->lookup.stale_ms = 0;
    return &t->lookup;
}

static uint64_t fast_hits;

uint64_t llmc__client_fast_hits(void)
{
    return __atomic_load_n(&fast_hits, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------------ */
/* Keys. */

int llmc__caching_on(const llmc_client *c, const llmc__controls *ctl)
{
    if (!c->cache)
        return 0;
    if (llmc_cache_get_mode(c->cache) == LLMC_MODE_DEFAULT_OFF)
        return ctl->use_cache == 1;
    return ctl->use_cache != 0;
}

static const char *strategy_name(const llmc_client *c)
{
    return c->key_strategy ? c->key_strategy
                           : (c->cache ? llmc_cache_key_strategy_name(c->cache) : NULL);
}

/* The namespace a computed key goes into. A tenant's call nests the
 * namespace it asks for inside the tenant's ("tenant:sub", by
 * llmc_namespace_resolve; names hold no ':', so the first ':' is always
 * the tenant boundary) and never uses the cache's own. NULL with
 * *failed set when out of memory. */
static const char *key_namespace(const llmc_client *c, const llmc__controls *ctl, llmc_buf *tmp,
                                 int *failed)
{
    *failed = 0;
    if (ctl->tenant) {
        if (llmc_namespace_resolve(ctl->tenant, ctl->ns, tmp, NULL) != LLMC_OK) {
            *failed = 1;
            return NULL;
        }
        return tmp->data;
    }
    return ctl->ns ? ctl->ns : (c->cache ? llmc_cache_namespace(c->cache) : NULL);
}

/* The last step of every key a call reads or writes: a tenant's keys
 * start with "tenant:", whatever built them (a preset key, a key
 * function, a strategy that ignores the namespace). */
static llmc_status confine_key(const llmc__controls *ctl, llmc_buf *key, llmc_err *err)
{
    if (!ctl->tenant)
        return LLMC_OK;
    size_t tl = strlen(ctl->tenant);
    if (key->len > tl && memcmp(key->data, ctl->tenant, tl) == 0 && key->data[tl] == ':')
        return LLMC_OK;
    llmc_buf k = LLMC_BUF_INIT;
    if (llmc_buf_printf(&k, "%s:", ctl->tenant) != LLMC_OK ||
        llmc_buf_append(&k, key->data, key->len) != LLMC_OK) {
        llmc_buf_free(&k);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_buf_free(key);
    *key = k;
    return LLMC_OK;
}

/* A preset key: as given, or for a tenant "tenant:key=<preset>" (no
 * namespace holds '=', so it never equals a computed key, and whatever
 * the preset says it stays in the tenant's space). */
static llmc_status preset_key(const llmc__controls *ctl, llmc_buf *key, llmc_err *err)
{
    llmc_status st = ctl->tenant ? llmc_buf_printf(key, "%s:key=%s", ctl->tenant, ctl->key)
                                 : llmc_buf_puts(key, ctl->key);
    return st == LLMC_OK ? confine_key(ctl, key, err)
                         : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
}

static void key_input(llmc_client *c, const llmc__calltype *ct, json_object *req,
                      json_object *item, const llmc__route *rt, const char *ns,
                      llmc_key_input *in)
{
    memset(in, 0, sizeof *in);
    in->struct_size = sizeof *in;
    in->call = ct->type;
    in->provider = rt->ops->hdr.name;
    in->model = rt->model;
    in->api_base = rt->api_base_for_key;
    in->request = req;
    in->input_item = item;
    in->namespace_ = ns;
    in->scope_by_user = c->scope_by_user >= 0 ? c->scope_by_user
                                              : (c->cache ? c->cache->scope_by_user : 0);
}

llmc_status llmc__compute_key(llmc_client *c, const llmc__calltype *ct, json_object *req,
                              json_object *item, const llmc__route *rt,
                              const llmc__controls *ctl, llmc_buf *key, llmc_buf *material,
                              llmc_err *err)
{
    llmc_buf_clear(key);
    if (ctl->key && item == NULL)
        return preset_key(ctl, key, err);
    llmc_buf nsbuf = LLMC_BUF_INIT;
    int failed;
    const char *ns = key_namespace(c, ctl, &nsbuf, &failed);
    if (failed) {
        llmc_buf_free(&nsbuf);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    json_object *kreq = NULL;
    if (ct->key_request && !item) {
        llmc_status kst = ct->key_request(req, ctl, &kreq, err);
        if (kst != LLMC_OK) {
            llmc_buf_free(&nsbuf);
            return kst;
        }
        req = kreq;
    }
    llmc_key_input in;
    key_input(c, ct, req, item, rt, ns, &in);
    if (c->key_fn) {
        llmc_status st = c->key_fn(c->key_ud, &in, key);
        llmc_buf_free(&nsbuf);
        json_object_put(kreq);
        if (st != LLMC_OK)
            return llmc_err_set(err, st, 0, "custom key function failed: %s",
                                llmc_strerror(st));
        if (key->len == 0)
            return llmc_err_set(err, LLMC_EINVAL, 0, "custom key function gave an empty key");
        return confine_key(ctl, key, err);
    }
    llmc_status st = llmc_key_compute(strategy_name(c), &in, key, material, err);
    llmc_buf_free(&nsbuf);
    json_object_put(kreq);
    if (st == LLMC_OK && ctl->key && item) {
        /* A preset key for an embedding call prefixes each item's key
         * (inside the tenant's space, as the preset itself). */
        llmc_buf k2 = LLMC_BUF_INIT;
        if (preset_key(ctl, &k2, err) != LLMC_OK || llmc_buf_puts(&k2, ":") != LLMC_OK ||
            llmc_buf_append(&k2, key->data, key->len) != LLMC_OK) {
            llmc_buf_free(&k2);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        llmc_buf_free(key);
        *key = k2;
    }
    return st == LLMC_OK ? confine_key(ctl, key, err) : st;
}

/* The key from tokens, when the strategy has that capability. LLMC_OK,
 * LLMC_ENOTSUP (parse and key the object instead), or an error. */
static llmc_status key_from_tokens(llmc_call *k, const llmc__fjdoc *d, const llmc__route *rt,
                                   llmc_err *err)
{
    llmc_client *c = k->c;
    if (k->ctl.key)
        return preset_key(&k->ctl, &k->key, err);
    if (c->key_fn)
        return LLMC_ENOTSUP;
    const llmc_key_strategy_ops *ks = llmc__client_key_strategy(c);
    if (!ks || !LLMC_HAS_MEMBER(llmc_key_strategy_ops, ks, compute_tokens) || !ks->compute_tokens)
        return LLMC_ENOTSUP;
    llmc_buf nsbuf = LLMC_BUF_INIT;
    int failed;
    const char *ns = key_namespace(c, &k->ctl, &nsbuf, &failed);
    if (failed) {
        llmc_buf_free(&nsbuf);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    llmc_key_input in;
    key_input(c, k->ct, NULL, NULL, rt, ns, &in);
    llmc_err kerr;
    llmc_status st = ks->compute_tokens(&in, (const llmc_key_tokens *)d, &k->key, NULL, &kerr);
    llmc_buf_free(&nsbuf);
    if (st != LLMC_OK) {
        llmc_buf_clear(&k->key);
        /* Declined, or failed: the object form says which. */
        return LLMC_ENOTSUP;
    }
    return confine_key(&k->ctl, &k->key, err);
}

/* ------------------------------------------------------------------ */
/* Prepare. */

/* API headers given for a call type that does not read them would be
 * dropped from the key and the upstream request: refused by name. */
static llmc_status check_api_headers(const llmc__calltype *ct, const char *const *h,
                                     llmc_err *err)
{
    for (size_t i = 0; h && h[i]; i += 2) {
        int known = 0;
        for (const char *const *n = ct->headers; n && *n && !known; n++)
            known = strcasecmp(*n, h[i]) == 0;
        if (!known)
            return llmc_err_set(err, LLMC_EINVAL, 0, "header %s is not part of a %s request",
                                h[i], ct->what);
        if (!h[i + 1])
            return llmc_err_set(err, LLMC_EINVAL, 0, "header %s has no value", h[i]);
    }
    return LLMC_OK;
}

static llmc_status validate(const llmc__calltype *ct, const llmc__jv *root, llmc_err *err)
{
    llmc__jv m = llmc__jv_member(root, "model");
    if (llmc__jv_kind(&m) == JV_ABSENT)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" is missing");
    if (llmc__jv_kind(&m) != JV_STRING)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" must be a string");
    return ct->validate(root, err);
}

/* Prepare from a view of the request (tokens or object). With tokens,
 * LLMC_ENOTSUP means: read it again from a json-c parse. `body` receives
 * the body's own controls (for the memo) before the outer ones apply. */
static llmc_status prepare_view(llmc_call *k, const llmc__jv *root, const llmc__outer *oc,
                                llmc__controls *body, llmc_err *err)
{
    llmc_client *c = k->c;
    llmc_status st;
    if (!body) {
        /* llmc_request: controls already read when it was built. */
    } else {
        llmc__controls_init(&k->ctl);
        if ((st = llmc__read_controls(root, &k->ctl, err)) != LLMC_OK)
            return st;
        *body = k->ctl;
    }
    if (llmc__apply_outer(&k->ctl, oc) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    k->stream = llmc__wants_stream(root);
    if ((st = validate(k->ct, root, err)) != LLMC_OK)
        return st;
    llmc__scratch *ts = llmc__scratch_get();
    if (!ts)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc__reqview rv;
    memset(&rv, 0, sizeof rv);
    rv.root = *root;
    rv.strs = ts->strs;
    llmc__route rt;
    st = llmc__resolve_route(c, k->ct, &rv, &rt, err);
    if (rv.declined)
        return LLMC_ENOTSUP;
    if (st != LLMC_OK)
        return st;
    k->ops = rt.ops;
    memcpy(k->model, rt.model, sizeof k->model);
    k->caching = llmc__caching_on(c, &k->ctl);
    if (k->ct->never_cached && (k->bypass = k->ct->never_cached(root)) != NULL)
        k->caching = 0;
    if (root->d) {
        if (k->ct->per_item || k->ct->key_request)
            return LLMC_ENOTSUP;
        if (!k->caching)
            return LLMC_OK;
        st = key_from_tokens(k, root->d, &rt, err);
    } else if (k->ct->per_item) {
        st = llmc__embed_prepare(k, &rt, err);
    } else if (!k->caching) {
        return LLMC_OK;
    } else {
        st = llmc__compute_key(c, k->ct, k->obj, NULL, &rt, &k->ctl, &k->key, NULL, err);
    }
    if (st == LLMC_OK && k->key.data) {
        k->kp = k->key.data;
        k->kl = k->key.len;
    }
    return st;
}

static void call_init(llmc_call *k, llmc_client *c, const llmc__calltype *ct)
{
    /* The arrays (model, inline key) are written before they are read:
     * only the scalar head needs clearing. */
    memset(k, 0, offsetof(llmc_call, model));
    k->c = c;
    k->ct = ct;
    llmc__controls_init(&k->ctl);
    llmc_buf init = LLMC_BUF_INIT;
    k->key = init;
    k->kp = NULL;
    k->kl = 0;
    k->looked_up = k->fast = k->memo = k->read_failed = 0;
    k->lease_token[0] = '\0';
    k->bypass = NULL;
    k->emb = NULL;
    k->stale = NULL;
    k->serving_stale = 0;
    k->sem = NULL;
    k->model[0] = '\0';
}

/* Forget what a declined token reading left behind. */
static void call_reset(llmc_call *k)
{
    llmc__controls_free(&k->ctl);
    llmc_buf_clear(&k->key);
    k->kp = NULL;
    k->kl = 0;
    k->caching = 0;
    k->stream = 0;
    k->ops = NULL;
    k->bypass = NULL;
}

/* Prepare into caller-provided storage (the convenience calls keep the
 * call on their stack). On failure k holds nothing to release. */
llmc_status llmc__call_prepare_text(llmc_call *k, llmc_client *c, llmc_call_type type,
                                    const char *json, size_t len, const llmc_call_opts *opts,
                                    llmc_err *err)
{
    if (err)
        llmc_err_clear(err);
    if (!c)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client is NULL");
    const llmc__calltype *ct = llmc__calltype_of(type);
    if (!ct)
        return llmc_err_set(err, LLMC_EINVAL, 0, "unsupported call type %d", (int)type);
    if (!json)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request JSON is NULL");
    if (len == LLMC_ZSTR)
        len = strlen(json);
    llmc__outer oc;
    llmc_status st;
    if ((st = llmc__read_outer(opts, &oc, err)) != LLMC_OK ||
        (st = check_api_headers(ct, oc.api_headers, err)) != LLMC_OK)
        return st;
    call_init(k, c, ct);
    k->text = json;
    k->len = len;
    int memoable = c->memo && !c->key_fn && !ct->per_item && len <= LLMC__MEMO_MAX_TEXT &&
                   !c->sem; /* a semantic step needs the controls the memo drops */
    /* The memo's salt: what outside the text the key depends on. */
    char saltbuf[512];
    const char *salt = NULL;
    if (oc.ns || oc.tenant || oc.api_headers) {
        int n = snprintf(saltbuf, sizeof saltbuf, "%s\001%s", oc.tenant ? oc.tenant : "",
                         oc.ns ? oc.ns : "");
        /* The API headers are part of the key. */
        for (size_t i = 0; oc.api_headers && oc.api_headers[i] && n >= 0 &&
                           (size_t)n < sizeof saltbuf; i++)
            n += snprintf(saltbuf + n, sizeof saltbuf - (size_t)n, "\001%s", oc.api_headers[i]);
        if (n < 0 || (size_t)n >= sizeof saltbuf)
            memoable = 0;
        salt = saltbuf;
    }

    /* 1. The memo: this exact text was prepared before. */
    llmc__memo_val mv;
    if (memoable && llmc__memo_get(c->memo, type, json, len, salt, &mv, k->kin, k->model)) {
        k->memo = 1;
        k->ops = mv.ops;
        k->ctl.no_cache = mv.no_cache;
        k->ctl.no_store = mv.no_store;
        k->ctl.ttl_ms = mv.ttl_ms;
        k->ctl.max_age_ms = mv.max_age_ms;
        k->ctl.sie_ms = mv.sie_ms;
        k->ctl.swr_ms = mv.swr_ms;
        k->stream = mv.stream;
        k->caching = 1;
        k->kp = k->kin;
        k->kl = mv.klen;
        /* The namespace and tenant are in the memoised key already. */
        llmc__outer scalars = oc;
        scalars.ns = scalars.tenant = NULL;
        if (llmc__apply_outer(&k->ctl, &scalars) != LLMC_OK) {
            llmc__call_release(k);
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        }
        return LLMC_OK;
    }

    /* 2. Tokens, 3. a json-c parse: the same rules over either form. */
    llmc__controls body;
    llmc__controls_init(&body);
    st = LLMC_ENOTSUP;
    llmc__fjdoc *d = ct->per_item || len > INT32_MAX ? NULL : llmc__fj_thread_doc();
    if (d && llmc__fj_parse(d, json, len)) {
        llmc__jv root;
        memset(&root, 0, sizeof root);
        root.d = d;
        root.i = 0;
        st = prepare_view(k, &root, &oc, &body, err);
        if (st == LLMC_OK)
            k->fast = 1;
        else if (st == LLMC_ENOTSUP)
            call_reset(k);
    }
    if (st == LLMC_ENOTSUP) {
        if (err)
            llmc_err_clear(err);
        st = llmc__parse_request_text(json, len, &k->obj, err);
        if (st == LLMC_OK) {
            k->obj_owned = 1;
            llmc__jv root;
            memset(&root, 0, sizeof root);
            root.o = k->obj;
            st = prepare_view(k, &root, &oc, &body, err);
        }
    }
    if (st != LLMC_OK) {
        llmc__call_release(k);
        return st;
    }
    if (memoable && k->caching && k->kl < LLMC__MEMO_MAX_KEY &&
        strlen(k->model) < LLMC__MEMO_MAX_MODEL) {
        memset(&mv, 0, sizeof mv);
        mv.ops = k->ops;
        mv.no_cache = body.no_cache;
        mv.no_store = body.no_store;
        mv.ttl_ms = body.ttl_ms;
        mv.max_age_ms = body.max_age_ms;
        mv.sie_ms = body.sie_ms;
        mv.swr_ms = body.swr_ms;
        mv.stream = k->stream;
        memcpy(mv.key, k->kp, k->kl + 1);
        mv.klen = k->kl;
        memcpy(mv.model, k->model, sizeof mv.model);
        llmc__memo_put(c->memo, type, json, len, salt, &mv);
    }
    return LLMC_OK;
}

llmc_status llmc_call_prepare(llmc_client *c, llmc_call_type type, const char *json,
                              size_t len, const llmc_call_opts *opts, llmc_call **out,
                              llmc_err *err)
{
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_call_prepare: out is NULL");
    *out = NULL;
    llmc_call *k = malloc(sizeof *k);
    if (!k)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__call_prepare_text(k, c, type, json, len, opts, err);
    if (st != LLMC_OK) {
        free(k);
        return st;
    }
    *out = k;
    return LLMC_OK;
}

llmc_status llmc__call_prepare_req(llmc_call *k, llmc_client *c, llmc_call_type type,
                                   const llmc_request *req, const llmc_call_opts *opts,
                                   llmc_err *err)
{
    if (err)
        llmc_err_clear(err);
    if (!c)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client is NULL");
    const llmc__calltype *ct = llmc__calltype_of(type);
    if (!ct)
        return llmc_err_set(err, LLMC_EINVAL, 0, "unsupported call type %d", (int)type);
    if (!req || !req->obj)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request is NULL");
    llmc__outer oc;
    llmc_status st;
    if ((st = llmc__read_outer(opts, &oc, err)) != LLMC_OK ||
        (st = check_api_headers(ct, oc.api_headers, err)) != LLMC_OK)
        return st;
    call_init(k, c, ct);
    k->obj = req->obj; /* borrowed: the request outlives the call */
    if (llmc__controls_copy(&k->ctl, &req->ctl) != LLMC_OK)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc__jv root;
    memset(&root, 0, sizeof root);
    root.o = k->obj;
    st = prepare_view(k, &root, &oc, NULL, err);
    if (st != LLMC_OK)
        llmc__call_release(k);
    return st;
}

llmc_status llmc_call_prepare_request(llmc_client *c, llmc_call_type type,
                                      const llmc_request *req, const llmc_call_opts *opts,
                                      llmc_call **out, llmc_err *err)
{
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_call_prepare_request: out is NULL");
    *out = NULL;
    llmc_call *k = malloc(sizeof *k);
    if (!k)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = llmc__call_prepare_req(k, c, type, req, opts, err);
    if (st != LLMC_OK) {
        free(k);
        return st;
    }
    *out = k;
    return LLMC_OK;
}

void llmc__call_release(llmc_call *k)
{
    if (k->obj_owned && k->obj)
        json_object_put(k->obj);
    k->obj = NULL;
    k->obj_owned = 0;
    llmc__controls_free(&k->ctl);
    llmc_buf_free(&k->key);
    llmc__embed_free(k->emb);
    k->emb = NULL;
    llmc_response_free(k->stale);
    k->stale = NULL;
    llmc__semcall_free(k->sem);
    k->sem = NULL;
}

void llmc_call_free(llmc_call *k)
{
    if (!k)
        return;
    llmc__call_release(k);
    free(k);
}

/* ------------------------------------------------------------------ */
/* Lookup. */

llmc_status llmc_call_lookup(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **out,
                             llmc_err *err)
{
    if (out)
        *out = NULL;
    if (err)
        llmc_err_clear(err);
    if (!k)
        return llmc_err_set(err, LLMC_EINVAL, 0, "call is NULL");
    if (cb && !k->ct->streams)
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "%s calls are not streamed", k->ct->name);
    k->looked_up = 1;
    if (k->stale) {
        llmc_response_free(k->stale); /* looked up again: the newer one counts */
        k->stale = NULL;
    }
    if (!k->caching || k->ctl.no_cache)
        return LLMC_MISS;
    if (k->ct->per_item) {
        llmc_response *r = NULL;
        llmc_status st = llmc__embed_lookup(k, &r, err);
        if (st == LLMC_OK && out)
            *out = r;
        else
            llmc_response_free(r);
        return st;
    }
    llmc_lookup *lk = llmc__thread_lookup();
    if (!lk)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status gs = llmc_cache_get_entry(k->c->cache, k->kp, k->kl, k->ctl.max_age_ms,
                                          LLMC_ENTRY_SOFT | LLMC_ENTRY_REPORT |
                                              llmc__stale_lookup_flags(k),
                                          lk);
    if (gs != LLMC_OK && gs != LLMC_MISS)
        k->read_failed = 1;
    if (gs != LLMC_OK || lk->entry.call != k->ct->type ||
        !llmc__body_is_object(lk->entry.body, lk->entry.body_len))
        return llmc__semantic_lookup(k, cb, ud, out, err); /* exact: absent, failed, another
                                                             call type, or not ours */
    llmc_response *r = llmc__response_hit(lk->entry.body, lk->entry.body_len, k->kp, k->kl,
                                          k->model, k->ops->hdr.name, lk->age_ms);
    if (!r)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    r->client = k->c;
    r->upstream_ms = lk->entry.upstream_ms;
    r->call = k->ct->type;
    if (lk->stale_ms > 0 && llmc__stale_found(k, lk, r) != LLMC_OK)
        return llmc__semantic_lookup(k, cb, ud, out, err); /* stale: kept for a provider
                                                             failure, or too stale */
    if (k->fast)
        __atomic_fetch_add(&fast_hits, 1, __ATOMIC_RELAXED);
    llmc_status st = LLMC_OK;
    if (cb) {
        json_object *ro = llmc_response_json(r);
        st = ro ? llmc__replay_as(k->ct->type, ro, cb, ud, err)
                : llmc_err_set(err, LLMC_ECORRUPT, 0, "cached response unreadable");
    }
    if (st != LLMC_OK || !out)
        llmc_response_free(r);
    else
        *out = r;
    return st;
}

/* ------------------------------------------------------------------ */
/* Execute. */

int64_t llmc__upstream_ms_since(uint64_t t0)
{
    int64_t ms = (int64_t)((llmc_mono_ns() - t0) / 1000000u);
    return ms < 1 ? 1 : ms;
}

/* The parsed request and its route, for going upstream. A call prepared
 * from the memo or from tokens parses here, once, only on a miss; its key
 * is not computed again. */
static llmc_status upstream_route(llmc_call *k, llmc__route *rt, llmc_err *err)
{
    llmc_status st;
    if (!k->obj) {
        if ((st = llmc__parse_request_text(k->text, k->len, &k->obj, err)) != LLMC_OK)
            return st;
        k->obj_owned = 1;
    }
    llmc__reqview rv;
    memset(&rv, 0, sizeof rv);
    rv.root.o = k->obj;
    return llmc__resolve_route(k->c, k->ct, &rv, rt, err);
}

llmc_status llmc_call_execute(llmc_call *k, llmc_chunk_cb cb, void *ud, llmc_response **out,
                              llmc_err *err)
{
    llmc_response *dummy = NULL;
    llmc_response **o = out ? out : &dummy;
    *o = NULL;
    if (err)
        llmc_err_clear(err);
    if (!k)
        return llmc_err_set(err, LLMC_EINVAL, 0, "call is NULL");
    if (!out && !cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "no place for the response");
    if (cb && !k->ct->streams)
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "%s calls are not streamed", k->ct->name);
    llmc_status st;
    if (!k->looked_up) {
        st = llmc_call_lookup(k, cb, ud, o, err);
        if (st != LLMC_MISS)
            goto done;
        if (err)
            llmc_err_clear(err);
    }
    if ((st = llmc__call_coalesce(k, cb, ud, o, err)) != LLMC_MISS)
        goto done;
    if (err)
        llmc_err_clear(err);
    llmc__route rt;
    if ((st = upstream_route(k, &rt, err)) != LLMC_OK)
        goto done;
    if (k->ct->per_item) {
        st = llmc__embed_execute(k, &rt, o, err);
        goto done;
    }
    json_object *resp = NULL;
    int attempts = 0;
    /* With a stale answer in reserve, count what a stream delivered. */
    llmc__stale_tap tap = {cb, ud, 0};
    int tapped = cb && k->stale;
    uint64_t t0 = llmc_mono_ns();
    llmc_chunk_cb ucb = tapped ? llmc__stale_tap_cb : cb;
    void *uud = tapped ? (void *)&tap : ud;
    rt.api_headers = (const char *const *)k->ctl.api_headers;
    st = k->ct->upstream
             ? k->ct->upstream(k->c, k->obj, &rt, ucb, uud, &resp, &attempts, err)
             : llmc__call_upstream(k->c, k->ct->type, k->obj, NULL, &rt, ucb, uud, &resp,
                                   &attempts, err);
    int64_t upstream_ms = llmc__upstream_ms_since(t0);
    if (st != LLMC_OK) {
        if (k->stale)
            st = llmc__stale_fallback(k, st, cb, ud, tap.n, o, err);
        goto done;
    }
    /* A "cache" member from upstream (another cache in front of the
     * provider) must not be stored or it would be duplicated on a hit. */
    json_object_object_del(resp, "cache");
    llmc_response *r = NULL;
    st = llmc__response_from_obj(resp, k->caching ? k->kp : NULL, k->model,
                                 k->ops->hdr.name, &r, err);
    if (st == LLMC_OK) {
        r->attempts = attempts;
        r->call = k->ct->type;
        /* A stream is complete only when the provider said each choice
         * finished; an end marker alone is not enough. */
        int storable = k->ct->storable ? k->ct->storable(resp, cb != NULL)
                                         : llmc__response_storable(k->ct->type, resp) &&
                                               (!cb || llmc__response_finished(resp));
        if (k->caching && !k->ctl.no_store && storable) {
            if (k->read_failed)
                llmc__store_skipped(k->c->cache);
            else
                llmc__put_entry_kept(k->c->cache, k->kp, k->kl, k->ct->type, r->text,
                                     r->text_len, k->ctl.ttl_ms, llmc__stale_keep_ms(k),
                                     upstream_ms, LLMC_ENTRY_SOFT, &r->stored);
            llmc__semantic_stored(k, r);
        }
        *o = r;
    }
    json_object_put(resp);
done:
    llmc__call_coalesce_done(k);
    if (!out) {
        llmc_response_free(dummy);
        *o = NULL;
    }
    return st;
}

/* ------------------------------------------------------------------ */
/* What a prepared call resolved to. */

const char *llmc_call_key(const llmc_call *k)
{
    return k && k->caching && k->kl ? k->kp : NULL;
}

const char *llmc_call_id(const llmc_call *k)
{
    if (!k || !k->caching)
        return NULL;
    if (k->ct->per_item)
        return llmc__embed_key(k, (size_t)-1);
    return k->kl ? k->kp : NULL;
}

size_t llmc_call_item_count(const llmc_call *k)
{
    if (!k)
        return 0;
    return k->ct->per_item ? llmc__embed_count(k) : 1;
}

const char *llmc_call_item_key(const llmc_call *k, size_t i)
{
    if (!k || !k->caching)
        return NULL;
    if (k->ct->per_item)
        return llmc__embed_key(k, i);
    return i == 0 && k->kl ? k->kp : NULL;
}

int llmc_call_caching(const llmc_call *k)
{
    return k ? k->caching : 0;
}

int llmc_call_reads_cache(const llmc_call *k)
{
    return k && k->caching && !k->ctl.no_cache;
}

int llmc_call_stores(const llmc_call *k)
{
    return k && k->caching && !k->ctl.no_store;
}

const char *llmc_call_bypass_reason(const llmc_call *k)
{
    return k ? k->bypass : NULL;
}

int llmc_call_wants_stream(const llmc_call *k)
{
    return k ? k->stream : 0;
}

llmc_call_type llmc_call_kind(const llmc_call *k)
{
    return k ? k->ct->type : LLMC_CALL_RAW;
}

const char *llmc_call_provider(const llmc_call *k)
{
    return k && k->ops ? k->ops->hdr.name : NULL;
}

const char *llmc_call_model(const llmc_call *k)
{
    return k ? k->model : NULL;
}

int llmc_call_stale(const llmc_call *k)
{
    return k ? k->serving_stale : 0;
}

int64_t llmc_call_stale_age_ms(const llmc_call *k)
{
    return k && k->serving_stale ? k->stale_age_ms : -1;
}

int64_t llmc_call_ttl_ms(const llmc_call *k)
{
    return k ? k->ctl.ttl_ms : LLMC_TTL_DEFAULT;
}
