/* Python values to JSON text, for the request bodies the module hands to
 * the C client. Writing the text directly (rather than through the json
 * module) keeps a cached completion's cost in C, and the client's request
 * memo then recognises a repeated call by its exact text. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pyllmc.h"

/* Deeper than any real request; the C parser refuses deeper nesting too. */
#define MAX_DEPTH 64

static inline int put(llmc_buf *out, const char *s, size_t n)
{
    /* Most appends are a few bytes into a buffer with room: no call into
     * the library for those (cap counts the terminating NUL). */
    if (out->cap - out->len > n) {
        memcpy(out->data + out->len, s, n);
        out->len += n;
        out->data[out->len] = '\0';
        return 0;
    }
    if (llmc_buf_append(out, s, n) != LLMC_OK) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* Length of the prefix of s[0..n) that JSON can hold as it is: no '"',
 * no '\\', no control character. Eight bytes at a time (a word has such a
 * byte when one of the three bit tricks below finds it); request text is
 * mostly plain prose, so this is where a request's bytes are spent. */
static size_t plain_prefix(const unsigned char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        uint64_t hit = ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b);
        if (hit & highs)
            break;
    }
    while (i < n && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

int pyllmc_json_append_str(llmc_buf *out, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    if (llmc_buf_reserve(out, n + 2) != LLMC_OK) {
        PyErr_NoMemory();
        return -1;
    }
    if (put(out, "\"", 1) < 0)
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t run = plain_prefix(s + i, n - i);
        if (run && put(out, str + i, run) < 0)
            return -1;
        i += run;
        if (i == n)
            break;
        unsigned char c = s[i++];
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': case '\\': break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (put(out, esc, elen) < 0)
            return -1;
    }
    return put(out, "\"", 1);
}

static int append_value(llmc_buf *out, PyObject *o, const char *what, int depth);

static int append_unicode(llmc_buf *out, PyObject *o)
{
    Py_ssize_t n;
    /* Lone surrogates cannot be UTF-8: this raises UnicodeEncodeError. */
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    return s ? pyllmc_json_append_str(out, s, (size_t)n) : -1;
}

static int append_dict(llmc_buf *out, PyObject *o, const char *what, int depth)
{
    if (put(out, "{", 1) < 0)
        return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    int first = 1;
    while (PyDict_Next(o, &pos, &k, &v)) {
        if (!PyUnicode_Check(k)) {
            PyErr_Format(PyExc_TypeError, "argument %.60s: dictionary keys must be str, not %.80s",
                         what, Py_TYPE(k)->tp_name);
            return -1;
        }
        if ((!first && put(out, ",", 1) < 0) || append_unicode(out, k) < 0 ||
            put(out, ":", 1) < 0)
            return -1;
        first = 0;
        /* A dict may change while it is read (another thread, a __hash__):
         * hold the value across the recursion. */
        Py_INCREF(v);
        int rc = append_value(out, v, what, depth + 1);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    return put(out, "}", 1);
}

static int append_seq(llmc_buf *out, PyObject *o, const char *what, int depth)
{
    PyObject *fast = PySequence_Fast(o, "not a sequence");
    if (!fast)
        return -1;
    int rc = put(out, "[", 1);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        if (i && put(out, ",", 1) < 0) {
            rc = -1;
            break;
        }
        rc = append_value(out, PySequence_Fast_GET_ITEM(fast, i), what, depth + 1);
    }
    Py_DECREF(fast);
    return rc < 0 ? -1 : put(out, "]", 1);
}

static int append_value(llmc_buf *out, PyObject *o, const char *what, int depth)
{
    if (depth > MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError, "argument %.60s: nested deeper than %d levels", what, MAX_DEPTH);
        return -1;
    }
    if (o == Py_None)
        return put(out, "null", 4);
    if (o == Py_True)
        return put(out, "true", 4);
    if (o == Py_False)
        return put(out, "false", 5);
    if (PyUnicode_Check(o))
        return append_unicode(out, o);
    if (PyLong_Check(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (!overflow) {
            char num[24];
            char *p = num + sizeof num;
            unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            do {
                *--p = (char)('0' + u % 10);
                u /= 10;
            } while (u);
            if (v < 0)
                *--p = '-';
            return put(out, p, (size_t)(num + sizeof num - p));
        }
        /* Big integers keep all their digits; the C side decides. */
        PyObject *s = PyObject_Str(o);
        if (!s)
            return -1;
        Py_ssize_t n;
        const char *t = PyUnicode_AsUTF8AndSize(s, &n);
        int rc = t ? put(out, t, (size_t)n) : -1;
        Py_DECREF(s);
        return rc;
    }
    if (PyFloat_Check(o)) {
        double d = PyFloat_AS_DOUBLE(o);
        if (!isfinite(d)) {
            PyErr_Format(PyExc_ValueError, "argument %.60s: %s is not a JSON number", what,
                         isnan(d) ? "nan" : "infinity");
            return -1;
        }
        char *s = PyOS_double_to_string(d, 'r', 0, 0, NULL);
        if (!s)
            return -1;
        int rc = put(out, s, strlen(s));
        PyMem_Free(s);
        return rc;
    }
    if (PyDict_Check(o))
        return append_dict(out, o, what, depth);
    if (PyList_Check(o) || PyTuple_Check(o))
        return append_seq(out, o, what, depth);
    if (PyObject_TypeCheck(o, &PyLlmc_ResponseType)) {
        /* A response (or a part of one) passed back in: its JSON text. */
        PyObject *text = PyObject_CallMethod(o, "json", NULL);
        if (!text)
            return -1;
        Py_ssize_t n;
        const char *t = PyUnicode_AsUTF8AndSize(text, &n);
        int rc = t ? put(out, t, (size_t)n) : -1;
        Py_DECREF(text);
        return rc;
    }
    PyErr_Format(PyExc_TypeError,
                 "argument %.60s: a value of type %.80s cannot be sent as JSON (use str, int, float, "
                 "bool, None, dict, list or tuple)",
                 what, Py_TYPE(o)->tp_name);
    return -1;
}

int pyllmc_json_append(llmc_buf *out, PyObject *o, const char *what)
{
    return append_value(out, o, what, 0);
}
