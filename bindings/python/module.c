/* The llmcache module: LiteLLM's caching API over libllmcache.
 *
 *   import llmcache
 *   llmcache.cache = llmcache.Cache(type="redis", host=..., port=..., password=...)
 *   r = llmcache.completion(model="gpt-4o-mini", messages=[...], caching=True)
 *
 * The module registers llmcache.caching and llmcache.caching.caching as
 * aliases of itself, so LiteLLM's `from litellm.caching.caching import
 * Cache` works with the package name replaced. */
#include "pyllmc.h"

static PyObject *py_version(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    return PyUnicode_FromString(llmc_version());
}

static PyMethodDef extra_methods[] = {
    {"library_version", py_version, METH_NOARGS,
     "library_version() -> str\n\nThe version of the libllmcache this module runs on."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef llmcache_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "llmcache",
    .m_doc = "llmcache: a fast, shared cache for LLM API responses, with LiteLLM's API.\n\n"
             "    import llmcache\n"
             "    llmcache.cache = llmcache.Cache(type='redis', host='localhost', port=6379,\n"
             "                                    password='...')\n"
             "    r = llmcache.completion(model='gpt-4o-mini',\n"
             "                            messages=[{'role': 'user', 'content': 'Hi'}],\n"
             "                            caching=True)\n"
             "    r.choices[0].message.content; r.cache  # True on the second call\n\n"
             "Cache types: local, redis, redis-cluster, memcached, sqlite and plugins.\n"
             "Calls: completion, text_completion, embedding and their asyncio forms\n"
             "acompletion, atext_completion, aembedding. Errors: subclasses of\n"
             "llmcache.Error mirroring the C library's statuses.",
    .m_size = -1,
};

/* `name` as an alias of the module in sys.modules and as attribute
 * `attr` of `parent`. */
static int alias(PyObject *module, const char *name, PyObject *parent, const char *attr)
{
    PyObject *modules = PyImport_GetModuleDict();
    if (PyDict_SetItemString(modules, name, module) < 0)
        return -1;
    return PyObject_SetAttrString(parent, attr, module);
}

PyMODINIT_FUNC PyInit_llmcache(void);
PyMODINIT_FUNC PyInit_llmcache(void)
{
    PyObject *m = PyModule_Create(&llmcache_module);
    if (!m)
        return NULL;
    if (PyModule_AddFunctions(m, pyllmc_call_methods) < 0 ||
        PyModule_AddFunctions(m, extra_methods) < 0 || pyllmc_errors_init(m) < 0 ||
        pyllmc_response_init(m) < 0 || pyllmc_cache_init(m) < 0 || pyllmc_stream_init(m) < 0 ||
        PyModule_AddObjectRef(m, "cache", Py_None) < 0 ||
        PyModule_AddStringConstant(m, "__version__", LLMC_VERSION_STRING) < 0 ||
        alias(m, "llmcache.caching", m, "caching") < 0 ||
        alias(m, "llmcache.caching.caching", m, "caching") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
