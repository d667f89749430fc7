/* llmcache.Cache: one cache handle (any backend: local, redis,
 * redis-cluster, memcached, sqlite, plugins) plus the completion client
 * attached to it. The raw key/value methods return the backend's real
 * status (CacheError when it is down); completion calls through the
 * default cache fail open instead. Every call that can wait on a network
 * or a disk runs without the GIL; the handle and its client are shared by
 * any number of threads. */
#include <stdlib.h>

#include "pyllmc.h"

#include <structmember.h>

/* Keys and values: str (as UTF-8) or bytes. The pointer lives as long as
 * `o`, which the caller holds across the GIL-free call. */
static int bytes_arg(PyObject *o, const char *what, const char **p, Py_ssize_t *n)
{
    if (PyUnicode_Check(o)) {
        *p = PyUnicode_AsUTF8AndSize(o, n);
        return *p ? 0 : -1;
    }
    if (PyBytes_Check(o)) {
        *p = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "%s must be str or bytes, not %.80s", what,
                 Py_TYPE(o)->tp_name);
    return -1;
}

/* An option value as text: str, int, float or bool. */
static int set_option(llmc_options *opts, const char *name, PyObject *v)
{
    PyObject *s = NULL;
    if (PyBool_Check(v))
        s = PyUnicode_FromString(v == Py_True ? "true" : "false");
    else if (PyUnicode_Check(v))
        s = Py_NewRef(v);
    else if (PyLong_Check(v) || PyFloat_Check(v))
        s = PyObject_Str(v);
    else {
        PyErr_Format(PyExc_TypeError, "Cache option %s must be str, int, float or bool, not %.80s",
                     name, Py_TYPE(v)->tp_name);
        return -1;
    }
    if (!s)
        return -1;
    const char *t = PyUnicode_AsUTF8(s);
    int rc = 0;
    if (!t)
        rc = -1;
    else if (llmc_options_set(opts, name, t) != LLMC_OK) {
        PyErr_Format(PyExc_ValueError, "Cache option %s: invalid name or value", name);
        rc = -1;
    }
    Py_DECREF(s);
    return rc;
}

/* Backends other than these take their servers or their path in a URL
 * only (memcached, redis-cluster, plugins such as file): for them
 * host/port (or startup_nodes, LiteLLM's cluster form) and path are
 * turned into `<type>://...`. Returns 1 when a URL was made, 0 when there
 * was nothing to put in one, -1 with an exception set. */
static int type_url(const char *type, llmc_options *opts, PyObject *nodes, llmc_buf *url)
{
    if (strcmp(type, "local") == 0 || strcmp(type, "redis") == 0 || strcmp(type, "sqlite") == 0)
        return 0;
    const char *host = llmc_options_get(opts, "host"), *port = llmc_options_get(opts, "port");
    const char *path = llmc_options_get(opts, "path");
    if (!nodes && !host && !path)
        return 0;
    if (llmc_buf_printf(url, "%s://", type) != LLMC_OK)
        goto oom;
    if (nodes) {
        PyObject *fast = PySequence_Fast(nodes, "startup_nodes must be a list of "
                                                "{\"host\": ..., \"port\": ...} dicts");
        if (!fast)
            return -1;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
            PyObject *d = PySequence_Fast_GET_ITEM(fast, i);
            PyObject *h = PyDict_Check(d) ? PyDict_GetItemString(d, "host") : NULL;
            PyObject *p = PyDict_Check(d) ? PyDict_GetItemString(d, "port") : NULL;
            if (!h || !PyUnicode_Check(h) || !p || !(PyLong_Check(p) || PyUnicode_Check(p))) {
                Py_DECREF(fast);
                PyErr_SetString(PyExc_TypeError, "startup_nodes must be a list of "
                                                 "{\"host\": str, \"port\": int} dicts");
                return -1;
            }
            PyObject *ps = PyObject_Str(p);
            const char *hs = PyUnicode_AsUTF8(h), *pss = ps ? PyUnicode_AsUTF8(ps) : NULL;
            int bad = !hs || !pss || llmc_buf_printf(url, "%s%s:%s", i ? "," : "", hs, pss) != LLMC_OK;
            Py_XDECREF(ps);
            if (bad) {
                Py_DECREF(fast);
                if (!PyErr_Occurred())
                    PyErr_NoMemory();
                return -1;
            }
        }
        Py_DECREF(fast);
    } else if (host) {
        if (llmc_buf_printf(url, "%s%s%s", host, port ? ":" : "", port ? port : "") != LLMC_OK)
            goto oom;
    } else {
        /* Characters a URL would misread are percent-encoded. */
        for (const char *c = path; *c; c++) {
            llmc_status st = strchr("%?# ", *c) ? llmc_buf_printf(url, "%%%02X", (unsigned char)*c)
                                                : llmc_buf_append(url, c, 1);
            if (st != LLMC_OK)
                goto oom;
        }
    }
    llmc_options_unset(opts, "host");
    llmc_options_unset(opts, "port");
    llmc_options_unset(opts, "path");
    return 1;
oom:
    PyErr_NoMemory();
    return -1;
}

/* Cache(type=None, host=None, port=None, password=None, namespace=None,
 *       ttl=None, url=None, **options) */
static PyObject *cache_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static const char *const named[] = {"type", "host", "port", "password", "namespace",
                                        "ttl", "url", NULL};
    PyObject *val[7] = {NULL};
    PyObject *nodes = NULL;
    llmc_buf made_url = LLMC_BUF_INIT;
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError,
                        "Cache() takes at most one positional argument (type); give the "
                        "others by name");
        return NULL;
    }
    if (nargs == 1)
        val[0] = PyTuple_GET_ITEM(args, 0);
    llmc_options *opts = llmc_options_new();
    if (!opts)
        return PyErr_NoMemory();
    PyObject *key, *v;
    Py_ssize_t pos = 0;
    while (kwargs && PyDict_Next(kwargs, &pos, &key, &v)) {
        const char *name = PyUnicode_AsUTF8(key);
        if (!name)
            goto fail;
        int i;
        for (i = 0; named[i] && strcmp(named[i], name) != 0; i++)
            ;
        if (named[i]) {
            if (i == 0 && val[0]) {
                PyErr_SetString(PyExc_TypeError, "Cache() got type twice");
                goto fail;
            }
            val[i] = v;
        } else if (strcmp(name, "startup_nodes") == 0) {
            nodes = v == Py_None ? NULL : v;
        } else if (v != Py_None && set_option(opts, name, v) < 0) {
            goto fail;
        }
    }
    for (int i = 0; i < 7; i++)
        if (val[i] == Py_None)
            val[i] = NULL;
    const char *ctype = "local", *url = NULL;
    if (val[0] && !(ctype = PyUnicode_Check(val[0]) ? PyUnicode_AsUTF8(val[0]) : NULL)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "Cache type must be a str");
        goto fail;
    }
    if (val[6]) {
        if (val[0]) {
            PyErr_SetString(PyExc_ValueError, "Cache(): give type= or url=, not both");
            goto fail;
        }
        if (!(url = PyUnicode_Check(val[6]) ? PyUnicode_AsUTF8(val[6]) : NULL)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "Cache url must be a str");
            goto fail;
        }
    }
    for (int i = 1; i <= 5; i++)
        if (val[i] && set_option(opts, named[i], val[i]) < 0)
            goto fail;
    if (!url && strcmp(ctype, "redis") == 0) {
        /* LiteLLM's environment variables fill in what was not given. */
        static const char *const env[][2] = {
            {"host", "REDIS_HOST"}, {"port", "REDIS_PORT"}, {"password", "REDIS_PASSWORD"}};
        for (int i = 0; i < 3; i++) {
            const char *e = getenv(env[i][1]);
            if (!val[i + 1] && e && *e && llmc_options_set(opts, env[i][0], e) != LLMC_OK) {
                PyErr_NoMemory();
                goto fail;
            }
        }
    }
    if (!url) {
        int made = type_url(ctype, opts, nodes, &made_url);
        if (made < 0)
            goto fail;
        if (made)
            url = made_url.data;
    } else if (nodes) {
        PyErr_SetString(PyExc_ValueError, "Cache(): give url= or startup_nodes=, not both");
        goto fail;
    }

    PyLlmc_Cache *self = (PyLlmc_Cache *)type->tp_alloc(type, 0);
    if (!self)
        goto fail;
    self->get_cache_key = Py_NewRef(Py_None);
    llmc_err err;
    llmc_status st;
    llmc_cache *c = NULL;
    llmc_client *cl = NULL;
    char *type_copy = url ? NULL : strdup(ctype);
    char *url_copy = url ? strdup(url) : NULL;
    if (!type_copy && !url_copy) {
        free(type_copy);
        Py_DECREF(self);
        PyErr_NoMemory();
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    st = url_copy ? llmc_cache_open(url_copy, opts, &c, &err)
                  : llmc_cache_open_type(type_copy, opts, &c, &err);
    if (st == LLMC_OK && (st = llmc_client_new(c, NULL, &cl, &err)) != LLMC_OK) {
        llmc_cache_close(c);
        c = NULL;
    }
    Py_END_ALLOW_THREADS
    free(type_copy);
    free(url_copy);
    llmc_options_free(opts);
    llmc_buf_free(&made_url);
    if (st != LLMC_OK) {
        Py_DECREF(self);
        return pyllmc_raise_err(&err, 1);
    }
    self->cache = c;
    self->client = cl;
    return (PyObject *)self;
fail:
    llmc_options_free(opts);
    llmc_buf_free(&made_url);
    return NULL;
}

/* get_cache_key may be a closure that refers back to its Cache: the
 * collector must be able to break that cycle. */
static int cache_traverse(PyObject *o, visitproc visit, void *arg)
{
    Py_VISIT(((PyLlmc_Cache *)o)->get_cache_key);
    return 0;
}

static int cache_clear(PyObject *o)
{
    Py_CLEAR(((PyLlmc_Cache *)o)->get_cache_key);
    return 0;
}

static void cache_dealloc(PyObject *o)
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    PyObject_GC_UnTrack(o);
    Py_CLEAR(self->get_cache_key);
    llmc_client *cl = self->client;
    llmc_cache *c = self->cache;
    if (cl || c) {
        /* Closing may talk to the server (QUIT) and joins threads. */
        Py_BEGIN_ALLOW_THREADS
        llmc_client_free(cl);
        llmc_cache_close(c);
        Py_END_ALLOW_THREADS
    }
    Py_TYPE(o)->tp_free(o);
}

static PyObject *raise_cache(PyLlmc_Cache *self, llmc_status st)
{
    return pyllmc_raise(st, llmc_cache_native_errcode(self->cache), llmc_cache_errmsg(self->cache),
                        1);
}

static PyObject *cache_get(PyObject *o, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"key", "default", "decode", NULL};
    PyObject *key, *def = Py_None;
    int decode = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|O$p:get", kw, &key, &def, &decode))
        return NULL;
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    const char *k;
    Py_ssize_t klen;
    if (bytes_arg(key, "key", &k, &klen) < 0)
        return NULL;
    llmc_buf v = LLMC_BUF_INIT;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_get(self->cache, k, (size_t)klen, &v);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK) {
        /* The buffer is ours whatever the status: a backend may have read
         * into it before deciding the value does not count (a memcached
         * value of a flushed namespace generation is a miss). */
        llmc_buf_free(&v);
        return st == LLMC_MISS ? Py_NewRef(def) : raise_cache(self, st);
    }
    PyObject *r = decode ? PyUnicode_DecodeUTF8(v.data ? v.data : "", (Py_ssize_t)v.len, "strict")
                         : PyBytes_FromStringAndSize(v.data, (Py_ssize_t)v.len);
    llmc_buf_free(&v);
    return r;
}

/* ttl in seconds (int or float) to the C milliseconds; None = default. */
static int ttl_arg(PyObject *ttl, int64_t *ms)
{
    if (ttl == Py_None) {
        *ms = LLMC_TTL_DEFAULT;
        return 0;
    }
    double s = PyFloat_AsDouble(ttl);
    if (s == -1.0 && PyErr_Occurred())
        return -1;
    if (!(s >= 0) || s > 9.2e15) {
        PyErr_SetString(PyExc_ValueError, "ttl must be a number of seconds >= 0 (0 = never expires)");
        return -1;
    }
    *ms = s == 0 ? LLMC_TTL_NEVER : (int64_t)(s * 1000.0);
    if (s > 0 && *ms == 0)
        *ms = 1;
    return 0;
}

static PyObject *cache_set(PyObject *o, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"key", "value", "ttl", NULL};
    PyObject *key, *value, *ttl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:set", kw, &key, &value, &ttl))
        return NULL;
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    const char *k, *v;
    Py_ssize_t klen, vlen;
    int64_t ms;
    if (bytes_arg(key, "key", &k, &klen) < 0 || bytes_arg(value, "value", &v, &vlen) < 0 ||
        ttl_arg(ttl, &ms) < 0)
        return NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_set(self->cache, k, (size_t)klen, v, (size_t)vlen, ms);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK)
        return raise_cache(self, st);
    Py_RETURN_NONE;
}

static PyObject *cache_delete(PyObject *o, PyObject *key)
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    const char *k;
    Py_ssize_t klen;
    if (bytes_arg(key, "key", &k, &klen) < 0)
        return NULL;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_del(self->cache, k, (size_t)klen);
    Py_END_ALLOW_THREADS
    if (st == LLMC_MISS)
        Py_RETURN_FALSE;
    if (st != LLMC_OK)
        return raise_cache(self, st);
    Py_RETURN_TRUE;
}

static PyObject *cache_flush(PyObject *o, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"namespace", NULL};
    const char *ns = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|z:flush", kw, &ns))
        return NULL;
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    uint64_t deleted = 0;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_flush(self->cache, ns, &deleted);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK)
        return raise_cache(self, st);
    return PyLong_FromUnsignedLongLong(deleted);
}

static PyObject *cache_flush_all(PyObject *o, PyObject *Py_UNUSED(arg))
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_flush_all(self->cache);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK)
        return raise_cache(self, st);
    Py_RETURN_NONE;
}

static PyObject *cache_ping(PyObject *o, PyObject *Py_UNUSED(arg))
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_ping(self->cache);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK)
        return raise_cache(self, st);
    Py_RETURN_TRUE;
}

typedef struct {
    char **names;
    int64_t *values;
    size_t n, cap;
    int oom;
} stat_list;

static void collect_stat(void *ud, const char *name, int64_t value)
{
    stat_list *l = ud;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **nn = realloc(l->names, cap * sizeof *nn);
        if (nn)
            l->names = nn;
        int64_t *nv = nn ? realloc(l->values, cap * sizeof *nv) : NULL;
        if (nv)
            l->values = nv;
        if (!nn || !nv) {
            l->oom = 1;
            return;
        }
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name))) {
        l->oom = 1;
        return;
    }
    l->values[l->n++] = value;
}

static PyObject *cache_stats(PyObject *o, PyObject *Py_UNUSED(arg))
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    llmc_stats s;
    stat_list l = {0};
    llmc_status st, st2;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_stats(self->cache, &s, sizeof s);
    st2 = st == LLMC_OK ? llmc_cache_stats_foreach(self->cache, collect_stat, &l) : st;
    Py_END_ALLOW_THREADS
    PyObject *d = NULL;
    if (st != LLMC_OK) {
        raise_cache(self, st);
        goto out;
    }
    if (l.oom) {
        PyErr_NoMemory();
        goto out;
    }
    d = Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:O}",
        "hits", s.hits, "misses", s.misses, "sets", s.sets, "deletes", s.deletes, "errors",
        s.errors, "corrupt", s.corrupt, "bytes_read", s.bytes_read, "bytes_written",
        s.bytes_written, "get_count", s.get_count, "get_ns_total", s.get_ns_total, "get_ns_max",
        s.get_ns_max, "get_ns_p50", s.get_ns_p50, "get_ns_p99", s.get_ns_p99, "set_count",
        s.set_count, "set_ns_total", s.set_ns_total, "set_ns_max", s.set_ns_max, "set_ns_p50",
        s.set_ns_p50, "set_ns_p99", s.set_ns_p99, "breaker_trips", s.breaker_trips,
        "breaker_skips", s.breaker_skips, "breaker_open", s.breaker_open ? Py_True : Py_False);
    if (!d)
        goto out;
    /* Backend-specific counters (entries, pool waits, ...) under their
     * own names; ENOTSUP (none) is not an error. */
    if (st2 == LLMC_OK) {
        PyObject *b = PyDict_New();
        for (size_t i = 0; b && i < l.n; i++) {
            PyObject *v = PyLong_FromLongLong(l.values[i]);
            if (!v || PyDict_SetItemString(b, l.names[i], v) < 0)
                Py_CLEAR(b);
            Py_XDECREF(v);
        }
        if (!b || PyDict_SetItemString(d, "backend", b) < 0)
            Py_CLEAR(d);
        Py_XDECREF(b);
    }
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(l.values);
    return d;
}

/* LiteLLM's add_cache(result, cache_key=..., **kwargs) and
 * get_cache(cache_key=..., **kwargs). With cache_key the value is a raw
 * one at that key; without, the key is the one completion() computes for
 * the keyword arguments (model, messages, ...) and the value is a stored
 * response entry that completion() answers from. */
static PyObject *pop_kw(PyObject *kwargs, const char *name)
{
    PyObject *v = kwargs ? PyDict_GetItemString(kwargs, name) : NULL;
    if (!v)
        return NULL;
    Py_INCREF(v);
    PyDict_DelItemString(kwargs, name);
    return v;
}

static PyObject *cache_add_cache(PyObject *o, PyObject *args, PyObject *kwargs_in)
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    PyObject *kwargs = kwargs_in ? PyDict_Copy(kwargs_in) : PyDict_New();
    if (!kwargs)
        return NULL;
    PyObject *result = PyTuple_GET_SIZE(args) > 0 ? Py_NewRef(PyTuple_GET_ITEM(args, 0))
                                                 : pop_kw(kwargs, "result");
    PyObject *key = pop_kw(kwargs, "cache_key"), *ttl = pop_kw(kwargs, "ttl");
    PyObject *ret = NULL;
    llmc_buf k = LLMC_BUF_INIT, body = LLMC_BUF_INIT;
    int64_t ms = LLMC_TTL_DEFAULT;
    if (!result) {
        PyErr_SetString(PyExc_TypeError, "add_cache() needs the result to store");
        goto out;
    }
    if (ttl && ttl_arg(ttl, &ms) < 0)
        goto out;
    llmc_status st;
    if (key && key != Py_None) {
        const char *kp, *vp;
        Py_ssize_t kl, vl;
        if (bytes_arg(key, "cache_key", &kp, &kl) < 0 || bytes_arg(result, "result", &vp, &vl) < 0)
            goto out;
        Py_BEGIN_ALLOW_THREADS
        st = llmc_cache_set(self->cache, kp, (size_t)kl, vp, (size_t)vl, ms);
        Py_END_ALLOW_THREADS
    } else {
        if (!PyDict_Check(result) && !PyObject_TypeCheck(result, &PyLlmc_ResponseType)) {
            PyErr_SetString(PyExc_TypeError, "add_cache() of a completion's arguments stores a "
                                             "response: give a dict or a Response");
            goto out;
        }
        if (pyllmc_request_key(self, kwargs, &k) < 0 || pyllmc_json_append(&body, result, "result") < 0)
            goto out;
        Py_BEGIN_ALLOW_THREADS
        st = llmc_cache_put_entry(self->cache, k.data, k.len, LLMC_CALL_CHAT, body.data, body.len,
                                  ms, 0);
        Py_END_ALLOW_THREADS
    }
    if (st != LLMC_OK)
        raise_cache(self, st);
    else
        ret = Py_NewRef(Py_None);
out:
    llmc_buf_free(&k);
    llmc_buf_free(&body);
    Py_XDECREF(result);
    Py_XDECREF(key);
    Py_XDECREF(ttl);
    Py_DECREF(kwargs);
    return ret;
}

static PyObject *cache_get_cache(PyObject *o, PyObject *args, PyObject *kwargs_in)
{
    PyLlmc_Cache *self = (PyLlmc_Cache *)o;
    if (PyTuple_GET_SIZE(args) > 0) {
        PyErr_SetString(PyExc_TypeError, "get_cache() takes keyword arguments only");
        return NULL;
    }
    PyObject *kwargs = kwargs_in ? PyDict_Copy(kwargs_in) : PyDict_New();
    if (!kwargs)
        return NULL;
    PyObject *key = pop_kw(kwargs, "cache_key"), *ret = NULL;
    llmc_buf k = LLMC_BUF_INIT;
    if (key && key != Py_None) {
        PyObject *a = PyTuple_Pack(1, key);
        ret = a ? cache_get(o, a, NULL) : NULL;
        Py_XDECREF(a);
        goto out;
    }
    if (pyllmc_request_key(self, kwargs, &k) < 0)
        goto out;
    llmc_lookup l = LLMC_LOOKUP_INIT;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_cache_get_entry(self->cache, k.data, k.len, -1, 0, &l);
    Py_END_ALLOW_THREADS
    if (st == LLMC_MISS)
        ret = Py_NewRef(Py_None);
    else if (st != LLMC_OK)
        raise_cache(self, st);
    else
        ret = pyllmc_parse_json(l.entry.body, l.entry.body_len);
    llmc_lookup_free(&l);
out:
    llmc_buf_free(&k);
    Py_XDECREF(key);
    Py_DECREF(kwargs);
    return ret;
}

static PyObject *cache_get_backend(PyObject *o, void *Py_UNUSED(c))
{
    return PyUnicode_FromString(llmc_cache_backend_name(((PyLlmc_Cache *)o)->cache));
}

static PyObject *cache_get_url(PyObject *o, void *Py_UNUSED(c))
{
    const char *u = llmc_cache_url(((PyLlmc_Cache *)o)->cache);
    return u ? PyUnicode_FromString(u) : Py_NewRef(Py_None);
}

static PyObject *cache_get_namespace(PyObject *o, void *Py_UNUSED(c))
{
    const char *ns = llmc_cache_namespace(((PyLlmc_Cache *)o)->cache);
    return ns ? PyUnicode_FromString(ns) : Py_NewRef(Py_None);
}

static PyObject *cache_repr(PyObject *o)
{
    const char *u = llmc_cache_url(((PyLlmc_Cache *)o)->cache);
    return PyUnicode_FromFormat("<llmcache.Cache %s>", u ? u : "?");
}

static PyMethodDef cache_methods[] = {
    {"get", (PyCFunction)(void (*)(void))cache_get, METH_VARARGS | METH_KEYWORDS,
     "get(key, default=None, *, decode=True) -> str | bytes | None\n\n"
     "The raw value stored at key (str or bytes), or default when absent or expired.\n"
     "decode=True returns str (UnicodeDecodeError if the value is not UTF-8),\n"
     "decode=False bytes. Raises CacheError when the backend fails."},
    {"set", (PyCFunction)(void (*)(void))cache_set, METH_VARARGS | METH_KEYWORDS,
     "set(key, value, ttl=None) -> None\n\n"
     "Store value (str or bytes) at key. ttl in seconds (0 = never expires,\n"
     "None = the cache's default). Raises CacheError (status 'ETOOBIG' for a value\n"
     "over max_item_bytes; nothing is written then)."},
    {"delete", cache_delete, METH_O,
     "delete(key) -> bool\n\nDelete key; True if it existed (backends that cannot tell say True)."},
    {"flush", (PyCFunction)(void (*)(void))cache_flush, METH_VARARGS | METH_KEYWORDS,
     "flush(namespace=None) -> int\n\n"
     "Delete every key of namespace (default: the cache's namespace option;\n"
     "InvalidArgumentError when neither is set). Returns the number of keys removed\n"
     "where the backend can count them. Other namespaces are untouched."},
    {"flush_all", cache_flush_all, METH_NOARGS,
     "flush_all() -> None\n\nDelete everything the backend holds (Redis: the selected database;\n"
     "memcached: every server). Explicitly named because it is drastic."},
    {"add_cache", (PyCFunction)(void (*)(void))cache_add_cache, METH_VARARGS | METH_KEYWORDS,
     "add_cache(result, *, cache_key=None, ttl=None, **kwargs) -> None\n\n"
     "LiteLLM's add_cache. With cache_key: store result (str or bytes) at that key.\n"
     "Without: kwargs are a completion's arguments (model, messages, ...) and result\n"
     "(a dict or Response) is stored as the response completion() will answer them\n"
     "with (its key from get_cache_key when set)."},
    {"get_cache", (PyCFunction)(void (*)(void))cache_get_cache, METH_VARARGS | METH_KEYWORDS,
     "get_cache(*, cache_key=None, **kwargs) -> Any\n\n"
     "LiteLLM's get_cache: the raw str at cache_key, or for a completion's arguments\n"
     "the stored response as an Object; None when absent."},
    {"ping", cache_ping, METH_NOARGS,
     "ping() -> True\n\nCheck that the backend answers; raises CacheError if not."},
    {"stats", cache_stats, METH_NOARGS,
     "stats() -> dict\n\nThe handle's counters (hits, misses, sets, errors, latencies in ns,\n"
     "circuit breaker) and under 'backend' the backend's own counters."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cache_getset[] = {
    {"backend", cache_get_backend, NULL, "The backend's name ('local', 'redis', ...).", NULL},
    {"url", cache_get_url, NULL, "The cache URL with any password replaced by ***.", NULL},
    {"namespace", cache_get_namespace, NULL, "The namespace option, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef cache_members[] = {
    {"get_cache_key", T_OBJECT, offsetof(PyLlmc_Cache, get_cache_key), 0,
     "LiteLLM's key override: a function fn(*args, **kwargs) -> str called with the\n"
     "completion call's arguments; its result is the exact cache key (no namespace\n"
     "prefix is added). None (the default) uses the key strategy."},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject PyLlmc_CacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmcache.Cache",
    .tp_basicsize = sizeof(PyLlmc_Cache),
    .tp_dealloc = cache_dealloc,
    .tp_repr = cache_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = cache_traverse,
    .tp_clear = cache_clear,
    .tp_doc =
        "Cache(type=None, host=None, port=None, password=None, namespace=None,\n"
        "      ttl=None, url=None, **options)\n--\n\n"
        "A response cache, as LiteLLM's Cache. type is 'local', 'redis',\n"
        "'redis-cluster', 'memcached', 'sqlite' or a plugin's backend name; or give a\n"
        "url= ('redis://:pw@host:6379/0', 'sqlite:///path.db', ...) instead. For\n"
        "type='redis', host, port and password default to $REDIS_HOST, $REDIS_PORT and\n"
        "$REDIS_PASSWORD. ttl is the default entry lifetime in seconds. Further\n"
        "keyword options are the library's cache options (max_entries, path, db,\n"
        "timeout_ms, serializer, mode, ...); unknown ones raise InvalidArgumentError.\n\n"
        "Set llmcache.cache = Cache(...) to cache completion(), text_completion() and\n"
        "embedding() calls. One Cache may be used by any number of threads.",
    .tp_methods = cache_methods,
    .tp_members = cache_members,
    .tp_getset = cache_getset,
    .tp_new = cache_new,
};

int pyllmc_cache_init(PyObject *module)
{
    if (PyType_Ready(&PyLlmc_CacheType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Cache", (PyObject *)&PyLlmc_CacheType);
}
