/* completion(), text_completion(), embedding() and their asyncio forms.
 * A call's arguments become one OpenAI-format JSON request text (so a
 * repeated call is recognised by the client's request memo), the C client
 * answers it without the GIL, and the answer comes back as a Response.
 * The cache is the module attribute `cache` at call time (None: no
 * caching), as litellm.cache is. */
#include "pyllmc.h"

enum { K_CHAT, K_TEXT, K_EMBED };

static const char *const pos_names[3][2] = {
    {"model", "messages"}, {"model", "prompt"}, {"model", "input"}};
static const char *const func_names[3] = {"completion", "text_completion", "embedding"};

static llmc_client *uncached;

llmc_client *pyllmc_uncached_client(void)
{
    if (!uncached) {
        llmc_err err;
        llmc_client *c = NULL;
        if (llmc_client_new(NULL, NULL, &c, &err) != LLMC_OK) {
            pyllmc_raise_err(&err, 0);
            return NULL;
        }
        uncached = c; /* the GIL serialises this first use */
    }
    return uncached;
}

/* name: NUL-terminated (it names the argument in error messages). */
/* Exact comparison of an argument name (which may hold a NUL) with `lit`. */
static int name_is(const char *name, Py_ssize_t nlen, const char *lit)
{
    return (size_t)nlen == strlen(lit) && memcmp(name, lit, (size_t)nlen) == 0;
}

static int put_member(llmc_buf *b, int *first, const char *name, size_t nlen, PyObject *v)
{
    if (!*first && llmc_buf_append(b, ",", 1) != LLMC_OK) {
        PyErr_NoMemory();
        return -1;
    }
    *first = 0;
    if (pyllmc_json_append_str(b, name, nlen) < 0 || llmc_buf_append(b, ":", 1) != LLMC_OK) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    return pyllmc_json_append(b, v, name);
}

/* The key from LiteLLM's get_cache_key(*args, **kwargs) override, called
 * with the call's arguments by name. New reference to a str, or NULL. */
static PyObject *custom_key(PyObject *fn, int kind, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames)
{
    PyObject *kw = PyDict_New();
    if (!kw)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++)
        if (PyDict_SetItemString(kw, pos_names[kind][i], args[i]) < 0)
            goto fail;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++)
        if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
            goto fail;
    PyObject *empty = PyTuple_New(0);
    if (!empty)
        goto fail;
    PyObject *key = PyObject_Call(fn, empty, kw);
    Py_DECREF(empty);
    Py_DECREF(kw);
    if (key && !PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "get_cache_key must return a str, not %.80s",
                     Py_TYPE(key)->tp_name);
        Py_CLEAR(key);
    }
    if (key && PyUnicode_GET_LENGTH(key) == 0) {
        PyErr_SetString(PyExc_ValueError, "get_cache_key returned an empty key");
        Py_CLEAR(key);
    }
    return key;
fail:
    Py_DECREF(kw);
    return NULL;
}

static PyObject *do_call(PyObject *module, int kind, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    if (nargs > 2)
        return PyErr_Format(PyExc_TypeError,
                            "%s() takes at most 2 positional arguments (%s, %s); give the "
                            "others by name",
                            func_names[kind], pos_names[kind][0], pos_names[kind][1]);
    PyObject *cache = PyDict_GetItemString(PyModule_GetDict(module), "cache");
    if (cache == Py_None)
        cache = NULL;
    if (cache && !PyObject_TypeCheck(cache, &PyLlmc_CacheType))
        return PyErr_Format(PyExc_TypeError, "llmcache.cache must be a llmcache.Cache or None, not %.80s",
                            Py_TYPE(cache)->tp_name);
    Py_XINCREF(cache); /* held across the GIL-free call */
    PyLlmc_Cache *co = (PyLlmc_Cache *)cache;
    PyObject *keyfn = co && co->get_cache_key != Py_None ? co->get_cache_key : NULL;
    Py_XINCREF(keyfn);

    llmc_buf b = LLMC_BUF_INIT;
    PyObject *result = NULL, *ctl = NULL, *key = NULL;
    int first = 1, stream = 0;
    if (llmc_buf_reserve(&b, 4096) != LLMC_OK || llmc_buf_append(&b, "{", 1) != LLMC_OK) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        const char *n = pos_names[kind][i];
        if (args[i] != Py_None && put_member(&b, &first, n, strlen(n), args[i]) < 0)
            goto out;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        Py_ssize_t nlen;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(kwnames, i), &nlen);
        PyObject *v = args[nargs + i];
        if (!name)
            goto out;
        for (Py_ssize_t j = 0; j < nargs; j++)
            if (name_is(name, nlen, pos_names[kind][j])) {
                PyErr_Format(PyExc_TypeError, "%s() got %s twice", func_names[kind], name);
                goto out;
            }
        if (name_is(name, nlen, "stream")) {
            if ((stream = v == Py_None ? 0 : PyObject_IsTrue(v)) < 0)
                goto out;
            if (stream && kind != K_CHAT) {
                PyErr_Format(PyExc_ValueError, "%s() does not stream; only completion() does",
                             func_names[kind]);
                goto out;
            }
            continue;
        }
        if (v == Py_None)
            continue; /* LiteLLM drops parameters left at None */
        if (name_is(name, nlen, "cache")) {
            if (!PyDict_Check(v)) {
                PyErr_Format(PyExc_TypeError,
                             "cache= takes the per-call controls as a dict ({\"no-cache\": True, "
                             "\"ttl\": 60, ...}), not %.80s",
                             Py_TYPE(v)->tp_name);
                goto out;
            }
            ctl = PyDict_Copy(v);
            if (!ctl)
                goto out;
            continue;
        }
        if (put_member(&b, &first, name, (size_t)nlen, v) < 0)
            goto out;
    }
    if (keyfn) {
        if (!(key = custom_key(keyfn, kind, args, nargs, kwnames)))
            goto out;
        if (!ctl && !(ctl = PyDict_New()))
            goto out;
        if (PyDict_SetItemString(ctl, "key", key) < 0)
            goto out;
    }
    if (ctl && put_member(&b, &first, "cache", 5, ctl) < 0)
        goto out;
    if (llmc_buf_append(&b, "}", 1) != LLMC_OK) {
        PyErr_NoMemory();
        goto out;
    }

    llmc_client *client = co ? co->client : pyllmc_uncached_client();
    if (!client)
        goto out;
    if (stream) {
        result = pyllmc_stream_start(client, cache, &b);
        goto out;
    }
    llmc_response *resp = NULL;
    llmc_err err;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    if (kind == K_CHAT)
        st = llmc_completion_json(client, b.data, b.len, &resp, &err);
    else if (kind == K_TEXT)
        st = llmc_text_completion_json(client, b.data, b.len, &resp, &err);
    else
        st = llmc_embedding_json(client, b.data, b.len, &resp, &err);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK)
        pyllmc_raise_err(&err, 0);
    else
        result = pyllmc_response_new(resp);
out:
    llmc_buf_free(&b);
    Py_XDECREF(ctl);
    Py_XDECREF(key);
    Py_XDECREF(keyfn);
    Py_XDECREF(cache);
    return result;
}

int pyllmc_request_key(PyLlmc_Cache *co, PyObject *kwargs, llmc_buf *key)
{
    if (co->get_cache_key != Py_None) {
        PyObject *empty = PyTuple_New(0);
        PyObject *k = empty ? PyObject_Call(co->get_cache_key, empty, kwargs) : NULL;
        Py_XDECREF(empty);
        if (!k)
            return -1;
        Py_ssize_t n;
        const char *t = PyUnicode_Check(k) ? PyUnicode_AsUTF8AndSize(k, &n) : NULL;
        if (!t && !PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "get_cache_key must return a str, not %.80s",
                         Py_TYPE(k)->tp_name);
        int rc = !t ? -1 : llmc_buf_set(key, t, (size_t)n) == LLMC_OK ? 0 : (PyErr_NoMemory(), -1);
        Py_DECREF(k);
        return rc;
    }
    /* The key completion() would use for a chat request of these fields. */
    llmc_buf b = LLMC_BUF_INIT;
    int first = 1, rc = -1;
    if (llmc_buf_append(&b, "{", 1) != LLMC_OK) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *name, *v;
    Py_ssize_t pos = 0;
    while (kwargs && PyDict_Next(kwargs, &pos, &name, &v)) {
        Py_ssize_t nlen;
        const char *n = PyUnicode_AsUTF8AndSize(name, &nlen);
        if (!n)
            goto out;
        if (v == Py_None || name_is(n, nlen, "stream"))
            continue;
        if (put_member(&b, &first, n, (size_t)nlen, v) < 0)
            goto out;
    }
    if (llmc_buf_append(&b, "}", 1) != LLMC_OK) {
        PyErr_NoMemory();
        goto out;
    }
    llmc_request *req = NULL;
    llmc_err err;
    llmc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = llmc_request_from_json(b.data, b.len, &req, &err);
    if (st == LLMC_OK)
        st = llmc_client_request_key(co->client, LLMC_CALL_CHAT, req, 0, key, NULL, &err);
    llmc_request_free(req);
    Py_END_ALLOW_THREADS
    if (st != LLMC_OK)
        pyllmc_raise_err(&err, 0);
    else
        rc = 0;
out:
    llmc_buf_free(&b);
    return rc;
}

static PyObject *py_completion(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    return do_call(m, K_CHAT, a, n, kw);
}

static PyObject *py_text_completion(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    return do_call(m, K_TEXT, a, n, kw);
}

static PyObject *py_embedding(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    return do_call(m, K_EMBED, a, n, kw);
}

/* ---- asyncio: the blocking call on the loop's default thread pool ---- */

static PyObject *get_running_loop, *partial_type;

static int async_init(void)
{
    if (get_running_loop)
        return 0;
    PyObject *asyncio = PyImport_ImportModule("asyncio");
    PyObject *functools = asyncio ? PyImport_ImportModule("functools") : NULL;
    if (functools) {
        get_running_loop = PyObject_GetAttrString(asyncio, "get_running_loop");
        partial_type = PyObject_GetAttrString(functools, "partial");
    }
    Py_XDECREF(asyncio);
    Py_XDECREF(functools);
    if (!get_running_loop || !partial_type) {
        Py_CLEAR(get_running_loop);
        Py_CLEAR(partial_type);
        return -1;
    }
    return 0;
}

PyObject *pyllmc_run_in_executor(PyObject *fn)
{
    if (async_init() < 0)
        return NULL;
    PyObject *loop = PyObject_CallNoArgs(get_running_loop);
    if (!loop)
        return NULL;
    PyObject *fut = PyObject_CallMethod(loop, "run_in_executor", "OO", Py_None, fn);
    Py_DECREF(loop);
    return fut;
}

static PyObject *in_executor(PyObject *m, const char *fname, PyObject *const *args,
                             Py_ssize_t nargs, PyObject *kwnames)
{
    if (async_init() < 0)
        return NULL;
    PyObject *fn = PyObject_GetAttrString(m, fname);
    if (!fn)
        return NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject **stack = PyMem_Malloc((size_t)(1 + nargs + nkw) * sizeof *stack);
    PyObject *fut = NULL;
    if (!stack) {
        PyErr_NoMemory();
    } else {
        stack[0] = fn;
        for (Py_ssize_t i = 0; i < nargs + nkw; i++)
            stack[1 + i] = args[i];
        PyObject *part = PyObject_Vectorcall(partial_type, stack, (size_t)(1 + nargs), kwnames);
        PyMem_Free(stack);
        if (part) {
            fut = pyllmc_run_in_executor(part);
            Py_DECREF(part);
        }
    }
    Py_DECREF(fn);
    return fut;
}

static PyObject *py_acompletion(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    return in_executor(m, "completion", a, n, kw);
}

static PyObject *py_atext_completion(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    return in_executor(m, "text_completion", a, n, kw);
}

static PyObject *py_aembedding(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)
{
    return in_executor(m, "embedding", a, n, kw);
}

#define FASTKW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

PyMethodDef pyllmc_call_methods[] = {
    {"completion", FASTKW(py_completion),
     "completion($module, /, model=None, messages=None, *, caching=None, cache=None,\n"
     "           stream=False, **params)\n--\n\n"
     "Returns a Response, or a Stream of chunks with stream=True.\n\n"
     "A chat completion through llmcache.cache (no caching when it is None), as\n"
     "litellm.completion. model routes to a provider: 'gpt-4o-mini' (OpenAI),\n"
     "'anthropic/...', 'gemini/...', 'ollama/...', 'azure/...'. Any other keyword is\n"
     "a request field sent as JSON (temperature, max_tokens, tools, ...); None values\n"
     "are left out. Special ones: api_key, api_base (never part of the cache key),\n"
     "mock_response (answer offline), caching (opt in/out), cache (per-call controls:\n"
     "{'no-cache': True, 'no-store': True, 'ttl': 60, 's-maxage': 10, 'namespace': 'x'}),\n"
     "stream=True (returns an iterator of chunk Objects; a hit is replayed as chunks).\n"
     "A second identical call is answered from the cache with r.cache == True.\n"
     "The network and cache waits run without the GIL. Errors raise the exception\n"
     "mirroring the C status (AuthenticationError, RateLimitError, ...)."},
    {"text_completion", FASTKW(py_text_completion),
     "text_completion($module, /, model=None, prompt=None, **params)\n--\n\n"
     "A legacy text completion (choices[0].text), cached like completion()."},
    {"embedding", FASTKW(py_embedding),
     "embedding($module, /, model=None, input=None, **params)\n--\n\n"
     "Embeddings of input (a str or a list). Each item has its own cache entry: only\n"
     "the missing items go upstream and r.item_hits tells which came from the cache;\n"
     "r.cache is True only when all did."},
    {"acompletion", FASTKW(py_acompletion),
     "acompletion($module, /, model=None, messages=None, **params)\n--\n\n"
     "Returns an awaitable of a Response.\n\n"
     "completion() for asyncio: runs on the running loop's default thread pool,\n"
     "without the GIL while it waits, so many calls proceed at once. With\n"
     "stream=True it gives a Stream to read with `async for`."},
    {"atext_completion", FASTKW(py_atext_completion),
     "atext_completion($module, /, model=None, prompt=None, **params)\n--\n\n"
     "text_completion() for asyncio (see acompletion)."},
    {"aembedding", FASTKW(py_aembedding),
     "aembedding($module, /, model=None, input=None, **params)\n--\n\n"
     "embedding() for asyncio (see acompletion)."},
    {NULL, NULL, 0, NULL},
};
