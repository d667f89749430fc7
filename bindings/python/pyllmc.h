/* Internal header of the llmcache Python extension: the types and helpers
 * the module's C files share. Nothing here is part of the C library's
 * API; the extension uses only include/llmcache/. */
#ifndef PYLLMC_H
#define PYLLMC_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <llmcache/llmcache.h>

/* ---- errors (errors.c) ---- */

/* Create the exception classes and add them to the module. 0 on success. */
int pyllmc_errors_init(PyObject *module);
/* Raise the exception that mirrors `st` with the C message `msg` (never
 * holding secrets: the library keeps them out of its messages).
 * `from_cache` selects the raw-cache mapping (backend failures are
 * CacheError) instead of the completion mapping. Returns NULL. */
PyObject *pyllmc_raise(llmc_status st, long native, const char *msg, int from_cache);
/* The same from an error record. */
PyObject *pyllmc_raise_err(const llmc_err *err, int from_cache);

/* ---- Python values to JSON text (tojson.c) ---- */

/* Append the JSON form of `o` (None, bool, int, float, str, dict with str
 * keys, list, tuple) to `out`. `what` is the name of the argument the
 * value came from, for error messages (values themselves never appear in
 * them: they may hold secrets). -1 with a
 * Python exception set on failure. */
int pyllmc_json_append(llmc_buf *out, PyObject *o, const char *what);
/* Append `s[0..n)` as a JSON string literal. -1 (MemoryError) on
 * failure. */
int pyllmc_json_append_str(llmc_buf *out, const char *s, size_t n);

/* ---- responses (response.c) ---- */

extern PyTypeObject PyLlmc_ObjectType;   /* dict with attribute access */
extern PyTypeObject PyLlmc_ResponseType; /* a completion's answer */

/* Wrap a C response (ownership passes to the new object, which frees it).
 * NULL with an exception set on failure (the response is freed then). */
PyObject *pyllmc_response_new(llmc_response *r);
/* Parse JSON text into Object/list/str/... (json.loads with Object for
 * every JSON object). New reference or NULL. */
PyObject *pyllmc_parse_json(const char *text, size_t len);
int pyllmc_response_init(PyObject *module);

/* ---- the Cache type (cache.c) ---- */

typedef struct {
    PyObject_HEAD
    llmc_cache *cache;
    llmc_client *client;
    PyObject *get_cache_key; /* LiteLLM's key override, or None */
} PyLlmc_Cache;

extern PyTypeObject PyLlmc_CacheType;
int pyllmc_cache_init(PyObject *module);

/* ---- completion calls (calls.c) ---- */

extern PyMethodDef pyllmc_call_methods[];
/* The cache key a completion with these keyword arguments would use on
 * cache `co` (its get_cache_key function when set), into `key`. -1 with
 * an exception set on failure. */
int pyllmc_request_key(PyLlmc_Cache *co, PyObject *kwargs, llmc_buf *key);
/* The client used when llmcache.cache is None (no caching); created on
 * first use, lives as long as the process. NULL with an exception set on
 * failure. Call with the GIL held. */
llmc_client *pyllmc_uncached_client(void);

/* loop.run_in_executor(None, fn) on the running asyncio loop: a future
 * (new reference) or NULL with an exception set (RuntimeError when no
 * loop is running). */
PyObject *pyllmc_run_in_executor(PyObject *fn);

/* ---- streams (stream.c) ---- */

extern PyTypeObject PyLlmc_StreamType;
/* Start a streaming chat completion of request text `json` (ownership of
 * the buffer passes to the stream) on `client`; `owner` (a Cache or
 * NULL) is kept alive while the stream runs. */
PyObject *pyllmc_stream_start(llmc_client *client, PyObject *owner, llmc_buf *json);
int pyllmc_stream_init(PyObject *module);

#endif
