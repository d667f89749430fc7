/* completion(..., stream=True): an iterator of chunks. The C streaming
 * call runs on its own thread (it blocks on the network, and on a hit it
 * replays the stored answer as chunks); each chunk's JSON text is queued
 * and __next__ waits for the next one without the GIL. Closing the
 * iterator early (close(), or dropping it) stops the call: nothing is
 * stored then, as the C client documents for a canceled stream. */
#include <pthread.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "pyllmc.h"

typedef struct chunk {
    struct chunk *next;
    size_t len;
    char text[];
} chunk;

typedef struct {
    PyObject_HEAD
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk *head, *tail;  /* queued chunk texts */
    int done;            /* the C call returned */
    int stop;            /* the consumer went away: cancel */
    int oom;             /* a chunk could not be queued */
    int finished;        /* StopIteration or the error was given */
    llmc_status st;
    llmc_err err;
    llmc_response *resp; /* the assembled (or cached) full response */
    PyObject *response;  /* it as a Response, once done */
    llmc_client *client;
    PyObject *owner;     /* keeps the client's Cache alive */
    llmc_buf json;       /* the request text */
} PyLlmc_Stream;

static int on_chunk(void *ud, struct json_object *obj)
{
    PyLlmc_Stream *s = ud;
    size_t len = 0;
    const char *t = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
    chunk *c = t ? malloc(sizeof *c + len + 1) : NULL;
    pthread_mutex_lock(&s->mu);
    int stop = s->stop;
    if (!c) {
        s->oom = 1;
        stop = 1;
    } else if (!stop) {
        memcpy(c->text, t, len + 1);
        c->len = len;
        c->next = NULL;
        if (s->tail)
            s->tail->next = c;
        else
            s->head = c;
        s->tail = c;
        c = NULL;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    free(c);
    return stop;
}

static void *worker(void *arg)
{
    PyLlmc_Stream *s = arg;
    llmc_response *resp = NULL;
    llmc_err err;
    llmc_status st = llmc_completion_stream_json(s->client, s->json.data, s->json.len, on_chunk, s,
                                                 &resp, &err);
    pthread_mutex_lock(&s->mu);
    s->st = st;
    s->err = err;
    s->resp = resp;
    s->done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

PyObject *pyllmc_stream_start(llmc_client *client, PyObject *owner, llmc_buf *json)
{
    PyLlmc_Stream *s = PyObject_New(PyLlmc_Stream, &PyLlmc_StreamType);
    if (!s)
        return NULL;
    memset((char *)s + sizeof(PyObject), 0, sizeof *s - sizeof(PyObject));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->client = client;
    s->owner = Py_XNewRef(owner);
    s->json = *json;
    *json = (llmc_buf)LLMC_BUF_INIT;
    int rc = pthread_create(&s->thread, NULL, worker, s);
    if (rc != 0) {
        Py_DECREF(s);
        return PyErr_Format(PyExc_RuntimeError, "cannot start the stream's thread: %s",
                            strerror(rc));
    }
    s->started = 1;
    return (PyObject *)s;
}

/* Stop the C call (if still running) and wait for its thread. */
static void stream_join(PyLlmc_Stream *s)
{
    if (!s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_mutex_unlock(&s->mu);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(s->thread, NULL);
    Py_END_ALLOW_THREADS
    s->started = 0;
}

static void stream_dealloc(PyObject *o)
{
    PyLlmc_Stream *s = (PyLlmc_Stream *)o;
    stream_join(s);
    for (chunk *c = s->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    llmc_response_free(s->resp);
    Py_XDECREF(s->response);
    Py_XDECREF(s->owner);
    llmc_buf_free(&s->json);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    PyObject_Free(o);
}

static PyObject *stream_next(PyObject *o)
{
    PyLlmc_Stream *s = (PyLlmc_Stream *)o;
    if (s->finished)
        return NULL;
    chunk *c;
    int done;
    pthread_mutex_lock(&s->mu);
    if (!s->head && !s->done) {
        Py_BEGIN_ALLOW_THREADS
        while (!s->head && !s->done)
            pthread_cond_wait(&s->cv, &s->mu);
        Py_END_ALLOW_THREADS
    }
    c = s->head;
    if (c && !(s->head = c->next))
        s->tail = NULL;
    done = s->done;
    pthread_mutex_unlock(&s->mu);
    if (c) {
        PyObject *v = pyllmc_parse_json(c->text, c->len);
        free(c);
        return v;
    }
    (void)done;
    /* The call ended and every chunk was handed out. */
    stream_join(s);
    s->finished = 1;
    if (s->oom)
        return PyErr_NoMemory();
    if (s->st != LLMC_OK)
        return pyllmc_raise_err(&s->err, 0);
    if (s->resp) {
        s->response = pyllmc_response_new(s->resp);
        s->resp = NULL;
        if (!s->response)
            return NULL;
    }
    return NULL; /* StopIteration */
}

/* The next chunk for `async for`: run on the loop's thread pool by
 * __anext__; the end is StopAsyncIteration (a StopIteration cannot travel
 * through a future). */
static PyObject *stream_anext_blocking(PyObject *o, PyObject *Py_UNUSED(arg))
{
    PyObject *v = stream_next(o);
    if (!v && !PyErr_Occurred())
        PyErr_SetNone(PyExc_StopAsyncIteration);
    return v;
}

static PyObject *stream_anext(PyObject *o)
{
    PyObject *fn = PyObject_GetAttrString(o, "_anext_blocking");
    if (!fn)
        return NULL;
    PyObject *fut = pyllmc_run_in_executor(fn);
    Py_DECREF(fn);
    return fut;
}

static PyObject *stream_close(PyObject *o, PyObject *Py_UNUSED(arg))
{
    PyLlmc_Stream *s = (PyLlmc_Stream *)o;
    if (!s->finished) {
        stream_join(s);
        s->finished = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *stream_enter(PyObject *o, PyObject *Py_UNUSED(arg))
{
    return Py_NewRef(o);
}

static PyObject *stream_exit(PyObject *o, PyObject *Py_UNUSED(args))
{
    return stream_close(o, NULL);
}

static PyObject *stream_get_response(PyObject *o, void *Py_UNUSED(c))
{
    PyLlmc_Stream *s = (PyLlmc_Stream *)o;
    return Py_NewRef(s->response ? s->response : Py_None);
}

static PyObject *stream_get_cache(PyObject *o, void *Py_UNUSED(c))
{
    PyLlmc_Stream *s = (PyLlmc_Stream *)o;
    if (!s->response)
        Py_RETURN_NONE;
    return PyObject_GetAttrString(s->response, "cache");
}

static PyMethodDef stream_methods[] = {
    {"close", stream_close, METH_NOARGS,
     "close()\n\nStop the stream early; the answer is then not cached."},
    {"_anext_blocking", stream_anext_blocking, METH_NOARGS, NULL},
    {"__enter__", stream_enter, METH_NOARGS, NULL},
    {"__exit__", stream_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stream_getset[] = {
    {"response", stream_get_response, NULL,
     "After the last chunk: the full Response (assembled, or the cached one); else None.",
     NULL},
    {"cache", stream_get_cache, NULL,
     "After the last chunk: True if it was replayed from the cache; else None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyAsyncMethods stream_as_async = {
    .am_aiter = PyObject_SelfIter,
    .am_anext = stream_anext,
};

PyTypeObject PyLlmc_StreamType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmcache.Stream",
    .tp_basicsize = sizeof(PyLlmc_Stream),
    .tp_dealloc = stream_dealloc,
    .tp_as_async = &stream_as_async,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The chunks of completion(..., stream=True): chat.completion.chunk Objects as "
              "they arrive (or replayed from the cache on a hit), with `for` or, from "
              "acompletion(stream=True), `async for`. After the last one, "
              ".response is the full Response and .cache says whether it was a hit. A "
              "stream cut off by the provider raises StreamError and is not cached.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = stream_next,
    .tp_methods = stream_methods,
    .tp_getset = stream_getset,
};

int pyllmc_stream_init(PyObject *module)
{
    if (PyType_Ready(&PyLlmc_StreamType) < 0)
        return -1;
    return PyModule_AddObjectRef(module, "Stream", (PyObject *)&PyLlmc_StreamType);
}
