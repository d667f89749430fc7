/* The caching completion client: routing, credentials, cache controls,
 * keys, lookups, upstream calls through the provider adapters, streams
 * and embeddings.
 *
 * The hit path is kept short because it is the product: the request text
 * is parsed once, the key computed from that parse, the entry fetched,
 * and the response text produced by splicing `"cache":true,` after the
 * stored body's opening brace. The body is parsed only if the caller asks
 * for a json_object (or a stream replay needs it). A request text seen
 * before skips even the parse and the key computation (the request memo,
 * see struct memo). */
#include "internal.h"
#include "canon.h"
#include "fastjson.h"
#include "jsontext.h"
#include "net.h"

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ------------------------------------------------------------------ */
/* Types. */

typedef struct controls {
    int no_cache;
    int no_store;
    int64_t ttl_ms;      /* LLMC_TTL_DEFAULT, 0 = never, > 0 */
    int64_t max_age_ms;  /* -1 = any */
    char *ns;            /* owned */
    int use_cache;       /* -1 unset, 0, 1 */
    char *key;           /* owned preset key */
} controls;

struct llmc_request {
    json_object *obj;
    controls ctl;
};

/* The request memo: exact request text -> the key and routing it
 * resolved to, so that a repeated request (the common hit) skips parsing
 * and key computation, like a prepared-statement cache. It is exact: the
 * whole text is compared byte for byte, and everything else the key
 * depends on is either immutable for the client (options, cache, key
 * strategy) or re-checked (the provider's api_base environment
 * variables). A request that differs in any byte, even whitespace, takes
 * the parse path and still hits the cache. */
#define MEMO_STRIPES 16
#define MEMO_MAX_KEY 256
#define MEMO_MAX_MODEL 256
#define MEMO_MAX_TEXT (64 * 1024) /* bigger requests are not memoised */

typedef struct memo_slot {
    uint64_t h;
    char *text;
    size_t len;
    llmc_call_type call;
    uint64_t env_stamp;
    const llmc_provider_ops *ops;
    int64_t max_age_ms;
    char key[MEMO_MAX_KEY];
    size_t klen;
    char model[MEMO_MAX_MODEL];
} memo_slot;

typedef struct memo {
    size_t n;
    memo_slot *slots;
    pthread_mutex_t locks[MEMO_STRIPES];
} memo;

struct llmc_client {
    llmc_cache *cache;
    memo *memo;                /* NULL when disabled or no cache */
    llmc_options *opts;
    llmc__http *http;          /* NULL when libcurl is not built in */
    llmc_err http_err;         /* why http is NULL */
    llmc__http_config http_cfg;
    const llmc_provider_ops *forced;
    char *key_strategy;        /* NULL = the cache's */
    int scope_by_user;         /* -1 = the cache's */
    llmc_key_fn key_fn;
    void *key_ud;
};

struct llmc_response {
    char *text;
    size_t text_len;
    json_object *json;         /* lazily parsed on hits */
    char *key;
    int hit;
    int stored;
    int64_t age_ms;
    const char *provider;      /* static (registry table) */
    char *model;
    int attempts;
    size_t n_items;
    char **item_keys;
    unsigned char *item_hits;
};

/* ------------------------------------------------------------------ */
/* Small helpers. */

static const char *jstr(json_object *o, const char *name)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

static void controls_init(controls *c)
{
    memset(c, 0, sizeof *c);
    c->ttl_ms = LLMC_TTL_DEFAULT;
    c->max_age_ms = -1;
    c->use_cache = -1;
}

static void controls_free(controls *c)
{
    free(c->ns);
    free(c->key);
    controls_init(c);
}

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
    "memo_entries", NULL,
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
    /* Unknown options are errors, not silently ignored settings. */
    for (size_t i = 0; i < llmc_options_count(c->opts); i++) {
        const char *n = llmc_options_name_at(c->opts, i);
        int ok = 0;
        for (int k = 0; client_options[k]; k++)
            if (llmc__strcaseeq(n, client_options[k]))
                ok = 1;
        if (!ok && !known_provider_prefix_option(n)) {
            char *names = llmc_registry_names(LLMC_KIND_PROVIDER);
            llmc_err_set(err, LLMC_EINVAL, 0,
                         "client option '%s' is unknown (known: provider, api_key, api_base, "
                         "api_version, timeout_ms, connect_timeout_ms, max_retries, "
                         "retry_base_ms, retry_max_ms, key_strategy, scope_by_user, "
                         "memo_entries, and "
                         "<provider>.<name> for providers %s)",
                         n, names ? names : "");
            llmc_free(names);
            llmc_client_free(c);
            return LLMC_EINVAL;
        }
    }
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
    if ((st = llmc_options_get_i64(c->opts, "memo_entries", 0, 1 << 20, 1024, &v, err)) !=
        LLMC_OK)
        goto fail;
    if (v > 0 && cache) {
        c->memo = calloc(1, sizeof *c->memo);
        if (c->memo)
            c->memo->slots = calloc((size_t)v, sizeof *c->memo->slots);
        if (!c->memo || !c->memo->slots) {
            st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            goto fail;
        }
        c->memo->n = (size_t)v;
        for (int i = 0; i < MEMO_STRIPES; i++)
            pthread_mutex_init(&c->memo->locks[i], NULL);
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
    if (c->memo) {
        for (size_t i = 0; c->memo->slots && i < c->memo->n; i++)
            free(c->memo->slots[i].text);
        free(c->memo->slots);
        for (int i = 0; i < MEMO_STRIPES && c->memo->slots; i++)
            pthread_mutex_destroy(&c->memo->locks[i]);
        free(c->memo);
    }
    llmc_options_free(c->opts);
    free(c->key_strategy);
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

/* ------------------------------------------------------------------ */
/* Requests. */

llmc_request *llmc_request_new(const char *model)
{
    llmc_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    controls_init(&r->ctl);
    r->obj = json_object_new_object();
    if (!r->obj) {
        free(r);
        return NULL;
    }
    if (model)
        json_object_object_add(r->obj, "model", json_object_new_string(model));
    return r;
}

void llmc_request_free(llmc_request *r)
{
    if (!r)
        return;
    if (r->obj)
        json_object_put(r->obj);
    controls_free(&r->ctl);
    free(r);
}

static int json_boolv(json_object *v, int *out)
{
    if (json_object_is_type(v, json_type_boolean)) {
        *out = json_object_get_boolean(v);
        return 0;
    }
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        if (i == 0 || i == 1) {
            *out = (int)i;
            return 0;
        }
    }
    return -1;
}

static int json_seconds_ms(json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return -1;
    double d = json_object_get_double(v);
    if (!(d >= 0) || d > 1e11)
        return -1;
    *out = (int64_t)(d * 1000.0 + 0.5);
    return 0;
}

/* Take LiteLLM's `cache: {...}` (and `caching`) out of a request object
 * into controls. */
static llmc_status take_controls(json_object *obj, controls *ctl, llmc_err *err)
{
    json_object *c;
    if (json_object_object_get_ex(obj, "caching", &c)) {
        int b;
        if (json_boolv(c, &b) != 0)
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"caching\" must be a boolean");
        ctl->use_cache = b;
        json_object_object_del(obj, "caching");
    }
    if (!json_object_object_get_ex(obj, "cache", &c))
        return LLMC_OK;
    if (json_object_is_type(c, json_type_null)) {
        json_object_object_del(obj, "cache");
        return LLMC_OK;
    }
    if (!json_object_is_type(c, json_type_object))
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "request field \"cache\" must be an object of cache controls");
    json_object_object_foreach(c, k, v)
    {
        int b;
        if (strcmp(k, "no-cache") == 0 || strcmp(k, "no-store") == 0 ||
            strcmp(k, "use-cache") == 0) {
            if (json_boolv(v, &b) != 0)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "cache control \"%s\" must be a boolean", k);
            if (k[3] == 'c')
                ctl->no_cache = b;
            else if (k[3] == 's')
                ctl->no_store = b;
            else
                ctl->use_cache = b;
        } else if (strcmp(k, "ttl") == 0) {
            if (json_seconds_ms(v, &ctl->ttl_ms) != 0)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "cache control \"ttl\" must be a number of seconds >= 0");
        } else if (strcmp(k, "s-maxage") == 0 || strcmp(k, "s-max-age") == 0) {
            if (json_seconds_ms(v, &ctl->max_age_ms) != 0)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "cache control \"%s\" must be a number of seconds >= 0", k);
        } else if (strcmp(k, "namespace") == 0 || strcmp(k, "key") == 0) {
            if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return llmc_err_set(err, LLMC_EINVAL, 0,
                                    "cache control \"%s\" must be a non-empty string", k);
            char *s = llmc__strdup(json_object_get_string(v));
            if (!s)
                return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            char **dst = k[0] == 'n' ? &ctl->ns : &ctl->key;
            free(*dst);
            *dst = s;
        } else {
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "cache control \"%s\" is unknown (known: no-cache, no-store, "
                                "ttl, s-maxage, namespace, use-cache, key)",
                                k);
        }
    }
    json_object_object_del(obj, "cache");
    return LLMC_OK;
}

/* Per-thread scratch for the hit path: a json tokener (a few allocations
 * to create) and a lookup whose buffers keep their capacity between calls.
 * Freed when the thread ends. */
#define VIEW_STRS 8

typedef struct thread_scratch {
    llmc_lookup lookup;
    llmc_buf strs[VIEW_STRS]; /* decoded strings of a reqview over text */
} thread_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *p)
{
    thread_scratch *t = p;
    llmc_lookup_free(&t->lookup);
    for (int i = 0; i < VIEW_STRS; i++)
        llmc_buf_free(&t->strs[i]);
    free(t);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_destroy);
}

static thread_scratch *thread_scratch_get(void)
{
    pthread_once(&scratch_once, scratch_init);
    thread_scratch *t = pthread_getspecific(scratch_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        llmc_lookup init = LLMC_LOOKUP_INIT;
        t->lookup = init;
        llmc_buf binit = LLMC_BUF_INIT;
        for (int i = 0; i < VIEW_STRS; i++)
            t->strs[i] = binit;
        if (pthread_setspecific(scratch_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    return t;
}

/* The thread's reusable lookup, emptied; NULL on allocation failure. */
static llmc_lookup *thread_lookup(void)
{
    thread_scratch *t = thread_scratch_get();
    if (!t)
        return NULL;
    llmc_buf_clear(&t->lookup.raw);
    llmc_buf_clear(&t->lookup.scratch);
    memset(&t->lookup.entry, 0, sizeof t->lookup.entry);
    t->lookup.age_ms = 0;
    return &t->lookup;
}

static llmc_status parse_request(const char *json, size_t len, llmc_request *r, llmc_err *err)
{
    if (!json)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request JSON is NULL");
    if (len == LLMC_ZSTR)
        len = strlen(json);
    if (len > INT32_MAX)
        return llmc_err_set(err, LLMC_ETOOBIG, 0, "request JSON too large");
    /* Our own \u decoding and a fresh tokener: nothing of an earlier
     * (failed) parse on this thread reaches this one. */
    json_object *o = NULL;
    llmc_status pst =
        llmc__json_parse(json, len, LLMC__LONE_REJECT, LLMC_EINVAL, "request JSON", &o, err);
    if (pst != LLMC_OK)
        return pst;
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EINVAL, 0, "request JSON must be an object");
    }
    r->obj = o;
    controls_init(&r->ctl);
    llmc_status st = take_controls(o, &r->ctl, err);
    if (st != LLMC_OK) {
        json_object_put(o);
        r->obj = NULL;
        controls_free(&r->ctl);
    }
    return st;
}

llmc_status llmc_request_from_json(const char *json, size_t len, llmc_request **out,
                                   llmc_err *err)
{
    if (!out)
        return llmc_err_set(err, LLMC_EINVAL, 0, "llmc_request_from_json: out is NULL");
    *out = NULL;
    llmc_request *r = calloc(1, sizeof *r);
    if (!r)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_status st = parse_request(json, len, r, err);
    if (st != LLMC_OK) {
        free(r);
        return st;
    }
    *out = r;
    return LLMC_OK;
}

static llmc_status set_member(llmc_request *r, const char *name, json_object *v)
{
    if (!r || !name || !*name) {
        if (v)
            json_object_put(v);
        return LLMC_EINVAL;
    }
    if (strcmp(name, "cache") == 0 || strcmp(name, "caching") == 0) {
        /* Controls go through take_controls so they are validated. */
        json_object *tmp = json_object_new_object();
        json_object_object_add(tmp, name, v);
        llmc_status st = take_controls(tmp, &r->ctl, NULL);
        json_object_put(tmp);
        return st;
    }
    return json_object_object_add(r->obj, name, v) == 0 ? LLMC_OK : LLMC_ENOMEM;
}

llmc_status llmc_request_set_string(llmc_request *r, const char *name, const char *value)
{
    if (!value)
        return LLMC_EINVAL;
    return set_member(r, name, json_object_new_string(value));
}

llmc_status llmc_request_set_int(llmc_request *r, const char *name, int64_t v)
{
    return set_member(r, name, json_object_new_int64(v));
}

llmc_status llmc_request_set_double(llmc_request *r, const char *name, double v)
{
    return set_member(r, name, json_object_new_double(v));
}

llmc_status llmc_request_set_bool(llmc_request *r, const char *name, int v)
{
    return set_member(r, name, json_object_new_boolean(v != 0));
}

llmc_status llmc_request_set_json(llmc_request *r, const char *name, const char *json)
{
    if (!json)
        return LLMC_EINVAL;
    json_object *v = NULL;
    if (llmc__json_parse(json, strlen(json), LLMC__LONE_REJECT, LLMC_EINVAL, "request member", &v,
                         NULL) != LLMC_OK)
        return LLMC_EINVAL;
    return set_member(r, name, v);
}

static json_object *array_member(llmc_request *r, const char *name)
{
    json_object *a;
    if (json_object_object_get_ex(r->obj, name, &a) && json_object_is_type(a, json_type_array))
        return a;
    if (a && json_object_is_type(a, json_type_string)) {
        /* "input": "x" followed by add_input: becomes ["x", ...]. */
        json_object *n = json_object_new_array();
        json_object_array_add(n, json_object_get(a));
        json_object_object_add(r->obj, name, n);
        return n;
    }
    a = json_object_new_array();
    if (a)
        json_object_object_add(r->obj, name, a);
    return a;
}

llmc_status llmc_request_add_message(llmc_request *r, const char *role, const char *content)
{
    if (!r || !role || !content)
        return LLMC_EINVAL;
    json_object *a = array_member(r, "messages");
    if (!a)
        return LLMC_ENOMEM;
    json_object *m = json_object_new_object();
    json_object_object_add(m, "role", json_object_new_string(role));
    json_object_object_add(m, "content", json_object_new_string(content));
    return json_object_array_add(a, m) == 0 ? LLMC_OK : LLMC_ENOMEM;
}

llmc_status llmc_request_add_input(llmc_request *r, const char *text)
{
    if (!r || !text)
        return LLMC_EINVAL;
    json_object *a = array_member(r, "input");
    if (!a)
        return LLMC_ENOMEM;
    return json_object_array_add(a, json_object_new_string(text)) == 0 ? LLMC_OK : LLMC_ENOMEM;
}

struct json_object *llmc_request_json(llmc_request *r)
{
    return r ? r->obj : NULL;
}

void llmc_request_set_no_cache(llmc_request *r, int on)
{
    if (r)
        r->ctl.no_cache = on != 0;
}

void llmc_request_set_no_store(llmc_request *r, int on)
{
    if (r)
        r->ctl.no_store = on != 0;
}

void llmc_request_set_ttl(llmc_request *r, int64_t seconds)
{
    if (r)
        r->ctl.ttl_ms = seconds < 0 ? LLMC_TTL_DEFAULT : seconds * 1000;
}

void llmc_request_set_s_maxage(llmc_request *r, int64_t seconds)
{
    if (r)
        r->ctl.max_age_ms = seconds < 0 ? -1 : seconds * 1000;
}

static llmc_status set_owned(char **dst, const char *s)
{
    char *n = NULL;
    if (s && !(n = llmc__strdup(s)))
        return LLMC_ENOMEM;
    free(*dst);
    *dst = n;
    return LLMC_OK;
}

llmc_status llmc_request_set_namespace(llmc_request *r, const char *ns)
{
    return r ? set_owned(&r->ctl.ns, ns && *ns ? ns : NULL) : LLMC_EINVAL;
}

void llmc_request_set_use_cache(llmc_request *r, int on)
{
    if (r)
        r->ctl.use_cache = on < 0 ? -1 : on != 0;
}

llmc_status llmc_request_set_cache_key(llmc_request *r, const char *key)
{
    return r ? set_owned(&r->ctl.key, key && *key ? key : NULL) : LLMC_EINVAL;
}

/* ------------------------------------------------------------------ */
/* Routing and credentials. */

/* What routing reads of a request: the parsed object, or the tokenized
 * text on the fast hit path (see fast_hit). One routing code for both, so
 * the two cannot resolve a model differently. */
typedef struct reqview {
    json_object *obj;     /* the parsed request, or NULL */
    llmc__fjdoc *fj;      /* the tokenized text when obj is NULL */
    thread_scratch *ts;   /* string buffers for fj */
    int nstr;
    int declined;         /* fj: a string routing needs could not be read as
                             json-c would (NUL inside, no room) */
} reqview;

static int rv_has(reqview *rv, const char *name)
{
    if (rv->obj)
        return json_object_object_get_ex(rv->obj, name, NULL);
    return llmc__fj_member(rv->fj, 0, name) >= 0;
}

/* A string member, as jstr: NULL when absent or not a string. */
static const char *rv_str(reqview *rv, const char *name)
{
    if (rv->obj)
        return jstr(rv->obj, name);
    long i = llmc__fj_member(rv->fj, 0, name);
    if (i < 0 || rv->fj->t[i].type != LLMC__FJ_STR)
        return NULL;
    if (rv->nstr >= VIEW_STRS - 1) { /* the last one is fast_hit's namespace */
        rv->declined = 1;
        return NULL;
    }
    llmc_buf *b = &rv->ts->strs[rv->nstr++];
    llmc_buf_clear(b);
    /* json-c's C-string view would stop at a NUL: not worth matching. */
    if (!llmc__fj_string(rv->fj, (size_t)i, 1, b) || !b->data) {
        rv->declined = 1;
        return NULL;
    }
    return b->data;
}

typedef struct route {
    const llmc_provider_ops *ops;  /* the provider the model resolves to */
    const llmc_provider_ops *exec; /* the one that answers (mock for
                                      mock_response) */
    char model[256];
    char base[512];
    const char *api_base;          /* normalised, or NULL */
    const char *api_base_for_key;  /* NULL when the provider's default */
    const char *api_key;
    const char *api_version;
} route;

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

static llmc_status set_model(route *rt, const char *m, llmc_err *err)
{
    size_t n = strlen(m);
    if (n == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" names no model");
    if (n >= sizeof rt->model)
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" is too long");
    memcpy(rt->model, m, n + 1);
    return LLMC_OK;
}

static llmc_status resolve_provider(llmc_client *c, reqview *req, route *rt, llmc_err *err)
{
    if (!rv_has(req, "model"))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" is missing");
    const char *model = rv_str(req, "model");
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

/* request field > "<provider>.<name>" option > "<name>" option > env. */
static const char *setting(llmc_client *c, reqview *req, const char *field,
                           const char *field2, const llmc_provider_ops *ops, const char *name,
                           const char *const *env)
{
    const char *v = rv_str(req, field);
    if (!v && field2)
        v = rv_str(req, field2);
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

static llmc_status resolve_endpoint(llmc_client *c, reqview *req, route *rt, llmc_err *err)
{
    const llmc_provider_ops *ops = rt->ops;
    const char *b = setting(c, req, "api_base", "base_url", ops, "api_base", ops->env_api_base);
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
    rt->api_key = setting(c, req, "api_key", NULL, ops, "api_key", ops->env_api_key);
    rt->api_version =
        setting(c, req, "api_version", NULL, ops, "api_version", ops->env_api_version);
    if (!rt->api_version)
        rt->api_version = ops->default_api_version;
    if ((ops->flags & LLMC_PROVIDER_NEEDS_VERSION) && !rt->api_version)
        return llmc_err_set(err, LLMC_EINVAL, 0, "%s: no api_version configured",
                            ops->hdr.name);
    return LLMC_OK;
}

static llmc_status route_view(llmc_client *c, llmc_call_type call, reqview *req, route *rt,
                              llmc_err *err)
{
    memset(rt, 0, sizeof *rt);
    int mock = rv_has(req, "mock_response") || rv_has(req, "mock_tool_calls");
    llmc_status st = resolve_provider(c, req, rt, err);
    if (st != LLMC_OK) {
        /* LiteLLM answers mock_response for any model name. */
        if (!mock || st != LLMC_ENOTFOUND)
            return st;
        rt->ops = llmc_find_provider("mock");
        if (!rt->ops)
            return st;
        const char *m = rv_str(req, "model");
        if ((st = set_model(rt, m ? m : "mock", err)) != LLMC_OK)
            return st;
    }
    if ((st = resolve_endpoint(c, req, rt, err)) != LLMC_OK)
        return st;
    rt->exec = mock ? llmc_find_provider("mock") : rt->ops;
    if (!rt->exec)
        return llmc_err_set(err, LLMC_ENOTFOUND, 0, "mock provider is not registered");
    uint32_t need = call == LLMC_CALL_CHAT   ? LLMC_PROVIDER_CHAT
                    : call == LLMC_CALL_TEXT ? LLMC_PROVIDER_TEXT
                                             : LLMC_PROVIDER_EMBEDDING;
    if (!(rt->exec->flags & need))
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "%s does not support %s calls",
                            rt->exec->hdr.name,
                            call == LLMC_CALL_CHAT   ? "chat completion"
                            : call == LLMC_CALL_TEXT ? "text completion"
                                                     : "embedding");
    return LLMC_OK;
}

static llmc_status route_request(llmc_client *c, llmc_call_type call, json_object *req,
                                 route *rt, llmc_err *err)
{
    reqview rv;
    memset(&rv, 0, sizeof rv);
    rv.obj = req;
    return route_view(c, call, &rv, rt, err);
}

/* ------------------------------------------------------------------ */
/* Keys. */

static int caching_on(llmc_client *c, const controls *ctl)
{
    if (!c->cache)
        return 0;
    if (llmc_cache_get_mode(c->cache) == LLMC_MODE_DEFAULT_OFF)
        return ctl->use_cache == 1;
    return ctl->use_cache != 0;
}

static llmc_status compute_key(llmc_client *c, llmc_call_type call, json_object *req,
                               json_object *item, const route *rt, const controls *ctl,
                               llmc_buf *key, llmc_buf *material, llmc_err *err)
{
    llmc_buf_clear(key);
    if (ctl->key && item == NULL)
        return llmc_buf_puts(key, ctl->key) == LLMC_OK
                   ? LLMC_OK
                   : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_key_input in;
    memset(&in, 0, sizeof in);
    in.struct_size = sizeof in;
    in.call = call;
    in.provider = rt->ops->hdr.name;
    in.model = rt->model;
    in.api_base = rt->api_base_for_key;
    in.request = req;
    in.input_item = item;
    in.namespace_ = ctl->ns ? ctl->ns : (c->cache ? llmc_cache_namespace(c->cache) : NULL);
    in.scope_by_user = c->scope_by_user >= 0 ? c->scope_by_user
                                             : (c->cache ? c->cache->scope_by_user : 0);
    if (c->key_fn) {
        llmc_status st = c->key_fn(c->key_ud, &in, key);
        if (st != LLMC_OK)
            return llmc_err_set(err, st, 0, "custom key function failed: %s",
                                llmc_strerror(st));
        if (key->len == 0)
            return llmc_err_set(err, LLMC_EINVAL, 0, "custom key function gave an empty key");
        return LLMC_OK;
    }
    const char *strategy = c->key_strategy ? c->key_strategy
                                           : (c->cache ? llmc_cache_key_strategy_name(c->cache)
                                                       : NULL);
    llmc_status st = llmc_key_compute(strategy, &in, key, material, err);
    if (st == LLMC_OK && ctl->key && item) {
        /* A preset key for an embedding call prefixes each item's key. */
        llmc_buf k2 = LLMC_BUF_INIT;
        llmc_buf_printf(&k2, "%s:%s", ctl->key, key->data);
        llmc_buf_free(key);
        *key = k2;
    }
    return st;
}

/* ------------------------------------------------------------------ */
/* Responses. */

static llmc_response *response_new(void)
{
    llmc_response *r = calloc(1, sizeof *r);
    if (r)
        r->age_ms = -1;
    return r;
}

static int is_hit_block(const llmc_response *r)
{
    return r->text == (const char *)(r + 1);
}

void llmc_response_free(llmc_response *r)
{
    if (!r)
        return;
    if (r->json)
        json_object_put(r->json);
    if (is_hit_block(r)) {
        /* text, key and model live in the same allocation. */
        free(r);
        return;
    }
    free(r->text);
    free(r->key);
    free(r->model);
    for (size_t i = 0; i < r->n_items; i++)
        free(r->item_keys ? r->item_keys[i] : NULL);
    free(r->item_keys);
    free(r->item_hits);
    free(r);
}

static int body_is_object(const char *b, size_t n)
{
    size_t i = 0, j = n;
    while (i < n && isspace((unsigned char)b[i]))
        i++;
    while (j > i && isspace((unsigned char)b[j - 1]))
        j--;
    return j - i >= 2 && b[i] == '{' && b[j - 1] == '}';
}

/* A hit: one allocation for the struct and its strings. The body is
 * spliced, not parsed. */
static llmc_response *response_hit(const char *body, size_t blen, const char *key, size_t klen,
                                   const char *model, const char *provider, int64_t age)
{
    static const char mark[] = "\"cache\":true";
    size_t ml = strlen(model);
    size_t i = 0;
    while (i < blen && isspace((unsigned char)body[i]))
        i++;
    if (i >= blen || body[i] != '{')
        return NULL;
    /* Is the object empty ("{}")? Then no comma after the mark. */
    size_t j = i + 1;
    while (j < blen && isspace((unsigned char)body[j]))
        j++;
    int empty = j < blen && body[j] == '}';
    size_t tl = blen + sizeof mark - 1 + (empty ? 0 : 1);
    llmc_response *r = malloc(sizeof *r + tl + 1 + klen + 1 + ml + 1);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    char *p = (char *)(r + 1);
    r->text = p;
    memcpy(p, body, i + 1);
    p += i + 1;
    memcpy(p, mark, sizeof mark - 1);
    p += sizeof mark - 1;
    if (!empty)
        *p++ = ',';
    memcpy(p, body + i + 1, blen - i - 1);
    p += blen - i - 1;
    *p++ = '\0';
    r->text_len = tl;
    r->key = p;
    memcpy(p, key, klen);
    p[klen] = '\0';
    p += klen + 1;
    r->model = p;
    memcpy(p, model, ml + 1);
    r->hit = 1;
    r->age_ms = age;
    r->provider = provider;
    return r;
}

/* A fresh response from an object (the text is its serialisation). */
static llmc_status response_from_obj(json_object *o, const char *key, const route *rt,
                                     llmc_response **out, llmc_err *err)
{
    llmc_response *r = response_new();
    if (!r)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, JSON_FLAGS, &len);
    r->text = s ? llmc__strndup(s, len) : NULL;
    r->text_len = len;
    r->key = key ? llmc__strdup(key) : NULL;
    r->model = llmc__strdup(rt->model);
    r->provider = rt->ops->hdr.name;
    r->json = json_object_get(o);
    if (!r->text || (key && !r->key) || !r->model) {
        llmc_response_free(r);
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    }
    *out = r;
    return LLMC_OK;
}

const char *llmc_response_text(const llmc_response *r, size_t *len)
{
    if (!r) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = r->text_len;
    return r->text;
}

struct json_object *llmc_response_json(llmc_response *r)
{
    if (!r)
        return NULL;
    if (!r->json && r->text)
        llmc_json_parse(r->text, r->text_len, "cached response", &r->json, NULL);
    return r->json;
}

const char *llmc_response_content(llmc_response *r)
{
    json_object *o = llmc_response_json(r), *choices, *v;
    if (!o || !json_object_object_get_ex(o, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array) || json_object_array_length(choices) == 0)
        return NULL;
    json_object *ch = json_object_array_get_idx(choices, 0);
    if (json_object_object_get_ex(ch, "message", &v))
        return jstr(v, "content");
    return jstr(ch, "text");
}

int llmc_response_cache_hit(const llmc_response *r)
{
    return r ? r->hit : 0;
}

const char *llmc_response_cache_key(const llmc_response *r)
{
    return r ? r->key : NULL;
}

int64_t llmc_response_cache_age_ms(const llmc_response *r)
{
    return r ? r->age_ms : -1;
}

int llmc_response_cache_stored(const llmc_response *r)
{
    return r ? r->stored : 0;
}

size_t llmc_response_item_count(const llmc_response *r)
{
    return r ? r->n_items : 0;
}

const char *llmc_response_item_key(const llmc_response *r, size_t i)
{
    return r && i < r->n_items && r->item_keys ? r->item_keys[i] : NULL;
}

int llmc_response_item_hit(const llmc_response *r, size_t i)
{
    return r && i < r->n_items && r->item_hits ? r->item_hits[i] : 0;
}

const char *llmc_response_provider(const llmc_response *r)
{
    return r ? r->provider : NULL;
}

const char *llmc_response_model(const llmc_response *r)
{
    return r ? r->model : NULL;
}

int llmc_response_attempts(const llmc_response *r)
{
    return r ? r->attempts : 0;
}

/* ------------------------------------------------------------------ */
/* Upstream. */

/* Members that never go upstream: cache controls, credentials and
 * transport (applied by the client), LiteLLM-only fields. */
static int stripped_member(const char *k, int keep_mock)
{
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

static json_object *upstream_request(json_object *req, int keep_mock, json_object *input)
{
    json_object *u = json_object_new_object();
    if (!u)
        return NULL;
    json_object_object_foreach(req, k, v)
    {
        if (stripped_member(k, keep_mock))
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

static void fill_call(const route *rt, llmc_call_type call, int stream, llmc_client *c,
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
    llmc__assembler *asmb;
    llmc_chunk_cb cb;
    void *ud;
    llmc_err *err;
    size_t chunks;
} stream_ctx;

static llmc_status chunk_sink(void *ud, struct json_object *chunk)
{
    stream_ctx *sc = ud;
    if (sc->asmb && llmc__assembler_add(sc->asmb, chunk) == LLMC_ENOMEM)
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

/* Call the provider. Non-streamed: *out = normalised response. Streamed:
 * chunks go to cb as they arrive and *out = the assembled response (only
 * when the stream completed). */
static llmc_status call_upstream(llmc_client *c, llmc_call_type call, json_object *req,
                                 json_object *input, const route *rt, llmc_chunk_cb cb,
                                 void *ud, json_object **out, int *attempts, llmc_err *err)
{
    *out = NULL;
    const llmc_provider_ops *ops = rt->exec;
    llmc_provider_call pc;
    int stream = cb != NULL;
    fill_call(rt, call, stream, c, &pc);

    if ((ops->flags & LLMC_PROVIDER_LOCAL) && llmc__provider_has(ops, respond_local) &&
        ops->respond_local) {
        json_object *u = upstream_request(req, 1, input);
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
            st = llmc__replay(*out, chunk_sink, &sc);
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

    json_object *u = upstream_request(req, 0, input);
    if (!u)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    llmc_http_request hr;
    llmc_http_request_init(&hr);
    llmc_status st = ops->build_request(&pc, u, &hr, err);
    json_object_put(u);
    if (st == LLMC_OK)
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
                    st = llmc__replay(*out, chunk_sink, &sc);
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
    sc.asmb = llmc__assembler_new();
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
                *out = llmc__assembler_result(sc.asmb);
                if (!*out)
                    st = llmc_err_set(err, LLMC_EPROTO, 0, "%s: the stream carried no chunks",
                                      pc.provider);
            }
        }
    }
    if (ops->stream_free && sc.state)
        ops->stream_free(sc.state);
    llmc__assembler_free(sc.asmb);
    llmc__sse_free(&sc.sse);
    llmc__ndjson_free(&sc.nd);
    llmc__http_result_free(&res);
    llmc_http_request_free(&hr);
    return st;
}

/* ------------------------------------------------------------------ */
/* Request memo (see the comment at struct memo). */

static uint64_t env_stamp(const llmc_provider_ops *ops)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; ops->env_api_base && ops->env_api_base[i]; i++) {
        const char *v = getenv(ops->env_api_base[i]);
        h = (h ^ (v ? llmc__hash64(v, strlen(v)) : 0x5bd1e995u)) * 1099511628211ull;
    }
    return h;
}

typedef struct memo_hit {
    const llmc_provider_ops *ops;
    int64_t max_age_ms;
    char key[MEMO_MAX_KEY];
    size_t klen;
    char model[MEMO_MAX_MODEL];
} memo_hit;

static int memo_get(llmc_client *c, llmc_call_type call, const char *text, size_t len,
                    uint64_t h, memo_hit *out)
{
    memo *m = c->memo;
    size_t i = (size_t)(h % m->n);
    pthread_mutex_t *lk = &m->locks[i % MEMO_STRIPES];
    int found = 0;
    pthread_mutex_lock(lk);
    memo_slot *sl = &m->slots[i];
    if (sl->text && sl->h == h && sl->len == len && sl->call == call &&
        memcmp(sl->text, text, len) == 0) {
        out->ops = sl->ops;
        out->max_age_ms = sl->max_age_ms;
        memcpy(out->key, sl->key, sl->klen + 1);
        out->klen = sl->klen;
        memcpy(out->model, sl->model, sizeof out->model);
        found = sl->env_stamp == env_stamp(sl->ops);
    }
    pthread_mutex_unlock(lk);
    return found;
}

static void memo_put(llmc_client *c, llmc_call_type call, const char *text, size_t len,
                     const route *rt, const controls *ctl, const llmc_buf *key)
{
    memo *m = c->memo;
    if (!m || len > MEMO_MAX_TEXT || key->len >= MEMO_MAX_KEY ||
        strlen(rt->model) >= MEMO_MAX_MODEL)
        return;
    uint64_t h = llmc__hash64(text, len);
    size_t i = (size_t)(h % m->n);
    pthread_mutex_t *lk = &m->locks[i % MEMO_STRIPES];
    pthread_mutex_lock(lk);
    memo_slot *sl = &m->slots[i];
    char *t = sl->len >= len && sl->text ? sl->text : realloc(sl->text, len ? len : 1);
    if (t) {
        memcpy(t, text, len);
        sl->text = t;
        sl->len = len;
        sl->h = h;
        sl->call = call;
        sl->ops = rt->ops;
        sl->env_stamp = env_stamp(rt->ops);
        sl->max_age_ms = ctl->max_age_ms;
        memcpy(sl->key, key->data, key->len + 1);
        sl->klen = key->len;
        snprintf(sl->model, sizeof sl->model, "%s", rt->model);
    }
    pthread_mutex_unlock(lk);
}

/* ------------------------------------------------------------------ */
/* Chat and text completions. */

static llmc_status validate(llmc_call_type call, json_object *req, llmc_err *err)
{
    json_object *v;
    if (!json_object_object_get_ex(req, "model", &v))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" is missing");
    if (!json_object_is_type(v, json_type_string))
        return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"model\" must be a string");
    switch (call) {
    case LLMC_CALL_CHAT:
        if (!json_object_object_get_ex(req, "messages", &v))
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"messages\" is missing");
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "request field \"messages\" must be a non-empty array");
        return LLMC_OK;
    case LLMC_CALL_TEXT:
        if (!json_object_object_get_ex(req, "prompt", &v))
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"prompt\" is missing");
        return LLMC_OK;
    case LLMC_CALL_EMBEDDING:
        if (!json_object_object_get_ex(req, "input", &v))
            return llmc_err_set(err, LLMC_EINVAL, 0, "request field \"input\" is missing");
        return LLMC_OK;
    default:
        return llmc_err_set(err, LLMC_EINVAL, 0, "unsupported call type %d", (int)call);
    }
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

/* Look `key` up (fail-open) and, on a usable hit, answer from it: the
 * response with "cache": true spliced in, replayed to `cb` as chunks when
 * streaming. Every hit path (memo, text fast path, parsed request) goes
 * through here. Returns 1 when answered (*st is the call's status; *out
 * receives the response when st is OK and out is not NULL), 0 on a miss
 * (absent, another call type, or a body that is not a JSON object: another
 * writer at the key), -1 when the response could not be allocated. */
static int answer_from_cache(llmc_client *c, llmc_call_type call, const char *key, size_t klen,
                             int64_t max_age_ms, const char *model, const char *provider,
                             llmc_chunk_cb cb, void *ud, llmc_response **out, llmc_status *st,
                             llmc_err *err)
{
    llmc_lookup *lk = thread_lookup();
    if (!lk)
        return -1;
    if (llmc_cache_get_entry(c->cache, key, klen, max_age_ms, LLMC_ENTRY_SOFT, lk) != LLMC_OK ||
        lk->entry.call != call || !body_is_object(lk->entry.body, lk->entry.body_len))
        return 0;
    llmc_response *r =
        response_hit(lk->entry.body, lk->entry.body_len, key, klen, model, provider, lk->age_ms);
    if (!r)
        return -1;
    *st = LLMC_OK;
    if (err)
        llmc_err_clear(err);
    if (cb) {
        json_object *ro = llmc_response_json(r);
        replay_ctx rc = {cb, ud, err};
        *st = ro ? llmc__replay(ro, replay_sink, &rc)
                 : llmc_err_set(err, LLMC_ECORRUPT, 0, "cached response unreadable");
    }
    if (*st != LLMC_OK || !out)
        llmc_response_free(r);
    else
        *out = r;
    return 1;
}

/* Upstream time of a miss, stored with the entry so a hit can report what
 * it saved: whole ms, at least 1 (0 means unknown). */
static int64_t upstream_ms_since(uint64_t t0)
{
    int64_t ms = (int64_t)((llmc_mono_ns() - t0) / 1000000u);
    return ms < 1 ? 1 : ms;
}

static llmc_status do_completion(llmc_client *c, llmc_call_type call, json_object *req,
                                 const controls *ctl, const char *text, size_t tlen,
                                 const char *missed, llmc_chunk_cb cb, void *ud,
                                 llmc_response **out, llmc_err *err)
{
    route rt;
    llmc_status st = validate(call, req, err);
    if (st != LLMC_OK)
        return st;
    if ((st = route_request(c, call, req, &rt, err)) != LLMC_OK)
        return st;
    int caching = caching_on(c, ctl);
    llmc_buf key = LLMC_BUF_INIT;
    if (caching) {
        st = compute_key(c, call, req, NULL, &rt, ctl, &key, NULL, err);
        if (st != LLMC_OK) {
            llmc_buf_free(&key);
            return st;
        }
        /* `missed`: the text fast path already looked this key up. */
        if (!ctl->no_cache && !(missed && strcmp(missed, key.data) == 0)) {
            if (text && !c->key_fn)
                memo_put(c, call, text, tlen, &rt, ctl, &key);
            int a = answer_from_cache(c, call, key.data, key.len, ctl->max_age_ms, rt.model,
                                      rt.ops->hdr.name, cb, ud, out, &st, err);
            if (a != 0) {
                llmc_buf_free(&key);
                return a > 0 ? st : llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
            }
        }
    }

    json_object *resp = NULL;
    int attempts = 0;
    uint64_t t0 = llmc_mono_ns();
    st = call_upstream(c, call, req, NULL, &rt, cb, ud, &resp, &attempts, err);
    int64_t upstream_ms = upstream_ms_since(t0);
    if (st != LLMC_OK) {
        llmc_buf_free(&key);
        return st;
    }
    /* A "cache" member from upstream (another cache in front of the
     * provider) must not be stored or it would be duplicated on a hit. */
    json_object_object_del(resp, "cache");
    llmc_response *r = NULL;
    st = response_from_obj(resp, caching ? key.data : NULL, &rt, &r, err);
    if (st == LLMC_OK) {
        r->attempts = attempts;
        if (caching && !ctl->no_store && llmc__response_storable(call, resp)) {
            llmc_status ps =
                llmc_cache_put_entry_ex(c->cache, key.data, key.len, call, r->text, r->text_len,
                                        ctl->ttl_ms, upstream_ms, LLMC_ENTRY_SOFT);
            r->stored = ps == LLMC_OK;
        }
    }
    json_object_put(resp);
    llmc_buf_free(&key);
    if (st == LLMC_OK)
        *out = r;
    return st;
}

/* ------------------------------------------------------------------ */
/* Embeddings. */

/* The input items: a string is one item, an array of numbers is one
 * (token) item, any other array is one item per element. */
static llmc_status embedding_items(json_object *req, json_object ***items, size_t *n,
                                   int *single, llmc_err *err)
{
    json_object *in = NULL;
    json_object_object_get_ex(req, "input", &in);
    *single = 0;
    if (json_object_is_type(in, json_type_string) ||
        (json_object_is_type(in, json_type_array) && json_object_array_length(in) > 0 &&
         (json_object_is_type(json_object_array_get_idx(in, 0), json_type_int)))) {
        *items = malloc(sizeof **items);
        if (!*items)
            return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        (*items)[0] = in;
        *n = 1;
        *single = 1;
        return LLMC_OK;
    }
    if (!json_object_is_type(in, json_type_array) || json_object_array_length(in) == 0)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "request field \"input\" must be a string or a non-empty array");
    size_t len = json_object_array_length(in);
    *items = malloc(len * sizeof **items);
    if (!*items)
        return llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
    for (size_t i = 0; i < len; i++) {
        json_object *it = json_object_array_get_idx(in, i);
        if (!json_object_is_type(it, json_type_string) &&
            !json_object_is_type(it, json_type_array)) {
            free(*items);
            *items = NULL;
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "request field \"input[%zu]\" must be a string or a token array",
                                i);
        }
        (*items)[i] = it;
    }
    *n = len;
    return LLMC_OK;
}

/* Stored form of one item: {"object":"embedding","embedding":...,
 * "model":...,"prompt_tokens":n}. */
static int64_t usage_int(json_object *resp, const char *name)
{
    json_object *u, *v;
    if (json_object_object_get_ex(resp, "usage", &u) && json_object_object_get_ex(u, name, &v))
        return json_object_get_int64(v);
    return 0;
}

static size_t item_weight(json_object *it)
{
    if (json_object_is_type(it, json_type_string))
        return (size_t)json_object_get_string_len(it) + 1;
    if (json_object_is_type(it, json_type_array))
        return json_object_array_length(it) * 4 + 1;
    return 1;
}

static llmc_status do_embedding(llmc_client *c, json_object *req, const controls *ctl,
                                llmc_response **out, llmc_err *err)
{
    route rt;
    llmc_status st = validate(LLMC_CALL_EMBEDDING, req, err);
    if (st != LLMC_OK)
        return st;
    if ((st = route_request(c, LLMC_CALL_EMBEDDING, req, &rt, err)) != LLMC_OK)
        return st;
    json_object **items = NULL;
    size_t n = 0;
    int single = 0;
    if ((st = embedding_items(req, &items, &n, &single, err)) != LLMC_OK)
        return st;
    int caching = caching_on(c, ctl);

    llmc_response *r = response_new();
    json_object **vecs = calloc(n, sizeof *vecs);     /* each item's embedding */
    int64_t *tokens = calloc(n, sizeof *tokens);
    size_t *missing = calloc(n, sizeof *missing);
    json_object *merged = NULL, *fresh = NULL, *sent = NULL;
    char *model = NULL;
    llmc_buf key = LLMC_BUF_INIT;
    if (!r || !vecs || !tokens || !missing) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto done;
    }
    r->n_items = n;
    r->item_keys = calloc(n, sizeof *r->item_keys);
    r->item_hits = calloc(n, 1);
    if (!r->item_keys || !r->item_hits) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto done;
    }
    size_t n_missing = 0, n_hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (caching) {
            st = compute_key(c, LLMC_CALL_EMBEDDING, req, items[i], &rt, ctl, &key, NULL, err);
            if (st != LLMC_OK)
                goto done;
            r->item_keys[i] = llmc__strndup(key.data, key.len);
            if (!r->item_keys[i]) {
                st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
                goto done;
            }
            if (!ctl->no_cache) {
                llmc_lookup lk = LLMC_LOOKUP_INIT;
                if (llmc_cache_get_entry(c->cache, key.data, key.len, ctl->max_age_ms,
                                         LLMC_ENTRY_SOFT, &lk) == LLMC_OK &&
                    lk.entry.call == LLMC_CALL_EMBEDDING) {
                    json_object *o = NULL, *e;
                    if (llmc_json_parse(lk.entry.body, lk.entry.body_len, "cached embedding", &o,
                                        NULL) == LLMC_OK &&
                        json_object_object_get_ex(o, "embedding", &e)) {
                        vecs[i] = json_object_get(e);
                        tokens[i] = 0;
                        json_object *t;
                        if (json_object_object_get_ex(o, "prompt_tokens", &t))
                            tokens[i] = json_object_get_int64(t);
                        if (!model && jstr(o, "model"))
                            model = llmc__strdup(jstr(o, "model"));
                        r->item_hits[i] = 1;
                        if (lk.age_ms > r->age_ms)
                            r->age_ms = lk.age_ms;
                        n_hits++;
                    }
                    if (o)
                        json_object_put(o);
                }
                llmc_lookup_free(&lk);
            }
        }
        if (!r->item_hits[i])
            missing[n_missing++] = i;
    }

    int64_t fresh_prompt = 0, fresh_total = 0, item_upstream_ms = 0;
    if (n_missing) {
        sent = json_object_new_array();
        for (size_t k = 0; k < n_missing; k++)
            json_object_array_add(sent, json_object_get(items[missing[k]]));
        int attempts = 0;
        uint64_t t0 = llmc_mono_ns();
        st = call_upstream(c, LLMC_CALL_EMBEDDING, req, sent, &rt, NULL, NULL, &fresh,
                           &attempts, err);
        /* One call fetched every missing item: each stores its share. */
        item_upstream_ms = upstream_ms_since(t0) / (int64_t)n_missing;
        if (item_upstream_ms < 1)
            item_upstream_ms = 1;
        r->attempts = attempts;
        if (st != LLMC_OK)
            goto done;
        json_object *data = NULL;
        json_object_object_get_ex(fresh, "data", &data);
        size_t nd = json_object_is_type(data, json_type_array) ? json_object_array_length(data)
                                                               : 0;
        if (nd != n_missing) {
            st = llmc_err_set(err, LLMC_EPROTO, 0,
                              "%s: embedding response has %zu items for %zu inputs",
                              rt.exec->hdr.name, nd, n_missing);
            goto done;
        }
        for (size_t k = 0; k < nd; k++) {
            json_object *d = json_object_array_get_idx(data, k), *ix, *e;
            int64_t idx = json_object_object_get_ex(d, "index", &ix) ? json_object_get_int64(ix)
                                                                   : (int64_t)k;
            if (idx < 0 || (size_t)idx >= n_missing || vecs[missing[idx]] ||
                !json_object_object_get_ex(d, "embedding", &e)) {
                st = llmc_err_set(err, LLMC_EPROTO, 0,
                                  "%s: embedding response item %zu has a bad index or no "
                                  "embedding",
                                  rt.exec->hdr.name, k);
                goto done;
            }
            vecs[missing[idx]] = json_object_get(e);
        }
        fresh_prompt = usage_int(fresh, "prompt_tokens");
        fresh_total = usage_int(fresh, "total_tokens");
        if (!model && jstr(fresh, "model"))
            model = llmc__strdup(jstr(fresh, "model"));
        /* Attribute the batch's tokens to its items by length, so the sum
         * over any later mix of hits stays meaningful (exact for one). */
        size_t wsum = 0;
        for (size_t k = 0; k < n_missing; k++)
            wsum += item_weight(items[missing[k]]);
        int64_t left = fresh_prompt;
        for (size_t k = 0; k < n_missing; k++) {
            int64_t share = k + 1 == n_missing
                                ? left
                                : (int64_t)((double)fresh_prompt *
                                            (double)item_weight(items[missing[k]]) /
                                            (double)(wsum ? wsum : 1));
            tokens[missing[k]] = share;
            left -= share;
        }
        if (caching && !ctl->no_store) {
            int stored = 1;
            for (size_t k = 0; k < n_missing; k++) {
                size_t i = missing[k];
                json_object *body = json_object_new_object();
                json_object_object_add(body, "object", json_object_new_string("embedding"));
                json_object_object_add(body, "embedding", json_object_get(vecs[i]));
                json_object_object_add(body, "model",
                                       json_object_new_string(model ? model : rt.model));
                json_object_object_add(body, "prompt_tokens", json_object_new_int64(tokens[i]));
                size_t bl = 0;
                const char *bs = json_object_to_json_string_length(body, JSON_FLAGS, &bl);
                json_object *ev = vecs[i];
                int nonempty =
                    (json_object_is_type(ev, json_type_array) && json_object_array_length(ev)) ||
                    (json_object_is_type(ev, json_type_string) && json_object_get_string_len(ev));
                if (!nonempty ||
                    llmc_cache_put_entry_ex(c->cache, r->item_keys[i], strlen(r->item_keys[i]),
                                            LLMC_CALL_EMBEDDING, bs, bl, ctl->ttl_ms,
                                            item_upstream_ms, LLMC_ENTRY_SOFT) != LLMC_OK)
                    stored = 0;
                json_object_put(body);
            }
            r->stored = stored;
        }
    }

    /* Merge in input order. */
    merged = json_object_new_object();
    json_object *data = json_object_new_array();
    int64_t prompt = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "object", json_object_new_string("embedding"));
        json_object_object_add(d, "index", json_object_new_int((int)i));
        json_object_object_add(d, "embedding", json_object_get(vecs[i]));
        json_object_array_add(data, d);
        if (r->item_hits[i])
            prompt = llmc__sat_add(prompt, tokens[i]);
    }
    int all_hit = n_hits == n;
    if (all_hit)
        json_object_object_add(merged, "cache", json_object_new_boolean(1));
    json_object_object_add(merged, "object", json_object_new_string("list"));
    json_object_object_add(merged, "data", data);
    json_object_object_add(merged, "model", json_object_new_string(model ? model : rt.model));
    json_object *u = json_object_new_object();
    json_object_object_add(u, "prompt_tokens",
                           json_object_new_int64(llmc__sat_add(prompt, fresh_prompt)));
    json_object_object_add(
        u, "total_tokens",
        json_object_new_int64(llmc__sat_add(prompt, fresh_total ? fresh_total : fresh_prompt)));
    json_object_object_add(merged, "usage", u);
    LLMC_UNUSED(single);

    size_t tl = 0;
    const char *ts = json_object_to_json_string_length(merged, JSON_FLAGS, &tl);
    r->text = ts ? llmc__strndup(ts, tl) : NULL;
    r->text_len = tl;
    r->json = json_object_get(merged);
    r->hit = all_hit;
    if (!all_hit && n_hits == 0)
        r->age_ms = -1;
    r->key = caching && r->item_keys[0] ? llmc__strdup(r->item_keys[0]) : NULL;
    r->model = llmc__strdup(rt.model);
    r->provider = rt.ops->hdr.name;
    if (!r->text || !r->model) {
        st = llmc_err_set(err, LLMC_ENOMEM, 0, "out of memory");
        goto done;
    }
    st = LLMC_OK;
    *out = r;
    r = NULL;
done:
    if (r)
        llmc_response_free(r);
    if (vecs)
        for (size_t i = 0; i < n; i++)
            if (vecs[i])
                json_object_put(vecs[i]);
    free(vecs);
    free(tokens);
    free(missing);
    free(items);
    free(model);
    if (merged)
        json_object_put(merged);
    if (fresh)
        json_object_put(fresh);
    if (sent)
        json_object_put(sent);
    llmc_buf_free(&key);
    return st;
}

/* ------------------------------------------------------------------ */
/* Entry points. */

static llmc_status dispatch(llmc_client *c, llmc_call_type call, json_object *req,
                            const controls *ctl, const char *text, size_t tlen,
                            const char *missed, llmc_chunk_cb cb, void *ud,
                            llmc_response **out, llmc_err *err)
{
    if (err)
        llmc_err_clear(err);
    if (cb && call != LLMC_CALL_CHAT)
        return llmc_err_set(err, LLMC_ENOTSUP, 0, "streaming is supported for chat calls only");
    if (call == LLMC_CALL_EMBEDDING)
        return do_embedding(c, req, ctl, out, err);
    return do_completion(c, call, req, ctl, text, tlen, missed, cb, ud, out, err);
}

llmc_status llmc_client_call(llmc_client *c, llmc_call_type call, const llmc_request *req,
                             llmc_chunk_cb cb, void *ud, llmc_response **out, llmc_err *err)
{
    llmc_response *dummy = NULL;
    llmc_response **o = out ? out : &dummy;
    *o = NULL;
    if (!c || !req || !req->obj)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client or request is NULL");
    if (!out && !cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "no place for the response");
    llmc_status st = dispatch(c, call, req->obj, &req->ctl, NULL, 0, NULL, cb, ud, o, err);
    if (!out)
        llmc_response_free(dummy);
    return st;
}

/* ---- The text fast path ----
 *
 * On a memo miss, a request is tokenized (fastjson.c) instead of parsed
 * and its v1 key computed from the tokens; a hit is answered without any
 * json_object for the request. Whatever this path cannot take exactly as
 * the json-c path would (other key strategies, a key function, preset
 * keys, no-cache, invalid or unusual JSON, a routing error) it declines,
 * and the json-c path runs as if it had not been tried. */

/* json_boolv over a token. */
static int fj_boolv(const llmc__fjdoc *d, long i, int *out)
{
    int is_int;
    int64_t iv;
    double dv;
    if (d->t[i].type == LLMC__FJ_TRUE || d->t[i].type == LLMC__FJ_FALSE) {
        *out = d->t[i].type == LLMC__FJ_TRUE;
        return 0;
    }
    if (llmc__fj_number(d, (size_t)i, &is_int, &iv, &dv) && is_int && (iv == 0 || iv == 1)) {
        *out = (int)iv;
        return 0;
    }
    return -1;
}

/* json_seconds_ms over a token. */
static int fj_seconds_ms(const llmc__fjdoc *d, long i, int64_t *out)
{
    int is_int;
    int64_t iv;
    double dv;
    if (!llmc__fj_number(d, (size_t)i, &is_int, &iv, &dv))
        return -1;
    if (!(dv >= 0) || dv > 1e11)
        return -1;
    *out = (int64_t)(dv * 1000.0 + 0.5);
    return 0;
}

/* take_controls over the tokens: 1 = read (ctl filled, *ns in nsbuf),
 * 0 = declined (anything take_controls would reject, duplicate names
 * inside `cache`, which json-c folds in an order of its own, or a preset
 * key, which this path does not take). */
static int fj_controls(llmc__fjdoc *d, controls *ctl, llmc_buf *nsbuf)
{
    long i = llmc__fj_member(d, 0, "caching");
    if (i >= 0) {
        int b;
        if (fj_boolv(d, i, &b) != 0)
            return 0;
        ctl->use_cache = b;
    }
    long co = llmc__fj_member(d, 0, "cache");
    if (co < 0 || d->t[co].type == LLMC__FJ_NULL)
        return 1;
    if (d->t[co].type != LLMC__FJ_OBJ)
        return 0;
    size_t k = (size_t)co + 1;
    llmc_buf name = LLMC_BUF_INIT;
    int ok = 1;
    for (uint32_t m = 0; m < d->t[co].n && ok; m++) {
        size_t v = k + 1;
        llmc_buf_clear(&name);
        if (!llmc__fj_string(d, k, 1, &name) || !name.data ||
            llmc__fj_member(d, (size_t)co, name.data) != (long)v) {
            ok = 0; /* NUL in the name, or a later duplicate */
            break;
        }
        const char *n = name.data;
        int b;
        if (strcmp(n, "no-cache") == 0 || strcmp(n, "no-store") == 0 ||
            strcmp(n, "use-cache") == 0) {
            if (fj_boolv(d, (long)v, &b) != 0)
                ok = 0;
            else if (n[3] == 'c')
                ctl->no_cache = b;
            else if (n[3] == 's')
                ctl->no_store = b;
            else
                ctl->use_cache = b;
        } else if (strcmp(n, "ttl") == 0) {
            ok = fj_seconds_ms(d, (long)v, &ctl->ttl_ms) == 0;
        } else if (strcmp(n, "s-maxage") == 0 || strcmp(n, "s-max-age") == 0) {
            ok = fj_seconds_ms(d, (long)v, &ctl->max_age_ms) == 0;
        } else if (strcmp(n, "namespace") == 0) {
            llmc_buf_clear(nsbuf);
            ok = llmc__fj_string(d, v, 1, nsbuf) && nsbuf->len > 0;
        } else {
            ok = 0; /* "key" (a preset key) or unknown: the json-c path */
        }
        k = d->t[v].next;
    }
    llmc_buf_free(&name);
    return ok;
}

static uint64_t fast_hits;

uint64_t llmc__client_fast_hits(void)
{
    return __atomic_load_n(&fast_hits, __ATOMIC_RELAXED);
}

static int key_strategy_is_v1(llmc_client *c)
{
    const char *s = c->key_strategy ? c->key_strategy : llmc_cache_key_strategy_name(c->cache);
    return !s || llmc__strcaseeq(s, "v1");
}

/* 1 = answered (status in *st), 0 = not answered: take the json-c path.
 * A looked-up miss leaves its key in `missed` so that path does not look
 * the same key up a second time. */
static int fast_hit(llmc_client *c, llmc_call_type call, const char *json, size_t len,
                    llmc_chunk_cb cb, void *ud, llmc_response **out, llmc_buf *missed,
                    llmc_status *st, llmc_err *err)
{
    if (!c->cache || c->key_fn || (call != LLMC_CALL_CHAT && call != LLMC_CALL_TEXT) ||
        !key_strategy_is_v1(c))
        return 0;
    llmc__fjdoc *d = llmc__fj_thread_doc();
    thread_scratch *ts = thread_scratch_get();
    if (!d || !ts || !llmc__fj_parse(d, json, len))
        return 0;
    controls ctl;
    controls_init(&ctl);
    llmc_buf *nsbuf = &ts->strs[VIEW_STRS - 1];
    llmc_buf_clear(nsbuf);
    if (!fj_controls(d, &ctl, nsbuf) || !caching_on(c, &ctl) || ctl.no_cache)
        return 0;
    /* validate() */
    long v = llmc__fj_member(d, 0, call == LLMC_CALL_CHAT ? "messages" : "prompt");
    if (v < 0 || (call == LLMC_CALL_CHAT && (d->t[v].type != LLMC__FJ_ARR || d->t[v].n == 0)))
        return 0;
    reqview rv;
    memset(&rv, 0, sizeof rv);
    rv.fj = d;
    rv.ts = ts;
    route rt;
    llmc_err rerr;
    if (route_view(c, call, &rv, &rt, &rerr) != LLMC_OK || rv.declined)
        return 0;
    llmc__fj_keyin in;
    memset(&in, 0, sizeof in);
    in.call = call;
    in.provider = rt.ops->hdr.name;
    in.model = rt.model;
    in.api_base = rt.api_base_for_key;
    in.namespace_ = nsbuf->len ? nsbuf->data : llmc_cache_namespace(c->cache);
    in.scope_by_user = c->scope_by_user >= 0 ? c->scope_by_user : c->cache->scope_by_user;
    in.input_item = -1;
    llmc_buf *key = missed;
    if (llmc__fj_key_v1(d, &in, key, NULL) != LLMC_OK) {
        llmc_buf_clear(key);
        return 0;
    }
    if (c->memo)
        memo_put(c, call, json, len, &rt, &ctl, key);
    int a = answer_from_cache(c, call, key->data, key->len, ctl.max_age_ms, rt.model,
                              rt.ops->hdr.name, cb, ud, out, st, err);
    if (a < 0)
        llmc_buf_clear(key); /* not looked up after all: the json-c path will */
    if (a <= 0)
        return 0; /* a miss: `missed` keeps the key */
    __atomic_fetch_add(&fast_hits, 1, __ATOMIC_RELAXED);
    return 1;
}

static llmc_status call_json(llmc_client *c, llmc_call_type call, const char *json,
                             size_t len, llmc_chunk_cb cb, void *ud, llmc_response **out,
                             llmc_err *err)
{
    llmc_response *dummy = NULL;
    llmc_response **o = out ? out : &dummy;
    *o = NULL;
    if (!c)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client is NULL");
    if (!out && !cb)
        return llmc_err_set(err, LLMC_EINVAL, 0, "no place for the response");
    if (json && len == LLMC_ZSTR)
        len = strlen(json);
    llmc_buf missed = LLMC_BUF_INIT;
    /* The fast hit: a request text seen before needs neither parsing nor
     * key computation, only the lookup. */
    if (json && c->memo && !c->key_fn && call != LLMC_CALL_EMBEDDING && len <= MEMO_MAX_TEXT &&
        (!cb || call == LLMC_CALL_CHAT)) {
        memo_hit mh;
        uint64_t h = llmc__hash64(json, len);
        if (memo_get(c, call, json, len, h, &mh)) {
            llmc_status st = LLMC_OK;
            if (answer_from_cache(c, call, mh.key, mh.klen, mh.max_age_ms, mh.model,
                                  mh.ops->hdr.name, cb, ud, out, &st, err) > 0)
                return st;
            /* Known key, not in the cache: no second lookup below. */
            llmc_buf_set(&missed, mh.key, mh.klen);
        }
    }
    llmc_status st;
    if (json && len <= INT32_MAX && !missed.len && (!cb || call == LLMC_CALL_CHAT) &&
        fast_hit(c, call, json, len, cb, ud, out, &missed, &st, err)) {
        llmc_buf_free(&missed);
        return st;
    }
    llmc_request r;
    st = parse_request(json, len, &r, err);
    if (st != LLMC_OK) {
        llmc_buf_free(&missed);
        return st;
    }
    st = dispatch(c, call, r.obj, &r.ctl, json, len, missed.len ? missed.data : NULL, cb, ud,
                  o, err);
    llmc_buf_free(&missed);
    json_object_put(r.obj);
    controls_free(&r.ctl);
    if (!out)
        llmc_response_free(dummy);
    return st;
}

llmc_status llmc_completion(llmc_client *c, const llmc_request *req, llmc_response **out,
                            llmc_err *err)
{
    return llmc_client_call(c, LLMC_CALL_CHAT, req, NULL, NULL, out, err);
}

llmc_status llmc_completion_json(llmc_client *c, const char *json, size_t len,
                                 llmc_response **out, llmc_err *err)
{
    return call_json(c, LLMC_CALL_CHAT, json, len, NULL, NULL, out, err);
}

llmc_status llmc_text_completion(llmc_client *c, const llmc_request *req, llmc_response **out,
                                 llmc_err *err)
{
    return llmc_client_call(c, LLMC_CALL_TEXT, req, NULL, NULL, out, err);
}

llmc_status llmc_text_completion_json(llmc_client *c, const char *json, size_t len,
                                      llmc_response **out, llmc_err *err)
{
    return call_json(c, LLMC_CALL_TEXT, json, len, NULL, NULL, out, err);
}

llmc_status llmc_embedding(llmc_client *c, const llmc_request *req, llmc_response **out,
                           llmc_err *err)
{
    return llmc_client_call(c, LLMC_CALL_EMBEDDING, req, NULL, NULL, out, err);
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
    return llmc_client_call(c, LLMC_CALL_CHAT, req, cb, ud, out, err);
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
    if (!c || !req || !req->obj || !key)
        return llmc_err_set(err, LLMC_EINVAL, 0, "client, request or key buffer is NULL");
    route rt;
    llmc_status st = validate(call, req->obj, err);
    if (st == LLMC_OK)
        st = route_request(c, call, req->obj, &rt, err);
    if (st != LLMC_OK)
        return st;
    if (call != LLMC_CALL_EMBEDDING)
        return compute_key(c, call, req->obj, NULL, &rt, &req->ctl, key, material, err);
    json_object **items = NULL;
    size_t n = 0;
    int single = 0;
    if ((st = embedding_items(req->obj, &items, &n, &single, err)) != LLMC_OK)
        return st;
    if (item >= n)
        st = llmc_err_set(err, LLMC_EINVAL, 0, "input item %zu does not exist (%zu items)", item,
                          n);
    else
        st = compute_key(c, call, req->obj, items[item], &rt, &req->ctl, key, material, err);
    free(items);
    return st;
}
