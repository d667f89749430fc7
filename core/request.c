/* Requests (llmc_request), the one reader of cache controls, and the
 * value view those rules read through.
 *
 * The controls (`caching`, `cache: {...}`) are read by llmc__read_controls
 * only, over an llmc__jv: a json-c object when the request was parsed, or
 * a token of the fast path's document when it was only tokenized. One
 * rule set, two forms; the token form declines (LLMC_ENOTSUP) only where
 * it cannot know what json-c would have made of the text. */
#include "client_internal.h"
#include "jsontext.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Value view. */

jv_kind llmc__jv_kind(const llmc__jv *v)
{
    if (v->d) {
        if (v->i < 0)
            return JV_ABSENT;
        const llmc__fjtok *t = &v->d->t[v->i];
        switch (t->type) {
        case LLMC__FJ_OBJ: return JV_OBJECT;
        case LLMC__FJ_ARR: return JV_ARRAY;
        case LLMC__FJ_STR: return JV_STRING;
        case LLMC__FJ_NUM: return t->esc ? JV_INT : JV_DOUBLE;
        case LLMC__FJ_TRUE:
        case LLMC__FJ_FALSE: return JV_BOOL;
        default: return JV_NULL;
        }
    }
    if (v->absent)
        return JV_ABSENT;
    switch (json_object_get_type(v->o)) {
    case json_type_null: return JV_NULL;
    case json_type_boolean: return JV_BOOL;
    case json_type_int: return JV_INT;
    case json_type_double: return JV_DOUBLE;
    case json_type_string: return JV_STRING;
    case json_type_object: return JV_OBJECT;
    case json_type_array: return JV_ARRAY;
    }
    return JV_NULL;
}

llmc__jv llmc__jv_member(const llmc__jv *v, const char *name)
{
    llmc__jv r;
    memset(&r, 0, sizeof r);
    if (v->d) {
        r.d = v->d;
        r.i = v->i >= 0 ? llmc__fj_member(v->d, (size_t)v->i, name) : -1;
        return r;
    }
    json_object *m = NULL;
    if (v->absent || !json_object_is_type(v->o, json_type_object) ||
        !json_object_object_get_ex(v->o, name, &m))
        r.absent = 1;
    r.o = m;
    return r;
}

size_t llmc__jv_len(const llmc__jv *v)
{
    switch (llmc__jv_kind(v)) {
    case JV_ARRAY:
        return v->d ? v->d->t[v->i].n : json_object_array_length(v->o);
    case JV_STRING:
        return v->d ? v->d->t[v->i].len : (size_t)json_object_get_string_len(v->o);
    default:
        return 0;
    }
}

int llmc__jv_bool(const llmc__jv *v)
{
    if (v->d)
        return v->i >= 0 && v->d->t[v->i].type == LLMC__FJ_TRUE;
    return json_object_get_boolean(v->o);
}

int llmc__jv_number(const llmc__jv *v, int *is_int, int64_t *i, double *d)
{
    jv_kind k = llmc__jv_kind(v);
    if (k != JV_INT && k != JV_DOUBLE)
        return 0;
    if (v->d)
        return llmc__fj_number(v->d, (size_t)v->i, is_int, i, d);
    *is_int = k == JV_INT;
    *i = k == JV_INT ? json_object_get_int64(v->o) : 0;
    *d = json_object_get_double(v->o);
    return 1;
}

const char *llmc__jv_string(const llmc__jv *v, llmc_buf *buf, size_t *len)
{
    if (llmc__jv_kind(v) != JV_STRING)
        return NULL;
    if (!v->d) {
        if (len)
            *len = (size_t)json_object_get_string_len(v->o);
        return json_object_get_string(v->o);
    }
    llmc_buf_clear(buf);
    /* json-c's C-string view would stop at a NUL: not worth matching. */
    if (!llmc__fj_string(v->d, (size_t)v->i, 1, buf) ||
        (!buf->data && llmc_buf_reserve(buf, 1) != LLMC_OK))
        return NULL;
    if (len)
        *len = buf->len;
    return buf->data;
}

llmc_status llmc__jv_foreach(const llmc__jv *v, llmc__jv_member_cb cb, void *ud)
{
    if (llmc__jv_kind(v) != JV_OBJECT)
        return LLMC_OK;
    if (!v->d) {
        json_object_object_foreach(v->o, k, val)
        {
            llmc__jv m;
            memset(&m, 0, sizeof m);
            m.o = val;
            llmc_status st = cb(ud, k, &m);
            if (st != LLMC_OK)
                return st;
        }
        return LLMC_OK;
    }
    const llmc__fjdoc *d = v->d;
    size_t k = (size_t)v->i + 1;
    llmc_buf name = LLMC_BUF_INIT;
    llmc_status st = LLMC_OK;
    for (uint32_t m = 0; m < d->t[v->i].n && st == LLMC_OK; m++) {
        size_t val = k + 1;
        llmc_buf_clear(&name);
        if (!llmc__fj_string(d, k, 1, &name) || !name.data ||
            llmc__fj_member(d, (size_t)v->i, name.data) != (long)val) {
            /* A NUL in the name, or a later duplicate: json-c's order of
             * visits is its own, so do not guess it. */
            st = LLMC_ENOTSUP;
            break;
        }
        llmc__jv mv;
        memset(&mv, 0, sizeof mv);
        mv.d = d;
        mv.i = (long)val;
        st = cb(ud, name.data, &mv);
        k = d->t[val].next;
    }
    llmc_buf_free(&name);
    return st;
}

/* ------------------------------------------------------------------ */
/* Cache controls: one rule set. */

void llmc__controls_init(llmc__controls *c)
{
    memset(c, 0, sizeof *c);
    c->ttl_ms = LLMC_TTL_DEFAULT;
    c->max_age_ms = -1;
    c->use_cache = -1;
    c->semantic = -1;
}

void llmc__controls_free(llmc__controls *c)
{
    free(c->ns);
    free(c->key);
    free(c->tenant);
    llmc__headers_free(c->api_headers);
    llmc__controls_init(c);
}

llmc_status llmc__controls_copy(llmc__controls *dst, const llmc__controls *src)
{
    *dst = *src;
    dst->ns = src->ns ? llmc__strdup(src->ns) : NULL;
    dst->key = src->key ? llmc__strdup(src->key) : NULL;
    dst->tenant = src->tenant ? llmc__strdup(src->tenant) : NULL;
    int hfail;
    dst->api_headers = llmc__headers_dup((const char *const *)src->api_headers, &hfail);
    if ((src->ns && !dst->ns) || (src->key && !dst->key) || (src->tenant && !dst->tenant) ||
        hfail) {
        llmc__controls_free(dst);
        return LLMC_ENOMEM;
    }
    return LLMC_OK;
}

/* true / false, or the integers 0 and 1 (LiteLLM accepts both). */
static int boolv(const llmc__jv *v, int *out)
{
    int is_int;
    int64_t i;
    double d;
    switch (llmc__jv_kind(v)) {
    case JV_BOOL:
        *out = llmc__jv_bool(v);
        return 0;
    case JV_INT:
        if (llmc__jv_number(v, &is_int, &i, &d) && is_int && (i == 0 || i == 1)) {
            *out = (int)i;
            return 0;
        }
        return -1;
    default:
        return -1;
    }
}

static int seconds_ms(const llmc__jv *v, int64_t *out)
{
    int is_int;
    int64_t i;
    double d;
    if (!llmc__jv_number(v, &is_int, &i, &d))
        return -1;
    if (!(d >= 0) || d > 1e11)
        return -1;
    *out = (int64_t)(d * 1000.0 + 0.5);
    return 0;
}

typedef struct ctl_reader {
    llmc__controls *ctl;
    llmc_err *err;
    llmc_buf s;
} ctl_reader;

static llmc_status read_control(void *ud, const char *k, const llmc__jv *v)
{
    ctl_reader *cr = ud;
    llmc__controls *ctl = cr->ctl;
    int b;
    if (strcmp(k, "no-cache") == 0 || strcmp(k, "no-store") == 0 ||
        strcmp(k, "use-cache") == 0) {
        if (boolv(v, &b) != 0)
            return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                                "cache control \"%s\" must be a boolean", k);
        if (k[3] == 'c')
            ctl->no_cache = b;
        else if (k[3] == 's')
            ctl->no_store = b;
        else
            ctl->use_cache = b;
    } else if (strcmp(k, "semantic") == 0) {
        if (boolv(v, &b) != 0)
            return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                                "cache control \"semantic\" must be a boolean");
        ctl->semantic = b;
    } else if (strcmp(k, "semantic_threshold") == 0) {
        int is_int;
        int64_t iv;
        double d;
        if (!llmc__jv_number(v, &is_int, &iv, &d) || !(d > 0.0 && d <= 1.0))
            return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                                "cache control \"semantic_threshold\" must be a similarity "
                                "above 0, at most 1");
        ctl->sem_threshold = d;
    } else if (strcmp(k, "ttl") == 0) {
        if (seconds_ms(v, &ctl->ttl_ms) != 0)
            return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                                "cache control \"ttl\" must be a number of seconds >= 0");
    } else if (strcmp(k, "s-maxage") == 0 || strcmp(k, "s-max-age") == 0) {
        if (seconds_ms(v, &ctl->max_age_ms) != 0)
            return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                                "cache control \"%s\" must be a number of seconds >= 0", k);
    } else if (strcmp(k, "namespace") == 0 || strcmp(k, "key") == 0) {
        size_t n = 0;
        const char *s = llmc__jv_string(v, &cr->s, &n);
        if (!s && llmc__jv_kind(v) == JV_STRING)
            return LLMC_ENOTSUP; /* a NUL inside: json-c's reading decides */
        if (!s || n == 0 || strlen(s) != n)
            return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                                "cache control \"%s\" must be a non-empty string without "
                                "NUL characters",
                                k);
        if (k[0] == 'n') {
            llmc_status nst = llmc_namespace_check(s, "cache control \"namespace\"", cr->err);
            if (nst != LLMC_OK)
                return nst;
        }
        char *dup = llmc__strdup(s);
        if (!dup)
            return llmc_err_set(cr->err, LLMC_ENOMEM, 0, "out of memory");
        char **dst = k[0] == 'n' ? &ctl->ns : &ctl->key;
        free(*dst);
        *dst = dup;
    } else {
        return llmc_err_set(cr->err, LLMC_EINVAL, 0,
                            "cache control \"%s\" is unknown (known: no-cache, no-store, "
                            "ttl, s-maxage, namespace, use-cache, key, semantic, "
                            "semantic_threshold)",
                            k);
    }
    return LLMC_OK;
}

llmc_status llmc__read_controls(const llmc__jv *root, llmc__controls *ctl, llmc_err *err)
{
    llmc__jv c = llmc__jv_member(root, "caching");
    if (llmc__jv_kind(&c) != JV_ABSENT) {
        int b;
        if (boolv(&c, &b) != 0)
            return llmc_err_set(err, LLMC_EINVAL, 0,
                                "request field \"caching\" must be a boolean");
        ctl->use_cache = b;
    }
    c = llmc__jv_member(root, "cache");
    jv_kind k = llmc__jv_kind(&c);
    if (k == JV_ABSENT || k == JV_NULL)
        return LLMC_OK;
    if (k != JV_OBJECT)
        return llmc_err_set(err, LLMC_EINVAL, 0,
                            "request field \"cache\" must be an object of cache controls");
    ctl_reader cr = {ctl, err, LLMC_BUF_INIT};
    llmc_status st = llmc__jv_foreach(&c, read_control, &cr);
    llmc_buf_free(&cr.s);
    return st;
}


int llmc__wants_stream(const llmc__jv *root)
{
    llmc__jv v = llmc__jv_member(root, "stream");
    return llmc__jv_kind(&v) == JV_BOOL && llmc__jv_bool(&v);
}

/* ------------------------------------------------------------------ */
/* Parsing request text. */

llmc_status llmc__parse_request_text(const char *json, size_t len, json_object **out,
                                     llmc_err *err)
{
    *out = NULL;
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
        llmc__json_parse(json, len, LLMC__LONE_REJECT | LLMC__JSON_STRICT, LLMC_EINVAL,
                         "request JSON", &o, err);
    if (pst != LLMC_OK)
        return pst;
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return llmc_err_set(err, LLMC_EINVAL, 0, "request JSON must be an object");
    }
    *out = o;
    return LLMC_OK;
}

/* Read the controls of a parsed object into ctl and remove them from it
 * (they never go upstream and never enter the key). */
static llmc_status take_controls(json_object *obj, llmc__controls *ctl, llmc_err *err)
{
    llmc__jv root;
    memset(&root, 0, sizeof root);
    root.o = obj;
    llmc_status st = llmc__read_controls(&root, ctl, err);
    if (st != LLMC_OK)
        return st;
    json_object_object_del(obj, "caching");
    json_object_object_del(obj, "cache");
    return LLMC_OK;
}

/* ------------------------------------------------------------------ */
/* The request API. */

llmc_request *llmc_request_new(const char *model)
{
    llmc_request *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    llmc__controls_init(&r->ctl);
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
    llmc__controls_free(&r->ctl);
    free(r);
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
    llmc__controls_init(&r->ctl);
    llmc_status st = llmc__parse_request_text(json, len, &r->obj, err);
    if (st == LLMC_OK)
        st = take_controls(r->obj, &r->ctl, err);
    if (st != LLMC_OK) {
        llmc_request_free(r);
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
        /* Controls go through the one reader so they are validated. */
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
    if (llmc__json_parse(json, strlen(json), LLMC__LONE_REJECT | LLMC__JSON_STRICT, LLMC_EINVAL,
                         "request member", &v, NULL) != LLMC_OK)
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
        r->ctl.ttl_ms = seconds < 0 ? LLMC_TTL_DEFAULT
                                    : (seconds > LLMC_TTL_MAX_S ? LLMC_TTL_MAX_S : seconds) * 1000;
}

void llmc_request_set_s_maxage(llmc_request *r, int64_t seconds)
{
    if (r)
        r->ctl.max_age_ms =
            seconds < 0 ? -1 : (seconds > LLMC_TTL_MAX_S ? LLMC_TTL_MAX_S : seconds) * 1000;
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
    if (!r || (ns && *ns && llmc_namespace_check(ns, NULL, NULL) != LLMC_OK))
        return LLMC_EINVAL;
    return set_owned(&r->ctl.ns, ns && *ns ? ns : NULL);
}

llmc_status llmc_request_set_tenant(llmc_request *r, const char *tenant)
{
    if (!r)
        return LLMC_EINVAL;
    if (tenant && llmc_namespace_check(tenant, "tenant", NULL) != LLMC_OK)
        return LLMC_EINVAL;
    return set_owned(&r->ctl.tenant, tenant);
}

void llmc_request_get_controls(const llmc_request *r, llmc_cache_controls *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    out->ttl_ms = LLMC_TTL_DEFAULT;
    out->max_age_ms = -1;
    out->use_cache = -1;
    if (!r)
        return;
    out->no_cache = r->ctl.no_cache;
    out->no_store = r->ctl.no_store;
    out->ttl_ms = r->ctl.ttl_ms;
    out->max_age_ms = r->ctl.max_age_ms;
    out->use_cache = r->ctl.use_cache;
    out->namespace_ = r->ctl.ns;
    out->key = r->ctl.key;
    out->tenant = r->ctl.tenant;
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
