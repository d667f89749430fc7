/* What completion calls return. Response wraps the C response and parses
 * its JSON text only when a member is first read: a cached hit that is
 * only passed along (or whose .json() is written somewhere) never pays for
 * building Python objects. Members read both ways, as in LiteLLM:
 * r["choices"][0]["message"]["content"] and r.choices[0].message.content;
 * every JSON object inside is an Object, a dict that also answers
 * attribute access. */
#include "pyllmc.h"

#include <structmember.h>

static PyObject *json_loads;  /* json.loads */
static PyObject *hook_kwargs; /* {"object_hook": Object} */

/* ---- Object: a dict with attribute access ---- */

static PyObject *object_getattro(PyObject *self, PyObject *name)
{
    PyObject *v = PyObject_GenericGetAttr(self, name);
    if (v || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return v;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *item = PyDict_GetItemWithError(self, name);
    if (item || PyErr_Occurred()) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return Py_XNewRef(item);
    }
    PyErr_Restore(et, ev, tb);
    return NULL;
}

PyTypeObject PyLlmc_ObjectType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmcache.Object",
    .tp_basicsize = sizeof(PyDictObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_getattro = object_getattro,
    .tp_doc = "A JSON object of a response: a dict whose members can also be read "
              "as attributes (o.message.content). Members that share a name with a "
              "dict method (items, keys, ...) are read with o[\"items\"].",
};

PyObject *pyllmc_parse_json(const char *text, size_t len)
{
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "strict");
    if (!s)
        return NULL;
    PyObject *args = PyTuple_Pack(1, s);
    Py_DECREF(s);
    if (!args)
        return NULL;
    PyObject *v = PyObject_Call(json_loads, args, hook_kwargs);
    Py_DECREF(args);
    return v;
}

/* ---- Response ---- */

typedef struct {
    PyObject_HEAD
    llmc_response *r;
    PyObject *data; /* parsed on first use */
} PyLlmc_Response;

PyObject *pyllmc_response_new(llmc_response *r)
{
    PyLlmc_Response *self = PyObject_New(PyLlmc_Response, &PyLlmc_ResponseType);
    if (!self) {
        llmc_response_free(r);
        return NULL;
    }
    self->r = r;
    self->data = NULL;
    return (PyObject *)self;
}

static void response_dealloc(PyObject *o)
{
    PyLlmc_Response *self = (PyLlmc_Response *)o;
    Py_XDECREF(self->data);
    llmc_response_free(self->r);
    PyObject_Free(o);
}

static PyObject *response_data(PyLlmc_Response *self)
{
    if (!self->data) {
        size_t len = 0;
        const char *text = llmc_response_text(self->r, &len);
        self->data = pyllmc_parse_json(text ? text : "{}", text ? len : 2);
    }
    return self->data;
}

static PyObject *response_getattro(PyObject *o, PyObject *name)
{
    PyObject *v = PyObject_GenericGetAttr(o, name);
    if (v || !PyErr_ExceptionMatches(PyExc_AttributeError))
        return v;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *data = response_data((PyLlmc_Response *)o);
    PyObject *item = data && PyDict_Check(data) ? PyDict_GetItemWithError(data, name) : NULL;
    if (item || PyErr_Occurred()) {
        Py_XDECREF(et);
        Py_XDECREF(ev);
        Py_XDECREF(tb);
        return Py_XNewRef(item);
    }
    PyErr_Restore(et, ev, tb);
    return NULL;
}

static PyObject *response_subscript(PyObject *o, PyObject *key)
{
    PyLlmc_Response *self = (PyLlmc_Response *)o;
    PyObject *data = response_data(self);
    if (!data)
        return NULL;
    PyObject *v = PyObject_GetItem(data, key);
    if (!v && PyErr_ExceptionMatches(PyExc_KeyError) && PyUnicode_Check(key) &&
        PyUnicode_CompareWithASCIIString(key, "cache") == 0) {
        /* A fresh answer carries no "cache" member: r["cache"] is False. */
        PyErr_Clear();
        return PyBool_FromLong(llmc_response_cache_hit(self->r));
    }
    return v;
}

static Py_ssize_t response_length(PyObject *o)
{
    PyObject *data = response_data((PyLlmc_Response *)o);
    return data ? PyObject_Length(data) : -1;
}

static int response_contains(PyObject *o, PyObject *key)
{
    PyObject *data = response_data((PyLlmc_Response *)o);
    return data ? PySequence_Contains(data, key) : -1;
}

static PyObject *response_iter(PyObject *o)
{
    PyObject *data = response_data((PyLlmc_Response *)o);
    return data ? PyObject_GetIter(data) : NULL;
}

static PyObject *response_repr(PyObject *o)
{
    size_t len = 0;
    const char *text = llmc_response_text(((PyLlmc_Response *)o)->r, &len);
    PyObject *s = PyUnicode_DecodeUTF8(text ? text : "", (Py_ssize_t)len, "replace");
    if (!s)
        return NULL;
    PyObject *r = PyUnicode_FromFormat("Response(%U)", s);
    Py_DECREF(s);
    return r;
}

/* The parsed members without the cache marker (new reference): a hit and
 * the miss that stored it are the same answer. */
static PyObject *without_marker(PyObject *d)
{
    if (!PyDict_Check(d))
        return Py_NewRef(d);
    PyObject *c = PyDict_Copy(d);
    if (c && PyDict_DelItemString(c, "cache") < 0) {
        if (PyErr_ExceptionMatches(PyExc_KeyError))
            PyErr_Clear();
        else
            Py_CLEAR(c);
    }
    return c;
}

static PyObject *response_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE))
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *da = response_data((PyLlmc_Response *)a);
    if (!da)
        return NULL;
    PyObject *db;
    if (PyObject_TypeCheck(b, &PyLlmc_ResponseType)) {
        db = response_data((PyLlmc_Response *)b);
        if (!db)
            return NULL;
    } else if (PyDict_Check(b)) {
        db = b;
    } else {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *ca = without_marker(da), *cb = ca ? without_marker(db) : NULL;
    PyObject *r = cb ? PyObject_RichCompare(ca, cb, op) : NULL;
    Py_XDECREF(ca);
    Py_XDECREF(cb);
    return r;
}

static PyObject *response_json(PyObject *o, PyObject *Py_UNUSED(arg))
{
    size_t len = 0;
    const char *text = llmc_response_text(((PyLlmc_Response *)o)->r, &len);
    return PyUnicode_DecodeUTF8(text ? text : "{}", text ? (Py_ssize_t)len : 2, "strict");
}

static PyObject *response_to_dict(PyObject *o, PyObject *Py_UNUSED(arg))
{
    PyObject *text = response_json(o, NULL);
    if (!text)
        return NULL;
    PyObject *v = PyObject_CallOneArg(json_loads, text);
    Py_DECREF(text);
    return v;
}

static PyObject *response_get(PyObject *o, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "get() takes a key and an optional default");
        return NULL;
    }
    PyObject *v = response_subscript(o, args[0]);
    if (!v && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
        return Py_NewRef(nargs == 2 ? args[1] : Py_None);
    }
    return v;
}

#define DATA_METHOD(fname, meth)                                                    \
    static PyObject *fname(PyObject *o, PyObject *Py_UNUSED(arg))                   \
    {                                                                               \
        PyObject *data = response_data((PyLlmc_Response *)o);                       \
        return data ? PyObject_CallMethod(data, meth, NULL) : NULL;                 \
    }
DATA_METHOD(response_keys, "keys")
DATA_METHOD(response_values, "values")
DATA_METHOD(response_items, "items")

static PyMethodDef response_methods[] = {
    {"json", response_json, METH_NOARGS, "json() -> str\n\nThe response as OpenAI-format JSON text (with \"cache\": true on a hit)."},
    {"to_dict", response_to_dict, METH_NOARGS, "to_dict() -> dict\n\nThe response as plain dicts and lists."},
    {"model_dump", response_to_dict, METH_NOARGS, "model_dump() -> dict\n\nThe same as to_dict() (LiteLLM's name)."},
    {"get", (PyCFunction)(void (*)(void))response_get, METH_FASTCALL, "get(key, default=None)\n\nA top-level member, or default."},
    {"keys", response_keys, METH_NOARGS, "The top-level member names."},
    {"values", response_values, METH_NOARGS, "The top-level member values."},
    {"items", response_items, METH_NOARGS, "The top-level (name, value) pairs."},
    {NULL, NULL, 0, NULL},
};

static PyObject *get_cache(PyObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(llmc_response_cache_hit(((PyLlmc_Response *)o)->r));
}

static PyObject *str_or_none(const char *s)
{
    return s ? PyUnicode_FromString(s) : Py_NewRef(Py_None);
}

static PyObject *get_cache_key(PyObject *o, void *Py_UNUSED(c))
{
    return str_or_none(llmc_response_cache_key(((PyLlmc_Response *)o)->r));
}

static PyObject *get_cache_age_ms(PyObject *o, void *Py_UNUSED(c))
{
    int64_t age = llmc_response_cache_age_ms(((PyLlmc_Response *)o)->r);
    return age < 0 ? Py_NewRef(Py_None) : PyLong_FromLongLong(age);
}

static PyObject *get_cache_stored(PyObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(llmc_response_cache_stored(((PyLlmc_Response *)o)->r));
}

static PyObject *get_cache_stale(PyObject *o, void *Py_UNUSED(c))
{
    return PyBool_FromLong(llmc_response_cache_stale(((PyLlmc_Response *)o)->r));
}

static PyObject *get_provider(PyObject *o, void *Py_UNUSED(c))
{
    return str_or_none(llmc_response_provider(((PyLlmc_Response *)o)->r));
}

static PyObject *get_attempts(PyObject *o, void *Py_UNUSED(c))
{
    return PyLong_FromLong(llmc_response_attempts(((PyLlmc_Response *)o)->r));
}

static PyObject *get_item_hits(PyObject *o, void *Py_UNUSED(c))
{
    llmc_response *r = ((PyLlmc_Response *)o)->r;
    size_t n = llmc_response_item_count(r);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++)
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, PyBool_FromLong(llmc_response_item_hit(r, i)));
    return t;
}

static PyObject *get_hidden(PyObject *o, void *Py_UNUSED(c))
{
    llmc_response *r = ((PyLlmc_Response *)o)->r;
    int64_t age = llmc_response_cache_age_ms(r);
    const char *key = llmc_response_cache_key(r);
    const char *prov = llmc_response_provider(r);
    const char *model = llmc_response_model(r);
    return Py_BuildValue("{s:O,s:s,s:L,s:s,s:s,s:i}", "cache_hit",
                         llmc_response_cache_hit(r) ? Py_True : Py_False, "cache_key", key,
                         "cache_age_ms", (long long)age, "custom_llm_provider", prov, "model",
                         model, "attempts", llmc_response_attempts(r));
}

static PyGetSetDef response_getset[] = {
    {"cache", get_cache, NULL, "True if the answer came from the cache (embeddings: every item did).", NULL},
    {"cache_key", get_cache_key, NULL, "The cache key used (embeddings: the first item's), or None when caching was off.", NULL},
    {"cache_age_ms", get_cache_age_ms, NULL, "Age of the cached entry in ms on a hit, else None.", NULL},
    {"cache_stored", get_cache_stored, NULL, "True if the fresh answer was handed to the cache for storing.", NULL},
    {"cache_stale", get_cache_stale, NULL, "True if the answer is a cached entry past its freshness (the provider failed: stale-if-error, or it is being refreshed: stale-while-revalidate).", NULL},
    {"provider", get_provider, NULL, "The provider that answered (or would have): 'openai', 'anthropic', ...", NULL},
    {"attempts", get_attempts, NULL, "HTTP attempts made for this call (0 on a full hit).", NULL},
    {"item_hits", get_item_hits, NULL, "Embeddings: per input item, True if it came from the cache.", NULL},
    {"_hidden_params", get_hidden, NULL, "LiteLLM-style call facts: cache_hit, cache_key, cache_age_ms, custom_llm_provider, model, attempts.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMappingMethods response_as_mapping = {
    .mp_length = response_length,
    .mp_subscript = response_subscript,
};

static PySequenceMethods response_as_sequence = {
    .sq_contains = response_contains,
};

PyTypeObject PyLlmc_ResponseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmcache.Response",
    .tp_basicsize = sizeof(PyLlmc_Response),
    .tp_dealloc = response_dealloc,
    .tp_repr = response_repr,
    .tp_as_mapping = &response_as_mapping,
    .tp_as_sequence = &response_as_sequence,
    .tp_getattro = response_getattro,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An OpenAI-format response. Read it as a dict (r[\"choices\"][0][\"message\"]"
              "[\"content\"]) or by attributes (r.choices[0].message.content); r.cache and "
              "r[\"cache\"] are True on a cache hit; == compares the answers, the cache "
              "marker aside. The JSON text is parsed on first read.",
    .tp_richcompare = response_richcompare,
    .tp_iter = response_iter,
    .tp_methods = response_methods,
    .tp_getset = response_getset,
};

int pyllmc_response_init(PyObject *module)
{
    PyLlmc_ObjectType.tp_base = &PyDict_Type;
    if (PyType_Ready(&PyLlmc_ObjectType) < 0 || PyType_Ready(&PyLlmc_ResponseType) < 0)
        return -1;
    PyObject *json = PyImport_ImportModule("json");
    if (!json)
        return -1;
    json_loads = PyObject_GetAttrString(json, "loads");
    Py_DECREF(json);
    if (!json_loads)
        return -1;
    hook_kwargs = Py_BuildValue("{s:O}", "object_hook", (PyObject *)&PyLlmc_ObjectType);
    if (!hook_kwargs)
        return -1;
    if (PyModule_AddObjectRef(module, "Object", (PyObject *)&PyLlmc_ObjectType) < 0 ||
        PyModule_AddObjectRef(module, "Response", (PyObject *)&PyLlmc_ResponseType) < 0)
        return -1;
    return 0;
}
