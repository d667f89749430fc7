/* The exception classes of the llmcache module and the mapping from the
 * C library's statuses to them. Every exception carries the C message and
 * the status: `status` (the symbolic name, "ERATELIMIT"), `code` (the
 * llmc_status value), `native` (the backend's or provider's own code) and
 * `status_code` (the HTTP status for provider errors, else None). */
#include "pyllmc.h"

typedef struct {
    const char *name;  /* attribute name in the module */
    int base;          /* index of the first base in this table, -1: Error only */
    PyObject **extra;  /* a builtin base added after it, or NULL */
    const char *doc;
    PyObject *cls;
} exc_def;

static PyObject *value_error_base, *lookup_error_base, *timeout_error_base,
    *connection_error_base;

enum {
    X_ERROR,
    X_INVALID,
    X_NOTFOUND,
    X_AUTH,
    X_RATELIMIT,
    X_BADREQUEST,
    X_CONTEXT,
    X_API,
    X_STREAM,
    X_TIMEOUT,
    X_CONN,
    X_CACHE,
    X_COUNT
};

static exc_def excs[X_COUNT] = {
    [X_ERROR] = {"Error", -2, NULL,
                 "Base class of every llmcache error. Attributes: status (the C status "
                 "name, e.g. 'ERATELIMIT'), code (its number), native (the backend's or "
                 "provider's own code, 0 if none), status_code (HTTP status of a "
                 "provider error, else None), message (the C library's message).",
                 NULL},
    [X_INVALID] = {"InvalidArgumentError", X_ERROR, &value_error_base,
                   "Bad input: an unknown option, a malformed URL, an invalid request "
                   "(EINVAL). The message names the offending part.",
                   NULL},
    [X_NOTFOUND] = {"NotFoundError", X_ERROR, &lookup_error_base,
                    "No such component: unknown provider, model prefix or cache type "
                    "(ENOTFOUND), or one not built in (ENOTBUILT).",
                    NULL},
    [X_AUTH] = {"AuthenticationError", X_ERROR, NULL,
                "The provider refused the credentials, or none were configured (EAUTH).",
                NULL},
    [X_RATELIMIT] = {"RateLimitError", X_ERROR, NULL,
                     "The provider rate-limited the call and retries ran out (ERATELIMIT).",
                     NULL},
    [X_BADREQUEST] = {"BadRequestError", X_ERROR, NULL,
                      "The provider rejected the request (EBADREQUEST, HTTP 4xx).", NULL},
    [X_CONTEXT] = {"ContextWindowExceededError", X_BADREQUEST, NULL,
                   "The request exceeds the model's context window (ECONTEXT).", NULL},
    [X_API] = {"APIError", X_ERROR, NULL,
               "The provider failed: a server error after retries (EUPSTREAM) or an "
               "unexpected answer (EPROVIDER).",
               NULL},
    [X_STREAM] = {"StreamError", X_API, NULL,
                  "The provider's stream ended before its end marker (ESTREAM); nothing "
                  "was cached.",
                  NULL},
    [X_TIMEOUT] = {"Timeout", X_ERROR, &timeout_error_base,
                   "The provider did not answer in time (ETIMEDOUT).", NULL},
    [X_CONN] = {"APIConnectionError", X_ERROR, &connection_error_base,
                "The provider could not be reached (ECONN).", NULL},
    [X_CACHE] = {"CacheError", X_ERROR, NULL,
                 "A raw cache operation (Cache.get, set, delete, flush, ping, stats) "
                 "failed: backend down, refused, too big, ... The status attribute says "
                 "which. Completion calls never raise it: there the cache fails open.",
                 NULL},
};

int pyllmc_errors_init(PyObject *module)
{
    value_error_base = PyExc_ValueError;
    lookup_error_base = PyExc_LookupError;
    timeout_error_base = PyExc_TimeoutError;
    connection_error_base = PyExc_ConnectionError;
    for (int i = 0; i < X_COUNT; i++) {
        exc_def *d = &excs[i];
        PyObject *bases;
        PyObject *first = d->base == -2 ? PyExc_Exception : excs[d->base].cls;
        if (d->extra)
            bases = PyTuple_Pack(2, first, *d->extra);
        else
            bases = PyTuple_Pack(1, first);
        if (!bases)
            return -1;
        char qual[96];
        snprintf(qual, sizeof qual, "llmcache.%s", d->name);
        d->cls = PyErr_NewExceptionWithDoc(qual, d->doc, bases, NULL);
        Py_DECREF(bases);
        if (!d->cls)
            return -1;
        Py_INCREF(d->cls);
        if (PyModule_AddObject(module, d->name, d->cls) < 0) {
            Py_DECREF(d->cls);
            return -1;
        }
    }
    return 0;
}

static int client_class(llmc_status st)
{
    switch (st) {
    case LLMC_EINVAL: return X_INVALID;
    case LLMC_ENOTFOUND:
    case LLMC_ENOTBUILT: return X_NOTFOUND;
    case LLMC_EAUTH:
    case LLMC_EPERM: return X_AUTH;
    case LLMC_ERATELIMIT: return X_RATELIMIT;
    case LLMC_EBADREQUEST: return X_BADREQUEST;
    case LLMC_ECONTEXT: return X_CONTEXT;
    case LLMC_EUPSTREAM:
    case LLMC_EPROVIDER: return X_API;
    case LLMC_ESTREAM: return X_STREAM;
    case LLMC_ETIMEDOUT: return X_TIMEOUT;
    case LLMC_ECONN: return X_CONN;
    default: return X_ERROR;
    }
}

static int cache_class(llmc_status st)
{
    switch (st) {
    case LLMC_EINVAL: return X_INVALID;
    case LLMC_ENOTFOUND:
    case LLMC_ENOTBUILT: return X_NOTFOUND;
    default: return X_CACHE;
    }
}

static int set_attr_steal(PyObject *o, const char *name, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyObject_SetAttrString(o, name, v);
    Py_DECREF(v);
    return rc;
}

PyObject *pyllmc_raise(llmc_status st, long native, const char *msg, int from_cache)
{
    if (st == LLMC_ENOMEM)
        return PyErr_NoMemory();
    if (!msg || !*msg)
        msg = llmc_strerror(st);
    PyObject *cls = excs[from_cache ? cache_class(st) : client_class(st)].cls;
    /* The C message may hold bytes that are not UTF-8 (a server's reply
     * quoted in it): replace them rather than fail. */
    PyObject *text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
    if (!text)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(cls, text);
    if (!exc) {
        Py_DECREF(text);
        return NULL;
    }
    int http = !from_cache && native >= 100 && native <= 599 &&
               (st == LLMC_EAUTH || st == LLMC_EPERM || st == LLMC_ERATELIMIT ||
                st == LLMC_EBADREQUEST || st == LLMC_ECONTEXT || st == LLMC_EUPSTREAM ||
                st == LLMC_EPROVIDER);
    if (set_attr_steal(exc, "message", text) < 0 ||
        set_attr_steal(exc, "status", PyUnicode_FromString(llmc_status_name(st))) < 0 ||
        set_attr_steal(exc, "code", PyLong_FromLong((long)st)) < 0 ||
        set_attr_steal(exc, "native", PyLong_FromLong(native)) < 0 ||
        set_attr_steal(exc, "status_code",
                       http ? PyLong_FromLong(native) : Py_NewRef(Py_None)) < 0) {
        Py_DECREF(exc);
        return NULL;
    }
    PyErr_SetObject(cls, exc);
    Py_DECREF(exc);
    return NULL;
}

PyObject *pyllmc_raise_err(const llmc_err *err, int from_cache)
{
    return pyllmc_raise(err->status, err->native, err->msg, from_cache);
}
